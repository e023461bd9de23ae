/* Console back end: terminal / pipe / file / nothing. See console.h for the
 * behaviour; this file is the mechanism: an output ring drained by a writer
 * thread, input read on the event loop with back-pressure, and the raw
 * terminal with its escape key and its restore-on-every-exit-path. */
#include "vmm/console.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define OUT_RING_SIZE   (64 * 1024)
#define IN_CHUNK        256
#define FLUSH_WAIT_MS   2000
/* A guest UART hands over one byte per port write. Waking the writer for
 * each byte costs a futex wake and a write(2) per byte (most of a vCPU's
 * time while a guest prints fast). Instead the writer, once woken, lets
 * output gather for up to BATCH_MS, or until the ring is BATCH_FULL,
 * and writes it in one go: at most a millisecond of added latency. */
#define BATCH_MS        1
#define BATCH_FULL      (OUT_RING_SIZE / 4)
/* stdin that epoll cannot watch (regular files, /dev/null) is polled. */
#define IN_POLL_NS      (10 * 1000 * 1000ULL)
#define ESCAPE_KEY      0x01 /* Ctrl-a */

struct console {
	struct machine *m;
	struct loop *loop;
	enum console_mode mode;

	/* Output. */
	int out_fd;             /* -1: discard */
	bool own_out_fd;
	pthread_mutex_t out_lock;
	pthread_cond_t out_data, out_room;
	uint8_t *ring;
	size_t ring_head;       /* next byte to write out */
	size_t ring_count;
	bool writer_running, writer_stop;
	bool writer_idle;       /* waiting for an empty ring to fill */
	bool writer_batching;   /* letting output gather (see BATCH_MS) */
	bool out_dead;          /* the fd failed for good: discard */
	bool dropping;          /* stalled reader: drop until drained */
	uint64_t dropped;
	pthread_t writer;

	/* Input. */
	int in_fd;              /* -1: none */
	bool in_epoll;          /* watched with epoll (else polled by timer) */
	bool in_watching;       /* loop thread only: EPOLLIN currently armed */
	bool in_eof;
	struct loop_timer *in_poll;
	int wake_fd;            /* eventfd: re-evaluate input state */
	bool wake_watched;
	pthread_mutex_t in_lock; /* receiver and pending bytes */
	console_input_fn in_fn;
	void *in_opaque;
	uint8_t pending[IN_CHUNK];
	size_t pending_off, pending_len;
	int paused;             /* atomic: console_pause_input */
	bool escape;            /* raw tty: previous byte was Ctrl-a */
	bool raw_tty;
};

/* ---- terminal state: global, because restoring must work from die(),
 * atexit and signal handlers, which have no console pointer. ---- */

static struct termios saved_tios;
static volatile sig_atomic_t tty_is_raw;
static bool tty_handlers_installed;

static void tty_restore(void)
{
	if (tty_is_raw) {
		tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_tios);
		tty_is_raw = 0;
	}
}

static void tty_fatal_signal(int sig)
{
	/* tcsetattr is async-signal-safe; the handler was installed with
	 * SA_RESETHAND, so re-raising gets the default action (core dump). */
	tty_restore();
	raise(sig);
}

