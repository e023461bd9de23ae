/* Unit tests for the JIT of the software CPU (XVM_EMU_JIT=1): a hot loop
 * of the templated forms agrees with the interpreter; a page fault in the
 * middle of a compiled block is precise and resumable; self-modifying code
 * inside a compiled loop runs the new code; a timer interrupt reaches a
 * tight compiled loop; a full code memory starts over and stays right. */
#if defined(__x86_64__)
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "emu_harness.h"
#include "accel/emu/cpu.h"
#include "accel/emu/jit.h"

/* A 64-bit interrupt gate at IDT 0x6000 for VEC to LABEL (rax clobbered). */
#define GATE(vec, label)                                         \
	"lea " #label "(%rip), %rax\n"                          \
	"mov %ax, 0x6000 + " #vec "*16\n"                       \
	"movw $8, 0x6000 + " #vec "*16 + 2\n"                   \
	"movw $0x8e00, 0x6000 + " #vec "*16 + 4\n"              \
	"shr $16, %rax\n mov %ax, 0x6000 + " #vec "*16 + 6\n"   \
	"movl $0, 0x6000 + " #vec "*16 + 8\n"
#define LIDT "movw $0xfff, 0x5f00\n movq $0x6000, 0x5f02\n lidt 0x5f00\n"
#define EXIT0 "mov $0, %al\n out %al, $0xf4\n"

static struct machine *new_machine(bool jit, const char *threshold)
{
	setenv("XVM_EMU_JIT", jit ? "1" : "0", 1);
	setenv("XVM_EMU_JIT_THRESHOLD", threshold, 1);
	struct machine *m = harness_new(64 * MiB, 1);
	unsetenv("XVM_EMU_JIT");
	unsetenv("XVM_EMU_JIT_THRESHOLD");
	return m;
}

/* Loads code at 1 MiB, maps the LAPIC page too, runs to the exit port. */
static void run(struct machine *m, const uint8_t *start, size_t len, struct x86_cpu_state *out)
{
	memcpy(m->ram.host + 0x100000, start, len);
	struct x86_cpu_state s;
	harness_long_mode(m, &s, 0x100000);
	uint64_t *pdpt = (uint64_t *)(m->ram.host + 0x2000), *pd3 = (uint64_t *)(m->ram.host + 0x4000);
	memset(pd3, 0, 4096);
	pdpt[3] = 0x4000 | 7;
	pd3[(0xFEE00000u >> 21) & 511] = 0xFEE00000u | 0x9F; /* 2 MiB, uncached */
	assert_int_equal(emu_accel_ops.set_state(&m->vcpus[0], &s), 0);
	harness_run(m);
	emu_accel_ops.get_state(&m->vcpus[0], out);
}

static uint64_t compiled_blocks(struct machine *m)
{
	uint64_t compiled, resets;
	jit_counters(emu_test_cpu(&m->vcpus[0]), &compiled, &resets);
	return compiled;
}

/* Every templated form in a loop: ALU (rr, ri, rm), rotates and shifts
 * (imm, CL), LEA, IMUL, MOVZX/MOVSX, CMOVcc, SETcc, ADC consuming a
 * flag across a load, PUSH/POP, CALL/RET, NEG/NOT, XCHG, INC/DEC. */
SNIPPET(jit_mix,
	".code64\n"
	"mov $0x200000, %rbp\n"
	"xor %ecx, %ecx\n xor %r8, %r8\n xor %r9, %r9\n xor %r14, %r14\n xor %r15, %r15\n"
	"mov $0x12345678, %eax\n mov $0x9abcdef0, %edx\n"
	/* a direct JMP back to before the loop's block (decoded inline: a
	 * negative offset from the block's start) with a branch out there */
	"jmp 1f\n"
	"0: inc %r13\n test $3, %cl\n jz 5f\n jmp 5f\n"
	"1: jmp 0b\n"
	"5: mov %eax, %esi\n ror $7, %esi\n xor %edx, %esi\n add %esi, %eax\n rol $13, %edx\n"
	"lea 0x11(%rax,%rdx,2), %r10\n shr $3, %r10d\n imul $31, %r10, %r11\n sub %r11, %r8\n"
	"mov %r8, (%rbp,%rcx,8)\n add (%rbp,%rcx,8), %r9\n"
	"movzbl %al, %r12d\n movsbq %dl, %r13\n add %r12, %r13\n cmp %r13, %r9\n cmovl %r13, %r14\n"
	"setg %bl\n movzbl %bl, %ebx\n add %rbx, %r15\n"
	"push %rax\n pop %rdi\n call 2f\n"
	"test $1, %ecx\n adc $0, %r15\n"
	"neg %rdi\n not %rdi\n sar %cl, %rdi\n xchg %rdi, %r12\n"
	"cmp (%rbp), %r12\n sbb %r12, %r15\n"
	"dec %r13d\n inc %ecx\n cmp $2000, %ecx\n jb 1b\n"
	"pushf\n pop %rbx\n"
	EXIT0
	"2: shl $2, %r9\n sar $1, %r9\n ret\n")

