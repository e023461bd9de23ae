/* x87 FPU (placeholder until the full unit lands). */
#include "accel/emu/cpu.h"

void exec_x87_init(void)
{
}
