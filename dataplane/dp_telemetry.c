/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp_telemetry: NovaCron's commands on DPDK's telemetry socket
 * (/var/run/dpdk/PREFIX/dpdk_telemetry.v2): /novacron/status,
 * /novacron/workers and /novacron/ports, for tools that speak telemetry.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_telemetry.h>

#define NC_LOG_MODULE "telemetry"
#include "dp.h"
#include "nc_log.h"

/* Telemetry callbacks take no argument. */
static struct dp *tel_dp;

static int tel_status(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd, (void)params;
	struct nc_stats_shm *s = tel_dp->stats;
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "process", "novacron-dp");
	rte_tel_data_add_dict_string(d, "state", nc_app_state_name(nc_app_state(tel_dp->app)));
	rte_tel_data_add_dict_u64(d, "abi_version", NC_ABI_VERSION);
	rte_tel_data_add_dict_u64(d, "workers", tel_dp->n_workers);
	rte_tel_data_add_dict_u64(d, "ports", tel_dp->n_ports);
	rte_tel_data_add_dict_string(d, "poll_mode",
	                             atomic_load(&tel_dp->poll_mode) == NC_POLL_BUSY ? "busy"
	                                                                             : "adaptive");
	if (s != NULL) {
		rte_tel_data_add_dict_u64(d, "heartbeat", s->heartbeat);
		rte_tel_data_add_dict_u64(d, "commands", s->cmds);
		rte_tel_data_add_dict_u64(d, "command_errors", s->cmd_errors);
	}
	return 0;
}

static int tel_workers(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd, (void)params;
	rte_tel_data_start_dict(d);
	for (unsigned i = 0; i < tel_dp->n_workers && tel_dp->stats; i++) {
		const struct nc_worker_stats *st = &tel_dp->stats->workers[i];
		struct rte_tel_data *w = rte_tel_data_alloc();
		if (w == NULL)
			return -1;
		rte_tel_data_start_dict(w);
		rte_tel_data_add_dict_u64(w, "lcore", st->lcore_id);
		rte_tel_data_add_dict_u64(w, "loops", st->loops);
		rte_tel_data_add_dict_u64(w, "busy_loops", st->busy_loops);
		rte_tel_data_add_dict_u64(w, "sleeps", st->sleeps);
		rte_tel_data_add_dict_u64(w, "rx_pkts", st->rx_pkts);
		rte_tel_data_add_dict_u64(w, "drops", st->drops);
		char name[24];
		snprintf(name, sizeof(name), "worker%u", i);
		rte_tel_data_add_dict_container(d, name, w, 0);
	}
	return 0;
}

static int tel_ports(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd, (void)params;
	rte_tel_data_start_dict(d);
	for (unsigned i = 0; i < tel_dp->n_ports && tel_dp->stats; i++) {
		const struct nc_port_stats *ps = &tel_dp->stats->ports[i];
		struct rte_tel_data *p = rte_tel_data_alloc();
		if (p == NULL)
			return -1;
		rte_tel_data_start_dict(p);
		rte_tel_data_add_dict_string(p, "driver", ps->driver);
		rte_tel_data_add_dict_u64(p, "port_id", ps->port_id);
		rte_tel_data_add_dict_u64(p, "link_up", ps->link_up);
		rte_tel_data_add_dict_u64(p, "ipackets", ps->ipackets);
		rte_tel_data_add_dict_u64(p, "opackets", ps->opackets);
		rte_tel_data_add_dict_u64(p, "ibytes", ps->ibytes);
		rte_tel_data_add_dict_u64(p, "obytes", ps->obytes);
		rte_tel_data_add_dict_container(d, ps->name, p, 0);
	}
	return 0;
}

static int tel_init(void *arg, struct nc_init_ctx *ctx, char *err, size_t errlen)
{
	(void)ctx;
	tel_dp = arg;
	if (rte_telemetry_register_cmd("/novacron/status", tel_status,
	                               "NovaCron dataplane state. Takes no parameters") != 0 ||
	    rte_telemetry_register_cmd("/novacron/workers", tel_workers,
	                               "NovaCron worker counters. Takes no parameters") != 0 ||
	    rte_telemetry_register_cmd("/novacron/ports", tel_ports,
	                               "NovaCron port counters. Takes no parameters") != 0) {
		snprintf(err, errlen, "cannot register telemetry commands");
		return -EINVAL;
	}
	return 0;
}

int dp_telemetry_component(struct dp *dp)
{
	static const char *const deps[] = {"shm", NULL};
	const struct nc_component c = {
	        .name = "telemetry",
	        .phase = NC_PHASE_SERVICE,
	        .deps = deps,
	        .init = tel_init,
	        .arg = dp,
	        .timeout_ms = 2000,
	        .optional = true,
	};
	return nc_app_add(dp->app, &c);
}
