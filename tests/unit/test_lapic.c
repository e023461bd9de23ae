/* Unit tests for the emulated local APIC: registers, priorities, IPIs
 * (fixed, lowest priority, NMI, INIT/SIPI, shorthands, logical modes),
 * the timer in its three modes, and the MSRs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_platform.h"
#include "machine/layout.h"

#define REG_ID     0x20
#define REG_VER    0x30
#define REG_TPR    0x80
#define REG_PPR    0xA0
#define REG_LDR    0xD0
#define REG_DFR    0xE0
#define REG_SVR    0xF0
#define REG_ESR    0x280
#define REG_ICR_LO 0x300
#define REG_ICR_HI 0x310
#define REG_LVT_TIMER 0x320
#define REG_LVT_LINT0 0x350
#define REG_LVT_ERROR 0x370
#define REG_TMICT  0x380
#define REG_TMCCT  0x390
#define REG_TDCR   0x3E0

static void send_ipi(struct lapic *from, uint8_t dest, uint32_t icr_lo)
{
	apic_write(from, REG_ICR_HI, (uint32_t)dest << 24);
	apic_write(from, REG_ICR_LO, icr_lo);
}

static void test_registers(void **state)
{
	struct fake *f = fake_new(2, false);
	struct lapic *bsp = fake_lapic(f, 0), *ap = fake_lapic(f, 1);
	assert_int_equal(apic_read(bsp, REG_ID), 0);
	assert_int_equal(apic_read(ap, REG_ID), 1u << 24);
	/* Integrated APIC, six LVT entries. */
	assert_int_equal(apic_read(bsp, REG_VER) & 0xFF, 0x14);
	assert_int_equal(apic_read(bsp, REG_VER) >> 16 & 0xFF, 5);
	/* Power-on: software disabled, DFR flat, every LVT masked except
	 * the BSP's virtual wire (LINT0 ExtINT) and NMI on LINT1. */
	assert_int_equal(apic_read(bsp, REG_SVR), 0xFF);
	assert_int_equal(apic_read(bsp, REG_DFR), 0xFFFFFFFFu);
	assert_int_equal(apic_read(bsp, REG_LVT_TIMER), 1u << 16);
	assert_int_equal(apic_read(bsp, REG_LVT_LINT0), 7u << 8);
	assert_int_equal(apic_read(ap, REG_LVT_LINT0), 1u << 16);
	/* While software disabled, LVT entries cannot be unmasked. */
	apic_write(bsp, REG_LVT_ERROR, 0xFE);
	assert_int_equal(apic_read(bsp, REG_LVT_ERROR), 0x100FE);
	apic_enable(bsp);
	apic_write(bsp, REG_LVT_ERROR, 0xFE);
	assert_int_equal(apic_read(bsp, REG_LVT_ERROR), 0xFE);
	/* Read-only bits stay (delivery status, remote IRR). */
	apic_write(bsp, REG_LVT_LINT0, 0xFFFFFFFF);
	assert_int_equal(apic_read(bsp, REG_LVT_LINT0), 0x1A7FF);
	/* Disabling again masks every LVT. */
	apic_write(bsp, REG_SVR, 0xFF);
	assert_true(apic_read(bsp, REG_LVT_ERROR) & (1u << 16));
	/* Byte reads inside a register; the rest of a 16-byte slot is 0. */
	assert_int_equal(lapic_mmio_read(ap, REG_ID + 3, 1), 1);
	assert_int_equal(lapic_mmio_read(ap, REG_ID + 4, 4), 0);
	/* CR8 <-> TPR[7:4]. */
	lapic_set_tpr(bsp, 0xA);
	assert_int_equal(apic_read(bsp, REG_TPR), 0xA0);
	apic_write(bsp, REG_TPR, 0x35);
	assert_int_equal(lapic_get_tpr(bsp), 3);
	fake_free(f);
}

