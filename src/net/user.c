/* User-mode networking through libslirp: the guest sits behind a NAT on
 * 10.0.2.0/24 (host 10.0.2.2, DNS 10.0.2.3, DHCP from 10.0.2.15), needs no
 * privileges, and host ports can be forwarded to guest ports.
 *
 * All slirp calls run on the event loop thread: frames from the guest are
 * queued and handed over with loop_call; slirp's sockets are mirrored into
 * the loop's epoll set after each poll cycle, and its timers are loop
 * timers. */
#include "net/net.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/util.h"
#include "machine/machine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USER_TXQ_MAX   1024     /* frames waiting for the loop thread */

struct tx_frame {
	struct tx_frame *next;
	size_t len;
	uint8_t data[];
};

struct watched_fd {
	int fd;
	uint32_t events;
};

struct user_net {
	struct net_backend be;
	Slirp *slirp;
	struct loop *loop;

	pthread_mutex_t txq_lock;
	struct tx_frame *txq_head, **txq_tail;
	unsigned txq_len;
	bool txq_scheduled;

	/* Serialises the loop thread's work with close(): every entry point
	 * on the loop takes it and does nothing once closed is set. */
	pthread_mutex_t lock;
	bool closed, close_done;
	unsigned calls_pending;   /* loop_call'ed functions not yet run */

	/* Loop thread only. */
	struct pollfd *pfds;
	unsigned npfds, pfds_cap;
	struct watched_fd *watched;
	unsigned nwatched, watched_cap;
	struct loop_timer *poll_timer;
	bool cycle_scheduled;
};

struct user_timer {
	struct user_net *u;
	struct loop_timer *t;
	SlirpTimerId id;
	void *cb_opaque;
};


/* ---- slirp callbacks (loop thread) ---- */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct user_net *u = opaque;
	net_deliver_fn fn = __atomic_load_n(&u->be.deliver, __ATOMIC_ACQUIRE);
	/* No room in the guest: drop; TCP retransmits, DHCP retries. */
	if (fn)
		fn(u->be.deliver_opaque, buf, len);
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	log_once(LOG_WARN, "user network: guest error: %s", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
	return (int64_t)clock_ns();
}

static void cycle_locked(struct user_net *u);

static void user_timer_fired(void *opaque)
{
	struct user_timer *t = opaque;
	struct user_net *u = t->u;
	pthread_mutex_lock(&u->lock);
	if (!u->closed) {
		slirp_handle_timer(u->slirp, t->id, t->cb_opaque);
		cycle_locked(u);
	}
	pthread_mutex_unlock(&u->lock);
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	struct user_net *u = opaque;
	struct user_timer *t = xcalloc(1, sizeof(*t));
	t->u = u;
	t->id = id;
	t->cb_opaque = cb_opaque;
	t->t = loop_timer_new(u->loop, user_timer_fired, t);
	return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
	struct user_timer *t = timer;
	loop_timer_free(t->t);
	free(t);
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	struct user_timer *t = timer;
	int64_t delay = expire_ms * 1000000 - (int64_t)clock_ns();
	loop_timer_arm(t->t, delay > 0 ? (uint64_t)delay : 1, 0);
}

static void forget_fd(struct user_net *u, int fd)
{
	for (unsigned i = 0; i < u->nwatched; i++) {
		if (u->watched[i].fd == fd) {
			loop_del_fd(u->loop, fd);
			u->watched[i] = u->watched[--u->nwatched];
			return;
		}
	}
}

static void cb_register_poll_fd(int fd, void *opaque)
{
}

static void cb_unregister_poll_fd(int fd, void *opaque)
{
	/* The socket is being closed: drop the watch before its number is
	 * reused by another socket. */
	forget_fd(opaque, fd);
}

static void call_on_loop(struct user_net *u, loop_fn fn)
{
	u->calls_pending++;
	loop_call(u->loop, fn, u);
}

