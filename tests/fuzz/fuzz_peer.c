/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_peer: libFuzzer target for what the control plane reads from other
 * processes on its peer link and QMP sockets: the first byte picks the
 * reader (0 the peer handshake's listening side, 1 its connecting side,
 * 2 the QMP client: greeting, capabilities and two commands), the rest is
 * what the other end sends, through a socket pair; 3 takes the rest as a
 * peer's request ({"method", "params"}) for the peer policy
 * (cp_peer_request_ok), which reads paths but never writes; 4 as what a
 * peer sends after the handshake (cp_peer_link_recv until it refuses). Whatever
 * arrives, the reader returns an error or succeeds; it never crashes or
 * hangs.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cp_jsonl.h"
#include "cp_peer.h"
#include "cp_qmp.h"

static bool known(const char *name, void *arg)
{
	(void)arg;
	return strcmp(name, "host-a") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool once;
	if (!once) {
		signal(SIGPIPE, SIG_IGN);
		once = true;
	}
	if (size < 1 || size > 60000)
		return 0;
	if (data[0] % 5 == 3) {
		json_t *req = json_loadb((const char *)data + 1, size - 1, 0, NULL);
		const struct cp_peer_other peer = {.name = "host-a", .amst_ip = "10.0.0.1"};
		const char *const allowed[] = {"/tmp", "/run/novacron-migrate/", "tcp:10.0.0.9",
		                               "tcp:10.0.0.8:4444"};
		char why[512];
		(void)cp_peer_request_ok(&peer, json_string_value(json_object_get(req, "method")),
		                         json_object_get(req, "params"), allowed, 4,
		                         "/run/novacron", why, sizeof(why));
		json_decref(req);
		return 0;
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return 0;
	int big = 1 << 20;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (write(sv[1], data + 1, size - 1) < 0) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	shutdown(sv[1], SHUT_WR); /* then EOF: no reader waits for its time-out */
	char err[512];
	const struct cp_peer_self self = {"host-b", "a-peer-key-of-some-length-1234", "10.0.0.2"};
	struct cp_peer_other other;
	switch (data[0] % 5) {
	case 0: {
		struct cp_jsonl *io = cp_jsonl_create(sv[0]);
		cp_peer_handshake_server(io, &self, known, NULL, &other, 50, err, sizeof(err));
		cp_jsonl_destroy(io);
		break;
	}
	case 1: {
		struct cp_jsonl *io = cp_jsonl_create(sv[0]);
		cp_peer_handshake_client(io, &self, "host-a", &other, 50, err, sizeof(err));
		cp_jsonl_destroy(io);
		break;
	}
	case 4: {
		struct cp_jsonl *io = cp_jsonl_create(sv[0]);
		struct cp_peer_other o = {.name = "host-a"};
		memset(o.link_key, 0x5a, sizeof(o.link_key));
		struct cp_peer_link l;
		cp_peer_link_init(&l, &o, false);
		json_t *m = NULL;
		while (cp_peer_link_recv(io, &l, &m, 50) == 0) {
			json_decref(m);
			m = NULL;
		}
		cp_jsonl_destroy(io);
		break;
	}
	default: {
		struct cp_qmp *q = cp_qmp_attach(sv[0], "fuzz", 50, err, sizeof(err));
		if (q != NULL) {
			json_t *r = NULL;
			if (cp_qmp_cmd(q, "query-migrate", NULL, &r, 50, err, sizeof(err)) == 0)
				json_decref(r);
			cp_qmp_cmd(q, "query-status", NULL, NULL, 50, err, sizeof(err));
			cp_qmp_close(q);
		}
		break;
	}
	}
	close(sv[1]);
	return 0;
}
