/* System instructions and registers: control registers, MSRs, CPUID,
 * SYSCALL/SYSRET, SYSENTER/SYSEXIT, descriptor-table instructions, port
 * I/O permission, power-on state. */
#include "accel/emu/alu.h"
#include "accel/emu/cpu.h"
#include "hw/clock.h"
#include "hw/io.h"
#include "hw/lapic.h"
#include "lib/log.h"
#include "machine/layout.h"
#include "machine/machine.h"

#define CR4_TSD        (1ULL << 2)
#define CR4_DE         (1ULL << 3)
#define CR4_MCE        (1ULL << 6)
#define CR4_PCE        (1ULL << 8)
#define CR4_UMIP       (1ULL << 11)
/* CR4 bits a guest may set: what we implement (see CPUID). */
#define CR4_ALLOWED (X86_CR4_VME * 0 | CR4_TSD | CR4_DE | X86_CR4_PSE | X86_CR4_PAE | CR4_MCE | \
		     X86_CR4_PGE | CR4_PCE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT)

void cpu_reset(struct emu_cpu *c, bool bsp)
{
	struct x86_cpu_state s;
	x86_reset_state(&s, bsp);
	memset(c->r, 0, sizeof(c->r));
	c->r[R_RDX] = s.gpr[R_RDX];
	c->rip = s.rip;
	c->rflags = 2;
	set_arith_flags(c, 0);
	memcpy(c->seg, s.seg, sizeof(c->seg));
	c->gdt = s.gdt;
	c->idt = s.idt;
	c->cr0 = s.cr0;
	c->cr2 = c->cr3 = c->cr4 = c->cr8 = 0;
	c->efer = 0;
	memset(c->dr, 0, sizeof(c->dr));
	c->dr[6] = 0xFFFF0FF0;
	c->dr[7] = 0x400;
	c->pat = 0x0007040600070406ULL;
	c->misc_enable = 1; /* fast strings */
	c->mxcsr = 0x1F80;
	memset(c->xmm, 0, sizeof(c->xmm));
	fpu_init(c);
	c->halted = false;
	c->int_shadow = false;
	c->nmi_blocked = false;
	c->delivering = 0;
	c->cpl = 0;
	cpu_update_mode(c);
	tlb_flush_all(c, false);
}

/* ------------------------------------------------------------------ */
/* Control registers */

uint64_t read_cr(struct emu_cpu *c, int n)
{
	switch (n) {
	case 0: return c->cr0;
	case 2: return c->cr2;
	case 3: return c->cr3;
	case 4: return c->cr4;
	default:
		return c->lapic ? lapic_get_tpr(c->lapic) : c->cr8;
	}
}

void write_cr(struct emu_cpu *c, int n, uint64_t v)
{
	switch (n) {
	case 0: {
		if (v >> 32)
			raise_gp0(c);
		v |= X86_CR0_ET;
		if ((v & X86_CR0_PG) && !(v & X86_CR0_PE))
			raise_gp0(c);
		if ((v & X86_CR0_NW) && !(v & X86_CR0_CD))
			raise_gp0(c);
		bool pg_on = (v & X86_CR0_PG) && !(c->cr0 & X86_CR0_PG);
		bool pg_off = !(v & X86_CR0_PG) && (c->cr0 & X86_CR0_PG);
		if (pg_on && (c->efer & X86_EFER_LME)) {
			if (!(c->cr4 & X86_CR4_PAE))
				raise_gp0(c);
			c->efer |= X86_EFER_LMA;
		}
		if (pg_off && c->long_mode) {
			if (c->code64)
				raise_gp0(c);
			c->efer &= ~X86_EFER_LMA;
		}
		uint64_t changed = c->cr0 ^ v;
		c->cr0 = v;
		if (changed & (X86_CR0_PG | X86_CR0_WP | X86_CR0_PE))
			tlb_flush_all(c, false);
		cpu_update_mode(c);
		break;
	}
	case 2:
		c->cr2 = v;
		break;
	case 3:
		if (c->long_mode && (v >> 52))
			raise_gp0(c);
		c->cr3 = c->long_mode ? v : (uint32_t)v;
		tlb_flush_all(c, true);
		break;
	case 4: {
		if (v & ~CR4_ALLOWED)
			raise_gp0(c);
		if (c->long_mode && !(v & X86_CR4_PAE))
			raise_gp0(c);
		uint64_t changed = c->cr4 ^ v;
		c->cr4 = v;
		if (changed & (X86_CR4_PGE | X86_CR4_PAE | X86_CR4_PSE))
			tlb_flush_all(c, false);
		break;
	}
	default:
		if (v >> 4)
			raise_gp0(c);
		c->cr8 = v;
		if (c->lapic)
			lapic_set_tpr(c->lapic, (uint8_t)v);
		break;
	}
}

