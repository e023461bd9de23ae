/* The 0F opcode map, integer and system part (SSE/MMX are in sse.c). */
#include "accel/emu/alu.h"
#include "accel/emu/cpu.h"
#include "lib/log.h"
#include "machine/machine.h"

insn_fn op_table2[256];
insn_fn op_table38[256];
insn_fn op_table3a[256];

uint64_t imul_op(struct emu_cpu *c, unsigned size, uint64_t a, uint64_t b);

static inline uint64_t sx(uint64_t v, unsigned size)
{
	unsigned sh = 64 - size * 8;
	return (uint64_t)((int64_t)(v << sh) >> sh);
}

static inline uint32_t szp(uint64_t r, unsigned size)
{
	r &= size_mask(size);
	return ((__builtin_popcount((unsigned)(r & 0xFF)) & 1) ? 0 : FL_PF) | (r == 0 ? FL_ZF : 0) |
	       ((r >> (size * 8 - 1)) & 1 ? FL_SF : 0);
}

static void require_cpl0(struct emu_cpu *c)
{
	if (c->prot && c->cpl != 0)
		raise_gp0(c);
}

/* 0F 00 */
void sys_grp6(struct emu_cpu *c, const struct insn *i);
/* 0F 01 */
void sys_grp7(struct emu_cpu *c, const struct insn *i);
void sys_lar_lsl(struct emu_cpu *c, const struct insn *i);
void sys_syscall(struct emu_cpu *c, const struct insn *i);
void sys_sysret(struct emu_cpu *c, const struct insn *i);
void sys_sysenter(struct emu_cpu *c, const struct insn *i);
void sys_sysexit(struct emu_cpu *c, const struct insn *i);

static void op_clts(struct emu_cpu *c, const struct insn *i)
{
	require_cpl0(c);
	c->cr0 &= ~X86_CR0_TS;
}

static void op_cache(struct emu_cpu *c, const struct insn *i)
{
	require_cpl0(c); /* INVD / WBINVD: no caches to manage */
}

static void op_nop_modrm(struct emu_cpu *c, const struct insn *i)
{
}

/* 0F 0D: PREFETCH/PREFETCHW hints take a memory operand only */
static void op_prefetch_0d(struct emu_cpu *c, const struct insn *i)
{
	if (i->mod == 3)
		insn_ud(c, i);
}

static void op_mov_cr(struct emu_cpu *c, const struct insn *i)
{
	require_cpl0(c);
	unsigned n = i->reg;
	/* LOCK MOV CR0 is AMD's alias for CR8; not advertised. */
	if (n != 0 && n != 2 && n != 3 && n != 4 && n != 8)
		raise_ud(c);
	unsigned size = c->code64 ? 8 : 4;
	if (i->op == 0x20)
		reg_write(c, i->rm, size, 1, read_cr(c, n));
	else
		write_cr(c, n, reg_read(c, i->rm, size, 1));
}

static void op_mov_dr(struct emu_cpu *c, const struct insn *i)
{
	require_cpl0(c);
	unsigned n = i->reg & 7;
	if (n == 4 || n == 5)
		n += 2; /* aliases while CR4.DE = 0 */
	unsigned size = c->code64 ? 8 : 4;
	if (i->op == 0x21) {
		uint64_t v = c->dr[n];
		if (n == 6)
			v = (v & 0xF00F) | 0xFFFF0FF0;
		else if (n == 7)
			v = (v & 0xFFFFFFFF2FFFULL) | 0x400;
		reg_write(c, i->rm, size, 1, v);
	} else {
		c->dr[n] = reg_read(c, i->rm, size, 1);
	}
}

static void op_wrmsr(struct emu_cpu *c, const struct insn *i)
{
	require_cpl0(c);
	uint64_t v = (c->r[R_RDX] << 32) | (uint32_t)c->r[R_RAX];
	if (msr_write(c, (uint32_t)c->r[R_RCX], v) < 0)
		raise_gp0(c);
}

