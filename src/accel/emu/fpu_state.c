/* x87/SSE state shared by FXSAVE/FXRSTOR, reset and the executors. */
#include "accel/emu/cpu.h"

void fpu_init(struct emu_cpu *c)
{
	c->fcw = 0x37F;
	c->fsw = 0;
	c->ftw = 0xFFFF; /* all empty */
	c->ftop = 0;
	c->fop = 0;
	c->fip = c->fdp = 0;
	memset(c->fpr, 0, sizeof(c->fpr));
}

/* #UD without OSFXSR or with CR0.EM; #NM with CR0.TS. */
void check_sse(struct emu_cpu *c)
{
	if ((c->cr0 & X86_CR0_EM) || !(c->cr4 & X86_CR4_OSFXSR))
		raise_ud(c);
	if (c->cr0 & X86_CR0_TS)
		raise_exc(c, EXC_NM);
}

static uint8_t abridged_tag(uint16_t ftw)
{
	uint8_t t = 0;
	for (int k = 0; k < 8; k++)
		if (((ftw >> (2 * k)) & 3) != 3)
			t |= (uint8_t)(1 << k);
	return t;
}

/* Full tag of a register from its contents (FXRSTOR rebuilds it). */
static unsigned tag_of(long double v)
{
	uint8_t b[10];
	memcpy(b, &v, 10);
	uint16_t se;
	uint64_t mant;
	memcpy(&mant, b, 8);
	memcpy(&se, b + 8, 2);
	unsigned exp = se & 0x7FFF;
	if (exp == 0x7FFF)
		return 2;
	if (exp == 0)
		return mant == 0 ? 1 : 2;
	return (mant >> 63) ? 0 : 2;
}

/* The full tag word FNSTENV/FNSAVE store: empty as tagged, the others
 * from the register contents (valid, zero, special). */
uint16_t fpu_full_tags(const struct emu_cpu *c)
{
	uint16_t t = 0;
	for (int p = 0; p < 8; p++) {
		unsigned v = ((c->ftw >> (2 * p)) & 3) == 3 ? 3 : tag_of(c->fpr[p]);
		t |= (uint16_t)(v << (2 * p));
	}
	return t;
}

void fxsave(struct emu_cpu *c, uint8_t *buf)
{
	uint16_t fsw = (uint16_t)((c->fsw & ~0x3800) | ((c->ftop & 7) << 11));
	memcpy(buf + 0, &c->fcw, 2);
	memcpy(buf + 2, &fsw, 2);
	buf[4] = abridged_tag(c->ftw);
	buf[5] = 0;
	memcpy(buf + 6, &c->fop, 2);
	memcpy(buf + 8, &c->fip, 8);
	memcpy(buf + 16, &c->fdp, 8);
	memcpy(buf + 24, &c->mxcsr, 4);
	uint32_t mask = 0xFFFF;
	memcpy(buf + 28, &mask, 4);
	for (int k = 0; k < 8; k++) {
		/* ST(k) order */
		long double v = c->fpr[(c->ftop + k) & 7];
		memset(buf + 32 + 16 * k, 0, 16);
		memcpy(buf + 32 + 16 * k, &v, 10);
	}
	for (int k = 0; k < 16; k++)
		memcpy(buf + 160 + 16 * k, &c->xmm[k], 16);
}

void fxrstor(struct emu_cpu *c, const uint8_t *buf)
{
	uint16_t fsw;
	memcpy(&c->fcw, buf + 0, 2);
	memcpy(&fsw, buf + 2, 2);
	c->ftop = (fsw >> 11) & 7;
	c->fsw = fsw & ~0x3800;
	uint8_t atag = buf[4];
	memcpy(&c->fop, buf + 6, 2);
	memcpy(&c->fip, buf + 8, 8);
	memcpy(&c->fdp, buf + 16, 8);
	memcpy(&c->mxcsr, buf + 24, 4);
	for (int k = 0; k < 8; k++) {
		long double v = 0;
		memcpy(&v, buf + 32 + 16 * k, 10);
		c->fpr[(c->ftop + k) & 7] = v;
	}
	c->ftw = 0;
	for (int p = 0; p < 8; p++) {
		unsigned t = (atag >> p) & 1 ? tag_of(c->fpr[p]) : 3;
		c->ftw |= (uint16_t)(t << (2 * p));
	}
	for (int k = 0; k < 16; k++)
		memcpy(&c->xmm[k], buf + 160 + 16 * k, 16);
}
