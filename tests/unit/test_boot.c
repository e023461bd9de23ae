/* Unit tests for the boot loaders (machine/boot*.c, decompress.c):
 * synthetic bzImages (every host-decompressible payload format, and the
 * kernel's-own-decompressor path), ELF vmlinux, PVH and multiboot images
 * (ELF and a.out kludge), the zero page / start info / multiboot info
 * they produce, the entry states, and hostile images. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <lz4.h>
#include <lz4frame.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "lib/util.h"
#include "machine/boot.h"
#include "machine/e820.h"
#include "machine/layout.h"
#include "machine/machine.h"

#define ZP        0x7000
#define KADDR     0x1000000ULL

static void w16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void w32(uint8_t *p, uint32_t v) { w16(p, (uint16_t)v); w16(p + 2, (uint16_t)(v >> 16)); }
static void w64(uint8_t *p, uint64_t v) { w32(p, (uint32_t)v); w32(p + 4, (uint32_t)(v >> 32)); }
static uint16_t r16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t r32(const uint8_t *p) { return r16(p) | (uint32_t)r16(p + 2) << 16; }
static uint64_t r64(const uint8_t *p) { return r32(p) | (uint64_t)r32(p + 4) << 32; }

/* ---- fixtures ---- */

struct fixture {
	struct machine m;
	struct vm_config cfg;
	char files[8][64];
	unsigned nfiles;
	char err[512];
};

static struct fixture *fx_new(uint64_t mem)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->m.cfg = &f->cfg;
	f->m.ncpus = 1;
	f->cfg.cpus = 1;
	f->cfg.mem_size = mem;
	assert_int_equal(guest_ram_init(&f->m.ram, mem), 0);
	return f;
}

static void fx_free(struct fixture *f)
{
	for (unsigned i = 0; i < f->nfiles; i++)
		unlink(f->files[i]);
	guest_ram_free(&f->m.ram);
	free(f);
}

