/* A tiny machine for running code snippets on the software CPU: guest
 * RAM, the emu engine with its platform, and a debug port (0xF4) whose
 * write stops the VM with the written value as exit code. */
#ifndef XVM_TESTS_EMU_HARNESS_H
#define XVM_TESTS_EMU_HARNESS_H

#include <stdlib.h>
#include <string.h>

#include "accel/accel.h"
#include "hw/io.h"
#include "lib/util.h"
#include "machine/machine.h"

static uint64_t harness_port_read(void *opaque, uint64_t off, unsigned size)
{
	return 0;
}

static void harness_port_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
	machine_request_stop(opaque, VM_STOP_EXIT, (int)v);
}

static const struct io_ops harness_port_ops = { harness_port_read, harness_port_write };

static struct vm_config harness_cfg = { .accel = "emu", .cpus = 1 };

static struct machine *harness_new(uint64_t ram, unsigned ncpus)
{
	struct machine *m = calloc(1, sizeof(*m));
	m->cfg = &harness_cfg;
	if (guest_ram_init(&m->ram, ram) < 0)
		abort();
	m->pio = io_space_new("pio");
	m->mmio = io_space_new("mmio");
	m->ncpus = ncpus;
	m->accel = &emu_accel_ops;
	for (unsigned i = 0; i < ncpus; i++) {
		m->vcpus[i].m = m;
		m->vcpus[i].index = i;
	}
	if (emu_accel_ops.vm_init(m) < 0)
		abort();
	io_register(m->pio, 0xF4, 4, &harness_port_ops, m, "harness-exit");
	for (unsigned i = 0; i < ncpus; i++)
		if (emu_accel_ops.vcpu_init(&m->vcpus[i]) < 0)
			abort();
	return m;
}

static void harness_free(struct machine *m)
{
	for (unsigned i = 0; i < m->ncpus; i++)
		emu_accel_ops.vcpu_destroy(&m->vcpus[i]);
	machine_run_teardown(m);
	emu_accel_ops.vm_destroy(m);
	io_space_free(m->pio);
	io_space_free(m->mmio);
	guest_ram_free(&m->ram);
	free(m);
}

/* A fresh state with flat segments from a GDT at 0x500 (code 0x08,
 * 64-bit or 32-bit; data 0x10), no LDT, a busy TSS. */
static void harness_flat_state(struct x86_cpu_state *s, bool long_mode)
{
	memset(s, 0, sizeof(*s));
	x86_flat_segment(&s->seg[SEG_CS], 0x8, true, long_mode);
	for (int k = 0; k < SEG_COUNT; k++)
		if (k != SEG_CS)
			x86_flat_segment(&s->seg[k], 0x10, false, false);
	s->seg[SEG_LDT].unusable = 1;
	s->seg[SEG_TR].s = 0;
	s->seg[SEG_TR].type = 0xB;
	s->gdt.base = 0x500;
}

/* Identity-mapped 4-level page tables for the first 1 GiB (2 MiB pages)
 * at 0x1000..0x3FFF, a flat 64-bit GDT at 0x500. */
static void harness_long_mode(struct machine *m, struct x86_cpu_state *s, uint64_t rip)
{
	uint8_t *h = m->ram.host;
	uint64_t *pml4 = (uint64_t *)(h + 0x1000), *pdpt = (uint64_t *)(h + 0x2000),
		 *pd = (uint64_t *)(h + 0x3000);
	memset(h + 0x1000, 0, 0x3000);
	pml4[0] = 0x2000 | 7;
	pdpt[0] = 0x3000 | 7;
	for (int k = 0; k < 512; k++)
		pd[k] = ((uint64_t)k << 21) | 0x87;
	uint64_t gdt[4] = { 0, 0x00AF9B000000FFFFULL, 0x00CF93000000FFFFULL, 0x00CFFB000000FFFFULL };
	memcpy(h + 0x500, gdt, sizeof(gdt));
	harness_flat_state(s, true);
	s->gdt.limit = sizeof(gdt) - 1;
	s->cr0 = X86_CR0_PE | X86_CR0_PG | X86_CR0_ET | X86_CR0_NE | X86_CR0_WP;
	s->cr3 = 0x1000;
	s->cr4 = X86_CR4_PAE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;
	s->efer = X86_EFER_LME | X86_EFER_LMA | X86_EFER_NXE | X86_EFER_SCE;
	s->rflags = 2;
	s->rip = rip;
	s->gpr[R_RSP] = 0x80000;
}

static inline int harness_run(struct machine *m)
{
	emu_accel_ops.vcpu_run(&m->vcpus[0]);
	return m->exit_code;
}

/* Snippets assembled by the host assembler into .rodata (never run on
 * the host): NAME_start[] .. NAME_end[]. Each ends with `out %al, $0xf4`
 * after setting al. */
#define SNIPPET(name, code)                                                    \
	__asm__(".pushsection .rodata\n.globl " #name "_start\n.globl " #name "_end\n" \
		#name "_start:\n" code "\n" #name "_end:\n.code64\n.popsection\n");    \
	extern const uint8_t name##_start[], name##_end[];

/* Runs a snippet at 1 MiB in long mode on a fresh 64 MiB machine; *out is
 * the state it stopped in. The caller frees the machine. */
static inline struct machine *harness_run_long(const uint8_t *start, const uint8_t *end,
					       struct x86_cpu_state *out)
{
	struct machine *m = harness_new(64 * MiB, 1);
	memcpy(m->ram.host + 0x100000, start, (size_t)(end - start));
	struct x86_cpu_state s;
	harness_long_mode(m, &s, 0x100000);
	if (emu_accel_ops.set_state(&m->vcpus[0], &s) < 0)
		abort();
	harness_run(m);
	emu_accel_ops.get_state(&m->vcpus[0], out);
	return m;
}

#endif
