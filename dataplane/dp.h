/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp: the dataplane process's state, shared by its modules (internal to
 * dataplane/). Nothing here is in shared memory: what the control plane sees
 * is in nc_abi.h.
 */
#ifndef DP_H
#define DP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "nc_abi.h"
#include "nc_app.h"
#include "nc_drv.h"

struct rte_mempool;
struct rte_ring;
struct rte_memzone;

/* Why a worker dropped a received packet: the enum and the names come from
 * one list. (Workers transmit through AMST, whose own counters hold what the
 * port would not take: status' amst.drops.tx_dropped.) */
#define DP_FOREACH_DROP(X)                                                                         \
	X(UNCLAIMED, "unclaimed", "no session claims the packet (no transport yet)")

enum dp_drop {
#define DP_DROP_ENUM(sym, name, help) DP_DROP_##sym,
	DP_FOREACH_DROP(DP_DROP_ENUM)
#undef DP_DROP_ENUM
	        DP_DROP_COUNT,
};

extern const char *const dp_drop_names[DP_DROP_COUNT];

struct dp_port {
	struct nc_drv_port spec;
	uint16_t port_id;
	uint16_t n_queues;
	bool started;
};

struct dp_worker {
	unsigned lcore_id;
	unsigned index;
	bool service;   /* handles the command ring, stats and heartbeat */
	uint16_t n_rxq; /* (port, queue) pairs this worker polls */
	uint16_t rxq_port[NC_MAX_PORTS * 4];
	uint16_t rxq_queue[NC_MAX_PORTS * 4];
	uint64_t drops[DP_DROP_COUNT];
} __attribute__((aligned(64)));

struct dp {
	struct nc_app *app;
	struct nc_config *cfg;
	unsigned n_workers;
	struct dp_worker workers[NC_MAX_WORKERS];
	unsigned n_ports;
	struct dp_port ports[NC_MAX_PORTS];
	struct rte_mempool *pool;
	unsigned mbuf_room; /* data room of a packet buffer: one frame of amst.mtu, and
	                       what every port's PMD needs (nc_drv_fit_mtu) */
	struct rte_ring *cmd_ring;
	struct rte_ring *evt_ring;
	const struct rte_memzone *stats_mz;
	struct nc_stats_shm *stats;
	/* Tunables the workers read on every loop (set by apply callbacks). */
	_Atomic uint32_t poll_mode;
	_Atomic uint32_t idle_polls;
	_Atomic uint32_t sleep_max_us;
	_Atomic bool stop;
	bool workers_running;
	bool eal_up;
	void *eal_args; /* argv given to rte_eal_init, freed after rte_eal_cleanup */
};

/* Components, one per module; each registers its own control methods. */
int dp_eal_component(struct dp *dp);
int dp_port_component(struct dp *dp);
int dp_shm_component(struct dp *dp);
int dp_worker_component(struct dp *dp);
int dp_telemetry_component(struct dp *dp);

/** Handle pending commands from the control plane (service worker); returns how many. */
unsigned dp_shm_handle_cmds(struct dp *dp);
/** Name the ports in the stats memzone (once both exist). */
void dp_port_publish(struct dp *dp);
/** Copy port counters into the stats memzone (service worker, ~10 Hz). */
void dp_port_refresh_stats(struct dp *dp);
/** Fill a JSON object with the ports' state and counters. */
json_t *dp_port_json(const struct dp *dp);
/** The workers' counters as JSON. */
json_t *dp_worker_json(const struct dp *dp);

uint64_t dp_now_ns(void);

#endif /* DP_H */
