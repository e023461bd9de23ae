/* Unit tests for the AML emitter, the ACPI tables and the MP table
 * (machine/aml.c, acpi.c, mptable.c). With acpica-tools installed, iasl
 * disassembles our DSDT as an independent check of the AML. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "machine/acpi.h"
#include "machine/aml.h"
#include "machine/layout.h"
#include "machine/mptable.h"

#define BASE 0xE0000ULL

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

static void expect_bytes(const struct aml *a, const uint8_t *want, size_t n)
{
	assert_false(a->error);
	assert_int_equal(a->len, n);
	assert_memory_equal(a->buf, want, n);
}

/* ---- AML encodings, checked against hand-assembled bytes ---- */

static void test_pkglen(void **state)
{
	uint8_t out[4];
	assert_int_equal(aml_pkglen_encode(0, out), 1);
	assert_int_equal(out[0], 1);
	assert_int_equal(aml_pkglen_encode(0x3E, out), 1);
	assert_int_equal(out[0], 0x3F);
	/* 0x3F body bytes + 2 = 0x41: lead 0x40 | 1, then 0x41 >> 4. */
	assert_int_equal(aml_pkglen_encode(0x3F, out), 2);
	assert_int_equal(out[0], 0x41);
	assert_int_equal(out[1], 0x04);
	/* Largest two-byte length: 0xFFF. */
	assert_int_equal(aml_pkglen_encode(0xFFD, out), 2);
	assert_int_equal(out[0], 0x4F);
	assert_int_equal(out[1], 0xFF);
	assert_int_equal(aml_pkglen_encode(0xFFE, out), 3);
	/* 0xFFE + 3 = 0x1001 */
	assert_int_equal(out[0], 0x81);
	assert_int_equal(out[1], 0x00);
	assert_int_equal(out[2], 0x01);
	assert_int_equal(aml_pkglen_encode(0x100000, out), 4);
	/* 0x100004 */
	assert_int_equal(out[0], 0xC4);
	assert_int_equal(out[1], 0x00);
	assert_int_equal(out[2], 0x00);
	assert_int_equal(out[3], 0x01);
}

static void test_names(void **state)
{
	struct aml a;
	aml_init(&a);
	aml_name_string(&a, "\\_SB.PCI0");
	static const uint8_t sb_pci0[] = { 0x5C, 0x2E, '_', 'S', 'B', '_', 'P', 'C', 'I', '0' };
	expect_bytes(&a, sb_pci0, sizeof(sb_pci0));
	aml_free(&a);

	aml_init(&a);
	aml_name_string(&a, "_S5");
	static const uint8_t s5[] = { '_', 'S', '5', '_' };
	expect_bytes(&a, s5, sizeof(s5));
	aml_free(&a);

	aml_init(&a);
	aml_name_string(&a, "\\A.B.C");
	static const uint8_t multi[] = { 0x5C, 0x2F, 3, 'A', '_', '_', '_', 'B', '_', '_', '_', 'C', '_', '_', '_' };
	expect_bytes(&a, multi, sizeof(multi));
	aml_free(&a);

	aml_init(&a);
	aml_name_string(&a, "^^FOO");
	static const uint8_t parent[] = { 0x5E, 0x5E, 'F', 'O', 'O', '_' };
	expect_bytes(&a, parent, sizeof(parent));
	aml_free(&a);

	/* Invalid: too long a segment, a digit first, lower case. */
	const char *bad[] = { "ABCDE", "1ABC", "abc", "A..B" };
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		aml_init(&a);
		aml_name_string(&a, bad[i]);
		assert_true(a.error);
		aml_free(&a);
	}
}

static void test_integers_strings(void **state)
{
	struct aml a;
	aml_init(&a);
	aml_integer(&a, 0);
	aml_integer(&a, 1);
	aml_integer(&a, 0x0F);
	aml_integer(&a, 0x1234);
	aml_integer(&a, 0xFEC00000);
	aml_integer(&a, 0x123456789ULL);
	aml_string(&a, "Hi");
	static const uint8_t want[] = {
		0x00, 0x01, 0x0A, 0x0F, 0x0B, 0x34, 0x12, 0x0C, 0x00, 0x00, 0xC0, 0xFE,
		0x0E, 0x89, 0x67, 0x45, 0x23, 0x01, 0x00, 0x00, 0x00, 0x0D, 'H', 'i', 0x00,
	};
	expect_bytes(&a, want, sizeof(want));
	aml_free(&a);
	/* EisaId("PNP0A03") is 0x030AD041 (the value iasl emits). */
	assert_int_equal(aml_eisaid_value("PNP0A03"), 0x030AD041);
	assert_int_equal(aml_eisaid_value("PNP0501"), 0x0105D041);
	assert_int_equal(aml_eisaid_value("pnp0a03"), 0);
	assert_int_equal(aml_eisaid_value("PNP0A0"), 0);
}

