/* raw images: the guest's bytes at the same offsets in a (sparse) host file.
 * Holes read as zeros; discard punches holes; block status asks the host
 * file system (SEEK_DATA / SEEK_HOLE). Every op is a positional syscall on
 * a shared fd, so concurrent requests need no lock. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block_int.h"
#include "lib/util.h"

#define DIRECT_ALIGN 4096

static bool raw_probe(const uint8_t *buf, size_t len)
{
	return true;
}

static int raw_file_size(int fd, uint64_t *size)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size) < 0)
			return -errno;
		return 0;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

static int raw_open(struct blockdev *bd, char *err, size_t errlen)
{
	uint64_t size;
	int ret = raw_file_size(bd->fd, &size);
	if (ret < 0)
		return block_err(err, errlen, ret, "cannot get the size: %s", strerror(-ret));
	bd_set_size(bd, size);
	if (bd->flags & BLOCK_OPEN_DIRECT) {
		/* A twin fd with O_DIRECT serves aligned requests; unaligned ones
		 * go through the page cache, which the kernel keeps coherent. */
		bd->fd_direct = open(bd->path, (bd->readonly ? O_RDONLY : O_RDWR) |
				     O_DIRECT | O_CLOEXEC);
		if (bd->fd_direct >= 0)
			bd->alignment = DIRECT_ALIGN;
	}
	return 0;
}

static int raw_close(struct blockdev *bd)
{
	if (bd->readonly)
		return 0;
	return block_file_flush(bd->fd);
}

static bool direct_ok(struct blockdev *bd, const void *buf, uint64_t len, uint64_t off)
{
	return bd->fd_direct >= 0 && (((uintptr_t)buf | len | off) & (DIRECT_ALIGN - 1)) == 0;
}

static int raw_pread(struct blockdev *bd, void *buf, uint64_t len, uint64_t off)
{
	int fd = direct_ok(bd, buf, len, off) ? bd->fd_direct : bd->fd;
	return pread_full(fd, buf, len, off);
}

static int raw_pwrite(struct blockdev *bd, const void *buf, uint64_t len, uint64_t off)
{
	int fd = direct_ok(bd, buf, len, off) ? bd->fd_direct : bd->fd;
	return pwrite_full(fd, buf, len, off);
}

static int raw_flush(struct blockdev *bd)
{
	return block_file_flush(bd->fd);
}

static int raw_discard(struct blockdev *bd, uint64_t off, uint64_t len)
{
	int ret = block_file_punch(bd->fd, off, len);
	/* Discard is advisory: a host file system without holes keeps the data. */
	if (ret == -EOPNOTSUPP || ret == -ENOSYS)
		return 0;
	return ret;
}

/* Writes explicit zeros where the file system cannot make them for us. */
static int write_zero_bytes(int fd, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[64 * 1024];
	while (len) {
		size_t n = (size_t)MIN(len, sizeof(zeros));
		int ret = pwrite_full(fd, zeros, n, off);
		if (ret < 0)
			return ret;
		off += n;
		len -= n;
	}
	return 0;
}

static int raw_write_zeroes(struct blockdev *bd, uint64_t off, uint64_t len, unsigned flags)
{
	if (flags & BLOCK_ZERO_MAY_UNMAP) {
		if (block_file_punch(bd->fd, off, len) == 0)
			return 0;
	}
	if (fallocate(bd->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)off,
		      (off_t)len) == 0)
		return 0;
	return write_zero_bytes(bd->fd, off, len);
}

static int raw_status(struct blockdev *bd, uint64_t off, uint64_t len,
		      uint64_t *pnum, unsigned *status)
{
	off_t data = lseek(bd->fd, (off_t)off, SEEK_DATA);
	if (data < 0) {
		if (errno == ENXIO) { /* only a hole from here to the end */
			*pnum = len;
			*status = BLOCK_STATUS_ZERO;
			return 0;
		}
		/* No SEEK_DATA support: everything is data. */
		*pnum = len;
		*status = BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED;
		return 0;
	}
	if ((uint64_t)data > off) {
		*pnum = MIN(len, (uint64_t)data - off);
		*status = BLOCK_STATUS_ZERO;
		return 0;
	}
	off_t hole = lseek(bd->fd, (off_t)off, SEEK_HOLE);
	if (hole < 0 || (uint64_t)hole <= off)
		hole = (off_t)(off + len);
	*pnum = MIN(len, (uint64_t)hole - off);
	*status = BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED;
	return 0;
}

static int raw_resize(struct blockdev *bd, uint64_t new_size)
{
	if (new_size > (uint64_t)INT64_MAX)
		return -EFBIG;
	if (ftruncate(bd->fd, (off_t)new_size) < 0)
		return -errno;
	bd_set_size(bd, new_size);
	return 0;
}

static int raw_create(const char *path, const struct block_create_opts *opts,
		      char *err, size_t errlen)
{
	if (opts->backing && *opts->backing)
		return block_err(err, errlen, -ENOTSUP, "raw images cannot have a backing file");
	if (opts->size > (uint64_t)INT64_MAX)
		return block_err(err, errlen, -EFBIG, "size too large");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = errno;
		return block_err(err, errlen, -e, "cannot create '%s': %s", path, strerror(e));
	}
	int ret = 0;
	if (ftruncate(fd, (off_t)opts->size) < 0)
		ret = -errno;
	if (!ret && opts->preallocate_metadata)
		ret = 0; /* raw has no metadata */
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	close(fd);
	if (ret < 0)
		return block_err(err, errlen, ret, "cannot size '%s': %s", path, strerror(-ret));
	return 0;
}

const struct block_driver block_driver_raw = {
	.name = "raw",
	.probe = raw_probe,
	.open = raw_open,
	.close = raw_close,
	.pread = raw_pread,
	.pwrite = raw_pwrite,
	.flush = raw_flush,
	.discard = raw_discard,
	.write_zeroes = raw_write_zeroes,
	.status = raw_status,
	.resize = raw_resize,
	.create = raw_create,
};
