/* i8042: controller command sequences Linux uses at boot, keyboard and
 * mouse replies with their interrupt lines, and the reset paths (command
 * 0xFE, output port bit 0, port 0x92 bit 0). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include "hw/i8042.h"
#include "hw_fake_machine.h"
#include "machine/layout.h"

struct fixture {
	struct fake_machine f;
	struct i8042 *k;
};

static int setup(void **state)
{
	struct fixture *x = calloc(1, sizeof(*x));
	fake_machine_init(&x->f);
	x->k = i8042_new(&x->f.m);
	assert_non_null(x->k);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *x = *state;
	i8042_free(x->k);
	fake_machine_free(&x->f);
	free(x);
	return 0;
}

static uint8_t status(struct fixture *x) { return inb(&x->f, PORT_I8042_CMD); }
static void cmd(struct fixture *x, uint8_t c) { outb(&x->f, PORT_I8042_CMD, c); }
static void data(struct fixture *x, uint8_t d) { outb(&x->f, PORT_I8042_DATA, d); }

/* Reads one byte, checking OBF (and the mouse bit) first. */
static uint8_t reply(struct fixture *x, int from_aux)
{
	uint8_t st = status(x);
	assert_true(st & I8042_STR_OBF);
	assert_int_equal(!!(st & I8042_STR_AUXOBF), from_aux);
	return inb(&x->f, PORT_I8042_DATA);
}

static void assert_empty(struct fixture *x)
{
	assert_int_equal(status(x) & I8042_STR_OBF, 0);
}

static void test_controller_commands(void **state)
{
	struct fixture *x = *state;
	assert_true(status(x) & I8042_STR_SYS);
	assert_empty(x);
	/* Linux: flush, read CTR, self test, port tests. */
	cmd(x, 0x20);
	assert_true(status(x) & I8042_STR_CMD);
	uint8_t ctr = reply(x, 0);
	assert_true(ctr & I8042_CTR_SYS);
	assert_true(ctr & I8042_CTR_KBDINT);
	cmd(x, 0xAA);
	assert_int_equal(reply(x, 0), 0x55);
	cmd(x, 0xAB);
	assert_int_equal(reply(x, 0), 0x00);
	cmd(x, 0xA9);
	assert_int_equal(reply(x, 0), 0x00);
	assert_empty(x);
	/* Write the command byte, read it back. */
	cmd(x, 0x60);
	data(x, 0x47);
	assert_false(status(x) & I8042_STR_CMD);
	cmd(x, 0x20);
	assert_int_equal(reply(x, 0), 0x47);
	/* Disable / enable keyboard and mouse ports. */
	cmd(x, 0xAD);
	cmd(x, 0xA7);
	cmd(x, 0x20);
	assert_int_equal(reply(x, 0), 0x47 | I8042_CTR_KBDDIS | I8042_CTR_AUXDIS);
	cmd(x, 0xAE);
	cmd(x, 0xA8);
	cmd(x, 0x20);
	assert_int_equal(reply(x, 0), 0x47);
	/* Output port read; A20 stays on after a write that keeps bit 0. */
	cmd(x, 0xD1);
	data(x, 0xDF);
	cmd(x, 0xD0);
	assert_int_equal(reply(x, 0), 0xDF);
	assert_int_equal(fake_run_state(&x->f), VM_RUNNING);
	/* Unknown commands are ignored without output. */
	cmd(x, 0xC8);
	assert_empty(x);
}

static void test_keyboard_and_irq1(void **state)
{
	struct fixture *x = *state;
	cmd(x, 0x60);
	data(x, I8042_CTR_KBDINT | I8042_CTR_SYS | I8042_CTR_XLATE);
	assert_int_equal(irqs.level[IRQ_I8042_KBD], 0);
	data(x, 0xFF); /* keyboard reset */
	assert_int_equal(irqs.level[IRQ_I8042_KBD], 1);
	assert_int_equal(reply(x, 0), 0xFA);
	/* Next byte: a new edge. */
	assert_int_equal(irqs.level[IRQ_I8042_KBD], 1);
	assert_int_equal(irqs.raised[IRQ_I8042_KBD], 2);
	assert_int_equal(reply(x, 0), 0xAA);
	assert_int_equal(irqs.level[IRQ_I8042_KBD], 0);
	data(x, 0xF2); /* identify */
	assert_int_equal(reply(x, 0), 0xFA);
	assert_int_equal(reply(x, 0), 0xAB);
	assert_int_equal(reply(x, 0), 0x83);
	data(x, 0xED); /* LEDs + parameter */
	assert_int_equal(reply(x, 0), 0xFA);
	data(x, 0x07);
	assert_int_equal(reply(x, 0), 0xFA);
	data(x, 0xF0); /* scan set query */
	assert_int_equal(reply(x, 0), 0xFA);
	data(x, 0x00);
	assert_int_equal(reply(x, 0), 0xFA);
	assert_int_equal(reply(x, 0), 0x02);
	data(x, 0xEE);
	assert_int_equal(reply(x, 0), 0xEE);
	data(x, 0x42); /* not a command */
	assert_int_equal(reply(x, 0), 0xFE);
	assert_empty(x);
	/* Interrupts off in the command byte: no line. */
	cmd(x, 0x60);
	data(x, I8042_CTR_SYS);
	unsigned before = irqs.raised[IRQ_I8042_KBD];
	data(x, 0xF4);
	assert_int_equal(reply(x, 0), 0xFA);
	assert_int_equal(irqs.raised[IRQ_I8042_KBD], before);
}

