/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nc_ctl: control socket server. A registry of methods with typed parameters,
 * the line protocol (parse, validate, dispatch, answer), and one poll() thread
 * serving every client of an AF_UNIX socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define NC_LOG_MODULE "ctl"
#include "nc_log.h"
#include "nc_ctl.h"

#define CTL_MAX_CLIENTS     64
#define CTL_MAX_METHODS     128
#define CTL_MAX_PENDING_OUT (4 * 1024 * 1024)
/* With every slot taken, a new client takes the slot of one that has moved
 * no byte for this long: idle connections cannot lock everyone out. */
#define CTL_IDLE_EVICT_MS 30000

struct ctl_entry {
	const struct nc_ctl_method *m;
	void *arg;
};

struct ctl_client {
	int fd;
	char *in; /* partial request line */
	size_t in_len;
	char *out; /* replies not yet written */
	size_t out_len;
	size_t out_off;
	bool discard;        /* skipping the rest of an oversized line */
	bool closing;        /* close once out is flushed */
	long long active_ms; /* CLOCK_MONOTONIC of its last byte in or out */
};

struct nc_ctl {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int listen_fd;
	int wake[2]; /* pipe to stop the thread */
	pthread_t thread;
	bool running;
	pthread_mutex_t lock; /* the registry */
	struct ctl_entry methods[CTL_MAX_METHODS];
	unsigned n_methods;
	struct ctl_client clients[CTL_MAX_CLIENTS];
	_Atomic unsigned long n_requests;
	_Atomic unsigned long n_errors;
	_Atomic unsigned n_clients;
	bool accept_paused; /* out of descriptors: the listening socket rests */
	_Atomic int idle_evict_ms;
};

/* How long the listening socket rests when accept() finds no descriptor:
 * it stays readable, and polling it meanwhile would spin. */
#define ACCEPT_REST_MS 100

static int help_fn(const json_t *params, json_t **result, void *arg, char *err, size_t errlen);

static const struct nc_ctl_param help_params[] = {
        {"method", NC_CTL_STRING, false, "show one method's parameters"},
        {NULL, 0, false, NULL},
};

static const struct nc_ctl_method help_method = {
        .name = "help",
        .help = "list the methods with their help, or one method's parameters",
        .params = help_params,
        .fn = help_fn,
};

struct nc_ctl *nc_ctl_create(const char *path)
{
	struct sockaddr_un sun;
	if (path == NULL || path[0] == '\0') {
		errno = EINVAL;
		return NULL;
	}
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	struct nc_ctl *ctl = calloc(1, sizeof(*ctl));
	if (ctl == NULL)
		return NULL;
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	ctl->listen_fd = -1;
	atomic_store(&ctl->idle_evict_ms, CTL_IDLE_EVICT_MS);
	ctl->wake[0] = ctl->wake[1] = -1;
	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++)
		ctl->clients[i].fd = -1;
	pthread_mutex_init(&ctl->lock, NULL);
	nc_ctl_register(ctl, &help_method, ctl);
	return ctl;
}

void nc_ctl_set_idle_evict_ms(struct nc_ctl *ctl, int ms)
{
	atomic_store(&ctl->idle_evict_ms, ms);
}

const char *nc_ctl_path(const struct nc_ctl *ctl)
{
	return ctl->path;
}

int nc_ctl_register(struct nc_ctl *ctl, const struct nc_ctl_method *m, void *arg)
{
	if (m == NULL || m->name == NULL || m->fn == NULL || m->help == NULL)
		return -EINVAL;
	int rc = 0;
	pthread_mutex_lock(&ctl->lock);
	for (unsigned i = 0; i < ctl->n_methods; i++) {
		if (strcmp(ctl->methods[i].m->name, m->name) == 0) {
			rc = -EEXIST;
			goto out;
		}
	}
	if (ctl->n_methods == CTL_MAX_METHODS) {
		rc = -ENOSPC;
		goto out;
	}
	ctl->methods[ctl->n_methods++] = (struct ctl_entry){m, arg};
out:
	pthread_mutex_unlock(&ctl->lock);
	if (rc)
		NC_LOG(ERR, "cannot register method '%s': %s", m->name, strerror(-rc));
	return rc;
}

