/* Unit tests for the parts of the KVM engine that need no /dev/kvm: the
 * CPUID policy and the register-state conversion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include <asm/kvm_para.h>

#include "accel/kvm/kvm.h"
#include "hw/io.h"
#include "lib/util.h"
#include "machine/machine.h"

#include <stdlib.h>

#define SIG_INDEX KVM_CPUID_FLAG_SIGNIFCANT_INDEX

/* A plausible KVM_GET_SUPPORTED_CPUID answer from an Intel host. */
static const struct kvm_cpuid_entry2 intel_host[] = {
	{ .function = 0, .eax = 0x1f, .ebx = 0x756e6547, .edx = 0x49656e69, .ecx = 0x6c65746e },
	{ .function = 1, .eax = 0x906ea, .ebx = 0x00100800,
	  .ecx = 0xf7fa3223 | (1u << 5) | (1u << 27), .edx = 0x178bfbff },
	{ .function = 4, .index = 0, .flags = SIG_INDEX, .eax = 0x1c004121 },  /* L1d */
	{ .function = 4, .index = 1, .flags = SIG_INDEX, .eax = 0x1c004122 },  /* L1i */
	{ .function = 4, .index = 2, .flags = SIG_INDEX, .eax = 0x1c004143 },  /* L2 */
	{ .function = 4, .index = 3, .flags = SIG_INDEX, .eax = 0x1c03c163 },  /* L3 */
	{ .function = 4, .index = 4, .flags = SIG_INDEX, .eax = 0 },
	{ .function = 7, .index = 0, .flags = SIG_INDEX, .ebx = 0x029c6fbf,
	  .ecx = 0x40000010, .edx = (1u << 24) | (1u << 22) | (1u << 10) },
	{ .function = 0xb, .index = 0, .flags = SIG_INDEX, .eax = 1, .ebx = 2, .ecx = 0x100 },
	{ .function = 0xb, .index = 1, .flags = SIG_INDEX, .eax = 4, .ebx = 8, .ecx = 0x201 },
	{ .function = 0x15, .eax = 2, .ebx = 200, .ecx = 0 },
	{ .function = KVM_CPUID_SIGNATURE, .eax = KVM_CPUID_FEATURES, .ebx = 0x4b4d564b,
	  .ecx = 0x564b4d56, .edx = 0x4d },
	{ .function = KVM_CPUID_FEATURES,
	  .eax = (1u << KVM_FEATURE_CLOCKSOURCE) | (1u << KVM_FEATURE_CLOCKSOURCE2) |
		 (1u << KVM_FEATURE_PV_UNHALT) | (1u << KVM_FEATURE_MSI_EXT_DEST_ID) |
		 (1u << KVM_FEATURE_CLOCKSOURCE_STABLE_BIT) },
	{ .function = 0x80000000, .eax = 0x80000008 },
	{ .function = 0x80000001, .ecx = 0x121 | (1u << 2), .edx = 0x2c100800 },
	{ .function = 0x80000008, .eax = 0x3027, .ecx = 0 },
};

/* An AMD host without hypervisor leaves or leaf 0x15. */
static const struct kvm_cpuid_entry2 amd_host[] = {
	{ .function = 0, .eax = 0x10, .ebx = 0x68747541, .edx = 0x69746e65, .ecx = 0x444d4163 },
	{ .function = 1, .eax = 0x830f10, .ebx = 0, .ecx = 0xf6d83203, .edx = 0x178bfbff },
	{ .function = 0x80000001, .ecx = 0x75c237ff, .edx = 0x2fd3fbff },
	{ .function = 0x80000008, .eax = 0x3030, .ecx = 0x400f },
	{ .function = 0x8000001e, .eax = 7, .ebx = 0x103, .ecx = 0x300 },
};

static const struct kvm_cpuid_entry2 *find(const struct kvm_cpuid_entry2 *e, int n,
					   uint32_t fn, uint32_t index)
{
	const struct kvm_cpuid_entry2 *hit = NULL;
	for (int i = 0; i < n; i++)
		if (e[i].function == fn && e[i].index == index) {
			assert_null(hit); /* never two entries for one leaf */
			hit = &e[i];
		}
	return hit;
}

