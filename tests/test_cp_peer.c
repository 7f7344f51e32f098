/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_cp_peer: the peer link's handshake (cp_peer_auth.c) over a socket
 * pair, the listening side on a thread: the right key both ways, a wrong
 * key, an unknown name, a server of another name, a forged server, replayed
 * and malformed messages, a silent and a vanished peer. And what a peer may
 * ask (cp_peer_policy.c): destinations against a scratch tree of
 * directories and links, session methods against the peers' name prefixes.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "cp_jsonl.h"
#include "cp_peer.h"

static bool known(const char *name, void *arg)
{
	(void)arg;
	return strcmp(name, "host-a") == 0;
}

struct server {
	struct cp_jsonl *io;
	struct cp_peer_self self;
	struct cp_peer_other other;
	int rc;
	char err[256];
};

static void *server_run(void *arg)
{
	struct server *s = arg;
	s->rc = cp_peer_handshake_server(s->io, &s->self, known, NULL, &s->other, 2000, s->err,
	                                 sizeof(s->err));
	return NULL;
}

/* Handshake between a client and a server with their own keys and names. */
static int run(const char *cname, const char *ckey, const char *sname, const char *skey,
               const char *expect, struct server *srv, struct cp_peer_other *co, char *err,
               size_t errlen)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	memset(srv, 0, sizeof(*srv));
	srv->io = cp_jsonl_create(sv[1]);
	srv->self = (struct cp_peer_self){sname, skey, "10.77.0.12"};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, server_run, srv), 0);
	struct cp_jsonl *io = cp_jsonl_create(sv[0]);
	const struct cp_peer_self self = {cname, ckey, "10.77.0.11"};
	int rc = cp_peer_handshake_client(io, &self, expect, co, 2000, err, errlen);
	pthread_join(t, NULL);
	cp_jsonl_destroy(io);
	cp_jsonl_destroy(srv->io);
	return rc;
}

#define KEY  "a-peer-key-of-some-length-1234"
#define KEY2 "a-peer-key-of-some-length-1235"

static void test_right_key(void **state)
{
	(void)state;
	struct server s;
	struct cp_peer_other o;
	char err[256] = "";
	assert_int_equal(run("host-a", KEY, "host-b", KEY, "host-b", &s, &o, err, sizeof(err)), 0);
	assert_int_equal(s.rc, 0);
	assert_string_equal(o.name, "host-b");
	assert_string_equal(o.amst_ip, "10.77.0.12");
	assert_string_equal(s.other.name, "host-a");
	assert_string_equal(s.other.amst_ip, "10.77.0.11");
}

/* A raw line as @p l would send @p js (its sequence number advances). */
static void raw_line(struct cp_peer_link *l, const char *js, char *out, size_t cap)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct cp_jsonl *io = cp_jsonl_create(sv[0]);
	json_t *m = json_loads(js, 0, NULL);
	assert_int_equal(cp_peer_link_send(io, l, m, 1000), 0);
	json_decref(m);
	ssize_t n = read(sv[1], out, cap - 1);
	assert_true(n > 0);
	out[n] = '\0';
	cp_jsonl_destroy(io);
	close(sv[1]);
}

/* What the receiving link makes of these raw lines, in order: the last rc. */
static int feed(const struct cp_peer_other *o, bool client, const char *const *lines, unsigned n)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct cp_jsonl *io = cp_jsonl_create(sv[0]);
	struct cp_peer_link l;
	cp_peer_link_init(&l, o, client);
	int rc = 0;
	for (unsigned i = 0; i < n && rc == 0; i++) {
		assert_int_equal(write(sv[1], lines[i], strlen(lines[i])),
		                 (ssize_t)strlen(lines[i]));
		json_t *m = NULL;
		rc = cp_peer_link_recv(io, &l, &m, 1000);
		json_decref(m);
	}
	cp_jsonl_destroy(io);
	close(sv[1]);
	return rc;
}

/* After the handshake: both ends hold the same key, fresh per connection;
 * messages pass one way and the other; a message changed, replayed,
 * reordered, sent back at its sender or not an envelope ends the link. */
