/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nc_init: the boot orchestrator of both processes.
 *
 * Components declare a name, a phase, their dependencies, init / health /
 * shutdown hooks, a timeout per attempt and a retry policy. nc_init_start()
 * checks the graph (an unknown dependency, a dependency on a later phase or a
 * cycle is an error before anything runs), then runs the phases in order.
 * Within a phase every component whose dependencies are done starts at once on
 * its own thread, so independent components start in parallel. An attempt that
 * fails or outlives its timeout is retried after an exponential backoff with
 * full jitter (delay = random in [0, min(backoff_max_ms, backoff_ms * 2^k)]).
 * A required component that fails all its attempts stops the boot: the
 * components already up are shut down in reverse order and start returns an
 * error naming the component and its last error. An optional one that fails
 * leaves the process degraded; health says so, and whatever depends on it is
 * skipped (required dependants then stop the boot).
 *
 * The boot report gives each component's state, attempts, start and duration,
 * and each phase's start and duration, in milliseconds since nc_init_start().
 *
 * Return convention: constructors return a pointer or NULL with errno; other
 * functions return 0 or a negative errno.
 */
#ifndef NC_INIT_H
#define NC_INIT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

enum nc_phase {
	NC_PHASE_PRE_INIT,
	NC_PHASE_CORE,
	NC_PHASE_DWCP,
	NC_PHASE_SERVICE,
	NC_PHASE_POST_INIT,
	NC_PHASE_COUNT,
};

enum nc_health {
	NC_HEALTH_OK,
	NC_HEALTH_DEGRADED,
	NC_HEALTH_FAILED,
};

enum nc_comp_state {
	NC_COMP_PENDING, /**< not started (yet) */
	NC_COMP_RUNNING, /**< init attempt in progress */
	NC_COMP_UP,      /**< init succeeded */
	NC_COMP_FAILED,  /**< all attempts failed */
	NC_COMP_SKIPPED, /**< a dependency failed or the boot stopped first */
	NC_COMP_STOPPED, /**< shut down */
};

/** Handed to init hooks: lets a long init notice that its attempt was abandoned. */
struct nc_init_ctx;

/** True once this attempt timed out or the boot is being aborted. */
bool nc_init_cancelled(const struct nc_init_ctx *ctx);

struct nc_component {
	const char *name;
	enum nc_phase phase;
	const char *const *deps; /**< NULL-terminated names, or NULL */
	/** 0, or a negative errno with a message in err. Required. */
	int (*init)(void *arg, struct nc_init_ctx *ctx, char *err, size_t errlen);
	/** Optional: current health, with a short message in msg. */
	enum nc_health (*health)(void *arg, char *msg, size_t msglen);
	/** Optional: undo init. Called once, only after a successful init. */
	void (*shutdown)(void *arg);
	void *arg;
	unsigned timeout_ms;     /**< per attempt; 0 means 5000 */
	unsigned retries;        /**< attempts after the first */
	unsigned backoff_ms;     /**< first retry's backoff ceiling; 0 means 10 */
	unsigned backoff_max_ms; /**< cap of the ceiling; 0 means 1000 */
	bool optional;
};

struct nc_init;

/** An empty orchestrator. NULL with errno ENOMEM. */
struct nc_init *nc_init_create(void);

/**
 * Shut down whatever is still up (as nc_init_shutdown) and free. Waits for
 * abandoned (timed-out) attempts to return before freeing what they use.
 */
void nc_init_destroy(struct nc_init *in);

/** Seed the jitter's random generator (tests make backoff repeatable). */
void nc_init_set_seed(struct nc_init *in, unsigned long seed);

/**
 * Declare a component. The struct is copied; the strings and deps array it
 * points to must outlive the orchestrator. Returns 0, -EEXIST for a duplicate
 * name, -EINVAL for a missing name/init hook or a bad phase, -EBUSY after start.
 */
int nc_init_add(struct nc_init *in, const struct nc_component *c);

/**
 * Boot: validate the graph, then run the phases. Returns 0 when every
 * required component is up (optional ones may have failed: degraded), else a
 * negative errno with a message in err ("cycle: a -> b -> a", "component 'x'
 * depends on unknown 'y'", "component 'db' failed after 3 attempts: timed out
 * after 200 ms", ...). On failure the components that came up have been shut
 * down in reverse order. Call once.
 */
int nc_init_start(struct nc_init *in, char *err, size_t errlen);

/**
 * Shut down every component that is up, in the reverse order of their
 * successful inits. Idempotent; safe after a failed start.
 */
void nc_init_shutdown(struct nc_init *in);

/** The state of component @p name, or -ENOENT. */
int nc_init_state(const struct nc_init *in, const char *name, enum nc_comp_state *state);

/**
 * Overall health: FAILED if a required component reports failed, DEGRADED if
 * any component is degraded or an optional one failed, else OK. Calls the
 * health hooks of the components that are up.
 */
enum nc_health nc_init_health(struct nc_init *in);

/**
 * Health as JSON: {"status": "ok"|"degraded"|"failed", "components":
 * [{"name", "phase", "optional", "state", "health", "message"}]}. New reference.
 */
json_t *nc_init_health_json(struct nc_init *in);

/**
 * Boot report as JSON: {"total_ms", "result": "ok"|"degraded"|"failed",
 * "phases": [{"name", "start_ms", "duration_ms", "components"}],
 * "components": [{"name", "phase", "optional", "state", "attempts",
 * "start_ms", "duration_ms", "error"}]} in start order. New reference.
 */
json_t *nc_init_report_json(const struct nc_init *in);

const char *nc_phase_name(enum nc_phase phase);    /* "pre-init", "core", ... */
const char *nc_health_name(enum nc_health health); /* "ok", "degraded", "failed" */
const char *nc_comp_state_name(enum nc_comp_state state);

#endif /* NC_INIT_H */
