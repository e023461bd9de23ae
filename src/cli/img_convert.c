/* xvm img convert, compare and map: the subcommands that walk a whole
 * image by block status. convert runs N worker threads, each taking the
 * next IMG_CHUNK of the input; holes are skipped without reading, data is
 * scanned for zero runs that become holes in the output. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/img.h"
#include "lib/log.h"
#include "lib/util.h"

#define MAX_SOURCES 64
#define MAX_WORKERS 32

struct source {
	struct blockdev *bd;
	uint64_t start, size; /* where it lands in the output */
};

struct convert {
	struct source src[MAX_SOURCES];
	unsigned nsrc;
	uint64_t total;           /* input bytes */
	uint64_t limit;           /* output bytes to cover: total, or with -c up to a cluster end */
	struct blockdev *dst;
	struct blockdev *base;    /* -B: the output's backing file, compared against */
	bool compress, target_zero, progress;
	uint64_t sparse;          /* zero runs this long become holes; 0 = none */
	uint32_t chunk;           /* bytes per job (a multiple of cluster when compressing) */
	uint32_t cluster;

	pthread_mutex_t mu;
	uint64_t next, done;
	int error;
	char errmsg[256];
};

static void conv_fail(struct convert *cv, int err, const char *what, uint64_t off)
{
	pthread_mutex_lock(&cv->mu);
	if (!cv->error) {
		cv->error = err;
		snprintf(cv->errmsg, sizeof(cv->errmsg), "%s at offset %llu: %s", what,
			 (unsigned long long)off, strerror(-err));
	}
	pthread_mutex_unlock(&cv->mu);
}

/* Output bytes [off, off+len) are zero. */
static int put_zeroes(struct convert *cv, uint64_t off, uint64_t len, uint8_t *scratch)
{
	if (cv->base) {
		/* Zeros matter only where the backing file is not zero already. */
		uint64_t bsize = block_size(cv->base);
		uint64_t end = off + len;
		while (off < end && off < bsize) {
			uint64_t pnum;
			unsigned st;
			int ret = block_status(cv->base, off, MIN(end, bsize) - off, &pnum, &st);
			if (ret < 0)
				return ret;
			if (!(st & BLOCK_STATUS_ZERO)) {
				ret = block_write_zeroes(cv->dst, off, pnum, 0);
				if (ret < 0)
					return ret;
			}
			off += pnum;
		}
		(void)scratch;
		return 0;
	}
	if (cv->target_zero)
		return 0;
	return block_write_zeroes(cv->dst, off, len, BLOCK_ZERO_MAY_UNMAP);
}

/* Writes data, leaving out zero runs of at least cv->sparse bytes (and,
 * with -B, runs equal to the backing file). */
static int put_data(struct convert *cv, const uint8_t *buf, uint64_t off, uint64_t len,
		    uint8_t *scratch)
{
	if (cv->base) {
		uint64_t bsize = block_size(cv->base);
		uint64_t n = off < bsize ? MIN(len, bsize - off) : 0;
		if (n) {
			int ret = block_pread(cv->base, scratch, n, off);
			if (ret < 0)
				return ret;
		}
		memset(scratch + n, 0, len - n);
		/* Compare in 64 KiB pieces: write only the pieces that differ. */
		const uint64_t g = 64 * KiB;
		uint64_t i = 0;
		while (i < len) {
			uint64_t l = MIN(g, len - i);
			bool same = !memcmp(buf + i, scratch + i, l);
			uint64_t j = i + l;
			while (j < len) {
				uint64_t l2 = MIN(g, len - j);
				if (same != !memcmp(buf + j, scratch + j, l2))
					break;
				j += l2;
			}
			if (!same) {
				int ret = block_pwrite(cv->dst, buf + i, j - i, off + i);
				if (ret < 0)
					return ret;
			}
			i = j;
		}
		return 0;
	}
	if (!cv->sparse)
		return block_pwrite(cv->dst, buf, len, off);
	uint64_t g = cv->sparse, i = 0;
	while (i < len) {
		/* Granules are aligned to absolute offsets so runs line up with
		 * the output's clusters. */
		uint64_t l = MIN(g - (off + i) % g, len - i);
		bool zero = img_is_zero(buf + i, l);
		uint64_t j = i + l;
		while (j < len) {
			uint64_t l2 = MIN(g, len - j);
			if (zero != img_is_zero(buf + j, l2))
				break;
			j += l2;
		}
		int ret = zero ? put_zeroes(cv, off + i, j - i, scratch)
			       : block_pwrite(cv->dst, buf + i, j - i, off + i);
		if (ret < 0)
			return ret;
		i = j;
	}
	return 0;
}

