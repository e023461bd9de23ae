/* Integer forms beyond the families of forms.c, found by the coverage gate
 * (coverage.c): every operand direction, accumulator and immediate form,
 * moves, exchanges, tests, shifts by 1/CL/imm on registers and memory,
 * x87 and cache no-ops; and control transfers and the stack (gen_control):
 * PUSH/POP, PUSHF/POPF, ENTER/LEAVE, CALL/RET/JMP/Jcc/LOOP/JrCXZ as
 * relative branches over a short body, so that the registers and the stack
 * compared afterwards say which way they went. RSP points into the data
 * page (emu_diff.c). */
#include <stdio.h>
#include <string.h>

#include "accel/emu/cpu.h"
#include "forms.h"

#define DATA_ADDR 0x10100000UL  /* as in emu_diff.c */

static const char *const alu_names[8] = { "add", "or", "adc", "sbb", "and", "sub", "xor", "cmp" };
static const char *const shift_names[8] = { "rol", "ror", "rcl", "rcr", "shl", "shr", "sal", "sar" };
#define ARITH_LOGIC_AF(op) (((op) == 1 || (op) == 4 || (op) == 6) ? FL_AF : 0)
/* MUL/IMUL: "The SF, ZF, AF, and PF flags are undefined." */
#define IMUL_UNDEF (FL_SF | FL_ZF | FL_AF | FL_PF)

static struct diff_form *bytes_form(const char *name, const uint8_t *b, int n)
{
	struct diff_form *f = newf("%s", name);
	for (int k = 0; k < n; k++)
		emit(f, b[k]);
	return f;
}
#define BYTES(name, ...)                                                              \
	bytes_form(name, (const uint8_t[]){ __VA_ARGS__ }, (int)sizeof((const uint8_t[]){ __VA_ARGS__ }))

static void setup_cl_small(uint64_t *gpr)
{
	/* SHLD/SHRD on 16-bit memory: "If the count is greater than the
	 * operand size, the result is undefined" (memory is not masked) */
	gpr[R_RCX] %= 17;
}

static void gen_alu_more(void)
{
	for (int op = 0; op < 8; op++) {
		uint32_t undef = ARITH_LOGIC_AF(op);
		char o[4];
		for (int size = 1; size <= 8; size *= 2) {
			/* reg, r/m direction with a register r/m */
			snprintf(o, sizeof(o), "%02X", op * 8 + 2 + (size > 1));
			struct diff_form *f = newf("%s%s r10,rsi (reg,r/m)", alu_names[op], sz(size));
			enc(f, 0, size, o, 10, 6, false);
			f->undef_flags = undef;
			/* accumulator, immediate */
			f = newf("%s%s acc,imm", alu_names[op], sz(size));
			if (size == 2)
				emit(f, 0x66);
			if (size == 8)
				emit(f, 0x48);
			emit(f, op * 8 + 4 + (size > 1));
			emit_imm(f, diff_rand(), size == 1 ? 1 : size == 2 ? 2 : 4);
			f->undef_flags = undef;
		}
		struct diff_form *f = newf("%sb [rbx],imm8", alu_names[op]);
		enc(f, 0, 1, "80", op, 0, true);
		emit_imm(f, diff_rand(), 1);
		f->undef_flags = undef;
	}
	for (int size = 2; size <= 8; size *= 2) {
		struct diff_form *f = newf("imul%s rsi,rdi,imm32", sz(size));
		enc(f, 0, size, "69", 6, 7, false);
		emit_imm(f, diff_rand(), size == 2 ? 2 : 4);
		f->undef_flags = IMUL_UNDEF;
		f = newf("imul%s rdx,[rbx],imm8", sz(size));
		enc(f, 0, size, "6B", 2, 0, true);
		emit_imm(f, diff_rand(), 1);
		f->undef_flags = IMUL_UNDEF;
	}
}

