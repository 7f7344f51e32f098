/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cp_peer: the control planes' peer link (see cp_peer.h): the listening side (one accept thread,
 * one thread per peer connection, at most MAX_CONNS) and the connecting side
 * used by migrations. Requests from a peer are served by a registry of its
 * own (an nc_ctl that never listens) holding only what a peer may ask.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define NC_LOG_MODULE "peer"
#include "cp.h"
#include "cp_jsonl.h"
#include "cp_peer.h"
#include "nc_log.h"

#define MAX_PEERS 32
#define MAX_CONNS 16
/* Connections in their handshake from addresses that are no configured
 * peer's: anyone who reaches the port can open them, so they may not take
 * the slots of real peers. A new one past this many ends the oldest. (A
 * configured peer's address is not limited: a source may start many
 * migrations at once.) */
#define MAX_HANDSHAKING 4
/* An authenticated peer whose host died without closing the connection is
 * found by TCP keepalive (silent this long, probes every INTVL, CNT of
 * them), or, with a reply unacknowledged, by the user timeout. */
#define PEER_KEEPIDLE_S     30
#define PEER_KEEPINTVL_S    10
#define PEER_KEEPCNT        3
#define PEER_USER_TIMEOUT_S 60
#define ACCEPT_RETRY_MS     100 /* after accept() ran out of descriptors or memory */
#define MAX_DESTS           16

/* ---- the component ---- */

struct peer_entry {
	char name[CP_PEER_NAME_MAX + 1];
	char addr[24]; /* IPv4:PORT */
};

struct conn_slot {
	bool used;
	bool done;
	bool authed;          /* past the handshake */
	bool known_src;       /* from the IP of a configured peer */
	uint64_t accepted_ms; /* CLOCK_MONOTONIC */
	int fd;
	pthread_t thread;
	struct cp_peers *p;
};

struct cp_peers {
	struct cp *cp;
	char self_name[CP_PEER_NAME_MAX + 1];
	char amst_ip[16];
	char psk[65];
	struct peer_entry peers[MAX_PEERS];
	unsigned n_peers;
	struct nc_ctl *methods; /* what a peer may call; never listens */
	int lfd;
	int wake[2];
	pthread_t accept_thread;
	bool listening;
	pthread_mutex_t lock;
	bool stopping; /* our own shutdown: the peers did not go away */
	struct conn_slot conns[MAX_CONNS];
	unsigned long accepted, refused, requests, forbidden;
	/* where a peer may have its sessions deliver (controlplane.peer_dests and
	 * libvirt_socket_dir; cp_peer_dest_ok) */
	const char *dests[MAX_DESTS + 1];
	unsigned n_dests;
};

struct cp_peer_conn {
	struct cp_jsonl *io;
	struct cp_peer_other other;
	struct cp_peer_link link;
	bool broken; /* out of step with the peer: no more calls */
	int timeout_ms;
	long long next_id;
};

static int peer_timeout(const struct cp *cp)
{
	return (int)nc_config_get_int(cp->cfg, "controlplane.peer_timeout_ms");
}

static bool known_fn(const char *name, void *arg)
{
	const struct cp_peers *p = arg;
	for (unsigned i = 0; i < p->n_peers; i++)
		if (strcmp(p->peers[i].name, name) == 0)
			return true;
	return false;
}

bool cp_peer_known(const struct cp *cp, const char *name)
{
	return cp->peers != NULL && known_fn(name, cp->peers);
}

const char *cp_peer_self_name(const struct cp *cp)
{
	return cp->peers ? cp->peers->self_name : "";
}

