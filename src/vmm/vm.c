/* VM lifecycle: build the machine, run vCPU threads and the event loop,
 * stop, tear down; rebuild on guest reset. See vm.h. */
#include "vmm/vm.h"
#include "accel/accel.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/util.h"
#include "machine/machine.h"
#include "machine/boot.h"
#include "machine/pc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* The machine plus what only the lifecycle code needs. */
struct vm {
	struct machine m;
	bool accel_ready;             /* vm_init succeeded: vm_destroy owed */
	bool vcpu_ready[MAX_VCPUS];   /* vcpu_init succeeded */
	bool vcpu_started[MAX_VCPUS]; /* thread created, not yet joined */
	pthread_t loop_thread;
	bool loop_started;
};

static struct vm *vm_of(struct machine *m)
{
	return (struct vm *)((char *)m - offsetof(struct vm, m));
}

static void *loop_thread_main(void *opaque)
{
	struct machine *m = opaque;
	pthread_setname_np(pthread_self(), "xvm-loop");
	loop_run(m->loop);
	return NULL;
}

static void *vcpu_thread_main(void *opaque)
{
	struct vcpu *v = opaque;
	struct machine *m = v->m;
	char name[16];
	snprintf(name, sizeof(name), "vcpu%u", v->index);
	pthread_setname_np(pthread_self(), name);
	int r = m->accel->vcpu_run(v);
	if (r < 0) {
		/* The engine has printed why (and a register dump). */
		machine_request_stop(m, VM_STOP_ERROR, 1);
	} else if (!machine_should_stop(m)) {
		log_err("vcpu%u: the %s engine stopped without a reason", v->index, m->accel->name);
		machine_request_stop(m, VM_STOP_ERROR, 1);
	}
	return NULL;
}

struct machine *vm_create(struct vm_config *cfg, const struct accel_ops *accel,
			  unsigned generation, char *err, size_t errlen)
{
	struct vm *vm = xcalloc(1, sizeof(*vm));
	struct machine *m = &vm->m;
	m->cfg = cfg;
	m->accel = accel;
	m->generation = generation;
	if (cfg->cpus < 1 || cfg->cpus > MAX_VCPUS) {
		snprintf(err, errlen, "%u vCPUs requested; between 1 and %d are supported",
			 cfg->cpus, MAX_VCPUS);
		goto fail;
	}
	m->ncpus = cfg->cpus;
	int r = guest_ram_init(&m->ram, cfg->mem_size);
	if (r < 0) {
		char size[32];
		format_size(cfg->mem_size, size, sizeof(size));
		snprintf(err, errlen, "cannot allocate %s of guest memory: %s", size, strerror(-r));
		goto fail;
	}
	m->pio = io_space_new("pio");
	m->mmio = io_space_new("mmio");
	m->loop = loop_new();
	for (unsigned i = 0; i < m->ncpus; i++) {
		m->vcpus[i].m = m;
		m->vcpus[i].index = i;
	}

	if (accel->vm_init(m) < 0) {
		snprintf(err, errlen, "the %s engine could not create the VM", accel->name);
		goto fail;
	}
	vm->accel_ready = true;

	if (pc_create_devices(m) < 0) {
		snprintf(err, errlen, "cannot create the machine's devices");
		goto fail;
	}

	if (boot_load(m, err, errlen) < 0)
		goto fail;

	for (unsigned i = 0; i < m->ncpus; i++) {
		if (accel->vcpu_init(&m->vcpus[i]) < 0) {
			snprintf(err, errlen, "the %s engine could not create vCPU %u", accel->name, i);
			goto fail;
		}
		vm->vcpu_ready[i] = true;
	}
	/* Secondary vCPUs wait for INIT/SIPI from the BSP (each engine puts
	 * them in that state in vcpu_init); only the BSP gets the loader's
	 * entry state. */
	if (accel->set_state(&m->vcpus[0], &m->boot_state) < 0) {
		snprintf(err, errlen, "the %s engine rejected the boot CPU state", accel->name);
		goto fail;
	}
	return m;

fail:
	vm_destroy(m);
	return NULL;
}

int vm_start(struct machine *m, char *err, size_t errlen)
{
	struct vm *vm = vm_of(m);
	int r = pthread_create(&vm->loop_thread, NULL, loop_thread_main, m);
	if (r) {
		snprintf(err, errlen, "cannot start the event loop thread: %s", strerror(r));
		return -1;
	}
	vm->loop_started = true;
	for (unsigned i = 0; i < m->ncpus; i++) {
		r = pthread_create(&m->vcpus[i].thread, NULL, vcpu_thread_main, &m->vcpus[i]);
		if (r) {
			snprintf(err, errlen, "cannot start the thread of vCPU %u: %s", i, strerror(r));
			machine_request_stop(m, VM_STOP_ERROR, 1);
			return -1;
		}
		vm->vcpu_started[i] = true;
	}
	return 0;
}

