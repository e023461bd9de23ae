/* The guest tests' tiny runtime (64-bit, freestanding): port and MMIO
 * access, COM1 output, formatted printing, the Multiboot command line,
 * PM-timer delays, the IDT, LAPIC/IOAPIC helpers and the verdict. */
#ifndef GUEST_LIB_H
#define GUEST_LIB_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Debug-exit codes: xvm exits with (code << 1) | 1. */
#define EXIT_PASS 0x10 /* exit status 33 */
#define EXIT_FAIL 0x11 /* exit status 35 */

#define COM1        0x3F8
#define PORT_EXIT   0xF4
#define PORT_PM_TMR 0x608
#define PM_TMR_HZ   3579545u
#define LAPIC_BASE  0xFEE00000ul
#define IOAPIC_BASE 0xFEC00000ul

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint16_t inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t mmio_read32(uint64_t a) { return *(volatile uint32_t *)a; }
static inline void mmio_write32(uint64_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
/* STI;HLT is atomic: an interrupt pending at the STI wakes the HLT. */
static inline void sti_hlt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }

void serial_init(void);
void putchar_serial(char c);
void puts_serial(const char *s);
void gprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

_Noreturn void guest_exit(unsigned code);
_Noreturn void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define CHECK(cond, ...) do { if (!(cond)) fail(__VA_ARGS__); } while (0)

/* Multiboot command line ("" if none) and "key=value" lookups in it. */
const char *cmdline(void);
unsigned long cmdline_ulong(const char *key, unsigned long def);

/* PM timer: ticks at 3.579545 MHz, 32 bits. */
static inline uint32_t pm_timer(void) { return inl(PORT_PM_TMR); }
void udelay(uint32_t us);
/* True while less than us microseconds have passed since start. */
bool within_us(uint32_t start, uint32_t us);

struct frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};
typedef void (*isr_fn)(struct frame *f);
/* Loads an IDT whose every vector calls isr_dispatch; unhandled ones fail
 * the test with the vector, error code and RIP. */
void idt_init(void);
void set_handler(unsigned vector, isr_fn fn);

/* Local APIC (xAPIC MMIO) and IOAPIC. */
static inline uint32_t lapic_read(unsigned reg) { return mmio_read32(LAPIC_BASE + reg); }
static inline void lapic_write(unsigned reg, uint32_t v) { mmio_write32(LAPIC_BASE + reg, v); }
void lapic_enable(void);
static inline void lapic_eoi(void) { lapic_write(0xB0, 0); }
uint32_t ioapic_read(unsigned reg);
void ioapic_write(unsigned reg, uint32_t v);
/* Routes IOAPIC pin to vector on APIC ID 0, edge/high (ISA) or level/low. */
void ioapic_route(unsigned pin, uint8_t vector, bool level_low);
void ioapic_mask(unsigned pin);
/* Masks both 8259s so only the IOAPIC delivers. */
void pic_disable(void);

#endif
