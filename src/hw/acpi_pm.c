/* ACPI PM1 event/control blocks, PM timer, GPE0 and the 0xCF9 reset
 * register (ACPI 6.x chapter 4.8 "fixed hardware"). See acpi_pm.h. */
#include "hw/acpi_pm.h"
#include "hw/io.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/util.h"
#include "machine/layout.h"
#include "machine/machine.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

/* One region covers PM1a_EVT, PM1a_CNT and PM_TMR. */
#define PM_REGION_LEN   (PORT_ACPI_PM_TMR + ACPI_PM_TMR_LEN - PORT_ACPI_PM_BASE)
#define OFF_PM1_STS     (PORT_ACPI_PM1_EVT - PORT_ACPI_PM_BASE)
#define OFF_PM1_EN      (OFF_PM1_STS + 2)
#define OFF_PM1_CNT     (PORT_ACPI_PM1_CNT - PORT_ACPI_PM_BASE)
#define OFF_PM_TMR      (PORT_ACPI_PM_TMR - PORT_ACPI_PM_BASE)

#define PM1_EN_MASK     (ACPI_PM1_TMR | ACPI_PM1_GBL | ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN | ACPI_PM1_RTC)
#define PM1_CNT_SLP_TYP_SHIFT 10
#define PM1_CNT_STORED  0x1C06 /* BM_RLD, GBL_RLS, SLP_TYP */
#define CF9_RESET_CPU   0x04

#define TMR_CARRY_BIT   31

struct acpi_pm {
	struct machine *m;
	pthread_mutex_t lock;
	uint64_t epoch_ns;
	uint16_t pm1_sts, pm1_en, pm1_cnt;
	uint64_t tmr_sts_from;  /* timer ticks when TMR_STS was last cleared */
	uint16_t gpe0_sts, gpe0_en;
	uint8_t cf9;
	bool sci_level;
	struct loop_timer *carry_timer; /* for TMR_EN: fires at the next carry */
};

/* Ticks since the machine was created (64-bit, never wraps in practice). */
static uint64_t ticks_now(struct acpi_pm *pm)
{
	unsigned __int128 ns = clock_ns() - pm->epoch_ns;
	return (uint64_t)(ns * ACPI_PM_TIMER_HZ / 1000000000ULL);
}

uint32_t acpi_pm_timer(struct acpi_pm *pm)
{
	return (uint32_t)ticks_now(pm);
}

/* Status as the guest sees it: TMR_STS is latched when bit 31 of the
 * counter flips after the last clear; computed here instead of by a
 * timer that would run even when nobody looks. */
static uint16_t pm1_status(struct acpi_pm *pm)
{
	uint16_t sts = pm->pm1_sts;
	if ((ticks_now(pm) >> TMR_CARRY_BIT) != (pm->tmr_sts_from >> TMR_CARRY_BIT))
		sts |= ACPI_PM1_TMR;
	return sts;
}

static void arm_carry_timer(struct acpi_pm *pm)
{
	if (!pm->carry_timer)
		return;
	if (!(pm->pm1_en & ACPI_PM1_TMR) || (pm1_status(pm) & ACPI_PM1_TMR)) {
		loop_timer_arm(pm->carry_timer, 0, 0);
		return;
	}
	uint64_t now = ticks_now(pm);
	uint64_t next = ((now >> TMR_CARRY_BIT) + 1) << TMR_CARRY_BIT;
	uint64_t ns = (uint64_t)((unsigned __int128)(next - now) * 1000000000ULL / ACPI_PM_TIMER_HZ) + 1;
	loop_timer_arm(pm->carry_timer, ns, 0);
}

static void update_sci(struct acpi_pm *pm)
{
	bool level = (pm->pm1_cnt & ACPI_PM1_SCI_EN) &&
		     ((pm1_status(pm) & pm->pm1_en & PM1_EN_MASK) || (pm->gpe0_sts & pm->gpe0_en));
	if (level != pm->sci_level) {
		pm->sci_level = level;
		machine_set_irq(pm->m, IRQ_ACPI_SCI, level);
	}
}

