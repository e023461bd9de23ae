/* Unit tests for the NBD server: a client written here talks to
 * nbd_serve_fd over a socketpair (run under ASan/UBSan), through the
 * handshake, every command, and the malformed inputs a hostile client
 * sends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "block/block.h"
#include "nbd/conn.h"
#include "nbd/proto.h"
#include "nbd/server.h"

#define SIZE (4u << 20)

static char dir[64];
static char path[128];

struct server {
	pthread_t thread;
	struct nbd_export exp;
	int fd;      /* the client's end */
	int sfd;     /* the server's end */
	int ret;
};

static void *server_main(void *arg)
{
	struct server *s = arg;
	s->ret = nbd_serve_fd(&s->exp, s->sfd);
	return NULL;
}

/* A raw image: 4 MiB, data in [1 MiB, 2 MiB), holes elsewhere. */
static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/xvm-test-nbd-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/disk.raw", dir);
	char err[256];
	struct block_create_opts o = { .format = "raw", .size = SIZE };
	assert_int_equal(block_create(path, &o, err, sizeof(err)), 0);
	struct blockdev *bd;
	assert_int_equal(block_open(path, "raw", 0, &bd, err, sizeof(err)), 0);
	uint8_t *buf = malloc(1 << 20);
	for (unsigned i = 0; i < (1u << 20); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(block_pwrite(bd, buf, 1 << 20, 1 << 20), 0);
	free(buf);
	block_close(bd);
	return 0;
}

static int teardown(void **state)
{
	unlink(path);
	rmdir(dir);
	return 0;
}

static struct server *start(bool readonly, const char *name)
{
	struct server *s = calloc(1, sizeof(*s));
	char err[256];
	assert_int_equal(block_open(path, "raw", readonly ? BLOCK_OPEN_RDONLY : 0, &s->exp.bd,
				    err, sizeof(err)), 0);
	s->exp.name = name;
	s->exp.readonly = readonly;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	s->fd = sv[0];
	s->sfd = sv[1];
	struct timeval tv = { .tv_sec = 10 };
	setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
	return s;
}

/* Closes the client end, waits for the server; returns its result. */
static int finish(struct server *s)
{
	close(s->fd);
	pthread_join(s->thread, NULL);
	int ret = s->ret;
	block_close(s->exp.bd);
	free(s);
	return ret;
}

static void xsend(struct server *s, const void *buf, size_t len)
{
	assert_int_equal(nbd_send(s->fd, buf, len), 0);
}

static void xrecv(struct server *s, void *buf, size_t len)
{
	assert_int_equal(nbd_recv(s->fd, buf, len), 0);
}

/* True if the server closed the connection (a close with our bytes still
 * unread in its queue shows as ECONNRESET on a Unix socket). */
