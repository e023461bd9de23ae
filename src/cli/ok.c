/* xvm ok: can this host run VMs, and how well? Like kvm-ok, but it also
 * measures whether KVM runs guest supervisor code natively (see
 * accel/kvm/measure.c) and says which engine `--accel auto` picks. */
#include "accel/accel.h"
#include "accel/kvm/kvm.h"
#include "cli/cli.h"
#include "lib/log.h"

#include <stdio.h>
#include <string.h>

/* Per loop: long enough for stable numbers, short enough to feel instant. */
#define OK_MEASURE_NS (50 * 1000 * 1000ULL)

static void ok_usage(void)
{
	printf("usage: xvm ok\n\n"
	       "Says whether /dev/kvm is usable (and why not), its API version and key\n"
	       "capabilities; measures a short loop at CPL0 and at CPL3 in a tiny VM to tell\n"
	       "whether KVM runs guest supervisor code natively; says whether the software\n"
	       "CPU is available and which engine '--accel auto' picks.\n\n"
	       "Exit status: 0 if some engine can run guests here, 1 otherwise.\n");
}

static const char *yes_no(bool b)
{
	return b ? "yes" : "no";
}

int cmd_ok(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			ok_usage();
			return 0;
		}
		log_err("xvm ok: unexpected argument '%s' (see 'xvm ok --help')", argv[i]);
		return 2;
	}

	struct kvm_host_info info;
	kvm_host_info(&info);
	bool kvm_native = false;
	if (info.api_version < 0) {
		printf("KVM: not usable: %s\n", info.why);
	} else {
		printf("KVM: %s, API version %d%s%s\n", KVM_DEVICE_PATH, info.api_version,
		       info.usable ? "" : "; not usable: ", info.usable ? "" : info.why);
		printf("  max vCPUs %d, memory slots %d, TSC scaling %s, irqfd %s, ioeventfd %s, "
		       "MSI %s, immediate exit %s, x2APIC API %s\n",
		       info.max_vcpus, info.nr_memslots, yes_no(info.tsc_control), yes_no(info.irqfd),
		       yes_no(info.ioeventfd), yes_no(info.signal_msi), yes_no(info.immediate_exit),
		       yes_no(info.x2apic_api));
	}
	if (info.usable) {
		struct kvm_cpl_rates rates;
		char why[256];
		if (kvm_measure_cpl(OK_MEASURE_NS, &rates, why, sizeof(why)) < 0) {
			printf("  measurement failed: %s\n", why);
		} else {
			kvm_native = kvm_cpl0_is_native(&rates);
			printf("  CPL0 loop: %.3g instructions/s\n", rates.cpl0_ips);
			printf("  CPL3 loop: %.3g instructions/s (CPL0/CPL3 = %.2f)\n", rates.cpl3_ips,
			       rates.cpl3_ips > 0 ? rates.cpl0_ips / rates.cpl3_ips : 0.0);
			printf("  guest supervisor code %s\n",
			       kvm_native ? "runs natively"
					  : "is emulated (software KVM such as PVM)");
		}
	}

	char emu_why[256] = "";
	bool emu_ok = emu_accel_ops.probe(emu_why, sizeof(emu_why));
	if (emu_ok)
		printf("software CPU: available\n");
	else
		printf("software CPU: not available: %s\n", emu_why);

	const char *pick;
	if (info.usable && kvm_native)
		pick = "kvm (hardware virtualization)";
	else if (emu_ok)
		pick = "emu (the software CPU)";
	else if (info.usable)
		pick = "kvm (slow: supervisor code is emulated)";
	else
		pick = NULL;
	if (pick) {
		printf("--accel auto: %s\n", pick);
		return 0;
	}
	printf("no engine can run guests on this host\n");
	return 1;
}
