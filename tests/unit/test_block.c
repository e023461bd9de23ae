/* Unit tests for the block layer dispatcher and the raw driver. */
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
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/xvm-test-block-XXXXXX");
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

static struct blockdev *create_raw(const char *name, uint64_t size)
{
	char err[256];
	struct block_create_opts o = { .format = "raw", .size = size };
	assert_int_equal(block_create(tmp_path(name), &o, err, sizeof(err)), 0);
	struct blockdev *bd;
	assert_int_equal(block_open(tmp_path(name), NULL, 0, &bd, err, sizeof(err)), 0);
	return bd;
}

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static void test_raw_create_rw(void **state)
{
	struct blockdev *bd = create_raw("a.raw", 4 * MiB);
	assert_int_equal(block_size(bd), 4 * MiB);
	assert_string_equal(block_format_name(bd), "raw");
	assert_false(block_readonly(bd));

	uint8_t *w = malloc(100000), *r = malloc(100000);
	fill(w, 100000, 1);
	assert_int_equal(block_pwrite(bd, w, 100000, 12345), 0);
	assert_int_equal(block_pread(bd, r, 100000, 12345), 0);
	assert_memory_equal(w, r, 100000);
	/* untouched parts read as zeros */
	assert_int_equal(block_pread(bd, r, 4096, 2 * MiB), 0);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(r[i], 0);
	/* out of range requests fail without touching the file */
	assert_int_equal(block_pread(bd, r, 2, 4 * MiB - 1), -EINVAL);
	assert_int_equal(block_pwrite(bd, w, 1, 4 * MiB), -EINVAL);
	assert_int_equal(block_pwrite(bd, w, 1, UINT64_MAX), -EINVAL);
	assert_int_equal(block_flush(bd), 0);
	assert_int_equal(block_close(bd), 0);

	struct stat st;
	assert_int_equal(stat(tmp_path("a.raw"), &st), 0);
	assert_int_equal(st.st_size, 4 * MiB);
	free(w);
	free(r);
}

static void test_raw_status_discard_zeroes(void **state)
{
	struct blockdev *bd = create_raw("s.raw", 8 * MiB);
	uint64_t pnum;
	unsigned st;
	assert_int_equal(block_status(bd, 0, 8 * MiB, &pnum, &st), 0);
	assert_int_equal(pnum, 8 * MiB);
	assert_true(st & BLOCK_STATUS_ZERO);
	assert_false(st & BLOCK_STATUS_DATA);

	uint8_t *w = malloc(MiB), *r = malloc(MiB);
	fill(w, MiB, 2);
	assert_int_equal(block_pwrite(bd, w, MiB, 2 * MiB), 0);
	assert_int_equal(block_status(bd, 0, 8 * MiB, &pnum, &st), 0);
	assert_int_equal(pnum, 2 * MiB);
	assert_int_equal(block_status(bd, 2 * MiB, 6 * MiB, &pnum, &st), 0);
	assert_true(st & BLOCK_STATUS_DATA);
	assert_int_equal(pnum, MiB);
	assert_int_equal(block_status(bd, 3 * MiB, 5 * MiB, &pnum, &st), 0);
	assert_false(st & BLOCK_STATUS_DATA);
	assert_int_equal(pnum, 5 * MiB);
	assert_int_equal(block_status(bd, 8 * MiB, 1, &pnum, &st), -EINVAL);

	/* discard punches a hole that reads back as zeros */
	assert_int_equal(block_discard(bd, 2 * MiB, 512 * KiB), 0);
	assert_int_equal(block_pread(bd, r, MiB, 2 * MiB), 0);
	for (size_t i = 0; i < 512 * KiB; i++)
		assert_int_equal(r[i], 0);
	assert_memory_equal(r + 512 * KiB, w + 512 * KiB, 512 * KiB);
	assert_int_equal(block_status(bd, 2 * MiB, MiB, &pnum, &st), 0);
	assert_false(st & BLOCK_STATUS_DATA);
	assert_int_equal(pnum, 512 * KiB);

	/* write-zeroes, with and without unmap */
	assert_int_equal(block_write_zeroes(bd, 2 * MiB + 512 * KiB, 4096, 0), 0);
	assert_int_equal(block_write_zeroes(bd, 2 * MiB + 600 * KiB, 100, BLOCK_ZERO_MAY_UNMAP), 0);
	assert_int_equal(block_pread(bd, r, MiB, 2 * MiB), 0);
	memset(w + 512 * KiB, 0, 4096);
	memset(w + 600 * KiB, 0, 100);
	memset(w, 0, 512 * KiB);
	assert_memory_equal(r, w, MiB);
	assert_int_equal(block_close(bd), 0);
	free(w);
	free(r);
}

