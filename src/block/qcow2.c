/* qcow2 driver: header parsing and validation, open/close, create, info,
 * backing-file management and resize. Data paths are in qcow2_io.c,
 * allocation in qcow2_refcount.c, snapshots and check in their own files. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/qcow2.h"
#include "lib/log.h"
#include "lib/util.h"

#define CORRUPT(...) block_err(err, errlen, -EINVAL, "image is corrupt: " __VA_ARGS__)

static __thread int backing_depth;

static bool qcow2_probe(const uint8_t *buf, size_t len)
{
	return len >= 4 && be32_get(buf) == QCOW2_MAGIC;
}

int qcow2_signal_corruption(struct qcow2 *s, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (!s->corrupt) {
		log_err("%s: image is corrupt: %s", s->bd->path, what);
		s->corrupt = true;
		if (!s->bd->readonly)
			qcow2_update_incompat(s, QCOW2_INCOMPAT_CORRUPT, 0);
	}
	return -EIO;
}

int qcow2_update_incompat(struct qcow2 *s, uint64_t set, uint64_t clear)
{
	if (s->version < 3)
		return 0;
	uint64_t v = (s->incompat | set) & ~clear;
	if (v == s->incompat)
		return 0;
	uint8_t b[8];
	be64_put(b, v);
	int ret = pwrite_full(s->fd, b, 8, 72);
	if (!ret)
		s->incompat = v;
	return ret;
}

int qcow2_write_l1_entries(struct qcow2 *s, uint64_t first, uint64_t n)
{
	uint8_t buf[4096];
	while (n) {
		uint64_t m = MIN(n, sizeof(buf) / 8);
		for (uint64_t i = 0; i < m; i++)
			be64_put(buf + 8 * i, s->l1[first + i]);
		int ret = pwrite_full(s->fd, buf, m * 8, s->l1_offset + first * 8);
		if (ret < 0)
			return ret;
		first += m;
		n -= m;
	}
	return 0;
}

/* ---- header (re)writing ---- */

static const struct { uint8_t type, bit; const char *name; } feature_names[] = {
	{ 0, 0, "dirty bit" },
	{ 0, 1, "corrupt bit" },
	{ 0, 2, "external data file" },
	{ 0, 3, "compression type" },
	{ 0, 4, "extended L2 entries" },
	{ 1, 0, "lazy refcounts" },
	{ 2, 0, "bitmaps" },
	{ 2, 1, "raw external data" },
};

static size_t put_ext(uint8_t *buf, size_t pos, size_t cap, uint32_t type, const void *data,
		      uint32_t len, bool *ok)
{
	size_t need = 8 + ALIGN_UP((size_t)len, 8);
	if (pos + need > cap) {
		*ok = false;
		return pos;
	}
	be32_put(buf + pos, type);
	be32_put(buf + pos + 4, len);
	memset(buf + pos + 8, 0, ALIGN_UP((size_t)len, 8));
	if (len)
		memcpy(buf + pos + 8, data, len);
	return pos + need;
}

/* Writes the header, its extensions and the backing file name: only the
 * bytes in use, so the write stays within the first page for small headers. */
