/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cp_jsonl: one JSON object per line over a stream socket, blocking with a
 * deadline on every call. What the peer link (cp_peer) and the QMP client
 * (cp_qmp) speak. Also connects UNIX and TCP sockets with a time-out.
 *
 * Return convention: constructors return a pointer or NULL with errno;
 * others 0 or a negative errno.
 */
#ifndef CP_JSONL_H
#define CP_JSONL_H

#include <stddef.h>

#include <netinet/in.h>

#include <jansson.h>

/** Longest line accepted, newline included. */
#define CP_JSONL_MAX (256 * 1024)

struct cp_jsonl;

/** Wrap connected socket @p fd (owned from now on: closed by destroy). NULL with errno. */
struct cp_jsonl *cp_jsonl_create(int fd);
/** Close the socket and free. NULL is a no-op. */
void cp_jsonl_destroy(struct cp_jsonl *j);
int cp_jsonl_fd(const struct cp_jsonl *j);

/**
 * Send @p msg (borrowed) as one compact line.
 * @return 0, -ETIMEDOUT, -EPIPE/-ECONNRESET (the other end is gone), -ENOMEM.
 */
int cp_jsonl_send(struct cp_jsonl *j, const json_t *msg, int timeout_ms);

/**
 * Receive the next line as a JSON object (*out: new reference).
 * @return 0, -ETIMEDOUT, -ECONNRESET (closed by the other end), -EPROTO (not a
 *         JSON object), -EMSGSIZE (a line over CP_JSONL_MAX; the rest of it is
 *         dropped as it comes, so the next call reads the line after it).
 */
int cp_jsonl_recv(struct cp_jsonl *j, json_t **out, int timeout_ms);

/**
 * Connect to "unix:/path" or "/path" (UNIX) or "IPv4:PORT" (TCP) within
 * @p timeout_ms. Returns a blocking socket fd, or a negative errno
 * (-EINVAL for an address that does not parse, -ETIMEDOUT, -ECONNREFUSED, ...).
 */
int cp_connect(const char *addr, int timeout_ms);

/** Parse "IPv4:PORT" (port 1-65535). 0 or -EINVAL. */
int cp_parse_ipport(const char *text, struct sockaddr_in *out);

/** Text of a transport error, with a hint for the common ones. */
const char *cp_jsonl_strerror(int rc);

#endif /* CP_JSONL_H */