static const char *fx_file(struct fixture *f, const void *data, size_t len)
{
	assert_true(f->nfiles < 8);
	char *path = f->files[f->nfiles++];
	snprintf(path, 64, "/tmp/xvm-boot-test-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

static int fx_boot(struct fixture *f)
{
	return boot_load(&f->m, f->err, sizeof(f->err));
}

static uint8_t *gpa(struct fixture *f, uint64_t addr, uint64_t len)
{
	uint8_t *p = gpa_to_hva(&f->m.ram, addr, len);
	assert_non_null(p);
	return p;
}

static void expect_fail(struct fixture *f, const char *needle)
{
	int r = fx_boot(f);
	assert_true(r < 0);
	if (!strstr(f->err, needle))
		fail_msg("error \"%s\" lacks \"%s\"", f->err, needle);
	assert_null(strchr(f->err, '\n'));
}

/* ---- image builders ---- */

/* A 64-bit ELF "kernel": one PT_LOAD of code at paddr (vaddr in the
 * kernel's high mapping), optional "Linux" and PVH notes. */
static size_t make_elf64(uint8_t *buf, uint64_t paddr, uint64_t memsz, bool linux_note, uint32_t pvh_entry)
{
	memset(buf, 0, 0x1000);
	memcpy(buf, "\177ELF", 4);
	buf[4] = 2;
	buf[5] = 1;
	buf[6] = 1;
	w16(buf + 16, 2);
	w16(buf + 18, 62);
	w32(buf + 20, 1);
	w64(buf + 24, paddr); /* phys_startup_64, as Linux links it */
	w64(buf + 32, 64);
	w16(buf + 52, 64);
	w16(buf + 54, 56);
	w16(buf + 56, 2);
	uint8_t *ph = buf + 64;
	w32(ph, 1);
	w32(ph + 4, 5);
	w64(ph + 8, 0x800);
	w64(ph + 16, 0xffffffff80000000ULL + paddr);
	w64(ph + 24, paddr);
	w64(ph + 32, 0x100);
	w64(ph + 40, memsz);
	/* Notes at 0x200. */
	uint8_t *n = buf + 0x200;
	size_t nl = 0;
	if (linux_note) {
		w32(n, 6);
		w32(n + 4, 4);
		w32(n + 8, 0x100);
		memcpy(n + 12, "Linux\0\0\0", 8);
		nl += 24;
	}
	if (pvh_entry) {
		w32(n + nl, 4);
		w32(n + nl + 4, 4);
		w32(n + nl + 8, 18);
		memcpy(n + nl + 12, "Xen\0", 4);
		w32(n + nl + 16, pvh_entry);
		nl += 20;
	}
	ph += 56;
	w32(ph, 4);
	w64(ph + 8, 0x200);
	w64(ph + 32, nl);
	w64(ph + 40, nl);
	for (int i = 0; i < 0x100; i++)
		buf[0x800 + i] = (uint8_t)(i ^ 0x5A);
	return 0x900;
}

static size_t make_elf32(uint8_t *buf, uint32_t paddr, uint32_t entry, uint32_t pvh_entry, bool mb_header)
{
	memset(buf, 0, 0x1000);
	memcpy(buf, "\177ELF", 4);
	buf[4] = 1;
	buf[5] = 1;
	buf[6] = 1;
	w16(buf + 16, 2);
	w16(buf + 18, 3);
	w32(buf + 20, 1);
	w32(buf + 24, entry);
	w32(buf + 28, 52);
	w16(buf + 40, 52);
	w16(buf + 42, 32);
	w16(buf + 44, 2);
	uint8_t *ph = buf + 52;
	w32(ph, 1);
	w32(ph + 4, 0x400);
	w32(ph + 8, paddr);
	w32(ph + 12, paddr);
	w32(ph + 16, 0x200);
	w32(ph + 20, 0x1000);
	ph += 32;
	w32(ph, 4);
	w32(ph + 4, 0x200);
	if (pvh_entry) {
		uint8_t *n = buf + 0x200;
		w32(n, 4);
		w32(n + 4, 4);
		w32(n + 8, 18);
		memcpy(n + 12, "Xen\0", 4);
		w32(n + 16, pvh_entry);
		w32(ph + 16, 20);
		w32(ph + 20, 20);
	}
	if (mb_header) {
		/* Inside the loaded code, 4-byte aligned, in the first 8 KiB. */
		uint8_t *h = buf + 0x400;
		w32(h, 0x1BADB002);
		w32(h + 4, 0x3);
		w32(h + 8, (uint32_t)-(0x1BADB002 + 0x3));
	}
	for (int i = 0x40; i < 0x200; i++)
		buf[0x400 + i] = (uint8_t)i;
	return 0x600;
}

enum fmt { F_GZIP, F_XZ, F_ZSTD, F_LZ4 };

static size_t compress_payload(enum fmt f, const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	size_t n = 0;
	switch (f) {
	case F_GZIP: {
		z_stream z;
		memset(&z, 0, sizeof(z));
		assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
		z.next_in = (Bytef *)in;
		z.avail_in = (uInt)len;
		z.next_out = out;
		z.avail_out = (uInt)cap;
		assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
		n = cap - z.avail_out;
		deflateEnd(&z);
		return n; /* the gzip trailer ends with the size */
	}
	case F_XZ:
		assert_int_equal(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, in, len, out, &n, cap), LZMA_OK);
		break;
	case F_ZSTD:
		n = ZSTD_compress(out, cap, in, len, 19);
		assert_false(ZSTD_isError(n));
		break;
	case F_LZ4: {
		w32(out, 0x184C2102);
		int c = LZ4_compress_default((const char *)in, (char *)out + 8, (int)len, (int)cap - 12);
		assert_true(c > 0);
		w32(out + 4, (uint32_t)c);
		n = 8 + (size_t)c;
		break;
	}
	}
	w32(out + n, (uint32_t)len); /* what the kernel build appends */
	return n + 4;
}

#define SETUP_SECTS 4
#define SETUP_SIZE  ((SETUP_SECTS + 1) * 512)
#define PAYLOAD_OFF 0x400

/* A bzImage: setup sectors with the header, protected-mode code whose
 * payload is the compressed ELF. */
static size_t make_bzimage(uint8_t *buf, size_t cap, enum fmt f, uint16_t version, uint16_t xloadflags)
{
	memset(buf, 0, cap);
	buf[0x1F1] = SETUP_SECTS;
	w16(buf + 0x1FE, 0xAA55);
	buf[0x200] = 0xEB;
	buf[0x201] = 0x6A;
	memcpy(buf + 0x202, "HdrS", 4);
	w16(buf + 0x206, version);
	buf[0x211] = 0x01;
	w32(buf + 0x22C, 0x7FFFFFFF);
	w32(buf + 0x230, 0x200000);
	buf[0x234] = 1;
	w16(buf + 0x236, xloadflags);
	w32(buf + 0x238, 2047);
	w64(buf + 0x258, KADDR);
	w32(buf + 0x260, 0x800000);
	uint8_t *pm = buf + SETUP_SIZE;
	memset(pm, 0x90, PAYLOAD_OFF);
	pm[0x200] = 0xF4; /* "startup_64" */
	static uint8_t elf[0x1000];
	size_t elf_len = make_elf64(elf, KADDR, 0x3000, true, 0);
	size_t plen = compress_payload(f, elf, elf_len, pm + PAYLOAD_OFF, cap - SETUP_SIZE - PAYLOAD_OFF - 64);
	w32(buf + 0x248, PAYLOAD_OFF);
	w32(buf + 0x24C, (uint32_t)plen);
	size_t total = SETUP_SIZE + PAYLOAD_OFF + plen + 16;
	w32(buf + 0x1F4, (uint32_t)((total - SETUP_SIZE) / 16));
	return total;
}

/* ---- checks ---- */

static void check_long_mode_entry(struct fixture *f, uint64_t rip)
{
	const struct x86_cpu_state *s = &f->m.boot_state;
	assert_int_equal(s->rip, rip);
	assert_int_equal(s->gpr[R_RSI], ZP);
	assert_true(s->efer & X86_EFER_LMA);
	assert_true(s->efer & X86_EFER_LME);
	assert_true(s->cr0 & X86_CR0_PG);
	assert_true(s->cr0 & X86_CR0_PE);
	assert_true(s->cr4 & X86_CR4_PAE);
	assert_int_equal(s->seg[SEG_CS].selector, 0x10);
	assert_int_equal(s->seg[SEG_CS].l, 1);
	assert_int_equal(s->seg[SEG_DS].selector, 0x18);
	assert_int_equal(s->seg[SEG_SS].selector, 0x18);
	assert_int_equal(s->rflags & (1 << 9), 0);
	/* The GDT in RAM matches the selectors: 0x10 long-mode code. */
	uint8_t *gdt = gpa(f, s->gdt.base, s->gdt.limit + 1);
	uint64_t cs = r64(gdt + 0x10), ds = r64(gdt + 0x18);
	assert_true(cs & (1ULL << 53));  /* L */
	assert_true(cs & (1ULL << 47));  /* P */
	assert_int_equal((cs >> 40) & 0x8, 0x8); /* code */
	assert_int_equal((ds >> 40) & 0x8, 0);   /* data */
	/* Identity map: walk the tables for a few addresses. */
	uint64_t probes[] = { 0, KADDR, 0x7FE00000, 0xFEE00000, 0xFFFFF000 };
	for (unsigned i = 0; i < 5; i++) {
		uint64_t va = probes[i];
		uint64_t pml4e = r64(gpa(f, (s->cr3 & ~0xFFFULL) + 8 * ((va >> 39) & 511), 8));
		assert_true(pml4e & 1);
		uint64_t pdpte = r64(gpa(f, (pml4e & ~0xFFFULL) + 8 * ((va >> 30) & 511), 8));
		assert_true(pdpte & 1);
		uint64_t pde = r64(gpa(f, (pdpte & ~0xFFFULL) + 8 * ((va >> 21) & 511), 8));
		assert_int_equal(pde & 0x81, 0x81);
		assert_int_equal(pde & ~0x1FFFFFULL & 0xFFFFFFFFFF000ULL, va & ~0x1FFFFFULL);
	}
}

static void check_protected_mode_entry(struct fixture *f, uint64_t eip)
{
	const struct x86_cpu_state *s = &f->m.boot_state;
	assert_int_equal(s->rip, eip);
	assert_int_equal(s->cr0 & (X86_CR0_PE | X86_CR0_PG), X86_CR0_PE);
	assert_int_equal(s->efer & X86_EFER_LMA, 0);
	assert_int_equal(s->seg[SEG_CS].db, 1);
	assert_int_equal(s->seg[SEG_CS].l, 0);
	assert_int_equal(s->seg[SEG_CS].limit, 0xFFFFFFFF);
	assert_int_equal(s->seg[SEG_DS].base, 0);
	assert_int_equal(s->rflags & (1 << 9), 0);
}

static void check_zero_page(struct fixture *f, const char *cmdline, const uint8_t *initrd, size_t initrd_len)
{
	uint8_t *zp = gpa(f, ZP, 0x1000);
	assert_int_equal(r16(zp + 0x1FE), 0xAA55);
	assert_memory_equal(zp + 0x202, "HdrS", 4);
	assert_int_equal(zp[0x210], 0xFF);
	assert_true(zp[0x211] & 0x01);
	assert_int_equal(zp[0x1EF], 0); /* sentinel */
	assert_int_equal(r32(zp + 0x23C), 0);
	uint32_t cmd = r32(zp + 0x228);
	assert_string_equal((char *)gpa(f, cmd, strlen(cmdline) + 1), cmdline);
	uint32_t rd = r32(zp + 0x218), rdlen = r32(zp + 0x21C);
	if (initrd) {
		assert_int_equal(rdlen, initrd_len);
		assert_int_equal(rd % 4096, 0);
		assert_true(rd + rdlen <= f->m.ram.low_size);
		/* As high as possible: less than a page left above. */
		assert_true(f->m.ram.low_size - (rd + rdlen) < 4096);
		assert_memory_equal(gpa(f, rd, rdlen), initrd, initrd_len);
	} else {
		assert_int_equal(rd, 0);
		assert_int_equal(rdlen, 0);
	}
	uint64_t rsdp = r64(zp + 0x70);
	assert_memory_equal(gpa(f, rsdp, 8), "RSD PTR ", 8);
	unsigned n = zp[0x1E8];
	assert_true(n >= 4 && n <= 128);
	uint64_t ram = 0;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = zp + 0x2D0 + 20 * i;
		if (r32(e + 16) == E820_RAM)
			ram += r64(e + 8);
		if (i)
			assert_true(r64(e) >= r64(e - 20) + r64(e - 12));
	}
	assert_true(ram > f->m.ram.size - MiB && ram <= f->m.ram.size);
}

