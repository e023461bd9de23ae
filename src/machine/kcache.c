/* The cache of host-decompressed kernel payloads: see kcache.h. */
#include "machine/kcache.h"
#include "lib/log.h"
#include "lib/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define KCACHE_FILE_MAX (1ULL << 30) /* an entry larger than this is not ours */

/* The cache directory, created (0700) if needed; -1 when off or unusable. */
static int cache_dir(char *buf, size_t len)
{
	const char *d = getenv("XVM_CACHE_DIR");
	int n;
	if (d) {
		if (!*d || !strcmp(d, "off"))
			return -1;
		n = snprintf(buf, len, "%s", d);
	} else {
		const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
		if (x && x[0] == '/')
			n = snprintf(buf, len, "%s/xvm/kernels", x);
		else if (h && h[0] == '/')
			n = snprintf(buf, len, "%s/.cache/xvm/kernels", h);
		else
			return -1;
	}
	if (n <= 0 || (size_t)n >= len)
		return -1;
	/* mkdir -p */
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == 0) {
			char c = *p;
			*p = 0;
			int r = mkdir(buf, 0700);
			*p = c;
			if (r < 0 && errno != EEXIST)
				return -1;
			if (!c)
				break;
		}
	}
	struct stat st;
	if (stat(buf, &st) < 0 || !S_ISDIR(st.st_mode))
		return -1;
	return 0;
}

void kcache_key(struct kcache_key *k, const uint8_t *payload, size_t len)
{
	k->hex[0] = '\0';
	gchar *sum = g_compute_checksum_for_data(G_CHECKSUM_SHA256, payload, len);
	if (sum && strlen(sum) == 64)
		memcpy(k->hex, sum, 65);
	g_free(sum);
}

static int entry_path(char *buf, size_t len, const char *dir, const struct kcache_key *k)
{
	if (!k->hex[0])
		return -1;
	int n = snprintf(buf, len, "%s/%s.zst", dir, k->hex);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

int kcache_lookup(const struct kcache_key *k, size_t max_len, uint8_t **out, size_t *out_len)
{
	char dir[PATH_MAX], path[PATH_MAX + 80];
	*out = NULL;
	*out_len = 0;
	if (cache_dir(dir, sizeof(dir)) < 0 || entry_path(path, sizeof(path), dir, k) < 0)
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	const char *why = NULL;
	uint8_t *file = NULL, *raw = NULL;
	size_t n = 0;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    (unsigned long long)st.st_size > KCACHE_FILE_MAX) {
		why = "not a cache entry";
		goto bad;
	}
	n = (size_t)st.st_size;
	void *map = mmap(NULL, n, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	if (map == MAP_FAILED) {
		close(fd);
		return 0;
	}
	file = map;
	unsigned long long size = ZSTD_getFrameContentSize(file, n);
	if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size == 0 ||
	    size > max_len) {
		why = "bad frame header or size";
		goto bad;
	}
	raw = malloc(size);
	if (raw)
		advise_huge(raw, size);
	if (!raw) {
		close(fd);
		munmap(file, n);
		return 0;
	}
	size_t r = ZSTD_decompress(raw, size, file, n);
	if (ZSTD_isError(r) || r != size) {
		why = ZSTD_isError(r) ? ZSTD_getErrorName(r) : "short content";
		goto bad;
	}
	futimens(fd, NULL); /* most recently used */
	close(fd);
	munmap(file, n);
	*out = raw;
	*out_len = size;
	log_debug("boot: decompressed kernel from the cache (%s)", path);
	return 1;
bad:
	log_debug("boot: cache entry %s is damaged (%s); removed", path, why);
	unlink(path);
	close(fd);
	if (file)
		munmap(file, n);
	free(raw);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Storing, in the background */

struct store_job {
	char dir[PATH_MAX];
	char path[PATH_MAX + 80];
	uint8_t *raw;
	size_t raw_len;
};

static pthread_mutex_t store_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t store_thread;
static bool store_started, store_done, atexit_set;

static bool write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = write(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
	}
	return true;
}

static bool is_entry_name(const char *n)
{
	size_t len = strlen(n);
	if (len != 64 + 4 || strcmp(n + 64, ".zst"))
		return false;
	for (int k = 0; k < 64; k++)
		if (!((n[k] >= '0' && n[k] <= '9') || (n[k] >= 'a' && n[k] <= 'f')))
			return false;
	return true;
}

/* Keeps the KCACHE_MAX_ENTRIES most recently used entries; removes
 * temporary files that a killed writer left an hour or more ago. */
