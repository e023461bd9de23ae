/* Unit tests for the software CPU: small code snippets run in a tiny
 * machine (long mode, real mode, paging faults, self-modifying code,
 * string instructions, atomics, mode switches). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "emu_harness.h"

SNIPPET(arith64,
	".code64\n"
	"xor %ecx, %ecx\n xor %eax, %eax\n"
	"1: add %rcx, %rax\n inc %ecx\n cmp $101, %ecx\n jne 1b\n"   /* rax = 5050 */
	"mov %rax, %rbx\n imul $3, %rbx, %rbx\n"                       /* rbx = 15150 */
	"mov $-7, %rsi\n mov %rsi, %rdx\n sar $63, %rdx\n mov %rsi, %rax\n mov $2, %rdi\n idiv %rdi\n" /* rax=-3 rdx=-1 */
	"mov %rax, %r8\n mov %rdx, %r9\n"
	"call 2f\n jmp 3f\n 2: mov $0x1234, %r10\n ret\n"
	"3: push $77\n pop %r11\n"
	"mov $0xff00ff00ff00ff00, %r12\n bswap %r12\n"
	"mov $0x80, %r13\n bsr %r13, %r14\n"
	"stc\n setc %r15b\n"
	"mov $0x5050, %eax\n mov $0, %al\n out %al, $0xf4\n")

static void test_arith64(void **state)
{
	struct x86_cpu_state s;
	struct machine *m = harness_run_long(arith64_start, arith64_end, &s);
	assert_int_equal(m->run_state, VM_STOP_EXIT);
	assert_int_equal(s.gpr[R_RBX], 15150);
	assert_int_equal((int64_t)s.gpr[R_R8], -3);
	assert_int_equal((int64_t)s.gpr[R_R9], -1);
	assert_int_equal(s.gpr[R_R10], 0x1234);
	assert_int_equal(s.gpr[R_R11], 77);
	assert_int_equal(s.gpr[R_R12], 0x00ff00ff00ff00ffULL);
	assert_int_equal(s.gpr[R_R14], 7);
	assert_int_equal(s.gpr[R_R15] & 0xFF, 1);
	assert_int_equal(s.gpr[R_RSP], 0x80000);
	harness_free(m);
}

/* #PF through a 64-bit IDT: the handler reports CR2 and the error code. */
SNIPPET(pagefault,
	".code64\n"
	"lea handler(%rip), %rax\n"
	"mov %ax, 0x6000 + 14*16\n"
	"movw $8, 0x6000 + 14*16 + 2\n"
	"movw $0x8e00, 0x6000 + 14*16 + 4\n"
	"shr $16, %rax\n mov %ax, 0x6000 + 14*16 + 6\n"
	"movl $0, 0x6000 + 14*16 + 8\n"
	"movw $0xfff, 0x5f00\n movq $0x6000, 0x5f02\n lidt 0x5f00\n"
	"mov $0x40000123, %rbx\n"
	"movl $5, (%rbx)\n"
	"hlt\n"
	"handler: pop %rsi\n mov %cr2, %rdi\n mov $0, %al\n out %al, $0xf4\n")

static void test_page_fault(void **state)
{
	struct x86_cpu_state s;
	struct machine *m = harness_run_long(pagefault_start, pagefault_end, &s);
	assert_int_equal(m->run_state, VM_STOP_EXIT);
	assert_int_equal(s.gpr[R_RDI], 0x40000123);
	assert_int_equal(s.gpr[R_RSI], 2 /* write, not present, supervisor */);
	assert_int_equal(s.cr2, 0x40000123);
	harness_free(m);
}

/* Self-modifying code: patch an immediate just ahead, then run it. */
SNIPPET(smc,
	".code64\n"
	"mov $0, %ebx\n"
	"1: movb $42, 2f+1(%rip)\n"
	"2: mov $7, %al\n"
	"movzbl %al, %ebx\n"
	"mov $0, %al\n out %al, $0xf4\n")

static void test_self_modifying(void **state)
{
	struct x86_cpu_state s;
	struct machine *m = harness_run_long(smc_start, smc_end, &s);
	assert_int_equal(s.gpr[R_RBX], 42);
	harness_free(m);
}

