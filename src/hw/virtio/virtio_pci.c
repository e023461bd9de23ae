/* virtio-pci, modern interface only (virtio 1.x section 4.1). One 64-bit
 * memory BAR holds the common configuration, the ISR byte, the device
 * configuration and the notification doorbells; another BAR holds the
 * MSI-X table. Interrupts go through MSI-X when the driver enabled it and
 * through INTx (with the read-to-clear ISR) otherwise. */
#include "hw/virtio/transport.h"
#include "accel/accel.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/util.h"
#include "machine/machine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Common configuration layout (struct virtio_pci_common_cfg). */
#define CC_DFSELECT      0x00
#define CC_DF            0x04
#define CC_GFSELECT      0x08
#define CC_GF            0x0c
#define CC_MSIX_CONFIG   0x10
#define CC_NUM_QUEUES    0x12
#define CC_STATUS        0x14
#define CC_CFG_GEN       0x15
#define CC_Q_SELECT      0x16
#define CC_Q_SIZE        0x18
#define CC_Q_MSIX        0x1a
#define CC_Q_ENABLE      0x1c
#define CC_Q_NOTIFY_OFF  0x1e
#define CC_Q_DESC        0x20
#define CC_Q_DRIVER      0x28
#define CC_Q_DEVICE      0x30
#define CC_SIZE          0x38

static struct virtqueue *selected_vq(struct virtio_dev *v)
{
	return v->queue_sel < v->nvqs ? &v->vqs[v->queue_sel] : NULL;
}

static uint64_t common_read(struct virtio_pci *vp, unsigned off, unsigned size)
{
	struct virtio_dev *v = vp->v;
	uint8_t b[CC_SIZE] = { 0 };
	if (off >= CC_SIZE || size > CC_SIZE - off)
		return 0;
	pthread_mutex_lock(&v->lock);
	struct virtqueue *vq = selected_vq(v);
	pci_set_u32(b + CC_DFSELECT, v->device_features_sel);
	if (v->device_features_sel < 2)
		pci_set_u32(b + CC_DF, (uint32_t)(v->host_features >> (32 * v->device_features_sel)));
	pci_set_u32(b + CC_GFSELECT, v->driver_features_sel);
	if (v->driver_features_sel < 2)
		pci_set_u32(b + CC_GF, (uint32_t)(v->guest_features >> (32 * v->driver_features_sel)));
	pci_set_u16(b + CC_MSIX_CONFIG, v->config_vector);
	pci_set_u16(b + CC_NUM_QUEUES, (uint16_t)v->nvqs);
	b[CC_STATUS] = virtio_get_status(v);
	b[CC_CFG_GEN] = __atomic_load_n(&v->config_generation, __ATOMIC_ACQUIRE);
	pci_set_u16(b + CC_Q_SELECT, v->queue_sel);
	if (vq) {
		pci_set_u16(b + CC_Q_SIZE, vq->num);
		pci_set_u16(b + CC_Q_MSIX, vq->msix_vector);
		pci_set_u16(b + CC_Q_ENABLE, vq->enabled);
		pci_set_u16(b + CC_Q_NOTIFY_OFF, v->queue_sel);
		pci_set_u32(b + CC_Q_DESC, (uint32_t)vq->desc_gpa);
		pci_set_u32(b + CC_Q_DESC + 4, (uint32_t)(vq->desc_gpa >> 32));
		pci_set_u32(b + CC_Q_DRIVER, (uint32_t)vq->avail_gpa);
		pci_set_u32(b + CC_Q_DRIVER + 4, (uint32_t)(vq->avail_gpa >> 32));
		pci_set_u32(b + CC_Q_DEVICE, (uint32_t)vq->used_gpa);
		pci_set_u32(b + CC_Q_DEVICE + 4, (uint32_t)(vq->used_gpa >> 32));
	}
	pthread_mutex_unlock(&v->lock);
	uint64_t val = 0;
	for (unsigned i = 0; i < size; i++)
		val |= (uint64_t)b[off + i] << (8 * i);
	return val;
}

/* A vector the driver asks for, or NO_VECTOR if we have no such entry
 * (the driver reads it back to see the mapping failed). */
static uint16_t checked_vector(struct virtio_pci *vp, uint64_t val)
{
	uint16_t vec = (uint16_t)val;
	if (vec != VIRTIO_NO_VECTOR && (!vp->pci.msix || vec >= vp->pci.msix->nvectors))
		return VIRTIO_NO_VECTOR;
	return vec;
}

