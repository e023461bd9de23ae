/* CPUID policy for KVM guests: what KVM can virtualise
 * (KVM_GET_SUPPORTED_CPUID) shaped into one consistent machine: every vCPU
 * a core of one socket (no SMT), its APIC ID its index, the hypervisor
 * leaves announcing KVM with kvmclock, and the TSC rate stated so the guest
 * need not calibrate it. Pure: tested without /dev/kvm. */
#include "accel/kvm/kvm.h"
#include "lib/util.h"

#include <string.h>

#include <asm/kvm_para.h>

#define LEAF_HYPERVISOR_BASE  0x40000000u
#define LEAF_HYPERVISOR_FEAT  0x40000001u
#define LEAF_HYPERVISOR_TSC   0x40000010u /* EAX TSC kHz, EBX APIC bus kHz */

#define CPUID1_ECX_VMX          (1u << 5)
#define CPUID1_ECX_X2APIC       (1u << 21)
#define CPUID1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID1_ECX_OSXSAVE      (1u << 27)
#define CPUID1_ECX_HYPERVISOR   (1u << 31)
#define CPUID1_EDX_HTT          (1u << 28)
#define CPUID7_EDX_AMX_BF16     (1u << 22)
#define CPUID7_EDX_AMX_TILE     (1u << 24)
#define CPUID7_EDX_AMX_INT8     (1u << 25)
#define CPUID7_ECX_OSPKE        (1u << 4)
#define CPUID_80000001_ECX_SVM  (1u << 2)
#define TOPO_LEVEL_SMT          1u
#define TOPO_LEVEL_CORE         2u

/* The in-kernel LAPIC timer counts at 1 GHz (one tick per ns). */
#define KVM_APIC_BUS_KHZ        1000000u

/* Paravirtual features we offer: each needs only the kernel, not the VMM. */
#define KVM_PV_FEATURES                                                        \
	((1u << KVM_FEATURE_CLOCKSOURCE) | (1u << KVM_FEATURE_NOP_IO_DELAY) |  \
	 (1u << KVM_FEATURE_CLOCKSOURCE2) | (1u << KVM_FEATURE_ASYNC_PF) |     \
	 (1u << KVM_FEATURE_STEAL_TIME) | (1u << KVM_FEATURE_PV_EOI) |         \
	 (1u << KVM_FEATURE_PV_UNHALT) | (1u << KVM_FEATURE_PV_TLB_FLUSH) |    \
	 (1u << KVM_FEATURE_ASYNC_PF_VMEXIT) | (1u << KVM_FEATURE_PV_SEND_IPI) | \
	 (1u << KVM_FEATURE_PV_SCHED_YIELD) | (1u << KVM_FEATURE_ASYNC_PF_INT) | \
	 (1u << KVM_FEATURE_CLOCKSOURCE_STABLE_BIT))
/* What a guest can rely on even if the host does not list the leaf. */
#define KVM_PV_FEATURES_MINIMUM                                                \
	((1u << KVM_FEATURE_CLOCKSOURCE) | (1u << KVM_FEATURE_NOP_IO_DELAY) |  \
	 (1u << KVM_FEATURE_CLOCKSOURCE2) | (1u << KVM_FEATURE_CLOCKSOURCE_STABLE_BIT))

/* Bits needed to number n things (0 for n <= 1). */
static unsigned order_of(unsigned n)
{
	unsigned bits = 0;
	while ((1u << bits) < n)
		bits++;
	return bits;
}

