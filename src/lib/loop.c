#include "lib/loop.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

struct watch {
	int fd;
	loop_fd_fn fn;
	void *opaque;
	struct watch *next;
	bool dead;
};

struct call {
	loop_fn fn;
	void *opaque;
	struct call *next;
};

struct loop_timer {
	struct loop *loop;
	int fd;
	loop_fn fn;
	void *opaque;
};

struct loop {
	int epfd;
	int wakefd;
	pthread_mutex_t lock;
	pthread_cond_t idle; /* signalled when a dispatch round ends */
	struct watch *watches;
	struct call *calls, **calls_tail;
	bool stop;
	bool dispatching;
	pthread_t thread;
	bool running;
};

struct loop *loop_new(void)
{
	struct loop *l = xcalloc(1, sizeof(*l));
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->epfd < 0 || l->wakefd < 0)
		die("cannot create event loop: %m");
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->idle, NULL);
	l->calls_tail = &l->calls;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev);
	return l;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	struct watch *w = l->watches;
	while (w) {
		struct watch *n = w->next;
		free(w);
		w = n;
	}
	struct call *c = l->calls;
	while (c) {
		struct call *n = c->next;
		free(c);
		c = n;
	}
	close(l->epfd);
	close(l->wakefd);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->idle);
	free(l);
}

static void wake(struct loop *l)
{
	uint64_t one = 1;
	ssize_t r = write(l->wakefd, &one, sizeof(one));
	(void)r;
}

int loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_fn fn, void *opaque)
{
	struct watch *w = xcalloc(1, sizeof(*w));
	w->fd = fd;
	w->fn = fn;
	w->opaque = opaque;
	pthread_mutex_lock(&l->lock);
	struct epoll_event ev = { .events = events, .data.ptr = w };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = -errno;
		pthread_mutex_unlock(&l->lock);
		free(w);
		return e;
	}
	w->next = l->watches;
	l->watches = w;
	pthread_mutex_unlock(&l->lock);
	return 0;
}

static struct watch *find_watch(struct loop *l, int fd)
{
	for (struct watch *w = l->watches; w; w = w->next)
		if (w->fd == fd && !w->dead)
			return w;
	return NULL;
}

int loop_mod_fd(struct loop *l, int fd, uint32_t events)
{
	pthread_mutex_lock(&l->lock);
	struct watch *w = find_watch(l, fd);
	int r = -ENOENT;
	if (w) {
		struct epoll_event ev = { .events = events, .data.ptr = w };
		r = epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
	}
	pthread_mutex_unlock(&l->lock);
	return r;
}

void loop_del_fd(struct loop *l, int fd)
{
	pthread_mutex_lock(&l->lock);
	struct watch *w = find_watch(l, fd);
	if (w) {
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
		w->dead = true; /* freed by the loop thread after the round */
		/* Wait until a running dispatch round (which may hold w) ends,
		 * unless we are that round. */
		if (l->running && !pthread_equal(pthread_self(), l->thread)) {
			wake(l);
			while (l->dispatching)
				pthread_cond_wait(&l->idle, &l->lock);
		}
	}
	pthread_mutex_unlock(&l->lock);
}

void loop_call(struct loop *l, loop_fn fn, void *opaque)
{
	struct call *c = xmalloc(sizeof(*c));
	c->fn = fn;
	c->opaque = opaque;
	c->next = NULL;
	pthread_mutex_lock(&l->lock);
	*l->calls_tail = c;
	l->calls_tail = &c->next;
	pthread_mutex_unlock(&l->lock);
	wake(l);
}

static void timer_fired(void *opaque, uint32_t events)
{
	struct loop_timer *t = opaque;
	uint64_t n;
	if (read(t->fd, &n, sizeof(n)) == sizeof(n) && n)
		t->fn(t->opaque);
}

struct loop_timer *loop_timer_new(struct loop *l, loop_fn fn, void *opaque)
{
	struct loop_timer *t = xcalloc(1, sizeof(*t));
	t->loop = l;
	t->fn = fn;
	t->opaque = opaque;
	t->fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (t->fd < 0)
		die("cannot create timer: %m");
	loop_add_fd(l, t->fd, EPOLLIN, timer_fired, t);
	return t;
}

void loop_timer_arm(struct loop_timer *t, uint64_t delay_ns, uint64_t period_ns)
{
	struct itimerspec its = {
		.it_value = { (time_t)(delay_ns / 1000000000ULL), (long)(delay_ns % 1000000000ULL) },
		.it_interval = { (time_t)(period_ns / 1000000000ULL), (long)(period_ns % 1000000000ULL) },
	};
	timerfd_settime(t->fd, 0, &its, NULL);
}

void loop_timer_free(struct loop_timer *t)
{
	if (!t)
		return;
	loop_del_fd(t->loop, t->fd);
	close(t->fd);
	free(t);
}

static void run_calls(struct loop *l)
{
	pthread_mutex_lock(&l->lock);
	struct call *c = l->calls;
	l->calls = NULL;
	l->calls_tail = &l->calls;
	pthread_mutex_unlock(&l->lock);
	while (c) {
		struct call *n = c->next;
		c->fn(c->opaque);
		free(c);
		c = n;
	}
}

static void reap_dead(struct loop *l)
{
	struct watch **pp = &l->watches;
	while (*pp) {
		struct watch *w = *pp;
		if (w->dead) {
			*pp = w->next;
			free(w);
		} else {
			pp = &w->next;
		}
	}
}

int loop_run(struct loop *l)
{
	struct epoll_event evs[32];
	pthread_mutex_lock(&l->lock);
	l->thread = pthread_self();
	l->running = true;
	pthread_mutex_unlock(&l->lock);
	while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE)) {
		int n = epoll_wait(l->epfd, evs, (int)ARRAY_SIZE(evs), -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("event loop: epoll_wait: %m");
		}
		pthread_mutex_lock(&l->lock);
		l->dispatching = true;
		pthread_mutex_unlock(&l->lock);
		for (int i = 0; i < n; i++) {
			struct watch *w = evs[i].data.ptr;
			if (!w) {
				uint64_t v;
				ssize_t r = read(l->wakefd, &v, sizeof(v));
				(void)r;
				continue;
			}
			if (!__atomic_load_n(&w->dead, __ATOMIC_ACQUIRE))
				w->fn(w->opaque, evs[i].events);
		}
		run_calls(l);
		pthread_mutex_lock(&l->lock);
		l->dispatching = false;
		reap_dead(l);
		pthread_cond_broadcast(&l->idle);
		pthread_mutex_unlock(&l->lock);
	}
	pthread_mutex_lock(&l->lock);
	l->running = false;
	pthread_mutex_unlock(&l->lock);
	return 0;
}

void loop_stop(struct loop *l)
{
	__atomic_store_n(&l->stop, true, __ATOMIC_RELEASE);
	wake(l);
}
