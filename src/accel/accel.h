/* The engine interface: KVM (accel/kvm) and the software CPU (accel/emu)
 * run vCPUs behind these ops. The machine, devices and boot loaders never
 * know which engine runs. */
#ifndef XVM_ACCEL_ACCEL_H
#define XVM_ACCEL_ACCEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/x86.h"

struct machine;
struct vcpu;

struct accel_ops {
	const char *name;
	/* Can this engine run here? On false, why[] says why (one line). */
	bool (*probe)(char *why, size_t why_len);
	/* Called once guest RAM and the address spaces exist: create the VM,
	 * map RAM, create interrupt controllers (in-kernel or emulated). */
	int (*vm_init)(struct machine *m);
	/* Called (vmm/vm.c) after devices and the boot loader, for every
	 * vCPU in index order. vCPU 0 then gets m->boot_state through
	 * set_state; the others must start waiting for INIT/SIPI (the
	 * guest's BSP starts them). */
	int (*vcpu_init)(struct vcpu *v);
	/* Runs v on the calling thread until machine_should_stop(m) or a
	 * fatal engine error (returns -1 after printing why and a register
	 * dump). Guest port/MMIO accesses go to m->pio / m->mmio. */
	int (*vcpu_run)(struct vcpu *v);
	/* Makes a vcpu_run on another thread return to check the machine
	 * state promptly (signal, or a flag the CPU loop polls). */
	void (*vcpu_kick)(struct vcpu *v);
	/* Architectural state, for boot setup and reset (vCPU not running). */
	int (*get_state)(struct vcpu *v, struct x86_cpu_state *s);
	int (*set_state)(struct vcpu *v, const struct x86_cpu_state *s);
	/* Interrupt lines of the machine (IOAPIC/PIC pins) and MSI writes. */
	void (*set_irq)(struct machine *m, unsigned gsi, int level);
	void (*send_msi)(struct machine *m, uint64_t addr, uint32_t data);
	/* Optional fast paths (KVM): an eventfd signalled on a guest write of
	 * any value to addr (pio or mmio, given length), and an eventfd that
	 * raises gsi. Return -ENOTSUP when absent; callers fall back to ops. */
	int (*add_ioeventfd)(struct machine *m, bool pio, uint64_t addr, unsigned len, int fd);
	int (*add_irqfd)(struct machine *m, unsigned gsi, int fd);
	void (*vcpu_destroy)(struct vcpu *v);
	void (*vm_destroy)(struct machine *m);
};

extern const struct accel_ops kvm_accel_ops;
extern const struct accel_ops emu_accel_ops;

/* Resolves "kvm", "emu" or "auto" (auto measures, see accel/select.c).
 * Returns NULL with a message on failure. */
const struct accel_ops *accel_select(const char *name);

#endif
