/* Boot loaders: put a kernel, its initrds and command line, and the
 * firmware tables (e820, ACPI, MP) into guest RAM and say where the boot
 * CPU starts. The kernel format is detected by content, never by name:
 *
 *   Linux bzImage      64-bit boot protocol; a payload compressed with
 *                      gzip/xz/zstd/lz4 is decompressed on the host and the
 *                      vmlinux inside entered directly (unless the
 *                      environment sets XVM_BOOT_NO_HOST_DECOMPRESS=1, or
 *                      the format is one we cannot decompress: then the
 *                      kernel's own decompressor runs)
 *   Linux ELF vmlinux  64-bit entry with a zero page
 *   PVH ELF            XEN_ELFNOTE_PHYS32_ENTRY: 32-bit entry, hvm_start_info
 *                      (XVM_BOOT_PVH=1 prefers it for a Linux vmlinux too)
 *   Multiboot v1       ELF or a.out kludge: 32-bit entry, multiboot info
 *
 * See docs/boot.md for the guest physical layout the loaders use. */
#ifndef XVM_MACHINE_BOOT_H
#define XVM_MACHINE_BOOT_H

#include <stddef.h>
#include <stdint.h>

struct machine;

/* Reads m->cfg (kernel, initrd[], n_initrd, append) and writes everything
 * into m->ram: kernel, initrds, command line, boot information for the
 * kernel's protocol, e820, ACPI and MP tables for m->ncpus vCPUs. Fills
 * m->boot_state with the boot CPU's entry state (secondary vCPUs are left
 * alone: they wait for INIT/SIPI). Called again on every VM reset.
 * Returns 0, or -errno with a one-line reason in err. */
int boot_load(struct machine *m, char *err, size_t errlen);

enum boot_format {
	BOOT_FORMAT_UNKNOWN = 0,
	BOOT_FORMAT_BZIMAGE,
	BOOT_FORMAT_VMLINUX,     /* ELF64 with a 64-bit entry and a zero page */
	BOOT_FORMAT_PVH,
	BOOT_FORMAT_MULTIBOOT,
};

/* Which loader an image is for (by content). */
enum boot_format boot_detect(const uint8_t *image, size_t len);
const char *boot_format_name(enum boot_format f);

#endif
