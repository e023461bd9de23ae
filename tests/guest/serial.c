/* The 16550A from the guest's side, as Linux probes and drives it:
 * scratch register, divisor latch, loopback (MCR/MSR wiring, data comes
 * back), FIFO identification in IIR, the THRE interrupt through IOAPIC
 * pin 4, then a block of output the check compares byte for byte. */
#include "lib.h"

int test_main(void);

#define VEC_COM1 0x34

static volatile unsigned com1_irqs;

static void com1_isr(struct frame *f)
{
	uint8_t iir = inb(COM1 + 2);
	if ((iir & 0x0F) == 0x02) {
		com1_irqs++;
		outb(COM1 + 1, 0x00); /* done: THRE off, as a driver with nothing to send */
	}
	lapic_eoi();
}

int test_main(void)
{
	serial_init();
	/* Scratch register. */
	outb(COM1 + 7, 0x5A);
	CHECK(inb(COM1 + 7) == 0x5A, "scratch register");
	/* Divisor latch shadows RBR/IER only while DLAB is set. */
	outb(COM1 + 3, 0x83);
	outb(COM1 + 0, 0x0C);
	outb(COM1 + 1, 0x00);
	CHECK(inb(COM1 + 0) == 0x0C, "DLL readback");
	outb(COM1 + 3, 0x03);
	CHECK(inb(COM1 + 1) == 0x00, "IER after DLM write");
	/* FIFO identification: IIR bits 7:6 = 11 on a 16550A. */
	outb(COM1 + 2, 0x07);
	CHECK((inb(COM1 + 2) & 0xC0) == 0xC0, "FIFO not reported in IIR");
	/* Loopback: RTS|OUT2 -> CTS|DCD; data written comes back. */
	outb(COM1 + 4, 0x1A);
	CHECK((inb(COM1 + 6) & 0xF0) == 0x90, "loopback MSR %x", inb(COM1 + 6) & 0xF0);
	for (int i = 0; i < 4; i++)
		outb(COM1, (uint8_t)("xvm!"[i]));
	for (int i = 0; i < 4; i++) {
		CHECK(inb(COM1 + 5) & 0x01, "loopback byte %d missing", i);
		uint8_t c = inb(COM1);
		CHECK(c == (uint8_t)("xvm!"[i]), "loopback byte %d = %x", i, c);
	}
	CHECK(!(inb(COM1 + 5) & 0x01), "extra data after loopback");
	outb(COM1 + 4, 0x0B); /* DTR RTS OUT2, normal mode */
	CHECK((inb(COM1 + 6) & 0xB0) == 0xB0, "modem status lines in normal mode");

	/* THRE interrupt through the IOAPIC. */
	idt_init();
	set_handler(VEC_COM1, com1_isr);
	pic_disable();
	lapic_enable();
	ioapic_route(4, VEC_COM1, false);
	outb(COM1 + 1, 0x02);
	uint32_t start = pm_timer();
	while (!com1_irqs && within_us(start, 2000000))
		sti_hlt();
	cli();
	CHECK(com1_irqs == 1, "THRE interrupts: %u, want 1", com1_irqs);
	ioapic_mask(4);

	/* Output integrity: 64 lines the check compares. */
	gprintf("serial test output begins\n");
	for (unsigned i = 0; i < 64; i++)
		gprintf("%02u: the quick brown fox jumps over the lazy dog %08x\n", i, i * 0x9E3779B9u);
	gprintf("serial test output ends\n");
	gprintf("PASS\n");
	return EXIT_PASS;
}
