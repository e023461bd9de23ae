/* Known-answer tests of the encodings the differential tests (tests/diff)
 * cannot run natively in a user-mode process: privileged and system
 * instructions, port I/O, interrupts and privilege changes, segment
 * loads and far transfers, TSC and CPUID values, and the instructions
 * whose results are the host's own (RCPPS/RSQRTPS approximations, REP
 * BSF/BSR that a newer host runs as TZCNT/LZCNT). tests/diff/excluded.c
 * names the test of each encoding; emu-diff.sh checks they exist.
 *
 * Each snippet runs at CPL 0 in long mode and stores its results in
 * slots at 0x7100 + 8k (R(k)); the tests read them from guest RAM. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "emu_harness.h"

#define SLOT_BASE 0x7100
#define R(k) #k "*8+0x7100"
#define EXIT "mov $0, %al\n out %al, $0xf4\n"

/* A GDT at 0x5000: kernel code64 0x08, kernel data 0x10, user code32
 * 0x18, user data 0x20, user code64 0x28 (SYSRET with STAR base 0x18),
 * user data 0x30 (SYSEXIT with SYSENTER_CS 0x08), a TSS at 0x38 (base
 * 0x5800, RSP0 0x90000), an LDT at 0x48 (base 0x5A00), a second TSS at
 * 0x58 (base 0x5900); an empty IDT at 0x6000 (limit 0xFFF). */
#define TABLES                                                                       \
	".code64\n"                                                                  \
	"movq $0, 0x5000\n"                                                          \
	"movabs $0x00AF9B000000FFFF, %rax\n mov %rax, 0x5008\n"                      \
	"movabs $0x00CF93000000FFFF, %rax\n mov %rax, 0x5010\n"                      \
	"movabs $0x00CFFB000000FFFF, %rax\n mov %rax, 0x5018\n"                      \
	"movabs $0x00CFF3000000FFFF, %rax\n mov %rax, 0x5020\n"                      \
	"movabs $0x00AFFB000000FFFF, %rax\n mov %rax, 0x5028\n"                      \
	"movabs $0x00CFF3000000FFFF, %rax\n mov %rax, 0x5030\n"                      \
	"movabs $0x0000890058000067, %rax\n mov %rax, 0x5038\n movq $0, 0x5040\n"    \
	"movabs $0x000082005A00000F, %rax\n mov %rax, 0x5048\n movq $0, 0x5050\n"    \
	"movabs $0x0000890059000067, %rax\n mov %rax, 0x5058\n movq $0, 0x5060\n"    \
	"movq $0x90000, 0x5804\n movw $0x68, 0x5866\n"                               \
	"movw $0x67, 0x4ff0\n movq $0x5000, 0x4ff2\n lgdt 0x4ff0\n"                  \
	"mov $0x6000, %edi\n mov $0x200, %ecx\n xor %eax, %eax\n rep stosq\n"      \
	"movw $0xfff, 0x4fe0\n movq $0x6000, 0x4fe2\n lidt 0x4fe0\n"

/* IDT entry: 64-bit interrupt gate, DPL 3, code 0x08 */
#define GATE(vec, label)                                                             \
	"lea " #label "(%rip), %rax\n mov %ax, 0x6000+" #vec "*16\n"               \
	"movw $8, 0x6000+" #vec "*16+2\n movw $0xee00, 0x6000+" #vec "*16+4\n"     \
	"shr $16, %rax\n mov %ax, 0x6000+" #vec "*16+6\n"                          \
	"shr $16, %rax\n mov %eax, 0x6000+" #vec "*16+8\n"

/* #GP handler: R15 = 13, resume at R14 (the caller's `lea 1f(%rip), %r14`) */
#define GP_HANDLER(label) \
	#label ": mov $13, %r15d\n add $8, %rsp\n mov %r14, (%rsp)\n iretq\n"
#define EXPECT_GP(insn, slot) \
	"lea 1f(%rip), %r14\n xor %r15d, %r15d\n " insn "\n 1: mov %r15, " R(slot) "\n"

static uint64_t slot(struct machine *m, int k)
{
	uint64_t v;
	memcpy(&v, m->ram.host + SLOT_BASE + 8 * k, 8);
	return v;
}

static struct machine *run(const uint8_t *start, const uint8_t *end)
{
	struct x86_cpu_state s;
	struct machine *m = harness_run_long(start, end, &s);
	assert_int_equal(m->run_state, VM_STOP_EXIT);
	return m;
}

