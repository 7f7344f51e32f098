/* SPDX-License-Identifier: BSD-3-Clause */
/* drv_common: checks shared by the driver files (internal to drivers/). */
#ifndef DRV_COMMON_H
#define DRV_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "nc_drv.h"

/** If @p key is given, it must be one of @p choices. 0 or -EINVAL. */
int drv_check_choice(const struct nc_drv_port *p, const char *key, const char *const *choices,
                     char *err, size_t errlen);
/** If @p key is given, it must be a decimal integer in [min, max]. 0 or -EINVAL. */
int drv_check_uint(const struct nc_drv_port *p, const char *key, uint64_t min, uint64_t max,
                   char *err, size_t errlen);
/** The interface named by "iface" must exist in this network namespace. */
int drv_iface_exists(const struct nc_drv_port *p, char *err, size_t errlen);
/** The MTU of the interface named by "iface" (0 if it cannot be read: no such
 *  interface here, or no "iface"). */
unsigned drv_iface_mtu(const struct nc_drv_port *p);
/** mkdir -p with mode 0750. */
int drv_mkdir_p(const char *dir, char *err, size_t errlen);

#endif /* DRV_COMMON_H */
