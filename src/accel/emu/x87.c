/* x87 FPU (D8-DF) on the host's 80-bit long double. Precision control is
 * not modelled (results are always extended precision, what Linux and
 * glibc select); rounding control is honoured by every operation (the
 * host x87 computes with the guest's RC); stack overflow/underflow and
 * the exception flags are not reported (no guest relies on them), nor is
 * C1's "rounded up" indication. Checked against the host by tests/diff. */
#include "accel/emu/alu.h"
#include "accel/emu/cpu.h"

#include <math.h>

#define FSW_C0 0x0100
#define FSW_C1 0x0200
#define FSW_C2 0x0400
#define FSW_C3 0x4000

static void fpu_check(struct emu_cpu *c)
{
	if (c->cr0 & (X86_CR0_EM | X86_CR0_TS))
		raise_exc(c, EXC_NM);
}

/* The long double arithmetic below runs on the host's x87: give it the
 * guest's rounding control (extended precision, exceptions masked). Only
 * x87 code computes in long double, and every x87 instruction comes
 * through here first, so the host control word needs no restoring. */
static void host_rounding(struct emu_cpu *c)
{
	uint16_t want = (uint16_t)(0x037F | (c->fcw & 0x0C00)), cur;
	__asm__ volatile("fnstcw %0" : "=m"(cur));
	if (cur != want)
		__asm__ volatile("fldcw %0" : : "m"(want));
}

/* Reserved FCW bits (13-15) read as 0, bit 6 as 1. */
static uint16_t fcw_load(uint64_t v)
{
	return (uint16_t)((v & 0x1F3F) | 0x40);
}

static long double *st(struct emu_cpu *c, unsigned i)
{
	return &c->fpr[(c->ftop + i) & 7];
}

static void set_tag(struct emu_cpu *c, unsigned phys, unsigned tag)
{
	c->ftw = (uint16_t)((c->ftw & ~(3u << (2 * phys))) | (tag << (2 * phys)));
}

static void fpush(struct emu_cpu *c, long double v)
{
	c->fsw &= ~FSW_C1; /* "C1: set to 1 if stack overflow occurred; otherwise, set to 0" */
	c->ftop = (c->ftop - 1) & 7;
	c->fpr[c->ftop] = v;
	set_tag(c, c->ftop, v == 0 ? 1 : 0);
}

static void fpop(struct emu_cpu *c)
{
	set_tag(c, c->ftop, 3);
	c->ftop = (c->ftop + 1) & 7;
}

static void set_cc(struct emu_cpu *c, unsigned bits)
{
	c->fsw = (uint16_t)((c->fsw & ~(FSW_C0 | FSW_C1 | FSW_C2 | FSW_C3)) | bits);
}

static long double round_fcw(struct emu_cpu *c, long double v)
{
	switch ((c->fcw >> 10) & 3) {
	case 0: return nearbyintl(v);
	case 1: return floorl(v);
	case 2: return ceill(v);
	default: return truncl(v);
	}
}

static int64_t to_int(struct emu_cpu *c, long double v, unsigned bytes, bool trunc)
{
	long double r = trunc ? truncl(v) : round_fcw(c, v);
	long double lim = bytes == 8 ? 9223372036854775808.0L : bytes == 4 ? 2147483648.0L : 32768.0L;
	if (isnan(r) || r >= lim || r < -lim) {
		c->fsw |= 1; /* invalid */
		return bytes == 8 ? INT64_MIN : bytes == 4 ? INT32_MIN : INT16_MIN;
	}
	return (int64_t)r;
}

static void compare(struct emu_cpu *c, long double a, long double b, bool to_eflags)
{
	if (to_eflags) {
		uint32_t f = flags_compute(c) & ~(FL_ZF | FL_PF | FL_CF | FL_OF | FL_SF | FL_AF);
		if (isnan(a) || isnan(b))
			f |= FL_ZF | FL_PF | FL_CF;
		else if (a < b)
			f |= FL_CF;
		else if (a == b)
			f |= FL_ZF;
		set_arith_flags(c, f); /* C0-C3 unchanged (the host keeps C1 too) */
		return;
	}
	if (isnan(a) || isnan(b))
		set_cc(c, FSW_C3 | FSW_C2 | FSW_C0);
	else if (a < b)
		set_cc(c, FSW_C0);
	else if (a == b)
		set_cc(c, FSW_C3);
	else
		set_cc(c, 0);
}

