/* Test harness, not part of xvm: serves xvm's virtio device models
 * (hw/virtio: the virtqueue code and virtio-blk or virtio-rng) to QEMU
 * over the vhost-user protocol, so the guest's real Linux drivers drive
 * our ring and request handling while QEMU provides the PCI transport.
 * Used by tests/check.d/virtio-vhost-user.sh on hosts where no engine of
 * ours can boot Linux yet.
 *
 *   vhost_user_dev SOCKET blk IMAGE     virtio-blk on a raw image
 *   vhost_user_dev SOCKET rng           virtio-rng
 *
 * Only the subset of vhost-user that QEMU uses for these devices with one
 * queue is implemented. Guest memory must be a shared memfd whose offsets
 * equal guest physical addresses (memory-backend-memfd below 4 GiB). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "block/block.h"
#include "hw/virtio/devices.h"
#include "hw/virtio/virtio.h"
#include "lib/log.h"
#include "lib/util.h"

enum {
	GET_FEATURES = 1, SET_FEATURES = 2, SET_OWNER = 3, SET_MEM_TABLE = 5,
	SET_VRING_NUM = 8, SET_VRING_ADDR = 9, SET_VRING_BASE = 10, GET_VRING_BASE = 11,
	SET_VRING_KICK = 12, SET_VRING_CALL = 13, SET_VRING_ERR = 14,
	GET_PROTOCOL_FEATURES = 15, SET_PROTOCOL_FEATURES = 16, GET_QUEUE_NUM = 17,
	SET_VRING_ENABLE = 18, GET_CONFIG = 24,
};
#define FLAG_VERSION      0x1
#define FLAG_REPLY        0x4
#define FLAG_NEED_REPLY   0x8
#define F_PROTOCOL_FEATURES 30
#define PROTOCOL_F_REPLY_ACK 3
#define PROTOCOL_F_CONFIG    9
#define MAX_QUEUES 8

struct msg {
	uint32_t request, flags, size;
	union {
		uint64_t u64;
		struct { uint32_t index, num; } state;
		struct { uint32_t index, flags; uint64_t desc, used, avail, log; } addr;
		struct { uint32_t nregions, pad; struct { uint64_t gpa, size, uva, off; } r[8]; } mem;
		struct { uint32_t offset, size, flags; uint8_t data[256]; } cfg;
		uint8_t raw[4096];
	} p;
} __attribute__((packed));

static struct {
	struct { uint64_t gpa, size, uva; } region[8];
	unsigned nregions;
	struct guest_ram ram;
	struct virtio_dev *v;
	struct blockdev *bd;
	uint64_t features;
	int kickfd[MAX_QUEUES], callfd[MAX_QUEUES];
	bool enabled[MAX_QUEUES], kicked[MAX_QUEUES];
} st;

static uint64_t uva_to_gpa(uint64_t uva)
{
	for (unsigned i = 0; i < st.nregions; i++)
		if (uva >= st.region[i].uva && uva - st.region[i].uva < st.region[i].size)
			return uva - st.region[i].uva + st.region[i].gpa;
	return ~0ULL; /* vq_enable refuses it */
}

/* Interrupts: the queue index rides in the vector (set in start_ring). */
static void notify(struct virtio_dev *v, uint16_t vector, uint8_t isr_bit)
{
	uint64_t one = 1;
	if (vector < MAX_QUEUES && st.callfd[vector] >= 0 && write(st.callfd[vector], &one, 8) != 8)
		perror("vhost-user: call eventfd");
}

static const struct virtio_transport_ops vhost_transport = { .notify = notify };

static int recv_msg(int s, struct msg *m, int *fds, int *nfds)
{
	char cbuf[CMSG_SPACE(8 * sizeof(int))];
	struct iovec iov = { m, 12 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	if (recvmsg(s, &mh, 0) != 12 || m->size > sizeof(m->p))
		return -1;
	*nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_type == SCM_RIGHTS) {
			*nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			memcpy(fds, CMSG_DATA(c), (size_t)*nfds * sizeof(int));
		}
	}
	return m->size ? read_full(s, &m->p, m->size) : 0;
}