/* Reads output bytes [off, off+len) from the sources into buf. */
static int read_sources(struct convert *cv, uint8_t *buf, uint64_t off, uint64_t len)
{
	for (unsigned i = 0; i < cv->nsrc && len; i++) {
		struct source *s = &cv->src[i];
		if (off >= s->start + s->size)
			continue;
		uint64_t n = MIN(len, s->start + s->size - off);
		int ret = block_pread(s->bd, buf, n, off - s->start);
		if (ret < 0)
			return ret;
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* Status of output offset off in the sources (at most len bytes). */
static int source_status(struct convert *cv, uint64_t off, uint64_t len, uint64_t *pnum, unsigned *st)
{
	for (unsigned i = 0; i < cv->nsrc; i++) {
		struct source *s = &cv->src[i];
		if (off >= s->start + s->size)
			continue;
		return block_status(s->bd, off - s->start, MIN(len, s->start + s->size - off), pnum, st);
	}
	return -EINVAL;
}

static int convert_compressed(struct convert *cv, uint8_t *buf, uint64_t off, uint64_t len)
{
	/* The last cluster may reach past the input (up to the output's end,
	 * a whole cluster or the end of the image): zeros there. */
	uint64_t have = off < cv->total ? MIN(len, cv->total - off) : 0;
	uint64_t pnum = 0;
	unsigned st = BLOCK_STATUS_ZERO;
	int ret = have ? source_status(cv, off, have, &pnum, &st) : 0;
	if (ret < 0)
		return ret;
	if ((st & BLOCK_STATUS_ZERO) && pnum == have && !cv->base)
		return 0; /* a fresh output reads zeros already */
	ret = read_sources(cv, buf, off, have);
	if (ret < 0)
		return ret;
	memset(buf + have, 0, len - have);
	for (uint64_t i = 0; i < len; i += cv->cluster) {
		uint64_t n = MIN((uint64_t)cv->cluster, len - i);
		if (img_is_zero(buf + i, n))
			continue;
		ret = block_pwrite_compressed(cv->dst, buf + i, n, off + i);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int convert_chunk(struct convert *cv, uint8_t *buf, uint8_t *scratch, uint64_t off, uint64_t len)
{
	if (cv->compress)
		return convert_compressed(cv, buf, off, len);
	uint64_t end = off + len;
	while (off < end) {
		uint64_t pnum;
		unsigned st;
		int ret = source_status(cv, off, end - off, &pnum, &st);
		if (ret < 0)
			return ret;
		if (st & BLOCK_STATUS_ZERO) {
			ret = put_zeroes(cv, off, pnum, scratch);
		} else {
			ret = read_sources(cv, buf, off, pnum);
			if (ret == 0)
				ret = put_data(cv, buf, off, pnum, scratch);
		}
		if (ret < 0)
			return ret;
		off += pnum;
	}
	return 0;
}

static void *convert_worker(void *arg)
{
	struct convert *cv = arg;
	uint8_t *buf = NULL, *scratch = NULL;
	if (posix_memalign((void **)&buf, 4096, cv->chunk) ||
	    posix_memalign((void **)&scratch, 4096, cv->chunk)) {
		conv_fail(cv, -ENOMEM, "allocating buffers", 0);
		free(buf);
		return NULL;
	}
	for (;;) {
		pthread_mutex_lock(&cv->mu);
		uint64_t off = cv->next;
		bool stop = cv->error || off >= cv->limit;
		if (!stop)
			cv->next += cv->chunk;
		pthread_mutex_unlock(&cv->mu);
		if (stop)
			break;
		uint64_t len = MIN((uint64_t)cv->chunk, cv->limit - off);
		int ret = convert_chunk(cv, buf, scratch, off, len);
		if (ret < 0) {
			conv_fail(cv, ret, "copy failed", off);
			break;
		}
		pthread_mutex_lock(&cv->mu);
		cv->done += len;
		img_progress(cv->done, cv->total, cv->progress);
		pthread_mutex_unlock(&cv->mu);
	}
	free(buf);
	free(scratch);
	return NULL;
}

enum { OPT_TARGET_IS_ZERO = 256 };

int img_cmd_convert(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "target-is-zero", no_argument, NULL, OPT_TARGET_IS_ZERO },
		{ "force-share", no_argument, NULL, 'U' },
		{ 0 }
	};
	struct block_create_opts co = { .format = "raw" };
	const char *src_fmt = NULL;
	char *optstrs[16];
	unsigned nopt = 0, workers = 8;
	bool progress = false, no_create = false, target_is_zero = false, compress = false;
	uint64_t sparse = 4096;
	const char *base = NULL, *base_fmt = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:f:O:o:cpqnm:WS:B:F:Ut:T:", longopts, NULL)) != -1) {
		uint64_t v;
		switch (c) {
		case 'f': src_fmt = optarg; break;
		case 'O': co.format = optarg; break;
		case 'o':
			if (nopt == ARRAY_SIZE(optstrs)) {
				log_err("too many -o options");
				return 1;
			}
			optstrs[nopt++] = optarg;
			break;
		case 'c': compress = true; break;
		case 'p': progress = true; break;
		case 'q': progress = false; break;
		case 'n': no_create = true; break;
		case 'm':
			if (!parse_u64(optarg, &v) || v < 1 || v > MAX_WORKERS) {
				log_err("-m must be 1 to %d", MAX_WORKERS);
				return 1;
			}
			workers = (unsigned)v;
			break;
		case 'W': break;
		case 'S':
			if (!parse_size(optarg, &v) || (v && (v % 512 || v > IMG_CHUNK))) {
				log_err("-S must be 0 or a multiple of 512 up to 2M");
				return 1;
			}
			sparse = v;
			break;
		case 'B': base = optarg; break;
		case 'F': base_fmt = optarg; break;
		case 'U': break;
		case 't': case 'T':
			break; /* cache modes: accepted; the output is always flushed at the end */
		case OPT_TARGET_IS_ZERO: target_is_zero = true; break;
		default: return img_bad_option(argv, c, 1);
		}
	}
	for (unsigned i = 0; i < nopt; i++)
		if (!img_parse_create_opts(optstrs[i], &co))
			return 1;
	if (argc - optind < 2) {
		log_err("expected input and output files (try 'xvm img convert --help')");
		return 1;
	}
	if (argc - optind - 1 > MAX_SOURCES) {
		log_err("at most %d input files", MAX_SOURCES);
		return 1;
	}
	if (target_is_zero && !no_create) {
		log_err("--target-is-zero needs -n");
		return 1;
	}
	if (compress && strcmp(co.format, "qcow2")) {
		log_err("compression (-c) needs a qcow2 output (-O qcow2)");
		return 1;
	}
	if (base && no_create) {
		log_err("-B cannot be used with -n");
		return 1;
	}
	const char *out = argv[argc - 1];
	struct convert cv = { .compress = compress, .progress = progress, .sparse = sparse };
	pthread_mutex_init(&cv.mu, NULL);
	int rc = 1;
	for (int i = optind; i < argc - 1; i++) {
		struct blockdev *bd = img_open(argv[i], src_fmt, BLOCK_OPEN_RDONLY);
		if (!bd)
			goto out;
		cv.src[cv.nsrc++] = (struct source){ bd, cv.total, block_size(bd) };
		cv.total += block_size(bd);
	}
	if (base) {
		char *bpath = img_backing_path(out, base);
		cv.base = img_open(bpath, base_fmt, BLOCK_OPEN_RDONLY);
		free(bpath);
		if (!cv.base)
			goto out;
		co.backing = base;
		co.backing_format = base_fmt ? base_fmt : block_format_name(cv.base);
	}
	if (!no_create) {
		co.size = ALIGN_UP(cv.total, 512); /* whole sectors, as for create */
		char err[512];
		if (block_create(out, &co, err, sizeof(err)) < 0) {
			log_err("%s: %s", out, err);
			goto out;
		}
	}
	cv.dst = img_open(out, no_create ? NULL : co.format, BLOCK_OPEN_NO_BACKING);
	if (!cv.dst)
		goto out;
	if (block_size(cv.dst) < cv.total) {
		log_err("%s is smaller (%llu bytes) than the input (%llu bytes)", out,
			(unsigned long long)block_size(cv.dst), (unsigned long long)cv.total);
		goto out;
	}
	cv.target_zero = !no_create || target_is_zero;
	cv.limit = cv.total;
	cv.chunk = IMG_CHUNK;
	if (compress) {
		struct block_info in;
		block_get_info(cv.dst, &in);
		cv.cluster = in.cluster_size ? in.cluster_size : 65536;
		cv.chunk = (uint32_t)MAX((uint64_t)cv.cluster, ALIGN_DOWN((uint64_t)IMG_CHUNK, cv.cluster));
		/* Compressed writes take whole clusters, or the image's last one. */
		cv.limit = MIN(ALIGN_UP(cv.total, (uint64_t)cv.cluster), block_size(cv.dst));
	}
	pthread_t th[MAX_WORKERS];
	unsigned n = 0;
	for (; n < workers; n++)
		if (pthread_create(&th[n], NULL, convert_worker, &cv) != 0)
			break;
	if (n == 0)
		convert_worker(&cv);
	for (unsigned i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	if (cv.error) {
		log_err("%s: %s", out, cv.errmsg);
		goto out;
	}
	img_progress(cv.total, cv.total, progress);
	int ret = block_close(cv.dst);
	cv.dst = NULL;
	if (ret < 0) {
		log_err("%s: flushing failed: %s", out, strerror(-ret));
		goto out;
	}
	rc = 0;
out:
	if (cv.dst)
		block_close(cv.dst);
	if (cv.base)
		block_close(cv.base);
	for (unsigned i = 0; i < cv.nsrc; i++)
		block_close(cv.src[i].bd);
	pthread_mutex_destroy(&cv.mu);
	return rc;
}

/* ---- compare ---- */

/* First offset in [off, off+len) where a and b differ, rounded down to a
 * 512-byte sector as qemu-img reports it; UINT64_MAX if equal. */
static uint64_t first_difference(const uint8_t *a, const uint8_t *b, uint64_t off, uint64_t len)
{
	if (!memcmp(a, b, len))
		return UINT64_MAX;
	uint64_t i = 0;
	while (a[i] == b[i])
		i++;
	return ALIGN_DOWN(off + i, 512);
}

/* Checks that bd reads zeros from off to its end; returns the first
 * non-zero sector's offset, UINT64_MAX if none, or a -errno as (uint64_t). */
static int tail_is_zero(struct blockdev *bd, uint64_t off, uint8_t *buf, uint64_t *where)
{
	uint64_t size = block_size(bd);
	*where = UINT64_MAX;
	while (off < size) {
		uint64_t pnum;
		unsigned st;
		int ret = block_status(bd, off, MIN(size - off, (uint64_t)IMG_CHUNK), &pnum, &st);
		if (ret < 0)
			return ret;
		if (!(st & BLOCK_STATUS_ZERO)) {
			ret = block_pread(bd, buf, pnum, off);
			if (ret < 0)
				return ret;
			if (!img_is_zero(buf, pnum)) {
				uint64_t i = 0;
				while (!buf[i])
					i++;
				*where = ALIGN_DOWN(off + i, 512);
				return 0;
			}
		}
		off += pnum;
	}
	return 0;
}

int img_cmd_compare(int argc, char **argv)
{
	const char *fmt1 = NULL, *fmt2 = NULL;
	bool strict = false, quiet = false, progress = false;
	int c;
	optind = 1;
	while ((c = getopt(argc, argv, "+:f:F:spqU")) != -1) {
		switch (c) {
		case 'f': fmt1 = optarg; break;
		case 'F': fmt2 = optarg; break;
		case 's': strict = true; break;
		case 'p': progress = true; break;
		case 'q': quiet = true; break;
		case 'U': break;
		default: return img_bad_option(argv, c, 2);
		}
	}
	if (argc - optind != 2) {
		log_err("expected two images (try 'xvm img compare --help')");
		return 2;
	}
	const char *p1 = argv[optind], *p2 = argv[optind + 1];
	struct blockdev *a = img_open(p1, fmt1, BLOCK_OPEN_RDONLY);
	if (!a)
		return 2;
	struct blockdev *b = img_open(p2, fmt2 ? fmt2 : fmt1, BLOCK_OPEN_RDONLY);
	if (!b) {
		block_close(a);
		return 2;
	}
	uint8_t *ba = xmalloc(IMG_CHUNK), *bb = xmalloc(IMG_CHUNK);
	uint64_t sa = block_size(a), sb = block_size(b), common = MIN(sa, sb);
	int rc = 0, ret = 0;
	uint64_t diff = UINT64_MAX;
	if (strict && sa != sb) {
		if (!quiet)
			printf("Strict mode: Image size mismatch!\n");
		rc = 1;
		goto done;
	}
	for (uint64_t off = 0; off < common;) {
		uint64_t n = MIN(common - off, (uint64_t)IMG_CHUNK), na, nb;
		unsigned sta, stb;
		ret = block_status(a, off, n, &na, &sta);
		if (ret == 0)
			ret = block_status(b, off, n, &nb, &stb);
		if (ret < 0)
			break;
		n = MIN(na, nb);
		if (!((sta & stb) & BLOCK_STATUS_ZERO)) {
			ret = block_pread(a, ba, n, off);
			if (ret == 0)
				ret = block_pread(b, bb, n, off);
			if (ret < 0)
				break;
			diff = first_difference(ba, bb, off, n);
			if (diff != UINT64_MAX)
				break;
		}
		off += n;
		img_progress(off, common, progress);
	}
	if (ret == 0 && diff == UINT64_MAX && sa != sb) {
		ret = tail_is_zero(sa > sb ? a : b, common, ba, &diff);
		if (ret == 0 && !quiet && diff == UINT64_MAX)
			printf("Warning: Image size mismatch!\n");
	}
	if (ret < 0) {
		log_err("error while comparing: %s", strerror(-ret));
		rc = 2;
	} else if (diff != UINT64_MAX) {
		if (!quiet)
			printf("Content mismatch at offset %llu!\n", (unsigned long long)diff);
		rc = 1;
	} else if (!quiet) {
		printf("Images are identical.\n");
	}
done:
	free(ba);
	free(bb);
	block_close(a);
	block_close(b);
	return rc;
}

/* ---- map ---- */

#define MAX_CHAIN 64

struct map_entry {
	uint64_t start, length, offset; /* offset UINT64_MAX = none */
	unsigned depth;
	bool present, zero, data;
};

static void map_print(const struct map_entry *e, bool json, bool first, char **paths)
{
	if (json) {
		printf("%s{ \"start\": %llu, \"length\": %llu, \"depth\": %u, \"present\": %s, "
		       "\"zero\": %s, \"data\": %s", first ? "[" : ",\n",
		       (unsigned long long)e->start, (unsigned long long)e->length, e->depth,
		       e->present ? "true" : "false", e->zero ? "true" : "false",
		       e->data ? "true" : "false");
		if (e->offset != UINT64_MAX)
			printf(", \"offset\": %llu", (unsigned long long)e->offset);
		printf("}");
		return;
	}
	if (!e->data || e->offset == UINT64_MAX)
		return;
	printf("%#-16llx%#-16llx%#-16llx%s\n", (unsigned long long)e->start,
	       (unsigned long long)e->length, (unsigned long long)e->offset, paths[e->depth]);
}

static bool map_mergeable(const struct map_entry *a, const struct map_entry *b, bool json)
{
	if (a->depth != b->depth || a->present != b->present || a->zero != b->zero ||
	    a->data != b->data)
		return false;
	if ((a->offset == UINT64_MAX) != (b->offset == UINT64_MAX))
		return false;
	return a->offset == UINT64_MAX || a->offset + a->length == b->offset;
}

int img_cmd_map(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'O' },
		{ "force-share", no_argument, NULL, 'U' },
		{ 0 }
	};
	const char *fmt = NULL;
	bool json = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:f:U", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'O':
			if (!strcmp(optarg, "json"))
				json = true;
			else if (strcmp(optarg, "human")) {
				log_err("--output must be human or json");
				return 1;
			}
			break;
		case 'U': break;
		default: return img_bad_option(argv, c, 1);
		}
	}
	if (optind != argc - 1) {
		log_err("expected one image (try 'xvm img map --help')");
		return 1;
	}
	struct blockdev *top = img_open(argv[optind], fmt, BLOCK_OPEN_RDONLY);
	if (!top)
		return 1;
	struct blockdev *layer[MAX_CHAIN];
	char *paths[MAX_CHAIN];
	unsigned n = 0;
	for (struct blockdev *bd = top; bd && n < MAX_CHAIN; bd = block_backing(bd)) {
		layer[n] = bd;
		if (n == 0) {
			paths[n] = xstrdup(argv[optind]);
		} else {
			struct block_info in;
			block_get_info(layer[n - 1], &in);
			paths[n] = img_backing_path(paths[n - 1], in.backing);
		}
		n++;
	}
	uint64_t size = block_size(top);
	struct map_entry cur = { 0 };
	bool have = false, first = true;
	int ret = 0;
	if (!json)
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
	for (uint64_t off = 0; off < size;) {
		uint64_t len = size - off;
		struct map_entry e = { .start = off, .offset = UINT64_MAX, .depth = n - 1, .zero = true };
		for (unsigned i = 0; i < n; i++) {
			if (off >= block_size(layer[i])) {
				e.depth = i; /* past a shorter backing file: zeros */
				break;
			}
			uint64_t pnum, host;
			unsigned st;
			ret = block_map(layer[i], off, len, &pnum, &st, &host);
			if (ret < 0)
				goto done;
			len = MIN(len, pnum);
			if (st & BLOCK_STATUS_ALLOCATED) {
				e = (struct map_entry){ .start = off, .depth = i, .present = true,
							.zero = st & BLOCK_STATUS_ZERO,
							.data = st & BLOCK_STATUS_DATA, .offset = host };
				break;
			}
		}
		e.length = len;
		if (have && map_mergeable(&cur, &e, json)) {
			cur.length += e.length;
		} else {
			if (have) {
				map_print(&cur, json, first, paths);
				first = false;
			}
			cur = e;
			have = true;
		}
		off += len;
	}
	if (have)
		map_print(&cur, json, first, paths);
	if (json)
		printf("%s]\n", first && !have ? "[" : "");
done:
	for (unsigned i = 0; i < n; i++)
		free(paths[i]);
	block_close(top);
	if (ret < 0) {
		log_err("%s: block status failed: %s", argv[optind], strerror(-ret));
		return 1;
	}
	return 0;
}
