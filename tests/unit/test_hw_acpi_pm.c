/* ACPI PM registers and debug-exit: PM timer rate and monotonicity, S5
 * power-off (and other sleep types ignored), SCI_EN, power button and the
 * SCI line, the 0xCF9 reset register, GPE0; debug-exit statuses for each
 * access width, and its absence without --debug-exit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <time.h>

#include "hw/acpi_pm.h"
#include "hw/debug_exit.h"
#include "hw_fake_machine.h"
#include "lib/util.h"
#include "machine/layout.h"

struct fixture {
	struct fake_machine f;
	struct acpi_pm *pm;
};

static int setup(void **state)
{
	struct fixture *x = calloc(1, sizeof(*x));
	fake_machine_init(&x->f);
	x->pm = acpi_pm_new(&x->f.m);
	assert_non_null(x->pm);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *x = *state;
	acpi_pm_free(x->pm);
	fake_machine_free(&x->f);
	free(x);
	return 0;
}

static uint64_t in(struct fixture *x, uint16_t port, unsigned size)
{
	uint64_t v;
	assert_true(io_read(x->f.m.pio, port, size, &v));
	return v;
}

static void out(struct fixture *x, uint16_t port, unsigned size, uint64_t v)
{
	assert_true(io_write(x->f.m.pio, port, size, v));
}

static void test_pm_timer(void **state)
{
	struct fixture *x = *state;
	uint32_t prev = (uint32_t)in(x, PORT_ACPI_PM_TMR, 4);
	for (int i = 0; i < 10000; i++) {
		uint32_t t = (uint32_t)in(x, PORT_ACPI_PM_TMR, 4);
		assert_true(t - prev < 0x80000000u); /* never goes backwards */
		prev = t;
	}
	/* The two reads happened somewhere inside [a1, a2] and [b1, b2]: the
	 * ticks between them must match that window at 3.579545 MHz, however
	 * loaded the host is. */
	uint64_t a1 = clock_ns();
	uint32_t a = (uint32_t)in(x, PORT_ACPI_PM_TMR, 4);
	uint64_t a2 = clock_ns();
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	uint64_t b1 = clock_ns();
	uint32_t b = (uint32_t)in(x, PORT_ACPI_PM_TMR, 4);
	uint64_t b2 = clock_ns();
	uint64_t got = (uint32_t)(b - a);
	uint64_t lo = (b1 - a2) * ACPI_PM_TIMER_HZ / 1000000000ULL;
	uint64_t hi = (b2 - a1) * ACPI_PM_TIMER_HZ / 1000000000ULL;
	assert_true(got + 2 >= lo);
	assert_true(got <= hi + 2);
	assert_true(got > 50 * 3579); /* at least the 50 ms slept */
	/* Byte reads of the upper half see the same counter. */
	uint8_t top = (uint8_t)in(x, PORT_ACPI_PM_TMR + 3, 1);
	assert_int_equal(top, (uint8_t)(acpi_pm_timer(x->pm) >> 24));
	/* Writes to the timer are ignored. */
	out(x, PORT_ACPI_PM_TMR, 4, 0);
	assert_true((uint32_t)in(x, PORT_ACPI_PM_TMR, 4) - b < 0x80000000u);
}

static void test_s5_power_off(void **state)
{
	struct fixture *x = *state;
	assert_int_equal(in(x, PORT_ACPI_PM1_CNT, 2) & ACPI_PM1_SCI_EN, ACPI_PM1_SCI_EN);
	/* SLP_TYP without SLP_EN does nothing; another sleep type neither. */
	out(x, PORT_ACPI_PM1_CNT, 2, ACPI_SLP_TYP_S5 << 10);
	assert_int_equal(fake_run_state(&x->f), VM_RUNNING);
	out(x, PORT_ACPI_PM1_CNT, 2, (1 << 10) | ACPI_SLP_EN);
	assert_int_equal(fake_run_state(&x->f), VM_RUNNING);
	/* SLP_EN reads as 0; SLP_TYP is kept. */
	assert_int_equal(in(x, PORT_ACPI_PM1_CNT, 2), (1 << 10) | ACPI_PM1_SCI_EN);
	out(x, PORT_ACPI_PM1_CNT, 2, (ACPI_SLP_TYP_S5 << 10) | ACPI_SLP_EN);
	assert_int_equal(fake_run_state(&x->f), VM_STOP_POWEROFF);
	assert_int_equal(x->f.m.exit_code, 0);
}

