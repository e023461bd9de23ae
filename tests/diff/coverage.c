/* Coverage gate of the differential tests (`emu-diff --coverage`).
 *
 * Enumerates every encoding the software CPU implements in 64-bit mode
 * and checks that a form of forms.c runs it, or that excluded.c names the
 * unit test covering it. An encoding (a "key") is: map (one-byte, 0F,
 * 0F38, 0F3A), opcode, mandatory-prefix class (none/66/F3/F2, only for
 * the opcodes where the SDM's opcode map gives the prefixes different
 * instructions), ModRM.reg for group opcodes, register or memory operand,
 * and ModRM.rm for the register forms where rm selects the instruction
 * (0F 01, some x87 rows).
 *
 * "Implemented" is asked of the emulator itself, not of a hand-written
 * list: the synthetic instruction is decoded (the op tables choose the
 * handler) and run one step on a fresh user-mode state; it is
 * implemented unless it raises #UD. An instruction that gives #GP in user
 * mode (privileged) is run again at CPL 0, where an unimplemented
 * encoding still gives #UD. Each form's bytes are decoded by the same
 * decoder and mark their keys covered.
 *
 * Operand sizes: an encoding whose result changes with 66 or REX.W (the
 * emulator says so, run from the same random state with and without the
 * prefix) must have a form of each of its sizes (probe_sizes). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accel/emu/cpu.h"
#include "diff.h"
#include "emu_harness.h"

#define COV_CODE 0x10000000UL
#define COV_DATA 0x10100000UL
#define COV_RAM (0x10200000UL + 2 * 1024 * 1024)

enum { ANY = 8 };                            /* reg or rm not part of the key */
enum { P_NONE, P_66, P_F3, P_F2 };           /* mandatory-prefix classes */
enum { K_REG, K_MEM, K_NOMODRM };            /* operand kind */

struct key {
	uint8_t map, op, pfx, reg, kind, rm;
};

#define NKEYS (4 * 256 * 4 * 9 * 3 * 9)
enum { S_IMPL = 1, S_COVERED = 2, S_EXCLUDED = 4 };
static uint8_t state[NKEYS];
static uint16_t first_form[NKEYS];          /* 1 + index of the first form covering the key */

static unsigned key_index(const struct key *k)
{
	return ((((k->map * 256u + k->op) * 4 + k->pfx) * 9 + k->reg) * 3 + k->kind) * 9 + k->rm;
}

static struct key key_of_index(unsigned x)
{
	struct key k;
	k.rm = (uint8_t)(x % 9);
	x /= 9;
	k.kind = (uint8_t)(x % 3);
	x /= 3;
	k.reg = (uint8_t)(x % 9);
	x /= 9;
	k.pfx = (uint8_t)(x % 4);
	x /= 4;
	k.op = (uint8_t)(x % 256);
	k.map = (uint8_t)(x / 256);
	return k;
}

/* The prefix classes that select different instructions (SDM vol. 2,
 * appendix A, the opcode maps' prefix columns): SSE and later opcodes of
 * the 0F, 0F38 and 0F3A maps; POPCNT/TZCNT/LZCNT (F3); group 15 (66:
 * CLFLUSHOPT..., F3: RDFSBASE...) and group 9 (F3: RDPID); REP/REPNE on the string instructions;
 * PAUSE (F3 90). Bit per class. */
static unsigned pfx_classes(int map, int op)
{
	const unsigned all = 1u << P_NONE | 1u << P_66 | 1u << P_F3 | 1u << P_F2;
	if (map >= 2)
		return all;
	if (map == 1) {
		if ((op >= 0x10 && op <= 0x17) || (op >= 0x28 && op <= 0x2F) || (op >= 0x50 && op <= 0x7F) ||
		    (op >= 0xC2 && op <= 0xC6) || op >= 0xD0)
			return all;
		if (op == 0xB8 || op == 0xBC || op == 0xBD || op == 0xC7)
			return 1u << P_NONE | 1u << P_F3;
		if (op == 0xAE) /* 66: CLFLUSHOPT, TPAUSE...; F3: RDFSBASE... */
			return 1u << P_NONE | 1u << P_66 | 1u << P_F3;
		return 1u << P_NONE;
	}
	if (op == 0xA6 || op == 0xA7 || op == 0xAE || op == 0xAF)
		return 1u << P_NONE | 1u << P_F3 | 1u << P_F2;
	if ((op >= 0x6C && op <= 0x6F) || (op >= 0xA4 && op <= 0xA7) || (op >= 0xAA && op <= 0xAD) || op == 0x90)
		return 1u << P_NONE | 1u << P_F3;
	return 1u << P_NONE;
}

