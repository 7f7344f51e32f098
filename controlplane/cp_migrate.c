/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cp_migrate: live migration through the appliances, on the source host's
 * control plane. migrate.start checks at once what it can without waiting
 * on anyone (the request, the host is a known peer, the VM is not already
 * migrating here, its QMP socket is there) and hands the rest to a thread
 * of the migration's own, so the control socket never waits on a VM's
 * monitor or on libvirt:
 *
 *   0. open the VM through the back end (its monitor answers, QEMU is not
 *      migrating already, controlplane.tcg_guard);
 *   1. connect to the destination's control plane (cp_peer), check that the
 *      destination socket is there, open the receive session there
 *      (connecting to --dest) and the send session here (listening on a UNIX
 *      socket in the runtime directory), both with stream digests; a libvirt
 *      domain ("libvirt:NAME", cp_mig_libvirt) uses one socket path on both
 *      hosts instead (controlplane.libvirt_socket_dir/ID.sock, or --dest):
 *      libvirt makes the destination QEMU listen where the source connects;
 *   2. start the migration to that socket through the back end (cp_migrate.h);
 *   3. watch it: the back end's progress, the local session, the peer and
 *      its dataplane; a failure anywhere cancels the migration (the source
 *      keeps running) and says why;
 *   4. at completion, compare the streams' XXH3-128 digests at both appliances
 *      (digest_ok) and close both sessions.
 *
 * migrate.status, migrate.list and migrate.cancel read and steer the
 * records; finished migrations are kept (the last MAX_MIGRATIONS).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NC_LOG_MODULE "migrate"
#include "cp.h"
#include "cp_migrate.h"
#include "cp_peer.h"
#include "nc_log.h"

#define MAX_MIGRATIONS 16
#define POLL_MS        200
#define PEER_POLL_MS   1000
/* The sending session runs with amst.bulk_unsent_ms until QEMU has at most
 * half the guest's RAM, or this much if more, left in its pass, or has begun
 * a second pass; then it gets amst.unsent_ms (docs/amst.md, "Unsent data"). */
#define TIGHTEN_REMAINING_MIN (128ull << 20)
#define DIGEST_WAIT_MS        15000
#define OPEN_TIMEOUT_MS       3000
/* Polls of a QMP that time out in a row before the migration is failed (the
 * back end's own timeout each: 5 s for QMP). */
#define POLL_TIMEOUTS_MAX 4
/* Polls (100 ms apart) for the hypervisor to settle after a cancel. */
#define SETTLE_POLLS 50

enum mig_state {
	MIG_STARTING,
	MIG_ACTIVE,
	MIG_VERIFYING,
	MIG_COMPLETED,
	MIG_FAILED,
	MIG_CANCELLED,
};

static const char *const state_names[] = {"starting",  "active", "verifying",
                                          "completed", "failed", "cancelled"};

struct stream_cmp {
	uint32_t id;
	uint64_t src_bytes, dst_bytes;
	char src_digest[2 * NC_DIGEST_LEN + 1], dst_digest[2 * NC_DIGEST_LEN + 1];
};

struct mig {
	bool used;
	unsigned seq;
	char id[NC_SESSION_NAME_LEN];
	char vm[256];
	bool vm_file; /* vm is a QMP socket: vm_dev and vm_ino say which */
	dev_t vm_dev;
	ino_t vm_ino;
	char to[CP_PEER_NAME_MAX + 1];
	char dest[NC_SESSION_ADDR_LEN];
	char listen[NC_SESSION_ADDR_LEN];
	unsigned channels;
	double rate_mbps;
	bool hde; /* HDE-code the streams (codec "hde", the default) */
	const struct cp_mig_backend *be;
	void *h;
	struct cp_migrations *ms;
	pthread_t thread;
	bool joinable;
	/* below: under ms->lock */
	enum mig_state state;
	char phase[48];
	char error[512];
	bool cancel;
	bool ending; /* failed or cancelled, cleaning up (state not final yet) */
	struct cp_mig_progress prog;
	uint64_t wire_bytes, stream_bytes;
	double wire_mbps;
	long long start_ms, end_ms;
	int digest_ok; /* -1: not known */
	struct stream_cmp streams[NC_MAX_SESSION_STREAMS];
	unsigned n_streams;
	char vm_state[32];
};