static bool server_closed(struct server *s)
{
	uint8_t b;
	ssize_t n = recv(s->fd, &b, 1, 0);
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

static void hello(struct server *s, uint32_t cflags)
{
	uint8_t h[18];
	xrecv(s, h, sizeof(h));
	assert_true(get64(h) == NBD_MAGIC_INIT);
	assert_true(get64(h + 8) == NBD_MAGIC_OPT);
	assert_true(get16(h + 16) & NBD_FLAG_FIXED_NEWSTYLE);
	uint8_t f[4];
	put32(f, cflags);
	xsend(s, f, 4);
}

static void send_opt(struct server *s, uint32_t opt, const void *data, uint32_t len)
{
	uint8_t h[16];
	put64(h, NBD_MAGIC_OPT);
	put32(h + 8, opt);
	put32(h + 12, len);
	xsend(s, h, sizeof(h));
	if (len)
		xsend(s, data, len);
}

/* Reads one option reply; returns its type, payload in buf (len in *len). */
static uint32_t opt_reply(struct server *s, uint32_t opt, uint8_t *buf, uint32_t *len)
{
	uint8_t h[20];
	xrecv(s, h, sizeof(h));
	assert_true(get64(h) == NBD_MAGIC_OPT_REPLY);
	assert_int_equal(get32(h + 8), opt);
	uint32_t l = get32(h + 16);
	assert_true(l <= 8192);
	uint8_t scratch[8192];
	xrecv(s, buf ? buf : scratch, l);
	if (len)
		*len = l;
	return get32(h + 12);
}

static uint64_t go(struct server *s, const char *name, bool structured, bool meta)
{
	uint8_t buf[8192];
	uint32_t len;
	if (structured) {
		send_opt(s, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
		assert_int_equal(opt_reply(s, NBD_OPT_STRUCTURED_REPLY, NULL, NULL), NBD_REP_ACK);
	}
	if (meta) {
		const char *q = NBD_META_BASE_ALLOCATION;
		uint32_t nl = (uint32_t)strlen(name), ql = (uint32_t)strlen(q);
		uint8_t d[256];
		put32(d, nl);
		memcpy(d + 4, name, nl);
		put32(d + 4 + nl, 1);
		put32(d + 8 + nl, ql);
		memcpy(d + 12 + nl, q, ql);
		send_opt(s, NBD_OPT_SET_META_CONTEXT, d, 12 + nl + ql);
		assert_int_equal(opt_reply(s, NBD_OPT_SET_META_CONTEXT, buf, &len), NBD_REP_META_CONTEXT);
		assert_int_equal(len, 4 + ql);
		assert_memory_equal(buf + 4, q, ql);
		assert_int_equal(opt_reply(s, NBD_OPT_SET_META_CONTEXT, NULL, NULL), NBD_REP_ACK);
	}
	uint32_t nl = (uint32_t)strlen(name);
	uint8_t d[256];
	put32(d, nl);
	memcpy(d + 4, name, nl);
	put16(d + 4 + nl, 1);
	put16(d + 6 + nl, NBD_INFO_BLOCK_SIZE);
	send_opt(s, NBD_OPT_GO, d, 8 + nl);
	uint64_t size = 0;
	bool got_bs = false;
	for (;;) {
		uint32_t t = opt_reply(s, NBD_OPT_GO, buf, &len);
		if (t == NBD_REP_ACK)
			break;
		assert_int_equal(t, NBD_REP_INFO);
		if (get16(buf) == NBD_INFO_EXPORT) {
			assert_int_equal(len, 12);
			size = get64(buf + 2);
		} else if (get16(buf) == NBD_INFO_BLOCK_SIZE) {
			assert_int_equal(len, 14);
			assert_int_equal(get32(buf + 10), NBD_MAX_REQUEST);
			got_bs = true;
		}
	}
	assert_true(got_bs);
	return size;
}

static void request(struct server *s, uint16_t type, uint16_t flags, uint64_t cookie,
		    uint64_t off, uint32_t len)
{
	uint8_t r[NBD_REQUEST_SIZE];
	put32(r, NBD_REQUEST_MAGIC);
	put16(r + 4, flags);
	put16(r + 6, type);
	put64(r + 8, cookie);
	put64(r + 16, off);
	put32(r + 24, len);
	xsend(s, r, sizeof(r));
}

/* A simple reply's error. */
static uint32_t simple_reply(struct server *s, uint64_t cookie)
{
	uint8_t h[16];
	xrecv(s, h, sizeof(h));
	assert_int_equal(get32(h), NBD_SIMPLE_REPLY_MAGIC);
	assert_true(get64(h + 8) == cookie);
	return get32(h + 4);
}

/* A structured read: fills out (len bytes at off); returns the error
 * (0 if none) and counts the hole chunks. */
static uint32_t structured_read(struct server *s, uint64_t cookie, uint64_t off, uint32_t len,
				uint8_t *out, unsigned *holes)
{
	uint32_t err = 0;
	*holes = 0;
	memset(out, 0xee, len);
	for (;;) {
		uint8_t h[20];
		xrecv(s, h, sizeof(h));
		assert_int_equal(get32(h), NBD_STRUCTURED_REPLY_MAGIC);
		assert_true(get64(h + 8) == cookie);
		uint16_t flags = get16(h + 4), type = get16(h + 6);
		uint32_t l = get32(h + 16);
		uint8_t *p = malloc(l ? l : 1);
		xrecv(s, p, l);
		if (type == NBD_REPLY_TYPE_OFFSET_DATA) {
			uint64_t o = get64(p);
			assert_true(o >= off && o + (l - 8) <= off + len);
			memcpy(out + (o - off), p + 8, l - 8);
		} else if (type == NBD_REPLY_TYPE_OFFSET_HOLE) {
			assert_int_equal(l, 12);
			uint64_t o = get64(p);
			uint32_t n = get32(p + 8);
			assert_true(o >= off && o + n <= off + len);
			memset(out + (o - off), 0, n);
			(*holes)++;
		} else if (type == NBD_REPLY_TYPE_ERROR) {
			err = get32(p);
		} else {
			assert_int_equal(type, NBD_REPLY_TYPE_NONE);
		}
		free(p);
		if (flags & NBD_REPLY_FLAG_DONE)
			return err;
	}
}

static void expected(uint8_t *buf, uint64_t off, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++) {
		uint64_t o = off + i;
		buf[i] = (o >= (1 << 20) && o < (2 << 20)) ? (uint8_t)((o - (1 << 20)) * 7 + 3) : 0;
	}
}

static void test_go_read_write_status(void **state)
{
	struct server *s = start(false, "");
	hello(s, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	assert_int_equal(go(s, "", true, true), SIZE);

	/* A read across data and holes: right bytes, hole chunks used. */
	uint32_t len = 3 << 20;
	uint8_t *got = malloc(len), *want = malloc(len);
	unsigned holes;
	request(s, NBD_CMD_READ, 0, 1, 512 * 1024, len);
	assert_int_equal(structured_read(s, 1, 512 * 1024, len, got, &holes), 0);
	expected(want, 512 * 1024, len);
	assert_memory_equal(got, want, len);
	assert_true(holes >= 1);
	/* With DF: one data chunk, no holes. */
	request(s, NBD_CMD_READ, NBD_CMD_FLAG_DF, 2, 512 * 1024, len);
	assert_int_equal(structured_read(s, 2, 512 * 1024, len, got, &holes), 0);
	assert_int_equal(holes, 0);
	assert_memory_equal(got, want, len);

	/* Write with FUA, read back. */
	uint8_t pat[4096];
	memset(pat, 0x5a, sizeof(pat));
	request(s, NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 3, 8192, sizeof(pat));
	xsend(s, pat, sizeof(pat));
	assert_int_equal(simple_reply(s, 3), 0);
	request(s, NBD_CMD_READ, 0, 4, 8192, sizeof(pat));
	assert_int_equal(structured_read(s, 4, 8192, sizeof(pat), got, &holes), 0);
	assert_memory_equal(got, pat, sizeof(pat));

	/* Write zeroes, trim, flush. */
	request(s, NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_NO_HOLE, 5, 8192, 1024);
	assert_int_equal(simple_reply(s, 5), 0);
	request(s, NBD_CMD_READ, 0, 6, 8192, 1024);
	assert_int_equal(structured_read(s, 6, 8192, 1024, got, &holes), 0);
	memset(want, 0, 1024);
	assert_memory_equal(got, want, 1024);
	request(s, NBD_CMD_TRIM, 0, 7, 0, 65536);
	assert_int_equal(simple_reply(s, 7), 0);
	request(s, NBD_CMD_FLUSH, 0, 8, 0, 0);
	assert_int_equal(simple_reply(s, 8), 0);

	/* Block status: extents over the whole export, base:allocation. */
	request(s, NBD_CMD_BLOCK_STATUS, 0, 9, 0, SIZE);
	uint8_t h[20];
	xrecv(s, h, sizeof(h));
	assert_int_equal(get16(h + 6), NBD_REPLY_TYPE_BLOCK_STATUS);
	assert_true(get16(h + 4) & NBD_REPLY_FLAG_DONE);
	uint32_t l = get32(h + 16);
	assert_true(l >= 4 + 16 && (l - 4) % 8 == 0);
	uint8_t *b = malloc(l);
	xrecv(s, b, l);
	uint64_t total = 0;
	bool data_at_1m = false;
	for (uint32_t i = 4; i < l; i += 8) {
		uint32_t el = get32(b + i), f = get32(b + i + 4);
		if (total <= (1u << 20) + 4096 && total + el > (1u << 20) + 4096)
			data_at_1m = !(f & NBD_STATE_HOLE);
		total += el;
	}
	assert_true(total <= SIZE && total > 0);
	assert_true(data_at_1m);
	free(b);
	/* REQ_ONE: exactly one extent. */
	request(s, NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_REQ_ONE, 10, 0, SIZE);
	xrecv(s, h, sizeof(h));
	assert_int_equal(get32(h + 16), 12);
	uint8_t one[12];
	xrecv(s, one, sizeof(one));

	/* An empty read is a lone NONE chunk. */
	request(s, NBD_CMD_READ, 0, 12, 4096, 0);
	assert_int_equal(structured_read(s, 12, 4096, 0, got, &holes), 0);
	assert_int_equal(holes, 0);

	request(s, NBD_CMD_DISC, 0, 11, 0, 0);
	assert_true(server_closed(s));
	assert_int_equal(finish(s), 0);
	free(got);
	free(want);
}

static void test_export_name_simple_replies(void **state)
{
	struct server *s = start(false, "disk");
	hello(s, NBD_FLAG_C_FIXED_NEWSTYLE);
	send_opt(s, NBD_OPT_EXPORT_NAME, "disk", 4);
	uint8_t r[134];
	xrecv(s, r, sizeof(r)); /* size, flags and 124 zeros (no NO_ZEROES) */
	assert_true(get64(r) == SIZE);
	assert_true(get16(r + 8) & NBD_FLAG_HAS_FLAGS);
	assert_false(get16(r + 8) & NBD_FLAG_SEND_DF); /* no structured replies */
	uint8_t *got = malloc(8192), want[8192];
	request(s, NBD_CMD_READ, 0, 77, (1 << 20) - 4096, 8192);
	assert_int_equal(simple_reply(s, 77), 0);
	xrecv(s, got, 8192);
	expected(want, (1 << 20) - 4096, 8192);
	assert_memory_equal(got, want, 8192);
	/* Errors come back as simple replies, and the stream stays in sync. */
	request(s, NBD_CMD_READ, 0, 78, SIZE - 512, 1024);
	assert_int_equal(simple_reply(s, 78), NBD_EINVAL);
	request(s, NBD_CMD_READ, 0, 79, 0, 64u << 20);
	assert_int_equal(simple_reply(s, 79), NBD_EINVAL);
	request(s, NBD_CMD_READ, 0, 80, UINT64_MAX - 100, 200);
	assert_int_equal(simple_reply(s, 80), NBD_EINVAL);
	request(s, NBD_CMD_BLOCK_STATUS, 0, 81, 0, 4096); /* no meta context */
	assert_int_equal(simple_reply(s, 81), NBD_EINVAL);
	request(s, 99, 0, 82, 0, 0);
	assert_int_equal(simple_reply(s, 82), NBD_EINVAL);
	request(s, NBD_CMD_FLUSH, 0x4000, 83, 0, 0);
	assert_int_equal(simple_reply(s, 83), NBD_EINVAL);
	/* A write past the end: refused, its payload drained. */
	request(s, NBD_CMD_WRITE, 0, 84, SIZE - 100, 200);
	uint8_t junk[200] = { 0 };
	xsend(s, junk, sizeof(junk));
	assert_int_equal(simple_reply(s, 84), NBD_ENOSPC);
	request(s, NBD_CMD_READ, 0, 85, (1 << 20) - 4096, 8192);
	assert_int_equal(simple_reply(s, 85), 0);
	xrecv(s, got, 8192);
	assert_memory_equal(got, want, 8192);
	free(got);
	assert_int_equal(finish(s), 0);
}

static void test_handshake_abuse(void **state)
{
	/* Unknown client flags: dropped. */
	struct server *s = start(false, "");
	hello(s, 0x100);
	assert_true(server_closed(s));
	assert_true(finish(s) < 0);

	/* Lying lengths are refused politely; the session continues. */
	s = start(false, "");
	hello(s, NBD_FLAG_C_FIXED_NEWSTYLE);
	uint8_t d[64] = { 0 };
	put32(d, 1000); /* name length beyond the option */
	send_opt(s, NBD_OPT_GO, d, 10);
	assert_int_equal(opt_reply(s, NBD_OPT_GO, NULL, NULL), NBD_REP_ERR_INVALID);
	send_opt(s, NBD_OPT_GO, d, 3); /* shorter than the fixed part */
	assert_int_equal(opt_reply(s, NBD_OPT_GO, NULL, NULL), NBD_REP_ERR_INVALID);
	put32(d, 0);
	put16(d + 4, 30000); /* 30000 info requests in 2 bytes */
	send_opt(s, NBD_OPT_INFO, d, 6);
	assert_int_equal(opt_reply(s, NBD_OPT_INFO, NULL, NULL), NBD_REP_ERR_INVALID);
	send_opt(s, NBD_OPT_SET_META_CONTEXT, d, 8); /* before STRUCTURED_REPLY */
	assert_int_equal(opt_reply(s, NBD_OPT_SET_META_CONTEXT, NULL, NULL), NBD_REP_ERR_INVALID);
	send_opt(s, NBD_OPT_STRUCTURED_REPLY, "x", 1);
	assert_int_equal(opt_reply(s, NBD_OPT_STRUCTURED_REPLY, NULL, NULL), NBD_REP_ERR_INVALID);
	send_opt(s, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	assert_int_equal(opt_reply(s, NBD_OPT_STRUCTURED_REPLY, NULL, NULL), NBD_REP_ACK);
	put32(d, 0);
	put32(d + 4, 3);        /* three queries... */
	put32(d + 8, 0xfffffff0); /* ...the first absurdly long */
	send_opt(s, NBD_OPT_LIST_META_CONTEXT, d, 12);
	assert_int_equal(opt_reply(s, NBD_OPT_LIST_META_CONTEXT, NULL, NULL), NBD_REP_ERR_INVALID);
	send_opt(s, 1234, "abc", 3);
	assert_int_equal(opt_reply(s, 1234, NULL, NULL), NBD_REP_ERR_UNSUP);
	send_opt(s, NBD_OPT_STARTTLS, NULL, 0);
	assert_int_equal(opt_reply(s, NBD_OPT_STARTTLS, NULL, NULL), NBD_REP_ERR_POLICY);
	/* An empty LIST_META_CONTEXT lists base:allocation. */
	put32(d, 0);
	put32(d + 4, 0);
	send_opt(s, NBD_OPT_LIST_META_CONTEXT, d, 8);
	uint8_t buf[8192];
	uint32_t len;
	assert_int_equal(opt_reply(s, NBD_OPT_LIST_META_CONTEXT, buf, &len), NBD_REP_META_CONTEXT);
	assert_int_equal(opt_reply(s, NBD_OPT_LIST_META_CONTEXT, NULL, NULL), NBD_REP_ACK);
	/* LIST names the export. */
	send_opt(s, NBD_OPT_LIST, NULL, 0);
	assert_int_equal(opt_reply(s, NBD_OPT_LIST, buf, &len), NBD_REP_SERVER);
	assert_int_equal(get32(buf), 0);
	assert_int_equal(opt_reply(s, NBD_OPT_LIST, NULL, NULL), NBD_REP_ACK);
	/* Unknown export in GO. */
	put32(d, 4);
	memcpy(d + 4, "nope", 4);
	put16(d + 8, 0);
	send_opt(s, NBD_OPT_GO, d, 10);
	assert_int_equal(opt_reply(s, NBD_OPT_GO, NULL, NULL), NBD_REP_ERR_UNKNOWN);
	/* An option too large to hold is skipped, not buffered. */
	uint8_t *big = calloc(1, NBD_MAX_OPTION + 100);
	send_opt(s, NBD_OPT_GO, big, NBD_MAX_OPTION + 100);
	free(big);
	assert_int_equal(opt_reply(s, NBD_OPT_GO, NULL, NULL), NBD_REP_ERR_TOO_BIG);
	/* Still able to go. */
	assert_int_equal(go(s, "", true, false), SIZE);
	request(s, NBD_CMD_DISC, 0, 1, 0, 0);
	assert_int_equal(finish(s), 0);

	/* ABORT is acknowledged and ends the session cleanly. */
	s = start(false, "");
	hello(s, NBD_FLAG_C_FIXED_NEWSTYLE);
	send_opt(s, NBD_OPT_ABORT, NULL, 0);
	assert_int_equal(opt_reply(s, NBD_OPT_ABORT, NULL, NULL), NBD_REP_ACK);
	assert_true(server_closed(s));
	assert_int_equal(finish(s), 0);

	/* EXPORT_NAME for a missing export ends the session. */
	s = start(false, "disk");
	hello(s, NBD_FLAG_C_FIXED_NEWSTYLE);
	send_opt(s, NBD_OPT_EXPORT_NAME, "other", 5);
	assert_true(server_closed(s));
	assert_true(finish(s) < 0);

	/* Garbage instead of an option header. */
	s = start(false, "");
	hello(s, NBD_FLAG_C_FIXED_NEWSTYLE);
	xsend(s, "this is not an NBD option header", 32);
	assert_true(server_closed(s));
	assert_true(finish(s) < 0);
}

static void test_readonly_and_disconnects(void **state)
{
	struct server *s = start(true, "");
	hello(s, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	go(s, "", false, false);
	uint8_t buf[512] = { 1 };
	request(s, NBD_CMD_WRITE, 0, 1, 0, sizeof(buf));
	xsend(s, buf, sizeof(buf));
	assert_int_equal(simple_reply(s, 1), NBD_EPERM);
	request(s, NBD_CMD_WRITE_ZEROES, 0, 2, 0, 512);
	assert_int_equal(simple_reply(s, 2), NBD_EPERM);
	request(s, NBD_CMD_TRIM, 0, 3, 0, 512);
	assert_int_equal(simple_reply(s, 3), NBD_EPERM);
	/* A bad request magic ends the connection. */
	xsend(s, "garbage garbage garbage garbage!", 28);
	assert_true(server_closed(s));
	assert_true(finish(s) < 0);

	/* Disconnecting in the middle of a write payload: no crash, no write. */
	s = start(false, "");
	hello(s, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	go(s, "", true, false);
	request(s, NBD_CMD_WRITE, 0, 1, 0, 1 << 20);
	uint8_t part[1000];
	memset(part, 0x77, sizeof(part));
	xsend(s, part, sizeof(part));
	finish(s);
	/* Pipelined requests, then vanishing without reading the replies. */
	s = start(false, "");
	hello(s, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	go(s, "", true, false);
	for (unsigned i = 0; i < 100; i++)
		request(s, NBD_CMD_READ, 0, i, 0, 4096);
	finish(s);
	/* The half-written block was not written. */
	struct blockdev *bd;
	char err[256];
	assert_int_equal(block_open(path, "raw", BLOCK_OPEN_RDONLY, &bd, err, sizeof(err)), 0);
	uint8_t first[1000];
	assert_int_equal(block_pread(bd, first, sizeof(first), 0), 0);
	for (unsigned i = 0; i < sizeof(first); i++)
		assert_int_not_equal(first[i], 0x77);
	block_close(bd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_go_read_write_status),
		cmocka_unit_test(test_export_name_simple_replies),
		cmocka_unit_test(test_handshake_abuse),
		cmocka_unit_test(test_readonly_and_disconnects),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
