/* NBD connections and the accept loop: one thread per client (each with
 * its own request workers, see transmission.c), at most max_clients at
 * once, and an orderly shutdown that lets in-flight requests finish. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "block/block.h"
#include "lib/log.h"
#include "lib/util.h"
#include "nbd/conn.h"

static void set_timeout(int fd, int opt, unsigned seconds)
{
	struct timeval tv = { .tv_sec = seconds };
	setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
}

/* Serves one connection without closing fd. */
static int serve_conn(const struct nbd_export *exp, int fd)
{
	struct nbd_conn c = { .exp = exp, .fd = fd };
	pthread_mutex_init(&c.send_mu, NULL);
	pthread_mutex_init(&c.mu, NULL);
	pthread_cond_init(&c.work, NULL);
	pthread_cond_init(&c.room, NULL);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* fails harmlessly on Unix sockets */
	/* A client gets a bounded time to finish the handshake, and one that
	 * stops reading its replies cannot pin a worker forever. */
	set_timeout(fd, SO_RCVTIMEO, NBD_HANDSHAKE_TIMEOUT_S);
	set_timeout(fd, SO_SNDTIMEO, NBD_SEND_TIMEOUT_S);
	int ret = nbd_handshake(&c);
	if (ret == 1) {
		set_timeout(fd, SO_RCVTIMEO, 0);
		ret = nbd_transmission(&c);
	}
	pthread_mutex_destroy(&c.send_mu);
	pthread_mutex_destroy(&c.mu);
	pthread_cond_destroy(&c.work);
	pthread_cond_destroy(&c.room);
	return ret;
}

int nbd_serve_fd(const struct nbd_export *exp, int fd)
{
	int ret = serve_conn(exp, fd);
	close(fd);
	return ret;
}

struct client {
	struct client *next;
	struct server *srv;
	pthread_t thread;
	int fd;        /* -1 once the client thread closed it (under srv->mu) */
	bool done;
};

struct server {
	const struct nbd_export *exp;
	const struct nbd_server_opts *opts;
	pthread_mutex_t mu;
	struct client *clients;
	unsigned nclients;
	int wake[2];   /* client threads say "I am done" here */
};

static void *client_main(void *arg)
{
	struct client *cl = arg;
	struct server *s = cl->srv;
	int ret = serve_conn(s->exp, cl->fd);
	if (ret < 0 && s->opts->verbose)
		log_info("nbd: client disconnected: %s", strerror(-ret));
	pthread_mutex_lock(&s->mu);
	close(cl->fd);
	cl->fd = -1;
	cl->done = true;
	pthread_mutex_unlock(&s->mu);
	char b = 1;
	if (write(s->wake[1], &b, 1) < 0) {
		/* the pipe is full: the accept loop is awake anyway */
	}
	return NULL;
}

/* Joins finished client threads. */
static void reap(struct server *s)
{
	pthread_mutex_lock(&s->mu);
	struct client **pp = &s->clients;
	while (*pp) {
		struct client *cl = *pp;
		if (!cl->done) {
			pp = &cl->next;
			continue;
		}
		*pp = cl->next;
		s->nclients--;
		pthread_mutex_unlock(&s->mu);
		pthread_join(cl->thread, NULL);
		free(cl);
		pthread_mutex_lock(&s->mu);
		pp = &s->clients;
	}
	pthread_mutex_unlock(&s->mu);
}

static void accept_one(struct server *s, int listen_fd)
{
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_once(LOG_WARN, "nbd: accept: %s", strerror(errno));
		if (errno == EMFILE || errno == ENFILE)
			usleep(100 * 1000); /* do not spin while out of descriptors */
		return;
	}
	pthread_mutex_lock(&s->mu);
	bool full = s->nclients >= s->opts->max_clients;
	pthread_mutex_unlock(&s->mu);
	if (full) {
		if (s->opts->verbose)
			log_info("nbd: refusing a client: %u already connected (see --shared)",
				 s->opts->max_clients);
		close(fd);
		return;
	}
	struct client *cl = xcalloc(1, sizeof(*cl));
	cl->srv = s;
	cl->fd = fd;
	pthread_mutex_lock(&s->mu);
	if (pthread_create(&cl->thread, NULL, client_main, cl) != 0) {
		pthread_mutex_unlock(&s->mu);
		log_once(LOG_WARN, "nbd: cannot start a thread for a client");
		close(fd);
		free(cl);
		return;
	}
	cl->next = s->clients;
	s->clients = cl;
	s->nclients++;
	pthread_mutex_unlock(&s->mu);
}

int nbd_server_run(const struct nbd_export *exp, int listen_fd, int stop_fd,
		   const struct nbd_server_opts *opts)
{
	struct server s = { .exp = exp, .opts = opts };
	/* poll may report a connection that is gone by the time we accept it:
	 * a non-blocking accept then fails instead of stalling the loop. */
	int fl = fcntl(listen_fd, F_GETFL);
	if (fl >= 0)
		fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK);
	pthread_mutex_init(&s.mu, NULL);
	if (pipe2(s.wake, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	bool served = false;
	for (;;) {
		struct pollfd pfd[3] = {
			{ .fd = listen_fd, .events = POLLIN },
			{ .fd = stop_fd, .events = POLLIN },
			{ .fd = s.wake[0], .events = POLLIN },
		};
		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		if (pfd[2].revents) {
			char buf[64];
			while (read(s.wake[0], buf, sizeof(buf)) > 0)
				;
			reap(&s);
			pthread_mutex_lock(&s.mu);
			bool idle = s.nclients == 0;
			pthread_mutex_unlock(&s.mu);
			if (idle && served && !opts->persistent)
				break;
		}
		if (pfd[0].revents & POLLIN) {
			accept_one(&s, listen_fd);
			served = true;
		}
	}
	/* Shutdown: no new requests; those received finish and are answered. */
	pthread_mutex_lock(&s.mu);
	for (struct client *cl = s.clients; cl; cl = cl->next)
		if (cl->fd >= 0)
			shutdown(cl->fd, SHUT_RD);
	pthread_mutex_unlock(&s.mu);
	for (;;) {
		pthread_mutex_lock(&s.mu);
		struct client *cl = s.clients;
		if (cl)
			s.clients = cl->next;
		pthread_mutex_unlock(&s.mu);
		if (!cl)
			break;
		pthread_join(cl->thread, NULL);
		free(cl);
	}
	close(s.wake[0]);
	close(s.wake[1]);
	pthread_mutex_destroy(&s.mu);
	return block_flush(exp->bd);
}