/* An instruction across a page boundary is cached as a block of its own,
 * valid while both pages are: the snippet writes a function at 0x100FFE,
 * `mov $0x11223344, %eax; ret` (B8 44 | 33 22 11 C3 in the next page),
 * calls it 100 times, patches the byte at 0x101000 and calls it 100
 * times more: the new immediate must be seen. */
SNIPPET(straddle,
	".code64\n"
	"mov $0x0000C311223344B8, %rax\n mov %rax, 0x100FFE\n"
	"mov $0x100FFE, %r8\n"
	"xor %ebx, %ebx\n xor %edx, %edx\n xor %ecx, %ecx\n"
	"1: call *%r8\n add %eax, %ebx\n inc %ecx\n cmp $100, %ecx\n jne 1b\n"
	"movb $0x55, 0x101000\n"
	"xor %ecx, %ecx\n"
	"2: call *%r8\n add %eax, %edx\n inc %ecx\n cmp $100, %ecx\n jne 2b\n"
	"mov $0, %al\n out %al, $0xf4\n")

static void test_page_crossing_code(void **state)
{
	assert_true(straddle_end - straddle_start < 0xFFE);
	struct x86_cpu_state s;
	struct machine *m = harness_run_long(straddle_start, straddle_end, &s);
	assert_int_equal(m->run_state, VM_STOP_EXIT);
	assert_int_equal((uint32_t)s.gpr[R_RBX], (uint32_t)(100u * 0x11223344u));
	assert_int_equal((uint32_t)s.gpr[R_RDX], (uint32_t)(100u * 0x11225544u));
	harness_free(m);
}

/* REP MOVSB/STOSB/CMPSB, LOCK XADD, CMPXCHG */
SNIPPET(strings,
	".code64\n"
	"mov $0x200000, %rdi\n mov $0xAB, %al\n mov $10000, %rcx\n cld\n rep stosb\n"
	"mov $0x200000, %rsi\n mov $0x300001, %rdi\n mov $10000, %rcx\n rep movsb\n"
	"mov $0x200000, %rsi\n mov $0x300001, %rdi\n mov $10000, %rcx\n repe cmpsb\n"
	"mov %rcx, %r8\n"                           /* 0: all equal */
	"movq $5, 0x400000\n mov $3, %rax\n lock xadd %rax, 0x400000\n"
	"mov %rax, %r9\n mov 0x400000, %r10\n"      /* r9 = 5, r10 = 8 */
	"mov $8, %rax\n mov $99, %rdx\n lock cmpxchg %rdx, 0x400000\n"
	"mov 0x400000, %r11\n setz %r12b\n"          /* 99, 1 */
	"mov $0, %al\n out %al, $0xf4\n")

static void test_strings_atomics(void **state)
{
	struct x86_cpu_state s;
	struct machine *m = harness_run_long(strings_start, strings_end, &s);
	assert_int_equal(s.gpr[R_R8], 0);
	assert_int_equal(s.gpr[R_R9], 5);
	assert_int_equal(s.gpr[R_R10], 8);
	assert_int_equal(s.gpr[R_R11], 99);
	assert_int_equal(s.gpr[R_R12] & 0xFF, 1);
	assert_int_equal(m->ram.host[0x300001 + 9999], 0xAB);
	assert_int_equal(m->ram.host[0x300001 + 10000], 0);
	harness_free(m);
}

