/* SPDX-License-Identifier: BSD-3-Clause */
/* drv_common: argument checks and host preparation shared by the drivers. */
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drv_common.h"

int drv_check_choice(const struct nc_drv_port *p, const char *key, const char *const *choices,
                     char *err, size_t errlen)
{
	const char *v = nc_drv_arg(p, key);
	if (v == NULL)
		return 0;
	for (const char *const *c = choices; *c; c++)
		if (strcmp(*c, v) == 0)
			return 0;
	int n = snprintf(err, errlen, "%s: %s must be one of", p->drv->name, key);
	for (const char *const *c = choices; *c && n > 0 && (size_t)n < errlen; c++)
		n += snprintf(err + n, errlen - (size_t)n, " %s", *c);
	return -EINVAL;
}

int drv_check_uint(const struct nc_drv_port *p, const char *key, uint64_t min, uint64_t max,
                   char *err, size_t errlen)
{
	const char *v = nc_drv_arg(p, key);
	if (v == NULL)
		return 0;
	uint64_t x = 0;
	const char *s = v;
	if (*s == '\0')
		goto bad;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || x > (UINT64_MAX - 9) / 10)
			goto bad;
		x = x * 10 + (uint64_t)(*s - '0');
	}
	if (x < min || x > max)
		goto bad;
	return 0;
bad:
	snprintf(err, errlen, "%s: %s must be an integer in [%llu, %llu], got '%s'", p->drv->name,
	         key, (unsigned long long)min, (unsigned long long)max, v);
	return -EINVAL;
}

int drv_iface_exists(const struct nc_drv_port *p, char *err, size_t errlen)
{
	const char *iface = nc_drv_arg(p, "iface");
	if (iface != NULL && if_nametoindex(iface) == 0) {
		snprintf(err, errlen, "%s: interface '%s' does not exist here", p->drv->name,
		         iface);
		return -ENODEV;
	}
	return 0;
}

unsigned drv_iface_mtu(const struct nc_drv_port *p)
{
	const char *iface = nc_drv_arg(p, "iface");
	if (iface == NULL || strlen(iface) >= IFNAMSIZ)
		return 0;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return 0;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, iface, strlen(iface));
	int rc = ioctl(s, SIOCGIFMTU, &ifr);
	close(s);
	return rc == 0 && ifr.ifr_mtu > 0 ? (unsigned)ifr.ifr_mtu : 0;
}

int drv_mkdir_p(const char *dir, char *err, size_t errlen)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", dir);
	for (char *s = buf + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		struct stat st;
		if (mkdir(buf, 0750) != 0 &&
		    (errno != EEXIST || (stat(buf, &st) == 0 && !S_ISDIR(st.st_mode)))) {
			int e = errno == EEXIST ? ENOTDIR : errno;
			snprintf(err, errlen, "cannot create %s: %s", buf, strerror(e));
			return -e;
		}
		*s = c;
		if (c == '\0')
			return 0;
	}
}