/* op: 0 add, 1 mul, 2 com, 3 comp, 4 sub, 5 subr, 6 div, 7 divr */
static long double arith(struct emu_cpu *c, unsigned op, long double a, long double b)
{
	switch (op) {
	case 0: return a + b;
	case 1: return a * b;
	case 4: return a - b;
	case 5: return b - a;
	case 6: return a / b;
	case 7: return b / a;
	default: return a;
	}
}

/* A NaN of `fbits` fraction bits widened without quieting it (the host's
 * conversion would quiet an SNaN, which changes the NaN an arithmetic
 * operation with a QNaN returns: "SNaN and QNaN: x87 FPU - QNaN source
 * operand", SDM table 4-7). */
static long double nan_to_ld(bool neg, uint64_t frac, unsigned fbits)
{
	uint8_t b[16] = { 0 };
	uint64_t mant = 1ULL << 63 | frac << (63 - fbits);
	uint16_t se = (uint16_t)(0x7FFF | (neg ? 0x8000 : 0));
	memcpy(b, &mant, 8);
	memcpy(b + 8, &se, 2);
	long double v;
	memcpy(&v, b, sizeof(v));
	return v;
}

static long double load_mem(struct emu_cpu *c, const struct insn *i, uint64_t ea, int kind)
{
	/* kind: 0 m32fp, 1 m32int, 2 m64fp, 3 m16int, 4 m64int, 5 m80 */
	switch (kind) {
	case 0: {
		uint32_t v = (uint32_t)mem_read(c, i->seg, ea, 4);
		if ((v & 0x7F800000) == 0x7F800000 && (v & 0x7FFFFF))
			return nan_to_ld(v >> 31, v & 0x7FFFFF, 23);
		float f;
		memcpy(&f, &v, 4);
		return f;
	}
	case 1: return (int32_t)mem_read(c, i->seg, ea, 4);
	case 2: {
		uint64_t v = mem_read(c, i->seg, ea, 8);
		if ((v & 0x7FF0000000000000ULL) == 0x7FF0000000000000ULL && (v << 12))
			return nan_to_ld(v >> 63, v & 0xFFFFFFFFFFFFFULL, 52);
		double d;
		memcpy(&d, &v, 8);
		return d;
	}
	case 3: return (int16_t)mem_read(c, i->seg, ea, 2);
	case 4: return (int64_t)mem_read(c, i->seg, ea, 8);
	default: {
		uint8_t b[16] = { 0 };
		mem_read_bytes(c, i->seg, ea, b, 10);
		long double v;
		memcpy(&v, b, sizeof(v) < 16 ? sizeof(v) : 16);
		return v;
	}
	}
}

/* FLD m32fp/m64fp: an SNaN is loaded quiet ("#IA: source operand is an
 * SNaN. Does not occur if the source operand is in double
 * extended-precision floating-point format") */
static long double quiet(long double v)
{
	return isnan(v) ? v + 0.0L : v;
}

static void store_env(struct emu_cpu *c, const struct insn *i, uint64_t ea)
{
	uint16_t fsw = (uint16_t)((c->fsw & ~0x3800) | ((c->ftop & 7) << 11));
	uint16_t ftw = fpu_full_tags(c);
	if (i->osize == 2) {
		mem_write(c, i->seg, ea, 2, c->fcw);
		mem_write(c, i->seg, ea + 2, 2, fsw);
		mem_write(c, i->seg, ea + 4, 2, ftw);
		mem_write(c, i->seg, ea + 6, 8, 0);
		return;
	}
	mem_write(c, i->seg, ea, 4, 0xFFFF0000u | c->fcw);
	mem_write(c, i->seg, ea + 4, 4, 0xFFFF0000u | fsw);
	mem_write(c, i->seg, ea + 8, 4, 0xFFFF0000u | ftw);
	mem_write(c, i->seg, ea + 12, 4, (uint32_t)c->fip);
	mem_write(c, i->seg, ea + 16, 4, 0);
	mem_write(c, i->seg, ea + 20, 4, (uint32_t)c->fdp);
	mem_write(c, i->seg, ea + 24, 4, 0);
}

