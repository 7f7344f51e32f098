/* SPDX-License-Identifier: BSD-3-Clause */
/* test_poll: the workers' adaptive polling policy (dp_poll.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dp_poll.h"

static void test_busy_under_traffic(void **state)
{
	(void)state;
	const struct dp_poll_cfg c = {NC_POLL_ADAPTIVE, 4, 1000};
	struct dp_poll p = {0};
	/* A worker that keeps finding packets never sleeps. */
	for (int i = 0; i < 100000; i++)
		assert_int_equal(dp_poll_next(&p, 1, &c), 0);
}

static void test_backoff_when_idle(void **state)
{
	(void)state;
	const struct dp_poll_cfg c = {NC_POLL_ADAPTIVE, 4, 1000};
	struct dp_poll p = {0};
	/* idle_polls - 1 empty polls: still polling flat out. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(dp_poll_next(&p, 0, &c), 0);
	/* Then 1, 2, 4, ... up to the cap, and it stays there. */
	uint32_t expect[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 1000, 1000};
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
		assert_int_equal(dp_poll_next(&p, 0, &c), expect[i]);
	/* One packet ends the backoff at once... */
	assert_int_equal(dp_poll_next(&p, 1, &c), 0);
	/* ...and the count of empty polls starts again. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(dp_poll_next(&p, 0, &c), 0);
	assert_int_equal(dp_poll_next(&p, 0, &c), 1);
}

static void test_busy_mode_never_sleeps(void **state)
{
	(void)state;
	const struct dp_poll_cfg c = {NC_POLL_BUSY, 1, 1000};
	struct dp_poll p = {0};
	for (int i = 0; i < 100000; i++)
		assert_int_equal(dp_poll_next(&p, 0, &c), 0);
}

static void test_mode_switch_and_odd_cap(void **state)
{
	(void)state;
	struct dp_poll_cfg c = {NC_POLL_ADAPTIVE, 1, 3};
	struct dp_poll p = {0};
	assert_int_equal(dp_poll_next(&p, 0, &c), 1);
	assert_int_equal(dp_poll_next(&p, 0, &c), 2);
	assert_int_equal(dp_poll_next(&p, 0, &c), 3);
	assert_int_equal(dp_poll_next(&p, 0, &c), 3);
	/* Switching to busy at run time stops sleeping on the next poll. */
	c.mode = NC_POLL_BUSY;
	assert_int_equal(dp_poll_next(&p, 0, &c), 0);
	c.mode = NC_POLL_ADAPTIVE;
	assert_int_equal(dp_poll_next(&p, 0, &c), 1);
	/* Lowering the cap while sleeping long takes effect at once. */
	c.sleep_max_us = 100000;
	for (int i = 0; i < 30; i++)
		dp_poll_next(&p, 0, &c);
	assert_int_equal(p.sleep_us, 100000);
	c.sleep_max_us = 10;
	assert_int_equal(dp_poll_next(&p, 0, &c), 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_busy_under_traffic),
	        cmocka_unit_test(test_backoff_when_idle),
	        cmocka_unit_test(test_busy_mode_never_sleeps),
	        cmocka_unit_test(test_mode_switch_and_odd_cap),
	};
	return cmocka_run_group_tests_name("poll", tests, NULL, NULL);
}
