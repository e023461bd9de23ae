/* PCI bus 0, host bridge, configuration mechanisms, BARs and INTx.
 * MSI-X lives in pci_msix.c. */
#include "hw/pci.h"
#include "lib/log.h"
#include "lib/util.h"
#include "machine/layout.h"
#include "machine/machine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCI_PIO_START   0xC000ULL
#define PCI_PIO_END     0x10000ULL

static void machine_irq(struct pci_bus *bus, unsigned gsi, int level)
{
	machine_set_irq(bus->m, gsi, level);
}

static void machine_msi(struct pci_bus *bus, uint64_t addr, uint32_t data)
{
	machine_send_msi(bus->m, addr, data);
}

struct pci_bus *pci_bus_new(struct machine *m, struct io_space *pio, struct io_space *mmio)
{
	struct pci_bus *bus = xcalloc(1, sizeof(*bus));
	bus->m = m;
	bus->pio = pio;
	bus->mmio = mmio;
	pthread_mutex_init(&bus->lock, NULL);
	pthread_mutex_init(&bus->irq_lock, NULL);
	bus->next_mmio = PCI_MMIO32_START;
	bus->next_pio = PCI_PIO_START;
	if (m) {
		bus->set_irq = machine_irq;
		bus->send_msi = machine_msi;
	}
	/* The host bridge: identity only, no BARs, no interrupts. */
	struct pci_device *hb = &bus->host_bridge;
	hb->bus = bus;
	hb->slot = 0;
	snprintf(hb->name, sizeof(hb->name), "host-bridge");
	hb->config_size = PCI_CONFIG_SIZE;
	pci_set_u16(hb->config + PCI_VENDOR_ID, 0x8086);
	pci_set_u16(hb->config + PCI_DEVICE_ID, 0x29C0);
	pci_set_u32(hb->config + PCI_REVISION_ID, 0x06000000); /* class 0600: host bridge */
	pci_set_u16(hb->config + PCI_COMMAND, PCI_COMMAND_MEMORY);
	bus->slots[0] = hb;
	return bus;
}

void pci_bus_free(struct pci_bus *bus)
{
	if (!bus)
		return;
	pthread_mutex_destroy(&bus->lock);
	pthread_mutex_destroy(&bus->irq_lock);
	free(bus);
}

/* ---- configuration space ---- */

