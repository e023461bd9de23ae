/* The guest tests' runtime. See lib.h. */
#include "lib.h"

extern uint32_t mb_info;
extern char isr_stubs[];

#define MBI_FLAG_CMDLINE (1u << 2)

void serial_init(void)
{
	outb(COM1 + 1, 0x00);          /* no interrupts */
	outb(COM1 + 3, 0x80);          /* DLAB */
	outb(COM1 + 0, 0x01);          /* 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03);          /* 8N1 */
	outb(COM1 + 2, 0x07);          /* FIFO on, cleared */
	outb(COM1 + 4, 0x03);          /* DTR, RTS */
}

void putchar_serial(char c)
{
	/* Wait for THRE, bounded: a broken UART must not hang the test. */
	for (int i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++)
		;
	outb(COM1, (uint8_t)c);
}

void puts_serial(const char *s)
{
	while (*s)
		putchar_serial(*s++);
}

static void put_unsigned(unsigned long v, unsigned base, int width, char pad)
{
	char buf[24];
	int n = 0;
	do {
		unsigned d = (unsigned)(v % base);
		buf[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= base;
	} while (v);
	while (n < width--)
		putchar_serial(pad);
	while (n)
		putchar_serial(buf[--n]);
}

static void vprint(const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			putchar_serial(*fmt);
			continue;
		}
		fmt++;
		char pad = ' ';
		int width = 0;
		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		bool is_long = false;
		while (*fmt == 'l') {
			is_long = true;
			fmt++;
		}
		switch (*fmt) {
		case 'd': {
			long v = is_long ? va_arg(ap, long) : va_arg(ap, int);
			if (v < 0) {
				putchar_serial('-');
				v = -v;
			}
			put_unsigned((unsigned long)v, 10, width, pad);
			break;
		}
		case 'u':
			put_unsigned(is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 10, width, pad);
			break;
		case 'x':
			put_unsigned(is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 16, width, pad);
			break;
		case 's':
			puts_serial(va_arg(ap, const char *));
			break;
		case 'c':
			putchar_serial((char)va_arg(ap, int));
			break;
		case '%':
			putchar_serial('%');
			break;
		default:
			putchar_serial('?');
			break;
		}
	}
}

void gprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprint(fmt, ap);
	va_end(ap);
}

void guest_exit(unsigned code)
{
	outb(PORT_EXIT, (uint8_t)code);
	/* Without --debug-exit the write does nothing: stop here. */
	for (;;)
		__asm__ volatile("cli; hlt");
}

void fail(const char *fmt, ...)
{
	va_list ap;
	puts_serial("FAIL: ");
	va_start(ap, fmt);
	vprint(fmt, ap);
	va_end(ap);
	putchar_serial('\n');
	guest_exit(EXIT_FAIL);
}

const char *cmdline(void)
{
	const uint32_t *mbi = (const uint32_t *)(uintptr_t)mb_info;
	if (!mbi || !(mbi[0] & MBI_FLAG_CMDLINE) || !mbi[4])
		return "";
	return (const char *)(uintptr_t)mbi[4];
}

unsigned long cmdline_ulong(const char *key, unsigned long def)
{
	const char *p = cmdline();
	size_t klen = 0;
	while (key[klen])
		klen++;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *word = p;
		while (*p && *p != ' ')
			p++;
		size_t i = 0;
		while (i < klen && word + i < p && word[i] == key[i])
			i++;
		if (i != klen || word + klen >= p || word[klen] != '=')
			continue;
		const char *v = word + klen + 1;
		unsigned base = 10;
		if (v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
			base = 16;
			v += 2;
		}
		unsigned long n = 0;
		for (; v < p; v++) {
			unsigned d;
			if (*v >= '0' && *v <= '9')
				d = (unsigned)(*v - '0');
			else if (base == 16 && *v >= 'a' && *v <= 'f')
				d = (unsigned)(*v - 'a' + 10);
			else if (base == 16 && *v >= 'A' && *v <= 'F')
				d = (unsigned)(*v - 'A' + 10);
			else
				break;
			n = n * base + d;
		}
		return n;
	}
	return def;
}

bool within_us(uint32_t start, uint32_t us)
{
	uint32_t ticks = (uint32_t)((uint64_t)us * PM_TMR_HZ / 1000000u);
	return (uint32_t)(pm_timer() - start) < ticks;
}

void udelay(uint32_t us)
{
	uint32_t start = pm_timer();
	while (within_us(start, us))
		__asm__ volatile("pause");
}

/* ---- IDT ---- */

struct idt_gate {
	uint16_t offset_lo, selector;
	uint8_t ist, type;
	uint16_t offset_mid;
	uint32_t offset_hi, reserved;
} __attribute__((packed));

static struct idt_gate idt[256] __attribute__((aligned(16)));
static isr_fn handlers[256];

void isr_dispatch(struct frame *f);
void isr_dispatch(struct frame *f)
{
	isr_fn fn = handlers[f->vector & 0xFF];
	if (fn) {
		fn(f);
		return;
	}
	fail("unexpected exception/interrupt: vector %lu error %lx at rip %lx",
	     (unsigned long)f->vector, (unsigned long)f->error, (unsigned long)f->rip);
}

void idt_init(void)
{
	for (unsigned v = 0; v < 256; v++) {
		uint64_t a = (uint64_t)(uintptr_t)(isr_stubs + 16 * v);
		idt[v] = (struct idt_gate){
			.offset_lo = (uint16_t)a, .selector = 0x18, .ist = 0,
			.type = 0x8E, /* present, DPL 0, 64-bit interrupt gate */
			.offset_mid = (uint16_t)(a >> 16), .offset_hi = (uint32_t)(a >> 32),
		};
	}
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) desc = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };
	__asm__ volatile("lidt %0" :: "m"(desc));
}

void set_handler(unsigned vector, isr_fn fn)
{
	handlers[vector & 0xFF] = fn;
}

/* ---- APICs ---- */

void lapic_enable(void)
{
	lapic_write(0xF0, 0x1FF); /* software enable, spurious vector 0xFF */
	lapic_write(0x80, 0);     /* TPR: accept everything */
}

uint32_t ioapic_read(unsigned reg)
{
	mmio_write32(IOAPIC_BASE, reg);
	return mmio_read32(IOAPIC_BASE + 0x10);
}

void ioapic_write(unsigned reg, uint32_t v)
{
	mmio_write32(IOAPIC_BASE, reg);
	mmio_write32(IOAPIC_BASE + 0x10, v);
}

void ioapic_route(unsigned pin, uint8_t vector, bool level_low)
{
	ioapic_write(0x11 + 2 * pin, 0);   /* destination APIC ID 0 */
	ioapic_write(0x10 + 2 * pin, vector | (level_low ? (1u << 15) | (1u << 13) : 0));
}

void ioapic_mask(unsigned pin)
{
	ioapic_write(0x10 + 2 * pin, 1u << 16);
}

void pic_disable(void)
{
	/* Initialise both 8259s (vectors 0x20/0x28) and mask every line. */
	outb(0x20, 0x11);
	outb(0xA0, 0x11);
	outb(0x21, 0x20);
	outb(0xA1, 0x28);
	outb(0x21, 0x04);
	outb(0xA1, 0x02);
	outb(0x21, 0x01);
	outb(0xA1, 0x01);
	outb(0x21, 0xFF);
	outb(0xA1, 0xFF);
}