static void test_package_method_device(void **state)
{
	struct aml a;
	aml_init(&a);
	/* Name(_S5, Package(2){5, 0x1234}) */
	aml_name(&a, "_S5");
	aml_package_begin(&a, 2);
	aml_integer(&a, 5);
	aml_integer(&a, 0x1234);
	aml_end(&a);
	static const uint8_t pkg[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x02, 0x0A, 0x05, 0x0B, 0x34, 0x12 };
	expect_bytes(&a, pkg, sizeof(pkg));
	aml_free(&a);

	/* Method(_STA, 0, NotSerialized) { Return (0x0F) } */
	aml_init(&a);
	aml_method_begin(&a, "_STA", 0, false);
	aml_return_integer(&a, 0x0F);
	aml_end(&a);
	static const uint8_t method[] = { 0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xA4, 0x0A, 0x0F };
	expect_bytes(&a, method, sizeof(method));
	aml_free(&a);

	/* Device(DEV0) { Name(_UID, One) } */
	aml_init(&a);
	aml_device_begin(&a, "DEV0");
	aml_name_integer(&a, "_UID", 1);
	aml_end(&a);
	static const uint8_t dev[] = { 0x5B, 0x82, 0x0B, 'D', 'E', 'V', '0', 0x08, '_', 'U', 'I', 'D', 0x01 };
	expect_bytes(&a, dev, sizeof(dev));
	aml_free(&a);

	/* A package longer than 63 bytes needs a two-byte PkgLength. */
	aml_init(&a);
	aml_package_begin(&a, 40);
	for (int i = 0; i < 40; i++)
		aml_integer(&a, 0x10 + (unsigned)i);
	aml_end(&a);
	assert_false(a.error);
	/* body = count + 40 * 2 = 81 bytes, + 2 = 83 = 0x53 */
	assert_int_equal(a.len, 1 + 2 + 81);
	assert_int_equal(a.buf[1], 0x43);
	assert_int_equal(a.buf[2], 0x05);
	assert_int_equal(a.buf[3], 40);
	aml_free(&a);

	/* Unbalanced aml_end is an error, not a crash. */
	aml_init(&a);
	aml_end(&a);
	assert_true(a.error);
	aml_free(&a);
}

static void test_resources(void **state)
{
	struct aml_res r = { .len = 0 };
	aml_res_io(&r, 0x3F8, 0x3F8, 1, 8);
	aml_res_irq(&r, 1 << 4);
	aml_res_end(&r);
	static const uint8_t want[] = { 0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08,
					0x22, 0x10, 0x00, 0x79, 0x00 };
	assert_int_equal(r.len, sizeof(want));
	assert_memory_equal(r.buf, want, sizeof(want));

	r.len = 0;
	aml_res_word_bus(&r, 0, 15);
	static const uint8_t bus[] = { 0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00, 0x00, 0x00, 0x00, 0x00,
				       0x0F, 0x00, 0x00, 0x00, 0x10, 0x00 };
	assert_int_equal(r.len, sizeof(bus));
	assert_memory_equal(r.buf, bus, sizeof(bus));

	r.len = 0;
	aml_res_interrupt(&r, 5, false, false, false);
	static const uint8_t irq[] = { 0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00 };
	assert_int_equal(r.len, sizeof(irq));
	assert_memory_equal(r.buf, irq, sizeof(irq));

	r.len = 0;
	aml_res_qword_memory(&r, 0x100000000ULL, 0x1FFFFFFFFULL);
	assert_int_equal(r.len, 46);
	assert_int_equal(r.buf[0], 0x8A);
	assert_int_equal(le16(r.buf + 1), 0x2B);
	assert_int_equal(le64(r.buf + 14), 0x100000000ULL);
	assert_int_equal(le64(r.buf + 22), 0x1FFFFFFFFULL);
	assert_int_equal(le64(r.buf + 38), 0x100000000ULL);

	/* Overflow is flagged, never written past the buffer. */
	r.len = 0;
	for (int i = 0; i < 100; i++)
		aml_res_qword_memory(&r, 0, 1);
	assert_true(r.overflow);
	assert_true(r.len <= sizeof(r.buf));
}

