/* A hostile guest against the whole device model: the PC board (serial,
 * i8042, RTC, ACPI PM, debug-exit, PCI host, virtio blk/net/rng/console on
 * PCI and virtio-mmio) and the software CPU's platform (PIC, PIT, IOAPIC),
 * driven by random port and MMIO accesses, random PCI configuration
 * writes (BARs moved, MSI-X toggled) and virtqueues set up over random
 * guest memory and kicked. The VMM must survive all of it (no crash, no
 * sanitizer report, no hang), and afterwards the disk must still work for
 * a driver that resets it and uses it properly: a hostile guest can break
 * its own devices, never the VMM or the user's data path.
 *
 * XVM_DEVICE_FUZZ_ITERS and XVM_DEVICE_FUZZ_SEED run longer or other
 * searches. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "accel/accel.h"
#include "hw/io.h"
#include "hw/pci.h"
#include "hw/virtio/transport.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/util.h"
#include "machine/layout.h"
#include "machine/machine.h"
#include "machine/pc.h"
#include "fuzz_rng.h"
#include "virtio_harness.h"

#define RAM_SIZE (32 * MiB)
#define NSLOTS 6 /* host bridge, the virtio functions, empty slots */

static uint64_t rnd_value(void)
{
	switch (rnd() % 6) {
	case 0: return 0;
	case 1: return rnd() % 16;
	case 2: return rnd() % RAM_SIZE;        /* a guest address */
	case 3: return ~0ULL >> (rnd() % 64);
	case 4: return 1ULL << (rnd() % 64);
	default: return rnd();
	}
}

static unsigned rnd_size(void)
{
	static const unsigned sizes[] = { 1, 2, 4, 4, 8 };
	return sizes[rnd() % 5];
}

struct board {
	struct machine *m;
	struct vm_config cfg;
	char img[64];
	pthread_t loop_thread;
	unsigned ndev; /* virtio PCI functions, in slots 1..ndev */
	uint64_t bar4[NSLOTS], orig_bar4[NSLOTS];
	uint32_t bar4_lo[NSLOTS], bar4_hi[NSLOTS], bar1[NSLOTS]; /* as placed at creation */
	uint64_t cur_bar1[NSLOTS]; /* as the guest last left them */
};

static void *loop_main(void *opaque)
{
	loop_run(opaque);
	return NULL;
}

static uint32_t cfg_read(struct machine *m, unsigned slot, unsigned reg)
{
	uint64_t v = ~0ULL;
	io_write(m->pio, PORT_PCI_CONFIG, 4, 0x80000000u | slot << 11 | reg);
	io_read(m->pio, PORT_PCI_CONFIG + 4, 4, &v);
	return (uint32_t)v;
}

static void cfg_write(struct machine *m, unsigned slot, unsigned reg, unsigned size, uint32_t v)
{
	io_write(m->pio, PORT_PCI_CONFIG, 4, 0x80000000u | slot << 11 | (reg & 0xFC));
	io_write(m->pio, PORT_PCI_CONFIG + 4 + (reg & 3), size, v);
}

static void board_new(struct board *b)
{
	memset(b, 0, sizeof(*b));
	struct machine *m = calloc(1, sizeof(*m));
	b->m = m;
	snprintf(b->img, sizeof(b->img), "/tmp/xvm-test-devfuzz-XXXXXX");
	int fd = mkstemp(b->img);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4 * MiB), 0);
	close(fd);
	b->cfg = (struct vm_config){ .accel = "emu", .cpus = 1, .mem_size = RAM_SIZE,
				     .console = CONSOLE_NONE, .debug_exit = true, .rng = true };
	b->cfg.disks[0] = (struct disk_config){ .path = b->img, .format = "raw", .serial = "fuzz" };
	b->cfg.disks[1] = (struct disk_config){ .path = b->img, .readonly = true, .transport = "mmio" };
	b->cfg.n_disks = 2;
	b->cfg.nets[0].spec = "user";
	b->cfg.nets[1].spec = "user,transport=mmio";
	b->cfg.n_nets = 2;
	m->cfg = &b->cfg;
	assert_int_equal(guest_ram_init(&m->ram, RAM_SIZE), 0);
	m->pio = io_space_new("pio");
	m->mmio = io_space_new("mmio");
	m->loop = loop_new();
	m->ncpus = 1;
	m->vcpus[0].m = m;
	m->accel = &emu_accel_ops;
	/* The engine first: its interrupt controllers take the board's IRQs. */
	assert_int_equal(emu_accel_ops.vm_init(m), 0);
	assert_int_equal(emu_accel_ops.vcpu_init(&m->vcpus[0]), 0);
	assert_int_equal(pc_create_devices(m), 0);
	assert_int_equal(pthread_create(&b->loop_thread, NULL, loop_main, m->loop), 0);
	while (b->ndev + 1 < NSLOTS && (cfg_read(m, b->ndev + 1, 0) & 0xFFFF) == 0x1af4)
		b->ndev++;
	assert_int_equal(b->ndev, 3); /* blk, net, rng (the mmio ones are not PCI) */
	for (unsigned s = 1; s <= b->ndev; s++) {
		b->bar1[s] = cfg_read(m, s, 0x14);
		b->bar4_lo[s] = cfg_read(m, s, 0x20);
		b->bar4_hi[s] = cfg_read(m, s, 0x24);
		b->bar4[s] = (b->bar4_lo[s] & ~0xFULL) | (uint64_t)b->bar4_hi[s] << 32;
		b->cur_bar1[s] = b->bar1[s] & ~0xFULL;
	}
	memcpy(b->orig_bar4, b->bar4, sizeof(b->bar4));
}

