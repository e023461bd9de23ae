/* Segmentation and privilege: descriptor loads, far transfers, interrupt
 * and exception delivery through the IVT/IDT (with TSS stack switches and
 * IST), IRET, and the fault nesting rules (#DF, triple fault). */
#include "accel/emu/alu.h"
#include "accel/emu/cpu.h"
#include "lib/log.h"
#include "machine/machine.h"

_Noreturn void raise_exc(struct emu_cpu *c, int vector)
{
	c->exc_vector = vector;
	c->exc_has_error = false;
	c->exc_error = 0;
	longjmp(c->fault_jmp, 1);
}

_Noreturn void raise_exc_err(struct emu_cpu *c, int vector, uint32_t error)
{
	c->exc_vector = vector;
	c->exc_has_error = true;
	c->exc_error = error;
	longjmp(c->fault_jmp, 1);
}

void cpu_update_mode(struct emu_cpu *c)
{
	end_block(c);
	c->prot = c->cr0 & X86_CR0_PE;
	c->long_mode = c->efer & X86_EFER_LMA;
	c->code64 = c->long_mode && c->seg[SEG_CS].l;
	c->code32 = !c->code64 && c->seg[SEG_CS].db;
	c->stack32 = c->seg[SEG_SS].db;
	if (!c->prot)
		c->cpl = 0;
}

/* ------------------------------------------------------------------ */
/* Descriptors */

static void desc_to_seg(uint64_t d, struct x86_segment *s)
{
	s->base = ((d >> 16) & 0xFFFFFF) | ((d >> 32) & 0xFF000000);
	uint32_t limit = (uint32_t)((d & 0xFFFF) | ((d >> 32) & 0xF0000));
	s->g = (d >> 55) & 1;
	s->limit = s->g ? (limit << 12) | 0xFFF : limit;
	s->type = (d >> 40) & 0xF;
	s->s = (d >> 44) & 1;
	s->dpl = (d >> 45) & 3;
	s->present = (d >> 47) & 1;
	s->avl = (d >> 52) & 1;
	s->l = (d >> 53) & 1;
	s->db = (d >> 54) & 1;
	s->unusable = 0;
}

/* Reads the 8-byte descriptor for sel; raises #GP(sel) if outside its table. */
static uint64_t read_desc(struct emu_cpu *c, uint16_t sel, uint64_t *addr_out)
{
	uint64_t base, limit;
	if (sel & 4) {
		if (c->seg[SEG_LDT].unusable || !c->seg[SEG_LDT].present)
			raise_exc_err(c, EXC_GP, sel & ~3u);
		base = c->seg[SEG_LDT].base;
		limit = c->seg[SEG_LDT].limit;
	} else {
		base = c->gdt.base;
		limit = c->gdt.limit;
	}
	if ((uint64_t)(sel & ~7u) + 7 > limit)
		raise_exc_err(c, EXC_GP, sel & ~3u);
	uint64_t a = base + (sel & ~7u);
	if (addr_out)
		*addr_out = a;
	return mem_read_sys(c, a, 8);
}

static void set_accessed(struct emu_cpu *c, uint64_t addr, uint64_t d)
{
	if (!(d & (1ULL << 40)))
		mem_write_sys(c, addr + 5, 1, ((d >> 40) & 0xFF) | 1);
}

void load_seg_real(struct emu_cpu *c, int seg, uint16_t sel)
{
	struct x86_segment *s = &c->seg[seg];
	s->selector = sel;
	s->base = (uint64_t)sel << 4;
	s->unusable = 0;
	s->present = 1;
	s->s = 1;
	if (seg == SEG_CS)
		s->type |= 8 | 2 | 1;
	else
		s->type = (s->type & ~8u) | 2 | 1;
	if (!c->prot) {
		s->dpl = 0;
		/* limits and D/B stay as cached ("unreal mode") */
	} else {
		s->dpl = 3; /* virtual-8086 */
		s->limit = 0xFFFF;
		s->db = 0;
	}
}