/* Real mode -> protected mode -> long mode, the way a trampoline does. */
SNIPPET(modes,
	".code16\n"
	"cli\n xor %ax, %ax\n mov %ax, %ds\n mov %ax, %ss\n mov $0x7000, %sp\n"
	"mov $0x1234, %bx\n push %bx\n pop %si\n"
	"lgdtl gdtr - modes_start + 0x8000\n"
	"mov %cr0, %eax\n or $1, %eax\n mov %eax, %cr0\n"
	"ljmpl $0x18, $(pm - modes_start + 0x8000)\n"
	".code32\n"
	"pm: mov $0x10, %ax\n mov %ax, %ds\n mov %ax, %ss\n"
	"mov %cr4, %eax\n or $0x20, %eax\n mov %eax, %cr4\n"
	"mov $0x1000, %eax\n mov %eax, %cr3\n"
	"mov $0xC0000080, %ecx\n rdmsr\n or $0x100, %eax\n wrmsr\n"
	"mov %cr0, %eax\n or $0x80000000, %eax\n mov %eax, %cr0\n"
	"ljmp $0x8, $(lm - modes_start + 0x8000)\n"
	".code64\n"
	"lm: mov $0x1122334455667788, %rdx\n"
	"mov $0, %al\n out %al, $0xf4\n"
	".p2align 3\n"
	"gdt: .quad 0, 0x00AF9B000000FFFF, 0x00CF93000000FFFF, 0x00CF9B000000FFFF\n"
	"gdtr: .word 31\n .long gdt - modes_start + 0x8000\n")

static void test_mode_switch(void **state)
{
	struct machine *m = harness_new(64 * MiB, 1);
	struct x86_cpu_state s;
	harness_long_mode(m, &s, 0); /* builds the page tables */
	memcpy(m->ram.host + 0x8000, modes_start, (size_t)(modes_end - modes_start));
	x86_reset_state(&s, true);
	s.seg[SEG_CS].selector = 0x800;
	s.seg[SEG_CS].base = 0x8000;
	s.rip = 0;
	assert_int_equal(emu_accel_ops.set_state(&m->vcpus[0], &s), 0);
	harness_run(m);
	emu_accel_ops.get_state(&m->vcpus[0], &s);
	assert_int_equal(m->run_state, VM_STOP_EXIT);
	assert_int_equal(s.gpr[R_RSI] & 0xFFFF, 0x1234);
	assert_int_equal(s.gpr[R_RDX], 0x1122334455667788ULL);
	assert_true(s.efer & X86_EFER_LMA);
	assert_int_equal(s.seg[SEG_CS].selector, 8);
	harness_free(m);
}

/* CMP/TEST fused with the following Jcc (fast.c): for operand pairs at
 * the edges of the signed and unsigned ranges and all 16 conditions, the
 * branch must agree with SETcc after an unfused compare, and the flags
 * the fused compare leaves must agree too. R15 counts disagreements,
 * R14 taken branches. */
#define FUSE_CHECK(cmp)                                                         \
	".irp cc, o,no,b,ae,e,ne,be,a,s,ns,p,np,l,ge,le,g\n"                   \
	cmp "\n set\\cc %dl\n nop\n"                                           \
	cmp "\n j\\cc 1f\n mov $0, %r8d\n jmp 2f\n 1: mov $1, %r8d\n"          \
	"2: set\\cc %r9b\n add %r8, %r14\n movzbl %dl, %edx\n movzbl %r9b, %r9d\n" \
	"xor %edx, %r8d\n xor %edx, %r9d\n add %r8, %r15\n add %r9, %r15\n"      \
	".endr\n"

SNIPPET(fused,
	".code64\n"
	"xor %r15d, %r15d\n xor %r14d, %r14d\n"
	"lea 9f(%rip), %rsi\n mov $100, %ecx\n"
	"3: mov (%rsi), %rax\n mov 8(%rsi), %rbx\n"
	FUSE_CHECK("cmp %rbx, %rax")
	FUSE_CHECK("cmp %ebx, %eax")
	FUSE_CHECK("cmp %rax, %rbx")
	FUSE_CHECK("test %rbx, %rax")
	FUSE_CHECK("test %ebx, %eax")
	FUSE_CHECK("cmp $5, %rax")
	FUSE_CHECK("cmp $-1, %eax")
	FUSE_CHECK("cmp $0x7fffffff, %rax")
	"add $16, %rsi\n dec %ecx\n jnz 3b\n"
	"mov $0, %al\n out %al, $0xf4\n"
	".balign 8\n"
	"9: .irp a, 0,1,-1,5,0x7fffffff,0x80000000,0xffffffff,0x100000000,0x7fffffffffffffff,0x8000000000000000\n"
	".irp b, 0,1,-1,5,0x7fffffff,0x80000000,0xffffffff,0x100000000,0x7fffffffffffffff,0x8000000000000000\n"
	".quad \\a, \\b\n .endr\n .endr\n")

