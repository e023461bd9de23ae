/* virtio-blk (virtio 1.x section 5.2) on the block-device API. Requests
 * are served by a small pool of worker threads, never on the vCPU thread
 * that rang the doorbell: a notification only wakes a worker; workers pop
 * chains, run them with the synchronous block calls (several in flight at
 * once) and complete them in any order under the queue lock. */
#include "block/block.h"
#include "hw/virtio/devices.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define VIRTIO_BLK_F_SIZE_MAX     1
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK           0
#define VIRTIO_BLK_S_IOERR        1
#define VIRTIO_BLK_S_UNSUPP       2

/* struct virtio_blk_config offsets. */
#define CFG_CAPACITY              0
#define CFG_SIZE_MAX              8
#define CFG_SEG_MAX               12
#define CFG_BLK_SIZE              20
#define CFG_MAX_DISCARD_SECTORS   36
#define CFG_MAX_DISCARD_SEG       40
#define CFG_DISCARD_ALIGNMENT     44
#define CFG_MAX_WZ_SECTORS        48
#define CFG_MAX_WZ_SEG            52
#define CFG_WZ_MAY_UNMAP          56
#define CFG_LEN                   60

#define SECTOR                    512u
#define QUEUE_SIZE                256
#define SEG_MAX                   254       /* data segments per request */
#define SIZE_MAX_BYTES            (1u << 20) /* per segment */
#define MAX_DISCARD_SECTORS       (1u << 22) /* 2 GiB per segment */
#define MAX_DISCARD_SEGS          16
#define DISCARD_UNMAP_FLAG        1u
#define BLK_WORKERS               4
#define BLK_ID_BYTES              20
#define MAX_REQUEST_BYTES         (1u << 30)

struct virtio_blk {
	struct virtio_dev vdev;
	struct blockdev *bd;
	bool readonly;
	uint64_t sectors;
	char serial[BLK_ID_BYTES];

	pthread_mutex_t lock;
	pthread_cond_t wake;       /* workers wait for kicks */
	pthread_cond_t idle;       /* reset waits for busy == 0 */
	uint64_t kicks;
	unsigned busy;
	bool paused, stop;
	pthread_t workers[BLK_WORKERS];
	unsigned nworkers;
};

