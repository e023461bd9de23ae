/* qcow2 internal snapshots: the snapshot table, list, create, apply, delete. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block/qcow2.h"
#include "lib/log.h"
#include "lib/util.h"

#define CORRUPT(...) block_err(err, errlen, -EINVAL, "image is corrupt: " __VA_ARGS__)

void qcow2_free_snapshots(struct qcow2_snapshot *snaps, unsigned n)
{
	for (unsigned i = 0; i < n && snaps; i++) {
		free(snaps[i].id);
		free(snaps[i].name);
		free(snaps[i].extra);
	}
	free(snaps);
}

int qcow2_read_snapshots(struct qcow2 *s, char *err, size_t errlen)
{
	unsigned n = s->nb_snapshots;
	s->snaps = NULL;
	if (n == 0)
		return 0;
	if (n > QCOW2_MAX_SNAPSHOTS)
		return CORRUPT("%u snapshots, more than %u", n, QCOW2_MAX_SNAPSHOTS);
	if (qcow2_offset_in_cluster(s, s->snapshots_offset) || s->snapshots_offset == 0 ||
	    s->snapshots_offset >= QCOW2_MAX_HOST_OFFSET)
		return CORRUPT("snapshot table offset 0x%llx invalid",
			       (unsigned long long)s->snapshots_offset);
	struct qcow2_snapshot *snaps = xcalloc(n, sizeof(*snaps));
	uint64_t pos = s->snapshots_offset, total = 0;
	int ret = 0;
	unsigned i;
	for (i = 0; i < n; i++) {
		uint8_t h[40];
		ret = pread_full(s->fd, h, sizeof(h), pos);
		if (ret < 0)
			break;
		struct qcow2_snapshot *sn = &snaps[i];
		sn->l1_offset = be64_get(h);
		sn->l1_size = be32_get(h + 8);
		uint16_t id_len = be16_get(h + 12), name_len = be16_get(h + 14);
		sn->date_sec = be32_get(h + 16);
		sn->date_nsec = be32_get(h + 20);
		sn->vm_clock_nsec = be64_get(h + 24);
		sn->vm_state_size = be32_get(h + 32);
		sn->extra_size = be32_get(h + 36);
		if (sn->extra_size > 1024) {
			ret = CORRUPT("snapshot %u extra data too large", i);
			break;
		}
		uint64_t entry = ALIGN_UP(40 + (uint64_t)sn->extra_size + id_len + name_len, 8);
		total += entry;
		if (total > QCOW2_MAX_SNAPSHOT_TABLE) {
			ret = CORRUPT("snapshot table too large");
			break;
		}
		uint8_t *rest = xmalloc(entry - 40 + 1);
		ret = pread_full(s->fd, rest, entry - 40, pos + 40);
		if (ret < 0) {
			free(rest);
			break;
		}
		sn->extra = xmalloc(sn->extra_size + 1);
		memcpy(sn->extra, rest, sn->extra_size);
		if (sn->extra_size >= 8)
			sn->vm_state_size = be64_get(rest);
		sn->disk_size = sn->extra_size >= 16 ? be64_get(rest + 8) : bd_size(s->bd);
		sn->id = strndup((char *)rest + sn->extra_size, id_len);
		sn->name = strndup((char *)rest + sn->extra_size + id_len, name_len);
		free(rest);
		if ((uint64_t)sn->l1_size * 8 > QCOW2_MAX_L1_BYTES ||
		    (sn->l1_size && (qcow2_offset_in_cluster(s, sn->l1_offset) || !sn->l1_offset ||
				     sn->l1_offset >= QCOW2_MAX_HOST_OFFSET))) {
			ret = CORRUPT("snapshot %u L1 table invalid", i);
			i++;
			break;
		}
		pos += entry;
	}
	if (ret < 0) {
		qcow2_free_snapshots(snaps, MIN(i + 1, n));
		return ret;
	}
	s->snaps = snaps;
	return 0;
}

int qcow2_snapshot_list(struct blockdev *bd, struct block_snapshot **list, unsigned *n)
{
	struct qcow2 *s = bd->priv;
	pthread_mutex_lock(&s->lock);
	*n = s->nb_snapshots;
	*list = xcalloc(s->nb_snapshots ? s->nb_snapshots : 1, sizeof(**list));
	for (unsigned i = 0; i < s->nb_snapshots; i++) {
		struct block_snapshot *o = &(*list)[i];
		struct qcow2_snapshot *sn = &s->snaps[i];
		snprintf(o->id, sizeof(o->id), "%s", sn->id);
		snprintf(o->name, sizeof(o->name), "%s", sn->name);
		o->vm_state_size = sn->vm_state_size;
		o->date_sec = sn->date_sec;
		o->date_nsec = sn->date_nsec;
		o->vm_clock_nsec = sn->vm_clock_nsec;
		o->disk_size = sn->disk_size;
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* Adds delta to the refcount of every cluster reachable from an L1 table
 * (its L2 tables and their data), batching host-contiguous runs. */
