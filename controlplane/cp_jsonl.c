/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cp_jsonl: JSON lines over a stream socket with deadlines (see cp_jsonl.h).
 * Sockets stay blocking; every wait is a poll() bounded by the call's
 * deadline, so a peer that goes silent is a time-out, never a hang.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cp_jsonl.h"

struct cp_jsonl {
	int fd;
	size_t len; /* bytes in buf */
	char *buf;  /* CP_JSONL_MAX */
	bool skip;  /* the rest of a line too long is still coming: drop it */
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for @p ev on @p fd until @p deadline. 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short ev, long long deadline)
{
	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = ev};
		int n = poll(&p, 1, (int)(left > 1000000 ? 1000000 : left));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n > 0)
			return 0;
	}
}

struct cp_jsonl *cp_jsonl_create(int fd)
{
	struct cp_jsonl *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return NULL;
	j->buf = malloc(CP_JSONL_MAX);
	if (j->buf == NULL) {
		free(j);
		errno = ENOMEM;
		return NULL;
	}
	j->fd = fd;
	return j;
}

void cp_jsonl_destroy(struct cp_jsonl *j)
{
	if (j == NULL)
		return;
	if (j->fd >= 0)
		close(j->fd);
	free(j->buf);
	free(j);
}

int cp_jsonl_fd(const struct cp_jsonl *j)
{
	return j->fd;
}

int cp_jsonl_send(struct cp_jsonl *j, const json_t *msg, int timeout_ms)
{
	char *s = json_dumps(msg, JSON_COMPACT);
	if (s == NULL)
		return -ENOMEM;
	size_t len = strlen(s);
	s[len] = '\n'; /* json_dumps' NUL becomes the newline */
	len++;
	long long deadline = now_ms() + timeout_ms;
	size_t off = 0;
	int rc = 0;
	while (off < len) {
		ssize_t w = send(j->fd, s + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			rc = wait_fd(j->fd, POLLOUT, deadline);
			if (rc != 0)
				break;
			continue;
		}
		rc = -errno;
		break;
	}
	free(s);
	return rc;
}

int cp_jsonl_recv(struct cp_jsonl *j, json_t **out, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	*out = NULL;
	for (;;) {
		char *nl = memchr(j->buf, '\n', j->len);
		if (j->skip) { /* the tail of a line refused as too long */
			if (nl == NULL) {
				j->len = 0;
			} else {
				size_t cut = (size_t)(nl - j->buf) + 1;
				memmove(j->buf, nl + 1, j->len - cut);
				j->len -= cut;
				j->skip = false;
				continue;
			}
		} else if (nl != NULL) {
			size_t line = (size_t)(nl - j->buf);
			json_error_t e;
			json_t *v = json_loadb(j->buf, line, JSON_REJECT_DUPLICATES, &e);
			memmove(j->buf, nl + 1, j->len - line - 1);
			j->len -= line + 1;
			if (v == NULL || !json_is_object(v)) {
				json_decref(v);
				return -EPROTO;
			}
			*out = v;
			return 0;
		}
		if (j->len == CP_JSONL_MAX) {
			j->len = 0;
			j->skip = true; /* the next line starts after its end */
			return -EMSGSIZE;
		}
		ssize_t n = recv(j->fd, j->buf + j->len, CP_JSONL_MAX - j->len, MSG_DONTWAIT);
		if (n > 0) {
			j->len += (size_t)n;
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		int rc = wait_fd(j->fd, POLLIN, deadline);
		if (rc != 0)
			return rc;
	}
}

int cp_parse_ipport(const char *text, struct sockaddr_in *out)
{
	const char *colon = strrchr(text, ':');
	if (colon == NULL || colon == text || colon - text > 15 || colon[1] == '\0')
		return -EINVAL;
	char ip[16];
	memcpy(ip, text, (size_t)(colon - text));
	ip[colon - text] = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535 || colon[1] < '0' || colon[1] > '9')
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, ip, &out->sin_addr) != 1)
		return -EINVAL;
	return 0;
}

int cp_connect(const char *addr, int timeout_ms)
{
	union {
		struct sockaddr sa;
		struct sockaddr_un un;
		struct sockaddr_in in;
	} u;
	socklen_t len;
	memset(&u, 0, sizeof(u));
	if (strncmp(addr, "unix:", 5) == 0)
		addr += 5;
	if (addr[0] == '/') {
		if (strlen(addr) >= sizeof(u.un.sun_path))
			return -ENAMETOOLONG;
		u.un.sun_family = AF_UNIX;
		strcpy(u.un.sun_path, addr);
		len = sizeof(u.un);
	} else {
		if (cp_parse_ipport(addr, &u.in) != 0)
			return -EINVAL;
		len = sizeof(u.in);
	}
	int fd = socket(u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	int rc = 0;
	long long deadline = now_ms() + timeout_ms;
	int c = connect(fd, &u.sa, len);
	/* A UNIX listener with a full backlog (QEMU's monitor takes one client
	 * at a time) answers EAGAIN, and the socket is not connecting: try
	 * again until the deadline. */
	while (c != 0 && errno == EAGAIN && u.sa.sa_family == AF_UNIX && now_ms() < deadline) {
		struct timespec ts = {.tv_nsec = 20000000};
		nanosleep(&ts, NULL);
		c = connect(fd, &u.sa, len);
	}
	if (c != 0) {
		if (errno == EINPROGRESS) {
			rc = wait_fd(fd, POLLOUT, deadline);
			if (rc == 0) {
				int e = 0;
				socklen_t el = sizeof(e);
				getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
				rc = -e;
			}
		} else {
			rc = -errno;
		}
	}
	if (rc != 0) {
		close(fd);
		return rc;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return fd;
}

const char *cp_jsonl_strerror(int rc)
{
	switch (rc) {
	case -ETIMEDOUT:
		return "no answer in time";
	case -ECONNRESET:
	case -EPIPE:
		return "connection closed by the other end";
	case -EPROTO:
		return "a line that is not a JSON object";
	case -EMSGSIZE:
		return "a line too long";
	default:
		return strerror(-rc);
	}
}
