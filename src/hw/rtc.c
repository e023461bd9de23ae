/* CMOS RTC (Motorola MC146818A register model). See rtc.h. */
#include "hw/rtc.h"
#include "hw/io.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/util.h"
#include "machine/layout.h"
#include "machine/machine.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NSEC               1000000000LL
#define UIP_WINDOW_NS      244000LL       /* UIP before each update */
#define DIVIDER_NORMAL     0x20           /* A bits 6:4 = 010: 32.768 kHz */
#define DIVIDER_MASK       0x70
#define RATE_MASK          0x0F

#define CMOS_BASE_MEM      0x15
#define CMOS_EXT_MEM       0x17
#define CMOS_EXT_MEM2      0x30
#define CMOS_MEM_ABOVE_16M 0x34
#define CMOS_MEM_ABOVE_4G  0x5B
#define CMOS_CPU_COUNT     0x5F /* number of CPUs minus one, as firmware leaves it */
#define CMOS_EQUIPMENT     0x14
#define CMOS_CHECKSUM      0x2E /* big-endian sum of 0x10..0x2D */

struct rtc {
	struct machine *m;
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[128];
	int64_t offset_s;          /* guest clock - host UTC, seconds */
	int64_t flags_sec;         /* guest second up to which UF/AF are computed */
	uint64_t periodic_epoch;   /* monotonic ns when the rate was set */
	uint64_t periodic_ticks;   /* periods elapsed, as of the last catch-up */
	bool irq_level;
	struct loop_timer *timer;
};

static bool is_time_register(uint8_t i)
{
	return i == RTC_SECONDS || i == RTC_MINUTES || i == RTC_HOURS || i == RTC_DAY_OF_WEEK ||
	       i == RTC_DAY_OF_MONTH || i == RTC_MONTH || i == RTC_YEAR || i == RTC_CENTURY;
}

/* The guest clock as whole seconds plus the fraction (ns). Seconds and
 * nanoseconds stay apart: a guest may set any year up to 9999, whose
 * offset in nanoseconds would not fit 64 bits. */
static int64_t guest_now(const struct rtc *r, int64_t *frac_ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (frac_ns)
		*frac_ns = ts.tv_nsec;
	return (int64_t)ts.tv_sec + r->offset_s;
}

static int64_t host_now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b < 0);
}

/* ---- calendar (proleptic Gregorian, days since 1970-01-01) ---- */

