/* The instruction forms under differential test, generated from small
 * encoding rules, with the flags the SDM leaves undefined for each.
 * To grow coverage, add a rule here. Memory operands are [rbx]. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accel/emu/cpu.h"
#include "diff.h"
#include "forms.h"

#define MAX_FORMS 8192
static struct diff_form forms[MAX_FORMS];
static unsigned nforms;

static const char *const rn[16] = { "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
				    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15" };

/* Register pairs (reg, rm) used for register forms: never RSP or RBX
 * (RBX holds the memory operand's address). */
static const int pairs[][2] = { { 0, 1 }, { 2, 9 }, { 14, 6 }, { 5, 11 }, { 7, 0 } };
#define NPAIRS (sizeof(pairs) / sizeof(pairs[0]))

struct diff_form *newf(const char *fmt, ...)
{
	if (nforms == MAX_FORMS) {
		fprintf(stderr, "emu-diff: more than %d forms: raise MAX_FORMS\n", MAX_FORMS);
		abort();
	}
	struct diff_form *f = &forms[nforms++];
	memset(f, 0, sizeof(*f));
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->name, sizeof(f->name), fmt, ap);
	va_end(ap);
	f->mem_offset = 0x100;
	return f;
}

void emit(struct diff_form *f, int b)
{
	if (f->len < sizeof(f->bytes))
		f->bytes[f->len++] = (uint8_t)b;
}

void emit_imm(struct diff_form *f, uint64_t v, int n)
{
	for (int k = 0; k < n; k++)
		emit(f, (int)((v >> (8 * k)) & 0xFF));
}

/* Encodes [pfx] [66] [REX] opcode modrm for size (1,2,4,8). mem: rm is [rbx]. */
void enc(struct diff_form *f, int mandatory_pfx, int size, const char *opc, int reg, int rm, bool mem)
{
	f->size = (uint8_t)size;
	if (size == 2)
		emit(f, 0x66);
	if (mandatory_pfx)
		emit(f, mandatory_pfx);
	int rex = 0x40 | (size == 8 ? 8 : 0) | (reg >= 8 ? 4 : 0) | (!mem && rm >= 8 ? 1 : 0);
	if (rex != 0x40)
		emit(f, rex);
	for (const char *p = opc; *p; p += 2) {
		unsigned b;
		sscanf(p, "%2x", &b);
		emit(f, (int)b);
	}
	if (mem)
		emit(f, ((reg & 7) << 3) | 3);
	else
		emit(f, 0xC0 | ((reg & 7) << 3) | (rm & 7));
}

const char *sz(int size)
{
	return size == 1 ? "b" : size == 2 ? "w" : size == 4 ? "l" : "q";
}

/* ------------------------------------------------------------------ */
/* Undefined-flag rules (the SDM's words in the comments) */

static unsigned count_of(const struct diff_form *f, const uint64_t *gpr, bool cl)
{
	if (f->kind & 0x20)
		return 1;
	return (unsigned)(cl ? gpr[R_RCX] : f->bytes[f->len - 1]) & (f->size == 8 ? 63 : 31);
}

/* SHL/SHR/SAR: "The OF flag is affected only on 1-bit shifts ...
 * For a non-zero count, the AF flag is undefined." and "CF ... is
 * undefined for SHL and SHR instructions where the count is greater than
 * or equal to the size (in bits) of the destination operand." */
uint32_t shift_undef(const struct diff_form *f, const uint64_t *gpr, uint64_t fl)
{
	unsigned n = count_of(f, gpr, f->kind & 0x10);
	unsigned op = f->kind & 7;
	uint32_t u = 0;
	if (op <= 3) { /* ROL/ROR/RCL/RCR: "The OF flag is defined only for the 1-bit rotates" */
		if (n != 1)
			u |= FL_OF;
		return u;
	}
	if (n != 0)
		u |= FL_AF;
	if (n > 1)
		u |= FL_OF;
	if (op != 7 && n >= f->size * 8u)
		u |= FL_CF;
	return u;
}

/* SHLD/SHRD: "For a 1-bit shift, the OF flag is set if a sign change
 * occurred; otherwise, it is cleared. For shifts greater than 1 bit, the
 * OF flag is undefined. If a shift occurs, the AF flag is undefined. If
 * the count operand is greater than the operand size, the flags are
 * undefined." */
uint32_t shld_undef(const struct diff_form *f, const uint64_t *gpr, uint64_t fl)
{
	unsigned n = count_of(f, gpr, f->kind & 0x10);
	uint32_t u = 0;
	if (n)
		u |= FL_AF;
	if (n > 1)
		u |= FL_OF;
	if (n > f->size * 8u)
		u |= FL_ARITH;
	return u;
}

/* SHLD/SHRD: "If the count is greater than the operand size, the result
 * is undefined." */
bool shld_undef_result(const struct diff_form *f, const uint64_t *gpr, int r)
{
	unsigned n = count_of(f, gpr, f->kind & 0x10);
	return n > f->size * 8u && r == (f->kind & 0xF0) >> 4 ? false : n > f->size * 8u;
}

/* BSF/BSR: "If the content of the source operand is 0, the content of the
 * destination operand is undefined." */
bool bsf_undef_result(const struct diff_form *f, const uint64_t *gpr, int r)
{
	int src = f->kind & 15, dst = f->kind >> 4;
	return r == dst && (gpr[src] & (f->size == 8 ? ~0ULL : (1ULL << (f->size * 8)) - 1)) == 0;
}

void setup_bt_offset(uint64_t *gpr)
{
	/* keep register bit offsets inside the data page */
	for (int r = 0; r < 16; r++)
		gpr[r] = (uint64_t)((int64_t)(gpr[r] % 2000) - 500);
}

static void setup_div(uint64_t *gpr)
{
	/* mostly non-faulting divisions: small dividends, then random */
	if (diff_rand() & 1)
		gpr[R_RDX] = (diff_rand() & 1) ? 0 : ~0ULL;
}

void setup_string(uint64_t *gpr)
{
	gpr[R_RSI] = 0x10100000 + 0x400 + diff_rand() % 256;
	gpr[R_RDI] = 0x10100000 + 0x900 + diff_rand() % 256;
	gpr[R_RCX] = diff_rand() % 40;
}

static uint64_t rand_string_qword(void);

uint64_t diff_rand_fp(int lane_bytes)
{
	/* lane_bytes 1: text for the string instructions */
	if (lane_bytes == 1)
		return rand_string_qword();
	/* mix of ordinary numbers, zeros, infinities, NaNs and random bits */
	uint64_t r = diff_rand();
	if (lane_bytes == 8) {
		static const double specials[] = { 0.0, -0.0, 1.0, -1.5, 1e300, -1e-300, 3.0e9, -2.5e9,
						   1.0 / 0.0, -1.0 / 0.0, 0.5, 123456789.75 };
		double d;
		switch (r % 4) {
		case 0: d = specials[(r >> 8) % 12]; break;
		case 1: d = (double)(int64_t)(diff_rand() % 2000000) / 7.0 - 100000.0; break;
		case 2: memcpy(&d, &r, 8); return r;
		default: d = (double)(int32_t)diff_rand(); break;
		}
		uint64_t v;
		memcpy(&v, &d, 8);
		return v;
	}
	uint32_t lanes[2];
	for (int k = 0; k < 2; k++) {
		static const float specials[] = { 0.0f, -0.0f, 1.0f, -1.5f, 1e30f, -1e-30f, 3.0e9f, -2.5e9f,
						  1.0f / 0.0f, -1.0f / 0.0f, 0.5f, 12345.75f };
		uint64_t q = diff_rand();
		float f;
		switch (q % 4) {
		case 0: f = specials[(q >> 8) % 12]; break;
		case 1: f = (float)(int64_t)(diff_rand() % 200000) / 7.0f - 10000.0f; break;
		case 2: lanes[k] = (uint32_t)q; continue;
		default: f = (float)(int16_t)diff_rand(); break;
		}
		memcpy(&lanes[k], &f, 4);
	}
	return lanes[0] | (uint64_t)lanes[1] << 32;
}

/* ------------------------------------------------------------------ */

static void gen_alu(void)
{
	static const char *const names[8] = { "add", "or", "adc", "sbb", "and", "sub", "xor", "cmp" };
	for (int op = 0; op < 8; op++) {
		/* "AND/OR/XOR: ... The state of the AF flag is undefined." */
		uint32_t undef = (op == 1 || op == 4 || op == 6) ? FL_AF : 0;
		for (int size = 1; size <= 8; size *= 2) {
			char o[4];
			for (unsigned p = 0; p < NPAIRS; p++) {
				snprintf(o, sizeof(o), "%02X", op * 8 + (size > 1));
				struct diff_form *f = newf("%s%s %s,%s", names[op], sz(size), rn[pairs[p][1]], rn[pairs[p][0]]);
				enc(f, 0, size, o, pairs[p][0], pairs[p][1], false);
				f->undef_flags = undef;
			}
			snprintf(o, sizeof(o), "%02X", op * 8 + (size > 1));
			struct diff_form *f = newf("%s%s [rbx],rcx", names[op], sz(size));
			enc(f, 0, size, o, 1, 0, true);
			f->undef_flags = undef;
			snprintf(o, sizeof(o), "%02X", op * 8 + 2 + (size > 1));
			f = newf("%s%s rdx,[rbx]", names[op], sz(size));
			enc(f, 0, size, o, 2, 0, true);
			f->undef_flags = undef;
			f = newf("%s%s rsi,imm", names[op], sz(size));
			enc(f, 0, size, size == 1 ? "80" : "81", op, 6, false);
			emit_imm(f, diff_rand(), size == 1 ? 1 : size == 2 ? 2 : 4);
			f->undef_flags = undef;
			if (size > 1) {
				f = newf("%s%s r9,imm8", names[op], sz(size));
				enc(f, 0, size, "83", op, 9, false);
				emit_imm(f, diff_rand(), 1);
				f->undef_flags = undef;
			}
			f = newf("lock %s%s [rbx],rcx", names[op], sz(size));
			if (op != 7) {
				emit(f, 0xF0);
				enc(f, 0, size, o, 1, 0, true);
				f->bytes[f->len - 2] -= 2; /* r/m,reg direction */
				f->undef_flags = undef;
			} else {
				nforms--;
			}
		}
	}
	/* accumulator forms and 8-bit high registers */
	struct diff_form *f = newf("addb al,imm8");
	emit(f, 0x04);
	emit(f, 0x7F);
	f = newf("subq rax,imm32");
	emit(f, 0x48);
	emit(f, 0x2D);
	emit_imm(f, 0x80000001, 4);
	f = newf("adcb ah,bh");
	emit(f, 0x10);
	emit(f, 0xFC);
	f = newf("sbbb ch,dl");
	emit(f, 0x18);
	emit(f, 0xD5);
}