static void carry_fired(void *opaque)
{
	struct acpi_pm *pm = opaque;
	pthread_mutex_lock(&pm->lock);
	update_sci(pm);
	arm_carry_timer(pm);
	pthread_mutex_unlock(&pm->lock);
}

static void write_pm1_cnt(struct acpi_pm *pm, uint16_t v)
{
	pm->pm1_cnt = (uint16_t)(ACPI_PM1_SCI_EN | (v & PM1_CNT_STORED));
	if (!(v & ACPI_SLP_EN))
		return;
	unsigned typ = (v >> PM1_CNT_SLP_TYP_SHIFT) & 7;
	if (typ == ACPI_SLP_TYP_S5) {
		log_info("guest powered off (ACPI S5)");
		machine_request_stop(pm->m, VM_STOP_POWEROFF, 0);
	} else {
		log_once(LOG_WARN, "guest asked for ACPI sleep type %u; only S5 (power off) "
			 "is supported, ignored", typ);
	}
}

static uint8_t reg_byte_read(struct acpi_pm *pm, uint64_t off)
{
	switch (off) {
	case OFF_PM1_STS:     return (uint8_t)pm1_status(pm);
	case OFF_PM1_STS + 1: return (uint8_t)(pm1_status(pm) >> 8);
	case OFF_PM1_EN:      return (uint8_t)pm->pm1_en;
	case OFF_PM1_EN + 1:  return (uint8_t)(pm->pm1_en >> 8);
	case OFF_PM1_CNT:     return (uint8_t)pm->pm1_cnt;
	case OFF_PM1_CNT + 1: return (uint8_t)(pm->pm1_cnt >> 8);
	default:              return 0xFF;
	}
}

static uint64_t pm_read(void *opaque, uint64_t offset, unsigned size)
{
	struct acpi_pm *pm = opaque;
	if (offset >= OFF_PM_TMR) {
		/* One sample for the whole access: a byte-wise read would tear. */
		uint64_t t = acpi_pm_timer(pm);
		return t >> (8 * (offset - OFF_PM_TMR));
	}
	pthread_mutex_lock(&pm->lock);
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)reg_byte_read(pm, offset + i) << (8 * i);
	pthread_mutex_unlock(&pm->lock);
	return v;
}

static void pm_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct acpi_pm *pm = opaque;
	pthread_mutex_lock(&pm->lock);
	/* Assemble 16-bit register writes from whatever width was used;
	 * bytes not written keep their value (status: 0 = leave alone). */
	uint16_t sts_clear = 0, en = pm->pm1_en, cnt = pm->pm1_cnt;
	bool cnt_written = false;
	for (unsigned i = 0; i < size; i++) {
		uint64_t off = offset + i;
		uint8_t b = (uint8_t)(value >> (8 * i));
		if (off == OFF_PM1_STS || off == OFF_PM1_STS + 1) {
			sts_clear |= (uint16_t)(b << (8 * (off - OFF_PM1_STS)));
		} else if (off == OFF_PM1_EN || off == OFF_PM1_EN + 1) {
			unsigned sh = 8 * (unsigned)(off - OFF_PM1_EN);
			en = (uint16_t)((en & ~(0xFF << sh)) | (b << sh));
		} else if (off == OFF_PM1_CNT || off == OFF_PM1_CNT + 1) {
			unsigned sh = 8 * (unsigned)(off - OFF_PM1_CNT);
			cnt = (uint16_t)((cnt & ~(0xFF << sh)) | (b << sh));
			cnt_written = true;
		}
		/* The timer is read-only; the gap is reserved. */
	}
	if (sts_clear & ACPI_PM1_TMR)
		pm->tmr_sts_from = ticks_now(pm);
	pm->pm1_sts &= (uint16_t)~sts_clear;
	pm->pm1_en = en & PM1_EN_MASK;
	if (cnt_written) {
		/* SLP_EN acts only on the write that sets it: a byte write to
		 * the low half must not re-trigger a stored SLP_EN. */
		write_pm1_cnt(pm, cnt);
	}
	update_sci(pm);
	arm_carry_timer(pm);
	pthread_mutex_unlock(&pm->lock);
}