int nc_ctl_register_all(struct nc_ctl *ctl, const struct nc_ctl_method *m, void *arg)
{
	for (; m->name != NULL; m++) {
		int rc = nc_ctl_register(ctl, m, arg);
		if (rc)
			return rc;
	}
	return 0;
}

static bool ctl_lookup(struct nc_ctl *ctl, const char *name, struct ctl_entry *out)
{
	bool found = false;
	pthread_mutex_lock(&ctl->lock);
	for (unsigned i = 0; i < ctl->n_methods; i++) {
		if (strcmp(ctl->methods[i].m->name, name) == 0) {
			*out = ctl->methods[i];
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&ctl->lock);
	return found;
}

static const char *ptype_name(enum nc_ctl_ptype t)
{
	switch (t) {
	case NC_CTL_STRING:
		return "string";
	case NC_CTL_INT:
		return "integer";
	case NC_CTL_BOOL:
		return "boolean";
	case NC_CTL_NUMBER:
		return "number";
	case NC_CTL_OBJECT:
		return "object";
	case NC_CTL_ANY:
		return "any";
	}
	return "?";
}

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_NULL:
		return "null";
	}
	return "?";
}

static bool ptype_matches(enum nc_ctl_ptype t, const json_t *v)
{
	switch (t) {
	case NC_CTL_STRING:
		return json_is_string(v);
	case NC_CTL_INT:
		return json_is_integer(v);
	case NC_CTL_BOOL:
		return json_is_boolean(v);
	case NC_CTL_NUMBER:
		return json_is_number(v);
	case NC_CTL_OBJECT:
		return json_is_object(v);
	case NC_CTL_ANY:
		return true;
	}
	return false;
}

/* Check params against the method's declaration. 0 or -EINVAL with message. */
static int check_params(const struct nc_ctl_method *m, const json_t *params, char *err,
                        size_t errlen)
{
	const char *key;
	json_t *val;
	json_object_foreach ((json_t *)params, key, val) {
		const struct nc_ctl_param *p = m->params;
		while (p != NULL && p->name != NULL && strcmp(p->name, key) != 0)
			p++;
		if (p == NULL || p->name == NULL) {
			snprintf(err, errlen, "%s: unknown parameter '%s'", m->name, key);
			return -EINVAL;
		}
		if (!ptype_matches(p->type, val)) {
			snprintf(err, errlen, "%s: parameter '%s' must be %s %s, got %s", m->name,
			         key, p->type == NC_CTL_INT || p->type == NC_CTL_ANY ? "an" : "a",
			         ptype_name(p->type), json_type_name(val));
			return -EINVAL;
		}
	}
	for (const struct nc_ctl_param *p = m->params; p != NULL && p->name != NULL; p++) {
		if (p->required && json_object_get(params, p->name) == NULL) {
			snprintf(err, errlen, "%s: missing required parameter '%s' (%s)", m->name,
			         p->name, ptype_name(p->type));
			return -EINVAL;
		}
	}
	return 0;
}

/* @p msg with every byte outside ASCII made '?': for a message jansson
 * refused as not UTF-8 (snprintf may cut one short in the middle of a
 * character, and messages echo the client's bytes). */
static void ascii_only(const char *msg, char *out, size_t cap)
{
	size_t o = 0;
	for (; msg[o] != '\0' && o + 1 < cap; o++)
		out[o] = (unsigned char)msg[o] < 0x80 ? msg[o] : '?';
	out[o] = '\0';
}