static void gen_unary(void)
{
	static const char *const names[] = { "not", "neg", "inc", "dec" };
	for (int k = 0; k < 4; k++)
		for (int size = 1; size <= 8; size *= 2)
			for (int mem = 0; mem < 2; mem++) {
				struct diff_form *f = newf("%s%s %s", names[k], sz(size), mem ? "[rbx]" : "r10");
				const char *opc = k < 2 ? (size == 1 ? "F6" : "F7") : (size == 1 ? "FE" : "FF");
				int reg = k == 0 ? 2 : k == 1 ? 3 : k == 2 ? 0 : 1;
				enc(f, 0, size, opc, reg, 10, mem);
			}
}

static void gen_muldiv(void)
{
	static const char *const names[] = { "mul", "imul", "div", "idiv" };
	for (int k = 0; k < 4; k++)
		for (int size = 1; size <= 8; size *= 2)
			for (int mem = 0; mem < 2; mem++) {
				struct diff_form *f = newf("%s%s %s", names[k], sz(size), mem ? "[rbx]" : "r11");
				enc(f, 0, size, size == 1 ? "F6" : "F7", 4 + k, 11, mem);
				/* MUL/IMUL: "The SF, ZF, AF, and PF flags are undefined."
				 * DIV/IDIV: "The CF, OF, SF, ZF, AF, and PF flags are undefined." */
				f->undef_flags = k < 2 ? (FL_SF | FL_ZF | FL_AF | FL_PF) : FL_ARITH;
				if (k >= 2)
					f->setup = setup_div;
			}
	for (int size = 2; size <= 8; size *= 2) {
		struct diff_form *f = newf("imul%s rcx,r8", sz(size));
		enc(f, 0, size, "0FAF", 1, 8, false);
		f->undef_flags = FL_SF | FL_ZF | FL_AF | FL_PF;
		f = newf("imul%s rdx,[rbx],imm32", sz(size));
		enc(f, 0, size, "69", 2, 0, true);
		emit_imm(f, diff_rand(), size == 2 ? 2 : 4);
		f->undef_flags = FL_SF | FL_ZF | FL_AF | FL_PF;
		f = newf("imul%s rsi,rdi,imm8", sz(size));
		enc(f, 0, size, "6B", 6, 7, false);
		emit_imm(f, diff_rand(), 1);
		f->undef_flags = FL_SF | FL_ZF | FL_AF | FL_PF;
	}
}

static void gen_shifts(void)
{
	static const char *const names[8] = { "rol", "ror", "rcl", "rcr", "shl", "shr", "sal", "sar" };
	for (int op = 0; op < 8; op++) {
		if (op == 6)
			continue;
		for (int size = 1; size <= 8; size *= 2) {
			struct diff_form *f = newf("%s%s r12,cl", names[op], sz(size));
			enc(f, 0, size, size == 1 ? "D2" : "D3", op, 12, false);
			f->kind = (uint8_t)(op | 0x10);
			f->undef_flags_fn = shift_undef;
			f = newf("%s%s [rbx],1", names[op], sz(size));
			enc(f, 0, size, size == 1 ? "D0" : "D1", op, 0, true);
			f->kind = (uint8_t)(op | 0x20);
			f->undef_flags_fn = shift_undef;
			for (int cnt = 0; cnt < 3; cnt++) {
				static const uint8_t counts[3] = { 1, 7, 33 };
				f = newf("%s%s rax,%d", names[op], sz(size), counts[cnt]);
				enc(f, 0, size, size == 1 ? "C0" : "C1", op, 0, false);
				emit(f, counts[cnt]);
				f->kind = (uint8_t)op;
				f->undef_flags_fn = shift_undef;
			}
		}
	}
	for (int size = 2; size <= 8; size *= 2)
		for (int right = 0; right < 2; right++) {
			struct diff_form *f = newf("sh%sd%s r13,r14,cl", right ? "r" : "l", sz(size));
			enc(f, 0, size, right ? "0FAD" : "0FA5", 14, 13, false);
			f->kind = 0x10;
			f->undef_flags_fn = shld_undef;
			f->undef_result = shld_undef_result;
			f = newf("sh%sd%s [rbx],rdx,5", right ? "r" : "l", sz(size));
			enc(f, 0, size, right ? "0FAC" : "0FA4", 2, 0, true);
			emit(f, 5);
			f->undef_flags_fn = shld_undef;
		}
}

static void gen_bits(void)
{
	static const char *const names[4] = { "bt", "bts", "btr", "btc" };
	static const char *const rop[4] = { "0FA3", "0FAB", "0FB3", "0FBB" };
	/* BT*: "The ZF flag is unaffected. The OF, SF, AF, and PF flags are undefined." */
	uint32_t bt_undef = FL_OF | FL_SF | FL_AF | FL_PF;
	for (int k = 0; k < 4; k++)
		for (int size = 2; size <= 8; size *= 2) {
			struct diff_form *f = newf("%s%s r8,rcx", names[k], sz(size));
			enc(f, 0, size, rop[k], 1, 8, false);
			f->undef_flags = bt_undef;
			f = newf("%s%s [rbx],rcx", names[k], sz(size));
			enc(f, 0, size, rop[k], 1, 0, true);
			f->undef_flags = bt_undef;
			f->setup = setup_bt_offset;
			f->mem_offset = 0x800;
			f = newf("%s%s [rbx],imm8", names[k], sz(size));
			enc(f, 0, size, "0FBA", 4 + k, 0, true);
			emit(f, (int)(diff_rand() & 0xFF));
			f->undef_flags = bt_undef;
			if (k) {
				f = newf("lock %s%s [rbx],rcx", names[k], sz(size));
				emit(f, 0xF0);
				enc(f, 0, size, rop[k], 1, 0, true);
				f->undef_flags = bt_undef;
				f->setup = setup_bt_offset;
				f->mem_offset = 0x800;
			}
		}
	for (int size = 2; size <= 8; size *= 2)
		for (int r = 0; r < 2; r++) {
			/* BSF/BSR: "The CF, OF, SF, AF, and PF flags are undefined." */
			struct diff_form *f = newf("%s%s rdx,r9", r ? "bsr" : "bsf", sz(size));
			enc(f, 0, size, r ? "0FBD" : "0FBC", 2, 9, false);
			f->undef_flags = FL_CF | FL_OF | FL_SF | FL_AF | FL_PF;
			f->kind = (uint8_t)(9 | (2 << 4));
			f->undef_result = bsf_undef_result;
			f = newf("popcnt%s rdx,r9", sz(size));
			enc(f, 0xF3, size, "0FB8", 2, 9, false);
		}
	for (int size = 4; size <= 8; size *= 4) {
		struct diff_form *f = newf("bswap%s r10", sz(size));
		enc(f, 0, size, "0F", 0, 0, false);
		f->len--;
		emit(f, 0xC8 + 2);
		if (size == 8)
			f->bytes[0] = 0x49;
		else {
			memmove(f->bytes + 1, f->bytes, f->len);
			f->bytes[0] = 0x41;
			f->len++;
		}
	}
}

