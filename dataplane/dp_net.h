/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp_net: the Ethernet / ARP / IPv4 / UDP layer under AMST (docs/amst.md,
 * "Encapsulation"). It classifies received frames (AMST datagrams for our
 * address and port, ARP for us, everything else dropped and counted by
 * reason), answers ARP requests in place, keeps a small ARP cache, builds ARP
 * requests and wraps AMST packets in Ethernet + IPv4 + UDP headers.
 *
 * It works on plain byte buffers (the caller passes an mbuf's data and
 * length): no DPDK, no clock of its own, no allocation and no logging per
 * packet, so it is unit-tested and fuzzed without EAL (tests/test_dp_net.c,
 * tests/fuzz/fuzz_dp_net.c). Every parser here reads only inside the buffer
 * it is given.
 *
 * Byte order: IPv4 addresses and ports in the API are in host byte order;
 * on the wire everything is big-endian. MAC addresses are 6 bytes as on the
 * wire.
 *
 * Return convention: constructors return a pointer or NULL with errno;
 * builders return the bytes written, or 0 when they cannot; others return 0
 * or a negative errno and, where they take err/errlen, write a one-line
 * message there on failure.
 *
 * Threads: a struct dp_arp and a struct dp_net_stats belong to one thread (a
 * worker); nothing here locks. Functions taking only a const cfg are
 * thread-safe.
 */
#ifndef DP_NET_H
#define DP_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DP_NET_ETH_HDR_LEN 14
#define DP_NET_IP_HDR_LEN  20 /* IPv4 without options: all we send or take */
#define DP_NET_UDP_HDR_LEN 8
#define DP_NET_HDR_LEN     42 /* Ethernet 14 + IPv4 20 + UDP 8 */
#define DP_NET_ARP_LEN     28 /* ARP for IPv4 over Ethernet */
#define DP_NET_MIN_FRAME   60 /* Ethernet minimum without the FCS */
#define DP_NET_IP_STRLEN   16 /* "255.255.255.255" and its NUL */

#define DP_NET_ETHER_IPV4 0x0800
#define DP_NET_ETHER_ARP  0x0806

#define DP_NET_MTU_MIN 576 /* the range of amst.mtu in the config table */
#define DP_NET_MTU_MAX 9000

/** The port's addressing, from the amst.* config keys. */
struct dp_net_cfg {
	uint8_t mac[6];     /**< our port's MAC (unicast, non-zero) */
	uint32_t ip;        /**< our IPv4 address */
	uint8_t prefix_len; /**< our subnet, 0-32 (e.g. 24) */
	uint32_t gateway;   /**< next hop for addresses outside the subnet, 0 = none */
	uint16_t udp_port;  /**< AMST's UDP port, ours and the peers' (non-zero) */
	uint8_t dscp;       /**< DSCP of our packets, 0-63 */
	uint16_t mtu;       /**< IP MTU of the link, DP_NET_MTU_MIN-DP_NET_MTU_MAX */
};

/*
 * Why a received frame was dropped: enum dp_net_drop and dp_net_drop_names[]
 * from one list. The checks run in this order for IPv4: runt, bad_ip_header,
 * not_for_us, ip_options, fragment, too_big, not_udp, bad_udp_length,
 * wrong_port, bad_udp_checksum.
 */
#define DP_NET_FOREACH_DROP(X)                                                                     \
	X(RUNT, "runt")                         /* ends before the headers its type announces */   \
	X(OTHER_ETHERTYPE, "other_ethertype")   /* neither IPv4 nor ARP: IPv6, LLDP, ... */        \
	X(VLAN, "vlan")                         /* 802.1Q/802.1ad tagged: not handled (yet) */     \
	X(BAD_IP_HEADER, "bad_ip_header")       /* version, IHL, total length or checksum */       \
	X(NOT_FOR_US, "not_for_us")             /* IPv4 to another address */                      \
	X(IP_OPTIONS, "ip_options")             /* IHL > 5: we send none, take none */             \
	X(FRAGMENT, "fragment")                 /* MF set or a fragment offset: not reassembled */ \
	X(TOO_BIG, "too_big")                   /* IPv4 total length above our MTU */              \
	X(NOT_UDP, "not_udp")                   /* ICMP, TCP, ... */                               \
	X(BAD_UDP_LENGTH, "bad_udp_length")     /* UDP length not the IPv4 payload's */            \
	X(WRONG_PORT, "wrong_port")             /* UDP to a port other than AMST's */              \
	X(BAD_UDP_CHECKSUM, "bad_udp_checksum") /* non-zero checksum that does not verify */       \
	X(ARP_BAD, "arp_bad")                   /* not Ethernet/IPv4 ARP, bad opcode or sender */  \
	X(ARP_NOT_FOR_US, "arp_not_for_us")     /* to others from a stranger, or our own echo */   \
	X(ARP_CONFLICT, "arp_conflict")         /* another MAC claims our IP address */

enum dp_net_drop {
#define DP_NET_DROP_ENUM(sym, name) DP_NET_DROP_##sym,
	DP_NET_FOREACH_DROP(DP_NET_DROP_ENUM)
#undef DP_NET_DROP_ENUM
	        DP_NET_DROP_COUNT,
};

