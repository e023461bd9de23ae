/* Block layer dispatcher: opens an image, picks its format driver (by the
 * caller's word or by content), range-checks every request and forwards it
 * to the driver's ops table. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block_int.h"
#include "lib/util.h"

/* Probed in order; raw accepts anything, so it comes last. */
static const struct block_driver *const drivers[] = {
	&block_driver_qcow2,
	&block_driver_raw,
};

int block_err(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

static const struct block_driver *driver_by_name(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(drivers); i++)
		if (!strcmp(drivers[i]->name, name))
			return drivers[i];
	return NULL;
}

static const struct block_driver *driver_probe(int fd)
{
	uint8_t buf[512];
	ssize_t n = pread(fd, buf, sizeof(buf), 0);
	if (n < 0)
		n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(drivers); i++)
		if (drivers[i]->probe && drivers[i]->probe(buf, (size_t)n))
			return drivers[i];
	return &block_driver_raw;
}

int block_open(const char *path, const char *format, unsigned flags,
	       struct blockdev **out, char *err, size_t errlen)
{
	const struct block_driver *drv = NULL;
	*out = NULL;
	if (err && errlen)
		err[0] = 0;
	if (format && *format) {
		drv = driver_by_name(format);
		if (!drv)
			return block_err(err, errlen, -EINVAL, "unknown image format '%s'", format);
	}
	bool ro = flags & BLOCK_OPEN_RDONLY;
	int fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return block_err(err, errlen, -e, "cannot open '%s': %s", path, strerror(e));
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
		close(fd);
		return block_err(err, errlen, -EINVAL, "'%s' is not a regular file or block device",
				 path);
	}
	if (!drv)
		drv = driver_probe(fd);

	struct blockdev *bd = xcalloc(1, sizeof(*bd));
	bd->drv = drv;
	bd->path = xstrdup(path);
	bd->fd = fd;
	bd->fd_direct = -1;
	bd->flags = flags;
	bd->readonly = ro;
	bd->alignment = 512;
	char why[512] = "";
	int ret = drv->open(bd, why, sizeof(why));
	if (ret < 0) {
		if (!why[0])
			snprintf(why, sizeof(why), "%s", strerror(-ret));
		/* The reason first: "image is corrupt: <what>" must lead. */
		block_err(err, errlen, ret, "%s (%s)", why, path);
		close(fd);
		free(bd->path);
		free(bd);
		return ret;
	}
	*out = bd;
	return 0;
}

int block_close(struct blockdev *bd)
{
	if (!bd)
		return 0;
	int ret = bd->drv->close ? bd->drv->close(bd) : 0;
	if (bd->backing) {
		int r = block_close(bd->backing);
		if (!ret)
			ret = r;
	}
	if (bd->fd_direct >= 0)
		close(bd->fd_direct);
	if (close(bd->fd) < 0 && !ret)
		ret = -errno;
	free(bd->path);
	free(bd);
	return ret;
}

uint64_t block_size(struct blockdev *bd) { return bd_size(bd); }
const char *block_format_name(struct blockdev *bd) { return bd->drv->name; }
bool block_readonly(struct blockdev *bd) { return bd->readonly; }
unsigned block_alignment(struct blockdev *bd) { return bd->alignment; }
struct blockdev *block_backing(struct blockdev *bd) { return bd->backing; }

static int check_range(struct blockdev *bd, uint64_t off, uint64_t len)
{
	uint64_t size = bd_size(bd);
	if (off > size || len > size - off)
		return -EINVAL;
	return 0;
}

static int check_write(struct blockdev *bd, uint64_t off, uint64_t len)
{
	if (bd->readonly)
		return -EROFS;
	return check_range(bd, off, len);
}

int block_pread(struct blockdev *bd, void *buf, uint64_t len, uint64_t off)
{
	int ret = check_range(bd, off, len);
	if (ret < 0 || len == 0)
		return ret;
	return bd->drv->pread(bd, buf, len, off);
}

int block_pwrite(struct blockdev *bd, const void *buf, uint64_t len, uint64_t off)
{
	int ret = check_write(bd, off, len);
	if (ret < 0 || len == 0)
		return ret;
	return bd->drv->pwrite(bd, buf, len, off);
}

int block_flush(struct blockdev *bd)
{
	if (bd->readonly)
		return 0;
	return bd->drv->flush(bd);
}

int block_discard(struct blockdev *bd, uint64_t off, uint64_t len)
{
	int ret = check_write(bd, off, len);
	if (ret < 0 || len == 0)
		return ret;
	return bd->drv->discard ? bd->drv->discard(bd, off, len) : 0;
}

int block_write_zeroes(struct blockdev *bd, uint64_t off, uint64_t len, unsigned flags)
{
	int ret = check_write(bd, off, len);
	if (ret < 0 || len == 0)
		return ret;
	return bd->drv->write_zeroes(bd, off, len, flags);
}

int block_status(struct blockdev *bd, uint64_t off, uint64_t len,
		 uint64_t *pnum, unsigned *status)
{
	uint64_t size = bd_size(bd);
	if (off >= size || len == 0)
		return -EINVAL;
	len = MIN(len, size - off);
	*pnum = 0;
	*status = 0;
	int ret = bd->drv->status(bd, off, len, pnum, status);
	if (ret < 0)
		return ret;
	if (*pnum == 0 || *pnum > len)
		return -EIO; /* driver bug: never hand a caller an endless loop */
	return 0;
}

