/* The KVM engine: the guest runs on the host CPU through /dev/kvm, with
 * the in-kernel LAPIC/IOAPIC/PIC and PIT. Port and MMIO exits go to the
 * machine's address spaces; everything else is handled here.
 *
 * Written from the KVM API documentation (Documentation/virt/kvm/api.rst). */
#include "accel/kvm/kvm.h"
#include "accel/accel.h"
#include "hw/io.h"
#include "lib/log.h"
#include "lib/util.h"
#include "machine/layout.h"
#include "machine/machine.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* Intel VMX needs three pages for a real-mode TSS and one for an identity
 * page table (used while the guest runs unpaged). They must be in guest
 * physical space the guest never uses: the top of the 32-bit hole, above
 * every device of layout.h. */
#define KVM_IDENTITY_MAP_ADDR 0xFFFBC000ULL
#define KVM_TSS_ADDR          0xFFFBD000ULL

#define MSR_IA32_TSC          0x10
#define MSR_IA32_MISC_ENABLE  0x1a0
#define MSR_IA32_CR_PAT       0x277
#define MSR_MTRR_DEF_TYPE     0x2ff
#define MISC_ENABLE_FAST_STRING (1ULL << 0)
#define PAT_POWER_ON_VALUE    0x0007040600070406ULL
#define MTRR_ENABLE_WB        ((1ULL << 11) | 6) /* MTRRs on, default write-back */

#define KICK_SIGNAL SIGUSR1

struct kvm_engine {
	int sys_fd, vm_fd;
	size_t run_size;
	struct kvm_cpuid2 *supported;
	bool tsc_control, get_tsc_khz, tsc_deadline, mp_state;
};

struct kvm_vcpu {
	int fd;
	struct kvm_run *run;
	pthread_mutex_t kick_lock;
	bool in_run;            /* under kick_lock: thread may be signalled */
	pthread_t thread;
	uint32_t tsc_khz;
};

static struct kvm_engine *engine_of(struct machine *m)
{
	return m->accel_priv;
}

static int kvm_ioctl(int fd, unsigned long req, void *arg)
{
	int r;
	do
		r = ioctl(fd, req, arg);
	while (r < 0 && (errno == EINTR || errno == EAGAIN) && req != KVM_RUN);
	return r;
}

/* ---- opening and checking /dev/kvm -------------------------------------- */

