/* Unit tests for `xvm run` option parsing (cli/run.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/run.h"
#include "lib/util.h"
#include "machine/machine.h"

#define ARGV(...) ((char *[]){ "run", ##__VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "run", ##__VA_ARGS__ }) / sizeof(char *)))
#define PARSE(cfg, err, ...) run_parse_args(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), cfg, err, sizeof(err))

static void test_defaults(void **state)
{
	struct vm_config c;
	char err[256];
	assert_int_equal(PARSE(&c, err, "--kernel", "k"), 0);
	assert_string_equal(c.kernel, "k");
	assert_string_equal(c.accel, "auto");
	assert_int_equal(c.cpus, 1);
	assert_int_equal(c.mem_size, 512 * MiB);
	assert_int_equal(c.console, CONSOLE_STDIO);
	assert_false(c.debug_exit);
	assert_false(c.no_reboot);
	assert_int_equal(c.n_initrd, 0);
	assert_int_equal(c.n_disks, 0);
	run_config_free(&c);
}

static void test_all_options(void **state)
{
	struct vm_config c;
	char err[256];
	int r = PARSE(&c, err, "--accel=emu", "--cpus", "4", "-m", "2G", "--kernel", "vmlinuz",
		      "--initrd", "a.cpio,b.cpio", "--append", "console=ttyS0 quiet",
		      "--console", "file=/tmp/log", "--debug-exit", "--no-reboot", "--name", "web-1",
		      "--disk", "path=d.qcow2,format=qcow2,readonly=on,serial=ABC",
		      "--disk", "raw.img", "--net", "user", "--rng", "-v");
	assert_int_equal(r, 0);
	assert_string_equal(c.accel, "emu");
	assert_int_equal(c.cpus, 4);
	assert_int_equal(c.mem_size, 2 * GiB);
	assert_int_equal(c.n_initrd, 2);
	assert_string_equal(c.initrd[0], "a.cpio");
	assert_string_equal(c.initrd[1], "b.cpio");
	assert_string_equal(c.append, "console=ttyS0 quiet");
	assert_int_equal(c.console, CONSOLE_FILE);
	assert_string_equal(c.console_path, "/tmp/log");
	assert_true(c.debug_exit);
	assert_true(c.no_reboot);
	assert_string_equal(c.name, "web-1");
	assert_int_equal(c.n_disks, 2);
	assert_string_equal(c.disks[0].path, "d.qcow2");
	assert_string_equal(c.disks[0].format, "qcow2");
	assert_true(c.disks[0].readonly);
	assert_string_equal(c.disks[0].serial, "ABC");
	assert_string_equal(c.disks[1].path, "raw.img");
	assert_null(c.disks[1].format);
	assert_false(c.disks[1].readonly);
	assert_int_equal(c.n_nets, 1);
	assert_string_equal(c.nets[0].spec, "user");
	assert_true(c.rng);
	assert_true(c.verbose);
	run_config_free(&c);
}

static void test_help(void **state)
{
	struct vm_config c;
	char err[256];
	assert_int_equal(PARSE(&c, err, "--help"), 1);
	run_config_free(&c);
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "-h"), 1);
	run_config_free(&c);
}

/* Each bad input is refused with a message naming the culprit. */
static void expect_error(int argc, char **argv, const char *needle)
{
	struct vm_config c;
	char err[256];
	assert_int_equal(run_parse_args(argc, argv, &c, err, sizeof(err)), -1);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not mention '%s'", err, needle);
	assert_null(strchr(err, '\n'));
	run_config_free(&c);
}
#define EXPECT_ERROR(needle, ...) expect_error(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), needle)

