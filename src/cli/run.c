/* xvm run: boot a virtual machine. Parses the command line into a
 * struct vm_config, checks it against the host, and hands it to vmm/vm.c. */
#include "cli/cli.h"
#include "cli/run.h"
#include "lib/log.h"
#include "lib/util.h"
#include "machine/layout.h"
#include "machine/machine.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#define DEFAULT_MEMORY   (512 * MiB)
#define MIN_MEMORY       (2 * MiB)       /* below 1 MiB + a kernel, nothing boots */
#define MAX_MEMORY       (1024 * GiB)    /* guest_ram_init's limit */
#define MAX_NAME_LEN     64
#define MAX_DISK_SERIAL  20              /* virtio-blk ID string */

void run_usage(void)
{
	printf(
"usage: xvm run [OPTIONS] --kernel FILE\n"
"\n"
"Boots a virtual machine on the KVM engine or the software CPU.\n"
"\n"
"  --kernel FILE         kernel to boot: Linux bzImage, ELF vmlinux, PVH ELF or\n"
"                        Multiboot v1 (picked by content)\n"
"  --initrd FILE[,FILE...]\n"
"                        initial ramdisk(s), concatenated (Multiboot: one module each)\n"
"  --append CMDLINE      kernel command line\n"
"  --memory SIZE         guest RAM, e.g. 512M, 2G (default 512M)\n"
"  --cpus N              number of vCPUs, 1..%d (default 1)\n"
"  --accel auto|kvm|emu  engine: KVM, the software CPU, or auto (default): KVM\n"
"                        where it runs guest supervisor code natively, else emu\n"
"  --console MODE        stdio (default: terminal in raw mode, Ctrl-a x quits),\n"
"                        none, file=PATH (serial output to PATH), virtio\n"
"  --debug-exit          port 0xF4 device: a write of V exits with status (V<<1)|1\n"
"  --no-reboot           exit with status 0 when the guest resets instead of\n"
"                        restarting it\n"
"  --name NAME           name of the VM (shown in its log lines)\n"
"  --disk path=FILE[,format=raw|qcow2][,readonly=on][,serial=ID][,transport=pci|mmio]\n"
"                        virtio block device (repeatable, up to %d)\n"
"  --net SPEC            virtio network device (repeatable, up to %d); SPEC is\n"
"                        user[,hostfwd=tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT...]\n"
"                          (libslirp, no root: DHCP 10.0.2.15, host at 10.0.2.2)\n"
"                        or tap=IFNAME (an existing TAP interface)\n"
"                        then [,mac=XX:XX:XX:XX:XX:XX][,transport=pci|mmio]\n"
"  --rng                 virtio entropy device\n"
"  -v, --verbose         debug log (engine choice, device map ...)\n"
"  -h, --help            this text\n"
"\n"
"Exit status: 0 when the guest powers off (or resets with --no-reboot), the\n"
"debug-exit status, 128+N when stopped by signal N, 1 on an error.\n"
"\n"
"Environment:\n"
"  XVM_CACHE_DIR=DIR|off   where host-decompressed kernels are kept (default\n"
"                          ~/.cache/xvm/kernels), or no cache\n"
"  XVM_EMU_JIT=0|1         software CPU: translate hot code to host code\n"
"                          (default 1; 0: the interpreter alone)\n"
"  XVM_EMU_STATS=1         software CPU: counters and a guest time profile\n"
"                          at exit (XVM_EMU_STATS_DUMP=FILE: raw RIP samples)\n"
"  XVM_EMU_TRACE=1         software CPU: the last instructions and registers\n"
"                          of each vCPU at exit\n",
	       MAX_VCPUS, MAX_DISKS, MAX_NETS);
}

static int fail(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

static bool parse_on_off(const char *v, bool *out)
{
	if (!v || !strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1")) {
		*out = true;
		return true;
	}
	if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0")) {
		*out = false;
		return true;
	}
	return false;
}

