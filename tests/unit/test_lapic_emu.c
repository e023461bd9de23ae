/* End to end: tiny guest programs on the real software CPU (accel/emu)
 * against the emulated platform, no boot loader needed. They take LAPIC
 * timer interrupts (one-shot, periodic, TSC-deadline) while halted, PIT
 * ticks through the IOAPIC and through the PIC's virtual wire, and start a
 * second vCPU with INIT/SIPI and an NMI. Each program reports progress on
 * port 0xE9 and stops the VM with a status on port 0xF4. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accel/accel.h"
#include "hw/io.h"
#include "hw/lapic.h"
#include "lib/util.h"
#include "machine/machine.h"

#define RAM_SIZE   (16 * 1024 * 1024)
#define GDT_BASE   0x500
#define IDT_BASE   0x1000
#define DATA_BASE  0x7000   /* counters, reachable from real mode */
#define AP_BASE    0x8000   /* SIPI vector 0x08 */
#define CODE_BASE  0x10000
#define STACK_TOP  0x30000

/* The guest programs: 32-bit flat protected mode code, assembled here and
 * copied to CODE_BASE (jumps are relative; data lives at fixed addresses).
 * Counters: 0x7000 LAPIC timer, 0x7004 PIT via IOAPIC, 0x7008 PIT via PIC,
 * 0x7010 AP started, 0x7012 AP got its NMI. */
extern const uint8_t guest_blob[], guest_blob_end[];
extern const uint8_t g_timer[], g_pit_ioapic[], g_pit_pic[], g_smp[];
extern const uint8_t h_timer[], h_pit_ioapic[], h_pit_pic[];
extern const uint8_t ap_blob[], ap_blob_end[], ap_nmi[];

/* Waits with interrupts on until the dword at ADDR reaches N: cli; check;
 * sti; hlt (STI's shadow makes sti+hlt atomic, so no wakeup is lost). */
#define WAIT_FOR(label, addr, n)           \
	#label ":\n"                       \
	"  cli\n"                          \
	"  cmpl $" #n ", " #addr "\n"      \
	"  jae " #label "_done\n"          \
	"  sti\n"                          \
	"  hlt\n"                          \
	"  jmp " #label "\n"               \
	#label "_done:\n"                  \
	"  sti\n"

#define REPORT(ch) "  movb $" #ch ", %al\n  outb %al, $0xE9\n"
#define EXIT(code) "  movb $" #code ", %al\n  outb %al, $0xF4\n9:  hlt\n  jmp 9b\n"
#define LAPIC_EOI  "  movl $0, 0xFEE000B0\n"

