/* Intel 8254 programmable interval timer, from its datasheet. The counters
 * are not stepped: each channel remembers when its count started and
 * computes count and OUT from the host monotonic clock at PIT_HZ. Channel 0
 * raises ISA IRQ0 on each rising edge of OUT (a host timer fires at the
 * next edge); channel 2's gate and OUT live on port 0x61 with the speaker
 * bits; channel 1 (DRAM refresh once) only counts. */
#include "hw/pit.h"
#include "hw/clock.h"
#include "hw/io.h"
#include "hw/platform.h"
#include "lib/log.h"
#include "lib/util.h"
#include "machine/layout.h"
#include "machine/machine.h"

#include <pthread.h>
#include <stdlib.h>

#define PORT_PIT_CONTROL (PORT_PIT + 3)
#define NS_PER_SEC       1000000000ULL
/* Faster periodic interrupts than this would only burn the host. */
#define MIN_IRQ_PERIOD_NS 50000ULL

enum { ACCESS_LATCH = 0, ACCESS_LO = 1, ACCESS_HI = 2, ACCESS_LOHI = 3 };

struct pit_channel {
	uint8_t mode;          /* 0..5 */
	uint8_t access;
	bool bcd;
	uint32_t reload;       /* 1..65536 (binary) or 1..10000 (BCD) */
	bool loaded;           /* a count was written since the control word */
	bool running;          /* counting (gate and trigger allow it) */
	bool null_count;
	uint64_t start_ns;     /* when the current count started */
	uint64_t frozen_ticks; /* ticks counted when stopped by the gate */
	bool gate;
	/* Byte sequencing of the lo/hi access mode. */
	bool write_hi_next, read_hi_next;
	uint8_t write_lo;
	/* Latched count (counter latch or read-back) and status. */
	bool count_latched, status_latched, latch_hi_next;
	uint16_t latch;
	uint8_t status;
	uint64_t irq_edges;    /* channel 0: rising edges already signalled */
};

struct pit {
	pthread_mutex_t lock;
	struct machine *m;
	struct pit_channel ch[3];
	uint8_t port61;        /* bits 0-3 as written */
	bool own_port61;
	struct hw_timer *timer;
	/* Re-injection of channel 0 ticks (periodic modes): a guest that
	 * counts ticks must not lose the ones that came while its vCPU was
	 * descheduled. One tick is in flight until the CPU acknowledges it
	 * (pit_tick_acked); ticks due meanwhile are owed and sent one per
	 * acknowledgement. */
	uint32_t owed;
	bool in_flight;
	uint64_t in_flight_since;
};

/* At most this many ticks are owed; a tick unacknowledged for longer than
 * IN_FLIGHT_MAX_NS means nobody listens (masked): stop owing. */
#define OWED_MAX          1000
#define IN_FLIGHT_MAX_NS  1000000000ULL

static uint32_t modulus(const struct pit_channel *c)
{
	return c->bcd ? 10000 : 65536;
}

static uint64_t ns_to_ticks(uint64_t ns)
{
	return (uint64_t)((unsigned __int128)ns * PIT_HZ / NS_PER_SEC);
}

static uint64_t ticks_to_ns(uint64_t ticks)
{
	return (uint64_t)(((unsigned __int128)ticks * NS_PER_SEC + PIT_HZ - 1) / PIT_HZ);
}

/* Ticks counted in the current count (0 if not running). */
static uint64_t elapsed(const struct pit_channel *c, uint64_t now)
{
	if (!c->running)
		return c->frozen_ticks;
	return now > c->start_ns ? ns_to_ticks(now - c->start_ns) + c->frozen_ticks : c->frozen_ticks;
}

static bool periodic(const struct pit_channel *c)
{
	return c->mode == 2 || c->mode == 3;
}

/* Counting element value. */
static uint32_t current_count(const struct pit_channel *c, uint64_t now)
{
	if (!c->loaded)
		return 0;
	uint64_t t = elapsed(c, now);
	uint32_t n = c->reload, mod = modulus(c);
	switch (c->mode) {
	case 2:
		return n - (uint32_t)(t % n);
	case 3: {
		/* Decrements by two; each half period reloads. */
		uint32_t phase = (uint32_t)(t % n), half = (n + 1) / 2;
		uint32_t into = phase < half ? phase : phase - half;
		uint32_t v = (n & ~1u) - 2 * into;
		return v ? v : n & ~1u;
	}
	default: /* 0, 1, 4, 5: count down, wrapping after terminal count */
		return (uint32_t)((n + mod - t % mod) % mod);
	}
}

