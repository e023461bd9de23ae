/* Wiring of the emulated interrupt platform: GSI lines to the IOAPIC and
 * the PIC, MSI writes to the local APICs. */
#include "hw/platform.h"
#include "hw/clock.h"
#include "hw/ioapic.h"
#include "hw/lapic.h"
#include "hw/pic.h"
#include "hw/pit.h"
#include "lib/log.h"
#include "machine/layout.h"
#include "machine/machine.h"

#include <errno.h>

int platform_init(struct machine *m)
{
	clock_machine_init(m);
	m->ioapic = ioapic_new(m);
	m->pic = pic_new(m);
	m->pit = pit_new(m);
	if (!m->ioapic || !m->pic || !m->pit) {
		platform_destroy(m);
		return -EEXIST;
	}
	return 0;
}

void platform_destroy(struct machine *m)
{
	/* The PIT's timer raises lines: stop it first. */
	pit_free(m->pit);
	m->pit = NULL;
	pic_free(m->pic);
	m->pic = NULL;
	ioapic_free(m->ioapic);
	m->ioapic = NULL;
}

void platform_set_irq(struct machine *m, unsigned gsi, int level)
{
	if (gsi >= IOAPIC_PINS) {
		log_once(LOG_WARN, "platform: interrupt line GSI %u does not exist", gsi);
		return;
	}
	/* ISA IRQ0 (the PIT) is GSI 2 on the IOAPIC (the MADT override). */
	unsigned pin = gsi == 0 ? 2 : gsi;
	unsigned isa_irq = gsi == 2 ? 0 : gsi;
	if (m->ioapic)
		ioapic_set_irq(m->ioapic, pin, level);
	if (m->pic && isa_irq < 16)
		pic_set_irq(m->pic, isa_irq, level);
}

void platform_isa_irq_acked(struct machine *m, unsigned irq)
{
	if (irq == 0 && m->pit)
		pit_tick_acked(m->pit);
}

void platform_vector_acked(struct machine *m, uint8_t vector)
{
	if (m->pit && m->ioapic && ioapic_pin_vector(m->ioapic, 2) == vector)
		pit_tick_acked(m->pit);
}

/* MSI address: 0xFEE in bits 31:20, destination ID 19:12, redirection hint
 * bit 3, destination mode bit 2. Data: vector 7:0, delivery mode 10:8,
 * level (assert) bit 14, trigger mode bit 15. (SDM 10.11.) */
void platform_send_msi(struct machine *m, uint64_t addr, uint32_t data)
{
	if ((addr >> 20) != (LAPIC_BASE >> 20)) {
		log_once(LOG_WARN, "platform: MSI to 0x%llx is not an interrupt address; dropped",
			 (unsigned long long)addr);
		return;
	}
	struct apic_irq irq = {
		.vector = data & 0xFF,
		.delivery = (data >> 8) & 7,
		.logical = addr & (1u << 2),
		/* Trigger mode (bit 15) is ignored: a level-triggered MSI has
		 * no line for an EOI to re-sample, so it acts as edge. */
		.level_trigger = false,
		.assert = true,
		.dest = (addr >> 12) & 0xFF,
	};
	switch (irq.delivery) {
	case APIC_DM_FIXED:
	case APIC_DM_LOWEST:
	case APIC_DM_NMI:
	case APIC_DM_INIT:
	case APIC_DM_EXTINT:
		break;
	default:
		log_once(LOG_WARN, "platform: MSI with delivery mode %u dropped", irq.delivery);
		return;
	}
	apic_deliver(m, &irq);
}
