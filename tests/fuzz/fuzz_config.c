/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_config: libFuzzer target for the configuration loader (outside input:
 * the YAML file). Any input must give 0 or an error with a message, never a
 * crash; a document that loads must format back to text that sets again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nc_config.h"
#include "nc_config_table.h"
#include "nc_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	if (!quiet) {
		nc_log_set_level(NC_LOG_ERR);
		quiet = 1;
	}
	struct nc_config *cfg = nc_config_create(nc_config_table, nc_config_table_len);
	if (cfg == NULL)
		abort();
	char err[512];
	err[0] = '\0';
	int rc =
	        nc_config_load_string(cfg, (const char *)data, size, "fuzz.yaml", err, sizeof(err));
	if (rc != 0 && err[0] == '\0')
		abort(); /* every error says why */
	if (rc == 0) {
		for (size_t i = 0; i < nc_config_count(cfg); i++) {
			const struct nc_cfg_def *d = nc_config_def_at(cfg, i);
			char buf[4096];
			int n = nc_config_format(cfg, d->name, buf, sizeof(buf));
			if (n < 0 || (size_t)n >= sizeof(buf))
				continue;
			if (nc_config_set(cfg, d->name, buf, false, err, sizeof(err)) != 0)
				abort(); /* a loaded value must round-trip */
		}
	}
	nc_config_destroy(cfg);
	return 0;
}