/* Opcodes whose ModRM.reg is an opcode extension (SDM vol. 2, table A-6). */
static bool is_group(int map, int op)
{
	if (map == 0)
		return (op >= 0x80 && op <= 0x83) || op == 0x8F || op == 0xC0 || op == 0xC1 || op == 0xC6 ||
		       op == 0xC7 || (op >= 0xD0 && op <= 0xD3) || (op >= 0xD8 && op <= 0xDF) || op == 0xF6 ||
		       op == 0xF7 || op == 0xFE || op == 0xFF;
	if (map == 1)
		return op == 0x00 || op == 0x01 || op == 0x0D || op == 0x18 || (op >= 0x71 && op <= 0x73) ||
		       op == 0xAE || op == 0xB9 || op == 0xBA || op == 0xC7;
	return false;
}

/* Register forms whose ModRM.rm selects the instruction: 0F 01 (SWAPGS,
 * RDTSCP, MONITOR...) and the x87 rows without an ST(i) operand (FNOP,
 * FCHS..FCOS, FUCOMPP, FNCLEX/FNINIT, FCOMPP, FNSTSW AX). */
static bool rm_selects(int map, int op, int reg)
{
	if (map == 1)
		return op == 0x01 && reg != 4 && reg != 6; /* SMSW/LMSW r: rm is the operand */
	if (map != 0)
		return false;
	switch (op) {
	case 0xD9: return reg == 2 || reg >= 4;
	case 0xDA: return reg == 5;
	case 0xDB: return reg == 4;
	case 0xDE: return reg == 3;
	case 0xDF: return reg == 4;
	default: return false;
	}
}

static struct key key_of_insn(const struct insn *i)
{
	struct key k = { .map = i->map, .op = i->op, .pfx = P_NONE, .reg = ANY, .kind = K_NOMODRM, .rm = ANY };
	unsigned classes = pfx_classes(i->map, i->op);
	if ((i->pfx & PFX_F2) && (classes & 1u << P_F2))
		k.pfx = P_F2;
	else if ((i->pfx & PFX_F3) && (classes & 1u << P_F3))
		k.pfx = P_F3;
	else if ((i->pfx & PFX_66) && (classes & 1u << P_66))
		k.pfx = P_66;
	if (i->has_modrm) {
		k.kind = i->mod == 3 ? K_REG : K_MEM;
		if (is_group(i->map, i->op))
			k.reg = i->reg & 7;
		if (k.kind == K_REG && rm_selects(i->map, i->op, i->reg & 7))
			k.rm = i->rm & 7;
	}
	return k;
}

static const char *const pfx_names[4] = { "", "66 ", "f3 ", "f2 " };

static void key_str(const struct key *k, char *out, size_t len)
{
	static const char *const maps[4] = { "", "0f ", "0f 38 ", "0f 3a " };
	int n = snprintf(out, len, "%s%s%02x", pfx_names[k->pfx], maps[k->map], k->op);
	if (k->reg != ANY)
		n += snprintf(out + n, len - (size_t)n, " /%d", k->reg);
	if (k->kind != K_NOMODRM)
		n += snprintf(out + n, len - (size_t)n, " %s", k->kind == K_MEM ? "m" : "r");
	if (k->rm != ANY)
		snprintf(out + n, len - (size_t)n, " rm%d", k->rm);
}