void load_seg(struct emu_cpu *c, int seg, uint16_t sel)
{
	if (!c->prot || (c->rflags & FL_VM)) {
		load_seg_real(c, seg, sel);
		if (seg == SEG_SS || seg == SEG_CS)
			cpu_update_mode(c);
		return;
	}
	struct x86_segment *s = &c->seg[seg];
	if ((sel & ~3u) == 0) {
		if (seg == SEG_SS && !(c->code64 && c->cpl < 3 && (sel & 3) == c->cpl))
			raise_gp0(c);
		memset(s, 0, sizeof(*s));
		s->selector = sel;
		s->unusable = 1;
		if (seg == SEG_SS) {
			s->dpl = c->cpl;
			s->db = 1; /* 64-bit null SS: treat as 32-bit stack */
			s->present = 1;
			s->s = 1;
			s->type = 3;
			s->unusable = 0;
			cpu_update_mode(c);
		}
		return;
	}
	uint64_t addr;
	uint64_t d = read_desc(c, sel, &addr);
	struct x86_segment n;
	desc_to_seg(d, &n);
	unsigned rpl = sel & 3, dpl = n.dpl;
	if (!n.s)
		raise_exc_err(c, EXC_GP, sel & ~3u);
	bool code = n.type & 8;
	if (seg == SEG_SS) {
		if (code || !(n.type & 2) || rpl != c->cpl || dpl != c->cpl)
			raise_exc_err(c, EXC_GP, sel & ~3u);
		if (!n.present)
			raise_exc_err(c, EXC_SS, sel & ~3u);
	} else {
		if (code && !(n.type & 2))
			raise_exc_err(c, EXC_GP, sel & ~3u);
		bool conforming = code && (n.type & 4);
		if (!conforming && (dpl < c->cpl || dpl < rpl))
			raise_exc_err(c, EXC_GP, sel & ~3u);
		if (!n.present)
			raise_exc_err(c, EXC_NP, sel & ~3u);
	}
	set_accessed(c, addr, d);
	n.type |= 1;
	n.selector = sel;
	*s = n;
	if (seg == SEG_SS)
		cpu_update_mode(c);
}

/* Loads CS for a transfer to privilege level new_cpl (checks done by the
 * caller). In long mode a system descriptor would be 16 bytes; code
 * descriptors are 8. */
static void load_cs(struct emu_cpu *c, uint16_t sel, uint64_t d, unsigned new_cpl)
{
	struct x86_segment n;
	desc_to_seg(d, &n);
	n.type |= 1;
	n.selector = (uint16_t)((sel & ~3u) | new_cpl);
	c->seg[SEG_CS] = n;
	c->cpl = new_cpl;
	cpu_update_mode(c);
}

static uint64_t check_code_desc(struct emu_cpu *c, uint16_t sel, uint64_t *addr)
{
	if ((sel & ~3u) == 0)
		raise_gp0(c);
	uint64_t d = read_desc(c, sel, addr);
	bool s = (d >> 44) & 1, code = (d >> 43) & 1;
	if (!s || !code)
		raise_exc_err(c, EXC_GP, sel & ~3u);
	if (!((d >> 47) & 1))
		raise_exc_err(c, EXC_NP, sel & ~3u);
	return d;
}

void far_jump(struct emu_cpu *c, uint16_t sel, uint64_t off, bool call, unsigned osize)
{
	if (!c->prot || (c->rflags & FL_VM)) {
		if (call) {
			push(c, osize, c->seg[SEG_CS].selector);
			push(c, osize, c->next_rip);
		}
		load_seg_real(c, SEG_CS, sel);
		c->next_rip = osize == 2 ? (off & 0xFFFF) : (uint32_t)off;
		cpu_update_mode(c);
		return;
	}
	uint64_t addr;
	uint64_t d = check_code_desc(c, sel, &addr);
	unsigned dpl = (d >> 45) & 3, rpl = sel & 3;
	bool conforming = (d >> 42) & 1;
	if (conforming ? dpl > c->cpl : (rpl > c->cpl || dpl != c->cpl))
		raise_exc_err(c, EXC_GP, sel & ~3u);
	if (call) {
		uint64_t sp = c->r[R_RSP];
		unsigned ps = c->code64 ? (osize == 2 ? 2 : 8) : osize;
		push(c, ps, c->seg[SEG_CS].selector);
		push(c, ps, c->next_rip);
		(void)sp;
	}
	set_accessed(c, addr, d);
	load_cs(c, sel, d, c->cpl);
	if (!c->code64)
		off = osize == 2 ? (off & 0xFFFF) : (uint32_t)off;
	c->next_rip = off;
}