int qcow2_write_header(struct qcow2 *s)
{
	size_t cap = s->cluster_size;
	uint8_t *buf = xcalloc(1, cap);
	be32_put(buf, QCOW2_MAGIC);
	be32_put(buf + 4, s->version);
	be32_put(buf + 20, s->cluster_bits);
	be64_put(buf + 24, bd_size(s->bd));
	be32_put(buf + 36, s->l1_size);
	be64_put(buf + 40, s->l1_offset);
	be64_put(buf + 48, s->rt_offset);
	be32_put(buf + 56, s->rt_clusters);
	be32_put(buf + 60, s->nb_snapshots);
	be64_put(buf + 64, s->snapshots_offset);
	size_t pos = 72;
	if (s->version >= 3) {
		be64_put(buf + 72, s->incompat);
		be64_put(buf + 80, s->compat);
		be64_put(buf + 88, s->autoclear);
		be32_put(buf + 96, s->refcount_order);
		s->header_length = MAX(s->header_length, 112);
		be32_put(buf + 100, s->header_length);
		buf[104] = s->compression_type;
		pos = s->header_length;
	}
	bool ok = true;
	size_t name_len = s->backing_file ? strlen(s->backing_file) : 0;
	if (s->backing_format && *s->backing_format)
		pos = put_ext(buf, pos, cap, QCOW2_EXT_BACKING_FORMAT, s->backing_format,
			      (uint32_t)strlen(s->backing_format), &ok);
	for (unsigned i = 0; i < s->n_exts; i++)
		pos = put_ext(buf, pos, cap, s->exts[i].type, s->exts[i].data, s->exts[i].len, &ok);
	/* The feature name table is a courtesy: only if it leaves room. */
	uint8_t table[ARRAY_SIZE(feature_names) * 48];
	memset(table, 0, sizeof(table));
	for (size_t i = 0; i < ARRAY_SIZE(feature_names); i++) {
		table[48 * i] = feature_names[i].type;
		table[48 * i + 1] = feature_names[i].bit;
		memcpy(table + 48 * i + 2, feature_names[i].name, strlen(feature_names[i].name));
	}
	if (s->version >= 3 && pos + 8 + sizeof(table) + 8 + name_len <= cap)
		pos = put_ext(buf, pos, cap, QCOW2_EXT_FEATURE_TABLE, table, sizeof(table), &ok);
	pos = put_ext(buf, pos, cap, QCOW2_EXT_END, NULL, 0, &ok);
	if (name_len) {
		if (pos + name_len > cap || name_len > QCOW2_MAX_BACKING_NAME)
			ok = false;
		else {
			memcpy(buf + pos, s->backing_file, name_len);
			be64_put(buf + 8, pos);
			be32_put(buf + 16, (uint32_t)name_len);
			pos += name_len;
		}
	}
	int ret = ok ? pwrite_full(s->fd, buf, pos, 0) : -ENOSPC;
	free(buf);
	return ret;
}

/* ---- open ---- */

static void free_state(struct qcow2 *s)
{
	qcow2_cache_free(&s->l2_cache);
	qcow2_cache_free(&s->rb_cache);
	free(s->l1);
	free(s->rt);
	qcow2_free_snapshots(s->snaps, s->nb_snapshots);
	free(s->backing_file);
	free(s->backing_format);
	for (unsigned i = 0; i < s->n_exts; i++)
		free(s->exts[i].data);
	free(s->exts);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->inflight_cond);
	free(s);
}

static const char *feature_name(const uint8_t *table, uint32_t n, unsigned type, unsigned bit,
				char *buf, size_t len)
{
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = table + 48 * i;
		if (e[0] == type && e[1] == bit) {
			snprintf(buf, len, "%.46s", (const char *)e + 2);
			return buf;
		}
	}
	snprintf(buf, len, "bit %u", bit);
	return buf;
}

/* Parses header extensions in [start, end) of the header cluster. */
static int parse_extensions(struct qcow2 *s, const uint8_t *h, size_t start, size_t end,
			    char *err, size_t errlen)
{
	size_t pos = start;
	const uint8_t *ftable = NULL;
	uint32_t fcount = 0;
	while (pos + 8 <= end) {
		uint32_t type = be32_get(h + pos), len = be32_get(h + pos + 4);
		pos += 8;
		if (type == QCOW2_EXT_END)
			break;
		if (len > end - pos)
			return CORRUPT("header extension 0x%08x overruns the header cluster", type);
		const uint8_t *data = h + pos;
		switch (type) {
		case QCOW2_EXT_BACKING_FORMAT:
			if (len > 63)
				return CORRUPT("backing format name too long");
			free(s->backing_format);
			s->backing_format = strndup((const char *)data, len);
			break;
		case QCOW2_EXT_FEATURE_TABLE:
			ftable = data;
			fcount = len / 48;
			break;
		case QCOW2_EXT_DATA_FILE:
			break; /* refused below through the incompatible bit */
		default:
			if (s->n_exts >= 64)
				return CORRUPT("too many header extensions");
			s->exts = xrealloc(s->exts, (s->n_exts + 1) * sizeof(*s->exts));
			s->exts[s->n_exts].type = type;
			s->exts[s->n_exts].len = len;
			s->exts[s->n_exts].data = xmalloc(len ? len : 1);
			memcpy(s->exts[s->n_exts].data, data, len);
			s->n_exts++;
		}
		pos += ALIGN_UP((size_t)len, 8);
	}
	char name[64];
	uint64_t unknown = s->incompat & ~QCOW2_INCOMPAT_KNOWN;
	if (s->incompat & QCOW2_INCOMPAT_DATA_FILE)
		return block_err(err, errlen, -ENOTSUP,
				 "images with an external data file are not supported");
	if (s->incompat & QCOW2_INCOMPAT_EXTL2)
		return block_err(err, errlen, -ENOTSUP,
				 "images with extended L2 entries (subclusters) are not supported");
	for (unsigned bit = 0; bit < 64; bit++)
		if (unknown & (1ULL << bit))
			return block_err(err, errlen, -ENOTSUP,
					 "unsupported incompatible feature: %s",
					 feature_name(ftable, fcount, 0, bit, name, sizeof(name)));
	return 0;
}