static void gen_test_xchg_mov(void)
{
	/* TEST: "The state of the AF flag is undefined." */
	for (int size = 1; size <= 8; size *= 2) {
		const char *rm = size == 1 ? "84" : "85";
		struct diff_form *f = newf("test%s [rbx],rcx", sz(size));
		enc(f, 0, size, rm, 1, 0, true);
		f->undef_flags = FL_AF;
		f = newf("test%s acc,imm", sz(size));
		if (size == 2)
			emit(f, 0x66);
		if (size == 8)
			emit(f, 0x48);
		emit(f, size == 1 ? 0xA8 : 0xA9);
		emit_imm(f, diff_rand(), size == 1 ? 1 : size == 2 ? 2 : 4);
		f->undef_flags = FL_AF;
		/* F6/F7 /0 and its alias /1 */
		for (int reg = 0; reg < 2; reg++)
			for (int mem = 0; mem < 2; mem++) {
				f = newf("test%s %s,imm (/%d)", sz(size), mem ? "[rbx]" : "r13", reg);
				enc(f, 0, size, size == 1 ? "F6" : "F7", reg, 13, mem);
				emit_imm(f, diff_rand(), size == 1 ? 1 : size == 2 ? 2 : 4);
				f->undef_flags = FL_AF;
			}
		/* XCHG and MOV with register operands both ways */
		f = newf("xchg%s r9,rdx", sz(size));
		enc(f, 0, size, size == 1 ? "86" : "87", 9, 2, false);
		f = newf("xchg%s [rbx],rdi", sz(size));
		enc(f, 0, size, size == 1 ? "86" : "87", 7, 0, true);
		f = newf("mov%s r11,rax (89)", sz(size));
		enc(f, 0, size, size == 1 ? "88" : "89", 0, 11, false);
		f = newf("mov%s rax,r11 (8b)", sz(size));
		enc(f, 0, size, size == 1 ? "8A" : "8B", 0, 11, false);
		f = newf("mov%s rsi,[rbx]", sz(size));
		enc(f, 0, size, size == 1 ? "8A" : "8B", 6, 0, true);
		f = newf("mov%s [rbx],r8", sz(size));
		enc(f, 0, size, size == 1 ? "88" : "89", 8, 0, true);
		f = newf("mov%s r14,imm (c6/c7)", sz(size));
		enc(f, 0, size, size == 1 ? "C6" : "C7", 0, 14, false);
		emit_imm(f, diff_rand(), size == 1 ? 1 : size == 2 ? 2 : 4);
	}
	for (int r = 0; r < 8; r++) {
		struct diff_form *f;
		if (r != 4) { /* xchg rsp would move the stack */
			static const char *const r64[8] = { "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi" };
			f = newf("xchg rax,%s (9x)", r64[r]);
			emit(f, 0x48);
			emit(f, 0x90 + r);
		}
		f = newf("xchg eax,r%dd (9x)", 8 + r);
		emit(f, 0x41);
		emit(f, 0x90 + r);
		f = newf("movb r%db,imm8 (b%x)", 8 + r, r);
		emit(f, 0x41);
		emit(f, 0xB0 + r);
		emit_imm(f, diff_rand(), 1);
		f = newf("movb reg%d,imm8 (b%x, no REX: ah..bh)", r, r);
		emit(f, 0xB0 + r);
		emit_imm(f, diff_rand(), 1);
		f = newf("movl r%dd,imm32 (b%x)", 8 + r, 8 + r);
		emit(f, 0x41);
		emit(f, 0xB8 + r);
		emit_imm(f, diff_rand(), 4);
		f = newf("movq r%d,imm64 (b%x)", 8 + r, 8 + r);
		emit(f, 0x49);
		emit(f, 0xB8 + r);
		emit_imm(f, diff_rand_value(), 8);
		f = newf("movw r%dw,imm16 (b%x)", 8 + r, 8 + r);
		emit(f, 0x66);
		emit(f, 0x41);
		emit(f, 0xB8 + r);
		emit_imm(f, diff_rand(), 2);
	}
	/* MOV with a 64-bit absolute address (moffs) */
	static const struct { const char *n; uint8_t pfx, op; } moffs[] = {
		{ "movb al,[moffs]", 0, 0xA0 }, { "movq rax,[moffs]", 0x48, 0xA1 }, { "movw ax,[moffs]", 0x66, 0xA1 },
		{ "movb [moffs],al", 0, 0xA2 }, { "movl [moffs],eax", 0, 0xA3 }, { "movq [moffs],rax", 0x48, 0xA3 },
	};
	for (unsigned k = 0; k < sizeof(moffs) / sizeof(moffs[0]); k++) {
		struct diff_form *f = newf("%s", moffs[k].n);
		if (moffs[k].pfx)
			emit(f, moffs[k].pfx);
		emit(f, moffs[k].op);
		emit_imm(f, DATA_ADDR + 0x100 + k * 8 + 3, 8);
	}
	/* LOCK on what cannot be locked: #UD */
	BYTES("lock add rcx,rax (#UD)", 0xF0, 0x48, 0x01, 0xC1);
	BYTES("lock cmp [rbx],ecx (#UD)", 0xF0, 0x39, 0x0B);
	BYTES("lock mov [rbx],ecx (#UD)", 0xF0, 0x89, 0x0B);
	BYTES("lock bt [rbx],ecx (#UD)", 0xF0, 0x0F, 0xA3, 0x0B);
	BYTES("lock inc edx (#UD)", 0xF0, 0xFF, 0xC2);
	BYTES("lock nop (#UD)", 0xF0, 0x90);
	BYTES("lock movdqa xmm1,[rbx] (#UD)", 0xF0, 0x66, 0x0F, 0x6F, 0x0B);
	BYTES("lock fld st1 (#UD)", 0xF0, 0xD9, 0xC1);
	BYTES("xlat", 0xD7);
	BYTES("xlat (rex.w)", 0x48, 0xD7);
	BYTES("std", 0xFD);
	BYTES("fwait", 0x9B);
	BYTES("pause", 0xF3, 0x90);
}

static void gen_shift_more(void)
{
	for (int op = 0; op < 8; op++)
		for (int size = 1; size <= 8; size *= 2) {
			/* by 1 on a register, by CL and by imm8 on memory; /6 is SHL's alias */
			struct diff_form *f = newf("%s%s r15,1", shift_names[op], sz(size));
			enc(f, 0, size, size == 1 ? "D0" : "D1", op, 15, false);
			f->kind = (uint8_t)(op | 0x20);
			f->undef_flags_fn = shift_undef;
			f = newf("%s%s [rbx],cl", shift_names[op], sz(size));
			enc(f, 0, size, size == 1 ? "D2" : "D3", op, 0, true);
			f->kind = (uint8_t)(op | 0x10);
			f->undef_flags_fn = shift_undef;
			f = newf("%s%s [rbx],imm8", shift_names[op], sz(size));
			enc(f, 0, size, size == 1 ? "C0" : "C1", op, 0, true);
			emit(f, (int)(diff_rand() % 70));
			f->kind = (uint8_t)op;
			f->undef_flags_fn = shift_undef;
			if (op == 6) {
				f = newf("sal%s r12,cl", sz(size));
				enc(f, 0, size, size == 1 ? "D2" : "D3", op, 12, false);
				f->kind = (uint8_t)(op | 0x10);
				f->undef_flags_fn = shift_undef;
				f = newf("sal%s rax,imm8", sz(size));
				enc(f, 0, size, size == 1 ? "C0" : "C1", op, 0, false);
				emit(f, (int)(diff_rand() % 70));
				f->kind = (uint8_t)op;
				f->undef_flags_fn = shift_undef;
				f = newf("sal%s [rbx],1", sz(size));
				enc(f, 0, size, size == 1 ? "D0" : "D1", op, 0, true);
				f->kind = (uint8_t)(op | 0x20);
				f->undef_flags_fn = shift_undef;
			}
		}
	for (int size = 2; size <= 8; size *= 2)
		for (int right = 0; right < 2; right++) {
			struct diff_form *f = newf("sh%sd%s r13,r14,imm8", right ? "r" : "l", sz(size));
			enc(f, 0, size, right ? "0FAC" : "0FA4", 14, 13, false);
			emit(f, (int)(diff_rand() % 40));
			f->undef_flags_fn = shld_undef;
			f->undef_result = shld_undef_result;
			f = newf("sh%sd%s [rbx],rdx,cl", right ? "r" : "l", sz(size));
			enc(f, 0, size, right ? "0FAD" : "0FA5", 2, 0, true);
			f->kind = 0x10;
			f->undef_flags_fn = shld_undef;
			f->setup = setup_cl_small;
		}
}

