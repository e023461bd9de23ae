/* I/O APIC: 24 redirection entries turning device lines into APIC
 * messages. Register model of the Intel 82093AA datasheet (version 0x11),
 * plus the EOI register of later versions at 0x40 (harmless to offer).
 *
 * Lines are logical: level 1 means asserted, whatever polarity the guest
 * programs; the polarity bit is stored and read back only. So a guest and
 * its firmware tables can never disagree us into an interrupt storm. */
#include "hw/ioapic.h"
#include "hw/io.h"
#include "hw/lapic.h"
#include "lib/log.h"
#include "lib/util.h"
#include "machine/layout.h"
#include "machine/machine.h"

#include <pthread.h>
#include <stdlib.h>

#define IOAPIC_MMIO_SIZE 0x1000
#define REG_SELECT 0x00
#define REG_WINDOW 0x10
#define REG_EOI    0x40

#define IDX_ID      0x00
#define IDX_VERSION 0x01
#define IDX_ARB     0x02
#define IDX_REDIR   0x10

#define IOAPIC_VERSION 0x11

/* Redirection entry bits. */
#define RTE_VECTOR(e)     ((e) & 0xFF)
#define RTE_DM(e)         (((e) >> 8) & 7)
#define RTE_LOGICAL       (1ULL << 11)
#define RTE_DELIVS        (1ULL << 12)
#define RTE_POLARITY_LOW  (1ULL << 13)
#define RTE_REMOTE_IRR    (1ULL << 14)
#define RTE_LEVEL         (1ULL << 15)
#define RTE_MASKED        (1ULL << 16)
#define RTE_DEST(e)       ((uint32_t)((e) >> 56))
/* The guest writes vector..mask (bits 0-16 except 12 and 14) and dest. */
#define RTE_WRITABLE      (0xFF00000000000000ULL | 0x1AFFFULL)

struct ioapic {
	pthread_mutex_t lock;
	struct machine *m;
	uint32_t select;
	uint32_t id;                 /* bits 27:24 */
	uint64_t rte[IOAPIC_PINS];
	uint32_t lines;              /* current input levels, bit per pin */
};

static bool line_up(const struct ioapic *io, unsigned pin)
{
	return io->lines >> pin & 1;
}

/* Sends pin's message if it may be sent now. Called with io->lock held:
 * delivering under it (the lock order is ioapic -> lapic) lets remote IRR
 * be set only when a LAPIC really took the interrupt, so a level pin aimed
 * at nobody (or at a disabled APIC) is re-sent once the guest fixes the
 * entry, instead of staying blocked forever. */
static void service_pin(struct ioapic *io, unsigned pin)
{
	uint64_t e = io->rte[pin];
	if (e & RTE_MASKED)
		return;
	if ((e & RTE_LEVEL) && (!line_up(io, pin) || (e & RTE_REMOTE_IRR)))
		return;
	struct apic_irq msg = {
		.vector = RTE_VECTOR(e),
		.delivery = RTE_DM(e),
		.logical = e & RTE_LOGICAL,
		.level_trigger = e & RTE_LEVEL,
		.assert = true,
		.dest = RTE_DEST(e),
	};
	if (msg.delivery == APIC_DM_STARTUP || msg.delivery == 3 || msg.delivery == APIC_DM_SMI) {
		log_once(LOG_WARN, "ioapic: pin %u uses delivery mode %u; ignored",
			 pin, msg.delivery);
		return;
	}
	unsigned taken = apic_deliver(io->m, &msg);
	/* Remote IRR: a LAPIC accepted a level interrupt; its EOI clears it.
	 * NMI, INIT and ExtINT are never EOI'd, so they do not set it. */
	if ((e & RTE_LEVEL) && taken &&
	    (msg.delivery == APIC_DM_FIXED || msg.delivery == APIC_DM_LOWEST))
		io->rte[pin] |= RTE_REMOTE_IRR;
}

void ioapic_set_irq(struct ioapic *io, unsigned pin, int level)
{
	if (pin >= IOAPIC_PINS) {
		log_once(LOG_WARN, "ioapic: no pin %u", pin);
		return;
	}
	pthread_mutex_lock(&io->lock);
	bool was = line_up(io, pin);
	if (level)
		io->lines |= 1u << pin;
	else
		io->lines &= ~(1u << pin);
	/* Edge pins fire on the rising edge only; a masked edge is lost. */
	if (level && ((io->rte[pin] & RTE_LEVEL) || !was))
		service_pin(io, pin);
	pthread_mutex_unlock(&io->lock);
}

void ioapic_eoi(struct ioapic *io, uint8_t vector)
{
	pthread_mutex_lock(&io->lock);
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
		uint64_t e = io->rte[pin];
		if (RTE_VECTOR(e) != vector || !(e & RTE_LEVEL) || !(e & RTE_REMOTE_IRR))
			continue;
		io->rte[pin] &= ~RTE_REMOTE_IRR;
		/* Still asserted: the device wants service again. */
		service_pin(io, pin);
	}
	pthread_mutex_unlock(&io->lock);
}

