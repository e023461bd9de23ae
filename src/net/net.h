/* Network backends: where the frames of a virtual NIC go. Two kinds:
 * TAP (a host interface, /dev/net/tun) and user-mode networking (libslirp:
 * NAT, DHCP and DNS without privileges). A frontend (virtio-net) hands
 * frames to net_send and receives frames through its deliver callback,
 * which backends call on the event loop thread.
 *
 * Frames carry a 12-byte virtio_net_hdr_v1 in front when be->vnet_hdr is
 * true (TAP with IFF_VNET_HDR), plain Ethernet otherwise. */
#ifndef XVM_NET_NET_H
#define XVM_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct machine;
struct net_backend;

#define NET_MAX_HOSTFWD 16
#define NET_VNET_HDR_LEN 12

enum net_kind { NET_USER, NET_TAP };

struct net_hostfwd {
	bool udp;
	uint32_t host_addr;   /* network byte order; 0 = any */
	uint16_t host_port;
	uint16_t guest_port;
};

struct net_options {
	enum net_kind kind;
	char *ifname;         /* TAP */
	uint8_t mac[6];
	char *transport;      /* "pci" (default) or "mmio" */
	struct net_hostfwd fwd[NET_MAX_HOSTFWD];
	unsigned n_fwd;
};

/* Parses "user[,hostfwd=tcp:HOSTADDR:HOSTPORT-:GUESTPORT]...[,mac=..]" or
 * "tap=IFNAME[,mac=..]" (plus ",transport=mmio"). Without mac= a locally
 * administered address 52:54:00:12:34:(56+n) is chosen. */
int net_parse_options(const char *spec, struct net_options *o, char *err, size_t errlen);
void net_options_free(struct net_options *o);

/* Called by the backend with one received frame; returns false when the
 * frontend has no room (the backend may drop it, or hold it and retry
 * after net_rx_ready). Runs on the event loop thread. */
typedef bool (*net_deliver_fn)(void *opaque, const uint8_t *frame, size_t len);

/* Offloads a backend can take (frames with a vnet header whose flags ask
 * for a checksum or segmentation) and give (set_offloads). */
enum {
	NET_OFFLOAD_CSUM = 1 << 0,
	NET_OFFLOAD_TSO4 = 1 << 1,
	NET_OFFLOAD_TSO6 = 1 << 2,
	NET_OFFLOAD_ECN  = 1 << 3,
};

struct net_backend_ops {
	/* One frame from the guest (any thread). Returns 0 or -errno. */
	int (*send)(struct net_backend *be, const struct iovec *iov, unsigned n);
	/* The frontend has receive buffers again (any thread). */
	void (*rx_ready)(struct net_backend *be);
	/* Start delivering frames (after the frontend is set up). */
	void (*start)(struct net_backend *be);
	/* Which offloads delivered frames may use (NET_OFFLOAD_*); only
	 * backends with vnet_hdr. Returns 0 or -errno. Optional. */
	int (*set_offloads)(struct net_backend *be, unsigned offloads);
	void (*close)(struct net_backend *be);
};

struct net_backend {
	const struct net_backend_ops *ops;
	struct machine *m;
	bool vnet_hdr;
	net_deliver_fn deliver;
	void *deliver_opaque;
};

struct net_backend *net_backend_open(struct machine *m, const struct net_options *o,
				     char *err, size_t errlen);
static inline int net_send(struct net_backend *be, const struct iovec *iov, unsigned n)
{
	return be->ops->send(be, iov, n);
}
void net_set_deliver(struct net_backend *be, net_deliver_fn fn, void *opaque);
void net_backend_close(struct net_backend *be);

/* Backend constructors (net_backend_open picks one). */
struct net_backend *net_tap_open(struct machine *m, const struct net_options *o, char *err, size_t errlen);
struct net_backend *net_user_open(struct machine *m, const struct net_options *o, char *err, size_t errlen);

#endif