extern const char *const dp_net_drop_names[DP_NET_DROP_COUNT];

/**
 * Counters of one worker. Every frame given to dp_net_rx() adds one to
 * exactly one of rx_amst, rx_arp_request, rx_arp_reply, rx_arp_update and
 * drops[]. tx_* count frames built (dp_net_rx() replies and
 * dp_net_arp_request()), whether or not the caller then sent them.
 */
struct dp_net_stats {
	uint64_t rx_amst;        /**< UDP datagrams for AMST handed up */
	uint64_t rx_arp_request; /**< requests for our address (each answered) */
	uint64_t rx_arp_reply;   /**< replies addressed to us (sender learnt) */
	uint64_t rx_arp_update;  /**< other ARP from a host in the cache (entry refreshed) */
	uint64_t tx_arp_request;
	uint64_t tx_arp_reply;
	uint64_t drops[DP_NET_DROP_COUNT];
};

/*
 * ARP cache: a small fixed table. An entry is learnt from an ARP request for
 * our address and from an ARP reply to us; gratuitous ARP and ARP not
 * addressed to us only refresh an entry that exists (RFC 826's merge), so
 * strangers cannot fill the table. Entries are valid for DP_ARP_TTL_NS after
 * they were learnt or refreshed. When the table is full, the entry least
 * recently learnt, looked up or requested makes room.
 *
 * Lookups scan the table: it is meant for the handful of peers a dataplane
 * talks to (capacity up to DP_ARP_CAP_MAX); cache the MAC per session if a
 * scan per packet is too much.
 */
#define DP_ARP_TTL_NS     (300ull * 1000000000ull) /* 5 min */
#define DP_ARP_REFRESH_NS (30ull * 1000000000ull)  /* re-request this long before expiry */
#define DP_ARP_RETRY_NS   (100ull * 1000000ull)    /* at most one request per IP per 100 ms */
#define DP_ARP_CAP_MAX    4096

struct dp_arp;

/**
 * A cache of @p cap entries (1-DP_ARP_CAP_MAX, e.g. 64), allocated here and
 * only here. Returns NULL with errno EINVAL (bad cap) or ENOMEM.
 */
struct dp_arp *dp_arp_create(unsigned cap);

/** Free the cache; NULL is fine. */
void dp_arp_destroy(struct dp_arp *a);

/**
 * The MAC of @p ip, if learnt and not expired at @p now_ns: copied to @p mac,
 * returns 0. Otherwise -ENOENT and @p mac untouched. A hit marks the entry
 * as used (it is then the last to be evicted).
 */
int dp_arp_lookup(struct dp_arp *a, uint32_t ip, uint64_t now_ns, uint8_t mac[6]);

/**
 * Record that @p ip is at @p mac (creating or refreshing the entry; when the
 * table is full the least recently used entry makes room). Ignores ip 0 and
 * multicast, broadcast or all-zero MACs.
 */
void dp_arp_learn(struct dp_arp *a, uint32_t ip, const uint8_t mac[6], uint64_t now_ns);

/**
 * Whether to send an ARP request for @p ip now: true when @p ip has no valid
 * entry, or one that expires within DP_ARP_REFRESH_NS (so an active peer is
 * re-resolved while its entry still works), and no request for it was allowed
 * in the last DP_ARP_RETRY_NS. A true answer marks the request as made
 * (creating a pending entry if needed). Call it whenever a lookup fails, and
 * from time to time for peers in use. False for ip 0.
 */
bool dp_arp_should_request(struct dp_arp *a, uint32_t ip, uint64_t now_ns);

enum dp_net_rx_kind {
	DP_NET_RX_DROP,            /**< not for us or malformed; out->drop says why */
	DP_NET_RX_AMST,            /**< a UDP datagram for AMST: out->src_* and payload */
	DP_NET_RX_ARP_REPLY_READY, /**< the frame is now our ARP reply: send it, out->reply_len */
	DP_NET_RX_CONSUMED,        /**< ARP taken into the cache; free the frame */
};

/** What dp_net_rx() found. Fields not listed for a kind are left unset. */
struct dp_net_rx {
	uint32_t src_ip;    /**< AMST: the sender's address */
	uint16_t src_port;  /**< AMST: the sender's UDP port */
	uint8_t src_mac[6]; /**< AMST: the frame's Ethernet source */
	uint8_t *payload;   /**< AMST: the UDP payload, inside the frame */
	uint32_t payload_len;
	uint32_t reply_len;    /**< ARP_REPLY_READY: length of the reply at frame */
	enum dp_net_drop drop; /**< DROP: the reason (also counted in stats) */
};

