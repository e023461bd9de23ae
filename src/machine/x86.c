#include "machine/x86.h"

#include <stdio.h>
#include <string.h>

void x86_reset_state(struct x86_cpu_state *s, bool bsp)
{
	memset(s, 0, sizeof(*s));
	s->rip = 0xFFF0;
	s->rflags = 0x2;
	s->gpr[R_RDX] = 0x600; /* family/model/stepping signature, as hardware */
	for (int i = 0; i < SEG_COUNT; i++) {
		struct x86_segment *g = &s->seg[i];
		g->limit = 0xFFFF;
		g->present = 1;
		g->s = 1;
		g->type = 3; /* read/write data, accessed */
	}
	s->seg[SEG_CS].selector = 0xF000;
	s->seg[SEG_CS].base = 0xFFFF0000;
	s->seg[SEG_CS].type = 0xB; /* execute/read code, accessed */
	s->seg[SEG_LDT].s = 0;
	s->seg[SEG_LDT].type = 2;
	s->seg[SEG_TR].s = 0;
	s->seg[SEG_TR].type = 0xB; /* busy 32-bit TSS */
	s->gdt.limit = 0xFFFF;
	s->idt.limit = 0xFFFF;
	s->cr0 = X86_CR0_ET | X86_CR0_NW | X86_CR0_CD;
	s->apic_base = 0xFEE00000ULL | (1ULL << 11) | (bsp ? (1ULL << 8) : 0);
}

void x86_flat_segment(struct x86_segment *seg, uint16_t sel, bool code, bool long_mode)
{
	memset(seg, 0, sizeof(*seg));
	seg->selector = sel;
	seg->base = 0;
	seg->limit = 0xFFFFFFFF;
	seg->type = code ? 0xB : 0x3;
	seg->s = 1;
	seg->present = 1;
	seg->g = 1;
	seg->l = (code && long_mode) ? 1 : 0;
	seg->db = (code && long_mode) ? 0 : 1;
}

void x86_dump_state(const struct x86_cpu_state *s)
{
	static const char *const gpr[16] = { "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
					     "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15" };
	static const char *const seg[SEG_COUNT] = { "es", "cs", "ss", "ds", "fs", "gs", "ldt", "tr" };
	for (int i = 0; i < 16; i++)
		fprintf(stderr, "%3s=%016llx%s", gpr[i], (unsigned long long)s->gpr[i],
			(i % 4 == 3) ? "\n" : " ");
	fprintf(stderr, "rip=%016llx rflags=%08llx\n", (unsigned long long)s->rip,
		(unsigned long long)s->rflags);
	for (int i = 0; i < SEG_COUNT; i++)
		fprintf(stderr, "%3s=%04x base=%016llx limit=%08x type=%x s=%u dpl=%u p=%u l=%u db=%u g=%u\n",
			seg[i], s->seg[i].selector, (unsigned long long)s->seg[i].base, s->seg[i].limit,
			s->seg[i].type, s->seg[i].s, s->seg[i].dpl, s->seg[i].present, s->seg[i].l,
			s->seg[i].db, s->seg[i].g);
	fprintf(stderr, "gdt=%016llx/%04x idt=%016llx/%04x\n", (unsigned long long)s->gdt.base,
		s->gdt.limit, (unsigned long long)s->idt.base, s->idt.limit);
	fprintf(stderr, "cr0=%08llx cr2=%016llx cr3=%016llx cr4=%08llx efer=%llx\n",
		(unsigned long long)s->cr0, (unsigned long long)s->cr2, (unsigned long long)s->cr3,
		(unsigned long long)s->cr4, (unsigned long long)s->efer);
}