static int parse_disk(struct vm_config *cfg, const char *spec, char *err, size_t len)
{
	if (cfg->n_disks >= MAX_DISKS)
		return fail(err, len, "--disk: at most %d disks", MAX_DISKS);
	struct disk_config d = { 0 };
	char *copy = xstrdup(spec), *cur = copy, *item, *val;
	int r = -1;
	while ((item = opt_next(&cur))) {
		if (opt_key(item, "path", &val) || opt_key(item, "file", &val)) {
			if (!val || !*val) {
				fail(err, len, "--disk %s: empty path", spec);
				goto out;
			}
			free(d.path);
			d.path = xstrdup(val);
		} else if (opt_key(item, "format", &val)) {
			if (!val || (strcmp(val, "raw") && strcmp(val, "qcow2"))) {
				fail(err, len, "--disk %s: format must be raw or qcow2", spec);
				goto out;
			}
			free(d.format);
			d.format = xstrdup(val);
		} else if (opt_key(item, "readonly", &val) || opt_key(item, "ro", &val)) {
			if (!parse_on_off(val, &d.readonly)) {
				fail(err, len, "--disk %s: readonly must be on or off", spec);
				goto out;
			}
		} else if (opt_key(item, "serial", &val)) {
			if (!val || strlen(val) > MAX_DISK_SERIAL) {
				fail(err, len, "--disk %s: serial must be 1 to %d characters",
				     spec, MAX_DISK_SERIAL);
				goto out;
			}
			for (const char *c = val; *c; c++)
				if (*c < 0x21 || *c > 0x7e) {
					fail(err, len, "--disk %s: serial must be printable ASCII", spec);
					goto out;
				}
			free(d.serial);
			d.serial = xstrdup(val);
		} else if (opt_key(item, "transport", &val)) {
			if (!val || (strcmp(val, "pci") && strcmp(val, "mmio"))) {
				fail(err, len, "--disk %s: transport must be pci or mmio", spec);
				goto out;
			}
			free(d.transport);
			d.transport = xstrdup(val);
		} else if (!strchr(item, '=') && !d.path && item == copy) {
			d.path = xstrdup(item); /* --disk FILE,... */
		} else {
			fail(err, len, "--disk %s: unknown key '%s' (path, format, readonly, serial, transport)",
			     spec, item);
			goto out;
		}
	}
	if (!d.path) {
		fail(err, len, "--disk %s: no path=FILE given", spec);
		goto out;
	}
	cfg->disks[cfg->n_disks++] = d;
	r = 0;
out:
	if (r < 0) {
		free(d.path);
		free(d.format);
		free(d.serial);
		free(d.transport);
	}
	free(copy);
	return r;
}

static int parse_initrds(struct vm_config *cfg, char *list, char *err, size_t len)
{
	/* Files point into argv: split in a copy to find the pieces, then
	 * keep them in an owned buffer (argv stays untouched). */
	char *copy = xstrdup(list), *cur = copy, *item;
	cfg->n_initrd = 0;
	free(cfg->initrd_list);
	cfg->initrd_list = copy;
	while ((item = opt_next(&cur))) {
		if (!*item)
			return fail(err, len, "--initrd %s: empty file name", list);
		if (cfg->n_initrd >= MAX_INITRDS)
			return fail(err, len, "--initrd: at most %d files", MAX_INITRDS);
		cfg->initrd[cfg->n_initrd++] = item;
	}
	if (cfg->n_initrd == 0)
		return fail(err, len, "--initrd: no file given");
	return 0;
}

static int parse_console(struct vm_config *cfg, const char *v, char *err, size_t len)
{
	cfg->console_path = NULL;
	if (!strcmp(v, "stdio"))
		cfg->console = CONSOLE_STDIO;
	else if (!strcmp(v, "none"))
		cfg->console = CONSOLE_NONE;
	else if (!strcmp(v, "virtio"))
		cfg->console = CONSOLE_VIRTIO;
	else if (!strncmp(v, "file=", 5) && v[5]) {
		cfg->console = CONSOLE_FILE;
		cfg->console_path = v + 5;
	} else
		return fail(err, len, "--console %s: use stdio, none, file=PATH or virtio", v);
	return 0;
}

static int parse_cpus(struct vm_config *cfg, const char *v, char *err, size_t len)
{
	uint64_t n;
	if (!parse_u64(v, &n) || n < 1 || n > MAX_VCPUS)
		return fail(err, len, "--cpus %s: must be a number from 1 to %d", v, MAX_VCPUS);
	cfg->cpus = (unsigned)n;
	return 0;
}

