/* SSE/SSE2 (placeholder). */
#include "accel/emu/cpu.h"

void exec_sse_init(void)
{
}
