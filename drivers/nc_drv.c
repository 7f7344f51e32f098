/* SPDX-License-Identifier: BSD-3-Clause */
/* nc_drv: the driver registry and the port spec parser. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nc_drv.h"

#define MAX_DRIVERS 16

static const struct nc_drv *drivers[MAX_DRIVERS];
static unsigned n_drivers;

void nc_drv_register(const struct nc_drv *drv)
{
	if (n_drivers == MAX_DRIVERS)
		abort(); /* a build with more drivers than slots: raise MAX_DRIVERS */
	unsigned i = n_drivers++;
	while (i > 0 && strcmp(drivers[i - 1]->name, drv->name) > 0) {
		drivers[i] = drivers[i - 1];
		i--;
	}
	drivers[i] = drv;
}

const struct nc_drv *nc_drv_find(const char *name)
{
	for (unsigned i = 0; i < n_drivers; i++)
		if (strcmp(drivers[i]->name, name) == 0)
			return drivers[i];
	return NULL;
}

unsigned nc_drv_count(void)
{
	return n_drivers;
}

const struct nc_drv *nc_drv_at(unsigned i)
{
	return i < n_drivers ? drivers[i] : NULL;
}

const char *nc_drv_arg(const struct nc_drv_port *p, const char *key)
{
	for (unsigned i = 0; i < p->n_args; i++)
		if (strcmp(p->args[i].key, key) == 0)
			return p->args[i].value;
	return NULL;
}

static void list_names(char *buf, size_t len, const char *const *names)
{
	buf[0] = '\0';
	for (const char *const *k = names; k && *k; k++) {
		size_t used = strlen(buf);
		snprintf(buf + used, len - used, "%s%s", k == names ? "" : ", ", *k);
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "none");
}

/* "net_memif0,KEY=VALUE,..." from the device name and the arguments. */
static int build_devargs(struct nc_drv_port *out, char *err, size_t errlen)
{
	int n = snprintf(out->devargs, sizeof(out->devargs), "%s", out->devname);
	for (unsigned i = 0; i < out->n_args && n < (int)sizeof(out->devargs); i++)
		n += snprintf(out->devargs + n, sizeof(out->devargs) - (size_t)n, ",%s=%s",
		              out->args[i].key, out->args[i].value);
	if (n >= (int)sizeof(out->devargs)) {
		snprintf(err, errlen, "%s: arguments too long", out->drv->name);
		return -EINVAL;
	}
	return 0;
}

