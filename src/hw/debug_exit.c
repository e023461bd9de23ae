/* Debug-exit port. See debug_exit.h. */
#include "hw/debug_exit.h"
#include "hw/io.h"
#include "lib/log.h"
#include "machine/layout.h"
#include "machine/machine.h"

static uint64_t debug_exit_read(void *opaque, uint64_t offset, unsigned size)
{
	return ~0ULL;
}

static void debug_exit_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct machine *m = opaque;
	/* The value as written, whatever the width (QEMU does the same). */
	uint64_t v = size >= 4 ? (uint32_t)value : value & ((1ULL << (8 * size)) - 1);
	int status = debug_exit_status(v);
	log_info("guest wrote %#llx to the debug-exit port: exit status %d",
		 (unsigned long long)v, status & 0xFF);
	machine_request_stop(m, VM_STOP_EXIT, status);
}

static const struct io_ops debug_exit_ops = { .read = debug_exit_read, .write = debug_exit_write };

int debug_exit_init(struct machine *m)
{
	if (!m->cfg->debug_exit)
		return 0;
	/* Stateless: nothing to free, the port goes with the address space. */
	int r = io_register(m->pio, PORT_DEBUG_EXIT, DEBUG_EXIT_PORT_LEN, &debug_exit_ops, m,
			    "debug-exit");
	if (r < 0) {
		log_err("debug-exit: cannot register port %#x: %d", PORT_DEBUG_EXIT, r);
		return -1;
	}
	return 0;
}
