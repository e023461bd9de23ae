/* Several vCPUs: the BSP starts the APs with INIT + SIPI + SIPI (the
 * trampoline below 1 MiB), every CPU adds to a shared counter with LOCK
 * XADD, each AP records its APIC ID, and the BSP checks the totals: every
 * AP ran exactly once (a second SIPI must not restart a running CPU) and
 * no increment was lost. The number of CPUs comes from `cpus=N`. */
#include "lib.h"

int test_main(void);

#define TRAMP_BASE  0x8000
#define SIPI_VECTOR (TRAMP_BASE >> 12)
#define ADDS        2000
#define MAX_CPUS    16

extern char smp_trampoline[], smp_trampoline_end[];
extern uint32_t ap_stack_next;
extern void (*cpu_entry)(void);

static uint8_t ap_stacks[MAX_CPUS][4096] __attribute__((aligned(4096)));
static volatile uint32_t counter, aps_started, aps_done;
static volatile uint64_t ids_seen;

static inline uint32_t lock_xadd(volatile uint32_t *p, uint32_t v)
{
	__asm__ volatile("lock xaddl %0, %1" : "+r"(v), "+m"(*p) :: "memory");
	return v;
}

static void count(void)
{
	for (int i = 0; i < ADDS; i++)
		lock_xadd(&counter, 1);
}

static void ap_main(void)
{
	uint32_t id = lapic_read(0x20) >> 24;
	lock_xadd(&aps_started, 1);
	if (id < 64)
		__atomic_fetch_or(&ids_seen, 1ull << id, __ATOMIC_SEQ_CST);
	count();
	lock_xadd(&aps_done, 1);
	for (;;)
		__asm__ volatile("cli; hlt");
}

static void send_ipi(uint32_t icr_low)
{
	lapic_write(0x310, 0);
	lapic_write(0x300, icr_low);
	uint32_t start = pm_timer();
	while ((lapic_read(0x300) & (1u << 12)) && within_us(start, 100000))
		;
}

int test_main(void)
{
	serial_init();
	unsigned cpus = (unsigned)cmdline_ulong("cpus", 1);
	gprintf("smp test: %u cpus\n", cpus);
	CHECK(cpus >= 1 && cpus <= MAX_CPUS, "cpus=%u out of range", cpus);
	idt_init();
	lapic_enable();

	uint8_t *dst = (uint8_t *)TRAMP_BASE;
	for (char *p = smp_trampoline; p < smp_trampoline_end; p++)
		*dst++ = (uint8_t)*p;
	ap_stack_next = (uint32_t)(uintptr_t)ap_stacks;
	cpu_entry = ap_main;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	/* INIT to all but self, then two start-ups (the second must be
	 * ignored by CPUs already running). */
	send_ipi(0x000C4500);
	udelay(10000);
	send_ipi(0x000C4600 | SIPI_VECTOR);
	udelay(200);
	send_ipi(0x000C4600 | SIPI_VECTOR);
	count();

	uint32_t start = pm_timer();
	while (aps_done < cpus - 1 && within_us(start, 20000000))
		__asm__ volatile("pause");
	udelay(50000); /* late (double) starts would show up now */
	gprintf("aps started %u, done %u, counter %u, ids %lx\n", aps_started, aps_done, counter,
		(unsigned long)ids_seen);
	CHECK(aps_started == cpus - 1, "%u APs started, want %u", aps_started, cpus - 1);
	CHECK(aps_done == cpus - 1, "%u APs finished, want %u", aps_done, cpus - 1);
	uint64_t want_ids = ((cpus >= 64 ? 0 : 1ull << cpus) - 1) & ~1ull;
	CHECK(ids_seen == want_ids, "APIC IDs seen %lx, want %lx", (unsigned long)ids_seen,
	      (unsigned long)want_ids);
	CHECK(counter == cpus * ADDS, "counter %u, want %u: lost LOCK XADD increments",
	      counter, cpus * ADDS);
	gprintf("PASS\n");
	return EXIT_PASS;
}
