/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp_amst: AMST sessions in the dataplane (see dp_amst.c). All of these run
 * on the service worker, which owns every session.
 */
#ifndef DP_AMST_H
#define DP_AMST_H

#include <stdint.h>

#include <jansson.h>

#include "nc_abi.h"

struct dp;
struct rte_mbuf;

/** Declare the "amst" component (phase dwcp; disabled without amst.ip). */
int dp_amst_component(struct dp *dp);

/** Take received packets (consumed: freed or sent back as ARP replies). */
unsigned dp_amst_rx(struct dp *dp, struct rte_mbuf **pkts, unsigned n, uint64_t now_ns);

/** Events, host sockets, timers and transmission; returns work done. */
unsigned dp_amst_run(struct dp *dp, uint64_t now_ns);

/** When a session next needs dp_amst_run (CLOCK_MONOTONIC ns), UINT64_MAX if none. */
uint64_t dp_amst_next_ns(struct dp *dp, uint64_t now_ns);

/** The fd an idle worker may wait on for host socket activity, or -1. */
int dp_amst_wait_fd(struct dp *dp);

/** A session command from the control plane. 0 or -errno with a message. */
int dp_amst_cmd(struct dp *dp, struct nc_msg *m, char *err, size_t errlen);

/** Copy the sessions' counters into the stats memzone. */
void dp_amst_publish(struct dp *dp);

/** AMST's state and drop counters as JSON, for status. */
json_t *dp_amst_json(const struct dp *dp);

#endif /* DP_AMST_H */