static void board_free(struct board *b)
{
	struct machine *m = b->m;
	/* As vm.c does: devices go while the loop still runs. */
	machine_run_teardown(m);
	loop_stop(m->loop);
	pthread_join(b->loop_thread, NULL);
	emu_accel_ops.vcpu_destroy(&m->vcpus[0]);
	emu_accel_ops.vm_destroy(m);
	loop_free(m->loop);
	io_space_free(m->pio);
	io_space_free(m->mmio);
	guest_ram_free(&m->ram);
	free(m);
	unlink(b->img);
}

/* Where a guest can reach the devices: BARs as the guest last left them. */
static uint64_t random_mmio_addr(struct board *b)
{
	switch (rnd() % 6) {
	case 0: {
		unsigned s = 1 + rnd() % b->ndev;
		return b->bar4[s] + rnd() % 0x4000;
	}
	case 1: {
		unsigned s = 1 + rnd() % b->ndev;
		return b->cur_bar1[s] + rnd() % 0x1000;
	}
	case 2: return VIRTIO_MMIO_BASE + rnd() % (3 * VIRTIO_MMIO_SLOT);
	case 3: return PCI_ECAM_BASE + rnd() % (0x8000);
	case 4: return IOAPIC_BASE + rnd() % 0x100;
	default: return PCI_MMIO32_START + rnd() % 0x100000;
	}
}

static uint16_t random_port(void)
{
	static const uint16_t ports[] = { 0x20, 0x21, 0xA0, 0xA1, 0x40, 0x41, 0x42, 0x43, 0x60, 0x61,
					  0x64, 0x70, 0x71, 0x80, 0x92, 0x3F8, 0x3F9, 0x3FA, 0x3FB,
					  0x3FC, 0x3FD, 0x3FE, 0x3FF, 0x2F8, 0xCF8, 0xCF9, 0xCFC,
					  0xCFD, 0xCFE, 0xCFF, 0x600, 0x604, 0x608, 0x4D0, 0x4D1 };
	if (rnd() % 4 == 0)
		return (uint16_t)rnd();
	return (uint16_t)(ports[rnd() % (sizeof(ports) / sizeof(ports[0]))] + (rnd() % 4 == 0 ? rnd() % 8 : 0));
}

/* A virtqueue set up the way a driver would, over memory the guest
 * filled with garbage, then kicked. */