/* Writes part of a 64-bit queue address (4- or 8-byte access). */
static void set_addr(uint64_t *addr, unsigned rel, unsigned size, uint64_t val)
{
	if (size == 8 && rel == 0)
		*addr = val;
	else if (size == 4 && rel == 0)
		*addr = (*addr & ~0xffffffffull) | (uint32_t)val;
	else if (size == 4 && rel == 4)
		*addr = (*addr & 0xffffffffull) | val << 32;
}

static void common_write(struct virtio_pci *vp, unsigned off, unsigned size, uint64_t val)
{
	struct virtio_dev *v = vp->v;
	pthread_mutex_lock(&v->lock);
	struct virtqueue *vq = selected_vq(v);
	bool features_locked = virtio_get_status(v) & VIRTIO_STATUS_FEATURES_OK;
	switch (off) {
	case CC_DFSELECT:
		v->device_features_sel = (uint32_t)val;
		break;
	case CC_GFSELECT:
		v->driver_features_sel = (uint32_t)val;
		break;
	case CC_GF:
		if (features_locked || v->driver_features_sel >= 2)
			break;
		if (v->driver_features_sel == 0)
			v->guest_features = (v->guest_features & ~0xffffffffull) | (uint32_t)val;
		else
			v->guest_features = (v->guest_features & 0xffffffffull) | val << 32;
		break;
	case CC_MSIX_CONFIG:
		v->config_vector = checked_vector(vp, val);
		break;
	case CC_STATUS:
		pthread_mutex_unlock(&v->lock);
		/* Reset may wait for device workers: no transport lock held. */
		virtio_set_status(v, (uint8_t)val);
		if ((uint8_t)val == 0)
			pci_set_irq(&vp->pci, 0);
		return;
	case CC_Q_SELECT:
		v->queue_sel = (uint16_t)val;
		break;
	case CC_Q_SIZE:
		if (!vq || vq->enabled)
			break;
		if (!vq_size_valid(vq, (uint32_t)(uint16_t)val)) {
			log_once(LOG_WARN, "%s: driver chose an invalid queue size %u (max %u); ignored",
				 v->name, (unsigned)(uint16_t)val, vq->num_max);
			break;
		}
		vq->num = (uint16_t)val;
		break;
	case CC_Q_MSIX:
		if (vq)
			__atomic_store_n(&vq->msix_vector, checked_vector(vp, val), __ATOMIC_RELAXED);
		break;
	case CC_Q_ENABLE:
		if (vq && (val & 1) && !vq->enabled) {
			pthread_mutex_unlock(&v->lock);
			virtio_queue_enable(v, v->queue_sel);
			return;
		}
		break;
	default:
		if (vq && !vq->enabled) {
			if (off >= CC_Q_DESC && off < CC_Q_DESC + 8)
				set_addr(&vq->desc_gpa, off - CC_Q_DESC, size, val);
			else if (off >= CC_Q_DRIVER && off < CC_Q_DRIVER + 8)
				set_addr(&vq->avail_gpa, off - CC_Q_DRIVER, size, val);
			else if (off >= CC_Q_DEVICE && off < CC_Q_DEVICE + 8)
				set_addr(&vq->used_gpa, off - CC_Q_DEVICE, size, val);
		}
		break;
	}
	pthread_mutex_unlock(&v->lock);
}

uint64_t virtio_pci_bar_read(struct virtio_pci *vp, uint64_t off, unsigned size)
{
	struct virtio_dev *v = vp->v;
	if (off < VIRTIO_PCI_ISR_OFF)
		return common_read(vp, (unsigned)off, size);
	if (off < VIRTIO_PCI_DEVICE_OFF) {
		if (off != VIRTIO_PCI_ISR_OFF)
			return 0;
		/* Reading the ISR acknowledges the interrupt. */
		uint32_t isr = __atomic_exchange_n(&v->isr, 0, __ATOMIC_ACQ_REL);
		pci_set_irq(&vp->pci, 0);
		return isr & 0xff;
	}
	if (off < VIRTIO_PCI_NOTIFY_OFF)
		return virtio_config_read(v, (unsigned)(off - VIRTIO_PCI_DEVICE_OFF), size);
	return 0;
}

void virtio_pci_bar_write(struct virtio_pci *vp, uint64_t off, unsigned size, uint64_t val)
{
	struct virtio_dev *v = vp->v;
	if (off < VIRTIO_PCI_ISR_OFF) {
		common_write(vp, (unsigned)off, size, val);
	} else if (off >= VIRTIO_PCI_DEVICE_OFF && off < VIRTIO_PCI_NOTIFY_OFF) {
		virtio_config_write(v, (unsigned)(off - VIRTIO_PCI_DEVICE_OFF), size, (uint32_t)val);
	} else if (off >= VIRTIO_PCI_NOTIFY_OFF) {
		uint64_t rel = off - VIRTIO_PCI_NOTIFY_OFF;
		if (rel % VIRTIO_PCI_NOTIFY_MULT == 0)
			virtio_queue_kick(v, (unsigned)(rel / VIRTIO_PCI_NOTIFY_MULT));
	}
}