int pci_device_init(struct pci_bus *bus, struct pci_device *d, const char *name,
		    uint16_t vendor, uint16_t device, uint32_t class_code, uint8_t revision,
		    uint16_t subsys_vendor, uint16_t subsys_id, bool express)
{
	pthread_mutex_lock(&bus->lock);
	unsigned slot = 1;
	while (slot < PCI_MAX_SLOTS && bus->slots[slot])
		slot++;
	if (slot == PCI_MAX_SLOTS) {
		pthread_mutex_unlock(&bus->lock);
		log_err("%s: no free PCI slot (at most %d devices)", name, PCI_MAX_SLOTS - 1);
		return -ENOSPC;
	}
	memset(d, 0, sizeof(*d));
	d->bus = bus;
	d->slot = (uint8_t)slot;
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->config_size = express ? PCIE_CONFIG_SIZE : PCI_CONFIG_SIZE;
	uint8_t *c = d->config;
	pci_set_u16(c + PCI_VENDOR_ID, vendor);
	pci_set_u16(c + PCI_DEVICE_ID, device);
	pci_set_u32(c + PCI_REVISION_ID, class_code << 8 | revision);
	pci_set_u16(c + PCI_SUBSYSTEM_VENDOR, subsys_vendor);
	pci_set_u16(c + PCI_SUBSYSTEM_ID, subsys_id);
	pci_set_u8(c + PCI_INTERRUPT_PIN, 1); /* INTA */
	pci_set_u8(c + PCI_INTERRUPT_LINE, (uint8_t)pci_intx_gsi(d));
	/* COMMAND: I/O, memory, bus master, INTx disable are writable. */
	pci_set_u16(d->wmask + PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY |
		    PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
	d->wmask[PCI_INTERRUPT_LINE] = 0xff;
	d->next_cap = 0x40;
	bus->slots[slot] = d;
	pthread_mutex_unlock(&bus->lock);
	return 0;
}

static struct io_space *bar_space(struct pci_bus *bus, const struct pci_bar *b)
{
	return b->type == PCI_BAR_IO ? bus->pio : bus->mmio;
}

uint64_t pci_bar_address(const struct pci_device *d, unsigned idx)
{
	if (idx >= PCI_NUM_BARS)
		return 0;
	const struct pci_bar *b = &d->bars[idx];
	uint32_t lo = pci_get_u32(d->config + PCI_BAR0 + 4 * idx);
	switch (b->type) {
	case PCI_BAR_IO:
		return lo & ~3u;
	case PCI_BAR_MEM32:
		return lo & ~0xfu;
	case PCI_BAR_MEM64:
		return (lo & ~0xfull) | (uint64_t)pci_get_u32(d->config + PCI_BAR0 + 4 * idx + 4) << 32;
	default:
		return 0;
	}
}

/* Puts every BAR where COMMAND and the BAR registers say it should be.
 * Called with the bus lock held after any write to COMMAND or a BAR. */
static void update_mappings(struct pci_device *d)
{
	uint16_t cmd = pci_get_u16(d->config + PCI_COMMAND);
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &d->bars[i];
		if (b->type == PCI_BAR_NONE || !b->size)
			continue;
		uint64_t addr = pci_bar_address(d, i);
		bool enabled = b->type == PCI_BAR_IO ? (cmd & PCI_COMMAND_IO) : (cmd & PCI_COMMAND_MEMORY);
		bool valid = enabled && addr != 0 && addr + b->size - 1 >= addr;
		if (b->type == PCI_BAR_IO && addr + b->size > PCI_PIO_END)
			valid = false;
		if (b->mapped && (!valid || addr != b->mapped_addr)) {
			io_unregister(bar_space(d->bus, b), b->mapped_addr, b->opaque);
			b->mapped = false;
		}
		if (valid && !b->mapped) {
			int r = io_register(bar_space(d->bus, b), addr, b->size, b->ops, b->opaque, b->name);
			if (r < 0) {
				/* Sizing probes and clashes with fixed devices land
				 * here; the BAR stays unmapped until moved. */
				log_debug("%s: BAR%u at %#llx not mapped: %s", d->name, i,
					  (unsigned long long)addr, strerror(-r));
				continue;
			}
			b->mapped = true;
			b->mapped_addr = addr;
		}
	}
}

