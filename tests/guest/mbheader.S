/* Multiboot v1 header. With AOUT_KLUDGE (flag bit 16) the loader takes
 * the load addresses from here instead of the ELF headers, which is how
 * flat binaries boot; without it the loader must parse the ELF file. */
#define MB_MAGIC        0x1BADB002
#define MB_PAGE_ALIGN   (1 << 0)
#define MB_MEMORY_INFO  (1 << 1)
#define MB_AOUT         (1 << 16)

#ifdef AOUT_KLUDGE
#define MB_FLAGS (MB_PAGE_ALIGN | MB_MEMORY_INFO | MB_AOUT)
#else
#define MB_FLAGS (MB_PAGE_ALIGN | MB_MEMORY_INFO)
#endif

	.section .multiboot, "a"
	.balign 4
multiboot_header:
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)
#ifdef AOUT_KLUDGE
	.long multiboot_header  /* header_addr */
	.long _load_start       /* load_addr */
	.long _load_end         /* load_end_addr */
	.long __bss_end         /* bss_end_addr */
	.long _start            /* entry_addr */
#endif