/* ---- tests: Linux ---- */

static void bzimage_host_path(enum fmt fmt)
{
	struct fixture *f = fx_new(64 * MiB);
	static uint8_t img[0x10000];
	size_t len = make_bzimage(img, sizeof(img), fmt, 0x20F, 0x1);
	/* 13 bytes: the second archive starts after 3 bytes of zero padding. */
	static const char a[] = "first initrd", b[] = "second";
	uint8_t both[16 + sizeof(b)];
	memset(both, 0, sizeof(both));
	memcpy(both, a, sizeof(a));
	memcpy(both + 16, b, sizeof(b));
	f->cfg.kernel = fx_file(f, img, len);
	f->cfg.initrd[0] = fx_file(f, a, sizeof(a));
	f->cfg.initrd[1] = fx_file(f, b, sizeof(b));
	f->cfg.n_initrd = 2;
	f->cfg.append = "console=ttyS0 root=/dev/vda";
	assert_int_equal(fx_boot(f), 0);
	/* The vmlinux inside was loaded at its physical address and entered
	 * at its ELF entry, not at the decompressor. */
	check_long_mode_entry(f, KADDR);
	uint8_t *k = gpa(f, KADDR, 0x3000);
	for (int i = 0; i < 0x100; i++)
		assert_int_equal(k[i], (uint8_t)(i ^ 0x5A));
	for (int i = 0x100; i < 0x3000; i++)
		assert_int_equal(k[i], 0);
	check_zero_page(f, "console=ttyS0 root=/dev/vda", both, sizeof(both));
	fx_free(f);
}