static void test_fixed_ipi_and_priority(void **state)
{
	struct fake *f = fake_new(2, false);
	struct lapic *bsp = fake_lapic(f, 0), *ap = fake_lapic(f, 1);
	apic_enable(bsp);
	apic_enable(ap);
	assert_false(lapic_has_interrupt(ap));
	int before = fake_notified(f, 1), bsp_before = fake_notified(f, 0);
	send_ipi(bsp, 1, 0x51);
	send_ipi(bsp, 1, 0x32);
	assert_true(fake_notified(f, 1) >= before + 2);
	assert_int_equal(fake_notified(f, 0), bsp_before);
	assert_true(apic_irr(ap, 0x51) && apic_irr(ap, 0x32));
	assert_false(apic_irr(bsp, 0x51));

	/* TPR 0x40 lets class 5 through and blocks class 3. */
	apic_write(ap, REG_TPR, 0x40);
	assert_int_equal(apic_read(ap, REG_PPR), 0x40);
	assert_true(lapic_has_interrupt(ap));
	assert_int_equal(lapic_get_interrupt(ap), 0x51);
	assert_true(apic_isr(ap, 0x51));
	assert_false(apic_irr(ap, 0x51));
	/* PPR is now the in-service class; the same class does not nest. */
	assert_int_equal(apic_read(ap, REG_PPR), 0x50);
	send_ipi(bsp, 1, 0x55);
	assert_int_equal(lapic_get_interrupt(ap), -1);
	/* A higher class nests. */
	send_ipi(bsp, 1, 0x61);
	assert_int_equal(lapic_get_interrupt(ap), 0x61);
	apic_eoi(ap); /* retires 0x61 */
	assert_false(apic_isr(ap, 0x61));
	assert_true(apic_isr(ap, 0x51));
	apic_eoi(ap); /* retires 0x51 */
	assert_int_equal(lapic_get_interrupt(ap), 0x55);
	apic_eoi(ap);
	/* 0x32 waits for the TPR; lowering it notifies. */
	assert_false(lapic_has_interrupt(ap));
	int n = fake_notified(f, 1);
	lapic_set_tpr(ap, 0);
	assert_true(fake_notified(f, 1) > n);
	assert_int_equal(lapic_get_interrupt(ap), 0x32);
	apic_eoi(ap);
	assert_int_equal(lapic_get_interrupt(ap), -1);
	assert_int_equal(apic_read(ap, REG_PPR), 0);
	fake_free(f);
}

static void test_illegal_vector_and_disabled(void **state)
{
	struct fake *f = fake_new(2, false);
	struct lapic *bsp = fake_lapic(f, 0), *ap = fake_lapic(f, 1);
	/* A software-disabled APIC does not accept fixed interrupts. */
	apic_enable(bsp);
	send_ipi(bsp, 1, 0x40);
	assert_false(apic_irr(ap, 0x40));
	/* Sending vector 5 is a send-illegal-vector error, raised through
	 * the error LVT once ESR is written. */
	apic_write(bsp, REG_LVT_ERROR, 0xFE);
	send_ipi(bsp, 1, 0x05);
	assert_int_equal(apic_read(bsp, REG_ESR), 0);
	apic_write(bsp, REG_ESR, 0);
	assert_int_equal(apic_read(bsp, REG_ESR), 0x20);
	assert_int_equal(lapic_get_interrupt(bsp), 0xFE);
	apic_eoi(bsp);
	apic_write(bsp, REG_ESR, 0);
	assert_int_equal(apic_read(bsp, REG_ESR), 0);
	fake_free(f);
}

static void test_shorthands_and_broadcast(void **state)
{
	struct fake *f = fake_new(3, false);
	for (unsigned i = 0; i < 3; i++)
		apic_enable(fake_lapic(f, i));
	struct lapic *bsp = fake_lapic(f, 0);
	send_ipi(bsp, 0, 0x40 | (1u << 18));        /* self */
	send_ipi(bsp, 0, 0x41 | (3u << 18));        /* all but self */
	send_ipi(bsp, 0, 0x42 | (2u << 18));        /* all incl. self */
	send_ipi(bsp, 0xFF, 0x43);                  /* physical broadcast */
	assert_true(apic_irr(bsp, 0x40));
	assert_false(apic_irr(fake_lapic(f, 1), 0x40));
	assert_false(apic_irr(bsp, 0x41));
	for (unsigned i = 0; i < 3; i++) {
		assert_true(apic_irr(fake_lapic(f, i), 0x42));
		assert_true(apic_irr(fake_lapic(f, i), 0x43));
		if (i)
			assert_true(apic_irr(fake_lapic(f, i), 0x41));
	}
	fake_free(f);
}

