/* Multiboot v1 (the Multiboot Specification 0.6.96): ELF kernels and the
 * a.out kludge (header flag 16), entered in 32-bit protected mode with
 * EAX = 0x2BADB002 and EBX = the multiboot information. Each --initrd file
 * becomes a module whose string is the file's name. */
#include "machine/boot_priv.h"
#include "lib/util.h"

#include <errno.h>
#include <string.h>

#define MB_MAGIC            0x1BADB002u
#define MB_BOOTLOADER_MAGIC 0x2BADB002u
#define MB_SEARCH           8192
#define MB_HDR_SIZE         12
#define MB_KLUDGE_SIZE      32

/* Header flags. Bits 0-15 are requirements: refuse any we cannot meet. */
#define MB_PAGE_ALIGN       (1u << 0)
#define MB_MEMORY_INFO      (1u << 1)
#define MB_VIDEO_MODE       (1u << 2)
#define MB_AOUT_KLUDGE      (1u << 16)
#define MB_KNOWN_REQUIRED   (MB_PAGE_ALIGN | MB_MEMORY_INFO | MB_VIDEO_MODE)

/* Info flags. */
#define MBI_MEMORY          (1u << 0)
#define MBI_CMDLINE         (1u << 2)
#define MBI_MODS            (1u << 3)
#define MBI_MMAP            (1u << 6)
#define MBI_LOADER_NAME     (1u << 9)
#define MBI_SIZE            88

/* Info layout: the info structure at BOOT_PARAMS_ADDR; the memory map,
 * module list and strings in the BOOT_INFO area. */
#define MB_MMAP_ADDR        BOOT_INFO_ADDR
#define MB_MODS_ADDR        (BOOT_INFO_ADDR + 0x1000)
#define MB_STRINGS_ADDR     (BOOT_INFO_ADDR + 0x2000)

long multiboot_find_header(const uint8_t *img, size_t len)
{
	size_t limit = MIN(len, (size_t)MB_SEARCH);
	for (size_t at = 0; at + MB_HDR_SIZE <= limit; at += 4) {
		uint32_t magic = rd32(img + at), flags = rd32(img + at + 4), sum = rd32(img + at + 8);
		if (magic == MB_MAGIC && (uint32_t)(magic + flags + sum) == 0)
			return (long)at;
	}
	return -1;
}

/* a.out kludge: the header says where the file goes. */
static int load_kludge(struct boot_ctx *c, size_t hdr_at, uint64_t *entry)
{
	const uint8_t *img = c->kernel.data;
	size_t len = c->kernel.len;
	if (len - hdr_at < MB_KLUDGE_SIZE)
		return boot_fail(c, EINVAL, "truncated multiboot header");
	const uint8_t *h = img + hdr_at;
	uint32_t header_addr = rd32(h + 12), load_addr = rd32(h + 16);
	uint32_t load_end = rd32(h + 20), bss_end = rd32(h + 24);
	*entry = rd32(h + 28);
	if (load_addr > header_addr || header_addr - load_addr > hdr_at)
		return boot_fail(c, EINVAL, "multiboot header: load_addr 0x%x does not precede header_addr 0x%x in the file",
				 load_addr, header_addr);
	size_t file_off = hdr_at - (header_addr - load_addr);
	uint64_t load_len = load_end ? (uint64_t)load_end - load_addr : len - file_off;
	if (load_end && load_end < load_addr)
		return boot_fail(c, EINVAL, "multiboot header: load_end_addr below load_addr");
	if (load_len > len - file_off)
		return boot_fail(c, EINVAL, "multiboot header: load range extends past the end of the file");
	uint64_t end = (uint64_t)load_addr + load_len;
	if (bss_end) {
		if (bss_end < end)
			return boot_fail(c, EINVAL, "multiboot header: bss_end_addr below the loaded image");
		end = bss_end;
	}
	int r = boot_check_range(c, load_addr, end - load_addr, "kernel image");
	if (r < 0)
		return r;
	uint8_t *dst = gpa_to_hva(c->ram, load_addr, end - load_addr);
	memcpy(dst, img + file_off, load_len);
	memset(dst + load_len, 0, end - load_addr - load_len);
	guest_ram_mark_written(c->ram, load_addr, end - load_addr);
	if (*entry < load_addr || *entry >= end)
		return boot_fail(c, EINVAL, "multiboot entry 0x%llx is outside the loaded image",
				 (unsigned long long)*entry);
	c->kernel_end = (end + 0xFFF) & ~0xFFFULL;
	return 0;
}

