/* The NBD transmission phase. One receiver (the connection's thread) reads
 * requests and queues them; NBD_CONN_WORKERS threads serve them in parallel
 * and send the replies under send_mu. The bytes in flight per connection
 * are bounded (NBD_CONN_BUDGET), so a client cannot make us allocate more
 * than that, whatever it sends. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "block/block.h"
#include "lib/log.h"
#include "lib/util.h"
#include "nbd/conn.h"
#include "nbd/proto.h"

/* Most extents one BLOCK_STATUS reply carries, and most chunks one READ
 * reply is split into before we send plain data instead. */
#define MAX_EXTENTS    512
#define MAX_READ_CHUNKS 64
/* Zero runs shorter than this are sent as data: a chunk header costs more. */
#define MIN_HOLE 4096
/* Extent lengths are 32-bit on the wire. */
#define MAX_EXTENT_LEN 0xfffff000u

struct nbd_req {
	struct nbd_req *next;
	uint16_t flags, type;
	uint64_t cookie, offset;
	uint32_t length;
	uint32_t error;      /* set by the receiver: reply this error, do nothing */
	uint64_t cost;       /* bytes counted against the budget */
	uint8_t *payload;    /* WRITE data */
};

int nbd_recv(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = recv(fd, p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int nbd_discard(int fd, uint64_t len)
{
	uint8_t scratch[16384];
	while (len) {
		size_t n = (size_t)MIN(len, sizeof(scratch));
		int ret = nbd_recv(fd, scratch, n);
		if (ret < 0)
			return ret;
		len -= n;
	}
	return 0;
}

int nbd_sendv(int fd, struct iovec *iov, int iovcnt)
{
	while (iovcnt > 0) {
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)iovcnt };
		ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

int nbd_send(int fd, const void *buf, size_t len)
{
	struct iovec iov = { (void *)buf, len };
	return nbd_sendv(fd, &iov, 1);
}

uint32_t nbd_errno(int err)
{
	switch (err < 0 ? -err : err) {
	case 0: return 0;
	case EPERM: case EROFS: case EACCES: return NBD_EPERM;
	case ENOMEM: return NBD_ENOMEM;
	case EINVAL: return NBD_EINVAL;
	case ENOSPC: case EFBIG: case EDQUOT: return NBD_ENOSPC;
	case EOVERFLOW: return NBD_EOVERFLOW;
	case ENOTSUP: return NBD_ENOTSUP;
	case ESHUTDOWN: return NBD_ESHUTDOWN;
	default: return NBD_EIO;
	}
}

/* ---- replies (callers hold nothing; these take send_mu) ---- */

static int send_locked(struct nbd_conn *c, struct iovec *iov, int n)
{
	pthread_mutex_lock(&c->send_mu);
	int ret = c->dead ? -EPIPE : nbd_sendv(c->fd, iov, n);
	if (ret < 0 && !c->dead) {
		c->dead = true;
		/* Wake the receiver: a client that cannot take replies is gone. */
		shutdown(c->fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&c->send_mu);
	return ret;
}

static int reply_simple(struct nbd_conn *c, uint64_t cookie, uint32_t error,
			const void *data, uint32_t len)
{
	uint8_t hdr[NBD_SIMPLE_REPLY_SIZE];
	put32(hdr, NBD_SIMPLE_REPLY_MAGIC);
	put32(hdr + 4, error);
	put64(hdr + 8, cookie);
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)data, len } };
	return send_locked(c, iov, data && len ? 2 : 1);
}

static void chunk_header(uint8_t *hdr, uint16_t flags, uint16_t type, uint64_t cookie, uint32_t len)
{
	put32(hdr, NBD_STRUCTURED_REPLY_MAGIC);
	put16(hdr + 4, flags);
	put16(hdr + 6, type);
	put64(hdr + 8, cookie);
	put32(hdr + 16, len);
}

