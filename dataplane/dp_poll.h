/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp_poll: the adaptive polling policy of a worker, as a pure function so it
 * can be tested without EAL. A worker polls flat out while it finds work;
 * after idle_polls empty polls in a row it sleeps, 1 us first, doubling each
 * time it wakes to find nothing, up to sleep_max_us; the first packet or
 * command ends the backoff. In busy mode it never sleeps.
 */
#ifndef DP_POLL_H
#define DP_POLL_H

#include <stdint.h>

#include "nc_abi.h"

struct dp_poll_cfg {
	uint32_t mode;         /**< enum nc_poll_mode */
	uint32_t idle_polls;   /**< empty polls before the first sleep */
	uint32_t sleep_max_us; /**< cap of the backoff */
};

struct dp_poll {
	uint32_t empty;    /**< empty polls in a row */
	uint32_t sleep_us; /**< last sleep; 0 while busy */
};

/** Account one poll that found @p work items; returns microseconds to sleep now (0: none). */
static inline uint32_t dp_poll_next(struct dp_poll *p, uint32_t work, const struct dp_poll_cfg *c)
{
	if (work != 0 || c->mode == NC_POLL_BUSY) {
		p->empty = 0;
		p->sleep_us = 0;
		return 0;
	}
	if (p->empty < c->idle_polls) {
		p->empty++;
		if (p->empty < c->idle_polls)
			return 0;
	}
	uint32_t next = p->sleep_us ? p->sleep_us * 2 : 1;
	if (next > c->sleep_max_us || next < p->sleep_us)
		next = c->sleep_max_us;
	p->sleep_us = next;
	return next;
}

#endif /* DP_POLL_H */
