/* The software x86-64 CPU engine (`--accel emu`): the accel_ops glue, the
 * per-vCPU execution loop (decoded-instruction cache, interrupts, HLT
 * sleep, INIT/SIPI) and the fault entry point. */
#include "accel/accel.h"
#include "accel/emu/cpu.h"
#include "accel/emu/emu_priv.h"
#include "accel/emu/jit.h"
#include "hw/lapic.h"
#include "hw/platform.h"
#include "lib/log.h"
#include "lib/util.h"
#include "machine/machine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

bool emu_trace_enabled;
static bool emu_stats_enabled;

static bool emu_probe(char *why, size_t len)
{
	(void)why;
	(void)len;
	return true; /* runs anywhere */
}

static int emu_vm_init(struct machine *m)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	void emu_tables_init(void);
	pthread_once(&once, emu_tables_init);
	struct emu_machine *em = xcalloc(1, sizeof(*em));
	m->accel_priv = em;
	if (emu_mem_init(m) < 0) {
		log_err("emu: cannot allocate code-page tracking");
		return -1;
	}
	int r = platform_init(m);
	if (r < 0) {
		log_err("emu: cannot create the interrupt controllers and timers: %s", strerror(-r));
		return -1;
	}
	emu_trace_enabled = getenv("XVM_EMU_TRACE") != NULL;
	emu_stats_enabled = getenv("XVM_EMU_STATS") != NULL;
	return 0;
}

static void emu_vm_destroy(struct machine *m)
{
	if (!m->accel_priv)
		return;
	platform_destroy(m);
	emu_mem_destroy(m);
	m->ram.written = NULL;
	free(m->accel_priv);
	m->accel_priv = NULL;
}

static void emu_notify(void *opaque)
{
	struct emu_vcpu *ev = opaque;
	__atomic_store_n(&ev->cpu->pending, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&ev->lock);
	pthread_cond_broadcast(&ev->wake);
	pthread_mutex_unlock(&ev->lock);
}

static void refresh_apic_page(struct emu_cpu *c)
{
	c->apic_page = (c->lapic && lapic_apic_base_enabled(c->lapic)) ? lapic_get_apic_base(c->lapic) : ~0ULL;
}

static int emu_vcpu_init(struct vcpu *v)
{
	struct emu_vcpu *ev = xcalloc(1, sizeof(*ev));
	struct emu_cpu *c;
	if (posix_memalign((void **)&c, 64, sizeof(*c)))
		die("out of memory");
	/* The TLBs, block tables and decoded-instruction arena are tens of
	 * MiB touched at random: huge pages make that a few faults instead
	 * of thousands (and fewer host TLB misses on the hot path). */
	advise_huge(c, sizeof(*c));
	memset(c, 0, sizeof(*c));
	c->blocks = calloc(BLOCK_TABLE_SIZE, sizeof(*c->blocks));
	c->vblocks = calloc(VBLOCK_SIZE, sizeof(*c->vblocks));
	c->arena = calloc(ARENA_INSNS, sizeof(*c->arena));
	c->page_gen = ((struct emu_machine *)v->m->accel_priv)->page_gen;
	if (!c->blocks || !c->vblocks || !c->arena)
		die("out of memory");
	advise_huge(c->blocks, BLOCK_TABLE_SIZE * sizeof(*c->blocks));
	advise_huge(c->vblocks, VBLOCK_SIZE * sizeof(*c->vblocks));
	advise_huge(c->arena, ARENA_INSNS * sizeof(*c->arena));
	ev->cpu = c;
	pthread_mutex_init(&ev->lock, NULL);
	pthread_cond_init(&ev->wake, NULL);
	c->m = v->m;
	c->v = v;
	c->tlb_gen = 1;
	if (!emu_no_fast_paths)
		c->jit = jit_new(); /* unless XVM_EMU_JIT=0 */
	v->accel = ev;
	cpu_reset(c, v->index == 0);
	c->lapic = lapic_new(v);
	if (!c->lapic)
		return -1;
	v->lapic = c->lapic;
	lapic_set_notify(c->lapic, emu_notify, ev);
	refresh_apic_page(c);
	/* Everyone but the BSP waits for INIT/SIPI; set_state starts the BSP. */
	c->wait_sipi = v->index != 0;
	return 0;
}

