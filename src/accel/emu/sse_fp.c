/* SSE/SSE2 floating point, moves, shuffles and conversions (0F 10-17,
 * 28-2F, 50-5F, C2, C6, E6) and the SSE3 forms (12/16 dup moves, 7C/7D,
 * D0, F0). Prefix selects the form: none = ps, 66 = pd, F3 = ss, F2 = sd. */
#include "accel/emu/alu.h"
#include "accel/emu/cpu.h"
#include "accel/emu/sse.h"

#include <math.h>

enum fp_form { FP_PS, FP_PD, FP_SS, FP_SD };

static enum fp_form form_of(const struct insn *i)
{
	if (i->pfx & PFX_F3)
		return FP_SS;
	if (i->pfx & PFX_F2)
		return FP_SD;
	if (i->pfx & PFX_66)
		return FP_PD;
	return FP_PS;
}

/* Source for an arithmetic op of this form (scalar memory: 4/8 bytes). */
static void fp_src(struct emu_cpu *c, const struct insn *i, enum fp_form f, union xmm_reg *s)
{
	switch (f) {
	case FP_SS: sse_src(c, i, s, 4, false); break;
	case FP_SD: sse_src(c, i, s, 8, false); break;
	default: sse_src(c, i, s, 16, true); break;
	}
}

enum { OP_ADD, OP_MUL, OP_SUB, OP_MIN, OP_DIV, OP_MAX, OP_SQRT, OP_RSQRT, OP_RCP };

static float op_f(int op, float a, float b)
{
	switch (op) {
	case OP_ADD: return a + b;
	case OP_MUL: return a * b;
	case OP_SUB: return a - b;
	case OP_MIN: return a < b ? a : b;
	case OP_DIV: return a / b;
	case OP_MAX: return a > b ? a : b;
	case OP_SQRT: return sqrtf(b);
	case OP_RSQRT: return 1.0f / sqrtf(b);
	default: return 1.0f / b;
	}
}

static double op_d(int op, double a, double b)
{
	switch (op) {
	case OP_ADD: return a + b;
	case OP_MUL: return a * b;
	case OP_SUB: return a - b;
	case OP_MIN: return a < b ? a : b;
	case OP_DIV: return a / b;
	case OP_MAX: return a > b ? a : b;
	default: return sqrt(b);
	}
}

static void fp_arith(struct emu_cpu *c, const struct insn *i, int op)
{
	check_sse(c);
	enum fp_form f = form_of(i);
	if ((op == OP_RSQRT || op == OP_RCP) && (f == FP_PD || f == FP_SD))
		insn_ud(c, i);
	union xmm_reg s, *d = &c->xmm[i->reg];
	fp_src(c, i, f, &s);
	switch (f) {
	case FP_PS:
		for (int k = 0; k < 4; k++)
			d->f[k] = op_f(op, d->f[k], s.f[k]);
		break;
	case FP_PD:
		for (int k = 0; k < 2; k++)
			d->fd[k] = op_d(op, d->fd[k], s.fd[k]);
		break;
	case FP_SS:
		d->f[0] = op_f(op, d->f[0], s.f[0]);
		break;
	case FP_SD:
		d->fd[0] = op_d(op, d->fd[0], s.fd[0]);
		break;
	}
}

static void op_add(struct emu_cpu *c, const struct insn *i) { fp_arith(c, i, OP_ADD); }
static void op_mul(struct emu_cpu *c, const struct insn *i) { fp_arith(c, i, OP_MUL); }
static void op_sub(struct emu_cpu *c, const struct insn *i) { fp_arith(c, i, OP_SUB); }
static void op_min(struct emu_cpu *c, const struct insn *i) { fp_arith(c, i, OP_MIN); }
static void op_div(struct emu_cpu *c, const struct insn *i) { fp_arith(c, i, OP_DIV); }
static void op_max(struct emu_cpu *c, const struct insn *i) { fp_arith(c, i, OP_MAX); }
static void op_sqrt(struct emu_cpu *c, const struct insn *i) { fp_arith(c, i, OP_SQRT); }
static void op_rsqrt(struct emu_cpu *c, const struct insn *i) { fp_arith(c, i, OP_RSQRT); }
static void op_rcp(struct emu_cpu *c, const struct insn *i) { fp_arith(c, i, OP_RCP); }

