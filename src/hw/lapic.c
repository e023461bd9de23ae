/* Local APIC (xAPIC mode) for the software CPU. See Intel SDM vol. 3,
 * chapter "Advanced Programmable Interrupt Controller (APIC)".
 *
 * All register state is under l->lock. Other threads (IPIs from other
 * vCPUs, the IOAPIC, MSIs, the timer thread) take that lock to set IRR
 * bits; the owning vCPU takes it to acknowledge. The engine's notify
 * callback and IOAPIC EOIs are always called after the lock is dropped, so
 * the lock order is: ioapic -> lapic -> timer service. */
#include "hw/lapic.h"
#include "hw/clock.h"
#include "hw/ioapic.h"
#include "hw/pic.h"
#include "hw/platform.h"
#include "lib/log.h"
#include "lib/util.h"
#include "machine/layout.h"
#include "machine/machine.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Register offsets in the 4 KiB page. */
#define REG_ID        0x020
#define REG_VERSION   0x030
#define REG_TPR       0x080
#define REG_APR       0x090
#define REG_PPR       0x0A0
#define REG_EOI       0x0B0
#define REG_RRD       0x0C0
#define REG_LDR       0x0D0
#define REG_DFR       0x0E0
#define REG_SVR       0x0F0
#define REG_ISR       0x100
#define REG_TMR       0x180
#define REG_IRR       0x200
#define REG_ESR       0x280
#define REG_ICR_LO    0x300
#define REG_ICR_HI    0x310
#define REG_LVT_TIMER 0x320
#define REG_LVT_ERROR 0x370
#define REG_TIMER_ICR 0x380
#define REG_TIMER_CCR 0x390
#define REG_TIMER_DCR 0x3E0

enum { LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR, LVT_COUNT };

#define LVT_MASKED        (1u << 16)
#define LVT_DM(v)         (((v) >> 8) & 7)
#define LVT_LEVEL         (1u << 15)
#define LVT_TIMER_MODE(v) (((v) >> 17) & 3)
enum { TIMER_ONESHOT = 0, TIMER_PERIODIC = 1, TIMER_TSC_DEADLINE = 2 };

/* Writable bits of each LVT entry (the timer has no delivery mode; LINTn
 * have polarity and trigger; remote IRR and delivery status are read-only). */
static const uint32_t lvt_writable[LVT_COUNT] = {
	[LVT_TIMER] = 0x000700FF, [LVT_THERMAL] = 0x000107FF,
	[LVT_PERF] = 0x000107FF, [LVT_LINT0] = 0x0001A7FF,
	[LVT_LINT1] = 0x0001A7FF, [LVT_ERROR] = 0x000100FF,
};

/* Version 0x14 (integrated APIC), max LVT entry 5 (six entries). */
#define LAPIC_VERSION ((uint32_t)((LVT_COUNT - 1) << 16) | 0x14)
#define SVR_ENABLE    (1u << 8)
#define ICR_WRITABLE  0x000CCFFFu
#define ICR_LEVEL_ASSERT  (1u << 14)
#define ICR_TRIGGER_LEVEL (1u << 15)

/* ESR bits. */
#define ESR_SEND_ILLEGAL_VECTOR    (1u << 5)
#define ESR_RECEIVE_ILLEGAL_VECTOR (1u << 6)
#define ESR_ILLEGAL_REGISTER       (1u << 7)

#define TSC_PER_TIMER_TICK ((uint64_t)GUEST_TSC_KHZ * 1000 / LAPIC_TIMER_HZ)
_Static_assert((uint64_t)GUEST_TSC_KHZ * 1000 % LAPIC_TIMER_HZ == 0,
	       "the guest TSC must be a multiple of the APIC timer clock");
/* A periodic timer faster than this would only burn the host. */
#define MIN_PERIOD_TSC ((uint64_t)GUEST_TSC_KHZ * 1000 / 20000) /* 50 us */

struct lapic {
	pthread_mutex_t lock;
	struct vcpu *vcpu;
	struct machine *m;
	void (*notify)(void *opaque);
	void *notify_opaque;

	uint64_t apic_base;
	/* Read without the lock by apic_deliver (destination matching):
	 * written with atomic stores. */
	uint32_t id, ldr, dfr;
	uint32_t tpr, svr, esr, esr_pending, icr_lo, icr_hi;
	uint32_t lvt[LVT_COUNT];
	uint32_t irr[8], isr[8], tmr[8];