/* After a return to an outer privilege level, data segments the new
 * level may not use become null. */
static void null_inaccessible_segs(struct emu_cpu *c)
{
	static const int segs[4] = { SEG_ES, SEG_DS, SEG_FS, SEG_GS };
	for (int k = 0; k < 4; k++) {
		struct x86_segment *s = &c->seg[segs[k]];
		bool conforming_code = (s->type & 0xC) == 0xC;
		if (!s->unusable && (s->selector & ~3u) && !conforming_code && s->dpl < c->cpl) {
			s->selector = 0;
			s->unusable = 1;
			s->present = 0;
		}
	}
}

/* Completes a return to (cs_sel, rip) with an optional stack switch. */
static void return_to(struct emu_cpu *c, uint16_t cs_sel, uint64_t rip, bool load_stack,
		      uint16_t ss_sel, uint64_t rsp)
{
	uint64_t addr;
	uint64_t d = check_code_desc(c, cs_sel, &addr);
	unsigned rpl = cs_sel & 3, dpl = (d >> 45) & 3;
	bool conforming = (d >> 42) & 1;
	if (rpl < c->cpl || (conforming ? dpl > rpl : dpl != rpl))
		raise_exc_err(c, EXC_GP, cs_sel & ~3u);
	unsigned old_cpl = c->cpl;
	if (load_stack) {
		/* SS is checked against the new CPL */
		c->cpl = rpl;
		if ((ss_sel & ~3u) == 0) {
			bool ok = c->long_mode && rpl < 3 && (d >> 53 & 1);
			if (!ok) {
				c->cpl = old_cpl;
				raise_gp0(c);
			}
		}
		struct x86_segment save = c->seg[SEG_SS];
		bool save_code64 = c->code64;
		/* load_seg checks SS against the new CPL; with a 64-bit target
		 * a null SS is allowed */
		c->code64 = c->long_mode && ((d >> 53) & 1);
		if (c->code64 || (ss_sel & ~3u)) {
			if (!(ss_sel & ~3u)) {
				memset(&c->seg[SEG_SS], 0, sizeof(c->seg[SEG_SS]));
				c->seg[SEG_SS].selector = ss_sel;
				c->seg[SEG_SS].dpl = rpl;
				c->seg[SEG_SS].present = 1;
				c->seg[SEG_SS].s = 1;
				c->seg[SEG_SS].type = 3;
				c->seg[SEG_SS].db = 1;
			} else {
				load_seg(c, SEG_SS, ss_sel);
			}
		}
		c->code64 = save_code64;
		(void)save;
		c->r[R_RSP] = rsp;
	}
	set_accessed(c, addr, d);
	load_cs(c, cs_sel, d, rpl);
	if (!c->code64)
		rip = (uint32_t)rip;
	if (load_stack && !c->code64 && !c->stack32)
		c->r[R_RSP] = (c->r[R_RSP] & ~0xFFFFULL) | (rsp & 0xFFFF);
	else if (load_stack && !c->code64)
		c->r[R_RSP] = (uint32_t)rsp;
	c->next_rip = rip;
	if (rpl > old_cpl)
		null_inaccessible_segs(c);
}