static void emu_vcpu_destroy(struct vcpu *v)
{
	struct emu_vcpu *ev = v->accel;
	if (!ev)
		return;
	if (ev->cpu->lapic)
		lapic_free(ev->cpu->lapic);
	v->lapic = NULL;
	free(ev->cpu->blocks);
	free(ev->cpu->vblocks);
	free(ev->cpu->arena);
	jit_free(ev->cpu->jit);
	free(ev->cpu);
	pthread_mutex_destroy(&ev->lock);
	pthread_cond_destroy(&ev->wake);
	free(ev);
	v->accel = NULL;
}

static int emu_get_state(struct vcpu *v, struct x86_cpu_state *s)
{
	struct emu_cpu *c = ((struct emu_vcpu *)v->accel)->cpu;
	memset(s, 0, sizeof(*s));
	memcpy(s->gpr, c->r, sizeof(s->gpr));
	s->rip = c->rip;
	s->rflags = get_rflags(c);
	memcpy(s->seg, c->seg, sizeof(s->seg));
	s->gdt = c->gdt;
	s->idt = c->idt;
	s->cr0 = c->cr0;
	s->cr2 = c->cr2;
	s->cr3 = c->cr3;
	s->cr4 = c->cr4;
	s->cr8 = c->lapic ? lapic_get_tpr(c->lapic) : c->cr8;
	s->efer = c->efer;
	uint64_t base = 0;
	if (c->lapic)
		lapic_msr_read(c->lapic, MSR_IA32_APIC_BASE, &base);
	s->apic_base = base;
	return 0;
}

static int emu_set_state(struct vcpu *v, const struct x86_cpu_state *s)
{
	struct emu_cpu *c = ((struct emu_vcpu *)v->accel)->cpu;
	memcpy(c->r, s->gpr, sizeof(c->r));
	c->rip = s->rip;
	c->rflags = (s->rflags & 0x3F7FD7ULL) | 2;
	set_arith_flags(c, (uint32_t)s->rflags);
	memcpy(c->seg, s->seg, sizeof(c->seg));
	c->gdt = s->gdt;
	c->idt = s->idt;
	c->cr0 = s->cr0 | X86_CR0_ET;
	c->cr2 = s->cr2;
	c->cr3 = s->cr3;
	c->cr4 = s->cr4;
	c->cr8 = s->cr8;
	c->efer = s->efer;
	if ((c->efer & X86_EFER_LME) && (c->cr0 & X86_CR0_PG))
		c->efer |= X86_EFER_LMA;
	c->cpl = (c->cr0 & X86_CR0_PE) ? (s->seg[SEG_CS].selector & 3) : 0;
	if (c->cr0 & X86_CR0_PE)
		c->cpl = s->seg[SEG_CS].dpl;
	cpu_update_mode(c);
	tlb_flush_all(c, false);
	c->wait_sipi = false;
	c->halted = false;
	return 0;
}

static void emu_vcpu_kick(struct vcpu *v)
{
	struct emu_vcpu *ev = v->accel;
	if (ev)
		emu_notify(ev);
}

static void emu_set_irq(struct machine *m, unsigned gsi, int level)
{
	platform_set_irq(m, gsi, level);
}

static void emu_send_msi(struct machine *m, uint64_t addr, uint32_t data)
{
	platform_send_msi(m, addr, data);
}

static int emu_no_fd(struct machine *m, bool pio, uint64_t addr, unsigned len, int fd)
{
	return -ENOTSUP;
}

static int emu_no_irqfd(struct machine *m, unsigned gsi, int fd)
{
	return -ENOTSUP;
}

