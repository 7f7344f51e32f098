/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * novacron-cp: the control plane process, a DPDK secondary of novacron-dp.
 * Declares its components (wait for the dataplane, EAL secondary, the link to
 * the dataplane's rings) and hands the process to nc_app, which boots them,
 * serves the control socket and shuts them down in reverse order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp.h"

static int cp_status(json_t *st, void *arg)
{
	struct cp *cp = arg;
	json_t *d = json_object();
	if (cp->link != NULL)
		cp_dplink_status(cp->link, d);
	else
		json_object_set_new(d, "attached", json_false());
	json_object_set_new(st, "dataplane", d);
	return 0;
}

int main(int argc, char **argv)
{
	int code;
	struct nc_app *app = nc_app_create(
	        "cp", "NovaCron control plane: drives the dataplane and serves orchestrators.",
	        argc, argv, &code);
	if (app == NULL)
		return code;
	struct cp *cp = calloc(1, sizeof(*cp));
	if (cp == NULL) {
		fprintf(stderr, "novacron-cp: out of memory\n");
		nc_app_destroy(app);
		return 1;
	}
	cp->app = app;
	cp->cfg = nc_app_config(app);
	nc_app_set_status_fn(app, cp_status, cp);
	int rc = cp_eal_component(cp);
	if (rc == 0)
		rc = cp_dplink_component(cp);
	if (rc == 0)
		rc = cp_session_component(cp);
	if (rc == 0)
		rc = cp_peer_component(cp);
	if (rc == 0)
		rc = cp_migrate_component(cp);
	if (rc != 0) {
		fprintf(stderr, "novacron-cp: %s\n", strerror(-rc));
		code = 2;
	} else {
		code = nc_app_run(app);
	}
	nc_app_destroy(app);
	cp_migrate_free(cp->migrations_mem);
	cp_peer_free(cp->peers_mem);
	cp_dplink_free(cp->dplink_mem);
	free(cp);
	return code;
}
