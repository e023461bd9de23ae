/* The 8259A programmable interrupt controller pair of the PC, from the
 * Intel 8259A datasheet: ICW1-4 initialisation, OCW1-3, rotating and fixed
 * priority, specific/non-specific EOI, auto-EOI, special mask, special fully
 * nested mode, poll, and the EISA edge/level control registers (ELCR).
 *
 * The slave's INT output drives the master's IR2 as a level. The master's
 * INT output is pic_intr(); the CPU side (the BSP's LAPIC LINT0 in ExtINT
 * mode) reads it lock-free and runs the INTA cycle with pic_acknowledge. */
#include "hw/pic.h"
#include "hw/io.h"
#include "hw/lapic.h"
#include "hw/platform.h"
#include "lib/log.h"
#include "lib/util.h"
#include "machine/layout.h"
#include "machine/machine.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PORT_ELCR_MASTER 0x4D0
#define PORT_ELCR_SLAVE  0x4D1
#define CASCADE_IRQ      2

struct pic_chip {
	uint8_t irr, isr, imr;
	uint8_t lines;          /* input levels (for edge detection) */
	uint8_t elcr, elcr_writable;
	uint8_t vector_base;    /* ICW2 & 0xF8 */
	uint8_t lowest_prio;    /* the IR with the lowest priority (rotation) */
	uint8_t init_step;      /* 0: operating; 2, 3, 4: next ICW expected */
	uint8_t icw3;
	bool icw4_needed, single;
	bool auto_eoi, rotate_on_aeoi, sfnm, special_mask;
	bool read_isr, poll;
};

/* One registered port range; opaque of its io ops. */
struct pic_ports {
	struct pic *pic;
	uint16_t base;
};

/* Port ranges: command/data of each chip, and the two ELCRs. */
static const uint16_t pic_ranges[][2] = {
	{ PORT_PIC_MASTER, 2 }, { PORT_PIC_SLAVE, 2 }, { PORT_ELCR_MASTER, 2 },
};
#define PIC_RANGES 3

struct pic {
	pthread_mutex_t lock;
	struct machine *m;
	struct pic_chip chip[2]; /* 0 master, 1 slave */
	bool output;             /* master INT, atomic */
	struct pic_ports ports[PIC_RANGES];
};

/* Priority rank of IR n: 0 highest .. 7 lowest. */
static unsigned rank(const struct pic_chip *c, unsigned ir)
{
	return (ir - c->lowest_prio - 1) & 7;
}

/* The highest-priority IR set in bits, or -1. */
static int highest(const struct pic_chip *c, uint8_t bits)
{
	for (unsigned i = 0; i < 8; i++) {
		unsigned ir = (c->lowest_prio + 1 + i) & 7;
		if (bits >> ir & 1)
			return (int)ir;
	}
	return -1;
}

/* The IR this chip would interrupt with now, or -1. */
static int chip_request(const struct pic_chip *c, bool master)
{
	uint8_t pending = c->irr & ~c->imr;
	uint8_t blocking = c->isr;
	if (c->special_mask) {
		/* Only masked in-service levels stop blocking; a level being
		 * serviced does not request again. */
		pending &= ~c->isr;
		blocking &= ~c->imr;
	}
	if (master && c->sfnm)
		blocking &= ~(1u << CASCADE_IRQ); /* the slave may nest */
	int req = highest(c, pending);
	if (req < 0)
		return -1;
	int svc = highest(c, blocking);
	if (svc >= 0 && rank(c, (unsigned)svc) <= rank(c, (unsigned)req))
		return -1;
	return req;
}

/* Recomputes the cascade line and the INT output. Returns true if the
 * output is high (the CPU should look). */
static bool update(struct pic *p)
{
	struct pic_chip *master = &p->chip[0], *slave = &p->chip[1];
	if (chip_request(slave, false) >= 0)
		master->irr |= 1u << CASCADE_IRQ;
	else
		master->irr &= ~(1u << CASCADE_IRQ);
	bool out = chip_request(master, true) >= 0;
	__atomic_store_n(&p->output, out, __ATOMIC_RELEASE);
	return out;
}

bool pic_intr(struct pic *p)
{
	return __atomic_load_n(&p->output, __ATOMIC_ACQUIRE);
}

static void chip_set_line(struct pic_chip *c, unsigned ir, int level)
{
	uint8_t bit = 1u << ir;
	bool was = c->lines & bit;
	if (level)
		c->lines |= bit;
	else
		c->lines &= ~bit;
	if (c->elcr & bit) {
		/* Level mode: the request follows the line. */
		if (level)
			c->irr |= bit;
		else
			c->irr &= ~bit;
	} else if (level && !was) {
		c->irr |= bit; /* edge: latched until acknowledged */
	}
}

static void finish(struct pic *p, bool out)
{
	pthread_mutex_unlock(&p->lock);
	if (out)
		lapic_pic_intr_changed(p->m);
}