static int policy(const struct kvm_cpuid_entry2 *host, unsigned n, unsigned apic_id,
		  unsigned ncpus, uint32_t tsc_khz, struct kvm_cpuid_entry2 *out, unsigned max)
{
	struct cpuid_policy_params p = { .apic_id = apic_id, .ncpus = ncpus, .tsc_khz = tsc_khz,
					 .tsc_deadline = true };
	return kvm_cpuid_policy(host, n, &p, out, max);
}

static void test_leaf1_and_topology(void **state)
{
	struct kvm_cpuid_entry2 out[64];
	int n = policy(intel_host, ARRAY_SIZE(intel_host), 5, 6, 2000000, out, 64);
	assert_true(n > 0);

	const struct kvm_cpuid_entry2 *l1 = find(out, n, 1, 0);
	assert_non_null(l1);
	assert_int_equal(l1->ebx >> 24, 5);               /* initial APIC ID */
	assert_int_equal((l1->ebx >> 16) & 0xff, 6);      /* logical processors */
	assert_int_equal(l1->ebx & 0xffff, 0x0800);       /* CLFLUSH size kept */
	assert_true(l1->edx & (1u << 28));                /* HTT: more than one */
	assert_true(l1->ecx & (1u << 31));                /* hypervisor present */
	assert_true(l1->ecx & (1u << 24));                /* TSC deadline */
	assert_false(l1->ecx & (1u << 5));                /* no nested VMX */
	assert_false(l1->ecx & (1u << 27));               /* OSXSAVE is KVM's */

	/* 0xB: SMT level of 1 thread, core level of 6 cores, 3 bits of ID. */
	const struct kvm_cpuid_entry2 *smt = find(out, n, 0xb, 0);
	const struct kvm_cpuid_entry2 *core = find(out, n, 0xb, 1);
	assert_non_null(smt);
	assert_non_null(core);
	assert_int_equal(smt->eax, 0);
	assert_int_equal(smt->ebx, 1);
	assert_int_equal(smt->ecx, 0x100);
	assert_int_equal(smt->edx, 5);
	assert_int_equal(core->eax, 3);
	assert_int_equal(core->ebx, 6);
	assert_int_equal(core->ecx, 0x201);
	assert_int_equal(core->edx, 5);

	/* Leaf 4: 6 cores per package; L1/L2 private, L3 shared by all. */
	assert_int_equal(find(out, n, 4, 0)->eax >> 26, 5);
	assert_int_equal((find(out, n, 4, 0)->eax >> 14) & 0xfff, 0);
	assert_int_equal((find(out, n, 4, 2)->eax >> 14) & 0xfff, 0);
	assert_int_equal((find(out, n, 4, 3)->eax >> 14) & 0xfff, 5);
	assert_int_equal(find(out, n, 4, 3)->eax & 0x3fff, 0x0163); /* type/level kept */

	/* Leaf 7: AMX dropped, the rest kept. */
	const struct kvm_cpuid_entry2 *l7 = find(out, n, 7, 0);
	assert_int_equal(l7->edx, 1u << 10);
	assert_int_equal(l7->ebx, 0x029c6fbf);
	/* No nested SVM either. */
	assert_false(find(out, n, 0x80000001, 0)->ecx & (1u << 2));
}

static void test_single_cpu(void **state)
{
	struct kvm_cpuid_entry2 out[64];
	int n = policy(intel_host, ARRAY_SIZE(intel_host), 0, 1, 0, out, 64);
	assert_true(n > 0);
	const struct kvm_cpuid_entry2 *l1 = find(out, n, 1, 0);
	assert_int_equal(l1->ebx >> 24, 0);
	assert_false(l1->edx & (1u << 28));
	assert_int_equal(find(out, n, 0xb, 1)->eax, 0);
	assert_int_equal(find(out, n, 0xb, 1)->ebx, 1);
}

