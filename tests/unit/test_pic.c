/* Unit tests for the 8259A pair: Linux's initialisation sequence, masking,
 * EOIs, priorities, cascade, auto-EOI, spurious IRQs, poll, special mask,
 * ELCR, and the ExtINT path through the BSP's LAPIC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_platform.h"
#include "hw/io.h"
#include "machine/layout.h"

#define M_CMD 0x20
#define M_DATA 0x21
#define S_CMD 0xA0
#define S_DATA 0xA1

/* arch/x86/kernel/i8259.c's init_8259A as a sequence of port writes. */
static void linux_init(struct pic *p, bool auto_eoi)
{
	pic_port_write(p, M_DATA, 0xFF);
	pic_port_write(p, S_DATA, 0xFF);
	pic_port_write(p, M_CMD, 0x11);          /* ICW1: edge, cascade, ICW4 */
	pic_port_write(p, M_DATA, 0x30);         /* ICW2: vectors 0x30-0x37 */
	pic_port_write(p, M_DATA, 0x04);         /* ICW3: slave on IR2 */
	pic_port_write(p, M_DATA, auto_eoi ? 0x03 : 0x01); /* ICW4: 8086 */
	pic_port_write(p, S_CMD, 0x11);
	pic_port_write(p, S_DATA, 0x38);
	pic_port_write(p, S_DATA, 0x02);         /* slave ID 2 */
	pic_port_write(p, S_DATA, 0x01);
	pic_port_write(p, M_DATA, 0x00);         /* unmask all */
	pic_port_write(p, S_DATA, 0x00);
}

static uint8_t read_isr(struct pic *p, uint16_t cmd)
{
	pic_port_write(p, cmd, 0x0B);
	uint8_t v = pic_port_read(p, cmd);
	pic_port_write(p, cmd, 0x0A);
	return v;
}

static struct fake *setup(bool auto_eoi)
{
	struct fake *f = fake_new(2, true);
	linux_init(f->m.pic, auto_eoi);
	return f;
}

static void test_init_and_ack(void **state)
{
	struct fake *f = setup(false);
	struct pic *p = f->m.pic;
	assert_int_equal(pic_port_read(p, M_DATA), 0);
	assert_false(pic_intr(p));
	pic_set_irq(p, 1, 1);
	pic_set_irq(p, 1, 0); /* a pulse: the edge is latched */
	assert_true(pic_intr(p));
	assert_int_equal(pic_port_read(p, M_CMD), 0x02); /* IRR */
	assert_int_equal(pic_acknowledge(p), 0x31);
	assert_false(pic_intr(p));
	assert_int_equal(read_isr(p, M_CMD), 0x02);
	assert_int_equal(pic_port_read(p, M_CMD), 0x00);
	pic_port_write(p, M_CMD, 0x61);          /* specific EOI IR1 */
	assert_int_equal(read_isr(p, M_CMD), 0);
	/* A new ICW1 forgets edge requests and unmasks. */
	pic_port_write(p, M_DATA, 0xFF);
	pic_set_irq(p, 3, 1);
	pic_set_irq(p, 3, 0);
	linux_init(p, false);
	assert_false(pic_intr(p));
	fake_free(f);
}

