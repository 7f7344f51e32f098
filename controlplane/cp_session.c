/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cp_session: the AMST session methods of the control socket: session.open,
 * session.list, session.stats, session.set and session.close. Commands go to
 * the dataplane through the command ring; what is read comes from the
 * sessions' counters in the stats memzone.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define NC_LOG_MODULE "session"
#include "cp.h"
#include "nc_log.h"

static const char *const state_names[] = {
        [NC_SESS_FREE] = "free",
        [NC_SESS_RESOLVING] = "resolving",
        [NC_SESS_HANDSHAKE] = "handshake",
        [NC_SESS_LISTENING] = "listening",
        [NC_SESS_ESTABLISHED] = "established",
        [NC_SESS_CLOSING] = "closing",
        [NC_SESS_CLOSED] = "closed",
};

static const char *state_name(uint32_t s)
{
	return s < sizeof(state_names) / sizeof(state_names[0]) && state_names[s] ? state_names[s]
	                                                                          : "?";
}

static const char *drop_names[NC_SESSION_DROP_REASONS] = {
        "short",  "bad_header", "unknown_session", "auth_failed",  "bad_crc",       "unsealed",
        "replay", "malformed",  "flow_control",    "stream_limit", "bad_handshake", "wrong_state",
};

static int timeout(const struct cp *cp)
{
	return (int)nc_config_get_int(cp->cfg, "controlplane.dp_timeout_ms");
}

/* Send a session command and turn the dataplane's answer into ours. */
static int command(struct cp *cp, uint32_t type, const struct nc_session_req *req, char *err,
                   size_t errlen)
{
	if (cp->link == NULL) {
		snprintf(err, errlen, "not attached to the dataplane");
		return -ENOTCONN;
	}
	struct nc_msg m = {.type = type}, rep;
	m.u.sess = *req;
	int rc = cp_dplink_request(cp->link, &m, &rep, timeout(cp));
	if (rc != 0) {
		snprintf(err, errlen, "dataplane did not answer: %s", strerror(-rc));
		return rc;
	}
	if (rep.status != 0) {
		rep.u.text[sizeof(rep.u.text) - 1] = '\0';
		snprintf(err, errlen, "%s", rep.u.text[0] ? rep.u.text : strerror(-rep.status));
		return rep.status == -EINVAL ? -EINVAL : rep.status;
	}
	return 0;
}

static int name_param(const json_t *params, struct nc_session_req *req, char *err, size_t errlen)
{
	const char *name = json_string_value(json_object_get(params, "name"));
	size_t n = strlen(name);
	if (n == 0 || n >= sizeof(req->name)) {
		snprintf(err, errlen, "name must have 1-%zu characters", sizeof(req->name) - 1);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.')) {
			snprintf(err, errlen, "name may hold letters, digits, '-', '_' and '.'");
			return -EINVAL;
		}
	}
	memcpy(req->name, name, n + 1);
	return 0;
}

static int rate_param(const json_t *params, uint64_t *bytes_per_s, char *err, size_t errlen)
{
	json_t *r = json_object_get(params, "rate_mbps");
	*bytes_per_s = 0;
	if (r == NULL)
		return 0;
	double mbps = json_number_value(r);
	if (mbps < 0 || mbps > 1e6) {
		snprintf(err, errlen, "rate_mbps must be 0 (no cap) to 1000000");
		return -EINVAL;
	}
	*bytes_per_s = (uint64_t)(mbps * 1e6 / 8);
	return 0;
}

/* "follow_reader" if given (true or false): the receiving side's windows. */
static int window_param(const json_t *params, struct nc_session_req *req, char *err, size_t errlen)
{
	json_t *f = json_object_get(params, "follow_reader");
	if (f == NULL)
		return 0;
	if (!json_is_boolean(f)) {
		snprintf(err, errlen, "follow_reader must be true or false");
		return -EINVAL;
	}
	req->flags |= NC_SESS_REQ_WINDOW;
	req->whole_window = json_is_false(f);
	return 0;
}

/* "unsent_ms" if given: the sending side's unsent limit, 0 (none) to 10000 ms. */
static int unsent_param(const json_t *params, struct nc_session_req *req, char *err, size_t errlen)
{
	json_t *u = json_object_get(params, "unsent_ms");
	if (u == NULL)
		return 0;
	json_int_t ms = json_integer_value(u);
	if (!json_is_integer(u) || ms < 0 || ms > 10000) {
		snprintf(err, errlen, "unsent_ms must be 0 (no limit) to 10000");
		return -EINVAL;
	}
	req->unsent_ms = (uint16_t)ms;
	req->flags |= NC_SESS_REQ_UNSENT;
	return 0;
}

