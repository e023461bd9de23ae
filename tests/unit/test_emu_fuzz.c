/* Hostile guest code against the software CPU: random instruction bytes
 * (biased towards prefixes and the opcodes that touch system state) run
 * in real mode, 32-bit protected mode and long mode, with random register
 * values. Whatever the bytes do (fault, loop, halt, rewrite the IDT or
 * the page tables, switch modes, triple fault), the VMM must survive:
 * no crash and no sanitizer report (this runs under ASan and UBSan), and
 * every run must end, by the exception stub's exit, a reset request, or
 * the watchdog below.
 *
 * XVM_EMU_FUZZ_ITERS and XVM_EMU_FUZZ_SEED run longer or other searches. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <cmocka.h>

#include "emu_harness.h"
#include "fuzz_rng.h"
#include "lib/log.h"

#define CODE_GPA 0x100000ULL
#define IDT_GPA 0x6000ULL
#define STUB_GPA 0x7000ULL
#define STUB_EXIT 0xEE /* the exception stub's exit code */
#define RAM_SIZE (4 * MiB)

/* A watchdog stops a run that does not end by itself (a guest loop, or
 * HLT with interrupts off): the VM must honour a stop at any time. */
struct watchdog {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct machine *m;  /* the machine running now, or NULL */
	unsigned gen;       /* bumped per run */
	bool quit;
	unsigned fired;
};