/* ------------------------------------------------------------------ */
/* Execution loop */

void emu_tables_init(void)
{
	exec_int_init();
	exec_0f_init();
	exec_sse_init();
	exec_x87_init();
	for (int k = 0; k < 256; k++) {
		if (!op_table1[k])
			op_table1[k] = insn_ud;
		if (!op_table2[k])
			op_table2[k] = insn_ud;
		if (!op_table38[k])
			op_table38[k] = insn_ud;
		if (!op_table3a[k])
			op_table3a[k] = insn_ud;
	}
}

void do_hlt(struct emu_cpu *c)
{
	c->halted = true;
	end_block(c);
}

static void check_code_epoch(struct emu_cpu *c)
{
	struct emu_machine *em = c->m->accel_priv;
	uint32_t e = __atomic_load_n(&em->code_epoch, __ATOMIC_ACQUIRE);
	if (e != c->code_epoch_seen) {
		c->code_epoch_seen = e;
		c->st.epoch_flush++;
		memset(c->tlb_w, 0, sizeof(c->tlb_w));
		memset(c->tlbv_w, 0, sizeof(c->tlbv_w));
	}
}

static void start_from_sipi(struct emu_cpu *c, int vector)
{
	cpu_reset(c, false);
	c->seg[SEG_CS].selector = (uint16_t)(vector << 8);
	c->seg[SEG_CS].base = (uint64_t)vector << 12;
	c->rip = 0;
	c->wait_sipi = false;
	cpu_update_mode(c);
}

/* Handles whatever the lapic flagged. Returns true if the loop must stop. */
static bool service_events(struct emu_cpu *c)
{
	__atomic_store_n(&c->pending, 0, __ATOMIC_SEQ_CST);
	if (machine_should_stop(c->m))
		return true;
	check_code_epoch(c);
	if (!c->lapic)
		return false;
	bool init = false;
	int sipi = -1;
	if (lapic_take_init_sipi(c->lapic, &init, &sipi)) {
		if (init) {
			cpu_reset(c, c->v->index == 0);
			c->wait_sipi = true;
			refresh_apic_page(c);
		}
		if (sipi >= 0 && c->wait_sipi)
			start_from_sipi(c, sipi);
	}
	if (c->wait_sipi)
		return false;
	if (lapic_take_nmi(c->lapic))
		c->nmi_pending = true;
	if (c->nmi_pending && !c->nmi_blocked) {
		c->nmi_pending = false;
		c->nmi_blocked = true;
		c->halted = false;
		deliver_event(c, EXC_NMI, false, 0, false, c->rip);
		return false;
	}
	if (lapic_has_interrupt(c->lapic)) {
		c->irq_pending = true;
		if ((c->rflags & FL_IF) && !c->int_shadow) {
			int vec = lapic_get_interrupt(c->lapic);
			c->irq_pending = lapic_has_interrupt(c->lapic);
			if (vec >= 0) {
				c->halted = false;
				deliver_event(c, vec, false, 0, false, c->rip);
			}
		}
	} else {
		c->irq_pending = false;
	}
	return false;
}

/* Does decoding stop after this instruction? Unconditional transfers,
 * and anything after which the next bytes may not be code or may be
 * decoded differently. Conditional branches do not end a block: the
 * loop leaves it when one is taken. */
static bool ends_block(const struct insn *i)
{
	if (i->fn == insn_ud)
		return true;
	if (i->map == 0) {
		switch (i->op) {
		case 0x9A: case 0xC2: case 0xC3: case 0xCA: case 0xCB: case 0xCC: case 0xCD:
		case 0xCE: case 0xCF: case 0xE8: case 0xE9: case 0xEA: case 0xEB: case 0xF4:
		case 0x8E: case 0x17: case 0x9D: case 0xFB:
			return true;
		case 0xFF:
			return (i->reg & 7) >= 2 && (i->reg & 7) <= 5;
		default:
			return false;
		}
	}
	if (i->map == 1) {
		switch (i->op) {
		case 0x00: case 0x01: case 0x05: case 0x07: case 0x0B: case 0x22: case 0x30:
		case 0x34: case 0x35: case 0xAE: case 0xB2: case 0xB4: case 0xB5: case 0xA1: case 0xA9:
			return true;
		default:
			return false;
		}
	}
	return false;
}

