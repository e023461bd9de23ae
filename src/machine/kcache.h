/* A cache of kernel payloads decompressed on the host.
 *
 * Host decompression of a bzImage's xz payload costs about a second of
 * host time on every boot (Debian's 8 MB payload expands to 66 MB), while
 * the same kernel is usually booted again and again. The decompressed
 * image is kept, recompressed with zstd at a fast level (14 MB, read back
 * in about 0.1 s), under the SHA-256 of the compressed payload:
 *
 *   $XVM_CACHE_DIR, else $XDG_CACHE_HOME/xvm/kernels, else
 *   $HOME/.cache/xvm/kernels   (mode 0700; XVM_CACHE_DIR=off disables)
 *
 * Entries are written to a temporary file and renamed, carry zstd's
 * content checksum (a damaged entry is a miss and is removed) and the
 * directory keeps the KCACHE_MAX_ENTRIES most recently used kernels.
 * Storing runs on a background thread so the boot does not wait for it;
 * kcache_flush() (also run at exit) waits for it to finish. */
#ifndef XVM_MACHINE_KCACHE_H
#define XVM_MACHINE_KCACHE_H

#include <stddef.h>
#include <stdint.h>

#define KCACHE_MAX_ENTRIES 8

/* A payload's name in the cache: its SHA-256 in hex ("" if it could not
 * be computed; the cache is then skipped). Computed once per boot and
 * used for the lookup and, on a miss, the store. */
struct kcache_key {
	char hex[65];
};
void kcache_key(struct kcache_key *k, const uint8_t *payload, size_t len);

/* 1 with *out (malloc'ed) and *out_len (at most max_len) on a hit; 0 on
 * a miss or when the cache is off. */
int kcache_lookup(const struct kcache_key *k, size_t max_len, uint8_t **out, size_t *out_len);

/* Takes ownership of raw (malloc'ed, raw_len bytes) and stores it as the
 * decompressed payload named k, in the background. Best effort: any
 * failure only means a later miss. */
void kcache_store(const struct kcache_key *k, uint8_t *raw, size_t raw_len);

/* Waits for a store in progress. */
void kcache_flush(void);

#endif
