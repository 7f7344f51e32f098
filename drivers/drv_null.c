/* SPDX-License-Identifier: BSD-3-Clause */
/* drv_null: a port that drops what it sends and receives nothing, or junk (net_null). */
#include <stdint.h>

#include "drv_common.h"

static const char *const null_keys[] = {"size", "copy", "no-rx", NULL};

static int null_check(const struct nc_drv_port *p, char *err, size_t errlen)
{
	int rc = drv_check_uint(p, "size", 1, 9000, err, errlen);
	if (rc == 0)
		rc = drv_check_uint(p, "copy", 0, 1, err, errlen);
	if (rc == 0)
		rc = drv_check_uint(p, "no-rx", 0, 1, err, errlen);
	return rc;
}

static const struct nc_drv null_drv = {
        .name = "null",
        .pmd = "net_null",
        .help = "drops what is sent; receives generated packets unless no-rx=1 (benches)",
        .keys = null_keys,
        .check = null_check,
};
NC_DRV_REGISTER(null_drv)