/* Is the second page of a page-crossing block still what it was? Its
 * bytes are unchanged (generation) and, when asked, lin's next page still
 * maps to it (the physical key names only the first page). */
static inline bool page2_valid(struct emu_cpu *c, const struct block *b, uint64_t lin, bool check_map)
{
	if (__builtin_expect(b->page2 == BLOCK_ONE_PAGE, 1))
		return true;
	if (b->gen2 != __atomic_load_n(&c->page_gen[b->page2], __ATOMIC_ACQUIRE))
		return false;
	if (!check_map)
		return true;
	uint64_t gpa2 = fetch_gpa(c, lin_mask(c, (lin | 0xFFF) + 1));
	return gpa_to_hva(&c->m->ram, gpa2, 1) && ram_page_of(c->m, gpa2) == b->page2;
}

/* Finds or decodes the block at RIP. *scratch receives a lone
 * instruction that is not in RAM, or crosses into a page that is not
 * (never cached). An instruction that crosses into a RAM page is a
 * block of its own, valid while both pages are (a hot function with an
 * instruction across a page boundary would otherwise be decoded again
 * at every call). */
static const struct block *lookup_block(struct emu_cpu *c, struct block *scratch_blk, struct insn *scratch)
{
	uint64_t lin = lin_mask(c, seg_lin(c, SEG_CS, c->rip));
	uint64_t gpa = fetch_gpa(c, lin);
	uint64_t key = gpa | ((uint64_t)(c->code64 | (c->code32 << 1)) << 60) | (1ULL << 59);
	struct block *b = &c->blocks[(gpa ^ (gpa >> BLOCK_TABLE_BITS)) & (BLOCK_TABLE_SIZE - 1)];
	if (b->key == key && b->gen == code_page_gen(c->m, gpa) && page2_valid(c, b, lin, true))
		return b;
	c->st.decode_blocks++;
	if (b->key == key)
		c->st.decode_stale++;
	if (!gpa_to_hva(&c->m->ram, gpa, 1)) {
		decode_insn(c, scratch);
		goto uncached;
	}
	if (c->arena_used + BLOCK_MAX > ARENA_INSNS) {
		memset(c->blocks, 0, BLOCK_TABLE_SIZE * sizeof(*c->blocks));
		c->arena_used = 0;
		c->st.arena_reset++;
	}
	/* The first instruction may fault or cross into the next page: it
	 * is the one the guest executes now. The rest are decoded ahead. */
	code_page_mark(c, gpa); /* before reading the bytes: a racing write bumps gen */
	uint32_t gen = code_page_gen(c->m, gpa);
	struct insn *first = &c->arena[c->arena_used];
	decode_insn(c, first);
	uint32_t page2 = BLOCK_ONE_PAGE, gen2 = 0;
	if ((lin & 0xFFF) + first->len > 4096) {
		uint64_t gpa2 = fetch_gpa(c, lin_mask(c, (lin | 0xFFF) + 1)); /* decode_insn read it */
		if (!gpa_to_hva(&c->m->ram, gpa2, 1)) {
			*scratch = *first;
			goto uncached;
		}
		/* mark, then decode again: the bytes read are covered by gen2 */
		code_page_mark(c, gpa2);
		gen2 = code_page_gen(c->m, gpa2);
		page2 = ram_page_of(c->m, gpa2);
		decode_insn(c, first);
	}
	b->key = 0;
	b->jit = NULL;
	b->hits = 0;
	b->page2 = page2;
	b->gen2 = gen2;
	b->start = c->arena_used;
	b->n = 1;
	uint64_t save_rip = c->rip, rip = c->rip + first->len;
	struct insn *last = first;
	while (page2 == BLOCK_ONE_PAGE && b->n < BLOCK_MAX) {
		if (ends_block(last)) {
			/* A direct JMP/CALL to the same page: go on decoding at
			 * its target (the page generation covers those bytes). */
			uint64_t t = rip + last->imm;
			if (!fast_inline_branch(c, last) || (t >> 12) != (lin >> 12))
				break;
			last->fn = last->run = last->op == 0xE8 ? fast_call_inline : fast_jmp_inline;
			rip = t;
		}
		uint64_t l = lin_mask(c, seg_lin(c, SEG_CS, rip));
		if ((l >> 12) != (lin >> 12))
			break;
		struct insn *i = &c->arena[b->start + b->n];
		c->rip = rip;
		if (!decode_insn_ahead(c, i))
			break;
		b->n++;
		rip += i->len;
		last = i;
	}
	c->rip = save_rip;
	if (!emu_no_fast_paths) {
		for (uint32_t k = b->start; k + 1 < b->start + b->n; k++) {
			insn_fn f = fast_fuse_jcc(&c->arena[k]);
			if (f) {
				c->arena[k].run = f;
				c->arena[k].fused = true;
			} else if ((f = fast_dead_flags(&c->arena[k]))) {
				c->arena[k].run = f;
			}
		}
	}
	c->st.decode_insns += b->n;
	c->arena_used += b->n;
	b->gen = gen;
	b->page = ram_page_of(c->m, gpa);
	b->key = key;
	return b;
uncached:
	scratch_blk->n = 1;
	scratch_blk->start = UINT32_MAX;
	return scratch_blk;
}

