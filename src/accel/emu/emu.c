/* Placeholder until the engine lands. */
#include "accel/accel.h"

#include <stdio.h>

static bool emu_probe(char *why, size_t len)
{
	snprintf(why, len, "the emu engine is not built yet");
	return false;
}

const struct accel_ops emu_accel_ops = {
	.name = "emu",
	.probe = emu_probe,
};