static void test_hypervisor_leaves(void **state)
{
	struct kvm_cpuid_entry2 out[64];
	int n = policy(intel_host, ARRAY_SIZE(intel_host), 0, 2, 2000000, out, 64);
	const struct kvm_cpuid_entry2 *sig = find(out, n, KVM_CPUID_SIGNATURE, 0);
	assert_non_null(sig);
	char name[13] = { 0 };
	memcpy(name, &sig->ebx, 4);
	memcpy(name + 4, &sig->ecx, 4);
	memcpy(name + 8, &sig->edx, 4);
	assert_string_equal(name, "KVMKVMKVM");
	assert_int_equal(sig->eax, 0x40000010);

	const struct kvm_cpuid_entry2 *feat = find(out, n, KVM_CPUID_FEATURES, 0);
	assert_non_null(feat);
	assert_true(feat->eax & (1u << KVM_FEATURE_CLOCKSOURCE));
	assert_true(feat->eax & (1u << KVM_FEATURE_CLOCKSOURCE2));
	assert_true(feat->eax & (1u << KVM_FEATURE_CLOCKSOURCE_STABLE_BIT));
	assert_true(feat->eax & (1u << KVM_FEATURE_PV_UNHALT));
	/* Needs VMM support we do not give: filtered out. */
	assert_false(feat->eax & (1u << KVM_FEATURE_MSI_EXT_DEST_ID));

	const struct kvm_cpuid_entry2 *tsc = find(out, n, 0x40000010, 0);
	assert_non_null(tsc);
	assert_int_equal(tsc->eax, 2000000);
	assert_int_equal(tsc->ebx, 1000000);

	/* Leaf 0x15 rewritten: crystal * EBX / EAX = TSC Hz exactly. */
	const struct kvm_cpuid_entry2 *l15 = find(out, n, 0x15, 0);
	assert_non_null(l15);
	assert_int_equal((uint64_t)l15->ecx * l15->ebx / l15->eax, 2000000000ULL);
	const struct kvm_cpuid_entry2 *l16 = find(out, n, 0x16, 0);
	assert_non_null(l16);
	assert_int_equal(l16->eax, 2000);
}

static void test_no_tsc_rate(void **state)
{
	struct kvm_cpuid_entry2 out[64];
	int n = policy(intel_host, ARRAY_SIZE(intel_host), 0, 1, 0, out, 64);
	assert_null(find(out, n, 0x15, 0));
	assert_null(find(out, n, 0x40000010, 0));
	assert_int_equal(find(out, n, KVM_CPUID_SIGNATURE, 0)->eax, KVM_CPUID_FEATURES);
}

static void test_amd_host(void **state)
{
	struct kvm_cpuid_entry2 out[64];
	int n = policy(amd_host, ARRAY_SIZE(amd_host), 3, 4, 3000000, out, 64);
	assert_true(n > 0);
	/* No basic leaf 0x15 beyond the host's range (max 0x10). */
	assert_null(find(out, n, 0x15, 0));
	/* kvmclock offered even though the host listed no PV leaf. */
	const struct kvm_cpuid_entry2 *feat = find(out, n, KVM_CPUID_FEATURES, 0);
	assert_non_null(feat);
	assert_true(feat->eax & (1u << KVM_FEATURE_CLOCKSOURCE2));
	assert_int_equal(find(out, n, 0x40000010, 0)->eax, 3000000);
	/* AMD topology: 4 cores, 2 bits of APIC ID; extended APIC ID. */
	const struct kvm_cpuid_entry2 *l88 = find(out, n, 0x80000008, 0);
	assert_int_equal(l88->ecx & 0xff, 3);
	assert_int_equal((l88->ecx >> 12) & 0xf, 2);
	assert_int_equal(find(out, n, 0x8000001e, 0)->eax, 3);
	assert_int_equal((find(out, n, 0x8000001e, 0)->ebx >> 8) & 0xff, 0);
}

static void test_output_too_small(void **state)
{
	struct kvm_cpuid_entry2 out[4];
	assert_int_equal(policy(intel_host, ARRAY_SIZE(intel_host), 0, 1, 1000, out, 4), -1);
}