/* Trace ring (XVM_EMU_TRACE=1): the last instructions, printed on stop. */
#define TRACE_RING 64
static __thread struct { uint64_t rip; uint8_t bytes[8]; } trace_ring[TRACE_RING];
static __thread unsigned trace_pos;

void emu_trace_dump(struct emu_cpu *c)
{
	fprintf(stderr, "last %d instructions (oldest first):\n", TRACE_RING);
	for (unsigned k = 0; k < TRACE_RING; k++) {
		unsigned p = (trace_pos + k) % TRACE_RING;
		fprintf(stderr, "  %016llx:", (unsigned long long)trace_ring[p].rip);
		for (int b = 0; b < 8; b++)
			fprintf(stderr, " %02x", trace_ring[p].bytes[b]);
		fprintf(stderr, "\n");
	}
}

static inline uint64_t exec_ctx(const struct emu_cpu *c)
{
	return c->tlb_gen | (uint64_t)c->cpl << 12 | (uint64_t)c->code64 << 14 | (uint64_t)c->code32 << 15;
}

static inline struct vblock *vblock_slot(struct emu_cpu *c, uint64_t lin)
{
	return &c->vblocks[(lin ^ (lin >> VBLOCK_BITS)) & (VBLOCK_SIZE - 1)];
}

/* The still-valid block the virtual-RIP cache holds for lin, or NULL. */
static inline const struct block *vblock_hit(struct emu_cpu *c, uint64_t lin)
{
	const struct vblock *v = vblock_slot(c, lin);
	if (__builtin_expect(v->lin == lin && v->ctx == exec_ctx(c), 1)) {
		const struct block *b = v->b;
		if (__builtin_expect(b->key == v->key &&
				     b->gen == __atomic_load_n(&c->page_gen[b->page], __ATOMIC_ACQUIRE) &&
				     page2_valid(c, b, lin, false), 1))
			return b;
	}
	return NULL;
}

