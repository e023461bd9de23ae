/* The JIT: hot decoded blocks (64-bit code) translated to host x86-64.
 *
 * Code memory is one memfd mapped twice per vCPU: the emitter writes a
 * read-write view, the CPU runs a read-execute view; no mapping is ever
 * writable and executable at once. When it fills up, every compiled
 * block is dropped and it starts over.
 *
 * A compiled block is `void fn(struct emu_cpu *c)`. Host registers:
 *   rbx  the emu_cpu                r12  guest arithmetic flags (see below)
 *   r13  linear RIP of the block's first instruction (code is position-
 *        independent: a physical page may be mapped at several addresses)
 *   r14  c + the TLB offset of the current privilege (user or supervisor)
 *   r15  loop budget (iterations back to the block's top before leaving)
 *   rax, rcx, rdx, rsi, rdi: scratch (rsi holds a linear address, rcx a
 *   value to store; the slow paths preserve both).
 * Guest registers live in c->r[].
 *
 * Flags: at any point the guest's six arithmetic flags are in one or more
 * of: memory (the interpreter's lazy state), host EFLAGS (right after a
 * native producer), r12 (captured with pushfq; only the six bits). A
 * backward liveness pass says when a producer's flags are read before
 * being overwritten; readers are consumers (Jcc, CMOVcc, SETcc, ADC/SBB),
 * partial writers (INC/DEC, rotates, shifts that may shift by 0: they keep
 * the other flags), fallbacks, memory accesses (a fault must see precise
 * flags) and block exits. Flags nobody reads are never captured. */
#if defined(__x86_64__)
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "accel/emu/jit.h"
#include "accel/emu/cpu.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define JIT_CODE_SIZE (64u << 20) /* per vCPU; XVM_EMU_JIT_CODE_KB for tests */
#define JIT_BLOCK_MAX (48u << 10) /* worst case of one block's code */
#define JIT_LOOP_BUDGET 256       /* passes through a self-loop per entry */

struct jc;
struct jit {
	uint8_t *rw, *rx;
	size_t size, used;
	unsigned threshold;
	uint64_t compiled, resets, failed;
	struct jc *jc;   /* the compiler's scratch state */
};

/* ------------------------------------------------------------------ */
/* Code memory */

/* XVM_EMU_JIT_PROFILE=1: fallbacks run per opcode (map * 256 + opcode),
 * printed at exit: what the templates do not cover yet. */
static uint64_t fallback_count[4 * 256];
static bool fallback_profile;