/* Entry of every loop_call'ed function: false (and maybe frees u) once
 * the backend is closed. Takes the lock on success. */
static bool call_begin(struct user_net *u)
{
	pthread_mutex_lock(&u->lock);
	u->calls_pending--;
	if (!u->closed)
		return true;
	bool free_now = u->close_done && u->calls_pending == 0;
	pthread_mutex_unlock(&u->lock);
	if (free_now)
		free(u);
	return false;
}

static void scheduled_cycle(void *opaque)
{
	struct user_net *u = opaque;
	if (!call_begin(u))
		return;
	u->cycle_scheduled = false;
	cycle_locked(u);
	pthread_mutex_unlock(&u->lock);
}

/* Lock held. */
static void schedule_cycle(struct user_net *u)
{
	if (!u->cycle_scheduled && !u->closed) {
		u->cycle_scheduled = true;
		call_on_loop(u, scheduled_cycle);
	}
}

static void cb_notify(void *opaque)
{
	schedule_cycle(opaque); /* called from inside slirp: lock held */
}

static const SlirpCb user_callbacks = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_register_poll_fd,
	.unregister_poll_fd = cb_unregister_poll_fd,
	.notify = cb_notify,
	.timer_new_opaque = cb_timer_new_opaque,
};

/* ---- poll cycle ---- */

static int add_poll(int fd, int events, void *opaque)
{
	struct user_net *u = opaque;
	if (u->npfds == u->pfds_cap) {
		u->pfds_cap = u->pfds_cap ? 2 * u->pfds_cap : 16;
		u->pfds = xrealloc(u->pfds, u->pfds_cap * sizeof(*u->pfds));
	}
	short ev = 0;
	if (events & SLIRP_POLL_IN)
		ev |= POLLIN;
	if (events & SLIRP_POLL_OUT)
		ev |= POLLOUT;
	if (events & SLIRP_POLL_PRI)
		ev |= POLLPRI;
	u->pfds[u->npfds] = (struct pollfd){ .fd = fd, .events = ev };
	return (int)u->npfds++;
}

static int get_revents(int idx, void *opaque)
{
	struct user_net *u = opaque;
	if (idx < 0 || (unsigned)idx >= u->npfds)
		return 0;
	short re = u->pfds[idx].revents;
	int r = 0;
	if (re & POLLIN)
		r |= SLIRP_POLL_IN;
	if (re & POLLOUT)
		r |= SLIRP_POLL_OUT;
	if (re & POLLPRI)
		r |= SLIRP_POLL_PRI;
	if (re & POLLERR)
		r |= SLIRP_POLL_ERR;
	if (re & POLLHUP)
		r |= SLIRP_POLL_HUP;
	return r;
}

static void fd_ready(void *opaque, uint32_t events)
{
	struct user_net *u = opaque;
	pthread_mutex_lock(&u->lock);
	if (!u->closed)
		cycle_locked(u);
	pthread_mutex_unlock(&u->lock);
}

/* Makes the loop's watches match the poll set slirp asked for. */
static void sync_watches(struct user_net *u)
{
	for (unsigned i = 0; i < u->nwatched;) {
		bool keep = false;
		for (unsigned j = 0; j < u->npfds; j++)
			if (u->pfds[j].fd == u->watched[i].fd)
				keep = true;
		if (keep) {
			i++;
			continue;
		}
		loop_del_fd(u->loop, u->watched[i].fd);
		u->watched[i] = u->watched[--u->nwatched];
	}
	for (unsigned j = 0; j < u->npfds; j++) {
		uint32_t ev = 0;
		if (u->pfds[j].events & POLLIN)
			ev |= EPOLLIN;
		if (u->pfds[j].events & POLLOUT)
			ev |= EPOLLOUT;
		if (u->pfds[j].events & POLLPRI)
			ev |= EPOLLPRI;
		struct watched_fd *w = NULL;
		for (unsigned i = 0; i < u->nwatched; i++)
			if (u->watched[i].fd == u->pfds[j].fd)
				w = &u->watched[i];
		if (w) {
			if (w->events != ev && loop_mod_fd(u->loop, w->fd, ev) == 0)
				w->events = ev;
			continue;
		}
		if (loop_add_fd(u->loop, u->pfds[j].fd, ev, fd_ready, u) < 0)
			continue;
		if (u->nwatched == u->watched_cap) {
			u->watched_cap = u->watched_cap ? 2 * u->watched_cap : 16;
			u->watched = xrealloc(u->watched, u->watched_cap * sizeof(*u->watched));
		}
		u->watched[u->nwatched++] = (struct watched_fd){ u->pfds[j].fd, ev };
	}
}

