/* Small helpers shared by every layer. */
#ifndef XVM_LIB_UTIL_H
#define XVM_LIB_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((__typeof__(x))(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))
#define IS_POW2(x) ((x) != 0 && ((x) & ((x) - 1)) == 0)
#define KiB (1024ULL)
#define MiB (1024ULL * KiB)
#define GiB (1024ULL * MiB)

/* Allocation that dies with a message instead of returning NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* Asks for transparent huge pages on the 2 MiB-aligned part of a large
 * buffer about to be filled (one fault per 2 MiB instead of per 4 KiB:
 * tens of milliseconds for a decompressed kernel). Best effort. */
void advise_huge(void *p, size_t n);

/* "512M", "2G", "4096", "1.5G" -> bytes. Suffixes K M G T (powers of 1024),
 * optional trailing 'B' or 'iB'. Returns false on junk or overflow. */
bool parse_size(const char *s, uint64_t *out);
/* Decimal or 0x-hex unsigned integer; false on junk or overflow. */
bool parse_u64(const char *s, uint64_t *out);
/* Formats bytes as "512 MiB", "1.5 GiB". */
void format_size(uint64_t bytes, char *buf, size_t len);

/* Monotonic clock in nanoseconds. */
uint64_t clock_ns(void);

/* read/write that retry on EINTR and short transfers; return 0 or -errno. */
int read_full(int fd, void *buf, size_t len);
int write_full(int fd, const void *buf, size_t len);
int pread_full(int fd, void *buf, size_t len, uint64_t off);
int pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

/* Reads a whole file (at most max bytes). Returns 0 or -errno (-EFBIG if larger). */
int read_file(const char *path, uint8_t **data, size_t *len, size_t max);

/* Splits "key=val,key2=val2" style option strings. Returns the next item in
 * *item (NUL-terminated, modified in place) or NULL at the end. */
char *opt_next(char **cursor);
/* For an item "key=value": true if key matches, *value set (NULL if no '='). */
bool opt_key(char *item, const char *key, char **value);

#endif
