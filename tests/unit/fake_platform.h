/* A machine with N vCPUs' local APICs and the emulated platform, without
 * an engine or guest RAM, for the platform unit tests. */
#ifndef XVM_TESTS_FAKE_PLATFORM_H
#define XVM_TESTS_FAKE_PLATFORM_H

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hw/clock.h"
#include "hw/ioapic.h"
#include "hw/lapic.h"
#include "hw/pic.h"
#include "hw/pit.h"
#include "hw/platform.h"
#include "lib/util.h"
#include "machine/machine.h"

struct fake {
	struct machine m;
	int notified[MAX_VCPUS]; /* notify calls per vCPU (atomic) */
};

static void fake_notify(void *opaque)
{
	__atomic_add_fetch((int *)opaque, 1, __ATOMIC_SEQ_CST);
}

static inline struct fake *fake_new(unsigned ncpus, bool with_platform)
{
	struct fake *f = calloc(1, sizeof(*f));
	f->m.ncpus = ncpus;
	if (with_platform)
		assert_int_equal(platform_init(&f->m), 0);
	else
		clock_machine_init(&f->m);
	for (unsigned i = 0; i < ncpus; i++) {
		f->m.vcpus[i].m = &f->m;
		f->m.vcpus[i].index = i;
		struct lapic *l = lapic_new(&f->m.vcpus[i]);
		lapic_set_notify(l, fake_notify, &f->notified[i]);
		f->m.vcpus[i].lapic = l;
	}
	return f;
}

static inline void fake_free(struct fake *f)
{
	platform_destroy(&f->m);
	for (unsigned i = 0; i < f->m.ncpus; i++)
		lapic_free(f->m.vcpus[i].lapic);
	free(f);
}

static inline struct lapic *fake_lapic(struct fake *f, unsigned i)
{
	return f->m.vcpus[i].lapic;
}

static inline int fake_notified(struct fake *f, unsigned i)
{
	return __atomic_load_n(&f->notified[i], __ATOMIC_SEQ_CST);
}

static inline void sleep_us(unsigned us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

/* Waits (at most timeout_ms) until vCPU i was notified more than `than`
 * times; returns the count. */
static inline int wait_notified(struct fake *f, unsigned i, int than, unsigned timeout_ms)
{
	uint64_t end = clock_ns() + (uint64_t)timeout_ms * 1000000;
	while (fake_notified(f, i) <= than && clock_ns() < end)
		sleep_us(200);
	return fake_notified(f, i);
}

/* LAPIC register helpers. */
static inline uint32_t apic_read(struct lapic *l, unsigned reg)
{
	return (uint32_t)lapic_mmio_read(l, reg, 4);
}

static inline void apic_write(struct lapic *l, unsigned reg, uint32_t v)
{
	lapic_mmio_write(l, reg, 4, v);
}

/* Software-enables a lapic with spurious vector 0xFF. */
static inline void apic_enable(struct lapic *l)
{
	apic_write(l, 0xF0, 0x1FF);
}

static inline void apic_eoi(struct lapic *l)
{
	apic_write(l, 0xB0, 0);
}

static inline bool apic_irr(struct lapic *l, unsigned v)
{
	return apic_read(l, 0x200 + (v / 32) * 0x10) >> (v % 32) & 1;
}

static inline bool apic_isr(struct lapic *l, unsigned v)
{
	return apic_read(l, 0x100 + (v / 32) * 0x10) >> (v % 32) & 1;
}

static inline bool apic_tmr(struct lapic *l, unsigned v)
{
	return apic_read(l, 0x180 + (v / 32) * 0x10) >> (v % 32) & 1;
}

#endif