int boot_multiboot(struct boot_ctx *c)
{
	const uint8_t *img = c->kernel.data;
	long hdr_at = multiboot_find_header(img, c->kernel.len);
	if (hdr_at < 0)
		return boot_fail(c, EINVAL, "no multiboot header");
	uint32_t flags = rd32(img + hdr_at + 4);
	if ((flags & 0xFFFF) & ~MB_KNOWN_REQUIRED)
		return boot_fail(c, EINVAL, "multiboot header requires features we do not provide (flags 0x%x)",
				 flags);
	uint64_t entry = 0;
	int r;
	if (flags & MB_AOUT_KLUDGE) {
		r = load_kludge(c, (size_t)hdr_at, &entry);
	} else {
		struct elf_info info;
		const char *why;
		if (elf_parse(img, c->kernel.len, &info, &why) < 0)
			return boot_fail(c, EINVAL, "multiboot kernel without the a.out kludge is not a valid ELF: %s",
					 why);
		r = elf_load(c, img, c->kernel.len, &info);
		entry = info.phys_entry;
	}
	if (r < 0)
		return r;
	if (entry > 0xFFFFFFFFULL)
		return boot_fail(c, EINVAL, "multiboot entry above 4 GiB");

	uint8_t mbi[MBI_SIZE];
	memset(mbi, 0, sizeof(mbi));
	uint32_t info_flags = MBI_MEMORY | MBI_MMAP | MBI_LOADER_NAME | MBI_CMDLINE;
	/* mem_lower: KiB of base memory; mem_upper: KiB from 1 MiB to the
	 * first hole. */
	wr32(mbi + 4, (uint32_t)(MIN(c->ram->low_size, EBDA_START) >> 10));
	wr32(mbi + 8, (uint32_t)((c->ram->low_size - BOOT_KERNEL_MIN) >> 10));

	/* Strings: command line, loader name, then module names. */
	uint64_t strings = MB_STRINGS_ADDR;
	uint64_t cmdline;
	if ((r = boot_write_cmdline(c, BOOT_CMDLINE_MAX, &cmdline)) < 0)
		return r;
	wr32(mbi + 16, (uint32_t)cmdline);
	static const char loader[] = "xvm";
	if ((r = boot_write(c, strings, loader, sizeof(loader), "multiboot strings")) < 0)
		return r;
	wr32(mbi + 64, (uint32_t)strings);
	strings += sizeof(loader);

	/* Modules: page aligned, one after another above the kernel. */
	if (c->n_initrd) {
		info_flags |= MBI_MODS;
		uint64_t at = c->kernel_end;
		uint8_t mods[16 * 16];
		memset(mods, 0, sizeof(mods));
		for (unsigned i = 0; i < c->n_initrd; i++) {
			const struct boot_file *f = &c->initrd[i];
			size_t name_len = strlen(f->name) + 1;
			if (strings + name_len > BOOT_INFO_END)
				return boot_fail(c, E2BIG, "multiboot module names too long");
			if ((r = boot_write(c, strings, f->name, name_len, "multiboot strings")) < 0)
				return r;
			if (at > 0xFFFFFFFFULL || f->len > 0xFFFFFFFFULL - at ||
			    !gpa_to_hva(c->ram, at, f->len) || at + f->len > c->ram->low_size)
				return boot_fail(c, ENOSPC, "initrd %s (%zu bytes) does not fit in RAM above the kernel (0x%llx)",
						 f->path, f->len, (unsigned long long)at);
			if ((r = boot_write(c, at, f->data, f->len, "multiboot module")) < 0)
				return r;
			wr32(mods + 16 * i, (uint32_t)at);
			wr32(mods + 16 * i + 4, (uint32_t)(at + f->len));
			wr32(mods + 16 * i + 8, (uint32_t)strings);
			strings += name_len;
			at = (at + f->len + 0xFFF) & ~0xFFFULL;
		}
		if ((r = boot_write(c, MB_MODS_ADDR, mods, 16 * c->n_initrd, "multiboot modules")) < 0)
			return r;
		wr32(mbi + 20, c->n_initrd);
		wr32(mbi + 24, (uint32_t)MB_MODS_ADDR);
	}

	/* Memory map: entries of {size = 20, base, length, type}. */
	uint8_t mmap[E820_MAX * 24];
	for (unsigned i = 0; i < c->e820.n; i++) {
		uint8_t *e = mmap + 24 * i;
		wr32(e, 20);
		wr64(e + 4, c->e820.entry[i].addr);
		wr64(e + 12, c->e820.entry[i].size);
		wr32(e + 20, c->e820.entry[i].type);
	}
	if ((r = boot_write(c, MB_MMAP_ADDR, mmap, 24 * c->e820.n, "multiboot memory map")) < 0)
		return r;
	wr32(mbi + 44, 24 * c->e820.n);
	wr32(mbi + 48, (uint32_t)MB_MMAP_ADDR);
	wr32(mbi + 0, info_flags);
	if ((r = boot_write(c, BOOT_PARAMS_ADDR, mbi, sizeof(mbi), "multiboot info")) < 0)
		return r;

	if ((r = boot_enter_protected_mode(c, entry)) < 0)
		return r;
	c->entry->gpr[R_RAX] = MB_BOOTLOADER_MAGIC;
	c->entry->gpr[R_RBX] = BOOT_PARAMS_ADDR;
	return 0;
}