static void random_queue(struct board *b)
{
	struct machine *m = b->m;
	unsigned s = 1 + rnd() % b->ndev;
	uint64_t common = b->bar4[s] + VIRTIO_PCI_COMMON_OFF;
	io_write(m->mmio, common + 0x14, 1, 0);              /* reset */
	io_write(m->mmio, common + 0x14, 1, 3);              /* ACK | DRIVER */
	/* A random subset of what the device offers, VERSION_1 always. */
	for (unsigned sel = 0; sel < 2; sel++) {
		uint64_t offered = 0;
		io_write(m->mmio, common + 0x00, 4, sel);
		io_read(m->mmio, common + 0x04, 4, &offered);
		io_write(m->mmio, common + 0x08, 4, sel);
		io_write(m->mmio, common + 0x0c, 4, (offered & rnd()) | (sel == 1));
	}
	io_write(m->mmio, common + 0x14, 1, 0x0b);           /* FEATURES_OK */
	unsigned q = rnd() % 4;
	io_write(m->mmio, common + 0x16, 2, q);
	if (rnd() % 2) {
		/* Plausible rings (aligned, in RAM, small avail index) whose
		 * descriptors are hostile: addresses anywhere, any length,
		 * NEXT/WRITE/INDIRECT flags at random, chains that loop. */
		uint16_t num = (uint16_t)(1u << (rnd() % 8));
		uint64_t desc = (rnd() % (RAM_SIZE - 0x10000)) & ~0xFFFULL;
		uint64_t avail = desc + 0x1000 * (1 + num / 256), used = avail + 0x1000;
		for (unsigned d = 0; d < num; d++) {
			uint64_t a = rnd() % 4 ? rnd() % RAM_SIZE : rnd_value();
			uint32_t len = rnd() % 4 ? (uint32_t)(rnd() % 0x2000) : (uint32_t)rnd_value();
			uint16_t fl = (uint16_t)(rnd() % 8), nx = (uint16_t)(rnd() % 3 ? rnd() % num : rnd());
			put64(&m->ram, desc + 16 * d, a);
			put32(&m->ram, desc + 16 * d + 8, len);
			put16(&m->ram, desc + 16 * d + 12, fl);
			put16(&m->ram, desc + 16 * d + 14, nx);
		}
		uint16_t n = (uint16_t)(1 + rnd() % 4);
		put16(&m->ram, avail, 0);
		put16(&m->ram, avail + 2, n);
		for (unsigned k = 0; k < n && k < num; k++)
			put16(&m->ram, avail + 4 + 2 * k, (uint16_t)(rnd() % num));
		io_write(m->mmio, common + 0x18, 2, num);
		io_write(m->mmio, common + 0x20, 8, desc);
		io_write(m->mmio, common + 0x28, 8, avail);
		io_write(m->mmio, common + 0x30, 8, used);
	} else {
		io_write(m->mmio, common + 0x18, 2, rnd() % 3 ? 1u << (rnd() % 9) : rnd() % 0x10000);
		io_write(m->mmio, common + 0x20, 8, rnd_value());
		io_write(m->mmio, common + 0x28, 8, rnd_value());
		io_write(m->mmio, common + 0x30, 8, rnd_value());
	}
	io_write(m->mmio, common + 0x1c, 2, 1);              /* enable */
	io_write(m->mmio, common + 0x14, 1, 0x0f);           /* DRIVER_OK */
	io_write(m->mmio, b->bar4[s] + VIRTIO_PCI_NOTIFY_OFF, 2, q);
}

static void fuzz_step(struct board *b)
{
	struct machine *m = b->m;
	uint64_t v;
	switch (rnd() % 8) {
	case 0: /* port I/O */
		if (rnd() & 1)
			io_write(m->pio, random_port(), rnd_size() % 8 ? rnd_size() : 4, rnd_value());
		else
			io_read(m->pio, random_port(), rnd_size() % 8 ? rnd_size() : 4, &v);
		break;
	case 1:
	case 2: /* MMIO */
		if (rnd() & 1)
			io_write(m->mmio, random_mmio_addr(b), rnd_size(), rnd_value());
		else
			io_read(m->mmio, random_mmio_addr(b), rnd_size(), &v);
		break;
	case 3: { /* PCI configuration: anything, BARs and command included */
		unsigned s = rnd() % NSLOTS;
		unsigned reg = rnd() % 3 ? (rnd() % 0x40) : (rnd() % 0x100);
		unsigned size = 1u << (rnd() % 3);
		cfg_write(m, s, reg & ~(size - 1), size, (uint32_t)rnd_value());
		if (s >= 1 && s <= b->ndev) {
			b->cur_bar1[s] = cfg_read(m, s, 0x14) & ~0xFULL;
			b->bar4[s] = (cfg_read(m, s, 0x20) & ~0xFULL) | (uint64_t)cfg_read(m, s, 0x24) << 32;
		}
		break;
	}
	case 4: /* garbage into guest memory (rings, buffers) */
		for (int k = 0; k < 64; k++) {
			uint64_t a = rnd() % (RAM_SIZE - 8);
			uint64_t x = rnd_value();
			memcpy(m->ram.host + a, &x, 8);
		}
		break;
	case 5:
	case 6:
		random_queue(b);
		break;
	default: /* kick any queue of any device */
		io_write(m->mmio, b->bar4[1 + rnd() % b->ndev] + VIRTIO_PCI_NOTIFY_OFF, 2, rnd() % 8);
		io_write(m->mmio, VIRTIO_MMIO_BASE + (rnd() % 2) * VIRTIO_MMIO_SLOT + 0x50, 4, rnd() % 4);
		break;
	}
}

static void restore_bars(struct board *b)
{
	for (unsigned s = 1; s <= b->ndev; s++) {
		cfg_write(b->m, s, 0x04, 2, 0x0007);
		cfg_write(b->m, s, 0x14, 4, b->bar1[s]);
		cfg_write(b->m, s, 0x20, 4, b->bar4_lo[s]);
		cfg_write(b->m, s, 0x24, 4, b->bar4_hi[s]);
		b->bar4[s] = b->orig_bar4[s];
		b->cur_bar1[s] = b->bar1[s] & ~0xFULL;
	}
}

