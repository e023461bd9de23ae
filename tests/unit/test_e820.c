/* Unit tests for the e820 memory map (machine/e820.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/util.h"
#include "machine/e820.h"
#include "machine/layout.h"
#include "machine/memory.h"

static struct guest_ram ram_of(uint64_t size)
{
	struct guest_ram r = { .size = size };
	r.low_size = size < LOW_RAM_MAX ? size : LOW_RAM_MAX;
	r.high_size = size - r.low_size;
	return r;
}

static void check_sorted_disjoint(const struct e820_table *t)
{
	for (unsigned i = 1; i < t->n; i++)
		assert_true(t->entry[i - 1].addr + t->entry[i - 1].size <= t->entry[i].addr);
}

static uint64_t total_ram(const struct e820_table *t)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < t->n; i++)
		if (t->entry[i].type == E820_RAM)
			sum += t->entry[i].size;
	return sum;
}

static void test_small_guest(void **state)
{
	struct guest_ram r = ram_of(64 * MiB);
	struct e820_table t;
	e820_build(&t, &r);
	check_sorted_disjoint(&t);
	assert_int_equal(t.entry[0].addr, 0);
	assert_int_equal(t.entry[0].size, 0x9FC00);
	assert_int_equal(t.entry[0].type, E820_RAM);
	assert_int_equal(t.entry[1].addr, 0x9FC00);
	assert_int_equal(t.entry[1].addr + t.entry[1].size, 0x100000);
	assert_int_equal(t.entry[1].type, E820_RESERVED);
	assert_int_equal(t.entry[2].addr, 0x100000);
	assert_int_equal(t.entry[2].addr + t.entry[2].size, 64 * MiB);
	assert_int_equal(t.entry[2].type, E820_RAM);
	/* RAM lost only to the EBDA/BIOS area. */
	assert_int_equal(total_ram(&t), 64 * MiB - (0x100000 - 0x9FC00));
	/* Nothing above 4 GiB. */
	for (unsigned i = 0; i < t.n; i++)
		assert_true(t.entry[i].addr < HIGH_RAM_START);
	assert_true(e820_contains(&t, PCI_ECAM_BASE, PCI_ECAM_SIZE, E820_RESERVED));
	assert_true(e820_contains(&t, IOAPIC_BASE, 0x1000, E820_RESERVED));
	assert_true(e820_contains(&t, LAPIC_BASE, 0x1000, E820_RESERVED));
	assert_false(e820_contains(&t, PCI_MMIO32_START, 0x1000, E820_RESERVED));
	assert_true(e820_contains(&t, 0x100000, 63 * MiB, E820_RAM));
	assert_false(e820_contains(&t, 0x100000, 64 * MiB, E820_RAM));
}

static void test_large_guest(void **state)
{
	struct guest_ram r = ram_of(5 * GiB);
	struct e820_table t;
	e820_build(&t, &r);
	check_sorted_disjoint(&t);
	/* Low RAM ends at the 32-bit hole; the rest is above 4 GiB. */
	assert_true(e820_contains(&t, 0x100000, LOW_RAM_MAX - 0x100000, E820_RAM));
	assert_true(e820_contains(&t, HIGH_RAM_START, 2 * GiB, E820_RAM));
	assert_false(e820_contains(&t, LOW_RAM_MAX, 0x1000, E820_RAM));
	assert_int_equal(total_ram(&t), 5 * GiB - (0x100000 - 0x9FC00));
	const struct e820_entry *last = &t.entry[t.n - 1];
	assert_int_equal(last->addr, HIGH_RAM_START);
	assert_int_equal(last->size, 2 * GiB);
	assert_int_equal(last->type, E820_RAM);
}

static void test_exactly_3g(void **state)
{
	struct guest_ram r = ram_of(3 * GiB);
	struct e820_table t;
	e820_build(&t, &r);
	check_sorted_disjoint(&t);
	assert_true(e820_contains(&t, 0x100000, 3 * GiB - 0x100000, E820_RAM));
	for (unsigned i = 0; i < t.n; i++)
		assert_true(t.entry[i].addr < HIGH_RAM_START);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_guest),
		cmocka_unit_test(test_large_guest),
		cmocka_unit_test(test_exactly_3g),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