static int tree_refcounts(struct qcow2 *s, const uint64_t *l1, uint32_t l1_size, int64_t delta)
{
	uint64_t cs = s->cluster_size;
	uint8_t *t = xmalloc(cs);
	int ret = 0;
	for (uint32_t i = 0; i < l1_size && !ret; i++) {
		uint64_t l2 = l1[i] & QCOW2_L1E_OFFSET_MASK;
		if (!l2)
			continue;
		if (qcow2_offset_in_cluster(s, l2)) {
			ret = qcow2_signal_corruption(s, "L2 table offset 0x%llx unaligned",
						      (unsigned long long)l2);
			break;
		}
		ret = pread_full(s->fd, t, cs, l2);
		uint64_t run_start = 0, run_len = 0;
		for (uint64_t j = 0; j < s->l2_entries && !ret; j++) {
			uint64_t e = be64_get(t + 8 * j);
			if (e & QCOW2_OFLAG_COMPRESSED) {
				uint64_t coff, clen;
				qcow2_compressed_range(s, e, &coff, &clen);
				ret = qcow2_update_refcount(s, coff, clen, delta);
				continue;
			}
			uint64_t h = e & QCOW2_L2E_OFFSET_MASK;
			if (!h)
				continue;
			if (qcow2_offset_in_cluster(s, h)) {
				ret = qcow2_signal_corruption(s, "data cluster offset 0x%llx unaligned",
							      (unsigned long long)h);
				break;
			}
			if (run_len && h == run_start + run_len) {
				run_len += cs;
				continue;
			}
			if (run_len)
				ret = qcow2_update_refcount(s, run_start, run_len, delta);
			run_start = h;
			run_len = cs;
		}
		if (!ret && run_len)
			ret = qcow2_update_refcount(s, run_start, run_len, delta);
		if (!ret)
			ret = qcow2_update_refcount(s, l2, cs, delta);
	}
	free(t);
	qcow2_cache_clear(&s->l2_cache);
	return ret;
}

static uint64_t entry_size(const struct qcow2_snapshot *sn)
{
	return ALIGN_UP(40 + (uint64_t)sn->extra_size + strlen(sn->id) + strlen(sn->name), 8);
}

static uint64_t table_size(const struct qcow2_snapshot *snaps, unsigned n)
{
	uint64_t total = 0;
	for (unsigned i = 0; i < n; i++)
		total += entry_size(&snaps[i]);
	return total;
}