static void poll_timer_fired(void *opaque)
{
	struct user_net *u = opaque;
	pthread_mutex_lock(&u->lock);
	if (!u->closed)
		cycle_locked(u);
	pthread_mutex_unlock(&u->lock);
}

/* One round: let slirp serve whatever is ready, then mirror its new poll
 * set into the loop and arm the timer it wants. Loop thread, lock held. */
static void cycle_locked(struct user_net *u)
{
	uint32_t timeout = UINT32_MAX;
	u->npfds = 0;
	slirp_pollfds_fill(u->slirp, &timeout, add_poll, u);
	int r = poll(u->pfds, u->npfds, 0);
	slirp_pollfds_poll(u->slirp, r < 0, get_revents, u);
	timeout = 1000;
	u->npfds = 0;
	slirp_pollfds_fill(u->slirp, &timeout, add_poll, u);
	sync_watches(u);
	loop_timer_arm(u->poll_timer, (uint64_t)MAX(timeout, 1u) * 1000000ULL, 0);
}

/* ---- frames from the guest ---- */

/* Copies len bytes of the iovec data from byte off on into buf. */
static void gather(const struct iovec *iov, unsigned n, size_t off, uint8_t *buf, size_t len)
{
	for (unsigned i = 0; i < n && len; i++) {
		size_t l = iov[i].iov_len;
		if (off >= l) {
			off -= l;
			continue;
		}
		size_t c = MIN(l - off, len);
		memcpy(buf, (uint8_t *)iov[i].iov_base + off, c);
		buf += c;
		len -= c;
		off = 0;
	}
}

static void flush_tx(void *opaque)
{
	struct user_net *u = opaque;
	if (!call_begin(u))
		return;
	pthread_mutex_lock(&u->txq_lock);
	struct tx_frame *f = u->txq_head;
	u->txq_head = NULL;
	u->txq_tail = &u->txq_head;
	u->txq_len = 0;
	u->txq_scheduled = false;
	pthread_mutex_unlock(&u->txq_lock);
	while (f) {
		struct tx_frame *n = f->next;
		slirp_input(u->slirp, f->data, (int)f->len);
		free(f);
		f = n;
	}
	cycle_locked(u);
	pthread_mutex_unlock(&u->lock);
}

