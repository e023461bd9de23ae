/* i8042 keyboard controller, PS/2 keyboard and mouse command responders,
 * port 0x92 and the port 0x61 fallback. See i8042.h. Command set from the
 * IBM PC/AT technical reference and the PS/2 keyboard/mouse interface
 * documentation. */
#include "hw/i8042.h"
#include "hw/io.h"
#include "lib/log.h"
#include "lib/util.h"
#include "machine/layout.h"
#include "machine/machine.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define OUTQ_SIZE      16

/* Controller commands. */
#define CMD_READ_RAM   0x20 /* 0x20..0x3F; 0x20 = command byte */
#define CMD_WRITE_RAM  0x60 /* 0x60..0x7F; 0x60 = command byte */
#define CMD_PASSWD_CHK 0xA4
#define CMD_AUX_DIS    0xA7
#define CMD_AUX_EN     0xA8
#define CMD_AUX_TEST   0xA9
#define CMD_SELF_TEST  0xAA
#define CMD_KBD_TEST   0xAB
#define CMD_KBD_DIS    0xAD
#define CMD_KBD_EN     0xAE
#define CMD_READ_IN    0xC0
#define CMD_READ_OUT   0xD0
#define CMD_WRITE_OUT  0xD1
#define CMD_KBD_LOOP   0xD2 /* next data byte appears as keyboard output */
#define CMD_AUX_LOOP   0xD3 /* ... as mouse output */
#define CMD_AUX_SEND   0xD4 /* next data byte goes to the mouse */
#define CMD_READ_TEST  0xE0
#define CMD_PULSE      0xF0 /* 0xF0..0xFF: pulse output lines whose bit is 0 */

#define OUT_RESET_N    0x01 /* output port: CPU reset line, active low */
#define OUT_A20        0x02

#define SELF_TEST_OK   0x55
#define PORT_TEST_OK   0x00

/* PS/2 device replies. */
#define PS2_ACK        0xFA
#define PS2_RESEND     0xFE
#define PS2_BAT_OK     0xAA

#define PORT92_RESET   0x01
#define PORT92_A20     0x02

struct outq_entry {
	uint8_t byte;
	bool aux;
};

struct i8042 {
	struct machine *m;
	pthread_mutex_t lock;
	uint8_t ram[32];          /* controller RAM; ram[0] is the command byte */
	uint8_t outport;
	bool last_was_cmd;
	uint8_t pending;          /* controller command waiting for its data byte */
	struct outq_entry outq[OUTQ_SIZE];
	unsigned outq_head, outq_count;
	bool irq_kbd, irq_aux;

	uint8_t kbd_pending;      /* keyboard command waiting for its parameter */
	uint8_t kbd_scanset;
	uint8_t aux_pending;
	bool aux_streaming;
	uint8_t aux_rate, aux_resolution;
	bool aux_scaling21;

	uint8_t port92;
	bool own_port61;
	uint8_t port61;
};

#define CTR(k) ((k)->ram[0])

static void update_irq(struct i8042 *k)
{
	bool kbd = false, aux = false;
	if (k->outq_count) {
		if (k->outq[k->outq_head].aux)
			aux = CTR(k) & I8042_CTR_AUXINT;
		else
			kbd = CTR(k) & I8042_CTR_KBDINT;
	}
	if (kbd != k->irq_kbd) {
		k->irq_kbd = kbd;
		machine_set_irq(k->m, IRQ_I8042_KBD, kbd);
	}
	if (aux != k->irq_aux) {
		k->irq_aux = aux;
		machine_set_irq(k->m, IRQ_I8042_AUX, aux);
	}
}

static void push(struct i8042 *k, uint8_t byte, bool aux)
{
	if (k->outq_count == OUTQ_SIZE) {
		log_once(LOG_DEBUG, "i8042: output queue full, byte dropped");
		return;
	}
	struct outq_entry *e = &k->outq[(k->outq_head + k->outq_count) % OUTQ_SIZE];
	e->byte = byte;
	e->aux = aux;
	k->outq_count++;
}

static void request_reset(struct i8042 *k, const char *why)
{
	log_info("guest reset (%s)", why);
	machine_request_stop(k->m, VM_STOP_RESET, 0);
}

