/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nc_app: what novacron-dp and novacron-cp have in common as processes.
 *
 * Command line (--config, --set KEY=VALUE, --help), the configuration, the
 * boot orchestrator, the control socket (RUNTIME_DIR/IDENT.sock) with the
 * methods every process serves (health, boot.report, config.get, config.set,
 * shutdown), the signals (SIGTERM/SIGINT stop the process: components shut
 * down in reverse order) and the process state (booting, ready, stopping).
 * A process creates its app, adds its components and calls nc_app_run().
 */
#ifndef NC_APP_H
#define NC_APP_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "nc_config.h"
#include "nc_ctl.h"
#include "nc_init.h"

struct nc_app;

enum nc_app_state {
	NC_APP_BOOTING,
	NC_APP_READY,
	NC_APP_STOPPING,
};

/**
 * Parse the command line, load the configuration and block the signals the
 * app waits for (call before any thread starts). Returns NULL after printing
 * the reason to stderr; *exit_code is then 0 (--help) or 2 (usage or config
 * error).
 */
struct nc_app *nc_app_create(const char *ident, const char *description, int argc, char **argv,
                             int *exit_code);
void nc_app_destroy(struct nc_app *app);

struct nc_config *nc_app_config(struct nc_app *app);
struct nc_init *nc_app_init(struct nc_app *app);
struct nc_ctl *nc_app_ctl(struct nc_app *app);
const char *nc_app_ident(const struct nc_app *app);
enum nc_app_state nc_app_state(const struct nc_app *app);
const char *nc_app_state_name(enum nc_app_state state);
/** Microseconds since the process started (its /proc start time). */
double nc_app_uptime_ms(const struct nc_app *app);

/** Add a component to the boot (see nc_init_add). */
int nc_app_add(struct nc_app *app, const struct nc_component *c);

/**
 * A hook that adds the process's own fields to the "status" method's
 * answer, which always has ident, pid, state, uptime_ms and control counters.
 */
void nc_app_set_status_fn(struct nc_app *app, int (*fn)(json_t *status, void *arg), void *arg);

/**
 * Boot, then serve until SIGTERM/SIGINT or the shutdown method, then shut
 * down. Returns the process exit code: 0 after a clean stop, 1 when the boot
 * failed.
 */
int nc_app_run(struct nc_app *app);

/** Ask the running app to stop, as SIGTERM does. */
void nc_app_request_stop(struct nc_app *app);

#endif /* NC_APP_H */
