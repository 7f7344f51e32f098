/* SPDX-License-Identifier: BSD-3-Clause */
/* cp: the control plane process's modules (internal to controlplane/). */
#ifndef CP_H
#define CP_H

#include <stdbool.h>

#include "nc_abi.h"
#include "nc_app.h"

struct cp_dplink;
struct cp_peers;
struct cp_migrations;
struct nc_ctl;

struct cp {
	struct nc_app *app;
	struct nc_config *cfg;
	bool eal_up;
	struct cp_dplink *link;               /* set while attached */
	struct cp_dplink *dplink_mem;         /* owned */
	struct cp_peers *peers;               /* set while the peer link is up */
	struct cp_peers *peers_mem;           /* owned */
	struct cp_migrations *migrations_mem; /* owned */
	bool reattach; /* the dataplane went away: restart to attach to the next one */
};

/* Components, one per module; each registers its own control methods. */
int cp_eal_component(struct cp *cp);
int cp_dplink_component(struct cp *cp);
int cp_session_component(struct cp *cp);
int cp_peer_component(struct cp *cp);
int cp_migrate_component(struct cp *cp);
void cp_peer_free(struct cp_peers *p);
void cp_migrate_free(struct cp_migrations *m);
/** Migrations not finished yet. */
unsigned cp_migrate_running(struct cp *cp);
/** Does a dataplane answer "ready" on runtime.dir/dp.sock, with our file prefix?
 *  0, or a negative errno with the reason. */
int cp_dataplane_ready(struct cp *cp, char *err, size_t errlen);

/* Session methods for other modules (cp_session.c): the same checks and
 * answers as the control socket's session.open/stats/close. */
int cp_session_open(struct cp *cp, const json_t *params, json_t **result, char *err, size_t errlen);
/** session.set with unsent_ms only: the sending session's unsent limit. */
int cp_session_set_unsent(struct cp *cp, const char *name, unsigned ms, char *err, size_t errlen);
int cp_session_stats(struct cp *cp, const char *name, json_t **result, char *err, size_t errlen);
int cp_session_close(struct cp *cp, const char *name, char *err, size_t errlen);
/* Close a receiving session only while it still waits for its INIT, in one
 * step at the dataplane: -EBUSY (an INIT came) or -ENOENT leave it be. */
int cp_session_close_waiting(struct cp *cp, const char *name, char *err, size_t errlen);
/** Register session.open/stats/close on @p ctl (the peer link's registry). */
int cp_session_register_peer(struct nc_ctl *ctl, struct cp *cp);

/** Is the dataplane attached, ready and its heartbeat under 5 s old? */
bool cp_dplink_alive(const struct cp_dplink *l);

/* How long a living dataplane may go without a heartbeat before health and
 * cp_dplink_alive() call it failed: 2 s was seen passed mid-migration on a
 * loaded machine (2 vCPUs, two TCG guests), failing a healthy migration. */
#define CP_DPLINK_SILENT_MS 5000

/** Why cp_dplink_alive() says what it says, in words, into @p buf. */
void cp_dplink_why(const struct cp_dplink *l, char *buf, size_t len);

/** The dataplane's stats memzone, or NULL when not attached. */
const struct nc_stats_shm *cp_dplink_stats(const struct cp_dplink *l);
void cp_dplink_free(struct cp_dplink *l);

/** Add the dataplane's view (from shared memory) to a status object. */
void cp_dplink_status(struct cp_dplink *l, json_t *st);

/**
 * Send @p req to the dataplane (seq and t_send_ns are set here) and wait up to
 * @p timeout_ms for its reply into @p reply. 0, -ETIMEDOUT, -ENOBUFS (command
 * ring full) or -ENOTCONN (not attached).
 */
int cp_dplink_request(struct cp_dplink *l, struct nc_msg *req, struct nc_msg *reply,
                      int timeout_ms);

#endif /* CP_H */