/* Parses what key_str prints. */
static bool key_parse(const char *s, struct key *k)
{
	*k = (struct key){ .reg = ANY, .kind = K_NOMODRM, .rm = ANY };
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", s);
	char *tok[8];
	int n = 0;
	for (char *p = strtok(buf, " "); p && n < 8; p = strtok(NULL, " "))
		tok[n++] = p;
	int t = 0;
	if (t + 1 < n && (!strcmp(tok[t], "66") || !strcmp(tok[t], "f3") || !strcmp(tok[t], "f2"))) {
		k->pfx = !strcmp(tok[t], "66") ? P_66 : !strcmp(tok[t], "f3") ? P_F3 : P_F2;
		t++;
	}
	if (t + 1 < n && !strcmp(tok[t], "0f")) {
		k->map = 1;
		t++;
		if (t + 1 < n && (!strcmp(tok[t], "38") || !strcmp(tok[t], "3a"))) {
			k->map = tok[t][0] == '3' && tok[t][1] == '8' ? 2 : 3;
			t++;
		}
	}
	if (t >= n || !isxdigit((unsigned char)tok[t][0]))
		return false;
	k->op = (uint8_t)strtoul(tok[t++], NULL, 16);
	if (t < n && tok[t][0] == '/') {
		k->reg = (uint8_t)(tok[t][1] - '0');
		t++;
	}
	if (t < n && (!strcmp(tok[t], "r") || !strcmp(tok[t], "m"))) {
		k->kind = tok[t][0] == 'm' ? K_MEM : K_REG;
		t++;
	}
	if (t < n && !strncmp(tok[t], "rm", 2)) {
		k->rm = (uint8_t)(tok[t][2] - '0');
		t++;
	}
	return t == n && k->reg <= ANY && k->rm <= ANY;
}

/* ------------------------------------------------------------------ */
/* Probing the emulator */

struct probe {
	struct machine *m;
	struct emu_cpu *c;
	struct x86_cpu_state boot;
	uint8_t *code, *data;
};

/* Fresh state: registers that make every operand valid (RBX, RSI, RDI
 * and RSP in the data page, RCX = 1 for REP and LOOP), SSE enabled,
 * x87 initialised; CPL 3 or 0. */
static void probe_reset(struct probe *p, int cpl)
{
	struct emu_cpu *c = p->c;
	emu_accel_ops.set_state(&p->m->vcpus[0], &p->boot);
	memset(c->r, 0, sizeof(c->r));
	c->r[R_RBX] = COV_DATA + 0x100;
	c->r[R_RSI] = COV_DATA + 0x400;
	c->r[R_RDI] = COV_DATA + 0x800;
	c->r[R_RCX] = 1;
	c->r[R_RSP] = COV_DATA + 0x1800;
	c->r[R_RBP] = COV_DATA + 0x1C00;
	c->rip = COV_CODE;
	c->delivering = 0;
	c->mxcsr = 0x1F80;
	c->fcw = 0x037F;
	c->fsw = 0;
	c->ftw = 0xFFFF;
	c->ftop = 0;
	if (cpl == 3) {
		c->seg[SEG_CS].selector = 0x1B;
		c->seg[SEG_CS].dpl = 3;
		c->cpl = 3;
	}
	memset(p->data, 0, 0x2000);
	tlb_flush_all(c, false);
}

/* Bytes of a synthetic instruction: prefix, escapes, opcode, ModRM and
 * zeros for displacement/immediates (never read past what it decodes). */
static unsigned synth(uint8_t *b, const struct key *k, int reg, int rm, bool with_modrm)
{
	static const uint8_t pfx_byte[4] = { 0, 0x66, 0xF3, 0xF2 };
	unsigned n = 0;
	if (k->pfx)
		b[n++] = pfx_byte[k->pfx];
	if (k->map)
		b[n++] = 0x0F;
	if (k->map == 2)
		b[n++] = 0x38;
	if (k->map == 3)
		b[n++] = 0x3A;
	b[n++] = k->op;
	if (with_modrm)
		b[n++] = k->kind == K_MEM ? (uint8_t)((reg << 3) | 3) : (uint8_t)(0xC0 | (reg << 3) | rm);
	memset(b + n, 0, 15 - n);
	return n;
}

static int probe_step(struct probe *p, const struct key *k, int reg, int rm, int cpl)
{
	probe_reset(p, cpl);
	synth(p->code, k, reg, rm, k->kind != K_NOMODRM);
	return emu_test_step(&p->m->vcpus[0]);
}

