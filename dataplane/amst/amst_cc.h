/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * amst_cc: AMST's congestion controller, a model of the path in the manner of
 * BBR: the bottleneck bandwidth is the windowed maximum of delivery-rate
 * samples over about ten round trips, the propagation delay the windowed
 * minimum RTT over ten seconds. Sending is paced at gain x bandwidth and
 * bounded by a window of gain x bandwidth-delay product. States: STARTUP
 * (gain 2.89 until the bandwidth stops growing for three rounds), DRAIN,
 * PROBE_BW (gains 1.25, 0.75, then 1 for six rounds) and PROBE_RTT. Random
 * loss does not halve anything: on long lossy paths loss says little about
 * congestion. Only a round that loses more than a fifth of what it sent
 * lowers the bandwidth estimate, so a collapsing path is still respected;
 * STARTUP also ends when a round loses more than 3% (its overshoot filled the
 * bottleneck's queue), as BBRv2 does. An operator's rate cap bounds the
 * pacing rate.
 */
#ifndef AMST_CC_H
#define AMST_CC_H

#include <stdbool.h>
#include <stdint.h>

#define AMST_CC_BW_ROUNDS 10

enum amst_cc_state {
	AMST_CC_STARTUP,
	AMST_CC_DRAIN,
	AMST_CC_PROBE_BW,
	AMST_CC_PROBE_RTT,
};

/** What one ACK taught us (delivery rate estimation). */
struct amst_rate_sample {
	uint64_t delivery_rate;   /**< bytes/s, 0 if no valid sample */
	uint64_t rtt_ns;          /**< RTT of the newest acked packet, 0 if none */
	uint64_t prior_delivered; /**< connection's delivered count when that packet left */
	uint64_t newly_acked;     /**< bytes */
	uint64_t newly_lost;      /**< bytes */
	bool app_limited;
};

struct amst_cc {
	enum amst_cc_state state;
	uint32_t mss;
	uint64_t rate_cap; /**< bytes/s, 0 = none */
	/* model */
	uint64_t bw_round[AMST_CC_BW_ROUNDS]; /**< max delivery rate per counted round */
	uint32_t bw_slot;                     /**< the slot of the last counted round */
	uint64_t bw_slot_round;               /**< round_count of that round (0: none yet) */
	uint64_t btl_bw;                      /**< bytes/s */
	uint64_t min_rtt_ns;
	uint64_t min_rtt_stamp;
	/* rounds */
	uint64_t delivered; /**< bytes delivered so far (mirrors the connection) */
	uint64_t round_count;
	uint64_t next_round_delivered;
	bool round_start;
	uint64_t round_lost, round_acked;
	/* ACK aggregation (window's allowance) */
	uint64_t ack_epoch_ns, ack_epoch_acked;
	uint64_t extra_acked[2]; /**< most excess per slot of EXTRA_ACKED_ROUNDS rounds */
	uint32_t extra_acked_slot;
	uint64_t extra_acked_round;
	/* startup */
	uint64_t full_bw;
	uint32_t full_bw_count;
	bool filled_pipe;
	/* probe bw */
	uint32_t cycle_index;
	uint64_t cycle_stamp;
	/* probe rtt */
	uint64_t probe_rtt_done;
	bool probe_rtt_round_done;
	uint64_t prior_cwnd;
	/* outputs */
	double pacing_gain;
	double cwnd_gain;
	uint64_t pacing_rate; /**< bytes/s */
	uint64_t cwnd;        /**< bytes */
	uint32_t seed;
};

/** Start with @p init_cwnd_pkts packets of window and a first RTT guess. */
void amst_cc_init(struct amst_cc *cc, uint32_t mss, uint32_t init_cwnd_pkts, uint64_t rtt_guess_ns,
                  uint64_t now_ns);

/** Feed an ACK's sample; @p inflight is what is still in flight after it. */
void amst_cc_on_ack(struct amst_cc *cc, const struct amst_rate_sample *rs, uint64_t inflight,
                    uint64_t now_ns);

/** Set or clear (0) the operator's cap, bytes/s. */
void amst_cc_set_cap(struct amst_cc *cc, uint64_t bytes_per_s);

const char *amst_cc_state_name(enum amst_cc_state s);

#endif /* AMST_CC_H */