static const struct kvm_cpuid_entry2 *find(const struct kvm_cpuid_entry2 *e, unsigned n,
					   uint32_t function, uint32_t index)
{
	for (unsigned i = 0; i < n; i++)
		if (e[i].function == function &&
		    (!(e[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e[i].index == index))
			return &e[i];
	return NULL;
}

static bool is_intel(const struct kvm_cpuid_entry2 *e, unsigned n)
{
	const struct kvm_cpuid_entry2 *l0 = find(e, n, 0, 0);
	/* "GenuineIntel": EBX "Genu", EDX "ineI", ECX "ntel". */
	return l0 && l0->ebx == 0x756e6547 && l0->edx == 0x49656e69 && l0->ecx == 0x6c65746e;
}

/* Extended topology (0xB and 0x1F): SMT level with one thread, core level
 * with ncpus cores, then the invalid level that ends the list. */
static void topology_leaf(struct kvm_cpuid_entry2 *e, const struct cpuid_policy_params *p)
{
	unsigned core_shift = order_of(p->ncpus);
	e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	e->edx = p->apic_id;
	switch (e->index) {
	case 0:
		e->eax = 0;
		e->ebx = 1;
		e->ecx = (TOPO_LEVEL_SMT << 8) | 0;
		break;
	case 1:
		e->eax = core_shift;
		e->ebx = p->ncpus;
		e->ecx = (TOPO_LEVEL_CORE << 8) | 1;
		break;
	default:
		e->eax = 0;
		e->ebx = 0;
		e->ecx = e->index & 0xff;
		break;
	}
}

int kvm_cpuid_policy(const struct kvm_cpuid_entry2 *sup, unsigned n,
		     const struct cpuid_policy_params *p, struct kvm_cpuid_entry2 *out,
		     unsigned max)
{
	unsigned count = 0;
	uint32_t pv_features = KVM_PV_FEATURES_MINIMUM;
	bool intel = is_intel(sup, n);
	const struct kvm_cpuid_entry2 *l0 = find(sup, n, 0, 0);
	uint32_t max_basic = l0 ? l0->eax : 0;
	unsigned ncpus = p->ncpus ? p->ncpus : 1;
	unsigned core_shift = order_of(ncpus);

#define EMIT(entry)                                     \
	do {                                            \
		if (count >= max)                       \
			return -1;                      \
		out[count++] = (entry);                 \
	} while (0)

	for (unsigned i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 e = sup[i];
		switch (e.function) {
		case 1:
			e.ebx = (e.ebx & 0x0000ffff) | ((p->apic_id & 0xff) << 24) |
				(MIN(ncpus, 255u) << 16);
			if (ncpus > 1)
				e.edx |= CPUID1_EDX_HTT;
			else
				e.edx &= ~CPUID1_EDX_HTT;
			/* OSXSAVE mirrors CR4 and is computed by KVM; nested
			 * virtualization is not offered. */
			e.ecx &= ~(CPUID1_ECX_OSXSAVE | CPUID1_ECX_VMX);
			e.ecx |= CPUID1_ECX_HYPERVISOR;
			if (p->tsc_deadline)
				e.ecx |= CPUID1_ECX_TSC_DEADLINE;
			break;
		case 4:
			/* Deterministic cache parameters (Intel): cores per
			 * package in [31:26]; threads sharing the cache in
			 * [25:14]: one for L1/L2 (per core), all for L3. */
			if ((e.eax & 0x1f) == 0)
				break; /* no more caches */
			e.eax &= 0x3fff;
			e.eax |= (MIN(ncpus, 64u) - 1) << 26;
			if (((e.eax >> 5) & 7) >= 3)
				e.eax |= (MIN(ncpus, 4096u) - 1) << 14;
			break;
		case 7:
			if (e.index == 0) {
				/* AMX needs the VMM to request XSAVE
				 * permission for tile data; not offered. */
				e.edx &= ~(CPUID7_EDX_AMX_BF16 | CPUID7_EDX_AMX_TILE |
					   CPUID7_EDX_AMX_INT8);
				e.ecx &= ~CPUID7_ECX_OSPKE; /* mirrors CR4, set by KVM */
			}
			break;
		case 0xb:
		case 0x1f:
			topology_leaf(&e, p);
			break;
		case 0x15:
		case 0x16:
			/* Written below from tsc_khz (or dropped). */
			continue;
		case 0x80000001:
			e.ecx &= ~CPUID_80000001_ECX_SVM;
			break;
		case 0x80000008:
			/* AMD: ApicIdSize [15:12], number of cores - 1 [7:0]. */
			e.ecx = (e.ecx & ~0xf0ffu) | (core_shift << 12) | ((ncpus - 1) & 0xff);
			break;
		case 0x8000001e:
			/* AMD extended APIC ID; one thread per core. */
			e.eax = p->apic_id;
			e.ebx = p->apic_id & 0xff;
			e.ecx = 0;
			break;
		default:
			if (e.function == LEAF_HYPERVISOR_FEAT) {
				pv_features |= e.eax & KVM_PV_FEATURES;
				continue;
			}
			if (e.function >= LEAF_HYPERVISOR_BASE && e.function < 0x50000000u)
				continue; /* replaced below */
			break;
		}
		EMIT(e);
	}

	/* TSC rate for guests that read it from CPUID (Intel leaves exist only
	 * within the host's basic range). TSC = ECX * EBX / EAX with a 25 MHz
	 * crystal: EBX/EAX = tsc_khz / 25000 keeps it exact. */
	if (p->tsc_khz && intel && max_basic >= 0x15) {
		EMIT(((struct kvm_cpuid_entry2){ .function = 0x15, .eax = 25000,
						 .ebx = p->tsc_khz, .ecx = 25000000 }));
		if (max_basic >= 0x16)
			EMIT(((struct kvm_cpuid_entry2){ .function = 0x16,
							 .eax = p->tsc_khz / 1000,
							 .ebx = p->tsc_khz / 1000 }));
	}

	/* Hypervisor leaves: "KVMKVMKVM\0\0\0", the kvmclock features, and the
	 * TSC / APIC bus rates. */
	EMIT(((struct kvm_cpuid_entry2){ .function = LEAF_HYPERVISOR_BASE,
					 .eax = p->tsc_khz ? LEAF_HYPERVISOR_TSC : LEAF_HYPERVISOR_FEAT,
					 .ebx = 0x4b4d564b, .ecx = 0x564b4d56, .edx = 0x4d }));
	EMIT(((struct kvm_cpuid_entry2){ .function = LEAF_HYPERVISOR_FEAT, .eax = pv_features }));
	if (p->tsc_khz)
		EMIT(((struct kvm_cpuid_entry2){ .function = LEAF_HYPERVISOR_TSC,
						 .eax = p->tsc_khz, .ebx = KVM_APIC_BUS_KHZ }));
#undef EMIT
	return (int)count;
}
