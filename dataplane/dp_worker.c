/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp_worker: the poll-mode workers, one per worker lcore. Each polls its
 * (port, queue) pairs; the first worker also serves the command ring, the
 * heartbeat and the stats refresh. Polling is adaptive (dp_poll.h): flat out
 * under traffic, backing off to sleep when idle. No allocation and no logging
 * in the loop: counters only.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#define NC_LOG_MODULE "worker"
#include "dp.h"
#include "dp_amst.h"
#include "dp_poll.h"
#include "nc_log.h"

#define MAX_BURST       512
#define STATS_PERIOD_NS 100000000ull /* port counters to shared memory, 10 Hz */

const char *const dp_drop_names[DP_DROP_COUNT] = {
#define DP_DROP_NAME(sym, name, help) [DP_DROP_##sym] = name,
        DP_FOREACH_DROP(DP_DROP_NAME)
#undef DP_DROP_NAME
};

/* The shortest nap of a worker whose session waits for a timer (worker_main). */
#define ACTIVE_NAP_MIN_NS 30000u

/* Workers get their dataplane through this (rte_eal_remote_launch takes one pointer). */
static struct dp *the_dp;

/* Sleep, or wait on @p fd (host sockets) so that their traffic ends the nap. */
static void sleep_us(uint32_t us, int fd)
{
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};
	if (fd >= 0) {
		struct epoll_event ev;
		/* A kernel before 5.11 (ENOSYS) or a seccomp profile that does
		 * not know the call (EPERM) fails it at once: sleep instead,
		 * rather than spin. */
		if (epoll_pwait2(fd, &ev, 1, &ts, NULL) >= 0 || errno == EINTR)
			return;
	}
	nanosleep(&ts, NULL);
}

static int worker_main(void *arg)
{
	struct dp_worker *w = arg;
	struct dp *dp = the_dp;
	struct nc_worker_stats *st = &dp->stats->workers[w->index];
	const uint16_t burst = (uint16_t)nc_config_get_int(dp->cfg, "dataplane.rx_burst");
	struct rte_mbuf *pkts[MAX_BURST];
	struct dp_poll poll = {0};
	uint64_t next_stats = 0;
	const int wait_fd = w->service ? dp_amst_wait_fd(dp) : -1;

	while (!atomic_load_explicit(&dp->stop, memory_order_relaxed)) {
		uint32_t work = 0;
		for (uint16_t i = 0; i < w->n_rxq; i++) {
			uint16_t n = rte_eth_rx_burst(w->rxq_port[i], w->rxq_queue[i], pkts, burst);
			if (n == 0)
				continue;
			work += n;
			st->rx_pkts += n;
			if (wait_fd >= 0) {
				dp_amst_rx(dp, pkts, n, dp_now_ns());
				continue;
			}
			/* No session runs here: count and drop. */
			w->drops[DP_DROP_UNCLAIMED] += n;
			st->drops += n;
			rte_pktmbuf_free_bulk(pkts, n);
		}
		uint64_t next_due = UINT64_MAX;
		if (w->service) {
			work += dp_shm_handle_cmds(dp);
			uint64_t now = dp_now_ns();
			work += dp_amst_run(dp, now);
			next_due = dp_amst_next_ns(dp, now);
			dp->stats->heartbeat++;
			__atomic_store_n(&dp->stats->heartbeat_ns, now, __ATOMIC_RELEASE);
			if (now >= next_stats) {
				dp_port_refresh_stats(dp);
				dp_amst_publish(dp);
				next_stats = now + STATS_PERIOD_NS;
			}
			if (next_due <= now)
				work++; /* a session is due: no nap */
		}
		st->loops++;
		if (work)
			st->busy_loops++;
		const struct dp_poll_cfg pc = {
		        .mode = atomic_load_explicit(&dp->poll_mode, memory_order_relaxed),
		        .idle_polls = atomic_load_explicit(&dp->idle_polls, memory_order_relaxed),
		        .sleep_max_us =
		                atomic_load_explicit(&dp->sleep_max_us, memory_order_relaxed),
		};
		uint32_t us = dp_poll_next(&poll, work, &pc);
		if (us == 0 && work == 0 && pc.mode == NC_POLL_ADAPTIVE && next_due != UINT64_MAX) {
			/* A session runs but has nothing to do before its next timer (the
			 * pacer's next burst, an ACK, a probe; dp_amst_next_ns keeps it
			 * close while the session moves data): nap until then instead of
			 * spinning. On a machine whose cores QEMU shares, a spinning
			 * worker takes the CPU the migration itself needs. Shorter waits
			 * than a wake-up costs are spun. */
			uint64_t now = dp_now_ns();
			if (next_due > now + ACTIVE_NAP_MIN_NS) {
				uint64_t left = (next_due - now) / 1000;
				us = left < pc.sleep_max_us ? (uint32_t)left : pc.sleep_max_us;
			}
		}
		if (us && next_due != UINT64_MAX) {
			/* Wake in time for the session that is due next. */
			uint64_t now = dp_now_ns();
			uint64_t left = next_due > now ? (next_due - now) / 1000 : 0;
			if (left < us)
				us = left ? (uint32_t)left : 0;
		}
		st->cur_sleep_us = us;
		if (us) {
			st->sleeps++;
			st->sleep_ns += (uint64_t)us * 1000;
			sleep_us(us, wait_fd);
		}
	}
	return 0;
}

