/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nc_app: process skeleton shared by novacron-dp and novacron-cp: command
 * line, config, boot orchestrator, control socket and its common methods,
 * signals and the process state.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NC_LOG_MODULE "app"
#include "nc_app.h"
#include "nc_config_ctl.h"
#include "nc_config_table.h"
#include "nc_log.h"

#define DEFAULT_CONFIG "/etc/novacron/novacron.yaml"

struct nc_app {
	char ident[16];
	struct nc_config *cfg;
	struct nc_init *init;
	struct nc_ctl *ctl;
	_Atomic int state;
	struct timespec t0;
	sigset_t sigs;
	_Atomic int sig;        /* the stop signal taken, 0 none yet */
	_Atomic bool boot_over; /* main woke the watcher itself: no signal came */
	int (*status_fn)(json_t *status, void *arg);
	void *status_arg;
};

static double ms_since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) * 1e3 + (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

static void usage(FILE *f, const char *ident, const char *description)
{
	fprintf(f,
	        "usage: novacron-%s [--config FILE] [--set KEY=VALUE]...\n"
	        "%s\n\n"
	        "  -c, --config FILE      YAML configuration (default %s if it exists)\n"
	        "  -s, --set KEY=VALUE    override a configuration key, after the file\n"
	        "  -h, --help             this text\n"
	        "Stops cleanly on SIGTERM or SIGINT. See config/novacron.yaml for the keys.\n",
	        ident, description, DEFAULT_CONFIG);
}

static int apply_log_level(const struct nc_cfg_def *def, const struct nc_cfg_value *v, void *arg,
                           char *err, size_t errlen)
{
	(void)arg;
	enum nc_log_level lvl;
	if (nc_log_level_parse(v->u.s, &lvl) != 0) {
		snprintf(err, errlen, "%s: unknown level '%s'", def->name, v->u.s);
		return -EINVAL;
	}
	nc_log_set_level(lvl);
	return 0;
}

struct nc_app *nc_app_create(const char *ident, const char *description, int argc, char **argv,
                             int *exit_code)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"set", required_argument, NULL, 's'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	char err[512];
	const char *config_path = NULL;
	const char **sets = calloc((size_t)argc + 1, sizeof(*sets));
	size_t n_sets = 0;
	struct nc_app *app = calloc(1, sizeof(*app));
	*exit_code = 2;
	if (app == NULL || sets == NULL) {
		fprintf(stderr, "novacron-%s: out of memory\n", ident);
		goto fail;
	}
	clock_gettime(CLOCK_MONOTONIC, &app->t0);
	snprintf(app->ident, sizeof(app->ident), "%s", ident);
	nc_log_set_ident(ident);

	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:s:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 's':
			sets[n_sets++] = optarg;
			break;
		case 'h':
			usage(stdout, ident, description);
			*exit_code = 0;
			goto fail;
		default:
			usage(stderr, ident, description);
			goto fail;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "novacron-%s: unexpected argument '%s'\n", ident, argv[optind]);
		usage(stderr, ident, description);
		goto fail;
	}

	app->cfg = nc_config_create(nc_config_table, nc_config_table_len);
	if (app->cfg == NULL) {
		fprintf(stderr, "novacron-%s: the built-in configuration table is broken\n", ident);
		goto fail;
	}
	nc_config_set_apply(app->cfg, "log.level", apply_log_level, NULL);
	if (config_path == NULL && access(DEFAULT_CONFIG, F_OK) == 0)
		config_path = DEFAULT_CONFIG;
	if (config_path != NULL &&
	    nc_config_load_file(app->cfg, config_path, err, sizeof(err)) != 0) {
		fprintf(stderr, "novacron-%s: config error: %s\n", ident, err);
		goto fail;
	}
	for (size_t i = 0; i < n_sets; i++) {
		char key[128];
		const char *eq = strchr(sets[i], '=');
		if (eq == NULL || eq == sets[i] || (size_t)(eq - sets[i]) >= sizeof(key)) {
			fprintf(stderr, "novacron-%s: --set wants KEY=VALUE, got '%s'\n", ident,
			        sets[i]);
			goto fail;
		}
		memcpy(key, sets[i], (size_t)(eq - sets[i]));
		key[eq - sets[i]] = '\0';
		if (nc_config_set(app->cfg, key, eq + 1, false, err, sizeof(err)) != 0) {
			fprintf(stderr, "novacron-%s: config error: --set %s\n", ident, err);
			goto fail;
		}
	}
	free(sets);
	sets = NULL;

	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s.sock", nc_config_get_str(app->cfg, "runtime.dir"),
	         ident);
	app->ctl = nc_ctl_create(path);
	app->init = nc_init_create();
	if (app->ctl == NULL || app->init == NULL) {
		fprintf(stderr, "novacron-%s: control socket %s: %s\n", ident, path,
		        strerror(errno));
		goto fail;
	}

	/* Every thread started from here on inherits this mask; the main
	 * thread takes the signals with sigwait() in nc_app_run(). */
	sigemptyset(&app->sigs);
	sigaddset(&app->sigs, SIGTERM);
	sigaddset(&app->sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &app->sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	*exit_code = 0;
	return app;
fail:
	free(sets);
	nc_app_destroy(app);
	return NULL;
}

