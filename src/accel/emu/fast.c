/* Specialised handlers for the commonest instruction forms. The decoder
 * picks one when the operands allow (register forms, 32/64-bit operand
 * size, flat memory), so the hot path skips the generic operand plumbing.
 * Each must behave exactly like the generic handler it replaces (the
 * differential tests run both: see tests/diff). */
#include "accel/emu/alu.h"
#include "accel/emu/cpu.h"

/* MOV r/m, r and MOV r, r/m, register forms */
static void mov_rr64(struct emu_cpu *c, const struct insn *i)
{
	c->r[i->op == 0x89 ? i->rm : i->reg] = c->r[i->op == 0x89 ? i->reg : i->rm];
	NEXT_INSN(c, i);
}

static void mov_rr32(struct emu_cpu *c, const struct insn *i)
{
	c->r[i->op == 0x89 ? i->rm : i->reg] = (uint32_t)c->r[i->op == 0x89 ? i->reg : i->rm];
	NEXT_INSN(c, i);
}

static void mov_store(struct emu_cpu *c, const struct insn *i)
{
	mem_write(c, i->seg, insn_ea(c, i), i->osize, c->r[i->reg]);
	NEXT_INSN(c, i);
}

static void mov_load64(struct emu_cpu *c, const struct insn *i)
{
	c->r[i->reg] = mem_read(c, i->seg, insn_ea(c, i), 8);
	NEXT_INSN(c, i);
}

static void mov_load32(struct emu_cpu *c, const struct insn *i)
{
	c->r[i->reg] = mem_read(c, i->seg, insn_ea(c, i), 4);
	NEXT_INSN(c, i);
}

/* ALU reg, reg (00-3F with mod 3, osize 4/8): no locking, no memory */
static void alu_rr(struct emu_cpu *c, const struct insn *i)
{
	unsigned kind = (i->op >> 3) & 7, size = i->osize;
	unsigned dst = (i->op & 2) ? i->reg : i->rm, src = (i->op & 2) ? i->rm : i->reg;
	uint64_t r = alu(c, kind, size, c->r[dst], c->r[src]);
	if (kind != ALU_CMP)
		c->r[dst] = r; /* size 4 results are already zero-extended */
	NEXT_INSN(c, i);
}

/* ALU reg, imm (81/83 with mod 3, osize 4/8) */
static void alu_ri(struct emu_cpu *c, const struct insn *i)
{
	unsigned kind = i->reg & 7;
	uint64_t r = alu(c, kind, i->osize, c->r[i->rm], i->imm);
	if (kind != ALU_CMP)
		c->r[i->rm] = r;
	NEXT_INSN(c, i);
}

/* ALU reg, [mem] (03, 0B, 13, ... 3B with a memory operand, osize 4/8) */
static void alu_rm(struct emu_cpu *c, const struct insn *i)
{
	unsigned kind = (i->op >> 3) & 7;
	uint64_t b = mem_read(c, i->seg, insn_ea(c, i), i->osize);
	uint64_t r = alu(c, kind, i->osize, c->r[i->reg], b);
	if (kind != ALU_CMP)
		c->r[i->reg] = r;
	NEXT_INSN(c, i);
}

/* The same, specialised per operation and size (no dispatch on the kind):
 * ADD, OR, AND, SUB, XOR, CMP on 32/64-bit operands. */
#define ALU_SET_FLAGS(CC, SIZE)                                                \
	do {                                                                   \
		c->cc_op = (CC);                                               \
		c->cc_a = a;                                                   \
		c->cc_b = b;                                                   \
		c->cc_res = r;                                                 \
		c->cc_size = (SIZE);                                           \
	} while (0)