static int parse_memory(struct vm_config *cfg, const char *v, char *err, size_t len)
{
	uint64_t n;
	if (!parse_size(v, &n))
		return fail(err, len, "--memory %s: not a size (use e.g. 512M or 2G)", v);
	if (n < MIN_MEMORY)
		return fail(err, len, "--memory %s: at least 2 MiB is needed", v);
	if (n > MAX_MEMORY)
		return fail(err, len, "--memory %s: at most 1 TiB is supported", v);
	if (n % (4 * KiB))
		return fail(err, len, "--memory %s: must be a multiple of 4 KiB", v);
	cfg->mem_size = n;
	return 0;
}

static int parse_name(struct vm_config *cfg, const char *v, char *err, size_t len)
{
	size_t n = strlen(v);
	if (n == 0 || n > MAX_NAME_LEN)
		return fail(err, len, "--name: must be 1 to %d characters", MAX_NAME_LEN);
	for (const char *c = v; *c; c++)
		if (!(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z') &&
		    !(*c >= '0' && *c <= '9') && !strchr("-_.", *c))
			return fail(err, len, "--name %s: use letters, digits, '-', '_' and '.'", v);
	cfg->name = v;
	return 0;
}

enum opt_id {
	OPT_ACCEL, OPT_CPUS, OPT_MEMORY, OPT_KERNEL, OPT_INITRD, OPT_APPEND, OPT_CONSOLE,
	OPT_DEBUG_EXIT, OPT_NO_REBOOT, OPT_NAME, OPT_DISK, OPT_NET, OPT_RNG, OPT_VERBOSE,
	OPT_HELP,
};

static const struct run_option {
	const char *name;
	char short_name;
	bool takes_value;
	enum opt_id id;
} run_options[] = {
	{ "accel",      0,   true,  OPT_ACCEL },
	{ "cpus",       0,   true,  OPT_CPUS },
	{ "smp",        0,   true,  OPT_CPUS },
	{ "memory",     'm', true,  OPT_MEMORY },
	{ "kernel",     'k', true,  OPT_KERNEL },
	{ "initrd",     0,   true,  OPT_INITRD },
	{ "append",     0,   true,  OPT_APPEND },
	{ "console",    0,   true,  OPT_CONSOLE },
	{ "debug-exit", 0,   false, OPT_DEBUG_EXIT },
	{ "no-reboot",  0,   false, OPT_NO_REBOOT },
	{ "name",       0,   true,  OPT_NAME },
	{ "disk",       0,   true,  OPT_DISK },
	{ "net",        0,   true,  OPT_NET },
	{ "rng",        0,   false, OPT_RNG },
	{ "verbose",    'v', false, OPT_VERBOSE },
	{ "help",       'h', false, OPT_HELP },
};

/* Finds the option argv[i] names. "--name=value" sets *inline_value. */
static const struct run_option *find_option(const char *arg, const char **inline_value)
{
	*inline_value = NULL;
	if (arg[0] == '-' && arg[1] != '-' && arg[1] && !arg[2]) {
		for (size_t i = 0; i < ARRAY_SIZE(run_options); i++)
			if (run_options[i].short_name == arg[1])
				return &run_options[i];
		return NULL;
	}
	if (strncmp(arg, "--", 2))
		return NULL;
	const char *name = arg + 2;
	size_t n = strcspn(name, "=");
	for (size_t i = 0; i < ARRAY_SIZE(run_options); i++) {
		if (strlen(run_options[i].name) == n && !strncmp(run_options[i].name, name, n)) {
			if (name[n] == '=')
				*inline_value = name + n + 1;
			return &run_options[i];
		}
	}
	return NULL;
}

int run_parse_args(int argc, char **argv, struct vm_config *cfg, char *err, size_t len)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->accel = "auto";
	cfg->cpus = 1;
	cfg->mem_size = DEFAULT_MEMORY;
	cfg->console = CONSOLE_STDIO;
	err[0] = '\0';

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value;
		const struct run_option *o = find_option(arg, &value);
		if (!o) {
			if (arg[0] == '-')
				return fail(err, len, "unknown option '%s' (see 'xvm run --help')", arg);
			return fail(err, len, "unexpected argument '%s' (the kernel is given with --kernel)", arg);
		}
		if (o->takes_value && !value) {
			if (i + 1 >= argc)
				return fail(err, len, "option '%s' needs a value", arg);
			value = argv[++i];
		} else if (!o->takes_value && value) {
			return fail(err, len, "option '--%s' takes no value", o->name);
		}
		int r = 0;
		switch (o->id) {
		case OPT_ACCEL:
			if (strcmp(value, "auto") && strcmp(value, "kvm") && strcmp(value, "emu"))
				return fail(err, len, "--accel %s: use auto, kvm or emu", value);
			cfg->accel = value;
			break;
		case OPT_CPUS:
			r = parse_cpus(cfg, value, err, len);
			break;
		case OPT_MEMORY:
			r = parse_memory(cfg, value, err, len);
			break;
		case OPT_KERNEL:
			if (!*value)
				return fail(err, len, "--kernel: empty file name");
			cfg->kernel = value;
			break;
		case OPT_INITRD:
			r = parse_initrds(cfg, (char *)value, err, len);
			break;
		case OPT_APPEND:
			if (strlen(value) >= BOOT_CMDLINE_MAX)
				return fail(err, len, "--append: command line longer than %llu bytes",
					    BOOT_CMDLINE_MAX - 1);
			cfg->append = value;
			break;
		case OPT_CONSOLE:
			r = parse_console(cfg, value, err, len);
			break;
		case OPT_DEBUG_EXIT:
			cfg->debug_exit = true;
			break;
		case OPT_NO_REBOOT:
			cfg->no_reboot = true;
			break;
		case OPT_NAME:
			r = parse_name(cfg, value, err, len);
			break;
		case OPT_DISK:
			r = parse_disk(cfg, value, err, len);
			break;
		case OPT_NET:
			if (cfg->n_nets >= MAX_NETS)
				return fail(err, len, "--net: at most %d network devices", MAX_NETS);
			if (!*value)
				return fail(err, len, "--net: empty specification");
			cfg->nets[cfg->n_nets++].spec = xstrdup(value);
			break;
		case OPT_RNG:
			cfg->rng = true;
			break;
		case OPT_VERBOSE:
			cfg->verbose = true;
			break;
		case OPT_HELP:
			return 1;
		}
		if (r < 0)
			return -1;
	}
	if (!cfg->kernel)
		return fail(err, len, "no kernel given (use --kernel FILE; see 'xvm run --help')");
	return 0;
}

