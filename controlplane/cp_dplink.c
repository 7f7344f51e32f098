/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cp_dplink: the control plane's link to the dataplane through shared memory
 * (nc_abi.h). Looks up the rings and the stats memzone and checks the ABI;
 * sends commands and matches replies by sequence number; forwards run-time
 * changes of dataplane.* keys; serves dp.ping. A request polls the event ring
 * itself while it waits (backing off from 10 us to 200 us), so nothing polls
 * when nobody waits.
 *
 * A watcher notices the dataplane going away (controlplane.reattach): once no
 * migration runs, it stops the process, which main() re-executes to wait
 * for the next dataplane (a DPDK secondary attaches once, and while it is
 * attached a new primary cannot start).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_errno.h>
#include <rte_memzone.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#define NC_LOG_MODULE "dplink"
#include "cp.h"
#include "nc_log.h"

#define MAX_WAITERS 32
#define WATCH_NS    200000000ull
/* Once the dataplane is gone and no migration runs, the last statuses stay
 * readable this long before the restart; migrations get at most
 * REATTACH_MAX_WAIT_NS to end. */
#define REATTACH_GRACE_NS    3000000000ull
#define REATTACH_MAX_WAIT_NS 60000000000ull

struct waiter {
	uint64_t seq; /* 0: free */
	bool done;
	struct nc_msg reply;
};

struct cp_dplink {
	struct cp *cp;
	struct rte_ring *cmd;
	struct rte_ring *evt;
	const struct nc_stats_shm *stats;
	pthread_mutex_t lock;
	uint64_t next_seq;
	struct waiter waiters[MAX_WAITERS];
	uint64_t sent, replies, timeouts, stray;
	uint32_t dp_pid; /* the dataplane attached to (its memzone may be gone) */
	pthread_t watcher;
	bool watching;
	bool stop; /* atomic: the watcher ends */
};

static bool pid_gone(uint32_t pid);

/* How much longer than its deadline a command's reply is waited for. */
#define DEADLINE_GRACE_MS 500ull

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Drain the event ring into the waiters. Called with the lock held. */
static void drain_events(struct cp_dplink *l)
{
	struct nc_msg msgs[16];
	unsigned n;
	while ((n = rte_ring_sc_dequeue_burst_elem(l->evt, msgs, sizeof(msgs[0]), 16, NULL)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			bool matched = false;
			for (unsigned w = 0; w < MAX_WAITERS; w++) {
				if (l->waiters[w].seq == msgs[i].seq && !l->waiters[w].done) {
					l->waiters[w].reply = msgs[i];
					l->waiters[w].done = true;
					matched = true;
					break;
				}
			}
			if (matched)
				l->replies++;
			else
				l->stray++; /* a reply to a request that timed out */
		}
	}
}

int cp_dplink_request(struct cp_dplink *l, struct nc_msg *req, struct nc_msg *reply, int timeout_ms)
{
	if (l == NULL || l->cmd == NULL)
		return -ENOTCONN;
	pthread_mutex_lock(&l->lock);
	struct waiter *w = NULL;
	for (unsigned i = 0; i < MAX_WAITERS && w == NULL; i++)
		if (l->waiters[i].seq == 0)
			w = &l->waiters[i];
	if (w == NULL) {
		pthread_mutex_unlock(&l->lock);
		return -EBUSY;
	}
	req->seq = ++l->next_seq;
	req->t_send_ns = now_ns();
	req->deadline_ns = req->t_send_ns + (uint64_t)timeout_ms * 1000000ull;
	*w = (struct waiter){.seq = req->seq};
	/* The command ring is multi-producer: no lock needed, but we hold it anyway. */
	if (rte_ring_mp_enqueue_elem(l->cmd, req, sizeof(*req)) != 0) {
		w->seq = 0;
		pthread_mutex_unlock(&l->lock);
		return -ENOBUFS;
	}
	l->sent++;
	pthread_mutex_unlock(&l->lock);

	/* The dataplane acts on a command only before its deadline; one it took
	 * up just in time still gets its answer here. */
	uint64_t deadline = req->deadline_ns + DEADLINE_GRACE_MS * 1000000ull;
	unsigned backoff_us = 10;
	int rc = -ETIMEDOUT;
	for (;;) {
		pthread_mutex_lock(&l->lock);
		drain_events(l);
		if (w->done) {
			*reply = w->reply;
			w->seq = 0;
			pthread_mutex_unlock(&l->lock);
			rc = 0;
			break;
		}
		if (now_ns() >= deadline) {
			w->seq = 0;
			l->timeouts++;
			pthread_mutex_unlock(&l->lock);
			break;
		}
		pthread_mutex_unlock(&l->lock);
		struct timespec ts = {.tv_nsec = (long)backoff_us * 1000};
		nanosleep(&ts, NULL);
		if (backoff_us < 200)
			backoff_us *= 2;
	}
	return rc;
}