/* SGDT/SIDT/LGDT/LIDT, LTR/STR, LLDT/SLDT (register and memory forms) */
SNIPPET(desc_tables,
	TABLES
	"sgdt 0x7000\n movzwl 0x7000, %eax\n mov %rax, " R(0) "\n mov 0x7002, %rax\n mov %rax, " R(1) "\n"
	"sidt 0x7010\n movzwl 0x7010, %eax\n mov %rax, " R(2) "\n mov 0x7012, %rax\n mov %rax, " R(3) "\n"
	"mov $0x38, %eax\n ltr %ax\n str %rdx\n mov %rdx, " R(4) "\n"
	"movw $0x58, 0x7020\n ltr 0x7020\n str 0x7022\n movzwl 0x7022, %eax\n mov %rax, " R(5) "\n"
	"mov $0x48, %eax\n lldt %ax\n sldt %rsi\n mov %rsi, " R(6) "\n"
	"movw $0, 0x7024\n lldt 0x7024\n sldt 0x7026\n movzwl 0x7026, %eax\n mov %rax, " R(7) "\n"
	"movzbl 0x503d, %eax\n mov %rax, " R(8) "\n" /* TSS A's type: busy (0x8B) */
	EXIT)

static void test_descriptor_tables(void **state)
{
	struct machine *m = run(desc_tables_start, desc_tables_end);
	assert_int_equal(slot(m, 0), 0x67);
	assert_int_equal(slot(m, 1), 0x5000);
	assert_int_equal(slot(m, 2), 0xfff);
	assert_int_equal(slot(m, 3), 0x6000);
	assert_int_equal(slot(m, 4), 0x38);
	assert_int_equal(slot(m, 5), 0x58);
	assert_int_equal(slot(m, 6), 0x48);
	assert_int_equal(slot(m, 7), 0);
	assert_int_equal(slot(m, 8), 0x8B);
	harness_free(m);
}

/* LAR/LSL/VERR/VERW on code, data, system and null selectors (register
 * and memory operands): the value and ZF (setz into the next slot) */
SNIPPET(seg_access,
	TABLES
	"mov $0x08, %ecx\n lar %ecx, %eax\n setz %dl\n mov %rax, " R(0) "\n mov %dl, " R(1) "\n"
	"movw $0x10, 0x7030\n lar 0x7030, %eax\n mov %rax, " R(2) "\n"
	"mov $0x10, %ecx\n lsl %ecx, %eax\n mov %rax, " R(3) "\n"
	"movw $0x08, 0x7032\n lsl 0x7032, %rax\n setz %dl\n mov %rax, " R(4) "\n mov %dl, " R(5) "\n"
	"xor %ecx, %ecx\n mov $0x1234, %eax\n lar %ecx, %eax\n setz %dl\n mov %dl, " R(6) "\n mov %rax, " R(7) "\n"
	"mov $0x08, %ecx\n verr %cx\n setz %dl\n mov %dl, " R(8) "\n"
	"verw %cx\n setz %dl\n mov %dl, " R(9) "\n"
	"movw $0x10, 0x7034\n verw 0x7034\n setz %dl\n mov %dl, " R(10) "\n"
	"movw $0x38, 0x7036\n verr 0x7036\n setz %dl\n mov %dl, " R(11) "\n"
	"mov $0x38, %ecx\n lsl %ecx, %eax\n mov %rax, " R(12) "\n"
	EXIT)

static void test_segment_access(void **state)
{
	struct machine *m = run(seg_access_start, seg_access_end);
	assert_int_equal(slot(m, 0), 0x00A09B00);
	assert_int_equal(slot(m, 1) & 0xFF, 1);
	assert_int_equal(slot(m, 2), 0x00C09300);
	assert_int_equal(slot(m, 3), 0xFFFFFFFF);
	assert_int_equal(slot(m, 4), 0xFFFFFFFF);
	assert_int_equal(slot(m, 5) & 0xFF, 1);
	assert_int_equal(slot(m, 6) & 0xFF, 0); /* null: ZF clear, */
	assert_int_equal(slot(m, 7), 0x1234);   /* destination unchanged */
	assert_int_equal(slot(m, 8) & 0xFF, 1); /* code readable */
	assert_int_equal(slot(m, 9) & 0xFF, 0); /* code not writable */
	assert_int_equal(slot(m, 10) & 0xFF, 1);
	assert_int_equal(slot(m, 11) & 0xFF, 0); /* a TSS is neither */
	assert_int_equal(slot(m, 12), 0x67);     /* LSL of a TSS: its limit */
	harness_free(m);
}

/* MOV to/from CR0/2/3/4/8 and DR0/1/7 (also with mod != 3, which the SDM
 * says is ignored), CLTS, SMSW/LMSW (register and memory), INVLPG after a
 * page-table change, INVD/WBINVD */
