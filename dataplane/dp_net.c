/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp_net: Ethernet / ARP / IPv4 / UDP under AMST (see dp_net.h): the receive
 * classifier, the in-place ARP responder, the ARP cache, the header builders
 * and the address parsers. Plain C on byte buffers; every read of a received
 * frame is checked against its length first.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_net.h"

#define ETHER_VLAN   0x8100 /* 802.1Q */
#define ETHER_QINQ   0x88A8 /* 802.1ad */
#define ETHER_QINQ_9 0x9100 /* pre-standard QinQ */

#define ARP_HTYPE_ETHER 1
#define ARP_OP_REQUEST  1
#define ARP_OP_REPLY    2

#define IP_PROTO_UDP 17
#define IP_TTL       64
#define IP_DF        0x4000
#define IP_MF        0x2000
#define IP_OFFMASK   0x1FFF

/* Offsets in an ARP body (after the Ethernet header). */
#define ARP_SHA 8
#define ARP_SPA 14
#define ARP_THA 18
#define ARP_TPA 24

const char *const dp_net_drop_names[DP_NET_DROP_COUNT] = {
#define DP_NET_DROP_NAME(sym, name) [DP_NET_DROP_##sym] = name,
        DP_NET_FOREACH_DROP(DP_NET_DROP_NAME)
#undef DP_NET_DROP_NAME
};

/* ---- big-endian access ---- */

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* ---- the Internet checksum (RFC 1071) ---- */

/* Adds @p n bytes as big-endian 16-bit words (an odd last byte is the high
 * half of a word) to @p acc, unfolded. */
static uint64_t csum_add(uint64_t acc, const uint8_t *p, uint32_t n)
{
	uint32_t i = 0;
	for (; i + 1 < n; i += 2)
		acc += (uint32_t)((p[i] << 8) | p[i + 1]);
	if (i < n)
		acc += (uint32_t)p[i] << 8;
	return acc;
}

static uint16_t csum_fold(uint64_t acc)
{
	while (acc >> 16)
		acc = (acc & 0xFFFF) + (acc >> 16);
	return (uint16_t)acc;
}

/* ---- addresses ---- */

static uint32_t prefix_mask(uint8_t prefix_len)
{
	if (prefix_len == 0)
		return 0;
	if (prefix_len >= 32)
		return 0xFFFFFFFFu;
	return 0xFFFFFFFFu << (32 - prefix_len);
}

static bool on_subnet(const struct dp_net_cfg *cfg, uint32_t ip)
{
	return ((ip ^ cfg->ip) & prefix_mask(cfg->prefix_len)) == 0;
}

/* Not 0, not multicast, not 240/4 or the limited broadcast. */
static bool unicast_ip(uint32_t ip)
{
	return ip != 0 && ip < 0xE0000000u;
}

/* The network or broadcast address of our subnet (prefixes up to /30 have them). */
static bool subnet_edge(const struct dp_net_cfg *cfg, uint32_t ip)
{
	if (cfg->prefix_len > 30)
		return false;
	uint32_t host = ~prefix_mask(cfg->prefix_len);
	return (ip & host) == 0 || (ip & host) == host;
}

static bool unicast_mac(const uint8_t mac[6])
{
	static const uint8_t zero[6];
	return (mac[0] & 1) == 0 && memcmp(mac, zero, 6) != 0;
}

/* ---- ARP cache ---- */

enum {
	E_VALID = 0x1,     /* mac learnt; good until learnt_ns + TTL */
	E_REQUESTED = 0x2, /* a request was allowed at requested_ns */
};

struct dp_arp_entry {
	uint64_t learnt_ns;
	uint64_t requested_ns;
	uint64_t active_ns; /* last learnt, hit or requested: the LRU key */
	uint8_t mac[6];
	uint8_t flags;
};

struct dp_arp {
	unsigned cap;
	unsigned n;               /* slots [0, n) are in use */
	struct dp_arp_entry *ent; /* cap entries, after ip[] in the same allocation */
	uint32_t ip[];            /* scanned on lookup: kept apart, dense */
};

