/* xvm img: create, inspect, check, resize and snapshot disk images. The
 * copying subcommands live in img_convert.c and img_chain.c. Everything
 * goes through the block API (block/block.h); option names and exit codes
 * follow qemu-img's so users' habits and scripts carry over. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/img.h"
#include "lib/log.h"
#include "lib/util.h"

/* ---- shared helpers ---- */

struct blockdev *img_open(const char *path, const char *fmt, unsigned flags)
{
	struct blockdev *bd;
	char err[512];
	if (block_open(path, fmt, flags, &bd, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return NULL;
	}
	return bd;
}

char *img_backing_path(const char *image, const char *backing)
{
	const char *slash = strrchr(image, '/');
	if (backing[0] == '/' || !slash)
		return xstrdup(backing);
	size_t dl = (size_t)(slash - image) + 1;
	char *p = xmalloc(dl + strlen(backing) + 1);
	memcpy(p, image, dl);
	strcpy(p + dl, backing);
	return p;
}

bool img_is_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	/* Bytes up to 8-byte alignment, then 64 bytes at a time (the compiler
	 * vectorizes the OR), then the tail. */
	while (len && ((uintptr_t)p & 7)) {
		if (*p)
			return false;
		p++;
		len--;
	}
	const uint64_t *w = (const uint64_t *)p;
	while (len >= 64) {
		if (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7])
			return false;
		w += 8;
		len -= 64;
	}
	p = (const uint8_t *)w;
	while (len) {
		if (*p)
			return false;
		p++;
		len--;
	}
	return true;
}

static bool parse_bool_off(const char *key, const char *v)
{
	if (v && (!strcmp(v, "off") || !strcmp(v, "false")))
		return true;
	log_err("%s=%s is not supported (only off)", key, v ? v : "");
	return false;
}

bool img_parse_create_opts(char *opts, struct block_create_opts *o)
{
	char *cur = opts, *item;
	while ((item = opt_next(&cur))) {
		char *v;
		uint64_t n;
		if (opt_key(item, "cluster_size", &v)) {
			if (!v || !parse_size(v, &n) || n < 512 || n > 2 * MiB || !IS_POW2(n)) {
				log_err("invalid cluster_size '%s' (a power of two, 512 to 2M)", v ? v : "");
				return false;
			}
			o->cluster_size = (uint32_t)n;
		} else if (opt_key(item, "compat", &v)) {
			if (v && (!strcmp(v, "0.10") || !strcmp(v, "v2")))
				o->compat_v2 = 1;
			else if (v && (!strcmp(v, "1.1") || !strcmp(v, "v3")))
				o->compat_v2 = 0;
			else {
				log_err("invalid compat '%s' (0.10 or 1.1)", v ? v : "");
				return false;
			}
		} else if (opt_key(item, "backing_file", &v)) {
			o->backing = v;
		} else if (opt_key(item, "backing_fmt", &v)) {
			o->backing_format = v;
		} else if (opt_key(item, "compression_type", &v)) {
			if (!v || (strcmp(v, "zlib") && strcmp(v, "zstd"))) {
				log_err("invalid compression_type '%s' (zlib or zstd)", v ? v : "");
				return false;
			}
			o->compression = v;
		} else if (opt_key(item, "refcount_bits", &v)) {
			if (!v || !parse_u64(v, &n) || n == 0 || n > 64 || !IS_POW2(n)) {
				log_err("invalid refcount_bits '%s' (1, 2, 4, ... 64)", v ? v : "");
				return false;
			}
			o->refcount_bits = (unsigned)n;
		} else if (opt_key(item, "preallocation", &v)) {
			if (v && !strcmp(v, "metadata"))
				o->preallocate_metadata = true;
			else if (!v || strcmp(v, "off")) {
				log_err("invalid preallocation '%s' (off or metadata)", v ? v : "");
				return false;
			}
		} else if (opt_key(item, "size", &v)) {
			if (!v || !parse_size(v, &n)) {
				log_err("invalid size '%s'", v ? v : "");
				return false;
			}
			o->size = n;
		} else if (opt_key(item, "lazy_refcounts", &v) || opt_key(item, "extended_l2", &v)) {
			if (!parse_bool_off(item, v))
				return false;
		} else {
			log_err("invalid option '%s' (try 'xvm img create --help')", item);
			return false;
		}
	}
	return true;
}