static json_t *reply_error(json_t *id, const char *code, const char *msg)
{
	json_t *r = json_object();
	if (id)
		json_object_set(r, "id", id);
	json_object_set_new(r, "ok", json_false());
	json_t *e = json_pack("{s:s, s:s}", "code", code, "message", msg);
	if (e == NULL) {
		char clean[1024];
		ascii_only(msg, clean, sizeof(clean));
		e = json_pack("{s:s, s:s}", "code", code, "message", clean);
	}
	json_object_set_new(r, "error", e);
	return r;
}

json_t *nc_ctl_handle_line(struct nc_ctl *ctl, const char *line, size_t len)
{
	char err[512];
	json_error_t jerr;
	atomic_fetch_add(&ctl->n_requests, 1);

	json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (req == NULL) {
		snprintf(err, sizeof(err), "request is not valid JSON: %s (column %d)", jerr.text,
		         jerr.column);
		atomic_fetch_add(&ctl->n_errors, 1);
		return reply_error(NULL, "parse_error", err);
	}
	json_t *reply = NULL;
	json_t *id = NULL;
	if (!json_is_object(req)) {
		reply = reply_error(NULL, "invalid_request", "request must be a JSON object");
		goto out;
	}
	id = json_object_get(req, "id");
	const char *key;
	json_t *val;
	json_object_foreach (req, key, val) {
		if (strcmp(key, "id") && strcmp(key, "method") && strcmp(key, "params")) {
			snprintf(err, sizeof(err),
			         "unknown request member '%s' (expected id, method, params)", key);
			reply = reply_error(id, "invalid_request", err);
			goto out;
		}
	}
	json_t *jm = json_object_get(req, "method");
	if (!json_is_string(jm)) {
		reply = reply_error(id, "invalid_request",
		                    jm ? "'method' must be a string" : "missing 'method'");
		goto out;
	}
	json_t *params = json_object_get(req, "params");
	if (params != NULL && json_is_null(params))
		params = NULL;
	if (params != NULL && !json_is_object(params)) {
		snprintf(err, sizeof(err), "'params' must be an object, got %s",
		         json_type_name(params));
		reply = reply_error(id, "invalid_params", err);
		goto out;
	}
	struct ctl_entry e;
	const char *name = json_string_value(jm);
	if (!ctl_lookup(ctl, name, &e)) {
		snprintf(err, sizeof(err), "unknown method '%.200s' (try 'help')", name);
		reply = reply_error(id, "unknown_method", err);
		goto out;
	}
	json_t *empty = NULL;
	if (params == NULL)
		params = empty = json_object();
	if (check_params(e.m, params, err, sizeof(err)) != 0) {
		json_decref(empty);
		reply = reply_error(id, "invalid_params", err);
		goto out;
	}
	json_t *result = NULL;
	err[0] = '\0';
	int rc = e.m->fn(params, &result, e.arg, err, sizeof(err));
	json_decref(empty);
	if (rc != 0) {
		json_decref(result);
		if (err[0] == '\0')
			snprintf(err, sizeof(err), "%s: %s", name, strerror(-rc));
		reply = reply_error(id, rc == -EINVAL ? "invalid_params" : "failed", err);
		goto out;
	}
	reply = json_object();
	if (id)
		json_object_set(reply, "id", id);
	json_object_set_new(reply, "ok", json_true());
	json_object_set_new(reply, "result", result ? result : json_object());
out:
	if (json_is_false(json_object_get(reply, "ok")))
		atomic_fetch_add(&ctl->n_errors, 1);
	json_decref(req);
	return reply;
}

