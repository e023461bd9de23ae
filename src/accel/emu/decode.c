/* x86 instruction decoder: prefixes, REX, the one-byte, 0F, 0F38 and 0F3A
 * opcode maps, ModRM/SIB, displacement and immediates. The result is a
 * compact record with the handler already chosen, cached per physical
 * address by the CPU loop so an instruction is decoded once and run many
 * times. */
#include "accel/emu/cpu.h"
#include "accel/emu/emu_priv.h"

#include <stddef.h>

bool emu_no_fast_paths; /* the differential tests run both ways */

enum imm_kind { I_NONE, I_B, I_W, I_Z, I_V, I_A, I_WB, I_P };

/* Per-opcode properties of the one-byte map and the 0F map. */
struct op_info {
	uint8_t modrm : 1;
	uint8_t imm : 3;
	uint8_t def64 : 1;   /* operand size defaults to 64 in 64-bit mode */
};

static struct op_info info1[256], info2[256];

/* Mandatory-prefix classes of the 0F map's SSE/MMX opcodes (SDM vol. 2,
 * table A-3): the prefixes with an instruction; any other is #UD (the
 * hardware does not fall back to the unprefixed instruction). 0: the
 * opcode does not select by prefix. */
enum { VP_NONE = 1, VP_66 = 2, VP_F3 = 4, VP_F2 = 8, VP_ALL = 15 };
static uint8_t vec_pfx[256];

static void set_range(struct op_info *t, int lo, int hi, int modrm, int imm)
{
	for (int k = lo; k <= hi; k++) {
		if (modrm >= 0)
			t[k].modrm = modrm;
		if (imm >= 0)
			t[k].imm = imm;
	}
}

