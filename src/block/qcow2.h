/* qcow2 driver internals, shared by qcow2*.c. The on-disk format is
 * described in the qcow2 specification (docs/interop/qcow2.txt upstream);
 * every field read from an image is treated as hostile.
 *
 * Locking: one mutex per image (s->lock) guards all metadata (L1, caches,
 * refcounts, snapshot table, header). Reads of guest data happen outside
 * it once the host offsets are known.
 *
 * Metadata is written through (never cached dirty) in an order that keeps
 * the image consistent if the process dies at any point: a cluster's
 * refcount is raised before anything points to it, data is written before
 * the L2 entry that maps it, and references are dropped before refcounts
 * are lowered. A crash can leak clusters, never corrupt. */
#ifndef XVM_BLOCK_QCOW2_H
#define XVM_BLOCK_QCOW2_H

#include <pthread.h>

#include "block/block_int.h"

#define QCOW2_MAGIC 0x514649fbU

#define QCOW2_INCOMPAT_DIRTY        (1ULL << 0)
#define QCOW2_INCOMPAT_CORRUPT      (1ULL << 1)
#define QCOW2_INCOMPAT_DATA_FILE    (1ULL << 2)
#define QCOW2_INCOMPAT_COMPRESSION  (1ULL << 3)
#define QCOW2_INCOMPAT_EXTL2        (1ULL << 4)
#define QCOW2_INCOMPAT_KNOWN        (QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT | \
				     QCOW2_INCOMPAT_COMPRESSION)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ULL << 0)

#define QCOW2_EXT_END            0x00000000U
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acaU
#define QCOW2_EXT_FEATURE_TABLE  0x6803f857U
#define QCOW2_EXT_BITMAPS        0x23852875U
#define QCOW2_EXT_CRYPTO         0x0537be77U
#define QCOW2_EXT_DATA_FILE      0x44415441U

#define QCOW2_OFLAG_COPIED     (1ULL << 63)
#define QCOW2_OFLAG_COMPRESSED (1ULL << 62)
#define QCOW2_OFLAG_ZERO       (1ULL << 0)
#define QCOW2_L1E_OFFSET_MASK  0x00fffffffffffe00ULL
#define QCOW2_L2E_OFFSET_MASK  0x00fffffffffffe00ULL
#define QCOW2_RTE_OFFSET_MASK  0xfffffffffffffe00ULL
#define QCOW2_MAX_HOST_OFFSET  (1ULL << 56)

/* Sanity limits on what a header may ask us to allocate. */
#define QCOW2_MAX_L1_BYTES       (32 * 1024 * 1024)
#define QCOW2_MAX_RT_BYTES       (8 * 1024 * 1024)
#define QCOW2_MAX_SNAPSHOTS      65536
#define QCOW2_MAX_SNAPSHOT_TABLE (64 * 1024 * 1024)
#define QCOW2_MAX_BACKING_NAME   1023
#define QCOW2_MAX_BACKING_DEPTH  64

enum { QCOW2_COMP_ZLIB = 0, QCOW2_COMP_ZSTD = 1 };

struct qcow2_cache {
	unsigned n;
	uint64_t *offsets; /* 0 = empty slot */
	uint64_t *lru;
	uint8_t *data;     /* n clusters */
	uint64_t tick;
	unsigned last;     /* last hit, checked first */
};

struct qcow2_snapshot {
	uint64_t l1_offset;
	uint32_t l1_size;
	char *id, *name;
	uint32_t date_sec, date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t vm_state_size;
	uint64_t disk_size;
	uint32_t extra_size;   /* as stored; extra beyond the 16 known bytes is kept */
	uint8_t *extra;
};

struct qcow2_ext {
	uint32_t type, len;
	uint8_t *data;
};

#define QCOW2_MAX_INFLIGHT 32

struct qcow2 {
	pthread_mutex_t lock;
	pthread_cond_t inflight_cond;
	struct { uint64_t start, end; } inflight[QCOW2_MAX_INFLIGHT]; /* guest clusters; end 0 = free */
	struct blockdev *bd;
	int fd;
	unsigned version;
	unsigned cluster_bits;
	uint64_t cluster_size;
	unsigned l2_bits;          /* log2(entries per L2 table) */
	uint64_t l2_entries;
	unsigned refcount_order, refcount_bits;
	unsigned rb_bits;          /* log2(entries per refcount block) */
	uint64_t rb_entries;
	uint64_t refcount_max;
	unsigned csize_shift;      /* compressed descriptor: x = 62 - (cluster_bits - 8) */
	uint64_t csize_mask, coffset_mask;
	uint64_t incompat, compat, autoclear;
	uint32_t header_length;
	uint8_t compression_type;

	uint64_t *l1;              /* host order */
	uint32_t l1_size;
	uint64_t l1_offset;
	uint64_t *rt;              /* refcount table, host order */
	uint64_t rt_entries;
	uint64_t rt_offset;
	uint32_t rt_clusters;

	struct qcow2_snapshot *snaps;
	unsigned nb_snapshots;
	uint64_t snapshots_offset;

	char *backing_file;        /* as stored */
	char *backing_format;
	struct qcow2_ext *exts;    /* extensions we do not interpret, kept on rewrite */
	unsigned n_exts;

	struct qcow2_cache l2_cache, rb_cache;
	uint64_t free_hint;        /* first cluster index worth scanning for free space */
	uint64_t cbytes_next;      /* next free byte for compressed data, 0 = none */
	bool corrupt;
};

