/* ACPI fixed-hardware registers of the xvm PC (what the FADT points at,
 * ports in machine/layout.h): PM1a event block (status/enable: timer
 * carry, power button), PM1a control (SCI_EN reads 1 always: there is no
 * SMI_CMD, the machine is always in ACPI mode; SLP_TYP=S5 with SLP_EN
 * powers off), the PM timer (32 bits, 3.579545 MHz from the host monotonic
 * clock, ACPI_PM_TMR_32BIT), a GPE0 block with no sources, and the reset
 * register at 0xCF9 (a write with bit 2 set, e.g. ACPI_RESET_VALUE, resets).
 * The SCI is IRQ_ACPI_SCI, level: asserted while an enabled status bit is
 * set. */
#ifndef XVM_HW_ACPI_PM_H
#define XVM_HW_ACPI_PM_H

#include <stdint.h>

#define ACPI_PM_TIMER_HZ 3579545ULL

/* PM1 status / enable bits. */
#define ACPI_PM1_TMR    0x0001
#define ACPI_PM1_GBL    0x0020
#define ACPI_PM1_PWRBTN 0x0100
#define ACPI_PM1_SLPBTN 0x0200
#define ACPI_PM1_RTC    0x0400
#define ACPI_PM1_WAK    0x8000
/* PM1 control bits. */
#define ACPI_PM1_SCI_EN 0x0001

struct machine;
struct acpi_pm;

struct acpi_pm *acpi_pm_new(struct machine *m);
void acpi_pm_free(struct acpi_pm *pm);
/* Creates the board's PM registers; freed at machine teardown. The
 * pointer is for the control API (power button). */
struct acpi_pm *acpi_pm_init(struct machine *m);

/* The PM timer's current value (what a 32-bit read of PM_TMR returns). */
uint32_t acpi_pm_timer(struct acpi_pm *pm);
/* Presses the power button: PWRBTN_STS and, if enabled, an SCI. The
 * guest's ACPI code then usually powers off through S5. Thread-safe. */
void acpi_pm_press_power_button(struct acpi_pm *pm);

#endif
