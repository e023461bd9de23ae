/* Split virtqueues (virtio 1.x, section 2.7): the only code that reads
 * descriptor tables and rings in guest memory. Everything the guest wrote
 * there is checked: ring addresses and sizes, descriptor indices, buffer
 * addresses (must be RAM), chain length (loops), indirect tables (size,
 * nesting), the order of readable and writable buffers. A queue that
 * breaks a rule is marked broken and yields nothing more until reset; the
 * caller then puts the device into NEEDS_RESET.
 *
 * Thread-safe: pop and push take the queue lock, so a pool of workers can
 * serve one queue and complete out of order. */
#ifndef XVM_HW_VIRTIO_VIRTQUEUE_H
#define XVM_HW_VIRTIO_VIRTQUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "machine/memory.h"

#define VIRTQ_MAX_SIZE        1024   /* largest queue we offer */
#define VIRTQ_MAX_INDIRECT    1024   /* descriptors in one indirect table */

#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* One popped descriptor chain: device-readable buffers first (out), then
 * device-writable ones (in), as host pointers into guest RAM. */
struct virtq_elem {
	uint16_t head;
	uint32_t gen;              /* queue generation at pop (reset detection) */
	unsigned n_out, n_in;
	uint64_t out_len, in_len;  /* total bytes */
	struct iovec *out, *in;    /* point into iov */
	uint64_t *in_gpa;          /* guest address of each in buffer */
	unsigned cap;
	struct iovec *iov;
};

struct virtqueue {
	struct guest_ram *ram;
	pthread_mutex_t lock;
	uint16_t num_max;          /* what the device offers */
	uint16_t num;              /* what the driver chose */
	bool enabled;
	bool broken;
	bool event_idx, indirect;  /* negotiated features */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t msix_vector;
	/* Host views of the rings, valid while enabled. */
	uint8_t *desc, *avail, *used;
	uint16_t last_avail;       /* next avail entry to consume */
	uint16_t used_idx;         /* our copy of used->idx */
	uint16_t signalled_used;   /* used_idx at the last interrupt */
	bool signalled_valid;
	uint32_t gen;              /* bumped on every reset */
	const char *name;          /* for messages: "virtio-blk" ... */
};

void vq_init(struct virtqueue *vq, struct guest_ram *ram, uint16_t num_max, const char *name);
void vq_destroy(struct virtqueue *vq);
/* Back to the power-on state (disabled, default size, addresses 0). */
void vq_reset(struct virtqueue *vq);
/* Is num a size the driver may choose? (power of two, 1..num_max) */
bool vq_size_valid(const struct virtqueue *vq, uint32_t num);
/* Validates the rings the driver configured and starts using them.
 * Returns 0 or -EINVAL (with the reason logged once). */
int vq_enable(struct virtqueue *vq);

/* Takes the next available chain. Returns 1 with *out set (free it with
 * vq_elem_free, or hand it back with vq_push), 0 when the queue is empty
 * or disabled, -EIO when the guest broke the ring (queue now broken). */
int vq_pop(struct virtqueue *vq, struct virtq_elem **out);
/* Returns a chain to the driver with `written` bytes written into its
 * writable buffers, and frees elem. Returns true if the driver wants an
 * interrupt now (event index / NO_INTERRUPT honoured). Elements popped
 * before a reset are dropped. */
bool vq_push(struct virtqueue *vq, struct virtq_elem *elem, uint32_t written);
/* Puts an unconsumed chain back (e.g. no room in a backend yet). */
void vq_unpop(struct virtqueue *vq, struct virtq_elem *elem);
void vq_elem_free(struct virtq_elem *elem);
/* Are there chains waiting? (does not consume) */
bool vq_has_work(struct virtqueue *vq);

/* Scatter-gather copies between a flat buffer and an iovec array, starting
 * at byte offset off of the iovec data. Return the bytes copied. */
uint64_t iov_to_buf(const struct iovec *iov, unsigned n, uint64_t off, void *buf, uint64_t len);
uint64_t iov_from_buf(const struct iovec *iov, unsigned n, uint64_t off, const void *buf, uint64_t len);

#endif