SNIPPET(ctl_regs,
	TABLES
	"mov %cr0, %rax\n mov %rax, " R(0) "\n"
	"mov %cr4, %rax\n xor $0x400, %rax\n mov %rax, %cr4\n mov %cr4, %rbx\n mov %rbx, " R(1) "\n"
	"xor $0x400, %rax\n mov %rax, %cr4\n"
	"mov %cr3, %rax\n mov %rax, " R(2) "\n"
	"mov $0x12345000, %rax\n mov %rax, %cr2\n mov %cr2, %rbx\n mov %rbx, " R(3) "\n"
	"mov $5, %eax\n mov %rax, %cr8\n mov %cr8, %rbx\n mov %rbx, " R(4) "\n"
	".byte 0x0f, 0x20, 0x18\n mov %rax, " R(5) "\n"             /* mov cr3, rax (mod 0) */
	"mov $0xabc000, %eax\n .byte 0x0f, 0x22, 0x10\n mov %cr2, %rbx\n mov %rbx, " R(6) "\n"
	"mov $0x1111, %eax\n mov %rax, %db0\n mov %db0, %rbx\n mov %rbx, " R(7) "\n"
	"mov $0x2222, %eax\n .byte 0x0f, 0x23, 0x08\n xor %eax, %eax\n .byte 0x0f, 0x21, 0x08\n mov %rax, " R(8) "\n"
	"mov $0x401, %eax\n mov %rax, %db7\n mov %db7, %rbx\n mov %rbx, " R(9) "\n"
	"mov %cr0, %rax\n or $8, %rax\n mov %rax, %cr0\n clts\n mov %cr0, %rax\n mov %rax, " R(10) "\n"
	"smsw %ax\n movzwl %ax, %eax\n mov %rax, " R(11) "\n"
	"smsw 0x7200\n movzwl 0x7200, %eax\n mov %rax, " R(12) "\n"
	"mov %cr0, %rax\n or $2, %eax\n lmsw %ax\n mov %cr0, %rbx\n mov %rbx, " R(13) "\n"
	"mov %cr0, %rax\n and $~2, %eax\n mov %ax, 0x7202\n lmsw 0x7202\n mov %cr0, %rbx\n mov %rbx, " R(14) "\n"
	/* INVLPG: 40 MiB maps 40 MiB, then 42 MiB */
	"movq $0xA1, 0x2800000\n movq $0xB2, 0x2A00000\n"
	"mov 0x2800000, %rax\n mov %rax, " R(15) "\n"
	"movq $0x2A00087, 0x3000+20*8\n invlpg 0x2800000\n mov 0x2800000, %rax\n mov %rax, " R(16) "\n"
	"movq $0x2800087, 0x3000+20*8\n invlpg 0x2800000\n"
	"invd\n wbinvd\n movq $1, " R(17) "\n"
	EXIT)

static void test_control_registers(void **state)
{
	struct machine *m = run(ctl_regs_start, ctl_regs_end);
	uint64_t cr0 = slot(m, 0);
	assert_true(cr0 & X86_CR0_PG);
	assert_true(cr0 & X86_CR0_PE);
	assert_int_equal(slot(m, 1) & 0x400, 0);
	assert_int_equal(slot(m, 2), 0x1000);
	assert_int_equal(slot(m, 3), 0x12345000);
	assert_int_equal(slot(m, 4), 5);
	assert_int_equal(slot(m, 5), 0x1000);
	assert_int_equal(slot(m, 6), 0xabc000);
	assert_int_equal(slot(m, 7), 0x1111);
	assert_int_equal(slot(m, 8), 0x2222);
	assert_int_equal(slot(m, 9) & 0x401, 0x401);
	assert_int_equal(slot(m, 10) & X86_CR0_TS, 0);
	assert_int_equal(slot(m, 11), cr0 & 0xFFFF & ~(uint64_t)X86_CR0_TS);
	assert_int_equal(slot(m, 12), slot(m, 11));
	assert_true(slot(m, 13) & 2);
	assert_false(slot(m, 14) & 2);
	assert_int_equal(slot(m, 15), 0xA1);
	assert_int_equal(slot(m, 16), 0xB2);
	assert_int_equal(slot(m, 17), 1);
	harness_free(m);
}

/* WRMSR/RDMSR, SWAPGS, #GP for an unknown MSR and for RDPMC */
SNIPPET(msrs,
	TABLES
	GATE(13, msrs_gp)
	"mov $0xC0000102, %ecx\n mov $0x1234, %eax\n mov $0x5678, %edx\n wrmsr\n"
	"mov $0xC0000101, %ecx\n mov $0xaaaa, %eax\n xor %edx, %edx\n wrmsr\n"
	"swapgs\n"
	"mov $0xC0000101, %ecx\n rdmsr\n mov %rax, " R(0) "\n mov %rdx, " R(1) "\n"
	"mov $0xC0000102, %ecx\n rdmsr\n mov %rax, " R(2) "\n"
	"mov $0x12345, %ecx\n"
	EXPECT_GP("rdmsr", 3)
	EXPECT_GP("wrmsr", 4)
	"xor %ecx, %ecx\n"
	EXPECT_GP("rdpmc", 5)
	EXIT
	GP_HANDLER(msrs_gp))

static void test_msrs_swapgs(void **state)
{
	struct machine *m = run(msrs_start, msrs_end);
	assert_int_equal(slot(m, 0), 0x1234);
	assert_int_equal(slot(m, 1), 0x5678);
	assert_int_equal(slot(m, 2), 0xaaaa);
	assert_int_equal(slot(m, 3), 13);
	assert_int_equal(slot(m, 4), 13);
	assert_int_equal(slot(m, 5), 13);
	harness_free(m);
}

