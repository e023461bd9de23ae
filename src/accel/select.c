/* Engine selection. "kvm" and "emu" are taken as asked (or refused with
 * the reason); "auto" picks KVM only where it runs guest supervisor code
 * natively, measured in a few milliseconds (accel/kvm/measure.c), and the
 * software CPU otherwise: a software-only KVM (PVM and similar) runs a
 * guest kernel slower than our emulator does. */
#include "accel/accel.h"
#include "accel/kvm/kvm.h"
#include "lib/log.h"

#include <stdio.h>
#include <string.h>

/* Per loop; long enough to dwarf the cost of one KVM_RUN round trip. */
#define AUTO_MEASURE_NS (2 * 1000 * 1000ULL)

static const struct accel_ops *select_auto(void)
{
	char kvm_why[256] = "", emu_why[256] = "";
	bool kvm_ok = kvm_accel_ops.probe(kvm_why, sizeof(kvm_why));
	bool emu_ok = emu_accel_ops.probe(emu_why, sizeof(emu_why));

	if (!kvm_ok) {
		if (emu_ok) {
			log_info("accel auto: KVM not usable (%s); using the software CPU", kvm_why);
			return &emu_accel_ops;
		}
		log_err("no usable engine: KVM: %s; software CPU: %s", kvm_why, emu_why);
		return NULL;
	}
	struct kvm_cpl_rates rates;
	char why[256];
	if (kvm_measure_cpl(AUTO_MEASURE_NS, &rates, why, sizeof(why)) < 0) {
		log_warn("cannot measure KVM (%s); using it anyway", why);
		return &kvm_accel_ops;
	}
	bool native = kvm_cpl0_is_native(&rates);
	log_info("accel auto: KVM runs CPL0 code at %.3g and CPL3 code at %.3g instructions/s (%s)",
		 rates.cpl0_ips, rates.cpl3_ips, native ? "native" : "emulated");
	if (native) {
		log_info("accel auto: using KVM");
		return &kvm_accel_ops;
	}
	if (emu_ok) {
		log_info("accel auto: guest supervisor code is emulated by this KVM; using the software CPU");
		return &emu_accel_ops;
	}
	log_warn("this KVM emulates guest supervisor code (slow) and the software CPU is not "
		 "available (%s); using KVM", emu_why);
	return &kvm_accel_ops;
}

const struct accel_ops *accel_select(const char *name)
{
	if (!strcmp(name, "auto"))
		return select_auto();
	const struct accel_ops *ops = !strcmp(name, "kvm") ? &kvm_accel_ops
				    : !strcmp(name, "emu") ? &emu_accel_ops : NULL;
	if (!ops) {
		log_err("unknown engine '%s' (use auto, kvm or emu)", name);
		return NULL;
	}
	char why[256] = "";
	if (!ops->probe(why, sizeof(why))) {
		log_err("--accel %s: %s", name, why);
		return NULL;
	}
	log_info("accel: using %s", ops->name);
	return ops;
}