static void op_logic(struct emu_cpu *c, const struct insn *i)
{
	check_sse(c);
	if (i->pfx & (PFX_F2 | PFX_F3))
		insn_ud(c, i);
	union xmm_reg s, *d = &c->xmm[i->reg];
	sse_src(c, i, &s, 16, true);
	for (int k = 0; k < 2; k++) {
		switch (i->op) {
		case 0x54: d->q[k] &= s.q[k]; break;
		case 0x55: d->q[k] = ~d->q[k] & s.q[k]; break;
		case 0x56: d->q[k] |= s.q[k]; break;
		default: d->q[k] ^= s.q[k]; break;
		}
	}
}

/* 0F 10 / 11 */
static void op_movu(struct emu_cpu *c, const struct insn *i)
{
	check_sse(c);
	enum fp_form f = form_of(i);
	bool store = i->op == 0x11;
	union xmm_reg *r = &c->xmm[i->reg];
	if (f == FP_PS || f == FP_PD) {
		if (store) {
			sse_store(c, i, r, 16, false);
		} else {
			union xmm_reg s;
			sse_src(c, i, &s, 16, false);
			*r = s;
		}
		return;
	}
	unsigned bytes = f == FP_SS ? 4 : 8;
	if (store) {
		if (i->mod == 3)
			memcpy(&c->xmm[i->rm], r, bytes);
		else
			sse_store(c, i, r, bytes, false);
		return;
	}
	if (i->mod == 3) {
		memcpy(r, &c->xmm[i->rm], bytes);
	} else {
		union xmm_reg s;
		sse_src(c, i, &s, bytes, false);
		*r = s; /* upper part zeroed */
	}
}

/* 0F 12/13/16/17: MOVLPS/MOVHPS/MOVHLPS/MOVLHPS and the pd forms; SSE3 dups */
static void op_movlh(struct emu_cpu *c, const struct insn *i)
{
	check_sse(c);
	union xmm_reg *d = &c->xmm[i->reg], s;
	bool high = i->op >= 0x16;
	if (i->op == 0x13 || i->op == 0x17) {
		if (i->mod == 3 || (i->pfx & (PFX_F2 | PFX_F3)))
			insn_ud(c, i);
		mem_write(c, i->seg, insn_ea(c, i), 8, d->q[high]);
		return;
	}
	if (i->pfx & PFX_F2) { /* MOVDDUP */
		if (high)
			insn_ud(c, i);
		sse_src(c, i, &s, 8, false);
		d->q[0] = d->q[1] = s.q[0];
		return;
	}
	if (i->pfx & PFX_F3) { /* MOVSLDUP / MOVSHDUP */
		sse_src(c, i, &s, 16, true);
		unsigned o = high ? 1 : 0;
		d->d[0] = d->d[1] = s.d[o];
		d->d[2] = d->d[3] = s.d[2 + o];
		return;
	}
	if (i->mod == 3) {
		if (i->pfx & PFX_66)
			insn_ud(c, i);
		if (high)
			d->q[1] = c->xmm[i->rm].q[0]; /* MOVLHPS */
		else
			d->q[0] = c->xmm[i->rm].q[1]; /* MOVHLPS */
		return;
	}
	d->q[high] = mem_read(c, i->seg, insn_ea(c, i), 8);
}

static void op_unpck(struct emu_cpu *c, const struct insn *i)
{
	check_sse(c);
	union xmm_reg s, *d = &c->xmm[i->reg], r;
	sse_src(c, i, &s, 16, true);
	bool high = i->op == 0x15;
	if (i->pfx & PFX_66) {
		r.q[0] = d->q[high];
		r.q[1] = s.q[high];
	} else {
		unsigned o = high ? 2 : 0;
		r.d[0] = d->d[o];
		r.d[1] = s.d[o];
		r.d[2] = d->d[o + 1];
		r.d[3] = s.d[o + 1];
	}
	*d = r;
}

static void op_mova(struct emu_cpu *c, const struct insn *i)
{
	check_sse(c);
	if (i->pfx & (PFX_F2 | PFX_F3))
		insn_ud(c, i);
	if (i->op == 0x29 || i->op == 0x2B) {
		if (i->op == 0x2B && i->mod == 3)
			insn_ud(c, i);
		sse_store(c, i, &c->xmm[i->reg], 16, true);
	} else {
		union xmm_reg s;
		sse_src(c, i, &s, 16, true);
		c->xmm[i->reg] = s;
	}
}

/* Float -> integer with the "integer indefinite" value for NaN and
 * out-of-range inputs. mode: 0-3 = MXCSR.RC, 4 = truncate. */
