/* The virtio devices of a machine: built from m->cfg (disks, networks,
 * rng, console) on the transport each one asks for (PCI by default,
 * "transport=mmio" for virtio-mmio), plus the constructors of each device
 * type for tests and other users. */
#ifndef XVM_HW_VIRTIO_DEVICES_H
#define XVM_HW_VIRTIO_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hw/virtio/virtio.h"

struct machine;
struct blockdev;
struct net_backend;
struct virtio_mmio;

/* Creates every virtio device m->cfg asks for (needs pci_init(m) first
 * for PCI ones). Returns 0 or -1 with a message logged. */
int virtio_create_devices(struct machine *m);
void virtio_destroy_devices(struct machine *m);

/* Appends " virtio_mmio.device=4K@0xADDR:GSI" for each virtio-mmio device
 * to the kernel command line in buf (NUL-terminated, size len). Returns 0,
 * or -ENOSPC if it does not fit (buf unchanged). */
int virtio_mmio_cmdline(struct machine *m, char *buf, size_t len);

/* The virtio-mmio devices, for ACPI (a DSDT device "LNRO0005" each, with
 * a memory _CRS of size bytes at base and an edge interrupt on gsi): the
 * way Debian's kernel finds them, since it is built without
 * CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES. Returns how many (fills at most max). */
struct virtio_mmio_info {
	uint64_t base;
	uint64_t size;
	unsigned gsi;
};
unsigned virtio_mmio_list(struct machine *m, struct virtio_mmio_info *out, unsigned max);

/* Used by virtio_mmio.c. */
int virtio_board_claim_mmio_slot(struct machine *m);
void virtio_board_add_mmio(struct machine *m, struct virtio_mmio *vm);

/* ---- device types ---- */

/* virtio-blk on an open block device (not owned). serial may be NULL. */
struct virtio_dev *virtio_blk_new(struct machine *m, struct guest_ram *ram, struct blockdev *bd,
				  bool readonly, const char *serial);
void virtio_blk_free(struct virtio_dev *v);

/* virtio-rng: host getrandom(). */
struct virtio_dev *virtio_rng_new(struct machine *m, struct guest_ram *ram);
void virtio_rng_free(struct virtio_dev *v);

/* virtio-console: one port (hvc0). Output goes to write(opaque, buf, len);
 * input is fed with virtio_console_input (from any thread); when input was
 * refused for lack of room, input_room(opaque) says when to try again. */
struct virtio_console_sink {
	void (*write)(void *opaque, const uint8_t *buf, size_t len);
	void (*input_room)(void *opaque);
	void *opaque;
};
struct virtio_dev *virtio_console_new(struct machine *m, struct guest_ram *ram,
				      const struct virtio_console_sink *sink);
/* Queues host input for the guest; returns bytes accepted (fewer when
 * the guest is not reading: input_room follows once it does). */
size_t virtio_console_input(struct virtio_dev *v, const uint8_t *buf, size_t len);
void virtio_console_free(struct virtio_dev *v);

/* virtio-net on a backend (net/net.h). mac: 6 bytes. */
struct virtio_dev *virtio_net_new(struct machine *m, struct guest_ram *ram,
				  const uint8_t mac[6], struct net_backend *be);
/* Close the backend first (after that it delivers nothing). */
void virtio_net_free(struct virtio_dev *v);

#endif
