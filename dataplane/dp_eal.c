/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp_eal: the EAL of the dataplane, a DPDK primary process. Its arguments come
 * from the config: lcores, file prefix, memory, hugepages or not, and one
 * --vdev per configured port (checked by the port's driver first).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>

#define NC_LOG_MODULE "eal"
#include "dp.h"
#include "nc_compiler.h"
#include "nc_log.h"

#define MAX_EAL_ARGS 64

struct eal_args {
	int argc;
	char *argv[MAX_EAL_ARGS];
	char store[MAX_EAL_ARGS][600];
};

static void add(struct eal_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct eal_args *a, const char *fmt, ...)
{
	if (a->argc == MAX_EAL_ARGS - 1)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(a->store[a->argc], sizeof(a->store[0]), fmt, ap);
	va_end(ap);
	a->argv[a->argc] = a->store[a->argc];
	a->argc++;
}

static const char *eal_log_level(void)
{
	switch (nc_log_get_level()) {
	case NC_LOG_DEBUG:
		return "debug";
	case NC_LOG_INFO:
		return "info";
	case NC_LOG_NOTICE:
		return "warning";
	default:
		return "error";
	}
}

static bool hugepages_available(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	if (f == NULL)
		return false;
	char line[128];
	long free_pages = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "HugePages_Free: %ld", &free_pages) == 1)
			break;
	fclose(f);
	return free_pages > 0;
}

static int eal_init(void *arg, struct nc_init_ctx *ctx, char *err, size_t errlen)
{
	(void)ctx;
	struct dp *dp = arg;
	struct eal_args *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	bool huge = nc_config_get_bool(dp->cfg, "dataplane.hugepages");
	int64_t mem = nc_config_get_int(dp->cfg, "dataplane.memory_mb");
	if (huge && !hugepages_available()) {
		snprintf(err, errlen,
		         "no free hugepages (run 'tools/novacron setup', or set "
		         "dataplane.hugepages: false for a dataplane without a control plane)");
		free(a);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < dp->n_ports; i++) {
		const struct nc_drv_port *p = &dp->ports[i].spec;
		if (p->drv->prepare != NULL) {
			int rc = p->drv->prepare(p, err, errlen);
			if (rc != 0) {
				free(a);
				return rc;
			}
		}
	}
	add(a, "novacron-dp");
	/* --lcores takes both "0-1" and mappings such as "0@1,1@0" (lcore@cpu). */
	add(a, "--lcores");
	add(a, "%s", nc_config_get_str(dp->cfg, "dataplane.lcores"));
	add(a, "--file-prefix=%s", nc_config_get_str(dp->cfg, "dataplane.file_prefix"));
	add(a, "--proc-type=primary");
	add(a, "--no-pci");
	add(a, "--log-level=%s", eal_log_level());
	if (!huge) {
		add(a, "--no-huge");
		add(a, "-m");
		add(a, "%lld", (long long)(mem ? mem : 256));
	} else if (mem) {
		add(a, "-m");
		add(a, "%lld", (long long)mem);
	}
#if NC_ASAN
	add(a, NC_ASAN_BASE_VIRTADDR);
#endif
	if (!nc_config_get_bool(dp->cfg, "dataplane.telemetry"))
		add(a, "--no-telemetry");
	int first_vdev = a->argc;
	for (unsigned i = 0; i < dp->n_ports; i++) {
		add(a, "--vdev");
		add(a, "%s", dp->ports[i].spec.devargs);
	}
	/* As logged and reported: a memif secret is not shown. */
	char line[2048] = "";
	for (int i = 1; i < a->argc; i++) {
		size_t used = strlen(line);
		char shown[sizeof(dp->ports[0].spec.devargs)];
		const char *arg = a->argv[i];
		if (i > first_vdev && (i - first_vdev) % 2 == 1) {
			(void)nc_drv_devargs_shown(&dp->ports[(i - first_vdev) / 2].spec, shown,
			                           sizeof(shown));
			arg = shown;
		}
		snprintf(line + used, sizeof(line) - used, " %s", arg);
	}
	NC_LOG(INFO, "EAL arguments:%s", line);
	/* rte_eal_init keeps pointers into argv: the block stays allocated
	 * until rte_eal_cleanup. */
	int rc = rte_eal_init(a->argc, a->argv);
	if (rc < 0) {
		int e = rte_errno;
		snprintf(err, errlen, "rte_eal_init failed: %s (arguments:%s)", rte_strerror(e),
		         line);
		free(a);
		return -(e ? e : EINVAL);
	}
	dp->eal_up = true;
	dp->eal_args = a;
	unsigned w = 0;
	unsigned lcore;
	RTE_LCORE_FOREACH_WORKER (lcore) {
		if (w == NC_MAX_WORKERS)
			break;
		dp->workers[w].lcore_id = lcore;
		dp->workers[w].index = w;
		dp->workers[w].service = w == 0;
		w++;
	}
	dp->n_workers = w;
	if (w == 0) {
		snprintf(err, errlen,
		         "dataplane.lcores '%s' has no worker lcore: give at least two lcores",
		         nc_config_get_str(dp->cfg, "dataplane.lcores"));
		rte_eal_cleanup();
		dp->eal_up = false;
		free(dp->eal_args);
		dp->eal_args = NULL;
		return -EINVAL;
	}
	NC_LOG(INFO, "EAL up: main lcore %u, %u workers", rte_get_main_lcore(), dp->n_workers);
	return 0;
}

