/* qcow2 images (placeholder until the driver lands). */
#include <errno.h>
#include <string.h>

#include "block/block_int.h"

static bool qcow2_probe(const uint8_t *buf, size_t len)
{
	return len >= 4 && !memcmp(buf, "QFI\xfb", 4);
}

static int qcow2_open(struct blockdev *bd, char *err, size_t errlen)
{
	return block_err(err, errlen, -ENOTSUP, "qcow2 is not supported yet");
}

const struct block_driver block_driver_qcow2 = {
	.name = "qcow2",
	.probe = qcow2_probe,
	.open = qcow2_open,
};