#define DEF_ALU(NAME, EXPR, CC, WRITE, SIZE, T)                                        \
	static void rr_##NAME##SIZE(struct emu_cpu *c, const struct insn *i)           \
	{                                                                              \
		unsigned dst = (i->op & 2) ? i->reg : i->rm, src = (i->op & 2) ? i->rm : i->reg; \
		uint64_t a = (T)c->r[dst], b = (T)c->r[src], r = (T)(EXPR);            \
		ALU_SET_FLAGS(CC, SIZE);                                               \
		if (WRITE)                                                             \
			c->r[dst] = r;                                                 \
		NEXT_INSN(c, i);                                                       \
	}                                                                              \
	static void ri_##NAME##SIZE(struct emu_cpu *c, const struct insn *i)           \
	{                                                                              \
		uint64_t a = (T)c->r[i->rm], b = (T)i->imm, r = (T)(EXPR);             \
		ALU_SET_FLAGS(CC, SIZE);                                               \
		if (WRITE)                                                             \
			c->r[i->rm] = r;                                               \
		NEXT_INSN(c, i);                                                       \
	}                                                                              \
	static void rm_##NAME##SIZE(struct emu_cpu *c, const struct insn *i)           \
	{                                                                              \
		uint64_t a = (T)c->r[i->reg];                                          \
		uint64_t b = (T)mem_read(c, i->seg, insn_ea(c, i), SIZE), r = (T)(EXPR); \
		ALU_SET_FLAGS(CC, SIZE);                                               \
		if (WRITE)                                                             \
			c->r[i->reg] = r;                                              \
		NEXT_INSN(c, i);                                                       \
	}

#define DEF_ALU_SIZES(NAME, EXPR, CC, WRITE)          \
	DEF_ALU(NAME, EXPR, CC, WRITE, 4, uint32_t)   \
	DEF_ALU(NAME, EXPR, CC, WRITE, 8, uint64_t)

DEF_ALU_SIZES(add, a + b, CC_ADD, 1)
DEF_ALU_SIZES(or, a | b, CC_LOGIC, 1)
DEF_ALU_SIZES(and, a & b, CC_LOGIC, 1)
DEF_ALU_SIZES(sub, a - b, CC_SUB, 1)
DEF_ALU_SIZES(xor, a ^ b, CC_LOGIC, 1)
DEF_ALU_SIZES(cmp, a - b, CC_SUB, 0)

/* [kind][size == 8] for the kinds above; NULL: use the generic one */
static const insn_fn alu_rr_fast[8][2] = {
	[ALU_ADD] = { rr_add4, rr_add8 }, [ALU_OR] = { rr_or4, rr_or8 },
	[ALU_AND] = { rr_and4, rr_and8 }, [ALU_SUB] = { rr_sub4, rr_sub8 },
	[ALU_XOR] = { rr_xor4, rr_xor8 }, [ALU_CMP] = { rr_cmp4, rr_cmp8 },
};
static const insn_fn alu_ri_fast[8][2] = {
	[ALU_ADD] = { ri_add4, ri_add8 }, [ALU_OR] = { ri_or4, ri_or8 },
	[ALU_AND] = { ri_and4, ri_and8 }, [ALU_SUB] = { ri_sub4, ri_sub8 },
	[ALU_XOR] = { ri_xor4, ri_xor8 }, [ALU_CMP] = { ri_cmp4, ri_cmp8 },
};
static const insn_fn alu_rm_fast[8][2] = {
	[ALU_ADD] = { rm_add4, rm_add8 }, [ALU_OR] = { rm_or4, rm_or8 },
	[ALU_AND] = { rm_and4, rm_and8 }, [ALU_SUB] = { rm_sub4, rm_sub8 },
	[ALU_XOR] = { rm_xor4, rm_xor8 }, [ALU_CMP] = { rm_cmp4, rm_cmp8 },
};

/* Shifts and rotates of a 32/64-bit register by an immediate or CL
 * (C1 and D3 with mod 3). SHL/SHR/SAR set the flags lazily (CC_SHIFT);
 * ROL/ROR keep SF/ZF/AF/PF, so they materialise the old ones. For counts
 * above 1, OF gets the count-1 formula (the SDM leaves it undefined). */