uint8_t i8042_read_status(struct i8042 *k)
{
	pthread_mutex_lock(&k->lock);
	uint8_t st = I8042_STR_UNLOCK;
	if (k->outq_count) {
		st |= I8042_STR_OBF;
		if (k->outq[k->outq_head].aux)
			st |= I8042_STR_AUXOBF;
	}
	if (CTR(k) & I8042_CTR_SYS)
		st |= I8042_STR_SYS;
	if (k->last_was_cmd)
		st |= I8042_STR_CMD;
	pthread_mutex_unlock(&k->lock);
	return st;
}

uint8_t i8042_read_data(struct i8042 *k)
{
	pthread_mutex_lock(&k->lock);
	uint8_t v = 0;
	if (k->outq_count) {
		v = k->outq[k->outq_head].byte;
		k->outq_head = (k->outq_head + 1) % OUTQ_SIZE;
		k->outq_count--;
		/* Drop the line before raising it for the next byte: ISA
		 * interrupts are edge triggered. */
		if (k->irq_kbd) {
			k->irq_kbd = false;
			machine_set_irq(k->m, IRQ_I8042_KBD, 0);
		}
		if (k->irq_aux) {
			k->irq_aux = false;
			machine_set_irq(k->m, IRQ_I8042_AUX, 0);
		}
	} else {
		/* Reading an empty buffer returns the last byte on real
		 * parts; nothing depends on it. */
		v = k->outq[(k->outq_head + OUTQ_SIZE - 1) % OUTQ_SIZE].byte;
	}
	update_irq(k);
	pthread_mutex_unlock(&k->lock);
	return v;
}

static void keyboard_command(struct i8042 *k, uint8_t v)
{
	if (k->kbd_pending) {
		uint8_t cmd = k->kbd_pending;
		k->kbd_pending = 0;
		if (cmd == 0xF0) { /* scan code set: 0 = query */
			push(k, PS2_ACK, false);
			if (v == 0)
				push(k, k->kbd_scanset, false);
			else if (v <= 3)
				k->kbd_scanset = v;
			return;
		}
		push(k, PS2_ACK, false); /* 0xED LEDs, 0xF3 typematic */
		return;
	}
	switch (v) {
	case 0xED: /* set LEDs */
	case 0xF3: /* typematic rate */
	case 0xF0: /* scan code set */
		push(k, PS2_ACK, false);
		k->kbd_pending = v;
		break;
	case 0xEE: /* echo */
		push(k, 0xEE, false);
		break;
	case 0xF2: /* identify: MF2 keyboard */
		push(k, PS2_ACK, false);
		push(k, 0xAB, false);
		push(k, 0x83, false);
		break;
	case 0xF4: /* enable scanning */
	case 0xF5: /* disable scanning, defaults */
	case 0xF6: /* defaults */
	case 0xF7: case 0xF8: case 0xF9: case 0xFA:
	case 0xFB: case 0xFC: case 0xFD:
		push(k, PS2_ACK, false);
		break;
	case 0xFF: /* reset and self test */
		k->kbd_scanset = 2;
		push(k, PS2_ACK, false);
		push(k, PS2_BAT_OK, false);
		break;
	default:
		push(k, PS2_RESEND, false);
		break;
	}
}

