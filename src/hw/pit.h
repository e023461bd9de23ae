/* 8254 programmable interval timer at 0x40-0x43, counting at 1.193182 MHz
 * from the host monotonic clock. Channel 0 drives ISA IRQ0 (IOAPIC pin 2,
 * PIC IRQ0); channel 2's gate and output are on port 0x61 (bits 0 and 5),
 * which this device owns (bit 1, the speaker enable, is stored only). */
#ifndef XVM_HW_PIT_H
#define XVM_HW_PIT_H

#include <stdint.h>

#define PIT_HZ 1193182ULL

struct machine;
struct pit;

struct pit *pit_new(struct machine *m);   /* registers its ports */
void pit_free(struct pit *p);
void pit_reset(struct pit *p);
/* The CPU acknowledged ISA IRQ0 (INTA on the PIC, or the IOAPIC pin 2
 * vector taken by a LAPIC): sends the next owed tick, if any. */
void pit_tick_acked(struct pit *p);
/* Port ops, exposed for tests: port is the absolute I/O port. */
uint8_t pit_port_read(struct pit *p, uint16_t port);
void pit_port_write(struct pit *p, uint16_t port, uint8_t value);

#endif
