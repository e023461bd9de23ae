/* Console back end on a pseudo-terminal as stdin: raw mode while open,
 * the Ctrl-a escapes (x quits, Ctrl-a Ctrl-a sends one Ctrl-a, unknown
 * escapes are swallowed), the terminal restored on close; EOF on a pipe
 * just ends input; output to a stalled reader does not block for long. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "hw_fake_machine.h"
#include "lib/util.h"
#include "vmm/console.h"

static pthread_mutex_t got_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t got[256];
static size_t got_len;

static size_t receive(void *opaque, const uint8_t *buf, size_t len)
{
	pthread_mutex_lock(&got_lock);
	size_t n = MIN(len, sizeof(got) - got_len);
	memcpy(got + got_len, buf, n);
	got_len += n;
	pthread_mutex_unlock(&got_lock);
	return n;
}

static size_t received(void)
{
	pthread_mutex_lock(&got_lock);
	size_t n = got_len;
	pthread_mutex_unlock(&got_lock);
	return n;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void wait_for(size_t n)
{
	for (int i = 0; i < 2000 && received() < n; i++)
		sleep_ms(1);
}

static void test_tty_raw_and_escapes(void **state)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY);
	assert_true(master >= 0);
	assert_int_equal(grantpt(master), 0);
	assert_int_equal(unlockpt(master), 0);
	int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
	assert_true(slave >= 0);
	int saved = dup(STDIN_FILENO);
	assert_int_equal(dup2(slave, STDIN_FILENO), STDIN_FILENO);
	struct termios before;
	assert_int_equal(tcgetattr(STDIN_FILENO, &before), 0);
	assert_true(before.c_lflag & ICANON);

	struct fake_machine f;
	fake_machine_init(&f);
	got_len = 0;
	struct console *c = console_open(&f.m, CONSOLE_STDIO, NULL);
	assert_non_null(c);
	struct termios raw;
	assert_int_equal(tcgetattr(STDIN_FILENO, &raw), 0);
	assert_false(raw.c_lflag & (ICANON | ECHO | ISIG));
	assert_true(raw.c_oflag & OPOST);
	console_set_input(c, receive, NULL);
	fake_machine_start_loop(&f);

	/* Ctrl-c is just a byte; Ctrl-a Ctrl-a is one Ctrl-a; Ctrl-a q is
	 * swallowed. */
	const char keys[] = "ab\x03\x01\x01" "c\x01q" "d";
	assert_int_equal(write(master, keys, sizeof(keys) - 1), (ssize_t)sizeof(keys) - 1);
	wait_for(6);
	sleep_ms(20);
	assert_int_equal(received(), 6);
	assert_memory_equal(got, "ab\x03\x01" "cd", 6);
	assert_int_equal(fake_run_state(&f), VM_RUNNING);
	/* Ctrl-a x quits with status 0. */
	assert_int_equal(write(master, "\x01x", 2), 2);
	for (int i = 0; i < 2000 && fake_run_state(&f) == VM_RUNNING; i++)
		sleep_ms(1);
	assert_int_equal(fake_run_state(&f), VM_STOP_EXIT);
	assert_int_equal(f.m.exit_code, 0);
	assert_int_equal(received(), 6);

	console_close(c);
	struct termios after;
	assert_int_equal(tcgetattr(STDIN_FILENO, &after), 0);
	assert_true(after.c_lflag & ICANON);
	assert_int_equal(after.c_lflag, before.c_lflag);
	assert_int_equal(after.c_iflag, before.c_iflag);
	fake_machine_free(&f);
	dup2(saved, STDIN_FILENO);
	close(saved);
	close(slave);
	close(master);
}

static void test_pipe_passthrough_and_eof(void **state)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	int saved = dup(STDIN_FILENO);
	dup2(p[0], STDIN_FILENO);
	close(p[0]);
	struct fake_machine f;
	fake_machine_init(&f);
	got_len = 0;
	struct console *c = console_open(&f.m, CONSOLE_STDIO, NULL);
	assert_non_null(c);
	console_set_input(c, receive, NULL);
	fake_machine_start_loop(&f);
	/* Not a terminal: Ctrl-a x is data, not a quit. */
	assert_int_equal(write(p[1], "\x01x-", 3), 3);
	close(p[1]);
	wait_for(3);
	sleep_ms(30); /* EOF arrives: input ends, the VM does not stop */
	assert_int_equal(received(), 3);
	assert_memory_equal(got, "\x01x-", 3);
	assert_int_equal(fake_run_state(&f), VM_RUNNING);
	console_close(c);
	fake_machine_free(&f);
	dup2(saved, STDIN_FILENO);
	close(saved);
}

static void test_stalled_reader_does_not_block(void **state)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	int saved = dup(STDOUT_FILENO);
	dup2(p[1], STDOUT_FILENO);
	close(p[1]);
	struct fake_machine f;
	fake_machine_init(&f);
	f.cfg.console = CONSOLE_NONE;
	struct console *c = console_open(&f.m, CONSOLE_FILE, "/dev/stdout");
	assert_non_null(c);
	/* Nobody reads the pipe: 1 MiB of output must come back quickly. */
	static uint8_t chunk[4096];
	memset(chunk, 'x', sizeof(chunk));
	uint64_t t0 = clock_ns();
	for (int i = 0; i < 256; i++)
		console_write(c, chunk, sizeof(chunk));
	uint64_t dt = clock_ns() - t0;
	assert_true(dt < 2 * CONSOLE_STALL_MS * 1000000ULL + 500000000ULL);
	assert_true(console_dropped_bytes(c) > 0);
	console_close(c); /* cancels the writer stuck on the full pipe */
	fake_machine_free(&f);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	close(p[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tty_raw_and_escapes),
		cmocka_unit_test(test_pipe_passthrough_and_eof),
		cmocka_unit_test(test_stalled_reader_does_not_block),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
