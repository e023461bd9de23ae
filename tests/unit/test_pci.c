/* PCI: configuration mechanisms, config space masks, BAR sizing and
 * remapping, INTx routing with INTX_DISABLE, MSI-X table/PBA/masking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "hw/io.h"
#include "hw/pci.h"
#include "lib/util.h"
#include "machine/layout.h"

struct fixture {
	struct io_space *pio, *mmio;
	struct pci_bus *bus;
	struct pci_device dev;
	int bar_hits;
	uint64_t last_off;
};

static int irq_level[64];
static int msi_count;
static uint64_t msi_addr;
static uint32_t msi_data;

static void test_set_irq(struct pci_bus *bus, unsigned gsi, int level) { irq_level[gsi] = level; }
static void test_send_msi(struct pci_bus *bus, uint64_t addr, uint32_t data)
{
	msi_count++;
	msi_addr = addr;
	msi_data = data;
}

static uint64_t bar_read(void *opaque, uint64_t off, unsigned size)
{
	struct fixture *f = opaque;
	f->bar_hits++;
	f->last_off = off;
	return 0xab;
}

static void bar_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
	struct fixture *f = opaque;
	f->bar_hits++;
	f->last_off = off;
}

static const struct io_ops bar_ops = { bar_read, bar_write };

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->pio = io_space_new("pio");
	f->mmio = io_space_new("mmio");
	f->bus = pci_bus_new(NULL, f->pio, f->mmio);
	f->bus->set_irq = test_set_irq;
	f->bus->send_msi = test_send_msi;
	io_register(f->pio, PORT_PCI_CONFIG, 1, &pci_cf8_ops, f->bus, "cf8");
	io_register(f->pio, PORT_PCI_CONFIG + 4, 4, &pci_cfc_ops, f->bus, "cfc");
	io_register(f->mmio, PCI_ECAM_BASE, PCI_ECAM_SIZE, &pci_ecam_ops, f->bus, "ecam");
	assert_int_equal(pci_device_init(f->bus, &f->dev, "testdev", 0x1af4, 0x1042, 0x010000, 1,
					 0x1af4, 0x0042, false), 0);
	assert_int_equal(pci_register_bar(&f->dev, 0, PCI_BAR_MEM32, false, 4096, &bar_ops, f), 0);
	assert_int_equal(pci_register_bar(&f->dev, 1, PCI_BAR_IO, false, 32, &bar_ops, f), 0);
	assert_int_equal(pci_register_bar(&f->dev, 2, PCI_BAR_MEM64, true, 16384, &bar_ops, f), 0);
	memset(irq_level, 0, sizeof(irq_level));
	msi_count = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	pci_device_remove(&f->dev);
	pci_bus_free(f->bus);
	io_space_free(f->pio);
	io_space_free(f->mmio);
	free(f);
	return 0;
}

/* Mechanism #1 helpers. */
static uint32_t cf8_read(struct fixture *f, unsigned slot, unsigned reg, unsigned size)
{
	uint64_t v;
	io_write(f->pio, 0xCF8, 4, 0x80000000u | slot << 11 | (reg & 0xfc));
	io_read(f->pio, 0xCFC + (reg & 3), size, &v);
	return (uint32_t)v;
}

static void cf8_write(struct fixture *f, unsigned slot, unsigned reg, unsigned size, uint32_t val)
{
	io_write(f->pio, 0xCF8, 4, 0x80000000u | slot << 11 | (reg & 0xfc));
	io_write(f->pio, 0xCFC + (reg & 3), size, val);
}

static uint32_t ecam_read(struct fixture *f, unsigned slot, unsigned reg, unsigned size)
{
	uint64_t v;
	io_read(f->mmio, PCI_ECAM_BASE + (slot << 15) + reg, size, &v);
	return (uint32_t)v;
}

