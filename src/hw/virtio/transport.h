/* The two virtio transports. Both expose a struct virtio_dev to the guest:
 * virtio-pci modern (virtio 1.x section 4.1) on the PCI bus, virtio-mmio
 * version 2 (section 4.2) at VIRTIO_MMIO_BASE + n * VIRTIO_MMIO_SLOT. */
#ifndef XVM_HW_VIRTIO_TRANSPORT_H
#define XVM_HW_VIRTIO_TRANSPORT_H

#include <stdint.h>
#include <stddef.h>

#include "hw/io.h"
#include "hw/pci.h"
#include "hw/virtio/virtio.h"

struct machine;

/* ---- virtio-pci ---- */

/* BAR layout of a virtio-pci function. */
#define VIRTIO_PCI_MSIX_BAR       1   /* 4 KiB: MSI-X table at 0, PBA at 0x800 */
#define VIRTIO_PCI_MSIX_PBA       0x800
#define VIRTIO_PCI_BAR            4   /* 64-bit, 16 KiB: the four regions */
#define VIRTIO_PCI_COMMON_OFF     0x0000
#define VIRTIO_PCI_ISR_OFF        0x1000
#define VIRTIO_PCI_DEVICE_OFF     0x2000
#define VIRTIO_PCI_NOTIFY_OFF     0x3000
#define VIRTIO_PCI_NOTIFY_MULT    4
#define VIRTIO_PCI_BAR_SIZE       0x4000

/* virtio_pci_cap cfg_type values. */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG    3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG    5

struct virtio_pci {
	struct pci_device pci;
	struct virtio_dev *v;
	uint8_t cfg_cap;          /* offset of the PCI_CFG access capability */
	bool ioeventfds;          /* notifications arrive through eventfds */
	struct doorbell *doorbells;  /* one per queue when ioeventfds */
	unsigned ndoorbells;
};

/* Puts v on the bus as a modern virtio-pci function (vendor 0x1AF4,
 * device 0x1040 + type) with MSI-X (one vector per queue plus config).
 * Returns NULL on failure (message logged). */
struct virtio_pci *virtio_pci_create(struct pci_bus *bus, struct virtio_dev *v);
/* Removes the function from the bus and frees it (vCPUs stopped). */
void virtio_pci_destroy(struct virtio_pci *vp);
/* Region accesses (for tests and the PCI_CFG window): off inside the BAR. */
uint64_t virtio_pci_bar_read(struct virtio_pci *vp, uint64_t off, unsigned size);
void virtio_pci_bar_write(struct virtio_pci *vp, uint64_t off, unsigned size, uint64_t val);

/* ---- virtio-mmio ---- */

#define VIRTIO_MMIO_MAGIC         0x74726976  /* "virt" */
#define VIRTIO_MMIO_VENDOR        0x4d565847  /* "XVM" */

struct virtio_mmio {
	struct virtio_dev *v;
	uint64_t base;
	unsigned gsi;
	uint32_t interrupt_status;   /* atomic */
	/* Edge interrupt out (machine_pulse_irq by default). */
	void (*pulse_irq)(struct virtio_mmio *vm);
	struct machine *m;
	void *test_opaque;
};

extern const struct io_ops virtio_mmio_ops;  /* opaque = struct virtio_mmio * */
/* Places v at the next free virtio-mmio slot of m. NULL when full. */
struct virtio_mmio *virtio_mmio_create(struct machine *m, struct virtio_dev *v);
/* Standalone instance for tests (nothing registered). */
struct virtio_mmio *virtio_mmio_new(struct virtio_dev *v, uint64_t base, unsigned gsi);

#endif
