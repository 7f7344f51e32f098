/* SPDX-License-Identifier: BSD-3-Clause */
/* drv_memif: shared-memory packet interface between two DPDK processes (net_memif). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "drv_common.h"

static const char *const memif_keys[] = {
        "id",        "role",      "bsize", "rsize",  "socket",    "socket-abstract",
        "owner-uid", "owner-gid", "mac",   "secret", "zero-copy", NULL};

static int memif_check(const struct nc_drv_port *p, char *err, size_t errlen)
{
	static const char *const roles[] = {"server", "client", NULL};
	static const char *const yesno[] = {"yes", "no", NULL};
	int rc = drv_check_choice(p, "role", roles, err, errlen);
	if (rc == 0)
		rc = drv_check_choice(p, "zero-copy", yesno, err, errlen);
	if (rc == 0)
		rc = drv_check_choice(p, "socket-abstract", yesno, err, errlen);
	if (rc == 0)
		rc = drv_check_uint(p, "id", 0, UINT32_MAX, err, errlen);
	if (rc == 0)
		rc = drv_check_uint(p, "bsize", 64, 65535, err, errlen);
	if (rc == 0)
		rc = drv_check_uint(p, "rsize", 1, 14, err, errlen);
	const char *sock = nc_drv_arg(p, "socket");
	if (rc == 0 && sock && sock[0] != '/') {
		snprintf(err, errlen, "memif: socket '%s' must be an absolute path", sock);
		rc = -EINVAL;
	}
	return rc;
}

/* The PMD creates the socket but not its directory. */
static int memif_prepare(const struct nc_drv_port *p, char *err, size_t errlen)
{
	const char *sock = nc_drv_arg(p, "socket");
	const char *abstract = nc_drv_arg(p, "socket-abstract");
	if (sock == NULL || (abstract && strcmp(abstract, "yes") == 0))
		return 0;
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", sock);
	char *slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	return drv_mkdir_p(dir, err, errlen);
}

static const struct nc_drv memif_drv = {
        .name = "memif",
        .pmd = "net_memif",
        .help = "shared-memory interface to another process (role=server|client, socket=PATH)",
        .keys = memif_keys,
        .check = memif_check,
        .prepare = memif_prepare,
        .frames_by_device = true,
};
NC_DRV_REGISTER(memif_drv)
