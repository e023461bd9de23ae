/* virtio-mmio version 2 register semantics, driven like a guest driver:
 * identification, feature windows, queue setup, interrupt status/ACK,
 * config generation, and what a hostile driver gets for odd accesses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "hw/virtio/devices.h"
#include "hw/virtio/transport.h"
#include "lib/util.h"
#include "virtio_harness.h"

#define RAM_SIZE  (16 * MiB)
#define RING      0x10000
#define BUF       0x100000

struct fixture {
	struct guest_ram ram;
	struct virtio_dev *v;
	struct virtio_mmio *vm;
	struct fake_ring r;
};

static int pulses;
static void count_pulse(struct virtio_mmio *vm) { pulses++; }

static uint32_t rd(struct fixture *f, uint64_t off)
{
	return (uint32_t)virtio_mmio_ops.read(f->vm, off, 4);
}

static void wr(struct fixture *f, uint64_t off, uint32_t v)
{
	virtio_mmio_ops.write(f->vm, off, 4, v);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_int_equal(guest_ram_init(&f->ram, RAM_SIZE), 0);
	f->v = virtio_rng_new(NULL, &f->ram);
	f->vm = virtio_mmio_new(f->v, 0xfe000000, 5);
	f->vm->pulse_irq = count_pulse;
	pulses = 0;
	ring_layout(&f->r, &f->ram, RING, 4);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	free(f->vm);
	virtio_rng_free(f->v);
	guest_ram_free(&f->ram);
	free(f);
	return 0;
}

static void driver_init(struct fixture *f)
{
	wr(f, 0x070, 0);
	wr(f, 0x070, 1);
	wr(f, 0x070, 3);
	wr(f, 0x014, 1);
	assert_true(rd(f, 0x010) & 1); /* VERSION_1 */
	wr(f, 0x024, 1);
	wr(f, 0x020, 1);
	wr(f, 0x024, 0);
	wr(f, 0x020, 1u << VIRTIO_F_RING_EVENT_IDX);
	wr(f, 0x070, 0x0b);
	assert_int_equal(rd(f, 0x070), 0x0b);
	wr(f, 0x030, 0);
	assert_int_equal(rd(f, 0x034), 64);
	assert_int_equal(rd(f, 0x044), 0);
	wr(f, 0x038, 4);
	wr(f, 0x080, (uint32_t)f->r.desc);
	wr(f, 0x084, 0);
	wr(f, 0x090, (uint32_t)f->r.avail);
	wr(f, 0x094, 0);
	wr(f, 0x0a0, (uint32_t)f->r.used);
	wr(f, 0x0a4, 0);
	wr(f, 0x044, 1);
	assert_int_equal(rd(f, 0x044), 1);
	wr(f, 0x070, 0x0f);
}

static void test_identification(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(rd(f, 0x000), 0x74726976);
	assert_int_equal(rd(f, 0x004), 2);
	assert_int_equal(rd(f, 0x008), VIRTIO_ID_RNG);
	assert_int_equal(rd(f, 0x00c), VIRTIO_MMIO_VENDOR);
	/* Only aligned 32-bit register accesses count. */
	assert_int_equal(virtio_mmio_ops.read(f->vm, 0x000, 2), 0);
	assert_int_equal(virtio_mmio_ops.read(f->vm, 0x001, 4), 0);
	virtio_mmio_ops.write(f->vm, 0x070, 1, 1);
	assert_int_equal(rd(f, 0x070), 0);
	/* Queues that do not exist: max 0, writes dropped. */
	wr(f, 0x030, 9);
	assert_int_equal(rd(f, 0x034), 0);
	wr(f, 0x044, 1);
	assert_int_equal(rd(f, 0x044), 0);
	assert_int_equal(rd(f, 0x0b0), 0xffffffff); /* no shared memory */
}

static void test_queue_and_interrupt(void **state)
{
	struct fixture *f = *state;
	driver_init(f);
	struct fake_buf b[] = { { BUF, 32, 1 } };
	ring_add(&f->r, b, 1);
	wr(f, 0x050, 0);
	assert_int_equal(ring_used_idx(&f->r), 1);
	assert_int_equal(ring_used_len(&f->r, 0), 32);
	assert_int_equal(pulses, 1);
	assert_int_equal(rd(f, 0x060), VIRTIO_ISR_QUEUE);
	wr(f, 0x064, VIRTIO_ISR_QUEUE);
	assert_int_equal(rd(f, 0x060), 0);
	/* Queue registers are frozen while the queue is live. */
	wr(f, 0x038, 2);
	wr(f, 0x080, 0x5000);
	assert_int_equal(f->v->vqs[0].num, 4);
	assert_int_equal(f->v->vqs[0].desc_gpa, f->r.desc);
	/* Features are frozen after FEATURES_OK. */
	wr(f, 0x024, 0);
	wr(f, 0x020, 0);
	assert_true(f->v->guest_features & (1ULL << VIRTIO_F_RING_EVENT_IDX));
	/* Config changes bump the generation and raise a config interrupt. */
	uint32_t gen = rd(f, 0x0fc);
	virtio_config_changed(f->v);
	assert_int_equal(rd(f, 0x0fc), gen + 1);
	assert_int_equal(rd(f, 0x060), VIRTIO_ISR_CONFIG);
	assert_int_equal(pulses, 2);
	/* Reset. */
	wr(f, 0x070, 0);
	assert_int_equal(rd(f, 0x070), 0);
	assert_int_equal(rd(f, 0x044), 0);
	assert_int_equal(rd(f, 0x060), 0);
}

static void test_hostile_queue(void **state)
{
	struct fixture *f = *state;
	wr(f, 0x070, 1);
	wr(f, 0x070, 3);
	wr(f, 0x024, 1);
	wr(f, 0x020, 1);
	wr(f, 0x070, 0x0b);
	wr(f, 0x030, 0);
	wr(f, 0x038, 3);                  /* not a power of two: ignored */
	assert_int_equal(f->v->vqs[0].num, 64);
	wr(f, 0x038, 4);
	wr(f, 0x080, 0xffff0000);         /* outside RAM */
	wr(f, 0x090, (uint32_t)f->r.avail);
	wr(f, 0x0a0, (uint32_t)f->r.used);
	wr(f, 0x044, 1);
	assert_int_equal(rd(f, 0x044), 0);
	assert_true(rd(f, 0x070) & VIRTIO_STATUS_NEEDS_RESET);
	wr(f, 0x050, 0);                  /* notify: ignored, no crash */
	wr(f, 0x050, 0xffff);
	assert_int_equal(pulses, 0);      /* not DRIVER_OK yet: no config irq */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identification, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_and_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_queue, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
