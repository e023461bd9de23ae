/* Host decompression of Linux kernel payloads (gzip, xz, zstd, legacy
 * lz4), with the Debian libraries, into a buffer of bounded size. */
#include "machine/boot_priv.h"
#include "lib/util.h"

#include <errno.h>
#include <lz4.h>
#include <lz4frame.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#define LZ4_LEGACY_MAGIC     0x184C2102u
#define LZ4_LEGACY_BLOCK_MAX (8u << 20)

enum payload_format payload_detect(const uint8_t *p, size_t len)
{
	static const uint8_t xz[6] = { 0xFD, '7', 'z', 'X', 'Z', 0 };
	if (len >= 4 && memcmp(p, "\177ELF", 4) == 0)
		return PAYLOAD_NONE;
	if (len >= 2 && p[0] == 0x1F && (p[1] == 0x8B || p[1] == 0x9E))
		return PAYLOAD_GZIP;
	if (len >= 6 && memcmp(p, xz, 6) == 0)
		return PAYLOAD_XZ;
	if (len >= 4 && rd32(p) == 0xFD2FB528u)
		return PAYLOAD_ZSTD;
	if (len >= 4 && rd32(p) == LZ4_LEGACY_MAGIC)
		return PAYLOAD_LZ4;
	if (len >= 3 && memcmp(p, "BZh", 3) == 0)
		return PAYLOAD_BZIP2;
	if (len >= 3 && p[0] == 0x5D && p[1] == 0 && p[2] == 0)
		return PAYLOAD_LZMA;
	if (len >= 4 && p[0] == 0x89 && memcmp(p + 1, "LZO", 3) == 0)
		return PAYLOAD_LZO;
	return PAYLOAD_UNKNOWN;
}

const char *payload_format_name(enum payload_format f)
{
	switch (f) {
	case PAYLOAD_GZIP: return "gzip";
	case PAYLOAD_XZ: return "xz";
	case PAYLOAD_ZSTD: return "zstd";
	case PAYLOAD_LZ4: return "lz4";
	case PAYLOAD_BZIP2: return "bzip2";
	case PAYLOAD_LZMA: return "lzma";
	case PAYLOAD_LZO: return "lzo";
	case PAYLOAD_NONE: return "uncompressed";
	default: return "unknown";
	}
}

bool payload_can_decompress(enum payload_format f)
{
	return f == PAYLOAD_GZIP || f == PAYLOAD_XZ || f == PAYLOAD_ZSTD || f == PAYLOAD_LZ4 ||
	       f == PAYLOAD_NONE;
}

/* Inflates one gzip member from in[0..len) into out[0..max): *used is the
 * input it took, *n the output it made. */
static int gunzip_member(const uint8_t *in, size_t len, uint8_t *out, size_t max, size_t *used,
			 size_t *n, const char **why)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
		*why = "zlib init failed";
		return -ENOMEM;
	}
	z.next_in = (Bytef *)in;
	z.next_out = out;
	int r = Z_OK;
	/* zlib counts in uInt: feed in chunks so huge inputs work too. */
	size_t in_left = len, out_left = max;
	while (r == Z_OK) {
		if (z.avail_in == 0 && in_left) {
			z.avail_in = (uInt)MIN(in_left, (size_t)1 << 30);
			in_left -= z.avail_in;
		}
		if (z.avail_out == 0 && out_left) {
			z.avail_out = (uInt)MIN(out_left, (size_t)1 << 30);
			out_left -= z.avail_out;
		}
		if (z.avail_in == 0 || z.avail_out == 0)
			break;
		r = inflate(&z, Z_NO_FLUSH);
	}
	*used = (size_t)((const uint8_t *)z.next_in - in);
	*n = (size_t)((uint8_t *)z.next_out - out);
	inflateEnd(&z);
	if (r != Z_STREAM_END) {
		*why = r == Z_OK ? "output larger than the room for it, or input truncated" : "corrupt gzip data";
		return -EINVAL;
	}
	return 0;
}

static int gunzip(const uint8_t *in, size_t len, uint8_t *out, size_t max, size_t *n, const char **why)
{
	size_t used;
	return gunzip_member(in, len, out, max, &used, n, why);
}

