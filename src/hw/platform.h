/* The emulated interrupt platform for engines without an in-kernel irqchip
 * (the software CPU): IOAPIC, 8259A pair, 8254 PIT, and the routing of GSI
 * lines and MSI writes to the per-vCPU local APICs (hw/lapic.h). */
#ifndef XVM_HW_PLATFORM_H
#define XVM_HW_PLATFORM_H

#include <stdint.h>

struct machine;

/* Creates the IOAPIC (MMIO at IOAPIC_BASE), the 8259 pair (ports 0x20/0xA0,
 * ELCR 0x4D0/0x4D1), the 8254 PIT (0x40-0x43 and port 0x61), sets
 * m->ioapic/pic/pit and the guest TSC epoch. Called by the engine's vm_init,
 * before the vCPUs' lapic_new. Returns 0 or -errno. */
int platform_init(struct machine *m);
void platform_destroy(struct machine *m);

/* A device interrupt line: level 1 = asserted (whatever polarity the guest
 * programs), 0 = deasserted. GSI 0..23 go to the IOAPIC pin of that number;
 * ISA lines (GSI < 16) also go to the PIC. GSI 0 and 2 both mean the PIT's
 * ISA IRQ0: IOAPIC pin 2 (the MADT override) and PIC IRQ0. Thread-safe. */
void platform_set_irq(struct machine *m, unsigned gsi, int level);
/* An MSI write: addr 0xFEExxxxx (dest ID bits 19:12, RH bit 3, DM bit 2),
 * data (vector 7:0, delivery mode 10:8, level 14, trigger 15). Thread-safe. */
void platform_send_msi(struct machine *m, uint64_t addr, uint32_t data);

/* The CPU acknowledged an interrupt: ISA IRQ irq through the PIC, or
 * vector through a LAPIC. The PIT re-injects owed ticks on these. */
void platform_isa_irq_acked(struct machine *m, unsigned irq);
void platform_vector_acked(struct machine *m, uint8_t vector);

#endif