struct blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct blk_range {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

static bool range_ok(struct virtio_blk *b, uint64_t sector, uint64_t bytes)
{
	return sector <= b->sectors && bytes / SECTOR <= b->sectors - sector;
}

/* Runs block I/O across a scatter list: rw on [off, off+len) of the disk
 * from the iovec data starting at iov_off. */
static int rw_iov(struct virtio_blk *b, bool write, const struct iovec *iov, unsigned n,
		  uint64_t iov_off, uint64_t len, uint64_t off)
{
	for (unsigned i = 0; i < n && len; i++) {
		uint64_t l = iov[i].iov_len;
		if (iov_off >= l) {
			iov_off -= l;
			continue;
		}
		uint64_t c = MIN(l - iov_off, len);
		uint8_t *p = (uint8_t *)iov[i].iov_base + iov_off;
		int r = write ? block_pwrite(b->bd, p, c, off) : block_pread(b->bd, p, c, off);
		if (r < 0)
			return r;
		off += c;
		len -= c;
		iov_off = 0;
	}
	return 0;
}

static uint8_t do_ranges(struct virtio_blk *b, const struct virtq_elem *e, bool zeroes)
{
	uint64_t bytes = e->out_len - sizeof(struct blk_req_hdr);
	if (b->readonly)
		return VIRTIO_BLK_S_IOERR;
	if (bytes == 0 || bytes % sizeof(struct blk_range) || bytes / sizeof(struct blk_range) > MAX_DISCARD_SEGS) {
		log_once(LOG_WARN, "virtio-blk: malformed discard/write-zeroes segment list");
		return VIRTIO_BLK_S_UNSUPP;
	}
	for (uint64_t off = 0; off < bytes; off += sizeof(struct blk_range)) {
		struct blk_range r;
		iov_to_buf(e->out, e->n_out, sizeof(struct blk_req_hdr) + off, &r, sizeof(r));
		if (r.num_sectors > MAX_DISCARD_SECTORS || !range_ok(b, r.sector, (uint64_t)r.num_sectors * SECTOR))
			return VIRTIO_BLK_S_IOERR;
		if (r.flags & ~DISCARD_UNMAP_FLAG || (!zeroes && r.flags))
			return VIRTIO_BLK_S_UNSUPP;
		int ret;
		if (zeroes)
			ret = block_write_zeroes(b->bd, r.sector * SECTOR, (uint64_t)r.num_sectors * SECTOR,
						 (r.flags & DISCARD_UNMAP_FLAG) ? BLOCK_ZERO_MAY_UNMAP : 0);
		else
			ret = block_discard(b->bd, r.sector * SECTOR, (uint64_t)r.num_sectors * SECTOR);
		if (ret == -ENOTSUP || ret == -EOPNOTSUPP)
			return zeroes ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK; /* discard is a hint */
		if (ret < 0)
			return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

/* Serves one request; returns the bytes written into the chain. */
static uint32_t handle_request(struct virtio_blk *b, struct virtq_elem *e)
{
	struct blk_req_hdr h;
	if (e->in_len < 1) {
		/* Nowhere to put the status: give the chain back unanswered. */
		log_once(LOG_WARN, "virtio-blk: request without a status byte");
		return 0;
	}
	uint64_t data_in = e->in_len - 1; /* writable bytes before the status */
	uint8_t status = VIRTIO_BLK_S_OK;
	uint32_t written = 0;
	if (e->in_len > MAX_REQUEST_BYTES || e->out_len > MAX_REQUEST_BYTES) {
		/* Real drivers stay far below (seg_max * size_max); the used
		 * ring's 32-bit length could not even describe it. */
		log_once(LOG_WARN, "virtio-blk: request larger than %u bytes refused", MAX_REQUEST_BYTES);
		status = VIRTIO_BLK_S_IOERR;
		goto done;
	}
	if (e->out_len < sizeof(h) || iov_to_buf(e->out, e->n_out, 0, &h, sizeof(h)) != sizeof(h)) {
		log_once(LOG_WARN, "virtio-blk: request header missing or not device-readable");
		status = VIRTIO_BLK_S_IOERR;
		goto done;
	}
	switch (h.type) {
	case VIRTIO_BLK_T_IN: {
		if (e->out_len != sizeof(h) || data_in % SECTOR || !range_ok(b, h.sector, data_in)) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		if (rw_iov(b, false, e->in, e->n_in, 0, data_in, h.sector * SECTOR) < 0)
			status = VIRTIO_BLK_S_IOERR;
		else
			written = (uint32_t)data_in;
		break;
	}
	case VIRTIO_BLK_T_OUT: {
		uint64_t len = e->out_len - sizeof(h);
		if (b->readonly || data_in != 0 || len % SECTOR || !range_ok(b, h.sector, len)) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		if (rw_iov(b, true, e->out, e->n_out, sizeof(h), len, h.sector * SECTOR) < 0)
			status = VIRTIO_BLK_S_IOERR;
		break;
	}
	case VIRTIO_BLK_T_FLUSH:
		if (block_flush(b->bd) < 0)
			status = VIRTIO_BLK_S_IOERR;
		break;
	case VIRTIO_BLK_T_GET_ID: {
		uint64_t n = MIN(data_in, (uint64_t)BLK_ID_BYTES);
		written = (uint32_t)iov_from_buf(e->in, e->n_in, 0, b->serial, n);
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
		status = do_ranges(b, e, false);
		break;
	case VIRTIO_BLK_T_WRITE_ZEROES:
		status = do_ranges(b, e, true);
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
done:
	/* The status byte is the last writable byte of the chain. */
	iov_from_buf(e->in, e->n_in, e->in_len - 1, &status, 1);
	return written + 1;
}

static void *worker_main(void *opaque)
{
	struct virtio_blk *b = opaque;
	uint64_t seen = 0;
	pthread_mutex_lock(&b->lock);
	for (;;) {
		while (!b->stop && (b->paused || seen == b->kicks))
			pthread_cond_wait(&b->wake, &b->lock);
		if (b->stop)
			break;
		seen = b->kicks;
		b->busy++;
		pthread_mutex_unlock(&b->lock);
		for (;;) {
			if (__atomic_load_n(&b->paused, __ATOMIC_ACQUIRE))
				break;
			struct virtq_elem *e;
			if (virtio_pop(&b->vdev, 0, &e) <= 0)
				break;
			/* More may be waiting: let another worker look while we
			 * serve this one, so requests overlap. */
			pthread_mutex_lock(&b->lock);
			b->kicks++;
			seen = b->kicks;
			pthread_cond_signal(&b->wake);
			pthread_mutex_unlock(&b->lock);
			uint32_t written = handle_request(b, e);
			virtio_push(&b->vdev, 0, e, written);
		}
		pthread_mutex_lock(&b->lock);
		if (--b->busy == 0)
			pthread_cond_broadcast(&b->idle);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

static void blk_queue_notify(struct virtio_dev *v, unsigned q)
{
	struct virtio_blk *b = v->priv;
	pthread_mutex_lock(&b->lock);
	b->kicks++;
	pthread_cond_signal(&b->wake);
	pthread_mutex_unlock(&b->lock);
}

static void blk_reset(struct virtio_dev *v)
{
	struct virtio_blk *b = v->priv;
	pthread_mutex_lock(&b->lock);
	b->paused = true;
	while (b->busy)
		pthread_cond_wait(&b->idle, &b->lock);
	b->paused = false;
	pthread_mutex_unlock(&b->lock);
}

static const struct virtio_device_ops blk_ops = {
	.queue_notify = blk_queue_notify,
	.reset = blk_reset,
};

struct virtio_dev *virtio_blk_new(struct machine *m, struct guest_ram *ram, struct blockdev *bd,
				  bool readonly, const char *serial)
{
	struct virtio_blk *b = xcalloc(1, sizeof(*b));
	b->bd = bd;
	b->readonly = readonly || block_readonly(bd);
	b->sectors = block_size(bd) / SECTOR;
	if (serial)
		/* Not NUL-terminated when 20 long, as the spec allows. */
		memcpy(b->serial, serial, MIN(strlen(serial), sizeof(b->serial)));
	uint64_t features = 1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_SIZE_MAX |
			    1ULL << VIRTIO_BLK_F_BLK_SIZE | 1ULL << VIRTIO_BLK_F_FLUSH;
	if (b->readonly)
		features |= 1ULL << VIRTIO_BLK_F_RO;
	else
		features |= 1ULL << VIRTIO_BLK_F_DISCARD | 1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
	struct virtio_dev *v = &b->vdev;
	virtio_dev_init(v, m, ram, "virtio-blk", VIRTIO_ID_BLOCK, features, 1, QUEUE_SIZE, &blk_ops, b);
	v->config_len = CFG_LEN;
	virtio_config_set64(v, CFG_CAPACITY, b->sectors);
	virtio_config_set32(v, CFG_SIZE_MAX, SIZE_MAX_BYTES);
	virtio_config_set32(v, CFG_SEG_MAX, SEG_MAX);
	virtio_config_set32(v, CFG_BLK_SIZE, SECTOR);
	virtio_config_set32(v, CFG_MAX_DISCARD_SECTORS, MAX_DISCARD_SECTORS);
	virtio_config_set32(v, CFG_MAX_DISCARD_SEG, MAX_DISCARD_SEGS);
	virtio_config_set32(v, CFG_DISCARD_ALIGNMENT, MAX(block_alignment(bd), SECTOR) / SECTOR);
	virtio_config_set32(v, CFG_MAX_WZ_SECTORS, MAX_DISCARD_SECTORS);
	virtio_config_set32(v, CFG_MAX_WZ_SEG, MAX_DISCARD_SEGS);
	v->config[CFG_WZ_MAY_UNMAP] = 1;

	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->wake, NULL);
	pthread_cond_init(&b->idle, NULL);
	for (unsigned i = 0; i < BLK_WORKERS; i++) {
		if (pthread_create(&b->workers[i], NULL, worker_main, b) != 0)
			break;
		b->nworkers++;
	}
	if (!b->nworkers)
		die("virtio-blk: cannot start worker threads");
	return v;
}

void virtio_blk_free(struct virtio_dev *v)
{
	if (!v)
		return;
	struct virtio_blk *b = v->priv;
	pthread_mutex_lock(&b->lock);
	b->stop = true;
	pthread_cond_broadcast(&b->wake);
	pthread_mutex_unlock(&b->lock);
	for (unsigned i = 0; i < b->nworkers; i++)
		pthread_join(b->workers[i], NULL);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->wake);
	pthread_cond_destroy(&b->idle);
	virtio_dev_destroy(v);
	free(b);
}