static void test_bzimage_gzip(void **state) { bzimage_host_path(F_GZIP); }
static void test_bzimage_xz(void **state) { bzimage_host_path(F_XZ); }
static void test_bzimage_zstd(void **state) { bzimage_host_path(F_ZSTD); }
static void test_bzimage_lz4(void **state) { bzimage_host_path(F_LZ4); }

/* ---- tests: initrds decompressed on the host ---- */

static size_t gzip_level(const uint8_t *in, size_t len, uint8_t *out, size_t cap, int level)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	assert_int_equal(deflateInit2(&z, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	size_t n = cap - z.avail_out;
	deflateEnd(&z);
	return n;
}

/* A "cpio newc archive": the magic, then a pattern; 4001 bytes so the
 * next initrd needs padding. */
static uint8_t *make_cpio(size_t len)
{
	uint8_t *p = malloc(len);
	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)("0123456789abcdef"[(i * 7) % 16]);
	memcpy(p, "070701", 6);
	return p;
}

/* Boots a bzImage with initrds and checks what landed in RAM. */
static void boot_initrds(const uint8_t *const *rd, const size_t *rd_len, unsigned n,
			 const uint8_t *expect, size_t expect_len)
{
	struct fixture *f = fx_new(64 * MiB);
	static uint8_t img[0x10000];
	size_t len = make_bzimage(img, sizeof(img), F_GZIP, 0x20F, 0x1);
	f->cfg.kernel = fx_file(f, img, len);
	for (unsigned i = 0; i < n; i++)
		f->cfg.initrd[i] = fx_file(f, rd[i], rd_len[i]);
	f->cfg.n_initrd = n;
	f->cfg.append = "";
	assert_int_equal(fx_boot(f), 0);
	check_zero_page(f, "", expect, expect_len);
	fx_free(f);
}

static void test_initrd_gzip_cpio_decompressed(void **state)
{
	(void)state;
	size_t clen = 4001;
	uint8_t *cpio = make_cpio(clen);
	/* Two gzip members (`cat a.gz b.gz`), then a plain second initrd. */
	uint8_t *gz = malloc(2 * clen + 256);
	size_t glen = gzip_level(cpio, 1000, gz, clen + 128, 9);
	glen += gzip_level(cpio + 1000, clen - 1000, gz + glen, clen + 128, 9);
	static const char second[] = "second";
	uint8_t *expect = calloc(1, clen + 3 + sizeof(second));
	memcpy(expect, cpio, clen);
	memcpy(expect + clen + 3, second, sizeof(second));
	const uint8_t *rd[2] = { gz, (const uint8_t *)second };
	size_t rd_len[2] = { glen, sizeof(second) };
	boot_initrds(rd, rd_len, 2, expect, clen + 3 + sizeof(second));

	/* The other formats, each on its own. */
	uint8_t *z = malloc(2 * clen + 256);
	size_t zlen = 0;
	assert_int_equal(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, cpio, clen, z, &zlen, 2 * clen + 256),
			 LZMA_OK);
	rd[0] = z;
	rd_len[0] = zlen;
	boot_initrds(rd, rd_len, 1, cpio, clen);
	zlen = ZSTD_compress(z, 2 * clen + 256, cpio, clen, 3);
	assert_false(ZSTD_isError(zlen));
	rd_len[0] = zlen;
	boot_initrds(rd, rd_len, 1, cpio, clen);
	zlen = LZ4F_compressFrame(z, 2 * clen + 256, cpio, clen, NULL);
	assert_false(LZ4F_isError(zlen));
	rd_len[0] = zlen;
	boot_initrds(rd, rd_len, 1, cpio, clen);

	/* XVM_BOOT_NO_HOST_DECOMPRESS=1: as it is. */
	setenv("XVM_BOOT_NO_HOST_DECOMPRESS", "1", 1);
	rd[0] = gz;
	rd_len[0] = glen;
	boot_initrds(rd, rd_len, 1, gz, glen);
	unsetenv("XVM_BOOT_NO_HOST_DECOMPRESS");
	free(z);
	free(expect);
	free(gz);
	free(cpio);
}

static void test_initrd_not_cpio_kept(void **state)
{
	(void)state;
	static const char text[] = "not a cpio archive, just text, text, text";
	uint8_t gz[256];
	size_t glen = gzip_level((const uint8_t *)text, sizeof(text), gz, sizeof(gz), 9);
	const uint8_t *rd[1] = { gz };
	size_t rd_len[1] = { glen };
	boot_initrds(rd, rd_len, 1, gz, glen);

	/* A cpio gzip cut short, or with garbage after it: as it is too. */
	uint8_t *cpio = make_cpio(4001);
	uint8_t *bad = malloc(8192);
	glen = gzip_level(cpio, 4001, bad, 8192, 9);
	rd[0] = bad;
	rd_len[0] = glen - 5;
	boot_initrds(rd, rd_len, 1, bad, glen - 5);
	memcpy(bad + glen, "junk", 4);
	rd_len[0] = glen + 4;
	boot_initrds(rd, rd_len, 1, bad, glen + 4);
	free(bad);
	free(cpio);
}