static int read_table(int fd, uint64_t off, uint64_t entries, uint64_t **out)
{
	size_t bytes = (size_t)entries * 8;
	uint8_t *raw = xmalloc(bytes ? bytes : 1);
	int ret = pread_full(fd, raw, bytes, off);
	if (ret < 0) {
		free(raw);
		return ret;
	}
	uint64_t *t = xmalloc(bytes ? bytes : 8);
	for (uint64_t i = 0; i < entries; i++)
		t[i] = be64_get(raw + 8 * i);
	free(raw);
	*out = t;
	return 0;
}

static int open_backing(struct blockdev *bd, struct qcow2 *s, char *err, size_t errlen)
{
	char path[PATH_MAX + 1];
	if (s->backing_file[0] == '/') {
		snprintf(path, sizeof(path), "%s", s->backing_file);
	} else {
		char *dup = xstrdup(bd->path);
		int n = snprintf(path, sizeof(path), "%s/%s", dirname(dup), s->backing_file);
		free(dup);
		if (n < 0 || (size_t)n >= sizeof(path))
			return block_err(err, errlen, -ENAMETOOLONG, "backing file path too long");
	}
	if (backing_depth >= QCOW2_MAX_BACKING_DEPTH)
		return block_err(err, errlen, -ELOOP,
				 "backing chain deeper than %d images (a loop?)",
				 QCOW2_MAX_BACKING_DEPTH);
	const char *fmt = s->backing_format && *s->backing_format ? s->backing_format : NULL;
	char why[512];
	backing_depth++;
	int ret = block_open(path, fmt, BLOCK_OPEN_RDONLY | (bd->flags & BLOCK_OPEN_DIRECT),
			     &bd->backing, why, sizeof(why));
	backing_depth--;
	if (ret < 0)
		return block_err(err, errlen, ret, "cannot open backing file: %s", why);
	return 0;
}

