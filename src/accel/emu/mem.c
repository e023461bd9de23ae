/* Guest memory as the software CPU sees it: paging (32-bit, PAE, 4-level),
 * the soft TLB, physical dispatch (RAM, this vCPU's APIC page, MMIO) and
 * the tracking of pages that hold decoded code. */
#include "accel/emu/cpu.h"
#include "accel/emu/emu_priv.h"
#include "hw/io.h"
#include "hw/lapic.h"
#include "lib/log.h"
#include "lib/util.h"
#include "machine/layout.h"
#include "machine/machine.h"

#include <stdlib.h>

/* ------------------------------------------------------------------ */
/* Code pages: a generation per RAM page, bumped when a page that held
 * decoded instructions is written. The decoded-instruction cache checks
 * it on every hit, so self- and cross-modifying code is seen at the next
 * instruction. */

static int64_t ram_page_index(const struct guest_ram *ram, uint64_t gpa)
{
	if (gpa < ram->low_size)
		return (int64_t)(gpa >> 12);
	if (gpa >= HIGH_RAM_START && gpa - HIGH_RAM_START < ram->high_size)
		return (int64_t)((ram->low_size + gpa - HIGH_RAM_START) >> 12);
	return -1;
}

int emu_mem_init(struct machine *m)
{
	struct emu_machine *em = m->accel_priv;
	em->npages = (m->ram.size + 4095) >> 12;
	em->page_gen = calloc(em->npages, sizeof(*em->page_gen));
	em->page_code = calloc(em->npages, 1);
	if (!em->page_gen || !em->page_code)
		return -1;
	m->ram.written = emu_ram_written;
	m->ram.written_opaque = m;
	return 0;
}

void emu_mem_destroy(struct machine *m)
{
	struct emu_machine *em = m->accel_priv;
	free(em->page_gen);
	free(em->page_code);
	em->page_gen = NULL;
	em->page_code = NULL;
}

static bool code_page_written(struct emu_machine *em, int64_t idx)
{
	if (__atomic_load_n(&em->page_code[idx], __ATOMIC_RELAXED)) {
		__atomic_store_n(&em->page_code[idx], 0, __ATOMIC_RELAXED);
		__atomic_add_fetch(&em->page_gen[idx], 1, __ATOMIC_RELEASE);
		return true;
	}
	return false;
}

void emu_ram_written(void *opaque, uint64_t gpa, uint64_t len)
{
	struct machine *m = opaque;
	struct emu_machine *em = m->accel_priv;
	if (!em || !len)
		return;
	uint64_t end = gpa + len;
	for (uint64_t p = gpa & ~0xFFFULL; p < end; p += 4096) {
		int64_t idx = ram_page_index(&m->ram, p);
		if (idx >= 0)
			code_page_written(em, idx);
	}
}

uint32_t ram_page_of(struct machine *m, uint64_t gpa)
{
	return (uint32_t)ram_page_index(&m->ram, gpa);
}

uint32_t code_page_gen(struct machine *m, uint64_t gpa)
{
	struct emu_machine *em = m->accel_priv;
	int64_t idx = ram_page_index(&m->ram, gpa);
	return idx < 0 ? 0 : __atomic_load_n(&em->page_gen[idx], __ATOMIC_ACQUIRE);
}

