/* Unit tests for the IOAPIC (registers, edge and level pins, remote IRR,
 * re-delivery after EOI, destinations), GSI routing and MSI decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_platform.h"
#include "hw/io.h"
#include "machine/layout.h"

#define RTE_LEVEL      (1u << 15)
#define RTE_MASKED     (1u << 16)
#define RTE_REMOTE_IRR (1u << 14)
#define RTE_LOGICAL    (1u << 11)
#define RTE_ACTIVE_LOW (1u << 13)

static uint32_t ioreg_read(struct fake *f, uint32_t index)
{
	ioapic_mmio_write(f->m.ioapic, 0x00, 4, index);
	return (uint32_t)ioapic_mmio_read(f->m.ioapic, 0x10, 4);
}

static void ioreg_write(struct fake *f, uint32_t index, uint32_t v)
{
	ioapic_mmio_write(f->m.ioapic, 0x00, 4, index);
	ioapic_mmio_write(f->m.ioapic, 0x10, 4, v);
}

static void set_rte(struct fake *f, unsigned pin, uint32_t lo, uint8_t dest)
{
	ioreg_write(f, 0x10 + 2 * pin + 1, (uint32_t)dest << 24);
	ioreg_write(f, 0x10 + 2 * pin, lo);
}

static struct fake *setup(unsigned ncpus)
{
	struct fake *f = fake_new(ncpus, true);
	for (unsigned i = 0; i < ncpus; i++)
		apic_enable(fake_lapic(f, i));
	return f;
}

static void test_registers(void **state)
{
	struct fake *f = setup(1);
	/* Version 0x11 with 24 entries (max redirection entry 23). */
	assert_int_equal(ioreg_read(f, 0x01), 0x00170011);
	ioreg_write(f, 0x00, 0x0A000000);
	assert_int_equal(ioreg_read(f, 0x00), 0x0A000000);
	assert_int_equal(ioreg_read(f, 0x02), 0x0A000000);
	/* Every entry starts masked. */
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
		assert_int_equal(ioreg_read(f, 0x10 + 2 * pin), RTE_MASKED);
	/* Read-only bits (delivery status 12, remote IRR 14) stay clear. */
	set_rte(f, 3, 0xFFFFFFFF, 0xFF);
	assert_int_equal(ioreg_read(f, 0x10 + 6), 0x1AFFF);
	assert_int_equal(ioreg_read(f, 0x10 + 7), 0xFF000000);
	/* Out-of-range indexes read 0 and ignore writes. */
	ioreg_write(f, 0x10 + 2 * IOAPIC_PINS, 0x1234);
	assert_int_equal(ioreg_read(f, 0x10 + 2 * IOAPIC_PINS), 0);
	/* Registered in the MMIO space when the machine has one. */
	struct machine m = { .ncpus = 0 };
	m.mmio = io_space_new("mmio");
	struct ioapic *io = ioapic_new(&m);
	assert_non_null(io);
	uint64_t v;
	assert_true(io_write(m.mmio, IOAPIC_BASE, 4, 1));
	assert_true(io_read(m.mmio, IOAPIC_BASE + 0x10, 4, &v));
	assert_int_equal(v, 0x00170011);
	ioapic_free(io);
	io_space_free(m.mmio);
	fake_free(f);
}

static void test_edge_pin(void **state)
{
	struct fake *f = setup(2);
	struct lapic *ap = fake_lapic(f, 1);
	set_rte(f, 4, 0x34, 1); /* fixed, physical, edge, vector 0x34 to APIC 1 */
	int n = fake_notified(f, 1);
	platform_set_irq(&f->m, 4, 1);
	assert_true(fake_notified(f, 1) > n);
	assert_true(apic_irr(ap, 0x34));
	assert_false(apic_tmr(ap, 0x34));
	assert_false(apic_irr(fake_lapic(f, 0), 0x34));
	assert_int_equal(lapic_get_interrupt(ap), 0x34);
	/* Holding the line high is no new edge. */
	platform_set_irq(&f->m, 4, 1);
	assert_false(apic_irr(ap, 0x34));
	apic_eoi(ap);
	assert_false(apic_irr(ap, 0x34));
	/* A new rising edge is. */
	platform_set_irq(&f->m, 4, 0);
	platform_set_irq(&f->m, 4, 1);
	assert_true(apic_irr(ap, 0x34));
	assert_int_equal(lapic_get_interrupt(ap), 0x34);
	apic_eoi(ap);
	/* A masked edge is lost. */
	platform_set_irq(&f->m, 4, 0);
	set_rte(f, 4, 0x34 | RTE_MASKED, 1);
	platform_set_irq(&f->m, 4, 1);
	set_rte(f, 4, 0x34, 1);
	assert_false(lapic_has_interrupt(ap));
	fake_free(f);
}

