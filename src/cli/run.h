/* `xvm run` option parsing, exposed for unit tests. */
#ifndef XVM_CLI_RUN_H
#define XVM_CLI_RUN_H

#include <stddef.h>

struct vm_config;

/* Fills cfg (zeroed first, defaults applied) from argv[1..] (argv[0] is
 * the subcommand name). Returns 0 on success, 1 if --help was asked, -1
 * with a one-line message in err[] on bad input. Checks only the options
 * themselves, not the host or the files (see run_check_host). Strings in
 * cfg point into argv or are owned by cfg: free with run_config_free. */
int run_parse_args(int argc, char **argv, struct vm_config *cfg, char *err, size_t len);
/* Checks what depends on the host: the kernel and initrd files are
 * readable regular files, the host has the memory asked for. */
int run_check_host(const struct vm_config *cfg, char *err, size_t len);
void run_config_free(struct vm_config *cfg);
void run_usage(void);

#endif