#define DEF_SHIFT(SIZE, T, S, BITS)                                                        \
	static void shift_fast##SIZE(struct emu_cpu *c, const struct insn *i)           \
	{                                                                               \
		unsigned n = (unsigned)(i->op == 0xC1 ? i->imm : c->r[R_RCX]) & (BITS == 64 ? 63 : 31); \
		if (n == 0) {                                                           \
			if (SIZE == 4)                                                  \
				c->r[i->rm] = (uint32_t)c->r[i->rm];                    \
			NEXT_INSN(c, i);                                                \
		}                                                                       \
		T a = (T)c->r[i->rm], r;                                                \
		bool cf, of;                                                            \
		switch (i->reg & 7) {                                                   \
		case 0: { /* ROL */                                                     \
			unsigned k = n % BITS;                                          \
			r = k ? (T)((a << k) | (a >> (BITS - k))) : a;                  \
			cf = r & 1;                                                     \
			of = ((r >> (BITS - 1)) & 1) ^ cf;                              \
			uint32_t f = flags_compute(c) & ~(FL_CF | FL_OF);               \
			set_arith_flags(c, f | (cf ? FL_CF : 0) | (of ? FL_OF : 0));    \
			c->r[i->rm] = r;                                                \
			NEXT_INSN(c, i);                                                \
		}                                                                       \
		case 1: { /* ROR */                                                     \
			unsigned k = n % BITS;                                          \
			r = k ? (T)((a >> k) | (a << (BITS - k))) : a;                  \
			cf = (r >> (BITS - 1)) & 1;                                     \
			of = cf ^ ((r >> (BITS - 2)) & 1);                              \
			uint32_t f = flags_compute(c) & ~(FL_CF | FL_OF);               \
			set_arith_flags(c, f | (cf ? FL_CF : 0) | (of ? FL_OF : 0));    \
			c->r[i->rm] = r;                                                \
			NEXT_INSN(c, i);                                                \
		}                                                                       \
		case 4: case 6: /* SHL */                                               \
			r = (T)(a << n);                                                \
			cf = (a >> (BITS - n)) & 1;                                     \
			of = ((r >> (BITS - 1)) & 1) ^ cf;                              \
			break;                                                          \
		case 5: /* SHR */                                                       \
			r = (T)(a >> n);                                                \
			cf = (a >> (n - 1)) & 1;                                        \
			of = (a >> (BITS - 1)) & 1;                                     \
			break;                                                          \
		case 7: { /* SAR */                                                     \
			r = (T)((S)a >> n);                                             \
			cf = (a >> (n - 1)) & 1;                                        \
			of = 0;                                                         \
			break;                                                          \
		}                                                                       \
		default: /* RCL/RCR: generic */                                         \
			c->r[i->rm] = shift_op(c, i->reg & 7, SIZE, a, n);              \
			NEXT_INSN(c, i);                                                \
		}                                                                       \
		c->cc_op = CC_SHIFT;                                                    \
		c->cc_res = r;                                                          \
		c->cc_size = SIZE;                                                      \
		c->cc_carry = cf;                                                       \
		c->cc_b = of;                                                           \
		c->r[i->rm] = r;                                                        \
		NEXT_INSN(c, i);                                                        \
	}

DEF_SHIFT(4, uint32_t, int32_t, 32)
DEF_SHIFT(8, uint64_t, int64_t, 64)

static insn_fn pick(const insn_fn t[8][2], unsigned kind, unsigned osize, insn_fn generic)
{
	insn_fn f = t[kind][osize == 8];
	return f ? f : generic;
}

/* TEST reg, reg (85 mod 3) */
static void test_rr(struct emu_cpu *c, const struct insn *i)
{
	alu(c, ALU_AND, i->osize, c->r[i->rm], c->r[i->reg]);
	NEXT_INSN(c, i);
}

static void push64(struct emu_cpu *c, const struct insn *i)
{
	unsigned r = (i->op & 7) | ((i->rex & 1) << 3);
	uint64_t sp = c->r[R_RSP] - 8;
	mem_write_lin(c, sp, 8, c->r[r]);
	c->r[R_RSP] = sp;
	NEXT_INSN(c, i);
}

static void pop64(struct emu_cpu *c, const struct insn *i)
{
	unsigned r = (i->op & 7) | ((i->rex & 1) << 3);
	uint64_t sp = c->r[R_RSP];
	uint64_t v = mem_read_lin(c, sp, 8);
	c->r[R_RSP] = sp + 8;
	c->r[r] = v;
	NEXT_INSN(c, i);
}

static void lea64(struct emu_cpu *c, const struct insn *i)
{
	c->r[i->reg] = insn_ea(c, i);
	NEXT_INSN(c, i);
}

static void lea32(struct emu_cpu *c, const struct insn *i)
{
	c->r[i->reg] = (uint32_t)insn_ea(c, i);
	NEXT_INSN(c, i);
}

static inline uint64_t canonical_target(struct emu_cpu *c, uint64_t t)
{
	if (__builtin_expect((uint64_t)((int64_t)(t << 16) >> 16) != t, 0))
		raise_gp0(c);
	return t;
}

static void jcc_64(struct emu_cpu *c, const struct insn *i)
{
	if (cond_true(c, i->op & 15)) {
		c->next_rip = canonical_target(c, c->next_rip + i->imm);
		CHAIN_JUMP(c, i);
	}
	NEXT_INSN(c, i);
}