void img_progress(uint64_t done, uint64_t total, bool enabled)
{
	static int last = -1;
	if (!enabled)
		return;
	int pct = total ? (int)(done * 10000 / total) : 10000;
	if (pct / 100 == last / 100 && (pct != 10000 || last == 10000))
		return;
	last = pct;
	printf("    (%d.%02d/100%%)\r", pct / 100, pct % 100);
	if (pct == 10000)
		printf("\n");
	fflush(stdout);
}

int img_bad_option(char **argv, int c, int rc)
{
	/* getopt leaves optind on "--word" when a short-only parser meets it. */
	const char *arg = argv[optind - 1];
	if (optopt == '-' && argv[optind] && !strncmp(argv[optind], "--", 2))
		arg = argv[optind];
	if (c == ':')
		log_err("option %s needs a value (try 'xvm img %s --help')", arg, argv[0]);
	else if (optopt && optopt != '-' && strncmp(arg, "--", 2))
		log_err("unknown option -%c (try 'xvm img %s --help')", optopt, argv[0]);
	else
		log_err("unknown option '%s' (try 'xvm img %s --help')", arg, argv[0]);
	return rc;
}

bool img_want_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	return false;
}

/* ---- create ---- */

static int img_cmd_create(int argc, char **argv)
{
	struct block_create_opts o = { .format = "raw" };
	char *backing = NULL, *backing_fmt = NULL;
	bool quiet = false, unsafe = false;
	char *optstrs[16];
	unsigned nopt = 0;
	int c;
	optind = 1;
	while ((c = getopt(argc, argv, "+:f:b:F:o:qu")) != -1) {
		switch (c) {
		case 'f': o.format = optarg; break;
		case 'b': backing = optarg; break;
		case 'F': backing_fmt = optarg; break;
		case 'o':
			if (nopt == ARRAY_SIZE(optstrs)) {
				log_err("too many -o options");
				return 1;
			}
			optstrs[nopt++] = optarg;
			break;
		case 'q': quiet = true; break;
		case 'u': unsafe = true; break;
		default: return img_bad_option(argv, c, 1);
		}
	}
	for (unsigned i = 0; i < nopt; i++)
		if (!img_parse_create_opts(optstrs[i], &o))
			return 1;
	if (backing)
		o.backing = backing;
	if (backing_fmt)
		o.backing_format = backing_fmt;
	if (optind >= argc) {
		log_err("no file name given (try 'xvm img create --help')");
		return 1;
	}
	const char *path = argv[optind++];
	if (optind < argc) {
		if (!parse_size(argv[optind], &o.size)) {
			log_err("invalid size '%s' (e.g. 10G, 512M, 1048576)", argv[optind]);
			return 1;
		}
		optind++;
	}
	if (optind < argc) {
		log_err("unexpected argument '%s'", argv[optind]);
		return 1;
	}
	if (o.backing && !*o.backing)
		o.backing = NULL;
	/* Check the backing file (and learn its format and size) unless -u. */
	char probed_fmt[16] = "";
	if (o.backing && !unsafe) {
		char *bpath = img_backing_path(path, o.backing);
		struct blockdev *b = img_open(bpath, o.backing_format, BLOCK_OPEN_RDONLY);
		free(bpath);
		if (!b) {
			log_err("could not open the backing file '%s'", o.backing);
			return 1;
		}
		snprintf(probed_fmt, sizeof(probed_fmt), "%s", block_format_name(b));
		if (!o.size)
			o.size = block_size(b);
		block_close(b);
		if (!o.backing_format)
			o.backing_format = probed_fmt;
	} else if (!o.size && !o.backing) {
		log_err("no size given (try 'xvm img create --help')");
		return 1;
	}
	/* Whole sectors, as qemu-img does: qemu sees a qcow2 size rounded down. */
	if (o.size > UINT64_MAX - 511) {
		log_err("size too large");
		return 1;
	}
	o.size = ALIGN_UP(o.size, 512);
	bool qcow2 = !strcmp(o.format, "qcow2");
	if (!quiet) {
		printf("Formatting '%s', fmt=%s", path, o.format);
		if (qcow2)
			printf(" cluster_size=%u compression_type=%s", o.cluster_size ? o.cluster_size : 65536,
			       o.compression ? o.compression : "zlib");
		printf(" size=%llu", (unsigned long long)o.size);
		if (o.backing)
			printf(" backing_file=%s", o.backing);
		if (o.backing_format)
			printf(" backing_fmt=%s", o.backing_format);
		if (qcow2)
			printf(" refcount_bits=%u", o.refcount_bits ? o.refcount_bits : 16);
		printf("\n");
		fflush(stdout);
	}
	char err[512];
	if (block_create(path, &o, err, sizeof(err)) < 0) {
		log_err("%s: %s", path, err);
		return 1;
	}
	return 0;
}