static void *watchdog_main(void *arg)
{
	struct watchdog *w = arg;
	pthread_mutex_lock(&w->lock);
	while (!w->quit) {
		unsigned gen = w->gen;
		struct machine *m = w->m;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		int r = pthread_cond_timedwait(&w->cond, &w->lock, &ts);
		if (r != 0 && m && w->m == m && w->gen == gen && !w->quit) {
			machine_request_stop(m, VM_STOP_EXIT, 0x1000);
			w->fired++;
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void watchdog_set(struct watchdog *w, struct machine *m)
{
	pthread_mutex_lock(&w->lock);
	w->m = m;
	w->gen++;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

enum mode { MODE_REAL, MODE_PROT32, MODE_LONG, MODE_USER64, MODE_COUNT };
static const char *const mode_name[MODE_COUNT] = { "real", "prot32", "long", "user64" };

/* Bytes that make random code reach more of the decoder and the system
 * instructions than uniform bytes do. */
static const uint8_t interesting[] = {
	0x66, 0x67, 0xF2, 0xF3, 0xF0, 0x2E, 0x26, 0x64, 0x65, 0x40, 0x48, 0x4C, 0x41,
	0x0F, 0x0F, 0x0F, 0x0F, 0x01, 0x20, 0x22, 0x30, 0x32, 0x38, 0x3A, 0xA2, 0x00,
	0xCF, 0xCD, 0xCC, 0xF4, 0xFA, 0xFB, 0x8E, 0x9A, 0xEA, 0xFF, 0xA4, 0xAA, 0xAE,
	0xC7, 0xC2, 0xCA, 0x05, 0x07, 0x35, 0x34, 0xAE, 0xC8, 0xD8, 0xDD, 0xDF, 0xE6,
	0xEE, 0xEC, 0x6C, 0x6E, 0x17, 0x1F, 0x8F, 0x9D, 0x62, 0xD6, 0x0B, 0xB9,
};

static void random_code(uint8_t *p, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		uint64_t r = rnd();
		p[k] = (r & 3) == 0 ? interesting[(r >> 8) % sizeof(interesting)] : (uint8_t)(r >> 16);
	}
}

/* Every vector goes to a stub that exits with STUB_EXIT:
 * mov al, 0xEE; out 0xF4, al (the same bytes in all modes). */
static void install_stub(uint8_t *h)
{
	static const uint8_t stub[] = { 0xB0, STUB_EXIT, 0xE6, 0xF4, 0xEB, 0xFE };
	memcpy(h + STUB_GPA, stub, sizeof(stub));
}

/* An IDT of 256 interrupt gates (8 bytes in protected mode, 16 in long
 * mode) to the stub, code segment 0x08, DPL 0. */
static void install_idt(uint8_t *h, struct x86_cpu_state *s, unsigned gate_size)
{
	for (int v = 0; v < 256; v++) {
		uint8_t *g = h + IDT_GPA + v * gate_size;
		memset(g, 0, gate_size);
		g[0] = STUB_GPA & 0xFF;
		g[1] = (STUB_GPA >> 8) & 0xFF;
		g[2] = 0x08;
		g[5] = 0x8E;
	}
	s->idt.base = IDT_GPA;
	s->idt.limit = (uint16_t)(256 * gate_size - 1);
}

static void setup(struct machine *m, struct x86_cpu_state *s, enum mode mode)
{
	uint8_t *h = m->ram.host;
	install_stub(h);
	switch (mode) {
	case MODE_LONG: {
		harness_long_mode(m, s, CODE_GPA);
		install_idt(h, s, 16);
		break;
	}
	case MODE_USER64: {
		/* Long mode at CPL3: exceptions switch to the TSS's RSP0. */
		setup(m, s, MODE_LONG);
		uint64_t gdt[7] = { 0, 0x00AF9B000000FFFFULL, 0x00CF93000000FFFFULL,
				    0x00CFF3000000FFFFULL, 0x00AFFB000000FFFFULL, 0, 0 };
		uint64_t tss = 0x5000;
		gdt[5] = 0x67 | (tss & 0xFFFFFF) << 16 | 0x89ULL << 40 | ((tss >> 24) & 0xFF) << 56;
		gdt[6] = tss >> 32;
		memcpy(h + 0x500, gdt, sizeof(gdt));
		memset(h + tss, 0, 0x68);
		uint64_t rsp0 = 0x90000;
		memcpy(h + tss + 4, &rsp0, 8);
		s->gdt.limit = sizeof(gdt) - 1;
		x86_flat_segment(&s->seg[SEG_CS], 0x23, true, true);
		s->seg[SEG_CS].dpl = 3;
		for (int k = 0; k < SEG_COUNT; k++) {
			if (k == SEG_CS || k == SEG_LDT || k == SEG_TR)
				continue;
			x86_flat_segment(&s->seg[k], 0x1B, false, false);
			s->seg[k].dpl = 3;
		}
		struct x86_segment *tr = &s->seg[SEG_TR];
		memset(tr, 0, sizeof(*tr));
		tr->selector = 0x28;
		tr->base = tss;
		tr->limit = 0x67;
		tr->type = 0xB;
		tr->present = 1;
		s->rflags = 0x202;
		break;
	}
	case MODE_PROT32: {
		uint64_t gdt[3] = { 0, 0x00CF9B000000FFFFULL, 0x00CF93000000FFFFULL };
		memcpy(h + 0x500, gdt, sizeof(gdt));
		harness_flat_state(s, false);
		s->gdt.limit = sizeof(gdt) - 1;
		install_idt(h, s, 8);
		s->cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE;
		s->cr4 = X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;
		s->rflags = 2;
		s->rip = CODE_GPA;
		s->gpr[R_RSP] = 0x80000;
		break;
	}
	case MODE_REAL:
	default: {
		/* Code at 1000:0000 (linear 0x10000), the IVT at 0 pointing to
		 * 0000:7000. */
		for (int v = 0; v < 256; v++) {
			uint16_t ivt[2] = { (uint16_t)STUB_GPA, 0 };
			memcpy(h + v * 4, ivt, 4);
		}
		x86_reset_state(s, true);
		s->seg[SEG_CS].selector = 0x1000;
		s->seg[SEG_CS].base = 0x10000;
		s->rip = 0;
		s->gpr[R_RSP] = 0x7000;
		break;
	}
	}
}

static uint64_t random_reg(void)
{
	switch (rnd() % 4) {
	case 0: return rnd() % 0x1000;              /* small */
	case 1: return CODE_GPA + rnd() % 0x2000;    /* near the code */
	case 2: return rnd() % (RAM_SIZE + 0x10000); /* anywhere in RAM and just past it */
	default: return rnd();                       /* anything */
	}
}

struct fuzz_result {
	unsigned runs, stub_exits, resets, watchdog, other;
};

/* One machine per mode, reused run after run (creating the engine's
 * per-vCPU caches for every run is slow under ASan): each run rewrites
 * RAM as a loader does, through the notification that drops decoded
 * code, and starts from a fresh register state. */
static void fuzz_one(struct watchdog *w, struct machine *m, enum mode mode, struct fuzz_result *res)
{
	struct x86_cpu_state s;
	/* RAM full of INT3: code that jumps or runs off the random bytes
	 * traps at once instead of sliding through zeroed RAM. */
	memset(m->ram.host, 0xCC, RAM_SIZE);
	setup(m, &s, mode);
	uint64_t code = mode == MODE_REAL ? 0x10000 : CODE_GPA;
	random_code(m->ram.host + code, 64);
	for (int r = 0; r < 16; r++)
		if (r != R_RSP)
			s.gpr[r] = random_reg();
	s.rflags = 2 | (rnd() & 0xCD5); /* random arithmetic flags and DF */
	m->ram.written(m->ram.written_opaque, 0, RAM_SIZE);
	assert_int_equal(emu_accel_ops.set_state(&m->vcpus[0], &s), 0);
	__atomic_store_n(&m->run_state, VM_RUNNING, __ATOMIC_RELEASE);
	m->exit_code = 0;

	watchdog_set(w, m);
	emu_accel_ops.vcpu_run(&m->vcpus[0]);
	watchdog_set(w, NULL);

	/* The run ended, in one of the ways a guest can end it. */
	res->runs++;
	enum vm_run_state st = m->run_state;
	if (st == VM_STOP_EXIT && m->exit_code == STUB_EXIT)
		res->stub_exits++;
	else if (st == VM_STOP_RESET)
		res->resets++;
	else if (st == VM_STOP_EXIT && m->exit_code == 0x1000)
		res->watchdog++;
	else
		res->other++;
	assert_true(st == VM_STOP_EXIT || st == VM_STOP_RESET || st == VM_STOP_POWEROFF);
	/* The state is still readable and sane. */
	struct x86_cpu_state out;
	assert_int_equal(emu_accel_ops.get_state(&m->vcpus[0], &out), 0);
	if (getenv("XVM_EMU_FUZZ_DEBUG") && st == VM_STOP_EXIT && m->exit_code == 0x1000) {
		fprintf(stderr, "watchdog in %s mode: cs=%04x rip=%llx rflags=%llx code:", mode_name[mode],
			out.seg[SEG_CS].selector, (unsigned long long)out.rip, (unsigned long long)out.rflags);
		for (int k = 0; k < 24; k++)
			fprintf(stderr, " %02x", m->ram.host[code + k]);
		fprintf(stderr, "\n");
	}
}

static void test_random_code(void **state)
{
	(void)state;
	const char *e = getenv("XVM_EMU_FUZZ_ITERS");
	unsigned iters = e ? (unsigned)strtoul(e, NULL, 0) : 2000;
	rnd_seed("XVM_EMU_FUZZ_SEED", 0x9E3779B97F4A7C15ULL);
	xvm_log_level = LOG_ERROR; /* unimplemented-instruction logs are expected */

	struct watchdog w = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, watchdog_main, &w), 0);

	struct fuzz_result res[MODE_COUNT] = { { 0 } };
	struct machine *ms[MODE_COUNT];
	for (int md = 0; md < MODE_COUNT; md++)
		ms[md] = harness_new(RAM_SIZE, 1);
	for (unsigned k = 0; k < iters; k++)
		fuzz_one(&w, ms[k % MODE_COUNT], (enum mode)(k % MODE_COUNT), &res[k % MODE_COUNT]);
	for (int md = 0; md < MODE_COUNT; md++)
		harness_free(ms[md]);

	pthread_mutex_lock(&w.lock);
	w.quit = true;
	pthread_cond_signal(&w.cond);
	pthread_mutex_unlock(&w.lock);
	pthread_join(t, NULL);

	for (int md = 0; md < MODE_COUNT; md++) {
		printf("%-7s runs %u: exception stub %u, reset %u, watchdog %u, other %u\n",
		       mode_name[md], res[md].runs, res[md].stub_exits, res[md].resets,
		       res[md].watchdog, res[md].other);
		/* Random bytes fault quickly in every mode: most runs must reach
		 * the exception stub through the IDT/IVT (a fuzz that never
		 * delivers an exception tests nothing). */
		assert_true(res[md].stub_exits * 2 > res[md].runs);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_code),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