void pic_set_irq(struct pic *p, unsigned irq, int level)
{
	if (irq >= 16 || irq == CASCADE_IRQ) {
		log_once(LOG_WARN, "pic: no device IRQ %u", irq);
		return;
	}
	pthread_mutex_lock(&p->lock);
	bool before = p->output;
	chip_set_line(&p->chip[irq >> 3], irq & 7, level);
	bool out = update(p);
	finish(p, out && !before);
}

/* Acknowledges ir on chip c (INTA or poll). */
static void chip_ack(struct pic_chip *c, unsigned ir)
{
	uint8_t bit = 1u << ir;
	if (!(c->elcr & bit))
		c->irr &= ~bit;
	if (c->auto_eoi) {
		if (c->rotate_on_aeoi)
			c->lowest_prio = (uint8_t)ir;
	} else {
		c->isr |= bit;
	}
}

int pic_acknowledge(struct pic *p)
{
	struct pic_chip *master = &p->chip[0], *slave = &p->chip[1];
	pthread_mutex_lock(&p->lock);
	int vector;
	int ir = chip_request(master, true);
	bool irq0 = ir == 0;
	if (ir < 0) {
		vector = master->vector_base | 7; /* spurious IRQ7 */
	} else {
		chip_ack(master, (unsigned)ir);
		if (ir == CASCADE_IRQ && !master->single) {
			int sir = chip_request(slave, false);
			if (sir < 0) {
				vector = slave->vector_base | 7; /* spurious IRQ15 */
			} else {
				chip_ack(slave, (unsigned)sir);
				vector = slave->vector_base | sir;
			}
		} else {
			vector = master->vector_base | ir;
		}
	}
	bool out = update(p);
	finish(p, out);
	if (irq0)
		platform_isa_irq_acked(p->m, 0);
	return vector;
}

static void chip_eoi(struct pic_chip *c, unsigned cmd, unsigned level)
{
	int ir;
	switch (cmd) {
	case 0: /* rotate in automatic EOI mode (clear) */
		c->rotate_on_aeoi = false;
		break;
	case 4: /* rotate in automatic EOI mode (set) */
		c->rotate_on_aeoi = true;
		break;
	case 1: /* non-specific EOI */
	case 5: /* rotate on non-specific EOI */
		ir = highest(c, c->isr);
		if (ir >= 0) {
			c->isr &= ~(1u << ir);
			if (cmd == 5)
				c->lowest_prio = (uint8_t)ir;
		}
		break;
	case 3: /* specific EOI */
	case 7: /* rotate on specific EOI */
		c->isr &= ~(1u << level);
		if (cmd == 7)
			c->lowest_prio = (uint8_t)level;
		break;
	case 6: /* set priority */
		c->lowest_prio = (uint8_t)level;
		break;
	default: /* 2: no operation */
		break;
	}
}

static void chip_icw1(struct pic_chip *c, uint8_t v)
{
	if (v & 0x08)
		log_once(LOG_DEBUG, "pic: ICW1 level mode ignored (the ELCR decides)");
	/* Edge sense reset, IMR and ISR cleared, IR7 lowest, special mask off,
	 * IRR selected for reading; ICW4 functions off unless ICW4 follows. */
	c->irr &= c->elcr & c->lines; /* edge requests are forgotten */
	c->isr = 0;
	c->imr = 0;
	c->lowest_prio = 7;
	c->special_mask = false;
	c->read_isr = false;
	c->poll = false;
	c->auto_eoi = false;
	c->rotate_on_aeoi = false;
	c->sfnm = false;
	c->icw4_needed = v & 0x01;
	c->single = v & 0x02;
	c->init_step = 2;
}

static void chip_write_data(struct pic_chip *c, uint8_t v)
{
	switch (c->init_step) {
	case 0: /* OCW1 */
		c->imr = v;
		return;
	case 2: /* ICW2 */
		c->vector_base = v & 0xF8;
		c->init_step = !c->single ? 3 : c->icw4_needed ? 4 : 0;
		return;
	case 3: /* ICW3: cascade wiring, fixed on the PC */
		c->icw3 = v;
		c->init_step = c->icw4_needed ? 4 : 0;
		return;
	case 4: /* ICW4 */
		if (!(v & 0x01))
			log_once(LOG_WARN, "pic: 8080/8085 mode is not supported; using 8086 mode");
		c->auto_eoi = v & 0x02;
		c->sfnm = v & 0x10;
		c->init_step = 0;
		return;
	}
}

static void chip_write_command(struct pic_chip *c, uint8_t v)
{
	if (v & 0x10) {
		chip_icw1(c, v);
	} else if (v & 0x08) { /* OCW3 */
		if (v & 0x04)
			c->poll = true;
		if (v & 0x02)
			c->read_isr = v & 0x01;
		if (v & 0x40)
			c->special_mask = v & 0x20;
	} else { /* OCW2 */
		chip_eoi(c, v >> 5, v & 7);
	}
}

