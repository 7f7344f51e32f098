/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_portspec: libFuzzer target for the port spec parser ("DRIVER:ARGS"
 * from the config), whose output becomes EAL --vdev arguments. A spec that
 * parses gives a device name and devargs that start with it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nc_drv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char spec[1024];
	if (size >= sizeof(spec))
		return 0;
	memcpy(spec, data, size);
	spec[size] = '\0';
	struct nc_drv_port p;
	char err[256] = "";
	int rc = nc_drv_parse(spec, (unsigned)(size % 4), &p, err, sizeof(err));
	if (rc != 0 && err[0] == '\0')
		abort();
	if (rc == 0 && (p.drv == NULL || strncmp(p.devargs, p.devname, strlen(p.devname)) != 0))
		abort();
	return 0;
}