__asm__(
	".pushsection .rodata\n"
	".code32\n"
	".global guest_blob, guest_blob_end, g_timer, g_pit_ioapic, g_pit_pic, g_smp\n"
	".global h_timer, h_pit_ioapic, h_pit_pic\n"
	"guest_blob:\n"

	/* LAPIC timer: one-shot 2 ms, periodic 1 ms x5, TSC deadline 2 ms. */
	"g_timer:\n"
	"  movl $0x1FF, 0xFEE000F0\n"          /* SVR: enable, spurious 0xFF */
	"  movl $0xB, 0xFEE003E0\n"            /* divide by 1 */
	"  movl $0x40, 0xFEE00320\n"           /* one-shot, vector 0x40 */
	"  movl $200000, 0xFEE00380\n"         /* 2 ms at 100 MHz */
	WAIT_FOR(t1, 0x7000, 1)
	REPORT('o')
	"  movl $0x20040, 0xFEE00320\n"        /* periodic */
	"  movl $100000, 0xFEE00380\n"
	WAIT_FOR(t2, 0x7000, 6)
	"  movl $0, 0xFEE00380\n"
	REPORT('p')
	"  movl $0x40040, 0xFEE00320\n"        /* TSC deadline */
	"  mfence\n"
	"  rdtsc\n"
	"  addl $4000000, %eax\n"              /* 2 ms at 2 GHz */
	"  adcl $0, %edx\n"
	"  movl $0x6E0, %ecx\n"
	"  wrmsr\n"
	WAIT_FOR(t3, 0x7000, 7)
	REPORT('d')
	EXIT(0)
	"h_timer:\n"
	"  incl 0x7000\n"
	LAPIC_EOI
	"  iret\n"

	/* PIT channel 0, mode 2, 1 ms, through IOAPIC pin 2 -> vector 0x41. */
	"g_pit_ioapic:\n"
	"  movl $0x1FF, 0xFEE000F0\n"
	"  movl $0x14, 0xFEC00000\n"
	"  movl $0x41, 0xFEC00010\n"           /* edge, fixed, unmasked */
	"  movl $0x15, 0xFEC00000\n"
	"  movl $0, 0xFEC00010\n"              /* to APIC 0 */
	"  movb $0x34, %al\n  outb %al, $0x43\n"
	"  movb $0xA9, %al\n  outb %al, $0x40\n"
	"  movb $0x04, %al\n  outb %al, $0x40\n"
	WAIT_FOR(p1, 0x7004, 5)
	REPORT('i')
	EXIT(0)
	"h_pit_ioapic:\n"
	"  incl 0x7004\n"
	LAPIC_EOI
	"  iret\n"

	/* The same ticks through the 8259A as Linux programs it, reaching the
	 * CPU through LINT0 in ExtINT mode (the APIC left software-disabled). */
	"g_pit_pic:\n"
	"  movb $0x11, %al\n  outb %al, $0x20\n"
	"  movb $0x30, %al\n  outb %al, $0x21\n"
	"  movb $0x04, %al\n  outb %al, $0x21\n"
	"  movb $0x01, %al\n  outb %al, $0x21\n"
	"  movb $0x11, %al\n  outb %al, $0xA0\n"
	"  movb $0x38, %al\n  outb %al, $0xA1\n"
	"  movb $0x02, %al\n  outb %al, $0xA1\n"
	"  movb $0x01, %al\n  outb %al, $0xA1\n"
	"  movb $0xFE, %al\n  outb %al, $0x21\n"  /* only IRQ0 */
	"  movb $0xFF, %al\n  outb %al, $0xA1\n"
	"  movb $0x34, %al\n  outb %al, $0x43\n"
	"  movb $0xA9, %al\n  outb %al, $0x40\n"
	"  movb $0x04, %al\n  outb %al, $0x40\n"
	WAIT_FOR(q1, 0x7008, 5)
	REPORT('8')
	EXIT(0)
	"h_pit_pic:\n"
	"  incl 0x7008\n"
	"  movb $0x20, %al\n  outb %al, $0x20\n"  /* non-specific EOI */
	"  iret\n"

	/* SMP: INIT, INIT de-assert, SIPI, SIPI to APIC 1 (as Linux), wait for
	 * the AP's flag, then an NMI it must take while halted. */
	"g_smp:\n"
	"  movl $0x1FF, 0xFEE000F0\n"
	"  movl $0x01000000, 0xFEE00310\n"
	"  movl $0x0000C500, 0xFEE00300\n"
	"  movl $0x00008500, 0xFEE00300\n"
	"  movl $0x00000608, 0xFEE00300\n"
	"  movl $0x00000608, 0xFEE00300\n"
	"1: pause\n"
	"  cmpw $0x600D, 0x7010\n"
	"  jne 1b\n"
	REPORT('a')
	"  movl $0x00000400, 0xFEE00300\n"     /* NMI to APIC 1 */
	"2: pause\n"
	"  cmpw $0xBEEF, 0x7012\n"
	"  jne 2b\n"
	REPORT('n')
	EXIT(0)
	"guest_blob_end:\n"

	/* The AP's real-mode trampoline at 0x8000 (CS=0x0800, IP=0). */
	".code16\n"
	".global ap_blob, ap_blob_end, ap_nmi\n"
	"ap_blob:\n"
	"  xorw %ax, %ax\n"
	"  movw %ax, %ds\n"
	"  movw $0x600D, 0x7010\n"
	"3: hlt\n"
	"  jmp 3b\n"
	"ap_nmi:\n"                            /* IVT[2] handler, CS=0x0800 */
	"  movw $0xBEEF, 0x7012\n"
	"  iret\n"
	"ap_blob_end:\n"
	".code64\n"
	".popsection\n");

