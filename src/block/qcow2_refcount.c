/* qcow2 table cache, refcounts and cluster allocation.
 *
 * Allocation scans the refcount blocks from a hint for free clusters.
 * Refcount blocks that do not exist yet are created inside the run being
 * allocated (at its tail), so one allocation lays out data and the blocks
 * that count it together, and contiguous runs of any length are possible.
 * The refcount table itself grows by writing a bigger copy (with the
 * blocks that count it) at the first cluster no table entry covers, then
 * switching the header to it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2.h"
#include "lib/log.h"
#include "lib/util.h"

/* ---- table cache (write-through: entries are never dirty) ---- */

int qcow2_cache_init(struct qcow2_cache *c, unsigned n, uint64_t cluster_size)
{
	c->n = n;
	c->offsets = xcalloc(n, sizeof(*c->offsets));
	c->lru = xcalloc(n, sizeof(*c->lru));
	c->data = malloc((size_t)n * cluster_size);
	c->tick = 0;
	c->last = 0;
	return c->data ? 0 : -ENOMEM;
}

void qcow2_cache_free(struct qcow2_cache *c)
{
	free(c->offsets);
	free(c->lru);
	free(c->data);
	memset(c, 0, sizeof(*c));
}

void qcow2_cache_forget(struct qcow2_cache *c, uint64_t offset)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->offsets[i] == offset)
			c->offsets[i] = 0;
}

void qcow2_cache_clear(struct qcow2_cache *c)
{
	memset(c->offsets, 0, c->n * sizeof(*c->offsets));
}

int qcow2_cache_get(struct qcow2 *s, struct qcow2_cache *c, uint64_t offset, bool fresh,
		    uint8_t **table)
{
	unsigned slot = c->last, victim = 0;
	if (c->offsets[slot] != offset) {
		slot = c->n;
		for (unsigned i = 0; i < c->n; i++) {
			if (c->offsets[i] == offset) {
				slot = i;
				break;
			}
			if (c->offsets[i] == 0 || c->lru[i] < c->lru[victim])
				victim = c->offsets[victim] == 0 ? victim : i;
		}
	}
	if (slot < c->n) {
		uint8_t *t = c->data + (size_t)slot * s->cluster_size;
		if (fresh)
			memset(t, 0, s->cluster_size);
		c->lru[slot] = ++c->tick;
		c->last = slot;
		*table = t;
		return 0;
	}
	uint8_t *t = c->data + (size_t)victim * s->cluster_size;
	c->offsets[victim] = 0;
	if (fresh) {
		memset(t, 0, s->cluster_size);
	} else {
		int ret = pread_full(s->fd, t, s->cluster_size, offset);
		if (ret < 0)
			return ret;
	}
	c->offsets[victim] = offset;
	c->lru[victim] = ++c->tick;
	c->last = victim;
	*table = t;
	return 0;
}

/* ---- refcount entries of any width (1..64 bits, sub-byte LSB first) ---- */

uint64_t qcow2_refcount_get_entry(struct qcow2 *s, const uint8_t *b, uint64_t i)
{
	switch (s->refcount_order) {
	case 0: return (b[i / 8] >> (i % 8)) & 1;
	case 1: return (b[i / 4] >> (2 * (i % 4))) & 3;
	case 2: return (b[i / 2] >> (4 * (i % 2))) & 15;
	case 3: return b[i];
	case 4: return be16_get(b + 2 * i);
	case 5: return be32_get(b + 4 * i);
	default: return be64_get(b + 8 * i);
	}
}

void qcow2_refcount_set_entry(struct qcow2 *s, uint8_t *b, uint64_t i, uint64_t v)
{
	unsigned shift, bits;
	switch (s->refcount_order) {
	case 3: b[i] = (uint8_t)v; return;
	case 4: be16_put(b + 2 * i, (uint16_t)v); return;
	case 5: be32_put(b + 4 * i, (uint32_t)v); return;
	case 6: be64_put(b + 8 * i, v); return;
	default:
		bits = s->refcount_bits;
		shift = (unsigned)((i * bits) % 8);
		uint8_t mask = (uint8_t)(((1U << bits) - 1) << shift);
		uint8_t *p = &b[i * bits / 8];
		*p = (uint8_t)((*p & ~mask) | ((v << shift) & mask));
	}
}