static void test_mask_and_priority(void **state)
{
	struct fake *f = setup(false);
	struct pic *p = f->m.pic;
	pic_port_write(p, M_DATA, 0x08);         /* mask IR3 */
	pic_set_irq(p, 3, 1);
	pic_set_irq(p, 3, 0);
	assert_false(pic_intr(p));
	assert_int_equal(pic_port_read(p, M_CMD), 0x08); /* still requested */
	pic_port_write(p, M_DATA, 0x00);
	assert_true(pic_intr(p));
	assert_int_equal(pic_acknowledge(p), 0x33);
	/* A lower priority request waits for IR3's EOI ... */
	pic_set_irq(p, 5, 1);
	assert_false(pic_intr(p));
	/* ... a higher one nests. */
	pic_set_irq(p, 1, 1);
	assert_true(pic_intr(p));
	assert_int_equal(pic_acknowledge(p), 0x31);
	assert_int_equal(read_isr(p, M_CMD), 0x0A);
	/* Non-specific EOI retires the highest priority in service (IR1). */
	pic_port_write(p, M_CMD, 0x20);
	assert_int_equal(read_isr(p, M_CMD), 0x08);
	assert_false(pic_intr(p));
	pic_port_write(p, M_CMD, 0x20);
	assert_true(pic_intr(p));
	assert_int_equal(pic_acknowledge(p), 0x35);
	pic_port_write(p, M_CMD, 0x20);
	/* Set priority: IR4 lowest, so IR5 beats IR1. */
	pic_port_write(p, M_CMD, 0xC4);
	pic_set_irq(p, 1, 0);
	pic_set_irq(p, 5, 0);
	pic_set_irq(p, 1, 1);
	pic_set_irq(p, 5, 1);
	assert_int_equal(pic_acknowledge(p), 0x35);
	assert_false(pic_intr(p)); /* IR1 now ranks below the in-service IR5 */
	pic_port_write(p, M_CMD, 0x65);
	assert_int_equal(pic_acknowledge(p), 0x31);
	fake_free(f);
}

static void test_cascade(void **state)
{
	struct fake *f = setup(false);
	struct pic *p = f->m.pic;
	pic_set_irq(p, 12, 1);
	assert_true(pic_intr(p));
	assert_int_equal(pic_port_read(p, M_CMD), 0x04); /* IR2 from the slave */
	assert_int_equal(pic_acknowledge(p), 0x3C);
	assert_int_equal(read_isr(p, M_CMD), 0x04);
	assert_int_equal(read_isr(p, S_CMD), 0x10);
	/* A master IRQ of lower priority than IR2 waits. */
	pic_set_irq(p, 4, 1);
	assert_false(pic_intr(p));
	/* Linux: specific EOI to the slave, then to the cascade. */
	pic_port_write(p, S_CMD, 0x64);
	pic_port_write(p, M_CMD, 0x62);
	assert_int_equal(read_isr(p, S_CMD), 0);
	assert_int_equal(read_isr(p, M_CMD), 0);
	assert_int_equal(pic_acknowledge(p), 0x34);
	pic_port_write(p, M_CMD, 0x64);
	/* Slave mask. */
	pic_port_write(p, S_DATA, 0x01);
	pic_set_irq(p, 8, 1);
	assert_false(pic_intr(p));
	pic_port_write(p, S_DATA, 0x00);
	assert_int_equal(pic_acknowledge(p), 0x38);
	fake_free(f);
}

static void test_auto_eoi_and_spurious(void **state)
{
	struct fake *f = setup(true);
	struct pic *p = f->m.pic;
	pic_set_irq(p, 6, 1);
	assert_int_equal(pic_acknowledge(p), 0x36);
	assert_int_equal(read_isr(p, M_CMD), 0);
	pic_set_irq(p, 6, 0);
	/* Level-triggered IRQs (ELCR) that vanish before the INTA cycle
	 * become spurious IRQ7 / IRQ15. */
	pic_port_write(p, 0x4D0, 0xFF);
	pic_port_write(p, 0x4D1, 0xFF);
	assert_int_equal(pic_port_read(p, 0x4D0), 0xF8);
	assert_int_equal(pic_port_read(p, 0x4D1), 0xDE);
	pic_set_irq(p, 5, 1);
	assert_true(pic_intr(p));
	pic_set_irq(p, 5, 0);
	assert_false(pic_intr(p));
	assert_int_equal(pic_acknowledge(p), 0x37);
	fake_free(f);

	f = setup(false);
	p = f->m.pic;
	pic_port_write(p, 0x4D1, 0x04);          /* IRQ10 level */
	pic_set_irq(p, 10, 1);
	assert_true(pic_intr(p));
	pic_set_irq(p, 10, 0);
	/* The cascade input follows the slave's output: nothing is left. */
	assert_false(pic_intr(p));
	assert_int_equal(pic_acknowledge(p), 0x37);
	/* Level: asserted again at EOI means requested again. */
	pic_set_irq(p, 10, 1);
	assert_int_equal(pic_acknowledge(p), 0x3A);
	assert_false(pic_intr(p));
	pic_port_write(p, S_CMD, 0x62);
	pic_port_write(p, M_CMD, 0x62);
	assert_true(pic_intr(p));
	assert_int_equal(pic_acknowledge(p), 0x3A);
	fake_free(f);
}

