/* NBD server for one export over a block device: the handshake, the
 * transmission phase and the accept loop. Knows sockets and the block API,
 * nothing about the command line. Every byte from a client is hostile. */
#ifndef XVM_NBD_SERVER_H
#define XVM_NBD_SERVER_H

#include <stdbool.h>
#include <stdint.h>

struct blockdev;

/* Limits a client cannot push past. */
#define NBD_MAX_REQUEST   (32u << 20) /* READ/WRITE payload; larger: EINVAL */
#define NBD_MAX_OPTION    (64u << 10) /* option payload; larger: NBD_REP_ERR_TOO_BIG */
#define NBD_MAX_OPTIONS   4096        /* options in one handshake */
#define NBD_CONN_BUDGET   (96u << 20) /* payload bytes in flight per connection */
#define NBD_CONN_MAX_INFLIGHT 256      /* requests queued or running per connection */
#define NBD_CONN_WORKERS  4           /* threads serving one connection's requests */
#define NBD_HANDSHAKE_TIMEOUT_S 30
#define NBD_SEND_TIMEOUT_S      120

struct nbd_export {
	struct blockdev *bd;
	const char *name;        /* "" = the default export */
	const char *description; /* NULL = none */
	bool readonly;
};

/* Serves one client on a connected socket until it disconnects, the
 * handshake fails or nbd_conn_stop is called; closes fd. Returns 0 on a
 * clean end, -errno otherwise. Blocking; one call per connection. */
int nbd_serve_fd(const struct nbd_export *exp, int fd);

struct nbd_server_opts {
	unsigned max_clients;  /* connections served at once (>= 1) */
	bool persistent;       /* keep serving after the last client leaves */
	bool verbose;
};

/* Accepts clients on listen_fd (already listening) until stop_fd becomes
 * readable, or (not persistent) the last client has gone. On the way out:
 * stops accepting, lets every connection finish its in-flight requests,
 * joins them and flushes the export. Does not close listen_fd or stop_fd. */
int nbd_server_run(const struct nbd_export *exp, int listen_fd, int stop_fd,
		   const struct nbd_server_opts *opts);

#endif