/* ---- tables ---- */

struct tables {
	uint8_t buf[0x10000];
	size_t used, rsdp;
};

static const uint8_t *table_at(const struct tables *t, uint64_t gpa)
{
	assert_true(gpa >= BASE && gpa - BASE < t->used);
	return t->buf + (gpa - BASE);
}

static const uint8_t *find_table(const struct tables *t, const char *sig)
{
	const uint8_t *r = t->buf + t->rsdp;
	const uint8_t *x = table_at(t, le64(r + 24));
	unsigned n = (le32(x + 4) - 36) / 8;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = table_at(t, le64(x + 36 + 8 * i));
		if (memcmp(e, sig, 4) == 0)
			return e;
	}
	if (strcmp(sig, "DSDT") == 0) {
		const uint8_t *f = find_table(t, "FACP");
		return table_at(t, le64(f + 140));
	}
	return NULL;
}

static void build(struct tables *t, const struct acpi_board *b)
{
	memset(t->buf, 0xAA, sizeof(t->buf));
	t->used = acpi_write_tables(b, t->buf, sizeof(t->buf), BASE, &t->rsdp);
	assert_true(t->used > 0);
}

static void test_rsdp_and_checksums(void **state)
{
	static struct tables t;
	struct acpi_board b = { .ncpus = 2, .ram_top = 1ULL << 32 };
	build(&t, &b);
	const uint8_t *r = t.buf + t.rsdp;
	assert_int_equal((BASE + t.rsdp) % 16, 0);
	assert_memory_equal(r, "RSD PTR ", 8);
	assert_int_equal(r[15], 2);
	assert_int_equal(le32(r + 20), 36);
	assert_int_equal(acpi_checksum(r, 20), 0);
	assert_int_equal(acpi_checksum(r, 36), 0);
	/* Both root tables list the same tables; every table sums to 0. */
	const uint8_t *rsdt = table_at(&t, le32(r + 16));
	const uint8_t *xsdt = table_at(&t, le64(r + 24));
	assert_memory_equal(rsdt, "RSDT", 4);
	assert_memory_equal(xsdt, "XSDT", 4);
	unsigned n = (le32(xsdt + 4) - 36) / 8;
	assert_int_equal(n, (le32(rsdt + 4) - 36) / 4);
	assert_int_equal(n, 3);
	assert_int_equal(acpi_checksum(rsdt, le32(rsdt + 4)), 0);
	assert_int_equal(acpi_checksum(xsdt, le32(xsdt + 4)), 0);
	const char *sigs[] = { "FACP", "APIC", "MCFG", "DSDT" };
	for (unsigned i = 0; i < 4; i++) {
		const uint8_t *tb = find_table(&t, sigs[i]);
		assert_non_null(tb);
		assert_int_equal(le32(rsdt + 36 + 4 * (i < 3 ? i : 0)) != 0, 1);
		assert_int_equal(acpi_checksum(tb, le32(tb + 4)), 0);
		assert_true(tb + le32(tb + 4) <= t.buf + t.used);
	}
}

static void test_fadt(void **state)
{
	static struct tables t;
	struct acpi_board b = { .ncpus = 1, .ram_top = 1ULL << 32 };
	build(&t, &b);
	const uint8_t *f = find_table(&t, "FACP");
	assert_int_equal(le32(f + 4), 276);
	assert_int_equal(f[8], 6);
	assert_int_equal(le16(f + 46), IRQ_ACPI_SCI);
	assert_int_equal(le32(f + 48), 0);
	assert_int_equal(le32(f + 56), PORT_ACPI_PM1_EVT);
	assert_int_equal(le32(f + 64), PORT_ACPI_PM1_CNT);
	assert_int_equal(le32(f + 76), PORT_ACPI_PM_TMR);
	assert_int_equal(f[91], 4);
	/* Reset register: system I/O 0xCF9, value 6, RESET_REG_SUP. */
	assert_true(le32(f + 112) & (1u << 10));
	assert_int_equal(f[116], 1);
	assert_int_equal(le64(f + 120), PORT_RESET_CF9);
	assert_int_equal(f[128], ACPI_RESET_VALUE);
	/* FACS and DSDT pointers agree; FACS is 64-byte aligned. */
	uint32_t facs = le32(f + 36);
	assert_int_equal(facs % 64, 0);
	assert_memory_equal(table_at(&t, facs), "FACS", 4);
	assert_int_equal(le32(f + 40), le64(f + 140));
	assert_memory_equal(table_at(&t, le64(f + 140)), "DSDT", 4);
	/* X_PM_TMR_BLK agrees with PM_TMR_BLK. */
	assert_int_equal(le64(f + 212), PORT_ACPI_PM_TMR);
}