struct cp_migrations {
	struct cp *cp;
	pthread_mutex_t lock;
	unsigned next_seq;
	bool stopping; /* the control plane shuts down */
	struct mig m[MAX_MIGRATIONS];
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static bool finished(enum mig_state s)
{
	return s == MIG_COMPLETED || s == MIG_FAILED || s == MIG_CANCELLED;
}

static void set_phase(struct mig *m, enum mig_state st, const char *phase)
{
	pthread_mutex_lock(&m->ms->lock);
	m->state = st;
	m->ending = false;
	snprintf(m->phase, sizeof(m->phase), "%s", phase);
	pthread_mutex_unlock(&m->ms->lock);
}

/* The control plane is shutting down: the waits for a completed stream
 * end (a cancel does not end them: it may have come too late). */
static bool stopping(struct mig *m)
{
	pthread_mutex_lock(&m->ms->lock);
	bool s = m->ms->stopping;
	pthread_mutex_unlock(&m->ms->lock);
	return s;
}

static bool cancel_asked(struct mig *m)
{
	pthread_mutex_lock(&m->ms->lock);
	bool c = m->cancel;
	pthread_mutex_unlock(&m->ms->lock);
	return c;
}

/* A session's stats as JSON: local, or NULL. */
/* Bytes the sending session read from QEMU: HDE's input when it codes the
 * streams (the AMST stream then carries its frames), else the stream bytes. */
static uint64_t host_bytes(const json_t *ls)
{
	const json_t *h = json_object_get(ls, "hde");
	if (h != NULL)
		return (uint64_t)json_integer_value(json_object_get(h, "stream_bytes"));
	return (uint64_t)json_integer_value(json_object_get(ls, "stream_bytes_sent"));
}

static json_t *local_stats(struct cp *cp, const char *name)
{
	char err[256];
	json_t *r = NULL;
	if (cp_session_stats(cp, name, &r, err, sizeof(err)) != 0)
		return NULL;
	return r;
}

static const char *sess_error(const json_t *st)
{
	const char *e = json_string_value(json_object_get(st, "error"));
	return e && e[0] ? e : NULL;
}

/* Whether this host's sending session still holds part of the stream: a
 * stream whose host connection has not ended, or bytes the peer has not
 * acknowledged. Closing it then would cut the stream. A session gone, ending
 * or failed holds nothing that can still go. */
static bool local_holds(const json_t *ls)
{
	if (ls == NULL || sess_error(ls) != NULL)
		return false;
	const char *st = json_string_value(json_object_get(ls, "state"));
	if (st == NULL || strcmp(st, "established") != 0)
		return false;
	if (json_integer_value(json_object_get(ls, "unacked_bytes")) > 0)
		return true;
	size_t i;
	const json_t *t;
	json_array_foreach (json_object_get(ls, "stream_list"), i, t)
		if (!json_is_true(json_object_get(t, "host_eof")) &&
		    !json_is_true(json_object_get(t, "reset")))
			return true;
	return false;
}

/* A deadline that moves DIGEST_WAIT_MS past every move of this host's
 * sending session: bytes taken from its host, or acknowledged by the peer. */
struct move_clock {
	long long until;
	bool seen;
	uint64_t taken, unacked;
};

static void move_clock_note(struct move_clock *mc, const json_t *ls)
{
	if (ls == NULL) /* no reading: no move */
		return;
	uint64_t taken = host_bytes(ls);
	uint64_t unacked = (uint64_t)json_integer_value(json_object_get(ls, "unacked_bytes"));
	if (mc->seen && (taken != mc->taken || unacked != mc->unacked))
		mc->until = now_ms() + DIGEST_WAIT_MS;
	mc->seen = true;
	mc->taken = taken;
	mc->unacked = unacked;
}

/* Compare the digests of both ends; true when every stream is finished on both. */
static bool compare_digests(struct mig *m, const json_t *src, const json_t *dst, int *ok)
{
	const json_t *sl = json_object_get(src, "stream_list");
	const json_t *dl = json_object_get(dst, "stream_list");
	size_t ns = json_array_size(sl), nd = json_array_size(dl);
	if (ns == 0 || ns != nd || ns < m->channels + 1)
		return false;
	struct stream_cmp cmp[NC_MAX_SESSION_STREAMS];
	unsigned n = 0;
	bool all = true, equal = true;
	for (size_t i = 0; i < ns && n < NC_MAX_SESSION_STREAMS; i++) {
		const json_t *s = json_array_get(sl, i);
		const json_t *d = NULL;
		for (size_t k = 0; k < nd; k++)
			if (json_integer_value(json_object_get(json_array_get(dl, k), "id")) ==
			    json_integer_value(json_object_get(s, "id")))
				d = json_array_get(dl, k);
		const char *ss = json_string_value(json_object_get(s, "xxh128"));
		const char *ds = d ? json_string_value(json_object_get(d, "xxh128")) : NULL;
		struct stream_cmp *c = &cmp[n++];
		memset(c, 0, sizeof(*c));
		c->id = (uint32_t)json_integer_value(json_object_get(s, "id"));
		c->src_bytes = (uint64_t)json_integer_value(json_object_get(s, "to_peer"));
		c->dst_bytes =
		        d ? (uint64_t)json_integer_value(json_object_get(d, "from_peer")) : 0;
		snprintf(c->src_digest, sizeof(c->src_digest), "%s", ss ? ss : "");
		snprintf(c->dst_digest, sizeof(c->dst_digest), "%s", ds ? ds : "");
		if (ss == NULL || ds == NULL)
			all = false;
		else if (strcmp(ss, ds) != 0 || c->src_bytes != c->dst_bytes)
			equal = false;
	}
	pthread_mutex_lock(&m->ms->lock);
	memcpy(m->streams, cmp, sizeof(cmp[0]) * n);
	m->n_streams = n;
	pthread_mutex_unlock(&m->ms->lock);
	*ok = all && equal;
	return all;
}

/* Why a migration failed, from what the appliances saw (best first). */
static void explain(struct mig *m, struct cp_peer_conn *pc, const char *first, char *out,
                    size_t len)
{
	struct cp *cp = m->ms->cp;
	char why[400] = "";
	/* The dataplanes publish their counters every 100 ms: let the last
	 * ones (a failed connect, a session error) arrive first. */
	sleep_ms(300);
	if (!cp_dplink_alive(cp->link))
		snprintf(why, sizeof(why), "this host's dataplane is not running");
	json_t *ps = NULL;
	char perr[256] = "";
	if (why[0] == '\0' && pc != NULL) {
		json_t *p = json_pack("{s:s}", "name", m->id);
		int rc = cp_peer_call(pc, "session.stats", p, &ps, perr, sizeof(perr));
		json_decref(p);
		if (rc != 0 && rc != -EREMOTEIO)
			snprintf(why, sizeof(why), "the destination's control plane is gone (%s)",
			         perr);
		else if (rc == 0 && !json_is_true(json_object_get(ps, "dataplane_alive")))
			snprintf(why, sizeof(why), "the destination's dataplane is not running");
		else if (rc == 0 && json_integer_value(json_object_get(ps, "connect_failed")) > 0)
			snprintf(why, sizeof(why),
			         "the destination refused the connection to %s (is the destination "
			         "QEMU listening there?)",
			         m->dest);
		else if (rc == 0 && sess_error(ps))
			snprintf(why, sizeof(why), "destination session: %s", sess_error(ps));
	}
	if (why[0] == '\0') {
		json_t *ls = local_stats(cp, m->id);
		if (ls && sess_error(ls))
			snprintf(why, sizeof(why), "session: %s", sess_error(ls));
		json_decref(ls);
	}
	json_decref(ps);
	if (why[0] && first && first[0])
		snprintf(out, len, "%s; %s", why, first);
	else
		snprintf(out, len, "%s", why[0] ? why : (first ? first : "unknown"));
}

static void peer_close_session(struct cp_peer_conn *pc, const char *name)
{
	char err[256];
	json_t *p = json_pack("{s:s}", "name", name);
	json_t *r = NULL;
	(void)cp_peer_call(pc, "session.close", p, &r, err, sizeof(err));
	json_decref(p);
	json_decref(r);
}

static void reap(struct cp_migrations *ms);

static void *mig_thread(void *arg)
{
	struct mig *m = arg;
	struct cp *cp = m->ms->cp;
	char err[512] = "", reason[512] = "";
	bool local_open = false, peer_open = false, started = false, handed_over = false;
	char late[512] = ""; /* what ended it after QEMU had completed (handed_over) */
	enum mig_state end = MIG_FAILED;
	int digest_ok = -1;

	struct cp_peer_conn *pc = NULL;
	m->h = m->be->open(m->vm, cp->cfg, OPEN_TIMEOUT_MS, err, sizeof(err));
	if (m->h == NULL) {
		snprintf(reason, sizeof(reason), "%s", err);
		goto out;
	}
	if (cancel_asked(m)) {
		end = MIG_CANCELLED;
		snprintf(reason, sizeof(reason), "cancelled by the operator");
		goto out;
	}
	set_phase(m, MIG_STARTING, "connecting to the peer");
	pc = cp_peer_connect(cp, m->to, err, sizeof(err));
	if (pc == NULL) {
		snprintf(reason, sizeof(reason), "%s", err);
		goto out;
	}
	const struct cp_peer_other *other = cp_peer_conn_other(pc);
	json_t *info = NULL;
	int rc;
	if (cp_peer_call(pc, "peer.info", NULL, &info, err, sizeof(err)) != 0) {
		snprintf(reason, sizeof(reason), "%s", err);
		goto out;
	}
	bool alive = json_is_true(json_object_get(info, "dataplane_alive"));
	char dpwhy[160];
	const char *dw = json_string_value(json_object_get(info, "dataplane"));
	snprintf(dpwhy, sizeof(dpwhy), "%s", dw ? dw : "");
	rc = m->be->peer_info ? m->be->peer_info(m->h, info, err, sizeof(err)) : 0;
	json_decref(info);
	if (rc != 0) {
		snprintf(reason, sizeof(reason), "%s", err);
		goto out;
	}
	if (!alive) {
		/* What the peer saw (pid, state, heartbeat age) says which check
		 * failed: a living dataplane was once reported this way. */
		snprintf(reason, sizeof(reason), "the dataplane of %s is not running (%.160s)",
		         m->to, dpwhy[0] ? dpwhy : "no detail");
		goto out;
	}
	const char *self_ip = NULL;
	char self_amst[16];
	{
		const char *a = nc_config_get_str(cp->cfg, "amst.ip");
		char ip[20];
		snprintf(ip, sizeof(ip), "%s", a);
		char *slash = strchr(ip, '/');
		if (slash)
			*slash = '\0';
		cp_peer_copy_ip(self_amst, ip);
		self_ip = self_amst;
	}
	if (self_ip[0] == '\0' || other->amst_ip[0] == '\0') {
		snprintf(reason, sizeof(reason), "AMST is not configured on %s (amst.ip)",
		         self_ip[0] == '\0' ? "this host" : m->to);
		goto out;
	}
	json_t *p, *r = NULL;
	if (!m->be->same_path) {
		p = json_pack("{s:s}", "address", m->dest);
		rc = cp_peer_call(pc, "peer.check_dest", p, &r, err, sizeof(err));
		json_decref(p);
		json_decref(r);
	}
	if (rc != 0) {
		snprintf(reason, sizeof(reason), "%s", err);
		goto out;
	}
	set_phase(m, MIG_STARTING, "opening the sessions");
	/* The first half of the pass runs with open buffers (amst.bulk_unsent_ms,
	 * default none; amst.bulk_whole_window on the receiving side): the
	 * pipeline's stages (QEMU, HDE, AMST, the destination) share the CPUs and
	 * need room to overlap. Then they are closed (below), so the guest does
	 * not wait for a stream parked in the appliances once QEMU has stopped
	 * it. Halfway, not near the end: an idle guest's pass ends in zero pages
	 * that QEMU sends faster than this loop polls. */
	unsigned unsent_ms = (unsigned)nc_config_get_int(cp->cfg, "amst.unsent_ms");
	unsigned bulk_ms = (unsigned)nc_config_get_int(cp->cfg, "amst.bulk_unsent_ms");
	bool tight = bulk_ms == unsent_ms;
	/* The receiving side's windows, as this side's configuration says (the
	 * migration is this side's): during the bulk, and after it. */
	bool follow = nc_config_get_bool(cp->cfg, "amst.follow_reader");
	bool bulk_follow =
	        follow && (tight || !nc_config_get_bool(cp->cfg, "amst.bulk_whole_window"));
	bool peer_tight = bulk_follow == follow;
	p = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "name", m->id, "role", "receive", "peer",
	              self_ip, "connect", m->dest, "digest", 1, "follow_reader", bulk_follow);
	rc = cp_peer_call(pc, "session.open", p, &r, err, sizeof(err));
	json_decref(p);
	json_decref(r);
	/* An open that failed may still be carried out there (a late reply of
	 * its dataplane): the cleanup closes it all the same, the name being
	 * this migration's own. */
	peer_open = true;
	if (rc != 0) {
		snprintf(reason, sizeof(reason), "cannot open the receiving session: %s", err);
		goto out;
	}
	p = json_pack("{s:s, s:s, s:s, s:s, s:f, s:b, s:s, s:i, s:i}", "name", m->id, "role",
	              "send", "peer", other->amst_ip, "listen", m->listen, "rate_mbps",
	              m->rate_mbps, "digest", 1, "codec", m->hde ? "hde" : "none", "streams",
	              (int)m->channels + 1, "unsent_ms", (int)bulk_ms);
	r = NULL;
	rc = cp_session_open(cp, p, &r, err, sizeof(err));
	json_decref(p);
	json_decref(r);
	local_open = true; /* as above: the dataplane may yet open it */
	if (rc != 0) {
		snprintf(reason, sizeof(reason), "cannot open the sending session: %s", err);
		goto out;
	}
	if (cancel_asked(m)) {
		end = MIG_CANCELLED;
		snprintf(reason, sizeof(reason), "cancelled by the operator");
		goto out;
	}
	set_phase(m, MIG_ACTIVE, "migrating");
	rc = m->be->start(m->h, m->listen, m->channels, err, sizeof(err));
	if (rc != 0) {
		snprintf(reason, sizeof(reason), "%s", err);
		goto out;
	}
	started = true;
	NC_LOG(NOTICE, "migration %s: %s -> %s (%s), %u channels, started", m->id, m->vm, m->to,
	       m->dest, m->channels);
	long long last_peer = now_ms(), last_wire_t = now_ms();
	uint64_t last_wire = 0;
	/* The dataplane publishes its sessions every 100 ms, later when the
	 * machine is busy: one missing from a poll or two is not gone yet. */
	unsigned ls_missing = 0, poll_timeouts = 0;
	for (;;) {
		sleep_ms(POLL_MS);
		struct cp_mig_progress pr;
		rc = m->be->poll(m->h, &pr, err, sizeof(err));
		/* QEMU's monitor is silent while it holds its lock for the
		 * stop-and-copy (a big last pass, device state): one slow answer is
		 * not a failure, and giving up here would close the sessions under
		 * a source that may have paused. */
		if (rc == -ETIMEDOUT && ++poll_timeouts < POLL_TIMEOUTS_MAX) {
			NC_LOG(NOTICE, "migration %s: %s; asking again", m->id, err);
			continue;
		}
		if (rc != 0) {
			snprintf(reason, sizeof(reason), "%s", err);
			goto out;
		}
		poll_timeouts = 0;
		json_t *ls = local_stats(cp, m->id);
		long long t = now_ms();
		pthread_mutex_lock(&m->ms->lock);
		if (pr.total == 0 && m->prog.total != 0) {
			/* a failed migration reports no counters: keep the last ones */
			pr.transferred = m->prog.transferred;
			pr.remaining = m->prog.remaining;
			pr.total = m->prog.total;
			pr.passes = m->prog.passes;
		}
		m->prog = pr;
		uint64_t at =
		        pr.total / 2 > TIGHTEN_REMAINING_MIN ? pr.total / 2 : TIGHTEN_REMAINING_MIN;
		bool tighten = !tight && pr.status == CP_MIG_ST_ACTIVE && pr.transferred > 0 &&
		               (pr.remaining <= at || pr.passes >= 2);
		if (ls != NULL) {
			m->wire_bytes =
			        (uint64_t)json_integer_value(json_object_get(ls, "bytes_sent"));
			m->stream_bytes = host_bytes(ls);
			if (t - last_wire_t >= 500) {
				m->wire_mbps = (double)(m->wire_bytes - last_wire) * 8 / 1e3 /
				               (double)(t - last_wire_t);
				last_wire = m->wire_bytes;
				last_wire_t = t;
			}
		}
		pthread_mutex_unlock(&m->ms->lock);
		if ((tighten || tight) && !peer_tight) {
			/* Failing, it is tried again at the next poll. */
			json_t *sp =
			        json_pack("{s:s, s:b}", "name", m->id, "follow_reader", follow);
			json_t *sr = NULL;
			if (cp_peer_call(pc, "session.set", sp, &sr, err, sizeof(err)) == 0) {
				peer_tight = true;
				NC_LOG(NOTICE,
				       "migration %s: the receiver's windows follow its reader",
				       m->id);
			} else {
				NC_LOG_RL(WARN,
				          "migration %s: cannot set the receiver's windows: %s",
				          m->id, err);
			}
			json_decref(sp);
			json_decref(sr);
		}
		if (tighten) {
			/* Failing, it is tried again at the next poll. */
			if (cp_session_set_unsent(cp, m->id, unsent_ms, err, sizeof(err)) == 0) {
				tight = true;
				NC_LOG(NOTICE,
				       "migration %s: %llu MiB left in pass %llu: unsent limit %u "
				       "ms",
				       m->id, (unsigned long long)(pr.remaining >> 20),
				       (unsigned long long)pr.passes, unsent_ms);
			} else {
				NC_LOG_RL(WARN, "migration %s: cannot set the unsent limit: %s",
				          m->id, err);
			}
		}
		if (pr.status == CP_MIG_ST_COMPLETED) {
			json_decref(ls);
			break;
		}
		if (pr.status == CP_MIG_ST_FAILED || pr.status == CP_MIG_ST_CANCELLED) {
			json_decref(ls);
			char q[400];
			snprintf(q, sizeof(q), "%s: migration %s%s%s", m->be->who, pr.detail,
			         pr.error[0] ? ": " : "", pr.error);
			explain(m, pc, q, reason, sizeof(reason));
			goto out;
		}
		/* Asked only now: once QEMU has completed, the source is paused
		 * with everything sent, and the stream must go on (above). */
		if (cancel_asked(m)) {
			json_decref(ls);
			end = MIG_CANCELLED;
			snprintf(reason, sizeof(reason), "cancelled by the operator");
			goto out;
		}
		ls_missing = ls == NULL ? ls_missing + 1 : 0;
		const char *le = ls ? sess_error(ls) : NULL;
		bool lclosed = ls && strcmp(json_string_value(json_object_get(ls, "state")) ?: "",
		                            "closed") == 0;
		if ((ls == NULL && ls_missing >= 3) || lclosed || le != NULL ||
		    !cp_dplink_alive(cp->link)) {
			char q[400];
			snprintf(q, sizeof(q), "%s%s",
			         ls == NULL ? "the sending session is gone" : "", le ? le : "");
			json_decref(ls);
			explain(m, pc, q, reason, sizeof(reason));
			goto out;
		}
		json_decref(ls);
		if (t - last_peer >= PEER_POLL_MS) {
			last_peer = t;
			p = json_pack("{s:s}", "name", m->id);
			json_t *ps = NULL;
			rc = cp_peer_call(pc, "session.stats", p, &ps, err, sizeof(err));
			json_decref(p);
			if (rc != 0) {
				snprintf(reason, sizeof(reason),
				         rc == -EREMOTEIO
				                 ? "the destination's control plane refused "
				                   "session.stats: %s"
				                 : "the destination's control plane does not "
				                   "answer: %s",
				         err);
				cp_peer_conn_close(pc);
				pc = NULL;
				goto out;
			}
			bool dalive = json_is_true(json_object_get(ps, "dataplane_alive"));
			const char *de = sess_error(ps);
			bool failed_conn =
			        json_integer_value(json_object_get(ps, "connect_failed")) > 0;
			json_decref(ps);
			if (!dalive || de != NULL || failed_conn) {
				explain(m, pc, NULL, reason, sizeof(reason));
				goto out;
			}
		}
	}
verify:
	/* Completed: the digests of both ends must agree. Until they do, the
	 * appliances may still hold the stream's end: wait while the destination
	 * gets bytes, DIGEST_WAIT_MS after the last ones. */
	set_phase(m, MIG_VERIFYING, "comparing stream digests");
	struct move_clock clk = {.until = now_ms() + DIGEST_WAIT_MS};
	uint64_t delivered = 0;
	bool peer_lost = false;
	digest_ok = 0;
	for (;;) {
		json_t *ls = local_stats(cp, m->id), *ps = NULL;
		/* A link that broke (the peer's control plane restarted, a call
		 * timed out) is made again: the stream may still arrive whole. */
		if (pc == NULL || !cp_peer_conn_ok(pc)) {
			cp_peer_conn_close(pc);
			pc = cp_peer_connect(cp, m->to, err, sizeof(err));
		}
		rc = -ENOTCONN;
		if (pc != NULL) {
			p = json_pack("{s:s}", "name", m->id);
			rc = cp_peer_call(pc, "session.stats", p, &ps, err, sizeof(err));
			json_decref(p);
		}
		peer_lost = rc != 0 && rc != -EREMOTEIO;
		/* (a call that timed out leaves the link usable: a slow peer is
		 * asked again, not reconnected) */
		int ok = 0;
		bool done = ls && rc == 0 && compare_digests(m, ls, ps, &ok);
		if (ls != NULL) {
			pthread_mutex_lock(&m->ms->lock);
			m->wire_bytes =
			        (uint64_t)json_integer_value(json_object_get(ls, "bytes_sent"));
			m->stream_bytes = host_bytes(ls);
			pthread_mutex_unlock(&m->ms->lock);
		}
		move_clock_note(&clk, ls); /* this side still moves it? */
		json_decref(ls);
		json_decref(ps);
		if (done) {
			digest_ok = ok;
			break;
		}
		uint64_t got = 0;
		pthread_mutex_lock(&m->ms->lock);
		for (unsigned i = 0; i < m->n_streams; i++)
			got += m->streams[i].dst_bytes;
		pthread_mutex_unlock(&m->ms->lock);
		if (got > delivered) {
			delivered = got;
			clk.until = now_ms() + DIGEST_WAIT_MS;
		}
		if (peer_lost && rc != -ETIMEDOUT) {
			cp_peer_conn_close(pc);
			pc = NULL;
		}
		if (now_ms() > clk.until || stopping(m))
			break;
		sleep_ms(POLL_MS);
	}
	end = MIG_COMPLETED;
	if (digest_ok != 1)
		snprintf(reason, sizeof(reason), "%s",
		         peer_lost ? "the destination's control plane does not answer: the stream "
		                     "digests could not be compared"
		         : digest_ok == 0 && m->n_streams
		                 ? "stream digests differ between the appliances"
		                 : "stream digests incomplete");
	{
		/* Stream digests differ only if some stream was seen on both sides. */
		pthread_mutex_lock(&m->ms->lock);
		bool seen = m->n_streams > 0;
		pthread_mutex_unlock(&m->ms->lock);
		if (digest_ok != 1 && seen && !peer_lost) {
			bool any_missing = false;
			pthread_mutex_lock(&m->ms->lock);
			for (unsigned i = 0; i < m->n_streams; i++)
				any_missing |= !m->streams[i].src_digest[0] ||
				               !m->streams[i].dst_digest[0];
			pthread_mutex_unlock(&m->ms->lock);
			snprintf(reason, sizeof(reason), "%s",
			         any_missing ? "stream digests incomplete (a stream did not finish)"
			                     : "stream digests differ between the appliances");
		}
	}
	if (handed_over) {
		char r2[sizeof(reason)];
		if (digest_ok == 1)
			NC_LOG(NOTICE,
			       "migration %s: QEMU had completed before this (%s): the stream "
			       "arrived whole",
			       m->id, late);
		else
			snprintf(r2, sizeof(r2),
			         "%s after QEMU had completed (the source is paused, everything "
			         "sent): %s; the destination may not have the VM",
			         late, reason);
		if (digest_ok != 1)
			snprintf(reason, sizeof(reason), "%s", r2);
	}
out:
	if (end != MIG_COMPLETED && !handed_over) {
		/* The end is decided: a cancel from now on could do nothing. */
		pthread_mutex_lock(&m->ms->lock);
		m->ending = true;
		snprintf(m->phase, sizeof(m->phase), "%s: cleaning up",
		         end == MIG_CANCELLED ? "cancelled" : "failed");
		pthread_mutex_unlock(&m->ms->lock);
	}
	for (int i = 0, timeouts = 0, cancels = 0, cancelled = 0;
	     end != MIG_COMPLETED && started && !handed_over && i <= SETTLE_POLLS; i++) {
		char cerr[256];
		struct cp_mig_progress pr;
		int prc = m->be->poll(m->h, &pr, cerr, sizeof(cerr));
		if (prc == -ETIMEDOUT && ++timeouts < POLL_TIMEOUTS_MAX)
			continue; /* the monitor is busy: ask again */
		/* Too late to cancel or give up: QEMU has sent everything and
		 * paused the source; what the appliances hold may still reach the
		 * destination, so the stream is seen through, not cut. This holds
		 * at any poll: a cancel sent while QEMU (or libvirt's Finish and
		 * Confirm steps) were completing may come too late. */
		if (prc == 0) { /* what QEMU says now, for migrate.status */
			pthread_mutex_lock(&m->ms->lock);
			if (pr.total != 0)
				m->prog = pr;
			else
				m->prog.status = pr.status;
			pthread_mutex_unlock(&m->ms->lock);
		}
		if (prc == 0 && pr.status == CP_MIG_ST_COMPLETED && local_open && peer_open) {
			/* (verify makes the link again, however long the peer's
			 * control plane takes, while the stream moves) */
			handed_over = true;
			snprintf(late, sizeof(late), "%s", reason);
			reason[0] = '\0';
			NC_LOG(WARN,
			       "migration %s: %s, but QEMU had completed: seeing the stream "
			       "through",
			       m->id, late);
			goto verify;
		}
		if (prc != 0 || pr.status != CP_MIG_ST_ACTIVE)
			break; /* settled (the source resumes), or nothing to ask */
		/* A cancel refused (libvirt has no job yet: its thread is still
		 * connecting) is asked again, a few times. */
		if (!cancelled && cancels++ < 5)
			cancelled = m->be->cancel(m->h, cerr, sizeof(cerr)) == 0;
		sleep_ms(100); /* wait (briefly) for the hypervisor to settle */
	}
	if (local_open && (end == MIG_COMPLETED || handed_over)) {
		/* QEMU has sent everything: never cut what this side still
		 * holds of the stream. Wait while it moves, DIGEST_WAIT_MS past
		 * its last move. */
		struct move_clock wait = {.until = now_ms() + 2 * POLL_MS};
		for (;;) {
			json_t *ls = local_stats(cp, m->id);
			bool holds = ls == NULL || local_holds(ls);
			move_clock_note(&wait, ls);
			json_decref(ls);
			if (!holds || now_ms() > wait.until || stopping(m))
				break;
			sleep_ms(POLL_MS);
		}
	}
	if (local_open)
		(void)cp_session_close(cp, m->id, err, sizeof(err));
	if (peer_open && !cp_peer_conn_ok(pc)) { /* once more, to clean up */
		cp_peer_conn_close(pc);
		pc = cp_peer_connect(cp, m->to, err, sizeof(err));
	}
	if (peer_open && pc != NULL)
		peer_close_session(pc, m->id);
	/* A closed session lingers as "closed" until removed: remove them both. */
	if (local_open) {
		for (int i = 0; i < 20; i++) {
			json_t *ls = local_stats(cp, m->id);
			bool gone = ls == NULL;
			bool closed =
			        ls && strcmp(json_string_value(json_object_get(ls, "state")) ?: "",
			                     "closed") == 0;
			json_decref(ls);
			if (gone)
				break;
			if (closed) {
				(void)cp_session_close(cp, m->id, err, sizeof(err));
				break;
			}
			sleep_ms(50);
		}
	}
	if (peer_open && pc != NULL) {
		sleep_ms(100);
		peer_close_session(pc, m->id);
	}
	cp_peer_conn_close(pc);
	char vs[32] = "unknown";
	char verr[256];
	if (m->h != NULL && m->be->vm_state(m->h, vs, sizeof(vs), verr, sizeof(verr)) != 0)
		snprintf(vs, sizeof(vs), "unknown");
	if (m->h != NULL)
		m->be->close(m->h);
	m->h = NULL;
	pthread_mutex_lock(&m->ms->lock);
	m->state = end;
	m->digest_ok = digest_ok;
	snprintf(m->phase, sizeof(m->phase), "%s", state_names[end]);
	snprintf(m->error, sizeof(m->error), "%s", reason);
	snprintf(m->vm_state, sizeof(m->vm_state), "%s", vs);
	m->end_ms = now_ms();
	if (end == MIG_COMPLETED && m->prog.total_ms > 0)
		m->wire_mbps = (double)m->wire_bytes * 8 / 1e3 / (double)m->prog.total_ms;
	pthread_mutex_unlock(&m->ms->lock);
	if (end == MIG_COMPLETED && digest_ok == 1)
		NC_LOG(NOTICE, "migration %s completed, stream digests equal", m->id);
	else
		NC_LOG(WARN, "migration %s %s: %s (source VM %s)", m->id, state_names[end],
		       reason[0] ? reason : "-", vs);
	return NULL;
}

