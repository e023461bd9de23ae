/* Randomized hostile clients against the NBD server, under ASan/UBSan:
 * junk handshakes, options with random (sometimes lying) lengths and
 * payloads, then random requests (random types, flags, offsets near the
 * edges, lengths up to 4 GiB, truncated payloads). Every session must end
 * with the server thread returning; a crash, hang or sanitizer report
 * fails the test. Deterministic: a fixed seed per session. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "block/block.h"
#include "lib/util.h"
#include "nbd/conn.h"
#include "nbd/proto.h"
#include "nbd/server.h"

#define SIZE (1u << 20)
#define SESSIONS 1000

static char dir[64], path[128];
static struct blockdev *bd;

static uint64_t rng;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}
static uint32_t below(uint32_t n) { return (uint32_t)(rnd() % n); }

struct session {
	struct nbd_export exp;
	int sfd, cfd;
	int ret;
};

static void *server_main(void *arg)
{
	struct session *s = arg;
	s->ret = nbd_serve_fd(&s->exp, s->sfd);
	return NULL;
}

/* Swallows whatever the server says until it closes. */
static void *drain_main(void *arg)
{
	int fd = *(int *)arg;
	uint8_t buf[65536];
	while (recv(fd, buf, sizeof(buf), 0) > 0)
		;
	return NULL;
}

static void put(int fd, const void *buf, size_t len)
{
	/* The server may have hung up already: that is fine. */
	send(fd, buf, len, MSG_NOSIGNAL);
}

static void random_bytes(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rnd();
}

/* A length a careless or malicious client might send. */
static uint32_t nasty_length(void)
{
	switch (below(6)) {
	case 0: return 0;
	case 1: return below(16);
	case 2: return below(200);
	case 3: return 0xffffffffu - below(16);
	case 4: return NBD_MAX_OPTION + below(4);
	default: return (uint32_t)rnd();
	}
}

static void random_option(int fd)
{
	uint8_t h[16], d[512];
	put64(h, below(8) ? NBD_MAGIC_OPT : rnd());
	uint32_t opt = below(4) ? 1 + below(12) : (uint32_t)rnd();
	if (opt == NBD_OPT_EXPORT_NAME && below(2))
		opt = NBD_OPT_INFO;
	put32(h + 8, opt);
	uint32_t len = below(3) ? below(sizeof(d)) : nasty_length();
	put32(h + 12, len);
	put(fd, h, sizeof(h));
	size_t n = MIN(len, (uint32_t)sizeof(d));
	random_bytes(d, n);
	/* Half the time, plausible inner lengths (name, counts, queries). */
	if (n >= 8 && below(2)) {
		put32(d, below(3) ? 0 : nasty_length());
		put32(d + 4, below(4));
		if (n >= 12)
			put32(d + 8, below(3) ? 15 : nasty_length());
	}
	put(fd, d, n);
}

static void go(int fd)
{
	static const uint8_t structured[16] = { 0x49, 0x48, 0x41, 0x56, 0x45, 0x4f, 0x50, 0x54,
						0, 0, 0, 8, 0, 0, 0, 0 };
	put(fd, structured, sizeof(structured));
	uint8_t m[16 + 4 + 4 + 4 + 15];
	put64(m, NBD_MAGIC_OPT);
	put32(m + 8, NBD_OPT_SET_META_CONTEXT);
	put32(m + 12, 4 + 4 + 4 + 15);
	put32(m + 16, 0);
	put32(m + 20, 1);
	put32(m + 24, 15);
	memcpy(m + 28, "base:allocation", 15);
	put(fd, m, sizeof(m));
	uint8_t g[16 + 6];
	put64(g, NBD_MAGIC_OPT);
	put32(g + 8, NBD_OPT_GO);
	put32(g + 12, 6);
	put32(g + 16, 0);
	put16(g + 20, 0);
	put(fd, g, sizeof(g));
}