static void test_madt(void **state)
{
	static struct tables t;
	for (unsigned ncpus = 1; ncpus <= 64; ncpus = ncpus * 2 + 1) {
		struct acpi_board b = { .ncpus = ncpus, .ram_top = 1ULL << 32 };
		build(&t, &b);
		const uint8_t *m = find_table(&t, "APIC");
		assert_int_equal(le32(m + 36), LAPIC_BASE);
		const uint8_t *e = m + 44, *end = m + le32(m + 4);
		unsigned lapics = 0, ioapics = 0, isos = 0, nmis = 0;
		while (e < end) {
			assert_true(e[1] >= 2 && e + e[1] <= end);
			switch (e[0]) {
			case 0:
				assert_int_equal(e[3], lapics); /* APIC IDs 0..n-1 */
				assert_int_equal(le32(e + 4) & 1, 1);
				lapics++;
				break;
			case 1:
				assert_int_equal(le32(e + 4), IOAPIC_BASE);
				assert_int_equal(le32(e + 8), 0);
				ioapics++;
				break;
			case 2:
				if (e[3] == 0) {
					assert_int_equal(le32(e + 4), 2);
				} else {
					assert_int_equal(e[3], IRQ_ACPI_SCI);
					assert_int_equal(le16(e + 8), 0xD); /* level, active high */
				}
				isos++;
				break;
			case 4:
				assert_int_equal(e[5], 1);
				nmis++;
				break;
			default:
				fail();
			}
			e += e[1];
		}
		assert_int_equal(lapics, ncpus);
		assert_int_equal(ioapics, 1);
		assert_int_equal(isos, 2);
		assert_int_equal(nmis, 1);
	}
}

static void test_mcfg(void **state)
{
	static struct tables t;
	struct acpi_board b = { .ncpus = 1, .ram_top = 1ULL << 32 };
	build(&t, &b);
	const uint8_t *m = find_table(&t, "MCFG");
	assert_int_equal(le32(m + 4), 60);
	assert_int_equal(le64(m + 44), PCI_ECAM_BASE);
	assert_int_equal(m[54], 0);
	assert_int_equal(m[55], 15);
}

static bool contains(const uint8_t *p, size_t n, const void *needle, size_t len)
{
	return memmem(p, n, needle, len) != NULL;
}

