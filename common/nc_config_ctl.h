/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nc_config_ctl: the configuration's control-socket methods, config.get and
 * config.set. config.set goes through nc_config_set(), the same path as the
 * file and --set, so bounds and apply callbacks hold alike.
 */
#ifndef NC_CONFIG_CTL_H
#define NC_CONFIG_CTL_H

#include "nc_config.h"
#include "nc_ctl.h"

/** Register config.get and config.set on @p ctl for @p cfg. 0 or -errno. */
int nc_config_ctl_register(struct nc_ctl *ctl, struct nc_config *cfg);

/** The value of @p name as JSON (bool, integer, string or array). New reference. */
json_t *nc_config_value_json(const struct nc_config *cfg, const char *name);

#endif /* NC_CONFIG_CTL_H */
