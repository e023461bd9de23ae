/* qcow2 consistency check and repair.
 *
 * Counts every reference the image holds (header, L1/L2 tables of the
 * active state and of every snapshot, data and compressed clusters, the
 * refcount structures, the snapshot table) into an in-memory table and
 * compares it with the stored refcounts: stored < counted is a corruption
 * (a cluster could be handed out twice), stored > counted a leak (space
 * lost, harmless). Repair rewrites stored counts from the computed ones. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "block/qcow2.h"
#include "lib/log.h"
#include "lib/util.h"

struct checker {
	struct qcow2 *s;
	struct block_check_result *res;
	uint16_t *counts;     /* computed references per cluster (saturating) */
	uint64_t nb;          /* clusters covered by counts */
	uint8_t *l2;          /* scratch table */
};

static void problem(struct checker *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void problem(struct checker *c, const char *fmt, ...)
{
	c->res->corruptions++;
	if (c->res->first_problem[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->res->first_problem, sizeof(c->res->first_problem), fmt, ap);
	va_end(ap);
}

/* Counts one reference to each cluster overlapping [off, off+len). */
static void ref_range(struct checker *c, uint64_t off, uint64_t len, const char *what)
{
	if (!len)
		return;
	uint64_t first = off >> c->s->cluster_bits, last = (off + len - 1) >> c->s->cluster_bits;
	for (uint64_t i = first; i <= last; i++) {
		if (i >= c->nb) {
			problem(c, "%s at 0x%llx is beyond the end of the image", what,
				(unsigned long long)(i << c->s->cluster_bits));
			return;
		}
		if (c->counts[i] < UINT16_MAX)
			c->counts[i]++;
	}
}

static int walk_l1(struct checker *c, const uint64_t *l1, uint32_t l1_size, bool active)
{
	struct qcow2 *s = c->s;
	uint64_t cs = s->cluster_size;
	uint64_t prev_host = 0;
	for (uint32_t i = 0; i < l1_size; i++) {
		uint64_t l2_off = l1[i] & QCOW2_L1E_OFFSET_MASK;
		if (!l2_off)
			continue;
		if (l2_off & (cs - 1)) {
			problem(c, "L2 table offset 0x%llx unaligned", (unsigned long long)l2_off);
			continue;
		}
		ref_range(c, l2_off, cs, "L2 table");
		if (l2_off >> s->cluster_bits >= c->nb)
			continue;
		int ret = pread_full(s->fd, c->l2, cs, l2_off);
		if (ret < 0) {
			c->res->check_errors++;
			continue;
		}
		for (uint64_t j = 0; j < s->l2_entries; j++) {
			uint64_t e = be64_get(c->l2 + 8 * j);
			if (e & QCOW2_OFLAG_COMPRESSED) {
				uint64_t coff, clen;
				qcow2_compressed_range(s, e, &coff, &clen);
				ref_range(c, coff, clen, "compressed cluster");
				if (active) {
					c->res->compressed_clusters++;
					c->res->allocated_clusters++;
					c->res->fragmented_clusters++;
				}
				prev_host = 0;
				continue;
			}
			uint64_t h = e & QCOW2_L2E_OFFSET_MASK;
			if (!h) {
				prev_host = 0;
				continue;
			}
			if (h & (cs - 1)) {
				problem(c, "data cluster offset 0x%llx unaligned", (unsigned long long)h);
				continue;
			}
			ref_range(c, h, cs, "data cluster");
			if (active) {
				c->res->allocated_clusters++;
				if (prev_host && h != prev_host + cs)
					c->res->fragmented_clusters++;
				prev_host = h;
			}
		}
	}
	return 0;
}

/* COPIED must be set exactly where the refcount is 1 (active tables only). */
static int check_copied(struct checker *c, bool fix)
{
	struct qcow2 *s = c->s;
	uint64_t bad = 0;
	for (uint32_t i = 0; i < s->l1_size; i++) {
		uint64_t e = s->l1[i], o = e & QCOW2_L1E_OFFSET_MASK, rc;
		if (!o || (o & (s->cluster_size - 1)))
			continue;
		if (qcow2_get_refcount(s, o >> s->cluster_bits, &rc) < 0)
			return -EIO;
		if ((rc == 1) != !!(e & QCOW2_OFLAG_COPIED))
			bad++;
		int ret = pread_full(s->fd, c->l2, s->cluster_size, o);
		if (ret < 0)
			return ret;
		for (uint64_t j = 0; j < s->l2_entries; j++) {
			uint64_t l2e = be64_get(c->l2 + 8 * j), h = l2e & QCOW2_L2E_OFFSET_MASK;
			if ((l2e & QCOW2_OFLAG_COMPRESSED) || !h || (h & (s->cluster_size - 1)))
				continue;
			if (qcow2_get_refcount(s, h >> s->cluster_bits, &rc) < 0)
				return -EIO;
			if ((rc == 1) != !!(l2e & QCOW2_OFLAG_COPIED))
				bad++;
		}
	}
	if (bad) {
		for (uint64_t i = 0; i < bad; i++)
			problem(c, "COPIED flag does not match the refcount");
		if (fix) {
			int ret = qcow2_fix_copied_flags(s);
			if (ret < 0)
				return ret;
			qcow2_cache_clear(&s->l2_cache);
			c->res->corruptions_fixed += bad;
		}
	}
	return 0;
}

/* Sets the stored refcount of cluster i, creating its block if needed. */
static int store_refcount(struct checker *c, uint64_t i, uint64_t v)
{
	struct qcow2 *s = c->s;
	uint64_t r = i >> s->rb_bits;
	uint64_t boff = r < s->rt_entries ? s->rt[r] & QCOW2_RTE_OFFSET_MASK : 0;
	if (!boff) {
		if (v == 0)
			return 0;
		/* Place new blocks after everything the image references. */
		s->free_hint = MAX(s->free_hint, c->nb);
		uint64_t off, got;
		int ret = qcow2_alloc_clusters(s, 1, true, &off, &got);
		if (ret < 0)
			return ret;
		ret = qcow2_update_refcount(s, off, s->cluster_size, -1);
		if (ret < 0)
			return ret;
		boff = r < s->rt_entries ? s->rt[r] & QCOW2_RTE_OFFSET_MASK : 0;
		if (!boff)
			return -EIO; /* allocation did not cover that range */
	}
	uint8_t *block;
	int ret = qcow2_cache_get(s, &s->rb_cache, boff, false, &block);
	if (ret < 0)
		return ret;
	uint64_t idx = i & (s->rb_entries - 1);
	qcow2_refcount_set_entry(s, block, idx, v);
	return qcow2_refcount_write_entries(s, boff, block, idx, 1);
}

int qcow2_check_locked(struct qcow2 *s, unsigned fix, struct block_check_result *res)
{
	memset(res, 0, sizeof(*res));
	struct stat st;
	if (fstat(s->fd, &st) < 0)
		return -errno;
	uint64_t cs = s->cluster_size;
	struct checker c = { .s = s, .res = res };
	c.nb = ((uint64_t)st.st_size + cs - 1) >> s->cluster_bits;
	if (c.nb > (1ULL << 28)) /* 512 MiB of counters; 16 TiB at 64 KiB clusters */
		return -EFBIG;
	c.counts = calloc(c.nb ? c.nb : 1, sizeof(*c.counts));
	c.l2 = malloc(cs);
	if (!c.counts || !c.l2) {
		free(c.counts);
		free(c.l2);
		return -ENOMEM;
	}
	res->total_clusters = (bd_size(s->bd) + cs - 1) / cs;

	ref_range(&c, 0, cs, "header");
	ref_range(&c, s->l1_offset, (uint64_t)s->l1_size * 8, "L1 table");
	walk_l1(&c, s->l1, s->l1_size, true);
	uint64_t snap_bytes = 0;
	for (unsigned i = 0; i < s->nb_snapshots; i++) {
		struct qcow2_snapshot *sn = &s->snaps[i];
		snap_bytes += ALIGN_UP(40 + sn->extra_size + strlen(sn->id) + strlen(sn->name), 8);
		ref_range(&c, sn->l1_offset, (uint64_t)sn->l1_size * 8, "snapshot L1 table");
		uint64_t *l1 = xcalloc(sn->l1_size ? sn->l1_size : 1, 8);
		uint8_t *raw = xmalloc(sn->l1_size ? (size_t)sn->l1_size * 8 : 1);
		if (pread_full(s->fd, raw, (size_t)sn->l1_size * 8, sn->l1_offset) < 0) {
			res->check_errors++;
		} else {
			for (uint32_t j = 0; j < sn->l1_size; j++)
				l1[j] = be64_get(raw + 8 * j);
			walk_l1(&c, l1, sn->l1_size, false);
		}
		free(raw);
		free(l1);
	}
	ref_range(&c, s->snapshots_offset, snap_bytes, "snapshot table");
	ref_range(&c, s->rt_offset, (uint64_t)s->rt_clusters * cs, "refcount table");
	for (uint64_t r = 0; r < s->rt_entries; r++) {
		uint64_t o = s->rt[r] & QCOW2_RTE_OFFSET_MASK;
		if (o)
			ref_range(&c, o, cs, "refcount block");
	}

	/* Compare with what is stored; fix as asked. */
	uint64_t highest = 0;
	for (uint64_t i = 0; i < c.nb; i++) {
		uint64_t stored;
		if (qcow2_get_refcount(s, i, &stored) < 0) {
			res->check_errors++;
			continue;
		}
		uint64_t want = c.counts[i];
		if (want)
			highest = i + 1;
		if (stored == want)
			continue;
		bool leak = stored > want;
		if (leak)
			res->leaks++;
		else
			problem(&c, "cluster 0x%llx has refcount %llu but %llu references",
				(unsigned long long)(i << s->cluster_bits),
				(unsigned long long)stored, (unsigned long long)want);
		bool do_fix = leak ? (fix & (BLOCK_FIX_LEAKS | BLOCK_FIX_ERRORS))
				   : (fix & BLOCK_FIX_ERRORS);
		if (!do_fix)
			continue;
		if (want > s->refcount_max) {
			res->check_errors++;
			continue;
		}
		if (store_refcount(&c, i, want) == 0) {
			if (leak)
				res->leaks_fixed++;
			else
				res->corruptions_fixed++;
		} else {
			res->check_errors++;
		}
	}
	/* Refcounts past the end of the file reference nothing: leaks. */
	for (uint64_t r = 0; r < s->rt_entries; r++) {
		uint64_t o = s->rt[r] & QCOW2_RTE_OFFSET_MASK;
		uint64_t first = r << s->rb_bits;
		if (!o || first + s->rb_entries <= c.nb)
			continue;
		uint8_t *block;
		if (qcow2_cache_get(s, &s->rb_cache, o, false, &block) < 0) {
			res->check_errors++;
			continue;
		}
		bool dirty = false;
		for (uint64_t i = c.nb > first ? c.nb - first : 0; i < s->rb_entries; i++) {
			if (qcow2_refcount_get_entry(s, block, i)) {
				res->leaks++;
				if (fix) {
					qcow2_refcount_set_entry(s, block, i, 0);
					res->leaks_fixed++;
					dirty = true;
				}
			}
		}
		if (dirty && pwrite_full(s->fd, block, cs, o) < 0)
			res->check_errors++;
	}
	int ret = check_copied(&c, fix & BLOCK_FIX_ERRORS);
	if (ret < 0)
		res->check_errors++;
	res->image_end_offset = highest * cs;
	if (fix && !s->bd->readonly) {
		s->free_hint = 1;
		s->cbytes_next = 0;
		if (res->corruptions == res->corruptions_fixed && !res->check_errors && s->corrupt) {
			s->corrupt = false;
			qcow2_update_incompat(s, 0, QCOW2_INCOMPAT_CORRUPT);
		}
		block_file_flush(s->fd);
	}
	free(c.counts);
	free(c.l2);
	return 0;
}

int qcow2_check(struct blockdev *bd, unsigned fix, struct block_check_result *res)
{
	struct qcow2 *s = bd->priv;
	pthread_mutex_lock(&s->lock);
	qcow2_wait_inflight(s, 0, UINT64_MAX);
	int ret = qcow2_check_locked(s, fix, res);
	pthread_mutex_unlock(&s->lock);
	return ret;
}
