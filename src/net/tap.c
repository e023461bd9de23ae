/* TAP backend: frames go to and come from a host tap interface
 * (/dev/net/tun). With IFF_VNET_HDR the kernel exchanges the same 12-byte
 * virtio-net header the guest uses, so no copy is needed to add or strip
 * it. Frames from the guest may ask for checksum or segmentation offload
 * (the kernel does it); frames to the guest use only the offloads the
 * guest accepted (set_offloads -> TUNSETOFFLOAD). */
#include "net/net.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/util.h"
#include "machine/machine.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define TAP_FRAME_MAX (65536 + NET_VNET_HDR_LEN)

struct tap {
	struct net_backend be;
	int fd;
	pthread_mutex_t lock;    /* held frame */
	uint8_t *buf;
	size_t held;             /* bytes of a frame the guest had no room for */
	bool paused;             /* not reading until rx_ready */
	bool started;
};

static int tap_send(struct net_backend *be, const struct iovec *iov, unsigned n)
{
	struct tap *t = (struct tap *)be;
	struct iovec v[64];
	unsigned k = 0;
	uint64_t skip = be->vnet_hdr ? 0 : NET_VNET_HDR_LEN;
	for (unsigned i = 0; i < n && k < ARRAY_SIZE(v); i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		v[k].iov_base = (uint8_t *)iov[i].iov_base + skip;
		v[k].iov_len = iov[i].iov_len - skip;
		skip = 0;
		k++;
	}
	ssize_t r = writev(t->fd, v, (int)k);
	if (r < 0 && errno != EAGAIN)
		log_once(LOG_WARN, "tap: write failed: %m");
	return r < 0 ? -errno : 0;
}

/* Reads and delivers frames until the tap is empty or the guest is full.
 * Loop thread. */
static void tap_pump(struct tap *t)
{
	pthread_mutex_lock(&t->lock);
	for (;;) {
		if (!t->held) {
			ssize_t r = read(t->fd, t->buf, TAP_FRAME_MAX);
			if (r <= 0)
				break;
			t->held = (size_t)r;
		}
		net_deliver_fn fn = __atomic_load_n(&t->be.deliver, __ATOMIC_ACQUIRE);
		if (!fn || !fn(t->be.deliver_opaque, t->buf, t->held)) {
			if (!t->paused) {
				t->paused = true;
				loop_mod_fd(t->be.m->loop, t->fd, 0);
			}
			break;
		}
		t->held = 0;
	}
	pthread_mutex_unlock(&t->lock);
}

static void tap_readable(void *opaque, uint32_t events)
{
	tap_pump(opaque);
}

static void tap_resume(void *opaque)
{
	struct tap *t = opaque;
	pthread_mutex_lock(&t->lock);
	bool was_paused = t->paused;
	t->paused = false;
	pthread_mutex_unlock(&t->lock);
	if (was_paused)
		loop_mod_fd(t->be.m->loop, t->fd, EPOLLIN);
	tap_pump(t);
}

static void tap_rx_ready(struct net_backend *be)
{
	struct tap *t = (struct tap *)be;
	if (__atomic_load_n(&t->paused, __ATOMIC_ACQUIRE))
		loop_call(be->m->loop, tap_resume, t);
}

static void tap_start(struct net_backend *be)
{
	struct tap *t = (struct tap *)be;
	if (!t->started && loop_add_fd(be->m->loop, t->fd, EPOLLIN, tap_readable, t) == 0)
		t->started = true;
}

static int tap_set_offloads(struct net_backend *be, unsigned offloads)
{
	struct tap *t = (struct tap *)be;
	unsigned flags = 0;
	if (offloads & NET_OFFLOAD_CSUM)
		flags |= TUN_F_CSUM;
	if (offloads & NET_OFFLOAD_TSO4)
		flags |= TUN_F_TSO4;
	if (offloads & NET_OFFLOAD_TSO6)
		flags |= TUN_F_TSO6;
	if (offloads & NET_OFFLOAD_ECN)
		flags |= TUN_F_TSO_ECN;
	if (!be->vnet_hdr)
		return offloads ? -ENOTSUP : 0;
	if (ioctl(t->fd, TUNSETOFFLOAD, flags) < 0) {
		log_once(LOG_WARN, "tap: cannot set offloads %#x: %m", flags);
		return -errno;
	}
	return 0;
}

static void tap_close(struct net_backend *be)
{
	struct tap *t = (struct tap *)be;
	if (t->started)
		loop_del_fd(be->m->loop, t->fd);
	close(t->fd);
	pthread_mutex_destroy(&t->lock);
	free(t->buf);
	free(t);
}

static const struct net_backend_ops tap_ops = {
	.send = tap_send,
	.rx_ready = tap_rx_ready,
	.start = tap_start,
	.set_offloads = tap_set_offloads,
	.close = tap_close,
};

struct net_backend *net_tap_open(struct machine *m, const struct net_options *o, char *err, size_t errlen)
{
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open /dev/net/tun: %s", strerror(errno));
		return NULL;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", o->ifname);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	bool vnet_hdr = true;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		/* Old kernels or restricted tuns: plain frames. */
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
		vnet_hdr = false;
		if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
			snprintf(err, errlen, "cannot attach to tap '%s': %s (does it exist and may you use it?)",
				 o->ifname, strerror(errno));
			close(fd);
			return NULL;
		}
	}
	if (vnet_hdr) {
		int len = NET_VNET_HDR_LEN;
		if (ioctl(fd, TUNSETVNETHDRSZ, &len) < 0) {
			snprintf(err, errlen, "tap '%s': cannot set the vnet header size: %s", o->ifname, strerror(errno));
			close(fd);
			return NULL;
		}
	}
	struct tap *t = xcalloc(1, sizeof(*t));
	t->be.ops = &tap_ops;
	t->be.m = m;
	t->be.vnet_hdr = vnet_hdr;
	t->fd = fd;
	t->buf = xmalloc(TAP_FRAME_MAX);
	pthread_mutex_init(&t->lock, NULL);
	return &t->be;
}
