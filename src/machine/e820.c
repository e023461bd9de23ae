/* The xvm PC's memory map (see e820.h and machine/layout.h). */
#include "machine/e820.h"
#include "machine/layout.h"
#include "machine/memory.h"

static void add(struct e820_table *t, uint64_t addr, uint64_t size, enum e820_type type)
{
	if (size == 0 || t->n >= E820_MAX)
		return;
	t->entry[t->n++] = (struct e820_entry){ .addr = addr, .size = size, .type = type };
}

void e820_build(struct e820_table *t, const struct guest_ram *ram)
{
	t->n = 0;
	uint64_t low = ram->low_size;
	/* Base memory ends where the EBDA starts, as on a PC. */
	add(t, 0, low < EBDA_START ? low : EBDA_START, E820_RAM);
	/* EBDA, VGA hole and BIOS area: reserved whether RAM backs them or
	 * not, so the guest leaves our ACPI and MP tables alone. */
	add(t, EBDA_START, BIOS_ROM_END - EBDA_START, E820_RESERVED);
	if (low > BIOS_ROM_END)
		add(t, BIOS_ROM_END, low - BIOS_ROM_END, E820_RAM);
	/* Inside the 32-bit hole: only what the guest must not place PCI
	 * BARs or RAM on. The PCI MMIO window itself is left out: Linux
	 * clips host bridge windows by e820 reservations. */
	add(t, PCI_ECAM_BASE, PCI_ECAM_SIZE, E820_RESERVED);
	add(t, IOAPIC_BASE, 0x1000, E820_RESERVED);
	add(t, LAPIC_BASE, 0x1000, E820_RESERVED);
	if (ram->high_size)
		add(t, HIGH_RAM_START, ram->high_size, E820_RAM);
}

int e820_contains(const struct e820_table *t, uint64_t addr, uint64_t len, enum e820_type type)
{
	for (unsigned i = 0; i < t->n; i++) {
		const struct e820_entry *e = &t->entry[i];
		if (e->type == type && addr >= e->addr && addr - e->addr <= e->size &&
		    len <= e->size - (addr - e->addr))
			return 1;
	}
	return 0;
}
