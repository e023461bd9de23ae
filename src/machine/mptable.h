/* Intel MultiProcessor Specification 1.4 tables: the fallback a kernel
 * uses when ACPI is off (acpi=off). Floating pointer and configuration
 * table at MPTABLE_ADDR, inside the BIOS area e820 reserves. */
#ifndef XVM_MACHINE_MPTABLE_H
#define XVM_MACHINE_MPTABLE_H

#include <stddef.h>
#include <stdint.h>

struct machine;

/* Writes the tables for m->ncpus vCPUs into guest RAM. 0 or -errno. */
int mptable_build(struct machine *m, char *err, size_t errlen);
/* The same into a buffer laid out as at guest address base; returns the
 * bytes used or 0 if they do not fit. The floating pointer is first. */
size_t mptable_write(unsigned ncpus, uint8_t *buf, size_t len, uint64_t base);

#endif