static int qcow2_open(struct blockdev *bd, char *err, size_t errlen)
{
	uint8_t h0[112];
	memset(h0, 0, sizeof(h0));
	struct stat st;
	if (fstat(bd->fd, &st) < 0)
		return -errno;
	int ret = pread_full(bd->fd, h0, sizeof(h0), 0);
	if (ret < 0)
		return ret;
	if (be32_get(h0) != QCOW2_MAGIC)
		return block_err(err, errlen, -EINVAL, "not a qcow2 image");
	unsigned version = be32_get(h0 + 4);
	if (version != 2 && version != 3)
		return block_err(err, errlen, -ENOTSUP, "unsupported qcow2 version %u", version);
	unsigned cluster_bits = be32_get(h0 + 20);
	if (cluster_bits < 9 || cluster_bits > 21)
		return CORRUPT("cluster_bits %u out of range 9..21", cluster_bits);
	if (be32_get(h0 + 32) != 0)
		return block_err(err, errlen, -ENOTSUP, "encrypted images are not supported");

	struct qcow2 *s = xcalloc(1, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->inflight_cond, NULL);
	s->bd = bd;
	s->fd = bd->fd;
	s->version = version;
	s->cluster_bits = cluster_bits;
	s->cluster_size = 1ULL << cluster_bits;
	s->l2_bits = cluster_bits - 3;
	s->l2_entries = 1ULL << s->l2_bits;
	s->csize_shift = 62 - (cluster_bits - 8);
	s->csize_mask = (1ULL << (cluster_bits - 8)) - 1;
	s->coffset_mask = (1ULL << s->csize_shift) - 1;
	uint64_t cs = s->cluster_size;
	uint8_t *h = xcalloc(1, cs);
	ret = pread_full(bd->fd, h, cs, 0);
	if (ret < 0)
		goto fail;

	uint64_t size = be64_get(h + 24);
	s->l1_size = be32_get(h + 36);
	s->l1_offset = be64_get(h + 40);
	s->rt_offset = be64_get(h + 48);
	s->rt_clusters = be32_get(h + 56);
	s->nb_snapshots = be32_get(h + 60);
	s->snapshots_offset = be64_get(h + 64);
	uint64_t backing_off = be64_get(h + 8);
	uint32_t backing_len = be32_get(h + 16);
	if (version == 2) {
		s->refcount_order = 4;
		s->header_length = 72;
	} else {
		s->incompat = be64_get(h + 72);
		s->compat = be64_get(h + 80);
		s->autoclear = be64_get(h + 88);
		s->refcount_order = be32_get(h + 96);
		s->header_length = be32_get(h + 100);
		ret = -EINVAL;
		if (s->header_length < 104 || s->header_length % 8 || s->header_length > cs) {
			CORRUPT("header length %u invalid", s->header_length);
			goto fail;
		}
		if (s->header_length > 104)
			s->compression_type = h[104];
	}
	ret = -EINVAL;
	if (s->refcount_order > 6) {
		CORRUPT("refcount order %u above 6", s->refcount_order);
		goto fail;
	}
	s->refcount_bits = 1U << s->refcount_order;
	s->refcount_max = s->refcount_bits == 64 ? UINT64_MAX : (1ULL << s->refcount_bits) - 1;
	s->rb_bits = cluster_bits + 3 - s->refcount_order;
	s->rb_entries = 1ULL << s->rb_bits;

	size_t ext_end = cs;
	if (backing_off) {
		if (backing_len > QCOW2_MAX_BACKING_NAME || backing_len == 0 ||
		    backing_off > cs || backing_len > cs - backing_off ||
		    backing_off < s->header_length) {
			CORRUPT("backing file name at 0x%llx (%u bytes) outside the header cluster",
				(unsigned long long)backing_off, backing_len);
			goto fail;
		}
		s->backing_file = strndup((const char *)h + backing_off, backing_len);
		if (strlen(s->backing_file) != backing_len) {
			CORRUPT("backing file name contains a NUL byte");
			goto fail;
		}
		ext_end = backing_off;
	}
	ret = parse_extensions(s, h, s->header_length, ext_end, err, errlen);
	if (ret < 0)
		goto fail;
	ret = -EINVAL;
	if ((s->incompat & QCOW2_INCOMPAT_COMPRESSION) ? s->compression_type == 0
						      : s->compression_type != 0) {
		CORRUPT("compression type %u does not match the feature bit", s->compression_type);
		goto fail;
	}
	if (s->compression_type > QCOW2_COMP_ZSTD) {
		ret = block_err(err, errlen, -ENOTSUP, "unsupported compression type %u",
				s->compression_type);
		goto fail;
	}

	/* Virtual size and L1 table. */
	uint64_t l2_cover = cs << s->l2_bits; /* bytes one L1 entry maps */
	if (size > (1ULL << 62)) {
		CORRUPT("virtual size %llu too large", (unsigned long long)size);
		goto fail;
	}
	uint64_t l1_needed = (size + l2_cover - 1) / l2_cover;
	if ((uint64_t)s->l1_size * 8 > QCOW2_MAX_L1_BYTES) {
		ret = block_err(err, errlen, -EFBIG, "L1 table of %u entries too large", s->l1_size);
		goto fail;
	}
	if (s->l1_size < l1_needed) {
		CORRUPT("L1 table (%u entries) too small for the virtual size", s->l1_size);
		goto fail;
	}
	if (s->l1_size && (qcow2_offset_in_cluster(s, s->l1_offset) ||
			   s->l1_offset >= QCOW2_MAX_HOST_OFFSET || s->l1_offset == 0)) {
		CORRUPT("L1 table offset 0x%llx invalid", (unsigned long long)s->l1_offset);
		goto fail;
	}
	if (s->rt_clusters == 0 || (uint64_t)s->rt_clusters * cs > QCOW2_MAX_RT_BYTES ||
	    qcow2_offset_in_cluster(s, s->rt_offset) || s->rt_offset == 0 ||
	    s->rt_offset >= QCOW2_MAX_HOST_OFFSET) {
		CORRUPT("refcount table (offset 0x%llx, %u clusters) invalid",
			(unsigned long long)s->rt_offset, s->rt_clusters);
		goto fail;
	}
	bd_set_size(bd, size);
	ret = read_table(bd->fd, s->l1_offset, s->l1_size, &s->l1);
	if (ret < 0)
		goto fail;
	s->rt_entries = (uint64_t)s->rt_clusters * cs / 8;
	ret = read_table(bd->fd, s->rt_offset, s->rt_entries, &s->rt);
	if (ret < 0)
		goto fail;
	for (uint64_t i = 0; i < s->rt_entries; i++) {
		uint64_t o = s->rt[i] & QCOW2_RTE_OFFSET_MASK;
		if (qcow2_offset_in_cluster(s, o) || (o && o >= QCOW2_MAX_HOST_OFFSET)) {
			ret = CORRUPT("refcount block %llu offset 0x%llx not cluster-aligned",
				      (unsigned long long)i, (unsigned long long)o);
			goto fail;
		}
	}
	for (uint32_t i = 0; i < s->l1_size; i++) {
		uint64_t o = s->l1[i] & QCOW2_L1E_OFFSET_MASK;
		if (qcow2_offset_in_cluster(s, o)) {
			ret = CORRUPT("L2 table %u offset 0x%llx not cluster-aligned", i,
				      (unsigned long long)o);
			goto fail;
		}
	}
	ret = qcow2_read_snapshots(s, err, errlen);
	if (ret < 0)
		goto fail;

	unsigned l2n = (unsigned)MIN(MAX(8 * MiB / cs, 4), 1024);
	unsigned rbn = (unsigned)MIN(MAX(2 * MiB / cs, 4), 256);
	ret = qcow2_cache_init(&s->l2_cache, l2n, cs);
	if (!ret)
		ret = qcow2_cache_init(&s->rb_cache, rbn, cs);
	if (ret < 0)
		goto fail;
	s->free_hint = 1;
	s->corrupt = s->incompat & QCOW2_INCOMPAT_CORRUPT;
	bd->priv = s;
	bd->alignment = 512;

	if (s->backing_file && !(bd->flags & BLOCK_OPEN_NO_BACKING)) {
		ret = open_backing(bd, s, err, errlen);
		if (ret < 0)
			goto fail_priv;
	}
	if (!bd->readonly) {
		/* Lazy refcounts are not implemented: a dirty image gets its
		 * refcounts rebuilt now, then the bit goes. */
		if (s->incompat & QCOW2_INCOMPAT_DIRTY && !s->corrupt) {
			struct block_check_result res;
			ret = qcow2_check_locked(s, BLOCK_FIX_LEAKS | BLOCK_FIX_ERRORS, &res);
			if (ret < 0 || res.corruptions > res.corruptions_fixed) {
				ret = block_err(err, errlen, ret < 0 ? ret : -EIO,
						"image is corrupt: dirty image could not be repaired");
				goto fail_priv;
			}
			qcow2_update_incompat(s, 0, QCOW2_INCOMPAT_DIRTY);
		}
		s->compat &= ~QCOW2_COMPAT_LAZY_REFCOUNTS;
		if (s->autoclear) {
			/* We keep no bitmaps up to date: say so, as the spec asks. */
			uint8_t z[8] = { 0 };
			s->autoclear = 0;
			ret = s->version >= 3 ? pwrite_full(s->fd, z, 8, 88) : 0;
			if (ret < 0)
				goto fail_priv;
		}
	}
	free(h);
	return 0;

fail_priv:
	if (bd->backing) {
		block_close(bd->backing);
		bd->backing = NULL;
	}
	bd->priv = NULL;
fail:
	free(h);
	free_state(s);
	return ret < 0 ? ret : -EINVAL;
}

