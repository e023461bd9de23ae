/* qcow2 data paths: read, write (in place or allocating, with copy-on-write
 * of shared and compressed clusters), zeroing, discard, block status and
 * compressed writes.
 *
 * Requests are split into runs of L2 entries that share one treatment, so
 * a large sequential request costs one syscall per run, not per cluster:
 * host-contiguous allocated clusters are read or written in one go, and
 * an allocating write gets one contiguous host run, one pwritev for its
 * data and one write for its L2 entries. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "block/qcow2.h"
#include "lib/log.h"
#include "lib/util.h"

enum { C_UNALLOC, C_ZERO, C_DATA, C_COMPRESSED };

static int entry_type(struct qcow2 *s, uint64_t e)
{
	if (e & QCOW2_OFLAG_COMPRESSED)
		return C_COMPRESSED;
	if (s->version >= 3 && (e & QCOW2_OFLAG_ZERO))
		return C_ZERO;
	if (!(e & QCOW2_L2E_OFFSET_MASK))
		return C_UNALLOC;
	return C_DATA;
}

static bool in_place(uint64_t e, int type)
{
	return type == C_DATA && (e & QCOW2_OFLAG_COPIED);
}

void qcow2_compressed_range(struct qcow2 *s, uint64_t e, uint64_t *coff, uint64_t *clen)
{
	uint64_t off = e & s->coffset_mask;
	uint64_t sectors = ((e >> s->csize_shift) & s->csize_mask) + 1;
	*coff = off;
	*clen = sectors * 512 - (off & 511);
}

/* Loads the L2 table for l1_index; *table NULL when there is none. */
static int get_l2(struct qcow2 *s, uint64_t l1_index, uint8_t **table, uint64_t *l2_off)
{
	*table = NULL;
	*l2_off = 0;
	if (l1_index >= s->l1_size)
		return 0;
	uint64_t o = s->l1[l1_index] & QCOW2_L1E_OFFSET_MASK;
	if (!o)
		return 0;
	if (qcow2_offset_in_cluster(s, o))
		return qcow2_signal_corruption(s, "L2 table offset 0x%llx unaligned",
					       (unsigned long long)o);
	*l2_off = o;
	return qcow2_cache_get(s, &s->l2_cache, o, false, table);
}

struct run {
	int type;
	uint64_t host;   /* DATA: host offset of the first byte */
	uint64_t bytes;
	uint64_t l2e;    /* COMPRESSED: the entry */
};

/* Maps the guest range [off, off+len) to its first run of one type.
 * Called with the lock held. */
static int map_run(struct qcow2 *s, uint64_t off, uint64_t len, struct run *r)
{
	uint64_t cs = s->cluster_size;
	uint64_t in_off = off & (cs - 1);
	uint64_t l1_index = off >> (s->cluster_bits + s->l2_bits);
	uint64_t idx = (off >> s->cluster_bits) & (s->l2_entries - 1);
	uint64_t max_clusters = s->l2_entries - idx;
	uint8_t *t;
	uint64_t l2_off;
	int ret = get_l2(s, l1_index, &t, &l2_off);
	if (ret < 0)
		return ret;
	uint64_t n = 1;
	memset(r, 0, sizeof(*r));
	if (!t) {
		r->type = C_UNALLOC;
		n = max_clusters;
	} else {
		uint64_t e = be64_get(t + 8 * idx);
		r->type = entry_type(s, e);
		uint64_t want = MIN(max_clusters, (in_off + len + cs - 1) >> s->cluster_bits);
		switch (r->type) {
		case C_COMPRESSED:
			r->l2e = e;
			break;
		case C_DATA: {
			uint64_t h = e & QCOW2_L2E_OFFSET_MASK;
			if (qcow2_offset_in_cluster(s, h))
				return qcow2_signal_corruption(
					s, "data cluster offset 0x%llx unaligned (guest 0x%llx)",
					(unsigned long long)h, (unsigned long long)off);
			r->host = h + in_off;
			while (n < want) {
				uint64_t e2 = be64_get(t + 8 * (idx + n));
				if (entry_type(s, e2) != C_DATA ||
				    (e2 & QCOW2_L2E_OFFSET_MASK) != h + n * cs)
					break;
				n++;
			}
			break;
		}
		default:
			while (n < want && entry_type(s, be64_get(t + 8 * (idx + n))) == r->type)
				n++;
		}
	}
	r->bytes = MIN(len, n * cs - in_off);
	return 0;
}

/* ---- compression (per-thread contexts) ---- */

struct codec_ctx {
	z_stream inf, def;
	bool inf_ok, def_ok;
	ZSTD_DCtx *zd;
	ZSTD_CCtx *zc;
};

