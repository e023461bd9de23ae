/* Known-answer tests of the encodings that exist only outside 64-bit
 * mode (issue 3). The differential tests (tests/diff) run 64-bit code on
 * the host, whose kernel runs no 32-bit code in a user process, so these
 * have no native oracle: each test runs the instruction in 32-bit
 * protected mode (and with a 0x66 prefix where the operand size matters)
 * and compares the registers, flags and memory it leaves with answers
 * computed here from the SDM's Operation sections, not from the
 * emulator's source.
 *
 * The machine: a GDT at 0x500 (0x08 flat code32, 0x10 flat data, 0x18
 * data with base 0x10000, 0x20 flat code32), an IDT at 0x6000 whose gate
 * v leads to a stub at 0x7000 + 4v that exits with v; code at 1 MiB,
 * ESP 0x80000. A snippet that completes exits with DONE. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "emu_harness.h"

#define DONE 0xAA
#define EXIT_DONE "mov $0xaa, %al\n out %al, $0xf4\n"
#define CODE_GPA 0x100000u
#define DATA_GPA 0x300000u /* operands the host writes */
#define TABLE_GPA 0x400000u /* results of the BCD loops */
#define STACK_TOP 0x80000u

#define FL_CF 0x001u
#define FL_PF 0x004u
#define FL_AF 0x010u
#define FL_ZF 0x040u
#define FL_SF 0x080u
#define FL_OF 0x800u
#define FL_ARITH (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_OF)

static void pm32_setup(struct machine *m, struct x86_cpu_state *s)
{
	uint8_t *h = m->ram.host;
	uint64_t gdt[5] = { 0, 0x00CF9B000000FFFFULL, 0x00CF93000000FFFFULL,
			    0x00CF93010000FFFFULL, 0x00CF9B000000FFFFULL };
	memcpy(h + 0x500, gdt, sizeof(gdt));
	harness_flat_state(s, false);
	s->gdt.limit = sizeof(gdt) - 1;
	for (unsigned v = 0; v < 256; v++) {
		uint32_t stub = 0x7000 + 4 * v;
		uint8_t code[4] = { 0xB0, (uint8_t)v, 0xE6, 0xF4 }; /* mov $v, %al; out %al, $0xf4 */
		memcpy(h + stub, code, 4);
		uint8_t *g = h + 0x6000 + 8 * v;
		memset(g, 0, 8);
		g[0] = stub & 0xFF;
		g[1] = (stub >> 8) & 0xFF;
		g[2] = 0x08;
		g[5] = 0x8E; /* present 32-bit interrupt gate, DPL 0 */
	}
	s->idt.base = 0x6000;
	s->idt.limit = 256 * 8 - 1;
	s->cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE;
	s->rflags = 2;
	s->rip = CODE_GPA;
	s->gpr[R_RSP] = STACK_TOP;
}

/* A fresh 8 MiB machine in 32-bit protected mode with the snippet at
 * CODE_GPA; the caller may change *s and RAM before pm32_run. */
static struct machine *pm32_new(const uint8_t *start, const uint8_t *end, struct x86_cpu_state *s)
{
	struct machine *m = harness_new(8 * MiB, 1);
	memcpy(m->ram.host + CODE_GPA, start, (size_t)(end - start));
	pm32_setup(m, s);
	return m;
}

/* Runs from *s; returns the exit code (DONE or a vector), *s is the
 * state the snippet stopped in. */
static int pm32_run(struct machine *m, struct x86_cpu_state *s)
{
	assert_int_equal(emu_accel_ops.set_state(&m->vcpus[0], s), 0);
	int code = harness_run(m);
	emu_accel_ops.get_state(&m->vcpus[0], s);
	assert_int_equal(m->run_state, VM_STOP_EXIT);
	return code;
}

static uint32_t rd32(struct machine *m, uint64_t gpa)
{
	uint32_t v;
	memcpy(&v, m->ram.host + gpa, 4);
	return v;
}

static uint16_t rd16(struct machine *m, uint64_t gpa)
{
	uint16_t v;
	memcpy(&v, m->ram.host + gpa, 2);
	return v;
}

static void wr32(struct machine *m, uint64_t gpa, uint32_t v)
{
	memcpy(m->ram.host + gpa, &v, 4);
}

static void wr16(struct machine *m, uint64_t gpa, uint16_t v)
{
	memcpy(m->ram.host + gpa, &v, 2);
}

/* The exception frame an interrupt gate pushed without a privilege
 * change: EIP, CS, EFLAGS at the stub's ESP. */
static uint32_t frame_eip(struct machine *m, const struct x86_cpu_state *s)
{
	return rd32(m, s->gpr[R_RSP] & 0xFFFFFFFF);
}

static uint32_t szp8(uint8_t v)
{
	uint32_t f = v == 0 ? FL_ZF : 0;
	if (v & 0x80)
		f |= FL_SF;
	if (!(__builtin_popcount(v) & 1))
		f |= FL_PF;
	return f;
}

/* ---- BCD adjustments: every AL x CF x AF (x AH) ------------------------
 * Input index i: AL = bits 0-7, CF = bit 8, AF = bit 9, bit 10 sets OF,
 * SF, ZF and PF before the instruction (they must be overwritten or be
 * undefined), AH = bits 11-18. Entry i of the table at TABLE_GPA holds
 * AX (low word) and the low word of EFLAGS after the instruction. */
