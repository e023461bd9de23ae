/* Debug-exit port (QEMU isa-debug-exit compatible), present only with
 * --debug-exit: a 1-, 2- or 4-byte write of V to port 0xF4 (the range is
 * 0xF4-0xF7) stops the VM and makes xvm exit with status (V << 1) | 1, so a
 * test kernel can report its own result (an odd status is never 0: a
 * guest cannot fake a clean power-off this way). The process status keeps
 * the low 8 bits, as with QEMU. Reads return 0xFF..., as an empty bus. */
#ifndef XVM_HW_DEBUG_EXIT_H
#define XVM_HW_DEBUG_EXIT_H

#include <stdint.h>

struct machine;

#define DEBUG_EXIT_PORT_LEN 4

/* Exit status for a written value. */
static inline int debug_exit_status(uint64_t value)
{
	return (int)(((uint32_t)value << 1) | 1);
}

/* Registers the port when m->cfg->debug_exit; otherwise does nothing. */
int debug_exit_init(struct machine *m);

#endif
