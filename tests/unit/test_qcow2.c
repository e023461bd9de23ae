/* Unit tests for the qcow2 driver: layout, allocation, COW through
 * backing chains, zeroing, discard, status, resize, compression, hostile
 * headers and concurrency. Interop with qemu-img is in
 * tests/check.d/block-interop.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block.h"
#include "lib/util.h"

static char tmpdir[64];

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/xvm-test-qcow2-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *tmp_path(const char *name)
{
	static char buf[4][128];
	static int i;
	char *p = buf[i++ & 3];
	snprintf(p, 128, "%s/%s", tmpdir, name);
	return p;
}

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9) + 1);
}

static struct blockdev *create_open(const char *name, struct block_create_opts o)
{
	char err[256];
	o.format = "qcow2";
	if (block_create(tmp_path(name), &o, err, sizeof(err)) < 0)
		fail_msg("create: %s", err);
	struct blockdev *bd;
	if (block_open(tmp_path(name), NULL, 0, &bd, err, sizeof(err)) < 0)
		fail_msg("open: %s", err);
	return bd;
}

static struct blockdev *reopen(struct blockdev *bd, const char *name, unsigned flags)
{
	char err[256];
	assert_int_equal(block_close(bd), 0);
	if (block_open(tmp_path(name), NULL, flags, &bd, err, sizeof(err)) < 0)
		fail_msg("reopen: %s", err);
	return bd;
}

static void assert_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			fail_msg("byte %zu is %u, not zero", i, p[i]);
}

static void check_clean(struct blockdev *bd)
{
	struct block_check_result r;
	assert_int_equal(block_check(bd, 0, &r), 0);
	if (r.corruptions || r.leaks || r.check_errors)
		fail_msg("check: %llu corruptions, %llu leaks: %s",
			 (unsigned long long)r.corruptions, (unsigned long long)r.leaks,
			 r.first_problem);
}

/* Writes a model of the disk alongside, at odd offsets and sizes, and
 * compares everything after a reopen. */
static void rw_model(uint32_t cluster_size, unsigned refbits, bool v2)
{
	const uint64_t size = 3 * MiB + 1536;
	struct block_create_opts o = { .size = size, .cluster_size = cluster_size,
				       .refcount_bits = refbits, .compat_v2 = v2 };
	struct blockdev *bd = create_open("m.qcow2", o);
	uint8_t *model = xcalloc(1, size), *buf = xmalloc(size);
	static const struct { uint64_t off, len; } w[] = {
		{ 0, 512 }, { 512, 70000 }, { 1 * MiB - 100, 300 }, { 2 * MiB, 1 * MiB },
		{ 3 * MiB, 1536 }, { 100, 5 }, { 65536 * 3 + 7, 200000 }, { 1 * MiB - 100, 300 },
	};
	for (unsigned i = 0; i < ARRAY_SIZE(w); i++) {
		fill(buf, w[i].len, i);
		assert_int_equal(block_pwrite(bd, buf, w[i].len, w[i].off), 0);
		memcpy(model + w[i].off, buf, w[i].len);
		assert_int_equal(block_pread(bd, buf, w[i].len, w[i].off), 0);
		assert_memory_equal(buf, model + w[i].off, w[i].len);
	}
	bd = reopen(bd, "m.qcow2", BLOCK_OPEN_RDONLY);
	assert_int_equal(block_size(bd), size);
	assert_int_equal(block_pread(bd, buf, size, 0), 0);
	assert_memory_equal(buf, model, size);
	struct block_info info;
	assert_int_equal(block_get_info(bd, &info), 0);
	assert_int_equal(info.cluster_size, cluster_size ? cluster_size : 65536);
	assert_int_equal(info.qcow2_version, v2 ? 2 : 3);
	assert_int_equal(info.refcount_bits, refbits ? refbits : 16);
	check_clean(bd);
	assert_int_equal(block_close(bd), 0);
	free(model);
	free(buf);
}