static int reply_error_chunk(struct nbd_conn *c, uint64_t cookie, uint32_t error, const char *msg)
{
	uint16_t mlen = (uint16_t)MIN(strlen(msg), (size_t)NBD_MAX_STRING);
	uint8_t buf[NBD_CHUNK_HEADER_SIZE + 6];
	chunk_header(buf, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, cookie, 6u + mlen);
	put32(buf + NBD_CHUNK_HEADER_SIZE, error);
	put16(buf + NBD_CHUNK_HEADER_SIZE + 4, mlen);
	struct iovec iov[2] = { { buf, sizeof(buf) }, { (void *)msg, mlen } };
	return send_locked(c, iov, 2);
}

/* An error for any request: structured when the request needs it. */
static int reply_error(struct nbd_conn *c, const struct nbd_req *r, uint32_t error, const char *msg)
{
	if (c->structured && (r->type == NBD_CMD_READ || r->type == NBD_CMD_BLOCK_STATUS))
		return reply_error_chunk(c, r->cookie, error, msg);
	return reply_simple(c, r->cookie, error, NULL, 0);
}

static const char *error_message(uint32_t error)
{
	switch (error) {
	case NBD_EPERM: return "export is read-only";
	case NBD_EINVAL: return "invalid request (range, flags or length)";
	case NBD_ENOSPC: return "no space left";
	case NBD_ENOMEM: return "out of memory";
	case NBD_ENOTSUP: return "operation not supported";
	case NBD_ESHUTDOWN: return "server is shutting down";
	default: return "I/O error";
	}
}

/* ---- commands ---- */

struct segment {
	uint64_t off;
	uint32_t len;
	bool hole;
};

/* Splits [off, off+len) into data and hole segments by block status;
 * returns how many, or 0 when holes are not worth it (too fragmented,
 * no holes at all, or status failed: everything is then read as data). */
static unsigned read_segments(struct blockdev *bd, uint64_t off, uint32_t len,
			      struct segment *seg)
{
	unsigned n = 0;
	bool any_hole = false;
	uint64_t end = off + len;
	while (off < end) {
		uint64_t pnum;
		unsigned st;
		if (block_status(bd, off, end - off, &pnum, &st) < 0)
			return 0;
		bool hole = (st & BLOCK_STATUS_ZERO) && pnum >= MIN_HOLE;
		if (n && seg[n - 1].hole == hole) {
			seg[n - 1].len += (uint32_t)pnum;
		} else {
			if (n == MAX_READ_CHUNKS)
				return 0;
			seg[n++] = (struct segment){ off, (uint32_t)pnum, hole };
		}
		any_hole |= hole;
		off += pnum;
	}
	return any_hole ? n : 0;
}

