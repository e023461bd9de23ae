/* Linux: bzImage through the 64-bit boot protocol
 * (Documentation/arch/x86/boot.rst), and ELF vmlinux through the same
 * 64-bit entry. A bzImage's compressed payload is decompressed here on
 * the host when we can, and the vmlinux inside entered directly: the
 * guest is then spared its own decompressor (and KASLR is skipped). */
#include "machine/boot_priv.h"
#include "machine/kcache.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Setup header fields (offsets in the image and in the zero page). */
#define HDR_SETUP_SECTS     0x1F1
#define HDR_SYSSIZE         0x1F4 /* protected-mode code, 16-byte units */
#define HDR_BOOT_FLAG       0x1FE
#define HDR_JUMP            0x200
#define HDR_MAGIC           0x202
#define HDR_VERSION         0x206
#define HDR_TYPE_OF_LOADER  0x210
#define HDR_LOADFLAGS       0x211
#define HDR_CODE32_START    0x214
#define HDR_RAMDISK_IMAGE   0x218
#define HDR_RAMDISK_SIZE    0x21C
#define HDR_HEAP_END_PTR    0x224
#define HDR_CMD_LINE_PTR    0x228
#define HDR_INITRD_ADDR_MAX 0x22C
#define HDR_KERNEL_ALIGN    0x230
#define HDR_RELOCATABLE     0x234
#define HDR_XLOADFLAGS      0x236
#define HDR_CMDLINE_SIZE    0x238
#define HDR_HW_SUBARCH      0x23C
#define HDR_PAYLOAD_OFFSET  0x248
#define HDR_PAYLOAD_LENGTH  0x24C
#define HDR_SETUP_DATA      0x250
#define HDR_PREF_ADDRESS    0x258
#define HDR_INIT_SIZE       0x260
#define HDR_END_MAX         0x290 /* the setup header never reaches past here */

/* Zero page (struct boot_params) fields outside the setup header. */
#define ZP_ACPI_RSDP_ADDR   0x070
#define ZP_EXT_RAMDISK_IMG  0x0C0
#define ZP_EXT_RAMDISK_SIZE 0x0C4
#define ZP_EXT_CMD_LINE_PTR 0x0C8
#define ZP_ALT_MEM_K        0x1E0
#define ZP_E820_ENTRIES     0x1E8
#define ZP_E820_TABLE       0x2D0
#define ZP_E820_MAX         128
#define ZP_SIZE             0x1000

#define LOADED_HIGH         0x01
#define KASLR_FLAG          0x02
#define CAN_USE_HEAP        0x80
#define XLF_KERNEL_64       0x01

#define LINUX_MIN_VERSION   0x020C /* 2.12: xloadflags, the 64-bit entry */
#define LINUX_ENTRY64       0x200  /* startup_64 in the protected-mode code */
#define LINUX_INITRD_MAX    0x7FFFFFFFULL /* for a vmlinux without a header */
#define LINUX_CMDLINE_MAX   2048          /* likewise (COMMAND_LINE_SIZE) */
#define DECOMPRESSED_MAX    (1ULL << 30)

/* Builds the zero page at BOOT_PARAMS_ADDR: the kernel's setup header
 * (from hdr, or a minimal one for a bare vmlinux), then what a boot
 * loader fills in. Writes the command line and the initrd. */
