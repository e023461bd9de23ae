/* virtio-rng (virtio 1.x section 5.4): fills every buffer the driver posts
 * with bytes from the host's getrandom(). Cheap enough to run on the
 * thread that rang the doorbell. */
#include "hw/virtio/devices.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#define RNG_QUEUE_SIZE   64
#define RNG_MAX_REQUEST  (64 * 1024) /* bytes served per buffer chain */

static uint64_t fill_random(struct iovec *iov, unsigned n, uint64_t limit)
{
	uint64_t done = 0;
	for (unsigned i = 0; i < n && done < limit; i++) {
		uint8_t *p = iov[i].iov_base;
		size_t want = MIN((uint64_t)iov[i].iov_len, limit - done);
		while (want) {
			ssize_t r = getrandom(p, want, 0);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				log_once(LOG_WARN, "virtio-rng: getrandom failed: %m");
				return done;
			}
			p += r;
			want -= (size_t)r;
			done += (uint64_t)r;
		}
	}
	return done;
}

static void rng_queue_notify(struct virtio_dev *v, unsigned q)
{
	struct virtq_elem *e;
	while (virtio_pop(v, 0, &e) > 0) {
		uint64_t n = fill_random(e->in, e->n_in, RNG_MAX_REQUEST);
		virtio_push(v, 0, e, (uint32_t)n);
	}
}

static const struct virtio_device_ops rng_ops = {
	.queue_notify = rng_queue_notify,
};

struct virtio_dev *virtio_rng_new(struct machine *m, struct guest_ram *ram)
{
	struct virtio_dev *v = xcalloc(1, sizeof(*v));
	virtio_dev_init(v, m, ram, "virtio-rng", VIRTIO_ID_RNG, 0, 1, RNG_QUEUE_SIZE, &rng_ops, NULL);
	return v;
}

void virtio_rng_free(struct virtio_dev *v)
{
	if (!v)
		return;
	virtio_dev_destroy(v);
	free(v);
}
