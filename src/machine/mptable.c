/* MP tables (see mptable.h): processors, an ISA and a PCI bus, the
 * IOAPIC, every ISA and PCI INTx interrupt, and the local interrupts. */
#include "machine/mptable.h"
#include "machine/acpi.h"
#include "machine/layout.h"
#include "machine/machine.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MP_FLOATING_SIZE  16
#define MP_HEADER_SIZE    44
#define MP_CPU_SIZE       20
#define MP_ENTRY_SIZE     8
#define MP_MAX_SIZE       0x4000

enum { MP_PROCESSOR, MP_BUS, MP_IOAPIC, MP_IOINT, MP_LINT };
enum { INT_VECTORED = 0, INT_NMI = 1, INT_EXTINT = 3 };
#define BUS_PCI           0
#define BUS_ISA           1
#define IOAPIC_ID         0
#define POL_HIGH_EDGE     0x5   /* active high, edge */
#define POL_HIGH_LEVEL    0xD   /* active high, level */
#define POL_LOW_LEVEL     0xF   /* active low, level */
#define CPU_ENABLED       0x1
#define CPU_BSP           0x2
#define LAPIC_VERSION     0x14
#define IOAPIC_VERSION    0x11

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }

static void ioint(uint8_t *e, uint8_t type, uint16_t flags, uint8_t bus, uint8_t irq, uint8_t pin)
{
	e[0] = MP_IOINT;
	e[1] = type;
	put16(e + 2, flags);
	e[4] = bus;
	e[5] = irq;
	e[6] = IOAPIC_ID;
	e[7] = pin;
}

size_t mptable_write(unsigned ncpus, uint8_t *buf, size_t len, uint64_t base)
{
	/* ISA IRQs 0..15 except the cascade (2), PCI slots 1..31 x 4 pins. */
	unsigned n_isa = 15, n_pci = 31 * 4;
	size_t table_len = MP_HEADER_SIZE + (size_t)ncpus * MP_CPU_SIZE +
			   MP_ENTRY_SIZE * (2 + 1 + n_isa + n_pci + 2);
	size_t total = MP_FLOATING_SIZE + table_len;
	if (total > len || total > MP_MAX_SIZE)
		return 0;
	memset(buf, 0, total);

	uint8_t *t = buf + MP_FLOATING_SIZE;
	memcpy(t, "PCMP", 4);
	put16(t + 4, (uint16_t)table_len);
	t[6] = 4; /* spec revision 1.4 */
	memcpy(t + 8, "XVM     ", 8);
	memcpy(t + 16, "XVM PC      ", 12);
	put32(t + 36, (uint32_t)LAPIC_BASE);
	uint8_t *e = t + MP_HEADER_SIZE;
	unsigned count = 0;
	for (unsigned i = 0; i < ncpus; i++, e += MP_CPU_SIZE, count++) {
		e[0] = MP_PROCESSOR;
		e[1] = (uint8_t)i;
		e[2] = LAPIC_VERSION;
		e[3] = CPU_ENABLED | (i == 0 ? CPU_BSP : 0);
		put32(e + 4, 0x600);       /* family 6 signature */
		put32(e + 8, 0x201);       /* FPU, APIC */
	}
	e[0] = MP_BUS;
	e[1] = BUS_PCI;
	memcpy(e + 2, "PCI   ", 6);
	e += MP_ENTRY_SIZE;
	e[0] = MP_BUS;
	e[1] = BUS_ISA;
	memcpy(e + 2, "ISA   ", 6);
	e += MP_ENTRY_SIZE;
	e[0] = MP_IOAPIC;
	e[1] = IOAPIC_ID;
	e[2] = IOAPIC_VERSION;
	e[3] = 1; /* enabled */
	put32(e + 4, (uint32_t)IOAPIC_BASE);
	e += MP_ENTRY_SIZE;
	count += 3;
	for (unsigned irq = 0; irq < 16; irq++) {
		if (irq == 2)
			continue;
		unsigned pin = irq == IRQ_PIT ? 2 : irq;
		uint16_t flags = irq == IRQ_ACPI_SCI ? POL_HIGH_LEVEL : POL_HIGH_EDGE;
		ioint(e, INT_VECTORED, flags, BUS_ISA, (uint8_t)irq, (uint8_t)pin);
		e += MP_ENTRY_SIZE;
		count++;
	}
	for (unsigned slot = 1; slot < 32; slot++) {
		for (unsigned pin = 0; pin < 4; pin++) {
			ioint(e, INT_VECTORED, POL_LOW_LEVEL, BUS_PCI, (uint8_t)(slot << 2 | pin),
			      (uint8_t)(PCI_INTX_GSI_BASE + ((slot + pin) & 3)));
			e += MP_ENTRY_SIZE;
			count++;
		}
	}
	/* Local interrupts: ExtINT on LINT0, NMI on LINT1, every CPU. */
	e[0] = MP_LINT;
	e[1] = INT_EXTINT;
	e[4] = BUS_ISA;
	e[6] = 0xFF;
	e[7] = 0;
	e += MP_ENTRY_SIZE;
	e[0] = MP_LINT;
	e[1] = INT_NMI;
	e[4] = BUS_ISA;
	e[6] = 0xFF;
	e[7] = 1;
	count += 2;
	put16(t + 34, (uint16_t)count);
	t[7] = (uint8_t)(0 - acpi_checksum(t, table_len));

	uint8_t *f = buf;
	memcpy(f, "_MP_", 4);
	put32(f + 4, (uint32_t)(base + MP_FLOATING_SIZE));
	f[8] = 1; /* length in 16-byte units */
	f[9] = 4;
	f[10] = (uint8_t)(0 - acpi_checksum(f, MP_FLOATING_SIZE));
	return total;
}

int mptable_build(struct machine *m, char *err, size_t errlen)
{
	uint8_t *dst = gpa_to_hva(&m->ram, MPTABLE_ADDR, MP_MAX_SIZE);
	if (!dst) {
		snprintf(err, errlen, "guest RAM too small for the MP table");
		return -EINVAL;
	}
	size_t used = mptable_write(m->ncpus, dst, MP_MAX_SIZE, MPTABLE_ADDR);
	if (!used) {
		snprintf(err, errlen, "MP table for %u CPUs does not fit", m->ncpus);
		return -ENOSPC;
	}
	guest_ram_mark_written(&m->ram, MPTABLE_ADDR, used);
	return 0;
}
