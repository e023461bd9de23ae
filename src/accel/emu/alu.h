/* Integer ALU primitives shared by the one-byte and 0F executors and the
 * unit/differential tests. Each sets the flags exactly as the SDM
 * defines them (lazily where that is cheaper). */
#ifndef XVM_ACCEL_EMU_ALU_H
#define XVM_ACCEL_EMU_ALU_H

#include "accel/emu/cpu.h"

enum alu_op { ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP };

/* Read-modify-write kinds (LOCK-able). */
enum rmw_kind {
	RMW_ADD, RMW_OR, RMW_ADC, RMW_SBB, RMW_AND, RMW_SUB, RMW_XOR, RMW_CMP,
	RMW_INC, RMW_DEC, RMW_NOT, RMW_NEG, RMW_BTS, RMW_BTR, RMW_BTC, RMW_XADD, RMW_XCHG,
};

static inline uint64_t alu(struct emu_cpu *c, unsigned op, unsigned size, uint64_t a, uint64_t b)
{
	uint64_t m = size_mask(size), r;
	a &= m;
	b &= m;
	switch (op) {
	case ALU_ADD: r = a + b; c->cc_op = CC_ADD; break;
	case ALU_OR: r = a | b; c->cc_op = CC_LOGIC; break;
	case ALU_ADC: {
		bool cf = get_cf(c);
		r = a + b + cf;
		c->cc_carry = cf;
		c->cc_op = CC_ADC;
		break;
	}
	case ALU_SBB: {
		bool cf = get_cf(c);
		r = a - b - cf;
		c->cc_carry = cf;
		c->cc_op = CC_SBB;
		break;
	}
	case ALU_AND: r = a & b; c->cc_op = CC_LOGIC; break;
	case ALU_SUB: case ALU_CMP: r = a - b; c->cc_op = CC_SUB; break;
	default: r = a ^ b; c->cc_op = CC_LOGIC; break;
	}
	r &= m;
	c->cc_a = a;
	c->cc_b = b;
	c->cc_res = r;
	c->cc_size = (uint8_t)size;
	return r;
}

uint64_t rmw_compute(struct emu_cpu *c, unsigned kind, unsigned size, uint64_t old, uint64_t arg);
/* Applies kind to the r/m operand (atomically on RAM under LOCK or for
 * XCHG); returns the old value. */
uint64_t rm_rmw(struct emu_cpu *c, const struct insn *i, unsigned kind, unsigned size, uint64_t arg);
/* Same on an explicit linear address (BT* with register offsets). */
uint64_t lin_rmw(struct emu_cpu *c, uint64_t lin, bool lock, unsigned kind, unsigned size, uint64_t arg);

uint64_t shift_op(struct emu_cpu *c, unsigned kind, unsigned size, uint64_t a, unsigned count);
uint64_t shld_op(struct emu_cpu *c, bool right, unsigned size, uint64_t dst, uint64_t src, unsigned count);

void jump_near(struct emu_cpu *c, uint64_t target, unsigned osize);

#endif
