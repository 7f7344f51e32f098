/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cp_qmp: a client of QEMU's QMP monitor on a UNIX socket. Connects, reads
 * the greeting, negotiates capabilities (qmp_capabilities), then runs
 * commands one at a time, each with a time-out. Events that arrive between
 * replies are counted and the last few kept (cp_qmp_last_event); they are
 * otherwise ignored. Not thread-safe: one thread per client.
 *
 * Return convention: constructors return a pointer or NULL with errno and a
 * message; others 0 or a negative errno with a message in err:
 *   -EREMOTEIO  QEMU answered the command with an error ("QMP CMD: CLASS: desc")
 *   -ETIMEDOUT  no answer in time
 *   -ECONNRESET QEMU closed the monitor (QEMU gone?)
 *   -EPROTO     QEMU said something that is not QMP
 */
#ifndef CP_QMP_H
#define CP_QMP_H

#include <stddef.h>

#include <jansson.h>

struct cp_qmp;

/**
 * Connect to the QMP socket at @p path ("unix:" prefix allowed) and
 * negotiate, all within @p timeout_ms. NULL with errno and a message in err.
 */
struct cp_qmp *cp_qmp_connect(const char *path, int timeout_ms, char *err, size_t errlen);
void cp_qmp_close(struct cp_qmp *q);

/**
 * The same on a socket @p fd that is already connected (owned from now on,
 * closed on failure too); @p path names it in messages.
 */
struct cp_qmp *cp_qmp_attach(int fd, const char *path, int timeout_ms, char *err, size_t errlen);

/**
 * Run @p cmd with @p args (borrowed, may be NULL). On success *ret (if not
 * NULL) is a new reference to the "return" value.
 */
int cp_qmp_cmd(struct cp_qmp *q, const char *cmd, json_t *args, json_t **ret, int timeout_ms,
               char *err, size_t errlen);

/** Events seen so far, and the name of the last one ("" if none). */
unsigned long cp_qmp_events(const struct cp_qmp *q);
const char *cp_qmp_last_event(const struct cp_qmp *q);

/** QEMU's version as "MAJOR.MINOR.MICRO" from the greeting. */
const char *cp_qmp_version(const struct cp_qmp *q);

#endif /* CP_QMP_H */