static void test_link(void **state)
{
	(void)state;
	struct server s;
	struct cp_peer_other o, o2;
	char err[256] = "";
	assert_int_equal(run("host-a", KEY, "host-b", KEY, "host-b", &s, &o, err, sizeof(err)), 0);
	assert_memory_equal(o.link_key, s.other.link_key, CP_PEER_MAC_LEN);
	struct server s2;
	assert_int_equal(run("host-a", KEY, "host-b", KEY, "host-b", &s2, &o2, err, sizeof(err)),
	                 0);
	assert_memory_not_equal(o.link_key, o2.link_key, CP_PEER_MAC_LEN);

	struct cp_peer_link c;
	cp_peer_link_init(&c, &o, true);
	char l0[1024], l1[1024], bad[1024];
	raw_line(&c, "{\"id\":1,\"method\":\"peer.info\"}", l0, sizeof(l0));
	raw_line(&c, "{\"id\":2,\"method\":\"peer.info\"}", l1, sizeof(l1));
	const char *both[] = {l0, l1};
	assert_int_equal(feed(&s.other, false, both, 2), 0); /* in order: taken */
	const char *swapped[] = {l1};
	assert_int_equal(feed(&s.other, false, swapped, 1), -EBADMSG); /* reordered */
	const char *twice[] = {l0, l0};
	assert_int_equal(feed(&s.other, false, twice, 2), -EBADMSG); /* replayed */
	snprintf(bad, sizeof(bad), "%s", l0);
	char *id = strstr(bad, "\\\"id\\\":1");
	assert_non_null(id);
	id[7] = '7'; /* the request's id changed on the way */
	const char *changed[] = {bad};
	assert_int_equal(feed(&s.other, false, changed, 1), -EBADMSG);
	const char *other_conn[] = {l0};
	assert_int_equal(feed(&s2.other, false, other_conn, 1), -EBADMSG); /* another key */
	assert_int_equal(feed(&o, true, other_conn, 1), -EBADMSG);         /* back at its sender */
	const char *junk[] = {"{\"id\":1,\"method\":\"peer.info\"}\n"};
	assert_int_equal(feed(&s.other, false, junk, 1), -EBADMSG); /* not wrapped */
	const char *notjson[] = {"][\n"};
	assert_int_equal(feed(&s.other, false, notjson, 1), -EBADMSG);
}

static void test_wrong_key(void **state)
{
	(void)state;
	struct server s;
	struct cp_peer_other o;
	char err[256] = "";
	assert_int_equal(run("host-a", KEY2, "host-b", KEY, "host-b", &s, &o, err, sizeof(err)),
	                 -EACCES);
	assert_int_equal(s.rc, -EACCES);
	assert_non_null(strstr(s.err, "wrong key"));
	assert_non_null(strstr(err, "refused us"));
	assert_non_null(strstr(err, "wrong key"));
}

static void test_unknown_name(void **state)
{
	(void)state;
	struct server s;
	struct cp_peer_other o;
	char err[256] = "";
	assert_int_equal(run("host-x", KEY, "host-b", KEY, "host-b", &s, &o, err, sizeof(err)),
	                 -EACCES);
	assert_int_equal(s.rc, -EACCES);
	assert_non_null(strstr(err, "unknown peer"));
}

static void test_other_server_name(void **state)
{
	(void)state;
	struct server s;
	struct cp_peer_other o;
	char err[256] = "";
	assert_int_equal(run("host-a", KEY, "host-c", KEY, "host-b", &s, &o, err, sizeof(err)),
	                 -EACCES);
	assert_non_null(strstr(err, "host-c"));
	assert_int_not_equal(s.rc, 0); /* the client hung up on it */
}

/* A scripted server: sends @p lines (one per string), then reads what comes. */
struct script {
	int fd;
	const char *lines[4];
	bool hold; /* stay silent and open until the client gives up */
};

static void *script_run(void *arg)
{
	struct script *sc = arg;
	for (unsigned i = 0; i < 4 && sc->lines[i]; i++) {
		char buf[4096];
		if (write(sc->fd, sc->lines[i], strlen(sc->lines[i])) < 0)
			break;
		if (i + 1 < 4 && sc->lines[i + 1])
			(void)read(sc->fd, buf, sizeof(buf)); /* the client's answer */
	}
	if (sc->hold) {
		char buf[4096];
		while (read(sc->fd, buf, sizeof(buf)) > 0)
			;
	}
	close(sc->fd);
	return NULL;
}