static void gen_0f_more(void)
{
	for (int cc = 0; cc < 16; cc++) {
		char o[8];
		snprintf(o, sizeof(o), "0F%02X", 0x40 + cc);
		struct diff_form *f = newf("cmov%x rdx,[rbx]", cc);
		enc(f, 0, 8, o, 2, 0, true);
		f = newf("cmov%xw r9,[rbx]", cc);
		enc(f, 0, 2, o, 9, 0, true);
		f = newf("set%x [rbx]", cc);
		emit(f, 0x0F);
		emit(f, 0x90 + cc);
		emit(f, 0x03);
	}
	/* BT*: "The ZF flag is unaffected. The OF, SF, AF, and PF flags are undefined." */
	for (int k = 0; k < 4; k++)
		for (int size = 2; size <= 8; size *= 2) {
			static const char *const bt_names[4] = { "bt", "bts", "btr", "btc" };
			struct diff_form *f = newf("%s%s r11,imm8", bt_names[k], sz(size));
			enc(f, 0, size, "0FBA", 4 + k, 11, false);
			emit(f, (int)(diff_rand() & 0xFF));
			f->undef_flags = FL_OF | FL_SF | FL_AF | FL_PF;
		}
	for (int size = 2; size <= 8; size *= 2) {
		for (int r = 0; r < 2; r++) {
			/* BSF/BSR: "The CF, OF, SF, AF, and PF flags are undefined." The
			 * destination for a zero source ("undefined") is compared: the
			 * hardware leaves it unchanged, and so does the emulator. */
			struct diff_form *f = newf("%s%s rdx,[rbx]", r ? "bsr" : "bsf", sz(size));
			enc(f, 0, size, r ? "0FBD" : "0FBC", 2, 0, true);
			f->undef_flags = FL_CF | FL_OF | FL_SF | FL_AF | FL_PF;
		}
		struct diff_form *f = newf("popcnt%s rdx,[rbx]", sz(size));
		enc(f, 0xF3, size, "0FB8", 2, 0, true);
		f = newf("xadd%s r9,rsi", sz(size));
		enc(f, 0, size, "0FC1", 6, 9, false);
	}
	struct diff_form *f = BYTES("lock cmpxchgb [rbx],sil", 0xF0, 0x40, 0x0F, 0xB0, 0x33);
	f = newf("cmpxchgb dil,sil");
	enc(f, 0, 1, "0FB0", 6, 7, false);
	memmove(f->bytes + 1, f->bytes, f->len);
	f->bytes[0] = 0x40;
	f->len++;
	f = newf("cmpxchgb ah,cl");
	enc(f, 0, 1, "0FB0", 1, 4, false);
	f = newf("lock xaddb [rbx],dl");
	emit(f, 0xF0);
	enc(f, 0, 1, "0FC0", 2, 0, true);
	f = newf("xaddb ch,bl");
	enc(f, 0, 1, "0FC0", 3, 5, false);
	for (int r = 0; r < 8; r++) {
		f = newf("bswapq r%d", 8 + r);
		emit(f, 0x49);
		emit(f, 0x0F);
		emit(f, 0xC8 + r);
		f = newf("bswapl r%dd", 8 + r);
		emit(f, 0x41);
		emit(f, 0x0F);
		emit(f, 0xC8 + r);
	}
	f = newf("rep cmpxchg8b [rbx]");
	emit(f, 0xF3);
	emit(f, 0x0F);
	emit(f, 0xC7);
	emit(f, 0x0B);
	/* hint NOPs and prefetches: no architectural effect */
	for (int reg = 0; reg < 8; reg++)
		for (int mem = 0; mem < 2; mem++) {
			f = newf("prefetch 0f18 /%d %s", reg, mem ? "[rbx]" : "rax");
			enc(f, 0, 4, "0F18", reg, 0, mem);
			f = newf("prefetch 0f0d /%d %s", reg, mem ? "[rbx]" : "rax");
			enc(f, 0, 4, "0F0D", reg, 0, mem);
		}
	for (int op = 0x19; op <= 0x1F; op++)
		for (int mem = 0; mem < 2; mem++) {
			char o[8];
			snprintf(o, sizeof(o), "0F%02X", op);
			f = newf("nop 0f%02x %s", op, mem ? "[rbx]" : "rcx");
			enc(f, 0, 4, o, 2, 1, mem);
		}
	f = newf("endbr64");
	emit(f, 0xF3); emit(f, 0x0F); emit(f, 0x1E); emit(f, 0xFA);
	/* fences, CLFLUSH, MXCSR and FXSAVE/FXRSTOR through memory */
	BYTES("lfence", 0x0F, 0xAE, 0xE8);
	BYTES("mfence", 0x0F, 0xAE, 0xF0);
	BYTES("sfence", 0x0F, 0xAE, 0xF8);
	BYTES("clflush [rbx]", 0x0F, 0xAE, 0x3B);
	BYTES("stmxcsr [rbx]", 0x0F, 0xAE, 0x1B);
	/* FXSAVE: FOP, FIP and FDP (bytes 6-23) are implementation-specific,
	 * and so are MXCSR_MASK's bits above 15 (bytes 28-31: AMD's MM bit
	 * 17): the forms clear them with `and dword [rbx+28],0xffff` */
	f = BYTES("fxsave [rbx]", 0x0F, 0xAE, 0x03, 0x81, 0x63, 0x1C, 0xFF, 0xFF, 0x00, 0x00);
	f->mem_skip_off = 6;
	f->mem_skip_len = 18;
	f = BYTES("fxsave64 [rbx]", 0x48, 0x0F, 0xAE, 0x03, 0x81, 0x63, 0x1C, 0xFF, 0xFF, 0x00, 0x00);
	f->mem_skip_off = 6;
	f->mem_skip_len = 18;
	/* FXRSTOR of an image FXSAVE wrote, with ST0 and XMM2 changed in memory */
	f = BYTES("fxsave; change; fxrstor", 0x0F, 0xAE, 0x03, 0x88, 0x43, 0x21, 0x88, 0x83, 0xC5, 0x00, 0x00, 0x00,
		  0x0F, 0xAE, 0x0B, 0x81, 0x63, 0x1C, 0xFF, 0xFF, 0x00, 0x00);
	f->mem_skip_off = 6;
	f->mem_skip_len = 18;
	f = BYTES("fxsave64; fxrstor64", 0x48, 0x0F, 0xAE, 0x03, 0x48, 0x0F, 0xAE, 0x0B, 0x81, 0x63, 0x1C, 0xFF, 0xFF,
		  0x00, 0x00);
	f->mem_skip_off = 6;
	f->mem_skip_len = 18;
	/* a REP prefix on group 15 memory forms */
	for (int reg = 0; reg < 8; reg++) {
		if (reg == 4 || reg == 5 || reg == 6)
			continue;
		f = newf("f3 0f ae /%d [rbx]", reg);
		emit(f, 0xF3);
		enc(f, 0, 4, "0FAE", reg, 0, true);
		f->mem_skip_off = 6;
		f->mem_skip_len = 18;
	}
}

/* x87 encodings without an ST(i) operand that forms.c leaves out:
 * FENI/FDISI/FSETPM (no-ops since the 80287), DB E5-E7, FFREEP. */
static void gen_x87_more(void)
{
	for (int rm = 0; rm < 8; rm++) {
		if (rm == 2 || rm == 3)
			continue; /* FNCLEX, FNINIT: forms.c */
		struct diff_form *f = newf("db e%d", rm);
		emit(f, 0xDB);
		emit(f, 0xE0 + rm);
	}
	/* FFREEP (undocumented; FFREE's flags): "C0, C1, C2, C3 undefined" */
	struct diff_form *f = newf("ffreep st1");
	emit(f, 0xDF);
	emit(f, 0xC1);
	f->st_valid = 2;
	f->fsw_undef = FSW_CC;
}

