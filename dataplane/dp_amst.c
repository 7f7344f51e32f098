/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp_amst: AMST sessions in the dataplane. Glues the protocol core
 * (dataplane/amst/) to a DPDK port through dp_net (Ethernet, ARP, IPv4, UDP)
 * and to QEMU's connections through dp_host (UNIX/TCP sockets). Sessions are
 * opened, changed and closed by commands from the control plane on the
 * command ring, and their counters are published in the stats memzone.
 *
 * Everything here runs on the service worker: it receives the port's
 * packets, owns every session and transmits on queue 0. Nothing here
 * allocates per packet but mbufs, and nothing logs per packet.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#define NC_LOG_MODULE "amst"
#include "amst_conn.h"
#include "amst_crypto.h"
#include "amst_wire.h"
#include "dp.h"
#include "dp_amst.h"
#include "dp_host.h"
#include "dp_net.h"
#include "nc_log.h"

#define TX_BACKLOG 512
#define ACTIVE_NS  5000000ull /* a session that moved a packet this recently is active */
/* The longest nap of the worker while a session is active (the port's ring
 * holds what arrives meanwhile). */
#define ACTIVE_NAP_NS 200000ull
#define TX_BURST      64

struct dp_amst_sess {
	bool used;
	bool free_when_closed;
	char name[NC_SESSION_NAME_LEN];
	char addr_text[NC_SESSION_ADDR_LEN];
	enum nc_session_role role;
	enum nc_session_state state;
	uint32_t peer_ip;
	uint16_t peer_port;
	uint32_t next_hop;
	uint8_t peer_mac[6];
	bool resolved;
	uint32_t local_cid;
	uint64_t rate_cap;
	uint64_t unsent_ns; /* send: the unsent limit (amst.unsent_ms, or session.open/set's) */
	bool full_window; /* receive: whole buffers (!amst.follow_reader, or session.open/set's) */
	uint64_t opened_ns;
	uint64_t closed_ns; /* when its conn closed (0: open) */
	uint64_t busy_ns;   /* last seen with a stream open or bytes unacknowledged */
	uint32_t flags;     /* NC_SESS_REQ_* */
	struct dp_host_addr addr;
	struct amst_conn *conn;
	struct dp_host_sess *host;
	char error[64];
};

struct dp_amst {
	bool enabled;
	struct dp_net_cfg net;
	struct dp_arp *arp;
	struct dp_net_stats net_st;
	struct dp_host *host;
	struct amst_conn_cfg base;
	struct dp_host_codec codec; /* HDE of sessions opened with it (hde.*) */
	char psk[AMST_PSK_MAX + 1];
	uint16_t port_id;
	uint16_t ip_id;
	struct dp_amst_sess sess[NC_MAX_SESSIONS];
	struct rte_mbuf *backlog[TX_BACKLOG];
	unsigned n_backlog;
	/* Unsealed stream bytes go out from the stream buffers, attached to the
	 * packet as external segments (amst_conn_output_spans), on a port that
	 * takes chains and copies them before its transmit call returns. */
	bool tx_gather;
	struct rte_mbuf_ext_shared_info ext_info;
	uint64_t tx_linearized; /* chained packets the port left: copied whole */
	uint64_t tx_stall_ns;   /* when the port first refused the backlog (0: it takes it) */
	unsigned rr;            /* session served first, rotating */
	uint64_t no_mbuf, tx_dropped, unknown_session, init_refused;
	uint64_t rx_chained;    /* frames larger than an mbuf, in segments: not parsed */
	uint64_t rx_other_port; /* frames from a port AMST does not send on: not parsed */
	uint64_t init_unmatched, init_stale, init_replayed; /* of init_refused */
	struct amst_init_cache inits;                       /* INITs accepted lately (replays) */
	uint64_t host_poll_ns;                              /* last dp_host_poll() */
	uint64_t rates_ns;                                  /* last feed_link_rates() */
	uint64_t linger_ns;     /* a closed session nobody removes goes after this (0: never) */
	uint64_t unused_ns;     /* an open session unused this long is ended (0: never) */
	uint64_t sess_check_ns; /* next follow_next_hops() and end_unused() */
	unsigned idle_loops;    /* dp_amst_run calls in a row that found no work */
	uint64_t amst_drops[AMST_DROP_COUNT]; /* drops of packets no session took */
};

/* Longest time between two socket readiness polls while busy. */
#define HOST_POLL_NS 20000u
/* How often HDE's adaptive choice hears the links' delivery rates. */
#define RATE_FEED_NS 100000000u
/* How often sessions are looked at (amst.unused_close_s, next hops). */
#define SESS_CHECK_NS 1000000000ull

static struct dp_amst amst_state;

/* amst_conn_cfg.app_flags: the session's streams are HDE-coded. */
#define DP_APP_HDE 0x1

static uint64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t random_cid(const struct dp_amst *a)
{
	for (;;) {
		uint8_t r[4];
		amst_random(r, sizeof(r));
		uint32_t cid = amst_get32(r);
		bool taken = cid == 0;
		for (unsigned i = 0; i < NC_MAX_SESSIONS && !taken; i++)
			taken = a->sess[i].used && a->sess[i].local_cid == cid;
		if (!taken)
			return cid;
	}
}

/* ---- transmit ---- */

static void tx_flush(struct dp_amst *a)
{
	unsigned sent = 0;
	while (sent < a->n_backlog) {
		uint16_t n = rte_eth_tx_burst(
		        a->port_id, 0, a->backlog + sent,
		        (uint16_t)RTE_MIN(a->n_backlog - sent, (unsigned)TX_BURST));
		if (n == 0)
			break;
		sent += n;
	}
	if (sent) {
		memmove(a->backlog, a->backlog + sent,
		        (a->n_backlog - sent) * sizeof(a->backlog[0]));
		a->n_backlog -= sent;
		a->tx_stall_ns = 0;
	} else if (a->n_backlog) {
		/* The port took nothing for 100 ms from its first refusal (link
		 * down?): drop, AMST resends. No clock read while it takes. */
		uint64_t now = dp_now_ns();
		if (a->tx_stall_ns == 0) {
			a->tx_stall_ns = now;
		} else if (now - a->tx_stall_ns > 100000000ull) {
			for (unsigned i = 0; i < a->n_backlog; i++)
				rte_pktmbuf_free(a->backlog[i]);
			a->tx_dropped += a->n_backlog;
			a->n_backlog = 0;
			a->tx_stall_ns = 0;
		}
	}
}

static void tx_queue(struct dp_amst *a, struct rte_mbuf *m)
{
	if (a->n_backlog == TX_BACKLOG) {
		tx_flush(a);
		if (a->n_backlog == TX_BACKLOG) {
			rte_pktmbuf_free(m);
			a->tx_dropped++;
			return;
		}
	}
	a->backlog[a->n_backlog++] = m;
	if (a->n_backlog >= TX_BURST)
		tx_flush(a);
}