static void op_rdmsr(struct emu_cpu *c, const struct insn *i)
{
	require_cpl0(c);
	uint64_t v;
	if (msr_read(c, (uint32_t)c->r[R_RCX], &v) < 0)
		raise_gp0(c);
	c->r[R_RAX] = (uint32_t)v;
	c->r[R_RDX] = v >> 32;
}

static void op_rdtsc(struct emu_cpu *c, const struct insn *i)
{
	if ((c->cr4 & (1ULL << 2)) && c->cpl != 0 && c->prot)
		raise_gp0(c); /* CR4.TSD */
	uint64_t t = cpu_tsc(c);
	c->r[R_RAX] = (uint32_t)t;
	c->r[R_RDX] = t >> 32;
}

static void op_rdpmc(struct emu_cpu *c, const struct insn *i)
{
	raise_gp0(c);
}

static void op_cmov(struct emu_cpu *c, const struct insn *i)
{
	uint64_t v = rm_read(c, i, i->osize);
	if (cond_true(c, i->op & 15))
		reg_write(c, i->reg, i->osize, 1, v);
	else if (i->osize == 4)
		c->r[i->reg] = (uint32_t)c->r[i->reg];
}

static void op_jcc32(struct emu_cpu *c, const struct insn *i)
{
	if (cond_true(c, i->op & 15))
		jump_near(c, c->next_rip + i->imm, c->code64 ? 8 : i->osize);
}

static void op_setcc(struct emu_cpu *c, const struct insn *i)
{
	rm_write(c, i, 1, cond_true(c, i->op & 15));
}

static void op_push_fsgs(struct emu_cpu *c, const struct insn *i)
{
	int s = i->op == 0xA0 ? SEG_FS : SEG_GS;
	push(c, i->osize, c->seg[s].selector);
}

static void op_pop_fsgs(struct emu_cpu *c, const struct insn *i)
{
	int s = i->op == 0xA1 ? SEG_FS : SEG_GS;
	uint64_t sp = c->r[R_RSP];
	uint16_t sel = (uint16_t)mem_read(c, SEG_SS, sp & sp_mask(c), 2);
	load_seg(c, s, sel);
	set_sp(c, sp + i->osize);
}

static void op_cpuid(struct emu_cpu *c, const struct insn *i)
{
	do_cpuid(c);
}

/* BT/BTS/BTR/BTC with a register bit offset (0F A3/AB/B3/BB) or an
 * immediate (0F BA /4-7). A register offset reaches outside the operand
 * in memory (signed, scaled by the operand size). */
static void bit_op(struct emu_cpu *c, const struct insn *i, unsigned kind, uint64_t off, bool reg_off)
{
	unsigned size = i->osize, bits = size * 8;
	if (i->mod == 3) {
		uint64_t v = reg_read(c, i->rm, size, i->rex);
		if (kind == RMW_CMP) {
			uint32_t f = flags_compute(c) & ~FL_CF;
			if ((v >> (off & (bits - 1))) & 1)
				f |= FL_CF;
			set_arith_flags(c, f);
			return;
		}
		reg_write(c, i->rm, size, i->rex, rmw_compute(c, kind, size, v, off));
		return;
	}
	uint64_t ea = insn_ea(c, i);
	if (reg_off) {
		int64_t so = (int64_t)sx(off, size);
		int64_t words = so >> (size == 8 ? 6 : size == 4 ? 5 : 4);
		ea += (uint64_t)(words * (int64_t)size);
		ea &= size_mask(i->asize);
	}
	off &= bits - 1;
	uint64_t lin = seg_lin(c, i->seg, ea);
	if (kind == RMW_CMP) {
		uint64_t v = mem_read_lin(c, lin, size);
		uint32_t f = flags_compute(c) & ~FL_CF;
		if ((v >> off) & 1)
			f |= FL_CF;
		set_arith_flags(c, f);
		return;
	}
	lin_rmw(c, lin, i->pfx & PFX_LOCK, kind, size, off);
}