static void setup_rbp(uint64_t *gpr);

/* ------------------------------------------------------------------ */
/* addressing: ModRM/SIB/displacement forms (forms elsewhere use [rbx]) */

/* LEA computes the address without touching memory: any register
 * contents. dst, mod, rm (0-15 with REX.B), and for rm 4: SIB. */
static void lea_form(int size, bool a32, int mod, int rm, int scale, int index, int base)
{
	static const char *const r64[16] = { "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
					     "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15" };
	const int dst = 10;
	char addr[40];
	if ((rm & 7) == 4)
		snprintf(addr, sizeof(addr), "%s+%s*%d", (base & 7) == 5 && mod == 0 ? "-" : r64[base],
			 index == 4 ? "-" : r64[index], 1 << scale);
	else
		snprintf(addr, sizeof(addr), "%s", (rm & 7) == 5 && mod == 0 ? "rip" : r64[rm]);
	struct diff_form *f = newf("lea%s%s [%s]%s", sz(size), a32 ? " (67)" : "", addr,
				   mod == 1 ? "+d8" : mod == 2 || ((rm & 7) == 5 && mod == 0) ? "+d32" : "");
	if (a32)
		emit(f, 0x67);
	if (size == 2)
		emit(f, 0x66);
	int b = (rm & 7) == 4 ? base : rm;
	int rex = 0x40 | (size == 8 ? 8 : 0) | (dst >= 8 ? 4 : 0) | ((rm & 7) == 4 && index >= 8 ? 2 : 0) | (b >= 8 ? 1 : 0);
	emit(f, rex);
	emit(f, 0x8D);
	emit(f, mod << 6 | (dst & 7) << 3 | (rm & 7));
	if ((rm & 7) == 4)
		emit(f, scale << 6 | (index & 7) << 3 | (base & 7));
	bool disp32 = mod == 2 || (mod == 0 && ((rm & 7) == 5 || ((rm & 7) == 4 && (base & 7) == 5)));
	if (mod == 1)
		emit_imm(f, diff_rand(), 1);
	else if (disp32)
		emit_imm(f, diff_rand_value(), 4);
}

/* base and index registers of the memory forms: bases in the data page,
 * indexes small */
static void setup_addr(uint64_t *gpr)
{
	gpr[R_RSI] = DATA_ADDR + 0x200 + diff_rand() % 256;
	gpr[R_RBP] = DATA_ADDR + 0x300 + diff_rand() % 256;
	gpr[R_R12] = DATA_ADDR + 0x400 + diff_rand() % 256;
	gpr[R_R13] = DATA_ADDR + 0x500 + diff_rand() % 256;
	gpr[R_RDI] = diff_rand() % 64;
	gpr[R_R9] = diff_rand() % 64;
}

static void gen_addressing(void)
{
	for (int mod = 0; mod < 3; mod++)
		for (int rm = 0; rm < 16; rm++) {
			if ((rm & 7) == 4)
				continue;
			lea_form(8, false, mod, rm, 0, 0, 0);
		}
	for (int mod = 0; mod < 3; mod++) {
		for (int base = 0; base < 16; base++)
			lea_form(8, false, mod, 4, (int)(diff_rand() % 4), 1, base);
		for (int index = 0; index < 16; index++)
			lea_form(8, false, mod, 4, (int)(diff_rand() % 4), index, 0);
		for (int scale = 0; scale < 4; scale++)
			lea_form(8, false, mod, 4, scale, 14, 13);
	}
	/* 32-bit addresses (67: wrap at 4 GiB), 32- and 16-bit destinations */
	static const int sib[][3] = { { 0, 1, 2 }, { 3, 5, 5 }, { 2, 12, 4 }, { 1, 4, 13 } };
	for (int mod = 0; mod < 3; mod++)
		for (unsigned k = 0; k < 4; k++) {
			lea_form(8, true, mod, 4, sib[k][0], sib[k][1], sib[k][2]);
			lea_form(4, false, mod, 4, sib[k][0], sib[k][1], sib[k][2]);
			lea_form(2, false, mod, 4, sib[k][0], sib[k][1], sib[k][2]);
			lea_form(4, true, mod, k == 3 ? 13 : 5, 0, 0, 0);
		}
	/* loads, stores and read-modify-write through SIB and displacements
	 * (the fast paths' [base+disp] forms among them) */
	static const struct { const char *n; uint8_t b[9]; int len; } mem[] = {
		{ "mov rax,[rsi+rdi*4+d8]", { 0x48, 0x8B, 0x44, 0xBE, 0x10 }, 5 },
		{ "mov rdx,[rbp+d8]", { 0x48, 0x8B, 0x55, 0xF8 }, 4 },
		{ "mov ecx,[r12+d32]", { 0x41, 0x8B, 0x8C, 0x24, 0x40, 0x01, 0x00, 0x00 }, 8 },
		{ "mov r8,[r13+r9*8]", { 0x4F, 0x8B, 0x44, 0xCD, 0x00 }, 5 },
		{ "mov r11d,[rsp+d8]", { 0x44, 0x8B, 0x5C, 0x24, 0xF0 }, 5 },
		{ "mov [rsi+rdi*2+d32],rdx", { 0x48, 0x89, 0x94, 0x7E, 0x00, 0x01, 0x00, 0x00 }, 8 },
		{ "mov [rbp+r9*1],cl", { 0x42, 0x88, 0x4C, 0x0D, 0x00 }, 5 },
		{ "movzx eax,word [r12+rdi*8+d8]", { 0x41, 0x0F, 0xB7, 0x44, 0xFC, 0x08 }, 6 },
		{ "add [r13+rdi*2-8],rax", { 0x49, 0x01, 0x44, 0x7D, 0xF8 }, 5 },
		{ "sub rcx,[rsi+d8]", { 0x48, 0x2B, 0x4E, 0x18 }, 4 },
		{ "cmp [rbp+rdi*4],edx", { 0x39, 0x54, 0xBD, 0x00 }, 4 },
		{ "inc qword [rsi+r9*8+d8]", { 0x4A, 0xFF, 0x44, 0xCE, 0x20 }, 5 },
		{ "mov eax,[esi+edi*4+d8] (67)", { 0x67, 0x8B, 0x44, 0xBE, 0x10 }, 5 },
		{ "movdqu xmm3,[rsi+rdi*1+d8]", { 0xF3, 0x0F, 0x6F, 0x5C, 0x3E, 0x07 }, 6 },
		{ "fld qword [r13+r9*8]", { 0x43, 0xDD, 0x44, 0xCD, 0x00 }, 5 },
	};
	for (unsigned k = 0; k < sizeof(mem) / sizeof(mem[0]); k++) {
		struct diff_form *f = bytes_form(mem[k].n, mem[k].b, mem[k].len);
		f->setup = setup_addr;
		if (mem[k].b[1] == 0xDD)
			f->st_free = 1; /* FLD pushes into an empty register */
	}
	/* RIP-relative loads of the instruction's own bytes */
	BYTES("mov eax,[rip-6]", 0x8B, 0x05, 0xFA, 0xFF, 0xFF, 0xFF);
	BYTES("cmp [rip-6],cl", 0x38, 0x0D, 0xFA, 0xFF, 0xFF, 0xFF);
}

