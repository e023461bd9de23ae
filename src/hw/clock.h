/* Guest time for the emulated platform: the guest TSC (shared by all vCPUs,
 * monotonic, near 0 at machine creation) and host timers that fire device
 * callbacks on a dedicated thread, so timer interrupts arrive even while
 * every vCPU is halted and without an event loop (unit tests). */
#ifndef XVM_HW_CLOCK_H
#define XVM_HW_CLOCK_H

#include <stdint.h>

struct machine;

/* Sets m->tsc_epoch_ns to now unless already set (platform_init calls it). */
void clock_machine_init(struct machine *m);
/* Guest TSC at GUEST_TSC_KHZ (layout.h), from CLOCK_MONOTONIC since
 * m->tsc_epoch_ns. */
uint64_t guest_tsc(struct machine *m);
uint64_t guest_tsc_to_ns(uint64_t tsc_delta);  /* rounds up */
uint64_t ns_to_guest_tsc(uint64_t ns);         /* rounds down */
/* Host monotonic time (ns) at which the guest TSC reaches tsc. */
uint64_t guest_tsc_deadline_ns(struct machine *m, uint64_t tsc);

/* A one-shot host timer. The callback runs on the timer thread with no
 * platform lock held; it may re-arm its own timer. */
struct hw_timer;
typedef void (*hw_timer_fn)(void *opaque);

struct hw_timer *hw_timer_new(hw_timer_fn fn, void *opaque);
/* Fires fn once at host CLOCK_MONOTONIC time deadline_ns (now or in the
 * past: as soon as possible). Replaces any earlier arming. */
void hw_timer_arm(struct hw_timer *t, uint64_t deadline_ns);
void hw_timer_disarm(struct hw_timer *t);
/* After it returns the callback is not running and will not run again.
 * Must not be called from the callback itself or with a lock the callback
 * takes. */
void hw_timer_free(struct hw_timer *t);

#endif