int pci_register_bar(struct pci_device *d, unsigned idx, enum pci_bar_type type,
		     bool prefetchable, uint64_t size, const struct io_ops *ops, void *opaque)
{
	struct pci_bus *bus = d->bus;
	if (idx >= PCI_NUM_BARS || (type == PCI_BAR_MEM64 && idx + 1 >= PCI_NUM_BARS) ||
	    !IS_POW2(size) || d->bars[idx].type != PCI_BAR_NONE)
		return -EINVAL;
	if (type == PCI_BAR_IO) {
		if (size < 4 || size > 256)
			return -EINVAL;
	} else if (size < 4 * KiB) {
		size = 4 * KiB; /* keep each BAR on its own page for the guest */
	}
	if (type == PCI_BAR_MEM32 && size > 1 * GiB)
		return -EINVAL;

	pthread_mutex_lock(&bus->lock);
	struct pci_bar *b = &d->bars[idx];
	b->type = type;
	b->prefetchable = prefetchable && type != PCI_BAR_IO;
	b->size = size;
	b->ops = ops;
	b->opaque = opaque;
	snprintf(b->name, sizeof(b->name), "%s.bar%u", d->name, idx);

	uint8_t *reg = d->config + PCI_BAR0 + 4 * idx;
	uint8_t *mask = d->wmask + PCI_BAR0 + 4 * idx;
	uint64_t addr;
	if (type == PCI_BAR_IO) {
		addr = ALIGN_UP(bus->next_pio, size);
		if (addr + size > PCI_PIO_END) {
			pthread_mutex_unlock(&bus->lock);
			log_err("%s: PCI I/O window is full", d->name);
			return -ENOSPC;
		}
		bus->next_pio = addr + size;
		pci_set_u32(reg, (uint32_t)addr | 1);
		pci_set_u32(mask, (uint32_t)~(size - 1) & 0xfffc);
	} else {
		addr = ALIGN_UP(bus->next_mmio, size);
		if (addr + size - 1 > PCI_MMIO32_END) {
			pthread_mutex_unlock(&bus->lock);
			log_err("%s: PCI memory window is full", d->name);
			return -ENOSPC;
		}
		bus->next_mmio = addr + size;
		uint32_t flags = (type == PCI_BAR_MEM64 ? 0x4 : 0) | (b->prefetchable ? 0x8 : 0);
		pci_set_u32(reg, (uint32_t)addr | flags);
		pci_set_u32(mask, (uint32_t)~(size - 1) & ~0xfu);
		if (type == PCI_BAR_MEM64) {
			pci_set_u32(reg + 4, (uint32_t)(addr >> 32));
			pci_set_u32(mask + 4, (uint32_t)(~(size - 1) >> 32));
			d->bars[idx + 1].type = PCI_BAR_NONE;
		}
	}
	/* Leave decoding on, as firmware would after assigning resources. */
	uint16_t cmd = pci_get_u16(d->config + PCI_COMMAND);
	cmd |= type == PCI_BAR_IO ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;
	pci_set_u16(d->config + PCI_COMMAND, cmd);
	update_mappings(d);
	pthread_mutex_unlock(&bus->lock);
	return 0;
}

uint8_t pci_add_capability(struct pci_device *d, uint8_t id, uint8_t len)
{
	unsigned off = ALIGN_UP((unsigned)d->next_cap, 4);
	if (len < 2 || off + len > PCI_CONFIG_SIZE)
		return 0;
	d->config[off] = id;
	d->config[off + 1] = d->config[PCI_CAPABILITY_LIST];
	d->config[PCI_CAPABILITY_LIST] = (uint8_t)off;
	uint16_t status = pci_get_u16(d->config + PCI_STATUS);
	pci_set_u16(d->config + PCI_STATUS, status | PCI_STATUS_CAP_LIST);
	d->next_cap = off + len;
	return (uint8_t)off;
}

void pci_device_remove(struct pci_device *d)
{
	struct pci_bus *bus = d->bus;
	pci_set_irq(d, 0);
	pthread_mutex_lock(&bus->lock);
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &d->bars[i];
		if (b->mapped)
			io_unregister(bar_space(bus, b), b->mapped_addr, b->opaque);
		b->mapped = false;
	}
	if (bus->slots[d->slot] == d)
		bus->slots[d->slot] = NULL;
	pthread_mutex_unlock(&bus->lock);
	if (d->msix) {
		pthread_mutex_destroy(&d->msix->lock);
		free(d->msix->table);
		free(d->msix->pba);
		free(d->msix);
		d->msix = NULL;
	}
}

/* ---- INTx ---- */

unsigned pci_intx_gsi(const struct pci_device *d)
{
	return PCI_INTX_GSI_BASE + ((d->slot + 0u) & 3);
}

/* Recomputes what the device drives onto its GSI. Called with irq_lock. */
static void intx_update_locked(struct pci_device *d)
{
	struct pci_bus *bus = d->bus;
	uint16_t cmd = __atomic_load_n((uint16_t *)(void *)(d->config + PCI_COMMAND), __ATOMIC_RELAXED);
	bool drive = d->intx_level && !(cmd & PCI_COMMAND_INTX_DISABLE);
	if (drive == d->intx_driven)
		return;
	d->intx_driven = drive;
	unsigned line = (d->slot + 0u) & 3;
	unsigned gsi = PCI_INTX_GSI_BASE + line;
	if (drive) {
		if (bus->gsi_count[line]++ == 0 && bus->set_irq)
			bus->set_irq(bus, gsi, 1);
	} else {
		if (--bus->gsi_count[line] == 0 && bus->set_irq)
			bus->set_irq(bus, gsi, 0);
	}
}

