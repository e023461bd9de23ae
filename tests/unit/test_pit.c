/* Unit tests for the 8254 PIT: counting, latch and read-back, access modes,
 * BCD, channel 2 through port 0x61 as Linux's calibration drives it, and
 * channel 0 interrupts (periodic and one-shot) through the IOAPIC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_platform.h"
#include "hw/io.h"
#include "machine/layout.h"

#define CH0 0x40
#define CH2 0x42
#define CTL 0x43
#define P61 0x61

static struct fake *setup(void)
{
	struct fake *f = fake_new(1, true);
	apic_enable(fake_lapic(f, 0));
	return f;
}

static uint16_t latch_read(struct pit *p, uint16_t port, unsigned ch)
{
	pit_port_write(p, CTL, (uint8_t)(ch << 6)); /* counter latch */
	uint8_t lo = pit_port_read(p, port);
	uint8_t hi = pit_port_read(p, port);
	return (uint16_t)(lo | hi << 8);
}

static void test_counting_and_readback(void **state)
{
	struct fake *f = setup();
	struct pit *p = f->m.pit;
	pit_port_write(p, CTL, 0x34);            /* ch0, lo/hi, mode 2 */
	/* Before the count is complete, read-back shows null count. */
	pit_port_write(p, CTL, 0xE2);            /* read-back status of ch0 */
	assert_int_equal(pit_port_read(p, CH0) & 0x7F, 0x74);
	pit_port_write(p, CH0, 0xA9);
	pit_port_write(p, CH0, 0x04);            /* 1193 = 1 ms */
	uint16_t a = latch_read(p, CH0, 0);
	assert_true(a >= 1 && a <= 1193);
	/* The latch holds until read, whatever the counter does. */
	pit_port_write(p, CTL, 0x00);
	sleep_us(300);
	pit_port_write(p, CTL, 0x00);            /* a second latch is ignored */
	uint8_t lo = pit_port_read(p, CH0), hi = pit_port_read(p, CH0);
	uint16_t b = (uint16_t)(lo | hi << 8);
	uint16_t c = latch_read(p, CH0, 0);
	assert_true(b >= 1 && b <= 1193 && c >= 1 && c <= 1193);
	assert_true(b != c);
	/* Read-back of count and status: status first, then the count. */
	pit_port_write(p, CTL, 0xC2);
	uint8_t st = pit_port_read(p, CH0);
	assert_int_equal(st & 0x7F, 0x34);       /* lo/hi, mode 2, binary */
	lo = pit_port_read(p, CH0);
	hi = pit_port_read(p, CH0);
	assert_true((lo | hi << 8) <= 1193);

	/* Low byte only access. */
	pit_port_write(p, CTL, 0x50);            /* ch1, lo only, mode 0 */
	pit_port_write(p, 0x41, 0xF0);
	uint8_t v1 = pit_port_read(p, 0x41), v2 = pit_port_read(p, 0x41);
	assert_true(v1 <= 0xF0 && v2 <= v1);
	/* High byte only: count 0x2000. */
	pit_port_write(p, CTL, 0x64);            /* ch1, hi only, mode 2 */
	pit_port_write(p, 0x41, 0x20);
	assert_true(pit_port_read(p, 0x41) <= 0x20);

	/* BCD: 1000 decimal counts in decimal digits. */
	pit_port_write(p, CTL, 0x71);            /* ch1, lo/hi, mode 0, BCD */
	pit_port_write(p, 0x41, 0x00);
	pit_port_write(p, 0x41, 0x10);
	uint16_t bcd = latch_read(p, 0x41, 1);
	for (int i = 0; i < 16; i += 4)
		assert_true(((bcd >> i) & 0xF) <= 9);
	assert_true(bcd <= 0x1000);
	fake_free(f);
}

/* Linux's pit_calibrate_tsc: channel 2, mode 0, gate through port 0x61,
 * poll OUT (bit 5) until the terminal count. */
