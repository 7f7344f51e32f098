/* SPDX-License-Identifier: BSD-3-Clause */
/* amst_cc: model-based congestion control (see amst_cc.h). */
#include <string.h>

#include "amst_cc.h"

#define STARTUP_GAIN        2.885 /* 2 / ln 2 */
#define MIN_RTT_WINDOW_NS   10000000000ull
#define PROBE_RTT_NS        200000000ull
#define MIN_CWND_PKTS       4
#define LOSS_THRESH         0.2
#define EXTRA_ACKED_ROUNDS  5          /* rounds one ACK-aggregation slot covers (two slots) */
#define ACK_DELAY_NS        1000000ull /* the receiver's longest ACK delay */
#define STARTUP_LOSS_THRESH 0.03

static const double cycle_gains[8] = {1.25, 0.75, 1, 1, 1, 1, 1, 1};

const char *amst_cc_state_name(enum amst_cc_state s)
{
	switch (s) {
	case AMST_CC_STARTUP:
		return "startup";
	case AMST_CC_DRAIN:
		return "drain";
	case AMST_CC_PROBE_BW:
		return "probe_bw";
	case AMST_CC_PROBE_RTT:
		return "probe_rtt";
	}
	return "?";
}

static uint64_t bdp(const struct amst_cc *cc, double gain)
{
	if (cc->btl_bw == 0 || cc->min_rtt_ns == UINT64_MAX)
		return (uint64_t)cc->mss * 32;
	double b = (double)cc->btl_bw * (double)cc->min_rtt_ns / 1e9;
	return (uint64_t)(b * gain);
}

/* The window also covers ACK aggregation (update_extra_acked): ACKs that a
 * receiver holds back, or sends in a burst after a pause of its worker, ACK
 * more at once than the bandwidth explains; a window of only the
 * bandwidth-delay product (a few packets on a path of a few microseconds)
 * would wait at every such pause. At most what the receiver's longest ACK
 * delay explains at gain x bandwidth (ACK_DELAY_NS), the fixed allowance
 * this measurement replaced: an estimate still growing in STARTUP, or
 * losses, make the ACKs run ahead of it by more than any pause. */
static uint64_t window(const struct amst_cc *cc, double gain)
{
	uint64_t extra =
	        cc->extra_acked[0] > cc->extra_acked[1] ? cc->extra_acked[0] : cc->extra_acked[1];
	uint64_t most = (uint64_t)((double)cc->btl_bw * gain * (double)ACK_DELAY_NS / 1e9);
	return bdp(cc, gain) + (extra < most ? extra : most);
}

/*
 * ACK aggregation, measured: how much more an epoch of ACKs acknowledged than
 * the bandwidth estimate explains over its time. An epoch starts whenever the
 * ACKs fall behind the estimate; the most excess over the last 5 to 10 rounds
 * is kept (two slots of EXTRA_ACKED_ROUNDS). Not a fixed allowance: on memif a
 * 1 ms one let 10 MB queue in the port's ring, where workers that never pause
 * long need a fraction of it.
 */
static void update_extra_acked(struct amst_cc *cc, uint64_t acked, uint64_t now)
{
	if (cc->btl_bw == 0 || acked == 0)
		return;
	if (cc->round_start && cc->round_count - cc->extra_acked_round >= EXTRA_ACKED_ROUNDS) {
		cc->extra_acked_slot ^= 1;
		cc->extra_acked[cc->extra_acked_slot] = 0;
		cc->extra_acked_round = cc->round_count;
	}
	double expected = (double)cc->btl_bw * (double)(now - cc->ack_epoch_ns) / 1e9;
	if (cc->ack_epoch_ns == 0 || (double)cc->ack_epoch_acked <= expected) {
		cc->ack_epoch_ns = now;
		cc->ack_epoch_acked = 0;
		expected = 0;
	}
	cc->ack_epoch_acked += acked;
	double extra = (double)cc->ack_epoch_acked - expected;
	if (extra <= 0)
		return;
	if ((uint64_t)extra > cc->extra_acked[cc->extra_acked_slot])
		cc->extra_acked[cc->extra_acked_slot] = (uint64_t)extra;
}