static void gen_moves(void)
{
	for (int size = 2; size <= 8; size *= 2) {
		struct diff_form *f = newf("movzx%s rcx,bl", sz(size));
		enc(f, 0, size, "0FB6", 1, 3, false);
		f = newf("movzx%s rcx,word [rbx]", sz(size));
		enc(f, 0, size, "0FB7", 1, 0, true);
		f = newf("movsx%s r15,sil", sz(size));
		enc(f, 0, size, "0FBE", 15, 6, false); /* REX.R is present: sil, not dh */
		f = newf("movsx%s rdx,word [rbx]", sz(size));
		enc(f, 0, size, "0FBF", 2, 0, true);
		for (int cc = 0; cc < 16; cc++) {
			f = newf("cmov%x%s rax,rcx", cc, sz(size));
			char o[8];
			snprintf(o, sizeof(o), "0F%02X", 0x40 + cc);
			enc(f, 0, size, o, 0, 1, false);
		}
		f = newf("xadd%s [rbx],rdx", sz(size));
		emit(f, 0xF0);
		enc(f, 0, size, "0FC1", 2, 0, true);
		f = newf("cmpxchg%s [rbx],rsi", sz(size));
		emit(f, 0xF0);
		enc(f, 0, size, "0FB1", 6, 0, true);
		f = newf("cmpxchg%s rdi,rsi", sz(size));
		enc(f, 0, size, "0FB1", 6, 7, false);
		f = newf("xchg%s [rbx],rcx", sz(size));
		enc(f, 0, size, "87", 1, 0, true);
		f = newf("lea%s rdx,[rbx]", sz(size));
		enc(f, 0, size, "8D", 2, 0, true);
	}
	/* operands the fast paths (fast.c) treat specially: high byte
	 * registers without REX, memory sources, 32-bit destinations */
	for (int size = 2; size <= 8; size *= 2) {
		struct diff_form *f = newf("imul%s rcx,[rbx]", sz(size));
		enc(f, 0, size, "0FAF", 1, 0, true);
		f->undef_flags = FL_SF | FL_ZF | FL_AF | FL_PF;
		f = newf("movzx%s rcx,%s", sz(size), size == 8 ? "sil" : "ah");
		enc(f, 0, size, "0FB6", 1, size == 8 ? 6 : 4, false);
		f = newf("movzx%s rcx,byte [rbx]", sz(size));
		enc(f, 0, size, "0FB6", 1, 0, true);
		f = newf("movsx%s rdx,byte [rbx]", sz(size));
		enc(f, 0, size, "0FBE", 2, 0, true);
		f = newf("movsx%s rsi,r9w", sz(size));
		enc(f, 0, size, "0FBF", 6, 9, false);
		f = newf("movzx%s r10,r11w", sz(size));
		enc(f, 0, size, "0FB7", 10, 11, false);
	}
	static const char *const alu_names[8] = { "add", "or", "adc", "sbb", "and", "sub", "xor", "cmp" };
	for (int op = 0; op < 8; op++)
		for (int size = 4; size <= 8; size *= 2) {
			uint32_t undef = (op == 1 || op == 4 || op == 6) ? FL_AF : 0;
			struct diff_form *f = newf("%s%s [rbx],imm32", alu_names[op], sz(size));
			enc(f, 0, size, "81", op, 0, true);
			emit_imm(f, diff_rand(), 4);
			f->undef_flags = undef;
			f = newf("%s%s [rbx],simm8", alu_names[op], sz(size));
			enc(f, 0, size, "83", op, 0, true);
			emit_imm(f, diff_rand(), 1);
			f->undef_flags = undef;
		}
	static const struct { const char *n; uint8_t b[8]; int len; } bytes[] = {
		{ "movb cl,[rbx]", { 0x8A, 0x0B }, 2 }, { "movb [rbx],ah", { 0x88, 0x23 }, 2 },
		{ "movb ah,dl", { 0x88, 0xD4 }, 2 }, { "movb r9b,[rbx]", { 0x44, 0x8A, 0x0B }, 3 },
		{ "movb sil,r10b", { 0x44, 0x88, 0xD6 }, 3 }, { "movb dh,[rbx]", { 0x8A, 0x33 }, 2 },
		{ "cmpb [rbx],ch", { 0x38, 0x2B }, 2 }, { "cmpb ch,[rbx]", { 0x3A, 0x2B }, 2 },
		{ "cmpb r11b,dil", { 0x41, 0x3A, 0xDF }, 3 },
		{ "movb [rbx],imm8", { 0xC6, 0x03, 0x9C }, 3 },
		{ "movl [rbx],imm32", { 0xC7, 0x03, 0x78, 0x56, 0x34, 0x92 }, 6 },
		{ "movq [rbx],simm32", { 0x48, 0xC7, 0x03, 0x78, 0x56, 0x34, 0x92 }, 7 },
	};
	for (unsigned k = 0; k < sizeof(bytes) / sizeof(bytes[0]); k++) {
		struct diff_form *f = newf("%s", bytes[k].n);
		for (int b = 0; b < bytes[k].len; b++)
			emit(f, bytes[k].b[b]);
	}
	struct diff_form *f = newf("movsxd rax,[rbx]");
	emit(f, 0x48); emit(f, 0x63); emit(f, 0x03);
	f = newf("movsxd eax,ecx");
	emit(f, 0x63); emit(f, 0xC1);
	f = newf("movsxd r9,r14d");
	emit(f, 0x4D); emit(f, 0x63); emit(f, 0xCE);
	f = newf("nopl [rbx]");
	emit(f, 0x0F); emit(f, 0x1F); emit(f, 0x03);
	f = newf("testb cl,ah");
	emit(f, 0x84); emit(f, 0xE1);
	f = newf("testb r9b,sil");
	emit(f, 0x41); emit(f, 0x84); emit(f, 0xF1);
	f = newf("cmpb al,imm8");
	emit(f, 0x3C); emit_imm(f, diff_rand(), 1);
	for (int cc = 0; cc < 16; cc++) {
		f = newf("set%x ah", cc);
		emit(f, 0x0F); emit(f, 0x90 + cc); emit(f, 0xC4);
		f = newf("set%x sil", cc);
		emit(f, 0x40); emit(f, 0x0F); emit(f, 0x90 + cc); emit(f, 0xC6);
	}
	f = newf("movsxd rax,ecx");
	emit(f, 0x48); emit(f, 0x63); emit(f, 0xC1);
	for (int cc = 0; cc < 16; cc++) {
		f = newf("set%x cl", cc);
		emit(f, 0x0F); emit(f, 0x90 + cc); emit(f, 0xC1);
	}
	static const struct { const char *n; uint8_t b[3]; int len; } simple[] = {
		{ "cbw", { 0x66, 0x98 }, 2 }, { "cwde", { 0x98 }, 1 }, { "cdqe", { 0x48, 0x98 }, 2 },
		{ "cwd", { 0x66, 0x99 }, 2 }, { "cdq", { 0x99 }, 1 }, { "cqo", { 0x48, 0x99 }, 2 },
		{ "lahf", { 0x9F }, 1 }, { "sahf", { 0x9E }, 1 }, { "cmc", { 0xF5 }, 1 },
		{ "clc", { 0xF8 }, 1 }, { "stc", { 0xF9 }, 1 }, { "cld", { 0xFC }, 1 },
		{ "xchg rax,r8", { 0x49, 0x90 }, 2 }, { "xchg eax,edx", { 0x92 }, 1 },
		{ "nop", { 0x90 }, 1 }, { "nopw", { 0x66, 0x90 }, 2 },
	};
	for (unsigned k = 0; k < sizeof(simple) / sizeof(simple[0]); k++) {
		f = newf("%s", simple[k].n);
		for (int b = 0; b < simple[k].len; b++)
			emit(f, simple[k].b[b]);
	}
	f = newf("cmpxchg8b [rbx]");
	emit(f, 0xF0); emit(f, 0x0F); emit(f, 0xC7); emit(f, 0x0B);
	f = newf("cmpxchg16b [rbx]");
	emit(f, 0xF0); emit(f, 0x48); emit(f, 0x0F); emit(f, 0xC7); emit(f, 0x0B);
}

static void gen_strings(void)
{
	static const struct { const char *n; uint8_t op; } ops[] = {
		{ "movs", 0xA4 }, { "cmps", 0xA6 }, { "stos", 0xAA }, { "lods", 0xAC }, { "scas", 0xAE },
	};
	for (unsigned k = 0; k < 5; k++)
		for (int size = 1; size <= 8; size *= 2)
			for (int rep = 0; rep < 3; rep++) {
				if (rep == 2 && ops[k].op != 0xA6 && ops[k].op != 0xAE)
					continue;
				struct diff_form *f = newf("%s%s%s", rep == 0 ? "" : rep == 1 ? "rep " : "repne ",
							   ops[k].n, sz(size));
				if (rep)
					emit(f, rep == 1 ? 0xF3 : 0xF2);
				if (size == 2)
					emit(f, 0x66);
				if (size == 8)
					emit(f, 0x48);
				emit(f, ops[k].op + (size > 1));
				f->setup = setup_string;
				f->df = true;
			}
}

/* SSE2 packed integer and logic forms (66 0F xx), reg and [rbx] */
static void gen_sse_int(void)
{
	static const uint8_t ops[] = {
		0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D,
		0x74, 0x75, 0x76, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD8, 0xD9, 0xDA, 0xDB, 0xDC, 0xDD,
		0xDE, 0xDF, 0xE0, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE8, 0xE9, 0xEA, 0xEB, 0xEC, 0xED,
		0xEE, 0xEF, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF8, 0xF9, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE,
	};
	for (unsigned k = 0; k < sizeof(ops); k++) {
		char o[8];
		snprintf(o, sizeof(o), "0F%02X", ops[k]);
		struct diff_form *f = newf("66 0f %02x xmm3,xmm12", ops[k]);
		enc(f, 0x66, 4, o, 3, 12, false);
		f = newf("66 0f %02x xmm9,[rbx]", ops[k]);
		enc(f, 0x66, 4, o, 9, 0, true);
		f = newf("0f %02x mm1,mm2", ops[k]);
		if (ops[k] == 0x6C || ops[k] == 0x6D) {
			nforms--;
			continue;
		}
		enc(f, 0, 4, o, 1, 2, false);
	}
	static const struct { const char *n; const char *opc; int pfx; int imm; bool mem_ok; } misc[] = {
		{ "pshufd", "0F70", 0x66, 1, true }, { "pshufhw", "0F70", 0xF3, 1, true },
		{ "pshuflw", "0F70", 0xF2, 1, true }, { "psrlw imm", "0F71", 0x66, -2, false },
		{ "psraw imm", "0F71", 0x66, -4, false }, { "psllw imm", "0F71", 0x66, -6, false },
		{ "psrld imm", "0F72", 0x66, -2, false }, { "psrad imm", "0F72", 0x66, -4, false },
		{ "pslld imm", "0F72", 0x66, -6, false }, { "psrlq imm", "0F73", 0x66, -2, false },
		{ "psrldq imm", "0F73", 0x66, -3, false }, { "psllq imm", "0F73", 0x66, -6, false },
		{ "pslldq imm", "0F73", 0x66, -7, false }, { "movdqa", "0F6F", 0x66, 0, true },
		{ "movdqu", "0F6F", 0xF3, 0, true }, { "pmovmskb", "0FD7", 0x66, 0, false },
		{ "pextrw", "0FC5", 0x66, 1, false }, { "pinsrw", "0FC4", 0x66, 1, true },
		{ "movd xmm,r/m", "0F6E", 0x66, 0, true }, { "movd r/m,xmm", "0F7E", 0x66, 0, true },
		{ "movq xmm,xmm/m", "0F7E", 0xF3, 0, true }, { "movq xmm/m,xmm", "0FD6", 0x66, 0, true },
	};
	for (unsigned k = 0; k < sizeof(misc) / sizeof(misc[0]); k++)
		for (int mem = 0; mem < 2; mem++) {
			if (mem && !misc[k].mem_ok)
				continue;
			struct diff_form *f = newf("%s %s", misc[k].n, mem ? "mem" : "reg");
			int reg = misc[k].imm < 0 ? -misc[k].imm : 5;
			enc(f, misc[k].pfx, 4, misc[k].opc, reg, 13, mem);
			if (misc[k].imm)
				emit(f, (int)(diff_rand() & (misc[k].imm < 0 ? 0x1F : 0xFF)));
		}
}