static uint64_t nasty_offset(void)
{
	switch (below(5)) {
	case 0: return below(SIZE);
	case 1: return SIZE - below(4096);
	case 2: return SIZE + below(4096);
	case 3: return UINT64_MAX - below(65536);
	default: return rnd();
	}
}

static void random_request(int fd)
{
	uint8_t r[NBD_REQUEST_SIZE];
	put32(r, below(50) ? NBD_REQUEST_MAGIC : (uint32_t)rnd());
	put16(r + 4, below(2) ? 0 : (uint16_t)(below(3) ? 1u << below(6) : rnd()));
	uint16_t type = (uint16_t)(below(10) ? below(9) : rnd());
	if (type == NBD_CMD_DISC && below(4))
		type = NBD_CMD_READ;
	put16(r + 6, type);
	put64(r + 8, rnd());
	uint64_t off = below(2) ? below(SIZE) : nasty_offset();
	uint32_t len = below(2) ? below(65536) : nasty_length();
	put64(r + 16, off);
	put32(r + 24, len);
	put(fd, r, sizeof(r));
	if (type == NBD_CMD_WRITE) {
		/* Usually the whole payload; sometimes a truncated one. */
		uint32_t n = len <= 65536 ? len : below(1000);
		if (below(10) == 0)
			n /= 2;
		uint8_t *p = malloc(n ? n : 1);
		random_bytes(p, n);
		put(fd, p, n);
		free(p);
	}
}

static void one_session(unsigned seed)
{
	rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)seed * 0x100000001b3ull);
	if (!rng)
		rng = 1;
	struct session s = { .exp = { .bd = bd, .name = "", .readonly = below(4) == 0 } };
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	s.cfd = sv[0];
	s.sfd = sv[1];
	pthread_t server, drain;
	assert_int_equal(pthread_create(&server, NULL, server_main, &s), 0);
	assert_int_equal(pthread_create(&drain, NULL, drain_main, &s.cfd), 0);

	uint32_t flags = below(5) ? NBD_FLAG_C_FIXED_NEWSTYLE | (below(2) ? NBD_FLAG_C_NO_ZEROES : 0)
				  : (uint32_t)rnd();
	switch (below(4)) {
	case 0: { /* junk from the first byte */
		uint8_t j[300];
		size_t n = 1 + below(sizeof(j));
		random_bytes(j, n);
		put(s.cfd, j, n);
		break;
	}
	case 1: { /* options only */
		uint8_t f[4];
		put32(f, flags);
		put(s.cfd, f, 4);
		for (unsigned i = below(20); i; i--)
			random_option(s.cfd);
		break;
	}
	default: { /* a few options, then GO and random requests */
		uint8_t f[4];
		put32(f, flags);
		put(s.cfd, f, 4);
		for (unsigned i = below(4); i; i--)
			random_option(s.cfd);
		go(s.cfd);
		for (unsigned i = below(60); i; i--)
			random_request(s.cfd);
		break;
	}
	}
	shutdown(s.cfd, SHUT_WR);
	pthread_join(server, NULL);
	pthread_join(drain, NULL);
	close(s.cfd);
}

static void test_random_sessions(void **state)
{
	for (unsigned i = 0; i < SESSIONS; i++)
		one_session(i);
	/* The export still works after all that. */
	uint8_t buf[512];
	assert_int_equal(block_pread(bd, buf, sizeof(buf), 0), 0);
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/xvm-test-nbdfuzz-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fuzz.raw", dir);
	char err[256];
	struct block_create_opts o = { .format = "raw", .size = SIZE };
	assert_int_equal(block_create(path, &o, err, sizeof(err)), 0);
	assert_int_equal(block_open(path, "raw", 0, &bd, err, sizeof(err)), 0);
	return 0;
}

static int teardown(void **state)
{
	block_close(bd);
	unlink(path);
	rmdir(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_sessions),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