static void test_channel2_port61(void **state)
{
	struct fake *f = setup();
	struct pit *p = f->m.pit;
	pit_port_write(p, P61, (pit_port_read(p, P61) & ~0x02) | 0x01);
	pit_port_write(p, CTL, 0xB0);            /* ch2, lo/hi, mode 0 */
	uint64_t t0 = clock_ns();
	pit_port_write(p, CH2, 11932 & 0xFF);    /* 10 ms */
	pit_port_write(p, CH2, 11932 >> 8);
	assert_false(pit_port_read(p, P61) & 0x20);
	unsigned loops = 0;
	while (!(pit_port_read(p, P61) & 0x20) && clock_ns() - t0 < 1000000000ULL)
		loops++;
	uint64_t dt = clock_ns() - t0;
	assert_true(pit_port_read(p, P61) & 0x20);
	assert_true(dt >= 9900000 && dt < 1000000000ULL);
	assert_int_equal(pit_port_read(p, P61) & 0x0F, 0x01);

	/* Gate low pauses a mode 0 count. */
	pit_port_write(p, CTL, 0xB0);
	pit_port_write(p, CH2, 0xFF);
	pit_port_write(p, CH2, 0xFF);
	pit_port_write(p, P61, 0x00);
	uint16_t a = latch_read(p, CH2, 2);
	sleep_us(2000);
	uint16_t b = latch_read(p, CH2, 2);
	assert_int_equal(a, b);
	pit_port_write(p, P61, 0x01);
	sleep_us(2000);
	assert_true(latch_read(p, CH2, 2) < b);

	/* Mode 1 waits for a gate trigger; OUT is low while counting. */
	pit_port_write(p, P61, 0x00);
	pit_port_write(p, CTL, 0xB2);
	pit_port_write(p, CH2, 0xFF);            /* 55 ms */
	pit_port_write(p, CH2, 0xFF);
	assert_true(pit_port_read(p, P61) & 0x20);
	pit_port_write(p, P61, 0x01);
	assert_false(pit_port_read(p, P61) & 0x20);
	sleep_us(80000);
	assert_true(pit_port_read(p, P61) & 0x20);

	/* Mode 3: a square wave on OUT. */
	pit_port_write(p, CTL, 0xB6);
	pit_port_write(p, CH2, 0x00);
	pit_port_write(p, CH2, 0x10);            /* 4096 ticks = 3.4 ms */
	bool seen[2] = { false, false };
	t0 = clock_ns();
	while (!(seen[0] && seen[1]) && clock_ns() - t0 < 1000000000ULL)
		seen[!!(pit_port_read(p, P61) & 0x20)] = true;
	assert_true(seen[0] && seen[1]);
	fake_free(f);
}

/* Counts vector v taken on the BSP for ms milliseconds. */
static int count_irqs(struct fake *f, int v, unsigned ms)
{
	struct lapic *l = fake_lapic(f, 0);
	int n = 0;
	uint64_t end = clock_ns() + (uint64_t)ms * 1000000;
	while (clock_ns() < end) {
		if (lapic_has_interrupt(l)) {
			assert_int_equal(lapic_get_interrupt(l), v);
			apic_eoi(l);
			n++;
		}
		sleep_us(100);
	}
	return n;
}

static void test_channel0_interrupts(void **state)
{
	struct fake *f = setup();
	struct pit *p = f->m.pit;
	/* IOAPIC pin 2 (the MADT override for IRQ0) -> vector 0x30. */
	ioapic_mmio_write(f->m.ioapic, 0, 4, 0x10 + 4);
	ioapic_mmio_write(f->m.ioapic, 0x10, 4, 0x30);
	/* Mode 2 at 2 ms: about 25 interrupts in 50 ms, fired by the timer
	 * thread without any poll. */
	pit_port_write(p, CTL, 0x34);
	pit_port_write(p, CH0, 2386 & 0xFF);
	pit_port_write(p, CH0, 2386 >> 8);
	int n = count_irqs(f, 0x30, 50);
	assert_true(n >= 5 && n <= 30);
	/* Mode 0 (Linux's pit_shutdown writes mode 0 with count 0): one
	 * interrupt after the count, then none. */
	pit_port_write(p, CTL, 0x30);
	count_irqs(f, 0x30, 1); /* drain one that raced the control word */
	pit_port_write(p, CH0, 2386 & 0xFF);
	pit_port_write(p, CH0, 2386 >> 8);
	n = count_irqs(f, 0x30, 150);
	assert_int_equal(n, 1);
	/* A tiny period (count 2: 1.7 us) still interrupts (at most once per
	 * 50 us, and one tick in flight until acknowledged). */
	/* Sampled before programming: the first tick may come at once, and
	 * the next waits for its acknowledgement. */
	int before = fake_notified(f, 0);
	pit_port_write(p, CTL, 0x34);
	pit_port_write(p, CH0, 2);
	pit_port_write(p, CH0, 0);
	assert_true(wait_notified(f, 0, before, 1000) > before);
	count_irqs(f, 0x30, 1);
	/* A control word stops channel 0 until a count is written. */
	pit_port_write(p, CTL, 0x34);
	count_irqs(f, 0x30, 1); /* drain one that raced the control word */
	assert_int_equal(count_irqs(f, 0x30, 10), 0);
	fake_free(f);
}

