/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_dp_net: the Ethernet / ARP / IPv4 / UDP layer under AMST. Frames are
 * built here byte by byte (not with the code under test, except where a
 * round trip is the point), checksums are checked against a known answer and
 * an implementation of the test's own, every drop reason is hit, and every
 * truncation of real frames is fed from a buffer of exactly that size (run
 * under ASan, see -Dsanitize=true, to catch a read past the end). Time is
 * driven by hand.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dp_net.h"

#define MS  1000000ull
#define SEC 1000000000ull

/* 10.77.0.x/24, AMST on 7471. */
#define IP4(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))
#define OUR_IP          IP4(10, 77, 0, 11)
#define PEER_IP         IP4(10, 77, 0, 12)
#define GW_IP           IP4(10, 77, 0, 1)
#define PORT            7471

static const uint8_t our_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x0b};
static const uint8_t peer_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x0c};
static const uint8_t other_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x0d};
static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static struct dp_net_cfg our_cfg(void)
{
	struct dp_net_cfg c = {
	        .ip = OUR_IP,
	        .prefix_len = 24,
	        .gateway = GW_IP,
	        .udp_port = PORT,
	        .dscp = 46,
	        .mtu = 1500,
	};
	memcpy(c.mac, our_mac, 6);
	return c;
}

static struct dp_net_cfg peer_cfg(void)
{
	struct dp_net_cfg c = our_cfg();
	c.ip = PEER_IP;
	c.udp_port = 40000; /* a source port other than ours: reported as is */
	c.dscp = 10;
	c.mtu = 9000;
	memcpy(c.mac, peer_mac, 6);
	return c;
}

/* ---- the test's own wire helpers ---- */

static void w16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void w32(uint8_t *p, uint32_t v)
{
	w16(p, v >> 16);
	w16(p + 2, v & 0xFFFF);
}

static unsigned r16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static uint32_t r32(const uint8_t *p)
{
	return (uint32_t)r16(p) << 16 | r16(p + 2);
}

/* One's complement checksum, byte at a time (independent of dp_net.c's). */
static uint16_t ref_csum(const uint8_t *p, size_t n, uint32_t init)
{
	uint32_t s = init;
	for (size_t i = 0; i < n; i++) {
		s += (i % 2) ? p[i] : (uint32_t)p[i] << 8;
		s = (s & 0xFFFF) + (s >> 16);
	}
	return (uint16_t)~s;
}

static void ip_fix_csum(uint8_t *frame)
{
	uint8_t *ip = frame + 14;
	size_t ihl = (size_t)(ip[0] & 0xF) * 4;
	w16(ip + 10, 0);
	w16(ip + 10, ref_csum(ip, ihl, 0));
}

