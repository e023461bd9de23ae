/* Placeholder until the subcommand lands; see the issue tracker. */
#include "cli/cli.h"
#include "lib/log.h"

int cmd_ok(int argc, char **argv)
{
	log_err("'xvm ok' is not available in this build yet");
	return 1;
}