static void send_arp_request(struct dp *dp, struct dp_amst *a, uint32_t ip)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(dp->pool);
	if (m == NULL) {
		a->no_mbuf++;
		return;
	}
	uint32_t len = dp_net_arp_request(&a->net, &a->net_st, ip, rte_pktmbuf_mtod(m, uint8_t *),
	                                  rte_pktmbuf_tailroom(m));
	m->data_len = (uint16_t)len;
	m->pkt_len = len;
	tx_queue(a, m);
}

static void ext_free(void *addr, void *opaque)
{
	(void)addr;
	(void)opaque; /* the stream buffers are the session's, not ours */
}

/* Make @p m (the frame, built with its spans left out) the whole packet: its
 * stream bytes as external segments where they lie, the bytes between and
 * after them in small segments of their own. -ENOMEM when the pool is dry
 * (the caller copies instead). */
static int chain_spans(struct dp *dp, struct dp_amst *a, struct rte_mbuf *m, uint8_t *frame,
                       uint32_t flen, const struct amst_span *sp, unsigned n)
{
	struct rte_mbuf *seg[2 * AMST_MAX_SPANS];
	unsigned k = 2 * n;
	if (n > AMST_MAX_SPANS || rte_pktmbuf_alloc_bulk(dp->pool, seg, k) != 0)
		return -ENOMEM;
	struct rte_mbuf *last = m;
	unsigned used = 0;
	m->data_len = (uint16_t)(sp[0].dst - frame);
	for (unsigned i = 0; i < n; i++) {
		struct rte_mbuf *e = seg[used++];
		rte_pktmbuf_attach_extbuf(e, (void *)(uintptr_t)sp[i].src, RTE_BAD_IOVA,
		                          (uint16_t)sp[i].len, &a->ext_info);
		rte_mbuf_ext_refcnt_update(&a->ext_info, 1);
		e->data_len = (uint16_t)sp[i].len;
		last->next = e;
		last = e;
		const uint8_t *from = sp[i].dst + sp[i].len;
		const uint8_t *to = i + 1 < n ? sp[i + 1].dst : frame + flen;
		if (to > from) {
			struct rte_mbuf *t = seg[used++];
			memcpy(rte_pktmbuf_mtod(t, uint8_t *), from, (size_t)(to - from));
			t->data_len = (uint16_t)(to - from);
			last->next = t;
			last = t;
		}
	}
	for (unsigned i = used; i < k; i++)
		rte_pktmbuf_free(seg[i]);
	m->nb_segs = (uint16_t)(used + 1);
	m->pkt_len = flen;
	return 0;
}

/* The port left some of a session's packets in the backlog: those that are
 * chains point into stream buffers the application may write again, so they
 * become whole copies now. */
static void unchain_backlog(struct dp_amst *a)
{
	for (unsigned i = 0; i < a->n_backlog; i++)
		if (a->backlog[i]->nb_segs > 1) {
			(void)rte_pktmbuf_linearize(a->backlog[i]); /* room: a full frame */
			a->tx_linearized++;
		}
}

/* Emit what a session has to send now; returns packets sent. */
static unsigned sess_output(struct dp *dp, struct dp_amst *a, struct dp_amst_sess *s, uint64_t now)
{
	if (s->conn == NULL)
		return 0;
	if (!s->resolved) {
		if (amst_conn_state(s->conn) == AMST_CLOSED)
			return 0; /* it never had a peer: nothing to ask the network */
		if (dp_arp_lookup(a->arp, s->next_hop, now, s->peer_mac) == 0) {
			s->resolved = true;
		} else {
			if (dp_arp_should_request(a->arp, s->next_hop, now))
				send_arp_request(dp, a, s->next_hop);
			return 0;
		}
	}
	unsigned n = 0;
	const uint32_t cap = a->net.mtu - 28;
	while (a->n_backlog < TX_BACKLOG) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(dp->pool);
		if (m == NULL) {
			a->no_mbuf++;
			break;
		}
		uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
		if (rte_pktmbuf_tailroom(m) < DP_NET_HDR_LEN + cap) {
			rte_pktmbuf_free(m);
			a->no_mbuf++;
			break;
		}
		const struct amst_span *sp = NULL;
		unsigned nsp = 0;
		size_t len = a->tx_gather
		                     ? amst_conn_output_spans(s->conn, frame + DP_NET_HDR_LEN, cap,
		                                              now, &sp, &nsp)
		                     : amst_conn_output(s->conn, frame + DP_NET_HDR_LEN, cap, now);
		if (len == 0) {
			rte_pktmbuf_free(m);
			break;
		}
		uint32_t flen = dp_net_udp_encap(&a->net, s->peer_mac, s->peer_ip, s->peer_port,
		                                 frame, (uint32_t)len, a->ip_id++);
		m->data_len = (uint16_t)flen;
		m->pkt_len = flen;
		if (nsp && chain_spans(dp, a, m, frame, flen, sp, nsp) != 0) {
			for (unsigned i = 0; i < nsp; i++)
				memcpy(sp[i].dst, sp[i].src, sp[i].len);
			a->no_mbuf++;
		}
		tx_queue(a, m);
		n++;
	}
	if (a->tx_gather) {
		/* Before the application writes to the streams again. */
		tx_flush(a);
		unchain_backlog(a);
	}
	return n;
}

/* ---- sessions ---- */

static struct dp_amst_sess *find(struct dp_amst *a, const char *name)
{
	for (unsigned i = 0; i < NC_MAX_SESSIONS; i++)
		if (a->sess[i].used && strcmp(a->sess[i].name, name) == 0)
			return &a->sess[i];
	return NULL;
}

static void publish_hde(struct nc_hde_shm *o, const struct dp_host_sess *h, bool sending)
{
	struct dp_host_codec_stats cs;
	dp_host_sess_codec_stats(h, &cs);
	const struct hde_stats *st = &cs.hde;
	o->stream_bytes = sending ? st->bytes_in : st->bytes_out;
	o->frame_bytes = sending ? st->bytes_out : st->bytes_in;
	o->frames = st->frames;
	o->ns_busy = st->ns_busy;
	for (unsigned i = 0; i < NC_HDE_TIERS && i < HDE_TIER__COUNT; i++) {
		o->tier_pages[i] = st->tier[i].pages;
		o->tier_bytes[i] = st->tier[i].bytes_in;
	}
	for (unsigned i = 0; i < NC_HDE_SETTINGS && i < HDE_SET__COUNT; i++)
		o->frames_by_setting[i] = st->frames_by_setting[i];
	o->cache_bytes = cs.cache_bytes;
	o->cache_peak = cs.cache_peak;
	o->cache_limit = cs.cache_limit;
	o->mem_peak = st->mem_peak;
	o->rec_pages = st->rec_pages;
	o->rec_lost = st->rec_lost;
	o->errors = cs.errors;
	o->streams = cs.streams;
}