static unsigned load_env(struct emu_cpu *c, const struct insn *i, uint64_t ea)
{
	unsigned w = i->osize == 2 ? 2 : 4;
	c->fcw = fcw_load(mem_read(c, i->seg, ea, 2));
	uint16_t fsw = (uint16_t)mem_read(c, i->seg, ea + w, 2);
	c->ftw = (uint16_t)mem_read(c, i->seg, ea + 2 * w, 2);
	c->ftop = (fsw >> 11) & 7;
	c->fsw = fsw & ~0x3800;
	return w == 2 ? 14 : 28;
}

static void store_m80(struct emu_cpu *c, const struct insn *i, uint64_t ea, long double v)
{
	uint8_t b[16] = { 0 };
	memcpy(b, &v, 10);
	mem_write_bytes(c, i->seg, ea, b, 10);
}

/* Exponent field and integer bit of an 80-bit register. */
static unsigned ld_exp(long double v)
{
	uint16_t se;
	memcpy(&se, (const uint8_t *)&v + 8, 2);
	return se & 0x7FFF;
}
static bool ld_jbit(long double v)
{
	return ((const uint8_t *)&v)[7] >> 7;
}

/* A pseudo-denormal (exponent 0, integer bit 1) as the hardware rewrites
 * it when it returns the operand: exponent 1, same value. */
static long double canon(long double v)
{
	if (ld_exp(v) == 0 && ld_jbit(v))
		((uint8_t *)&v)[8] |= 1;
	return v;
}

static void fxam(struct emu_cpu *c)
{
	unsigned tag = (c->ftw >> (2 * c->ftop)) & 3;
	long double v = *st(c, 0);
	unsigned s = signbit(v) ? FSW_C1 : 0;
	if (tag == 3)
		set_cc(c, FSW_C3 | FSW_C0 | s);
	else if (ld_exp(v) != 0 && !ld_jbit(v)) /* unnormal, pseudo-NaN/infinity */
		set_cc(c, s);
	else if (isnan(v))
		set_cc(c, FSW_C0 | s);
	else if (isinf(v))
		set_cc(c, FSW_C2 | FSW_C0 | s);
	else if (v == 0)
		set_cc(c, FSW_C3 | s);
	else if (ld_exp(v) == 0) /* denormal or pseudo-denormal */
		set_cc(c, FSW_C3 | FSW_C2 | s);
	else
		set_cc(c, FSW_C2 | s);
}

/* FPREM (truncating) and FPREM1 (round to nearest). "D <- exponent(ST(0))
 * - exponent(ST(1)); IF D < 64 THEN Q <- Integer(...(ST(0) / ST(1)));
 * ST(0) <- ST(0) - (ST(1) * Q); C2 <- 0; C0, C3, C1 <- LeastSignificantBits(Q)
 * ELSE C2 <- 1; N <- an implementation-dependent number between 32 and 63;
 * QQ <- Integer(TruncateTowardZero((ST(0) / ST(1)) / 2^(D - N)));
 * ST(0) <- ST(0) - (ST(1) * QQ * 2^(D - N))" (SDM, FPREM/FPREM1). */
#define FPREM_N 32
static void fprem(struct emu_cpu *c, bool ieee)
{
	long double a = canon(*st(c, 0)), b = *st(c, 1);
	*st(c, 0) = a;
	if (isnan(a) || isnan(b) || isinf(a) || b == 0) {
		/* invalid: no quotient; C1, C2 cleared, C0, C3 kept (as the host does) */
		*st(c, 0) = isnan(a) || isnan(b) ? a + b : -NAN;
		c->fsw &= ~(FSW_C1 | FSW_C2);
		return;
	}
	if (isinf(b) || a == 0) { /* ST(0) unchanged, Q = 0 */
		set_cc(c, 0);
		return;
	}
	int d = ilogbl(a) - ilogbl(b);
	if (d >= 64) {
		/* partial: the remainder of a by b * 2^(d - N), truncated */
		*st(c, 0) = fmodl(a, ldexpl(b, d - FPREM_N));
		set_cc(c, FSW_C2);
		return;
	}
	long double r;
	unsigned q;
	if (ieee) {
		int qi;
		r = remquol(a, b, &qi);
		q = (unsigned)(qi < 0 ? -qi : qi);
	} else {
		/* fmodl is exact; the quotient's low 3 bits from the remainder
		 * of |a| by 8|b|, with exact subtractions */
		long double ab = fabsl(b), t = fmodl(fabsl(a), 8 * ab);
		r = fmodl(a, b);
		q = 0;
		for (int k = 2; k >= 0; k--)
			if (t >= ldexpl(ab, k)) {
				t -= ldexpl(ab, k);
				q |= 1u << k;
			}
	}
	*st(c, 0) = r;
	set_cc(c, ((q & 1) ? FSW_C1 : 0) | ((q & 2) ? FSW_C3 : 0) | ((q & 4) ? FSW_C0 : 0));
}

