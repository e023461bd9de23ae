/* Form builders shared by the generator files (forms.c, forms_int.c,
 * forms_vec.c). Memory operands are [rbx]. */
#ifndef XVM_TESTS_DIFF_FORMS_H
#define XVM_TESTS_DIFF_FORMS_H

#include "diff.h"

struct diff_form *newf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void emit(struct diff_form *f, int b);
void emit_imm(struct diff_form *f, uint64_t v, int n);
/* [66] [pfx] [REX] opcode (hex string) ModRM for size 1/2/4/8; mem: rm is [rbx] */
void enc(struct diff_form *f, int mandatory_pfx, int size, const char *opc, int reg, int rm, bool mem);
const char *sz(int size);

/* undefined-flag and input rules of forms.c */
uint32_t shift_undef(const struct diff_form *f, const uint64_t *gpr, uint64_t fl);
uint32_t shld_undef(const struct diff_form *f, const uint64_t *gpr, uint64_t fl);
bool shld_undef_result(const struct diff_form *f, const uint64_t *gpr, int r);
bool bsf_undef_result(const struct diff_form *f, const uint64_t *gpr, int r);
void setup_bt_offset(uint64_t *gpr);
void setup_string(uint64_t *gpr);

/* forms_int.c: the rest of the integer forms; control transfers and the stack */
void gen_int_more(void);
void gen_control(void);
/* forms_vec.c: SSE/MMX encodings the family generators leave out */
void gen_vec_more(void);

#endif