/* ------------------------------------------------------------------ */
/* MSRs */

enum {
	MSR_TSC = 0x10, MSR_PLATFORM_ID = 0x17, MSR_FEATURE_CONTROL = 0x3A,
	MSR_BIOS_SIGN_ID = 0x8B, MSR_PLATFORM_INFO = 0xCE, MSR_MTRRCAP = 0xFE,
	MSR_SYSENTER_CS = 0x174, MSR_SYSENTER_ESP = 0x175, MSR_SYSENTER_EIP = 0x176,
	MSR_MISC_ENABLE = 0x1A0, MSR_MTRR_PHYS_BASE0 = 0x200, MSR_MTRR_FIX64K = 0x250,
	MSR_MTRR_FIX16K_80000 = 0x258, MSR_MTRR_FIX16K_A0000 = 0x259,
	MSR_MTRR_FIX4K_C0000 = 0x268, MSR_PAT = 0x277, MSR_MTRR_DEF_TYPE = 0x2FF,
	MSR_ARCH_CAPABILITIES = 0x10A, MSR_SPEC_CTRL = 0x48, MSR_PRED_CMD = 0x49,
	MSR_EFER = 0xC0000080, MSR_STAR = 0xC0000081, MSR_LSTAR = 0xC0000082,
	MSR_CSTAR = 0xC0000083, MSR_SFMASK = 0xC0000084, MSR_FS_BASE = 0xC0000100,
	MSR_GS_BASE = 0xC0000101, MSR_KERNEL_GS_BASE = 0xC0000102, MSR_TSC_AUX = 0xC0000103,
};

#define MTRR_VAR_COUNT 8
static uint64_t feature_control_value = 1; /* locked, VMX off */

uint64_t cpu_tsc(struct emu_cpu *c)
{
	return guest_tsc(c->m) + c->tsc_offset;
}

static int mtrr_fixed_index(uint32_t msr)
{
	if (msr == MSR_MTRR_FIX64K)
		return 0;
	if (msr == MSR_MTRR_FIX16K_80000)
		return 1;
	if (msr == MSR_MTRR_FIX16K_A0000)
		return 2;
	if (msr >= MSR_MTRR_FIX4K_C0000 && msr <= MSR_MTRR_FIX4K_C0000 + 7)
		return 3 + (int)(msr - MSR_MTRR_FIX4K_C0000);
	return -1;
}

static bool canonical(uint64_t v)
{
	return (uint64_t)((int64_t)(v << 16) >> 16) == v;
}

int msr_read(struct emu_cpu *c, uint32_t msr, uint64_t *v)
{
	int fi = mtrr_fixed_index(msr);
	if (fi >= 0) {
		*v = c->mtrr_fixed[fi];
		return 0;
	}
	if (msr >= MSR_MTRR_PHYS_BASE0 && msr < MSR_MTRR_PHYS_BASE0 + 2 * MTRR_VAR_COUNT) {
		*v = c->mtrr_var[msr - MSR_MTRR_PHYS_BASE0];
		return 0;
	}
	switch (msr) {
	case MSR_TSC: *v = cpu_tsc(c); return 0;
	case MSR_PLATFORM_ID: *v = 0; return 0;
	case MSR_SPEC_CTRL: *v = c->spec_ctrl; return 0;
	case MSR_ARCH_CAPABILITIES:
		/* This CPU has none of the speculative-execution leaks (no
		 * speculation at all), so the guest skips their costly
		 * mitigations, e.g. page-table isolation on every kernel entry:
		 * RDCL_NO, SKIP_L1DFL_VMENTRY, SSB_NO, MDS_NO, PSCHANGE_MC_NO,
		 * TAA_NO, SBDR_SSDP_NO, FBSDP_NO, PSDP_NO, GDS_NO, RFDS_NO,
		 * BHI_NO, PBRSB_NO, ITS_NO; and IBRS_ALL ("enhanced IBRS":
		 * indirect branches are never steered by another context's
		 * predictions), so Linux needs no retpolines, no return thunks
		 * and no branch-history clearing on syscalls. Each of those
		 * costs an interpreter several extra blocks per call/return. */
		*v = 1 << 0 | 1 << 1 | 1 << 3 | 1 << 4 | 1 << 5 | 1 << 6 | 1 << 8 | 1 << 13 | 1 << 14 |
		     1 << 15 | 1 << 20 | 1 << 24 | 1 << 26 | 1 << 27 | 1ULL << 62;
		return 0;
	case MSR_FEATURE_CONTROL: *v = feature_control_value; return 0;
	case MSR_BIOS_SIGN_ID: *v = 0; return 0;
	case MSR_PLATFORM_INFO: *v = (uint64_t)(GUEST_TSC_KHZ / 100000) << 8; return 0;
	case MSR_MTRRCAP: *v = MTRR_VAR_COUNT | (1 << 8) | (1 << 10); return 0;
	case MSR_SYSENTER_CS: *v = c->sysenter_cs; return 0;
	case MSR_SYSENTER_ESP: *v = c->sysenter_esp; return 0;
	case MSR_SYSENTER_EIP: *v = c->sysenter_eip; return 0;
	case MSR_MISC_ENABLE: *v = c->misc_enable | (1 << 11) | (1 << 12); return 0;
	case MSR_PAT: *v = c->pat; return 0;
	case MSR_MTRR_DEF_TYPE: *v = c->mtrr_def_type; return 0;
	case MSR_EFER: *v = c->efer; return 0;
	case MSR_STAR: *v = c->star; return 0;
	case MSR_LSTAR: *v = c->lstar; return 0;
	case MSR_CSTAR: *v = c->cstar; return 0;
	case MSR_SFMASK: *v = c->sfmask; return 0;
	case MSR_FS_BASE: *v = c->seg[SEG_FS].base; return 0;
	case MSR_GS_BASE: *v = c->seg[SEG_GS].base; return 0;
	case MSR_KERNEL_GS_BASE: *v = c->kernel_gs_base; return 0;
	case MSR_TSC_AUX: *v = c->tsc_aux; return 0;
	default:
		if (c->lapic && lapic_handles_msr(msr))
			return lapic_msr_read(c->lapic, msr, v);
		log_once(LOG_DEBUG, "emu: rdmsr %#x: unknown MSR (#GP)", msr);
		return -1;
	}
}