/* The block at RIP: the virtual-RIP cache first, then the block table. */
static inline const struct block *find_block(struct emu_cpu *c, struct block *scratch_blk, struct insn *scratch)
{
	uint64_t lin = lin_mask(c, seg_lin(c, SEG_CS, c->rip));
	const struct block *b = vblock_hit(c, lin);
	if (b)
		return b;
	struct vblock *v = vblock_slot(c, lin);
	uint64_t ctx = exec_ctx(c);
	b = lookup_block(c, scratch_blk, scratch);
	if (b != scratch_blk) {
		v->lin = lin;
		v->ctx = ctx;
		v->key = b->key;
		v->b = (struct block *)b;
	}
	return b;
}

/* Ends a block at a jump from a fast handler (64-bit code) and, when
 * the target's block is cached and valid and no event waits, runs it
 * directly: the loop's event checks and lookup are skipped for up to
 * chain_left blocks. The loop's own checks then run as usual. */
void emu_chain(struct emu_cpu *c, const struct insn *i)
{
	c->rip = c->next_rip;
	c->last = i;
	if (--c->chain_left == 0 || c->block_end ||
	    (__atomic_load_n(&c->pending, __ATOMIC_RELAXED) | c->irq_pending))
		return;
	const struct block *b = vblock_hit(c, c->rip); /* 64-bit: lin == rip */
	if (!b)
		return;
	c->icount += (uint64_t)(i - c->blk_first + 1);
	c->st.blocks++;
	const struct insn *first = &c->arena[b->start];
	c->blk_first = first;
	if (c->jit && !b->jit) /* no compiled code on the stack here: it chains with chain_left 1 */
		jit_block_entered(c, (struct block *)b);
	if (b->jit && !(c->rflags & FL_TF)) {
		c->jit_chain_left = c->chain_left;
		((jit_fn)b->jit)(c);
		return;
	}
	c->stop = first + b->n;
	c->next_rip = c->rip + first->len;
	first->run(c, first);
}

const struct block *emu_jit_next(struct emu_cpu *c)
{
	if (--c->jit_chain_left == 0 || c->block_end || c->int_shadow || (c->rflags & FL_TF) ||
	    (__atomic_load_n(&c->pending, __ATOMIC_RELAXED) | c->irq_pending))
		return NULL;
	const struct block *b = vblock_hit(c, c->rip); /* 64-bit: lin == rip */
	if (!b || !b->jit)
		return NULL;
	c->icount += (uint64_t)(c->last - c->blk_first + 1);
	c->st.blocks++;
	c->blk_first = c->last = &c->arena[b->start];
	return b;
}

void run_generic(struct emu_cpu *c, const struct insn *i)
{
	uint64_t next = c->next_rip;
	i->fn(c, i);
	if (c->next_rip != next)
		END_JUMP(c, i);
	NEXT_INSN(c, i);
}

/* Runs one block's instructions; returns how many ran. A handler that
 * jumps, faults (longjmp) or sets block_end leaves it early. */
static inline unsigned run_block(struct emu_cpu *c, const struct insn *i, const struct insn *end, bool trace)
{
	c->ip_mask = c->code64 ? ~0ULL : c->code32 ? 0xFFFFFFFFULL : 0xFFFFULL;
	c->block_end = false;
	/* STI, MOV SS and POP SS end their block, so the interrupt shadow
	 * they set covers the event check before the next block. */
	c->int_shadow = false;
	if (!trace) {
		c->stop = end;
		c->blk_first = i;
		c->chain_left = 64;
		c->next_rip = (c->rip + i->len) & c->ip_mask;
		i->run(c, i);
		return (unsigned)(c->last - c->blk_first + 1);
	}

	/* one instruction at a time, recording each */
	const struct insn *start = i;
	for (; i < end; i++) {
		uint64_t next = (c->rip + i->len) & c->ip_mask;
		trace_ring[trace_pos].rip = c->rip;
		memcpy(trace_ring[trace_pos].bytes, i->bytes, 8);
		trace_pos = (trace_pos + 1) % TRACE_RING;
		c->stop = i + 1;
		c->blk_first = i;
		c->chain_left = 1; /* one instruction at a time */
		c->next_rip = next;
		if (i->fused)
			i->fn(c, i); /* one at a time: the compare alone */
		else
			i->run(c, i);
		if (c->rip != next || c->block_end)
			return (unsigned)(i + 1 - start);
	}
	return (unsigned)(i - start);
}

