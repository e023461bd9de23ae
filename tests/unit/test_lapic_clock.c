/* Unit tests for the platform clock: guest TSC conversions and the timer
 * thread that fires LAPIC and PIT expiries (ordering, re-arming,
 * disarming, freeing an armed timer, a callback re-arming itself). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <time.h>

#include "hw/clock.h"
#include "lib/util.h"
#include "machine/layout.h"
#include "machine/machine.h"

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void test_guest_tsc(void **state)
{
	assert_int_equal(ns_to_guest_tsc(1000000000ULL), (uint64_t)GUEST_TSC_KHZ * 1000);
	assert_int_equal(guest_tsc_to_ns((uint64_t)GUEST_TSC_KHZ * 1000), 1000000000ULL);
	/* Rounding: ns -> tsc down, tsc -> ns up, so a deadline never fires early. */
	assert_int_equal(guest_tsc_to_ns(1), 1);
	assert_true(ns_to_guest_tsc(guest_tsc_to_ns(12345)) >= 12345);
	/* No overflow after days of uptime. */
	uint64_t week = 7ULL * 86400 * 1000000000ULL;
	assert_int_equal(ns_to_guest_tsc(week), week / 1000000 * GUEST_TSC_KHZ);
	assert_true(guest_tsc_to_ns(UINT64_MAX) > guest_tsc_to_ns(UINT64_MAX / 2)); /* no wrap */

	struct machine m = { 0 };
	clock_machine_init(&m);
	uint64_t epoch = m.tsc_epoch_ns;
	clock_machine_init(&m); /* idempotent */
	assert_int_equal(m.tsc_epoch_ns, epoch);
	uint64_t a = guest_tsc(&m);
	assert_true(a < ns_to_guest_tsc(1000000000ULL)); /* starts near 0 */
	sleep_ms(2);
	uint64_t b = guest_tsc(&m);
	assert_true(b - a >= ns_to_guest_tsc(2000000));
	assert_true(guest_tsc_deadline_ns(&m, b) <= clock_ns());
	assert_true(guest_tsc_deadline_ns(&m, b + ns_to_guest_tsc(5000000)) > clock_ns());
}

#define NT 40

struct rec {
	struct hw_timer *t;
	uint64_t deadline;
	uint64_t fired_at;   /* atomic */
	int fired;           /* atomic */
	int rearm;           /* re-arm itself this many more times */
	unsigned order;
};

static unsigned order_counter;

static void fired(void *opaque)
{
	struct rec *r = opaque;
	__atomic_store_n(&r->fired_at, clock_ns(), __ATOMIC_SEQ_CST);
	r->order = __atomic_fetch_add(&order_counter, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&r->fired, 1, __ATOMIC_SEQ_CST);
	if (r->rearm > 0) {
		r->rearm--;
		r->deadline = clock_ns() + 1000000;
		hw_timer_arm(r->t, r->deadline);
	}
}

static void test_timer_order_and_disarm(void **state)
{
	static struct rec r[NT];
	uint64_t base = clock_ns() + 100000000; /* armed well before any fires */
	srand(7);
	for (int i = 0; i < NT; i++) {
		r[i] = (struct rec){ .deadline = base + (uint64_t)(rand() % 40) * 1000000 };
		r[i].t = hw_timer_new(fired, &r[i]);
		hw_timer_arm(r[i].t, r[i].deadline);
	}
	/* Move some, disarm some, free one armed. */
	r[0].deadline = base + 45000000;
	hw_timer_arm(r[0].t, r[0].deadline);
	r[1].deadline = base - 10000000;
	hw_timer_arm(r[1].t, r[1].deadline);
	hw_timer_disarm(r[2].t);
	hw_timer_disarm(r[3].t);
	hw_timer_free(r[4].t);
	r[4].t = NULL;
	sleep_ms(200);
	for (int i = 0; i < NT; i++) {
		int n = __atomic_load_n(&r[i].fired, __ATOMIC_SEQ_CST);
		if (i >= 2 && i <= 4) {
			assert_int_equal(n, 0);
			continue;
		}
		assert_int_equal(n, 1);
		assert_true(r[i].fired_at >= r[i].deadline);
		/* Fired in deadline order. */
		for (int j = 0; j < NT; j++)
			if (j != i && !(j >= 2 && j <= 4) && r[j].deadline < r[i].deadline)
				assert_true(r[j].order < r[i].order);
	}
	for (int i = 0; i < NT; i++)
		hw_timer_free(r[i].t);
}

static void test_timer_rearm_from_callback(void **state)
{
	static struct rec r;
	r = (struct rec){ .rearm = 4 };
	r.t = hw_timer_new(fired, &r);
	hw_timer_arm(r.t, clock_ns() + 1000000);
	uint64_t end = clock_ns() + 2000000000ULL;
	while (__atomic_load_n(&r.fired, __ATOMIC_SEQ_CST) < 5 && clock_ns() < end)
		sleep_ms(1);
	assert_int_equal(__atomic_load_n(&r.fired, __ATOMIC_SEQ_CST), 5);
	/* Freeing while it may be re-armed or running returns with the
	 * callback finished. */
	hw_timer_arm(r.t, clock_ns());
	hw_timer_free(r.t);
	int n = __atomic_load_n(&r.fired, __ATOMIC_SEQ_CST);
	sleep_ms(5);
	assert_int_equal(__atomic_load_n(&r.fired, __ATOMIC_SEQ_CST), n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_guest_tsc),
		cmocka_unit_test(test_timer_order_and_disarm),
		cmocka_unit_test(test_timer_rearm_from_callback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
