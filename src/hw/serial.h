/* 16550A UART (8 registers at a port base, one ISA interrupt line).
 *
 * Transmit is instantaneous (THR and the transmitter are always empty
 * again by the next access), so a THRE interrupt is pending whenever it is
 * enabled and the guest has not acknowledged it. Receive has the real
 * 16-byte FIFO with trigger levels; a character-timeout interrupt (IIR 0xC)
 * is reported as soon as the FIFO holds data below the trigger level, since
 * the guest reads until LSR.DR clears either way. Console input is taken
 * only while the guest listens (receive interrupt enabled, or LSR polled
 * in a loop) and the FIFO has room: the rest waits in the console back
 * end, which stops reading its fd, so bytes typed or piped in before the
 * driver is ready are not lost to its flushing reads; a FIFO clear takes
 * console bytes back (delivered again when the guest listens) and drops
 * only looped-back ones.
 * Loopback mode (MCR bit 4) routes THR to the receiver and the modem
 * control outputs to the status inputs, as Linux's probe expects. */
#ifndef XVM_HW_SERIAL_H
#define XVM_HW_SERIAL_H

#include <stddef.h>
#include <stdint.h>

struct machine;
struct console;
struct serial;

/* Register offsets. */
enum {
	UART_RBR_THR = 0, /* DLAB: DLL */
	UART_IER = 1,     /* DLAB: DLM */
	UART_IIR_FCR = 2,
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
	UART_MSR = 6,
	UART_SCR = 7,
};

#define UART_FIFO_SIZE 16

/* Creates a UART at base on interrupt line irq, wired to con (output and
 * input; may be NULL: output discarded). Registers its ports. */
struct serial *serial_new(struct machine *m, uint16_t base, unsigned irq, struct console *con);
/* Detaches from the console and unregisters; call with vCPUs stopped. */
void serial_free(struct serial *s);

/* The board's COM1 on m->console; freed at machine teardown. */
int serial_init(struct machine *m);

/* Register access as the guest sees it (also used by the port ops). */
uint8_t serial_read(struct serial *s, unsigned reg);
void serial_write(struct serial *s, unsigned reg, uint8_t value);
/* Feeds received bytes; returns how many fit (console input callback). */
size_t serial_receive(void *opaque, const uint8_t *buf, size_t len);

#endif