static int client_against(struct script *sc, int timeout_ms, char *err, size_t errlen)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	sc->fd = sv[1];
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, script_run, sc), 0);
	struct cp_jsonl *io = cp_jsonl_create(sv[0]);
	const struct cp_peer_self self = {"host-a", KEY, ""};
	struct cp_peer_other o;
	int rc = cp_peer_handshake_client(io, &self, "host-b", &o, timeout_ms, err, errlen);
	cp_jsonl_destroy(io); /* ends a holding script */
	pthread_join(t, NULL);
	return rc;
}

static void test_forged_server(void **state)
{
	(void)state;
	/* A server that does not know the key: its welcome MAC is wrong. */
	struct script sc = {
	        .lines = {
	                "{\"type\":\"hello\",\"proto\":\"novacron-peer/2\",\"name\":\"host-b\","
	                "\"nonce\":\"00112233445566778899aabbccddeeff\"}\n",
	                "{\"type\":\"welcome\",\"amst_ip\":\"1.2.3.4\",\"mac\":"
	                "\"0000000000000000000000000000000000000000000000000000000000000000\"}\n"}};
	char err[256] = "";
	assert_int_equal(client_against(&sc, 2000, err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "failed authentication"));
}

/* A refusal's text is the other side's: it reaches our logs and a
 * migration's error, so no line breaks, and no UTF-8 character cut in two
 * by the 200-byte limit (jansson refuses such a string). */
static void test_refusal_text_printable(void **state)
{
	(void)state;
	char line[512];
	char pad[175]; /* 25 + 174 bytes: the 2-byte character spans the 200-byte cut */
	memset(pad, 'a', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	snprintf(line, sizeof(line),
	         "{\"type\":\"error\",\"message\":\"x\\n2026-11-28 CRIT forged %s\u00e9\"}\n", pad);
	struct script sc = {.lines = {line}};
	char err[512] = "";
	assert_int_equal(client_against(&sc, 2000, err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "refused us: x?2026-11-28 CRIT forged"));
	for (const char *c = err; *c; c++)
		assert_true((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f);
	json_t *j = json_string(err);
	assert_non_null(j);
	json_decref(j);
}

static void test_not_a_peer(void **state)
{
	(void)state;
	char err[256] = "";
	struct script a = {.lines = {"SSH-2.0-OpenSSH_9.2\n"}};
	assert_int_equal(client_against(&a, 2000, err, sizeof(err)), -EPROTO);
	struct script b = {
	        .lines = {"{\"type\":\"hello\",\"proto\":\"other/9\",\"name\":\"host-b\","
	                  "\"nonce\":\"00112233445566778899aabbccddeeff\"}\n"}};
	assert_int_equal(client_against(&b, 2000, err, sizeof(err)), -EPROTO);
	struct script c = {.lines = {"{\"type\":\"hello\",\"proto\":\"novacron-peer/2\",\"name\":"
	                             "\"host-b\",\"nonce\":\"0011zz\"}\n"}};
	assert_int_equal(client_against(&c, 2000, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "bad hello"));
}

static void test_silent_and_gone(void **state)
{
	(void)state;
	char err[256] = "";
	struct script silent = {.hold = true};
	assert_int_equal(client_against(&silent, 300, err, sizeof(err)), -ETIMEDOUT);
	assert_non_null(strstr(err, "no answer in time"));
	struct script gone = {.lines = {NULL}};
	assert_int_equal(client_against(&gone, 2000, err, sizeof(err)), -ECONNRESET);
}

/* The server refuses a client that replays its own nonce or sends garbage. */
static void *client_lines(void *arg)
{
	struct script *sc = arg;
	char buf[4096];
	ssize_t n = read(sc->fd, buf, sizeof(buf) - 1); /* the hello */
	if (n > 0 && sc->lines[0] != NULL) {
		buf[n] = '\0';
		char line[512];
		const char *p = strstr(buf, "\"nonce\":\"");
		if (p != NULL && strcmp(sc->lines[0], "echo") == 0) {
			snprintf(line, sizeof(line),
			         "{\"type\":\"auth\",\"name\":\"host-a\",\"nonce\":\"%.32s\","
			         "\"mac\":"
			         "\"%064d\"}\n",
			         p + 9, 0);
			(void)write(sc->fd, line, strlen(line));
		} else {
			(void)write(sc->fd, sc->lines[0], strlen(sc->lines[0]));
		}
		(void)read(sc->fd, buf, sizeof(buf));
	}
	close(sc->fd);
	return NULL;
}

static int server_against(struct script *sc, char *err, size_t errlen)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	sc->fd = sv[1];
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, client_lines, sc), 0);
	struct cp_jsonl *io = cp_jsonl_create(sv[0]);
	const struct cp_peer_self self = {"host-b", KEY, ""};
	struct cp_peer_other o;
	int rc = cp_peer_handshake_server(io, &self, known, NULL, &o, 2000, err, errlen);
	cp_jsonl_destroy(io);
	pthread_join(t, NULL);
	return rc;
}

