/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_wanem: the pure logic of the WAN emulator (tools/wanem): bottleneck
 * serialization and departure times, the tail-drop queue limit, Bernoulli
 * and Gilbert-Elliott loss under a seed, duplication and reordering counts,
 * and the delay line's byte ring (wrap-around, room, order).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wanem_fifo.h"
#include "wanem_link.h"

#define MS 1000000ULL

static struct wanem_link *mk(const struct wanem_link_cfg *c, uint64_t seed)
{
	struct wanem_link *l = wanem_link_create(c, seed, 0);
	assert_non_null(l);
	return l;
}

/* Frames back to back at 1 Gbit/s leave 10 us apart; an idle link starts
 * again from "now"; the propagation delay is added after. */
static void test_serialization(void **state)
{
	(void)state;
	struct wanem_link_cfg c = {.rate_bps = 1000000000, .delay_ns = 25 * MS};
	struct wanem_link *l = mk(&c, 1);
	uint64_t t = 1000000;

	for (unsigned i = 0; i < 10; i++) {
		struct wanem_verdict v = wanem_link_offer(l, t, 1250);
		assert_int_equal(v.copies, 1);
		assert_int_equal(v.due_ns[0], t + 10000 * (i + 1) + 25 * MS);
		assert_false(v.reordered[0]);
	}
	/* 10 frames queued at t: 90 us of backlog left after the first. */
	assert_int_equal(wanem_link_backlog(l, t + 10000), 9 * 1250);
	assert_int_equal(wanem_link_backlog(l, t + 100000), 0);
	/* Offered in the middle of the backlog: waits behind it. */
	struct wanem_verdict v = wanem_link_offer(l, t + 50000, 1250);
	assert_int_equal(v.due_ns[0], t + 110000 + 25 * MS);
	/* Long idle: no credit saved up, leaves one frame time after now. */
	v = wanem_link_offer(l, t + 10 * MS, 1250);
	assert_int_equal(v.due_ns[0], t + 10 * MS + 10000 + 25 * MS);
	const struct wanem_link_stats *st = wanem_link_stats(l);
	assert_int_equal(st->in_frames, 12);
	assert_int_equal(st->in_bytes, 12 * 1250);
	assert_int_equal(st->loss_frames + st->queue_frames, 0);
	wanem_link_destroy(l);
}

/* 64-byte frames at 10 Gbit/s take 51.2 ns: the fraction is carried, not
 * rounded away, so 5 frames take exactly 256 ns; overhead counts. */
static void test_serialization_exact(void **state)
{
	(void)state;
	struct wanem_link_cfg c = {.rate_bps = 10000000000ULL};
	struct wanem_link *l = mk(&c, 1);
	const uint64_t want[5] = {51, 102, 153, 204, 256};

	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(wanem_link_offer(l, 0, 64).due_ns[0], want[i]);
	for (unsigned i = 0; i < 1000; i++)
		wanem_link_offer(l, 0, 64);
	assert_int_equal(wanem_link_offer(l, 0, 64).due_ns[0], 1006 * 512 / 10);
	wanem_link_destroy(l);

	c.overhead = 24; /* (1226 + 24) * 8 bits at 1 Gbit/s = 10 us */
	c.rate_bps = 1000000000;
	l = mk(&c, 1);
	assert_int_equal(wanem_link_offer(l, 0, 1226).due_ns[0], 10000);
	wanem_link_destroy(l);

	/* No rate: frames only take the delay. */
	struct wanem_link_cfg free_cfg = {.delay_ns = 3 * MS};
	l = mk(&free_cfg, 1);
	for (unsigned i = 0; i < 100; i++)
		assert_int_equal(wanem_link_offer(l, 7, 9000).due_ns[0], 7 + 3 * MS);
	assert_int_equal(wanem_link_backlog(l, 7), 0);
	wanem_link_destroy(l);
}

/* The queue holds queue_bytes behind the serializer; the next frame is
 * tail-dropped until the serializer has made room. */
