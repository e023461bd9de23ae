/* virtio-console (virtio 1.x section 5.3), a single port without
 * multiport: receiveq 0 carries host input to the guest, transmitq 1 the
 * guest's output (hvc0). Input that arrives while the guest has posted no
 * buffers waits in a small buffer and is delivered when it posts some. */
#include "hw/virtio/devices.h"
#include "lib/log.h"
#include "lib/util.h"

#include <stdlib.h>
#include <string.h>

#define CONSOLE_QUEUE_SIZE 128
#define CONSOLE_PENDING    4096
#define RX_QUEUE           0
#define TX_QUEUE           1
#define CONSOLE_CFG_LEN    12  /* cols, rows, max_nr_ports, emerg_wr */

struct virtio_console {
	struct virtio_dev vdev;
	struct virtio_console_sink sink;
	pthread_mutex_t lock;          /* pending input and the rx queue */
	uint8_t pending[CONSOLE_PENDING];
	size_t npending;
	bool refused;                  /* input_room owed to the sink */
};

/* Moves pending input into guest buffers. Lock held. */
static void flush_input(struct virtio_console *c)
{
	while (c->npending) {
		struct virtq_elem *e;
		if (virtio_pop(&c->vdev, RX_QUEUE, &e) <= 0)
			return;
		uint64_t n = iov_from_buf(e->in, e->n_in, 0, c->pending, c->npending);
		memmove(c->pending, c->pending + n, c->npending - n);
		c->npending -= n;
		virtio_push(&c->vdev, RX_QUEUE, e, (uint32_t)n);
	}
}

size_t virtio_console_input(struct virtio_dev *v, const uint8_t *buf, size_t len)
{
	struct virtio_console *c = v->priv;
	pthread_mutex_lock(&c->lock);
	if (virtio_get_status(v) & VIRTIO_STATUS_DRIVER_OK)
		flush_input(c);
	size_t n = MIN(len, CONSOLE_PENDING - c->npending);
	memcpy(c->pending + c->npending, buf, n);
	c->npending += n;
	if (virtio_get_status(v) & VIRTIO_STATUS_DRIVER_OK)
		flush_input(c);
	if (n < len)
		c->refused = true;
	pthread_mutex_unlock(&c->lock);
	return n;
}

static void console_queue_notify(struct virtio_dev *v, unsigned q)
{
	struct virtio_console *c = v->priv;
	if (q == RX_QUEUE) {
		pthread_mutex_lock(&c->lock);
		flush_input(c);
		bool room = c->refused && c->npending < CONSOLE_PENDING;
		if (room)
			c->refused = false;
		pthread_mutex_unlock(&c->lock);
		if (room && c->sink.input_room)
			c->sink.input_room(c->sink.opaque);
		return;
	}
	struct virtq_elem *e;
	while (virtio_pop(v, TX_QUEUE, &e) > 0) {
		for (unsigned i = 0; i < e->n_out; i++)
			if (c->sink.write)
				c->sink.write(c->sink.opaque, e->out[i].iov_base, e->out[i].iov_len);
		virtio_push(v, TX_QUEUE, e, 0);
	}
}

static void console_reset(struct virtio_dev *v)
{
	struct virtio_console *c = v->priv;
	pthread_mutex_lock(&c->lock);
	c->npending = 0;
	pthread_mutex_unlock(&c->lock);
}

static const struct virtio_device_ops console_ops = {
	.queue_notify = console_queue_notify,
	.reset = console_reset,
};

struct virtio_dev *virtio_console_new(struct machine *m, struct guest_ram *ram,
				      const struct virtio_console_sink *sink)
{
	struct virtio_console *c = xcalloc(1, sizeof(*c));
	if (sink)
		c->sink = *sink;
	pthread_mutex_init(&c->lock, NULL);
	struct virtio_dev *v = &c->vdev;
	virtio_dev_init(v, m, ram, "virtio-console", VIRTIO_ID_CONSOLE, 0, 2, CONSOLE_QUEUE_SIZE,
			&console_ops, c);
	v->config_len = CONSOLE_CFG_LEN;
	virtio_config_set32(v, 4, 1); /* max_nr_ports */
	return v;
}

void virtio_console_free(struct virtio_dev *v)
{
	if (!v)
		return;
	struct virtio_console *c = v->priv;
	pthread_mutex_destroy(&c->lock);
	virtio_dev_destroy(v);
	free(c);
}