static void decode_tables_init(void)
{
	/* one-byte map */
	for (int k = 0; k < 0x40; k += 8) {
		set_range(info1, k, k + 3, 1, I_NONE);
		set_range(info1, k + 4, k + 4, 0, I_B);
		set_range(info1, k + 5, k + 5, 0, I_Z);
	}
	set_range(info1, 0x62, 0x63, 1, -1);
	set_range(info1, 0x68, 0x68, 0, I_Z);
	set_range(info1, 0x69, 0x69, 1, I_Z);
	set_range(info1, 0x6A, 0x6A, 0, I_B);
	set_range(info1, 0x6B, 0x6B, 1, I_B);
	set_range(info1, 0x70, 0x7F, 0, I_B);
	set_range(info1, 0x80, 0x8F, 1, I_NONE);
	set_range(info1, 0x80, 0x80, 1, I_B);
	set_range(info1, 0x81, 0x81, 1, I_Z);
	set_range(info1, 0x82, 0x83, 1, I_B);
	set_range(info1, 0x9A, 0x9A, 0, I_P);
	set_range(info1, 0xA0, 0xA3, 0, I_A);
	set_range(info1, 0xA8, 0xA8, 0, I_B);
	set_range(info1, 0xA9, 0xA9, 0, I_Z);
	set_range(info1, 0xB0, 0xB7, 0, I_B);
	set_range(info1, 0xB8, 0xBF, 0, I_V);
	set_range(info1, 0xC0, 0xC1, 1, I_B);
	set_range(info1, 0xC2, 0xC2, 0, I_W);
	set_range(info1, 0xC4, 0xC5, 1, I_NONE);
	set_range(info1, 0xC6, 0xC6, 1, I_B);
	set_range(info1, 0xC7, 0xC7, 1, I_Z);
	set_range(info1, 0xC8, 0xC8, 0, I_WB);
	set_range(info1, 0xCA, 0xCA, 0, I_W);
	set_range(info1, 0xCD, 0xCD, 0, I_B);
	set_range(info1, 0xD0, 0xD3, 1, I_NONE);
	set_range(info1, 0xD4, 0xD5, 0, I_B);
	set_range(info1, 0xD8, 0xDF, 1, I_NONE);
	set_range(info1, 0xE0, 0xE7, 0, I_B);
	set_range(info1, 0xE8, 0xE9, 0, I_Z);
	set_range(info1, 0xEA, 0xEA, 0, I_P);
	set_range(info1, 0xEB, 0xEB, 0, I_B);
	set_range(info1, 0xF6, 0xF7, 1, I_NONE); /* TEST's immediate: see below */
	set_range(info1, 0xFE, 0xFF, 1, I_NONE);
	static const uint8_t def64_1[] = { 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57,
					   0x58, 0x59, 0x5A, 0x5B, 0x5C, 0x5D, 0x5E, 0x5F,
					   0x68, 0x6A, 0x8F, 0x9C, 0x9D, 0xC8, 0xC9 };
	for (unsigned k = 0; k < sizeof(def64_1); k++)
		info1[def64_1[k]].def64 = 1;

	/* 0F map */
	set_range(info2, 0x00, 0x03, 1, I_NONE);
	set_range(info2, 0x0D, 0x0D, 1, I_NONE);
	set_range(info2, 0x10, 0x1F, 1, I_NONE);
	set_range(info2, 0x20, 0x23, 1, I_NONE);
	set_range(info2, 0x28, 0x2F, 1, I_NONE);
	set_range(info2, 0x40, 0x4F, 1, I_NONE);
	set_range(info2, 0x50, 0x7F, 1, I_NONE);
	set_range(info2, 0x70, 0x73, 1, I_B);
	set_range(info2, 0x77, 0x77, 0, I_NONE);
	set_range(info2, 0x80, 0x8F, 0, I_Z);
	set_range(info2, 0x90, 0x9F, 1, I_NONE);
	set_range(info2, 0xA3, 0xA5, 1, I_NONE);
	set_range(info2, 0xA4, 0xA4, 1, I_B);
	set_range(info2, 0xAB, 0xAF, 1, I_NONE);
	set_range(info2, 0xAC, 0xAC, 1, I_B);
	set_range(info2, 0xB0, 0xBF, 1, I_NONE);
	set_range(info2, 0xBA, 0xBA, 1, I_B);
	set_range(info2, 0xC0, 0xC7, 1, I_NONE);
	set_range(info2, 0xC2, 0xC2, 1, I_B);
	set_range(info2, 0xC4, 0xC6, 1, I_B);
	set_range(info2, 0xD0, 0xFF, 1, I_NONE);
	info2[0xA0].def64 = info2[0xA1].def64 = info2[0xA8].def64 = info2[0xA9].def64 = 1;

	static const struct { uint8_t lo, hi, pfx; } vp[] = {
		{ 0x10, 0x12, VP_ALL }, { 0x13, 0x15, VP_NONE | VP_66 }, { 0x16, 0x16, VP_NONE | VP_66 | VP_F3 },
		{ 0x17, 0x17, VP_NONE | VP_66 }, { 0x28, 0x29, VP_NONE | VP_66 }, { 0x2A, 0x2A, VP_ALL },
		{ 0x2B, 0x2B, VP_NONE | VP_66 }, { 0x2C, 0x2D, VP_ALL }, { 0x2E, 0x2F, VP_NONE | VP_66 },
		{ 0x50, 0x50, VP_NONE | VP_66 }, { 0x51, 0x51, VP_ALL }, { 0x52, 0x53, VP_NONE | VP_F3 },
		{ 0x54, 0x57, VP_NONE | VP_66 }, { 0x58, 0x5A, VP_ALL }, { 0x5B, 0x5B, VP_NONE | VP_66 | VP_F3 },
		{ 0x5C, 0x5F, VP_ALL }, { 0x60, 0x6B, VP_NONE | VP_66 }, { 0x6C, 0x6D, VP_66 },
		{ 0x6E, 0x6E, VP_NONE | VP_66 }, { 0x6F, 0x6F, VP_NONE | VP_66 | VP_F3 }, { 0x70, 0x70, VP_ALL },
		{ 0x71, 0x76, VP_NONE | VP_66 }, { 0x77, 0x77, VP_NONE }, { 0x7C, 0x7D, VP_66 | VP_F2 },
		{ 0x7E, 0x7F, VP_NONE | VP_66 | VP_F3 }, { 0xC2, 0xC2, VP_ALL }, { 0xC3, 0xC3, VP_NONE },
		{ 0xC4, 0xC6, VP_NONE | VP_66 }, { 0xD0, 0xD0, VP_66 | VP_F2 }, { 0xD1, 0xD5, VP_NONE | VP_66 },
		{ 0xD6, 0xD6, VP_66 | VP_F3 | VP_F2 }, { 0xD7, 0xE5, VP_NONE | VP_66 },
		{ 0xE6, 0xE6, VP_66 | VP_F3 | VP_F2 }, { 0xE7, 0xEF, VP_NONE | VP_66 }, { 0xF0, 0xF0, VP_F2 },
		{ 0xF1, 0xFE, VP_NONE | VP_66 },
	};
	for (unsigned k = 0; k < sizeof(vp) / sizeof(vp[0]); k++)
		for (int op = vp[k].lo; op <= vp[k].hi; op++)
			vec_pfx[op] = vp[k].pfx;
}

