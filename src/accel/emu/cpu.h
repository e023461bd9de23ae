/* The software x86-64 CPU: internal state and the interfaces between its
 * parts (memory/paging, decoder, executors, system/exception logic).
 * Nothing outside src/accel/emu includes this. */
#ifndef XVM_ACCEL_EMU_CPU_H
#define XVM_ACCEL_EMU_CPU_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "machine/x86.h"

struct machine;
struct vcpu;
struct lapic;
struct emu_cpu;
struct insn;

/* Exception vectors. */
enum {
	EXC_DE = 0, EXC_DB = 1, EXC_NMI = 2, EXC_BP = 3, EXC_OF = 4, EXC_BR = 5,
	EXC_UD = 6, EXC_NM = 7, EXC_DF = 8, EXC_TS = 10, EXC_NP = 11, EXC_SS = 12,
	EXC_GP = 13, EXC_PF = 14, EXC_MF = 16, EXC_AC = 17, EXC_MC = 18, EXC_XM = 19,
};

/* RFLAGS bits. */
#define FL_CF   0x0001u
#define FL_PF   0x0004u
#define FL_AF   0x0010u
#define FL_ZF   0x0040u
#define FL_SF   0x0080u
#define FL_TF   0x0100u
#define FL_IF   0x0200u
#define FL_DF   0x0400u
#define FL_OF   0x0800u
#define FL_IOPL 0x3000u
#define FL_NT   0x4000u
#define FL_RF   0x10000u
#define FL_VM   0x20000u
#define FL_AC   0x40000u
#define FL_VIF  0x80000u
#define FL_VIP  0x100000u
#define FL_ID   0x200000u
#define FL_ARITH (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_OF)

/* Lazy flags: the last flag-setting operation is remembered and the six
 * arithmetic flags are computed only when something reads them. */
enum cc_op {
	CC_EAGER,   /* cc_res holds the flags themselves */
	CC_ADD, CC_ADC, CC_SUB, CC_SBB, CC_LOGIC, CC_INC, CC_DEC,
	CC_SHIFT,   /* SHL/SHR/SAR: CF in cc_carry, OF in cc_b, AF clear */
};

/* Page-fault error code bits. */
#define PF_P    1u
#define PF_W    2u
#define PF_U    4u
#define PF_RSVD 8u
#define PF_I    16u

enum access { ACC_READ = 0, ACC_WRITE = 1, ACC_EXEC = 2 };

/* Soft TLB: maps a guest virtual page to a host pointer (RAM only). One
 * array per access kind and per privilege (user/supervisor), so a hit is
 * one compare. tag = virtual page | current generation (so flushing the
 * whole TLB on a CR3 write costs nothing); an entry that would need a
 * side effect (dirty bit, code page write, MMIO) is never installed. */
#define TLB_BITS 12
#define TLB_SIZE (1u << TLB_BITS)
struct tlb_entry {
	uint64_t tag;
	uintptr_t addend;   /* host pointer = vaddr + addend */
	uint64_t gpa_page;  /* physical page (for the code cache) */
	bool global;
};

union xmm_reg {
	uint8_t b[16];
	int8_t sb[16];
	uint16_t w[8];
	int16_t sw[8];
	uint32_t d[4];
	int32_t sd[4];
	uint64_t q[2];
	int64_t sq[2];
	float f[4];
	double fd[2];
};

struct emu_cpu {
	uint64_t r[16];
	uint64_t rip;
	uint64_t next_rip;     /* the executing instruction's successor */
	uint64_t rflags;       /* arithmetic bits are stale unless cc_op == CC_EAGER */

	/* lazy flags */
	uint64_t cc_a, cc_b, cc_res;
	uint8_t cc_op, cc_size, cc_carry;

	uint8_t cpl;
	bool code64;           /* 64-bit mode (CS.L with EFER.LMA) */
	bool code32;           /* CS.D outside 64-bit mode */
	bool stack32;          /* SS.B outside 64-bit mode */
	bool prot;             /* CR0.PE */
	bool long_mode;        /* EFER.LMA */
	bool int_shadow;       /* after MOV SS / POP SS / STI */
	bool halted;
	bool wait_sipi;
	bool nmi_blocked;
	bool nmi_pending;       /* taken from the lapic while blocked */
	bool irq_pending;       /* the lapic holds an interrupt (maybe masked) */

	struct x86_segment seg[SEG_COUNT];
	struct x86_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer;
	uint64_t dr[8];

