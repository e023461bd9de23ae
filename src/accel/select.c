#include "accel/accel.h"
#include "lib/log.h"

#include <string.h>

/* Placeholder policy until `xvm ok`'s measurement lands (accel/kvm). */
const struct accel_ops *accel_select(const char *name)
{
	char why[256] = "";
	if (!strcmp(name, "kvm") || !strcmp(name, "emu")) {
		const struct accel_ops *ops = !strcmp(name, "kvm") ? &kvm_accel_ops : &emu_accel_ops;
		if (!ops->probe(why, sizeof(why))) {
			log_err("accelerator '%s' is not usable: %s", name, why);
			return NULL;
		}
		return ops;
	}
	if (!strcmp(name, "auto")) {
		if (kvm_accel_ops.probe(why, sizeof(why)))
			return &kvm_accel_ops;
		if (emu_accel_ops.probe(why, sizeof(why)))
			return &emu_accel_ops;
		log_err("no usable accelerator: %s", why);
		return NULL;
	}
	log_err("unknown accelerator '%s' (use auto, kvm or emu)", name);
	return NULL;
}