/* Writes a new snapshot table, points the header at it, frees the old. */
static int write_snapshot_table(struct qcow2 *s, struct qcow2_snapshot *snaps, unsigned n)
{
	uint64_t bytes = table_size(snaps, n), off = 0, got;
	int ret;
	if (bytes) {
		uint64_t clusters = (bytes + s->cluster_size - 1) >> s->cluster_bits;
		ret = qcow2_alloc_clusters(s, clusters, true, &off, &got);
		if (ret < 0)
			return ret;
		uint8_t *buf = xcalloc(1, bytes);
		uint64_t pos = 0;
		for (unsigned i = 0; i < n; i++) {
			const struct qcow2_snapshot *sn = &snaps[i];
			uint8_t *e = buf + pos;
			size_t id_len = strlen(sn->id), name_len = strlen(sn->name);
			be64_put(e, sn->l1_offset);
			be32_put(e + 8, sn->l1_size);
			be16_put(e + 12, (uint16_t)id_len);
			be16_put(e + 14, (uint16_t)name_len);
			be32_put(e + 16, sn->date_sec);
			be32_put(e + 20, sn->date_nsec);
			be64_put(e + 24, sn->vm_clock_nsec);
			be32_put(e + 32, sn->vm_state_size > UINT32_MAX ? 0 : (uint32_t)sn->vm_state_size);
			be32_put(e + 36, sn->extra_size);
			memcpy(e + 40, sn->extra, sn->extra_size);
			memcpy(e + 40 + sn->extra_size, sn->id, id_len);
			memcpy(e + 40 + sn->extra_size + id_len, sn->name, name_len);
			pos += entry_size(sn);
		}
		ret = pwrite_full(s->fd, buf, bytes, off);
		free(buf);
		if (!ret)
			ret = block_file_flush(s->fd);
		if (ret < 0)
			return ret;
	}
	uint8_t hdr[12];
	be32_put(hdr, n);
	be64_put(hdr + 4, off);
	ret = pwrite_full(s->fd, hdr, sizeof(hdr), 60);
	if (!ret)
		ret = block_file_flush(s->fd);
	if (ret < 0)
		return ret;
	uint64_t old_off = s->snapshots_offset, old_bytes = table_size(s->snaps, s->nb_snapshots);
	s->snapshots_offset = off;
	if (old_off && old_bytes)
		return qcow2_update_refcount(s, old_off, old_bytes, -1);
	return 0;
}

static int find_snapshot(struct qcow2 *s, const char *name_or_id)
{
	for (unsigned i = 0; i < s->nb_snapshots; i++)
		if (!strcmp(s->snaps[i].id, name_or_id))
			return (int)i;
	for (unsigned i = 0; i < s->nb_snapshots; i++)
		if (!strcmp(s->snaps[i].name, name_or_id))
			return (int)i;
	return -1;
}

static int read_l1(struct qcow2 *s, uint64_t off, uint32_t n, uint64_t **out)
{
	uint8_t *raw = xmalloc(n ? (size_t)n * 8 : 1);
	int ret = pread_full(s->fd, raw, (size_t)n * 8, off);
	uint64_t *l1 = xcalloc(n ? n : 1, 8);
	for (uint32_t i = 0; i < n; i++)
		l1[i] = be64_get(raw + 8 * i);
	free(raw);
	if (ret < 0) {
		free(l1);
		return ret;
	}
	*out = l1;
	return 0;
}