static pthread_key_t codec_key;
static pthread_once_t codec_once = PTHREAD_ONCE_INIT;

static void codec_free(void *p)
{
	struct codec_ctx *c = p;
	if (c->inf_ok)
		inflateEnd(&c->inf);
	if (c->def_ok)
		deflateEnd(&c->def);
	ZSTD_freeDCtx(c->zd);
	ZSTD_freeCCtx(c->zc);
	free(c);
}

static void codec_key_init(void)
{
	pthread_key_create(&codec_key, codec_free);
}

static struct codec_ctx *codec(void)
{
	pthread_once(&codec_once, codec_key_init);
	struct codec_ctx *c = pthread_getspecific(codec_key);
	if (!c) {
		c = xcalloc(1, sizeof(*c));
		pthread_setspecific(codec_key, c);
	}
	return c;
}

/* Inflates exactly out_len bytes; anything else means a corrupt cluster. */
static int decompress(struct qcow2 *s, const uint8_t *in, size_t in_len, uint8_t *out,
		      size_t out_len)
{
	struct codec_ctx *c = codec();
	if (s->compression_type == QCOW2_COMP_ZSTD) {
		if (!c->zd && !(c->zd = ZSTD_createDCtx()))
			return -ENOMEM;
		ZSTD_DCtx_reset(c->zd, ZSTD_reset_session_only);
		ZSTD_inBuffer ib = { in, in_len, 0 };
		ZSTD_outBuffer ob = { out, out_len, 0 };
		while (ob.pos < ob.size) {
			size_t r = ZSTD_decompressStream(c->zd, &ob, &ib);
			if (ZSTD_isError(r))
				return -EIO;
			if (r == 0 || ib.pos == ib.size)
				break;
		}
		return ob.pos == ob.size ? 0 : -EIO;
	}
	if (!c->inf_ok) {
		if (inflateInit2(&c->inf, -15) != Z_OK)
			return -ENOMEM;
		c->inf_ok = true;
	} else {
		inflateReset(&c->inf);
	}
	c->inf.next_in = (Bytef *)in;
	c->inf.avail_in = (uInt)in_len;
	c->inf.next_out = out;
	c->inf.avail_out = (uInt)out_len;
	int r = inflate(&c->inf, Z_FINISH);
	if ((r != Z_STREAM_END && r != Z_BUF_ERROR && r != Z_OK) || c->inf.avail_out != 0)
		return -EIO;
	return 0;
}