/* SSE/SSE2 floating point: ps/pd/ss/sd forms */
static void gen_sse_fp(void)
{
	static const struct { uint8_t op; const char *n; bool pack_only; bool no_pd; } ops[] = {
		{ 0x58, "add", false, false }, { 0x59, "mul", false, false }, { 0x5C, "sub", false, false }, { 0x5D, "min", false, false }, { 0x5E, "div", false, false },
		{ 0x5F, "max", false, false }, { 0x51, "sqrt", false, false }, { 0x54, "and", true, false }, { 0x55, "andn", true, false },
		{ 0x56, "or", true, false }, { 0x57, "xor", true, false }, { 0x14, "unpckl", true, false }, { 0x15, "unpckh", true, false },
		{ 0xC2, "cmp", false, false }, { 0xC6, "shuf", true, false }, { 0x5A, "cvt5a", false, false }, { 0x10, "movu", false, false }, { 0x28, "mova", true, false },
	};
	static const int pfx[4] = { 0, 0x66, 0xF3, 0xF2 };
	static const char *const pn[4] = { "ps", "pd", "ss", "sd" };
	for (unsigned k = 0; k < sizeof(ops) / sizeof(ops[0]); k++)
		for (int p = 0; p < 4; p++) {
			if (ops[k].pack_only && p >= 2)
				continue;
			for (int mem = 0; mem < 2; mem++) {
				char o[8];
				snprintf(o, sizeof(o), "0F%02X", ops[k].op);
				struct diff_form *f = newf("%s%s %s", ops[k].n, pn[p], mem ? "xmm2,[rbx]" : "xmm2,xmm11");
				enc(f, pfx[p], 4, o, 2, 11, mem);
				if (ops[k].op == 0xC2)
					emit(f, (int)(diff_rand() & 7));
				if (ops[k].op == 0xC6)
					emit(f, (int)(diff_rand() & 0xFF));
				f->fp = (p == 1 || p == 3) ? 8 : 4;
			}
		}
	static const struct { const char *n; const char *opc; int pfx; int size; int fp; } cv[] = {
		{ "cvtsi2ss", "0F2A", 0xF3, 4, 4 }, { "cvtsi2sd", "0F2A", 0xF2, 8, 8 },
		{ "cvttss2si", "0F2C", 0xF3, 4, 4 }, { "cvtss2si", "0F2D", 0xF3, 8, 4 },
		{ "cvttsd2si", "0F2C", 0xF2, 8, 8 }, { "cvtsd2si", "0F2D", 0xF2, 4, 8 },
		{ "cvtdq2ps", "0F5B", 0, 4, 0 }, { "cvtps2dq", "0F5B", 0x66, 4, 4 },
		{ "cvttps2dq", "0F5B", 0xF3, 4, 4 }, { "cvtdq2pd", "0FE6", 0xF3, 4, 0 },
		{ "cvtpd2dq", "0FE6", 0xF2, 4, 8 }, { "cvttpd2dq", "0FE6", 0x66, 4, 8 },
		{ "ucomiss", "0F2E", 0, 4, 4 }, { "comisd", "0F2F", 0x66, 4, 8 },
		{ "movmskps", "0F50", 0, 4, 4 }, { "movmskpd", "0F50", 0x66, 4, 8 },
		{ "movhlps", "0F12", 0, 4, 4 }, { "movlhps", "0F16", 0, 4, 4 },
	};
	static const struct { const char *n; const char *opc; int pfx; int fp; bool reg_ok; } sse3[] = {
		{ "addsubpd", "0FD0", 0x66, 8, true }, { "addsubps", "0FD0", 0xF2, 4, true },
		{ "haddpd", "0F7C", 0x66, 8, true }, { "haddps", "0F7C", 0xF2, 4, true },
		{ "hsubpd", "0F7D", 0x66, 8, true }, { "hsubps", "0F7D", 0xF2, 4, true },
		{ "movddup", "0F12", 0xF2, 8, true }, { "movsldup", "0F12", 0xF3, 4, true },
		{ "movshdup", "0F16", 0xF3, 4, true }, { "lddqu", "0FF0", 0xF2, 0, false },
	};
	for (unsigned k = 0; k < sizeof(sse3) / sizeof(sse3[0]); k++)
		for (int mem = !sse3[k].reg_ok; mem < 2; mem++) {
			struct diff_form *f = newf("%s %s", sse3[k].n, mem ? "mem" : "reg");
			enc(f, sse3[k].pfx, 4, sse3[k].opc, 7, 12, mem);
			f->fp = (uint8_t)sse3[k].fp;
		}
	for (unsigned k = 0; k < sizeof(cv) / sizeof(cv[0]); k++) {
		struct diff_form *f = newf("%s reg", cv[k].n);
		enc(f, cv[k].pfx, cv[k].size, cv[k].opc, 6, 10, false);
		f->fp = (uint8_t)cv[k].fp;
	}
}

/* ------------------------------------------------------------------ */
/* SSSE3, SSE4.1, SSE4.2 */

#define DIFF_DATA 0x10100000ULL  /* emu_diff.c's data page */

/* The second MMX operand lives at [rsi] (mm registers are not part of the
 * compared state, so MMX forms load mm1/mm2 from memory and move the
 * result to RAX). */
static void setup_mmx_rsi(uint64_t *gpr)
{
	gpr[R_RSI] = DIFF_DATA + 0x200 + 8 * (diff_rand() % 4);
}

/* PCMPESTRx lengths: mostly in and around the element counts, sometimes
 * the random edge values (negative, INT_MIN, huge). */
static void setup_str_len(uint64_t *gpr)
{
	if (diff_rand() % 4) {
		gpr[R_RAX] = (uint64_t)((int64_t)(diff_rand() % 41) - 20);
		gpr[R_RDX] = (uint64_t)((int64_t)(diff_rand() % 41) - 20);
	}
}

/* xmm3,xmm12 / xmm9,[rbx] (aligned) / xmm9,[rbx+8] (misaligned) */
static void sse4_forms(const char *name, const char *opc, int imm, int fp, unsigned mem_bytes)
{
	for (int form = 0; form < 3; form++) {
		if (form && !mem_bytes)
			break;
		static const char *const fn[3] = { "xmm3,xmm12", "xmm9,[rbx]", "xmm9,[rbx+8]" };
		struct diff_form *f = imm >= 0 ? newf("%s %s,%#x", name, fn[form], imm) : newf("%s %s", name, fn[form]);
		enc(f, 0x66, 4, opc, form ? 9 : 3, 12, form > 0);
		if (imm >= 0)
			emit(f, imm);
		if (form == 2)
			f->mem_offset = 0x108;
		f->fp = (uint8_t)fp;
	}
}

/* movq mm1,[rbx]; op mm1,mm2|[rsi]; movq rax,mm1 (mm2 loaded from [rsi]) */
static void ssse3_mmx_forms(const char *name, uint8_t map, uint8_t op, int imm)
{
	for (int mem = 0; mem < 2; mem++) {
		struct diff_form *f = newf("%s mm1,%s", name, mem ? "[rsi]" : "mm2");
		emit(f, 0x0F); emit(f, 0x6F); emit(f, 0x0B);             /* movq mm1,[rbx] */
		if (!mem) {
			emit(f, 0x0F); emit(f, 0x6F); emit(f, 0x16);     /* movq mm2,[rsi] */
		}
		emit(f, 0x0F); emit(f, map); emit(f, op);
		emit(f, mem ? 0x0E : 0xCA);
		if (imm >= 0)
			emit(f, imm);
		emit(f, 0x48); emit(f, 0x0F); emit(f, 0x7E); emit(f, 0xC8); /* movq rax,mm1 */
		f->setup = setup_mmx_rsi;
	}
}

static void gen_ssse3(void)
{
	static const struct { const char *n; uint8_t op; } ops[] = {
		{ "pshufb", 0x00 }, { "phaddw", 0x01 }, { "phaddd", 0x02 }, { "phaddsw", 0x03 },
		{ "pmaddubsw", 0x04 }, { "phsubw", 0x05 }, { "phsubd", 0x06 }, { "phsubsw", 0x07 },
		{ "psignb", 0x08 }, { "psignw", 0x09 }, { "psignd", 0x0A }, { "pmulhrsw", 0x0B },
		{ "pabsb", 0x1C }, { "pabsw", 0x1D }, { "pabsd", 0x1E },
	};
	for (unsigned k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
		char o[8];
		snprintf(o, sizeof(o), "0F38%02X", ops[k].op);
		sse4_forms(ops[k].n, o, -1, 0, 16);
		ssse3_mmx_forms(ops[k].n, 0x38, ops[k].op, -1);
	}
	static const uint8_t shifts[] = { 0, 1, 5, 8, 15, 16, 17, 31, 32, 200 };
	for (unsigned k = 0; k < sizeof(shifts); k++) {
		sse4_forms("palignr", "0F3A0F", shifts[k], 0, k % 3 == 0 ? 16 : 0);
		ssse3_mmx_forms("palignr", 0x3A, 0x0F, shifts[k]);
	}
	/* wrong prefixes: #UD */
	struct diff_form *f = newf("f3 pshufb xmm3,xmm12 (#UD)");
	enc(f, 0xF3, 4, "0F3800", 3, 12, false);
	f = newf("f2 pabsw xmm3,xmm12 (#UD)");
	enc(f, 0xF2, 4, "0F381D", 3, 12, false);
	f = newf("66 f2 pshufb xmm3,xmm12 (#UD)");
	emit(f, 0x66);
	enc(f, 0xF2, 4, "0F3800", 3, 12, false);
	f = newf("lock pshufb xmm3,[rbx] (#UD)");
	emit(f, 0xF0);
	enc(f, 0x66, 4, "0F3800", 3, 0, true);
	f = newf("lock palignr mm1,mm2 (#UD)");
	emit(f, 0xF0);
	enc(f, 0, 4, "0F3A0F", 1, 2, false);
	emit(f, 3);
}

static void setup_mxcsr(uint64_t *gpr, unsigned rc)
{
	gpr[R_RAX] = 0x1F80 | rc << 13;
}
static void setup_mxcsr_rc0(uint64_t *gpr) { setup_mxcsr(gpr, 0); }
static void setup_mxcsr_rc1(uint64_t *gpr) { setup_mxcsr(gpr, 1); }
static void setup_mxcsr_rc2(uint64_t *gpr) { setup_mxcsr(gpr, 2); }
static void setup_mxcsr_rc3(uint64_t *gpr) { setup_mxcsr(gpr, 3); }

/* PTEST (SDM): "Set ZF if xmm2/m128 AND xmm1 result is all 0s. Set CF if
 * xmm2/m128 AND NOT xmm1 result is all 0s."; AF, OF, PF, SF are cleared:
 * every flag is defined, none masked. */