struct cp_peer_conn *cp_peer_connect(struct cp *cp, const char *name, char *err, size_t errlen)
{
	struct cp_peers *p = cp->peers;
	const struct peer_entry *e = NULL;
	for (unsigned i = 0; p && i < p->n_peers && e == NULL; i++)
		if (strcmp(p->peers[i].name, name) == 0)
			e = &p->peers[i];
	if (e == NULL) {
		snprintf(err, errlen, "unknown host '%.64s' (not in controlplane.peers)", name);
		errno = ENOENT;
		return NULL;
	}
	if (p->psk[0] == '\0') {
		snprintf(err, errlen, "controlplane.peer_psk is not set");
		errno = EACCES;
		return NULL;
	}
	int tmo = peer_timeout(cp);
	int fd = cp_connect(e->addr, tmo);
	if (fd < 0) {
		snprintf(err, errlen, "cannot reach peer %s at %s: %s", name, e->addr,
		         cp_jsonl_strerror(fd));
		errno = -fd;
		return NULL;
	}
	struct cp_peer_conn *c = calloc(1, sizeof(*c));
	if (c == NULL || (c->io = cp_jsonl_create(fd)) == NULL) {
		free(c);
		close(fd);
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	c->timeout_ms = tmo;
	c->next_id = 1;
	const struct cp_peer_self self = {p->self_name, p->psk, p->amst_ip};
	int rc = cp_peer_handshake_client(c->io, &self, name, &c->other, tmo, err, errlen);
	if (rc != 0) {
		cp_peer_conn_close(c);
		errno = -rc;
		return NULL;
	}
	cp_peer_link_init(&c->link, &c->other, true);
	return c;
}

int cp_peer_call(struct cp_peer_conn *c, const char *method, json_t *params, json_t **result,
                 char *err, size_t errlen)
{
	if (c->broken) {
		snprintf(err, errlen, "peer %s: %s: the link broke on an earlier call",
		         c->other.name, method);
		return -ENOTCONN;
	}
	long long id = c->next_id++;
	json_t *req = json_pack("{s:I, s:s}", "id", (json_int_t)id, "method", method);
	if (params != NULL)
		json_object_set(req, "params", params);
	int rc = cp_peer_link_send(c->io, &c->link, req, c->timeout_ms);
	json_decref(req);
	json_t *rep = NULL;
	c->broken = rc != 0; /* part of a line may have gone */
	if (rc == 0)
		rc = cp_peer_link_recv(c->io, &c->link, &rep, c->timeout_ms);
	/* Replies to earlier requests that timed out (their callers went on)
	 * come first: skip them, or every later reply would be one behind. */
	for (int skipped = 0; rc == 0 && skipped < 16; skipped++) {
		json_t *rid = json_object_get(rep, "id");
		if (!json_is_integer(rid) || json_integer_value(rid) >= id)
			break;
		json_decref(rep);
		rep = NULL;
		rc = cp_peer_link_recv(c->io, &c->link, &rep, c->timeout_ms);
	}
	/* A reply late past its time-out stays in the buffer, in step (the
	 * loop above skips it next time); anything else leaves the link out of
	 * step for good. */
	if (rc != 0 && rc != -ETIMEDOUT)
		c->broken = true;
	if (rc != 0) {
		snprintf(err, errlen, "peer %s: %s: %s", c->other.name, method,
		         rc == -ECONNRESET || rc == -EPIPE ? "the peer's control plane went away"
		         : rc == -EBADMSG ? "a reply that failed its check (changed on the way?)"
		                          : cp_jsonl_strerror(rc));
		return rc;
	}
	if (json_integer_value(json_object_get(rep, "id")) != id) {
		json_decref(rep);
		snprintf(err, errlen, "peer %s: %s: a reply to another request", c->other.name,
		         method);
		return -EPROTO;
	}
	if (!json_is_true(json_object_get(rep, "ok"))) {
		const char *m = json_string_value(
		        json_object_get(json_object_get(rep, "error"), "message"));
		snprintf(err, errlen, "peer %s: %.400s", c->other.name, m ? m : "error");
		cp_peer_printable(err);
		json_decref(rep);
		return -EREMOTEIO;
	}
	if (result != NULL) {
		*result = json_incref(json_object_get(rep, "result"));
		if (*result == NULL)
			*result = json_object();
	}
	json_decref(rep);
	return 0;
}

const struct cp_peer_other *cp_peer_conn_other(const struct cp_peer_conn *c)
{
	return &c->other;
}

void cp_peer_conn_close(struct cp_peer_conn *c)
{
	if (c == NULL)
		return;
	cp_jsonl_destroy(c->io);
	OPENSSL_cleanse(c, sizeof(*c)); /* the link key */
	free(c);
}

bool cp_peer_conn_ok(const struct cp_peer_conn *c)
{
	return c != NULL && !c->broken;
}

/* ---- what peers may call ---- */

static int m_info(const json_t *params, json_t **result, void *arg, char *err, size_t errlen)
{
	(void)params, (void)err, (void)errlen;
	struct cp_peers *p = arg;
	/* Where a source's libvirtd reaches ours, for libvirt migrations to us. */
	const char *lv = nc_config_get_str(p->cp->cfg, "controlplane.libvirt_dest_uri");
	if (lv[0] == '\0')
		lv = nc_config_get_str(p->cp->cfg, "controlplane.libvirt_uri");
	char why[160];
	cp_dplink_why(p->cp->link, why, sizeof(why));
	*result = json_pack("{s:s, s:s, s:b, s:s, s:s}", "name", p->self_name, "amst_ip",
	                    p->amst_ip, "dataplane_alive", cp_dplink_alive(p->cp->link),
	                    "dataplane", why, "libvirt_uri", lv);
	return 0;
}

/* Is there something to deliver to at this address? Without connecting
 * (a connection would be taken for the migration by QEMU). */
static int m_check_dest(const json_t *params, json_t **result, void *arg, char *err, size_t errlen)
{
	(void)arg;
	const char *a = json_string_value(json_object_get(params, "address"));
	if (strncmp(a, "unix:", 5) == 0) {
		struct stat st;
		if (a[5] != '/') {
			snprintf(err, errlen, "destination %.200s: not an absolute path", a);
			return -EINVAL;
		}
		if (stat(a + 5, &st) != 0) {
			snprintf(err, errlen,
			         "destination %.200s: %s (is the destination QEMU listening there, "
			         "-incoming %.200s?)",
			         a, strerror(errno), a);
			return -ENOENT;
		}
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "destination %.200s: not a socket", a);
			return -ENOTSOCK;
		}
	} else if (strncmp(a, "tcp:", 4) != 0) {
		snprintf(err, errlen, "destination %.200s: must be unix:PATH or tcp:IP:PORT", a);
		return -EINVAL;
	}
	*result = json_pack("{s:s, s:b}", "address", a, "ok", 1);
	return 0;
}

