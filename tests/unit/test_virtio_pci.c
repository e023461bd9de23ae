/* virtio-pci modern transport, driven like a guest driver would: find the
 * capabilities, negotiate, set up a queue, use MSI-X and INTx, reset.
 * The device behind it is virtio-rng (the simplest real one). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "hw/io.h"
#include "hw/pci.h"
#include "hw/virtio/devices.h"
#include "hw/virtio/transport.h"
#include "lib/util.h"
#include "virtio_harness.h"

#define RAM_SIZE  (16 * MiB)
#define RING      0x10000
#define BUF       0x100000

struct fixture {
	struct guest_ram ram;
	struct io_space *pio, *mmio;
	struct pci_bus *bus;
	struct virtio_dev *v;
	struct virtio_pci *vp;
	uint64_t common, isr, notify, device;
	uint32_t notify_mult;
	struct fake_ring r;
};

static int irq_level[64], msi_count;
static uint32_t msi_data;

static void t_set_irq(struct pci_bus *bus, unsigned gsi, int level) { irq_level[gsi] = level; }
static void t_send_msi(struct pci_bus *bus, uint64_t addr, uint32_t data) { msi_count++; msi_data = data; }

static uint32_t cfg_read(struct fixture *f, unsigned off, unsigned size)
{
	return pci_config_read(f->bus, f->vp->pci.slot, off, size);
}

static void cfg_write(struct fixture *f, unsigned off, unsigned size, uint32_t v)
{
	pci_config_write(f->bus, f->vp->pci.slot, off, size, v);
}

static uint64_t rd(struct fixture *f, uint64_t addr, unsigned size)
{
	uint64_t v;
	assert_true(io_read(f->mmio, addr, size, &v));
	return v;
}

static void wr(struct fixture *f, uint64_t addr, unsigned size, uint64_t v)
{
	assert_true(io_write(f->mmio, addr, size, v));
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_int_equal(guest_ram_init(&f->ram, RAM_SIZE), 0);
	f->pio = io_space_new("pio");
	f->mmio = io_space_new("mmio");
	f->bus = pci_bus_new(NULL, f->pio, f->mmio);
	f->bus->set_irq = t_set_irq;
	f->bus->send_msi = t_send_msi;
	f->v = virtio_rng_new(NULL, &f->ram);
	f->vp = virtio_pci_create(f->bus, f->v);
	assert_non_null(f->vp);
	memset(irq_level, 0, sizeof(irq_level));
	msi_count = 0;

	/* Walk the capabilities like virtio_pci_modern does. */
	unsigned p = cfg_read(f, PCI_CAPABILITY_LIST, 1), seen = 0;
	while (p) {
		if (cfg_read(f, p, 1) == PCI_CAP_ID_VNDR) {
			unsigned type = cfg_read(f, p + 3, 1), bar = cfg_read(f, p + 4, 1);
			uint64_t addr = bar < 6 ? pci_bar_address(&f->vp->pci, bar) + cfg_read(f, p + 8, 4) : 0;
			switch (type) {
			case VIRTIO_PCI_CAP_COMMON_CFG: f->common = addr; break;
			case VIRTIO_PCI_CAP_ISR_CFG: f->isr = addr; break;
			case VIRTIO_PCI_CAP_DEVICE_CFG: f->device = addr; break;
			case VIRTIO_PCI_CAP_NOTIFY_CFG:
				f->notify = addr;
				f->notify_mult = cfg_read(f, p + 16, 4);
				break;
			}
			seen |= 1u << type;
		}
		p = cfg_read(f, p + 1, 1);
	}
	assert_int_equal(seen, 0x3e); /* types 1..5 */
	ring_layout(&f->r, &f->ram, RING, 8);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	pci_device_remove(&f->vp->pci);
	free(f->vp);
	virtio_rng_free(f->v);
	pci_bus_free(f->bus);
	io_space_free(f->pio);
	io_space_free(f->mmio);
	guest_ram_free(&f->ram);
	free(f);
	return 0;
}

