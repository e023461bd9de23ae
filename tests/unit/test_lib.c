/* Unit tests for lib/ and the address-space dispatcher. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hw/io.h"
#include "lib/util.h"
#include "machine/layout.h"
#include "machine/memory.h"

static void test_parse_size(void **state)
{
	uint64_t v;
	assert_true(parse_size("512M", &v));
	assert_int_equal(v, 512 * MiB);
	assert_true(parse_size("2G", &v));
	assert_int_equal(v, 2 * GiB);
	assert_true(parse_size("1.5G", &v));
	assert_int_equal(v, 3 * GiB / 2);
	assert_true(parse_size("4096", &v));
	assert_int_equal(v, 4096);
	assert_true(parse_size("64KiB", &v));
	assert_int_equal(v, 64 * KiB);
	assert_false(parse_size("", &v));
	assert_false(parse_size("-1G", &v));
	assert_false(parse_size("12Q", &v));
	assert_false(parse_size("99999999999999999999", &v));
	assert_false(parse_size("17179869184G", &v)); /* overflows 64 bits */
	assert_false(parse_size("1.5", &v));
}

static void test_opt_split(void **state)
{
	char buf[] = "path=a.img,readonly=on,serial=X";
	char *cur = buf, *item, *val;
	item = opt_next(&cur);
	assert_true(opt_key(item, "path", &val));
	assert_string_equal(val, "a.img");
	item = opt_next(&cur);
	assert_false(opt_key(item, "path", &val));
	assert_true(opt_key(item, "readonly", &val));
	assert_string_equal(val, "on");
	item = opt_next(&cur);
	assert_true(opt_key(item, "serial", &val));
	assert_null(opt_next(&cur));
}

struct dev { uint64_t last_off, last_val; unsigned last_size; int writes; };

static uint64_t dev_read(void *opaque, uint64_t off, unsigned size)
{
	return 0x1122334455667788ULL + off;
}

static void dev_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct dev *d = opaque;
	d->last_off = off;
	d->last_val = val;
	d->last_size = size;
	d->writes++;
}

static const struct io_ops dev_ops = { dev_read, dev_write };

static void test_io_space(void **state)
{
	struct io_space *s = io_space_new("test");
	struct dev a = { 0 }, b = { 0 };
	assert_int_equal(io_register(s, 0x100, 8, &dev_ops, &a, "a"), 0);
	assert_int_equal(io_register(s, 0x10, 0x10, &dev_ops, &b, "b"), 0);
	assert_int_not_equal(io_register(s, 0x107, 2, &dev_ops, &b, "overlap"), 0);
	assert_int_not_equal(io_register(s, 0xFFFFFFFFFFFFFFF0ULL, 0x20, &dev_ops, &b, "wrap"), 0);
	assert_int_not_equal(io_register(s, 0x200, 0, &dev_ops, &b, "empty"), 0);

	uint64_t v;
	assert_true(io_read(s, 0x104, 1, &v));
	assert_int_equal(v, 0x8c); /* masked to the access size */
	assert_true(io_write(s, 0x1f, 2, 0xABCDEF));
	assert_int_equal(b.last_off, 0xf);
	assert_int_equal(b.last_val, 0xCDEF);
	assert_false(io_read(s, 0x20, 4, &v));
	assert_int_equal(v, 0xFFFFFFFF);
	assert_false(io_write(s, 0x108, 4, 1));
	assert_int_equal(a.writes, 0);

	assert_int_equal(io_unregister(s, 0x100, &a), 0);
	assert_false(io_read(s, 0x100, 4, &v));
	assert_int_equal(io_register(s, 0x100, 8, &dev_ops, &b, "moved"), 0);
	assert_true(io_write(s, 0x100, 8, 5));
	assert_int_equal(b.last_val, 5);
	io_space_free(s);
}

static void test_guest_ram(void **state)
{
	struct guest_ram ram;
	assert_int_equal(guest_ram_init(&ram, 64 * MiB), 0);
	assert_int_equal((uintptr_t)ram.host % (2 * MiB), 0); /* host huge pages line up */
	assert_non_null(gpa_to_hva(&ram, 0, 64 * MiB));
	assert_null(gpa_to_hva(&ram, 0, 64 * MiB + 1));
	assert_null(gpa_to_hva(&ram, 64 * MiB, 1));
	assert_null(gpa_to_hva(&ram, UINT64_MAX, 2));
	char buf[8] = "abcdefg";
	assert_int_equal(guest_write(&ram, 64 * MiB - 8, buf, 8), 0);
	assert_int_not_equal(guest_write(&ram, 64 * MiB - 4, buf, 8), 0);
	char out[8];
	assert_int_equal(guest_read(&ram, 64 * MiB - 8, out, 8), 0);
	assert_memory_equal(out, buf, 8);
	guest_ram_free(&ram);

	/* A guest bigger than the 32-bit hole gets RAM above 4 GiB. */
	assert_int_equal(guest_ram_init(&ram, LOW_RAM_MAX + 16 * MiB), 0);
	assert_int_equal(ram.high_size, 16 * MiB);
	assert_null(gpa_to_hva(&ram, LOW_RAM_MAX, 1));
	assert_non_null(gpa_to_hva(&ram, HIGH_RAM_START, 16 * MiB));
	assert_null(gpa_to_hva(&ram, HIGH_RAM_START + 16 * MiB - 1, 2));
	guest_ram_free(&ram);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_opt_split),
		cmocka_unit_test(test_io_space),
		cmocka_unit_test(test_guest_ram),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