/* Poll: the byte of the highest request (bit 7 set), acknowledged. */
static uint8_t chip_poll(struct pic *p, unsigned idx)
{
	struct pic_chip *c = &p->chip[idx];
	c->poll = false;
	int ir = chip_request(c, idx == 0);
	if (ir < 0)
		return 0;
	chip_ack(c, (unsigned)ir);
	return 0x80 | (uint8_t)ir;
}

uint8_t pic_port_read(struct pic *p, uint16_t port)
{
	uint8_t v = 0xFF;
	bool out = false, irq0 = false;
	pthread_mutex_lock(&p->lock);
	switch (port) {
	case PORT_PIC_MASTER:
	case PORT_PIC_SLAVE: {
		unsigned idx = port == PORT_PIC_SLAVE;
		struct pic_chip *c = &p->chip[idx];
		if (c->poll) {
			v = chip_poll(p, idx);
			out = update(p);
			irq0 = idx == 0 && v == 0x80;
		} else {
			v = c->read_isr ? c->isr : c->irr;
		}
		break;
	}
	case PORT_PIC_MASTER + 1:
	case PORT_PIC_SLAVE + 1:
		v = p->chip[port == PORT_PIC_SLAVE + 1].imr;
		break;
	case PORT_ELCR_MASTER:
	case PORT_ELCR_SLAVE:
		v = p->chip[port - PORT_ELCR_MASTER].elcr;
		break;
	}
	finish(p, out);
	if (irq0)
		platform_isa_irq_acked(p->m, 0);
	return v;
}

void pic_port_write(struct pic *p, uint16_t port, uint8_t v)
{
	pthread_mutex_lock(&p->lock);
	switch (port) {
	case PORT_PIC_MASTER:
	case PORT_PIC_SLAVE:
		chip_write_command(&p->chip[port == PORT_PIC_SLAVE], v);
		break;
	case PORT_PIC_MASTER + 1:
	case PORT_PIC_SLAVE + 1:
		chip_write_data(&p->chip[port == PORT_PIC_SLAVE + 1], v);
		break;
	case PORT_ELCR_MASTER:
	case PORT_ELCR_SLAVE: {
		struct pic_chip *c = &p->chip[port - PORT_ELCR_MASTER];
		c->elcr = v & c->elcr_writable;
		/* Level requests follow their lines from now on. */
		c->irr = (c->irr & ~c->elcr) | (c->lines & c->elcr);
		break;
	}
	}
	/* A write may unmask or EOI its way to a pending request. */
	finish(p, update(p));
}

static uint64_t pic_io_read(void *opaque, uint64_t offset, unsigned size)
{
	const struct pic_ports *r = opaque;
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)pic_port_read(r->pic, (uint16_t)(r->base + offset + i)) << (8 * i);
	return v;
}

static void pic_io_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	const struct pic_ports *r = opaque;
	for (unsigned i = 0; i < size; i++)
		pic_port_write(r->pic, (uint16_t)(r->base + offset + i), (uint8_t)(value >> (8 * i)));
}

static const struct io_ops pic_ops = { .read = pic_io_read, .write = pic_io_write };

void pic_reset(struct pic *p)
{
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < 2; i++) {
		struct pic_chip *c = &p->chip[i];
		uint8_t lines = c->lines;
		memset(c, 0, sizeof(*c));
		c->lines = lines;
		c->lowest_prio = 7;
		/* What a BIOS leaves: its vector bases, every IRQ masked
		 * (ICW1 unmasks them all when the guest takes over). */
		c->vector_base = i ? 0x70 : 0x08;
		c->imr = 0xFF;
	}
	/* IRQ0-2 and IRQ8 and 13 are always edge on the PC. */
	p->chip[0].elcr_writable = 0xF8;
	p->chip[1].elcr_writable = 0xDE;
	update(p);
	pthread_mutex_unlock(&p->lock);
}

struct pic *pic_new(struct machine *m)
{
	struct pic *p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	p->m = m;
	pic_reset(p);
	for (unsigned i = 0; i < PIC_RANGES; i++) {
		p->ports[i].pic = p;
		p->ports[i].base = pic_ranges[i][0];
		if (m->pio && io_register(m->pio, pic_ranges[i][0], pic_ranges[i][1], &pic_ops,
					  &p->ports[i], "pic") < 0) {
			log_err("pic: cannot register ports 0x%x", pic_ranges[i][0]);
			while (i--)
				io_unregister(m->pio, pic_ranges[i][0], &p->ports[i]);
			pthread_mutex_destroy(&p->lock);
			free(p);
			return NULL;
		}
	}
	return p;
}

void pic_free(struct pic *p)
{
	if (!p)
		return;
	if (p->m->pio)
		for (unsigned i = 0; i < PIC_RANGES; i++)
			io_unregister(p->m->pio, pic_ranges[i][0], &p->ports[i]);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