static void test_jit_matches_interpreter(void **state)
{
	struct x86_cpu_state want, got;
	struct machine *m = new_machine(false, "2");
	run(m, jit_mix_start, (size_t)(jit_mix_end - jit_mix_start), &want);
	assert_int_equal(m->run_state, VM_STOP_EXIT);
	assert_int_equal(compiled_blocks(m), 0);
	static uint8_t data[2000 * 8];
	memcpy(data, m->ram.host + 0x200000, sizeof(data));
	harness_free(m);

	m = new_machine(true, "2");
	run(m, jit_mix_start, (size_t)(jit_mix_end - jit_mix_start), &got);
	assert_int_equal(m->run_state, VM_STOP_EXIT);
	assert_true(compiled_blocks(m) >= 2);
	for (int r = 0; r < 16; r++)
		assert_int_equal(got.gpr[r], want.gpr[r]);
	assert_int_equal(got.rip, want.rip);
	assert_int_equal(got.rflags, want.rflags);
	assert_int_equal(got.gpr[R_RCX], 2000);
	assert_memory_equal(m->ram.host + 0x200000, data, sizeof(data));
	harness_free(m);
}

/* A load faults at iteration 500 of a compiled loop (the pointer turns
 * to an unmapped page): the handler sees the faulting RIP, CR2, the loop
 * counter and the flags of the CMP before the load (3 - 5: CF SF AF);
 * it repairs the pointer and IRETQ resumes; ADC then still sees CF. */
SNIPPET(jit_pf,
	".code64\n"
	GATE(14, 3f)
	LIDT
	"mov $0x200000, %rbx\n mov $0x40000000, %rdi\n"
	"xor %ecx, %ecx\n xor %r8d, %r8d\n xor %r14d, %r14d\n"
	"1: cmp $500, %ecx\n cmove %rdi, %rbx\n"
	"mov $3, %eax\n cmp $5, %eax\n"
	".globl jit_pf_load\n jit_pf_load: mov (%rbx), %rsi\n"
	"adc $0, %r8\n add $1, %ecx\n cmp $1000, %ecx\n jne 1b\n"
	EXIT0
	"3: pop %r9\n mov (%rsp), %r10\n mov 16(%rsp), %r11\n mov %cr2, %r12\n mov %rcx, %r13\n"
	"mov $0x200000, %rbx\n mov %rbx, %rdi\n inc %r14\n iretq\n")
extern const uint8_t jit_pf_load[];

static void test_jit_page_fault_precise(void **state)
{
	struct x86_cpu_state s;
	struct machine *m = new_machine(true, "2");
	run(m, jit_pf_start, (size_t)(jit_pf_end - jit_pf_start), &s);
	assert_int_equal(m->run_state, VM_STOP_EXIT);
	assert_true(compiled_blocks(m) >= 1);
	assert_int_equal(s.gpr[R_R14], 1);                 /* one fault */
	assert_int_equal(s.gpr[R_R12], 0x40000000);        /* CR2 */
	assert_int_equal(s.gpr[R_R9], 0);                  /* read, not present, supervisor */
	assert_int_equal(s.gpr[R_R10], 0x100000 + (uint64_t)(jit_pf_load - jit_pf_start));
	assert_int_equal(s.gpr[R_R13], 500);               /* the counter at the fault */
	assert_int_equal(s.gpr[R_R11] & FL_ARITH, FL_CF | FL_SF | FL_AF);
	assert_int_equal(s.gpr[R_R8], 1000);               /* ADC saw CF every time */
	assert_int_equal(s.gpr[R_RCX], 1000);
	harness_free(m);
}

/* SSE data moves in a compiled loop, against the interpreter; at
 * iteration 50 a MOVDQA gets an unaligned address: #GP at its RIP, the
 * handler skips it. */