/* ---- control methods ---- */

static json_t *mig_json(const struct mig *m, bool full)
{
	long long end = m->end_ms ? m->end_ms : now_ms();
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:f, s:I}", "id", m->id, "vm",
	                      m->vm, "to", m->to, "dest", m->dest, "state", state_names[m->state],
	                      "phase", m->phase, "channels", (int)m->channels, "rate_mbps",
	                      m->rate_mbps, "elapsed_ms", (json_int_t)(end - m->start_ms));
	json_object_set_new(o, "error", json_string(m->error));
	json_object_set_new(o, "ram_transferred", json_integer((json_int_t)m->prog.transferred));
	json_object_set_new(o, "ram_remaining", json_integer((json_int_t)m->prog.remaining));
	json_object_set_new(o, "ram_total", json_integer((json_int_t)m->prog.total));
	json_object_set_new(o, "qemu_mbps", json_real(m->prog.mbps));
	json_object_set_new(o, "wire_bytes", json_integer((json_int_t)m->wire_bytes));
	json_object_set_new(o, "wire_mbps", json_real(m->wire_mbps));
	if (!full)
		return o;
	json_object_set_new(o, "backend", json_string(m->be->name));
	json_object_set_new(o, "hypervisor_status", json_string(m->prog.detail));
	json_object_set_new(o, "stream_bytes", json_integer((json_int_t)m->stream_bytes));
	json_object_set_new(o, "passes", json_integer((json_int_t)m->prog.passes));
	json_object_set_new(o, "total_ms",
	                    m->prog.total_ms >= 0 && m->state == MIG_COMPLETED
	                            ? json_integer(m->prog.total_ms)
	                            : json_null());
	json_object_set_new(o, "downtime_ms",
	                    m->prog.downtime_ms >= 0 && m->state == MIG_COMPLETED
	                            ? json_integer(m->prog.downtime_ms)
	                            : json_null());
	json_object_set_new(o, "digest_ok",
	                    m->digest_ok < 0 ? json_null() : json_boolean(m->digest_ok == 1));
	json_object_set_new(o, "source_vm", json_string(m->vm_state));
	json_t *sl = json_array();
	for (unsigned i = 0; i < m->n_streams; i++) {
		const struct stream_cmp *c = &m->streams[i];
		json_array_append_new(sl,
		                      json_pack("{s:i, s:I, s:I, s:s, s:s, s:b}", "stream",
		                                (int)c->id, "src_bytes", (json_int_t)c->src_bytes,
		                                "dst_bytes", (json_int_t)c->dst_bytes, "src_xxh128",
		                                c->src_digest, "dst_xxh128", c->dst_digest, "equal",
		                                c->src_digest[0] &&
		                                        strcmp(c->src_digest, c->dst_digest) == 0 &&
		                                        c->src_bytes == c->dst_bytes));
	}
	json_object_set_new(o, "streams", sl);
	return o;
}

