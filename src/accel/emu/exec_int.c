/* The one-byte opcode map: integer ALU, data movement, stack, control
 * transfer, string instructions and the simple system ones. */
#include "accel/emu/alu.h"
#include "accel/emu/cpu.h"
#include "lib/log.h"
#include "machine/machine.h"

insn_fn op_table1[256];

static inline uint64_t sx(uint64_t v, unsigned size)
{
	unsigned sh = 64 - size * 8;
	return (uint64_t)((int64_t)(v << sh) >> sh);
}

static inline uint32_t parity8(uint64_t v)
{
	return (__builtin_popcount((unsigned)(v & 0xFF)) & 1) ? 0 : FL_PF;
}

static inline uint32_t szp(uint64_t r, unsigned size)
{
	r &= size_mask(size);
	return parity8(r) | (r == 0 ? FL_ZF : 0) | ((r >> (size * 8 - 1)) & 1 ? FL_SF : 0);
}

/* ------------------------------------------------------------------ */
/* RMW core */

uint64_t rmw_compute(struct emu_cpu *c, unsigned kind, unsigned size, uint64_t old, uint64_t arg)
{
	uint64_t m = size_mask(size);
	switch (kind) {
	case RMW_ADD: case RMW_OR: case RMW_ADC: case RMW_SBB:
	case RMW_AND: case RMW_SUB: case RMW_XOR: case RMW_CMP:
		return alu(c, kind, size, old, arg);
	case RMW_INC: case RMW_DEC: {
		bool cf = get_cf(c);
		uint64_t r = (kind == RMW_INC ? old + 1 : old - 1) & m;
		c->cc_op = kind == RMW_INC ? CC_INC : CC_DEC;
		c->cc_a = old & m;
		c->cc_b = 1;
		c->cc_res = r;
		c->cc_size = (uint8_t)size;
		c->cc_carry = cf;
		return r;
	}
	case RMW_NOT:
		return ~old & m;
	case RMW_NEG:
		return alu(c, ALU_SUB, size, 0, old);
	case RMW_BTS: case RMW_BTR: case RMW_BTC: {
		unsigned bit = arg & (size * 8 - 1);
		uint32_t f = flags_compute(c) & ~FL_CF;
		if ((old >> bit) & 1)
			f |= FL_CF;
		set_arith_flags(c, f);
		uint64_t b = 1ULL << bit;
		return kind == RMW_BTS ? old | b : kind == RMW_BTR ? old & ~b : old ^ b;
	}
	case RMW_XADD:
		return alu(c, ALU_ADD, size, old, arg);
	default: /* RMW_XCHG */
		return arg & m;
	}
}