int msr_write(struct emu_cpu *c, uint32_t msr, uint64_t v)
{
	int fi = mtrr_fixed_index(msr);
	if (fi >= 0) {
		c->mtrr_fixed[fi] = v;
		return 0;
	}
	if (msr >= MSR_MTRR_PHYS_BASE0 && msr < MSR_MTRR_PHYS_BASE0 + 2 * MTRR_VAR_COUNT) {
		c->mtrr_var[msr - MSR_MTRR_PHYS_BASE0] = v;
		return 0;
	}
	switch (msr) {
	case MSR_TSC: c->tsc_offset = v - guest_tsc(c->m); return 0;
	case MSR_BIOS_SIGN_ID: return 0;
	/* IBRS and STIBP are stored (nothing to do: no prediction); IBPB is
	 * a no-op for the same reason. Other bits are reserved (#GP). */
	case MSR_SPEC_CTRL: if (v & ~0x403ULL) return -1; c->spec_ctrl = v; return 0; /* + BHI_DIS_S */
	case MSR_PRED_CMD: return (v & ~1ULL) ? -1 : 0;
	case MSR_FEATURE_CONTROL: return -1; /* locked */
	case MSR_SYSENTER_CS: c->sysenter_cs = v & 0xFFFF; return 0;
	case MSR_SYSENTER_ESP: if (!canonical(v)) return -1; c->sysenter_esp = v; return 0;
	case MSR_SYSENTER_EIP: if (!canonical(v)) return -1; c->sysenter_eip = v; return 0;
	case MSR_MISC_ENABLE: c->misc_enable = v & 1; return 0;
	case MSR_PAT:
		for (int k = 0; k < 8; k++) {
			unsigned t = (v >> (8 * k)) & 0xFF;
			if (t == 2 || t == 3 || t > 7)
				return -1;
		}
		c->pat = v;
		return 0;
	case MSR_MTRR_DEF_TYPE: c->mtrr_def_type = v & 0xCFF; return 0;
	case MSR_EFER: {
		uint64_t allowed = X86_EFER_SCE | X86_EFER_LME | X86_EFER_NXE;
		if (v & ~(allowed | X86_EFER_LMA))
			return -1;
		if ((c->cr0 & X86_CR0_PG) && ((v ^ c->efer) & X86_EFER_LME))
			return -1;
		uint64_t n = (v & allowed) | (c->efer & X86_EFER_LMA);
		if ((n ^ c->efer) & X86_EFER_NXE)
			tlb_flush_all(c, false);
		c->efer = n;
		return 0;
	}
	case MSR_STAR: c->star = v; return 0;
	case MSR_LSTAR: if (!canonical(v)) return -1; c->lstar = v; return 0;
	case MSR_CSTAR: if (!canonical(v)) return -1; c->cstar = v; return 0;
	case MSR_SFMASK: c->sfmask = (uint32_t)v; return 0;
	case MSR_FS_BASE: if (!canonical(v)) return -1; c->seg[SEG_FS].base = v; return 0;
	case MSR_GS_BASE: if (!canonical(v)) return -1; c->seg[SEG_GS].base = v; return 0;
	case MSR_KERNEL_GS_BASE: if (!canonical(v)) return -1; c->kernel_gs_base = v; return 0;
	case MSR_TSC_AUX: c->tsc_aux = (uint32_t)v; return 0;
	default:
		if (c->lapic && lapic_handles_msr(msr)) {
			int r = lapic_msr_write(c->lapic, msr, v);
			if (msr == MSR_IA32_APIC_BASE && r == 0)
				c->apic_page = lapic_apic_base_enabled(c->lapic) ? lapic_get_apic_base(c->lapic)
										: ~0ULL;
			return r;
		}
		log_once(LOG_DEBUG, "emu: wrmsr %#x: unknown MSR (#GP)", msr);
		return -1;
	}
}

