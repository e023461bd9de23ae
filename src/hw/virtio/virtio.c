/* virtio device core shared by every device type and both transports. */
#include "hw/virtio/virtio.h"
#include "lib/log.h"
#include "lib/util.h"

#include <stdlib.h>
#include <string.h>

void virtio_dev_init(struct virtio_dev *v, struct machine *m, struct guest_ram *ram,
		     const char *name, uint32_t device_id, uint64_t features,
		     unsigned nvqs, uint16_t num_max, const struct virtio_device_ops *ops, void *priv)
{
	memset(v, 0, sizeof(*v));
	v->name = name;
	v->device_id = device_id;
	v->ops = ops;
	v->priv = priv;
	v->m = m;
	v->ram = ram;
	v->host_features = features | 1ULL << VIRTIO_F_VERSION_1 |
			   1ULL << VIRTIO_F_RING_INDIRECT_DESC | 1ULL << VIRTIO_F_RING_EVENT_IDX;
	v->config_vector = VIRTIO_NO_VECTOR;
	v->nvqs = nvqs;
	v->vqs = xcalloc(nvqs, sizeof(*v->vqs));
	for (unsigned i = 0; i < nvqs; i++)
		vq_init(&v->vqs[i], ram, num_max, name);
	pthread_mutex_init(&v->lock, NULL);
}

void virtio_dev_destroy(struct virtio_dev *v)
{
	for (unsigned i = 0; i < v->nvqs; i++)
		vq_destroy(&v->vqs[i]);
	free(v->vqs);
	v->vqs = NULL;
	pthread_mutex_destroy(&v->lock);
}

bool virtio_has_feature(const struct virtio_dev *v, unsigned bit)
{
	return (v->guest_features >> bit) & 1;
}

uint8_t virtio_get_status(const struct virtio_dev *v)
{
	return __atomic_load_n(&v->status, __ATOMIC_ACQUIRE);
}

void virtio_reset(struct virtio_dev *v)
{
	/* Stop the device's own work first so nothing completes into the
	 * queues while they are torn down. */
	__atomic_store_n(&v->status, 0, __ATOMIC_RELEASE);
	if (v->ops->reset)
		v->ops->reset(v);
	for (unsigned i = 0; i < v->nvqs; i++)
		vq_reset(&v->vqs[i]);
	v->guest_features = 0;
	v->device_features_sel = v->driver_features_sel = 0;
	v->queue_sel = 0;
	v->config_vector = VIRTIO_NO_VECTOR;
	__atomic_store_n(&v->isr, 0, __ATOMIC_RELEASE);
}

