/* CMOS RTC: host time in BCD and binary, 12/24 hours, setting the clock,
 * register C flags and clearing, the interrupt line driven by the timer,
 * read-only registers, firmware memory bytes, hostile time values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <time.h>

#include "hw/rtc.h"
#include "hw_fake_machine.h"
#include "lib/util.h"
#include "machine/layout.h"

struct fixture {
	struct fake_machine f;
	struct rtc *r;
};

static int setup(void **state)
{
	struct fixture *x = calloc(1, sizeof(*x));
	fake_machine_init(&x->f);
	x->f.m.ram.low_size = 512 * MiB;
	x->f.m.ram.high_size = 1 * GiB;
	x->f.m.ncpus = 4;
	x->r = rtc_new(&x->f.m);
	assert_non_null(x->r);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *x = *state;
	if (x->f.loop_running) {
		/* Stop timer callbacks before the device goes. */
		loop_stop(x->f.m.loop);
		pthread_join(x->f.loop_thread, NULL);
		x->f.loop_running = 0;
	}
	rtc_free(x->r);
	fake_machine_free(&x->f);
	free(x);
	return 0;
}

static uint8_t cmos(struct fixture *x, uint8_t i)
{
	outb(&x->f, PORT_RTC, i);
	return inb(&x->f, PORT_RTC + 1);
}

static void cmos_set(struct fixture *x, uint8_t i, uint8_t v)
{
	outb(&x->f, PORT_RTC, i);
	outb(&x->f, PORT_RTC + 1, v);
}

