/* ACPI tables (see acpi.h). Field offsets follow ACPI 6.4 chapter 5.2;
 * the DSDT is AML we emit with machine/aml.c. */
#include "machine/acpi.h"
#include "hw/virtio/devices.h"
#include "lib/util.h"
#include "machine/aml.h"
#include "machine/layout.h"
#include "machine/machine.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Register block sizes of hw/acpi_pm (older layout.h may lack them). */
#ifndef ACPI_PM1_EVT_LEN
#define ACPI_PM1_EVT_LEN   4
#endif
#ifndef ACPI_PM1_CNT_LEN
#define ACPI_PM1_CNT_LEN   2
#endif
#ifndef ACPI_PM_TMR_LEN
#define ACPI_PM_TMR_LEN    4
#endif
#ifndef ACPI_GPE0_BLK_LEN
#define ACPI_GPE0_BLK_LEN  4
#endif
#ifndef ACPI_PM_TMR_32BIT
#define ACPI_PM_TMR_32BIT  1
#endif
#define RTC_CENTURY_INDEX  0x32

#define HDR_SIZE           36
#define RSDP_SIZE          36
#define FACS_SIZE          64
#define FADT_SIZE          276 /* revision 6 */
#define FADT_REVISION      6
#define MCFG_BUSES         16
/* The 64-bit PCI window starts above RAM at this alignment. */
#define PCI_MMIO64_ALIGN   (1ULL << 30)
#define PCI_MMIO64_SIZE    (64ULL << 30)

/* FADT flags. */
#define FADT_WBINVD        (1u << 0)
#define FADT_PROC_C1       (1u << 2)
#define FADT_SLP_BUTTON    (1u << 5) /* no fixed sleep button */
#define FADT_TMR_VAL_EXT   (1u << 8)
#define FADT_RESET_REG_SUP (1u << 10)
/* IA-PC boot architecture flags. */
#define IAPC_LEGACY_DEVICES (1u << 0)
#define IAPC_8042          (1u << 1)
#define IAPC_NO_VGA        (1u << 2)

/* MADT. */
#define MADT_PCAT_COMPAT   1u
#define MADT_LAPIC         0
#define MADT_IOAPIC        1
#define MADT_ISO           2
#define MADT_LAPIC_NMI     4
#define MPS_ACTIVE_HIGH    0x1
#define MPS_LEVEL          0xC

#define GAS_SYSTEM_IO      1

uint8_t acpi_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;
	while (len--)
		sum = (uint8_t)(sum + *p++);
	return sum;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

/* Tables are appended to one buffer that mirrors guest memory. */
struct writer {
	uint8_t *buf;
	size_t len, used;
	uint64_t base;
	bool overflow;
};

/* Reserves n bytes at the given alignment; returns the offset. */
static size_t alloc(struct writer *w, size_t n, size_t align)
{
	size_t at = (w->used + align - 1) & ~(align - 1);
	if (at > w->len || n > w->len - at) {
		w->overflow = true;
		return 0;
	}
	memset(w->buf + at, 0, n);
	w->used = at + n;
	return at;
}

static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, "XVM   ", 6);
	char id[9];
	snprintf(id, sizeof(id), "XVM%-5.4s", sig);
	memcpy(t + 16, id, 8);
	put32(t + 24, 1);
	memcpy(t + 28, "XVM ", 4);
	put32(t + 32, 1);
}

static void finish(uint8_t *t, uint32_t len)
{
	t[9] = 0;
	t[9] = (uint8_t)(0 - acpi_checksum(t, len));
}

static void gas_io(uint8_t *g, uint16_t port, uint8_t bits, uint8_t access)
{
	g[0] = GAS_SYSTEM_IO;
	g[1] = bits;
	g[2] = 0;
	g[3] = access; /* 1 byte, 2 word, 3 dword */
	put64(g + 4, port);
}

/* ---- DSDT ---- */