void code_page_mark(struct emu_cpu *c, uint64_t gpa)
{
	struct emu_machine *em = c->m->accel_priv;
	int64_t idx = ram_page_index(&c->m->ram, gpa);
	if (idx < 0 || em->page_code[idx])
		return;
	__atomic_store_n(&em->page_code[idx], 1, __ATOMIC_RELAXED);
	/* Every vCPU must stop writing this page through its TLB. */
	__atomic_add_fetch(&em->code_epoch, 1, __ATOMIC_SEQ_CST);
	memset(c->tlb_w, 0, sizeof(c->tlb_w));
	memset(c->tlbv_w, 0, sizeof(c->tlbv_w));
	c->st.epoch_flush++;
	c->code_epoch_seen = __atomic_load_n(&em->code_epoch, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* Physical accesses */

static bool apic_page_hit(struct emu_cpu *c, uint64_t gpa)
{
	return c->lapic && (gpa & ~0xFFFULL) == c->apic_page;
}

uint64_t phys_read(struct emu_cpu *c, uint64_t gpa, unsigned size)
{
	uint8_t *h = gpa_to_hva(&c->m->ram, gpa, size);
	if (h) {
		uint64_t v = 0;
		memcpy(&v, h, size);
		return v;
	}
	if (apic_page_hit(c, gpa))
		return lapic_mmio_read(c->lapic, gpa & 0xFFF, size);
	uint64_t v = ~0ULL;
	io_read(c->m->mmio, gpa, size, &v);
	return v & size_mask(size);
}

void phys_write(struct emu_cpu *c, uint64_t gpa, unsigned size, uint64_t v)
{
	uint8_t *h = gpa_to_hva(&c->m->ram, gpa, size);
	if (h) {
		struct emu_machine *em = c->m->accel_priv;
		int64_t idx = ram_page_index(&c->m->ram, gpa);
		memcpy(h, &v, size);
		if (code_page_written(em, idx))
			end_block(c);
		return;
	}
	if (apic_page_hit(c, gpa)) {
		lapic_mmio_write(c->lapic, gpa & 0xFFF, size, v);
		return;
	}
	io_write(c->m->mmio, gpa, size, v & size_mask(size));
	end_block(c);
}

/* ------------------------------------------------------------------ */
/* Paging */

void tlb_flush_all(struct emu_cpu *c, bool keep_global)
{
	/* Global pages are simply walked again after a CR3 write: cheaper
	 * than keeping them, as flushes are frequent and misses are not. */
	(void)keep_global;
	c->st.flush_all++;
	end_block(c);
	if (++c->tlb_gen >= 4096) {
		memset(c->tlb_r, 0, sizeof(c->tlb_r));
		memset(c->tlb_w, 0, sizeof(c->tlb_w));
		memset(c->tlb_x, 0, sizeof(c->tlb_x));
		memset(c->tlbv_r, 0, sizeof(c->tlbv_r));
		memset(c->tlbv_w, 0, sizeof(c->tlbv_w));
		memset(c->tlbv_x, 0, sizeof(c->tlbv_x));
		if (c->vblocks) /* their context holds the generation too */
			memset(c->vblocks, 0, VBLOCK_SIZE * sizeof(*c->vblocks));
		c->tlb_gen = 1;
	}
}

void tlb_flush_page(struct emu_cpu *c, uint64_t vaddr)
{
	/* A 2M/1G translation fills one entry per 4K page it covers, so
	 * INVLPG of any address in it must drop them all: with generation
	 * tags, dropping everything is the cheap way. */
	(void)vaddr;
	c->st.flush_page++;
	tlb_flush_all(c, false);
}

_Noreturn static void page_fault(struct emu_cpu *c, uint64_t lin, uint32_t err)
{
	c->cr2 = lin;
	raise_exc_err(c, EXC_PF, err);
}

/* Sets accessed (and dirty) bits in a paging-structure entry in RAM. */
static void pte_set_bits(struct emu_cpu *c, uint64_t gpa, uint64_t pte, uint64_t bits, bool is64)
{
	if ((pte & bits) == bits)
		return;
	void *h = gpa_to_hva(&c->m->ram, gpa, is64 ? 8 : 4);
	if (!h)
		return;
	if (is64)
		__atomic_or_fetch((uint64_t *)h, bits, __ATOMIC_SEQ_CST);
	else
		__atomic_or_fetch((uint32_t *)h, (uint32_t)bits, __ATOMIC_SEQ_CST);
}

struct walk_result {
	uint64_t gpa;
	bool writable, user, nx, global;
	bool dirty;
};

/* Walks the page tables for lin. On a fault raises #PF (unless probe). */
static void page_walk(struct emu_cpu *c, uint64_t lin, int acc, bool user, struct walk_result *w)
{
	uint32_t err_base = (acc == ACC_WRITE ? PF_W : 0) | (user ? PF_U : 0) |
			    ((acc == ACC_EXEC && (c->efer & X86_EFER_NXE)) ? PF_I : 0);
	bool nxe = c->efer & X86_EFER_NXE;
	bool wr = true, us = true, nx = false;
	uint64_t pte, pte_gpa;
	uint64_t page_size;

	if (c->cr4 & X86_CR4_PAE) {
		uint64_t table;
		int levels;
		if (c->long_mode) {
			/* canonical check is done by callers (#GP) */
			table = c->cr3 & 0x000FFFFFFFFFF000ULL;
			levels = 4;
		} else {
			uint64_t pdpte_gpa = (c->cr3 & 0xFFFFFFE0ULL) + ((lin >> 30) & 3) * 8;
			uint64_t pdpte = phys_read(c, pdpte_gpa, 8);
			if (!(pdpte & 1))
				page_fault(c, lin, err_base);
			table = pdpte & 0x000FFFFFFFFFF000ULL;
			levels = 2;
		}
		for (int level = levels; level >= 1; level--) {
			unsigned shift = 12 + 9 * (level - 1);
			pte_gpa = table + ((lin >> shift) & 511) * 8;
			pte = phys_read(c, pte_gpa, 8);
			if (!(pte & 1))
				page_fault(c, lin, err_base);
			if ((pte >> 63) && !nxe)
				page_fault(c, lin, err_base | PF_P | PF_RSVD);
			wr &= (pte >> 1) & 1;
			us &= (pte >> 2) & 1;
			nx |= nxe && (pte >> 63);
			bool leaf = level == 1 || ((pte & 0x80) && level <= 3);
			if (level == 4 && (pte & 0x80))
				page_fault(c, lin, err_base | PF_P | PF_RSVD);
			if (!leaf) {
				pte_set_bits(c, pte_gpa, pte, 0x20, true);
				table = pte & 0x000FFFFFFFFFF000ULL;
				continue;
			}
			page_size = 1ULL << shift;
			uint64_t frame = pte & 0x000FFFFFFFFFF000ULL & ~(page_size - 1);
			w->gpa = frame | (lin & (page_size - 1) & ~0xFFFULL);
			w->global = (pte & 0x100) && (c->cr4 & X86_CR4_PGE);
			goto leaf_found;
		}
		__builtin_unreachable();
	} else {
		uint64_t pde_gpa = (c->cr3 & 0xFFFFF000ULL) + ((lin >> 22) & 1023) * 4;
		uint64_t pde = phys_read(c, pde_gpa, 4);
		if (!(pde & 1))
			page_fault(c, lin, err_base);
		wr &= (pde >> 1) & 1;
		us &= (pde >> 2) & 1;
		if ((pde & 0x80) && (c->cr4 & X86_CR4_PSE)) {
			pte = pde;
			pte_gpa = pde_gpa;
			/* PSE-36: bits 20:13 are physical address bits 39:32 */
			w->gpa = (pde & 0xFFC00000ULL) | ((pde >> 13) & 0xFFULL) << 32 | (lin & 0x3FF000ULL);
			w->global = (pde & 0x100) && (c->cr4 & X86_CR4_PGE);
			page_size = 4 << 20;
		} else {
			pte_set_bits(c, pde_gpa, pde, 0x20, false);
			pte_gpa = (pde & 0xFFFFF000ULL) + ((lin >> 12) & 1023) * 4;
			pte = phys_read(c, pte_gpa, 4);
			if (!(pte & 1))
				page_fault(c, lin, err_base);
			wr &= (pte >> 1) & 1;
			us &= (pte >> 2) & 1;
			w->gpa = pte & 0xFFFFF000ULL;
			w->global = (pte & 0x100) && (c->cr4 & X86_CR4_PGE);
			page_size = 4096;
		}
		(void)page_size;
		goto leaf_found_32;
	}
leaf_found:
	(void)page_size;
leaf_found_32:;
	bool is64 = (c->cr4 & X86_CR4_PAE) != 0;
	uint32_t perr = err_base | PF_P;
	if (user && !us)
		page_fault(c, lin, perr);
	if (acc == ACC_WRITE && !wr && (user || (c->cr0 & X86_CR0_WP)))
		page_fault(c, lin, perr);
	if (acc == ACC_EXEC && nx)
		page_fault(c, lin, perr);
	pte_set_bits(c, pte_gpa, pte, acc == ACC_WRITE ? 0x60 : 0x20, is64);
	w->writable = wr || (!user && !(c->cr0 & X86_CR0_WP));
	w->user = us;
	w->nx = nx;
	w->dirty = acc == ACC_WRITE || (pte & 0x40);
}

uint64_t translate(struct emu_cpu *c, uint64_t lin, int acc, bool user)
{
	if (!(c->cr0 & X86_CR0_PG))
		return c->long_mode ? lin : (uint32_t)lin;
	struct walk_result w;
	page_walk(c, lin, acc, user, &w);
	return w.gpa | (lin & 0xFFF);
}

/* Installs e in the slot, moving what was there to the victim slot. */
static void tlb_put(struct tlb_entry *slot, struct tlb_entry *victim, const struct tlb_entry *e)
{
	if (slot->tag != e->tag)
		*victim = *slot;
	*slot = *e;
}

/* Translates and, for RAM, installs a TLB entry. Returns the gpa. */
static uint64_t translate_fill(struct emu_cpu *c, uint64_t lin, int acc)
{
	bool user = cpl_user(c);
	unsigned idx = (lin >> 12) & (TLB_SIZE - 1);
	uint64_t tag = (lin & ~0xFFFULL) | c->tlb_gen;
	struct tlb_entry *slot = acc == ACC_READ ? &c->tlb_r[user][idx] : acc == ACC_WRITE ? &c->tlb_w[user][idx]
											   : &c->tlb_x[user][idx];
	struct tlb_entry *victim = acc == ACC_READ ? &c->tlbv_r[user][idx] : acc == ACC_WRITE ? &c->tlbv_w[user][idx]
											       : &c->tlbv_x[user][idx];
	if (victim->tag == tag) {
		/* a conflict miss: swap the two entries */
		struct tlb_entry t = *slot;
		*slot = *victim;
		*victim = t;
		return slot->gpa_page | (lin & 0xFFF);
	}
	struct walk_result w = { .writable = true, .dirty = true };
	if (c->cr0 & X86_CR0_PG) {
		if (c->long_mode) {
			int64_t s = (int64_t)(lin << 16) >> 16;
			if ((uint64_t)s != lin)
				raise_exc_err(c, EXC_GP, 0);
		}
		page_walk(c, lin, acc, user, &w);
	} else {
		w.gpa = (c->long_mode ? lin : (uint32_t)lin) & ~0xFFFULL;
		w.global = false;
	}
	uint64_t gpa = w.gpa | (lin & 0xFFF);
	uint8_t *h = gpa_to_hva(&c->m->ram, w.gpa, 4096);
	if (!h || apic_page_hit(c, w.gpa))
		return gpa;
	c->st.fill[acc]++;
	struct tlb_entry e = {
		.tag = tag,
		.addend = (uintptr_t)h - (lin & ~0xFFFULL),
		.gpa_page = w.gpa,
		.global = w.global,
	};
	switch (acc) {
	case ACC_READ:
	case ACC_EXEC:
		tlb_put(slot, victim, &e);
		break;
	case ACC_WRITE: {
		struct emu_machine *em = c->m->accel_priv;
		int64_t pidx = ram_page_index(&c->m->ram, w.gpa);
		if (w.dirty && w.writable && !__atomic_load_n(&em->page_code[pidx], __ATOMIC_RELAXED))
			tlb_put(slot, victim, &e);
		/* A writable page is readable too. */
		tlb_put(&c->tlb_r[user][idx], &c->tlbv_r[user][idx], &e);
		break;
	}
	}
	return gpa;
}

uint64_t mem_read_slow(struct emu_cpu *c, uint64_t lin, unsigned size, int acc)
{
	lin = lin_mask(c, lin);
	if ((lin & 0xFFF) + size > 4096) {
		uint64_t v = 0;
		for (unsigned k = 0; k < size; k++)
			v |= mem_read_slow(c, lin_mask(c, lin + k), 1, acc) << (8 * k);
		return v;
	}
	uint64_t gpa = translate_fill(c, lin, acc);
	return phys_read(c, gpa, size);
}

void mem_write_slow(struct emu_cpu *c, uint64_t lin, unsigned size, uint64_t v)
{
	lin = lin_mask(c, lin);
	if ((lin & 0xFFF) + size > 4096) {
		/* Check both pages before writing anything (no partial write). */
		unsigned first = 4096 - (lin & 0xFFF);
		uint64_t g1 = translate_fill(c, lin, ACC_WRITE);
		uint64_t g2 = translate_fill(c, lin_mask(c, lin + first), ACC_WRITE);
		for (unsigned k = 0; k < size; k++)
			phys_write(c, k < first ? g1 + k : g2 + (k - first), 1, (v >> (8 * k)) & 0xFF);
		return;
	}
	uint64_t gpa = translate_fill(c, lin, ACC_WRITE);
	phys_write(c, gpa, size, v);
}

void *mem_host_ptr_rw(struct emu_cpu *c, uint64_t lin, unsigned size)
{
	lin = lin_mask(c, lin);
	if ((lin & 0xFFF) + size > 4096)
		return NULL;
	unsigned u = cpl_user(c);
	struct tlb_entry *e = &c->tlb_w[u][(lin >> 12) & (TLB_SIZE - 1)];
	if (e->tag == ((lin & ~0xFFFULL) | c->tlb_gen))
		return (void *)(uintptr_t)(lin + e->addend);
	uint64_t gpa = translate_fill(c, lin, ACC_WRITE);
	if (apic_page_hit(c, gpa))
		return NULL;
	void *h = gpa_to_hva(&c->m->ram, gpa, size);
	if (h) {
		struct emu_machine *em = c->m->accel_priv;
		if (code_page_written(em, ram_page_index(&c->m->ram, gpa)))
			end_block(c);
	}
	return h;
}

void *mem_host_ptr_ro(struct emu_cpu *c, uint64_t lin, unsigned size)
{
	lin = lin_mask(c, lin);
	if ((lin & 0xFFF) + size > 4096)
		return NULL;
	unsigned u = cpl_user(c);
	struct tlb_entry *e = &c->tlb_r[u][(lin >> 12) & (TLB_SIZE - 1)];
	if (e->tag == ((lin & ~0xFFFULL) | c->tlb_gen))
		return (void *)(uintptr_t)(lin + e->addend);
	uint64_t gpa = translate_fill(c, lin, ACC_READ);
	if (apic_page_hit(c, gpa))
		return NULL;
	return gpa_to_hva(&c->m->ram, gpa, size);
}

uint64_t mem_read_sys(struct emu_cpu *c, uint64_t lin, unsigned size)
{
	lin = lin_mask(c, lin);
	uint64_t v = 0;
	for (unsigned k = 0; k < size; k++) {
		uint64_t a = lin_mask(c, lin + k);
		v |= phys_read(c, translate(c, a, ACC_READ, false), 1) << (8 * k);
	}
	return v;
}

void mem_write_sys(struct emu_cpu *c, uint64_t lin, unsigned size, uint64_t v)
{
	lin = lin_mask(c, lin);
	for (unsigned k = 0; k < size; k++) {
		uint64_t a = lin_mask(c, lin + k);
		phys_write(c, translate(c, a, ACC_WRITE, false), 1, (v >> (8 * k)) & 0xFF);
	}
}

void mem_read_bytes(struct emu_cpu *c, int seg, uint64_t off, void *buf, unsigned n)
{
	uint8_t *b = buf;
	unsigned k = 0;
	for (; k + 8 <= n; k += 8) {
		uint64_t v = mem_read(c, seg, off + k, 8);
		memcpy(b + k, &v, 8);
	}
	for (; k < n; k++)
		b[k] = (uint8_t)mem_read(c, seg, off + k, 1);
}

void mem_write_bytes(struct emu_cpu *c, int seg, uint64_t off, const void *buf, unsigned n)
{
	const uint8_t *b = buf;
	/* probe the first and last byte first so a fault leaves memory alone */
	if (n) {
		uint64_t l0 = seg_lin(c, seg, off), l1 = seg_lin(c, seg, off + n - 1);
		if ((l0 >> 12) != (l1 >> 12)) {
			translate_fill(c, lin_mask(c, l0), ACC_WRITE);
			translate_fill(c, lin_mask(c, l1), ACC_WRITE);
		}
	}
	unsigned k = 0;
	for (; k + 8 <= n; k += 8) {
		uint64_t v;
		memcpy(&v, b + k, 8);
		mem_write(c, seg, off + k, 8, v);
	}
	for (; k < n; k++)
		mem_write(c, seg, off + k, 1, b[k]);
}

/* Instruction fetch of up to 8 bytes at lin (used by the decoder). */
uint64_t fetch_slow(struct emu_cpu *c, uint64_t lin, unsigned size)
{
	return mem_read_slow(c, lin, size, ACC_EXEC);
}

/* Physical address of the instruction at linear lin (fills the exec TLB). */
uint64_t fetch_gpa(struct emu_cpu *c, uint64_t lin)
{
	lin = lin_mask(c, lin);
	unsigned u = cpl_user(c);
	struct tlb_entry *e = &c->tlb_x[u][(lin >> 12) & (TLB_SIZE - 1)];
	if (e->tag == ((lin & ~0xFFFULL) | c->tlb_gen))
		return e->gpa_page | (lin & 0xFFF);
	return translate_fill(c, lin, ACC_EXEC);
}