static void mouse_command(struct i8042 *k, uint8_t v)
{
	if (k->aux_pending) {
		if (k->aux_pending == 0xE8)
			k->aux_resolution = v & 3;
		else
			k->aux_rate = v;
		k->aux_pending = 0;
		push(k, PS2_ACK, true);
		return;
	}
	switch (v) {
	case 0xE6: /* scaling 1:1 */
	case 0xE7: /* scaling 2:1 */
		k->aux_scaling21 = v == 0xE7;
		push(k, PS2_ACK, true);
		break;
	case 0xE8: /* resolution */
	case 0xF3: /* sample rate */
		k->aux_pending = v;
		push(k, PS2_ACK, true);
		break;
	case 0xE9: /* status request */
		push(k, PS2_ACK, true);
		push(k, (uint8_t)((k->aux_streaming ? 0x20 : 0) | (k->aux_scaling21 ? 0x10 : 0)), true);
		push(k, k->aux_resolution, true);
		push(k, k->aux_rate, true);
		break;
	case 0xEB: /* read data: no movement, no buttons */
		push(k, PS2_ACK, true);
		push(k, 0x08, true);
		push(k, 0x00, true);
		push(k, 0x00, true);
		break;
	case 0xF2: /* identify: standard PS/2 mouse */
		push(k, PS2_ACK, true);
		push(k, 0x00, true);
		break;
	case 0xF4:
		k->aux_streaming = true;
		push(k, PS2_ACK, true);
		break;
	case 0xF5:
	case 0xF6:
		k->aux_streaming = false;
		push(k, PS2_ACK, true);
		break;
	case 0xEA: case 0xEC: case 0xEE: case 0xF0:
		push(k, PS2_ACK, true);
		break;
	case 0xFF:
		k->aux_streaming = false;
		k->aux_rate = 100;
		k->aux_resolution = 2;
		push(k, PS2_ACK, true);
		push(k, PS2_BAT_OK, true);
		push(k, 0x00, true);
		break;
	default:
		push(k, PS2_RESEND, true);
		break;
	}
}

void i8042_write_data(struct i8042 *k, uint8_t v)
{
	pthread_mutex_lock(&k->lock);
	k->last_was_cmd = false;
	uint8_t cmd = k->pending;
	k->pending = 0;
	if (cmd >= CMD_WRITE_RAM && cmd < CMD_WRITE_RAM + 32) {
		k->ram[cmd - CMD_WRITE_RAM] = v;
	} else if (cmd == CMD_WRITE_OUT) {
		k->outport = v;
		if (!(v & OUT_RESET_N))
			request_reset(k, "i8042 output port");
	} else if (cmd == CMD_KBD_LOOP) {
		push(k, v, false);
	} else if (cmd == CMD_AUX_LOOP) {
		push(k, v, true);
	} else if (cmd == CMD_AUX_SEND) {
		mouse_command(k, v);
	} else {
		keyboard_command(k, v);
	}
	update_irq(k);
	pthread_mutex_unlock(&k->lock);
}

void i8042_write_command(struct i8042 *k, uint8_t v)
{
	pthread_mutex_lock(&k->lock);
	k->last_was_cmd = true;
	k->pending = 0;
	if (v >= CMD_READ_RAM && v < CMD_READ_RAM + 32) {
		push(k, k->ram[v - CMD_READ_RAM], false);
	} else if (v >= CMD_WRITE_RAM && v < CMD_WRITE_RAM + 32) {
		k->pending = v;
	} else if (v >= CMD_PULSE) {
		/* Low nibble: lines to pulse are the 0 bits; bit 0 = reset. */
		if (!(v & 0x01))
			request_reset(k, "i8042 command 0xFE");
	} else {
		switch (v) {
		case CMD_PASSWD_CHK:
			push(k, 0xF1, false); /* no password installed */
			break;
		case CMD_AUX_DIS:
			CTR(k) |= I8042_CTR_AUXDIS;
			break;
		case CMD_AUX_EN:
			CTR(k) &= (uint8_t)~I8042_CTR_AUXDIS;
			break;
		case CMD_AUX_TEST:
		case CMD_KBD_TEST:
			push(k, PORT_TEST_OK, false);
			break;
		case CMD_SELF_TEST:
			CTR(k) |= I8042_CTR_SYS;
			push(k, SELF_TEST_OK, false);
			break;
		case CMD_KBD_DIS:
			CTR(k) |= I8042_CTR_KBDDIS;
			break;
		case CMD_KBD_EN:
			CTR(k) &= (uint8_t)~I8042_CTR_KBDDIS;
			break;
		case CMD_READ_IN:
			push(k, 0x80, false); /* keyboard not inhibited */
			break;
		case CMD_READ_OUT:
			push(k, k->outport, false);
			break;
		case CMD_WRITE_OUT:
		case CMD_KBD_LOOP:
		case CMD_AUX_LOOP:
		case CMD_AUX_SEND:
			k->pending = v;
			break;
		case CMD_READ_TEST:
			push(k, 0x00, false);
			break;
		default:
			log_once(LOG_DEBUG, "i8042: unsupported controller command %#x", v);
			break;
		}
	}
	update_irq(k);
	pthread_mutex_unlock(&k->lock);
}

