/* PCI: one bus (bus 0) behind a host bridge at 00:00.0, reached through
 * configuration mechanism #1 (ports 0xCF8/0xCFC) and ECAM (PCI_ECAM_BASE).
 * Devices own a 256-byte or 4 KiB configuration space with per-bit write
 * masks, up to six BARs that this module maps into m->pio / m->mmio while
 * the guest enables decoding, a capability list, an INTx pin and an
 * optional MSI-X capability whose table and PBA live in one of the BARs.
 *
 * Threads: configuration accesses come from any vCPU thread and are
 * serialised by the bus lock. pci_set_irq and pci_msix_notify may be called
 * from any thread (device workers, the event loop). */
#ifndef XVM_HW_PCI_H
#define XVM_HW_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hw/io.h"

struct machine;

/* Configuration-space registers used outside this module. */
#define PCI_VENDOR_ID        0x00
#define PCI_DEVICE_ID        0x02
#define PCI_COMMAND          0x04
#define PCI_STATUS           0x06
#define PCI_REVISION_ID      0x08
#define PCI_CLASS_PROG       0x09
#define PCI_HEADER_TYPE      0x0e
#define PCI_BAR0             0x10
#define PCI_SUBSYSTEM_VENDOR 0x2c
#define PCI_SUBSYSTEM_ID     0x2e
#define PCI_ROM_ADDRESS      0x30
#define PCI_CAPABILITY_LIST  0x34
#define PCI_INTERRUPT_LINE   0x3c
#define PCI_INTERRUPT_PIN    0x3d

#define PCI_COMMAND_IO            0x0001
#define PCI_COMMAND_MEMORY        0x0002
#define PCI_COMMAND_MASTER        0x0004
#define PCI_COMMAND_INTX_DISABLE  0x0400
#define PCI_STATUS_INTERRUPT      0x0008
#define PCI_STATUS_CAP_LIST       0x0010

#define PCI_CAP_ID_MSIX      0x11
#define PCI_CAP_ID_VNDR      0x09

#define PCI_NUM_BARS         6
#define PCI_MAX_SLOTS        32
#define PCI_CONFIG_SIZE      256
#define PCIE_CONFIG_SIZE     4096

enum pci_bar_type {
	PCI_BAR_NONE = 0,
	PCI_BAR_IO,
	PCI_BAR_MEM32,
	PCI_BAR_MEM64,     /* takes two BAR slots (idx, idx+1) */
};

struct pci_bar {
	enum pci_bar_type type;
	bool prefetchable;
	uint64_t size;              /* power of two; 0 = unused */
	const struct io_ops *ops;
	void *opaque;
	uint64_t mapped_addr;       /* where it is registered, if mapped */
	bool mapped;
	char name[32];
};

struct pci_msix {
	unsigned nvectors;
	unsigned bar;               /* BAR holding the table and the PBA */
	uint32_t table_offset, pba_offset;
	uint8_t cap;                /* offset of the capability */
	uint8_t *table;             /* nvectors * 16 bytes, little endian */
	uint64_t *pba;              /* pending bits */
	pthread_mutex_t lock;
};

struct pci_device {
	struct pci_bus *bus;
	uint8_t slot;               /* device number; function is always 0 */
	char name[24];
	unsigned config_size;       /* 256 or 4096 */
	uint8_t config[PCIE_CONFIG_SIZE];
	uint8_t wmask[PCIE_CONFIG_SIZE];   /* bits the guest may write */
	uint8_t w1cmask[PCIE_CONFIG_SIZE]; /* bits cleared by writing 1 */
	unsigned next_cap;          /* where the next capability goes */
	struct pci_bar bars[PCI_NUM_BARS];
	struct pci_msix *msix;
	bool intx_level;            /* device's own INTx request */
	bool intx_driven;           /* it currently counts on the GSI */
	/* Optional hooks, called with the bus lock held, after the standard
	 * handling: a config write the device wants to see (capabilities it
	 * owns), and a config read to refresh registers before they are read. */
	void (*config_write)(struct pci_device *d, unsigned off, unsigned size, uint32_t val);
	void (*config_read)(struct pci_device *d, unsigned off, unsigned size);
	void *opaque;
};

struct pci_bus {
	struct machine *m;
	struct io_space *pio, *mmio;
	pthread_mutex_t lock;
	uint32_t cf8;                          /* mechanism #1 address register */
	struct pci_device *slots[PCI_MAX_SLOTS];
	struct pci_device host_bridge;
	unsigned gsi_count[4];                 /* INTx assertions per shared GSI */
	uint64_t next_mmio, next_pio;          /* firmware-style BAR placement */
	pthread_mutex_t irq_lock;
	/* Interrupt delivery: machine_set_irq/machine_send_msi by default;
	 * tests install their own. */
	void (*set_irq)(struct pci_bus *bus, unsigned gsi, int level);
	void (*send_msi)(struct pci_bus *bus, uint64_t addr, uint32_t data);
	void *test_opaque;
};