/**
 * Classify one received frame of @p len bytes (Ethernet header first, no
 * FCS). Reads only [frame, frame + len).
 *
 * - UDP/IPv4 to our address and AMST's port, with a valid header, no options,
 *   not a fragment, within our MTU and a UDP checksum that is zero or
 *   verifies: returns DP_NET_RX_AMST; out->payload points into the frame
 *   (the caller owns the frame; the payload lives as long as it does).
 * - An ARP request for our address: learns the sender (if it is on our
 *   subnet), rewrites the frame IN PLACE into our ARP reply (to the
 *   requester's MAC) and returns DP_NET_RX_ARP_REPLY_READY; the caller sends
 *   out->reply_len bytes from @p frame. The reply is padded with zeros to
 *   DP_NET_MIN_FRAME bytes when @p cap allows, where @p cap (>= len) is how
 *   many bytes may be written at @p frame (pass len if the buffer cannot
 *   grow: the NIC pads short frames); bytes between the ARP body and
 *   reply_len are zeroed.
 * - An ARP reply to us (learnt), or other ARP from a host already in the
 *   cache (refreshed): DP_NET_RX_CONSUMED.
 * - Anything else: DP_NET_RX_DROP, the reason in out->drop and counted in
 *   @p st.
 *
 * @p arp, @p st and @p out are required (one set per worker). Never
 * allocates or logs. @p frame is only written for an ARP reply.
 */
enum dp_net_rx_kind dp_net_rx(const struct dp_net_cfg *cfg, struct dp_arp *arp,
                              struct dp_net_stats *st, uint8_t *frame, uint32_t len, uint32_t cap,
                              uint64_t now_ns, struct dp_net_rx *out);

/**
 * The address to resolve with ARP to reach @p dst_ip: @p dst_ip itself on our
 * subnet, else the gateway. Returns 0 when it is unreachable: off the subnet
 * with no gateway, or not a unicast host (0, multicast, 240/4, broadcast,
 * our own address, or the subnet's network or broadcast address when the
 * prefix is 30 or shorter).
 */
uint32_t dp_net_next_hop(const struct dp_net_cfg *cfg, uint32_t dst_ip);

/**
 * Build a broadcast ARP request for @p target_ip into @p buf, padded with
 * zeros to DP_NET_MIN_FRAME bytes. Returns DP_NET_MIN_FRAME, or 0 if @p cap
 * is smaller. Counts tx_arp_request in @p st (may be NULL).
 */
uint32_t dp_net_arp_request(const struct dp_net_cfg *cfg, struct dp_net_stats *st,
                            uint32_t target_ip, uint8_t *buf, uint32_t cap);

/**
 * Write Ethernet + IPv4 + UDP headers into the first DP_NET_HDR_LEN bytes of
 * @p buf, in front of a payload of @p payload_len bytes that the caller has
 * already placed at buf + DP_NET_HDR_LEN. IPv4: no options, DF, TTL 64, DSCP
 * from @p cfg (ECN 0), identification @p ip_id (the caller's per-port
 * counter), header checksum in software. UDP: from cfg->udp_port to
 * @p dst_port, checksum 0 (AMST has its own integrity). Returns the frame
 * length (DP_NET_HDR_LEN + payload_len; the NIC pads below
 * DP_NET_MIN_FRAME), or 0 if payload_len exceeds cfg->mtu - 28.
 */
uint32_t dp_net_udp_encap(const struct dp_net_cfg *cfg, const uint8_t dst_mac[6], uint32_t dst_ip,
                          uint16_t dst_port, uint8_t *buf, uint32_t payload_len, uint16_t ip_id);

/**
 * Check a cfg before use: a unicast non-zero MAC; a unicast host address that
 * is neither the subnet's network nor broadcast address (prefix 30 or
 * shorter); prefix_len 0-32; a gateway (if any) on the subnet and not our
 * address; a non-zero port; DSCP 0-63; MTU DP_NET_MTU_MIN-DP_NET_MTU_MAX.
 * Returns 0 or -EINVAL with a message in @p err ("gateway 10.0.1.1 is not on
 * subnet 10.77.0.11/24").
 */
int dp_net_cfg_check(const struct dp_net_cfg *cfg, char *err, size_t errlen);

/**
 * Parse a dotted quad, strictly: exactly four decimal numbers 0-255 joined by
 * '.', nothing before or after (no spaces), and no leading zeros ("01.2.3.4"
 * is refused: inet_aton would read it as octal). So a text that parses is
 * exactly what dp_net_ip_str() prints for it. Returns 0 and *ip, or -EINVAL
 * with a message ("'10.0.0.256': 256 is not 0-255") and *ip untouched.
 */
int dp_net_parse_ip(const char *s, uint32_t *ip, char *err, size_t errlen);

/**
 * Parse "A.B.C.D/N" (an interface address and its prefix length, so host
 * bits are expected): the address as dp_net_parse_ip(), N decimal 0-32 with
 * no leading zeros, both required. Returns 0, or -EINVAL with a message and
 * the outputs untouched.
 */
int dp_net_parse_cidr(const char *s, uint32_t *ip, uint8_t *prefix_len, char *err, size_t errlen);

/** Format @p ip as a dotted quad into @p buf (always NUL-terminated). */
void dp_net_ip_str(uint32_t ip, char buf[DP_NET_IP_STRLEN]);

#endif /* DP_NET_H */