static int user_send(struct net_backend *be, const struct iovec *iov, unsigned n)
{
	struct user_net *u = (struct user_net *)be;
	uint64_t total = 0;
	for (unsigned i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (total <= NET_VNET_HDR_LEN || total - NET_VNET_HDR_LEN > 65536)
		return -EINVAL;
	size_t len = (size_t)(total - NET_VNET_HDR_LEN);
	struct tx_frame *f = xmalloc(sizeof(*f) + len);
	f->next = NULL;
	f->len = len;
	gather(iov, n, NET_VNET_HDR_LEN, f->data, len);
	pthread_mutex_lock(&u->txq_lock);
	if (u->txq_len >= USER_TXQ_MAX) {
		pthread_mutex_unlock(&u->txq_lock);
		free(f);
		return -ENOBUFS;
	}
	*u->txq_tail = f;
	u->txq_tail = &f->next;
	u->txq_len++;
	bool schedule = !u->txq_scheduled;
	u->txq_scheduled = true;
	pthread_mutex_unlock(&u->txq_lock);
	if (schedule) {
		pthread_mutex_lock(&u->lock);
		if (!u->closed)
			call_on_loop(u, flush_tx);
		pthread_mutex_unlock(&u->lock);
	}
	return 0;
}

static void user_rx_ready(struct net_backend *be)
{
}

static void user_start(struct net_backend *be)
{
	struct user_net *u = (struct user_net *)be;
	pthread_mutex_lock(&u->lock);
	schedule_cycle(u);
	pthread_mutex_unlock(&u->lock);
}

/* Any thread. After it returns no callback of this backend runs (frames
 * are no longer delivered); loop_call'ed work still queued frees the
 * last bits when it runs. */
static void user_close(struct net_backend *be)
{
	struct user_net *u = (struct user_net *)be;
	pthread_mutex_lock(&u->lock);
	u->closed = true;
	pthread_mutex_unlock(&u->lock);
	/* From here on loop callbacks return at once, so slirp is ours. */
	for (unsigned i = 0; i < u->nwatched; i++)
		loop_del_fd(u->loop, u->watched[i].fd);
	u->nwatched = 0;
	slirp_cleanup(u->slirp);
	loop_timer_free(u->poll_timer);
	struct tx_frame *f = u->txq_head;
	while (f) {
		struct tx_frame *n = f->next;
		free(f);
		f = n;
	}
	free(u->pfds);
	free(u->watched);
	pthread_mutex_lock(&u->lock);
	u->close_done = true;
	bool free_now = u->calls_pending == 0;
	pthread_mutex_unlock(&u->lock);
	if (free_now)
		free(u);
}

static const struct net_backend_ops user_ops = {
	.send = user_send,
	.rx_ready = user_rx_ready,
	.start = user_start,
	.close = user_close,
};

struct net_backend *net_user_open(struct machine *m, const struct net_options *o, char *err, size_t errlen)
{
	if (!m || !m->loop) {
		snprintf(err, errlen, "user networking needs the event loop");
		return NULL;
	}
	struct user_net *u = xcalloc(1, sizeof(*u));
	u->be.ops = &user_ops;
	u->be.m = m;
	u->be.vnet_hdr = false;
	u->loop = m->loop;
	pthread_mutex_init(&u->txq_lock, NULL);
	pthread_mutex_init(&u->lock, NULL);
	u->txq_tail = &u->txq_head;

	SlirpConfig cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.version = 4;
	cfg.in_enabled = true;
	inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
	inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
	inet_pton(AF_INET, "10.0.2.2", &cfg.vhost);
	inet_pton(AF_INET, "10.0.2.15", &cfg.vdhcp_start);
	inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
	cfg.vhostname = "xvm";
	u->slirp = slirp_new(&cfg, &user_callbacks, u);
	if (!u->slirp) {
		snprintf(err, errlen, "cannot start user-mode networking (libslirp)");
		free(u);
		return NULL;
	}
	u->poll_timer = loop_timer_new(u->loop, poll_timer_fired, u);
	struct in_addr guest;
	inet_pton(AF_INET, "10.0.2.15", &guest);
	for (unsigned i = 0; i < o->n_fwd; i++) {
		const struct net_hostfwd *f = &o->fwd[i];
		struct in_addr host = { .s_addr = f->host_addr };
		if (slirp_add_hostfwd(u->slirp, f->udp, host, f->host_port, guest, f->guest_port) < 0) {
			char a[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &host, a, sizeof(a));
			snprintf(err, errlen, "cannot forward host %s port %s:%u (in use?)",
				 f->udp ? "udp" : "tcp", a, f->host_port);
			user_close(&u->be);
			return NULL;
		}
	}
	return &u->be;
}
