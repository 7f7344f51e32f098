/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp_port: brings up the configured ports (the vdevs EAL probed from the
 * drivers' devargs): one packet pool, one rx/tx queue pair per worker where
 * the device has that many, queues spread over the workers round-robin.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#define NC_LOG_MODULE "port"
#include "dp.h"
#include "nc_log.h"

#define RX_DESC 1024
#define TX_DESC 1024

static int port_start(struct dp *dp, struct dp_port *p, char *err, size_t errlen)
{
	int rc = rte_eth_dev_get_port_by_name(p->spec.devname, &p->port_id);
	if (rc != 0) {
		snprintf(err, errlen, "port %s was not probed by EAL (see the EAL log above)",
		         p->spec.devname);
		return -ENODEV;
	}
	struct rte_eth_dev_info info;
	rc = rte_eth_dev_info_get(p->port_id, &info);
	if (rc != 0)
		goto fail;
	unsigned q = dp->n_workers;
	if (q > info.max_rx_queues)
		q = info.max_rx_queues;
	if (q > info.max_tx_queues)
		q = info.max_tx_queues;
	if (q == 0)
		q = 1;
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	rc = rte_eth_dev_configure(p->port_id, (uint16_t)q, (uint16_t)q, &conf);
	if (rc != 0)
		goto fail;
	uint16_t mtu = (uint16_t)nc_config_get_int(dp->cfg, "amst.mtu");
	if (mtu != RTE_ETHER_MTU && rte_eth_dev_set_mtu(p->port_id, mtu) != 0) {
		if (p->spec.drv->frames_by_device)
			NC_LOG(INFO,
			       "port %s: its PMD takes no MTU %u (it reports frames of %u bytes at "
			       "most); frames pass as the device carries them",
			       p->spec.devname, mtu, (unsigned)info.max_rx_pktlen);
		else
			NC_LOG(WARN,
			       "port %s: its PMD takes no MTU %u (it reports frames of %u bytes at "
			       "most): larger frames may be dropped",
			       p->spec.devname, mtu, (unsigned)info.max_rx_pktlen);
	}
	uint16_t nrx = RX_DESC, ntx = TX_DESC;
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(p->port_id, &nrx, &ntx);
	if (rc != 0)
		goto fail;
	int socket = rte_eth_dev_socket_id(p->port_id);
	for (unsigned i = 0; i < q; i++) {
		rc = rte_eth_rx_queue_setup(p->port_id, (uint16_t)i, nrx, (unsigned)socket, NULL,
		                            dp->pool);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(p->port_id, (uint16_t)i, ntx, (unsigned)socket,
			                            NULL);
		if (rc != 0)
			goto fail;
	}
	rc = rte_eth_dev_start(p->port_id);
	if (rc != 0)
		goto fail;
	p->started = true;
	p->n_queues = (uint16_t)q;
	if (p->spec.drv->setup != NULL) {
		rc = p->spec.drv->setup(&p->spec, p->port_id, err, errlen);
		if (rc != 0)
			return rc;
	}
	NC_LOG(INFO, "port %u %s (%s) up with %u queue pairs", p->port_id, p->spec.devname,
	       p->spec.drv->name, q);
	return 0;
fail:
	snprintf(err, errlen, "port %s: %s", p->spec.devname, rte_strerror(rc < 0 ? -rc : rc));
	return rc < 0 ? rc : -rc;
}

static void ports_stop(struct dp *dp)
{
	for (unsigned i = 0; i < dp->n_ports; i++) {
		struct dp_port *p = &dp->ports[i];
		if (p->started) {
			rte_eth_dev_stop(p->port_id);
			rte_eth_dev_close(p->port_id);
			p->started = false;
		}
	}
	rte_mempool_free(dp->pool);
	dp->pool = NULL;
}

static int ports_init(void *arg, struct nc_init_ctx *ctx, char *err, size_t errlen)
{
	(void)ctx;
	struct dp *dp = arg;
	unsigned n = (unsigned)nc_config_get_int(dp->cfg, "dataplane.mbufs");
	unsigned room = dp->mbuf_room; /* dp_eal: the MTU's and the ports' */
	dp->pool = rte_pktmbuf_pool_create("nc_mbufs", n, 256, 0,
	                                   (uint16_t)(room + RTE_PKTMBUF_HEADROOM),
	                                   (int)rte_socket_id());
	if (dp->pool == NULL) {
		snprintf(err, errlen, "cannot create a pool of %u packet buffers: %s", n,
		         rte_strerror(rte_errno));
		return -ENOMEM;
	}
	for (unsigned i = 0; i < dp->n_ports; i++) {
		int rc = port_start(dp, &dp->ports[i], err, errlen);
		if (rc != 0) {
			ports_stop(dp);
			return rc;
		}
	}
	/* Spread (port, queue) pairs over the workers. With AMST on, all go
	 * to the service worker, the one that runs the sessions: a queue of
	 * another worker (af_packet qpairs, af_xdp queue_count above 1, or a
	 * second port) would drop as unclaimed the packets its hash sends
	 * there. */
	bool amst = nc_config_get_str(dp->cfg, "amst.ip")[0] != '\0';
	unsigned next = 0;
	for (unsigned i = 0; i < dp->n_ports; i++) {
		for (uint16_t q = 0; q < dp->ports[i].n_queues; q++) {
			struct dp_worker *w = &dp->workers[amst ? 0 : next++ % dp->n_workers];
			if (w->n_rxq == sizeof(w->rxq_port) / sizeof(w->rxq_port[0])) {
				/* An unpolled queue would hold its ring's buffers for
				 * good, and drop its traffic uncounted. */
				snprintf(err, errlen,
				         "too many receive queues for worker %u (at most %zu; "
				         "with amst.ip set, one worker polls them all)",
				         w->index, sizeof(w->rxq_port) / sizeof(w->rxq_port[0]));
				ports_stop(dp);
				return -E2BIG;
			}
			w->rxq_port[w->n_rxq] = dp->ports[i].port_id;
			w->rxq_queue[w->n_rxq] = q;
			w->n_rxq++;
		}
	}
	return 0;
}

static void ports_shutdown(void *arg)
{
	ports_stop(arg);
}

static enum nc_health ports_health(void *arg, char *msg, size_t msglen)
{
	struct dp *dp = arg;
	unsigned up = 0;
	for (unsigned i = 0; i < dp->n_ports; i++) {
		struct rte_eth_link link;
		if (rte_eth_link_get_nowait(dp->ports[i].port_id, &link) == 0 && link.link_status)
			up++;
	}
	snprintf(msg, msglen, "%u ports, %u with link up", dp->n_ports, up);
	return NC_HEALTH_OK;
}

void dp_port_refresh_stats(struct dp *dp)
{
	for (unsigned i = 0; i < dp->n_ports && i < NC_MAX_PORTS; i++) {
		struct rte_eth_stats s;
		struct rte_eth_link link;
		struct nc_port_stats *ps = &dp->stats->ports[i];
		if (rte_eth_stats_get(dp->ports[i].port_id, &s) == 0) {
			ps->ipackets = s.ipackets;
			ps->opackets = s.opackets;
			ps->ibytes = s.ibytes;
			ps->obytes = s.obytes;
			ps->imissed = s.imissed;
			ps->ierrors = s.ierrors;
			ps->oerrors = s.oerrors;
		}
		if (rte_eth_link_get_nowait(dp->ports[i].port_id, &link) == 0) {
			ps->link_up = link.link_status;
			ps->link_speed_mbps = link.link_speed;
		}
	}
}

void dp_port_publish(struct dp *dp)
{
	dp->stats->n_ports = dp->n_ports;
	for (unsigned i = 0; i < dp->n_ports; i++) {
		struct nc_port_stats *ps = &dp->stats->ports[i];
		snprintf(ps->name, sizeof(ps->name), "%s", dp->ports[i].spec.devname);
		snprintf(ps->driver, sizeof(ps->driver), "%s", dp->ports[i].spec.drv->name);
		ps->port_id = dp->ports[i].port_id;
	}
	dp_port_refresh_stats(dp);
}

json_t *dp_port_json(const struct dp *dp)
{
	json_t *a = json_array();
	for (unsigned i = 0; i < dp->n_ports; i++) {
		const struct dp_port *p = &dp->ports[i];
		char shown[sizeof(p->spec.devargs)];
		(void)nc_drv_devargs_shown(&p->spec, shown, sizeof(shown));
		json_t *o = json_pack("{s:s, s:s, s:s, s:b}", "name", p->spec.devname, "driver",
		                      p->spec.drv->name, "devargs", shown, "started", p->started);
		if (p->started) {
			json_object_set_new(o, "port_id", json_integer(p->port_id));
			json_object_set_new(o, "queues", json_integer(p->n_queues));
		}
		if (dp->stats != NULL && p->started) {
			const struct nc_port_stats *ps = &dp->stats->ports[i];
			json_object_set_new(o, "link_up", json_boolean(ps->link_up));
			json_object_set_new(o, "ipackets", json_integer((json_int_t)ps->ipackets));
			json_object_set_new(o, "opackets", json_integer((json_int_t)ps->opackets));
			json_object_set_new(o, "ibytes", json_integer((json_int_t)ps->ibytes));
			json_object_set_new(o, "obytes", json_integer((json_int_t)ps->obytes));
			json_object_set_new(o, "imissed", json_integer((json_int_t)ps->imissed));
			json_object_set_new(o, "ierrors", json_integer((json_int_t)ps->ierrors));
		}
		json_array_append_new(a, o);
	}
	return a;
}

int dp_port_component(struct dp *dp)
{
	static const char *const deps[] = {"eal", NULL};
	const struct nc_component c = {
	        .name = "ports",
	        .phase = NC_PHASE_CORE,
	        .deps = deps,
	        .init = ports_init,
	        .health = ports_health,
	        .shutdown = ports_shutdown,
	        .arg = dp,
	        .timeout_ms = 10000,
	};
	return nc_app_add(dp->app, &c);
}
