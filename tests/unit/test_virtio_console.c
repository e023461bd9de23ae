/* virtio-console: guest output reaches the sink, host input fills the
 * guest's receive buffers, input waits (bounded) while the guest posts no
 * buffers and the sink hears when there is room again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "hw/virtio/devices.h"
#include "lib/util.h"
#include "virtio_harness.h"

#define RAM_SIZE (4 * MiB)
#define BUF      0x100000

static char out[256];
static size_t out_len;
static int room_calls;

static void sink_write(void *opaque, const uint8_t *buf, size_t len)
{
	memcpy(out + out_len, buf, len);
	out_len += len;
}
static void sink_room(void *opaque) { room_calls++; }

static void test_console(void **state)
{
	struct guest_ram ram;
	assert_int_equal(guest_ram_init(&ram, RAM_SIZE), 0);
	struct virtio_console_sink sink = { sink_write, sink_room, NULL };
	struct virtio_dev *v = virtio_console_new(NULL, &ram, &sink);
	assert_int_equal(v->nvqs, 2);
	assert_int_equal(virtio_config_read(v, 4, 4), 1); /* max_nr_ports */
	struct fake_ring rx, tx;
	ring_layout(&rx, &ram, 0x10000, 4);
	ring_layout(&tx, &ram, 0x20000, 4);
	struct fake_ring *rings[2] = { &rx, &tx };
	for (unsigned q = 0; q < 2; q++) {
		v->vqs[q].num = 4;
		v->vqs[q].desc_gpa = rings[q]->desc;
		v->vqs[q].avail_gpa = rings[q]->avail;
		v->vqs[q].used_gpa = rings[q]->used;
		assert_int_equal(virtio_queue_enable(v, q), 0);
	}
	v->guest_features = 1ULL << VIRTIO_F_VERSION_1;
	virtio_set_status(v, 0x0b);

	/* Input before the driver is ready waits in the device. */
	assert_int_equal(virtio_console_input(v, (const uint8_t *)"ab", 2), 2);
	virtio_set_status(v, 0x0f);

	/* Output: two readable buffers in one chain. */
	memcpy(hva(&ram, BUF), "hello ", 6);
	memcpy(hva(&ram, BUF + 0x100), "hvc0\n", 5);
	struct fake_buf o[] = { { BUF, 6, 0 }, { BUF + 0x100, 5, 0 } };
	ring_add(&tx, o, 2);
	virtio_queue_kick(v, 1);
	assert_int_equal(out_len, 11);
	assert_memory_equal(out, "hello hvc0\n", 11);
	assert_int_equal(ring_used_idx(&tx), 1);

	/* The guest posts a receive buffer: the waiting input arrives. */
	struct fake_buf i1[] = { { BUF + 0x1000, 64, 1 } };
	ring_add(&rx, i1, 1);
	virtio_queue_kick(v, 0);
	assert_int_equal(ring_used_idx(&rx), 1);
	assert_int_equal(ring_used_len(&rx, 0), 2);
	assert_memory_equal(hva(&ram, BUF + 0x1000), "ab", 2);

	/* No buffers: input fills the device's buffer, then is refused. */
	static uint8_t big[8192];
	memset(big, 'x', sizeof(big));
	size_t took = virtio_console_input(v, big, sizeof(big));
	assert_true(took > 0 && took < sizeof(big));
	assert_int_equal(room_calls, 0);
	/* A buffer arrives: data moves, the sink is told to resume. */
	struct fake_buf i2[] = { { BUF + 0x2000, 1024, 1 } };
	ring_add(&rx, i2, 1);
	virtio_queue_kick(v, 0);
	assert_int_equal(ring_used_len(&rx, 1), 1024);
	assert_int_equal(room_calls, 1);

	virtio_set_status(v, 0);
	virtio_console_free(v);
	guest_ram_free(&ram);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_console),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