/* RDTSC moves forward; CPUID leaves agree with each other and with what
 * is implemented (no RDTSCP, BMI1, LZCNT, MOVBE, XSAVE, AVX, RDRAND) */
SNIPPET(tsc_cpuid,
	".code64\n"
	"rdtsc\n shl $32, %rdx\n or %rax, %rdx\n mov %rdx, " R(0) "\n"
	"mov $1000, %ecx\n 1: dec %ecx\n jnz 1b\n"
	"rdtsc\n shl $32, %rdx\n or %rax, %rdx\n mov %rdx, " R(1) "\n"
	"xor %eax, %eax\n cpuid\n mov %rax, " R(2) "\n mov %ebx, 0x7300\n mov %edx, 0x7304\n mov %ecx, 0x7308\n"
	"mov $1, %eax\n cpuid\n mov %rax, " R(3) "\n mov %rcx, " R(4) "\n mov %rdx, " R(5) "\n"
	"mov $7, %eax\n xor %ecx, %ecx\n cpuid\n mov %rbx, " R(6) "\n mov %rcx, " R(7) "\n"
	"mov $0x80000000, %eax\n cpuid\n mov %rax, " R(8) "\n"
	"mov $0x80000001, %eax\n cpuid\n mov %rcx, " R(9) "\n mov %rdx, " R(10) "\n"
	EXIT)

static void test_tsc_cpuid(void **state)
{
	struct machine *m = run(tsc_cpuid_start, tsc_cpuid_end);
	assert_true(slot(m, 1) > slot(m, 0));
	assert_true(slot(m, 2) >= 0xB);
	assert_memory_equal(m->ram.host + 0x7300, "GenuineIntel", 12);
	assert_int_equal((slot(m, 3) >> 8) & 0xF, 6);
	uint32_t ecx = (uint32_t)slot(m, 4), edx = (uint32_t)slot(m, 5);
	/* TSC, MSR, CX8, APIC, SEP, CMOV, CLFSH, MMX, FXSR, SSE, SSE2 */
	uint32_t need_edx = 1u << 4 | 1u << 5 | 1u << 8 | 1u << 9 | 1u << 11 | 1u << 15 | 1u << 19 | 1u << 23 |
			    1u << 24 | 1u << 25 | 1u << 26;
	assert_int_equal(edx & need_edx, need_edx);
	/* SSE3, SSSE3, CX16, SSE4.1, SSE4.2, POPCNT; not MONITOR, MOVBE, XSAVE, AVX, RDRAND */
	uint32_t need_ecx = 1u << 0 | 1u << 9 | 1u << 13 | 1u << 19 | 1u << 20 | 1u << 23;
	assert_int_equal(ecx & need_ecx, need_ecx);
	assert_int_equal(ecx & (1u << 3 | 1u << 22 | 1u << 26 | 1u << 28 | 1u << 30), 0);
	/* leaf 7: no FSGSBASE, BMI1, AVX2, SMEP, BMI2 */
	assert_int_equal(slot(m, 6) & (1u << 0 | 1u << 3 | 1u << 5 | 1u << 7 | 1u << 8), 0);
	assert_true(slot(m, 8) >= 0x80000001);
	assert_int_equal(slot(m, 9) & (1u << 5), 0); /* no LZCNT */
	uint32_t xd = (uint32_t)slot(m, 10);
	assert_int_equal(xd & (1u << 11 | 1u << 20 | 1u << 29), 1u << 11 | 1u << 20 | 1u << 29);
	assert_int_equal(xd & (1u << 27), 0); /* no RDTSCP */
	harness_free(m);
}

/* Privilege changes: IRETQ to CPL 3; there INT n, INT3, INT1 through
 * DPL-3 gates and back with IRETQ; CLI, HLT, IN, OUT give #GP; SYSCALL
 * (SFMASK clears DF) and SYSRET; SYSENTER and SYSEXIT; MOV from CS/SS.
 * Also CLI/STI at CPL 0. */