static void test_rw_64k(void **state) { rw_model(0, 0, false); }
static void test_rw_512(void **state) { rw_model(512, 0, false); }
static void test_rw_2m(void **state) { rw_model(2 * MiB, 0, false); }
static void test_rw_v2(void **state) { rw_model(4096, 16, true); }
static void test_rw_refbits1(void **state) { rw_model(4096, 1, false); }
static void test_rw_refbits64(void **state) { rw_model(512, 64, false); }

/* Many small-cluster allocations force the refcount table to grow. */
static void test_refcount_table_growth(void **state)
{
	struct block_create_opts o = { .size = 64 * MiB, .cluster_size = 512, .refcount_bits = 64 };
	struct blockdev *bd = create_open("g.qcow2", o);
	uint8_t *buf = xmalloc(MiB), *rd = xmalloc(MiB);
	for (unsigned i = 0; i < 8; i++) {
		fill(buf, MiB, i);
		assert_int_equal(block_pwrite(bd, buf, MiB, (uint64_t)i * 8 * MiB), 0);
	}
	bd = reopen(bd, "g.qcow2", 0);
	for (unsigned i = 0; i < 8; i++) {
		fill(buf, MiB, i);
		assert_int_equal(block_pread(bd, rd, MiB, (uint64_t)i * 8 * MiB), 0);
		assert_memory_equal(buf, rd, MiB);
	}
	check_clean(bd);
	assert_int_equal(block_close(bd), 0);
	free(buf);
	free(rd);
}

static void test_backing_chain(void **state)
{
	char err[256];
	/* raw base <- qcow2 mid <- qcow2 top, relative names */
	struct block_create_opts ro = { .format = "raw", .size = 2 * MiB };
	assert_int_equal(block_create(tmp_path("base.raw"), &ro, err, sizeof(err)), 0);
	struct blockdev *base;
	assert_int_equal(block_open(tmp_path("base.raw"), NULL, 0, &base, err, sizeof(err)), 0);
	uint8_t *a = xmalloc(2 * MiB), *b = xmalloc(2 * MiB);
	fill(a, 2 * MiB, 1);
	assert_int_equal(block_pwrite(base, a, 2 * MiB, 0), 0);
	assert_int_equal(block_close(base), 0);

	struct block_create_opts mo = { .backing = "base.raw", .backing_format = "raw",
					.cluster_size = 4096 };
	struct blockdev *mid = create_open("mid.qcow2", mo);
	assert_int_equal(block_size(mid), 2 * MiB);
	fill(b, 10000, 2);
	assert_int_equal(block_pwrite(mid, b, 10000, 5000), 0); /* partial clusters: COW */
	memcpy(a + 5000, b, 10000);
	assert_int_equal(block_close(mid), 0);

	struct block_create_opts to = { .backing = "mid.qcow2", .size = 3 * MiB };
	struct blockdev *top = create_open("top.qcow2", to);
	assert_non_null(block_backing(top));
	assert_non_null(block_backing(block_backing(top)));
	fill(b, 100, 3);
	assert_int_equal(block_pwrite(top, b, 100, 1 * MiB + 3), 0);
	memcpy(a + 1 * MiB + 3, b, 100);
	uint8_t *all = xmalloc(3 * MiB);
	assert_int_equal(block_pread(top, all, 3 * MiB, 0), 0);
	assert_memory_equal(all, a, 2 * MiB);
	assert_zero(all + 2 * MiB, MiB); /* past the backing's end */

	/* status: allocated only where this layer has data */
	uint64_t pnum;
	unsigned st;
	assert_int_equal(block_status(top, 0, 3 * MiB, &pnum, &st), 0);
	assert_false(st & BLOCK_STATUS_ALLOCATED);
	assert_true(st & BLOCK_STATUS_DATA);
	assert_int_equal(block_status(top, 1 * MiB, 1, &pnum, &st), 0);
	assert_true(st & BLOCK_STATUS_ALLOCATED);

	/* write-zeroes over backing data must hide it */
	assert_int_equal(block_write_zeroes(top, 0, 64 * KiB, 0), 0);
	assert_int_equal(block_pread(top, all, 64 * KiB, 0), 0);
	assert_zero(all, 64 * KiB);
	struct block_info info;
	assert_int_equal(block_get_info(top, &info), 0);
	assert_string_equal(info.backing, "mid.qcow2");
	check_clean(top);
	assert_int_equal(block_close(top), 0);

	/* no-backing open and a missing backing file */
	assert_int_equal(block_open(tmp_path("top.qcow2"), NULL, BLOCK_OPEN_NO_BACKING, &top,
				    err, sizeof(err)), 0);
	assert_null(block_backing(top));
	assert_int_equal(block_set_backing(top, "nothere.img", "raw", err, sizeof(err)), 0);
	assert_int_equal(block_close(top), 0);
	assert_int_not_equal(block_open(tmp_path("top.qcow2"), NULL, 0, &top, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "backing"));
	free(a);
	free(b);
	free(all);
}