	/* MSRs */
	uint64_t star, lstar, cstar, sfmask, kernel_gs_base, tsc_aux, pat;
	uint64_t misc_enable, sysenter_cs, sysenter_esp, sysenter_eip;
	uint64_t mtrr_def_type, mtrr_fixed[11], mtrr_var[16];
	uint64_t tsc_offset;   /* guest writes to IA32_TSC */
	uint64_t spec_ctrl;

	/* SSE */
	union xmm_reg xmm[16];
	uint32_t mxcsr;
	/* x87 / MMX: registers in physical order; ST(i) = fpr[(top+i)&7]. */
	long double fpr[8];
	uint64_t mmx[8];       /* MMX view, kept in sync with fpr via fpu_mmx_* */
	uint16_t fcw, fsw, ftw; /* ftw: 2 bits per register, 3 = empty */
	uint8_t ftop;
	uint16_t fop;
	uint64_t fip, fdp;

	/* exceptions */
	jmp_buf fault_jmp;
	int exc_vector;         /* the exception being raised */
	uint32_t exc_error;
	bool exc_has_error;
	int delivering;         /* nesting of exception delivery (for #DF) */
	int first_vector;

	/* TLB: [user][index] for read, write, exec */
	struct tlb_entry tlb_r[2][TLB_SIZE], tlb_w[2][TLB_SIZE], tlb_x[2][TLB_SIZE];
	/* Victims: the entry a fill displaced, found again on the next miss
	 * without a page walk (two hot pages 16 MiB apart share a slot). */
	struct tlb_entry tlbv_r[2][TLB_SIZE], tlbv_w[2][TLB_SIZE], tlbv_x[2][TLB_SIZE];
	uint64_t tlb_gen;       /* 1..4095, in the low bits of valid tags: a flush is gen++ */
	uint32_t code_epoch_seen;

	/* the board */
	struct machine *m;
	struct vcpu *v;
	struct lapic *lapic;
	uint64_t apic_page;     /* cached page of this vCPU's APIC (or ~0) */
	int pending;            /* set by lapic notify / kick (atomic) */
	uint64_t icount;

	/* per-vCPU decoded-block cache (see emu.c) */
	struct block *blocks;
	struct vblock *vblocks;
	const uint32_t *page_gen;   /* the machine's per-page generations */
	struct insn *arena;
	uint32_t arena_used;
	bool block_end;        /* stop the current block (mode, paging or code changed) */
	/* Threaded dispatch (see NEXT_INSN): the block's end, the last
	 * instruction run, the IP wrap mask of the code size. */
	const struct insn *stop, *last;
	const struct insn *blk_first; /* first instruction of the running block */
	unsigned chain_left;   /* blocks emu_chain may still enter before the loop runs */
	uint64_t ip_mask;
	struct jit *jit;       /* the JIT's code memory (jit.c), NULL if off */
	unsigned jit_chain_left; /* compiled blocks emu_jit_next may still enter */

	/* slow-path counters, printed with XVM_EMU_STATS */
	struct emu_stats {
		uint64_t fill[3];        /* TLB fills per access kind */
		uint64_t flush_all;      /* CR3 writes, mode changes */
		uint64_t flush_page;     /* INVLPG */
		uint64_t epoch_flush;    /* write TLB dropped: a page became code */
		uint64_t decode_blocks, decode_insns, decode_stale, arena_reset;
		uint64_t blocks;
	} st;
};

/* ------------------------------------------------------------------ */
/* Decoded instruction (decode.c) */

typedef void (*insn_fn)(struct emu_cpu *c, const struct insn *i);

enum { PFX_66 = 1, PFX_F2 = 2, PFX_F3 = 4, PFX_LOCK = 8 };

struct insn {
	insn_fn fn;            /* the handler (semantics of this instruction) */
	insn_fn run;           /* entry used by the loop: fn itself if it chains, else run_generic */
	uint64_t imm;          /* first immediate (sign-extended where the SDM says) */
	int64_t disp;
	uint16_t imm2;         /* ENTER's second, far pointer's selector */
	uint8_t len;
	uint8_t map;           /* 0: one byte, 1: 0F, 2: 0F38, 3: 0F3A */
	uint8_t op;            /* opcode byte in its map */
	uint8_t pfx;           /* PFX_* */
	uint8_t rex;           /* 0 if none */
	uint8_t osize;         /* operand size in bytes: 2, 4, 8 */
	uint8_t asize;         /* address size in bytes: 2, 4, 8 */
	uint8_t seg;           /* effective segment of the memory operand */
	uint8_t mod, reg, rm;  /* reg and rm extended by REX */
	uint8_t base, index;   /* 0xFF = none */
	uint8_t scale;         /* shift 0..3 */
	bool has_modrm;
	bool rip_rel;
	bool fused;            /* run also executes the next instruction (a Jcc) */
	bool seg_override;
	uint8_t bytes[8];      /* the first bytes, for logs and traces */
};

