/* Guest time profile (XVM_EMU_STATS=1): a per-vCPU timer interrupts the
 * vCPU thread every millisecond of wall time and the signal handler
 * records the guest RIP it was running (or "idle" while the vCPU sleeps
 * in HLT). Samples are therefore proportional to time, not to blocks or
 * instructions: a slow instruction or a slow path shows up as it costs.
 * At exit the most frequent RIPs are printed; XVM_EMU_STATS_DUMP=FILE
 * also writes every sample (raw little-endian 64-bit RIPs, idle = 1) to
 * map them to guest symbols offline. */
#include "accel/emu/cpu.h"
#include "accel/emu/emu_priv.h"
#include "lib/log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PROFILE_SAMPLES (1u << 21) /* ~35 minutes at 1 kHz */
#define PROFILE_IDLE 1ULL
#define PROFILE_TOP 40

static __thread struct emu_cpu *prof_cpu;
static __thread uint64_t *prof_rip;
static __thread unsigned prof_n;
static __thread timer_t prof_timer;
static __thread bool prof_armed;

static void prof_signal(int sig)
{
	(void)sig;
	struct emu_cpu *c = prof_cpu;
	if (!c || !prof_rip || prof_n >= PROFILE_SAMPLES)
		return;
	prof_rip[prof_n++] = (c->halted || c->wait_sipi) ? PROFILE_IDLE : c->rip;
}

void emu_profile_start(struct emu_cpu *c)
{
	static bool handler_installed;
	if (!handler_installed) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = prof_signal;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGPROF, &sa, NULL) < 0) {
			log_warn("emu profile: sigaction: %s", strerror(errno));
			return;
		}
		handler_installed = true;
	}
	if (prof_rip) { /* the vCPU runs again (after a reset): keep going */
		prof_cpu = c;
		return;
	}
	prof_rip = calloc(PROFILE_SAMPLES, sizeof(*prof_rip));
	if (!prof_rip)
		return;
	prof_n = 0;
	prof_cpu = c;
	struct sigevent sev;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGPROF;
	sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	if (timer_create(CLOCK_MONOTONIC, &sev, &prof_timer) < 0) {
		log_warn("emu profile: timer_create: %s", strerror(errno));
		return;
	}
	struct itimerspec its = { .it_interval = { 0, 1000000 }, .it_value = { 0, 1000000 } };
	timer_settime(prof_timer, 0, &its, NULL);
	prof_armed = true;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

void emu_profile_stop(unsigned index)
{
	if (prof_armed) {
		timer_delete(prof_timer);
		prof_armed = false;
	}
	prof_cpu = NULL;
	if (!prof_rip)
		return;
	uint64_t *rip = prof_rip;
	unsigned n = prof_n;
	prof_rip = NULL;
	const char *dump = getenv("XVM_EMU_STATS_DUMP");
	if (dump) {
		char path[4096];
		/* one file per vCPU: FILE for vCPU 0, FILE.N for the others */
		if (index == 0)
			snprintf(path, sizeof(path), "%s", dump);
		else
			snprintf(path, sizeof(path), "%s.%u", dump, index);
		FILE *f = fopen(path, "w");
		if (f) {
			fwrite(rip, sizeof(*rip), n, f);
			fclose(f);
		} else {
			log_warn("emu profile: %s: %s", path, strerror(errno));
		}
	}
	qsort(rip, n, sizeof(rip[0]), cmp_u64);
	uint64_t top_rip[PROFILE_TOP] = { 0 };
	unsigned top_n[PROFILE_TOP] = { 0 };
	for (unsigned k = 0; k < n;) {
		unsigned j = k;
		while (j < n && rip[j] == rip[k])
			j++;
		unsigned run = j - k;
		for (int t = 0; t < PROFILE_TOP; t++) {
			if (run > top_n[t]) {
				memmove(&top_n[t + 1], &top_n[t], (PROFILE_TOP - 1 - t) * sizeof(top_n[0]));
				memmove(&top_rip[t + 1], &top_rip[t], (PROFILE_TOP - 1 - t) * sizeof(top_rip[0]));
				top_n[t] = run;
				top_rip[t] = rip[k];
				break;
			}
		}
		k = j;
	}
	fprintf(stderr, "vcpu%u: %u time samples (1 ms each), most frequent RIPs:\n", index, n);
	for (int t = 0; t < PROFILE_TOP && top_n[t]; t++) {
		if (top_rip[t] == PROFILE_IDLE)
			fprintf(stderr, "  %16s %u\n", "idle (HLT)", top_n[t]);
		else
			fprintf(stderr, "  %016llx %u\n", (unsigned long long)top_rip[t], top_n[t]);
	}
	free(rip);
}
