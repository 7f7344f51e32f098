/* SPDX-License-Identifier: BSD-3-Clause */
/* amst_range: sorted disjoint range sets in a fixed array (see amst_range.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "amst_range.h"

int amst_rangeset_init(struct amst_rangeset *s, uint32_t cap)
{
	s->r = calloc(cap ? cap : 1, sizeof(*s->r));
	s->n = 0;
	s->cap = cap ? cap : 1;
	return s->r ? 0 : -ENOMEM;
}

void amst_rangeset_fini(struct amst_rangeset *s)
{
	free(s->r);
	s->r = NULL;
	s->n = s->cap = 0;
}

void amst_rangeset_clear(struct amst_rangeset *s)
{
	s->n = 0;
}

/* Index of the first range whose hi >= v (binary search). */
static uint32_t lower(const struct amst_rangeset *s, uint64_t v)
{
	uint32_t lo = 0, hi = s->n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (s->r[mid].hi < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int amst_rangeset_add(struct amst_rangeset *s, uint64_t lo, uint64_t hi)
{
	if (lo >= hi)
		return 0;
	uint32_t i = lower(s, lo); /* first range that ends at or after lo: may touch */
	uint32_t j = i;
	while (j < s->n && s->r[j].lo <= hi)
		j++;
	/* Ranges i..j-1 touch or overlap [lo, hi): merge them into one. */
	if (i == j) {
		if (s->n == s->cap)
			return -ENOSPC;
		memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(s->r[0]));
		s->r[i] = (struct amst_range){lo, hi};
		s->n++;
		return 0;
	}
	uint64_t nlo = s->r[i].lo < lo ? s->r[i].lo : lo;
	uint64_t nhi = s->r[j - 1].hi > hi ? s->r[j - 1].hi : hi;
	s->r[i] = (struct amst_range){nlo, nhi};
	memmove(&s->r[i + 1], &s->r[j], (s->n - j) * sizeof(s->r[0]));
	s->n -= j - i - 1;
	return 0;
}

void amst_rangeset_add_widen(struct amst_rangeset *s, uint64_t lo, uint64_t hi)
{
	if (lo >= hi || amst_rangeset_add(s, lo, hi) == 0)
		return;
	/* Full (so n > 0): stretch the range at or after lo, or the last one. */
	uint32_t i = lower(s, lo);
	if (i == s->n)
		i = s->n - 1;
	if (lo < s->r[i].lo)
		s->r[i].lo = lo;
	if (hi > s->r[i].hi)
		s->r[i].hi = hi;
	/* Merge with whatever the stretched range now touches. */
	uint32_t j = i;
	while (j + 1 < s->n && s->r[j + 1].lo <= s->r[i].hi)
		j++;
	if (s->r[j].hi > s->r[i].hi)
		s->r[i].hi = s->r[j].hi;
	uint32_t k = i;
	while (k > 0 && s->r[k - 1].hi >= s->r[i].lo)
		k--;
	if (k < i && s->r[k].lo < s->r[i].lo)
		s->r[i].lo = s->r[k].lo;
	s->r[k] = s->r[i];
	memmove(&s->r[k + 1], &s->r[j + 1], (s->n - j - 1) * sizeof(s->r[0]));
	s->n -= (j - k);
}

uint64_t amst_rangeset_next_lo(const struct amst_rangeset *s, uint64_t v)
{
	uint32_t i = lower(s, v + 1);
	while (i < s->n && s->r[i].lo <= v)
		i++;
	return i < s->n ? s->r[i].lo : UINT64_MAX;
}

int amst_rangeset_remove(struct amst_rangeset *s, uint64_t lo, uint64_t hi)
{
	if (lo >= hi)
		return 0;
	uint32_t i = lower(s, lo + 1); /* first range with hi > lo */
	if (i < s->n && s->r[i].lo < lo && s->r[i].hi > hi) {
		/* Split one range in two. */
		if (s->n == s->cap)
			return -ENOSPC;
		memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(s->r[0]));
		s->n++;
		s->r[i].hi = lo;
		s->r[i + 1].lo = hi;
		return 0;
	}
	uint32_t w = i;
	for (uint32_t k = i; k < s->n; k++) {
		struct amst_range r = s->r[k];
		if (r.lo >= hi) {
			s->r[w++] = r;
			continue;
		}
		if (r.lo < lo)
			s->r[w++] = (struct amst_range){r.lo, lo};
		else if (r.hi > hi)
			s->r[w++] = (struct amst_range){hi, r.hi};
		/* else fully covered: dropped */
	}
	s->n = w;
	return 0;
}

void amst_rangeset_trim_below(struct amst_rangeset *s, uint64_t v)
{
	uint32_t i = 0;
	while (i < s->n && s->r[i].hi <= v)
		i++;
	if (i) {
		memmove(&s->r[0], &s->r[i], (s->n - i) * sizeof(s->r[0]));
		s->n -= i;
	}
	if (s->n && s->r[0].lo < v)
		s->r[0].lo = v;
}

bool amst_rangeset_contains(const struct amst_rangeset *s, uint64_t v)
{
	uint32_t i = lower(s, v + 1);
	return i < s->n && s->r[i].lo <= v;
}

bool amst_rangeset_covers(const struct amst_rangeset *s, uint64_t lo, uint64_t hi)
{
	if (lo >= hi)
		return true;
	uint32_t i = lower(s, lo + 1);
	return i < s->n && s->r[i].lo <= lo && s->r[i].hi >= hi;
}

uint64_t amst_rangeset_contiguous_end(const struct amst_rangeset *s, uint64_t v)
{
	uint32_t i = lower(s, v);
	if (i < s->n && s->r[i].lo <= v)
		return s->r[i].hi;
	return v;
}

uint64_t amst_rangeset_total(const struct amst_rangeset *s)
{
	uint64_t t = 0;
	for (uint32_t i = 0; i < s->n; i++)
		t += s->r[i].hi - s->r[i].lo;
	return t;
}
