/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nc_ctl_client: the client side of the control socket, for novactl, the
 * benches and the tests. Blocking, with a timeout on every call.
 *
 * Return convention: 0 or a negative errno.
 */
#ifndef NC_CTL_CLIENT_H
#define NC_CTL_CLIENT_H

#include <stddef.h>

#include <jansson.h>

struct nc_ctl_client;

/** Connect to the socket at @p path. NULL with errno (ENOENT, ECONNREFUSED, ...). */
struct nc_ctl_client *nc_ctl_client_connect(const char *path, int timeout_ms);
void nc_ctl_client_close(struct nc_ctl_client *c);

/**
 * Send @p len raw bytes followed by a newline and read one reply line.
 * *reply is a new reference to the parsed reply. Errors: -ETIMEDOUT,
 * -ECONNRESET (the server closed), -EPROTO (reply not JSON).
 */
int nc_ctl_client_raw(struct nc_ctl_client *c, const char *line, size_t len, json_t **reply,
                      int timeout_ms);

/**
 * Call @p method with @p params (borrowed; NULL for none). On a reply with
 * "ok": true, *result is a new reference to "result" and 0 is returned. On an
 * error reply, -EREMOTEIO is returned and *error a new reference to the
 * "error" object. Transport errors as for nc_ctl_client_raw.
 */
int nc_ctl_client_call(struct nc_ctl_client *c, const char *method, json_t *params, json_t **result,
                       json_t **error, int timeout_ms);

#endif /* NC_CTL_CLIENT_H */