/* ---- info ---- */

static void human_size(uint64_t v, char *buf, size_t len)
{
	format_size(v, buf, len);
}

static json_t *snapshots_json(struct block_snapshot *s, unsigned n)
{
	json_t *arr = json_array();
	for (unsigned i = 0; i < n; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "icount", json_integer(0));
		json_object_set_new(o, "vm-state-size", json_integer((json_int_t)s[i].vm_state_size));
		json_object_set_new(o, "date-sec", json_integer(s[i].date_sec));
		json_object_set_new(o, "date-nsec", json_integer(s[i].date_nsec));
		json_object_set_new(o, "vm-clock-sec", json_integer((json_int_t)(s[i].vm_clock_nsec / 1000000000ull)));
		json_object_set_new(o, "vm-clock-nsec", json_integer((json_int_t)(s[i].vm_clock_nsec % 1000000000ull)));
		json_object_set_new(o, "id", json_string(s[i].id));
		json_object_set_new(o, "name", json_string(s[i].name));
		json_array_append_new(arr, o);
	}
	return arr;
}

static void print_snapshot_table(struct block_snapshot *s, unsigned n)
{
	printf("%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT");
	for (unsigned i = 0; i < n; i++) {
		char date[32], vmsize[32], clock[32];
		time_t t = (time_t)s[i].date_sec;
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
		human_size(s[i].vm_state_size, vmsize, sizeof(vmsize));
		uint64_t ms = s[i].vm_clock_nsec / 1000000;
		snprintf(clock, sizeof(clock), "%02llu:%02llu:%02llu.%03llu",
			 (unsigned long long)(ms / 3600000), (unsigned long long)(ms / 60000 % 60),
			 (unsigned long long)(ms / 1000 % 60), (unsigned long long)(ms % 1000));
		printf("%-10s%-17s%8s%20s%13s%11d\n", s[i].id, s[i].name, vmsize, date, clock, 0);
	}
}