static int64_t cvt_to_int(struct emu_cpu *c, double v, int mode, unsigned bits)
{
	if (mode < 0)
		mode = (c->mxcsr >> 13) & 3;
	double r;
	switch (mode) {
	case 0: r = nearbyint(v); break; /* host default rounding: nearest even */
	case 1: r = floor(v); break;
	case 2: r = ceil(v); break;
	default: r = trunc(v); break;
	}
	double lim = bits == 64 ? 9223372036854775808.0 : 2147483648.0;
	if (isnan(r) || r >= lim || r < -lim)
		return bits == 64 ? INT64_MIN : INT32_MIN;
	return (int64_t)r;
}

static float int_to_float(struct emu_cpu *c, int64_t v)
{
	return (float)v;
}

static void op_cvt2a(struct emu_cpu *c, const struct insn *i)
{
	/* 0F 2A: CVTPI2PS, CVTPI2PD, CVTSI2SS, CVTSI2SD */
	check_sse(c);
	enum fp_form f = form_of(i);
	union xmm_reg *d = &c->xmm[i->reg];
	if (f == FP_SS || f == FP_SD) {
		unsigned size = (i->rex & 8) ? 8 : 4;
		int64_t v = (int64_t)rm_read(c, i, size);
		if (size == 4)
			v = (int32_t)v;
		if (f == FP_SS)
			d->f[0] = int_to_float(c, v);
		else
			d->fd[0] = (double)v;
		return;
	}
	uint64_t mm = i->mod == 3 ? mmx_get(c, i->rm & 7) : mem_read(c, i->seg, insn_ea(c, i), 8);
	if (i->mod == 3) {
		check_mmx(c);
		c->ftop = 0;
		c->ftw = 0;
	}
	int32_t lo = (int32_t)mm, hi = (int32_t)(mm >> 32);
	if (f == FP_PS) {
		d->f[0] = (float)lo;
		d->f[1] = (float)hi;
	} else {
		d->fd[0] = lo;
		d->fd[1] = hi;
	}
}

static void op_cvt2c(struct emu_cpu *c, const struct insn *i)
{
	/* 0F 2C (truncating) / 2D: to integer register or MMX */
	check_sse(c);
	enum fp_form f = form_of(i);
	int mode = i->op == 0x2C ? 4 : -1;
	if (f == FP_SS || f == FP_SD) {
		union xmm_reg s;
		sse_src(c, i, &s, f == FP_SS ? 4 : 8, false);
		unsigned bits = (i->rex & 8) ? 64 : 32;
		double v = f == FP_SS ? (double)s.f[0] : s.fd[0];
		int64_t r = cvt_to_int(c, v, mode, bits);
		reg_write(c, i->reg, bits / 8, 1, (uint64_t)r);
		return;
	}
	union xmm_reg s;
	if (f == FP_PS)
		sse_src(c, i, &s, 8, false);
	else
		sse_src(c, i, &s, 16, true);
	check_mmx(c);
	double a = f == FP_PS ? s.f[0] : s.fd[0], b = f == FP_PS ? s.f[1] : s.fd[1];
	uint64_t r = (uint32_t)cvt_to_int(c, a, mode, 32) | (uint64_t)(uint32_t)cvt_to_int(c, b, mode, 32) << 32;
	mmx_set(c, i->reg & 7, r);
}

static void op_comis(struct emu_cpu *c, const struct insn *i)
{
	check_sse(c);
	if (i->pfx & (PFX_F2 | PFX_F3))
		insn_ud(c, i);
	bool dbl = i->pfx & PFX_66;
	union xmm_reg s;
	sse_src(c, i, &s, dbl ? 8 : 4, false);
	double a = dbl ? c->xmm[i->reg].fd[0] : c->xmm[i->reg].f[0];
	double b = dbl ? s.fd[0] : s.f[0];
	uint32_t f;
	if (isnan(a) || isnan(b))
		f = FL_ZF | FL_PF | FL_CF;
	else if (a > b)
		f = 0;
	else if (a < b)
		f = FL_CF;
	else
		f = FL_ZF;
	set_arith_flags(c, f);
}

static void op_movmsk(struct emu_cpu *c, const struct insn *i)
{
	check_sse(c);
	if (i->mod != 3)
		insn_ud(c, i);
	union xmm_reg *s = &c->xmm[i->rm];
	unsigned m = 0;
	if (i->pfx & PFX_66)
		m = (unsigned)(s->q[0] >> 63) | (unsigned)(s->q[1] >> 63) << 1;
	else
		for (int k = 0; k < 4; k++)
			m |= (s->d[k] >> 31) << k;
	reg_write(c, i->reg, c->code64 ? 8 : 4, 1, m);
}

