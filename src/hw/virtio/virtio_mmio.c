/* virtio-mmio version 2 (virtio 1.x section 4.2): one 4 KiB register
 * window per device and an edge-triggered GSI. Kernels find these devices
 * on the command line (virtio_mmio.device=4K@ADDR:GSI), see
 * virtio_mmio_cmdline in devices.h. */
#include "hw/virtio/transport.h"
#include "hw/virtio/devices.h"
#include "lib/log.h"
#include "lib/util.h"
#include "machine/layout.h"
#include "machine/machine.h"

#include <stdlib.h>

#define MMIO_MAGIC            0x000
#define MMIO_VERSION          0x004
#define MMIO_DEVICE_ID        0x008
#define MMIO_VENDOR_ID        0x00c
#define MMIO_DEVICE_FEATURES  0x010
#define MMIO_DEVICE_FEATURES_SEL 0x014
#define MMIO_DRIVER_FEATURES  0x020
#define MMIO_DRIVER_FEATURES_SEL 0x024
#define MMIO_QUEUE_SEL        0x030
#define MMIO_QUEUE_NUM_MAX    0x034
#define MMIO_QUEUE_NUM        0x038
#define MMIO_QUEUE_READY      0x044
#define MMIO_QUEUE_NOTIFY     0x050
#define MMIO_INTERRUPT_STATUS 0x060
#define MMIO_INTERRUPT_ACK    0x064
#define MMIO_STATUS           0x070
#define MMIO_QUEUE_DESC_LOW   0x080
#define MMIO_QUEUE_DESC_HIGH  0x084
#define MMIO_QUEUE_DRIVER_LOW 0x090
#define MMIO_QUEUE_DRIVER_HIGH 0x094
#define MMIO_QUEUE_DEVICE_LOW 0x0a0
#define MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define MMIO_SHM_LEN_LOW      0x0b0
#define MMIO_SHM_LEN_HIGH     0x0b4
#define MMIO_CONFIG_GENERATION 0x0fc
#define MMIO_CONFIG           0x100

static struct virtqueue *selected_vq(struct virtio_dev *v)
{
	return v->queue_sel < v->nvqs ? &v->vqs[v->queue_sel] : NULL;
}

static uint64_t mmio_read(void *opaque, uint64_t off, unsigned size)
{
	struct virtio_mmio *vm = opaque;
	struct virtio_dev *v = vm->v;
	if (off >= MMIO_CONFIG)
		return virtio_config_read(v, (unsigned)(off - MMIO_CONFIG), size);
	if (size != 4 || (off & 3)) {
		log_once(LOG_WARN, "%s: virtio-mmio register read of %u bytes at %#llx ignored",
			 v->name, size, (unsigned long long)off);
		return 0;
	}
	uint32_t val = 0;
	pthread_mutex_lock(&v->lock);
	struct virtqueue *vq = selected_vq(v);
	switch (off) {
	case MMIO_MAGIC:        val = VIRTIO_MMIO_MAGIC; break;
	case MMIO_VERSION:      val = 2; break;
	case MMIO_DEVICE_ID:    val = v->device_id; break;
	case MMIO_VENDOR_ID:    val = VIRTIO_MMIO_VENDOR; break;
	case MMIO_DEVICE_FEATURES:
		if (v->device_features_sel < 2)
			val = (uint32_t)(v->host_features >> (32 * v->device_features_sel));
		break;
	case MMIO_QUEUE_NUM_MAX: val = vq ? vq->num_max : 0; break;
	case MMIO_QUEUE_READY:  val = vq ? vq->enabled : 0; break;
	case MMIO_INTERRUPT_STATUS:
		val = __atomic_load_n(&vm->interrupt_status, __ATOMIC_ACQUIRE);
		break;
	case MMIO_STATUS:       val = virtio_get_status(v); break;
	case MMIO_SHM_LEN_LOW:
	case MMIO_SHM_LEN_HIGH: val = 0xffffffff; break; /* no shared memory regions */
	case MMIO_CONFIG_GENERATION:
		val = __atomic_load_n(&v->config_generation, __ATOMIC_ACQUIRE);
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&v->lock);
	return val;
}

static void set_half(uint64_t *addr, bool high, uint32_t val)
{
	if (high)
		*addr = (*addr & 0xffffffffull) | (uint64_t)val << 32;
	else
		*addr = (*addr & ~0xffffffffull) | val;
}