static void call64(struct emu_cpu *c, const struct insn *i)
{
	uint64_t t = canonical_target(c, c->next_rip + i->imm);
	uint64_t sp = c->r[R_RSP] - 8;
	mem_write_lin(c, sp, 8, c->next_rip);
	c->r[R_RSP] = sp;
	c->next_rip = t;
	CHAIN_JUMP(c, i);
}

static void ret64(struct emu_cpu *c, const struct insn *i)
{
	uint64_t sp = c->r[R_RSP];
	uint64_t t = mem_read_lin(c, sp, 8);
	jump_near(c, t, 8);
	c->r[R_RSP] = sp + 8;
	CHAIN_JUMP(c, i);
}

/* The r/m operand of a fast form: register or flat memory. */
static inline uint64_t fast_rm(struct emu_cpu *c, const struct insn *i, unsigned size)
{
	if (i->mod == 3)
		return reg_read(c, i->rm, size, i->rex);
	return mem_read(c, i->seg, insn_ea(c, i), size);
}

/* IMUL r, r/m (0F AF), 32/64-bit. CF = OF = the signed product did not
 * fit; SF/ZF/PF from the result and AF clear, like the generic handler
 * (the SDM leaves those four undefined). CC_SHIFT holds exactly that. */
static void imul_rm8(struct emu_cpu *c, const struct insn *i)
{
	int64_t r;
	bool of = __builtin_mul_overflow((int64_t)c->r[i->reg], (int64_t)fast_rm(c, i, 8), &r);
	c->cc_op = CC_SHIFT;
	c->cc_res = (uint64_t)r;
	c->cc_size = 8;
	c->cc_carry = of;
	c->cc_b = of;
	c->r[i->reg] = (uint64_t)r;
	NEXT_INSN(c, i);
}

static void imul_rm4(struct emu_cpu *c, const struct insn *i)
{
	int64_t p = (int64_t)(int32_t)c->r[i->reg] * (int32_t)fast_rm(c, i, 4);
	bool of = p != (int32_t)p;
	c->cc_op = CC_SHIFT;
	c->cc_res = (uint32_t)p;
	c->cc_size = 4;
	c->cc_carry = of;
	c->cc_b = of;
	c->r[i->reg] = (uint32_t)p;
	NEXT_INSN(c, i);
}

/* MOVSXD r64, r/m32 (REX.W 63) */
static void movsxd64(struct emu_cpu *c, const struct insn *i)
{
	c->r[i->reg] = (uint64_t)(int64_t)(int32_t)fast_rm(c, i, 4);
	NEXT_INSN(c, i);
}

/* MOVZX / MOVSX (0F B6, B7, BE, BF) into 32/64-bit registers */
static void movzx_b(struct emu_cpu *c, const struct insn *i)
{
	c->r[i->reg] = fast_rm(c, i, 1);
	NEXT_INSN(c, i);
}

static void movzx_w(struct emu_cpu *c, const struct insn *i)
{
	c->r[i->reg] = fast_rm(c, i, 2);
	NEXT_INSN(c, i);
}

static void movsx_b(struct emu_cpu *c, const struct insn *i)
{
	uint64_t v = (uint64_t)(int64_t)(int8_t)fast_rm(c, i, 1);
	c->r[i->reg] = i->osize == 8 ? v : (uint32_t)v;
	NEXT_INSN(c, i);
}

static void movsx_w(struct emu_cpu *c, const struct insn *i)
{
	uint64_t v = (uint64_t)(int64_t)(int16_t)fast_rm(c, i, 2);
	c->r[i->reg] = i->osize == 8 ? v : (uint32_t)v;
	NEXT_INSN(c, i);
}

/* CMOVcc r, r (0F 40-4F mod 3), 32/64-bit: the 32-bit form clears the
 * upper half even when the condition is false. */
static void cmov_rr(struct emu_cpu *c, const struct insn *i)
{
	uint64_t v = cond_true(c, i->op & 15) ? c->r[i->rm] : c->r[i->reg];
	c->r[i->reg] = i->osize == 8 ? v : (uint32_t)v;
	NEXT_INSN(c, i);
}

/* SETcc r8 (0F 90-9F mod 3) */
static void setcc_r(struct emu_cpu *c, const struct insn *i)
{
	reg_write(c, i->rm, 1, i->rex, cond_true(c, i->op & 15));
	NEXT_INSN(c, i);
}

/* NOP r/m (0F 1F): no memory access */
static void nop_rm(struct emu_cpu *c, const struct insn *i)
{
	NEXT_INSN(c, i);
}