static void test_config_mechanisms(void **state)
{
	struct fixture *f = *state;
	unsigned s = f->dev.slot;
	assert_int_equal(s, 1);
	/* Host bridge at 00:00.0. */
	assert_int_equal(cf8_read(f, 0, 0, 4), 0x29C08086);
	assert_int_equal(cf8_read(f, 0, 0x0a, 2), 0x0600);
	/* Our device through both mechanisms and all widths. */
	assert_int_equal(cf8_read(f, s, 0, 4), 0x10421af4);
	assert_int_equal(cf8_read(f, s, 2, 2), 0x1042);
	assert_int_equal(cf8_read(f, s, 1, 1), 0x1a);
	assert_int_equal(ecam_read(f, s, 0, 4), 0x10421af4);
	assert_int_equal(ecam_read(f, s, 0x2e, 2), 0x0042);
	assert_int_equal(ecam_read(f, s, 0x3d, 1), 1); /* INTA */
	/* Empty slots, other functions, other buses read all ones. */
	assert_int_equal(cf8_read(f, 7, 0, 4), 0xffffffff);
	uint64_t v;
	io_read(f->mmio, PCI_ECAM_BASE + (1u << 20), 4, &v);
	assert_int_equal(v, 0xffffffff);
	io_read(f->mmio, PCI_ECAM_BASE + (s << 15) + (1 << 12), 4, &v);
	assert_int_equal(v, 0xffffffff);
	/* Disabled CONFIG_ADDRESS: nothing. */
	io_write(f->pio, 0xCF8, 4, s << 11);
	io_read(f->pio, 0xCFC, 4, &v);
	assert_int_equal(v, 0xffffffff);
	/* A byte write to 0xCF9 does not touch CONFIG_ADDRESS. */
	io_write(f->pio, 0xCF8, 4, 0x80000000u | s << 11);
	io_write(f->pio, 0xCF9, 1, 0x06);
	io_read(f->pio, 0xCF8, 4, &v);
	assert_int_equal(v, 0x80000000u | s << 11);
	/* Read-only registers stay. */
	cf8_write(f, s, 0, 4, 0x12345678);
	assert_int_equal(cf8_read(f, s, 0, 4), 0x10421af4);
	/* Beyond 256 bytes of a conventional device: zero, writes ignored. */
	assert_int_equal(ecam_read(f, s, 0x400, 4), 0);
}