static int write_zero_page(struct boot_ctx *c, const uint8_t *img, size_t len, uint64_t load_addr)
{
	uint8_t zp[ZP_SIZE];
	memset(zp, 0, sizeof(zp));
	uint64_t initrd_limit = LINUX_INITRD_MAX + 1;
	uint64_t cmdline_max = LINUX_CMDLINE_MAX;
	if (img) {
		/* The header runs from 0x1F1 to 0x202 + the jump's offset byte. */
		size_t end = 0x202 + img[HDR_JUMP + 1];
		if (end > HDR_END_MAX)
			end = HDR_END_MAX;
		if (end > len)
			end = len;
		memcpy(zp + HDR_SETUP_SECTS, img + HDR_SETUP_SECTS, end - HDR_SETUP_SECTS);
		initrd_limit = (uint64_t)rd32(img + HDR_INITRD_ADDR_MAX) + 1;
		uint32_t cmdline_size = rd32(img + HDR_CMDLINE_SIZE);
		if (cmdline_size)
			cmdline_max = (uint64_t)cmdline_size + 1; /* the field excludes the NUL */
	} else {
		wr16(zp + HDR_BOOT_FLAG, 0xAA55);
		memcpy(zp + HDR_MAGIC, "HdrS", 4);
		wr16(zp + HDR_VERSION, 0x020F);
		wr32(zp + HDR_INITRD_ADDR_MAX, (uint32_t)LINUX_INITRD_MAX);
		wr32(zp + HDR_CMDLINE_SIZE, LINUX_CMDLINE_MAX - 1);
	}
	zp[HDR_TYPE_OF_LOADER] = 0xFF; /* undefined loader id */
	zp[HDR_LOADFLAGS] = (uint8_t)((zp[HDR_LOADFLAGS] | LOADED_HIGH | CAN_USE_HEAP) & ~KASLR_FLAG);
	wr16(zp + HDR_HEAP_END_PTR, 0xFE00 - 0x200);
	wr32(zp + HDR_CODE32_START, (uint32_t)load_addr);
	wr32(zp + HDR_HW_SUBARCH, 0); /* a normal PC */
	wr64(zp + HDR_SETUP_DATA, 0);

	uint64_t cmdline, initrd;
	int r = boot_write_cmdline(c, cmdline_max, &cmdline);
	if (r < 0)
		return r;
	wr32(zp + HDR_CMD_LINE_PTR, (uint32_t)cmdline);
	wr32(zp + ZP_EXT_CMD_LINE_PTR, 0);
	if ((r = boot_place_initrd(c, initrd_limit, &initrd)) < 0)
		return r;
	wr32(zp + HDR_RAMDISK_IMAGE, (uint32_t)initrd);
	wr32(zp + HDR_RAMDISK_SIZE, initrd ? (uint32_t)c->initrd_total : 0);
	wr32(zp + ZP_EXT_RAMDISK_IMG, 0);
	wr32(zp + ZP_EXT_RAMDISK_SIZE, 0);

	wr64(zp + ZP_ACPI_RSDP_ADDR, c->rsdp_addr);
	uint64_t above_1m = c->ram->low_size - BOOT_KERNEL_MIN + c->ram->high_size;
	wr32(zp + ZP_ALT_MEM_K, (uint32_t)MIN(above_1m >> 10, 0xFFFFFFFFULL));
	unsigned n = MIN(c->e820.n, ZP_E820_MAX);
	zp[ZP_E820_ENTRIES] = (uint8_t)n;
	for (unsigned i = 0; i < n; i++) {
		uint8_t *e = zp + ZP_E820_TABLE + 20 * i;
		wr64(e, c->e820.entry[i].addr);
		wr64(e + 8, c->e820.entry[i].size);
		wr32(e + 16, c->e820.entry[i].type);
	}
	return boot_write(c, BOOT_PARAMS_ADDR, zp, sizeof(zp), "zero page");
}

static int enter_linux64(struct boot_ctx *c, uint64_t entry)
{
	int r = boot_enter_long_mode(c, entry);
	if (r < 0)
		return r;
	c->entry->gpr[R_RSI] = BOOT_PARAMS_ADDR;
	return 0;
}

int boot_linux_vmlinux(struct boot_ctx *c, const uint8_t *elf, size_t len)
{
	struct elf_info info;
	const char *why;
	if (elf_parse(elf, len, &info, &why) < 0)
		return boot_fail(c, EINVAL, "bad ELF image: %s", why);
	if (!info.is64)
		return boot_fail(c, EINVAL, "a 32-bit ELF without a multiboot or PVH header");
	int r = elf_load(c, elf, len, &info);
	if (r < 0 || (r = write_zero_page(c, NULL, 0, info.lowest)) < 0)
		return r;
	return enter_linux64(c, info.phys_entry);
}

struct bzimage {
	const uint8_t *img;
	size_t len;
	uint16_t version;
	size_t setup_size;            /* real-mode part, including the boot sector */
	const uint8_t *kernel;        /* protected-mode part */
	size_t kernel_len;
	uint64_t load_addr;
	uint32_t init_size;
	uint32_t payload_offset, payload_length;
};

static int parse_bzimage(struct boot_ctx *c, struct bzimage *b)
{
	const uint8_t *img = c->kernel.data;
	size_t len = c->kernel.len;
	b->img = img;
	b->len = len;
	if (len < HDR_INIT_SIZE + 4)
		return boot_fail(c, EINVAL, "truncated setup header (%zu bytes)", len);
	b->version = rd16(img + HDR_VERSION);
	if (b->version < LINUX_MIN_VERSION)
		return boot_fail(c, EINVAL, "boot protocol %u.%02u is too old (the 64-bit entry needs 2.12)",
				 b->version >> 8, b->version & 0xFF);
	if (!(img[HDR_LOADFLAGS] & LOADED_HIGH))
		return boot_fail(c, EINVAL, "a zImage (loaded low) is not supported");
	if (!(rd16(img + HDR_XLOADFLAGS) & XLF_KERNEL_64))
		return boot_fail(c, EINVAL, "the kernel has no 64-bit entry (xloadflags)");
	unsigned sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
	b->setup_size = (size_t)(sects + 1) * 512;
	if (b->setup_size >= len)
		return boot_fail(c, EINVAL, "truncated: the setup code (%zu bytes) fills the whole file",
				 b->setup_size);
	b->kernel = img + b->setup_size;
	b->kernel_len = len - b->setup_size;
	b->init_size = rd32(img + HDR_INIT_SIZE);
	b->payload_offset = rd32(img + HDR_PAYLOAD_OFFSET);
	b->payload_length = rd32(img + HDR_PAYLOAD_LENGTH);
	/* A cut-off file would only fail later, inside the guest. */
	uint64_t syssize = (uint64_t)rd32(img + HDR_SYSSIZE) * 16;
	uint64_t payload_end = (uint64_t)b->payload_offset + b->payload_length;
	if (syssize > b->kernel_len || payload_end > b->kernel_len)
		return boot_fail(c, EINVAL, "truncated: the kernel needs %llu bytes after the setup code, the file has %zu",
				 (unsigned long long)MAX(syssize, payload_end), b->kernel_len);

	uint64_t pref = rd64(img + HDR_PREF_ADDRESS);
	uint32_t align = rd32(img + HDR_KERNEL_ALIGN);
	uint64_t addr = pref;
	if (img[HDR_RELOCATABLE] && align && (align & (align - 1)) == 0)
		addr = (addr + align - 1) & ~(uint64_t)(align - 1);
	if (addr < BOOT_KERNEL_MIN)
		addr = BOOT_KERNEL_MIN;
	b->load_addr = addr;
	uint64_t need = MAX((uint64_t)b->init_size, (uint64_t)b->kernel_len);
	if (need > c->ram->low_size || addr > c->ram->low_size - need)
		return boot_fail(c, ENOMEM,
				 "needs %llu bytes of RAM from 0x%llx (init_size); guest low RAM ends at 0x%llx",
				 (unsigned long long)need, (unsigned long long)addr,
				 (unsigned long long)c->ram->low_size);
	return 0;
}

