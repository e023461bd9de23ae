/* AML emitter (see aml.h). Encodings from ACPI 6.x chapter 20 "ACPI
 * Machine Language Specification" and 6.4 "Resource Data Types". */
#include "machine/aml.h"
#include "lib/util.h"

#include <stdlib.h>
#include <string.h>

enum {
	AML_ZERO = 0x00, AML_ONE = 0x01, AML_NAME = 0x08, AML_BYTE_PREFIX = 0x0A,
	AML_WORD_PREFIX = 0x0B, AML_DWORD_PREFIX = 0x0C, AML_STRING_PREFIX = 0x0D,
	AML_QWORD_PREFIX = 0x0E, AML_SCOPE = 0x10, AML_BUFFER = 0x11, AML_PACKAGE = 0x12,
	AML_METHOD = 0x14, AML_DUAL_NAME = 0x2E, AML_MULTI_NAME = 0x2F, AML_EXT_PREFIX = 0x5B,
	AML_DEVICE = 0x82, AML_ROOT_CHAR = 0x5C, AML_PARENT_CHAR = 0x5E, AML_RETURN = 0xA4,
};

void aml_init(struct aml *a)
{
	memset(a, 0, sizeof(*a));
}

void aml_free(struct aml *a)
{
	free(a->buf);
	memset(a, 0, sizeof(*a));
}

static void reserve(struct aml *a, size_t n)
{
	if (a->len + n <= a->cap)
		return;
	size_t cap = a->cap ? a->cap : 256;
	while (cap < a->len + n)
		cap *= 2;
	a->buf = xrealloc(a->buf, cap);
	a->cap = cap;
}