void pci_set_irq(struct pci_device *d, int level)
{
	struct pci_bus *bus = d->bus;
	pthread_mutex_lock(&bus->irq_lock);
	d->intx_level = level != 0;
	if (level)
		__atomic_or_fetch(&d->config[PCI_STATUS], PCI_STATUS_INTERRUPT, __ATOMIC_RELAXED);
	else
		__atomic_and_fetch(&d->config[PCI_STATUS], (uint8_t)~PCI_STATUS_INTERRUPT, __ATOMIC_RELAXED);
	intx_update_locked(d);
	pthread_mutex_unlock(&bus->irq_lock);
}

/* ---- configuration access ---- */

uint32_t pci_config_read(struct pci_bus *bus, unsigned slot, unsigned off, unsigned size)
{
	uint32_t all_ones = size == 4 ? 0xffffffffu : (1u << (size * 8)) - 1;
	if (slot >= PCI_MAX_SLOTS || (size != 1 && size != 2 && size != 4) || (off & (size - 1)))
		return all_ones;
	pthread_mutex_lock(&bus->lock);
	struct pci_device *d = bus->slots[slot];
	uint32_t v = all_ones;
	if (d && off + size <= d->config_size) {
		if (d->config_read)
			d->config_read(d, off, size);
		v = 0;
		for (unsigned i = 0; i < size; i++)
			v |= (uint32_t)__atomic_load_n(&d->config[off + i], __ATOMIC_RELAXED) << (8 * i);
	} else if (d) {
		v = 0; /* beyond a 256-byte space: reads as zero, like PCI on ECAM */
	}
	pthread_mutex_unlock(&bus->lock);
	return v;
}

static bool overlaps(unsigned off, unsigned size, unsigned start, unsigned len)
{
	return off < start + len && start < off + size;
}

void pci_config_write(struct pci_bus *bus, unsigned slot, unsigned off, unsigned size, uint32_t val)
{
	if (slot >= PCI_MAX_SLOTS || (size != 1 && size != 2 && size != 4) || (off & (size - 1)))
		return;
	pthread_mutex_lock(&bus->lock);
	struct pci_device *d = bus->slots[slot];
	if (!d || off + size > d->config_size) {
		pthread_mutex_unlock(&bus->lock);
		return;
	}
	for (unsigned i = 0; i < size; i++) {
		unsigned a = off + i;
		uint8_t byte = (uint8_t)(val >> (8 * i));
		if (!d->wmask[a] && !d->w1cmask[a])
			continue;
		/* STATUS.INTERRUPT is updated concurrently by pci_set_irq:
		 * change only the guest-writable bits, atomically. */
		uint8_t old = __atomic_load_n(&d->config[a], __ATOMIC_RELAXED), nv;
		do {
			nv = (uint8_t)((old & ~d->wmask[a]) | (byte & d->wmask[a]));
			nv &= (uint8_t)~(byte & d->w1cmask[a]);
		} while (!__atomic_compare_exchange_n(&d->config[a], &old, nv, false,
						      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	}
	if (overlaps(off, size, PCI_COMMAND, 2) || overlaps(off, size, PCI_BAR0, 24))
		update_mappings(d);
	if (overlaps(off, size, PCI_COMMAND, 2)) {
		pthread_mutex_lock(&bus->irq_lock);
		intx_update_locked(d);
		pthread_mutex_unlock(&bus->irq_lock);
	}
	if (d->msix && overlaps(off, size, d->msix->cap + 2, 2))
		pci_msix_control_written(d);
	if (d->config_write)
		d->config_write(d, off, size, val);
	pthread_mutex_unlock(&bus->lock);
}

/* ---- mechanism #1 and ECAM ---- */

static uint64_t cf8_read(void *opaque, uint64_t off, unsigned size)
{
	struct pci_bus *bus = opaque;
	if (size != 4)
		return ~0ULL;
	return __atomic_load_n(&bus->cf8, __ATOMIC_RELAXED);
}

static void cf8_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct pci_bus *bus = opaque;
	/* Only dword accesses address the register; byte accesses to
	 * 0xCF9 belong to the reset control register. */
	if (size == 4)
		__atomic_store_n(&bus->cf8, (uint32_t)val & 0x80fffffcu, __ATOMIC_RELAXED);
}

/* Decodes CONFIG_ADDRESS; false when disabled or not bus 0 function 0. */
static bool cf8_target(struct pci_bus *bus, unsigned *slot, unsigned *reg)
{
	uint32_t a = __atomic_load_n(&bus->cf8, __ATOMIC_RELAXED);
	if (!(a & 0x80000000u) || ((a >> 16) & 0xff) != 0 || ((a >> 8) & 7) != 0)
		return false;
	*slot = (a >> 11) & 31;
	*reg = a & 0xfc;
	return true;
}

static uint64_t cfc_read(void *opaque, uint64_t off, unsigned size)
{
	struct pci_bus *bus = opaque;
	unsigned slot, reg;
	if (!cf8_target(bus, &slot, &reg) || off + size > 4)
		return ~0ULL;
	return pci_config_read(bus, slot, reg + (unsigned)off, size);
}

static void cfc_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct pci_bus *bus = opaque;
	unsigned slot, reg;
	if (!cf8_target(bus, &slot, &reg) || off + size > 4)
		return;
	pci_config_write(bus, slot, reg + (unsigned)off, size, (uint32_t)val);
}