static int help_fn(const json_t *params, json_t **result, void *arg, char *err, size_t errlen)
{
	struct nc_ctl *ctl = arg;
	const char *one = json_string_value(json_object_get(params, "method"));
	json_t *out = json_array();
	bool found = false;
	pthread_mutex_lock(&ctl->lock);
	for (unsigned i = 0; i < ctl->n_methods; i++) {
		const struct nc_ctl_method *m = ctl->methods[i].m;
		if (one != NULL && strcmp(one, m->name) != 0)
			continue;
		found = true;
		json_t *ps = json_array();
		for (const struct nc_ctl_param *p = m->params; p && p->name; p++)
			json_array_append_new(ps, json_pack("{s:s, s:s, s:b, s:s}", "name", p->name,
			                                    "type", ptype_name(p->type), "required",
			                                    p->required, "help",
			                                    p->help ? p->help : ""));
		json_array_append_new(out, json_pack("{s:s, s:s, s:o}", "method", m->name, "help",
		                                     m->help, "params", ps));
	}
	pthread_mutex_unlock(&ctl->lock);
	if (one != NULL && !found) {
		json_decref(out);
		snprintf(err, errlen, "help: unknown method '%.200s'", one);
		return -EINVAL;
	}
	*result = json_pack("{s:o}", "methods", out);
	return 0;
}

void nc_ctl_counters(const struct nc_ctl *ctl, unsigned long *requests, unsigned long *errors,
                     unsigned *clients)
{
	*requests = atomic_load(&ctl->n_requests);
	*errors = atomic_load(&ctl->n_errors);
	*clients = atomic_load(&ctl->n_clients);
}

/* ---- socket serving ---- */

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void client_close(struct nc_ctl *ctl, struct ctl_client *c)
{
	if (c->fd < 0)
		return;
	close(c->fd);
	free(c->in);
	free(c->out);
	*c = (struct ctl_client){.fd = -1};
	atomic_fetch_sub(&ctl->n_clients, 1);
}

static int client_queue(struct ctl_client *c, json_t *reply)
{
	char *text = json_dumps(reply, JSON_COMPACT);
	json_decref(reply);
	if (text == NULL)
		return -ENOMEM;
	size_t n = strlen(text);
	if (c->out_len - c->out_off + n + 1 > CTL_MAX_PENDING_OUT) {
		free(text);
		return -ENOBUFS; /* a client that does not read its replies */
	}
	if (c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	char *buf = realloc(c->out, c->out_len + n + 1);
	if (buf == NULL) {
		free(text);
		return -ENOMEM;
	}
	memcpy(buf + c->out_len, text, n);
	buf[c->out_len + n] = '\n';
	c->out = buf;
	c->out_len += n + 1;
	free(text);
	return 0;
}

static void client_flush(struct nc_ctl *ctl, struct ctl_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			client_close(ctl, c);
			return;
		}
		c->out_off += (size_t)w;
		c->active_ms = mono_ms();
	}
	c->out_off = c->out_len = 0;
	if (c->closing)
		client_close(ctl, c);
}

/* Answer one complete request line (blank ones are ignored). -1: close. */
static int client_line(struct nc_ctl *ctl, struct ctl_client *c, const char *line, size_t len)
{
	size_t k = 0;
	while (k < len && (line[k] == ' ' || line[k] == '\r' || line[k] == '\t'))
		k++;
	return k < len && client_queue(c, nc_ctl_handle_line(ctl, line, len)) != 0 ? -1 : 0;
}

