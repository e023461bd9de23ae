/* Split virtqueue processing; see virtqueue.h. The host is little endian
 * (x86-64), as virtio 1.x rings are. */
#include "hw/virtio/virtqueue.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Offsets inside the rings. */
#define AVAIL_FLAGS      0
#define AVAIL_IDX        2
#define AVAIL_RING(i)    (4 + 2 * (i))
#define USED_FLAGS       0
#define USED_IDX         2
#define USED_RING(i)     (4 + 8 * (i))

static inline uint16_t load16(const uint8_t *p)
{
	return __atomic_load_n((const uint16_t *)(const void *)p, __ATOMIC_RELAXED);
}

static inline void store16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)(void *)p, v, __ATOMIC_RELAXED);
}

void vq_init(struct virtqueue *vq, struct guest_ram *ram, uint16_t num_max, const char *name)
{
	memset(vq, 0, sizeof(*vq));
	vq->ram = ram;
	vq->num_max = num_max;
	vq->name = name;
	pthread_mutex_init(&vq->lock, NULL);
	vq_reset(vq);
}

void vq_destroy(struct virtqueue *vq)
{
	pthread_mutex_destroy(&vq->lock);
}

void vq_reset(struct virtqueue *vq)
{
	pthread_mutex_lock(&vq->lock);
	vq->num = vq->num_max;
	vq->enabled = false;
	vq->broken = false;
	vq->event_idx = vq->indirect = false;
	vq->desc_gpa = vq->avail_gpa = vq->used_gpa = 0;
	vq->desc = vq->avail = vq->used = NULL;
	vq->msix_vector = 0xffff;
	vq->last_avail = vq->used_idx = vq->signalled_used = 0;
	vq->signalled_valid = false;
	vq->gen++;
	pthread_mutex_unlock(&vq->lock);
}

bool vq_size_valid(const struct virtqueue *vq, uint32_t num)
{
	return num >= 1 && num <= vq->num_max && IS_POW2(num);
}

int vq_enable(struct virtqueue *vq)
{
	pthread_mutex_lock(&vq->lock);
	uint64_t n = vq->num;
	const char *why = NULL;
	if (!vq_size_valid(vq, vq->num))
		why = "queue size is not a power of two or too large";
	else if ((vq->desc_gpa & 15) || (vq->avail_gpa & 1) || (vq->used_gpa & 3))
		why = "misaligned ring address";
	else if (!(vq->desc = gpa_to_hva(vq->ram, vq->desc_gpa, 16 * n)) ||
		 !(vq->avail = gpa_to_hva(vq->ram, vq->avail_gpa, 6 + 2 * n)) ||
		 !(vq->used = gpa_to_hva(vq->ram, vq->used_gpa, 6 + 8 * n)))
		why = "ring outside guest RAM";
	if (why) {
		vq->desc = vq->avail = vq->used = NULL;
		pthread_mutex_unlock(&vq->lock);
		log_once(LOG_WARN, "%s: guest enabled a bad queue (%s); device needs reset", vq->name, why);
		return -EINVAL;
	}
	/* Both sides count from zero after a reset (2.7.13.1 etc.). */
	vq->last_avail = 0;
	vq->used_idx = 0;
	vq->signalled_valid = false;
	vq->enabled = true;
	pthread_mutex_unlock(&vq->lock);
	return 0;
}

static void elem_add(struct virtq_elem *e, void *hva, uint32_t len, uint64_t gpa, bool writable)
{
	if (e->n_out + e->n_in == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 8;
		e->iov = xrealloc(e->iov, e->cap * sizeof(*e->iov));
		e->in_gpa = xrealloc(e->in_gpa, e->cap * sizeof(*e->in_gpa));
	}
	unsigned i = e->n_out + e->n_in;
	e->iov[i].iov_base = hva;
	e->iov[i].iov_len = len;
	e->in_gpa[i] = gpa;
	if (writable) {
		e->n_in++;
		e->in_len += len;
	} else {
		e->n_out++;
		e->out_len += len;
	}
}

void vq_elem_free(struct virtq_elem *e)
{
	if (!e)
		return;
	free(e->iov);
	free(e->in_gpa);
	free(e);
}

/* Each distinct reason is logged once per process: a guest cannot flood
 * the log, and every kind of mistake still shows up. */