static unsigned bcd(uint8_t v)
{
	assert_true((v & 0x0F) <= 9 && (v >> 4) <= 9);
	return (v >> 4) * 10 + (v & 0x0F);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static unsigned bin(uint8_t v) { return v; }

/* Reads the clock registers and checks them against the host's UTC time
 * taken before and after (retried when a second boundary fell in between,
 * which is what a guest does with UIP). */
static void check_host_time(struct fixture *x, unsigned (*dec)(uint8_t))
{
	for (int attempt = 0;; attempt++) {
		time_t before = time(NULL);
		struct tm tm = { 0 };
		tm.tm_sec = (int)dec(cmos(x, RTC_SECONDS));
		tm.tm_min = (int)dec(cmos(x, RTC_MINUTES));
		tm.tm_hour = (int)dec(cmos(x, RTC_HOURS));
		tm.tm_mday = (int)dec(cmos(x, RTC_DAY_OF_MONTH));
		tm.tm_mon = (int)dec(cmos(x, RTC_MONTH)) - 1;
		tm.tm_year = (int)(dec(cmos(x, RTC_CENTURY)) * 100 + dec(cmos(x, RTC_YEAR))) - 1900;
		unsigned wday = dec(cmos(x, RTC_DAY_OF_WEEK));
		time_t after = time(NULL);
		if (before != after && attempt < 10)
			continue;
		time_t rtc = timegm(&tm);
		assert_true(rtc >= before && rtc <= after);
		struct tm check;
		gmtime_r(&rtc, &check);
		assert_int_equal(wday, check.tm_wday + 1);
		return;
	}
}

static void test_host_time_bcd(void **state)
{
	struct fixture *x = *state;
	check_host_time(x, bcd);
	assert_int_equal(cmos(x, RTC_REG_D), RTC_D_VRT);
}

static void test_host_time_binary(void **state)
{
	struct fixture *x = *state;
	cmos_set(x, RTC_REG_B, RTC_B_24H | RTC_B_BINARY);
	check_host_time(x, bin);
}

static void test_set_clock_and_12h(void **state)
{
	struct fixture *x = *state;
	/* Set 2001-02-03 16:05:06 in BCD 24 h, as Linux does. */
	cmos_set(x, RTC_REG_B, RTC_B_SET | RTC_B_24H);
	cmos_set(x, RTC_SECONDS, 0x06);
	cmos_set(x, RTC_MINUTES, 0x05);
	cmos_set(x, RTC_HOURS, 0x16);
	cmos_set(x, RTC_DAY_OF_MONTH, 0x03);
	cmos_set(x, RTC_MONTH, 0x02);
	cmos_set(x, RTC_YEAR, 0x01);
	cmos_set(x, RTC_CENTURY, 0x20);
	/* Frozen while SET. */
	assert_int_equal(cmos(x, RTC_SECONDS), 0x06);
	cmos_set(x, RTC_REG_B, RTC_B_24H);
	assert_int_equal(cmos(x, RTC_HOURS), 0x16);
	assert_int_equal(cmos(x, RTC_DAY_OF_MONTH), 0x03);
	assert_int_equal(cmos(x, RTC_MONTH), 0x02);
	assert_int_equal(cmos(x, RTC_YEAR), 0x01);
	assert_int_equal(cmos(x, RTC_CENTURY), 0x20);
	assert_int_equal(cmos(x, RTC_DAY_OF_WEEK), 0x07); /* a Saturday */
	uint8_t s = cmos(x, RTC_SECONDS);
	assert_true(s >= 0x06 && s <= 0x09); /* it runs: a few seconds at most */
	/* 12-hour mode: 16h is 4 PM. */
	cmos_set(x, RTC_REG_B, 0);
	assert_int_equal(cmos(x, RTC_HOURS), 0x80 | 0x04);
	/* Binary 12-hour. */
	cmos_set(x, RTC_REG_B, RTC_B_BINARY);
	assert_int_equal(cmos(x, RTC_HOURS), 0x80 | 4);
	/* Writing one field of a running clock keeps the others. */
	cmos_set(x, RTC_REG_B, RTC_B_24H | RTC_B_BINARY);
	cmos_set(x, RTC_YEAR, 30);
	assert_int_equal(cmos(x, RTC_YEAR), 30);
	assert_int_equal(cmos(x, RTC_MONTH), 2);
	assert_int_equal(cmos(x, RTC_HOURS), 16);
}

static void test_hostile_values(void **state)
{
	struct fixture *x = *state;
	cmos_set(x, RTC_REG_B, RTC_B_SET);
	for (uint8_t i = 0; i < 10; i++)
		cmos_set(x, i, 0xFF);
	cmos_set(x, RTC_CENTURY, 0xFF);
	cmos_set(x, RTC_REG_B, 0x00);
	/* Whatever it made of it, reading back gives valid BCD. */
	bcd(cmos(x, RTC_SECONDS));
	bcd(cmos(x, RTC_MONTH));
	bcd(cmos(x, RTC_DAY_OF_MONTH));
	/* The far future (year 9999) and the far past (1900) keep working. */
	cmos_set(x, RTC_REG_B, RTC_B_SET | RTC_B_24H);
	cmos_set(x, RTC_CENTURY, 0x99);
	cmos_set(x, RTC_YEAR, 0x99);
	cmos_set(x, RTC_MONTH, 0x12);
	cmos_set(x, RTC_DAY_OF_MONTH, 0x31);
	cmos_set(x, RTC_REG_B, RTC_B_24H);
	assert_int_equal(cmos(x, RTC_CENTURY), 0x99);
	assert_int_equal(cmos(x, RTC_MONTH), 0x12);
	cmos(x, RTC_REG_C);
	cmos_set(x, RTC_REG_B, RTC_B_SET | RTC_B_24H);
	cmos_set(x, RTC_CENTURY, 0x19);
	cmos_set(x, RTC_YEAR, 0x00);
	cmos_set(x, RTC_REG_B, RTC_B_24H);
	assert_int_equal(cmos(x, RTC_CENTURY), 0x19);
	assert_int_equal(cmos(x, RTC_YEAR), 0x00);
	/* Index bit 7 (NMI mask) does not select another register. */
	outb(&x->f, PORT_RTC, 0x80 | RTC_REG_D);
	assert_int_equal(inb(&x->f, PORT_RTC + 1), RTC_D_VRT);
}

static void test_read_only_registers(void **state)
{
	struct fixture *x = *state;
	cmos_set(x, RTC_REG_D, 0x00);
	assert_int_equal(cmos(x, RTC_REG_D), RTC_D_VRT);
	cmos_set(x, RTC_REG_A, 0xA6); /* UIP cannot be written */
	assert_int_equal(cmos(x, RTC_REG_A) & 0x7F, 0x26);
	cmos_set(x, RTC_REG_C, 0xF0);
	assert_int_equal(cmos(x, RTC_REG_C) & 0x80, 0);
	/* Plain CMOS memory. */
	cmos_set(x, 0x40, 0x99);
	assert_int_equal(cmos(x, 0x40), 0x99);
}

static void test_update_flag_and_clear(void **state)
{
	struct fixture *x = *state;
	cmos(x, RTC_REG_C);
	cmos_set(x, RTC_REG_B, RTC_B_24H | RTC_B_UIE);
	fake_machine_start_loop(&x->f);
	/* Within ~1 s the timer raises the line. */
	for (int i = 0; i < 150 && !__atomic_load_n(&irqs.level[IRQ_RTC], __ATOMIC_SEQ_CST); i++)
		sleep_ms(10);
	assert_int_equal(__atomic_load_n(&irqs.level[IRQ_RTC], __ATOMIC_SEQ_CST), 1);
	uint8_t c = cmos(x, RTC_REG_C);
	assert_int_equal(c & (RTC_C_IRQF | RTC_C_UF), RTC_C_IRQF | RTC_C_UF);
	/* Reading C cleared it and dropped the line. */
	assert_int_equal(__atomic_load_n(&irqs.level[IRQ_RTC], __ATOMIC_SEQ_CST), 0);
	assert_int_equal(cmos(x, RTC_REG_C) & RTC_C_IRQF, 0);
}

static void test_periodic_and_disabled_flags(void **state)
{
	struct fixture *x = *state;
	cmos(x, RTC_REG_C);
	/* Flags are set even when not enabled; IRQF only when enabled. */
	cmos_set(x, RTC_REG_A, 0x26); /* 1024 Hz */
	sleep_ms(5);
	uint8_t c = cmos(x, RTC_REG_C);
	assert_int_equal(c & (RTC_C_PF | RTC_C_IRQF), RTC_C_PF);
	assert_int_equal(irqs.raised[IRQ_RTC], 0);
	/* Enabled: a pending flag raises IRQF on the B write. */
	sleep_ms(5);
	cmos_set(x, RTC_REG_B, RTC_B_24H | RTC_B_PIE);
	assert_int_equal(irqs.level[IRQ_RTC], 1);
	c = cmos(x, RTC_REG_C);
	assert_int_equal(c & (RTC_C_PF | RTC_C_IRQF), RTC_C_PF | RTC_C_IRQF);
	assert_int_equal(irqs.level[IRQ_RTC], 0);
	/* Rate 0 stops the periodic flag. */
	cmos_set(x, RTC_REG_A, 0x20);
	cmos(x, RTC_REG_C);
	sleep_ms(5);
	assert_int_equal(cmos(x, RTC_REG_C) & RTC_C_PF, 0);
}

static void test_alarm(void **state)
{
	struct fixture *x = *state;
	cmos_set(x, RTC_REG_B, RTC_B_24H | RTC_B_BINARY);
	/* Alarm "every second" (all don't-care). */
	cmos_set(x, RTC_SECONDS_ALARM, 0xC0);
	cmos_set(x, RTC_MINUTES_ALARM, 0xFF);
	cmos_set(x, RTC_HOURS_ALARM, 0xC5);
	cmos(x, RTC_REG_C);
	cmos_set(x, RTC_REG_B, RTC_B_24H | RTC_B_BINARY | RTC_B_AIE);
	sleep_ms(1100);
	assert_int_equal(cmos(x, RTC_REG_C) & (RTC_C_AF | RTC_C_IRQF), RTC_C_AF | RTC_C_IRQF);
	/* An alarm an hour away does not fire within a second. */
	uint8_t h = cmos(x, RTC_HOURS);
	cmos_set(x, RTC_HOURS_ALARM, (uint8_t)((h + 1) % 24));
	cmos(x, RTC_REG_C);
	sleep_ms(1100);
	assert_int_equal(cmos(x, RTC_REG_C) & RTC_C_AF, 0);
}

static void test_firmware_memory_bytes(void **state)
{
	struct fixture *x = *state;
	assert_int_equal(cmos(x, 0x15) | cmos(x, 0x16) << 8, 640);
	assert_int_equal(cmos(x, 0x17) | cmos(x, 0x18) << 8, 0xFFFF); /* capped */
	assert_int_equal(cmos(x, 0x30) | cmos(x, 0x31) << 8, 0xFFFF);
	assert_int_equal(cmos(x, 0x34) | cmos(x, 0x35) << 8, (512 - 16) * 16);
	assert_int_equal(cmos(x, 0x5B) | cmos(x, 0x5C) << 8 | cmos(x, 0x5D) << 16, 16384);
	assert_int_equal(cmos(x, 0x5F), 3);
	unsigned sum = 0;
	for (uint8_t i = 0x10; i <= 0x2D; i++)
		sum += cmos(x, i);
	assert_int_equal(cmos(x, 0x2E) << 8 | cmos(x, 0x2F), sum);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_host_time_bcd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_time_binary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_clock_and_12h, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_flag_and_clear, setup, teardown),
		cmocka_unit_test_setup_teardown(test_periodic_and_disabled_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alarm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_firmware_memory_bytes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