/* Once per session, when it is freed: what HDE made of its streams and which
 * settings the adaptive choice took (frames per setting), for the operator;
 * the figures session.stats shows under "hde". */
static void log_codec_summary(const struct dp_amst_sess *s)
{
	if (s->host == NULL)
		return;
	struct nc_hde_shm h = {0};
	publish_hde(&h, s->host, s->role == NC_ROLE_SEND);
	if (h.streams == 0)
		return;
	char by[NC_HDE_SETTINGS * 32] = "";
	size_t at = 0;
	for (unsigned i = 0; i < NC_HDE_SETTINGS && i < HDE_SET__COUNT && at < sizeof(by); i++) {
		if (h.frames_by_setting[i] == 0)
			continue;
		int n = snprintf(by + at, sizeof(by) - at, "%s%s %llu", at ? ", " : "",
		                 hde_setting_name((enum hde_setting)i),
		                 (unsigned long long)h.frames_by_setting[i]);
		if (n < 0)
			break;
		at += (size_t)n;
	}
	NC_LOG(NOTICE, "session %s: HDE %s %.1f MB of stream as %.1f MB, %llu ms busy, frames: %s",
	       s->name, s->role == NC_ROLE_SEND ? "coded" : "decoded", (double)h.stream_bytes / 1e6,
	       (double)h.frame_bytes / 1e6, (unsigned long long)(h.ns_busy / 1000000),
	       at ? by : "-");
}

static void sess_free(struct dp_amst_sess *s)
{
	log_codec_summary(s);
	if (s->host)
		dp_host_sess_destroy(s->host);
	amst_conn_destroy(s->conn);
	memset(s, 0, sizeof(*s));
}

static void sess_events(struct dp_amst_sess *s)
{
	struct amst_event ev;
	while (s->conn && amst_conn_event(s->conn, &ev) == 1) {
		if (s->host)
			dp_host_event(s->host, &ev);
		if (ev.type == AMST_EV_ESTABLISHED) {
			s->state = NC_SESS_ESTABLISHED;
			NC_LOG(NOTICE, "session %s established", s->name);
		} else if (ev.type == AMST_EV_CLOSED) {
			const char *reason;
			uint32_t code = amst_conn_error(s->conn, &reason);
			s->state = NC_SESS_CLOSED;
			s->closed_ns = dp_now_ns();
			if (code != AMST_CLOSE_OK)
				snprintf(s->error, sizeof(s->error), "%s", reason);
			nc_log_msg(code ? NC_LOG_WARN : NC_LOG_NOTICE, NC_LOG_MODULE,
			           "session %s closed: %s", s->name, code ? reason : "clean");
		}
	}
}

static int open_session(struct dp_amst *a, const struct nc_session_req *r, char *err, size_t errlen)
{
	if (!a->enabled) {
		snprintf(err, errlen, "AMST is not configured (amst.ip and amst.psk)");
		return -ENOTCONN;
	}
	char name[NC_SESSION_NAME_LEN];
	memcpy(name, r->name, sizeof(name));
	name[sizeof(name) - 1] = '\0';
	if (name[0] == '\0') {
		snprintf(err, errlen, "a session needs a name");
		return -EINVAL;
	}
	if (find(a, name) != NULL) {
		snprintf(err, errlen, "session '%s' exists", name);
		return -EEXIST;
	}
	if ((r->flags & NC_SESS_REQ_WINDOW) && r->role != NC_ROLE_RECEIVE) {
		snprintf(err, errlen, "receive windows are the receiving side's");
		return -EINVAL;
	}
	/* Sessions are matched by name: both ends of a session use the same one. */
	struct dp_amst_sess *s = NULL;
	for (unsigned i = 0; i < NC_MAX_SESSIONS && s == NULL; i++)
		if (!a->sess[i].used)
			s = &a->sess[i];
	if (s == NULL) {
		snprintf(err, errlen, "all %d session slots are taken", NC_MAX_SESSIONS);
		return -ENOSPC;
	}
	char addr[NC_SESSION_ADDR_LEN];
	memcpy(addr, r->addr, sizeof(addr));
	addr[sizeof(addr) - 1] = '\0';
	struct dp_host_addr ha;
	int rc = dp_host_addr_parse(addr, &ha, err, errlen);
	if (rc != 0)
		return rc;
	if (ha.family == DP_HOST_TEST && (r->flags & NC_SESS_REQ_HDE)) {
		snprintf(err, errlen, "test streams are not HDE-coded: open it with codec none");
		return -EINVAL;
	}
	uint32_t hop = dp_net_next_hop(&a->net, r->peer_ip);
	if (hop == 0) {
		char ip[16];
		dp_net_ip_str(r->peer_ip, ip);
		snprintf(err, errlen, "peer %s is outside our subnet and no amst.gateway is set",
		         ip);
		return -EHOSTUNREACH;
	}
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->addr_text, sizeof(s->addr_text), "%s", addr);
	s->role = r->role;
	s->peer_ip = r->peer_ip;
	s->peer_port = r->peer_port ? r->peer_port : a->net.udp_port;
	s->next_hop = hop;
	s->rate_cap = r->rate_cap;
	s->flags = r->flags & (NC_SESS_REQ_DIGEST | NC_SESS_REQ_HDE);
	s->full_window =
	        (r->flags & NC_SESS_REQ_WINDOW) ? r->whole_window != 0 : a->base.full_window;
	s->addr = ha;
	s->local_cid = random_cid(a);
	s->opened_ns = wall_ns();
	s->busy_ns = dp_now_ns();
	if (r->role == NC_ROLE_SEND) {
		struct amst_conn_cfg cfg = a->base;
		cfg.client = true;
		cfg.local_cid = s->local_cid;
		cfg.rate_cap = r->rate_cap;
		if (r->flags & NC_SESS_REQ_UNSENT)
			cfg.unsent_ns = (uint64_t)r->unsent_ms * 1000000ull;
		s->unsent_ns = cfg.unsent_ns;
		snprintf(cfg.name, sizeof(cfg.name), "%s", s->name);
		cfg.wall_ms = wall_ns() / 1000000u;
		if (s->flags & NC_SESS_REQ_HDE)
			cfg.app_flags |= DP_APP_HDE;
		s->conn = amst_conn_client(&cfg, dp_now_ns());
		if (s->conn == NULL) {
			snprintf(err, errlen, "cannot create the session: %s", strerror(errno));
			return -errno;
		}
		s->host = dp_host_listen(a->host, s->conn, &ha, err, errlen);
		if (s->host == NULL) {
			rc = -errno;
			amst_conn_destroy(s->conn);
			s->conn = NULL;
			return rc ? rc : -EIO;
		}
		dp_host_sess_set_digest(s->host, (s->flags & NC_SESS_REQ_DIGEST) != 0);
		if (s->flags & NC_SESS_REQ_HDE) {
			struct dp_host_codec codec = a->codec;
			codec.streams = r->streams ? r->streams : 1;
			(void)dp_host_sess_set_codec(s->host, &codec);
		}
		s->state = NC_SESS_RESOLVING;
	} else if (r->role == NC_ROLE_RECEIVE) {
		s->state = NC_SESS_LISTENING;
	} else {
		snprintf(err, errlen, "role must be send or receive");
		return -EINVAL;
	}
	s->used = true;
	char ip[16];
	dp_net_ip_str(r->peer_ip, ip);
	NC_LOG(NOTICE, "session %s opened: %s, peer %s, %s %s", s->name,
	       r->role == NC_ROLE_SEND ? "send" : "receive", ip,
	       r->role == NC_ROLE_SEND ? "listening on" : "delivering to", addr);
	return 0;
}