/* Threaded dispatch. On entry to a handler, c->rip is its instruction's
 * address and c->next_rip its successor's. A handler that falls through
 * ends with NEXT_INSN: it moves RIP on and jumps straight into the next
 * instruction's handler (a tail call, so each handler has its own
 * indirect jump and the host predicts it far better than one shared call
 * site in a loop). It returns to the loop at the block's end or when
 * something asked for it (block_end: code, mode or paging changed). A
 * handler that jumps ends with END_JUMP after setting next_rip. */
#define NEXT_INSN(c, i)                                                          \
	do {                                                                     \
		const struct insn *n_ = (i) + 1;                                 \
		(c)->rip = (c)->next_rip;                                        \
		if (__builtin_expect(n_ >= (c)->stop, 0)) {                      \
			(c)->last = (i);                                         \
			return;                                                  \
		}                                                                \
		(c)->next_rip = ((c)->rip + n_->len) & (c)->ip_mask;            \
		n_->run((c), n_);                                                \
		return;                                                          \
	} while (0)
#define END_JUMP(c, i)                       \
	do {                                 \
		(c)->rip = (c)->next_rip;    \
		(c)->last = (i);             \
		return;                      \
	} while (0)
/* The same, then straight into the target's block when it is in the
 * virtual-RIP cache and nothing waits (see emu_chain). */
#define CHAIN_JUMP(c, i)                     \
	do {                                 \
		emu_chain((c), (i));         \
		return;                      \
	} while (0)
void emu_chain(struct emu_cpu *c, const struct insn *i);
/* For compiled code leaving its block (c->rip and c->last set): the next
 * block when its compiled code may run at once (counted as entered),
 * else NULL. */
const struct block *emu_jit_next(struct emu_cpu *c);
/* Ends the running block after the current instruction: code, mode or
 * paging changed, or a device wants the loop to look at events. Clearing
 * stop makes NEXT_INSN return at once (one compare per instruction). */
static inline void end_block(struct emu_cpu *c)
{
	c->block_end = true;
	c->stop = NULL;
}
/* The chaining wrapper around handlers that do not chain themselves. */
void run_generic(struct emu_cpu *c, const struct insn *i);

/* Decoded blocks: straight-line runs of instructions inside one page,
 * decoded once and kept in a per-vCPU arena until it fills up. */
struct block {
	uint64_t key;          /* physical address of the first byte | mode bits */
	uint32_t gen;          /* page generation when decoded */
	uint32_t start;        /* index of the first instruction in the arena */
	uint32_t n;
	uint32_t page;         /* RAM page index (for the generation check) */
	/* A lone instruction that crosses into the next page also depends on
	 * that page's bytes: its RAM page and generation (else BLOCK_ONE_PAGE). */
	uint32_t page2, gen2;
	uint32_t hits;         /* entries counted by the JIT (jit.c) */
	void *jit;             /* its compiled code (a jit_fn), or NULL */
};

/* Virtual-RIP cache in front of the block table: a hit skips the fetch
 * TLB and the physical hash. Valid while the context is (same TLB
 * generation, so no CR3 write or INVLPG since; same CPL and code size)
 * and the block record still holds the same key with its page's current
 * generation. */
struct vblock {
	uint64_t lin;
	uint64_t ctx;
	uint64_t key;
	struct block *b;
};
#define VBLOCK_BITS 12
#define VBLOCK_SIZE (1u << VBLOCK_BITS)

#define BLOCK_MAX 48
#define BLOCK_ONE_PAGE UINT32_MAX
#define BLOCK_TABLE_BITS 18
#define BLOCK_TABLE_SIZE (1u << BLOCK_TABLE_BITS)
#define ARENA_INSNS (1u << 19)

/* Decodes one instruction from fetch() bytes. Returns 0, or raises #UD/#GP
 * through the fault path for undecodable bytes. */
