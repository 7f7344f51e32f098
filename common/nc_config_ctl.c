/* SPDX-License-Identifier: BSD-3-Clause */
/* nc_config_ctl: config.get and config.set on the control socket. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nc_config_ctl.h"

json_t *nc_config_value_json(const struct nc_config *cfg, const char *name)
{
	const struct nc_cfg_def *d = nc_config_find(cfg, name);
	if (d == NULL)
		return NULL;
	switch (d->type) {
	case NC_CFG_BOOL:
		return json_boolean(nc_config_get_bool(cfg, name));
	case NC_CFG_INT:
		return json_integer((json_int_t)nc_config_get_int(cfg, name));
	case NC_CFG_STR:
	case NC_CFG_ENUM:
		return json_string(nc_config_get_str(cfg, name));
	case NC_CFG_STRLIST: {
		const char *const *items;
		unsigned n = nc_config_get_list(cfg, name, &items);
		json_t *a = json_array();
		for (unsigned i = 0; i < n; i++)
			json_array_append_new(a, json_string(items[i]));
		return a;
	}
	}
	return json_null();
}

/* A key's value as config.get and config.set show it: a secret only as
 * whether it is set. */
static json_t *shown_value(const struct nc_config *cfg, const struct nc_cfg_def *d)
{
	if (!d->secret)
		return nc_config_value_json(cfg, d->name);
	const char *v = d->type == NC_CFG_STR ? nc_config_get_str(cfg, d->name) : NULL;
	return json_string(v != NULL && v[0] != '\0' ? "(set, not shown)" : "");
}

static json_t *describe(const struct nc_config *cfg, const struct nc_cfg_def *d)
{
	json_t *o = json_pack("{s:s, s:o, s:s, s:s, s:b, s:s}", "key", d->name, "value",
	                      shown_value(cfg, d), "type", nc_cfg_type_name(d->type), "default",
	                      d->defval ? d->defval : "", "runtime", d->runtime, "help",
	                      d->help ? d->help : "");
	if (o != NULL && d->secret)
		json_object_set_new(o, "secret", json_true());
	if (d->type == NC_CFG_INT) {
		json_object_set_new(o, "min", json_integer((json_int_t)d->min));
		json_object_set_new(o, "max", json_integer((json_int_t)d->max));
	} else if (d->type == NC_CFG_ENUM && d->choices) {
		json_t *c = json_array();
		for (const char *const *p = d->choices; *p; p++)
			json_array_append_new(c, json_string(*p));
		json_object_set_new(o, "choices", c);
	}
	return o;
}

static int m_get(const json_t *params, json_t **result, void *arg, char *err, size_t errlen)
{
	struct nc_config *cfg = arg;
	const char *key = json_string_value(json_object_get(params, "key"));
	if (key != NULL) {
		const struct nc_cfg_def *d = nc_config_find(cfg, key);
		if (d == NULL) {
			snprintf(err, errlen, "config.get: unknown key '%.100s'", key);
			return -EINVAL;
		}
		*result = describe(cfg, d);
		return 0;
	}
	json_t *all = json_array();
	for (size_t i = 0; i < nc_config_count(cfg); i++)
		json_array_append_new(all, describe(cfg, nc_config_def_at(cfg, i)));
	*result = json_pack("{s:o}", "keys", all);
	return 0;
}

/* JSON value -> the text nc_config_set parses. Malloc'd, or NULL with why
 * in @p err (nothing there: out of memory). */
static char *value_text(const json_t *v, char *err, size_t errlen)
{
	static const char bad_type[] =
	        "config.set: 'value' must be a string, integer, boolean or list of strings";
	char *s = NULL;
	switch (json_typeof(v)) {
	case JSON_STRING:
		return strdup(json_string_value(v));
	case JSON_INTEGER:
		if (asprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0)
			return NULL;
		return s;
	case JSON_TRUE:
		return strdup("true");
	case JSON_FALSE:
		return strdup("false");
	case JSON_ARRAY: {
		size_t i, len = 1;
		json_t *it;
		json_array_foreach (v, i, it) {
			const char *item = json_string_value(it);
			if (item == NULL) {
				snprintf(err, errlen, "%s", bad_type);
				return NULL;
			}
			/* joined with ';' for the parser: an item must not hold one */
			if (item[0] == '\0' || strchr(item, ';') != NULL) {
				snprintf(err, errlen,
				         "config.set: list item %zu is empty or holds a ';'", i);
				return NULL;
			}
			len += strlen(item) + 1;
		}
		s = calloc(1, len);
		if (s == NULL)
			return NULL;
		json_array_foreach (v, i, it) {
			if (i)
				strcat(s, ";");
			strcat(s, json_string_value(it));
		}
		return s;
	}
	default:
		snprintf(err, errlen, "%s", bad_type);
		return NULL;
	}
}

static int m_set(const json_t *params, json_t **result, void *arg, char *err, size_t errlen)
{
	struct nc_config *cfg = arg;
	const char *key = json_string_value(json_object_get(params, "key"));
	const struct nc_cfg_def *d = nc_config_find(cfg, key);
	if (d == NULL) {
		snprintf(err, errlen, "config.set: unknown key '%.100s'", key);
		return -EINVAL;
	}
	err[0] = '\0';
	char *text = value_text(json_object_get(params, "value"), err, errlen);
	if (text == NULL)
		return err[0] != '\0' ? -EINVAL : -ENOMEM;
	json_t *old = shown_value(cfg, d);
	int rc = nc_config_set(cfg, key, text, true, err, errlen);
	free(text);
	if (rc != 0) {
		json_decref(old);
		return rc == -ENOENT ? -EINVAL : rc;
	}
	*result = json_pack("{s:s, s:o, s:o}", "key", key, "value", shown_value(cfg, d), "previous",
	                    old);
	return 0;
}

static const struct nc_ctl_param get_params[] = {
        {"key", NC_CTL_STRING, false, "one key; all keys when absent"},
        {NULL, 0, false, NULL},
};

static const struct nc_ctl_param set_params[] = {
        {"key", NC_CTL_STRING, true, "the key, section.name"},
        {"value", NC_CTL_ANY, true, "string, integer, boolean or list of strings"},
        {NULL, 0, false, NULL},
};

static const struct nc_ctl_method config_methods[] = {
        {"config.get", "configuration keys with value, type, bounds, default and help", get_params,
         m_get},
        {"config.set", "change a run-time key (bounds and apply hooks as for the file)", set_params,
         m_set},
        {NULL, NULL, NULL, NULL},
};

int nc_config_ctl_register(struct nc_ctl *ctl, struct nc_config *cfg)
{
	return nc_ctl_register_all(ctl, config_methods, cfg);
}