/* The standard initialisation (virtio 1.x 3.1.1) up to FEATURES_OK. */
static void negotiate(struct fixture *f)
{
	wr(f, f->common + 0x14, 1, 0);
	assert_int_equal(rd(f, f->common + 0x14, 1), 0);
	wr(f, f->common + 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(f, f->common + 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, f->common + 0x00, 4, 1);
	uint32_t hi = (uint32_t)rd(f, f->common + 0x04, 4);
	assert_true(hi & 1); /* VERSION_1 */
	wr(f, f->common + 0x00, 4, 0);
	uint32_t lo = (uint32_t)rd(f, f->common + 0x04, 4);
	assert_true(lo & (1u << VIRTIO_F_RING_INDIRECT_DESC));
	assert_true(lo & (1u << VIRTIO_F_RING_EVENT_IDX));
	wr(f, f->common + 0x08, 4, 0);
	wr(f, f->common + 0x0c, 4, 1u << VIRTIO_F_RING_INDIRECT_DESC);
	wr(f, f->common + 0x08, 4, 1);
	wr(f, f->common + 0x0c, 4, 1);
	wr(f, f->common + 0x14, 1, 0x0b);
	assert_int_equal(rd(f, f->common + 0x14, 1), 0x0b);
}

static void setup_queue(struct fixture *f, uint16_t vector)
{
	wr(f, f->common + 0x16, 2, 0);                 /* queue_select */
	assert_int_equal(rd(f, f->common + 0x18, 2), 64); /* max size offered */
	wr(f, f->common + 0x18, 2, 7);                 /* not a power of two */
	assert_int_equal(rd(f, f->common + 0x18, 2), 64);
	wr(f, f->common + 0x18, 2, 128);               /* above the maximum */
	assert_int_equal(rd(f, f->common + 0x18, 2), 64);
	wr(f, f->common + 0x18, 2, 8);
	assert_int_equal(rd(f, f->common + 0x18, 2), 8);
	wr(f, f->common + 0x1a, 2, vector);
	wr(f, f->common + 0x20, 4, (uint32_t)f->r.desc);
	wr(f, f->common + 0x24, 4, 0);
	wr(f, f->common + 0x28, 8, f->r.avail);
	wr(f, f->common + 0x30, 4, (uint32_t)f->r.used);
	wr(f, f->common + 0x34, 4, 0);
	assert_int_equal(rd(f, f->common + 0x28, 4), f->r.avail);
	wr(f, f->common + 0x1c, 2, 1);
	assert_int_equal(rd(f, f->common + 0x1c, 2), 1);
}

static void kick(struct fixture *f)
{
	uint16_t off = (uint16_t)rd(f, f->common + 0x1e, 2);
	wr(f, f->notify + (uint64_t)off * f->notify_mult, 2, 0);
}

static void test_identity(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(cfg_read(f, 0, 4), (0x1040u + VIRTIO_ID_RNG) << 16 | 0x1af4);
	assert_int_equal(cfg_read(f, PCI_REVISION_ID, 1), 1);
	assert_true(cfg_read(f, PCI_SUBSYSTEM_ID, 2) >= 0x40);
	assert_int_equal(rd(f, f->common + 0x12, 2), 1); /* num_queues */
}

static void test_msix_flow(void **state)
{
	struct fixture *f = *state;
	negotiate(f);
	setup_queue(f, 1);
	assert_int_equal(rd(f, f->common + 0x1a, 2), 1);
	wr(f, f->common + 0x10, 2, 0);                  /* config vector */
	assert_int_equal(rd(f, f->common + 0x10, 2), 0);
	wr(f, f->common + 0x10, 2, 7);                  /* no such vector */
	assert_int_equal(rd(f, f->common + 0x10, 2), VIRTIO_NO_VECTOR);

	/* Program MSI-X entry 1 and enable MSI-X. */
	uint64_t table = pci_bar_address(&f->vp->pci, VIRTIO_PCI_MSIX_BAR);
	wr(f, table + 16, 4, 0xfee00000);
	wr(f, table + 24, 4, 0x31);
	wr(f, table + 28, 4, 0);
	uint8_t cap = f->vp->pci.msix->cap;
	cfg_write(f, cap + 2, 2, 0x8000);

	wr(f, f->common + 0x14, 1, 0x0f);               /* DRIVER_OK */
	memset(hva(&f->ram, BUF), 0, 64);
	struct fake_buf b[] = { { BUF, 64, 1 } };
	ring_add(&f->r, b, 1);
	kick(f);
	assert_int_equal(ring_used_idx(&f->r), 1);
	assert_int_equal(ring_used_len(&f->r, 0), 64);
	uint8_t zero[64] = { 0 };
	assert_memory_not_equal(hva(&f->ram, BUF), zero, 64);
	assert_int_equal(msi_count, 1);
	assert_int_equal(msi_data, 0x31);
	assert_int_equal(irq_level[pci_intx_gsi(&f->vp->pci)], 0); /* no INTx with MSI-X */

	/* A notification for a queue that does not exist changes nothing. */
	wr(f, f->notify + 5 * f->notify_mult, 2, 5);
	assert_int_equal(ring_used_idx(&f->r), 1);

	/* Reset: everything back to the initial state. */
	wr(f, f->common + 0x14, 1, 0);
	assert_int_equal(rd(f, f->common + 0x14, 1), 0);
	assert_int_equal(rd(f, f->common + 0x1c, 2), 0);
	assert_int_equal(rd(f, f->common + 0x1a, 2), VIRTIO_NO_VECTOR);
}

static void test_intx_flow(void **state)
{
	struct fixture *f = *state;
	negotiate(f);
	setup_queue(f, VIRTIO_NO_VECTOR);
	wr(f, f->common + 0x14, 1, 0x0f);
	struct fake_buf b[] = { { BUF, 16, 1 } };
	ring_add(&f->r, b, 1);
	kick(f);
	unsigned gsi = pci_intx_gsi(&f->vp->pci);
	assert_int_equal(ring_used_idx(&f->r), 1);
	assert_int_equal(irq_level[gsi], 1);
	assert_true(cfg_read(f, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	assert_int_equal(rd(f, f->isr, 1), VIRTIO_ISR_QUEUE); /* read clears */
	assert_int_equal(irq_level[gsi], 0);
	assert_int_equal(rd(f, f->isr, 1), 0);
}

static void test_notify_before_driver_ok(void **state)
{
	struct fixture *f = *state;
	negotiate(f);
	setup_queue(f, VIRTIO_NO_VECTOR);
	struct fake_buf b[] = { { BUF, 16, 1 } };
	ring_add(&f->r, b, 1);
	kick(f);                                /* before DRIVER_OK: ignored */
	assert_int_equal(ring_used_idx(&f->r), 0);
	wr(f, f->common + 0x14, 1, 0x0f);       /* DRIVER_OK serves it */
	assert_int_equal(ring_used_idx(&f->r), 1);
}

static void test_bad_ring_needs_reset(void **state)
{
	struct fixture *f = *state;
	negotiate(f);
	wr(f, f->common + 0x16, 2, 0);
	wr(f, f->common + 0x18, 2, 8);
	wr(f, f->common + 0x20, 8, RAM_SIZE - 16);    /* descriptor table past RAM */
	wr(f, f->common + 0x28, 8, f->r.avail);
	wr(f, f->common + 0x30, 8, f->r.used);
	wr(f, f->common + 0x1c, 2, 1);
	assert_int_equal(rd(f, f->common + 0x1c, 2), 0);
	assert_true(rd(f, f->common + 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
	/* Selecting a queue that does not exist reads size 0 and takes no writes. */
	wr(f, f->common + 0x16, 2, 3);
	assert_int_equal(rd(f, f->common + 0x18, 2), 0);
	wr(f, f->common + 0x1c, 2, 1);
	assert_int_equal(rd(f, f->common + 0x1c, 2), 0);
	/* Reset clears NEEDS_RESET. */
	wr(f, f->common + 0x14, 1, 0);
	assert_int_equal(rd(f, f->common + 0x14, 1), 0);
}

static void test_pci_cfg_window(void **state)
{
	struct fixture *f = *state;
	negotiate(f);
	unsigned c = f->vp->cfg_cap;
	cfg_write(f, c + 4, 1, VIRTIO_PCI_BAR);
	cfg_write(f, c + 8, 4, VIRTIO_PCI_COMMON_OFF + 0x14);
	cfg_write(f, c + 12, 4, 1);
	assert_int_equal(cfg_read(f, c + 16, 4) & 0xff, 0x0b); /* device_status via config space */
	cfg_write(f, c + 16, 4, 0);                           /* reset through the window */
	assert_int_equal(rd(f, f->common + 0x14, 1), 0);
	/* A window outside the BAR does nothing. */
	cfg_write(f, c + 8, 4, 0xfffffff0);
	cfg_write(f, c + 16, 4, 0xff);
	assert_int_equal(rd(f, f->common + 0x14, 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msix_flow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_intx_flow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify_before_driver_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_ring_needs_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pci_cfg_window, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
