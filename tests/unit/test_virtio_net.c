/* virtio-net on a fake backend: config (MAC, link), transmit chains to
 * the backend, received frames into guest buffers with the v1 header,
 * and the cases where the guest has no or too small buffers. Also the
 * --net option parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <arpa/inet.h>

#include "hw/virtio/devices.h"
#include "lib/util.h"
#include "net/net.h"
#include "virtio_harness.h"

#define RAM_SIZE (16 * MiB)
#define RXRING   0x10000
#define TXRING   0x20000
#define BUF      0x100000

struct fake_backend {
	struct net_backend be;
	uint8_t sent[2048];
	size_t sent_len;
	int nsent, rx_ready_calls, started;
};

static int fb_send(struct net_backend *be, const struct iovec *iov, unsigned n)
{
	struct fake_backend *fb = (struct fake_backend *)be;
	fb->sent_len = 0;
	for (unsigned i = 0; i < n; i++) {
		memcpy(fb->sent + fb->sent_len, iov[i].iov_base, iov[i].iov_len);
		fb->sent_len += iov[i].iov_len;
	}
	fb->nsent++;
	return 0;
}
static void fb_rx_ready(struct net_backend *be) { ((struct fake_backend *)be)->rx_ready_calls++; }
static void fb_start(struct net_backend *be) { ((struct fake_backend *)be)->started++; }
static void fb_close(struct net_backend *be) { }
static int offloads_set = -1;
static int fb_set_offloads(struct net_backend *be, unsigned o) { offloads_set = (int)o; return 0; }
static const struct net_backend_ops fb_ops = {
	.send = fb_send, .rx_ready = fb_rx_ready, .start = fb_start, .close = fb_close,
};
static const struct net_backend_ops fb_vnet_ops = {
	.send = fb_send, .rx_ready = fb_rx_ready, .start = fb_start, .close = fb_close,
	.set_offloads = fb_set_offloads,
};

struct fixture {
	struct guest_ram ram;
	struct fake_backend fb;
	struct virtio_dev *v;
	struct fake_ring rx, tx;
};

static void enable(struct virtio_dev *v, unsigned q, struct fake_ring *r)
{
	v->vqs[q].num = r->num;
	v->vqs[q].desc_gpa = r->desc;
	v->vqs[q].avail_gpa = r->avail;
	v->vqs[q].used_gpa = r->used;
	assert_int_equal(virtio_queue_enable(v, q), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_int_equal(guest_ram_init(&f->ram, RAM_SIZE), 0);
	f->fb.be.ops = &fb_ops;
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 0xab, 0xcd, 0xef };
	f->v = virtio_net_new(NULL, &f->ram, mac, &f->fb.be);
	f->v->guest_features = f->v->host_features;
	virtio_set_status(f->v, 0x0b);
	ring_layout(&f->rx, &f->ram, RXRING, 8);
	ring_layout(&f->tx, &f->ram, TXRING, 8);
	enable(f->v, 0, &f->rx);
	enable(f->v, 1, &f->tx);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	virtio_net_free(f->v);
	guest_ram_free(&f->ram);
	free(f);
	return 0;
}

static void test_config(void **state)
{
	struct fixture *f = *state;
	uint8_t mac[6];
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)virtio_config_read(f->v, i, 1);
	assert_memory_equal(mac, "\x52\x54\x00\xab\xcd\xef", 6);
	assert_int_equal(virtio_config_read(f->v, 6, 2), 1); /* link up */
	/* The driver cannot change the MAC through config space writes. */
	virtio_config_write(f->v, 0, 4, 0);
	assert_int_equal(virtio_config_read(f->v, 0, 1), 0x52);
	assert_false(f->v->host_features & 1); /* no checksum offload offered */
}

static void test_rx_before_driver_ok(void **state)
{
	struct fixture *f = *state;
	uint8_t frame[60] = { 1, 2, 3 };
	assert_false(f->fb.be.deliver(f->fb.be.deliver_opaque, frame, sizeof(frame)));
}