void nc_app_destroy(struct nc_app *app)
{
	if (app == NULL)
		return;
	nc_init_destroy(app->init);
	nc_ctl_destroy(app->ctl);
	nc_config_destroy(app->cfg);
	free(app);
}

struct nc_config *nc_app_config(struct nc_app *app)
{
	return app->cfg;
}

struct nc_init *nc_app_init(struct nc_app *app)
{
	return app->init;
}

struct nc_ctl *nc_app_ctl(struct nc_app *app)
{
	return app->ctl;
}

const char *nc_app_ident(const struct nc_app *app)
{
	return app->ident;
}

enum nc_app_state nc_app_state(const struct nc_app *app)
{
	return (enum nc_app_state)atomic_load(&app->state);
}

const char *nc_app_state_name(enum nc_app_state state)
{
	switch (state) {
	case NC_APP_BOOTING:
		return "booting";
	case NC_APP_READY:
		return "ready";
	case NC_APP_STOPPING:
		return "stopping";
	}
	return "?";
}

double nc_app_uptime_ms(const struct nc_app *app)
{
	return ms_since(&app->t0);
}

int nc_app_add(struct nc_app *app, const struct nc_component *c)
{
	return nc_init_add(app->init, c);
}

void nc_app_set_status_fn(struct nc_app *app, int (*fn)(json_t *status, void *arg), void *arg)
{
	app->status_fn = fn;
	app->status_arg = arg;
}

void nc_app_request_stop(struct nc_app *app)
{
	(void)app;
	kill(getpid(), SIGTERM);
}

/* ---- common control methods ---- */

static int m_status(const json_t *params, json_t **result, void *arg, char *err, size_t errlen)
{
	(void)params;
	struct nc_app *app = arg;
	unsigned long reqs, errs;
	unsigned clients;
	nc_ctl_counters(app->ctl, &reqs, &errs, &clients);
	json_t *st =
	        json_pack("{s:s, s:i, s:s, s:f, s:{s:I, s:I, s:i}}", "process", app->ident, "pid",
	                  (int)getpid(), "state", nc_app_state_name(nc_app_state(app)), "uptime_ms",
	                  nc_app_uptime_ms(app), "control", "requests", (json_int_t)reqs, "errors",
	                  (json_int_t)errs, "clients", (int)clients);
	if (app->status_fn != NULL) {
		int rc = app->status_fn(st, app->status_arg);
		if (rc != 0) {
			json_decref(st);
			snprintf(err, errlen, "status: %s", strerror(-rc));
			return rc;
		}
	}
	*result = st;
	return 0;
}

static int m_health(const json_t *params, json_t **result, void *arg, char *err, size_t errlen)
{
	(void)params, (void)err, (void)errlen;
	struct nc_app *app = arg;
	*result = nc_init_health_json(app->init);
	if (*result == NULL)
		return -ENOMEM;
	json_object_set_new(*result, "process", json_string(app->ident));
	return 0;
}

static int m_boot_report(const json_t *params, json_t **result, void *arg, char *err, size_t errlen)
{
	(void)params, (void)err, (void)errlen;
	struct nc_app *app = arg;
	*result = nc_init_report_json(app->init);
	if (*result == NULL)
		return -ENOMEM;
	json_object_set_new(*result, "process", json_string(app->ident));
	return 0;
}

static int m_shutdown(const json_t *params, json_t **result, void *arg, char *err, size_t errlen)
{
	(void)params, (void)err, (void)errlen;
	struct nc_app *app = arg;
	NC_LOG(NOTICE, "shutdown requested on the control socket");
	nc_app_request_stop(app);
	*result = json_pack("{s:b}", "stopping", 1);
	return 0;
}

static const struct nc_ctl_method app_methods[] = {
        {"status", "process state, uptime and counters", NULL, m_status},
        {"health", "health of every component: ok, degraded or failed", NULL, m_health},
        {"boot.report", "how each component and phase booted, with times", NULL, m_boot_report},
        {"shutdown", "stop the process cleanly (as SIGTERM)", NULL, m_shutdown},
        {NULL, NULL, NULL, NULL},
};

