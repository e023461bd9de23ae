/* A small AML byte-code emitter for the DSDT (ACPI 6.x chapter 20):
 * names, integers, strings, scopes, devices, methods, packages, buffers
 * and resource templates. Objects that carry a PkgLength are opened with
 * *_begin and closed with aml_end, which then encodes the length. */
#ifndef XVM_MACHINE_AML_H
#define XVM_MACHINE_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 16

struct aml {
	uint8_t *buf;
	size_t len, cap;
	size_t open[AML_MAX_DEPTH]; /* where each open object's body starts */
	unsigned depth;
	bool error;                 /* bad name, too deep, unbalanced */
};

void aml_init(struct aml *a);
void aml_free(struct aml *a);

void aml_byte(struct aml *a, uint8_t b);
void aml_bytes(struct aml *a, const void *p, size_t n);
/* Encodes a PkgLength for a package of body_len bytes (the PkgLength
 * bytes themselves included in the value, as the spec counts). Returns
 * how many bytes it wrote into out[4]. */
unsigned aml_pkglen_encode(size_t body_len, uint8_t out[4]);

/* NameString: "\\_SB.PCI0", "^FOO", "_S5"; segments of 1-4 characters
 * (padded with '_'). */
void aml_name_string(struct aml *a, const char *path);
/* Integer with the shortest encoding (Zero, One, Byte/Word/DWord/QWord). */
void aml_integer(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* EISA ID "PNP0A03" as its compressed DWord. */
uint32_t aml_eisaid_value(const char *id);
void aml_eisaid(struct aml *a, const char *id);

/* Name(path, <object written next by the caller>). */
void aml_name(struct aml *a, const char *path);
void aml_name_integer(struct aml *a, const char *path, uint64_t v);
void aml_name_string_obj(struct aml *a, const char *path, const char *s);
void aml_name_eisaid(struct aml *a, const char *path, const char *id);

void aml_scope_begin(struct aml *a, const char *path);
void aml_device_begin(struct aml *a, const char *path);
void aml_method_begin(struct aml *a, const char *path, unsigned nargs, bool serialized);
void aml_package_begin(struct aml *a, unsigned nelements);
void aml_end(struct aml *a);
/* Return(integer) */
void aml_return_integer(struct aml *a, uint64_t v);
/* Buffer object holding raw bytes (e.g. a resource template). */
void aml_buffer(struct aml *a, const uint8_t *p, size_t n);

/* Resource template builder (ACPI 6.x 6.4): append descriptors, then
 * aml_res_end adds the end tag; aml_buffer(a, r.buf, r.len) emits it. */
struct aml_res {
	uint8_t buf[512];
	size_t len;
	bool overflow;
};
void aml_res_io(struct aml_res *r, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
void aml_res_irq(struct aml_res *r, uint16_t mask);
void aml_res_memory32_fixed(struct aml_res *r, uint32_t base, uint32_t len, bool rw);
void aml_res_interrupt(struct aml_res *r, uint32_t gsi, bool level, bool active_low, bool shared);
void aml_res_word_bus(struct aml_res *r, uint16_t min, uint16_t max);
void aml_res_word_io(struct aml_res *r, uint16_t min, uint16_t max);
void aml_res_dword_memory(struct aml_res *r, uint32_t min, uint32_t max);
void aml_res_qword_memory(struct aml_res *r, uint64_t min, uint64_t max);
void aml_res_end(struct aml_res *r);

#endif