/* ------------------------------------------------------------------ */
/* CPUID: exactly what this CPU implements. */

#define F1_EDX (1u << 0 /* FPU */ | 1u << 3 /* PSE */ | 1u << 4 /* TSC */ | 1u << 5 /* MSR */ | \
		1u << 6 /* PAE */ | 1u << 8 /* CX8 */ | 1u << 9 /* APIC */ | 1u << 11 /* SEP */ | \
		1u << 12 /* MTRR */ | 1u << 13 /* PGE */ | 1u << 15 /* CMOV */ | 1u << 16 /* PAT */ | \
		1u << 17 /* PSE36 */ | 1u << 19 /* CLFSH */ | 1u << 23 /* MMX */ | 1u << 24 /* FXSR */ | \
		1u << 25 /* SSE */ | 1u << 26 /* SSE2 */)
/* ECX: SSE3, PCLMUL no, SSSE3, CX16, SSE4.1, SSE4.2, POPCNT, TSC-deadline, hypervisor */
uint32_t emu_cpuid_f1_ecx = 1u << 0 /* SSE3 */ | 1u << 9 /* SSSE3 */ | 1u << 13 /* CX16 */ | 1u << 19 /* SSE4.1 */ |
			    1u << 20 /* SSE4.2 */ | 1u << 23 /* POPCNT */ | 1u << 24 /* TSC deadline */ | 1u << 31 /* hypervisor */;

void do_cpuid(struct emu_cpu *c)
{
	uint32_t leaf = (uint32_t)c->r[R_RAX], sub = (uint32_t)c->r[R_RCX];
	uint32_t a = 0, b = 0, cx = 0, d = 0;
	unsigned id = c->v ? c->v->index : 0;
	unsigned ncpus = c->m ? c->m->ncpus : 1;
	unsigned core_bits = 0;
	while ((1u << core_bits) < ncpus)
		core_bits++;
	switch (leaf) {
	case 0:
		a = 0x16;
		b = 0x756E6547; d = 0x49656E69; cx = 0x6C65746E; /* GenuineIntel */
		break;
	case 1:
		a = (6 << 8) | (0x2 << 16) | (0xA << 4) | 7; /* family 6, model 0x2A, stepping 7 */
		b = (id << 24) | (ncpus << 16) | (8 << 8);
		cx = emu_cpuid_f1_ecx;
		d = F1_EDX | (ncpus > 1 ? 1u << 28 : 0);
		break;
	case 2:
		a = 1; /* one iteration, no descriptors: leaf 4 describes caches */
		break;
	case 4: {
		static const uint32_t caches[3][4] = {
			/* type|level, ways-1, partitions-1, line-1 ; sets-1 */
			{ 1 | (1 << 5), 7, 0, 63 },   /* L1d 32K */
			{ 2 | (1 << 5), 7, 0, 63 },   /* L1i 32K */
			{ 3 | (2 << 5), 15, 0, 63 },  /* L2 1M */
		};
		static const uint32_t sets[3] = { 63, 63, 1023 };
		if (sub < 3) {
			a = caches[sub][0] | (1 << 8) | ((ncpus - 1) << 26);
			b = caches[sub][3] | (caches[sub][2] << 12) | (caches[sub][1] << 22);
			cx = sets[sub];
		}
		break;
	}
	case 6:
		a = 1 << 2; /* ARAT: the APIC timer keeps running */
		break;
	case 7:
		if (sub == 0) {
			a = 2;        /* highest sub-leaf */
			b = 1 << 9;   /* ERMS: REP MOVSB/STOSB are the fast paths */
			/* IBRS/IBPB, STIBP, IA32_ARCH_CAPABILITIES */
			d = 1u << 26 | 1u << 27 | 1u << 29;
		} else if (sub == 2) {
			/* BHI_CTRL: Linux then sets SPEC_CTRL.BHI_DIS_S once instead
			 * of clearing the branch history on every syscall */
			d = 1u << 4;
		}
		break;
	case 0xB:
		if (sub == 0) {
			a = 0; b = 1; cx = 0x100;
		} else if (sub == 1) {
			a = core_bits; b = ncpus; cx = 0x201;
		} else {
			cx = sub & 0xFF;
		}
		d = id;
		break;
	case 0x15:
		a = 1;
		b = GUEST_TSC_KHZ / (LAPIC_TIMER_HZ / 1000);
		cx = LAPIC_TIMER_HZ;
		break;
	case 0x16:
		a = b = GUEST_TSC_KHZ / 1000;
		cx = LAPIC_TIMER_HZ / 1000000;
		break;
	case 0x40000000:
		a = 0x40000010;
		b = 0x554D4578; cx = 0x554D4578; d = 0x554D4578; /* "xEMUxEMUxEMU" */
		break;
	case 0x40000010:
		a = GUEST_TSC_KHZ;
		b = LAPIC_TIMER_HZ / 1000;
		break;
	case 0x80000000:
		a = 0x80000008;
		break;
	case 0x80000001:
		cx = 1 << 0; /* LAHF/SAHF in 64-bit mode */
		d = 1u << 11 /* SYSCALL */ | 1u << 20 /* NX */ | 1u << 29 /* LM */;
		break;
	case 0x80000002: case 0x80000003: case 0x80000004: {
		static const char name[48] = "xvm software x86-64 CPU";
		uint32_t w[4];
		memcpy(w, name + 16 * (leaf - 0x80000002), 16);
		a = w[0]; b = w[1]; cx = w[2]; d = w[3];
		break;
	}
	case 0x80000006:
		cx = (1024 << 16) | (6 << 12) | 64; /* L2 1M, 8-way, 64B lines */
		break;
	case 0x80000007:
		d = 1 << 8; /* invariant TSC */
		break;
	case 0x80000008:
		a = 40 | (48 << 8);
		break;
	default:
		break;
	}
	c->r[R_RAX] = a;
	c->r[R_RBX] = b;
	c->r[R_RCX] = cx;
	c->r[R_RDX] = d;
}

