/* Block-device API: one interface over every image format (raw, qcow2).
 * Used by virtio-blk, `xvm img` and `xvm nbd` alike; knows nothing about
 * any of them. All calls are synchronous and thread-safe: several threads
 * may issue requests on one blockdev at once.
 * Return values: 0 (or a count) on success, -errno on failure; functions
 * that can fail for a reason worth telling a user also fill err. */
#ifndef XVM_BLOCK_BLOCK_H
#define XVM_BLOCK_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct blockdev;

enum {
	BLOCK_OPEN_RDONLY     = 1 << 0,
	BLOCK_OPEN_NO_BACKING = 1 << 1, /* do not open the backing chain */
	BLOCK_OPEN_DIRECT     = 1 << 2, /* O_DIRECT where the host allows */
};

/* Block status flags for a range. A raw hole or a qcow2 cluster that is
 * unallocated with no backing file reads as ZERO without ALLOCATED; an
 * unallocated qcow2 range over a backing file reports the backing's DATA/ZERO
 * bits, never ALLOCATED; a qcow2 zero cluster is ZERO|ALLOCATED. */
enum {
	BLOCK_STATUS_DATA      = 1 << 0, /* reads return stored data */
	BLOCK_STATUS_ZERO      = 1 << 1, /* reads return zeros */
	BLOCK_STATUS_ALLOCATED = 1 << 2, /* allocated in this image (not the backing file) */
	BLOCK_STATUS_COMPRESSED = 1 << 3, /* block_map only: stored compressed */
};

/* Write-zeroes flags. */
enum {
	BLOCK_ZERO_MAY_UNMAP = 1 << 0,
};

/* format NULL = probe by content. err gets a one-line reason on failure. */
int block_open(const char *path, const char *format, unsigned flags,
	       struct blockdev **out, char *err, size_t errlen);
/* Flushes and closes; returns the flush result. */
int block_close(struct blockdev *bd);

uint64_t block_size(struct blockdev *bd);
const char *block_format_name(struct blockdev *bd);
bool block_readonly(struct blockdev *bd);
/* Smallest request alignment that avoids read-modify-write (512 for most). */
unsigned block_alignment(struct blockdev *bd);

int block_pread(struct blockdev *bd, void *buf, uint64_t len, uint64_t off);
int block_pwrite(struct blockdev *bd, const void *buf, uint64_t len, uint64_t off);
int block_flush(struct blockdev *bd);
int block_discard(struct blockdev *bd, uint64_t off, uint64_t len);
int block_write_zeroes(struct blockdev *bd, uint64_t off, uint64_t len, unsigned flags);
/* Status of the range starting at off: *pnum = how many bytes (>0, <= len)
 * share *status. */
int block_status(struct blockdev *bd, uint64_t off, uint64_t len,
		 uint64_t *pnum, unsigned *status);
int block_resize(struct blockdev *bd, uint64_t new_size);
/* This image alone, for `xvm img map`: like block_status, but the backing
 * chain is not consulted (a range this image does not provide reports 0;
 * everything in a raw image is ALLOCATED), and *host_off is where the data
 * lives in this image's own file, UINT64_MAX if it has no place there (zero,
 * unallocated or compressed). Drivers without a map op report no offsets. */
int block_map(struct blockdev *bd, uint64_t off, uint64_t len,
	      uint64_t *pnum, unsigned *status, uint64_t *host_off);


/* ---- Image management (used by `xvm img`); formats without a feature
 * return -ENOTSUP with a message in err. ---- */

struct block_create_opts {
	const char *format;        /* "raw" or "qcow2" */
	uint64_t size;             /* 0 with a backing file = the backing's size */
	const char *backing;       /* qcow2 only */
	const char *backing_format;
	uint32_t cluster_size;     /* qcow2; 0 = 64 KiB */
	unsigned refcount_bits;    /* qcow2; 0 = 16 */
	unsigned compat_v2;        /* qcow2 version 2 header if non-zero */
	const char *compression;   /* qcow2: NULL/"zlib" or "zstd" */
	bool preallocate_metadata;
};
int block_create(const char *path, const struct block_create_opts *opts, char *err, size_t errlen);

struct block_info {
	char format[16];
	uint64_t virtual_size;
	uint64_t actual_size;      /* bytes the host file occupies */
	uint32_t cluster_size;     /* 0 for raw */
	unsigned qcow2_version;
	unsigned refcount_bits;
	char backing[4096];        /* as stored in the header, "" if none */
	char backing_format[16];
	char compression[8];
	bool dirty, corrupt;
	unsigned n_snapshots;
};
int block_get_info(struct blockdev *bd, struct block_info *info);
/* The opened backing image (NULL if none or opened without backing). */
struct blockdev *block_backing(struct blockdev *bd);
/* Rewrites the backing-file reference in the header (rebase -u). */
int block_set_backing(struct blockdev *bd, const char *backing, const char *backing_format,
		      char *err, size_t errlen);

/* Writes one whole cluster compressed (qcow2). off and len must be
 * cluster-aligned with len == cluster size, except a short final cluster. */
int block_pwrite_compressed(struct blockdev *bd, const void *buf, uint64_t len, uint64_t off);

struct block_snapshot {
	char id[32];
	char name[256];
	uint64_t vm_state_size;
	uint32_t date_sec, date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t disk_size;
};
/* *list is malloc'ed; free() it. */
int block_snapshot_list(struct blockdev *bd, struct block_snapshot **list, unsigned *n);
int block_snapshot_create(struct blockdev *bd, const char *name, char *err, size_t errlen);
int block_snapshot_apply(struct blockdev *bd, const char *name_or_id, char *err, size_t errlen);
int block_snapshot_delete(struct blockdev *bd, const char *name_or_id, char *err, size_t errlen);

enum { BLOCK_FIX_LEAKS = 1, BLOCK_FIX_ERRORS = 2 };
struct block_check_result {
	uint64_t corruptions, leaks, check_errors;
	uint64_t corruptions_fixed, leaks_fixed;
	uint64_t allocated_clusters, total_clusters, fragmented_clusters, compressed_clusters;
	uint64_t image_end_offset;
	char first_problem[256];   /* the first corruption found, for messages */
};
int block_check(struct blockdev *bd, unsigned fix, struct block_check_result *res);

#endif
