/* Guest RAM: one host mapping, seen by the guest as up to two ranges
 * ([0, low_size) and [4 GiB, 4 GiB + high_size)). Every guest-supplied
 * address goes through these checks; nothing else dereferences guest RAM. */
#ifndef XVM_MACHINE_MEMORY_H
#define XVM_MACHINE_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_ram {
	uint8_t *host;       /* low RAM at host[0], high RAM at host[low_size] */
	uint64_t size;       /* total */
	uint64_t low_size;   /* bytes mapped at GPA 0 */
	uint64_t high_size;  /* bytes mapped at HIGH_RAM_START */
	/* Called after anything other than the guest CPU writes RAM (device
	 * DMA, loaders), so the software CPU can drop translated code. */
	void (*written)(void *opaque, uint64_t gpa, uint64_t len);
	void *written_opaque;
};

/* Reserves and maps RAM (MAP_NORESERVE, anonymous, huge pages advised).
 * Returns 0 or -errno with a message already logged. */
int guest_ram_init(struct guest_ram *ram, uint64_t size);
void guest_ram_free(struct guest_ram *ram);

/* Host pointer for [gpa, gpa+len) if the whole range is RAM inside one
 * block, else NULL. len 0 is allowed. */
void *gpa_to_hva(const struct guest_ram *ram, uint64_t gpa, uint64_t len);
/* Bytes of contiguous RAM from gpa to the end of its block (0 if not RAM). */
uint64_t gpa_ram_extent(const struct guest_ram *ram, uint64_t gpa);

/* Copies that fail (-EFAULT) unless the whole range is RAM. They may
 * cross from low to high RAM only if both are RAM. guest_write notifies
 * the written() hook. */
int guest_read(const struct guest_ram *ram, uint64_t gpa, void *buf, uint64_t len);
int guest_write(const struct guest_ram *ram, uint64_t gpa, const void *buf, uint64_t len);
/* For code that wrote through a gpa_to_hva pointer (DMA). */
void guest_ram_mark_written(const struct guest_ram *ram, uint64_t gpa, uint64_t len);

#endif