/* TEST r/m8, r8 (84 mod 3) and CMP AL, imm8 (3C) */
static void test_rr8(struct emu_cpu *c, const struct insn *i)
{
	alu(c, ALU_AND, 1, reg_read(c, i->rm, 1, i->rex), reg_read(c, i->reg, 1, i->rex));
	NEXT_INSN(c, i);
}

static void cmp_al_imm(struct emu_cpu *c, const struct insn *i)
{
	alu(c, ALU_CMP, 1, c->r[R_RAX], i->imm);
	NEXT_INSN(c, i);
}

/* ------------------------------------------------------------------ */
/* Memory destinations without LOCK: read, compute, write, and only then
 * the flags (a faulting write must leave them alone). */

/* CF of the last flag-setting operation, without computing the rest. */
static inline bool lazy_cf(struct emu_cpu *c)
{
	uint64_t m = size_mask(c->cc_size);
	switch (c->cc_op) {
	case CC_ADD: return (c->cc_res & m) < (c->cc_a & m);
	case CC_SUB: return (c->cc_a & m) < (c->cc_b & m);
	case CC_LOGIC: return false;
	case CC_INC: case CC_DEC: case CC_SHIFT: return c->cc_carry;
	default: return flags_compute(c) & FL_CF;
	}
}

/* ALU op on a memory destination with a register or immediate source:
 * the flags are recorded after the write (a faulting write leaves them). */
static inline void alu_mem(struct emu_cpu *c, const struct insn *i, unsigned kind, uint64_t src)
{
	unsigned size = i->osize;
	uint64_t lin = seg_lin(c, i->seg, insn_ea(c, i));
	uint64_t m = size_mask(size), a = mem_read_lin(c, lin, size), b = src & m, r;
	switch (kind) {
	case ALU_ADD: r = a + b; break;
	case ALU_OR: r = a | b; break;
	case ALU_AND: r = a & b; break;
	case ALU_XOR: r = a ^ b; break;
	default: r = a - b; break; /* SUB, CMP */
	}
	r &= m;
	if (kind != ALU_CMP)
		mem_write_lin(c, lin, size, r);
	c->cc_op = kind == ALU_ADD ? CC_ADD : (kind == ALU_SUB || kind == ALU_CMP) ? CC_SUB : CC_LOGIC;
	c->cc_a = a;
	c->cc_b = b;
	c->cc_res = r;
	c->cc_size = (uint8_t)size;
}

/* ALU r/m, r with a memory r/m (01, 09, 21, 29, 31, 39), 32/64-bit */
static void alu_mr(struct emu_cpu *c, const struct insn *i)
{
	alu_mem(c, i, (i->op >> 3) & 7, c->r[i->reg]);
	NEXT_INSN(c, i);
}

/* ALU r/m, imm (81, 83) with a memory r/m, 32/64-bit */
static void alu_mi(struct emu_cpu *c, const struct insn *i)
{
	alu_mem(c, i, i->reg & 7, i->imm);
	NEXT_INSN(c, i);
}

/* CMP r/m8, r8 and CMP r8, r/m8 (38, 3A), any operands */
static void cmp_b(struct emu_cpu *c, const struct insn *i)
{
	uint64_t x = fast_rm(c, i, 1), y = reg_read(c, i->reg, 1, i->rex);
	if (i->op & 2)
		alu(c, ALU_CMP, 1, y, x);
	else
		alu(c, ALU_CMP, 1, x, y);
	NEXT_INSN(c, i);
}

/* MOV r8, r/m8 and MOV r/m8, r8 (8A, 88) */
static void mov_b(struct emu_cpu *c, const struct insn *i)
{
	if (i->op == 0x8A) {
		reg_write(c, i->reg, 1, i->rex, fast_rm(c, i, 1));
	} else {
		uint64_t v = reg_read(c, i->reg, 1, i->rex);
		if (i->mod == 3)
			reg_write(c, i->rm, 1, i->rex, v);
		else
			mem_write(c, i->seg, insn_ea(c, i), 1, v);
	}
	NEXT_INSN(c, i);
}

/* MOV r/m, imm (C6, C7) to memory */
static void mov_mi(struct emu_cpu *c, const struct insn *i)
{
	mem_write(c, i->seg, insn_ea(c, i), i->op == 0xC6 ? 1 : i->osize, i->imm);
	NEXT_INSN(c, i);
}