static void test_server_refuses(void **state)
{
	(void)state;
	char err[256] = "";
	struct script echo = {.lines = {"echo"}};
	assert_int_equal(server_against(&echo, err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "echoed our nonce"));
	struct script bad = {.lines = {"{\"type\":\"auth\",\"name\":\"host-a\",\"nonce\":1}\n"}};
	assert_int_equal(server_against(&bad, err, sizeof(err)), -EPROTO);
	struct script junk = {.lines = {"][\n"}};
	assert_int_equal(server_against(&junk, err, sizeof(err)), -EPROTO);
	struct script wrongtype = {.lines = {"{\"type\":\"welcome\"}\n"}};
	assert_int_equal(server_against(&wrongtype, err, sizeof(err)), -EPROTO);
}

static void test_mac(void **state)
{
	(void)state;
	uint8_t sn[16] = {1}, cn[16] = {2}, a[32], b[32];
	assert_int_equal(cp_peer_mac(KEY, "client", sn, cn, "host-a", "host-b", a), 0);
	assert_int_equal(cp_peer_mac(KEY, "client", sn, cn, "host-a", "host-b", b), 0);
	assert_memory_equal(a, b, 32);
	/* Every input matters; the labels keep one side's MAC from serving the other. */
	assert_int_equal(cp_peer_mac(KEY, "server", sn, cn, "host-a", "host-b", b), 0);
	assert_memory_not_equal(a, b, 32);
	assert_int_equal(cp_peer_mac(KEY2, "client", sn, cn, "host-a", "host-b", b), 0);
	assert_memory_not_equal(a, b, 32);
	cn[15] = 1;
	assert_int_equal(cp_peer_mac(KEY, "client", sn, cn, "host-a", "host-b", b), 0);
	assert_memory_not_equal(a, b, 32);
	cn[15] = 0;
	/* Name boundaries are delimited: "host-a"+"host-b" differs from "host-ah"+"ost-b". */
	assert_int_equal(cp_peer_mac(KEY, "client", sn, cn, "host-ah", "ost-b", b), 0);
	assert_memory_not_equal(a, b, 32);
	assert_true(cp_peer_name_ok("host-a.example_1"));
	assert_false(cp_peer_name_ok(""));
	assert_false(cp_peer_name_ok("a b"));
	assert_false(cp_peer_name_ok("a\"b"));
}

/* ---- what a peer may ask (cp_peer_policy.c) ---- */

static char pol_dir[64];

/* A scratch tree: ok/ (allowed), run/ (the runtime dir, inside ok/),
 * other/, ok/link -> other/, ok/sock-link -> run/cp.sock. */
