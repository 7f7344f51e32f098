/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cp_qmp: QEMU's QMP over a UNIX socket (see cp_qmp.h). Every command
 * carries an id; replies with another id (a time-out's late answer) and
 * events are skipped while waiting for ours.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cp_jsonl.h"
#include "cp_qmp.h"

struct cp_qmp {
	struct cp_jsonl *io;
	long long next_id;
	unsigned long events;
	char last_event[64];
	char version[32];
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void note_event(struct cp_qmp *q, const json_t *m)
{
	q->events++;
	const char *name = json_string_value(json_object_get(m, "event"));
	snprintf(q->last_event, sizeof(q->last_event), "%s", name ? name : "?");
}

/* Read lines until the reply to @p id (or, with id < 0, the next non-event). */
static int wait_reply(struct cp_qmp *q, long long id, long long deadline, json_t **out, char *err,
                      size_t errlen, const char *what)
{
	for (;;) {
		long long left = deadline - now_ms();
		json_t *m = NULL;
		int rc = left > 0 ? cp_jsonl_recv(q->io, &m, (int)left) : -ETIMEDOUT;
		if (rc != 0) {
			snprintf(err, errlen, "QMP %s: %s", what,
			         rc == -ECONNRESET
			                 ? "QEMU closed the monitor (is QEMU still running?)"
			                 : cp_jsonl_strerror(rc));
			return rc;
		}
		if (json_object_get(m, "event") != NULL) {
			note_event(q, m);
			json_decref(m);
			continue;
		}
		json_t *jid = json_object_get(m, "id");
		if (id >= 0 && (!json_is_integer(jid) || json_integer_value(jid) != id)) {
			json_decref(m); /* a late answer to a command that timed out */
			continue;
		}
		*out = m;
		return 0;
	}
}

/* Turn a reply into our result. */
static int take_reply(json_t *m, const char *cmd, json_t **ret, char *err, size_t errlen)
{
	json_t *e = json_object_get(m, "error");
	if (e != NULL) {
		const char *cls = json_string_value(json_object_get(e, "class"));
		const char *desc = json_string_value(json_object_get(e, "desc"));
		snprintf(err, errlen, "QMP %s: %s: %s", cmd, cls ? cls : "Error",
		         desc ? desc : "(no description)");
		return -EREMOTEIO;
	}
	json_t *r = json_object_get(m, "return");
	if (r == NULL) {
		snprintf(err, errlen, "QMP %s: a reply with neither 'return' nor 'error'", cmd);
		return -EPROTO;
	}
	if (ret != NULL)
		*ret = json_incref(r);
	return 0;
}

struct cp_qmp *cp_qmp_connect(const char *path, int timeout_ms, char *err, size_t errlen)
{
	long long deadline = now_ms() + timeout_ms;
	int fd = cp_connect(path, timeout_ms);
	if (fd < 0) {
		snprintf(err, errlen, "cannot connect to QMP socket %s: %s%s", path, strerror(-fd),
		         fd == -ENOENT || fd == -ECONNREFUSED ? " (is QEMU running with -qmp?)"
		         : fd == -EAGAIN ? " (its monitor takes one client at a time: is another "
		                           "connected?)"
		                         : "");
		errno = -fd;
		return NULL;
	}
	return cp_qmp_attach(fd, path, (int)(deadline - now_ms()), err, errlen);
}

struct cp_qmp *cp_qmp_attach(int fd, const char *path, int timeout_ms, char *err, size_t errlen)
{
	long long deadline = now_ms() + timeout_ms;
	struct cp_qmp *q = calloc(1, sizeof(*q));
	if (q == NULL || (q->io = cp_jsonl_create(fd)) == NULL) {
		free(q);
		close(fd);
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	q->next_id = 1;
	json_t *g = NULL;
	int rc = wait_reply(q, -1, deadline, &g, err, errlen, "greeting");
	if (rc != 0)
		goto fail;
	json_t *qmp = json_object_get(g, "QMP");
	if (!json_is_object(qmp)) {
		json_decref(g);
		snprintf(err, errlen, "%s does not speak QMP (no greeting)", path);
		rc = -EPROTO;
		goto fail;
	}
	json_t *v = json_object_get(json_object_get(qmp, "version"), "qemu");
	snprintf(q->version, sizeof(q->version), "%lld.%lld.%lld",
	         (long long)json_integer_value(json_object_get(v, "major")),
	         (long long)json_integer_value(json_object_get(v, "minor")),
	         (long long)json_integer_value(json_object_get(v, "micro")));
	json_decref(g);
	rc = cp_qmp_cmd(q, "qmp_capabilities", NULL, NULL, (int)(deadline - now_ms()), err, errlen);
	if (rc != 0)
		goto fail;
	return q;
fail:
	cp_qmp_close(q);
	errno = -rc;
	return NULL;
}

void cp_qmp_close(struct cp_qmp *q)
{
	if (q == NULL)
		return;
	cp_jsonl_destroy(q->io);
	free(q);
}

int cp_qmp_cmd(struct cp_qmp *q, const char *cmd, json_t *args, json_t **ret, int timeout_ms,
               char *err, size_t errlen)
{
	long long deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 1);
	long long id = q->next_id++;
	json_t *m = json_pack("{s:s, s:I}", "execute", cmd, "id", (json_int_t)id);
	if (m == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (args != NULL)
		json_object_set(m, "arguments", args);
	int rc = cp_jsonl_send(q->io, m, timeout_ms > 0 ? timeout_ms : 1);
	json_decref(m);
	if (rc != 0) {
		snprintf(err, errlen, "QMP %s: cannot send: %s", cmd,
		         rc == -EPIPE || rc == -ECONNRESET
		                 ? "QEMU closed the monitor (is QEMU still running?)"
		                 : cp_jsonl_strerror(rc));
		return rc;
	}
	json_t *r = NULL;
	rc = wait_reply(q, id, deadline, &r, err, errlen, cmd);
	if (rc != 0)
		return rc;
	rc = take_reply(r, cmd, ret, err, errlen);
	json_decref(r);
	return rc;
}

unsigned long cp_qmp_events(const struct cp_qmp *q)
{
	return q->events;
}

const char *cp_qmp_last_event(const struct cp_qmp *q)
{
	return q->last_event;
}

const char *cp_qmp_version(const struct cp_qmp *q)
{
	return q->version;
}