/* Compresses one cluster; returns the length, or 0 if it does not shrink. */
static size_t compress_cluster(struct qcow2 *s, const uint8_t *in, size_t len, uint8_t *out)
{
	struct codec_ctx *c = codec();
	size_t cap = len - 1;
	if (s->compression_type == QCOW2_COMP_ZSTD) {
		if (!c->zc && !(c->zc = ZSTD_createCCtx()))
			return 0;
		size_t r = ZSTD_compressCCtx(c->zc, out, cap, in, len, 3);
		return ZSTD_isError(r) ? 0 : r;
	}
	if (!c->def_ok) {
		if (deflateInit2(&c->def, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			return 0;
		c->def_ok = true;
	} else {
		deflateReset(&c->def);
	}
	c->def.next_in = (Bytef *)in;
	c->def.avail_in = (uInt)len;
	c->def.next_out = out;
	c->def.avail_out = (uInt)cap;
	if (deflate(&c->def, Z_FINISH) != Z_STREAM_END)
		return 0;
	return cap - c->def.avail_out;
}

static int read_compressed(struct qcow2 *s, uint64_t l2e, uint8_t *cluster)
{
	uint64_t coff, clen;
	qcow2_compressed_range(s, l2e, &coff, &clen);
	uint8_t *in = xmalloc(clen);
	int ret = pread_full(s->fd, in, clen, coff);
	if (!ret)
		ret = decompress(s, in, clen, cluster, s->cluster_size);
	free(in);
	if (ret == -EIO)
		log_once(LOG_ERROR, "%s: image is corrupt: compressed cluster at 0x%llx does not "
			 "decompress", s->bd->path, (unsigned long long)coff);
	return ret;
}

static int read_backing(struct blockdev *bd, uint8_t *buf, uint64_t len, uint64_t off)
{
	uint64_t n = 0;
	if (bd->backing) {
		uint64_t bsize = block_size(bd->backing);
		if (off < bsize) {
			n = MIN(len, bsize - off);
			int ret = block_pread(bd->backing, buf, n, off);
			if (ret < 0)
				return ret;
		}
	}
	memset(buf + n, 0, len - n);
	return 0;
}

int qcow2_pread(struct blockdev *bd, void *buf, uint64_t len, uint64_t off)
{
	struct qcow2 *s = bd->priv;
	uint8_t *p = buf, *cluster = NULL;
	int ret = 0;
	while (len) {
		struct run r;
		pthread_mutex_lock(&s->lock);
		ret = map_run(s, off, len, &r);
		pthread_mutex_unlock(&s->lock);
		if (ret < 0)
			break;
		switch (r.type) {
		case C_UNALLOC:
			ret = read_backing(bd, p, r.bytes, off);
			break;
		case C_ZERO:
			memset(p, 0, r.bytes);
			break;
		case C_DATA:
			ret = pread_full(s->fd, p, r.bytes, r.host);
			break;
		case C_COMPRESSED:
			if (!cluster)
				cluster = xmalloc(s->cluster_size);
			ret = read_compressed(s, r.l2e, cluster);
			if (!ret)
				memcpy(p, cluster + (off & (s->cluster_size - 1)), r.bytes);
			break;
		}
		if (ret < 0)
			break;
		p += r.bytes;
		off += r.bytes;
		len -= r.bytes;
	}
	free(cluster);
	return ret;
}

/* ---- writing ---- */

/* Returns the offset of a writable (refcount 1, COPIED) L2 table for
 * l1_index, allocating a new one or copying a shared one. */
static int l2_for_write(struct qcow2 *s, uint64_t l1_index, uint64_t *l2_off)
{
	if (l1_index >= s->l1_size)
		return -EIO;
	uint64_t e = s->l1[l1_index], old = e & QCOW2_L1E_OFFSET_MASK;
	if (old && (e & QCOW2_OFLAG_COPIED)) {
		if (qcow2_offset_in_cluster(s, old))
			return qcow2_signal_corruption(s, "L2 table offset 0x%llx unaligned",
						       (unsigned long long)old);
		*l2_off = old;
		return 0;
	}
	uint64_t cs = s->cluster_size, noff, got;
	uint8_t *copy = NULL, *t;
	int ret;
	if (old) {
		if (qcow2_offset_in_cluster(s, old))
			return qcow2_signal_corruption(s, "L2 table offset 0x%llx unaligned",
						       (unsigned long long)old);
		ret = qcow2_cache_get(s, &s->l2_cache, old, false, &t);
		if (ret < 0)
			return ret;
		copy = xmalloc(cs);
		memcpy(copy, t, cs);
	}
	ret = qcow2_alloc_clusters(s, 1, true, &noff, &got);
	if (ret < 0) {
		free(copy);
		return ret;
	}
	ret = qcow2_cache_get(s, &s->l2_cache, noff, true, &t);
	if (ret < 0) {
		free(copy);
		return ret;
	}
	if (copy)
		memcpy(t, copy, cs);
	free(copy);
	ret = pwrite_full(s->fd, t, cs, noff);
	if (ret < 0) {
		qcow2_cache_forget(&s->l2_cache, noff);
		return ret;
	}
	s->l1[l1_index] = noff | QCOW2_OFLAG_COPIED;
	ret = qcow2_write_l1_entries(s, l1_index, 1);
	if (ret < 0)
		return ret;
	if (old) {
		ret = qcow2_update_refcount(s, old, cs, -1);
		if (ret < 0)
			return ret;
	}
	*l2_off = noff;
	return 0;
}

/* Drops the reference an L2 entry held. */
static int free_entry(struct qcow2 *s, uint64_t e)
{
	switch (entry_type(s, e)) {
	case C_COMPRESSED: {
		uint64_t coff, clen;
		qcow2_compressed_range(s, e, &coff, &clen);
		return qcow2_update_refcount(s, coff, clen, -1);
	}
	case C_DATA:
	case C_ZERO:
		if (e & QCOW2_L2E_OFFSET_MASK)
			return qcow2_update_refcount(s, e & QCOW2_L2E_OFFSET_MASK, s->cluster_size, -1);
		return 0;
	default:
		return 0;
	}
}

/* Drops the references of n old entries (0 = none), one refcount update
 * per host-contiguous run of standard clusters. */
static int free_entries(struct qcow2 *s, const uint64_t *old, uint64_t n)
{
	uint64_t cs = s->cluster_size, run = 0, len = 0;
	int ret = 0;
	for (uint64_t i = 0; i < n && !ret; i++) {
		uint64_t e = old[i], h = e & QCOW2_L2E_OFFSET_MASK;
		if (!e)
			continue;
		if ((e & QCOW2_OFLAG_COMPRESSED) || !h) {
			ret = free_entry(s, e);
			continue;
		}
		if (len && h == run + len) {
			len += cs;
			continue;
		}
		if (len)
			ret = qcow2_update_refcount(s, run, len, -1);
		run = h;
		len = cs;
	}
	if (!ret && len)
		ret = qcow2_update_refcount(s, run, len, -1);
	return ret;
}

/* The current content of one guest cluster, for merging a partial write. */
static int old_cluster(struct qcow2 *s, uint64_t e, uint64_t guest_off, uint8_t *dst)
{
	switch (entry_type(s, e)) {
	case C_UNALLOC:
		return read_backing(s->bd, dst, s->cluster_size, guest_off);
	case C_ZERO:
		memset(dst, 0, s->cluster_size);
		return 0;
	case C_COMPRESSED:
		return read_compressed(s, e, dst);
	default:
		return pread_full(s->fd, dst, s->cluster_size, e & QCOW2_L2E_OFFSET_MASK);
	}
}

static int pwritev_full(int fd, struct iovec *iov, int n, uint64_t off)
{
	while (n > 0) {
		ssize_t w = pwritev(fd, iov, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += (uint64_t)w;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Writes the L2 entries [idx, idx+n) of a cached table through to disk. */
static int write_l2_entries(struct qcow2 *s, uint64_t l2_off, uint8_t *t, uint64_t idx, uint64_t n)
{
	return pwrite_full(s->fd, t + 8 * idx, 8 * n, l2_off + 8 * idx);
}

/* ---- in-flight allocating writes ----
 * An allocating write drops the lock while its data goes to disk. The
 * guest clusters it will remap are registered here; anything else that
 * would change their L2 entries waits until the write has published them. */

static bool inflight_overlaps(struct qcow2 *s, uint64_t start, uint64_t end)
{
	for (unsigned i = 0; i < QCOW2_MAX_INFLIGHT; i++)
		if (s->inflight[i].end && s->inflight[i].start < end && start < s->inflight[i].end)
			return true;
	return false;
}

void qcow2_wait_inflight(struct qcow2 *s, uint64_t start, uint64_t end)
{
	while (inflight_overlaps(s, start, end))
		pthread_cond_wait(&s->inflight_cond, &s->lock);
}

static unsigned inflight_add(struct qcow2 *s, uint64_t start, uint64_t end)
{
	for (;;) {
		for (unsigned i = 0; i < QCOW2_MAX_INFLIGHT; i++) {
			if (!s->inflight[i].end) {
				s->inflight[i].start = start;
				s->inflight[i].end = end;
				return i;
			}
		}
		pthread_cond_wait(&s->inflight_cond, &s->lock);
	}
}

static void inflight_del(struct qcow2 *s, unsigned slot)
{
	s->inflight[slot].start = s->inflight[slot].end = 0;
	pthread_cond_broadcast(&s->inflight_cond);
}

/* Writes the first part of [off, off+len) that lies in one L2 table and
 * has one treatment; returns the bytes done. Lock held; it is dropped
 * around data writes. */
static int64_t write_run(struct qcow2 *s, const uint8_t *buf, uint64_t len, uint64_t off)
{
	uint64_t cs = s->cluster_size, in_off = off & (cs - 1);
	uint64_t l1_index = off >> (s->cluster_bits + s->l2_bits);
	uint64_t idx = (off >> s->cluster_bits) & (s->l2_entries - 1);
	uint64_t want = MIN(s->l2_entries - idx, (in_off + len + cs - 1) >> s->cluster_bits);
	uint64_t g0 = off >> s->cluster_bits; /* first guest cluster */
	uint64_t l2_off;
	uint8_t *t;
	qcow2_wait_inflight(s, g0, g0 + want);
	int ret = l2_for_write(s, l1_index, &l2_off);
	if (ret < 0)
		return ret;
	ret = qcow2_cache_get(s, &s->l2_cache, l2_off, false, &t);
	if (ret < 0)
		return ret;
	uint64_t e0 = be64_get(t + 8 * idx);
	uint64_t n = 1;
	if (in_place(e0, entry_type(s, e0))) {
		uint64_t h = e0 & QCOW2_L2E_OFFSET_MASK;
		if (qcow2_offset_in_cluster(s, h) || h == 0)
			return qcow2_signal_corruption(s, "data cluster offset 0x%llx unaligned",
						       (unsigned long long)h);
		while (n < want) {
			uint64_t e = be64_get(t + 8 * (idx + n));
			if (!in_place(e, entry_type(s, e)) || (e & QCOW2_L2E_OFFSET_MASK) != h + n * cs)
				break;
			n++;
		}
		uint64_t bytes = MIN(len, n * cs - in_off);
		/* In flight too: a concurrent discard must not free (and let
		 * someone reuse) these clusters under the write. */
		unsigned slot = inflight_add(s, g0, g0 + n);
		pthread_mutex_unlock(&s->lock);
		ret = pwrite_full(s->fd, buf, bytes, h + in_off);
		pthread_mutex_lock(&s->lock);
		inflight_del(s, slot);
		return ret < 0 ? ret : (int64_t)bytes;
	}
	while (n < want) {
		uint64_t e = be64_get(t + 8 * (idx + n));
		if (in_place(e, entry_type(s, e)))
			break;
		n++;
	}
	uint64_t host, got;
	ret = qcow2_alloc_clusters(s, n, false, &host, &got);
	if (ret < 0)
		return ret;
	ret = qcow2_cache_get(s, &s->l2_cache, l2_off, false, &t);
	if (ret < 0)
		return ret;
	uint64_t *old = xmalloc(got * sizeof(*old));
	for (uint64_t i = 0; i < got; i++)
		old[i] = be64_get(t + 8 * (idx + i));
	unsigned slot = inflight_add(s, g0, g0 + got);
	pthread_mutex_unlock(&s->lock);

	/* Unlocked: merge partial head/tail clusters with their current
	 * content and write everything in one go. */
	uint64_t bytes = MIN(len, got * cs - in_off);
	uint64_t end = in_off + bytes;
	uint8_t *head = NULL, *tail = NULL;
	struct iovec iov[3];
	int niov = 0;
	uint64_t done = 0;
	if (in_off || bytes < cs) {
		head = xmalloc(cs);
		ret = old_cluster(s, old[0], off - in_off, head);
		uint64_t m = MIN(bytes, cs - in_off);
		memcpy(head + in_off, buf, m);
		iov[niov++] = (struct iovec){ head, cs };
		done = m;
	}
	uint64_t full_end = got > 1 ? ALIGN_DOWN(end, cs) : 0;
	uint64_t mid_start = head ? cs : 0;
	if (!ret && full_end > mid_start) {
		iov[niov++] = (struct iovec){ (void *)(buf + done), full_end - mid_start };
		done += full_end - mid_start;
	}
	if (!ret && done < bytes) {
		tail = xmalloc(cs);
		ret = old_cluster(s, old[got - 1], off - in_off + (got - 1) * cs, tail);
		memcpy(tail, buf + done, bytes - done);
		iov[niov++] = (struct iovec){ tail, cs };
	}
	if (!ret)
		ret = pwritev_full(s->fd, iov, niov, host);
	free(head);
	free(tail);

	pthread_mutex_lock(&s->lock);
	if (ret < 0) {
		qcow2_update_refcount(s, host, got * cs, -1);
		goto out;
	}
	/* Data is in place: now publish it, then drop the old references. */
	ret = qcow2_cache_get(s, &s->l2_cache, l2_off, false, &t);
	if (ret < 0)
		goto out;
	for (uint64_t i = 0; i < got; i++)
		be64_put(t + 8 * (idx + i), (host + i * cs) | QCOW2_OFLAG_COPIED);
	ret = write_l2_entries(s, l2_off, t, idx, got);
	if (!ret)
		ret = free_entries(s, old, got);
out:
	inflight_del(s, slot);
	free(old);
	return ret < 0 ? ret : (int64_t)bytes;
}

static int write_locked(struct qcow2 *s, const uint8_t *buf, uint64_t len, uint64_t off)
{
	while (len) {
		if (s->corrupt)
			return -EIO;
		int64_t n = write_run(s, buf, len, off);
		if (n < 0)
			return (int)n;
		buf += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

static int refuse_corrupt(struct qcow2 *s)
{
	log_once(LOG_ERROR, "%s: image is marked corrupt; writes refused (repair with "
		 "'xvm img check -r all')", s->bd->path);
	return -EIO;
}

int qcow2_pwrite(struct blockdev *bd, const void *buf, uint64_t len, uint64_t off)
{
	struct qcow2 *s = bd->priv;
	pthread_mutex_lock(&s->lock);
	int ret = s->corrupt ? refuse_corrupt(s) : write_locked(s, buf, len, off);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* ---- zeroing, discard, deallocation ---- */

enum { ZC_DEALLOC, ZC_ZERO_UNMAP, ZC_ZERO_KEEP };

/* Rewrites the L2 entries of whole clusters [off, off+len). */
static int zero_clusters(struct qcow2 *s, uint64_t off, uint64_t len, int mode)
{
	uint64_t cs = s->cluster_size;
	bool plain_zero_ok = !s->bd->backing; /* unallocated already reads zeros */
	while (len) {
		uint64_t l1_index = off >> (s->cluster_bits + s->l2_bits);
		uint64_t idx = (off >> s->cluster_bits) & (s->l2_entries - 1);
		uint64_t n = MIN(s->l2_entries - idx, len >> s->cluster_bits);
		uint64_t step = n * cs;
		qcow2_wait_inflight(s, off >> s->cluster_bits, (off >> s->cluster_bits) + n);
		bool have_l2 = l1_index < s->l1_size && (s->l1[l1_index] & QCOW2_L1E_OFFSET_MASK);
		if (!have_l2 && (mode == ZC_DEALLOC || plain_zero_ok)) {
			off += step;
			len -= step;
			continue;
		}
		uint64_t l2_off;
		uint8_t *t;
		int ret = l2_for_write(s, l1_index, &l2_off);
		if (ret < 0)
			return ret;
		ret = qcow2_cache_get(s, &s->l2_cache, l2_off, false, &t);
		if (ret < 0)
			return ret;
		uint64_t *old = xcalloc(n, sizeof(*old));
		bool changed = false;
		for (uint64_t i = 0; i < n; i++) {
			uint64_t e = be64_get(t + 8 * (idx + i)), ne;
			int type = entry_type(s, e);
			if (mode == ZC_DEALLOC)
				ne = 0;
			else if (type == C_UNALLOC && plain_zero_ok)
				ne = e;
			else if (mode == ZC_ZERO_KEEP && in_place(e, type))
				ne = e | QCOW2_OFLAG_ZERO;
			else if (type == C_ZERO && mode == ZC_ZERO_KEEP)
				ne = e;
			else
				ne = QCOW2_OFLAG_ZERO;
			if (ne != e) {
				if ((e & QCOW2_L2E_OFFSET_MASK) != (ne & QCOW2_L2E_OFFSET_MASK) ||
				    type == C_COMPRESSED)
					old[i] = e;
				be64_put(t + 8 * (idx + i), ne);
				changed = true;
			}
		}
		if (changed)
			ret = write_l2_entries(s, l2_off, t, idx, n);
		if (!ret)
			ret = free_entries(s, old, n);
		free(old);
		if (ret < 0)
			return ret;
		off += step;
		len -= step;
	}
	return 0;
}

int qcow2_deallocate_range(struct qcow2 *s, uint64_t off, uint64_t len)
{
	return zero_clusters(s, off, len, ZC_DEALLOC);
}

/* Writes explicit zeros over a sub-cluster range (skipped if it reads as
 * zeros already). */
static int zero_bytes(struct qcow2 *s, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[64 * 1024];
	while (len) {
		struct run r;
		int ret = map_run(s, off, len, &r);
		if (ret < 0)
			return ret;
		uint64_t n = MIN(r.bytes, sizeof(zeros));
		if (!(r.type == C_ZERO || (r.type == C_UNALLOC && !s->bd->backing))) {
			ret = write_locked(s, zeros, n, off);
			if (ret < 0)
				return ret;
		}
		off += n;
		len -= n;
	}
	return 0;
}

int qcow2_write_zeroes(struct blockdev *bd, uint64_t off, uint64_t len, unsigned flags)
{
	struct qcow2 *s = bd->priv;
	uint64_t cs = s->cluster_size;
	pthread_mutex_lock(&s->lock);
	int ret = 0;
	if (s->corrupt) {
		ret = refuse_corrupt(s);
		goto out;
	}
	uint64_t a = ALIGN_UP(off, cs), b = ALIGN_DOWN(off + len, cs);
	uint64_t size = bd_size(bd);
	if (off + len == size)
		b = ALIGN_UP(size, cs); /* the short last cluster counts as whole */
	if (a >= b) {
		ret = zero_bytes(s, off, len);
		goto out;
	}
	if (off < a)
		ret = zero_bytes(s, off, a - off);
	if (!ret && b < off + len)
		ret = zero_bytes(s, b, off + len - b);
	if (ret)
		goto out;
	if (s->version >= 3)
		ret = zero_clusters(s, a, b - a,
				    flags & BLOCK_ZERO_MAY_UNMAP ? ZC_ZERO_UNMAP : ZC_ZERO_KEEP);
	else if (!bd->backing)
		ret = zero_clusters(s, a, b - a, ZC_DEALLOC);
	else
		ret = zero_bytes(s, a, MIN(b, size) - a);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int qcow2_discard(struct blockdev *bd, uint64_t off, uint64_t len)
{
	struct qcow2 *s = bd->priv;
	uint64_t cs = s->cluster_size;
	uint64_t a = ALIGN_UP(off, cs), b = ALIGN_DOWN(off + len, cs);
	if (off + len == bd_size(bd))
		b = ALIGN_UP(off + len, cs);
	if (a >= b)
		return 0; /* discard is advisory: partial clusters stay */
	pthread_mutex_lock(&s->lock);
	int ret;
	if (s->corrupt)
		ret = refuse_corrupt(s);
	else if (bd->backing && s->version >= 3)
		ret = zero_clusters(s, a, b - a, ZC_ZERO_UNMAP); /* do not expose the backing */
	else
		ret = zero_clusters(s, a, b - a, ZC_DEALLOC);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* ---- block status ---- */

int qcow2_status(struct blockdev *bd, uint64_t off, uint64_t len, uint64_t *pnum,
		 unsigned *status)
{
	struct qcow2 *s = bd->priv;
	struct run r;
	pthread_mutex_lock(&s->lock);
	int ret = map_run(s, off, len, &r);
	uint64_t total = r.bytes;
	if (!ret && (r.type == C_DATA || r.type == C_COMPRESSED)) {
		/* Data is data, wherever it lives: merge runs for the caller. */
		while (total < len) {
			struct run r2;
			if (map_run(s, off + total, len - total, &r2) < 0 ||
			    (r2.type != C_DATA && r2.type != C_COMPRESSED))
				break;
			total += r2.bytes;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (ret < 0)
		return ret;
	switch (r.type) {
	case C_UNALLOC:
		if (bd->backing && off < block_size(bd->backing)) {
			uint64_t n;
			unsigned st;
			ret = block_status(bd->backing, off,
					   MIN(total, block_size(bd->backing) - off), &n, &st);
			if (ret < 0)
				return ret;
			*pnum = n;
			*status = st & ~BLOCK_STATUS_ALLOCATED;
			return 0;
		}
		*status = BLOCK_STATUS_ZERO;
		break;
	case C_ZERO:
		*status = BLOCK_STATUS_ZERO | BLOCK_STATUS_ALLOCATED;
		break;
	default:
		*status = BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED;
	}
	*pnum = total;
	return 0;
}

/* ---- compressed writes ---- */

int qcow2_pwrite_compressed(struct blockdev *bd, const void *buf, uint64_t len, uint64_t off)
{
	struct qcow2 *s = bd->priv;
	uint64_t cs = s->cluster_size;
	if (off & (cs - 1) || len > cs || (len < cs && off + len != bd_size(bd)))
		return -EINVAL;
	uint8_t *in = (uint8_t *)buf, *padded = NULL;
	if (len < cs) {
		padded = xcalloc(1, cs);
		memcpy(padded, buf, len);
		in = padded;
	}
	uint8_t *out = xmalloc(cs);
	/* Compression runs outside the lock so several writers can use cores. */
	size_t clen = compress_cluster(s, in, cs, out);
	int ret;
	if (clen == 0 || clen >= cs) {
		ret = qcow2_pwrite(bd, buf, len, off);
		goto done;
	}
	pthread_mutex_lock(&s->lock);
	if (s->corrupt) {
		ret = refuse_corrupt(s);
		goto unlock;
	}
	uint64_t l1_index = off >> (s->cluster_bits + s->l2_bits);
	uint64_t idx = (off >> s->cluster_bits) & (s->l2_entries - 1);
	uint64_t l2_off, coff;
	uint8_t *t;
	qcow2_wait_inflight(s, off >> s->cluster_bits, (off >> s->cluster_bits) + 1);
	ret = l2_for_write(s, l1_index, &l2_off);
	if (ret < 0)
		goto unlock;
	ret = qcow2_alloc_bytes(s, clen, &coff);
	if (ret < 0)
		goto unlock;
	if (coff + clen > s->coffset_mask) {
		ret = -ENOSPC;
		goto unlock;
	}
	/* The data goes out unlocked; the guest cluster is held in flight. */
	uint64_t g = off >> s->cluster_bits;
	unsigned slot = inflight_add(s, g, g + 1);
	pthread_mutex_unlock(&s->lock);
	ret = pwrite_full(s->fd, out, clen, coff);
	pthread_mutex_lock(&s->lock);
	if (ret < 0) {
		qcow2_update_refcount(s, coff, clen, -1);
		inflight_del(s, slot);
		goto unlock;
	}
	ret = qcow2_cache_get(s, &s->l2_cache, l2_off, false, &t);
	if (ret == 0) {
		uint64_t nb = ((coff + clen - 1) >> 9) - (coff >> 9);
		uint64_t old = be64_get(t + 8 * idx);
		be64_put(t + 8 * idx, QCOW2_OFLAG_COMPRESSED | (nb << s->csize_shift) | coff);
		ret = write_l2_entries(s, l2_off, t, idx, 1);
		if (!ret)
			ret = free_entry(s, old);
	}
	inflight_del(s, slot);
unlock:
	pthread_mutex_unlock(&s->lock);
done:
	free(out);
	free(padded);
	return ret;
}

/* ---- metadata-only preallocation ---- */

int qcow2_preallocate(struct blockdev *bd)
{
	struct qcow2 *s = bd->priv;
	uint64_t cs = s->cluster_size, size = ALIGN_UP(bd_size(bd), cs), off = 0;
	uint64_t end_host = 0;
	int ret = 0;
	pthread_mutex_lock(&s->lock);
	qcow2_wait_inflight(s, 0, UINT64_MAX);
	while (off < size && !ret) {
		uint64_t l1_index = off >> (s->cluster_bits + s->l2_bits);
		uint64_t idx = (off >> s->cluster_bits) & (s->l2_entries - 1);
		uint64_t n = MIN(s->l2_entries - idx, (size - off) >> s->cluster_bits);
		uint64_t l2_off, host, got;
		uint8_t *t;
		ret = l2_for_write(s, l1_index, &l2_off);
		if (!ret)
			ret = qcow2_alloc_clusters(s, n, false, &host, &got);
		if (!ret)
			ret = qcow2_cache_get(s, &s->l2_cache, l2_off, false, &t);
		if (ret)
			break;
		for (uint64_t i = 0; i < got; i++)
			be64_put(t + 8 * (idx + i), (host + i * cs) | QCOW2_OFLAG_COPIED);
		ret = write_l2_entries(s, l2_off, t, idx, got);
		end_host = MAX(end_host, host + got * cs);
		off += got * cs;
	}
	if (!ret && end_host) {
		struct stat;
		off_t cur = lseek(s->fd, 0, SEEK_END);
		if (cur >= 0 && (uint64_t)cur < end_host && ftruncate(s->fd, (off_t)end_host) < 0)
			ret = -errno;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* ---- COPIED flags after snapshot changes ---- */

int qcow2_fix_copied_flags(struct qcow2 *s)
{
	for (uint32_t i = 0; i < s->l1_size; i++) {
		uint64_t e = s->l1[i], o = e & QCOW2_L1E_OFFSET_MASK, rc;
		if (!o)
			continue;
		int ret = qcow2_get_refcount(s, o >> s->cluster_bits, &rc);
		if (ret < 0)
			return ret;
		uint64_t ne = rc == 1 ? (e | QCOW2_OFLAG_COPIED) : (e & ~QCOW2_OFLAG_COPIED);
		if (ne != e) {
			s->l1[i] = ne;
			ret = qcow2_write_l1_entries(s, i, 1);
			if (ret < 0)
				return ret;
		}
		uint8_t *t;
		ret = qcow2_cache_get(s, &s->l2_cache, o, false, &t);
		if (ret < 0)
			return ret;
		bool changed = false;
		for (uint64_t j = 0; j < s->l2_entries; j++) {
			uint64_t l2e = be64_get(t + 8 * j), h = l2e & QCOW2_L2E_OFFSET_MASK;
			if ((l2e & QCOW2_OFLAG_COMPRESSED) || !h)
				continue;
			ret = qcow2_get_refcount(s, h >> s->cluster_bits, &rc);
			if (ret < 0)
				return ret;
			ret = qcow2_cache_get(s, &s->l2_cache, o, false, &t);
			if (ret < 0)
				return ret;
			uint64_t n2 = rc == 1 ? (l2e | QCOW2_OFLAG_COPIED) : (l2e & ~QCOW2_OFLAG_COPIED);
			if (n2 != l2e) {
				be64_put(t + 8 * j, n2);
				changed = true;
			}
		}
		if (changed) {
			ret = pwrite_full(s->fd, t, s->cluster_size, o);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

/* ---- map: this layer only, with host offsets ---- */

int qcow2_map(struct blockdev *bd, uint64_t off, uint64_t len, uint64_t *pnum,
	      unsigned *status, uint64_t *host_off)
{
	struct qcow2 *s = bd->priv;
	struct run r;
	pthread_mutex_lock(&s->lock);
	int ret = map_run(s, off, len, &r);
	pthread_mutex_unlock(&s->lock);
	if (ret < 0)
		return ret;
	*host_off = UINT64_MAX;
	switch (r.type) {
	case C_UNALLOC:
		*status = 0;
		break;
	case C_ZERO:
		*status = BLOCK_STATUS_ZERO | BLOCK_STATUS_ALLOCATED;
		break;
	case C_COMPRESSED:
		*status = BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_COMPRESSED;
		break;
	default:
		*status = BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED;
		*host_off = r.host;
	}
	*pnum = r.bytes;
	return 0;
}