static void tty_install_handlers(void)
{
	if (tty_handlers_installed)
		return;
	tty_handlers_installed = true;
	atexit(tty_restore);
	die_hook = tty_restore;
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGQUIT };
	for (size_t i = 0; i < ARRAY_SIZE(fatal); i++) {
		struct sigaction old, sa = { .sa_handler = tty_fatal_signal,
					     .sa_flags = (int)SA_RESETHAND | SA_NODEFER };
		sigemptyset(&sa.sa_mask);
		/* Leave handlers someone else installed (sanitizers) alone. */
		if (sigaction(fatal[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL)
			sigaction(fatal[i], &sa, NULL);
	}
}

/* A background job must not touch its terminal (SIGTTOU/SIGTTIN). A
 * terminal that is not our controlling one has no foreground group. */
static bool in_background(void)
{
	pid_t fg = tcgetpgrp(STDIN_FILENO);
	return fg >= 0 && fg != getpgrp();
}

static bool tty_make_raw(void)
{
	if (!isatty(STDIN_FILENO) || in_background())
		return false;
	struct termios t;
	if (tcgetattr(STDIN_FILENO, &t) < 0)
		return false;
	saved_tios = t;
	tty_install_handlers();
	/* Raw input: every key (Ctrl-c, Ctrl-z, Ctrl-s ...) goes to the guest.
	 * Output post-processing stays on so that "\n" in xvm's own log lines
	 * still returns the carriage. */
	t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
	t.c_cflag |= CS8;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSADRAIN, &t) < 0)
		return false;
	tty_is_raw = 1;
	return true;
}

/* ---- output ---- */

static void deadline_after_ms(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	ts->tv_sec += ms / 1000 + ts->tv_nsec / 1000000000L;
	ts->tv_nsec %= 1000000000L;
}

/* Lets output gather (see BATCH_MS); called with out_lock held. Kept out
 * of writer_main: the writer is cancelled inside write(), and a frame with
 * address-taken locals left on its stack then trips ASan at thread exit. */
static __attribute__((noinline)) void gather_output(struct console *c)
{
	if (c->ring_count >= BATCH_FULL || c->writer_stop || c->dropping)
		return;
	struct timespec until;
	deadline_after_ms(&until, BATCH_MS);
	c->writer_batching = true;
	while (c->ring_count < BATCH_FULL && !c->writer_stop &&
	       pthread_cond_timedwait(&c->out_data, &c->out_lock, &until) != ETIMEDOUT)
		;
	c->writer_batching = false;
}

static void *writer_main(void *opaque)
{
	struct console *c = opaque;
	pthread_setname_np(pthread_self(), "xvm-console");
	/* Cancellable only inside write(), with no lock held: console_close
	 * cancels a writer stuck on a reader that stopped reading. */
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	pthread_mutex_lock(&c->out_lock);
	for (;;) {
		while (c->ring_count == 0 && !c->writer_stop) {
			c->writer_idle = true;
			pthread_cond_wait(&c->out_data, &c->out_lock);
			c->writer_idle = false;
		}
		gather_output(c);
		if (c->ring_count == 0 || c->out_dead)
			break; /* stop requested and everything written */
		size_t chunk = MIN(c->ring_count, OUT_RING_SIZE - c->ring_head);
		const uint8_t *p = c->ring + c->ring_head;
		pthread_mutex_unlock(&c->out_lock);
		/* The ring cannot move under us: only this thread consumes,
		 * and producers only append after ring_count. */
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		ssize_t n = write(c->out_fd, p, chunk);
		int err = n < 0 ? errno : 0;
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		if (n < 0 && err == EAGAIN) {
			/* Someone made the shared fd non-blocking. */
			struct pollfd pfd = { .fd = c->out_fd, .events = POLLOUT };
			poll(&pfd, 1, 100);
		}
		pthread_mutex_lock(&c->out_lock);
		if (n > 0) {
			c->ring_head = (c->ring_head + (size_t)n) % OUT_RING_SIZE;
			c->ring_count -= (size_t)n;
		} else if (n < 0 && err != EAGAIN && err != EINTR) {
			log_warn("console output: %s; discarding guest output from now on",
				 strerror(err));
			c->out_dead = true;
			c->dropped += c->ring_count;
			c->ring_count = 0;
		}
		if (c->ring_count == 0)
			c->dropping = false;
		pthread_cond_broadcast(&c->out_room);
	}
	c->writer_running = false;
	pthread_cond_broadcast(&c->out_room);
	pthread_mutex_unlock(&c->out_lock);
	return NULL;
}