static bool first_time(const char *why)
{
	static const char *seen[32];
	for (unsigned i = 0; i < ARRAY_SIZE(seen); i++) {
		const char *cur = __atomic_load_n(&seen[i], __ATOMIC_ACQUIRE);
		if (cur == why)
			return false;
		if (!cur && __atomic_compare_exchange_n(&seen[i], &cur, why, false,
							 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return true;
		if (cur == why)
			return false;
	}
	return false;
}

/* Marks the queue broken; the caller returns -EIO. Lock held. */
static int broken(struct virtqueue *vq, const char *why)
{
	vq->broken = true;
	if (first_time(why))
		log_warn("%s: guest broke a virtqueue (%s); device needs reset", vq->name, why);
	log_debug("%s: virtqueue broken: %s", vq->name, why);
	return -EIO;
}

/* Walks the chain starting at head into e. Lock held. */
static int walk_chain(struct virtqueue *vq, uint16_t head, struct virtq_elem *e)
{
	const uint8_t *table = vq->desc;
	unsigned table_size = vq->num;
	unsigned budget = vq->num;      /* descriptors left before we call it a loop */
	bool in_indirect = false;
	unsigned i = head;
	for (;;) {
		if (budget-- == 0)
			return broken(vq, in_indirect ? "indirect chain loops or is too long"
						      : "descriptor chain loops or exceeds the queue size");
		struct virtq_desc d;
		memcpy(&d, table + 16 * (size_t)i, sizeof(d));
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (!vq->indirect)
				return broken(vq, "indirect descriptor without the feature");
			if (in_indirect)
				return broken(vq, "nested indirect descriptor");
			if (d.flags & VIRTQ_DESC_F_NEXT)
				return broken(vq, "indirect descriptor with NEXT");
			if (d.len == 0 || d.len % 16 || d.len / 16 > VIRTQ_MAX_INDIRECT)
				return broken(vq, "indirect table of bad size");
			table = gpa_to_hva(vq->ram, d.addr, d.len);
			if (!table)
				return broken(vq, "indirect table outside guest RAM");
			table_size = d.len / 16;
			budget = table_size;
			in_indirect = true;
			i = 0;
			continue;
		}
		void *hva = gpa_to_hva(vq->ram, d.addr, d.len);
		if (!hva)
			return broken(vq, "buffer outside guest RAM");
		bool writable = d.flags & VIRTQ_DESC_F_WRITE;
		if (!writable && e->n_in)
			return broken(vq, "device-readable buffer after a writable one");
		if (d.len)
			elem_add(e, hva, d.len, d.addr, writable);
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (d.next >= table_size)
			return broken(vq, "descriptor index out of range");
		i = d.next;
	}
	e->out = e->iov;
	e->in = e->iov + e->n_out;
	return 0;
}

int vq_pop(struct virtqueue *vq, struct virtq_elem **out)
{
	*out = NULL;
	pthread_mutex_lock(&vq->lock);
	if (!vq->enabled || vq->broken) {
		pthread_mutex_unlock(&vq->lock);
		return vq->broken ? -EIO : 0;
	}
	uint16_t avail_idx = __atomic_load_n((uint16_t *)(void *)(vq->avail + AVAIL_IDX), __ATOMIC_ACQUIRE);
	if (avail_idx == vq->last_avail && vq->event_idx) {
		/* Ask for a notification at the next entry, then look once more
		 * so an entry added meanwhile is not missed. */
		store16(vq->used + USED_RING(vq->num), vq->last_avail);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		avail_idx = __atomic_load_n((uint16_t *)(void *)(vq->avail + AVAIL_IDX), __ATOMIC_ACQUIRE);
	}
	if (avail_idx == vq->last_avail) {
		pthread_mutex_unlock(&vq->lock);
		return 0;
	}
	int r;
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->num) {
		r = broken(vq, "available index moved by more than the queue size");
		pthread_mutex_unlock(&vq->lock);
		return r;
	}
	uint16_t head = load16(vq->avail + AVAIL_RING(vq->last_avail & (vq->num - 1)));
	if (head >= vq->num) {
		r = broken(vq, "head descriptor index out of range");
		pthread_mutex_unlock(&vq->lock);
		return r;
	}
	struct virtq_elem *e = xcalloc(1, sizeof(*e));
	e->head = head;
	e->gen = vq->gen;
	r = walk_chain(vq, head, e);
	if (r < 0) {
		pthread_mutex_unlock(&vq->lock);
		vq_elem_free(e);
		return r;
	}
	vq->last_avail++;
	if (vq->event_idx)
		store16(vq->used + USED_RING(vq->num), vq->last_avail);
	pthread_mutex_unlock(&vq->lock);
	*out = e;
	return 1;
}