/* Info on one image; *next gets the backing file's path (or NULL). */
static json_t *image_info(const char *path, const char *fmt, bool json, char **next, char **next_fmt)
{
	*next = *next_fmt = NULL;
	struct blockdev *bd = img_open(path, fmt, BLOCK_OPEN_RDONLY | BLOCK_OPEN_NO_BACKING);
	if (!bd)
		return NULL;
	struct block_info in;
	int ret = block_get_info(bd, &in);
	if (ret < 0) {
		log_err("%s: cannot read the image information: %s", path, strerror(-ret));
		block_close(bd);
		return NULL;
	}
	struct block_snapshot *snaps = NULL;
	unsigned nsnaps = 0;
	block_snapshot_list(bd, &snaps, &nsnaps);
	bool qcow2 = !strcmp(in.format, "qcow2");
	char *full_backing = in.backing[0] ? img_backing_path(path, in.backing) : NULL;

	json_t *o = json_object();
	if (in.backing_format[0])
		json_object_set_new(o, "backing-filename-format", json_string(in.backing_format));
	json_object_set_new(o, "virtual-size", json_integer((json_int_t)in.virtual_size));
	json_object_set_new(o, "filename", json_string(path));
	if (in.cluster_size)
		json_object_set_new(o, "cluster-size", json_integer(in.cluster_size));
	json_object_set_new(o, "format", json_string(in.format));
	json_object_set_new(o, "actual-size", json_integer((json_int_t)in.actual_size));
	if (nsnaps)
		json_object_set_new(o, "snapshots", snapshots_json(snaps, nsnaps));
	if (qcow2) {
		json_t *d = json_object();
		json_object_set_new(d, "compat", json_string(in.qcow2_version >= 3 ? "1.1" : "0.10"));
		if (in.qcow2_version >= 3) {
			json_object_set_new(d, "compression-type",
					    json_string(in.compression[0] ? in.compression : "zlib"));
			json_object_set_new(d, "lazy-refcounts", json_false());
		}
		json_object_set_new(d, "refcount-bits", json_integer(in.refcount_bits ? in.refcount_bits : 16));
		json_object_set_new(d, "corrupt", json_boolean(in.corrupt));
		if (in.qcow2_version >= 3)
			json_object_set_new(d, "extended-l2", json_false());
		json_t *fs = json_object();
		json_object_set_new(fs, "type", json_string("qcow2"));
		json_object_set_new(fs, "data", d);
		json_object_set_new(o, "format-specific", fs);
	}
	if (full_backing) {
		json_object_set_new(o, "full-backing-filename", json_string(full_backing));
		json_object_set_new(o, "backing-filename", json_string(in.backing));
	}
	json_object_set_new(o, "dirty-flag", json_boolean(in.dirty));

	if (!json) {
		char vs[32], ds[32];
		human_size(in.virtual_size, vs, sizeof(vs));
		human_size(in.actual_size, ds, sizeof(ds));
		printf("image: %s\nfile format: %s\n", path, in.format);
		printf("virtual size: %s (%llu bytes)\n", vs, (unsigned long long)in.virtual_size);
		printf("disk size: %s\n", ds);
		if (in.cluster_size)
			printf("cluster_size: %u\n", in.cluster_size);
		if (in.backing[0]) {
			printf("backing file: %s", in.backing);
			if (strcmp(full_backing, in.backing))
				printf(" (actual path: %s)", full_backing);
			printf("\n");
			if (in.backing_format[0])
				printf("backing file format: %s\n", in.backing_format);
		}
		if (in.dirty)
			printf("cleanly shut down: no\n");
		if (nsnaps) {
			printf("Snapshot list:\n");
			print_snapshot_table(snaps, nsnaps);
		}
		if (qcow2) {
			printf("Format specific information:\n");
			printf("    compat: %s\n", in.qcow2_version >= 3 ? "1.1" : "0.10");
			if (in.qcow2_version >= 3)
				printf("    compression type: %s\n    lazy refcounts: false\n",
				       in.compression[0] ? in.compression : "zlib");
			printf("    refcount bits: %u\n", in.refcount_bits ? in.refcount_bits : 16);
			printf("    corrupt: %s\n", in.corrupt ? "true" : "false");
			if (in.qcow2_version >= 3)
				printf("    extended l2: false\n");
		}
	}
	if (full_backing) {
		*next = full_backing;
		if (in.backing_format[0])
			*next_fmt = xstrdup(in.backing_format);
	}
	free(snaps);
	block_close(bd);
	return o;
}

static int img_cmd_info(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'O' },
		{ "backing-chain", no_argument, NULL, 'B' },
		{ "force-share", no_argument, NULL, 'U' },
		{ 0 }
	};
	const char *fmt = NULL;
	bool json = false, chain = false;
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
		case 'B': chain = true; break;
		case 'U': break;
		default: return img_bad_option(argv, c, 1);
		}
	}
	if (optind != argc - 1) {
		log_err("expected one image (try 'xvm img info --help')");
		return 1;
	}
	json_t *all = json_array();
	char *path = xstrdup(argv[optind]);
	char *pfmt = fmt ? xstrdup(fmt) : NULL;
	int rc = 0;
	for (unsigned depth = 0; path; depth++) {
		if (depth == 64) {
			log_err("backing chain longer than 64 images (a loop?)");
			rc = 1;
			break;
		}
		if (depth && !json)
			printf("\n");
		char *next, *next_fmt;
		json_t *o = image_info(path, pfmt, json, &next, &next_fmt);
		free(path);
		free(pfmt);
		path = next;
		pfmt = next_fmt;
		if (!o) {
			rc = 1;
			break;
		}
		json_array_append_new(all, o);
		if (!chain)
			break;
	}
	free(path);
	free(pfmt);
	if (json && rc == 0) {
		json_t *out = chain ? all : json_array_get(all, 0);
		char *s = json_dumps(out, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
		printf("%s\n", s);
		free(s);
	}
	json_decref(all);
	return rc;
}