struct guest {
	struct machine m;
	char out[64];
	unsigned n_out;
	pthread_mutex_t lock;
};

static uint64_t port_read(void *opaque, uint64_t off, unsigned size)
{
	return 0;
}

static void report_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
	struct guest *g = opaque;
	pthread_mutex_lock(&g->lock);
	if (g->n_out + 1 < sizeof(g->out))
		g->out[g->n_out++] = (char)v;
	pthread_mutex_unlock(&g->lock);
}

static void exit_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
	struct guest *g = opaque;
	machine_request_stop(&g->m, VM_STOP_EXIT, (int)(v & 0xFF));
}

static const struct io_ops report_ops = { .read = port_read, .write = report_write };
static const struct io_ops exit_ops = { .read = port_read, .write = exit_write };

static uint32_t code_addr(const uint8_t *sym)
{
	return CODE_BASE + (uint32_t)(sym - guest_blob);
}

static void set_gate(struct guest *g, unsigned vector, uint32_t handler)
{
	uint8_t gate[8] = {
		(uint8_t)handler, (uint8_t)(handler >> 8), 0x08, 0x00,
		0x00, 0x8E, (uint8_t)(handler >> 16), (uint8_t)(handler >> 24),
	};
	assert_int_equal(guest_write(&g->m.ram, IDT_BASE + vector * 8, gate, 8), 0);
}

static struct guest *guest_new(unsigned ncpus, const uint8_t *entry)
{
	struct guest *g = calloc(1, sizeof(*g));
	struct machine *m = &g->m;
	pthread_mutex_init(&g->lock, NULL);
	m->ncpus = ncpus;
	m->accel = &emu_accel_ops;
	m->pio = io_space_new("pio");
	m->mmio = io_space_new("mmio");
	assert_int_equal(guest_ram_init(&m->ram, RAM_SIZE), 0);
	assert_int_equal(io_register(m->pio, 0xE9, 1, &report_ops, g, "report"), 0);
	assert_int_equal(io_register(m->pio, 0xF4, 1, &exit_ops, g, "exit"), 0);
	assert_int_equal(m->accel->vm_init(m), 0);
	for (unsigned i = 0; i < ncpus; i++) {
		m->vcpus[i].m = m;
		m->vcpus[i].index = i;
		assert_int_equal(m->accel->vcpu_init(&m->vcpus[i]), 0);
	}

	/* GDT: null, flat 32-bit code 0x08, flat data 0x10. */
	static const uint8_t gdt[24] = {
		0, 0, 0, 0, 0, 0, 0, 0,
		0xFF, 0xFF, 0, 0, 0, 0x9B, 0xCF, 0,
		0xFF, 0xFF, 0, 0, 0, 0x93, 0xCF, 0,
	};
	assert_int_equal(guest_write(&m->ram, GDT_BASE, gdt, sizeof(gdt)), 0);
	assert_int_equal(guest_write(&m->ram, CODE_BASE, guest_blob,
				     (uint64_t)(guest_blob_end - guest_blob)), 0);
	assert_int_equal(guest_write(&m->ram, AP_BASE, ap_blob,
				     (uint64_t)(ap_blob_end - ap_blob)), 0);
	/* Real-mode IVT[2] (NMI) for the AP: 0800:(ap_nmi - ap_blob). */
	uint16_t ivt[2] = { (uint16_t)(ap_nmi - ap_blob), AP_BASE >> 4 };
	assert_int_equal(guest_write(&m->ram, 2 * 4, ivt, sizeof(ivt)), 0);
	set_gate(g, 0x40, code_addr(h_timer));
	set_gate(g, 0x41, code_addr(h_pit_ioapic));
	set_gate(g, 0x30, code_addr(h_pit_pic));