static void test_queue_limit(void **state)
{
	(void)state;
	struct wanem_link_cfg c = {.rate_bps = 1000000, .queue_bytes = 10000};
	struct wanem_link *l = mk(&c, 1);

	for (unsigned i = 0; i < 10; i++)
		assert_int_equal(wanem_link_offer(l, 0, 1000).copies, 1);
	assert_int_equal(wanem_link_offer(l, 0, 1000).copies, 0);
	assert_int_equal(wanem_link_offer(l, 0, 1).copies, 0);
	/* 1000 bytes at 1 Mbit/s = 8 ms: one frame's room. */
	assert_int_equal(wanem_link_offer(l, 8 * MS, 1000).copies, 1);
	assert_int_equal(wanem_link_offer(l, 8 * MS, 1000).copies, 0);
	const struct wanem_link_stats *st = wanem_link_stats(l);
	assert_int_equal(st->queue_frames, 3);
	assert_int_equal(st->queue_bytes, 2001);
	assert_int_equal(st->in_frames, 14);
	assert_int_equal(st->backlog_max_bytes, 10000);
	wanem_link_destroy(l);

	/* The default: one bandwidth-delay product, at least 64 frames. */
	assert_int_equal(wanem_default_queue(1000000000, 25 * MS, 1518), 6250000);
	assert_int_equal(wanem_default_queue(100000000, 40 * MS, 1518), 1000000);
	assert_int_equal(wanem_default_queue(10000000000ULL, 0, 9018), 64 * 9018);
	assert_int_equal(wanem_default_queue(1000000, 1 * MS, 1518), 64 * 1518);
	assert_true(wanem_default_queue(0, 25 * MS, 1518) == UINT64_MAX);
	struct wanem_link_cfg d = {.rate_bps = 1000000000, .delay_ns = 25 * MS};
	l = mk(&d, 1);
	assert_int_equal(wanem_link_cfg(l)->queue_bytes, 6250000);
	wanem_link_destroy(l);
}

/* Run @p n frames through @p l; the loss pattern goes into @p lost if given.
 * Returns the number lost and the mean length of runs of losses. */
static uint64_t run_loss(struct wanem_link *l, unsigned n, uint64_t t_step, uint8_t *lost,
                         double *mean_run)
{
	uint64_t losses = 0, runs = 0;
	bool prev = false;

	for (unsigned i = 0; i < n; i++) {
		bool gone = wanem_link_offer(l, (uint64_t)i * t_step, 100).copies == 0;
		if (lost != NULL)
			lost[i] = gone;
		losses += gone;
		if (gone && !prev)
			runs++;
		prev = gone;
	}
	if (mean_run != NULL)
		*mean_run = runs ? (double)losses / (double)runs : 0;
	return losses;
}

/* Same seed, same decisions, whatever the timing; another seed, others;
 * the long-run rate is the configured one. */
static void test_bernoulli(void **state)
{
	(void)state;
	const unsigned n = 1000000;
	struct wanem_link_cfg c = {.loss = 0.01};
	uint8_t *a = calloc(n, 1), *b = calloc(n, 1);
	assert_non_null(a);
	assert_non_null(b);

	struct wanem_link *l1 = mk(&c, 42), *l2 = mk(&c, 42), *l3 = mk(&c, 43);
	uint64_t k = run_loss(l1, n, 1000, a, NULL);
	assert_int_equal(run_loss(l2, n, 7, b, NULL), k);
	assert_memory_equal(a, b, n);
	run_loss(l3, n, 1000, b, NULL);
	assert_memory_not_equal(a, b, n);
	/* 1% of 10^6: 10000, sigma ~100. */
	assert_in_range(k, 9500, 10500);
	assert_int_equal(wanem_link_stats(l1)->loss_frames, k);
	assert_int_equal(wanem_link_stats(l1)->loss_bytes, k * 100);
	wanem_link_destroy(l1);
	wanem_link_destroy(l2);
	wanem_link_destroy(l3);

	/* 0 and 1 are exact. */
	struct wanem_link_cfg none = {.loss = 0}, all = {.loss = 1};
	l1 = mk(&none, 5);
	l2 = mk(&all, 5);
	assert_int_equal(run_loss(l1, 10000, 1, NULL, NULL), 0);
	assert_int_equal(run_loss(l2, 10000, 1, NULL, NULL), 10000);
	wanem_link_destroy(l1);
	wanem_link_destroy(l2);

	/* Turning duplication or reordering on does not move the losses. */
	struct wanem_link_cfg more = {.loss = 0.01, .dup = 0.2, .reorder = 0.3};
	l1 = mk(&more, 42);
	for (unsigned i = 0; i < n; i++)
		b[i] = wanem_link_offer(l1, i, 100).copies == 0;
	assert_memory_equal(a, b, n);
	wanem_link_destroy(l1);
	free(a);
	free(b);
}

/* Gilbert-Elliott: the mean is pi_bad * loss_bad, and losses come in runs
 * far longer than Bernoulli's at the same mean. */