static void mmio_write(void *opaque, uint64_t off, unsigned size, uint64_t val64)
{
	struct virtio_mmio *vm = opaque;
	struct virtio_dev *v = vm->v;
	if (off >= MMIO_CONFIG) {
		virtio_config_write(v, (unsigned)(off - MMIO_CONFIG), size, (uint32_t)val64);
		return;
	}
	if (size != 4 || (off & 3)) {
		log_once(LOG_WARN, "%s: virtio-mmio register write of %u bytes at %#llx ignored",
			 v->name, size, (unsigned long long)off);
		return;
	}
	uint32_t val = (uint32_t)val64;
	if (off == MMIO_QUEUE_NOTIFY) {
		virtio_queue_kick(v, val & 0xffff);
		return;
	}
	if (off == MMIO_STATUS) {
		/* Reset may wait for device workers: no transport lock held. */
		virtio_set_status(v, (uint8_t)val);
		if ((uint8_t)val == 0)
			__atomic_store_n(&vm->interrupt_status, 0, __ATOMIC_RELEASE);
		return;
	}
	if (off == MMIO_INTERRUPT_ACK) {
		__atomic_and_fetch(&vm->interrupt_status, ~val, __ATOMIC_ACQ_REL);
		return;
	}
	pthread_mutex_lock(&v->lock);
	struct virtqueue *vq = selected_vq(v);
	bool features_locked = virtio_get_status(v) & VIRTIO_STATUS_FEATURES_OK;
	bool queue_writable = vq && !vq->enabled;
	unsigned q = v->queue_sel;
	bool enable = false;
	switch (off) {
	case MMIO_DEVICE_FEATURES_SEL: v->device_features_sel = val; break;
	case MMIO_DRIVER_FEATURES_SEL: v->driver_features_sel = val; break;
	case MMIO_DRIVER_FEATURES:
		if (features_locked || v->driver_features_sel >= 2)
			break;
		if (v->driver_features_sel == 0)
			v->guest_features = (v->guest_features & ~0xffffffffull) | val;
		else
			v->guest_features = (v->guest_features & 0xffffffffull) | (uint64_t)val << 32;
		break;
	case MMIO_QUEUE_SEL:   v->queue_sel = (uint16_t)MIN(val, 0xffffu); break;
	case MMIO_QUEUE_NUM:
		if (!queue_writable)
			break;
		if (!vq_size_valid(vq, val)) {
			log_once(LOG_WARN, "%s: driver chose an invalid queue size %u (max %u); ignored",
				 v->name, val, vq->num_max);
			break;
		}
		vq->num = (uint16_t)val;
		break;
	case MMIO_QUEUE_READY:
		enable = queue_writable && (val & 1);
		break;
	case MMIO_QUEUE_DESC_LOW:
	case MMIO_QUEUE_DESC_HIGH:
		if (queue_writable)
			set_half(&vq->desc_gpa, off == MMIO_QUEUE_DESC_HIGH, val);
		break;
	case MMIO_QUEUE_DRIVER_LOW:
	case MMIO_QUEUE_DRIVER_HIGH:
		if (queue_writable)
			set_half(&vq->avail_gpa, off == MMIO_QUEUE_DRIVER_HIGH, val);
		break;
	case MMIO_QUEUE_DEVICE_LOW:
	case MMIO_QUEUE_DEVICE_HIGH:
		if (queue_writable)
			set_half(&vq->used_gpa, off == MMIO_QUEUE_DEVICE_HIGH, val);
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&v->lock);
	if (enable)
		virtio_queue_enable(v, q);
}

const struct io_ops virtio_mmio_ops = { mmio_read, mmio_write };

static void mmio_notify(struct virtio_dev *v, uint16_t vector, uint8_t isr_bit)
{
	struct virtio_mmio *vm = v->transport_priv;
	__atomic_or_fetch(&vm->interrupt_status, isr_bit, __ATOMIC_ACQ_REL);
	if (vm->pulse_irq)
		vm->pulse_irq(vm);
}

static const struct virtio_transport_ops mmio_transport = {
	.notify = mmio_notify,
};

static void machine_pulse(struct virtio_mmio *vm)
{
	machine_pulse_irq(vm->m, vm->gsi);
}

struct virtio_mmio *virtio_mmio_new(struct virtio_dev *v, uint64_t base, unsigned gsi)
{
	struct virtio_mmio *vm = xcalloc(1, sizeof(*vm));
	vm->v = v;
	vm->base = base;
	vm->gsi = gsi;
	v->transport = &mmio_transport;
	v->transport_priv = vm;
	return vm;
}

struct virtio_mmio *virtio_mmio_create(struct machine *m, struct virtio_dev *v)
{
	int slot = virtio_board_claim_mmio_slot(m);
	if (slot < 0) {
		log_err("%s: no free virtio-mmio slot (at most %d)", v->name,
			VIRTIO_MMIO_GSI_MAX - VIRTIO_MMIO_GSI_BASE + 1);
		return NULL;
	}
	uint64_t base = VIRTIO_MMIO_BASE + (uint64_t)slot * VIRTIO_MMIO_SLOT;
	struct virtio_mmio *vm = virtio_mmio_new(v, base, VIRTIO_MMIO_GSI_BASE + (unsigned)slot);
	vm->m = m;
	vm->pulse_irq = machine_pulse;
	if (io_register(m->mmio, base, VIRTIO_MMIO_SLOT, &virtio_mmio_ops, vm, v->name) < 0) {
		log_err("%s: cannot register virtio-mmio window at %#llx", v->name, (unsigned long long)base);
		free(vm);
		return NULL;
	}
	virtio_board_add_mmio(m, vm);
	return vm;
}
