/* Placeholder until the engine lands. */
#include "accel/accel.h"

#include <stdio.h>

static bool kvm_probe(char *why, size_t len)
{
	snprintf(why, len, "the kvm engine is not built yet");
	return false;
}

const struct accel_ops kvm_accel_ops = {
	.name = "kvm",
	.probe = kvm_probe,
};