static void test_gilbert_elliott(void **state)
{
	(void)state;
	const unsigned n = 2000000;
	struct wanem_link_cfg ge = {
	        .burst = true, .ge_p_enter = 0.01, .ge_p_exit = 0.10, .ge_loss_bad = 1.0};
	double mean = 0.01 / (0.01 + 0.10); /* 9.09% */
	double run_ge, run_b;

	struct wanem_link *l = mk(&ge, 7);
	uint64_t k = run_loss(l, n, 1, NULL, &run_ge);
	assert_true(fabs((double)k / n - mean) < 0.1 * mean);
	wanem_link_destroy(l);

	struct wanem_link_cfg bern = {.loss = mean};
	l = mk(&bern, 7);
	k = run_loss(l, n, 1, NULL, &run_b);
	assert_true(fabs((double)k / n - mean) < 0.05 * mean);
	wanem_link_destroy(l);
	/* Runs: about 1 / p_exit = 10 against 1 / (1 - mean) = 1.1. */
	assert_true(run_ge > 8.0 && run_ge < 12.0);
	assert_true(run_b < 1.2);
	assert_true(run_ge > 3 * run_b);

	/* Same seed, same pattern; loss in the good state adds to the mean. */
	uint8_t *a = calloc(n, 1), *b = calloc(n, 1);
	assert_non_null(a);
	assert_non_null(b);
	struct wanem_link *l1 = mk(&ge, 9), *l2 = mk(&ge, 9);
	run_loss(l1, n, 1, a, NULL);
	run_loss(l2, n, 3, b, NULL);
	assert_memory_equal(a, b, n);
	wanem_link_destroy(l1);
	wanem_link_destroy(l2);
	ge.loss = 0.05;
	ge.ge_loss_bad = 0.5;
	l = mk(&ge, 9);
	k = run_loss(l, n, 1, NULL, NULL);
	double want = (0.10 * 0.05 + 0.01 * 0.5) / 0.11;
	assert_true(fabs((double)k / n - want) < 0.1 * want);
	wanem_link_destroy(l);
	free(a);
	free(b);
}

/* Duplicates and reordered copies are counted and timed as promised. */
static void test_dup_reorder(void **state)
{
	(void)state;
	const unsigned n = 200000;
	struct wanem_link_cfg c = {
	        .delay_ns = 10 * MS, .dup = 0.05, .reorder = 0.10, .reorder_delay_ns = 2 * MS};
	struct wanem_link *l = mk(&c, 3);
	uint64_t copies = 0, twice = 0, held = 0;

	for (unsigned i = 0; i < n; i++) {
		struct wanem_verdict v = wanem_link_offer(l, i, 500);
		copies += v.copies;
		twice += v.copies == 2;
		for (unsigned j = 0; j < v.copies; j++) {
			uint64_t want = i + 10 * MS + (v.reordered[j] ? 2 * MS : 0);
			assert_int_equal(v.due_ns[j], want);
			held += v.reordered[j];
		}
	}
	const struct wanem_link_stats *st = wanem_link_stats(l);
	assert_int_equal(st->dup_frames, twice);
	assert_int_equal(st->reorder_frames, held);
	assert_int_equal(copies, n + twice);
	assert_in_range(twice, 9000, 11000); /* 5% of 200000 */
	assert_in_range(held, 0.1 * copies - 1000, 0.1 * copies + 1000);
	wanem_link_destroy(l);

	/* A duplicate is a second frame through the bottleneck. */
	struct wanem_link_cfg d = {.rate_bps = 1000000000, .dup = 1.0};
	l = mk(&d, 3);
	struct wanem_verdict v = wanem_link_offer(l, 0, 1250);
	assert_int_equal(v.copies, 2);
	assert_int_equal(v.due_ns[0], 10000);
	assert_int_equal(v.due_ns[1], 20000);
	wanem_link_destroy(l);
}

static void test_bad_config(void **state)
{
	(void)state;
	struct wanem_link_cfg c = {.loss = 1.5};
	errno = 0;
	assert_null(wanem_link_create(&c, 1, 0));
	assert_int_equal(errno, EINVAL);
	c.loss = NAN;
	assert_null(wanem_link_create(&c, 1, 0));
	struct wanem_link_cfg g = {.burst = true, .ge_p_exit = -0.1};
	assert_null(wanem_link_create(&g, 1, 0));
	struct wanem_link_cfg r = {.reorder = 2};
	assert_null(wanem_link_create(&r, 1, 0));
	wanem_link_destroy(NULL);
}

static void test_rng(void **state)
{
	(void)state;
	struct wanem_rng a, b;
	double sum = 0;

	wanem_rng_seed(&a, 0, 0);
	wanem_rng_seed(&b, 0, 1);
	assert_true(wanem_rng_next(&a) != wanem_rng_next(&b));
	for (unsigned i = 0; i < 100000; i++) {
		double u = wanem_rng_unit(&a);
		assert_true(u >= 0.0 && u < 1.0);
		sum += u;
	}
	assert_true(fabs(sum / 100000 - 0.5) < 0.01);
}