/* ------------------------------------------------------------------ */
/* Port I/O */

static void io_permission(struct emu_cpu *c, uint16_t port, unsigned size)
{
	if (!c->prot || c->cpl <= ((c->rflags & FL_IOPL) >> 12))
		return;
	/* TSS I/O permission bitmap */
	struct x86_segment *tr = &c->seg[SEG_TR];
	if (tr->unusable || tr->limit < 0x67)
		raise_gp0(c);
	uint16_t base = (uint16_t)mem_read_sys(c, tr->base + 0x66, 2);
	uint32_t off = base + port / 8;
	if (off + 1 > tr->limit)
		raise_gp0(c);
	uint16_t bits = (uint16_t)mem_read_sys(c, tr->base + off, 2);
	if ((bits >> (port & 7)) & ((1u << size) - 1))
		raise_gp0(c);
}

uint64_t port_in(struct emu_cpu *c, uint16_t port, unsigned size)
{
	io_permission(c, port, size);
	uint64_t v = ~0ULL;
	io_read(c->m->pio, port, size, &v);
	return v & size_mask(size);
}

void port_out(struct emu_cpu *c, uint16_t port, unsigned size, uint64_t v)
{
	io_permission(c, port, size);
	io_write(c->m->pio, port, size, v & size_mask(size));
	end_block(c); /* the device may have stopped the VM or raised an interrupt */
}

/* ------------------------------------------------------------------ */
/* SYSCALL / SYSRET / SYSENTER / SYSEXIT */

static void set_flat(struct x86_segment *s, uint16_t sel, bool code, bool l, unsigned dpl)
{
	x86_flat_segment(s, sel, code, l);
	s->dpl = dpl;
	if (!code)
		s->db = 1;
	if (code && !l)
		s->db = 1;
}

void sys_syscall(struct emu_cpu *c, const struct insn *i)
{
	if (!(c->efer & X86_EFER_SCE) || !c->prot)
		raise_ud(c);
	uint16_t sel = (uint16_t)(c->star >> 32);
	uint64_t fl = get_rflags(c);
	if (c->long_mode) {
		c->r[R_RCX] = c->next_rip;
		c->r[R_R11] = fl & ~(uint64_t)FL_RF;
		set_flat(&c->seg[SEG_CS], sel & ~3, true, true, 0);
		set_flat(&c->seg[SEG_SS], (sel + 8) & ~3, false, false, 0);
		c->next_rip = c->code64 ? c->lstar : c->cstar;
		set_rflags(c, fl & ~c->sfmask & ~(uint64_t)FL_RF, ~0ULL);
	} else {
		c->r[R_RCX] = (uint32_t)c->next_rip;
		set_flat(&c->seg[SEG_CS], sel & ~3, true, false, 0);
		set_flat(&c->seg[SEG_SS], (sel + 8) & ~3, false, false, 0);
		c->next_rip = (uint32_t)c->star;
		set_rflags(c, fl & ~(uint64_t)(FL_VM | FL_IF | FL_RF), ~0ULL);
	}
	c->cpl = 0;
	cpu_update_mode(c);
}

