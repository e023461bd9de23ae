/* The console back end: where the guest's serial (or virtio) console output
 * goes and where its input comes from.
 *
 *   stdio   output to stdout; input from stdin. When stdin is the
 *           controlling terminal and xvm is in the foreground, the terminal
 *           goes raw (output post-processing stays on, so log lines still
 *           start at column 0), every key goes to the guest and Ctrl-a is
 *           the escape key: Ctrl-a x quits, Ctrl-a Ctrl-a sends Ctrl-a,
 *           Ctrl-a h prints help. The terminal is restored on every exit
 *           path (close, die(), exit(), fatal signals). Otherwise (pipes,
 *           files, /dev/null, CI) bytes pass through unchanged and EOF on
 *           stdin just ends input.
 *   file    output appended to PATH (truncated on the first boot of this
 *           process, kept across guest reboots); no input.
 *   none    output discarded; no input.
 *   virtio  the terminal as for stdio; the virtio console device takes the
 *           input with console_set_input.
 *
 * Output: console_write copies into a 64 KiB buffer that a writer thread
 * drains, so a vCPU never waits on the terminal. When the buffer is full
 * (the reader is slower than the guest), the writer blocks the vCPU for at
 * most CONSOLE_STALL_MS waiting for room, which paces a chatty guest to the
 * reader's speed without losing output. If that wait times out (a reader
 * that stopped reading), output is dropped — counted, logged once — until
 * the buffer has drained, so a stuck reader cannot freeze the guest.
 *
 * Input: read on the event-loop thread and handed to the input function,
 * which returns how many bytes it took. The rest is kept and the console
 * stops reading its fd (back-pressure: nothing is lost) until the device
 * calls console_resume_input (from any thread) when it has room again. */
#ifndef XVM_VMM_CONSOLE_H
#define XVM_VMM_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "machine/machine.h"

#define CONSOLE_STALL_MS 200

struct console;

/* Returns bytes accepted (0..len); fewer than len pauses input. Runs on
 * the event-loop thread. */
typedef size_t (*console_input_fn)(void *opaque, const uint8_t *buf, size_t len);

/* Opens the back end for m (its event loop carries input). path is for
 * CONSOLE_FILE. Returns NULL after logging a one-line reason. */
struct console *console_open(struct machine *m, enum console_mode mode, const char *path);
/* Flushes what is buffered (bounded wait), restores the terminal, frees. */
void console_close(struct console *c);

/* Thread-safe; never blocks longer than CONSOLE_STALL_MS. */
void console_write(struct console *c, const void *buf, size_t len);
/* Waits (bounded, a few seconds at most) until buffered output is written. */
void console_flush(struct console *c);

/* Sets (or with fn NULL, clears) the receiver of input. Input that arrives
 * with no receiver is held back (not read), not dropped. */
void console_set_input(struct console *c, console_input_fn fn, void *opaque);
/* Clears the receiver if it is still the one with this opaque (a device
 * going away must not unhook a device that took the input over). */
void console_detach_input(struct console *c, void *opaque);
/* Stops / restarts reading input. Thread-safe, never blocks (callable
 * with a device lock held). Resume also retries the bytes the receiver
 * refused last time, and cancels a pause. */
void console_pause_input(struct console *c);
void console_resume_input(struct console *c);

/* Bytes dropped because the output reader stalled (for tests, stats). */
uint64_t console_dropped_bytes(struct console *c);

#endif