/* ---- check ---- */

static void check_report(const char *path, const char *fmt, const struct block_check_result *r, bool json)
{
	if (json) {
		json_t *o = json_object();
		json_object_set_new(o, "image-end-offset", json_integer((json_int_t)r->image_end_offset));
		json_object_set_new(o, "total-clusters", json_integer((json_int_t)r->total_clusters));
		json_object_set_new(o, "check-errors", json_integer((json_int_t)r->check_errors));
		if (r->corruptions)
			json_object_set_new(o, "corruptions", json_integer((json_int_t)r->corruptions));
		if (r->leaks)
			json_object_set_new(o, "leaks", json_integer((json_int_t)r->leaks));
		if (r->corruptions_fixed)
			json_object_set_new(o, "corruptions-fixed", json_integer((json_int_t)r->corruptions_fixed));
		if (r->leaks_fixed)
			json_object_set_new(o, "leaks-fixed", json_integer((json_int_t)r->leaks_fixed));
		json_object_set_new(o, "allocated-clusters", json_integer((json_int_t)r->allocated_clusters));
		json_object_set_new(o, "filename", json_string(path));
		json_object_set_new(o, "format", json_string(fmt));
		json_object_set_new(o, "fragmented-clusters", json_integer((json_int_t)r->fragmented_clusters));
		json_object_set_new(o, "compressed-clusters", json_integer((json_int_t)r->compressed_clusters));
		char *s = json_dumps(o, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
		printf("%s\n", s);
		free(s);
		json_decref(o);
		return;
	}
	if (r->corruptions) {
		printf("%llu errors were found on the image.\n"
		       "Data may be corrupted, or further writes to the image may corrupt it.\n",
		       (unsigned long long)r->corruptions);
		if (r->first_problem[0])
			printf("First problem: %s\n", r->first_problem);
	}
	if (r->leaks)
		printf("%s%llu leaked clusters were found on the image.\n"
		       "This means waste of disk space, but no harm to data.\n",
		       r->corruptions ? "\n" : "", (unsigned long long)r->leaks);
	if (r->check_errors)
		printf("\n%llu internal errors have occurred during the check.\n",
		       (unsigned long long)r->check_errors);
	if (!r->corruptions && !r->leaks && !r->check_errors)
		printf("No errors were found on the image.\n");
	if (r->total_clusters) {
		double t = (double)r->total_clusters, a = (double)r->allocated_clusters;
		printf("%llu/%llu = %.2f%% allocated, %.2f%% fragmented, %.2f%% compressed clusters\n",
		       (unsigned long long)r->allocated_clusters, (unsigned long long)r->total_clusters,
		       a * 100 / t, a ? r->fragmented_clusters * 100.0 / a : 0.0,
		       a ? r->compressed_clusters * 100.0 / a : 0.0);
	}
	if (r->image_end_offset)
		printf("Image end offset: %llu\n", (unsigned long long)r->image_end_offset);
}

static int img_cmd_check(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'O' },
		{ "repair", required_argument, NULL, 'r' },
		{ "force-share", no_argument, NULL, 'U' },
		{ 0 }
	};
	const char *fmt = NULL;
	bool json = false, quiet = false;
	unsigned fix = 0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:f:r:qU", longopts, NULL)) != -1) {
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
		case 'r':
			if (!strcmp(optarg, "leaks"))
				fix = BLOCK_FIX_LEAKS;
			else if (!strcmp(optarg, "all"))
				fix = BLOCK_FIX_LEAKS | BLOCK_FIX_ERRORS;
			else {
				log_err("-r must be leaks or all");
				return 1;
			}
			break;
		case 'q': quiet = true; break;
		case 'U': break;
		default: return img_bad_option(argv, c, 1);
		}
	}
	if (optind != argc - 1) {
		log_err("expected one image (try 'xvm img check --help')");
		return 1;
	}
	const char *path = argv[optind];
	struct blockdev *bd = img_open(path, fmt, (fix ? 0 : BLOCK_OPEN_RDONLY) | BLOCK_OPEN_NO_BACKING);
	if (!bd)
		return 1;
	struct block_check_result r;
	int ret = block_check(bd, fix, &r);
	if (ret == -ENOTSUP) {
		log_err("this image format (%s) does not support checks", block_format_name(bd));
		block_close(bd);
		return 63;
	}
	if (ret < 0) {
		log_err("%s: check failed: %s", path, strerror(-ret));
		block_close(bd);
		return 1;
	}
	if (fix && (r.leaks_fixed || r.corruptions_fixed)) {
		if (!json && !quiet)
			printf("The following inconsistencies were found and repaired:\n\n"
			       "    %llu leaked clusters\n    %llu corruptions\n\n"
			       "Double checking the fixed image now...\n",
			       (unsigned long long)r.leaks_fixed, (unsigned long long)r.corruptions_fixed);
		ret = block_check(bd, 0, &r);
		if (ret < 0) {
			log_err("%s: check failed: %s", path, strerror(-ret));
			block_close(bd);
			return 1;
		}
	}
	if (!quiet)
		check_report(path, block_format_name(bd), &r, json);
	ret = block_close(bd);
	if (ret < 0) {
		log_err("%s: %s", path, strerror(-ret));
		return 1;
	}
	if (r.check_errors)
		return 1;
	if (r.corruptions)
		return 2;
	if (r.leaks)
		return 3;
	return 0;
}

