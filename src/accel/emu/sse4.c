/* SSSE3, SSE4.1 and SSE4.2 (with CRC32): the 0F 38 and 0F 3A maps.
 *
 * Most forms are "vector ops": dest xmm (or mm for the SSSE3 MMX forms)
 * combined with a source xmm/mm or memory operand, described by one
 * table row (handler, memory width, alignment, MMX form allowed). The
 * rest (PTEST, PEXTR*, PINSR*, PCMPxSTRx, CRC32, MOVNTDQA) have their own
 * handlers. Prefix rules: SSSE3 forms exist without a prefix (mm) and with
 * 66 (xmm); SSE4 forms only with 66; CRC32 only with F2. Anything else,
 * and LOCK, is #UD. Legacy-SSE m128 operands must be 16-byte aligned (#GP)
 * except the PCMPxSTRx sources and the narrow loads (PMOVSX/ZX, ROUNDSS/SD,
 * INSERTPS, PINSR*), as the SDM says. */
#include "accel/emu/cpu.h"
#include "accel/emu/sse.h"

#include <math.h>

typedef void (*vop_fn)(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm);

struct vop {
	vop_fn fn;
	uint8_t mem_bytes;   /* width of a memory source */
	bool aligned;        /* memory source must be 16-byte aligned */
	bool mmx;            /* also exists without 66, on mm registers */
};

static struct vop ops38[256], ops3a[256];