int qcow2_refcount_write_entries(struct qcow2 *s, uint64_t block_off, uint8_t *block,
				 uint64_t first, uint64_t n)
{
	uint64_t start = first * s->refcount_bits / 8;
	uint64_t end = ALIGN_UP((first + n) * s->refcount_bits, 8) / 8;
	return pwrite_full(s->fd, block + start, end - start, block_off + start);
}

static int refblock_offset(struct qcow2 *s, uint64_t rt_index, uint64_t *off)
{
	*off = 0;
	if (rt_index >= s->rt_entries)
		return 0;
	uint64_t o = s->rt[rt_index] & QCOW2_RTE_OFFSET_MASK;
	if (o && (qcow2_offset_in_cluster(s, o) || o >= QCOW2_MAX_HOST_OFFSET))
		return qcow2_signal_corruption(s, "refcount block %llu at unaligned offset 0x%llx",
					       (unsigned long long)rt_index,
					       (unsigned long long)o);
	*off = o;
	return 0;
}

int qcow2_get_refcount(struct qcow2 *s, uint64_t cluster, uint64_t *rc)
{
	uint64_t boff;
	uint8_t *block;
	*rc = 0;
	int ret = refblock_offset(s, cluster >> s->rb_bits, &boff);
	if (ret < 0 || !boff)
		return ret;
	ret = qcow2_cache_get(s, &s->rb_cache, boff, false, &block);
	if (ret < 0)
		return ret;
	*rc = qcow2_refcount_get_entry(s, block, cluster & (s->rb_entries - 1));
	return 0;
}

/* Clusters that must never be handed out even if their refcount says so
 * (a damaged image may claim its own header or tables are free). */
static bool is_fixed_metadata(struct qcow2 *s, uint64_t cluster)
{
	uint64_t off = cluster << s->cluster_bits;
	if (cluster == 0)
		return true;
	if (off >= s->rt_offset && off < s->rt_offset + (uint64_t)s->rt_clusters * s->cluster_size)
		return true;
	uint64_t l1_bytes = ALIGN_UP((uint64_t)s->l1_size * 8, s->cluster_size);
	return off >= s->l1_offset && off < s->l1_offset + l1_bytes;
}

int qcow2_update_refcount(struct qcow2 *s, uint64_t off, uint64_t len, int64_t delta)
{
	if (len == 0)
		return 0;
	uint64_t first = off >> s->cluster_bits;
	uint64_t last = (off + len - 1) >> s->cluster_bits;
	uint64_t c = first;
	while (c <= last) {
		uint64_t rt_index = c >> s->rb_bits, boff;
		int ret = refblock_offset(s, rt_index, &boff);
		if (ret < 0)
			return ret;
		if (!boff)
			return qcow2_signal_corruption(s, "cluster 0x%llx is in use but has no "
						       "refcount block",
						       (unsigned long long)(c << s->cluster_bits));
		uint8_t *block;
		ret = qcow2_cache_get(s, &s->rb_cache, boff, false, &block);
		if (ret < 0)
			return ret;
		uint64_t idx = c & (s->rb_entries - 1);
		uint64_t n = MIN(last - c + 1, s->rb_entries - idx);
		uint64_t freed_start = 0, freed_n = 0;
		for (uint64_t i = 0; i < n; i++) {
			uint64_t v = qcow2_refcount_get_entry(s, block, idx + i);
			if (delta < 0 && v < (uint64_t)-delta)
				return qcow2_signal_corruption(
					s, "refcount of cluster 0x%llx would drop below zero",
					(unsigned long long)((c + i) << s->cluster_bits));
			if (delta > 0 && s->refcount_max - v < (uint64_t)delta)
				return -ERANGE;
			v += (uint64_t)delta;
			qcow2_refcount_set_entry(s, block, idx + i, v);
			if (v == 0) {
				if (!freed_n)
					freed_start = c + i;
				freed_n++;
				if (c + i < s->free_hint)
					s->free_hint = c + i;
			}
		}
		ret = qcow2_refcount_write_entries(s, boff, block, idx, n);
		if (ret < 0)
			return ret;
		if (freed_n) {
			/* Freed clusters: drop stale cached tables, give the space back. */
			for (uint64_t i = 0; i < freed_n; i++) {
				uint64_t fo = (freed_start + i) << s->cluster_bits;
				qcow2_cache_forget(&s->l2_cache, fo);
				if (s->cbytes_next >> s->cluster_bits == freed_start + i)
					s->cbytes_next = 0;
			}
			/* Every zero entry here was just freed by this call. */
			uint64_t i = 0;
			while (i < n) {
				if (qcow2_refcount_get_entry(s, block, idx + i) != 0) {
					i++;
					continue;
				}
				uint64_t j = i;
				while (j < n && qcow2_refcount_get_entry(s, block, idx + j) == 0)
					j++;
				block_file_punch(s->fd, (c + i) << s->cluster_bits,
						 (j - i) << s->cluster_bits);
				i = j;
			}
		}
		c += n;
	}
	return 0;
}