/* ---- resize ---- */

static int img_cmd_resize(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "shrink", no_argument, NULL, 'S' },
		{ 0 }
	};
	const char *fmt = NULL;
	bool shrink = false, quiet = false;
	int c;
	optind = 1;
	/* No permutation: "-1G" is a size, not an option. */
	while (optind < argc && !(argv[optind][0] == '-' && argv[optind][1] >= '0' && argv[optind][1] <= '9') &&
	       (c = getopt_long(argc, argv, "+:f:q", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'S': shrink = true; break;
		case 'q': quiet = true; break;
		default: return img_bad_option(argv, c, 1);
		}
	}
	if (optind != argc - 2) {
		log_err("expected an image and a size (try 'xvm img resize --help')");
		return 1;
	}
	const char *path = argv[optind], *s = argv[optind + 1];
	int sign = 0;
	if (*s == '+' || *s == '-')
		sign = *s++ == '+' ? 1 : -1;
	uint64_t v;
	if (!parse_size(s, &v)) {
		log_err("invalid size '%s'", argv[optind + 1]);
		return 1;
	}
	struct blockdev *bd = img_open(path, fmt, 0);
	if (!bd)
		return 1;
	uint64_t old = block_size(bd), size = v;
	if (sign > 0 && v > UINT64_MAX - old) {
		log_err("new size overflows");
		block_close(bd);
		return 1;
	}
	if (sign < 0 && v > old) {
		log_err("cannot shrink below zero (the image has %llu bytes)", (unsigned long long)old);
		block_close(bd);
		return 1;
	}
	if (sign)
		size = sign > 0 ? old + v : old - v;
	if (size > UINT64_MAX - 511) {
		log_err("new size too large");
		block_close(bd);
		return 1;
	}
	size = ALIGN_UP(size, 512); /* whole sectors, as for create */
	if (size < old && !shrink) {
		log_err("use the --shrink option to shrink an image (data past the new end is lost)");
		block_close(bd);
		return 1;
	}
	int ret = block_resize(bd, size);
	int cret = block_close(bd);
	if (!ret)
		ret = cret;
	if (ret < 0) {
		log_err("%s: resize failed: %s", path,
			ret == -ENOTSUP ? "not supported for this format" : strerror(-ret));
		return 1;
	}
	if (!quiet)
		printf("Image resized.\n");
	return 0;
}

/* ---- snapshot ---- */