void sys_sysret(struct emu_cpu *c, const struct insn *i)
{
	if (!(c->efer & X86_EFER_SCE) || !c->prot)
		raise_ud(c);
	if (c->cpl != 0)
		raise_gp0(c);
	uint16_t sel = (uint16_t)(c->star >> 48);
	if (c->long_mode) {
		bool to64 = i->osize == 8;
		if (to64 && !canonical(c->r[R_RCX]))
			raise_gp0(c);
		if (to64) {
			set_flat(&c->seg[SEG_CS], (sel + 16) | 3, true, true, 3);
			c->next_rip = c->r[R_RCX];
		} else {
			set_flat(&c->seg[SEG_CS], sel | 3, true, false, 3);
			c->next_rip = (uint32_t)c->r[R_RCX];
		}
		set_rflags(c, c->r[R_R11], ~0ULL);
	} else {
		set_flat(&c->seg[SEG_CS], sel | 3, true, false, 3);
		c->next_rip = (uint32_t)c->r[R_RCX];
		c->rflags |= FL_IF;
	}
	/* SS selector from STAR, cached descriptor fixed (flat data, DPL 3) */
	set_flat(&c->seg[SEG_SS], (sel + 8) | 3, false, false, 3);
	c->cpl = 3;
	cpu_update_mode(c);
}

void sys_sysenter(struct emu_cpu *c, const struct insn *i)
{
	if (!c->prot || (c->sysenter_cs & ~3) == 0)
		raise_gp0(c);
	uint16_t sel = (uint16_t)c->sysenter_cs & ~3;
	c->rflags &= ~(uint64_t)(FL_VM | FL_IF | FL_RF);
	set_flat(&c->seg[SEG_CS], sel, true, c->long_mode, 0);
	set_flat(&c->seg[SEG_SS], sel + 8, false, false, 0);
	c->cpl = 0;
	cpu_update_mode(c);
	c->r[R_RSP] = c->long_mode ? c->sysenter_esp : (uint32_t)c->sysenter_esp;
	c->next_rip = c->long_mode ? c->sysenter_eip : (uint32_t)c->sysenter_eip;
}

void sys_sysexit(struct emu_cpu *c, const struct insn *i)
{
	if (!c->prot || c->cpl != 0 || (c->sysenter_cs & ~3) == 0)
		raise_gp0(c);
	uint16_t sel = (uint16_t)c->sysenter_cs;
	bool to64 = i->osize == 8;
	set_flat(&c->seg[SEG_CS], (uint16_t)((to64 ? sel + 32 : sel + 16) | 3), true, to64, 3);
	set_flat(&c->seg[SEG_SS], (uint16_t)((to64 ? sel + 40 : sel + 24) | 3), false, false, 3);
	c->cpl = 3;
	cpu_update_mode(c);
	c->r[R_RSP] = to64 ? c->r[R_RCX] : (uint32_t)c->r[R_RCX];
	c->next_rip = to64 ? c->r[R_RDX] : (uint32_t)c->r[R_RDX];
}

/* ------------------------------------------------------------------ */
/* Descriptor tables: 0F 00, 0F 01, LAR/LSL */

static void load_system_seg(struct emu_cpu *c, int seg, uint16_t sel)
{
	struct x86_segment *s = &c->seg[seg];
	if ((sel & ~3u) == 0) {
		if (seg == SEG_TR)
			raise_gp0(c);
		memset(s, 0, sizeof(*s));
		s->unusable = 1;
		return;
	}
	if (sel & 4)
		raise_exc_err(c, EXC_GP, sel & ~3u);
	uint64_t a = c->gdt.base + (sel & ~7u);
	unsigned dsz = c->long_mode ? 16 : 8;
	if ((uint64_t)(sel & ~7u) + dsz - 1 > c->gdt.limit)
		raise_exc_err(c, EXC_GP, sel & ~3u);
	uint64_t d = mem_read_sys(c, a, 8);
	unsigned type = (d >> 40) & 0xF;
	bool sbit = (d >> 44) & 1;
	if (sbit || (seg == SEG_LDT ? type != 2 : (type != 9 && type != 1)))
		raise_exc_err(c, EXC_GP, sel & ~3u);
	if (!((d >> 47) & 1))
		raise_exc_err(c, EXC_NP, sel & ~3u);
	memset(s, 0, sizeof(*s));
	s->base = ((d >> 16) & 0xFFFFFF) | ((d >> 32) & 0xFF000000);
	if (c->long_mode)
		s->base |= (mem_read_sys(c, a + 8, 8) & 0xFFFFFFFF) << 32;
	uint32_t limit = (uint32_t)((d & 0xFFFF) | ((d >> 32) & 0xF0000));
	s->g = (d >> 55) & 1;
	s->limit = s->g ? (limit << 12) | 0xFFF : limit;
	s->type = type;
	s->present = 1;
	s->selector = sel;
	if (seg == SEG_TR) {
		s->type |= 2; /* busy */
		mem_write_sys(c, a + 5, 1, ((d >> 40) & 0xFF) | 2);
	}
}

