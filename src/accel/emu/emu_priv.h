/* Per-machine state of the software CPU engine (m->accel_priv). */
#ifndef XVM_ACCEL_EMU_EMU_PRIV_H
#define XVM_ACCEL_EMU_EMU_PRIV_H

#include <pthread.h>
#include <stdint.h>

struct emu_machine {
	uint64_t npages;
	uint32_t *page_gen;   /* per RAM page: bumped when a code page is written */
	uint8_t *page_code;   /* per RAM page: decoded instructions came from it */
	uint32_t code_epoch;  /* bumped when a page becomes a code page */
};

/* One per vCPU (vcpu->accel). */
struct emu_vcpu {
	struct emu_cpu *cpu;
	pthread_mutex_t lock;   /* protects the sleep below */
	pthread_cond_t wake;
};

uint64_t fetch_slow(struct emu_cpu *c, uint64_t lin, unsigned size);
uint64_t fetch_gpa(struct emu_cpu *c, uint64_t lin);

/* Guest time profile of the calling vCPU thread (profile.c, XVM_EMU_STATS). */
void emu_profile_start(struct emu_cpu *c);
void emu_profile_stop(unsigned index);

#endif