static uint64_t data_read(void *opaque, uint64_t offset, unsigned size)
{
	return i8042_read_data(opaque);
}

static void data_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	i8042_write_data(opaque, (uint8_t)value);
}

static uint64_t cmd_read(void *opaque, uint64_t offset, unsigned size)
{
	return i8042_read_status(opaque);
}

static void cmd_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	i8042_write_command(opaque, (uint8_t)value);
}

static uint64_t port92_read(void *opaque, uint64_t offset, unsigned size)
{
	struct i8042 *k = opaque;
	return __atomic_load_n(&k->port92, __ATOMIC_RELAXED);
}

static void port92_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct i8042 *k = opaque;
	__atomic_store_n(&k->port92, (uint8_t)(value & PORT92_A20), __ATOMIC_RELAXED);
	if (value & PORT92_RESET) {
		log_info("guest reset (port 0x92)");
		machine_request_stop(k->m, VM_STOP_RESET, 0);
	}
}

/* Without an emulated PIT: bits 0-3 stored; bit 4 (refresh) and bit 5
 * (timer 2 output, while gated) toggle on each read so polling loops end. */
static uint64_t port61_read(void *opaque, uint64_t offset, unsigned size)
{
	struct i8042 *k = opaque;
	pthread_mutex_lock(&k->lock);
	k->port61 ^= 0x10;
	if (k->port61 & 0x01)
		k->port61 ^= 0x20;
	uint8_t v = k->port61;
	pthread_mutex_unlock(&k->lock);
	return v;
}

static void port61_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct i8042 *k = opaque;
	pthread_mutex_lock(&k->lock);
	k->port61 = (uint8_t)((k->port61 & 0xF0) | (value & 0x0F));
	pthread_mutex_unlock(&k->lock);
}

static const struct io_ops data_ops = { .read = data_read, .write = data_write };
static const struct io_ops cmd_ops = { .read = cmd_read, .write = cmd_write };
static const struct io_ops port92_ops = { .read = port92_read, .write = port92_write };
static const struct io_ops port61_ops = { .read = port61_read, .write = port61_write };

struct i8042 *i8042_new(struct machine *m)
{
	struct i8042 *k = xcalloc(1, sizeof(*k));
	k->m = m;
	pthread_mutex_init(&k->lock, NULL);
	/* As firmware leaves it: keyboard interrupt on, system flag set
	 * (POST passed), translation on, mouse clock off. */
	CTR(k) = I8042_CTR_KBDINT | I8042_CTR_SYS | I8042_CTR_AUXDIS | I8042_CTR_XLATE;
	k->outport = OUT_RESET_N | OUT_A20;
	k->port92 = PORT92_A20;
	k->kbd_scanset = 2;
	k->aux_rate = 100;
	k->aux_resolution = 2;
	if (io_register(m->pio, PORT_I8042_DATA, 1, &data_ops, k, "i8042-data") < 0 ||
	    io_register(m->pio, PORT_I8042_CMD, 1, &cmd_ops, k, "i8042-cmd") < 0 ||
	    io_register(m->pio, PORT_FAST_A20, 1, &port92_ops, k, "port92") < 0) {
		log_err("i8042: cannot register ports 0x60/0x64/0x92");
		i8042_free(k);
		return NULL;
	}
	int r = io_register(m->pio, PORT_PC_SPEAKER, 1, &port61_ops, k, "port61");
	if (r == 0)
		k->own_port61 = true;
	else if (r != -EEXIST)
		log_warn("i8042: cannot register port 0x61: %d", r);
	return k;
}

void i8042_free(struct i8042 *k)
{
	if (!k)
		return;
	io_unregister(k->m->pio, PORT_I8042_DATA, k);
	io_unregister(k->m->pio, PORT_I8042_CMD, k);
	io_unregister(k->m->pio, PORT_FAST_A20, k);
	if (k->own_port61)
		io_unregister(k->m->pio, PORT_PC_SPEAKER, k);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

static void i8042_teardown(void *opaque)
{
	i8042_free(opaque);
}

int i8042_init(struct machine *m)
{
	struct i8042 *k = i8042_new(m);
	if (!k)
		return -1;
	machine_on_teardown(m, i8042_teardown, k);
	return 0;
}