/* Does the opcode (with this prefix) take a ModRM byte? Asks the decoder. */
static bool probe_has_modrm(struct probe *p, const struct key *k)
{
	probe_reset(p, 3);
	synth(p->code, k, 0, 1, true);
	struct insn i;
	if (setjmp(p->c->fault_jmp))
		return false;
	decode_insn(p->c, &i);
	return i.has_modrm;
}

static bool implemented(struct probe *p, const struct key *k)
{
	static const int regs_try[2] = { 0, 2 };
	for (int t = 0; t < 2; t++) {
		int reg = k->reg != ANY ? k->reg : regs_try[t];
		int rm = k->rm != ANY ? k->rm : 1;
		if (k->reg != ANY && t)
			break;
		int v = probe_step(p, k, reg, rm, 3);
		if (v == EXC_GP)
			v = probe_step(p, k, reg, rm, 0); /* privileged: does CPL 0 know it? */
		if (v != EXC_UD)
			return true;
	}
	return false;
}

static void enumerate(struct probe *p)
{
	for (int map = 0; map < 4; map++)
		for (int op = 0; op < 256; op++) {
			if ((map == 1 && (op == 0x38 || op == 0x3A)))
				continue; /* escapes */
			unsigned classes = pfx_classes(map, op);
			for (int pfx = 0; pfx < 4; pfx++) {
				if (!(classes & 1u << pfx))
					continue;
				struct key k = { (uint8_t)map, (uint8_t)op, (uint8_t)pfx, ANY, K_NOMODRM, ANY };
				if (map == 0 && (op == 0x0F || op == 0x26 || op == 0x2E || op == 0x36 || op == 0x3E ||
						 (op >= 0x40 && op <= 0x4F) || op == 0x64 || op == 0x65 || op == 0x66 ||
						 op == 0x67 || op == 0xF0 || op == 0xF2 || op == 0xF3))
					continue; /* prefixes, REX and the 0F escape */
				if (!probe_has_modrm(p, &k)) {
					if (implemented(p, &k))
						state[key_index(&k)] |= S_IMPL;
					continue;
				}
				for (int kind = K_REG; kind <= K_MEM; kind++)
					for (int reg = 0; reg < 8; reg++) {
						if (!is_group(map, op) && reg)
							break;
						for (int rm = 0; rm < 8; rm++) {
							bool rm_key = kind == K_REG && rm_selects(map, op, reg);
							if (!rm_key && rm)
								break;
							k.kind = (uint8_t)kind;
							k.reg = is_group(map, op) ? (uint8_t)reg : ANY;
							k.rm = rm_key ? (uint8_t)rm : ANY;
							if (implemented(p, &k))
								state[key_index(&k)] |= S_IMPL;
						}
					}
			}
		}
}

/* ------------------------------------------------------------------ */
/* Operand sizes: an encoding whose result changes with 66 or REX.W needs
 * a form of each size it has. Asked of the emulator too: the synthetic
 * instruction runs from the same random state plain, with 66 (unless 66
 * is its mandatory prefix) and with REX.W; a different result makes the
 * size a required one. Bits: 1 = 16, 2 = 32, 4 = 64-bit operand size. */
static uint8_t size_need[NKEYS], size_seen[NKEYS];

static unsigned size_bit(unsigned osize)
{
	return osize == 2 ? 1 : osize == 8 ? 4 : 2;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v;
	h *= 0x100000001B3ULL;
	return h ^ (h >> 29);
}

