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

int qcow2_snapshot_create(struct blockdev *bd, const char *name, char *err, size_t errlen)
{
	return block_err(err, errlen, -ENOTSUP, "not yet");
}

int qcow2_snapshot_apply(struct blockdev *bd, const char *name_or_id, char *err, size_t errlen)
{
	return block_err(err, errlen, -ENOTSUP, "not yet");
}

int qcow2_snapshot_delete(struct blockdev *bd, const char *name_or_id, char *err, size_t errlen)
{
	return block_err(err, errlen, -ENOTSUP, "not yet");
}
