/* The xvm PC board: creates the devices of a machine in a fixed order.
 *
 * Device owners add their init call here (one line each). Order matters
 * only where a device uses another one: the console back end before the
 * UART that drives it, the PCI host before PCI devices. */
#include "machine/pc.h"
#include "hw/acpi_pm.h"
#include "hw/debug_exit.h"
#include "hw/i8042.h"
#include "hw/io.h"
#include "hw/pci.h"
#include "hw/rtc.h"
#include "hw/serial.h"
#include "hw/virtio/devices.h"
#include "lib/log.h"
#include "machine/layout.h"
#include "machine/machine.h"
#include "vmm/console.h"

/* Port 0x80 is the POST-code port: Linux writes to it as an I/O delay
 * (thousands of times while booting) and firmware leaves progress codes
 * there. A real board latches the byte for a diagnostic display; we do the
 * same, so those writes are handled rather than counted as stray. */
#define PORT_POST_CODE 0x80

struct post_port {
	uint8_t last;
};

static uint64_t post_read(void *opaque, uint64_t offset, unsigned size)
{
	struct post_port *p = opaque;
	return __atomic_load_n(&p->last, __ATOMIC_RELAXED);
}

static void post_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct post_port *p = opaque;
	__atomic_store_n(&p->last, (uint8_t)value, __ATOMIC_RELAXED);
}

static const struct io_ops post_ops = { .read = post_read, .write = post_write };

static struct post_port post_port_state;

static int post_port_init(struct machine *m)
{
	/* Stateless apart from a diagnostic byte: one instance shared by
	 * successive machines (reset rebuilds the machine). */
	int r = io_register(m->pio, PORT_POST_CODE, 1, &post_ops, &post_port_state, "post-code");
	if (r < 0) {
		log_err("cannot register the POST code port: %d", r);
		return -1;
	}
	return 0;
}

static void console_teardown(void *opaque)
{
	struct console *c = opaque;
	console_close(c);
}

static int console_init(struct machine *m)
{
	m->console = console_open(m, m->cfg->console, m->cfg->console_path);
	if (!m->console)
		return -1;
	machine_on_teardown(m, console_teardown, m->console);
	return 0;
}

int pc_create_devices(struct machine *m)
{
	if (post_port_init(m) < 0)
		return -1;
	/* Legacy PC devices; the console back end before the UART. */
	if (console_init(m) < 0 || serial_init(m) < 0 || i8042_init(m) < 0 ||
	    rtc_init(m) < 0 || !acpi_pm_init(m) || debug_exit_init(m) < 0)
		return -1;
	if (!pci_init(m))
		return -1;
	if (virtio_create_devices(m) < 0)
		return -1;
	return 0;
}
