/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp_shm: the dataplane's side of the shared-memory interface (nc_abi.h):
 * creates the command and event rings and the stats memzone, and handles the
 * control plane's commands on the service worker.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rte_errno.h>
#include <rte_memzone.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#define NC_LOG_MODULE "shm"
#include "dp.h"
#include "dp_amst.h"
#include "nc_log.h"

#define CMD_BURST 8

static int shm_init(void *arg, struct nc_init_ctx *ctx, char *err, size_t errlen)
{
	(void)ctx;
	struct dp *dp = arg;
	dp->cmd_ring = rte_ring_create_elem(NC_RING_CMD, sizeof(struct nc_msg), NC_RING_SLOTS,
	                                    SOCKET_ID_ANY, RING_F_SC_DEQ);
	dp->evt_ring = rte_ring_create_elem(NC_RING_EVT, sizeof(struct nc_msg), NC_RING_SLOTS,
	                                    SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	dp->stats_mz = rte_memzone_reserve_aligned(NC_MZ_STATS, sizeof(struct nc_stats_shm),
	                                           SOCKET_ID_ANY, 0, NC_ABI_CACHE_LINE);
	if (dp->cmd_ring == NULL || dp->evt_ring == NULL || dp->stats_mz == NULL) {
		snprintf(err, errlen, "cannot create rings or stats memzone: %s",
		         rte_strerror(rte_errno));
		rte_ring_free(dp->cmd_ring);
		rte_ring_free(dp->evt_ring);
		if (dp->stats_mz)
			rte_memzone_free(dp->stats_mz);
		dp->cmd_ring = dp->evt_ring = NULL;
		dp->stats_mz = NULL;
		return -ENOMEM;
	}
	struct nc_stats_shm *s = dp->stats_mz->addr;
	memset(s, 0, sizeof(*s));
	s->abi_version = NC_ABI_VERSION;
	s->size = sizeof(*s);
	s->dp_pid = (uint32_t)getpid();
	s->state = NC_DP_BOOTING;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	s->start_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	s->n_workers = dp->n_workers;
	for (unsigned i = 0; i < dp->n_workers; i++)
		s->workers[i].lcore_id = dp->workers[i].lcore_id;
	/* The magic goes last: a reader that sees it sees a filled header. */
	__atomic_store_n(&s->magic, NC_ABI_MAGIC, __ATOMIC_RELEASE);
	dp->stats = s;
	return 0;
}

static void shm_shutdown(void *arg)
{
	struct dp *dp = arg;
	if (dp->stats)
		dp->stats->state = NC_DP_STOPPING;
	rte_ring_free(dp->cmd_ring);
	rte_ring_free(dp->evt_ring);
	rte_memzone_free(dp->stats_mz);
	dp->cmd_ring = dp->evt_ring = NULL;
	dp->stats_mz = NULL;
	dp->stats = NULL;
}

static enum nc_health shm_health(void *arg, char *msg, size_t msglen)
{
	struct dp *dp = arg;
	snprintf(msg, msglen, "abi v%u, %u commands pending, %u events pending", NC_ABI_VERSION,
	         rte_ring_count(dp->cmd_ring), rte_ring_count(dp->evt_ring));
	return NC_HEALTH_OK;
}

static void reply(struct dp *dp, struct nc_msg *m)
{
	m->t_dp_ns = dp_now_ns();
	if (rte_ring_sp_enqueue_elem(dp->evt_ring, m, sizeof(*m)) != 0)
		dp->stats->cmd_errors++; /* the control plane does not drain its events */
}

/* Answer @p m with an error: @p status and @p text, counted. */
static void reply_error(struct dp *dp, struct nc_msg *m, int status, const char *text)
{
	dp->stats->cmd_errors++;
	m->type = NC_MSG_ERROR;
	m->status = status;
	snprintf(m->u.text, sizeof(m->u.text), "%s", text);
	reply(dp, m);
}

static void handle(struct dp *dp, struct nc_msg *m)
{
	char err[NC_MSG_TEXT_LEN];
	if (m->type != NC_MSG_PING && m->deadline_ns != 0 && dp_now_ns() > m->deadline_ns) {
		/* Its sender has given up and reported it failed: doing it now
		 * would leave the two processes disagreeing. */
		NC_LOG_RL(WARN, "command %u (seq %llu) came %llu ms after its deadline: not done",
		          m->type, (unsigned long long)m->seq,
		          (unsigned long long)((dp_now_ns() - m->deadline_ns) / 1000000));
		reply_error(dp, m, -ETIMEDOUT, "the control plane gave up waiting: not done");
		return;
	}
	switch (m->type) {
	case NC_MSG_PING:
		m->type = NC_MSG_PONG;
		m->status = 0;
		reply(dp, m);
		return;
	case NC_MSG_CONFIG_SET:
		m->u.kv.key[sizeof(m->u.kv.key) - 1] = '\0';
		m->u.kv.value[sizeof(m->u.kv.value) - 1] = '\0';
		err[0] = '\0';
		m->status =
		        nc_config_set(dp->cfg, m->u.kv.key, m->u.kv.value, true, err, sizeof(err));
		m->type = NC_MSG_CONFIG_DONE;
		memcpy(m->u.text, err, sizeof(err));
		if (m->status != 0)
			dp->stats->cmd_errors++;
		reply(dp, m);
		return;
	case NC_MSG_SESSION_OPEN:
	case NC_MSG_SESSION_SET:
	case NC_MSG_SESSION_CLOSE:
		err[0] = '\0';
		m->status = dp_amst_cmd(dp, m, err, sizeof(err));
		m->type = NC_MSG_SESSION_DONE;
		memcpy(m->u.text, err, sizeof(err));
		if (m->status != 0)
			dp->stats->cmd_errors++;
		reply(dp, m);
		return;
	default:
		snprintf(err, sizeof(err), "unknown command type %u", m->type);
		reply_error(dp, m, -ENOTSUP, err);
		return;
	}
}

unsigned dp_shm_handle_cmds(struct dp *dp)
{
	struct nc_msg msgs[CMD_BURST];
	unsigned n = rte_ring_sc_dequeue_burst_elem(dp->cmd_ring, msgs, sizeof(msgs[0]), CMD_BURST,
	                                            NULL);
	for (unsigned i = 0; i < n; i++)
		handle(dp, &msgs[i]);
	dp->stats->cmds += n;
	return n;
}

int dp_shm_component(struct dp *dp)
{
	static const char *const deps[] = {"eal", NULL};
	const struct nc_component c = {
	        .name = "shm",
	        .phase = NC_PHASE_CORE,
	        .deps = deps,
	        .init = shm_init,
	        .health = shm_health,
	        .shutdown = shm_shutdown,
	        .arg = dp,
	        .timeout_ms = 5000,
	};
	return nc_app_add(dp->app, &c);
}
