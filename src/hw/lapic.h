/* Local APIC (xAPIC) of one vCPU, for the software CPU. One struct lapic per
 * vCPU, in vcpu->lapic. The lapic records what is pending (interrupts, NMI,
 * INIT, SIPI) and notifies the engine; the engine owns the CPU state and
 * asks the lapic for the next interrupt at instruction boundaries.
 *
 * Threads: every function is safe from any thread (a mutex per lapic);
 * interrupts arrive from other vCPUs (IPIs), device threads (IOAPIC, MSI)
 * and the timer thread. */
#ifndef XVM_HW_LAPIC_H
#define XVM_HW_LAPIC_H

#include <stdbool.h>
#include <stdint.h>

struct machine;
struct vcpu;
struct lapic;

#define MSR_IA32_APIC_BASE     0x1B
#define MSR_IA32_TSC_DEADLINE  0x6E0
#define APIC_BASE_BSP          (1ULL << 8)
#define APIC_BASE_X2APIC       (1ULL << 10)
#define APIC_BASE_ENABLE       (1ULL << 11)

/* Delivery modes (ICR, IOAPIC redirection entries, MSI data bits 10:8). */
enum apic_delivery {
	APIC_DM_FIXED = 0, APIC_DM_LOWEST = 1, APIC_DM_SMI = 2,
	APIC_DM_NMI = 4, APIC_DM_INIT = 5, APIC_DM_STARTUP = 6, APIC_DM_EXTINT = 7,
};
enum apic_shorthand {
	APIC_DEST_NOSHORT = 0, APIC_DEST_SELF = 1,
	APIC_DEST_ALL = 2, APIC_DEST_ALL_BUT_SELF = 3,
};

/* One interrupt message on the (virtual) APIC bus. */
struct apic_irq {
	uint8_t vector;
	uint8_t delivery;     /* enum apic_delivery */
	uint8_t shorthand;    /* enum apic_shorthand (IPIs only) */
	bool logical;         /* destination mode */
	bool level_trigger;   /* TMR is set: EOI is broadcast to the IOAPIC */
	bool assert;          /* false only for INIT level de-assert */
	uint32_t dest;        /* xAPIC: 8-bit ID or logical mask; 0xFF = all */
	struct lapic *source; /* sender, for shorthands (NULL from devices) */
};

/* Delivers one message to the lapics of m it addresses. Returns how many
 * took it (0: nobody is addressed, or every target dropped it). */
unsigned apic_deliver(struct machine *m, const struct apic_irq *irq);

struct lapic *lapic_new(struct vcpu *v);
void lapic_free(struct lapic *l);
/* Power-on state (the BSP's LINT0 is left in virtual-wire ExtINT mode and
 * LINT1 as NMI, as firmware would; APs wait for SIPI). */
void lapic_reset(struct lapic *l);

/* Called, from any thread and with no lapic lock held, whenever something
 * may have become deliverable for this vCPU: an interrupt, NMI, INIT, SIPI,
 * a timer expiry, or a priority drop (EOI, TPR write) that unblocks an
 * already pending one. It must not call back into the lapic: it sets a flag
 * the CPU loop polls and wakes the vCPU if halted. */
void lapic_set_notify(struct lapic *l, void (*notify)(void *opaque), void *opaque);

/* The xAPIC register page (4 KiB) at lapic_get_apic_base(), when
 * lapic_apic_base_enabled(): the engine routes those accesses here. */
uint64_t lapic_mmio_read(struct lapic *l, uint64_t offset, unsigned size);
void lapic_mmio_write(struct lapic *l, uint64_t offset, unsigned size, uint64_t value);
bool lapic_apic_base_enabled(struct lapic *l);
uint64_t lapic_get_apic_base(struct lapic *l);  /* the page address */

/* IA32_APIC_BASE (0x1B) and IA32_TSC_DEADLINE (0x6E0); x2APIC MSRs are not
 * implemented (x2APIC is not advertised). Return 0, or -1 for #GP (unknown
 * MSR or reserved bits). */
bool lapic_handles_msr(uint32_t msr);
int lapic_msr_read(struct lapic *l, uint32_t msr, uint64_t *value);
int lapic_msr_write(struct lapic *l, uint32_t msr, uint64_t value);

/* The highest-priority deliverable interrupt vector, acknowledged (IRR ->
 * ISR, or an INTA cycle on the PIC for ExtINT through LINT0); -1 if none.
 * Call only when RFLAGS.IF=1 and no interrupt shadow. */
int lapic_get_interrupt(struct lapic *l);
/* The same test without acknowledging (HLT wake-up, STI). */
bool lapic_has_interrupt(struct lapic *l);
/* true once per NMI received (IPI, LINT0/1 in NMI mode). */
bool lapic_take_nmi(struct lapic *l);
/* Takes a pending INIT and/or SIPI: *init = true if an INIT arrived (the
 * engine resets the vCPU to wait-for-SIPI; the lapic has reset itself);
 * *sipi_vector = V (0..255) to start the vCPU at V*0x1000 in real mode
 * (CS=V<<8, IP=0), else -1. A SIPI is only accepted while the vCPU waits
 * for one (after INIT, or an AP at power-on). Returns true if either. */
bool lapic_take_init_sipi(struct lapic *l, bool *init, int *sipi_vector);

/* Fires the lapic timer if it expired by now_tsc (guest_tsc(m)). Optional
 * fast path for the engine; the timer thread fires timers on its own. */
void lapic_poll_timer(struct lapic *l, uint64_t now_tsc);
/* The guest TSC value of the next timer expiry; UINT64_MAX if none. */
uint64_t lapic_next_deadline_tsc(struct lapic *l);

/* The vCPU's TSC is guest_tsc(m) + offset (after guest writes to IA32_TSC):
 * TSC-deadline values the guest writes are in its own TSC's units. */
void lapic_set_tsc_offset(struct lapic *l, int64_t offset);

/* MOV to/from CR8: CR8[3:0] = TPR[7:4]. */
void lapic_set_tpr(struct lapic *l, uint8_t cr8);
uint8_t lapic_get_tpr(struct lapic *l);

/* For the PIC: its INTR output changed (notifies the lapics that take
 * ExtINT through LINT0). */
void lapic_pic_intr_changed(struct machine *m);

#endif