static bool output(const struct pit_channel *c, uint64_t now)
{
	if (!c->loaded)
		return c->mode != 0;
	uint64_t t = elapsed(c, now);
	uint32_t n = c->reload;
	switch (c->mode) {
	case 0:
		return t >= n;
	case 1:
		return !c->running || t >= n;
	case 2:
		return !c->running || t % n != n - 1;
	case 3:
		return !c->running || t % n < (n + 1) / 2;
	default: /* 4, 5: one tick low at terminal count */
		return !c->running || t != n;
	}
}

static uint16_t to_bcd(uint32_t v)
{
	v %= 10000;
	return (uint16_t)((v / 1000) << 12 | (v / 100 % 10) << 8 | (v / 10 % 10) << 4 | v % 10);
}

static uint32_t from_bcd(uint16_t v)
{
	return ((v >> 12) & 0xF) * 1000 + ((v >> 8) & 0xF) * 100 + ((v >> 4) & 0xF) * 10 + (v & 0xF);
}

/* ---- channel 0 interrupts ---- */

/* Number of rising edges of OUT since the count started, up to ticks t. */
static uint64_t rising_edges(const struct pit_channel *c, uint64_t t)
{
	uint32_t n = c->reload;
	switch (c->mode) {
	case 0:
		return t >= n;
	case 4:
		return t >= (uint64_t)n + 1;
	case 2:
	case 3:
		return t / n;
	default:
		return 0;
	}
}

/* Host time of the next rising edge of channel 0, or 0 if none. */
static uint64_t next_edge_ns(const struct pit_channel *c)
{
	if (!c->loaded || !c->running)
		return 0;
	uint64_t k = c->irq_edges + 1, ticks;
	switch (c->mode) {
	case 0:
		ticks = c->reload;
		break;
	case 4:
		ticks = (uint64_t)c->reload + 1;
		break;
	case 2:
	case 3:
		ticks = k * c->reload;
		break;
	default:
		return 0;
	}
	if (!periodic(c) && k > 1)
		return 0;
	if (ticks < c->frozen_ticks)
		return 0;
	return c->start_ns + ticks_to_ns(ticks - c->frozen_ticks);
}

static void arm_channel0(struct pit *p)
{
	uint64_t when = next_edge_ns(&p->ch[0]);
	if (when)
		hw_timer_arm(p->timer, when);
	else
		hw_timer_disarm(p->timer);
}

static void pit_timer_fired(void *opaque)
{
	struct pit *p = opaque;
	struct pit_channel *c = &p->ch[0];
	pthread_mutex_lock(&p->lock);
	uint64_t now = clock_ns();
	bool fire = false;
	if (c->loaded && c->running) {
		uint64_t edges = rising_edges(c, elapsed(c, now));
		if (edges > c->irq_edges) {
			uint64_t due = edges - c->irq_edges;
			c->irq_edges = edges;
			/* Keep the interrupt rate sane for tiny counts: the
			 * next interrupt comes MIN_IRQ_PERIOD_NS later at the
			 * earliest (and those are not owed). */
			uint64_t min_edges = ns_to_ticks(MIN_IRQ_PERIOD_NS) / c->reload;
			if (periodic(c) && min_edges > 1) {
				c->irq_edges += min_edges - 1;
				due = 1;
			}
			if (!periodic(c)) {
				fire = true;
			} else {
				if (p->in_flight && now - p->in_flight_since > IN_FLIGHT_MAX_NS) {
					p->in_flight = false; /* nobody acknowledges */
					p->owed = 0;
				}
				if (!p->in_flight) {
					fire = true;
					p->in_flight = true;
					p->in_flight_since = now;
					due--;
				}
				p->owed = (uint32_t)MIN((uint64_t)p->owed + due, OWED_MAX);
			}
		}
	}
	arm_channel0(p);
	pthread_mutex_unlock(&p->lock);
	if (fire) {
		platform_set_irq(p->m, 2, 1);
		platform_set_irq(p->m, 2, 0);
	}
}

/* A new count or mode on channel 0: ticks of the old one are not owed. */
static void forget_owed(struct pit *p)
{
	p->owed = 0;
	p->in_flight = false;
}