/* "unix:/x" and "/x" name the same VM. */
static const char *vm_key(const char *vm)
{
	return strncmp(vm, "unix:", 5) == 0 ? vm + 5 : vm;
}

static struct mig *find(struct cp_migrations *ms, const json_t *params, char *err, size_t errlen)
{
	const char *id = json_string_value(json_object_get(params, "id"));
	struct mig *best = NULL;
	for (unsigned i = 0; i < MAX_MIGRATIONS; i++) {
		struct mig *m = &ms->m[i];
		if (!m->used)
			continue;
		if (id != NULL && strcmp(m->id, id) != 0 && strcmp(vm_key(m->vm), vm_key(id)) != 0)
			continue;
		/* the latest of those that match (a VM may have several finished ones) */
		if (best == NULL || m->seq > best->seq)
			best = m;
	}
	if (best == NULL)
		snprintf(err, errlen, id ? "no migration '%.100s'" : "no migrations", id);
	return best;
}

static int m_start(const json_t *params, json_t **result, void *arg, char *err, size_t errlen)
{
	struct cp_migrations *ms = arg;
	struct cp *cp = ms->cp;
	const char *vm = json_string_value(json_object_get(params, "vm"));
	const char *to = json_string_value(json_object_get(params, "to"));
	const char *dest = json_string_value(json_object_get(params, "dest"));
	json_t *jch = json_object_get(params, "channels");
	json_t *jr = json_object_get(params, "rate_mbps");
	json_int_t ch = jch ? json_integer_value(jch) : 0;
	double rate = jr ? json_number_value(jr) : 0;
	const char *codec = json_string_value(json_object_get(params, "codec"));
	if (codec != NULL && strcmp(codec, "hde") != 0 && strcmp(codec, "none") != 0) {
		snprintf(err, errlen, "codec must be 'hde' or 'none', got '%.32s'", codec);
		return -EINVAL;
	}
	int max_ch = (int)nc_config_get_int(cp->cfg, "amst.max_streams") - 1;
	const struct cp_mig_backend *be =
	        strncmp(vm, CP_MIG_LIBVIRT_PREFIX, strlen(CP_MIG_LIBVIRT_PREFIX)) == 0
	                ? &cp_mig_libvirt
	                : &cp_mig_qemu;
	if (vm[0] == '\0' || strlen(vm) >= sizeof(ms->m[0].vm)) {
		snprintf(err, errlen,
		         "vm must be the QMP socket's path or libvirt:DOMAIN "
		         "(1-255 characters)");
		return -EINVAL;
	}
	if (dest == NULL && !be->same_path) {
		snprintf(err, errlen, "dest is needed: where the destination QEMU listens");
		return -EINVAL;
	}
	if (dest == NULL)
		dest = "";
	else if (be->same_path && strncmp(dest, "unix:/", 6) != 0) {
		snprintf(err, errlen,
		         "dest of a libvirt domain must be unix:/PATH (the same path "
		         "on both hosts), got '%.100s'",
		         dest);
		return -EINVAL;
	}
	if (ch < 0 || ch > max_ch) {
		snprintf(err, errlen, "channels must be 0 (plain) to %d (amst.max_streams - 1)",
		         max_ch);
		return -EINVAL;
	}
	if (rate < 0 || rate > 1e6) {
		snprintf(err, errlen, "rate_mbps must be 0 (no cap) to 1000000");
		return -EINVAL;
	}
	if (dest[0] != '\0' && strncmp(dest, "unix:/", 6) != 0 && strncmp(dest, "tcp:", 4) != 0) {
		snprintf(err, errlen, "dest must be unix:/PATH or tcp:IP:PORT, got '%.100s'", dest);
		return -EINVAL;
	}
	if (strlen(dest) >= NC_SESSION_ADDR_LEN) {
		snprintf(err, errlen, "dest longer than %d characters", NC_SESSION_ADDR_LEN - 1);
		return -EINVAL;
	}
	if (cp->peers == NULL) {
		snprintf(err, errlen, "the peer link is not up");
		return -ENOTCONN;
	}
	if (!cp_peer_known(cp, to)) {
		snprintf(err, errlen, "unknown host '%.64s' (not in controlplane.peers)", to);
		return -EINVAL;
	}
	if (cp->link == NULL || !cp_dplink_alive(cp->link)) {
		snprintf(err, errlen, "this host's dataplane is not running");
		return -ENOTCONN;
	}
	/* A QMP socket is the same VM by any path (a symlink, "//"). */
	struct stat vst;
	bool vm_file = !be->same_path && stat(vm_key(vm), &vst) == 0;
	if (!be->same_path && !vm_file) {
		snprintf(err, errlen, "no QMP socket at %.200s: %s", vm_key(vm), strerror(errno));
		return -ENOENT;
	}
	reap(ms); /* finished slots are reused only once joined */
	pthread_mutex_lock(&ms->lock);
	struct mig *slot = NULL;
	for (unsigned i = 0; i < MAX_MIGRATIONS; i++) {
		struct mig *m = &ms->m[i];
		bool same = strcmp(vm_key(m->vm), vm_key(vm)) == 0 ||
		            (vm_file && m->vm_file && m->vm_dev == vst.st_dev &&
		             m->vm_ino == vst.st_ino);
		if (m->used && !finished(m->state) && same) {
			snprintf(err, errlen, "%.100s is already migrating (%s to %s)", vm, m->id,
			         m->to);
			pthread_mutex_unlock(&ms->lock);
			return -EBUSY;
		}
	}
	/* a free slot, else the oldest finished one */
	for (unsigned i = 0; i < MAX_MIGRATIONS; i++) {
		struct mig *m = &ms->m[i];
		if (!m->used) {
			slot = m;
			break;
		}
		if (finished(m->state) && !m->joinable && (slot == NULL || m->seq < slot->seq))
			slot = m;
	}
	if (slot == NULL) {
		pthread_mutex_unlock(&ms->lock);
		snprintf(err, errlen, "%d migrations run already", MAX_MIGRATIONS);
		return -EBUSY;
	}
	memset(slot, 0, sizeof(*slot));
	slot->used = true; /* reserved: a second start of the same VM is refused from here */
	slot->seq = ++ms->next_seq;
	slot->vm_file = vm_file;
	if (vm_file) {
		slot->vm_dev = vst.st_dev;
		slot->vm_ino = vst.st_ino;
	}
	slot->ms = ms;
	slot->state = MIG_STARTING;
	slot->digest_ok = -1;
	slot->start_ms = now_ms();
	snprintf(slot->phase, sizeof(slot->phase), "connecting to the VM");
	snprintf(slot->vm, sizeof(slot->vm), "%s", vm);
	char prefix[CP_PEER_SESSION_PREFIX]; /* what the peer lets this host name */
	cp_peer_session_prefix(cp_peer_self_name(cp), prefix);
	snprintf(slot->id, sizeof(slot->id), "%s%u-%04x", prefix, slot->seq,
	         (unsigned)getpid() & 0xffff);
	snprintf(slot->to, sizeof(slot->to), "%s", to);
	snprintf(slot->dest, sizeof(slot->dest), "%s", dest);
	snprintf(slot->listen, sizeof(slot->listen), "unix:%s/%s.sock",
	         nc_config_get_str(cp->cfg, "runtime.dir"), slot->id);
	if (be->same_path) {
		/* libvirt: one path, here and there (see the top of this file) */
		if (dest[0] == '\0')
			snprintf(slot->dest, sizeof(slot->dest), "unix:%s/%s.sock",
			         nc_config_get_str(cp->cfg, "controlplane.libvirt_socket_dir"),
			         slot->id);
		snprintf(slot->listen, sizeof(slot->listen), "%s", slot->dest);
	}
	slot->channels = (unsigned)ch;
	slot->rate_mbps = rate;
	slot->hde = codec == NULL || strcmp(codec, "hde") == 0;
	slot->be = be;
	pthread_mutex_unlock(&ms->lock);
	char why[400];
	int rc = 0;
	if (be->same_path && dest[0] == '\0') {
		const char *dir = nc_config_get_str(cp->cfg, "controlplane.libvirt_socket_dir");
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			rc = -errno;
			snprintf(why, sizeof(why),
			         "cannot make %.200s (controlplane.libvirt_socket_dir): %s", dir,
			         strerror(errno));
		}
	}
	if (rc != 0) {
		snprintf(err, errlen, "%s", why);
	} else if (pthread_create(&slot->thread, NULL, mig_thread, slot) != 0) {
		rc = -EAGAIN;
		snprintf(err, errlen, "cannot start the migration's thread");
	}
	pthread_mutex_lock(&ms->lock);
	if (rc != 0) {
		slot->used = false;
	} else {
		slot->joinable = true;
		*result = mig_json(slot, false);
	}
	pthread_mutex_unlock(&ms->lock);
	if (rc == 0)
		NC_LOG(NOTICE, "migration %s of %s to %s (%s) starting", slot->id, vm, to, dest);
	return rc == -EINVAL ? -EIO : rc;
}