static void dsdt_pci_host(const struct acpi_board *b, struct aml *a)
{
	aml_device_begin(a, "PCI0");
	aml_name_eisaid(a, "_HID", "PNP0A08");
	aml_name_eisaid(a, "_CID", "PNP0A03");
	aml_name_integer(a, "_SEG", 0);
	aml_name_integer(a, "_BBN", 0);
	aml_name_integer(a, "_UID", 0);

	struct aml_res r = { .len = 0 };
	aml_res_word_bus(&r, 0, MCFG_BUSES - 1);
	aml_res_io(&r, PORT_PCI_CONFIG, PORT_PCI_CONFIG, 1, 8);
	aml_res_word_io(&r, 0x0000, 0x0CF7);
	aml_res_word_io(&r, 0x0D00, 0xFFFF);
	aml_res_dword_memory(&r, (uint32_t)PCI_MMIO32_START, (uint32_t)PCI_MMIO32_END);
	uint64_t mmio64 = (b->ram_top + PCI_MMIO64_ALIGN - 1) & ~(PCI_MMIO64_ALIGN - 1);
	aml_res_qword_memory(&r, mmio64, mmio64 + PCI_MMIO64_SIZE - 1);
	aml_res_end(&r);
	aml_name(a, "_CRS");
	aml_buffer(a, r.buf, r.len);
	if (r.overflow)
		a->error = true;

	/* _PRT: slot s, pin p -> GSI PCI_INTX_GSI_BASE + ((s + p) & 3). */
	aml_name(a, "_PRT");
	aml_package_begin(a, 31 * 4);
	for (unsigned slot = 1; slot < 32; slot++) {
		for (unsigned pin = 0; pin < 4; pin++) {
			aml_package_begin(a, 4);
			aml_integer(a, ((uint64_t)slot << 16) | 0xFFFF);
			aml_integer(a, pin);
			aml_integer(a, 0); /* no link device: a global interrupt */
			aml_integer(a, PCI_INTX_GSI_BASE + ((slot + pin) & 3));
			aml_end(a);
		}
	}
	aml_end(a);
	aml_end(a);
}

/* A device with a fixed _HID and a resource template. */
static void dsdt_isa_device(struct aml *a, const char *name, const char *hid, unsigned uid,
			    const struct aml_res *r)
{
	aml_device_begin(a, name);
	aml_name_eisaid(a, "_HID", hid);
	aml_name_integer(a, "_UID", uid);
	aml_method_begin(a, "_STA", 0, false);
	aml_return_integer(a, 0x0F); /* present, enabled, shown, functioning */
	aml_end(a);
	aml_name(a, "_CRS");
	aml_buffer(a, r->buf, r->len);
	if (r->overflow)
		a->error = true;
	aml_end(a);
}

