/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of nc_config: defaults, the YAML loader's strictness and error
 * messages (file, line, key), all-or-nothing loads, nc_config_set at run time,
 * apply callbacks and nc_config_format round trips.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "nc_config.h"
#include "nc_config_ctl.h"
#include "nc_log.h"

static const char *const modes[] = {"precopy", "postcopy", "hybrid", NULL};

/* clang-format off */
static const struct nc_cfg_def defs[] = {
	{"log.verbose", NC_CFG_BOOL, 0, 0, "false", NULL, true, "verbose logging", false},
	{"log.file", NC_CFG_STR, 0, 0, "", NULL, true, "log file, empty: stderr", false},
	{"dataplane.workers", NC_CFG_INT, 1, 64, "4", NULL, false, "worker threads", false},
	{"dataplane.lcores", NC_CFG_STRLIST, 1, 3, "0;1", NULL, false, "lcores", false},
	{"dataplane.offset", NC_CFG_INT, INT64_MIN, INT64_MAX, "0", NULL, false, "any int64", false},
	{"node.name", NC_CFG_STR, 1, 8, "nova", NULL, false, "node name", false},
	{"migration.mode", NC_CFG_ENUM, 0, 0, "precopy", modes, true, "migration mode", false},
	{"migration.bandwidth", NC_CFG_INT, 0, 100000, "1000", NULL, true, "MB/s", false},
	{"migration.peers", NC_CFG_STRLIST, 0, 0, "", NULL, true, "peer addresses", false},
	{"node.key", NC_CFG_STR, 0, 64, "", NULL, false, "a secret", true},
};
/* clang-format on */
#define NDEFS (sizeof(defs) / sizeof(defs[0]))

struct fixture {
	struct nc_config *cfg;
	char err[512];
	char path[64]; /* temp file, "" if none */
};

/* Apply callback state for migration.bandwidth. */
struct apply_rec {
	unsigned calls;
	int64_t last;
	int64_t refuse; /* refuse this value */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->cfg = nc_config_create(defs, NDEFS);
	assert_non_null(f->cfg);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f->path[0] != '\0')
		unlink(f->path);
	nc_config_destroy(f->cfg);
	free(f);
	return 0;
}

/* Write @p text to a new temp file whose name is left in f->path. */
static void write_tmp(struct fixture *f, const char *text)
{
	if (f->path[0] != '\0')
		unlink(f->path);
	snprintf(f->path, sizeof(f->path), "/tmp/test_config_XXXXXX");
	int fd = mkstemp(f->path);
	assert_true(fd >= 0);
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

static int load(struct fixture *f, const char *text)
{
	write_tmp(f, text);
	return nc_config_load_file(f->cfg, f->path, f->err, sizeof(f->err));
}

/* The message names the temp file with @p line and contains @p what. */
static void assert_err_at(struct fixture *f, unsigned line, const char *what)
{
	char where[96];
	snprintf(where, sizeof(where), "%s:%u: ", f->path, line);
	if (strstr(f->err, where) == NULL || strstr(f->err, what) == NULL)
		fail_msg("message '%s' lacks '%s' or '%s'", f->err, where, what);
	assert_null(strchr(f->err, '\n'));
}

static void assert_defaults(const struct nc_config *cfg)
{
	const char *const *items;
	assert_false(nc_config_get_bool(cfg, "log.verbose"));
	assert_string_equal(nc_config_get_str(cfg, "log.file"), "");
	assert_int_equal(nc_config_get_int(cfg, "dataplane.workers"), 4);
	assert_int_equal(nc_config_get_list(cfg, "dataplane.lcores", &items), 2);
	assert_string_equal(items[0], "0");
	assert_string_equal(items[1], "1");
	assert_int_equal(nc_config_get_int(cfg, "dataplane.offset"), 0);
	assert_string_equal(nc_config_get_str(cfg, "node.name"), "nova");
	assert_string_equal(nc_config_get_str(cfg, "migration.mode"), "precopy");
	assert_int_equal(nc_config_get_int(cfg, "migration.bandwidth"), 1000);
	assert_int_equal(nc_config_get_list(cfg, "migration.peers", &items), 0);
}

static void test_defaults(void **state)
{
	struct fixture *f = *state;
	assert_defaults(f->cfg);
	assert_int_equal(nc_config_count(f->cfg), NDEFS);
	assert_ptr_equal(nc_config_def_at(f->cfg, 2), &defs[2]);
	assert_null(nc_config_def_at(f->cfg, NDEFS));
	assert_ptr_equal(nc_config_find(f->cfg, "node.name"), &defs[5]);
	assert_null(nc_config_find(f->cfg, "node.nam"));
	assert_string_equal(nc_cfg_type_name(NC_CFG_STRLIST), "list");
	assert_string_equal(nc_cfg_type_name(NC_CFG_STR), "string");
}

/* One request through config.get / config.set; the reply (new reference). */
static json_t *ctl_call(struct nc_ctl *ctl, const char *line)
{
	json_t *r = nc_ctl_handle_line(ctl, line, strlen(line));
	assert_non_null(r);
	return r;
}

/* config.get never shows a secret key's value, only whether it is set. */
static void test_ctl_secret_hidden(void **state)
{
	struct fixture *f = *state;
	struct nc_ctl *ctl = nc_ctl_create("/tmp/nc-test-config-ctl.sock");
	assert_non_null(ctl);
	assert_int_equal(nc_config_ctl_register(ctl, f->cfg), 0);
	char err[256];
	json_t *r =
	        ctl_call(ctl, "{\"method\": \"config.get\", \"params\": {\"key\": \"node.key\"}}");
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(r, "result"), "value")), "");
	json_decref(r);
	assert_int_equal(
	        nc_config_set(f->cfg, "node.key", "0123456789abcdefXYZ", false, err, sizeof(err)),
	        0);
	r = ctl_call(ctl, "{\"method\": \"config.get\", \"params\": {\"key\": \"node.key\"}}");
	json_t *res = json_object_get(r, "result");
	assert_string_equal(json_string_value(json_object_get(res, "value")), "(set, not shown)");
	assert_true(json_is_true(json_object_get(res, "secret")));
	char *text = json_dumps(r, 0);
	assert_null(strstr(text, "XYZ"));
	free(text);
	json_decref(r);
	/* nor in the list of all keys */
	r = ctl_call(ctl, "{\"method\": \"config.get\"}");
	text = json_dumps(r, 0);
	assert_non_null(strstr(text, "node.key"));
	assert_null(strstr(text, "XYZ"));
	free(text);
	json_decref(r);
	/* an ordinary key still shows its value */
	r = ctl_call(ctl, "{\"method\": \"config.get\", \"params\": {\"key\": \"node.name\"}}");
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(r, "result"), "value")), "nova");
	json_decref(r);
	nc_ctl_destroy(ctl);
}

