/* Internals of one NBD connection, shared by the handshake and the
 * transmission phase. Only src/nbd/ includes this. */
#ifndef XVM_NBD_CONN_H
#define XVM_NBD_CONN_H

#include <endian.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "nbd/server.h"

struct nbd_req;

struct nbd_conn {
	const struct nbd_export *exp;
	int fd;
	/* Negotiated in the handshake. */
	bool structured;
	bool meta_base_allocation;
	bool no_zeroes;
	uint16_t tflags;          /* transmission flags sent to the client */

	/* Transmission: the receiver queues requests, workers serve them. */
	pthread_mutex_t send_mu;  /* one reply on the wire at a time */
	pthread_mutex_t mu;
	pthread_cond_t work;      /* a request was queued or closing was set */
	pthread_cond_t room;      /* budget was released */
	struct nbd_req *head, *tail;
	uint64_t inflight_bytes;
	unsigned inflight;
	bool closing;             /* no more requests will be queued */
	bool dead;                /* a send failed: nothing more reaches the client */
};

static inline void put16(uint8_t *p, uint16_t v) { v = htobe16(v); memcpy(p, &v, 2); }
static inline void put32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }
static inline void put64(uint8_t *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); }
static inline uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return be16toh(v); }
static inline uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static inline uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }

/* Whole-buffer socket I/O; 0 or -errno (-EPIPE when the peer closed). */
int nbd_recv(int fd, void *buf, size_t len);
/* Reads and drops len bytes. */
int nbd_discard(int fd, uint64_t len);
int nbd_sendv(int fd, struct iovec *iov, int iovcnt);
int nbd_send(int fd, const void *buf, size_t len);

/* 1: enter transmission; 0: the client ended the session; <0: error. */
int nbd_handshake(struct nbd_conn *c);
/* Runs until the client disconnects or the socket is shut down. */
int nbd_transmission(struct nbd_conn *c);

/* errno -> NBD wire error. */
uint32_t nbd_errno(int err);

#endif
