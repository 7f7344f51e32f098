/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * amst_range: a bounded set of disjoint half-open uint64 ranges [lo, hi),
 * kept sorted. AMST uses it for received packet numbers (ACK ranges, replay
 * detection), acknowledged and lost stream bytes, and received stream bytes.
 * Storage is a fixed array chosen at init: no allocation after it. When full,
 * adding a range that needs a new slot fails with -ENOSPC and changes nothing;
 * callers decide what that means (drop the packet, merge, ...).
 */
#ifndef AMST_RANGE_H
#define AMST_RANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct amst_range {
	uint64_t lo; /**< first value in the range */
	uint64_t hi; /**< one past the last */
};

struct amst_rangeset {
	struct amst_range *r;
	uint32_t n;
	uint32_t cap;
};

/** Allocate room for @p cap ranges. 0 or -ENOMEM. */
int amst_rangeset_init(struct amst_rangeset *s, uint32_t cap);
void amst_rangeset_fini(struct amst_rangeset *s);
void amst_rangeset_clear(struct amst_rangeset *s);

/** Add [lo, hi), merging with neighbours. 0, or -ENOSPC (set unchanged). */
int amst_rangeset_add(struct amst_rangeset *s, uint64_t lo, uint64_t hi);

/**
 * Add [lo, hi); when the set is full, widen the nearest range to cover it
 * instead (the set then holds more than was added). Never fails. For sets
 * where more is harmless (bytes to send again), never for acknowledgements.
 */
void amst_rangeset_add_widen(struct amst_rangeset *s, uint64_t lo, uint64_t hi);

/** The lowest range start above @p v, or UINT64_MAX. */
uint64_t amst_rangeset_next_lo(const struct amst_rangeset *s, uint64_t v);

/** Remove [lo, hi) from the set. 0, or -ENOSPC when a split needs a slot. */
int amst_rangeset_remove(struct amst_rangeset *s, uint64_t lo, uint64_t hi);

/** Remove everything below @p v. */
void amst_rangeset_trim_below(struct amst_rangeset *s, uint64_t v);

/** Is @p v in the set? */
bool amst_rangeset_contains(const struct amst_rangeset *s, uint64_t v);

/** Does the set cover all of [lo, hi)? */
bool amst_rangeset_covers(const struct amst_rangeset *s, uint64_t lo, uint64_t hi);

/** The end of the range that starts at or covers @p v, or @p v if v is not in the set. */
uint64_t amst_rangeset_contiguous_end(const struct amst_rangeset *s, uint64_t v);

/** Bytes (or values) in the set. */
uint64_t amst_rangeset_total(const struct amst_rangeset *s);

static inline bool amst_rangeset_empty(const struct amst_rangeset *s)
{
	return s->n == 0;
}

/** Lowest value in the set (set must not be empty). */
static inline uint64_t amst_rangeset_min(const struct amst_rangeset *s)
{
	return s->r[0].lo;
}

/** One past the highest value (set must not be empty). */
static inline uint64_t amst_rangeset_max(const struct amst_rangeset *s)
{
	return s->r[s->n - 1].hi;
}

#endif /* AMST_RANGE_H */