/* The mandatory-prefix class of a 0F-map instruction: F2/F3 (the last
 * one) win over 66. */
static unsigned vec_class(const struct insn *i)
{
	return (i->pfx & PFX_F2) ? VP_F2 : (i->pfx & PFX_F3) ? VP_F3 : (i->pfx & PFX_66) ? VP_66 : VP_NONE;
}

/* Byte fetcher over the instruction stream (lazy across pages, so a
 * short instruction at the end of a page does not touch the next). */
struct fetcher {
	struct emu_cpu *c;
	uint64_t lin;
	unsigned pos;
	struct insn *i;
	bool ahead;   /* decoding ahead of execution: never fault, never leave the page */
	bool bail;    /* set instead when ahead: the instruction is not decoded */
};

static uint8_t next_byte(struct fetcher *f)
{
	struct emu_cpu *c = f->c;
	uint64_t lin = lin_mask(c, f->lin + f->pos);
	if (f->ahead && (f->pos >= 15 || (lin >> 12) != (lin_mask(c, f->lin) >> 12))) {
		/* a NOP ends any prefix loop; the caller drops the record */
		f->bail = true;
		f->pos++;
		return 0x90;
	}
	if (f->pos >= 15)
		raise_gp0(c);
	/* Through the fetch TLB: a miss walks the page tables once per page,
	 * not once per byte. */
	const struct tlb_entry *e = &c->tlb_x[cpl_user(c)][(lin >> 12) & (TLB_SIZE - 1)];
	uint8_t b;
	if (e->tag == ((lin & ~0xFFFULL) | c->tlb_gen))
		b = *(const uint8_t *)(uintptr_t)(lin + e->addend);
	else
		b = (uint8_t)mem_read_slow(c, lin, 1, ACC_EXEC);
	if (f->pos < sizeof(f->i->bytes))
		f->i->bytes[f->pos] = b;
	f->pos++;
	return b;
}

static uint64_t next_imm(struct fetcher *f, unsigned n)
{
	uint64_t v = 0;
	for (unsigned k = 0; k < n; k++)
		v |= (uint64_t)next_byte(f) << (8 * k);
	return v;
}

static int64_t sext(uint64_t v, unsigned bytes)
{
	unsigned sh = 64 - bytes * 8;
	return (int64_t)(v << sh) >> sh;
}