static int m_open(const json_t *params, json_t **result, void *arg, char *err, size_t errlen)
{
	struct cp *cp = arg;
	struct nc_session_req req;
	memset(&req, 0, sizeof(req));
	int rc = name_param(params, &req, err, errlen);
	if (rc)
		return rc;
	const char *role = json_string_value(json_object_get(params, "role"));
	const char *listen = json_string_value(json_object_get(params, "listen"));
	const char *connect = json_string_value(json_object_get(params, "connect"));
	const char *addr;
	if (strcmp(role, "send") == 0) {
		req.role = NC_ROLE_SEND;
		addr = listen;
		if (addr == NULL || connect != NULL) {
			snprintf(err, errlen,
			         "a send session takes 'listen' (where QEMU connects)");
			return -EINVAL;
		}
	} else if (strcmp(role, "receive") == 0) {
		req.role = NC_ROLE_RECEIVE;
		addr = connect;
		if (addr == NULL || listen != NULL) {
			snprintf(err, errlen,
			         "a receive session takes 'connect' (where the destination "
			         "listens)");
			return -EINVAL;
		}
	} else {
		snprintf(err, errlen, "role must be 'send' or 'receive', got '%.32s'", role);
		return -EINVAL;
	}
	if (strlen(addr) >= sizeof(req.addr)) {
		snprintf(err, errlen, "address longer than %zu characters", sizeof(req.addr) - 1);
		return -EINVAL;
	}
	snprintf(req.addr, sizeof(req.addr), "%s", addr);
	const char *peer = json_string_value(json_object_get(params, "peer"));
	struct in_addr in;
	if (inet_pton(AF_INET, peer, &in) != 1) {
		snprintf(err, errlen, "peer '%.64s' is not an IPv4 address", peer);
		return -EINVAL;
	}
	req.peer_ip = ntohl(in.s_addr);
	json_t *port = json_object_get(params, "port");
	if (port != NULL) {
		json_int_t p = json_integer_value(port);
		if (p < 1 || p > 65535) {
			snprintf(err, errlen, "port must be 1-65535");
			return -EINVAL;
		}
		req.peer_port = (uint16_t)p;
	}
	rc = rate_param(params, &req.rate_cap, err, errlen);
	if (rc == 0)
		rc = unsent_param(params, &req, err, errlen);
	if (rc == 0)
		rc = window_param(params, &req, err, errlen);
	if (rc)
		return rc;
	if ((req.flags & NC_SESS_REQ_UNSENT) && req.role != NC_ROLE_SEND) {
		snprintf(err, errlen, "unsent_ms is the sending side's");
		return -EINVAL;
	}
	if ((req.flags & NC_SESS_REQ_WINDOW) && req.role != NC_ROLE_RECEIVE) {
		snprintf(err, errlen, "follow_reader is the receiving side's");
		return -EINVAL;
	}
	if (json_is_true(json_object_get(params, "digest")))
		req.flags |= NC_SESS_REQ_DIGEST;
	const char *codec = json_string_value(json_object_get(params, "codec"));
	if (codec != NULL && strcmp(codec, "hde") == 0) {
		if (req.role != NC_ROLE_SEND) {
			snprintf(err, errlen,
			         "codec is the sending side's choice (the receiver follows it)");
			return -EINVAL;
		}
		req.flags |= NC_SESS_REQ_HDE;
	} else if (codec != NULL && strcmp(codec, "none") != 0) {
		snprintf(err, errlen, "codec must be 'hde' or 'none', got '%.32s'", codec);
		return -EINVAL;
	}
	json_t *streams = json_object_get(params, "streams");
	if (streams != NULL) {
		json_int_t n = json_integer_value(streams);
		if (n < 1 || n > NC_MAX_SESSION_STREAMS) {
			snprintf(err, errlen, "streams must be 1-%d", NC_MAX_SESSION_STREAMS);
			return -EINVAL;
		}
		req.streams = (uint8_t)n;
	}
	rc = command(cp, NC_MSG_SESSION_OPEN, &req, err, errlen);
	if (rc)
		return rc;
	NC_LOG(NOTICE, "session %s opened (%s, peer %s, %s)", req.name, role, peer, addr);
	*result = json_pack("{s:s, s:s, s:s, s:s}", "name", req.name, "role", role, "peer", peer,
	                    req.role == NC_ROLE_SEND ? "listen" : "connect", addr);
	return 0;
}