void virtio_set_status(struct virtio_dev *v, uint8_t status)
{
	if (status == 0) {
		virtio_reset(v);
		return;
	}
	uint8_t old = virtio_get_status(v);
	/* NEEDS_RESET belongs to the device; only a reset clears it. */
	status = (uint8_t)((status & ~VIRTIO_STATUS_NEEDS_RESET) | (old & VIRTIO_STATUS_NEEDS_RESET));
	if ((status & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		if (v->guest_features & ~v->host_features) {
			log_once(LOG_WARN, "%s: driver accepted features we did not offer (%#llx); refusing FEATURES_OK",
				 v->name, (unsigned long long)(v->guest_features & ~v->host_features));
			status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
		} else if (!virtio_has_feature(v, VIRTIO_F_VERSION_1)) {
			log_once(LOG_WARN, "%s: driver did not accept VIRTIO_F_VERSION_1 (legacy drivers are not supported)",
				 v->name);
			status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
		} else {
			for (unsigned i = 0; i < v->nvqs; i++) {
				struct virtqueue *vq = &v->vqs[i];
				pthread_mutex_lock(&vq->lock);
				vq->event_idx = virtio_has_feature(v, VIRTIO_F_RING_EVENT_IDX);
				vq->indirect = virtio_has_feature(v, VIRTIO_F_RING_INDIRECT_DESC);
				pthread_mutex_unlock(&vq->lock);
			}
		}
	}
	if ((status & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_FEATURES_OK)) {
		log_once(LOG_WARN, "%s: DRIVER_OK without FEATURES_OK ignored", v->name);
		status &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
	}
	__atomic_store_n(&v->status, status, __ATOMIC_RELEASE);
	if ((status & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
		if (v->transport && v->transport->driver_ok)
			v->transport->driver_ok(v);
		if (v->ops->driver_ok)
			v->ops->driver_ok(v);
		/* Buffers the driver queued before DRIVER_OK are served now. */
		for (unsigned i = 0; i < v->nvqs; i++)
			if (v->vqs[i].enabled && v->ops->queue_notify)
				v->ops->queue_notify(v, i);
	}
}

int virtio_queue_enable(struct virtio_dev *v, unsigned q)
{
	if (q >= v->nvqs)
		return -1;
	int r = vq_enable(&v->vqs[q]);
	if (r < 0)
		virtio_set_needs_reset(v);
	return r;
}

void virtio_queue_kick(struct virtio_dev *v, unsigned q)
{
	uint8_t status = virtio_get_status(v);
	if (!(status & VIRTIO_STATUS_DRIVER_OK)) {
		log_once(LOG_WARN, "%s: queue notification before DRIVER_OK ignored", v->name);
		return;
	}
	if (status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	if (q >= v->nvqs) {
		log_once(LOG_WARN, "%s: notification for queue %u which does not exist", v->name, q);
		return;
	}
	if (!v->vqs[q].enabled) {
		log_once(LOG_WARN, "%s: notification for a disabled queue ignored", v->name);
		return;
	}
	if (v->ops->queue_notify)
		v->ops->queue_notify(v, q);
}

static void virtio_raise(struct virtio_dev *v, uint16_t vector, uint8_t bit)
{
	__atomic_or_fetch(&v->isr, bit, __ATOMIC_ACQ_REL);
	if (v->transport && v->transport->notify)
		v->transport->notify(v, vector, bit);
}

void virtio_set_needs_reset(struct virtio_dev *v)
{
	uint8_t old = __atomic_fetch_or(&v->status, VIRTIO_STATUS_NEEDS_RESET, __ATOMIC_ACQ_REL);
	if (!(old & VIRTIO_STATUS_NEEDS_RESET) && (old & VIRTIO_STATUS_DRIVER_OK))
		virtio_raise(v, v->config_vector, VIRTIO_ISR_CONFIG);
}

int virtio_pop(struct virtio_dev *v, unsigned q, struct virtq_elem **out)
{
	*out = NULL;
	if (q >= v->nvqs)
		return 0;
	int r = vq_pop(&v->vqs[q], out);
	if (r < 0)
		virtio_set_needs_reset(v);
	return r;
}

void virtio_push(struct virtio_dev *v, unsigned q, struct virtq_elem *e, uint32_t written)
{
	struct virtqueue *vq = &v->vqs[q];
	if (vq_push(vq, e, written))
		virtio_raise(v, __atomic_load_n(&vq->msix_vector, __ATOMIC_RELAXED), VIRTIO_ISR_QUEUE);
}

void virtio_config_changed(struct virtio_dev *v)
{
	__atomic_add_fetch(&v->config_generation, 1, __ATOMIC_ACQ_REL);
	if (virtio_get_status(v) & VIRTIO_STATUS_DRIVER_OK)
		virtio_raise(v, v->config_vector, VIRTIO_ISR_CONFIG);
}

uint32_t virtio_config_read(struct virtio_dev *v, unsigned off, unsigned size)
{
	if (size > 4 || off >= v->config_len || size > v->config_len - off)
		return 0;
	uint32_t val = 0;
	for (unsigned i = 0; i < size; i++)
		val |= (uint32_t)__atomic_load_n(&v->config[off + i], __ATOMIC_RELAXED) << (8 * i);
	return val;
}

void virtio_config_write(struct virtio_dev *v, unsigned off, unsigned size, uint32_t val)
{
	if (size > 4 || off >= v->config_len || size > v->config_len - off)
		return;
	for (unsigned i = 0; i < size; i++) {
		uint8_t m = v->config_wmask[off + i];
		uint8_t b = (uint8_t)(val >> (8 * i));
		v->config[off + i] = (uint8_t)((v->config[off + i] & ~m) | (b & m));
	}
	if (v->ops->config_write)
		v->ops->config_write(v, off, size, val);
}

void virtio_config_set16(struct virtio_dev *v, unsigned off, uint16_t val)
{
	v->config[off] = (uint8_t)val;
	v->config[off + 1] = (uint8_t)(val >> 8);
}

void virtio_config_set32(struct virtio_dev *v, unsigned off, uint32_t val)
{
	virtio_config_set16(v, off, (uint16_t)val);
	virtio_config_set16(v, off + 2, (uint16_t)(val >> 16));
}

void virtio_config_set64(struct virtio_dev *v, unsigned off, uint64_t val)
{
	virtio_config_set32(v, off, (uint32_t)val);
	virtio_config_set32(v, off + 4, (uint32_t)(val >> 32));
}
