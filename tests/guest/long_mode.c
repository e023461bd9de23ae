/* 64-bit long mode: entered by start.S (PAE paging, EFER.LME, far jump);
 * checks the architectural state and a few things only 64-bit code can do. */
#include "lib.h"

int test_main(void);

static volatile uint64_t rip_target = 0x1122334455667788ull;

int test_main(void)
{
	serial_init();
	gprintf("long mode test\n");
	uint64_t efer = rdmsr(0xC0000080);
	CHECK(efer & (1u << 8), "EFER.LME clear (efer=%lx)", (unsigned long)efer);
	CHECK(efer & (1u << 10), "EFER.LMA clear: not in long mode (efer=%lx)", (unsigned long)efer);
	uint64_t cr0, cr4, cr3;
	__asm__ volatile("mov %%cr0, %0; mov %%cr4, %1; mov %%cr3, %2" : "=r"(cr0), "=r"(cr4), "=r"(cr3));
	CHECK((cr0 & 0x80000001) == 0x80000001, "CR0.PG/PE not set (cr0=%lx)", (unsigned long)cr0);
	CHECK(cr4 & (1u << 5), "CR4.PAE not set (cr4=%lx)", (unsigned long)cr4);
	extern char pml4[];
	CHECK((cr3 & ~0xFFFul) == (uint64_t)(uintptr_t)pml4, "CR3 %lx is not our PML4", (unsigned long)cr3);
	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	CHECK(cs == 0x18, "CS is %x, want the 64-bit selector 0x18", cs);

	uint32_t r[4];
	cpuid(0x80000000, 0, r);
	CHECK(r[0] >= 0x80000001, "CPUID max extended leaf %x", r[0]);
	cpuid(0x80000001, 0, r);
	CHECK(r[3] & (1u << 29), "CPUID does not report long mode (edx=%x)", r[3]);

	/* 64-bit registers and arithmetic. */
	uint64_t a = 0xFEDCBA9876543210ull, hi, lo;
	__asm__("mulq %3" : "=a"(lo), "=d"(hi) : "a"(a), "r"(0x100000001ull));
	CHECK(lo == 0x7530ECA876543210ull && hi == 0xFEDCBA99ull, "MUL 64x64: %lx:%lx",
	      (unsigned long)hi, (unsigned long)lo);
	uint64_t sh = 1;
	__asm__("shlq $63, %0" : "+r"(sh));
	CHECK(sh == 0x8000000000000000ull, "SHL 63 gave %lx", (unsigned long)sh);
	/* RIP-relative load. */
	uint64_t v;
	__asm__ volatile("movq rip_target(%%rip), %0" : "=r"(v));
	CHECK(v == 0x1122334455667788ull, "RIP-relative load gave %lx", (unsigned long)v);
	/* R8-R15 survive and are independent. */
	uint64_t r8 = 0, r15 = 0;
	__asm__ volatile("mov $0x0808080808080808, %%r8; mov $0x1515151515151515, %%r15;"
			 "mov %%r8, %0; mov %%r15, %1" : "=r"(r8), "=r"(r15) :: "r8", "r15");
	CHECK(r8 == 0x0808080808080808ull && r15 == 0x1515151515151515ull, "R8/R15 wrong");
	/* String ops with 64-bit elements. */
	static uint64_t src[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, dst[8];
	void *d = dst, *s = src;
	uint64_t n = 8;
	__asm__ volatile("rep movsq" : "+D"(d), "+S"(s), "+c"(n) :: "memory");
	for (int i = 0; i < 8; i++)
		CHECK(dst[i] == (uint64_t)i + 1, "REP MOVSQ element %d = %lx", i, (unsigned long)dst[i]);
	/* A 64-bit push/pop pair keeps all 64 bits. */
	uint64_t pushed = 0xDEADBEEFCAFEF00Dull, popped;
	__asm__ volatile("push %1; pop %0" : "=r"(popped) : "r"(pushed));
	CHECK(popped == pushed, "PUSH/POP lost bits: %lx", (unsigned long)popped);
	gprintf("PASS\n");
	return EXIT_PASS;
}