static int unxz_flags(const uint8_t *in, size_t len, uint8_t *out, size_t max, size_t *n,
		      const char **why, uint32_t flags)
{
	lzma_stream s = LZMA_STREAM_INIT;
	if (lzma_stream_decoder(&s, UINT64_MAX, flags) != LZMA_OK) {
		*why = "liblzma init failed";
		return -ENOMEM;
	}
	s.next_in = in;
	s.avail_in = len;
	s.next_out = out;
	s.avail_out = max;
	lzma_ret r = lzma_code(&s, LZMA_FINISH);
	*n = max - s.avail_out;
	lzma_end(&s);
	if (r != LZMA_STREAM_END) {
		*why = r == LZMA_OK || r == LZMA_BUF_ERROR ? "output larger than the room for it, or input truncated"
							  : "corrupt xz data";
		return -EINVAL;
	}
	return 0;
}

static int unxz(const uint8_t *in, size_t len, uint8_t *out, size_t max, size_t *n, const char **why)
{
	return unxz_flags(in, len, out, max, n, why, 0);
}

/* The first zstd frame (a kernel payload may have data after it), or
 * with all_frames every frame of the input (a concatenated initrd). */
static int unzstd_frames(const uint8_t *in, size_t len, uint8_t *out, size_t max, size_t *n,
			 const char **why, bool all_frames)
{
	ZSTD_DStream *d = ZSTD_createDStream();
	if (!d) {
		*why = "libzstd init failed";
		return -ENOMEM;
	}
	/* The kernel compresses with a large window (--long). */
	ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 31);
	ZSTD_inBuffer ib = { in, len, 0 };
	ZSTD_outBuffer ob = { out, max, 0 };
	size_t r = 1;
	while (ib.pos < ib.size && (all_frames || r != 0)) {
		size_t before_in = ib.pos, before_out = ob.pos;
		r = ZSTD_decompressStream(d, &ob, &ib);
		if (ZSTD_isError(r)) {
			*why = "corrupt zstd data";
			ZSTD_freeDStream(d);
			return -EINVAL;
		}
		if (ib.pos == before_in && ob.pos == before_out)
			break; /* output full: no progress */
	}
	ZSTD_freeDStream(d);
	*n = ob.pos;
	if (r != 0 || (all_frames && ib.pos < ib.size)) {
		*why = all_frames ? "output larger than the room for it, or input truncated"
				  : "output larger than announced or input truncated";
		return -EINVAL;
	}
	return 0;
}

static int unzstd(const uint8_t *in, size_t len, uint8_t *out, size_t max, size_t *n, const char **why)
{
	return unzstd_frames(in, len, out, max, n, why, false);
}

/* The kernel's lz4 payload is the legacy format: a magic, then blocks of
 * a 32-bit compressed size and at most 8 MiB of output each. */
static int unlz4(const uint8_t *in, size_t len, uint8_t *out, size_t max, size_t *n, const char **why)
{
	size_t at = 4, done = 0;
	*why = "corrupt lz4 data";
	while (len - at >= 4) {
		uint32_t bsize = rd32(in + at);
		if (bsize == LZ4_LEGACY_MAGIC) { /* concatenated stream */
			at += 4;
			continue;
		}
		at += 4;
		/* Past the last block comes the size word the kernel build
		 * appends: it does not parse as a block. */
		if (bsize > len - at || bsize > (uint32_t)LZ4_compressBound(LZ4_LEGACY_BLOCK_MAX))
			break;
		int cap = (int)MIN(max - done, (size_t)LZ4_LEGACY_BLOCK_MAX);
		int got = LZ4_decompress_safe((const char *)in + at, (char *)out + done, (int)bsize, cap);
		if (got < 0)
			return -EINVAL;
		done += (size_t)got;
		at += bsize;
		if (done == max)
			break;
	}
	*n = done;
	if (done == 0)
		return -EINVAL;
	return 0;
}

int payload_decompress(enum payload_format f, const uint8_t *in, size_t len, size_t max_out,
		       uint8_t **out, size_t *out_len, const char **why)
{
	*out = NULL;
	*out_len = 0;
	if (f == PAYLOAD_NONE)
		max_out = len; /* an ELF, plus the size word and relocations */
	uint8_t *buf = malloc(max_out ? max_out : 1);
	if (!buf) {
		*why = "out of host memory";
		return -ENOMEM;
	}
	advise_huge(buf, max_out);
	size_t n = 0;
	int r;
	switch (f) {
	case PAYLOAD_GZIP: r = gunzip(in, len, buf, max_out, &n, why); break;
	case PAYLOAD_XZ: r = unxz(in, len, buf, max_out, &n, why); break;
	case PAYLOAD_ZSTD: r = unzstd(in, len, buf, max_out, &n, why); break;
	case PAYLOAD_LZ4: r = unlz4(in, len, buf, max_out, &n, why); break;
	case PAYLOAD_NONE: memcpy(buf, in, len); n = len; r = 0; break;
	default: *why = "unsupported format"; r = -ENOTSUP; break;
	}
	if (r < 0) {
		free(buf);
		return r;
	}
	*out = buf;
	*out_len = n;
	return 0;
}