static int cmd_read(struct nbd_conn *c, const struct nbd_req *r, uint8_t *buf)
{
	struct blockdev *bd = c->exp->bd;
	if (!c->structured) {
		int ret = block_pread(bd, buf, r->length, r->offset);
		if (ret < 0)
			return reply_simple(c, r->cookie, nbd_errno(ret), NULL, 0);
		return reply_simple(c, r->cookie, 0, buf, r->length);
	}
	if (r->length == 0) {
		/* A data chunk must carry at least one byte: an empty read is just "done". */
		uint8_t hdr[NBD_CHUNK_HEADER_SIZE];
		chunk_header(hdr, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, r->cookie, 0);
		struct iovec iov = { hdr, sizeof(hdr) };
		return send_locked(c, &iov, 1);
	}
	struct segment seg[MAX_READ_CHUNKS];
	unsigned n = 0;
	if (!(r->flags & NBD_CMD_FLAG_DF))
		n = read_segments(bd, r->offset, r->length, seg);
	if (n == 0) {
		seg[0] = (struct segment){ r->offset, r->length, false };
		n = 1;
	}
	/* Read every data segment before sending anything, so an I/O error
	 * becomes one clean error chunk. */
	for (unsigned i = 0; i < n; i++) {
		if (seg[i].hole)
			continue;
		int ret = block_pread(bd, buf + (seg[i].off - r->offset), seg[i].len, seg[i].off);
		if (ret < 0)
			return reply_error_chunk(c, r->cookie, nbd_errno(ret), "read failed");
	}
	pthread_mutex_lock(&c->send_mu);
	int ret = c->dead ? -EPIPE : 0;
	for (unsigned i = 0; i < n && !ret; i++) {
		uint16_t flags = i + 1 == n ? NBD_REPLY_FLAG_DONE : 0;
		uint8_t hdr[NBD_CHUNK_HEADER_SIZE + 12];
		struct iovec iov[2];
		int cnt;
		if (seg[i].hole) {
			chunk_header(hdr, flags, NBD_REPLY_TYPE_OFFSET_HOLE, r->cookie, 12);
			put64(hdr + NBD_CHUNK_HEADER_SIZE, seg[i].off);
			put32(hdr + NBD_CHUNK_HEADER_SIZE + 8, seg[i].len);
			iov[0] = (struct iovec){ hdr, NBD_CHUNK_HEADER_SIZE + 12 };
			cnt = 1;
		} else {
			chunk_header(hdr, flags, NBD_REPLY_TYPE_OFFSET_DATA, r->cookie, 8 + seg[i].len);
			put64(hdr + NBD_CHUNK_HEADER_SIZE, seg[i].off);
			iov[0] = (struct iovec){ hdr, NBD_CHUNK_HEADER_SIZE + 8 };
			iov[1] = (struct iovec){ buf + (seg[i].off - r->offset), seg[i].len };
			cnt = 2;
		}
		ret = nbd_sendv(c->fd, iov, cnt);
	}
	if (ret < 0 && !c->dead) {
		c->dead = true;
		shutdown(c->fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&c->send_mu);
	return ret;
}

static uint32_t state_flags(unsigned st)
{
	uint32_t f = 0;
	if (!(st & BLOCK_STATUS_DATA))
		f |= NBD_STATE_HOLE;
	if (st & BLOCK_STATUS_ZERO)
		f |= NBD_STATE_ZERO;
	return f;
}

static int cmd_block_status(struct nbd_conn *c, const struct nbd_req *r)
{
	struct blockdev *bd = c->exp->bd;
	uint8_t *buf = xmalloc(NBD_CHUNK_HEADER_SIZE + 4 + 8 * MAX_EXTENTS);
	uint8_t *ext = buf + NBD_CHUNK_HEADER_SIZE + 4;
	unsigned max = (r->flags & NBD_CMD_FLAG_REQ_ONE) ? 1 : MAX_EXTENTS;
	unsigned n = 0;
	uint64_t off = r->offset, end = r->offset + r->length;
	uint32_t last_flags = 0;
	int ret = 0;
	while (off < end) {
		uint64_t pnum;
		unsigned st;
		ret = block_status(bd, off, end - off, &pnum, &st);
		if (ret < 0)
			break;
		uint32_t f = state_flags(st);
		if (n && last_flags == f &&
		    (uint64_t)get32(ext + 8 * (n - 1)) + pnum <= MAX_EXTENT_LEN) {
			put32(ext + 8 * (n - 1), get32(ext + 8 * (n - 1)) + (uint32_t)pnum);
		} else {
			if (n == max)
				break;
			put32(ext + 8 * n, (uint32_t)pnum);
			put32(ext + 8 * n + 4, f);
			n++;
			last_flags = f;
		}
		off += pnum;
	}
	if (n == 0) {
		free(buf);
		return reply_error_chunk(c, r->cookie, nbd_errno(ret ? ret : -EIO), "block status failed");
	}
	chunk_header(buf, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS, r->cookie, 4 + 8 * n);
	put32(buf + NBD_CHUNK_HEADER_SIZE, 1); /* the id we gave base:allocation */
	struct iovec iov = { buf, NBD_CHUNK_HEADER_SIZE + 4 + 8 * n };
	ret = send_locked(c, &iov, 1);
	free(buf);
	return ret;
}

/* Runs one request and replies. */
static void serve(struct nbd_conn *c, struct nbd_req *r)
{
	struct blockdev *bd = c->exp->bd;
	if (r->error) {
		reply_error(c, r, r->error, error_message(r->error));
		return;
	}
	int ret = 0;
	switch (r->type) {
	case NBD_CMD_READ: {
		uint8_t *buf = malloc(r->length ? r->length : 1);
		if (!buf) {
			reply_error(c, r, NBD_ENOMEM, error_message(NBD_ENOMEM));
			return;
		}
		cmd_read(c, r, buf);
		free(buf);
		return;
	}
	case NBD_CMD_BLOCK_STATUS:
		cmd_block_status(c, r);
		return;
	case NBD_CMD_WRITE:
		ret = block_pwrite(bd, r->payload, r->length, r->offset);
		break;
	case NBD_CMD_FLUSH:
		ret = block_flush(bd);
		break;
	case NBD_CMD_TRIM:
		ret = block_discard(bd, r->offset, r->length);
		break;
	case NBD_CMD_WRITE_ZEROES:
		ret = block_write_zeroes(bd, r->offset, r->length,
					 (r->flags & NBD_CMD_FLAG_NO_HOLE) ? 0 : BLOCK_ZERO_MAY_UNMAP);
		break;
	case NBD_CMD_CACHE:
		break; /* a hint; the host page cache does the caching */
	}
	if (ret == 0 && (r->flags & NBD_CMD_FLAG_FUA) && r->type != NBD_CMD_FLUSH &&
	    r->type != NBD_CMD_CACHE)
		ret = block_flush(bd);
	if (ret < 0) {
		uint32_t e = nbd_errno(ret);
		reply_error(c, r, e, error_message(e));
		return;
	}
	reply_simple(c, r->cookie, 0, NULL, 0);
}

static void *worker_main(void *arg)
{
	struct nbd_conn *c = arg;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->head && !c->closing)
			pthread_cond_wait(&c->work, &c->mu);
		struct nbd_req *r = c->head;
		if (!r)
			break; /* closing and drained */
		c->head = r->next;
		if (!c->head)
			c->tail = NULL;
		pthread_mutex_unlock(&c->mu);
		serve(c, r);
		pthread_mutex_lock(&c->mu);
		c->inflight_bytes -= r->cost;
		c->inflight--;
		pthread_cond_broadcast(&c->room);
		free(r->payload);
		free(r);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* Checks a request against the export and the negotiated features; returns
 * the NBD error to reply, 0 if it may run. */
static uint32_t validate(const struct nbd_conn *c, const struct nbd_req *r)
{
	uint64_t size = block_size(c->exp->bd);
	bool writes = r->type == NBD_CMD_WRITE || r->type == NBD_CMD_TRIM ||
		      r->type == NBD_CMD_WRITE_ZEROES;
	uint16_t allowed = NBD_CMD_FLAG_FUA;
	switch (r->type) {
	case NBD_CMD_READ:
		if (c->structured)
			allowed |= NBD_CMD_FLAG_DF;
		break;
	case NBD_CMD_WRITE_ZEROES:
		allowed |= NBD_CMD_FLAG_NO_HOLE;
		break;
	case NBD_CMD_BLOCK_STATUS:
		allowed |= NBD_CMD_FLAG_REQ_ONE;
		if (!c->meta_base_allocation)
			return NBD_EINVAL;
		break;
	case NBD_CMD_FLUSH:
		return (r->flags & ~allowed) ? NBD_EINVAL : 0;
	case NBD_CMD_WRITE:
	case NBD_CMD_TRIM:
	case NBD_CMD_CACHE:
		break;
	default:
		return NBD_EINVAL;
	}
	if (r->flags & ~allowed)
		return NBD_EINVAL;
	if (writes && c->exp->readonly)
		return NBD_EPERM;
	if ((r->type == NBD_CMD_READ || r->type == NBD_CMD_WRITE) && r->length > NBD_MAX_REQUEST)
		return NBD_EINVAL;
	if (r->offset > size || r->length > size - r->offset)
		return (r->type == NBD_CMD_WRITE || r->type == NBD_CMD_WRITE_ZEROES) ?
			NBD_ENOSPC : NBD_EINVAL;
	if (r->type == NBD_CMD_BLOCK_STATUS && r->length == 0)
		return NBD_EINVAL;
	return 0;
}

static void enqueue(struct nbd_conn *c, struct nbd_req *r)
{
	/* cost was reserved by the receiver before it read the payload */
	r->next = NULL;
	if (c->tail)
		c->tail->next = r;
	else
		c->head = r;
	c->tail = r;
	pthread_cond_signal(&c->work);
}

/* Waits until cost more bytes fit in the connection's budget and reserves them. */
static void reserve(struct nbd_conn *c, uint64_t cost)
{
	while (c->inflight >= NBD_CONN_MAX_INFLIGHT ||
	       (c->inflight_bytes && c->inflight_bytes + cost > NBD_CONN_BUDGET))
		pthread_cond_wait(&c->room, &c->mu);
	c->inflight_bytes += cost;
	c->inflight++;
}

int nbd_transmission(struct nbd_conn *c)
{
	pthread_t workers[NBD_CONN_WORKERS];
	unsigned nworkers = 0;
	for (; nworkers < NBD_CONN_WORKERS; nworkers++)
		if (pthread_create(&workers[nworkers], NULL, worker_main, c) != 0)
			break;
	int ret = nworkers ? 0 : -EAGAIN;
	while (ret == 0) {
		uint8_t hdr[NBD_REQUEST_SIZE];
		ret = nbd_recv(c->fd, hdr, sizeof(hdr));
		if (ret < 0)
			break;
		if (get32(hdr) != NBD_REQUEST_MAGIC) {
			log_once(LOG_WARN, "nbd: request with a bad magic; disconnecting the client");
			ret = -EPROTO;
			break;
		}
		struct nbd_req *r = xcalloc(1, sizeof(*r));
		r->flags = get16(hdr + 4);
		r->type = get16(hdr + 6);
		r->cookie = get64(hdr + 8);
		r->offset = get64(hdr + 16);
		r->length = get32(hdr + 24);
		if (r->type == NBD_CMD_DISC) {
			free(r);
			break;
		}
		r->error = validate(c, r);
		if (r->type == NBD_CMD_WRITE && r->error) {
			/* The payload follows whatever we think of the request. */
			ret = nbd_discard(c->fd, r->length);
			if (ret < 0) {
				free(r);
				break;
			}
		}
		if (!r->error && (r->type == NBD_CMD_READ || r->type == NBD_CMD_WRITE))
			r->cost = r->length;
		pthread_mutex_lock(&c->mu);
		reserve(c, r->cost);
		pthread_mutex_unlock(&c->mu);
		if (r->type == NBD_CMD_WRITE && !r->error) {
			r->payload = malloc(r->length ? r->length : 1);
			if (!r->payload) {
				ret = -ENOMEM;
			} else {
				ret = nbd_recv(c->fd, r->payload, r->length);
			}
			if (ret < 0) {
				/* Truncated write: the client is gone; the data is not ours to write. */
				pthread_mutex_lock(&c->mu);
				c->inflight_bytes -= r->cost;
				c->inflight--;
				pthread_mutex_unlock(&c->mu);
				free(r->payload);
				free(r);
				break;
			}
		}
		pthread_mutex_lock(&c->mu);
		enqueue(c, r);
		pthread_mutex_unlock(&c->mu);
	}
	/* Finish what was received (its replies may still reach the client),
	 * then let the workers go. */
	pthread_mutex_lock(&c->mu);
	c->closing = true;
	pthread_cond_broadcast(&c->work);
	pthread_mutex_unlock(&c->mu);
	for (unsigned i = 0; i < nworkers; i++)
		pthread_join(workers[i], NULL);
	if (ret == -EPIPE || ret == -ECONNRESET)
		ret = 0; /* the client hung up between requests: a normal end */
	return ret;
}