SNIPPET(jit_sse,
	".code64\n"
	GATE(13, 3f)
	LIDT
	"mov $0x200000, %rbp\n xor %ecx, %ecx\n xor %r14d, %r14d\n"
	"mov $0x200041, %rdi\n"
	"1: movdqu (%rbp,%rcx,1), %xmm1\n movups %xmm1, 0x1000(%rbp,%rcx,1)\n"
	"movss 0x10(%rbp,%rcx,1), %xmm2\n movsd %xmm2, 0x2000(%rbp,%rcx,8)\n"
	"movss %xmm1, %xmm2\n movsd %xmm2, 0x2800(%rbp,%rcx,8)\n"
	"movaps %xmm1, %xmm3\n movdqa 0x40(%rbp), %xmm4\n paddd %xmm3, %xmm4\n"
	"movdqa %xmm4, 0x3000(%rbp)\n movupd 0x3000(%rbp), %xmm5\n movapd %xmm5, 0x3010(%rbp)\n"
	"lea 0x40(%rbp), %rax\n cmp $50, %ecx\n cmove %rdi, %rax\n"
	".globl jit_sse_gp\n jit_sse_gp: movdqa (%rax), %xmm6\n"
	"movdqu %xmm6, 0x3020(%rbp,%rcx,8)\n"
	"inc %ecx\n cmp $100, %ecx\n jb 1b\n"
	EXIT0
	"3: pop %r9\n mov (%rsp), %r10\n inc %r14\n addq $4, (%rsp)\n iretq\n")
extern const uint8_t jit_sse_gp[];

static void test_jit_sse_moves(void **state)
{
	static uint8_t want[0x4000];
	struct x86_cpu_state s;
	for (int jit = 0; jit < 2; jit++) {
		struct machine *m = new_machine(jit, "2");
		for (unsigned k = 0; k < 0x100; k++)
			m->ram.host[0x200000 + k] = (uint8_t)(k * 37 + 11);
		run(m, jit_sse_start, (size_t)(jit_sse_end - jit_sse_start), &s);
		assert_int_equal(m->run_state, VM_STOP_EXIT);
		assert_int_equal(s.gpr[R_R14], 1); /* one #GP */
		assert_int_equal(s.gpr[R_R10], 0x100000 + (uint64_t)(jit_sse_gp - jit_sse_start));
		assert_int_equal(s.gpr[R_R9], 0);
		if (!jit) {
			memcpy(want, m->ram.host + 0x200000, sizeof(want));
		} else {
			assert_true(compiled_blocks(m) >= 1);
			assert_memory_equal(m->ram.host + 0x200000, want, sizeof(want));
		}
		harness_free(m);
	}
}

/* The loop patches the immediate of an instruction of its own block at
 * iteration 100: 100 x 7 + 900 x 42. */
SNIPPET(jit_smc,
	".code64\n"
	"xor %ecx, %ecx\n xor %edx, %edx\n"
	"1: cmp $100, %ecx\n jne 2f\n"
	"movb $42, 2f+1(%rip)\n"
	"2: mov $7, %al\n movzbl %al, %eax\n add %eax, %edx\n"
	"inc %ecx\n cmp $1000, %ecx\n jne 1b\n"
	"mov %edx, %ebx\n"
	EXIT0)

static void test_jit_self_modifying(void **state)
{
	struct x86_cpu_state s;
	struct machine *m = new_machine(true, "2");
	run(m, jit_smc_start, (size_t)(jit_smc_end - jit_smc_start), &s);
	assert_int_equal(m->run_state, VM_STOP_EXIT);
	assert_true(compiled_blocks(m) >= 2);
	assert_int_equal(s.gpr[R_RBX], 100 * 7 + 900 * 42);
	harness_free(m);
}

/* A LAPIC one-shot timer (vector 0x40) fires while the guest spins in a
 * three-instruction compiled loop waiting for its handler's flag. */
SNIPPET(jit_timer,
	".code64\n"
	GATE(0x40, 3f)
	LIDT
	"mov $0xFEE00000, %edi\n"
	"movl $0x1FF, 0xF0(%rdi)\n movl $0xB, 0x3E0(%rdi)\n movl $0x40, 0x320(%rdi)\n"
	"movl $2000000, 0x380(%rdi)\n" /* 20 ms at 100 MHz */
	"xor %r15d, %r15d\n xor %eax, %eax\n sti\n"
	"1: inc %rax\n test %r15d, %r15d\n je 1b\n"
	"mov %rax, %rbx\n"
	EXIT0
	"3: mov $1, %r15d\n movl $0, 0xB0(%rdi)\n iretq\n")

/* The same timer, three times, while the guest waits with STI; HLT (the
 * STI shadow covers the HLT; the interrupt must still wake it). */
SNIPPET(jit_timer_hlt,
	".code64\n"
	GATE(0x40, 3f)
	LIDT
	"mov $0xFEE00000, %edi\n"
	"movl $0x1FF, 0xF0(%rdi)\n movl $0xB, 0x3E0(%rdi)\n movl $0x40, 0x320(%rdi)\n"
	"movl $2000000, 0x380(%rdi)\n"
	"xor %r15d, %r15d\n xor %ebx, %ebx\n"
	"1: cli\n inc %rbx\n cmp $3, %r15d\n jae 2f\n sti\n hlt\n jmp 1b\n"
	"2: sti\n"
	EXIT0
	/* three interrupts: the later ones reach blocks compiled by then */
	"3: inc %r15d\n movl $0, 0xB0(%rdi)\n movl $200000, 0x380(%rdi)\n iretq\n")