static const struct nc_ctl_param check_params[] = {
        {"address", NC_CTL_STRING, true, "unix:PATH or tcp:IP:PORT"},
        {NULL, 0, false, NULL},
};

static const struct nc_ctl_method peer_methods[] = {
        {"peer.info", "this host's name, AMST address, dataplane state and libvirt URI", NULL,
         m_info},
        {"peer.check_dest", "is a destination socket there (without connecting)", check_params,
         m_check_dest},
        {NULL, NULL, NULL, NULL},
};

/* ---- the listening side ---- */

/* The sessions a peer opened here over one connection, by name. */
struct opened {
	char name[NC_MAX_SESSIONS][NC_SESSION_NAME_LEN];
	unsigned n;
};

static void opened_del(struct opened *o, const char *name)
{
	for (unsigned i = 0; i < o->n; i++)
		if (strcmp(o->name[i], name) == 0) {
			memmove(o->name[i], o->name[i + 1], (o->n - i - 1) * sizeof(o->name[0]));
			o->n--;
			return;
		}
}

static void opened_add(struct opened *o, const char *name)
{
	opened_del(o, name);
	if (o->n == NC_MAX_SESSIONS) /* more than the slots: the oldest is long gone */
		opened_del(o, o->name[0]);
	snprintf(o->name[o->n++], sizeof(o->name[0]), "%s", name);
}

/* The peer is gone (its control plane died, or gave up, between opening a
 * receiving session here and its own): a session of its still waiting for
 * the INIT would wait for good and hold a slot. Sessions already under way
 * are left to AMST (the peer's dataplane may still be sending). */
static void close_waiting(struct cp_peers *p, const char *peer, const struct opened *o)
{
	for (unsigned i = 0; i < o->n; i++) {
		char err[256];
		/* the dataplane checks and closes in one step: an INIT arriving
		 * meanwhile keeps its session */
		if (cp_session_close_waiting(p->cp, o->name[i], err, sizeof(err)) == 0)
			NC_LOG(NOTICE,
			       "peer %s went away: its session %s, still waiting for the INIT, "
			       "closed",
			       peer, o->name[i]);
	}
}