static uint64_t bar_read(void *opaque, uint64_t off, unsigned size)
{
	return virtio_pci_bar_read(opaque, off, size);
}

static void bar_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	virtio_pci_bar_write(opaque, off, size, val);
}

static const struct io_ops virtio_pci_bar_ops = { bar_read, bar_write };

/* ---- interrupts ---- */

static void pci_notify(struct virtio_dev *v, uint16_t vector, uint8_t isr_bit)
{
	struct virtio_pci *vp = v->transport_priv;
	if (pci_msix_enabled(&vp->pci)) {
		if (vector != VIRTIO_NO_VECTOR)
			pci_msix_notify(&vp->pci, vector);
		return;
	}
	pci_set_irq(&vp->pci, 1);
}

/* ---- ioeventfd fast path (KVM): doorbell writes signal an eventfd
 * that the event loop turns into queue notifications, so the vCPU does
 * not leave the guest for them. ---- */

struct doorbell {
	struct virtio_pci *vp;
	unsigned q;
	int fd;
};

static void doorbell_ready(void *opaque, uint32_t events)
{
	struct doorbell *db = opaque;
	uint64_t n;
	if (read(db->fd, &n, sizeof(n)) == sizeof(n))
		virtio_queue_kick(db->vp->v, db->q);
}

static void pci_driver_ok(struct virtio_dev *v)
{
	struct virtio_pci *vp = v->transport_priv;
	struct machine *m = v->m;
	if (vp->ioeventfds || !m || !m->loop || !m->accel || !m->accel->add_ioeventfd)
		return;
	/* Once per device: the engine has no way to remove them, and the
	 * BAR does not move after the driver is bound. */
	vp->ioeventfds = true;
	uint64_t base = pci_bar_address(&vp->pci, VIRTIO_PCI_BAR);
	vp->doorbells = xcalloc(v->nvqs, sizeof(*vp->doorbells));
	for (unsigned q = 0; q < v->nvqs; q++) {
		int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd < 0)
			return;
		uint64_t addr = base + VIRTIO_PCI_NOTIFY_OFF + q * VIRTIO_PCI_NOTIFY_MULT;
		if (m->accel->add_ioeventfd(m, false, addr, 2, fd) < 0) {
			close(fd);
			return; /* -ENOTSUP: the MMIO path serves every queue */
		}
		struct doorbell *db = &vp->doorbells[vp->ndoorbells];
		db->vp = vp;
		db->q = q;
		db->fd = fd;
		if (loop_add_fd(m->loop, fd, EPOLLIN, doorbell_ready, db) < 0) {
			close(fd);
			return;
		}
		vp->ndoorbells++;
	}
}

static const struct virtio_transport_ops pci_transport = {
	.notify = pci_notify,
	.driver_ok = pci_driver_ok,
};

/* ---- capabilities ---- */

static uint8_t add_virtio_cap(struct pci_device *d, uint8_t type, uint8_t len,
			      uint8_t bar, uint32_t offset, uint32_t length)
{
	uint8_t c = pci_add_capability(d, PCI_CAP_ID_VNDR, len);
	if (!c)
		return 0;
	d->config[c + 2] = len;
	d->config[c + 3] = type;
	d->config[c + 4] = bar;
	pci_set_u32(d->config + c + 8, offset);
	pci_set_u32(d->config + c + 12, length);
	return c;
}

/* VIRTIO_PCI_CAP_PCI_CFG: a window into the BARs through config space
 * (bar, offset, length, data[4]), for drivers that cannot map BARs. */
static bool cfg_window(struct virtio_pci *vp, uint64_t *off, unsigned *len)
{
	const uint8_t *c = vp->pci.config + vp->cfg_cap;
	*off = pci_get_u32(c + 8);
	*len = pci_get_u32(c + 12);
	return c[4] == VIRTIO_PCI_BAR && (*len == 1 || *len == 2 || *len == 4) &&
	       *off < VIRTIO_PCI_BAR_SIZE && *off + *len <= VIRTIO_PCI_BAR_SIZE && !(*off & (*len - 1));
}