/* INC/DEC r32/r64 (FF /0, /1 mod 3): CF is kept */
static void incdec_r(struct emu_cpu *c, const struct insn *i)
{
	bool cf = lazy_cf(c);
	uint64_t m = size_mask(i->osize), a = c->r[i->rm] & m;
	uint64_t r = ((i->reg & 7) == 0 ? a + 1 : a - 1) & m;
	c->cc_op = (i->reg & 7) == 0 ? CC_INC : CC_DEC;
	c->cc_a = a;
	c->cc_b = 1;
	c->cc_res = r;
	c->cc_size = i->osize;
	c->cc_carry = cf;
	c->r[i->rm] = r;
	NEXT_INSN(c, i);
}

/* ------------------------------------------------------------------ */
/* CMP/TEST fused with the Jcc after it (the block decoder pairs them).
 * The compare sets the lazy flags as usual (later instructions may read
 * them); the branch is decided from the operands directly. */

static inline bool cc_after_sub(uint64_t a, uint64_t b, uint64_t r, unsigned bits, unsigned cc)
{
	unsigned sh = 64 - bits;
	int64_t sa = (int64_t)(a << sh), sb = (int64_t)(b << sh);
	bool t;
	switch (cc >> 1) {
	case 0: t = (((a ^ b) & (a ^ r)) >> (bits - 1)) & 1; break; /* O */
	case 1: t = a < b; break;                                    /* B */
	case 2: t = a == b; break;                                   /* E */
	case 3: t = a <= b; break;                                   /* BE */
	case 4: t = (r >> (bits - 1)) & 1; break;                    /* S */
	case 5: t = !(__builtin_popcount((unsigned)(r & 0xFF)) & 1); break; /* P */
	case 6: t = sa < sb; break;                                  /* L */
	default: t = sa <= sb; break;                                /* LE */
	}
	return t ^ (cc & 1);
}

static inline bool cc_after_logic(uint64_t r, unsigned bits, unsigned cc)
{
	bool sf = (r >> (bits - 1)) & 1, t;
	switch (cc >> 1) {
	case 0: case 1: t = false; break;                            /* O, B */
	case 2: case 3: t = r == 0; break;                           /* E, BE */
	case 4: case 6: t = sf; break;                               /* S, L */
	case 5: t = !(__builtin_popcount((unsigned)(r & 0xFF)) & 1); break; /* P */
	default: t = r == 0 || sf; break;                            /* LE */
	}
	return t ^ (cc & 1);
}

/* Runs the Jcc at i + 1 whose condition is taken: c->next_rip is the
 * Jcc's own address on entry. */
static inline void fused_branch(struct emu_cpu *c, const struct insn *i, bool taken)
{
	const struct insn *j = i + 1;
	c->rip = c->next_rip;
	uint64_t next = c->rip + j->len;
	if (taken) {
		uint64_t t = next + j->imm;
		if (__builtin_expect((uint64_t)((int64_t)(t << 16) >> 16) != t, 0))
			raise_gp0(c); /* RIP is the Jcc's */
		c->next_rip = t;
		CHAIN_JUMP(c, j);
	}
	c->next_rip = next;
	NEXT_INSN(c, j);
}

#define DEF_FUSED(SIZE, T)                                                           \
	static void cmp_jcc_rr##SIZE(struct emu_cpu *c, const struct insn *i)       \
	{                                                                            \
		unsigned dst = (i->op & 2) ? i->reg : i->rm, src = (i->op & 2) ? i->rm : i->reg; \
		uint64_t a = (T)c->r[dst], b = (T)c->r[src], r = (T)(a - b);        \
		ALU_SET_FLAGS(CC_SUB, SIZE);                                         \
		fused_branch(c, i, cc_after_sub(a, b, r, SIZE * 8, (i + 1)->op & 15)); \
	}                                                                            \
	static void cmp_jcc_ri##SIZE(struct emu_cpu *c, const struct insn *i)       \
	{                                                                            \
		uint64_t a = (T)c->r[i->rm], b = (T)i->imm, r = (T)(a - b);         \
		ALU_SET_FLAGS(CC_SUB, SIZE);                                         \
		fused_branch(c, i, cc_after_sub(a, b, r, SIZE * 8, (i + 1)->op & 15)); \
	}                                                                            \
	static void test_jcc_rr##SIZE(struct emu_cpu *c, const struct insn *i)      \
	{                                                                            \
		uint64_t a = (T)c->r[i->rm], b = (T)c->r[i->reg], r = a & b;        \
		ALU_SET_FLAGS(CC_LOGIC, SIZE);                                       \
		fused_branch(c, i, cc_after_logic(r, SIZE * 8, (i + 1)->op & 15));  \
	}