static void evict(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct { char name[72]; long long mtime; } ent[64]; /* ns */
	unsigned n = 0;
	time_t now = time(NULL);
	struct dirent *e;
	while ((e = readdir(d))) {
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (!strncmp(e->d_name, ".tmp-", 5)) {
			if (now - st.st_mtime > 3600)
				unlinkat(dirfd(d), e->d_name, 0);
			continue;
		}
		if (!is_entry_name(e->d_name))
			continue;
		long long mt = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
		if (n == sizeof(ent) / sizeof(ent[0])) {
			/* More than we track: drop this one if older than all. */
			unsigned old = 0;
			for (unsigned k = 1; k < n; k++)
				if (ent[k].mtime < ent[old].mtime)
					old = k;
			if (mt <= ent[old].mtime) {
				unlinkat(dirfd(d), e->d_name, 0);
				continue;
			}
			unlinkat(dirfd(d), ent[old].name, 0);
			ent[old] = ent[--n];
		}
		memcpy(ent[n].name, e->d_name, 69); /* 68 characters (is_entry_name) and NUL */
		ent[n].mtime = mt;
		n++;
	}
	while (n > KCACHE_MAX_ENTRIES) {
		unsigned old = 0;
		for (unsigned k = 1; k < n; k++)
			if (ent[k].mtime < ent[old].mtime)
				old = k;
		unlinkat(dirfd(d), ent[old].name, 0);
		ent[old] = ent[--n];
	}
	closedir(d);
}

static void *store_main(void *arg)
{
	struct store_job *j = arg;
	size_t bound = ZSTD_compressBound(j->raw_len);
	uint8_t *buf = malloc(bound);
	ZSTD_CCtx *cx = ZSTD_createCCtx();
	size_t n = 0;
	if (buf && cx) {
		ZSTD_CCtx_setParameter(cx, ZSTD_c_compressionLevel, 1);
		ZSTD_CCtx_setParameter(cx, ZSTD_c_checksumFlag, 1);
		ZSTD_CCtx_setParameter(cx, ZSTD_c_contentSizeFlag, 1);
		n = ZSTD_compress2(cx, buf, bound, j->raw, j->raw_len);
	}
	ZSTD_freeCCtx(cx);
	free(j->raw);
	if (buf && n && !ZSTD_isError(n)) {
		char tmp[PATH_MAX + 16];
		snprintf(tmp, sizeof(tmp), "%s/.tmp-XXXXXX", j->dir);
		int fd = mkstemp(tmp);
		if (fd >= 0) {
			bool ok = write_all(fd, buf, n);
			ok = close(fd) == 0 && ok;
			if (ok && rename(tmp, j->path) == 0)
				log_debug("boot: kernel cached as %s (%zu bytes)", j->path, n);
			else
				unlink(tmp);
		}
		evict(j->dir);
	}
	free(buf);
	free(j);
	__atomic_store_n(&store_done, true, __ATOMIC_RELEASE);
	return NULL;
}

void kcache_flush(void)
{
	pthread_mutex_lock(&store_lock);
	if (store_started) {
		pthread_join(store_thread, NULL);
		store_started = false;
	}
	pthread_mutex_unlock(&store_lock);
}

void kcache_store(const struct kcache_key *k, uint8_t *raw, size_t raw_len)
{
	struct store_job *j = calloc(1, sizeof(*j));
	if (!j || cache_dir(j->dir, sizeof(j->dir)) < 0 ||
	    entry_path(j->path, sizeof(j->path), j->dir, k) < 0 ||
	    access(j->path, F_OK) == 0) {
		free(j);
		free(raw);
		return;
	}
	j->raw = raw;
	j->raw_len = raw_len;
	pthread_mutex_lock(&store_lock);
	if (store_started && __atomic_load_n(&store_done, __ATOMIC_ACQUIRE)) {
		pthread_join(store_thread, NULL);
		store_started = false;
	}
	if (store_started) {
		/* One store at a time (this one will be a miss again). */
		pthread_mutex_unlock(&store_lock);
		free(j->raw);
		free(j);
		return;
	}
	store_done = false;
	if (pthread_create(&store_thread, NULL, store_main, j) != 0) {
		pthread_mutex_unlock(&store_lock);
		free(j->raw);
		free(j);
		return;
	}
	store_started = true;
	if (!atexit_set) {
		atexit(kcache_flush);
		atexit_set = true;
	}
	pthread_mutex_unlock(&store_lock);
}