static void test_logical_destinations(void **state)
{
	struct fake *f = fake_new(4, false);
	for (unsigned i = 0; i < 4; i++) {
		struct lapic *l = fake_lapic(f, i);
		apic_enable(l);
		apic_write(l, REG_LDR, (1u << i) << 24); /* flat: one bit each */
	}
	struct lapic *bsp = fake_lapic(f, 0);
	send_ipi(bsp, 0x06, 0x50 | (1u << 11)); /* CPUs 1 and 2 */
	assert_false(apic_irr(fake_lapic(f, 0), 0x50));
	assert_true(apic_irr(fake_lapic(f, 1), 0x50));
	assert_true(apic_irr(fake_lapic(f, 2), 0x50));
	assert_false(apic_irr(fake_lapic(f, 3), 0x50));

	/* Cluster model: cluster 1 members 1 and 2, cluster 2 member 1. */
	static const uint8_t ldr[4] = { 0x11, 0x12, 0x21, 0x14 };
	for (unsigned i = 0; i < 4; i++) {
		apic_write(fake_lapic(f, i), REG_DFR, 0x0FFFFFFF);
		apic_write(fake_lapic(f, i), REG_LDR, (uint32_t)ldr[i] << 24);
	}
	assert_int_equal(apic_read(bsp, REG_DFR), 0x0FFFFFFF);
	send_ipi(bsp, 0x13, 0x60 | (1u << 11));
	assert_true(apic_irr(fake_lapic(f, 0), 0x60));
	assert_true(apic_irr(fake_lapic(f, 1), 0x60));
	assert_false(apic_irr(fake_lapic(f, 2), 0x60));
	assert_false(apic_irr(fake_lapic(f, 3), 0x60));
	send_ipi(bsp, 0xF1, 0x61 | (1u << 11)); /* member 1 of every cluster */
	assert_true(apic_irr(fake_lapic(f, 0), 0x61));
	assert_false(apic_irr(fake_lapic(f, 1), 0x61));
	assert_true(apic_irr(fake_lapic(f, 2), 0x61));
	fake_free(f);
}

static void test_lowest_priority(void **state)
{
	struct fake *f = fake_new(3, false);
	for (unsigned i = 0; i < 3; i++) {
		apic_enable(fake_lapic(f, i));
		apic_write(fake_lapic(f, i), REG_LDR, 0x01000000);
	}
	apic_write(fake_lapic(f, 0), REG_TPR, 0x20);
	apic_write(fake_lapic(f, 1), REG_TPR, 0x10);
	apic_write(fake_lapic(f, 2), REG_TPR, 0x30);
	/* Lowest priority to logical 0x01: exactly one, the lowest TPR. */
	send_ipi(fake_lapic(f, 0), 0x01, 0x70 | (1u << 8) | (1u << 11));
	assert_false(apic_irr(fake_lapic(f, 0), 0x70));
	assert_true(apic_irr(fake_lapic(f, 1), 0x70));
	assert_false(apic_irr(fake_lapic(f, 2), 0x70));
	fake_free(f);
}

static void test_nmi_init_sipi(void **state)
{
	struct fake *f = fake_new(2, false);
	struct lapic *bsp = fake_lapic(f, 0), *ap = fake_lapic(f, 1);
	apic_enable(bsp);
	bool init;
	int sipi;
	/* An AP at power-on waits for SIPI; the BSP has nothing pending. */
	assert_false(lapic_take_init_sipi(bsp, &init, &sipi));
	assert_false(lapic_take_init_sipi(ap, &init, &sipi));

	send_ipi(bsp, 1, 0x400);                    /* NMI */
	assert_true(lapic_take_nmi(ap));
	assert_false(lapic_take_nmi(ap));

	/* Linux's wakeup: INIT assert, INIT de-assert, SIPI, SIPI. */
	apic_enable(ap);
	send_ipi(bsp, 0, 0x41);   /* a pending interrupt INIT will discard */
	int n = fake_notified(f, 1);
	send_ipi(bsp, 1, 0xC500);                   /* INIT, level assert */
	assert_true(fake_notified(f, 1) > n);
	send_ipi(bsp, 1, 0x8500);                   /* INIT de-assert */
	send_ipi(bsp, 1, 0x4600 | 0x9A);            /* SIPI */
	send_ipi(bsp, 1, 0x4600 | 0x9B);            /* second SIPI: ignored */
	assert_true(lapic_take_init_sipi(ap, &init, &sipi));
	assert_true(init);
	assert_int_equal(sipi, 0x9A);
	/* INIT reset the APIC but kept its ID. */
	assert_int_equal(apic_read(ap, REG_SVR), 0xFF);
	assert_int_equal(apic_read(ap, REG_ID), 1u << 24);
	assert_false(lapic_take_init_sipi(ap, &init, &sipi));
	/* A running CPU ignores SIPI. */
	send_ipi(bsp, 1, 0x4600 | 0x10);
	assert_false(lapic_take_init_sipi(ap, &init, &sipi));
	/* INIT to all-but-self with a later SIPI, taken separately. */
	send_ipi(bsp, 0, 0xC500 | (3u << 18));
	assert_true(lapic_take_init_sipi(ap, &init, &sipi));
	assert_true(init);
	assert_int_equal(sipi, -1);
	send_ipi(bsp, 0, 0x4600 | 0x20 | (3u << 18));
	assert_true(lapic_take_init_sipi(ap, &init, &sipi));
	assert_false(init);
	assert_int_equal(sipi, 0x20);
	assert_false(lapic_take_init_sipi(bsp, &init, &sipi));
	fake_free(f);
}