/* UDP checksum over the pseudo-header and the datagram (checksum field zero). */
static uint16_t udp_csum(const uint8_t *frame)
{
	const uint8_t *ip = frame + 14;
	uint8_t pseudo[12];
	unsigned ulen = r16(ip + 20 + 4);
	memcpy(pseudo, ip + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = 17;
	w16(pseudo + 10, ulen);
	uint16_t s = (uint16_t)~ref_csum(pseudo, sizeof(pseudo), 0);
	uint8_t copy[9100];
	memcpy(copy, ip + 20, ulen);
	w16(copy + 6, 0);
	uint16_t c = ref_csum(copy, ulen, s);
	return c == 0 ? 0xFFFF : c;
}

/* A UDP/IPv4 frame from the peer to us, written by hand: @p plen payload bytes. */
static uint32_t make_udp(uint8_t *f, uint32_t plen)
{
	memcpy(f, our_mac, 6);
	memcpy(f + 6, peer_mac, 6);
	w16(f + 12, 0x0800);
	uint8_t *ip = f + 14;
	ip[0] = 0x45;
	ip[1] = 0;
	w16(ip + 2, 28 + plen);
	w16(ip + 4, 0x1234);
	w16(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = 17;
	w32(ip + 12, PEER_IP);
	w32(ip + 16, OUR_IP);
	ip_fix_csum(f);
	uint8_t *udp = ip + 20;
	w16(udp, 40000);
	w16(udp + 2, PORT);
	w16(udp + 4, 8 + plen);
	w16(udp + 6, 0);
	for (uint32_t i = 0; i < plen; i++)
		udp[8 + i] = (uint8_t)(i * 7 + 3);
	return 42 + plen;
}

static uint32_t make_arp(uint8_t *f, const uint8_t eth_dst[6], unsigned op, const uint8_t sha[6],
                         uint32_t spa, const uint8_t tha[6], uint32_t tpa)
{
	memset(f, 0, 60);
	memcpy(f, eth_dst, 6);
	memcpy(f + 6, sha, 6);
	w16(f + 12, 0x0806);
	uint8_t *a = f + 14;
	w16(a, 1);
	w16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	w16(a + 6, op);
	memcpy(a + 8, sha, 6);
	w32(a + 14, spa);
	memcpy(a + 18, tha, 6);
	w32(a + 24, tpa);
	return 60;
}

static const uint8_t zero_mac[6];

static uint64_t total(const struct dp_net_stats *st)
{
	uint64_t n = st->rx_amst + st->rx_arp_request + st->rx_arp_reply + st->rx_arp_update;
	for (int i = 0; i < DP_NET_DROP_COUNT; i++)
		n += st->drops[i];
	return n;
}

/* ---- tests ---- */

static void test_round_trip(void **state)
{
	(void)state;
	struct dp_net_cfg us = our_cfg(), peer = peer_cfg();
	struct dp_arp *arp = dp_arp_create(64);
	assert_non_null(arp);
	struct dp_net_stats st = {0};
	static uint8_t buf[9100];
	uint32_t sizes[] = {0, 1, 17, 18, 100, 1471, 1472};
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint32_t plen = sizes[k];
		for (uint32_t i = 0; i < plen; i++)
			buf[42 + i] = (uint8_t)(i ^ (i >> 8) ^ k);
		uint32_t n = dp_net_udp_encap(&peer, our_mac, OUR_IP, PORT, buf, plen,
		                              (uint16_t)(0xFFF0 + k));
		assert_int_equal(n, 42 + plen);
		/* The headers, read back by hand. */
		assert_memory_equal(buf, our_mac, 6);
		assert_memory_equal(buf + 6, peer_mac, 6);
		assert_int_equal(r16(buf + 12), 0x0800);
		const uint8_t *ip = buf + 14;
		assert_int_equal(ip[0], 0x45);
		assert_int_equal(ip[1], 10 << 2); /* DSCP 10, ECN 0 */
		assert_int_equal(r16(ip + 2), 28 + plen);
		assert_int_equal(r16(ip + 4), (uint16_t)(0xFFF0 + k));
		assert_int_equal(r16(ip + 6), 0x4000); /* DF, offset 0 */
		assert_int_equal(ip[8], 64);
		assert_int_equal(ip[9], 17);
		assert_int_equal(r32(ip + 12), PEER_IP);
		assert_int_equal(r32(ip + 16), OUR_IP);
		assert_int_equal(ref_csum(ip, 20, 0), 0); /* verifies */
		assert_int_equal(r16(ip + 20), 40000);
		assert_int_equal(r16(ip + 22), PORT);
		assert_int_equal(r16(ip + 24), 8 + plen);
		assert_int_equal(r16(ip + 26), 0);

		struct dp_net_rx rx;
		memset(&rx, 0, sizeof(rx));
		assert_int_equal(dp_net_rx(&us, arp, &st, buf, n, n, 0, &rx), DP_NET_RX_AMST);
		assert_ptr_equal(rx.payload, buf + 42);
		assert_int_equal(rx.payload_len, plen);
		assert_int_equal(rx.src_ip, PEER_IP);
		assert_int_equal(rx.src_port, 40000);
		assert_memory_equal(rx.src_mac, peer_mac, 6);
		for (uint32_t i = 0; i < plen; i++)
			assert_int_equal(rx.payload[i], (uint8_t)(i ^ (i >> 8) ^ k));

		/* Ethernet padding after the IP packet is not payload. */
		uint32_t padded = n < 60 ? 60 : n + 4;
		memset(buf + n, 0xEE, padded - n);
		assert_int_equal(dp_net_rx(&us, arp, &st, buf, padded, padded, 0, &rx),
		                 DP_NET_RX_AMST);
		assert_int_equal(rx.payload_len, plen);
	}
	assert_int_equal(st.rx_amst, 2 * sizeof(sizes) / sizeof(sizes[0]));
	assert_int_equal(total(&st), st.rx_amst);

	/* The MTU bounds the payload: mtu - 28. */
	assert_int_equal(dp_net_udp_encap(&us, peer_mac, PEER_IP, PORT, buf, 1472, 0), 1514);
	assert_int_equal(dp_net_udp_encap(&us, peer_mac, PEER_IP, PORT, buf, 1473, 0), 0);
	assert_int_equal(dp_net_udp_encap(&us, peer_mac, PEER_IP, PORT, buf, UINT32_MAX, 0), 0);
	assert_int_equal(dp_net_udp_encap(&peer, our_mac, OUR_IP, PORT, buf, 8972, 0), 9014);
	assert_int_equal(dp_net_udp_encap(&peer, our_mac, OUR_IP, PORT, buf, 8973, 0), 0);
	dp_arp_destroy(arp);
}

/* The header checksum against a known answer (the example header of RFC 1071
 * tutorials: 4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7), and against
 * the test's own sum for DSCP and identification values across their range. */
static void test_ip_checksum(void **state)
{
	(void)state;
	struct dp_net_cfg c = our_cfg();
	c.ip = IP4(192, 168, 0, 1);
	c.dscp = 0;
	uint8_t buf[200] = {0};
	assert_int_equal(
	        dp_net_udp_encap(&c, peer_mac, IP4(192, 168, 0, 199), PORT, buf, 0x73 - 28, 0),
	        14 + 0x73);
	static const uint8_t want[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40,
	                                 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
	                                 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
	assert_memory_equal(buf + 14, want, 20);

	c = our_cfg();
	for (unsigned dscp = 0; dscp < 64; dscp += 7) {
		for (uint32_t id = 0; id < 65536; id += 4099) {
			c.dscp = (uint8_t)dscp;
			uint32_t n = dp_net_udp_encap(&c, peer_mac, PEER_IP, PORT, buf, (id % 100),
			                              (uint16_t)id);
			assert_int_not_equal(n, 0);
			uint8_t hdr[20];
			memcpy(hdr, buf + 14, 20);
			unsigned got = r16(hdr + 10);
			w16(hdr + 10, 0);
			assert_int_equal(got, ref_csum(hdr, 20, 0));
		}
	}
}

static void test_arp_request_answered_in_place(void **state)
{
	(void)state;
	struct dp_net_cfg us = our_cfg(), peer = peer_cfg();
	struct dp_arp *arp = dp_arp_create(64);
	struct dp_net_stats st = {0};
	uint8_t f[64];
	struct dp_net_rx rx;
	uint8_t mac[6];

	/* Padded to 60 bytes with junk: the reply's padding is zeroed. */
	make_arp(f, bcast, 1, peer_mac, PEER_IP, zero_mac, OUR_IP);
	memset(f + 42, 0xAB, 18);
	assert_int_equal(dp_arp_lookup(arp, PEER_IP, 0, mac), -ENOENT);
	assert_int_equal(dp_net_rx(&us, arp, &st, f, 60, 60, 5, &rx), DP_NET_RX_ARP_REPLY_READY);
	assert_int_equal(rx.reply_len, 60);
	assert_memory_equal(f, peer_mac, 6);    /* to the requester */
	assert_memory_equal(f + 6, our_mac, 6); /* from us */
	assert_int_equal(r16(f + 12), 0x0806);
	assert_int_equal(r16(f + 14), 1);
	assert_int_equal(r16(f + 16), 0x0800);
	assert_int_equal(f[18], 6);
	assert_int_equal(f[19], 4);
	assert_int_equal(r16(f + 20), 2); /* reply */
	assert_memory_equal(f + 22, our_mac, 6);
	assert_int_equal(r32(f + 28), OUR_IP);
	assert_memory_equal(f + 32, peer_mac, 6);
	assert_int_equal(r32(f + 38), PEER_IP);
	for (int i = 42; i < 60; i++)
		assert_int_equal(f[i], 0);
	/* The sender was learnt. */
	assert_int_equal(dp_arp_lookup(arp, PEER_IP, 6, mac), 0);
	assert_memory_equal(mac, peer_mac, 6);
	assert_int_equal(st.rx_arp_request, 1);
	assert_int_equal(st.tx_arp_reply, 1);

	/* Unpadded (42 bytes, as veth delivers) and a buffer that cannot grow: 42. */
	uint8_t *g = malloc(42);
	assert_non_null(g);
	make_arp(f, bcast, 1, peer_mac, PEER_IP, zero_mac, OUR_IP);
	memcpy(g, f, 42);
	assert_int_equal(dp_net_rx(&us, arp, &st, g, 42, 42, 5, &rx), DP_NET_RX_ARP_REPLY_READY);
	assert_int_equal(rx.reply_len, 42);
	assert_int_equal(r16(g + 20), 2);
	free(g);
	/* A cap below len counts as len: a padded request gets a padded reply. */
	make_arp(f, bcast, 1, peer_mac, PEER_IP, zero_mac, OUR_IP);
	assert_int_equal(dp_net_rx(&us, arp, &st, f, 60, 0, 5, &rx), DP_NET_RX_ARP_REPLY_READY);
	assert_int_equal(rx.reply_len, 60);
	/* Unpadded with room: padded to the Ethernet minimum. */
	make_arp(f, bcast, 1, peer_mac, PEER_IP, zero_mac, OUR_IP);
	memset(f + 42, 0x55, sizeof(f) - 42);
	assert_int_equal(dp_net_rx(&us, arp, &st, f, 42, sizeof(f), 5, &rx),
	                 DP_NET_RX_ARP_REPLY_READY);
	assert_int_equal(rx.reply_len, 60);
	for (int i = 42; i < 60; i++)
		assert_int_equal(f[i], 0);
	assert_int_equal(f[60], 0x55); /* nothing past the reply */

	/* A real exchange: our request, the peer's dp_net answers, we learn the reply. */
	struct dp_arp *parp = dp_arp_create(8);
	struct dp_net_stats pst = {0};
	struct dp_arp *arp2 = dp_arp_create(8);
	assert_int_equal(dp_net_arp_request(&us, &st, PEER_IP, f, sizeof(f)), 60);
	assert_int_equal(st.tx_arp_request, 1);
	assert_memory_equal(f, bcast, 6);
	assert_int_equal(r16(f + 20), 1);
	assert_memory_equal(f + 32, zero_mac, 6);
	assert_int_equal(r32(f + 38), PEER_IP);
	assert_int_equal(dp_net_rx(&peer, parp, &pst, f, 60, 60, 1, &rx),
	                 DP_NET_RX_ARP_REPLY_READY);
	assert_int_equal(dp_arp_lookup(parp, OUR_IP, 1, mac), 0);
	assert_memory_equal(mac, our_mac, 6);
	assert_int_equal(dp_net_rx(&us, arp2, &st, f, rx.reply_len, rx.reply_len, 2, &rx),
	                 DP_NET_RX_CONSUMED);
	assert_int_equal(st.rx_arp_reply, 1);
	assert_int_equal(dp_arp_lookup(arp2, PEER_IP, 3, mac), 0);
	assert_memory_equal(mac, peer_mac, 6);
	/* Too small a buffer for a request. */
	assert_int_equal(dp_net_arp_request(&us, NULL, PEER_IP, f, 59), 0);
	assert_int_equal(total(&st), 5);
	dp_arp_destroy(parp);
	dp_arp_destroy(arp2);
	dp_arp_destroy(arp);
}

static void test_arp_learning_rules(void **state)
{
	(void)state;
	struct dp_net_cfg us = our_cfg();
	struct dp_arp *arp = dp_arp_create(64);
	struct dp_net_stats st = {0};
	uint8_t f[60];
	struct dp_net_rx rx;
	uint8_t mac[6];
	const uint32_t stranger = IP4(10, 77, 0, 50);

	/* Gratuitous ARP (sender = target) from a host we do not know: not learnt. */
	make_arp(f, bcast, 1, other_mac, stranger, zero_mac, stranger);
	assert_int_equal(dp_net_rx(&us, arp, &st, f, 60, 60, 0, &rx), DP_NET_RX_DROP);
	assert_int_equal(rx.drop, DP_NET_DROP_ARP_NOT_FOR_US);
	assert_int_equal(dp_arp_lookup(arp, stranger, 0, mac), -ENOENT);
	/* A reply to another host: not learnt either. */
	make_arp(f, other_mac, 2, peer_mac, PEER_IP, other_mac, stranger);
	assert_int_equal(dp_net_rx(&us, arp, &st, f, 60, 60, 0, &rx), DP_NET_RX_DROP);
	assert_int_equal(rx.drop, DP_NET_DROP_ARP_NOT_FOR_US);
	assert_int_equal(dp_arp_lookup(arp, PEER_IP, 0, mac), -ENOENT);

	/* Known host: a gratuitous ARP (its NIC moved) updates the entry. */
	dp_arp_learn(arp, PEER_IP, peer_mac, 0);
	make_arp(f, bcast, 2, other_mac, PEER_IP, bcast, PEER_IP);
	assert_int_equal(dp_net_rx(&us, arp, &st, f, 60, 60, 10, &rx), DP_NET_RX_CONSUMED);
	assert_int_equal(dp_arp_lookup(arp, PEER_IP, 10, mac), 0);
	assert_memory_equal(mac, other_mac, 6);
	/* A request between other hosts from a known sender refreshes it (RFC 826 merge). */
	make_arp(f, bcast, 1, peer_mac, PEER_IP, zero_mac, stranger);
	assert_int_equal(dp_net_rx(&us, arp, &st, f, 60, 60, 20, &rx), DP_NET_RX_CONSUMED);
	assert_int_equal(dp_arp_lookup(arp, PEER_IP, 20, mac), 0);
	assert_memory_equal(mac, peer_mac, 6);
	assert_int_equal(st.rx_arp_update, 2);
	/* ... and keeps it alive: valid a TTL after that refresh, not after the learn. */
	assert_int_equal(dp_arp_lookup(arp, PEER_IP, DP_ARP_TTL_NS + 19, mac), 0);
	assert_int_equal(dp_arp_lookup(arp, PEER_IP, DP_ARP_TTL_NS + 20, mac), -ENOENT);

	/* An ARP probe (sender 0.0.0.0) for our address is answered, not learnt. */
	make_arp(f, bcast, 1, other_mac, 0, zero_mac, OUR_IP);
	assert_int_equal(dp_net_rx(&us, arp, &st, f, 60, 60, 30, &rx), DP_NET_RX_ARP_REPLY_READY);
	assert_memory_equal(f, other_mac, 6);
	assert_int_equal(r32(f + 38), 0);
	assert_int_equal(dp_arp_lookup(arp, 0, 30, mac), -ENOENT);
	/* A request for us from off the subnet is answered, not learnt. */
	make_arp(f, bcast, 1, other_mac, IP4(10, 78, 0, 1), zero_mac, OUR_IP);
	assert_int_equal(dp_net_rx(&us, arp, &st, f, 60, 60, 30, &rx), DP_NET_RX_ARP_REPLY_READY);
	assert_int_equal(dp_arp_lookup(arp, IP4(10, 78, 0, 1), 30, mac), -ENOENT);
	/* A reply to us from off the subnet: we never asked. */
	make_arp(f, our_mac, 2, other_mac, IP4(10, 78, 0, 1), our_mac, OUR_IP);
	assert_int_equal(dp_net_rx(&us, arp, &st, f, 60, 60, 30, &rx), DP_NET_RX_DROP);
	assert_int_equal(rx.drop, DP_NET_DROP_ARP_BAD);

	/* Someone else claims our address; our own request echoed back. */
	make_arp(f, bcast, 1, other_mac, OUR_IP, zero_mac, OUR_IP);
	assert_int_equal(dp_net_rx(&us, arp, &st, f, 60, 60, 40, &rx), DP_NET_RX_DROP);
	assert_int_equal(rx.drop, DP_NET_DROP_ARP_CONFLICT);
	dp_net_arp_request(&us, NULL, PEER_IP, f, sizeof(f));
	assert_int_equal(dp_net_rx(&us, arp, &st, f, 60, 60, 40, &rx), DP_NET_RX_DROP);
	assert_int_equal(rx.drop, DP_NET_DROP_ARP_NOT_FOR_US);
	assert_int_equal(dp_arp_lookup(arp, OUR_IP, 40, mac), -ENOENT);
	assert_int_equal(total(&st), 9);
	dp_arp_destroy(arp);
}

static void test_arp_cache(void **state)
{
	(void)state;
	uint8_t mac[6];
	errno = 0;
	assert_null(dp_arp_create(0));
	assert_int_equal(errno, EINVAL);
	assert_null(dp_arp_create(DP_ARP_CAP_MAX + 1));
	dp_arp_destroy(NULL);

	struct dp_arp *a = dp_arp_create(4);
	assert_non_null(a);
	uint64_t t = 1000 * SEC;

	/* Unknown: one request, then none for 100 ms, then another. */
	assert_int_equal(dp_arp_lookup(a, PEER_IP, t, mac), -ENOENT);
	assert_true(dp_arp_should_request(a, PEER_IP, t));
	assert_false(dp_arp_should_request(a, PEER_IP, t));
	assert_false(dp_arp_should_request(a, PEER_IP, t + 99 * MS));
	assert_int_equal(dp_arp_lookup(a, PEER_IP, t + 99 * MS, mac), -ENOENT); /* pending */
	assert_true(dp_arp_should_request(a, PEER_IP, t + 100 * MS));
	assert_false(dp_arp_should_request(a, PEER_IP, t + 150 * MS));
	/* Per IP: another address is not held back by this one. */
	assert_true(dp_arp_should_request(a, GW_IP, t + 150 * MS));
	assert_false(dp_arp_should_request(a, 0, t));

	/* Learnt: used, no requests while fresh. */
	t += SEC;
	dp_arp_learn(a, PEER_IP, peer_mac, t);
	assert_int_equal(dp_arp_lookup(a, PEER_IP, t, mac), 0);
	assert_memory_equal(mac, peer_mac, 6);
	assert_false(dp_arp_should_request(a, PEER_IP, t + SEC));
	/* Near the end of its life: still used, re-requested (rate-limited). */
	uint64_t r = t + DP_ARP_TTL_NS - DP_ARP_REFRESH_NS;
	assert_false(dp_arp_should_request(a, PEER_IP, r - 1));
	assert_true(dp_arp_should_request(a, PEER_IP, r));
	assert_false(dp_arp_should_request(a, PEER_IP, r + 50 * MS));
	assert_true(dp_arp_should_request(a, PEER_IP, r + 100 * MS));
	assert_int_equal(dp_arp_lookup(a, PEER_IP, t + DP_ARP_TTL_NS - 1, mac), 0);
	/* Expired. */
	memset(mac, 0x77, 6);
	assert_int_equal(dp_arp_lookup(a, PEER_IP, t + DP_ARP_TTL_NS, mac), -ENOENT);
	assert_int_equal(mac[0], 0x77); /* untouched */
	assert_true(dp_arp_should_request(a, PEER_IP, t + DP_ARP_TTL_NS));
	/* Relearnt. */
	dp_arp_learn(a, PEER_IP, other_mac, t + DP_ARP_TTL_NS + 1);
	assert_int_equal(dp_arp_lookup(a, PEER_IP, t + DP_ARP_TTL_NS + 2, mac), 0);
	assert_memory_equal(mac, other_mac, 6);

	/* Not learnt: address 0, multicast, broadcast or zero MACs. */
	static const uint8_t mcast[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
	dp_arp_learn(a, 0, peer_mac, t);
	dp_arp_learn(a, IP4(10, 77, 0, 60), mcast, t);
	dp_arp_learn(a, IP4(10, 77, 0, 61), bcast, t);
	dp_arp_learn(a, IP4(10, 77, 0, 62), zero_mac, t);
	assert_int_equal(dp_arp_lookup(a, 0, t, mac), -ENOENT);
	assert_int_equal(dp_arp_lookup(a, IP4(10, 77, 0, 60), t, mac), -ENOENT);
	assert_int_equal(dp_arp_lookup(a, IP4(10, 77, 0, 61), t, mac), -ENOENT);
	assert_int_equal(dp_arp_lookup(a, IP4(10, 77, 0, 62), t, mac), -ENOENT);
	dp_arp_destroy(a);

	/* Full table: the least recently used entry makes room. */
	a = dp_arp_create(4);
	t = 0;
	for (uint32_t i = 1; i <= 4; i++)
		dp_arp_learn(a, IP4(10, 77, 0, 100 + i), peer_mac, t + i);
	assert_int_equal(dp_arp_lookup(a, IP4(10, 77, 0, 101), 10, mac), 0); /* .101 used */
	dp_arp_learn(a, IP4(10, 77, 0, 105), other_mac, 11);                 /* evicts .102 */
	assert_int_equal(dp_arp_lookup(a, IP4(10, 77, 0, 102), 12, mac), -ENOENT);
	assert_int_equal(dp_arp_lookup(a, IP4(10, 77, 0, 101), 12, mac), 0);
	assert_int_equal(dp_arp_lookup(a, IP4(10, 77, 0, 103), 13, mac), 0);
	assert_int_equal(dp_arp_lookup(a, IP4(10, 77, 0, 104), 14, mac), 0);
	assert_int_equal(dp_arp_lookup(a, IP4(10, 77, 0, 105), 15, mac), 0);
	assert_memory_equal(mac, other_mac, 6);
	/* A request for a new address takes a slot too (the LRU one: .101). */
	assert_true(dp_arp_should_request(a, IP4(10, 77, 0, 106), 16));
	assert_int_equal(dp_arp_lookup(a, IP4(10, 77, 0, 101), 17, mac), -ENOENT);
	assert_int_equal(dp_arp_lookup(a, IP4(10, 77, 0, 103), 17, mac), 0);
	dp_arp_destroy(a);
}

/* One crafted frame per drop reason: each is counted once under its reason. */
static void test_every_drop_reason(void **state)
{
	(void)state;
	struct dp_net_cfg us = our_cfg();
	struct dp_arp *arp = dp_arp_create(64);
	struct dp_net_stats st = {0};
	static uint8_t f[9100];
	struct dp_net_rx rx;
	bool hit[DP_NET_DROP_COUNT] = {false};
	uint32_t n;

#define EXPECT_DROP(len, why)                                                                      \
	do {                                                                                       \
		struct dp_net_stats before = st;                                                   \
		assert_int_equal(dp_net_rx(&us, arp, &st, f, (len), (len), 0, &rx),                \
		                 DP_NET_RX_DROP);                                                  \
		assert_int_equal(rx.drop, (why));                                                  \
		assert_int_equal(st.drops[(why)], before.drops[(why)] + 1);                        \
		assert_int_equal(total(&st), total(&before) + 1);                                  \
		hit[(why)] = true;                                                                 \
	} while (0)

	/* runt: shorter than Ethernet, than ARP, than IPv4's header. */
	n = make_udp(f, 100);
	EXPECT_DROP(13, DP_NET_DROP_RUNT);
	EXPECT_DROP(14 + 19, DP_NET_DROP_RUNT);
	make_arp(f, bcast, 1, peer_mac, PEER_IP, zero_mac, OUR_IP);
	EXPECT_DROP(41, DP_NET_DROP_RUNT);

	/* Ether types: IPv6, LLDP, 802.1Q, 802.1ad. */
	n = make_udp(f, 100);
	w16(f + 12, 0x86DD);
	EXPECT_DROP(n, DP_NET_DROP_OTHER_ETHERTYPE);
	w16(f + 12, 0x88CC);
	EXPECT_DROP(n, DP_NET_DROP_OTHER_ETHERTYPE);
	w16(f + 12, 0x8100);
	EXPECT_DROP(n, DP_NET_DROP_VLAN);
	w16(f + 12, 0x88A8);
	EXPECT_DROP(n, DP_NET_DROP_VLAN);

	/* bad_ip_header: version, IHL, total length either way, checksum. */
	n = make_udp(f, 100);
	f[14] = 0x65;
	ip_fix_csum(f);
	EXPECT_DROP(n, DP_NET_DROP_BAD_IP_HEADER);
	n = make_udp(f, 100);
	f[14] = 0x44; /* IHL 4: shorter than the minimum */
	ip_fix_csum(f);
	EXPECT_DROP(n, DP_NET_DROP_BAD_IP_HEADER);
	n = make_udp(f, 100);
	w16(f + 16, n - 14 + 1); /* beyond the frame */
	ip_fix_csum(f);
	EXPECT_DROP(n, DP_NET_DROP_BAD_IP_HEADER);
	n = make_udp(f, 100);
	w16(f + 16, 19); /* shorter than the header */
	ip_fix_csum(f);
	EXPECT_DROP(n, DP_NET_DROP_BAD_IP_HEADER);
	n = make_udp(f, 100);
	f[14 + 8] = 63; /* TTL changed, checksum not */
	EXPECT_DROP(n, DP_NET_DROP_BAD_IP_HEADER);

	/* not_for_us. */
	n = make_udp(f, 100);
	w32(f + 30, IP4(10, 77, 0, 99));
	ip_fix_csum(f);
	EXPECT_DROP(n, DP_NET_DROP_NOT_FOR_US);
	w32(f + 30, 0xFFFFFFFF);
	ip_fix_csum(f);
	EXPECT_DROP(n, DP_NET_DROP_NOT_FOR_US);

	/* ip_options: four NOPs. */
	n = make_udp(f, 100);
	memmove(f + 38, f + 34, n - 34);
	memset(f + 34, 1, 4);
	f[14] = 0x46;
	w16(f + 16, r16(f + 16) + 4);
	ip_fix_csum(f);
	EXPECT_DROP(n + 4, DP_NET_DROP_IP_OPTIONS);

	/* fragment: MF, then an offset. */
	n = make_udp(f, 100);
	w16(f + 20, 0x2000);
	ip_fix_csum(f);
	EXPECT_DROP(n, DP_NET_DROP_FRAGMENT);
	w16(f + 20, 0x0010);
	ip_fix_csum(f);
	EXPECT_DROP(n, DP_NET_DROP_FRAGMENT);

	/* too_big: 1501 bytes of IP on our 1500 MTU link. */
	n = make_udp(f, 1473);
	EXPECT_DROP(n, DP_NET_DROP_TOO_BIG);
	n = make_udp(f, 1472); /* exactly the MTU: fine */
	assert_int_equal(dp_net_rx(&us, arp, &st, f, n, n, 0, &rx), DP_NET_RX_AMST);

	/* not_udp: TCP. */
	n = make_udp(f, 100);
	f[23] = 6;
	ip_fix_csum(f);
	EXPECT_DROP(n, DP_NET_DROP_NOT_UDP);

	/* bad_udp_length: no room for a UDP header, a length either way. */
	n = make_udp(f, 0);
	w16(f + 16, 27);
	ip_fix_csum(f);
	EXPECT_DROP(n, DP_NET_DROP_BAD_UDP_LENGTH);
	n = make_udp(f, 100);
	w16(f + 38, 107);
	EXPECT_DROP(n, DP_NET_DROP_BAD_UDP_LENGTH);
	w16(f + 38, 109);
	EXPECT_DROP(n, DP_NET_DROP_BAD_UDP_LENGTH);
	w16(f + 38, 7);
	EXPECT_DROP(n, DP_NET_DROP_BAD_UDP_LENGTH);

	/* wrong_port. */
	n = make_udp(f, 100);
	w16(f + 36, PORT + 1);
	EXPECT_DROP(n, DP_NET_DROP_WRONG_PORT);

	/* bad_udp_checksum: a correct one is taken, a wrong one is not. */
	n = make_udp(f, 101); /* odd length: the last byte is padded in the sum */
	w16(f + 40, udp_csum(f));
	assert_int_equal(dp_net_rx(&us, arp, &st, f, n, n, 0, &rx), DP_NET_RX_AMST);
	f[42 + 100] ^= 0x01;
	EXPECT_DROP(n, DP_NET_DROP_BAD_UDP_CHECKSUM);
	f[42 + 100] ^= 0x01;
	w16(f + 40, r16(f + 40) ^ 0x8000);
	EXPECT_DROP(n, DP_NET_DROP_BAD_UDP_CHECKSUM);
	/* A sum that comes to zero is sent as 0xFFFF (RFC 768) and verifies. */
	n = make_udp(f, 2);
	f[42] = 0;
	f[43] = 0;
	w16(f + 42, udp_csum(f)); /* the payload word cancels the rest: the sum is 0xFFFF */
	assert_int_equal(udp_csum(f), 0xFFFF);
	w16(f + 40, 0xFFFF);
	assert_int_equal(dp_net_rx(&us, arp, &st, f, n, n, 0, &rx), DP_NET_RX_AMST);

	/* arp_bad: hardware type, protocol, lengths, opcode, multicast sender. */
	make_arp(f, bcast, 1, peer_mac, PEER_IP, zero_mac, OUR_IP);
	w16(f + 14, 6);
	EXPECT_DROP(60, DP_NET_DROP_ARP_BAD);
	make_arp(f, bcast, 1, peer_mac, PEER_IP, zero_mac, OUR_IP);
	w16(f + 16, 0x86DD);
	EXPECT_DROP(60, DP_NET_DROP_ARP_BAD);
	make_arp(f, bcast, 1, peer_mac, PEER_IP, zero_mac, OUR_IP);
	f[18] = 8;
	EXPECT_DROP(60, DP_NET_DROP_ARP_BAD);
	make_arp(f, bcast, 1, peer_mac, PEER_IP, zero_mac, OUR_IP);
	f[19] = 16;
	EXPECT_DROP(60, DP_NET_DROP_ARP_BAD);
	make_arp(f, bcast, 3, peer_mac, PEER_IP, zero_mac, OUR_IP);
	EXPECT_DROP(60, DP_NET_DROP_ARP_BAD);
	make_arp(f, bcast, 1, bcast, PEER_IP, zero_mac, OUR_IP);
	EXPECT_DROP(60, DP_NET_DROP_ARP_BAD);
	make_arp(f, bcast, 1, zero_mac, PEER_IP, zero_mac, OUR_IP);
	EXPECT_DROP(60, DP_NET_DROP_ARP_BAD);

	/* arp_not_for_us, arp_conflict. */
	make_arp(f, bcast, 1, peer_mac, PEER_IP, zero_mac, IP4(10, 77, 0, 99));
	EXPECT_DROP(60, DP_NET_DROP_ARP_NOT_FOR_US);
	make_arp(f, bcast, 2, peer_mac, OUR_IP, bcast, OUR_IP);
	EXPECT_DROP(60, DP_NET_DROP_ARP_CONFLICT);
#undef EXPECT_DROP

	for (int i = 0; i < DP_NET_DROP_COUNT; i++) {
		if (!hit[i])
			fail_msg("drop reason %s never hit", dp_net_drop_names[i]);
		assert_non_null(dp_net_drop_names[i]);
	}
	assert_string_equal(dp_net_drop_names[DP_NET_DROP_OTHER_ETHERTYPE], "other_ethertype");
	/* Nothing was learnt from any of them. */
	uint8_t mac[6];
	assert_int_equal(dp_arp_lookup(arp, PEER_IP, 0, mac), -ENOENT);
	dp_arp_destroy(arp);
}

/* Every prefix of real frames, each in a heap buffer of exactly its size. */
static void test_truncated_frames(void **state)
{
	(void)state;
	struct dp_net_cfg us = our_cfg();
	struct dp_arp *arp = dp_arp_create(64);
	struct dp_net_stats st = {0};
	static uint8_t full[4][1600];
	uint32_t full_len[4];
	full_len[0] = make_udp(full[0], 1472);
	full_len[1] = make_udp(full[1], 3);
	w16(full[1] + 40, udp_csum(full[1]));
	full_len[2] = make_arp(full[2], bcast, 1, peer_mac, PEER_IP, zero_mac, OUR_IP);
	full_len[3] = make_arp(full[3], our_mac, 2, peer_mac, PEER_IP, our_mac, OUR_IP);
	uint64_t calls = 0;
	for (int k = 0; k < 4; k++) {
		for (uint32_t len = 0; len <= full_len[k]; len++) {
			uint8_t *b = malloc(len ? len : 1);
			assert_non_null(b);
			memcpy(b, full[k], len);
			struct dp_net_rx rx;
			enum dp_net_rx_kind kind = dp_net_rx(&us, arp, &st, b, len, len, 0, &rx);
			calls++;
			switch (kind) {
			case DP_NET_RX_AMST:
				assert_true(k < 2);
				assert_int_equal(len, full_len[k]);
				assert_ptr_equal(rx.payload, b + 42);
				assert_true(rx.payload_len <= len - 42);
				break;
			case DP_NET_RX_ARP_REPLY_READY:
				assert_int_equal(k, 2);
				assert_true(len >= 42);
				assert_int_equal(rx.reply_len, len >= 60 ? 60 : 42);
				break;
			case DP_NET_RX_CONSUMED:
				assert_int_equal(k, 3);
				assert_true(len >= 42);
				break;
			case DP_NET_RX_DROP:
				assert_true(len < (k < 2 ? full_len[k] : 42u));
				assert_true(rx.drop < DP_NET_DROP_COUNT);
				break;
			}
			free(b);
		}
	}
	assert_int_equal(total(&st), calls);
	assert_int_equal(st.drops[DP_NET_DROP_RUNT], 34 + 34 + 42 + 42);
	dp_arp_destroy(arp);
}

/* Frames the Linux kernel sent over a veth pair (10.77.0.12, MAC ...:0c, to
 * 10.77.0.11, MAC ...:0b; unpadded, as veth delivers them; checksum offload
 * off, so the checksums are final): its ARP request for us, its ARP reply to
 * us, and a UDP datagram from a socket, whose UDP checksum the kernel filled
 * in. Also in tests/fuzz/seeds-dp_net/. */
static const uint8_t linux_arp_request[] = {
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x08, 0x06,
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0c,
        0x0a, 0x4d, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x4d, 0x00, 0x0b,
};
static const uint8_t linux_arp_reply[] = {
        0x02, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x08, 0x06,
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0c,
        0x0a, 0x4d, 0x00, 0x0c, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x0a, 0x4d, 0x00, 0x0b,
};
static const uint8_t linux_udp[] = {
        0x02, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x08, 0x00,
        0x45, 0x00, 0x00, 0x6c, 0xa1, 0xf2, 0x40, 0x00, 0x40, 0x11, 0x83, 0xde, 0x0a, 0x4d,
        0x00, 0x0c, 0x0a, 0x4d, 0x00, 0x0b, 0x1d, 0x2f, 0x1d, 0x2f, 0x00, 0x58, 0x1b, 0x16,
        0xa1, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
        0x07, 0x08, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
        0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19,
        0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27,
        0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35,
        0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
};

static void test_linux_frames(void **state)
{
	(void)state;
	struct dp_net_cfg us = our_cfg();
	struct dp_arp *arp = dp_arp_create(64);
	struct dp_net_stats st = {0};
	uint8_t f[128];
	struct dp_net_rx rx;
	uint8_t mac[6];

	memcpy(f, linux_udp, sizeof(linux_udp));
	assert_int_not_equal(r16(f + 40), 0); /* a real checksum, verified */
	assert_int_equal(dp_net_rx(&us, arp, &st, f, sizeof(linux_udp), sizeof(f), 1, &rx),
	                 DP_NET_RX_AMST);
	assert_int_equal(rx.src_ip, PEER_IP);
	assert_int_equal(rx.src_port, PORT);
	assert_int_equal(rx.payload_len, 80);
	assert_int_equal(rx.payload[0], 0xA1);
	f[100] ^= 0x20;
	assert_int_equal(dp_net_rx(&us, arp, &st, f, sizeof(linux_udp), sizeof(f), 1, &rx),
	                 DP_NET_RX_DROP);
	assert_int_equal(rx.drop, DP_NET_DROP_BAD_UDP_CHECKSUM);

	memcpy(f, linux_arp_reply, sizeof(linux_arp_reply));
	assert_int_equal(dp_net_rx(&us, arp, &st, f, sizeof(linux_arp_reply), sizeof(f), 1, &rx),
	                 DP_NET_RX_CONSUMED);
	assert_int_equal(dp_arp_lookup(arp, PEER_IP, 1, mac), 0);
	assert_memory_equal(mac, peer_mac, 6);

	memcpy(f, linux_arp_request, sizeof(linux_arp_request));
	assert_int_equal(dp_net_rx(&us, arp, &st, f, sizeof(linux_arp_request), sizeof(f), 1, &rx),
	                 DP_NET_RX_ARP_REPLY_READY);
	assert_int_equal(rx.reply_len, 60);
	/* What Linux sends as its reply, byte for byte, plus the padding. */
	uint8_t want[60] = {0};
	memcpy(want, linux_arp_reply, sizeof(linux_arp_reply));
	memcpy(want, peer_mac, 6);
	memcpy(want + 6, our_mac, 6);
	memcpy(want + 22, our_mac, 6);
	w32(want + 28, OUR_IP);
	memcpy(want + 32, peer_mac, 6);
	w32(want + 38, PEER_IP);
	assert_memory_equal(f, want, 60);
	assert_int_equal(st.rx_amst, 1);
	assert_int_equal(st.rx_arp_reply, 1);
	assert_int_equal(st.rx_arp_request, 1);
	assert_int_equal(total(&st), 4);
	dp_arp_destroy(arp);
}

static void test_next_hop(void **state)
{
	(void)state;
	struct dp_net_cfg c = our_cfg();
	/* On the subnet: itself; off it: the gateway. */
	assert_int_equal(dp_net_next_hop(&c, PEER_IP), PEER_IP);
	assert_int_equal(dp_net_next_hop(&c, IP4(10, 77, 0, 254)), IP4(10, 77, 0, 254));
	assert_int_equal(dp_net_next_hop(&c, GW_IP), GW_IP);
	assert_int_equal(dp_net_next_hop(&c, IP4(10, 77, 1, 12)), GW_IP);
	assert_int_equal(dp_net_next_hop(&c, IP4(192, 0, 2, 1)), GW_IP);
	/* Not unicast hosts: unreachable. */
	assert_int_equal(dp_net_next_hop(&c, 0), 0);
	assert_int_equal(dp_net_next_hop(&c, OUR_IP), 0);
	assert_int_equal(dp_net_next_hop(&c, IP4(10, 77, 0, 0)), 0);
	assert_int_equal(dp_net_next_hop(&c, IP4(10, 77, 0, 255)), 0);
	assert_int_equal(dp_net_next_hop(&c, IP4(224, 0, 0, 1)), 0);
	assert_int_equal(dp_net_next_hop(&c, 0xFFFFFFFF), 0);
	/* No gateway: off the subnet is unreachable. */
	c.gateway = 0;
	assert_int_equal(dp_net_next_hop(&c, PEER_IP), PEER_IP);
	assert_int_equal(dp_net_next_hop(&c, IP4(10, 77, 1, 12)), 0);
	/* Other prefixes: /16, /31 (both addresses are hosts), /32, /0. */
	c.prefix_len = 16;
	assert_int_equal(dp_net_next_hop(&c, IP4(10, 77, 1, 12)), IP4(10, 77, 1, 12));
	assert_int_equal(dp_net_next_hop(&c, IP4(10, 77, 255, 255)), 0);
	assert_int_equal(dp_net_next_hop(&c, IP4(10, 78, 0, 1)), 0);
	c.ip = IP4(10, 77, 0, 10);
	c.prefix_len = 31;
	assert_int_equal(dp_net_next_hop(&c, IP4(10, 77, 0, 11)), IP4(10, 77, 0, 11));
	assert_int_equal(dp_net_next_hop(&c, IP4(10, 77, 0, 12)), 0);
	c.prefix_len = 32;
	c.gateway = GW_IP;
	assert_int_equal(dp_net_next_hop(&c, IP4(10, 77, 0, 11)), GW_IP);
	c.prefix_len = 0;
	assert_int_equal(dp_net_next_hop(&c, IP4(192, 0, 2, 1)), IP4(192, 0, 2, 1));
}

static void test_cfg_check(void **state)
{
	(void)state;
	char err[128];
	struct dp_net_cfg c = our_cfg();
	assert_int_equal(dp_net_cfg_check(&c, err, sizeof(err)), 0);
	c.gateway = 0;
	assert_int_equal(dp_net_cfg_check(&c, err, sizeof(err)), 0);

	struct dp_net_cfg b;
#define BAD(stmt, text)                                                                            \
	do {                                                                                       \
		b = our_cfg();                                                                     \
		stmt;                                                                              \
		err[0] = 0;                                                                        \
		assert_int_equal(dp_net_cfg_check(&b, err, sizeof(err)), -EINVAL);                 \
		if (strstr(err, text) == NULL)                                                     \
			fail_msg("message '%s' lacks '%s'", err, text);                            \
	} while (0)
	BAD(b.mac[0] = 0x01, "MAC 01:00:00:00:00:0b is not a unicast");
	BAD(memset(b.mac, 0, 6), "MAC 00:00:00:00:00:00");
	BAD(b.ip = 0, "address 0.0.0.0 is not a unicast");
	BAD(b.ip = IP4(224, 0, 0, 5), "not a unicast");
	BAD(b.ip = IP4(10, 77, 0, 255), "network or broadcast address of 10.77.0.255/24");
	BAD(b.ip = IP4(10, 77, 0, 0), "network or broadcast");
	BAD(b.prefix_len = 33, "prefix length 33 is not 0-32");
	BAD(b.gateway = IP4(10, 0, 1, 1), "gateway 10.0.1.1 is not a host on subnet 10.77.0.11/24");
	BAD(b.gateway = OUR_IP, "gateway 10.77.0.11");
	BAD(b.gateway = IP4(10, 77, 0, 255), "gateway 10.77.0.255 is not a host");
	BAD(b.udp_port = 0, "UDP port 0");
	BAD(b.dscp = 64, "DSCP 64 is not 0-63");
	BAD(b.mtu = 575, "MTU 575 is not 576-9000");
	BAD(b.mtu = 9001, "MTU 9001");
#undef BAD
	/* /31 and /32 have no network or broadcast address. */
	c = our_cfg();
	c.gateway = 0;
	c.ip = IP4(10, 77, 0, 10);
	c.prefix_len = 31;
	assert_int_equal(dp_net_cfg_check(&c, NULL, 0), 0);
	c.prefix_len = 32;
	assert_int_equal(dp_net_cfg_check(&c, NULL, 0), 0);
}

static void test_parsers(void **state)
{
	(void)state;
	char err[128], s[DP_NET_IP_STRLEN];
	uint32_t ip;
	uint8_t pl;

	static const struct {
		const char *text;
		uint32_t ip;
	} good_ip[] = {
	        {"10.77.0.11", IP4(10, 77, 0, 11)},
	        {"0.0.0.0", 0},
	        {"255.255.255.255", 0xFFFFFFFF},
	        {"1.2.3.4", IP4(1, 2, 3, 4)},
	        {"192.168.100.200", IP4(192, 168, 100, 200)},
	};
	for (size_t i = 0; i < sizeof(good_ip) / sizeof(good_ip[0]); i++) {
		ip = 1;
		assert_int_equal(dp_net_parse_ip(good_ip[i].text, &ip, err, sizeof(err)), 0);
		assert_int_equal(ip, good_ip[i].ip);
		dp_net_ip_str(ip, s);
		assert_string_equal(s, good_ip[i].text); /* canonical: prints back the same */
	}

	static const struct {
		const char *text, *msg;
	} bad_ip[] = {
	        {"10.0.0.256", "'10.0.0.256': 256 is not 0-255"},
	        {"1.2.3", "'1.2.3': 3 numbers, expected 4"},
	        {" 1.2.3.4", "unexpected ' '"},
	        {"1.2.3.4 ", "unexpected ' '"},
	        {"01.2.3.4", "leading zero in 01"},
	        {"1.2.3.00", "leading zero in 00"},
	        {"1.2.3.4.5", "more than 4 numbers"},
	        {"1..3.4", "empty number"},
	        {".1.2.3", "empty number"},
	        {"1.2.3.", "empty number"},
	        {"", "empty address"},
	        {"1.2.3.4/24", "unexpected '/'"},
	        {"1.2.3.-4", "unexpected '-'"},
	        {"1.2.3.+4", "unexpected '+'"},
	        {"1.2.3.0x4", "unexpected 'x'"},
	        {"1.2.3.4\n", "unexpected \\x0a"},
	        {"1.2.3.99999999999999999999", "is not 0-255"},
	        {"1.2.3.1000", "1000 is not 0-255"},
	        {"localhost", "unexpected 'l'"},
	};
	for (size_t i = 0; i < sizeof(bad_ip) / sizeof(bad_ip[0]); i++) {
		ip = 0xDEADBEEF;
		err[0] = 0;
		assert_int_equal(dp_net_parse_ip(bad_ip[i].text, &ip, err, sizeof(err)), -EINVAL);
		assert_int_equal(ip, 0xDEADBEEF);
		if (strstr(err, bad_ip[i].msg) == NULL)
			fail_msg("'%s': message '%s' lacks '%s'", bad_ip[i].text, err,
			         bad_ip[i].msg);
	}
	assert_int_equal(dp_net_parse_ip(NULL, &ip, NULL, 0), -EINVAL);

	static const struct {
		const char *text;
		uint32_t ip;
		uint8_t pl;
	} good_cidr[] = {
	        {"10.77.0.11/24", IP4(10, 77, 0, 11), 24},
	        {"10.77.0.11/0", IP4(10, 77, 0, 11), 0},
	        {"10.77.0.11/32", IP4(10, 77, 0, 11), 32},
	        {"10.77.0.11/9", IP4(10, 77, 0, 11), 9},
	};
	for (size_t i = 0; i < sizeof(good_cidr) / sizeof(good_cidr[0]); i++) {
		assert_int_equal(dp_net_parse_cidr(good_cidr[i].text, &ip, &pl, err, sizeof(err)),
		                 0);
		assert_int_equal(ip, good_cidr[i].ip);
		assert_int_equal(pl, good_cidr[i].pl);
	}
	static const struct {
		const char *text, *msg;
	} bad_cidr[] = {
	        {"1.2.3.4/33", "prefix length 33 is not 0-32"},
	        {"1.2.3.4/", "no prefix length after '/'"},
	        {"1.2.3.4", "no prefix length (expected A.B.C.D/N"},
	        {"1.2.3.4/024", "prefix length 024 is not 0-32"},
	        {"1.2.3.4/08", "leading zero in the prefix length"},
	        {"1.2.3.4/24 ", "unexpected ' ' in the prefix length"},
	        {"1.2.3.4/-1", "unexpected '-'"},
	        {"1.2.3.4/2/4", "unexpected '/'"},
	        {"1.2.3.4//24", "unexpected '/'"},
	        {"/24", "empty address"},
	        {"10.0.0.256/24", "256 is not 0-255"},
	        {"1.2.3/24", "3 numbers, expected 4"},
	        {" 1.2.3.4/24", "unexpected ' '"},
	        {"1.2.3.4 /24", "unexpected ' '"},
	        {"1.2.3.4/ 24", "unexpected ' '"},
	};
	for (size_t i = 0; i < sizeof(bad_cidr) / sizeof(bad_cidr[0]); i++) {
		ip = 0xDEADBEEF;
		pl = 99;
		err[0] = 0;
		assert_int_equal(dp_net_parse_cidr(bad_cidr[i].text, &ip, &pl, err, sizeof(err)),
		                 -EINVAL);
		assert_int_equal(ip, 0xDEADBEEF);
		assert_int_equal(pl, 99);
		if (strstr(err, bad_cidr[i].msg) == NULL)
			fail_msg("'%s': message '%s' lacks '%s'", bad_cidr[i].text, err,
			         bad_cidr[i].msg);
	}
	/* A tiny error buffer is still terminated; a long input is cut in the message. */
	char tiny[8];
	assert_int_equal(dp_net_parse_ip("1.2.3", &ip, tiny, sizeof(tiny)), -EINVAL);
	assert_true(strlen(tiny) < sizeof(tiny));
	char longtext[300];
	memset(longtext, '1', sizeof(longtext) - 1);
	longtext[sizeof(longtext) - 1] = 0;
	assert_int_equal(dp_net_parse_ip(longtext, &ip, err, sizeof(err)), -EINVAL);
	assert_true(strlen(err) < sizeof(err));

	dp_net_ip_str(IP4(10, 77, 0, 1), s);
	assert_string_equal(s, "10.77.0.1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_round_trip),
	        cmocka_unit_test(test_ip_checksum),
	        cmocka_unit_test(test_arp_request_answered_in_place),
	        cmocka_unit_test(test_arp_learning_rules),
	        cmocka_unit_test(test_arp_cache),
	        cmocka_unit_test(test_every_drop_reason),
	        cmocka_unit_test(test_truncated_frames),
	        cmocka_unit_test(test_linux_frames),
	        cmocka_unit_test(test_next_hop),
	        cmocka_unit_test(test_cfg_check),
	        cmocka_unit_test(test_parsers),
	};
	return cmocka_run_group_tests_name("dp_net", tests, NULL, NULL);
}
