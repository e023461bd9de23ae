/* I/O APIC (82093AA-style, version 0x11, IOAPIC_PINS redirection entries)
 * at IOAPIC_BASE: IOREGSEL at 0x00, IOWIN at 0x10, EOI register at 0x40. */
#ifndef XVM_HW_IOAPIC_H
#define XVM_HW_IOAPIC_H

#include <stdint.h>

struct machine;
struct ioapic;

struct ioapic *ioapic_new(struct machine *m);   /* registers its MMIO page */
void ioapic_free(struct ioapic *io);
void ioapic_reset(struct ioapic *io);
/* level 1 = line asserted. Edge pins deliver on 0->1, level pins while
 * asserted and remote IRR is clear. */
void ioapic_set_irq(struct ioapic *io, unsigned pin, int level);
/* A local APIC EOI of a level-triggered vector (broadcast EOI). */
void ioapic_eoi(struct ioapic *io, uint8_t vector);
/* The vector of an unmasked pin, else -1. */
int ioapic_pin_vector(struct ioapic *io, unsigned pin);
/* MMIO ops, exposed for tests. */
uint64_t ioapic_mmio_read(void *opaque, uint64_t offset, unsigned size);
void ioapic_mmio_write(void *opaque, uint64_t offset, unsigned size, uint64_t value);

#endif
