/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nc_config_table: every configuration key of the appliance, in one table
 * shared by novacron-dp and novacron-cp (both read the same file). Each
 * process attaches its own apply callbacks to the run-time keys it owns.
 * config/novacron.yaml documents every key; a test checks that the two agree.
 */
#ifndef NC_CONFIG_TABLE_H
#define NC_CONFIG_TABLE_H

#include <stddef.h>

#include "nc_config.h"

extern const struct nc_cfg_def nc_config_table[];
extern const size_t nc_config_table_len;

#endif /* NC_CONFIG_TABLE_H */
