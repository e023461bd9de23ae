/* Unit tests for the VM lifecycle (vmm/vm.c) with a scripted fake engine:
 * power-off, reset (the machine is rebuilt), --no-reboot, debug-exit
 * status, engine errors, SIGTERM, several vCPUs, and clean teardown (ASan
 * checks for leaks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accel/accel.h"
#include "lib/util.h"
#include "machine/machine.h"
#include "vmm/vm.h"

enum action { ACT_POWEROFF, ACT_RESET, ACT_EXIT7, ACT_ERROR, ACT_SIGTERM, ACT_NONE };

static struct fake {
	enum action script[4];       /* what vCPU 0 does in generation g */
	bool fail_vm_init;
	int vm_inits, vm_destroys, vcpu_inits, vcpu_destroys, runs, set_states;
	uint64_t boot_rip;
} fake;

static int fake_vm_init(struct machine *m)
{
	if (fake.fail_vm_init)
		return -1;
	__atomic_add_fetch(&fake.vm_inits, 1, __ATOMIC_SEQ_CST);
	m->accel_priv = &fake;
	return 0;
}

static int fake_vcpu_init(struct vcpu *v)
{
	__atomic_add_fetch(&fake.vcpu_inits, 1, __ATOMIC_SEQ_CST);
	v->accel = &fake;
	return 0;
}

static int fake_vcpu_run(struct vcpu *v)
{
	struct machine *m = v->m;
	__atomic_add_fetch(&fake.runs, 1, __ATOMIC_SEQ_CST);
	if (v->index == 0) {
		switch (fake.script[MIN(m->generation, 3u)]) {
		case ACT_POWEROFF: machine_request_stop(m, VM_STOP_POWEROFF, 0); break;
		case ACT_RESET:    machine_request_stop(m, VM_STOP_RESET, 0); break;
		case ACT_EXIT7:    machine_request_stop(m, VM_STOP_EXIT, 7); break;
		case ACT_ERROR:    return -1;
		case ACT_SIGTERM:  kill(getpid(), SIGTERM); break;
		case ACT_NONE:     break;
		}
	}
	while (!machine_should_stop(m))
		usleep(1000);
	return 0;
}

static void fake_kick(struct vcpu *v) {}
static int fake_get_state(struct vcpu *v, struct x86_cpu_state *s) { return 0; }
static int fake_set_state(struct vcpu *v, const struct x86_cpu_state *s)
{
	fake.set_states++;
	fake.boot_rip = s->rip;
	return 0;
}
static void fake_set_irq(struct machine *m, unsigned gsi, int level) {}
static void fake_send_msi(struct machine *m, uint64_t addr, uint32_t data) {}
static int fake_add_fd(struct machine *m, bool pio, uint64_t addr, unsigned len, int fd) { return -95; }
static int fake_add_irqfd(struct machine *m, unsigned gsi, int fd) { return -95; }
static void fake_vcpu_destroy(struct vcpu *v) { fake.vcpu_destroys++; }
static void fake_vm_destroy(struct machine *m) { fake.vm_destroys++; }

static const struct accel_ops fake_ops = {
	.name = "fake",
	.vm_init = fake_vm_init,
	.vcpu_init = fake_vcpu_init,
	.vcpu_run = fake_vcpu_run,
	.vcpu_kick = fake_kick,
	.get_state = fake_get_state,
	.set_state = fake_set_state,
	.set_irq = fake_set_irq,
	.send_msi = fake_send_msi,
	.add_ioeventfd = fake_add_fd,
	.add_irqfd = fake_add_irqfd,
	.vcpu_destroy = fake_vcpu_destroy,
	.vm_destroy = fake_vm_destroy,
};

/* A Multiboot v1 kernel in the a.out-kludge form (header fields give the
 * load addresses), entry 0x100020: enough for the loader; the fake engine
 * never runs it. */
static char kernel_path[] = "/tmp/xvm-test-vm-kernel-XXXXXX";

static int make_kernel(void **state)
{
	uint32_t image[64] = { 0 };
	uint32_t flags = 1u << 16;
	image[0] = 0x1BADB002;
	image[1] = flags;
	image[2] = (uint32_t)-(0x1BADB002u + flags);
	image[3] = 0x100000;            /* header_addr */
	image[4] = 0x100000;            /* load_addr */
	image[5] = 0x100000 + sizeof(image); /* load_end_addr */
	image[6] = 0x100000 + sizeof(image); /* bss_end_addr */
	image[7] = 0x100020;            /* entry_addr */
	image[8] = 0xfeeb;              /* at 0x100020: jmp $ (padded) */
	int fd = mkstemp(kernel_path);
	if (fd < 0 || write(fd, image, sizeof(image)) != (ssize_t)sizeof(image))
		return -1;
	close(fd);
	return 0;
}

