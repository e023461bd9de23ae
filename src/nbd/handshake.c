/* The NBD fixed newstyle handshake: option haggling until NBD_OPT_GO or
 * NBD_OPT_EXPORT_NAME. Every length a client sends is checked against
 * the option's own length before anything is read or allocated. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "block/block.h"
#include "lib/log.h"
#include "lib/util.h"
#include "nbd/conn.h"
#include "nbd/proto.h"

/* Preferred block size advertised in NBD_INFO_BLOCK_SIZE. */
#define NBD_PREFERRED_BLOCK 4096

static int send_reply(struct nbd_conn *c, uint32_t opt, uint32_t type,
		      const void *data, uint32_t len)
{
	uint8_t hdr[20];
	put64(hdr, NBD_MAGIC_OPT_REPLY);
	put32(hdr + 8, opt);
	put32(hdr + 12, type);
	put32(hdr + 16, len);
	struct iovec iov[2] = {
		{ hdr, sizeof(hdr) },
		{ (void *)data, len },
	};
	return nbd_sendv(c->fd, iov, len ? 2 : 1);
}

/* An error reply with a message for the human behind the client. */
static int send_error(struct nbd_conn *c, uint32_t opt, uint32_t type, const char *msg)
{
	return send_reply(c, opt, type, msg, (uint32_t)strlen(msg));
}

static uint64_t export_size(const struct nbd_conn *c)
{
	return block_size(c->exp->bd);
}

static bool name_matches(const struct nbd_conn *c, const uint8_t *name, uint32_t len)
{
	/* The empty name selects the default (our only) export. */
	if (len == 0)
		return true;
	size_t ours = strlen(c->exp->name);
	return len == ours && !memcmp(name, c->exp->name, len);
}

static int send_info(struct nbd_conn *c, uint32_t opt, uint16_t type)
{
	uint8_t buf[2 + NBD_MAX_STRING];
	uint32_t len = 2;
	put16(buf, type);
	switch (type) {
	case NBD_INFO_EXPORT:
		put64(buf + 2, export_size(c));
		put16(buf + 10, c->tflags);
		len = 12;
		break;
	case NBD_INFO_NAME:
	case NBD_INFO_DESCRIPTION: {
		const char *s = type == NBD_INFO_NAME ? c->exp->name : c->exp->description;
		size_t n = s ? MIN(strlen(s), (size_t)NBD_MAX_STRING) : 0;
		memcpy(buf + 2, s ? s : "", n);
		len = 2 + (uint32_t)n;
		break;
	}
	case NBD_INFO_BLOCK_SIZE:
		put32(buf + 2, 1);
		put32(buf + 6, NBD_PREFERRED_BLOCK);
		put32(buf + 10, NBD_MAX_REQUEST);
		len = 14;
		break;
	}
	return send_reply(c, opt, NBD_REP_INFO, buf, len);
}

/* NBD_OPT_INFO and NBD_OPT_GO: name, then a list of info requests.
 * Returns 1 if GO succeeded (enter transmission). */
static int opt_info_go(struct nbd_conn *c, uint32_t opt, const uint8_t *data, uint32_t len)
{
	if (len < 6)
		return send_error(c, opt, NBD_REP_ERR_INVALID, "option too short");
	uint32_t namelen = get32(data);
	if (namelen > len - 6 || namelen > NBD_MAX_STRING)
		return send_error(c, opt, NBD_REP_ERR_INVALID, "export name length out of bounds");
	uint16_t nreq = get16(data + 4 + namelen);
	if ((uint64_t)4 + namelen + 2 + 2ull * nreq != len)
		return send_error(c, opt, NBD_REP_ERR_INVALID, "information request list has the wrong length");
	if (!name_matches(c, data + 4, namelen))
		return send_error(c, opt, NBD_REP_ERR_UNKNOWN, "no such export");

	bool want_name = false, want_desc = false, want_bs = false;
	for (unsigned i = 0; i < nreq; i++) {
		uint16_t t = get16(data + 4 + namelen + 2 + 2 * i);
		want_name |= t == NBD_INFO_NAME;
		want_desc |= t == NBD_INFO_DESCRIPTION;
		want_bs |= t == NBD_INFO_BLOCK_SIZE;
	}
	int ret = send_info(c, opt, NBD_INFO_EXPORT);
	if (!ret && want_name)
		ret = send_info(c, opt, NBD_INFO_NAME);
	if (!ret && want_desc && c->exp->description)
		ret = send_info(c, opt, NBD_INFO_DESCRIPTION);
	if (!ret && want_bs)
		ret = send_info(c, opt, NBD_INFO_BLOCK_SIZE);
	if (!ret)
		ret = send_reply(c, opt, NBD_REP_ACK, NULL, 0);
	if (ret < 0)
		return ret;
	return opt == NBD_OPT_GO ? 1 : 0;
}

