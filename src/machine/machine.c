#include "machine/machine.h"
#include "lib/util.h"

#include <stdlib.h>

void machine_request_stop(struct machine *m, enum vm_run_state why, int exit_code)
{
	int expected = VM_RUNNING;
	if (__atomic_compare_exchange_n(&m->run_state, &expected, (int)why, false,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		m->exit_code = exit_code;
	} else if (expected == VM_STOP_RESET && why != VM_STOP_RESET) {
		/* A reset only restarts the VM if nothing more final came in:
		 * an error, a power-off or a stop asked by the user (signal,
		 * Ctrl-a x) wins, or a guest that triple-faults in a loop
		 * could never be stopped. */
		m->exit_code = exit_code;
		__atomic_store_n(&m->run_state, (int)why, __ATOMIC_RELEASE);
	}
	for (unsigned i = 0; i < m->ncpus; i++)
		if (m->accel && m->accel->vcpu_kick && m->vcpus[i].accel)
			m->accel->vcpu_kick(&m->vcpus[i]);
}

struct machine_hook {
	void (*fn)(void *opaque);
	void *opaque;
	struct machine_hook *next;
};

void machine_on_teardown(struct machine *m, void (*fn)(void *opaque), void *opaque)
{
	struct machine_hook *h = xmalloc(sizeof(*h));
	h->fn = fn;
	h->opaque = opaque;
	h->next = m->teardown_hooks; /* LIFO: last registered runs first */
	m->teardown_hooks = h;
}

void machine_run_teardown(struct machine *m)
{
	while (m->teardown_hooks) {
		struct machine_hook *h = m->teardown_hooks;
		m->teardown_hooks = h->next;
		h->fn(h->opaque);
		free(h);
	}
}