/* A whole copy of the dataplane's slot i (never read in place: the dataplane
 * rewrites it as we read), or -EBUSY. */
static int snapshot(const struct nc_stats_shm *st, unsigned i, struct nc_session_shm *out,
                    char *err, size_t errlen)
{
	if (nc_session_shm_read(&st->sessions[i], out))
		return 0;
	snprintf(err, errlen,
	         "the dataplane's stats slot %u stays half written (did the dataplane stop in "
	         "the middle of a write?)",
	         i);
	return -EBUSY;
}

/* Copy the session called name into *out: 0, or -EINVAL if there is none. */
static int find(struct cp *cp, const char *name, struct nc_session_shm *out, char *err,
                size_t errlen)
{
	const struct nc_stats_shm *st = cp->link ? cp_dplink_stats(cp->link) : NULL;
	for (unsigned i = 0; st && i < NC_MAX_SESSIONS; i++) {
		int rc = snapshot(st, i, out, err, errlen);
		if (rc)
			return rc;
		if (out->state != NC_SESS_FREE &&
		    strncmp(out->name, name, NC_SESSION_NAME_LEN) == 0)
			return 0;
	}
	snprintf(err, errlen, "no session '%.32s'", name);
	return -EINVAL;
}

static json_t *summary(const struct nc_session_shm *s)
{
	char ip[INET_ADDRSTRLEN];
	struct in_addr in = {.s_addr = htonl(s->peer_ip)};
	inet_ntop(AF_INET, &in, ip, sizeof(ip));
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:f, s:f, s:s}", "name", s->name,
	                 "role", s->role == NC_ROLE_SEND ? "send" : "receive", "state",
	                 state_name(s->state), "peer", ip, "address", s->addr, "streams",
	                 (int)s->n_streams, "stream_bytes_sent", (json_int_t)s->stream_bytes_sent,
	                 "stream_bytes_recv", (json_int_t)s->stream_bytes_recv, "pacing_mbps",
	                 (double)s->pacing_rate * 8 / 1e6, "srtt_ms", (double)s->srtt_ns / 1e6,
	                 "error", s->error);
}

static int m_list(const json_t *params, json_t **result, void *arg, char *err, size_t errlen)
{
	(void)params;
	struct cp *cp = arg;
	const struct nc_stats_shm *st = cp->link ? cp_dplink_stats(cp->link) : NULL;
	struct nc_session_shm s;
	json_t *a = json_array();
	for (unsigned i = 0; st && i < NC_MAX_SESSIONS; i++) {
		int rc = snapshot(st, i, &s, err, errlen);
		if (rc) {
			json_decref(a);
			return rc;
		}
		if (s.state != NC_SESS_FREE)
			json_array_append_new(a, summary(&s));
	}
	*result = json_pack("{s:o}", "sessions", a);
	return 0;
}

static json_t *hde_json(const struct nc_hde_shm *h)
{
	static const char *const tiers[NC_HDE_TIERS] = {"zero", "dup", "delta", "new", "literal"};
	static const char *const settings[NC_HDE_SETTINGS] = {
	        "none", "zstd-fast", "zstd1", "igzip0", "igzip1", "zstd3", "zstd9", "zstd19"};
	json_t *t = json_object(), *f = json_object();
	for (unsigned i = 0; i < NC_HDE_TIERS; i++)
		json_object_set_new(t, tiers[i],
		                    json_pack("{s:I, s:I}", "pages", (json_int_t)h->tier_pages[i],
		                              "bytes", (json_int_t)h->tier_bytes[i]));
	for (unsigned i = 0; i < NC_HDE_SETTINGS; i++)
		if (h->frames_by_setting[i])
			json_object_set_new(f, settings[i],
			                    json_integer((json_int_t)h->frames_by_setting[i]));
	double ratio = h->frame_bytes ? (double)h->stream_bytes / (double)h->frame_bytes : 0;
	double secs = (double)h->ns_busy / 1e9;
	return json_pack(
	        "{s:I, s:I, s:f, s:I, s:f, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	        "s:I}",
	        "stream_bytes", (json_int_t)h->stream_bytes, "frame_bytes",
	        (json_int_t)h->frame_bytes, "ratio", ratio, "frames", (json_int_t)h->frames,
	        "mbps_per_core", secs > 0 ? (double)h->stream_bytes / secs / 1e6 : 0.0, "tiers", t,
	        "frames_by_setting", f, "cache_bytes", (json_int_t)h->cache_bytes, "cache_peak",
	        (json_int_t)h->cache_peak, "cache_limit", (json_int_t)h->cache_limit, "mem_peak",
	        (json_int_t)h->mem_peak, "recognised_pages", (json_int_t)h->rec_pages,
	        "recogniser_lost", (json_int_t)h->rec_lost, "errors", (json_int_t)h->errors,
	        "streams", (json_int_t)h->streams);
}