void decode_insn(struct emu_cpu *c, struct insn *i);
/* The same for an instruction the guest has not reached yet (decoding a
 * block ahead): never faults and never reads past the page of RIP.
 * Returns false if the instruction could not be decoded that way. */
bool decode_insn_ahead(struct emu_cpu *c, struct insn *i);
/* Swaps in a specialised handler for common forms (fast.c). Returns
 * true if it did (those handlers chain: NEXT_INSN / END_JUMP). */
bool fast_specialize(struct emu_cpu *c, struct insn *i);
/* Can the block decoder follow this direct JMP/CALL? Then its handler
 * becomes fast_jmp_inline / fast_call_inline. */
bool fast_inline_branch(const struct emu_cpu *c, const struct insn *i);
void fast_jmp_inline(struct emu_cpu *c, const struct insn *i);
void fast_call_inline(struct emu_cpu *c, const struct insn *i);
/* A handler running i (CMP/TEST) and the Jcc at i + 1 together, or NULL.
 * The block decoder installs it as i->run with i->fused set. */
insn_fn fast_fuse_jcc(const struct insn *i);
/* A flag-less handler for i when the instruction after it overwrites
 * every flag i sets without reading them, or NULL (installed as i->run). */
insn_fn fast_dead_flags(const struct insn *i);
extern bool emu_no_fast_paths;

/* ------------------------------------------------------------------ */
/* Faults (fault.c / sys.c) */

_Noreturn void raise_exc(struct emu_cpu *c, int vector);
_Noreturn void raise_exc_err(struct emu_cpu *c, int vector, uint32_t error);
#define raise_ud(c) raise_exc(c, EXC_UD)
#define raise_gp0(c) raise_exc_err(c, EXC_GP, 0)

/* Delivers an exception or interrupt through the IDT/IVT. */
void deliver_event(struct emu_cpu *c, int vector, bool has_error, uint32_t error,
		   bool software, uint64_t return_rip);

/* ------------------------------------------------------------------ */
/* Memory (mem.c) */

void tlb_flush_all(struct emu_cpu *c, bool keep_global);
void tlb_flush_page(struct emu_cpu *c, uint64_t vaddr);
/* Slow paths (TLB miss, MMIO, page crossing). */
uint64_t mem_read_slow(struct emu_cpu *c, uint64_t lin, unsigned size, int acc);
void mem_write_slow(struct emu_cpu *c, uint64_t lin, unsigned size, uint64_t v);
/* A host pointer for an aligned-or-not access of size bytes at lin that
 * stays inside one RAM page, for atomics; NULL if MMIO or page-crossing.
 * Faults like a write. */
void *mem_host_ptr_rw(struct emu_cpu *c, uint64_t lin, unsigned size);
void *mem_host_ptr_ro(struct emu_cpu *c, uint64_t lin, unsigned size);
/* Translates lin for access acc at the current CPL, raising #PF. */
uint64_t translate(struct emu_cpu *c, uint64_t lin, int acc, bool user);
/* Physical accesses (page walks, descriptor tables use linear -> these). */
uint64_t phys_read(struct emu_cpu *c, uint64_t gpa, unsigned size);
void phys_write(struct emu_cpu *c, uint64_t gpa, unsigned size, uint64_t v);
/* Code-page tracking for the instruction cache. */
void code_page_mark(struct emu_cpu *c, uint64_t gpa);
uint32_t code_page_gen(struct machine *m, uint64_t gpa);
uint32_t ram_page_of(struct machine *m, uint64_t gpa); /* gpa must be RAM */
void emu_ram_written(void *opaque, uint64_t gpa, uint64_t len);
int emu_mem_init(struct machine *m);
void emu_mem_destroy(struct machine *m);

static inline bool cpl_user(const struct emu_cpu *c)
{
	return c->cpl == 3;
}

static inline uint64_t lin_mask(const struct emu_cpu *c, uint64_t lin)
{
	return c->long_mode ? lin : (uint32_t)lin;
}

static inline uint64_t mem_read_lin(struct emu_cpu *c, uint64_t lin, unsigned size)
{
	unsigned u = cpl_user(c);
	struct tlb_entry *e = &c->tlb_r[u][(lin >> 12) & (TLB_SIZE - 1)];
	if (__builtin_expect(e->tag == ((lin & ~0xFFFULL) | c->tlb_gen) && (lin & 0xFFF) <= 4096 - size, 1)) {
		uint8_t *p = (uint8_t *)(uintptr_t)(lin + e->addend);
		switch (size) {
		case 1: return *p;
		case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
		case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
		default: { uint64_t v; memcpy(&v, p, 8); return v; }
		}
	}
	return mem_read_slow(c, lin, size, ACC_READ);
}

