/* Builds the machine's virtio devices from its configuration and keeps
 * the list (for teardown and for the virtio-mmio command line). */
#include "hw/virtio/devices.h"
#include "vmm/console.h"
#include "block/block.h"
#include "hw/pci.h"
#include "hw/virtio/transport.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/util.h"
#include "machine/layout.h"
#include "machine/machine.h"
#include "net/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VIRTIO_MMIO_USABLE (VIRTIO_MMIO_GSI_MAX - VIRTIO_MMIO_GSI_BASE + 1)

enum vdev_kind { KIND_BLK, KIND_NET, KIND_RNG, KIND_CONSOLE };

struct board_dev {
	enum vdev_kind kind;
	struct virtio_dev *v;
	struct blockdev *bd;
	struct net_backend *net;
	struct virtio_pci *vp;     /* when on PCI */
};

struct virtio_board {
	struct virtio_mmio *mmio[VIRTIO_MMIO_USABLE];
	unsigned n_mmio;
	bool claimed[VIRTIO_MMIO_USABLE];
	struct board_dev devs[MAX_DISKS + MAX_NETS + 2];
	unsigned n_devs;
};

static void board_teardown(void *opaque)
{
	virtio_destroy_devices(opaque);
}

static struct virtio_board *board(struct machine *m)
{
	if (!m->virtio) {
		m->virtio = xcalloc(1, sizeof(struct virtio_board));
		machine_on_teardown(m, board_teardown, m);
	}
	return m->virtio;
}

int virtio_board_claim_mmio_slot(struct machine *m)
{
	struct virtio_board *b = board(m);
	for (unsigned i = 0; i < VIRTIO_MMIO_USABLE; i++) {
		if (!b->claimed[i]) {
			b->claimed[i] = true;
			return (int)i;
		}
	}
	return -1;
}

void virtio_board_add_mmio(struct machine *m, struct virtio_mmio *vm)
{
	struct virtio_board *b = board(m);
	if (b->n_mmio < VIRTIO_MMIO_USABLE)
		b->mmio[b->n_mmio++] = vm;
}

int virtio_mmio_cmdline(struct machine *m, char *buf, size_t len)
{
	struct virtio_board *b = m->virtio;
	if (!b || !b->n_mmio)
		return 0;
	size_t used = strnlen(buf, len);
	if (used == len)
		return -ENOSPC;
	char extra[VIRTIO_MMIO_USABLE * 48] = "";
	size_t n = 0;
	for (unsigned i = 0; i < b->n_mmio; i++)
		n += (size_t)snprintf(extra + n, sizeof(extra) - n, " virtio_mmio.device=4K@%#llx:%u",
				      (unsigned long long)b->mmio[i]->base, b->mmio[i]->gsi);
	if (used + n + 1 > len)
		return -ENOSPC;
	memcpy(buf + used, extra, n + 1);
	return 0;
}

unsigned virtio_mmio_list(struct machine *m, struct virtio_mmio_info *out, unsigned max)
{
	struct virtio_board *b = m->virtio;
	if (!b)
		return 0;
	for (unsigned i = 0; i < b->n_mmio && i < max; i++)
		out[i] = (struct virtio_mmio_info){ b->mmio[i]->base, VIRTIO_MMIO_SLOT, b->mmio[i]->gsi };
	return b->n_mmio;
}

/* Attaches the last added device to the transport named by `transport`
 * (NULL = PCI). */
static int attach(struct machine *m, struct virtio_dev *v, const char *transport)
{
	struct virtio_board *b = board(m);
	struct board_dev *d = &b->devs[b->n_devs - 1];
	if (transport && !strcmp(transport, "mmio"))
		return virtio_mmio_create(m, v) ? 0 : -1;
	if (transport && strcmp(transport, "pci")) {
		log_err("%s: unknown transport '%s' (use pci or mmio)", v->name, transport);
		return -1;
	}
	if (!m->pci) {
		log_err("%s: no PCI bus on this machine", v->name);
		return -1;
	}
	d->vp = virtio_pci_create(m->pci, v);
	return d->vp ? 0 : -1;
}

static void add_dev(struct machine *m, enum vdev_kind kind, struct virtio_dev *v,
		    struct blockdev *bd, struct net_backend *net)
{
	struct virtio_board *b = board(m);
	b->devs[b->n_devs++] = (struct board_dev){ kind, v, bd, net, NULL };
}

