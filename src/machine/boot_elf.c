/* ELF images: header and note parsing, PT_LOAD loading at physical
 * addresses, and the PVH entry (Xen's x86/HVM direct boot ABI:
 * XEN_ELFNOTE_PHYS32_ENTRY, 32-bit protected mode, EBX = hvm_start_info). */
#include "machine/boot_priv.h"
#include "lib/log.h"

#include <errno.h>
#include <string.h>

#define EM_386           3
#define EM_X86_64        62
#define ET_EXEC          2
#define PT_LOAD          1
#define PT_NOTE          4
#define ELF_PHNUM_MAX    256

#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h layout). */
#define HVM_START_MAGIC      0x336ec578
#define HVM_START_SIZE       56
#define HVM_MODLIST_SIZE     32
#define HVM_MEMMAP_SIZE      24
#define PVH_MODLIST_OFF      0x40
#define PVH_MEMMAP_OFF       0x100

struct phdr {
	uint32_t type;
	uint64_t offset, vaddr, paddr, filesz, memsz;
};

static void read_phdr(const uint8_t *img, bool is64, uint64_t at, struct phdr *p)
{
	const uint8_t *h = img + at;
	p->type = rd32(h);
	if (is64) {
		p->offset = rd64(h + 8);
		p->vaddr = rd64(h + 16);
		p->paddr = rd64(h + 24);
		p->filesz = rd64(h + 32);
		p->memsz = rd64(h + 40);
	} else {
		p->offset = rd32(h + 4);
		p->vaddr = rd32(h + 8);
		p->paddr = rd32(h + 12);
		p->filesz = rd32(h + 16);
		p->memsz = rd32(h + 20);
	}
}

/* Walks the notes of one PT_NOTE segment (all inside the image). */
static void scan_notes(const uint8_t *p, uint64_t len, struct elf_info *info)
{
	uint64_t at = 0;
	while (len - at >= 12) {
		uint32_t namesz = rd32(p + at), descsz = rd32(p + at + 4), type = rd32(p + at + 8);
		uint64_t name_at = at + 12;
		uint64_t desc_at = name_at + (((uint64_t)namesz + 3) & ~3ULL);
		uint64_t next = desc_at + (((uint64_t)descsz + 3) & ~3ULL);
		if (desc_at > len || next > len)
			return;
		const char *name = (const char *)p + name_at;
		if (namesz == 4 && memcmp(name, "Xen", 4) == 0 && type == XEN_ELFNOTE_PHYS32_ENTRY) {
			if (descsz == 4) {
				info->has_pvh = true;
				info->pvh_entry = rd32(p + desc_at);
			} else if (descsz == 8) {
				info->has_pvh = true;
				info->pvh_entry = rd64(p + desc_at);
			}
		}
		if (namesz == 6 && memcmp(name, "Linux", 6) == 0)
			info->is_linux = true;
		at = next;
	}
}

int elf_parse(const uint8_t *img, size_t len, struct elf_info *info, const char **why)
{
	memset(info, 0, sizeof(*info));
	if (len < 52 || memcmp(img, "\177ELF", 4) != 0) {
		*why = "not an ELF image";
		return -EINVAL;
	}
	if (img[4] != 1 && img[4] != 2) {
		*why = "unknown ELF class";
		return -EINVAL;
	}
	info->is64 = img[4] == 2;
	if (img[5] != 1) {
		*why = "not little-endian";
		return -EINVAL;
	}
	if (info->is64 && len < 64) {
		*why = "truncated ELF header";
		return -EINVAL;
	}
	uint16_t machine = rd16(img + 18);
	if (machine != (info->is64 ? EM_X86_64 : EM_386)) {
		*why = "not an x86 ELF image";
		return -EINVAL;
	}
	if (rd16(img + 16) != ET_EXEC) {
		*why = "not an executable ELF image";
		return -EINVAL;
	}
	uint64_t phoff = info->is64 ? rd64(img + 32) : rd32(img + 28);
	unsigned phentsize = rd16(img + (info->is64 ? 54 : 42));
	unsigned phnum = rd16(img + (info->is64 ? 56 : 44));
	info->entry = info->is64 ? rd64(img + 24) : rd32(img + 24);
	if (phentsize != (info->is64 ? 56u : 32u) || phnum == 0 || phnum > ELF_PHNUM_MAX) {
		*why = "bad program header table";
		return -EINVAL;
	}
	if (phoff > len || (uint64_t)phnum * phentsize > len - phoff) {
		*why = "program header table outside the file";
		return -EINVAL;
	}
	bool any = false, entry_found = false;
	info->lowest = UINT64_MAX;
	for (unsigned i = 0; i < phnum; i++) {
		struct phdr p;
		read_phdr(img, info->is64, phoff + (uint64_t)i * phentsize, &p);
		if (p.type == PT_NOTE) {
			if (p.offset <= len && p.filesz <= len - p.offset)
				scan_notes(img + p.offset, p.filesz, info);
			continue;
		}
		if (p.type != PT_LOAD || p.memsz == 0)
			continue;
		if (p.filesz > p.memsz || p.offset > len || p.filesz > len - p.offset) {
			*why = "a PT_LOAD segment lies outside the file";
			return -EINVAL;
		}
		if (p.paddr > UINT64_MAX - p.memsz || p.vaddr > UINT64_MAX - p.memsz) {
			*why = "a PT_LOAD segment wraps around the address space";
			return -EINVAL;
		}
		any = true;
		if (p.paddr < info->lowest)
			info->lowest = p.paddr;
		if (p.paddr + p.memsz > info->highest)
			info->highest = p.paddr + p.memsz;
		if (!entry_found && info->entry >= p.vaddr && info->entry - p.vaddr < p.memsz) {
			info->phys_entry = info->entry - p.vaddr + p.paddr;
			entry_found = true;
		}
	}
	if (!any) {
		*why = "no loadable segments";
		return -EINVAL;
	}
	if (!entry_found) {
		/* Linux's vmlinux says its physical entry (phys_startup_64). */
		if (info->entry >= info->lowest && info->entry < info->highest)
			info->phys_entry = info->entry;
		else if (!info->has_pvh) {
			*why = "entry point outside the loadable segments";
			return -EINVAL;
		}
	}
	return 0;
}