/* FSCALE: ST(0) * 2^RoundTowardZero(ST(1)), with the special cases of
 * the SDM's table (0 * 2^inf and inf * 2^-inf are invalid). */
static long double fscale(long double a, long double b)
{
	if (isnan(a) || isnan(b))
		return a + b; /* the x87 NaN propagation */
	if (isinf(b)) {
		if ((b > 0 && a == 0) || (b < 0 && isinf(a)))
			return -NAN; /* the real indefinite */
		return b > 0 ? (a == 0 ? a : copysignl(INFINITY, a)) : (isinf(a) ? a : copysignl(0.0L, a));
	}
	long double n = truncl(b);
	if (n > 100000)
		n = 100000;
	if (n < -100000)
		n = -100000;
	return scalbnl(a, (int)n);
}

/* FSIN/FCOS/FSINCOS/FPTAN: "If the source operand is outside the
 * acceptable range [-2^63, +2^63], the C2 flag in the FPU status word is
 * set, and the value in register ST(0) remains unchanged." */
static bool trig_out_of_range(struct emu_cpu *c)
{
	long double v = *st(c, 0);
	if (isfinite(v) && fabsl(v) >= 9223372036854775808.0L) {
		set_cc(c, FSW_C2);
		return true;
	}
	return false;
}

/* FXTRACT: exponent to ST(1), significand to ST(0); zero gives -inf and
 * the zero ("the zero-divide exception"), inf gives +inf and the inf. */
static void fxtract(struct emu_cpu *c)
{
	long double v = *st(c, 0);
	c->fsw &= ~FSW_C1;
	if (isnan(v)) {
		fpush(c, v + 0.0L);
		*st(c, 1) = *st(c, 0);
		return;
	}
	if (v == 0) {
		*st(c, 0) = -INFINITY;
		fpush(c, v);
		return;
	}
	if (isinf(v)) {
		*st(c, 0) = INFINITY;
		fpush(c, v);
		return;
	}
	int e = ilogbl(v);
	*st(c, 0) = (long double)e;
	fpush(c, scalbnl(v, -e));
}

/* FBLD: 18 packed BCD digits and a sign bit. */
static long double bcd_load(struct emu_cpu *c, const struct insn *i, uint64_t ea)
{
	uint8_t b[10];
	mem_read_bytes(c, i->seg, ea, b, 10);
	uint64_t v = 0;
	for (int k = 8; k >= 0; k--)
		v = v * 100 + (b[k] >> 4) * 10 + (b[k] & 15);
	long double r = (long double)v;
	return (b[9] & 0x80) ? -r : r;
}

/* FBSTP: rounded by RC; out of range (or NaN/inf) stores the packed BCD
 * indefinite (invalid operation, masked). */
static void bcd_store(struct emu_cpu *c, const struct insn *i, uint64_t ea, long double v)
{
	uint8_t b[10] = { 0 };
	long double r = round_fcw(c, v);
	if (isnan(r) || fabsl(r) > 999999999999999999.0L) {
		b[9] = 0xFF;
		b[8] = 0xFF;
		b[7] = 0xC0;
	} else {
		uint64_t u = (uint64_t)fabsl(r);
		for (int k = 0; k < 9; k++) {
			b[k] = (uint8_t)(u % 10 | (u / 10 % 10) << 4);
			u /= 100;
		}
		b[9] = signbit(v) ? 0x80 : 0;
	}
	mem_write_bytes(c, i->seg, ea, b, 10);
}

/* FNINIT: control, status and tags reset; the registers keep their
 * contents (unlike a power-up reset). */
static void fninit(struct emu_cpu *c)
{
	long double keep[8];
	memcpy(keep, c->fpr, sizeof(keep));
	fpu_init(c);
	memcpy(c->fpr, keep, sizeof(keep));
}