/* Creates bus 0 with its host bridge, registers 0xCF8/0xCFC and ECAM on
 * m->pio/m->mmio and stores it in m->pci. Returns NULL on failure. */
struct pci_bus *pci_init(struct machine *m);
/* Standalone bus (m may be NULL in tests: then set bus->set_irq and
 * bus->send_msi). Registers nothing; pci_init does. */
struct pci_bus *pci_bus_new(struct machine *m, struct io_space *pio, struct io_space *mmio);
void pci_bus_free(struct pci_bus *bus);
/* The ECAM window and the mechanism #1 ports, for pci_init and tests. */
extern const struct io_ops pci_ecam_ops, pci_cf8_ops, pci_cfc_ops;

/* Initialises d (identity registers) and puts it on a free slot (slot 0 is
 * the host bridge). Returns 0 or -ENOSPC. */
int pci_device_init(struct pci_bus *bus, struct pci_device *d, const char *name,
		    uint16_t vendor, uint16_t device, uint32_t class_code, uint8_t revision,
		    uint16_t subsys_vendor, uint16_t subsys_id, bool express);
/* Unmaps the BARs and frees the slot. */
void pci_device_remove(struct pci_device *d);

/* Declares a BAR (before the guest runs) and gives it an initial address
 * inside the PCI windows (PIO 0xC000-0xFFFF, MMIO PCI_MMIO32_*), with
 * decoding enabled like firmware would leave it. size: power of two,
 * >= 4 (I/O) or >= 16 (memory; rounded up to 4 KiB). */
int pci_register_bar(struct pci_device *d, unsigned idx, enum pci_bar_type type,
		     bool prefetchable, uint64_t size, const struct io_ops *ops, void *opaque);
/* Current address the guest programmed (0 if unused). */
uint64_t pci_bar_address(const struct pci_device *d, unsigned idx);

/* Adds a capability of len bytes (header included); returns its offset or
 * 0 when the space is full. The caller fills the body and its wmask. */
uint8_t pci_add_capability(struct pci_device *d, uint8_t id, uint8_t len);

/* INTx level for pin INTA, routed to PCI_INTX_GSI_BASE + ((slot + 0) & 3).
 * Honours COMMAND.INTX_DISABLE; reflects STATUS.INTERRUPT. */
void pci_set_irq(struct pci_device *d, int level);
unsigned pci_intx_gsi(const struct pci_device *d);

/* MSI-X with nvectors entries; table at table_offset and PBA at pba_offset
 * of BAR bar (which the caller registers with pci_msix_bar_ops, or
 * dispatches to pci_msix_read/pci_msix_write from its own ops). */
int pci_msix_init(struct pci_device *d, unsigned nvectors, unsigned bar,
		  uint32_t table_offset, uint32_t pba_offset);
bool pci_msix_enabled(struct pci_device *d);
/* Sends vector (or sets its pending bit while masked). */
void pci_msix_notify(struct pci_device *d, unsigned vector);
uint64_t pci_msix_read(struct pci_device *d, uint64_t off, unsigned size);
void pci_msix_write(struct pci_device *d, uint64_t off, unsigned size, uint64_t val);
extern const struct io_ops pci_msix_bar_ops; /* opaque = struct pci_device * */
/* Internal (pci.c -> pci_msix.c): Message Control was written. */
void pci_msix_control_written(struct pci_device *d);

/* Configuration access as the guest sees it (for both mechanisms and for
 * tests): off inside the function's space, size 1, 2 or 4. */
uint32_t pci_config_read(struct pci_bus *bus, unsigned slot, unsigned off, unsigned size);
void pci_config_write(struct pci_bus *bus, unsigned slot, unsigned off, unsigned size, uint32_t val);

/* Little-endian helpers on config space and tables. */
static inline void pci_set_u8(uint8_t *p, uint8_t v) { p[0] = v; }
static inline void pci_set_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void pci_set_u32(uint8_t *p, uint32_t v)
{
	pci_set_u16(p, (uint16_t)v);
	pci_set_u16(p + 2, (uint16_t)(v >> 16));
}
static inline uint16_t pci_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t pci_get_u32(const uint8_t *p) { return pci_get_u16(p) | (uint32_t)pci_get_u16(p + 2) << 16; }

#endif