/* Waits for vector v to become deliverable on l. */
static bool wait_vector(struct lapic *l, int v, unsigned timeout_ms)
{
	uint64_t end = clock_ns() + (uint64_t)timeout_ms * 1000000;
	while (clock_ns() < end) {
		if (lapic_has_interrupt(l))
			return lapic_get_interrupt(l) == v;
		sleep_us(100);
	}
	return false;
}

static void test_timer_oneshot(void **state)
{
	struct fake *f = fake_new(1, false);
	struct lapic *l = fake_lapic(f, 0);
	apic_enable(l);
	apic_write(l, REG_TDCR, 0xB);              /* divide by 1 */
	apic_write(l, REG_LVT_TIMER, 0xEC);        /* one-shot, vector 0xEC */
	uint64_t t0 = clock_ns();
	apic_write(l, REG_TMICT, LAPIC_TIMER_HZ / 1000 * 2); /* 2 ms */
	assert_int_equal(apic_read(l, REG_TMICT), LAPIC_TIMER_HZ / 1000 * 2);
	uint32_t c1 = apic_read(l, REG_TMCCT);
	uint64_t next = lapic_next_deadline_tsc(l);
	assert_true(c1 <= LAPIC_TIMER_HZ / 1000 * 2);
	if (clock_ns() - t0 < 2000000) { /* not expired yet (a loaded host may be slower) */
		assert_true(c1 > 0);
		assert_true(next != UINT64_MAX);
	}
	/* Nobody polls: the timer thread must fire it and notify. */
	assert_true(wait_notified(f, 0, 1, 2000) > 1);
	uint64_t dt = clock_ns() - t0;
	assert_true(dt >= 2000000);
	assert_int_equal(lapic_get_interrupt(l), 0xEC);
	apic_eoi(l);
	assert_int_equal(apic_read(l, REG_TMCCT), 0);
	assert_int_equal(lapic_next_deadline_tsc(l), UINT64_MAX);
	/* Once only. */
	sleep_us(5000);
	assert_false(lapic_has_interrupt(l));

	/* Divide by 128: the count runs 128 times slower. */
	apic_write(l, REG_TDCR, 0xA);
	t0 = clock_ns();
	apic_write(l, REG_TMICT, 1000000);
	sleep_us(2000);
	uint32_t c = apic_read(l, REG_TMCCT);
	uint64_t ticks = (clock_ns() - t0) * (LAPIC_TIMER_HZ / 1000000) / 1000 / 128;
	assert_true(c <= 1000000 - 2000 * (LAPIC_TIMER_HZ / 1000000) / 128);
	assert_true(c + ticks + 1 >= 1000000);
	/* Writing 0 stops it. */
	apic_write(l, REG_TMICT, 0);
	assert_int_equal(apic_read(l, REG_TMCCT), 0);
	assert_int_equal(lapic_next_deadline_tsc(l), UINT64_MAX);

	/* A masked timer counts down but raises nothing. */
	apic_write(l, REG_TDCR, 0xB);
	apic_write(l, REG_LVT_TIMER, 0x100EC);
	apic_write(l, REG_TMICT, LAPIC_TIMER_HZ / 10000);  /* 100 us */
	sleep_us(3000);
	assert_false(lapic_has_interrupt(l));
	fake_free(f);
}