void sys_grp6(struct emu_cpu *c, const struct insn *i)
{
	if (!c->prot)
		raise_ud(c);
	unsigned r = i->reg & 7;
	switch (r) {
	case 0: /* SLDT */
	case 1: /* STR */
		if (i->mod == 3)
			reg_write(c, i->rm, i->osize, 1, c->seg[r == 0 ? SEG_LDT : SEG_TR].selector);
		else
			mem_write(c, i->seg, insn_ea(c, i), 2, c->seg[r == 0 ? SEG_LDT : SEG_TR].selector);
		break;
	case 2: case 3:
		if (c->cpl)
			raise_gp0(c);
		load_system_seg(c, r == 2 ? SEG_LDT : SEG_TR, (uint16_t)rm_read(c, i, 2));
		break;
	case 4: case 5: { /* VERR / VERW */
		uint16_t sel = (uint16_t)rm_read(c, i, 2);
		uint32_t f = flags_compute(c) & ~FL_ZF;
		if (sel & ~3u) {
			uint64_t a = (sel & 4) ? c->seg[SEG_LDT].base : c->gdt.base;
			uint64_t lim = (sel & 4) ? c->seg[SEG_LDT].limit : c->gdt.limit;
			if ((uint64_t)(sel & ~7u) + 7 <= lim) {
				uint64_t d = mem_read_sys(c, a + (sel & ~7u), 8);
				unsigned type = (d >> 40) & 0xF, dpl = (d >> 45) & 3;
				bool s = (d >> 44) & 1, code = type & 8;
				bool conforming = code && (type & 4);
				bool priv = conforming || (dpl >= c->cpl && dpl >= (sel & 3u));
				bool ok = s && priv && (r == 4 ? (!code || (type & 2)) : (!code && (type & 2)));
				if (ok)
					f |= FL_ZF;
			}
		}
		set_arith_flags(c, f);
		break;
	}
	default:
		raise_ud(c);
	}
}

void sys_lar_lsl(struct emu_cpu *c, const struct insn *i)
{
	if (!c->prot)
		raise_ud(c);
	uint16_t sel = (uint16_t)rm_read(c, i, 2);
	uint32_t f = flags_compute(c) & ~FL_ZF;
	if (sel & ~3u) {
		uint64_t a = (sel & 4) ? c->seg[SEG_LDT].base : c->gdt.base;
		uint64_t lim = (sel & 4) ? c->seg[SEG_LDT].limit : c->gdt.limit;
		if ((uint64_t)(sel & ~7u) + 7 <= lim) {
			uint64_t d = mem_read_sys(c, a + (sel & ~7u), 8);
			unsigned type = (d >> 40) & 0xF, dpl = (d >> 45) & 3;
			bool s = (d >> 44) & 1;
			bool conforming = s && (type & 0xC) == 0xC;
			bool valid_type = s || (i->op == 0x02 ? (type == 1 || type == 2 || type == 3 || type == 9 ||
								 type == 0xB || type == 0xC)
							      : (type == 1 || type == 2 || type == 3 || type == 9 ||
								 type == 0xB));
			if (valid_type && (conforming || (dpl >= c->cpl && dpl >= (sel & 3u)))) {
				f |= FL_ZF;
				if (i->op == 0x02) {
					reg_write(c, i->reg, i->osize, 1, (d >> 32) & 0x00F0FF00);
				} else {
					uint32_t limit = (uint32_t)((d & 0xFFFF) | ((d >> 32) & 0xF0000));
					if ((d >> 55) & 1)
						limit = (limit << 12) | 0xFFF;
					reg_write(c, i->reg, i->osize, 1, limit);
				}
			}
		}
	}
	set_arith_flags(c, f);
}