static uint64_t age(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

struct dp_arp *dp_arp_create(unsigned cap)
{
	if (cap == 0 || cap > DP_ARP_CAP_MAX) {
		errno = EINVAL;
		return NULL;
	}
	size_t align = _Alignof(struct dp_arp_entry);
	size_t off = sizeof(struct dp_arp) + (size_t)cap * sizeof(uint32_t);
	off = (off + align - 1) / align * align;
	struct dp_arp *a = calloc(1, off + (size_t)cap * sizeof(struct dp_arp_entry));
	if (a == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	a->cap = cap;
	a->ent = (struct dp_arp_entry *)((uint8_t *)a + off);
	return a;
}

void dp_arp_destroy(struct dp_arp *a)
{
	free(a);
}

static int arp_find(const struct dp_arp *a, uint32_t ip)
{
	for (unsigned i = 0; i < a->n; i++)
		if (a->ip[i] == ip)
			return (int)i;
	return -1;
}

/* A slot for @p ip, not in the table: a free one, else the least recently active. */
static unsigned arp_alloc(struct dp_arp *a, uint32_t ip)
{
	unsigned i;
	if (a->n < a->cap) {
		i = a->n++;
	} else {
		i = 0;
		for (unsigned j = 1; j < a->n; j++)
			if (a->ent[j].active_ns < a->ent[i].active_ns)
				i = j;
	}
	a->ip[i] = ip;
	memset(&a->ent[i], 0, sizeof(a->ent[i]));
	return i;
}

static void arp_set(struct dp_arp *a, unsigned i, const uint8_t mac[6], uint64_t now_ns)
{
	struct dp_arp_entry *e = &a->ent[i];
	memcpy(e->mac, mac, 6);
	e->flags |= E_VALID;
	e->learnt_ns = now_ns;
	e->active_ns = now_ns;
}

int dp_arp_lookup(struct dp_arp *a, uint32_t ip, uint64_t now_ns, uint8_t mac[6])
{
	int i = ip != 0 ? arp_find(a, ip) : -1;
	if (i < 0)
		return -ENOENT;
	struct dp_arp_entry *e = &a->ent[i];
	if (!(e->flags & E_VALID) || age(now_ns, e->learnt_ns) >= DP_ARP_TTL_NS)
		return -ENOENT;
	memcpy(mac, e->mac, 6);
	e->active_ns = now_ns;
	return 0;
}

void dp_arp_learn(struct dp_arp *a, uint32_t ip, const uint8_t mac[6], uint64_t now_ns)
{
	if (ip == 0 || !unicast_mac(mac))
		return;
	int i = arp_find(a, ip);
	arp_set(a, i >= 0 ? (unsigned)i : arp_alloc(a, ip), mac, now_ns);
}

/* Refresh @p ip's entry if there is one (valid or pending); never creates. */
static bool arp_update(struct dp_arp *a, uint32_t ip, const uint8_t mac[6], uint64_t now_ns)
{
	int i = ip != 0 ? arp_find(a, ip) : -1;
	if (i < 0)
		return false;
	arp_set(a, (unsigned)i, mac, now_ns);
	return true;
}

bool dp_arp_should_request(struct dp_arp *a, uint32_t ip, uint64_t now_ns)
{
	if (ip == 0)
		return false;
	int i = arp_find(a, ip);
	struct dp_arp_entry *e;
	if (i < 0) {
		e = &a->ent[arp_alloc(a, ip)];
	} else {
		e = &a->ent[i];
		if ((e->flags & E_VALID) &&
		    age(now_ns, e->learnt_ns) < DP_ARP_TTL_NS - DP_ARP_REFRESH_NS)
			return false;
		if ((e->flags & E_REQUESTED) && age(now_ns, e->requested_ns) < DP_ARP_RETRY_NS)
			return false;
	}
	e->flags |= E_REQUESTED;
	e->requested_ns = now_ns;
	e->active_ns = now_ns;
	return true;
}

/* ---- receive ---- */

static enum dp_net_rx_kind drop(struct dp_net_stats *st, struct dp_net_rx *out,
                                enum dp_net_drop why)
{
	st->drops[why]++;
	out->drop = why;
	return DP_NET_RX_DROP;
}

static enum dp_net_rx_kind rx_arp(const struct dp_net_cfg *cfg, struct dp_arp *arp,
                                  struct dp_net_stats *st, uint8_t *frame, uint32_t len,
                                  uint32_t cap, uint64_t now_ns, struct dp_net_rx *out)
{
	if (len < DP_NET_ETH_HDR_LEN + DP_NET_ARP_LEN)
		return drop(st, out, DP_NET_DROP_RUNT);
	uint8_t *a = frame + DP_NET_ETH_HDR_LEN;
	uint16_t op = get16(a + 6);
	if (get16(a) != ARP_HTYPE_ETHER || get16(a + 2) != DP_NET_ETHER_IPV4 || a[4] != 6 ||
	    a[5] != 4 || (op != ARP_OP_REQUEST && op != ARP_OP_REPLY) || !unicast_mac(a + ARP_SHA))
		return drop(st, out, DP_NET_DROP_ARP_BAD);
	uint32_t spa = get32(a + ARP_SPA);
	uint32_t tpa = get32(a + ARP_TPA);

	if (spa == cfg->ip) {
		/* Our own request looped back, or another host using our address. */
		if (memcmp(a + ARP_SHA, cfg->mac, 6) == 0)
			return drop(st, out, DP_NET_DROP_ARP_NOT_FOR_US);
		return drop(st, out, DP_NET_DROP_ARP_CONFLICT);
	}
	/* Hosts we may talk to directly: unicast, on our subnet (the gateway is). */
	bool learnable = unicast_ip(spa) && on_subnet(cfg, spa);

	if (op == ARP_OP_REQUEST && tpa == cfg->ip) {
		/* An ARP probe (sender 0.0.0.0, RFC 5227) is answered, not learnt. */
		if (learnable)
			dp_arp_learn(arp, spa, a + ARP_SHA, now_ns);
		uint8_t req_mac[6];
		memcpy(req_mac, a + ARP_SHA, 6);
		memcpy(frame, req_mac, 6);
		memcpy(frame + 6, cfg->mac, 6);
		put16(a + 6, ARP_OP_REPLY);
		memcpy(a + ARP_SHA, cfg->mac, 6);
		put32(a + ARP_SPA, cfg->ip);
		memcpy(a + ARP_THA, req_mac, 6);
		put32(a + ARP_TPA, spa);
		uint32_t n = DP_NET_ETH_HDR_LEN + DP_NET_ARP_LEN;
		if (cap < len)
			cap = len;
		if (cap >= DP_NET_MIN_FRAME)
			n = DP_NET_MIN_FRAME;
		memset(frame + DP_NET_ETH_HDR_LEN + DP_NET_ARP_LEN, 0,
		       n - (DP_NET_ETH_HDR_LEN + DP_NET_ARP_LEN));
		out->reply_len = n;
		st->rx_arp_request++;
		st->tx_arp_reply++;
		return DP_NET_RX_ARP_REPLY_READY;
	}
	if (op == ARP_OP_REPLY && tpa == cfg->ip) {
		if (!learnable)
			return drop(st, out, DP_NET_DROP_ARP_BAD);
		dp_arp_learn(arp, spa, a + ARP_SHA, now_ns);
		st->rx_arp_reply++;
		return DP_NET_RX_CONSUMED;
	}
	/* Gratuitous, or between other hosts: refresh what we know, learn nothing new. */
	if (arp_update(arp, spa, a + ARP_SHA, now_ns)) {
		st->rx_arp_update++;
		return DP_NET_RX_CONSUMED;
	}
	return drop(st, out, DP_NET_DROP_ARP_NOT_FOR_US);
}

static enum dp_net_rx_kind rx_ipv4(const struct dp_net_cfg *cfg, struct dp_net_stats *st,
                                   uint8_t *frame, uint32_t len, struct dp_net_rx *out)
{
	uint32_t avail = len - DP_NET_ETH_HDR_LEN;
	if (avail < DP_NET_IP_HDR_LEN)
		return drop(st, out, DP_NET_DROP_RUNT);
	uint8_t *ip = frame + DP_NET_ETH_HDR_LEN;
	uint32_t ihl = (uint32_t)(ip[0] & 0x0F) * 4;
	uint32_t tot = get16(ip + 2);
	/* Total length within the frame (Ethernet may pad after it), header within it. */
	if ((ip[0] >> 4) != 4 || ihl < DP_NET_IP_HDR_LEN || tot < ihl || tot > avail ||
	    csum_fold(csum_add(0, ip, ihl)) != 0xFFFF)
		return drop(st, out, DP_NET_DROP_BAD_IP_HEADER);
	if (get32(ip + 16) != cfg->ip)
		return drop(st, out, DP_NET_DROP_NOT_FOR_US);
	if (ihl != DP_NET_IP_HDR_LEN)
		return drop(st, out, DP_NET_DROP_IP_OPTIONS);
	if (get16(ip + 6) & (IP_MF | IP_OFFMASK))
		return drop(st, out, DP_NET_DROP_FRAGMENT);
	if (tot > cfg->mtu)
		return drop(st, out, DP_NET_DROP_TOO_BIG);
	if (ip[9] != IP_PROTO_UDP)
		return drop(st, out, DP_NET_DROP_NOT_UDP);
	uint8_t *udp = ip + DP_NET_IP_HDR_LEN;
	uint32_t ulen = tot - DP_NET_IP_HDR_LEN;
	if (ulen < DP_NET_UDP_HDR_LEN || get16(udp + 4) != ulen)
		return drop(st, out, DP_NET_DROP_BAD_UDP_LENGTH);
	if (get16(udp + 2) != cfg->udp_port)
		return drop(st, out, DP_NET_DROP_WRONG_PORT);
	if (get16(udp + 6) != 0) {
		/* Pseudo-header: source, destination, protocol, UDP length. */
		uint64_t acc = csum_add(0, ip + 12, 8);
		acc += IP_PROTO_UDP + ulen;
		if (csum_fold(csum_add(acc, udp, ulen)) != 0xFFFF)
			return drop(st, out, DP_NET_DROP_BAD_UDP_CHECKSUM);
	}
	out->src_ip = get32(ip + 12);
	out->src_port = get16(udp);
	memcpy(out->src_mac, frame + 6, 6);
	out->payload = udp + DP_NET_UDP_HDR_LEN;
	out->payload_len = ulen - DP_NET_UDP_HDR_LEN;
	st->rx_amst++;
	return DP_NET_RX_AMST;
}

enum dp_net_rx_kind dp_net_rx(const struct dp_net_cfg *cfg, struct dp_arp *arp,
                              struct dp_net_stats *st, uint8_t *frame, uint32_t len, uint32_t cap,
                              uint64_t now_ns, struct dp_net_rx *out)
{
	if (len < DP_NET_ETH_HDR_LEN)
		return drop(st, out, DP_NET_DROP_RUNT);
	switch (get16(frame + 12)) {
	case DP_NET_ETHER_IPV4:
		return rx_ipv4(cfg, st, frame, len, out);
	case DP_NET_ETHER_ARP:
		return rx_arp(cfg, arp, st, frame, len, cap, now_ns, out);
	case ETHER_VLAN:
	case ETHER_QINQ:
	case ETHER_QINQ_9:
		return drop(st, out, DP_NET_DROP_VLAN);
	default:
		return drop(st, out, DP_NET_DROP_OTHER_ETHERTYPE);
	}
}

/* ---- transmit ---- */

uint32_t dp_net_next_hop(const struct dp_net_cfg *cfg, uint32_t dst_ip)
{
	if (!unicast_ip(dst_ip) || dst_ip == cfg->ip)
		return 0;
	if (on_subnet(cfg, dst_ip))
		return subnet_edge(cfg, dst_ip) ? 0 : dst_ip;
	return cfg->gateway;
}

uint32_t dp_net_arp_request(const struct dp_net_cfg *cfg, struct dp_net_stats *st,
                            uint32_t target_ip, uint8_t *buf, uint32_t cap)
{
	if (cap < DP_NET_MIN_FRAME)
		return 0;
	memset(buf, 0, DP_NET_MIN_FRAME);
	memset(buf, 0xFF, 6);
	memcpy(buf + 6, cfg->mac, 6);
	put16(buf + 12, DP_NET_ETHER_ARP);
	uint8_t *a = buf + DP_NET_ETH_HDR_LEN;
	put16(a, ARP_HTYPE_ETHER);
	put16(a + 2, DP_NET_ETHER_IPV4);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, ARP_OP_REQUEST);
	memcpy(a + ARP_SHA, cfg->mac, 6);
	put32(a + ARP_SPA, cfg->ip);
	/* Target MAC stays zero: unknown. */
	put32(a + ARP_TPA, target_ip);
	if (st != NULL)
		st->tx_arp_request++;
	return DP_NET_MIN_FRAME;
}

uint32_t dp_net_udp_encap(const struct dp_net_cfg *cfg, const uint8_t dst_mac[6], uint32_t dst_ip,
                          uint16_t dst_port, uint8_t *buf, uint32_t payload_len, uint16_t ip_id)
{
	if ((uint64_t)payload_len + DP_NET_IP_HDR_LEN + DP_NET_UDP_HDR_LEN > cfg->mtu)
		return 0;
	memcpy(buf, dst_mac, 6);
	memcpy(buf + 6, cfg->mac, 6);
	put16(buf + 12, DP_NET_ETHER_IPV4);

	uint8_t *ip = buf + DP_NET_ETH_HDR_LEN;
	uint16_t tot = (uint16_t)(DP_NET_IP_HDR_LEN + DP_NET_UDP_HDR_LEN + payload_len);
	ip[0] = 0x45;
	ip[1] = (uint8_t)((cfg->dscp & 0x3F) << 2);
	put16(ip + 2, tot);
	put16(ip + 4, ip_id);
	put16(ip + 6, IP_DF);
	ip[8] = IP_TTL;
	ip[9] = IP_PROTO_UDP;
	put16(ip + 10, 0);
	put32(ip + 12, cfg->ip);
	put32(ip + 16, dst_ip);
	put16(ip + 10, (uint16_t)~csum_fold(csum_add(0, ip, DP_NET_IP_HDR_LEN)));

	uint8_t *udp = ip + DP_NET_IP_HDR_LEN;
	put16(udp, cfg->udp_port);
	put16(udp + 2, dst_port);
	put16(udp + 4, (uint16_t)(DP_NET_UDP_HDR_LEN + payload_len));
	put16(udp + 6, 0);
	return DP_NET_HDR_LEN + payload_len;
}

/* ---- configuration and text ---- */

static int fail(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err != NULL && errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

void dp_net_ip_str(uint32_t ip, char buf[DP_NET_IP_STRLEN])
{
	snprintf(buf, DP_NET_IP_STRLEN, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xFF,
	         (ip >> 8) & 0xFF, ip & 0xFF);
}

int dp_net_cfg_check(const struct dp_net_cfg *cfg, char *err, size_t errlen)
{
	char a[DP_NET_IP_STRLEN], g[DP_NET_IP_STRLEN];
	dp_net_ip_str(cfg->ip, a);
	dp_net_ip_str(cfg->gateway, g);
	if (!unicast_mac(cfg->mac))
		return fail(err, errlen,
		            "MAC %02x:%02x:%02x:%02x:%02x:%02x is not a unicast address",
		            cfg->mac[0], cfg->mac[1], cfg->mac[2], cfg->mac[3], cfg->mac[4],
		            cfg->mac[5]);
	if (cfg->prefix_len > 32)
		return fail(err, errlen, "prefix length %u is not 0-32", cfg->prefix_len);
	if (!unicast_ip(cfg->ip))
		return fail(err, errlen, "address %s is not a unicast host address", a);
	if (subnet_edge(cfg, cfg->ip))
		return fail(err, errlen, "address %s is the network or broadcast address of %s/%u",
		            a, a, cfg->prefix_len);
	if (cfg->gateway != 0) {
		if (!unicast_ip(cfg->gateway) || cfg->gateway == cfg->ip)
			return fail(err, errlen,
			            "gateway %s is not a unicast address other than ours", g);
		if (!on_subnet(cfg, cfg->gateway) || subnet_edge(cfg, cfg->gateway))
			return fail(err, errlen, "gateway %s is not a host on subnet %s/%u", g, a,
			            cfg->prefix_len);
	}
	if (cfg->udp_port == 0)
		return fail(err, errlen, "UDP port 0");
	if (cfg->dscp > 63)
		return fail(err, errlen, "DSCP %u is not 0-63", cfg->dscp);
	if (cfg->mtu < DP_NET_MTU_MIN || cfg->mtu > DP_NET_MTU_MAX)
		return fail(err, errlen, "MTU %u is not %d-%d", cfg->mtu, DP_NET_MTU_MIN,
		            DP_NET_MTU_MAX);
	return 0;
}

/* A character of the input for a message: itself if printable, else \xNN. */
static const char *show_char(char c, char buf[8])
{
	unsigned char u = (unsigned char)c;
	if (u >= 0x20 && u < 0x7F)
		snprintf(buf, 8, "'%c'", c);
	else
		snprintf(buf, 8, "\\x%02x", u);
	return buf;
}

#define TEXT_MAX 40 /* characters of the input quoted in a message */

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Parse the dotted quad in [s, s + n) of the text @p whole. */
static int parse_quad(const char *s, size_t n, const char *whole, uint32_t *ip, char *err,
                      size_t errlen)
{
	char cb[8];
	uint32_t v = 0;
	int parts = 0;
	size_t i = 0;
	if (n == 0)
		return fail(err, errlen, "'%.*s': empty address (expected A.B.C.D)", TEXT_MAX,
		            whole);
	for (;;) {
		size_t start = i;
		unsigned num = 0;
		while (i < n && is_digit(s[i])) {
			if (i - start < 4)
				num = num * 10 + (unsigned)(s[i] - '0');
			i++;
		}
		size_t nd = i - start;
		if (nd == 0) {
			if (i < n && s[i] != '.')
				return fail(err, errlen, "'%.*s': unexpected %s (expected A.B.C.D)",
				            TEXT_MAX, whole, show_char(s[i], cb));
			return fail(err, errlen, "'%.*s': empty number (expected A.B.C.D)",
			            TEXT_MAX, whole);
		}
		if (nd > 3 || num > 255)
			return fail(err, errlen, "'%.*s': %.*s is not 0-255", TEXT_MAX, whole,
			            (int)(nd < 12 ? nd : 12), s + start);
		if (nd > 1 && s[start] == '0')
			return fail(
			        err, errlen,
			        "'%.*s': leading zero in %.*s (refused: it could be read as octal)",
			        TEXT_MAX, whole, (int)nd, s + start);
		v = v << 8 | num;
		parts++;
		if (i == n)
			break;
		if (s[i] != '.')
			return fail(err, errlen, "'%.*s': unexpected %s (expected A.B.C.D)",
			            TEXT_MAX, whole, show_char(s[i], cb));
		if (parts == 4)
			return fail(err, errlen, "'%.*s': more than 4 numbers (expected A.B.C.D)",
			            TEXT_MAX, whole);
		i++;
	}
	if (parts != 4)
		return fail(err, errlen, "'%.*s': %d numbers, expected 4 (A.B.C.D)", TEXT_MAX,
		            whole, parts);
	*ip = v;
	return 0;
}

int dp_net_parse_ip(const char *s, uint32_t *ip, char *err, size_t errlen)
{
	if (s == NULL)
		return fail(err, errlen, "no address");
	return parse_quad(s, strlen(s), s, ip, err, errlen);
}

int dp_net_parse_cidr(const char *s, uint32_t *ip, uint8_t *prefix_len, char *err, size_t errlen)
{
	char cb[8];
	if (s == NULL)
		return fail(err, errlen, "no address");
	const char *slash = strchr(s, '/');
	if (slash == NULL)
		return fail(err, errlen,
		            "'%.*s': no prefix length (expected A.B.C.D/N, e.g. "
		            "10.77.0.11/24)",
		            TEXT_MAX, s);
	uint32_t v;
	int rc = parse_quad(s, (size_t)(slash - s), s, &v, err, errlen);
	if (rc < 0)
		return rc;
	const char *p = slash + 1;
	if (*p == '\0')
		return fail(err, errlen, "'%.*s': no prefix length after '/'", TEXT_MAX, s);
	unsigned n = 0;
	size_t nd = 0;
	for (; is_digit(p[nd]); nd++)
		if (nd < 3)
			n = n * 10 + (unsigned)(p[nd] - '0');
	if (p[nd] != '\0')
		return fail(err, errlen, "'%.*s': unexpected %s in the prefix length", TEXT_MAX, s,
		            show_char(p[nd], cb));
	if (nd > 2 || n > 32)
		return fail(err, errlen, "'%.*s': prefix length %.*s is not 0-32", TEXT_MAX, s,
		            (int)(nd < 12 ? nd : 12), p);
	if (nd > 1 && p[0] == '0')
		return fail(err, errlen, "'%.*s': leading zero in the prefix length", TEXT_MAX, s);
	*ip = v;
	*prefix_len = (uint8_t)n;
	return 0;
}
