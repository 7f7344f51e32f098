/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * wanem: a two-port WAN link emulator for the test topology (tools/wan).
 *
 * It runs in the router namespace, opens an AF_PACKET socket on each of two
 * interfaces and forwards every Ethernet frame received on one out of the
 * other, through a link direction (wanem_link.h): loss, duplication, a rate
 * bottleneck with a tail-drop queue, propagation delay and reordering, all
 * seeded. Frames wait in a preallocated delay line (wanem_fifo.h) and are
 * sent in batches when due; between events the process sleeps in ppoll()
 * until the next due frame or the next received one.
 *
 * Receive: PACKET_MMAP TPACKET_V2 rings, outgoing frames ignored. Send:
 * sendmmsg() with PACKET_QDISC_BYPASS. Counters go as JSON to the --stats
 * file once a second and at exit (SIGINT, SIGTERM).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <math.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wanem_fifo.h"
#include "wanem_link.h"

#define RX_BUDGET  256 /* frames read from one ring per loop */
#define TX_BATCH   64  /* frames per sendmmsg() */
#define BLOCK_SIZE (1u << 20)
#define VLAN_HLEN  4

/* One interface: its socket and receive ring. */
struct port {
	const char *name;
	int fd;
	int ifindex;
	unsigned mtu;
	uint8_t *ring;
	size_t ring_size;
	unsigned frame_size;
	unsigned frames_per_block;
	unsigned frame_nr;
	unsigned next; /* next ring slot to look at */
	uint64_t last_arrival;
	uint64_t ring_drops;
};

/* One direction: frames received on port in, sent on port out. */
struct dir {
	struct port *in, *out;
	struct wanem_link *link;
	struct wanem_fifo *line;     /* in order of due time */
	struct wanem_fifo *held;     /* reordered copies, in order of due time */
	struct wanem_link_stats *st; /* the link's counters */
	uint64_t retry_ns;           /* the out socket was full: send again from then */
};

