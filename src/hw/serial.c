/* 16550A UART. Register behaviour follows the National Semiconductor /
 * TI PC16550D data sheet; see serial.h for what is simplified and why. */
#include "hw/serial.h"
#include "hw/io.h"
#include "lib/log.h"
#include "lib/util.h"
#include "machine/layout.h"
#include "machine/machine.h"
#include "vmm/console.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define IER_RDA         0x01
#define IER_THRE        0x02
#define IER_RLS         0x04
#define IER_MSR         0x08

#define IIR_NONE        0x01
#define IIR_MSR         0x00
#define IIR_THRE        0x02
#define IIR_RDA         0x04
#define IIR_RLS         0x06
#define IIR_TIMEOUT     0x0C
#define IIR_FIFO_ON     0xC0

#define FCR_ENABLE      0x01
#define FCR_CLEAR_RX    0x02
#define FCR_CLEAR_TX    0x04

#define LCR_DLAB        0x80

#define MCR_DTR         0x01
#define MCR_RTS         0x02
#define MCR_OUT1        0x04
#define MCR_OUT2        0x08
#define MCR_LOOP        0x10

#define LSR_DR          0x01
#define LSR_OE          0x02
#define LSR_ERRORS      0x1E /* OE PE FE BI */
#define LSR_THRE        0x20
#define LSR_TEMT        0x40

#define MSR_DCTS        0x01
#define MSR_DDSR        0x02
#define MSR_TERI        0x04
#define MSR_DDCD        0x08
#define MSR_CTS         0x10
#define MSR_DSR         0x20
#define MSR_RI          0x40
#define MSR_DCD         0x80

struct serial {
	struct machine *m;
	struct console *con;
	uint16_t base;
	unsigned irq;
	pthread_mutex_t lock;

	uint8_t ier, lcr, mcr, scr, dll, dlm;
	bool fifo_on;
	uint8_t rx_trigger;
	uint8_t lsr_errors;     /* sticky until LSR is read */
	uint8_t msr_status;     /* bits 7:4 */
	uint8_t msr_delta;      /* bits 3:0, cleared by reading MSR */
	bool thre_pending;      /* THRE interrupt not yet acknowledged */
	bool irq_level;

	uint8_t rx[UART_FIFO_SIZE];
	bool rx_from_console[UART_FIFO_SIZE]; /* not looped back */
	unsigned rx_head, rx_count;
	/* Console bytes a FIFO clear took back (see rx_clear), oldest first;
	 * fed again before any new console input. Never more than a FIFO. */
	uint8_t stash[UART_FIFO_SIZE];
	unsigned stash_len;
	bool input_refused;     /* console holds bytes we could not take */
	unsigned lsr_polls;     /* LSR reads since the last FCR/IER write */
};

/* A polling driver reads LSR in a loop; a driver's set-up sequence reads
 * it a few times between FIFO clears. */
#define POLLING_LSR_READS 64

static const uint8_t rx_trigger_levels[4] = { 1, 4, 8, 14 };

static unsigned rx_capacity(const struct serial *s)
{
	return s->fifo_on ? UART_FIFO_SIZE : 1;
}

static uint8_t current_iir(const struct serial *s)
{
	uint8_t id = IIR_NONE;
	if ((s->ier & IER_RLS) && s->lsr_errors)
		id = IIR_RLS;
	else if ((s->ier & IER_RDA) && s->rx_count)
		id = (s->fifo_on && s->rx_count < s->rx_trigger) ? IIR_TIMEOUT : IIR_RDA;
	else if ((s->ier & IER_THRE) && s->thre_pending)
		id = IIR_THRE;
	else if ((s->ier & IER_MSR) && s->msr_delta)
		id = IIR_MSR;
	return id | (s->fifo_on ? IIR_FIFO_ON : 0);
}

/* Called with the lock held after every state change. */
static void update_irq(struct serial *s)
{
	/* In loopback the chip's interrupt output is disconnected from the
	 * bus (OUT2 is looped back internally); IIR still reports. */
	bool level = !(current_iir(s) & IIR_NONE) && !(s->mcr & MCR_LOOP);
	if (level != s->irq_level) {
		s->irq_level = level;
		if (s->m)
			machine_set_irq(s->m, s->irq, level);
	}
}