static int img_cmd_snapshot(int argc, char **argv)
{
	const char *fmt = NULL, *name = NULL;
	char action = 0;
	bool quiet = false;
	int c;
	optind = 1;
	while ((c = getopt(argc, argv, "+:f:lc:a:d:qU")) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'l': case 'c': case 'a': case 'd':
			if (action) {
				log_err("give only one of -l, -c, -a, -d");
				return 1;
			}
			action = (char)c;
			name = optarg;
			break;
		case 'q': quiet = true; break;
		case 'U': break;
		default: return img_bad_option(argv, c, 1);
		}
	}
	if (!action)
		action = 'l';
	if (optind != argc - 1) {
		log_err("expected one image (try 'xvm img snapshot --help')");
		return 1;
	}
	const char *path = argv[optind];
	if (name && (!*name || strlen(name) >= sizeof(((struct block_snapshot *)0)->name))) {
		log_err("snapshot name must be 1 to %zu bytes",
			sizeof(((struct block_snapshot *)0)->name) - 1);
		return 1;
	}
	struct blockdev *bd = img_open(path, fmt, (action == 'l' ? BLOCK_OPEN_RDONLY : 0) |
				       BLOCK_OPEN_NO_BACKING);
	if (!bd)
		return 1;
	char err[512] = "";
	int ret = 0;
	switch (action) {
	case 'l': {
		struct block_snapshot *s;
		unsigned n;
		ret = block_snapshot_list(bd, &s, &n);
		if (ret == 0 && n && !quiet) {
			printf("Snapshot list:\n");
			print_snapshot_table(s, n);
		}
		free(s);
		if (ret < 0)
			snprintf(err, sizeof(err), "%s", strerror(-ret));
		break;
	}
	case 'c': ret = block_snapshot_create(bd, name, err, sizeof(err)); break;
	case 'a': ret = block_snapshot_apply(bd, name, err, sizeof(err)); break;
	case 'd': ret = block_snapshot_delete(bd, name, err, sizeof(err)); break;
	}
	int cret = block_close(bd);
	if (ret < 0) {
		log_err("%s: %s", path, err[0] ? err : strerror(-ret));
		return 1;
	}
	if (cret < 0) {
		log_err("%s: %s", path, strerror(-cret));
		return 1;
	}
	return 0;
}

/* ---- dispatch and help ---- */