/* The transcendentals come from the host's libm, accurate in round to
 * nearest only; the SDM bounds the hardware's error ("less than 1 ulp
 * when rounding to the nearest (even) and less than 1.5 ulps when
 * rounding in other modes"), so the libm result in nearest stays within
 * the bounds in every mode. */
static void host_nearest(void)
{
	uint16_t cw = 0x037F;
	__asm__ volatile("fldcw %0" : : "m"(cw));
}

static void d9_reg(struct emu_cpu *c, const struct insn *i)
{
	unsigned m = 0xC0 | ((i->reg & 7u) << 3) | (i->rm & 7u);
	unsigned r = m & 7;
	long double *s0 = st(c, 0);
	switch (m & 0xF8) {
	case 0xC0: fpush(c, *st(c, r)); return;
	case 0xC8: {
		long double t = *s0;
		*s0 = *st(c, r);
		*st(c, r) = t;
		/* exchange the tags too (both valid here or a stack fault) */
		unsigned p0 = c->ftop & 7, pi = (c->ftop + r) & 7, t0 = (c->ftw >> (2 * p0)) & 3;
		set_tag(c, p0, (c->ftw >> (2 * pi)) & 3);
		set_tag(c, pi, t0);
		c->fsw &= ~FSW_C1;
		return;
	}
	default: break;
	}
	if (m == 0xF0 || m == 0xF1 || m == 0xF2 || m == 0xF3 || m == 0xF9 || m == 0xFB || m == 0xFE || m == 0xFF) {
		host_nearest();
		if (m != 0xF1 && m != 0xF3 && m != 0xF9) /* one operand, rewritten in place */
			*s0 = canon(*s0);
	}
	switch (m) {
	case 0xD0: return;
	case 0xE0: *s0 = -*s0; c->fsw &= ~FSW_C1; return;
	case 0xE1: *s0 = fabsl(*s0); c->fsw &= ~FSW_C1; return;
	case 0xE4: compare(c, *s0, 0, false); return;
	case 0xE5: fxam(c); return;
	case 0xE8: fpush(c, 1.0L); return;
	case 0xE9: fpush(c, log2l(10.0L)); return;
	case 0xEA: fpush(c, 1.0L / logl(2.0L)); return;
	case 0xEB: fpush(c, 3.14159265358979323846264338327950288L); return;
	case 0xEC: fpush(c, log10l(2.0L)); return;
	case 0xED: fpush(c, logl(2.0L)); return;
	case 0xEE: fpush(c, 0.0L); return;
	case 0xF0: /* 2^x - 1 = expm1(x ln 2), without the cancellation near 0 */
		*s0 = isnan(*s0) ? *s0 + 0.0L : expm1l(*s0 * 0.693147180559945309417232121458176568L);
		return;
	case 0xF1: { long double v = *st(c, 1) * log2l(*s0); fpop(c); *st(c, 0) = v; return; }
	case 0xF2:
		if (trig_out_of_range(c))
			return;
		if (!isfinite(*s0)) { /* NaN or invalid: the NaN is pushed, not 1.0 */
			long double v = isnan(*s0) ? *s0 + 0.0L : -NAN;
			*s0 = v;
			fpush(c, v);
			c->fsw &= ~FSW_C2;
			return;
		}
		*s0 = tanl(*s0);
		fpush(c, 1.0L);
		set_cc(c, 0);
		return;
	case 0xF3: { long double v = atan2l(*st(c, 1), *s0); fpop(c); *st(c, 0) = v; return; }
	case 0xF4: fxtract(c); return;
	case 0xF5: fprem(c, true); return;
	case 0xF8: fprem(c, false); return;
	case 0xF6: c->ftop = (c->ftop - 1) & 7; c->fsw &= ~FSW_C1; return;
	case 0xF7: c->ftop = (c->ftop + 1) & 7; c->fsw &= ~FSW_C1; return;
	case 0xF9: { /* y * log2(x + 1), accurate for small x */
		long double x = *s0, y = *st(c, 1);
		long double v = isnan(x) || isnan(y) ? x + y : y * (log1pl(x) * 1.44269504088896340735992468100189214L);
		fpop(c);
		*st(c, 0) = v;
		return;
	}
	case 0xFA: *s0 = sqrtl(*s0); return;
	case 0xFB: {
		if (trig_out_of_range(c))
			return;
		long double v = *s0;
		*s0 = sinl(v);
		fpush(c, cosl(v));
		set_cc(c, 0);
		return;
	}
	case 0xFC: *s0 = round_fcw(c, *s0); return;
	case 0xFD: *s0 = fscale(*s0, *st(c, 1)); return;
	case 0xFE:
		if (!trig_out_of_range(c)) {
			*s0 = sinl(*s0);
			set_cc(c, 0);
		}
		return;
	case 0xFF:
		if (!trig_out_of_range(c)) {
			*s0 = cosl(*s0);
			set_cc(c, 0);
		}
		return;
	default: insn_ud(c, i);
	}
}