void aml_byte(struct aml *a, uint8_t b)
{
	reserve(a, 1);
	a->buf[a->len++] = b;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	reserve(a, n);
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

unsigned aml_pkglen_encode(size_t body_len, uint8_t out[4])
{
	/* One byte holds 6 bits; with n bytes the lead byte holds 4 bits
	 * and (n - 1) << 6, the others 8 bits each. */
	if (body_len + 1 <= 0x3F) {
		out[0] = (uint8_t)(body_len + 1);
		return 1;
	}
	unsigned n = 2;
	while (n < 4 && body_len + n > (1ULL << (4 + 8 * (n - 1))) - 1)
		n++;
	size_t v = body_len + n;
	out[0] = (uint8_t)(((n - 1) << 6) | (v & 0xF));
	for (unsigned i = 1; i < n; i++)
		out[i] = (uint8_t)(v >> (4 + 8 * (i - 1)));
	return n;
}

static bool name_char_ok(char ch, bool lead)
{
	return (ch >= 'A' && ch <= 'Z') || ch == '_' || (!lead && ch >= '0' && ch <= '9');
}

void aml_name_string(struct aml *a, const char *path)
{
	const char *p = path;
	if (*p == '\\') {
		aml_byte(a, AML_ROOT_CHAR);
		p++;
	} else {
		while (*p == '^') {
			aml_byte(a, AML_PARENT_CHAR);
			p++;
		}
	}
	/* Split into segments. */
	char segs[16][4];
	unsigned n = 0;
	while (*p) {
		if (n == 16) {
			a->error = true;
			return;
		}
		unsigned i = 0;
		while (*p && *p != '.') {
			if (i == 4 || !name_char_ok(*p, i == 0)) {
				a->error = true;
				return;
			}
			segs[n][i++] = *p++;
		}
		if (i == 0) {
			a->error = true;
			return;
		}
		while (i < 4)
			segs[n][i++] = '_';
		n++;
		if (*p == '.')
			p++;
	}
	if (n == 0) {
		aml_byte(a, 0x00); /* NullName */
		return;
	}
	if (n == 2)
		aml_byte(a, AML_DUAL_NAME);
	else if (n > 2) {
		aml_byte(a, AML_MULTI_NAME);
		aml_byte(a, (uint8_t)n);
	}
	for (unsigned i = 0; i < n; i++)
		aml_bytes(a, segs[i], 4);
}

void aml_integer(struct aml *a, uint64_t v)
{
	uint8_t b[8];
	if (v == 0) {
		aml_byte(a, AML_ZERO);
	} else if (v == 1) {
		aml_byte(a, AML_ONE);
	} else if (v <= 0xFF) {
		aml_byte(a, AML_BYTE_PREFIX);
		aml_byte(a, (uint8_t)v);
	} else if (v <= 0xFFFF) {
		aml_byte(a, AML_WORD_PREFIX);
		b[0] = (uint8_t)v;
		b[1] = (uint8_t)(v >> 8);
		aml_bytes(a, b, 2);
	} else if (v <= 0xFFFFFFFF) {
		aml_byte(a, AML_DWORD_PREFIX);
		for (int i = 0; i < 4; i++)
			b[i] = (uint8_t)(v >> (8 * i));
		aml_bytes(a, b, 4);
	} else {
		aml_byte(a, AML_QWORD_PREFIX);
		for (int i = 0; i < 8; i++)
			b[i] = (uint8_t)(v >> (8 * i));
		aml_bytes(a, b, 8);
	}
}

void aml_string(struct aml *a, const char *s)
{
	aml_byte(a, AML_STRING_PREFIX);
	for (; *s; s++) {
		if ((uint8_t)*s > 0x7F) { /* AsciiCharList is 0x01-0x7F */
			a->error = true;
			return;
		}
		aml_byte(a, (uint8_t)*s);
	}
	aml_byte(a, 0);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

uint32_t aml_eisaid_value(const char *id)
{
	/* Three letters in 5 bits each, four hex digits; stored big-endian. */
	if (strlen(id) != 7)
		return 0;
	uint32_t v = 0;
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			return 0;
		v = (v << 5) | (uint32_t)(id[i] - 0x40);
	}
	for (int i = 3; i < 7; i++) {
		int d = hex_digit(id[i]);
		if (d < 0)
			return 0;
		v = (v << 4) | (uint32_t)d;
	}
	return __builtin_bswap32(v);
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v = aml_eisaid_value(id);
	if (!v)
		a->error = true;
	aml_byte(a, AML_DWORD_PREFIX);
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	aml_bytes(a, b, 4);
}

void aml_name(struct aml *a, const char *path)
{
	aml_byte(a, AML_NAME);
	aml_name_string(a, path);
}

void aml_name_integer(struct aml *a, const char *path, uint64_t v)
{
	aml_name(a, path);
	aml_integer(a, v);
}

void aml_name_string_obj(struct aml *a, const char *path, const char *s)
{
	aml_name(a, path);
	aml_string(a, s);
}

void aml_name_eisaid(struct aml *a, const char *path, const char *id)
{
	aml_name(a, path);
	aml_eisaid(a, id);
}

static void open_pkg(struct aml *a)
{
	if (a->depth == AML_MAX_DEPTH) {
		a->error = true;
		return;
	}
	a->open[a->depth++] = a->len;
}

void aml_end(struct aml *a)
{
	if (a->depth == 0) {
		a->error = true;
		return;
	}
	size_t start = a->open[--a->depth];
	uint8_t enc[4];
	unsigned n = aml_pkglen_encode(a->len - start, enc);
	reserve(a, n);
	memmove(a->buf + start + n, a->buf + start, a->len - start);
	memcpy(a->buf + start, enc, n);
	a->len += n;
}

void aml_scope_begin(struct aml *a, const char *path)
{
	aml_byte(a, AML_SCOPE);
	open_pkg(a);
	aml_name_string(a, path);
}

void aml_device_begin(struct aml *a, const char *path)
{
	aml_byte(a, AML_EXT_PREFIX);
	aml_byte(a, AML_DEVICE);
	open_pkg(a);
	aml_name_string(a, path);
}

void aml_method_begin(struct aml *a, const char *path, unsigned nargs, bool serialized)
{
	aml_byte(a, AML_METHOD);
	open_pkg(a);
	aml_name_string(a, path);
	if (nargs > 7)
		a->error = true;
	aml_byte(a, (uint8_t)((nargs & 7) | (serialized ? 0x08 : 0)));
}

void aml_package_begin(struct aml *a, unsigned nelements)
{
	aml_byte(a, AML_PACKAGE);
	open_pkg(a);
	if (nelements > 255)
		a->error = true;
	aml_byte(a, (uint8_t)nelements);
}

void aml_return_integer(struct aml *a, uint64_t v)
{
	aml_byte(a, AML_RETURN);
	aml_integer(a, v);
}

void aml_buffer(struct aml *a, const uint8_t *p, size_t n)
{
	aml_byte(a, AML_BUFFER);
	open_pkg(a);
	aml_integer(a, n);
	aml_bytes(a, p, n);
	aml_end(a);
}

/* ---- resource templates ---- */

static void res_put(struct aml_res *r, const uint8_t *p, size_t n)
{
	if (r->len + n > sizeof(r->buf)) {
		r->overflow = true;
		return;
	}
	memcpy(r->buf + r->len, p, n);
	r->len += n;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

/* Address space descriptors for bridge windows: the device produces
 * them (general flags: producer, min and max fixed, positive decode). */
#define ADDR_PRODUCER_FIXED 0x0C
enum { ADDR_MEMORY = 0, ADDR_IO = 1, ADDR_BUS = 2 };

void aml_res_io(struct aml_res *r, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	uint8_t d[8] = { 0x47, 0x01 /* 16-bit decode */ };
	put16(d + 2, min);
	put16(d + 4, max);
	d[6] = align;
	d[7] = len;
	res_put(r, d, sizeof(d));
}

void aml_res_irq(struct aml_res *r, uint16_t mask)
{
	uint8_t d[3] = { 0x22 };
	put16(d + 1, mask);
	res_put(r, d, sizeof(d));
}

void aml_res_memory32_fixed(struct aml_res *r, uint32_t base, uint32_t len, bool rw)
{
	uint8_t d[12] = { 0x86, 0x09, 0x00, rw ? 1 : 0 };
	put32(d + 4, base);
	put32(d + 8, len);
	res_put(r, d, sizeof(d));
}

void aml_res_interrupt(struct aml_res *r, uint32_t gsi, bool level, bool active_low, bool shared)
{
	uint8_t flags = 0x01; /* consumer */
	if (!level)
		flags |= 0x02; /* edge */
	if (active_low)
		flags |= 0x04;
	if (shared)
		flags |= 0x08;
	uint8_t d[9] = { 0x89, 0x06, 0x00, flags, 1 };
	put32(d + 5, gsi);
	res_put(r, d, sizeof(d));
}

void aml_res_word_bus(struct aml_res *r, uint16_t min, uint16_t max)
{
	uint8_t d[16] = { 0x88, 0x0D, 0x00, ADDR_BUS, ADDR_PRODUCER_FIXED, 0 };
	put16(d + 8, min);
	put16(d + 10, max);
	put16(d + 14, (uint16_t)(max - min + 1));
	res_put(r, d, sizeof(d));
}

void aml_res_word_io(struct aml_res *r, uint16_t min, uint16_t max)
{
	uint8_t d[16] = { 0x88, 0x0D, 0x00, ADDR_IO, ADDR_PRODUCER_FIXED, 0x03 /* entire range */ };
	put16(d + 8, min);
	put16(d + 10, max);
	put16(d + 14, (uint16_t)(max - min + 1));
	res_put(r, d, sizeof(d));
}

void aml_res_dword_memory(struct aml_res *r, uint32_t min, uint32_t max)
{
	uint8_t d[26] = { 0x87, 0x17, 0x00, ADDR_MEMORY, ADDR_PRODUCER_FIXED, 0x03 /* RW, cacheable */ };
	put32(d + 10, min);
	put32(d + 14, max);
	put32(d + 22, max - min + 1);
	res_put(r, d, sizeof(d));
}

void aml_res_qword_memory(struct aml_res *r, uint64_t min, uint64_t max)
{
	uint8_t d[46] = { 0x8A, 0x2B, 0x00, ADDR_MEMORY, ADDR_PRODUCER_FIXED, 0x03 };
	put64(d + 14, min);
	put64(d + 22, max);
	put64(d + 38, max - min + 1);
	res_put(r, d, sizeof(d));
}

void aml_res_end(struct aml_res *r)
{
	uint8_t d[2] = { 0x79, 0x00 }; /* checksum 0: "treat as correct" */
	res_put(r, d, sizeof(d));
}