static int64_t days_from_civil(int64_t y, unsigned mon, unsigned d)
{
	y -= mon <= 2;
	int64_t era = floor_div(y, 400);
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (mon + (mon > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

struct rtc_time {
	unsigned sec, min, hour, wday /* 0 = Sunday */, mday, mon, year /* full */;
};

static void civil_from_seconds(int64_t t, struct rtc_time *tm)
{
	int64_t days = floor_div(t, 86400);
	int64_t rem = t - days * 86400;
	tm->hour = (unsigned)(rem / 3600);
	tm->min = (unsigned)(rem / 60 % 60);
	tm->sec = (unsigned)(rem % 60);
	tm->wday = (unsigned)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
	int64_t z = days + 719468;
	int64_t era = floor_div(z, 146097);
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	tm->mday = doy - (153 * mp + 2) / 5 + 1;
	tm->mon = mp < 10 ? mp + 3 : mp - 9;
	tm->year = (unsigned)(yoe + era * 400 + (tm->mon <= 2));
}

/* ---- register encoding (B selects BCD/binary and 12/24 h) ---- */

static uint8_t encode(const struct rtc *r, unsigned v)
{
	v %= 100;
	if (r->cmos[RTC_REG_B] & RTC_B_BINARY)
		return (uint8_t)v;
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static unsigned decode(const struct rtc *r, uint8_t v)
{
	if (r->cmos[RTC_REG_B] & RTC_B_BINARY)
		return v;
	/* Invalid BCD digits from a guest are taken at face value. */
	return (v >> 4) * 10 + (v & 0x0F);
}

static uint8_t encode_hour(const struct rtc *r, unsigned h)
{
	if (r->cmos[RTC_REG_B] & RTC_B_24H)
		return encode(r, h);
	unsigned h12 = h % 12 ? h % 12 : 12;
	return (uint8_t)(encode(r, h12) | (h >= 12 ? 0x80 : 0));
}

static unsigned decode_hour(const struct rtc *r, uint8_t v)
{
	if (r->cmos[RTC_REG_B] & RTC_B_24H)
		return decode(r, v) % 24;
	unsigned h = decode(r, v & 0x7F) % 12; /* 12 AM is 0 */
	return h + ((v & 0x80) ? 12 : 0);
}

/* Writes the guest clock into the time registers. */
static void store_time(struct rtc *r, int64_t t)
{
	struct rtc_time tm;
	civil_from_seconds(t, &tm);
	r->cmos[RTC_SECONDS] = encode(r, tm.sec);
	r->cmos[RTC_MINUTES] = encode(r, tm.min);
	r->cmos[RTC_HOURS] = encode_hour(r, tm.hour);
	r->cmos[RTC_DAY_OF_WEEK] = encode(r, tm.wday + 1);
	r->cmos[RTC_DAY_OF_MONTH] = encode(r, tm.mday);
	r->cmos[RTC_MONTH] = encode(r, tm.mon);
	r->cmos[RTC_YEAR] = encode(r, tm.year % 100);
	r->cmos[RTC_CENTURY] = encode(r, tm.year / 100);
}

/* Reads the time registers back (guest-written: clamp to sane ranges). */
static int64_t load_time(const struct rtc *r)
{
	unsigned sec = decode(r, r->cmos[RTC_SECONDS]) % 60;
	unsigned min = decode(r, r->cmos[RTC_MINUTES]) % 60;
	unsigned hour = decode_hour(r, r->cmos[RTC_HOURS]);
	unsigned mday = decode(r, r->cmos[RTC_DAY_OF_MONTH]);
	unsigned mon = decode(r, r->cmos[RTC_MONTH]);
	unsigned year = decode(r, r->cmos[RTC_YEAR]) % 100;
	unsigned century = decode(r, r->cmos[RTC_CENTURY]);
	mday = mday < 1 ? 1 : mday > 31 ? 31 : mday;
	mon = mon < 1 ? 1 : mon > 12 ? 12 : mon;
	if (century < 19 || century > 99)
		century = year < 70 ? 20 : 19; /* no (sane) century register */
	int64_t days = days_from_civil((int64_t)century * 100 + year, mon, mday);
	return days * 86400 + hour * 3600 + min * 60 + sec;
}

/* ---- interrupts ---- */

static uint64_t periodic_ns(const struct rtc *r)
{
	unsigned rate = r->cmos[RTC_REG_A] & RATE_MASK;
	if (!rate || (r->cmos[RTC_REG_A] & DIVIDER_MASK) != DIVIDER_NORMAL)
		return 0;
	if (rate < 3)
		rate += 7; /* rates 1 and 2 repeat 8 and 9 with a 32.768 kHz base */
	return (uint64_t)NSEC * (1u << (rate - 1)) / 32768;
}

static bool alarm_matches(const struct rtc *r, int64_t t)
{
	struct rtc_time tm;
	civil_from_seconds(t, &tm);
	const uint8_t alarm[3] = { r->cmos[RTC_SECONDS_ALARM], r->cmos[RTC_MINUTES_ALARM],
				   r->cmos[RTC_HOURS_ALARM] };
	const uint8_t now[3] = { encode(r, tm.sec), encode(r, tm.min), encode_hour(r, tm.hour) };
	for (int i = 0; i < 3; i++)
		if ((alarm[i] & 0xC0) != 0xC0 && alarm[i] != now[i])
			return false; /* 0xC0-0xFF: "don't care" */
	return true;
}

/* Sets the C flags for everything that happened since the last call. */
static void catch_up(struct rtc *r)
{
	uint8_t c = r->cmos[RTC_REG_C];
	uint64_t period = periodic_ns(r);
	if (period) {
		uint64_t ticks = (clock_ns() - r->periodic_epoch) / period;
		if (ticks != r->periodic_ticks)
			c |= RTC_C_PF;
		r->periodic_ticks = ticks;
	}
	if (!(r->cmos[RTC_REG_B] & RTC_B_SET) &&
	    (r->cmos[RTC_REG_A] & DIVIDER_MASK) == DIVIDER_NORMAL) {
		int64_t now = guest_now(r, NULL);
		if (now > r->flags_sec) {
			c |= RTC_C_UF;
			if (now - r->flags_sec >= 86400) {
				c |= RTC_C_AF; /* every alarm matches once a day */
			} else {
				for (int64_t t = r->flags_sec + 1; t <= now && !(c & RTC_C_AF); t++)
					if (alarm_matches(r, t))
						c |= RTC_C_AF;
			}
		}
		r->flags_sec = now;
	}
	if (c & r->cmos[RTC_REG_B] & (RTC_C_PF | RTC_C_AF | RTC_C_UF))
		c |= RTC_C_IRQF;
	r->cmos[RTC_REG_C] = c;
}

/* Raises or drops the line and arms the timer for the next enabled event
 * (only while IRQF is clear: until the guest reads C nothing can change). */
static void update_irq(struct rtc *r)
{
	bool level = r->cmos[RTC_REG_C] & RTC_C_IRQF;
	if (level != r->irq_level) {
		r->irq_level = level;
		machine_set_irq(r->m, IRQ_RTC, level);
	}
	if (!r->timer)
		return;
	uint8_t b = r->cmos[RTC_REG_B];
	uint64_t delay = 0;
	if (!level) {
		uint64_t period = periodic_ns(r);
		if ((b & RTC_B_PIE) && period) {
			uint64_t since = clock_ns() - r->periodic_epoch;
			delay = period - since % period;
		}
		if ((b & (RTC_B_UIE | RTC_B_AIE)) && !(b & RTC_B_SET)) {
			int64_t frac;
			guest_now(r, &frac);
			uint64_t to_second = (uint64_t)(NSEC - frac);
			if (!delay || to_second < delay)
				delay = to_second;
		}
	}
	/* +1 us so the event has happened when the timer runs. */
	loop_timer_arm(r->timer, delay ? delay + 1000 : 0, 0);
}

static void timer_fired(void *opaque)
{
	struct rtc *r = opaque;
	pthread_mutex_lock(&r->lock);
	catch_up(r);
	update_irq(r);
	pthread_mutex_unlock(&r->lock);
}

/* ---- registers ---- */

uint8_t rtc_cmos_read(struct rtc *r, uint8_t index)
{
	index &= 0x7F;
	pthread_mutex_lock(&r->lock);
	uint8_t v;
	if (is_time_register(index) && !(r->cmos[RTC_REG_B] & RTC_B_SET)) {
		store_time(r, guest_now(r, NULL));
		v = r->cmos[index];
	} else if (index == RTC_REG_A) {
		int64_t frac;
		guest_now(r, &frac);
		v = r->cmos[RTC_REG_A] & 0x7F;
		if (frac >= NSEC - UIP_WINDOW_NS && !(r->cmos[RTC_REG_B] & RTC_B_SET))
			v |= RTC_A_UIP;
	} else if (index == RTC_REG_C) {
		catch_up(r);
		v = r->cmos[RTC_REG_C];
		r->cmos[RTC_REG_C] = 0; /* reading C acknowledges everything */
		update_irq(r);
	} else {
		v = r->cmos[index];
	}
	pthread_mutex_unlock(&r->lock);
	return v;
}

/* Takes the guest's clock from the time registers. */
static void set_clock_from_registers(struct rtc *r)
{
	int64_t host = host_now_sec();
	r->offset_s = load_time(r) - host;
	r->flags_sec = host + r->offset_s; /* a clock jump is not an update */
}

void rtc_cmos_write(struct rtc *r, uint8_t index, uint8_t value)
{
	index &= 0x7F;
	pthread_mutex_lock(&r->lock);
	uint8_t b = r->cmos[RTC_REG_B];
	if (is_time_register(index)) {
		if (b & RTC_B_SET) {
			r->cmos[index] = value;
		} else {
			/* Running clock: change one field, keep counting. */
			store_time(r, guest_now(r, NULL));
			r->cmos[index] = value;
			set_clock_from_registers(r);
		}
	} else if (index == RTC_REG_A) {
		catch_up(r);
		if ((value ^ r->cmos[RTC_REG_A]) & (RATE_MASK | DIVIDER_MASK)) {
			r->periodic_epoch = clock_ns();
			r->periodic_ticks = 0;
		}
		r->cmos[RTC_REG_A] = value & 0x7F; /* UIP is read-only */
		update_irq(r);
	} else if (index == RTC_REG_B) {
		catch_up(r);
		if ((value & RTC_B_SET) && !(b & RTC_B_SET)) {
			/* Freeze: the registers now hold the time being set. */
			store_time(r, guest_now(r, NULL));
			value &= (uint8_t)~RTC_B_UIE; /* SET clears UIE */
		}
		r->cmos[RTC_REG_B] = value;
		if (!(value & RTC_B_SET) && (b & RTC_B_SET))
			set_clock_from_registers(r);
		/* A newly enabled flag that is already set raises IRQF. */
		if (r->cmos[RTC_REG_C] & value & (RTC_C_PF | RTC_C_AF | RTC_C_UF))
			r->cmos[RTC_REG_C] |= RTC_C_IRQF;
		update_irq(r);
	} else if (index == RTC_REG_C || index == RTC_REG_D) {
		/* read-only */
	} else {
		r->cmos[index] = value;
	}
	pthread_mutex_unlock(&r->lock);
}

static uint64_t rtc_port_read(void *opaque, uint64_t offset, unsigned size)
{
	struct rtc *r = opaque;
	if (offset == 0)
		return __atomic_load_n(&r->index, __ATOMIC_RELAXED);
	return rtc_cmos_read(r, __atomic_load_n(&r->index, __ATOMIC_RELAXED));
}

static void rtc_port_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct rtc *r = opaque;
	if (offset == 0) /* bit 7 masks NMI on a PC; there is no NMI source */
		__atomic_store_n(&r->index, (uint8_t)(value & 0x7F), __ATOMIC_RELAXED);
	else
		rtc_cmos_write(r, __atomic_load_n(&r->index, __ATOMIC_RELAXED), (uint8_t)value);
}

static const struct io_ops rtc_ops = { .read = rtc_port_read, .write = rtc_port_write };

static void put16(uint8_t *cmos, unsigned at, uint64_t v)
{
	v = MIN(v, 0xFFFF);
	cmos[at] = (uint8_t)v;
	cmos[at + 1] = (uint8_t)(v >> 8);
}

static void fill_firmware_bytes(struct rtc *r)
{
	const struct guest_ram *ram = &r->m->ram;
	uint8_t *cmos = r->cmos;
	uint64_t low = ram->low_size;
	put16(cmos, CMOS_BASE_MEM, 640);
	uint64_t ext_kib = low > 1 * MiB ? (low - 1 * MiB) / KiB : 0;
	put16(cmos, CMOS_EXT_MEM, ext_kib);
	put16(cmos, CMOS_EXT_MEM2, ext_kib);
	put16(cmos, CMOS_MEM_ABOVE_16M, low > 16 * MiB ? (low - 16 * MiB) / (64 * KiB) : 0);
	uint64_t high = MIN(ram->high_size / (64 * KiB), 0xFFFFFF);
	cmos[CMOS_MEM_ABOVE_4G] = (uint8_t)high;
	cmos[CMOS_MEM_ABOVE_4G + 1] = (uint8_t)(high >> 8);
	cmos[CMOS_MEM_ABOVE_4G + 2] = (uint8_t)(high >> 16);
	cmos[CMOS_CPU_COUNT] = (uint8_t)(r->m->ncpus ? r->m->ncpus - 1 : 0);
	cmos[CMOS_EQUIPMENT] = 0x02; /* math coprocessor, no floppy, VGA */
	unsigned sum = 0;
	for (unsigned i = 0x10; i <= 0x2D; i++)
		sum += cmos[i];
	cmos[CMOS_CHECKSUM] = (uint8_t)(sum >> 8);
	cmos[CMOS_CHECKSUM + 1] = (uint8_t)sum;
}

struct rtc *rtc_new(struct machine *m)
{
	struct rtc *r = xcalloc(1, sizeof(*r));
	r->m = m;
	pthread_mutex_init(&r->lock, NULL);
	/* As firmware leaves it: 32.768 kHz divider, 1024 Hz rate (the rate
	 * does nothing until PIE), 24-hour BCD, battery good. */
	r->cmos[RTC_REG_A] = DIVIDER_NORMAL | 0x06;
	r->cmos[RTC_REG_B] = RTC_B_24H;
	r->cmos[RTC_REG_D] = RTC_D_VRT;
	r->periodic_epoch = clock_ns();
	r->flags_sec = guest_now(r, NULL);
	store_time(r, r->flags_sec);
	fill_firmware_bytes(r);
	if (m->loop)
		r->timer = loop_timer_new(m->loop, timer_fired, r);
	int err = io_register(m->pio, PORT_RTC, 2, &rtc_ops, r, "rtc");
	if (err < 0) {
		log_err("rtc: cannot register ports %#x-%#x: %d", PORT_RTC, PORT_RTC + 1, err);
		rtc_free(r);
		return NULL;
	}
	return r;
}

void rtc_free(struct rtc *r)
{
	if (!r)
		return;
	loop_timer_free(r->timer);
	io_unregister(r->m->pio, PORT_RTC, r);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static void rtc_teardown(void *opaque)
{
	rtc_free(opaque);
}

int rtc_init(struct machine *m)
{
	struct rtc *r = rtc_new(m);
	if (!r)
		return -1;
	machine_on_teardown(m, rtc_teardown, r);
	return 0;
}