/* One run: returns a digest of the result, *osize the decoded size. */
static uint64_t size_run(struct probe *p, const struct key *k, bool p66, int rex, uint64_t seed, uint32_t flags,
			 unsigned *osize)
{
	static const uint8_t pfx_byte[4] = { 0, 0x66, 0xF3, 0xF2 };
	probe_reset(p, 3);
	struct emu_cpu *c = p->c;
	uint64_t r = seed;
	for (int g = 0; g < 16; g++) {
		r = r * 6364136223846793005ULL + 1442695040888963407ULL;
		if (g != R_RBX && g != R_RSP && g != R_RSI && g != R_RDI && g != R_RBP)
			c->r[g] = r ^ (r >> 31);
	}
	c->r[R_RCX] &= 3;
	for (unsigned b = 0; b < 0x2000; b += 8) {
		r = r * 6364136223846793005ULL + 1442695040888963407ULL;
		memcpy(p->data + b, &r, 8);
	}
	for (int x = 0; x < 16; x++)
		memcpy(&c->xmm[x], p->data + 0x1000 + 16 * x, 16);
	set_rflags(c, 0x202 | (seed & FL_ARITH), ~0ULL);
	/* the prefixes go in front of a fixed place: the opcode, the end of
	 * the instruction and a CALL's return address do not move */
	uint8_t pre[4];
	unsigned n = 0;
	if (p66)
		pre[n++] = 0x66;
	if (k->pfx)
		pre[n++] = pfx_byte[k->pfx];
	if (rex)
		pre[n++] = (uint8_t)rex;
	struct key plain = *k;
	plain.pfx = 0;
	memcpy(p->code + 16 - n, pre, n);
	synth(p->code + 16, &plain, k->reg != ANY ? k->reg : 0, k->rm != ANY ? k->rm : 1, k->kind != K_NOMODRM);
	c->rip = COV_CODE + 16 - n;
	struct insn i;
	*osize = 0;
	if (!setjmp(c->fault_jmp)) {
		decode_insn(c, &i);
		*osize = i.osize;
	}
	int v = emu_test_step(&p->m->vcpus[0]);
	uint64_t h = mix(0xCBF29CE484222325ULL, (uint64_t)v);
	for (int g = 0; g < 16; g++)
		h = mix(h, c->r[g]);
	h = mix(h, get_rflags(c) & flags);
	if (v < 0)
		h = mix(h, c->rip); /* a fault leaves RIP on the (prefixed) instruction */
	for (unsigned q = 0; q < 0x2000; q += 8) {
		uint64_t w;
		memcpy(&w, p->data + q, 8);
		h = mix(h, w);
	}
	for (int x = 0; x < 16; x++)
		h = mix(h, c->xmm[x].q[0] ^ c->xmm[x].q[1] * 3);
	return h;
}

static void probe_sizes(struct probe *p)
{
	unsigned nforms;
	const struct diff_form *forms = diff_forms(&nforms);
	for (unsigned x = 0; x < NKEYS; x++) {
		if (!(state[x] & S_IMPL) || (state[x] & S_EXCLUDED))
			continue;
		struct key k = key_of_index(x);
		bool try66 = !(pfx_classes(k.map, k.op) & 1u << P_66);
		/* flags the SDM leaves undefined for this instruction (as its
		 * forms say) may differ with the size: not compared */
		uint32_t flags = FL_ARITH | FL_DF;
		if (first_form[x])
			flags &= ~forms[first_form[x] - 1].undef_flags;
		unsigned need = 0, os, os66, osw;
		for (uint64_t t = 1; t <= 3; t++) {
			uint64_t seed = t * 0x9E3779B97F4A7C15ULL;
			uint64_t plain = size_run(p, &k, false, 0, seed, flags, &os);
			need |= size_bit(os);
			if (try66 && size_run(p, &k, true, 0, seed, flags, &os66) != plain)
				need |= size_bit(os66);
			/* REX.W against an empty REX: a REX alone changes AH..BH to
			 * SPL..DIL, which is not a size */
			if (size_run(p, &k, false, 0x48, seed, flags, &osw) != size_run(p, &k, false, 0x40, seed, flags, &os))
				need |= size_bit(osw);
		}
		size_need[x] = (uint8_t)need;
	}
}

/* Marks the keys of every instruction of every form. */
static void mark_forms(struct probe *p)
{
	unsigned n;
	const struct diff_form *forms = diff_forms(&n);
	for (unsigned f = 0; f < n; f++) {
		const struct diff_form *form = &forms[f];
		probe_reset(p, 3);
		memcpy(p->code, form->bytes, form->len);
		memset(p->code + form->len, 0x90, 16);
		while (p->c->rip < COV_CODE + form->len) {
			struct insn i;
			if (setjmp(p->c->fault_jmp))
				break;
			decode_insn(p->c, &i);
			struct key k = key_of_insn(&i);
			unsigned x = key_index(&k);
			state[x] |= S_COVERED;
			size_seen[x] |= (uint8_t)size_bit(i.osize);
			if (!first_form[x])
				first_form[x] = (uint16_t)(f + 1);
			p->c->rip += i.len;
		}
	}
}