static void op_x87(struct emu_cpu *c, const struct insn *i)
{
	fpu_check(c);
	host_rounding(c);
	unsigned op = i->op, r = i->reg & 7, rm = i->rm & 7;
	if (i->mod != 3) {
		uint64_t ea = insn_ea(c, i);
		static const int arith_kind[8] = { 0, -1, 1, -1, 2, -1, 3, -1 }; /* D8 DA DC DE */
		if (!(op & 1)) {
			long double v = load_mem(c, i, ea, arith_kind[op - 0xD8]);
			long double *s0 = st(c, 0);
			if (r == 2 || r == 3) {
				compare(c, *s0, v, false);
				if (r == 3)
					fpop(c);
			} else {
				*s0 = arith(c, r, *s0, v);
			}
			return;
		}
		switch (op) {
		case 0xD9:
			switch (r) {
			case 0: fpush(c, quiet(load_mem(c, i, ea, 0))); return;
			case 2: case 3: {
				float f = (float)*st(c, 0);
				uint32_t v;
				memcpy(&v, &f, 4);
				mem_write(c, i->seg, ea, 4, v);
				if (r == 3)
					fpop(c);
				return;
			}
			case 4: load_env(c, i, ea); return;
			case 5: c->fcw = fcw_load(mem_read(c, i->seg, ea, 2)); return;
			case 6: store_env(c, i, ea); c->fcw |= 0x3F; return;
			case 7: mem_write(c, i->seg, ea, 2, c->fcw); return;
			default: insn_ud(c, i);
			}
		case 0xDB:
			switch (r) {
			case 0: fpush(c, load_mem(c, i, ea, 1)); return;
			case 1: case 2: case 3:
				mem_write(c, i->seg, ea, 4, (uint64_t)to_int(c, *st(c, 0), 4, r == 1));
				if (r != 2)
					fpop(c);
				return;
			case 5: fpush(c, load_mem(c, i, ea, 5)); return;
			case 7: /* exact: C1 (rounded up) is 0 */
				store_m80(c, i, ea, *st(c, 0));
				c->fsw &= (uint16_t)~0x0200;
				fpop(c);
				return;
			default: insn_ud(c, i);
			}
		case 0xDD:
			switch (r) {
			case 0: fpush(c, quiet(load_mem(c, i, ea, 2))); return;
			case 1:
				mem_write(c, i->seg, ea, 8, (uint64_t)to_int(c, *st(c, 0), 8, true));
				fpop(c);
				return;
			case 2: case 3: {
				double d = (double)*st(c, 0);
				uint64_t v;
				memcpy(&v, &d, 8);
				mem_write(c, i->seg, ea, 8, v);
				if (r == 3)
					fpop(c);
				return;
			}
			case 4: {
				unsigned off = load_env(c, i, ea);
				for (int k = 0; k < 8; k++)
					*st(c, k) = load_mem(c, i, ea + off + 10 * k, 5);
				return;
			}
			case 6: {
				store_env(c, i, ea);
				unsigned off = i->osize == 2 ? 14 : 28;
				for (int k = 0; k < 8; k++)
					store_m80(c, i, ea + off + 10 * k, *st(c, k));
				fninit(c);
				return;
			}
			case 7: mem_write(c, i->seg, ea, 2, (c->fsw & ~0x3800) | ((c->ftop & 7) << 11)); return;
			default: insn_ud(c, i);
			}
		default: /* DF */
			switch (r) {
			case 0: fpush(c, load_mem(c, i, ea, 3)); return;
			case 1: case 2: case 3:
				mem_write(c, i->seg, ea, 2, (uint64_t)to_int(c, *st(c, 0), 2, r == 1));
				if (r != 2)
					fpop(c);
				return;
			case 4: fpush(c, bcd_load(c, i, ea)); return;
			case 5: fpush(c, load_mem(c, i, ea, 4)); return;
			case 6: bcd_store(c, i, ea, *st(c, 0)); fpop(c); return;
			case 7:
				mem_write(c, i->seg, ea, 8, (uint64_t)to_int(c, *st(c, 0), 8, false));
				fpop(c);
				return;
			default: insn_ud(c, i);
			}
		}
	}
	long double *s0 = st(c, 0), *si = st(c, rm);
	switch (op) {
	case 0xD8:
		if (r == 2 || r == 3) {
			compare(c, *s0, *si, false);
			if (r == 3)
				fpop(c);
		} else {
			*s0 = arith(c, r, *s0, *si);
		}
		return;
	case 0xD9:
		d9_reg(c, i);
		return;
	case 0xDA:
		if (r < 4) { /* FCMOVB/E/BE/U */
			static const uint8_t cc[4] = { 2, 4, 6, 10 };
			if (cond_true(c, cc[r]))
				*s0 = *si;
			return;
		}
		if (r == 5 && rm == 1) { /* FUCOMPP */
			compare(c, *s0, *st(c, 1), false);
			fpop(c);
			fpop(c);
			return;
		}
		insn_ud(c, i);
	case 0xDB:
		if (r < 4) { /* FCMOVNB/NE/NBE/NU */
			static const uint8_t cc[4] = { 3, 5, 7, 11 };
			if (cond_true(c, cc[r]))
				*s0 = *si;
			return;
		}
		if (r == 4 && rm == 2) { c->fsw &= 0x7F00; return; }      /* FNCLEX */
		if (r == 4 && rm == 3) { fninit(c); return; }             /* FNINIT */
		if (r == 5 || r == 6) { compare(c, *s0, *si, true); return; } /* FUCOMI/FCOMI */
		if (r == 4 && (rm < 2 || rm == 4)) return;                  /* FENI/FDISI/FSETPM nops; DB E5-E7 #UD */
		insn_ud(c, i);
	case 0xDC:
		if (r == 2 || r == 3) {
			compare(c, *s0, *si, false);
			if (r == 3)
				fpop(c);
			return;
		}
		/* ST(i) = ST(i) op ST(0), with SUB/SUBR and DIV/DIVR swapped */
		*si = arith(c, r ^ ((r >= 4) ? 1 : 0), *si, *s0);
		return;
	case 0xDD:
		switch (r) {
		case 0: set_tag(c, (c->ftop + rm) & 7, 3); return; /* FFREE */
		case 2: case 3: /* FST/FSTP ST(i): "C1: set to 0" (no rounding) */
			*si = *s0;
			set_tag(c, (c->ftop + rm) & 7, 0);
			c->fsw &= ~FSW_C1;
			if (r == 3)
				fpop(c);
			return;
		case 4: compare(c, *s0, *si, false); return;
		case 5: compare(c, *s0, *si, false); fpop(c); return;
		default: insn_ud(c, i);
		}
	case 0xDE:
		if (r == 3 && rm == 1) { /* FCOMPP */
			compare(c, *s0, *st(c, 1), false);
			fpop(c);
			fpop(c);
			return;
		}
		if (r == 2 || r == 3)
			insn_ud(c, i);
		*si = arith(c, r ^ ((r >= 4) ? 1 : 0), *si, *s0);
		fpop(c);
		return;
	default: /* DF */
		if (r == 4 && rm == 0) { /* FNSTSW AX */
			reg_write(c, R_RAX, 2, 1, (c->fsw & ~0x3800) | ((c->ftop & 7) << 11));
			return;
		}
		if (r == 5 || r == 6) { /* FUCOMIP / FCOMIP */
			compare(c, *s0, *si, true);
			fpop(c);
			return;
		}
		if (r == 0) { set_tag(c, (c->ftop + rm) & 7, 3); fpop(c); return; } /* FFREEP */
		insn_ud(c, i);
	}
}

void exec_x87_init(void)
{
	for (int k = 0xD8; k <= 0xDF; k++)
		op_table1[k] = op_x87;
}
