/* blktool: drives the block library directly, for the interop, crash and
 * fuzz checks in tests/check.d/block-*.sh (independent of `xvm img`).
 *
 *   blktool create FMT IMG SIZE [key=val ...]   cluster_size= refcount_bits= compat=0.10
 *                                               backing= backing_fmt= compression= prealloc=metadata
 *   blktool read-all IMG OUT                    whole virtual disk to a raw file
 *   blktool convert SRC DST FMT [-c] [key=val]  sparse copy into a new image
 *   blktool write IMG OFF LEN SEED              pattern write
 *   blktool zero IMG OFF LEN [unmap] | discard IMG OFF LEN
 *   blktool map IMG                             block status runs
 *   blktool check IMG [leaks|all]               exit 0 clean, 2 corrupt, 3 leaks only
 *   blktool snapshot IMG -c|-a|-d|-l [NAME]
 *   blktool resize IMG SIZE
 *   blktool info IMG
 *   blktool crash-init IMG                      fills the image with generation 0
 *   blktool crash-writer IMG SEED               seeded writes/zeroes/discards forever,
 *                                               "flushed G" after each flush
 *   blktool crash-verify IMG SEED G             flushed state survived (exit 2 if not)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"
#include "lib/util.h"

static char err[1024];

static struct blockdev *open_img(const char *path, unsigned flags)
{
	struct blockdev *bd;
	if (block_open(path, NULL, flags, &bd, err, sizeof(err)) < 0) {
		fprintf(stderr, "blktool: %s\n", err);
		exit(1);
	}
	return bd;
}

static void fail(const char *what, int ret)
{
	fprintf(stderr, "blktool: %s: %s\n", what, strerror(-ret));
	exit(1);
}

static uint64_t num(const char *s)
{
	uint64_t v;
	if (!parse_size(s, &v)) {
		fprintf(stderr, "blktool: bad number '%s'\n", s);
		exit(1);
	}
	return v;
}

static void pattern(uint8_t *buf, uint64_t len, uint64_t off, uint64_t seed)
{
	for (uint64_t i = 0; i < len; i++) {
		uint64_t x = (off + i) / 8 * 0x9e3779b97f4a7c15ULL + seed * 0x632be59bd9b4e019ULL;
		buf[i] = (uint8_t)(x >> (8 * ((off + i) % 8)) ^ (x >> 56));
	}
}

static void parse_opts(struct block_create_opts *o, int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		char *v = strchr(argv[i], '=');
		if (!v)
			continue;
		*v++ = 0;
		if (!strcmp(argv[i], "cluster_size"))
			o->cluster_size = (uint32_t)num(v);
		else if (!strcmp(argv[i], "refcount_bits"))
			o->refcount_bits = (unsigned)num(v);
		else if (!strcmp(argv[i], "compat"))
			o->compat_v2 = !strcmp(v, "0.10");
		else if (!strcmp(argv[i], "backing"))
			o->backing = v;
		else if (!strcmp(argv[i], "backing_fmt"))
			o->backing_format = v;
		else if (!strcmp(argv[i], "compression"))
			o->compression = v;
		else if (!strcmp(argv[i], "prealloc"))
			o->preallocate_metadata = !strcmp(v, "metadata");
	}
}

static int cmd_create(int argc, char **argv)
{
	struct block_create_opts o = { .format = argv[0], .size = num(argv[2]) };
	parse_opts(&o, argc - 3, argv + 3);
	if (block_create(argv[1], &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "blktool: %s\n", err);
		return 1;
	}
	return 0;
}

static int cmd_read_all(char **argv)
{
	struct blockdev *bd = open_img(argv[0], BLOCK_OPEN_RDONLY);
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		fail("open output", -errno);
	uint64_t size = block_size(bd), chunk = 4 * MiB;
	uint8_t *buf = xmalloc(chunk);
	for (uint64_t off = 0; off < size; off += chunk) {
		uint64_t n = MIN(chunk, size - off);
		int ret = block_pread(bd, buf, n, off);
		if (ret < 0)
			fail("read", ret);
		if (pwrite_full(fd, buf, n, off) < 0)
			fail("write output", -errno);
	}
	if (ftruncate(fd, (off_t)size) < 0)
		fail("truncate", -errno);
	close(fd);
	free(buf);
	return block_close(bd) < 0;
}

static int cmd_convert(int argc, char **argv)
{
	struct blockdev *src = open_img(argv[0], BLOCK_OPEN_RDONLY);
	bool compress = false;
	struct block_create_opts o = { .format = argv[2], .size = block_size(src) };
	for (int i = 3; i < argc; i++)
		if (!strcmp(argv[i], "-c"))
			compress = true;
	parse_opts(&o, argc - 3, argv + 3);
	if (block_create(argv[1], &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "blktool: %s\n", err);
		return 1;
	}
	struct blockdev *dst = open_img(argv[1], 0);
	struct block_info info;
	block_get_info(dst, &info);
	uint64_t cs = info.cluster_size ? info.cluster_size : 64 * KiB;
	uint64_t size = block_size(src), chunk = compress ? cs : MAX(cs, 2 * MiB);
	uint8_t *buf = xmalloc(chunk);
	uint64_t off = 0;
	while (off < size) {
		uint64_t pnum;
		unsigned st;
		int ret = block_status(src, off, MIN(size - off, 64 * MiB), &pnum, &st);
		if (ret < 0)
			fail("status", ret);
		if (compress) {
			/* Whole clusters, skipping the all-zero ones. */
			uint64_t n = MIN(cs, size - off);
			ret = block_pread(src, buf, n, off);
			if (ret < 0)
				fail("read", ret);
			bool zero = true;
			for (uint64_t i = 0; i < n && zero; i++)
				zero = buf[i] == 0;
			if (!zero && (ret = block_pwrite_compressed(dst, buf, n, off)) < 0)
				fail("write compressed", ret);
			off += n;
			continue;
		}
		if (!(st & BLOCK_STATUS_DATA) && (st & BLOCK_STATUS_ZERO)) {
			off += pnum;
			continue;
		}
		uint64_t end = off + pnum;
		while (off < end) {
			uint64_t n = MIN(chunk - off % chunk, end - off);
			ret = block_pread(src, buf, n, off);
			if (ret < 0)
				fail("read", ret);
			ret = block_pwrite(dst, buf, n, off);
			if (ret < 0)
				fail("write", ret);
			off += n;
		}
	}
	free(buf);
	block_close(src);
	return block_close(dst) < 0;
}