static void gen_sse41(void)
{
	static const struct { const char *n; uint8_t op; unsigned mem; int fp; } ops38[] = {
		{ "pblendvb", 0x10, 16, 0 }, { "blendvps", 0x14, 16, 4 }, { "blendvpd", 0x15, 16, 8 },
		{ "ptest", 0x17, 16, 0 },
		{ "pmovsxbw", 0x20, 8, 0 }, { "pmovsxbd", 0x21, 4, 0 }, { "pmovsxbq", 0x22, 2, 0 },
		{ "pmovsxwd", 0x23, 8, 0 }, { "pmovsxwq", 0x24, 4, 0 }, { "pmovsxdq", 0x25, 8, 0 },
		{ "pmuldq", 0x28, 16, 0 }, { "pcmpeqq", 0x29, 16, 0 }, { "packusdw", 0x2B, 16, 0 },
		{ "pmovzxbw", 0x30, 8, 0 }, { "pmovzxbd", 0x31, 4, 0 }, { "pmovzxbq", 0x32, 2, 0 },
		{ "pmovzxwd", 0x33, 8, 0 }, { "pmovzxwq", 0x34, 4, 0 }, { "pmovzxdq", 0x35, 8, 0 },
		{ "pminsb", 0x38, 16, 0 }, { "pminsd", 0x39, 16, 0 }, { "pminuw", 0x3A, 16, 0 },
		{ "pminud", 0x3B, 16, 0 }, { "pmaxsb", 0x3C, 16, 0 }, { "pmaxsd", 0x3D, 16, 0 },
		{ "pmaxuw", 0x3E, 16, 0 }, { "pmaxud", 0x3F, 16, 0 }, { "pmulld", 0x40, 16, 0 },
		{ "phminposuw", 0x41, 16, 0 },
	};
	for (unsigned k = 0; k < sizeof(ops38) / sizeof(ops38[0]); k++) {
		char o[8];
		snprintf(o, sizeof(o), "0F38%02X", ops38[k].op);
		sse4_forms(ops38[k].n, o, -1, ops38[k].fp, ops38[k].mem);
	}
	/* implicit XMM0 as the destination too */
	struct diff_form *f = newf("pblendvb xmm0,xmm5");
	enc(f, 0x66, 4, "0F3810", 0, 5, false);
	f = newf("blendvps xmm0,xmm0");
	enc(f, 0x66, 4, "0F3814", 0, 0, false);
	f = newf("movntdqa xmm9,[rbx]");
	enc(f, 0x66, 4, "0F382A", 9, 0, true);
	f = newf("movntdqa xmm9,[rbx+8] (#GP)");
	enc(f, 0x66, 4, "0F382A", 9, 0, true);
	f->mem_offset = 0x108;
	f = newf("ptest no 66 (#UD)");
	enc(f, 0, 4, "0F3817", 3, 12, false);

	/* ROUND: every imm8[3:0] (modes, MXCSR.RC, precision suppression) */
	for (int imm = 0; imm < 16; imm++) {
		sse4_forms("roundps", "0F3A08", imm, 4, imm % 4 == 0 ? 16 : 0);
		sse4_forms("roundpd", "0F3A09", imm, 8, imm % 4 == 1 ? 16 : 0);
		sse4_forms("roundss", "0F3A0A", imm, 4, imm % 4 == 2 ? 4 : 0);
		sse4_forms("roundsd", "0F3A0B", imm, 8, imm % 4 == 3 ? 8 : 0);
	}
	/* ROUND* with imm8[2] under each MXCSR.RC: mov [rbx],eax; ldmxcsr [rbx];
	 * round (RAX = 0x1F80 | RC << 13 from the setup) */
	static void (*const set_rc[4])(uint64_t *) = { setup_mxcsr_rc0, setup_mxcsr_rc1, setup_mxcsr_rc2, setup_mxcsr_rc3 };
	static const char *const round_op[4] = { "0F3A08", "0F3A09", "0F3A0A", "0F3A0B" };
	static const char *const round_n[4] = { "roundps", "roundpd", "roundss", "roundsd" };
	for (int rc = 0; rc < 4; rc++)
		for (int k = 0; k < 4; k++) {
			f = newf("ldmxcsr rc=%d; %s xmm3,xmm12,0xc", rc, round_n[k]);
			emit(f, 0x89); emit(f, 0x03);
			emit(f, 0x0F); emit(f, 0xAE); emit(f, 0x13);
			enc(f, 0x66, 4, round_op[k], 3, 12, false);
			emit(f, 0x0C);
			f->setup = set_rc[rc];
			f->fp = (uint8_t)(k & 1 ? 8 : 4);
		}
	static const uint8_t imms[] = { 0x00, 0x05, 0x0A, 0x0F, 0x31, 0x7F, 0xA5, 0xF0, 0xFF, 0x5C };
	for (unsigned k = 0; k < sizeof(imms); k++) {
		unsigned mem = k < 2 ? 16 : 0;
		sse4_forms("blendps", "0F3A0C", imms[k], 4, mem);
		sse4_forms("blendpd", "0F3A0D", imms[k], 8, mem);
		sse4_forms("pblendw", "0F3A0E", imms[k], 0, mem);
		sse4_forms("dpps", "0F3A40", imms[k], 4, mem);
		sse4_forms("dppd", "0F3A41", imms[k], 8, mem);
		sse4_forms("insertps", "0F3A21", imms[k], 0, k < 2 || imms[k] >> 6 ? 4 : 0); /* memory: no source lane */
	}
	for (int imm = 0; imm < 8; imm++)
		sse4_forms("mpsadbw", "0F3A42", imm, 0, imm == 5 ? 16 : 0);

	/* PEXTRB/W/D/Q, EXTRACTPS r/m,xmm5,imm; PINSRB/D/Q xmm5,r/m,imm */
	static const struct { const char *n; const char *opc; int size; int imask; } ex[] = {
		{ "pextrb", "0F3A14", 4, 15 }, { "pextrw", "0F3A15", 4, 7 }, { "pextrd", "0F3A16", 4, 3 },
		{ "pextrq", "0F3A16", 8, 1 }, { "extractps", "0F3A17", 4, 3 }, { "extractps.w", "0F3A17", 8, 3 },
		{ "pinsrb", "0F3A20", 4, 15 }, { "pinsrd", "0F3A22", 4, 3 }, { "pinsrq", "0F3A22", 8, 1 },
	};
	for (unsigned k = 0; k < sizeof(ex) / sizeof(ex[0]); k++)
		for (int imm = 0; imm <= ex[k].imask; imm += ex[k].imask > 3 ? 5 : 1)
			for (int mem = 0; mem < 2; mem++) {
				f = newf("%s %s,xmm5,%d", ex[k].n, mem ? "[rbx]" : "r10", imm);
				enc(f, 0x66, ex[k].size, ex[k].opc, 5, 10, mem);
				emit(f, imm | (int)(diff_rand() & 0xF0 & ~(unsigned)ex[k].imask));
			}
	/* register pinsrb with a high byte register that REX makes sil */
	f = newf("pinsrb xmm2,esi,3");
	enc(f, 0x66, 4, "0F3A20", 2, 6, false);
	emit(f, 3);
}

/* A string-like mix for PCMPxSTRx: letters from a small alphabet (so
 * elements match often), some nulls (implicit lengths), some random. */
static uint64_t rand_string_qword(void)
{
	uint64_t v = 0;
	for (int k = 0; k < 8; k++) {
		uint64_t r = diff_rand() % 64, b;
		if (r < 3)
			b = 0;
		else if (r < 6)
			b = diff_rand() & 0xFF;
		else
			b = "abcd"[r & 3];
		v |= b << (8 * k);
	}
	return v;
}

/* PCMPxSTRx flags (SDM 4.1.4/4.1.5, no undefined ones): CF = IntRes2 is
 * not zero; ZF = a null element in xmm2/m128 (implicit) or |EDX| below the
 * element count (explicit); SF = the same for xmm1 / |EAX|; OF = IntRes2[0];
 * AF and PF cleared. */
static void gen_sse42(void)
{
	static const char *const names[4] = { "pcmpestrm", "pcmpestri", "pcmpistrm", "pcmpistri" };
	for (int op = 0; op < 4; op++) {
		char o[8];
		snprintf(o, sizeof(o), "0F3A%02X", 0x60 + op);
		for (int imm = 0; imm < 128; imm++) {
			/* every format, aggregation, polarity and output selection */
			bool mem = imm % 8 == op;
			struct diff_form *f = newf("%s xmm3,%s,%#x", names[op], mem ? "[rbx+3]" : "xmm12", imm);
			enc(f, 0x66, 4, o, 3, 12, mem);
			emit(f, imm);
			f->mem_offset = 0x103; /* no alignment needed */
			f->fp = 1;
			if (op < 2)
				f->setup = setup_str_len;
		}
		struct diff_form *f = newf("%s.w xmm3,xmm12,0x0c", names[op]); /* REX.W: RAX/RDX lengths */
		enc(f, 0x66, 8, o, 3, 12, false);
		emit(f, 0x0C);
		f->fp = 1;
		if (op < 2)
			f->setup = setup_str_len;
	}
	sse4_forms("pcmpgtq", "0F3837", -1, 0, 16);
	/* CRC32 r32/r64 with r/m8/16/32/64 */
	static const struct { const char *n; const char *opc; int size; } crc[] = {
		{ "crc32b", "0F38F0", 4 }, { "crc32b.w", "0F38F0", 8 }, { "crc32w", "0F38F1", 2 },
		{ "crc32l", "0F38F1", 4 }, { "crc32q", "0F38F1", 8 },
	};
	for (unsigned k = 0; k < sizeof(crc) / sizeof(crc[0]); k++)
		for (unsigned p = 0; p < 3; p++) {
			struct diff_form *f = newf("%s %s,%s", crc[k].n, rn[pairs[p][0]], rn[pairs[p][1]]);
			enc(f, 0xF2, crc[k].size, crc[k].opc, pairs[p][0], pairs[p][1], false);
			if (p == 0) {
				f = newf("%s %s,[rbx]", crc[k].n, rn[pairs[p][0]]);
				enc(f, 0xF2, crc[k].size, crc[k].opc, pairs[p][0], 0, true);
				f->mem_offset = 0x101;
			}
		}
	struct diff_form *f = newf("lock crc32l eax,[rbx] (#UD)");
	emit(f, 0xF0);
	enc(f, 0xF2, 4, "0F38F1", 0, 0, true);
	f = newf("lock pcmpistri xmm1,xmm2 (#UD)");
	emit(f, 0xF0);
	enc(f, 0x66, 4, "0F3A63", 1, 2, false);
	emit(f, 0x0C);
	f = newf("66 crc32b ecx,dl");
	emit(f, 0x66);
	enc(f, 0xF2, 4, "0F38F0", 1, 2, false);
	f = newf("crc32b eax,ah");
	emit(f, 0xF2); emit(f, 0x0F); emit(f, 0x38); emit(f, 0xF0); emit(f, 0xC4);
	f = newf("crc32b eax,sil");
	emit(f, 0xF2); emit(f, 0x40); emit(f, 0x0F); emit(f, 0x38); emit(f, 0xF0); emit(f, 0xC6);
}

/* After a shift by CL, SETcc of a condition that reads an undefined flag
 * (OF for counts above 1) gives an undefined result. */
static bool shift_setcc_undef(const struct diff_form *f, const uint64_t *gpr, int r)
{
	unsigned cc = f->bytes[f->len - 2] - 0x90;
	return r == R_RDX && (shift_undef(f, gpr, 0) & FL_OF) && (cc >> 1 == 0 || cc >> 1 >= 6);
}

/* Flag producer followed by a flag consumer: exercises the lazy-flag
 * evaluation after each kind of producer (the single-instruction forms
 * start from materialised flags). */