static void eal_shutdown(void *arg)
{
	struct dp *dp = arg;
	if (dp->eal_up) {
		rte_eal_cleanup();
		dp->eal_up = false;
		free(dp->eal_args);
		dp->eal_args = NULL;
	}
}

static enum nc_health eal_health(void *arg, char *msg, size_t msglen)
{
	struct dp *dp = arg;
	snprintf(msg, msglen, "%u lcores, %u workers", rte_lcore_count(), dp->n_workers);
	return NC_HEALTH_OK;
}

int dp_eal_component(struct dp *dp)
{
	const char *const *specs;
	unsigned n = nc_config_get_list(dp->cfg, "dataplane.ports", &specs);
	unsigned per_drv[16] = {0};
	/* One frame of the migration link's MTU fits one packet buffer. */
	unsigned mtu = (unsigned)nc_config_get_int(dp->cfg, "amst.mtu");
	dp->mbuf_room = mtu + 18 > 2048 ? mtu + 18 : 2048;
	for (unsigned i = 0; i < n; i++) {
		char err[256];
		const char *colon = strchr(specs[i], ':');
		char name[32];
		snprintf(name, sizeof(name), "%.*s", colon ? (int)(colon - specs[i]) : 31,
		         specs[i]);
		unsigned idx = 0;
		for (unsigned d = 0; d < nc_drv_count() && d < 16; d++)
			if (strcmp(nc_drv_at(d)->name, name) == 0)
				idx = per_drv[d]++;
		if (nc_drv_parse(specs[i], idx, &dp->ports[i].spec, err, sizeof(err)) != 0 ||
		    nc_drv_fit_mtu(&dp->ports[i].spec, mtu, &dp->mbuf_room, err, sizeof(err)) !=
		            0) {
			NC_LOG(ERR, "config error: dataplane.ports[%u]: %s", i, err);
			fprintf(stderr, "novacron-dp: config error: dataplane.ports[%u]: %s\n", i,
			        err);
			return -EINVAL;
		}
	}
	dp->n_ports = n;
	const struct nc_component c = {
	        .name = "eal",
	        .phase = NC_PHASE_CORE,
	        .init = eal_init,
	        .health = eal_health,
	        .shutdown = eal_shutdown,
	        .arg = dp,
	        .timeout_ms = 20000,
	};
	return nc_app_add(dp->app, &c);
}