static void test_poll_and_special_mask(void **state)
{
	struct fake *f = setup(false);
	struct pic *p = f->m.pic;
	pic_set_irq(p, 4, 1);
	pic_port_write(p, M_CMD, 0x0C);          /* OCW3 poll */
	assert_int_equal(pic_port_read(p, M_CMD), 0x84);
	assert_int_equal(read_isr(p, M_CMD), 0x10);
	pic_port_write(p, M_CMD, 0x0C);
	assert_int_equal(pic_port_read(p, M_CMD), 0x00); /* nothing left */
	/* Special mask mode: masking the in-service IR4 lets IR6 through. */
	pic_set_irq(p, 6, 1);
	assert_false(pic_intr(p));
	pic_port_write(p, M_CMD, 0x68);          /* set special mask */
	pic_port_write(p, M_DATA, 0x10);
	assert_true(pic_intr(p));
	assert_int_equal(pic_acknowledge(p), 0x36);
	pic_port_write(p, M_CMD, 0x66);
	pic_port_write(p, M_CMD, 0x48);          /* reset special mask */
	pic_port_write(p, M_DATA, 0x00);
	pic_port_write(p, M_CMD, 0x64);
	assert_int_equal(read_isr(p, M_CMD), 0);
	fake_free(f);
}

static void test_extint_through_lapic(void **state)
{
	struct fake *f = setup(false);
	struct pic *p = f->m.pic;
	struct lapic *bsp = fake_lapic(f, 0), *ap = fake_lapic(f, 1);
	assert_false(lapic_has_interrupt(bsp));
	int n = fake_notified(f, 0), n_ap = fake_notified(f, 1);
	platform_set_irq(&f->m, 1, 1);           /* the keyboard line */
	platform_set_irq(&f->m, 1, 0);
	assert_true(fake_notified(f, 0) > n);
	assert_int_equal(fake_notified(f, 1), n_ap);
	assert_true(lapic_has_interrupt(bsp));
	assert_false(lapic_has_interrupt(ap));
	assert_int_equal(lapic_get_interrupt(bsp), 0x31);
	assert_false(lapic_has_interrupt(bsp));
	pic_port_write(p, M_CMD, 0x20);
	/* The PIT's line is PIC IRQ0 whether called GSI 0 or 2. */
	platform_set_irq(&f->m, 2, 1);
	platform_set_irq(&f->m, 2, 0);
	assert_int_equal(lapic_get_interrupt(bsp), 0x30);
	pic_port_write(p, M_CMD, 0x20);
	/* Masking LINT0 cuts the virtual wire. */
	apic_enable(bsp);
	lapic_mmio_write(bsp, 0x350, 4, 0x10700);
	platform_set_irq(&f->m, 1, 1);
	assert_false(lapic_has_interrupt(bsp));
	lapic_mmio_write(bsp, 0x350, 4, 0x00700);
	assert_int_equal(lapic_get_interrupt(bsp), 0x31);
	fake_free(f);
}

static void test_ports(void **state)
{
	struct machine m = { 0 };
	m.pio = io_space_new("pio");
	struct pic *p = pic_new(&m);
	assert_non_null(p);
	linux_init(p, false);
	uint64_t v;
	assert_true(io_write(m.pio, 0x21, 1, 0x5A));
	assert_true(io_read(m.pio, 0x21, 1, &v));
	assert_int_equal(v, 0x5A);
	assert_true(io_write(m.pio, 0x4D0, 2, 0x0C20));
	assert_true(io_read(m.pio, 0x4D0, 2, &v));
	assert_int_equal(v, 0x0C20);
	/* A second PIC cannot take the same ports. */
	assert_null(pic_new(&m));
	pic_free(p);
	io_space_free(m.pio);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_and_ack),
		cmocka_unit_test(test_mask_and_priority),
		cmocka_unit_test(test_cascade),
		cmocka_unit_test(test_auto_eoi_and_spurious),
		cmocka_unit_test(test_poll_and_special_mask),
		cmocka_unit_test(test_extint_through_lapic),
		cmocka_unit_test(test_ports),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