void vm_wait(struct machine *m)
{
	struct vm *vm = vm_of(m);
	for (unsigned i = 0; i < m->ncpus; i++) {
		if (!vm->vcpu_started[i])
			continue;
		pthread_join(m->vcpus[i].thread, NULL);
		vm->vcpu_started[i] = false;
	}
}

void vm_destroy(struct machine *m)
{
	if (!m)
		return;
	struct vm *vm = vm_of(m);
	/* vCPUs first: nothing may touch devices or RAM after this. */
	if (!machine_should_stop(m))
		machine_request_stop(m, VM_STOP_POWEROFF, 0);
	vm_wait(m);
	/* Devices free themselves while the loop still runs, so their
	 * loop_del_fd/loop_timer_free calls synchronise with it. */
	machine_run_teardown(m);
	if (vm->loop_started) {
		loop_stop(m->loop);
		pthread_join(vm->loop_thread, NULL);
		vm->loop_started = false;
	}
	for (unsigned i = 0; i < m->ncpus; i++) {
		if (vm->vcpu_ready[i] && m->accel->vcpu_destroy)
			m->accel->vcpu_destroy(&m->vcpus[i]);
		vm->vcpu_ready[i] = false;
	}
	if (vm->accel_ready && m->accel->vm_destroy)
		m->accel->vm_destroy(m);
	vm->accel_ready = false;
	if (m->loop)
		loop_free(m->loop);
	if (m->mmio)
		io_space_free(m->mmio);
	if (m->pio)
		io_space_free(m->pio);
	guest_ram_free(&m->ram);
	free(vm);
}

/* SIGINT/SIGTERM/SIGHUP arrive on a signalfd watched by the event loop (they
 * are blocked in every thread), so the VM stops through the same path as a
 * guest power-off: vCPUs kicked and joined, devices torn down, terminal
 * restored. */
struct signal_watch {
	int fd;
	struct machine *m;
	int signo; /* last stop signal read (atomic); survives a reset */
};

static void signal_ready(void *opaque, uint32_t events)
{
	struct signal_watch *w = opaque;
	struct signalfd_siginfo si;
	while (read(w->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		log_info("%s: stopping the VM", strsignal((int)si.ssi_signo));
		__atomic_store_n(&w->signo, (int)si.ssi_signo, __ATOMIC_RELEASE);
		machine_request_stop(w->m, VM_STOP_EXIT, 128 + (int)si.ssi_signo);
	}
}

static int stop_status(struct machine *m)
{
	switch (__atomic_load_n(&m->run_state, __ATOMIC_ACQUIRE)) {
	case VM_STOP_POWEROFF:
		return 0;
	case VM_STOP_EXIT:
		return m->exit_code;
	case VM_STOP_ERROR:
		return m->exit_code ? m->exit_code : 1;
	default:
		return 1;
	}
}

int vm_run(struct vm_config *cfg)
{
	const struct accel_ops *accel = accel_select(cfg->accel);
	if (!accel)
		return 1; /* accel_select said why */
	return vm_run_engine(cfg, accel);
}

int vm_run_engine(struct vm_config *cfg, const struct accel_ops *accel)
{
	sigset_t stop_signals, old_mask;
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGHUP);
	/* Threads inherit the mask: block before any thread exists. */
	pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
	/* A console reader that went away must not kill the VM. */
	signal(SIGPIPE, SIG_IGN);
	struct signal_watch sw = { .fd = signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC) };
	if (sw.fd < 0) {
		log_err("signalfd: %s", strerror(errno));
		pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
		return 1;
	}

	int status = 1;
	for (unsigned generation = 0;; generation++) {
		char err[512] = "";
		struct machine *m = vm_create(cfg, accel, generation, err, sizeof(err));
		if (!m) {
			log_err("%s", err[0] ? err : "cannot create the VM");
			status = 1;
			break;
		}
		sw.m = m;
		if (loop_add_fd(m->loop, sw.fd, EPOLLIN, signal_ready, &sw) < 0)
			log_warn("cannot watch for SIGINT/SIGTERM; they will not stop the VM cleanly");
		if (vm_start(m, err, sizeof(err)) < 0)
			log_err("%s", err);
		vm_wait(m);
		bool reset = __atomic_load_n(&m->run_state, __ATOMIC_ACQUIRE) == VM_STOP_RESET;
		status = reset ? 0 : stop_status(m);
		loop_del_fd(m->loop, sw.fd);
		vm_destroy(m);
		/* A signal read after the guest asked for a reset (between
		 * vm_wait and loop_del_fd) found a machine already stopping:
		 * it still ends the run rather than being lost in a restart. */
		int signo = __atomic_load_n(&sw.signo, __ATOMIC_ACQUIRE);
		if (signo) {
			status = 128 + signo;
			break;
		}
		if (!reset)
			break;
		if (cfg->no_reboot) {
			log_info("guest reset; exiting (--no-reboot)");
			break;
		}
		log_info("guest reset; restarting the VM");
	}
	close(sw.fd);
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	return status;
}
