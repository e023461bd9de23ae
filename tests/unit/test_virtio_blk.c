/* virtio-blk request parsing and service against a raw image: read,
 * write, flush, get-id, discard, write-zeroes, range and shape checks,
 * read-only disks, and many requests in flight on the worker pool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "block/block.h"
#include "hw/virtio/devices.h"
#include "lib/util.h"
#include "virtio_harness.h"

#define RAM_SIZE   (16 * MiB)
#define RING       0x10000
#define HDR        0x100000   /* request headers, 16 bytes each */
#define STATUS     0x180000   /* status bytes, one per request */
#define DATA       0x200000
#define DISK_SIZE  (1 * MiB)
#define QSIZE      64

enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_DISCARD = 11, T_WRITE_ZEROES = 13 };
enum { S_OK = 0, S_IOERR = 1, S_UNSUPP = 2 };

struct fixture {
	struct guest_ram ram;
	char path[64];
	struct blockdev *bd;
	struct virtio_dev *v;
	struct fake_ring r;
	unsigned nreq;
};

static void open_disk(struct fixture *f, bool readonly)
{
	char err[256];
	assert_int_equal(block_open(f->path, "raw", readonly ? BLOCK_OPEN_RDONLY : 0, &f->bd, err, sizeof(err)), 0);
	f->v = virtio_blk_new(NULL, &f->ram, f->bd, readonly, "SERIAL-1234");
	struct virtio_dev *v = f->v;
	v->guest_features = v->host_features;
	virtio_set_status(v, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	ring_layout(&f->r, &f->ram, RING, QSIZE);
	v->vqs[0].num = QSIZE;
	v->vqs[0].desc_gpa = f->r.desc;
	v->vqs[0].avail_gpa = f->r.avail;
	v->vqs[0].used_gpa = f->r.used;
	assert_int_equal(virtio_queue_enable(v, 0), 0);
	virtio_set_status(v, 0x0f);
	assert_int_equal(virtio_get_status(v), 0x0f);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_int_equal(guest_ram_init(&f->ram, RAM_SIZE), 0);
	snprintf(f->path, sizeof(f->path), "/tmp/xvm-test-blk-XXXXXX");
	int fd = mkstemp(f->path);
	assert_true(fd >= 0);
	/* Sector n holds the byte n (mod 256) everywhere. */
	uint8_t *img = malloc(DISK_SIZE);
	for (unsigned i = 0; i < DISK_SIZE; i++)
		img[i] = (uint8_t)(i / 512);
	assert_int_equal(write(fd, img, DISK_SIZE), DISK_SIZE);
	free(img);
	close(fd);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	virtio_blk_free(f->v);
	block_close(f->bd);
	unlink(f->path);
	guest_ram_free(&f->ram);
	free(f);
	return 0;
}

static void wait_used(struct fixture *f, uint16_t n)
{
	for (int i = 0; i < 5000 && ring_used_idx(&f->r) != n; i++) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	assert_int_equal(ring_used_idx(&f->r), n);
}

/* Posts header + data buffers + status and returns the request number. */
static unsigned post(struct fixture *f, uint32_t type, uint64_t sector,
		     const struct fake_buf *data, unsigned ndata)
{
	unsigned k = f->nreq++;
	uint64_t h = HDR + 16ull * k;
	put32(&f->ram, h, type);
	put32(&f->ram, h + 4, 0);
	put64(&f->ram, h + 8, sector);
	*(uint8_t *)hva(&f->ram, STATUS + k) = 0xee;
	struct fake_buf b[8];
	b[0] = (struct fake_buf){ h, 16, 0 };
	for (unsigned i = 0; i < ndata; i++)
		b[1 + i] = data[i];
	b[1 + ndata] = (struct fake_buf){ STATUS + k, 1, 1 };
	ring_add(&f->r, b, ndata + 2);
	return k;
}

static uint8_t run(struct fixture *f, unsigned k)
{
	virtio_queue_kick(f->v, 0);
	wait_used(f, (uint16_t)f->nreq);
	return *(uint8_t *)hva(&f->ram, STATUS + k);
}

static uint8_t request(struct fixture *f, uint32_t type, uint64_t sector,
		       const struct fake_buf *data, unsigned ndata)
{
	return run(f, post(f, type, sector, data, ndata));
}

static void test_config(void **state)
{
	struct fixture *f = *state;
	open_disk(f, false);
	assert_int_equal(virtio_config_read(f->v, 0, 4), DISK_SIZE / 512);
	assert_int_equal(virtio_config_read(f->v, 4, 4), 0);
	assert_int_equal(virtio_config_read(f->v, 20, 4), 512);  /* blk_size */
	assert_true(virtio_config_read(f->v, 12, 4) >= 1);        /* seg_max */
	assert_false(f->v->host_features & (1ULL << 5));           /* not RO */
	assert_true(f->v->host_features & (1ULL << 13));           /* discard */
	assert_true(f->v->host_features & (1ULL << 14));           /* write zeroes */
	assert_int_equal(virtio_config_read(f->v, 500, 4), 0);    /* out of range */
}

static void test_read_write(void **state)
{
	struct fixture *f = *state;
	open_disk(f, false);
	/* Read sectors 5-6 into two buffers of different sizes. */
	struct fake_buf rd[] = { { DATA, 700, 1 }, { DATA + 0x1000, 324, 1 } };
	assert_int_equal(request(f, T_IN, 5, rd, 2), S_OK);
	assert_int_equal(ring_used_len(&f->r, 0), 1025);
	uint8_t *p = hva(&f->ram, DATA);
	assert_int_equal(p[0], 5);
	assert_int_equal(p[511], 5);
	assert_int_equal(p[512], 6);
	assert_int_equal(((uint8_t *)hva(&f->ram, DATA + 0x1000))[323], 6);

	/* Write sector 10 from two readable buffers. */
	memset(hva(&f->ram, DATA + 0x2000), 0xA5, 256);
	memset(hva(&f->ram, DATA + 0x3000), 0x5A, 256);
	struct fake_buf wrb[] = { { DATA + 0x2000, 256, 0 }, { DATA + 0x3000, 256, 0 } };
	assert_int_equal(request(f, T_OUT, 10, wrb, 2), S_OK);
	assert_int_equal(ring_used_len(&f->r, 1), 1);
	uint8_t back[512];
	assert_int_equal(block_pread(f->bd, back, 512, 10 * 512), 0);
	assert_int_equal(back[0], 0xA5);
	assert_int_equal(back[511], 0x5A);

	assert_int_equal(request(f, T_FLUSH, 0, NULL, 0), S_OK);

	struct fake_buf id[] = { { DATA + 0x4000, 20, 1 } };
	memset(hva(&f->ram, DATA + 0x4000), 0xff, 20);
	assert_int_equal(request(f, T_GET_ID, 0, id, 1), S_OK);
	assert_memory_equal(hva(&f->ram, DATA + 0x4000), "SERIAL-1234\0\0\0\0\0\0\0\0\0", 20);
}

static void test_discard_write_zeroes(void **state)
{
	struct fixture *f = *state;
	open_disk(f, false);
	/* One segment: sector 16, 8 sectors (4 KiB, hole-punchable). */
	put64(&f->ram, DATA, 16);
	put32(&f->ram, DATA + 8, 8);
	put32(&f->ram, DATA + 12, 0);
	struct fake_buf seg[] = { { DATA, 16, 0 } };
	assert_int_equal(request(f, T_DISCARD, 0, seg, 1), S_OK);
	put64(&f->ram, DATA, 40);
	put32(&f->ram, DATA + 8, 3);
	put32(&f->ram, DATA + 12, 1); /* may unmap */
	assert_int_equal(request(f, T_WRITE_ZEROES, 0, seg, 1), S_OK);
	uint8_t back[3 * 512], zero[3 * 512] = { 0 };
	assert_int_equal(block_pread(f->bd, back, sizeof(back), 40 * 512), 0);
	assert_memory_equal(back, zero, sizeof(back));
	assert_int_equal(block_pread(f->bd, back, 512, 43 * 512), 0);
	assert_int_equal(back[0], 43); /* the next sector is untouched */
	/* Discard with the unmap flag is not defined: unsupported. */
	assert_int_equal(request(f, T_DISCARD, 0, seg, 1), S_UNSUPP);
	/* Segment list of a bad size. */
	struct fake_buf odd[] = { { DATA, 12, 0 } };
	assert_int_equal(request(f, T_DISCARD, 0, odd, 1), S_UNSUPP);
	/* Range past the end. */
	put64(&f->ram, DATA, DISK_SIZE / 512 - 1);
	put32(&f->ram, DATA + 8, 2);
	put32(&f->ram, DATA + 12, 0);
	assert_int_equal(request(f, T_WRITE_ZEROES, 0, seg, 1), S_IOERR);
}

static void test_bad_requests(void **state)
{
	struct fixture *f = *state;
	open_disk(f, false);
	struct fake_buf one[] = { { DATA, 512, 1 } };
	/* Past the end, and a sector number that overflows when scaled. */
	assert_int_equal(request(f, T_IN, DISK_SIZE / 512, one, 1), S_IOERR);
	assert_int_equal(request(f, T_IN, UINT64_MAX / 256, one, 1), S_IOERR);
	struct fake_buf wone[] = { { DATA, 512, 0 } };
	assert_int_equal(request(f, T_OUT, UINT64_MAX, wone, 1), S_IOERR);
	/* Not a whole number of sectors. */
	struct fake_buf odd[] = { { DATA, 100, 1 } };
	assert_int_equal(request(f, T_IN, 0, odd, 1), S_IOERR);
	/* Unknown request type. */
	assert_int_equal(request(f, 99, 0, NULL, 0), S_UNSUPP);
	/* Write whose data is device-writable (wrong direction). */
	assert_int_equal(request(f, T_OUT, 0, one, 1), S_IOERR);
	/* Header in a device-writable buffer: no readable header at all. */
	unsigned k = f->nreq++;
	*(uint8_t *)hva(&f->ram, STATUS + k) = 0xee;
	struct fake_buf b[] = { { HDR, 16, 1 }, { STATUS + k, 1, 1 } };
	ring_add(&f->r, b, 2);
	assert_int_equal(run(f, k), S_IOERR);
	/* Header split across two descriptors still works. */
	k = f->nreq++;
	put32(&f->ram, HDR + 0x800, T_IN);
	put32(&f->ram, HDR + 0x804, 0);
	put64(&f->ram, HDR + 0x808, 7);
	*(uint8_t *)hva(&f->ram, STATUS + k) = 0xee;
	struct fake_buf split[] = { { HDR + 0x800, 5, 0 }, { HDR + 0x805, 11, 0 },
				    { DATA, 512, 1 }, { STATUS + k, 1, 1 } };
	ring_add(&f->r, split, 4);
	assert_int_equal(run(f, k), S_OK);
	assert_int_equal(((uint8_t *)hva(&f->ram, DATA))[0], 7);
	/* A read of more than 1 GiB (an indirect table naming all of RAM 70
	 * times): refused, nothing read into guest memory. */
	k = f->nreq++;
	put32(&f->ram, HDR + 0x900, T_IN);
	put32(&f->ram, HDR + 0x904, 0);
	put64(&f->ram, HDR + 0x908, 0);
	*(uint8_t *)hva(&f->ram, STATUS + k) = 0xee;
	uint64_t table = DATA + 0x10000;
	struct fake_ring t = f->r;
	t.desc = table;
	ring_set_desc(&t, 0, HDR + 0x900, 16, 1, 1);
	for (uint16_t i = 1; i <= 70; i++)
		ring_set_desc(&t, i, 0, RAM_SIZE, 3, (uint16_t)(i + 1));
	ring_set_desc(&t, 71, STATUS + k, 1, 2, 0);
	uint16_t slot = (uint16_t)(f->r.next_desc++ % f->r.num);
	ring_set_desc(&f->r, slot, table, 72 * 16, 4, 0);
	ring_publish(&f->r, slot);
	assert_int_equal(run(f, k), S_IOERR);
	/* The device keeps running after all of it. */
	assert_false(virtio_get_status(f->v) & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_readonly(void **state)
{
	struct fixture *f = *state;
	open_disk(f, true);
	assert_true(f->v->host_features & (1ULL << 5));
	assert_false(f->v->host_features & (1ULL << 13));
	memset(hva(&f->ram, DATA), 0x77, 512);
	struct fake_buf wone[] = { { DATA, 512, 0 } };
	assert_int_equal(request(f, T_OUT, 3, wone, 1), S_IOERR);
	uint8_t back[512];
	assert_int_equal(block_pread(f->bd, back, 512, 3 * 512), 0);
	assert_int_equal(back[0], 3);
	put64(&f->ram, DATA, 0);
	put32(&f->ram, DATA + 8, 1);
	put32(&f->ram, DATA + 12, 0);
	struct fake_buf seg[] = { { DATA, 16, 0 } };
	assert_int_equal(request(f, T_WRITE_ZEROES, 0, seg, 1), S_IOERR);
	struct fake_buf rone[] = { { DATA, 512, 1 } };
	assert_int_equal(request(f, T_IN, 3, rone, 1), S_OK);
}

static void test_many_in_flight(void **state)
{
	struct fixture *f = *state;
	open_disk(f, false);
	/* 20 reads (3 descriptors each = 60 of 64) with one kick. */
	for (unsigned i = 0; i < 20; i++) {
		struct fake_buf b[] = { { DATA + 4096ull * i, 512, 1 } };
		post(f, T_IN, 100 + i, b, 1);
	}
	virtio_queue_kick(f->v, 0);
	wait_used(f, 20);
	for (unsigned i = 0; i < 20; i++) {
		assert_int_equal(*(uint8_t *)hva(&f->ram, STATUS + i), S_OK);
		assert_int_equal(((uint8_t *)hva(&f->ram, DATA + 4096ull * i))[100], (uint8_t)(100 + i));
	}
	/* Reset while idle, then the device is usable again from scratch. */
	virtio_set_status(f->v, 0);
	assert_int_equal(virtio_get_status(f->v), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_discard_write_zeroes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_in_flight, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