static volatile bool watchdog_done;
static void *watchdog(void *arg)
{
	for (int k = 0; k < 1000 && !watchdog_done; k++)
		usleep(10000);
	if (!watchdog_done)
		machine_request_stop(arg, VM_STOP_EXIT, 99);
	return NULL;
}

static void test_jit_timer_interrupt(void **state)
{
	struct x86_cpu_state s;
	struct machine *m = new_machine(true, "2");
	pthread_t t;
	watchdog_done = false;
	pthread_create(&t, NULL, watchdog, m);
	run(m, jit_timer_start, (size_t)(jit_timer_end - jit_timer_start), &s);
	watchdog_done = true;
	pthread_join(t, NULL);
	assert_int_equal(m->exit_code, 0);
	assert_true(compiled_blocks(m) >= 1);
	assert_true(s.gpr[R_RBX] > 1000); /* it did spin */
	harness_free(m);
}

static void test_jit_timer_hlt(void **state)
{
	struct x86_cpu_state s;
	struct machine *m = new_machine(true, "1");
	pthread_t t;
	watchdog_done = false;
	pthread_create(&t, NULL, watchdog, m);
	run(m, jit_timer_hlt_start, (size_t)(jit_timer_hlt_end - jit_timer_hlt_start), &s);
	watchdog_done = true;
	pthread_join(t, NULL);
	assert_int_equal(m->exit_code, 0);
	assert_true(compiled_blocks(m) >= 1);
	harness_free(m);
}

/* 2000 blocks, one per page, each adding its number, run three times
 * through a 256 KiB code memory: it fills up, starts over, stays right. */
static void test_jit_code_memory_full(void **state)
{
	enum { BLOCKS = 2000, BASE = 0x400000 };
	setenv("XVM_EMU_JIT_CODE_KB", "256", 1);
	struct machine *m = new_machine(true, "1");
	unsetenv("XVM_EMU_JIT_CODE_KB");
	uint8_t *h = m->ram.host;
	/* mov $3, %ecx at 1 MiB, then jump to the first page */
	uint8_t entry[] = { 0xB9, 3, 0, 0, 0, 0x31, 0xC0, 0xE9, 0, 0, 0, 0 };
	int32_t rel = (int32_t)(BASE - (0x100000 + sizeof(entry)));
	memcpy(entry + 8, &rel, 4);
	uint64_t want = 0;
	for (unsigned k = 0; k < BLOCKS; k++) {
		uint8_t *p = h + BASE + k * 4096ull;
		uint64_t here = BASE + k * 4096ull;
		p[0] = 0x48; p[1] = 0x05; /* add $k, %rax */
		uint32_t imm = k * 7 + 1;
		memcpy(p + 2, &imm, 4);
		want += imm;
		if (k + 1 < BLOCKS) {
			p[6] = 0xE9; /* jmp next page */
			rel = (int32_t)((here + 4096) - (here + 11));
			memcpy(p + 7, &rel, 4);
		} else {
			p[6] = 0xFF; p[7] = 0xC9; /* dec %ecx */
			p[8] = 0x0F; p[9] = 0x85; /* jnz first page */
			rel = (int32_t)(BASE - (here + 14));
			memcpy(p + 10, &rel, 4);
			p[14] = 0x48; p[15] = 0x89; p[16] = 0xC3; /* mov %rax, %rbx */
			p[17] = 0xB0; p[18] = 0; p[19] = 0xE6; p[20] = 0xF4; /* out */
		}
	}
	struct x86_cpu_state s;
	run(m, entry, sizeof(entry), &s);
	assert_int_equal(m->run_state, VM_STOP_EXIT);
	assert_int_equal(s.gpr[R_RBX], 3 * want);
	uint64_t compiled, resets;
	jit_counters(emu_test_cpu(&m->vcpus[0]), &compiled, &resets);
	assert_true(compiled > BLOCKS);
	assert_true(resets >= 1);
	harness_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jit_matches_interpreter),
		cmocka_unit_test(test_jit_page_fault_precise),
		cmocka_unit_test(test_jit_sse_moves),
		cmocka_unit_test(test_jit_self_modifying),
		cmocka_unit_test(test_jit_timer_interrupt),
		cmocka_unit_test(test_jit_timer_hlt),
		cmocka_unit_test(test_jit_code_memory_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

#else
int main(void)
{
	return 77; /* no JIT on this host */
}
#endif