SNIPPET(priv,
	TABLES
	GATE(13, priv_gp) GATE(3, priv_int3) GATE(1, priv_int1) GATE(0x80, priv_int80) GATE(0x81, priv_exit)
	"mov $0x38, %eax\n ltr %ax\n"
	"cli\n pushfq\n pop %rax\n mov %rax, " R(20) "\n sti\n pushfq\n pop %rax\n mov %rax, " R(21) "\n cli\n"
	"mov $0xC0000081, %ecx\n xor %eax, %eax\n mov $0x00180008, %edx\n wrmsr\n"
	"mov $0xC0000082, %ecx\n lea priv_syscall(%rip), %rax\n mov %rax, %rdx\n shr $32, %rdx\n wrmsr\n"
	"mov $0xC0000084, %ecx\n mov $0x400, %eax\n xor %edx, %edx\n wrmsr\n"
	"mov $0x174, %ecx\n mov $8, %eax\n xor %edx, %edx\n wrmsr\n"
	"mov $0x175, %ecx\n mov $0x88000, %eax\n wrmsr\n"
	"mov $0x176, %ecx\n lea priv_sysenter(%rip), %rax\n mov %rax, %rdx\n shr $32, %rdx\n wrmsr\n"
	"push $0x23\n push $0x80000\n push $0x202\n push $0x2B\n lea priv_user(%rip), %rax\n push %rax\n iretq\n"
	"priv_user: mov %cs, %eax\n mov %rax, " R(0) "\n mov %ss, 0x7400\n"
	"int $0x80\n int3\n .byte 0xf1\n"
	EXPECT_GP("cli", 4)
	EXPECT_GP("hlt", 5)
	EXPECT_GP("in $0x80, %al", 6)
	EXPECT_GP("out %al, $0x80", 7)
	"std\n syscall\n"
	"priv_back: mov %cs, %eax\n mov %rax, " R(12) "\n pushfq\n pop %rax\n mov %rax, " R(13) "\n cld\n"
	"mov %rsp, %rcx\n sysenter\n"
	"priv_user2: mov %cs, %eax\n mov %rax, " R(16) "\n mov %ss, %eax\n mov %rax, " R(17) "\n"
	"int $0x81\n"
	GP_HANDLER(priv_gp)
	"priv_int80: mov 8(%rsp), %rax\n mov %rax, " R(1) "\n iretq\n"
	"priv_int3: movq $3, " R(2) "\n iretq\n"
	"priv_int1: movq $1, " R(3) "\n iretq\n"
	"priv_syscall: mov %cs, %eax\n mov %rax, " R(8) "\n lea priv_back(%rip), %rax\n sub %rcx, %rax\n"
	"mov %rax, " R(9) "\n pushfq\n pop %rax\n"
	"mov %rax, " R(10) "\n mov %r11, " R(11) "\n sysretq\n"
	"priv_sysenter: mov %cs, %eax\n mov %rax, " R(14) "\n mov %rsp, " R(15) "\n"
	"lea priv_user2(%rip), %rdx\n sysexitq\n"
	"priv_exit: " EXIT)

static void test_privilege_transitions(void **state)
{
	struct machine *m = run(priv_start, priv_end);
	assert_int_equal(slot(m, 20) & 0x200, 0);     /* CLI */
	assert_int_equal(slot(m, 21) & 0x200, 0x200); /* STI */
	assert_int_equal(slot(m, 0), 0x2B);           /* IRETQ to CPL 3 */
	uint16_t ss;
	memcpy(&ss, m->ram.host + 0x7400, 2);
	assert_int_equal(ss, 0x23);
	assert_int_equal(slot(m, 1), 0x2B);           /* INT 0x80 from CPL 3 */
	assert_int_equal(slot(m, 2), 3);
	assert_int_equal(slot(m, 3), 1);
	for (int k = 4; k <= 7; k++)
		assert_int_equal(slot(m, k), 13);     /* CLI, HLT, IN, OUT at CPL 3 */
	assert_int_equal(slot(m, 8), 0x08);           /* SYSCALL */
	assert_int_equal(slot(m, 9), 0);              /* RCX: the return address */
	assert_int_equal(slot(m, 10) & 0x400, 0);     /* SFMASK cleared DF */
	assert_int_equal(slot(m, 11) & 0x400, 0x400);
	assert_int_equal(slot(m, 12), 0x2B);          /* SYSRET */
	assert_int_equal(slot(m, 13) & 0x400, 0x400);
	assert_int_equal(slot(m, 14), 0x08);          /* SYSENTER */
	assert_int_equal(slot(m, 15), 0x88000);
	assert_int_equal(slot(m, 16), 0x2B);          /* SYSEXIT (64-bit) */
	assert_int_equal(slot(m, 17), 0x33);
	harness_free(m);
}

/* MOV from/to segment registers (register and memory), PUSH/POP FS/GS,
 * LSS/LFS/LGS with 64-bit (REX.W, as bytes: the assembler knows only
 * AMD's forms) and 32-bit offsets */