	/* Timer: one-shot/periodic count from timer_start; TSC deadline. */
	uint32_t timer_initial, timer_dcr;
	uint64_t timer_start_tsc, timer_period_tsc;
	uint64_t tsc_deadline;   /* the MSR (deadline mode), in the vCPU's TSC */
	int64_t tsc_offset;      /* vCPU TSC - guest_tsc(m) */
	uint64_t next_deadline;  /* guest TSC of the next expiry, atomic */
	struct hw_timer *timer;

	/* Pending non-vectored events. */
	bool nmi_pending, init_pending, wait_sipi, extint_pending;
	int sipi_vector;
};

/* 256-bit vectors (IRR, ISR, TMR). */
static void bit_set(uint32_t *v, unsigned n) { v[n / 32] |= 1u << (n % 32); }
static void bit_clear(uint32_t *v, unsigned n) { v[n / 32] &= ~(1u << (n % 32)); }
static bool bit_test(const uint32_t *v, unsigned n) { return v[n / 32] >> (n % 32) & 1; }
static int highest_bit(const uint32_t *v)
{
	for (int i = 7; i >= 0; i--)
		if (v[i])
			return i * 32 + 31 - __builtin_clz(v[i]);
	return -1;
}

static bool hw_enabled(const struct lapic *l) { return l->apic_base & APIC_BASE_ENABLE; }
static bool sw_enabled(const struct lapic *l) { return l->svr & SVR_ENABLE; }

static uint32_t ppr(const struct lapic *l)
{
	int isrv = highest_bit(l->isr);
	uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xF0;
	return (l->tpr & 0xF0) >= isr_class ? l->tpr & 0xFF : isr_class;
}

/* The IRR vector that may interrupt now, or -1. */
static int deliverable_vector(const struct lapic *l)
{
	if (!hw_enabled(l))
		return -1;
	int v = highest_bit(l->irr);
	if (v < 0 || ((uint32_t)v & 0xF0) <= (ppr(l) & 0xF0))
		return -1;
	return v;
}

/* The PIC's INTR reaches this CPU: LINT0 in ExtINT mode and unmasked, or
 * the APIC globally disabled (LINT0 is then the plain INTR pin). */
static bool takes_pic_intr(const struct lapic *l)
{
	if (!hw_enabled(l))
		return true;
	uint32_t lint0 = l->lvt[LVT_LINT0];
	return !(lint0 & LVT_MASKED) && LVT_DM(lint0) == APIC_DM_EXTINT;
}

static void notify(struct lapic *l)
{
	if (l->notify)
		l->notify(l->notify_opaque);
}

static void accept_error(struct lapic *l, uint32_t bits);

/* Sets a fixed vector in IRR. Returns true if the vCPU should look. */
static bool accept_fixed(struct lapic *l, uint8_t vector, bool level)
{
	if (!hw_enabled(l) || !sw_enabled(l))
		return false;
	if (vector < 16) {
		accept_error(l, ESR_RECEIVE_ILLEGAL_VECTOR);
		return true;
	}
	bit_set(l->irr, vector);
	if (level)
		bit_set(l->tmr, vector);
	else
		bit_clear(l->tmr, vector);
	return true;
}

/* Records an error and raises the LVT error interrupt. */
static void accept_error(struct lapic *l, uint32_t bits)
{
	l->esr_pending |= bits;
	uint32_t lvt = l->lvt[LVT_ERROR];
	uint8_t vector = lvt & 0xFF;
	if (!(lvt & LVT_MASKED) && vector >= 16 && sw_enabled(l))
		bit_set(l->irr, vector);
	else if (!(lvt & LVT_MASKED) && sw_enabled(l))
		l->esr_pending |= ESR_RECEIVE_ILLEGAL_VECTOR; /* no recursion */
}

/* ---- timer ---- */

static unsigned timer_divide(const struct lapic *l)
{
	unsigned code = ((l->timer_dcr >> 1) & 4) | (l->timer_dcr & 3);
	return code == 7 ? 1 : 2u << code;
}

static unsigned timer_mode(const struct lapic *l)
{
	return LVT_TIMER_MODE(l->lvt[LVT_TIMER]);
}

static void set_next_deadline(struct lapic *l, uint64_t tsc)
{
	__atomic_store_n(&l->next_deadline, tsc, __ATOMIC_RELEASE);
	if (tsc == UINT64_MAX)
		hw_timer_disarm(l->timer);
	else
		hw_timer_arm(l->timer, guest_tsc_deadline_ns(l->m, tsc));
}

