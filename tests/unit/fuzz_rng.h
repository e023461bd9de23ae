/* The random source of the fuzz tests: xorshift64*, seeded from an
 * environment variable so a failing run can be replayed. Header-only. */
#ifndef XVM_TESTS_FUZZ_RNG_H
#define XVM_TESTS_FUZZ_RNG_H

#include <stdint.h>
#include <stdlib.h>

static uint64_t rng_state;

static inline uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

/* Seeds from $env (decimal or 0x-hex) or dflt; never 0 (a fixed point). */
static inline void rnd_seed(const char *env, uint64_t dflt)
{
	const char *e = getenv(env);
	rng_state = e ? strtoull(e, NULL, 0) : dflt;
	if (!rng_state)
		rng_state = 1;
}

#endif