int elf_load(struct boot_ctx *c, const uint8_t *img, size_t len, const struct elf_info *info)
{
	uint64_t phoff = info->is64 ? rd64(img + 32) : rd32(img + 28);
	unsigned phentsize = rd16(img + (info->is64 ? 54 : 42));
	unsigned phnum = rd16(img + (info->is64 ? 56 : 44));
	uint64_t end = 0;
	for (unsigned i = 0; i < phnum; i++) {
		struct phdr p;
		read_phdr(img, info->is64, phoff + (uint64_t)i * phentsize, &p);
		if (p.type != PT_LOAD || p.memsz == 0)
			continue;
		int r = boot_check_range(c, p.paddr, p.memsz, "ELF segment");
		if (r < 0)
			return r;
		uint8_t *dst = gpa_to_hva(c->ram, p.paddr, p.memsz);
		memcpy(dst, img + p.offset, p.filesz);
		memset(dst + p.filesz, 0, p.memsz - p.filesz);
		guest_ram_mark_written(c->ram, p.paddr, p.memsz);
		if (p.paddr + p.memsz > end)
			end = p.paddr + p.memsz;
	}
	c->kernel_end = (end + 0xFFF) & ~0xFFFULL;
	return 0;
}

int boot_pvh(struct boot_ctx *c)
{
	struct elf_info info;
	const char *why;
	if (elf_parse(c->kernel.data, c->kernel.len, &info, &why) < 0)
		return boot_fail(c, EINVAL, "bad ELF image: %s", why);
	if (!info.has_pvh)
		return boot_fail(c, EINVAL, "no PVH entry note");
	if (info.pvh_entry > 0xFFFFFFFFULL || !gpa_to_hva(c->ram, info.pvh_entry, 1))
		return boot_fail(c, EINVAL, "PVH entry 0x%llx is not in 32-bit guest RAM",
				 (unsigned long long)info.pvh_entry);
	int r = elf_load(c, c->kernel.data, c->kernel.len, &info);
	if (r < 0)
		return r;

	uint64_t cmdline = 0, initrd = 0;
	if ((r = boot_write_cmdline(c, BOOT_CMDLINE_MAX, &cmdline)) < 0)
		return r;
	/* Linux takes its initrd from the first module: all initrds go in
	 * that one module, concatenated (cpio archives concatenate). */
	if ((r = boot_place_initrd(c, 0x100000000ULL, &initrd)) < 0)
		return r;

	uint8_t info_page[0x1000];
	memset(info_page, 0, sizeof(info_page));
	uint8_t *si = info_page;
	wr32(si + 0, HVM_START_MAGIC);
	wr32(si + 4, 1); /* version 1: has the memory map */
	wr32(si + 8, 0);
	if (initrd) {
		wr32(si + 12, 1);
		wr64(si + 16, BOOT_PARAMS_ADDR + PVH_MODLIST_OFF);
		uint8_t *mod = info_page + PVH_MODLIST_OFF;
		wr64(mod + 0, initrd);
		wr64(mod + 8, c->initrd_total);
	}
	wr64(si + 24, cmdline);
	wr64(si + 32, c->rsdp_addr);
	wr64(si + 40, BOOT_PARAMS_ADDR + PVH_MEMMAP_OFF);
	wr32(si + 48, c->e820.n);
	for (unsigned i = 0; i < c->e820.n; i++) {
		uint8_t *e = info_page + PVH_MEMMAP_OFF + HVM_MEMMAP_SIZE * i;
		wr64(e + 0, c->e820.entry[i].addr);
		wr64(e + 8, c->e820.entry[i].size);
		wr32(e + 16, c->e820.entry[i].type);
	}
	if ((r = boot_write(c, BOOT_PARAMS_ADDR, info_page, sizeof(info_page), "PVH start info")) < 0)
		return r;
	if ((r = boot_enter_protected_mode(c, info.pvh_entry)) < 0)
		return r;
	c->entry->gpr[R_RBX] = BOOT_PARAMS_ADDR;
	return 0;
}