static const struct img_cmd {
	const char *name;
	int (*fn)(int, char **);
	const char *synopsis;
	const char *help;
} img_cmds[] = {
	{ "create", img_cmd_create,
	  "create [-q] [-f FMT] [-b BACKING [-F BACKING_FMT]] [-u] [-o OPTIONS] FILE [SIZE]",
	  "Creates an image of SIZE bytes (suffixes K, M, G, T; powers of 1024).\n"
	  "  -f FMT          raw (default) or qcow2\n"
	  "  -b BACKING      backing file (qcow2), relative to FILE's directory;\n"
	  "                  without SIZE the image gets the backing file's size\n"
	  "  -F BACKING_FMT  the backing file's format (default: probed)\n"
	  "  -u              do not open the backing file to check it\n"
	  "  -q              quiet\n"
	  "  -o OPTIONS      comma-separated: cluster_size=512..2M (qcow2, default 64K),\n"
	  "                  compat=0.10|1.1, compression_type=zlib|zstd,\n"
	  "                  refcount_bits=1..64 (default 16), preallocation=off|metadata,\n"
	  "                  backing_file=PATH, backing_fmt=FMT, size=SIZE" },
	{ "info", img_cmd_info,
	  "info [-f FMT] [--output=human|json] [--backing-chain] FILE",
	  "Shows the format, sizes, backing file, snapshots and format details.\n"
	  "  --output=json    machine-readable, with qemu-img's key names\n"
	  "  --backing-chain  every image of the chain (a JSON array with --output=json)" },
	{ "check", img_cmd_check,
	  "check [-q] [-f FMT] [--output=human|json] [-r leaks|all] FILE",
	  "Checks a qcow2 image's metadata for consistency.\n"
	  "  -r leaks   free leaked clusters;  -r all   also repair corruptions\n"
	  "Exit status: 0 clean, 1 check failed, 2 corruptions, 3 only leaks,\n"
	  "63 the format cannot be checked." },
	{ "convert", img_cmd_convert,
	  "convert [-p] [-q] [-n] [-c] [-m N] [-S SIZE] [-f FMT] [-O OUTPUT_FMT] [-o OPTIONS]\n"
	  "                    [-B BACKING [-F BACKING_FMT]] [--target-is-zero] FILE [FILE...] OUTPUT",
	  "Copies FILE (several are concatenated) into a new image OUTPUT. Holes and\n"
	  "all-zero blocks are not written: the copy is sparse.\n"
	  "  -O FMT           output format (default raw);  -o OPTIONS  as for create\n"
	  "  -c               compress (qcow2 output)\n"
	  "  -p               progress;  -q quiet\n"
	  "  -n               do not create OUTPUT (it must exist and be large enough)\n"
	  "  --target-is-zero with -n: OUTPUT reads as zeros, skip writing zeros\n"
	  "  -m N             parallel requests (default 8, max 32)\n"
	  "  -W, -t, -T       accepted for compatibility (writes are always parallel;\n"
	  "                   the output is always flushed before convert succeeds)\n"
	  "  -S SIZE          zero runs at least SIZE long become holes (default 4K,\n"
	  "                   0 = write everything)\n"
	  "  -B BACKING       OUTPUT gets this backing file; only what differs from it\n"
	  "                   is copied" },
	{ "resize", img_cmd_resize,
	  "resize [-q] [-f FMT] [--shrink] FILE [+|-]SIZE",
	  "Sets the virtual size (absolute) or grows/shrinks it by SIZE.\n"
	  "  --shrink   required to make an image smaller (data past the end is lost)" },
	{ "snapshot", img_cmd_snapshot,
	  "snapshot [-q] [-f FMT] [-l | -c NAME | -a NAME | -d NAME] FILE",
	  "Internal snapshots of a qcow2 image.\n"
	  "  -l       list (default)\n"
	  "  -c NAME  create;  -a NAME  apply (revert to it);  -d NAME  delete\n"
	  "  NAME may be a snapshot's name or its ID." },
	{ "rebase", img_cmd_rebase,
	  "rebase [-q] [-p] [-f FMT] [-u] -b BACKING [-F BACKING_FMT] FILE",
	  "Changes FILE's backing file to BACKING (\"\" removes it). FILE's contents\n"
	  "stay the same: where the old and new backing files differ, the old data\n"
	  "is copied into FILE first.\n"
	  "  -u   unsafe: only rewrite the reference (the files must have equal content)" },
	{ "commit", img_cmd_commit,
	  "commit [-q] [-p] [-f FMT] [-d] FILE",
	  "Writes the data of FILE into its backing file, then empties FILE (which\n"
	  "then reads the same through the backing file).\n"
	  "  -d   do not empty FILE" },
	{ "compare", img_cmd_compare,
	  "compare [-q] [-p] [-s] [-f FMT] [-F FMT] FILE1 FILE2",
	  "Compares the contents of two images (of any formats).\n"
	  "  -s   strict: images of different sizes differ\n"
	  "Exit status: 0 identical, 1 different (the first differing offset is\n"
	  "printed), 2 error." },
	{ "map", img_cmd_map,
	  "map [-f FMT] [--output=human|json] FILE",
	  "Shows where the image's data lives: for each range, whether it is data\n"
	  "or zeros, in which image of the backing chain (depth) and at which\n"
	  "offset of that file." },
};

static void img_usage(FILE *f)
{
	fprintf(f, "usage: xvm img COMMAND [ARGS]\n\n"
		   "Disk image tool for raw and qcow2 images (options as in qemu-img).\n\ncommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(img_cmds); i++)
		fprintf(f, "  xvm img %s\n", img_cmds[i].synopsis);
	fprintf(f, "\n'xvm img COMMAND --help' describes each command. Sizes take the\n"
		   "suffixes K, M, G, T (powers of 1024).\n");
}

int cmd_img(int argc, char **argv)
{
	if (argc < 2) {
		img_usage(stderr);
		return 1;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		img_usage(stdout);
		return 0;
	}
	opterr = 0; /* img_bad_option words the errors */
	for (size_t i = 0; i < ARRAY_SIZE(img_cmds); i++) {
		if (strcmp(argv[1], img_cmds[i].name))
			continue;
		if (img_want_help(argc - 1, argv + 1)) {
			printf("usage: xvm img %s\n\n%s\n", img_cmds[i].synopsis, img_cmds[i].help);
			return 0;
		}
		return img_cmds[i].fn(argc - 1, argv + 1);
	}
	log_err("unknown img command '%s' (try 'xvm img --help')", argv[1]);
	return 1;
}
