/* Address spaces: the port-I/O space and the MMIO space of the machine.
 * A device registers a range with {read, write} ops; an engine (KVM exit
 * handler or the software CPU) turns every guest access that is not RAM
 * into io_read/io_write. Devices never know which engine runs the vCPU.
 *
 * Lookups are lock-free (an immutable sorted table swapped atomically), so
 * PCI BAR moves at run time are safe against concurrent accesses from
 * other vCPU threads. Ops are called on vCPU threads, concurrently: each
 * device protects its own state. */
#ifndef XVM_HW_IO_H
#define XVM_HW_IO_H

#include <stdbool.h>
#include <stdint.h>

struct io_ops {
	/* offset is relative to the region base; size is 1, 2, 4 or 8. */
	uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
	void (*write)(void *opaque, uint64_t offset, unsigned size, uint64_t value);
};

struct io_space;

struct io_space *io_space_new(const char *name);
void io_space_free(struct io_space *s);

/* Fails (-EEXIST) if the range overlaps an existing one, -EINVAL on an
 * empty or wrapping range. */
int io_register(struct io_space *s, uint64_t base, uint64_t len,
		const struct io_ops *ops, void *opaque, const char *name);
/* Removes the region registered with this opaque at this base. */
int io_unregister(struct io_space *s, uint64_t base, void *opaque);

/* Dispatch one guest access. An access that hits no region reads as all
 * ones and writes are dropped; both return false (and are logged once at
 * debug level) so callers can count them. */
bool io_read(struct io_space *s, uint64_t addr, unsigned size, uint64_t *value);
bool io_write(struct io_space *s, uint64_t addr, unsigned size, uint64_t value);

/* Prints the map (for `--debug` and tests). */
void io_space_dump(struct io_space *s);

#endif