static void test_mouse_and_irq12(void **state)
{
	struct fixture *x = *state;
	cmd(x, 0x60);
	data(x, I8042_CTR_AUXINT | I8042_CTR_SYS);
	/* Loopback through the controller (Linux's AUX port check). */
	cmd(x, 0xD3);
	data(x, 0x5A);
	assert_int_equal(irqs.level[IRQ_I8042_AUX], 1);
	assert_int_equal(reply(x, 1), 0x5A);
	assert_int_equal(irqs.level[IRQ_I8042_AUX], 0);
	/* Commands to the mouse. */
	cmd(x, 0xD4);
	data(x, 0xFF);
	assert_int_equal(reply(x, 1), 0xFA);
	assert_int_equal(reply(x, 1), 0xAA);
	assert_int_equal(reply(x, 1), 0x00);
	cmd(x, 0xD4);
	data(x, 0xF3);
	assert_int_equal(reply(x, 1), 0xFA);
	cmd(x, 0xD4);
	data(x, 200);
	assert_int_equal(reply(x, 1), 0xFA);
	cmd(x, 0xD4);
	data(x, 0xE9); /* status: ack + 3 bytes with the rate just set */
	assert_int_equal(reply(x, 1), 0xFA);
	reply(x, 1);
	reply(x, 1);
	assert_int_equal(reply(x, 1), 200);
	cmd(x, 0xD4);
	data(x, 0xF2);
	assert_int_equal(reply(x, 1), 0xFA);
	assert_int_equal(reply(x, 1), 0x00);
	assert_empty(x);
	/* Keyboard-loopback byte is keyboard data. */
	cmd(x, 0xD2);
	data(x, 0x1C);
	assert_int_equal(reply(x, 0), 0x1C);
}

static void test_reset_command(void **state)
{
	struct fixture *x = *state;
	cmd(x, 0xFF); /* pulse nothing */
	assert_int_equal(fake_run_state(&x->f), VM_RUNNING);
	cmd(x, 0xFE);
	assert_int_equal(fake_run_state(&x->f), VM_STOP_RESET);
}

static void test_reset_output_port(void **state)
{
	struct fixture *x = *state;
	cmd(x, 0xD1);
	data(x, 0x02); /* bit 0 low: reset asserted */
	assert_int_equal(fake_run_state(&x->f), VM_STOP_RESET);
}

static void test_port92(void **state)
{
	struct fixture *x = *state;
	assert_int_equal(inb(&x->f, PORT_FAST_A20) & 0x02, 0x02);
	outb(&x->f, PORT_FAST_A20, 0x00);
	assert_int_equal(inb(&x->f, PORT_FAST_A20), 0x00);
	outb(&x->f, PORT_FAST_A20, 0x02);
	assert_int_equal(inb(&x->f, PORT_FAST_A20), 0x02);
	assert_int_equal(fake_run_state(&x->f), VM_RUNNING);
	outb(&x->f, PORT_FAST_A20, 0x03);
	assert_int_equal(fake_run_state(&x->f), VM_STOP_RESET);
}

static void test_port61_fallback(void **state)
{
	struct fixture *x = *state;
	/* No PIT registered in this machine: the stub owns 0x61. */
	outb(&x->f, PORT_PC_SPEAKER, 0x01); /* gate timer 2 */
	uint8_t a = inb(&x->f, PORT_PC_SPEAKER);
	uint8_t b = inb(&x->f, PORT_PC_SPEAKER);
	assert_int_equal(a & 0x0F, 0x01);
	assert_int_not_equal(a & 0x30, b & 0x30); /* refresh/out2 toggle */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_controller_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyboard_and_irq1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mouse_and_irq12, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_command, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_output_port, setup, teardown),
		cmocka_unit_test_setup_teardown(test_port92, setup, teardown),
		cmocka_unit_test_setup_teardown(test_port61_fallback, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