static void update_msr(struct serial *s)
{
	uint8_t status;
	if (s->mcr & MCR_LOOP) {
		status = ((s->mcr & MCR_RTS) ? MSR_CTS : 0) | ((s->mcr & MCR_DTR) ? MSR_DSR : 0) |
			 ((s->mcr & MCR_OUT1) ? MSR_RI : 0) | ((s->mcr & MCR_OUT2) ? MSR_DCD : 0);
	} else {
		/* A terminal is always attached: carrier, data set and clear
		 * to send all asserted, no ring. */
		status = MSR_CTS | MSR_DSR | MSR_DCD;
	}
	uint8_t changed = status ^ s->msr_status;
	if (changed & MSR_CTS)
		s->msr_delta |= MSR_DCTS;
	if (changed & MSR_DSR)
		s->msr_delta |= MSR_DDSR;
	if (changed & MSR_DCD)
		s->msr_delta |= MSR_DDCD;
	if ((changed & MSR_RI) && !(status & MSR_RI))
		s->msr_delta |= MSR_TERI; /* trailing edge only */
	s->msr_status = status;
}

/* A FIFO clear (FCR, or switching FIFO mode) empties the receiver. Drivers
 * do it while setting the port up, to drop line noise; here the only data
 * is console input somebody typed or piped, so bytes from the console are
 * taken back and delivered again once the guest listens. Looped-back
 * bytes are dropped as on the real part. */
static void rx_clear(struct serial *s)
{
	uint8_t keep[UART_FIFO_SIZE];
	unsigned n = 0;
	for (unsigned i = 0; i < s->rx_count; i++) {
		unsigned at = (s->rx_head + i) % UART_FIFO_SIZE;
		if (s->rx_from_console[at])
			keep[n++] = s->rx[at];
	}
	/* FIFO bytes are older than the stash (the FIFO is filled from the
	 * stash first, and console input waits while the stash is not empty),
	 * so together they never exceed one FIFO. */
	unsigned room = UART_FIFO_SIZE - n;
	unsigned old = MIN(s->stash_len, room);
	memmove(s->stash + n, s->stash, old);
	memcpy(s->stash, keep, n);
	s->stash_len = n + old;
	s->rx_head = 0;
	s->rx_count = 0;
}

static void rx_push(struct serial *s, uint8_t b, bool from_console)
{
	if (s->rx_count >= rx_capacity(s)) {
		s->lsr_errors |= LSR_OE; /* the shift register overwrote it */
		return;
	}
	unsigned at = (s->rx_head + s->rx_count) % UART_FIFO_SIZE;
	s->rx[at] = b;
	s->rx_from_console[at] = from_console;
	s->rx_count++;
}

/* Console input goes into the FIFO only while the guest is listening:
 * receive interrupt enabled, or LSR being polled. Before that (and while
 * a driver sets the port up, clearing FIFOs and reading RBR to flush it)
 * bytes wait in the console instead of being thrown away. */
static bool listening(const struct serial *s)
{
	return !(s->mcr & MCR_LOOP) &&
	       ((s->ier & IER_RDA) || s->lsr_polls >= POLLING_LSR_READS);
}

/* Refills the FIFO from the stash, then lets the console retry what it
 * holds once there is real room again. */
static void maybe_resume_input(struct serial *s)
{
	if (!listening(s))
		return;
	unsigned moved = 0;
	while (s->stash_len > moved && s->rx_count < rx_capacity(s))
		rx_push(s, s->stash[moved++], true);
	if (moved) {
		memmove(s->stash, s->stash + moved, s->stash_len - moved);
		s->stash_len -= moved;
	}
	if (!s->input_refused || s->stash_len)
		return;
	if (s->rx_count > rx_capacity(s) / 2)
		return;
	s->input_refused = false;
	console_resume_input(s->con);
}

static uint8_t rx_pop(struct serial *s)
{
	if (!s->rx_count)
		return 0; /* RBR keeps no stale byte worth emulating */
	uint8_t b = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % UART_FIFO_SIZE;
	s->rx_count--;
	maybe_resume_input(s);
	return b;
}

uint8_t serial_read(struct serial *s, unsigned reg)
{
	uint8_t v = 0xFF;
	pthread_mutex_lock(&s->lock);
	bool dlab = s->lcr & LCR_DLAB;
	switch (reg) {
	case UART_RBR_THR:
		v = dlab ? s->dll : rx_pop(s);
		break;
	case UART_IER:
		v = dlab ? s->dlm : s->ier;
		break;
	case UART_IIR_FCR:
		v = current_iir(s);
		/* Reading IIR while it shows THRE acknowledges it. */
		if ((v & 0x0F) == IIR_THRE)
			s->thre_pending = false;
		break;
	case UART_LCR:
		v = s->lcr;
		break;
	case UART_MCR:
		v = s->mcr;
		break;
	case UART_LSR:
		v = (s->rx_count ? LSR_DR : 0) | s->lsr_errors | LSR_THRE | LSR_TEMT;
		s->lsr_errors = 0;
		if (s->lsr_polls < POLLING_LSR_READS && ++s->lsr_polls == POLLING_LSR_READS)
			maybe_resume_input(s);
		break;
	case UART_MSR:
		v = s->msr_status | s->msr_delta;
		s->msr_delta = 0;
		break;
	case UART_SCR:
		v = s->scr;
		break;
	}
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return v;
}