static void client_read(struct nc_ctl *ctl, struct ctl_client *c)
{
	char buf[16384];
	ssize_t r = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (r == 0) {
		/* The client is done sending (it may only have shut its side):
		 * a last line without '\n' is still a request, and the replies
		 * go out before the connection closes. */
		if (!c->closing && c->in_len > 0 && !c->discard &&
		    client_line(ctl, c, c->in, c->in_len) != 0) {
			client_close(ctl, c);
			return;
		}
		c->in_len = 0;
		c->closing = true;
		if (c->out_off >= c->out_len)
			client_close(ctl, c);
		return;
	}
	if (r < 0 && errno != EAGAIN && errno != EINTR) {
		client_close(ctl, c);
		return;
	}
	if (r < 0)
		return;
	c->active_ms = mono_ms();
	size_t start = 0;
	for (size_t i = 0; i < (size_t)r; i++) {
		if (buf[i] != '\n')
			continue;
		size_t piece = i - start;
		if (c->discard) {
			c->discard = false;
		} else if (c->in_len + piece + 1 > NC_CTL_MAX_LINE) {
			c->in_len = 0;
			atomic_fetch_add(&ctl->n_requests, 1);
			atomic_fetch_add(&ctl->n_errors, 1);
			client_queue(c, reply_error(NULL, "too_large", "request line too long"));
		} else {
			const char *line = buf + start;
			size_t len = piece;
			if (c->in_len > 0) {
				memcpy(c->in + c->in_len, buf + start, piece);
				line = c->in;
				len = c->in_len + piece;
			}
			/* Blank lines (keep-alives, a trailing \r\n) are ignored. */
			if (client_line(ctl, c, line, len) != 0) {
				client_close(ctl, c);
				return;
			}
			c->in_len = 0;
		}
		start = i + 1;
	}
	size_t rest = (size_t)r - start;
	if (rest == 0 || c->discard)
		return;
	if (c->in_len + rest + 1 > NC_CTL_MAX_LINE) {
		c->in_len = 0;
		c->discard = true;
		atomic_fetch_add(&ctl->n_requests, 1);
		atomic_fetch_add(&ctl->n_errors, 1);
		client_queue(c, reply_error(NULL, "too_large", "request line too long"));
		return;
	}
	if (c->in == NULL) {
		c->in = malloc(NC_CTL_MAX_LINE);
		if (c->in == NULL) {
			client_close(ctl, c);
			return;
		}
	}
	memcpy(c->in + c->in_len, buf + start, rest);
	c->in_len += rest;
}

static bool peer_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return false;
	return cred.uid == 0 || cred.uid == geteuid() || cred.gid == getegid();
}

static void ctl_accept(struct nc_ctl *ctl)
{
	int fd = accept4(ctl->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			NC_LOG_RL(WARN, "cannot accept a control client: %s", strerror(errno));
			ctl->accept_paused = true;
		}
		return;
	}
	if (!peer_allowed(fd)) {
		NC_LOG_RL(WARN, "refused a client whose credentials are not ours");
		close(fd);
		return;
	}
	long long now = mono_ms();
	struct ctl_client *idle = NULL;
	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct ctl_client *c = &ctl->clients[i];
		if (c->fd < 0) {
			*c = (struct ctl_client){.fd = fd, .active_ms = now};
			atomic_fetch_add(&ctl->n_clients, 1);
			return;
		}
		if (now - c->active_ms >= atomic_load(&ctl->idle_evict_ms) &&
		    (idle == NULL || c->active_ms < idle->active_ms))
			idle = c;
	}
	if (idle != NULL) {
		NC_LOG_RL(NOTICE,
		          "%d control clients: closed one idle for %lld s to take a new one",
		          CTL_MAX_CLIENTS, (now - idle->active_ms) / 1000);
		client_close(ctl, idle);
		*idle = (struct ctl_client){.fd = fd, .active_ms = now};
		atomic_fetch_add(&ctl->n_clients, 1);
		return;
	}
	struct ctl_client tmp = {.fd = fd};
	client_queue(&tmp, reply_error(NULL, "busy", "too many control clients"));
	send(fd, tmp.out, tmp.out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
	free(tmp.out);
	close(fd);
	NC_LOG_RL(WARN, "refused a client: %d clients connected", CTL_MAX_CLIENTS);
}