static int cmd_write(char **argv, bool flush)
{
	struct blockdev *bd = open_img(argv[0], 0);
	uint64_t off = num(argv[1]), len = num(argv[2]), seed = num(argv[3]);
	uint8_t *buf = xmalloc(len ? len : 1);
	pattern(buf, len, off, seed);
	int ret = block_pwrite(bd, buf, len, off);
	if (ret < 0)
		fail("write", ret);
	free(buf);
	return block_close(bd) < 0;
}

static int cmd_map(char **argv)
{
	struct blockdev *bd = open_img(argv[0], BLOCK_OPEN_RDONLY);
	uint64_t size = block_size(bd), off = 0;
	while (off < size) {
		uint64_t pnum;
		unsigned st;
		int ret = block_status(bd, off, size - off, &pnum, &st);
		if (ret < 0)
			fail("status", ret);
		printf("%llu %llu %s%s%s\n", (unsigned long long)off, (unsigned long long)pnum,
		       st & BLOCK_STATUS_DATA ? "data" : "-", st & BLOCK_STATUS_ZERO ? ",zero" : "",
		       st & BLOCK_STATUS_ALLOCATED ? ",allocated" : "");
		off += pnum;
	}
	return block_close(bd) < 0;
}

static int cmd_check(int argc, char **argv)
{
	unsigned fix = 0;
	if (argc > 1)
		fix = !strcmp(argv[1], "all") ? BLOCK_FIX_LEAKS | BLOCK_FIX_ERRORS : BLOCK_FIX_LEAKS;
	struct blockdev *bd = open_img(argv[0], fix ? 0 : BLOCK_OPEN_RDONLY);
	struct block_check_result r;
	int ret = block_check(bd, fix, &r);
	if (ret < 0)
		fail("check", ret);
	printf("corruptions=%llu leaks=%llu check_errors=%llu fixed_corruptions=%llu "
	       "fixed_leaks=%llu allocated=%llu compressed=%llu end=%llu\n",
	       (unsigned long long)r.corruptions, (unsigned long long)r.leaks,
	       (unsigned long long)r.check_errors, (unsigned long long)r.corruptions_fixed,
	       (unsigned long long)r.leaks_fixed, (unsigned long long)r.allocated_clusters,
	       (unsigned long long)r.compressed_clusters, (unsigned long long)r.image_end_offset);
	if (r.first_problem[0])
		printf("first problem: %s\n", r.first_problem);
	block_close(bd);
	if (r.corruptions > r.corruptions_fixed || r.check_errors)
		return 2;
	if (r.leaks > r.leaks_fixed)
		return 3;
	return 0;
}