/* Join the threads of finished migrations. */
static void reap(struct cp_migrations *ms)
{
	for (unsigned i = 0; i < MAX_MIGRATIONS; i++) {
		struct mig *m = &ms->m[i];
		pthread_mutex_lock(&ms->lock);
		bool join = m->used && m->joinable && finished(m->state);
		if (join)
			m->joinable = false;
		pthread_mutex_unlock(&ms->lock);
		if (join)
			pthread_join(m->thread, NULL);
	}
}

static int m_status(const json_t *params, json_t **result, void *arg, char *err, size_t errlen)
{
	struct cp_migrations *ms = arg;
	reap(ms);
	pthread_mutex_lock(&ms->lock);
	struct mig *m = find(ms, params, err, errlen);
	if (m != NULL)
		*result = mig_json(m, true);
	pthread_mutex_unlock(&ms->lock);
	return m ? 0 : -EINVAL;
}

static int m_cancel(const json_t *params, json_t **result, void *arg, char *err, size_t errlen)
{
	struct cp_migrations *ms = arg;
	pthread_mutex_lock(&ms->lock);
	struct mig *m = find(ms, params, err, errlen);
	int rc = 0;
	if (m != NULL && finished(m->state)) {
		snprintf(err, errlen, "migration %s has %s already", m->id, state_names[m->state]);
		rc = -EALREADY;
	} else if (m != NULL && m->ending) {
		snprintf(err, errlen,
		         "migration %s is ending already (%s); migrate.status shows how it ends",
		         m->id, m->phase);
		rc = -EALREADY;
	} else if (m != NULL && m->state == MIG_VERIFYING) {
		snprintf(err, errlen,
		         "migration %s: too late to cancel, the hypervisor has completed it; the "
		         "stream is being seen through",
		         m->id);
		rc = -EALREADY;
	} else if (m != NULL) {
		m->cancel = true;
		*result = json_pack("{s:s, s:b}", "id", m->id, "cancelling", 1);
	} else {
		rc = -EINVAL;
	}
	pthread_mutex_unlock(&ms->lock);
	return rc;
}