int dp_amst_cmd(struct dp *dp, struct nc_msg *m, char *err, size_t errlen)
{
	(void)dp;
	struct dp_amst *a = &amst_state;
	char name[NC_SESSION_NAME_LEN];
	memcpy(name, m->u.sess.name, sizeof(name));
	name[sizeof(name) - 1] = '\0';
	switch (m->type) {
	case NC_MSG_SESSION_OPEN:
		return open_session(a, &m->u.sess, err, errlen);
	case NC_MSG_SESSION_SET: {
		struct dp_amst_sess *s = find(a, name);
		if (s == NULL) {
			snprintf(err, errlen, "no session '%s'", name);
			return -ENOENT;
		}
		uint8_t f = m->u.sess.flags;
		if ((f & NC_SESS_REQ_UNSENT) && s->role != NC_ROLE_SEND) {
			snprintf(err, errlen, "the unsent limit is the sending side's");
			return -EINVAL;
		}
		if ((f & NC_SESS_REQ_WINDOW) && s->role != NC_ROLE_RECEIVE) {
			snprintf(err, errlen, "receive windows are the receiving side's");
			return -EINVAL;
		}
		if ((f & NC_SESS_REQ_RATE) || !(f & (NC_SESS_REQ_UNSENT | NC_SESS_REQ_WINDOW))) {
			s->rate_cap = m->u.sess.rate_cap;
			if (s->conn)
				amst_conn_set_rate_cap(s->conn, s->rate_cap);
		}
		if (f & NC_SESS_REQ_UNSENT) {
			s->unsent_ns = (uint64_t)m->u.sess.unsent_ms * 1000000ull;
			if (s->conn)
				amst_conn_set_unsent(s->conn, s->unsent_ns);
		}
		if (f & NC_SESS_REQ_WINDOW) {
			s->full_window = m->u.sess.whole_window != 0;
			if (s->conn)
				amst_conn_set_full_window(s->conn, s->full_window);
		}
		return 0;
	}
	case NC_MSG_SESSION_CLOSE: {
		struct dp_amst_sess *s = find(a, name);
		if (s == NULL) {
			snprintf(err, errlen, "no session '%s'", name);
			return -ENOENT;
		}
		if ((m->u.sess.flags & NC_SESS_REQ_IF_WAITING) && s->state != NC_SESS_LISTENING) {
			snprintf(err, errlen, "session '%s' no longer waits for its INIT", name);
			return -EBUSY;
		}
		if (s->conn && amst_conn_state(s->conn) != AMST_CLOSED) {
			amst_conn_close(s->conn, AMST_CLOSE_OK, "closed by the operator",
			                dp_now_ns());
			s->free_when_closed = true;
			s->state = NC_SESS_CLOSING;
		} else {
			NC_LOG(NOTICE, "session %s removed", s->name);
			sess_free(s);
		}
		return 0;
	}
	default:
		snprintf(err, errlen, "not a session command");
		return -ENOTSUP;
	}
}

/* ---- receive ---- */

static struct dp_amst_sess *by_cid(struct dp_amst *a, uint32_t cid)
{
	for (unsigned i = 0; i < NC_MAX_SESSIONS; i++)
		if (a->sess[i].used && a->sess[i].local_cid == cid && a->sess[i].conn)
			return &a->sess[i];
	return NULL;
}

/* An INIT: a retransmission to an existing session, or a new one for the
 * waiting receive session from that peer that it names. */
static void on_init(struct dp_amst *a, const struct dp_net_rx *rx, uint64_t now)
{
	bool waiting = false;
	for (unsigned i = 0; i < NC_MAX_SESSIONS; i++) {
		struct dp_amst_sess *s = &a->sess[i];
		if (!s->used || s->role != NC_ROLE_RECEIVE || s->peer_ip != rx->src_ip)
			continue;
		if (s->conn && amst_conn_is_same_init(s->conn, rx->payload, rx->payload_len)) {
			amst_conn_input(s->conn, rx->payload, rx->payload_len, now);
			return;
		}
		waiting |= s->state == NC_SESS_LISTENING;
	}
	if (!waiting) {
		a->unknown_session++;
		return;
	}
	/* Each waiting session tries the INIT with its own name (an INIT is
	 * authenticated before its name is read; INITs are rare). */
	uint64_t wall_ms = wall_ns() / 1000000u;
	int why_not = ENOENT;
	for (unsigned i = 0; i < NC_MAX_SESSIONS; i++) {
		struct dp_amst_sess *s = &a->sess[i];
		if (!s->used || s->role != NC_ROLE_RECEIVE || s->peer_ip != rx->src_ip ||
		    s->state != NC_SESS_LISTENING)
			continue;
		struct amst_conn_cfg cfg = a->base;
		cfg.client = false;
		cfg.local_cid = s->local_cid;
		cfg.rate_cap = s->rate_cap;
		cfg.full_window = s->full_window;
		snprintf(cfg.name, sizeof(cfg.name), "%s", s->name);
		cfg.wall_ms = wall_ms;
		enum amst_drop why;
		struct amst_conn *c =
		        amst_conn_accept(&cfg, rx->payload, rx->payload_len, now, &why);
		if (c == NULL) {
			if (errno == ENOENT)
				continue; /* for another session */
			if (errno == EBADMSG)
				a->amst_drops[why]++;
			why_not = errno;
			break;
		}
		int rc = amst_init_cache_add(&a->inits, c, wall_ms);
		if (rc != 0) {
			amst_conn_destroy(c);
			why_not = -rc;
			break;
		}
		s->conn = c;
		s->peer_port = rx->src_port;
		memcpy(s->peer_mac, rx->src_mac, 6);
		s->resolved = true; /* answer where the INIT came from */
		s->host = dp_host_connect_to(a->host, c, &s->addr);
		if (s->host == NULL) {
			amst_conn_close(c, AMST_CLOSE_APP, "receiver cannot deliver", now);
			snprintf(s->error, sizeof(s->error), "cannot set up delivery");
		} else {
			dp_host_sess_set_digest(s->host, (s->flags & NC_SESS_REQ_DIGEST) != 0);
			/* The sender says whether its streams are HDE-coded; we follow. */
			if (amst_conn_peer_app_flags(c) & DP_APP_HDE) {
				if (dp_host_sess_set_codec(s->host, &a->codec) != 0) {
					amst_conn_close(
					        c, AMST_CLOSE_APP,
					        "the receiver cannot decode HDE (test streams)",
					        now);
					snprintf(s->error, sizeof(s->error),
					         "the sender codes HDE; test streams cannot");
				}
				s->flags |= NC_SESS_REQ_HDE;
			}
		}
		s->state = NC_SESS_HANDSHAKE;
		return;
	}
	switch (why_not) {
	case ENOENT:
		a->init_unmatched++;
		break;
	case ESTALE:
		a->init_stale++;
		break;
	case EALREADY:
		a->init_replayed++;
		break;
	default:
		break;
	}
	a->init_refused++;
}