/* Byte order. */
static inline uint64_t be64_get(const void *p)
{
	const uint8_t *b = p;
	return ((uint64_t)b[0] << 56) | ((uint64_t)b[1] << 48) | ((uint64_t)b[2] << 40) |
	       ((uint64_t)b[3] << 32) | ((uint64_t)b[4] << 24) | ((uint64_t)b[5] << 16) |
	       ((uint64_t)b[6] << 8) | b[7];
}
static inline uint32_t be32_get(const void *p)
{
	const uint8_t *b = p;
	return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}
static inline uint16_t be16_get(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)((b[0] << 8) | b[1]);
}
static inline void be64_put(void *p, uint64_t v)
{
	uint8_t *b = p;
	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
}
static inline void be32_put(void *p, uint32_t v)
{
	uint8_t *b = p;
	for (int i = 3; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
}
static inline void be16_put(void *p, uint16_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static inline uint64_t qcow2_offset_in_cluster(struct qcow2 *s, uint64_t off)
{
	return off & (s->cluster_size - 1);
}

/* Marks the image corrupt (header bit, when writable), logs once and
 * returns -EIO. what is formatted into "image is corrupt: <what>". */
int qcow2_signal_corruption(struct qcow2 *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* qcow2_cache.c-like helpers (in qcow2_refcount.c). */
int qcow2_cache_init(struct qcow2_cache *c, unsigned n, uint64_t cluster_size);
void qcow2_cache_free(struct qcow2_cache *c);
/* Returns the cached table at offset, reading it in unless fresh (then zeroed). */
int qcow2_cache_get(struct qcow2 *s, struct qcow2_cache *c, uint64_t offset, bool fresh,
		    uint8_t **table);
void qcow2_cache_forget(struct qcow2_cache *c, uint64_t offset);
void qcow2_cache_clear(struct qcow2_cache *c);

/* Refcounts (qcow2_refcount.c). */
int qcow2_get_refcount(struct qcow2 *s, uint64_t cluster, uint64_t *rc);
/* Adds delta to the refcount of every cluster overlapping [off, off+len). */
int qcow2_update_refcount(struct qcow2 *s, uint64_t off, uint64_t len, int64_t delta);
/* Allocates up to n clusters (exactly n if contig) with refcount 1. */
int qcow2_alloc_clusters(struct qcow2 *s, uint64_t n, bool contig, uint64_t *off,
			 uint64_t *got);
/* Allocates len bytes for compressed data (len < cluster size). */
int qcow2_alloc_bytes(struct qcow2 *s, uint64_t len, uint64_t *off);
uint64_t qcow2_refcount_get_entry(struct qcow2 *s, const uint8_t *block, uint64_t idx);
void qcow2_refcount_set_entry(struct qcow2 *s, uint8_t *block, uint64_t idx, uint64_t v);
/* Writes the bytes of a refcount block that hold entries [first, first+n). */
int qcow2_refcount_write_entries(struct qcow2 *s, uint64_t block_off, uint8_t *block,
				 uint64_t first, uint64_t n);

/* Header (qcow2.c). */
int qcow2_write_header(struct qcow2 *s);
int qcow2_write_l1_entries(struct qcow2 *s, uint64_t first, uint64_t n);
/* Moves the active L1 to a bigger table. */
int qcow2_grow_l1(struct qcow2 *s, uint64_t new_entries);
int qcow2_update_incompat(struct qcow2 *s, uint64_t set, uint64_t clear);

/* I/O (qcow2_io.c). */
int qcow2_pread(struct blockdev *bd, void *buf, uint64_t len, uint64_t off);
int qcow2_pwrite(struct blockdev *bd, const void *buf, uint64_t len, uint64_t off);
int qcow2_discard(struct blockdev *bd, uint64_t off, uint64_t len);
int qcow2_write_zeroes(struct blockdev *bd, uint64_t off, uint64_t len, unsigned flags);
int qcow2_status(struct blockdev *bd, uint64_t off, uint64_t len, uint64_t *pnum,
		 unsigned *status);
int qcow2_map(struct blockdev *bd, uint64_t off, uint64_t len, uint64_t *pnum,
	      unsigned *status, uint64_t *host_off);
int qcow2_pwrite_compressed(struct blockdev *bd, const void *buf, uint64_t len,
			    uint64_t off);
/* Frees whole clusters [off, off+len) (entries become unallocated). */
int qcow2_deallocate_range(struct qcow2 *s, uint64_t off, uint64_t len);
/* Allocates every cluster (metadata preallocation at create). */
int qcow2_preallocate(struct blockdev *bd);
/* Parses a compressed L2 entry into host offset and byte count. */
void qcow2_compressed_range(struct qcow2 *s, uint64_t l2e, uint64_t *coff, uint64_t *clen);
/* Waits (lock held) until no allocating write covers guest clusters [start, end). */
void qcow2_wait_inflight(struct qcow2 *s, uint64_t start, uint64_t end);
/* Sets COPIED on active L1/L2 entries whose refcount is 1 (after snapshot ops). */
int qcow2_fix_copied_flags(struct qcow2 *s);

/* Snapshots (qcow2_snapshot.c). */
int qcow2_read_snapshots(struct qcow2 *s, char *err, size_t errlen);
void qcow2_free_snapshots(struct qcow2_snapshot *snaps, unsigned n);
int qcow2_snapshot_list(struct blockdev *bd, struct block_snapshot **list, unsigned *n);
int qcow2_snapshot_create(struct blockdev *bd, const char *name, char *err, size_t errlen);
int qcow2_snapshot_apply(struct blockdev *bd, const char *name_or_id, char *err, size_t errlen);
int qcow2_snapshot_delete(struct blockdev *bd, const char *name_or_id, char *err,
			  size_t errlen);

/* Consistency check and repair (qcow2_check.c). */
int qcow2_check(struct blockdev *bd, unsigned fix, struct block_check_result *res);
int qcow2_check_locked(struct qcow2 *s, unsigned fix, struct block_check_result *res);

#endif