int qcow2_snapshot_create(struct blockdev *bd, const char *name, char *err, size_t errlen)
{
	struct qcow2 *s = bd->priv;
	if (!name || !*name || strlen(name) > 255)
		return block_err(err, errlen, -EINVAL, "snapshot name must be 1..255 bytes");
	pthread_mutex_lock(&s->lock);
	qcow2_wait_inflight(s, 0, UINT64_MAX);
	int ret;
	if (s->corrupt) {
		ret = block_err(err, errlen, -EIO, "image is marked corrupt");
		goto out;
	}
	if (find_snapshot(s, name) >= 0) {
		ret = block_err(err, errlen, -EEXIST, "a snapshot named '%s' exists", name);
		goto out;
	}
	if (s->nb_snapshots >= QCOW2_MAX_SNAPSHOTS) {
		ret = block_err(err, errlen, -ENOSPC, "too many snapshots");
		goto out;
	}
	/* 1. every cluster the active state uses gains a reference */
	ret = tree_refcounts(s, s->l1, s->l1_size, 1);
	if (ret == -ERANGE) {
		ret = block_err(err, errlen, ret, "refcounts of %u bits cannot count another "
				"snapshot", s->refcount_bits);
		goto out;
	}
	if (ret < 0)
		goto fail;
	/* 2. a copy of the L1 table */
	uint64_t l1_off = 0, got;
	if (s->l1_size) {
		uint64_t clusters = ((uint64_t)s->l1_size * 8 + s->cluster_size - 1) >> s->cluster_bits;
		ret = qcow2_alloc_clusters(s, clusters, true, &l1_off, &got);
		if (ret < 0)
			goto fail;
		uint8_t *raw = xcalloc(clusters, s->cluster_size);
		for (uint32_t i = 0; i < s->l1_size; i++)
			be64_put(raw + 8 * i, s->l1[i]);
		ret = pwrite_full(s->fd, raw, clusters * s->cluster_size, l1_off);
		free(raw);
		if (ret < 0)
			goto fail;
	}
	/* 3. the new table, then the header */
	struct qcow2_snapshot *snaps = xcalloc(s->nb_snapshots + 1, sizeof(*snaps));
	if (s->nb_snapshots)
		memcpy(snaps, s->snaps, s->nb_snapshots * sizeof(*snaps));
	struct qcow2_snapshot *sn = &snaps[s->nb_snapshots];
	unsigned long max_id = 0;
	for (unsigned i = 0; i < s->nb_snapshots; i++)
		max_id = MAX(max_id, strtoul(s->snaps[i].id, NULL, 10));
	char id[32];
	snprintf(id, sizeof(id), "%lu", max_id + 1);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	sn->l1_offset = l1_off;
	sn->l1_size = s->l1_size;
	sn->id = xstrdup(id);
	sn->name = xstrdup(name);
	sn->date_sec = (uint32_t)now.tv_sec;
	sn->date_nsec = (uint32_t)now.tv_nsec;
	sn->disk_size = bd_size(bd);
	sn->extra_size = 16;
	sn->extra = xcalloc(1, 16);
	be64_put(sn->extra + 8, sn->disk_size);
	ret = write_snapshot_table(s, snaps, s->nb_snapshots + 1);
	if (ret < 0) {
		free(sn->id);
		free(sn->name);
		free(sn->extra);
		free(snaps);
		goto fail;
	}
	free(s->snaps);
	s->snaps = snaps;
	s->nb_snapshots++;
	/* 4. shared clusters lose their COPIED flags */
	ret = qcow2_fix_copied_flags(s);
	if (!ret)
		ret = block_file_flush(s->fd);
fail:
	if (ret < 0 && err && !err[0])
		block_err(err, errlen, ret, "cannot create snapshot: %s", strerror(-ret));
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int qcow2_snapshot_apply(struct blockdev *bd, const char *name_or_id, char *err, size_t errlen)
{
	struct qcow2 *s = bd->priv;
	pthread_mutex_lock(&s->lock);
	qcow2_wait_inflight(s, 0, UINT64_MAX);
	int ret, i = find_snapshot(s, name_or_id);
	uint64_t *snap_l1 = NULL, *old_l1 = NULL;
	uint32_t old_size = s->l1_size;
	if (i < 0) {
		ret = block_err(err, errlen, -ENOENT, "no snapshot '%s'", name_or_id);
		goto out;
	}
	if (s->corrupt) {
		ret = block_err(err, errlen, -EIO, "image is marked corrupt");
		goto out;
	}
	struct qcow2_snapshot *sn = &s->snaps[i];
	ret = read_l1(s, sn->l1_offset, sn->l1_size, &snap_l1);
	if (ret < 0)
		goto fail;
	/* The snapshot's tree gains a reference before it becomes active. */
	ret = tree_refcounts(s, snap_l1, sn->l1_size, 1);
	if (ret < 0)
		goto fail;
	if (sn->l1_size > s->l1_size) {
		ret = qcow2_grow_l1(s, sn->l1_size);
		if (ret < 0)
			goto fail;
	}
	old_l1 = xmalloc((size_t)old_size * 8 + 8);
	memcpy(old_l1, s->l1, (size_t)old_size * 8);
	for (uint32_t j = 0; j < s->l1_size; j++)
		s->l1[j] = j < sn->l1_size ? snap_l1[j] & ~QCOW2_OFLAG_COPIED : 0;
	ret = qcow2_write_l1_entries(s, 0, s->l1_size);
	if (!ret)
		ret = block_file_flush(s->fd);
	if (ret < 0)
		goto fail;
	if (sn->disk_size != bd_size(bd)) {
		uint8_t b[8];
		be64_put(b, sn->disk_size);
		ret = pwrite_full(s->fd, b, 8, 24);
		if (ret < 0)
			goto fail;
		bd_set_size(bd, sn->disk_size);
	}
	/* Then the old active tree loses its reference. */
	qcow2_cache_clear(&s->l2_cache);
	ret = tree_refcounts(s, old_l1, old_size, -1);
	if (!ret)
		ret = qcow2_fix_copied_flags(s);
	if (!ret)
		ret = block_file_flush(s->fd);
fail:
	if (ret < 0 && err && !err[0])
		block_err(err, errlen, ret, "cannot apply snapshot: %s", strerror(-ret));
out:
	free(snap_l1);
	free(old_l1);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int qcow2_snapshot_delete(struct blockdev *bd, const char *name_or_id, char *err, size_t errlen)
{
	struct qcow2 *s = bd->priv;
	pthread_mutex_lock(&s->lock);
	qcow2_wait_inflight(s, 0, UINT64_MAX);
	int ret, i = find_snapshot(s, name_or_id);
	uint64_t *snap_l1 = NULL;
	if (i < 0) {
		ret = block_err(err, errlen, -ENOENT, "no snapshot '%s'", name_or_id);
		goto out;
	}
	if (s->corrupt) {
		ret = block_err(err, errlen, -EIO, "image is marked corrupt");
		goto out;
	}
	struct qcow2_snapshot gone = s->snaps[i];
	ret = read_l1(s, gone.l1_offset, gone.l1_size, &snap_l1);
	if (ret < 0)
		goto fail;
	/* Drop the table entry first, then the references it held. */
	struct qcow2_snapshot *snaps = xcalloc(s->nb_snapshots, sizeof(*snaps));
	unsigned n = 0;
	for (unsigned j = 0; j < s->nb_snapshots; j++)
		if ((int)j != i)
			snaps[n++] = s->snaps[j];
	ret = write_snapshot_table(s, snaps, n);
	if (ret < 0) {
		free(snaps);
		goto fail;
	}
	free(s->snaps);
	s->snaps = snaps;
	s->nb_snapshots = n;
	ret = tree_refcounts(s, snap_l1, gone.l1_size, -1);
	if (!ret && gone.l1_size)
		ret = qcow2_update_refcount(s, gone.l1_offset, (uint64_t)gone.l1_size * 8, -1);
	free(gone.id);
	free(gone.name);
	free(gone.extra);
	if (!ret)
		ret = qcow2_fix_copied_flags(s);
	if (!ret)
		ret = block_file_flush(s->fd);
fail:
	if (ret < 0 && err && !err[0])
		block_err(err, errlen, ret, "cannot delete snapshot: %s", strerror(-ret));
out:
	free(snap_l1);
	pthread_mutex_unlock(&s->lock);
	return ret;
}
