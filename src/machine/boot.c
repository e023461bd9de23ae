/* boot_load(): reads the kernel and initrds, writes the firmware tables,
 * picks the loader by content; plus the helpers every loader shares
 * (entry states, page tables, initrd placement, command line). */
#include "machine/boot_priv.h"
#include "hw/virtio/devices.h"
#include "lib/log.h"
#include "lib/util.h"
#include "machine/acpi.h"
#include "machine/machine.h"
#include "machine/mptable.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Larger kernels or initrds than this are surely a mistake (and must fit
 * in host memory twice while loading). */
#define BOOT_FILE_MAX (1ULL << 31)

int boot_fail(struct boot_ctx *c, int err_no, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, c->errlen, fmt, ap);
	va_end(ap);
	return -err_no;
}

int boot_check_range(struct boot_ctx *c, uint64_t gpa, uint64_t len, const char *what)
{
	if (gpa < BOOT_KERNEL_MIN)
		return boot_fail(c, EINVAL, "%s at 0x%llx overlaps the loader's area below 1 MiB",
				 what, (unsigned long long)gpa);
	if (len && !gpa_to_hva(c->ram, gpa, len))
		return boot_fail(c, EINVAL, "%s [0x%llx, +0x%llx) is not inside guest RAM", what,
				 (unsigned long long)gpa, (unsigned long long)len);
	return 0;
}

int boot_write(struct boot_ctx *c, uint64_t gpa, const void *buf, uint64_t len, const char *what)
{
	if (guest_write(c->ram, gpa, buf, len) < 0)
		return boot_fail(c, EINVAL, "%s [0x%llx, +0x%llx) is not inside guest RAM", what,
				 (unsigned long long)gpa, (unsigned long long)len);
	return 0;
}

/* GDT: null, null, code (0x10), data (0x18), 32-bit TSS (0x20). The TSS
 * descriptor only exists so TR holds something valid for engines that
 * check it; nothing ever uses the TSS. */
static int write_gdt(struct boot_ctx *c, bool long_mode)
{
	uint64_t gdt[5] = {
		0,
		0,
		long_mode ? 0x00AF9B000000FFFFULL : 0x00CF9B000000FFFFULL,
		0x00CF93000000FFFFULL,
		0x00008B0000000067ULL,
	};
	uint8_t raw[sizeof(gdt)];
	for (unsigned i = 0; i < 5; i++)
		wr64(raw + 8 * i, gdt[i]);
	int r = boot_write(c, BOOT_GDT_ADDR, raw, sizeof(raw), "boot GDT");
	if (r < 0)
		return r;
	/* An empty IDT: an exception before the kernel sets up its own is
	 * a triple fault (reset), as on hardware. */
	uint8_t zero[8] = { 0 };
	return boot_write(c, BOOT_IDT_ADDR, zero, sizeof(zero), "boot IDT");
}

static void set_segments(struct boot_ctx *c, bool long_mode)
{
	struct x86_cpu_state *s = c->entry;
	x86_flat_segment(&s->seg[SEG_CS], BOOT_CS, true, long_mode);
	for (int i = 0; i < SEG_COUNT; i++) {
		if (i == SEG_CS || i == SEG_LDT || i == SEG_TR)
			continue;
		x86_flat_segment(&s->seg[i], BOOT_DS, false, long_mode);
	}
	struct x86_segment *tr = &s->seg[SEG_TR];
	memset(tr, 0, sizeof(*tr));
	tr->selector = BOOT_TSS_SEL;
	tr->limit = 0x67;
	tr->type = 0xB; /* busy 32-bit TSS */
	tr->present = 1;
	struct x86_segment *ldt = &s->seg[SEG_LDT];
	memset(ldt, 0, sizeof(*ldt));
	ldt->type = 2;
	ldt->unusable = 1;
	s->gdt.base = BOOT_GDT_ADDR;
	s->gdt.limit = 5 * 8 - 1;
	s->idt.base = BOOT_IDT_ADDR;
	s->idt.limit = 0;
	s->rflags = 0x2; /* interrupts off */
}

/* Identity map with 2 MiB pages: the first 4 GiB always (the 32-bit hole
 * too: kernels touch the LAPIC and IOAPIC before building their own
 * tables), then RAM above 4 GiB as far as the page-directory area
 * reaches. Kernels build their own tables early; this only has to cover
 * what they touch before that. */