static void test_bad_input(void **state)
{
	EXPECT_ERROR("no kernel");
	EXPECT_ERROR("no kernel", "--cpus", "2");
	EXPECT_ERROR("--bogus", "--kernel", "k", "--bogus");
	EXPECT_ERROR("-x", "--kernel", "k", "-x");
	EXPECT_ERROR("stray", "--kernel", "k", "stray");
	EXPECT_ERROR("needs a value", "--kernel");
	EXPECT_ERROR("needs a value", "--kernel", "k", "--memory");
	EXPECT_ERROR("takes no value", "--kernel", "k", "--rng=yes");
	EXPECT_ERROR("--accel xen", "--kernel", "k", "--accel", "xen");
	EXPECT_ERROR("--cpus 0", "--kernel", "k", "--cpus", "0");
	EXPECT_ERROR("--cpus 65", "--kernel", "k", "--cpus", "65");
	EXPECT_ERROR("--cpus two", "--kernel", "k", "--cpus", "two");
	EXPECT_ERROR("--cpus -1", "--kernel", "k", "--cpus", "-1");
	EXPECT_ERROR("--memory lots", "--kernel", "k", "--memory", "lots");
	EXPECT_ERROR("--memory 1M", "--kernel", "k", "--memory", "1M");
	EXPECT_ERROR("--memory 2T", "--kernel", "k", "--memory", "2T");
	EXPECT_ERROR("--memory 3000000", "--kernel", "k", "--memory", "3000000");
	EXPECT_ERROR("--memory 99999999999999999999", "--kernel", "k", "--memory", "99999999999999999999");
	EXPECT_ERROR("--console tty", "--kernel", "k", "--console", "tty");
	EXPECT_ERROR("--console file=", "--kernel", "k", "--console", "file=");
	EXPECT_ERROR("--initrd", "--kernel", "k", "--initrd", "a,,b");
	EXPECT_ERROR("--initrd", "--kernel", "k", "--initrd", "");
	EXPECT_ERROR("--name", "--kernel", "k", "--name", "a b");
	EXPECT_ERROR("--name", "--kernel", "k", "--name", "");
	EXPECT_ERROR("format", "--kernel", "k", "--disk", "path=a,format=vmdk");
	EXPECT_ERROR("no path", "--kernel", "k", "--disk", "format=raw");
	EXPECT_ERROR("unknown key 'cache=none'", "--kernel", "k", "--disk", "path=a,cache=none");
	EXPECT_ERROR("readonly", "--kernel", "k", "--disk", "path=a,readonly=maybe");
	EXPECT_ERROR("serial", "--kernel", "k", "--disk", "path=a,serial=012345678901234567890");
	EXPECT_ERROR("--net", "--kernel", "k", "--net", "");
}

static void test_limits(void **state)
{
	struct vm_config c;
	char err[256];
	/* 17 initrd files, one too many. */
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--initrd",
			       "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"), -1);
	assert_non_null(strstr(err, "at most 16"));
	run_config_free(&c);
	/* 17 disks. */
	char *argv[3 + 2 * (MAX_DISKS + 1) + 1];
	int argc = 0;
	argv[argc++] = "run";
	argv[argc++] = "--kernel";
	argv[argc++] = "k";
	for (int i = 0; i <= MAX_DISKS; i++) {
		argv[argc++] = "--disk";
		argv[argc++] = "path=x";
	}
	argv[argc] = NULL;
	assert_int_equal(run_parse_args(argc, argv, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "at most"));
	run_config_free(&c);
	/* Command line at the limit of the boot protocol buffer. */
	char *big = malloc(70000);
	memset(big, 'a', 69999);
	big[69999] = 0;
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--append", big), -1);
	run_config_free(&c);
	big[1000] = 0;
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--append", big), 0);
	run_config_free(&c);
	free(big);
	/* The last of repeated single options wins. */
	assert_int_equal(PARSE(&c, err, "--kernel", "a", "--kernel", "b", "--cpus", "2", "--cpus", "64"), 0);
	assert_string_equal(c.kernel, "b");
	assert_int_equal(c.cpus, 64);
	run_config_free(&c);
}

static void test_check_host(void **state)
{
	struct vm_config c;
	char err[256];
	char path[] = "/tmp/xvm-test-kernel-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);

	assert_int_equal(PARSE(&c, err, "--kernel", path), 0);
	assert_int_equal(run_check_host(&c, err, sizeof(err)), -1); /* empty file */
	assert_non_null(strstr(err, "empty"));
	assert_int_equal(write(fd, "x", 1), 1);
	assert_int_equal(run_check_host(&c, err, sizeof(err)), 0);
	run_config_free(&c);

	assert_int_equal(PARSE(&c, err, "--kernel", "/nonexistent/vmlinuz"), 0);
	assert_int_equal(run_check_host(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/vmlinuz"));
	run_config_free(&c);

	assert_int_equal(PARSE(&c, err, "--kernel", "/tmp"), 0);
	assert_int_equal(run_check_host(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));
	run_config_free(&c);

	assert_int_equal(PARSE(&c, err, "--kernel", path, "--initrd", "/nonexistent/initrd"), 0);
	assert_int_equal(run_check_host(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--initrd"));
	run_config_free(&c);

	/* More memory than any test host has. */
	assert_int_equal(PARSE(&c, err, "--kernel", path, "--memory", "1T"), 0);
	assert_int_equal(run_check_host(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "this host has only"));
	run_config_free(&c);

	close(fd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_options),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_check_host),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
