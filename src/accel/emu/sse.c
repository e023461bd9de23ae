/* MMX, SSE and SSE2 (the x86-64 baseline); SSE3 is in sse_fp.c, SSSE3
 * and SSE4 in sse4.c. Integer lanes are plain C loops; floating point
 * uses the host's IEEE float/double, which is what SSE computes (round to
 * nearest; MXCSR rounding modes are honoured by the conversions; MXCSR
 * exception flags are not accumulated). */
#include "accel/emu/alu.h"
#include "accel/emu/cpu.h"
#include "accel/emu/sse.h"

#include <math.h>
#include <stdlib.h>

/* ------------------------------------------------------------------ */
/* Register and operand access */

void check_mmx(struct emu_cpu *c)
{
	if (c->cr0 & X86_CR0_EM)
		raise_ud(c);
	if (c->cr0 & X86_CR0_TS)
		raise_exc(c, EXC_NM);
}

uint64_t mmx_get(struct emu_cpu *c, unsigned n)
{
	uint64_t v;
	memcpy(&v, &c->fpr[n & 7], 8);
	return v;
}

/* Writing an MMX register sets TOP to 0, tags all valid and the exponent
 * field of that register to all ones, as the SDM specifies. */
void mmx_set(struct emu_cpu *c, unsigned n, uint64_t v)
{
	uint8_t *p = (uint8_t *)&c->fpr[n & 7];
	memcpy(p, &v, 8);
	p[8] = 0xFF;
	p[9] = 0xFF;
	c->ftop = 0;
	c->ftw = 0;
}

static void mmx_enter(struct emu_cpu *c)
{
	check_mmx(c);
	c->ftop = 0;
	c->ftw = 0;
}

/* Source operand: xmm register or `bytes` from memory (16-byte aligned
 * when `aligned`, else #GP). */
void sse_src(struct emu_cpu *c, const struct insn *i, union xmm_reg *t, unsigned bytes, bool aligned)
{
	if (i->mod == 3) {
		*t = c->xmm[i->rm];
		return;
	}
	uint64_t ea = insn_ea(c, i);
	if (aligned && (seg_lin(c, i->seg, ea) & 15))
		raise_gp0(c);
	memset(t, 0, sizeof(*t));
	if (bytes == 16) {
		t->q[0] = mem_read(c, i->seg, ea, 8);
		t->q[1] = mem_read(c, i->seg, ea + 8, 8);
	} else {
		t->q[0] = mem_read(c, i->seg, ea, bytes);
	}
}

void sse_store(struct emu_cpu *c, const struct insn *i, const union xmm_reg *v, unsigned bytes, bool aligned)
{
	if (i->mod == 3) {
		if (bytes == 16)
			c->xmm[i->rm] = *v;
		else if (bytes == 8)
			c->xmm[i->rm].q[0] = v->q[0];
		else
			c->xmm[i->rm].d[0] = v->d[0];
		return;
	}
	uint64_t ea = insn_ea(c, i);
	uint64_t lin = seg_lin(c, i->seg, ea);
	if (aligned && (lin & 15))
		raise_gp0(c);
	if (bytes == 16) {
		if ((lin & 0xFFF) > 0xFF0) /* fault before any partial write */
			mem_write_bytes(c, i->seg, ea, v, 16);
		else {
			mem_write(c, i->seg, ea, 8, v->q[0]);
			mem_write(c, i->seg, ea + 8, 8, v->q[1]);
		}
	} else {
		mem_write(c, i->seg, ea, bytes, bytes == 8 ? v->q[0] : v->d[0]);
	}
}

/* MMX source: mm register or 8 bytes of memory. */
static uint64_t mmx_src(struct emu_cpu *c, const struct insn *i)
{
	if (i->mod == 3)
		return mmx_get(c, i->rm & 7);
	return mem_read(c, i->seg, insn_ea(c, i), 8);
}

/* ------------------------------------------------------------------ */
/* Packed integer lanes */

