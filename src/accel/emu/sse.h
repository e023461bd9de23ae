/* Helpers shared by the MMX/SSE executors (sse.c, sse_fp.c). */
#ifndef XVM_ACCEL_EMU_SSE_H
#define XVM_ACCEL_EMU_SSE_H

#include "accel/emu/cpu.h"

void check_mmx(struct emu_cpu *c);
uint64_t mmx_get(struct emu_cpu *c, unsigned n);
void mmx_set(struct emu_cpu *c, unsigned n, uint64_t v);
void sse_src(struct emu_cpu *c, const struct insn *i, union xmm_reg *t, unsigned bytes, bool aligned);
/* SSSE3, SSE4.1, SSE4.2: fills op_table38 and op_table3a (sse4.c). */
void sse4_init(void);
void sse_store(struct emu_cpu *c, const struct insn *i, const union xmm_reg *v, unsigned bytes, bool aligned);

#endif