SNIPPET(seg_loads,
	TABLES
	"mov %ds, %eax\n mov %rax, " R(0) "\n"
	"mov %es, 0x7300\n movzwl 0x7300, %eax\n mov %rax, " R(1) "\n"
	"mov $0x30, %ecx\n mov %ecx, %es\n mov %es, %eax\n mov %rax, " R(2) "\n"
	"movw $0x20, 0x7302\n mov 0x7302, %fs\n mov %fs, %eax\n mov %rax, " R(3) "\n"
	"push %fs\n pop %rax\n mov %rax, " R(4) "\n"
	"push $0x10\n pop %gs\n mov %gs, %eax\n mov %rax, " R(5) "\n"
	"push %gs\n pop %rbx\n mov %rbx, " R(6) "\n"
	"push $0x30\n pop %fs\n mov %fs, %eax\n mov %rax, " R(7) "\n"
	"movq $0x12345, 0x7310\n movw $0x10, 0x7318\n mov %rsp, %r9\n .byte 0x4c, 0x0f, 0xb2, 0x04, 0x25, 0x10, 0x73, 0x00, 0x00\n mov %r8, " R(8) "\n"
	"mov %ss, %eax\n mov %rax, " R(9) "\n"
	"movl $0xabcd, 0x7320\n movw $0x20, 0x7324\n lfs 0x7320, %edx\n mov %rdx, " R(10) "\n"
	"mov %fs, %eax\n mov %rax, " R(11) "\n"
	"movq $0x777, 0x7330\n movw $0x30, 0x7338\n .byte 0x48, 0x0f, 0xb5, 0x34, 0x25, 0x30, 0x73, 0x00, 0x00\n mov %rsi, " R(12) "\n"
	"mov %gs, %eax\n mov %rax, " R(13) "\n"
	EXIT)

static void test_segment_loads(void **state)
{
	struct machine *m = run(seg_loads_start, seg_loads_end);
	static const uint64_t want[14] = { 0x10, 0x10, 0x30, 0x20, 0x20, 0x10, 0x10, 0x30,
					   0x12345, 0x10, 0xabcd, 0x20, 0x777, 0x30 };
	for (int k = 0; k < 14; k++)
		assert_int_equal(slot(m, k), want[k]);
	harness_free(m);
}

/* Far CALL/JMP through m16:64, far RET and far RET imm16 */
SNIPPET(far,
	TABLES
	"lea far_target(%rip), %rax\n mov %rax, 0x7400\n movw $8, 0x7408\n"
	".byte 0x48, 0xff, 0x1c, 0x25, 0x00, 0x74, 0x00, 0x00\n"   /* rex.w lcall *0x7400 */
	"far_ret: movq $1, " R(2) "\n"
	"lea far_jtarget(%rip), %rax\n mov %rax, 0x7410\n movw $8, 0x7418\n"
	".byte 0x48, 0xff, 0x2c, 0x25, 0x10, 0x74, 0x00, 0x00\n"   /* rex.w ljmp *0x7410 */
	"ud2\n"
	"far_jtarget: movq $2, " R(3) "\n"
	"mov %rsp, %rbx\n push $0x55\n push $0x66\n push $8\n lea far_back(%rip), %rax\n push %rax\n"
	".byte 0x48, 0xca, 0x10, 0x00\n"                            /* lretq $16 */
	"far_back: sub %rsp, %rbx\n mov %rbx, " R(4) "\n"
	EXIT
	"far_target: lea far_ret(%rip), %rax\n sub (%rsp), %rax\n mov %rax, " R(0) "\n"
	"mov 8(%rsp), %rax\n mov %rax, " R(1) "\n .byte 0x48, 0xcb\n") /* lretq */

static void test_far_transfers(void **state)
{
	struct machine *m = run(far_start, far_end);
	assert_int_equal(slot(m, 0), 0);     /* return address pushed */
	assert_int_equal(slot(m, 1), 8);     /* and CS */
	assert_int_equal(slot(m, 2), 1);
	assert_int_equal(slot(m, 3), 2);
	assert_int_equal(slot(m, 4), 0);     /* RET imm16 popped the 16 bytes */
	harness_free(m);
}

/* IN/OUT with immediate and DX ports, INS/OUTS with and without REP, on a
 * test device at ports 0x80-0x87 (reads: 0x10203040 + port offset;
 * writes logged) */
static uint64_t io_log[32][3];
static unsigned io_nlog;

static uint64_t test_port_read(void *opaque, uint64_t off, unsigned size)
{
	return (0x10203040u + off) & (size == 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1);
}

static void test_port_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
	if (io_nlog < 32) {
		io_log[io_nlog][0] = off;
		io_log[io_nlog][1] = size;
		io_log[io_nlog][2] = v;
		io_nlog++;
	}
}

static const struct io_ops test_port_ops = { test_port_read, test_port_write };