void acpi_build_dsdt_body(const struct acpi_board *b, struct aml *a)
{
	/* \_S5: SLP_TYPa, SLP_TYPb (PM1a_CNT values for soft-off). */
	aml_name(a, "\\_S5");
	aml_package_begin(a, 4);
	aml_integer(a, ACPI_SLP_TYP_S5);
	aml_integer(a, ACPI_SLP_TYP_S5);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_end(a);

	aml_scope_begin(a, "\\_SB");
	dsdt_pci_host(b, a);

	struct aml_res r = { .len = 0 };
	aml_res_io(&r, PORT_COM1, PORT_COM1, 1, 8);
	aml_res_irq(&r, 1u << IRQ_COM1);
	aml_res_end(&r);
	dsdt_isa_device(a, "COM1", "PNP0501", 1, &r);

	r.len = 0;
	aml_res_io(&r, PORT_RTC, PORT_RTC, 1, 2);
	aml_res_irq(&r, 1u << IRQ_RTC);
	aml_res_end(&r);
	dsdt_isa_device(a, "RTC", "PNP0B00", 0, &r);

	r.len = 0;
	aml_res_io(&r, PORT_I8042_DATA, PORT_I8042_DATA, 1, 1);
	aml_res_io(&r, PORT_I8042_CMD, PORT_I8042_CMD, 1, 1);
	aml_res_irq(&r, 1u << IRQ_I8042_KBD);
	aml_res_end(&r);
	dsdt_isa_device(a, "KBD", "PNP0303", 0, &r);

	r.len = 0;
	aml_res_irq(&r, 1u << IRQ_I8042_AUX);
	aml_res_end(&r);
	dsdt_isa_device(a, "MOU", "PNP0F13", 0, &r);

	/* Motherboard resources: the ECAM, so Linux trusts the MCFG. */
	r.len = 0;
	aml_res_memory32_fixed(&r, (uint32_t)PCI_ECAM_BASE, (uint32_t)PCI_ECAM_SIZE, false);
	aml_res_end(&r);
	dsdt_isa_device(a, "MRES", "PNP0C02", 0, &r);

	/* virtio-mmio devices: Debian's kernel finds them only here. */
	for (unsigned i = 0; i < b->n_mmio && i < 32; i++) {
		char name[5];
		snprintf(name, sizeof(name), "VR%02u", i);
		aml_device_begin(a, name);
		aml_name_string_obj(a, "_HID", "LNRO0005");
		aml_name_integer(a, "_UID", i);
		r.len = 0;
		aml_res_memory32_fixed(&r, (uint32_t)b->mmio[i].base, (uint32_t)b->mmio[i].size, true);
		aml_res_interrupt(&r, b->mmio[i].gsi, false, false, false);
		aml_res_end(&r);
		aml_name(a, "_CRS");
		aml_buffer(a, r.buf, r.len);
		aml_end(a);
	}
	aml_end(a); /* \_SB */
}

static size_t write_dsdt(const struct acpi_board *b, struct writer *w)
{
	struct aml a;
	aml_init(&a);
	acpi_build_dsdt_body(b, &a);
	if (a.error || a.depth) {
		aml_free(&a);
		w->overflow = true;
		return 0;
	}
	size_t len = HDR_SIZE + a.len;
	size_t at = alloc(w, len, 16);
	if (!w->overflow) {
		uint8_t *t = w->buf + at;
		header(t, "DSDT", (uint32_t)len, 2); /* revision 2: 64-bit integers */
		memcpy(t + HDR_SIZE, a.buf, a.len);
		finish(t, (uint32_t)len);
	}
	aml_free(&a);
	return at;
}

static size_t write_fadt(struct writer *w, uint64_t facs, uint64_t dsdt)
{
	size_t at = alloc(w, FADT_SIZE, 16);
	if (w->overflow)
		return 0;
	uint8_t *t = w->buf + at;
	header(t, "FACP", FADT_SIZE, FADT_REVISION);
	put32(t + 36, (uint32_t)facs);
	put32(t + 40, (uint32_t)dsdt);
	t[45] = 0; /* preferred PM profile: unspecified */
	put16(t + 46, IRQ_ACPI_SCI);
	put32(t + 48, 0); /* no SMI_CMD: always in ACPI mode */
	put32(t + 56, PORT_ACPI_PM1_EVT);
	put32(t + 64, PORT_ACPI_PM1_CNT);
	put32(t + 76, PORT_ACPI_PM_TMR);
	put32(t + 80, PORT_ACPI_GPE0);
	t[88] = ACPI_PM1_EVT_LEN;
	t[89] = ACPI_PM1_CNT_LEN;
	t[91] = ACPI_PM_TMR_LEN;
	t[92] = ACPI_GPE0_BLK_LEN;
	put16(t + 96, 101);  /* P_LVL2_LAT > 100: C2 not supported */
	put16(t + 98, 1001); /* P_LVL3_LAT > 1000: C3 not supported */
	t[108] = RTC_CENTURY_INDEX;
	put16(t + 109, IAPC_LEGACY_DEVICES | IAPC_8042 | IAPC_NO_VGA);
	uint32_t flags = FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_RESET_REG_SUP;
	if (ACPI_PM_TMR_32BIT)
		flags |= FADT_TMR_VAL_EXT;
	put32(t + 112, flags);
	gas_io(t + 116, PORT_RESET_CF9, 8, 1);
	t[128] = ACPI_RESET_VALUE;
	t[131] = 0; /* FADT minor version */
	put64(t + 132, 0); /* X_FIRMWARE_CTRL: FIRMWARE_CTRL above is enough */
	put64(t + 140, dsdt);
	gas_io(t + 148, PORT_ACPI_PM1_EVT, 8 * ACPI_PM1_EVT_LEN, 2);
	gas_io(t + 172, PORT_ACPI_PM1_CNT, 8 * ACPI_PM1_CNT_LEN, 2);
	gas_io(t + 208, PORT_ACPI_PM_TMR, 8 * ACPI_PM_TMR_LEN, 3);
	gas_io(t + 220, PORT_ACPI_GPE0, 8 * ACPI_GPE0_BLK_LEN, 1);
	memcpy(t + 268, "XVM     ", 8); /* hypervisor vendor identity */
	finish(t, FADT_SIZE);
	return at;
}