int block_map(struct blockdev *bd, uint64_t off, uint64_t len,
	      uint64_t *pnum, unsigned *status, uint64_t *host_off)
{
	uint64_t size = bd_size(bd);
	if (off >= size || len == 0)
		return -EINVAL;
	len = MIN(len, size - off);
	*pnum = 0;
	*status = 0;
	*host_off = UINT64_MAX;
	int ret;
	if (bd->drv->map) {
		ret = bd->drv->map(bd, off, len, pnum, status, host_off);
	} else {
		/* Fallback from block_status: a raw image maps 1:1 and owns every
		 * byte; other formats tell allocation but no offsets. */
		ret = bd->drv->status(bd, off, len, pnum, status);
		if (ret == 0 && bd->drv == &block_driver_raw) {
			*status |= BLOCK_STATUS_ALLOCATED;
			*host_off = off;
		} else if (ret == 0 && !(*status & BLOCK_STATUS_ALLOCATED)) {
			*status = 0;
		}
	}
	if (ret < 0)
		return ret;
	if (*pnum == 0 || *pnum > len)
		return -EIO;
	return 0;
}

int block_resize(struct blockdev *bd, uint64_t new_size)
{
	if (bd->readonly)
		return -EROFS;
	if (!bd->drv->resize)
		return -ENOTSUP;
	return bd->drv->resize(bd, new_size);
}

int block_create(const char *path, const struct block_create_opts *opts, char *err, size_t errlen)
{
	const char *fmt = opts->format ? opts->format : "raw";
	const struct block_driver *drv = driver_by_name(fmt);
	if (err && errlen)
		err[0] = 0;
	if (!drv)
		return block_err(err, errlen, -EINVAL, "unknown image format '%s'", fmt);
	if (!drv->create)
		return block_err(err, errlen, -ENOTSUP, "format '%s' cannot create images", fmt);
	return drv->create(path, opts, err, errlen);
}

int block_get_info(struct blockdev *bd, struct block_info *info)
{
	memset(info, 0, sizeof(*info));
	snprintf(info->format, sizeof(info->format), "%s", bd->drv->name);
	info->virtual_size = bd_size(bd);
	struct stat st;
	if (fstat(bd->fd, &st) == 0)
		info->actual_size = (uint64_t)st.st_blocks * 512;
	return bd->drv->get_info ? bd->drv->get_info(bd, info) : 0;
}

int block_set_backing(struct blockdev *bd, const char *backing, const char *backing_format,
		      char *err, size_t errlen)
{
	if (!bd->drv->set_backing)
		return block_err(err, errlen, -ENOTSUP, "format '%s' has no backing file",
				 bd->drv->name);
	if (bd->readonly)
		return block_err(err, errlen, -EROFS, "image is opened read-only");
	return bd->drv->set_backing(bd, backing, backing_format, err, errlen);
}

int block_pwrite_compressed(struct blockdev *bd, const void *buf, uint64_t len, uint64_t off)
{
	int ret = check_write(bd, off, len);
	if (ret < 0 || len == 0)
		return ret;
	if (!bd->drv->pwrite_compressed)
		return -ENOTSUP;
	return bd->drv->pwrite_compressed(bd, buf, len, off);
}

int block_snapshot_list(struct blockdev *bd, struct block_snapshot **list, unsigned *n)
{
	*list = NULL;
	*n = 0;
	if (!bd->drv->snapshot_list)
		return 0;
	return bd->drv->snapshot_list(bd, list, n);
}

#define NEEDS(op, what)                                                           \
	do {                                                                      \
		if (!bd->drv->op)                                                 \
			return block_err(err, errlen, -ENOTSUP,                   \
					 "format '%s' does not support %s",       \
					 bd->drv->name, what);                    \
		if (bd->readonly)                                                 \
			return block_err(err, errlen, -EROFS,                     \
					 "image is opened read-only");            \
	} while (0)

int block_snapshot_create(struct blockdev *bd, const char *name, char *err, size_t errlen)
{
	NEEDS(snapshot_create, "internal snapshots");
	return bd->drv->snapshot_create(bd, name, err, errlen);
}

int block_snapshot_apply(struct blockdev *bd, const char *name_or_id, char *err, size_t errlen)
{
	NEEDS(snapshot_apply, "internal snapshots");
	return bd->drv->snapshot_apply(bd, name_or_id, err, errlen);
}

int block_snapshot_delete(struct blockdev *bd, const char *name_or_id, char *err, size_t errlen)
{
	NEEDS(snapshot_delete, "internal snapshots");
	return bd->drv->snapshot_delete(bd, name_or_id, err, errlen);
}

int block_check(struct blockdev *bd, unsigned fix, struct block_check_result *res)
{
	memset(res, 0, sizeof(*res));
	if (!bd->drv->check)
		return -ENOTSUP;
	if (fix && bd->readonly)
		return -EROFS;
	return bd->drv->check(bd, fix, res);
}

int block_file_flush(int fd)
{
	if (fdatasync(fd) < 0)
		return -errno;
	return 0;
}

int block_file_punch(int fd, uint64_t off, uint64_t len)
{
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0)
		return -errno;
	return 0;
}
