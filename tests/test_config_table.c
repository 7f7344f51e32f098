/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_config_table: the appliance's real configuration table and its
 * documented file agree: every default is valid, config/novacron.yaml loads,
 * sets every key, and comments each one.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nc_config.h"
#include "nc_config_table.h"

#ifndef NC_SOURCE_ROOT
#error "NC_SOURCE_ROOT must name the source tree"
#endif

static void test_defaults_valid(void **state)
{
	(void)state;
	struct nc_config *cfg = nc_config_create(nc_config_table, nc_config_table_len);
	assert_non_null(cfg);
	assert_int_equal(nc_config_count(cfg), nc_config_table_len);
	for (size_t i = 0; i < nc_config_table_len; i++) {
		const struct nc_cfg_def *d = &nc_config_table[i];
		assert_non_null(d->help);
		assert_non_null(strchr(d->name, '.'));
		char buf[512];
		assert_true(nc_config_format(cfg, d->name, buf, sizeof(buf)) >= 0);
	}
	nc_config_destroy(cfg);
}

static void test_shipped_file(void **state)
{
	(void)state;
	const char *path = NC_SOURCE_ROOT "/config/novacron.yaml";
	char err[512];
	struct nc_config *cfg = nc_config_create(nc_config_table, nc_config_table_len);
	assert_non_null(cfg);
	int rc = nc_config_load_file(cfg, path, err, sizeof(err));
	if (rc != 0)
		fail_msg("%s", err);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	static char text[65536];
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	/* Every key appears in the file, right after a comment. */
	for (size_t i = 0; i < nc_config_table_len; i++) {
		const char *dot = strchr(nc_config_table[i].name, '.');
		char needle[80];
		snprintf(needle, sizeof(needle), "\n  %s:", dot + 1);
		const char *at = strstr(text, needle);
		if (at == NULL)
			fail_msg("config/novacron.yaml does not set %s", nc_config_table[i].name);
		const char *prev = at - 1;
		while (prev > text && *prev != '\n')
			prev--;
		if (strstr(prev, "#") == NULL || strstr(prev, "#") > at)
			fail_msg("config/novacron.yaml: %s has no comment above it",
			         nc_config_table[i].name);
	}
	nc_config_destroy(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_defaults_valid),
	        cmocka_unit_test(test_shipped_file),
	};
	return cmocka_run_group_tests_name("config_table", tests, NULL, NULL);
}