static int cmd_snapshot(int argc, char **argv)
{
	const char *op = argv[1];
	struct blockdev *bd = open_img(argv[0], !strcmp(op, "-l") ? BLOCK_OPEN_RDONLY : 0);
	int ret = 0;
	if (!strcmp(op, "-l")) {
		struct block_snapshot *l;
		unsigned n;
		ret = block_snapshot_list(bd, &l, &n);
		for (unsigned i = 0; i < n; i++)
			printf("%s %s %llu\n", l[i].id, l[i].name, (unsigned long long)l[i].disk_size);
		free(l);
	} else if (argc < 3) {
		ret = -EINVAL;
	} else if (!strcmp(op, "-c")) {
		ret = block_snapshot_create(bd, argv[2], err, sizeof(err));
	} else if (!strcmp(op, "-a")) {
		ret = block_snapshot_apply(bd, argv[2], err, sizeof(err));
	} else if (!strcmp(op, "-d")) {
		ret = block_snapshot_delete(bd, argv[2], err, sizeof(err));
	}
	if (ret < 0) {
		fprintf(stderr, "blktool: snapshot: %s\n", err[0] ? err : strerror(-ret));
		return 1;
	}
	return block_close(bd) < 0;
}

static int cmd_info(char **argv)
{
	struct blockdev *bd = open_img(argv[0], BLOCK_OPEN_RDONLY);
	struct block_info i;
	block_get_info(bd, &i);
	printf("format=%s size=%llu cluster=%u version=%u refbits=%u backing=%s "
	       "backing_fmt=%s compression=%s dirty=%d corrupt=%d snapshots=%u\n",
	       i.format, (unsigned long long)i.virtual_size, i.cluster_size, i.qcow2_version,
	       i.refcount_bits, i.backing, i.backing_format, i.compression, i.dirty, i.corrupt,
	       i.n_snapshots);
	return block_close(bd) < 0;
}

/* ---- crash test: a writer that is killed, and a verifier ----
 * The disk is seen as 4 KiB slots. Op g (1, 2, ...) is a pure function of
 * (seed, g): it sets a run of slots to pattern (seed, g) or to zeros.
 * Generation 0 is the initial content (every slot holds pattern 0). */
#define SLOT 4096ULL

struct crash_op { int kind; uint64_t slot, n; }; /* kind 0 write, 1 zero, 2 discard */

static struct crash_op crash_op(uint64_t seed, uint64_t gen, uint64_t slots)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL ^ gen * 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 31;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 29;
	struct crash_op op;
	op.n = 1 + (x % 48);
	op.slot = (x >> 8) % (slots - op.n);
	unsigned k = (unsigned)((x >> 40) % 10);
	op.kind = k < 7 ? 0 : k < 9 ? 1 : 2;
	return op;
}

static void slot_pattern(uint8_t *buf, uint64_t slot, uint64_t seed, uint64_t gen)
{
	pattern(buf, SLOT, slot * SLOT, seed * 1000003 + gen);
}

static _Noreturn void cmd_crash_writer(char **argv)
{
	struct blockdev *bd = open_img(argv[0], 0);
	uint64_t seed = num(argv[1]), slots = block_size(bd) / SLOT;
	uint8_t *buf = xmalloc(48 * SLOT);
	setvbuf(stdout, NULL, _IONBF, 0);
	for (uint64_t gen = 1;; gen++) {
		struct crash_op op = crash_op(seed, gen, slots);
		int ret;
		if (op.kind == 0) {
			for (uint64_t i = 0; i < op.n; i++)
				slot_pattern(buf + i * SLOT, op.slot + i, seed, gen);
			ret = block_pwrite(bd, buf, op.n * SLOT, op.slot * SLOT);
		} else if (op.kind == 1) {
			ret = block_write_zeroes(bd, op.slot * SLOT, op.n * SLOT, gen & 1);
		} else {
			ret = block_discard(bd, op.slot * SLOT, op.n * SLOT);
		}
		if (ret < 0)
			fail("crash-writer op", ret);
		if (gen % 8 == 0) {
			if ((ret = block_flush(bd)) < 0)
				fail("flush", ret);
			printf("flushed %llu\n", (unsigned long long)gen);
		}
	}
}

/* Every slot must hold its state as of the last flush, or a state that a
 * later (unflushed) op may have given it. */