struct options {
	const char *if1, *if2, *stats;
	struct wanem_link_cfg cfg[2];
	bool rdelay_set[2];
	uint64_t seed;
	unsigned ring_mb;
	unsigned buffer_mb;
	unsigned slack_us;
	unsigned coalesce_us;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("wanem: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* ---- command line ---- */

static void usage(FILE *out)
{
	fputs("usage: wanem --if1 IF --if2 IF [LINK OPTIONS] [--stats FILE] [--seed N]\n"
	      "Forward Ethernet frames between two interfaces through an emulated WAN link.\n"
	      "\n"
	      "Link options apply to both directions, or to the directions chosen by the\n"
	      "last --dir before them (12: IF1 to IF2, 21: IF2 to IF1, both):\n"
	      "  --rate BPS              bottleneck rate in bit/s: 100mbit, 1gbit, 1.5g; 0: none\n"
	      "  --delay-ms X            one-way propagation delay (ms, fractions allowed)\n"
	      "  --loss PCT              random loss, percent (0.1 or 0.1%)\n"
	      "  --loss-burst E,X,B      Gilbert-Elliott loss: percent chances to enter and to\n"
	      "                          exit the bad state per frame, loss percent in it\n"
	      "                          (--loss is then the loss in the good state)\n"
	      "  --reorder PCT           chance a frame is held back by the reorder delay\n"
	      "  --reorder-delay-ms X    how long (default 1 ms)\n"
	      "  --dup PCT               chance a frame is sent twice\n"
	      "  --queue-bytes N         bottleneck queue limit (k, m suffixes); default one\n"
	      "                          bandwidth-delay product, at least 64 full frames\n"
	      "  --overhead N            bytes added per frame when serializing (default 0;\n"
	      "                          24 counts preamble, FCS and inter-frame gap)\n"
	      "Other options:\n"
	      "  --seed N                seed of every random decision (default 1)\n"
	      "  --stats FILE            counters as JSON, rewritten every second and at exit\n"
	      "  --ring-mb N             receive ring per interface, MiB (default 16)\n"
	      "  --buffer-mb N           delay line per direction, MiB (default: sized from\n"
	      "                          rate, delay and queue)\n"
	      "  --timer-slack-us N      lateness allowed to wake-ups, us (default 200)\n"
	      "  --rx-coalesce-us N      under traffic, read the rings every N us rather than\n"
	      "                          wake up for every frame (default 20; 0: per frame)\n",
	      out);
}

static double parse_num(const char *opt, const char *s, char **end)
{
	errno = 0;
	double v = strtod(s, end);
	if (*end == s || errno != 0 || !isfinite(v) || v < 0)
		die("%s: '%s' is not a non-negative number", opt, s);
	return v;
}

static uint64_t parse_rate(const char *opt, const char *s)
{
	char *end;
	double v = parse_num(opt, s, &end);
	static const struct {
		const char *unit;
		double mul;
	} units[] = {{"", 1},       {"bit", 1}, {"k", 1e3},    {"kbit", 1e3}, {"m", 1e6},
	             {"mbit", 1e6}, {"g", 1e9}, {"gbit", 1e9}, {"t", 1e12},   {"tbit", 1e12}};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcasecmp(end, units[i].unit) == 0) {
			v *= units[i].mul;
			if (v > 1e15)
				die("%s: '%s' is too fast", opt, s);
			if (v > 0 && v < 1) /* would round to 0: no limit */
				die("%s: '%s' is below 1 bit/s (0 means no limit)", opt, s);
			return (uint64_t)llround(v);
		}
	die("%s: unknown unit in '%s' (bit/s with k, m, g or kbit, mbit, gbit)", opt, s);
}

static uint64_t parse_size(const char *opt, const char *s)
{
	char *end;
	double v = parse_num(opt, s, &end);

	if (strcasecmp(end, "k") == 0 || strcasecmp(end, "kb") == 0)
		v *= 1024;
	else if (strcasecmp(end, "m") == 0 || strcasecmp(end, "mb") == 0)
		v *= 1024 * 1024;
	else if (strcasecmp(end, "g") == 0 || strcasecmp(end, "gb") == 0)
		v *= 1024 * 1024 * 1024;
	else if (*end != '\0')
		die("%s: unknown unit in '%s' (bytes, k, m, g)", opt, s);
	if (v > 1e12)
		die("%s: '%s' is too large", opt, s);
	return (uint64_t)llround(v);
}

/* A percentage, "0.1" or "0.1%", as a probability. */
static double parse_pct(const char *opt, const char *s, char **endp)
{
	char *end;
	double v = parse_num(opt, s, &end);

	if (*end == '%')
		end++;
	if (v > 100)
		die("%s: '%s' is more than 100%%", opt, s);
	if (endp != NULL)
		*endp = end;
	else if (*end != '\0')
		die("%s: '%s' is not a percentage", opt, s);
	return v / 100;
}

static uint64_t parse_ms(const char *opt, const char *s)
{
	char *end;
	double v = parse_num(opt, s, &end);

	if (strcmp(end, "ms") == 0)
		end += 2;
	if (*end != '\0' || v > 3600e3)
		die("%s: '%s' is not a delay in ms", opt, s);
	return (uint64_t)llround(v * 1e6);
}

static unsigned parse_uint(const char *opt, const char *s, unsigned lo, unsigned hi)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (end == s || *end != '\0' || errno != 0 || v < lo || v > hi)
		die("%s: '%s' is not an integer in [%u, %u]", opt, s, lo, hi);
	return (unsigned)v;
}

enum {
	OPT_IF1 = 256,
	OPT_IF2,
	OPT_DIR,
	OPT_RATE,
	OPT_DELAY,
	OPT_LOSS,
	OPT_BURST,
	OPT_REORDER,
	OPT_RDELAY,
	OPT_DUP,
	OPT_QUEUE,
	OPT_OVERHEAD,
	OPT_SEED,
	OPT_STATS,
	OPT_RING,
	OPT_BUFFER,
	OPT_SLACK,
	OPT_COALESCE,
};

