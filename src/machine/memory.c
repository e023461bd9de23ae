#include "machine/memory.h"
#include "machine/layout.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

int guest_ram_init(struct guest_ram *ram, uint64_t size)
{
	memset(ram, 0, sizeof(*ram));
	if (size < 1 * MiB) {
		log_err("memory size too small: at least 1 MiB is needed");
		return -EINVAL;
	}
	if (size > 1024 * GiB) {
		log_err("memory size too large: at most 1 TiB");
		return -EINVAL;
	}
	/* 2 MiB-aligned, so guest 2 MiB pages sit on host huge pages (KVM can
	 * then map them with large EPT entries; the software CPU takes fewer
	 * host TLB misses): reserve 2 MiB more and trim both ends. */
	const size_t align = 2 * MiB;
	void *p = mmap(NULL, size + align, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p != MAP_FAILED) {
		uintptr_t base = (uintptr_t)p, start = (base + align - 1) & ~(uintptr_t)(align - 1);
		if (start > base)
			munmap(p, start - base);
		if (start + size < base + size + align)
			munmap((void *)(start + size), base + size + align - (start + size));
		p = (void *)start;
	}
	if (p == MAP_FAILED) {
		int e = errno;
		char buf[32];
		format_size(size, buf, sizeof(buf));
		log_err("cannot allocate %s of guest memory: %s", buf, strerror(e));
		return -e;
	}
	madvise(p, size, MADV_HUGEPAGE);
	ram->host = p;
	ram->size = size;
	ram->low_size = MIN(size, LOW_RAM_MAX);
	ram->high_size = size - ram->low_size;
	return 0;
}

void guest_ram_free(struct guest_ram *ram)
{
	if (ram->host)
		munmap(ram->host, ram->size);
	ram->host = NULL;
}

uint64_t gpa_ram_extent(const struct guest_ram *ram, uint64_t gpa)
{
	if (gpa < ram->low_size)
		return ram->low_size - gpa;
	if (gpa >= HIGH_RAM_START && gpa - HIGH_RAM_START < ram->high_size)
		return ram->high_size - (gpa - HIGH_RAM_START);
	return 0;
}

void *gpa_to_hva(const struct guest_ram *ram, uint64_t gpa, uint64_t len)
{
	uint64_t ext = gpa_ram_extent(ram, gpa);
	if (len > ext || (ext == 0))
		return NULL;
	if (gpa < ram->low_size)
		return ram->host + gpa;
	return ram->host + ram->low_size + (gpa - HIGH_RAM_START);
}

static int copy(const struct guest_ram *ram, uint64_t gpa, void *buf, uint64_t len, bool write)
{
	uint8_t *b = buf;
	while (len) {
		uint64_t ext = gpa_ram_extent(ram, gpa);
		if (ext == 0)
			return -EFAULT;
		uint64_t n = MIN(ext, len);
		uint8_t *h = gpa_to_hva(ram, gpa, n);
		if (write)
			memcpy(h, b, n);
		else
			memcpy(b, h, n);
		b += n;
		gpa += n;
		len -= n;
	}
	return 0;
}

int guest_read(const struct guest_ram *ram, uint64_t gpa, void *buf, uint64_t len)
{
	return copy(ram, gpa, buf, len, false);
}

int guest_write(const struct guest_ram *ram, uint64_t gpa, const void *buf, uint64_t len)
{
	/* Check the whole range first so a failed write changes nothing. */
	uint64_t g = gpa, l = len;
	while (l) {
		uint64_t ext = gpa_ram_extent(ram, g);
		if (ext == 0)
			return -EFAULT;
		uint64_t n = MIN(ext, l);
		g += n;
		l -= n;
	}
	copy(ram, gpa, (void *)buf, len, true);
	guest_ram_mark_written(ram, gpa, len);
	return 0;
}

void guest_ram_mark_written(const struct guest_ram *ram, uint64_t gpa, uint64_t len)
{
	if (ram->written && len)
		ram->written(ram->written_opaque, gpa, len);
}
