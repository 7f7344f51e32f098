/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * wanem_link: loss, duplication, bottleneck serialization with a tail-drop
 * queue, propagation delay and reordering of one link direction. Pure logic:
 * see wanem_link.h for the model and the guarantees on random decisions.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "wanem_link.h"

/* Random streams of a link: each feature has its own. */
enum { RNG_LOSS, RNG_DUP, RNG_REORDER, RNG_COUNT };

struct wanem_link {
	struct wanem_link_cfg cfg;
	struct wanem_rng rng[RNG_COUNT];
	bool bad;             /* Gilbert-Elliott state */
	uint64_t last_dep_ns; /* when the serializer is free again... */
	uint32_t last_dep_ps; /* ...plus this many picoseconds (< 1000) */
	struct wanem_link_stats st;
};

/* splitmix64 step: spreads any seed (0 included) over the state space. */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

void wanem_rng_seed(struct wanem_rng *r, uint64_t seed, uint64_t stream)
{
	r->s = mix64(seed ^ mix64(stream + 0x5851f42d4c957f2dULL));
	if (r->s == 0)
		r->s = 0x2545f4914f6cdd1dULL;
}

uint64_t wanem_rng_next(struct wanem_rng *r)
{
	uint64_t x = r->s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

double wanem_rng_unit(struct wanem_rng *r)
{
	return (double)(wanem_rng_next(r) >> 11) * 0x1.0p-53;
}

static bool prob_ok(double p)
{
	return isfinite(p) && p >= 0.0 && p <= 1.0;
}

uint64_t wanem_default_queue(uint64_t rate_bps, uint64_t delay_ns, uint32_t max_frame)
{
	unsigned __int128 bdp = (unsigned __int128)rate_bps * (2 * delay_ns) / 8000000000ULL;
	uint64_t floor = 64ULL * (max_frame ? max_frame : 1518);

	if (rate_bps == 0)
		return UINT64_MAX;
	return bdp > floor ? (uint64_t)bdp : floor;
}

struct wanem_link *wanem_link_create(const struct wanem_link_cfg *cfg, uint64_t seed,
                                     uint64_t index)
{
	if (!prob_ok(cfg->loss) || !prob_ok(cfg->dup) || !prob_ok(cfg->reorder) ||
	    (cfg->burst && (!prob_ok(cfg->ge_p_enter) || !prob_ok(cfg->ge_p_exit) ||
	                    !prob_ok(cfg->ge_loss_bad)))) {
		errno = EINVAL;
		return NULL;
	}
	struct wanem_link *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;
	l->cfg = *cfg;
	if (l->cfg.queue_bytes == 0)
		l->cfg.queue_bytes =
		        wanem_default_queue(cfg->rate_bps, cfg->delay_ns, cfg->max_frame);
	for (unsigned i = 0; i < RNG_COUNT; i++)
		wanem_rng_seed(&l->rng[i], seed, index * RNG_COUNT + i);
	return l;
}

void wanem_link_destroy(struct wanem_link *l)
{
	free(l);
}

const struct wanem_link_cfg *wanem_link_cfg(const struct wanem_link *l)
{
	return &l->cfg;
}

struct wanem_link_stats *wanem_link_stats(struct wanem_link *l)
{
	return &l->st;
}

uint64_t wanem_link_backlog(const struct wanem_link *l, uint64_t now_ns)
{
	if (l->cfg.rate_bps == 0 || l->last_dep_ns <= now_ns)
		return 0;
	unsigned __int128 b = (unsigned __int128)(l->last_dep_ns - now_ns) * l->cfg.rate_bps;
	return (uint64_t)(b / 8000000000ULL);
}

/* Loss decision for one frame: one draw (Bernoulli) or two (Gilbert-Elliott). */
static bool lose(struct wanem_link *l)
{
	struct wanem_rng *r = &l->rng[RNG_LOSS];

	if (!l->cfg.burst)
		return wanem_rng_unit(r) < l->cfg.loss;
	double p = l->bad ? l->cfg.ge_loss_bad : l->cfg.loss;
	bool lost = wanem_rng_unit(r) < p;
	double u = wanem_rng_unit(r);
	if (l->bad ? u < l->cfg.ge_p_exit : u < l->cfg.ge_p_enter)
		l->bad = !l->bad;
	return lost;
}

/* Put one copy through the bottleneck; returns false if tail-dropped. */
static bool serialize(struct wanem_link *l, uint64_t now_ns, uint32_t len, uint64_t *dep_ns)
{
	if (l->cfg.rate_bps == 0) {
		*dep_ns = now_ns;
		return true;
	}
	uint64_t wire = (uint64_t)len + l->cfg.overhead;
	uint64_t backlog = wanem_link_backlog(l, now_ns);
	if (backlog + wire > l->cfg.queue_bytes)
		return false;
	if (l->last_dep_ns < now_ns) {
		l->last_dep_ns = now_ns;
		l->last_dep_ps = 0;
	}
	/* Serialization time in picoseconds; exact to 1 ps per frame. */
	uint64_t ps = (uint64_t)((unsigned __int128)wire * 8 * 1000000000000ULL / l->cfg.rate_bps);
	ps += l->last_dep_ps;
	l->last_dep_ns += ps / 1000;
	l->last_dep_ps = (uint32_t)(ps % 1000);
	*dep_ns = l->last_dep_ns;
	if (backlog + wire > l->st.backlog_max_bytes)
		l->st.backlog_max_bytes = backlog + wire;
	return true;
}

struct wanem_verdict wanem_link_offer(struct wanem_link *l, uint64_t now_ns, uint32_t len)
{
	struct wanem_verdict v = {0};
	struct wanem_link_stats *st = &l->st;

	/* Draw every stream a fixed number of times, whatever happens below. */
	bool lost = lose(l);
	bool dup = wanem_rng_unit(&l->rng[RNG_DUP]) < l->cfg.dup;
	bool reord[2];
	reord[0] = wanem_rng_unit(&l->rng[RNG_REORDER]) < l->cfg.reorder;
	reord[1] = wanem_rng_unit(&l->rng[RNG_REORDER]) < l->cfg.reorder;

	st->in_frames++;
	st->in_bytes += len;
	if (lost) {
		st->loss_frames++;
		st->loss_bytes += len;
		return v;
	}
	unsigned n = 1;
	if (dup) {
		st->dup_frames++;
		n = 2;
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t dep;
		if (!serialize(l, now_ns, len, &dep)) {
			st->queue_frames++;
			st->queue_bytes += len;
			continue;
		}
		uint64_t due = dep + l->cfg.delay_ns;
		if (reord[i]) {
			due += l->cfg.reorder_delay_ns;
			st->reorder_frames++;
		}
		v.due_ns[v.copies] = due;
		v.reordered[v.copies] = reord[i];
		v.copies++;
	}
	return v;
}