/* The ring wraps, refuses what does not fit, keeps order and pointers. */
static void test_fifo_basic(void **state)
{
	(void)state;
	struct wanem_fifo *f = wanem_fifo_create(1024);
	assert_non_null(f);
	assert_int_equal(wanem_fifo_capacity(f), 1024);
	assert_null(wanem_fifo_first(f));
	assert_null(wanem_fifo_push(f, 1, 1024)); /* never fits */

	/* 5 frames of 184 bytes (cost 200) fill 1000 of 1024 bytes. */
	for (unsigned i = 0; i < 5; i++) {
		struct wanem_frame *fr = wanem_fifo_push(f, i, 184);
		assert_non_null(fr);
		memset(fr->data, 'a' + i, 184);
	}
	assert_null(wanem_fifo_push(f, 9, 184));
	assert_int_equal(wanem_fifo_count(f), 5);
	assert_int_equal(wanem_fifo_used(f), 1000);
	unsigned i = 0;
	for (struct wanem_frame *fr = wanem_fifo_first(f); fr; fr = wanem_fifo_next(f, fr), i++) {
		assert_int_equal(fr->due_ns, i);
		assert_int_equal(fr->data[183], 'a' + i);
	}
	assert_int_equal(i, 5);
	/* Pop two: the next frame wraps to the front, skipping 24 bytes. */
	wanem_fifo_pop(f);
	wanem_fifo_pop(f);
	struct wanem_frame *w = wanem_fifo_push(f, 5, 184);
	assert_non_null(w);
	assert_int_equal(wanem_fifo_first(f)->due_ns, 2);
	memset(w->data, 'f', 184);
	assert_int_equal(wanem_fifo_used(f), 3 * 200 + 24 + 200);
	assert_non_null(wanem_fifo_push(f, 6, 184));
	assert_null(wanem_fifo_push(f, 7, 1)); /* full: 1024 - 1024 */
	i = 2;
	for (struct wanem_frame *fr = wanem_fifo_first(f); fr; fr = wanem_fifo_next(f, fr), i++)
		assert_int_equal(fr->due_ns, i);
	assert_int_equal(i, 7);
	for (i = 2; i < 7; i++) {
		assert_int_equal(wanem_fifo_first(f)->due_ns, i);
		wanem_fifo_pop(f);
	}
	assert_int_equal(wanem_fifo_count(f), 0);
	assert_int_equal(wanem_fifo_used(f), 0);
	wanem_fifo_pop(f); /* no-op */
	wanem_fifo_destroy(f);
	wanem_fifo_destroy(NULL);
}

/* Random pushes and pops against a model: every frame comes out whole and
 * in order, and a push is refused only when the ring is really short. */
static void test_fifo_model(void **state)
{
	(void)state;
	enum { CAP = 8192, MAXQ = 4096 };
	struct wanem_fifo *f = wanem_fifo_create(CAP);
	uint32_t lens[MAXQ];
	uint64_t next_in = 0, next_out = 0;
	struct wanem_rng r;

	assert_non_null(f);
	wanem_rng_seed(&r, 11, 0);
	for (unsigned step = 0; step < 200000; step++) {
		bool push = wanem_rng_next(&r) % 100 < 55;
		if (push) {
			uint32_t len = (uint32_t)(wanem_rng_next(&r) % 1600);
			struct wanem_frame *fr = wanem_fifo_push(f, next_in, len);
			if (fr == NULL) {
				/* Refused: what is free cannot hold it in one piece. */
				assert_true(CAP - wanem_fifo_used(f) < 2 * WANEM_FIFO_COST(len));
				continue;
			}
			for (uint32_t i = 0; i < len; i++)
				fr->data[i] = (uint8_t)(next_in + i);
			lens[next_in % MAXQ] = len;
			next_in++;
			assert_true(wanem_fifo_used(f) <= CAP);
		} else if (wanem_fifo_count(f) > 0) {
			struct wanem_frame *fr = wanem_fifo_first(f);
			assert_int_equal(fr->due_ns, next_out);
			assert_int_equal(fr->len, lens[next_out % MAXQ]);
			for (uint32_t i = 0; i < fr->len; i++)
				assert_int_equal(fr->data[i], (uint8_t)(next_out + i));
			wanem_fifo_pop(f);
			next_out++;
		}
		assert_int_equal(wanem_fifo_count(f), next_in - next_out);
	}
	assert_true(next_out > 10000);
	wanem_fifo_destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_serialization),   cmocka_unit_test(test_serialization_exact),
	        cmocka_unit_test(test_queue_limit),     cmocka_unit_test(test_bernoulli),
	        cmocka_unit_test(test_gilbert_elliott), cmocka_unit_test(test_dup_reorder),
	        cmocka_unit_test(test_bad_config),      cmocka_unit_test(test_rng),
	        cmocka_unit_test(test_fifo_basic),      cmocka_unit_test(test_fifo_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
