/* --net option parsing and backend selection. */
#include "net/net.h"
#include "lib/log.h"
#include "lib/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool parse_mac(const char *s, uint8_t mac[6])
{
	unsigned b[6];
	char tail;
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
		return false;
	if (strlen(s) != 17)
		return false;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return !(mac[0] & 1); /* a multicast address cannot be a NIC's */
}

static bool parse_port(const char *s, uint16_t *port)
{
	uint64_t v;
	if (!parse_u64(s, &v) || v == 0 || v > 65535)
		return false;
	*port = (uint16_t)v;
	return true;
}

/* "tcp:HOSTADDR:HOSTPORT-[GUESTADDR]:GUESTPORT" (HOSTADDR may be empty). */
static bool parse_hostfwd(char *s, struct net_hostfwd *f)
{
	char *proto = s, *p = strchr(s, ':');
	if (!p)
		return false;
	*p++ = 0;
	if (!strcmp(proto, "tcp"))
		f->udp = false;
	else if (!strcmp(proto, "udp"))
		f->udp = true;
	else
		return false;
	char *host = p;
	char *dash = strchr(host, '-');
	if (!dash)
		return false;
	*dash = 0;
	char *guest = dash + 1;
	char *hport = strrchr(host, ':');
	if (!hport)
		return false;
	*hport++ = 0;
	struct in_addr a = { 0 };
	if (*host && inet_pton(AF_INET, host, &a) != 1)
		return false;
	f->host_addr = a.s_addr;
	if (!parse_port(hport, &f->host_port))
		return false;
	char *gport = strrchr(guest, ':');
	if (!gport)
		return false;
	*gport++ = 0;
	if (*guest && strcmp(guest, "10.0.2.15"))
		return false; /* the guest is always 10.0.2.15 (first DHCP address) */
	return parse_port(gport, &f->guest_port);
}

int net_parse_options(const char *spec, struct net_options *o, char *err, size_t errlen)
{
	static unsigned nics;
	memset(o, 0, sizeof(*o));
	uint8_t def_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, (uint8_t)(0x56 + nics++) };
	memcpy(o->mac, def_mac, 6);
	char *copy = xstrdup(spec), *cur = copy, *item, *val;
	bool kind_set = false;
	int r = -EINVAL;
	while ((item = opt_next(&cur))) {
		if (!kind_set) {
			kind_set = true;
			if (opt_key(item, "user", &val) && !val) {
				o->kind = NET_USER;
				continue;
			}
			if (opt_key(item, "tap", &val) && val && *val) {
				if (strlen(val) >= 16) {
					snprintf(err, errlen, "interface name '%s' is too long", val);
					goto out;
				}
				o->kind = NET_TAP;
				o->ifname = xstrdup(val);
				continue;
			}
			snprintf(err, errlen, "expected 'user' or 'tap=IFNAME' first, not '%s'", item);
			goto out;
		}
		if (opt_key(item, "mac", &val)) {
			if (!val || !parse_mac(val, o->mac)) {
				snprintf(err, errlen, "bad mac address (want xx:xx:xx:xx:xx:xx, unicast)");
				goto out;
			}
		} else if (opt_key(item, "transport", &val)) {
			if (!val || (strcmp(val, "pci") && strcmp(val, "mmio"))) {
				snprintf(err, errlen, "transport must be pci or mmio");
				goto out;
			}
			free(o->transport);
			o->transport = xstrdup(val);
		} else if (opt_key(item, "hostfwd", &val)) {
			if (o->kind != NET_USER) {
				snprintf(err, errlen, "hostfwd needs user-mode networking");
				goto out;
			}
			if (o->n_fwd == NET_MAX_HOSTFWD) {
				snprintf(err, errlen, "at most %d hostfwd rules", NET_MAX_HOSTFWD);
				goto out;
			}
			char *v = xstrdup(val ? val : "");
			bool ok = parse_hostfwd(v, &o->fwd[o->n_fwd]);
			free(v);
			if (!ok) {
				snprintf(err, errlen, "bad hostfwd '%s' (want tcp:[HOSTADDR]:HOSTPORT-:GUESTPORT)",
					 val ? val : "");
				goto out;
			}
			o->n_fwd++;
		} else {
			snprintf(err, errlen, "unknown option '%s'", item);
			goto out;
		}
	}
	if (!kind_set) {
		snprintf(err, errlen, "empty network spec (use 'user' or 'tap=IFNAME')");
		goto out;
	}
	r = 0;
out:
	free(copy);
	if (r < 0)
		net_options_free(o);
	return r;
}

void net_options_free(struct net_options *o)
{
	free(o->ifname);
	free(o->transport);
	o->ifname = o->transport = NULL;
}

struct net_backend *net_backend_open(struct machine *m, const struct net_options *o,
				     char *err, size_t errlen)
{
	return o->kind == NET_TAP ? net_tap_open(m, o, err, errlen) : net_user_open(m, o, err, errlen);
}

void net_set_deliver(struct net_backend *be, net_deliver_fn fn, void *opaque)
{
	be->deliver_opaque = opaque;
	__atomic_store_n(&be->deliver, fn, __ATOMIC_RELEASE);
}

void net_backend_close(struct net_backend *be)
{
	if (be)
		be->ops->close(be);
}