static void *conn_thread(void *arg)
{
	struct conn_slot *slot = arg;
	struct cp_peers *p = slot->p;
	struct cp_jsonl *io = cp_jsonl_create(slot->fd);
	if (io == NULL) {
		/* Forget the fd before closing it, as below. */
		pthread_mutex_lock(&p->lock);
		int fd = slot->fd;
		slot->fd = -1;
		pthread_mutex_unlock(&p->lock);
		close(fd);
		goto out;
	}
	struct cp_peer_other other;
	char err[256];
	const struct cp_peer_self self = {p->self_name, p->psk, p->amst_ip};
	int tmo = peer_timeout(p->cp);
	if (cp_peer_handshake_server(io, &self, known_fn, p, &other, tmo, err, sizeof(err)) != 0) {
		NC_LOG_RL(WARN, "peer connection refused: %s", err);
		pthread_mutex_lock(&p->lock);
		p->refused++;
		pthread_mutex_unlock(&p->lock);
		goto out_io;
	}
	pthread_mutex_lock(&p->lock);
	slot->authed = true;
	pthread_mutex_unlock(&p->lock);
	NC_LOG(INFO, "peer %s connected (AMST %s)", other.name, other.amst_ip);
	struct cp_peer_link link;
	cp_peer_link_init(&link, &other, false);
	struct opened opened = {.n = 0};
	for (;;) {
		json_t *req = NULL;
		/* Idle peers may wait long; shutdown() of the socket wakes us at exit. */
		int rc = cp_peer_link_recv(io, &link, &req, 24 * 3600 * 1000);
		if (rc == -EBADMSG) {
			NC_LOG(WARN,
			       "peer %s: a message failed its check (changed, replayed or injected "
			       "on the way?): connection closed",
			       other.name);
			pthread_mutex_lock(&p->lock);
			p->forbidden++;
			pthread_mutex_unlock(&p->lock);
		}
		if (rc != 0)
			break;
		const char *method = json_string_value(json_object_get(req, "method"));
		const char *sname =
		        json_string_value(json_object_get(json_object_get(req, "params"), "name"));
		int tracked = 0; /* 1: session.open, -1: session.close */
		char name[NC_SESSION_NAME_LEN] = "";
		if (method && sname && strlen(sname) < sizeof(name)) {
			tracked = strcmp(method, "session.open") == 0    ? 1
			          : strcmp(method, "session.close") == 0 ? -1
			                                                 : 0;
			snprintf(name, sizeof(name), "%s", sname);
		}
		char why[400];
		/* p->dests is set at init and only read since: no lock */
		int allowed = cp_peer_request_ok(
		        &other, method, json_object_get(req, "params"), p->dests, p->n_dests,
		        nc_config_get_str(p->cp->cfg, "runtime.dir"), why, sizeof(why));
		json_t *rep;
		if (allowed != 0) {
			pthread_mutex_lock(&p->lock);
			p->forbidden++;
			pthread_mutex_unlock(&p->lock);
			char meth[48];
			snprintf(meth, sizeof(meth), "%s", method ? method : "?");
			cp_peer_printable(why);
			cp_peer_printable(meth);
			NC_LOG_RL(WARN, "peer %s: %s refused: %s", other.name, meth, why);
			rep = json_pack("{s:O?, s:b, s:{s:s, s:s}}", "id",
			                json_object_get(req, "id"), "ok", 0, "error", "code",
			                "forbidden", "message", why);
			json_decref(req);
		} else {
			char *line = json_dumps(req, JSON_COMPACT);
			json_decref(req);
			if (line == NULL)
				break;
			rep = nc_ctl_handle_line(p->methods, line, strlen(line));
			free(line);
		}
		if (tracked > 0 && json_is_true(json_object_get(rep, "ok")))
			opened_add(&opened, name);
		else if (tracked < 0 && json_is_true(json_object_get(rep, "ok")))
			opened_del(&opened, name);
		pthread_mutex_lock(&p->lock);
		p->requests++;
		pthread_mutex_unlock(&p->lock);
		rc = cp_peer_link_send(io, &link, rep, tmo);
		json_decref(rep);
		if (rc != 0)
			break;
	}
	NC_LOG(INFO, "peer %s disconnected", other.name);
	pthread_mutex_lock(&p->lock);
	bool stopping = p->stopping;
	pthread_mutex_unlock(&p->lock);
	if (!stopping)
		close_waiting(p, other.name, &opened);
	OPENSSL_cleanse(&link, sizeof(link));
	OPENSSL_cleanse(other.link_key, sizeof(other.link_key));
out_io:
	/* Forget the fd before closing it: shutdown at exit must not hit a reused one. */
	pthread_mutex_lock(&p->lock);
	slot->fd = -1;
	pthread_mutex_unlock(&p->lock);
	cp_jsonl_destroy(io);
out:
	pthread_mutex_lock(&p->lock);
	slot->fd = -1;
	slot->done = true;
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Join finished connection threads. Called with the lock held. */
static void reap(struct cp_peers *p)
{
	for (unsigned i = 0; i < MAX_CONNS; i++) {
		if (p->conns[i].used && p->conns[i].done) {
			pthread_join(p->conns[i].thread, NULL);
			p->conns[i].used = false;
		}
	}
}

/* Whether @p a is the IP of a configured peer (controlplane.peers). */
static bool peer_addr_known(const struct cp_peers *p, struct in_addr a)
{
	for (unsigned i = 0; i < p->n_peers; i++) {
		char ip[24];
		snprintf(ip, sizeof(ip), "%s", p->peers[i].addr);
		char *colon = strrchr(ip, ':');
		if (colon != NULL)
			*colon = '\0';
		struct in_addr b;
		if (inet_pton(AF_INET, ip, &b) == 1 && b.s_addr == a.s_addr)
			return true;
	}
	return false;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void *accept_thread(void *arg)
{
	struct cp_peers *p = arg;
	for (;;) {
		struct pollfd pf[2] = {{.fd = p->lfd, .events = POLLIN},
		                       {.fd = p->wake[0], .events = POLLIN}};
		int n = poll(pf, 2, 1000);
		pthread_mutex_lock(&p->lock);
		reap(p);
		pthread_mutex_unlock(&p->lock);
		if (n < 0 && errno != EINTR)
			break;
		if (n <= 0)
			continue;
		if (pf[1].revents)
			break;
		struct sockaddr_in src;
		socklen_t srclen = sizeof(src);
		int fd = accept4(p->lfd, (struct sockaddr *)&src, &srclen, SOCK_CLOEXEC);
		if (fd < 0) {
			/* Out of descriptors or memory: the connection stays
			 * queued and the socket readable, so poll() would return
			 * at once for ever. Wait a little (or for shutdown). */
			int e = errno;
			if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
				NC_LOG_RL(WARN, "peer link: cannot accept a connection: %s",
				          strerror(e));
				struct pollfd w = {.fd = p->wake[0], .events = POLLIN};
				(void)poll(&w, 1, ACCEPT_RETRY_MS);
			}
			continue;
		}
		pthread_mutex_lock(&p->lock);
		struct conn_slot *slot = NULL;
		for (unsigned i = 0; i < MAX_CONNS && slot == NULL; i++)
			if (!p->conns[i].used)
				slot = &p->conns[i];
		if (slot == NULL) {
			p->refused++;
			pthread_mutex_unlock(&p->lock);
			NC_LOG_RL(WARN, "peer connection refused: %d connections already",
			          MAX_CONNS);
			close(fd);
			continue;
		}
		/* Too many still in their handshake from unknown addresses: end
		 * the oldest (its thread sees the socket shut, fails the
		 * handshake and counts it refused). */
		bool known = srclen == sizeof(src) && src.sin_family == AF_INET &&
		             peer_addr_known(p, src.sin_addr);
		struct conn_slot *oldest = NULL;
		unsigned handshaking = 0;
		for (unsigned i = 0; i < MAX_CONNS && !known; i++) {
			struct conn_slot *c = &p->conns[i];
			if (!c->used || c->done || c->authed || c->known_src || c->fd < 0 ||
			    c->accepted_ms == UINT64_MAX) /* already ended, still leaving */
				continue;
			handshaking++;
			if (oldest == NULL || c->accepted_ms < oldest->accepted_ms)
				oldest = c;
		}
		if (handshaking >= MAX_HANDSHAKING && oldest != NULL) {
			(void)shutdown(oldest->fd, SHUT_RDWR);
			oldest->accepted_ms = UINT64_MAX; /* ended: not the oldest again */
			NC_LOG_RL(WARN,
			          "peer link: %u connections from unknown addresses in their "
			          "handshake; the oldest ended",
			          handshaking);
		}
		int on = 1, idle = PEER_KEEPIDLE_S, intvl = PEER_KEEPINTVL_S, cnt = PEER_KEEPCNT;
		unsigned user_ms = PEER_USER_TIMEOUT_S * 1000u;
		(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
		(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
		(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
		(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
		(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof(user_ms));
		*slot = (struct conn_slot){.used = true,
		                           .known_src = known,
		                           .fd = fd,
		                           .p = p,
		                           .accepted_ms = mono_ms()};
		p->accepted++;
		if (pthread_create(&slot->thread, NULL, conn_thread, slot) != 0) {
			slot->used = false;
			close(fd);
		}
		pthread_mutex_unlock(&p->lock);
	}
	return NULL;
}

/* controlplane.peer_dests: "/DIR", "tcp:IP" or "tcp:IP:PORT"; and
 * controlplane.libvirt_socket_dir, where libvirt migrations deliver. */
static int parse_dests(struct cp_peers *p, char *err, size_t errlen)
{
	const char *const *items;
	unsigned n = nc_config_get_list(p->cp->cfg, "controlplane.peer_dests", &items);
	if (n > MAX_DESTS) {
		snprintf(err, errlen, "controlplane.peer_dests: at most %d entries", MAX_DESTS);
		return -EINVAL;
	}
	for (unsigned i = 0; i < n; i++) {
		const char *d = items[i];
		struct sockaddr_in sin;
		bool ok = d[0] == '/';
		if (strncmp(d, "tcp:", 4) == 0) {
			char ipport[32];
			snprintf(ipport, sizeof(ipport), "%s%s", d + 4,
			         strchr(d + 4, ':') ? "" : ":1");
			ok = strlen(d) < 28 && cp_parse_ipport(ipport, &sin) == 0;
		}
		if (!ok) {
			snprintf(err, errlen,
			         "controlplane.peer_dests: '%.80s' is not /DIR, tcp:IP or "
			         "tcp:IP:PORT",
			         d);
			return -EINVAL;
		}
		p->dests[p->n_dests++] = d;
	}
	p->dests[p->n_dests++] = nc_config_get_str(p->cp->cfg, "controlplane.libvirt_socket_dir");
	return 0;
}

static int parse_peers(struct cp_peers *p, char *err, size_t errlen)
{
	const char *const *items;
	unsigned n = nc_config_get_list(p->cp->cfg, "controlplane.peers", &items);
	if (n > MAX_PEERS) {
		snprintf(err, errlen, "controlplane.peers: at most %d peers", MAX_PEERS);
		return -EINVAL;
	}
	for (unsigned i = 0; i < n; i++) {
		const char *eq = strchr(items[i], '=');
		struct sockaddr_in sin;
		char name[CP_PEER_NAME_MAX + 1];
		size_t nl = eq ? (size_t)(eq - items[i]) : 0;
		if (eq == NULL || nl == 0 || nl > CP_PEER_NAME_MAX) {
			snprintf(err, errlen, "controlplane.peers: '%.80s' is not NAME=IP:PORT",
			         items[i]);
			return -EINVAL;
		}
		memcpy(name, items[i], nl);
		name[nl] = '\0';
		if (!cp_peer_name_ok(name)) {
			snprintf(err, errlen,
			         "controlplane.peers: '%.80s': a name has letters, digits, - _ .",
			         items[i]);
			return -EINVAL;
		}
		if (cp_parse_ipport(eq + 1, &sin) != 0) {
			snprintf(err, errlen,
			         "controlplane.peers: '%.80s': '%.40s' is not IPv4:PORT", items[i],
			         eq + 1);
			return -EINVAL;
		}
		if (known_fn(name, p) || strcmp(name, p->self_name) == 0) {
			snprintf(err, errlen, "controlplane.peers: '%.64s' twice (or our own name)",
			         name);
			return -EINVAL;
		}
		snprintf(p->peers[p->n_peers].name, sizeof(p->peers[0].name), "%s", name);
		snprintf(p->peers[p->n_peers].addr, sizeof(p->peers[0].addr), "%s", eq + 1);
		p->n_peers++;
	}
	/* Each host's migrations are named with its own prefix, what its peers
	 * let it touch (cp_peer_policy.c): no two may share one. */
	for (unsigned i = 0; i <= p->n_peers; i++) {
		const char *a = i < p->n_peers ? p->peers[i].name : p->self_name;
		char pa[CP_PEER_SESSION_PREFIX], pb[CP_PEER_SESSION_PREFIX];
		cp_peer_session_prefix(a, pa);
		for (unsigned j = i + 1; j <= p->n_peers; j++) {
			const char *b = j < p->n_peers ? p->peers[j].name : p->self_name;
			cp_peer_session_prefix(b, pb);
			size_t n = strlen(pa) < strlen(pb) ? strlen(pa) : strlen(pb);
			if (strncmp(pa, pb, n) == 0) {
				snprintf(err, errlen,
				         "hosts '%.64s' and '%.64s' would name their migrations' "
				         "sessions alike (%s): rename one",
				         a, b, pa);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* The peer link's settings, checked, into @p p (no socket, no thread). */
static int peers_configure(struct cp_peers *p, char *err, size_t errlen)
{
	struct cp *cp = p->cp;
	const char *name = nc_config_get_str(cp->cfg, "controlplane.host_name");
	if (name[0] == '\0') {
		char h[256] = "";
		gethostname(h, sizeof(h) - 1);
		h[CP_PEER_NAME_MAX] = '\0';
		snprintf(p->self_name, sizeof(p->self_name), "%s", h);
	} else {
		snprintf(p->self_name, sizeof(p->self_name), "%s", name);
	}
	if (!cp_peer_name_ok(p->self_name)) {
		snprintf(
		        err, errlen,
		        "controlplane.host_name '%s': 1-63 letters, digits, - _ . (set it when the "
		        "system's host name does not fit)",
		        p->self_name);
		return -EINVAL;
	}
	const char *amst = nc_config_get_str(cp->cfg, "amst.ip");
	char ip[19];
	snprintf(ip, sizeof(ip), "%s", amst);
	char *slash = strchr(ip, '/');
	if (slash)
		*slash = '\0';
	cp_peer_copy_ip(p->amst_ip, ip);
	const char *psk = nc_config_get_str(cp->cfg, "controlplane.peer_psk");
	snprintf(p->psk, sizeof(p->psk), "%s", psk);
	int rc = parse_peers(p, err, errlen);
	if (rc == 0)
		rc = parse_dests(p, err, errlen);
	if (rc != 0)
		return rc;
	const char *listen_at = nc_config_get_str(cp->cfg, "controlplane.peer_listen");
	if ((listen_at[0] || p->n_peers) && strlen(p->psk) < 16) {
		snprintf(err, errlen,
		         "controlplane.peer_psk must have 16-64 characters when peers "
		         "or peer_listen are set");
		return -EINVAL;
	}
	struct sockaddr_in sin;
	if (listen_at[0] != '\0' && cp_parse_ipport(listen_at, &sin) != 0) {
		snprintf(err, errlen, "controlplane.peer_listen '%s' is not IPv4:PORT", listen_at);
		return -EINVAL;
	}
	return 0;
}

int cp_peer_check_config(struct cp *cp, char *err, size_t errlen)
{
	struct cp_peers *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	p->cp = cp;
	int rc = peers_configure(p, err, errlen);
	free(p);
	return rc;
}

static int peers_init(void *arg, struct nc_init_ctx *ctx, char *err, size_t errlen)
{
	(void)ctx;
	struct cp_peers *p = arg;
	struct cp *cp = p->cp;
	int rc = peers_configure(p, err, errlen);
	if (rc != 0)
		return rc;
	const char *listen_at = nc_config_get_str(cp->cfg, "controlplane.peer_listen");
	p->methods = nc_ctl_create("/peer-methods");
	if (p->methods == NULL || nc_ctl_register_all(p->methods, peer_methods, p) != 0 ||
	    cp_session_register_peer(p->methods, cp) != 0) {
		snprintf(err, errlen, "cannot set up the peer methods");
		return -ENOMEM;
	}
	cp->peers = p;
	if (listen_at[0] == '\0') {
		NC_LOG(INFO, "host %s: %u peers, not listening for peers", p->self_name,
		       p->n_peers);
		return 0;
	}
	struct sockaddr_in sin;
	if (cp_parse_ipport(listen_at, &sin) != 0) {
		snprintf(err, errlen, "controlplane.peer_listen '%s' is not IPv4:PORT", listen_at);
		return -EINVAL;
	}
	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (p->lfd < 0 || setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(p->lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(p->lfd, 16) != 0) {
		rc = -errno;
		snprintf(err, errlen, "controlplane.peer_listen %s: %s", listen_at,
		         strerror(errno));
		if (p->lfd >= 0)
			close(p->lfd);
		p->lfd = -1;
		return rc;
	}
	if (pipe2(p->wake, O_CLOEXEC) != 0 ||
	    pthread_create(&p->accept_thread, NULL, accept_thread, p) != 0) {
		snprintf(err, errlen, "cannot start the peer thread");
		close(p->lfd);
		p->lfd = -1;
		return -EAGAIN;
	}
	p->listening = true;
	NC_LOG(NOTICE, "host %s: listening for peers on %s (%u peers known)", p->self_name,
	       listen_at, p->n_peers);
	return 0;
}

static void peers_shutdown(void *arg)
{
	struct cp_peers *p = arg;
	if (p->listening) {
		(void)write(p->wake[1], "x", 1);
		pthread_join(p->accept_thread, NULL);
		pthread_mutex_lock(&p->lock);
		p->stopping = true;
		for (unsigned i = 0; i < MAX_CONNS; i++)
			if (p->conns[i].used && p->conns[i].fd >= 0)
				shutdown(p->conns[i].fd, SHUT_RDWR);
		pthread_mutex_unlock(&p->lock);
		for (unsigned i = 0; i < MAX_CONNS; i++) {
			if (p->conns[i].used) {
				pthread_join(p->conns[i].thread, NULL);
				p->conns[i].used = false;
			}
		}
		close(p->lfd);
		close(p->wake[0]);
		close(p->wake[1]);
		p->listening = false;
	}
	p->cp->peers = NULL;
	nc_ctl_destroy(p->methods);
	p->methods = NULL;
	memset(p->psk, 0, sizeof(p->psk));
}

static enum nc_health peers_health(void *arg, char *msg, size_t msglen)
{
	struct cp_peers *p = arg;
	pthread_mutex_lock(&p->lock);
	snprintf(msg, msglen,
	         "host %s, %u peers, %s, %lu connections, %lu refused, %lu requests, %lu "
	         "forbidden",
	         p->self_name, p->n_peers, p->listening ? "listening" : "not listening",
	         p->accepted, p->refused, p->requests, p->forbidden);
	pthread_mutex_unlock(&p->lock);
	return NC_HEALTH_OK;
}

int cp_peer_component(struct cp *cp)
{
	static const char *const deps[] = {"sessions", NULL};
	struct cp_peers *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p->cp = cp;
	p->lfd = -1;
	pthread_mutex_init(&p->lock, NULL);
	cp->peers_mem = p;
	const struct nc_component c = {
	        .name = "peers",
	        .phase = NC_PHASE_DWCP,
	        .deps = deps,
	        .init = peers_init,
	        .health = peers_health,
	        .shutdown = peers_shutdown,
	        .arg = p,
	        .timeout_ms = 2000,
	};
	return nc_app_add(cp->app, &c);
}

void cp_peer_free(struct cp_peers *p)
{
	if (p == NULL)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p);
}
