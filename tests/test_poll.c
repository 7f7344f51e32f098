/* SPDX-License-Identifier: BSD-3-Clause */
/* test_poll: the workers' adaptive polling policy (dp_poll.h), and their
 * heartbeat as the control plane reads it (nc_abi.h). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dp_poll.h"
#include "nc_abi.h"

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

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A beat newer than the reader's clock (written while the reader was
 * preempted between its clock and its load) is age 0, not a wrapped
 * subtraction that makes a living dataplane look dead. */
static void test_heartbeat_age_never_wraps(void **state)
{
	(void)state;
	static struct nc_stats_shm s;
	s.heartbeat_ns = mono_ns() + 50000000ull; /* 50 ms "in the future" */
	assert_int_equal(nc_heartbeat_age_ns(&s), 0);
	s.heartbeat_ns = mono_ns() - 2000000000ull; /* 2 s ago */
	uint64_t age = nc_heartbeat_age_ns(&s);
	assert_true(age >= 2000000000ull && age < 3000000000ull);
}

struct beater {
	struct nc_stats_shm *s;
	bool stop;
};

static void *beat(void *arg)
{
	struct beater *b = arg;
	while (!__atomic_load_n(&b->stop, __ATOMIC_RELAXED))
		__atomic_store_n(&b->s->heartbeat_ns, mono_ns(), __ATOMIC_RELEASE);
	return NULL;
}

/* A service loop beating as fast as it can, read concurrently: every age
 * the reader sees is small. */
static void test_heartbeat_age_concurrent(void **state)
{
	(void)state;
	static struct nc_stats_shm s;
	struct beater b = {.s = &s};
	s.heartbeat_ns = mono_ns();
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, beat, &b), 0);
	uint64_t worst = 0, end = mono_ns() + 200000000ull;
	while (mono_ns() < end) {
		uint64_t a = nc_heartbeat_age_ns(&s);
		worst = a > worst ? a : worst;
	}
	__atomic_store_n(&b.stop, true, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	/* Bounded by how long the beater may be descheduled, not by 2^64. */
	assert_true(worst < 1000000000ull);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_busy_under_traffic),
	        cmocka_unit_test(test_backoff_when_idle),
	        cmocka_unit_test(test_busy_mode_never_sleeps),
	        cmocka_unit_test(test_mode_switch_and_odd_cap),
	        cmocka_unit_test(test_heartbeat_age_never_wraps),
	        cmocka_unit_test(test_heartbeat_age_concurrent),
	};
	return cmocka_run_group_tests_name("poll", tests, NULL, NULL);
}
