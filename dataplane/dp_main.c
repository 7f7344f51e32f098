/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * novacron-dp: the dataplane process, DPDK primary. Declares its components
 * (EAL, ports, shared-memory rings and stats, workers, telemetry) and hands
 * the process to nc_app, which boots them, serves the control socket and
 * shuts them down in reverse order on SIGTERM.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NC_LOG_MODULE "dp"
#include <rte_mempool.h>

#include "dp.h"
#include "dp_amst.h"
#include "nc_log.h"

uint64_t dp_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int dp_status(json_t *st, void *arg)
{
	struct dp *dp = arg;
	json_object_set_new(
	        st, "poll_mode",
	        json_string(atomic_load(&dp->poll_mode) == NC_POLL_BUSY ? "busy" : "adaptive"));
	json_object_set_new(st, "file_prefix",
	                    json_string(nc_config_get_str(dp->cfg, "dataplane.file_prefix")));
	json_object_set_new(st, "abi_version", json_integer(NC_ABI_VERSION));
	if (dp->stats != NULL) {
		json_object_set_new(st, "heartbeat",
		                    json_integer((json_int_t)dp->stats->heartbeat));
		json_object_set_new(st, "commands", json_integer((json_int_t)dp->stats->cmds));
	}
	json_object_set_new(st, "workers", dp_worker_json(dp));
	json_object_set_new(st, "ports", dp_port_json(dp));
	json_object_set_new(st, "amst", dp_amst_json(dp));
	if (dp->pool != NULL)
		json_object_set_new(st, "mbufs_free",
		                    json_integer((json_int_t)rte_mempool_avail_count(dp->pool)));
	return 0;
}

int main(int argc, char **argv)
{
	int code;
	struct nc_app *app = nc_app_create(
	        "dp", "NovaCron dataplane: DPDK poll-mode workers carrying migration streams.",
	        argc, argv, &code);
	if (app == NULL)
		return code;
	struct dp *dp = calloc(1, sizeof(*dp));
	if (dp == NULL) {
		fprintf(stderr, "novacron-dp: out of memory\n");
		nc_app_destroy(app);
		return 1;
	}
	dp->app = app;
	dp->cfg = nc_app_config(app);
	nc_app_set_status_fn(app, dp_status, dp);

	int rc = dp_eal_component(dp);
	if (rc == 0)
		rc = dp_shm_component(dp);
	if (rc == 0)
		rc = dp_port_component(dp);
	if (rc == 0)
		rc = dp_worker_component(dp);
	if (rc == 0)
		rc = dp_telemetry_component(dp);
	if (rc == 0)
		rc = dp_amst_component(dp);
	if (rc != 0) {
		fprintf(stderr, "novacron-dp: %s\n", strerror(-rc));
		code = 2;
	} else {
		code = nc_app_run(app);
	}
	nc_app_destroy(app);
	free(dp);
	return code;
}
