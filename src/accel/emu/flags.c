/* Lazy arithmetic flags: the last flag-setting ALU operation keeps its
 * operands and result; the flags are derived only when read (Jcc, PUSHF,
 * ADC...). Most results are never looked at, so this saves work on every
 * ALU instruction. */
#include "accel/emu/cpu.h"

static inline uint32_t parity(uint64_t v)
{
	return (__builtin_popcount((unsigned)(v & 0xFF)) & 1) ? 0 : FL_PF;
}

uint32_t flags_compute(const struct emu_cpu *c)
{
	if (c->cc_op == CC_EAGER)
		return (uint32_t)c->cc_res;
	unsigned size = c->cc_size;
	uint64_t mask = size_mask(size);
	uint64_t sign = 1ULL << (size * 8 - 1);
	uint64_t a = c->cc_a & mask, b = c->cc_b & mask, r = c->cc_res & mask;
	uint32_t f = parity(r);
	if (r == 0)
		f |= FL_ZF;
	if (r & sign)
		f |= FL_SF;
	switch (c->cc_op) {
	case CC_ADD:
		if (r < a)
			f |= FL_CF;
		if ((a ^ r) & (b ^ r) & sign)
			f |= FL_OF;
		f |= (a ^ b ^ r) & FL_AF;
		break;
	case CC_ADC:
		if (c->cc_carry ? r <= a : r < a)
			f |= FL_CF;
		if ((a ^ r) & (b ^ r) & sign)
			f |= FL_OF;
		f |= (a ^ b ^ r) & FL_AF;
		break;
	case CC_SUB:
		if (a < b)
			f |= FL_CF;
		if ((a ^ b) & (a ^ r) & sign)
			f |= FL_OF;
		f |= (a ^ b ^ r) & FL_AF;
		break;
	case CC_SBB:
		if (c->cc_carry ? a <= b : a < b)
			f |= FL_CF;
		if ((a ^ b) & (a ^ r) & sign)
			f |= FL_OF;
		f |= (a ^ b ^ r) & FL_AF;
		break;
	case CC_LOGIC:
		break;
	case CC_SHIFT:
		f |= (c->cc_carry ? FL_CF : 0) | (c->cc_b ? FL_OF : 0);
		break;
	case CC_INC:
		f |= c->cc_carry ? FL_CF : 0;
		if (r == sign)
			f |= FL_OF;
		f |= (a ^ 1 ^ r) & FL_AF;
		break;
	case CC_DEC:
		f |= c->cc_carry ? FL_CF : 0;
		if (r == sign - 1)
			f |= FL_OF;
		f |= (a ^ 1 ^ r) & FL_AF;
		break;
	}
	return f;
}

bool cond_true(struct emu_cpu *c, unsigned cc)
{
	bool r;
	/* Fast paths for the commonest producer (CMP/SUB) and ZF tests. */
	if (c->cc_op == CC_SUB) {
		uint64_t mask = size_mask(c->cc_size);
		uint64_t a = c->cc_a & mask, b = c->cc_b & mask;
		unsigned sh = 64 - c->cc_size * 8;
		int64_t sa = (int64_t)(a << sh), sb = (int64_t)(b << sh);
		switch (cc >> 1) {
		case 1: r = a < b; goto done;              /* B */
		case 2: r = a == b; goto done;             /* E */
		case 3: r = a <= b; goto done;             /* BE */
		case 6: r = sa < sb; goto done;            /* L */
		case 7: r = sa <= sb; goto done;           /* LE */
		default: break;
		}
	} else if (c->cc_op == CC_LOGIC) {
		/* after AND/OR/XOR/TEST: CF = OF = 0 */
		uint64_t m = size_mask(c->cc_size), res = c->cc_res & m;
		bool sf = (res >> (c->cc_size * 8 - 1)) & 1;
		switch (cc >> 1) {
		case 0: r = false; goto done;              /* O */
		case 1: r = false; goto done;              /* B */
		case 2: r = res == 0; goto done;           /* E */
		case 3: r = res == 0; goto done;           /* BE */
		case 4: r = sf; goto done;                 /* S */
		case 6: r = sf; goto done;                 /* L */
		case 7: r = res == 0 || sf; goto done;     /* LE */
		default: break;
		}
	} else if ((cc >> 1) == 2 && c->cc_op != CC_EAGER) {
		r = (c->cc_res & size_mask(c->cc_size)) == 0;
		goto done;
	}
	uint32_t f = flags_compute(c);
	switch (cc >> 1) {
	case 0: r = f & FL_OF; break;
	case 1: r = f & FL_CF; break;
	case 2: r = f & FL_ZF; break;
	case 3: r = f & (FL_CF | FL_ZF); break;
	case 4: r = f & FL_SF; break;
	case 5: r = f & FL_PF; break;
	case 6: r = !(f & FL_SF) != !(f & FL_OF); break;
	default: r = (f & FL_ZF) || (!(f & FL_SF) != !(f & FL_OF)); break;
	}
done:
	return (cc & 1) ? !r : r;
}

/* Loads RFLAGS from v, changing only the bits in changeable (the caller
 * decides per CPL/IOPL/mode which are). */
void set_rflags(struct emu_cpu *c, uint64_t v, uint64_t changeable)
{
	uint64_t cur = get_rflags(c);
	uint64_t n = (cur & ~changeable) | (v & changeable);
	n = (n & 0x3F7FD7ULL) | 2;
	set_arith_flags(c, (uint32_t)n);
	c->rflags = n;
}