static void test_initrd_too_large_kept(void **state)
{
	(void)state;
	/* 48 MiB of cpio in a 64 MiB guest whose kernel takes 16-24 MiB:
	 * the decompressed archive cannot fit, the compressed one is placed. */
	size_t clen = 48 * MiB;
	uint8_t *cpio = calloc(1, clen);
	memcpy(cpio, "070701", 6);
	size_t cap = 8 * MiB;
	uint8_t *gz = malloc(cap);
	size_t glen = gzip_level(cpio, clen, gz, cap, 1);
	free(cpio);
	const uint8_t *rd[1] = { gz };
	size_t rd_len[1] = { glen };
	boot_initrds(rd, rd_len, 1, gz, glen);
	free(gz);
}

static void test_bzimage_guest_decompressor(void **state)
{
	struct fixture *f = fx_new(64 * MiB);
	static uint8_t img[0x10000];
	size_t len = make_bzimage(img, sizeof(img), F_XZ, 0x20F, 0x1);
	f->cfg.kernel = fx_file(f, img, len);
	setenv("XVM_BOOT_NO_HOST_DECOMPRESS", "1", 1);
	int r = fx_boot(f);
	unsetenv("XVM_BOOT_NO_HOST_DECOMPRESS");
	assert_int_equal(r, 0);
	/* Protected-mode code at the load address, entered at +0x200. */
	check_long_mode_entry(f, KADDR + 0x200);
	assert_memory_equal(gpa(f, KADDR, len - SETUP_SIZE), img + SETUP_SIZE, len - SETUP_SIZE);
	check_zero_page(f, "", NULL, 0);
	assert_int_equal(r32(gpa(f, ZP + 0x214, 4)), KADDR);
	fx_free(f);
}

static void test_bzimage_corrupt_payload_falls_back(void **state)
{
	struct fixture *f = fx_new(64 * MiB);
	static uint8_t img[0x10000];
	size_t len = make_bzimage(img, sizeof(img), F_GZIP, 0x20F, 0x1);
	/* Break the deflate stream: the host cannot decompress it, so the
	 * kernel's own decompressor gets the job (and would report it). */
	img[SETUP_SIZE + PAYLOAD_OFF + 20] ^= 0xFF;
	img[SETUP_SIZE + PAYLOAD_OFF + 21] ^= 0xFF;
	f->cfg.kernel = fx_file(f, img, len);
	assert_int_equal(fx_boot(f), 0);
	check_long_mode_entry(f, KADDR + 0x200);
	fx_free(f);
}

static void test_vmlinux_elf(void **state)
{
	struct fixture *f = fx_new(64 * MiB);
	static uint8_t elf[0x1000];
	size_t len = make_elf64(elf, 0x200000, 0x2000, true, 0x200040);
	static const char rd[] = "initramfs";
	f->cfg.kernel = fx_file(f, elf, len);
	f->cfg.initrd[0] = fx_file(f, rd, sizeof(rd));
	f->cfg.n_initrd = 1;
	f->cfg.append = "quiet";
	assert_int_equal(fx_boot(f), 0);
	check_long_mode_entry(f, 0x200000);
	check_zero_page(f, "quiet", (const uint8_t *)rd, sizeof(rd));
	assert_int_equal(gpa(f, 0x200000, 1)[0], 0x5A);
	/* Booting again (a reset) gives the same state. */
	struct x86_cpu_state first = f->m.boot_state;
	assert_int_equal(fx_boot(f), 0);
	assert_memory_equal(&first, &f->m.boot_state, sizeof(first));
	fx_free(f);
}

/* ---- PVH ---- */

static void check_pvh(struct fixture *f, uint32_t entry, const char *cmdline, size_t initrd_len)
{
	check_protected_mode_entry(f, entry);
	uint64_t si_addr = f->m.boot_state.gpr[R_RBX];
	const uint8_t *si = gpa(f, si_addr, 56);
	assert_int_equal(r32(si), 0x336ec578);
	assert_int_equal(r32(si + 4), 1);
	assert_string_equal((char *)gpa(f, r64(si + 24), strlen(cmdline) + 1), cmdline);
	assert_memory_equal(gpa(f, r64(si + 32), 8), "RSD PTR ", 8);
	unsigned n = r32(si + 48);
	assert_true(n >= 4);
	const uint8_t *mm = gpa(f, r64(si + 40), 24 * n);
	assert_int_equal(r64(mm), 0);
	assert_int_equal(r32(mm + 16), E820_RAM);
	assert_int_equal(r32(si + 12), initrd_len ? 1 : 0);
	if (initrd_len) {
		const uint8_t *mod = gpa(f, r64(si + 16), 32);
		assert_int_equal(r64(mod + 8), initrd_len);
		assert_int_equal(r64(mod) % 4096, 0);
	}
}