void console_write(struct console *c, const void *buf, size_t len)
{
	if (!c || c->out_fd < 0 || len == 0)
		return;
	const uint8_t *p = buf;
	pthread_mutex_lock(&c->out_lock);
	bool waited = false;
	struct timespec deadline;
	while (len) {
		if (c->out_dead || !c->writer_running) {
			c->dropped += len;
			break;
		}
		size_t room = OUT_RING_SIZE - c->ring_count;
		if (room == 0) {
			if (c->dropping) {
				c->dropped += len;
				break;
			}
			if (!waited) {
				deadline_after_ms(&deadline, CONSOLE_STALL_MS);
				waited = true;
			}
			if (pthread_cond_timedwait(&c->out_room, &c->out_lock, &deadline) == ETIMEDOUT &&
			    c->ring_count == OUT_RING_SIZE) {
				log_once(LOG_WARN, "console: the output reader is not keeping up; "
					 "dropping guest output until it catches up");
				c->dropping = true;
			}
			continue;
		}
		size_t tail = (c->ring_head + c->ring_count) % OUT_RING_SIZE;
		size_t n = MIN(MIN(len, room), OUT_RING_SIZE - tail);
		memcpy(c->ring + tail, p, n);
		bool was_empty = c->ring_count == 0;
		c->ring_count += n;
		if ((was_empty && c->writer_idle) || (c->writer_batching && c->ring_count >= BATCH_FULL))
			pthread_cond_signal(&c->out_data);
		p += n;
		len -= n;
	}
	pthread_mutex_unlock(&c->out_lock);
}

void console_flush(struct console *c)
{
	if (!c || c->out_fd < 0)
		return;
	struct timespec deadline;
	deadline_after_ms(&deadline, FLUSH_WAIT_MS);
	pthread_mutex_lock(&c->out_lock);
	while (c->ring_count && c->writer_running && !c->out_dead) {
		if (pthread_cond_timedwait(&c->out_room, &c->out_lock, &deadline) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&c->out_lock);
}

uint64_t console_dropped_bytes(struct console *c)
{
	pthread_mutex_lock(&c->out_lock);
	uint64_t n = c->dropped;
	pthread_mutex_unlock(&c->out_lock);
	return n;
}

/* ---- input (event-loop thread) ---- */

static void in_watch(struct console *c, bool on)
{
	if (!c->in_epoll || c->in_watching == on)
		return;
	if (loop_mod_fd(c->loop, c->in_fd, on ? EPOLLIN : 0) == 0)
		c->in_watching = on;
}

static void print_help(void)
{
	static const char help[] =
		"\r\nxvm console escape keys:\r\n"
		"  Ctrl-a x        quit xvm\r\n"
		"  Ctrl-a Ctrl-a   send Ctrl-a to the guest\r\n"
		"  Ctrl-a h        this help\r\n";
	ssize_t r = write(STDERR_FILENO, help, sizeof(help) - 1);
	(void)r;
}

/* Escape-key processing (raw terminal only): filters buf in place. */
static size_t filter_escapes(struct console *c, uint8_t *buf, size_t len)
{
	size_t out = 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t b = buf[i];
		if (!c->escape) {
			if (b == ESCAPE_KEY)
				c->escape = true;
			else
				buf[out++] = b;
			continue;
		}
		c->escape = false;
		switch (b) {
		case 'x':
		case 'X':
			log_info("quit requested from the console (Ctrl-a x)");
			machine_request_stop(c->m, VM_STOP_EXIT, 0);
			break;
		case ESCAPE_KEY:
			buf[out++] = ESCAPE_KEY;
			break;
		case 'h':
		case 'H':
		case '?':
			print_help();
			break;
		default:
			break; /* unknown escape: swallowed, as terminals do */
		}
	}
	return out;
}

/* Hands pending bytes to the receiver; true if all were taken. Called with
 * in_lock held. */
static bool deliver_pending(struct console *c)
{
	while (c->pending_len) {
		if (!c->in_fn)
			return false;
		size_t n = c->in_fn(c->in_opaque, c->pending + c->pending_off, c->pending_len);
		if (n > c->pending_len)
			n = c->pending_len;
		c->pending_off += n;
		c->pending_len -= n;
		if (n == 0)
			return false;
	}
	c->pending_off = 0;
	return true;
}