static void test_backing_loop(void **state)
{
	char err[256];
	struct block_create_opts o = { .size = MiB };
	struct blockdev *x = create_open("x.qcow2", o);
	assert_int_equal(block_close(x), 0);
	struct block_create_opts yo = { .backing = "x.qcow2" };
	struct blockdev *y = create_open("y.qcow2", yo);
	assert_int_equal(block_close(y), 0);
	assert_int_equal(block_open(tmp_path("x.qcow2"), NULL, BLOCK_OPEN_NO_BACKING, &x, err,
				    sizeof(err)), 0);
	assert_int_equal(block_set_backing(x, "y.qcow2", "qcow2", err, sizeof(err)), 0);
	assert_int_equal(block_close(x), 0);
	assert_int_equal(block_open(tmp_path("y.qcow2"), NULL, 0, &y, err, sizeof(err)), -ELOOP);
}

static void test_zero_discard_status(void **state)
{
	struct block_create_opts o = { .size = 4 * MiB, .cluster_size = 65536 };
	struct blockdev *bd = create_open("z.qcow2", o);
	uint8_t *buf = xmalloc(4 * MiB);
	fill(buf, 4 * MiB, 5);
	assert_int_equal(block_pwrite(bd, buf, 4 * MiB, 0), 0);
	uint64_t pnum;
	unsigned st;
	assert_int_equal(block_status(bd, 0, 4 * MiB, &pnum, &st), 0);
	assert_int_equal(pnum, 4 * MiB);
	assert_int_equal(st, BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED);
	uint64_t host;
	assert_int_equal(block_map(bd, 65536, 4 * MiB, &pnum, &st, &host), 0);
	assert_int_equal(st, BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED);
	assert_int_equal(host % 65536, 0);
	assert_true(host >= 4 * 65536);

	assert_int_equal(block_write_zeroes(bd, 100, 200000, 0), 0);
	assert_int_equal(block_write_zeroes(bd, MiB, MiB, BLOCK_ZERO_MAY_UNMAP), 0);
	assert_int_equal(block_discard(bd, 3 * MiB, MiB), 0);
	memset(buf + 100, 0, 200000);
	memset(buf + MiB, 0, MiB);
	memset(buf + 3 * MiB, 0, MiB);
	uint8_t *rd = xmalloc(4 * MiB);
	assert_int_equal(block_pread(bd, rd, 4 * MiB, 0), 0);
	assert_memory_equal(rd, buf, 4 * MiB);
	assert_int_equal(block_status(bd, MiB, 3 * MiB, &pnum, &st), 0);
	assert_int_equal(pnum, MiB);
	assert_int_equal(st, BLOCK_STATUS_ZERO | BLOCK_STATUS_ALLOCATED);
	assert_int_equal(block_status(bd, 3 * MiB, MiB, &pnum, &st), 0);
	assert_int_equal(st, BLOCK_STATUS_ZERO);
	check_clean(bd);
	/* space of unmapped clusters is reused */
	fill(buf, MiB, 9);
	assert_int_equal(block_pwrite(bd, buf, MiB, 3 * MiB), 0);
	assert_int_equal(block_pread(bd, rd, MiB, 3 * MiB), 0);
	assert_memory_equal(rd, buf, MiB);
	check_clean(bd);
	assert_int_equal(block_close(bd), 0);
	free(buf);
	free(rd);
}