static uint64_t atomic_rmw(struct emu_cpu *c, void *p, unsigned kind, unsigned size, uint64_t arg)
{
	switch (size) {
	case 1: {
		uint8_t *q = p, o = __atomic_load_n(q, __ATOMIC_RELAXED), n;
		do
			n = (uint8_t)rmw_compute(c, kind, size, o, arg);
		while (!__atomic_compare_exchange_n(q, &o, n, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
		return o;
	}
	case 2: {
		uint16_t *q = p, o = __atomic_load_n(q, __ATOMIC_RELAXED), n;
		do
			n = (uint16_t)rmw_compute(c, kind, size, o, arg);
		while (!__atomic_compare_exchange_n(q, &o, n, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
		return o;
	}
	case 4: {
		uint32_t *q = p, o = __atomic_load_n(q, __ATOMIC_RELAXED), n;
		do
			n = (uint32_t)rmw_compute(c, kind, size, o, arg);
		while (!__atomic_compare_exchange_n(q, &o, n, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
		return o;
	}
	default: {
		uint64_t *q = p, o = __atomic_load_n(q, __ATOMIC_RELAXED), n;
		do
			n = rmw_compute(c, kind, size, o, arg);
		while (!__atomic_compare_exchange_n(q, &o, n, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
		return o;
	}
	}
}

uint64_t lin_rmw(struct emu_cpu *c, uint64_t lin, bool lock, unsigned kind, unsigned size, uint64_t arg)
{
	if (kind == RMW_CMP) {
		uint64_t old = mem_read_lin(c, lin, size);
		rmw_compute(c, kind, size, old, arg);
		return old;
	}
	if (lock) {
		void *p = mem_host_ptr_rw(c, lin, size);
		if (p)
			return atomic_rmw(c, p, kind, size, arg);
	}
	uint64_t old = mem_read_lin(c, lin, size);
	uint64_t n = rmw_compute(c, kind, size, old, arg);
	mem_write_lin(c, lin, size, n);
	return old;
}

uint64_t rm_rmw(struct emu_cpu *c, const struct insn *i, unsigned kind, unsigned size, uint64_t arg)
{
	if (i->mod == 3) {
		uint64_t old = reg_read(c, i->rm, size, i->rex);
		uint64_t n = rmw_compute(c, kind, size, old, arg);
		if (kind != RMW_CMP)
			reg_write(c, i->rm, size, i->rex, n);
		return old;
	}
	uint64_t lin = seg_lin(c, i->seg, insn_ea(c, i));
	return lin_rmw(c, lin, (i->pfx & PFX_LOCK) || kind == RMW_XCHG, kind, size, arg);
}

/* ------------------------------------------------------------------ */
/* Shifts and rotates (eager flags: rarer, and their flag rules are
 * irregular). Flags the SDM calls undefined get the count-1 formula. */

uint64_t shift_op(struct emu_cpu *c, unsigned kind, unsigned size, uint64_t a, unsigned count)
{
	unsigned bits = size * 8;
	uint64_t m = size_mask(size), msb = 1ULL << (bits - 1);
	count &= size == 8 ? 63 : 31;
	a &= m;
	if (count == 0)
		return a;
	uint32_t f = flags_compute(c);
	bool cf = f & FL_CF;
	uint64_t r;
	switch (kind) {
	case 0: { /* ROL */
		unsigned n = count % bits;
		r = n ? ((a << n) | (a >> (bits - n))) & m : a;
		cf = r & 1;
		f = (f & ~(FL_CF | FL_OF)) | (cf ? FL_CF : 0) | ((!!(r & msb) ^ cf) ? FL_OF : 0);
		set_arith_flags(c, f);
		return r;
	}
	case 1: { /* ROR */
		unsigned n = count % bits;
		r = n ? ((a >> n) | (a << (bits - n))) & m : a;
		cf = !!(r & msb);
		f = (f & ~(FL_CF | FL_OF)) | (cf ? FL_CF : 0) |
		    ((!!(r & msb) ^ !!(r & (msb >> 1))) ? FL_OF : 0);
		set_arith_flags(c, f);
		return r;
	}
	case 2: { /* RCL */
		unsigned n = size <= 2 ? count % (bits + 1) : count;
		r = a;
		for (unsigned k = 0; k < n; k++) {
			bool out = !!(r & msb);
			r = ((r << 1) | cf) & m;
			cf = out;
		}
		f = (f & ~(FL_CF | FL_OF)) | (cf ? FL_CF : 0) | ((!!(r & msb) ^ cf) ? FL_OF : 0);
		set_arith_flags(c, f);
		return r;
	}
	case 3: { /* RCR */
		unsigned n = size <= 2 ? count % (bits + 1) : count;
		r = a;
		bool of = !!(a & msb) ^ cf;
		for (unsigned k = 0; k < n; k++) {
			bool out = r & 1;
			r = (r >> 1) | (cf ? msb : 0);
			cf = out;
		}
		f = (f & ~(FL_CF | FL_OF)) | (cf ? FL_CF : 0) | (of ? FL_OF : 0);
		set_arith_flags(c, f);
		return r;
	}
	case 4: case 6: /* SHL/SAL */
		r = count >= 64 ? 0 : (a << count) & m;
		cf = count <= bits ? (a >> (bits - count)) & 1 : 0;
		f = szp(r, size) | (cf ? FL_CF : 0) | ((!!(r & msb) ^ cf) ? FL_OF : 0);
		break;
	case 5: /* SHR */
		r = count >= 64 ? 0 : a >> count;
		cf = count <= 64 ? (a >> (count - 1)) & 1 : 0;
		f = szp(r, size) | (cf ? FL_CF : 0) | ((a & msb) ? FL_OF : 0);
		break;
	default: { /* SAR */
		int64_t sa = (int64_t)sx(a, size);
		unsigned n = count > 63 ? 63 : count;
		r = (uint64_t)(sa >> n) & m;
		cf = (sa >> (n - 1 < 63 ? n - 1 : 63)) & 1;
		f = szp(r, size) | (cf ? FL_CF : 0);
		break;
	}
	}
	set_arith_flags(c, f);
	return r;
}

uint64_t shld_op(struct emu_cpu *c, bool right, unsigned size, uint64_t dst, uint64_t src, unsigned count)
{
	unsigned bits = size * 8;
	uint64_t m = size_mask(size), msb = 1ULL << (bits - 1);
	count &= size == 8 ? 63 : 31;
	dst &= m;
	src &= m;
	if (count == 0)
		return dst;
	uint64_t r;
	bool cf;
	if (size == 2 && count > 16) {
		/* undefined result: model a 32-bit concatenation like hardware */
		uint64_t wide = right ? (dst | src << 16 | dst << 32) : (dst << 32 | src << 16 | dst);
		if (right) {
			r = (wide >> count) & m;
			cf = (wide >> (count - 1)) & 1;
		} else {
			r = (wide >> (48 - count)) & m;
			cf = (wide >> (48 - count + 16)) & 1;
		}
	} else if (right) {
		r = ((dst >> count) | (count == bits ? 0 : src << (bits - count))) & m;
		if (count == bits)
			r = src;
		cf = (dst >> (count - 1)) & 1;
	} else {
		r = ((dst << count) | (count == bits ? 0 : src >> (bits - count))) & m;
		if (count == bits)
			r = src;
		cf = (dst >> (bits - count)) & 1;
	}
	uint32_t f = szp(r, size) | (cf ? FL_CF : 0) | (((r ^ dst) & msb) ? FL_OF : 0);
	set_arith_flags(c, f);
	return r;
}

/* ------------------------------------------------------------------ */
/* Control transfer helpers */

void jump_near(struct emu_cpu *c, uint64_t target, unsigned osize)
{
	if (c->code64) {
		int64_t s = (int64_t)(target << 16) >> 16;
		if ((uint64_t)s != target)
			raise_gp0(c);
	} else if (osize == 2) {
		target &= 0xFFFF;
	} else {
		target = (uint32_t)target;
	}
	c->next_rip = target;
}

static inline unsigned branch_osize(const struct emu_cpu *c, const struct insn *i)
{
	return c->code64 ? 8 : i->osize;
}

void push(struct emu_cpu *c, unsigned size, uint64_t v)
{
	uint64_t sp = (c->r[R_RSP] - size) & sp_mask(c);
	mem_write(c, SEG_SS, sp, size, v);
	set_sp(c, sp);
}

uint64_t pop(struct emu_cpu *c, unsigned size)
{
	uint64_t sp = c->r[R_RSP] & sp_mask(c);
	uint64_t v = mem_read(c, SEG_SS, sp, size);
	set_sp(c, sp + size);
	return v;
}

/* ------------------------------------------------------------------ */
/* Handlers */

static inline unsigned opsize_b(const struct insn *i)
{
	return (i->op & 1) ? i->osize : 1;
}

/* 00-3F: ALU r/m,reg ; reg,r/m ; acc,imm */
static void op_alu(struct emu_cpu *c, const struct insn *i)
{
	unsigned kind = (i->op >> 3) & 7, size = opsize_b(i);
	switch (i->op & 7) {
	case 0: case 1:
		rm_rmw(c, i, kind, size, reg_read(c, i->reg, size, i->rex));
		break;
	case 2: case 3: {
		uint64_t r = alu(c, kind, size, reg_read(c, i->reg, size, i->rex), rm_read(c, i, size));
		if (kind != ALU_CMP)
			reg_write(c, i->reg, size, i->rex, r);
		break;
	}
	default: {
		uint64_t r = alu(c, kind, size, reg_read(c, R_RAX, size, 1), i->imm);
		if (kind != ALU_CMP)
			reg_write(c, R_RAX, size, 1, r);
		break;
	}
	}
}

static void op_grp1(struct emu_cpu *c, const struct insn *i)
{
	unsigned size = i->op == 0x81 ? i->osize : i->op == 0x83 ? i->osize : 1;
	if (i->op == 0x82 && c->code64)
		raise_ud(c);
	rm_rmw(c, i, i->reg & 7, size, i->imm);
}

static void op_push_seg(struct emu_cpu *c, const struct insn *i)
{
	if (c->code64)
		raise_ud(c);
	static const uint8_t segs[4] = { SEG_ES, SEG_CS, SEG_SS, SEG_DS };
	push(c, i->osize, c->seg[segs[i->op >> 3]].selector);
}

static void op_pop_seg(struct emu_cpu *c, const struct insn *i)
{
	if (c->code64)
		raise_ud(c);
	static const uint8_t segs[4] = { SEG_ES, SEG_CS, SEG_SS, SEG_DS };
	int s = segs[i->op >> 3];
	uint64_t sp = c->r[R_RSP];
	uint16_t sel = (uint16_t)mem_read(c, SEG_SS, sp & sp_mask(c), 2);
	load_seg(c, s, sel);
	set_sp(c, sp + i->osize);
	if (s == SEG_SS)
		c->int_shadow = true;
}

static void op_daa_das(struct emu_cpu *c, const struct insn *i)
{
	if (c->code64)
		raise_ud(c);
	uint32_t f = flags_compute(c);
	uint8_t al = (uint8_t)c->r[R_RAX], old_al = al;
	bool old_cf = f & FL_CF, cf = false, af = false;
	bool das = i->op == 0x2F;
	if ((al & 0xF) > 9 || (f & FL_AF)) {
		al = das ? al - 6 : al + 6;
		cf = old_cf || (das ? old_al < 6 : old_al > 0xF9);
		af = true;
	}
	if (old_al > 0x99 || old_cf) {
		al = das ? al - 0x60 : al + 0x60;
		cf = true;
	}
	reg_write(c, R_RAX, 1, 1, al);
	f = szp(al, 1) | (cf ? FL_CF : 0) | (af ? FL_AF : 0) | (f & FL_OF);
	set_arith_flags(c, f);
}

static void op_aaa_aas(struct emu_cpu *c, const struct insn *i)
{
	if (c->code64)
		raise_ud(c);
	uint32_t f = flags_compute(c);
	uint16_t ax = (uint16_t)c->r[R_RAX];
	if ((ax & 0xF) > 9 || (f & FL_AF)) {
		if (i->op == 0x37)
			ax = (uint16_t)(ax + 0x106);
		else
			ax = (uint16_t)(ax - 6u - 0x100u); /* SDM: AX := AX - 6; AH := AH - 1 */
		f = (f & ~FL_ARITH) | FL_AF | FL_CF | szp(ax & 0xF, 1);
	} else {
		f = (f & ~(FL_AF | FL_CF)) | szp(ax & 0xF, 1);
	}
	ax &= 0xFF0F;
	reg_write(c, R_RAX, 2, 1, ax);
	set_arith_flags(c, f);
}

static void op_incdec_r(struct emu_cpu *c, const struct insn *i)
{
	unsigned r = i->op & 7;
	uint64_t v = reg_read(c, r, i->osize, 1);
	reg_write(c, r, i->osize, 1, rmw_compute(c, i->op < 0x48 ? RMW_INC : RMW_DEC, i->osize, v, 0));
}

static void op_push_r(struct emu_cpu *c, const struct insn *i)
{
	unsigned r = (i->op & 7) | ((i->rex & 1) << 3);
	push(c, i->osize, c->r[r]);
}

static void op_pop_r(struct emu_cpu *c, const struct insn *i)
{
	unsigned r = (i->op & 7) | ((i->rex & 1) << 3);
	uint64_t v = pop(c, i->osize);
	reg_write(c, r, i->osize, 1, v);
}

static void op_pusha(struct emu_cpu *c, const struct insn *i)
{
	if (c->code64)
		raise_ud(c);
	uint64_t sp = c->r[R_RSP];
	unsigned s = i->osize;
	for (int r = 0; r < 8; r++) {
		uint64_t v = r == R_RSP ? sp : c->r[r];
		mem_write(c, SEG_SS, (sp - (r + 1) * s) & sp_mask(c), s, v);
	}
	set_sp(c, sp - 8 * s);
}

static void op_popa(struct emu_cpu *c, const struct insn *i)
{
	if (c->code64)
		raise_ud(c);
	uint64_t sp = c->r[R_RSP];
	unsigned s = i->osize;
	uint64_t vals[8];
	for (int r = 7; r >= 0; r--)
		vals[r] = mem_read(c, SEG_SS, (sp + (7 - r) * s) & sp_mask(c), s);
	for (int r = 0; r < 8; r++)
		if (r != R_RSP)
			reg_write(c, r, s, 1, vals[r]);
	set_sp(c, sp + 8 * s);
}

/* BOUND r16/32, m16&16 / m32&32: #BR (a fault) when the signed index is
 * below the lower bound (at the operand) or above the upper one (next to
 * it). Not in 64-bit mode (62 is EVEX there); a register operand is #UD. */
static void op_bound(struct emu_cpu *c, const struct insn *i)
{
	if (c->code64 || i->mod == 3)
		raise_ud(c);
	unsigned s = i->osize;
	uint64_t ea = insn_ea(c, i);
	int64_t lower = (int64_t)sx(mem_read(c, i->seg, ea, s), s);
	int64_t upper = (int64_t)sx(mem_read(c, i->seg, ea + s, s), s);
	int64_t index = (int64_t)sx(reg_read(c, i->reg, s, 0), s);
	if (index < lower || index > upper)
		raise_exc(c, EXC_BR);
}

static void op_movsxd_arpl(struct emu_cpu *c, const struct insn *i)
{
	if (c->code64) {
		uint64_t v = rm_read(c, i, 4);
		reg_write(c, i->reg, i->osize, 1, i->osize == 8 ? sx(v, 4) : v);
		return;
	}
	if (!c->prot)
		raise_ud(c);
	/* ARPL */
	uint16_t dst = (uint16_t)rm_read(c, i, 2), src = (uint16_t)reg_read(c, i->reg, 2, 0);
	uint32_t f = flags_compute(c) & ~FL_ZF;
	if ((dst & 3) < (src & 3)) {
		dst = (uint16_t)((dst & ~3) | (src & 3));
		rm_write(c, i, 2, dst);
		f |= FL_ZF;
	}
	set_arith_flags(c, f);
}

static void op_push_imm(struct emu_cpu *c, const struct insn *i)
{
	push(c, i->osize, i->imm);
}

static void imul_flags(struct emu_cpu *c, bool overflow, uint64_t r, unsigned size)
{
	set_arith_flags(c, szp(r, size) | (overflow ? FL_CF | FL_OF : 0));
}

uint64_t imul_op(struct emu_cpu *c, unsigned size, uint64_t a, uint64_t b)
{
	int64_t sa = (int64_t)sx(a, size), sb = (int64_t)sx(b, size);
	__int128 p = (__int128)sa * sb;
	uint64_t r = (uint64_t)p & size_mask(size);
	bool of = (__int128)(int64_t)sx(r, size) != p;
	imul_flags(c, of, r, size);
	return r;
}

static void op_imul_imm(struct emu_cpu *c, const struct insn *i)
{
	uint64_t r = imul_op(c, i->osize, rm_read(c, i, i->osize), i->imm);
	reg_write(c, i->reg, i->osize, 1, r);
}

static void op_jcc8(struct emu_cpu *c, const struct insn *i)
{
	if (cond_true(c, i->op & 15))
		jump_near(c, c->next_rip + i->imm, branch_osize(c, i));
}

static void op_test(struct emu_cpu *c, const struct insn *i)
{
	unsigned size = opsize_b(i);
	uint64_t b = i->op >= 0xA8 ? i->imm : reg_read(c, i->reg, size, i->rex);
	uint64_t a = i->op >= 0xA8 ? reg_read(c, R_RAX, size, 1) : rm_read(c, i, size);
	alu(c, ALU_AND, size, a, b);
}

static void op_xchg_rm(struct emu_cpu *c, const struct insn *i)
{
	unsigned size = opsize_b(i);
	uint64_t r = reg_read(c, i->reg, size, i->rex);
	uint64_t old = rm_rmw(c, i, RMW_XCHG, size, r);
	reg_write(c, i->reg, size, i->rex, old);
}

static void op_mov_rm_r(struct emu_cpu *c, const struct insn *i)
{
	unsigned size = opsize_b(i);
	rm_write(c, i, size, reg_read(c, i->reg, size, i->rex));
}

static void op_mov_r_rm(struct emu_cpu *c, const struct insn *i)
{
	unsigned size = opsize_b(i);
	reg_write(c, i->reg, size, i->rex, rm_read(c, i, size));
}

static void op_mov_rm_sreg(struct emu_cpu *c, const struct insn *i)
{
	unsigned s = i->reg & 7;
	if (s > SEG_GS)
		raise_ud(c);
	uint16_t sel = c->seg[s].selector;
	if (i->mod == 3)
		reg_write(c, i->rm, i->osize, 1, sel);
	else
		mem_write(c, i->seg, insn_ea(c, i), 2, sel);
}

static void op_mov_sreg_rm(struct emu_cpu *c, const struct insn *i)
{
	unsigned s = i->reg & 7;
	if (s > SEG_GS || s == SEG_CS)
		raise_ud(c);
	uint16_t sel = (uint16_t)rm_read(c, i, 2);
	load_seg(c, s, sel);
	if (s == SEG_SS)
		c->int_shadow = true;
}

static void op_lea(struct emu_cpu *c, const struct insn *i)
{
	if (i->mod == 3)
		raise_ud(c);
	reg_write(c, i->reg, i->osize, 1, insn_ea(c, i));
}

static void op_pop_rm(struct emu_cpu *c, const struct insn *i)
{
	if (i->reg & 7)
		insn_ud(c, i); /* 8F /1-/7: AMD's XOP prefix, not advertised */
	/* The pop happens first; an address using RSP sees the new value. */
	uint64_t sp = c->r[R_RSP];
	uint64_t v = pop(c, i->osize);
	if (i->mod == 3) {
		reg_write(c, i->rm, i->osize, 1, v);
		return;
	}
	uint64_t ea = insn_ea(c, i);
	uint64_t new_sp = c->r[R_RSP];
	c->r[R_RSP] = sp;  /* restore if the store faults */
	mem_write(c, i->seg, ea, i->osize, v);
	c->r[R_RSP] = new_sp;
}

static void op_xchg_ax(struct emu_cpu *c, const struct insn *i)
{
	unsigned r = (i->op & 7) | ((i->rex & 1) << 3);
	if (r == R_RAX) {
		if (i->pfx & PFX_F3)
			return; /* PAUSE */
		if (i->osize == 4 && c->code64)
			return; /* 90 is NOP, not xchg eax,eax (which would zero-extend) */
		return;
	}
	uint64_t a = reg_read(c, R_RAX, i->osize, 1), b = reg_read(c, r, i->osize, 1);
	reg_write(c, R_RAX, i->osize, 1, b);
	reg_write(c, r, i->osize, 1, a);
}

static void op_cbw(struct emu_cpu *c, const struct insn *i)
{
	unsigned s = i->osize;
	reg_write(c, R_RAX, s, 1, sx(c->r[R_RAX], s / 2));
}

static void op_cwd(struct emu_cpu *c, const struct insn *i)
{
	unsigned s = i->osize;
	uint64_t v = (c->r[R_RAX] >> (s * 8 - 1)) & 1 ? ~0ULL : 0;
	reg_write(c, R_RDX, s, 1, v);
}

static void op_callf(struct emu_cpu *c, const struct insn *i)
{
	far_jump(c, i->imm2, i->imm, true, i->osize);
}

static void op_fwait(struct emu_cpu *c, const struct insn *i)
{
	if ((c->cr0 & (X86_CR0_MP | X86_CR0_TS)) == (X86_CR0_MP | X86_CR0_TS))
		raise_exc(c, EXC_NM);
}

static void op_pushf(struct emu_cpu *c, const struct insn *i)
{
	uint64_t f = get_rflags(c) & ~(uint64_t)(FL_RF | FL_VM);
	push(c, i->osize, f);
}

static void op_popf(struct emu_cpu *c, const struct insn *i)
{
	uint64_t v = pop(c, i->osize);
	uint64_t changeable = FL_ARITH | FL_TF | FL_DF | FL_NT | FL_AC | FL_ID;
	if (!c->prot || c->cpl == 0)
		changeable |= FL_IOPL | FL_IF;
	else if (c->cpl <= ((c->rflags & FL_IOPL) >> 12))
		changeable |= FL_IF;
	if (i->osize == 2)
		changeable &= 0xFFFF;
	bool was_if = c->rflags & FL_IF;
	set_rflags(c, v, changeable);
	if (!was_if && (c->rflags & FL_IF))
		c->int_shadow = false; /* POPF has no interrupt shadow */
}

static void op_sahf(struct emu_cpu *c, const struct insn *i)
{
	uint32_t f = flags_compute(c) & ~(FL_SF | FL_ZF | FL_AF | FL_PF | FL_CF);
	f |= (c->r[R_RAX] >> 8) & (FL_SF | FL_ZF | FL_AF | FL_PF | FL_CF);
	set_arith_flags(c, f);
}

static void op_lahf(struct emu_cpu *c, const struct insn *i)
{
	uint64_t f = (get_rflags(c) & 0xFF) | 2;
	c->r[R_RAX] = (c->r[R_RAX] & ~0xFF00ULL) | (f << 8);
}

static void op_mov_moffs(struct emu_cpu *c, const struct insn *i)
{
	unsigned size = opsize_b(i);
	uint64_t off = i->imm;
	if (i->op < 0xA2)
		reg_write(c, R_RAX, size, 1, mem_read(c, i->seg, off, size));
	else
		mem_write(c, i->seg, off, size, reg_read(c, R_RAX, size, 1));
}

static void op_mov_r_imm(struct emu_cpu *c, const struct insn *i)
{
	unsigned r = (i->op & 7) | ((i->rex & 1) << 3);
	if (i->op < 0xB8)
		reg_write(c, r, 1, i->rex, i->imm);
	else
		reg_write(c, r, i->osize, 1, i->imm);
}

static void op_shift_grp(struct emu_cpu *c, const struct insn *i)
{
	unsigned size = opsize_b(i);
	unsigned count;
	switch (i->op) {
	case 0xC0: case 0xC1: count = (uint8_t)i->imm; break;
	case 0xD0: case 0xD1: count = 1; break;
	default: count = (uint8_t)c->r[R_RCX]; break;
	}
	unsigned kind = i->reg & 7;
	if (i->mod == 3) {
		uint64_t v = reg_read(c, i->rm, size, i->rex);
		reg_write(c, i->rm, size, i->rex, shift_op(c, kind, size, v, count));
		return;
	}
	uint64_t ea = insn_ea(c, i);
	uint64_t v = mem_read(c, i->seg, ea, size);
	uint64_t r = shift_op(c, kind, size, v, count);
	mem_write(c, i->seg, ea, size, r);
}

static void op_ret(struct emu_cpu *c, const struct insn *i)
{
	unsigned s = branch_osize(c, i);
	if (!c->code64)
		s = i->osize;
	uint64_t t = pop(c, s);
	if (i->op == 0xC2)
		set_sp(c, c->r[R_RSP] + (uint16_t)i->imm);
	jump_near(c, t, s);
}

static void op_les_lds(struct emu_cpu *c, const struct insn *i)
{
	if (c->code64 || i->mod == 3)
		raise_ud(c);
	uint64_t ea = insn_ea(c, i);
	uint64_t off = mem_read(c, i->seg, ea, i->osize);
	uint16_t sel = (uint16_t)mem_read(c, i->seg, ea + i->osize, 2);
	load_seg(c, i->op == 0xC4 ? SEG_ES : SEG_DS, sel);
	reg_write(c, i->reg, i->osize, 1, off);
}

static void op_mov_rm_imm(struct emu_cpu *c, const struct insn *i)
{
	if ((i->reg & 7) != 0)
		raise_ud(c);
	rm_write(c, i, opsize_b(i), i->imm);
}

static void op_enter(struct emu_cpu *c, const struct insn *i)
{
	unsigned s = i->osize;
	unsigned level = i->imm2 & 31;
	uint64_t bp = c->r[R_RBP];
	push(c, s, bp);
	uint64_t frame = c->r[R_RSP] & sp_mask(c);
	for (unsigned k = 1; k < level; k++) {
		bp -= s;
		push(c, s, mem_read(c, SEG_SS, bp & sp_mask(c), s));
	}
	if (level)
		push(c, s, frame);
	reg_write(c, R_RBP, s, 1, frame);
	set_sp(c, c->r[R_RSP] - (uint16_t)i->imm);
}

static void op_leave(struct emu_cpu *c, const struct insn *i)
{
	uint64_t bp = c->r[R_RBP] & sp_mask(c);
	uint64_t v = mem_read(c, SEG_SS, bp, i->osize);
	set_sp(c, bp + i->osize);
	reg_write(c, R_RBP, i->osize, 1, v);
}

static void op_retf(struct emu_cpu *c, const struct insn *i)
{
	far_return(c, i->osize, i->op == 0xCA ? (uint16_t)i->imm : 0);
}

static void op_int3(struct emu_cpu *c, const struct insn *i)
{
	deliver_event(c, EXC_BP, false, 0, true, c->next_rip);
}

static void op_int(struct emu_cpu *c, const struct insn *i)
{
	deliver_event(c, (uint8_t)i->imm, false, 0, true, c->next_rip);
}

static void op_into(struct emu_cpu *c, const struct insn *i)
{
	if (c->code64)
		raise_ud(c);
	if (flags_compute(c) & FL_OF)
		deliver_event(c, EXC_OF, false, 0, true, c->next_rip);
}

static void op_iret(struct emu_cpu *c, const struct insn *i)
{
	do_iret(c, i->osize);
}

static void op_aam(struct emu_cpu *c, const struct insn *i)
{
	if (c->code64)
		raise_ud(c);
	uint8_t base = (uint8_t)i->imm, al = (uint8_t)c->r[R_RAX];
	if (base == 0)
		raise_exc(c, EXC_DE);
	uint16_t ax = (uint16_t)(((al / base) << 8) | (al % base));
	reg_write(c, R_RAX, 2, 1, ax);
	set_arith_flags(c, szp(ax & 0xFF, 1));
}

static void op_aad(struct emu_cpu *c, const struct insn *i)
{
	if (c->code64)
		raise_ud(c);
	uint8_t base = (uint8_t)i->imm;
	uint16_t ax = (uint16_t)c->r[R_RAX];
	uint8_t al = (uint8_t)((ax & 0xFF) + ((ax >> 8) * base));
	reg_write(c, R_RAX, 2, 1, al);
	set_arith_flags(c, szp(al, 1));
}

static void op_salc(struct emu_cpu *c, const struct insn *i)
{
	if (c->code64)
		raise_ud(c);
	reg_write(c, R_RAX, 1, 1, get_cf(c) ? 0xFF : 0);
}

static void op_xlat(struct emu_cpu *c, const struct insn *i)
{
	uint64_t a = (c->r[R_RBX] + (c->r[R_RAX] & 0xFF)) & size_mask(i->asize);
	reg_write(c, R_RAX, 1, 1, mem_read(c, i->seg, a, 1));
}

static void op_loop(struct emu_cpu *c, const struct insn *i)
{
	unsigned as = i->asize;
	uint64_t cx = c->r[R_RCX] & size_mask(as);
	bool take;
	if (i->op == 0xE3) {
		take = cx == 0;
	} else {
		cx = (cx - 1) & size_mask(as);
		reg_write(c, R_RCX, as, 1, cx);
		take = cx != 0;
		if (i->op == 0xE0)
			take = take && !(flags_compute(c) & FL_ZF);
		else if (i->op == 0xE1)
			take = take && (flags_compute(c) & FL_ZF);
	}
	if (take)
		jump_near(c, c->next_rip + i->imm, branch_osize(c, i));
}

static void op_in_out(struct emu_cpu *c, const struct insn *i)
{
	unsigned size = (i->op & 1) ? (i->osize == 2 ? 2 : 4) : 1;
	uint16_t port = (i->op & 8) ? (uint16_t)c->r[R_RDX] : (uint8_t)i->imm;
	if (i->op & 2)
		port_out(c, port, size, c->r[R_RAX]);
	else
		reg_write(c, R_RAX, size, 1, port_in(c, port, size));
}

static void op_call_rel(struct emu_cpu *c, const struct insn *i)
{
	unsigned s = branch_osize(c, i);
	uint64_t target = c->next_rip + i->imm;
	push(c, s, c->next_rip);
	jump_near(c, target, s);
}

static void op_jmp_rel(struct emu_cpu *c, const struct insn *i)
{
	jump_near(c, c->next_rip + i->imm, branch_osize(c, i));
}

static void op_jmpf(struct emu_cpu *c, const struct insn *i)
{
	far_jump(c, i->imm2, i->imm, false, i->osize);
}

static void op_int1(struct emu_cpu *c, const struct insn *i)
{
	deliver_event(c, EXC_DB, false, 0, false, c->next_rip);
}

static void op_hlt(struct emu_cpu *c, const struct insn *i)
{
	if (c->cpl != 0)
		raise_gp0(c);
	do_hlt(c);
}

static void op_cmc(struct emu_cpu *c, const struct insn *i)
{
	set_arith_flags(c, flags_compute(c) ^ FL_CF);
}

static void div_op(struct emu_cpu *c, const struct insn *i, unsigned size, bool is_signed)
{
	uint64_t d = rm_read(c, i, size);
	if (d == 0)
		raise_exc(c, EXC_DE);
	if (size == 1) {
		uint16_t ax = (uint16_t)c->r[R_RAX];
		if (is_signed) {
			int q = (int16_t)ax / (int8_t)d, r = (int16_t)ax % (int8_t)d;
			if (q > 127 || q < -128)
				raise_exc(c, EXC_DE);
			reg_write(c, R_RAX, 2, 1, ((uint8_t)r << 8) | (uint8_t)q);
		} else {
			unsigned q = ax / (uint8_t)d, r = ax % (uint8_t)d;
			if (q > 255)
				raise_exc(c, EXC_DE);
			reg_write(c, R_RAX, 2, 1, (r << 8) | q);
		}
		return;
	}
	uint64_t m = size_mask(size);
	unsigned bits = size * 8;
	unsigned __int128 n = ((unsigned __int128)(c->r[R_RDX] & m) << bits) | (c->r[R_RAX] & m);
	if (is_signed) {
		__int128 sn = (__int128)(n << (128 - 2 * bits)) >> (128 - 2 * bits); /* sign-extend */
		__int128 sd = (int64_t)sx(d, size);
		if (sd == -1 && (unsigned __int128)sn == (unsigned __int128)1 << 127)
			raise_exc(c, EXC_DE); /* the quotient does not fit even 128 bits */
		__int128 q = sn / sd, r = sn % sd;
		__int128 lim = (__int128)((unsigned __int128)1 << (bits - 1));
		if (q >= lim || q < -lim)
			raise_exc(c, EXC_DE);
		reg_write(c, R_RAX, size, 1, (uint64_t)q);
		reg_write(c, R_RDX, size, 1, (uint64_t)r);
	} else {
		unsigned __int128 q = n / d, r = n % d;
		if (q >> bits)
			raise_exc(c, EXC_DE);
		reg_write(c, R_RAX, size, 1, (uint64_t)q);
		reg_write(c, R_RDX, size, 1, (uint64_t)r);
	}
}

static void op_grp3(struct emu_cpu *c, const struct insn *i)
{
	unsigned size = opsize_b(i);
	switch (i->reg & 7) {
	case 0: case 1:
		alu(c, ALU_AND, size, rm_read(c, i, size), i->imm);
		break;
	case 2:
		rm_rmw(c, i, RMW_NOT, size, 0);
		break;
	case 3:
		rm_rmw(c, i, RMW_NEG, size, 0);
		break;
	case 4: case 5: { /* MUL / IMUL */
		uint64_t b = rm_read(c, i, size);
		uint64_t a = reg_read(c, R_RAX, size, 1);
		bool is_signed = (i->reg & 7) == 5;
		uint64_t lo, hi;
		bool of;
		if (is_signed) {
			__int128 p = (__int128)(int64_t)sx(a, size) * (int64_t)sx(b, size);
			lo = (uint64_t)p & size_mask(size);
			hi = size == 8 ? (uint64_t)(p >> 64) : ((uint64_t)(p >> (size * 8))) & size_mask(size);
			of = (__int128)(int64_t)sx(lo, size) != p;
		} else {
			unsigned __int128 p = (unsigned __int128)a * b;
			lo = (uint64_t)p & size_mask(size);
			hi = size == 8 ? (uint64_t)(p >> 64) : ((uint64_t)(p >> (size * 8))) & size_mask(size);
			of = hi != 0;
		}
		if (size == 1) {
			reg_write(c, R_RAX, 2, 1, (hi << 8) | lo);
		} else {
			reg_write(c, R_RAX, size, 1, lo);
			reg_write(c, R_RDX, size, 1, hi);
		}
		set_arith_flags(c, szp(lo, size) | (of ? FL_CF | FL_OF : 0));
		break;
	}
	case 6:
		div_op(c, i, size, false);
		break;
	default:
		div_op(c, i, size, true);
		break;
	}
}

static void op_flagop(struct emu_cpu *c, const struct insn *i)
{
	switch (i->op) {
	case 0xF8: set_arith_flags(c, flags_compute(c) & ~FL_CF); break;
	case 0xF9: set_arith_flags(c, flags_compute(c) | FL_CF); break;
	case 0xFA: case 0xFB: {
		if (c->prot && c->cpl > ((c->rflags & FL_IOPL) >> 12))
			raise_gp0(c);
		if (i->op == 0xFA) {
			c->rflags &= ~(uint64_t)FL_IF;
		} else {
			if (!(c->rflags & FL_IF))
				c->int_shadow = true;
			c->rflags |= FL_IF;
		}
		break;
	}
	case 0xFC: c->rflags &= ~(uint64_t)FL_DF; break;
	default: c->rflags |= FL_DF; break;
	}
}

static void op_grp4(struct emu_cpu *c, const struct insn *i)
{
	switch (i->reg & 7) {
	case 0: rm_rmw(c, i, RMW_INC, 1, 0); break;
	case 1: rm_rmw(c, i, RMW_DEC, 1, 0); break;
	default: raise_ud(c);
	}
}

static void op_grp5(struct emu_cpu *c, const struct insn *i)
{
	unsigned s = i->osize;
	switch (i->reg & 7) {
	case 0: rm_rmw(c, i, RMW_INC, s, 0); break;
	case 1: rm_rmw(c, i, RMW_DEC, s, 0); break;
	case 2: { /* CALL near indirect */
		unsigned bs = c->code64 ? 8 : s;
		uint64_t t = rm_read(c, i, bs);
		push(c, bs, c->next_rip);
		jump_near(c, t, bs);
		break;
	}
	case 4: { /* JMP near indirect */
		unsigned bs = c->code64 ? 8 : s;
		jump_near(c, rm_read(c, i, bs), bs);
		break;
	}
	case 3: case 5: { /* far CALL/JMP m16:16/32/64 */
		if (i->mod == 3)
			raise_ud(c);
		uint64_t ea = insn_ea(c, i);
		uint64_t off = mem_read(c, i->seg, ea, s);
		uint16_t sel = (uint16_t)mem_read(c, i->seg, ea + s, 2);
		far_jump(c, sel, off, (i->reg & 7) == 3, s);
		break;
	}
	case 6: {
		unsigned ps = c->code64 ? (s == 2 ? 2 : 8) : s;
		push(c, ps, rm_read(c, i, ps));
		break;
	}
	default:
		raise_ud(c);
	}
}

_Noreturn void insn_ud(struct emu_cpu *c, const struct insn *i)
{
	log_once(LOG_DEBUG, "emu: unimplemented instruction at rip %#llx: %02x %02x %02x %02x %02x %02x",
		 (unsigned long long)c->rip, i->bytes[0], i->bytes[1], i->bytes[2], i->bytes[3],
		 i->bytes[4], i->bytes[5]);
	raise_ud(c);
}

static void op_nop(struct emu_cpu *c, const struct insn *i)
{
}

/* String instructions live in string.c. */
void op_string(struct emu_cpu *c, const struct insn *i);

void exec_int_init(void)
{
	for (int k = 0; k < 0x40; k++)
		if ((k & 7) < 6)
			op_table1[k] = op_alu;
	op_table1[0x06] = op_table1[0x0E] = op_table1[0x16] = op_table1[0x1E] = op_push_seg;
	op_table1[0x07] = op_table1[0x17] = op_table1[0x1F] = op_pop_seg;
	op_table1[0x27] = op_table1[0x2F] = op_daa_das;
	op_table1[0x37] = op_table1[0x3F] = op_aaa_aas;
	for (int k = 0x40; k < 0x50; k++)
		op_table1[k] = op_incdec_r;
	for (int k = 0x50; k < 0x58; k++)
		op_table1[k] = op_push_r;
	for (int k = 0x58; k < 0x60; k++)
		op_table1[k] = op_pop_r;
	op_table1[0x60] = op_pusha;
	op_table1[0x61] = op_popa;
	op_table1[0x62] = op_bound;
	op_table1[0x63] = op_movsxd_arpl;
	op_table1[0x68] = op_table1[0x6A] = op_push_imm;
	op_table1[0x69] = op_table1[0x6B] = op_imul_imm;
	for (int k = 0x6C; k < 0x70; k++)
		op_table1[k] = op_string;
	for (int k = 0x70; k < 0x80; k++)
		op_table1[k] = op_jcc8;
	for (int k = 0x80; k < 0x84; k++)
		op_table1[k] = op_grp1;
	op_table1[0x84] = op_table1[0x85] = op_table1[0xA8] = op_table1[0xA9] = op_test;
	op_table1[0x86] = op_table1[0x87] = op_xchg_rm;
	op_table1[0x88] = op_table1[0x89] = op_mov_rm_r;
	op_table1[0x8A] = op_table1[0x8B] = op_mov_r_rm;
	op_table1[0x8C] = op_mov_rm_sreg;
	op_table1[0x8D] = op_lea;
	op_table1[0x8E] = op_mov_sreg_rm;
	op_table1[0x8F] = op_pop_rm;
	for (int k = 0x90; k < 0x98; k++)
		op_table1[k] = op_xchg_ax;
	op_table1[0x98] = op_cbw;
	op_table1[0x99] = op_cwd;
	op_table1[0x9A] = op_callf;
	op_table1[0x9B] = op_fwait;
	op_table1[0x9C] = op_pushf;
	op_table1[0x9D] = op_popf;
	op_table1[0x9E] = op_sahf;
	op_table1[0x9F] = op_lahf;
	for (int k = 0xA0; k < 0xA4; k++)
		op_table1[k] = op_mov_moffs;
	op_table1[0xA4] = op_table1[0xA5] = op_table1[0xA6] = op_table1[0xA7] = op_string;
	for (int k = 0xAA; k < 0xB0; k++)
		op_table1[k] = op_string;
	for (int k = 0xB0; k < 0xC0; k++)
		op_table1[k] = op_mov_r_imm;
	op_table1[0xC0] = op_table1[0xC1] = op_shift_grp;
	op_table1[0xC2] = op_table1[0xC3] = op_ret;
	op_table1[0xC4] = op_table1[0xC5] = op_les_lds;
	op_table1[0xC6] = op_table1[0xC7] = op_mov_rm_imm;
	op_table1[0xC8] = op_enter;
	op_table1[0xC9] = op_leave;
	op_table1[0xCA] = op_table1[0xCB] = op_retf;
	op_table1[0xCC] = op_int3;
	op_table1[0xCD] = op_int;
	op_table1[0xCE] = op_into;
	op_table1[0xCF] = op_iret;
	for (int k = 0xD0; k < 0xD4; k++)
		op_table1[k] = op_shift_grp;
	op_table1[0xD4] = op_aam;
	op_table1[0xD5] = op_aad;
	op_table1[0xD6] = op_salc;
	op_table1[0xD7] = op_xlat;
	for (int k = 0xE0; k < 0xE4; k++)
		op_table1[k] = op_loop;
	for (int k = 0xE4; k < 0xE8; k++)
		op_table1[k] = op_in_out;
	for (int k = 0xEC; k < 0xF0; k++)
		op_table1[k] = op_in_out;
	op_table1[0xE8] = op_call_rel;
	op_table1[0xE9] = op_table1[0xEB] = op_jmp_rel;
	op_table1[0xEA] = op_jmpf;
	op_table1[0xF1] = op_int1;
	op_table1[0xF4] = op_hlt;
	op_table1[0xF5] = op_cmc;
	op_table1[0xF6] = op_table1[0xF7] = op_grp3;
	for (int k = 0xF8; k < 0xFE; k++)
		op_table1[k] = op_flagop;
	op_table1[0xFE] = op_grp4;
	op_table1[0xFF] = op_grp5;
	(void)op_nop;
}