static void setup_gs_offsets(uint64_t *gpr)
{
	gpr[R_RSI] = 0x100 + diff_rand() % 256;                 /* GS-relative */
	gpr[R_RDI] = DATA_ADDR + 0x600 + diff_rand() % 256;     /* ES (base 0) */
}

/* Prefix handling: segment overrides that 64-bit mode ignores, GS with a
 * base (the data area), REX followed by a legacy prefix (REX ignored) or
 * preceded by one, repeated
 * prefixes, branch hints, and the 15-byte limit (#GP beyond it). */
static void gen_prefixes(void)
{
	static const uint8_t segs[4] = { 0x26, 0x2E, 0x36, 0x3E };
	for (int k = 0; k < 4; k++) {
		struct diff_form *f = newf("%02x: mov rax,[rbx]", segs[k]);
		emit(f, segs[k]); emit(f, 0x48); emit(f, 0x8B); emit(f, 0x03);
		f = newf("%02x: add [rbx],ecx", segs[k]);
		emit(f, segs[k]); emit(f, 0x01); emit(f, 0x0B);
		f = newf("%02x: jnz (hint)", segs[k]);
		emit(f, segs[k]); emit(f, 0x75); emit(f, 2); emit(f, 0xFF); emit(f, 0xC0);
	}
	/* GS overrides: GS base is the data area on both sides (DIFF_NEEDS_GS),
	 * RSI an offset into it */
	static const struct { const char *n; uint8_t b[12]; int len; } gs[] = {
		{ "gs: mov rax,[rsi]", { 0x65, 0x48, 0x8B, 0x06 }, 4 },
		{ "gs: add [rsi+8],ecx", { 0x65, 0x01, 0x4E, 0x08 }, 4 },
		{ "gs: lock xadd [rsi],rdx", { 0x65, 0xF0, 0x48, 0x0F, 0xC1, 0x16 }, 6 },
		{ "gs: movdqu xmm1,[rsi]", { 0x65, 0xF3, 0x0F, 0x6F, 0x0E }, 5 },
		{ "gs: mov eax,[moffs 0x208]", { 0x65, 0xA1, 0x08, 0x02, 0, 0, 0, 0, 0, 0 }, 10 },
		{ "gs: movsb (source)", { 0x65, 0xA4 }, 2 },
		{ "gs: lodsq", { 0x65, 0x48, 0xAD }, 3 },
	};
	for (unsigned k = 0; k < sizeof(gs) / sizeof(gs[0]); k++) {
		struct diff_form *g = bytes_form(gs[k].n, gs[k].b, gs[k].len);
		g->needs = DIFF_NEEDS_GS;
		g->setup = setup_gs_offsets;
		g->df = true;
	}
	BYTES("rex.w 66 add eax,ecx (rex ignored)", 0x48, 0x66, 0x01, 0xC8);
	BYTES("66 rex.w add rax,rcx", 0x66, 0x48, 0x01, 0xC8);
	BYTES("rex.b 90 (xchg r8,rax)", 0x41, 0x90);
	BYTES("rex.b f3 90 (pause, rex ignored)", 0x41, 0xF3, 0x90);
	BYTES("66 66 66 add ax,cx", 0x66, 0x66, 0x66, 0x01, 0xC8);
	BYTES("rex rex.w add (last rex)", 0x40, 0x48, 0x01, 0xC8);
	BYTES("rex.w rex add (last rex)", 0x48, 0x40, 0x01, 0xC8);
	BYTES("67 67 lea", 0x67, 0x67, 0x48, 0x8D, 0x04, 0x0B);
	struct diff_form *f = BYTES("f2 f3 movsb (last wins)", 0xF2, 0xF3, 0xA4);
	f->setup = setup_string;
	f->df = true;
	f = BYTES("f3 f2 cmpsb (last wins)", 0xF3, 0xF2, 0xA6);
	f->setup = setup_string;
	f->df = true;
	/* 15 bytes: fine; 16: #GP */
	BYTES("15-byte add", 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x67, 0x48, 0x81, 0x84, 0x0B,
	      0x10, 0x00);
	BYTES("16-byte add (#GP)", 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x67, 0x48, 0x81, 0x84,
	      0x0B, 0x10, 0x00);
}

/* Memory operands that cross the 4 KiB page boundary in the middle of
 * the data area (the emulator splits them: mem.c), and REP MOVS/STOS
 * whose run crosses it (the page-by-page fast paths). */
static void setup_string_cross(uint64_t *gpr)
{
	gpr[R_RSI] = DATA_ADDR + 0xF00 + diff_rand() % 256;
	gpr[R_RDI] = DATA_ADDR + 0xF40 + diff_rand() % 256;
	gpr[R_RCX] = diff_rand() % 300;
}