static const struct {
	int cap;
	const char *name;
} required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
	{ KVM_CAP_HLT, "KVM_CAP_HLT" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	{ KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
	{ KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
	{ KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE" },
};

int kvm_open_checked(char *why, size_t len)
{
	int fd = open(KVM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, len, "%s: %s", KVM_DEVICE_PATH, strerror(errno));
		return -1;
	}
	int api = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_REQUIRED_API) {
		snprintf(why, len, "%s: KVM API version %d, xvm needs %d", KVM_DEVICE_PATH, api,
			 KVM_REQUIRED_API);
		close(fd);
		return -1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(required_caps); i++) {
		if (ioctl(fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
			snprintf(why, len, "%s: this KVM lacks %s", KVM_DEVICE_PATH,
				 required_caps[i].name);
			close(fd);
			return -1;
		}
	}
	return fd;
}

static bool kvm_probe(char *why, size_t len)
{
	int fd = kvm_open_checked(why, len);
	if (fd < 0)
		return false;
	/* Some hosts expose /dev/kvm but refuse to create VMs (no permission
	 * for the hardware, another hypervisor owns it): try one. */
	int vm = ioctl(fd, KVM_CREATE_VM, 0);
	if (vm < 0) {
		snprintf(why, len, "%s: KVM_CREATE_VM: %s", KVM_DEVICE_PATH, strerror(errno));
		close(fd);
		return false;
	}
	close(vm);
	close(fd);
	return true;
}

/* ---- kicking a vCPU out of KVM_RUN -------------------------------------- */

/* The kvm_run of the vCPU this thread runs: the kick handler sets its
 * immediate_exit, so a kick that lands just before KVM_RUN is not lost
 * (KVM_RUN then returns -EINTR at once). */
static __thread struct kvm_run *thread_run;

static void kick_handler(int sig)
{
	struct kvm_run *run = thread_run;
	if (run)
		run->immediate_exit = 1;
}

static void install_kick_handler(void)
{
	struct sigaction sa = { .sa_handler = kick_handler };
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: KVM_RUN must return -EINTR. */
	sigaction(KICK_SIGNAL, &sa, NULL);
}

static void kvm_vcpu_kick(struct vcpu *v)
{
	struct kvm_vcpu *p = v->accel;
	if (!p)
		return;
	pthread_mutex_lock(&p->kick_lock);
	if (p->in_run)
		pthread_kill(p->thread, KICK_SIGNAL);
	pthread_mutex_unlock(&p->kick_lock);
}

/* ---- VM ----------------------------------------------------------------- */

static struct kvm_cpuid2 *get_supported_cpuid(int sys_fd)
{
	for (unsigned n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = xcalloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		c->nent = n;
		if (ioctl(sys_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		int e = errno;
		free(c);
		if (e != E2BIG) {
			log_err("KVM_GET_SUPPORTED_CPUID: %s", strerror(e));
			return NULL;
		}
	}
	log_err("KVM_GET_SUPPORTED_CPUID: too many entries");
	return NULL;
}

/* KVM's default routing sends its GSI n to IOAPIC pin n. The PC's IRQ0
 * (the in-kernel PIT raises KVM GSI 0) is wired to IOAPIC pin 2, as the
 * MADT's interrupt source override says (layout.h); every other ISA IRQ n
 * reaches PIC input n and IOAPIC pin n; GSIs 16-23 (PCI INTx) only the
 * IOAPIC. */
static int setup_gsi_routing(int vm_fd)
{
	unsigned max = 16 * 2 + IOAPIC_PINS;
	struct kvm_irq_routing *r = xcalloc(1, sizeof(*r) + max * sizeof(r->entries[0]));
	unsigned n = 0;
	for (unsigned gsi = 0; gsi < IOAPIC_PINS; gsi++) {
		if (gsi < 16 && gsi != 2) {
			struct kvm_irq_routing_entry *e = &r->entries[n++];
			e->gsi = gsi;
			e->type = KVM_IRQ_ROUTING_IRQCHIP;
			e->u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
			e->u.irqchip.pin = gsi % 8;
		}
		struct kvm_irq_routing_entry *e = &r->entries[n++];
		e->gsi = gsi;
		e->type = KVM_IRQ_ROUTING_IRQCHIP;
		e->u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
		e->u.irqchip.pin = gsi == 0 ? 2 : gsi;
	}
	r->nr = n;
	int ret = kvm_ioctl(vm_fd, KVM_SET_GSI_ROUTING, r);
	if (ret < 0)
		log_err("KVM_SET_GSI_ROUTING: %s", strerror(errno));
	free(r);
	return ret;
}

static int map_ram(struct kvm_engine *k, struct machine *m)
{
	struct kvm_userspace_memory_region regions[2] = {
		{ .slot = 0, .guest_phys_addr = 0, .memory_size = m->ram.low_size,
		  .userspace_addr = (uintptr_t)m->ram.host },
		{ .slot = 1, .guest_phys_addr = HIGH_RAM_START, .memory_size = m->ram.high_size,
		  .userspace_addr = (uintptr_t)(m->ram.host + m->ram.low_size) },
	};
	for (unsigned i = 0; i < 2; i++) {
		if (!regions[i].memory_size)
			continue;
		if (kvm_ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &regions[i]) < 0) {
			log_err("KVM_SET_USER_MEMORY_REGION (slot %u, %llu bytes at 0x%llx): %s", i,
				(unsigned long long)regions[i].memory_size,
				(unsigned long long)regions[i].guest_phys_addr, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static void kvm_vm_destroy(struct machine *m)
{
	struct kvm_engine *k = engine_of(m);
	if (!k)
		return;
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	if (k->sys_fd >= 0)
		close(k->sys_fd);
	free(k->supported);
	free(k);
	m->accel_priv = NULL;
}

static int kvm_vm_init(struct machine *m)
{
	char why[256];
	struct kvm_engine *k = xcalloc(1, sizeof(*k));
	k->vm_fd = -1;
	m->accel_priv = k;
	k->sys_fd = kvm_open_checked(why, sizeof(why));
	if (k->sys_fd < 0) {
		log_err("%s", why);
		goto fail;
	}
	int max_vcpus = ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max_vcpus <= 0)
		max_vcpus = ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max_vcpus <= 0)
		max_vcpus = 4; /* the documented default when neither cap exists */
	if (m->ncpus > (unsigned)max_vcpus) {
		log_err("this KVM supports at most %d vCPUs per VM (%u requested)", max_vcpus, m->ncpus);
		goto fail;
	}
	k->tsc_control = ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_CONTROL) > 0;
	k->get_tsc_khz = ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_GET_TSC_KHZ) > 0;
	k->tsc_deadline = ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	k->mp_state = ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_MP_STATE) > 0;
	int run_size = ioctl(k->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size < (int)sizeof(struct kvm_run)) {
		log_err("KVM_GET_VCPU_MMAP_SIZE: %s", run_size < 0 ? strerror(errno) : "too small");
		goto fail;
	}
	k->run_size = (size_t)run_size;
	k->supported = get_supported_cpuid(k->sys_fd);
	if (!k->supported)
		goto fail;

	k->vm_fd = kvm_ioctl(k->sys_fd, KVM_CREATE_VM, 0);
	if (k->vm_fd < 0) {
		log_err("KVM_CREATE_VM: %s", strerror(errno));
		goto fail;
	}
	uint64_t identity = KVM_IDENTITY_MAP_ADDR;
	if (kvm_ioctl(k->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0) {
		log_err("KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
		goto fail;
	}
	if (ioctl(k->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0) {
		log_err("KVM_SET_TSS_ADDR: %s", strerror(errno));
		goto fail;
	}
	if (ioctl(k->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		log_err("KVM_CREATE_IRQCHIP: %s", strerror(errno));
		goto fail;
	}
	/* The dummy speaker port (0x61) lets guests gate PIT channel 2, which
	 * Linux uses to calibrate the TSC. */
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	if (kvm_ioctl(k->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		log_err("KVM_CREATE_PIT2: %s", strerror(errno));
		goto fail;
	}
	if (setup_gsi_routing(k->vm_fd) < 0)
		goto fail;
	if (map_ram(k, m) < 0)
		goto fail;
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, install_kick_handler);
	return 0;
fail:
	kvm_vm_destroy(m);
	return -1;
}

/* ---- vCPU setup --------------------------------------------------------- */

static int set_msrs(struct kvm_vcpu *p, unsigned index)
{
	static const struct { uint32_t index; uint64_t value; } msrs[] = {
		/* Linux warns (and runs slower) without fast strings. */
		{ MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING },
		{ MSR_IA32_CR_PAT, PAT_POWER_ON_VALUE },
		{ MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WB },
		/* The same value on every vCPU at creation: KVM then keeps
		 * their TSCs synchronised. */
		{ MSR_IA32_TSC, 0 },
	};
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[ARRAY_SIZE(msrs)];
	} buf;
	memset(&buf, 0, sizeof(buf));
	buf.hdr.nmsrs = ARRAY_SIZE(msrs);
	for (size_t i = 0; i < ARRAY_SIZE(msrs); i++) {
		buf.e[i].index = msrs[i].index;
		buf.e[i].data = msrs[i].value;
	}
	int r = kvm_ioctl(p->fd, KVM_SET_MSRS, &buf);
	if (r < 0) {
		log_err("vcpu%u: KVM_SET_MSRS: %s", index, strerror(errno));
		return -1;
	}
	/* KVM stops at the first MSR it refuses. */
	if ((size_t)r < ARRAY_SIZE(msrs))
		log_warn("vcpu%u: KVM refused MSR 0x%x", index, msrs[r].index);
	return 0;
}

static int set_cpuid(struct kvm_engine *k, struct kvm_vcpu *p, struct machine *m, unsigned index)
{
	unsigned max = k->supported->nent + 8;
	struct kvm_cpuid2 *c = xcalloc(1, sizeof(*c) + max * sizeof(c->entries[0]));
	struct cpuid_policy_params params = {
		.apic_id = index,
		.ncpus = m->ncpus,
		.tsc_khz = p->tsc_khz,
		.tsc_deadline = k->tsc_deadline,
	};
	int n = kvm_cpuid_policy(k->supported->entries, k->supported->nent, &params, c->entries, max);
	int r = -1;
	if (n < 0) {
		log_err("vcpu%u: CPUID policy does not fit", index);
	} else {
		c->nent = (uint32_t)n;
		r = kvm_ioctl(p->fd, KVM_SET_CPUID2, c);
		if (r < 0)
			log_err("vcpu%u: KVM_SET_CPUID2: %s", index, strerror(errno));
	}
	free(c);
	return r;
}

/* Guest TSC rate: our fixed GUEST_TSC_KHZ where the hardware can scale the
 * TSC, else the host's own rate (what the guest will really see). */
static void setup_tsc(struct kvm_engine *k, struct kvm_vcpu *p, unsigned index)
{
	if (k->tsc_control) {
		if (ioctl(p->fd, KVM_SET_TSC_KHZ, (unsigned long)GUEST_TSC_KHZ) == 0) {
			p->tsc_khz = GUEST_TSC_KHZ;
			return;
		}
		log_once(LOG_WARN, "KVM_SET_TSC_KHZ: %s; the guest sees the host TSC rate",
			 strerror(errno));
	}
	if (k->get_tsc_khz) {
		int khz = ioctl(p->fd, KVM_GET_TSC_KHZ, 0);
		if (khz > 0)
			p->tsc_khz = (uint32_t)khz;
	}
}

static void kvm_vcpu_destroy(struct vcpu *v)
{
	struct kvm_vcpu *p = v->accel;
	if (!p)
		return;
	v->accel = NULL;
	if (p->run)
		munmap(p->run, engine_of(v->m)->run_size);
	if (p->fd >= 0)
		close(p->fd);
	pthread_mutex_destroy(&p->kick_lock);
	free(p);
}

static int kvm_vcpu_init(struct vcpu *v)
{
	struct machine *m = v->m;
	struct kvm_engine *k = engine_of(m);
	struct kvm_vcpu *p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->kick_lock, NULL);
	p->fd = kvm_ioctl(k->vm_fd, KVM_CREATE_VCPU, (void *)(uintptr_t)v->index);
	if (p->fd < 0) {
		log_err("vcpu%u: KVM_CREATE_VCPU: %s", v->index, strerror(errno));
		goto fail;
	}
	void *run = mmap(NULL, k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, p->fd, 0);
	if (run == MAP_FAILED) {
		log_err("vcpu%u: mmap of kvm_run: %s", v->index, strerror(errno));
		goto fail;
	}
	p->run = run;
	setup_tsc(k, p, v->index);
	if (set_cpuid(k, p, m, v->index) < 0 || set_msrs(p, v->index) < 0)
		goto fail;
	if (v->index != 0 && k->mp_state) {
		/* Application processors wait for INIT/SIPI from the BSP,
		 * delivered by the in-kernel LAPIC. */
		struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_UNINITIALIZED };
		if (kvm_ioctl(p->fd, KVM_SET_MP_STATE, &mp) < 0) {
			log_err("vcpu%u: KVM_SET_MP_STATE: %s", v->index, strerror(errno));
			goto fail;
		}
	}
	v->accel = p;
	return 0;
fail:
	v->accel = p;
	kvm_vcpu_destroy(v);
	return -1;
}

static int kvm_get_state(struct vcpu *v, struct x86_cpu_state *s)
{
	struct kvm_vcpu *p = v->accel;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	if (kvm_ioctl(p->fd, KVM_GET_REGS, &regs) < 0 || kvm_ioctl(p->fd, KVM_GET_SREGS, &sregs) < 0) {
		log_err("vcpu%u: cannot read registers: %s", v->index, strerror(errno));
		return -1;
	}
	kvm_state_from_kvm(&regs, &sregs, s);
	return 0;
}

static int kvm_set_state(struct vcpu *v, const struct x86_cpu_state *s)
{
	struct kvm_vcpu *p = v->accel;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	/* Start from the current sregs: they carry the pending-interrupt
	 * bitmap and the APIC base the state may leave unset. */
	if (kvm_ioctl(p->fd, KVM_GET_SREGS, &sregs) < 0) {
		log_err("vcpu%u: KVM_GET_SREGS: %s", v->index, strerror(errno));
		return -1;
	}
	kvm_state_to_kvm(s, &regs, &sregs);
	if (kvm_ioctl(p->fd, KVM_SET_SREGS, &sregs) < 0) {
		log_err("vcpu%u: KVM_SET_SREGS: %s", v->index, strerror(errno));
		return -1;
	}
	if (kvm_ioctl(p->fd, KVM_SET_REGS, &regs) < 0) {
		log_err("vcpu%u: KVM_SET_REGS: %s", v->index, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- running ------------------------------------------------------------ */

/* Registers, then the bytes at CS:RIP (through the guest's own page
 * tables), for a report that makes the failure diagnosable. */
static void dump_vcpu(struct vcpu *v)
{
	struct kvm_vcpu *p = v->accel;
	struct x86_cpu_state s;
	if (!p || kvm_get_state(v, &s) < 0)
		return;
	x86_dump_state(&s);
	struct kvm_translation t = { .linear_address = s.seg[SEG_CS].base + s.rip };
	if (kvm_ioctl(p->fd, KVM_TRANSLATE, &t) < 0 || !t.valid) {
		fprintf(stderr, "code: rip 0x%llx is not mapped\n", (unsigned long long)t.linear_address);
		return;
	}
	uint8_t code[16];
	uint64_t n = MIN((uint64_t)sizeof(code), gpa_ram_extent(&v->m->ram, t.physical_address));
	if (n == 0 || guest_read(&v->m->ram, t.physical_address, code, n) < 0) {
		fprintf(stderr, "code: gpa 0x%llx is not RAM\n", (unsigned long long)t.physical_address);
		return;
	}
	fprintf(stderr, "code at gpa 0x%llx:", (unsigned long long)t.physical_address);
	for (uint64_t i = 0; i < n; i++)
		fprintf(stderr, " %02x", code[i]);
	fprintf(stderr, "\n");
}

static int handle_io(struct vcpu *v, size_t run_size, struct kvm_run *run)
{
	unsigned size = run->io.size;
	uint64_t count = run->io.count, off = run->io.data_offset;
	if ((size != 1 && size != 2 && size != 4) || off > run_size ||
	    count * size > run_size - off) {
		log_err("vcpu%u: malformed port I/O exit (port 0x%x size %u count %llu)", v->index,
			run->io.port, size, (unsigned long long)count);
		return -1;
	}
	uint8_t *data = (uint8_t *)run + off;
	for (uint64_t i = 0; i < count; i++, data += size) {
		uint64_t value = 0;
		if (run->io.direction == KVM_EXIT_IO_OUT) {
			memcpy(&value, data, size);
			io_write(v->m->pio, run->io.port, size, value);
		} else {
			io_read(v->m->pio, run->io.port, size, &value);
			memcpy(data, &value, size);
		}
	}
	return 0;
}

static int handle_mmio(struct vcpu *v, struct kvm_run *run)
{
	unsigned len = run->mmio.len;
	uint64_t addr = run->mmio.phys_addr;
	if (len == 0 || len > sizeof(run->mmio.data)) {
		log_err("vcpu%u: malformed MMIO exit (0x%llx length %u)", v->index,
			(unsigned long long)addr, len);
		return -1;
	}
	/* Odd sizes (an unaligned instruction KVM split) go byte by byte. */
	unsigned step = IS_POW2(len) ? len : 1;
	for (unsigned off = 0; off < len; off += step) {
		uint64_t value = 0;
		if (run->mmio.is_write) {
			memcpy(&value, run->mmio.data + off, step);
			io_write(v->m->mmio, addr + off, step, value);
		} else {
			io_read(v->m->mmio, addr + off, step, &value);
			memcpy(run->mmio.data + off, &value, step);
		}
	}
	return 0;
}

static const char *internal_error_name(uint32_t suberror)
{
	switch (suberror) {
	case KVM_INTERNAL_ERROR_EMULATION: return "instruction emulation failed";
	case KVM_INTERNAL_ERROR_SIMUL_EX: return "exception while delivering an exception";
	case KVM_INTERNAL_ERROR_DELIVERY_EV: return "exit while delivering an event";
	case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON: return "unexpected hardware exit";
	default: return "unknown internal error";
	}
}

int kvm_handle_exit(struct vcpu *v, size_t run_size, struct kvm_run *run)
{
	struct machine *m = v->m;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		return handle_io(v, run_size, run);
	case KVM_EXIT_MMIO:
		return handle_mmio(v, run);
	case KVM_EXIT_HLT:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
	case KVM_EXIT_INTR:
	case KVM_EXIT_IOAPIC_EOI:
		/* With the in-kernel irqchip HLT and interrupt windows are
		 * handled in the kernel; these only give us a chance to look
		 * at the stop flag. */
		return 0;
	case KVM_EXIT_SHUTDOWN:
		/* Triple fault: a PC resets. */
		log_info("vcpu%u: triple fault; resetting", v->index);
		machine_request_stop(m, VM_STOP_RESET, 0);
		return 0;
	case KVM_EXIT_SYSTEM_EVENT:
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			machine_request_stop(m, VM_STOP_POWEROFF, 0);
			return 0;
		case KVM_SYSTEM_EVENT_RESET:
			machine_request_stop(m, VM_STOP_RESET, 0);
			return 0;
		case KVM_SYSTEM_EVENT_CRASH:
			log_err("vcpu%u: the guest reported a crash", v->index);
			dump_vcpu(v);
			return -1;
		default:
			return 0; /* wakeup/suspend: nothing to do */
		}
	case KVM_EXIT_FAIL_ENTRY:
		log_err("vcpu%u: KVM could not enter the guest (hardware reason 0x%llx on host cpu %u)",
			v->index, (unsigned long long)run->fail_entry.hardware_entry_failure_reason,
			run->fail_entry.cpu);
		dump_vcpu(v);
		return -1;
	case KVM_EXIT_INTERNAL_ERROR: {
		log_err("vcpu%u: KVM internal error %u: %s", v->index, run->internal.suberror,
			internal_error_name(run->internal.suberror));
		unsigned nd = MIN(run->internal.ndata, (uint32_t)ARRAY_SIZE(run->internal.data));
		for (unsigned i = 0; i < nd; i++)
			fprintf(stderr, "  data[%u]=0x%llx\n", i, (unsigned long long)run->internal.data[i]);
		dump_vcpu(v);
		return -1;
	}
	case KVM_EXIT_EXCEPTION:
		log_err("vcpu%u: unexpected guest exception %u (error code 0x%x)", v->index,
			run->ex.exception, run->ex.error_code);
		dump_vcpu(v);
		return -1;
	case KVM_EXIT_UNKNOWN:
		log_err("vcpu%u: unknown exit (hardware reason 0x%llx)", v->index,
			(unsigned long long)run->hw.hardware_exit_reason);
		dump_vcpu(v);
		return -1;
	default:
		/* Debug, hypercall, MSR and other exits need capabilities we
		 * never enable: seeing one is a bug. */
		log_err("vcpu%u: unhandled KVM exit reason %u", v->index, run->exit_reason);
		dump_vcpu(v);
		return -1;
	}
}

static int kvm_vcpu_run(struct vcpu *v)
{
	struct machine *m = v->m;
	struct kvm_engine *k = engine_of(m);
	struct kvm_vcpu *p = v->accel;
	struct kvm_run *run = p->run;
	int ret = 0;

	thread_run = run;
	pthread_mutex_lock(&p->kick_lock);
	p->thread = pthread_self();
	p->in_run = true;
	pthread_mutex_unlock(&p->kick_lock);
	sigset_t kick;
	sigemptyset(&kick);
	sigaddset(&kick, KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

	while (!machine_should_stop(m)) {
		int r = ioctl(p->fd, KVM_RUN, 0);
		run->immediate_exit = 0;
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue; /* kicked: look at the stop flag */
			log_err("vcpu%u: KVM_RUN: %s", v->index, strerror(errno));
			dump_vcpu(v);
			ret = -1;
			break;
		}
		if (kvm_handle_exit(v, k->run_size, run) < 0) {
			ret = -1;
			break;
		}
	}

	pthread_sigmask(SIG_BLOCK, &kick, NULL);
	pthread_mutex_lock(&p->kick_lock);
	p->in_run = false;
	pthread_mutex_unlock(&p->kick_lock);
	thread_run = NULL;
	if (ret < 0)
		machine_request_stop(m, VM_STOP_ERROR, 1);
	return ret;
}

/* ---- interrupts and fast paths ------------------------------------------ */

static void kvm_set_irq(struct machine *m, unsigned gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = level ? 1 : 0 };
	if (gsi >= IOAPIC_PINS || kvm_ioctl(engine_of(m)->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		log_once(LOG_WARN, "cannot set interrupt line %u: %s", gsi,
			 gsi >= IOAPIC_PINS ? "no such GSI" : strerror(errno));
}

static void kvm_send_msi(struct machine *m, uint64_t addr, uint32_t data)
{
	struct kvm_msi msi = {
		.address_lo = (uint32_t)addr,
		.address_hi = (uint32_t)(addr >> 32),
		.data = data,
	};
	if (kvm_ioctl(engine_of(m)->vm_fd, KVM_SIGNAL_MSI, &msi) < 0)
		log_once(LOG_WARN, "KVM_SIGNAL_MSI: %s", strerror(errno));
}

static int kvm_add_ioeventfd(struct machine *m, bool pio, uint64_t addr, unsigned len, int fd)
{
	struct kvm_ioeventfd ev = {
		.addr = addr,
		.len = len,
		.fd = fd,
		.flags = pio ? KVM_IOEVENTFD_FLAG_PIO : 0,
	};
	if (kvm_ioctl(engine_of(m)->vm_fd, KVM_IOEVENTFD, &ev) < 0)
		return -errno;
	return 0;
}

static int kvm_add_irqfd(struct machine *m, unsigned gsi, int fd)
{
	struct kvm_irqfd irqfd = { .fd = (uint32_t)fd, .gsi = gsi };
	if (kvm_ioctl(engine_of(m)->vm_fd, KVM_IRQFD, &irqfd) < 0)
		return -errno;
	return 0;
}

const struct accel_ops kvm_accel_ops = {
	.name = "kvm",
	.probe = kvm_probe,
	.vm_init = kvm_vm_init,
	.vcpu_init = kvm_vcpu_init,
	.vcpu_run = kvm_vcpu_run,
	.vcpu_kick = kvm_vcpu_kick,
	.get_state = kvm_get_state,
	.set_state = kvm_set_state,
	.set_irq = kvm_set_irq,
	.send_msi = kvm_send_msi,
	.add_ioeventfd = kvm_add_ioeventfd,
	.add_irqfd = kvm_add_irqfd,
	.vcpu_destroy = kvm_vcpu_destroy,
	.vm_destroy = kvm_vm_destroy,
};
