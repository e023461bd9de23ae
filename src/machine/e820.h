/* The guest's physical memory map as firmware reports it (BIOS e820,
 * also used for the multiboot mmap and the PVH memmap). */
#ifndef XVM_MACHINE_E820_H
#define XVM_MACHINE_E820_H

#include <stdint.h>

struct guest_ram;

enum e820_type {
	E820_RAM = 1,
	E820_RESERVED = 2,
	E820_ACPI = 3,
	E820_NVS = 4,
	E820_UNUSABLE = 5,
};

#define E820_MAX 32

struct e820_entry {
	uint64_t addr, size;
	uint32_t type;
};

struct e820_table {
	struct e820_entry entry[E820_MAX];
	unsigned n;
};

/* Builds the map of the xvm PC for this RAM: base memory below the EBDA,
 * the EBDA/BIOS area reserved, RAM from 1 MiB to the end of low RAM, the
 * ECAM, IOAPIC and LAPIC pages reserved, RAM above 4 GiB. Sorted by
 * address, no overlaps. */
void e820_build(struct e820_table *t, const struct guest_ram *ram);
/* Whether [addr, addr+len) lies inside one entry of this type. */
int e820_contains(const struct e820_table *t, uint64_t addr, uint64_t len, enum e820_type type);

#endif