static void cfg_cap_write(struct pci_device *d, unsigned off, unsigned size, uint32_t val)
{
	struct virtio_pci *vp = d->opaque;
	unsigned data = vp->cfg_cap + 16u;
	uint64_t bar_off;
	unsigned len;
	if (off < data || off >= data + 4 || !cfg_window(vp, &bar_off, &len))
		return;
	virtio_pci_bar_write(vp, bar_off, len, pci_get_u32(d->config + data));
}

static void cfg_cap_read(struct pci_device *d, unsigned off, unsigned size)
{
	struct virtio_pci *vp = d->opaque;
	unsigned data = vp->cfg_cap + 16u;
	uint64_t bar_off;
	unsigned len;
	if (off + size <= data || off >= data + 4 || !cfg_window(vp, &bar_off, &len))
		return;
	pci_set_u32(d->config + data, (uint32_t)virtio_pci_bar_read(vp, bar_off, len));
}

static uint32_t pci_class_for(uint32_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_NET:     return 0x020000; /* network: ethernet */
	case VIRTIO_ID_BLOCK:   return 0x010000; /* storage: SCSI */
	case VIRTIO_ID_CONSOLE: return 0x078000; /* communication: other */
	default:                return 0x00ff00; /* unclassified */
	}
}

struct virtio_pci *virtio_pci_create(struct pci_bus *bus, struct virtio_dev *v)
{
	struct virtio_pci *vp = xcalloc(1, sizeof(*vp));
	struct pci_device *d = &vp->pci;
	vp->v = v;
	uint16_t id = (uint16_t)(0x1040 + v->device_id);
	if (pci_device_init(bus, d, v->name, 0x1af4, id, pci_class_for(v->device_id), 1,
			    0x1af4, id, false) < 0) {
		free(vp);
		return NULL;
	}
	d->opaque = vp;
	unsigned nvec = v->nvqs + 1;
	if (add_virtio_cap(d, VIRTIO_PCI_CAP_COMMON_CFG, 16, VIRTIO_PCI_BAR, VIRTIO_PCI_COMMON_OFF, CC_SIZE) == 0 ||
	    add_virtio_cap(d, VIRTIO_PCI_CAP_ISR_CFG, 16, VIRTIO_PCI_BAR, VIRTIO_PCI_ISR_OFF, 4) == 0 ||
	    add_virtio_cap(d, VIRTIO_PCI_CAP_DEVICE_CFG, 16, VIRTIO_PCI_BAR, VIRTIO_PCI_DEVICE_OFF,
			   MAX(v->config_len, 4u)) == 0)
		goto fail;
	uint8_t n = add_virtio_cap(d, VIRTIO_PCI_CAP_NOTIFY_CFG, 20, VIRTIO_PCI_BAR, VIRTIO_PCI_NOTIFY_OFF,
				   MAX(v->nvqs, 1u) * VIRTIO_PCI_NOTIFY_MULT);
	if (!n)
		goto fail;
	pci_set_u32(d->config + n + 16, VIRTIO_PCI_NOTIFY_MULT);
	vp->cfg_cap = add_virtio_cap(d, VIRTIO_PCI_CAP_PCI_CFG, 20, 0, 0, 0);
	if (!vp->cfg_cap)
		goto fail;
	d->wmask[vp->cfg_cap + 4] = 0xff;
	memset(d->wmask + vp->cfg_cap + 8, 0xff, 12);
	d->config_write = cfg_cap_write;
	d->config_read = cfg_cap_read;
	if (nvec * 16 > VIRTIO_PCI_MSIX_PBA || pci_msix_init(d, nvec, VIRTIO_PCI_MSIX_BAR, 0, VIRTIO_PCI_MSIX_PBA) < 0)
		goto fail;
	if (pci_register_bar(d, VIRTIO_PCI_MSIX_BAR, PCI_BAR_MEM32, false, 4 * KiB, &pci_msix_bar_ops, d) < 0 ||
	    pci_register_bar(d, VIRTIO_PCI_BAR, PCI_BAR_MEM64, false, VIRTIO_PCI_BAR_SIZE,
			     &virtio_pci_bar_ops, vp) < 0)
		goto fail;
	v->transport = &pci_transport;
	v->transport_priv = vp;
	return vp;
fail:
	log_err("%s: cannot build the virtio-pci function", v->name);
	pci_device_remove(d);
	free(vp);
	return NULL;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	if (!vp)
		return;
	for (unsigned i = 0; i < vp->ndoorbells; i++) {
		loop_del_fd(vp->v->m->loop, vp->doorbells[i].fd);
		close(vp->doorbells[i].fd);
	}
	free(vp->doorbells);
	pci_device_remove(&vp->pci);
	free(vp);
}