static inline int64_t sat(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

#define LANES(name, T, f, expr)                                                       \
	static void name(union xmm_reg *d, const union xmm_reg *s, unsigned n)        \
	{                                                                             \
		for (unsigned k = 0; k < n / sizeof(T); k++) {                        \
			T a = d->f[k], b = s->f[k];                                   \
			(void)a; (void)b;                                             \
			d->f[k] = (T)(expr);                                          \
		}                                                                     \
	}

LANES(v_paddb, uint8_t, b, a + b)
LANES(v_paddw, uint16_t, w, a + b)
LANES(v_paddd, uint32_t, d, a + b)
LANES(v_paddq, uint64_t, q, a + b)
LANES(v_psubb, uint8_t, b, a - b)
LANES(v_psubw, uint16_t, w, a - b)
LANES(v_psubd, uint32_t, d, a - b)
LANES(v_psubq, uint64_t, q, a - b)
LANES(v_paddsb, int8_t, sb, sat((int64_t)a + b, -128, 127))
LANES(v_paddsw, int16_t, sw, sat((int64_t)a + b, -32768, 32767))
LANES(v_psubsb, int8_t, sb, sat((int64_t)a - b, -128, 127))
LANES(v_psubsw, int16_t, sw, sat((int64_t)a - b, -32768, 32767))
LANES(v_paddusb, uint8_t, b, sat((int64_t)a + b, 0, 255))
LANES(v_paddusw, uint16_t, w, sat((int64_t)a + b, 0, 65535))
LANES(v_psubusb, uint8_t, b, sat((int64_t)a - b, 0, 255))
LANES(v_psubusw, uint16_t, w, sat((int64_t)a - b, 0, 65535))
LANES(v_pcmpeqb, uint8_t, b, a == b ? 0xFF : 0)
LANES(v_pcmpeqw, uint16_t, w, a == b ? 0xFFFF : 0)
LANES(v_pcmpeqd, uint32_t, d, a == b ? 0xFFFFFFFFu : 0)
LANES(v_pcmpgtb, int8_t, sb, a > b ? -1 : 0)
LANES(v_pcmpgtw, int16_t, sw, a > b ? -1 : 0)
LANES(v_pcmpgtd, int32_t, sd, a > b ? -1 : 0)
LANES(v_pminub, uint8_t, b, a < b ? a : b)
LANES(v_pmaxub, uint8_t, b, a > b ? a : b)
LANES(v_pminsw, int16_t, sw, a < b ? a : b)
LANES(v_pmaxsw, int16_t, sw, a > b ? a : b)
LANES(v_pavgb, uint8_t, b, (a + b + 1) >> 1)
LANES(v_pavgw, uint16_t, w, (a + b + 1) >> 1)
LANES(v_pmullw, uint16_t, w, (uint32_t)a * b)
LANES(v_pmulhw, int16_t, sw, ((int32_t)a * b) >> 16)
LANES(v_pmulhuw, uint16_t, w, ((uint32_t)a * b) >> 16)
LANES(v_pand, uint64_t, q, a & b)
LANES(v_pandn, uint64_t, q, ~a & b)
LANES(v_por, uint64_t, q, a | b)
LANES(v_pxor, uint64_t, q, a ^ b)

static void v_pmuludq(union xmm_reg *d, const union xmm_reg *s, unsigned n)
{
	for (unsigned k = 0; k < n / 8; k++)
		d->q[k] = (uint64_t)d->d[2 * k] * s->d[2 * k];
}

static void v_pmaddwd(union xmm_reg *d, const union xmm_reg *s, unsigned n)
{
	union xmm_reg r;
	for (unsigned k = 0; k < n / 4; k++)
		r.d[k] = (uint32_t)((int32_t)d->sw[2 * k] * s->sw[2 * k] + (int32_t)d->sw[2 * k + 1] * s->sw[2 * k + 1]);
	memcpy(d, &r, n);
}

static void v_psadbw(union xmm_reg *d, const union xmm_reg *s, unsigned n)
{
	for (unsigned k = 0; k < n / 8; k++) {
		unsigned sum = 0;
		for (int j = 0; j < 8; j++)
			sum += (unsigned)abs((int)d->b[8 * k + j] - (int)s->b[8 * k + j]);
		d->q[k] = sum;
	}
}

static void v_packsswb(union xmm_reg *d, const union xmm_reg *s, unsigned n)
{
	union xmm_reg r;
	unsigned h = n / 2; /* words per source */
	for (unsigned k = 0; k < h; k++) {
		r.sb[k] = (int8_t)sat(d->sw[k], -128, 127);
		r.sb[h + k] = (int8_t)sat(s->sw[k], -128, 127);
	}
	memcpy(d, &r, n);
}

static void v_packuswb(union xmm_reg *d, const union xmm_reg *s, unsigned n)
{
	union xmm_reg r;
	unsigned h = n / 2;
	for (unsigned k = 0; k < h; k++) {
		r.b[k] = (uint8_t)sat(d->sw[k], 0, 255);
		r.b[h + k] = (uint8_t)sat(s->sw[k], 0, 255);
	}
	memcpy(d, &r, n);
}

static void v_packssdw(union xmm_reg *d, const union xmm_reg *s, unsigned n)
{
	union xmm_reg r;
	unsigned h = n / 4;
	for (unsigned k = 0; k < h; k++) {
		r.sw[k] = (int16_t)sat(d->sd[k], -32768, 32767);
		r.sw[h + k] = (int16_t)sat(s->sd[k], -32768, 32767);
	}
	memcpy(d, &r, n);
}

/* PUNPCKL/H: interleave the low (or high) halves, element size es. */
static void unpck(union xmm_reg *d, const union xmm_reg *s, unsigned n, unsigned es, bool high)
{
	union xmm_reg r;
	unsigned cnt = n / es / 2, base = high ? n / 2 : 0;
	for (unsigned k = 0; k < cnt; k++) {
		memcpy(&r.b[2 * k * es], &d->b[base + k * es], es);
		memcpy(&r.b[(2 * k + 1) * es], &s->b[base + k * es], es);
	}
	memcpy(d, &r, n);
}
static void v_punpcklbw(union xmm_reg *d, const union xmm_reg *s, unsigned n) { unpck(d, s, n, 1, false); }
static void v_punpcklwd(union xmm_reg *d, const union xmm_reg *s, unsigned n) { unpck(d, s, n, 2, false); }
static void v_punpckldq(union xmm_reg *d, const union xmm_reg *s, unsigned n) { unpck(d, s, n, 4, false); }
static void v_punpcklqdq(union xmm_reg *d, const union xmm_reg *s, unsigned n) { unpck(d, s, n, 8, false); }
static void v_punpckhbw(union xmm_reg *d, const union xmm_reg *s, unsigned n) { unpck(d, s, n, 1, true); }
static void v_punpckhwd(union xmm_reg *d, const union xmm_reg *s, unsigned n) { unpck(d, s, n, 2, true); }
static void v_punpckhdq(union xmm_reg *d, const union xmm_reg *s, unsigned n) { unpck(d, s, n, 4, true); }
static void v_punpckhqdq(union xmm_reg *d, const union xmm_reg *s, unsigned n) { unpck(d, s, n, 8, true); }

/* Shifts by a count (from a register/memory operand or an immediate). */
static void vshift(union xmm_reg *d, unsigned n, unsigned es, int kind, uint64_t count)
{
	/* kind: 0 = logical right, 1 = arithmetic right, 2 = left */
	unsigned bits = es * 8;
	for (unsigned k = 0; k < n / es; k++) {
		uint64_t v = 0;
		memcpy(&v, &d->b[k * es], es);
		if (kind == 1) {
			int64_t sv = (int64_t)(v << (64 - bits)) >> (64 - bits);
			v = (uint64_t)(sv >> (count >= bits ? bits - 1 : count));
		} else if (count >= bits) {
			v = 0;
		} else {
			v = kind == 0 ? v >> count : v << count;
		}
		memcpy(&d->b[k * es], &v, es);
	}
}

typedef void (*vec_fn)(union xmm_reg *d, const union xmm_reg *s, unsigned n);

/* Runs a packed-integer op: MMX without 66, XMM with 66. */
static void vec_int(struct emu_cpu *c, const struct insn *i, vec_fn f)
{
	if (i->pfx & PFX_66) {
		check_sse(c);
		union xmm_reg s;
		sse_src(c, i, &s, 16, true);
		f(&c->xmm[i->reg], &s, 16);
	} else {
		if (i->pfx & (PFX_F2 | PFX_F3))
			insn_ud(c, i);
		mmx_enter(c);
		union xmm_reg d = { .q = { mmx_get(c, i->reg & 7), 0 } }, s = { .q = { mmx_src(c, i), 0 } };
		f(&d, &s, 8);
		mmx_set(c, i->reg & 7, d.q[0]);
	}
}

static vec_fn int_ops[256];

static void op_vec_int(struct emu_cpu *c, const struct insn *i)
{
	vec_int(c, i, int_ops[i->op]);
}

static void op_vshift_reg(struct emu_cpu *c, const struct insn *i)
{
	/* D1-D3 PSRL, E1-E2 PSRA, F1-F3 PSLL */
	unsigned es = 1u << (i->op & 3);
	int kind = (i->op & 0xF0) == 0xD0 ? 0 : (i->op & 0xF0) == 0xE0 ? 1 : 2;
	if (i->pfx & PFX_66) {
		check_sse(c);
		union xmm_reg s;
		sse_src(c, i, &s, 16, true);
		vshift(&c->xmm[i->reg], 16, es, kind, s.q[0]);
	} else {
		mmx_enter(c);
		union xmm_reg d = { .q = { mmx_get(c, i->reg & 7), 0 } };
		vshift(&d, 8, es, kind, mmx_src(c, i));
		mmx_set(c, i->reg & 7, d.q[0]);
	}
}

static void op_vshift_imm(struct emu_cpu *c, const struct insn *i)
{
	/* 71: words, 72: dwords, 73: qwords (/3 /7: whole-register bytes) */
	unsigned r = i->reg & 7, count = (uint8_t)i->imm;
	unsigned es = i->op == 0x71 ? 2 : i->op == 0x72 ? 4 : 8;
	if (i->mod != 3)
		insn_ud(c, i);
	bool sse = i->pfx & PFX_66;
	union xmm_reg *d, tmp;
	if (sse) {
		check_sse(c);
		d = &c->xmm[i->rm];
	} else {
		mmx_enter(c);
		tmp.q[0] = mmx_get(c, i->rm & 7);
		tmp.q[1] = 0;
		d = &tmp;
	}
	unsigned n = sse ? 16 : 8;
	if (i->op == 0x73 && (r == 3 || r == 7)) {
		if (!sse)
			insn_ud(c, i);
		union xmm_reg res = { 0 };
		unsigned sh = count > 16 ? 16 : count;
		for (unsigned k = 0; k < 16; k++) {
			if (r == 3 && k + sh < 16)
				res.b[k] = d->b[k + sh];
			if (r == 7 && k >= sh)
				res.b[k] = d->b[k - sh];
		}
		*d = res;
	} else if (r == 2) {
		vshift(d, n, es, 0, count);
	} else if (r == 4 && es != 8) {
		vshift(d, n, es, 1, count);
	} else if (r == 6) {
		vshift(d, n, es, 2, count);
	} else {
		insn_ud(c, i);
	}
	if (!sse)
		mmx_set(c, i->rm & 7, tmp.q[0]);
}

static void op_emms(struct emu_cpu *c, const struct insn *i)
{
	check_mmx(c);
	/* "Each time an MMX instruction is executed, the TOS value is set to
	 * 000B" (SDM vol. 3A, 12.2): EMMS too (checked against the host) */
	c->ftw = 0xFFFF;
	c->ftop = 0;
}

static void op_pmovmskb(struct emu_cpu *c, const struct insn *i)
{
	if (i->mod != 3)
		insn_ud(c, i);
	unsigned m = 0;
	if (i->pfx & PFX_66) {
		check_sse(c);
		for (int k = 0; k < 16; k++)
			m |= (unsigned)(c->xmm[i->rm].b[k] >> 7) << k;
	} else {
		mmx_enter(c);
		uint64_t v = mmx_get(c, i->rm & 7);
		for (int k = 0; k < 8; k++)
			m |= (unsigned)((v >> (8 * k + 7)) & 1) << k;
	}
	reg_write(c, i->reg, c->code64 ? 8 : 4, 1, m);
}

static void op_pshuf(struct emu_cpu *c, const struct insn *i)
{
	uint8_t imm = (uint8_t)i->imm;
	if (!(i->pfx & (PFX_66 | PFX_F2 | PFX_F3))) { /* PSHUFW mm */
		mmx_enter(c);
		uint64_t s = mmx_src(c, i), r = 0;
		for (int k = 0; k < 4; k++)
			r |= ((s >> (16 * ((imm >> (2 * k)) & 3))) & 0xFFFF) << (16 * k);
		mmx_set(c, i->reg & 7, r);
		return;
	}
	check_sse(c);
	union xmm_reg s, r;
	sse_src(c, i, &s, 16, true);
	r = s;
	if (i->pfx & PFX_66) {
		for (int k = 0; k < 4; k++)
			r.d[k] = s.d[(imm >> (2 * k)) & 3];
	} else if (i->pfx & PFX_F3) { /* PSHUFHW */
		for (int k = 0; k < 4; k++)
			r.w[4 + k] = s.w[4 + ((imm >> (2 * k)) & 3)];
	} else { /* PSHUFLW */
		for (int k = 0; k < 4; k++)
			r.w[k] = s.w[(imm >> (2 * k)) & 3];
	}
	c->xmm[i->reg] = r;
}

static void op_movd_load(struct emu_cpu *c, const struct insn *i)
{
	/* 0F 6E: MOVD/MOVQ mm/xmm, r/m32/64 */
	unsigned size = (i->rex & 8) ? 8 : 4;
	uint64_t v = rm_read(c, i, size);
	if (i->pfx & PFX_66) {
		check_sse(c);
		c->xmm[i->reg].q[0] = v;
		c->xmm[i->reg].q[1] = 0;
	} else {
		mmx_enter(c);
		mmx_set(c, i->reg & 7, v);
	}
}

static void op_movd_store(struct emu_cpu *c, const struct insn *i)
{
	/* 0F 7E: MOVD/MOVQ r/m, mm/xmm; F3 0F 7E: MOVQ xmm, xmm/m64 */
	if (i->pfx & PFX_F3) {
		check_sse(c);
		union xmm_reg s;
		sse_src(c, i, &s, 8, false);
		c->xmm[i->reg].q[0] = s.q[0];
		c->xmm[i->reg].q[1] = 0;
		return;
	}
	unsigned size = (i->rex & 8) ? 8 : 4;
	uint64_t v;
	if (i->pfx & PFX_66) {
		check_sse(c);
		v = c->xmm[i->reg].q[0];
	} else {
		mmx_enter(c);
		v = mmx_get(c, i->reg & 7);
	}
	if (i->mod == 3)
		reg_write(c, i->rm, size == 8 ? 8 : 4, 1, v & size_mask(size));
	else
		mem_write(c, i->seg, insn_ea(c, i), size, v);
}

static void op_movq_dq(struct emu_cpu *c, const struct insn *i)
{
	/* 0F 6F / 7F: MOVQ mm; 66: MOVDQA; F3: MOVDQU */
	bool store = i->op == 0x7F;
	if (i->pfx & (PFX_66 | PFX_F3)) {
		check_sse(c);
		bool aligned = i->pfx & PFX_66;
		if (store) {
			sse_store(c, i, &c->xmm[i->reg], 16, aligned);
		} else {
			union xmm_reg s;
			sse_src(c, i, &s, 16, aligned);
			c->xmm[i->reg] = s;
		}
		return;
	}
	mmx_enter(c);
	if (store) {
		uint64_t v = mmx_get(c, i->reg & 7);
		if (i->mod == 3)
			mmx_set(c, i->rm & 7, v);
		else
			mem_write(c, i->seg, insn_ea(c, i), 8, v);
	} else {
		mmx_set(c, i->reg & 7, mmx_src(c, i));
	}
}

static void op_movq_d6(struct emu_cpu *c, const struct insn *i)
{
	check_sse(c);
	if (i->pfx & PFX_66) { /* MOVQ xmm/m64, xmm */
		if (i->mod == 3) {
			c->xmm[i->rm].q[0] = c->xmm[i->reg].q[0];
			c->xmm[i->rm].q[1] = 0;
		} else {
			mem_write(c, i->seg, insn_ea(c, i), 8, c->xmm[i->reg].q[0]);
		}
	} else if ((i->pfx & PFX_F3) && i->mod == 3) { /* MOVQ2DQ */
		mmx_enter(c);
		c->xmm[i->reg].q[0] = mmx_get(c, i->rm & 7);
		c->xmm[i->reg].q[1] = 0;
	} else if ((i->pfx & PFX_F2) && i->mod == 3) { /* MOVDQ2Q */
		mmx_enter(c);
		mmx_set(c, i->reg & 7, c->xmm[i->rm].q[0]);
	} else {
		insn_ud(c, i);
	}
}

static void op_pinsrw(struct emu_cpu *c, const struct insn *i)
{
	uint16_t v = (uint16_t)(i->mod == 3 ? c->r[i->rm] : mem_read(c, i->seg, insn_ea(c, i), 2));
	if (i->pfx & PFX_66) {
		check_sse(c);
		c->xmm[i->reg].w[i->imm & 7] = v;
	} else {
		mmx_enter(c);
		uint64_t m = mmx_get(c, i->reg & 7);
		unsigned sh = 16 * (i->imm & 3);
		m = (m & ~(0xFFFFULL << sh)) | ((uint64_t)v << sh);
		mmx_set(c, i->reg & 7, m);
	}
}

static void op_pextrw(struct emu_cpu *c, const struct insn *i)
{
	if (i->mod != 3)
		insn_ud(c, i);
	uint16_t v;
	if (i->pfx & PFX_66) {
		check_sse(c);
		v = c->xmm[i->rm].w[i->imm & 7];
	} else {
		mmx_enter(c);
		v = (uint16_t)(mmx_get(c, i->rm & 7) >> (16 * (i->imm & 3)));
	}
	reg_write(c, i->reg, 4, 1, v);
}

static void op_maskmov(struct emu_cpu *c, const struct insn *i)
{
	if (i->mod != 3)
		insn_ud(c, i);
	uint64_t base = c->r[R_RDI] & size_mask(i->asize);
	if (i->pfx & PFX_66) {
		check_sse(c);
		for (int k = 0; k < 16; k++)
			if (c->xmm[i->rm].b[k] & 0x80)
				mem_write(c, i->seg, base + k, 1, c->xmm[i->reg].b[k]);
	} else {
		mmx_enter(c);
		uint64_t m = mmx_get(c, i->rm & 7), v = mmx_get(c, i->reg & 7);
		for (int k = 0; k < 8; k++)
			if ((m >> (8 * k + 7)) & 1)
				mem_write(c, i->seg, base + k, 1, (v >> (8 * k)) & 0xFF);
	}
}

static void op_movnt(struct emu_cpu *c, const struct insn *i)
{
	/* 0F C3 MOVNTI m, r ; 0F E7 MOVNTQ / 66 MOVNTDQ */
	if (i->mod == 3)
		insn_ud(c, i);
	if (i->op == 0xC3) {
		mem_write(c, i->seg, insn_ea(c, i), i->osize == 8 ? 8 : 4, c->r[i->reg]);
	} else if (i->pfx & PFX_66) {
		check_sse(c);
		sse_store(c, i, &c->xmm[i->reg], 16, true);
	} else {
		mmx_enter(c);
		mem_write(c, i->seg, insn_ea(c, i), 8, mmx_get(c, i->reg & 7));
	}
}

void sse_fp_init(void);

void exec_sse_init(void)
{
	int_ops[0x60] = v_punpcklbw; int_ops[0x61] = v_punpcklwd; int_ops[0x62] = v_punpckldq;
	int_ops[0x63] = v_packsswb; int_ops[0x64] = v_pcmpgtb; int_ops[0x65] = v_pcmpgtw;
	int_ops[0x66] = v_pcmpgtd; int_ops[0x67] = v_packuswb; int_ops[0x68] = v_punpckhbw;
	int_ops[0x69] = v_punpckhwd; int_ops[0x6A] = v_punpckhdq; int_ops[0x6B] = v_packssdw;
	int_ops[0x6C] = v_punpcklqdq; int_ops[0x6D] = v_punpckhqdq;
	int_ops[0x74] = v_pcmpeqb; int_ops[0x75] = v_pcmpeqw; int_ops[0x76] = v_pcmpeqd;
	int_ops[0xD4] = v_paddq; int_ops[0xD5] = v_pmullw;
	int_ops[0xD8] = v_psubusb; int_ops[0xD9] = v_psubusw; int_ops[0xDA] = v_pminub;
	int_ops[0xDB] = v_pand; int_ops[0xDC] = v_paddusb; int_ops[0xDD] = v_paddusw;
	int_ops[0xDE] = v_pmaxub; int_ops[0xDF] = v_pandn;
	int_ops[0xE0] = v_pavgb; int_ops[0xE3] = v_pavgw; int_ops[0xE4] = v_pmulhuw;
	int_ops[0xE5] = v_pmulhw; int_ops[0xE8] = v_psubsb; int_ops[0xE9] = v_psubsw;
	int_ops[0xEA] = v_pminsw; int_ops[0xEB] = v_por; int_ops[0xEC] = v_paddsb;
	int_ops[0xED] = v_paddsw; int_ops[0xEE] = v_pmaxsw; int_ops[0xEF] = v_pxor;
	int_ops[0xF4] = v_pmuludq; int_ops[0xF5] = v_pmaddwd; int_ops[0xF6] = v_psadbw;
	int_ops[0xF8] = v_psubb; int_ops[0xF9] = v_psubw; int_ops[0xFA] = v_psubd;
	int_ops[0xFB] = v_psubq; int_ops[0xFC] = v_paddb; int_ops[0xFD] = v_paddw;
	int_ops[0xFE] = v_paddd;
	for (int k = 0; k < 256; k++)
		if (int_ops[k])
			op_table2[k] = op_vec_int;
	op_table2[0x6E] = op_movd_load;
	op_table2[0x7E] = op_movd_store;
	op_table2[0x6F] = op_table2[0x7F] = op_movq_dq;
	op_table2[0x70] = op_pshuf;
	op_table2[0x71] = op_table2[0x72] = op_table2[0x73] = op_vshift_imm;
	op_table2[0x77] = op_emms;
	op_table2[0xC3] = op_table2[0xE7] = op_movnt;
	op_table2[0xC4] = op_pinsrw;
	op_table2[0xC5] = op_pextrw;
	op_table2[0xD1] = op_table2[0xD2] = op_table2[0xD3] = op_vshift_reg;
	op_table2[0xE1] = op_table2[0xE2] = op_vshift_reg;
	op_table2[0xF1] = op_table2[0xF2] = op_table2[0xF3] = op_vshift_reg;
	op_table2[0xD6] = op_movq_d6;
	op_table2[0xD7] = op_pmovmskb;
	op_table2[0xF7] = op_maskmov;
	sse_fp_init();
	sse4_init();
}