static void set_outputs(struct amst_cc *cc)
{
	uint64_t rate = (uint64_t)((double)cc->btl_bw * cc->pacing_gain);
	if (cc->btl_bw == 0)
		rate = cc->pacing_rate; /* keep the initial guess */
	if (cc->rate_cap && rate > cc->rate_cap)
		rate = cc->rate_cap;
	if (rate < (uint64_t)cc->mss * 10)
		rate = (uint64_t)cc->mss * 10; /* never stall completely: 10 packets/s */
	cc->pacing_rate = rate;
	uint64_t w = window(cc, cc->cwnd_gain) + 3ull * cc->mss;
	if (cc->state == AMST_CC_PROBE_RTT)
		w = (uint64_t)MIN_CWND_PKTS * cc->mss;
	if (w < (uint64_t)MIN_CWND_PKTS * cc->mss)
		w = (uint64_t)MIN_CWND_PKTS * cc->mss;
	cc->cwnd = w;
}

void amst_cc_init(struct amst_cc *cc, uint32_t mss, uint32_t init_cwnd_pkts, uint64_t rtt_guess_ns,
                  uint64_t now_ns)
{
	memset(cc, 0, sizeof(*cc));
	cc->mss = mss;
	cc->min_rtt_ns = UINT64_MAX;
	cc->min_rtt_stamp = now_ns;
	cc->state = AMST_CC_STARTUP;
	cc->pacing_gain = STARTUP_GAIN;
	cc->cwnd_gain = STARTUP_GAIN;
	if (rtt_guess_ns == 0)
		rtt_guess_ns = 1000000;
	cc->pacing_rate = (uint64_t)(STARTUP_GAIN * (double)init_cwnd_pkts * mss * 1e9 /
	                             (double)rtt_guess_ns);
	cc->cwnd = (uint64_t)init_cwnd_pkts * mss;
}

void amst_cc_set_cap(struct amst_cc *cc, uint64_t bytes_per_s)
{
	cc->rate_cap = bytes_per_s;
	set_outputs(cc);
}

/*
 * The bottleneck bandwidth: the most delivered per round, over the last
 * AMST_CC_BW_ROUNDS rounds that had a sample. An application-limited sample
 * (the sender had nothing to send, or the receiver's window held it back;
 * a packet with no stream data) neither counts, unless it shows more than a
 * model there already is, nor ages the filter:
 * a receiver that stops reading for a while must not walk the estimate down
 * to whatever a lone control packet shows when it starts again.
 */
static void update_bw(struct amst_cc *cc, const struct amst_rate_sample *rs)
{
	if (rs->delivery_rate == 0)
		return;
	if (rs->app_limited && (cc->btl_bw == 0 || rs->delivery_rate < cc->btl_bw))
		return; /* not even the first estimate: that is the initial guess's */
	/* The slots are the last rounds that had a counted sample, in the order
	 * they came (numbering them by round_count instead would keep a slot
	 * that counted rounds skip, say every other one, forever). */
	if (cc->bw_slot_round != cc->round_count + 1) {
		cc->bw_slot = (cc->bw_slot + 1) % AMST_CC_BW_ROUNDS;
		cc->bw_round[cc->bw_slot] = 0;
		cc->bw_slot_round = cc->round_count + 1;
	}
	if (rs->delivery_rate > cc->bw_round[cc->bw_slot])
		cc->bw_round[cc->bw_slot] = rs->delivery_rate;
	uint64_t m = 0;
	for (int i = 0; i < AMST_CC_BW_ROUNDS; i++)
		if (cc->bw_round[i] > m)
			m = cc->bw_round[i];
	cc->btl_bw = m;
}

static void check_full_pipe(struct amst_cc *cc, const struct amst_rate_sample *rs)
{
	if (cc->filled_pipe || !cc->round_start || rs->app_limited)
		return;
	if ((double)cc->btl_bw >= (double)cc->full_bw * 1.25) {
		cc->full_bw = cc->btl_bw;
		cc->full_bw_count = 0;
		return;
	}
	if (++cc->full_bw_count >= 3)
		cc->filled_pipe = true;
}

static void enter_probe_bw(struct amst_cc *cc, uint64_t now)
{
	cc->state = AMST_CC_PROBE_BW;
	cc->pacing_gain = 1;
	cc->cwnd_gain = 2;
	/* Start anywhere but the draining phase, pseudo-randomly. */
	cc->seed = cc->seed * 1103515245u + 12345u;
	cc->cycle_index = (cc->seed >> 16) % 7;
	if (cc->cycle_index == 1)
		cc->cycle_index = 2;
	cc->pacing_gain = cycle_gains[cc->cycle_index];
	cc->cycle_stamp = now;
}

