/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_memif_raw: the raw rate of a memif port between two DPDK processes,
 * with no protocol: the baseline of AMST's goodput on memif (bench_amst).
 *
 *   bench_memif_raw EAL-ARGS -- --role rx [--seconds S] [--warmup S] [--size N]
 *   bench_memif_raw EAL-ARGS -- --role tx [--seconds S] [--size N]
 *
 * Each role is its own process (own --file-prefix, hugepages, one lcore),
 * with one memif vdev in EAL-ARGS (the receiver as server, the sender as
 * client, on one socket). The sender builds Ethernet/IPv4/UDP frames of
 * --size bytes (default 9014: 14 + 20 + 8 + 8972, what AMST sends on memif
 * with an IP MTU of 9000) and blasts them: for every frame it allocates an
 * mbuf (rte_pktmbuf_alloc_bulk) and memcpy's a whole template frame into it,
 * as AMST writes every byte of every packet it sends; a burst that the port
 * does not take at once is offered again (back-pressure, nothing dropped on
 * purpose). The receiver counts the frames and bytes it gets (it does not
 * read them: the memif PMD has already copied each one into an mbuf) over
 * --seconds after --warmup from its first frame, prints one line of JSON,
 * stops polling and waits for the link to go down; the sender sends until
 * SIGTERM or SIGINT (or --seconds + 60 s), then closes its port. So the
 * runner stops the sender once the receiver has printed: neither process
 * touches the memif rings while the other one tears them down (the memif PMD
 * of DPDK 22.11 unmaps the shared regions under a poller's feet on
 * disconnect).
 *
 * Output, one line of JSON per process:
 *   {"role": "rx", "frames", "bytes", "seconds", "gbps" (frames, Ethernet
 *    header to end of payload), "payload_gbps" (UDP payload), "mpps", "fill"}
 *   {"role": "tx", "frames", "gbps", "retries", "seconds", "fill"}
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_memcpy.h>
#include <rte_udp.h>

#define BURST   32
#define NB_MBUF 8191
#define NB_DESC 1024
#define HDR_LEN (14 + 20 + 8)

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_s(void)
{
	return (double)rte_get_timer_cycles() / (double)rte_get_timer_hz();
}

static int port_up(uint16_t port, struct rte_mempool *pool, uint16_t mtu)
{
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	int rc = rte_eth_dev_configure(port, 1, 1, &conf);
	if (rc != 0)
		return rc;
	/* net_memif has no MTU to set (its buffers, bsize, bound the frames);
	 * other PMDs do: try, as the dataplane does. */
	(void)rte_eth_dev_set_mtu(port, mtu);
	uint16_t nrx = NB_DESC, ntx = NB_DESC;
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrx, &ntx);
	if (rc == 0)
		rc = rte_eth_rx_queue_setup(port, 0, nrx, (unsigned)rte_eth_dev_socket_id(port),
		                            NULL, pool);
	if (rc == 0)
		rc = rte_eth_tx_queue_setup(port, 0, ntx, (unsigned)rte_eth_dev_socket_id(port),
		                            NULL);
	if (rc == 0)
		rc = rte_eth_dev_start(port);
	return rc;
}

static bool link_up(uint16_t port)
{
	struct rte_eth_link link;
	memset(&link, 0, sizeof(link));
	return rte_eth_link_get_nowait(port, &link) == 0 && link.link_status == RTE_ETH_LINK_UP;
}

static bool wait_link(uint16_t port, double timeout)
{
	double t0 = now_s();
	while (!stop && now_s() - t0 < timeout) {
		if (link_up(port))
			return true;
		rte_delay_ms(10);
	}
	return false;
}

