/* Function names from the test program's own symbol table, for the
 * coverage gate's report (coverage.c). Kept apart from the emulator's
 * headers: <elf.h> and cpu.h define the same macro names. */
#include <elf.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diff.h"

/* The name of the emulator's handler of an encoding, from the test
 * program's own symbol table (the handlers are static functions): the
 * closest thing to a mnemonic the gate can print without a table of its
 * own. NULL if the binary is stripped. */
const char *diff_symbol_of(const void *addr)
{
	static const uint8_t *img;
	static size_t len;
	static bool tried;
	if (!tried) {
		tried = true;
		int fd = open("/proc/self/exe", O_RDONLY);
		struct stat st;
		if (fd >= 0 && !fstat(fd, &st) && st.st_size > (off_t)sizeof(Elf64_Ehdr)) {
			void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
			if (m != MAP_FAILED) {
				img = m;
				len = (size_t)st.st_size;
			}
		}
		if (fd >= 0)
			close(fd);
	}
	if (!img)
		return NULL;
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
	if (eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > len)
		return NULL;
	const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
	for (unsigned s = 0; s < eh->e_shnum; s++) {
		if (sh[s].sh_type != SHT_SYMTAB || sh[s].sh_link >= eh->e_shnum)
			continue;
		const Elf64_Shdr *strs = &sh[sh[s].sh_link];
		if (sh[s].sh_offset + sh[s].sh_size > len || strs->sh_offset + strs->sh_size > len)
			return NULL;
		const Elf64_Sym *sym = (const Elf64_Sym *)(img + sh[s].sh_offset);
		size_t n = sh[s].sh_size / sizeof(*sym);
		const char *names = (const char *)(img + strs->sh_offset);
		/* load bias (PIE) from a symbol whose address is known */
		uintptr_t bias = 0;
		for (size_t k = 0; k < n; k++)
			if (sym[k].st_name < strs->sh_size && !strcmp(names + sym[k].st_name, "diff_symbol_of"))
				bias = (uintptr_t)diff_symbol_of - sym[k].st_value;
		for (size_t k = 0; k < n; k++)
			if (ELF64_ST_TYPE(sym[k].st_info) == STT_FUNC && sym[k].st_name < strs->sh_size &&
			    (uintptr_t)addr >= sym[k].st_value + bias &&
			    (uintptr_t)addr < sym[k].st_value + bias + sym[k].st_size)
				return names + sym[k].st_name;
	}
	return NULL;
}

