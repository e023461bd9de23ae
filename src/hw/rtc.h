/* MC146818-compatible CMOS RTC at ports 0x70 (index; bit 7 = NMI mask) and
 * 0x71 (data), interrupt IRQ_RTC.
 *
 * The clock is the host's UTC time plus an offset the guest sets by
 * writing the time registers (under SET, or directly), so a guest that
 * sets its clock keeps it across reads without touching the host. Register
 * B selects BCD or binary and 12 or 24 hours for every read and write.
 * The update-in-progress flag (A bit 7) is set during the last 244 us of
 * each second, as on the real part. Periodic (rate in A), alarm and
 * update-ended flags in register C are computed when C is read (they are
 * set whether or not enabled); an enabled one raises IRQF and the
 * interrupt line until the guest reads C.
 *
 * CMOS memory holds what PC firmware leaves there: base memory (0x15),
 * extended memory (0x17, 0x30), memory above 16 MiB (0x34) and above
 * 4 GiB (0x5B), the CPU count minus one (0x5F), the century (0x32) and
 * the standard checksum (0x2E). */
#ifndef XVM_HW_RTC_H
#define XVM_HW_RTC_H

#include <stdint.h>

struct machine;
struct rtc;

/* Register indexes. */
#define RTC_SECONDS       0x00
#define RTC_SECONDS_ALARM 0x01
#define RTC_MINUTES       0x02
#define RTC_MINUTES_ALARM 0x03
#define RTC_HOURS         0x04
#define RTC_HOURS_ALARM   0x05
#define RTC_DAY_OF_WEEK   0x06
#define RTC_DAY_OF_MONTH  0x07
#define RTC_MONTH         0x08
#define RTC_YEAR          0x09
#define RTC_REG_A         0x0A
#define RTC_REG_B         0x0B
#define RTC_REG_C         0x0C
#define RTC_REG_D         0x0D
#define RTC_CENTURY       0x32 /* the FADT's CENTURY field points here */

#define RTC_A_UIP         0x80
#define RTC_B_SET         0x80
#define RTC_B_PIE         0x40
#define RTC_B_AIE         0x20
#define RTC_B_UIE         0x10
#define RTC_B_BINARY      0x04
#define RTC_B_24H         0x02
#define RTC_C_IRQF        0x80
#define RTC_C_PF          0x40
#define RTC_C_AF          0x20
#define RTC_C_UF          0x10
#define RTC_D_VRT         0x80

struct rtc *rtc_new(struct machine *m);
void rtc_free(struct rtc *r);
/* The board's RTC; freed at machine teardown. */
int rtc_init(struct machine *m);

/* CMOS register access (index 0..127) as the guest sees it. */
uint8_t rtc_cmos_read(struct rtc *r, uint8_t index);
void rtc_cmos_write(struct rtc *r, uint8_t index, uint8_t value);

#endif
