/* Timer interrupts waking HLT: the LAPIC timer (periodic, vector 0x40),
 * the PIT through IOAPIC pin 2 (ISA IRQ0 override, vector 0x41) and the
 * RTC periodic interrupt through IOAPIC pin 8 (vector 0x42). Each handler
 * counts; the main loop sleeps in HLT until the count is reached. */
#include "lib.h"

int test_main(void);

#define VEC_LAPIC 0x40
#define VEC_PIT   0x41
#define VEC_RTC   0x42
#define TICKS     5

static volatile unsigned lapic_ticks, pit_ticks, rtc_ticks;

static void lapic_isr(struct frame *f) { lapic_ticks++; lapic_eoi(); }
static void pit_isr(struct frame *f) { pit_ticks++; lapic_eoi(); }
static void rtc_isr(struct frame *f)
{
	outb(0x70, 0x0C);
	(void)inb(0x71); /* acknowledge: reading C lowers the line */
	rtc_ticks++;
	lapic_eoi();
}

static void wait_for(volatile unsigned *count, const char *what)
{
	uint32_t start = pm_timer();
	unsigned halts = 0;
	while (*count < TICKS && within_us(start, 5000000)) {
		sti_hlt();
		halts++;
	}
	cli();
	CHECK(*count >= TICKS, "%s: %u interrupts in 5 s, want %u", what, *count, TICKS);
	gprintf("%s: %u interrupts, %u halts\n", what, *count, halts);
}

int test_main(void)
{
	serial_init();
	gprintf("timer interrupt test\n");
	idt_init();
	set_handler(VEC_LAPIC, lapic_isr);
	set_handler(VEC_PIT, pit_isr);
	set_handler(VEC_RTC, rtc_isr);
	pic_disable();
	lapic_enable();

	/* LAPIC timer: periodic, divide by 16, a small initial count. */
	lapic_write(0x3E0, 0x3);
	lapic_write(0x320, (1u << 17) | VEC_LAPIC);
	lapic_write(0x380, 100000);
	wait_for(&lapic_ticks, "lapic timer");
	lapic_write(0x320, 1u << 16); /* mask */
	lapic_write(0x380, 0);

	/* PIT channel 0, mode 2, 1 kHz, through IOAPIC pin 2. */
	ioapic_route(2, VEC_PIT, false);
	outb(0x43, 0x34);
	outb(0x40, 1193 & 0xFF);
	outb(0x40, 1193 >> 8);
	wait_for(&pit_ticks, "pit");
	ioapic_mask(2);

	/* RTC periodic interrupt (1024 Hz) through IOAPIC pin 8. */
	ioapic_route(8, VEC_RTC, false);
	outb(0x70, 0x0A);
	outb(0x71, 0x26);
	outb(0x70, 0x0B);
	uint8_t b = inb(0x71);
	outb(0x70, 0x0B);
	outb(0x71, b | 0x40); /* PIE */
	outb(0x70, 0x0C);
	(void)inb(0x71);
	wait_for(&rtc_ticks, "rtc periodic");
	outb(0x70, 0x0B);
	outb(0x71, b);
	ioapic_mask(8);

	gprintf("PASS\n");
	return EXIT_PASS;
}