static int opt_list(struct nbd_conn *c, uint32_t opt, uint32_t len)
{
	if (len)
		return send_error(c, opt, NBD_REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
	const char *name = c->exp->name, *desc = c->exp->description ? c->exp->description : "";
	size_t nl = MIN(strlen(name), (size_t)NBD_MAX_STRING);
	size_t dl = MIN(strlen(desc), (size_t)NBD_MAX_STRING);
	uint8_t buf[4 + 2 * NBD_MAX_STRING];
	put32(buf, (uint32_t)nl);
	memcpy(buf + 4, name, nl);
	memcpy(buf + 4 + nl, desc, dl);
	int ret = send_reply(c, opt, NBD_REP_SERVER, buf, (uint32_t)(4 + nl + dl));
	if (ret < 0)
		return ret;
	return send_reply(c, opt, NBD_REP_ACK, NULL, 0);
}

static int send_meta_context(struct nbd_conn *c, uint32_t opt, uint32_t id)
{
	uint8_t buf[4 + sizeof(NBD_META_BASE_ALLOCATION)];
	put32(buf, id);
	memcpy(buf + 4, NBD_META_BASE_ALLOCATION, strlen(NBD_META_BASE_ALLOCATION));
	return send_reply(c, opt, NBD_REP_META_CONTEXT, buf,
			  (uint32_t)(4 + strlen(NBD_META_BASE_ALLOCATION)));
}

static bool query_is(const uint8_t *q, uint32_t qlen, const char *s)
{
	return qlen == strlen(s) && !memcmp(q, s, qlen);
}

/* NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT. We know one
 * context, base:allocation (id 1 when selected). */
static int opt_meta_context(struct nbd_conn *c, uint32_t opt, const uint8_t *data, uint32_t len)
{
	bool set = opt == NBD_OPT_SET_META_CONTEXT;
	if (set)
		c->meta_base_allocation = false; /* replaced even when this fails */
	if (!c->structured)
		return send_error(c, opt, NBD_REP_ERR_INVALID, "structured replies not negotiated");
	if (len < 8)
		return send_error(c, opt, NBD_REP_ERR_INVALID, "option too short");
	uint32_t namelen = get32(data);
	if (namelen > len - 8 || namelen > NBD_MAX_STRING)
		return send_error(c, opt, NBD_REP_ERR_INVALID, "export name length out of bounds");
	const uint8_t *name = data + 4;
	uint32_t pos = 4 + namelen;
	uint32_t nq = get32(data + pos);
	pos += 4;
	/* Validate the whole list before answering anything. */
	bool match = false;
	uint32_t p = pos;
	for (uint32_t i = 0; i < nq; i++) {
		if (len - p < 4)
			return send_error(c, opt, NBD_REP_ERR_INVALID, "query list truncated");
		uint32_t ql = get32(data + p);
		p += 4;
		if (ql > len - p || ql > NBD_MAX_STRING)
			return send_error(c, opt, NBD_REP_ERR_INVALID, "query length out of bounds");
		const uint8_t *q = data + p;
		p += ql;
		if (query_is(q, ql, NBD_META_BASE_ALLOCATION) || (!set && query_is(q, ql, "base:")))
			match = true;
	}
	if (p != len)
		return send_error(c, opt, NBD_REP_ERR_INVALID, "trailing bytes after the query list");
	if (!name_matches(c, name, namelen))
		return send_error(c, opt, NBD_REP_ERR_UNKNOWN, "no such export");
	if (!set && nq == 0)
		match = true; /* an empty list asks for every context */
	int ret = 0;
	if (match) {
		ret = send_meta_context(c, opt, set ? 1 : 0);
		if (set && !ret)
			c->meta_base_allocation = true;
	}
	if (ret < 0)
		return ret;
	return send_reply(c, opt, NBD_REP_ACK, NULL, 0);
}

/* NBD_OPT_EXPORT_NAME cannot fail politely: a wrong name ends the session. */
static int opt_export_name(struct nbd_conn *c, const uint8_t *data, uint32_t len)
{
	if (!name_matches(c, data, len))
		return -ENOENT;
	uint8_t buf[8 + 2 + 124] = { 0 };
	put64(buf, export_size(c));
	put16(buf + 8, c->tflags);
	int ret = nbd_send(c->fd, buf, c->no_zeroes ? 10 : sizeof(buf));
	return ret < 0 ? ret : 1;
}

static void set_tflags(struct nbd_conn *c)
{
	uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
		     NBD_FLAG_CAN_MULTI_CONN | NBD_FLAG_SEND_CACHE;
	if (c->exp->readonly)
		f |= NBD_FLAG_READ_ONLY;
	else
		f |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES;
	if (c->structured)
		f |= NBD_FLAG_SEND_DF;
	c->tflags = f;
}

int nbd_handshake(struct nbd_conn *c)
{
	uint8_t hello[18];
	put64(hello, NBD_MAGIC_INIT);
	put64(hello + 8, NBD_MAGIC_OPT);
	put16(hello + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	int ret = nbd_send(c->fd, hello, sizeof(hello));
	if (ret < 0)
		return ret;
	uint8_t cflags_buf[4];
	ret = nbd_recv(c->fd, cflags_buf, 4);
	if (ret < 0)
		return ret;
	uint32_t cflags = get32(cflags_buf);
	if (cflags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
		return -EPROTO; /* the spec says: drop a client with unknown flags */
	c->no_zeroes = cflags & NBD_FLAG_C_NO_ZEROES;

	uint8_t *data = xmalloc(NBD_MAX_OPTION);
	for (unsigned n = 0; n < NBD_MAX_OPTIONS; n++) {
		uint8_t hdr[16];
		ret = nbd_recv(c->fd, hdr, sizeof(hdr));
		if (ret < 0)
			break;
		if (get64(hdr) != NBD_MAGIC_OPT) {
			ret = -EPROTO;
			break;
		}
		uint32_t opt = get32(hdr + 8), len = get32(hdr + 12);
		if (len > NBD_MAX_OPTION) {
			ret = nbd_discard(c->fd, len);
			if (ret == 0)
				ret = send_error(c, opt, NBD_REP_ERR_TOO_BIG, "option data too large");
			if (ret < 0)
				break;
			continue;
		}
		ret = nbd_recv(c->fd, data, len);
		if (ret < 0)
			break;
		set_tflags(c);
		switch (opt) {
		case NBD_OPT_EXPORT_NAME:
			ret = opt_export_name(c, data, len);
			break;
		case NBD_OPT_ABORT:
			send_reply(c, opt, NBD_REP_ACK, NULL, 0); /* the client may be gone already */
			ret = 0;
			goto out;
		case NBD_OPT_LIST:
			ret = opt_list(c, opt, len);
			break;
		case NBD_OPT_STARTTLS:
			ret = send_error(c, opt, NBD_REP_ERR_POLICY, "TLS is not supported by this server");
			break;
		case NBD_OPT_INFO:
		case NBD_OPT_GO:
			ret = opt_info_go(c, opt, data, len);
			break;
		case NBD_OPT_STRUCTURED_REPLY:
			if (len) {
				ret = send_error(c, opt, NBD_REP_ERR_INVALID, "option takes no data");
			} else {
				c->structured = true;
				ret = send_reply(c, opt, NBD_REP_ACK, NULL, 0);
			}
			break;
		case NBD_OPT_LIST_META_CONTEXT:
		case NBD_OPT_SET_META_CONTEXT:
			ret = opt_meta_context(c, opt, data, len);
			break;
		default:
			ret = send_error(c, opt, NBD_REP_ERR_UNSUP, "unsupported option");
			break;
		}
		if (ret != 0)
			goto out; /* 1 = transmission, <0 = error */
	}
	if (ret == 0)
		ret = -EPROTO; /* too many options: a client looping on purpose */
out:
	set_tflags(c);
	free(data);
	return ret;
}
