/* Known-answer tests of SSSE3/SSE4.1/SSE4.2 on the software CPU (under
 * ASan/UBSan). The differential tests (tests/diff) compare every form with
 * the host CPU; these pin results that do not depend on having a host with
 * these extensions: CPUID bits, the CRC-32C check value, string searches
 * the way glibc's strcspn/strstr use PCMPISTRI, rounding, shuffles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "emu_harness.h"

SNIPPET(sse4_cpuid,
	".code64\n"
	"mov $1, %eax\n cpuid\n mov %ecx, %r8d\n"
	"mov $0, %al\n out %al, $0xf4\n")

/* CRC-32C of "123456789" is 0xE3069283 (the standard check value):
 * byte by byte into r8, 8+1 bytes (crc32q, crc32b) into r9, words and a
 * byte (crc32w, crc32l forms) into r10. */
SNIPPET(sse4_crc,
	".code64\n"
	"mov $0xffffffff, %eax\n lea sse4_crc_msg(%rip), %rsi\n mov $9, %ecx\n"
	"1: crc32b (%rsi), %eax\n inc %rsi\n dec %ecx\n jnz 1b\n not %eax\n mov %eax, %r8d\n"
	"mov $-1, %rax\n lea sse4_crc_msg(%rip), %rsi\n crc32q (%rsi), %rax\n crc32b 8(%rsi), %eax\n"
	"not %eax\n mov %rax, %r9\n"
	"mov $0xffffffff, %edx\n lea sse4_crc_msg(%rip), %rsi\n crc32w (%rsi), %edx\n"
	"mov 2(%rsi), %ebx\n crc32l %ebx, %edx\n mov 6(%rsi), %bx\n crc32w %bx, %edx\n"
	"mov 8(%rsi), %bl\n crc32b %bl, %edx\n not %edx\n mov %edx, %r10d\n"
	"mov $0, %al\n out %al, $0xf4\n"
	"sse4_crc_msg: .ascii \"123456789\"\n")

/* PCMPISTRI: first of " ,o" in "hello, world" (equal any, imm 0x00) ->
 * r8 = 4; "wor" in "hello, world" (equal ordered, imm 0x0C) -> r9 = 7;
 * no "xyz" -> r10 = 16 with CF clear (r11 = setc); PCMPISTRM byte mask
 * (imm 0x40) of the 'l's (r12 low qword); PCMPESTRI in ranges mode
 * (imm 0x04) for the first letter in 'a'..'z' of "12ab" with lengths 2
 * and 4 -> r13 = 2. */
SNIPPET(sse4_str,
	".code64\n"
	"movdqu sse4_str_hay(%rip), %xmm2\n"
	"movdqu sse4_str_set(%rip), %xmm1\n pcmpistri $0x00, %xmm2, %xmm1\n mov %rcx, %r8\n"
	"movdqu sse4_str_wor(%rip), %xmm1\n pcmpistri $0x0c, %xmm2, %xmm1\n mov %rcx, %r9\n"
	"movdqu sse4_str_xyz(%rip), %xmm1\n pcmpistri $0x0c, %xmm2, %xmm1\n mov %rcx, %r10\n setc %r11b\n"
	"movdqu sse4_str_l(%rip), %xmm1\n pcmpistrm $0x40, %xmm2, %xmm1\n movq %xmm0, %r12\n"
	"movdqu sse4_str_range(%rip), %xmm1\n movdqu sse4_str_num(%rip), %xmm2\n"
	"mov $2, %eax\n mov $-4, %edx\n pcmpestri $0x04, %xmm2, %xmm1\n mov %rcx, %r13\n"
	"mov $0, %al\n out %al, $0xf4\n"
	"sse4_str_hay: .ascii \"hello, world\\0\\0\\0\\0\"\n"
	"sse4_str_set: .ascii \" ,o\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\"\n"
	"sse4_str_wor: .ascii \"wor\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\"\n"
	"sse4_str_xyz: .ascii \"xyz\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\"\n"
	"sse4_str_l: .ascii \"l\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\"\n"
	"sse4_str_range: .ascii \"az\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\"\n"
	"sse4_str_num: .ascii \"12ab\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\"\n")

/* PSHUFB byte reversal (r8/r9), PALIGNR by 3 (r10), PMOVZXBW (r11),
 * PTEST ZF/CF (r12 = setz, r13 = setc), ROUNDSD nearest-even and floor of
 * 2.5 and -2.5 (r14, r15 as doubles), PHMINPOSUW (rbx). */