/* ---- components every process has ---- */

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) != 0 && errno != EEXIST)
		return -errno;
	struct stat st;
	if (stat(buf, &st) != 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int runtime_init(void *arg, struct nc_init_ctx *ctx, char *err, size_t errlen)
{
	(void)ctx;
	struct nc_app *app = arg;
	const char *dir = nc_config_get_str(app->cfg, "runtime.dir");
	int rc = mkdir_p(dir, 0750);
	if (rc != 0)
		snprintf(err, errlen, "runtime directory %s: %s", dir, strerror(-rc));
	return rc;
}

static int ctl_init(void *arg, struct nc_init_ctx *ctx, char *err, size_t errlen)
{
	(void)ctx;
	struct nc_app *app = arg;
	int rc = nc_ctl_register_all(app->ctl, app_methods, app);
	if (rc == 0)
		rc = nc_config_ctl_register(app->ctl, app->cfg);
	if (rc != 0) {
		snprintf(err, errlen, "cannot register control methods: %s", strerror(-rc));
		return rc;
	}
	return nc_ctl_start(app->ctl, err, errlen);
}

static void ctl_shutdown(void *arg)
{
	struct nc_app *app = arg;
	nc_ctl_stop(app->ctl);
}

static enum nc_health ctl_health(void *arg, char *msg, size_t msglen)
{
	struct nc_app *app = arg;
	unsigned long reqs, errs;
	unsigned clients;
	nc_ctl_counters(app->ctl, &reqs, &errs, &clients);
	snprintf(msg, msglen, "%s: %u clients, %lu requests, %lu errors", nc_ctl_path(app->ctl),
	         clients, reqs, errs);
	return NC_HEALTH_OK;
}

/* Waits for SIGTERM or SIGINT (blocked in every thread: it comes here).
 * During the boot it also aborts the boot: nc_init_shutdown waits for the
 * boot to end, then stops what came up. */
static void *signal_watch(void *arg)
{
	struct nc_app *app = arg;
	int sig = 0;
	while (sigwait(&app->sigs, &sig) != 0)
		;
	if (atomic_load(&app->boot_over))
		return NULL; /* the boot failed on its own: main is done with us */
	if (atomic_load(&app->state) == NC_APP_BOOTING) {
		NC_LOG(NOTICE, "signal %d (%s) during the boot: stopping it", sig, strsignal(sig));
		atomic_store(&app->sig, sig);
		nc_init_shutdown(app->init);
	} else {
		NC_LOG(NOTICE, "signal %d (%s): shutting down", sig, strsignal(sig));
		atomic_store(&app->sig, sig);
	}
	return NULL;
}

int nc_app_run(struct nc_app *app)
{
	static const char *const ctl_deps[] = {"runtime", NULL};
	const struct nc_component runtime = {
	        .name = "runtime",
	        .phase = NC_PHASE_PRE_INIT,
	        .init = runtime_init,
	        .arg = app,
	        .timeout_ms = 2000,
	};
	const struct nc_component ctl = {
	        .name = "control-socket",
	        .phase = NC_PHASE_SERVICE,
	        .deps = ctl_deps,
	        .init = ctl_init,
	        .health = ctl_health,
	        .shutdown = ctl_shutdown,
	        .arg = app,
	        .timeout_ms = 2000,
	};
	char err[512];
	if (nc_init_add(app->init, &runtime) != 0 || nc_init_add(app->init, &ctl) != 0) {
		NC_LOG(ERR, "cannot declare the common components");
		return 1;
	}
	/* Refused before any component starts: a second control plane would
	 * otherwise attach to the dataplane's rings and take replies meant for
	 * the first before its control socket found the path served. */
	if (nc_ctl_in_use(app->ctl)) {
		NC_LOG(ERR, "boot refused: %s: another process is serving this socket",
		       nc_ctl_path(app->ctl));
		fprintf(stderr,
		        "novacron-%s: boot refused: %s: another process is serving this socket\n",
		        app->ident, nc_ctl_path(app->ctl));
		return 1;
	}
	NC_LOG(NOTICE, "booting (pid %d)", (int)getpid());
	/* The stop signals are taken by a thread of their own from now on, so
	 * that one arriving during the boot (which may wait on a dataplane or
	 * retry for seconds) aborts it instead of waiting for its end. */
	pthread_t watcher;
	int prc = pthread_create(&watcher, NULL, signal_watch, app);
	if (prc != 0) {
		NC_LOG(ERR, "cannot start the signal thread: %s", strerror(prc));
		return 1;
	}
	int rc = nc_init_start(app->init, err, sizeof(err));
	if (rc != 0 && atomic_load(&app->sig) == 0) {
		NC_LOG(ERR, "boot failed: %s", err);
		fprintf(stderr, "novacron-%s: boot failed: %s\n", app->ident, err);
		/* the watcher waits for a signal that is not coming */
		atomic_store(&app->boot_over, true);
		pthread_kill(watcher, SIGTERM);
		pthread_join(watcher, NULL);
		return 1;
	}
	if (rc == 0) {
		atomic_store(&app->state, NC_APP_READY);
		enum nc_health h = nc_init_health(app->init);
		NC_LOG(NOTICE, "ready in %.1f ms (%s), control socket %s", nc_app_uptime_ms(app),
		       nc_health_name(h), nc_ctl_path(app->ctl));
	}
	pthread_join(watcher, NULL);
	atomic_store(&app->state, NC_APP_STOPPING);
	nc_init_shutdown(app->init); /* idempotent: the watcher may have begun it */
	NC_LOG(NOTICE, "stopped");
	return 0;
}