static void op_bt_reg(struct emu_cpu *c, const struct insn *i)
{
	unsigned kind = i->op == 0xA3 ? RMW_CMP : i->op == 0xAB ? RMW_BTS : i->op == 0xB3 ? RMW_BTR : RMW_BTC;
	bit_op(c, i, kind, reg_read(c, i->reg, i->osize, 1), true);
}

static void op_grp8(struct emu_cpu *c, const struct insn *i)
{
	static const uint8_t kinds[4] = { RMW_CMP, RMW_BTS, RMW_BTR, RMW_BTC };
	unsigned r = i->reg & 7;
	if (r < 4)
		raise_ud(c);
	bit_op(c, i, kinds[r - 4], (uint8_t)i->imm, false);
}

static void op_shld(struct emu_cpu *c, const struct insn *i)
{
	unsigned count = (i->op == 0xA4 || i->op == 0xAC) ? (uint8_t)i->imm : (uint8_t)c->r[R_RCX];
	bool right = i->op >= 0xAC;
	uint64_t src = reg_read(c, i->reg, i->osize, 1);
	if (i->mod == 3) {
		uint64_t d = reg_read(c, i->rm, i->osize, i->rex);
		reg_write(c, i->rm, i->osize, i->rex, shld_op(c, right, i->osize, d, src, count));
		return;
	}
	uint64_t ea = insn_ea(c, i);
	uint64_t d = mem_read(c, i->seg, ea, i->osize);
	uint64_t r = shld_op(c, right, i->osize, d, src, count);
	mem_write(c, i->seg, ea, i->osize, r);
}

void sys_grp15(struct emu_cpu *c, const struct insn *i);

static void op_imul_r_rm(struct emu_cpu *c, const struct insn *i)
{
	uint64_t r = imul_op(c, i->osize, reg_read(c, i->reg, i->osize, 1), rm_read(c, i, i->osize));
	reg_write(c, i->reg, i->osize, 1, r);
}

static uint64_t cas(void *p, unsigned size, uint64_t expect, uint64_t desired)
{
	switch (size) {
	case 1: { uint8_t e = (uint8_t)expect; __atomic_compare_exchange_n((uint8_t *)p, &e, (uint8_t)desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); return e; }
	case 2: { uint16_t e = (uint16_t)expect; __atomic_compare_exchange_n((uint16_t *)p, &e, (uint16_t)desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); return e; }
	case 4: { uint32_t e = (uint32_t)expect; __atomic_compare_exchange_n((uint32_t *)p, &e, (uint32_t)desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); return e; }
	default: { uint64_t e = expect; __atomic_compare_exchange_n((uint64_t *)p, &e, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); return e; }
	}
}

static void op_cmpxchg(struct emu_cpu *c, const struct insn *i)
{
	unsigned size = (i->op & 1) ? i->osize : 1;
	uint64_t acc = reg_read(c, R_RAX, size, 1);
	uint64_t src = reg_read(c, i->reg, size, i->rex);
	uint64_t old;
	if (i->mod == 3) {
		old = reg_read(c, i->rm, size, i->rex);
		if (old == acc)
			reg_write(c, i->rm, size, i->rex, src);
	} else {
		uint64_t lin = seg_lin(c, i->seg, insn_ea(c, i));
		void *p = mem_host_ptr_rw(c, lin, size);
		if (p) {
			old = cas(p, size, acc, src);
		} else {
			old = mem_read_lin(c, lin, size);
			/* the destination is always written, as hardware does */
			mem_write_lin(c, lin, size, old == acc ? src : old);
		}
	}
	alu(c, ALU_CMP, size, acc, old);
	if (old != acc)
		reg_write(c, R_RAX, size, 1, old);
}

static void op_lxs(struct emu_cpu *c, const struct insn *i)
{
	if (i->mod == 3)
		raise_ud(c);
	uint64_t ea = insn_ea(c, i);
	uint64_t off = mem_read(c, i->seg, ea, i->osize);
	uint16_t sel = (uint16_t)mem_read(c, i->seg, ea + i->osize, 2);
	int s = i->op == 0xB2 ? SEG_SS : i->op == 0xB4 ? SEG_FS : SEG_GS;
	load_seg(c, s, sel);
	reg_write(c, i->reg, i->osize, 1, off);
}