static void gen_page_cross(void)
{
	static const struct { const char *n; uint8_t b[8]; int len; } ops[] = {
		{ "mov rax,[rbx]", { 0x48, 0x8B, 0x03 }, 3 },
		{ "mov ecx,[rbx]", { 0x8B, 0x0B }, 2 },
		{ "mov dx,[rbx]", { 0x66, 0x8B, 0x13 }, 3 },
		{ "mov [rbx],rsi", { 0x48, 0x89, 0x33 }, 3 },
		{ "mov [rbx],edi", { 0x89, 0x3B }, 2 },
		{ "add [rbx],r9", { 0x4C, 0x01, 0x0B }, 3 },
		{ "xchg [rbx],rcx", { 0x48, 0x87, 0x0B }, 3 },
		{ "lock xadd [rbx],rdx", { 0xF0, 0x48, 0x0F, 0xC1, 0x13 }, 5 },
		{ "lock cmpxchg [rbx],rsi", { 0xF0, 0x48, 0x0F, 0xB1, 0x33 }, 5 },
		{ "lock inc dword [rbx]", { 0xF0, 0xFF, 0x03 }, 3 },
		{ "movdqu xmm1,[rbx]", { 0xF3, 0x0F, 0x6F, 0x0B }, 4 },
		{ "movdqu [rbx],xmm2", { 0xF3, 0x0F, 0x7F, 0x13 }, 4 },
		{ "movq [rbx],xmm3", { 0x66, 0x0F, 0xD6, 0x1B }, 4 },
		{ "bts [rbx],ecx", { 0x0F, 0xAB, 0x0B }, 3 },
		{ "push [rbx]", { 0xFF, 0x33 }, 2 },
		{ "pop [rbx]", { 0x8F, 0x03 }, 2 },
		{ "fld tword [rbx]", { 0xDB, 0x2B }, 2 },
		{ "fstp tword [rbx]", { 0xDB, 0x3B }, 2 },
	};
	for (unsigned k = 0; k < sizeof(ops) / sizeof(ops[0]); k++)
		for (int off = 1; off <= 9; off += 4) {
			char nm[48];
			snprintf(nm, sizeof(nm), "%s at page end-%d", ops[k].n, off);
			struct diff_form *f = bytes_form(nm, ops[k].b, ops[k].len);
			f->mem_offset = (uint16_t)(0x1000 - off);
			if (ops[k].b[0] == 0xDB) {
				f->st_valid = ops[k].b[1] == 0x3B;
				f->st_free = ops[k].b[1] == 0x2B;
				f->fp = DIFF_MEM_M80;
			}
			if (ops[k].b[0] == 0x0F && ops[k].b[1] == 0xAB) {
				f->undef_flags = FL_OF | FL_SF | FL_AF | FL_PF;
				f->setup = setup_bt_offset;
			}
			if (ops[k].b[0] == 0xDB)
				f->fsw_undef = FSW_C0 | FSW_C2 | FSW_C3;
		}
	static const struct { const char *n; uint8_t b[3]; int len; } str[] = {
		{ "rep movsb (page cross)", { 0xF3, 0xA4 }, 2 }, { "rep movsq (page cross)", { 0xF3, 0x48, 0xA5 }, 3 },
		{ "rep stosb (page cross)", { 0xF3, 0xAA }, 2 }, { "rep stosd (page cross)", { 0xF3, 0xAB }, 2 },
		{ "repe cmpsb (page cross)", { 0xF3, 0xA6 }, 2 }, { "repne scasw (page cross)", { 0xF2, 0x66, 0xAF }, 3 },
	};
	for (unsigned k = 0; k < sizeof(str) / sizeof(str[0]); k++) {
		struct diff_form *f = bytes_form(str[k].n, str[k].b, str[k].len);
		f->setup = setup_string_cross;
		f->df = true;
	}
}

/* Operand sizes the coverage gate asks for (an encoding whose result
 * changes with 66 or REX.W needs a form of each size it has). */
static bool bswap16_undef(const struct diff_form *f, const uint64_t *gpr, int r)
{
	/* BSWAP: "When the BSWAP instruction references a 16-bit register,
	 * the result is undefined." */
	return r == f->kind;
}

static void gen_sizes(void)
{
	for (int op = 0; op < 8; op++)
		for (int imm8 = 0; imm8 < 2; imm8++) {
			struct diff_form *f = newf("%sw [rbx],imm%s", alu_names[op], imm8 ? "8" : "16");
			enc(f, 0, 2, imm8 ? "83" : "81", op, 0, true);
			emit_imm(f, diff_rand(), imm8 ? 1 : 2);
			f->undef_flags = ARITH_LOGIC_AF(op);
		}
	for (int cc = 0; cc < 16; cc++) {
		char o[8];
		snprintf(o, sizeof(o), "0F%02X", 0x40 + cc);
		struct diff_form *f = newf("cmov%xl esi,[rbx]", cc);
		enc(f, 0, 4, o, 6, 0, true);
	}
	for (int r = 0; r < 8; r++) {
		struct diff_form *f = newf("xchgw ax,r%dw", 8 + r);
		emit(f, 0x66); emit(f, 0x41); emit(f, 0x90 + r);
		f = newf("bswapw r%dw (undefined)", 8 + r);
		emit(f, 0x66); emit(f, 0x41); emit(f, 0x0F); emit(f, 0xC8 + r);
		f->kind = (uint8_t)(8 + r);
		f->undef_result = bswap16_undef;
	}
	for (int r = 0; r < 8; r++) { /* the no-REX encodings of 91-97 and BSWAP (keys per opcode) */
		struct diff_form *f;
		if (r) {
			f = newf("xchgw ax,reg%d", r);
			emit(f, 0x66); emit(f, 0x90 + r);
		}
		f = newf("bswapw reg%d (undefined)", r);
		emit(f, 0x66); emit(f, 0x0F); emit(f, 0xC8 + r);
		f->kind = (uint8_t)r;
		f->undef_result = bswap16_undef;
	}
	BYTES("xchg rax,rsp", 0x48, 0x94);
	BYTES("xchg ax,sp", 0x66, 0x94);
	BYTES("movsxd r9w,r14w (66)", 0x66, 0x45, 0x63, 0xCE);
	BYTES("movsxd cx,[rbx] (66)", 0x66, 0x63, 0x0B);
	BYTES("movsxd ecx,[rbx] (no rex.w)", 0x63, 0x0B);
	BYTES("pushw simm8", 0x66, 0x6A, 0x85);
	BYTES("test ecx,eax", 0x85, 0xC1);
	BYTES("popw r10w (8f)", 0x66, 0x41, 0x8F, 0xC2);
	BYTES("pushw r10w (ff /6)", 0x66, 0x41, 0xFF, 0xF2);
	struct diff_form *f = BYTES("movl eax,[moffs]", 0xA1);
	emit_imm(f, DATA_ADDR + 0x104, 8);
	BYTES("movw [rbx],imm16 (c7)", 0x66, 0xC7, 0x03, 0x34, 0x92);
	f = BYTES("enterw 8,1", 0x66, 0xC8, 0x08, 0x00, 0x01);
	f->setup = setup_rbp;
	f = BYTES("enterw 16,0; leavew", 0x66, 0xC8, 0x10, 0x00, 0x00, 0x66, 0xC9);
	f->setup = setup_rbp;
	/* x87 environment and state in the 16-bit format: FIP/FDP and their
	 * selectors (bytes 6-13) are implementation-specific */
	f = BYTES("fnstenv (16-bit) [rbx]", 0x66, 0xD9, 0x33);
	f->mem_skip_off = 6;
	f->mem_skip_len = 8;
	f = BYTES("fnstenv; fldenv (16-bit)", 0x66, 0xD9, 0x33, 0xC6, 0x43, 0x02, 0x00, 0x66, 0xD9, 0x23);
	f->mem_skip_off = 6;
	f->mem_skip_len = 8;
	f = BYTES("fnsave (16-bit) [rbx]", 0x66, 0xDD, 0x33);
	f->mem_skip_off = 6;
	f->mem_skip_len = 8;
	f = BYTES("fnsave; frstor (16-bit)", 0x66, 0xDD, 0x33, 0x66, 0xDD, 0x23);
	f->mem_skip_off = 6;
	f->mem_skip_len = 8;
	/* conversions and moves with the other GPR size */
	static const struct { const char *n; uint8_t b[6]; int len; uint8_t fp; } cv[] = {
		{ "cvtsi2ss xmm1,qword [rbx]", { 0xF3, 0x48, 0x0F, 0x2A, 0x0B }, 5, 0 },
		{ "cvtsi2sd xmm1,ecx", { 0xF2, 0x0F, 0x2A, 0xC9 }, 4, 0 },
		{ "cvtsi2sd xmm1,dword [rbx]", { 0xF2, 0x0F, 0x2A, 0x0B }, 4, 0 },
		{ "cvttss2si rcx,xmm2", { 0xF3, 0x48, 0x0F, 0x2C, 0xCA }, 5, 4 },
		{ "cvttss2si rcx,[rbx]", { 0xF3, 0x48, 0x0F, 0x2C, 0x0B }, 5, 4 },
		{ "cvttsd2si ecx,xmm2", { 0xF2, 0x0F, 0x2C, 0xCA }, 4, 8 },
		{ "cvttsd2si ecx,[rbx]", { 0xF2, 0x0F, 0x2C, 0x0B }, 4, 8 },
		{ "cvtss2si ecx,xmm2", { 0xF3, 0x0F, 0x2D, 0xCA }, 4, 4 },
		{ "cvtss2si ecx,[rbx]", { 0xF3, 0x0F, 0x2D, 0x0B }, 4, 4 },
		{ "cvtsd2si rcx,xmm2", { 0xF2, 0x48, 0x0F, 0x2D, 0xCA }, 5, 8 },
		{ "cvtsd2si rcx,[rbx]", { 0xF2, 0x48, 0x0F, 0x2D, 0x0B }, 5, 8 },
		{ "movq xmm1,[rbx] (66 w 6e)", { 0x66, 0x48, 0x0F, 0x6E, 0x0B }, 5, 0 },
		{ "movq rcx,xmm2 (66 w 7e)", { 0x66, 0x48, 0x0F, 0x7E, 0xD1 }, 5, 0 },
		{ "movq [rbx],xmm2 (66 w 7e)", { 0x66, 0x48, 0x0F, 0x7E, 0x13 }, 5, 0 },
		{ "rep cmpxchg16b [rbx]", { 0xF3, 0x48, 0x0F, 0xC7, 0x0B }, 5, 0 },
	};
	for (unsigned k = 0; k < sizeof(cv) / sizeof(cv[0]); k++) {
		f = bytes_form(cv[k].n, cv[k].b, cv[k].len);
		f->fp = cv[k].fp;
	}
	/* group 15 with 66 */
	f = BYTES("66 fxsave [rbx]", 0x66, 0x0F, 0xAE, 0x03, 0x81, 0x63, 0x1C, 0xFF, 0xFF, 0x00, 0x00);
	f->mem_skip_off = 6;
	f->mem_skip_len = 18;
	f = BYTES("66 fxsave; 66 fxrstor", 0x66, 0x0F, 0xAE, 0x03, 0x66, 0x0F, 0xAE, 0x0B);
	f->mem_skip_off = 6;
	f->mem_skip_len = 18;
	BYTES("66 stmxcsr; 66 ldmxcsr", 0x66, 0x0F, 0xAE, 0x1B, 0x66, 0x0F, 0xAE, 0x13);
	BYTES("66 stmxcsr [rbx]", 0x66, 0x0F, 0xAE, 0x1B);
}