static void timer_stop(struct lapic *l)
{
	l->timer_period_tsc = 0;
	set_next_deadline(l, UINT64_MAX);
}

/* Writing the initial count (re)starts a one-shot or periodic count. */
static void timer_start_count(struct lapic *l, uint32_t count)
{
	if (timer_mode(l) == TIMER_TSC_DEADLINE)
		return; /* the initial count is ignored in deadline mode */
	l->timer_initial = count;
	if (!count) {
		timer_stop(l);
		return;
	}
	l->timer_start_tsc = guest_tsc(l->m);
	l->timer_period_tsc = (uint64_t)count * timer_divide(l) * TSC_PER_TIMER_TICK;
	if (timer_mode(l) == TIMER_PERIODIC && l->timer_period_tsc < MIN_PERIOD_TSC) {
		log_once(LOG_WARN, "lapic: periodic timer of %llu TSC ticks raised to %llu",
			 (unsigned long long)l->timer_period_tsc,
			 (unsigned long long)MIN_PERIOD_TSC);
		l->timer_period_tsc = MIN_PERIOD_TSC;
	}
	set_next_deadline(l, l->timer_start_tsc + l->timer_period_tsc);
}

static uint32_t timer_current_count(struct lapic *l)
{
	uint64_t next = l->next_deadline;
	if (timer_mode(l) == TIMER_TSC_DEADLINE || next == UINT64_MAX || !l->timer_period_tsc)
		return 0;
	uint64_t now = guest_tsc(l->m);
	if (now >= next) {
		if (timer_mode(l) != TIMER_PERIODIC)
			return 0;
		/* Expired but not yet fired: count within the next period. */
		uint64_t into = (now - next) % l->timer_period_tsc;
		next = now - into + l->timer_period_tsc;
	}
	uint64_t per_count = (uint64_t)timer_divide(l) * TSC_PER_TIMER_TICK;
	uint64_t left = (next - now + per_count - 1) / per_count;
	return left > l->timer_initial ? l->timer_initial : (uint32_t)left;
}

/* Fires the timer if it expired. Returns true if an interrupt was raised. */
static bool timer_check(struct lapic *l, uint64_t now)
{
	uint64_t next = l->next_deadline;
	if (next == UINT64_MAX || now < next)
		return false;
	uint32_t lvt = l->lvt[LVT_TIMER];
	bool raised = false;
	if (!(lvt & LVT_MASKED))
		raised = accept_fixed(l, lvt & 0xFF, false);
	switch (timer_mode(l)) {
	case TIMER_PERIODIC:
		if (l->timer_period_tsc) {
			/* Missed periods are coalesced into this one. */
			uint64_t missed = (now - next) / l->timer_period_tsc;
			set_next_deadline(l, next + (missed + 1) * l->timer_period_tsc);
			break;
		}
		/* fall through */
	case TIMER_ONESHOT:
		timer_stop(l);
		break;
	default: /* TSC deadline: fires once and clears the MSR */
		l->tsc_deadline = 0;
		set_next_deadline(l, UINT64_MAX);
		break;
	}
	return raised;
}

static void timer_fired(void *opaque)
{
	struct lapic *l = opaque;
	pthread_mutex_lock(&l->lock);
	uint64_t now = guest_tsc(l->m);
	bool raised = timer_check(l, now);
	/* Woken early (the host clock and the TSC round differently): re-arm. */
	if (!raised && l->next_deadline != UINT64_MAX)
		set_next_deadline(l, l->next_deadline);
	pthread_mutex_unlock(&l->lock);
	if (raised)
		notify(l);
}

void lapic_poll_timer(struct lapic *l, uint64_t now_tsc)
{
	if (__atomic_load_n(&l->next_deadline, __ATOMIC_ACQUIRE) > now_tsc)
		return;
	pthread_mutex_lock(&l->lock);
	bool raised = timer_check(l, now_tsc);
	pthread_mutex_unlock(&l->lock);
	if (raised)
		notify(l);
}

uint64_t lapic_next_deadline_tsc(struct lapic *l)
{
	return __atomic_load_n(&l->next_deadline, __ATOMIC_ACQUIRE);
}

