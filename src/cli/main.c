/* xvm: a virtual machine monitor. Dispatches to one subcommand. */
#include "cli/cli.h"
#include "lib/log.h"

#include <stdio.h>
#include <string.h>

#define XVM_VERSION "0.1.0"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
} commands[] = {
	{ "run", cmd_run, "boot a virtual machine (see 'xvm run --help')" },
	{ "ok",  cmd_ok,  "check and measure this host's virtualization support" },
	{ "img", cmd_img, "create, inspect, convert and repair disk images (raw, qcow2)" },
	{ "nbd", cmd_nbd, "export a disk image over NBD" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: xvm [--version] [--help] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-5s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'xvm COMMAND --help' describes each command.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("xvm %s\n", XVM_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	log_err("unknown command '%s' (try 'xvm --help')", argv[1]);
	return 2;
}