static void test_resize(void **state)
{
	struct block_create_opts o = { .size = MiB, .cluster_size = 512 };
	struct blockdev *bd = create_open("r.qcow2", o);
	uint8_t b[1000];
	fill(b, sizeof(b), 4);
	assert_int_equal(block_pwrite(bd, b, sizeof(b), MiB - 1000), 0);
	assert_int_equal(block_resize(bd, 100 * MiB), 0); /* L1 must grow */
	assert_int_equal(block_pwrite(bd, b, sizeof(b), 100 * MiB - 1000), 0);
	bd = reopen(bd, "r.qcow2", 0);
	assert_int_equal(block_size(bd), 100 * MiB);
	uint8_t rd[1000];
	assert_int_equal(block_pread(bd, rd, sizeof(rd), MiB - 1000), 0);
	assert_memory_equal(rd, b, sizeof(b));
	assert_int_equal(block_pread(bd, rd, sizeof(rd), 100 * MiB - 1000), 0);
	assert_memory_equal(rd, b, sizeof(b));
	check_clean(bd);
	assert_int_equal(block_resize(bd, MiB / 2), 0);
	assert_int_equal(block_size(bd), MiB / 2);
	check_clean(bd);
	assert_int_equal(block_close(bd), 0);
}

static void compressed(const char *comp, uint32_t cs)
{
	struct block_create_opts o = { .size = 8 * cs + cs / 2, .cluster_size = cs,
				       .compression = comp };
	struct blockdev *bd = create_open("c.qcow2", o);
	uint8_t *buf = xmalloc(cs), *rd = xmalloc(cs);
	for (unsigned i = 0; i < 8; i++) {
		memset(buf, 'a' + i, cs);
		memcpy(buf, "header", 6);
		assert_int_equal(block_pwrite_compressed(bd, buf, cs, (uint64_t)i * cs), 0);
	}
	memset(buf, 'z', cs / 2);
	assert_int_equal(block_pwrite_compressed(bd, buf, cs / 2, 8ULL * cs), 0);
	assert_int_equal(block_pwrite_compressed(bd, buf, cs / 2, 1), -EINVAL);
	bd = reopen(bd, "c.qcow2", 0);
	struct block_info info;
	block_get_info(bd, &info);
	assert_string_equal(info.compression, comp);
	for (unsigned i = 0; i < 8; i++) {
		assert_int_equal(block_pread(bd, rd, cs, (uint64_t)i * cs), 0);
		memset(buf, 'a' + i, cs);
		memcpy(buf, "header", 6);
		assert_memory_equal(rd, buf, cs);
	}
	/* overwrite part of a compressed cluster: decompress, merge, rewrite */
	assert_int_equal(block_pwrite(bd, "XY", 2, 3 * (uint64_t)cs + 10), 0);
	assert_int_equal(block_pread(bd, rd, cs, 3 * (uint64_t)cs), 0);
	memset(buf, 'd', cs);
	memcpy(buf, "header", 6);
	memcpy(buf + 10, "XY", 2);
	assert_memory_equal(rd, buf, cs);
	check_clean(bd);
	struct block_check_result r;
	assert_int_equal(block_check(bd, 0, &r), 0);
	assert_true(r.compressed_clusters >= 7);
	uint64_t pnum, host;
	unsigned st;
	assert_int_equal(block_map(bd, 0, cs, &pnum, &st, &host), 0);
	assert_true(st & BLOCK_STATUS_COMPRESSED);
	assert_int_equal(host, UINT64_MAX);
	assert_int_equal(block_close(bd), 0);
	free(buf);
	free(rd);
}