/* Reads and delivers input while the receiver keeps up. */
static void service_input(struct console *c)
{
	pthread_mutex_lock(&c->in_lock);
	bool can_read = !c->in_eof && c->in_fd >= 0;
	if (__atomic_load_n(&c->paused, __ATOMIC_ACQUIRE) || !deliver_pending(c)) {
		can_read = false;
	} else if (can_read) {
		uint8_t buf[IN_CHUNK];
		ssize_t n = read(c->in_fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			if (n < 0)
				log_warn("console input: %s; input stopped", strerror(errno));
			c->in_eof = true; /* EOF just ends input; the VM runs on */
			can_read = false;
		} else if (n > 0) {
			size_t len = (size_t)n;
			if (c->raw_tty)
				len = filter_escapes(c, buf, len);
			memcpy(c->pending, buf, len);
			c->pending_off = 0;
			c->pending_len = len;
			if (!deliver_pending(c))
				can_read = false;
		}
	}
	pthread_mutex_unlock(&c->in_lock);
	in_watch(c, can_read);
	if (!can_read && c->in_eof && c->in_poll)
		loop_timer_arm(c->in_poll, 0, 0);
}

static void in_ready(void *opaque, uint32_t events)
{
	service_input(opaque);
}

static void in_poll_tick(void *opaque)
{
	service_input(opaque);
}

static void wake_ready(void *opaque, uint32_t events)
{
	struct console *c = opaque;
	uint64_t v;
	ssize_t r = read(c->wake_fd, &v, sizeof(v));
	(void)r;
	/* Not reading here: if input is possible, re-arm the watch and let
	 * epoll say when there is something (never block the loop). */
	pthread_mutex_lock(&c->in_lock);
	bool ok = !__atomic_load_n(&c->paused, __ATOMIC_ACQUIRE) && deliver_pending(c);
	pthread_mutex_unlock(&c->in_lock);
	in_watch(c, ok && !c->in_eof);
}

static void wake(struct console *c)
{
	if (c->wake_fd >= 0) {
		uint64_t one = 1;
		ssize_t r = write(c->wake_fd, &one, sizeof(one));
		(void)r;
	}
}

void console_set_input(struct console *c, console_input_fn fn, void *opaque)
{
	if (!c)
		return;
	/* Waits for a delivery in progress: after this returns, the old
	 * receiver is not called again. */
	pthread_mutex_lock(&c->in_lock);
	c->in_fn = fn;
	c->in_opaque = opaque;
	pthread_mutex_unlock(&c->in_lock);
	wake(c);
}

void console_detach_input(struct console *c, void *opaque)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->in_lock);
	if (c->in_opaque == opaque) {
		c->in_fn = NULL;
		c->in_opaque = NULL;
	}
	pthread_mutex_unlock(&c->in_lock);
}

void console_pause_input(struct console *c)
{
	if (!c)
		return;
	__atomic_store_n(&c->paused, 1, __ATOMIC_RELEASE);
	wake(c);
}

void console_resume_input(struct console *c)
{
	if (!c)
		return;
	__atomic_store_n(&c->paused, 0, __ATOMIC_RELEASE);
	wake(c);
}

/* ---- open / close ---- */

static int setup_input(struct console *c, int fd)
{
	c->in_fd = fd;
	c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->wake_fd < 0)
		return -errno;
	int r = loop_add_fd(c->loop, c->wake_fd, EPOLLIN, wake_ready, c);
	if (r < 0)
		return r;
	c->wake_watched = true;
	r = loop_add_fd(c->loop, fd, EPOLLIN, in_ready, c);
	if (r == 0) {
		c->in_epoll = true;
		c->in_watching = true;
	} else if (r == -EBADF) {
		c->in_fd = -1; /* stdin is closed: no input */
	} else if (r == -EPERM) {
		/* Regular file or /dev/null: always "ready", so poll it. */
		c->in_poll = loop_timer_new(c->loop, in_poll_tick, c);
		loop_timer_arm(c->in_poll, IN_POLL_NS, IN_POLL_NS);
	} else {
		return r;
	}
	return 0;
}

