/* virtio-net (virtio 1.x section 5.1): one receive and one transmit queue
 * on a network backend (net/). Offloads are offered only when the backend
 * carries the virtio-net header itself (TAP with IFF_VNET_HDR): then the
 * guest may send partially checksummed and TSO frames, and receives them
 * if it accepted GUEST_CSUM/GUEST_TSO*. With user networking every frame
 * is complete and checksummed and the 12-byte header (virtio_net_hdr_v1)
 * is zero except num_buffers = 1. */
#include "hw/virtio/devices.h"
#include "lib/log.h"
#include "lib/util.h"
#include "net/net.h"

#include <stdlib.h>
#include <string.h>

#define VIRTIO_NET_F_CSUM       0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN  9
#define VIRTIO_NET_F_HOST_TSO4  11
#define VIRTIO_NET_F_HOST_TSO6  12
#define VIRTIO_NET_F_HOST_ECN   13
#define VIRTIO_NET_F_MAC     5
#define VIRTIO_NET_F_STATUS  16
#define VIRTIO_NET_S_LINK_UP 1

#define NET_QUEUE_SIZE       256
#define RX_QUEUE             0
#define TX_QUEUE             1
#define NET_CFG_LEN          10  /* mac[6], status, max_virtqueue_pairs */
#define HDR_NUM_BUFFERS      10  /* offset of num_buffers in the header */
#define FRAME_MIN            14  /* an Ethernet header */

struct virtio_net {
	struct virtio_dev vdev;
	struct net_backend *be;
	pthread_mutex_t rx_lock;
	pthread_mutex_t tx_lock;
	bool started;
};

/* Backend -> guest (event loop thread). */
static bool net_deliver(void *opaque, const uint8_t *frame, size_t len)
{
	struct virtio_net *n = opaque;
	struct virtio_dev *v = &n->vdev;
	uint8_t hdr[NET_VNET_HDR_LEN] = { 0 };
	if (n->be->vnet_hdr) {
		if (len < NET_VNET_HDR_LEN)
			return true; /* junk from the backend: drop */
		memcpy(hdr, frame, NET_VNET_HDR_LEN);
		frame += NET_VNET_HDR_LEN;
		len -= NET_VNET_HDR_LEN;
	}
	hdr[HDR_NUM_BUFFERS] = 1;
	hdr[HDR_NUM_BUFFERS + 1] = 0;
	if (!(virtio_get_status(v) & VIRTIO_STATUS_DRIVER_OK))
		return false;
	pthread_mutex_lock(&n->rx_lock);
	struct virtq_elem *e;
	if (virtio_pop(v, RX_QUEUE, &e) <= 0) {
		pthread_mutex_unlock(&n->rx_lock);
		return false;
	}
	if (e->in_len < NET_VNET_HDR_LEN + len) {
		/* Without mergeable buffers each buffer must hold a frame. */
		log_once(LOG_WARN, "virtio-net: receive buffer of %llu bytes too small for a %zu-byte frame; dropped",
			 (unsigned long long)e->in_len, len);
		vq_unpop(&v->vqs[RX_QUEUE], e);
		pthread_mutex_unlock(&n->rx_lock);
		return true;
	}
	iov_from_buf(e->in, e->n_in, 0, hdr, NET_VNET_HDR_LEN);
	iov_from_buf(e->in, e->n_in, NET_VNET_HDR_LEN, frame, len);
	virtio_push(v, RX_QUEUE, e, (uint32_t)(NET_VNET_HDR_LEN + len));
	pthread_mutex_unlock(&n->rx_lock);
	return true;
}

static void transmit(struct virtio_net *n)
{
	struct virtio_dev *v = &n->vdev;
	struct virtq_elem *e;
	pthread_mutex_lock(&n->tx_lock);
	while (virtio_pop(v, TX_QUEUE, &e) > 0) {
		if (e->out_len < NET_VNET_HDR_LEN + FRAME_MIN || e->n_in)
			log_once(LOG_WARN, "virtio-net: malformed transmit chain dropped");
		else
			net_send(n->be, e->out, e->n_out);
		virtio_push(v, TX_QUEUE, e, 0);
	}
	pthread_mutex_unlock(&n->tx_lock);
}

