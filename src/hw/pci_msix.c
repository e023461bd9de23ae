/* MSI-X: the capability, the vector table and the pending-bit array.
 * A vector fires as a memory write (address, data) through the bus's
 * send_msi; while the function or the vector is masked it is remembered in
 * the PBA and sent when unmasked. */
#include "hw/pci.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MSIX_ENTRY_SIZE       16
#define MSIX_ENTRY_ADDR_LO    0
#define MSIX_ENTRY_ADDR_HI    4
#define MSIX_ENTRY_DATA       8
#define MSIX_ENTRY_CTRL       12
#define MSIX_CTRL_MASKED      1u
#define MSIX_FLAGS_ENABLE     0x80 /* high byte of Message Control */
#define MSIX_FLAGS_MASKALL    0x40

int pci_msix_init(struct pci_device *d, unsigned nvectors, unsigned bar,
		  uint32_t table_offset, uint32_t pba_offset)
{
	if (nvectors == 0 || nvectors > 2048 || bar >= PCI_NUM_BARS ||
	    (table_offset & 7) || (pba_offset & 7) || d->msix)
		return -EINVAL;
	uint8_t cap = pci_add_capability(d, PCI_CAP_ID_MSIX, 12);
	if (!cap)
		return -ENOSPC;
	struct pci_msix *x = xcalloc(1, sizeof(*x));
	x->nvectors = nvectors;
	x->bar = bar;
	x->table_offset = table_offset;
	x->pba_offset = pba_offset;
	x->cap = cap;
	x->table = xcalloc(nvectors, MSIX_ENTRY_SIZE);
	x->pba = xcalloc((nvectors + 63) / 64, sizeof(uint64_t));
	for (unsigned i = 0; i < nvectors; i++)
		pci_set_u32(x->table + i * MSIX_ENTRY_SIZE + MSIX_ENTRY_CTRL, MSIX_CTRL_MASKED);
	pthread_mutex_init(&x->lock, NULL);
	pci_set_u16(d->config + cap + 2, (uint16_t)(nvectors - 1));
	d->wmask[cap + 3] = MSIX_FLAGS_ENABLE | MSIX_FLAGS_MASKALL;
	pci_set_u32(d->config + cap + 4, table_offset | bar);
	pci_set_u32(d->config + cap + 8, pba_offset | bar);
	d->msix = x;
	return 0;
}

static uint8_t msix_flags(struct pci_device *d)
{
	return __atomic_load_n(&d->config[d->msix->cap + 3], __ATOMIC_RELAXED);
}

bool pci_msix_enabled(struct pci_device *d)
{
	return d->msix && (msix_flags(d) & MSIX_FLAGS_ENABLE);
}

static bool vector_masked(struct pci_device *d, unsigned v)
{
	const uint8_t *e = d->msix->table + v * MSIX_ENTRY_SIZE;
	return (msix_flags(d) & MSIX_FLAGS_MASKALL) || (pci_get_u32(e + MSIX_ENTRY_CTRL) & MSIX_CTRL_MASKED);
}

static void send_vector(struct pci_device *d, unsigned v)
{
	const uint8_t *e = d->msix->table + v * MSIX_ENTRY_SIZE;
	uint64_t addr = pci_get_u32(e + MSIX_ENTRY_ADDR_LO) | (uint64_t)pci_get_u32(e + MSIX_ENTRY_ADDR_HI) << 32;
	uint32_t data = pci_get_u32(e + MSIX_ENTRY_DATA);
	if (d->bus->send_msi)
		d->bus->send_msi(d->bus, addr, data);
}

/* Sends every pending vector that is no longer masked. msix->lock held. */
static void flush_pending_locked(struct pci_device *d)
{
	struct pci_msix *x = d->msix;
	if (!(msix_flags(d) & MSIX_FLAGS_ENABLE))
		return;
	for (unsigned v = 0; v < x->nvectors; v++) {
		uint64_t bit = 1ULL << (v % 64);
		if ((x->pba[v / 64] & bit) && !vector_masked(d, v)) {
			x->pba[v / 64] &= ~bit;
			send_vector(d, v);
		}
	}
}

void pci_msix_notify(struct pci_device *d, unsigned vector)
{
	struct pci_msix *x = d->msix;
	if (!x || vector >= x->nvectors)
		return;
	pthread_mutex_lock(&x->lock);
	if (msix_flags(d) & MSIX_FLAGS_ENABLE) {
		if (vector_masked(d, vector))
			x->pba[vector / 64] |= 1ULL << (vector % 64);
		else
			send_vector(d, vector);
	}
	pthread_mutex_unlock(&x->lock);
}

void pci_msix_control_written(struct pci_device *d)
{
	pthread_mutex_lock(&d->msix->lock);
	flush_pending_locked(d);
	pthread_mutex_unlock(&d->msix->lock);
}

/* Reads/writes of 4 or 8 bytes, naturally aligned, inside one structure;
 * anything else reads as zero and is ignored on write (the spec leaves it
 * undefined, a hostile guest gets nothing from it). */
static bool access_ok(uint64_t off, unsigned size, uint64_t start, uint64_t len)
{
	return (size == 4 || size == 8) && !(off & (size - 1)) &&
	       off >= start && off - start + size <= len;
}

uint64_t pci_msix_read(struct pci_device *d, uint64_t off, unsigned size)
{
	struct pci_msix *x = d->msix;
	uint64_t v = 0;
	if (!x)
		return 0;
	pthread_mutex_lock(&x->lock);
	uint64_t table_len = (uint64_t)x->nvectors * MSIX_ENTRY_SIZE;
	uint64_t pba_len = (x->nvectors + 63) / 64 * 8;
	if (access_ok(off, size, x->table_offset, table_len)) {
		const uint8_t *p = x->table + (off - x->table_offset);
		v = pci_get_u32(p);
		if (size == 8)
			v |= (uint64_t)pci_get_u32(p + 4) << 32;
	} else if (access_ok(off, size, x->pba_offset, pba_len)) {
		uint64_t rel = off - x->pba_offset;
		v = x->pba[rel / 8] >> ((rel % 8) * 8);
		if (size == 4)
			v &= 0xffffffffu;
	}
	pthread_mutex_unlock(&x->lock);
	return v;
}

void pci_msix_write(struct pci_device *d, uint64_t off, unsigned size, uint64_t val)
{
	struct pci_msix *x = d->msix;
	if (!x)
		return;
	pthread_mutex_lock(&x->lock);
	uint64_t table_len = (uint64_t)x->nvectors * MSIX_ENTRY_SIZE;
	if (access_ok(off, size, x->table_offset, table_len)) {
		uint64_t rel = off - x->table_offset;
		for (unsigned i = 0; i < size; i += 4) {
			uint64_t r = rel + i;
			uint32_t dword = (uint32_t)(val >> (8 * i));
			if (r % MSIX_ENTRY_SIZE == MSIX_ENTRY_CTRL)
				dword &= MSIX_CTRL_MASKED; /* other bits reserved */
			else if (r % MSIX_ENTRY_SIZE == MSIX_ENTRY_ADDR_LO)
				dword &= ~3u;
			pci_set_u32(x->table + r, dword);
		}
		flush_pending_locked(d);
	}
	pthread_mutex_unlock(&x->lock);
}

static uint64_t msix_bar_read(void *opaque, uint64_t off, unsigned size)
{
	return pci_msix_read(opaque, off, size);
}

static void msix_bar_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	pci_msix_write(opaque, off, size, val);
}

const struct io_ops pci_msix_bar_ops = { msix_bar_read, msix_bar_write };
