/* A fake machine for device unit tests: real port/MMIO spaces and event
 * loop, an engine that only records interrupt lines. Header-only. */
#ifndef XVM_TESTS_HW_FAKE_MACHINE_H
#define XVM_TESTS_HW_FAKE_MACHINE_H

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "hw/io.h"
#include "lib/loop.h"
#include "machine/machine.h"

#define FAKE_GSIS 32

struct irq_recorder {
	int level[FAKE_GSIS];
	unsigned raised[FAKE_GSIS];  /* 0 -> 1 transitions */
	unsigned calls;
};

static struct irq_recorder irqs;

static void fake_set_irq(struct machine *m, unsigned gsi, int level)
{
	__atomic_add_fetch(&irqs.calls, 1, __ATOMIC_SEQ_CST);
	if (gsi >= FAKE_GSIS)
		return;
	if (level && !irqs.level[gsi])
		__atomic_add_fetch(&irqs.raised[gsi], 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&irqs.level[gsi], level, __ATOMIC_SEQ_CST);
}

static void fake_send_msi(struct machine *m, uint64_t addr, uint32_t data) {}

static const struct accel_ops fake_accel = {
	.name = "fake",
	.set_irq = fake_set_irq,
	.send_msi = fake_send_msi,
};

struct fake_machine {
	struct machine m;
	struct vm_config cfg;
	pthread_t loop_thread;
	int loop_running;
};

static void *fake_loop_main(void *opaque)
{
	loop_run(opaque);
	return NULL;
}

static inline void fake_machine_init(struct fake_machine *f)
{
	memset(f, 0, sizeof(*f));
	memset(&irqs, 0, sizeof(irqs));
	f->cfg.cpus = 1;
	f->cfg.console = CONSOLE_NONE;
	f->m.cfg = &f->cfg;
	f->m.accel = &fake_accel;
	f->m.ncpus = 1;
	f->m.pio = io_space_new("pio");
	f->m.mmio = io_space_new("mmio");
	f->m.loop = loop_new();
}

static inline void fake_machine_start_loop(struct fake_machine *f)
{
	pthread_create(&f->loop_thread, NULL, fake_loop_main, f->m.loop);
	f->loop_running = 1;
}

static inline void fake_machine_free(struct fake_machine *f)
{
	machine_run_teardown(&f->m);
	if (f->loop_running) {
		loop_stop(f->m.loop);
		pthread_join(f->loop_thread, NULL);
	}
	loop_free(f->m.loop);
	io_space_free(f->m.pio);
	io_space_free(f->m.mmio);
}

static inline int fake_run_state(struct fake_machine *f)
{
	return __atomic_load_n(&f->m.run_state, __ATOMIC_ACQUIRE);
}

static inline uint8_t inb(struct fake_machine *f, uint16_t port)
{
	uint64_t v;
	io_read(f->m.pio, port, 1, &v);
	return (uint8_t)v;
}

static inline void outb(struct fake_machine *f, uint16_t port, uint8_t v)
{
	io_write(f->m.pio, port, 1, v);
}

#endif