static void op_cvt5a(struct emu_cpu *c, const struct insn *i)
{
	check_sse(c);
	enum fp_form f = form_of(i);
	union xmm_reg s, *d = &c->xmm[i->reg];
	switch (f) {
	case FP_PS: { /* CVTPS2PD */
		sse_src(c, i, &s, 8, false);
		double a = s.f[0], b = s.f[1];
		d->fd[0] = a;
		d->fd[1] = b;
		break;
	}
	case FP_PD: { /* CVTPD2PS */
		sse_src(c, i, &s, 16, true);
		float a = (float)s.fd[0], b = (float)s.fd[1];
		d->f[0] = a;
		d->f[1] = b;
		d->q[1] = 0;
		break;
	}
	case FP_SS: /* CVTSS2SD */
		sse_src(c, i, &s, 4, false);
		d->fd[0] = s.f[0];
		break;
	case FP_SD: /* CVTSD2SS */
		sse_src(c, i, &s, 8, false);
		d->f[0] = (float)s.fd[0];
		break;
	}
}

static void op_cvt5b(struct emu_cpu *c, const struct insn *i)
{
	check_sse(c);
	union xmm_reg s, *d = &c->xmm[i->reg];
	sse_src(c, i, &s, 16, true);
	if (i->pfx & PFX_F2)
		insn_ud(c, i);
	if (!(i->pfx & (PFX_66 | PFX_F3))) { /* CVTDQ2PS */
		for (int k = 0; k < 4; k++)
			d->f[k] = (float)s.sd[k];
		return;
	}
	int mode = (i->pfx & PFX_F3) ? 4 : -1; /* CVTTPS2DQ : CVTPS2DQ */
	for (int k = 0; k < 4; k++)
		d->sd[k] = (int32_t)cvt_to_int(c, s.f[k], mode, 32);
}

static void op_cvte6(struct emu_cpu *c, const struct insn *i)
{
	check_sse(c);
	union xmm_reg s, *d = &c->xmm[i->reg];
	if (i->pfx & PFX_F3) { /* CVTDQ2PD */
		sse_src(c, i, &s, 8, false);
		double a = s.sd[0], b = s.sd[1];
		d->fd[0] = a;
		d->fd[1] = b;
		return;
	}
	if (!(i->pfx & (PFX_66 | PFX_F2)))
		insn_ud(c, i);
	sse_src(c, i, &s, 16, true);
	int mode = (i->pfx & PFX_66) ? 4 : -1; /* CVTTPD2DQ : CVTPD2DQ */
	d->sd[0] = (int32_t)cvt_to_int(c, s.fd[0], mode, 32);
	d->sd[1] = (int32_t)cvt_to_int(c, s.fd[1], mode, 32);
	d->q[1] = 0;
}

static bool cmp_pred(double a, double b, unsigned p)
{
	bool un = isnan(a) || isnan(b);
	switch (p & 7) {
	case 0: return !un && a == b;
	case 1: return !un && a < b;
	case 2: return !un && a <= b;
	case 3: return un;
	case 4: return un || a != b;
	case 5: return un || !(a < b);
	case 6: return un || !(a <= b);
	default: return !un;
	}
}

static void op_cmp(struct emu_cpu *c, const struct insn *i)
{
	check_sse(c);
	enum fp_form f = form_of(i);
	union xmm_reg s, *d = &c->xmm[i->reg];
	fp_src(c, i, f, &s);
	unsigned p = (uint8_t)i->imm;
	if (p > 7)
		insn_ud(c, i); /* AVX predicates only */
	switch (f) {
	case FP_PS:
		for (int k = 0; k < 4; k++)
			d->d[k] = cmp_pred(d->f[k], s.f[k], p) ? ~0u : 0;
		break;
	case FP_PD:
		for (int k = 0; k < 2; k++)
			d->q[k] = cmp_pred(d->fd[k], s.fd[k], p) ? ~0ULL : 0;
		break;
	case FP_SS:
		d->d[0] = cmp_pred(d->f[0], s.f[0], p) ? ~0u : 0;
		break;
	case FP_SD:
		d->q[0] = cmp_pred(d->fd[0], s.fd[0], p) ? ~0ULL : 0;
		break;
	}
}