static int m_stats(const json_t *params, json_t **result, void *arg, char *err, size_t errlen)
{
	struct cp *cp = arg;
	const char *name = json_string_value(json_object_get(params, "name"));
	struct nc_session_shm copy;
	int rc = find(cp, name, &copy, err, errlen);
	if (rc)
		return rc;
	const struct nc_session_shm *s = &copy;
	json_t *o = summary(s);
	json_object_set_new(o, "packets_sent", json_integer((json_int_t)s->pkts_sent));
	json_object_set_new(o, "packets_recv", json_integer((json_int_t)s->pkts_recv));
	json_object_set_new(o, "bytes_sent", json_integer((json_int_t)s->bytes_sent));
	json_object_set_new(o, "bytes_recv", json_integer((json_int_t)s->bytes_recv));
	json_object_set_new(o, "retrans_bytes", json_integer((json_int_t)s->retrans_bytes));
	json_object_set_new(o, "packets_lost", json_integer((json_int_t)s->pkts_lost));
	json_object_set_new(o, "min_rtt_ms", json_real((double)s->min_rtt_ns / 1e6));
	json_object_set_new(o, "bottleneck_mbps", json_real((double)s->btl_bw * 8 / 1e6));
	json_object_set_new(o, "window_bytes", json_integer((json_int_t)s->cwnd));
	json_object_set_new(o, "in_flight_bytes", json_integer((json_int_t)s->bytes_in_flight));
	json_object_set_new(o, "buffer_bytes", json_integer((json_int_t)s->buffer_bytes));
	json_object_set_new(o, "unacked_bytes", json_integer((json_int_t)s->unacked_bytes));
	json_object_set_new(o, "unsent_ms", json_integer((json_int_t)s->unsent_ms));
	if (s->role == NC_ROLE_RECEIVE)
		json_object_set_new(o, "follow_reader",
		                    json_boolean((s->flags & NC_SESS_F_WHOLE_WINDOW) == 0));
	json_object_set_new(o, "rate_cap_mbps", json_real((double)s->rate_cap * 8 / 1e6));
	json_object_set_new(o, "digest", json_boolean((s->flags & NC_SESS_REQ_DIGEST) != 0));
	json_object_set_new(o, "connect_failed", json_integer((json_int_t)s->connect_failed));
	json_object_set_new(o, "host_errors", json_integer((json_int_t)s->host_errors));
	json_object_set_new(o, "host_dropped", json_integer((json_int_t)s->host_dropped));
	json_object_set_new(o, "dataplane_alive", json_boolean(cp_dplink_alive(cp->link)));
	if (s->flags & NC_SESS_REQ_HDE)
		json_object_set_new(o, "hde", hde_json(&s->hde));
	json_t *drops = json_object();
	for (unsigned d = 0; d < NC_SESSION_DROP_REASONS; d++)
		if (drop_names[d])
			json_object_set_new(drops, drop_names[d],
			                    json_integer((json_int_t)s->drops[d]));
	json_object_set_new(o, "drops", drops);
	json_t *streams = json_array();
	for (unsigned k = 0; k < s->n_streams && k < NC_MAX_SESSION_STREAMS; k++) {
		const struct nc_stream_shm *t = &s->streams[k];
		json_t *js;
		json_array_append_new(
		        streams,
		        js = json_pack("{s:i, s:I, s:I, s:I, s:b, s:b, s:b}", "id", (int)t->id,
		                       "to_peer", (json_int_t)t->to_peer, "from_peer",
		                       (json_int_t)t->from_peer, "retrans", (json_int_t)t->retrans,
		                       "host_eof", (t->flags & NC_STREAM_F_HOST_EOF) != 0,
		                       "peer_fin", (t->flags & NC_STREAM_F_PEER_FIN) != 0, "reset",
		                       (t->flags & NC_STREAM_F_RESET) != 0));
		if (t->flags & NC_STREAM_F_DIGEST) {
			char hex[2 * sizeof(t->digest) + 1];
			for (unsigned b = 0; b < sizeof(t->digest); b++)
				snprintf(hex + 2 * b, 3, "%02x", t->digest[b]);
			json_object_set_new(js, "xxh128", json_string(hex));
		}
	}
	json_object_set_new(o, "stream_list", streams);
	*result = o;
	return 0;
}

