/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * wanem_link: the pure logic of one direction of the emulated WAN link, with
 * no sockets and no clock of its own (the caller passes "now"), so that the
 * unit tests can drive it frame by frame.
 *
 * A frame offered to a link goes through, in this order:
 *   1. loss: Bernoulli, or Gilbert-Elliott (a good and a bad state);
 *   2. duplication: a second copy follows the first;
 *   3. for each copy, the bottleneck: tail drop if the bytes still queued
 *      behind the serializer plus this frame exceed the queue limit, else it
 *      leaves the serializer at max(now, last departure) + bits / rate;
 *   4. the propagation delay, plus, for a reordered copy, the reorder delay.
 * The link returns when each surviving copy is due at the far side.
 *
 * Every random decision comes from its own seeded stream (loss, duplication,
 * reordering) and each stream is drawn a fixed number of times per frame, so
 * the same seed and the same sequence of frames give the same decisions
 * whatever the timing, and turning one feature on does not move another's.
 *
 * Return convention: constructors return a pointer or NULL with errno set;
 * the rest cannot fail and return a value or nothing.
 */
#ifndef WANEM_LINK_H
#define WANEM_LINK_H

#include <stdbool.h>
#include <stdint.h>

/** xorshift64* generator: small, fast and good enough for link decisions. */
struct wanem_rng {
	uint64_t s;
};

/** Seed @p r from @p seed and a stream number (any values, 0 included). */
void wanem_rng_seed(struct wanem_rng *r, uint64_t seed, uint64_t stream);
/** The next 64 random bits. */
uint64_t wanem_rng_next(struct wanem_rng *r);
/** A uniform double in [0, 1). */
double wanem_rng_unit(struct wanem_rng *r);

/** Configuration of one direction. Zero everywhere is a perfect wire. */
struct wanem_link_cfg {
	uint64_t rate_bps;         /**< bottleneck rate, bit/s; 0: unlimited */
	uint64_t delay_ns;         /**< one-way propagation delay */
	double loss;               /**< Bernoulli loss probability, 0..1 (the good
	                                state's loss when @ref burst is set) */
	bool burst;                /**< Gilbert-Elliott loss instead of Bernoulli */
	double ge_p_enter;         /**< P(good -> bad) per frame */
	double ge_p_exit;          /**< P(bad -> good) per frame */
	double ge_loss_bad;        /**< loss probability in the bad state */
	double reorder;            /**< probability a copy is held back */
	uint64_t reorder_delay_ns; /**< how long a reordered copy is held back */
	double dup;                /**< probability a frame is sent twice */
	uint64_t queue_bytes;      /**< bottleneck queue limit; 0: the default */
	uint32_t overhead;         /**< bytes added per frame for serialization only
	                                (e.g. 24 for preamble, FCS and gap) */
	uint32_t max_frame;        /**< largest frame, for the default queue limit */
};

/** Counters of one direction. Bytes are Ethernet frame lengths (no FCS). */
struct wanem_link_stats {
	uint64_t in_frames, in_bytes;
	uint64_t out_frames, out_bytes;       /**< counted by the sender, see below */
	uint64_t loss_frames, loss_bytes;     /**< dropped by the loss model */
	uint64_t queue_frames, queue_bytes;   /**< tail-dropped at the bottleneck */
	uint64_t dup_frames;                  /**< extra copies made */
	uint64_t reorder_frames;              /**< copies held back */
	uint64_t buffer_frames, buffer_bytes; /**< no room in the delay line */
	uint64_t error_frames, error_bytes;   /**< send failed, or frame unusable */
	uint64_t backlog_max_bytes;           /**< deepest bottleneck queue seen */
};

/** What became of one frame offered to a link. */
struct wanem_verdict {
	unsigned copies;    /**< 0 (dropped), 1 or 2 (duplicated) */
	uint64_t due_ns[2]; /**< when each copy reaches the far side */
	bool reordered[2];  /**< copy is held back by the reorder delay */
};

struct wanem_link;

/**
 * Create a link direction.
 * @param cfg   copied; probabilities must lie in [0, 1]
 * @param seed  seed of every random stream of this link
 * @param index distinguishes the streams of links sharing a seed
 * @return the link, or NULL with errno EINVAL (bad cfg) or ENOMEM.
 */
struct wanem_link *wanem_link_create(const struct wanem_link_cfg *cfg, uint64_t seed,
                                     uint64_t index);
/** Free @p l (NULL is fine). */
void wanem_link_destroy(struct wanem_link *l);

/** The configuration in force, with the default queue limit resolved. */
const struct wanem_link_cfg *wanem_link_cfg(const struct wanem_link *l);

/**
 * Offer a frame of @p len bytes that arrived at @p now_ns.
 * Counts it in, and as lost, queue-dropped, duplicated or reordered.
 * @return the verdict: copies and their due times (never before @p now_ns).
 */
struct wanem_verdict wanem_link_offer(struct wanem_link *l, uint64_t now_ns, uint32_t len);

/** Bytes queued behind the serializer at @p now_ns. */
uint64_t wanem_link_backlog(const struct wanem_link *l, uint64_t now_ns);

/** The counters; the caller counts out, buffer and error frames itself. */
struct wanem_link_stats *wanem_link_stats(struct wanem_link *l);

/** The default queue limit: one bandwidth-delay product (rate x 2 x delay),
 * at least 64 frames of @p max_frame bytes. */
uint64_t wanem_default_queue(uint64_t rate_bps, uint64_t delay_ns, uint32_t max_frame);

#endif /* WANEM_LINK_H */