static void decode_modrm(struct fetcher *f, struct insn *i, uint8_t rex)
{
	uint8_t m = next_byte(f);
	i->mod = m >> 6;
	i->reg = ((m >> 3) & 7) | ((rex & 4) << 1);
	unsigned rm = m & 7;
	i->base = i->index = 0xFF;
	i->scale = 0;
	i->disp = 0;
	if (i->mod == 3) {
		i->rm = rm | ((rex & 1) << 3);
		return;
	}
	i->rm = rm;
	int def_seg = SEG_DS;
	if (i->asize == 2) {
		static const uint8_t b16[8] = { R_RBX, R_RBX, R_RBP, R_RBP, R_RSI, R_RDI, R_RBP, R_RBX };
		static const uint8_t x16[8] = { R_RSI, R_RDI, R_RSI, R_RDI, 0xFF, 0xFF, 0xFF, 0xFF };
		if (i->mod == 0 && rm == 6) {
			i->disp = (int64_t)(uint16_t)next_imm(f, 2);
		} else {
			i->base = b16[rm];
			i->index = x16[rm];
			if (rm == 2 || rm == 3 || rm == 6)
				def_seg = SEG_SS;
			if (i->mod == 1)
				i->disp = sext(next_byte(f), 1);
			else if (i->mod == 2)
				i->disp = sext(next_imm(f, 2), 2);
		}
	} else {
		if (rm == 4) {
			uint8_t sib = next_byte(f);
			unsigned base = sib & 7, index = ((sib >> 3) & 7) | ((rex & 2) << 2);
			i->scale = sib >> 6;
			if (index != 4)
				i->index = index;
			if (base == 5 && i->mod == 0) {
				i->disp = sext(next_imm(f, 4), 4);
			} else {
				i->base = base | ((rex & 1) << 3);
				if (base == 4 || base == 5)
					def_seg = SEG_SS;
			}
		} else if (rm == 5 && i->mod == 0) {
			i->disp = sext(next_imm(f, 4), 4);
			if (f->c->code64)
				i->rip_rel = true;
		} else {
			i->base = rm | ((rex & 1) << 3);
			if (rm == 5)
				def_seg = SEG_SS;
		}
		if (i->mod == 1)
			i->disp = sext(next_byte(f), 1);
		else if (i->mod == 2)
			i->disp = sext(next_imm(f, 4), 4);
	}
	if (!i->seg_override)
		i->seg = def_seg;
}

/* LOCK: "#UD if the LOCK prefix is used with an instruction not listed
 * (ADD, ADC, AND, BTC, BTR, BTS, CMPXCHG, CMPXCHG8B/16B, DEC, INC, NEG,
 * NOT, OR, SBB, SUB, XOR, XADD, XCHG) or if the destination is not a
 * memory operand" (SDM vol. 2, LOCK). */
static bool lock_allowed(const struct insn *i)
{
	if (!i->has_modrm || i->mod == 3)
		return false;
	unsigned op = i->op, r = i->reg & 7;
	if (i->map == 0)
		return (op < 0x38 && (op & 7) < 2) || (op >= 0x80 && op <= 0x83 && r != 7) || op == 0x86 ||
		       op == 0x87 || ((op == 0xF6 || op == 0xF7) && (r == 2 || r == 3)) ||
		       ((op == 0xFE || op == 0xFF) && r < 2);
	if (i->map == 1)
		return op == 0xAB || op == 0xB3 || op == 0xBB || (op == 0xBA && r >= 5) || op == 0xB0 ||
		       op == 0xB1 || op == 0xC0 || op == 0xC1 || (op == 0xC7 && r == 1);
	return false;
}

static bool decode(struct emu_cpu *c, struct insn *i, bool ahead);

void decode_insn(struct emu_cpu *c, struct insn *i)
{
	decode(c, i, false);
}

bool decode_insn_ahead(struct emu_cpu *c, struct insn *i)
{
	return decode(c, i, true);
}