static void test_pvh_elf32(void **state)
{
	struct fixture *f = fx_new(32 * MiB);
	static uint8_t elf[0x1000];
	size_t len = make_elf32(elf, 0x100000, 0x100000, 0x100040, false);
	static const char rd[] = "module bytes";
	f->cfg.kernel = fx_file(f, elf, len);
	f->cfg.initrd[0] = fx_file(f, rd, sizeof(rd));
	f->cfg.n_initrd = 1;
	f->cfg.append = "pvh cmdline";
	assert_int_equal(fx_boot(f), 0);
	check_pvh(f, 0x100040, "pvh cmdline", sizeof(rd));
	assert_memory_equal(gpa(f, 0x100000, 0x200), elf + 0x400, 0x200);
	fx_free(f);
}

static void test_pvh_preferred_for_linux_by_env(void **state)
{
	struct fixture *f = fx_new(64 * MiB);
	static uint8_t elf[0x1000];
	size_t len = make_elf64(elf, 0x200000, 0x2000, true, 0x200080);
	f->cfg.kernel = fx_file(f, elf, len);
	assert_int_equal(boot_detect(elf, len), BOOT_FORMAT_VMLINUX);
	setenv("XVM_BOOT_PVH", "1", 1);
	assert_int_equal(boot_detect(elf, len), BOOT_FORMAT_PVH);
	int r = fx_boot(f);
	unsetenv("XVM_BOOT_PVH");
	assert_int_equal(r, 0);
	check_pvh(f, 0x200080, "", 0);
	fx_free(f);
}

/* ---- multiboot ---- */

static void check_multiboot(struct fixture *f, uint32_t entry, const char *cmdline, unsigned nmods)
{
	check_protected_mode_entry(f, entry);
	const struct x86_cpu_state *s = &f->m.boot_state;
	assert_int_equal(s->gpr[R_RAX], 0x2BADB002);
	const uint8_t *mbi = gpa(f, s->gpr[R_RBX], 88);
	uint32_t flags = r32(mbi);
	assert_int_equal(flags & 0x245, 0x245); /* mem, cmdline, mmap, loader name */
	assert_int_equal(r32(mbi + 4), 639);
	assert_int_equal(r32(mbi + 8), (f->m.ram.low_size - MiB) / 1024);
	assert_string_equal((char *)gpa(f, r32(mbi + 16), strlen(cmdline) + 1), cmdline);
	assert_string_equal((char *)gpa(f, r32(mbi + 64), 4), "xvm");
	uint32_t mmap_len = r32(mbi + 44), mmap = r32(mbi + 48);
	assert_true(mmap_len >= 4 * 24);
	const uint8_t *e = gpa(f, mmap, mmap_len);
	assert_int_equal(r32(e), 20);
	assert_int_equal(r64(e + 4), 0);
	assert_int_equal(r64(e + 12), 0x9FC00);
	assert_int_equal(r32(e + 20), 1);
	if (nmods) {
		assert_true(flags & 0x8);
		assert_int_equal(r32(mbi + 20), nmods);
	} else {
		assert_int_equal(flags & 0x8, 0);
	}
}

static void test_multiboot_aout_kludge(void **state)
{
	struct fixture *f = fx_new(32 * MiB);
	static uint8_t img[0x200];
	memset(img, 0x90, sizeof(img));
	uint8_t *h = img + 0x40;
	uint32_t flags = 0x00010003;
	w32(h, 0x1BADB002);
	w32(h + 4, flags);
	w32(h + 8, (uint32_t)-(0x1BADB002 + flags));
	w32(h + 12, 0x100040); /* header_addr */
	w32(h + 16, 0x100000); /* load_addr */
	w32(h + 20, 0);        /* load_end_addr: whole file */
	w32(h + 24, 0x102000); /* bss_end_addr */
	w32(h + 28, 0x100080); /* entry */
	static const char m1[] = "module one", m2[] = "module two!";
	f->cfg.kernel = fx_file(f, img, sizeof(img));
	f->cfg.initrd[0] = fx_file(f, m1, sizeof(m1));
	f->cfg.initrd[1] = fx_file(f, m2, sizeof(m2));
	f->cfg.n_initrd = 2;
	f->cfg.append = "mb args";
	memset(gpa(f, 0x100200, 0x1E00), 0xCC, 0x1E00); /* bss must be cleared */
	assert_int_equal(boot_detect(img, sizeof(img)), BOOT_FORMAT_MULTIBOOT);
	assert_int_equal(fx_boot(f), 0);
	check_multiboot(f, 0x100080, "mb args", 2);
	assert_memory_equal(gpa(f, 0x100000, sizeof(img)), img, sizeof(img));
	const uint8_t *bss = gpa(f, 0x100200, 0x1E00);
	for (int i = 0; i < 0x1E00; i++)
		assert_int_equal(bss[i], 0);
	/* Modules: page aligned, their bytes, their file names. */
	const uint8_t *mbi = gpa(f, f->m.boot_state.gpr[R_RBX], 88);
	const uint8_t *mods = gpa(f, r32(mbi + 24), 32);
	const char *names[2] = { f->cfg.initrd[0], f->cfg.initrd[1] };
	const char *data[2] = { m1, m2 };
	size_t lens[2] = { sizeof(m1), sizeof(m2) };
	for (int i = 0; i < 2; i++) {
		uint32_t start = r32(mods + 16 * i), end = r32(mods + 16 * i + 4);
		assert_int_equal(start % 4096, 0);
		assert_true(start >= 0x102000);
		assert_int_equal(end - start, lens[i]);
		assert_memory_equal(gpa(f, start, lens[i]), data[i], lens[i]);
		const char *base = strrchr(names[i], '/') + 1;
		assert_string_equal((char *)gpa(f, r32(mods + 16 * i + 8), strlen(base) + 1), base);
	}
	fx_free(f);
}