/* INC/DEC keep CF from whatever set it last (fast.c reads it lazily). */
SNIPPET(incdec_cf,
	".code64\n"
	"mov $-1, %rax\n add $1, %rax\n inc %rcx\n setc %r8b\n"
	"mov $1, %rax\n sub $2, %rax\n dec %rcx\n setc %r9b\n"
	"mov $5, %rax\n cmp $3, %rax\n inc %rcx\n setc %r10b\n"
	"xor %eax, %eax\n stc\n inc %ecx\n setc %r11b\n"
	"mov $1, %rax\n shl $63, %rax\n shl $1, %rax\n dec %rcx\n setc %r12b\n"
	"stc\n inc %rcx\n dec %ecx\n inc %rcx\n setc %r13b\n"
	"mov $0x7fffffff, %edx\n inc %edx\n seto %r14b\n"
	"mov $0, %al\n out %al, $0xf4\n")

static void test_incdec_cf(void **state)
{
	struct x86_cpu_state s;
	struct machine *m = harness_run_long(incdec_cf_start, incdec_cf_end, &s);
	assert_int_equal(m->run_state, VM_STOP_EXIT);
	assert_int_equal(s.gpr[R_R8] & 0xFF, 1);
	assert_int_equal(s.gpr[R_R9] & 0xFF, 1);
	assert_int_equal(s.gpr[R_R10] & 0xFF, 0);
	assert_int_equal(s.gpr[R_R11] & 0xFF, 1);
	assert_int_equal(s.gpr[R_R12] & 0xFF, 1);
	assert_int_equal(s.gpr[R_R13] & 0xFF, 1);
	assert_int_equal(s.gpr[R_R14] & 0xFF, 1);
	harness_free(m);
}

/* ROL/ROR followed by an instruction that overwrites all flags run
 * without computing theirs (fast.c); followed by ADC they must not. */
SNIPPET(rotate,
	".code64\n"
	"mov $0x8000000000000001, %rax\n ror $1, %rax\n xor %edx, %edx\n mov %rax, %r8\n"
	"mov $0x12345678, %ecx\n rol $8, %ecx\n add $0, %ecx\n mov %rcx, %r9\n"
	"mov $0x8000000000000001, %rax\n ror $1, %rax\n mov $0, %r10d\n adc $0, %r10\n"
	"mov $3, %cl\n mov $0xF000000F, %esi\n ror %cl, %esi\n cmp %esi, %esi\n mov %rsi, %r11\n"
	"mov $0xFFFFFFFF00000001, %rdi\n rol $0, %edi\n test %edi, %edi\n mov %rdi, %r12\n"
	"mov $0, %al\n out %al, $0xf4\n")

static void test_rotate_dead_flags(void **state)
{
	struct x86_cpu_state s;
	struct machine *m = harness_run_long(rotate_start, rotate_end, &s);
	assert_int_equal(m->run_state, VM_STOP_EXIT);
	assert_int_equal(s.gpr[R_R8], 0xC000000000000000ULL);
	assert_int_equal(s.gpr[R_R9], 0x34567812);
	assert_int_equal(s.gpr[R_R10], 1);
	assert_int_equal(s.gpr[R_R11], 0xFE000001);
	assert_int_equal(s.gpr[R_R12], 1); /* a 32-bit rotate by 0 still zero-extends */
	harness_free(m);
}

static void test_fused_cmp_jcc(void **state)
{
	struct x86_cpu_state s;
	struct machine *m = harness_run_long(fused_start, fused_end, &s);
	assert_int_equal(m->run_state, VM_STOP_EXIT);
	assert_int_equal(s.gpr[R_R15], 0);
	assert_true(s.gpr[R_R14] > 1000);
	harness_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arith64),
		cmocka_unit_test(test_fused_cmp_jcc),
		cmocka_unit_test(test_incdec_cf),
		cmocka_unit_test(test_rotate_dead_flags),
		cmocka_unit_test(test_page_fault),
		cmocka_unit_test(test_self_modifying),
		cmocka_unit_test(test_page_crossing_code),
		cmocka_unit_test(test_strings_atomics),
		cmocka_unit_test(test_mode_switch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