/* Text that is not UTF-8 is refused (values go out as JSON strings); so
 * are list items config.set could not keep apart. */
static void test_not_utf8_refused(void **state)
{
	struct fixture *f = *state;
	char err[256];
	const char *bad[] = {"h\xff", "h\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(nc_config_set(f->cfg, "log.file", bad[i], true, err, sizeof(err)),
		                 -EINVAL);
		assert_non_null(strstr(err, "not valid UTF-8"));
		assert_string_equal(nc_config_get_str(f->cfg, "log.file"), "");
	}
	assert_int_equal(nc_config_set(f->cfg, "migration.peers", "a;\xfe", true, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(nc_config_set(f->cfg, "log.file", "/var/log/caf\xc3\xa9-\xf0\x9f\x98\x80",
	                               true, err, sizeof(err)),
	                 0);

	struct nc_ctl *ctl = nc_ctl_create("/tmp/nc-test-config-ctl.sock");
	assert_non_null(ctl);
	assert_int_equal(nc_config_ctl_register(ctl, f->cfg), 0);
	json_t *r = ctl_call(ctl, "{\"method\": \"config.set\", \"params\": {\"key\": "
	                          "\"migration.peers\", \"value\": [\"a;b\"]}}");
	assert_false(json_is_true(json_object_get(r, "ok")));
	assert_non_null(
	        strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")),
	               "holds a ';'"));
	json_decref(r);
	r = ctl_call(ctl, "{\"method\": \"config.set\", \"params\": {\"key\": "
	                  "\"migration.peers\", \"value\": [\"a\", \"\"]}}");
	assert_false(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	r = ctl_call(ctl, "{\"method\": \"config.set\", \"params\": {\"key\": "
	                  "\"migration.peers\", \"value\": [\"a\", \"b\"]}}");
	assert_true(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	const char *const *items;
	assert_int_equal(nc_config_get_list(f->cfg, "migration.peers", &items), 2);
	nc_ctl_destroy(ctl);
}

static void test_create_bad_default(void **state)
{
	(void)state;
	static const struct nc_cfg_def bad[] = {
	        {"a.n", NC_CFG_INT, 1, 10, "11", NULL, false, "", false},
	};
	static const struct nc_cfg_def noname[] = {
	        {"nodot", NC_CFG_BOOL, 0, 0, "true", NULL, false, "", false},
	};
	static const struct nc_cfg_def twice[] = {
	        {"a.b", NC_CFG_BOOL, 0, 0, "true", NULL, false, "", false},
	        {"a.b", NC_CFG_BOOL, 0, 0, "true", NULL, false, "", false},
	};
	/* Each logs one error line naming the key. */
	errno = 0;
	assert_null(nc_config_create(bad, 1));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(nc_config_create(noname, 1));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(nc_config_create(twice, 2));
	assert_int_equal(errno, EINVAL);
}

static void test_full_valid_file(void **state)
{
	struct fixture *f = *state;
	const char *const *items;
	int rc = load(f, "# NovaCron\n"
	                 "log:\n"
	                 "  verbose: true\n"
	                 "  file: \"/var/log/nc.log\"\n"
	                 "dataplane:\n"
	                 "  workers: 64\n"
	                 "  lcores: [2, 3, '4']\n"
	                 "  offset: -9223372036854775808\n"
	                 "node: {name: alpha}\n"
	                 "migration:\n"
	                 "  mode: hybrid\n"
	                 "  bandwidth: 0\n"
	                 "  peers:\n"
	                 "    - 10.0.0.1\n"
	                 "    - 10.0.0.2\n");
	assert_int_equal(rc, 0);
	assert_true(nc_config_get_bool(f->cfg, "log.verbose"));
	assert_string_equal(nc_config_get_str(f->cfg, "log.file"), "/var/log/nc.log");
	assert_int_equal(nc_config_get_int(f->cfg, "dataplane.workers"), 64);
	assert_int_equal(nc_config_get_list(f->cfg, "dataplane.lcores", &items), 3);
	assert_string_equal(items[0], "2");
	assert_string_equal(items[2], "4");
	assert_true(nc_config_get_int(f->cfg, "dataplane.offset") == INT64_MIN);
	assert_string_equal(nc_config_get_str(f->cfg, "node.name"), "alpha");
	assert_string_equal(nc_config_get_str(f->cfg, "migration.mode"), "hybrid");
	assert_int_equal(nc_config_get_int(f->cfg, "migration.bandwidth"), 0);
	assert_int_equal(nc_config_get_list(f->cfg, "migration.peers", &items), 2);
	assert_string_equal(items[1], "10.0.0.2");
	assert_null(items[2]);
}

static void test_partial_file_keeps_other_values(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(load(f, "dataplane:\n  workers: 8\nnode:\n"), 0);
	assert_int_equal(nc_config_get_int(f->cfg, "dataplane.workers"), 8);
	assert_string_equal(nc_config_get_str(f->cfg, "node.name"), "nova");
	assert_int_equal(load(f, "migration:\n  mode: postcopy\n"), 0);
	assert_int_equal(nc_config_get_int(f->cfg, "dataplane.workers"), 8);
	assert_string_equal(nc_config_get_str(f->cfg, "migration.mode"), "postcopy");
}

/* Load a one-key file and check the error and that nothing changed. */
static void bad_value(struct fixture *f, const char *yaml, unsigned line, const char *what)
{
	assert_int_equal(load(f, yaml), -EINVAL);
	assert_err_at(f, line, what);
	assert_defaults(f->cfg);
}

static void test_bad_int_suffix(void **state)
{
	bad_value(*state, "dataplane:\n  workers: 70x1\n", 2,
	          "dataplane.workers: expected an integer, got '70x1'");
}

static void test_bad_int_words(void **state)
{
	struct fixture *f = *state;
	bad_value(f, "\n\ndataplane:\n  lcores: [1]\n  workers: 4 threads\n", 5,
	          "dataplane.workers: expected an integer, got '4 threads'");
	char want[128];
	snprintf(want, sizeof(want),
	         "%s:5: dataplane.workers: expected an integer, got '4 threads'", f->path);
	assert_string_equal(f->err, want);
}

static void test_bad_bool(void **state)
{
	bad_value(*state, "log:\n  file: x\n  verbose: maybe\n", 3,
	          "log.verbose: expected true or false, got 'maybe'");
	bad_value(*state, "log:\n  verbose: yes\n", 2, "got 'yes'");
	bad_value(*state, "log:\n  verbose: True\n", 2, "got 'True'");
}

static void test_int_out_of_range(void **state)
{
	bad_value(*state, "dataplane:\n  workers: 70\n", 2,
	          "dataplane.workers: 70 is out of range [1, 64]");
	bad_value(*state, "dataplane:\n  workers: 0\n", 2,
	          "dataplane.workers: 0 is out of range [1, 64]");
	bad_value(*state, "dataplane:\n  workers: -1\n", 2, "-1 is out of range [1, 64]");
}

static void test_int_overflow(void **state)
{
	bad_value(*state, "dataplane:\n  offset: 99999999999999999999\n", 2,
	          "dataplane.offset: 99999999999999999999 is out of range");
	bad_value(*state, "dataplane:\n  offset: 9223372036854775808\n", 2, "out of range");
	bad_value(*state, "dataplane:\n  offset: -9223372036854775809\n", 2, "out of range");
}

static void test_empty_value(void **state)
{
	bad_value(*state, "dataplane:\n  workers:\n", 2,
	          "dataplane.workers: expected an integer, got ''");
	bad_value(*state, "node:\n  name: ''\n", 2, "node.name: length 0 is out of range [1, 8]");
	bad_value(*state, "dataplane:\n  lcores: ['1', '']\n", 2,
	          "dataplane.lcores: item 2 is empty");
}

static void test_enum_not_in_choices(void **state)
{
	bad_value(*state, "migration:\n  mode: live\n", 2,
	          "migration.mode: expected one of 'precopy', 'postcopy', 'hybrid', got 'live'");
}

static void test_string_too_long(void **state)
{
	bad_value(*state, "node:\n  name: abcdefghi\n", 2,
	          "node.name: length 9 is out of range [1, 8]");
}

static void test_list_bounds(void **state)
{
	bad_value(*state, "dataplane:\n  lcores: [1, 2, 3, 4]\n", 2,
	          "dataplane.lcores: item count 4 is out of range [1, 3]");
	bad_value(*state, "dataplane:\n  lcores: []\n", 2, "item count 0 is out of range [1, 3]");
	bad_value(*state, "dataplane:\n  lcores: 1\n", 2,
	          "dataplane.lcores: expected a list, got a scalar");
	bad_value(*state, "dataplane:\n  lcores:\n   - [1]\n", 3,
	          "dataplane.lcores: list items must be strings, got a sequence");
	bad_value(*state, "dataplane:\n  lcores: ['a;b']\n", 2, "item 1 contains ';'");
}

static void test_empty_list_allowed(void **state)
{
	struct fixture *f = *state;
	const char *const *items;
	assert_int_equal(load(f, "migration:\n  peers: [a]\n"), 0);
	assert_int_equal(load(f, "migration:\n  peers: []\n"), 0);
	assert_int_equal(nc_config_get_list(f->cfg, "migration.peers", &items), 0);
	assert_non_null(items);
}

static void test_unknown_key(void **state)
{
	struct fixture *f = *state;
	bad_value(f, "dataplane:\n  workers: 2\n  lcore: [1]\n", 3,
	          "unknown key 'dataplane.lcore' (did you mean 'dataplane.lcores'?)");
	/* A key in the wrong section. */
	bad_value(f, "log:\n  workers: 2\n", 2,
	          "unknown key 'log.workers' (did you mean 'dataplane.workers'?)");
	/* Nothing close: no suggestion. */
	bad_value(f, "log:\n  colour: red\n", 2, "unknown key 'log.colour'");
	assert_null(strstr(f->err, "did you mean"));
}

static void test_unknown_section(void **state)
{
	struct fixture *f = *state;
	bad_value(f, "log:\n  verbose: true\n\ndataplan:\n  workers: 2\n", 4,
	          "unknown section 'dataplan' (did you mean 'dataplane'?)");
	bad_value(f, "workers: 2\n", 1,
	          "unknown section 'workers' (did you mean 'dataplane.workers'?)");
	bad_value(f, "zzzzzz: {}\n", 1, "unknown section 'zzzzzz'");
	assert_null(strstr(f->err, "did you mean"));
}

static void test_duplicate_key(void **state)
{
	bad_value(*state, "dataplane:\n  workers: 2\n  workers: 3\n", 3,
	          "duplicate key 'dataplane.workers' (first at line 2)");
	bad_value(*state, "log: {}\nnode: {}\nlog: {}\n", 3,
	          "duplicate section 'log' (first at line 1)");
}

/* The message starts with "FILE:LINE:COLUMN: YAML syntax error: ". */
static void syntax_error(struct fixture *f, const char *yaml, unsigned line, unsigned col,
                         const char *what)
{
	char want[160];
	assert_int_equal(load(f, yaml), -EINVAL);
	snprintf(want, sizeof(want), "%s:%u:%u: YAML syntax error: ", f->path, line, col);
	if (strstr(f->err, want) != f->err || strstr(f->err, what) == NULL)
		fail_msg("message '%s' lacks '%s' or '%s'", f->err, want, what);
	assert_defaults(f->cfg);
}

static void test_syntax_error(void **state)
{
	struct fixture *f = *state;
	syntax_error(f, "log:\n  verbose: true\nmigration:\n  peers: [a\n", 5, 1,
	             "(while parsing a flow sequence at line 4)");
	syntax_error(f, "log:\n  verbose: true\n bad: x: y\n", 3, 2, "");
	syntax_error(f, "node:\n  name: 'abc\n", 3, 1, "quoted scalar");
	/* Invalid UTF-8 is a read error, also with line and column. */
	char want[128];
	assert_int_equal(load(f, "log:\n  file: \"a\xff\"\n"), -EINVAL);
	snprintf(want, sizeof(want), "%s:2:11: cannot read YAML: invalid leading UTF-8 octet",
	         f->path);
	assert_string_equal(f->err, want);
}

static void test_wrong_shape(void **state)
{
	bad_value(*state, "dataplane:\n  workers:\n    a: 1\n", 2,
	          "dataplane.workers: expected a single value, got a mapping");
	bad_value(*state, "dataplane:\n  workers: [1]\n", 2,
	          "dataplane.workers: expected a single value, got a sequence");
	bad_value(*state, "log: true\n", 1, "log: expected a mapping of keys, got a scalar");
	bad_value(*state, "log:\n  - verbose\n", 1,
	          "log: expected a mapping of keys, got a sequence");
	bad_value(*state, "- a\n- b\n", 1, "expected a mapping of sections, got a sequence");
	bad_value(*state, "just text\n", 1, "expected a mapping of sections, got a scalar");
}

static void test_anchors_aliases_documents(void **state)
{
	bad_value(*state, "log:\n  file: &a x\nnode:\n  name: *a\n", 2, "anchors are not allowed");
	bad_value(*state, "node:\n  name: *a\n", 2, "aliases are not allowed");
	bad_value(*state, "log:\n  verbose: true\n---\nlog:\n  verbose: false\n", 3,
	          "more than one YAML document");
	bad_value(*state, "node:\n  name: !!str x\n", 2, "tags are not allowed");
	bad_value(*state, "node:\n  name: \"a\\0b\"\n", 2, "node.name: value contains a NUL byte");
}

static void test_missing_file(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(nc_config_load_file(f->cfg, "/nope.yaml", f->err, sizeof(f->err)),
	                 -ENOENT);
	assert_string_equal(f->err, "/nope.yaml: cannot open: No such file or directory");
	assert_int_equal(nc_config_load_file(f->cfg, "/tmp", f->err, sizeof(f->err)), -EISDIR);
	assert_non_null(strstr(f->err, "/tmp: cannot read:"));
	assert_defaults(f->cfg);
}

static int apply_bw(const struct nc_cfg_def *def, const struct nc_cfg_value *value, void *arg,
                    char *err, size_t errlen)
{
	struct apply_rec *r = arg;
	assert_string_equal(def->name, "migration.bandwidth");
	assert_int_equal(value->type, NC_CFG_INT);
	r->calls++;
	r->last = value->u.i;
	if (value->u.i == r->refuse) {
		snprintf(err, errlen, "link cannot do %lld MB/s", (long long)value->u.i);
		return -EBUSY;
	}
	return 0;
}

struct apply_mode_rec {
	unsigned calls;
	char last[16];
};

static int apply_mode(const struct nc_cfg_def *def, const struct nc_cfg_value *value, void *arg,
                      char *err, size_t errlen)
{
	struct apply_mode_rec *r = arg;
	(void)def;
	(void)err;
	(void)errlen;
	assert_int_equal(value->type, NC_CFG_ENUM);
	r->calls++;
	snprintf(r->last, sizeof(r->last), "%s", value->u.s);
	return 0;
}

static void test_all_or_nothing(void **state)
{
	struct fixture *f = *state;
	struct apply_rec r = {.refuse = -1};
	assert_int_equal(nc_config_set_apply(f->cfg, "migration.bandwidth", apply_bw, &r), 0);
	bad_value(f,
	          "log:\n  verbose: true\nmigration:\n  bandwidth: 5\n  mode: hybrid\n"
	          "node:\n  name: way-too-long\n",
	          7, "node.name: length 12");
	assert_int_equal(r.calls, 0); /* nothing applied before all parsed */
}

static void test_apply_refusal_on_load_rolls_back(void **state)
{
	struct fixture *f = *state;
	struct apply_mode_rec mr = {0};
	struct apply_rec r = {.refuse = 7};
	assert_int_equal(nc_config_set_apply(f->cfg, "migration.mode", apply_mode, &mr), 0);
	assert_int_equal(nc_config_set_apply(f->cfg, "migration.bandwidth", apply_bw, &r), 0);
	/* mode is before bandwidth in the table: applied, then rolled back. */
	assert_int_equal(load(f, "migration:\n  mode: hybrid\n  bandwidth: 7\n"), -EBUSY);
	assert_err_at(f, 3, "migration.bandwidth: link cannot do 7 MB/s");
	assert_int_equal(mr.calls, 2);
	assert_string_equal(mr.last, "precopy");
	assert_defaults(f->cfg);
	/* Accepted: both applied and stored. */
	assert_int_equal(load(f, "migration:\n  mode: hybrid\n  bandwidth: 8\n"), 0);
	assert_int_equal(mr.calls, 3);
	assert_string_equal(mr.last, "hybrid");
	assert_int_equal(r.last, 8);
	assert_int_equal(nc_config_get_int(f->cfg, "migration.bandwidth"), 8);
	assert_string_equal(nc_config_get_str(f->cfg, "migration.mode"), "hybrid");
}

static void test_set_runtime(void **state)
{
	struct fixture *f = *state;
	char *e = f->err;
	size_t el = sizeof(f->err);
	assert_int_equal(nc_config_set(f->cfg, "dataplane.workers", "8", true, e, el), -EPERM);
	assert_string_equal(e, "dataplane.workers cannot change while running");
	assert_int_equal(nc_config_get_int(f->cfg, "dataplane.workers"), 4);
	assert_int_equal(nc_config_set(f->cfg, "dataplane.workers", "8", false, e, el), 0);
	assert_int_equal(nc_config_get_int(f->cfg, "dataplane.workers"), 8);
	assert_int_equal(nc_config_set(f->cfg, "log.verbose", "true", true, e, el), 0);
	assert_true(nc_config_get_bool(f->cfg, "log.verbose"));
	assert_int_equal(nc_config_set(f->cfg, "log.verbose", "maybe", true, e, el), -EINVAL);
	assert_string_equal(e, "log.verbose: expected true or false, got 'maybe'");
	assert_true(nc_config_get_bool(f->cfg, "log.verbose"));
	assert_int_equal(nc_config_set(f->cfg, "dataplane.workers", "65", false, e, el), -EINVAL);
	assert_string_equal(e, "dataplane.workers: 65 is out of range [1, 64]");
	assert_int_equal(nc_config_set(f->cfg, "migration.peers", "a;b;c", true, e, el), 0);
	const char *const *items;
	assert_int_equal(nc_config_get_list(f->cfg, "migration.peers", &items), 3);
	assert_string_equal(items[2], "c");
	assert_int_equal(nc_config_set(f->cfg, "migration.peers", "a;;c", true, e, el), -EINVAL);
	assert_string_equal(e, "migration.peers: item 2 is empty");
	/* An enum's string stays valid after a set of another value: a thread
	 * that read it (a migration's guard check) while another sets it must
	 * not read freed memory (ASan would say so here). */
	const char *before = nc_config_get_str(f->cfg, "migration.mode");
	assert_int_equal(nc_config_set(f->cfg, "migration.mode", "postcopy", true, e, el), 0);
	assert_int_equal(nc_config_set(f->cfg, "migration.mode", "hybrid", true, e, el), 0);
	assert_string_equal(before, "precopy");
	assert_string_equal(nc_config_get_str(f->cfg, "migration.mode"), "hybrid");
}

static void test_set_unknown_key(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(
	        nc_config_set(f->cfg, "dataplane.lcore", "1", false, f->err, sizeof(f->err)),
	        -ENOENT);
	assert_string_equal(f->err,
	                    "dataplane.lcore: unknown key (did you mean 'dataplane.lcores'?)");
	assert_int_equal(nc_config_set(f->cfg, "nothing", "1", false, f->err, sizeof(f->err)),
	                 -ENOENT);
	assert_int_equal(nc_config_set_apply(f->cfg, "nothing", apply_bw, NULL), -ENOENT);
}

static void test_set_apply_callback(void **state)
{
	struct fixture *f = *state;
	struct apply_rec r = {.refuse = 500};
	assert_int_equal(nc_config_set_apply(f->cfg, "migration.bandwidth", apply_bw, &r), 0);
	assert_int_equal(
	        nc_config_set(f->cfg, "migration.bandwidth", "250", true, f->err, sizeof(f->err)),
	        0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.last, 250);
	assert_int_equal(nc_config_get_int(f->cfg, "migration.bandwidth"), 250);
	assert_int_equal(
	        nc_config_set(f->cfg, "migration.bandwidth", "500", true, f->err, sizeof(f->err)),
	        -EBUSY);
	assert_string_equal(f->err, "migration.bandwidth: link cannot do 500 MB/s");
	assert_int_equal(r.calls, 2);
	assert_int_equal(nc_config_get_int(f->cfg, "migration.bandwidth"), 250);
	/* A bad value never reaches the callback. */
	assert_int_equal(
	        nc_config_set(f->cfg, "migration.bandwidth", "1e3", true, f->err, sizeof(f->err)),
	        -EINVAL);
	assert_int_equal(r.calls, 2);
	/* Loading a file calls it too. */
	assert_int_equal(load(f, "migration:\n  bandwidth: 300\n"), 0);
	assert_int_equal(r.calls, 3);
	assert_int_equal(r.last, 300);
	/* Detached. */
	assert_int_equal(nc_config_set_apply(f->cfg, "migration.bandwidth", NULL, NULL), 0);
	assert_int_equal(
	        nc_config_set(f->cfg, "migration.bandwidth", "500", true, f->err, sizeof(f->err)),
	        0);
	assert_int_equal(r.calls, 3);
}

static int apply_reenter(const struct nc_cfg_def *def, const struct nc_cfg_value *value, void *arg,
                         char *err, size_t errlen)
{
	struct nc_config *cfg = arg;
	char e[128];
	(void)def;
	(void)value;
	/* Reading other keys is fine; setting them would deadlock. */
	assert_int_equal(nc_config_get_int(cfg, "dataplane.workers"), 4);
	assert_string_equal(nc_config_get_str(cfg, "node.name"), "nova");
	assert_int_equal(nc_config_set(cfg, "log.verbose", "true", true, e, sizeof(e)), -EDEADLK);
	snprintf(err, errlen, "no");
	return -EACCES;
}

static void test_apply_reentry(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(nc_config_set_apply(f->cfg, "log.file", apply_reenter, f->cfg), 0);
	assert_int_equal(nc_config_set(f->cfg, "log.file", "x", true, f->err, sizeof(f->err)),
	                 -EACCES);
	assert_string_equal(f->err, "log.file: no");
	assert_defaults(f->cfg);
}

static void test_strict_int_text(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {"",  "+1",  " 1",  "1 ",       "0x10", "1e3", "--1",
	                                  "-", "1.0", "1_0", "\xd9\xa3", "1\n",  "inf"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = nc_config_set(f->cfg, "dataplane.offset", bad[i], false, f->err,
		                       sizeof(f->err));
		if (rc != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
		assert_non_null(strstr(f->err, "dataplane.offset: expected an integer, got '"));
		assert_null(strchr(f->err, '\n'));
	}
	assert_int_equal(nc_config_set(f->cfg, "dataplane.offset", "-0", false, NULL, 0), 0);
	assert_int_equal(nc_config_get_int(f->cfg, "dataplane.offset"), 0);
	assert_int_equal(nc_config_set(f->cfg, "dataplane.offset", "007", false, NULL, 0), 0);
	assert_int_equal(nc_config_get_int(f->cfg, "dataplane.offset"), 7);
	assert_int_equal(
	        nc_config_set(f->cfg, "dataplane.offset", "9223372036854775807", false, NULL, 0),
	        0);
	assert_true(nc_config_get_int(f->cfg, "dataplane.offset") == INT64_MAX);
	assert_int_equal(
	        nc_config_set(f->cfg, "dataplane.offset", "-9223372036854775808", false, NULL, 0),
	        0);
	assert_true(nc_config_get_int(f->cfg, "dataplane.offset") == INT64_MIN);
	assert_int_equal(nc_config_set(f->cfg, "dataplane.offset", "99999999999999999999", false,
	                               f->err, sizeof(f->err)),
	                 -EINVAL);
	assert_non_null(strstr(f->err, "is out of range"));
}

/* format -> set -> format gives the same text and the same value. */
static void roundtrip(struct fixture *f, const char *name, const char *text)
{
	char a[256], b[256];
	assert_int_equal(nc_config_set(f->cfg, name, text, false, f->err, sizeof(f->err)), 0);
	int n = nc_config_format(f->cfg, name, a, sizeof(a));
	assert_int_equal(n, (int)strlen(a));
	assert_string_equal(a, text);
	assert_int_equal(nc_config_set(f->cfg, name, a, false, f->err, sizeof(f->err)), 0);
	assert_int_equal(nc_config_format(f->cfg, name, b, sizeof(b)), n);
	assert_string_equal(a, b);
}

static void test_format_roundtrip(void **state)
{
	struct fixture *f = *state;
	char buf[8];
	/* Defaults of every key. */
	for (size_t i = 0; i < NDEFS; i++) {
		char a[256];
		assert_true(nc_config_format(f->cfg, defs[i].name, a, sizeof(a)) >= 0);
		assert_string_equal(a, defs[i].defval);
		roundtrip(f, defs[i].name, a);
	}
	roundtrip(f, "log.verbose", "true");
	roundtrip(f, "log.verbose", "false");
	roundtrip(f, "dataplane.offset", "-9223372036854775808");
	roundtrip(f, "dataplane.offset", "9223372036854775807");
	roundtrip(f, "log.file", "/var/log/a b.log");
	roundtrip(f, "migration.mode", "postcopy");
	roundtrip(f, "dataplane.lcores", "1;2;3");
	roundtrip(f, "dataplane.lcores", "7");
	roundtrip(f, "migration.peers", "");
	/* snprintf-like truncation. */
	assert_int_equal(nc_config_set(f->cfg, "migration.peers", "abc;defg;h", false, NULL, 0), 0);
	assert_int_equal(nc_config_format(f->cfg, "migration.peers", NULL, 0), 10);
	assert_int_equal(nc_config_format(f->cfg, "migration.peers", buf, sizeof(buf)), 10);
	assert_string_equal(buf, "abc;def");
	assert_int_equal(nc_config_format(f->cfg, "dataplane.offset", buf, 3), 19);
	assert_string_equal(buf, "92");
	assert_int_equal(nc_config_format(f->cfg, "no.such", buf, sizeof(buf)), -ENOENT);
}

static void test_empty_and_comment_documents(void **state)
{
	struct fixture *f = *state;
	static const char *const docs[] = {"",       "\n\n",           "# only a comment\n",
	                                   "---\n",  "--- # c\n...\n", "{}\n",
	                                   "log:\n", "log: {}\n#x\n"};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		int rc = load(f, docs[i]);
		if (rc != 0)
			fail_msg("document %zu: %d %s", i, rc, f->err);
		assert_defaults(f->cfg);
	}
	assert_int_equal(nc_config_load_string(f->cfg, NULL, 0, "empty", f->err, sizeof(f->err)),
	                 0);
	assert_defaults(f->cfg);
}

static void test_load_string_name(void **state)
{
	struct fixture *f = *state;
	static const char doc[] = "node:\n  name: 123456789\n";
	/* Not NUL-terminated: only len bytes are read. */
	char buf[sizeof(doc) + 4];
	memcpy(buf, doc, sizeof(doc) - 1);
	memcpy(buf + sizeof(doc) - 1, "xxxx", 4);
	assert_int_equal(nc_config_load_string(f->cfg, buf, sizeof(doc) - 1, "inline.yaml", f->err,
	                                       sizeof(f->err)),
	                 -EINVAL);
	assert_string_equal(f->err, "inline.yaml:2: node.name: length 9 is out of range [1, 8]");
}

static void run_getter(const char *which)
{
	struct nc_config *cfg = nc_config_create(defs, NDEFS);
	nc_log_set_level(NC_LOG_ERR);
	if (strcmp(which, "type") == 0)
		(void)nc_config_get_int(cfg, "log.verbose");
	else
		(void)nc_config_get_bool(cfg, "log.nope");
	_exit(0);
}

static void test_getter_misuse_aborts(void **state)
{
	(void)state;
	static const char *const cases[] = {"type", "name"};
	for (size_t i = 0; i < 2; i++) {
		fflush(NULL);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			/* Keep the child's stderr quiet. */
			freopen("/dev/null", "w", stderr);
			run_getter(cases[i]);
		}
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFSIGNALED(st));
		assert_int_equal(WTERMSIG(st), SIGABRT);
	}
}

