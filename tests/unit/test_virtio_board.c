/* The machine's virtio devices built from a vm_config: PCI functions and
 * virtio-mmio slots where the options put them, the kernel command line
 * for virtio-mmio, errors for bad options, and a clean teardown (ASan
 * checks that nothing leaks). A full driver flow then runs on the disk
 * through the real PCI config ports with MSI-X going to the engine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "hw/pci.h"
#include "hw/virtio/devices.h"
#include "hw/virtio/transport.h"
#include "lib/loop.h"
#include "lib/util.h"
#include "machine/layout.h"
#include "machine/machine.h"
#include "virtio_harness.h"

static int msis, irqs;
static uint32_t last_msi_data;
static void fake_set_irq(struct machine *m, unsigned gsi, int level) { irqs++; }
static void fake_send_msi(struct machine *m, uint64_t addr, uint32_t data) { msis++; last_msi_data = data; }
static const struct accel_ops fake_accel = {
	.name = "fake",
	.set_irq = fake_set_irq,
	.send_msi = fake_send_msi,
};

/* An engine with ioeventfd (like KVM): remembers the doorbell fds. */
static int ioevent_fd = -1;
static uint64_t ioevent_addr;
static int fake_add_ioeventfd(struct machine *m, bool pio, uint64_t addr, unsigned len, int fd)
{
	if (pio || len != 2)
		return -EINVAL;
	ioevent_fd = fd;
	ioevent_addr = addr;
	return 0;
}
static const struct accel_ops fake_kvm_accel = {
	.name = "fake-kvm",
	.set_irq = fake_set_irq,
	.send_msi = fake_send_msi,
	.add_ioeventfd = fake_add_ioeventfd,
};

struct fixture {
	struct machine m;
	struct vm_config cfg;
	char img[64];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_int_equal(guest_ram_init(&f->m.ram, 32 * MiB), 0);
	f->m.cfg = &f->cfg;
	f->m.pio = io_space_new("pio");
	f->m.mmio = io_space_new("mmio");
	f->m.loop = loop_new();
	f->m.accel = &fake_accel;
	snprintf(f->img, sizeof(f->img), "/tmp/xvm-test-board-XXXXXX");
	int fd = mkstemp(f->img);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4 * MiB), 0);
	close(fd);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	machine_run_teardown(&f->m);
	assert_null(f->m.virtio);
	assert_null(f->m.pci);
	loop_free(f->m.loop);
	io_space_free(f->m.pio);
	io_space_free(f->m.mmio);
	guest_ram_free(&f->m.ram);
	unlink(f->img);
	free(f);
	return 0;
}

static uint32_t cf8(struct fixture *f, unsigned slot, unsigned reg)
{
	uint64_t v;
	io_write(f->m.pio, 0xCF8, 4, 0x80000000u | slot << 11 | reg);
	io_read(f->m.pio, 0xCFC, 4, &v);
	return (uint32_t)v;
}

