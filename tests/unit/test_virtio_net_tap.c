/* The TAP backend against a real tap interface (skipped without
 * CAP_NET_ADMIN): frames sent by the guest arrive on the host interface,
 * frames the host kernel emits arrive at the frontend with a vnet header,
 * and a frontend without room pauses the reader until rx_ready. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/loop.h"
#include "lib/util.h"
#include "machine/machine.h"
#include "net/net.h"

struct rx_state {
	pthread_mutex_t lock;
	int frames;
	bool full;         /* pretend the guest has no buffers */
	int refused;
};

static bool deliver(void *opaque, const uint8_t *frame, size_t len)
{
	struct rx_state *s = opaque;
	pthread_mutex_lock(&s->lock);
	bool ok = !s->full;
	if (ok && len > NET_VNET_HDR_LEN + 14)
		s->frames++;
	else if (!ok)
		s->refused++;
	pthread_mutex_unlock(&s->lock);
	return ok;
}

static void *loop_main(void *opaque)
{
	loop_run(opaque);
	return NULL;
}

static uint64_t stat_counter(const char *ifname, const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/%s", ifname, name);
	FILE *f = fopen(path, "r");
	unsigned long long v = 0;
	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

static int get(struct rx_state *s, int *field)
{
	pthread_mutex_lock(&s->lock);
	int v = *field;
	pthread_mutex_unlock(&s->lock);
	return v;
}

static void test_tap(void **state)
{
	int probe = open("/dev/net/tun", O_RDWR);
	if (probe < 0) {
		skip();
		return;
	}
	close(probe);
	char ifname[IFNAMSIZ];
	snprintf(ifname, sizeof(ifname), "xvmt%d", (int)getpid() % 100000);
	char spec[64];
	snprintf(spec, sizeof(spec), "tap=%s", ifname);

	struct machine m;
	memset(&m, 0, sizeof(m));
	m.loop = loop_new();
	struct net_options o;
	char err[256];
	assert_int_equal(net_parse_options(spec, &o, err, sizeof(err)), 0);
	struct net_backend *be = net_backend_open(&m, &o, err, sizeof(err));
	if (!be) {
		/* No CAP_NET_ADMIN here: nothing to test. */
		net_options_free(&o);
		loop_free(m.loop);
		skip();
		return;
	}
	assert_true(be->vnet_hdr);
	assert_int_equal(be->ops->set_offloads(be, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4 | NET_OFFLOAD_TSO6), 0);
	assert_int_equal(be->ops->set_offloads(be, 0), 0);
	struct rx_state rs = { .lock = PTHREAD_MUTEX_INITIALIZER, .full = true };
	net_set_deliver(be, deliver, &rs);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, loop_main, m.loop), 0);
	be->ops->start(be);

	/* Bring the interface up: the kernel starts emitting IPv6 frames
	 * (router solicitations, MLD) into the tap. */
	int sk = socket(AF_INET, SOCK_DGRAM, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	assert_int_equal(ioctl(sk, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	assert_int_equal(ioctl(sk, SIOCSIFFLAGS, &ifr), 0);

	/* Guest -> host: one broadcast ARP frame behind a zero vnet header. */
	uint64_t rx_before = stat_counter(ifname, "rx_packets");
	uint8_t pkt[NET_VNET_HDR_LEN + 42] = { 0 };
	uint8_t *e = pkt + NET_VNET_HDR_LEN;
	memset(e, 0xff, 6);
	memcpy(e + 6, "\x52\x54\x00\x12\x34\x56", 6);
	e[12] = 0x08; e[13] = 0x06;
	e[15] = 1; e[16] = 0x08; e[18] = 6; e[19] = 4; e[21] = 1;
	struct iovec iov[2] = { { pkt, NET_VNET_HDR_LEN }, { e, 42 } };
	assert_int_equal(net_send(be, iov, 2), 0);
	assert_true(stat_counter(ifname, "rx_packets") > rx_before);

	/* Host -> guest while the guest is full: the backend holds the frame
	 * and stops reading; rx_ready resumes and the frame arrives. */
	for (int i = 0; i < 4000 && !get(&rs, &rs.refused); i++)
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	if (get(&rs, &rs.refused)) {
		pthread_mutex_lock(&rs.lock);
		rs.full = false;
		pthread_mutex_unlock(&rs.lock);
		be->ops->rx_ready(be);
		for (int i = 0; i < 2000 && !get(&rs, &rs.frames); i++)
			nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
		assert_true(get(&rs, &rs.frames) >= 1);
	} else {
		print_message("no frame from the host kernel within 4 s (IPv6 disabled?)\n");
	}
	close(sk);
	net_backend_close(be); /* the tap (not persistent) disappears */
	net_options_free(&o);
	loop_stop(m.loop);
	pthread_join(th, NULL);
	loop_free(m.loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