static int qcow2_flush(struct blockdev *bd)
{
	return block_file_flush(bd->fd);
}

static int qcow2_close(struct blockdev *bd)
{
	struct qcow2 *s = bd->priv;
	int ret = bd->readonly ? 0 : block_file_flush(bd->fd);
	free_state(s);
	bd->priv = NULL;
	return ret;
}

static int qcow2_get_info(struct blockdev *bd, struct block_info *info)
{
	struct qcow2 *s = bd->priv;
	pthread_mutex_lock(&s->lock);
	info->cluster_size = (uint32_t)s->cluster_size;
	info->qcow2_version = s->version;
	info->refcount_bits = s->refcount_bits;
	snprintf(info->backing, sizeof(info->backing), "%s", s->backing_file ? s->backing_file : "");
	snprintf(info->backing_format, sizeof(info->backing_format), "%s",
		 s->backing_format ? s->backing_format : "");
	snprintf(info->compression, sizeof(info->compression), "%s",
		 s->compression_type == QCOW2_COMP_ZSTD ? "zstd" : "zlib");
	info->dirty = s->incompat & QCOW2_INCOMPAT_DIRTY;
	info->corrupt = s->corrupt;
	info->n_snapshots = s->nb_snapshots;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int qcow2_set_backing(struct blockdev *bd, const char *backing, const char *backing_format,
			     char *err, size_t errlen)
{
	struct qcow2 *s = bd->priv;
	if (backing && strlen(backing) > QCOW2_MAX_BACKING_NAME)
		return block_err(err, errlen, -ENAMETOOLONG, "backing file name too long");
	if (backing_format && strlen(backing_format) > 15)
		return block_err(err, errlen, -EINVAL, "backing format name too long");
	pthread_mutex_lock(&s->lock);
	char *old_file = s->backing_file, *old_fmt = s->backing_format;
	s->backing_file = backing && *backing ? xstrdup(backing) : NULL;
	s->backing_format = backing && *backing && backing_format && *backing_format
				    ? xstrdup(backing_format) : NULL;
	int ret = qcow2_write_header(s);
	if (ret < 0) {
		free(s->backing_file);
		free(s->backing_format);
		s->backing_file = old_file;
		s->backing_format = old_fmt;
		pthread_mutex_unlock(&s->lock);
		return block_err(err, errlen, ret, "cannot rewrite the header: %s",
				 ret == -ENOSPC ? "no room in the header cluster" : strerror(-ret));
	}
	free(old_file);
	free(old_fmt);
	ret = block_file_flush(s->fd);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Points the image at a bigger L1 table (copy, switch header, free old). */
int qcow2_grow_l1(struct qcow2 *s, uint64_t new_entries)
{
	uint64_t cs = s->cluster_size;
	if (new_entries * 8 > QCOW2_MAX_L1_BYTES)
		return -EFBIG;
	uint64_t clusters = (new_entries * 8 + cs - 1) / cs;
	uint64_t off, got;
	int ret = qcow2_alloc_clusters(s, clusters, true, &off, &got);
	if (ret < 0)
		return ret;
	uint64_t *l1 = xcalloc(new_entries, 8);
	memcpy(l1, s->l1, (size_t)s->l1_size * 8);
	uint8_t *raw = xcalloc(clusters, cs);
	for (uint64_t i = 0; i < new_entries; i++)
		be64_put(raw + 8 * i, l1[i]);
	ret = pwrite_full(s->fd, raw, clusters * cs, off);
	free(raw);
	if (!ret)
		ret = block_file_flush(s->fd);
	uint8_t hdr[12];
	be32_put(hdr, (uint32_t)new_entries);
	be64_put(hdr + 4, off);
	if (!ret)
		ret = pwrite_full(s->fd, hdr, sizeof(hdr), 36);
	if (!ret)
		ret = block_file_flush(s->fd);
	if (ret < 0) {
		free(l1);
		return ret;
	}
	uint64_t old_off = s->l1_offset, old_bytes = (uint64_t)s->l1_size * 8;
	free(s->l1);
	s->l1 = l1;
	s->l1_size = (uint32_t)new_entries;
	s->l1_offset = off;
	if (old_bytes && old_off)
		return qcow2_update_refcount(s, old_off, old_bytes, -1);
	return 0;
}

static int qcow2_resize(struct blockdev *bd, uint64_t new_size)
{
	struct qcow2 *s = bd->priv;
	uint64_t l2_cover = s->cluster_size << s->l2_bits;
	if (new_size > (1ULL << 62))
		return -EFBIG;
	pthread_mutex_lock(&s->lock);
	qcow2_wait_inflight(s, 0, UINT64_MAX);
	int ret = 0;
	uint64_t old = bd_size(bd);
	if (s->corrupt) {
		ret = -EIO;
		goto out;
	}
	uint64_t need = (new_size + l2_cover - 1) / l2_cover;
	if (need > s->l1_size) {
		ret = qcow2_grow_l1(s, need);
		if (ret < 0)
			goto out;
	}
	if (new_size < old) {
		uint64_t from = ALIGN_UP(new_size, s->cluster_size);
		if (from < old) {
			ret = qcow2_deallocate_range(s, from, ALIGN_UP(old, s->cluster_size) - from);
			if (ret < 0)
				goto out;
		}
	}
	uint8_t b[8];
	be64_put(b, new_size);
	ret = pwrite_full(s->fd, b, 8, 24);
	if (!ret)
		ret = block_file_flush(s->fd);
	if (!ret)
		bd_set_size(bd, new_size);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* ---- create ---- */

static int create_fail(int fd, const char *path, int ret, char *err, size_t errlen)
{
	if (fd >= 0)
		close(fd);
	return block_err(err, errlen, ret, "cannot create '%s': %s", path, strerror(-ret));
}

static int qcow2_create(const char *path, const struct block_create_opts *o, char *err,
			size_t errlen)
{
	uint64_t cs = o->cluster_size ? o->cluster_size : 64 * KiB;
	unsigned refbits = o->refcount_bits ? o->refcount_bits : 16;
	if (!IS_POW2(cs) || cs < 512 || cs > 2 * MiB)
		return block_err(err, errlen, -EINVAL,
				 "cluster size must be a power of two between 512 and 2M");
	if (!IS_POW2(refbits) || refbits > 64)
		return block_err(err, errlen, -EINVAL,
				 "refcount bits must be a power of two up to 64");
	if (o->compat_v2 && refbits != 16)
		return block_err(err, errlen, -EINVAL, "version 2 images need 16-bit refcounts");
	uint8_t ctype = QCOW2_COMP_ZLIB;
	if (o->compression && *o->compression && strcmp(o->compression, "zlib")) {
		if (strcmp(o->compression, "zstd"))
			return block_err(err, errlen, -EINVAL, "unknown compression type '%s'",
					 o->compression);
		if (o->compat_v2)
			return block_err(err, errlen, -EINVAL, "zstd needs a version 3 image");
		ctype = QCOW2_COMP_ZSTD;
	}
	uint64_t size = o->size;
	bool has_backing = o->backing && *o->backing;
	if (has_backing) {
		/* The backing file must open; it also gives the default size. */
		char bpath[PATH_MAX + 1], why[512];
		if (o->backing[0] == '/') {
			snprintf(bpath, sizeof(bpath), "%s", o->backing);
		} else {
			char *dup = xstrdup(path);
			snprintf(bpath, sizeof(bpath), "%s/%s", dirname(dup), o->backing);
			free(dup);
		}
		struct blockdev *b;
		int ret = block_open(bpath, o->backing_format, BLOCK_OPEN_RDONLY, &b, why, sizeof(why));
		if (ret < 0)
			return block_err(err, errlen, ret, "cannot open backing file: %s", why);
		if (!size)
			size = block_size(b);
		block_close(b);
	}
	if (o->backing_format && *o->backing_format && strlen(o->backing_format) > 15)
		return block_err(err, errlen, -EINVAL, "backing format name too long");
	unsigned cluster_bits = (unsigned)__builtin_ctzll(cs);
	uint64_t l2_cover = cs * (cs / 8);
	uint64_t l1_size = (size + l2_cover - 1) / l2_cover;
	if (size > (1ULL << 62) || l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return block_err(err, errlen, -EFBIG, "size too large for cluster size %llu",
				 (unsigned long long)cs);
	uint64_t E = cs * 8 / refbits;
	uint64_t L = (l1_size * 8 + cs - 1) / cs;
	uint64_t T = 1, K = 1;
	for (;;) { /* header + table + blocks + L1 counted by the blocks */
		uint64_t total = 1 + T + K + L;
		uint64_t k2 = (total + E - 1) / E, t2 = (k2 * 8 + cs - 1) / cs;
		if (k2 == K && t2 == T)
			break;
		K = k2;
		T = t2;
	}
	uint64_t total = 1 + T + K + L;

	struct blockdev fake = { .path = (char *)path, .size = size };
	struct qcow2 s = { 0 };
	s.bd = &fake;
	s.version = o->compat_v2 ? 2 : 3;
	s.cluster_bits = cluster_bits;
	s.cluster_size = cs;
	s.refcount_order = (unsigned)__builtin_ctz(refbits);
	s.refcount_bits = refbits;
	s.compression_type = ctype;
	s.incompat = ctype ? QCOW2_INCOMPAT_COMPRESSION : 0;
	s.header_length = s.version >= 3 ? 112 : 72;
	s.l1_size = (uint32_t)l1_size;
	s.l1_offset = l1_size ? (1 + T + K) * cs : 0;
	s.rt_offset = cs;
	s.rt_clusters = (uint32_t)T;
	s.backing_file = has_backing ? (char *)o->backing : NULL;
	s.backing_format = has_backing ? (char *)o->backing_format : NULL;
	if (!l1_size)
		total = 1 + T + K;

	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return create_fail(-1, path, -errno, err, errlen);
	s.fd = fd;
	int ret = ftruncate(fd, (off_t)(total * cs)) < 0 ? -errno : 0;
	if (!ret)
		ret = qcow2_write_header(&s);
	if (ret == -ENOSPC) {
		close(fd);
		return block_err(err, errlen, -EINVAL,
				 "backing file name does not fit in a %llu-byte header cluster",
				 (unsigned long long)cs);
	}
	uint8_t *buf = xcalloc(T + K, cs);
	for (uint64_t i = 0; i < K; i++)
		be64_put(buf + 8 * i, (1 + T + i) * cs);
	for (uint64_t c = 0; c < total; c++)
		qcow2_refcount_set_entry(&s, buf + (T + c / E) * cs, c % E, 1);
	if (!ret)
		ret = pwrite_full(fd, buf, (T + K) * cs, cs);
	free(buf);
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	if (ret < 0)
		return create_fail(fd, path, ret, err, errlen);
	close(fd);

	if (o->preallocate_metadata) {
		struct blockdev *bd;
		char why[512];
		ret = block_open(path, "qcow2", BLOCK_OPEN_NO_BACKING, &bd, why, sizeof(why));
		if (ret < 0)
			return block_err(err, errlen, ret, "%s", why);
		ret = qcow2_preallocate(bd);
		int r2 = block_close(bd);
		if (ret < 0 || r2 < 0)
			return block_err(err, errlen, ret < 0 ? ret : r2,
					 "cannot preallocate metadata: %s",
					 strerror(-(ret < 0 ? ret : r2)));
	}
	return 0;
}

const struct block_driver block_driver_qcow2 = {
	.name = "qcow2",
	.probe = qcow2_probe,
	.open = qcow2_open,
	.close = qcow2_close,
	.pread = qcow2_pread,
	.pwrite = qcow2_pwrite,
	.flush = qcow2_flush,
	.discard = qcow2_discard,
	.write_zeroes = qcow2_write_zeroes,
	.status = qcow2_status,
	.resize = qcow2_resize,
	.map = qcow2_map,
	.create = qcow2_create,
	.get_info = qcow2_get_info,
	.set_backing = qcow2_set_backing,
	.pwrite_compressed = qcow2_pwrite_compressed,
	.snapshot_list = qcow2_snapshot_list,
	.snapshot_create = qcow2_snapshot_create,
	.snapshot_apply = qcow2_snapshot_apply,
	.snapshot_delete = qcow2_snapshot_delete,
	.check = qcow2_check,
};
