/* A running VM: config -> machine -> vCPU threads + event loop -> exit.
 *
 * The machine is built from the config (RAM, address spaces, event loop,
 * engine, devices, boot loader, vCPUs), runs until something calls
 * machine_request_stop(), and is torn down. A guest reset rebuilds it from
 * the same config (the simplest way to give the guest a machine exactly as
 * at power-on on every engine), unless cfg->no_reboot. */
#ifndef XVM_VMM_VM_H
#define XVM_VMM_VM_H

#include <stddef.h>

struct vm_config;
struct accel_ops;
struct machine;

/* Runs the VM until it powers off, exits or fails; returns the process
 * exit status: 0 on power-off (or reset with no_reboot), the debug-exit or
 * quit status on VM_STOP_EXIT, 128+N when stopped by signal N, non-zero on
 * an error (already reported on stderr). */
int vm_run(struct vm_config *cfg);
/* The same with the engine already chosen. */
int vm_run_engine(struct vm_config *cfg, const struct accel_ops *accel);

/* The pieces vm_run uses (also for tests and the control API): builds a
 * machine ready to start (vCPUs initialised, not running) or returns NULL
 * with err[] set to a one-line reason. */
struct machine *vm_create(struct vm_config *cfg, const struct accel_ops *accel,
			  unsigned generation, char *err, size_t errlen);
/* Starts the event loop and vCPU threads. Returns 0 or -1 with err[]. */
int vm_start(struct machine *m, char *err, size_t errlen);
/* Waits until every vCPU thread has returned (after a stop request). */
void vm_wait(struct machine *m);
/* Stops what still runs and frees everything vm_create made. */
void vm_destroy(struct machine *m);

#endif