static int setup_output(struct console *c)
{
	c->ring = xmalloc(OUT_RING_SIZE);
	c->writer_running = true;
	int r = pthread_create(&c->writer, NULL, writer_main, c);
	if (r) {
		c->writer_running = false;
		return -r;
	}
	return 0;
}

struct console *console_open(struct machine *m, enum console_mode mode, const char *path)
{
	struct console *c = xcalloc(1, sizeof(*c));
	c->m = m;
	c->loop = m->loop;
	c->mode = mode;
	c->out_fd = -1;
	c->in_fd = -1;
	c->wake_fd = -1;
	pthread_mutex_init(&c->out_lock, NULL);
	pthread_mutex_init(&c->in_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->out_data, &ca);
	pthread_cond_init(&c->out_room, &ca);
	pthread_condattr_destroy(&ca);

	int r = 0;
	switch (mode) {
	case CONSOLE_NONE:
		return c;
	case CONSOLE_FILE: {
		if (!path || !*path) {
			log_err("--console file=PATH: the path is empty");
			goto fail;
		}
		/* A guest reboot rebuilds the machine: keep the first boot's log. */
		int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_APPEND |
			    (m->generation == 0 ? O_TRUNC : 0);
		c->out_fd = open(path, flags, 0644);
		if (c->out_fd < 0) {
			log_err("--console file=%s: %s", path, strerror(errno));
			goto fail;
		}
		c->own_out_fd = true;
		r = setup_output(c);
		break;
	}
	case CONSOLE_STDIO:
	case CONSOLE_VIRTIO:
		c->out_fd = STDOUT_FILENO;
		r = setup_output(c);
		if (r == 0) {
			/* A background job reads nothing from the terminal. */
			bool background = isatty(STDIN_FILENO) && in_background();
			c->raw_tty = tty_make_raw();
			if (!background)
				r = setup_input(c, STDIN_FILENO);
		}
		break;
	}
	if (r < 0) {
		log_err("console: %s", strerror(-r));
		goto fail;
	}
	if (c->raw_tty && m->generation == 0)
		log_info("console: Ctrl-a x quits, Ctrl-a h for help");
	return c;
fail:
	console_close(c);
	return NULL;
}

void console_close(struct console *c)
{
	if (!c)
		return;
	/* Input first: after these, no callback runs. */
	if (c->in_epoll)
		loop_del_fd(c->loop, c->in_fd);
	if (c->in_poll)
		loop_timer_free(c->in_poll);
	if (c->wake_watched)
		loop_del_fd(c->loop, c->wake_fd);
	if (c->wake_fd >= 0)
		close(c->wake_fd);
	if (c->ring) {
		console_flush(c);
		pthread_mutex_lock(&c->out_lock);
		c->writer_stop = true;
		bool stuck = c->ring_count && !c->out_dead;
		if (stuck)
			c->dropped += c->ring_count;
		pthread_cond_signal(&c->out_data);
		bool running = c->writer_running;
		pthread_mutex_unlock(&c->out_lock);
		if (running) {
			/* The flush timed out: the writer is blocked in write()
			 * on a reader that stopped reading. */
			if (stuck)
				pthread_cancel(c->writer);
			pthread_join(c->writer, NULL);
		}
		free(c->ring);
	}
	if (c->raw_tty)
		tty_restore();
	if (c->own_out_fd)
		close(c->out_fd);
	pthread_cond_destroy(&c->out_data);
	pthread_cond_destroy(&c->out_room);
	pthread_mutex_destroy(&c->out_lock);
	pthread_mutex_destroy(&c->in_lock);
	free(c);
}
