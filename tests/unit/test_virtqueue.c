/* Split virtqueue with crafted rings: normal chains, indirect tables,
 * event index, and every hostile-guest case (each must be refused with
 * the queue marked broken, never a crash). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>

#include "hw/virtio/virtio.h"
#include "hw/virtio/virtqueue.h"
#include "lib/util.h"
#include "virtio_harness.h"

#define RAM_SIZE   (16 * MiB)
#define RING_BASE  0x10000
#define DATA       0x100000

struct fixture {
	struct guest_ram ram;
	struct virtqueue vq;
	struct fake_ring r;
};

/* What a driver writes before enabling the queue. */
static void configure(struct fixture *f)
{
	f->vq.num = 8;
	f->vq.desc_gpa = f->r.desc;
	f->vq.avail_gpa = f->r.avail;
	f->vq.used_gpa = f->r.used;
	f->vq.indirect = true;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (guest_ram_init(&f->ram, RAM_SIZE) < 0)
		return -1;
	vq_init(&f->vq, &f->ram, 256, "test-vq");
	ring_layout(&f->r, &f->ram, RING_BASE, 8);
	configure(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vq_destroy(&f->vq);
	guest_ram_free(&f->ram);
	free(f);
	return 0;
}

static void test_pop_push(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(vq_enable(&f->vq), 0);
	struct virtq_elem *e;
	assert_int_equal(vq_pop(&f->vq, &e), 0); /* empty */

	memcpy(hva(&f->ram, DATA), "request!", 8);
	struct fake_buf b[] = { { DATA, 8, 0 }, { DATA + 0x100, 16, 1 }, { DATA + 0x200, 4, 1 } };
	uint16_t head = ring_add(&f->r, b, 3);
	assert_true(vq_has_work(&f->vq));
	assert_int_equal(vq_pop(&f->vq, &e), 1);
	assert_int_equal(e->head, head);
	assert_int_equal(e->n_out, 1);
	assert_int_equal(e->n_in, 2);
	assert_int_equal(e->out_len, 8);
	assert_int_equal(e->in_len, 20);
	assert_memory_equal(e->out[0].iov_base, "request!", 8);
	assert_ptr_equal(e->in[1].iov_base, hva(&f->ram, DATA + 0x200));
	/* Scatter across the two writable buffers. */
	char msg[20] = "0123456789abcdefWXYZ";
	assert_int_equal(iov_from_buf(e->in, e->n_in, 0, msg, 20), 20);
	assert_memory_equal(hva(&f->ram, DATA + 0x200), "WXYZ", 4);
	assert_true(vq_push(&f->vq, e, 20));
	assert_int_equal(ring_used_idx(&f->r), 1);
	assert_int_equal(ring_used_id(&f->r, 0), head);
	assert_int_equal(ring_used_len(&f->r, 0), 20);
	assert_false(vq_has_work(&f->vq));
}

static void test_written_clamped(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(vq_enable(&f->vq), 0);
	struct fake_buf b[] = { { DATA, 8, 1 } };
	ring_add(&f->r, b, 1);
	struct virtq_elem *e;
	assert_int_equal(vq_pop(&f->vq, &e), 1);
	vq_push(&f->vq, e, 4096); /* device bug or not: never claim more than the buffer */
	assert_int_equal(ring_used_len(&f->r, 0), 8);
}

static void test_indirect(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(vq_enable(&f->vq), 0);
	uint64_t table = DATA + 0x1000;
	/* Three descriptors in an indirect table: out, in, in. */
	struct fake_ring t = f->r;
	t.desc = table;
	ring_set_desc(&t, 0, DATA, 16, 1, 1);
	ring_set_desc(&t, 1, DATA + 0x100, 32, 3, 2);
	ring_set_desc(&t, 2, DATA + 0x200, 1, 2, 0);
	ring_set_desc(&f->r, 0, table, 48, VIRTQ_DESC_F_INDIRECT, 0);
	ring_publish(&f->r, 0);
	struct virtq_elem *e;
	assert_int_equal(vq_pop(&f->vq, &e), 1);
	assert_int_equal(e->n_out, 1);
	assert_int_equal(e->n_in, 2);
	assert_int_equal(e->in_len, 33);
	vq_push(&f->vq, e, 33);
	assert_int_equal(ring_used_idx(&f->r), 1);
}

static void test_event_idx(void **state)
{
	struct fixture *f = *state;
	f->vq.event_idx = true;
	assert_int_equal(vq_enable(&f->vq), 0);
	struct fake_buf b[] = { { DATA, 8, 1 } };
	struct virtq_elem *e;
	/* The device asks to be notified at the next index when idle. */
	assert_int_equal(vq_pop(&f->vq, &e), 0);
	assert_int_equal(ring_avail_event(&f->r), 0);
	ring_add(&f->r, b, 1);
	ring_add(&f->r, b, 1);
	ring_add(&f->r, b, 1);
	assert_int_equal(vq_pop(&f->vq, &e), 1);
	assert_int_equal(ring_avail_event(&f->r), 1);
	/* Driver wants an interrupt only once used idx passes 2. */
	ring_set_used_event(&f->r, 2);
	assert_true(vq_push(&f->vq, e, 1));   /* first push always signals */
	assert_int_equal(vq_pop(&f->vq, &e), 1);
	assert_false(vq_push(&f->vq, e, 1));  /* used 2: event 2 not yet passed */
	assert_int_equal(vq_pop(&f->vq, &e), 1);
	assert_true(vq_push(&f->vq, e, 1));   /* used 3 crosses event 2 */
}

static void test_no_interrupt_flag(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(vq_enable(&f->vq), 0);
	put16(&f->ram, f->r.avail, VIRTQ_AVAIL_F_NO_INTERRUPT);
	struct fake_buf b[] = { { DATA, 8, 1 } };
	ring_add(&f->r, b, 1);
	struct virtq_elem *e;
	assert_int_equal(vq_pop(&f->vq, &e), 1);
	assert_false(vq_push(&f->vq, e, 1));
}

static void test_reset_drops_inflight(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(vq_enable(&f->vq), 0);
	struct fake_buf b[] = { { DATA, 8, 1 } };
	ring_add(&f->r, b, 1);
	struct virtq_elem *e;
	assert_int_equal(vq_pop(&f->vq, &e), 1);
	vq_reset(&f->vq);
	assert_false(vq_push(&f->vq, e, 8)); /* stale: must not touch the old rings */
	assert_int_equal(ring_used_idx(&f->r), 0);
}

/* ---- hostile rings ---- */

/* Publishes head with the descriptor table already written, pops, and
 * expects the queue to refuse it and stay broken. */
static void expect_broken(struct fixture *f, uint16_t head)
{
	ring_publish(&f->r, head);
	struct virtq_elem *e = (void *)1;
	assert_int_equal(vq_pop(&f->vq, &e), -EIO);
	assert_null(e);
	assert_true(f->vq.broken);
	assert_int_equal(vq_pop(&f->vq, &e), -EIO);
	assert_int_equal(ring_used_idx(&f->r), 0);
	/* A reset brings it back. */
	vq_reset(&f->vq);
	assert_false(f->vq.broken);
	configure(f);
	f->r.avail_idx = 0;
}

static void test_buffer_outside_ram(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(vq_enable(&f->vq), 0);
	ring_set_desc(&f->r, 0, RAM_SIZE - 4, 8, 0, 0); /* straddles the end */
	expect_broken(f, 0);
	assert_int_equal(vq_enable(&f->vq), 0);
	ring_set_desc(&f->r, 1, 0xFEE00000, 4, 0, 0);    /* the LAPIC, not RAM */
	expect_broken(f, 1);
}

static void test_length_overflow(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(vq_enable(&f->vq), 0);
	ring_set_desc(&f->r, 0, UINT64_MAX - 16, 0xffffffff, 0, 0); /* wraps */
	expect_broken(f, 0);
}

static void test_descriptor_loop(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(vq_enable(&f->vq), 0);
	ring_set_desc(&f->r, 0, DATA, 8, VIRTQ_DESC_F_NEXT, 1);
	ring_set_desc(&f->r, 1, DATA, 8, VIRTQ_DESC_F_NEXT, 0);
	expect_broken(f, 0);
}

static void test_chain_longer_than_queue(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(vq_enable(&f->vq), 0);
	/* 8 descriptors each pointing to the next, the last back to 3:
	 * longer than the queue without being a simple 2-cycle. */
	for (uint16_t i = 0; i < 8; i++)
		ring_set_desc(&f->r, i, DATA, 1, VIRTQ_DESC_F_NEXT, i == 7 ? 3 : i + 1);
	expect_broken(f, 0);
}

static void test_next_out_of_range(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(vq_enable(&f->vq), 0);
	ring_set_desc(&f->r, 0, DATA, 8, VIRTQ_DESC_F_NEXT, 8);
	expect_broken(f, 0);
	assert_int_equal(vq_enable(&f->vq), 0);
	expect_broken(f, 9); /* head out of range */
}

static void test_avail_index_jump(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(vq_enable(&f->vq), 0);
	ring_set_desc(&f->r, 0, DATA, 8, 0, 0);
	put16(&f->ram, f->r.avail + 2, 100); /* 100 new entries in an 8-entry ring */
	struct virtq_elem *e;
	assert_int_equal(vq_pop(&f->vq, &e), -EIO);
	assert_true(f->vq.broken);
}

static void test_wrong_direction_order(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(vq_enable(&f->vq), 0);
	ring_set_desc(&f->r, 0, DATA, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	ring_set_desc(&f->r, 1, DATA + 8, 8, 0, 0); /* readable after writable */
	expect_broken(f, 0);
}

static void test_indirect_bad(void **state)
{
	struct fixture *f = *state;
	uint64_t table = DATA + 0x1000;
	struct fake_ring t = f->r;
	t.desc = table;

	/* Size not a multiple of 16. */
	assert_int_equal(vq_enable(&f->vq), 0);
	ring_set_desc(&f->r, 0, table, 24, VIRTQ_DESC_F_INDIRECT, 0);
	expect_broken(f, 0);

	/* Zero size. */
	assert_int_equal(vq_enable(&f->vq), 0);
	ring_set_desc(&f->r, 0, table, 0, VIRTQ_DESC_F_INDIRECT, 0);
	expect_broken(f, 0);

	/* Nested indirect. */
	assert_int_equal(vq_enable(&f->vq), 0);
	ring_set_desc(&t, 0, table, 16, VIRTQ_DESC_F_INDIRECT, 0);
	ring_set_desc(&f->r, 0, table, 16, VIRTQ_DESC_F_INDIRECT, 0);
	expect_broken(f, 0);

	/* INDIRECT together with NEXT. */
	assert_int_equal(vq_enable(&f->vq), 0);
	ring_set_desc(&t, 0, DATA, 16, 0, 0);
	ring_set_desc(&f->r, 0, table, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	expect_broken(f, 0);

	/* Loop inside the table. */
	assert_int_equal(vq_enable(&f->vq), 0);
	ring_set_desc(&t, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
	ring_set_desc(&t, 1, DATA, 16, VIRTQ_DESC_F_NEXT, 0);
	ring_set_desc(&f->r, 0, table, 32, VIRTQ_DESC_F_INDIRECT, 0);
	expect_broken(f, 0);

	/* Table outside RAM. */
	assert_int_equal(vq_enable(&f->vq), 0);
	ring_set_desc(&f->r, 0, RAM_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	expect_broken(f, 0);

	/* Indirect without the feature negotiated. */
	assert_int_equal(vq_enable(&f->vq), 0);
	f->vq.indirect = false;
	ring_set_desc(&t, 0, DATA, 16, 0, 0);
	ring_set_desc(&f->r, 0, table, 16, VIRTQ_DESC_F_INDIRECT, 0);
	expect_broken(f, 0);
}

static void test_bad_queue_config(void **state)
{
	struct fixture *f = *state;
	assert_false(vq_size_valid(&f->vq, 0));
	assert_false(vq_size_valid(&f->vq, 7));
	assert_false(vq_size_valid(&f->vq, 100));
	assert_false(vq_size_valid(&f->vq, 512)); /* above num_max 256 */
	assert_true(vq_size_valid(&f->vq, 256));
	assert_true(vq_size_valid(&f->vq, 1));

	f->vq.num = 6;
	assert_int_equal(vq_enable(&f->vq), -EINVAL);
	assert_false(f->vq.enabled);
	f->vq.num = 8;
	f->vq.desc_gpa = RING_BASE + 8; /* misaligned */
	assert_int_equal(vq_enable(&f->vq), -EINVAL);
	f->vq.desc_gpa = RAM_SIZE - 64; /* table runs past RAM */
	assert_int_equal(vq_enable(&f->vq), -EINVAL);
	f->vq.desc_gpa = RING_BASE;
	f->vq.used_gpa = RAM_SIZE - 8;
	assert_int_equal(vq_enable(&f->vq), -EINVAL);
	struct virtq_elem *e;
	assert_int_equal(vq_pop(&f->vq, &e), 0); /* disabled: nothing */
}

/* The device core: notifications before DRIVER_OK never reach the
 * device, and a broken ring sets NEEDS_RESET with a config interrupt. */
static int notified, transport_irqs;
static uint8_t last_isr;

static void count_notify(struct virtio_dev *v, unsigned q) { notified++; }
static void count_irq(struct virtio_dev *v, uint16_t vec, uint8_t bit) { transport_irqs++; last_isr = bit; }
static const struct virtio_device_ops counting_ops = { .queue_notify = count_notify };
static const struct virtio_transport_ops counting_transport = { .notify = count_irq };

static void test_core_state_machine(void **state)
{
	struct fixture *f = *state;
	struct virtio_dev v;
	virtio_dev_init(&v, NULL, &f->ram, "test-dev", 4, 0, 1, 8, &counting_ops, NULL);
	v.transport = &counting_transport;
	notified = transport_irqs = 0;

	v.vqs[0].desc_gpa = f->r.desc;
	v.vqs[0].avail_gpa = f->r.avail;
	v.vqs[0].used_gpa = f->r.used;
	assert_int_equal(virtio_queue_enable(&v, 0), 0);
	virtio_queue_kick(&v, 0);
	assert_int_equal(notified, 0); /* before DRIVER_OK: ignored */

	virtio_set_status(&v, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	v.guest_features = 1ULL << 40; /* not offered */
	virtio_set_status(&v, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	assert_false(virtio_get_status(&v) & VIRTIO_STATUS_FEATURES_OK);
	v.guest_features = 0; /* no VERSION_1: legacy is refused too */
	virtio_set_status(&v, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	assert_false(virtio_get_status(&v) & VIRTIO_STATUS_FEATURES_OK);
	v.guest_features = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_RING_EVENT_IDX;
	virtio_set_status(&v, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	assert_true(virtio_get_status(&v) & VIRTIO_STATUS_FEATURES_OK);
	assert_true(v.vqs[0].event_idx);
	assert_false(v.vqs[0].indirect);
	virtio_set_status(&v, 0x0f);
	assert_int_equal(notified, 1); /* DRIVER_OK serves queued buffers */
	virtio_queue_kick(&v, 0);
	assert_int_equal(notified, 2);
	virtio_queue_kick(&v, 5); /* no such queue: ignored */
	assert_int_equal(notified, 2);

	/* A hostile chain: NEEDS_RESET and one config interrupt. */
	ring_set_desc(&f->r, 0, DATA, 8, VIRTQ_DESC_F_NEXT, 0);
	ring_publish(&f->r, 0);
	struct virtq_elem *e;
	assert_int_equal(virtio_pop(&v, 0, &e), -EIO);
	assert_true(virtio_get_status(&v) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(transport_irqs, 1);
	assert_int_equal(last_isr, VIRTIO_ISR_CONFIG);
	assert_int_equal(virtio_pop(&v, 0, &e), -EIO);
	assert_int_equal(transport_irqs, 1); /* once */
	/* The driver cannot clear NEEDS_RESET except by resetting. */
	virtio_set_status(&v, 0x0f);
	assert_true(virtio_get_status(&v) & VIRTIO_STATUS_NEEDS_RESET);
	virtio_queue_kick(&v, 0);
	assert_int_equal(notified, 2);
	virtio_set_status(&v, 0);
	assert_int_equal(virtio_get_status(&v), 0);
	assert_false(v.vqs[0].enabled);
	assert_int_equal(v.guest_features, 0);
	virtio_dev_destroy(&v);
}

/* Garbage rings: random descriptors (addresses near RAM's edges, random
 * flags, lengths, next indices, indirect tables) must only ever produce a
 * chain whose buffers all lie in RAM, an empty queue, or a broken one. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static uint64_t random_addr(void)
{
	static const uint64_t bases[] = { 0, DATA, RAM_SIZE - 64, RAM_SIZE, 0xfee00000, UINT64_MAX - 32 };
	return bases[rnd() % ARRAY_SIZE(bases)] + rnd() % 128;
}

static void test_random_rings(void **state)
{
	struct fixture *f = *state;
	uint64_t table = DATA + 0x8000;
	struct fake_ring t = f->r;
	t.desc = table;
	unsigned popped = 0, refused = 0;
	for (int iter = 0; iter < 3000; iter++) {
		vq_reset(&f->vq);
		configure(f);
		f->vq.event_idx = rnd() & 1;
		f->r.avail_idx = 0;
		assert_int_equal(vq_enable(&f->vq), 0);
		for (uint16_t i = 0; i < 8; i++) {
			uint16_t flags = rnd() % 8;
			uint64_t addr = (flags & VIRTQ_DESC_F_INDIRECT) && (rnd() & 1) ? table : random_addr();
			uint32_t len = (rnd() & 1) ? (uint32_t)(rnd() % 80) : (uint32_t)rnd();
			ring_set_desc(&f->r, i, addr, len, flags, (uint16_t)(rnd() % 10));
			ring_set_desc(&t, i, random_addr(), (uint32_t)(rnd() % 64), (uint16_t)(rnd() % 8), (uint16_t)(rnd() % 10));
		}
		unsigned n = 1 + rnd() % 3;
		for (unsigned k = 0; k < n; k++)
			ring_publish(&f->r, (uint16_t)(rnd() % 10));
		if (rnd() % 8 == 0)
			put16(&f->ram, f->r.avail + 2, (uint16_t)rnd());
		for (unsigned k = 0; k < n + 1; k++) {
			struct virtq_elem *e;
			int r = vq_pop(&f->vq, &e);
			assert_true(r == 1 || r == 0 || r == -EIO);
			refused += r == -EIO;
			if (r != 1)
				break;
			popped++;
			for (unsigned i = 0; i < e->n_out + e->n_in; i++) {
				uint8_t *p = e->iov[i].iov_base;
				assert_true(p >= f->ram.host && p + e->iov[i].iov_len <= f->ram.host + RAM_SIZE);
			}
			assert_true(e->n_out + e->n_in <= 8 + 8);
			vq_push(&f->vq, e, (uint32_t)rnd());
		}
	}
	/* The generator must exercise both outcomes to mean anything. */
	assert_true(popped > 100);
	assert_true(refused > 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pop_push, setup, teardown),
		cmocka_unit_test_setup_teardown(test_written_clamped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indirect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_idx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_interrupt_flag, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_drops_inflight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffer_outside_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_length_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_descriptor_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_longer_than_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_next_out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_avail_index_jump, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_direction_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indirect_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_queue_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_state_machine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_rings, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
