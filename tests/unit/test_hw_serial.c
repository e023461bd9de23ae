/* 16550A UART: reset state, divisor latch, IIR priorities, FIFO and
 * trigger levels, loopback, output through the console back end, and
 * console input with back-pressure (nothing lost when the FIFO is full). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hw/serial.h"
#include "hw_fake_machine.h"
#include "machine/layout.h"
#include "vmm/console.h"

#define COM1 PORT_COM1

struct fixture {
	struct fake_machine f;
	struct serial *s;
};

static int setup(void **state)
{
	struct fixture *x = calloc(1, sizeof(*x));
	fake_machine_init(&x->f);
	x->s = serial_new(&x->f.m, COM1, IRQ_COM1, NULL);
	assert_non_null(x->s);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *x = *state;
	serial_free(x->s);
	fake_machine_free(&x->f);
	free(x);
	return 0;
}

static void test_reset_state(void **state)
{
	struct fixture *x = *state;
	assert_int_equal(inb(&x->f, COM1 + UART_IIR_FCR), 0x01);
	assert_int_equal(inb(&x->f, COM1 + UART_LSR), 0x60);
	assert_int_equal(inb(&x->f, COM1 + UART_MSR), 0xB0);
	assert_int_equal(inb(&x->f, COM1 + UART_LCR), 0x00);
	assert_int_equal(inb(&x->f, COM1 + UART_IER), 0x00);
	assert_int_equal(irqs.level[IRQ_COM1], 0);
	/* Scratch register holds a byte. */
	outb(&x->f, COM1 + UART_SCR, 0x5A);
	assert_int_equal(inb(&x->f, COM1 + UART_SCR), 0x5A);
}

static void test_divisor_latch(void **state)
{
	struct fixture *x = *state;
	outb(&x->f, COM1 + UART_LCR, 0x83); /* DLAB, 8N1 */
	outb(&x->f, COM1 + 0, 0x0C);
	outb(&x->f, COM1 + 1, 0x01);
	assert_int_equal(inb(&x->f, COM1 + 0), 0x0C);
	assert_int_equal(inb(&x->f, COM1 + 1), 0x01);
	outb(&x->f, COM1 + UART_LCR, 0x03);
	/* DLAB off: offset 1 is IER again, untouched by the DLM write. */
	assert_int_equal(inb(&x->f, COM1 + UART_IER), 0x00);
	outb(&x->f, COM1 + UART_IER, 0x05);
	assert_int_equal(inb(&x->f, COM1 + UART_IER), 0x05);
	outb(&x->f, COM1 + UART_LCR, 0x83);
	assert_int_equal(inb(&x->f, COM1 + 1), 0x01);
	assert_int_equal(inb(&x->f, COM1 + 0), 0x0C);
	/* A DLAB write to offset 0 transmits nothing. */
	outb(&x->f, COM1 + UART_LCR, 0x03);
	assert_int_equal(inb(&x->f, COM1 + UART_LSR) & 0x01, 0);
}

static void test_thre_interrupt(void **state)
{
	struct fixture *x = *state;
	outb(&x->f, COM1 + UART_IER, 0x02);
	/* Enabling THRE with an empty THR interrupts at once. */
	assert_int_equal(irqs.level[IRQ_COM1], 1);
	assert_int_equal(inb(&x->f, COM1 + UART_IIR_FCR), 0x02);
	/* That read acknowledged it. */
	assert_int_equal(irqs.level[IRQ_COM1], 0);
	assert_int_equal(inb(&x->f, COM1 + UART_IIR_FCR), 0x01);
	outb(&x->f, COM1 + 0, 'A');
	assert_int_equal(irqs.level[IRQ_COM1], 1);
	assert_int_equal(irqs.raised[IRQ_COM1], 2);
	/* Disabling the source drops the line. */
	outb(&x->f, COM1 + UART_IER, 0x00);
	assert_int_equal(irqs.level[IRQ_COM1], 0);
	assert_int_equal(inb(&x->f, COM1 + UART_IIR_FCR), 0x01);
}