static void test_board(void **state)
{
	struct fixture *f = *state;
	f->cfg.disks[0] = (struct disk_config){ .path = f->img, .format = "raw", .serial = "one" };
	f->cfg.disks[1] = (struct disk_config){ .path = f->img, .readonly = true, .transport = "mmio" };
	f->cfg.n_disks = 2;
	f->cfg.nets[0].spec = "user,transport=mmio";
	f->cfg.nets[1].spec = "user,mac=02:11:22:33:44:55";
	f->cfg.n_nets = 2;
	f->cfg.rng = true;
	f->cfg.console = CONSOLE_VIRTIO;
	assert_non_null(pci_init(&f->m));
	assert_int_equal(virtio_create_devices(&f->m), 0);

	/* PCI: host bridge, then blk, net, console, rng in that order. */
	assert_int_equal(cf8(f, 0, 0), 0x29c08086);
	assert_int_equal(cf8(f, 1, 0), 0x10421af4);
	assert_int_equal(cf8(f, 2, 0), 0x10411af4);
	assert_int_equal(cf8(f, 3, 0), 0x10431af4);
	assert_int_equal(cf8(f, 4, 0), 0x10441af4);
	assert_int_equal(cf8(f, 5, 0), 0xffffffff);
	assert_int_equal(cf8(f, 2, 8) >> 8, 0x020000); /* network class */

	/* virtio-mmio: the read-only disk in slot 0, the first NIC in slot 1. */
	uint64_t v;
	assert_true(io_read(f->m.mmio, VIRTIO_MMIO_BASE, 4, &v));
	assert_int_equal(v, VIRTIO_MMIO_MAGIC);
	io_read(f->m.mmio, VIRTIO_MMIO_BASE + 8, 4, &v);
	assert_int_equal(v, VIRTIO_ID_BLOCK);
	io_read(f->m.mmio, VIRTIO_MMIO_BASE + VIRTIO_MMIO_SLOT + 8, 4, &v);
	assert_int_equal(v, VIRTIO_ID_NET);
	assert_false(io_read(f->m.mmio, VIRTIO_MMIO_BASE + 2 * VIRTIO_MMIO_SLOT, 4, &v));

	char cmdline[256] = "console=ttyS0";
	assert_int_equal(virtio_mmio_cmdline(&f->m, cmdline, sizeof(cmdline)), 0);
	assert_string_equal(cmdline, "console=ttyS0 virtio_mmio.device=4K@0xfe000000:5"
				     " virtio_mmio.device=4K@0xfe001000:6");
	struct virtio_mmio_info info[4];
	assert_int_equal(virtio_mmio_list(&f->m, info, 4), 2);
	assert_int_equal(info[1].base, VIRTIO_MMIO_BASE + VIRTIO_MMIO_SLOT);
	assert_int_equal(info[1].size, 0x1000);
	assert_int_equal(info[1].gsi, VIRTIO_MMIO_GSI_BASE + 1);
	char small[40] = "console=ttyS0";
	assert_int_equal(virtio_mmio_cmdline(&f->m, small, sizeof(small)), -ENOSPC);
	assert_string_equal(small, "console=ttyS0");
}

static void test_bad_options(void **state)
{
	struct fixture *f = *state;
	assert_non_null(pci_init(&f->m));
	f->cfg.disks[0] = (struct disk_config){ .path = "/nonexistent/xvm.img" };
	f->cfg.n_disks = 1;
	assert_int_equal(virtio_create_devices(&f->m), -1);
	machine_run_teardown(&f->m);

	assert_non_null(pci_init(&f->m));
	f->cfg.n_disks = 0;
	f->cfg.nets[0].spec = "user,hostfwd=tcp::notaport-:22";
	f->cfg.n_nets = 1;
	assert_int_equal(virtio_create_devices(&f->m), -1);
	machine_run_teardown(&f->m);

	/* More virtio-mmio devices than slots. */
	assert_non_null(pci_init(&f->m));
	f->cfg.n_nets = 0;
	for (int i = 0; i < 4; i++)
		f->cfg.disks[i] = (struct disk_config){ .path = f->img, .transport = "mmio" };
	f->cfg.n_disks = 4;
	assert_int_equal(virtio_create_devices(&f->m), -1);
}