/* ---- free space search ---- */

/* Finds free clusters from the hint: the first run of length >= want, or
 * with !contig the first run of any length (capped at want). Clusters not
 * covered by a refcount block are free; beyond the table, free forever. */
static int find_free_run(struct qcow2 *s, uint64_t want, bool contig, uint64_t *start,
			 uint64_t *len)
{
	uint64_t c = MAX(s->free_hint, 1);
	uint64_t run_start = c, run_len = 0;
	for (;;) {
		uint64_t rt_index = c >> s->rb_bits, boff;
		if (rt_index >= s->rt_entries) {
			if (!run_len)
				run_start = c;
			run_len = want;
			break;
		}
		int ret = refblock_offset(s, rt_index, &boff);
		if (ret < 0)
			return ret;
		uint64_t idx = c & (s->rb_entries - 1);
		uint64_t n = s->rb_entries - idx;
		if (!boff) {
			if (!run_len)
				run_start = c;
			run_len += n;
			c += n;
		} else {
			uint8_t *block;
			ret = qcow2_cache_get(s, &s->rb_cache, boff, false, &block);
			if (ret < 0)
				return ret;
			for (uint64_t i = 0; i < n; i++, c++) {
				bool used = qcow2_refcount_get_entry(s, block, idx + i) != 0 ||
					    is_fixed_metadata(s, c);
				if (!used) {
					if (!run_len)
						run_start = c;
					run_len++;
					if (run_len >= want)
						break;
				} else if (run_len) {
					if (!contig)
						break;
					run_len = 0;
				}
			}
			if (run_len && !contig && c < (rt_index + 1) << s->rb_bits &&
			    run_len < want)
				break; /* run ended on a used cluster */
		}
		if (run_len >= want)
			break;
		if (c >= QCOW2_MAX_HOST_OFFSET >> s->cluster_bits)
			return -ENOSPC;
	}
	*start = run_start;
	*len = MIN(run_len, want);
	return 0;
}

/* Grows the refcount table so that it has an entry for rt_index. The new
 * table and the refcount blocks that count it go to the first cluster the
 * old table does not cover (all such clusters are free by definition). */