static int check_readable_file(const char *what, const char *path, char *err, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, len, "%s %s: %s", what, path, strerror(errno));
	struct stat st;
	int r = fstat(fd, &st);
	close(fd);
	if (r < 0)
		return fail(err, len, "%s %s: %s", what, path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(err, len, "%s %s: not a regular file", what, path);
	if (st.st_size == 0)
		return fail(err, len, "%s %s: empty file", what, path);
	return 0;
}

int run_check_host(const struct vm_config *cfg, char *err, size_t len)
{
	if (check_readable_file("--kernel", cfg->kernel, err, len) < 0)
		return -1;
	for (unsigned i = 0; i < cfg->n_initrd; i++)
		if (check_readable_file("--initrd", cfg->initrd[i], err, len) < 0)
			return -1;
	struct sysinfo si;
	if (sysinfo(&si) == 0) {
		uint64_t host = (uint64_t)si.totalram * si.mem_unit;
		if (cfg->mem_size > host) {
			char want[32], have[32];
			format_size(cfg->mem_size, want, sizeof(want));
			format_size(host, have, sizeof(have));
			return fail(err, len, "--memory %s: this host has only %s of RAM", want, have);
		}
	}
	return 0;
}

void run_config_free(struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->n_disks; i++) {
		free(cfg->disks[i].path);
		free(cfg->disks[i].format);
		free(cfg->disks[i].serial);
		free(cfg->disks[i].transport);
	}
	for (unsigned i = 0; i < cfg->n_nets; i++)
		free(cfg->nets[i].spec);
	free(cfg->initrd_list);
	memset(cfg, 0, sizeof(*cfg));
}

int cmd_run(int argc, char **argv)
{
	struct vm_config cfg;
	char err[512];
	int r = run_parse_args(argc, argv, &cfg, err, sizeof(err));
	if (r == 1) {
		run_usage();
		run_config_free(&cfg);
		return 0;
	}
	if (r == 0)
		log_set_name(cfg.name);
	if (r < 0 || run_check_host(&cfg, err, sizeof(err)) < 0) {
		log_err("%s", err);
		run_config_free(&cfg);
		return r < 0 ? 2 : 1;
	}
	if (cfg.verbose)
		xvm_log_level = LOG_DEBUG;
	int status = vm_run(&cfg);
	run_config_free(&cfg);
	return status;
}