static inline void mem_write_lin(struct emu_cpu *c, uint64_t lin, unsigned size, uint64_t v)
{
	unsigned u = cpl_user(c);
	struct tlb_entry *e = &c->tlb_w[u][(lin >> 12) & (TLB_SIZE - 1)];
	if (__builtin_expect(e->tag == ((lin & ~0xFFFULL) | c->tlb_gen) && (lin & 0xFFF) <= 4096 - size, 1)) {
		uint8_t *p = (uint8_t *)(uintptr_t)(lin + e->addend);
		switch (size) {
		case 1: *p = (uint8_t)v; return;
		case 2: { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); return; }
		case 4: { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); return; }
		default: memcpy(p, &v, 8); return;
		}
	}
	mem_write_slow(c, lin, size, v);
}

/* Segment:offset to linear (no limit checks in 64-bit mode; flat
 * segments are what every guest we run uses, so limits are checked
 * only in real/16-bit code where wraparound matters). */
static inline uint64_t seg_lin(const struct emu_cpu *c, int seg, uint64_t off)
{
	if (c->code64)
		return (seg >= SEG_FS) ? c->seg[seg].base + off : off;
	return (uint32_t)(c->seg[seg].base + off);
}

static inline uint64_t mem_read(struct emu_cpu *c, int seg, uint64_t off, unsigned size)
{
	return mem_read_lin(c, seg_lin(c, seg, off), size);
}
static inline void mem_write(struct emu_cpu *c, int seg, uint64_t off, unsigned size, uint64_t v)
{
	mem_write_lin(c, seg_lin(c, seg, off), size, v);
}
/* Supervisor-privilege (implicit) accesses: descriptor tables, TSS. */
uint64_t mem_read_sys(struct emu_cpu *c, uint64_t lin, unsigned size);
void mem_write_sys(struct emu_cpu *c, uint64_t lin, unsigned size, uint64_t v);
void mem_read_bytes(struct emu_cpu *c, int seg, uint64_t off, void *buf, unsigned n);
void mem_write_bytes(struct emu_cpu *c, int seg, uint64_t off, const void *buf, unsigned n);

/* ------------------------------------------------------------------ */
/* Flags (flags.c) */

uint32_t flags_compute(const struct emu_cpu *c);
static inline uint64_t get_rflags(struct emu_cpu *c)
{
	return (c->rflags & ~(uint64_t)FL_ARITH) | flags_compute(c) | 2;
}
/* Replaces the arithmetic flags (the rest of rflags is untouched). */
static inline void set_arith_flags(struct emu_cpu *c, uint32_t f)
{
	c->cc_op = CC_EAGER;
	c->cc_res = f & FL_ARITH;
}
static inline bool get_cf(struct emu_cpu *c)
{
	return flags_compute(c) & FL_CF;
}
bool cond_true(struct emu_cpu *c, unsigned cc);
void set_rflags(struct emu_cpu *c, uint64_t v, uint64_t changeable);

static inline uint64_t size_mask(unsigned size)
{
	return size == 8 ? ~0ULL : (1ULL << (size * 8)) - 1;
}

/* ------------------------------------------------------------------ */
/* Registers */

static inline uint64_t reg_read(const struct emu_cpu *c, unsigned r, unsigned size, bool rex)
{
	if (size == 1 && !rex && r >= 4 && r < 8)
		return (c->r[r - 4] >> 8) & 0xFF;
	return c->r[r] & size_mask(size);
}

static inline void reg_write(struct emu_cpu *c, unsigned r, unsigned size, bool rex, uint64_t v)
{
	switch (size) {
	case 1:
		if (!rex && r >= 4 && r < 8)
			c->r[r - 4] = (c->r[r - 4] & ~0xFF00ULL) | ((v & 0xFF) << 8);
		else
			c->r[r] = (c->r[r] & ~0xFFULL) | (v & 0xFF);
		break;
	case 2: c->r[r] = (c->r[r] & ~0xFFFFULL) | (v & 0xFFFF); break;
	case 4: c->r[r] = (uint32_t)v; break;
	default: c->r[r] = v; break;
	}
}

