/* SPDX-License-Identifier: BSD-3-Clause */
/* nc_ctl_client: blocking line-protocol client of the control socket. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "nc_ctl.h"
#include "nc_ctl_client.h"

struct nc_ctl_client {
	int fd;
	char *buf; /* bytes received past the last reply line */
	size_t len;
	size_t cap;
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct nc_ctl_client *nc_ctl_client_connect(const char *path, int timeout_ms)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	struct nc_ctl_client *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	c->fd = fd;
	return c;
}

void nc_ctl_client_close(struct nc_ctl_client *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	free(c->buf);
	free(c);
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int nc_ctl_client_raw(struct nc_ctl_client *c, const char *line, size_t len, json_t **reply,
                      int timeout_ms)
{
	*reply = NULL;
	int rc = send_all(c->fd, line, len);
	if (rc == 0)
		rc = send_all(c->fd, "\n", 1);
	/* A server that closed on us may have said why first (busy): read it. */
	int send_rc = rc;
	if (rc != 0 && rc != -EPIPE && rc != -ECONNRESET)
		return rc;
	long long deadline = now_ms() + timeout_ms;
	for (;;) {
		char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
		if (nl != NULL) {
			size_t n = (size_t)(nl - c->buf);
			json_error_t jerr;
			*reply = json_loadb(c->buf, n, 0, &jerr);
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			return *reply ? 0 : -EPROTO;
		}
		long long left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		int pr = poll(&pfd, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			return -errno;
		if (pr == 0)
			return -ETIMEDOUT;
		if (c->cap - c->len < 65536) {
			size_t cap = c->cap ? c->cap * 2 : 131072;
			if (cap > 64u * 1024 * 1024)
				return -EMSGSIZE;
			char *b = realloc(c->buf, cap);
			if (b == NULL)
				return -ENOMEM;
			c->buf = b;
			c->cap = cap;
		}
		ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (r == 0)
			return send_rc ? send_rc : -ECONNRESET;
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return send_rc ? send_rc : -errno;
		}
		c->len += (size_t)r;
	}
}

int nc_ctl_client_call(struct nc_ctl_client *c, const char *method, json_t *params, json_t **result,
                       json_t **error, int timeout_ms)
{
	static unsigned long next_id = 1;
	*result = NULL;
	if (error)
		*error = NULL;
	json_t *req = json_pack("{s:I, s:s}", "id", (json_int_t)next_id++, "method", method);
	if (params != NULL)
		json_object_set(req, "params", params);
	char *text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (text == NULL)
		return -ENOMEM;
	json_t *reply;
	int rc = nc_ctl_client_raw(c, text, strlen(text), &reply, timeout_ms);
	free(text);
	if (rc != 0)
		return rc;
	if (json_is_true(json_object_get(reply, "ok"))) {
		*result = json_incref(json_object_get(reply, "result"));
		if (*result == NULL)
			*result = json_object();
		rc = 0;
	} else {
		json_t *e = json_object_get(reply, "error");
		if (error)
			*error = e ? json_incref(e)
			           : json_pack("{s:s, s:s}", "code", "failed", "message",
			                       "error without details");
		rc = -EREMOTEIO;
	}
	json_decref(reply);
	return rc;
}