void sys_grp7(struct emu_cpu *c, const struct insn *i)
{
	unsigned r = i->reg & 7;
	if (i->mod == 3) {
		unsigned rm = i->rm & 7;
		switch (r) {
		case 4: /* SMSW r */
			reg_write(c, i->rm, i->osize, 1, c->cr0);
			return;
		case 6: /* LMSW r */
			if (c->prot && c->cpl)
				raise_gp0(c);
			write_cr(c, 0, (c->cr0 & ~0xEULL) | (rm_read(c, i, 2) & 0xF) | (c->cr0 & 1));
			return;
		case 7:
			if (rm == 0 && c->code64) { /* SWAPGS */
				if (c->cpl)
					raise_gp0(c);
				uint64_t t = c->seg[SEG_GS].base;
				c->seg[SEG_GS].base = c->kernel_gs_base;
				c->kernel_gs_base = t;
				return;
			}
			if (rm == 1) { /* RDTSCP: not advertised */
				raise_ud(c);
			}
			break;
		default:
			break;
		}
		insn_ud(c, i);
	}
	uint64_t ea = insn_ea(c, i);
	unsigned bsz = c->code64 ? 8 : 4;
	switch (r) {
	case 0: case 1: { /* SGDT / SIDT */
		struct x86_dtable *t = r == 0 ? &c->gdt : &c->idt;
		mem_write(c, i->seg, ea, 2, t->limit);
		mem_write(c, i->seg, ea + 2, bsz, c->code64 ? t->base : (uint32_t)t->base);
		return;
	}
	case 2: case 3: { /* LGDT / LIDT */
		if (c->prot && c->cpl)
			raise_gp0(c);
		uint16_t limit = (uint16_t)mem_read(c, i->seg, ea, 2);
		uint64_t base = mem_read(c, i->seg, ea + 2, bsz);
		if (!c->code64 && i->osize == 2)
			base &= 0xFFFFFF;
		if (c->code64 && !canonical(base))
			raise_gp0(c);
		struct x86_dtable *t = r == 2 ? &c->gdt : &c->idt;
		t->limit = limit;
		t->base = c->code64 ? base : (uint32_t)base;
		return;
	}
	case 4: /* SMSW m16 */
		mem_write(c, i->seg, ea, 2, c->cr0 & 0xFFFF);
		return;
	case 6: /* LMSW m16 */
		if (c->prot && c->cpl)
			raise_gp0(c);
		write_cr(c, 0, (c->cr0 & ~0xEULL) | (mem_read(c, i->seg, ea, 2) & 0xF) | (c->cr0 & 1));
		return;
	case 7: /* INVLPG */
		if (c->prot && c->cpl)
			raise_gp0(c);
		tlb_flush_page(c, seg_lin(c, i->seg, ea));
		return;
	default:
		insn_ud(c, i);
	}
}

void sys_grp15(struct emu_cpu *c, const struct insn *i)
{
	unsigned r = i->reg & 7;
	if (i->mod == 3) {
		if (i->pfx & (PFX_F3 | PFX_F2 | PFX_66))
			insn_ud(c, i); /* RDFSBASE & co: not advertised */
		if (r >= 5)
			return; /* LFENCE / MFENCE / SFENCE */
		insn_ud(c, i);
	}
	if (i->pfx & (PFX_F3 | PFX_F2 | PFX_66))
		insn_ud(c, i); /* prefixed memory forms: PTWRITE, CLFLUSHOPT, CLWB..., not advertised */
	uint64_t ea = insn_ea(c, i);
	switch (r) {
	case 0: case 1: { /* FXSAVE / FXRSTOR */
		if (c->cr0 & (X86_CR0_TS | X86_CR0_EM)) {
			if (c->cr0 & X86_CR0_EM)
				raise_ud(c);
			raise_exc(c, EXC_NM);
		}
		if (seg_lin(c, i->seg, ea) & 15)
			raise_gp0(c);
		uint8_t buf[512];
		if (r == 0) {
			mem_read_bytes(c, i->seg, ea, buf, 512); /* keep reserved areas */
			fxsave(c, buf);
			if (!(i->rex & 8)) {
				/* 32-bit format: FPU IP/DP as offset + selector */
			}
			mem_write_bytes(c, i->seg, ea, buf, 512);
		} else {
			mem_read_bytes(c, i->seg, ea, buf, 512);
			uint32_t mx;
			memcpy(&mx, buf + 24, 4);
			if (mx & ~0xFFFFu)
				raise_gp0(c);
			fxrstor(c, buf);
		}
		return;
	}
	case 2: { /* LDMXCSR */
		check_sse(c);
		uint32_t v = (uint32_t)mem_read(c, i->seg, ea, 4);
		if (v & ~0xFFFFu)
			raise_gp0(c);
		c->mxcsr = v;
		return;
	}
	case 3: /* STMXCSR */
		check_sse(c);
		mem_write(c, i->seg, ea, 4, c->mxcsr);
		return;
	case 7: /* CLFLUSH */
		(void)mem_read(c, i->seg, ea, 1);
		return;
	default:
		insn_ud(c, i);
	}
}