static int timeout_ms(const struct cp_dplink *l)
{
	return (int)nc_config_get_int(l->cp->cfg, "controlplane.dp_timeout_ms");
}

static int m_ping(const json_t *params, json_t **result, void *arg, char *err, size_t errlen)
{
	struct cp_dplink *l = arg;
	json_t *jc = json_object_get(params, "count");
	json_int_t count = jc ? json_integer_value(jc) : 1;
	if (count < 1 || count > 1000) {
		snprintf(err, errlen, "dp.ping: count must be in [1, 1000], got %lld",
		         (long long)count);
		return -EINVAL;
	}
	double min = 1e18, max = 0, sum = 0, dp_min = 1e18;
	for (json_int_t i = 0; i < count; i++) {
		struct nc_msg req = {.type = NC_MSG_PING}, rep;
		int rc = cp_dplink_request(l, &req, &rep, timeout_ms(l));
		if (rc != 0) {
			snprintf(err, errlen, "dp.ping: no answer from the dataplane: %s%s",
			         strerror(-rc), rc == -ETIMEDOUT ? " (is novacron-dp alive?)" : "");
			return rc;
		}
		if (rep.type != NC_MSG_PONG) {
			snprintf(err, errlen, "dp.ping: dataplane answered type %u", rep.type);
			return -EPROTO;
		}
		double rtt = (double)(now_ns() - req.t_send_ns) / 1000.0;
		double there = (double)(rep.t_dp_ns - req.t_send_ns) / 1000.0;
		min = rtt < min ? rtt : min;
		max = rtt > max ? rtt : max;
		dp_min = there < dp_min ? there : dp_min;
		sum += rtt;
	}
	*result = json_pack("{s:I, s:f, s:f, s:f, s:f}", "count", count, "rtt_min_us", min,
	                    "rtt_avg_us", sum / (double)count, "rtt_max_us", max, "to_dp_min_us",
	                    dp_min);
	return 0;
}

static const struct nc_ctl_param ping_params[] = {
        {"count", NC_CTL_INT, false, "round trips to make, 1-1000 (default 1)"},
        {NULL, 0, false, NULL},
};

static const struct nc_ctl_method dplink_methods[] = {
        {"dp.ping", "round trips through the shared-memory rings to the dataplane, with latency",
         ping_params, m_ping},
        {NULL, NULL, NULL, NULL},
};

/* Run-time changes of dataplane keys take effect in the dataplane: the
 * apply callback forwards them, and a refusal there refuses the change here. */
static int apply_forward(const struct nc_cfg_def *def, const struct nc_cfg_value *v, void *arg,
                         char *err, size_t errlen)
{
	struct cp_dplink *l = arg;
	struct nc_msg req = {.type = NC_MSG_CONFIG_SET}, rep;
	snprintf(req.u.kv.key, sizeof(req.u.kv.key), "%s", def->name);
	if (v->type == NC_CFG_INT)
		snprintf(req.u.kv.value, sizeof(req.u.kv.value), "%lld", (long long)v->u.i);
	else if (v->type == NC_CFG_BOOL)
		snprintf(req.u.kv.value, sizeof(req.u.kv.value), "%s", v->u.b ? "true" : "false");
	else
		snprintf(req.u.kv.value, sizeof(req.u.kv.value), "%s", v->u.s);
	int rc = cp_dplink_request(l, &req, &rep, timeout_ms(l));
	if (rc != 0) {
		snprintf(err, errlen,
		         "the dataplane did not answer (%s): refused here (the dataplane does "
		         "not act on a command it takes up after its deadline)",
		         strerror(-rc));
		return rc;
	}
	if (rep.status != 0) {
		rep.u.text[sizeof(rep.u.text) - 1] = '\0';
		snprintf(err, errlen, "dataplane refused: %s", rep.u.text);
		return rep.status;
	}
	return 0;
}