static void write_lvt_timer(struct lapic *l, uint32_t value)
{
	unsigned old_mode = timer_mode(l);
	l->lvt[LVT_TIMER] = value;
	if (timer_mode(l) == 3) /* reserved mode: keep one-shot */
		l->lvt[LVT_TIMER] &= ~(3u << 17);
	if (timer_mode(l) != old_mode) {
		/* A mode change disarms the timer (SDM 10.5.4.1). */
		l->timer_initial = 0;
		l->tsc_deadline = 0;
		timer_stop(l);
	}
}

/* ---- register state ---- */

static void set_sw_enable(struct lapic *l, uint32_t svr)
{
	l->svr = svr & 0x3FF;
	if (!sw_enabled(l)) {
		/* Software disable masks every LVT entry. */
		for (int i = 0; i < LVT_COUNT; i++)
			l->lvt[i] |= LVT_MASKED;
	}
}

/* Register reset (power-up, INIT, global disable); keeps the APIC base,
 * and the ID unless full. */
static void reset_registers(struct lapic *l)
{
	bool bsp = l->vcpu->index == 0;
	l->tpr = 0;
	l->ldr = 0;
	__atomic_store_n(&l->dfr, 0xFFFFFFFFu, __ATOMIC_RELAXED);
	__atomic_store_n(&l->ldr, 0, __ATOMIC_RELAXED);
	l->svr = 0xFF;
	l->esr = l->esr_pending = 0;
	l->icr_lo = l->icr_hi = 0;
	for (int i = 0; i < LVT_COUNT; i++)
		l->lvt[i] = LVT_MASKED;
	if (bsp) {
		/* What firmware leaves: the PIC through LINT0 (virtual wire
		 * mode) and NMI on LINT1. */
		l->lvt[LVT_LINT0] = APIC_DM_EXTINT << 8;
		l->lvt[LVT_LINT1] = APIC_DM_NMI << 8;
	}
	memset(l->irr, 0, sizeof(l->irr));
	memset(l->isr, 0, sizeof(l->isr));
	memset(l->tmr, 0, sizeof(l->tmr));
	l->timer_initial = 0;
	l->timer_dcr = 0;
	l->tsc_deadline = 0;
	l->extint_pending = false;
	timer_stop(l);
}

void lapic_reset(struct lapic *l)
{
	pthread_mutex_lock(&l->lock);
	bool bsp = l->vcpu->index == 0;
	__atomic_store_n(&l->id, l->vcpu->index << 24, __ATOMIC_RELAXED);
	l->apic_base = LAPIC_BASE | APIC_BASE_ENABLE | (bsp ? APIC_BASE_BSP : 0);
	reset_registers(l);
	l->nmi_pending = l->init_pending = false;
	l->wait_sipi = !bsp;
	l->sipi_vector = -1;
	pthread_mutex_unlock(&l->lock);
}

