/* struct x86_cpu_state <-> KVM's kvm_regs/kvm_sregs. The segment fields
 * have the same meaning on both sides (SDM access-rights layout). */
#include "accel/kvm/kvm.h"

#include <string.h>

/* GPR order of struct x86_cpu_state (R_RAX ...) mapped onto kvm_regs. */
#define KVM_GPRS(X) X(R_RAX, rax) X(R_RCX, rcx) X(R_RDX, rdx) X(R_RBX, rbx) \
	X(R_RSP, rsp) X(R_RBP, rbp) X(R_RSI, rsi) X(R_RDI, rdi) X(R_R8, r8) \
	X(R_R9, r9) X(R_R10, r10) X(R_R11, r11) X(R_R12, r12) X(R_R13, r13) \
	X(R_R14, r14) X(R_R15, r15)

static struct kvm_segment *kvm_seg(struct kvm_sregs *sr, int i)
{
	switch (i) {
	case SEG_ES: return &sr->es;
	case SEG_CS: return &sr->cs;
	case SEG_SS: return &sr->ss;
	case SEG_DS: return &sr->ds;
	case SEG_FS: return &sr->fs;
	case SEG_GS: return &sr->gs;
	case SEG_LDT: return &sr->ldt;
	default: return &sr->tr;
	}
}

void kvm_state_from_kvm(const struct kvm_regs *regs, const struct kvm_sregs *sregs,
			struct x86_cpu_state *s)
{
	memset(s, 0, sizeof(*s));
#define FROM(idx, f) s->gpr[idx] = regs->f;
	KVM_GPRS(FROM)
#undef FROM
	s->rip = regs->rip;
	s->rflags = regs->rflags;
	for (int i = 0; i < SEG_COUNT; i++) {
		const struct kvm_segment *k = kvm_seg((struct kvm_sregs *)sregs, i);
		struct x86_segment *g = &s->seg[i];
		g->base = k->base;
		g->limit = k->limit;
		g->selector = k->selector;
		g->type = k->type;
		g->s = k->s;
		g->dpl = k->dpl;
		g->present = k->present;
		g->avl = k->avl;
		g->l = k->l;
		g->db = k->db;
		g->g = k->g;
		g->unusable = k->unusable;
	}
	s->gdt.base = sregs->gdt.base;
	s->gdt.limit = sregs->gdt.limit;
	s->idt.base = sregs->idt.base;
	s->idt.limit = sregs->idt.limit;
	s->cr0 = sregs->cr0;
	s->cr2 = sregs->cr2;
	s->cr3 = sregs->cr3;
	s->cr4 = sregs->cr4;
	s->cr8 = sregs->cr8;
	s->efer = sregs->efer;
	s->apic_base = sregs->apic_base;
}

void kvm_state_to_kvm(const struct x86_cpu_state *s, struct kvm_regs *regs,
		      struct kvm_sregs *sregs)
{
	memset(regs, 0, sizeof(*regs));
#define TO(idx, f) regs->f = s->gpr[idx];
	KVM_GPRS(TO)
#undef TO
	regs->rip = s->rip;
	regs->rflags = s->rflags | 0x2; /* bit 1 is always set */
	for (int i = 0; i < SEG_COUNT; i++) {
		struct kvm_segment *k = kvm_seg(sregs, i);
		const struct x86_segment *g = &s->seg[i];
		memset(k, 0, sizeof(*k));
		k->base = g->base;
		k->limit = g->limit;
		k->selector = g->selector;
		k->type = g->type;
		k->s = g->s;
		k->dpl = g->dpl;
		k->present = g->present;
		k->avl = g->avl;
		k->l = g->l;
		k->db = g->db;
		k->g = g->g;
		k->unusable = g->unusable;
	}
	sregs->gdt.base = s->gdt.base;
	sregs->gdt.limit = s->gdt.limit;
	memset(sregs->gdt.padding, 0, sizeof(sregs->gdt.padding));
	sregs->idt.base = s->idt.base;
	sregs->idt.limit = s->idt.limit;
	memset(sregs->idt.padding, 0, sizeof(sregs->idt.padding));
	sregs->cr0 = s->cr0;
	sregs->cr2 = s->cr2;
	sregs->cr3 = s->cr3;
	sregs->cr4 = s->cr4;
	sregs->cr8 = s->cr8;
	sregs->efer = s->efer;
	if (s->apic_base)
		sregs->apic_base = s->apic_base;
}