void pit_tick_acked(struct pit *p)
{
	pthread_mutex_lock(&p->lock);
	bool fire = false;
	if (p->in_flight) {
		p->in_flight = false;
		if (p->owed) {
			p->owed--;
			p->in_flight = true;
			p->in_flight_since = clock_ns();
			fire = true;
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (fire) {
		platform_set_irq(p->m, 2, 1);
		platform_set_irq(p->m, 2, 0);
	}
}

/* ---- programming ---- */

/* Starts counting the loaded count now (if the gate allows). */
static void start_count(struct pit *p, unsigned idx, uint64_t now)
{
	struct pit_channel *c = &p->ch[idx];
	c->loaded = true;
	c->null_count = false;
	c->frozen_ticks = 0;
	c->irq_edges = 0;
	c->start_ns = now;
	if (idx == 0)
		forget_owed(p);
	/* Modes 1 and 5 wait for a gate trigger; the others need the gate. */
	c->running = c->gate && c->mode != 1 && c->mode != 5;
	if (idx == 0)
		arm_channel0(p);
}

static void write_count(struct pit *p, unsigned idx, uint16_t value, uint64_t now)
{
	struct pit_channel *c = &p->ch[idx];
	uint32_t n = c->bcd ? from_bcd(value) : value;
	if (n == 0)
		n = modulus(c);
	if (n == 1 && (c->mode == 2 || c->mode == 3)) {
		log_once(LOG_DEBUG, "pit: count 1 is illegal in mode %u; using 2", c->mode);
		n = 2;
	}
	c->reload = n;
	start_count(p, idx, now);
}

static void write_data(struct pit *p, unsigned idx, uint8_t v, uint64_t now)
{
	struct pit_channel *c = &p->ch[idx];
	switch (c->access) {
	case ACCESS_LO:
		write_count(p, idx, v, now);
		break;
	case ACCESS_HI:
		write_count(p, idx, (uint16_t)(v << 8), now);
		break;
	default:
		if (!c->write_hi_next) {
			c->write_lo = v;
			c->write_hi_next = true;
			c->null_count = true;
			if (c->mode == 0) {
				/* The first byte stops a mode 0 count. */
				c->loaded = false;
				c->running = false;
				if (idx == 0)
					arm_channel0(p);
			}
		} else {
			c->write_hi_next = false;
			write_count(p, idx, (uint16_t)(c->write_lo | v << 8), now);
		}
		break;
	}
}

static void latch_count(struct pit_channel *c, uint64_t now)
{
	if (c->count_latched)
		return; /* the first latch holds until read */
	uint32_t v = current_count(c, now);
	c->latch = c->bcd ? to_bcd(v) : (uint16_t)v;
	c->count_latched = true;
	c->latch_hi_next = false;
}

static void latch_status(struct pit_channel *c, uint64_t now)
{
	if (c->status_latched)
		return;
	c->status = (uint8_t)(output(c, now) << 7 | c->null_count << 6 | c->access << 4 |
			      c->mode << 1 | c->bcd);
	c->status_latched = true;
}

static void write_control(struct pit *p, uint8_t v, uint64_t now)
{
	unsigned sel = v >> 6;
	if (sel == 3) { /* read-back */
		for (unsigned i = 0; i < 3; i++) {
			if (!(v & (2u << i)))
				continue;
			if (!(v & 0x20))
				latch_count(&p->ch[i], now);
			if (!(v & 0x10))
				latch_status(&p->ch[i], now);
		}
		return;
	}
	struct pit_channel *c = &p->ch[sel];
	unsigned access = (v >> 4) & 3;
	if (access == ACCESS_LATCH) {
		latch_count(c, now);
		return;
	}
	c->access = (uint8_t)access;
	c->mode = (v >> 1) & 7;
	if (c->mode > 5)
		c->mode -= 4; /* 6 and 7 alias modes 2 and 3 */
	c->bcd = v & 1;
	c->loaded = false;
	c->running = false;
	c->null_count = true;
	c->write_hi_next = c->read_hi_next = false;
	c->count_latched = c->status_latched = false;
	c->frozen_ticks = 0;
	if (sel == 0) {
		forget_owed(p);
		arm_channel0(p);
	}
}

static uint8_t read_data(struct pit_channel *c, uint64_t now)
{
	if (c->status_latched) {
		c->status_latched = false;
		return c->status;
	}
	uint16_t v;
	bool hi;
	if (c->count_latched) {
		v = c->latch;
		if (c->access == ACCESS_LOHI) {
			hi = c->latch_hi_next;
			c->latch_hi_next = !hi;
			if (hi)
				c->count_latched = false;
		} else {
			hi = c->access == ACCESS_HI;
			c->count_latched = false;
		}
	} else {
		uint32_t n = current_count(c, now);
		v = c->bcd ? to_bcd(n) : (uint16_t)n;
		if (c->access == ACCESS_LOHI) {
			hi = c->read_hi_next;
			c->read_hi_next = !hi;
		} else {
			hi = c->access == ACCESS_HI;
		}
	}
	return hi ? (uint8_t)(v >> 8) : (uint8_t)v;
}

/* Channel 2's gate from port 0x61 bit 0. */
static void set_gate(struct pit *p, unsigned idx, bool gate, uint64_t now)
{
	struct pit_channel *c = &p->ch[idx];
	bool rising = gate && !c->gate;
	if (gate == c->gate)
		return;
	c->gate = gate;
	if (!c->loaded)
		return;
	switch (c->mode) {
	case 0:
	case 4: /* the gate pauses counting */
		if (!gate) {
			c->frozen_ticks = elapsed(c, now);
			c->running = false;
		} else {
			c->start_ns = now;
			c->running = true;
		}
		break;
	case 2:
	case 3: /* gate low stops (OUT high); rising restarts the period */
	case 1:
	case 5: /* rising triggers */
		if (rising) {
			c->start_ns = now;
			c->frozen_ticks = 0;
			c->irq_edges = 0;
			c->running = true;
		} else if (c->mode == 2 || c->mode == 3) {
			c->running = false;
			c->frozen_ticks = 0;
		}
		break;
	}
}

uint8_t pit_port_read(struct pit *p, uint16_t port)
{
	uint64_t now = clock_ns();
	uint8_t v = 0xFF;
	pthread_mutex_lock(&p->lock);
	if (port >= PORT_PIT && port < PORT_PIT_CONTROL) {
		v = read_data(&p->ch[port - PORT_PIT], now);
	} else if (port == PORT_PC_SPEAKER) {
		/* Bit 4 toggles with each DRAM refresh (about 15 us). */
		bool refresh = (now / 15085) & 1;
		v = (uint8_t)((p->port61 & 0x0F) | refresh << 4 | output(&p->ch[2], now) << 5);
	}
	pthread_mutex_unlock(&p->lock);
	return v;
}

void pit_port_write(struct pit *p, uint16_t port, uint8_t v)
{
	uint64_t now = clock_ns();
	pthread_mutex_lock(&p->lock);
	if (port >= PORT_PIT && port < PORT_PIT_CONTROL) {
		write_data(p, port - PORT_PIT, v, now);
	} else if (port == PORT_PIT_CONTROL) {
		write_control(p, v, now);
	} else if (port == PORT_PC_SPEAKER) {
		p->port61 = v & 0x0F;
		set_gate(p, 2, v & 1, now);
	}
	pthread_mutex_unlock(&p->lock);
}

static uint64_t pit_io_read(void *opaque, uint64_t offset, unsigned size)
{
	struct pit *p = opaque;
	return pit_port_read(p, (uint16_t)(PORT_PIT + offset));
}

static void pit_io_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct pit *p = opaque;
	pit_port_write(p, (uint16_t)(PORT_PIT + offset), (uint8_t)value);
}

static uint64_t speaker_io_read(void *opaque, uint64_t offset, unsigned size)
{
	return pit_port_read(opaque, PORT_PC_SPEAKER);
}

static void speaker_io_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	pit_port_write(opaque, PORT_PC_SPEAKER, (uint8_t)value);
}

