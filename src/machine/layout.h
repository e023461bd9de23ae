/* Guest physical address map of the xvm PC. One place, so loaders, ACPI
 * tables, devices and both engines agree. */
#ifndef XVM_MACHINE_LAYOUT_H
#define XVM_MACHINE_LAYOUT_H

/* RAM: [0, min(size, LOW_RAM_MAX)) at 0; the rest at HIGH_RAM_START. */
#define LOW_RAM_MAX        0xC0000000ULL /* 3 GiB: start of the 32-bit hole */
#define HIGH_RAM_START     0x100000000ULL

/* Legacy holes inside low RAM that e820 reports as reserved. */
#define EBDA_START         0x0009FC00ULL
#define BIOS_ROM_START     0x000E0000ULL /* 0xE0000-0xFFFFF: ACPI RSDP, MP table */
#define BIOS_ROM_END       0x00100000ULL
#define VGA_HOLE_START     0x000A0000ULL

/* Fixed places used by the boot loaders (below 1 MiB, above the IVT/BDA). */
#define BOOT_GDT_ADDR      0x00000500ULL
#define BOOT_IDT_ADDR      0x00000520ULL
#define BOOT_PARAMS_ADDR   0x00007000ULL /* Linux zero page, multiboot info */
#define BOOT_CMDLINE_ADDR  0x00020000ULL
#define BOOT_CMDLINE_MAX   0x00010000ULL
#define BOOT_PML4_ADDR     0x00009000ULL /* identity page tables: 9000-cfff */
#define BOOT_STACK_TOP     0x0008F000ULL
#define MPTABLE_ADDR       0x000F0000ULL
#define ACPI_TABLES_ADDR   0x000E0000ULL /* RSDP must be in 0xE0000-0xFFFFF */
#define ACPI_TABLES_MAX    0x00010000ULL

/* 32-bit MMIO hole. */
#define PCI_MMIO32_START   0xC0000000ULL
#define PCI_MMIO32_END     0xDFFFFFFFULL
#define PCI_ECAM_BASE      0xE0000000ULL /* buses 0..15: 16 MiB */
#define PCI_ECAM_SIZE      0x01000000ULL
#define VIRTIO_MMIO_BASE   0xFE000000ULL /* 0x1000 per device slot */
#define VIRTIO_MMIO_SLOT   0x1000ULL
#define VIRTIO_MMIO_SLOTS  32
#define IOAPIC_BASE        0xFEC00000ULL
#define HPET_BASE          0xFED00000ULL
#define LAPIC_BASE         0xFEE00000ULL

/* PC port I/O map. */
#define PORT_PIC_MASTER    0x20
#define PORT_PIT           0x40
#define PORT_I8042_DATA    0x60
#define PORT_PC_SPEAKER    0x61
#define PORT_I8042_CMD     0x64
#define PORT_RTC           0x70
#define PORT_PIC_SLAVE     0xA0
#define PORT_FAST_A20      0x92
#define PORT_DEBUG_EXIT    0xF4
#define PORT_COM1          0x3F8
#define PORT_COM2          0x2F8
#define PORT_PCI_CONFIG    0xCF8
#define PORT_RESET_CF9     0xCF9 /* FADT reset register: write ACPI_RESET_VALUE */
#define ACPI_RESET_VALUE   0x06
#define PORT_ACPI_PM_BASE  0x600 /* PM1a_EVT 0x600, PM1a_CNT 0x604, PM_TMR 0x608 */
#define PORT_ACPI_PM1_EVT  0x600
#define PORT_ACPI_PM1_CNT  0x604
#define PORT_ACPI_PM_TMR   0x608
#define PORT_ACPI_GPE0     0x620
#define ACPI_SLP_TYP_S5    5     /* DSDT _S5 value; PM1a_CNT SLP_TYP field */
#define ACPI_SLP_EN        (1 << 13)
#define ACPI_PM1_EVT_LEN   4     /* status word, enable word */
#define ACPI_PM1_CNT_LEN   2
#define ACPI_PM_TMR_LEN    4
#define ACPI_PM_TMR_32BIT  1     /* 32-bit PM timer: FADT flag TMR_VAL_EXT */
#define ACPI_GPE0_BLK_LEN  4     /* GPE0 status (2 bytes), enable (2 bytes) */

/* Legacy IRQs (GSI numbers on the IOAPIC; ISA IRQ n = GSI n except 0 -> 2). */
#define IRQ_PIT            0
#define IRQ_I8042_KBD      1
#define IRQ_COM2           3
#define IRQ_COM1           4
#define IRQ_RTC            8
#define IRQ_ACPI_SCI       9
#define IRQ_I8042_AUX      12
#define IOAPIC_PINS        24
/* PCI INTx: device slot s, pin p (0=INTA) -> GSI 16 + ((s + p) & 3), level,
 * active low, as the DSDT _PRT says. */
#define PCI_INTX_GSI_BASE  16
/* virtio-mmio slot n uses GSI VIRTIO_MMIO_GSI_BASE + n (edge, active high). */
#define VIRTIO_MMIO_GSI_BASE 5
#define VIRTIO_MMIO_GSI_MAX  7 /* slots 0..2 on GSIs 5,6,7 */
/* Guest TSC frequency advertised in CPUID (0x15/0x16, hypervisor leaves). */
#define GUEST_TSC_KHZ      2000000
/* The emulated LAPIC timer's input clock: the "core crystal clock" of CPUID
 * leaf 0x15 (ECX), so Linux takes the APIC timer rate from CPUID instead of
 * calibrating it. GUEST_TSC_KHZ * 1000 must be a multiple of it. */
#define LAPIC_TIMER_HZ     100000000

#endif
