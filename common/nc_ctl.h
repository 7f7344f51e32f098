/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nc_ctl: the control socket, server side.
 *
 * An AF_UNIX stream socket under the runtime directory, mode 0660, serving one
 * JSON request per line and answering one JSON line per request:
 *
 *   -> {"id": 7, "method": "config.get", "params": {"key": "log.level"}}
 *   <- {"id": 7, "ok": true, "result": {...}}
 *   <- {"id": 7, "ok": false, "error": {"code": "invalid_params", "message": "..."}}
 *
 * "id" is optional and echoed as given; "params" is optional and must be an
 * object. Error codes: parse_error, invalid_request, unknown_method,
 * invalid_params, too_large, failed (the method ran and failed), busy.
 *
 * Each module registers its own methods (name, help, typed parameters,
 * handler); the server checks parameter names and types before calling the
 * handler, so handlers see only well-formed params. "help" is built in.
 * Clients are checked with SO_PEERCRED: root, our uid or our gid.
 * A socket file left by a dead process is detected and rebound; one that a
 * live process answers on is an error.
 *
 * One thread serves all clients with poll(); handlers run on that thread one
 * at a time and may block briefly (the dataplane round trip).
 */
#ifndef NC_CTL_H
#define NC_CTL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/** Longest request line accepted, newline included. */
#define NC_CTL_MAX_LINE (64 * 1024)

enum nc_ctl_ptype {
	NC_CTL_STRING,
	NC_CTL_INT,
	NC_CTL_BOOL,
	NC_CTL_NUMBER, /**< int or real */
	NC_CTL_OBJECT,
	NC_CTL_ANY,
};

struct nc_ctl_param {
	const char *name;
	enum nc_ctl_ptype type;
	bool required;
	const char *help;
};

/**
 * A method handler. On success set *result (a new reference; NULL means
 * {}) and return 0. On failure return a negative errno and write a one-line
 * message to err; -EINVAL is reported as invalid_params, anything else as
 * failed.
 */
typedef int (*nc_ctl_fn)(const json_t *params, json_t **result, void *arg, char *err,
                         size_t errlen);

struct nc_ctl_method {
	const char *name;                  /**< "module.verb" */
	const char *help;                  /**< one line */
	const struct nc_ctl_param *params; /**< terminated by {NULL}, or NULL for none */
	nc_ctl_fn fn;
};

struct nc_ctl;

/** A server with no methods but help, not yet listening. NULL with errno. */
struct nc_ctl *nc_ctl_create(const char *path);

/**
 * Register a method; @p m must outlive the server. Returns 0, -EEXIST for a
 * duplicate name or -EINVAL. Thread-safe; may be called while serving.
 */
int nc_ctl_register(struct nc_ctl *ctl, const struct nc_ctl_method *m, void *arg);

/** Register an array of methods terminated by {NULL}. Stops at the first error. */
int nc_ctl_register_all(struct nc_ctl *ctl, const struct nc_ctl_method *m, void *arg);

/**
 * Bind, listen and start the serving thread. Errors: -EADDRINUSE when a live
 * process serves the path, -ENAMETOOLONG, or bind/listen errors; message in err.
 */
int nc_ctl_start(struct nc_ctl *ctl, char *err, size_t errlen);

/** Stop serving, close every client and remove the socket file. Idempotent. */
void nc_ctl_stop(struct nc_ctl *ctl);

/** Stop (if needed) and free. */
void nc_ctl_destroy(struct nc_ctl *ctl);

const char *nc_ctl_path(const struct nc_ctl *ctl);

/**
 * At most 64 clients are served at once; a client coming when all are taken
 * takes the place of the one that moved no byte for longest, if that is at
 * least @p ms (default 30000), else it is answered `busy` and closed.
 */
void nc_ctl_set_idle_evict_ms(struct nc_ctl *ctl, int ms);

/** Does another process answer on @p ctl's socket path now? */
bool nc_ctl_in_use(const struct nc_ctl *ctl);

/**
 * Handle one request line (without its newline) and return the reply object
 * (new reference, never NULL). What the serving thread does for each line;
 * public so that tests and the fuzzer drive the protocol without a socket.
 */
json_t *nc_ctl_handle_line(struct nc_ctl *ctl, const char *line, size_t len);

/** Requests served and errors answered since start (for status). */
void nc_ctl_counters(const struct nc_ctl *ctl, unsigned long *requests, unsigned long *errors,
                     unsigned *clients);

#endif /* NC_CTL_H */