static int m_list(const json_t *params, json_t **result, void *arg, char *err, size_t errlen)
{
	(void)params, (void)err, (void)errlen;
	struct cp_migrations *ms = arg;
	reap(ms);
	json_t *a = json_array();
	pthread_mutex_lock(&ms->lock);
	for (unsigned s = 1; s <= ms->next_seq; s++)
		for (unsigned i = 0; i < MAX_MIGRATIONS; i++)
			if (ms->m[i].used && ms->m[i].seq == s)
				json_array_append_new(a, mig_json(&ms->m[i], false));
	pthread_mutex_unlock(&ms->lock);
	*result = json_pack("{s:o}", "migrations", a);
	return 0;
}

static const struct nc_ctl_param start_params[] = {
        {"vm", NC_CTL_STRING, true,
         "the source QEMU's QMP socket (path), or libvirt:DOMAIN (this host's libvirtd)"},
        {"to", NC_CTL_STRING, true, "destination host, a name in controlplane.peers"},
        {"dest", NC_CTL_STRING, false,
         "where the destination QEMU listens there (unix:PATH); libvirt: optional, the "
         "socket path on both hosts"},
        {"channels", NC_CTL_INT, false,
         "multifd channels (0: plain precopy); libvirt: parallel connections"},
        {"rate_mbps", NC_CTL_NUMBER, false, "cap of the session's rate, Mbit/s (0: none)"},
        {"codec", NC_CTL_STRING, false, "hde (default: HDE-code the streams) or none"},
        {NULL, 0, false, NULL},
};
static const struct nc_ctl_param id_params[] = {
        {"id", NC_CTL_STRING, false, "migration id or VM (default: the latest)"},
        {NULL, 0, false, NULL},
};
static const struct nc_ctl_param cancel_params[] = {
        {"id", NC_CTL_STRING, true, "migration id or VM"},
        {NULL, 0, false, NULL},
};