struct jit *jit_new(void)
{
	const char *on = getenv("XVM_EMU_JIT"); /* on unless XVM_EMU_JIT=0 */
	if (on && strcmp(on, "0") == 0)
		return NULL;
	int fd = memfd_create("xvm-jit", MFD_CLOEXEC);
	if (fd < 0) {
		log_warn("emu: JIT off: memfd_create: %s", strerror(errno));
		return NULL;
	}
	struct jit *j = xcalloc(1, sizeof(*j));
	j->size = JIT_CODE_SIZE;
	const char *kb = getenv("XVM_EMU_JIT_CODE_KB");
	if (kb) {
		unsigned long v = strtoul(kb, NULL, 0);
		j->size = (v < 256 ? 256 : v > (1u << 20) ? (1u << 20) : v) << 10;
	}
	if (ftruncate(fd, (off_t)j->size) < 0)
		goto fail;
	j->rw = mmap(NULL, j->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	j->rx = mmap(NULL, j->size, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
	if (j->rw == MAP_FAILED || j->rx == MAP_FAILED)
		goto fail;
	close(fd);
	j->threshold = 32;
	fallback_profile = getenv("XVM_EMU_JIT_PROFILE") != NULL;
	const char *t = getenv("XVM_EMU_JIT_THRESHOLD");
	if (t) {
		unsigned long v = strtoul(t, NULL, 0);
		j->threshold = v < 1 ? 1 : v > 1000000 ? 1000000 : (unsigned)v;
	}
	return j;
fail:
	log_warn("emu: JIT off: cannot map its code memory: %s", strerror(errno));
	if (j->rw && j->rw != MAP_FAILED)
		munmap(j->rw, j->size);
	if (j->rx && j->rx != MAP_FAILED)
		munmap(j->rx, j->size);
	close(fd);
	free(j);
	return NULL;
}

void jit_free(struct jit *j)
{
	if (!j)
		return;
	munmap(j->rw, j->size);
	munmap(j->rx, j->size);
	free(j->jc);
	free(j);
}

void jit_print_stats(const struct emu_cpu *c)
{
	const struct jit *j = c->jit;
	if (!j)
		return;
	if (getenv("XVM_EMU_STATS"))
		fprintf(stderr, "JIT: %llu blocks compiled, %llu not compilable, %llu code resets\n",
			(unsigned long long)j->compiled, (unsigned long long)j->failed,
			(unsigned long long)j->resets);
	if (fallback_profile) {
		fprintf(stderr, "JIT fallbacks run (map:opcode count):\n");
		for (unsigned k = 0; k < 4 * 256; k++)
			if (fallback_count[k] > 100000)
				fprintf(stderr, "  %u:%02x %llu\n", k >> 8, k & 0xFF,
					(unsigned long long)fallback_count[k]);
	}
}

void jit_counters(const struct emu_cpu *c, uint64_t *compiled, uint64_t *resets)
{
	*compiled = c->jit ? c->jit->compiled : 0;
	*resets = c->jit ? c->jit->resets : 0;
}

void jit_reset(struct emu_cpu *c)
{
	if (!c->jit)
		return;
	for (unsigned k = 0; k < BLOCK_TABLE_SIZE; k++) {
		c->blocks[k].jit = NULL;
		c->blocks[k].hits = 0;
	}
	c->jit->used = 0;
	c->jit->resets++;
}

/* ------------------------------------------------------------------ */
/* Assembler: a hot section (the block's straight-line code) and a cold
 * one (slow paths, exits), joined at the end; jumps go to labels. */

_Static_assert(sizeof(struct tlb_entry) == 32, "tlb_probe scales the index by 32");

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };

#define SEC_BYTES (24u << 10)
#define MAX_LABELS 512
#define MAX_RELOCS 1024

struct mop {
	int base, index; /* host registers; index -1: none */
	int scale;
	int32_t disp;
};

struct jc {
	uint8_t sec[3][SEC_BYTES]; /* hot code, cold code, link slots */
	uint32_t n[3];
	int cur;
	bool overflow;
	struct { int8_t sec; uint32_t pos; } label[MAX_LABELS];
	int nlabel;
	struct { int8_t sec; uint32_t pos; int label; } reloc[MAX_RELOCS];
	int nreloc;
	/* the block */
	struct emu_cpu *c;
	const struct insn *first;
	unsigned n_insns;
	int64_t off[BLOCK_MAX + 1];   /* each instruction's offset from the block's RIP */
	bool live_out[BLOCK_MAX];     /* flags read after this instruction */
	unsigned page_off;            /* the block's RIP within its page */
	int fl;                       /* where the guest flags are (FL_IN_*) */
	int epilogue, top;
};

enum { FL_IN_MEM = 1, FL_IN_HOST = 2, FL_IN_REG = 4 };

static void b1(struct jc *j, unsigned v)
{
	if (j->n[j->cur] >= SEC_BYTES) {
		j->overflow = true;
		return;
	}
	j->sec[j->cur][j->n[j->cur]++] = (uint8_t)v;
}
static void d4(struct jc *j, uint32_t v)
{
	for (int k = 0; k < 4; k++)
		b1(j, (v >> (8 * k)) & 0xFF);
}
static void q8(struct jc *j, uint64_t v)
{
	d4(j, (uint32_t)v);
	d4(j, (uint32_t)(v >> 32));
}

static int new_label(struct jc *j)
{
	if (j->nlabel >= MAX_LABELS) {
		j->overflow = true;
		return 0;
	}
	j->label[j->nlabel].sec = -1;
	return j->nlabel++;
}
static void bind(struct jc *j, int l)
{
	j->label[l].sec = (int8_t)j->cur;
	j->label[l].pos = j->n[j->cur];
}
static void rel32_to(struct jc *j, int l)
{
	if (j->nreloc >= MAX_RELOCS) {
		j->overflow = true;
		return;
	}
	j->reloc[j->nreloc].sec = (int8_t)j->cur;
	j->reloc[j->nreloc].pos = j->n[j->cur];
	j->reloc[j->nreloc].label = l;
	j->nreloc++;
	d4(j, 0);
}
static void jmp_to(struct jc *j, int l)
{
	b1(j, 0xE9);
	rel32_to(j, l);
}
static void jcc_to(struct jc *j, unsigned cc, int l)
{
	b1(j, 0x0F);
	b1(j, 0x80 | cc);
	rel32_to(j, l);
}

static struct mop M(int base, int32_t disp)
{
	return (struct mop){ base, -1, 0, disp };
}
#define CPU(field) M(RBX, (int32_t)offsetof(struct emu_cpu, field))
static struct mop GREG(unsigned r)
{
	return M(RBX, (int32_t)(offsetof(struct emu_cpu, r) + 8 * r));
}

static void rex(struct jc *j, bool w, unsigned reg, unsigned index, unsigned base, bool force)
{
	unsigned r = 0x40 | (w << 3) | ((reg >> 3) & 1) << 2 | ((index >> 3) & 1) << 1 | ((base >> 3) & 1);
	if (r != 0x40 || force)
		b1(j, r);
}

static void modrm_mem(struct jc *j, unsigned reg, struct mop m)
{
	unsigned base = m.base & 7;
	int mod = (m.disp == 0 && base != 5) ? 0 : (m.disp >= -128 && m.disp <= 127) ? 1 : 2;
	if (m.index >= 0 || base == 4) {
		b1(j, mod << 6 | (reg & 7) << 3 | 4);
		b1(j, (unsigned)m.scale << 6 | (m.index >= 0 ? (unsigned)m.index & 7 : 4) << 3 | base);
	} else {
		b1(j, mod << 6 | (reg & 7) << 3 | base);
	}
	if (mod == 1)
		b1(j, (uint8_t)m.disp);
	else if (mod == 2)
		d4(j, (uint32_t)m.disp);
}

/* op reg, [mem] with up to three opcode bytes (0 = unused); pfx 0x66 or 0. */
static void op_m(struct jc *j, unsigned pfx, bool w, uint32_t opc, unsigned reg, struct mop m)
{
	if (pfx)
		b1(j, pfx);
	rex(j, w, reg, m.index >= 0 ? (unsigned)m.index : 0, (unsigned)m.base, false);
	if (opc > 0xFFFF)
		b1(j, opc >> 16);
	if (opc > 0xFF)
		b1(j, (opc >> 8) & 0xFF);
	b1(j, opc & 0xFF);
	modrm_mem(j, reg, m);
}

/* cmp byte [m], 0 (dword: the 32-bit int at m); jne l. Clobbers the host flags. */
static void jnz_field(struct jc *j, bool dword, struct mop m, int l)
{
	op_m(j, 0, false, dword ? 0x83 : 0x80, 7, m);
	b1(j, 0);
	jcc_to(j, 0x5, l);
}
/* op reg, rm (both registers). */
static void op_r(struct jc *j, bool w, uint32_t opc, unsigned reg, unsigned rm)
{
	rex(j, w, reg, 0, rm, false);
	if (opc > 0xFFFF)
		b1(j, opc >> 16);
	if (opc > 0xFF)
		b1(j, (opc >> 8) & 0xFF);
	b1(j, opc & 0xFF);
	b1(j, 0xC0 | (reg & 7) << 3 | (rm & 7));
}

static void mov_load(struct jc *j, unsigned reg, struct mop m) { op_m(j, 0, true, 0x8B, reg, m); }
static void mov_load32(struct jc *j, unsigned reg, struct mop m) { op_m(j, 0, false, 0x8B, reg, m); }
static void mov_store(struct jc *j, struct mop m, unsigned reg) { op_m(j, 0, true, 0x89, reg, m); }
static void lea(struct jc *j, unsigned reg, struct mop m) { op_m(j, 0, true, 0x8D, reg, m); }

/* reg = v, without touching the flags. */
static void mov_imm(struct jc *j, unsigned reg, uint64_t v)
{
	if (v <= 0xFFFFFFFFu) {
		rex(j, false, 0, 0, reg, false);
		b1(j, 0xB8 | (reg & 7));
		d4(j, (uint32_t)v);
	} else if ((int64_t)v == (int32_t)v) {
		rex(j, true, 0, 0, reg, false);
		b1(j, 0xC7);
		b1(j, 0xC0 | (reg & 7));
		d4(j, (uint32_t)v);
	} else {
		rex(j, true, 0, 0, reg, false);
		b1(j, 0xB8 | (reg & 7));
		q8(j, v);
	}
}

static void call_fn(struct jc *j, const void *fn)
{
	mov_imm(j, RAX, (uint64_t)(uintptr_t)fn);
	b1(j, 0xFF);
	b1(j, 0xD0); /* call rax */
}

/* Out-of-line code goes to the cold section. Emitted while already in
 * it (a slow path of a slow path), it is jumped over. */
struct cold {
	int save, fl, over;
};
static struct cold cold_begin(struct jc *j)
{
	struct cold s = { j->cur, j->fl, -1 };
	if (j->cur == 1) {
		s.over = new_label(j);
		jmp_to(j, s.over);
	}
	j->cur = 1;
	return s;
}
static void cold_end(struct jc *j, struct cold s)
{
	if (s.over >= 0)
		bind(j, s.over);
	j->cur = s.save;
	j->fl = s.fl;
}

/* ------------------------------------------------------------------ */
/* Guest flags */

/* r12 = host EFLAGS' six arithmetic bits (clobbers the host flags). */
static void capture_flags(struct jc *j)
{
	b1(j, 0x9C);                 /* pushfq */
	b1(j, 0x41); b1(j, 0x5C);    /* pop r12 */
	b1(j, 0x41); b1(j, 0x81); b1(j, 0xE4); d4(j, FL_ARITH); /* and r12d, FL_ARITH */
}

/* The flags into memory (the interpreter's state), from wherever they are. */
static void flags_to_mem(struct jc *j)
{
	if (!j->fl || (j->fl & FL_IN_MEM))
		return;
	if (!(j->fl & FL_IN_REG)) {
		capture_flags(j);
		j->fl = FL_IN_REG;
	}
	op_m(j, 0, true, 0x89, R12, CPU(cc_res));
	op_m(j, 0, false, 0xC6, 0, CPU(cc_op)); /* mov byte [cc_op], CC_EAGER */
	b1(j, CC_EAGER);
	j->fl |= FL_IN_MEM;
}

/* Before code that changes the host flags: keep the guest's if only the
 * host holds them. */
static void clobber_flags(struct jc *j)
{
	if (j->fl == FL_IN_HOST) {
		capture_flags(j);
		j->fl = FL_IN_REG;
	}
	j->fl &= ~FL_IN_HOST;
}

/* First half of getting the flags into host EFLAGS: out of memory into
 * r12 (a call: do it before loading operands into scratch registers). */
static void flags_prepare(struct jc *j)
{
	if (j->fl & (FL_IN_HOST | FL_IN_REG))
		return;
	if (!j->fl)
		return;
	/* eager flags (what compiled code leaves) are read directly; lazy
	 * ones (the interpreter's) are computed by flags_compute */
	int lazy = new_label(j), back = new_label(j);
	op_m(j, 0, false, 0x80, 7, CPU(cc_op)); /* cmp byte [cc_op], CC_EAGER */
	b1(j, CC_EAGER);
	jcc_to(j, 0x5, lazy);
	op_m(j, 0, true, 0x8B, R12, CPU(cc_res));
	bind(j, back);
	b1(j, 0x41); b1(j, 0x81); b1(j, 0xE4); d4(j, FL_ARITH); /* and r12d, FL_ARITH */
	struct cold cs = cold_begin(j);
	bind(j, lazy);
	b1(j, 0x48); b1(j, 0x89); b1(j, 0xDF); /* mov rdi, rbx */
	call_fn(j, (const void *)flags_compute);
	b1(j, 0x41); b1(j, 0x89); b1(j, 0xC4); /* mov r12d, eax */
	jmp_to(j, back);
	cold_end(j, cs);
	j->fl = FL_IN_MEM | FL_IN_REG;
}

/* Second half: r12 into host EFLAGS (popfq only changes the six
 * arithmetic bits here: user mode, r12 holds nothing else; DF, TF, AC
 * are clear in the host as the ABI wants). */
static void flags_to_host(struct jc *j)
{
	flags_prepare(j);
	if (j->fl & FL_IN_HOST)
		return;
	if (j->fl & FL_IN_REG) {
		b1(j, 0x41); b1(j, 0x54); /* push r12 */
		b1(j, 0x9D);              /* popfq */
		j->fl |= FL_IN_HOST;
	}
}

/* After a native flag producer (all six or some). */
static void flags_produced(struct jc *j, unsigned k)
{
	j->fl = j->live_out[k] ? FL_IN_HOST : 0;
}

/* ------------------------------------------------------------------ */
/* Exits */

static void set_last(struct jc *j, const struct insn *i)
{
	mov_imm(j, RAX, (uint64_t)(uintptr_t)i);
	mov_store(j, CPU(last), RAX);
}

/* reg = the block's RIP + d (flag-free). d may not fit a displacement:
 * a rel32 or disp32 near its limits plus the offset in the block. */
static void lea_rel(struct jc *j, unsigned reg, int64_t d)
{
	if (d == (int32_t)d) {
		lea(j, reg, M(R13, (int32_t)d));
	} else {
		mov_imm(j, reg, (uint64_t)d);
		lea(j, reg, (struct mop){ R13, (int)reg, 0, 0 });
	}
}

/* Block linking. Each exit has a slot (in the code memory: the emitter
 * and jit_link write it through the read-write view) caching where the
 * exit went last time: on a match the next block's code is entered
 * directly (past its prologue: the registers are saved already). A slot
 * is valid while the RIP is the same, no TLB flush happened since (the
 * flush counter never wraps, unlike the TLB generation: the linear
 * mapping and the virtual-RIP context are unchanged), the CPL is the
 * same and the target's page generation is unchanged (no code written).
 * The target's code lives as long as the code memory (a reset drops the
 * source block too); its instruction records as long as the arena (a
 * reset drops every compiled block). */
struct jit_link {
	uint64_t rip;
	uint64_t flushes;
	uint64_t code;          /* the target's jit_fn, 0 while unset */
	uint64_t first;         /* its first instruction record */
	uint32_t page, gen;
	uint8_t cpl;
	uint8_t pad[7];
};
#define PROLOGUE_LEN 14
static void *jit_link(struct emu_cpu *c, struct jit_link *slot);

/* Leaves the block with c->rip and c->last set (after instruction i) and
 * the flags in memory: into the next block when allowed. */
static void exit_link(struct jc *j, const struct insn *i)
{
	int slot = new_label(j), slow = new_label(j), plain = new_label(j);
	int save = j->cur;
	j->cur = 2;
	while (j->n[2] % 8)
		b1(j, 0);
	bind(j, slot);
	for (unsigned k = 0; k < sizeof(struct jit_link); k++)
		b1(j, 0);
	j->cur = save;
	struct mop sl = M(RDX, 0);
#define SLOT(f) M(RDX, (int32_t)offsetof(struct jit_link, f))
	b1(j, 0x48); b1(j, 0x8D); b1(j, 0x15); rel32_to(j, slot); /* lea rdx, [rip + slot] */
	(void)sl;
	mov_load(j, RAX, SLOT(code));
	b1(j, 0x48); b1(j, 0x85); b1(j, 0xC0);                     /* test rax, rax */
	jcc_to(j, 0x4, slow);
	mov_load(j, RCX, CPU(rip));
	op_m(j, 0, true, 0x3B, RCX, SLOT(rip));
	jcc_to(j, 0x5, slow);
	mov_load(j, RCX, CPU(st.flush_all));
	op_m(j, 0, true, 0x3B, RCX, SLOT(flushes));
	jcc_to(j, 0x5, slow);
	op_m(j, 0, false, 0x0FB6, RCX, CPU(cpl));
	op_m(j, 0, false, 0x3A, RCX, SLOT(cpl));                   /* cmp cl, [slot.cpl] */
	jcc_to(j, 0x5, slow);
	op_m(j, 0, false, 0x8B, RCX, SLOT(page));
	mov_load(j, RSI, CPU(page_gen));
	op_m(j, 0, false, 0x8B, RCX, ((struct mop){ RSI, RCX, 2, 0 }));
	op_m(j, 0, false, 0x3B, RCX, SLOT(gen));
	jcc_to(j, 0x5, slow);
	op_m(j, 0, false, 0x83, 5, CPU(jit_chain_left));          /* sub dword [chain_left], 1 */
	b1(j, 1);
	jcc_to(j, 0x4, plain);
	jnz_field(j, false, CPU(block_end), plain);
	jnz_field(j, true, CPU(pending), plain);
	jnz_field(j, false, CPU(irq_pending), plain);
	jnz_field(j, false, CPU(int_shadow), plain); /* after STI/MOV SS: the loop's event check */
	op_m(j, 0, false, 0xF6, 0, M(RBX, (int32_t)offsetof(struct emu_cpu, rflags) + 1)); /* test TF */
	b1(j, FL_TF >> 8);
	jcc_to(j, 0x5, plain);
	op_m(j, 0, true, 0x81, 0, CPU(icount));                   /* add qword [icount], n */
	d4(j, (uint32_t)(i - j->first + 1));
	op_m(j, 0, true, 0x83, 0, CPU(st.blocks));
	b1(j, 1);
	mov_load(j, RCX, SLOT(first));
	mov_store(j, CPU(blk_first), RCX);
	b1(j, 0x48); b1(j, 0x89); b1(j, 0xDF);                     /* mov rdi, rbx */
	b1(j, 0x48); b1(j, 0x83); b1(j, 0xC0); b1(j, PROLOGUE_LEN); /* add rax, PROLOGUE_LEN */
	b1(j, 0xFF); b1(j, 0xE0);                                   /* jmp rax */
#undef SLOT
	bind(j, slow);
	b1(j, 0x48); b1(j, 0x89); b1(j, 0xDF);                     /* mov rdi, rbx */
	b1(j, 0x48); b1(j, 0x89); b1(j, 0xD6);                     /* mov rsi, rdx */
	call_fn(j, (const void *)jit_link);
	jmp_to(j, j->epilogue);
	bind(j, plain);
	b1(j, 0x31); b1(j, 0xC0);                                   /* xor eax, eax */
	jmp_to(j, j->epilogue);
}

/* Leaves with c->rip = the block's RIP + off, after instruction i. */
static void exit_rel(struct jc *j, const struct insn *i, int64_t off)
{
	flags_to_mem(j);
	lea_rel(j, RAX, off);
	mov_store(j, CPU(rip), RAX);
	set_last(j, i);
	exit_link(j, i);
}

/* Leaves with c->rip = c->next_rip (a fallback jumped or ended the block). */
static void exit_next_rip(struct jc *j, const struct insn *i)
{
	mov_load(j, RAX, CPU(next_rip));
	mov_store(j, CPU(rip), RAX);
	set_last(j, i);
	exit_link(j, i);
}

/* The interpreter's handler for instruction k (flags in memory first). */
static void fallback(struct jc *j, unsigned k)
{
	const struct insn *i = &j->first[k];
	int64_t off = j->off[k], noff = off + i->len;
	flags_to_mem(j);
	if (fallback_profile) {
		mov_imm(j, RAX, (uint64_t)(uintptr_t)&fallback_count[(i->map & 3) * 256 + i->op]);
		b1(j, 0xF0); b1(j, 0x48); b1(j, 0xFF); b1(j, 0x00); /* lock inc qword [rax] */
	}
	lea(j, RAX, M(R13, (int32_t)off));
	mov_store(j, CPU(rip), RAX);
	lea(j, RAX, M(R13, (int32_t)noff));
	mov_store(j, CPU(next_rip), RAX);
	op_m(j, 0, true, 0xC7, 0, CPU(stop)); /* stop = NULL: a chaining handler returns */
	d4(j, 0);
	op_m(j, 0, false, 0xC7, 0, CPU(chain_left)); /* no block chaining from here */
	d4(j, 1);
	b1(j, 0x48); b1(j, 0x89); b1(j, 0xDF); /* mov rdi, rbx */
	mov_imm(j, RSI, (uint64_t)(uintptr_t)i);
	call_fn(j, (const void *)i->fn);
	int out = new_label(j);
	lea(j, RAX, M(R13, (int32_t)noff));
	op_m(j, 0, true, 0x39, RAX, CPU(next_rip)); /* cmp [next_rip], rax */
	jcc_to(j, 0x5, out);
	jnz_field(j, false, CPU(block_end), out);
	j->fl = FL_IN_MEM;
	struct cold cs = cold_begin(j);
	bind(j, out);
	exit_next_rip(j, i);
	cold_end(j, cs);
}

/* ------------------------------------------------------------------ */
/* Memory operands (64-bit mode: FS/GS add their base, the rest is flat) */

/* rsi = the linear address (lin = false: the offset, for LEA). Flag-free. */
static void emit_ea(struct jc *j, unsigned k, bool lin)
{
	const struct insn *i = &j->first[k];
	if (i->rip_rel) {
		lea_rel(j, RSI, (int64_t)(j->off[k] + i->len) + i->disp);
	} else if (i->base != 0xFF) {
		mov_load(j, RSI, GREG(i->base));
	} else {
		mov_imm(j, RSI, 0);
	}
	if (i->index != 0xFF) {
		mov_load(j, RAX, GREG(i->index));
		lea(j, RSI, (struct mop){ RSI, RAX, i->scale, i->rip_rel ? 0 : (int32_t)i->disp });
	} else if (!i->rip_rel && i->disp) {
		lea(j, RSI, M(RSI, (int32_t)i->disp));
	}
	if (lin && (i->seg == SEG_FS || i->seg == SEG_GS)) {
		mov_load(j, RAX, M(RBX, (int32_t)(offsetof(struct emu_cpu, seg) + i->seg * sizeof(struct x86_segment) +
						   offsetof(struct x86_segment, base))));
		lea(j, RSI, (struct mop){ RSI, RAX, 0, 0 });
	}
}

/* The soft-TLB probe for an access of size bytes at rsi: rdx = host
 * address - rsi on a hit, else jumps to slow. Clobbers flags, rax, rdx. */
static void tlb_probe(struct jc *j, bool write, unsigned size, int slow)
{
	size_t tlb = write ? offsetof(struct emu_cpu, tlb_w) : offsetof(struct emu_cpu, tlb_r);
	b1(j, 0x48); b1(j, 0x89); b1(j, 0xF0);             /* mov rax, rsi */
	b1(j, 0x48); b1(j, 0xC1); b1(j, 0xE8); b1(j, 12);  /* shr rax, 12 */
	b1(j, 0x25); d4(j, TLB_SIZE - 1);                   /* and eax, TLB_SIZE-1 */
	b1(j, 0x48); b1(j, 0xC1); b1(j, 0xE0); b1(j, 5);   /* shl rax, 5 (sizeof entry) */
	lea(j, RDX, M(RSI, (int32_t)size - 1));             /* the last byte's page */
	b1(j, 0x48); b1(j, 0x81); b1(j, 0xE2); d4(j, 0xFFFFF000u); /* and rdx, ~0xFFF */
	op_m(j, 0, true, 0x0B, RDX, CPU(tlb_gen));          /* or rdx, [tlb_gen] */
	op_m(j, 0, true, 0x3B, RDX, ((struct mop){ R14, RAX, 0, (int32_t)tlb })); /* cmp rdx, tag */
	jcc_to(j, 0x5, slow);
	op_m(j, 0, true, 0x8B, RDX, ((struct mop){ R14, RAX, 0, (int32_t)(tlb + offsetof(struct tlb_entry, addend)) }));
}

/* The out-of-line slow path of a memory access of instruction k: state
 * made precise (RIP, next RIP, flags), then the interpreter's routine. */
static void slow_access(struct jc *j, unsigned k, bool write, unsigned size, int slow, int back)
{
	struct cold cs = cold_begin(j);
	bind(j, slow);
	flags_to_mem(j);
	lea(j, RAX, M(R13, (int32_t)j->off[k]));
	mov_store(j, CPU(rip), RAX);
	lea(j, RAX, M(R13, (int32_t)(j->off[k] + j->first[k].len)));
	mov_store(j, CPU(next_rip), RAX);
	b1(j, 0x56); /* push rsi */
	b1(j, 0x51); /* push rcx (two pushes: the stack stays aligned) */
	b1(j, 0x48); b1(j, 0x89); b1(j, 0xDF); /* mov rdi, rbx */
	b1(j, 0xBA); d4(j, size);               /* mov edx, size */
	if (write) {
		call_fn(j, (const void *)mem_write_slow); /* (c, lin, size, rcx) */
	} else {
		b1(j, 0xB9); d4(j, ACC_READ);   /* mov ecx, ACC_READ */
		call_fn(j, (const void *)mem_read_slow);
	}
	b1(j, 0x59); /* pop rcx */
	b1(j, 0x5E); /* pop rsi */
	jmp_to(j, back);
	cold_end(j, cs);
}

/* reg = the size-byte value at m (zero-extended). */
static void host_load(struct jc *j, unsigned reg, struct mop m, unsigned size)
{
	switch (size) {
	case 1: op_m(j, 0, false, 0x0FB6, reg, m); break;
	case 2: op_m(j, 0, false, 0x0FB7, reg, m); break;
	case 4: op_m(j, 0, false, 0x8B, reg, m); break;
	default: op_m(j, 0, true, 0x8B, reg, m); break;
	}
}

/* m = the low size bytes of reg (rax, rcx or rdx for bytes). */
static void host_store(struct jc *j, struct mop m, unsigned reg, unsigned size)
{
	switch (size) {
	case 1: op_m(j, 0, false, 0x88, reg, m); break;
	case 2: op_m(j, 0x66, false, 0x89, reg, m); break;
	case 4: op_m(j, 0, false, 0x89, reg, m); break;
	default: op_m(j, 0, true, 0x89, reg, m); break;
	}
}

/* A register-register operation in the guest's operand size: the byte
 * opcode (opc8) for 1, the 0x66 prefix for 2, REX.W for 8. reg and rm
 * are rax..rbx (no REX needed for their byte forms). */
static void op_sz(struct jc *j, unsigned size, uint32_t opc8, uint32_t opcv, unsigned reg, unsigned rm)
{
	if (size == 2)
		b1(j, 0x66);
	op_r(j, size == 8, size == 1 ? opc8 : opcv, reg, rm);
}

/* The immediate of an op_sz group-1/test form: imm8, imm16 or imm32. */
static void emit_imm(struct jc *j, unsigned size, uint64_t imm)
{
	b1(j, imm & 0xFF);
	if (size >= 2)
		b1(j, (imm >> 8) & 0xFF);
	if (size >= 4) {
		b1(j, (imm >> 16) & 0xFF);
		b1(j, (imm >> 24) & 0xFF);
	}
}

/* rax = the size-byte value at linear rsi (zero-extended). */
static void load(struct jc *j, unsigned k, unsigned size)
{
	int slow = new_label(j), back = new_label(j);
	clobber_flags(j);
	tlb_probe(j, false, size, slow);
	host_load(j, RAX, (struct mop){ RSI, RDX, 0, 0 }, size);
	bind(j, back);
	slow_access(j, k, false, size, slow, back);
}

/* [rsi] = rcx (size bytes). A store that reached a code page ends the
 * block: the instruction is complete then. */
static void store(struct jc *j, unsigned k, unsigned size)
{
	int slow = new_label(j), back = new_label(j);
	clobber_flags(j);
	tlb_probe(j, true, size, slow);
	host_store(j, (struct mop){ RSI, RDX, 0, 0 }, RCX, size);
	bind(j, back);
	slow_access(j, k, true, size, slow, back);
}

/* After an instruction that stored: leave if the store ended the block. */
static void check_block_end(struct jc *j, unsigned k)
{
	int out = new_label(j);
	jnz_field(j, false, CPU(block_end), out);
	struct cold cs = cold_begin(j);
	bind(j, out);
	exit_rel(j, &j->first[k], j->off[k + 1]);
	cold_end(j, cs);
}

/* ------------------------------------------------------------------ */
/* Guest registers */

/* host reg = guest register r (size bytes, zero-extended; AH..BH for
 * byte registers 4-7 without REX). Flag-free. */
static void greg_load(struct jc *j, unsigned host, unsigned r, unsigned size, bool rex_present)
{
	switch (size) {
	case 8: mov_load(j, host, GREG(r)); break;
	case 4: mov_load32(j, host, GREG(r)); break;
	case 2: op_m(j, 0, false, 0x0FB7, host, GREG(r)); break;
	default:
		if (!rex_present && r >= 4 && r < 8)
			op_m(j, 0, false, 0x0FB6, host, M(RBX, (int32_t)(offsetof(struct emu_cpu, r) + 8 * (r - 4) + 1)));
		else
			op_m(j, 0, false, 0x0FB6, host, GREG(r));
		break;
	}
}

/* guest register r = host reg (32-bit writes zero the upper half; 8 and
 * 16-bit ones merge). host must be rax, rcx or rdx for byte writes. */
static void greg_store(struct jc *j, unsigned r, unsigned host, unsigned size, bool rex_present)
{
	switch (size) {
	case 8: mov_store(j, GREG(r), host); break;
	case 4:
		op_r(j, false, 0x89, host, host); /* mov e32, e32: zero the upper half */
		mov_store(j, GREG(r), host);
		break;
	case 2: op_m(j, 0x66, false, 0x89, host, GREG(r)); break;
	default:
		if (!rex_present && r >= 4 && r < 8)
			op_m(j, 0, false, 0x88, host, M(RBX, (int32_t)(offsetof(struct emu_cpu, r) + 8 * (r - 4) + 1)));
		else
			op_m(j, 0, false, 0x88, host, GREG(r));
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Templates */

enum tpl {
	T_FALLBACK, T_NOP, T_MOV, T_MOV_IMM, T_LEA, T_ALU, T_INCDEC, T_NOT, T_NEG, T_SHIFT,
	T_IMUL, T_MOVX, T_CMOV, T_SETCC, T_JCC, T_JMP_INLINE, T_CALL_INLINE, T_JMP, T_CALL,
	T_RET, T_PUSH, T_POP, T_XCHG, T_CALLI, T_JMPI, T_MULDIV, T_CDQ, T_SSEMOV, T_SSEOP,
	T_BSWAP, T_BITSCAN, T_SHxD, T_BT,
};

/* How an instruction uses the flags, for the liveness pass. */
enum fuse { F_NONE, F_KILL, F_PARTIAL, F_READ, F_READ_KILL };

struct tinfo {
	uint8_t t;
	uint8_t flags;
	bool mem;      /* a memory access (fault point) */
	uint8_t size;  /* operand size */
};

static bool is_mem(const struct insn *i)
{
	return i->has_modrm && i->mod != 3;
}

static struct tinfo T(uint8_t t, uint8_t fu, bool mem, unsigned size)
{
	return (struct tinfo){ t, fu, mem, (uint8_t)size };
}

/* 66 0F xx integer operations whose result depends only on the two
 * operands (no MXCSR, no immediate): unpacks/packs, compares, add/sub
 * (saturating too), logic, min/max, averages, multiplies, shifts by xmm. */
static bool sse2_int_op(unsigned op)
{
	return (op >= 0x60 && op <= 0x6D) || (op >= 0x74 && op <= 0x76) || (op >= 0xD1 && op <= 0xD5) ||
	       (op >= 0xD8 && op <= 0xE5 && op != 0xE6) || (op >= 0xE8 && op <= 0xEF) ||
	       (op >= 0xF1 && op <= 0xF6) || (op >= 0xF8 && op <= 0xFE) || op == 0x70;
}

/* Which template, if any, runs instruction i (and its operand size). */
static struct tinfo classify(const struct insn *i)
{
	struct tinfo f = T(T_FALLBACK, F_READ, false, 0);
	if (i->fn == fast_jmp_inline)
		return T(T_JMP_INLINE, F_NONE, false, 8);
	if (i->fn == fast_call_inline)
		return T(T_CALL_INLINE, F_NONE, true, 8);
	if (i->map == 1 && !(i->pfx & PFX_LOCK) && (!is_mem(i) || i->asize == 8)) {
		/* SSE data moves: MOVUPS/MOVUPD/MOVSS/MOVSD, MOVAPS/MOVAPD,
		 * MOVDQA/MOVDQU (they may fault: #UD, #NM, #GP) */
		bool p66 = i->pfx & PFX_66, f2 = i->pfx & PFX_F2, f3 = i->pfx & PFX_F3;
		if ((i->op == 0x10 || i->op == 0x11) && !(f2 && f3) && !(p66 && (f2 || f3)))
			return T(T_SSEMOV, F_NONE, true, f3 ? 4 : f2 ? 8 : 16);
		if ((i->op == 0x28 || i->op == 0x29) && !f2 && !f3)
			return T(T_SSEMOV, F_NONE, true, 16);
		if ((i->op == 0x6F || i->op == 0x7F) && (p66 != f3) && !f2)
			return T(T_SSEMOV, F_NONE, true, 16);
		/* SSE2 integer operations xmm, xmm/m128 (66 prefix alone): the
		 * host's own instruction on copies; PMOVMSKB, PSHUFD, MOVD/MOVQ */
		if (p66 && !f2 && !f3 && sse2_int_op(i->op))
			return T(T_SSEOP, F_NONE, true, 16);
		if (p66 && !f2 && !f3 && i->op == 0xD7 && !is_mem(i))
			return T(T_SSEOP, F_NONE, true, 4);
		if (p66 && !f2 && !f3 && (i->op == 0x6E || i->op == 0x7E))
			return T(T_SSEOP, F_NONE, true, (i->rex & 8) ? 8 : 4);
	}
	if (i->pfx & (PFX_LOCK | PFX_F2 | PFX_F3))
		return i->map == 0 && i->op == 0x90 && !(i->pfx & (PFX_LOCK | PFX_F2)) && !(i->rex & 1)
			       ? T(T_NOP, F_NONE, false, 0) /* PAUSE */
			       : f;
	bool m = is_mem(i);
	if (m && i->asize != 8)
		return f;
	unsigned v = i->osize; /* 2, 4 or 8 */
	unsigned op = i->op, sub = i->reg & 7;
	if (i->map == 0) {
		if (op < 0x40 && (op & 7) <= 5) /* ALU: rm,r  r,rm  acc,imm */
			return T(T_ALU, (op >> 3 == 2 || op >> 3 == 3) ? F_READ_KILL : F_KILL, m, (op & 1) ? v : 1);
		if (op == 0x80 || op == 0x81 || op == 0x83)
			return T(T_ALU, (sub == 2 || sub == 3) ? F_READ_KILL : F_KILL, m, op == 0x80 ? 1 : v);
		if (op == 0x84 || op == 0x85 || op == 0xA8 || op == 0xA9)
			return T(T_ALU, F_KILL, m, (op & 1) ? v : 1);
		if ((op == 0xF6 || op == 0xF7) && sub == 0)
			return T(T_ALU, F_KILL, m, (op & 1) ? v : 1);
		if ((op == 0xF6 || op == 0xF7) && !m && sub == 2)
			return T(T_NOT, F_NONE, false, (op & 1) ? v : 1);
		if ((op == 0xF6 || op == 0xF7) && !m && sub == 3)
			return T(T_NEG, F_KILL, false, (op & 1) ? v : 1);
		if ((op == 0xFE || op == 0xFF) && sub <= 1)
			return T(T_INCDEC, F_PARTIAL, m, (op & 1) ? v : 1);
		if (op == 0xF7 && sub >= 4 && sub <= 6 && v != 2)
			return T(T_MULDIV, F_KILL, m || sub == 6, v); /* DIV may fault */
		if ((op == 0x98 || op == 0x99) && v != 2)
			return T(T_CDQ, F_NONE, false, v);
		if (op == 0xFF && sub == 6 && v == 8)
			return T(T_PUSH, F_NONE, true, 8);
		if ((op == 0xC0 || op == 0xC1 || (op >= 0xD0 && op <= 0xD3)) && !m &&
		    (sub == 0 || sub == 1 || sub == 4 || sub == 5 || sub == 7)) {
			unsigned size = (op & 1) ? v : 1;
			unsigned cnt = (op == 0xD0 || op == 0xD1) ? 1 : (unsigned)i->imm & (size == 8 ? 63 : 31);
			bool all = op != 0xD2 && op != 0xD3 && sub >= 4 && cnt != 0;
			return T(T_SHIFT, all ? F_KILL : F_PARTIAL, false, size);
		}
		if (op >= 0x88 && op <= 0x8B)
			return T(T_MOV, F_NONE, m, (op & 1) ? v : 1);
		if (op >= 0xB0 && op <= 0xBF)
			return T(T_MOV_IMM, F_NONE, false, op >= 0xB8 ? v : 1);
		if ((op == 0xC6 || op == 0xC7) && sub == 0)
			return T(T_MOV_IMM, F_NONE, m, (op & 1) ? v : 1);
		if (op == 0x8D && m && v != 2)
			return T(T_LEA, F_NONE, false, v);
		if ((op == 0x69 || op == 0x6B) && v != 2)
			return T(T_IMUL, F_KILL, m, v);
		if (op == 0x63 && v == 8)
			return T(T_MOVX, F_NONE, m, v);
		if (op >= 0x70 && op <= 0x7F)
			return T(T_JCC, F_READ, false, 8);
		if ((op == 0xE9 || op == 0xEB) && v != 2)
			return T(T_JMP, F_NONE, false, 8);
		if (op == 0xE8 && v != 2)
			return T(T_CALL, F_NONE, true, 8);
		if (op == 0xC3 && v != 2)
			return T(T_RET, F_NONE, true, 8);
		if (op == 0xFF && (sub == 2 || sub == 4) && v != 2)
			return T(sub == 2 ? T_CALLI : T_JMPI, F_NONE, true, 8);
		if (((op >= 0x50 && op <= 0x57) || op == 0x68 || op == 0x6A) && v == 8)
			return T(T_PUSH, F_NONE, true, 8);
		if (op >= 0x58 && op <= 0x5F && v == 8 && ((op & 7) | ((i->rex & 1) << 3)) != R_RSP)
			return T(T_POP, F_NONE, true, 8);
		if (op == 0x90 && !(i->rex & 1))
			return T(T_NOP, F_NONE, false, 0);
		if (((op >= 0x91 && op <= 0x97) || op == 0x90 || (op == 0x87 && !m)) && v != 2)
			return T(T_XCHG, F_NONE, false, v);
		return f;
	}
	if (i->map == 1) {
		if (op == 0x1F)
			return T(T_NOP, F_NONE, false, 0);
		if (op == 0xAF && v != 2)
			return T(T_IMUL, F_KILL, m, v);
		if ((op == 0xB6 || op == 0xB7 || op == 0xBE || op == 0xBF) && v != 2)
			return T(T_MOVX, F_NONE, m, v);
		if (op >= 0x40 && op <= 0x4F && v != 2)
			return T(T_CMOV, F_READ, m, v);
		if (op >= 0x90 && op <= 0x9F && !m)
			return T(T_SETCC, F_READ, false, 1);
		if (op >= 0x80 && op <= 0x8F)
			return T(T_JCC, F_READ, false, 8);
		if (op >= 0xC8 && op <= 0xCF && v != 2)
			return T(T_BSWAP, F_NONE, false, v);
		if ((op == 0xBC || op == 0xBD) && v != 2) /* BSF/BSR (no F3: not TZCNT/LZCNT) */
			return T(T_BITSCAN, F_KILL, m, v);
		if ((op == 0xA4 || op == 0xA5 || op == 0xAC || op == 0xAD) && !m && v != 2)
			return T(T_SHxD, F_PARTIAL, false, v); /* a zero count keeps the flags */
		if (op == 0xBA && sub == 4 && !m && v != 2)
			return T(T_BT, F_PARTIAL, false, v);   /* BT r, imm8: CF only */
	}
	return f;
}

static struct mop XMM(unsigned r)
{
	return M(RBX, (int32_t)(offsetof(struct emu_cpu, xmm) + 16 * r));
}

/* dst = src, size bytes (16 through xmm0, else through rax). */
static void xmm_copy(struct jc *j, struct mop dst, struct mop src, unsigned size)
{
	if (size == 16) {
		op_m(j, 0xF3, false, 0x0F6F, 0, src); /* movdqu xmm0, src */
		op_m(j, 0xF3, false, 0x0F7F, 0, dst); /* movdqu dst, xmm0 */
	} else {
		host_load(j, RAX, src, size);
		host_store(j, dst, RAX, size);
	}
}

/* rax = the r/m operand (register or memory) of instruction k. */
static void load_rm(struct jc *j, unsigned k, unsigned size)
{
	const struct insn *i = &j->first[k];
	if (is_mem(i)) {
		emit_ea(j, k, true);
		load(j, k, size);
	} else {
		greg_load(j, RAX, i->rm, size, i->rex != 0);
	}
}

static bool target_in_page(struct jc *j, int64_t off)
{
	int64_t p = (int64_t)j->page_off + off;
	return p >= 0 && p < 4096;
}

/* Jumps to fb if rax is not a canonical address. */
static void check_canonical(struct jc *j, int fb)
{
	b1(j, 0x48); b1(j, 0x89); b1(j, 0xC1);             /* mov rcx, rax */
	b1(j, 0x48); b1(j, 0xC1); b1(j, 0xE1); b1(j, 16);  /* shl rcx, 16 */
	b1(j, 0x48); b1(j, 0xC1); b1(j, 0xF9); b1(j, 16);  /* sar rcx, 16 */
	b1(j, 0x48); b1(j, 0x39); b1(j, 0xC1);             /* cmp rcx, rax */
	jcc_to(j, 0x5, fb);
}

/* A cold fallback for instruction k (a rare case its template does not
 * handle, e.g. a non-canonical target): the handler faults or jumps. */
static int cold_fallback(struct jc *j, unsigned k)
{
	int l = new_label(j);
	struct cold cs = cold_begin(j);
	bind(j, l);
	fallback(j, k);
	exit_next_rip(j, &j->first[k]);
	cold_end(j, cs);
	return l;
}

/* The cold path of a template that can decline at run time (label miss,
 * e.g. SSE disabled or a misaligned operand): the interpreter's handler,
 * then back to after. fl_miss: where the flags were at the miss. */
static void fallback_on_miss(struct jc *j, unsigned k, int miss, int after, int fl_miss)
{
	struct cold cs = cold_begin(j);
	j->fl = fl_miss;
	bind(j, miss);
	fallback(j, k);
	if ((fl_miss & FL_IN_REG) && !(fl_miss & FL_IN_MEM))
		flags_prepare(j);
	jmp_to(j, after);
	int fl_cold = j->fl;
	cold_end(j, cs);
	bind(j, after);
	j->fl = fl_miss & fl_cold;
}

/* Leaves towards the block's RIP + target (a taken branch of instruction
 * k): back to the top when it is the block itself, else out. */
static void branch_out(struct jc *j, unsigned k, int64_t target)
{
	const struct insn *i = &j->first[k];
	flags_to_mem(j);
	if (target == 0) {
		int out = new_label(j);
		jnz_field(j, true, CPU(pending), out);
		jnz_field(j, false, CPU(irq_pending), out);
		jnz_field(j, false, CPU(block_end), out);
		b1(j, 0x41); b1(j, 0xFF); b1(j, 0xCF); /* dec r15d */
		jcc_to(j, 0x4, out);
		op_m(j, 0, true, 0x81, 0, CPU(icount)); /* add qword [icount], k + 1 */
		d4(j, k + 1);
		jmp_to(j, j->top);
		bind(j, out);
	}
	if (!target_in_page(j, target)) {
		lea_rel(j, RAX, target);
		check_canonical(j, cold_fallback(j, k));
	}
	exit_rel(j, i, target);
}

/* Emits instruction k. */
static void emit_insn(struct jc *j, unsigned k, struct tinfo f)
{
	const struct insn *i = &j->first[k];
	unsigned size = f.size, op = i->op, sub = i->reg & 7;
	bool w = size == 8, rexp = i->rex != 0;
	int64_t noff = j->off[k] + i->len;
	switch (f.t) {
	case T_NOP:
	case T_JMP_INLINE:
		break;
	case T_MOV:
		if (op >= 0x8A) {
			load_rm(j, k, size);
			greg_store(j, i->reg, RAX, size, rexp);
		} else if (!is_mem(i)) {
			greg_load(j, RAX, i->reg, size, rexp);
			greg_store(j, i->rm, RAX, size, rexp);
		} else {
			emit_ea(j, k, true);
			greg_load(j, RCX, i->reg, size, rexp);
			store(j, k, size);
			check_block_end(j, k);
		}
		break;
	case T_MOV_IMM: {
		uint64_t v = size == 8 ? i->imm : i->imm & size_mask(size);
		if ((op == 0xC6 || op == 0xC7) && is_mem(i)) {
			emit_ea(j, k, true);
			mov_imm(j, RCX, v);
			store(j, k, size);
			check_block_end(j, k);
		} else {
			unsigned r = op >= 0xC6 ? i->rm : ((op & 7) | ((i->rex & 1) << 3));
			mov_imm(j, RAX, v);
			greg_store(j, r, RAX, size, rexp);
		}
		break;
	}
	case T_LEA:
		emit_ea(j, k, false);
		greg_store(j, i->reg, RSI, size, true);
		break;
	case T_ALU: {
		/* a (the destination) in rcx, b in rax or an immediate */
		enum { A_RM, A_REG, A_ACC } a;
		enum { B_REG, B_RM, B_IMM } bs;
		unsigned alu;
		if (op < 0x40) {
			alu = op >> 3;
			unsigned form = (op & 7) >> 1;
			a = form == 0 ? A_RM : form == 1 ? A_REG : A_ACC;
			bs = form == 0 ? B_REG : form == 1 ? B_RM : B_IMM;
		} else if (op == 0x80 || op == 0x81 || op == 0x83) {
			alu = sub, a = A_RM, bs = B_IMM;
		} else if (op == 0x84 || op == 0x85) {
			alu = 8, a = A_RM, bs = B_REG;
		} else if (op == 0xA8 || op == 0xA9) {
			alu = 8, a = A_ACC, bs = B_IMM;
		} else { /* F6/F7 /0 */
			alu = 8, a = A_RM, bs = B_IMM;
		}
		/* ALU with a memory destination: through the write TLB (a hit
		 * means the page is writable and has no side effects, so it can
		 * be read too); a miss runs the interpreter's handler */
		bool rmw = a == A_RM && is_mem(i) && alu != 7 && alu != 8;
		bool cin = alu == 2 || alu == 3;
		int miss = -1, fl_miss = 0;
		if (cin)
			flags_prepare(j);
		if (rmw) {
			emit_ea(j, k, true);
			miss = new_label(j);
			clobber_flags(j);
			fl_miss = j->fl;
			tlb_probe(j, true, size, miss);
			lea(j, RSI, ((struct mop){ RSI, RDX, 0, 0 }));
			host_load(j, RCX, M(RSI, 0), size);
		} else if (a == A_RM) {
			load_rm(j, k, size);
			b1(j, 0x48); b1(j, 0x89); b1(j, 0xC1); /* mov rcx, rax */
		} else if (a == A_ACC) {
			greg_load(j, RCX, R_RAX, size, true);
		} else {
			load_rm(j, k, size); /* b first: it may be a memory load */
			greg_load(j, RCX, i->reg, size, rexp);
		}
		if (bs == B_REG)
			greg_load(j, RAX, i->reg, size, rexp);
		if (cin)
			flags_to_host(j);
		if (alu == 8 && bs == B_IMM) {
			op_sz(j, size, 0xF6, 0xF7, 0, RCX);
			emit_imm(j, size, i->imm);
		} else if (alu == 8) {
			op_sz(j, size, 0x84, 0x85, RAX, RCX);
		} else if (bs == B_IMM) {
			op_sz(j, size, 0x80, 0x81, alu, RCX);
			emit_imm(j, size, i->imm);
		} else {
			op_sz(j, size, (alu << 3) | 2, (alu << 3) | 3, RCX, RAX);
		}
		flags_produced(j, k);
		if (rmw) {
			host_store(j, M(RSI, 0), RCX, size);
			int after = new_label(j);
			struct cold cs = cold_begin(j);
			j->fl = fl_miss;
			bind(j, miss);
			fallback(j, k);
			if (j->live_out[k])
				flags_to_host(j); /* as the native path leaves them */
			jmp_to(j, after);
			cold_end(j, cs);
			bind(j, after);
		} else if (alu != 7 && alu != 8) {
			greg_store(j, a == A_ACC ? R_RAX : a == A_RM ? i->rm : i->reg, RCX, size, rexp);
		}
		break;
	}
	case T_INCDEC:
	case T_NOT:
	case T_NEG: {
		bool need_in = f.t == T_INCDEC && j->live_out[k];
		bool rmw = is_mem(i);
		int miss = -1, fl_miss = 0;
		if (need_in)
			flags_prepare(j);
		if (rmw) { /* INC/DEC of memory: through the write TLB, as ALU */
			emit_ea(j, k, true);
			miss = new_label(j);
			clobber_flags(j);
			fl_miss = j->fl;
			tlb_probe(j, true, size, miss);
			lea(j, RSI, ((struct mop){ RSI, RDX, 0, 0 }));
			host_load(j, RCX, M(RSI, 0), size);
		} else {
			greg_load(j, RCX, i->rm, size, rexp);
		}
		if (need_in)
			flags_to_host(j);
		else if (f.t == T_INCDEC)
			j->fl &= ~FL_IN_HOST;
		if (f.t == T_INCDEC)
			op_sz(j, size, 0xFE, 0xFF, sub, RCX);
		else
			op_sz(j, size, 0xF6, 0xF7, f.t == T_NOT ? 2 : 3, RCX);
		if (f.t != T_NOT)
			flags_produced(j, k);
		if (!rmw) {
			greg_store(j, i->rm, RCX, size, rexp);
			break;
		}
		host_store(j, M(RSI, 0), RCX, size);
		int after = new_label(j);
		struct cold cs = cold_begin(j);
		j->fl = fl_miss;
		bind(j, miss);
		fallback(j, k);
		if (j->live_out[k])
			flags_to_host(j);
		jmp_to(j, after);
		cold_end(j, cs);
		bind(j, after);
		break;
	}
	case T_MULDIV: {
		/* MUL/IMUL rdx:rax = rax * src; DIV (divisor not zero and the
		 * quotient fits, else the interpreter raises #DE) */
		load_rm(j, k, size);
		b1(j, 0x48); b1(j, 0x89); b1(j, 0xC1); /* mov rcx, rax */
		greg_load(j, RAX, R_RAX, size, true);
		if (sub == 6) {
			int fb = cold_fallback(j, k);
			greg_load(j, RDX, R_RDX, size, true);
			op_sz(j, size, 0x84, 0x85, RCX, RCX); /* test rcx, rcx */
			jcc_to(j, 0x4, fb);
			op_sz(j, size, 0x3A, 0x3B, RDX, RCX); /* cmp rdx, rcx */
			jcc_to(j, 0x3, fb);                   /* jae */
		}
		op_sz(j, size, 0xF6, 0xF7, sub, RCX);
		flags_produced(j, k);
		greg_store(j, R_RAX, RAX, size, true);
		greg_store(j, R_RDX, RDX, size, true);
		break;
	}
	case T_SSEMOV: {
		bool st = op == 0x11 || op == 0x29 || op == 0x7F;
		bool aligned = op == 0x28 || op == 0x29 || ((op == 0x6F || op == 0x7F) && (i->pfx & PFX_66));
		int miss = new_label(j), after = new_label(j);
		clobber_flags(j);
		int fl_miss = j->fl;
		/* check_sse: CR0.EM or TS set, or CR4.OSFXSR clear: the handler faults */
		op_m(j, 0, false, 0xF7, 0, CPU(cr0));
		d4(j, (uint32_t)(X86_CR0_EM | X86_CR0_TS));
		jcc_to(j, 0x5, miss);
		op_m(j, 0, false, 0xF7, 0, CPU(cr4));
		d4(j, (uint32_t)X86_CR4_OSFXSR);
		jcc_to(j, 0x4, miss);
		struct mop xr = XMM(i->reg);
		if (!is_mem(i)) {
			struct mop xs = XMM(i->rm);
			xmm_copy(j, st ? xs : xr, st ? xr : xs, size);
		} else {
			emit_ea(j, k, true);
			if (aligned) {
				b1(j, 0x40); b1(j, 0xF6); b1(j, 0xC6); b1(j, 15); /* test sil, 15 */
				jcc_to(j, 0x5, miss);
			}
			tlb_probe(j, st, size, miss);
			struct mop hm = { RSI, RDX, 0, 0 };
			if (st || size == 16) {
				xmm_copy(j, st ? hm : xr, st ? xr : hm, size);
			} else { /* MOVSS/MOVSD from memory zero the rest */
				host_load(j, RAX, hm, size);
				mov_store(j, xr, RAX);
				op_m(j, 0, true, 0xC7, 0, M(RBX, xr.disp + 8));
				d4(j, 0);
			}
		}
		fallback_on_miss(j, k, miss, after, fl_miss);
		break;
	}
	case T_SSEOP: {
		int miss = new_label(j), after = new_label(j);
		clobber_flags(j);
		int fl_miss = j->fl;
		op_m(j, 0, false, 0xF7, 0, CPU(cr0));
		d4(j, (uint32_t)(X86_CR0_EM | X86_CR0_TS));
		jcc_to(j, 0x5, miss);
		op_m(j, 0, false, 0xF7, 0, CPU(cr4));
		d4(j, (uint32_t)X86_CR4_OSFXSR);
		jcc_to(j, 0x4, miss);
		if (op == 0x6E) { /* MOVD/MOVQ xmm, r/m32/64: zero-extended */
			load_rm(j, k, size);
			mov_store(j, XMM(i->reg), RAX);
			op_m(j, 0, true, 0xC7, 0, M(RBX, XMM(i->reg).disp + 8));
			d4(j, 0);
		} else if (op == 0x7E) { /* MOVD/MOVQ r/m32/64, xmm */
			host_load(j, RCX, XMM(i->reg), size);
			if (is_mem(i)) {
				emit_ea(j, k, true);
				tlb_probe(j, true, size, miss); /* a hit: no code page, no slow path */
				host_store(j, (struct mop){ RSI, RDX, 0, 0 }, RCX, size);
			} else {
				greg_store(j, i->rm, RCX, size, true);
			}
		} else if (op == 0xD7) { /* PMOVMSKB r32, xmm */
			op_m(j, 0xF3, false, 0x0F6F, 1, XMM(i->rm)); /* movdqu xmm1, src */
			b1(j, 0x66); b1(j, 0x0F); b1(j, 0xD7); b1(j, 0xC1); /* pmovmskb eax, xmm1 */
			greg_store(j, i->reg, RAX, 4, true);
		} else {
			if (is_mem(i)) { /* m128: 16-byte aligned (else #GP: the handler) */
				emit_ea(j, k, true);
				b1(j, 0x40); b1(j, 0xF6); b1(j, 0xC6); b1(j, 15); /* test sil, 15 */
				jcc_to(j, 0x5, miss);
				tlb_probe(j, false, 16, miss);
				op_m(j, 0xF3, false, 0x0F6F, 1, ((struct mop){ RSI, RDX, 0, 0 }));
			} else {
				op_m(j, 0xF3, false, 0x0F6F, 1, XMM(i->rm));
			}
			op_m(j, 0xF3, false, 0x0F6F, 0, XMM(i->reg));       /* movdqu xmm0, dst */
			b1(j, 0x66); b1(j, 0x0F); b1(j, op); b1(j, 0xC1);    /* op xmm0, xmm1 */
			if (op == 0x70)
				b1(j, (uint8_t)i->imm);
			op_m(j, 0xF3, false, 0x0F7F, 0, XMM(i->reg));       /* movdqu dst, xmm0 */
		}
		fallback_on_miss(j, k, miss, after, fl_miss);
		break;
	}
	case T_BSWAP: {
		unsigned r = (op & 7) | ((i->rex & 1) << 3);
		greg_load(j, RAX, r, size, true);
		if (size == 8)
			b1(j, 0x48);
		b1(j, 0x0F); b1(j, 0xC8); /* bswap eax/rax (the register is in the opcode) */
		greg_store(j, r, RAX, size, true);
		break;
	}
	case T_BITSCAN:
		/* the destination goes in too: a zero source leaves it (all 64
		 * bits, even for a 32-bit operand, as the host does) */
		load_rm(j, k, size);
		mov_load(j, RCX, GREG(i->reg)); /* all 64 bits: a zero source keeps them */
		op_r(j, size == 8, 0x0F00 | op, RCX, RAX);
		flags_produced(j, k);
		mov_store(j, GREG(i->reg), RCX);
		break;
	case T_SHxD:
	case T_BT: {
		bool need_in = j->live_out[k];
		if (need_in)
			flags_prepare(j);
		greg_load(j, RAX, i->rm, size, true);
		if (f.t == T_SHxD) {
			greg_load(j, RDX, i->reg, size, true);
			if (op == 0xA5 || op == 0xAD)
				op_m(j, 0, false, 0x0FB6, RCX, GREG(R_RCX));
		}
		if (need_in)
			flags_to_host(j);
		else
			j->fl &= ~FL_IN_HOST;
		if (f.t == T_SHxD) {
			op_r(j, size == 8, 0x0F00 | op, RDX, RAX); /* shld/shrd rax, rdx, imm8/cl */
			if (op == 0xA4 || op == 0xAC)
				b1(j, (uint8_t)i->imm);
		} else {
			op_r(j, size == 8, 0x0FBA, 4, RAX); /* bt rax, imm8 */
			b1(j, (uint8_t)i->imm);
		}
		flags_produced(j, k);
		if (f.t == T_SHxD)
			greg_store(j, i->rm, RAX, size, true);
		break;
	}
	case T_CDQ:
		/* CWDE/CDQE (98), CDQ/CQO (99): the host's own */
		greg_load(j, RAX, R_RAX, size, true);
		if (size == 8)
			b1(j, 0x48);
		b1(j, op);
		greg_store(j, op == 0x98 ? R_RAX : R_RDX, op == 0x98 ? RAX : RDX, size, true);
		break;
	case T_SHIFT: {
		bool need_in = f.flags == F_PARTIAL && j->live_out[k];
		if (need_in)
			flags_prepare(j);
		greg_load(j, RAX, i->rm, size, rexp);
		if (op == 0xD2 || op == 0xD3)
			op_m(j, 0, false, 0x0FB6, RCX, GREG(R_RCX));
		if (need_in)
			flags_to_host(j);
		else
			j->fl &= ~FL_IN_HOST; /* (the result is dead either way) */
		op_sz(j, size, op & ~1u, op | 1u, sub, RAX);
		if (op == 0xC0 || op == 0xC1)
			b1(j, (uint8_t)i->imm);
		flags_produced(j, k);
		greg_store(j, i->rm, RAX, size, rexp);
		break;
	}
	case T_IMUL:
		load_rm(j, k, size);
		if (op == 0xAF) {
			greg_load(j, RCX, i->reg, size, true);
			op_r(j, w, 0x0FAF, RCX, RAX);
		} else {
			op_r(j, w, 0x69, RCX, RAX);
			d4(j, (uint32_t)i->imm);
		}
		flags_produced(j, k);
		mov_store(j, GREG(i->reg), RCX);
		break;
	case T_MOVX: {
		unsigned ssz = op == 0x63 ? 4 : (op == 0xB6 || op == 0xBE) ? 1 : 2;
		if (is_mem(i)) {
			emit_ea(j, k, true);
			load(j, k, ssz);
		} else {
			greg_load(j, RAX, i->rm, ssz, rexp);
		}
		if (op == 0xBE || op == 0xBF)
			op_r(j, w, 0x0F00 | op, RAX, RAX); /* movsx eax/rax, al/ax */
		else if (op == 0x63)
			op_r(j, true, 0x63, RAX, RAX);  /* movsxd rax, eax */
		mov_store(j, GREG(i->reg), RAX);
		break;
	}
	case T_CMOV:
		flags_prepare(j);
		load_rm(j, k, size);
		greg_load(j, RCX, i->reg, size, true);
		flags_to_host(j);
		op_r(j, w, 0x0F40 | (op & 15), RCX, RAX);
		/* a 32-bit CMOV zero-extends the destination even if false:
		 * the host's did the same to rcx */
		mov_store(j, GREG(i->reg), RCX);
		break;
	case T_SETCC:
		flags_to_host(j);
		op_r(j, false, 0x0F90 | (op & 15), 0, RAX); /* setcc al */
		greg_store(j, i->rm, RAX, 1, rexp);
		break;
	case T_JCC: {
		int taken = new_label(j);
		flags_to_host(j);
		jcc_to(j, op & 15, taken);
		struct cold cs = cold_begin(j);
		bind(j, taken);
		branch_out(j, k, (int64_t)noff + (int64_t)i->imm);
		cold_end(j, cs);
		break;
	}
	case T_JMP:
		branch_out(j, k, (int64_t)noff + (int64_t)i->imm);
		break;
	case T_CALL:
	case T_CALL_INLINE: {
		int64_t target = (int64_t)noff + (int64_t)i->imm;
		if (!target_in_page(j, target)) {
			clobber_flags(j);
			lea_rel(j, RAX, target);
			check_canonical(j, cold_fallback(j, k));
		}
		mov_load(j, RSI, GREG(R_RSP));
		lea(j, RSI, M(RSI, -8));
		lea(j, RCX, M(R13, (int32_t)noff));
		store(j, k, 8);
		mov_store(j, GREG(R_RSP), RSI);
		if (f.t == T_CALL_INLINE)
			check_block_end(j, k);
		else
			exit_rel(j, i, target);
		break;
	}
	case T_RET: {
		mov_load(j, RSI, GREG(R_RSP));
		load(j, k, 8);
		check_canonical(j, cold_fallback(j, k));
		lea(j, RSI, M(RSI, 8));
		mov_store(j, GREG(R_RSP), RSI);
		mov_store(j, CPU(rip), RAX);
		flags_to_mem(j);
		set_last(j, i);
		exit_link(j, i);
		break;
	}
	case T_CALLI:
	case T_JMPI:
		load_rm(j, k, 8);
		check_canonical(j, cold_fallback(j, k));
		if (f.t == T_CALLI) {
			b1(j, 0x50); b1(j, 0x50); /* push rax twice (alignment): the target */
			mov_load(j, RSI, GREG(R_RSP));
			lea(j, RSI, M(RSI, -8));
			lea(j, RCX, M(R13, (int32_t)noff));
			store(j, k, 8);
			mov_store(j, GREG(R_RSP), RSI);
			b1(j, 0x58); b1(j, 0x58); /* pop rax twice */
		}
		mov_store(j, CPU(rip), RAX);
		flags_to_mem(j);
		set_last(j, i);
		exit_link(j, i);
		break;
	case T_PUSH:
		if (op == 0xFF) {
			load_rm(j, k, 8);
			b1(j, 0x48); b1(j, 0x89); b1(j, 0xC1); /* mov rcx, rax */
		} else if (op == 0x68 || op == 0x6A)
			mov_imm(j, RCX, i->imm);
		else
			mov_load(j, RCX, GREG((op & 7) | ((i->rex & 1) << 3)));
		mov_load(j, RSI, GREG(R_RSP));
		lea(j, RSI, M(RSI, -8));
		store(j, k, 8);
		mov_store(j, GREG(R_RSP), RSI);
		check_block_end(j, k);
		break;
	case T_POP:
		mov_load(j, RSI, GREG(R_RSP));
		load(j, k, 8);
		lea(j, RSI, M(RSI, 8));
		mov_store(j, GREG(R_RSP), RSI);
		mov_store(j, GREG((op & 7) | ((i->rex & 1) << 3)), RAX);
		break;
	case T_XCHG: {
		unsigned a = op == 0x87 ? i->reg : R_RAX;
		unsigned b = op == 0x87 ? i->rm : ((op & 7) | ((i->rex & 1) << 3));
		greg_load(j, RAX, a, size, true);
		greg_load(j, RCX, b, size, true);
		greg_store(j, a, RCX, size, true);
		greg_store(j, b, RAX, size, true);
		break;
	}
	default:
		fallback(j, k);
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Compiling a block */

static bool compile(struct emu_cpu *c, struct block *b, struct jc *j)
{
	memset(j->n, 0, sizeof(j->n));
	j->cur = 0;
	j->overflow = false;
	j->nlabel = j->nreloc = 0;
	j->c = c;
	j->first = &c->arena[b->start];
	j->n_insns = b->n;
	j->page_off = (unsigned)(c->rip & 0xFFF);
	struct tinfo info[BLOCK_MAX];
	j->off[0] = 0;
	for (unsigned k = 0; k < b->n; k++) {
		const struct insn *i = &j->first[k];
		info[k] = classify(i);
		int64_t next = j->off[k] + i->len;
		if (info[k].t == T_JMP_INLINE || info[k].t == T_CALL_INLINE)
			next += (int64_t)i->imm;
		j->off[k + 1] = next;
	}
	/* backward liveness of the flags */
	bool live = true; /* the block's exit reads them */
	for (unsigned k = b->n; k-- > 0;) {
		j->live_out[k] = live;
		const struct tinfo *f = &info[k];
		bool reads = f->flags == F_READ || f->flags == F_READ_KILL || f->mem;
		bool kills = f->flags == F_KILL || f->flags == F_READ_KILL;
		live = reads || (!kills && live);
	}

	j->epilogue = new_label(j);
	j->top = new_label(j);
	/* prologue */
	b1(j, 0x53); b1(j, 0x55);                   /* push rbx, rbp */
	b1(j, 0x41); b1(j, 0x54); b1(j, 0x41); b1(j, 0x55); /* push r12, r13 */
	b1(j, 0x41); b1(j, 0x56); b1(j, 0x41); b1(j, 0x57); /* push r14, r15 */
	b1(j, 0x48); b1(j, 0x83); b1(j, 0xEC); b1(j, 8);   /* sub rsp, 8 */
	b1(j, 0x48); b1(j, 0x89); b1(j, 0xFB);              /* mov rbx, rdi */
	mov_load(j, R13, CPU(rip));
	b1(j, 0x31); b1(j, 0xC0);                           /* xor eax, eax */
	op_m(j, 0, false, 0x80, 7, CPU(cpl));               /* cmp byte [cpl], 3 */
	b1(j, 3);
	b1(j, 0x0F); b1(j, 0x94); b1(j, 0xC0);              /* sete al */
	b1(j, 0x69); b1(j, 0xC0); d4(j, (uint32_t)sizeof(c->tlb_r[0])); /* imul eax, eax, stride */
	lea(j, R14, ((struct mop){ RBX, RAX, 0, 0 }));
	b1(j, 0x41); b1(j, 0xBF); d4(j, JIT_LOOP_BUDGET);  /* mov r15d, budget */
	bind(j, j->top);
	j->fl = FL_IN_MEM;
	for (unsigned k = 0; k < b->n; k++) {
		emit_insn(j, k, info[k]);
		if (j->overflow)
			return false;
	}
	/* falling off the end */
	unsigned last = b->n - 1;
	if (info[last].t != T_JMP && info[last].t != T_RET && info[last].t != T_CALL &&
	    info[last].t != T_CALLI && info[last].t != T_JMPI)
		exit_rel(j, &j->first[last], j->off[b->n]);
	/* epilogue: rax = the next block's code (a tail jump: its prologue
	 * saves the same registers again) or NULL (back to the loop) */
	bind(j, j->epilogue);
	b1(j, 0x48); b1(j, 0x89); b1(j, 0xDF);              /* mov rdi, rbx: its argument */
	b1(j, 0x48); b1(j, 0x83); b1(j, 0xC4); b1(j, 8);   /* add rsp, 8 */
	b1(j, 0x41); b1(j, 0x5F); b1(j, 0x41); b1(j, 0x5E); /* pop r15, r14 */
	b1(j, 0x41); b1(j, 0x5D); b1(j, 0x41); b1(j, 0x5C); /* pop r13, r12 */
	b1(j, 0x5D); b1(j, 0x5B);                           /* pop rbp, rbx */
	b1(j, 0x48); b1(j, 0x85); b1(j, 0xC0);              /* test rax, rax */
	b1(j, 0x74); b1(j, 2);                              /* jz +2 */
	b1(j, 0xFF); b1(j, 0xE0);                           /* jmp rax */
	b1(j, 0xC3);                                        /* ret */
	return !j->overflow;
}

/* Copies the three sections into code memory and resolves the jumps. */
static void *place(struct jit *jt, struct jc *j)
{
	uint32_t base[3] = { 0, j->n[0], (j->n[0] + j->n[1] + 7) & ~7u };
	uint32_t total = base[2] + j->n[2];
	uint8_t *dst = jt->rw + jt->used;
	for (int k = 0; k < 3; k++)
		memcpy(dst + base[k], j->sec[k], j->n[k]);
	for (int r = 0; r < j->nreloc; r++) {
		uint32_t at = base[j->reloc[r].sec] + j->reloc[r].pos;
		int l = j->reloc[r].label;
		uint32_t to = base[j->label[l].sec] + j->label[l].pos;
		int32_t rel = (int32_t)to - (int32_t)(at + 4);
		memcpy(dst + at, &rel, 4);
	}
	static const char *dump;
	if (!dump)
		dump = getenv("XVM_EMU_JIT_DUMP") ? getenv("XVM_EMU_JIT_DUMP") : "";
	if (*dump) { /* raw code, for objdump -b binary -m i386:x86-64 -D */
		FILE *f = fopen(dump, "a");
		if (f) { /* padded: file offsets are code-memory offsets until a reset */
			fwrite(dst, 1, (total + 15) & ~15u, f);
			fclose(f);
		}
	}
	void *fn = jt->rx + jt->used;
	jt->used = (jt->used + total + 15) & ~(size_t)15;
	return fn;
}

/* The slow path of an exit: the next block (emu_jit_next's rules), and
 * the exit's slot remembers it. Returns its code or NULL. */
static void *jit_link(struct emu_cpu *c, struct jit_link *slot)
{
	const struct block *b = emu_jit_next(c);
	if (!b)
		return NULL;
	struct jit_link *w = (struct jit_link *)((uint8_t *)slot - c->jit->rx + c->jit->rw);
	w->code = 0;
	w->rip = c->rip;
	w->flushes = c->st.flush_all;
	w->cpl = c->cpl;
	w->page = b->page;
	w->gen = b->gen;
	w->first = (uint64_t)(uintptr_t)&c->arena[b->start];
	w->code = (uint64_t)(uintptr_t)b->jit;
	return b->jit;
}

void jit_block_entered(struct emu_cpu *c, struct block *b)
{
	struct jit *jt = c->jit;
	if (b->hits >= jt->threshold)
		return; /* could not be compiled */
	if (++b->hits < jt->threshold)
		return;
	if (!c->code64 || b->n == 0 || b->page2 != BLOCK_ONE_PAGE) {
		b->hits = UINT32_MAX; /* a page-crossing instruction: its links would check one page */
		return;
	}
	if (!jt->jc)
		jt->jc = xcalloc(1, sizeof(*jt->jc));
	if (jt->used + 3 * SEC_BYTES > jt->size) {
		jit_reset(c);
		b->hits = jt->threshold;
	}
	if (!compile(c, b, jt->jc)) {
		jt->failed++;
		b->hits = UINT32_MAX;
		return;
	}
	b->jit = place(jt, jt->jc);
	jt->compiled++;
}

#endif
