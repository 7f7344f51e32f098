/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * novacron-cp: the control plane process, a DPDK secondary of novacron-dp.
 * Declares its components (wait for the dataplane, EAL secondary, the link to
 * the dataplane's rings) and hands the process to nc_app, which boots them,
 * serves the control socket and shuts them down in reverse order.
 *
 * When the dataplane it attached to goes away (cp_dplink's watcher,
 * controlplane.reattach), the process re-executes itself: the new image
 * waits, without attaching, until a dataplane answers on its control socket,
 * then boots as usual.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define NC_LOG_MODULE "cp"
#include "cp.h"
#include "cp_peer.h"
#include "nc_log.h"

#define REATTACH_ENV "NOVACRON_CP_REATTACH"

/* After a re-exec: wait for the next dataplane (SIGTERM or SIGINT, still
 * blocked by nc_app_create, ends the wait). 0 once one answers, else the
 * signal that came. */
static int wait_for_dataplane(struct cp *cp)
{
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	char why[256] = "";
	NC_LOG(NOTICE, "waiting for the next dataplane (its control socket in %s)",
	       nc_config_get_str(cp->cfg, "runtime.dir"));
	char said[256] = "";
	for (;;) {
		if (cp_dataplane_ready(cp, why, sizeof(why)) == 0)
			return 0;
		if (strcmp(why, said) != 0) { /* each new reason once */
			NC_LOG(INFO, "no dataplane yet: %s", why);
			snprintf(said, sizeof(said), "%s", why);
		}
		struct timespec ts = {.tv_nsec = 200000000};
		int sig = sigtimedwait(&sigs, NULL, &ts);
		if (sig > 0) {
			NC_LOG(NOTICE, "signal %d (%s) while waiting for a dataplane: stopping",
			       sig, strsignal(sig));
			return sig;
		}
	}
}

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
	/* Settings errors before anything starts, the dataplane there or not. */
	char why[512];
	if (cp_peer_check_config(cp, why, sizeof(why)) != 0) {
		fprintf(stderr, "novacron-cp: %s\n", why);
		nc_app_destroy(app);
		free(cp);
		return 2;
	}
	if (getenv(REATTACH_ENV) != NULL) {
		unsetenv(REATTACH_ENV);
		if (wait_for_dataplane(cp) != 0) {
			nc_app_destroy(app);
			free(cp);
			return 0;
		}
	}
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
	bool again = __atomic_load_n(&cp->reattach, __ATOMIC_ACQUIRE) && code == 0;
	nc_app_destroy(app);
	cp_migrate_free(cp->migrations_mem);
	cp_peer_free(cp->peers_mem);
	cp_dplink_free(cp->dplink_mem);
	free(cp);
	if (again) {
		/* Nothing of this image may reach the next: DPDK's files (and the
		 * locks on them) above all. */
		NC_LOG(NOTICE, "restarting to attach to the next dataplane");
		if (close_range(3, ~0u, 0) != 0) { /* before Linux 5.9 */
			struct rlimit rl;
			int top = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (1u << 20)
			                  ? (int)rl.rlim_cur
			                  : 1 << 20;
			for (int fd = 3; fd < top; fd++)
				close(fd);
		}
		setenv(REATTACH_ENV, "1", 1);
		execv("/proc/self/exe", argv);
		fprintf(stderr, "novacron-cp: cannot restart itself: %s\n", strerror(errno));
		return 1;
	}
	return code;
}
