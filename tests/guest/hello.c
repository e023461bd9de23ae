/* Serial output and the debug-exit status: prints a greeting, the command
 * line, `lines=N` numbered lines (output integrity), and exits with the
 * code given as `exit=N` (default EXIT_PASS). */
#include "lib.h"

int test_main(void);
int test_main(void)
{
	serial_init();
	gprintf("hello from the xvm guest test kernel\n");
	gprintf("cmdline: [%s]\n", cmdline());
	unsigned long lines = cmdline_ulong("lines", 0);
	for (unsigned long i = 0; i < lines; i++)
		gprintf("line %05lu abcdefghijklmnopqrstuvwxyz0123456789\n", i);
	unsigned long code = cmdline_ulong("exit", EXIT_PASS);
	gprintf("exiting with debug-exit code %lu\n", code);
	if (code == EXIT_PASS)
		gprintf("PASS\n");
	return (int)code;
}
