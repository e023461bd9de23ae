/* Subcommands of the xvm binary: one file each under src/cli/. Each takes
 * argc/argv starting at the subcommand name and returns the exit status. */
#ifndef XVM_CLI_CLI_H
#define XVM_CLI_CLI_H

int cmd_run(int argc, char **argv);
int cmd_img(int argc, char **argv);
int cmd_nbd(int argc, char **argv);
int cmd_ok(int argc, char **argv);

#endif
