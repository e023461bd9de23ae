/* Differential tests of the software CPU against the host CPU.
 *
 * For every instruction form in forms.c: random registers, flags, XMM
 * registers and memory; the instruction runs natively (user mode, in
 * this process, from a code page at a fixed address) and on the emulator
 * (one step, same addresses through identity paging) with RSP in the
 * data page (signals run on an alternate stack); registers, the
 * architecturally defined flags, XMM registers, memory and the fault (if
 * any) must agree. Undefined flags are masked per form with the SDM's
 * words (see forms.c).
 *
 * Usage: emu-diff [-n iterations] [-s seed] [-f name-filter] [-v] [-g]
 * -g: generic handlers only (no fast paths from fast.c).
 * emu-diff --coverage [-v]: the coverage gate (coverage.c): every
 * implemented encoding has a form or an exclusion with its unit test. */
#include <errno.h>
#include <getopt.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <asm/prctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "accel/emu/cpu.h"
#include "diff.h"
#include "emu_harness.h"

/* Native runner (below, in assembly): loads state, jumps to code, which
 * ends with a jump to diff_native_return; stores state back. */
struct nstate {
	uint64_t gpr[16];
	uint64_t rflags;
	uint8_t xmm[16][16];
	uint8_t pad[8];
	/* x87/MMX/MXCSR state as an FXSAVE image (XMM from xmm[] above) */
	uint8_t fx[512] __attribute__((aligned(16)));
};
_Static_assert(__builtin_offsetof(struct nstate, fx) == 400, "the native stub uses offset 400");
void diff_native_run(struct nstate *s, void *code);
extern char diff_native_return[];

__asm__(".text\n"
	".globl diff_native_run\n"
	"diff_native_run:\n"
	"push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n"
	"mov %rdi, diff_cur_state(%rip)\n"
	"mov %rsp, diff_saved_rsp(%rip)\n"
	"mov %rsi, diff_cur_code(%rip)\n"
	"fxrstor64 400(%rdi)\n"
	"movdqu 136(%rdi), %xmm0\n movdqu 152(%rdi), %xmm1\n movdqu 168(%rdi), %xmm2\n"
	"movdqu 184(%rdi), %xmm3\n movdqu 200(%rdi), %xmm4\n movdqu 216(%rdi), %xmm5\n"
	"movdqu 232(%rdi), %xmm6\n movdqu 248(%rdi), %xmm7\n movdqu 264(%rdi), %xmm8\n"
	"movdqu 280(%rdi), %xmm9\n movdqu 296(%rdi), %xmm10\n movdqu 312(%rdi), %xmm11\n"
	"movdqu 328(%rdi), %xmm12\n movdqu 344(%rdi), %xmm13\n movdqu 360(%rdi), %xmm14\n"
	"movdqu 376(%rdi), %xmm15\n"
	"pushq 128(%rdi)\n popfq\n"
	"mov 0(%rdi), %rax\n mov 8(%rdi), %rcx\n mov 16(%rdi), %rdx\n mov 24(%rdi), %rbx\n"
	"mov 40(%rdi), %rbp\n mov 48(%rdi), %rsi\n mov 64(%rdi), %r8\n mov 72(%rdi), %r9\n"
	"mov 80(%rdi), %r10\n mov 88(%rdi), %r11\n mov 96(%rdi), %r12\n mov 104(%rdi), %r13\n"
	"mov 112(%rdi), %r14\n mov 120(%rdi), %r15\n mov 32(%rdi), %rsp\n mov 56(%rdi), %rdi\n"
	"jmp *diff_cur_code(%rip)\n"
	".globl diff_native_return\n"
	"diff_native_return:\n"
	"mov %rdi, diff_tmp(%rip)\n"
	"mov diff_cur_state(%rip), %rdi\n"
	"mov %rax, 0(%rdi)\n mov %rcx, 8(%rdi)\n mov %rdx, 16(%rdi)\n mov %rbx, 24(%rdi)\n"
	"mov %rbp, 40(%rdi)\n mov %rsi, 48(%rdi)\n mov %r8, 64(%rdi)\n mov %r9, 72(%rdi)\n"
	"mov %r10, 80(%rdi)\n mov %r11, 88(%rdi)\n mov %r12, 96(%rdi)\n mov %r13, 104(%rdi)\n"
	"mov %r14, 112(%rdi)\n mov %r15, 120(%rdi)\n"
	"mov diff_tmp(%rip), %rax\n mov %rax, 56(%rdi)\n mov %rsp, 32(%rdi)\n"
	"mov diff_saved_rsp(%rip), %rsp\n" /* not the form's stack in the data page */
	"pushfq\n popq 128(%rdi)\n cld\n"
	"movdqu %xmm0, 136(%rdi)\n movdqu %xmm1, 152(%rdi)\n movdqu %xmm2, 168(%rdi)\n"
	"movdqu %xmm3, 184(%rdi)\n movdqu %xmm4, 200(%rdi)\n movdqu %xmm5, 216(%rdi)\n"
	"movdqu %xmm6, 232(%rdi)\n movdqu %xmm7, 248(%rdi)\n movdqu %xmm8, 264(%rdi)\n"
	"movdqu %xmm9, 280(%rdi)\n movdqu %xmm10, 296(%rdi)\n movdqu %xmm11, 312(%rdi)\n"
	"movdqu %xmm12, 328(%rdi)\n movdqu %xmm13, 344(%rdi)\n movdqu %xmm14, 360(%rdi)\n"
	"movdqu %xmm15, 376(%rdi)\n"
	"fxsave64 400(%rdi)\n"
	"mov diff_saved_rsp(%rip), %rsp\n"
	"pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n"
	"ret\n"
	".data\n"
	"diff_cur_state: .quad 0\n diff_saved_rsp: .quad 0\n diff_cur_code: .quad 0\n diff_tmp: .quad 0\n"
	".text\n");

