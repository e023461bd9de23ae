/* Placeholder until the subcommand lands; see the issue tracker. */
#include "cli/cli.h"
#include "lib/log.h"

int cmd_nbd(int argc, char **argv)
{
	log_err("'xvm nbd' is not available in this build yet");
	return 1;
}
