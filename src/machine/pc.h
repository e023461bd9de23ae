/* Board wiring of the xvm PC: which devices exist, at which ports,
 * addresses and interrupt lines (machine/layout.h). vmm/vm.c calls
 * pc_create_devices() once guest RAM, the address spaces, the event loop
 * and the engine's VM exist, and before the boot loader runs. */
#ifndef XVM_MACHINE_PC_H
#define XVM_MACHINE_PC_H

struct machine;

/* Creates every device of the board for m->cfg. Each device registers its
 * ranges on m->pio / m->mmio, its fds and timers on m->loop, and frees
 * itself through machine_on_teardown(). Returns 0, or -1 after logging a
 * one-line reason (e.g. a disk image that cannot be opened). */
int pc_create_devices(struct machine *m);

#endif
