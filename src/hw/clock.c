/* Guest TSC and the platform timer thread.
 *
 * One thread serves every hw_timer of the process (the LAPIC timers and
 * PITs of every VM), so timer interrupts arrive while vCPUs are halted and
 * without an event loop. It is started on first use and lives as long as
 * the process. */
#include "hw/clock.h"
#include "lib/log.h"
#include "lib/util.h"
#include "machine/layout.h"
#include "machine/machine.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

void clock_machine_init(struct machine *m)
{
	if (!m->tsc_epoch_ns)
		m->tsc_epoch_ns = clock_ns();
}

uint64_t ns_to_guest_tsc(uint64_t ns)
{
	return (uint64_t)((unsigned __int128)ns * GUEST_TSC_KHZ / 1000000);
}

uint64_t guest_tsc_to_ns(uint64_t tsc)
{
	unsigned __int128 ns = ((unsigned __int128)tsc * 1000000 + GUEST_TSC_KHZ - 1) / GUEST_TSC_KHZ;
	return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

uint64_t guest_tsc(struct machine *m)
{
	uint64_t now = clock_ns();
	return now > m->tsc_epoch_ns ? ns_to_guest_tsc(now - m->tsc_epoch_ns) : 0;
}

uint64_t guest_tsc_deadline_ns(struct machine *m, uint64_t tsc)
{
	uint64_t ns = guest_tsc_to_ns(tsc);
	return ns > UINT64_MAX - m->tsc_epoch_ns ? UINT64_MAX : m->tsc_epoch_ns + ns;
}

struct hw_timer {
	hw_timer_fn fn;
	void *opaque;
	uint64_t deadline_ns;
	int heap_index;         /* in ts.heap, or -1 when disarmed */
};

/* Armed timers in a binary min-heap on deadline: arming, disarming and
 * finding the next expiry stay O(log n) however many VMs share the
 * thread. */
static struct {
	pthread_once_t once;
	pthread_mutex_t lock;
	pthread_cond_t wake;      /* the thread: the earliest deadline changed */
	pthread_cond_t idle;      /* hw_timer_free: a callback returned */
	struct hw_timer **heap;
	unsigned n, cap;
	struct hw_timer *running; /* whose callback runs now */
	pthread_t thread;
} ts = { .once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER };

static void heap_place(unsigned i, struct hw_timer *t)
{
	ts.heap[i] = t;
	t->heap_index = (int)i;
}

static void heap_up(unsigned i)
{
	struct hw_timer *t = ts.heap[i];
	while (i > 0) {
		unsigned parent = (i - 1) / 2;
		if (ts.heap[parent]->deadline_ns <= t->deadline_ns)
			break;
		heap_place(i, ts.heap[parent]);
		i = parent;
	}
	heap_place(i, t);
}

static void heap_down(unsigned i)
{
	struct hw_timer *t = ts.heap[i];
	for (;;) {
		unsigned child = 2 * i + 1;
		if (child >= ts.n)
			break;
		if (child + 1 < ts.n && ts.heap[child + 1]->deadline_ns < ts.heap[child]->deadline_ns)
			child++;
		if (t->deadline_ns <= ts.heap[child]->deadline_ns)
			break;
		heap_place(i, ts.heap[child]);
		i = child;
	}
	heap_place(i, t);
}

static void heap_remove(struct hw_timer *t)
{
	unsigned i = (unsigned)t->heap_index;
	t->heap_index = -1;
	struct hw_timer *last = ts.heap[--ts.n];
	if (last == t)
		return;
	heap_place(i, last);
	heap_up(i);
	heap_down((unsigned)last->heap_index);
}

static void heap_insert(struct hw_timer *t)
{
	if (ts.n == ts.cap) {
		ts.cap = ts.cap ? 2 * ts.cap : 16;
		ts.heap = xrealloc(ts.heap, ts.cap * sizeof(*ts.heap));
	}
	heap_place(ts.n++, t);
	heap_up(ts.n - 1);
}

static void *timer_thread(void *arg)
{
	/* Guest timers want their deadline, not the default 50 us slack. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	pthread_mutex_lock(&ts.lock);
	for (;;) {
		if (!ts.n) {
			pthread_cond_wait(&ts.wake, &ts.lock);
			continue;
		}
		struct hw_timer *first = ts.heap[0];
		if (first->deadline_ns > clock_ns()) {
			struct timespec abs = {
				.tv_sec = (time_t)(first->deadline_ns / 1000000000ULL),
				.tv_nsec = (long)(first->deadline_ns % 1000000000ULL),
			};
			pthread_cond_timedwait(&ts.wake, &ts.lock, &abs);
			continue;
		}
		heap_remove(first);
		ts.running = first;
		pthread_mutex_unlock(&ts.lock);
		first->fn(first->opaque);
		pthread_mutex_lock(&ts.lock);
		ts.running = NULL;
		pthread_cond_broadcast(&ts.idle);
	}
	return NULL;
}

static void timer_service_start(void)
{
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ts.wake, &attr);
	pthread_condattr_destroy(&attr);
	pthread_cond_init(&ts.idle, NULL);
	/* Timer signals must not be delivered to this thread. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = pthread_create(&ts.thread, NULL, timer_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		die("cannot start the platform timer thread: %s", strerror(r));
	pthread_setname_np(ts.thread, "xvm-timers");
}

struct hw_timer *hw_timer_new(hw_timer_fn fn, void *opaque)
{
	pthread_once(&ts.once, timer_service_start);
	struct hw_timer *t = xcalloc(1, sizeof(*t));
	t->fn = fn;
	t->opaque = opaque;
	t->heap_index = -1;
	return t;
}

void hw_timer_arm(struct hw_timer *t, uint64_t deadline_ns)
{
	pthread_mutex_lock(&ts.lock);
	t->deadline_ns = deadline_ns;
	if (t->heap_index < 0) {
		heap_insert(t);
	} else {
		heap_up((unsigned)t->heap_index);
		heap_down((unsigned)t->heap_index);
	}
	if (ts.heap[0] == t)
		pthread_cond_signal(&ts.wake); /* a new earliest deadline */
	pthread_mutex_unlock(&ts.lock);
}

void hw_timer_disarm(struct hw_timer *t)
{
	pthread_mutex_lock(&ts.lock);
	if (t->heap_index >= 0)
		heap_remove(t);
	pthread_mutex_unlock(&ts.lock);
}

void hw_timer_free(struct hw_timer *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&ts.lock);
	/* Wait for a running callback first: it may re-arm the timer (a
	 * periodic PIT does), which would put it back in the heap after a
	 * removal done before the wait, and the thread would then fire a
	 * freed timer. */
	while (ts.running == t)
		pthread_cond_wait(&ts.idle, &ts.lock);
	if (t->heap_index >= 0)
		heap_remove(t);
	pthread_mutex_unlock(&ts.lock);
	free(t);
}