static void test_multiboot_elf(void **state)
{
	struct fixture *f = fx_new(32 * MiB);
	static uint8_t elf[0x1000];
	size_t len = make_elf32(elf, 0x100000, 0x100050, 0, true);
	f->cfg.kernel = fx_file(f, elf, len);
	assert_int_equal(boot_detect(elf, len), BOOT_FORMAT_MULTIBOOT);
	assert_int_equal(fx_boot(f), 0);
	check_multiboot(f, 0x100050, "", 0);
	assert_memory_equal(gpa(f, 0x100040, 0x1C0), elf + 0x440, 0x1C0);
	fx_free(f);
}

/* ---- bad input ---- */

static void test_bad_inputs(void **state)
{
	struct fixture *f = fx_new(32 * MiB);
	static uint8_t img[0x10000];

	f->cfg.kernel = NULL;
	expect_fail(f, "no kernel");
	f->cfg.kernel = "/nonexistent/kernel";
	expect_fail(f, "No such file");
	f->cfg.kernel = "/tmp";
	expect_fail(f, "not a regular file");

	memset(img, 0x41, 4096);
	f->cfg.kernel = fx_file(f, img, 4096);
	expect_fail(f, "unrecognised format");
	f->cfg.kernel = fx_file(f, img, 0);
	expect_fail(f, "unrecognised format");
	for (unsigned i = 0; i < f->nfiles; i++)
		unlink(f->files[i]);
	f->nfiles = 0;

	size_t len = make_bzimage(img, sizeof(img), F_GZIP, 0x20F, 0x1);
	f->cfg.kernel = fx_file(f, img, 0x250);
	expect_fail(f, "truncated");
	f->cfg.kernel = fx_file(f, img, SETUP_SIZE);
	expect_fail(f, "truncated");
	f->cfg.kernel = fx_file(f, img, SETUP_SIZE + PAYLOAD_OFF + 10); /* cut in the payload */
	expect_fail(f, "truncated: the kernel needs");
	make_bzimage(img, sizeof(img), F_GZIP, 0x20B, 0x1);
	f->cfg.kernel = fx_file(f, img, len);
	expect_fail(f, "too old");
	make_bzimage(img, sizeof(img), F_GZIP, 0x20F, 0x0);
	f->cfg.kernel = fx_file(f, img, len);
	expect_fail(f, "64-bit entry");
	for (unsigned i = 0; i < f->nfiles; i++)
		unlink(f->files[i]);
	f->nfiles = 0;

	/* The kernel needs init_size (8 MiB) from 16 MiB: 20 MiB is too little. */
	struct fixture *small = fx_new(20 * MiB);
	len = make_bzimage(img, sizeof(img), F_GZIP, 0x20F, 0x1);
	small->cfg.kernel = fx_file(small, img, len);
	expect_fail(small, "init_size");
	fx_free(small);

	/* Initrds: larger than RAM, or no room above the kernel. */
	f->cfg.kernel = fx_file(f, img, len);
	static uint8_t big[9 * MiB];
	f->cfg.initrd[0] = fx_file(f, big, sizeof(big));
	f->cfg.n_initrd = 1;
	expect_fail(f, "does not fit");
	f->cfg.n_initrd = 0;

	/* A command line longer than the kernel's cmdline_size. */
	char *longcmd = malloc(4000);
	memset(longcmd, 'x', 3999);
	longcmd[3999] = 0;
	f->cfg.append = longcmd;
	expect_fail(f, "command line");
	f->cfg.append = NULL;
	free(longcmd);
	for (unsigned i = 0; i < f->nfiles; i++)
		unlink(f->files[i]);
	f->nfiles = 0;

	/* ELF segments in the loader's area, outside RAM, wrapping. */
	static uint8_t elf[0x1000];
	len = make_elf64(elf, 0x8000, 0x1000, true, 0);
	f->cfg.kernel = fx_file(f, elf, len);
	expect_fail(f, "loader's area");
	len = make_elf64(elf, 0x10000000, 0x1000, true, 0);
	f->cfg.kernel = fx_file(f, elf, len);
	expect_fail(f, "not inside guest RAM");
	len = make_elf64(elf, 0x1000000, 0x1000, true, 0);
	w64(elf + 64 + 40, ~0ULL - 0x100); /* memsz */
	f->cfg.kernel = fx_file(f, elf, len);
	expect_fail(f, "bad ELF");
	len = make_elf64(elf, 0x1000000, 0x1000, true, 0);
	w64(elf + 64 + 8, 0xFFFFFFF0ULL); /* p_offset past the file */
	f->cfg.kernel = fx_file(f, elf, len);
	expect_fail(f, "bad ELF");
	len = make_elf64(elf, 0x1000000, 0x1000, true, 0);
	w16(elf + 56, 0xFFFF); /* e_phnum */
	f->cfg.kernel = fx_file(f, elf, len);
	expect_fail(f, "bad ELF");
	for (unsigned i = 0; i < f->nfiles; i++)
		unlink(f->files[i]);
	f->nfiles = 0;

	/* Multiboot: an unknown required feature; a kludge header whose
	 * load address does not fit the file. */
	static uint8_t mb[0x200];
	memset(mb, 0, sizeof(mb));
	uint32_t flags = 0x00010020;
	w32(mb, 0x1BADB002);
	w32(mb + 4, flags);
	w32(mb + 8, (uint32_t)-(0x1BADB002 + flags));
	f->cfg.kernel = fx_file(f, mb, sizeof(mb));
	expect_fail(f, "requires features");
	flags = 0x00010000;
	w32(mb + 4, flags);
	w32(mb + 8, (uint32_t)-(0x1BADB002 + flags));
	w32(mb + 12, 0x100000);
	w32(mb + 16, 0x0F0000); /* 64 KiB before the header: not in the file */
	w32(mb + 28, 0x100000);
	f->cfg.kernel = fx_file(f, mb, sizeof(mb));
	expect_fail(f, "load_addr");
	w32(mb + 16, 0x100000);
	w32(mb + 24, 0x4000000); /* bss beyond RAM */
	f->cfg.kernel = fx_file(f, mb, sizeof(mb));
	expect_fail(f, "not inside guest RAM");
	fx_free(f);

	/* Too little RAM for anything. */
	f = fx_new(1 * MiB);
	f->cfg.kernel = "/dev/null";
	expect_fail(f, "too small");
	fx_free(f);
}

