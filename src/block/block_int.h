/* Internals of the block layer: the format-driver ops table and the
 * blockdev object every driver shares. Only src/block/ includes this. */
#ifndef XVM_BLOCK_BLOCK_INT_H
#define XVM_BLOCK_BLOCK_INT_H

#include <stdarg.h>
#include <stdio.h>

#include "block/block.h"

struct block_driver {
	const char *name;
	/* true if the first bytes of a file (at most 512) are this format. */
	bool (*probe)(const uint8_t *buf, size_t len);
	/* bd->fd, bd->flags, bd->path are set; fills bd->size and bd->priv. */
	int (*open)(struct blockdev *bd, char *err, size_t errlen);
	/* Flushes what the driver caches and frees bd->priv; returns the flush result. */
	int (*close)(struct blockdev *bd);

	/* Range-checked by block.c: off + len <= size, len > 0. */
	int (*pread)(struct blockdev *bd, void *buf, uint64_t len, uint64_t off);
	int (*pwrite)(struct blockdev *bd, const void *buf, uint64_t len, uint64_t off);
	int (*flush)(struct blockdev *bd);
	int (*discard)(struct blockdev *bd, uint64_t off, uint64_t len);
	int (*write_zeroes)(struct blockdev *bd, uint64_t off, uint64_t len, unsigned flags);
	int (*status)(struct blockdev *bd, uint64_t off, uint64_t len,
		      uint64_t *pnum, unsigned *status);
	int (*resize)(struct blockdev *bd, uint64_t new_size);
	/* Optional (see block_map); range-checked like status. */
	int (*map)(struct blockdev *bd, uint64_t off, uint64_t len, uint64_t *pnum,
		   unsigned *status, uint64_t *host_off);

	int (*create)(const char *path, const struct block_create_opts *opts,
		      char *err, size_t errlen);
	int (*get_info)(struct blockdev *bd, struct block_info *info);
	int (*set_backing)(struct blockdev *bd, const char *backing,
			   const char *backing_format, char *err, size_t errlen);
	int (*pwrite_compressed)(struct blockdev *bd, const void *buf, uint64_t len,
				 uint64_t off);
	int (*snapshot_list)(struct blockdev *bd, struct block_snapshot **list, unsigned *n);
	int (*snapshot_create)(struct blockdev *bd, const char *name, char *err, size_t errlen);
	int (*snapshot_apply)(struct blockdev *bd, const char *name_or_id, char *err,
			      size_t errlen);
	int (*snapshot_delete)(struct blockdev *bd, const char *name_or_id, char *err,
			       size_t errlen);
	int (*check)(struct blockdev *bd, unsigned fix, struct block_check_result *res);
};

struct blockdev {
	const struct block_driver *drv;
	char *path;
	int fd;            /* the image file */
	int fd_direct;     /* O_DIRECT twin of fd (raw only), -1 if none */
	unsigned flags;    /* BLOCK_OPEN_* */
	bool readonly;
	uint64_t size;     /* virtual size; read and written with __atomic */
	unsigned alignment;
	struct blockdev *backing;
	void *priv;        /* the driver's state */
};

extern const struct block_driver block_driver_raw;
extern const struct block_driver block_driver_qcow2;

/* Formats a one-line reason into err (if any); returns ret for chaining. */
int block_err(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static inline uint64_t bd_size(struct blockdev *bd)
{
	return __atomic_load_n(&bd->size, __ATOMIC_ACQUIRE);
}

static inline void bd_set_size(struct blockdev *bd, uint64_t size)
{
	__atomic_store_n(&bd->size, size, __ATOMIC_RELEASE);
}

/* Host-file helpers shared by the drivers. */
int block_file_flush(int fd);
/* Reads zeros into buf for bytes past the end of file (pread_full does). */
int block_file_punch(int fd, uint64_t off, uint64_t len);

#endif