void amst_cc_on_ack(struct amst_cc *cc, const struct amst_rate_sample *rs, uint64_t inflight,
                    uint64_t now)
{
	cc->delivered += rs->newly_acked;
	cc->round_acked += rs->newly_acked;
	cc->round_lost += rs->newly_lost;
	cc->round_start = false;
	if (rs->newly_acked && rs->prior_delivered >= cc->next_round_delivered) {
		cc->next_round_delivered = cc->delivered;
		cc->round_count++;
		cc->round_start = true;
	}
	update_bw(cc, rs);
	update_extra_acked(cc, rs->newly_acked, now);

	/* Heavy loss in a round: the path has less than we thought. */
	if (cc->round_start) {
		uint64_t sent = cc->round_acked + cc->round_lost;
		/* Startup overshooting the bottleneck's queue shows as a burst of
		 * loss well above the path's random loss: the pipe is full. */
		if (!cc->filled_pipe && cc->round_lost > 8ull * cc->mss &&
		    (double)cc->round_lost > STARTUP_LOSS_THRESH * (double)sent)
			cc->filled_pipe = true;
		if (sent > 20ull * cc->mss && (double)cc->round_lost > LOSS_THRESH * (double)sent &&
		    cc->btl_bw) {
			uint64_t lowered = cc->btl_bw * 7 / 8;
			for (int i = 0; i < AMST_CC_BW_ROUNDS; i++)
				if (cc->bw_round[i] > lowered)
					cc->bw_round[i] = lowered;
			cc->btl_bw = lowered;
		}
		cc->round_acked = cc->round_lost = 0;
	}

	/* min RTT, and when it has not been refreshed for 10 s, PROBE_RTT. */
	bool expired = now - cc->min_rtt_stamp > MIN_RTT_WINDOW_NS;
	if (rs->rtt_ns && (rs->rtt_ns <= cc->min_rtt_ns || expired)) {
		cc->min_rtt_ns = rs->rtt_ns;
		cc->min_rtt_stamp = now;
	}

	switch (cc->state) {
	case AMST_CC_STARTUP:
		check_full_pipe(cc, rs); /* the plateau test; the loss test is above */
		if (cc->filled_pipe) {
			cc->state = AMST_CC_DRAIN;
			cc->pacing_gain = 1 / STARTUP_GAIN;
			cc->cwnd_gain = STARTUP_GAIN;
		}
		break;
	case AMST_CC_DRAIN:
		if (inflight <= bdp(cc, 1))
			enter_probe_bw(cc, now);
		break;
	case AMST_CC_PROBE_BW: {
		bool elapsed =
		        cc->min_rtt_ns != UINT64_MAX && now - cc->cycle_stamp > cc->min_rtt_ns;
		bool advance = elapsed;
		if (cc->pacing_gain > 1)
			advance =
			        elapsed && (rs->newly_lost || inflight >= bdp(cc, cc->pacing_gain));
		if (cc->pacing_gain < 1)
			advance = elapsed || inflight <= bdp(cc, 1);
		if (advance) {
			cc->cycle_index = (cc->cycle_index + 1) % 8;
			cc->cycle_stamp = now;
			cc->pacing_gain = cycle_gains[cc->cycle_index];
		}
		break;
	}
	case AMST_CC_PROBE_RTT:
		if (cc->probe_rtt_done == 0 && inflight <= (uint64_t)MIN_CWND_PKTS * cc->mss) {
			cc->probe_rtt_done = now + PROBE_RTT_NS;
		} else if (cc->probe_rtt_done && now >= cc->probe_rtt_done) {
			cc->min_rtt_stamp = now;
			cc->probe_rtt_done = 0;
			if (cc->filled_pipe) {
				enter_probe_bw(cc, now);
			} else {
				cc->state = AMST_CC_STARTUP;
				cc->pacing_gain = cc->cwnd_gain = STARTUP_GAIN;
			}
		}
		break;
	}
	if (cc->state != AMST_CC_PROBE_RTT && expired && cc->filled_pipe) {
		cc->state = AMST_CC_PROBE_RTT;
		cc->pacing_gain = 1;
		cc->probe_rtt_done = 0;
	}
	set_outputs(cc);
}