SNIPPET(sse4_misc,
	".code64\n"
	"movdqu sse4_m_bytes(%rip), %xmm1\n movdqa %xmm1, %xmm3\n"
	"movdqu sse4_m_rev(%rip), %xmm2\n pshufb %xmm2, %xmm1\n movq %xmm1, %r8\n pextrq $1, %xmm1, %r9\n"
	"movdqa %xmm3, %xmm4\n palignr $3, %xmm3, %xmm4\n movq %xmm4, %r10\n"
	"pmovzxbw %xmm3, %xmm5\n movq %xmm5, %r11\n"
	"pxor %xmm6, %xmm6\n ptest %xmm3, %xmm6\n setz %r12b\n setc %r13b\n"
	"movsd sse4_m_half(%rip), %xmm7\n roundsd $0, %xmm7, %xmm8\n movq %xmm8, %r14\n"
	"movsd sse4_m_nhalf(%rip), %xmm7\n roundsd $1, %xmm7, %xmm9\n movq %xmm9, %r15\n"
	"movdqu sse4_m_words(%rip), %xmm10\n phminposuw %xmm10, %xmm11\n movq %xmm11, %rbx\n"
	"mov $0, %al\n out %al, $0xf4\n"
	"sse4_m_bytes: .byte 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
	"sse4_m_rev: .byte 15,14,13,12,11,10,9,8,7,6,5,4,3,2,1,0x80\n"
	"sse4_m_half: .double 2.5\n"
	"sse4_m_nhalf: .double -2.5\n"
	"sse4_m_words: .short 9,7,300,7,65535,8,10,11\n")

static struct machine *run_long(const uint8_t *start, const uint8_t *end, struct x86_cpu_state *out)
{
	struct machine *m = harness_run_long(start, end, out);
	assert_int_equal(m->run_state, VM_STOP_EXIT);
	return m;
}

static void test_cpuid_bits(void **state)
{
	struct x86_cpu_state s;
	struct machine *m = run_long(sse4_cpuid_start, sse4_cpuid_end, &s);
	uint32_t ecx = (uint32_t)s.gpr[R_R8];
	assert_true(ecx & (1u << 0));   /* SSE3 */
	assert_true(ecx & (1u << 9));   /* SSSE3 */
	assert_true(ecx & (1u << 19));  /* SSE4.1 */
	assert_true(ecx & (1u << 20));  /* SSE4.2 */
	assert_true(ecx & (1u << 23));  /* POPCNT */
	assert_false(ecx & (1u << 1));  /* no PCLMULQDQ */
	assert_false(ecx & (1u << 22)); /* no MOVBE */
	assert_false(ecx & (1u << 25)); /* no AES */
	assert_false(ecx & (1u << 28)); /* no AVX */
	harness_free(m);
}

static void test_crc32c(void **state)
{
	struct x86_cpu_state s;
	struct machine *m = run_long(sse4_crc_start, sse4_crc_end, &s);
	assert_int_equal(s.gpr[R_R8], 0xE3069283);
	assert_int_equal(s.gpr[R_R9], 0xE3069283); /* 32-bit result zero-extends RAX */
	assert_int_equal(s.gpr[R_R10], 0xE3069283);
	harness_free(m);
}

static void test_string_compare(void **state)
{
	struct x86_cpu_state s;
	struct machine *m = run_long(sse4_str_start, sse4_str_end, &s);
	assert_int_equal(s.gpr[R_R8], 4);
	assert_int_equal(s.gpr[R_R9], 7);
	assert_int_equal(s.gpr[R_R10], 16);
	assert_int_equal(s.gpr[R_R11] & 0xFF, 0);
	/* "hello, world": 'l' at 2, 3, 10 -> bytes 2 and 3 of the low qword */
	assert_int_equal(s.gpr[R_R12], 0x00000000FFFF0000ULL);
	assert_int_equal(s.gpr[R_R13], 2);
	harness_free(m);
}

static void test_shuffles_round(void **state)
{
	struct x86_cpu_state s;
	struct machine *m = run_long(sse4_misc_start, sse4_misc_end, &s);
	assert_int_equal(s.gpr[R_R8], 0x08090A0B0C0D0E0FULL);
	assert_int_equal(s.gpr[R_R9], 0x0001020304050607ULL);
	assert_int_equal(s.gpr[R_R10], 0x0A09080706050403ULL);
	assert_int_equal(s.gpr[R_R11], 0x0003000200010000ULL);
	assert_int_equal(s.gpr[R_R12] & 0xFF, 1);
	assert_int_equal(s.gpr[R_R13] & 0xFF, 0);
	double r14, r15;
	memcpy(&r14, &s.gpr[R_R14], 8);
	memcpy(&r15, &s.gpr[R_R15], 8);
	assert_true(r14 == 2.0);
	assert_true(r15 == -3.0);
	assert_int_equal(s.gpr[R_RBX], 0x0000000000010007ULL);
	harness_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpuid_bits),
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_string_compare),
		cmocka_unit_test(test_shuffles_round),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