/* The disk through the real config ports and BARs, MSI-X to the engine. */
static void test_disk_through_pci(void **state)
{
	struct fixture *f = *state;
	f->cfg.disks[0] = (struct disk_config){ .path = f->img, .format = "raw" };
	f->cfg.n_disks = 1;
	assert_non_null(pci_init(&f->m));
	assert_int_equal(virtio_create_devices(&f->m), 0);
	struct io_space *mm = f->m.mmio;
	uint64_t bar4 = (cf8(f, 1, 0x20) & ~0xfu) | (uint64_t)cf8(f, 1, 0x24) << 32;
	uint64_t bar1 = cf8(f, 1, 0x14) & ~0xfu;
	uint64_t common = bar4 + VIRTIO_PCI_COMMON_OFF;
	io_write(mm, common + 0x14, 1, 0);
	io_write(mm, common + 0x14, 1, 3);
	io_write(mm, common + 0x08, 4, 1);
	io_write(mm, common + 0x0c, 4, 1);
	io_write(mm, common + 0x14, 1, 0x0b);
	struct fake_ring r;
	ring_layout(&r, &f->m.ram, 0x10000, 16);
	io_write(mm, common + 0x16, 2, 0);
	io_write(mm, common + 0x18, 2, 16);
	io_write(mm, common + 0x1a, 2, 1);
	io_write(mm, common + 0x20, 8, r.desc);
	io_write(mm, common + 0x28, 8, r.avail);
	io_write(mm, common + 0x30, 8, r.used);
	io_write(mm, common + 0x1c, 2, 1);
	io_write(mm, bar1 + 16, 4, 0xfee00000);
	io_write(mm, bar1 + 24, 4, 0x55);
	io_write(mm, bar1 + 28, 4, 0);
	/* MSI-X enable through the capability. */
	unsigned cap = f->m.pci->slots[1]->msix->cap;
	io_write(f->m.pio, 0xCF8, 4, 0x80000000u | 1u << 11 | cap);
	io_write(f->m.pio, 0xCFE, 2, 0x8000);
	io_write(mm, common + 0x14, 1, 0x0f);

	/* Write sector 2 with a pattern and read it back. */
	put32(&f->m.ram, 0x100000, 1);
	put32(&f->m.ram, 0x100004, 0);
	put64(&f->m.ram, 0x100008, 2);
	memset(hva(&f->m.ram, 0x200000), 0x3c, 512);
	struct fake_buf w[] = { { 0x100000, 16, 0 }, { 0x200000, 512, 0 }, { 0x180000, 1, 1 } };
	ring_add(&r, w, 3);
	msis = 0;
	io_write(mm, bar4 + VIRTIO_PCI_NOTIFY_OFF, 2, 0);
	for (int i = 0; i < 2000 && ring_used_idx(&r) != 1; i++)
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	assert_int_equal(ring_used_idx(&r), 1);
	assert_int_equal(*(uint8_t *)hva(&f->m.ram, 0x180000), 0);
	for (int i = 0; i < 2000 && !msis; i++)
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	assert_true(msis >= 1);
	assert_int_equal(last_msi_data, 0x55);
	FILE *fp = fopen(f->img, "rb");
	uint8_t back[512];
	fseek(fp, 1024, SEEK_SET);
	assert_int_equal(fread(back, 1, 512, fp), 512);
	fclose(fp);
	assert_int_equal(back[0], 0x3c);
	assert_int_equal(back[511], 0x3c);
}

static void *loop_main(void *opaque)
{
	loop_run(opaque);
	return NULL;
}

/* With an engine that offers ioeventfd, doorbells become eventfds served
 * on the event loop: a write to the eventfd alone serves the queue. */
static void test_ioeventfd(void **state)
{
	struct fixture *f = *state;
	f->m.accel = &fake_kvm_accel;
	f->cfg.rng = true;
	assert_non_null(pci_init(&f->m));
	assert_int_equal(virtio_create_devices(&f->m), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, loop_main, f->m.loop), 0);
	struct io_space *mm = f->m.mmio;
	uint64_t bar4 = (cf8(f, 1, 0x20) & ~0xfu) | (uint64_t)cf8(f, 1, 0x24) << 32;
	uint64_t common = bar4 + VIRTIO_PCI_COMMON_OFF;
	io_write(mm, common + 0x14, 1, 3);
	io_write(mm, common + 0x08, 4, 1);
	io_write(mm, common + 0x0c, 4, 1);
	io_write(mm, common + 0x14, 1, 0x0b);
	struct fake_ring r;
	ring_layout(&r, &f->m.ram, 0x10000, 8);
	io_write(mm, common + 0x18, 2, 8);
	io_write(mm, common + 0x20, 8, r.desc);
	io_write(mm, common + 0x28, 8, r.avail);
	io_write(mm, common + 0x30, 8, r.used);
	io_write(mm, common + 0x1c, 2, 1);
	ioevent_fd = -1;
	io_write(mm, common + 0x14, 1, 0x0f);
	assert_true(ioevent_fd >= 0);
	assert_int_equal(ioevent_addr, bar4 + VIRTIO_PCI_NOTIFY_OFF);
	struct fake_buf b[] = { { 0x100000, 16, 1 } };
	ring_add(&r, b, 1);
	uint64_t one = 1;
	assert_int_equal(write(ioevent_fd, &one, 8), 8);
	for (int i = 0; i < 2000 && ring_used_idx(&r) != 1; i++)
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	assert_int_equal(ring_used_idx(&r), 1);
	machine_run_teardown(&f->m); /* while the loop runs, as vm.c does */
	loop_stop(f->m.loop);
	pthread_join(th, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_board, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_through_pci, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ioeventfd, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