/* String instructions with 32-bit addresses (67): ESI/EDI/ECX, garbage
 * in the upper halves of RSI/RDI/RCX, which they ignore and clear. */
static void setup_string_a32(uint64_t *gpr)
{
	setup_string(gpr);
	gpr[R_RSI] |= diff_rand() << 32;
	gpr[R_RDI] |= diff_rand() << 32;
	gpr[R_RCX] |= diff_rand() << 32;
}

static void gen_strings_a32(void)
{
	static const struct { const char *n; uint8_t b[4]; int len; } ops[] = {
		{ "a32 movsb", { 0x67, 0xA4 }, 2 }, { "a32 rep movsd", { 0x67, 0xF3, 0xA5 }, 3 },
		{ "a32 rep stosq", { 0x67, 0xF3, 0x48, 0xAB }, 4 }, { "a32 lodsw", { 0x67, 0x66, 0xAD }, 3 },
		{ "a32 repe cmpsb", { 0x67, 0xF3, 0xA6 }, 3 }, { "a32 repne scasd", { 0x67, 0xF2, 0xAF }, 3 },
		{ "a32 rep movsb", { 0x67, 0xF3, 0xA4 }, 3 }, { "a32 stosb", { 0x67, 0xAA }, 2 },
	};
	for (unsigned k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
		struct diff_form *f = bytes_form(ops[k].n, ops[k].b, ops[k].len);
		f->setup = setup_string_a32;
		f->df = true;
	}
	BYTES("a32 xlat", 0x67, 0xD7);
}

void gen_int_more(void)
{
	gen_strings_a32();
	gen_addressing();
	gen_prefixes();
	gen_page_cross();
	gen_sizes();
	gen_alu_more();
	gen_test_xchg_mov();
	gen_shift_more();
	gen_0f_more();
	gen_x87_more();
}

/* ------------------------------------------------------------------ */
/* control transfers and the stack */

static void setup_rbp(uint64_t *gpr)
{
	gpr[R_RBP] = DATA_ADDR + 0x1000 + (diff_rand() % 64) * 8;
}

/* POPF at CPL 3 with IOPL 0: the arithmetic flags, DF, AC... may change;
 * IF and IOPL must not (no fault); RF comes out 0. TF and AC stay clear
 * (a trap, alignment checks in the test program). */
static void setup_popf(uint64_t *gpr)
{
	gpr[R_RCX] = (gpr[R_RCX] & 0x213ED5) | 2;
}