void cp_dplink_status(struct cp_dplink *l, json_t *st)
{
	const struct nc_stats_shm *s = l->stats;
	json_object_set_new(st, "attached", json_boolean(s != NULL));
	if (s == NULL)
		return;
	static const char *const states[] = {"booting", "ready", "stopping"};
	uint64_t age = nc_heartbeat_age_ns(s) / 1000000;
	json_object_set_new(st, "pid", json_integer(s->dp_pid));
	json_object_set_new(st, "state", json_string(s->state < 3 ? states[s->state] : "unknown"));
	json_object_set_new(st, "abi_version", json_integer(s->abi_version));
	json_object_set_new(st, "heartbeat_age_ms", json_integer((json_int_t)age));
	json_object_set_new(st, "poll_mode",
	                    json_string(s->poll_mode == NC_POLL_BUSY ? "busy" : "adaptive"));
	json_object_set_new(st, "workers", json_integer(s->n_workers));
	json_object_set_new(st, "commands", json_integer((json_int_t)s->cmds));
	json_t *ports = json_array();
	for (unsigned i = 0; i < s->n_ports && i < NC_MAX_PORTS; i++)
		json_array_append_new(ports,
		                      json_pack("{s:s, s:s, s:b, s:I, s:I}", "name",
		                                s->ports[i].name, "driver", s->ports[i].driver,
		                                "link_up", s->ports[i].link_up, "ipackets",
		                                (json_int_t)s->ports[i].ipackets, "opackets",
		                                (json_int_t)s->ports[i].opackets));
	json_object_set_new(st, "ports", ports);
	pthread_mutex_lock(&l->lock);
	json_object_set_new(st, "link",
	                    json_pack("{s:I, s:I, s:I, s:I}", "sent", (json_int_t)l->sent,
	                              "replies", (json_int_t)l->replies, "timeouts",
	                              (json_int_t)l->timeouts, "stray", (json_int_t)l->stray));
	pthread_mutex_unlock(&l->lock);
}

static void *watch_thread(void *arg)
{
	struct cp_dplink *l = arg;
	uint64_t gone_ns = 0, idle_ns = 0;
	while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE)) {
		struct timespec ts = {.tv_nsec = (long)WATCH_NS};
		nanosleep(&ts, NULL);
		uint64_t now = now_ns();
		if (gone_ns == 0) {
			if (!pid_gone(l->dp_pid))
				continue;
			gone_ns = now;
			NC_LOG(WARN,
			       "dataplane pid %u is gone: once no migration runs, the control "
			       "plane "
			       "restarts itself to wait for the next one (controlplane.reattach)",
			       l->dp_pid);
		}
		if (cp_migrate_running(l->cp) > 0 && now - gone_ns < REATTACH_MAX_WAIT_NS) {
			idle_ns = 0;
			continue;
		}
		if (idle_ns == 0)
			idle_ns = now;
		if (now - idle_ns < REATTACH_GRACE_NS)
			continue;
		__atomic_store_n(&l->cp->reattach, true, __ATOMIC_RELEASE);
		nc_app_request_stop(l->cp->app);
		break;
	}
	return NULL;
}

static int dplink_init(void *arg, struct nc_init_ctx *ctx, char *err, size_t errlen)
{
	(void)ctx;
	struct cp_dplink *l = arg;
	struct rte_ring *cmd = rte_ring_lookup(NC_RING_CMD);
	struct rte_ring *evt = rte_ring_lookup(NC_RING_EVT);
	const struct rte_memzone *mz = rte_memzone_lookup(NC_MZ_STATS);
	if (cmd == NULL || evt == NULL || mz == NULL) {
		snprintf(err, errlen, "dataplane rings/memzone not found (%s %s %s)",
		         cmd ? "" : NC_RING_CMD, evt ? "" : NC_RING_EVT, mz ? "" : NC_MZ_STATS);
		return -ENOENT;
	}
	const struct nc_stats_shm *s = mz->addr;
	if (mz->len < sizeof(*s) || __atomic_load_n(&s->magic, __ATOMIC_ACQUIRE) != NC_ABI_MAGIC ||
	    s->abi_version != NC_ABI_VERSION || s->size != sizeof(*s)) {
		snprintf(err, errlen,
		         "dataplane ABI mismatch: it has version %u (size %u), we speak %u (size "
		         "%zu)",
		         s->abi_version, s->size, NC_ABI_VERSION, sizeof(*s));
		return -EPROTO;
	}
	/* Drop replies addressed to an earlier control plane. */
	struct nc_msg junk[16];
	while (rte_ring_sc_dequeue_burst_elem(evt, junk, sizeof(junk[0]), 16, NULL) > 0)
		;
	l->cmd = cmd;
	l->evt = evt;
	l->stats = s;
	int rc = nc_ctl_register_all(nc_app_ctl(l->cp->app), dplink_methods, l);
	if (rc != 0) {
		snprintf(err, errlen, "cannot register dp methods: %s", strerror(-rc));
		return rc;
	}
	static const char *const forwarded[] = {"dataplane.poll_mode", "dataplane.idle_polls",
	                                        "dataplane.sleep_max_us", NULL};
	for (const char *const *k = forwarded; *k; k++)
		nc_config_set_apply(l->cp->cfg, *k, apply_forward, l);
	l->dp_pid = s->dp_pid;
	__atomic_store_n(&l->stop, false, __ATOMIC_RELEASE);
	l->watching = nc_config_get_bool(l->cp->cfg, "controlplane.reattach") &&
	              pthread_create(&l->watcher, NULL, watch_thread, l) == 0;
	l->cp->link = l;
	NC_LOG(INFO, "attached to dataplane pid %u (ABI v%u)", s->dp_pid, s->abi_version);
	return 0;
}

