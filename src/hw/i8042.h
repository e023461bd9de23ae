/* i8042 keyboard controller (ports 0x60 data, 0x64 status/command) with a
 * PS/2 keyboard and mouse that answer the commands drivers send at boot
 * (no keys are ever pressed: the console goes to the UART), plus the PC's
 * other reset paths: controller command 0xFE (pulse the reset line) and
 * port 0x92 bit 0 (fast reset; bit 1 is the A20 gate, stored only since
 * xvm never masks A20).
 *
 * Port 0x61 (speaker gate, PIT channel 2 output in bit 5) belongs to the
 * PIT when an emulated one exists (hw/pit.h); otherwise (KVM's in-kernel
 * PIT, which handles 0x61 itself, or no PIT) this device registers a stub
 * that stores the gate bits and toggles the refresh bit 4, which is enough
 * for the delay loops that poll it. */
#ifndef XVM_HW_I8042_H
#define XVM_HW_I8042_H

#include <stdint.h>

struct machine;
struct i8042;

/* Status register bits. */
#define I8042_STR_OBF    0x01 /* output buffer full */
#define I8042_STR_IBF    0x02
#define I8042_STR_SYS    0x04
#define I8042_STR_CMD    0x08 /* last write was to the command port */
#define I8042_STR_UNLOCK 0x10 /* keyboard not inhibited */
#define I8042_STR_AUXOBF 0x20 /* output buffer holds mouse data */

/* Controller command byte bits. */
#define I8042_CTR_KBDINT 0x01
#define I8042_CTR_AUXINT 0x02
#define I8042_CTR_SYS    0x04
#define I8042_CTR_KBDDIS 0x10
#define I8042_CTR_AUXDIS 0x20
#define I8042_CTR_XLATE  0x40

struct i8042 *i8042_new(struct machine *m);
void i8042_free(struct i8042 *k);
/* Creates the board's controller, port 0x92 and (if free) port 0x61;
 * freed at machine teardown. */
int i8042_init(struct machine *m);

/* Port access as the guest sees it (also used by the port ops). */
uint8_t i8042_read_data(struct i8042 *k);
uint8_t i8042_read_status(struct i8042 *k);
void i8042_write_data(struct i8042 *k, uint8_t v);
void i8042_write_command(struct i8042 *k, uint8_t v);

#endif
