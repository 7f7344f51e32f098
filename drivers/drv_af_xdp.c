/* SPDX-License-Identifier: BSD-3-Clause */
/* drv_af_xdp: a kernel interface through AF_XDP sockets (net_af_xdp). */
#include <stdint.h>

#include "drv_common.h"

static const char *const afx_keys[] = {"iface",    "start_queue", "queue_count", "shared_umem",
                                       "xdp_prog", "busy_budget", "force_copy",  NULL};
static const char *const afx_required[] = {"iface", NULL};

static int afx_check(const struct nc_drv_port *p, char *err, size_t errlen)
{
	int rc = drv_check_uint(p, "start_queue", 0, 1024, err, errlen);
	if (rc == 0)
		rc = drv_check_uint(p, "queue_count", 1, 1024, err, errlen);
	if (rc == 0)
		rc = drv_check_uint(p, "shared_umem", 0, 1, err, errlen);
	if (rc == 0)
		rc = drv_check_uint(p, "force_copy", 0, 1, err, errlen);
	if (rc == 0)
		rc = drv_check_uint(p, "busy_budget", 0, 65535, err, errlen);
	return rc;
}

static const struct nc_drv af_xdp_drv = {
        .name = "af_xdp",
        .pmd = "net_af_xdp",
        .help = "kernel interface through AF_XDP sockets (iface=NAME)",
        .keys = afx_keys,
        .required = afx_required,
        .check = afx_check,
        .prepare = drv_iface_exists,
};
NC_DRV_REGISTER(af_xdp_drv)