static void dplink_shutdown(void *arg)
{
	struct cp_dplink *l = arg;
	static const char *const forwarded[] = {"dataplane.poll_mode", "dataplane.idle_polls",
	                                        "dataplane.sleep_max_us", NULL};
	for (const char *const *k = forwarded; *k; k++)
		nc_config_set_apply(l->cp->cfg, *k, NULL, NULL);
	if (l->watching) {
		__atomic_store_n(&l->stop, true, __ATOMIC_RELEASE);
		pthread_join(l->watcher, NULL);
		l->watching = false;
	}
	l->cp->link = NULL;
	l->cmd = l->evt = NULL;
	l->stats = NULL;
}

static enum nc_health dplink_health(void *arg, char *msg, size_t msglen)
{
	struct cp_dplink *l = arg;
	const struct nc_stats_shm *s = l->stats;
	if (s == NULL) {
		snprintf(msg, msglen, "not attached");
		return NC_HEALTH_FAILED;
	}
	uint64_t age = nc_heartbeat_age_ns(s) / 1000000;
	if (pid_gone(l->dp_pid)) {
		snprintf(msg, msglen, "dataplane pid %u is gone%s", l->dp_pid,
		         nc_config_get_bool(l->cp->cfg, "controlplane.reattach")
		                 ? " (the control plane restarts to wait for the next one)"
		                 : " (restart the control plane after a new dataplane)");
		return NC_HEALTH_FAILED;
	}
	if (s->state != NC_DP_READY) {
		snprintf(msg, msglen, "dataplane pid %u is %s", s->dp_pid,
		         s->state == NC_DP_STOPPING ? "stopping" : "booting");
		return NC_HEALTH_FAILED;
	}
	if (age >= CP_DPLINK_SILENT_MS) {
		snprintf(msg, msglen, "dataplane pid %u silent for %llu ms", s->dp_pid,
		         (unsigned long long)age);
		return NC_HEALTH_FAILED;
	}
	snprintf(msg, msglen, "dataplane pid %u ready, heartbeat %llu ms ago", s->dp_pid,
	         (unsigned long long)age);
	return NC_HEALTH_OK;
}

int cp_dplink_component(struct cp *cp)
{
	static const char *const deps[] = {"eal", NULL};
	struct cp_dplink *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	l->cp = cp;
	cp->dplink_mem = l;
	pthread_mutex_init(&l->lock, NULL);
	const struct nc_component c = {
	        .name = "dplink",
	        .phase = NC_PHASE_CORE,
	        .deps = deps,
	        .init = dplink_init,
	        .health = dplink_health,
	        .shutdown = dplink_shutdown,
	        .arg = l,
	        .timeout_ms = 2000,
	};
	return nc_app_add(cp->app, &c);
}

void cp_dplink_free(struct cp_dplink *l)
{
	if (l == NULL)
		return;
	pthread_mutex_destroy(&l->lock);
	free(l);
}

/* Is process @p pid gone (or a zombie)? A killed dataplane is noticed at
 * once, before its heartbeat grows old. */
static bool pid_gone(uint32_t pid)
{
	if (pid == 0)
		return false;
	if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
		return true;
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *e = strrchr(buf, ')');
	return e != NULL && e[1] == ' ' && (e[2] == 'Z' || e[2] == 'X');
}

bool cp_dplink_alive(const struct cp_dplink *l)
{
	const struct nc_stats_shm *s = l ? l->stats : NULL;
	if (s == NULL || __atomic_load_n(&s->state, __ATOMIC_RELAXED) != NC_DP_READY)
		return false;
	if (pid_gone(l->dp_pid))
		return false;
	/* A dead dataplane is caught above at once; a living one may be silent
	 * for a while (CP_DPLINK_SILENT_MS). */
	return nc_heartbeat_age_ns(s) < CP_DPLINK_SILENT_MS * 1000000ull;
}

void cp_dplink_why(const struct cp_dplink *l, char *buf, size_t len)
{
	const struct nc_stats_shm *s = l ? l->stats : NULL;
	if (s == NULL) {
		snprintf(buf, len, "not attached to a dataplane");
		return;
	}
	uint32_t state = __atomic_load_n(&s->state, __ATOMIC_RELAXED);
	snprintf(buf, len, "pid %u%s, state %u%s, heartbeat %lld ms ago", l->dp_pid,
	         pid_gone(l->dp_pid) ? " (gone)" : "", state,
	         state == NC_DP_READY ? " (ready)" : "",
	         (long long)(nc_heartbeat_age_ns(s) / 1000000));
}

const struct nc_stats_shm *cp_dplink_stats(const struct cp_dplink *l)
{
	return l ? l->stats : NULL;
}
