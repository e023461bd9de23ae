#include "machine/machine.h"

void machine_request_stop(struct machine *m, enum vm_run_state why, int exit_code)
{
	int expected = VM_RUNNING;
	if (__atomic_compare_exchange_n(&m->run_state, &expected, (int)why, false,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		m->exit_code = exit_code;
	} else if (why == VM_STOP_ERROR && expected == VM_STOP_RESET) {
		m->exit_code = exit_code;
		__atomic_store_n(&m->run_state, (int)why, __ATOMIC_RELEASE);
	}
	for (unsigned i = 0; i < m->ncpus; i++)
		if (m->accel && m->accel->vcpu_kick && m->vcpus[i].accel)
			m->accel->vcpu_kick(&m->vcpus[i]);
}