static const struct nc_ctl_method migrate_methods[] = {
        {"migrate.start", "migrate a VM to a peer host through the appliances", start_params,
         m_start},
        {"migrate.status", "a migration's state, progress, times and digests", id_params, m_status},
        {"migrate.cancel", "cancel a running migration (the source VM keeps running)",
         cancel_params, m_cancel},
        {"migrate.list", "migrations, running and finished", NULL, m_list},
        {NULL, NULL, NULL, NULL},
};

static int migrations_init(void *arg, struct nc_init_ctx *ctx, char *err, size_t errlen)
{
	(void)ctx;
	struct cp_migrations *ms = arg;
	int rc = nc_ctl_register_all(nc_app_ctl(ms->cp->app), migrate_methods, ms);
	if (rc)
		snprintf(err, errlen, "cannot register migrate methods: %s", strerror(-rc));
	return rc;
}

static void migrations_shutdown(void *arg)
{
	struct cp_migrations *ms = arg;
	pthread_mutex_lock(&ms->lock);
	ms->stopping = true;
	for (unsigned i = 0; i < MAX_MIGRATIONS; i++)
		if (ms->m[i].used && !finished(ms->m[i].state))
			ms->m[i].cancel = true;
	pthread_mutex_unlock(&ms->lock);
	for (unsigned i = 0; i < MAX_MIGRATIONS; i++) {
		struct mig *m = &ms->m[i];
		if (m->used && m->joinable) {
			pthread_join(m->thread, NULL);
			m->joinable = false;
		}
	}
}

