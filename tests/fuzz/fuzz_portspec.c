/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_portspec: libFuzzer target for the port spec parser ("DRIVER:ARGS"
 * from the config), whose output becomes EAL --vdev arguments, and for the
 * fitting of a parsed port to a link MTU (576-9000, from the input's
 * length). A spec that parses gives a device name and devargs that start with
 * it; fitting never shrinks the buffers' room, and a fitted af_packet port
 * has slots that hold a frame of the MTU in blocks of whole slots. No value
 * holds what EAL would read otherwise ('=', '[', ']'), and the devargs as
 * shown never hold a secret.
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
	if (rc != 0)
		return 0;
	for (unsigned i = 0; i < p.n_args; i++)
		if (strpbrk(p.args[i].value, "=[]") != NULL)
			abort();
	/* the secret's value as shown is "(set)", whatever it is */
	char shown[sizeof(p.devargs)];
	const char *at;
	if (nc_drv_devargs_shown(&p, shown, sizeof(shown)) == 0 &&
	    nc_drv_arg(&p, "secret") != NULL) {
		at = strstr(shown, ",secret=");
		if (at == NULL || strncmp(at + 8, "(set)", 5) != 0 ||
		    (at[13] != ',' && at[13] != '\0'))
			abort();
	}
	unsigned mtu = 576 + (unsigned)(size * 37 % (9000 - 576 + 1));
	unsigned room = mtu + 18 > 2048 ? mtu + 18 : 2048, before = room;
	err[0] = '\0';
	rc = nc_drv_fit_mtu(&p, mtu, &room, err, sizeof(err));
	if ((rc != 0 && err[0] == '\0') || room < before ||
	    strncmp(p.devargs, p.devname, strlen(p.devname)) != 0)
		abort();
	if (rc == 0 && strcmp(p.drv->name, "af_packet") == 0) {
		unsigned long fs = strtoul(nc_drv_arg(&p, "framesz"), NULL, 10);
		unsigned long bs = strtoul(nc_drv_arg(&p, "blocksz"), NULL, 10);
		if (fs < mtu + 80 || bs % fs || room + 32 < fs)
			abort();
	}
	return 0;
}