static int write_page_tables(struct boot_ctx *c)
{
	uint64_t top = HIGH_RAM_START + c->ram->high_size;
	uint64_t max_pds = (BOOT_PD_END - BOOT_PD_ADDR) / 0x1000;
	uint64_t n_pds = (top + (1ULL << 30) - 1) >> 30;
	if (n_pds < 4)
		n_pds = 4;
	if (n_pds > max_pds)
		n_pds = max_pds;
	uint8_t *pml4 = gpa_to_hva(c->ram, BOOT_PML4_ADDR, 0x1000);
	uint8_t *pdpt = gpa_to_hva(c->ram, BOOT_PDPT_ADDR, 0x1000);
	uint8_t *pd = gpa_to_hva(c->ram, BOOT_PD_ADDR, n_pds * 0x1000);
	if (!pml4 || !pdpt || !pd)
		return boot_fail(c, EINVAL, "guest RAM too small for the boot page tables");
	memset(pml4, 0, 0x1000);
	memset(pdpt, 0, 0x1000);
	wr64(pml4, BOOT_PDPT_ADDR | 0x3); /* present, writable */
	for (uint64_t i = 0; i < n_pds; i++) {
		wr64(pdpt + 8 * i, (BOOT_PD_ADDR + 0x1000 * i) | 0x3);
		for (uint64_t j = 0; j < 512; j++) {
			uint64_t addr = (i << 30) | (j << 21);
			wr64(pd + 0x1000 * i + 8 * j, addr | 0x83); /* present, writable, 2 MiB */
		}
	}
	guest_ram_mark_written(c->ram, BOOT_PML4_ADDR, 0x2000 + n_pds * 0x1000);
	return 0;
}

int boot_enter_long_mode(struct boot_ctx *c, uint64_t rip)
{
	int r = write_gdt(c, true);
	if (r < 0 || (r = write_page_tables(c)) < 0)
		return r;
	struct x86_cpu_state *s = c->entry;
	set_segments(c, true);
	s->cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_PG;
	s->cr3 = BOOT_PML4_ADDR;
	s->cr4 = X86_CR4_PAE;
	s->efer = X86_EFER_LME | X86_EFER_LMA;
	s->rip = rip;
	return 0;
}

int boot_enter_protected_mode(struct boot_ctx *c, uint64_t eip)
{
	int r = write_gdt(c, false);
	if (r < 0)
		return r;
	struct x86_cpu_state *s = c->entry;
	set_segments(c, false);
	s->cr0 = X86_CR0_PE | X86_CR0_ET;
	s->cr3 = 0;
	s->cr4 = 0;
	s->efer = 0;
	s->rip = eip;
	return 0;
}

static size_t initrds_total(const struct boot_ctx *c)
{
	size_t total = 0;
	for (unsigned i = 0; i < c->n_initrd; i++)
		total = ((total + 3) & ~(size_t)3) + c->initrd[i].len;
	return total;
}

/* Replaces each compressed cpio initrd by its content, decompressed on
 * the host, when that still fits in [kernel_end, limit) next to the
 * others: Linux then unpacks the archive without running its own
 * decompressor. Anything else (another format, not cpio inside, corrupt,
 * too large) stays as it is and the kernel deals with it. */
static void decompress_initrds(struct boot_ctx *c, uint64_t limit)
{
	const char *off = getenv("XVM_BOOT_NO_HOST_DECOMPRESS");
	if (off && strcmp(off, "0") != 0)
		return;
	uint64_t low = (c->kernel_end + 0xFFF) & ~0xFFFULL;
	if (limit <= low)
		return;
	uint64_t room = limit - low;
	for (unsigned i = 0; i < c->n_initrd; i++) {
		struct boot_file *f = &c->initrd[i];
		/* The room left with this one taken out; +3 for its padding. */
		size_t others = initrds_total(c) - f->len + 3;
		if (others >= room)
			return;
		uint64_t max = MIN(room - others, (uint64_t)BOOT_FILE_MAX);
		uint8_t *out;
		size_t out_len;
		const char *why;
		const char *fmt = initrd_decompress(f->data, f->len, (size_t)max, &out, &out_len, &why);
		if (!fmt)
			continue;
		if (!out) {
			log_debug("boot: initrd %s (%s): loaded as it is (%s)", f->path, fmt, why);
			continue;
		}
		log_debug("boot: initrd %s: %s cpio decompressed on the host (%zu -> %zu bytes)",
			  f->path, fmt, f->len, out_len);
		free(f->data);
		f->data = out;
		f->len = out_len;
	}
	c->initrd_total = initrds_total(c);
}