unsigned cp_migrate_running(struct cp *cp)
{
	struct cp_migrations *ms = cp->migrations_mem;
	unsigned n = 0;
	if (ms == NULL)
		return 0;
	pthread_mutex_lock(&ms->lock);
	for (unsigned i = 0; i < MAX_MIGRATIONS; i++)
		n += ms->m[i].used && !finished(ms->m[i].state);
	pthread_mutex_unlock(&ms->lock);
	return n;
}

static enum nc_health migrations_health(void *arg, char *msg, size_t msglen)
{
	struct cp_migrations *ms = arg;
	unsigned running = 0, failed = 0;
	pthread_mutex_lock(&ms->lock);
	for (unsigned i = 0; i < MAX_MIGRATIONS; i++) {
		if (!ms->m[i].used)
			continue;
		running += !finished(ms->m[i].state);
		failed += ms->m[i].state == MIG_FAILED;
	}
	pthread_mutex_unlock(&ms->lock);
	snprintf(msg, msglen, "%u running, %u failed of the last %d", running, failed,
	         MAX_MIGRATIONS);
	return NC_HEALTH_OK;
}

int cp_migrate_component(struct cp *cp)
{
	static const char *const deps[] = {"peers", NULL};
	struct cp_migrations *ms = calloc(1, sizeof(*ms));
	if (ms == NULL)
		return -ENOMEM;
	ms->cp = cp;
	pthread_mutex_init(&ms->lock, NULL);
	cp->migrations_mem = ms;
	const struct nc_component c = {
	        .name = "migrations",
	        .phase = NC_PHASE_DWCP,
	        .deps = deps,
	        .init = migrations_init,
	        .health = migrations_health,
	        .shutdown = migrations_shutdown,
	        .arg = ms,
	        .timeout_ms = 1000,
	};
	return nc_app_add(cp->app, &c);
}

void cp_migrate_free(struct cp_migrations *ms)
{
	if (ms == NULL)
		return;
	pthread_mutex_destroy(&ms->lock);
	free(ms);
}
