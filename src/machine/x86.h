/* Architectural x86-64 CPU state as both engines exchange it with the
 * machine (boot loaders set the BSP's entry state; reset; register dumps).
 * Segment attributes use the field layout of the SDM descriptor access
 * rights (the same meaning as KVM's struct kvm_segment). */
#ifndef XVM_MACHINE_X86_H
#define XVM_MACHINE_X86_H

#include <stdbool.h>
#include <stdint.h>

enum { R_RAX, R_RCX, R_RDX, R_RBX, R_RSP, R_RBP, R_RSI, R_RDI,
       R_R8, R_R9, R_R10, R_R11, R_R12, R_R13, R_R14, R_R15 };
enum { SEG_ES, SEG_CS, SEG_SS, SEG_DS, SEG_FS, SEG_GS, SEG_LDT, SEG_TR, SEG_COUNT };

struct x86_segment {
	uint64_t base;
	uint32_t limit;    /* byte granular (already scaled by G) */
	uint16_t selector;
	uint8_t type;      /* 4 bits */
	uint8_t s, dpl, present, avl, l, db, g;
	uint8_t unusable;
};

struct x86_dtable {
	uint64_t base;
	uint16_t limit;
};

#define X86_CR0_PE (1ULL << 0)
#define X86_CR0_MP (1ULL << 1)
#define X86_CR0_EM (1ULL << 2)
#define X86_CR0_TS (1ULL << 3)
#define X86_CR0_ET (1ULL << 4)
#define X86_CR0_NE (1ULL << 5)
#define X86_CR0_WP (1ULL << 16)
#define X86_CR0_AM (1ULL << 18)
#define X86_CR0_NW (1ULL << 29)
#define X86_CR0_CD (1ULL << 30)
#define X86_CR0_PG (1ULL << 31)
#define X86_CR4_VME (1ULL << 0)
#define X86_CR4_PSE (1ULL << 4)
#define X86_CR4_PAE (1ULL << 5)
#define X86_CR4_PGE (1ULL << 7)
#define X86_CR4_OSFXSR (1ULL << 9)
#define X86_CR4_OSXMMEXCPT (1ULL << 10)
#define X86_EFER_SCE (1ULL << 0)
#define X86_EFER_LME (1ULL << 8)
#define X86_EFER_LMA (1ULL << 10)
#define X86_EFER_NXE (1ULL << 11)

struct x86_cpu_state {
	uint64_t gpr[16];
	uint64_t rip, rflags;
	struct x86_segment seg[SEG_COUNT];
	struct x86_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8;
	uint64_t efer;
	uint64_t apic_base;
};

/* Power-on / INIT state (real mode at F000:FFF0). */
void x86_reset_state(struct x86_cpu_state *s, bool bsp);
/* Flat code/data segments for the boot protocols' entry states. */
void x86_flat_segment(struct x86_segment *seg, uint16_t sel, bool code, bool long_mode);
/* Human-readable register dump to stderr (used on engine errors). */
void x86_dump_state(const struct x86_cpu_state *s);

#endif