static void parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
	        {"if1", required_argument, NULL, OPT_IF1},
	        {"if2", required_argument, NULL, OPT_IF2},
	        {"dir", required_argument, NULL, OPT_DIR},
	        {"rate", required_argument, NULL, OPT_RATE},
	        {"delay-ms", required_argument, NULL, OPT_DELAY},
	        {"loss", required_argument, NULL, OPT_LOSS},
	        {"loss-burst", required_argument, NULL, OPT_BURST},
	        {"reorder", required_argument, NULL, OPT_REORDER},
	        {"reorder-delay-ms", required_argument, NULL, OPT_RDELAY},
	        {"dup", required_argument, NULL, OPT_DUP},
	        {"queue-bytes", required_argument, NULL, OPT_QUEUE},
	        {"overhead", required_argument, NULL, OPT_OVERHEAD},
	        {"seed", required_argument, NULL, OPT_SEED},
	        {"stats", required_argument, NULL, OPT_STATS},
	        {"ring-mb", required_argument, NULL, OPT_RING},
	        {"buffer-mb", required_argument, NULL, OPT_BUFFER},
	        {"timer-slack-us", required_argument, NULL, OPT_SLACK},
	        {"rx-coalesce-us", required_argument, NULL, OPT_COALESCE},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	bool on[2] = {true, true};
	int c;

	memset(o, 0, sizeof(*o));
	o->seed = 1;
	o->ring_mb = 16;
	o->slack_us = 200;
	o->coalesce_us = 20;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		char name[32] = "option";
		for (const struct option *lo = longopts; lo->name != NULL; lo++)
			if (lo->val == c)
				snprintf(name, sizeof(name), "--%s", lo->name);
		for (int d = 0; d < 2 && c >= OPT_RATE && c <= OPT_OVERHEAD; d++) {
			if (!on[d])
				continue;
			struct wanem_link_cfg *k = &o->cfg[d];
			char *end;
			switch (c) {
			case OPT_RATE:
				k->rate_bps = parse_rate(name, optarg);
				break;
			case OPT_DELAY:
				k->delay_ns = parse_ms(name, optarg);
				break;
			case OPT_LOSS:
				k->loss = parse_pct(name, optarg, NULL);
				break;
			case OPT_BURST:
				k->burst = true;
				k->ge_p_enter = parse_pct(name, optarg, &end);
				if (*end++ != ',')
					die("--loss-burst: want ENTER,EXIT,LOSS_IN_BAD, got '%s'",
					    optarg);
				k->ge_p_exit = parse_pct(name, end, &end);
				if (*end++ != ',')
					die("--loss-burst: want ENTER,EXIT,LOSS_IN_BAD, got '%s'",
					    optarg);
				k->ge_loss_bad = parse_pct(name, end, NULL);
				break;
			case OPT_REORDER:
				k->reorder = parse_pct(name, optarg, NULL);
				break;
			case OPT_RDELAY:
				k->reorder_delay_ns = parse_ms(name, optarg);
				o->rdelay_set[d] = true;
				break;
			case OPT_DUP:
				k->dup = parse_pct(name, optarg, NULL);
				break;
			case OPT_QUEUE:
				k->queue_bytes = parse_size(name, optarg);
				if (k->queue_bytes == 0)
					die("--queue-bytes: must be positive");
				break;
			case OPT_OVERHEAD:
				k->overhead = parse_uint(name, optarg, 0, 1000);
				break;
			}
		}
		switch (c) {
		case OPT_IF1:
			o->if1 = optarg;
			break;
		case OPT_IF2:
			o->if2 = optarg;
			break;
		case OPT_DIR:
			if (strcmp(optarg, "12") == 0) {
				on[0] = true;
				on[1] = false;
			} else if (strcmp(optarg, "21") == 0) {
				on[0] = false;
				on[1] = true;
			} else if (strcmp(optarg, "both") == 0) {
				on[0] = on[1] = true;
			} else {
				die("--dir: want 12, 21 or both, got '%s'", optarg);
			}
			break;
		case OPT_SEED: {
			char *end;
			errno = 0;
			/* Decimal only: strtoull would take "-1" and read "010" as 8. */
			o->seed = strtoull(optarg, &end, 10);
			if (!isdigit((unsigned char)optarg[0]) || *end != '\0' || errno != 0)
				die("--seed: '%s' is not an integer", optarg);
			break;
		}
		case OPT_STATS:
			o->stats = optarg;
			break;
		case OPT_RING:
			o->ring_mb = parse_uint(name, optarg, 1, 1024);
			break;
		case OPT_BUFFER:
			o->buffer_mb = parse_uint(name, optarg, 1, 16384);
			break;
		case OPT_SLACK:
			o->slack_us = parse_uint(name, optarg, 0, 10000);
			break;
		case OPT_COALESCE:
			o->coalesce_us = parse_uint(name, optarg, 0, 10000);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case '?':
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "wanem: unexpected argument '%s'\n", argv[optind]);
		exit(2);
	}
	if (o->if1 == NULL || o->if2 == NULL) {
		fputs("wanem: --if1 and --if2 are required\n", stderr);
		usage(stderr);
		exit(2);
	}
	if (strcmp(o->if1, o->if2) == 0) {
		fputs("wanem: --if1 and --if2 must differ\n", stderr);
		exit(2);
	}
	for (int d = 0; d < 2; d++)
		if (!o->rdelay_set[d])
			o->cfg[d].reorder_delay_ns = 1000000;
}