/* Runs b's compiled code (64-bit code, no trace, TF clear); returns how
 * many instructions ran (the code counts its loops itself). */
static unsigned run_jit(struct emu_cpu *c, const struct block *b)
{
	const struct insn *i = &c->arena[b->start];
	c->ip_mask = ~0ULL;
	c->block_end = false;
	c->int_shadow = false;
	c->blk_first = i;
	c->last = i;
	c->jit_chain_left = 64;
	((jit_fn)b->jit)(c);
	return (unsigned)(c->last - c->blk_first + 1);
}

static void execute(struct emu_cpu *c)
{
	struct insn scratch;
	struct block scratch_blk;
	unsigned budget = 1024;
	for (;;) {
		if (__builtin_expect(__atomic_load_n(&c->pending, __ATOMIC_RELAXED) |
				     (c->irq_pending & !!(c->rflags & FL_IF) & !c->int_shadow), 0)) {
			if (service_events(c))
				return;
		}
		if (c->halted || c->wait_sipi)
			return;
		const struct block *b = find_block(c, &scratch_blk, &scratch);
		const struct insn *i = b->start == UINT32_MAX ? &scratch : &c->arena[b->start];
		unsigned n;
		if (c->jit && b != &scratch_blk && !emu_trace_enabled && !(c->rflags & FL_TF)) {
			if (!b->jit)
				jit_block_entered(c, (struct block *)b);
			if (b->jit) {
				n = run_jit(c, b);
				goto ran;
			}
		}
		if (__builtin_expect(emu_trace_enabled, 0))
			n = run_block(c, i, i + b->n, true);
		else
			n = run_block(c, i, i + b->n, false);
ran:
		c->icount += n;
		c->st.blocks++;
		if (__builtin_expect(--budget == 0, 0)) {
			budget = 1024;
			if (machine_should_stop(c->m))
				return;
			check_code_epoch(c);
		}
	}
}

static void wait_for_event(struct emu_vcpu *ev)
{
	struct emu_cpu *c = ev->cpu;
	pthread_mutex_lock(&ev->lock);
	while (!__atomic_load_n(&c->pending, __ATOMIC_SEQ_CST) && !machine_should_stop(c->m)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&ev->wake, &ev->lock, &ts);
		/* safety net: an interrupt the lapic holds for us */
		if (c->lapic && !c->wait_sipi && (c->rflags & FL_IF) && lapic_has_interrupt(c->lapic))
			break;
	}
	pthread_mutex_unlock(&ev->lock);
}

static void handle_fault(struct emu_cpu *c)
{
	int vec = c->exc_vector;
	if (vec == EXC_PF || c->delivering)
		log_debug("emu: vcpu%u exception %d (error %#x) at rip %#llx cr2 %#llx",
			  c->v ? c->v->index : 0, vec, c->exc_error, (unsigned long long)c->rip,
			  (unsigned long long)c->cr2);
	deliver_event(c, vec, c->exc_has_error, c->exc_error, false, c->rip);
}