static void test_timer_periodic(void **state)
{
	struct fake *f = fake_new(1, false);
	struct lapic *l = fake_lapic(f, 0);
	apic_enable(l);
	apic_write(l, REG_TDCR, 0x1);              /* divide by 4 */
	apic_write(l, REG_LVT_TIMER, (1u << 17) | 0xED);
	apic_write(l, REG_TMICT, LAPIC_TIMER_HZ / 4 / 1000); /* 1 ms */
	int fired = 0;
	uint64_t end = clock_ns() + 2000000000ULL;
	while (fired < 4 && clock_ns() < end) {
		if (wait_vector(l, 0xED, 100)) {
			apic_eoi(l);
			fired++;
		}
	}
	assert_int_equal(fired, 4);
	/* Still armed, with a count inside the period. */
	assert_true(lapic_next_deadline_tsc(l) != UINT64_MAX);
	assert_true(apic_read(l, REG_TMCCT) <= LAPIC_TIMER_HZ / 4 / 1000);
	/* Switching the mode disarms. */
	apic_write(l, REG_LVT_TIMER, 0xED);
	assert_int_equal(lapic_next_deadline_tsc(l), UINT64_MAX);
	fake_free(f);
}

static void test_timer_tsc_deadline(void **state)
{
	struct fake *f = fake_new(1, false);
	struct lapic *l = fake_lapic(f, 0);
	struct machine *m = &f->m;
	apic_enable(l);
	uint64_t v;
	/* Outside deadline mode, the MSR reads 0 and writes are ignored. */
	assert_int_equal(lapic_msr_write(l, MSR_IA32_TSC_DEADLINE, 12345), 0);
	assert_int_equal(lapic_msr_read(l, MSR_IA32_TSC_DEADLINE, &v), 0);
	assert_int_equal(v, 0);
	apic_write(l, REG_LVT_TIMER, (2u << 17) | 0xEE);
	uint64_t deadline = guest_tsc(m) + ns_to_guest_tsc(30000000); /* 30 ms */
	assert_int_equal(lapic_msr_write(l, MSR_IA32_TSC_DEADLINE, deadline), 0);
	assert_int_equal(lapic_msr_read(l, MSR_IA32_TSC_DEADLINE, &v), 0);
	assert_int_equal(v, deadline);
	assert_int_equal(lapic_next_deadline_tsc(l), deadline);
	/* Polling before the deadline does nothing. */
	lapic_poll_timer(l, deadline - 1);
	assert_false(lapic_has_interrupt(l));
	assert_true(wait_vector(l, 0xEE, 2000));
	assert_true(guest_tsc(m) >= deadline);
	apic_eoi(l);
	/* Fired once; the MSR is cleared. */
	assert_int_equal(lapic_msr_read(l, MSR_IA32_TSC_DEADLINE, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(lapic_next_deadline_tsc(l), UINT64_MAX);

	/* A deadline in the past fires at once through the poll path. */
	lapic_msr_write(l, MSR_IA32_TSC_DEADLINE, 1);
	lapic_poll_timer(l, guest_tsc(m));
	assert_int_equal(lapic_get_interrupt(l), 0xEE);
	apic_eoi(l);
	/* Writing 0 disarms. */
	lapic_msr_write(l, MSR_IA32_TSC_DEADLINE, guest_tsc(m) + ns_to_guest_tsc(20000000));
	lapic_msr_write(l, MSR_IA32_TSC_DEADLINE, 0);
	sleep_us(30000);
	assert_false(lapic_has_interrupt(l));

	/* A vCPU whose TSC was set ahead by 10 s: its deadlines are in its
	 * own TSC units. */
	int64_t offset = (int64_t)ns_to_guest_tsc(10000000000ULL);
	lapic_set_tsc_offset(l, offset);
	deadline = guest_tsc(m) + (uint64_t)offset + ns_to_guest_tsc(30000000);
	lapic_msr_write(l, MSR_IA32_TSC_DEADLINE, deadline);
	assert_int_equal(lapic_next_deadline_tsc(l), deadline - (uint64_t)offset);
	assert_false(lapic_has_interrupt(l));
	assert_true(wait_vector(l, 0xEE, 2000));
	apic_eoi(l);
	/* A deadline before guest TSC 0 is due at once. */
	lapic_msr_write(l, MSR_IA32_TSC_DEADLINE, 5);
	assert_true(wait_vector(l, 0xEE, 2000));
	fake_free(f);
}

static void test_apic_base_msr(void **state)
{
	struct fake *f = fake_new(2, false);
	struct lapic *bsp = fake_lapic(f, 0), *ap = fake_lapic(f, 1);
	uint64_t v;
	assert_int_equal(lapic_msr_read(bsp, MSR_IA32_APIC_BASE, &v), 0);
	assert_int_equal(v, LAPIC_BASE | APIC_BASE_ENABLE | APIC_BASE_BSP);
	assert_int_equal(lapic_msr_read(ap, MSR_IA32_APIC_BASE, &v), 0);
	assert_int_equal(v, LAPIC_BASE | APIC_BASE_ENABLE);
	assert_true(lapic_apic_base_enabled(bsp));
	assert_int_equal(lapic_get_apic_base(bsp), LAPIC_BASE);
	/* x2APIC is not offered; reserved bits #GP. */
	assert_int_equal(lapic_msr_write(bsp, MSR_IA32_APIC_BASE, v | APIC_BASE_X2APIC), -1);
	assert_int_equal(lapic_msr_write(bsp, MSR_IA32_APIC_BASE, v | 1), -1);
	assert_int_equal(lapic_msr_read(bsp, 0x802, &v), -1);
	assert_false(lapic_handles_msr(0x802));
	assert_true(lapic_handles_msr(MSR_IA32_TSC_DEADLINE));
	/* Relocation; the BSP flag is read-only. */
	assert_int_equal(lapic_msr_write(bsp, MSR_IA32_APIC_BASE, 0xFED00000ULL | APIC_BASE_ENABLE), 0);
	assert_int_equal(lapic_get_apic_base(bsp), 0xFED00000ULL);
	lapic_msr_read(bsp, MSR_IA32_APIC_BASE, &v);
	assert_true(v & APIC_BASE_BSP);
	/* Global disable: no interrupts are accepted; state resets. */
	apic_enable(ap);
	apic_write(ap, REG_TPR, 0x20);
	assert_int_equal(lapic_msr_write(ap, MSR_IA32_APIC_BASE, LAPIC_BASE), 0);
	assert_false(lapic_apic_base_enabled(ap));
	apic_enable(bsp);
	send_ipi(bsp, 1, 0x40);
	assert_false(lapic_has_interrupt(ap));
	assert_int_equal(lapic_msr_write(ap, MSR_IA32_APIC_BASE, LAPIC_BASE | APIC_BASE_ENABLE), 0);
	assert_int_equal(apic_read(ap, REG_TPR), 0);
	assert_int_equal(apic_read(ap, REG_SVR), 0xFF);
	fake_free(f);
}

/* IPIs from several threads at once land exactly once each. */
struct blaster { struct fake *f; unsigned from; bool done; };

static void *blast(void *arg)
{
	struct blaster *b = arg;
	struct lapic *l = fake_lapic(b->f, b->from);
	for (unsigned i = 0; i < 2000; i++)
		send_ipi(l, 0, 0x40 + b->from);
	__atomic_store_n(&b->done, true, __ATOMIC_RELEASE);
	return NULL;
}

static struct fake *setup_concurrent(void)
{
	struct fake *f = fake_new(3, false);
	for (unsigned i = 0; i < 3; i++)
		apic_enable(fake_lapic(f, i));
	return f;
}

static void test_concurrent_ipis(void **state)
{
	struct fake *f = setup_concurrent();
	struct lapic *l = fake_lapic(f, 0);
	int n0 = fake_notified(f, 0);
	pthread_t t[2];
	struct blaster b[2] = { { f, 1, false }, { f, 2, false } };
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, blast, &b[i]);
	/* CPU 0 takes and EOIs what arrives meanwhile. */
	bool seen[2] = { false, false };
	int eois = 0; /* each EOI notifies too */
	while (!__atomic_load_n(&b[0].done, __ATOMIC_ACQUIRE) ||
	       !__atomic_load_n(&b[1].done, __ATOMIC_ACQUIRE) || lapic_has_interrupt(l)) {
		int v = lapic_get_interrupt(l);
		if (v >= 0) {
			assert_true(v == 0x41 || v == 0x42);
			seen[v - 0x41] = true;
			apic_eoi(l);
			eois++;
		}
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	/* IRR coalesces, but no vector and no notification is lost. */
	assert_true(seen[0] && seen[1]);
	assert_int_equal(fake_notified(f, 0) - n0, 4000 + eois);
	fake_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registers),
		cmocka_unit_test(test_fixed_ipi_and_priority),
		cmocka_unit_test(test_illegal_vector_and_disabled),
		cmocka_unit_test(test_shorthands_and_broadcast),
		cmocka_unit_test(test_logical_destinations),
		cmocka_unit_test(test_lowest_priority),
		cmocka_unit_test(test_nmi_init_sipi),
		cmocka_unit_test(test_timer_oneshot),
		cmocka_unit_test(test_timer_periodic),
		cmocka_unit_test(test_timer_tsc_deadline),
		cmocka_unit_test(test_apic_base_msr),
		cmocka_unit_test(test_concurrent_ipis),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
