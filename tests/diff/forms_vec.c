/* SSE/MMX encodings the family generators of forms.c leave out, found by
 * the coverage gate (coverage.c): stores and the other direction of the
 * moves, memory forms of conversions and compares, and the prefixes the
 * opcode map gives no instruction for (F3/F2 on MMX operations, 66 on
 * EMMS ...): whatever the host does with them (#UD or the unprefixed
 * instruction), the emulator must do too. */
#include <stdio.h>
#include <string.h>

#include "accel/emu/cpu.h"
#include "forms.h"

struct vec_enc {
	uint8_t pfx, op;
	uint8_t size;    /* operand size for enc (8: REX.W) */
	int8_t grp;      /* ModRM.reg of a group opcode, else -1 */
	uint8_t fp;      /* lane type of the random data (0, 4, 8) */
	bool reg, mem;   /* which operand kinds to make */
	bool imm;        /* an imm8 follows */
};

static const struct vec_enc encs[] = {
	/* MOVUPS/UPD/SS/SD stores, MOVLP/MOVHP loads and stores, MOVAPS stores */
	{ 0, 0x11, 4, -1, 4, true, true, false }, { 0x66, 0x11, 4, -1, 8, true, true, false },
	{ 0xF3, 0x11, 4, -1, 4, true, true, false }, { 0xF2, 0x11, 4, -1, 8, true, true, false },
	{ 0, 0x12, 4, -1, 4, false, true, false }, { 0x66, 0x12, 4, -1, 8, false, true, false },
	{ 0, 0x13, 4, -1, 4, false, true, false }, { 0x66, 0x13, 4, -1, 8, false, true, false },
	{ 0, 0x16, 4, -1, 4, false, true, false }, { 0x66, 0x16, 4, -1, 8, false, true, false },
	{ 0, 0x17, 4, -1, 4, false, true, false }, { 0x66, 0x17, 4, -1, 8, false, true, false },
	{ 0, 0x29, 4, -1, 4, true, true, false }, { 0x66, 0x29, 4, -1, 8, true, true, false },
	{ 0, 0x2B, 4, -1, 4, false, true, false }, { 0x66, 0x2B, 4, -1, 8, false, true, false },
	/* UNPCK with F3/F2 */
	{ 0xF3, 0x14, 4, -1, 4, true, true, false }, { 0xF2, 0x14, 4, -1, 4, true, true, false },
	{ 0xF3, 0x15, 4, -1, 4, true, true, false }, { 0xF2, 0x15, 4, -1, 4, true, true, false },
	/* conversions and compares from memory */
	{ 0xF3, 0x2A, 4, -1, 0, false, true, false }, { 0xF2, 0x2A, 8, -1, 0, false, true, false },
	{ 0xF3, 0x2C, 4, -1, 4, false, true, false }, { 0xF2, 0x2C, 8, -1, 8, false, true, false },
	{ 0xF3, 0x2D, 8, -1, 4, false, true, false }, { 0xF2, 0x2D, 4, -1, 8, false, true, false },
	{ 0, 0x2E, 4, -1, 4, false, true, false }, { 0x66, 0x2E, 4, -1, 8, true, true, false },
	{ 0, 0x2F, 4, -1, 4, true, true, false }, { 0x66, 0x2F, 4, -1, 8, false, true, false },
	{ 0xF3, 0x50, 4, -1, 4, true, false, false }, { 0xF2, 0x50, 4, -1, 8, true, false, false },
	{ 0, 0x5B, 4, -1, 0, false, true, false }, { 0x66, 0x5B, 4, -1, 4, false, true, false },
	{ 0xF3, 0x5B, 4, -1, 4, false, true, false },
	{ 0x66, 0xE6, 4, -1, 8, false, true, false }, { 0xF3, 0xE6, 4, -1, 0, false, true, false },
	{ 0xF2, 0xE6, 4, -1, 8, false, true, false },
	/* integer moves in the directions and prefixes forms.c leaves out */
	{ 0, 0x6C, 4, -1, 0, true, true, false }, { 0, 0x6D, 4, -1, 0, true, true, false },
	{ 0xF3, 0x6E, 4, -1, 0, true, true, false }, { 0xF2, 0x6E, 4, -1, 0, true, true, false },
	{ 0xF2, 0x6F, 4, -1, 0, true, true, false }, { 0xF2, 0x7E, 4, -1, 0, true, true, false },
	{ 0x66, 0x7F, 4, -1, 0, true, true, false }, { 0xF3, 0x7F, 4, -1, 0, true, true, false },
	{ 0xF2, 0x7F, 4, -1, 0, true, true, false },
	{ 0, 0xC3, 4, -1, 0, false, true, false }, { 0, 0xC3, 8, -1, 0, false, true, false },
	{ 0x66, 0xC3, 4, -1, 0, false, true, false }, { 0xF3, 0xC3, 4, -1, 0, false, true, false },
	{ 0xF2, 0xC3, 4, -1, 0, false, true, false },
	{ 0x66, 0xE7, 4, -1, 0, false, true, false }, { 0xF3, 0xE7, 4, -1, 0, false, true, false },
	{ 0xF2, 0xE7, 4, -1, 0, false, true, false },
	/* MMX operations under F3/F2 (66 makes them SSE2: forms.c) */
	{ 0xF3, 0x77, 4, -1, 0, false, false, false }, { 0xF2, 0x77, 4, -1, 0, false, false, false },
	{ 0x66, 0x77, 4, -1, 0, false, false, false },
	{ 0xF3, 0xC4, 4, -1, 0, true, true, true }, { 0xF2, 0xC4, 4, -1, 0, true, true, true },
	{ 0xF3, 0xC5, 4, -1, 0, true, false, true }, { 0xF2, 0xC5, 4, -1, 0, true, false, true },
	{ 0xF3, 0xD7, 4, -1, 0, true, false, false }, { 0xF2, 0xD7, 4, -1, 0, true, false, false },
	{ 0x66, 0xF7, 4, -1, 0, true, false, false }, { 0xF3, 0xF7, 4, -1, 0, true, false, false },
	{ 0xF2, 0xF7, 4, -1, 0, true, false, false },
};

