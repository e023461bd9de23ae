/* What `xvm ok` and `--accel auto` learn about this host's KVM: the
 * capabilities, and whether guest supervisor code (CPL0) runs natively.
 *
 * Hardware virtualization runs CPL0 and CPL3 code at the same speed.
 * Software-only KVMs (PVM and similar, common in nested cloud VMs) run
 * guest user code natively but emulate or trap much of the guest kernel, so
 * a tight loop at CPL0 runs far slower than the same loop at CPL3. A few
 * milliseconds of each tell the two apart. */
#include "accel/kvm/kvm.h"
#include "accel/accel.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* The probe VM: 2 MiB of RAM, identity-mapped by one 2 MiB page that
 * user code may use too, and the loop. */
#define PROBE_RAM_SIZE   (2 * MiB)
#define PROBE_PML4       0x1000
#define PROBE_PDPT       0x2000
#define PROBE_PD         0x3000
#define PROBE_TSS        0x5000
#define PROBE_CODE       0x10000
#define PROBE_STACK      0x8000
#define PROBE_DONE_PORT  0x10
#define PTE_P  0x1ULL
#define PTE_RW 0x2ULL
#define PTE_US 0x4ULL
#define PTE_PS 0x80ULL
#define RFLAGS_IOPL3 0x3000ULL /* lets the CPL3 loop report with OUT */
#define LOOP_INSNS_PER_ITERATION 2

/* loop: dec rcx; jnz loop; out PROBE_DONE_PORT, al */
static const uint8_t probe_loop[] = { 0x48, 0xff, 0xc9, 0x75, 0xfb, 0xe6, PROBE_DONE_PORT };

struct probe_vm {
	int sys_fd, vm_fd, vcpu_fd;
	uint8_t *ram;
	struct kvm_run *run;
	size_t run_size;
};

static void probe_vm_free(struct probe_vm *p)
{
	if (p->run)
		munmap(p->run, p->run_size);
	if (p->vcpu_fd >= 0)
		close(p->vcpu_fd);
	if (p->vm_fd >= 0)
		close(p->vm_fd);
	if (p->sys_fd >= 0)
		close(p->sys_fd);
	if (p->ram)
		munmap(p->ram, PROBE_RAM_SIZE);
}

static int probe_fail(char *why, size_t len, const char *what)
{
	snprintf(why, len, "%s: %s", what, strerror(errno));
	return -1;
}

/* CPUID as KVM supports it: long mode must be in the guest's CPUID for
 * KVM to accept EFER.LME. */