static void test_state_round_trip(void **state)
{
	struct x86_cpu_state s, back;
	memset(&s, 0, sizeof(s));
	for (int i = 0; i < 16; i++)
		s.gpr[i] = 0x1111111111111111ULL * (uint64_t)(i + 1);
	s.rip = 0x100000;
	s.rflags = 0x202;
	x86_flat_segment(&s.seg[SEG_CS], 0x10, true, true);
	x86_flat_segment(&s.seg[SEG_DS], 0x18, false, true);
	s.seg[SEG_TR].type = 0xB;
	s.seg[SEG_TR].base = 0x5000;
	s.seg[SEG_TR].limit = 0x67;
	s.seg[SEG_TR].present = 1;
	s.seg[SEG_LDT].unusable = 1;
	s.seg[SEG_FS].base = 0xdeadbeef000ULL;
	s.seg[SEG_GS].dpl = 3;
	s.seg[SEG_GS].avl = 1;
	s.gdt.base = 0x500;
	s.gdt.limit = 0x1f;
	s.idt.base = 0x520;
	s.idt.limit = 0xfff;
	s.cr0 = 0x80050033;
	s.cr2 = 0x1234;
	s.cr3 = 0x9000;
	s.cr4 = 0x6a0;
	s.cr8 = 3;
	s.efer = 0xd01;
	s.apic_base = 0xfee00900;

	struct kvm_regs regs;
	struct kvm_sregs sregs;
	memset(&sregs, 0xa5, sizeof(sregs));
	kvm_state_to_kvm(&s, &regs, &sregs);
	assert_int_equal(regs.rax, s.gpr[R_RAX]);
	assert_int_equal(regs.rsp, s.gpr[R_RSP]);
	assert_int_equal(regs.rdi, s.gpr[R_RDI]);
	assert_int_equal(regs.r15, s.gpr[R_R15]);
	assert_int_equal(sregs.cs.l, 1);
	assert_int_equal(sregs.cs.selector, 0x10);
	assert_int_equal(sregs.tr.base, 0x5000);
	assert_int_equal(sregs.ldt.unusable, 1);
	/* The pending-interrupt bitmap is not ours to change. */
	assert_int_equal(sregs.interrupt_bitmap[0], 0xa5a5a5a5a5a5a5a5ULL);

	kvm_state_from_kvm(&regs, &sregs, &back);
	assert_memory_equal(&s, &back, sizeof(s));
}

static void test_state_details(void **state)
{
	struct x86_cpu_state s;
	x86_reset_state(&s, false);
	s.rflags = 0; /* bit 1 is architecturally 1: always set */
	s.apic_base = 0;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	memset(&sregs, 0, sizeof(sregs));
	sregs.apic_base = 0xfee00800;
	kvm_state_to_kvm(&s, &regs, &sregs);
	assert_int_equal(regs.rflags, 2);
	assert_int_equal(sregs.apic_base, 0xfee00800); /* kept: s had none */
	assert_int_equal(sregs.cs.base, 0xffff0000);
	assert_int_equal(sregs.cs.selector, 0xf000);
	assert_int_equal(regs.rip, 0xfff0);
}

static void test_cpl_verdict(void **state)
{
	struct kvm_cpl_rates native = { .cpl0_ips = 2.9e9, .cpl3_ips = 3.0e9 };
	struct kvm_cpl_rates pvm = { .cpl0_ips = 4.0e7, .cpl3_ips = 3.0e9 };
	struct kvm_cpl_rates none = { 0 };
	assert_true(kvm_cpl0_is_native(&native));
	assert_false(kvm_cpl0_is_native(&pvm));
	assert_false(kvm_cpl0_is_native(&none));
}

static void test_probe_reason(void **state)
{
	/* Whatever this host has, the reason names /dev/kvm. */
	char why[256] = "";
	int fd = kvm_open_checked(why, sizeof(why));
	if (fd >= 0) {
		close(fd);
		skip();
	}
	assert_non_null(strstr(why, "/dev/kvm"));
	struct kvm_host_info info;
	kvm_host_info(&info);
	assert_false(info.usable);
	assert_non_null(strstr(info.why, "/dev/kvm"));
}


/* ---- exit handling with a hand-made kvm_run --------------------------- */

struct recorder {
	uint64_t addr[64], value[64];
	unsigned size[64];
	bool write[64];
	unsigned n;
	uint64_t read_value;
};

static uint64_t rec_read(void *opaque, uint64_t off, unsigned size)
{
	struct recorder *r = opaque;
	if (r->n < 64) {
		r->addr[r->n] = off;
		r->size[r->n] = size;
		r->write[r->n++] = false;
	}
	return r->read_value++ & (size == 8 ? ~0ULL : ((1ULL << (size * 8)) - 1));
}