static bool ecam_target(uint64_t off, unsigned *slot, unsigned *reg)
{
	if ((off >> 20) != 0 || ((off >> 12) & 7) != 0)
		return false; /* bus > 0 or function > 0: nothing there */
	*slot = (off >> 15) & 31;
	*reg = off & 0xfff;
	return true;
}

static uint64_t ecam_read(void *opaque, uint64_t off, unsigned size)
{
	unsigned slot, reg;
	if (size > 4 || !ecam_target(off, &slot, &reg))
		return ~0ULL;
	return pci_config_read(opaque, slot, reg, size);
}

static void ecam_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	unsigned slot, reg;
	if (size > 4 || !ecam_target(off, &slot, &reg))
		return;
	pci_config_write(opaque, slot, reg, size, (uint32_t)val);
}

const struct io_ops pci_cf8_ops = { cf8_read, cf8_write };
const struct io_ops pci_cfc_ops = { cfc_read, cfc_write };
const struct io_ops pci_ecam_ops = { ecam_read, ecam_write };

static void pci_teardown(void *opaque)
{
	struct machine *m = opaque;
	struct pci_bus *bus = m->pci;
	io_unregister(m->pio, PORT_PCI_CONFIG, bus);
	io_unregister(m->pio, PORT_PCI_CONFIG + 4, bus);
	io_unregister(m->mmio, PCI_ECAM_BASE, bus);
	pci_bus_free(bus);
	m->pci = NULL;
}

struct pci_bus *pci_init(struct machine *m)
{
	struct pci_bus *bus = pci_bus_new(m, m->pio, m->mmio);
	/* 0xCF8 alone: the reset register at 0xCF9 is another device's. */
	if (io_register(m->pio, PORT_PCI_CONFIG, 1, &pci_cf8_ops, bus, "pci-cf8") < 0 ||
	    io_register(m->pio, PORT_PCI_CONFIG + 4, 4, &pci_cfc_ops, bus, "pci-cfc") < 0 ||
	    io_register(m->mmio, PCI_ECAM_BASE, PCI_ECAM_SIZE, &pci_ecam_ops, bus, "pci-ecam") < 0) {
		log_err("cannot register the PCI configuration ports");
		pci_bus_free(bus);
		return NULL;
	}
	m->pci = bus;
	machine_on_teardown(m, pci_teardown, m);
	return bus;
}