static int cmd_crash_verify(char **argv)
{
	struct blockdev *bd = open_img(argv[0], BLOCK_OPEN_RDONLY);
	uint64_t seed = num(argv[1]), flushed = num(argv[2]), slots = block_size(bd) / SLOT;
	uint64_t *last = xcalloc(slots, sizeof(*last)); /* gen of state; kind in low bits */
	int *kind = xcalloc(slots, sizeof(*kind));
	for (uint64_t g = 1; g <= flushed; g++) {
		struct crash_op op = crash_op(seed, g, slots);
		for (uint64_t i = 0; i < op.n; i++) {
			last[op.slot + i] = g;
			kind[op.slot + i] = op.kind;
		}
	}
	uint8_t *got = xmalloc(SLOT), *want = xmalloc(SLOT), *zero = xcalloc(1, SLOT);
	uint64_t bad = 0;
	for (uint64_t s = 0; s < slots; s++) {
		int ret = block_pread(bd, got, SLOT, s * SLOT);
		if (ret < 0)
			fail("read", ret);
		bool ok = kind[s] == 2; /* discarded: any content is allowed */
		if (ok) {
		} else if (kind[s] == 0) {
			slot_pattern(want, s, last[s] ? seed : 0, last[s]);
			if (last[s] == 0)
				slot_pattern(want, s, 0, 0);
			ok = !memcmp(got, want, SLOT);
		} else {
			ok = !memcmp(got, zero, SLOT);
		}
		for (uint64_t g = flushed + 1; !ok && g <= flushed + 8; g++) {
			struct crash_op op = crash_op(seed, g, slots);
			if (s < op.slot || s >= op.slot + op.n)
				continue;
			if (op.kind == 0) {
				slot_pattern(want, s, seed, g);
				ok = !memcmp(got, want, SLOT);
			} else if (op.kind == 2) {
				ok = true;
			} else {
				ok = !memcmp(got, zero, SLOT);
			}
		}
		if (!ok && bad++ < 5)
			fprintf(stderr, "slot %llu: content lost (state gen %llu kind %d)\n",
				(unsigned long long)s, (unsigned long long)last[s], kind[s]);
	}
	block_close(bd);
	free(last);
	free(kind);
	free(got);
	free(want);
	free(zero);
	return bad ? 2 : 0;
}

/* Initial content for the crash test: every slot pattern (0, 0). */
static int cmd_crash_init(char **argv)
{
	struct blockdev *bd = open_img(argv[0], 0);
	uint64_t slots = block_size(bd) / SLOT;
	uint8_t *buf = xmalloc(SLOT);
	for (uint64_t s = 0; s < slots; s++) {
		slot_pattern(buf, s, 0, 0);
		int ret = block_pwrite(bd, buf, SLOT, s * SLOT);
		if (ret < 0)
			fail("write", ret);
	}
	free(buf);
	return block_close(bd) < 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: see tests/tools/blktool.c\n");
		return 1;
	}
	const char *cmd = argv[1];
	argc -= 2;
	argv += 2;
	if (!strcmp(cmd, "create") && argc >= 3)
		return cmd_create(argc, argv);
	if (!strcmp(cmd, "read-all") && argc >= 2)
		return cmd_read_all(argv);
	if (!strcmp(cmd, "convert") && argc >= 3)
		return cmd_convert(argc, argv);
	if (!strcmp(cmd, "write") && argc >= 4)
		return cmd_write(argv, false);
	if (!strcmp(cmd, "zero") && argc >= 3) {
		struct blockdev *bd = open_img(argv[0], 0);
		int ret = block_write_zeroes(bd, num(argv[1]), num(argv[2]),
					     argc > 3 ? BLOCK_ZERO_MAY_UNMAP : 0);
		if (ret < 0)
			fail("zero", ret);
		return block_close(bd) < 0;
	}
	if (!strcmp(cmd, "discard") && argc >= 3) {
		struct blockdev *bd = open_img(argv[0], 0);
		int ret = block_discard(bd, num(argv[1]), num(argv[2]));
		if (ret < 0)
			fail("discard", ret);
		return block_close(bd) < 0;
	}
	if (!strcmp(cmd, "map"))
		return cmd_map(argv);
	if (!strcmp(cmd, "check"))
		return cmd_check(argc, argv);
	if (!strcmp(cmd, "snapshot") && argc >= 2)
		return cmd_snapshot(argc, argv);
	if (!strcmp(cmd, "resize") && argc >= 2) {
		struct blockdev *bd = open_img(argv[0], 0);
		int ret = block_resize(bd, num(argv[1]));
		if (ret < 0)
			fail("resize", ret);
		return block_close(bd) < 0;
	}
	if (!strcmp(cmd, "info"))
		return cmd_info(argv);
	if (!strcmp(cmd, "crash-writer") && argc >= 2)
		cmd_crash_writer(argv);
	if (!strcmp(cmd, "crash-verify") && argc >= 3)
		return cmd_crash_verify(argv);
	if (!strcmp(cmd, "crash-init"))
		return cmd_crash_init(argv);
	fprintf(stderr, "blktool: unknown command or missing arguments\n");
	return 1;
}