static const struct io_ops pit_ops = { .read = pit_io_read, .write = pit_io_write };
static const struct io_ops speaker_ops = { .read = speaker_io_read, .write = speaker_io_write };

void pit_reset(struct pit *p)
{
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < 3; i++) {
		p->ch[i] = (struct pit_channel){
			.mode = 3, .access = ACCESS_LOHI, .reload = 65536,
			.gate = i != 2,
		};
	}
	p->port61 = 0;
	forget_owed(p);
	hw_timer_disarm(p->timer);
	pthread_mutex_unlock(&p->lock);
}

struct pit *pit_new(struct machine *m)
{
	struct pit *p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	p->m = m;
	p->timer = hw_timer_new(pit_timer_fired, p);
	pit_reset(p);
	if (m->pio) {
		if (io_register(m->pio, PORT_PIT, 4, &pit_ops, p, "pit") < 0) {
			log_err("pit: cannot register ports 0x40-0x43");
			goto fail;
		}
		/* Port 0x61 is ours; another device only takes it as a
		 * fallback when no PIT exists (KVM's PIT is in the kernel). */
		int r = io_register(m->pio, PORT_PC_SPEAKER, 1, &speaker_ops, p, "pit-port61");
		if (r == 0)
			p->own_port61 = true;
		else
			log_warn("pit: port 0x61 is taken (%d): channel 2 has no gate", r);
	}
	return p;
fail:
	hw_timer_free(p->timer);
	pthread_mutex_destroy(&p->lock);
	free(p);
	return NULL;
}

void pit_free(struct pit *p)
{
	if (!p)
		return;
	if (p->m->pio) {
		io_unregister(p->m->pio, PORT_PIT, p);
		if (p->own_port61)
			io_unregister(p->m->pio, PORT_PC_SPEAKER, p);
	}
	hw_timer_free(p->timer);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