int boot_place_initrd(struct boot_ctx *c, uint64_t limit, uint64_t *addr)
{
	*addr = 0;
	if (c->n_initrd == 0)
		return 0;
	if (limit > c->ram->low_size)
		limit = c->ram->low_size;
	decompress_initrds(c, limit);
	uint64_t size = c->initrd_total;
	if (size > limit || ((limit - size) & ~0xFFFULL) < c->kernel_end)
		return boot_fail(c, ENOSPC,
				 "initrd (%zu bytes) does not fit below 0x%llx above the kernel (ends at 0x%llx)",
				 c->initrd_total, (unsigned long long)limit,
				 (unsigned long long)c->kernel_end);
	uint64_t at = (limit - size) & ~0xFFFULL;
	uint64_t off = 0;
	for (unsigned i = 0; i < c->n_initrd; i++) {
		static const uint8_t zero[4];
		uint64_t pad = (4 - (off & 3)) & 3;
		int r = boot_write(c, at + off, zero, pad, "initrd");
		off += pad;
		if (r == 0)
			r = boot_write(c, at + off, c->initrd[i].data, c->initrd[i].len, "initrd");
		if (r < 0)
			return r;
		off += c->initrd[i].len;
	}
	*addr = at;
	return 0;
}

int boot_write_cmdline(struct boot_ctx *c, uint64_t max, uint64_t *addr)
{
	size_t len = strlen(c->cmdline);
	if (max > BOOT_CMDLINE_MAX)
		max = BOOT_CMDLINE_MAX;
	if (len + 1 > max)
		return boot_fail(c, E2BIG, "command line is %zu bytes; this kernel takes at most %llu",
				 len, (unsigned long long)(max - 1));
	*addr = BOOT_CMDLINE_ADDR;
	return boot_write(c, BOOT_CMDLINE_ADDR, c->cmdline, len + 1, "command line");
}

/* ---- detection and dispatch ---- */

enum boot_format boot_detect(const uint8_t *img, size_t len)
{
	if (len >= 0x206 && rd16(img + 0x1FE) == 0xAA55 && memcmp(img + 0x202, "HdrS", 4) == 0)
		return BOOT_FORMAT_BZIMAGE;
	struct elf_info info;
	const char *why;
	if (len >= 4 && memcmp(img, "\177ELF", 4) == 0 && elf_parse(img, len, &info, &why) == 0) {
		if (info.is64 && info.is_linux) {
			const char *pvh = getenv("XVM_BOOT_PVH");
			if (info.has_pvh && pvh && strcmp(pvh, "1") == 0)
				return BOOT_FORMAT_PVH;
			return BOOT_FORMAT_VMLINUX;
		}
		if (info.has_pvh)
			return BOOT_FORMAT_PVH;
		if (multiboot_find_header(img, len) >= 0)
			return BOOT_FORMAT_MULTIBOOT;
		if (info.is64)
			return BOOT_FORMAT_VMLINUX;
		return BOOT_FORMAT_UNKNOWN;
	}
	if (multiboot_find_header(img, len) >= 0)
		return BOOT_FORMAT_MULTIBOOT;
	return BOOT_FORMAT_UNKNOWN;
}

const char *boot_format_name(enum boot_format f)
{
	switch (f) {
	case BOOT_FORMAT_BZIMAGE: return "Linux bzImage";
	case BOOT_FORMAT_VMLINUX: return "ELF vmlinux (64-bit entry)";
	case BOOT_FORMAT_PVH: return "PVH ELF";
	case BOOT_FORMAT_MULTIBOOT: return "multiboot";
	default: return "unknown";
	}
}

static int read_input(struct boot_ctx *c, struct boot_file *f, const char *path, const char *what)
{
	f->path = path;
	const char *slash = strrchr(path, '/');
	f->name = slash ? slash + 1 : path;
	int r = read_file(path, &f->data, &f->len, BOOT_FILE_MAX);
	if (r == -EFBIG)
		return boot_fail(c, EFBIG, "%s %s: larger than %llu bytes", what, path, BOOT_FILE_MAX);
	if (r == -EINVAL)
		return boot_fail(c, EINVAL, "%s %s: not a regular file", what, path);
	if (r < 0)
		return boot_fail(c, -r, "%s %s: %s", what, path, strerror(-r));
	return 0;
}

static void free_inputs(struct boot_ctx *c)
{
	free(c->kernel.data);
	for (unsigned i = 0; i < c->n_initrd; i++)
		free(c->initrd[i].data);
}