void vq_unpop(struct virtqueue *vq, struct virtq_elem *e)
{
	pthread_mutex_lock(&vq->lock);
	if (e->gen == vq->gen && vq->enabled)
		vq->last_avail--;
	pthread_mutex_unlock(&vq->lock);
	vq_elem_free(e);
}

bool vq_has_work(struct virtqueue *vq)
{
	pthread_mutex_lock(&vq->lock);
	bool r = vq->enabled && !vq->broken &&
		 __atomic_load_n((uint16_t *)(void *)(vq->avail + AVAIL_IDX), __ATOMIC_ACQUIRE) != vq->last_avail;
	pthread_mutex_unlock(&vq->lock);
	return r;
}

/* virtio 1.x 2.7.10: notify if new_idx passed event since old. */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

bool vq_push(struct virtqueue *vq, struct virtq_elem *e, uint32_t written)
{
	bool notify = false;
	pthread_mutex_lock(&vq->lock);
	if (e->gen != vq->gen || !vq->enabled) {
		pthread_mutex_unlock(&vq->lock);
		vq_elem_free(e);
		return false;
	}
	if (written > e->in_len)
		written = (uint32_t)e->in_len;
	/* Tell the software CPU which guest pages we wrote. */
	uint64_t left = written;
	for (unsigned i = 0; i < e->n_in && left; i++) {
		uint64_t n = MIN(left, (uint64_t)e->in[i].iov_len);
		guest_ram_mark_written(vq->ram, e->in_gpa[e->n_out + i], n);
		left -= n;
	}
	unsigned slot = vq->used_idx & (vq->num - 1);
	uint8_t *u = vq->used + USED_RING(slot);
	uint32_t id = e->head;
	memcpy(u, &id, 4);
	memcpy(u + 4, &written, 4);
	vq->used_idx++;
	__atomic_store_n((uint16_t *)(void *)(vq->used + USED_IDX), vq->used_idx, __ATOMIC_RELEASE);
	guest_ram_mark_written(vq->ram, vq->used_gpa, 6 + 8 * (uint64_t)vq->num);

	/* Read the driver's suppression state only after used->idx is out. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vq->event_idx) {
		uint16_t used_event = load16(vq->avail + AVAIL_RING(vq->num));
		notify = !vq->signalled_valid || need_event(used_event, vq->used_idx, vq->signalled_used);
		vq->signalled_used = vq->used_idx;
		vq->signalled_valid = true;
	} else {
		notify = !(load16(vq->avail + AVAIL_FLAGS) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	}
	pthread_mutex_unlock(&vq->lock);
	vq_elem_free(e);
	return notify;
}

uint64_t iov_to_buf(const struct iovec *iov, unsigned n, uint64_t off, void *buf, uint64_t len)
{
	uint8_t *b = buf;
	uint64_t done = 0;
	for (unsigned i = 0; i < n && done < len; i++) {
		uint64_t l = iov[i].iov_len;
		if (off >= l) {
			off -= l;
			continue;
		}
		uint64_t c = MIN(l - off, len - done);
		memcpy(b + done, (uint8_t *)iov[i].iov_base + off, c);
		done += c;
		off = 0;
	}
	return done;
}

uint64_t iov_from_buf(const struct iovec *iov, unsigned n, uint64_t off, const void *buf, uint64_t len)
{
	const uint8_t *b = buf;
	uint64_t done = 0;
	for (unsigned i = 0; i < n && done < len; i++) {
		uint64_t l = iov[i].iov_len;
		if (off >= l) {
			off -= l;
			continue;
		}
		uint64_t c = MIN(l - off, len - done);
		memcpy((uint8_t *)iov[i].iov_base + off, b + done, c);
		done += c;
		off = 0;
	}
	return done;
}