void far_return(struct emu_cpu *c, unsigned osize, uint16_t pop_extra)
{
	unsigned s = c->code64 ? (osize == 2 ? 2 : osize) : osize;
	uint64_t sp = c->r[R_RSP] & sp_mask(c);
	uint64_t rip = mem_read(c, SEG_SS, sp, s);
	uint16_t cs = (uint16_t)mem_read(c, SEG_SS, (sp + s) & sp_mask(c), 2);
	if (!c->prot || (c->rflags & FL_VM)) {
		set_sp(c, sp + 2 * s + pop_extra);
		load_seg_real(c, SEG_CS, cs);
		cpu_update_mode(c);
		c->next_rip = s == 2 ? rip & 0xFFFF : (uint32_t)rip;
		return;
	}
	if ((cs & 3) > c->cpl) {
		uint64_t sp2 = (sp + 2 * s + pop_extra) & sp_mask(c);
		uint64_t rsp = mem_read(c, SEG_SS, sp2, s);
		uint16_t ss = (uint16_t)mem_read(c, SEG_SS, (sp2 + s) & sp_mask(c), 2);
		return_to(c, cs, rip, true, ss, rsp + pop_extra);
		return;
	}
	set_sp(c, sp + 2 * s + pop_extra);
	return_to(c, cs, rip, false, 0, 0);
}

void do_iret(struct emu_cpu *c, unsigned osize)
{
	unsigned s = osize;
	uint64_t sp = c->r[R_RSP] & sp_mask(c);
	uint64_t rip = mem_read(c, SEG_SS, sp, s);
	uint16_t cs = (uint16_t)mem_read(c, SEG_SS, (sp + s) & sp_mask(c), 2);
	uint64_t fl = mem_read(c, SEG_SS, (sp + 2 * s) & sp_mask(c), s);
	if (!c->prot) {
		set_sp(c, sp + 3 * s);
		load_seg_real(c, SEG_CS, cs);
		cpu_update_mode(c);
		c->next_rip = s == 2 ? rip & 0xFFFF : (uint32_t)rip;
		set_rflags(c, fl, s == 2 ? 0xFFFF : 0x257FD5);
		c->nmi_blocked = false;
		return;
	}
	if (c->rflags & FL_VM)
		raise_gp0(c); /* virtual-8086 mode is not supported */
	if (c->rflags & FL_NT && !c->long_mode) {
		log_once(LOG_WARN, "emu: IRET with NT (task switch) is not supported");
		raise_gp0(c);
	}
	unsigned old_cpl = c->cpl;
	bool outer = c->code64 || (cs & 3) > c->cpl;
	uint64_t rsp = 0;
	uint16_t ss = 0;
	if (outer) {
		rsp = mem_read(c, SEG_SS, (sp + 3 * s) & sp_mask(c), s);
		ss = (uint16_t)mem_read(c, SEG_SS, (sp + 4 * s) & sp_mask(c), 2);
	}
	uint64_t changeable = FL_ARITH | FL_TF | FL_DF | FL_NT | FL_RF | FL_AC | FL_ID;
	if (old_cpl == 0)
		changeable |= FL_IOPL | FL_IF;
	else if (old_cpl <= ((c->rflags & FL_IOPL) >> 12))
		changeable |= FL_IF;
	if (s == 2)
		changeable &= 0xFFFF;
	if (!outer)
		set_sp(c, sp + 3 * s);
	return_to(c, cs, rip, outer, ss, rsp);
	set_rflags(c, fl, changeable);
	c->nmi_blocked = false;
	if (c->nmi_pending)
		c->pending = 1;
}

/* ------------------------------------------------------------------ */
/* Interrupt and exception delivery */

static bool is_contributory(int v)
{
	return v == EXC_DE || (v >= EXC_TS && v <= EXC_GP);
}

static void deliver_real(struct emu_cpu *c, int vector, uint64_t ret)
{
	uint64_t a = c->idt.base + (uint64_t)vector * 4;
	if ((uint64_t)vector * 4 + 3 > c->idt.limit)
		raise_gp0(c);
	uint32_t ent = (uint32_t)mem_read_sys(c, a, 4);
	push(c, 2, get_rflags(c));
	push(c, 2, c->seg[SEG_CS].selector);
	push(c, 2, ret);
	c->rflags &= ~(uint64_t)(FL_IF | FL_TF | FL_AC | FL_RF);
	load_seg_real(c, SEG_CS, (uint16_t)(ent >> 16));
	cpu_update_mode(c);
	c->rip = c->next_rip = ent & 0xFFFF;
}