/* After the storm: a driver that resets the disk and uses it properly is
 * served. */
static void check_disk_works(struct board *b)
{
	struct machine *m = b->m;
	const unsigned s = 1;
	/* The guest may have moved or disabled the BARs: put them back. */
	restore_bars(b);
	uint64_t bar4 = b->bar4[s];
	assert_int_equal(cfg_read(m, s, 0), 0x10421af4);
	uint64_t common = bar4 + VIRTIO_PCI_COMMON_OFF;
	struct io_space *mm = m->mmio;
	/* The fuzz may have left requests in flight on the old rings: reset
	 * until the device reads back as reset (the spec's driver does the
	 * same), then bring it up. */
	uint64_t st = 0xFF;
	for (int k = 0; k < 2000 && st != 0; k++) {
		io_write(mm, common + 0x14, 1, 0);
		io_read(mm, common + 0x14, 1, &st);
		if (st)
			nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	assert_int_equal(st, 0);
	io_write(mm, common + 0x14, 1, 3);
	io_write(mm, common + 0x08, 4, 1);
	io_write(mm, common + 0x0c, 4, 1);
	io_write(mm, common + 0x14, 1, 0x0b);
	struct fake_ring r;
	ring_layout(&r, &m->ram, 0x10000, 16);
	io_write(mm, common + 0x16, 2, 0);
	io_write(mm, common + 0x18, 2, 16);
	io_write(mm, common + 0x1a, 2, 0xFFFF); /* no MSI-X vector */
	io_write(mm, common + 0x20, 8, r.desc);
	io_write(mm, common + 0x28, 8, r.avail);
	io_write(mm, common + 0x30, 8, r.used);
	io_write(mm, common + 0x1c, 2, 1);
	io_write(mm, common + 0x14, 1, 0x0f);

	/* Write sector 3 with a pattern; the image has it afterwards. */
	put32(&m->ram, 0x100000, 1);
	put32(&m->ram, 0x100004, 0);
	put64(&m->ram, 0x100008, 3);
	memset(hva(&m->ram, 0x200000), 0x5a, 512);
	*(uint8_t *)hva(&m->ram, 0x180000) = 0xFF;
	struct fake_buf w[] = { { 0x100000, 16, 0 }, { 0x200000, 512, 0 }, { 0x180000, 1, 1 } };
	ring_add(&r, w, 3);
	io_write(mm, bar4 + VIRTIO_PCI_NOTIFY_OFF, 2, 0);
	for (int k = 0; k < 5000 && ring_used_idx(&r) != 1; k++)
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	assert_int_equal(ring_used_idx(&r), 1);
	assert_int_equal(*(uint8_t *)hva(&m->ram, 0x180000), 0); /* VIRTIO_BLK_S_OK */
	FILE *fp = fopen(b->img, "rb");
	assert_non_null(fp);
	uint8_t back[512];
	assert_int_equal(fseek(fp, 3 * 512, SEEK_SET), 0);
	assert_int_equal(fread(back, 1, 512, fp), 512);
	fclose(fp);
	for (int k = 0; k < 512; k++)
		assert_int_equal(back[k], 0x5a);
}

static void test_hostile_guest(void **state)
{
	(void)state;
	const char *e = getenv("XVM_DEVICE_FUZZ_ITERS");
	unsigned iters = e ? (unsigned)strtoul(e, NULL, 0) : 20000;
	rnd_seed("XVM_DEVICE_FUZZ_SEED", 0xD1B54A32D192ED03ULL);
	xvm_log_level = getenv("XVM_DEVICE_FUZZ_LOG") ? LOG_DEBUG : LOG_ERROR; /* guest errors are logged: expected */

	struct board b;
	board_new(&b);
	for (unsigned k = 0; k < RAM_SIZE; k += 8) {
		uint64_t x = rnd();
		memcpy(b.m->ram.host + k, &x, 8);
	}
	for (unsigned k = 0; k < iters; k++) {
		/* Now and then the guest puts its BARs back (as a driver
		 * re-probing would), so the storm keeps reaching the devices. */
		if (k % 256 == 0)
			restore_bars(&b);
		fuzz_step(&b);
	}
	/* A board device may have asked to stop the VM (debug-exit, reset,
	 * power-off): that is all it may do. */
	int st = b.m->run_state;
	assert_true(st == VM_RUNNING || st == VM_STOP_EXIT || st == VM_STOP_RESET ||
		    st == VM_STOP_POWEROFF);
	check_disk_works(&b);
	board_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile_guest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