static void test_compressed_zlib(void **state) { compressed("zlib", 65536); }
static void test_compressed_zstd(void **state) { compressed("zstd", 4096); }
static void test_compressed_small(void **state) { compressed("zlib", 512); }

/* A writable copy of a fresh image's header, for corrupting. */
static void write_file(const char *path, const uint8_t *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void poke(const char *name, uint64_t off, const void *bytes, size_t n)
{
	int fd = open(tmp_path(name), O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, bytes, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static void expect_refusal(const char *name, const char *needle)
{
	char err[256] = "";
	struct blockdev *bd;
	int ret = block_open(tmp_path(name), NULL, 0, &bd, err, sizeof(err));
	if (ret == 0)
		fail_msg("%s opened; expected '%s'", name, needle);
	if (!strstr(err, needle))
		fail_msg("error '%s' lacks '%s'", err, needle);
}

static void test_hostile_headers(void **state)
{
	struct block_create_opts o = { .size = 16 * MiB };
	struct blockdev *bd = create_open("h.qcow2", o);
	assert_int_equal(block_close(bd), 0);
	uint8_t *orig;
	size_t len;
	assert_int_equal(read_file(tmp_path("h.qcow2"), &orig, &len, 64 * MiB), 0);
	static const struct {
		uint64_t off;
		uint8_t bytes[8];
		size_t n;
		const char *needle;
	} cases[] = {
		{ 20, { 0, 0, 0, 30 }, 4, "image is corrupt: cluster_bits" },
		{ 4, { 0, 0, 0, 9 }, 4, "version 9" },
		{ 36, { 0, 0, 0, 0 }, 4, "image is corrupt: L1 table" },
		{ 40, { 0, 0, 0, 0, 0, 0, 0x12, 0x34 }, 8, "image is corrupt: L1 table offset" },
		{ 48, { 0, 0, 0, 0, 0, 0, 0, 1 }, 8, "image is corrupt: refcount table" },
		{ 56, { 0x7f, 0, 0, 0 }, 4, "image is corrupt: refcount table" },
		{ 72, { 0, 0, 0, 0, 0, 0, 0, 0x20 }, 8, "unsupported incompatible feature" },
		{ 72, { 0, 0, 0, 0, 0, 0, 0, 0x04 }, 8, "external data file" },
		{ 72, { 0, 0, 0, 0, 0, 0, 0, 0x10 }, 8, "extended L2" },
		{ 100, { 0, 0, 0, 0x69 }, 4, "image is corrupt: header length" },
		{ 96, { 0, 0, 0, 7 }, 4, "image is corrupt: refcount order" },
		{ 32, { 0, 0, 0, 1 }, 4, "encrypted" },
		{ 60, { 0, 0, 0, 1 }, 4, "image is corrupt: snapshot table" },
		{ 8, { 0, 0, 0, 0, 0, 1, 0, 0 }, 8, "image is corrupt: backing file name" },
		{ 104, { 1 }, 1, "image is corrupt: compression type" },
	};
	for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
		write_file(tmp_path("bad.qcow2"), orig, len);
		poke("bad.qcow2", cases[i].off, cases[i].bytes, cases[i].n);
		if (cases[i].off == 8) { /* give the backing name a length */
			uint8_t l[4] = { 0, 0, 0, 10 };
			poke("bad.qcow2", 16, l, 4);
		}
		expect_refusal("bad.qcow2", cases[i].needle);
	}
	/* an unknown feature named by the image's own feature table */
	write_file(tmp_path("bad.qcow2"), orig, len);
	uint8_t bit63[8] = { 0x80 };
	poke("bad.qcow2", 72, bit63, 8);
	uint8_t ext[8 + 48] = { 0x68, 0x03, 0xf8, 0x57, 0, 0, 0, 48, 0, 63 };
	memcpy(ext + 10, "teleportation", 13);
	uint8_t end[8] = { 0 };
	poke("bad.qcow2", 112, ext, sizeof(ext));
	poke("bad.qcow2", 112 + sizeof(ext), end, 8);
	expect_refusal("bad.qcow2", "teleportation");
	free(orig);
}

static void test_corrupt_l2_entry(void **state)
{
	struct block_create_opts o = { .size = MiB };
	struct blockdev *bd = create_open("cl.qcow2", o);
	uint8_t b[512] = { 1 };
	assert_int_equal(block_pwrite(bd, b, 512, 0), 0);
	assert_int_equal(block_close(bd), 0);
	/* L1 at cluster 3, L2 allocated at cluster 4: make entry 0 unaligned */
	uint8_t e[8] = { 0x80, 0, 0, 0, 0, 0, 0x12, 0x00 };
	poke("cl.qcow2", 4 * 65536, e, 8);
	char err[256];
	assert_int_equal(block_open(tmp_path("cl.qcow2"), NULL, 0, &bd, err, sizeof(err)), 0);
	assert_int_equal(block_pread(bd, b, 512, 0), -EIO);
	assert_int_equal(block_pwrite(bd, b, 512, 0), -EIO); /* now marked corrupt */
	struct block_info info;
	block_get_info(bd, &info);
	assert_true(info.corrupt);
	assert_int_equal(block_close(bd), 0);
}

struct targ { struct blockdev *bd; unsigned idx; int failures; };

static void *thread_rw(void *p)
{
	struct targ *a = p;
	uint8_t buf[5000], rd[5000];
	for (unsigned i = 0; i < 50; i++) {
		uint64_t off = ((uint64_t)(i * 4 + a->idx)) * 9000;
		fill(buf, sizeof(buf), a->idx * 100 + i);
		if (block_pwrite(a->bd, buf, sizeof(buf), off) < 0 ||
		    block_pread(a->bd, rd, sizeof(rd), off) < 0 || memcmp(buf, rd, sizeof(buf)))
			a->failures++;
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct block_create_opts o = { .size = 4 * MiB, .cluster_size = 4096 };
	struct blockdev *bd = create_open("t.qcow2", o);
	pthread_t t[4];
	struct targ a[4];
	for (unsigned i = 0; i < 4; i++) {
		a[i] = (struct targ){ bd, i, 0 };
		pthread_create(&t[i], NULL, thread_rw, &a[i]);
	}
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].failures, 0);
	}
	check_clean(bd);
	assert_int_equal(block_close(bd), 0);
}