/* Mutations of a valid document: any outcome but a crash; errors stay one line. */
static void test_garbage_is_refused_cleanly(void **state)
{
	struct fixture *f = *state;
	static const char base[] = "log:\n  verbose: true\n  file: \"a\"\ndataplane:\n"
	                           "  workers: 8\n  lcores: [1, 2]\nmigration: {mode: hybrid}\n";
	static const char alphabet[] = ":-[]{}#&*!|>'\"\n \t,?%@`\\\x01\xff\xc3";
	char doc[sizeof(base) + 8];
	uint32_t seed = 12345;
	for (unsigned iter = 0; iter < 4000; iter++) {
		memcpy(doc, base, sizeof(base));
		size_t len = sizeof(base) - 1;
		for (unsigned m = 0; m < 1 + iter % 4; m++) {
			seed = seed * 1103515245u + 12345u;
			size_t pos = (seed >> 8) % len;
			seed = seed * 1103515245u + 12345u;
			doc[pos] = alphabet[(seed >> 8) % (sizeof(alphabet) - 1)];
		}
		if (iter % 5 == 0)
			len = (seed >> 4) % (len + 1); /* cut anywhere */
		int rc = nc_config_load_string(f->cfg, doc, len, "fuzz", f->err, sizeof(f->err));
		assert_true(rc == 0 || rc == -EINVAL);
		if (rc != 0) {
			assert_ptr_equal(strstr(f->err, "fuzz"), f->err);
			assert_null(strchr(f->err, '\n'));
		}
	}
	/* Deep nesting and long keys. */
	static char deep[20001];
	memset(deep, '[', sizeof(deep) - 1);
	assert_int_equal(nc_config_load_string(f->cfg, deep, sizeof(deep) - 1, "deep", f->err,
	                                       sizeof(f->err)),
	                 -EINVAL);
	memset(deep, 'k', sizeof(deep) - 1);
	deep[sizeof(deep) - 3] = ':';
	deep[sizeof(deep) - 2] = ' ';
	assert_int_equal(nc_config_load_string(f->cfg, deep, sizeof(deep) - 1, "long", f->err,
	                                       sizeof(f->err)),
	                 -EINVAL);
	assert_true(strlen(f->err) < 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_create_bad_default, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_full_valid_file, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_partial_file_keeps_other_values, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_bad_int_suffix, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_bad_int_words, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_bad_bool, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_int_out_of_range, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_int_overflow, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_empty_value, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_enum_not_in_choices, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_string_too_long, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_list_bounds, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_empty_list_allowed, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_unknown_section, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_duplicate_key, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_syntax_error, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_wrong_shape, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_anchors_aliases_documents, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_all_or_nothing, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_apply_refusal_on_load_rolls_back, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_set_runtime, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_set_unknown_key, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_set_apply_callback, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_apply_reentry, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_strict_int_text, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_format_roundtrip, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_empty_and_comment_documents, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_load_string_name, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_getter_misuse_aborts, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_garbage_is_refused_cleanly, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_ctl_secret_hidden, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_not_utf8_refused, setup, teardown),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
