/* virtio 1.x device core: feature negotiation, device status and reset,
 * configuration space and generation, queues and interrupts. A device type
 * (blk, net, console, rng) fills a struct virtio_dev and a small ops
 * table; a transport (virtio_pci.c, virtio_mmio.c) exposes it to the guest
 * and delivers its interrupts. Neither knows the other. */
#ifndef XVM_HW_VIRTIO_VIRTIO_H
#define XVM_HW_VIRTIO_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hw/virtio/virtqueue.h"

struct machine;

#define VIRTIO_STATUS_ACKNOWLEDGE  0x01
#define VIRTIO_STATUS_DRIVER       0x02
#define VIRTIO_STATUS_DRIVER_OK    0x04
#define VIRTIO_STATUS_FEATURES_OK  0x08
#define VIRTIO_STATUS_NEEDS_RESET  0x40
#define VIRTIO_STATUS_FAILED       0x80

#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX     29
#define VIRTIO_F_VERSION_1          32

#define VIRTIO_ID_NET      1
#define VIRTIO_ID_BLOCK    2
#define VIRTIO_ID_CONSOLE  3
#define VIRTIO_ID_RNG      4

#define VIRTIO_NO_VECTOR   0xffff
#define VIRTIO_ISR_QUEUE   0x1
#define VIRTIO_ISR_CONFIG  0x2
#define VIRTIO_CONFIG_MAX  256

struct virtio_dev;

struct virtio_device_ops {
	/* The driver notified queue q (called on a vCPU thread or the event
	 * loop; only after DRIVER_OK, for an enabled queue). */
	void (*queue_notify)(struct virtio_dev *v, unsigned q);
	/* The driver set DRIVER_OK (optional). */
	void (*driver_ok)(struct virtio_dev *v);
	/* Device reset: stop using the queues and wait for in-flight work
	 * before returning (optional). */
	void (*reset)(struct virtio_dev *v);
	/* Driver wrote device configuration bytes (optional; the bytes are
	 * already in v->config if the device marked them writable). */
	void (*config_write)(struct virtio_dev *v, unsigned off, unsigned size, uint32_t val);
};

struct virtio_transport_ops {
	/* Raise the interrupt for vector (VIRTIO_NO_VECTOR allowed) with
	 * isr_bit (VIRTIO_ISR_QUEUE or VIRTIO_ISR_CONFIG). */
	void (*notify)(struct virtio_dev *v, uint16_t vector, uint8_t isr_bit);
	/* Called once the device is fully set up (DRIVER_OK) so the
	 * transport can attach fast paths (ioeventfd). Optional. */
	void (*driver_ok)(struct virtio_dev *v);
};

struct virtio_dev {
	const char *name;               /* "virtio-blk" ... */
	uint32_t device_id;
	const struct virtio_device_ops *ops;
	void *priv;                     /* device type state */
	struct machine *m;              /* NULL in unit tests */
	struct guest_ram *ram;

	uint64_t host_features;         /* offered */
	uint64_t guest_features;        /* accepted by the driver */
	uint8_t status;                 /* atomic */
	uint8_t config_generation;      /* atomic */
	uint32_t isr;                   /* atomic; read-to-clear (PCI) */
	uint16_t config_vector;

	unsigned nvqs;
	struct virtqueue *vqs;

	uint8_t config[VIRTIO_CONFIG_MAX]; /* device-specific config, LE */
	uint8_t config_wmask[VIRTIO_CONFIG_MAX];
	unsigned config_len;

	/* Transport register state. */
	pthread_mutex_t lock;           /* transport registers and status */
	uint32_t device_features_sel, driver_features_sel;
	uint16_t queue_sel;
	const struct virtio_transport_ops *transport;
	void *transport_priv;
};

/* Sets up v; host_features get VERSION_1, INDIRECT_DESC and EVENT_IDX
 * added. nvqs queues of num_max entries each. */
void virtio_dev_init(struct virtio_dev *v, struct machine *m, struct guest_ram *ram,
		     const char *name, uint32_t device_id, uint64_t features,
		     unsigned nvqs, uint16_t num_max, const struct virtio_device_ops *ops, void *priv);
void virtio_dev_destroy(struct virtio_dev *v);

bool virtio_has_feature(const struct virtio_dev *v, unsigned bit);
uint8_t virtio_get_status(const struct virtio_dev *v);
/* Driver writes the status register (0 resets). Transport lock held. */
void virtio_set_status(struct virtio_dev *v, uint8_t status);
/* Full device reset (queues, features, status, interrupts). */
void virtio_reset(struct virtio_dev *v);
/* Driver enables queue q; a bad ring puts the device in NEEDS_RESET. */
int virtio_queue_enable(struct virtio_dev *v, unsigned q);
/* Driver notification for queue q (transport's doorbell). */
void virtio_queue_kick(struct virtio_dev *v, unsigned q);

/* Device side: pop/push with NEEDS_RESET handling and interrupts. */
int virtio_pop(struct virtio_dev *v, unsigned q, struct virtq_elem **out);
void virtio_push(struct virtio_dev *v, unsigned q, struct virtq_elem *e, uint32_t written);
/* The device config changed: bump the generation and interrupt. */
void virtio_config_changed(struct virtio_dev *v);
/* The device cannot go on: NEEDS_RESET plus a config interrupt. */
void virtio_set_needs_reset(struct virtio_dev *v);
/* Config space read/write by the driver (bounds-checked, little endian). */
uint32_t virtio_config_read(struct virtio_dev *v, unsigned off, unsigned size);
void virtio_config_write(struct virtio_dev *v, unsigned off, unsigned size, uint32_t val);

/* Little-endian stores into v->config. */
void virtio_config_set16(struct virtio_dev *v, unsigned off, uint16_t val);
void virtio_config_set32(struct virtio_dev *v, unsigned off, uint32_t val);
void virtio_config_set64(struct virtio_dev *v, unsigned off, uint64_t val);

#endif