static int load_inputs(struct boot_ctx *c, const struct vm_config *cfg)
{
	if (!cfg->kernel || !*cfg->kernel)
		return boot_fail(c, EINVAL, "no kernel given (--kernel FILE)");
	int r = read_input(c, &c->kernel, cfg->kernel, "kernel");
	if (r < 0)
		return r;
	if (cfg->n_initrd > sizeof(c->initrd) / sizeof(c->initrd[0]))
		return boot_fail(c, EINVAL, "too many initrds (%u)", cfg->n_initrd);
	for (unsigned i = 0; i < cfg->n_initrd; i++) {
		r = read_input(c, &c->initrd[i], cfg->initrd[i], "initrd");
		if (r < 0)
			return r;
		c->n_initrd = i + 1;
		/* Each archive starts 4-byte aligned: Linux looks for the next
		 * cpio header only there (and skips the zero padding). */
		c->initrd_total = ((c->initrd_total + 3) & ~(size_t)3) + c->initrd[i].len;
		if (c->initrd_total > c->ram->size)
			return boot_fail(c, ENOSPC, "initrds (%zu bytes) are larger than guest RAM",
					 c->initrd_total);
	}
	return 0;
}

int boot_load(struct machine *m, char *err, size_t errlen)
{
	struct boot_ctx c = {
		.m = m,
		.ram = &m->ram,
		.ncpus = m->ncpus,
		.cmdline = m->cfg->append ? m->cfg->append : "",
		.entry = &m->boot_state,
		.err = err,
		.errlen = errlen,
	};
	char *cmdline = NULL;
	if (errlen)
		err[0] = 0;
	/* The loaders' fixed areas and a kernel above 1 MiB need at least this. */
	if (m->ram.low_size < 2 * BOOT_KERNEL_MIN)
		return boot_fail(&c, EINVAL, "guest memory too small to boot (at least 2 MiB)");
	int r = load_inputs(&c, m->cfg);
	if (r < 0)
		goto out;

	/* A reset starts from clean low memory: nothing of the previous
	 * boot's tables may survive. */
	uint8_t *low = gpa_to_hva(c.ram, 0, BOOT_KERNEL_MIN);
	memset(low, 0, BOOT_KERNEL_MIN);
	guest_ram_mark_written(c.ram, 0, BOOT_KERNEL_MIN);

	x86_reset_state(c.entry, true);
	e820_build(&c.e820, c.ram);
	r = acpi_build(m, &c.rsdp_addr, err, errlen);
	if (r < 0)
		goto out;
	r = mptable_build(m, err, errlen);
	if (r < 0)
		goto out;

	enum boot_format f = boot_detect(c.kernel.data, c.kernel.len);
	/* Linux kernels built with CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES find
	 * virtio-mmio devices on the command line (others through the DSDT;
	 * a kernel with both reports the second registration and goes on). */
	if (f != BOOT_FORMAT_MULTIBOOT && m->virtio && !strstr(c.cmdline, "virtio_mmio.device=")) {
		cmdline = xmalloc(BOOT_CMDLINE_MAX);
		snprintf(cmdline, BOOT_CMDLINE_MAX, "%s", c.cmdline);
		if (virtio_mmio_cmdline(m, cmdline, BOOT_CMDLINE_MAX) == 0)
			c.cmdline = cmdline;
	}
	switch (f) {
	case BOOT_FORMAT_BZIMAGE:
		r = boot_linux_bzimage(&c);
		break;
	case BOOT_FORMAT_VMLINUX:
		r = boot_linux_vmlinux(&c, c.kernel.data, c.kernel.len);
		break;
	case BOOT_FORMAT_PVH:
		r = boot_pvh(&c);
		break;
	case BOOT_FORMAT_MULTIBOOT:
		r = boot_multiboot(&c);
		break;
	default: {
		const char *why = NULL;
		struct elf_info info;
		if (c.kernel.len >= 4 && memcmp(c.kernel.data, "\177ELF", 4) == 0 &&
		    elf_parse(c.kernel.data, c.kernel.len, &info, &why) < 0)
			r = boot_fail(&c, EINVAL, "kernel %s: bad ELF image: %s", c.kernel.path, why);
		else
			r = boot_fail(&c, EINVAL,
				      "kernel %s: unrecognised format (not a bzImage, ELF vmlinux, PVH or multiboot kernel)",
				      c.kernel.path);
		break;
	}
	}
	if (r < 0 && err[0] && strncmp(err, "kernel", 6) != 0 && strncmp(err, "initrd", 6) != 0) {
		/* Say which file the loader was reading. */
		char tmp[512];
		snprintf(tmp, sizeof(tmp), "kernel %s (%s): %s", c.kernel.path, boot_format_name(f), err);
		snprintf(err, errlen, "%s", tmp);
	}
	if (r == 0)
		log_debug("boot: %s %s loaded, entry 0x%llx", boot_format_name(f), c.kernel.path,
			  (unsigned long long)c.entry->rip);
out:
	free_inputs(&c);
	free(cmdline);
	return r;
}