/* An Ethernet/IPv4/UDP frame of @p size bytes, payload a byte pattern. */
static void build_template(uint8_t *f, uint16_t size)
{
	memset(f, 0, size);
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)f;
	static const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 0x02}, src[6] = {0x02, 0, 0, 0, 0, 0x01};
	memcpy(&eth->dst_addr, dst, 6);
	memcpy(&eth->src_addr, src, 6);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(f + 14);
	ip->version_ihl = 0x45;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(size - 14));
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->src_addr = rte_cpu_to_be_32(0x0a580001); /* 10.88.0.1 */
	ip->dst_addr = rte_cpu_to_be_32(0x0a580002); /* 10.88.0.2 */
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(f + 34);
	udp->src_port = rte_cpu_to_be_16(7471);
	udp->dst_port = rte_cpu_to_be_16(7471);
	udp->dgram_len = rte_cpu_to_be_16((uint16_t)(size - 34));
	for (unsigned i = HDR_LEN; i < size; i++)
		f[i] = (uint8_t)(i * 131 + 7);
}

static int run_tx(uint16_t port, struct rte_mempool *pool, uint16_t size, double seconds)
{
	uint8_t *tmpl = malloc(size);
	if (tmpl == NULL)
		return 1;
	build_template(tmpl, size);
	if (!wait_link(port, 30)) {
		fprintf(stderr, "bench_memif_raw tx: the memif link did not come up\n");
		free(tmpl);
		return 1;
	}
	struct rte_mbuf *pkts[BURST];
	uint16_t have = 0, off = 0; /* pkts[off..have) filled, not yet taken by the port */
	uint64_t frames = 0, retries = 0, no_mbuf = 0;
	double t0 = now_s(), t = t0, deadline = t0 + seconds + 60;
	unsigned loops = 0;
	while (!stop) {
		if (off == have) {
			if (rte_pktmbuf_alloc_bulk(pool, pkts, BURST) != 0) {
				no_mbuf++;
				continue;
			}
			for (unsigned i = 0; i < BURST; i++) {
				struct rte_mbuf *m = pkts[i];
				rte_memcpy(rte_pktmbuf_mtod(m, void *), tmpl, size);
				m->data_len = size;
				m->pkt_len = size;
			}
			have = BURST;
			off = 0;
		}
		uint16_t n = rte_eth_tx_burst(port, 0, pkts + off, (uint16_t)(have - off));
		frames += n;
		off = (uint16_t)(off + n);
		if (off < have)
			retries++;
		if ((++loops & 1023) == 0) {
			t = now_s();
			if (t > deadline)
				break;
		}
	}
	if (off < have)
		rte_pktmbuf_free_bulk(pkts + off, (unsigned)(have - off));
	t = now_s();
	printf("{\"role\": \"tx\", \"frames\": %" PRIu64 ", \"size\": %u, \"seconds\": %.3f, "
	       "\"gbps\": %.3f, \"retries\": %" PRIu64 ", \"no_mbuf\": %" PRIu64 ", "
	       "\"fill\": \"alloc_bulk+memcpy\"}\n",
	       frames, size, t - t0, (double)frames * size * 8 / (t - t0) / 1e9, retries, no_mbuf);
	fflush(stdout);
	free(tmpl);
	return 0;
}

