/* Port I/O and MMIO: the IOAPIC and LAPIC version registers (MMIO), the
 * CMOS RTC and its memory bytes, the ACPI PM timer and control register
 * (8/16/32-bit ports), the i8042 self test. */
#include "lib.h"

int test_main(void);

static uint8_t cmos(uint8_t i)
{
	outb(0x70, i);
	return inb(0x71);
}

static bool valid_bcd(uint8_t v)
{
	return (v & 0x0F) <= 9 && (v >> 4) <= 9;
}

int test_main(void)
{
	serial_init();
	gprintf("port I/O and MMIO test\n");

	/* IOAPIC: version register 1 = max redirection entry << 16 | version. */
	uint32_t ver = ioapic_read(1);
	gprintf("ioapic version register %x\n", ver);
	CHECK((ver & 0xFF) >= 0x11, "IOAPIC version %x", ver & 0xFF);
	CHECK(((ver >> 16) & 0xFF) == 23, "IOAPIC has %u pins, want 24", ((ver >> 16) & 0xFF) + 1);
	/* A redirection entry is read/write (masked, vector 0x33). */
	ioapic_write(0x10 + 2 * 10, (1u << 16) | 0x33);
	CHECK((ioapic_read(0x10 + 2 * 10) & 0x100FF) == 0x10033, "IOAPIC RTE readback %x",
	      ioapic_read(0x10 + 2 * 10));

	/* LAPIC (at the base the APIC base MSR says). */
	uint64_t apic_base = rdmsr(0x1B);
	CHECK((apic_base & 0xFFFFF000ul) == LAPIC_BASE, "APIC base MSR %lx", (unsigned long)apic_base);
	CHECK(apic_base & (1u << 8), "BSP flag clear in the APIC base MSR");
	uint32_t lver = lapic_read(0x30);
	gprintf("lapic version register %x, id %x\n", lver, lapic_read(0x20) >> 24);
	CHECK((lver & 0xFF) >= 0x10, "LAPIC version %x", lver & 0xFF);
	CHECK((lapic_read(0x20) >> 24) == 0, "BSP APIC ID %u", lapic_read(0x20) >> 24);

	/* RTC. */
	CHECK(cmos(0x0D) & 0x80, "RTC register D: battery not valid");
	uint8_t b = cmos(0x0B);
	CHECK(b & 0x02, "RTC not in 24-hour mode (B=%x)", b);
	if (!(b & 0x04)) {
		CHECK(valid_bcd(cmos(0x00)) && valid_bcd(cmos(0x02)) && valid_bcd(cmos(0x09)),
		      "RTC time not BCD");
	}
	uint8_t century = cmos(0x32);
	gprintf("rtc: 20%02x-%02x-%02x century %x\n", cmos(0x09), cmos(0x08), cmos(0x07), century);
	CHECK(century == 0x20 || century == 0x21, "RTC century %x", century);
	/* Firmware memory bytes: extended memory and memory above 16 MiB. */
	unsigned ext = cmos(0x30) | cmos(0x31) << 8;
	unsigned above16 = cmos(0x34) | cmos(0x35) << 8;
	gprintf("cmos: extended %u KiB, above 16M %u x 64 KiB\n", ext, above16);
	CHECK(ext > 0 && above16 > 0, "CMOS memory size bytes are empty");
	/* NVRAM byte read/write. */
	outb(0x70, 0x40);
	outb(0x71, 0xA5);
	CHECK(cmos(0x40) == 0xA5, "CMOS memory byte did not stick");

	/* ACPI PM: 32-bit timer port moves, 16-bit control port has SCI_EN. */
	uint32_t t0 = pm_timer();
	udelay(1000);
	uint32_t t1 = pm_timer();
	CHECK(t1 - t0 >= 3579 && t1 - t0 < 3579545, "PM timer moved %u ticks in 1 ms", t1 - t0);
	CHECK(inw(0x604) & 1, "PM1a_CNT.SCI_EN clear");

	/* i8042 self test through the command port. */
	while (inb(0x64) & 1)
		(void)inb(0x60);
	outb(0x64, 0xAA);
	uint32_t start = pm_timer();
	while (!(inb(0x64) & 1) && within_us(start, 100000))
		;
	CHECK(inb(0x64) & 1, "i8042 self test: no reply");
	uint8_t st = inb(0x60);
	CHECK(st == 0x55, "i8042 self test replied %x", st);

	/* An unassigned port reads as all ones. */
	CHECK(inb(0x2E8 + 7) == 0xFF, "unassigned port did not read 0xFF");
	gprintf("PASS\n");
	return EXIT_PASS;
}