#define CODE_ADDR 0x10000000UL
#define DATA_ADDR 0x10100000UL
#define DATA_SIZE 0x2000UL
#define DATA_STACK 0x1800UL  /* RSP: pushes and calls write below it */
#define GUEST_RAM (0x10200000UL + 2 * 1024 * 1024)

static sigjmp_buf native_jmp;
static volatile int native_signal;

static void on_signal(int sig)
{
	native_signal = sig;
	siglongjmp(native_jmp, 1);
}

static uint64_t rng_state;
uint64_t diff_rand(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Operand values that find bugs: edges more often than uniform. */
uint64_t diff_rand_value(void)
{
	switch (diff_rand() % 12) {
	case 0: return 0;
	case 1: return 1;
	case 2: return ~0ULL;
	case 3: return 0x8000000000000000ULL >> (diff_rand() % 4 * 16 + 15 - 15);
	case 4: return 0x7FFFFFFFULL;
	case 5: return 0x80000000ULL;
	case 6: return 0xFF;
	case 7: return 0x80;
	case 8: return diff_rand() % 70;
	case 9: return (uint64_t)-(int64_t)(diff_rand() % 70);
	default: return diff_rand();
	}
}

/* Memory contents: a window at a random 16-byte offset into a pool of
 * values of the form's kind (integers, lanes, text, 80-bit reals, BCD),
 * built once per kind: cheaper than drawing 1K values per case. */
#define POOL_SIZE (64 * 1024)
static const uint8_t *pattern_pool(uint8_t fp)
{
	static uint8_t *pools[DIFF_MEM_BCD + 1];
	if (fp > DIFF_MEM_BCD)
		fp = 0;
	if (!pools[fp]) {
		uint8_t *p = malloc(POOL_SIZE);
		if (!p)
			abort();
		for (unsigned k = 0; k < POOL_SIZE; k += 8) {
			uint64_t v = fp && fp < DIFF_MEM_M80 ? diff_rand_fp(fp) : diff_rand_value();
			memcpy(p + k, &v, 8);
			if (k % 16 == 0 && fp == DIFF_MEM_M80)
				diff_rand_ld(p + k);
			else if (k % 16 == 0 && fp == DIFF_MEM_BCD)
				diff_rand_bcd(p + k);
		}
		pools[fp] = p;
	}
	return pools[fp];
}

static bool gs_is_data; /* GS base = DIFF_GS_BASE natively and emulated */

static bool host_has(int needs)
{
	switch (needs) {
	case DIFF_NEEDS_SSSE3: return __builtin_cpu_supports("ssse3");
	case DIFF_NEEDS_SSE41: return __builtin_cpu_supports("sse4.1");
	case DIFF_NEEDS_SSE42: return __builtin_cpu_supports("sse4.2");
	case DIFF_NEEDS_GS: return gs_is_data;
	default: return true;
	}
}

static int vector_of_signal(int sig)
{
	switch (sig) {
	case SIGFPE: return EXC_DE;
	case SIGILL: return EXC_UD;
	case SIGSEGV: case SIGBUS: return EXC_GP; /* #GP or #PF: both are "faulted" */
	default: return -2;
	}
}

/* Random x87 state: interesting register contents, random TOP, tags and
 * condition codes, extended precision, random rounding, all exceptions
 * masked; then the form's constraints (valid/empty registers, domains). */
static void rand_fx(const struct diff_form *form, uint8_t *fx)
{
	memset(fx, 0, 512);
	uint16_t fcw = (uint16_t)(0x037F | (diff_rand() & 3) << 10);
	unsigned top = diff_rand() & 7;
	uint16_t fsw = (uint16_t)((top << 11) | (diff_rand() & FSW_CC));
	uint8_t atag = (uint8_t)diff_rand();
	for (int k = 0; k < 8; k++) {
		unsigned phys = (top + k) & 7;
		if (k < form->st_valid)
			atag |= (uint8_t)(1 << phys);
		if (k >= 8 - form->st_free)
			atag &= (uint8_t)~(1 << phys);
		diff_rand_ld(fx + 32 + 16 * k);
	}
	memcpy(fx, &fcw, 2);
	memcpy(fx + 2, &fsw, 2);
	fx[4] = atag;
	uint32_t mxcsr = 0x1F80;
	memcpy(fx + 24, &mxcsr, 4);
	if (form->fx_setup)
		form->fx_setup(form, fx);
}

/* 80-bit values as ordered integers (sign-magnitude to two's complement
 * of exponent:fraction), for the ulp distance of transcendentals. */
static __int128 ld_key(const uint8_t *b)
{
	uint64_t mant;
	uint16_t se;
	memcpy(&mant, b, 8);
	memcpy(&se, b + 8, 2);
	__int128 k = ((__int128)(se & 0x7FFF) << 63) | (mant & ~(1ULL << 63));
	return (se & 0x8000) ? -k : k;
}

static bool ld_isnan(const uint8_t *b)
{
	uint64_t mant;
	uint16_t se;
	memcpy(&mant, b, 8);
	memcpy(&se, b + 8, 2);
	return (se & 0x7FFF) == 0x7FFF && (mant << 1) != 0;
}

/* Compares the x87/MMX/SSE control state of two FXSAVE images; FOP, FIP
 * and FDP are implementation-specific and not compared; FSW exception
 * flags and MXCSR exception flags are not modelled (docs/emu.md). */
static void compare_fx(const struct diff_form *form, const uint8_t *in, const uint8_t *n, const uint8_t *e,
		       char *why, size_t len)
{
	uint16_t nw, ew;
	memcpy(&nw, n, 2);
	memcpy(&ew, e, 2);
	if (nw != ew) {
		snprintf(why, len, "fcw: native %04x emulated %04x", nw, ew);
		return;
	}
	memcpy(&nw, n + 2, 2);
	memcpy(&ew, e + 2, 2);
	uint16_t m = (uint16_t)(0x3800 | (FSW_CC & ~form->fsw_undef));
	if (form->undef_fsw)
		m &= (uint16_t)~form->undef_fsw(form, in);
	if ((nw ^ ew) & m) {
		snprintf(why, len, "fsw: native %04x emulated %04x (compared %04x)", nw, ew, m);
		return;
	}
	if (n[4] != e[4]) {
		snprintf(why, len, "abridged tag: native %02x emulated %02x", n[4], e[4]);
		return;
	}
	uint32_t nm, em;
	memcpy(&nm, n + 24, 4);
	memcpy(&em, e + 24, 4);
	if ((nm ^ em) & ~0x3Fu) {
		snprintf(why, len, "mxcsr: native %08x emulated %08x", nm, em);
		return;
	}
	for (int k = 0; k < 8; k++) {
		const uint8_t *a = n + 32 + 16 * k, *b = e + 32 + 16 * k;
		if (!memcmp(a, b, 10))
			continue;
		if (form->undef_st && form->undef_st(form, in, k))
			continue;
		if (form->st_ulps) {
			/* "the worst case error on transcendental functions is less
			 * than 1 ulp when rounding to the nearest (even) and less than
			 * 1.5 ulps when rounding in other modes" (SDM vol. 1, 8.3.10):
			 * the emulator's libm has its own error: st_ulps in all */
			if (ld_isnan(a) && ld_isnan(b))
				continue;
			__int128 d = ld_key(a) - ld_key(b);
			if (d <= form->st_ulps && d >= -(int)form->st_ulps)
				continue;
		}
		uint64_t am, bm;
		uint16_t ae, be;
		memcpy(&am, a, 8);
		memcpy(&ae, a + 8, 2);
		memcpy(&bm, b, 8);
		memcpy(&be, b + 8, 2);
		snprintf(why, len, "st%d: native %04x:%016llx emulated %04x:%016llx", k, ae,
			 (unsigned long long)am, be, (unsigned long long)bm);
		return;
	}
}

static void print_fx(const char *what, const uint8_t *fx)
{
	uint16_t fcw, fsw;
	memcpy(&fcw, fx, 2);
	memcpy(&fsw, fx + 2, 2);
	printf("     %s: fcw %04x fsw %04x tag %02x", what, fcw, fsw, fx[4]);
	for (int k = 0; k < 8; k++) {
		uint64_t m;
		uint16_t e;
		memcpy(&m, fx + 32 + 16 * k, 8);
		memcpy(&e, fx + 40 + 16 * k, 2);
		printf(" st%d=%04x:%016llx", k, e, (unsigned long long)m);
	}
	printf("\n");
}

/* Runs the prepared code natively; returns the signal it raised or 0.
 * Kept out of main() so the non-local return cannot clobber its locals. */
static __attribute__((noinline)) int run_native(struct nstate *s, void *code)
{
	static uint8_t host_fx[512] __attribute__((aligned(16)));
	__asm__ volatile("fxsave64 %0" : "=m"(host_fx));
	native_signal = 0;
	if (!sigsetjmp(native_jmp, 1))
		diff_native_run(s, code);
	/* the emulator computes with the host's x87: give it its state back */
	__asm__ volatile("fxrstor64 %0" : : "m"(host_fx));
	return native_signal;
}

int main(int argc, char **argv)
{
	unsigned iters = 2000;
	uint64_t seed = (uint64_t)time(NULL);
	const char *filter = NULL;
	bool verbose = false, jit = false, coverage = false;
	int opt;
	static const struct option longopts[] = { { "coverage", no_argument, NULL, 'c' }, { NULL, 0, NULL, 0 } };
	while ((opt = getopt_long(argc, argv, "n:s:f:vgjc", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n': iters = (unsigned)strtoul(optarg, NULL, 0); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'f': filter = optarg; break;
		case 'v': verbose = true; break;
		case 'g': emu_no_fast_paths = true; break;
		case 'j': jit = true; break;
		case 'c': coverage = true; break;
		default:
			fprintf(stderr, "usage: emu-diff [-n iterations] [-s seed] [-f filter] [-v] [-g | -j]\n"
					"       emu-diff --coverage [-v]\n");
			return 2;
		}
	}
	if (coverage)
		return diff_coverage(verbose);
	rng_state = seed | 1;
	/* -j: every form compiled at its first run and run as compiled code */
	if (jit) {
		setenv("XVM_EMU_JIT", "1", 1);
		setenv("XVM_EMU_JIT_THRESHOLD", "1", 1);
	}
	printf("emu-diff: seed %llu, %u iterations per form%s\n", (unsigned long long)seed, iters,
	       emu_no_fast_paths ? ", generic handlers" : jit ? ", JIT" : "");

	uint8_t *code = mmap((void *)CODE_ADDR, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	uint8_t *data = mmap((void *)DATA_ADDR, DATA_SIZE, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (code != (void *)CODE_ADDR || data != (void *)DATA_ADDR) {
		fprintf(stderr, "emu-diff: cannot map the fixed test pages: %s\n", strerror(errno));
		return 77;
	}
	/* forms run with RSP in the data page: signals need their own stack */
	static uint8_t altstack[64 * 1024];
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
	sigaltstack(&ss, NULL);
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_NODEFER | SA_ONSTACK };
	sigaction(SIGFPE, &sa, NULL);
	sigaction(SIGILL, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);

	struct machine *m = harness_new(GUEST_RAM, 1);
	struct x86_cpu_state boot;
	harness_long_mode(m, &boot, CODE_ADDR);
	boot.cr0 &= ~X86_CR0_WP;
	emu_accel_ops.set_state(&m->vcpus[0], &boot);
	struct emu_cpu *c = emu_test_cpu(&m->vcpus[0]);
	/* user mode like the native side: CPL 3 code and data */
	c->seg[SEG_CS].selector = 0x1B;
	c->seg[SEG_CS].dpl = 3;
	c->cpl = 3;
	uint8_t *gcode = m->ram.host + CODE_ADDR, *gdata = m->ram.host + DATA_ADDR;
	/* GS overrides relative to the data area (glibc does not use GS) */
	gs_is_data = syscall(SYS_arch_prctl, ARCH_SET_GS, DIFF_GS_BASE) == 0;
	c->seg[SEG_GS].base = DIFF_GS_BASE;

	unsigned nforms = 0, failed_forms = 0, skipped = 0;
	unsigned long cases = 0;
	const struct diff_form *forms = diff_forms(&nforms);
	for (unsigned f = 0; f < nforms; f++) {
		const struct diff_form *form = &forms[f];
		if (filter && !strstr(form->name, filter))
			continue;
		if (!host_has(form->needs)) {
			skipped++;
			continue;
		}
		unsigned fails = 0;
		for (unsigned it = 0; it < iters && fails < 3; it++) {
			struct nstate in, nat, emu;
			for (int r = 0; r < 16; r++)
				in.gpr[r] = diff_rand_value();
			for (int x = 0; x < 16; x++)
				for (int b = 0; b < 16; b += 8) {
					uint64_t v = form->fp ? diff_rand_fp(form->fp) : diff_rand_value();
					memcpy(&in.xmm[x][b], &v, 8);
				}
			rand_fx(form, in.fx);
			in.rflags = 0x202 | (diff_rand() & FL_ARITH);
			if (form->df && (diff_rand() & 1))
				in.rflags |= FL_DF;
			uint8_t pattern[DATA_SIZE];
			memcpy(pattern, pattern_pool(form->fp) + (diff_rand() % (POOL_SIZE / 16 - DATA_SIZE / 16 + 1)) * 16,
			       DATA_SIZE);
			if (form->setup)
				form->setup(in.gpr);
			in.gpr[R_RBX] = DATA_ADDR + form->mem_offset;
			in.gpr[R_RSP] = DATA_ADDR + DATA_STACK;

			/* native */
			memcpy(code, form->bytes, form->len);
			code[form->len] = 0xFF;
			code[form->len + 1] = 0x25;
			memset(code + form->len + 2, 0, 4);
			uint64_t ret = (uint64_t)(uintptr_t)diff_native_return;
			memcpy(code + form->len + 6, &ret, 8);
			memcpy(data, pattern, DATA_SIZE);
			nat = in;
			unsigned host_mxcsr = __builtin_ia32_stmxcsr();
			int sig = run_native(&nat, code);
			__builtin_ia32_ldmxcsr(host_mxcsr); /* a form may load MXCSR */
			int nvec = sig ? vector_of_signal(sig) : -1;

			/* emulated */
			memcpy(gcode, form->bytes, form->len);
			if (jit) {
				/* the block ends with UD2 right after the form; the
				 * decoded block of the last form is stale */
				gcode[form->len] = 0x0F;
				gcode[form->len + 1] = 0x0B;
				emu_ram_written(m, CODE_ADDR, 4096);
			}
			memcpy(gdata, pattern, DATA_SIZE);
			memcpy(c->r, in.gpr, sizeof(c->r));
			c->rip = CODE_ADDR;
			set_rflags(c, in.rflags, ~0ULL);
			fxrstor(c, in.fx);
			for (int x = 0; x < 16; x++)
				memcpy(&c->xmm[x], in.xmm[x], 16);
			tlb_flush_all(c, false);
			/* a form may be a short sequence (flag producer + consumer) */
			int evec = -1;
			for (int steps = 0; steps < 8 && evec < 0 && c->rip != CODE_ADDR + form->len; steps++) {
				if (!jit) {
					evec = emu_test_step(&m->vcpus[0]);
					continue;
				}
				evec = emu_test_run_block(&m->vcpus[0]);
				if (evec == EXC_UD && c->rip == CODE_ADDR + form->len)
					evec = -1; /* the UD2 after the form */
			}
			memcpy(emu.gpr, c->r, sizeof(emu.gpr));
			emu.rflags = get_rflags(c);
			for (int x = 0; x < 16; x++)
				memcpy(emu.xmm[x], &c->xmm[x], 16);
			fxsave(c, emu.fx);
			cases++;

			char why[256] = "";
			if (nvec >= 0 || evec >= 0) {
				bool both_mem = nvec == EXC_GP && (evec == EXC_GP || evec == EXC_PF || evec == EXC_SS);
				if (nvec != evec && !both_mem)
					snprintf(why, sizeof(why), "fault: native %d, emulated %d", nvec, evec);
			} else {
				uint64_t mask = FL_ARITH | FL_DF;
				mask &= ~(uint64_t)form->undef_flags;
				if (form->undef_flags_fn)
					mask &= ~(uint64_t)form->undef_flags_fn(form, in.gpr, in.rflags);
				for (int r = 0; r < 16 && !why[0]; r++) {
					uint64_t n = nat.gpr[r], e = emu.gpr[r];
					if (form->undef_result && form->undef_result(form, in.gpr, r))
						continue;
					if (n != e)
						snprintf(why, sizeof(why), "r%d: native %016llx emulated %016llx", r,
							 (unsigned long long)n, (unsigned long long)e);
				}
				if (!why[0] && ((nat.rflags ^ emu.rflags) & mask))
					snprintf(why, sizeof(why), "flags: native %03llx emulated %03llx (compared %03llx)",
						 (unsigned long long)(nat.rflags & 0xFFF),
						 (unsigned long long)(emu.rflags & 0xFFF), (unsigned long long)mask);
				for (int x = 0; x < 16 && !why[0]; x++)
					if (memcmp(nat.xmm[x], emu.xmm[x], 16))
						snprintf(why, sizeof(why), "xmm%d: native %016llx%016llx emulated %016llx%016llx",
							 x, *(unsigned long long *)&nat.xmm[x][8],
							 *(unsigned long long *)&nat.xmm[x][0],
							 *(unsigned long long *)&emu.xmm[x][8],
							 *(unsigned long long *)&emu.xmm[x][0]);
				if (!why[0])
					compare_fx(form, in.fx, nat.fx, emu.fx, why, sizeof(why));
				unsigned skip0 = form->mem_offset + form->mem_skip_off;
				bool mem_same = !memcmp(data, gdata, DATA_SIZE);
				for (unsigned k = 0; k < DATA_SIZE && !why[0] && !mem_same; k++)
					if (data[k] != gdata[k] && (k < skip0 || k >= skip0 + form->mem_skip_len))
						snprintf(why, sizeof(why), "memory +%#x: native %02x emulated %02x", k,
							 data[k], gdata[k]);
				if (!why[0] && c->rip != CODE_ADDR + form->len)
					snprintf(why, sizeof(why), "rip: emulated %#llx, want %#lx",
						 (unsigned long long)c->rip, CODE_ADDR + form->len);
			}
			if (why[0]) {
				fails++;
				printf("FAIL %-28s %s\n", form->name, why);
				printf("     in: rflags %03llx", (unsigned long long)in.rflags & 0xFFF);
				for (int r = 0; r < 16; r++)
					if (r != R_RSP)
						printf(" r%d=%llx", r, (unsigned long long)in.gpr[r]);
				printf("\n");
				print_fx("in ", in.fx);
				print_fx("nat", nat.fx);
				print_fx("emu", emu.fx);
				if (form->len && form->bytes[0] >= 0xD8 && form->bytes[0] <= 0xDF) {
					printf("     mem:");
					for (int b = 0; b < 16; b++)
						printf(" %02x", pattern[form->mem_offset + b]);
					printf("\n");
				}
			}
		}
		if (fails)
			failed_forms++;
		else if (verbose)
			printf("ok   %s\n", form->name);
	}
	if (skipped)
		printf("emu-diff: %u forms skipped (the host CPU lacks their extension)\n", skipped);
	printf("emu-diff: %u forms, %lu cases, %u forms failed\n", nforms, cases, failed_forms);
	harness_free(m);
	return failed_forms ? 1 : 0;
}
