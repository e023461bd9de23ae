/* A VM's board: configuration, guest RAM, address spaces, vCPUs, the
 * engine, the event loop, interrupt lines and the exit state. */
#ifndef XVM_MACHINE_MACHINE_H
#define XVM_MACHINE_MACHINE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "accel/accel.h"
#include "hw/io.h"
#include "machine/memory.h"
#include "machine/x86.h"

struct loop;
struct pci_bus;
struct console;

#define MAX_VCPUS      64
#define MAX_INITRDS    16
#define MAX_DISKS      16
#define MAX_NETS       8

enum console_mode { CONSOLE_STDIO, CONSOLE_NONE, CONSOLE_FILE, CONSOLE_VIRTIO };

struct disk_config {
	char *path;
	char *format;   /* NULL = probe */
	bool readonly;
	char *serial;
	char *transport; /* virtio transport: NULL/"pci" or "mmio" */
};

struct net_config {
	char *spec;     /* "user,hostfwd=..." or "tap=IFNAME,mac=..." as given */
};

struct vm_config {
	const char *accel;          /* "auto", "kvm", "emu" */
	unsigned cpus;
	uint64_t mem_size;
	const char *kernel;
	const char *initrd[MAX_INITRDS];
	unsigned n_initrd;
	char *initrd_list;          /* owns the initrd[] strings (cli/run.c) */
	const char *append;
	enum console_mode console;
	const char *console_path;   /* for CONSOLE_FILE */
	bool debug_exit;
	bool no_reboot;
	const char *name;
	struct disk_config disks[MAX_DISKS];
	unsigned n_disks;
	struct net_config nets[MAX_NETS];
	unsigned n_nets;
	bool rng;
	bool verbose;               /* debug log */
};

enum vm_run_state {
	VM_RUNNING = 0,
	VM_STOP_POWEROFF,   /* guest powered off: exit 0 */
	VM_STOP_RESET,      /* guest asked for reset (or triple fault) */
	VM_STOP_EXIT,       /* debug-exit or user quit: exit with exit_code */
	VM_STOP_ERROR,      /* engine/internal error: non-zero exit */
};

struct vcpu {
	struct machine *m;
	unsigned index;          /* also the APIC ID */
	pthread_t thread;
	void *accel;             /* engine private */
	void *lapic;             /* emulated LAPIC (emu engine) */
};

struct machine {
	struct vm_config *cfg;
	struct guest_ram ram;
	struct io_space *pio;
	struct io_space *mmio;
	const struct accel_ops *accel;
	void *accel_priv;
	struct loop *loop;
	unsigned ncpus;
	struct vcpu vcpus[MAX_VCPUS];
	struct x86_cpu_state boot_state;  /* BSP entry state set by the loader */

	/* Emulated platform (engines without an in-kernel irqchip). */
	void *ioapic, *pic, *pit;
	uint64_t tsc_epoch_ns;            /* CLOCK_MONOTONIC at guest TSC 0 */

	struct pci_bus *pci;              /* hw/pci.c: bus 0 (pci_init) */
	struct console *console;          /* vmm/console.h: the cfg->console back end */
	void *virtio;                     /* hw/virtio: devices and mmio slots */

	int run_state;                    /* enum vm_run_state, atomic */
	int exit_code;

	/* A guest reset rebuilds the whole machine from cfg (vmm/vm.c):
	 * generation counts the rebuilds (0 on first boot), so a back end
	 * can tell a first boot from a reboot (e.g. not truncate a log). */
	unsigned generation;
	struct machine_hook *teardown_hooks;
};

/* Registers fn(opaque) to run when the machine is torn down: after every
 * vCPU has stopped, while the event loop still runs, in reverse order of
 * registration. Devices free their state here. */
void machine_on_teardown(struct machine *m, void (*fn)(void *opaque), void *opaque);
/* Runs and forgets the teardown hooks (vmm/vm.c). */
void machine_run_teardown(struct machine *m);

/* Requests that all vCPUs stop with this state (first request wins,
 * except that any other request overrides a pending reset). Thread-safe. */
void machine_request_stop(struct machine *m, enum vm_run_state why, int exit_code);
static inline bool machine_should_stop(struct machine *m)
{
	return __atomic_load_n(&m->run_state, __ATOMIC_ACQUIRE) != VM_RUNNING;
}

/* Interrupt lines: forwarded to the engine. */
static inline void machine_set_irq(struct machine *m, unsigned gsi, int level)
{
	m->accel->set_irq(m, gsi, level);
}
static inline void machine_pulse_irq(struct machine *m, unsigned gsi)
{
	m->accel->set_irq(m, gsi, 1);
	m->accel->set_irq(m, gsi, 0);
}
static inline void machine_send_msi(struct machine *m, uint64_t addr, uint32_t data)
{
	m->accel->send_msi(m, addr, data);
}

#endif