static void op_movzx(struct emu_cpu *c, const struct insn *i)
{
	unsigned from = (i->op & 1) ? 2 : 1;
	uint64_t v = rm_read(c, i, from);
	if (i->op >= 0xBE)
		v = sx(v, from);
	reg_write(c, i->reg, i->osize, 1, v);
}

static void op_popcnt(struct emu_cpu *c, const struct insn *i)
{
	if (!(i->pfx & PFX_F3))
		raise_ud(c); /* 0F B8 without F3 is JMPE (IA-64 only) */
	uint64_t v = rm_read(c, i, i->osize);
	unsigned n = (unsigned)__builtin_popcountll(v);
	reg_write(c, i->reg, i->osize, 1, n);
	set_arith_flags(c, v == 0 ? FL_ZF : 0);
}

static void op_bsf_bsr(struct emu_cpu *c, const struct insn *i)
{
	uint64_t v = rm_read(c, i, i->osize);
	uint32_t f = flags_compute(c) & ~FL_ZF;
	if (v == 0) {
		set_arith_flags(c, f | FL_ZF);
		return; /* destination unchanged */
	}
	unsigned n = i->op == 0xBC ? (unsigned)__builtin_ctzll(v) : 63 - (unsigned)__builtin_clzll(v);
	reg_write(c, i->reg, i->osize, 1, n);
	set_arith_flags(c, f);
}

static void op_xadd(struct emu_cpu *c, const struct insn *i)
{
	unsigned size = (i->op & 1) ? i->osize : 1;
	uint64_t src = reg_read(c, i->reg, size, i->rex);
	uint64_t old = rm_rmw(c, i, RMW_XADD, size, src);
	reg_write(c, i->reg, size, i->rex, old);
}

static void op_grp9(struct emu_cpu *c, const struct insn *i)
{
	if ((i->reg & 7) != 1 || i->mod == 3)
		raise_ud(c);
	uint64_t ea = insn_ea(c, i);
	uint64_t lin = seg_lin(c, i->seg, ea);
	uint32_t f = flags_compute(c) & ~FL_ZF;
	if (i->osize == 8) { /* CMPXCHG16B */
		if (lin & 15)
			raise_gp0(c);
		unsigned __int128 expect = ((unsigned __int128)c->r[R_RDX] << 64) | c->r[R_RAX];
		unsigned __int128 desired = ((unsigned __int128)c->r[R_RCX] << 64) | c->r[R_RBX];
		unsigned __int128 *p = mem_host_ptr_rw(c, lin, 16);
		unsigned __int128 old;
		if (p) {
			/* the host is x86-64 with CMPXCHG16B (every CPU that runs
			 * a 64-bit Debian has it) */
			uint64_t lo = (uint64_t)expect, hi = (uint64_t)(expect >> 64);
			__asm__ volatile("lock cmpxchg16b %0"
					 : "+m"(*p), "+a"(lo), "+d"(hi)
					 : "b"((uint64_t)desired), "c"((uint64_t)(desired >> 64))
					 : "memory", "cc");
			old = ((unsigned __int128)hi << 64) | lo;
		} else {
			uint64_t lo = mem_read_lin(c, lin, 8), hi = mem_read_lin(c, lin + 8, 8);
			old = ((unsigned __int128)hi << 64) | lo;
			unsigned __int128 w = old == expect ? desired : old;
			mem_write_lin(c, lin, 8, (uint64_t)w);
			mem_write_lin(c, lin + 8, 8, (uint64_t)(w >> 64));
		}
		if (old == expect) {
			f |= FL_ZF;
		} else {
			c->r[R_RAX] = (uint64_t)old;
			c->r[R_RDX] = (uint64_t)(old >> 64);
		}
	} else { /* CMPXCHG8B */
		uint64_t expect = ((uint64_t)(uint32_t)c->r[R_RDX] << 32) | (uint32_t)c->r[R_RAX];
		uint64_t desired = ((uint64_t)(uint32_t)c->r[R_RCX] << 32) | (uint32_t)c->r[R_RBX];
		uint64_t old;
		void *p = mem_host_ptr_rw(c, lin, 8);
		if (p) {
			old = cas(p, 8, expect, desired);
		} else {
			old = mem_read_lin(c, lin, 8);
			mem_write_lin(c, lin, 8, old == expect ? desired : old);
		}
		if (old == expect) {
			f |= FL_ZF;
		} else {
			c->r[R_RAX] = (uint32_t)old;
			c->r[R_RDX] = (uint32_t)(old >> 32);
		}
	}
	set_arith_flags(c, f);
}