static int m_set(const json_t *params, json_t **result, void *arg, char *err, size_t errlen)
{
	struct cp *cp = arg;
	struct nc_session_req req;
	memset(&req, 0, sizeof(req));
	int rc = name_param(params, &req, err, errlen);
	if (rc == 0)
		rc = rate_param(params, &req.rate_cap, err, errlen);
	if (rc == 0)
		rc = unsent_param(params, &req, err, errlen);
	if (rc == 0)
		rc = window_param(params, &req, err, errlen);
	if (rc)
		return rc;
	bool rate = json_object_get(params, "rate_mbps") != NULL;
	if (!rate && !(req.flags & (NC_SESS_REQ_UNSENT | NC_SESS_REQ_WINDOW))) {
		snprintf(err, errlen, "session.set takes rate_mbps, unsent_ms or follow_reader");
		return -EINVAL;
	}
	if (rate)
		req.flags |= NC_SESS_REQ_RATE;
	rc = command(cp, NC_MSG_SESSION_SET, &req, err, errlen);
	if (rc)
		return rc;
	*result = json_pack("{s:s}", "name", req.name);
	if (rate)
		json_object_set_new(*result, "rate_cap_mbps",
		                    json_real((double)req.rate_cap * 8 / 1e6));
	if (req.flags & NC_SESS_REQ_UNSENT)
		json_object_set_new(*result, "unsent_ms", json_integer(req.unsent_ms));
	if (req.flags & NC_SESS_REQ_WINDOW)
		json_object_set_new(*result, "follow_reader", json_boolean(!req.whole_window));
	return 0;
}

static int close_req(struct cp *cp, const json_t *params, uint8_t flags, char *name_out, char *err,
                     size_t errlen)
{
	struct nc_session_req req;
	memset(&req, 0, sizeof(req));
	int rc = name_param(params, &req, err, errlen);
	req.flags = flags;
	if (rc == 0)
		rc = command(cp, NC_MSG_SESSION_CLOSE, &req, err, errlen);
	if (rc == 0 && name_out != NULL)
		memcpy(name_out, req.name, sizeof(req.name));
	return rc;
}

static int m_close(const json_t *params, json_t **result, void *arg, char *err, size_t errlen)
{
	char name[NC_SESSION_NAME_LEN];
	int rc = close_req(arg, params, 0, name, err, errlen);
	if (rc)
		return rc;
	*result = json_pack("{s:s, s:b}", "name", name, "closing", 1);
	return 0;
}

int cp_session_open(struct cp *cp, const json_t *params, json_t **result, char *err, size_t errlen)
{
	return m_open(params, result, cp, err, errlen);
}

int cp_session_stats(struct cp *cp, const char *name, json_t **result, char *err, size_t errlen)
{
	json_t *p = json_pack("{s:s}", "name", name);
	int rc = m_stats(p, result, cp, err, errlen);
	json_decref(p);
	return rc;
}

int cp_session_set_unsent(struct cp *cp, const char *name, unsigned ms, char *err, size_t errlen)
{
	json_t *p = json_pack("{s:s, s:i}", "name", name, "unsent_ms", (int)ms), *r = NULL;
	int rc = m_set(p, &r, cp, err, errlen);
	json_decref(p);
	json_decref(r);
	return rc;
}

int cp_session_close(struct cp *cp, const char *name, char *err, size_t errlen)
{
	json_t *p = json_pack("{s:s}", "name", name);
	int rc = close_req(cp, p, 0, NULL, err, errlen);
	json_decref(p);
	return rc;
}

int cp_session_close_waiting(struct cp *cp, const char *name, char *err, size_t errlen)
{
	json_t *p = json_pack("{s:s}", "name", name);
	int rc = close_req(cp, p, NC_SESS_REQ_IF_WAITING, NULL, err, errlen);
	json_decref(p);
	return rc;
}