	struct x86_cpu_state s;
	x86_reset_state(&s, true);
	x86_flat_segment(&s.seg[SEG_CS], 0x08, true, false);
	for (int i = SEG_ES; i <= SEG_GS; i++)
		if (i != SEG_CS)
			x86_flat_segment(&s.seg[i], 0x10, false, false);
	s.gdt = (struct x86_dtable){ GDT_BASE, sizeof(gdt) - 1 };
	s.idt = (struct x86_dtable){ IDT_BASE, 256 * 8 - 1 };
	s.cr0 = X86_CR0_PE | X86_CR0_ET;
	s.rip = code_addr(entry);
	s.gpr[R_RSP] = STACK_TOP;
	s.rflags = 2;
	assert_int_equal(m->accel->set_state(&m->vcpus[0], &s), 0);
	return g;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	v->m->accel->vcpu_run(v);
	return NULL;
}

/* Runs the guest until it stops (or timeout_s passes); returns its exit
 * status, -1 on timeout. */
static int guest_run(struct guest *g, unsigned timeout_s)
{
	struct machine *m = &g->m;
	for (unsigned i = 0; i < m->ncpus; i++)
		pthread_create(&m->vcpus[i].thread, NULL, vcpu_thread, &m->vcpus[i]);
	uint64_t end = clock_ns() + timeout_s * 1000000000ULL;
	while (!machine_should_stop(m) && clock_ns() < end)
		usleep(1000);
	bool timed_out = !machine_should_stop(m);
	if (timed_out)
		machine_request_stop(m, VM_STOP_ERROR, -1);
	for (unsigned i = 0; i < m->ncpus; i++)
		pthread_join(m->vcpus[i].thread, NULL);
	return timed_out ? -1 : m->exit_code;
}

static void guest_free(struct guest *g)
{
	struct machine *m = &g->m;
	for (unsigned i = 0; i < m->ncpus; i++)
		m->accel->vcpu_destroy(&m->vcpus[i]);
	m->accel->vm_destroy(m);
	guest_ram_free(&m->ram);
	io_space_free(m->pio);
	io_space_free(m->mmio);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

static uint32_t ram32(struct guest *g, uint64_t gpa)
{
	uint32_t v = 0;
	guest_read(&g->m.ram, gpa, &v, sizeof(v));
	return v;
}

static void test_lapic_timer_modes(void **state)
{
	struct guest *g = guest_new(1, g_timer);
	uint64_t t0 = clock_ns();
	int rc = guest_run(g, 30);
	uint64_t dt = clock_ns() - t0;
	assert_string_equal(g->out, "opd");
	assert_int_equal(rc, 0);
	assert_int_equal(ram32(g, 0x7000), 7);
	/* 2 + 5 + 2 ms of timers at least. */
	assert_true(dt >= 9000000);
	guest_free(g);
}

static void test_pit_through_ioapic(void **state)
{
	struct guest *g = guest_new(1, g_pit_ioapic);
	int rc = guest_run(g, 30);
	assert_string_equal(g->out, "i");
	assert_int_equal(rc, 0);
	assert_true(ram32(g, 0x7004) >= 5);
	guest_free(g);
}

static void test_pit_through_pic(void **state)
{
	struct guest *g = guest_new(1, g_pit_pic);
	int rc = guest_run(g, 30);
	assert_string_equal(g->out, "8");
	assert_int_equal(rc, 0);
	assert_true(ram32(g, 0x7008) >= 5);
	guest_free(g);
}

static void test_init_sipi_nmi(void **state)
{
	struct guest *g = guest_new(2, g_smp);
	int rc = guest_run(g, 30);
	assert_string_equal(g->out, "an");
	assert_int_equal(rc, 0);
	guest_free(g);
}

int main(void)
{
	char why[128];
	if (!emu_accel_ops.probe || !emu_accel_ops.probe(why, sizeof(why))) {
		printf("skipping: the software CPU is not available\n");
		return 0;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lapic_timer_modes),
		cmocka_unit_test(test_pit_through_ioapic),
		cmocka_unit_test(test_pit_through_pic),
		cmocka_unit_test(test_init_sipi_nmi),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
