/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_dp_net: libFuzzer target for the dataplane's Ethernet / ARP / IPv4 /
 * UDP receive path (outside input: any frame on the migration NIC) and its
 * address parsers (outside input: config text). The bytes are fed to
 * dp_net_rx() with a fixed cfg, from a heap buffer of exactly their size
 * (ASan catches any read past the end), as they are and again with their
 * IPv4 and UDP checksums made valid (so the fuzzer gets past them). Checked:
 * the kinds and counters agree, an AMST payload lies inside the frame and
 * matches the headers, an ARP reply is a well-formed reply from us of a sane
 * length and does not itself draw a reply; text that parses as an address
 * prints back exactly (IPv4, CIDR) or in a canonical form that parses to the
 * same address and prints the same again (dp_host's host addresses, which
 * come from session.open on the control socket).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_host.h"
#include "dp_net.h"

#define OUR_IP           0x0A4D000Bu /* 10.77.0.11/24, gateway 10.77.0.1 */
#define PEER_IP          0x0A4D000Cu /* 10.77.0.12, in the cache from the start */
#define NC_HOST_TEXT_MAX 160         /* longer than any host address */

static const struct dp_net_cfg cfg = {
        .mac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x0b},
        .ip = OUR_IP,
        .prefix_len = 24,
        .gateway = 0x0A4D0001u,
        .udp_port = 7471,
        .dscp = 46,
        .mtu = 1500,
};
static const uint8_t peer_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x0c};

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);      \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return ((uint32_t)be16(p) << 16) | be16(p + 2);
}

static uint64_t stats_total(const struct dp_net_stats *st)
{
	uint64_t n = st->rx_amst + st->rx_arp_request + st->rx_arp_reply + st->rx_arp_update;
	for (int i = 0; i < DP_NET_DROP_COUNT; i++)
		n += st->drops[i];
	return n;
}

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i < n; i++) {
		s += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
		s = (s & 0xFFFF) + (s >> 16);
	}
	return s;
}

/* Make the IPv4 header checksum (and a non-zero UDP checksum) valid, where
 * the headers are inside the frame. */
static void fix_checksums(uint8_t *f, size_t len)
{
	if (len < 34 || be16(f + 12) != 0x0800)
		return;
	uint8_t *ip = f + 14;
	size_t ihl = (size_t)(ip[0] & 0xF) * 4;
	if (ihl < 20 || 14 + ihl > len)
		return;
	ip[10] = ip[11] = 0;
	uint16_t c = (uint16_t)~sum16(ip, ihl, 0);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	size_t tot = be16(ip + 2);
	if (ihl != 20 || ip[9] != 17 || tot < 28 || 14 + tot > len)
		return;
	uint8_t *udp = ip + 20;
	size_t ulen = tot - 20;
	if (be16(udp + 6) == 0)
		return;
	udp[6] = udp[7] = 0;
	uint32_t s = sum16(ip + 12, 8, 0);
	s += 17 + (uint32_t)ulen;
	s = (s & 0xFFFF) + (s >> 16);
	c = (uint16_t)~sum16(udp, ulen, s);
	if (c == 0)
		c = 0xFFFF;
	udp[6] = (uint8_t)(c >> 8);
	udp[7] = (uint8_t)c;
}

/* One frame through dp_net_rx, checked. */
static void rx_one(struct dp_arp *arp, struct dp_net_stats *st, uint64_t *calls, uint8_t *f,
                   uint32_t len, uint32_t cap, uint64_t now)
{
	struct dp_net_rx rx;
	memset(&rx, 0xA5, sizeof(rx));
	enum dp_net_rx_kind k = dp_net_rx(&cfg, arp, st, f, len, cap, now, &rx);
	++*calls;
	CHECK(stats_total(st) == *calls);
	switch (k) {
	case DP_NET_RX_AMST:
		CHECK(len >= DP_NET_HDR_LEN);
		CHECK(rx.payload == f + DP_NET_HDR_LEN);
		CHECK(rx.payload_len <= len - DP_NET_HDR_LEN);
		CHECK(rx.payload_len + 28 <= cfg.mtu);
		CHECK(be16(f + 12) == 0x0800 && be32(f + 30) == cfg.ip);
		CHECK(rx.src_ip == be32(f + 26) && rx.src_port == be16(f + 34));
		CHECK(be16(f + 36) == cfg.udp_port && be16(f + 38) == rx.payload_len + 8);
		CHECK(memcmp(rx.src_mac, f + 6, 6) == 0);
		if (rx.payload_len)
			(void)*(volatile uint8_t *)&rx.payload[rx.payload_len - 1];
		break;
	case DP_NET_RX_ARP_REPLY_READY: {
		CHECK(rx.reply_len == 42 || rx.reply_len == 60);
		CHECK(rx.reply_len <= (cap > len ? cap : len));
		CHECK(rx.reply_len >= 60 || cap < 60);
		CHECK(be16(f + 12) == 0x0806 && be16(f + 20) == 2);
		CHECK(memcmp(f + 6, cfg.mac, 6) == 0 && memcmp(f + 22, cfg.mac, 6) == 0);
		CHECK(be32(f + 28) == cfg.ip);
		CHECK(memcmp(f, f + 32, 6) == 0 && (f[0] & 1) == 0);
		for (uint32_t i = 42; i < rx.reply_len; i++)
			CHECK(f[i] == 0);
		/* Our reply coming back to us is not answered again. */
		struct dp_net_stats before = *st;
		CHECK(dp_net_rx(&cfg, arp, st, f, rx.reply_len, rx.reply_len, now, &rx) ==
		      DP_NET_RX_DROP);
		CHECK(st->drops[DP_NET_DROP_ARP_NOT_FOR_US] ==
		      before.drops[DP_NET_DROP_ARP_NOT_FOR_US] + 1);
		++*calls;
		break;
	}
	case DP_NET_RX_CONSUMED:
		CHECK(len >= 42 && be16(f + 12) == 0x0806);
		break;
	case DP_NET_RX_DROP:
		CHECK(rx.drop < DP_NET_DROP_COUNT);
		break;
	default:
		CHECK(0);
	}
}

