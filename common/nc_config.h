/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nc_config: the appliance's configuration as one table.
 *
 * Every key is a row of a table (struct nc_cfg_def): name, type, bounds,
 * default, whether it may change at run time, and an apply callback. Loading
 * the YAML file, a --set on the command line and config.set on the control
 * socket all go through the same path: strict parse of the text, bounds check,
 * apply callback, store. (Redis config.c's static_configs[] is the model.)
 *
 * The file is YAML with two levels, "section: { key: value }", so the table
 * names keys "section.key". It is read with libcyaml (a schema generated from
 * the table, every leaf as text), then every value is parsed here strictly:
 *   bool     exactly "true" or "false"
 *   int      optional '-', decimal digits only, no overflow, within [min, max]
 *   string   length within [min, max] (max 0: unbounded)
 *   enum     one of the def's choices
 *   strlist  a YAML sequence of non-empty strings, count within [min, max];
 *            as text (--set, config.set): items separated by ';'
 * Unknown keys, duplicate keys, a mapping where a value belongs and YAML
 * syntax errors are errors too. Every error message names the file, the line
 * and the key: "novacron.yaml:12: dataplane.workers: expected an integer,
 * got '4 threads'".
 *
 * Return convention: constructors return a pointer or NULL with errno; other
 * functions return 0 or a negative errno and, where they take err/errlen,
 * write a one-line message there on failure.
 *
 * Threads: set/load take an internal lock; getters of bool/int are safe from
 * any thread. An enum's string is the table's own and stays valid for good;
 * any other string returned by a getter stays valid until that key is set
 * again: read run-time-changeable strings from the thread that sets them
 * (today only enums change at run time).
 */
#ifndef NC_CONFIG_H
#define NC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum nc_cfg_type {
	NC_CFG_BOOL,
	NC_CFG_INT,
	NC_CFG_STR,
	NC_CFG_ENUM,
	NC_CFG_STRLIST,
};

/** A value of any type; strings are owned by whoever built the value. */
struct nc_cfg_value {
	enum nc_cfg_type type;
	union {
		bool b;
		int64_t i;
		const char *s; /* NC_CFG_STR and NC_CFG_ENUM */
		struct {
			const char *const *items;
			unsigned n;
		} list;
	} u;
};

struct nc_config;
struct nc_cfg_def;

/**
 * Called before a new value is stored, after it parsed and passed the bounds
 * check. Returns 0 to accept it or a negative errno (and a message in err) to
 * refuse it; a refused value leaves the old one in place. @p value is only
 * valid during the call. Called with the config's lock NOT held: it may read
 * other keys.
 */
typedef int (*nc_cfg_apply_fn)(const struct nc_cfg_def *def, const struct nc_cfg_value *value,
                               void *arg, char *err, size_t errlen);

/** One row of the table. */
struct nc_cfg_def {
	const char *name; /**< "section.key" */
	enum nc_cfg_type type;
	int64_t min;        /**< int: lowest; string: shortest; strlist: fewest items */
	int64_t max;        /**< int: highest; string/strlist: longest/most, 0 = unbounded */
	const char *defval; /**< the default, as text, parsed like any other value */
	const char *const *choices; /**< enum: NULL-terminated list of allowed values */
	bool runtime;               /**< may change with config.set while the process runs */
	const char *help;           /**< one line for config.get and the docs */
	bool secret; /**< a key: config.get tells only whether it is set, never the value */
};

/**
 * Create a config holding the table's defaults (the table must outlive it).
 * A default that fails its own def is a programming error: NULL, errno EINVAL,
 * and a log line naming the key.
 */
struct nc_config *nc_config_create(const struct nc_cfg_def *defs, size_t n);
void nc_config_destroy(struct nc_config *cfg);

/**
 * Attach an apply callback to key @p name (replacing any earlier one).
 * Returns 0 or -ENOENT for an unknown key.
 */
int nc_config_set_apply(struct nc_config *cfg, const char *name, nc_cfg_apply_fn fn, void *arg);

/**
 * Load a YAML file over the current values. All or nothing: on any error no
 * value changes. Keys absent from the file keep their current value. Apply
 * callbacks run for every key the file sets.
 * Errors: -ENOENT/-EACCES/... (cannot open, message "PATH: cannot open: ..."),
 * -EINVAL (syntax, unknown key, bad value; message "PATH:LINE: key: ...").
 */
int nc_config_load_file(struct nc_config *cfg, const char *path, char *err, size_t errlen);

/** The same for a document in memory; @p name stands for the file in messages. */
int nc_config_load_string(struct nc_config *cfg, const char *yaml, size_t len, const char *name,
                          char *err, size_t errlen);

/**
 * Set key @p name from @p text. With @p running true, a key whose def is not
 * runtime is refused with -EPERM ("... cannot change while running").
 * Errors: -ENOENT unknown key, -EINVAL bad value, -EPERM, or the apply
 * callback's error.
 */
int nc_config_set(struct nc_config *cfg, const char *name, const char *text, bool running,
                  char *err, size_t errlen);

/** The def of key @p name, or NULL. */
const struct nc_cfg_def *nc_config_find(const struct nc_config *cfg, const char *name);

/** Number of keys, and the i-th def in table order. */
size_t nc_config_count(const struct nc_config *cfg);
const struct nc_cfg_def *nc_config_def_at(const struct nc_config *cfg, size_t i);

/* Getters. Asking for a key that does not exist or has another type aborts:
 * it is a programming error, caught by the first test that runs it. */
bool nc_config_get_bool(const struct nc_config *cfg, const char *name);
int64_t nc_config_get_int(const struct nc_config *cfg, const char *name);
const char *nc_config_get_str(const struct nc_config *cfg, const char *name); /* str or enum */
unsigned nc_config_get_list(const struct nc_config *cfg, const char *name,
                            const char *const **items);

/**
 * Format the current value of @p name as text that nc_config_set accepts
 * (lists joined with ';'). Returns the length that was needed (like
 * snprintf), or -ENOENT.
 */
int nc_config_format(const struct nc_config *cfg, const char *name, char *buf, size_t len);

/** "bool", "int", "string", "enum", "list". */
const char *nc_cfg_type_name(enum nc_cfg_type type);

#endif /* NC_CONFIG_H */