SNIPPET(ports,
	".code64\n"
	"in $0x80, %al\n movzbl %al, %eax\n mov %rax, " R(0) "\n"
	"in $0x84, %eax\n mov %rax, " R(1) "\n"
	"mov $0x81, %edx\n in %dx, %al\n movzbl %al, %eax\n mov %rax, " R(2) "\n"
	"mov $0x80, %edx\n in %dx, %eax\n mov %rax, " R(3) "\n"
	"in %dx, %ax\n movzwl %ax, %eax\n mov %rax, " R(4) "\n"
	"mov $0x5a, %al\n out %al, $0x81\n mov $0xdeadbeef, %eax\n out %eax, $0x84\n"
	"mov $0x82, %edx\n mov $0x77, %al\n out %al, %dx\n mov $0x80, %edx\n mov $0xcafef00d, %eax\n out %eax, %dx\n"
	"mov $0x7500, %edi\n mov $0x80, %edx\n insb\n insl\n mov $3, %ecx\n rep insb\n mov $2, %ecx\n rep insl\n"
	"mov %rdi, " R(5) "\n"
	"movabs $0x0807060504030201, %rax\n mov %rax, 0x7600\n movabs $0x100f0e0d0c0b0a09, %rax\n mov %rax, 0x7608\n"
	"mov $0x7600, %esi\n outsb\n outsl\n mov $2, %ecx\n rep outsb\n mov $1, %ecx\n rep outsl\n"
	"mov %rsi, " R(6) "\n"
	EXIT)

static void test_port_io(void **state)
{
	struct machine *m = harness_new(64 * MiB, 1);
	io_register(m->pio, 0x80, 8, &test_port_ops, NULL, "test-ports");
	io_nlog = 0;
	memcpy(m->ram.host + 0x100000, ports_start, (size_t)(ports_end - ports_start));
	struct x86_cpu_state s;
	harness_long_mode(m, &s, 0x100000);
	assert_int_equal(emu_accel_ops.set_state(&m->vcpus[0], &s), 0);
	harness_run(m);
	assert_int_equal(m->run_state, VM_STOP_EXIT);
	assert_int_equal(slot(m, 0), 0x40);
	assert_int_equal(slot(m, 1), 0x10203044);
	assert_int_equal(slot(m, 2), 0x41);
	assert_int_equal(slot(m, 3), 0x10203040);
	assert_int_equal(slot(m, 4), 0x3040);
	/* INSB, INSL, REP INSB x3, REP INSL x2: 1 + 4 + 3 + 8 bytes */
	assert_int_equal(slot(m, 5), 0x7500 + 16);
	static const uint8_t in[16] = { 0x40, 0x40, 0x30, 0x20, 0x10, 0x40, 0x40, 0x40,
					0x40, 0x30, 0x20, 0x10, 0x40, 0x30, 0x20, 0x10 };
	assert_memory_equal(m->ram.host + 0x7500, in, 16);
	assert_int_equal(slot(m, 6), 0x7600 + 1 + 4 + 2 + 4);
	static const uint64_t out[][3] = {
		{ 1, 1, 0x5a }, { 4, 4, 0xdeadbeef }, { 2, 1, 0x77 }, { 0, 4, 0xcafef00d },
		{ 0, 1, 0x01 }, { 0, 4, 0x05040302 }, { 0, 1, 0x06 }, { 0, 1, 0x07 }, { 0, 4, 0x0b0a0908 },
	};
	assert_int_equal(io_nlog, 9);
	for (unsigned k = 0; k < 9; k++) {
		assert_int_equal(io_log[k][0], out[k][0]);
		assert_int_equal(io_log[k][1], out[k][1]);
		assert_int_equal(io_log[k][2], out[k][2]);
	}
	harness_free(m);
}

/* RCPPS/RCPSS/RSQRTPS/RSQRTSS (register and memory): "the relative error
 * for this approximation is |Relative Error| <= 1.5 * 2^-12" (SDM); the
 * host's own approximation differs, so the differential tests cannot
 * compare them. Operands at 0x7600 (packed) and 0x7610 (scalar). */
SNIPPET(approx,
	".code64\n"
	"movaps 0x7600, %xmm1\n rcpps %xmm1, %xmm2\n movups %xmm2, " R(0) "\n"
	"rcpps 0x7600, %xmm3\n movups %xmm3, " R(2) "\n"
	"movss 0x7610, %xmm4\n rcpss %xmm4, %xmm5\n movss %xmm5, " R(4) "\n"
	"rcpss 0x7610, %xmm6\n movss %xmm6, " R(5) "\n"
	"rsqrtps %xmm1, %xmm2\n movups %xmm2, " R(6) "\n"
	"rsqrtps 0x7600, %xmm3\n movups %xmm3, " R(8) "\n"
	"rsqrtss %xmm4, %xmm5\n movss %xmm5, " R(10) "\n"
	"rsqrtss 0x7610, %xmm6\n movss %xmm6, " R(11) "\n"
	EXIT)

static float fslot(struct machine *m, int k, int lane)
{
	float f;
	memcpy(&f, m->ram.host + SLOT_BASE + 8 * k + 4 * lane, 4);
	return f;
}