static void rec_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct recorder *r = opaque;
	if (r->n < 64) {
		r->addr[r->n] = off;
		r->size[r->n] = size;
		r->value[r->n] = value;
		r->write[r->n++] = true;
	}
}

static const struct io_ops rec_ops = { .read = rec_read, .write = rec_write };

#define RUN_SIZE 4096

struct exit_env {
	struct machine m;
	struct recorder port, mem;
	struct kvm_run *run;
};

static int exit_env_setup(void **state)
{
	struct exit_env *e = calloc(1, sizeof(*e));
	e->m.pio = io_space_new("pio");
	e->m.mmio = io_space_new("mmio");
	e->m.vcpus[0].m = &e->m;
	e->run = aligned_alloc(4096, RUN_SIZE);
	memset(e->run, 0, RUN_SIZE);
	io_register(e->m.pio, 0x3f8, 8, &rec_ops, &e->port, "uart");
	io_register(e->m.mmio, 0xfe000000, 0x1000, &rec_ops, &e->mem, "dev");
	*state = e;
	return 0;
}

static int exit_env_teardown(void **state)
{
	struct exit_env *e = *state;
	io_space_free(e->m.pio);
	io_space_free(e->m.mmio);
	free(e->run);
	free(e);
	return 0;
}

static int handle(struct exit_env *e)
{
	return kvm_handle_exit(&e->m.vcpus[0], RUN_SIZE, e->run);
}

static void test_exit_port_io(void **state)
{
	struct exit_env *e = *state;
	uint8_t *data = (uint8_t *)e->run + 1024;
	/* rep outsb of "hi!" to COM1. */
	e->run->exit_reason = KVM_EXIT_IO;
	e->run->io.direction = KVM_EXIT_IO_OUT;
	e->run->io.size = 1;
	e->run->io.port = 0x3f8;
	e->run->io.count = 3;
	e->run->io.data_offset = 1024;
	memcpy(data, "hi!", 3);
	assert_int_equal(handle(e), 0);
	assert_int_equal(e->port.n, 3);
	assert_true(e->port.write[0]);
	assert_int_equal(e->port.value[0], 'h');
	assert_int_equal(e->port.value[2], '!');
	assert_int_equal(e->port.addr[1], 0);

	/* 16-bit in from port 0x3fd (offset 5): the value lands in the data area. */
	e->port.n = 0;
	e->port.read_value = 0xbeef;
	e->run->io.direction = KVM_EXIT_IO_IN;
	e->run->io.size = 2;
	e->run->io.port = 0x3fd;
	e->run->io.count = 1;
	assert_int_equal(handle(e), 0);
	assert_int_equal(e->port.n, 1);
	assert_int_equal(e->port.addr[0], 5);
	uint16_t got;
	memcpy(&got, data, 2);
	assert_int_equal(got, 0xbeef);

	/* A port nobody claims reads as all ones. */
	e->run->io.port = 0x1234;
	assert_int_equal(handle(e), 0);
	memcpy(&got, data, 2);
	assert_int_equal(got, 0xffff);
}

static void test_exit_port_io_malformed(void **state)
{
	struct exit_env *e = *state;
	e->run->exit_reason = KVM_EXIT_IO;
	e->run->io.direction = KVM_EXIT_IO_OUT;
	e->run->io.port = 0x3f8;
	/* Bad size, data beyond the mapping, count overflowing it. */
	e->run->io.size = 3;
	e->run->io.count = 1;
	e->run->io.data_offset = 1024;
	assert_int_equal(handle(e), -1);
	e->run->io.size = 1;
	e->run->io.data_offset = RUN_SIZE + 1;
	assert_int_equal(handle(e), -1);
	e->run->io.data_offset = RUN_SIZE - 2;
	e->run->io.size = 4;
	assert_int_equal(handle(e), -1);
	e->run->io.size = 1;
	e->run->io.count = 0xffffffff;
	e->run->io.data_offset = 1024;
	assert_int_equal(handle(e), -1);
	assert_int_equal(e->port.n, 0); /* nothing reached the device */
}