static int create_disk(struct machine *m, const struct disk_config *dc)
{
	char err[256] = "";
	struct blockdev *bd;
	unsigned flags = dc->readonly ? BLOCK_OPEN_RDONLY : 0;
	int r = block_open(dc->path, dc->format, flags, &bd, err, sizeof(err));
	if (r < 0) {
		log_err("--disk %s: %s", dc->path, err[0] ? err : strerror(-r));
		return -1;
	}
	struct virtio_dev *v = virtio_blk_new(m, &m->ram, bd, dc->readonly, dc->serial);
	add_dev(m, KIND_BLK, v, bd, NULL);
	return attach(m, v, dc->transport);
}

static int create_net(struct machine *m, const struct net_config *nc)
{
	struct net_options opts;
	char err[256] = "";
	if (net_parse_options(nc->spec, &opts, err, sizeof(err)) < 0) {
		log_err("--net %s: %s", nc->spec, err);
		return -1;
	}
	struct net_backend *be = net_backend_open(m, &opts, err, sizeof(err));
	if (!be) {
		log_err("--net %s: %s", nc->spec, err);
		net_options_free(&opts);
		return -1;
	}
	struct virtio_dev *v = virtio_net_new(m, &m->ram, opts.mac, be);
	add_dev(m, KIND_NET, v, NULL, be);
	int r = attach(m, v, opts.transport);
	net_options_free(&opts);
	return r;
}

/* --console virtio: hvc0 on the shared console back end (vmm/console.h:
 * raw terminal, escape keys, output buffering, input back-pressure). */
static void console_sink_write(void *opaque, const uint8_t *buf, size_t len)
{
	struct machine *m = opaque;
	console_write(m->console, buf, len);
}

static void console_sink_room(void *opaque)
{
	struct machine *m = opaque;
	console_resume_input(m->console);
}

static size_t console_input_to_virtio(void *opaque, const uint8_t *buf, size_t len)
{
	return virtio_console_input(opaque, buf, len);
}

struct console_link {
	struct machine *m;
	struct virtio_dev *v;
};

static void console_link_teardown(void *opaque)
{
	struct console_link *l = opaque;
	console_detach_input(l->m->console, l->v);
	free(l);
}

static int create_console(struct machine *m)
{
	struct virtio_console_sink sink = { console_sink_write, console_sink_room, m };
	struct virtio_dev *v = virtio_console_new(m, &m->ram, &sink);
	add_dev(m, KIND_CONSOLE, v, NULL, NULL);
	if (attach(m, v, NULL) < 0)
		return -1;
	struct console_link *l = xcalloc(1, sizeof(*l));
	l->m = m;
	l->v = v;
	/* hvc0 takes the input over from the UART. */
	console_set_input(m->console, console_input_to_virtio, v);
	/* Registered after the board's hook, so it runs before it. */
	machine_on_teardown(m, console_link_teardown, l);
	return 0;
}

int virtio_create_devices(struct machine *m)
{
	struct vm_config *cfg = m->cfg;
	for (unsigned i = 0; i < cfg->n_disks; i++)
		if (create_disk(m, &cfg->disks[i]) < 0)
			return -1;
	for (unsigned i = 0; i < cfg->n_nets; i++) {
		struct net_config nc = cfg->nets[i];
		if (create_net(m, &nc) < 0)
			return -1;
	}
	if (cfg->console == CONSOLE_VIRTIO && create_console(m) < 0)
		return -1;
	if (cfg->rng) {
		struct virtio_dev *v = virtio_rng_new(m, &m->ram);
		add_dev(m, KIND_RNG, v, NULL, NULL);
		if (attach(m, v, NULL) < 0)
			return -1;
	}
	return 0;
}

void virtio_destroy_devices(struct machine *m)
{
	struct virtio_board *b = m->virtio;
	if (!b)
		return;
	for (unsigned i = 0; i < b->n_devs; i++) {
		struct board_dev *d = &b->devs[i];
		virtio_pci_destroy(d->vp);
		switch (d->kind) {
		case KIND_BLK:
			virtio_blk_free(d->v);
			block_close(d->bd);
			break;
		case KIND_NET:
			/* Backend first: after close it delivers nothing more. */
			net_backend_close(d->net);
			virtio_net_free(d->v);
			break;
		case KIND_RNG:
			virtio_rng_free(d->v);
			break;
		case KIND_CONSOLE:
			virtio_console_free(d->v);
			break;
		}
	}
	for (unsigned i = 0; i < b->n_mmio; i++) {
		io_unregister(m->mmio, b->mmio[i]->base, b->mmio[i]);
		free(b->mmio[i]);
	}
	free(b);
	m->virtio = NULL;
}
