/* Instruction forms for the differential tests (forms.c). */
#ifndef XVM_TESTS_DIFF_H
#define XVM_TESTS_DIFF_H

#include <stdbool.h>
#include <stdint.h>

struct diff_form {
	char name[48];
	uint8_t bytes[15];
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
};

/* Forms of extensions the host may lack are skipped there (no oracle). */
enum { DIFF_NEEDS_NONE, DIFF_NEEDS_SSSE3, DIFF_NEEDS_SSE41, DIFF_NEEDS_SSE42 };

const struct diff_form *diff_forms(unsigned *n);
uint64_t diff_rand(void);
uint64_t diff_rand_value(void);
uint64_t diff_rand_fp(int lane_bytes);

#endif