static bool decode(struct emu_cpu *c, struct insn *i, bool ahead)
{
	static bool tables_ready;
	if (!__atomic_load_n(&tables_ready, __ATOMIC_ACQUIRE)) {
		decode_tables_init();
		__atomic_store_n(&tables_ready, true, __ATOMIC_RELEASE);
	}
	struct fetcher f = { .c = c, .lin = seg_lin(c, SEG_CS, c->rip), .i = i, .ahead = ahead };
	memset(i, 0, offsetof(struct insn, bytes));
	bool p66 = false, p67 = false;
	uint8_t rex = 0;
	uint8_t b;
	i->seg = SEG_DS;
	for (;;) {
		b = next_byte(&f);
		switch (b) {
		case 0xF0: i->pfx |= PFX_LOCK; rex = 0; continue;
		case 0xF2: i->pfx = (i->pfx & ~PFX_F3) | PFX_F2; rex = 0; continue;
		case 0xF3: i->pfx = (i->pfx & ~PFX_F2) | PFX_F3; rex = 0; continue;
		case 0x66: p66 = true; i->pfx |= PFX_66; rex = 0; continue;
		case 0x67: p67 = true; rex = 0; continue;
		case 0x26: case 0x2E: case 0x36: case 0x3E:
			if (!c->code64) {
				i->seg = (b >> 3) & 3;
				i->seg_override = true;
			}
			rex = 0;
			continue;
		case 0x64: case 0x65:
			i->seg = b - 0x64 + SEG_FS;
			i->seg_override = true;
			rex = 0;
			continue;
		default:
			break;
		}
		if (c->code64 && (b & 0xF0) == 0x40) {
			rex = b;
			continue;
		}
		break;
	}
	i->rex = rex;
	if (c->code64) {
		i->osize = (rex & 8) ? 8 : p66 ? 2 : 4;
		i->asize = p67 ? 4 : 8;
	} else {
		i->osize = (c->code32 ^ p66) ? 4 : 2;
		i->asize = (c->code32 ^ p67) ? 4 : 2;
	}
	const struct op_info *inf;
	if (b == 0x0F) {
		b = next_byte(&f);
		if (b == 0x38 || b == 0x3A) {
			i->map = b == 0x38 ? 2 : 3;
			i->op = next_byte(&f);
			decode_modrm(&f, i, rex);
			i->has_modrm = true;
			if (i->map == 3)
				i->imm = next_byte(&f);
			i->fn = i->map == 2 ? op_table38[i->op] : op_table3a[i->op];
			goto done;
		}
		i->map = 1;
		inf = &info2[b];
	} else {
		inf = &info1[b];
	}
	i->op = b;
	if (c->code64 && inf->def64 && i->osize == 4)
		i->osize = 8;
	if (inf->modrm) {
		i->has_modrm = true;
		decode_modrm(&f, i, rex);
	}
	unsigned imm = inf->imm;
	if (i->map == 0 && (b == 0xF6 || b == 0xF7) && (i->reg & 7) < 2)
		imm = b == 0xF6 ? I_B : I_Z;
	switch (imm) {
	case I_B: i->imm = (uint64_t)sext(next_byte(&f), 1); break;
	case I_W: i->imm = next_imm(&f, 2); break;
	case I_Z:
		/* near CALL/JMP/Jcc rel32 in 64-bit mode: Intel 64 ignores 66
		 * (AMD64 reads a rel16 and truncates RIP; this CPU is Intel) */
		if (i->osize == 2 && !(c->code64 && (b == 0xE8 || b == 0xE9 || (i->map == 1 && (b & 0xF0) == 0x80))))
			i->imm = (uint64_t)sext(next_imm(&f, 2), 2);
		else
			i->imm = (uint64_t)sext(next_imm(&f, 4), 4);
		break;
	case I_V: i->imm = next_imm(&f, i->osize); break;
	case I_A: i->imm = next_imm(&f, i->asize); break;
	case I_WB:
		i->imm = next_imm(&f, 2);
		i->imm2 = next_byte(&f);
		break;
	case I_P:
		if (c->code64) {
			i->fn = insn_ud;
			goto done;
		}
		i->imm = next_imm(&f, i->osize);
		i->imm2 = (uint16_t)next_imm(&f, 2);
		break;
	}
	i->fn = i->map == 0 ? op_table1[b] : op_table2[b];
	if (i->map == 1 && vec_pfx[b] && !(vec_pfx[b] & vec_class(i)))
		i->fn = insn_ud;
done:
	if ((i->pfx & PFX_LOCK) && !lock_allowed(i))
		i->fn = insn_ud;
	i->len = f.pos;
	if (!i->fn)
		i->fn = insn_ud;
	i->run = run_generic;
	if (i->fn != insn_ud && !emu_no_fast_paths && fast_specialize(c, i))
		i->run = i->fn;
	return !f.bail;
}