static void reply(int s, struct msg *m, uint32_t size)
{
	m->flags = FLAG_VERSION | FLAG_REPLY;
	m->size = size;
	if (write_full(s, m, 12 + size) < 0)
		perror("vhost-user: reply");
}

/* A ring runs once it has addresses, a kick fd and is enabled; the
 * first one brings the device to DRIVER_OK with the driver's features. */
static void start_ring(unsigned q)
{
	struct virtio_dev *v = st.v;
	if (!v || q >= v->nvqs || !st.enabled[q] || !st.kicked[q] || v->vqs[q].enabled)
		return;
	if (!(virtio_get_status(v) & VIRTIO_STATUS_DRIVER_OK)) {
		v->guest_features = st.features & ~(1ULL << F_PROTOCOL_FEATURES);
		virtio_set_status(v, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	}
	v->vqs[q].msix_vector = (uint16_t)q;
	if (vq_enable(&v->vqs[q]) < 0)
		fprintf(stderr, "vhost-user: ring %u refused\n", q);
	if (!(virtio_get_status(v) & VIRTIO_STATUS_DRIVER_OK))
		virtio_set_status(v, 0x0f);
}

static void set_mem_table(struct msg *m, int fd)
{
	uint64_t top = 0;
	st.nregions = MIN(m->p.mem.nregions, 8u);
	for (unsigned i = 0; i < st.nregions; i++) {
		st.region[i].gpa = m->p.mem.r[i].gpa;
		st.region[i].size = m->p.mem.r[i].size;
		st.region[i].uva = m->p.mem.r[i].uva;
		if (m->p.mem.r[i].gpa < 4 * GiB)
			top = MAX(top, m->p.mem.r[i].gpa + m->p.mem.r[i].size);
	}
	if (st.ram.host)
		munmap(st.ram.host, st.ram.size);
	void *h = mmap(NULL, top, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (h == MAP_FAILED)
		die("vhost-user: cannot map guest memory: %m");
	st.ram.host = h;
	st.ram.size = st.ram.low_size = top;
}

static struct virtio_dev *new_device(struct guest_ram *ram)
{
	return st.bd ? virtio_blk_new(NULL, ram, st.bd, false, "xvm-vhost") : virtio_rng_new(NULL, ram);
}

static void handle(int s, struct msg *m, int *fds, int nfds)
{
	bool replied = false;
	unsigned q = m->p.state.index % MAX_QUEUES;
	switch (m->request) {
	case GET_FEATURES: {
		/* What the device offers plus vhost-user's own bit. */
		struct guest_ram none = { 0 };
		struct virtio_dev *t = new_device(&none);
		m->p.u64 = t->host_features | 1ULL << F_PROTOCOL_FEATURES;
		st.bd ? virtio_blk_free(t) : virtio_rng_free(t);
		reply(s, m, 8);
		replied = true;
		break;
	}
	case SET_FEATURES:
		st.features = m->p.u64;
		break;
	case GET_PROTOCOL_FEATURES:
		m->p.u64 = 1ULL << PROTOCOL_F_REPLY_ACK | (st.bd ? 1ULL << PROTOCOL_F_CONFIG : 0);
		reply(s, m, 8);
		replied = true;
		break;
	case GET_QUEUE_NUM:
		m->p.u64 = 1;
		reply(s, m, 8);
		replied = true;
		break;
	case SET_MEM_TABLE:
		if (nfds < 1)
			die("vhost-user: memory table without fds");
		set_mem_table(m, fds[0]);
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		if (!st.v) {
			st.v = new_device(&st.ram);
			st.v->transport = &vhost_transport;
		}
		break;
	case SET_VRING_NUM:
		if (st.v && q < st.v->nvqs)
			st.v->vqs[q].num = (uint16_t)m->p.state.num;
		break;
	case SET_VRING_ADDR:
		if (st.v && q < st.v->nvqs) {
			struct virtqueue *vq = &st.v->vqs[q];
			vq->desc_gpa = uva_to_gpa(m->p.addr.desc);
			vq->avail_gpa = uva_to_gpa(m->p.addr.avail);
			vq->used_gpa = uva_to_gpa(m->p.addr.used);
		}
		break;
	case GET_VRING_BASE:
		/* The ring stops: our device resets (features may change). */
		m->p.state.num = st.v && q < st.v->nvqs ? st.v->vqs[q].last_avail : 0;
		reply(s, m, 8);
		replied = true;
		if (st.v)
			virtio_set_status(st.v, 0);
		memset(st.kicked, 0, sizeof(st.kicked));
		break;
	case SET_VRING_KICK:
	case SET_VRING_CALL:
	case SET_VRING_ERR: {
		unsigned idx = (unsigned)(m->p.u64 & 0xff) % MAX_QUEUES;
		int fd = (m->p.u64 & 0x100) || nfds < 1 ? -1 : fds[0];
		if (m->request == SET_VRING_KICK) {
			st.kickfd[idx] = fd;
			st.kicked[idx] = fd >= 0;
			start_ring(idx);
		} else if (m->request == SET_VRING_CALL) {
			st.callfd[idx] = fd;
		} else if (fd >= 0) {
			close(fd);
		}
		break;
	}
	case SET_VRING_ENABLE:
		st.enabled[q] = m->p.state.num != 0;
		start_ring(q);
		break;
	case GET_CONFIG: {
		uint32_t off = MIN(m->p.cfg.offset, 256u), n = MIN(m->p.cfg.size, 256u - off);
		struct guest_ram none = { 0 };
		struct virtio_dev *t = st.v ? st.v : new_device(&none);
		memcpy(m->p.cfg.data, t->config + off, n);
		if (!st.v)
			virtio_blk_free(t);
		reply(s, m, 12 + m->p.cfg.size);
		replied = true;
		break;
	}
	default: /* SET_OWNER, SET_VRING_BASE (0 at start), SET_PROTOCOL_FEATURES ... */
		break;
	}
	if (!replied && (m->flags & FLAG_NEED_REPLY)) {
		m->p.u64 = 0;
		reply(s, m, 8);
	}
}

int main(int argc, char **argv)
{
	if (argc < 3 || (!strcmp(argv[2], "blk") && argc != 4) || (strcmp(argv[2], "blk") && strcmp(argv[2], "rng"))) {
		fprintf(stderr, "usage: vhost_user_dev SOCKET blk IMAGE | SOCKET rng\n");
		return 2;
	}
	for (int i = 0; i < MAX_QUEUES; i++)
		st.kickfd[i] = st.callfd[i] = -1;
	if (!strcmp(argv[2], "blk")) {
		char err[256];
		if (block_open(argv[3], "raw", 0, &st.bd, err, sizeof(err)) < 0)
			die("%s", err);
	}
	int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
	unlink(argv[1]);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 1) < 0)
		die("vhost-user: cannot listen on %s: %m", argv[1]);
	int s = accept(ls, NULL, NULL);
	if (s < 0)
		die("vhost-user: accept: %m");
	for (;;) {
		struct pollfd p[1 + MAX_QUEUES];
		int n = 0;
		p[n++] = (struct pollfd){ s, POLLIN, 0 };
		for (int i = 0; i < MAX_QUEUES; i++)
			if (st.kickfd[i] >= 0)
				p[n++] = (struct pollfd){ st.kickfd[i], POLLIN, 0 };
		if (poll(p, (nfds_t)n, -1) < 0)
			continue;
		for (int i = 1; i < n; i++) {
			uint64_t cnt;
			if ((p[i].revents & POLLIN) && read(p[i].fd, &cnt, 8) == 8)
				for (int q = 0; q < MAX_QUEUES; q++)
					if (st.kickfd[q] == p[i].fd && st.v)
						virtio_queue_kick(st.v, (unsigned)q);
		}
		if (!(p[0].revents & (POLLIN | POLLHUP)))
			continue;
		struct msg m;
		int fds[8], nfds;
		if (recv_msg(s, &m, fds, &nfds) < 0)
			break;
		handle(s, &m, fds, nfds);
	}
	/* QEMU is gone (the guest powered off). */
	int bad = st.v && (virtio_get_status(st.v) & VIRTIO_STATUS_NEEDS_RESET);
	if (st.v)
		st.bd ? virtio_blk_free(st.v) : virtio_rng_free(st.v);
	if (st.bd)
		block_close(st.bd);
	if (bad)
		fprintf(stderr, "vhost-user: device ended in NEEDS_RESET\n");
	return bad;
}