static const struct nc_ctl_param open_params[] = {
        {"name", NC_CTL_STRING, true, "session name (letters, digits, - _ .)"},
        {"role", NC_CTL_STRING, true, "send (source host) or receive (destination host)"},
        {"peer", NC_CTL_STRING, true, "the other appliance's AMST address"},
        {"listen", NC_CTL_STRING, false,
         "send: unix:PATH or tcp:IP:PORT where QEMU connects, or test:N[:BYTES]"},
        {"connect", NC_CTL_STRING, false,
         "receive: unix:PATH or tcp:IP:PORT of the destination, or test:"},
        {"rate_mbps", NC_CTL_NUMBER, false, "cap of the session's rate, Mbit/s (0: none)"},
        {"port", NC_CTL_INT, false, "the peer's UDP port (default: amst.udp_port)"},
        {"digest", NC_CTL_BOOL, false, "XXH3-128 of every stream's host bytes, in session.stats"},
        {"codec", NC_CTL_STRING, false,
         "send: hde (HDE-code the streams, docs/hde.md) or none (default)"},
        {"streams", NC_CTL_INT, false,
         "send with codec hde: streams expected (HDE's cache is split among them)"},
        {"unsent_ms", NC_CTL_INT, false,
         "send: unsent bytes a stream holds, in ms at the path's rate (default amst.unsent_ms; "
         "0: no limit)"},
        {"follow_reader", NC_CTL_BOOL, false,
         "receive: windows follow the reader (true) or are whole buffers (false; default "
         "amst.follow_reader)"},
        {NULL, 0, false, NULL},
};
static const struct nc_ctl_param name_params[] = {
        {"name", NC_CTL_STRING, true, "session name"},
        {NULL, 0, false, NULL},
};
static const struct nc_ctl_param set_params[] = {
        {"name", NC_CTL_STRING, true, "session name"},
        {"rate_mbps", NC_CTL_NUMBER, false, "new cap, Mbit/s (0: none)"},
        {"unsent_ms", NC_CTL_INT, false, "send: new unsent limit, ms (0: none)"},
        {"follow_reader", NC_CTL_BOOL, false,
         "receive: windows follow the reader (true) or are whole buffers (false)"},
        {NULL, 0, false, NULL},
};

static const struct nc_ctl_method session_methods[] = {
        {"session.open", "open an AMST session to a peer appliance", open_params, m_open},
        {"session.list", "sessions with their state and totals", NULL, m_list},
        {"session.stats", "one session's counters, RTT, rate, window and streams", name_params,
         m_stats},
        {"session.set", "change a session's rate cap, unsent limit or windows while it runs",
         set_params, m_set},
        {"session.close", "close a session (and remove a closed one)", name_params, m_close},
        {NULL, NULL, NULL, NULL},
};

/* A peer (a migration's source) may switch the windows of a session it
 * opened here, and nothing else: the rate cap and unsent limit are this
 * host's operators' to set. */
static const struct nc_ctl_param peer_set_params[] = {
        {"name", NC_CTL_STRING, true, "session name"},
        {"follow_reader", NC_CTL_BOOL, true,
         "receive: windows follow the reader (true) or are whole buffers (false)"},
        {NULL, 0, false, NULL},
};

int cp_session_register_peer(struct nc_ctl *ctl, struct cp *cp)
{
	static const struct nc_ctl_method peer_methods[] = {
	        {"session.open", "open an AMST session (for a peer's migration)", open_params,
	         m_open},
	        {"session.stats", "one session's counters", name_params, m_stats},
	        {"session.set", "change a session's windows (follow_reader) while it runs",
	         peer_set_params, m_set},
	        {"session.close", "close a session", name_params, m_close},
	        {NULL, NULL, NULL, NULL},
	};
	return nc_ctl_register_all(ctl, peer_methods, cp);
}

static int sessions_init(void *arg, struct nc_init_ctx *ctx, char *err, size_t errlen)
{
	(void)ctx;
	struct cp *cp = arg;
	int rc = nc_ctl_register_all(nc_app_ctl(cp->app), session_methods, cp);
	if (rc)
		snprintf(err, errlen, "cannot register session methods: %s", strerror(-rc));
	return rc;
}

int cp_session_component(struct cp *cp)
{
	static const char *const deps[] = {"dplink", NULL};
	const struct nc_component c = {
	        .name = "sessions",
	        .phase = NC_PHASE_DWCP,
	        .deps = deps,
	        .init = sessions_init,
	        .arg = cp,
	        .timeout_ms = 1000,
	};
	return nc_app_add(cp->app, &c);
}
