/* A JIT for hot decoded blocks of the software CPU (x86-64 hosts only).
 *
 * A block entered `threshold` times is translated to host code: the
 * common integer forms become native templates (the host runs the same
 * operation, so it computes the architectural flags), everything else
 * calls the interpreter's handler. Compiled code hangs off its struct
 * block and is valid exactly as long as the block is (key + page
 * generation, checked before any block is entered). See docs/emu.md,
 * "JIT". */
#ifndef XVM_ACCEL_EMU_JIT_H
#define XVM_ACCEL_EMU_JIT_H

#include <stdbool.h>
#include <stdint.h>

struct emu_cpu;
struct block;

typedef void (*jit_fn)(struct emu_cpu *c);

#if defined(__x86_64__)
/* Per-vCPU JIT state, or NULL with XVM_EMU_JIT=0 (or when the code
 * memory cannot be mapped: the interpreter then runs alone). */
struct jit *jit_new(void);
void jit_free(struct jit *j);
/* Counts an entry of b; compiles it when it becomes hot. */
void jit_block_entered(struct emu_cpu *c, struct block *b);
/* Drops every compiled block of c (the code memory starts over). */
void jit_reset(struct emu_cpu *c);
/* Blocks compiled and code-memory resets so far (tests, stats). */
void jit_counters(const struct emu_cpu *c, uint64_t *compiled, uint64_t *resets);
/* With XVM_EMU_STATS: compiled blocks; XVM_EMU_JIT_PROFILE: fallbacks. */
void jit_print_stats(const struct emu_cpu *c);
#else
static inline void jit_print_stats(const struct emu_cpu *c) { (void)c; }
static inline struct jit *jit_new(void) { return NULL; }
static inline void jit_free(struct jit *j) { (void)j; }
static inline void jit_block_entered(struct emu_cpu *c, struct block *b) { (void)c; (void)b; }
static inline void jit_reset(struct emu_cpu *c) { (void)c; }
static inline void jit_counters(const struct emu_cpu *c, uint64_t *compiled, uint64_t *resets)
{
	(void)c;
	*compiled = *resets = 0;
}
#endif

#endif
