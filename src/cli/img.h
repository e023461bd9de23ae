/* Shared pieces of `xvm img` subcommands (src/cli/img*.c). */
#ifndef XVM_CLI_IMG_H
#define XVM_CLI_IMG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "block/block.h"

/* Buffer size for copying loops: big enough to amortize syscalls and
 * block status calls, small enough for several in flight. */
#define IMG_CHUNK (2u << 20)

/* Opens an image; on failure prints one line and returns NULL. */
struct blockdev *img_open(const char *path, const char *fmt, unsigned flags);
/* Path of a backing file as a user means it: relative to the directory of
 * the image that names it. Returns a malloc'ed string. */
char *img_backing_path(const char *image, const char *backing);
/* True if len bytes at buf are all zero. */
bool img_is_zero(const void *buf, size_t len);
/* Parses "k=v,k2=v2" creation options into o (which the caller set to its
 * defaults); strings point into opts. Prints the error and returns false
 * on an unknown key or bad value. */
bool img_parse_create_opts(char *opts, struct block_create_opts *o);
/* "    (12.34/100%)\r" on stdout, at most every 1% */
void img_progress(uint64_t done, uint64_t total, bool enabled);
/* After getopt returned c ('?' or ':', optstrings start with "+:"): one
 * line naming the bad option; returns rc. */
int img_bad_option(char **argv, int c, int rc);
/* Common wording for help on a subcommand. */
bool img_want_help(int argc, char **argv);

int img_cmd_convert(int argc, char **argv);
int img_cmd_compare(int argc, char **argv);
int img_cmd_map(int argc, char **argv);
int img_cmd_rebase(int argc, char **argv);
int img_cmd_commit(int argc, char **argv);

#endif
