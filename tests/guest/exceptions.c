/* Exceptions: divide error, #UD, #BP, #GP (non-canonical address, selector
 * error code, null far jump), #PF (not present read and write, write to a read-only
 * page; CR2 and error code). Each handler records what it saw and resumes
 * at a recovery address set before the faulting instruction. */
#include "lib.h"

int test_main(void);

static volatile uint64_t seen_vector, seen_error, seen_cr2, seen_rip;
static volatile unsigned seen_count;
static volatile uint64_t resume_at;

static void on_exception(struct frame *f)
{
	seen_vector = f->vector;
	seen_error = f->error;
	seen_rip = f->rip;
	__asm__ volatile("mov %%cr2, %0" : "=r"(seen_cr2));
	seen_count++;
	if (resume_at)
		f->rip = resume_at;
}

static void expect(unsigned vector, uint64_t error, const char *what)
{
	CHECK(seen_count == 1, "%s: %u exceptions, want 1", what, seen_count);
	CHECK(seen_vector == vector, "%s: vector %lu, want %u", what, (unsigned long)seen_vector, vector);
	CHECK(seen_error == error, "%s: error code %lx, want %lx", what, (unsigned long)seen_error,
	      (unsigned long)error);
	gprintf("%s: vector %u error %lx ok\n", what, vector, (unsigned long)error);
}

static void reset_seen(void)
{
	seen_vector = seen_error = seen_cr2 = seen_rip = 0;
	seen_count = 0;
}

/* Runs INSN with resume_at = the label after it. */
#define FAULT(insn, ...)                                                  \
	do {                                                              \
		reset_seen();                                             \
		__asm__ volatile("lea 1f(%%rip), %%rax; mov %%rax, resume_at(%%rip);" \
				 insn "; 1:" ::: "rax", "memory", ##__VA_ARGS__); \
	} while (0)

/* Same, with ADDR in a register as operand %0. */
#define FAULT_AT(insn, addr)                                              \
	do {                                                              \
		reset_seen();                                             \
		__asm__ volatile("lea 1f(%%rip), %%rax; mov %%rax, resume_at(%%rip);" \
				 insn "; 1:" :: "r"(addr) : "rax", "memory"); \
	} while (0)

extern char page_dirs[];

int test_main(void)
{
	serial_init();
	gprintf("exception test\n");
	idt_init();
	for (unsigned v = 0; v < 32; v++)
		set_handler(v, on_exception);

	/* Divide error: DIV by zero, no error code. */
	FAULT("xor %%ecx, %%ecx; mov $1, %%eax; xor %%edx, %%edx; div %%ecx", "rcx", "rdx");
	expect(0, 0, "divide error");
	/* Signed overflow is a divide error too. */
	FAULT("mov $0x80000000, %%eax; cdq; mov $-1, %%ecx; idiv %%ecx", "rcx", "rdx");
	expect(0, 0, "idiv overflow");

	/* #UD, the faulting RIP is the UD2 itself. */
	reset_seen();
	uint64_t ud_rip;
	__asm__ volatile("lea 1f(%%rip), %%rax; mov %%rax, resume_at(%%rip); lea 2f(%%rip), %0;"
			 "2: ud2; 1:" : "=r"(ud_rip) :: "rax", "memory");
	expect(6, 0, "invalid opcode");
	CHECK(seen_rip == ud_rip, "#UD at %lx, want %lx", (unsigned long)seen_rip, (unsigned long)ud_rip);

	/* #BP is a trap: RIP points after INT3; no resume needed. */
	reset_seen();
	resume_at = 0;
	uint64_t after_int3;
	__asm__ volatile("int3; 3: lea 3b(%%rip), %0" : "=r"(after_int3) :: "memory");
	expect(3, 0, "breakpoint");
	CHECK(seen_rip == after_int3, "#BP rip %lx, want %lx", (unsigned long)seen_rip,
	      (unsigned long)after_int3);

	/* #GP(0): a non-canonical address. */
	FAULT("movabs $0x8000000000000000, %%rcx; mov (%%rcx), %%rax", "rcx");
	expect(13, 0, "#GP non-canonical");
	/* #GP(selector): loading a selector beyond the GDT limit. */
	FAULT("mov $0x1238, %%ecx; mov %%ecx, %%ds", "rcx");
	expect(13, 0x1238, "#GP bad selector");
	uint16_t ds;
	__asm__ volatile("mov %%ds, %0" : "=r"(ds));
	CHECK(ds == 0x10, "DS changed to %x by the faulting load", ds);
	/* #GP(0): a far jump to the null selector. */
	static const struct { uint32_t offset; uint16_t selector; } __attribute__((packed))
		far_null = { 0x1000, 0 };
	FAULT_AT("ljmpl *(%0)", &far_null);
	expect(13, 0, "#GP far jump to null selector");

	/* #PF: above the identity-mapped 4 GiB nothing is mapped. */
	uint64_t unmapped = 0x140000123ull;
	FAULT_AT("mov (%0), %%rax", unmapped);
	expect(14, 0x0, "#PF read not-present");
	CHECK(seen_cr2 == unmapped, "CR2 %lx, want %lx", (unsigned long)seen_cr2, (unsigned long)unmapped);
	FAULT_AT("movq $1, (%0)", unmapped + 8);
	expect(14, 0x2, "#PF write not-present");
	CHECK(seen_cr2 == unmapped + 8, "CR2 %lx after write", (unsigned long)seen_cr2);
	/* Write to a read-only 2 MiB page with CR0.WP set: P|W. */
	uint64_t cr0;
	__asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
	__asm__ volatile("mov %0, %%cr0" :: "r"(cr0 | (1ul << 16)));
	volatile uint64_t *pde = (volatile uint64_t *)page_dirs + (0x2000000ul >> 21);
	*pde &= ~2ull;
	__asm__ volatile("invlpg (%0)" :: "r"(0x2000000ul) : "memory");
	uint64_t ro = 0x2000040ul; /* 32 MiB: RAM with --memory 64M */
	FAULT_AT("movq $1, (%0)", ro);
	expect(14, 0x3, "#PF write read-only");
	CHECK(seen_cr2 == ro, "CR2 %lx, want %lx", (unsigned long)seen_cr2, (unsigned long)ro);
	/* Reading it is fine. */
	reset_seen();
	(void)*(volatile uint64_t *)ro;
	CHECK(seen_count == 0, "read of a read-only page faulted");
	*pde |= 2;
	__asm__ volatile("invlpg (%0)" :: "r"(0x2000000ul) : "memory");

	gprintf("PASS\n");
	return EXIT_PASS;
}
