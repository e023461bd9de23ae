/* Shared by the boot loaders (boot*.c, decompress.c): the load context,
 * the low-memory layout the loaders own, and the helpers every protocol
 * uses (entry states, page tables, initrd placement, ELF loading). */
#ifndef XVM_MACHINE_BOOT_PRIV_H
#define XVM_MACHINE_BOOT_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/boot.h"
#include "machine/e820.h"
#include "machine/layout.h"
#include "machine/memory.h"
#include "machine/x86.h"

/* Low memory used by the loaders, besides layout.h's fixed places
 * (GDT 0x500, zero page 0x7000, PML4 0x9000, command line 0x20000):
 * the page directory pointer table and page directories follow the PML4,
 * boot information that does not fit a page goes to BOOT_INFO_ADDR. */
#define BOOT_PDPT_ADDR      (BOOT_PML4_ADDR + 0x1000)
#define BOOT_PD_ADDR        (BOOT_PML4_ADDR + 0x2000)
#define BOOT_PD_END         0x00020000ULL /* PDs up to here: 21 GiB mapped */
#define BOOT_INFO_ADDR      0x00030000ULL /* multiboot/PVH: mmap, modules, strings */
#define BOOT_INFO_END       0x00080000ULL
/* Kernels must load above everything the loader puts below 1 MiB. */
#define BOOT_KERNEL_MIN     0x00100000ULL

/* Selectors of the boot GDT (the Linux boot protocol's __BOOT_CS/__BOOT_DS). */
#define BOOT_CS             0x10
#define BOOT_DS             0x18
#define BOOT_TSS_SEL        0x20

struct boot_file {
	const char *path;
	const char *name;   /* file name for multiboot module strings */
	uint8_t *data;
	size_t len;
};

struct boot_ctx {
	struct machine *m;
	struct guest_ram *ram;
	unsigned ncpus;
	struct boot_file kernel;
	struct boot_file initrd[16];
	unsigned n_initrd;
	size_t initrd_total;
	const char *cmdline;          /* --append, "" if none */
	struct e820_table e820;
	uint64_t rsdp_addr;
	uint64_t kernel_end;          /* first byte above the loaded kernel */
	struct x86_cpu_state *entry;  /* m->boot_state */
	char *err;
	size_t errlen;
};

/* Formats a one-line reason into c->err and returns -err_no. */
int boot_fail(struct boot_ctx *c, int err_no, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Loaders: each writes the kernel and its boot information and fills
 * c->entry. The firmware tables are already in RAM (c->rsdp_addr). */
int boot_linux_bzimage(struct boot_ctx *c);
int boot_linux_vmlinux(struct boot_ctx *c, const uint8_t *elf, size_t len);
int boot_pvh(struct boot_ctx *c);
int boot_multiboot(struct boot_ctx *c);

/* Writes len bytes at gpa, failing with a message naming what. */
int boot_write(struct boot_ctx *c, uint64_t gpa, const void *buf, uint64_t len, const char *what);
/* Checks that [gpa, gpa+len) is low or high RAM at or above 1 MiB. */
int boot_check_range(struct boot_ctx *c, uint64_t gpa, uint64_t len, const char *what);

/* Entry states. Both write the boot GDT (and page tables for long mode). */
int boot_enter_long_mode(struct boot_ctx *c, uint64_t rip);
int boot_enter_protected_mode(struct boot_ctx *c, uint64_t eip);

/* Places the concatenated initrds as high as possible, page aligned,
 * ending at or below limit (exclusive) and starting at or above
 * c->kernel_end. *addr = 0 when there is no initrd. */
int boot_place_initrd(struct boot_ctx *c, uint64_t limit, uint64_t *addr);
/* Copies the command line to BOOT_CMDLINE_ADDR; max includes the NUL. */
int boot_write_cmdline(struct boot_ctx *c, uint64_t max, uint64_t *addr);

/* ELF images (32- or 64-bit, little endian, x86). */
struct elf_info {
	bool is64;
	uint64_t entry;          /* e_entry as linked */
	uint64_t phys_entry;     /* e_entry translated to a physical address */
	uint64_t lowest, highest;/* physical extent of the PT_LOAD segments */
	bool has_pvh;            /* XEN_ELFNOTE_PHYS32_ENTRY */
	uint64_t pvh_entry;
	bool is_linux;           /* carries "Linux" ELF notes */
};
/* Parses and validates headers; 0 or -EINVAL with *why set. */
int elf_parse(const uint8_t *img, size_t len, struct elf_info *info, const char **why);
/* Loads PT_LOAD segments at their physical addresses (checked against
 * RAM and the loader's areas); sets c->kernel_end. */
int elf_load(struct boot_ctx *c, const uint8_t *img, size_t len, const struct elf_info *info);

/* Scans the first 8 KiB for a valid multiboot v1 header; returns its
 * offset or -1. */
long multiboot_find_header(const uint8_t *img, size_t len);

/* Host decompression of a kernel payload (decompress.c). */
enum payload_format {
	PAYLOAD_UNKNOWN, PAYLOAD_GZIP, PAYLOAD_XZ, PAYLOAD_ZSTD, PAYLOAD_LZ4,
	PAYLOAD_BZIP2, PAYLOAD_LZMA, PAYLOAD_LZO, PAYLOAD_NONE,
};
enum payload_format payload_detect(const uint8_t *p, size_t len);
const char *payload_format_name(enum payload_format f);
bool payload_can_decompress(enum payload_format f);
/* Decompresses into a new buffer of at most max_out bytes. Returns 0 or
 * -errno with a reason in why (static string). */
int payload_decompress(enum payload_format f, const uint8_t *in, size_t len, size_t max_out,
		       uint8_t **out, size_t *out_len, const char **why);

/* Initrds: a gzip (several members too), xz, zstd or lz4-frame file
 * whose content is a cpio newc archive is decompressed into a new buffer
 * of at most max_out bytes (*out, *out_len). Returns the format's name,
 * or NULL for a file in none of these formats; *out stays NULL with a
 * reason in why (static string) when it was not decompressed. */
const char *initrd_decompress(const uint8_t *in, size_t len, size_t max_out, uint8_t **out,
			      size_t *out_len, const char **why);

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static inline uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static inline void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void wr32(uint8_t *p, uint32_t v) { wr16(p, (uint16_t)v); wr16(p + 2, (uint16_t)(v >> 16)); }
static inline void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }

#endif
