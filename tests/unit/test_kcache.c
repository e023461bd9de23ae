/* The cache of host-decompressed kernels: a miss, then a hit with the
 * same bytes after a store; a damaged entry is a miss and is removed; the
 * directory keeps the most recently used entries; XVM_CACHE_DIR=off turns
 * it off; the directory is created private. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "machine/kcache.h"

static char root[64], dir[128];

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/xvm-test-kcache-XXXXXX");
	assert_non_null(mkdtemp(root));
	snprintf(dir, sizeof(dir), "%s/a/b", root); /* does not exist yet */
	setenv("XVM_CACHE_DIR", dir, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	unsetenv("XVM_CACHE_DIR");
	return 0;
}

static unsigned count_entries(void)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	unsigned n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strlen(e->d_name) == 68)
			n++;
	closedir(d);
	return n;
}

static uint8_t *pattern(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n);
	for (size_t k = 0; k < n; k++)
		p[k] = (uint8_t)((k * 131 + seed * 7 + (k >> 9)) ^ (k >> 3));
	return p;
}

/* The cache name of a payload array (valid until the next call). */
static const struct kcache_key *key_of(const uint8_t *payload, size_t len)
{
	static struct kcache_key k;
	kcache_key(&k, payload, len);
	assert_int_equal(strlen(k.hex), 64);
	return &k;
}
#define KEY(p) key_of((p), sizeof(p))

static void test_miss_store_hit(void **state)
{
	(void)state;
	uint8_t payload[4096];
	for (unsigned k = 0; k < sizeof(payload); k++)
		payload[k] = (uint8_t)(k * 7);
	size_t n = 3 * 1024 * 1024 + 17;
	uint8_t *out = NULL;
	size_t out_len = 0;
	assert_int_equal(kcache_lookup(KEY(payload), n, &out, &out_len), 0);
	assert_null(out);

	kcache_store(KEY(payload), pattern(n, 1), n);
	kcache_flush();
	struct stat st;
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(count_entries(), 1);

	assert_int_equal(kcache_lookup(KEY(payload), n, &out, &out_len), 1);
	assert_int_equal(out_len, n);
	uint8_t *want = pattern(n, 1);
	assert_memory_equal(out, want, n);
	free(out);

	/* Another payload (one byte differs) is another kernel. */
	payload[100] ^= 1;
	assert_int_equal(kcache_lookup(KEY(payload), n, &out, &out_len), 0);
	payload[100] ^= 1;

	/* A size above what the caller allows is refused. */
	assert_int_equal(kcache_lookup(KEY(payload), n - 1, &out, &out_len), 0);
	assert_null(out);
	free(want);
}

static void test_damaged_entry(void **state)
{
	(void)state;
	uint8_t payload[64] = "a kernel payload";
	size_t n = 1 << 20;
	kcache_store(KEY(payload), pattern(n, 2), n);
	kcache_flush();
	assert_int_equal(count_entries(), 1);
	/* Flip a byte in the middle of the entry. */
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512] = "";
	while ((e = readdir(d)))
		if (strlen(e->d_name) == 68)
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
	closedir(d);
	FILE *f = fopen(path, "r+b");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fseek(f, size / 2, SEEK_SET);
	int c = fgetc(f);
	fseek(f, size / 2, SEEK_SET);
	fputc(c ^ 0x40, f);
	fclose(f);

	uint8_t *out = NULL;
	size_t out_len = 0;
	assert_int_equal(kcache_lookup(KEY(payload), n, &out, &out_len), 0);
	assert_null(out);
	assert_int_equal(count_entries(), 0); /* removed */
	/* A truncated entry too. */
	kcache_store(KEY(payload), pattern(n, 2), n);
	kcache_flush();
	assert_int_equal(truncate(path, 100), 0);
	assert_int_equal(kcache_lookup(KEY(payload), n, &out, &out_len), 0);
	assert_int_equal(count_entries(), 0);
}

static void test_eviction(void **state)
{
	(void)state;
	uint8_t payload[32];
	for (unsigned k = 0; k < KCACHE_MAX_ENTRIES + 3; k++) {
		memset(payload, (int)k, sizeof(payload));
		kcache_store(KEY(payload), pattern(4096, k), 4096);
		kcache_flush();
		usleep(2000); /* distinct modification times */
	}
	assert_int_equal(count_entries(), KCACHE_MAX_ENTRIES);
	uint8_t *out = NULL;
	size_t out_len = 0;
	/* The newest is kept, the oldest went. */
	memset(payload, KCACHE_MAX_ENTRIES + 2, sizeof(payload));
	assert_int_equal(kcache_lookup(KEY(payload), 4096, &out, &out_len), 1);
	free(out);
	memset(payload, 0, sizeof(payload));
	assert_int_equal(kcache_lookup(KEY(payload), 4096, &out, &out_len), 0);
}

static void test_off(void **state)
{
	(void)state;
	setenv("XVM_CACHE_DIR", "off", 1);
	uint8_t payload[16] = "x";
	kcache_store(KEY(payload), pattern(4096, 9), 4096);
	kcache_flush();
	uint8_t *out = NULL;
	size_t out_len = 0;
	assert_int_equal(kcache_lookup(KEY(payload), 4096, &out, &out_len), 0);
	struct stat st;
	assert_int_not_equal(stat(dir, &st), 0); /* nothing was created */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_miss_store_hit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_entry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eviction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_off, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