static void write_fcr(struct serial *s, uint8_t v)
{
	bool on = v & FCR_ENABLE;
	if (on != s->fifo_on) {
		/* Switching modes resets both FIFOs. */
		s->fifo_on = on;
		rx_clear(s);
	}
	if (!on)
		return; /* the other bits need the enable bit */
	if (v & FCR_CLEAR_RX)
		rx_clear(s);
	s->rx_trigger = rx_trigger_levels[v >> 6];
}

void serial_write(struct serial *s, unsigned reg, uint8_t value)
{
	pthread_mutex_lock(&s->lock);
	bool dlab = s->lcr & LCR_DLAB;
	switch (reg) {
	case UART_RBR_THR:
		if (dlab) {
			s->dll = value;
			break;
		}
		if (s->mcr & MCR_LOOP)
			rx_push(s, value, false);
		else
			console_write(s->con, &value, 1);
		/* Sent at once: the holding register is empty again. */
		s->thre_pending = true;
		break;
	case UART_IER:
		if (dlab) {
			s->dlm = value;
			break;
		}
		/* Enabling THRE with an empty THR raises it at once (16550
		 * behaviour drivers rely on to start transmitting). */
		if ((value & IER_THRE) && !(s->ier & IER_THRE))
			s->thre_pending = true;
		s->ier = value & 0x0F;
		s->lsr_polls = 0;
		break;
	case UART_IIR_FCR:
		write_fcr(s, value);
		s->lsr_polls = 0;
		break;
	case UART_LCR:
		s->lcr = value;
		break;
	case UART_MCR:
		s->mcr = value & 0x1F;
		update_msr(s);
		break;
	case UART_LSR:
		break; /* factory test register on real parts */
	case UART_MSR:
		break;
	case UART_SCR:
		s->scr = value;
		break;
	}
	maybe_resume_input(s);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

size_t serial_receive(void *opaque, const uint8_t *buf, size_t len)
{
	struct serial *s = opaque;
	pthread_mutex_lock(&s->lock);
	size_t n = 0;
	/* In loopback the receiver hears only the transmitter. */
	maybe_resume_input(s); /* stashed bytes first */
	if (listening(s) && !s->stash_len) {
		size_t room = rx_capacity(s) - s->rx_count;
		n = MIN(room, len);
		for (size_t i = 0; i < n; i++)
			rx_push(s, buf[i], true);
	}
	if (n < len)
		s->input_refused = true;
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* The guest may use wider accesses: the ISA bus splits them into bytes. */
static uint64_t serial_port_read(void *opaque, uint64_t offset, unsigned size)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++) {
		uint64_t reg = offset + i;
		uint8_t b = reg < 8 ? serial_read(opaque, (unsigned)reg) : 0xFF;
		v |= (uint64_t)b << (8 * i);
	}
	return v;
}

static void serial_port_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	for (unsigned i = 0; i < size; i++)
		if (offset + i < 8)
			serial_write(opaque, (unsigned)(offset + i), (uint8_t)(value >> (8 * i)));
}

static const struct io_ops serial_ops = { .read = serial_port_read, .write = serial_port_write };

struct serial *serial_new(struct machine *m, uint16_t base, unsigned irq, struct console *con)
{
	struct serial *s = xcalloc(1, sizeof(*s));
	s->m = m;
	s->con = con;
	s->base = base;
	s->irq = irq;
	s->rx_trigger = 1;
	pthread_mutex_init(&s->lock, NULL);
	update_msr(s);
	s->msr_delta = 0; /* power-on state, not a change */
	int r = io_register(m->pio, base, 8, &serial_ops, s, "serial");
	if (r < 0) {
		log_err("serial: cannot register ports %#x-%#x: %d", base, base + 7, r);
		pthread_mutex_destroy(&s->lock);
		free(s);
		return NULL;
	}
	if (con)
		console_set_input(con, serial_receive, s);
	return s;
}

void serial_free(struct serial *s)
{
	if (!s)
		return;
	console_detach_input(s->con, s);
	io_unregister(s->m->pio, s->base, s);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static void serial_teardown(void *opaque)
{
	serial_free(opaque);
}

int serial_init(struct machine *m)
{
	struct serial *s = serial_new(m, PORT_COM1, IRQ_COM1, m->console);
	if (!s)
		return -1;
	machine_on_teardown(m, serial_teardown, s);
	return 0;
}