static void test_s5_byte_write(void **state)
{
	struct fixture *x = *state;
	/* The high byte alone carries SLP_TYP and SLP_EN. */
	out(x, PORT_ACPI_PM1_CNT + 1, 1, ((ACPI_SLP_TYP_S5 << 10) | ACPI_SLP_EN) >> 8);
	assert_int_equal(fake_run_state(&x->f), VM_STOP_POWEROFF);
}

static void test_power_button_sci(void **state)
{
	struct fixture *x = *state;
	acpi_pm_press_power_button(x->pm);
	assert_int_equal(in(x, PORT_ACPI_PM1_EVT, 2) & ACPI_PM1_PWRBTN, ACPI_PM1_PWRBTN);
	assert_int_equal(irqs.level[IRQ_ACPI_SCI], 0); /* not enabled */
	out(x, PORT_ACPI_PM1_EVT + 2, 2, ACPI_PM1_PWRBTN);
	assert_int_equal(in(x, PORT_ACPI_PM1_EVT + 2, 2), ACPI_PM1_PWRBTN);
	assert_int_equal(irqs.level[IRQ_ACPI_SCI], 1);
	/* Writing 0 to status changes nothing; writing 1 clears. */
	out(x, PORT_ACPI_PM1_EVT, 2, 0);
	assert_int_equal(irqs.level[IRQ_ACPI_SCI], 1);
	out(x, PORT_ACPI_PM1_EVT, 2, ACPI_PM1_PWRBTN);
	assert_int_equal(irqs.level[IRQ_ACPI_SCI], 0);
	assert_int_equal(in(x, PORT_ACPI_PM1_EVT, 2) & ACPI_PM1_PWRBTN, 0);
	/* A 4-byte access covers status and enable together. */
	uint32_t both = (uint32_t)in(x, PORT_ACPI_PM1_EVT, 4);
	assert_int_equal(both >> 16, ACPI_PM1_PWRBTN);
}

static void test_gpe0(void **state)
{
	struct fixture *x = *state;
	assert_int_equal(in(x, PORT_ACPI_GPE0, 4), 0);
	out(x, PORT_ACPI_GPE0 + 2, 2, 0x00FF);
	assert_int_equal(in(x, PORT_ACPI_GPE0 + 2, 2), 0x00FF);
	assert_int_equal(in(x, PORT_ACPI_GPE0, 2), 0);
	assert_int_equal(irqs.level[IRQ_ACPI_SCI], 0);
}

static void test_reset_register(void **state)
{
	struct fixture *x = *state;
	out(x, PORT_RESET_CF9, 1, 0x02); /* hard-reset type, not yet reset */
	assert_int_equal(fake_run_state(&x->f), VM_RUNNING);
	assert_int_equal(in(x, PORT_RESET_CF9, 1), 0x02);
	out(x, PORT_RESET_CF9, 1, ACPI_RESET_VALUE);
	assert_int_equal(fake_run_state(&x->f), VM_STOP_RESET);
}

static void check_debug_exit(unsigned size, uint64_t value, int status)
{
	struct fake_machine f;
	fake_machine_init(&f);
	f.cfg.debug_exit = true;
	assert_int_equal(debug_exit_init(&f.m), 0);
	assert_true(io_write(f.m.pio, PORT_DEBUG_EXIT, size, value));
	assert_int_equal(fake_run_state(&f), VM_STOP_EXIT);
	assert_int_equal(f.m.exit_code, status);
	fake_machine_free(&f);
}

static void test_debug_exit_statuses(void **state)
{
	check_debug_exit(1, 0x10, 33);
	check_debug_exit(1, 0x00, 1);
	check_debug_exit(1, 0x1FF, 0xFF << 1 | 1); /* only the written byte */
	check_debug_exit(2, 0x1234, 0x1234 << 1 | 1);
	check_debug_exit(4, 0x31, 0x63);
	assert_int_equal(debug_exit_status(0x7F) & 0xFF, 0xFF);
}

static void test_debug_exit_absent(void **state)
{
	struct fake_machine f;
	fake_machine_init(&f);
	assert_int_equal(debug_exit_init(&f.m), 0);
	assert_false(io_write(f.m.pio, PORT_DEBUG_EXIT, 1, 0x10));
	assert_int_equal(fake_run_state(&f), VM_RUNNING);
	fake_machine_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pm_timer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_s5_power_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_s5_byte_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_power_button_sci, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gpe0, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_register, setup, teardown),
		cmocka_unit_test(test_debug_exit_statuses),
		cmocka_unit_test(test_debug_exit_absent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