static void test_tx_rx(void **state)
{
	struct fixture *f = *state;
	virtio_set_status(f->v, 0x0f);
	assert_int_equal(f->fb.started, 1);

	/* Transmit: header + frame split over two descriptors. */
	memset(hva(&f->ram, BUF), 0, 12);
	memset(hva(&f->ram, BUF + 0x100), 0xcc, 60);
	struct fake_buf t[] = { { BUF, 12, 0 }, { BUF + 0x100, 60, 0 } };
	ring_add(&f->tx, t, 2);
	virtio_queue_kick(f->v, 1);
	assert_int_equal(f->fb.nsent, 1);
	assert_int_equal(f->fb.sent_len, 72);
	assert_int_equal(f->fb.sent[12], 0xcc);
	assert_int_equal(ring_used_idx(&f->tx), 1);
	/* A runt (no room for an Ethernet header) is dropped, chain returned. */
	struct fake_buf runt[] = { { BUF, 12, 0 } };
	ring_add(&f->tx, runt, 1);
	virtio_queue_kick(f->v, 1);
	assert_int_equal(f->fb.nsent, 1);
	assert_int_equal(ring_used_idx(&f->tx), 2);

	/* Receive: no buffers yet -> the backend must hold or drop. */
	uint8_t frame[100];
	for (int i = 0; i < 100; i++)
		frame[i] = (uint8_t)i;
	assert_false(f->fb.be.deliver(f->fb.be.deliver_opaque, frame, sizeof(frame)));
	/* The guest posts a buffer: the backend hears about it. */
	struct fake_buf r[] = { { BUF + 0x1000, 1526, 1 } };
	ring_add(&f->rx, r, 1);
	int calls = f->fb.rx_ready_calls;
	virtio_queue_kick(f->v, 0);
	assert_int_equal(f->fb.rx_ready_calls, calls + 1);
	assert_true(f->fb.be.deliver(f->fb.be.deliver_opaque, frame, sizeof(frame)));
	assert_int_equal(ring_used_idx(&f->rx), 1);
	assert_int_equal(ring_used_len(&f->rx, 0), 112);
	uint8_t *p = hva(&f->ram, BUF + 0x1000);
	assert_int_equal(p[0], 0);            /* flags */
	assert_int_equal(p[10], 1);           /* num_buffers */
	assert_memory_equal(p + 12, frame, 100);

	/* A buffer too small for the frame: frame dropped, buffer kept. */
	struct fake_buf small[] = { { BUF + 0x2000, 50, 1 } };
	ring_add(&f->rx, small, 1);
	assert_true(f->fb.be.deliver(f->fb.be.deliver_opaque, frame, sizeof(frame)));
	assert_int_equal(ring_used_idx(&f->rx), 1);
	uint8_t tiny[20] = { 9 };
	assert_true(f->fb.be.deliver(f->fb.be.deliver_opaque, tiny, sizeof(tiny)));
	assert_int_equal(ring_used_idx(&f->rx), 2);
	assert_int_equal(ring_used_len(&f->rx, 1), 32);
}

static void test_options(void **state)
{
	struct net_options o;
	char err[256];
	assert_int_equal(net_parse_options("user", &o, err, sizeof(err)), 0);
	assert_int_equal(o.kind, NET_USER);
	assert_int_equal(o.mac[0], 0x52);
	net_options_free(&o);
	assert_int_equal(net_parse_options("user,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp::8080-10.0.2.15:80,mac=02:00:00:00:00:01",
					   &o, err, sizeof(err)), 0);
	assert_int_equal(o.n_fwd, 2);
	assert_int_equal(o.fwd[0].host_port, 2222);
	assert_int_equal(o.fwd[0].guest_port, 22);
	assert_int_equal(o.fwd[0].host_addr, htonl(0x7f000001));
	assert_int_equal(o.fwd[1].host_addr, 0);
	assert_int_equal(o.fwd[1].guest_port, 80);
	assert_memory_equal(o.mac, "\x02\x00\x00\x00\x00\x01", 6);
	net_options_free(&o);
	assert_int_equal(net_parse_options("tap=tap0,transport=mmio", &o, err, sizeof(err)), 0);
	assert_int_equal(o.kind, NET_TAP);
	assert_string_equal(o.ifname, "tap0");
	assert_string_equal(o.transport, "mmio");
	net_options_free(&o);

	const char *bad[] = {
		"", "bridge", "tap", "tap=", "user,mac=01:00:00:00:00:01", "user,mac=zz",
		"user,hostfwd=tcp:1.2.3.4:0-:22", "user,hostfwd=icmp::1-:2", "user,hostfwd=tcp::99999-:22",
		"user,hostfwd=tcp::22-10.0.2.16:22", "user,hostfwd=tcp::22", "tap=x,hostfwd=tcp::1-:2",
		"user,transport=isa", "user,bogus=1", "tap=averyveryverylongname",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err[0] = 0;
		assert_int_equal(net_parse_options(bad[i], &o, err, sizeof(err)), -EINVAL);
		assert_true(err[0] != 0);
	}
}

/* A backend that carries the vnet header (TAP): offloads are offered and
 * the backend is told exactly which ones the driver accepted. */
static void test_offloads(void **state)
{
	struct guest_ram ram;
	assert_int_equal(guest_ram_init(&ram, 4 * MiB), 0);
	struct fake_backend fb = { .be = { .ops = &fb_vnet_ops, .vnet_hdr = true } };
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 1, 2, 3 };
	struct virtio_dev *v = virtio_net_new(NULL, &ram, mac, &fb.be);
	assert_true(v->host_features & (1ULL << 0));   /* CSUM */
	assert_true(v->host_features & (1ULL << 1));   /* GUEST_CSUM */
	assert_true(v->host_features & (1ULL << 11));  /* HOST_TSO4 */
	v->guest_features = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << 1 | 1ULL << 7;
	virtio_set_status(v, 0x0b);
	virtio_set_status(v, 0x0f);
	assert_int_equal(offloads_set, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4);
	virtio_set_status(v, 0);
	assert_int_equal(offloads_set, 0);
	/* TSO without GUEST_CSUM is not a valid combination: nothing. */
	v->guest_features = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << 7;
	virtio_set_status(v, 0x0b);
	virtio_set_status(v, 0x0f);
	assert_int_equal(offloads_set, 0);
	virtio_net_free(v);
	guest_ram_free(&ram);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_before_driver_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_rx, setup, teardown),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_offloads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