/* Threads writing disjoint quarters of the same clusters: every partial
 * write merges with the others', none may be lost. */
static void *thread_quarters(void *p)
{
	struct targ *a = p;
	uint8_t buf[1024];
	for (unsigned c = 0; c < 256; c++) {
		memset(buf, (int)(a->idx * 60 + c % 60 + 1), sizeof(buf));
		if (block_pwrite(a->bd, buf, sizeof(buf), (uint64_t)c * 4096 + a->idx * 1024) < 0)
			a->failures++;
	}
	return NULL;
}

static void test_threads_same_clusters(void **state)
{
	struct block_create_opts o = { .size = MiB, .cluster_size = 4096 };
	struct blockdev *bd = create_open("tq.qcow2", o);
	pthread_t t[4];
	struct targ a[4];
	for (unsigned i = 0; i < 4; i++) {
		a[i] = (struct targ){ bd, i, 0 };
		pthread_create(&t[i], NULL, thread_quarters, &a[i]);
	}
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].failures, 0);
	}
	uint8_t *rd = xmalloc(MiB);
	assert_int_equal(block_pread(bd, rd, MiB, 0), 0);
	for (unsigned c = 0; c < 256; c++)
		for (unsigned q = 0; q < 4; q++)
			for (unsigned i = 0; i < 1024; i++)
				if (rd[c * 4096 + q * 1024 + i] != q * 60 + c % 60 + 1)
					fail_msg("cluster %u quarter %u lost: byte %u is %u", c, q, i, rd[c * 4096 + q * 1024 + i]);
	check_clean(bd);
	assert_int_equal(block_close(bd), 0);
	free(rd);
}