/* Host decompression: 1 if the vmlinux inside was loaded (entry set),
 * 0 to fall back to the kernel's decompressor, <0 on a hard error. */
static int try_host_decompress(struct boot_ctx *c, const struct bzimage *b, uint64_t *entry)
{
	const char *off = getenv("XVM_BOOT_NO_HOST_DECOMPRESS");
	if (off && strcmp(off, "0") != 0)
		return 0;
	if (!b->payload_length || b->payload_offset > b->kernel_len ||
	    b->payload_length > b->kernel_len - b->payload_offset || b->payload_length < 8)
		return 0;
	const uint8_t *payload = b->kernel + b->payload_offset;
	enum payload_format f = payload_detect(payload, b->payload_length);
	if (!payload_can_decompress(f)) {
		log_debug("boot: %s payload: using the kernel's own decompressor", payload_format_name(f));
		return 0;
	}
	/* The build appends the decompressed size as the payload's last
	 * four bytes, for every compressor. */
	uint64_t out_size = rd32(payload + b->payload_length - 4);
	if (out_size == 0 || out_size > DECOMPRESSED_MAX || out_size > c->ram->size) {
		log_warn("boot: implausible decompressed size %llu; using the kernel's decompressor",
			 (unsigned long long)out_size);
		return 0;
	}
	uint8_t *elf = NULL;
	size_t elf_len = 0;
	const char *why = NULL;
	struct kcache_key key;
	kcache_key(&key, payload, b->payload_length);
	bool cached = kcache_lookup(&key, out_size, &elf, &elf_len) == 1;
	int r = 0;
	if (!cached)
		r = payload_decompress(f, payload, b->payload_length, out_size, &elf, &elf_len, &why);
	if (r < 0) {
		log_warn("boot: host %s decompression failed (%s); using the kernel's decompressor",
			 payload_format_name(f), why);
		return 0;
	}
	struct elf_info info;
	if (elf_parse(elf, elf_len, &info, &why) < 0 || !info.is64) {
		log_warn("boot: the decompressed payload is not a 64-bit ELF (%s); using the kernel's decompressor",
			 info.is64 ? why : "32-bit");
		free(elf);
		return 0;
	}
	r = elf_load(c, elf, elf_len, &info);
	if (r < 0) {
		free(elf);
		return r;
	}
	if (cached)
		free(elf);
	else
		kcache_store(&key, elf, elf_len); /* takes elf */
	/* The decompressor would have worked in [load, load + init_size):
	 * keep the initrd out of it all the same. */
	c->kernel_end = MAX(c->kernel_end, (b->load_addr + b->init_size + 0xFFF) & ~0xFFFULL);
	*entry = info.phys_entry;
	log_debug("boot: %s payload decompressed on the host (%zu bytes%s), entry 0x%llx",
		  payload_format_name(f), elf_len, cached ? ", from the cache" : "",
		  (unsigned long long)*entry);
	return 1;
}

int boot_linux_bzimage(struct boot_ctx *c)
{
	struct bzimage b = { 0 };
	int r = parse_bzimage(c, &b);
	if (r < 0)
		return r;
	uint64_t entry = 0;
	r = try_host_decompress(c, &b, &entry);
	if (r < 0)
		return r;
	if (r == 0) {
		r = boot_write(c, b.load_addr, b.kernel, b.kernel_len, "kernel");
		if (r < 0)
			return r;
		uint64_t end = b.load_addr + MAX((uint64_t)b.init_size, (uint64_t)b.kernel_len);
		c->kernel_end = (end + 0xFFF) & ~0xFFFULL;
		entry = b.load_addr + LINUX_ENTRY64;
	}
	if ((r = write_zero_page(c, b.img, b.len, b.load_addr)) < 0)
		return r;
	return enter_linux64(c, entry);
}
