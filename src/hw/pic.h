/* The PC's 8259A pair: master at 0x20/0x21, slave at 0xA0/0xA1 cascaded on
 * master IRQ2, edge/level control (ELCR) at 0x4D0/0x4D1. Its INTR output
 * reaches the BSP's local APIC through LINT0 (ExtINT, virtual wire). */
#ifndef XVM_HW_PIC_H
#define XVM_HW_PIC_H

#include <stdbool.h>
#include <stdint.h>

struct machine;
struct pic;

struct pic *pic_new(struct machine *m);   /* registers its ports */
void pic_free(struct pic *p);
void pic_reset(struct pic *p);
/* ISA IRQ 0..15; level 1 = asserted. Edge IRQs latch on 0->1; ELCR-level
 * IRQs request while asserted. */
void pic_set_irq(struct pic *p, unsigned irq, int level);
/* INTR output (lock-free read). */
bool pic_intr(struct pic *p);
/* INTA cycle: the vector of the highest-priority request (spurious IRQ7 or
 * IRQ15 vector if it vanished). */
int pic_acknowledge(struct pic *p);
/* Port ops, exposed for tests: port is the absolute I/O port. */
uint8_t pic_port_read(struct pic *p, uint16_t port);
void pic_port_write(struct pic *p, uint16_t port, uint8_t value);

#endif