static void test_preallocate(void **state)
{
	struct block_create_opts o = { .size = 2 * MiB, .cluster_size = 65536,
				       .preallocate_metadata = true };
	struct blockdev *bd = create_open("p.qcow2", o);
	uint64_t pnum;
	unsigned st;
	assert_int_equal(block_status(bd, 0, 2 * MiB, &pnum, &st), 0);
	assert_int_equal(pnum, 2 * MiB);
	assert_true(st & BLOCK_STATUS_ALLOCATED);
	uint8_t b[4096];
	assert_int_equal(block_pread(bd, b, sizeof(b), MiB), 0);
	assert_zero(b, sizeof(b));
	check_clean(bd);
	assert_int_equal(block_close(bd), 0);
}

static void test_snapshots(void **state)
{
	char err[256];
	struct block_create_opts o = { .size = 2 * MiB, .cluster_size = 4096 };
	struct blockdev *bd = create_open("s.qcow2", o);
	uint8_t *v1 = xmalloc(2 * MiB), *v2 = xmalloc(2 * MiB), *rd = xmalloc(2 * MiB);
	fill(v1, 2 * MiB, 1);
	assert_int_equal(block_pwrite(bd, v1, MiB, 0), 0);
	memset(v1 + MiB, 0, MiB);
	assert_int_equal(block_snapshot_create(bd, "one", err, sizeof(err)), 0);
	assert_int_equal(block_snapshot_create(bd, "one", err, sizeof(err)), -EEXIST);
	check_clean(bd);
	memcpy(v2, v1, 2 * MiB);
	fill(v2 + 1000, 5000, 2);
	assert_int_equal(block_pwrite(bd, v2 + 1000, 5000, 1000), 0); /* COW */
	fill(v2 + MiB, 4096, 3);
	assert_int_equal(block_pwrite(bd, v2 + MiB, 4096, MiB), 0);
	assert_int_equal(block_discard(bd, 64 * KiB, 64 * KiB), 0);
	memset(v2 + 64 * KiB, 0, 64 * KiB);
	assert_int_equal(block_resize(bd, 3 * MiB), 0);
	check_clean(bd);
	assert_int_equal(block_snapshot_create(bd, "two", err, sizeof(err)), 0);
	struct block_snapshot *list;
	unsigned n;
	assert_int_equal(block_snapshot_list(bd, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "one");
	assert_string_equal(list[1].id, "2");
	assert_int_equal(list[0].disk_size, 2 * MiB);
	assert_int_equal(list[1].disk_size, 3 * MiB);
	free(list);

	assert_int_equal(block_snapshot_apply(bd, "one", err, sizeof(err)), 0);
	assert_int_equal(block_size(bd), 2 * MiB);
	assert_int_equal(block_pread(bd, rd, 2 * MiB, 0), 0);
	assert_memory_equal(rd, v1, 2 * MiB);
	check_clean(bd);
	assert_int_equal(block_snapshot_delete(bd, "1", err, sizeof(err)), 0); /* by id */
	check_clean(bd);
	assert_int_equal(block_snapshot_apply(bd, "two", err, sizeof(err)), 0);
	assert_int_equal(block_pread(bd, rd, 2 * MiB, 0), 0);
	assert_memory_equal(rd, v2, 2 * MiB);
	assert_int_equal(block_snapshot_apply(bd, "nope", err, sizeof(err)), -ENOENT);
	assert_int_equal(block_snapshot_delete(bd, "two", err, sizeof(err)), 0);
	check_clean(bd);
	bd = reopen(bd, "s.qcow2", 0);
	assert_int_equal(block_snapshot_list(bd, &list, &n), 0);
	assert_int_equal(n, 0);
	free(list);
	assert_int_equal(block_pread(bd, rd, 2 * MiB, 0), 0);
	assert_memory_equal(rd, v2, 2 * MiB);
	check_clean(bd);
	assert_int_equal(block_close(bd), 0);
	free(v1);
	free(v2);
	free(rd);
}

static void test_check_repair(void **state)
{
	struct block_create_opts o = { .size = MiB };
	struct blockdev *bd = create_open("k.qcow2", o);
	uint8_t b[4096];
	fill(b, sizeof(b), 1);
	assert_int_equal(block_pwrite(bd, b, sizeof(b), 0), 0); /* L2 at 4, data at 5 */
	assert_int_equal(block_close(bd), 0);
	uint8_t zero[2] = { 0, 0 }, one[2] = { 0, 1 };
	poke("k.qcow2", 2 * 65536 + 2 * 5, zero, 2);   /* data cluster: refcount 0 */
	poke("k.qcow2", 2 * 65536 + 2 * 9, one, 2);    /* cluster 9: leaked */
	char err[256];
	assert_int_equal(block_open(tmp_path("k.qcow2"), NULL, 0, &bd, err, sizeof(err)), 0);
	struct block_check_result r;
	assert_int_equal(block_check(bd, 0, &r), 0);
	assert_true(r.corruptions >= 1);
	assert_int_equal(r.leaks, 1);
	assert_non_null(strstr(r.first_problem, "0x50000"));
	assert_int_equal(block_check(bd, BLOCK_FIX_LEAKS, &r), 0);
	assert_int_equal(r.leaks_fixed, 1);
	assert_int_equal(r.corruptions_fixed, 0);
	assert_int_equal(block_check(bd, BLOCK_FIX_LEAKS | BLOCK_FIX_ERRORS, &r), 0);
	assert_true(r.corruptions_fixed >= 1);
	check_clean(bd);
	uint8_t rd[4096];
	assert_int_equal(block_pread(bd, rd, sizeof(rd), 0), 0);
	assert_memory_equal(rd, b, sizeof(b));
	assert_int_equal(block_close(bd), 0);

	/* a dirty image (lazy refcounts by another tool) is repaired on open */
	poke("k.qcow2", 2 * 65536 + 2 * 5, zero, 2);
	uint8_t dirty[8] = { 0, 0, 0, 0, 0, 0, 0, 1 };
	poke("k.qcow2", 72, dirty, 8);
	assert_int_equal(block_open(tmp_path("k.qcow2"), NULL, 0, &bd, err, sizeof(err)), 0);
	struct block_info info;
	block_get_info(bd, &info);
	assert_false(info.dirty);
	check_clean(bd);
	assert_int_equal(block_close(bd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rw_64k),
		cmocka_unit_test(test_rw_512),
		cmocka_unit_test(test_rw_2m),
		cmocka_unit_test(test_rw_v2),
		cmocka_unit_test(test_rw_refbits1),
		cmocka_unit_test(test_rw_refbits64),
		cmocka_unit_test(test_refcount_table_growth),
		cmocka_unit_test(test_backing_chain),
		cmocka_unit_test(test_backing_loop),
		cmocka_unit_test(test_zero_discard_status),
		cmocka_unit_test(test_resize),
		cmocka_unit_test(test_compressed_zlib),
		cmocka_unit_test(test_compressed_zstd),
		cmocka_unit_test(test_compressed_small),
		cmocka_unit_test(test_hostile_headers),
		cmocka_unit_test(test_corrupt_l2_entry),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_threads_same_clusters),
		cmocka_unit_test(test_preallocate),
		cmocka_unit_test(test_snapshots),
		cmocka_unit_test(test_check_repair),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