static void op_shuf(struct emu_cpu *c, const struct insn *i)
{
	check_sse(c);
	if (i->pfx & (PFX_F2 | PFX_F3))
		insn_ud(c, i);
	union xmm_reg s, *d = &c->xmm[i->reg], r;
	sse_src(c, i, &s, 16, true);
	unsigned imm = (uint8_t)i->imm;
	if (i->pfx & PFX_66) {
		r.q[0] = d->q[imm & 1];
		r.q[1] = s.q[(imm >> 1) & 1];
	} else {
		r.d[0] = d->d[imm & 3];
		r.d[1] = d->d[(imm >> 2) & 3];
		r.d[2] = s.d[(imm >> 4) & 3];
		r.d[3] = s.d[(imm >> 6) & 3];
	}
	*d = r;
}

/* SSE3: HADD/HSUB (7C/7D), ADDSUB (D0), LDDQU (F0) */
static void op_hadd(struct emu_cpu *c, const struct insn *i)
{
	check_sse(c);
	union xmm_reg s, *d = &c->xmm[i->reg], r;
	sse_src(c, i, &s, 16, true);
	bool sub = i->op == 0x7D;
	if (i->pfx & PFX_66) {
		r.fd[0] = sub ? d->fd[0] - d->fd[1] : d->fd[0] + d->fd[1];
		r.fd[1] = sub ? s.fd[0] - s.fd[1] : s.fd[0] + s.fd[1];
	} else if (i->pfx & PFX_F2) {
		r.f[0] = sub ? d->f[0] - d->f[1] : d->f[0] + d->f[1];
		r.f[1] = sub ? d->f[2] - d->f[3] : d->f[2] + d->f[3];
		r.f[2] = sub ? s.f[0] - s.f[1] : s.f[0] + s.f[1];
		r.f[3] = sub ? s.f[2] - s.f[3] : s.f[2] + s.f[3];
	} else {
		insn_ud(c, i);
	}
	*d = r;
}

static void op_addsub(struct emu_cpu *c, const struct insn *i)
{
	check_sse(c);
	union xmm_reg s, *d = &c->xmm[i->reg];
	sse_src(c, i, &s, 16, true);
	if (i->pfx & PFX_66) {
		d->fd[0] -= s.fd[0];
		d->fd[1] += s.fd[1];
	} else if (i->pfx & PFX_F2) {
		d->f[0] -= s.f[0];
		d->f[1] += s.f[1];
		d->f[2] -= s.f[2];
		d->f[3] += s.f[3];
	} else {
		insn_ud(c, i);
	}
}

static void op_lddqu(struct emu_cpu *c, const struct insn *i)
{
	check_sse(c);
	if (!(i->pfx & PFX_F2) || i->mod == 3)
		insn_ud(c, i);
	union xmm_reg s;
	sse_src(c, i, &s, 16, false);
	c->xmm[i->reg] = s;
}

void sse_fp_init(void)
{
	op_table2[0x10] = op_table2[0x11] = op_movu;
	op_table2[0x12] = op_table2[0x13] = op_table2[0x16] = op_table2[0x17] = op_movlh;
	op_table2[0x14] = op_table2[0x15] = op_unpck;
	op_table2[0x28] = op_table2[0x29] = op_table2[0x2B] = op_mova;
	op_table2[0x2A] = op_cvt2a;
	op_table2[0x2C] = op_table2[0x2D] = op_cvt2c;
	op_table2[0x2E] = op_table2[0x2F] = op_comis;
	op_table2[0x50] = op_movmsk;
	op_table2[0x51] = op_sqrt;
	op_table2[0x52] = op_rsqrt;
	op_table2[0x53] = op_rcp;
	op_table2[0x54] = op_table2[0x55] = op_table2[0x56] = op_table2[0x57] = op_logic;
	op_table2[0x58] = op_add;
	op_table2[0x59] = op_mul;
	op_table2[0x5A] = op_cvt5a;
	op_table2[0x5B] = op_cvt5b;
	op_table2[0x5C] = op_sub;
	op_table2[0x5D] = op_min;
	op_table2[0x5E] = op_div;
	op_table2[0x5F] = op_max;
	op_table2[0x7C] = op_table2[0x7D] = op_hadd;
	op_table2[0xC2] = op_cmp;
	op_table2[0xC6] = op_shuf;
	op_table2[0xD0] = op_addsub;
	op_table2[0xE6] = op_cvte6;
	op_table2[0xF0] = op_lddqu;
}