/* The handler the decoder picks for a key (with the generic handlers). */
static const char *key_handler(struct probe *p, const struct key *k)
{
	probe_reset(p, 3);
	synth(p->code, k, k->reg != ANY ? k->reg : 0, k->rm != ANY ? k->rm : 1, k->kind != K_NOMODRM);
	struct insn i;
	if (setjmp(p->c->fault_jmp))
		return "?";
	bool fast = emu_no_fast_paths;
	emu_no_fast_paths = true;
	decode_insn(p->c, &i);
	emu_no_fast_paths = fast;
	const char *name = diff_symbol_of((const void *)i.fn);
	return name ? name : "?";
}

int diff_coverage(bool verbose)
{
	struct probe p = { .m = harness_new(COV_RAM, 1) };
	harness_long_mode(p.m, &p.boot, COV_CODE);
	p.boot.cr0 &= ~X86_CR0_WP;
	p.c = emu_test_cpu(&p.m->vcpus[0]);
	p.code = p.m->ram.host + COV_CODE;
	p.data = p.m->ram.host + COV_DATA;
	memset(state, 0, sizeof(state));
	memset(first_form, 0, sizeof(first_form));
	enumerate(&p);
	mark_forms(&p);

	int bad = 0;
	unsigned nexcl;
	const struct diff_exclusion *ex = diff_exclusions(&nexcl);
	for (unsigned e = 0; e < nexcl; e++) {
		struct key k;
		if (!key_parse(ex[e].key, &k)) {
			printf("coverage: exclusion \"%s\": not a key\n", ex[e].key);
			bad = 1;
			continue;
		}
		unsigned x = key_index(&k);
		if (!(state[x] & S_IMPL)) {
			printf("coverage: exclusion \"%s\" (%s): not implemented: remove it\n", ex[e].key, ex[e].why);
			bad = 1;
		} else if (state[x] & S_COVERED) {
			printf("coverage: exclusion \"%s\" (%s): a form covers it: remove it\n", ex[e].key, ex[e].why);
			bad = 1;
		}
		state[x] |= S_EXCLUDED;
	}

	probe_sizes(&p);
	memset(size_seen, 0, sizeof(size_seen));
	mark_forms(&p);

	unsigned impl = 0, covered = 0, excluded = 0, gaps = 0, extra = 0, size_keys = 0, size_gaps = 0;
	unsigned nforms;
	const struct diff_form *forms = diff_forms(&nforms);
	for (unsigned x = 0; x < NKEYS; x++) {
		if (!state[x])
			continue;
		struct key k = key_of_index(x);
		char s[48];
		key_str(&k, s, sizeof(s));
		if (!(state[x] & S_IMPL)) {
			extra++; /* forms expecting #UD */
			if (verbose)
				printf("  #UD       %-20s %s\n", s, forms[first_form[x] - 1].name);
			continue;
		}
		impl++;
		if (state[x] & S_COVERED) {
			covered++;
			if (verbose)
				printf("  covered   %-20s %s\n", s, forms[first_form[x] - 1].name);
			unsigned missing = size_need[x] & ~size_seen[x];
			if (size_need[x] & (size_need[x] - 1))
				size_keys++; /* more than one size */
			if (missing) {
				size_gaps++;
				printf("  SIZE      %-20s no form of%s%s%s bits (handler %s)\n", s, missing & 1 ? " 16" : "",
				       missing & 2 ? " 32" : "", missing & 4 ? " 64" : "", key_handler(&p, &k));
			}
		} else if (state[x] & S_EXCLUDED) {
			excluded++;
			if (verbose)
				printf("  excluded  %-20s (%s)\n", s, key_handler(&p, &k));
		} else {
			gaps++;
			printf("  UNCOVERED %-20s (handler %s)\n", s, key_handler(&p, &k));
		}
	}
	printf("coverage: %u implemented encodings: %u covered by %u forms, %u excluded (unit tests), "
	       "%u uncovered; %u more keys run by forms that expect #UD\n",
	       impl, covered, nforms, excluded, gaps, extra);
	printf("coverage: %u covered encodings have more than one operand size; %u lack a form of one of them\n",
	       size_keys, size_gaps);
	harness_free(p.m);
	return bad || gaps || size_gaps ? 1 : 0;
}