int nc_drv_parse(const char *spec, unsigned index, struct nc_drv_port *out, char *err,
                 size_t errlen)
{
	char names[256];
	memset(out, 0, sizeof(*out));
	const char *colon = strchr(spec, ':');
	size_t nlen = colon ? (size_t)(colon - spec) : strlen(spec);
	char dname[32];
	if (nlen == 0 || nlen >= sizeof(dname)) {
		snprintf(err, errlen, "port '%.64s': expected DRIVER:ARGS", spec);
		return -EINVAL;
	}
	memcpy(dname, spec, nlen);
	dname[nlen] = '\0';
	out->drv = nc_drv_find(dname);
	if (out->drv == NULL) {
		const char *all[MAX_DRIVERS + 1] = {0};
		for (unsigned i = 0; i < n_drivers; i++)
			all[i] = drivers[i]->name;
		list_names(names, sizeof(names), all);
		snprintf(err, errlen, "port '%.64s': unknown driver '%s' (drivers: %s)", spec,
		         dname, names);
		return -EINVAL;
	}
	const struct nc_drv *d = out->drv;
	const char *args = colon ? colon + 1 : "";
	while (*args) {
		const char *end = strchr(args, ',');
		size_t len = end ? (size_t)(end - args) : strlen(args);
		const char *eq = memchr(args, '=', len);
		if (len == 0) {
			snprintf(err, errlen, "%s: empty argument in '%.64s'", d->name, spec);
			return -EINVAL;
		}
		if (eq == NULL || eq == args) {
			snprintf(err, errlen, "%s: argument '%.*s' is not KEY=VALUE", d->name,
			         (int)(len > 64 ? 64 : len), args);
			return -EINVAL;
		}
		size_t klen = (size_t)(eq - args), vlen = len - klen - 1;
		if (out->n_args == NC_DRV_MAX_ARGS || klen >= sizeof(out->args[0].key) ||
		    vlen >= sizeof(out->args[0].value)) {
			snprintf(err, errlen, "%s: too many or too long arguments", d->name);
			return -EINVAL;
		}
		struct nc_drv_arg *a = &out->args[out->n_args];
		memcpy(a->key, args, klen);
		memcpy(a->value, eq + 1, vlen);
		/* EAL splits a pair at '=' and reads a value that starts with '['
		 * as a list up to ']' (commas in it included): such a value would
		 * reach the PMD as something else, or swallow the arguments after
		 * it. */
		if (strpbrk(a->value, "=[]") != NULL) {
			snprintf(err, errlen,
			         "%s: argument '%s': a value cannot hold '=', '[' or ']'", d->name,
			         a->key);
			return -EINVAL;
		}
		bool known = false;
		for (const char *const *k = d->keys; k && *k; k++)
			known |= strcmp(*k, a->key) == 0;
		if (!known) {
			list_names(names, sizeof(names), d->keys);
			snprintf(err, errlen, "%s: unknown argument '%s' (known: %s)", d->name,
			         a->key, names);
			return -EINVAL;
		}
		if (nc_drv_arg(out, a->key) != NULL) {
			snprintf(err, errlen, "%s: argument '%s' given twice", d->name, a->key);
			return -EINVAL;
		}
		if (vlen == 0) {
			snprintf(err, errlen, "%s: argument '%s' has no value", d->name, a->key);
			return -EINVAL;
		}
		out->n_args++;
		args += len + (end ? 1 : 0);
		if (end && *args == '\0') {
			snprintf(err, errlen, "%s: trailing ',' in '%.64s'", d->name, spec);
			return -EINVAL;
		}
	}
	for (const char *const *k = d->required; k && *k; k++) {
		if (nc_drv_arg(out, *k) == NULL) {
			snprintf(err, errlen, "%s: argument '%s' is required", d->name, *k);
			return -EINVAL;
		}
	}
	for (const char *const *def = d->defaults; def && *def; def++) {
		const char *eq = strchr(*def, '=');
		size_t klen = eq ? (size_t)(eq - *def) : 0;
		struct nc_drv_arg *a = &out->args[out->n_args];
		if (klen == 0 || klen >= sizeof(a->key) || strlen(eq + 1) >= sizeof(a->value))
			continue; /* a driver's own table: cannot happen */
		char key[sizeof(a->key)];
		memcpy(key, *def, klen);
		key[klen] = '\0';
		if (nc_drv_arg(out, key) != NULL)
			continue;
		if (out->n_args == NC_DRV_MAX_ARGS) {
			snprintf(err, errlen, "%s: too many arguments", d->name);
			return -EINVAL;
		}
		snprintf(a->key, sizeof(a->key), "%s", key);
		snprintf(a->value, sizeof(a->value), "%s", eq + 1);
		out->n_args++;
	}
	snprintf(out->devname, sizeof(out->devname), "%s%u", d->pmd, index);
	int rc = build_devargs(out, err, errlen);
	if (rc)
		return rc;
	return d->check ? d->check(out, err, errlen) : 0;
}

int nc_drv_devargs_shown(const struct nc_drv_port *p, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s", p->devname);
	for (unsigned i = 0; i < p->n_args && n >= 0 && (size_t)n < len; i++) {
		bool secret = strcmp(p->args[i].key, "secret") == 0;
		n += snprintf(buf + n, len - (size_t)n, ",%s=%s", p->args[i].key,
		              secret ? "(set)" : p->args[i].value);
	}
	return n >= 0 && (size_t)n < len ? 0 : -E2BIG;
}

int nc_drv_set_arg(struct nc_drv_port *p, const char *key, const char *value)
{
	struct nc_drv_arg *a = NULL;
	if (strlen(key) >= sizeof(a->key) || strlen(value) >= sizeof(a->value))
		return -E2BIG;
	for (unsigned i = 0; i < p->n_args && a == NULL; i++)
		if (strcmp(p->args[i].key, key) == 0)
			a = &p->args[i];
	if (a == NULL) {
		if (p->n_args == NC_DRV_MAX_ARGS)
			return -E2BIG;
		a = &p->args[p->n_args++];
	}
	snprintf(a->key, sizeof(a->key), "%s", key);
	snprintf(a->value, sizeof(a->value), "%s", value);
	return 0;
}

int nc_drv_fit_mtu(struct nc_drv_port *p, unsigned mtu, unsigned *room, char *err, size_t errlen)
{
	if (p->drv->fit_mtu != NULL) {
		int rc = p->drv->fit_mtu(p, mtu, room, err, errlen);
		if (rc)
			return rc;
	}
	return build_devargs(p, err, errlen);
}