/* A host address: parsed, printed, parsed again to the same, printed the same. */
static void host_addr_one(const uint8_t *data, size_t size)
{
	char s[NC_HOST_TEXT_MAX], err[256], back[DP_HOST_ADDR_TEXT], again[DP_HOST_ADDR_TEXT];
	size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
	memcpy(s, data, n);
	s[n] = '\0';
	struct dp_host_addr a, b;
	err[0] = '\0';
	if (dp_host_addr_parse(s, &a, err, sizeof(err)) != 0) {
		CHECK(err[0] != '\0');
		return;
	}
	CHECK(dp_host_addr_format(&a, back, sizeof(back)) > 0);
	CHECK(dp_host_addr_parse(back, &b, err, sizeof(err)) == 0);
	CHECK(b.family == a.family && b.test_streams == a.test_streams &&
	      b.test_bytes == a.test_bytes && strcmp(b.path, a.path) == 0);
	CHECK(dp_host_addr_format(&b, again, sizeof(again)) > 0 && strcmp(again, back) == 0);
}

static void text_one(const uint8_t *data, size_t size)
{
	char s[48], err[128], back[DP_NET_IP_STRLEN + 4];
	size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
	memcpy(s, data, n);
	s[n] = '\0';
	uint32_t ip;
	uint8_t pl;
	err[0] = '\0';
	if (dp_net_parse_ip(s, &ip, err, sizeof(err)) == 0) {
		dp_net_ip_str(ip, back);
		CHECK(strcmp(back, s) == 0);
	} else {
		CHECK(err[0] != '\0');
	}
	err[0] = '\0';
	if (dp_net_parse_cidr(s, &ip, &pl, err, sizeof(err)) == 0) {
		CHECK(pl <= 32);
		char ips[DP_NET_IP_STRLEN];
		dp_net_ip_str(ip, ips);
		char whole[32];
		snprintf(whole, sizeof(whole), "%s/%u", ips, pl);
		CHECK(strcmp(whole, s) == 0);
	} else {
		CHECK(err[0] != '\0');
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 9100)
		return 0;
	struct dp_arp *arp = dp_arp_create(8);
	CHECK(arp != NULL);
	dp_arp_learn(arp, PEER_IP, peer_mac, 0);
	struct dp_net_stats st;
	memset(&st, 0, sizeof(st));
	uint64_t calls = 0;
	uint32_t len = (uint32_t)size;

	/* As received, in a buffer of exactly the frame's size. */
	uint8_t *f = malloc(size ? size : 1);
	CHECK(f != NULL);
	memcpy(f, data, size);
	rx_one(arp, &st, &calls, f, len, len, 1000);
	free(f);

	/* With room to grow, and the checksums made valid. */
	f = malloc(size + 32);
	CHECK(f != NULL);
	memcpy(f, data, size);
	fix_checksums(f, size);
	rx_one(arp, &st, &calls, f, len, len + 32, 2000);
	free(f);

	/* The cache after whatever the frames taught it. */
	uint8_t mac[6];
	if (size >= 32) {
		uint32_t sender = be32(data + 28);
		if (dp_arp_lookup(arp, sender, 3000, mac) == 0)
			CHECK((mac[0] & 1) == 0);
		(void)dp_arp_should_request(arp, dp_net_next_hop(&cfg, sender), 3000);
	}
	CHECK(dp_arp_lookup(arp, PEER_IP, DP_ARP_TTL_NS + 3000, mac) == -ENOENT);
	dp_arp_destroy(arp);

	text_one(data, size);
	host_addr_one(data, size);
	return 0;
}