static void test_bar_sizing_and_remap(void **state)
{
	struct fixture *f = *state;
	unsigned s = f->dev.slot;
	uint32_t bar0 = cf8_read(f, s, 0x10, 4);
	assert_true(bar0 >= PCI_MMIO32_START && bar0 < PCI_MMIO32_END);
	assert_int_equal(bar0 & 0xf, 0);
	/* Firmware-style placement: mapped and decoding. */
	assert_true(cf8_read(f, s, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY);
	uint64_t v;
	assert_true(io_read(f->mmio, bar0 + 0x10, 4, &v));
	assert_int_equal(f->last_off, 0x10);

	/* Sizing: all ones reads back the size mask. */
	cf8_write(f, s, PCI_COMMAND, 2, 0);   /* decode off, as Linux does */
	assert_false(io_read(f->mmio, bar0, 4, &v));
	cf8_write(f, s, 0x10, 4, 0xffffffff);
	assert_int_equal(cf8_read(f, s, 0x10, 4), 0xfffff000);
	cf8_write(f, s, 0x14, 4, 0xffffffff);
	assert_int_equal(cf8_read(f, s, 0x14, 4), 0x0000ffe1); /* 32 ports, I/O */
	cf8_write(f, s, 0x18, 4, 0xffffffff);
	cf8_write(f, s, 0x1c, 4, 0xffffffff);
	assert_int_equal(cf8_read(f, s, 0x18, 4), 0xffffc00c); /* 64-bit, prefetchable */
	assert_int_equal(cf8_read(f, s, 0x1c, 4), 0xffffffff);
	/* Unused BAR and ROM are hardwired zero. */
	cf8_write(f, s, 0x24, 4, 0xffffffff);
	assert_int_equal(cf8_read(f, s, 0x24, 4), 0);
	cf8_write(f, s, 0x30, 4, 0xffffffff);
	assert_int_equal(cf8_read(f, s, 0x30, 4), 0);

	/* The guest moves the BARs, then enables decoding. */
	cf8_write(f, s, 0x10, 4, 0xd0000000);
	cf8_write(f, s, 0x14, 4, 0xe000);
	cf8_write(f, s, 0x18, 4, 0x00000000);
	cf8_write(f, s, 0x1c, 4, 0x00000008);  /* 64-bit BAR above 4 GiB */
	assert_false(io_read(f->mmio, 0xd0000000, 4, &v));
	cf8_write(f, s, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
	assert_true(io_read(f->mmio, 0xd0000004, 4, &v));
	assert_int_equal(f->last_off, 4);
	assert_false(io_read(f->mmio, bar0, 4, &v));  /* old place is gone */
	assert_true(io_read(f->pio, 0xe010, 1, &v));
	assert_int_equal(f->last_off, 0x10);
	assert_true(io_read(f->mmio, 0x800000000ULL + 0x3ff0, 4, &v));
	assert_int_equal(pci_bar_address(&f->dev, 2), 0x800000000ULL);
	/* Memory decode off unmaps memory BARs but not I/O ones. */
	cf8_write(f, s, PCI_COMMAND, 2, PCI_COMMAND_IO);
	assert_false(io_read(f->mmio, 0xd0000004, 4, &v));
	assert_true(io_read(f->pio, 0xe000, 1, &v));
	/* Moving a BAR while decoding follows it at once. */
	cf8_write(f, s, 0x14, 4, 0xe100);
	assert_false(io_read(f->pio, 0xe000, 1, &v));
	assert_true(io_read(f->pio, 0xe100, 1, &v));
}

static void test_capability_list(void **state)
{
	struct fixture *f = *state;
	uint8_t a = pci_add_capability(&f->dev, 0x09, 16);
	uint8_t b = pci_add_capability(&f->dev, 0x09, 20);
	assert_int_not_equal(a, 0);
	assert_int_not_equal(b, 0);
	unsigned s = f->dev.slot;
	assert_true(cf8_read(f, s, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	/* Walk the list: both capabilities, terminated, no overlap. */
	unsigned p = cf8_read(f, s, PCI_CAPABILITY_LIST, 1), n = 0;
	while (p && n < 48) {
		assert_true(p >= 0x40 && p < 0x100);
		assert_int_equal(cf8_read(f, s, p, 1), 0x09);
		p = cf8_read(f, s, p + 1, 1);
		n++;
	}
	assert_int_equal(n, 2);
	assert_true(b >= a + 16 || a >= b + 20);
}

static void test_intx(void **state)
{
	struct fixture *f = *state;
	unsigned s = f->dev.slot;
	unsigned gsi = pci_intx_gsi(&f->dev);
	assert_int_equal(gsi, PCI_INTX_GSI_BASE + ((s + 0) & 3));
	assert_int_equal(cf8_read(f, s, PCI_INTERRUPT_LINE, 1), gsi);
	pci_set_irq(&f->dev, 1);
	assert_int_equal(irq_level[gsi], 1);
	assert_true(cf8_read(f, s, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	/* INTX_DISABLE masks the line but not the status bit. */
	cf8_write(f, s, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_INTX_DISABLE);
	assert_int_equal(irq_level[gsi], 0);
	assert_true(cf8_read(f, s, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	cf8_write(f, s, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_int_equal(irq_level[gsi], 1);
	/* The guest cannot clear STATUS.INTERRUPT by writing it. */
	cf8_write(f, s, PCI_STATUS, 2, 0xffff);
	assert_true(cf8_read(f, s, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);

	/* A second device on the same GSI keeps it up until both are low. */
	struct pci_device other[4];
	struct pci_device *same = NULL;
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pci_device_init(f->bus, &other[i], "other", 0x1af4, 0x1044, 0xff00, 1,
						 0x1af4, 0x44, false), 0);
		if (pci_intx_gsi(&other[i]) == gsi)
			same = &other[i];
	}
	assert_non_null(same);
	pci_set_irq(same, 1);
	pci_set_irq(&f->dev, 0);
	assert_int_equal(irq_level[gsi], 1);
	assert_false(cf8_read(f, s, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	pci_set_irq(same, 0);
	assert_int_equal(irq_level[gsi], 0);
	for (int i = 0; i < 4; i++)
		pci_device_remove(&other[i]);
}

static void test_msix(void **state)
{
	struct fixture *f = *state;
	unsigned s = f->dev.slot;
	assert_int_equal(pci_msix_init(&f->dev, 3, 4, 0, 0x800), 0);
	assert_int_equal(pci_register_bar(&f->dev, 4, PCI_BAR_MEM32, false, 4096, &pci_msix_bar_ops, &f->dev), 0);
	uint8_t cap = f->dev.msix->cap;
	assert_int_equal(cf8_read(f, s, cap, 1), PCI_CAP_ID_MSIX);
	assert_int_equal(cf8_read(f, s, cap + 2, 2), 2);          /* table size - 1 */
	assert_int_equal(cf8_read(f, s, cap + 4, 4), 0x000 | 4);  /* table: BAR4 + 0 */
	assert_int_equal(cf8_read(f, s, cap + 8, 4), 0x800 | 4);  /* PBA: BAR4 + 0x800 */
	uint64_t base = pci_bar_address(&f->dev, 4), v;

	/* Entries start masked; the table is read/write in dwords. */
	io_read(f->mmio, base + 12, 4, &v);
	assert_int_equal(v, 1);
	io_write(f->mmio, base + 16 + 0, 4, 0xfee00000);
	io_write(f->mmio, base + 16 + 4, 4, 0);
	io_write(f->mmio, base + 16 + 8, 4, 0x4041);
	io_read(f->mmio, base + 16 + 8, 4, &v);
	assert_int_equal(v, 0x4041);

	/* Not enabled: nothing is sent or remembered. */
	pci_msix_notify(&f->dev, 1);
	assert_int_equal(msi_count, 0);

	cf8_write(f, s, cap + 2, 2, 0x8000); /* enable */
	assert_true(pci_msix_enabled(&f->dev));
	assert_int_equal(cf8_read(f, s, cap + 2, 2), 0x8002); /* size stays read-only */
	pci_msix_notify(&f->dev, 1);        /* vector masked: pending */
	assert_int_equal(msi_count, 0);
	io_read(f->mmio, base + 0x800, 8, &v);
	assert_int_equal(v, 2);
	io_write(f->mmio, base + 16 + 12, 4, 0); /* unmask: the pending one fires */
	assert_int_equal(msi_count, 1);
	assert_int_equal(msi_addr, 0xfee00000);
	assert_int_equal(msi_data, 0x4041);
	io_read(f->mmio, base + 0x800, 8, &v);
	assert_int_equal(v, 0);
	pci_msix_notify(&f->dev, 1);
	assert_int_equal(msi_count, 2);

	/* Function mask holds every vector; clearing it delivers. */
	cf8_write(f, s, cap + 2, 2, 0xc000);
	pci_msix_notify(&f->dev, 1);
	assert_int_equal(msi_count, 2);
	cf8_write(f, s, cap + 2, 2, 0x8000);
	assert_int_equal(msi_count, 3);

	/* Out-of-range vectors and odd accesses are ignored. */
	pci_msix_notify(&f->dev, 3);
	pci_msix_notify(&f->dev, 9999);
	assert_int_equal(msi_count, 3);
	io_write(f->mmio, base + 16 + 1, 1, 0xff);
	io_read(f->mmio, base + 16 + 8, 4, &v);
	assert_int_equal(v, 0x4041);
	io_write(f->mmio, base + 0x800, 4, 0xffffffff); /* PBA is read-only */
	io_read(f->mmio, base + 0x800, 4, &v);
	assert_int_equal(v, 0);
	io_read(f->mmio, base + 0xf00, 4, &v);
	assert_int_equal(v, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_mechanisms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_sizing_and_remap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capability_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_intx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msix, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