static void deliver_prot(struct emu_cpu *c, int vector, bool has_error, uint32_t error,
			 bool software, uint64_t ret)
{
	bool lm = c->long_mode;
	unsigned gsz = lm ? 16 : 8;
	uint32_t idt_err = (uint32_t)vector * 8 + 2 + (software ? 0 : 1);
	if ((uint64_t)vector * gsz + gsz - 1 > c->idt.limit)
		raise_exc_err(c, EXC_GP, idt_err);
	uint64_t ga = c->idt.base + (uint64_t)vector * gsz;
	uint64_t g = mem_read_sys(c, ga, 8);
	uint64_t ghi = lm ? mem_read_sys(c, ga + 8, 8) : 0;
	unsigned type = (g >> 40) & 0xF, gdpl = (g >> 45) & 3;
	bool present = (g >> 47) & 1;
	if (lm ? (type != 0xE && type != 0xF) : (type != 0xE && type != 0xF && type != 6 && type != 7)) {
		if (type == 5)
			log_once(LOG_WARN, "emu: task gates are not supported (vector %d)", vector);
		raise_exc_err(c, EXC_GP, idt_err);
	}
	if (software && gdpl < c->cpl)
		raise_exc_err(c, EXC_GP, idt_err);
	if (!present)
		raise_exc_err(c, EXC_NP, idt_err);
	uint16_t cs_sel = (uint16_t)(g >> 16);
	uint64_t off = (g & 0xFFFF) | ((g >> 32) & 0xFFFF0000ULL);
	if (lm)
		off |= (ghi & 0xFFFFFFFFULL) << 32;
	unsigned ist = lm ? (g >> 32) & 7 : 0;
	bool gate32 = type & 8;
	bool trap = type & 1;

	uint64_t d = check_code_desc(c, cs_sel, NULL);
	unsigned dpl = (d >> 45) & 3;
	bool conforming = (d >> 42) & 1;
	if (dpl > c->cpl)
		raise_exc_err(c, EXC_GP, cs_sel & ~3u);
	if (lm && !((d >> 53) & 1))
		raise_exc_err(c, EXC_GP, cs_sel & ~3u);
	unsigned new_cpl = conforming ? c->cpl : dpl;

	uint64_t old_rflags = get_rflags(c);
	uint16_t old_cs = c->seg[SEG_CS].selector, old_ss = c->seg[SEG_SS].selector;
	uint64_t old_rsp = c->r[R_RSP];
	uint64_t tss = c->seg[SEG_TR].base;

	if (lm) {
		uint64_t rsp;
		if (ist)
			rsp = mem_read_sys(c, tss + 0x24 + 8 * (ist - 1), 8);
		else if (new_cpl < c->cpl)
			rsp = mem_read_sys(c, tss + 4 + 8 * new_cpl, 8);
		else
			rsp = old_rsp;
		rsp &= ~0xFULL;
		/* write the frame first (faults leave the state untouched) */
		uint64_t frame[6];
		int n = 0;
		if (has_error)
			frame[n++] = error;
		frame[n++] = ret;
		frame[n++] = old_cs;
		frame[n++] = old_rflags;
		frame[n++] = old_rsp;
		frame[n++] = old_ss;
		uint64_t sp = rsp - 8 * (uint64_t)n;
		/* pushes happen at the new privilege level's view: use CPL0-like
		 * supervisor accesses when going to ring 0 */
		unsigned save_cpl = c->cpl;
		c->cpl = new_cpl;
		for (int k = 0; k < n; k++) {
			uint64_t a = sp + 8 * (uint64_t)k;
			if (new_cpl == 0)
				mem_write_sys(c, a, 8, frame[k]);
			else
				mem_write_lin(c, a, 8, frame[k]);
		}
		c->cpl = save_cpl;
		if (new_cpl < c->cpl) {
			struct x86_segment *ss = &c->seg[SEG_SS];
			memset(ss, 0, sizeof(*ss));
			ss->selector = (uint16_t)new_cpl;
			ss->dpl = new_cpl;
			ss->present = 1;
			ss->s = 1;
			ss->type = 3;
			ss->db = 1;
		}
		c->r[R_RSP] = sp;
		load_cs(c, cs_sel, d, new_cpl);
		c->rip = c->next_rip = off;
	} else {
		unsigned w = gate32 ? 4 : 2;
		uint64_t sp_base, sp;
		uint16_t new_ss = old_ss;
		bool switch_stack = new_cpl < c->cpl;
		struct x86_segment ss_seg = c->seg[SEG_SS];
		if (switch_stack) {
			uint32_t esp = (uint32_t)mem_read_sys(c, tss + 4 + 8 * new_cpl, 4);
			new_ss = (uint16_t)mem_read_sys(c, tss + 8 + 8 * new_cpl, 2);
			uint64_t sd = read_desc(c, new_ss, NULL);
			desc_to_seg(sd, &ss_seg);
			ss_seg.selector = new_ss;
			if ((new_ss & ~3u) == 0 || ((sd >> 47) & 1) == 0)
				raise_exc_err(c, EXC_TS, new_ss & ~3u);
			sp = esp;
		} else {
			sp = old_rsp;
		}
		bool ss32 = ss_seg.db;
		uint64_t mask = ss32 ? 0xFFFFFFFFULL : 0xFFFF;
		sp_base = ss_seg.base;
		uint64_t frame[6];
		int n = 0;
		if (has_error)
			frame[n++] = error;
		frame[n++] = ret;
		frame[n++] = old_cs;
		frame[n++] = old_rflags;
		if (switch_stack) {
			frame[n++] = old_rsp;
			frame[n++] = old_ss;
		}
		sp = (sp - w * (uint64_t)n) & mask;
		for (int k = 0; k < n; k++)
			mem_write_sys(c, (uint32_t)(sp_base + ((sp + w * (uint64_t)k) & mask)), w, frame[k]);
		if (switch_stack)
			c->seg[SEG_SS] = ss_seg;
		c->r[R_RSP] = ss32 ? sp : ((c->r[R_RSP] & ~0xFFFFULL) | sp);
		load_cs(c, cs_sel, d, new_cpl);
		c->rip = c->next_rip = gate32 ? (uint32_t)off : (off & 0xFFFF);
	}
	c->rflags = (old_rflags & ~(uint64_t)(FL_TF | FL_NT | FL_RF | FL_VM)) | 2;
	if (!trap)
		c->rflags &= ~(uint64_t)FL_IF;
	set_arith_flags(c, (uint32_t)old_rflags);
}