static size_t write_madt(const struct acpi_board *b, struct writer *w)
{
	size_t len = HDR_SIZE + 8 + 8 * (size_t)b->ncpus + 12 + 2 * 10 + 6;
	size_t at = alloc(w, len, 16);
	if (w->overflow)
		return 0;
	uint8_t *t = w->buf + at;
	header(t, "APIC", (uint32_t)len, 5);
	put32(t + 36, (uint32_t)LAPIC_BASE);
	put32(t + 40, MADT_PCAT_COMPAT); /* 8259s present: Linux masks them */
	uint8_t *e = t + 44;
	for (unsigned i = 0; i < b->ncpus; i++, e += 8) {
		e[0] = MADT_LAPIC;
		e[1] = 8;
		e[2] = (uint8_t)i; /* ACPI processor UID */
		e[3] = (uint8_t)i; /* APIC ID = vCPU index */
		put32(e + 4, 1);   /* enabled */
	}
	e[0] = MADT_IOAPIC;
	e[1] = 12;
	e[2] = 0; /* IOAPIC ID: its own namespace on xAPIC systems */
	put32(e + 4, (uint32_t)IOAPIC_BASE);
	put32(e + 8, 0); /* GSI base */
	e += 12;
	/* ISA IRQ0 (the PIT) arrives on IOAPIC pin 2. */
	e[0] = MADT_ISO;
	e[1] = 10;
	e[2] = 0;
	e[3] = IRQ_PIT;
	put32(e + 4, 2);
	put16(e + 8, 0);
	e += 10;
	/* The SCI: level, active high (as the ACPI spec's default for it). */
	e[0] = MADT_ISO;
	e[1] = 10;
	e[2] = 0;
	e[3] = IRQ_ACPI_SCI;
	put32(e + 4, IRQ_ACPI_SCI);
	put16(e + 8, MPS_ACTIVE_HIGH | MPS_LEVEL);
	e += 10;
	/* NMI on LINT1 of every processor. */
	e[0] = MADT_LAPIC_NMI;
	e[1] = 6;
	e[2] = 0xFF;
	put16(e + 3, 0);
	e[5] = 1;
	finish(t, (uint32_t)len);
	return at;
}

static size_t write_mcfg(struct writer *w)
{
	size_t len = HDR_SIZE + 8 + 16;
	size_t at = alloc(w, len, 16);
	if (w->overflow)
		return 0;
	uint8_t *t = w->buf + at;
	header(t, "MCFG", (uint32_t)len, 1);
	uint8_t *e = t + 44;
	put64(e, PCI_ECAM_BASE);
	put16(e + 8, 0);  /* segment */
	e[10] = 0;        /* first bus */
	e[11] = MCFG_BUSES - 1;
	finish(t, (uint32_t)len);
	return at;
}