static void *ctl_thread(void *arg)
{
	struct nc_ctl *ctl = arg;
	struct pollfd pfd[CTL_MAX_CLIENTS + 2];
	int idx[CTL_MAX_CLIENTS + 2];
	for (;;) {
		unsigned n = 0;
		pfd[n++] = (struct pollfd){.fd = ctl->wake[0], .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = ctl->accept_paused ? -1 : ctl->listen_fd,
		                           .events = POLLIN};
		for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
			struct ctl_client *c = &ctl->clients[i];
			if (c->fd < 0)
				continue;
			short ev = c->closing ? 0 : POLLIN;
			if (c->out_len > c->out_off)
				ev |= POLLOUT;
			idx[n] = i;
			pfd[n++] = (struct pollfd){.fd = c->fd, .events = ev};
		}
		int rested = ctl->accept_paused;
		ctl->accept_paused = false;
		if (poll(pfd, n, rested ? ACCEPT_REST_MS : -1) < 0) {
			if (errno == EINTR)
				continue;
			NC_LOG(ERR, "poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents)
			break;
		if (pfd[1].revents & POLLIN)
			ctl_accept(ctl);
		for (unsigned k = 2; k < n; k++) {
			struct ctl_client *c = &ctl->clients[idx[k]];
			if (c->fd != pfd[k].fd)
				continue;
			if (pfd[k].revents & (POLLERR | POLLNVAL)) {
				client_close(ctl, c);
				continue;
			}
			if (pfd[k].revents & (POLLIN | POLLHUP))
				client_read(ctl, c);
			if (c->fd >= 0 && c->out_len > c->out_off)
				client_flush(ctl, c);
		}
	}
	return NULL;
}

/* Is something answering on @p path? */
static bool socket_alive(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	bool alive = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	return alive;
}

bool nc_ctl_in_use(const struct nc_ctl *ctl)
{
	struct stat st;
	return lstat(ctl->path, &st) == 0 && S_ISSOCK(st.st_mode) && socket_alive(ctl->path);
}

int nc_ctl_start(struct nc_ctl *ctl, char *err, size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", ctl->path);
	struct stat st;
	if (lstat(ctl->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket", ctl->path);
			return -EEXIST;
		}
		if (socket_alive(ctl->path)) {
			snprintf(err, errlen, "%s: another process is serving this socket",
			         ctl->path);
			return -EADDRINUSE;
		}
		NC_LOG(NOTICE, "removing stale socket %s", ctl->path);
		unlink(ctl->path);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto fail_errno;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 || chmod(ctl->path, 0660) != 0 ||
	    listen(fd, 32) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		goto fail_errno;
	}
	if (pipe2(ctl->wake, O_CLOEXEC) != 0) {
		int e = errno;
		close(fd);
		unlink(ctl->path);
		errno = e;
		goto fail_errno;
	}
	ctl->listen_fd = fd;
	int rc = pthread_create(&ctl->thread, NULL, ctl_thread, ctl);
	if (rc != 0) {
		close(fd);
		close(ctl->wake[0]);
		close(ctl->wake[1]);
		ctl->listen_fd = ctl->wake[0] = ctl->wake[1] = -1;
		unlink(ctl->path);
		snprintf(err, errlen, "cannot start control thread: %s", strerror(rc));
		return -rc;
	}
	pthread_setname_np(ctl->thread, "nc-ctl");
	ctl->running = true;
	return 0;
fail_errno:;
	int e = errno;
	snprintf(err, errlen, "%s: %s", ctl->path, strerror(e));
	return -e;
}

void nc_ctl_stop(struct nc_ctl *ctl)
{
	if (!ctl->running)
		return;
	ssize_t w = write(ctl->wake[1], "x", 1);
	(void)w;
	pthread_join(ctl->thread, NULL);
	ctl->running = false;
	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++) {
		if (ctl->clients[i].fd >= 0) {
			client_flush(ctl, &ctl->clients[i]);
			client_close(ctl, &ctl->clients[i]);
		}
	}
	close(ctl->listen_fd);
	close(ctl->wake[0]);
	close(ctl->wake[1]);
	ctl->listen_fd = ctl->wake[0] = ctl->wake[1] = -1;
	unlink(ctl->path);
}

void nc_ctl_destroy(struct nc_ctl *ctl)
{
	if (ctl == NULL)
		return;
	nc_ctl_stop(ctl);
	pthread_mutex_destroy(&ctl->lock);
	free(ctl);
}