unsigned dp_amst_rx(struct dp *dp, struct rte_mbuf **pkts, unsigned n, uint64_t now)
{
	struct dp_amst *a = &amst_state;
	(void)dp;
	for (unsigned i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		if (!a->enabled || m->nb_segs != 1) {
			/* A frame the port split over mbufs is larger than any
			 * AMST sends (amst.mtu fits one): counted, not parsed. */
			a->rx_chained += a->enabled;
			rte_pktmbuf_free(m);
			continue;
		}
		if (m->port != a->port_id) {
			/* AMST sends on one port only: an answer (ARP, ACCEPT)
			 * to a frame from another would leave by the wrong one,
			 * and its ARP would steer sessions there. */
			a->rx_other_port++;
			rte_pktmbuf_free(m);
			continue;
		}
		struct dp_net_rx rx;
		uint32_t cap = m->data_len + rte_pktmbuf_tailroom(m);
		enum dp_net_rx_kind k =
		        dp_net_rx(&a->net, a->arp, &a->net_st, rte_pktmbuf_mtod(m, uint8_t *),
		                  m->data_len, cap, now, &rx);
		if (k == DP_NET_RX_ARP_REPLY_READY) {
			m->data_len = (uint16_t)rx.reply_len;
			m->pkt_len = rx.reply_len;
			tx_queue(a, m);
			continue;
		}
		if (k == DP_NET_RX_AMST && rx.payload_len >= AMST_HDR_LEN) {
			uint8_t type = rx.payload[1];
			uint32_t cid = amst_get32(rx.payload + 4);
			if (type == AMST_PKT_INIT) {
				on_init(a, &rx, now);
			} else {
				struct dp_amst_sess *s = by_cid(a, cid);
				if (s != NULL)
					amst_conn_input(s->conn, rx.payload, rx.payload_len, now);
				else
					a->unknown_session++;
			}
		} else if (k == DP_NET_RX_AMST) {
			a->amst_drops[AMST_DROP_SHORT]++;
		}
		rte_pktmbuf_free(m);
	}
	return n;
}

/* ---- the service loop's share ---- */

/* HDE's adaptive choice follows each session's delivery rate (its bottleneck
 * estimate, or the operator's cap when that is lower). */
static void feed_link_rates(struct dp_amst *a)
{
	for (unsigned i = 0; i < NC_MAX_SESSIONS; i++) {
		struct dp_amst_sess *s = &a->sess[i];
		if (!s->used || s->conn == NULL || s->host == NULL)
			continue;
		struct amst_conn_stats st;
		amst_conn_get_stats(s->conn, &st);
		double rate = (double)st.btl_bw;
		if (s->rate_cap && (double)s->rate_cap < rate)
			rate = (double)s->rate_cap;
		dp_host_sess_set_link_rate(s->host, rate);
	}
}

/* amst.unused_close_s: a sending session with no host connection open and
 * nothing unacknowledged for that long is ended, with an error on both
 * sides (its CLOSE ends the peer's). Its control plane would have closed
 * it: one that died (or lost the reply) leaves a session that keepalives
 * would keep up for good, holding a slot here and at the peer. The sending
 * side decides: its host connections say whether the session is in use (a
 * receiving side learns of a stream only from its first frame). A
 * receiving session still waiting for its INIT has no peer to tell: it is
 * removed. */
static void end_unused(struct dp_amst *a, uint64_t now)
{
	for (unsigned i = 0; i < NC_MAX_SESSIONS; i++) {
		struct dp_amst_sess *s = &a->sess[i];
		if (!s->used || s->closed_ns != 0 || s->state == NC_SESS_CLOSING ||
		    (s->conn != NULL && amst_conn_state(s->conn) == AMST_CLOSED) ||
		    (s->role == NC_ROLE_RECEIVE && s->conn != NULL))
			continue;
		bool busy = false;
		if (s->conn != NULL) {
			struct dp_host_sess_stats st = {.streams_open = 0};
			if (s->host)
				dp_host_sess_get_stats(s->host, &st);
			busy = st.streams_open > 0 || !amst_conn_all_acked(s->conn);
		}
		if (busy || now < s->busy_ns) {
			s->busy_ns = now;
			continue;
		}
		if (now - s->busy_ns < a->unused_ns)
			continue;
		unsigned secs = (unsigned)(a->unused_ns / 1000000000ull);
		if (s->conn == NULL) {
			NC_LOG(NOTICE, "session %s removed: no INIT in %u s (amst.unused_close_s)",
			       s->name, secs);
			sess_free(s);
			continue;
		}
		char why[64];
		snprintf(why, sizeof(why), "unused for %u s (amst.unused_close_s)", secs);
		amst_conn_close(s->conn, AMST_CLOSE_APP, why, now);
		s->state = NC_SESS_CLOSING;
	}
}

/* A resolved session follows its next hop's ARP entry, once a second: a
 * peer or gateway whose MAC changes (failover, a new NIC) is followed, and
 * an entry near its expiry is asked for again while it still works. */
