/* libFuzzer target: the input is an image file. It is opened (qcow2 by
 * content, writable, without its backing chain), read, mapped, checked,
 * written a little and repaired. Nothing may crash, hang or read out of
 * bounds; a refusal that blames corruption must say "image is corrupt: ". */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block.h"
#include "lib/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	xvm_log_level = LOG_ERROR;
	int fd = memfd_create("fuzz-image", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	char path[64], err[512] = "";
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	struct blockdev *bd;
	int ret = block_open(path, NULL, BLOCK_OPEN_NO_BACKING, &bd, err, sizeof(err));
	if (ret < 0) {
		if (strstr(err, "corrupt") && strncmp(err, "image is corrupt: ", 18))
			abort(); /* corruption must be named first */
		close(fd);
		return 0;
	}
	uint64_t vsize = block_size(bd);
	uint8_t *buf = malloc(256 * 1024);
	/* read: the start, and a spot near the end */
	uint64_t n = vsize < 256 * 1024 ? vsize : 256 * 1024;
	if (n)
		block_pread(bd, buf, n, 0);
	if (vsize > n)
		block_pread(bd, buf, n, vsize - n);
	/* block status and map walk, bounded */
	uint64_t off = 0, pnum, host;
	unsigned st;
	for (int i = 0; i < 256 && off < vsize; i++) {
		if (block_status(bd, off, vsize - off, &pnum, &st) < 0 || pnum == 0)
			break;
		if (block_map(bd, off, vsize - off, &pnum, &st, &host) < 0 || pnum == 0)
			break;
		off += pnum;
	}
	struct block_snapshot *list;
	unsigned ns;
	if (block_snapshot_list(bd, &list, &ns) == 0)
		free(list);
	struct block_check_result res;
	block_check(bd, 0, &res);
	(void)st;
	/* writes near the start, then a repair */
	if (vsize >= 8192) {
		memset(buf, 0x5a, 8192);
		block_pwrite(bd, buf, 4096, 512);
		block_write_zeroes(bd, 0, 8192, 0);
		block_discard(bd, 0, vsize < 1048576 ? vsize : 1048576);
		block_pwrite(bd, buf, 8192, 0);
		block_pread(bd, buf, 8192, 0);
	}
	/* A hostile refcount table can push allocations far out (the memfd
	 * stays sparse); checking that much would only cost time. */
	struct stat st_file;
	if (fstat(fd, &st_file) == 0 && st_file.st_size < 64 * 1024 * 1024)
		block_check(bd, BLOCK_FIX_LEAKS | BLOCK_FIX_ERRORS, &res);
	free(buf);
	block_close(bd);
	close(fd);
	return 0;
}