/* Effective address of the ModRM memory operand (offset in its segment). */
static inline uint64_t insn_ea(const struct emu_cpu *c, const struct insn *i)
{
	uint64_t a = (uint64_t)i->disp;
	if (i->rip_rel)
		a += c->next_rip;
	if (i->base != 0xFF)
		a += c->r[i->base];
	if (i->index != 0xFF)
		a += c->r[i->index] << i->scale;
	if (i->asize == 4)
		a = (uint32_t)a;
	else if (i->asize == 2)
		a = (uint16_t)a;
	return a;
}

/* The r/m operand of size bytes (register or memory). */
static inline uint64_t rm_read(struct emu_cpu *c, const struct insn *i, unsigned size)
{
	if (i->mod == 3)
		return reg_read(c, i->rm, size, i->rex);
	return mem_read(c, i->seg, insn_ea(c, i), size);
}
static inline void rm_write(struct emu_cpu *c, const struct insn *i, unsigned size, uint64_t v)
{
	if (i->mod == 3)
		reg_write(c, i->rm, size, i->rex, v);
	else
		mem_write(c, i->seg, insn_ea(c, i), size, v);
}

/* Stack */
static inline unsigned stack_size(const struct emu_cpu *c)
{
	return c->code64 ? 8 : c->stack32 ? 4 : 2;
}
static inline uint64_t sp_mask(const struct emu_cpu *c)
{
	return c->code64 ? ~0ULL : c->stack32 ? 0xFFFFFFFFULL : 0xFFFFULL;
}
void push(struct emu_cpu *c, unsigned size, uint64_t v);
uint64_t pop(struct emu_cpu *c, unsigned size);
static inline void set_sp(struct emu_cpu *c, uint64_t v)
{
	uint64_t m = sp_mask(c);
	c->r[R_RSP] = (c->r[R_RSP] & ~m) | (v & m);
}

/* ------------------------------------------------------------------ */
/* Executors: handler tables filled by each file. */

extern insn_fn op_table1[256];   /* one-byte map */
extern insn_fn op_table2[256];   /* 0F map */
extern insn_fn op_table38[256];
extern insn_fn op_table3a[256];
void exec_int_init(void);
void exec_0f_init(void);
void exec_sse_init(void);
void exec_x87_init(void);
void exec_sys_init(void);
_Noreturn void insn_ud(struct emu_cpu *c, const struct insn *i);

/* System (sys.c) */
void cpu_reset(struct emu_cpu *c, bool bsp);
void cpu_update_mode(struct emu_cpu *c);
void load_seg_real(struct emu_cpu *c, int seg, uint16_t sel);
void load_seg(struct emu_cpu *c, int seg, uint16_t sel);    /* mode-aware MOV Sreg semantics */
void far_jump(struct emu_cpu *c, uint16_t sel, uint64_t off, bool call, unsigned osize);
void far_return(struct emu_cpu *c, unsigned osize, uint16_t pop_extra);
void do_iret(struct emu_cpu *c, unsigned osize);
void write_cr(struct emu_cpu *c, int n, uint64_t v);
uint64_t read_cr(struct emu_cpu *c, int n);
int msr_read(struct emu_cpu *c, uint32_t msr, uint64_t *v);
int msr_write(struct emu_cpu *c, uint32_t msr, uint64_t v);
void do_cpuid(struct emu_cpu *c);
uint64_t cpu_tsc(struct emu_cpu *c);
void do_hlt(struct emu_cpu *c);
/* Port I/O with the IOPL/TSS permission check. */
uint64_t port_in(struct emu_cpu *c, uint16_t port, unsigned size);
void port_out(struct emu_cpu *c, uint16_t port, unsigned size, uint64_t v);

/* x87/SSE helpers shared by FXSAVE */
void fpu_init(struct emu_cpu *c);
void fxsave(struct emu_cpu *c, uint8_t *buf);
void fxrstor(struct emu_cpu *c, const uint8_t *buf);
uint16_t fpu_full_tags(const struct emu_cpu *c);
void check_sse(struct emu_cpu *c);

/* Test hooks (emu.c) */
struct emu_cpu *emu_test_cpu(struct vcpu *v);
int emu_test_step(struct vcpu *v);
int emu_test_run_block(struct vcpu *v);

/* Trace ring (XVM_EMU_TRACE) */
extern bool emu_trace_enabled;
void emu_trace_dump(struct emu_cpu *c);

#endif