static int probe_set_cpuid(struct probe_vm *p, char *why, size_t len)
{
	for (unsigned n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = xcalloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		c->nent = n;
		if (ioctl(p->sys_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			int r = ioctl(p->vcpu_fd, KVM_SET_CPUID2, c);
			free(c);
			return r < 0 ? probe_fail(why, len, "KVM_SET_CPUID2") : 0;
		}
		int e = errno;
		free(c);
		if (e != E2BIG) {
			errno = e;
			return probe_fail(why, len, "KVM_GET_SUPPORTED_CPUID");
		}
	}
	snprintf(why, len, "KVM_GET_SUPPORTED_CPUID: too many entries");
	return -1;
}

static int probe_vm_create(struct probe_vm *p, char *why, size_t len)
{
	memset(p, 0, sizeof(*p));
	p->vm_fd = p->vcpu_fd = -1;
	p->sys_fd = kvm_open_checked(why, len);
	if (p->sys_fd < 0)
		return -1;
	p->vm_fd = ioctl(p->sys_fd, KVM_CREATE_VM, 0);
	if (p->vm_fd < 0)
		return probe_fail(why, len, "KVM_CREATE_VM");
	void *ram = mmap(NULL, PROBE_RAM_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED)
		return probe_fail(why, len, "mmap");
	p->ram = ram;
	uint64_t *pml4 = (uint64_t *)(p->ram + PROBE_PML4);
	uint64_t *pdpt = (uint64_t *)(p->ram + PROBE_PDPT);
	uint64_t *pd = (uint64_t *)(p->ram + PROBE_PD);
	pml4[0] = PROBE_PDPT | PTE_P | PTE_RW | PTE_US;
	pdpt[0] = PROBE_PD | PTE_P | PTE_RW | PTE_US;
	pd[0] = 0 | PTE_P | PTE_RW | PTE_US | PTE_PS;
	memcpy(p->ram + PROBE_CODE, probe_loop, sizeof(probe_loop));

	struct kvm_userspace_memory_region region = {
		.slot = 0, .memory_size = PROBE_RAM_SIZE, .userspace_addr = (uintptr_t)p->ram,
	};
	if (ioctl(p->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return probe_fail(why, len, "KVM_SET_USER_MEMORY_REGION");
	if (ioctl(p->vm_fd, KVM_SET_TSS_ADDR, 0xFFFBD000UL) < 0)
		return probe_fail(why, len, "KVM_SET_TSS_ADDR");
	p->vcpu_fd = ioctl(p->vm_fd, KVM_CREATE_VCPU, 0);
	if (p->vcpu_fd < 0)
		return probe_fail(why, len, "KVM_CREATE_VCPU");
	int size = ioctl(p->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < (int)sizeof(struct kvm_run))
		return probe_fail(why, len, "KVM_GET_VCPU_MMAP_SIZE");
	p->run_size = (size_t)size;
	void *run = mmap(NULL, p->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, p->vcpu_fd, 0);
	if (run == MAP_FAILED)
		return probe_fail(why, len, "mmap kvm_run");
	p->run = run;
	return probe_set_cpuid(p, why, len);
}

static void flat64(struct kvm_segment *s, uint16_t sel, bool code, unsigned dpl)
{
	memset(s, 0, sizeof(*s));
	s->selector = (uint16_t)(sel | dpl);
	s->limit = 0xFFFFFFFF;
	s->type = code ? 0xB : 0x3;
	s->s = 1;
	s->dpl = (uint8_t)dpl;
	s->present = 1;
	s->g = 1;
	s->l = code;
	s->db = !code;
}

/* Long mode, paging on, at privilege level cpl, about to run the loop
 * with rcx = iterations. */
static int probe_enter(struct probe_vm *p, unsigned cpl, uint64_t iterations, char *why, size_t len)
{
	struct kvm_sregs sr;
	if (ioctl(p->vcpu_fd, KVM_GET_SREGS, &sr) < 0)
		return probe_fail(why, len, "KVM_GET_SREGS");
	flat64(&sr.cs, cpl ? 0x28 : 0x08, true, cpl);
	flat64(&sr.ss, cpl ? 0x20 : 0x10, false, cpl);
	sr.ds = sr.es = sr.fs = sr.gs = sr.ss;
	memset(&sr.tr, 0, sizeof(sr.tr));
	sr.tr.selector = 0x30;
	sr.tr.base = PROBE_TSS;
	sr.tr.limit = 0x67;
	sr.tr.type = 0xB; /* busy 64-bit TSS */
	sr.tr.present = 1;
	memset(&sr.ldt, 0, sizeof(sr.ldt));
	sr.ldt.unusable = 1;
	sr.cr0 = 0x80000000ULL | 0x10000ULL | 0x20ULL | 0x10ULL | 0x1ULL; /* PG WP NE ET PE */
	sr.cr3 = PROBE_PML4;
	sr.cr4 = 0x20; /* PAE */
	sr.efer = 0x500; /* LME | LMA */
	if (ioctl(p->vcpu_fd, KVM_SET_SREGS, &sr) < 0)
		return probe_fail(why, len, "KVM_SET_SREGS");
	struct kvm_regs regs = {
		.rip = PROBE_CODE,
		.rsp = PROBE_STACK,
		.rcx = iterations,
		.rflags = 0x2 | RFLAGS_IOPL3,
	};
	if (ioctl(p->vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return probe_fail(why, len, "KVM_SET_REGS");
	return 0;
}

/* Runs the loop once; returns the elapsed nanoseconds or 0 on error. */
static uint64_t probe_time_loop(struct probe_vm *p, unsigned cpl, uint64_t iterations,
				char *why, size_t len)
{
	if (probe_enter(p, cpl, iterations, why, len) < 0)
		return 0;
	uint64_t t0 = clock_ns();
	for (;;) {
		if (ioctl(p->vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			probe_fail(why, len, "KVM_RUN");
			return 0;
		}
		if (p->run->exit_reason == KVM_EXIT_IO && p->run->io.port == PROBE_DONE_PORT)
			break;
		if (p->run->exit_reason == KVM_EXIT_INTR)
			continue;
		snprintf(why, len, "the CPL%u probe loop stopped with KVM exit %u", cpl,
			 p->run->exit_reason);
		return 0;
	}
	uint64_t dt = clock_ns() - t0;
	/* Let KVM finish the OUT (the API completes a pending I/O on the next
	 * KVM_RUN) without running more guest code, so the next probe_enter
	 * starts from a consistent state. */
	p->run->immediate_exit = 1;
	if (ioctl(p->vcpu_fd, KVM_RUN, 0) == 0 || errno != EINTR) {
		p->run->immediate_exit = 0;
		snprintf(why, len, "KVM_RUN with immediate_exit did not return EINTR");
		return 0;
	}
	p->run->immediate_exit = 0;
	return dt ? dt : 1;
}

/* Grows the loop until one run lasts budget_ns, so fast and slow hosts
 * both measure for about that long. */
static int probe_rate(struct probe_vm *p, unsigned cpl, uint64_t budget_ns, double *ips,
		      char *why, size_t len)
{
	uint64_t iterations = 1000;
	for (;;) {
		uint64_t dt = probe_time_loop(p, cpl, iterations, why, len);
		if (!dt)
			return -1;
		if (dt >= budget_ns || iterations >= (1ULL << 40)) {
			*ips = (double)(iterations * LOOP_INSNS_PER_ITERATION) * 1e9 / (double)dt;
			return 0;
		}
		/* Aim straight at the budget (at most 16x per step). */
		uint64_t scale = MIN(16ULL, budget_ns / dt + 1);
		iterations *= MAX(scale, 2ULL);
	}
}

int kvm_measure_cpl(uint64_t budget_ns, struct kvm_cpl_rates *out, char *why, size_t len)
{
	struct probe_vm p;
	memset(out, 0, sizeof(*out));
	int r = probe_vm_create(&p, why, len);
	if (r == 0)
		r = probe_rate(&p, 0, budget_ns, &out->cpl0_ips, why, len);
	if (r == 0)
		r = probe_rate(&p, 3, budget_ns, &out->cpl3_ips, why, len);
	probe_vm_free(&p);
	return r;
}

bool kvm_cpl0_is_native(const struct kvm_cpl_rates *r)
{
	/* Native: both run at the host CPU's speed (ratio ~1). Emulated
	 * supervisor code is one to three orders of magnitude slower; half
	 * leaves room for timing noise on a busy host. */
	return r->cpl3_ips > 0 && r->cpl0_ips >= 0.5 * r->cpl3_ips;
}

void kvm_host_info(struct kvm_host_info *info)
{
	memset(info, 0, sizeof(*info));
	info->api_version = -1;
	int fd = open(KVM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(info->why, sizeof(info->why), "%s: %s", KVM_DEVICE_PATH, strerror(errno));
		return;
	}
	info->api_version = ioctl(fd, KVM_GET_API_VERSION, 0);
	int v = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	info->max_vcpus = v > 0 ? v : ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	info->nr_memslots = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
	info->tsc_control = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_CONTROL) > 0;
	info->x2apic_api = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_X2APIC_API) > 0;
	info->immediate_exit = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) > 0;
	info->irqfd = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD) > 0;
	info->ioeventfd = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_IOEVENTFD) > 0;
	info->signal_msi = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_SIGNAL_MSI) > 0;
	close(fd);
	info->usable = kvm_accel_ops.probe(info->why, sizeof(info->why));
}