static inline int64_t sat(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* ------------------------------------------------------------------ */
/* SSSE3 (n = 8 for mm, 16 for xmm) */

static void v_pshufb(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm)
{
	union xmm_reg r;
	for (unsigned k = 0; k < n; k++)
		r.b[k] = (s->b[k] & 0x80) ? 0 : d->b[s->b[k] & (n - 1)];
	memcpy(d, &r, n);
}

/* Horizontal add/sub of adjacent pairs: the low half of the result from
 * dest's pairs, the high half from the source's. */
enum { H_ADD, H_SUB, H_ADDS, H_SUBS };
static void hop(union xmm_reg *d, const union xmm_reg *s, unsigned n, unsigned es, int kind)
{
	union xmm_reg r;
	unsigned half = n / es / 2;
	for (unsigned k = 0; k < 2 * half; k++) {
		const union xmm_reg *src = k < half ? d : s;
		unsigned p = 2 * (k % half);
		if (es == 2) {
			int32_t a = src->sw[p], b = src->sw[p + 1];
			int32_t v = (kind == H_ADD || kind == H_ADDS) ? a + b : a - b;
			if (kind >= H_ADDS)
				v = (int32_t)sat(v, -32768, 32767);
			r.w[k] = (uint16_t)v;
		} else {
			uint32_t a = src->d[p], b = src->d[p + 1];
			r.d[k] = kind == H_ADD ? a + b : a - b;
		}
	}
	memcpy(d, &r, n);
}
static void v_phaddw(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm) { hop(d, s, n, 2, H_ADD); }
static void v_phaddd(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm) { hop(d, s, n, 4, H_ADD); }
static void v_phaddsw(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm) { hop(d, s, n, 2, H_ADDS); }
static void v_phsubw(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm) { hop(d, s, n, 2, H_SUB); }
static void v_phsubd(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm) { hop(d, s, n, 4, H_SUB); }
static void v_phsubsw(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm) { hop(d, s, n, 2, H_SUBS); }

/* PMADDUBSW: unsigned bytes of dest times signed bytes of the source,
 * adjacent products added with signed saturation. */
static void v_pmaddubsw(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm)
{
	for (unsigned k = 0; k < n / 2; k++) {
		int32_t v = (int32_t)d->b[2 * k] * s->sb[2 * k] + (int32_t)d->b[2 * k + 1] * s->sb[2 * k + 1];
		d->sw[k] = (int16_t)sat(v, -32768, 32767);
	}
}

/* PMULHRSW: ((a * b >> 14) + 1) >> 1, the high 16 bits rounded. */
static void v_pmulhrsw(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm)
{
	for (unsigned k = 0; k < n / 2; k++) {
		int32_t p = (int32_t)d->sw[k] * s->sw[k];
		d->w[k] = (uint16_t)(((p >> 14) + 1) >> 1);
	}
}

#define SIGN_OP(name, T, f)                                                                                 \
	static void name(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm) \
	{                                                                                                   \
		for (unsigned k = 0; k < n / sizeof(T); k++)                                                \
			d->f[k] = s->f[k] < 0 ? (T)(0 - (uint64_t)d->f[k]) : s->f[k] == 0 ? 0 : d->f[k];    \
	}
SIGN_OP(v_psignb, int8_t, sb)
SIGN_OP(v_psignw, int16_t, sw)
SIGN_OP(v_psignd, int32_t, sd)

/* PABS: the unsigned absolute value (|-128| is 0x80). */
#define ABS_OP(name, T, f, uf)                                                                              \
	static void name(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm) \
	{                                                                                                   \
		for (unsigned k = 0; k < n / sizeof(T); k++)                                                \
			d->uf[k] = s->f[k] < 0 ? (__typeof__(d->uf[0]))(0 - (uint64_t)s->f[k]) : s->uf[k];  \
	}
ABS_OP(v_pabsb, int8_t, sb, b)
ABS_OP(v_pabsw, int16_t, sw, w)
ABS_OP(v_pabsd, int32_t, sd, d)

/* PALIGNR: dest:source (dest high) shifted right by imm bytes. */
static void v_palignr(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm)
{
	uint8_t cat[32];
	memcpy(cat, s->b, n);
	memcpy(cat + n, d->b, n);
	for (unsigned k = 0; k < n; k++)
		d->b[k] = k + imm < 2 * n ? cat[k + imm] : 0;
}

/* ------------------------------------------------------------------ */
/* SSE4.1 packed integer */

static void v_pblendvb(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm)
{
	union xmm_reg mask = c->xmm[0];
	for (unsigned k = 0; k < 16; k++)
		if (mask.b[k] & 0x80)
			d->b[k] = s->b[k];
}

static void v_blendvps(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm)
{
	union xmm_reg mask = c->xmm[0];
	for (unsigned k = 0; k < 4; k++)
		if (mask.d[k] >> 31)
			d->d[k] = s->d[k];
}

static void v_blendvpd(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm)
{
	union xmm_reg mask = c->xmm[0];
	for (unsigned k = 0; k < 2; k++)
		if (mask.q[k] >> 63)
			d->q[k] = s->q[k];
}

static void v_blendps(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm)
{
	for (unsigned k = 0; k < 4; k++)
		if ((imm >> k) & 1)
			d->d[k] = s->d[k];
}

static void v_blendpd(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm)
{
	for (unsigned k = 0; k < 2; k++)
		if ((imm >> k) & 1)
			d->q[k] = s->q[k];
}

static void v_pblendw(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm)
{
	for (unsigned k = 0; k < 8; k++)
		if ((imm >> k) & 1)
			d->w[k] = s->w[k];
}

/* PMOVSX/PMOVZX: the low elements of the source widened (op 20-25 sign,
 * 30-35 zero; BW BD BQ WD WQ DQ). */
static void pmovx(union xmm_reg *d, const union xmm_reg *s, unsigned from, unsigned to, bool sign)
{
	union xmm_reg r;
	for (unsigned k = 0; k < 16 / to; k++) {
		uint64_t v = 0;
		memcpy(&v, &s->b[k * from], from);
		if (sign) {
			unsigned sh = 64 - 8 * from;
			v = (uint64_t)((int64_t)(v << sh) >> sh);
		}
		memcpy(&r.b[k * to], &v, to);
	}
	*d = r;
}
#define PMOVX(name, from, to, sign) \
	static void name(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm) { pmovx(d, s, from, to, sign); }
PMOVX(v_pmovsxbw, 1, 2, true)
PMOVX(v_pmovsxbd, 1, 4, true)
PMOVX(v_pmovsxbq, 1, 8, true)
PMOVX(v_pmovsxwd, 2, 4, true)
PMOVX(v_pmovsxwq, 2, 8, true)
PMOVX(v_pmovsxdq, 4, 8, true)
PMOVX(v_pmovzxbw, 1, 2, false)
PMOVX(v_pmovzxbd, 1, 4, false)
PMOVX(v_pmovzxbq, 1, 8, false)
PMOVX(v_pmovzxwd, 2, 4, false)
PMOVX(v_pmovzxwq, 2, 8, false)
PMOVX(v_pmovzxdq, 4, 8, false)

#define LANES(name, T, f, expr)                                                                             \
	static void name(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm) \
	{                                                                                                   \
		for (unsigned k = 0; k < 16 / sizeof(T); k++) {                                             \
			T a = d->f[k], b = s->f[k];                                                         \
			d->f[k] = (T)(expr);                                                                \
		}                                                                                           \
	}
LANES(v_pcmpeqq, uint64_t, q, a == b ? ~0ULL : 0)
LANES(v_pcmpgtq, int64_t, sq, a > b ? -1 : 0)
LANES(v_pminsb, int8_t, sb, a < b ? a : b)
LANES(v_pminsd, int32_t, sd, a < b ? a : b)
LANES(v_pminuw, uint16_t, w, a < b ? a : b)
LANES(v_pminud, uint32_t, d, a < b ? a : b)
LANES(v_pmaxsb, int8_t, sb, a > b ? a : b)
LANES(v_pmaxsd, int32_t, sd, a > b ? a : b)
LANES(v_pmaxuw, uint16_t, w, a > b ? a : b)
LANES(v_pmaxud, uint32_t, d, a > b ? a : b)
LANES(v_pmulld, uint32_t, d, (uint32_t)((uint64_t)a * b))

static void v_pmuldq(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm)
{
	for (unsigned k = 0; k < 2; k++)
		d->sq[k] = (int64_t)d->sd[2 * k] * s->sd[2 * k];
}

static void v_packusdw(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm)
{
	union xmm_reg r;
	for (unsigned k = 0; k < 4; k++) {
		r.w[k] = (uint16_t)sat(d->sd[k], 0, 65535);
		r.w[4 + k] = (uint16_t)sat(s->sd[k], 0, 65535);
	}
	*d = r;
}

/* PHMINPOSUW: the smallest unsigned word (lowest index on ties) in bits
 * 15:0, its index in bits 18:16, the rest zero. */
static void v_phminposuw(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm)
{
	unsigned idx = 0;
	for (unsigned k = 1; k < 8; k++)
		if (s->w[k] < s->w[idx])
			idx = k;
	union xmm_reg r = { 0 };
	r.w[0] = s->w[idx];
	r.w[1] = (uint16_t)idx;
	*d = r;
}

/* MPSADBW: eight sums of absolute differences between a 4-byte block of
 * the source (imm[1:0]) and sliding 4-byte windows of dest (from imm[2]). */
static void v_mpsadbw(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm)
{
	unsigned o1 = ((imm >> 2) & 1) * 4, o2 = (imm & 3) * 4;
	union xmm_reg r;
	for (unsigned k = 0; k < 8; k++) {
		unsigned sum = 0;
		for (unsigned j = 0; j < 4; j++) {
			int diff = (int)d->b[o1 + k + j] - (int)s->b[o2 + j];
			sum += (unsigned)(diff < 0 ? -diff : diff);
		}
		r.w[k] = (uint16_t)sum;
	}
	*d = r;
}

/* ------------------------------------------------------------------ */
/* SSE4.1 floating point. NaN operands propagate as SSE does (the first
 * operand's NaN wins, quieted), whatever order the compiler picks. */

static float quiet_f(float x)
{
	uint32_t u;
	memcpy(&u, &x, 4);
	u |= 0x00400000u;
	memcpy(&x, &u, 4);
	return x;
}

static double quiet_d(double x)
{
	uint64_t u;
	memcpy(&u, &x, 8);
	u |= 0x0008000000000000ULL;
	memcpy(&x, &u, 8);
	return x;
}

static float sse_fadd(float a, float b) { return isnan(a) ? quiet_f(a) : isnan(b) ? quiet_f(b) : a + b; }
static float sse_fmul(float a, float b) { return isnan(a) ? quiet_f(a) : isnan(b) ? quiet_f(b) : a * b; }
static double sse_dadd(double a, double b) { return isnan(a) ? quiet_d(a) : isnan(b) ? quiet_d(b) : a + b; }
static double sse_dmul(double a, double b) { return isnan(a) ? quiet_d(a) : isnan(b) ? quiet_d(b) : a * b; }

/* DPPS: products of the lanes selected by imm[7:4] (others +0.0), summed
 * as (p0 + p1) + (p2 + p3), stored in the lanes selected by imm[3:0]. */
static void v_dpps(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm)
{
	float p[4];
	for (unsigned k = 0; k < 4; k++)
		p[k] = ((imm >> (4 + k)) & 1) ? sse_fmul(d->f[k], s->f[k]) : 0.0f;
	float sum = sse_fadd(sse_fadd(p[0], p[1]), sse_fadd(p[2], p[3]));
	for (unsigned k = 0; k < 4; k++)
		d->f[k] = ((imm >> k) & 1) ? sum : 0.0f;
}

static void v_dppd(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm)
{
	double p[2];
	for (unsigned k = 0; k < 2; k++)
		p[k] = ((imm >> (4 + k)) & 1) ? sse_dmul(d->fd[k], s->fd[k]) : 0.0;
	double sum = sse_dadd(p[0], p[1]);
	for (unsigned k = 0; k < 2; k++)
		d->fd[k] = ((imm >> k) & 1) ? sum : 0.0;
}

/* ROUND*: imm[1:0] rounding mode (nearest-even, down, up, toward zero)
 * unless imm[2] says "MXCSR.RC"; imm[3] only suppresses the precision
 * exception, whose flag is not kept. SNaN becomes QNaN. */
static unsigned round_mode(const struct emu_cpu *c, uint8_t imm)
{
	return (imm & 4) ? (c->mxcsr >> 13) & 3 : imm & 3;
}

static float round_f(float x, unsigned mode)
{
	if (isnan(x))
		return quiet_f(x);
	switch (mode) {
	case 0: return roundevenf(x);
	case 1: return floorf(x);
	case 2: return ceilf(x);
	default: return truncf(x);
	}
}

static double round_d(double x, unsigned mode)
{
	if (isnan(x))
		return quiet_d(x);
	switch (mode) {
	case 0: return roundeven(x);
	case 1: return floor(x);
	case 2: return ceil(x);
	default: return trunc(x);
	}
}

static void v_roundps(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm)
{
	unsigned m = round_mode(c, imm);
	for (unsigned k = 0; k < 4; k++)
		d->f[k] = round_f(s->f[k], m);
}

static void v_roundpd(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm)
{
	unsigned m = round_mode(c, imm);
	for (unsigned k = 0; k < 2; k++)
		d->fd[k] = round_d(s->fd[k], m);
}

static void v_roundss(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm)
{
	d->f[0] = round_f(s->f[0], round_mode(c, imm));
}

static void v_roundsd(struct emu_cpu *c, union xmm_reg *d, const union xmm_reg *s, unsigned n, uint8_t imm)
{
	d->fd[0] = round_d(s->fd[0], round_mode(c, imm));
}

/* INSERTPS: a dword (from source lane imm[7:6], or memory) into lane
 * imm[5:4], then the lanes of imm[3:0] zeroed. */
static void insertps(union xmm_reg *d, uint32_t v, uint8_t imm)
{
	d->d[(imm >> 4) & 3] = v;
	for (unsigned k = 0; k < 4; k++)
		if ((imm >> k) & 1)
			d->d[k] = 0;
}

/* ------------------------------------------------------------------ */
/* Dispatch of the vector ops */

static void require_66(struct emu_cpu *c, const struct insn *i)
{
	if ((i->pfx & (PFX_LOCK | PFX_F2 | PFX_F3)) || !(i->pfx & PFX_66))
		insn_ud(c, i);
}

static void op_vec(struct emu_cpu *c, const struct insn *i)
{
	const struct vop *v = i->map == 2 ? &ops38[i->op] : &ops3a[i->op];
	uint8_t imm = (uint8_t)i->imm;
	if (i->pfx & (PFX_LOCK | PFX_F2 | PFX_F3))
		insn_ud(c, i);
	if (!(i->pfx & PFX_66)) {
		if (!v->mmx)
			insn_ud(c, i);
		check_mmx(c);
		union xmm_reg d = { .q = { mmx_get(c, i->reg & 7), 0 } }, s = { 0 };
		s.q[0] = i->mod == 3 ? mmx_get(c, i->rm & 7) : mem_read(c, i->seg, insn_ea(c, i), 8);
		v->fn(c, &d, &s, 8, imm);
		mmx_set(c, i->reg & 7, d.q[0]);
		return;
	}
	check_sse(c);
	union xmm_reg s;
	sse_src(c, i, &s, v->mem_bytes, v->aligned);
	v->fn(c, &c->xmm[i->reg], &s, 16, imm);
}

/* 66 0F 3A 21: INSERTPS (register source lane imm[7:6]; memory: 4 bytes). */
static void op_insertps(struct emu_cpu *c, const struct insn *i)
{
	require_66(c, i);
	check_sse(c);
	uint8_t imm = (uint8_t)i->imm;
	uint32_t v = i->mod == 3 ? c->xmm[i->rm].d[imm >> 6] : (uint32_t)mem_read(c, i->seg, insn_ea(c, i), 4);
	insertps(&c->xmm[i->reg], v, imm);
}

/* 66 0F 38 17: PTEST sets ZF if dest AND source is zero, CF if source AND
 * NOT dest is zero; AF, OF, PF, SF cleared. */
static void op_ptest(struct emu_cpu *c, const struct insn *i)
{
	require_66(c, i);
	check_sse(c);
	union xmm_reg s;
	sse_src(c, i, &s, 16, true);
	const union xmm_reg *d = &c->xmm[i->reg];
	uint32_t f = 0;
	if (!((d->q[0] & s.q[0]) | (d->q[1] & s.q[1])))
		f |= FL_ZF;
	if (!((~d->q[0] & s.q[0]) | (~d->q[1] & s.q[1])))
		f |= FL_CF;
	set_arith_flags(c, f);
}

/* 66 0F 38 2A: MOVNTDQA xmm, m128 (aligned; the hint is meaningless here). */
static void op_movntdqa(struct emu_cpu *c, const struct insn *i)
{
	require_66(c, i);
	if (i->mod == 3)
		insn_ud(c, i);
	check_sse(c);
	union xmm_reg s;
	sse_src(c, i, &s, 16, true);
	c->xmm[i->reg] = s;
}

/* 66 0F 3A 14-17: PEXTRB/W/D/Q and EXTRACTPS to r/m. A register
 * destination is written zero-extended to 64 bits. */
static void op_pextr(struct emu_cpu *c, const struct insn *i)
{
	require_66(c, i);
	check_sse(c);
	const union xmm_reg *x = &c->xmm[i->reg];
	uint8_t imm = (uint8_t)i->imm;
	unsigned size;
	uint64_t v;
	switch (i->op) {
	case 0x14: size = 1; v = x->b[imm & 15]; break;
	case 0x15: size = 2; v = x->w[imm & 7]; break;
	case 0x16:
		if (i->rex & 8) {
			size = 8;
			v = x->q[imm & 1];
			break;
		}
		/* fall through */
	default: size = 4; v = x->d[imm & 3]; break;
	}
	if (i->mod == 3)
		c->r[i->rm] = v;
	else
		mem_write(c, i->seg, insn_ea(c, i), size, v);
}

/* 66 0F 3A 20/22: PINSRB/D/Q from r32/r64 or memory. */
static void op_pinsr(struct emu_cpu *c, const struct insn *i)
{
	require_66(c, i);
	check_sse(c);
	uint8_t imm = (uint8_t)i->imm;
	unsigned size = i->op == 0x20 ? 1 : (i->rex & 8) ? 8 : 4;
	uint64_t v = i->mod == 3 ? c->r[i->rm] : mem_read(c, i->seg, insn_ea(c, i), size);
	union xmm_reg *x = &c->xmm[i->reg];
	switch (size) {
	case 1: x->b[imm & 15] = (uint8_t)v; break;
	case 4: x->d[imm & 3] = (uint32_t)v; break;
	default: x->q[imm & 1] = v; break;
	}
}

/* ------------------------------------------------------------------ */
/* SSE4.2 string compares: PCMPESTRI/M (66 0F 3A 60/61, lengths in
 * EAX/EDX or RAX/RDX with REX.W) and PCMPISTRI/M (62/63, lengths up to
 * the first null element). imm8: [1:0] format (unsigned/signed,
 * bytes/words), [3:2] aggregation, [5:4] polarity, [6] output (most
 * significant index / expanded mask). */

static unsigned explicit_len(const struct emu_cpu *c, unsigned r, bool wide, unsigned n)
{
	int64_t v = wide ? (int64_t)c->r[r] : (int64_t)(int32_t)c->r[r];
	uint64_t a = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	return a > n ? n : (unsigned)a;
}

static void pcmpstr(struct emu_cpu *c, const struct insn *i)
{
	require_66(c, i);
	check_sse(c);
	union xmm_reg a = c->xmm[i->reg], b;
	sse_src(c, i, &b, 16, false);
	uint8_t imm = (uint8_t)i->imm;
	bool words = imm & 1, sgn = imm & 2;
	bool is_explicit = i->op < 0x62, index = i->op & 1;
	unsigned n = words ? 8 : 16;
	int32_t ea[16], eb[16];
	for (unsigned k = 0; k < n; k++) {
		ea[k] = words ? (sgn ? a.sw[k] : a.w[k]) : (sgn ? a.sb[k] : a.b[k]);
		eb[k] = words ? (sgn ? b.sw[k] : b.w[k]) : (sgn ? b.sb[k] : b.b[k]);
	}
	unsigned la = n, lb = n;
	if (is_explicit) {
		la = explicit_len(c, R_RAX, i->rex & 8, n);
		lb = explicit_len(c, R_RDX, i->rex & 8, n);
	} else {
		for (unsigned k = 0; k < n; k++)
			if (!ea[k]) {
				la = k;
				break;
			}
		for (unsigned k = 0; k < n; k++)
			if (!eb[k]) {
				lb = k;
				break;
			}
	}
	/* IntRes1, with the SDM's overrides for invalid (past the length)
	 * elements: equal-any and ranges never match them; equal-each matches
	 * two invalid elements; equal-ordered matches once the needle (first
	 * operand) has ended and fails where the haystack has. */
	unsigned res = 0;
	switch ((imm >> 2) & 3) {
	case 0: /* equal any */
		for (unsigned j = 0; j < lb; j++)
			for (unsigned k = 0; k < la; k++)
				if (ea[k] == eb[j])
					res |= 1u << j;
		break;
	case 1: /* ranges: pairs (lo, hi) of the first operand */
		for (unsigned j = 0; j < lb; j++)
			for (unsigned k = 0; k + 1 < la; k += 2)
				if (eb[j] >= ea[k] && eb[j] <= ea[k + 1])
					res |= 1u << j;
		break;
	case 2: /* equal each */
		for (unsigned j = 0; j < n; j++) {
			bool va = j < la, vb = j < lb;
			if (va == vb && (!va || ea[j] == eb[j]))
				res |= 1u << j;
		}
		break;
	default: /* equal ordered: the needle a at every position of b */
		for (unsigned j = 0; j < n; j++) {
			bool match = true;
			for (unsigned k = 0; j + k < n && k < la && match; k++)
				match = j + k < lb && ea[k] == eb[j + k];
			if (match)
				res |= 1u << j;
		}
		break;
	}
	unsigned all = (1u << n) - 1;
	switch ((imm >> 4) & 3) {
	case 1: res ^= all; break;                 /* negative */
	case 3: res ^= (1u << lb) - 1; break;       /* masked negative: valid elements only */
	default: break;
	}
	uint32_t f = (res ? FL_CF : 0) | (lb < n ? FL_ZF : 0) | (la < n ? FL_SF : 0) | ((res & 1) ? FL_OF : 0);
	if (index) {
		unsigned idx = n;
		if (res)
			idx = (imm & 0x40) ? 31 - (unsigned)__builtin_clz(res) : (unsigned)__builtin_ctz(res);
		c->r[R_RCX] = idx;
	} else {
		union xmm_reg m = { 0 };
		if (imm & 0x40) {
			for (unsigned k = 0; k < n; k++)
				if ((res >> k) & 1) {
					if (words)
						m.w[k] = 0xFFFF;
					else
						m.b[k] = 0xFF;
				}
		} else {
			m.q[0] = res;
		}
		c->xmm[0] = m;
	}
	set_arith_flags(c, f);
}

/* ------------------------------------------------------------------ */
/* CRC32 (F2 0F 38 F0/F1): CRC-32C (Castagnoli, reflected polynomial
 * 0x82F63B78) of the r/m operand's bytes, little-endian, accumulated onto
 * the low 32 bits of the destination; the result is zero-extended. */

static uint32_t crc32c_table[256];

static void crc32c_init(void)
{
	for (unsigned k = 0; k < 256; k++) {
		uint32_t v = k;
		for (int b = 0; b < 8; b++)
			v = (v >> 1) ^ (0x82F63B78u & (0u - (v & 1)));
		crc32c_table[k] = v;
	}
}

static void op_crc32(struct emu_cpu *c, const struct insn *i)
{
	/* Without F2 these are MOVBE, which is not advertised. */
	if ((i->pfx & (PFX_LOCK | PFX_F3)) || !(i->pfx & PFX_F2))
		insn_ud(c, i);
	unsigned size = i->op == 0xF0 ? 1 : i->osize;
	uint64_t v = rm_read(c, i, size);
	uint32_t crc = (uint32_t)c->r[i->reg];
	for (unsigned k = 0; k < size; k++)
		crc = (crc >> 8) ^ crc32c_table[(crc ^ (v >> (8 * k))) & 0xFF];
	c->r[i->reg] = crc;
}

/* ------------------------------------------------------------------ */

static void vop38(uint8_t op, vop_fn fn, unsigned mem_bytes, bool aligned, bool mmx)
{
	ops38[op] = (struct vop){ fn, (uint8_t)mem_bytes, aligned, mmx };
	op_table38[op] = op_vec;
}

static void vop3a(uint8_t op, vop_fn fn, unsigned mem_bytes, bool aligned, bool mmx)
{
	ops3a[op] = (struct vop){ fn, (uint8_t)mem_bytes, aligned, mmx };
	op_table3a[op] = op_vec;
}

void sse4_init(void)
{
	/* SSSE3: mm (no prefix) and xmm (66) forms */
	static const vop_fn ssse3[16] = {
		v_pshufb, v_phaddw, v_phaddd, v_phaddsw, v_pmaddubsw, v_phsubw, v_phsubd, v_phsubsw,
		v_psignb, v_psignw, v_psignd, v_pmulhrsw,
	};
	for (unsigned k = 0; k < 12; k++)
		vop38((uint8_t)k, ssse3[k], 16, true, true);
	vop38(0x1C, v_pabsb, 16, true, true);
	vop38(0x1D, v_pabsw, 16, true, true);
	vop38(0x1E, v_pabsd, 16, true, true);
	vop3a(0x0F, v_palignr, 16, true, true);

	/* SSE4.1 */
	vop38(0x10, v_pblendvb, 16, true, false);
	vop38(0x14, v_blendvps, 16, true, false);
	vop38(0x15, v_blendvpd, 16, true, false);
	op_table38[0x17] = op_ptest;
	static const vop_fn pmovsx[6] = { v_pmovsxbw, v_pmovsxbd, v_pmovsxbq, v_pmovsxwd, v_pmovsxwq, v_pmovsxdq };
	static const vop_fn pmovzx[6] = { v_pmovzxbw, v_pmovzxbd, v_pmovzxbq, v_pmovzxwd, v_pmovzxwq, v_pmovzxdq };
	static const uint8_t pmov_bytes[6] = { 8, 4, 2, 8, 4, 8 };
	for (unsigned k = 0; k < 6; k++) {
		vop38((uint8_t)(0x20 + k), pmovsx[k], pmov_bytes[k], false, false);
		vop38((uint8_t)(0x30 + k), pmovzx[k], pmov_bytes[k], false, false);
	}
	vop38(0x28, v_pmuldq, 16, true, false);
	vop38(0x29, v_pcmpeqq, 16, true, false);
	op_table38[0x2A] = op_movntdqa;
	vop38(0x2B, v_packusdw, 16, true, false);
	static const vop_fn minmax[8] = { v_pminsb, v_pminsd, v_pminuw, v_pminud,
					  v_pmaxsb, v_pmaxsd, v_pmaxuw, v_pmaxud };
	for (unsigned k = 0; k < 8; k++)
		vop38((uint8_t)(0x38 + k), minmax[k], 16, true, false);
	vop38(0x40, v_pmulld, 16, true, false);
	vop38(0x41, v_phminposuw, 16, true, false);
	vop3a(0x08, v_roundps, 16, true, false);
	vop3a(0x09, v_roundpd, 16, true, false);
	vop3a(0x0A, v_roundss, 4, false, false);
	vop3a(0x0B, v_roundsd, 8, false, false);
	vop3a(0x0C, v_blendps, 16, true, false);
	vop3a(0x0D, v_blendpd, 16, true, false);
	vop3a(0x0E, v_pblendw, 16, true, false);
	for (uint8_t op = 0x14; op <= 0x17; op++)
		op_table3a[op] = op_pextr;
	op_table3a[0x20] = op_table3a[0x22] = op_pinsr;
	op_table3a[0x21] = op_insertps;
	vop3a(0x40, v_dpps, 16, true, false);
	vop3a(0x41, v_dppd, 16, true, false);
	vop3a(0x42, v_mpsadbw, 16, true, false);

	/* SSE4.2 */
	vop38(0x37, v_pcmpgtq, 16, true, false);
	for (uint8_t op = 0x60; op <= 0x63; op++)
		op_table3a[op] = pcmpstr;
	crc32c_init();
	op_table38[0xF0] = op_table38[0xF1] = op_crc32;
}
