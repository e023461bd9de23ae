/* xvm img rebase and commit: the subcommands that move data between an
 * image and its backing file. Both keep what the top image reads the same. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/img.h"
#include "lib/log.h"
#include "lib/util.h"

/* Compared and copied in pieces of this size. */
#define PIECE (64 * KiB)

/* Writes into img every piece of [off, off+len) where what img reads now
 * (old) differs from what the new backing would give (nw). */
static int keep_old_content(struct blockdev *img, const uint8_t *old, const uint8_t *nw,
			    uint64_t off, uint64_t len)
{
	for (uint64_t i = 0; i < len; i += PIECE) {
		uint64_t l = MIN(PIECE, len - i);
		if (!memcmp(old + i, nw + i, l))
			continue;
		int ret = block_pwrite(img, old + i, l, off + i);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int img_cmd_rebase(int argc, char **argv)
{
	const char *fmt = NULL, *backing = NULL, *backing_fmt = NULL;
	bool unsafe = false, quiet = false, progress = false;
	int c;
	optind = 1;
	while ((c = getopt(argc, argv, "+:f:b:F:upqU")) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'b': backing = optarg; break;
		case 'F': backing_fmt = optarg; break;
		case 'u': unsafe = true; break;
		case 'p': progress = true; break;
		case 'q': quiet = true; break;
		case 'U': break;
		default: return img_bad_option(argv, c, 1);
		}
	}
	if (optind != argc - 1 || !backing) {
		log_err("expected -b BACKING and one image (try 'xvm img rebase --help')");
		return 1;
	}
	(void)quiet;
	const char *path = argv[optind];
	struct blockdev *img = img_open(path, fmt, unsafe ? BLOCK_OPEN_NO_BACKING : 0);
	if (!img)
		return 1;
	struct blockdev *nb = NULL;
	char probed[16] = "";
	int rc = 1, ret = 0;
	if (*backing && (!unsafe || !backing_fmt)) {
		char *bpath = img_backing_path(path, backing);
		nb = img_open(bpath, backing_fmt, BLOCK_OPEN_RDONLY);
		free(bpath);
		if (!nb) {
			log_err("could not open the new backing file '%s'", backing);
			goto out;
		}
		snprintf(probed, sizeof(probed), "%s", block_format_name(nb));
		if (!backing_fmt)
			backing_fmt = probed;
	}
	if (!unsafe) {
		uint64_t size = block_size(img);
		uint64_t nsize = nb ? block_size(nb) : 0;
		uint8_t *old = xmalloc(IMG_CHUNK), *nw = xmalloc(IMG_CHUNK);
		for (uint64_t off = 0; off < size;) {
			uint64_t pnum;
			unsigned st;
			ret = block_status(img, off, MIN(size - off, (uint64_t)IMG_CHUNK), &pnum, &st);
			if (ret < 0)
				break;
			if (!(st & BLOCK_STATUS_ALLOCATED)) {
				/* Read through the old backing chain. */
				ret = block_pread(img, old, pnum, off);
				uint64_t have = off < nsize ? MIN(pnum, nsize - off) : 0;
				if (ret == 0 && have)
					ret = block_pread(nb, nw, have, off);
				memset(nw + have, 0, pnum - have);
				if (ret == 0)
					ret = keep_old_content(img, old, nw, off, pnum);
				if (ret < 0)
					break;
			}
			off += pnum;
			img_progress(off, size, progress);
		}
		free(old);
		free(nw);
		if (ret < 0) {
			log_err("%s: copying data from the old backing file failed: %s", path, strerror(-ret));
			goto out;
		}
		ret = block_flush(img);
		if (ret < 0) {
			log_err("%s: flush failed: %s", path, strerror(-ret));
			goto out;
		}
	}
	char err[512] = "";
	ret = block_set_backing(img, *backing ? backing : NULL, *backing ? backing_fmt : NULL,
				err, sizeof(err));
	if (ret < 0) {
		log_err("%s: %s", path, err[0] ? err : strerror(-ret));
		goto out;
	}
	rc = 0;
out:
	if (nb)
		block_close(nb);
	ret = block_close(img);
	if (ret < 0 && rc == 0) {
		log_err("%s: %s", path, strerror(-ret));
		rc = 1;
	}
	return rc;
}

/* Copies what top itself holds into base. */
static int commit_data(struct blockdev *top, struct blockdev *base, bool progress)
{
	uint64_t size = block_size(top);
	uint8_t *buf = xmalloc(IMG_CHUNK);
	int ret = 0;
	for (uint64_t off = 0; off < size;) {
		uint64_t pnum;
		unsigned st;
		ret = block_status(top, off, MIN(size - off, (uint64_t)IMG_CHUNK), &pnum, &st);
		if (ret < 0)
			break;
		if (st & BLOCK_STATUS_ALLOCATED) {
			if (st & BLOCK_STATUS_ZERO) {
				ret = block_write_zeroes(base, off, pnum, 0);
			} else {
				ret = block_pread(top, buf, pnum, off);
				if (ret == 0)
					ret = block_pwrite(base, buf, pnum, off);
			}
			if (ret < 0)
				break;
		}
		off += pnum;
		img_progress(off, size, progress);
	}
	free(buf);
	if (ret == 0)
		ret = block_flush(base);
	return ret;
}

/* Replaces top by an empty image with the same parameters (atomically,
 * through a temporary file and rename). */
static int empty_image(const char *path, const struct block_info *in)
{
	size_t len = strlen(path) + 32;
	char *tmp = xmalloc(len);
	snprintf(tmp, len, "%s.xvm-commit-%d", path, (int)getpid());
	struct block_create_opts o = {
		.format = in->format,
		.size = in->virtual_size,
		.backing = in->backing[0] ? in->backing : NULL,
		.backing_format = in->backing_format[0] ? in->backing_format : NULL,
		.cluster_size = in->cluster_size,
		.refcount_bits = in->refcount_bits,
		.compat_v2 = in->qcow2_version && in->qcow2_version < 3,
		.compression = in->compression[0] ? in->compression : NULL,
	};
	char err[512];
	int ret = block_create(tmp, &o, err, sizeof(err));
	if (ret < 0) {
		log_err("%s: cannot empty the image: %s", path, err);
	} else if (rename(tmp, path) < 0) {
		ret = -errno;
		log_err("%s: cannot empty the image: %s", path, strerror(errno));
		unlink(tmp);
	}
	free(tmp);
	return ret;
}

int img_cmd_commit(int argc, char **argv)
{
	const char *fmt = NULL;
	bool keep = false, quiet = false, progress = false;
	int c;
	optind = 1;
	while ((c = getopt(argc, argv, "+:f:dpqt:")) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'd': keep = true; break;
		case 'p': progress = true; break;
		case 'q': quiet = true; break;
		case 't': break; /* cache mode: accepted for compatibility */
		default: return img_bad_option(argv, c, 1);
		}
	}
	if (optind != argc - 1) {
		log_err("expected one image (try 'xvm img commit --help')");
		return 1;
	}
	const char *path = argv[optind];
	struct blockdev *top = img_open(path, fmt, BLOCK_OPEN_RDONLY | BLOCK_OPEN_NO_BACKING);
	if (!top)
		return 1;
	struct block_info in;
	int ret = block_get_info(top, &in);
	if (ret < 0 || !in.backing[0]) {
		log_err("%s: %s", path, ret < 0 ? strerror(-ret) : "the image has no backing file");
		block_close(top);
		return 1;
	}
	char *bpath = img_backing_path(path, in.backing);
	struct blockdev *base = img_open(bpath, in.backing_format[0] ? in.backing_format : NULL, 0);
	if (!base) {
		free(bpath);
		block_close(top);
		return 1;
	}
	int rc = 1;
	if (block_size(base) < block_size(top)) {
		ret = block_resize(base, block_size(top));
		if (ret < 0) {
			log_err("%s: cannot grow the backing file: %s", bpath, strerror(-ret));
			goto out;
		}
	}
	ret = commit_data(top, base, progress);
	if (ret < 0) {
		log_err("committing into %s failed: %s", bpath, strerror(-ret));
		goto out;
	}
	ret = block_close(base);
	base = NULL;
	if (ret < 0) {
		log_err("%s: %s", bpath, strerror(-ret));
		goto out;
	}
	block_close(top);
	top = NULL;
	if (!keep) {
		if (in.n_snapshots) {
			log_warn("%s has internal snapshots: not emptied (its data is committed)", path);
		} else if (empty_image(path, &in) < 0) {
			goto out;
		}
	}
	if (!quiet)
		printf("Image committed.\n");
	rc = 0;
out:
	if (base)
		block_close(base);
	if (top)
		block_close(top);
	free(bpath);
	return rc;
}