/* ---- initrds ---- */

#define LZ4_FRAME_MAGIC 0x184D2204u

/* Concatenated gzip members (e.g. `cat a.gz b.gz`): each member's end
 * restarts the inflater; zero padding after the last one is accepted. */
static int gunzip_members(const uint8_t *in, size_t len, uint8_t *out, size_t max, size_t *n,
			  const char **why)
{
	size_t at = 0, done = 0;
	while (at < len) {
		if (len - at < 2 || in[at] != 0x1F || in[at + 1] != 0x8B) {
			for (size_t i = at; i < len; i++) {
				if (in[i]) {
					*why = "trailing data after a gzip member";
					return -EINVAL;
				}
			}
			break;
		}
		size_t used, made;
		int r = gunzip_member(in + at, len - at, out + done, max - done, &used, &made, why);
		if (r < 0)
			return r;
		at += used;
		done += made;
	}
	*n = done;
	return 0;
}

/* Every frame of a zstd or xz file, not just the first. */
static int unxz_all(const uint8_t *in, size_t len, uint8_t *out, size_t max, size_t *n, const char **why)
{
	return unxz_flags(in, len, out, max, n, why, LZMA_CONCATENATED);
}

static int unzstd_all(const uint8_t *in, size_t len, uint8_t *out, size_t max, size_t *n, const char **why)
{
	return unzstd_frames(in, len, out, max, n, why, true);
}

/* The lz4 frame format (lz4(1)'s default), concatenated frames too. */
static int unlz4_frame(const uint8_t *in, size_t len, uint8_t *out, size_t max, size_t *n, const char **why)
{
	LZ4F_dctx *d;
	if (LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION))) {
		*why = "liblz4 init failed";
		return -ENOMEM;
	}
	size_t at = 0, done = 0, r = 1;
	while (at < len) {
		size_t src = len - at, dst = max - done;
		r = LZ4F_decompress(d, out + done, &dst, in + at, &src, NULL);
		if (LZ4F_isError(r)) {
			*why = "corrupt lz4 data";
			LZ4F_freeDecompressionContext(d);
			return -EINVAL;
		}
		at += src;
		done += dst;
		if (src == 0 && dst == 0)
			break; /* output full: no progress */
	}
	LZ4F_freeDecompressionContext(d);
	*n = done;
	if (r != 0 || at < len) {
		*why = "output larger than the room for it, or input truncated";
		return -EINVAL;
	}
	return 0;
}

const char *initrd_decompress(const uint8_t *in, size_t len, size_t max_out, uint8_t **out,
			      size_t *out_len, const char **why)
{
	static const uint8_t xz[6] = { 0xFD, '7', 'z', 'X', 'Z', 0 };
	int (*fn)(const uint8_t *, size_t, uint8_t *, size_t, size_t *, const char **);
	const char *name;
	*out = NULL;
	*out_len = 0;
	*why = "not gzip, xz, zstd or lz4";
	if (len >= 2 && in[0] == 0x1F && in[1] == 0x8B)
		fn = gunzip_members, name = "gzip";
	else if (len >= 6 && memcmp(in, xz, 6) == 0)
		fn = unxz_all, name = "xz";
	else if (len >= 4 && rd32(in) == 0xFD2FB528u)
		fn = unzstd_all, name = "zstd";
	else if (len >= 4 && rd32(in) == LZ4_FRAME_MAGIC)
		fn = unlz4_frame, name = "lz4";
	else
		return NULL;
	if (max_out == 0) {
		*why = "no room";
		return name;
	}
	/* Untouched pages of a large buffer cost nothing; shrunk below. */
	uint8_t *buf = malloc(max_out);
	if (!buf) {
		*why = "out of host memory";
		return name;
	}
	size_t n = 0;
	if (fn(in, len, buf, max_out, &n, why) < 0) {
		free(buf);
		return name;
	}
	if (n < 6 || (memcmp(buf, "070701", 6) != 0 && memcmp(buf, "070702", 6) != 0)) {
		*why = "not a cpio newc archive inside";
		free(buf);
		return name;
	}
	uint8_t *fit = realloc(buf, n);
	*out = fit ? fit : buf;
	*out_len = n;
	return name;
}