static void test_exit_mmio(void **state)
{
	struct exit_env *e = *state;
	e->run->exit_reason = KVM_EXIT_MMIO;
	e->run->mmio.phys_addr = 0xfe000010;
	e->run->mmio.is_write = 1;
	e->run->mmio.len = 8;
	uint64_t v = 0x1122334455667788ULL;
	memcpy(e->run->mmio.data, &v, 8);
	assert_int_equal(handle(e), 0);
	assert_int_equal(e->mem.n, 1);
	assert_int_equal(e->mem.addr[0], 0x10);
	assert_int_equal(e->mem.size[0], 8);
	assert_int_equal(e->mem.value[0], v);

	/* A 3-byte access goes byte by byte. */
	e->mem.n = 0;
	e->run->mmio.len = 3;
	assert_int_equal(handle(e), 0);
	assert_int_equal(e->mem.n, 3);
	assert_int_equal(e->mem.size[2], 1);
	assert_int_equal(e->mem.addr[2], 0x12);
	assert_int_equal(e->mem.value[2], 0x66);

	/* Read: the device's value is handed back in data[]. */
	e->mem.n = 0;
	e->mem.read_value = 0xcafe;
	e->run->mmio.is_write = 0;
	e->run->mmio.len = 4;
	memset(e->run->mmio.data, 0, 8);
	assert_int_equal(handle(e), 0);
	uint32_t got;
	memcpy(&got, e->run->mmio.data, 4);
	assert_int_equal(got, 0xcafe);

	e->run->mmio.len = 0;
	assert_int_equal(handle(e), -1);
	e->run->mmio.len = 9;
	assert_int_equal(handle(e), -1);
}

static void test_exit_power_events(void **state)
{
	struct exit_env *e = *state;
	struct machine *m = &e->m;

	e->run->exit_reason = KVM_EXIT_HLT;
	assert_int_equal(handle(e), 0);
	e->run->exit_reason = KVM_EXIT_INTR;
	assert_int_equal(handle(e), 0);
	assert_int_equal(m->run_state, VM_RUNNING);

	e->run->exit_reason = KVM_EXIT_SHUTDOWN; /* triple fault */
	assert_int_equal(handle(e), 0);
	assert_int_equal(m->run_state, VM_STOP_RESET);

	m->run_state = VM_RUNNING;
	e->run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
	e->run->system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
	assert_int_equal(handle(e), 0);
	assert_int_equal(m->run_state, VM_STOP_POWEROFF);

	m->run_state = VM_RUNNING;
	e->run->system_event.type = KVM_SYSTEM_EVENT_RESET;
	assert_int_equal(handle(e), 0);
	assert_int_equal(m->run_state, VM_STOP_RESET);

	/* Fatal exits: reported, -1 (the vCPU loop then stops the VM). */
	e->run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	e->run->internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
	e->run->internal.ndata = 1000; /* hostile count: clamped */
	assert_int_equal(handle(e), -1);
	e->run->exit_reason = KVM_EXIT_FAIL_ENTRY;
	assert_int_equal(handle(e), -1);
	e->run->exit_reason = KVM_EXIT_UNKNOWN;
	assert_int_equal(handle(e), -1);
	e->run->exit_reason = 12345;
	assert_int_equal(handle(e), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_leaf1_and_topology),
		cmocka_unit_test(test_single_cpu),
		cmocka_unit_test(test_hypervisor_leaves),
		cmocka_unit_test(test_no_tsc_rate),
		cmocka_unit_test(test_amd_host),
		cmocka_unit_test(test_output_too_small),
		cmocka_unit_test(test_state_round_trip),
		cmocka_unit_test(test_state_details),
		cmocka_unit_test(test_cpl_verdict),
		cmocka_unit_test(test_probe_reason),
		cmocka_unit_test_setup_teardown(test_exit_port_io, exit_env_setup, exit_env_teardown),
		cmocka_unit_test_setup_teardown(test_exit_port_io_malformed, exit_env_setup, exit_env_teardown),
		cmocka_unit_test_setup_teardown(test_exit_mmio, exit_env_setup, exit_env_teardown),
		cmocka_unit_test_setup_teardown(test_exit_power_events, exit_env_setup, exit_env_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