struct lapic *lapic_new(struct vcpu *v)
{
	struct lapic *l = xcalloc(1, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	l->vcpu = v;
	l->m = v->m;
	l->next_deadline = UINT64_MAX;
	l->timer = hw_timer_new(timer_fired, l);
	lapic_reset(l);
	return l;
}

/* Guards the vcpu->lapic pointers that senders (the PIT's timer, device
 * threads, other vCPUs) walk, against lapic_free during teardown. */
static pthread_rwlock_t lapics_lock = PTHREAD_RWLOCK_INITIALIZER;

void lapic_free(struct lapic *l)
{
	if (!l)
		return;
	pthread_rwlock_wrlock(&lapics_lock);
	if (l->vcpu->lapic == l)
		__atomic_store_n(&l->vcpu->lapic, NULL, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&lapics_lock);
	hw_timer_free(l->timer);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

void lapic_set_notify(struct lapic *l, void (*fn)(void *opaque), void *opaque)
{
	pthread_mutex_lock(&l->lock);
	l->notify = fn;
	l->notify_opaque = opaque;
	pthread_mutex_unlock(&l->lock);
}

/* ---- delivery ---- */

static bool matches_logical(struct lapic *l, uint8_t mda)
{
	uint8_t ldr = __atomic_load_n(&l->ldr, __ATOMIC_RELAXED) >> 24;
	uint32_t dfr = __atomic_load_n(&l->dfr, __ATOMIC_RELAXED);
	if (mda == 0xFF)
		return true;
	if ((dfr >> 28) == 0xF) /* flat: a bit per APIC */
		return (ldr & mda) != 0;
	/* cluster: high nibble the cluster (15 = all), low nibble a mask */
	uint8_t cluster = mda >> 4;
	return (cluster == 0xF || cluster == ldr >> 4) && (mda & ldr & 0xF);
}

static bool matches(struct lapic *l, const struct apic_irq *irq)
{
	switch (irq->shorthand) {
	case APIC_DEST_SELF:
		return l == irq->source;
	case APIC_DEST_ALL:
		return true;
	case APIC_DEST_ALL_BUT_SELF:
		return l != irq->source;
	}
	uint8_t dest = irq->dest & 0xFF;
	if (irq->logical)
		return matches_logical(l, dest);
	return dest == 0xFF || dest == __atomic_load_n(&l->id, __ATOMIC_RELAXED) >> 24;
}

/* One lapic receives one message. Returns true if it took it (a fixed
 * vector landed in IRR), false if it dropped it. */
static bool lapic_accept(struct lapic *l, const struct apic_irq *irq)
{
	bool wake = false, taken = false;
	pthread_mutex_lock(&l->lock);
	if (!hw_enabled(l)) {
		pthread_mutex_unlock(&l->lock);
		return false;
	}
	switch (irq->delivery) {
	case APIC_DM_FIXED:
	case APIC_DM_LOWEST:
		taken = sw_enabled(l) && irq->vector >= 16;
		wake = accept_fixed(l, irq->vector, irq->level_trigger);
		break;
	case APIC_DM_NMI:
		l->nmi_pending = wake = true;
		break;
	case APIC_DM_INIT:
		if (!irq->assert)
			break; /* level de-assert: only resyncs arbitration IDs */
		l->init_pending = l->wait_sipi = wake = true;
		l->sipi_vector = -1;
		break;
	case APIC_DM_STARTUP:
		if (l->wait_sipi) {
			l->sipi_vector = irq->vector;
			l->wait_sipi = false;
			wake = true;
		}
		break;
	case APIC_DM_EXTINT:
		l->extint_pending = wake = true;
		break;
	default:
		log_once(LOG_WARN, "lapic: delivery mode %u (SMI or reserved) ignored",
			 irq->delivery);
		break;
	}
	pthread_mutex_unlock(&l->lock);
	if (wake)
		notify(l);
	return taken || (wake && irq->delivery != APIC_DM_FIXED && irq->delivery != APIC_DM_LOWEST);
}

static uint32_t lapic_ppr_snapshot(struct lapic *l)
{
	pthread_mutex_lock(&l->lock);
	uint32_t p = ppr(l);
	pthread_mutex_unlock(&l->lock);
	return p;
}

static struct lapic *vcpu_lapic(struct machine *m, unsigned i)
{
	return __atomic_load_n(&m->vcpus[i].lapic, __ATOMIC_ACQUIRE);
}

unsigned apic_deliver(struct machine *m, const struct apic_irq *irq)
{
	unsigned taken = 0;
	pthread_rwlock_rdlock(&lapics_lock);
	if (irq->delivery == APIC_DM_LOWEST && irq->shorthand == APIC_DEST_NOSHORT) {
		/* Lowest priority: the matching APIC with the lowest PPR. */
		struct lapic *best = NULL;
		uint32_t best_ppr = UINT32_MAX;
		for (unsigned i = 0; i < m->ncpus; i++) {
			struct lapic *l = vcpu_lapic(m, i);
			if (!l || !matches(l, irq))
				continue;
			uint32_t p = lapic_ppr_snapshot(l);
			if (p < best_ppr) {
				best = l;
				best_ppr = p;
			}
		}
		if (best)
			taken += lapic_accept(best, irq);
	} else {
		for (unsigned i = 0; i < m->ncpus; i++) {
			struct lapic *l = vcpu_lapic(m, i);
			if (l && matches(l, irq))
				taken += lapic_accept(l, irq);
		}
	}
	pthread_rwlock_unlock(&lapics_lock);
	return taken;
}

void lapic_pic_intr_changed(struct machine *m)
{
	pthread_rwlock_rdlock(&lapics_lock);
	for (unsigned i = 0; i < m->ncpus; i++) {
		struct lapic *l = vcpu_lapic(m, i);
		if (!l)
			continue;
		pthread_mutex_lock(&l->lock);
		bool takes = takes_pic_intr(l);
		pthread_mutex_unlock(&l->lock);
		if (takes)
			notify(l);
	}
	pthread_rwlock_unlock(&lapics_lock);
}

/* Sends the IPI in ICR (called with l->lock held; delivery happens after
 * the caller drops it, into *out). Returns false if nothing is sent. */
static bool icr_to_irq(struct lapic *l, struct apic_irq *out)
{
	uint32_t lo = l->icr_lo;
	*out = (struct apic_irq){
		.vector = lo & 0xFF,
		.delivery = (lo >> 8) & 7,
		.logical = lo & (1u << 11),
		.assert = lo & ICR_LEVEL_ASSERT,
		.level_trigger = false, /* IPIs never set TMR (no IOAPIC EOI) */
		.shorthand = (lo >> 18) & 3,
		.dest = l->icr_hi >> 24,
		.source = l,
	};
	switch (out->delivery) {
	case APIC_DM_FIXED:
	case APIC_DM_LOWEST:
		if (out->vector < 16) {
			accept_error(l, ESR_SEND_ILLEGAL_VECTOR);
			return false;
		}
		return true;
	case APIC_DM_INIT:
		/* INIT level de-assert (level 0, level-triggered) is a no-op. */
		if (!out->assert && (lo & ICR_TRIGGER_LEVEL))
			return false;
		out->assert = true;
		return out->shorthand != APIC_DEST_SELF;
	case APIC_DM_NMI:
	case APIC_DM_STARTUP:
		return out->shorthand != APIC_DEST_SELF;
	default:
		log_once(LOG_WARN, "lapic: IPI with delivery mode %u ignored", out->delivery);
		return false;
	}
}

/* ---- acknowledge / EOI ---- */

int lapic_get_interrupt(struct lapic *l)
{
	pthread_mutex_lock(&l->lock);
	bool extint = l->extint_pending || takes_pic_intr(l);
	l->extint_pending = false;
	struct pic *pic = l->m->pic;
	if (extint && pic && pic_intr(pic)) {
		pthread_mutex_unlock(&l->lock);
		return pic_acknowledge(pic);
	}
	int v = deliverable_vector(l);
	if (v >= 0) {
		bit_clear(l->irr, (unsigned)v);
		bit_set(l->isr, (unsigned)v);
	}
	pthread_mutex_unlock(&l->lock);
	if (v >= 0)
		platform_vector_acked(l->m, (uint8_t)v);
	return v;
}

bool lapic_has_interrupt(struct lapic *l)
{
	pthread_mutex_lock(&l->lock);
	bool extint = l->extint_pending || takes_pic_intr(l);
	bool has = deliverable_vector(l) >= 0;
	pthread_mutex_unlock(&l->lock);
	struct pic *pic = l->m->pic;
	return has || (extint && pic && pic_intr(pic));
}

bool lapic_take_nmi(struct lapic *l)
{
	pthread_mutex_lock(&l->lock);
	bool nmi = l->nmi_pending;
	l->nmi_pending = false;
	pthread_mutex_unlock(&l->lock);
	return nmi;
}

bool lapic_take_init_sipi(struct lapic *l, bool *init, int *sipi_vector)
{
	pthread_mutex_lock(&l->lock);
	*init = l->init_pending;
	*sipi_vector = l->sipi_vector;
	l->init_pending = false;
	l->sipi_vector = -1;
	if (*init)
		reset_registers(l); /* INIT resets the APIC but keeps its ID and base */
	pthread_mutex_unlock(&l->lock);
	return *init || *sipi_vector >= 0;
}

/* EOI: retires the highest in-service vector. Returns it if it was
 * level-triggered (the IOAPIC must hear about it), else -1. */
static int do_eoi(struct lapic *l)
{
	int v = highest_bit(l->isr);
	if (v < 0)
		return -1;
	bit_clear(l->isr, (unsigned)v);
	return bit_test(l->tmr, (unsigned)v) ? v : -1;
}

static void after_eoi(struct lapic *l, int level_vector)
{
	if (level_vector >= 0 && l->m->ioapic)
		ioapic_eoi(l->m->ioapic, (uint8_t)level_vector);
	notify(l); /* a lower-priority pending vector may now be deliverable */
}

void lapic_set_tpr(struct lapic *l, uint8_t cr8)
{
	pthread_mutex_lock(&l->lock);
	bool lowered = (cr8 & 0xF) < (l->tpr >> 4);
	l->tpr = (uint32_t)(cr8 & 0xF) << 4;
	pthread_mutex_unlock(&l->lock);
	if (lowered)
		notify(l);
}

uint8_t lapic_get_tpr(struct lapic *l)
{
	pthread_mutex_lock(&l->lock);
	uint8_t cr8 = (uint8_t)(l->tpr >> 4);
	pthread_mutex_unlock(&l->lock);
	return cr8;
}

/* ---- MMIO ---- */

static uint32_t read_register(struct lapic *l, uint32_t reg)
{
	if (reg >= REG_ISR && reg < REG_ISR + 0x80)
		return l->isr[(reg - REG_ISR) >> 4];
	if (reg >= REG_TMR && reg < REG_TMR + 0x80)
		return l->tmr[(reg - REG_TMR) >> 4];
	if (reg >= REG_IRR && reg < REG_IRR + 0x80)
		return l->irr[(reg - REG_IRR) >> 4];
	if (reg >= REG_LVT_TIMER && reg <= REG_LVT_ERROR)
		return l->lvt[(reg - REG_LVT_TIMER) >> 4];
	switch (reg) {
	case REG_ID:        return l->id;
	case REG_VERSION:   return LAPIC_VERSION;
	case REG_TPR:       return l->tpr;
	case REG_APR:       return 0;
	case REG_PPR:       return ppr(l);
	case REG_LDR:       return l->ldr;
	case REG_DFR:       return l->dfr;
	case REG_SVR:       return l->svr;
	case REG_ESR:       return l->esr;
	case REG_ICR_LO:    return l->icr_lo; /* delivery status: always idle */
	case REG_ICR_HI:    return l->icr_hi;
	case REG_TIMER_ICR: return l->timer_initial;
	case REG_TIMER_CCR: return timer_current_count(l);
	case REG_TIMER_DCR: return l->timer_dcr;
	case REG_EOI:
	case REG_RRD:
		return 0;
	}
	log_once(LOG_DEBUG, "lapic: read of reserved register 0x%x", reg);
	return 0;
}

uint64_t lapic_mmio_read(struct lapic *l, uint64_t offset, unsigned size)
{
	if (offset >= 0x1000 || size > 8)
		return 0;
	uint32_t reg = (uint32_t)offset & 0xFF0;
	unsigned shift = ((unsigned)offset & 0xF) * 8;
	if (shift >= 32)
		return 0; /* only the first dword of each 16-byte slot exists */
	pthread_mutex_lock(&l->lock);
	uint64_t v = read_register(l, reg) >> shift;
	pthread_mutex_unlock(&l->lock);
	if (size < 8)
		v &= (1ULL << (size * 8)) - 1;
	return v;
}

void lapic_mmio_write(struct lapic *l, uint64_t offset, unsigned size, uint64_t value)
{
	if (offset >= 0x1000 || (offset & 0xF) || size < 4) {
		log_once(LOG_WARN, "lapic: unaligned or short write at 0x%llx (size %u) ignored",
			 (unsigned long long)offset, size);
		return;
	}
	uint32_t reg = (uint32_t)offset, v = (uint32_t)value;
	bool wake = false, send = false;
	int level_eoi = -1;
	bool eoi = false;
	struct apic_irq ipi;

	pthread_mutex_lock(&l->lock);
	if (reg >= REG_LVT_TIMER && reg <= REG_LVT_ERROR) {
		unsigned i = (reg - REG_LVT_TIMER) >> 4;
		uint32_t nv = (v & lvt_writable[i]) | (l->lvt[i] & ~lvt_writable[i] & ~LVT_MASKED);
		if (!sw_enabled(l))
			nv |= LVT_MASKED;
		if (i == LVT_TIMER)
			write_lvt_timer(l, nv);
		else
			l->lvt[i] = nv;
		wake = i == LVT_LINT0; /* may open the virtual wire */
	} else {
		switch (reg) {
		case REG_ID:
			__atomic_store_n(&l->id, v & 0xFF000000u, __ATOMIC_RELAXED);
			break;
		case REG_TPR:
			wake = (v & 0xF0) < (l->tpr & 0xF0);
			l->tpr = v & 0xFF;
			break;
		case REG_EOI:
			level_eoi = do_eoi(l);
			eoi = true;
			break;
		case REG_LDR:
			__atomic_store_n(&l->ldr, v & 0xFF000000u, __ATOMIC_RELAXED);
			break;
		case REG_DFR:
			__atomic_store_n(&l->dfr, v | 0x0FFFFFFFu, __ATOMIC_RELAXED);
			break;
		case REG_SVR:
			wake = !sw_enabled(l) && (v & SVR_ENABLE);
			set_sw_enable(l, v);
			break;
		case REG_ESR:
			/* A write latches the errors since the last write. */
			l->esr = l->esr_pending;
			l->esr_pending = 0;
			break;
		case REG_ICR_HI:
			l->icr_hi = v & 0xFF000000u;
			break;
		case REG_ICR_LO:
			l->icr_lo = v & ICR_WRITABLE;
			send = icr_to_irq(l, &ipi);
			break;
		case REG_TIMER_ICR:
			timer_start_count(l, v);
			break;
		case REG_TIMER_DCR:
			l->timer_dcr = v & 0xB;
			break;
		default:
			/* Read-only or reserved: an illegal register address. */
			accept_error(l, ESR_ILLEGAL_REGISTER);
			wake = true;
			log_once(LOG_DEBUG, "lapic: write to read-only/reserved register 0x%x", reg);
			break;
		}
	}
	pthread_mutex_unlock(&l->lock);
	if (send)
		apic_deliver(l->m, &ipi);
	if (eoi)
		after_eoi(l, level_eoi);
	else if (wake)
		notify(l);
}

bool lapic_apic_base_enabled(struct lapic *l)
{
	pthread_mutex_lock(&l->lock);
	bool en = hw_enabled(l);
	pthread_mutex_unlock(&l->lock);
	return en;
}

uint64_t lapic_get_apic_base(struct lapic *l)
{
	pthread_mutex_lock(&l->lock);
	uint64_t base = l->apic_base & ~0xFFFULL;
	pthread_mutex_unlock(&l->lock);
	return base;
}

/* ---- MSRs ---- */

bool lapic_handles_msr(uint32_t msr)
{
	return msr == MSR_IA32_APIC_BASE || msr == MSR_IA32_TSC_DEADLINE;
}

int lapic_msr_read(struct lapic *l, uint32_t msr, uint64_t *value)
{
	pthread_mutex_lock(&l->lock);
	int r = 0;
	switch (msr) {
	case MSR_IA32_APIC_BASE:
		*value = l->apic_base;
		break;
	case MSR_IA32_TSC_DEADLINE:
		*value = timer_mode(l) == TIMER_TSC_DEADLINE ? l->tsc_deadline : 0;
		break;
	default:
		r = -1;
		break;
	}
	pthread_mutex_unlock(&l->lock);
	return r;
}

/* A TSC-deadline value of this vCPU's TSC, as a guest_tsc(m) value. */
static uint64_t deadline_to_guest_tsc(const struct lapic *l, uint64_t value)
{
	uint64_t t = value - (uint64_t)l->tsc_offset;
	if (l->tsc_offset > 0 && t > value)
		return 0;                /* before guest TSC 0: due now */
	if ((l->tsc_offset < 0 && t < value) || t == UINT64_MAX)
		return UINT64_MAX - 1;   /* beyond guest TSC 2^64: never */
	return t;
}

void lapic_set_tsc_offset(struct lapic *l, int64_t offset)
{
	pthread_mutex_lock(&l->lock);
	l->tsc_offset = offset;
	if (timer_mode(l) == TIMER_TSC_DEADLINE && l->tsc_deadline)
		set_next_deadline(l, deadline_to_guest_tsc(l, l->tsc_deadline));
	pthread_mutex_unlock(&l->lock);
}

/* Physical address bits the APIC base may use (bits 12..51). */
#define APIC_BASE_ADDR_MASK 0x000FFFFFFFFFF000ULL

int lapic_msr_write(struct lapic *l, uint32_t msr, uint64_t value)
{
	int r = 0;
	pthread_mutex_lock(&l->lock);
	switch (msr) {
	case MSR_IA32_APIC_BASE: {
		uint64_t allowed = APIC_BASE_ADDR_MASK | APIC_BASE_ENABLE | APIC_BASE_BSP;
		if (value & ~allowed) {
			r = -1; /* reserved bits, or x2APIC (not advertised) */
			break;
		}
		bool was = hw_enabled(l);
		/* The BSP flag is read-only. */
		l->apic_base = (value & ~APIC_BASE_BSP) | (l->apic_base & APIC_BASE_BSP);
		if (was && !hw_enabled(l))
			reset_registers(l); /* global disable: back to power-up state */
		break;
	}
	case MSR_IA32_TSC_DEADLINE:
		if (timer_mode(l) != TIMER_TSC_DEADLINE)
			break; /* ignored in the other timer modes */
		l->tsc_deadline = value;
		set_next_deadline(l, value ? deadline_to_guest_tsc(l, value) : UINT64_MAX);
		break;
	default:
		r = -1;
		break;
	}
	pthread_mutex_unlock(&l->lock);
	return r;
}