static void gen_flag_pairs(void)
{
	static const struct { const char *n; const char *opc; int reg; } prod[] = {
		{ "add", "01", 1 }, { "sub", "29", 1 }, { "and", "21", 1 }, { "or", "09", 1 },
		{ "xor", "31", 1 }, { "cmp", "39", 1 }, { "adc", "11", 1 }, { "sbb", "19", 1 },
		{ "test", "85", 1 }, { "inc", "FF", 0 }, { "dec", "FF", 1 }, { "neg", "F7", 3 },
		{ "shl", "D3", 4 }, { "shr", "D3", 5 }, { "sar", "D3", 7 }, { "rol", "D3", 0 }, { "ror", "D3", 1 },
	};
	for (unsigned k = 0; k < sizeof(prod) / sizeof(prod[0]); k++)
		for (int size = 1; size <= 8; size *= 8)
			for (int cc = 0; cc < 16; cc++) {
				struct diff_form *f = newf("%s%s+set%x", prod[k].n, sz(size), cc);
				char o[16];
				snprintf(o, sizeof(o), "%s", prod[k].opc);
				if (size == 1) {
					unsigned b;
					sscanf(o, "%2x", &b);
					snprintf(o, sizeof(o), "%02X", b & ~1u);
				}
				/* rax op= rcx (or unary on rax) */
				enc(f, 0, size, o, prod[k].reg, 0, false);
				bool shift = prod[k].opc[0] == 'D';
				if (prod[k].opc[0] == 'F' || shift)
					f->bytes[f->len - 1] = (uint8_t)(0xC0 | (prod[k].reg << 3));
				else
					f->bytes[f->len - 1] = 0xC8; /* mod 3, reg rcx, rm rax */
				emit(f, 0x0F);
				emit(f, 0x90 + cc);
				emit(f, 0xC2); /* setcc dl */
				f->size = (uint8_t)size;
				if (shift) {
					f->kind = (uint8_t)(prod[k].reg | 0x10);
					f->undef_flags_fn = shift_undef;
					f->undef_result = shift_setcc_undef;
				}
			}
}

/* ------------------------------------------------------------------ */
/* x87 (D8-DF) and MMX */

/* Interesting 80-bit values: zeros, infinities, NaNs (quiet and
 * signalling), denormals, small integers, integers at the 16/32/64-bit
 * limits, halves (rounding ties), random finite numbers. */
void diff_rand_ld(uint8_t out[10])
{
	uint64_t r = diff_rand(), mant;
	uint16_t se = (r >> 8) & 1 ? 0x8000 : 0;
	long double v;
	switch (r % 16) {
	case 0: mant = 0; break;
	case 1: mant = 1ULL << 63; se |= 0x7FFF; break;
	case 2: mant = 0xC000000000000000ULL | (diff_rand() >> (diff_rand() % 64 + 2)); se |= 0x7FFF; break;
	case 3: mant = 0x8000000000000000ULL | ((diff_rand() >> 2) | 1); se |= 0x7FFF; break;
	case 4: mant = diff_rand() >> (1 + diff_rand() % 63); break;
	case 5: v = (long double)(int)(diff_rand() % 201) - 100; memcpy(out, &v, 10); return;
	case 6: case 7:
		v = (long double)(int64_t)(diff_rand() % 2000001 - 1000000) / 8.0L;
		memcpy(out, &v, 10);
		return;
	case 8: {
		static const int bits[3] = { 15, 31, 63 };
		v = ldexpl(1.0L, bits[diff_rand() % 3]) + (long double)((int)(diff_rand() % 9) - 4) / 2.0L;
		if ((r >> 9) & 1)
			v = -v;
		memcpy(out, &v, 10);
		return;
	}
	case 9: mant = diff_rand() | 1ULL << 63; se |= (uint16_t)(1 + diff_rand() % 0x7FFE); break;
	case 10: /* unsupported encodings: unnormals, pseudo-NaN/infinity, pseudo-denormals */
		mant = diff_rand() & ~(1ULL << 63);
		se |= (uint16_t)(diff_rand() & 1 ? 0x7FFF : diff_rand() & 1 ? 1 + diff_rand() % 0x7FFE : 0);
		if (!(se & 0x7FFF))
			mant |= 1ULL << 63;
		break;
	default: mant = diff_rand() | 1ULL << 63; se |= (uint16_t)(0x3FFF + diff_rand() % 161 - 80); break;
	}
	memcpy(out, &mant, 8);
	memcpy(out + 8, &se, 2);
}

/* Packed BCD: 18 digits and a sign byte. */
void diff_rand_bcd(uint8_t out[10])
{
	unsigned digits = (unsigned)(diff_rand() % 19);
	for (int k = 0; k < 9; k++) {
		unsigned lo = 2 * k < (int)digits ? diff_rand() % 10 : 0, hi = 2 * k + 1 < (int)digits ? diff_rand() % 10 : 0;
		out[k] = (uint8_t)(hi << 4 | lo);
	}
	out[9] = diff_rand() & 1 ? 0x80 : 0;
}

/* ST(k) as a long double inside the FXSAVE image */
static long double *fx_st(uint8_t *fx, int k)
{
	return (long double *)(void *)(fx + 32 + 16 * k);
}

/* Transcendental domains: "If the source operand is outside [the range]
 * the result is undefined" (F2XM1: -1.0 to +1.0; FYL2XP1: ±(1 - sqrt(2)/2)).
 * FSIN/FCOS/FSINCOS/FPTAN "are really approximating the mathematical
 * functions sin (x * π /Pi), cos (x * π / Pi), and tan (x * π / Pi)" with a
 * 66-bit Pi; "for accurate results it is safe to apply FSINCOS only to
 * arguments reduced accurately in software, to a value smaller in absolute
 * value than 3π/8" (SDM): the operands stay below 3π/8 here. */
static void fx_small(const struct diff_form *f, uint8_t *fx, long double lim)
{
	for (int k = 0; k < 2; k++) {
		long double v = *fx_st(fx, k);
		if (isnan(v) || isinf(v) || v == 0)
			continue;
		if (fabsl(v) >= lim || fpclassify(v) != FP_NORMAL) {
			uint64_t r = diff_rand();
			v = (long double)(r % 1000000007ULL) / 1000000007.0L * lim * 0.99L;
			if (r >> 63)
				v = -v;
			*fx_st(fx, k) = v;
		}
	}
}
static void fx_trig(const struct diff_form *f, uint8_t *fx) { fx_small(f, fx, 1.1780972450961724L); }
static void fx_f2xm1(const struct diff_form *f, uint8_t *fx) { fx_small(f, fx, 1.0L); }
static void fx_yl2xp1(const struct diff_form *f, uint8_t *fx) { fx_small(f, fx, 0.29L); }
/* FYL2X: positive finite x, moderate y */
static void fx_yl2x(const struct diff_form *f, uint8_t *fx)
{
	fx_small(f, fx, 1e6L);
	long double *x = fx_st(fx, 0);
	if (diff_rand() % 4)
		*x = fabsl(*x);
}

/* RAX: any control word (no exception is pending: they may be unmasked) */
static void setup_fcw(uint64_t *gpr)
{
	gpr[R_RAX] = diff_rand() & 0xFFFF;
}
/* RAX: a status word without pending exceptions (any TOP, C0-C3) */
static void setup_fsw(uint64_t *gpr)
{
	gpr[R_RAX] = diff_rand() & (0x3800 | FSW_CC);
}
/* RAX: any tag word */
static void setup_ftw(uint64_t *gpr)
{
	gpr[R_RAX] = diff_rand() & 0xFFFF;
}

/* FPREM/FPREM1 with exponents 64 or more apart: "C2 <- 1; N <- An
 * implementation-dependent number between 32 and 63; QQ <- Integer(
 * TruncateTowardZero((ST(0) / ST(1)) / 2^(D - N)))" (SDM): the partial
 * remainder and its quotient bits depend on N, only C2 is compared. */
static bool fprem_partial(const uint8_t *fx)
{
	long double a = *fx_st((uint8_t *)fx, 0), b = *fx_st((uint8_t *)fx, 1);
	if (!isfinite(a) || !isfinite(b) || a == 0 || b == 0)
		return false;
	return ilogbl(a) - ilogbl(b) >= 64;
}
static bool fprem_undef_st(const struct diff_form *f, const uint8_t *fx, int k)
{
	return k == 0 && fprem_partial(fx);
}
static uint16_t fprem_undef_fsw(const struct diff_form *f, const uint8_t *fx)
{
	return fprem_partial(fx) ? FSW_C0 | FSW_C1 | FSW_C3 : 0;
}

static struct diff_form *x87f(const char *name, int op, int modrm, int valid, int free, uint16_t undef)
{
	struct diff_form *f = newf("%s", name);
	emit(f, op);
	emit(f, modrm);
	f->st_valid = (uint8_t)valid;
	f->st_free = (uint8_t)free;
	f->fsw_undef = undef;
	return f;
}

/* "C1: set if result was rounded up; cleared otherwise" (the emulator
 * does not report the rounding direction: docs/emu.md); "C0, C2, C3:
 * undefined" */
#define U_ROUND FSW_CC
#define U_C023 (FSW_C0 | FSW_C2 | FSW_C3)