static void test_rcp_rsqrt(void **state)
{
	struct machine *m = harness_new(64 * MiB, 1);
	static const float in[5] = { 1.0f, 3.0f, 0.1f, 12345.678f, 7.25f };
	memcpy(m->ram.host + 0x7600, in, 16);
	memcpy(m->ram.host + 0x7610, &in[4], 4);
	memcpy(m->ram.host + 0x100000, approx_start, (size_t)(approx_end - approx_start));
	struct x86_cpu_state s;
	harness_long_mode(m, &s, 0x100000);
	assert_int_equal(emu_accel_ops.set_state(&m->vcpus[0], &s), 0);
	harness_run(m);
	assert_int_equal(m->run_state, VM_STOP_EXIT);
	const double bound = 1.5 / 4096;
	for (int lane = 0; lane < 4; lane++)
		for (int k = 0; k <= 2; k += 2) {
			assert_true(fabs(fslot(m, k, lane) * in[lane] - 1.0) <= bound);
			assert_true(fabs(fslot(m, 6 + k, lane) * sqrt(in[lane]) - 1.0) <= bound);
		}
	for (int k = 4; k <= 5; k++)
		assert_true(fabs(fslot(m, k, 0) * in[4] - 1.0) <= bound);
	for (int k = 10; k <= 11; k++)
		assert_true(fabs(fslot(m, k, 0) * sqrt(in[4]) - 1.0) <= bound);
	harness_free(m);
}

/* F3 0F BC/BD on a CPU without BMI1/LZCNT (CPUID: test_tsc_cpuid) are
 * BSF/BSR: a host that has them runs TZCNT/LZCNT instead. */
SNIPPET(rep_bsf,
	".code64\n"
	"mov $0x10, %eax\n rep bsr %eax, %ecx\n mov %rcx, " R(0) "\n"
	"movq $0x10, 0x7200\n rep bsr 0x7200, %rdx\n mov %rdx, " R(1) "\n"
	"xor %eax, %eax\n mov $77, %ecx\n rep bsf %eax, %ecx\n setz %dl\n mov %rcx, " R(2) "\n mov %dl, " R(3) "\n"
	"movq $0x100, 0x7200\n rep bsf 0x7200, %rsi\n mov %rsi, " R(4) "\n"
	"movq $0, 0x7200\n mov $5, %esi\n rep bsr 0x7200, %rsi\n setz %dl\n mov %rsi, " R(5) "\n mov %dl, " R(6) "\n"
	EXIT)

static void test_rep_bsf_bsr(void **state)
{
	struct machine *m = run(rep_bsf_start, rep_bsf_end);
	assert_int_equal(slot(m, 0), 4);      /* LZCNT would give 27 */
	assert_int_equal(slot(m, 1), 4);
	assert_int_equal(slot(m, 2), 77);     /* zero source: unchanged, ZF (TZCNT: 32, CF) */
	assert_int_equal(slot(m, 3) & 0xFF, 1);
	assert_int_equal(slot(m, 4), 8);
	assert_int_equal(slot(m, 5), 5);
	assert_int_equal(slot(m, 6) & 0xFF, 1);
	harness_free(m);
}

/* 66 on near branches in 64-bit mode: Intel 64 ignores it (rel32, no
 * RIP truncation); AMD64 (the host the differential tests may run on)
 * reads a rel16 and truncates RIP to 16 bits, so no native oracle. Each
 * branch skips an `inc eax`; CALL's return address is checked; 66 RET
 * pops 8 bytes. */
SNIPPET(branch66,
	".code64\n"
	"xor %eax, %eax\n"
	".byte 0x66, 0xe9, 0x02, 0x00, 0x00, 0x00\n inc %eax\n"               /* jmp rel32 */
	"stc\n .byte 0x66, 0x0f, 0x82, 0x02, 0x00, 0x00, 0x00\n inc %eax\n"   /* jc rel32 */
	".byte 0x66, 0xe8, 0x02, 0x00, 0x00, 0x00\n 3: inc %eax\n"            /* call rel32 */
	"pop %rcx\n lea 3b(%rip), %rdx\n sub %rcx, %rdx\n"
	"mov %rax, " R(0) "\n mov %rdx, " R(1) "\n"
	"mov %rsp, %rbx\n call 1f\n jmp 2f\n 1: .byte 0x66, 0xc3\n"
	"2: sub %rsp, %rbx\n mov %rbx, " R(2) "\n"
	EXIT)

static void test_near_branch_66(void **state)
{
	struct machine *m = run(branch66_start, branch66_end);
	assert_int_equal(slot(m, 0), 0);  /* every inc skipped */
	assert_int_equal(slot(m, 1), 0);  /* return address: the inc after the call */
	assert_int_equal(slot(m, 2), 0);  /* 66 RET popped 8 bytes */
	harness_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_descriptor_tables),
		cmocka_unit_test(test_segment_access),
		cmocka_unit_test(test_control_registers),
		cmocka_unit_test(test_msrs_swapgs),
		cmocka_unit_test(test_tsc_cpuid),
		cmocka_unit_test(test_privilege_transitions),
		cmocka_unit_test(test_segment_loads),
		cmocka_unit_test(test_far_transfers),
		cmocka_unit_test(test_port_io),
		cmocka_unit_test(test_rcp_rsqrt),
		cmocka_unit_test(test_rep_bsf_bsr),
		cmocka_unit_test(test_near_branch_66),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
