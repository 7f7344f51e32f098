/* SPDX-License-Identifier: BSD-3-Clause */
/* drv_ring: a port over rte_rings inside one process (net_ring), for tests. */
#include "drv_common.h"

static const char *const ring_keys[] = {"nodeaction", NULL};

static const struct nc_drv ring_drv = {
        .name = "ring",
        .pmd = "net_ring",
        .help = "in-process port over rte_rings; what is sent comes back (tests)",
        .keys = ring_keys,
};
NC_DRV_REGISTER(ring_drv)