static void gen_x87(void)
{
	static const char *const arith[8] = { "fadd", "fmul", "fcom", "fcomp", "fsub", "fsubr", "fdiv", "fdivr" };
	static const char *const iarith[8] = { "fiadd", "fimul", "ficom", "ficomp", "fisub", "fisubr", "fidiv", "fidivr" };
	static const struct { int op; const char *sz; int fp; } msrc[4] = {
		{ 0xD8, "m32fp", 4 }, { 0xDC, "m64fp", 8 }, { 0xDA, "m32int", 0 }, { 0xDE, "m16int", 0 },
	};
	char n[48];
	for (int k = 0; k < 4; k++)
		for (int r = 0; r < 8; r++) {
			snprintf(n, sizeof(n), "%s %s", k < 2 ? arith[r] : iarith[r], msrc[k].sz);
			bool cmp = r == 2 || r == 3;
			struct diff_form *f = x87f(n, msrc[k].op, r << 3 | 3, 1, 0, cmp ? 0 : U_ROUND);
			f->fp = (uint8_t)msrc[k].fp;
		}
	/* register arithmetic: D8 st0,st(i); DC st(i),st0; DE ...p st(i),st0 */
	static const int sti[3] = { 0, 1, 5 };
	for (int r = 0; r < 8; r++)
		for (int k = 0; k < 3; k++) {
			bool cmp = r == 2 || r == 3;
			snprintf(n, sizeof(n), "%s st0,st%d", arith[r], sti[k]);
			x87f(n, 0xD8, 0xC0 | r << 3 | sti[k], sti[k] + 1, 0, cmp ? 0 : U_ROUND);
			if (cmp && k)
				continue; /* DC D0+i / DE D0+i: reserved aliases */
			snprintf(n, sizeof(n), "%s st%d,st0", arith[r], sti[k]);
			x87f(n, 0xDC, 0xC0 | r << 3 | sti[k], sti[k] + 1, 0, U_ROUND);
			if (cmp)
				continue;
			snprintf(n, sizeof(n), "%sp st%d,st0", arith[r], sti[k]);
			x87f(n, 0xDE, 0xC0 | r << 3 | sti[k], sti[k] + 1, 0, U_ROUND);
		}
	x87f("fcompp", 0xDE, 0xD9, 2, 0, 0);
	x87f("fucompp", 0xDA, 0xE9, 2, 0, 0);
	/* loads and stores of every memory size */
	static const struct { const char *n; int op, r, fp; bool store, pop; } mem[] = {
		{ "fld m32fp", 0xD9, 0, 4, false, false }, { "fst m32fp", 0xD9, 2, 0, true, false },
		{ "fstp m32fp", 0xD9, 3, 0, true, true }, { "fld m64fp", 0xDD, 0, 8, false, false },
		{ "fst m64fp", 0xDD, 2, 0, true, false }, { "fstp m64fp", 0xDD, 3, 0, true, true },
		{ "fld m80fp", 0xDB, 5, DIFF_MEM_M80, false, false }, { "fstp m80fp", 0xDB, 7, 0, true, true },
		{ "fild m16int", 0xDF, 0, 0, false, false }, { "fist m16int", 0xDF, 2, 0, true, false },
		{ "fistp m16int", 0xDF, 3, 0, true, true }, { "fisttp m16int", 0xDF, 1, 0, true, true },
		{ "fild m32int", 0xDB, 0, 0, false, false }, { "fist m32int", 0xDB, 2, 0, true, false },
		{ "fistp m32int", 0xDB, 3, 0, true, true }, { "fisttp m32int", 0xDB, 1, 0, true, true },
		{ "fild m64int", 0xDF, 5, 0, false, false }, { "fistp m64int", 0xDF, 7, 0, true, true },
		{ "fisttp m64int", 0xDD, 1, 0, true, true },
		{ "fbld m80bcd", 0xDF, 4, DIFF_MEM_BCD, false, false }, { "fbstp m80bcd", 0xDF, 6, 0, true, true },
	};
	for (unsigned k = 0; k < sizeof(mem) / sizeof(mem[0]); k++) {
		/* FLD: "C1 set to 1 if stack overflow occurred; otherwise, set
		 * to 0. C0, C2, C3 undefined." stores: C1 = rounding direction */
		/* FSTP m80fp is exact: C1 ("0 := not roundup") is compared */
		bool exact = mem[k].op == 0xDB && mem[k].r == 7;
		struct diff_form *f = x87f(mem[k].n, mem[k].op, mem[k].r << 3 | 3, mem[k].store, !mem[k].store,
					   mem[k].store && !exact ? U_ROUND : U_C023);
		f->fp = (uint8_t)mem[k].fp;
	}
	/* st(i) moves */
	for (int k = 0; k < 3; k++) {
		int i = sti[k] + 2 * (k == 2); /* 0, 1, 7 */
		/* FLD ST(7) always faults (it pushes onto ST(7)): ST(6) instead */
		snprintf(n, sizeof(n), "fld st%d", i - (i == 7));
		x87f(n, 0xD9, 0xC0 | (i - (i == 7)), i - (i == 7) + 1, 1, U_C023);
		snprintf(n, sizeof(n), "fxch st%d", i);
		x87f(n, 0xD9, 0xC8 | i, i + 1, 0, U_C023);
		snprintf(n, sizeof(n), "fst st%d", i);
		x87f(n, 0xDD, 0xD0 | i, 1, 0, U_C023);
		snprintf(n, sizeof(n), "fstp st%d", i);
		x87f(n, 0xDD, 0xD8 | i, 1, 0, U_C023);
		snprintf(n, sizeof(n), "fucom st%d", i);
		x87f(n, 0xDD, 0xE0 | i, i + 1, 0, 0);
		snprintf(n, sizeof(n), "fucomp st%d", i);
		x87f(n, 0xDD, 0xE8 | i, i + 1, 0, 0);
		/* FCOMI/FUCOMI: "C1 Set to 0. C0, C2, C3 not affected" (EFLAGS
		 * ZF, PF, CF set; OF, SF, AF cleared: all compared) */
		snprintf(n, sizeof(n), "fucomi st0,st%d", i);
		x87f(n, 0xDB, 0xE8 | i, i + 1, 0, 0);
		snprintf(n, sizeof(n), "fcomi st0,st%d", i);
		x87f(n, 0xDB, 0xF0 | i, i + 1, 0, 0);
		snprintf(n, sizeof(n), "fucomip st0,st%d", i);
		x87f(n, 0xDF, 0xE8 | i, i + 1, 0, 0);
		snprintf(n, sizeof(n), "fcomip st0,st%d", i);
		x87f(n, 0xDF, 0xF0 | i, i + 1, 0, 0);
		/* FFREE: "C0, C1, C2, C3 undefined" */
		snprintf(n, sizeof(n), "ffree st%d", i);
		x87f(n, 0xDD, 0xC0 | i, 0, 0, FSW_CC);
		for (int cc = 0; cc < 8; cc++) {
			static const char *const ccn[8] = { "b", "e", "be", "u", "nb", "ne", "nbe", "nu" };
			snprintf(n, sizeof(n), "fcmov%s st0,st%d", ccn[cc], i);
			/* "C1 Set to 0 if stack underflow occurred. C0, C2, C3 Undefined." */
			x87f(n, cc < 4 ? 0xDA : 0xDB, 0xC0 | (cc & 3) << 3 | i, i + 1, 0, U_C023);
		}
	}
	/* D9 E0-FF: no operand or ST(0)/ST(1) */
	static const struct { const char *n; int m, valid, free; uint16_t undef; int ulps;
		void (*setup)(const struct diff_form *, uint8_t *); } d9[] = {
		{ "fnop", 0xD0, 0, 0, FSW_CC, 0, NULL }, { "fchs", 0xE0, 1, 0, U_C023, 0, NULL },
		{ "fabs", 0xE1, 1, 0, U_C023, 0, NULL }, { "ftst", 0xE4, 1, 0, 0, 0, NULL },
		{ "fxam", 0xE5, 0, 0, 0, 0, NULL }, { "fld1", 0xE8, 0, 1, U_C023, 0, NULL },
		{ "fldl2t", 0xE9, 0, 1, U_C023, 0, NULL }, { "fldl2e", 0xEA, 0, 1, U_C023, 0, NULL },
		{ "fldpi", 0xEB, 0, 1, U_C023, 0, NULL }, { "fldlg2", 0xEC, 0, 1, U_C023, 0, NULL },
		{ "fldln2", 0xED, 0, 1, U_C023, 0, NULL }, { "fldz", 0xEE, 0, 1, U_C023, 0, NULL },
		{ "f2xm1", 0xF0, 1, 0, U_ROUND, 4, fx_f2xm1 }, { "fyl2x", 0xF1, 2, 0, U_ROUND, 4, fx_yl2x },
		{ "fptan", 0xF2, 1, 1, U_ROUND & ~FSW_C2, 4, fx_trig }, { "fpatan", 0xF3, 2, 0, U_ROUND, 4, NULL },
		{ "fxtract", 0xF4, 1, 1, U_C023, 0, NULL }, { "fprem1", 0xF5, 2, 0, 0, 0, NULL },
		{ "fdecstp", 0xF6, 0, 0, U_C023, 0, NULL }, { "fincstp", 0xF7, 0, 0, U_C023, 0, NULL },
		{ "fprem", 0xF8, 2, 0, 0, 0, NULL }, { "fyl2xp1", 0xF9, 2, 0, U_ROUND, 4, fx_yl2xp1 },
		{ "fsqrt", 0xFA, 1, 0, U_ROUND, 0, NULL }, { "fsincos", 0xFB, 1, 1, U_ROUND & ~FSW_C2, 4, fx_trig },
		{ "frndint", 0xFC, 1, 0, U_ROUND, 0, NULL }, { "fscale", 0xFD, 2, 0, U_ROUND, 0, NULL },
		{ "fsin", 0xFE, 1, 0, U_ROUND & ~FSW_C2, 4, fx_trig }, { "fcos", 0xFF, 1, 0, U_ROUND & ~FSW_C2, 4, fx_trig },
	};
	for (unsigned k = 0; k < sizeof(d9) / sizeof(d9[0]); k++) {
		struct diff_form *f = x87f(d9[k].n, 0xD9, d9[k].m, d9[k].valid, d9[k].free, d9[k].undef);
		f->st_ulps = (uint8_t)d9[k].ulps;
		f->fx_setup = d9[k].setup;
		if (d9[k].m == 0xF5 || d9[k].m == 0xF8) {
			f->undef_st = fprem_undef_st;
			f->undef_fsw = fprem_undef_fsw;
		}
	}
	/* control and state: "FNSTSW/FNSTCW/FLDCW/FNCLEX/FNSTENV: C0-C3 undefined" */
	x87f("fnstsw ax", 0xDF, 0xE0, 0, 0, FSW_CC);
	x87f("fnstsw m16", 0xDD, 7 << 3 | 3, 0, 0, FSW_CC);
	x87f("fnstcw m16", 0xD9, 7 << 3 | 3, 0, 0, FSW_CC);
	x87f("fnclex", 0xDB, 0xE2, 0, 0, FSW_CC);
	x87f("fninit", 0xDB, 0xE3, 0, 0, 0);
	/* FLDCW from a valid control word (the setup writes it into RAX first):
	 * mov [rbx],ax; fldcw [rbx] */
	struct diff_form *f = newf("fldcw m16");
	emit(f, 0x66); emit(f, 0x89); emit(f, 0x03);
	emit(f, 0xD9); emit(f, 5 << 3 | 3);
	f->fsw_undef = FSW_CC;
	f->setup = setup_fcw;
	/* FNSTENV then FLDENV of a modified image; FNSAVE then FRSTOR.
	 * FIP/FCS/FOP/FDP/FDS (bytes 12-27 of the 32-bit image) are
	 * implementation-specific ("the FPU instruction pointer ... opcode"
	 * are those of the last non-control instruction): not compared */
	f = x87f("fnstenv m28", 0xD9, 6 << 3 | 3, 0, 0, FSW_CC);
	f->mem_skip_off = 12;
	f->mem_skip_len = 16;
	f = x87f("fnsave m108", 0xDD, 6 << 3 | 3, 0, 0, 0);
	f->mem_skip_off = 12;
	f->mem_skip_len = 16;
	f = newf("fnstenv; fldenv m28");
	emit(f, 0xD9); emit(f, 6 << 3 | 3);
	emit(f, 0x66); emit(f, 0x89); emit(f, 0x43); emit(f, 4); /* mov [rbx+4],ax: FSW */
	emit(f, 0xD9); emit(f, 4 << 3 | 3);
	f->setup = setup_fsw;
	f->mem_skip_off = 12;
	f->mem_skip_len = 16;
	f = newf("fnsave; frstor m108");
	emit(f, 0xDD); emit(f, 6 << 3 | 3);
	emit(f, 0x66); emit(f, 0x89); emit(f, 0x43); emit(f, 8); /* mov [rbx+8],ax: tag word */
	emit(f, 0xDD); emit(f, 4 << 3 | 3);
	f->setup = setup_ftw;
	f->mem_skip_off = 12;
	f->mem_skip_len = 16;
	f = x87f("frstor m108", 0xDD, 4 << 3 | 3, 0, 0, 0);
	f->fp = DIFF_MEM_M80;
}