static int emu_vcpu_run(struct vcpu *v)
{
	struct emu_vcpu *ev = v->accel;
	struct emu_cpu *c = ev->cpu;
	if (emu_stats_enabled)
		emu_profile_start(c);
	while (!machine_should_stop(v->m)) {
		if (setjmp(c->fault_jmp)) {
			handle_fault(c);
			continue;
		}
		if (c->halted || c->wait_sipi) {
			wait_for_event(ev);
			__atomic_store_n(&c->pending, 1, __ATOMIC_RELAXED);
			if (service_events(c))
				break;
			if (c->halted || c->wait_sipi)
				continue;
		}
		execute(c);
	}
	if (emu_stats_enabled || emu_trace_enabled)
		fprintf(stderr, "vcpu%u stopped after %llu instructions\n", v->index,
			(unsigned long long)c->icount);
	if (emu_stats_enabled) {
		const struct emu_stats *st = &c->st;
		fprintf(stderr, "vcpu%u: %llu blocks run; decoded %llu blocks (%llu stale) %llu insns, %llu arena resets; "
			"TLB fills r/w/x %llu/%llu/%llu, flushes %llu (invlpg %llu), write-TLB code drops %llu\n",
			v->index, (unsigned long long)st->blocks, (unsigned long long)st->decode_blocks,
			(unsigned long long)st->decode_stale, (unsigned long long)st->decode_insns,
			(unsigned long long)st->arena_reset, (unsigned long long)st->fill[0],
			(unsigned long long)st->fill[1], (unsigned long long)st->fill[2],
			(unsigned long long)st->flush_all, (unsigned long long)st->flush_page,
			(unsigned long long)st->epoch_flush);
		emu_profile_stop(v->index);
	}
	jit_print_stats(c);
	if (emu_trace_enabled) {
		struct x86_cpu_state s;
		emu_get_state(v, &s);
		x86_dump_state(&s);
		emu_trace_dump(c);
	}
	return 0;
}

/* For the differential tests: the CPU state of v, and one instruction at
 * RIP with no event delivery. Returns -1, or the vector it raised. */
struct emu_cpu *emu_test_cpu(struct vcpu *v)
{
	return ((struct emu_vcpu *)v->accel)->cpu;
}

int emu_test_step(struct vcpu *v)
{
	struct emu_cpu *c = emu_test_cpu(v);
	static __thread struct insn insn;
	if (setjmp(c->fault_jmp))
		return c->exc_vector;
	decode_insn(c, &insn);
	c->ip_mask = c->code64 ? ~0ULL : c->code32 ? 0xFFFFFFFFULL : 0xFFFFULL;
	c->next_rip = (c->rip + insn.len) & c->ip_mask;
	c->stop = &insn + 1; /* a chaining handler returns after this one */
	c->blk_first = &insn;
	c->chain_left = 1;
	c->block_end = false;
	insn.run(c, &insn);
	c->rip = c->next_rip;
	return -1;
}

/* For the JIT's tests: runs the block at RIP once, through its compiled
 * code when the JIT compiled it (no event delivery). Returns -1, or the
 * vector it raised. */
int emu_test_run_block(struct vcpu *v)
{
	struct emu_cpu *c = emu_test_cpu(v);
	static __thread struct insn scratch;
	static __thread struct block scratch_blk;
	if (setjmp(c->fault_jmp))
		return c->exc_vector;
	const struct block *b = find_block(c, &scratch_blk, &scratch);
	if (c->jit && b != &scratch_blk && !(c->rflags & FL_TF)) {
		if (!b->jit)
			jit_block_entered(c, (struct block *)b);
		if (b->jit) {
			c->icount += run_jit(c, b);
			return -1;
		}
	}
	const struct insn *i = b->start == UINT32_MAX ? &scratch : &c->arena[b->start];
	c->icount += run_block(c, i, i + b->n, false);
	return -1;
}

const struct accel_ops emu_accel_ops = {
	.name = "emu",
	.probe = emu_probe,
	.vm_init = emu_vm_init,
	.vcpu_init = emu_vcpu_init,
	.vcpu_run = emu_vcpu_run,
	.vcpu_kick = emu_vcpu_kick,
	.get_state = emu_get_state,
	.set_state = emu_set_state,
	.set_irq = emu_set_irq,
	.send_msi = emu_send_msi,
	.add_ioeventfd = emu_no_fd,
	.add_irqfd = emu_no_irqfd,
	.vcpu_destroy = emu_vcpu_destroy,
	.vm_destroy = emu_vm_destroy,
};