static void op_bswap(struct emu_cpu *c, const struct insn *i)
{
	unsigned r = (i->op & 7) | ((i->rex & 1) << 3);
	if (i->osize == 8)
		c->r[r] = __builtin_bswap64(c->r[r]);
	else if (i->osize == 4)
		c->r[r] = __builtin_bswap32((uint32_t)c->r[r]);
	else
		c->r[r] &= ~0xFFFFULL; /* undefined; hardware gives 0 */
}

static void op_ud(struct emu_cpu *c, const struct insn *i)
{
	raise_ud(c);
}

void exec_0f_init(void)
{
	op_table2[0x00] = sys_grp6;
	op_table2[0x01] = sys_grp7;
	op_table2[0x02] = op_table2[0x03] = sys_lar_lsl;
	op_table2[0x05] = sys_syscall;
	op_table2[0x06] = op_clts;
	op_table2[0x07] = sys_sysret;
	op_table2[0x08] = op_table2[0x09] = op_cache;
	op_table2[0x0B] = op_ud;
	op_table2[0x0D] = op_prefetch_0d;
	for (int k = 0x18; k < 0x20; k++)
		op_table2[k] = op_nop_modrm;
	op_table2[0x20] = op_table2[0x22] = op_mov_cr;
	op_table2[0x21] = op_table2[0x23] = op_mov_dr;
	op_table2[0x30] = op_wrmsr;
	op_table2[0x31] = op_rdtsc;
	op_table2[0x32] = op_rdmsr;
	op_table2[0x33] = op_rdpmc;
	op_table2[0x34] = sys_sysenter;
	op_table2[0x35] = sys_sysexit;
	for (int k = 0x40; k < 0x50; k++)
		op_table2[k] = op_cmov;
	for (int k = 0x80; k < 0x90; k++)
		op_table2[k] = op_jcc32;
	for (int k = 0x90; k < 0xA0; k++)
		op_table2[k] = op_setcc;
	op_table2[0xA0] = op_table2[0xA8] = op_push_fsgs;
	op_table2[0xA1] = op_table2[0xA9] = op_pop_fsgs;
	op_table2[0xA2] = op_cpuid;
	op_table2[0xA3] = op_table2[0xAB] = op_table2[0xB3] = op_table2[0xBB] = op_bt_reg;
	op_table2[0xA4] = op_table2[0xA5] = op_table2[0xAC] = op_table2[0xAD] = op_shld;
	op_table2[0xAE] = sys_grp15;
	op_table2[0xAF] = op_imul_r_rm;
	op_table2[0xB0] = op_table2[0xB1] = op_cmpxchg;
	op_table2[0xB2] = op_table2[0xB4] = op_table2[0xB5] = op_lxs;
	op_table2[0xB6] = op_table2[0xB7] = op_table2[0xBE] = op_table2[0xBF] = op_movzx;
	op_table2[0xB8] = op_popcnt;
	op_table2[0xB9] = op_ud;
	op_table2[0xBA] = op_grp8;
	op_table2[0xBC] = op_table2[0xBD] = op_bsf_bsr;
	op_table2[0xC0] = op_table2[0xC1] = op_xadd;
	op_table2[0xC7] = op_grp9;
	for (int k = 0xC8; k < 0xD0; k++)
		op_table2[k] = op_bswap;
	op_table2[0xFF] = op_ud;
	(void)szp;
}