static void net_queue_notify(struct virtio_dev *v, unsigned q)
{
	struct virtio_net *n = v->priv;
	if (q == TX_QUEUE)
		transmit(n);
	else if (q == RX_QUEUE && n->be->ops->rx_ready)
		n->be->ops->rx_ready(n->be);
}

/* What the backend may hand us, from what the driver accepted. */
static unsigned guest_offloads(struct virtio_dev *v)
{
	unsigned o = 0;
	if (virtio_has_feature(v, VIRTIO_NET_F_GUEST_CSUM)) {
		o |= NET_OFFLOAD_CSUM;
		if (virtio_has_feature(v, VIRTIO_NET_F_GUEST_TSO4))
			o |= NET_OFFLOAD_TSO4;
		if (virtio_has_feature(v, VIRTIO_NET_F_GUEST_TSO6))
			o |= NET_OFFLOAD_TSO6;
		if ((o & (NET_OFFLOAD_TSO4 | NET_OFFLOAD_TSO6)) && virtio_has_feature(v, VIRTIO_NET_F_GUEST_ECN))
			o |= NET_OFFLOAD_ECN;
	}
	return o;
}

static void net_driver_ok(struct virtio_dev *v)
{
	struct virtio_net *n = v->priv;
	if (n->be->ops->set_offloads)
		n->be->ops->set_offloads(n->be, guest_offloads(v));
	if (!n->started) {
		n->started = true;
		if (n->be->ops->start)
			n->be->ops->start(n->be);
	}
}

static void net_reset(struct virtio_dev *v)
{
	struct virtio_net *n = v->priv;
	/* Wait for a delivery or transmission in progress. */
	pthread_mutex_lock(&n->rx_lock);
	pthread_mutex_unlock(&n->rx_lock);
	pthread_mutex_lock(&n->tx_lock);
	pthread_mutex_unlock(&n->tx_lock);
	/* A driver that comes next may not accept partial checksums. */
	if (n->be->ops->set_offloads)
		n->be->ops->set_offloads(n->be, 0);
}

static const struct virtio_device_ops net_ops = {
	.queue_notify = net_queue_notify,
	.driver_ok = net_driver_ok,
	.reset = net_reset,
};

struct virtio_dev *virtio_net_new(struct machine *m, struct guest_ram *ram,
				  const uint8_t mac[6], struct net_backend *be)
{
	struct virtio_net *n = xcalloc(1, sizeof(*n));
	n->be = be;
	pthread_mutex_init(&n->rx_lock, NULL);
	pthread_mutex_init(&n->tx_lock, NULL);
	struct virtio_dev *v = &n->vdev;
	uint64_t features = 1ULL << VIRTIO_NET_F_MAC | 1ULL << VIRTIO_NET_F_STATUS;
	if (be->vnet_hdr && be->ops->set_offloads)
		features |= 1ULL << VIRTIO_NET_F_CSUM | 1ULL << VIRTIO_NET_F_HOST_TSO4 |
			    1ULL << VIRTIO_NET_F_HOST_TSO6 | 1ULL << VIRTIO_NET_F_HOST_ECN |
			    1ULL << VIRTIO_NET_F_GUEST_CSUM | 1ULL << VIRTIO_NET_F_GUEST_TSO4 |
			    1ULL << VIRTIO_NET_F_GUEST_TSO6 | 1ULL << VIRTIO_NET_F_GUEST_ECN;
	virtio_dev_init(v, m, ram, "virtio-net", VIRTIO_ID_NET, features, 2, NET_QUEUE_SIZE, &net_ops, n);
	v->config_len = NET_CFG_LEN;
	memcpy(v->config, mac, 6);
	virtio_config_set16(v, 6, VIRTIO_NET_S_LINK_UP);
	virtio_config_set16(v, 8, 1);
	net_set_deliver(be, net_deliver, n);
	return v;
}

void virtio_net_free(struct virtio_dev *v)
{
	if (!v)
		return;
	struct virtio_net *n = v->priv;
	/* The caller closed the backend first: nothing delivers to us. */
	pthread_mutex_destroy(&n->rx_lock);
	pthread_mutex_destroy(&n->tx_lock);
	virtio_dev_destroy(v);
	free(n);
}
