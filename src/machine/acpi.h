/* ACPI tables of the xvm PC (ACPI 6.x): RSDP, XSDT and RSDT, FADT with
 * FACS and the DSDT, MADT (every vCPU, the IOAPIC, ISA overrides, LAPIC
 * NMI) and MCFG (the ECAM). Written at ACPI_TABLES_ADDR, inside the
 * BIOS area e820 reserves. */
#ifndef XVM_MACHINE_ACPI_H
#define XVM_MACHINE_ACPI_H

#include <stddef.h>
#include <stdint.h>

struct machine;
struct aml;

/* Builds every table for m (m->ncpus, m->ram, the virtio-mmio devices)
 * into guest RAM; *rsdp = the RSDP's guest physical address. Returns 0
 * or -errno with a reason in err. */
int acpi_build(struct machine *m, uint64_t *rsdp, char *err, size_t errlen);

/* The tables written into a host buffer laid out as at guest address
 * base (for tests and for acpi_build). Returns the bytes used, or 0 if
 * they do not fit in len. *rsdp_off = offset of the RSDP. */
struct acpi_board {
	unsigned ncpus;
	uint64_t ram_top;            /* end of RAM above 4 GiB, or 4 GiB */
	unsigned n_mmio;             /* virtio-mmio devices (DSDT LNRO0005) */
	struct { uint64_t base, size; unsigned gsi; } mmio[32];
};
size_t acpi_write_tables(const struct acpi_board *b, uint8_t *buf, size_t len, uint64_t base,
			 size_t *rsdp_off);
/* The DSDT's AML body (after the table header), for tests. */
void acpi_build_dsdt_body(const struct acpi_board *b, struct aml *a);

/* Sum of bytes (a valid table sums to 0). */
uint8_t acpi_checksum(const uint8_t *p, size_t len);

#endif