static int grow_refcount_table(struct qcow2 *s, uint64_t rt_index)
{
	uint64_t cs = s->cluster_size, E = s->rb_entries;
	uint64_t old_entries = s->rt_entries;
	uint64_t P = old_entries << s->rb_bits;
	uint64_t new_entries = MAX(rt_index + 1, old_entries + old_entries / 2 + 1);
	uint64_t T, K;
	for (;;) {
		T = (new_entries * 8 + cs - 1) / cs;
		K = 1;
		while (K * E < K + T)
			K++;
		if (old_entries + K <= new_entries)
			break;
		new_entries = old_entries + K;
	}
	new_entries = T * cs / 8;
	if (T * cs > QCOW2_MAX_RT_BYTES)
		return -EFBIG;
	if ((P + K + T) << s->cluster_bits >= QCOW2_MAX_HOST_OFFSET)
		return -ENOSPC;

	uint8_t *blocks = xcalloc(K, cs);
	for (uint64_t c = P; c < P + K + T; c++) {
		uint64_t j = (c >> s->rb_bits) - old_entries;
		qcow2_refcount_set_entry(s, blocks + j * cs, c & (E - 1), 1);
	}
	uint8_t *table = xcalloc(T, cs);
	for (uint64_t i = 0; i < old_entries; i++)
		be64_put(table + 8 * i, s->rt[i]);
	for (uint64_t j = 0; j < K; j++)
		be64_put(table + 8 * (old_entries + j), (P + j) << s->cluster_bits);

	int ret = pwrite_full(s->fd, blocks, K * cs, P << s->cluster_bits);
	if (!ret)
		ret = pwrite_full(s->fd, table, T * cs, (P + K) << s->cluster_bits);
	free(blocks);
	if (!ret)
		ret = block_file_flush(s->fd);
	if (ret < 0) {
		free(table);
		return ret;
	}
	uint8_t hdr[12];
	be64_put(hdr, (P + K) << s->cluster_bits);
	be32_put(hdr + 8, (uint32_t)T);
	ret = pwrite_full(s->fd, hdr, sizeof(hdr), 48);
	if (!ret)
		ret = block_file_flush(s->fd);
	if (ret < 0) {
		free(table);
		return ret;
	}
	uint64_t old_off = s->rt_offset, old_clusters = s->rt_clusters;
	uint64_t *rt = xcalloc(new_entries, sizeof(*rt));
	for (uint64_t i = 0; i < new_entries; i++)
		rt[i] = be64_get(table + 8 * i);
	free(table);
	free(s->rt);
	s->rt = rt;
	s->rt_entries = new_entries;
	s->rt_offset = (P + K) << s->cluster_bits;
	s->rt_clusters = (uint32_t)T;
	return qcow2_update_refcount(s, old_off, old_clusters * cs, -1);
}

/* Sets the refcount of every cluster in [start, start+n) to 1; their
 * blocks exist. */
static int set_refcounts_one(struct qcow2 *s, uint64_t start, uint64_t n)
{
	uint64_t c = start, end = start + n;
	while (c < end) {
		uint64_t boff;
		int ret = refblock_offset(s, c >> s->rb_bits, &boff);
		if (ret < 0)
			return ret;
		if (!boff)
			return -EIO;
		uint8_t *block;
		ret = qcow2_cache_get(s, &s->rb_cache, boff, false, &block);
		if (ret < 0)
			return ret;
		uint64_t idx = c & (s->rb_entries - 1);
		uint64_t m = MIN(end - c, s->rb_entries - idx);
		for (uint64_t i = 0; i < m; i++)
			qcow2_refcount_set_entry(s, block, idx + i, 1);
		ret = qcow2_refcount_write_entries(s, boff, block, idx, m);
		if (ret < 0)
			return ret;
		c += m;
	}
	return 0;
}

static uint64_t missing_blocks(struct qcow2 *s, uint64_t start, uint64_t n, uint64_t *max_index)
{
	uint64_t count = 0;
	uint64_t first = start >> s->rb_bits, last = (start + n - 1) >> s->rb_bits;
	*max_index = last;
	for (uint64_t r = first; r <= last; r++)
		if (r >= s->rt_entries || !(s->rt[r] & QCOW2_RTE_OFFSET_MASK))
			count++;
	return count;
}

