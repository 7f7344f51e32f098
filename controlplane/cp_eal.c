/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cp_eal: attach the control plane to the dataplane as a DPDK secondary
 * process. First waits (with retries and backoff) until the dataplane answers
 * "ready" on its control socket, so that EAL, which cannot be initialised
 * twice, runs only once the primary's shared memory exists.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>

#define NC_LOG_MODULE "eal"
#include "cp.h"
#include "nc_ctl_client.h"
#include "nc_compiler.h"
#include "nc_log.h"

int cp_dataplane_ready(struct cp *cp, char *err, size_t errlen)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/dp.sock", nc_config_get_str(cp->cfg, "runtime.dir"));
	struct nc_ctl_client *c = nc_ctl_client_connect(path, 1000);
	if (c == NULL) {
		int e = errno;
		snprintf(err, errlen, "dataplane control socket %s: %s (is novacron-dp running?)",
		         path, strerror(e));
		return -e;
	}
	json_t *res = NULL, *jerr = NULL;
	int rc = nc_ctl_client_call(c, "status", NULL, &res, &jerr, 1000);
	nc_ctl_client_close(c);
	if (rc != 0) {
		snprintf(err, errlen, "dataplane status: %s", strerror(-rc));
		json_decref(jerr);
		return rc;
	}
	const char *state = json_string_value(json_object_get(res, "state"));
	const char *prefix = json_string_value(json_object_get(res, "file_prefix"));
	const char *want = nc_config_get_str(cp->cfg, "dataplane.file_prefix");
	if (state == NULL || strcmp(state, "ready") != 0) {
		snprintf(err, errlen, "dataplane is %s, not ready", state ? state : "?");
		rc = -EAGAIN;
	} else if (prefix == NULL || strcmp(prefix, want) != 0) {
		snprintf(err, errlen, "dataplane runs with file prefix '%s', config says '%s'",
		         prefix ? prefix : "?", want);
		rc = -EINVAL;
	}
	json_decref(res);
	return rc;
}

static int dp_wait_init(void *arg, struct nc_init_ctx *ctx, char *err, size_t errlen)
{
	(void)ctx;
	return cp_dataplane_ready(arg, err, errlen);
}

static int eal_init(void *arg, struct nc_init_ctx *ctx, char *err, size_t errlen)
{
	(void)ctx;
	struct cp *cp = arg;
	/* rte_eal_init keeps pointers into argv for the life of the process. */
	static char store[8][128];
	static char *argv[9];
	int argc = 0;
	snprintf(store[argc++], sizeof(store[0]), "novacron-cp");
	snprintf(store[argc++], sizeof(store[0]), "-l");
	snprintf(store[argc++], sizeof(store[0]), "0");
	snprintf(store[argc++], sizeof(store[0]), "--proc-type=secondary");
	snprintf(store[argc++], sizeof(store[0]), "--file-prefix=%s",
	         nc_config_get_str(cp->cfg, "dataplane.file_prefix"));
	snprintf(store[argc++], sizeof(store[0]), "--no-pci");
	snprintf(store[argc++], sizeof(store[0]), "--log-level=%s",
	         nc_log_get_level() >= NC_LOG_INFO ? "info" : "error");
#if NC_ASAN
	snprintf(store[argc++], sizeof(store[0]), NC_ASAN_BASE_VIRTADDR);
#endif
	for (int i = 0; i < argc; i++)
		argv[i] = store[i];
	argv[argc] = NULL;
	if (rte_eal_init(argc, argv) < 0) {
		snprintf(err, errlen,
		         "cannot attach to the dataplane as a DPDK secondary (file prefix %s): %s",
		         store[4] + strlen("--file-prefix="), rte_strerror(rte_errno));
		return -(rte_errno ? rte_errno : EINVAL);
	}
	cp->eal_up = true;
	return 0;
}

static void eal_shutdown(void *arg)
{
	struct cp *cp = arg;
	if (cp->eal_up) {
		rte_eal_cleanup();
		cp->eal_up = false;
	}
}

int cp_eal_component(struct cp *cp)
{
	static const char *const deps[] = {"dataplane", NULL};
	const struct nc_component wait = {
	        .name = "dataplane",
	        .phase = NC_PHASE_CORE,
	        .init = dp_wait_init,
	        .arg = cp,
	        .timeout_ms = 3000,
	        .retries = (unsigned)nc_config_get_int(cp->cfg, "controlplane.attach_retries"),
	        .backoff_ms = 50,
	        .backoff_max_ms = 1000,
	};
	const struct nc_component eal = {
	        .name = "eal",
	        .phase = NC_PHASE_CORE,
	        .deps = deps,
	        .init = eal_init,
	        .shutdown = eal_shutdown,
	        .arg = cp,
	        .timeout_ms = 20000,
	};
	int rc = nc_app_add(cp->app, &wait);
	return rc ? rc : nc_app_add(cp->app, &eal);
}
