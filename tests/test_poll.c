/* SPDX-License-Identifier: BSD-3-Clause */
/* test_poll: the workers' adaptive polling policy (dp_poll.h), and their
 * heartbeat as the control plane reads it (nc_abi.h). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

/* The dataplane rewriting a session's stats slot, every field from one
 * generation k, as dp_amst_publish does (field by field, not in one copy). */
struct slot_writer {
	struct nc_session_shm *o;
	uint64_t generations;
	bool stop;
};

static void fill_slot(struct nc_session_shm *o, uint64_t k)
{
	snprintf(o->name, sizeof(o->name), "s-%llu", (unsigned long long)k);
	o->pkts_sent = o->pkts_recv = o->bytes_sent = o->bytes_recv = k;
	o->stream_bytes_sent = o->stream_bytes_recv = o->cwnd = o->btl_bw = k;
	o->hde.stream_bytes = o->hde.frame_bytes = k;
	o->n_streams = NC_MAX_SESSION_STREAMS;
	for (unsigned i = 0; i < NC_MAX_SESSION_STREAMS; i++) {
		o->streams[i].to_peer = o->streams[i].from_peer = k;
		memset(o->streams[i].digest, (int)(k & 0xff), sizeof(o->streams[i].digest));
	}
}

/* Every field of @p c from one generation: that generation, or UINT64_MAX. */
static uint64_t slot_generation(const struct nc_session_shm *c)
{
	uint64_t k = c->pkts_sent;
	char name[NC_SESSION_NAME_LEN];
	snprintf(name, sizeof(name), "s-%llu", (unsigned long long)k);
	if (strncmp(name, c->name, sizeof(name)) != 0 || c->bytes_recv != k || c->cwnd != k ||
	    c->hde.frame_bytes != k)
		return UINT64_MAX;
	for (unsigned i = 0; i < NC_MAX_SESSION_STREAMS; i++)
		for (unsigned b = 0; b < NC_DIGEST_LEN; b++)
			if (c->streams[i].to_peer != k || c->streams[i].digest[b] != (k & 0xff))
				return UINT64_MAX;
	return k;
}

static void *write_slots(void *arg)
{
	struct slot_writer *w = arg;
	uint64_t k = 0;
	while (!__atomic_load_n(&w->stop, __ATOMIC_RELAXED)) {
		nc_session_shm_write_begin(w->o);
		fill_slot(w->o, ++k);
		nc_session_shm_write_end(w->o);
		/* The dataplane writes every 100 ms; a few us here still overlap
		 * most reads, and leave a reader the gaps it needs. */
		uint64_t until = mono_ns() + 3000;
		while (mono_ns() < until)
			;
	}
	w->generations = k;
	return NULL;
}

/* A reader in another thread only ever gets a slot whole: one generation in
 * every field, never part of one write and part of the next. The same bytes
 * copied without the sequence count are counted as torn (shown, not
 * asserted: whether two threads overlap is up to the scheduler). */
static void test_session_slot_reads_whole(void **state)
{
	(void)state;
	static struct nc_session_shm slot, copy, naive;
	fill_slot(&slot, 0);
	struct slot_writer w = {.o = &slot};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, write_slots, &w), 0);
	uint64_t reads = 0, torn = 0, last = 0, newer = 0, end = mono_ns() + 300000000ull;
	while (mono_ns() < end) {
		memcpy(&naive, &slot, sizeof(naive));
		if (slot_generation(&naive) == UINT64_MAX)
			torn++;
		assert_true(nc_session_shm_read(&slot, &copy));
		uint64_t k = slot_generation(&copy);
		assert_true(k != UINT64_MAX);
		assert_true(k >= last); /* never an older slot than one already seen */
		newer += k > last;
		last = k;
		reads++;
	}
	__atomic_store_n(&w.stop, true, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	print_message("%llu whole reads of %llu generations (%llu new); copies without the "
	              "count: %llu torn\n",
	              (unsigned long long)reads, (unsigned long long)w.generations,
	              (unsigned long long)newer, (unsigned long long)torn);
	assert_true(newer >= 2); /* the reader saw the writer at work */
	assert_true(slot.seq % 2 == 0 && slot.seq == 2 * w.generations);
}

/* A dataplane that died in the middle of a write leaves seq odd for good: a
 * reader gives up (false) instead of spinning. */
static void test_session_slot_half_written_gives_up(void **state)
{
	(void)state;
	static struct nc_session_shm slot, copy;
	fill_slot(&slot, 7);
	nc_session_shm_write_begin(&slot);
	uint64_t t0 = mono_ns();
	assert_false(nc_session_shm_read(&slot, &copy));
	assert_true(mono_ns() - t0 < 5000000000ull);
	nc_session_shm_write_end(&slot);
	assert_true(nc_session_shm_read(&slot, &copy));
	assert_int_equal(slot_generation(&copy), 7);
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
	        cmocka_unit_test(test_session_slot_reads_whole),
	        cmocka_unit_test(test_session_slot_half_written_gives_up),
	};
	return cmocka_run_group_tests_name("poll", tests, NULL, NULL);
}