/* Takes and EOIs tick interrupts for ms milliseconds; returns how many. */
static int take_ticks(struct fake *f, bool pic, unsigned ms)
{
	struct lapic *l = fake_lapic(f, 0);
	int n = 0;
	uint64_t end = clock_ns() + (uint64_t)ms * 1000000;
	while (clock_ns() < end) {
		if (!lapic_has_interrupt(l)) {
			sleep_us(50);
			continue;
		}
		assert_int_equal(lapic_get_interrupt(l), 0x30);
		if (pic)
			pic_port_write(f->m.pic, 0x20, 0x20);
		else
			apic_eoi(l);
		n++;
	}
	return n;
}

/* Ticks that came while the vCPU did not take interrupts are re-injected
 * one per acknowledgement (a tick-counting guest keeps its time). */
static void test_tick_reinjection(void **state)
{
	for (int pic = 0; pic <= 1; pic++) {
		struct fake *f = setup();
		struct pit *p = f->m.pit;
		if (pic) {
			/* Linux's 8259A init; only IRQ0; BSP virtual wire. */
			static const uint8_t init[][2] = {
				{ 0x20, 0x11 }, { 0x21, 0x30 }, { 0x21, 0x04 }, { 0x21, 0x01 },
				{ 0xA0, 0x11 }, { 0xA1, 0x38 }, { 0xA1, 0x02 }, { 0xA1, 0x01 },
				{ 0x21, 0xFE }, { 0xA1, 0xFF },
			};
			for (unsigned i = 0; i < ARRAY_SIZE(init); i++)
				pic_port_write(f->m.pic, init[i][0], init[i][1]);
		} else {
			ioapic_mmio_write(f->m.ioapic, 0, 4, 0x10 + 4);
			ioapic_mmio_write(f->m.ioapic, 0x10, 4, 0x30);
		}
		pit_port_write(p, CTL, 0x34);
		pit_port_write(p, CH0, 1193 & 0xFF);     /* 1 ms */
		pit_port_write(p, CH0, 1193 >> 8);
		uint64_t t0 = clock_ns();
		sleep_us(40000);                         /* "descheduled" */
		int n = take_ticks(f, pic, 60);
		uint64_t ms = (clock_ns() - t0) / 1000000;
		/* About one per millisecond of the whole time, the 40 missed
		 * ones included (merged, they would give about 60). */
		assert_true((uint64_t)n * 10 >= ms * 8);
		assert_true((uint64_t)n <= ms + 5);
		fake_free(f);
	}
}

/* vmm tears down the vCPUs (and their LAPICs) before the platform: a PIT
 * still firing in between must not touch a freed LAPIC (ASan checks). */
static void test_teardown_while_firing(void **state)
{
	for (int round = 0; round < 20; round++) {
		struct fake *f = fake_new(2, true);
		for (unsigned i = 0; i < 2; i++)
			apic_enable(fake_lapic(f, i));
		ioapic_mmio_write(f->m.ioapic, 0, 4, 0x10 + 5);
		ioapic_mmio_write(f->m.ioapic, 0x10, 4, 0xFF000000u); /* broadcast */
		ioapic_mmio_write(f->m.ioapic, 0, 4, 0x10 + 4);
		ioapic_mmio_write(f->m.ioapic, 0x10, 4, 0x30);
		pit_port_write(f->m.pit, CTL, 0x34);
		pit_port_write(f->m.pit, CH0, 60);       /* every 50 us */
		pit_port_write(f->m.pit, CH0, 0);
		sleep_us(500);
		for (unsigned i = 0; i < 2; i++)
			lapic_free(fake_lapic(f, i));
		assert_null(f->m.vcpus[0].lapic);
		sleep_us(200);
		platform_destroy(&f->m);
		free(f);
	}
}

static void test_ports(void **state)
{
	struct machine m = { 0 };
	m.pio = io_space_new("pio");
	struct pit *p = pit_new(&m);
	assert_non_null(p);
	uint64_t v;
	assert_true(io_write(m.pio, CTL, 1, 0xB0));
	assert_true(io_write(m.pio, CH2, 1, 0x34));
	assert_true(io_write(m.pio, CH2, 1, 0x12));
	assert_true(io_write(m.pio, CTL, 1, 0xE8)); /* read-back status ch2 */
	assert_true(io_read(m.pio, CH2, 1, &v));
	assert_int_equal(v & 0x3F, 0x30);
	assert_true(io_write(m.pio, P61, 1, 0x03));
	assert_true(io_read(m.pio, P61, 1, &v));
	assert_int_equal(v & 0x0F, 0x03);
	pit_free(p);
	io_space_free(m.pio);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counting_and_readback),
		cmocka_unit_test(test_channel2_port61),
		cmocka_unit_test(test_channel0_interrupts),
		cmocka_unit_test(test_tick_reinjection),
		cmocka_unit_test(test_teardown_while_firing),
		cmocka_unit_test(test_ports),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
