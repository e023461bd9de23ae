/* Guest TSC and the platform timer thread.
 *
 * One thread serves every hw_timer of the process (lapic timers, PIT). The
 * timers are few (one per vCPU plus the PIT), so a linear scan for the
 * earliest deadline is cheaper than keeping a heap. The thread is started
 * on first use and lives as long as the process. */
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
	uint64_t deadline_ns;   /* 0 = disarmed */
	struct hw_timer *next;
};

static struct {
	pthread_once_t once;
	pthread_mutex_t lock;
	pthread_cond_t wake;      /* the thread: timers changed */
	pthread_cond_t idle;      /* hw_timer_free: a callback returned */
	struct hw_timer *timers;
	struct hw_timer *running; /* whose callback runs now */
	pthread_t thread;
} ts = { .once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER };

static void *timer_thread(void *arg)
{
	/* Guest timers want their deadline, not the default 50 us slack. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	pthread_mutex_lock(&ts.lock);
	for (;;) {
		struct hw_timer *first = NULL;
		for (struct hw_timer *t = ts.timers; t; t = t->next)
			if (t->deadline_ns && (!first || t->deadline_ns < first->deadline_ns))
				first = t;
		if (!first) {
			pthread_cond_wait(&ts.wake, &ts.lock);
			continue;
		}
		uint64_t now = clock_ns();
		if (first->deadline_ns > now) {
			struct timespec abs = {
				.tv_sec = (time_t)(first->deadline_ns / 1000000000ULL),
				.tv_nsec = (long)(first->deadline_ns % 1000000000ULL),
			};
			pthread_cond_timedwait(&ts.wake, &ts.lock, &abs);
			continue;
		}
		first->deadline_ns = 0;
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
	pthread_mutex_lock(&ts.lock);
	t->next = ts.timers;
	ts.timers = t;
	pthread_mutex_unlock(&ts.lock);
	return t;
}

void hw_timer_arm(struct hw_timer *t, uint64_t deadline_ns)
{
	if (!deadline_ns)
		deadline_ns = 1; /* 0 means disarmed: "in the past" instead */
	pthread_mutex_lock(&ts.lock);
	bool earlier = !t->deadline_ns || deadline_ns < t->deadline_ns;
	t->deadline_ns = deadline_ns;
	if (earlier)
		pthread_cond_signal(&ts.wake);
	pthread_mutex_unlock(&ts.lock);
}

void hw_timer_disarm(struct hw_timer *t)
{
	pthread_mutex_lock(&ts.lock);
	t->deadline_ns = 0;
	pthread_mutex_unlock(&ts.lock);
}

void hw_timer_free(struct hw_timer *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&ts.lock);
	for (struct hw_timer **pp = &ts.timers; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	while (ts.running == t)
		pthread_cond_wait(&ts.idle, &ts.lock);
	pthread_mutex_unlock(&ts.lock);
	free(t);
}
