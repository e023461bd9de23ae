/* The KVM engine (kvm_accel_ops in accel/accel.h) and what `xvm ok` and
 * engine selection ask of it. The pure pieces (CPUID policy, state
 * conversion) are exposed so they can be tested without /dev/kvm. */
#ifndef XVM_ACCEL_KVM_KVM_H
#define XVM_ACCEL_KVM_KVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "machine/x86.h"

#define KVM_DEVICE_PATH "/dev/kvm"
#define KVM_REQUIRED_API 12

/* Opens /dev/kvm and checks the API version and every capability the
 * engine needs. Returns the open fd, or -1 with why[] saying exactly what
 * is missing ("/dev/kvm: No such file or directory"). */
int kvm_open_checked(char *why, size_t len);

/* What `xvm ok` reports about this host's KVM. */
struct kvm_host_info {
	bool usable;
	char why[256];          /* when !usable */
	int api_version;        /* -1 if /dev/kvm could not be opened */
	int max_vcpus;
	int nr_memslots;
	bool tsc_control;       /* KVM_SET_TSC_KHZ scales the guest TSC */
	bool x2apic_api;
	bool immediate_exit;
	bool irqfd, ioeventfd, signal_msi;
};
void kvm_host_info(struct kvm_host_info *info);

/* Runs a tight loop at CPL0 and at CPL3 in a tiny throw-away VM, each for
 * at least budget_ns, and reports both rates in guest instructions per
 * second. Returns 0, or -1 with why[] set. */
struct kvm_cpl_rates {
	double cpl0_ips, cpl3_ips;
};
int kvm_measure_cpl(uint64_t budget_ns, struct kvm_cpl_rates *out, char *why, size_t len);
/* True when supervisor code runs about as fast as user code (hardware
 * virtualization); false when it is emulated (software KVM such as PVM). */
bool kvm_cpl0_is_native(const struct kvm_cpl_rates *r);

/* CPUID policy: from the host's KVM_GET_SUPPORTED_CPUID entries, the
 * entries one vCPU gets (topology, APIC ID, hypervisor leaves with
 * kvmclock, TSC frequency). Returns the number written to out (at most
 * max), or -1 if max is too small. */
struct cpuid_policy_params {
	unsigned apic_id;       /* = vCPU index */
	unsigned ncpus;
	uint32_t tsc_khz;       /* guest TSC rate; 0 = unknown (no freq leaves) */
	bool tsc_deadline;      /* in-kernel LAPIC supports TSC-deadline mode */
};
int kvm_cpuid_policy(const struct kvm_cpuid_entry2 *supported, unsigned n,
		     const struct cpuid_policy_params *p, struct kvm_cpuid_entry2 *out,
		     unsigned max);

/* struct x86_cpu_state <-> KVM registers. to_kvm keeps sregs fields the
 * state does not describe (interrupt bitmap) and apic_base when s has 0. */
void kvm_state_from_kvm(const struct kvm_regs *regs, const struct kvm_sregs *sregs,
			struct x86_cpu_state *s);
void kvm_state_to_kvm(const struct x86_cpu_state *s, struct kvm_regs *regs,
		      struct kvm_sregs *sregs);

/* Handles one KVM_RUN exit of vCPU v (run is its kvm_run, run_size the
 * size of that mapping): port and MMIO accesses go to m->pio / m->mmio,
 * power events to machine_request_stop. Returns 0 to run on, -1 on a
 * fatal error (reported, with a register dump when the vCPU has one). */
struct vcpu;
int kvm_handle_exit(struct vcpu *v, size_t run_size, struct kvm_run *run);

#endif