DEF_FUSED(4, uint32_t)
DEF_FUSED(8, uint64_t)

/* ROL/ROR of a 32/64-bit register whose CF/OF nobody can see: the next
 * instruction sets all six flags from registers alone (it cannot fault
 * and reads none), so the old flags need not be materialised. */
#define DEF_ROT_NF(SIZE, T, BITS)                                                     \
	static void rot_nf##SIZE(struct emu_cpu *c, const struct insn *i)            \
	{                                                                             \
		unsigned n = (unsigned)(i->op == 0xC1 ? i->imm : c->r[R_RCX]) & (BITS - 1); \
		T a = (T)c->r[i->rm];                                                 \
		if (n)                                                                \
			a = (i->reg & 7) == 0 ? (T)((a << n) | (a >> (BITS - n)))     \
					      : (T)((a >> n) | (a << (BITS - n)));    \
		c->r[i->rm] = a;                                                      \
		NEXT_INSN(c, i);                                                      \
	}
DEF_ROT_NF(4, uint32_t, 32)
DEF_ROT_NF(8, uint64_t, 64)

static bool sets_all_flags_from_regs(const struct insn *i)
{
	static const insn_fn writers[] = {
		rr_add4, rr_add8, rr_or4, rr_or8, rr_and4, rr_and8, rr_sub4, rr_sub8,
		rr_xor4, rr_xor8, rr_cmp4, rr_cmp8, ri_add4, ri_add8, ri_or4, ri_or8,
		ri_and4, ri_and8, ri_sub4, ri_sub8, ri_xor4, ri_xor8, ri_cmp4, ri_cmp8, test_rr,
	};
	for (unsigned k = 0; k < sizeof(writers) / sizeof(writers[0]); k++)
		if (i->fn == writers[k])
			return true;
	return false;
}

insn_fn fast_dead_flags(const struct insn *i)
{
	if ((i->fn != shift_fast4 && i->fn != shift_fast8) || (i->reg & 7) > 1)
		return NULL;
	if (!sets_all_flags_from_regs(i + 1))
		return NULL;
	return i->fn == shift_fast8 ? rot_nf8 : rot_nf4;
}

insn_fn fast_fuse_jcc(const struct insn *i)
{
	if (i[1].fn != jcc_64)
		return NULL;
	bool q = i->osize == 8;
	if (i->fn == rr_cmp4 || i->fn == rr_cmp8)
		return q ? cmp_jcc_rr8 : cmp_jcc_rr4;
	if (i->fn == ri_cmp4 || i->fn == ri_cmp8)
		return q ? cmp_jcc_ri8 : cmp_jcc_ri4;
	if (i->fn == test_rr && (i->osize == 4 || q))
		return q ? test_jcc_rr8 : test_jcc_rr4;
	return NULL;
}

/* JMP rel / CALL rel whose target the block decoder followed (same
 * page): the target's instructions come next in the block, so these
 * chain on instead of ending it. No canonical check is needed: the
 * target is in the page of the instruction. */
void fast_jmp_inline(struct emu_cpu *c, const struct insn *i)
{
	c->next_rip += i->imm;
	NEXT_INSN(c, i);
}

void fast_call_inline(struct emu_cpu *c, const struct insn *i)
{
	uint64_t sp = c->r[R_RSP] - 8;
	mem_write_lin(c, sp, 8, c->next_rip);
	c->r[R_RSP] = sp;
	c->next_rip += i->imm;
	NEXT_INSN(c, i);
}

bool fast_inline_branch(const struct emu_cpu *c, const struct insn *i)
{
	/* 64-bit mode only (flat CS, 64-bit RIP arithmetic); no operand-size
	 * prefix (it would truncate the target on some CPUs) */
	return c->code64 && !emu_no_fast_paths && i->map == 0 && !(i->pfx & PFX_66) &&
	       (i->op == 0xE8 || i->op == 0xE9 || i->op == 0xEB);
}