static int remove_kernel(void **state)
{
	unlink(kernel_path);
	return 0;
}

static void config(struct vm_config *cfg, unsigned cpus)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->accel = "fake";
	cfg->cpus = cpus;
	cfg->mem_size = 16 * MiB;
	cfg->kernel = kernel_path;
	cfg->console = CONSOLE_NONE;
	memset(&fake, 0, sizeof(fake));
}

static int run(unsigned cpus, bool no_reboot, enum action g0, enum action g1)
{
	struct vm_config cfg;
	config(&cfg, cpus);
	cfg.no_reboot = no_reboot;
	fake.script[0] = g0;
	fake.script[1] = fake.script[2] = fake.script[3] = g1;
	return vm_run_engine(&cfg, &fake_ops);
}

static void check_balanced(void)
{
	assert_int_equal(fake.vm_inits, fake.vm_destroys);
	assert_int_equal(fake.vcpu_inits, fake.vcpu_destroys);
}

static void test_poweroff(void **state)
{
	assert_int_equal(run(1, false, ACT_POWEROFF, ACT_POWEROFF), 0);
	assert_int_equal(fake.vm_inits, 1);
	assert_int_equal(fake.set_states, 1);
	assert_int_equal(fake.boot_rip, 0x100020); /* the loader's entry state */
	check_balanced();
}

static void test_reset_rebuilds(void **state)
{
	/* Reset, then the rebuilt machine exits through "debug-exit" with 7. */
	assert_int_equal(run(2, false, ACT_RESET, ACT_EXIT7), 7);
	assert_int_equal(fake.vm_inits, 2);
	assert_int_equal(fake.vcpu_inits, 4);
	assert_int_equal(fake.runs, 4);
	check_balanced();
}

static void test_no_reboot(void **state)
{
	assert_int_equal(run(1, true, ACT_RESET, ACT_EXIT7), 0);
	assert_int_equal(fake.vm_inits, 1);
	check_balanced();
}

static void test_engine_error(void **state)
{
	assert_int_equal(run(3, false, ACT_ERROR, ACT_ERROR), 1);
	assert_int_equal(fake.vm_inits, 1);
	assert_int_equal(fake.runs, 3);
	check_balanced();
}

static void test_sigterm(void **state)
{
	assert_int_equal(run(2, false, ACT_SIGTERM, ACT_NONE), 128 + SIGTERM);
	check_balanced();
	/* The signal mask is restored: SIGTERM is not left blocked. */
	sigset_t now;
	pthread_sigmask(SIG_BLOCK, NULL, &now);
	assert_false(sigismember(&now, SIGTERM));
}

static void test_many_vcpus(void **state)
{
	assert_int_equal(run(MAX_VCPUS, false, ACT_POWEROFF, ACT_POWEROFF), 0);
	assert_int_equal(fake.runs, MAX_VCPUS);
	check_balanced();
}

static void test_create_failures(void **state)
{
	struct vm_config cfg;
	char err[256] = "";
	config(&cfg, 1);
	fake.fail_vm_init = true;
	assert_null(vm_create(&cfg, &fake_ops, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "fake"));
	assert_int_equal(fake.vm_destroys, 0); /* never created, never destroyed */
	assert_int_equal(vm_run_engine(&cfg, &fake_ops), 1);

	config(&cfg, 0);
	assert_null(vm_create(&cfg, &fake_ops, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "vCPUs"));
	config(&cfg, MAX_VCPUS + 1);
	assert_null(vm_create(&cfg, &fake_ops, 0, err, sizeof(err)));

	config(&cfg, 1);
	cfg.kernel = "/nonexistent/kernel";
	assert_null(vm_create(&cfg, &fake_ops, 0, err, sizeof(err)));
	check_balanced();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_poweroff),
		cmocka_unit_test(test_reset_rebuilds),
		cmocka_unit_test(test_no_reboot),
		cmocka_unit_test(test_engine_error),
		cmocka_unit_test(test_sigterm),
		cmocka_unit_test(test_many_vcpus),
		cmocka_unit_test(test_create_failures),
	};
	return cmocka_run_group_tests(tests, make_kernel, remove_kernel);
}