static void test_level_pin_and_eoi(void **state)
{
	struct fake *f = setup(1);
	struct lapic *l = fake_lapic(f, 0);
	/* PCI INTx style: level, active low (the line level stays logical). */
	set_rte(f, 16, 0x61 | RTE_LEVEL | RTE_ACTIVE_LOW, 0);
	platform_set_irq(&f->m, 16, 1);
	assert_true(ioreg_read(f, 0x10 + 32) & RTE_REMOTE_IRR);
	assert_true(apic_tmr(l, 0x61));
	assert_int_equal(lapic_get_interrupt(l), 0x61);
	/* Still asserted at EOI: delivered again. */
	apic_eoi(l);
	assert_true(apic_irr(l, 0x61));
	assert_true(ioreg_read(f, 0x10 + 32) & RTE_REMOTE_IRR);
	assert_int_equal(lapic_get_interrupt(l), 0x61);
	/* The device deasserts before the EOI: no re-delivery. */
	platform_set_irq(&f->m, 16, 0);
	apic_eoi(l);
	assert_false(apic_irr(l, 0x61));
	assert_false(ioreg_read(f, 0x10 + 32) & RTE_REMOTE_IRR);
	/* Remote IRR blocks a second message until the EOI. */
	platform_set_irq(&f->m, 16, 1);
	assert_int_equal(lapic_get_interrupt(l), 0x61);
	platform_set_irq(&f->m, 16, 0);
	platform_set_irq(&f->m, 16, 1);
	assert_false(apic_irr(l, 0x61));
	/* Linux's way to clear a stuck remote IRR on a version 0x11 IOAPIC:
	 * switch the pin to edge and back. */
	set_rte(f, 16, 0x61 | RTE_MASKED, 0);
	assert_false(ioreg_read(f, 0x10 + 32) & RTE_REMOTE_IRR);
	/* Unmasking a level pin whose line is up delivers it. */
	set_rte(f, 16, 0x61 | RTE_LEVEL, 0);
	assert_true(apic_irr(l, 0x61));
	assert_true(ioreg_read(f, 0x10 + 32) & RTE_REMOTE_IRR);
	/* The EOI register (offset 0x40) clears remote IRR by vector. */
	platform_set_irq(&f->m, 16, 0);
	ioapic_mmio_write(f->m.ioapic, 0x40, 4, 0x62);
	assert_true(ioreg_read(f, 0x10 + 32) & RTE_REMOTE_IRR);
	ioapic_mmio_write(f->m.ioapic, 0x40, 4, 0x61);
	assert_false(ioreg_read(f, 0x10 + 32) & RTE_REMOTE_IRR);
	fake_free(f);
}

static void test_level_pin_to_nobody(void **state)
{
	struct fake *f = setup(2);
	/* Aimed at an APIC ID that does not exist: nobody takes it, so
	 * remote IRR stays clear ... */
	set_rte(f, 10, 0x6A | RTE_LEVEL, 7);
	platform_set_irq(&f->m, 10, 1);
	assert_false(ioreg_read(f, 0x10 + 20) & RTE_REMOTE_IRR);
	/* ... and re-aiming the entry delivers the still-asserted line. */
	set_rte(f, 10, 0x6A | RTE_LEVEL, 1);
	assert_true(ioreg_read(f, 0x10 + 20) & RTE_REMOTE_IRR);
	assert_int_equal(lapic_get_interrupt(fake_lapic(f, 1)), 0x6A);
	/* A software-disabled APIC drops it too. */
	platform_set_irq(&f->m, 10, 0);
	apic_eoi(fake_lapic(f, 1));
	apic_write(fake_lapic(f, 0), 0xF0, 0xFF);
	set_rte(f, 10, 0x6A | RTE_LEVEL, 0);
	platform_set_irq(&f->m, 10, 1);
	assert_false(ioreg_read(f, 0x10 + 20) & RTE_REMOTE_IRR);
	fake_free(f);
}