static void test_fifo_trigger_levels(void **state)
{
	struct fixture *x = *state;
	outb(&x->f, COM1 + UART_IIR_FCR, 0xC7); /* enable, clear, trigger 14 */
	assert_int_equal(inb(&x->f, COM1 + UART_IIR_FCR), 0xC1);
	uint8_t data[20];
	for (int i = 0; i < 20; i++)
		data[i] = (uint8_t)('a' + i);
	outb(&x->f, COM1 + UART_IER, 0x01);
	assert_int_equal(serial_receive(x->s, data, 20), UART_FIFO_SIZE);
	assert_int_equal(inb(&x->f, COM1 + UART_IIR_FCR), 0xC4); /* 16 >= 14 */
	assert_int_equal(irqs.level[IRQ_COM1], 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(inb(&x->f, COM1), 'a' + i);
	/* 13 left, below the trigger: character timeout. */
	assert_int_equal(inb(&x->f, COM1 + UART_IIR_FCR), 0xCC);
	for (int i = 3; i < 16; i++) {
		assert_int_equal(inb(&x->f, COM1 + UART_LSR) & 0x01, 1);
		assert_int_equal(inb(&x->f, COM1), 'a' + i);
	}
	assert_int_equal(inb(&x->f, COM1 + UART_LSR) & 0x01, 0);
	assert_int_equal(inb(&x->f, COM1 + UART_IIR_FCR), 0xC1);
	assert_int_equal(irqs.level[IRQ_COM1], 0);

	/* Trigger 4: RDA only from the 4th byte on. */
	outb(&x->f, COM1 + UART_IIR_FCR, 0x41);
	assert_int_equal(serial_receive(x->s, data, 3), 3);
	assert_int_equal(inb(&x->f, COM1 + UART_IIR_FCR), 0xCC);
	assert_int_equal(serial_receive(x->s, data + 3, 1), 1);
	assert_int_equal(inb(&x->f, COM1 + UART_IIR_FCR), 0xC4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(inb(&x->f, COM1), 'a' + i);

	/* FIFO off (16450 mode): one byte of buffering, no FIFO bits. */
	outb(&x->f, COM1 + UART_IIR_FCR, 0x00);
	assert_int_equal(serial_receive(x->s, data, 5), 1);
	assert_int_equal(inb(&x->f, COM1 + UART_IIR_FCR), 0x04);
	assert_int_equal(inb(&x->f, COM1), 'a');
}

/* A FIFO clear drops looped-back bytes, but console input comes back
 * (in order) as soon as the guest listens again: a driver clearing its
 * FIFOs while setting up must not eat what the user typed. */
static void test_fifo_clear_keeps_console_input(void **state)
{
	struct fixture *x = *state;
	outb(&x->f, COM1 + UART_IIR_FCR, 0x01);
	outb(&x->f, COM1 + UART_IER, 0x01);
	assert_int_equal(serial_receive(x->s, (const uint8_t *)"hello", 5), 5);
	/* Set-up as Linux does it: interrupts off, clear, flushing reads. */
	outb(&x->f, COM1 + UART_IER, 0x00);
	outb(&x->f, COM1 + UART_IIR_FCR, 0x07);
	inb(&x->f, COM1 + UART_LSR);
	assert_int_equal(inb(&x->f, COM1 + UART_LSR) & 0x01, 0);
	inb(&x->f, COM1); /* a flushing read finds nothing to eat */
	/* More input waits behind the taken-back bytes. */
	assert_int_equal(serial_receive(x->s, (const uint8_t *)"!", 1), 0);
	outb(&x->f, COM1 + UART_IER, 0x01);
	assert_int_equal(serial_receive(x->s, (const uint8_t *)"!", 1), 1);
	char got[7] = { 0 };
	for (int i = 0; i < 6; i++) {
		assert_true(inb(&x->f, COM1 + UART_LSR) & 0x01);
		got[i] = (char)inb(&x->f, COM1);
	}
	assert_string_equal(got, "hello!");
	/* Loopback bytes do not survive a clear. */
	outb(&x->f, COM1 + UART_MCR, 0x10);
	outb(&x->f, COM1, 'L');
	outb(&x->f, COM1 + UART_IIR_FCR, 0x03);
	outb(&x->f, COM1 + UART_MCR, 0x00);
	assert_int_equal(inb(&x->f, COM1 + UART_LSR) & 0x01, 0);
}

static void test_iir_priorities(void **state)
{
	struct fixture *x = *state;
	outb(&x->f, COM1 + UART_IIR_FCR, 0x07);   /* FIFO, trigger 1 */
	outb(&x->f, COM1 + UART_MCR, 0x10);       /* loopback */
	inb(&x->f, COM1 + UART_MSR);              /* clear deltas from entering loopback */
	for (int i = 0; i < 17; i++)              /* one more than fits: overrun */
		outb(&x->f, COM1, (uint8_t)i);
	outb(&x->f, COM1 + UART_MCR, 0x11);       /* DTR -> DSR: a modem status change */
	outb(&x->f, COM1 + UART_IER, 0x0F);       /* everything */
	/* Line status first... */
	assert_int_equal(inb(&x->f, COM1 + UART_IIR_FCR), 0xC6);
	uint8_t lsr = inb(&x->f, COM1 + UART_LSR);
	assert_int_equal(lsr & 0x03, 0x03); /* DR and OE */
	assert_int_equal(inb(&x->f, COM1 + UART_LSR) & 0x02, 0); /* OE cleared by the read */
	/* ...then received data... */
	assert_int_equal(inb(&x->f, COM1 + UART_IIR_FCR), 0xC4);
	for (int i = 0; i < 16; i++)
		assert_int_equal(inb(&x->f, COM1), i);
	/* ...then THRE (the transmitter is idle again)... */
	assert_int_equal(inb(&x->f, COM1 + UART_IIR_FCR), 0xC2);
	/* ...acknowledged by that read, then modem status. */
	assert_int_equal(inb(&x->f, COM1 + UART_IIR_FCR), 0xC0);
	uint8_t msr = inb(&x->f, COM1 + UART_MSR);
	assert_int_equal(msr, 0x20 | 0x02); /* DSR, delta DSR */
	assert_int_equal(inb(&x->f, COM1 + UART_IIR_FCR), 0xC1);
	/* In loopback the chip's interrupt output stays off the bus. */
	assert_int_equal(irqs.raised[IRQ_COM1], 0);
}

static void test_loopback_probe(void **state)
{
	struct fixture *x = *state;
	/* Linux's 8250 probe: loopback with RTS and OUT2 must read back
	 * CTS and DCD. */
	outb(&x->f, COM1 + UART_MCR, 0x10 | 0x0A);
	assert_int_equal(inb(&x->f, COM1 + UART_MSR) & 0xF0, 0x90);
	outb(&x->f, COM1 + UART_MCR, 0x10 | 0x05); /* DTR, OUT1 -> DSR, RI */
	assert_int_equal(inb(&x->f, COM1 + UART_MSR) & 0xF0, 0x60);
	outb(&x->f, COM1 + UART_MCR, 0x10);        /* RI falls: TERI */
	assert_int_equal(inb(&x->f, COM1 + UART_MSR) & 0x0F, 0x04 | 0x02);
	/* Transmitted bytes come back, received input is ignored. */
	outb(&x->f, COM1, 'Z');
	uint8_t in = 'q';
	assert_int_equal(serial_receive(x->s, &in, 1), 0);
	assert_int_equal(inb(&x->f, COM1), 'Z');
	outb(&x->f, COM1 + UART_MCR, 0x0B);
	assert_int_equal(inb(&x->f, COM1 + UART_MSR) & 0xF0, 0xB0);
}

/* Input waits (in the console) until the guest listens: receive
 * interrupt enabled, or LSR polled in a loop; a driver's FIFO clear and
 * set-up in between must not eat it. */
static void test_input_waits_for_listener(void **state)
{
	struct fixture *x = *state;
	uint8_t b = 'k';
	assert_int_equal(serial_receive(x->s, &b, 1), 0);
	for (int i = 0; i < 63; i++)
		inb(&x->f, COM1 + UART_LSR);
	assert_int_equal(serial_receive(x->s, &b, 1), 0);
	inb(&x->f, COM1 + UART_LSR);
	assert_int_equal(serial_receive(x->s, &b, 1), 1); /* a polling reader */
	assert_int_equal(inb(&x->f, COM1), 'k');
	/* A FIFO set-up restarts the count; enabling RDA listens at once. */
	outb(&x->f, COM1 + UART_IIR_FCR, 0x07);
	assert_int_equal(serial_receive(x->s, &b, 1), 0);
	outb(&x->f, COM1 + UART_IER, 0x01);
	assert_int_equal(serial_receive(x->s, &b, 1), 1);
	assert_int_equal(irqs.level[IRQ_COM1], 1);
}

static void test_wide_and_stray_access(void **state)
{
	struct fixture *x = *state;
	/* A 2-byte read of LSR/MSR returns both registers. */
	uint64_t v;
	assert_true(io_read(x->f.m.pio, COM1 + UART_LSR, 2, &v));
	assert_int_equal(v, 0xB060);
	/* A 4-byte read hanging past the end gets 0xFF for the missing part. */
	assert_true(io_read(x->f.m.pio, COM1 + 6, 4, &v));
	assert_int_equal(v >> 16, 0xFFFF);
}

static void read_file_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = read(fd, buf, len - 1);
	assert_true(n >= 0);
	buf[n] = 0;
	close(fd);
}

static void test_output_to_console_file(void **state)
{
	struct fake_machine f;
	fake_machine_init(&f);
	char path[] = "/tmp/xvm-test-serial-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	f.m.console = console_open(&f.m, CONSOLE_FILE, path);
	assert_non_null(f.m.console);
	struct serial *s = serial_new(&f.m, COM1, IRQ_COM1, f.m.console);
	assert_non_null(s);
	const char *msg = "hello, serial\r\n";
	for (const char *p = msg; *p; p++)
		outb(&f, COM1, (uint8_t)*p);
	/* Loopback bytes never reach the console. */
	outb(&f, COM1 + UART_MCR, 0x10);
	outb(&f, COM1, 'X');
	outb(&f, COM1 + UART_MCR, 0x00);
	console_flush(f.m.console);
	char buf[128];
	read_file_text(path, buf, sizeof(buf));
	assert_string_equal(buf, msg);
	serial_free(s);
	console_close(f.m.console);
	/* A later generation (guest reboot) appends instead of truncating. */
	f.m.generation = 1;
	f.m.console = console_open(&f.m, CONSOLE_FILE, path);
	console_write(f.m.console, "more", 4);
	console_close(f.m.console);
	read_file_text(path, buf, sizeof(buf));
	assert_string_equal(buf, "hello, serial\r\nmore");
	unlink(path);
	fake_machine_free(&f);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Console input from a pipe on stdin reaches the guest in order and
 * complete although the guest reads slowly (the FIFO fills many times). */
static void test_input_back_pressure(void **state)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	int saved_stdin = dup(STDIN_FILENO);
	assert_true(saved_stdin >= 0);
	assert_int_equal(dup2(p[0], STDIN_FILENO), STDIN_FILENO);
	close(p[0]);

	struct fake_machine f;
	fake_machine_init(&f);
	f.m.console = console_open(&f.m, CONSOLE_STDIO, NULL);
	assert_non_null(f.m.console);
	struct serial *s = serial_new(&f.m, COM1, IRQ_COM1, f.m.console);
	fake_machine_start_loop(&f);
	outb(&f, COM1 + UART_IIR_FCR, 0x01);

	enum { N = 3000 };
	static uint8_t sent[N], got[N];
	for (int i = 0; i < N; i++)
		sent[i] = (uint8_t)(i * 7 + i / 256);
	assert_int_equal(write(p[1], sent, N), N);
	close(p[1]);

	size_t n = 0;
	for (int spins = 0; n < N && spins < 20000; spins++) {
		if (inb(&f, COM1 + UART_LSR) & 0x01) {
			got[n++] = inb(&f, COM1);
			spins = 0;
		} else {
			sleep_ms(1);
		}
	}
	assert_int_equal(n, N);
	assert_memory_equal(got, sent, N);

	serial_free(s);
	console_close(f.m.console);
	fake_machine_free(&f);
	dup2(saved_stdin, STDIN_FILENO);
	close(saved_stdin);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reset_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_divisor_latch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thre_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_trigger_levels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_clear_keeps_console_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iir_priorities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loopback_probe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_waits_for_listener, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wide_and_stray_access, setup, teardown),
		cmocka_unit_test(test_output_to_console_file),
		cmocka_unit_test(test_input_back_pressure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