void deliver_event(struct emu_cpu *c, int vector, bool has_error, uint32_t error,
		   bool software, uint64_t return_rip)
{
	if (c->delivering) {
		int first = c->first_vector;
		if (first == EXC_DF) {
			log_warn("emu: vcpu%u triple fault (vector %d while delivering #DF) at rip %#llx",
				 c->v ? c->v->index : 0, vector, (unsigned long long)c->rip);
			c->delivering = 0;
			machine_request_stop(c->m, VM_STOP_RESET, 0);
			return;
		}
		bool df = (is_contributory(first) && is_contributory(vector)) ||
			  (first == EXC_PF && (vector == EXC_PF || is_contributory(vector)));
		if (df) {
			vector = EXC_DF;
			has_error = true;
			error = 0;
			software = false;
		}
	}
	c->delivering = 1;
	c->first_vector = vector;
	if (vector == EXC_DF || vector == EXC_TS || vector == EXC_NP || vector == EXC_SS ||
	    vector == EXC_GP || vector == EXC_PF || vector == EXC_AC) {
		/* error codes are pushed in protected mode only */
	} else {
		has_error = false;
	}
	if (!c->prot) {
		deliver_real(c, vector, return_rip);
	} else {
		deliver_prot(c, vector, has_error, error, software, return_rip);
	}
	c->delivering = 0;
	c->halted = false;
}