/* MMX/SSE2 shifts under F3/F2: by register and by immediate (groups). */
static const uint8_t shift_ops[] = { 0xD1, 0xD2, 0xD3, 0xE1, 0xE2, 0xF1, 0xF2, 0xF3 };

static void setup_rdi_data(uint64_t *gpr)
{
	/* MASKMOVQ/MASKMOVDQU store to [rdi] */
	gpr[R_RDI] = 0x10100000 + 0x400 + diff_rand() % 512;
}

static struct diff_form *vec_form(const struct vec_enc *e, bool mem)
{
	char o[8];
	snprintf(o, sizeof(o), "0F%02X", e->op);
	char g[8] = "";
	if (e->grp >= 0)
		snprintf(g, sizeof(g), "/%d ", e->grp);
	struct diff_form *f = newf("%02x 0f %02x %s%s%s", e->pfx, e->op, e->size == 8 ? "w " : "", g,
				   mem ? "[rbx]" : "reg");
	int reg = e->grp >= 0 ? e->grp : 3;
	enc(f, e->pfx, e->size, o, reg, 10, mem);
	if (e->op == 0x77) /* no ModRM */
		f->len--;
	if (e->imm)
		emit(f, (int)(diff_rand() & 0xFF));
	f->fp = e->fp;
	if (e->op == 0xF7)
		f->setup = setup_rdi_data;
	return f;
}

void gen_vec_more(void)
{
	for (unsigned k = 0; k < sizeof(encs) / sizeof(encs[0]); k++) {
		if (encs[k].reg || (!encs[k].reg && !encs[k].mem))
			vec_form(&encs[k], false);
		if (encs[k].mem)
			vec_form(&encs[k], true);
	}
	static const uint8_t pfxs[2] = { 0xF3, 0xF2 };
	for (int p = 0; p < 2; p++) {
		for (unsigned k = 0; k < sizeof(shift_ops); k++) {
			struct vec_enc e = { pfxs[p], shift_ops[k], 4, -1, 0, true, true, false };
			vec_form(&e, false);
			vec_form(&e, true);
		}
		for (int op = 0x71; op <= 0x73; op++)
			for (int g = 2; g <= 6; g += 2) {
				struct vec_enc e = { pfxs[p], (uint8_t)op, 4, (int8_t)g, 0, true, false, true };
				vec_form(&e, false);
			}
	}
}