int qcow2_alloc_clusters(struct qcow2 *s, uint64_t n, bool contig, uint64_t *off, uint64_t *got)
{
	if (n == 0)
		return -EINVAL;
	for (int tries = 0; tries < 64; tries++) {
		uint64_t kmax = n / (s->rb_entries - 1) + 2;
		uint64_t start, len;
		int ret = find_free_run(s, n + kmax, contig, &start, &len);
		if (ret < 0)
			return ret;
		/* Room for the data (m clusters) and the k refcount blocks that
		 * the run needs, placed right after the data. */
		uint64_t k = 0, m = 0, max_index = 0;
		for (int i = 0; i < 8; i++) {
			if (len <= k)
				break;
			m = MIN(n, len - k);
			uint64_t k2 = missing_blocks(s, start, m + k, &max_index);
			if (k2 == k)
				break;
			k = k2;
		}
		if (len <= k || m == 0) {
			s->free_hint = start + len; /* too short to hold its own blocks */
			continue;
		}
		m = MIN(n, len - k);
		if (missing_blocks(s, start, m + k, &max_index) != k)
			continue;
		if (max_index >= s->rt_entries) {
			ret = grow_refcount_table(s, max_index);
			if (ret < 0)
				return ret;
			continue;
		}
		if (((start + m + k) << s->cluster_bits) >= QCOW2_MAX_HOST_OFFSET)
			return -ENOSPC;
		uint64_t total = m + k, bstart = start + m;
		if (k) {
			uint64_t cs = s->cluster_size;
			uint8_t *blocks = xcalloc(k, cs);
			uint64_t first_r = start >> s->rb_bits, last_r = (start + total - 1) >> s->rb_bits;
			uint64_t j = 0;
			uint64_t *which = xcalloc(k, sizeof(*which));
			for (uint64_t r = first_r; r <= last_r; r++)
				if (!(s->rt[r] & QCOW2_RTE_OFFSET_MASK))
					which[j++] = r;
			for (uint64_t c = start; c < start + total; c++)
				for (j = 0; j < k; j++)
					if (which[j] == c >> s->rb_bits)
						qcow2_refcount_set_entry(s, blocks + j * cs,
									 c & (s->rb_entries - 1), 1);
			ret = pwrite_full(s->fd, blocks, k * cs, bstart << s->cluster_bits);
			free(blocks);
			/* Blocks first, then the table entries that publish them. */
			for (j = 0; !ret && j < k; j++) {
				uint8_t e[8];
				s->rt[which[j]] = (bstart + j) << s->cluster_bits;
				qcow2_cache_forget(&s->rb_cache, s->rt[which[j]]);
				be64_put(e, s->rt[which[j]]);
				ret = pwrite_full(s->fd, e, 8, s->rt_offset + which[j] * 8);
			}
			free(which);
			if (ret < 0)
				return ret;
		}
		/* Ranges whose block already existed get their counts now. */
		uint64_t c = start;
		while (c < start + total) {
			uint64_t r = c >> s->rb_bits;
			uint64_t next = MIN((r + 1) << s->rb_bits, start + total);
			uint64_t boff = s->rt[r] & QCOW2_RTE_OFFSET_MASK;
			bool created = boff >= (bstart << s->cluster_bits) &&
				       boff < ((bstart + k) << s->cluster_bits);
			if (!created) {
				ret = set_refcounts_one(s, c, next - c);
				if (ret < 0)
					return ret;
			}
			c = next;
		}
		s->free_hint = start + total;
		*off = start << s->cluster_bits;
		*got = m;
		return 0;
	}
	return -ENOSPC;
}

int qcow2_alloc_bytes(struct qcow2 *s, uint64_t len, uint64_t *off)
{
	uint64_t cs = s->cluster_size;
	uint64_t cur = s->cbytes_next;
	if (cur && qcow2_offset_in_cluster(s, cur) && s->refcount_max >= 2) {
		uint64_t avail = cs - qcow2_offset_in_cluster(s, cur);
		uint64_t rc;
		int ret = qcow2_get_refcount(s, cur >> s->cluster_bits, &rc);
		if (ret < 0)
			return ret;
		if (rc > 0 && rc < s->refcount_max) {
			if (len <= avail) {
				ret = qcow2_update_refcount(s, cur, 1, 1);
				if (ret < 0)
					return ret;
				*off = cur;
				s->cbytes_next = cur + len;
				return 0;
			}
			/* Spill into the next cluster if we can get exactly that one. */
			uint64_t next = ALIGN_UP(cur, cs), noff, got;
			if (next >> s->cluster_bits == MAX(s->free_hint, 1) ||
			    (qcow2_get_refcount(s, next >> s->cluster_bits, &rc) == 0 && rc == 0 &&
			     !is_fixed_metadata(s, next >> s->cluster_bits))) {
				uint64_t saved = s->free_hint;
				s->free_hint = next >> s->cluster_bits;
				ret = qcow2_alloc_clusters(s, 1, true, &noff, &got);
				if (ret < 0)
					return ret;
				if (noff == next) {
					ret = qcow2_update_refcount(s, cur, 1, 1);
					if (ret < 0)
						return ret;
					*off = cur;
					s->cbytes_next = cur + len;
					return 0;
				}
				s->free_hint = MIN(saved, s->free_hint);
				/* Not contiguous after all: start fresh in it. */
				*off = noff;
				s->cbytes_next = noff + len;
				return 0;
			}
		}
	}
	uint64_t noff, got;
	int ret = qcow2_alloc_clusters(s, 1, true, &noff, &got);
	if (ret < 0)
		return ret;
	*off = noff;
	s->cbytes_next = noff + len;
	return 0;
}