static uint64_t gpe_read(void *opaque, uint64_t offset, unsigned size)
{
	struct acpi_pm *pm = opaque;
	pthread_mutex_lock(&pm->lock);
	uint32_t regs = pm->gpe0_sts | ((uint32_t)pm->gpe0_en << 16);
	pthread_mutex_unlock(&pm->lock);
	return offset < 4 ? regs >> (8 * offset) : ~0ULL;
}

static void gpe_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct acpi_pm *pm = opaque;
	pthread_mutex_lock(&pm->lock);
	for (unsigned i = 0; i < size; i++) {
		uint64_t off = offset + i;
		uint8_t b = (uint8_t)(value >> (8 * i));
		if (off < 2)
			pm->gpe0_sts &= (uint16_t)~(b << (8 * off));
		else if (off < 4)
			pm->gpe0_en = (uint16_t)((pm->gpe0_en & ~(0xFF << (8 * (off - 2)))) |
						 (b << (8 * (off - 2))));
	}
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

static uint64_t cf9_read(void *opaque, uint64_t offset, unsigned size)
{
	struct acpi_pm *pm = opaque;
	return __atomic_load_n(&pm->cf9, __ATOMIC_RELAXED);
}

static void cf9_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct acpi_pm *pm = opaque;
	/* Bit 1 (hard/soft) and bit 3 (full reset) are stored; bit 2 resets. */
	__atomic_store_n(&pm->cf9, (uint8_t)(value & 0x0A), __ATOMIC_RELAXED);
	if (value & CF9_RESET_CPU) {
		log_info("guest reset (reset register %#x)", PORT_RESET_CF9);
		machine_request_stop(pm->m, VM_STOP_RESET, 0);
	}
}

static const struct io_ops pm_ops = { .read = pm_read, .write = pm_write };
static const struct io_ops gpe_ops = { .read = gpe_read, .write = gpe_write };
static const struct io_ops cf9_ops = { .read = cf9_read, .write = cf9_write };

void acpi_pm_press_power_button(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->pm1_sts |= ACPI_PM1_PWRBTN;
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

struct acpi_pm *acpi_pm_new(struct machine *m)
{
	struct acpi_pm *pm = xcalloc(1, sizeof(*pm));
	pm->m = m;
	pthread_mutex_init(&pm->lock, NULL);
	pm->epoch_ns = clock_ns();
	pm->pm1_cnt = ACPI_PM1_SCI_EN;
	if (m->loop)
		pm->carry_timer = loop_timer_new(m->loop, carry_fired, pm);
	if (io_register(m->pio, PORT_ACPI_PM_BASE, PM_REGION_LEN, &pm_ops, pm, "acpi-pm") < 0 ||
	    io_register(m->pio, PORT_ACPI_GPE0, ACPI_GPE0_BLK_LEN, &gpe_ops, pm, "acpi-gpe0") < 0 ||
	    io_register(m->pio, PORT_RESET_CF9, 1, &cf9_ops, pm, "reset-cf9") < 0) {
		log_err("acpi-pm: cannot register ports %#x, %#x, %#x", PORT_ACPI_PM_BASE,
			PORT_ACPI_GPE0, PORT_RESET_CF9);
		acpi_pm_free(pm);
		return NULL;
	}
	return pm;
}

void acpi_pm_free(struct acpi_pm *pm)
{
	if (!pm)
		return;
	loop_timer_free(pm->carry_timer);
	io_unregister(pm->m->pio, PORT_ACPI_PM_BASE, pm);
	io_unregister(pm->m->pio, PORT_ACPI_GPE0, pm);
	io_unregister(pm->m->pio, PORT_RESET_CF9, pm);
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

static void acpi_pm_teardown(void *opaque)
{
	acpi_pm_free(opaque);
}

struct acpi_pm *acpi_pm_init(struct machine *m)
{
	struct acpi_pm *pm = acpi_pm_new(m);
	if (pm)
		machine_on_teardown(m, acpi_pm_teardown, pm);
	return pm;
}