static int workers_init(void *arg, struct nc_init_ctx *ctx, char *err, size_t errlen)
{
	(void)ctx;
	struct dp *dp = arg;
	the_dp = dp;
	dp_port_publish(dp);
	atomic_store(&dp->stop, false);
	for (unsigned i = 0; i < dp->n_workers; i++) {
		int rc = rte_eal_remote_launch(worker_main, &dp->workers[i],
		                               dp->workers[i].lcore_id);
		if (rc != 0) {
			snprintf(err, errlen, "cannot launch worker on lcore %u: %s",
			         dp->workers[i].lcore_id, strerror(-rc));
			atomic_store(&dp->stop, true);
			rte_eal_mp_wait_lcore();
			return rc;
		}
	}
	dp->workers_running = true;
	dp->stats->poll_mode = atomic_load(&dp->poll_mode);
	dp->stats->state = NC_DP_READY;
	return 0;
}

static void workers_shutdown(void *arg)
{
	struct dp *dp = arg;
	if (!dp->workers_running)
		return;
	dp->stats->state = NC_DP_STOPPING;
	atomic_store(&dp->stop, true);
	for (unsigned i = 0; i < dp->n_workers; i++)
		rte_eal_wait_lcore(dp->workers[i].lcore_id);
	dp->workers_running = false;
}

static enum nc_health workers_health(void *arg, char *msg, size_t msglen)
{
	struct dp *dp = arg;
	uint64_t age_ms = nc_heartbeat_age_ns(dp->stats) / 1000000;
	/* The service worker beats at least once per sleep_max_us (<= 100 ms). */
	if (dp->workers_running && age_ms > 1000) {
		snprintf(msg, msglen, "service worker silent for %llu ms",
		         (unsigned long long)age_ms);
		return NC_HEALTH_FAILED;
	}
	snprintf(msg, msglen, "%u workers, %s polling", dp->n_workers,
	         atomic_load(&dp->poll_mode) == NC_POLL_BUSY ? "busy" : "adaptive");
	return NC_HEALTH_OK;
}

json_t *dp_worker_json(const struct dp *dp)
{
	json_t *a = json_array();
	for (unsigned i = 0; i < dp->n_workers; i++) {
		const struct dp_worker *w = &dp->workers[i];
		json_t *o = json_pack("{s:i, s:b, s:i}", "lcore", (int)w->lcore_id, "service",
		                      w->service, "rx_queues", (int)w->n_rxq);
		if (dp->stats != NULL) {
			const struct nc_worker_stats *st = &dp->stats->workers[i];
			json_object_set_new(o, "loops", json_integer((json_int_t)st->loops));
			json_object_set_new(o, "busy_loops",
			                    json_integer((json_int_t)st->busy_loops));
			json_object_set_new(o, "sleeps", json_integer((json_int_t)st->sleeps));
			json_object_set_new(o, "sleep_us",
			                    json_integer((json_int_t)st->cur_sleep_us));
			json_object_set_new(o, "rx_pkts", json_integer((json_int_t)st->rx_pkts));
		}
		json_t *drops = json_object();
		for (unsigned d = 0; d < DP_DROP_COUNT; d++)
			json_object_set_new(drops, dp_drop_names[d],
			                    json_integer((json_int_t)w->drops[d]));
		json_object_set_new(o, "drops", drops);
		json_array_append_new(a, o);
	}
	return a;
}

/* Run-time tunables: the same apply path for the file, --set and config.set. */
static int apply_poll(const struct nc_cfg_def *def, const struct nc_cfg_value *v, void *arg,
                      char *err, size_t errlen)
{
	(void)err, (void)errlen;
	struct dp *dp = arg;
	if (strcmp(def->name, "dataplane.poll_mode") == 0) {
		uint32_t mode = strcmp(v->u.s, "busy") == 0 ? NC_POLL_BUSY : NC_POLL_ADAPTIVE;
		atomic_store(&dp->poll_mode, mode);
		if (dp->stats)
			dp->stats->poll_mode = mode;
	} else if (strcmp(def->name, "dataplane.idle_polls") == 0) {
		atomic_store(&dp->idle_polls, (uint32_t)v->u.i);
	} else {
		atomic_store(&dp->sleep_max_us, (uint32_t)v->u.i);
	}
	NC_LOG(INFO, "%s applied", def->name);
	return 0;
}

int dp_worker_component(struct dp *dp)
{
	static const char *const deps[] = {"ports", "shm", NULL};
	atomic_store(&dp->poll_mode,
	             strcmp(nc_config_get_str(dp->cfg, "dataplane.poll_mode"), "busy") == 0
	                     ? NC_POLL_BUSY
	                     : NC_POLL_ADAPTIVE);
	atomic_store(&dp->idle_polls, (uint32_t)nc_config_get_int(dp->cfg, "dataplane.idle_polls"));
	atomic_store(&dp->sleep_max_us,
	             (uint32_t)nc_config_get_int(dp->cfg, "dataplane.sleep_max_us"));
	nc_config_set_apply(dp->cfg, "dataplane.poll_mode", apply_poll, dp);
	nc_config_set_apply(dp->cfg, "dataplane.idle_polls", apply_poll, dp);
	nc_config_set_apply(dp->cfg, "dataplane.sleep_max_us", apply_poll, dp);
	const struct nc_component c = {
	        .name = "workers",
	        .phase = NC_PHASE_SERVICE,
	        .deps = deps,
	        .init = workers_init,
	        .health = workers_health,
	        .shutdown = workers_shutdown,
	        .arg = dp,
	        .timeout_ms = 5000,
	};
	return nc_app_add(dp->app, &c);
}