static int policy_setup(void **state)
{
	(void)state;
	snprintf(pol_dir, sizeof(pol_dir), "/tmp/test_cp_peer.XXXXXX");
	if (mkdtemp(pol_dir) == NULL)
		return -1;
	char cmd[512];
	snprintf(cmd, sizeof(cmd),
	         "cd %s && mkdir -p ok/run other && touch ok/run/cp.sock && ln -s ../other ok/link "
	         "&& ln -s run/cp.sock ok/sock-link",
	         pol_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int policy_teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", pol_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int dest(const char *fmt, char *err)
{
	char addr[256], ok[128], run[128];
	snprintf(addr, sizeof(addr), fmt, pol_dir);
	snprintf(ok, sizeof(ok), "%s/ok/", pol_dir); /* a trailing '/' is the same dir */
	snprintf(run, sizeof(run), "%s/ok/run", pol_dir);
	const char *allowed[] = {ok, "tcp:10.0.0.9", "tcp:10.0.0.8:4444"};
	return cp_peer_dest_ok(addr, allowed, 3, run, err, 256);
}

static void test_peer_dests(void **state)
{
	(void)state;
	char err[256];
	assert_int_equal(dest("unix:%s/ok/in.sock", err), 0);
	assert_int_equal(dest("unix:%s/ok/./in.sock", err), 0); /* resolves into ok/ */
	assert_int_equal(dest("unix:%s/other/in.sock", err), -EPERM);
	assert_non_null(strstr(err, "controlplane.peer_dests"));
	assert_int_equal(dest("unix:%s/ok/../other/in.sock", err), -EPERM);
	assert_int_equal(dest("unix:%s/ok/link/in.sock", err), -EPERM); /* a linked dir */
	assert_int_equal(dest("unix:%s/ok/sock-link", err), -EPERM);
	assert_non_null(strstr(err, "symbolic link"));
	assert_int_equal(dest("unix:%s/ok/run/cp.sock", err), -EPERM);
	assert_non_null(strstr(err, "runtime directory"));
	assert_int_equal(dest("unix:%s/ok/..", err), -EINVAL);
	assert_int_equal(dest("unix:%s/ok/", err), -EINVAL);
	assert_int_equal(dest("unix:%s/okay/in.sock", err), -ENOENT); /* no such dir */
	assert_int_equal(dest("unix:%s/ok2/in.sock", err), -ENOENT);
	assert_int_equal(dest("unix:relative.sock", err), -EINVAL);
	assert_int_equal(dest("ftp:x", err), -EINVAL);
	/* TCP: only what the list names ("tcp:IP" any port) */
	assert_int_equal(dest("tcp:10.0.0.9:4444", err), 0);
	assert_int_equal(dest("tcp:10.0.0.8:4444", err), 0);
	assert_int_equal(dest("tcp:10.0.0.8:4445", err), -EPERM);
	assert_int_equal(dest("tcp:10.0.0.8:44445", err), -EPERM);
	assert_int_equal(dest("tcp:10.0.0.99:1", err), -EPERM);
	assert_int_equal(dest("tcp:127.0.0.1:7480", err), -EPERM);
	/* the root allows every directory, still not the runtime one */
	const char *root[] = {"/"};
	char addr[256];
	snprintf(addr, sizeof(addr), "unix:%s/other/in.sock", pol_dir);
	assert_int_equal(cp_peer_dest_ok(addr, root, 1, "/nonexistent-run", err, sizeof(err)), 0);
	snprintf(addr, sizeof(addr), "unix:%s/ok/run/x.sock", pol_dir);
	char run[128];
	snprintf(run, sizeof(run), "%s/ok/run/", pol_dir);
	assert_int_equal(cp_peer_dest_ok(addr, root, 1, run, err, sizeof(err)), -EPERM);
}

static int req(const char *peer, const char *method, const char *params_fmt, char *err)
{
	char ok[128], js[512];
	snprintf(ok, sizeof(ok), "%s/ok", pol_dir);
	snprintf(js, sizeof(js), params_fmt, pol_dir);
	const char *allowed[] = {ok};
	struct cp_peer_other other = {.amst_ip = "10.1.0.1"};
	snprintf(other.name, sizeof(other.name), "%s", peer);
	json_t *p = json_loads(js, 0, NULL);
	assert_non_null(p);
	int rc = cp_peer_request_ok(&other, method, p, allowed, 1, "/nonexistent-run", err, 256);
	json_decref(p);
	return rc;
}

static void test_peer_requests(void **state)
{
	(void)state;
	char err[256];
	const char *open_ok =
	        "{\"name\":\"mig-host-a.c151e3-1-00ab\",\"role\":\"receive\",\"peer\":"
	        "\"10.1.0.1\",\"connect\":\"unix:%s/ok/in.sock\"}";
	assert_int_equal(req("host-a", "session.open", open_ok, err), 0);
	assert_int_equal(req("host-a", "session.open",
	                     "{\"name\":\"mig-host-a.c151e3-1-00ab\",\"role\":\"send\",\"peer\":"
	                     "\"10.1.0.1\","
	                     "\"listen\":\"unix:%s/ok/in.sock\"}",
	                     err),
	                 -EPERM);
	assert_non_null(strstr(err, "receiving sessions only"));
	assert_int_equal(req("host-a", "session.open",
	                     "{\"name\":\"mig-host-a.c151e3-1-00ab\",\"role\":\"receive\",\"peer\":"
	                     "\"10.1.0.2\",\"connect\":\"unix:%s/ok/in.sock\"}",
	                     err),
	                 -EPERM);
	assert_non_null(strstr(err, "its own AMST address (10.1.0.1)"));
	assert_int_equal(req("host-a", "session.open",
	                     "{\"name\":\"mig-host-a.c151e3-1-00ab\",\"role\":\"receive\",\"peer\":"
	                     "\"10.1.0.1\",\"connect\":\"unix:%s/other/in.sock\"}",
	                     err),
	                 -EPERM);
	assert_int_equal(req("host-a", "session.open",
	                     "{\"name\":\"mig-host-a.c151e3-1-00ab\",\"role\":\"receive\",\"peer\":"
	                     "\"10.1.0.1\"}",
	                     err),
	                 -EPERM);
	/* sessions: only names of the peer's own prefix, "mig-HOST.HASH-" */
	assert_int_equal(req("host-a", "session.open",
	                     "{\"name\":\"m1\",\"role\":\"receive\",\"peer\":\"10.1.0.1\","
	                     "\"connect\":\"unix:%s/ok/in.sock\"}",
	                     err),
	                 -EPERM);
	assert_non_null(strstr(err, "is not one of host-a's (mig-host-a.c151e3-...)"));
	const char *mine = "{\"name\":\"mig-host-a.c151e3-7-1234\",\"x\":\"%s\"}";
	assert_int_equal(req("host-a", "session.stats", mine, err), 0);
	assert_int_equal(req("host-a", "session.set", mine, err), 0);
	assert_int_equal(req("host-a", "session.close", mine, err), 0);
	assert_int_equal(req("host-c", "session.close", mine, err), -EPERM);
	assert_int_equal(req("host-a", "session.close", "{\"name\":\"m1\",\"x\":\"%s\"}", err),
	                 -EPERM);
	/* "host-a" is not "host-ab", nor "hv" "hv-a"; the prefix alone is not a name */
	assert_int_equal(req("host-ab", "session.close", mine, err), -EPERM);
	assert_int_equal(req("hv", "session.close",
	                     "{\"name\":\"mig-hv-a.45463e-1-0001\",\"x\":\"%s\"}", err),
	                 -EPERM);
	assert_int_equal(req("host-a", "session.close",
	                     "{\"name\":\"mig-host-a.c151e3-\",\"x\":\"%s\"}", err),
	                 -EPERM);
	/* long names: cut to 8, and told apart by the hash of the whole name */
	char pre[CP_PEER_SESSION_PREFIX], pre2[CP_PEER_SESSION_PREFIX];
	cp_peer_session_prefix("a-host-name-longer-than-sixteen", pre);
	assert_string_equal(pre, "mig-a-host-n.174077-");
	cp_peer_session_prefix("a-host-name-longer-than-seventeen", pre2);
	assert_string_not_equal(pre, pre2);
	assert_int_equal(req("a-host-name-longer-than-sixteen", "session.close",
	                     "{\"name\":\"mig-a-host-n.174077-3-0001\",\"x\":\"%s\"}", err),
	                 0);
	assert_int_equal(req("a-host-name-longer-than-seventeen", "session.close",
	                     "{\"name\":\"mig-a-host-n.174077-3-0001\",\"x\":\"%s\"}", err),
	                 -EPERM);
	/* the longest name fits a session name */
	assert_true(strlen(pre) + strlen("99999-ffff") < NC_SESSION_NAME_LEN);
	/* peer.check_dest is held to the destination rule; other methods pass */
	assert_int_equal(
	        req("host-a", "peer.check_dest", "{\"address\":\"unix:%s/other/x.sock\"}", err),
	        -EPERM);
	assert_int_equal(
	        req("host-a", "peer.check_dest", "{\"address\":\"unix:%s/ok/x.sock\"}", err), 0);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_mac),
	        cmocka_unit_test_setup_teardown(test_peer_dests, policy_setup, policy_teardown),
	        cmocka_unit_test_setup_teardown(test_peer_requests, policy_setup, policy_teardown),
	        cmocka_unit_test(test_right_key),
	        cmocka_unit_test(test_link),
	        cmocka_unit_test(test_wrong_key),
	        cmocka_unit_test(test_unknown_name),
	        cmocka_unit_test(test_other_server_name),
	        cmocka_unit_test(test_forged_server),
	        cmocka_unit_test(test_refusal_text_printable),
	        cmocka_unit_test(test_not_a_peer),
	        cmocka_unit_test(test_silent_and_gone),
	        cmocka_unit_test(test_server_refuses),
	};
	return cmocka_run_group_tests_name("cp_peer", tests, NULL, NULL);
}