static void test_destinations(void **state)
{
	struct fake *f = setup(4);
	for (unsigned i = 0; i < 4; i++)
		apic_write(fake_lapic(f, i), 0xD0, (1u << i) << 24);
	/* Logical flat mask 0x0C: CPUs 2 and 3. */
	set_rte(f, 5, 0x45 | RTE_LOGICAL, 0x0C);
	platform_set_irq(&f->m, 5, 1);
	assert_false(apic_irr(fake_lapic(f, 0), 0x45));
	assert_false(apic_irr(fake_lapic(f, 1), 0x45));
	assert_true(apic_irr(fake_lapic(f, 2), 0x45));
	assert_true(apic_irr(fake_lapic(f, 3), 0x45));
	/* Physical broadcast 0xFF. */
	set_rte(f, 6, 0x46, 0xFF);
	platform_set_irq(&f->m, 6, 1);
	for (unsigned i = 0; i < 4; i++)
		assert_true(apic_irr(fake_lapic(f, i), 0x46));
	/* Lowest priority: exactly one. */
	set_rte(f, 7, 0x47 | (1u << 8) | RTE_LOGICAL, 0x0F);
	platform_set_irq(&f->m, 7, 1);
	unsigned got = 0;
	for (unsigned i = 0; i < 4; i++)
		got += apic_irr(fake_lapic(f, i), 0x47);
	assert_int_equal(got, 1);
	/* NMI delivery mode. */
	set_rte(f, 8, (4u << 8), 3);
	platform_set_irq(&f->m, 8, 1);
	assert_true(lapic_take_nmi(fake_lapic(f, 3)));
	assert_false(lapic_take_nmi(fake_lapic(f, 2)));
	fake_free(f);
}

static void test_isa_routing(void **state)
{
	struct fake *f = setup(1);
	struct lapic *l = fake_lapic(f, 0);
	/* The PIT's IRQ0 arrives on IOAPIC pin 2 whichever name is used. */
	set_rte(f, 2, 0x30, 0);
	set_rte(f, 0, 0x3F, 0);
	platform_set_irq(&f->m, 0, 1);
	platform_set_irq(&f->m, 0, 0);
	assert_true(apic_irr(l, 0x30));
	assert_false(apic_irr(l, 0x3F));
	assert_int_equal(lapic_get_interrupt(l), 0x30);
	apic_eoi(l);
	platform_set_irq(&f->m, 2, 1);
	platform_set_irq(&f->m, 2, 0);
	assert_int_equal(lapic_get_interrupt(l), 0x30);
	apic_eoi(l);
	/* Lines that do not exist are ignored. */
	platform_set_irq(&f->m, IOAPIC_PINS, 1);
	platform_set_irq(&f->m, 1000, 1);
	assert_false(lapic_has_interrupt(l));
	fake_free(f);
}

static void test_msi(void **state)
{
	struct fake *f = setup(3);
	/* Physical destination 2, vector 0x55, fixed, edge. */
	platform_send_msi(&f->m, 0xFEE00000ULL | 2u << 12, 0x55);
	assert_true(apic_irr(fake_lapic(f, 2), 0x55));
	assert_false(apic_irr(fake_lapic(f, 0), 0x55));
	assert_false(apic_tmr(fake_lapic(f, 2), 0x55));
	/* Logical destination mode (bit 2), flat mask 0x03. */
	apic_write(fake_lapic(f, 0), 0xD0, 0x01000000);
	apic_write(fake_lapic(f, 1), 0xD0, 0x02000000);
	platform_send_msi(&f->m, 0xFEE00000ULL | 0x03u << 12 | 1u << 2, 0x56);
	assert_true(apic_irr(fake_lapic(f, 0), 0x56));
	assert_true(apic_irr(fake_lapic(f, 1), 0x56));
	assert_false(apic_irr(fake_lapic(f, 2), 0x56));
	/* NMI delivery mode. */
	platform_send_msi(&f->m, 0xFEE00000ULL | 1u << 12, 4u << 8);
	assert_true(lapic_take_nmi(fake_lapic(f, 1)));
	/* Not an interrupt address, or SMI: dropped. */
	platform_send_msi(&f->m, 0xFED00000ULL, 0x57);
	platform_send_msi(&f->m, 0xFEE00000ULL, 0x57 | 2u << 8);
	for (unsigned i = 0; i < 3; i++)
		assert_false(apic_irr(fake_lapic(f, i), 0x57));
	fake_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registers),
		cmocka_unit_test(test_edge_pin),
		cmocka_unit_test(test_level_pin_and_eoi),
		cmocka_unit_test(test_level_pin_to_nobody),
		cmocka_unit_test(test_destinations),
		cmocka_unit_test(test_isa_routing),
		cmocka_unit_test(test_msi),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