/* ---- ports ---- */

static uint8_t *slot(const struct port *p, unsigned i)
{
	return p->ring + (size_t)(i / p->frames_per_block) * BLOCK_SIZE +
	       (size_t)(i % p->frames_per_block) * p->frame_size;
}

static void port_open(struct port *p, const char *name, unsigned ring_mb)
{
	struct ifreq ifr;
	int one = 1;

	p->name = name;
	if (strlen(name) >= IFNAMSIZ)
		die("%s: interface name too long", name);
	p->ifindex = (int)if_nametoindex(name);
	if (p->ifindex == 0)
		die("%s: no such interface (%s)", name, strerror(errno));
	/* Protocol 0: nothing is received until bind() picks the interface. */
	p->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (p->fd < 0)
		die("socket(AF_PACKET): %s (needs CAP_NET_RAW)", strerror(errno));
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(p->fd, SIOCGIFMTU, &ifr) < 0)
		die("%s: SIOCGIFMTU: %s", name, strerror(errno));
	p->mtu = (unsigned)ifr.ifr_mtu;
	if (p->mtu > 65000)
		die("%s: MTU %u is too large", name, p->mtu);

	int ver = TPACKET_V2;
	if (setsockopt(p->fd, SOL_PACKET, PACKET_VERSION, &ver, sizeof(ver)) < 0)
		die("%s: PACKET_VERSION: %s", name, strerror(errno));
	/* Our own transmissions must never come back to us; the slot filter in
	 * rx_burst() covers kernels without this option. */
	(void)setsockopt(p->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
	if (setsockopt(p->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0)
		die("%s: PACKET_QDISC_BYPASS: %s", name, strerror(errno));
	int sndbuf = 16 << 20;
	if (setsockopt(p->fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)) < 0)
		(void)setsockopt(p->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));

	/* Slots hold a whole frame of MTU + Ethernet header + one VLAN tag
	 * behind the tpacket header (the data starts at most 80 bytes in). */
	unsigned need = TPACKET_ALIGN(TPACKET2_HDRLEN + 16) + p->mtu + ETH_HLEN + VLAN_HLEN;
	p->frame_size = (need + 63) & ~63u;
	p->frames_per_block = BLOCK_SIZE / p->frame_size;
	unsigned blocks = (unsigned)(((size_t)ring_mb << 20) / BLOCK_SIZE);
	if (blocks == 0)
		blocks = 1;
	p->frame_nr = blocks * p->frames_per_block;
	struct tpacket_req req = {
	        .tp_block_size = BLOCK_SIZE,
	        .tp_block_nr = blocks,
	        .tp_frame_size = p->frame_size,
	        .tp_frame_nr = p->frame_nr,
	};
	if (setsockopt(p->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0)
		die("%s: PACKET_RX_RING: %s", name, strerror(errno));
	p->ring_size = (size_t)blocks * BLOCK_SIZE;
	p->ring = mmap(NULL, p->ring_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, p->fd,
	               0);
	if (p->ring == MAP_FAILED)
		die("%s: mmap of the ring: %s", name, strerror(errno));

	struct sockaddr_ll sll = {
	        .sll_family = AF_PACKET,
	        .sll_protocol = htons(ETH_P_ALL),
	        .sll_ifindex = p->ifindex,
	};
	if (bind(p->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		die("%s: bind: %s", name, strerror(errno));
	/* Frames for other MACs too: this is a wire, not a host. */
	struct packet_mreq mr = {.mr_ifindex = p->ifindex, .mr_type = PACKET_MR_PROMISC};
	if (setsockopt(p->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0)
		die("%s: promiscuous mode: %s", name, strerror(errno));
}

static void port_close(struct port *p)
{
	if (p->ring != NULL && p->ring != MAP_FAILED)
		munmap(p->ring, p->ring_size);
	if (p->fd >= 0)
		close(p->fd);
}

/* Frames the kernel dropped because the ring was full, since last asked. */
static void port_poll_drops(struct port *p)
{
	struct tpacket_stats ts;
	socklen_t len = sizeof(ts);

	if (getsockopt(p->fd, SOL_PACKET, PACKET_STATISTICS, &ts, &len) == 0)
		p->ring_drops += ts.tp_drops;
}

/* ---- the forwarding loop ---- */

/* Copy a received frame into the delay line, putting back a VLAN tag that
 * the kernel took out of it. */
static void store(struct dir *d, const struct tpacket2_hdr *h, const uint8_t *data, uint32_t len,
                  uint64_t due, bool held)
{
	struct wanem_fifo *q = held ? d->held : d->line;
	struct wanem_frame *fr = wanem_fifo_push(q, due, len);

	if (fr == NULL) {
		d->st->buffer_frames++;
		d->st->buffer_bytes += len;
		return;
	}
	if (h->tp_status & TP_STATUS_VLAN_VALID) {
		uint16_t tpid =
		        (h->tp_status & TP_STATUS_VLAN_TPID_VALID) ? h->tp_vlan_tpid : ETH_P_8021Q;
		uint16_t tag[2] = {htons(tpid), htons(h->tp_vlan_tci)};
		memcpy(fr->data, data, 2 * ETH_ALEN);
		memcpy(fr->data + 2 * ETH_ALEN, tag, VLAN_HLEN);
		memcpy(fr->data + 2 * ETH_ALEN + VLAN_HLEN, data + 2 * ETH_ALEN,
		       len - VLAN_HLEN - 2 * ETH_ALEN);
	} else {
		memcpy(fr->data, data, len);
	}
}

/* Read up to RX_BUDGET frames from d->in's ring into the delay line. A frame
 * arrived when the kernel stamped it (CLOCK_REALTIME, @p real_off ns ahead of
 * the monotonic clock), not when we got round to reading it: a burst read
 * after a late wake-up must not look like a burst on the wire. */
static unsigned rx_burst(struct dir *d, uint64_t now, int64_t real_off)
{
	struct port *p = d->in;
	unsigned n;

	for (n = 0; n < RX_BUDGET; n++) {
		struct tpacket2_hdr *h = (struct tpacket2_hdr *)(void *)slot(p, p->next);
		if (!(__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
			break;
		const struct sockaddr_ll *sll =
		        (const void *)((uint8_t *)h + TPACKET_ALIGN(sizeof(*h)));
		uint32_t len = h->tp_len;
		bool vlan = (h->tp_status & TP_STATUS_VLAN_VALID) != 0;
		if (vlan)
			len += VLAN_HLEN;

		if (sll->sll_pkttype == PACKET_OUTGOING) {
			/* our own transmission (kernel without IGNORE_OUTGOING) */
		} else if (h->tp_snaplen < h->tp_len || h->tp_len < 2 * ETH_ALEN) {
			/* truncated by the slot size: offloads left on, or MTU grew */
			d->st->in_frames++;
			d->st->in_bytes += len;
			d->st->error_frames++;
			d->st->error_bytes += len;
		} else {
			const uint8_t *data = (const uint8_t *)h + h->tp_mac;
			uint64_t t = (uint64_t)h->tp_sec * 1000000000ULL + h->tp_nsec;
			t = (uint64_t)((int64_t)t - real_off);
			/* Never in the future, never before the previous frame. */
			if (t > now || h->tp_sec == 0)
				t = now;
			if (t < p->last_arrival)
				t = p->last_arrival;
			p->last_arrival = t;
			struct wanem_verdict v = wanem_link_offer(d->link, t, len);
			for (unsigned i = 0; i < v.copies; i++)
				store(d, h, data, len, v.due_ns[i], v.reordered[i]);
		}
		__atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		p->next = p->next + 1 == p->frame_nr ? 0 : p->next + 1;
	}
	return n;
}

/* How long to wait before sending again into a full socket buffer. */
#define TX_RETRY_NS 100000ULL

/* Send every frame of @p d due by @p now, in due order, in batches. */
static void tx_due(struct dir *d, uint64_t now)
{
	struct mmsghdr msg[TX_BATCH];
	struct iovec iov[TX_BATCH];
	struct wanem_fifo *from[TX_BATCH];

	if (now < d->retry_ns)
		return;
	d->retry_ns = 0;
	for (;;) {
		struct wanem_frame *a = wanem_fifo_first(d->line);
		struct wanem_frame *b = wanem_fifo_first(d->held);
		unsigned n = 0;

		while (n < TX_BATCH) {
			struct wanem_frame *fr;
			bool take_a = a != NULL && a->due_ns <= now &&
			              (b == NULL || a->due_ns <= b->due_ns);
			if (take_a) {
				fr = a;
				from[n] = d->line;
				a = wanem_fifo_next(d->line, a);
			} else if (b != NULL && b->due_ns <= now) {
				fr = b;
				from[n] = d->held;
				b = wanem_fifo_next(d->held, b);
			} else {
				break;
			}
			iov[n].iov_base = fr->data;
			iov[n].iov_len = fr->len;
			memset(&msg[n], 0, sizeof(msg[n]));
			msg[n].msg_hdr.msg_iov = &iov[n];
			msg[n].msg_hdr.msg_iovlen = 1;
			n++;
		}
		if (n == 0)
			return;
		int sent = sendmmsg(d->out->fd, msg, n, MSG_DONTWAIT);
		if (sent < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == ENOBUFS) {
				/* Socket buffer full: the frames stay queued; send
				 * again a little later rather than spin on it. */
				d->retry_ns = now + TX_RETRY_NS;
				return;
			}
			/* The first frame failed (interface down, too long):
			 * count it lost and go on with the rest. */
			d->st->error_frames++;
			d->st->error_bytes += iov[0].iov_len;
			wanem_fifo_pop(from[0]);
			continue;
		}
		for (int i = 0; i < sent; i++) {
			d->st->out_frames++;
			d->st->out_bytes += iov[i].iov_len;
			wanem_fifo_pop(from[i]);
		}
		/* A short count keeps the reason to itself: the next call,
		 * which starts at the first unsent frame, tells it. */
	}
}

static uint64_t next_due(const struct dir *d)
{
	uint64_t t = UINT64_MAX;
	struct wanem_frame *a = wanem_fifo_first(d->line);
	struct wanem_frame *b = wanem_fifo_first(d->held);

	if (a != NULL)
		t = a->due_ns;
	if (b != NULL && b->due_ns < t)
		t = b->due_ns;
	return t < d->retry_ns ? d->retry_ns : t;
}

/* ---- counters ---- */

/* An interface name as a JSON string (names may hold quotes). */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void json_dir(FILE *f, struct dir *d, bool comma)
{
	const struct wanem_link_cfg *c = wanem_link_cfg(d->link);
	const struct wanem_link_stats *s = d->st;

	fputs("    {\"from\": ", f);
	json_str(f, d->in->name);
	fputs(", \"to\": ", f);
	json_str(f, d->out->name);
	fprintf(f,
	        ",\n"
	        "     \"rate_bps\": %" PRIu64 ", \"delay_ns\": %" PRIu64 ", \"loss\": %.6g, "
	        "\"burst\": %s, \"ge_p_enter\": %.6g, \"ge_p_exit\": %.6g, "
	        "\"ge_loss_bad\": %.6g,\n"
	        "     \"reorder\": %.6g, \"reorder_delay_ns\": %" PRIu64 ", \"dup\": %.6g, "
	        "\"queue_limit_bytes\": %" PRIu64 ", \"overhead_bytes\": %u,\n",
	        c->rate_bps, c->delay_ns, c->loss, c->burst ? "true" : "false", c->ge_p_enter,
	        c->ge_p_exit, c->ge_loss_bad, c->reorder, c->reorder_delay_ns, c->dup,
	        c->queue_bytes == UINT64_MAX ? 0 : c->queue_bytes, c->overhead);
	fprintf(f,
	        "     \"in_frames\": %" PRIu64 ", \"in_bytes\": %" PRIu64 ",\n"
	        "     \"out_frames\": %" PRIu64 ", \"out_bytes\": %" PRIu64 ",\n"
	        "     \"loss_frames\": %" PRIu64 ", \"loss_bytes\": %" PRIu64 ",\n"
	        "     \"queue_drop_frames\": %" PRIu64 ", \"queue_drop_bytes\": %" PRIu64 ",\n"
	        "     \"dup_frames\": %" PRIu64 ", \"reorder_frames\": %" PRIu64 ",\n"
	        "     \"buffer_drop_frames\": %" PRIu64 ", \"buffer_drop_bytes\": %" PRIu64 ",\n"
	        "     \"error_frames\": %" PRIu64 ", \"error_bytes\": %" PRIu64 ",\n"
	        "     \"rx_ring_drops\": %" PRIu64 ", \"backlog_max_bytes\": %" PRIu64 ",\n"
	        "     \"in_flight_frames\": %zu}%s\n",
	        s->in_frames, s->in_bytes, s->out_frames, s->out_bytes, s->loss_frames,
	        s->loss_bytes, s->queue_frames, s->queue_bytes, s->dup_frames, s->reorder_frames,
	        s->buffer_frames, s->buffer_bytes, s->error_frames, s->error_bytes,
	        d->in->ring_drops, s->backlog_max_bytes,
	        wanem_fifo_count(d->line) + wanem_fifo_count(d->held), comma ? "," : "");
}

/* Write the counters to @p path atomically (a temporary file, renamed). */
static void write_stats(const char *path, struct dir *dirs, uint64_t seed, uint64_t t0,
                        bool running)
{
	char tmp[4096];

	if (path == NULL)
		return;
	port_poll_drops(dirs[0].in);
	port_poll_drops(dirs[1].in);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return;
	FILE *f = fopen(tmp, "w");
	if (f == NULL)
		return;
	fprintf(f,
	        "{\"wanem\": {\"version\": 1, \"pid\": %d, \"seed\": %" PRIu64
	        ", \"uptime_s\": %.3f, \"running\": %s},\n"
	        " \"links\": [\n",
	        (int)getpid(), seed, (double)(now_ns() - t0) / 1e9, running ? "true" : "false");
	json_dir(f, &dirs[0], true);
	json_dir(f, &dirs[1], false);
	fputs(" ]}\n", f);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		unlink(tmp);
}

/* Delay-line bytes for one fifo: twice what rate x time plus the queue can
 * hold (headers of small frames cost up to half again), plus slack. */
static size_t line_bytes(const struct wanem_link_cfg *c, uint64_t hold_ns, unsigned buffer_mb)
{
	if (buffer_mb)
		return (size_t)buffer_mb << 20;
	uint64_t rate = c->rate_bps ? c->rate_bps : 10000000000ULL; /* size for 10G */
	double bytes = (double)rate * (double)hold_ns / 8e9;
	if (c->queue_bytes != UINT64_MAX)
		bytes += (double)c->queue_bytes;
	bytes = 2 * bytes + (4 << 20);
	if (bytes > (double)(2ULL << 30))
		bytes = (double)(2ULL << 30);
	return (size_t)bytes;
}

/* A packet socket reports its interface going down (ENETDOWN) with POLLERR,
 * which stays up until the error is read: read it, or every ppoll() returns
 * at once. An interface that is gone (its namespace deleted) ends the run. */
static void port_error(struct port *p)
{
	int e = 0;
	socklen_t len = sizeof(e);
	(void)getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &e, &len);
	if (if_nametoindex(p->name) != (unsigned)p->ifindex)
		die("%s is gone (%s)", p->name, e ? strerror(e) : "no error given");
	if (e != 0)
		fprintf(stderr, "wanem: %s: %s\n", p->name, strerror(e));
}

int main(int argc, char **argv)
{
	struct options o;
	struct port ports[2] = {{.fd = -1}, {.fd = -1}};
	struct dir dirs[2];

	parse_args(argc, argv, &o);
	port_open(&ports[0], o.if1, o.ring_mb);
	port_open(&ports[1], o.if2, o.ring_mb);
	for (int i = 0; i < 2; i++) {
		struct dir *d = &dirs[i];
		d->in = &ports[i];
		d->out = &ports[1 - i];
		o.cfg[i].max_frame = d->in->mtu + ETH_HLEN + VLAN_HLEN;
		uint64_t q = o.cfg[i].queue_bytes, frame = o.cfg[i].max_frame + o.cfg[i].overhead;
		if (o.cfg[i].rate_bps != 0 && q != 0 && q != UINT64_MAX && q < frame)
			die("--queue-bytes: %" PRIu64 " B holds no full frame of %s (%" PRIu64
			    " B with overhead): every full-size one would be dropped",
			    q, d->in->name, frame);
		d->retry_ns = 0;
		d->link = wanem_link_create(&o.cfg[i], o.seed, (uint64_t)i);
		if (d->link == NULL)
			die("bad link parameters for %s -> %s", d->in->name, d->out->name);
		const struct wanem_link_cfg *c = wanem_link_cfg(d->link);
		d->st = wanem_link_stats(d->link);
		d->line = wanem_fifo_create(line_bytes(c, c->delay_ns, o.buffer_mb));
		d->held = wanem_fifo_create(
		        c->reorder > 0
		                ? line_bytes(c, c->delay_ns + c->reorder_delay_ns, o.buffer_mb)
		                : 64 << 10);
		if (d->line == NULL || d->held == NULL)
			die("no memory for the delay line of %s -> %s", d->in->name, d->out->name);
		fprintf(stderr,
		        "wanem: %s -> %s: rate %" PRIu64 " bit/s, delay %.3f ms, loss %.4g%%%s, "
		        "queue %" PRIu64 " B, delay line %zu MiB\n",
		        d->in->name, d->out->name, c->rate_bps, (double)c->delay_ns / 1e6,
		        c->loss * 100, c->burst ? " (Gilbert-Elliott)" : "",
		        c->queue_bytes == UINT64_MAX ? 0 : c->queue_bytes,
		        (wanem_fifo_capacity(d->line) + wanem_fifo_capacity(d->held)) >> 20);
	}

	/* SIGINT and SIGTERM are only delivered inside ppoll(): no race
	 * between looking at the flag and going to sleep. */
	sigset_t block, wait_mask;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &wait_mask);
	sigdelset(&wait_mask, SIGINT);
	sigdelset(&wait_mask, SIGTERM);
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* ppoll() may wake this much late, which batches sends. */
	prctl(PR_SET_TIMERSLACK, o.slack_us ? (unsigned long)o.slack_us * 1000 : 1UL, 0, 0, 0);

	uint64_t rx_coalesce = (uint64_t)o.coalesce_us * 1000;
	uint64_t t0 = now_ns();
	uint64_t next_stats = t0 + 1000000000ULL;
	write_stats(o.stats, dirs, o.seed, t0, true);
	fprintf(stderr, "wanem: forwarding %s <-> %s, seed %" PRIu64 "\n", o.if1, o.if2, o.seed);

	struct pollfd pfd[2] = {{.fd = ports[0].fd, .events = POLLIN},
	                        {.fd = ports[1].fd, .events = POLLIN}};
	while (!stop_signal) {
		struct timespec rt;
		uint64_t now = now_ns();
		clock_gettime(CLOCK_REALTIME, &rt);
		int64_t real_off =
		        (int64_t)((uint64_t)rt.tv_sec * 1000000000ULL + (uint64_t)rt.tv_nsec - now);
		unsigned got =
		        rx_burst(&dirs[0], now, real_off) + rx_burst(&dirs[1], now, real_off);
		now = now_ns();
		tx_due(&dirs[0], now);
		tx_due(&dirs[1], now);
		if (now >= next_stats) {
			write_stats(o.stats, dirs, o.seed, t0, true);
			next_stats += 1000000000ULL;
			if (next_stats < now)
				next_stats = now + 1000000000ULL;
		}

		/* Sleep until the next frame is due, or the next second. A ring
		 * left with frames in it: look again at once. Rings drained
		 * under traffic: let frames gather for rx_coalesce ns rather
		 * than wake up for each (their arrival times are kept, so the
		 * link model does not see the wait). Idle: wait for a frame.
		 * ppoll() is the one place where signals are delivered. */
		uint64_t wake = next_stats;
		uint64_t due = next_due(&dirs[0]);
		if (next_due(&dirs[1]) < due)
			due = next_due(&dirs[1]);
		if (due < wake)
			wake = due;
		bool more = got >= RX_BUDGET;
		bool coalesce = got > 0 && !more && rx_coalesce > 0;
		if (more)
			wake = now;
		else if (coalesce && now + rx_coalesce < wake)
			wake = now + rx_coalesce;
		uint64_t wait = wake > now ? wake - now : 0;
		struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000ULL),
		                      .tv_nsec = (long)(wait % 1000000000ULL)};
		if (ppoll(pfd, coalesce ? 0 : 2, &ts, &wait_mask) < 0 && errno != EINTR)
			die("ppoll: %s", strerror(errno));
		for (int i = 0; i < 2 && !coalesce; i++)
			if (pfd[i].revents & POLLERR)
				port_error(&ports[i]);
	}

	write_stats(o.stats, dirs, o.seed, t0, false);
	fprintf(stderr, "wanem: stopped by signal %d\n", (int)stop_signal);
	for (int i = 0; i < 2; i++) {
		wanem_fifo_destroy(dirs[i].line);
		wanem_fifo_destroy(dirs[i].held);
		wanem_link_destroy(dirs[i].link);
		port_close(&ports[i]);
	}
	return 0;
}