/* Random corruption of valid images never crashes the loader, and every
 * failure comes with a message. */
static void test_fuzz_headers(void **state)
{
	struct fixture *f = fx_new(64 * MiB);
	static uint8_t orig[4][0x10000], img[0x10000];
	size_t lens[4];
	lens[0] = make_bzimage(orig[0], sizeof(orig[0]), F_GZIP, 0x20F, 0x1);
	lens[1] = make_elf64(orig[1], 0x200000, 0x2000, true, 0x200040);
	lens[2] = make_elf32(orig[2], 0x100000, 0x100000, 0x100040, false);
	lens[3] = make_elf32(orig[3], 0x100000, 0x100050, 0, true);
	srand(12345);
	char path[] = "/tmp/xvm-boot-fuzz-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	f->cfg.kernel = path;
	unsigned ok = 0, failed = 0;
	for (int iter = 0; iter < 1200; iter++) {
		unsigned which = (unsigned)iter % 4;
		size_t len = lens[which];
		memcpy(img, orig[which], len);
		int flips = 1 + rand() % 8;
		for (int i = 0; i < flips; i++) {
			size_t at = (size_t)rand() % (len < 0x900 ? len : 0x900);
			img[at] = (uint8_t)rand();
		}
		if (rand() % 8 == 0)
			len = (size_t)rand() % len;
		FILE *fp = fopen(path, "wb");
		assert_non_null(fp);
		assert_int_equal(fwrite(img, 1, len, fp), len);
		fclose(fp);
		f->err[0] = 0;
		if (fx_boot(f) == 0) {
			ok++;
		} else {
			failed++;
			assert_true(f->err[0] != 0);
		}
	}
	unlink(path);
	assert_true(ok > 0);
	assert_true(failed > 0);
	fx_free(f);
}

static void test_detect(void **state)
{
	static uint8_t img[0x10000];
	size_t len = make_bzimage(img, sizeof(img), F_GZIP, 0x20F, 0x1);
	assert_int_equal(boot_detect(img, len), BOOT_FORMAT_BZIMAGE);
	assert_int_equal(boot_detect(img, 0x100), BOOT_FORMAT_UNKNOWN);
	len = make_elf32(img, 0x100000, 0x100000, 0x100040, false);
	assert_int_equal(boot_detect(img, len), BOOT_FORMAT_PVH);
	len = make_elf32(img, 0x100000, 0x100000, 0, false);
	assert_int_equal(boot_detect(img, len), BOOT_FORMAT_UNKNOWN);
	len = make_elf64(img, 0x100000, 0x1000, false, 0);
	assert_int_equal(boot_detect(img, len), BOOT_FORMAT_VMLINUX);
	assert_string_equal(boot_format_name(BOOT_FORMAT_MULTIBOOT), "multiboot");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bzimage_gzip),
		cmocka_unit_test(test_bzimage_xz),
		cmocka_unit_test(test_bzimage_zstd),
		cmocka_unit_test(test_bzimage_lz4),
		cmocka_unit_test(test_bzimage_guest_decompressor),
		cmocka_unit_test(test_initrd_gzip_cpio_decompressed),
		cmocka_unit_test(test_initrd_not_cpio_kept),
		cmocka_unit_test(test_initrd_too_large_kept),
		cmocka_unit_test(test_bzimage_corrupt_payload_falls_back),
		cmocka_unit_test(test_vmlinux_elf),
		cmocka_unit_test(test_pvh_elf32),
		cmocka_unit_test(test_pvh_preferred_for_linux_by_env),
		cmocka_unit_test(test_multiboot_aout_kludge),
		cmocka_unit_test(test_multiboot_elf),
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_fuzz_headers),
		cmocka_unit_test(test_detect),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