static void follow_next_hops(struct dp *dp, struct dp_amst *a, uint64_t now)
{
	for (unsigned i = 0; i < NC_MAX_SESSIONS; i++) {
		struct dp_amst_sess *s = &a->sess[i];
		if (!s->used || s->conn == NULL || !s->resolved || s->closed_ns != 0)
			continue;
		uint8_t mac[6];
		if (dp_arp_lookup(a->arp, s->next_hop, now, mac) == 0 &&
		    memcmp(mac, s->peer_mac, 6) != 0) {
			NC_LOG(NOTICE,
			       "session %s: next hop now at %02x:%02x:%02x:%02x:%02x:%02x (ARP)",
			       s->name, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
			memcpy(s->peer_mac, mac, 6);
		}
		if (dp_arp_should_request(a->arp, s->next_hop, now))
			send_arp_request(dp, a, s->next_hop);
	}
}

unsigned dp_amst_run(struct dp *dp, uint64_t now)
{
	struct dp_amst *a = &amst_state;
	if (!a->enabled)
		return 0;
	unsigned work = 0;
	tx_flush(a);
	/* Socket readiness: every loop when idle, at most every HOST_POLL_NS while
	 * busy (the streams with data are pumped below anyway; an epoll_wait per
	 * loop cost 6-8% of a busy worker). */
	if (a->idle_loops > 0 || now - a->host_poll_ns >= HOST_POLL_NS) {
		a->host_poll_ns = now;
		long moved = dp_host_poll(a->host, 0);
		if (moved > 0)
			work += (unsigned)(moved > 1000 ? 1000 : moved);
	}
	if (now - a->rates_ns >= RATE_FEED_NS) {
		a->rates_ns = now;
		feed_link_rates(a);
	}
	if (now >= a->sess_check_ns) {
		a->sess_check_ns = now + SESS_CHECK_NS;
		follow_next_hops(dp, a, now);
		if (a->unused_ns)
			end_unused(a, now);
	}
	a->rr = (a->rr + 1) % NC_MAX_SESSIONS;
	for (unsigned k = 0; k < NC_MAX_SESSIONS; k++) {
		struct dp_amst_sess *s = &a->sess[(a->rr + k) % NC_MAX_SESSIONS];
		if (!s->used || s->conn == NULL)
			continue;
		amst_conn_tick(s->conn, now); /* even when it cannot send */
		sess_events(s);
		if (s->host) {
			long p = dp_host_pump(s->host);
			if (p > 0)
				work++;
		}
		if (a->n_backlog == 0 || a->n_backlog < TX_BACKLOG / 2)
			work += sess_output(dp, a, s, now);
		sess_events(s);
		if (s->state == NC_SESS_RESOLVING && s->resolved)
			s->state = NC_SESS_HANDSHAKE;
		if (amst_conn_state(s->conn) == AMST_CLOSED) {
			if (s->closed_ns == 0)
				s->closed_ns = now;
			/* Kept for its last stats until the control plane removes it;
			 * one whose control plane never does (it died, or lost the
			 * reply) would hold its slot for good. */
			bool stale =
			        a->linger_ns && now >= s->closed_ns &&
			        now - s->closed_ns >= a->linger_ns; /* closed_ns may be past now */
			if (s->free_when_closed || stale) {
				NC_LOG(NOTICE, "session %s removed%s", s->name,
				       stale && !s->free_when_closed
				               ? " (closed, and not removed within "
				                 "amst.closed_linger_s)"
				               : "");
				sess_free(s);
			}
		}
	}
	tx_flush(a);
	a->idle_loops = work ? 0 : a->idle_loops + 1;
	return work;
}

uint64_t dp_amst_next_ns(struct dp *dp, uint64_t now)
{
	struct dp_amst *a = &amst_state;
	(void)dp;
	if (a->n_backlog) {
		/* The port is full: try again shortly, then, while it stays
		 * so (a memif with no peer), less and less often, up to 1 ms. */
		uint64_t wait = 20000;
		if (a->tx_stall_ns && now > a->tx_stall_ns && (now - a->tx_stall_ns) / 4 > wait)
			wait = RTE_MIN((now - a->tx_stall_ns) / 4, 1000000ull);
		return now + wait;
	}
	uint64_t t = a->host ? dp_host_next_ns(a->host) : UINT64_MAX;
	for (unsigned i = 0; i < NC_MAX_SESSIONS; i++) {
		const struct dp_amst_sess *s = &a->sess[i];
		if (!s->used || s->conn == NULL)
			continue;
		uint64_t n = amst_conn_next_time(s->conn);
		if (s->closed_ns && a->linger_ns && n > s->closed_ns + a->linger_ns)
			n = s->closed_ns + a->linger_ns;
		if (!s->resolved)
			n = now + 10000000ull; /* ARP: look again in 10 ms */
		/* A session that is moving data must not wait behind long naps:
		 * packets would sit in the port's ring and the RTT would grow. */
		if (now - amst_conn_last_activity(s->conn) < ACTIVE_NS && n > now + ACTIVE_NAP_NS)
			n = now + ACTIVE_NAP_NS;
		if (n < t)
			t = n;
	}
	return t;
}

int dp_amst_wait_fd(struct dp *dp)
{
	(void)dp;
	return amst_state.enabled ? dp_host_fd(amst_state.host) : -1;
}

/* The next contents of a used session's slot, from its last ones in @p o. */
static void publish_session(struct nc_session_shm *o, const struct dp_amst_sess *s)
{
	if (o->state == NC_SESS_FREE || o->opened_ns != s->opened_ns ||
	    strncmp(o->name, s->name, sizeof(o->name)) != 0)
		/* a new session in the slot: none of the last one's counters (seq stays) */
		memset(o->name, 0, sizeof(*o) - offsetof(struct nc_session_shm, name));
	snprintf(o->name, sizeof(o->name), "%s", s->name);
	snprintf(o->addr, sizeof(o->addr), "%s", s->addr_text);
	snprintf(o->error, sizeof(o->error), "%s", s->error);
	o->role = s->role;
	o->peer_ip = s->peer_ip;
	o->opened_ns = s->opened_ns;
	o->rate_cap = s->rate_cap;
	o->flags = s->flags |
	           (s->role == NC_ROLE_RECEIVE && s->full_window ? NC_SESS_F_WHOLE_WINDOW : 0);
	o->unsent_ms = (uint32_t)(s->unsent_ns / 1000000u);
	o->state = s->state;
	if (s->conn == NULL) {
		o->n_streams = 0;
		return;
	}
	struct amst_conn_stats st;
	amst_conn_get_stats(s->conn, &st);
	o->pkts_sent = st.pkts_sent;
	o->pkts_recv = st.pkts_recv;
	o->bytes_sent = st.bytes_sent;
	o->bytes_recv = st.bytes_recv;
	o->stream_bytes_sent = st.stream_bytes_sent;
	o->stream_bytes_recv = st.stream_bytes_recv;
	o->retrans_bytes = st.retrans_bytes;
	o->pkts_lost = st.pkts_lost;
	o->srtt_ns = st.srtt_ns;
	o->min_rtt_ns = st.min_rtt_ns;
	o->pacing_rate = st.pacing_rate;
	o->btl_bw = st.btl_bw;
	o->cwnd = st.cwnd;
	o->bytes_in_flight = st.bytes_in_flight;
	o->buffer_bytes = st.buffer_bytes;
	o->unacked_bytes = st.unacked_bytes;
	for (unsigned d = 0; d < AMST_DROP_COUNT && d < NC_SESSION_DROP_REASONS; d++)
		o->drops[d] = st.drops[d];
	if (s->host) {
		struct dp_host_sess_stats hst;
		dp_host_sess_get_stats(s->host, &hst);
		o->connect_failed = hst.connect_failed;
		o->host_errors = hst.host_errors;
		o->host_dropped = hst.dropped;
		publish_hde(&o->hde, s->host, s->role == NC_ROLE_SEND);
	}
	struct dp_host_stream_stats hs[NC_MAX_SESSION_STREAMS];
	unsigned n = s->host ? dp_host_sess_streams(s->host, hs, NC_MAX_SESSION_STREAMS) : 0;
	o->n_streams = n;
	for (unsigned k = 0; k < n; k++) {
		struct amst_stream_info info = {0};
		amst_stream_info(s->conn, hs[k].stream, &info);
		o->streams[k].id = hs[k].stream;
		o->streams[k].to_peer = hs[k].to_amst;
		o->streams[k].from_peer = hs[k].from_amst;
		o->streams[k].retrans = info.retrans;
		o->streams[k].flags = NC_STREAM_F_OPEN |
		                      (hs[k].host_eof ? NC_STREAM_F_HOST_EOF : 0) |
		                      (hs[k].amst_fin ? NC_STREAM_F_PEER_FIN : 0) |
		                      (hs[k].reset ? NC_STREAM_F_RESET : 0) |
		                      (hs[k].digest_done ? NC_STREAM_F_DIGEST : 0);
		if (hs[k].digest_done)
			memcpy(o->streams[k].digest, hs[k].digest, sizeof(o->streams[k].digest));
	}
}

void dp_amst_publish(struct dp *dp)
{
	struct dp_amst *a = &amst_state;
	if (dp->stats == NULL)
		return;
	for (unsigned i = 0; i < NC_MAX_SESSIONS; i++) {
		const struct dp_amst_sess *s = &a->sess[i];
		struct nc_session_shm *o = &dp->stats->sessions[i];
		if (!s->used && o->state == NC_SESS_FREE)
			continue;
		/* Gathered aside, then copied in: the slot is odd for a copy's time, not
		 * for the calls that gather it. */
		struct nc_session_shm next = *o;
		if (s->used)
			publish_session(&next, s);
		else
			next.state = NC_SESS_FREE;
		nc_session_shm_write_begin(o);
		memcpy(o->name, next.name, sizeof(*o) - offsetof(struct nc_session_shm, name));
		nc_session_shm_write_end(o);
	}
}

json_t *dp_amst_json(const struct dp *dp)
{
	(void)dp;
	const struct dp_amst *a = &amst_state;
	json_t *o = json_pack("{s:b}", "enabled", a->enabled);
	if (!a->enabled)
		return o;
	char ip[DP_NET_IP_STRLEN];
	dp_net_ip_str(a->net.ip, ip);
	json_object_set_new(o, "ip", json_string(ip));
	json_object_set_new(o, "udp_port", json_integer(a->net.udp_port));
	json_t *drops = json_object();
	for (unsigned d = 0; d < DP_NET_DROP_COUNT; d++)
		json_object_set_new(drops, dp_net_drop_names[d],
		                    json_integer((json_int_t)a->net_st.drops[d]));
	for (unsigned d = 0; d < AMST_DROP_COUNT; d++)
		if (a->amst_drops[d])
			json_object_set_new(drops, amst_drop_names[d],
			                    json_integer((json_int_t)a->amst_drops[d]));
	json_object_set_new(drops, "unknown_session", json_integer((json_int_t)a->unknown_session));
	json_object_set_new(drops, "init_unmatched", json_integer((json_int_t)a->init_unmatched));
	json_object_set_new(drops, "init_stale", json_integer((json_int_t)a->init_stale));
	json_object_set_new(drops, "init_replayed", json_integer((json_int_t)a->init_replayed));
	json_object_set_new(drops, "no_mbuf", json_integer((json_int_t)a->no_mbuf));
	json_object_set_new(drops, "rx_chained", json_integer((json_int_t)a->rx_chained));
	json_object_set_new(drops, "rx_other_port", json_integer((json_int_t)a->rx_other_port));
	json_object_set_new(drops, "init_refused", json_integer((json_int_t)a->init_refused));
	json_object_set_new(drops, "tx_dropped", json_integer((json_int_t)a->tx_dropped));
	json_object_set_new(o, "drops", drops);
	json_object_set_new(o, "tx_from_buffers", json_boolean(a->tx_gather));
	json_object_set_new(o, "tx_linearized", json_integer((json_int_t)a->tx_linearized));
	json_object_set_new(o, "rx_amst", json_integer((json_int_t)a->net_st.rx_amst));
	json_object_set_new(o, "arp_requests_sent",
	                    json_integer((json_int_t)a->net_st.tx_arp_request));
	return o;
}

/* ---- component ---- */

/* Can unsealed packets go out as chains into the stream buffers? Only where
 * the port takes chains and copies every segment before rte_eth_tx_burst()
 * returns (memif in copy mode, af_packet): a port that keeps the mbufs (a
 * NIC's DMA, net_ring, memif zero-copy) could send bytes the application
 * has since replaced. */
static bool tx_gather_ok(const struct dp *dp, uint16_t port_id)
{
	struct rte_eth_dev_info info;
	if (rte_eth_dev_info_get(port_id, &info) != 0 ||
	    !(info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS))
		return false;
	const char *devargs = dp->ports[0].spec.devargs;
	if (strcmp(info.driver_name, "net_memif") == 0)
		return strstr(devargs, "zero-copy=yes") == NULL;
	return strcmp(info.driver_name, "net_af_packet") == 0;
}

static void amst_shutdown(void *arg);

static int amst_init(void *arg, struct nc_init_ctx *ctx, char *err, size_t errlen)
{
	(void)ctx;
	struct dp *dp = arg;
	struct dp_amst *a = &amst_state;
	memset(a, 0, sizeof(*a));
	const char *ipstr = nc_config_get_str(dp->cfg, "amst.ip");
	const char *psk = nc_config_get_str(dp->cfg, "amst.psk");
	if (ipstr[0] == '\0') {
		NC_LOG(INFO, "amst.ip not set: AMST disabled");
		return 0;
	}
	if (dp->n_ports == 0) {
		snprintf(err, errlen, "AMST needs a port (dataplane.ports)");
		return -ENODEV;
	}
	if (strlen(psk) < 16) {
		snprintf(err, errlen, "amst.psk must have 16-64 characters");
		return -EINVAL;
	}
	char why[128];
	if (dp_net_parse_cidr(ipstr, &a->net.ip, &a->net.prefix_len, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "amst.ip: %s", why);
		return -EINVAL;
	}
	const char *gw = nc_config_get_str(dp->cfg, "amst.gateway");
	if (gw[0] && dp_net_parse_ip(gw, &a->net.gateway, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "amst.gateway: %s", why);
		return -EINVAL;
	}
	a->port_id = dp->ports[0].port_id;
	struct rte_ether_addr mac;
	if (rte_eth_macaddr_get(a->port_id, &mac) != 0) {
		snprintf(err, errlen, "cannot read the MAC of port %u", a->port_id);
		return -EIO;
	}
	memcpy(a->net.mac, mac.addr_bytes, 6);
	a->net.udp_port = (uint16_t)nc_config_get_int(dp->cfg, "amst.udp_port");
	a->net.dscp = (uint8_t)nc_config_get_int(dp->cfg, "amst.dscp");
	a->net.mtu = (uint16_t)nc_config_get_int(dp->cfg, "amst.mtu");
	if (dp_net_cfg_check(&a->net, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "amst: %s", why);
		return -EINVAL;
	}
	snprintf(a->psk, sizeof(a->psk), "%s", psk);
	uint64_t mem = (uint64_t)nc_config_get_int(dp->cfg, "amst.session_memory_mb") << 20;
	unsigned streams = (unsigned)nc_config_get_int(dp->cfg, "amst.max_streams");
	uint64_t per = mem / (2ull * streams);
	uint32_t buf = 1u << 16;
	while ((uint64_t)buf * 2 <= per && buf < (1u << 30))
		buf *= 2;
	a->base = (struct amst_conn_cfg){
	        .psk = (const uint8_t *)a->psk,
	        .psk_len = strlen(a->psk),
	        .seal = nc_config_get_bool(dp->cfg, "amst.seal"),
	        .max_payload = a->net.mtu - 28u,
	        .stream_buf = buf,
	        .session_window = (uint64_t)buf * streams,
	        .max_streams = (uint16_t)streams,
	        .idle_timeout_ms = (uint32_t)nc_config_get_int(dp->cfg, "amst.idle_timeout_ms"),
	        .unsent_ns = (uint64_t)nc_config_get_int(dp->cfg, "amst.unsent_ms") * 1000000ull,
	        .unsent_max = (uint64_t)nc_config_get_int(dp->cfg, "amst.unsent_max_kb") << 10,
	        .full_window = !nc_config_get_bool(dp->cfg, "amst.follow_reader"),
	        .handshake_timeout_ms = 10000,
	        .seed = dp_now_ns(),
	};
	enum hde_mode hmode = HDE_MODE_ADAPTIVE;
	enum hde_setting hset = HDE_SET_NONE;
	if (hde_parse_setting(nc_config_get_str(dp->cfg, "hde.mode"), &hmode, &hset) != 0) {
		snprintf(err, errlen, "hde.mode: '%s' is not an HDE setting",
		         nc_config_get_str(dp->cfg, "hde.mode"));
		return -EINVAL;
	}
	a->linger_ns = (uint64_t)nc_config_get_int(dp->cfg, "amst.closed_linger_s") * 1000000000ull;
	a->unused_ns = (uint64_t)nc_config_get_int(dp->cfg, "amst.unused_close_s") * 1000000000ull;
	a->codec = (struct dp_host_codec){
	        .on = true,
	        .p = {.mode = hmode,
	              .setting = hset,
	              .batch_bytes = (size_t)nc_config_get_int(dp->cfg, "hde.batch_kb") << 10,
	              .max_batch_ns =
	                      (uint64_t)nc_config_get_int(dp->cfg, "hde.max_stall_us") * 1000},
	        .cache_bytes = (size_t)nc_config_get_int(dp->cfg, "hde.cache_mb") << 20,
	        .streams = 1,
	};
	if (a->codec.p.batch_bytes != 0 && a->codec.p.batch_bytes < (16u << 10)) {
		snprintf(err, errlen, "hde.batch_kb: %zu is below 16",
		         a->codec.p.batch_bytes >> 10);
		return -EINVAL;
	}
	a->arp = dp_arp_create(64);
	a->host = dp_host_create();
	/* INITs are opened with it before a session's conn is made for them. */
	a->base.hs_key = amst_handshake_key(a->base.psk, a->base.psk_len);
	if (a->arp == NULL || a->host == NULL || a->base.hs_key == NULL) {
		/* shutdown runs only for components that came up */
		amst_shutdown(a);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	a->enabled = true;
	a->tx_gather = !a->base.seal && tx_gather_ok(dp, a->port_id);
	a->ext_info = (struct rte_mbuf_ext_shared_info){.free_cb = ext_free};
	rte_mbuf_ext_refcnt_set(&a->ext_info, 1); /* ours: never reaches 0 */
	NC_LOG(NOTICE, "AMST on port %u, %s udp %u, mtu %u, %s, stream buffers %u KiB x %u%s",
	       a->port_id, ipstr, a->net.udp_port, a->net.mtu,
	       a->base.seal ? "sealed" : "NOT sealed", buf >> 10, streams,
	       a->tx_gather ? ", stream bytes sent from the buffers (no copy)" : "");
	return 0;
}

static void amst_shutdown(void *arg)
{
	(void)arg;
	struct dp_amst *a = &amst_state;
	for (unsigned i = 0; i < NC_MAX_SESSIONS; i++)
		if (a->sess[i].used)
			sess_free(&a->sess[i]);
	for (unsigned i = 0; i < a->n_backlog; i++)
		rte_pktmbuf_free(a->backlog[i]);
	a->n_backlog = 0;
	dp_host_destroy(a->host);
	dp_arp_destroy(a->arp);
	amst_aead_destroy(a->base.hs_key);
	a->base.hs_key = NULL;
	a->host = NULL;
	a->arp = NULL;
	a->enabled = false;
	memset(a->psk, 0, sizeof(a->psk));
}

static enum nc_health amst_health(void *arg, char *msg, size_t msglen)
{
	(void)arg;
	const struct dp_amst *a = &amst_state;
	unsigned open = 0, failed = 0;
	if (!a->enabled) {
		snprintf(msg, msglen, "disabled (amst.ip not set)");
		return NC_HEALTH_OK;
	}
	for (unsigned i = 0; i < NC_MAX_SESSIONS; i++) {
		if (!a->sess[i].used)
			continue;
		open++;
		failed += a->sess[i].error[0] != '\0';
	}
	snprintf(msg, msglen, "%u sessions, %u ended with an error", open, failed);
	return NC_HEALTH_OK;
}

int dp_amst_component(struct dp *dp)
{
	static const char *const deps[] = {"ports", "shm", NULL};
	const struct nc_component c = {
	        .name = "amst",
	        .phase = NC_PHASE_DWCP,
	        .deps = deps,
	        .init = amst_init,
	        .health = amst_health,
	        .shutdown = amst_shutdown,
	        .arg = dp,
	        .timeout_ms = 5000,
	};
	return nc_app_add(dp->app, &c);
}