static void test_dsdt_content(void **state)
{
	static struct tables t;
	struct acpi_board b = { .ncpus = 1, .ram_top = 6ULL << 30, .n_mmio = 2 };
	b.mmio[0].base = VIRTIO_MMIO_BASE;
	b.mmio[0].size = 0x1000;
	b.mmio[0].gsi = 5;
	b.mmio[1].base = VIRTIO_MMIO_BASE + 0x1000;
	b.mmio[1].size = 0x1000;
	b.mmio[1].gsi = 6;
	build(&t, &b);
	const uint8_t *d = find_table(&t, "DSDT");
	size_t n = le32(d + 4);
	static const uint8_t s5[] = { 0x08, '\\', '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00 };
	assert_true(contains(d, n, s5, sizeof(s5)));
	static const uint8_t pnp0a08[] = { 0x08, '_', 'H', 'I', 'D', 0x0C, 0x41, 0xD0, 0x0A, 0x08 };
	assert_true(contains(d, n, pnp0a08, sizeof(pnp0a08)));
	assert_true(contains(d, n, "LNRO0005", 8));
	/* _PRT entry for slot 3 pin INTB: {0x3FFFF, 1, 0, 16 + (3+1)&3 = 16} */
	static const uint8_t prt[] = { 0x12, 0x0B, 0x04, 0x0C, 0xFF, 0xFF, 0x03, 0x00, 0x01, 0x00, 0x0A, 0x10 };
	assert_true(contains(d, n, prt, sizeof(prt)));
	/* slot 1 pin INTA -> GSI 17 */
	static const uint8_t prt1[] = { 0x12, 0x0B, 0x04, 0x0C, 0xFF, 0xFF, 0x01, 0x00, 0x00, 0x00, 0x0A, 0x11 };
	assert_true(contains(d, n, prt1, sizeof(prt1)));
	/* The 64-bit window starts at the first GiB boundary above RAM. */
	uint8_t q[8];
	for (int i = 0; i < 8; i++)
		q[i] = (uint8_t)((6ULL << 30) >> (8 * i));
	assert_true(contains(d, n, q, 8));
}

/* iasl as an oracle: the DSDT must disassemble without errors into the
 * objects we meant. */
static void test_dsdt_iasl(void **state)
{
	if (system("command -v iasl >/dev/null 2>&1") != 0) {
		skip();
		return;
	}
	static struct tables t;
	struct acpi_board b = { .ncpus = 2, .ram_top = 1ULL << 32, .n_mmio = 1 };
	b.mmio[0].base = VIRTIO_MMIO_BASE;
	b.mmio[0].size = 0x200;
	b.mmio[0].gsi = 5;
	build(&t, &b);
	const uint8_t *d = find_table(&t, "DSDT");
	char dir[] = "/tmp/xvm-acpi-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128], cmd[512];
	snprintf(path, sizeof(path), "%s/dsdt.aml", dir);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(d, 1, le32(d + 4), f), le32(d + 4));
	fclose(f);
	snprintf(cmd, sizeof(cmd), "cd %s && iasl -d dsdt.aml >iasl.log 2>&1", dir);
	assert_int_equal(system(cmd), 0);
	const char *want[] = {
		"Name (\\_S5, Package (0x04)", "Device (PCI0)", "EisaId (\"PNP0A08\")",
		"EisaId (\"PNP0A03\")", "WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode",
		"0x0CF7", "0xDFFFFFFF", "Name (_PRT, Package (0x7C)", "Device (COM1)",
		"EisaId (\"PNP0501\")", "IRQNoFlags ()", "EisaId (\"PNP0B00\")", "EisaId (\"PNP0303\")",
		"Name (_HID, \"LNRO0005\")", "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive",
		"Method (_STA, 0, NotSerialized)",
	};
	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		snprintf(cmd, sizeof(cmd), "grep -qF '%s' %s/dsdt.dsl", want[i], dir);
		if (system(cmd) != 0)
			fail_msg("iasl output lacks: %s", want[i]);
	}
	snprintf(cmd, sizeof(cmd), "grep -qiE 'error|AE_' %s/iasl.log", dir);
	assert_int_not_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_tables_do_not_fit(void **state)
{
	static uint8_t small[256];
	struct acpi_board b = { .ncpus = 64, .ram_top = 1ULL << 32 };
	size_t rsdp;
	assert_int_equal(acpi_write_tables(&b, small, sizeof(small), BASE, &rsdp), 0);
}

static void test_mptable(void **state)
{
	static uint8_t buf[0x4000];
	for (unsigned ncpus = 1; ncpus <= 64; ncpus *= 4) {
		size_t n = mptable_write(ncpus, buf, sizeof(buf), 0xF0000);
		assert_true(n > 0);
		assert_memory_equal(buf, "_MP_", 4);
		assert_int_equal(acpi_checksum(buf, 16), 0);
		assert_int_equal(le32(buf + 4), 0xF0010);
		const uint8_t *c = buf + 16;
		assert_memory_equal(c, "PCMP", 4);
		uint16_t len = le16(c + 4);
		assert_int_equal(16 + len, n);
		assert_int_equal(acpi_checksum(c, len), 0);
		/* Walk the entries: count processors, one BSP. */
		const uint8_t *e = c + 44;
		unsigned cpus = 0, bsp = 0, ioapics = 0, entries = 0;
		while (e < c + len) {
			entries++;
			if (e[0] == 0) {
				assert_int_equal(e[1], cpus);
				cpus++;
				bsp += (e[3] & 2) ? 1 : 0;
				e += 20;
			} else {
				assert_true(e[0] <= 4);
				ioapics += e[0] == 2;
				e += 8;
			}
		}
		assert_int_equal(entries, le16(c + 34));
		assert_int_equal(cpus, ncpus);
		assert_int_equal(bsp, 1);
		assert_int_equal(ioapics, 1);
	}
	assert_int_equal(mptable_write(64, buf, 100, 0xF0000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pkglen),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_integers_strings),
		cmocka_unit_test(test_package_method_device),
		cmocka_unit_test(test_resources),
		cmocka_unit_test(test_rsdp_and_checksums),
		cmocka_unit_test(test_fadt),
		cmocka_unit_test(test_madt),
		cmocka_unit_test(test_mcfg),
		cmocka_unit_test(test_dsdt_content),
		cmocka_unit_test(test_dsdt_iasl),
		cmocka_unit_test(test_tables_do_not_fit),
		cmocka_unit_test(test_mptable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
