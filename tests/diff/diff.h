/* Instruction forms for the differential tests (forms.c). */
#ifndef XVM_TESTS_DIFF_H
#define XVM_TESTS_DIFF_H

#include <stdbool.h>
#include <stdint.h>

struct diff_form {
	char name[48];
	uint8_t bytes[32];       /* one instruction or a short sequence */
	uint8_t len;
	uint8_t size;            /* operand size (for the undefined-flag rules) */
	uint8_t kind;            /* rule selector for undef_flags_fn */
	uint32_t undef_flags;    /* always undefined (SDM), masked out */
	/* flags undefined for these inputs (e.g. shifts by more than 1) */
	uint32_t (*undef_flags_fn)(const struct diff_form *f, const uint64_t *gpr, uint64_t rflags);
	/* register r's result is undefined for these inputs */
	bool (*undef_result)(const struct diff_form *f, const uint64_t *gpr, int r);
	void (*setup)(uint64_t *gpr);  /* constrain inputs (counts, offsets) */
	uint16_t mem_offset;     /* RBX = data page + mem_offset */
	bool df;                 /* randomise DF too (string instructions) */
	uint8_t fp;              /* 0: integer data, 4: float lanes, 8: double lanes */
	uint8_t needs;           /* host CPU feature the native run needs (DIFF_NEEDS_*) */
	/* x87: ST(0)..ST(st_valid-1) are made valid and ST(7)..ST(8-st_free)
	 * empty (no stack faults: not modelled, see docs/emu.md) */
	uint8_t st_valid, st_free;
	uint16_t fsw_undef;      /* FSW condition bits the SDM leaves undefined, masked */
	uint8_t st_ulps;         /* transcendentals: ST registers within this many ulps */
	uint8_t mem_skip_off, mem_skip_len; /* bytes at [rbx]+off not compared (FIP/FDP) */
	/* constrain the x87 input (FXSAVE image: FCW, FSW, ST(k) at 32 + 16k) */
	void (*fx_setup)(const struct diff_form *f, uint8_t *fx);
	/* ST(k)'s result is undefined/implementation-specific for this input */
	bool (*undef_st)(const struct diff_form *f, const uint8_t *fx_in, int k);
	/* FSW condition bits undefined for this input */
	uint16_t (*undef_fsw)(const struct diff_form *f, const uint8_t *fx_in);
};

#define FSW_C0 0x0100
#define FSW_C1 0x0200
#define FSW_C2 0x0400
#define FSW_C3 0x4000
#define FSW_CC (FSW_C0 | FSW_C1 | FSW_C2 | FSW_C3)

/* memory patterns (diff_form.fp) for x87 operands: 80-bit reals and
 * packed BCD, one per 16 bytes */
enum { DIFF_MEM_M80 = 10, DIFF_MEM_BCD = 11 };

/* Forms of extensions the host may lack are skipped there (no oracle). */
/* DIFF_NEEDS_GS: a GS override; GS base is the data area (DIFF_GS_BASE)
 * on both sides, if the test process could set its own (arch_prctl). */
enum { DIFF_NEEDS_NONE, DIFF_NEEDS_SSSE3, DIFF_NEEDS_SSE41, DIFF_NEEDS_SSE42, DIFF_NEEDS_GS };
#define DIFF_GS_BASE 0x10100000UL

const struct diff_form *diff_forms(unsigned *n);

/* Encodings no form runs because a user-mode child cannot run them (or
 * their results are the host's, not architectural): each names the unit
 * test covering it (excluded.c). key: as `emu-diff --coverage -v` prints. */
struct diff_exclusion {
	const char *key;
	const char *test;    /* tests/unit file:function */
	const char *why;
};
const struct diff_exclusion *diff_exclusions(unsigned *n);

/* The coverage gate (coverage.c): 0 if every implemented encoding has a
 * form (of each operand size it has) or an exclusion. */
int diff_coverage(bool verbose);
/* the name of the function at addr (symbols.c), NULL if unknown */
const char *diff_symbol_of(const void *addr);
uint64_t diff_rand(void);
uint64_t diff_rand_value(void);
uint64_t diff_rand_fp(int lane_bytes);
void diff_rand_ld(uint8_t out[10]);
void diff_rand_bcd(uint8_t out[10]);

#endif