bool fast_specialize(struct emu_cpu *c, struct insn *i)
{
	bool wide = i->osize == 4 || i->osize == 8;
	/* flat: 64-bit mode, where DS/ES/SS bases are 0 (FS/GS keep theirs) */
	if (!c->code64)
		return false;
	if (i->map == 0) {
		uint8_t op = i->op;
		if ((op == 0x89 || op == 0x8B) && i->mod == 3 && wide && !(i->pfx & PFX_LOCK)) {
			i->fn = i->osize == 8 ? mov_rr64 : mov_rr32;
			return true;
		}
		if (op == 0x89 && i->mod != 3 && wide && !(i->pfx & PFX_LOCK)) {
			i->fn = mov_store;
			return true;
		}
		if (op == 0x8B && i->mod != 3 && wide) {
			i->fn = i->osize == 8 ? mov_load64 : mov_load32;
			return true;
		}
		if (op < 0x40 && (op & 7) < 4 && (op & 1) && wide && !(i->pfx & PFX_LOCK)) {
			if (i->mod == 3) {
				i->fn = pick(alu_rr_fast, (op >> 3) & 7, i->osize, alu_rr);
				return true;
			}
			if (op & 2) {
				i->fn = pick(alu_rm_fast, (op >> 3) & 7, i->osize, alu_rm);
				return true;
			}
		}
		if ((op == 0x81 || op == 0x83) && i->mod == 3 && wide) {
			i->fn = pick(alu_ri_fast, i->reg & 7, i->osize, alu_ri);
			return true;
		}
		if ((op == 0xC1 || op == 0xD3) && i->mod == 3 && wide) {
			i->fn = i->osize == 8 ? shift_fast8 : shift_fast4;
			return true;
		}
		if (op == 0x85 && i->mod == 3 && wide) {
			i->fn = test_rr;
			return true;
		}
		if (op >= 0x50 && op <= 0x57 && i->osize == 8) {
			i->fn = push64;
			return true;
		}
		if (op >= 0x58 && op <= 0x5F && i->osize == 8) {
			i->fn = pop64;
			return true;
		}
		if (op == 0x8D && i->mod != 3 && wide) {
			i->fn = i->osize == 8 ? lea64 : lea32;
			return true;
		}
		if (op >= 0x70 && op <= 0x7F) {
			i->fn = jcc_64;
			return true;
		}
		if (op == 0xE8) {
			i->fn = call64;
			return true;
		}
		if (op == 0xC3) {
			i->fn = ret64;
			return true;
		}
		if (i->pfx & PFX_LOCK)
			return false;
		if (op < 0x40 && (op & 7) == 1 && i->mod != 3 && wide && alu_rr_fast[(op >> 3) & 7][0]) {
			i->fn = alu_mr;
			return true;
		}
		if ((op == 0x81 || op == 0x83) && i->mod != 3 && wide && alu_ri_fast[i->reg & 7][0]) {
			i->fn = alu_mi;
			return true;
		}
		if (op == 0x38 || op == 0x3A) {
			i->fn = cmp_b;
			return true;
		}
		if (op == 0x88 || op == 0x8A) {
			i->fn = mov_b;
			return true;
		}
		if ((op == 0xC6 || (op == 0xC7 && wide)) && i->mod != 3 && (i->reg & 7) == 0) {
			i->fn = mov_mi;
			return true;
		}
		if (op == 0xFF && i->mod == 3 && (i->reg & 7) < 2 && wide) {
			i->fn = incdec_r;
			return true;
		}
		if (op == 0x63 && i->osize == 8) {
			i->fn = movsxd64;
			return true;
		}
		if (op == 0x84 && i->mod == 3) {
			i->fn = test_rr8;
			return true;
		}
		if (op == 0x3C) {
			i->fn = cmp_al_imm;
			return true;
		}
		return false;
	}
	if (i->map != 1)
		return false;
	uint8_t op = i->op;
	if (op >= 0x80 && op <= 0x8F) {
		i->fn = jcc_64;
		return true;
	}
	if (i->pfx & PFX_LOCK)
		return false;
	if (op == 0xAF && wide) {
		i->fn = i->osize == 8 ? imul_rm8 : imul_rm4;
		return true;
	}
	if ((op == 0xB6 || op == 0xB7 || op == 0xBE || op == 0xBF) && wide) {
		i->fn = op == 0xB6 ? movzx_b : op == 0xB7 ? movzx_w : op == 0xBE ? movsx_b : movsx_w;
		return true;
	}
	if (op >= 0x40 && op <= 0x4F && i->mod == 3 && wide) {
		i->fn = cmov_rr;
		return true;
	}
	if (op >= 0x90 && op <= 0x9F && i->mod == 3) {
		i->fn = setcc_r;
		return true;
	}
	if (op == 0x1F) {
		i->fn = nop_rm;
		return true;
	}
	return false;
}
