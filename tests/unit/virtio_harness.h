/* A fake guest driver for the virtio unit tests: lays split rings out in
 * a guest_ram and posts descriptor chains the way a driver would, or the
 * way a hostile one would (raw descriptor writes). Header-only. */
#ifndef XVM_TESTS_VIRTIO_HARNESS_H
#define XVM_TESTS_VIRTIO_HARNESS_H

#include <stdint.h>
#include <string.h>

#include "machine/memory.h"

struct fake_ring {
	struct guest_ram *ram;
	uint64_t desc, avail, used;
	uint16_t num;
	uint16_t avail_idx;     /* driver's next avail index */
	uint16_t next_desc;     /* next free descriptor (no recycling) */
};

struct fake_buf {
	uint64_t gpa;
	uint32_t len;
	int writable;
};

static inline void *hva(struct guest_ram *ram, uint64_t gpa)
{
	return gpa_to_hva(ram, gpa, 1);
}

static inline void put16(struct guest_ram *ram, uint64_t gpa, uint16_t v) { memcpy(hva(ram, gpa), &v, 2); }
static inline void put32(struct guest_ram *ram, uint64_t gpa, uint32_t v) { memcpy(hva(ram, gpa), &v, 4); }
static inline void put64(struct guest_ram *ram, uint64_t gpa, uint64_t v) { memcpy(hva(ram, gpa), &v, 8); }
static inline uint16_t get16(struct guest_ram *ram, uint64_t gpa) { uint16_t v; memcpy(&v, hva(ram, gpa), 2); return v; }
static inline uint32_t get32(struct guest_ram *ram, uint64_t gpa) { uint32_t v; memcpy(&v, hva(ram, gpa), 4); return v; }

/* Rings at base: desc (16*num), avail at +0x1000, used at +0x2000. */
static inline void ring_layout(struct fake_ring *r, struct guest_ram *ram, uint64_t base, uint16_t num)
{
	memset(r, 0, sizeof(*r));
	r->ram = ram;
	r->num = num;
	r->desc = base;
	r->avail = base + 0x4000;
	r->used = base + 0x5000;
	memset(hva(ram, base), 0, 0x6000);
}

static inline void ring_set_desc(struct fake_ring *r, uint16_t i, uint64_t addr, uint32_t len,
				 uint16_t flags, uint16_t next)
{
	uint64_t d = r->desc + 16ull * i;
	put64(r->ram, d, addr);
	put32(r->ram, d + 8, len);
	put16(r->ram, d + 12, flags);
	put16(r->ram, d + 14, next);
}

/* Makes head available (raw: whatever the descriptors say). */
static inline void ring_publish(struct fake_ring *r, uint16_t head)
{
	put16(r->ram, r->avail + 4 + 2ull * (r->avail_idx % r->num), head);
	r->avail_idx++;
	put16(r->ram, r->avail + 2, r->avail_idx);
}

/* Posts a well-formed chain; returns its head. */
static inline uint16_t ring_add(struct fake_ring *r, const struct fake_buf *b, unsigned n)
{
	uint16_t head = r->next_desc;
	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)(r->next_desc % r->num);
		uint16_t flags = (b[i].writable ? 2 : 0) | (i + 1 < n ? 1 : 0);
		ring_set_desc(r, idx, b[i].gpa, b[i].len, flags, (uint16_t)((idx + 1) % r->num));
		r->next_desc++;
	}
	head %= r->num;
	ring_publish(r, head);
	return head;
}

static inline uint16_t ring_used_idx(struct fake_ring *r) { return get16(r->ram, r->used + 2); }
static inline uint32_t ring_used_id(struct fake_ring *r, uint16_t i) { return get32(r->ram, r->used + 4 + 8ull * (i % r->num)); }
static inline uint32_t ring_used_len(struct fake_ring *r, uint16_t i) { return get32(r->ram, r->used + 8 + 8ull * (i % r->num)); }
/* used_event lives after the avail ring; avail_event after the used ring. */
static inline void ring_set_used_event(struct fake_ring *r, uint16_t v) { put16(r->ram, r->avail + 4 + 2ull * r->num, v); }
static inline uint16_t ring_avail_event(struct fake_ring *r) { return get16(r->ram, r->used + 4 + 8ull * r->num); }

#endif