#define BCD_LOOP(name, insn, count)                                               \
	SNIPPET(name, ".code32\n xor %ecx, %ecx\n"                                    \
		"1: mov %ecx, %eax\n mov %ecx, %edx\n shr $11, %edx\n mov %dl, %ah\n" \
		"mov %ecx, %edx\n shr $8, %edx\n and $1, %edx\n"                    \
		"mov %ecx, %ebx\n shr $5, %ebx\n and $0x10, %ebx\n or %ebx, %edx\n"  \
		"test $0x400, %ecx\n jz 2f\n or $0x8c4, %edx\n 2: or $2, %edx\n"     \
		"push %edx\n popfl\n " insn "\n pushfl\n pop %edx\n"                 \
		"mov %ax, 0x400000(,%ecx,4)\n mov %dx, 0x400002(,%ecx,4)\n"          \
		"inc %ecx\n cmp $" #count ", %ecx\n jne 1b\n" EXIT_DONE)

#define BCD_SMALL 0x2000   /* AH 0..3 */
#define BCD_ALL (1u << 19) /* every AH */

BCD_LOOP(daa_loop, "daa", 0x2000)
BCD_LOOP(das_loop, "das", 0x2000)
BCD_LOOP(aaa_loop, "aaa", 0x80000)
BCD_LOOP(aas_loop, "aas", 0x80000)
BCD_LOOP(aam10_loop, ".byte 0xd4, 10", 0x2000)
BCD_LOOP(aam1_loop, ".byte 0xd4, 1", 0x2000)
BCD_LOOP(aam7_loop, ".byte 0xd4, 7", 0x2000)
BCD_LOOP(aam16_loop, ".byte 0xd4, 16", 0x2000)
BCD_LOOP(aam255_loop, ".byte 0xd4, 255", 0x2000)
BCD_LOOP(aad10_loop, ".byte 0xd5, 10", 0x80000)
BCD_LOOP(aad0_loop, ".byte 0xd5, 0", 0x80000)
BCD_LOOP(aad1_loop, ".byte 0xd5, 1", 0x80000)
BCD_LOOP(aad7_loop, ".byte 0xd5, 7", 0x80000)
BCD_LOOP(aad255_loop, ".byte 0xd5, 255", 0x80000)

struct bcd_out {
	uint16_t ax;
	uint32_t flags;
	uint32_t defined; /* the flags the SDM defines */
};

typedef struct bcd_out (*bcd_ref)(uint8_t al, uint8_t ah, bool cf, bool af, unsigned imm);

/* DAA (SDM): old_AL := AL; old_CF := CF; CF := 0;
 * IF (((AL AND 0FH) > 9) or AF = 1) THEN AL := AL + 6;
 *   CF := old_CF or (Carry from AL := AL + 6); AF := 1; ELSE AF := 0; FI;
 * IF ((old_AL > 99H) or (old_CF = 1)) THEN AL := AL + 60H; CF := 1;
 *   ELSE CF := 0; FI;
 * "The SF, ZF, and PF flags are set according to the result. The OF
 * flag is undefined." */
static struct bcd_out ref_daa(uint8_t al, uint8_t ah, bool cf, bool af, unsigned imm)
{
	uint8_t old_al = al;
	bool old_cf = cf;
	cf = false;
	if ((al & 0xF) > 9 || af) {
		cf = old_cf || al + 6 > 0xFF;
		al = (uint8_t)(al + 6);
		af = true;
	} else {
		af = false;
	}
	if (old_al > 0x99 || old_cf) {
		al = (uint8_t)(al + 0x60);
		cf = true;
	} else {
		cf = false;
	}
	uint32_t f = szp8(al) | (cf ? FL_CF : 0) | (af ? FL_AF : 0);
	return (struct bcd_out){ (uint16_t)(ah << 8 | al), f, FL_ARITH & ~FL_OF };
}

/* DAS (SDM): as DAA with subtraction, "CF := old_CF or (Borrow from
 * AL := AL - 6)", and no ELSE in the second step (CF keeps the first
 * step's value). "The OF flag is undefined." */
static struct bcd_out ref_das(uint8_t al, uint8_t ah, bool cf, bool af, unsigned imm)
{
	uint8_t old_al = al;
	bool old_cf = cf;
	cf = false;
	if ((al & 0xF) > 9 || af) {
		cf = old_cf || al < 6;
		al = (uint8_t)(al - 6);
		af = true;
	} else {
		af = false;
	}
	if (old_al > 0x99 || old_cf) {
		al = (uint8_t)(al - 0x60);
		cf = true;
	}
	uint32_t f = szp8(al) | (cf ? FL_CF : 0) | (af ? FL_AF : 0);
	return (struct bcd_out){ (uint16_t)(ah << 8 | al), f, FL_ARITH & ~FL_OF };
}

/* AAA (SDM): IF ((AL AND 0FH) > 9) or (AF = 1) THEN AX := AX + 106H;
 * AF := 1; CF := 1; ELSE AF := 0; CF := 0; FI; AL := AL AND 0FH;
 * "The OF, SF, ZF, and PF flags are undefined." */
static struct bcd_out ref_aaa(uint8_t al, uint8_t ah, bool cf, bool af, unsigned imm)
{
	uint16_t ax = (uint16_t)(ah << 8 | al);
	bool adj = (al & 0xF) > 9 || af;
	if (adj)
		ax = (uint16_t)(ax + 0x106);
	ax &= 0xFF0F;
	return (struct bcd_out){ ax, adj ? FL_AF | FL_CF : 0, FL_AF | FL_CF };
}

/* AAS (SDM): IF ((AL AND 0FH) > 9) or (AF = 1) THEN AX := AX - 6;
 * AH := AH - 1; AF := 1; CF := 1; AL := AL AND 0FH; ELSE CF := 0;
 * AF := 0; AL := AL AND 0FH; FI;
 * "The OF, SF, ZF, and PF flags are undefined." */
static struct bcd_out ref_aas(uint8_t al, uint8_t ah, bool cf, bool af, unsigned imm)
{
	uint16_t ax = (uint16_t)(ah << 8 | al);
	bool adj = (al & 0xF) > 9 || af;
	if (adj) {
		ax = (uint16_t)(ax - 6);
		ax = (uint16_t)(ax - 0x100);
	}
	ax &= 0xFF0F;
	return (struct bcd_out){ ax, adj ? FL_AF | FL_CF : 0, FL_AF | FL_CF };
}

/* AAM (SDM): tempAL := AL; AH := tempAL / imm8; AL := tempAL MOD imm8;
 * "The SF, ZF, and PF flags are set according to the resulting binary
 * value in the AL register. The OF, AF, and CF flags are undefined." */
static struct bcd_out ref_aam(uint8_t al, uint8_t ah, bool cf, bool af, unsigned imm)
{
	uint8_t q = (uint8_t)(al / imm), r = (uint8_t)(al % imm);
	return (struct bcd_out){ (uint16_t)(q << 8 | r), szp8(r), FL_SF | FL_ZF | FL_PF };
}

/* AAD (SDM): tempAL := AL; tempAH := AH;
 * AL := (tempAL + (tempAH * imm8)) AND FFH; AH := 0;
 * "The SF, ZF, and PF flags are set according to the resulting binary
 * value in the AL register; the OF, AF, and CF flags are undefined." */
static struct bcd_out ref_aad(uint8_t al, uint8_t ah, bool cf, bool af, unsigned imm)
{
	uint8_t r = (uint8_t)(al + ah * imm);
	return (struct bcd_out){ r, szp8(r), FL_SF | FL_ZF | FL_PF };
}

static void check_bcd(const uint8_t *start, const uint8_t *end, unsigned count, bcd_ref ref,
		      unsigned imm, const char *what)
{
	struct x86_cpu_state s;
	struct machine *m = pm32_new(start, end, &s);
	assert_int_equal(pm32_run(m, &s), DONE);
	unsigned bad = 0;
	for (unsigned i = 0; i < count; i++) {
		uint8_t al = i & 0xFF, ah = (i >> 11) & 0xFF;
		bool cf = (i >> 8) & 1, af = (i >> 9) & 1;
		struct bcd_out want = ref(al, ah, cf, af, imm);
		uint16_t ax = rd16(m, TABLE_GPA + 4 * i), fl = rd16(m, TABLE_GPA + 4 * i + 2);
		if (ax != want.ax || ((fl ^ want.flags) & want.defined) || (fl & ~FL_ARITH) != 2) {
			if (bad++ < 5)
				print_error("%s imm %u: AX %04x CF %d AF %d flags-in %s: got AX %04x "
					    "flags %03x, want AX %04x flags %03x (mask %03x)\n",
					    what, imm, (unsigned)(ah << 8 | al), cf, af,
					    (i & 0x400) ? "OSZP" : "-", ax, fl, want.ax,
					    want.flags, want.defined);
		}
	}
	harness_free(m);
	assert_int_equal(bad, 0);
}

static void test_daa(void **state)
{
	check_bcd(daa_loop_start, daa_loop_end, BCD_SMALL, ref_daa, 0, "DAA");
}

static void test_das(void **state)
{
	check_bcd(das_loop_start, das_loop_end, BCD_SMALL, ref_das, 0, "DAS");
}

static void test_aaa(void **state)
{
	check_bcd(aaa_loop_start, aaa_loop_end, BCD_ALL, ref_aaa, 0, "AAA");
}

static void test_aas(void **state)
{
	check_bcd(aas_loop_start, aas_loop_end, BCD_ALL, ref_aas, 0, "AAS");
}

static void test_aam(void **state)
{
	check_bcd(aam10_loop_start, aam10_loop_end, BCD_SMALL, ref_aam, 10, "AAM");
	check_bcd(aam1_loop_start, aam1_loop_end, BCD_SMALL, ref_aam, 1, "AAM");
	check_bcd(aam7_loop_start, aam7_loop_end, BCD_SMALL, ref_aam, 7, "AAM");
	check_bcd(aam16_loop_start, aam16_loop_end, BCD_SMALL, ref_aam, 16, "AAM");
	check_bcd(aam255_loop_start, aam255_loop_end, BCD_SMALL, ref_aam, 255, "AAM");
}

static void test_aad(void **state)
{
	check_bcd(aad10_loop_start, aad10_loop_end, BCD_ALL, ref_aad, 10, "AAD");
	check_bcd(aad0_loop_start, aad0_loop_end, BCD_ALL, ref_aad, 0, "AAD");
	check_bcd(aad1_loop_start, aad1_loop_end, BCD_ALL, ref_aad, 1, "AAD");
	check_bcd(aad7_loop_start, aad7_loop_end, BCD_ALL, ref_aad, 7, "AAD");
	check_bcd(aad255_loop_start, aad255_loop_end, BCD_ALL, ref_aad, 255, "AAD");
}

/* ---- exceptions: the vector delivered and the EIP pushed ---------------- */

/* AAM 0: "#DE If an immediate value of 0 is used." A fault: the frame's
 * EIP is the AAM itself and AX is unchanged. */
SNIPPET(aam0, ".code32\n mov $0x1234, %eax\n .globl aam0_at\n aam0_at: .byte 0xd4, 0\n" EXIT_DONE)
extern const uint8_t aam0_at[];

static void test_aam_zero_de(void **state)
{
	struct x86_cpu_state s;
	struct machine *m = pm32_new(aam0_start, aam0_end, &s);
	assert_int_equal(pm32_run(m, &s), 0 /* #DE */);
	assert_int_equal(frame_eip(m, &s), CODE_GPA + (aam0_at - aam0_start));
	assert_int_equal(rd32(m, (s.gpr[R_RSP] & 0xFFFFFFFF) + 4) & 0xFFFF, 0x08);
	assert_int_equal(s.gpr[R_RSP] & 0xFFFFFFFF, STACK_TOP - 12);
	harness_free(m);
}

/* BOUND (SDM): IF (ArrayIndex < LowerBound OR ArrayIndex > UpperBound)
 * THEN #BR; FI; -- signed compares, bounds at DATA_GPA (lower, upper). */
SNIPPET(bound32, ".code32\n .globl bound32_at\n bound32_at: bound %eax, 0x300000\n" EXIT_DONE)
SNIPPET(bound16, ".code32\n .globl bound16_at\n bound16_at: boundw %ax, 0x300000\n" EXIT_DONE)
extern const uint8_t bound32_at[], bound16_at[];

static void test_bound(void **state)
{
	static const int32_t idx32[] = { -5, 0, 100, -6, 101, INT32_MIN, INT32_MAX, 50 };
	for (unsigned k = 0; k < ARRAY_SIZE(idx32); k++) {
		struct x86_cpu_state s;
		struct machine *m = pm32_new(bound32_start, bound32_end, &s);
		wr32(m, DATA_GPA, (uint32_t)-5);
		wr32(m, DATA_GPA + 4, 100);
		s.gpr[R_RAX] = (uint32_t)idx32[k];
		bool out = idx32[k] < -5 || idx32[k] > 100;
		int code = pm32_run(m, &s);
		assert_int_equal(code, out ? 5 /* #BR */ : DONE);
		if (out)
			assert_int_equal(frame_eip(m, &s), CODE_GPA + (bound32_at - bound32_start));
		harness_free(m);
	}
	/* 16-bit operands: the bounds are words; EAX's upper half is ignored. */
	static const int16_t idx16[] = { -300, -301, 7, 0x7FFF, 299, 300 };
	for (unsigned k = 0; k < ARRAY_SIZE(idx16); k++) {
		struct x86_cpu_state s;
		struct machine *m = pm32_new(bound16_start, bound16_end, &s);
		wr16(m, DATA_GPA, (uint16_t)-300);
		wr16(m, DATA_GPA + 2, 299);
		wr32(m, DATA_GPA + 4, 0); /* a dword-bounds reading would see upper 0 */
		s.gpr[R_RAX] = 0xABCD0000u | (uint16_t)idx16[k];
		bool out = idx16[k] < -300 || idx16[k] > 299;
		int code = pm32_run(m, &s);
		assert_int_equal(code, out ? 5 : DONE);
		if (out)
			assert_int_equal(frame_eip(m, &s), CODE_GPA + (bound16_at - bound16_start));
		harness_free(m);
	}
}

/* INTO (SDM): IF OF = 1 THEN "the processor generates an overflow
 * exception (#OF)" -- a trap: the frame's EIP is the next instruction. */
SNIPPET(into, ".code32\n into\n .globl into_next\n into_next:\n" EXIT_DONE)
extern const uint8_t into_next[];

static void test_into(void **state)
{
	for (int of = 0; of < 2; of++) {
		struct x86_cpu_state s;
		struct machine *m = pm32_new(into_start, into_end, &s);
		s.rflags = 2 | FL_CF | FL_ZF | (of ? FL_OF : 0);
		int code = pm32_run(m, &s);
		if (of) {
			assert_int_equal(code, 4 /* #OF */);
			assert_int_equal(frame_eip(m, &s), CODE_GPA + (into_next - into_start));
			assert_int_equal(rd32(m, (s.gpr[R_RSP] & 0xFFFFFFFF) + 8) & FL_ARITH,
					 FL_CF | FL_ZF | FL_OF);
		} else {
			assert_int_equal(code, DONE);
			assert_int_equal(s.gpr[R_RSP], STACK_TOP);
		}
		harness_free(m);
	}
}

/* MOV to CS (8E /1) is #UD ("If an attempt is made to load the CS
 * register"); there is no POP CS encoding after the 8086 (0F is the
 * two-byte escape). */
SNIPPET(movcs, ".code32\n mov $8, %eax\n .byte 0x8e, 0xc8\n" EXIT_DONE)

static void test_mov_cs_ud(void **state)
{
	struct x86_cpu_state s;
	struct machine *m = pm32_new(movcs_start, movcs_end, &s);
	assert_int_equal(pm32_run(m, &s), 6 /* #UD */);
	assert_int_equal(frame_eip(m, &s), CODE_GPA + 5);
	harness_free(m);
}

/* ---- SALC (D6, undocumented): AL := CF ? FFH : 00H, flags unchanged -- */
SNIPPET(salc, ".code32\n mov $0x12345678, %eax\n .byte 0xd6\n pushfl\n pop %edx\n mov %eax, %esi\n" EXIT_DONE)

static void test_salc(void **state)
{
	static const uint32_t flags_in[] = { 2, 2 | FL_CF, 2 | FL_ARITH, 2 | (FL_ARITH & ~FL_CF) };
	for (unsigned k = 0; k < ARRAY_SIZE(flags_in); k++) {
		struct x86_cpu_state s;
		struct machine *m = pm32_new(salc_start, salc_end, &s);
		s.rflags = flags_in[k];
		assert_int_equal(pm32_run(m, &s), DONE);
		assert_int_equal(s.gpr[R_RSI], 0x12345600u | ((flags_in[k] & FL_CF) ? 0xFF : 0));
		assert_int_equal(s.gpr[R_RDX] & FL_ARITH, flags_in[k] & FL_ARITH);
		harness_free(m);
	}
}

/* ---- PUSHA/PUSHAD, POPA/POPAD -------------------------------------------
 * PUSHAD (SDM): Temp := (ESP); Push(EAX); Push(ECX); Push(EDX);
 * Push(EBX); Push(Temp); Push(EBP); Push(ESI); Push(EDI);
 * POPAD: EDI := Pop(); ESI := Pop(); EBP := Pop(); Increment ESP by 4;
 * (* Skip next 4 bytes of stack *) EBX := Pop(); EDX := Pop();
 * ECX := Pop(); EAX := Pop(); -- and the 16-bit forms with words. */
SNIPPET(pushad, ".code32\n pushal\n mov %esp, %edi\n" EXIT_DONE)
SNIPPET(pushaw, ".code32\n pushaw\n mov %esp, %edi\n" EXIT_DONE)
SNIPPET(popad, ".code32\n popal\n mov %eax, 0x300100\n" EXIT_DONE)
SNIPPET(popaw, ".code32\n popaw\n mov %eax, 0x300100\n" EXIT_DONE)

static const unsigned pusha_order[8] = { R_RAX, R_RCX, R_RDX, R_RBX, R_RSP, R_RBP, R_RSI, R_RDI };

static void test_pusha(void **state)
{
	for (unsigned size = 2; size <= 4; size += 2) {
		struct x86_cpu_state s;
		struct machine *m = size == 4 ? pm32_new(pushad_start, pushad_end, &s)
					      : pm32_new(pushaw_start, pushaw_end, &s);
		for (unsigned r = 0; r < 8; r++)
			if (r != R_RSP)
				s.gpr[r] = 0x11111111u * (r + 1) + 0x01020304u;
		assert_int_equal(pm32_run(m, &s), DONE);
		uint32_t sp = STACK_TOP - 8 * size;
		assert_int_equal(s.gpr[R_RDI], sp);
		for (unsigned k = 0; k < 8; k++) {
			unsigned r = pusha_order[k];
			uint32_t want = r == R_RSP ? STACK_TOP : 0x11111111u * (r + 1) + 0x01020304u;
			uint64_t at = STACK_TOP - (k + 1) * size;
			if (size == 4)
				assert_int_equal(rd32(m, at), want);
			else
				assert_int_equal(rd16(m, at), want & 0xFFFF);
		}
		harness_free(m);
	}
}

static void test_popa(void **state)
{
	for (unsigned size = 2; size <= 4; size += 2) {
		struct x86_cpu_state s;
		struct machine *m = size == 4 ? pm32_new(popad_start, popad_end, &s)
					      : pm32_new(popaw_start, popaw_end, &s);
		uint32_t sp = STACK_TOP - 8 * size;
		for (unsigned r = 0; r < 8; r++)
			s.gpr[r] = 0xEEEE0000u | r;
		s.gpr[R_RSP] = sp;
		/* the stack as PUSHA leaves it: EDI at the lowest address */
		for (unsigned k = 0; k < 8; k++) {
			unsigned r = pusha_order[7 - k];
			uint32_t v = 0xA0B0C0D0u + r * 0x01010101u;
			if (size == 4)
				wr32(m, sp + k * size, v);
			else
				wr16(m, sp + k * size, (uint16_t)v);
		}
		assert_int_equal(pm32_run(m, &s), DONE);
		assert_int_equal(s.gpr[R_RSP], STACK_TOP); /* the stored ESP is skipped */
		for (unsigned r = 0; r < 8; r++) {
			if (r == R_RSP)
				continue;
			uint32_t v = 0xA0B0C0D0u + r * 0x01010101u;
			uint32_t want = size == 4 ? v : (0xEEEE0000u | (v & 0xFFFF));
			uint32_t got = r == R_RAX ? rd32(m, DATA_GPA + 0x100) : (uint32_t)s.gpr[r];
			assert_int_equal(got, want);
		}
		harness_free(m);
	}
}

/* ---- PUSH/POP ES, CS, SS, DS --------------------------------------------
 * 32-bit PUSH of a segment register: "either a zero-extended value is
 * pushed on the stack or the segment selector is written on the stack
 * using a 16-bit move" -- only the low word is compared. The 0x66 form
 * pushes a word. POP loads the selector and its descriptor (0x18 has
 * base 0x10000). */
SNIPPET(pushseg, ".code32\n"
	"push %es\n push %cs\n push %ss\n push %ds\n pushw %ds\n mov %esp, %esi\n"
	"push $0x18\n pop %es\n mov %es, %ebx\n push $0x10\n pop %es\n pushw $0x18\n popw %es\n"
	"push $0x10\n pop %ss\n"
	"mov %esp, %edi\n push $0x18\n pop %ds\n" EXIT_DONE)

static void test_push_pop_seg(void **state)
{
	struct x86_cpu_state s;
	struct machine *m = pm32_new(pushseg_start, pushseg_end, &s);
	memset(m->ram.host + STACK_TOP - 64, 0xFF, 64);
	assert_int_equal(pm32_run(m, &s), DONE);
	assert_int_equal(rd16(m, STACK_TOP - 4), 0x10);  /* ES */
	assert_int_equal(rd16(m, STACK_TOP - 8), 0x08);  /* CS */
	assert_int_equal(rd16(m, STACK_TOP - 12), 0x10); /* SS */
	assert_int_equal(rd16(m, STACK_TOP - 16), 0x10); /* DS */
	assert_int_equal(rd16(m, STACK_TOP - 18), 0x10); /* DS, 16-bit push */
	assert_int_equal(s.gpr[R_RSI], STACK_TOP - 18);
	assert_int_equal(s.gpr[R_RDI], STACK_TOP - 18);    /* each pop undid its push */
	assert_int_equal(s.gpr[R_RSP], STACK_TOP - 18);
	assert_int_equal(s.seg[SEG_ES].selector, 0x18);
	assert_int_equal(s.seg[SEG_ES].base, 0x10000);
	assert_int_equal(s.gpr[R_RBX] & 0xFFFF, 0x18); /* the 32-bit POP ES */
	assert_int_equal(s.seg[SEG_DS].selector, 0x18);
	assert_int_equal(s.seg[SEG_DS].base, 0x10000);
	assert_int_equal(s.seg[SEG_SS].selector, 0x10);
	harness_free(m);
}

/* ---- LES/LDS: r32 := offset, Sreg := selector (m16:32 and m16:16) ----- */
SNIPPET(lesds, ".code32\n"
	"les 0x300000, %ebx\n mov %es, %ecx\n"
	"push $0x10\n pop %es\n lesw 0x300010, %dx\n"
	"lds 0x300020, %esi\n" EXIT_DONE)
SNIPPET(lds_gp, ".code32\n mov $0x55, %esi\n lds 0x300000, %esi\n" EXIT_DONE)

static void test_les_lds(void **state)
{
	struct x86_cpu_state s;
	struct machine *m = pm32_new(lesds_start, lesds_end, &s);
	wr32(m, DATA_GPA, 0x12345678);
	wr16(m, DATA_GPA + 4, 0x18);
	wr16(m, DATA_GPA + 0x10, 0xBEEF);
	wr16(m, DATA_GPA + 0x12, 0x18);
	wr32(m, DATA_GPA + 0x20, 0xCAFEF00D);
	wr16(m, DATA_GPA + 0x24, 0x18);
	s.gpr[R_RDX] = 0x99990000;
	assert_int_equal(pm32_run(m, &s), DONE);
	assert_int_equal(s.gpr[R_RBX], 0x12345678);
	assert_int_equal(s.gpr[R_RCX] & 0xFFFF, 0x18);
	assert_int_equal(s.gpr[R_RDX], 0x9999BEEF);
	assert_int_equal(s.seg[SEG_ES].selector, 0x18);
	assert_int_equal(s.seg[SEG_ES].base, 0x10000);
	assert_int_equal(s.gpr[R_RSI], 0xCAFEF00D);
	assert_int_equal(s.seg[SEG_DS].selector, 0x18);
	assert_int_equal(s.seg[SEG_DS].base, 0x10000);
	harness_free(m);

	/* a selector past the GDT limit: #GP, the register unchanged */
	m = pm32_new(lds_gp_start, lds_gp_end, &s);
	wr32(m, DATA_GPA, 0x12345678);
	wr16(m, DATA_GPA + 4, 0x80);
	assert_int_equal(pm32_run(m, &s), 13 /* #GP */);
	assert_int_equal(rd32(m, s.gpr[R_RSP] & 0xFFFFFFFF), 0x80); /* error code */
	assert_int_equal(rd32(m, (s.gpr[R_RSP] & 0xFFFFFFFF) + 4), CODE_GPA + 5);
	assert_int_equal(s.gpr[R_RSI], 0x55);
	assert_int_equal(s.seg[SEG_DS].selector, 0x10);
	harness_free(m);
}

/* ---- ARPL (SDM): IF DEST[RPL] < SRC[RPL] THEN ZF := 1;
 * DEST[RPL] := SRC[RPL]; ELSE ZF := 0; FI; -- register and memory forms */
SNIPPET(arpl, ".code32\n arpl %cx, %ax\n pushfl\n pop %edx\n arpl %cx, 0x300000\n"
	"pushfl\n pop %edi\n mov %eax, %esi\n" EXIT_DONE)

static void test_arpl(void **state)
{
	for (unsigned dst = 0; dst < 4; dst++) {
		for (unsigned src = 0; src < 4; src++) {
			struct x86_cpu_state s;
			struct machine *m = pm32_new(arpl_start, arpl_end, &s);
			s.gpr[R_RAX] = 0xDEAD1230u | dst;
			s.gpr[R_RCX] = 0x4560u | src;
			s.rflags = 2 | (FL_ARITH & ~FL_ZF);
			wr32(m, DATA_GPA, 0xBEEF7890u | dst);
			assert_int_equal(pm32_run(m, &s), DONE);
			bool adj = dst < src;
			unsigned rpl = adj ? src : dst;
			assert_int_equal(s.gpr[R_RSI], 0xDEAD1230u | rpl);
			assert_int_equal(rd32(m, DATA_GPA), 0xBEEF7890u | rpl);
			uint32_t want = (FL_ARITH & ~FL_ZF) | (adj ? FL_ZF : 0);
			assert_int_equal(s.gpr[R_RDX] & FL_ARITH, want);
			assert_int_equal(s.gpr[R_RDI] & FL_ARITH, want);
			harness_free(m);
		}
	}
}

/* ---- one-byte INC/DEC r32/r16 (40-4F) -----------------------------------
 * Each register in turn: ESP = 0x80000, flags from DATA_GPA+4, register
 * from DATA_GPA, the opcode, then the register to slot 0x300100+16k and
 * the flags to 0x300108+16k. "The CF flag is not affected. The OF, SF,
 * ZF, AF, and PF flags are set according to the result." */
#define INCDEC_BODY(prefix)                                                         \
	".code32\n .set k, 0\n"                                                     \
	".irp reg, eax,ecx,edx,ebx,esp,ebp,esi,edi\n"                               \
	".irp op, 0x40,0x48\n"                                                      \
	"mov $0x80000, %esp\n pushl 0x300004\n popfl\n mov 0x300000, %\\reg\n"     \
	prefix ".byte \\op + (k & 7)\n"                                             \
	"mov %\\reg, 0x300100+k*16+(\\op-0x40)\n mov $0x80000, %esp\n pushfl\n"    \
	"popl 0x300104+k*16+(\\op-0x40)\n"                                          \
	".endr\n .set k, k+1\n .endr\n" EXIT_DONE

SNIPPET(incdec32, INCDEC_BODY(""))
SNIPPET(incdec16, INCDEC_BODY(".byte 0x66\n"))

static void test_inc_dec_r(void **state)
{
	static const uint32_t vals[] = { 0, 1, 0xF, 0x10, 0x7F, 0x7FFF, 0x8000, 0xFFFF,
					 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x12345678 };
	static const uint32_t flags_in[] = { 2, 2 | FL_ARITH };
	for (unsigned size = 2; size <= 4; size += 2) {
		for (unsigned vi = 0; vi < ARRAY_SIZE(vals); vi++) {
			for (unsigned fi = 0; fi < 2; fi++) {
				struct x86_cpu_state s;
				struct machine *m = size == 4 ? pm32_new(incdec32_start, incdec32_end, &s)
							      : pm32_new(incdec16_start, incdec16_end, &s);
				uint32_t v = vals[vi];
				wr32(m, DATA_GPA, v);
				wr32(m, DATA_GPA + 4, flags_in[fi]);
				assert_int_equal(pm32_run(m, &s), DONE);
				uint32_t mask = size == 4 ? 0xFFFFFFFF : 0xFFFF;
				uint32_t sign = size == 4 ? 0x80000000 : 0x8000;
				for (unsigned r = 0; r < 8; r++) {
					for (int dec = 0; dec < 2; dec++) {
						uint32_t a = v & mask;
						uint32_t res = (dec ? a - 1 : a + 1) & mask;
						uint32_t f = flags_in[fi] & FL_CF;
						if (res == 0)
							f |= FL_ZF;
						if (res & sign)
							f |= FL_SF;
						if (!(__builtin_popcount(res & 0xFF) & 1))
							f |= FL_PF;
						if ((a ^ 1 ^ res) & 0x10)
							f |= FL_AF;
						if (dec ? a == sign : a == sign - 1)
							f |= FL_OF;
						uint32_t want = (v & ~mask) | res;
						uint64_t at = DATA_GPA + 0x100 + r * 16 + dec * 8;
						if (rd32(m, at) != want || (rd32(m, at + 4) & FL_ARITH) != f)
							print_error("%s r%u size %u v %08x flags %x: got %08x/%03x "
								    "want %08x/%03x\n", dec ? "DEC" : "INC", r, size,
								    v, flags_in[fi], rd32(m, at),
								    rd32(m, at + 4) & FL_ARITH, want, f);
						assert_int_equal(rd32(m, at), want);
						assert_int_equal(rd32(m, at + 4) & FL_ARITH, f);
					}
				}
				harness_free(m);
			}
		}
	}
}

/* ---- 82 /op ib: the 32-bit-only alias of 80 /op ib on AL ----------------
 * For imm8 in the .irp list and each /op, slot 0x300100 + 8*(op + 8*j)
 * gets AL and 0x300104 + ... the flags. */
SNIPPET(grp82, ".code32\n .set j, 0\n"
	".irp imm, 0x00,0x01,0x7f,0x80,0xff\n"
	".irp op, 0,1,2,3,4,5,6,7\n"
	"mov $0x80000, %esp\n pushl 0x300004\n popfl\n mov 0x300000, %eax\n"
	".byte 0x82, 0xc0 + \\op * 8, \\imm\n"
	"mov %eax, 0x300100+(\\op+8*j)*8\n pushfl\n popl 0x300104+(\\op+8*j)*8\n"
	".endr\n .set j, j+1\n .endr\n" EXIT_DONE)

/* The SDM's ADD/OR/ADC/SBB/AND/SUB/XOR/CMP on bytes: CF/OF from the
 * carry and signed overflow; AF from bit 4; for the logical ones "The OF
 * and CF flags are cleared ... The state of the AF flag is undefined." */
static uint8_t ref_alu8(unsigned op, uint8_t a, uint8_t b, bool cf_in, uint32_t *f, uint32_t *defined)
{
	unsigned c = cf_in && (op == 2 || op == 3);
	unsigned r;
	bool cf = false, of = false;
	*defined = FL_ARITH;
	switch (op) {
	case 0:
	case 2:
		r = a + b + c;
		cf = r > 0xFF;
		of = (~(a ^ b) & (a ^ r)) & 0x80;
		break;
	case 3:
	case 5:
	case 7:
		r = (unsigned)a - b - c;
		cf = a < b + c;
		of = ((a ^ b) & (a ^ r)) & 0x80;
		break;
	case 1: r = a | b; *defined &= ~FL_AF; break;
	case 4: r = a & b; *defined &= ~FL_AF; break;
	default: r = a ^ b; *defined &= ~FL_AF; break;
	}
	uint8_t res = (uint8_t)r;
	*f = szp8(res) | (cf ? FL_CF : 0) | (of ? FL_OF : 0) | ((a ^ b ^ res) & 0x10 ? FL_AF : 0);
	return op == 7 ? a : res;
}

static void test_grp82(void **state)
{
	static const uint8_t imms[5] = { 0x00, 0x01, 0x7f, 0x80, 0xff };
	static const uint8_t als[] = { 0x00, 0x01, 0x0F, 0x7F, 0x80, 0xFF, 0x5A };
	static const uint32_t flags_in[] = { 2, 2 | FL_ARITH };
	for (unsigned ai = 0; ai < ARRAY_SIZE(als); ai++) {
		for (unsigned fi = 0; fi < 2; fi++) {
			struct x86_cpu_state s;
			struct machine *m = pm32_new(grp82_start, grp82_end, &s);
			wr32(m, DATA_GPA, 0x76543200u | als[ai]);
			wr32(m, DATA_GPA + 4, flags_in[fi]);
			assert_int_equal(pm32_run(m, &s), DONE);
			for (unsigned j = 0; j < 5; j++) {
				for (unsigned op = 0; op < 8; op++) {
					uint32_t f, defined;
					uint8_t al = ref_alu8(op, als[ai], imms[j], flags_in[fi] & FL_CF, &f, &defined);
					uint64_t at = DATA_GPA + 0x100 + (op + 8 * j) * 8;
					if (rd32(m, at) != (0x76543200u | al) || ((rd32(m, at + 4) ^ f) & defined))
						print_error("82 /%u AL %02x imm %02x CF %u: got %08x/%03x want %02x/%03x\n",
							    op, als[ai], imms[j], fi, rd32(m, at),
							    rd32(m, at + 4) & FL_ARITH, al, f);
					assert_int_equal(rd32(m, at), 0x76543200u | al);
					assert_int_equal((rd32(m, at + 4) ^ f) & defined, 0);
				}
			}
			harness_free(m);
		}
	}
}

/* ---- far CALL/JMP ptr16:32 (9A/EA) --------------------------------------
 * CALL pushes CS then EIP (32-bit slots; the CS slot's low word is the
 * selector) and loads CS:EIP; JMP loads CS:EIP. 0x20 is a second flat
 * code segment so the change of CS is visible. */
SNIPPET(farxfer, ".code32\n"
	"xor %ebx, %ebx\n xor %ecx, %ecx\n"
	"lcall $0x20, $(farxfer_tgt - farxfer_start + 0x100000)\n"
	".globl farxfer_ret\n farxfer_ret: hlt\n"
	"farxfer_tgt: mov %cs, %bx\n mov (%esp), %esi\n mov 4(%esp), %edi\n mov %esp, %ebp\n"
	"ljmp $0x08, $(farxfer_back - farxfer_start + 0x100000)\n hlt\n"
	"farxfer_back: mov %cs, %cx\n" EXIT_DONE)
SNIPPET(farjmp_gp, ".code32\n ljmp $0x80, $0\n" EXIT_DONE)
extern const uint8_t farxfer_ret[];

static void test_far_call_jmp(void **state)
{
	struct x86_cpu_state s;
	struct machine *m = pm32_new(farxfer_start, farxfer_end, &s);
	assert_int_equal(pm32_run(m, &s), DONE);
	assert_int_equal(s.gpr[R_RBX], 0x20);
	assert_int_equal(s.gpr[R_RSI], CODE_GPA + (farxfer_ret - farxfer_start));
	assert_int_equal(s.gpr[R_RDI] & 0xFFFF, 0x08);
	assert_int_equal(s.gpr[R_RBP], STACK_TOP - 8);
	assert_int_equal(s.gpr[R_RCX], 0x08);
	assert_int_equal(s.seg[SEG_CS].selector, 0x08);
	harness_free(m);

	/* a selector past the GDT limit: #GP at the JMP */
	m = pm32_new(farjmp_gp_start, farjmp_gp_end, &s);
	assert_int_equal(pm32_run(m, &s), 13);
	/* #GP pushes an error code (the selector's index, TI 0, EXT 0) */
	assert_int_equal(rd32(m, s.gpr[R_RSP] & 0xFFFFFFFF), 0x80);
	assert_int_equal(rd32(m, (s.gpr[R_RSP] & 0xFFFFFFFF) + 4), CODE_GPA);
	harness_free(m);
}

/* ---- real mode: the 16-bit default operand size -------------------------
 * Code at 1000:0000, SS:SP 0000:6000, the IVT sending vector v to
 * 0000:(7000 + 4v) (the same stubs). */
static struct machine *real_new(const uint8_t *start, const uint8_t *end, struct x86_cpu_state *s)
{
	struct machine *m = harness_new(8 * MiB, 1);
	uint8_t *h = m->ram.host;
	memcpy(h + 0x10000, start, (size_t)(end - start));
	for (unsigned v = 0; v < 256; v++) {
		uint16_t stub = (uint16_t)(0x7000 + 4 * v), ivt[2] = { stub, 0 };
		uint8_t code[4] = { 0xB0, (uint8_t)v, 0xE6, 0xF4 };
		memcpy(h + stub, code, 4);
		memcpy(h + 4 * v, ivt, 4);
	}
	x86_reset_state(s, true);
	s->seg[SEG_CS].selector = 0x1000;
	s->seg[SEG_CS].base = 0x10000;
	s->rip = 0;
	s->gpr[R_RSP] = 0x6000;
	return m;
}

/* PUSHA (16-bit default), POP DS (base = selector * 16), LES m16:16, far
 * CALL ptr16:16 to 1001:(target - 0x10), then ARPL: "#UD The ARPL
 * instruction is not recognized in real-address mode." */
SNIPPET(realmode, ".code16\n"
	"mov $0x1111, %ax\n mov $0x2222, %cx\n mov $0x3333, %dx\n mov $0x4444, %bx\n"
	"mov $0x5555, %bp\n mov $0x6666, %si\n mov $0x7777, %di\n pusha\n"
	"push $0x3000\n pop %ds\n les 0x10, %bx\n"
	"lcall $0x1001, $(realmode_tgt - realmode_start - 0x10)\n .globl realmode_ret\n realmode_ret: hlt\n"
	"realmode_tgt: mov %cs, %cx\n mov %sp, %bp\n"
	".globl realmode_arpl\n realmode_arpl: arpl %cx, %ax\n" EXIT_DONE)
extern const uint8_t realmode_arpl[], realmode_ret[];

static void test_real_mode(void **state)
{
	struct x86_cpu_state s;
	struct machine *m = real_new(realmode_start, realmode_end, &s);
	wr16(m, 0x30010, 0xBEEF);
	wr16(m, 0x30012, 0x2345);
	assert_int_equal(pm32_run(m, &s), 6 /* #UD at the ARPL */);
	static const uint16_t pushed[8] = { 0x1111, 0x2222, 0x3333, 0x4444, 0x6000, 0x5555, 0x6666, 0x7777 };
	for (unsigned k = 0; k < 8; k++)
		assert_int_equal(rd16(m, 0x6000 - 2 * (k + 1)), pushed[k]);
	assert_int_equal(s.seg[SEG_DS].selector, 0x3000);
	assert_int_equal(s.seg[SEG_DS].base, 0x30000);
	assert_int_equal(s.gpr[R_RBX] & 0xFFFF, 0xBEEF);
	assert_int_equal(s.seg[SEG_ES].selector, 0x2345);
	assert_int_equal(s.seg[SEG_ES].base, 0x23450);
	/* the far CALL pushed CS then IP (words) below the PUSHA frame */
	uint32_t sp = 0x6000 - 16;
	assert_int_equal(rd16(m, sp - 2), 0x1000);
	assert_int_equal(rd16(m, sp - 4), realmode_ret - realmode_start);
	assert_int_equal(s.gpr[R_RCX] & 0xFFFF, 0x1001);
	assert_int_equal(s.gpr[R_RBP] & 0xFFFF, sp - 4);
	/* the #UD frame: IP of the ARPL (in segment 1001), CS 1001 */
	uint32_t fsp = (uint32_t)(s.gpr[R_RSP] & 0xFFFF);
	assert_int_equal(rd16(m, fsp), (realmode_arpl - realmode_start) - 0x10);
	assert_int_equal(rd16(m, fsp + 2), 0x1001);
	harness_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_daa),
		cmocka_unit_test(test_das),
		cmocka_unit_test(test_aaa),
		cmocka_unit_test(test_aas),
		cmocka_unit_test(test_aam),
		cmocka_unit_test(test_aad),
		cmocka_unit_test(test_aam_zero_de),
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_into),
		cmocka_unit_test(test_mov_cs_ud),
		cmocka_unit_test(test_salc),
		cmocka_unit_test(test_pusha),
		cmocka_unit_test(test_popa),
		cmocka_unit_test(test_push_pop_seg),
		cmocka_unit_test(test_les_lds),
		cmocka_unit_test(test_arpl),
		cmocka_unit_test(test_inc_dec_r),
		cmocka_unit_test(test_grp82),
		cmocka_unit_test(test_far_call_jmp),
		cmocka_unit_test(test_real_mode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