size_t acpi_write_tables(const struct acpi_board *b, uint8_t *buf, size_t len, uint64_t base,
			 size_t *rsdp_off)
{
	struct writer w = { .buf = buf, .len = len, .base = base };
	size_t rsdp = alloc(&w, RSDP_SIZE, 16);
	size_t facs = alloc(&w, FACS_SIZE, 64);
	size_t dsdt = write_dsdt(b, &w);
	size_t fadt = write_fadt(&w, base + facs, base + dsdt);
	size_t madt = write_madt(b, &w);
	size_t mcfg = write_mcfg(&w);
	size_t tables[] = { fadt, madt, mcfg };
	unsigned n = sizeof(tables) / sizeof(tables[0]);
	size_t rsdt = alloc(&w, HDR_SIZE + 4 * n, 16);
	size_t xsdt = alloc(&w, HDR_SIZE + 8 * n, 16);
	if (w.overflow)
		return 0;

	uint8_t *f = buf + facs;
	memcpy(f, "FACS", 4);
	put32(f + 4, FACS_SIZE);
	f[32] = 2; /* version */

	uint8_t *t = buf + rsdt;
	header(t, "RSDT", HDR_SIZE + 4 * n, 1);
	for (unsigned i = 0; i < n; i++)
		put32(t + HDR_SIZE + 4 * i, (uint32_t)(base + tables[i]));
	finish(t, HDR_SIZE + 4 * n);
	t = buf + xsdt;
	header(t, "XSDT", HDR_SIZE + 8 * n, 1);
	for (unsigned i = 0; i < n; i++)
		put64(t + HDR_SIZE + 8 * i, base + tables[i]);
	finish(t, HDR_SIZE + 8 * n);

	uint8_t *r = buf + rsdp;
	memcpy(r, "RSD PTR ", 8);
	memcpy(r + 9, "XVM   ", 6);
	r[15] = 2; /* ACPI 2.0+ */
	put32(r + 16, (uint32_t)(base + rsdt));
	put32(r + 20, RSDP_SIZE);
	put64(r + 24, base + xsdt);
	r[8] = (uint8_t)(0 - acpi_checksum(r, 20));
	r[32] = (uint8_t)(0 - acpi_checksum(r, RSDP_SIZE));
	*rsdp_off = rsdp;
	return w.used;
}

int acpi_build(struct machine *m, uint64_t *rsdp, char *err, size_t errlen)
{
	struct acpi_board b = {
		.ncpus = m->ncpus,
		.ram_top = HIGH_RAM_START + m->ram.high_size,
	};
	struct virtio_mmio_info mmio[32];
	b.n_mmio = m->virtio ? virtio_mmio_list(m, mmio, 32) : 0;
	for (unsigned i = 0; i < b.n_mmio; i++) {
		b.mmio[i].base = mmio[i].base;
		b.mmio[i].size = mmio[i].size;
		b.mmio[i].gsi = mmio[i].gsi;
	}
	uint8_t *dst = gpa_to_hva(&m->ram, ACPI_TABLES_ADDR, ACPI_TABLES_MAX);
	if (!dst) {
		snprintf(err, errlen, "guest RAM too small for the ACPI tables");
		return -EINVAL;
	}
	size_t rsdp_off;
	size_t used = acpi_write_tables(&b, dst, ACPI_TABLES_MAX, ACPI_TABLES_ADDR, &rsdp_off);
	if (!used) {
		snprintf(err, errlen, "ACPI tables do not fit in %llu bytes",
			 (unsigned long long)ACPI_TABLES_MAX);
		return -ENOSPC;
	}
	guest_ram_mark_written(&m->ram, ACPI_TABLES_ADDR, used);
	*rsdp = ACPI_TABLES_ADDR + rsdp_off;
	return 0;
}