static int run_rx(uint16_t port, uint16_t size, double seconds, double warmup)
{
	if (!wait_link(port, 60)) {
		fprintf(stderr, "bench_memif_raw rx: the memif link did not come up\n");
		return 1;
	}
	struct rte_mbuf *pkts[BURST];
	uint64_t frames = 0, bytes = 0, payload = 0, odd = 0;
	double first = 0, t_start = 0, t = 0, t_wait = now_s();
	bool counting = false;
	while (!stop) {
		uint16_t n = rte_eth_rx_burst(port, 0, pkts, BURST);
		if (n == 0) {
			if (first == 0 && now_s() - t_wait > 60) {
				fprintf(stderr, "bench_memif_raw rx: no frame in 60 s\n");
				return 1;
			}
		} else if (first == 0) {
			first = now_s();
		}
		if (counting) {
			for (uint16_t i = 0; i < n; i++) {
				bytes += pkts[i]->pkt_len;
				payload +=
				        pkts[i]->pkt_len > HDR_LEN ? pkts[i]->pkt_len - HDR_LEN : 0;
				odd += pkts[i]->pkt_len != size;
			}
			frames += n;
		}
		if (n)
			rte_pktmbuf_free_bulk(pkts, n);
		if (first != 0) {
			t = now_s();
			if (!counting && t - first >= warmup) {
				counting = true;
				t_start = t;
			} else if (counting && t - t_start >= seconds) {
				break;
			}
		}
	}
	double d = t - t_start;
	if (!counting || d <= 0) {
		fprintf(stderr, "bench_memif_raw rx: stopped before measuring\n");
		return 1;
	}
	printf("{\"role\": \"rx\", \"frames\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"size\": %u, "
	       "\"other_sizes\": %" PRIu64 ", \"seconds\": %.3f, \"gbps\": %.3f, "
	       "\"payload_gbps\": %.3f, \"mpps\": %.4f, \"fill\": \"alloc_bulk+memcpy\"}\n",
	       frames, bytes, size, odd, d, (double)bytes * 8 / d / 1e9,
	       (double)payload * 8 / d / 1e9, (double)frames / d / 1e6);
	fflush(stdout);
	/* No more polling: wait for the sender to go away (or a signal). */
	for (int i = 0; i < 6000 && !stop && link_up(port); i++)
		rte_delay_ms(10);
	return 0;
}

int main(int argc, char **argv)
{
	int n = rte_eal_init(argc, argv);
	if (n < 0) {
		fprintf(stderr, "bench_memif_raw: EAL init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	argc -= n;
	argv += n;
	const char *role = NULL;
	double seconds = 10, warmup = 1;
	unsigned size = 9014;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
			role = argv[++i];
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc)
			warmup = atof(argv[++i]);
		else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
			size = (unsigned)strtoul(argv[++i], NULL, 10);
		else
			role = NULL, i = argc;
	}
	if (role == NULL || (strcmp(role, "tx") != 0 && strcmp(role, "rx") != 0) || seconds <= 0 ||
	    warmup < 0 || size < HDR_LEN || size > 9018) {
		fprintf(stderr, "usage: bench_memif_raw EAL-ARGS -- --role tx|rx [--seconds S] "
		                "[--warmup S] [--size 42-9018]\n");
		rte_eal_cleanup();
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (rte_eth_dev_count_avail() < 1) {
		fprintf(stderr, "bench_memif_raw: no port (give a memif --vdev)\n");
		rte_eal_cleanup();
		return 1;
	}
	uint16_t port = 0;
	RTE_ETH_FOREACH_DEV (port)
		break;
	/* One frame per mbuf, as in the dataplane (amst.mtu + 18 of room). */
	struct rte_mempool *pool = rte_pktmbuf_pool_create(
	        "raw_mbufs", NB_MBUF, 256, 0, (uint16_t)(9000 + 18 + RTE_PKTMBUF_HEADROOM),
	        (int)rte_socket_id());
	if (pool == NULL) {
		fprintf(stderr, "bench_memif_raw: no mbuf pool: %s\n", rte_strerror(rte_errno));
		rte_eal_cleanup();
		return 1;
	}
	int rc = port_up(port, pool, 9000);
	if (rc != 0) {
		fprintf(stderr, "bench_memif_raw: port start failed: %s\n", rte_strerror(-rc));
		rte_eal_cleanup();
		return 1;
	}
	int ret = strcmp(role, "tx") == 0 ? run_tx(port, pool, (uint16_t)size, seconds)
	                                  : run_rx(port, (uint16_t)size, seconds, warmup);
	rte_eth_dev_stop(port);
	rte_eth_dev_close(port);
	rte_mempool_free(pool);
	rte_eal_cleanup();
	return ret;
}
