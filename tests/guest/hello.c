/* Serial output and the debug-exit status: prints a greeting, the command
 * line, `lines=N` numbered lines (output integrity), with `echo=1` echoes
 * what arrives on COM1 ("got: ...") until a 'q' (console input), and exits
 * with the code given as `exit=N` (default EXIT_PASS). */
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
	if (cmdline_ulong("echo", 0)) {
		gprintf("echo mode: 'q' ends\n");
		for (;;) {
			while (!(inb(COM1 + 5) & 0x01))
				__asm__ volatile("pause");
			char c = (char)inb(COM1);
			if (c == 'q')
				break;
			gprintf("got: %c (%x)\n", c >= ' ' && c < 127 ? c : '.', (unsigned)(uint8_t)c);
		}
	}
	unsigned long code = cmdline_ulong("exit", EXIT_PASS);
	gprintf("exiting with debug-exit code %lu\n", code);
	if (code == EXIT_PASS)
		gprintf("PASS\n");
	return (int)code;
}
