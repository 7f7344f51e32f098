/* SPDX-License-Identifier: BSD-3-Clause */
/* cp_tcg: see cp_tcg.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define NC_LOG_MODULE "migrate"
#include "cp_tcg.h"
#include "nc_config.h"
#include "nc_log.h"

#define LOSS_ALIGN (256ull * 1024) /* 64 target pages: one word of QEMU's dirty bitmap */

bool cp_tcg_loses_pages(bool tcg, unsigned long version, uint64_t ram_bytes, const char *ram_note,
                        char *why, size_t whylen)
{
	if (whylen > 0)
		why[0] = '\0';
	if (!tcg || version >= CP_TCG_QEMU_FIXED || ram_bytes % LOSS_ALIGN != 0)
		return false;
	snprintf(why, whylen,
	         "it runs under TCG on QEMU %lu.%lu.%lu with %llu KiB of RAM%s, a multiple of "
	         "256 KiB: QEMU before 9.0 loses pages such a guest dirties during a live "
	         "migration (QEMU commit 03bfc2188f)",
	         version / 1000000, version / 1000 % 1000, version % 1000,
	         (unsigned long long)(ram_bytes / 1024), ram_note ? ram_note : "");
	return true;
}

static const char *guard_of(const struct nc_config *cfg)
{
	const char *g = cfg ? nc_config_get_str(cfg, "controlplane.tcg_guard") : NULL;
	return g ? g : "refuse";
}

bool cp_tcg_guard_on(const struct nc_config *cfg)
{
	return strcmp(guard_of(cfg), "off") != 0;
}

int cp_tcg_guard(const struct nc_config *cfg, const char *what, int risk, const char *why,
                 char *err, size_t errlen)
{
	const char *guard = guard_of(cfg);
	if (strcmp(guard, "off") == 0 || risk == 0)
		return 0;
	if (risk < 0) {
		NC_LOG(NOTICE, "%s: cannot tell whether QEMU would lose its dirty pages: %s", what,
		       why && why[0] ? why : strerror(-risk));
		return 0;
	}
	if (strcmp(guard, "warn") == 0) {
		NC_LOG(WARN, "%s: migrating although %s (controlplane.tcg_guard: warn)", what, why);
		return 0;
	}
	snprintf(err, errlen,
	         "%s is not migrated: %s. Give QEMU a RAM size that is not such a multiple, or "
	         "set controlplane.tcg_guard to warn",
	         what, why);
	return -ENOTSUP;
}