void gen_control(void)
{
	/* PUSH/POP of every register, 64 and 16 bits */
	static const char *const reg64[8] = { "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi" };
	for (int r = 0; r < 8; r++) {
		char nm[48];
		snprintf(nm, sizeof(nm), "push %s", reg64[r]);
		BYTES(nm, 0x50 + r);
		snprintf(nm, sizeof(nm), "pop r%d", 8 + r);
		BYTES(nm, 0x41, 0x58 + r);
		if (r != 3) { /* pop rbx: the memory operand's base, keep it */
			snprintf(nm, sizeof(nm), "pop %s", reg64[r]);
			BYTES(nm, 0x58 + r);
		}
		snprintf(nm, sizeof(nm), "pushw r%dw", 8 + r);
		BYTES(nm, 0x66, 0x41, 0x50 + r);
		snprintf(nm, sizeof(nm), "popw r%dw", 8 + r);
		BYTES(nm, 0x66, 0x41, 0x58 + r);
	}
	struct diff_form *f;
	BYTES("push imm32", 0x68, 0x88, 0x99, 0xAA, 0xBB);
	BYTES("push simm8", 0x6A, 0x80);
	BYTES("pushw imm16", 0x66, 0x68, 0x34, 0x12);
	BYTES("pop r10 (8f)", 0x41, 0x8F, 0xC2);
	BYTES("pop [rbx] (8f)", 0x8F, 0x03);
	for (int reg = 1; reg < 8; reg++) {
		char nm[48];
		snprintf(nm, sizeof(nm), "8f /%d [rbx] (#UD)", reg);
		BYTES(nm, 0x8F, 0x03 | reg << 3, 0, 0, 0, 0, 0);
		snprintf(nm, sizeof(nm), "8f /%d rax (#UD)", reg);
		BYTES(nm, 0x8F, 0xC0 | reg << 3, 0, 0, 0, 0, 0);
	}
	BYTES("popw [rbx] (8f)", 0x66, 0x8F, 0x03);
	BYTES("push r10 (ff /6)", 0x41, 0xFF, 0xF2);
	BYTES("push [rbx] (ff /6)", 0xFF, 0x33);
	BYTES("pushw [rbx] (ff /6)", 0x66, 0xFF, 0x33);
	BYTES("pushfq", 0x9C);
	BYTES("pushfw", 0x66, 0x9C);
	f = BYTES("push rcx; popfq; pushfq; pop rdx", 0x51, 0x9D, 0x9C, 0x5A);
	f->setup = setup_popf;
	f = BYTES("push rcx; popfw; pushfq; pop rdx", 0x51, 0x66, 0x9D, 0x9C, 0x5A);
	f->setup = setup_popf;
	/* ENTER/LEAVE: nesting levels copy frame pointers from [rbp] down */
	static const uint8_t enter[][2] = { { 16, 0 }, { 8, 1 }, { 32, 2 }, { 0, 5 } };
	for (unsigned k = 0; k < 4; k++) {
		f = newf("enter %d,%d", enter[k][0], enter[k][1]);
		emit(f, 0xC8);
		emit(f, enter[k][0]);
		emit(f, 0);
		emit(f, enter[k][1]);
		f->setup = setup_rbp;
		f = newf("enter %d,%d; leave", enter[k][0], enter[k][1]);
		emit(f, 0xC8);
		emit(f, enter[k][0]);
		emit(f, 0);
		emit(f, enter[k][1]);
		emit(f, 0xC9);
		f->setup = setup_rbp;
	}
	f = BYTES("leave", 0xC9);
	f->setup = setup_rbp;
	f = BYTES("leavew", 0x66, 0xC9);
	f->setup = setup_rbp;

	/* conditional branches over `inc eax`, after the random flags and
	 * fused with a CMP/TEST before them (fast.c) */
	for (int cc = 0; cc < 16; cc++) {
		f = newf("j%x rel8", cc);
		emit(f, 0x70 + cc); emit(f, 2); emit(f, 0xFF); emit(f, 0xC0);
		f = newf("j%x rel32", cc);
		emit(f, 0x0F); emit(f, 0x80 + cc); emit_imm(f, 2, 4); emit(f, 0xFF); emit(f, 0xC0);
		f = newf("cmp rcx,rdx; j%x", cc);
		emit(f, 0x48); emit(f, 0x39); emit(f, 0xD1);
		emit(f, 0x70 + cc); emit(f, 2); emit(f, 0xFF); emit(f, 0xC0);
		f = newf("cmp esi,imm8; j%x rel32", cc);
		emit(f, 0x83); emit(f, 0xFE); emit_imm(f, diff_rand(), 1);
		emit(f, 0x0F); emit(f, 0x80 + cc); emit_imm(f, 2, 4); emit(f, 0xFF); emit(f, 0xC0);
		f = newf("test rdi,r8; j%x", cc);
		emit(f, 0x4C); emit(f, 0x85); emit(f, 0xC7);
		emit(f, 0x70 + cc); emit(f, 2); emit(f, 0xFF); emit(f, 0xC0);
	}
	static const char *const loops[4] = { "loopne", "loope", "loop", "jrcxz" };
	for (int k = 0; k < 4; k++) {
		f = newf("%s", loops[k]);
		emit(f, 0xE0 + k); emit(f, 2); emit(f, 0xFF); emit(f, 0xC0);
		f = newf("%s (67: ecx)", loops[k]);
		emit(f, 0x67); emit(f, 0xE0 + k); emit(f, 2); emit(f, 0xFF); emit(f, 0xC0);
	}
	f = BYTES("jmp rel8", 0xEB, 0x02, 0xFF, 0xC0);
	BYTES("jmp rel32", 0xE9, 0x02, 0x00, 0x00, 0x00, 0xFF, 0xC0);
	/* CALL pushes the return address; the form pops it into RCX */
	f = BYTES("call rel32; pop rcx", 0xE8, 0x02, 0x00, 0x00, 0x00, 0xFF, 0xC0, 0x59);
	BYTES("call; jmp; ret", 0xE8, 0x02, 0x00, 0x00, 0x00, 0xEB, 0x01, 0xC3);
	BYTES("call; jmp; ret 16", 0xE8, 0x02, 0x00, 0x00, 0x00, 0xEB, 0x03, 0xC2, 0x10, 0x00);
	/* indirect: the target from a RIP-relative LEA, in a register or [rbx] */
	f = BYTES("lea rdx,[rip]; jmp rdx", 0x48, 0x8D, 0x15, 0x04, 0x00, 0x00, 0x00, 0xFF, 0xE2, 0xFF, 0xC0);
	BYTES("lea; mov [rbx]; jmp [rbx]", 0x48, 0x8D, 0x15, 0x07, 0x00, 0x00, 0x00, 0x48, 0x89, 0x13, 0xFF, 0x23,
		  0xFF, 0xC0);
	BYTES("lea rdx,[rip]; call rdx; pop rcx", 0x48, 0x8D, 0x15, 0x04, 0x00, 0x00, 0x00, 0xFF, 0xD2, 0xFF,
		  0xC0, 0x59);
	BYTES("lea; mov [rbx]; call [rbx]; pop rcx", 0x48, 0x8D, 0x15, 0x07, 0x00, 0x00, 0x00, 0x48, 0x89, 0x13,
		  0xFF, 0x13, 0xFF, 0xC0, 0x59);
}
