/* The libslirp backend on a real event loop: the guest's ARP request for
 * the gateway is answered, and a host-forwarded port turns a host TCP
 * connection into frames towards the guest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/loop.h"
#include "lib/util.h"
#include "machine/machine.h"
#include "net/net.h"

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

struct rx_log {
	pthread_mutex_t lock;
	int frames, arp_replies, to_guest_tcp, arp_requests;
};

static bool deliver(void *opaque, const uint8_t *f, size_t len)
{
	struct rx_log *log = opaque;
	pthread_mutex_lock(&log->lock);
	log->frames++;
	if (len >= 42 && f[12] == 0x08 && f[13] == 0x06) {
		if (f[21] == 2 && !memcmp(f + 32, guest_mac, 6))
			log->arp_replies++;
		if (f[21] == 1)
			log->arp_requests++;
	}
	if (len >= 34 && f[12] == 0x08 && f[13] == 0x00 && f[23] == 6)
		log->to_guest_tcp++;
	pthread_mutex_unlock(&log->lock);
	return true;
}

static void *loop_main(void *opaque)
{
	loop_run(opaque);
	return NULL;
}

static int wait_for(struct rx_log *log, int *field)
{
	for (int i = 0; i < 3000; i++) {
		pthread_mutex_lock(&log->lock);
		int v = *field;
		pthread_mutex_unlock(&log->lock);
		if (v)
			return v;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return 0;
}

static void test_user_backend(void **state)
{
	struct machine m;
	memset(&m, 0, sizeof(m));
	m.loop = loop_new();
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, loop_main, m.loop), 0);

	/* Pick a free host port for the forward. */
	int probe = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(bind(probe, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t al = sizeof(a);
	getsockname(probe, (struct sockaddr *)&a, &al);
	close(probe);
	char spec[128];
	snprintf(spec, sizeof(spec), "user,hostfwd=tcp:127.0.0.1:%u-:80", ntohs(a.sin_port));

	struct net_options o;
	char err[256];
	assert_int_equal(net_parse_options(spec, &o, err, sizeof(err)), 0);
	struct net_backend *be = net_backend_open(&m, &o, err, sizeof(err));
	assert_non_null(be);
	assert_false(be->vnet_hdr);
	struct rx_log log = { .lock = PTHREAD_MUTEX_INITIALIZER };
	net_set_deliver(be, deliver, &log);
	be->ops->start(be);

	/* ARP: who has 10.0.2.2? tell 10.0.2.15 (with a zero vnet header). */
	uint8_t pkt[12 + 42] = { 0 };
	uint8_t *e = pkt + 12;
	memset(e, 0xff, 6);
	memcpy(e + 6, guest_mac, 6);
	e[12] = 0x08; e[13] = 0x06;
	e[14] = 0; e[15] = 1; e[16] = 0x08; e[17] = 0; e[18] = 6; e[19] = 4; e[20] = 0; e[21] = 1;
	memcpy(e + 22, guest_mac, 6);
	uint8_t gip[4] = { 10, 0, 2, 15 }, hip[4] = { 10, 0, 2, 2 };
	memcpy(e + 28, gip, 4);
	memcpy(e + 38, hip, 4);
	struct iovec iov = { pkt, sizeof(pkt) };
	assert_int_equal(net_send(be, &iov, 1), 0);
	assert_true(wait_for(&log, &log.arp_replies) >= 1);

	/* A host connection to the forwarded port reaches towards the guest
	 * (a TCP SYN to 10.0.2.15:80, after ARP if needed). */
	int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	connect(c, (struct sockaddr *)&a, sizeof(a));
	assert_true(wait_for(&log, &log.to_guest_tcp) >= 1);
	close(c);

	net_backend_close(be);
	net_options_free(&o);
	loop_stop(m.loop);
	pthread_join(th, NULL);
	loop_free(m.loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user_backend),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
