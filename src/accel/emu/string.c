/* String instructions (MOVS, CMPS, STOS, LODS, SCAS, INS, OUTS) with
 * REP/REPE/REPNE. REP MOVS/STOS over RAM run page by page on host
 * pointers; everything else goes element by element. A long REP yields
 * after a bounded number of elements (RIP stays on the instruction), so
 * interrupts are taken with low latency, as on hardware. */
#include "accel/emu/alu.h"
#include "accel/emu/cpu.h"

#define REP_CHUNK 65536

void *mem_host_ptr_ro(struct emu_cpu *c, uint64_t lin, unsigned size);

static inline uint64_t areg(struct emu_cpu *c, int r, unsigned asize)
{
	return c->r[r] & size_mask(asize);
}

static inline void areg_add(struct emu_cpu *c, int r, unsigned asize, int64_t delta)
{
	reg_write(c, r, asize, 1, c->r[r] + (uint64_t)delta);
}

/* Fast forward REP MOVS / STOS on RAM. Returns elements done (maybe 0). */
static uint64_t rep_fast(struct emu_cpu *c, const struct insn *i, unsigned size, uint64_t count, bool movs)
{
	uint64_t done = 0;
	while (done < count && done < REP_CHUNK * 16) {
		uint64_t di = areg(c, R_RDI, i->asize);
		uint64_t dlin = lin_mask(c, seg_lin(c, SEG_ES, di));
		uint64_t room = (4096 - (dlin & 0xFFF)) / size;
		uint64_t slin = 0;
		if (movs) {
			uint64_t si = areg(c, R_RSI, i->asize);
			slin = lin_mask(c, seg_lin(c, i->seg, si));
			uint64_t sroom = (4096 - (slin & 0xFFF)) / size;
			if (sroom < room)
				room = sroom;
		}
		if (room == 0)
			break; /* element straddles a page: slow path */
		uint64_t n = count - done < room ? count - done : room;
		uint8_t *src = NULL;
		if (movs) {
			src = mem_host_ptr_ro(c, slin, (unsigned)(n * size));
			if (!src)
				break;
		}
		uint8_t *dst = mem_host_ptr_rw(c, dlin, (unsigned)(n * size));
		if (!dst)
			break;
		uint64_t bytes = n * size;
		if (movs) {
			if (dst > src && dst < src + bytes) {
				/* overlapping forward copy: element by element, each
				 * element read whole before it is written (a byte loop
				 * differs when the distance is below the element size) */
				for (uint64_t k = 0; k < bytes; k += size) {
					uint64_t e;
					memcpy(&e, src + k, size);
					memcpy(dst + k, &e, size);
				}
			} else {
				memmove(dst, src, bytes);
			}
			areg_add(c, R_RSI, i->asize, (int64_t)bytes);
		} else {
			uint64_t v = c->r[R_RAX];
			if (size == 1) {
				memset(dst, (int)(v & 0xFF), bytes);
			} else {
				for (uint64_t k = 0; k < bytes; k += size)
					memcpy(dst + k, &v, size);
			}
		}
		areg_add(c, R_RDI, i->asize, (int64_t)bytes);
		areg_add(c, R_RCX, i->asize, -(int64_t)n);
		done += n;
	}
	return done;
}

/* One element of the string op; returns false for REPE/REPNE stop. */
static void string_step(struct emu_cpu *c, const struct insn *i, unsigned size, int64_t delta)
{
	unsigned as = i->asize;
	switch (i->op) {
	case 0x6C: case 0x6D: { /* INS */
		uint64_t v = port_in(c, (uint16_t)c->r[R_RDX], size);
		mem_write(c, SEG_ES, areg(c, R_RDI, as), size, v);
		areg_add(c, R_RDI, as, delta);
		break;
	}
	case 0x6E: case 0x6F: { /* OUTS */
		uint64_t v = mem_read(c, i->seg, areg(c, R_RSI, as), size);
		port_out(c, (uint16_t)c->r[R_RDX], size, v);
		areg_add(c, R_RSI, as, delta);
		break;
	}
	case 0xA4: case 0xA5: { /* MOVS */
		uint64_t v = mem_read(c, i->seg, areg(c, R_RSI, as), size);
		mem_write(c, SEG_ES, areg(c, R_RDI, as), size, v);
		areg_add(c, R_RSI, as, delta);
		areg_add(c, R_RDI, as, delta);
		break;
	}
	case 0xA6: case 0xA7: { /* CMPS */
		uint64_t a = mem_read(c, i->seg, areg(c, R_RSI, as), size);
		uint64_t b = mem_read(c, SEG_ES, areg(c, R_RDI, as), size);
		alu(c, ALU_CMP, size, a, b);
		areg_add(c, R_RSI, as, delta);
		areg_add(c, R_RDI, as, delta);
		break;
	}
	case 0xAA: case 0xAB: /* STOS */
		mem_write(c, SEG_ES, areg(c, R_RDI, as), size, c->r[R_RAX]);
		areg_add(c, R_RDI, as, delta);
		break;
	case 0xAC: case 0xAD: /* LODS */
		reg_write(c, R_RAX, size, 1, mem_read(c, i->seg, areg(c, R_RSI, as), size));
		areg_add(c, R_RSI, as, delta);
		break;
	default: { /* SCAS */
		uint64_t b = mem_read(c, SEG_ES, areg(c, R_RDI, as), size);
		alu(c, ALU_CMP, size, c->r[R_RAX], b);
		areg_add(c, R_RDI, as, delta);
		break;
	}
	}
}

void op_string(struct emu_cpu *c, const struct insn *i)
{
	unsigned size = (i->op & 1) ? i->osize : 1;
	if ((i->op & 0xFC) == 0x6C && (i->op & 1))
		size = i->osize == 2 ? 2 : 4;
	int64_t delta = (c->rflags & FL_DF) ? -(int64_t)size : (int64_t)size;
	bool rep = i->pfx & (PFX_F3 | PFX_F2);
	if (!rep) {
		string_step(c, i, size, delta);
		return;
	}
	bool cmp = i->op == 0xA6 || i->op == 0xA7 || i->op == 0xAE || i->op == 0xAF;
	uint64_t count = areg(c, R_RCX, i->asize);
	if (count == 0)
		return;
	if (!cmp && delta > 0 && i->asize != 2 &&
	    (i->op == 0xA4 || i->op == 0xA5 || i->op == 0xAA || i->op == 0xAB)) {
		uint64_t done = rep_fast(c, i, size, count, i->op <= 0xA5);
		count -= done;
		if (count == 0)
			return;
		if (done) {
			c->next_rip = c->rip; /* continue next time round */
			return;
		}
	}
	for (unsigned n = 0; n < REP_CHUNK; n++) {
		string_step(c, i, size, delta);
		count = (count - 1) & size_mask(i->asize);
		reg_write(c, R_RCX, i->asize, 1, count);
		if (count == 0)
			return;
		if (cmp) {
			bool zf = flags_compute(c) & FL_ZF;
			if ((i->pfx & PFX_F3) ? !zf : zf)
				return;
		}
	}
	c->next_rip = c->rip;
}