/* RDI inside the data page for MASKMOVQ */
static void setup_maskmov(uint64_t *gpr)
{
	gpr[R_RDI] = DIFF_DATA + 0x300 + diff_rand() % 64;
}

/* MMX: the mm registers are the low 64 bits of the x87 registers in the
 * compared FXSAVE image, loaded with random contents, TOP and tags (an
 * MMX instruction sets TOP to 0 and every tag valid; EMMS empties them). */
static void gen_mmx(void)
{
	static const uint8_t ops[] = {
		0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x6B,
		0x74, 0x75, 0x76, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD8, 0xD9, 0xDA, 0xDB, 0xDC, 0xDD,
		0xDE, 0xDF, 0xE0, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE8, 0xE9, 0xEA, 0xEB, 0xEC, 0xED,
		0xEE, 0xEF, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF8, 0xF9, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE,
	};
	for (unsigned k = 0; k < sizeof(ops); k++) {
		char o[8];
		snprintf(o, sizeof(o), "0F%02X", ops[k]);
		struct diff_form *f = newf("0f %02x mm5,[rbx]", ops[k]);
		enc(f, 0, 4, o, 5, 0, true);
		f = newf("0f %02x mm7,mm7", ops[k]);
		enc(f, 0, 4, o, 7, 7, false);
	}
	/* shifts by an immediate: /2 PSRL, /4 PSRA, /6 PSLL on words, dwords, qwords */
	static const uint8_t counts[] = { 0, 1, 7, 15, 16, 31, 32, 63, 64, 200 };
	static const struct { const char *n; const char *opc; int r; } sh[] = {
		{ "psrlw", "0F71", 2 }, { "psraw", "0F71", 4 }, { "psllw", "0F71", 6 },
		{ "psrld", "0F72", 2 }, { "psrad", "0F72", 4 }, { "pslld", "0F72", 6 },
		{ "psrlq", "0F73", 2 }, { "psllq", "0F73", 6 },
	};
	for (unsigned k = 0; k < sizeof(sh) / sizeof(sh[0]); k++)
		for (unsigned c = 0; c < sizeof(counts); c += 3) {
			struct diff_form *f = newf("%s mm6,%d", sh[k].n, counts[c + (k % 3 == 1)]);
			enc(f, 0, 4, sh[k].opc, sh[k].r, 6, false);
			emit(f, counts[c + (k % 3 == 1)]);
		}
	static const struct { const char *n; const char *opc; int pfx, size, reg, rm, imm, fp; bool mem; uint16_t off; } misc[] = {
		{ "movd mm3,ecx", "0F6E", 0, 4, 3, 1, -1, 0, false, 0 },
		{ "movd mm3,[rbx]", "0F6E", 0, 4, 3, 0, -1, 0, true, 0 },
		{ "movq mm4,r9", "0F6E", 0, 8, 4, 9, -1, 0, false, 0 },
		{ "movq mm4,[rbx]", "0F6E", 0, 8, 4, 0, -1, 0, true, 0 },
		{ "movd edx,mm5", "0F7E", 0, 4, 5, 2, -1, 0, false, 0 },
		{ "movd [rbx],mm5", "0F7E", 0, 4, 5, 0, -1, 0, true, 0 },
		{ "movq r10,mm6", "0F7E", 0, 8, 6, 10, -1, 0, false, 0 },
		{ "movq [rbx],mm6", "0F7E", 0, 8, 6, 0, -1, 0, true, 0 },
		{ "movq mm1,mm7", "0F6F", 0, 4, 1, 7, -1, 0, false, 0 },
		{ "movq mm1,[rbx+3]", "0F6F", 0, 4, 1, 0, -1, 0, true, 0x103 },
		{ "movq mm2,mm0 (7f)", "0F7F", 0, 4, 0, 2, -1, 0, false, 0 },
		{ "movq [rbx+5],mm0", "0F7F", 0, 4, 0, 0, -1, 0, true, 0x105 },
		{ "movntq [rbx],mm3", "0FE7", 0, 4, 3, 0, -1, 0, true, 0 },
		{ "pshufw mm1,mm2", "0F70", 0, 4, 1, 2, 1, 0, false, 0 },
		{ "pshufw mm1,[rbx]", "0F70", 0, 4, 1, 0, 1, 0, true, 0 },
		{ "pinsrw mm4,esi", "0FC4", 0, 4, 4, 6, 1, 0, false, 0 },
		{ "pinsrw mm4,[rbx]", "0FC4", 0, 4, 4, 0, 1, 0, true, 0x1FF },
		{ "pextrw ecx,mm6", "0FC5", 0, 4, 1, 6, 1, 0, false, 0 },
		{ "pextrw r11,mm6", "0FC5", 0, 8, 11, 6, 1, 0, false, 0 },
		{ "pmovmskb edi,mm2", "0FD7", 0, 4, 7, 2, -1, 0, false, 0 },
		{ "pmovmskb r8,mm2", "0FD7", 0, 8, 8, 2, -1, 0, false, 0 },
		{ "maskmovq mm3,mm4", "0FF7", 0, 4, 3, 4, -1, 0, false, 0 },
		{ "movq2dq xmm9,mm3", "0FD6", 0xF3, 4, 9, 3, -1, 0, false, 0 },
		{ "movdq2q mm3,xmm12", "0FD6", 0xF2, 4, 3, 12, -1, 0, false, 0 },
		{ "cvtpi2ps xmm2,mm6", "0F2A", 0, 4, 2, 6, -1, 4, false, 0 },
		{ "cvtpi2ps xmm2,[rbx]", "0F2A", 0, 4, 2, 0, -1, 4, true, 0 },
		{ "cvtpi2pd xmm2,mm6", "0F2A", 0x66, 4, 2, 6, -1, 8, false, 0 },
		{ "cvtpi2pd xmm2,[rbx]", "0F2A", 0x66, 4, 2, 0, -1, 8, true, 0 },
		{ "cvtps2pi mm5,xmm11", "0F2D", 0, 4, 5, 11, -1, 4, false, 0 },
		{ "cvtps2pi mm5,[rbx]", "0F2D", 0, 4, 5, 0, -1, 4, true, 0 },
		{ "cvttps2pi mm5,xmm11", "0F2C", 0, 4, 5, 11, -1, 4, false, 0 },
		{ "cvttps2pi mm5,[rbx]", "0F2C", 0, 4, 5, 0, -1, 4, true, 0 },
		{ "cvtpd2pi mm5,xmm11", "0F2D", 0x66, 4, 5, 11, -1, 8, false, 0 },
		{ "cvtpd2pi mm5,[rbx]", "0F2D", 0x66, 4, 5, 0, -1, 8, true, 0 },
		{ "cvttpd2pi mm5,xmm11", "0F2C", 0x66, 4, 5, 11, -1, 8, false, 0 },
		{ "cvttpd2pi mm5,[rbx]", "0F2C", 0x66, 4, 5, 0, -1, 8, true, 0 },
		{ "cvtpd2pi mm5,[rbx+8] (#GP)", "0F2D", 0x66, 4, 5, 0, -1, 8, true, 0x108 },
	};
	for (unsigned k = 0; k < sizeof(misc) / sizeof(misc[0]); k++)
		for (int rep = 0; rep < (misc[k].imm >= 0 ? 3 : 1); rep++) {
			struct diff_form *f = misc[k].imm >= 0 ? newf("%s,%d", misc[k].n, rep) : newf("%s", misc[k].n);
			enc(f, misc[k].pfx, misc[k].size, misc[k].opc, misc[k].reg, misc[k].rm, misc[k].mem);
			if (misc[k].imm >= 0)
				emit(f, rep == 0 ? 0x1B : rep == 1 ? 0xE4 : (int)(diff_rand() & 0xFF));
			f->fp = (uint8_t)misc[k].fp;
			if (misc[k].off)
				f->mem_offset = misc[k].off;
			if (misc[k].opc[3] == '7' && misc[k].opc[2] == 'F')
				f->setup = setup_maskmov;
		}
	struct diff_form *f = newf("emms");
	emit(f, 0x0F); emit(f, 0x77);
	/* MMX then x87: EMMS empties the tags for a following FLD */
	f = newf("paddb mm1,mm2; emms; fld1");
	emit(f, 0x0F); emit(f, 0xFC); emit(f, 0xCA);
	emit(f, 0x0F); emit(f, 0x77);
	emit(f, 0xD9); emit(f, 0xE8);
	f->fsw_undef = U_C023;
	f = newf("fld1; movq rax,mm7");
	emit(f, 0xD9); emit(f, 0xE8);
	emit(f, 0x48); emit(f, 0x0F); emit(f, 0x7E); emit(f, 0xF8);
	f->st_free = 1;
}

/* Marks the forms made since index `from` as needing a host extension. */
static void mark_needs(unsigned from, unsigned kind)
{
	for (unsigned k = from; k < nforms; k++)
		forms[k].needs = (uint8_t)kind;
}

const struct diff_form *diff_forms(unsigned *n)
{
	if (!nforms) {
		gen_alu();
		gen_unary();
		gen_muldiv();
		gen_shifts();
		gen_bits();
		gen_moves();
		gen_strings();
		gen_sse_int();
		gen_sse_fp();
		gen_flag_pairs();
		gen_x87();
		gen_mmx();
		unsigned from = nforms;
		gen_ssse3();
		mark_needs(from, DIFF_NEEDS_SSSE3);
		from = nforms;
		gen_sse41();
		mark_needs(from, DIFF_NEEDS_SSE41);
		from = nforms;
		gen_sse42();
		mark_needs(from, DIFF_NEEDS_SSE42);
		gen_int_more();
		gen_control();
		gen_vec_more();
	}
	*n = nforms;
	return forms;
}