static void test_raw_resize_readonly(void **state)
{
	struct blockdev *bd = create_raw("r.raw", MiB);
	assert_int_equal(block_resize(bd, 3 * MiB), 0);
	assert_int_equal(block_size(bd), 3 * MiB);
	uint8_t b = 0x5a;
	assert_int_equal(block_pwrite(bd, &b, 1, 3 * MiB - 1), 0);
	assert_int_equal(block_close(bd), 0);

	char err[256];
	assert_int_equal(block_open(tmp_path("r.raw"), "raw", BLOCK_OPEN_RDONLY, &bd, err,
				    sizeof(err)), 0);
	assert_true(block_readonly(bd));
	assert_int_equal(block_size(bd), 3 * MiB);
	b = 0;
	assert_int_equal(block_pread(bd, &b, 1, 3 * MiB - 1), 0);
	assert_int_equal(b, 0x5a);
	assert_int_equal(block_pwrite(bd, &b, 1, 0), -EROFS);
	assert_int_equal(block_discard(bd, 0, 512), -EROFS);
	assert_int_equal(block_resize(bd, MiB), -EROFS);
	struct block_info info;
	assert_int_equal(block_get_info(bd, &info), 0);
	assert_string_equal(info.format, "raw");
	assert_int_equal(info.virtual_size, 3 * MiB);
	assert_int_equal(info.cluster_size, 0);
	assert_int_equal(block_close(bd), 0);
}

static void test_open_errors(void **state)
{
	char err[256] = "";
	struct blockdev *bd;
	assert_int_equal(block_open(tmp_path("missing.img"), NULL, 0, &bd, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "missing.img"));
	assert_null(bd);
	assert_int_equal(block_open(tmp_path("x"), "vmdk", 0, &bd, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "vmdk"));
	struct block_create_opts o = { .format = "raw", .size = MiB, .backing = "base.img" };
	assert_int_equal(block_create(tmp_path("b.raw"), &o, err, sizeof(err)), -ENOTSUP);
	struct blockdev *raw = create_raw("c.raw", MiB);
	struct block_snapshot *list;
	unsigned n;
	assert_int_equal(block_snapshot_list(raw, &list, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(block_snapshot_create(raw, "s1", err, sizeof(err)), -ENOTSUP);
	assert_int_equal(block_pwrite_compressed(raw, err, 1, 0), -ENOTSUP);
	assert_null(block_backing(raw));
	assert_int_equal(block_close(raw), 0);
}

static void test_raw_direct(void **state)
{
	struct blockdev *bd = create_raw("d.raw", MiB);
	assert_int_equal(block_close(bd), 0);
	char err[256];
	assert_int_equal(block_open(tmp_path("d.raw"), "raw", BLOCK_OPEN_DIRECT, &bd, err,
				    sizeof(err)), 0);
	uint8_t *w = NULL, *r = NULL;
	assert_int_equal(posix_memalign((void **)&w, 4096, 8192), 0);
	assert_int_equal(posix_memalign((void **)&r, 4096, 8192), 0);
	fill(w, 8192, 3);
	assert_int_equal(block_pwrite(bd, w, 8192, 4096), 0);      /* aligned */
	assert_int_equal(block_pwrite(bd, w + 1, 100, 77), 0);      /* unaligned */
	assert_int_equal(block_pread(bd, r, 8192, 4096), 0);
	assert_memory_equal(r, w, 8192);
	assert_int_equal(block_pread(bd, r, 100, 77), 0);
	assert_memory_equal(r, w + 1, 100);
	assert_int_equal(block_close(bd), 0);
	free(w);
	free(r);
}

struct thread_arg { struct blockdev *bd; unsigned idx; int failures; };

static void *writer_thread(void *p)
{
	struct thread_arg *a = p;
	uint8_t buf[4096], rd[4096];
	for (unsigned i = 0; i < 64; i++) {
		uint64_t off = ((uint64_t)(i * 4 + a->idx)) * 4096;
		fill(buf, sizeof(buf), a->idx * 1000 + i);
		if (block_pwrite(a->bd, buf, sizeof(buf), off) < 0 ||
		    block_pread(a->bd, rd, sizeof(rd), off) < 0 || memcmp(buf, rd, sizeof(buf)))
			a->failures++;
	}
	return NULL;
}

static void test_raw_threads(void **state)
{
	struct blockdev *bd = create_raw("t.raw", MiB);
	pthread_t t[4];
	struct thread_arg a[4];
	for (unsigned i = 0; i < 4; i++) {
		a[i] = (struct thread_arg){ bd, i, 0 };
		pthread_create(&t[i], NULL, writer_thread, &a[i]);
	}
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].failures, 0);
	}
	assert_int_equal(block_close(bd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raw_create_rw),
		cmocka_unit_test(test_raw_status_discard_zeroes),
		cmocka_unit_test(test_raw_resize_readonly),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_raw_direct),
		cmocka_unit_test(test_raw_threads),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