int ioapic_pin_vector(struct ioapic *io, unsigned pin)
{
	if (pin >= IOAPIC_PINS)
		return -1;
	pthread_mutex_lock(&io->lock);
	uint64_t e = io->rte[pin];
	pthread_mutex_unlock(&io->lock);
	return (e & RTE_MASKED) ? -1 : (int)RTE_VECTOR(e);
}

static uint32_t read_indirect(struct ioapic *io)
{
	uint32_t idx = io->select;
	switch (idx) {
	case IDX_ID:
	case IDX_ARB:
		return io->id;
	case IDX_VERSION:
		return (uint32_t)(IOAPIC_PINS - 1) << 16 | IOAPIC_VERSION;
	}
	if (idx >= IDX_REDIR && idx < IDX_REDIR + 2 * IOAPIC_PINS) {
		uint64_t e = io->rte[(idx - IDX_REDIR) / 2];
		return (idx & 1) ? (uint32_t)(e >> 32) : (uint32_t)e;
	}
	log_once(LOG_DEBUG, "ioapic: read of register 0x%x", idx);
	return 0;
}

static void write_indirect(struct ioapic *io, uint32_t value)
{
	uint32_t idx = io->select;
	if (idx == IDX_ID) {
		io->id = value & 0x0F000000u;
		return;
	}
	if (idx < IDX_REDIR || idx >= IDX_REDIR + 2 * IOAPIC_PINS) {
		log_once(LOG_DEBUG, "ioapic: write to read-only register 0x%x", idx);
		return;
	}
	unsigned pin = (idx - IDX_REDIR) / 2;
	uint64_t e = io->rte[pin];
	uint64_t v = (idx & 1) ? ((uint64_t)value << 32) | (e & 0xFFFFFFFFu)
			       : (e & 0xFFFFFFFF00000000ULL) | value;
	e = (e & ~RTE_WRITABLE) | (v & RTE_WRITABLE);
	/* An edge pin has no remote IRR. Linux clears a stuck remote IRR on
	 * a version 0x11 IOAPIC by switching the pin to edge and back. */
	if (!(e & RTE_LEVEL))
		e &= ~RTE_REMOTE_IRR;
	io->rte[pin] = e;
	/* Unmasking (or making level) an asserted level pin delivers it. */
	if (e & RTE_LEVEL)
		service_pin(io, pin);
}

uint64_t ioapic_mmio_read(void *opaque, uint64_t offset, unsigned size)
{
	struct ioapic *io = opaque;
	uint64_t v = 0;
	pthread_mutex_lock(&io->lock);
	if (offset == REG_SELECT)
		v = io->select;
	else if (offset == REG_WINDOW)
		v = read_indirect(io);
	pthread_mutex_unlock(&io->lock);
	if (size < 4)
		v &= (1ULL << (size * 8)) - 1;
	return v;
}

void ioapic_mmio_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct ioapic *io = opaque;
	if (offset == REG_EOI) {
		ioapic_eoi(io, (uint8_t)value);
		return;
	}
	pthread_mutex_lock(&io->lock);
	if (offset == REG_SELECT)
		io->select = (uint32_t)value & 0xFF;
	else if (offset == REG_WINDOW && size >= 4)
		write_indirect(io, (uint32_t)value);
	else
		log_once(LOG_DEBUG, "ioapic: write at 0x%llx size %u ignored",
			 (unsigned long long)offset, size);
	pthread_mutex_unlock(&io->lock);
}

static const struct io_ops ioapic_ops = {
	.read = ioapic_mmio_read,
	.write = ioapic_mmio_write,
};

void ioapic_reset(struct ioapic *io)
{
	pthread_mutex_lock(&io->lock);
	io->select = 0;
	io->id = 0;
	for (unsigned i = 0; i < IOAPIC_PINS; i++)
		io->rte[i] = RTE_MASKED;
	pthread_mutex_unlock(&io->lock);
}

struct ioapic *ioapic_new(struct machine *m)
{
	struct ioapic *io = xcalloc(1, sizeof(*io));
	pthread_mutex_init(&io->lock, NULL);
	io->m = m;
	ioapic_reset(io);
	if (m->mmio && io_register(m->mmio, IOAPIC_BASE, IOAPIC_MMIO_SIZE, &ioapic_ops, io, "ioapic") < 0) {
		log_err("ioapic: cannot register MMIO at 0x%llx", (unsigned long long)IOAPIC_BASE);
		pthread_mutex_destroy(&io->lock);
		free(io);
		return NULL;
	}
	return io;
}

void ioapic_free(struct ioapic *io)
{
	if (!io)
		return;
	if (io->m->mmio)
		io_unregister(io->m->mmio, IOAPIC_BASE, io);
	pthread_mutex_destroy(&io->lock);
	free(io);
}
