/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the boot orchestrator (common/nc_init.c): ordering across
 * phases and dependencies, parallel start, graph errors, retries, timeouts,
 * optional and required failures, shutdown order, health roll-up and the boot
 * report. They check behaviour only, never wall-clock durations. Hooks run on
 * the orchestrator's threads, so they only record into atomics and a locked
 * event log; all cmocka asserts run on the test thread.
 *
 * NC_TEST_LOG=info (or notice, debug...) shows the orchestrator's log.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <setjmp.h>
#include <cmocka.h>

#include "nc_init.h"
#include "nc_log.h"

#define WAIT_LIMIT_MS 5000 /* bound of every wait in a hook: a broken build fails, never hangs */

/* ---- ordered event log ---- */

#define MAX_EVENTS 64

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static char events[MAX_EVENTS][48];
static size_t nevents;

static void ev_reset(void)
{
	pthread_mutex_lock(&ev_lock);
	nevents = 0;
	pthread_mutex_unlock(&ev_lock);
}

static void ev_add(const char *kind, const char *name)
{
	pthread_mutex_lock(&ev_lock);
	if (nevents < MAX_EVENTS)
		snprintf(events[nevents++], sizeof(events[0]), "%s:%s", kind, name);
	pthread_mutex_unlock(&ev_lock);
}

static size_t ev_count(void)
{
	pthread_mutex_lock(&ev_lock);
	size_t n = nevents;
	pthread_mutex_unlock(&ev_lock);
	return n;
}

/* Position of an event, or -1. */
static int ev_index(const char *ev)
{
	int at = -1;
	pthread_mutex_lock(&ev_lock);
	for (size_t i = 0; i < nevents && at < 0; i++) {
		if (strcmp(events[i], ev) == 0)
			at = (int)i;
	}
	pthread_mutex_unlock(&ev_lock);
	return at;
}

/* The log must be exactly @p expected (NULL-terminated). */
static void ev_expect(const char *const *expected)
{
	size_t n = 0;
	while (expected[n])
		n++;
	pthread_mutex_lock(&ev_lock);
	char got[MAX_EVENTS * 50] = "";
	for (size_t i = 0; i < nevents; i++) {
		strcat(got, events[i]);
		strcat(got, " ");
	}
	bool same = nevents == n;
	for (size_t i = 0; same && i < n; i++)
		same = strcmp(events[i], expected[i]) == 0;
	pthread_mutex_unlock(&ev_lock);
	if (!same)
		fail_msg("event log is: %s", got);
}

#define assert_contains(hay, needle)                                                               \
	do {                                                                                       \
		if (!strstr((hay), (needle)))                                                      \
			fail_msg("'%s' does not contain '%s'", (hay), (needle));                   \
	} while (0)

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- a configurable test component ---- */

enum behav {
	B_OK,
	B_FAIL,        /* fails its first fail_first attempts */
	B_WAIT_CANCEL, /* sleeps until its attempt is cancelled, then returns late_rc */
	B_PAIR,        /* posts its semaphore, then needs the peer's */
	B_WAIT_UP,     /* waits until component wait_up is up */
};

struct tc {
	const char *name;
	enum behav behav;
	int fail_first;
	int late_rc;
	sem_t *post, *wait;
	const char *wait_up;
	const char *const *must_be_up; /* checked on entry to init */
	struct nc_init *in;
	atomic_int inits;
	atomic_int shutdowns;
	atomic_bool saw_cancel;
	atomic_bool returned;
	atomic_bool deps_ok;
	atomic_int health;
	const char *health_msg;
	bool health_on_stop;    /* shutdown hook joins a thread asking for health */
	atomic_int stop_health; /* what that thread got, -1 before */
};

static bool is_up(struct nc_init *in, const char *name)
{
	enum nc_comp_state st;
	return nc_init_state(in, name, &st) == 0 && st == NC_COMP_UP;
}

static int tc_init(void *arg, struct nc_init_ctx *ctx, char *err, size_t errlen)
{
	struct tc *t = arg;
	int n = atomic_fetch_add(&t->inits, 1) + 1;
	int rc = 0;

	ev_add("init", t->name);
	if (t->must_be_up) {
		bool ok = true;
		for (size_t i = 0; t->must_be_up[i]; i++)
			ok = ok && is_up(t->in, t->must_be_up[i]);
		atomic_store(&t->deps_ok, ok);
	}
	switch (t->behav) {
	case B_OK:
		break;
	case B_FAIL:
		if (n <= t->fail_first) {
			snprintf(err, errlen, "%s failure %d", t->name, n);
			rc = -EAGAIN;
		}
		break;
	case B_WAIT_CANCEL:
		for (int i = 0; i < WAIT_LIMIT_MS && !nc_init_cancelled(ctx); i++)
			sleep_ms(1);
		atomic_store(&t->saw_cancel, nc_init_cancelled(ctx));
		rc = t->late_rc;
		if (rc)
			snprintf(err, errlen, "cancelled");
		break;
	case B_PAIR: {
		struct timespec ts;
		sem_post(t->post);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += WAIT_LIMIT_MS / 1000;
		while ((rc = sem_timedwait(t->wait, &ts)) != 0 && errno == EINTR)
			;
		if (rc) {
			snprintf(err, errlen, "peer never ran alongside");
			rc = -ETIMEDOUT;
		}
		break;
	}
	case B_WAIT_UP:
		for (int i = 0; i < WAIT_LIMIT_MS && !is_up(t->in, t->wait_up); i++)
			sleep_ms(1);
		if (!is_up(t->in, t->wait_up)) {
			snprintf(err, errlen, "'%s' never came up", t->wait_up);
			rc = -ETIMEDOUT;
		}
		break;
	}
	atomic_store(&t->returned, true);
	return rc;
}

static void *health_main(void *arg)
{
	struct tc *t = arg;
	json_t *h = nc_init_health_json(t->in);
	const char *st = json_string_value(json_object_get(h, "status"));
	atomic_store(&t->stop_health, st && strcmp(st, "failed") == 0 ? NC_HEALTH_FAILED : 99);
	json_decref(h);
	return NULL;
}

static void tc_shutdown(void *arg)
{
	struct tc *t = arg;
	atomic_fetch_add(&t->shutdowns, 1);
	ev_add("down", t->name);
	/* Like a control socket whose stop joins a thread serving "health". */
	pthread_t th;
	if (t->health_on_stop && pthread_create(&th, NULL, health_main, t) == 0)
		pthread_join(th, NULL);
}

static enum nc_health tc_health(void *arg, char *msg, size_t msglen)
{
	struct tc *t = arg;
	snprintf(msg, msglen, "%s", t->health_msg ? t->health_msg : "fine");
	return (enum nc_health)atomic_load(&t->health);
}

/* Everything a test's hooks touch lives here, so it outlives the orchestrator
 * even when an assert ends the test early. */
struct fixture {
	struct nc_init *in;
	struct tc tcs[8];
	size_t ntc;
	sem_t sems[2];
};

static struct tc *tc_new(struct fixture *fx, const char *name, enum behav b)
{
	assert_true(fx->ntc < sizeof(fx->tcs) / sizeof(fx->tcs[0]));
	struct tc *t = &fx->tcs[fx->ntc++];
	t->name = name;
	t->behav = b;
	t->in = fx->in;
	atomic_init(&t->inits, 0);
	atomic_init(&t->shutdowns, 0);
	atomic_init(&t->saw_cancel, false);
	atomic_init(&t->returned, false);
	atomic_init(&t->deps_ok, false);
	atomic_init(&t->health, NC_HEALTH_OK);
	atomic_init(&t->stop_health, -1);
	return t;
}

static struct nc_component comp(struct tc *t, enum nc_phase phase, const char *const *deps)
{
	struct nc_component c = {
	        .name = t->name,
	        .phase = phase,
	        .deps = deps,
	        .init = tc_init,
	        .health = tc_health,
	        .shutdown = tc_shutdown,
	        .arg = t,
	        .timeout_ms = 5000,
	        .backoff_ms = 1,
	        .backoff_max_ms = 2,
	};
	return c;
}

static void add(struct nc_init *in, struct tc *t, enum nc_phase phase, const char *const *deps)
{
	struct nc_component c = comp(t, phase, deps);
	assert_int_equal(nc_init_add(in, &c), 0);
}

static void add_opt(struct nc_init *in, struct tc *t, enum nc_phase phase, const char *const *deps)
{
	struct nc_component c = comp(t, phase, deps);
	c.optional = true;
	assert_int_equal(nc_init_add(in, &c), 0);
}

static enum nc_comp_state state_of(struct nc_init *in, const char *name)
{
	enum nc_comp_state st = NC_COMP_PENDING;
	assert_int_equal(nc_init_state(in, name, &st), 0);
	return st;
}

static int setup(void **state)
{
	ev_reset();
	struct fixture *fx = calloc(1, sizeof(*fx));
	if (!fx)
		return -1;
	fx->in = nc_init_create();
	if (!fx->in || sem_init(&fx->sems[0], 0, 0) || sem_init(&fx->sems[1], 0, 0)) {
		nc_init_destroy(fx->in);
		free(fx);
		return -1;
	}
	nc_init_set_seed(fx->in, 42);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	nc_init_destroy(fx->in); /* joins every hook thread */
	sem_destroy(&fx->sems[0]);
	sem_destroy(&fx->sems[1]);
	free(fx);
	return 0;
}

/* ---- ordering ---- */

static void test_order_phases_and_deps(void **state)
{
	struct fixture *fx = *state;
	struct nc_init *in = fx->in;
	struct tc *post, *svc, *dw, *c3, *c2, *c1, *pre;
	static const char *const d_svc[] = {"c3", NULL};
	static const char *const d_c3[] = {"c2", "c1", NULL};
	static const char *const d_c2[] = {"c1", NULL};
	static const char *const d_dw[] = {"pre", NULL};

	post = tc_new(fx, "post", B_OK);
	svc = tc_new(fx, "svc", B_OK);
	dw = tc_new(fx, "dw", B_OK);
	c3 = tc_new(fx, "c3", B_OK);
	c2 = tc_new(fx, "c2", B_OK);
	c1 = tc_new(fx, "c1", B_OK);
	pre = tc_new(fx, "pre", B_OK);
	svc->must_be_up = d_svc;
	c3->must_be_up = d_c3;
	c2->must_be_up = d_c2;
	dw->must_be_up = d_dw;
	/* Declared in the reverse of the order they must run in. */
	add(in, post, NC_PHASE_POST_INIT, NULL);
	add(in, svc, NC_PHASE_SERVICE, d_svc);
	add(in, dw, NC_PHASE_DWCP, d_dw);
	add(in, c3, NC_PHASE_CORE, d_c3);
	add(in, c2, NC_PHASE_CORE, d_c2);
	add(in, c1, NC_PHASE_CORE, NULL);
	add(in, pre, NC_PHASE_PRE_INIT, NULL);

	char err[256];
	assert_int_equal(nc_init_start(in, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	static const char *const want[] = {"init:pre", "init:c1",  "init:c2",   "init:c3",
	                                   "init:dw",  "init:svc", "init:post", NULL};
	ev_expect(want);
	assert_true(atomic_load(&svc->deps_ok));
	assert_true(atomic_load(&c3->deps_ok));
	assert_true(atomic_load(&c2->deps_ok));
	assert_true(atomic_load(&dw->deps_ok));
	assert_int_equal(state_of(in, "post"), NC_COMP_UP);
	assert_int_equal(nc_init_health(in), NC_HEALTH_OK);
}

/* A and B can only both succeed if they run at the same time. */
static void test_parallel_in_phase(void **state)
{
	struct fixture *fx = *state;
	struct nc_init *in = fx->in;
	struct tc *a, *b, *c;
	static const char *const d_c[] = {"a", "b", NULL};

	a = tc_new(fx, "a", B_PAIR);
	b = tc_new(fx, "b", B_PAIR);
	c = tc_new(fx, "c", B_OK);
	a->post = &fx->sems[0];
	a->wait = &fx->sems[1];
	b->post = &fx->sems[1];
	b->wait = &fx->sems[0];
	c->must_be_up = d_c;
	add(in, c, NC_PHASE_CORE, d_c);
	add(in, a, NC_PHASE_CORE, NULL);
	add(in, b, NC_PHASE_CORE, NULL);

	char err[256];
	assert_int_equal(nc_init_start(in, err, sizeof(err)), 0);
	assert_int_equal(atomic_load(&a->inits), 1);
	assert_int_equal(atomic_load(&b->inits), 1);
	assert_true(atomic_load(&c->deps_ok));
	assert_int_equal(ev_index("init:c"), 2);
}

/* ---- graph errors: nothing runs ---- */

static void expect_refused(struct nc_init *in, int want_rc, const char *want_msg)
{
	char err[256];
	int rc = nc_init_start(in, err, sizeof(err));
	assert_int_equal(rc, want_rc);
	assert_contains(err, want_msg);
	assert_int_equal(ev_count(), 0);
	json_t *rep = nc_init_report_json(in);
	assert_non_null(rep);
	assert_string_equal(json_string_value(json_object_get(rep, "result")), "failed");
	json_decref(rep);
}

static void test_unknown_dep(void **state)
{
	struct fixture *fx = *state;
	struct nc_init *in = fx->in;
	struct tc *a, *b;
	static const char *const d_b[] = {"a", "ghost", NULL};

	a = tc_new(fx, "a", B_OK);
	b = tc_new(fx, "b", B_OK);
	add(in, a, NC_PHASE_PRE_INIT, NULL);
	add(in, b, NC_PHASE_CORE, d_b);
	expect_refused(in, -ENOENT, "component 'b' depends on unknown 'ghost'");
	assert_int_equal(state_of(in, "a"), NC_COMP_SKIPPED);
}

static void test_self_dep(void **state)
{
	struct fixture *fx = *state;
	struct nc_init *in = fx->in;
	struct tc *a;
	static const char *const d_a[] = {"a", NULL};

	a = tc_new(fx, "a", B_OK);
	add(in, a, NC_PHASE_CORE, d_a);
	expect_refused(in, -ELOOP, "cycle: a -> a");
}

static void test_cycle3(void **state)
{
	struct fixture *fx = *state;
	struct nc_init *in = fx->in;
	struct tc *z, *a, *b, *c;
	static const char *const d_a[] = {"b", NULL};
	static const char *const d_b[] = {"c", NULL};
	static const char *const d_c[] = {"z", "a", NULL};

	z = tc_new(fx, "z", B_OK);
	a = tc_new(fx, "a", B_OK);
	b = tc_new(fx, "b", B_OK);
	c = tc_new(fx, "c", B_OK);
	add(in, z, NC_PHASE_PRE_INIT, NULL);
	add(in, a, NC_PHASE_CORE, d_a);
	add(in, b, NC_PHASE_CORE, d_b);
	add(in, c, NC_PHASE_CORE, d_c);
	expect_refused(in, -ELOOP, "cycle: a -> b -> c -> a");
}

static void test_later_phase_dep(void **state)
{
	struct fixture *fx = *state;
	struct nc_init *in = fx->in;
	struct tc *a, *b;
	static const char *const d_a[] = {"b", NULL};

	a = tc_new(fx, "a", B_OK);
	b = tc_new(fx, "b", B_OK);
	add(in, a, NC_PHASE_CORE, d_a);
	add(in, b, NC_PHASE_SERVICE, NULL);
	expect_refused(in, -EINVAL, "later phase");
}

static void test_add_errors(void **state)
{
	struct fixture *fx = *state;
	struct nc_init *in = fx->in;
	struct tc *a, *b;

	a = tc_new(fx, "a", B_OK);
	b = tc_new(fx, "a", B_OK); /* same name */
	add(in, a, NC_PHASE_CORE, NULL);
	struct nc_component c = comp(b, NC_PHASE_SERVICE, NULL);
	assert_int_equal(nc_init_add(in, &c), -EEXIST);
	c.name = NULL;
	assert_int_equal(nc_init_add(in, &c), -EINVAL);
	c.name = "";
	assert_int_equal(nc_init_add(in, &c), -EINVAL);
	c = comp(b, NC_PHASE_SERVICE, NULL);
	c.name = "b";
	c.init = NULL;
	assert_int_equal(nc_init_add(in, &c), -EINVAL);
	c = comp(b, NC_PHASE_COUNT, NULL);
	c.name = "b";
	assert_int_equal(nc_init_add(in, &c), -EINVAL);
	assert_int_equal(nc_init_add(in, NULL), -EINVAL);
	assert_int_equal(ev_count(), 0);

	char err[256];
	assert_int_equal(nc_init_start(in, err, sizeof(err)), 0);
	assert_int_equal(atomic_load(&a->inits), 1);
	assert_int_equal(atomic_load(&b->inits), 0);
	c = comp(b, NC_PHASE_SERVICE, NULL);
	c.name = "late";
	assert_int_equal(nc_init_add(in, &c), -EBUSY);
	assert_int_equal(nc_init_start(in, err, sizeof(err)), -EALREADY);
	enum nc_comp_state st;
	assert_int_equal(nc_init_state(in, "nope", &st), -ENOENT);
}

/* ---- retries and timeouts ---- */

static void test_retry_then_up(void **state)
{
	struct fixture *fx = *state;
	struct nc_init *in = fx->in;
	struct tc *f;

	f = tc_new(fx, "flaky", B_FAIL);
	f->fail_first = 2;
	struct nc_component c = comp(f, NC_PHASE_CORE, NULL);
	c.retries = 2;
	assert_int_equal(nc_init_add(in, &c), 0);

	char err[256];
	assert_int_equal(nc_init_start(in, err, sizeof(err)), 0);
	assert_int_equal(atomic_load(&f->inits), 3);
	assert_int_equal(state_of(in, "flaky"), NC_COMP_UP);
	json_t *rep = nc_init_report_json(in);
	json_t *rc = json_array_get(json_object_get(rep, "components"), 0);
	assert_string_equal(json_string_value(json_object_get(rc, "name")), "flaky");
	assert_int_equal(json_integer_value(json_object_get(rc, "attempts")), 3);
	assert_string_equal(json_string_value(json_object_get(rc, "state")), "up");
	json_decref(rep);
}

static void test_retry_exhausted(void **state)
{
	struct fixture *fx = *state;
	struct nc_init *in = fx->in;
	struct tc *f, *after;

	f = tc_new(fx, "flaky", B_FAIL);
	after = tc_new(fx, "after", B_OK);
	f->fail_first = 2;
	struct nc_component c = comp(f, NC_PHASE_CORE, NULL);
	c.retries = 1;
	assert_int_equal(nc_init_add(in, &c), 0);
	add(in, after, NC_PHASE_SERVICE, NULL);

	char err[256];
	assert_int_equal(nc_init_start(in, err, sizeof(err)), -EAGAIN);
	assert_contains(err, "component 'flaky' failed after 2 attempts: flaky failure 2");
	assert_int_equal(atomic_load(&f->inits), 2);
	assert_int_equal(atomic_load(&after->inits), 0);
	assert_int_equal(state_of(in, "flaky"), NC_COMP_FAILED);
	assert_int_equal(state_of(in, "after"), NC_COMP_SKIPPED);
}

static void test_timeout(void **state)
{
	struct fixture *fx = *state;
	struct nc_init *in = fx->in;
	struct tc *s;

	s = tc_new(fx, "slow", B_WAIT_CANCEL);
	s->late_rc = -ECANCELED;
	struct nc_component c = comp(s, NC_PHASE_CORE, NULL);
	c.timeout_ms = 50;
	assert_int_equal(nc_init_add(in, &c), 0);

	char err[256];
	assert_int_equal(nc_init_start(in, err, sizeof(err)), -ETIMEDOUT);
	assert_contains(err, "component 'slow' failed after 1 attempt: timed out after 50 ms");
	assert_int_equal(state_of(in, "slow"), NC_COMP_FAILED);
	/* destroy joins the abandoned attempt, so its observations are final. */
	nc_init_destroy(in);
	fx->in = NULL;
	assert_true(atomic_load(&s->returned));
	assert_true(atomic_load(&s->saw_cancel));
	assert_int_equal(atomic_load(&s->shutdowns), 0);
}

/* An attempt that succeeds after its timeout never gets a shutdown call. */
static void test_timeout_late_success_ignored(void **state)
{
	struct fixture *fx = *state;
	struct nc_init *in = fx->in;
	struct tc *s, *r;

	s = tc_new(fx, "late", B_WAIT_CANCEL);
	r = tc_new(fx, "req", B_OK);
	s->late_rc = 0;
	struct nc_component c = comp(s, NC_PHASE_CORE, NULL);
	c.timeout_ms = 50;
	c.optional = true;
	assert_int_equal(nc_init_add(in, &c), 0);
	add(in, r, NC_PHASE_SERVICE, NULL);

	char err[256];
	assert_int_equal(nc_init_start(in, err, sizeof(err)), 0);
	assert_int_equal(state_of(in, "late"), NC_COMP_FAILED);
	for (int i = 0; i < WAIT_LIMIT_MS && !atomic_load(&s->returned); i++)
		sleep_ms(1);
	assert_true(atomic_load(&s->returned));
	assert_int_equal(state_of(in, "late"), NC_COMP_FAILED);
	nc_init_shutdown(in);
	nc_init_destroy(in);
	fx->in = NULL;
	assert_true(atomic_load(&s->saw_cancel));
	assert_int_equal(atomic_load(&s->shutdowns), 0);
	assert_int_equal(atomic_load(&r->shutdowns), 1);
}

/* ---- optional and required failures ---- */

static void test_optional_failure_degraded(void **state)
{
	struct fixture *fx = *state;
	struct nc_init *in = fx->in;
	struct tc *opt, *optdep, *req;
	static const char *const d_optdep[] = {"opt", NULL};

	opt = tc_new(fx, "opt", B_FAIL);
	optdep = tc_new(fx, "optdep", B_OK);
	req = tc_new(fx, "req", B_OK);
	opt->fail_first = INT_MAX;
	add_opt(in, opt, NC_PHASE_CORE, NULL);
	add_opt(in, optdep, NC_PHASE_SERVICE, d_optdep);
	add(in, req, NC_PHASE_SERVICE, NULL);

	char err[256];
	assert_int_equal(nc_init_start(in, err, sizeof(err)), 0);
	assert_int_equal(state_of(in, "opt"), NC_COMP_FAILED);
	assert_int_equal(state_of(in, "optdep"), NC_COMP_SKIPPED);
	assert_int_equal(state_of(in, "req"), NC_COMP_UP);
	assert_int_equal(atomic_load(&optdep->inits), 0);
	assert_int_equal(nc_init_health(in), NC_HEALTH_DEGRADED);

	json_t *h = nc_init_health_json(in);
	assert_non_null(h);
	assert_string_equal(json_string_value(json_object_get(h, "status")), "degraded");
	json_t *comps = json_object_get(h, "components");
	assert_int_equal(json_array_size(comps), 3);
	size_t i;
	json_t *o;
	bool seen_opt = false;
	json_array_foreach (comps, i, o) {
		if (strcmp(json_string_value(json_object_get(o, "name")), "opt") != 0)
			continue;
		seen_opt = true;
		assert_string_equal(json_string_value(json_object_get(o, "state")), "failed");
		assert_string_equal(json_string_value(json_object_get(o, "health")), "failed");
		assert_true(json_is_true(json_object_get(o, "optional")));
		assert_contains(json_string_value(json_object_get(o, "message")), "opt failure 1");
	}
	assert_true(seen_opt);
	json_decref(h);

	json_t *rep = nc_init_report_json(in);
	assert_string_equal(json_string_value(json_object_get(rep, "result")), "degraded");
	json_decref(rep);
}

static void test_required_dependant_of_failed_optional(void **state)
{
	struct fixture *fx = *state;
	struct nc_init *in = fx->in;
	struct tc *pre, *opt, *mid, *needs;
	static const char *const d_needs[] = {"opt", NULL};

	pre = tc_new(fx, "pre", B_OK);
	opt = tc_new(fx, "opt", B_FAIL);
	mid = tc_new(fx, "mid", B_OK);
	needs = tc_new(fx, "needs", B_OK);
	opt->fail_first = INT_MAX;
	add(in, pre, NC_PHASE_PRE_INIT, NULL);
	add_opt(in, opt, NC_PHASE_CORE, NULL);
	add(in, mid, NC_PHASE_DWCP, NULL);
	add(in, needs, NC_PHASE_SERVICE, d_needs);

	char err[256];
	assert_true(nc_init_start(in, err, sizeof(err)) < 0);
	assert_contains(err, "component 'needs' cannot start: its dependency 'opt' failed");
	/* The boot stops as soon as it is doomed: the dwcp phase never runs. */
	assert_int_equal(atomic_load(&mid->inits), 0);
	assert_int_equal(atomic_load(&needs->inits), 0);
	assert_int_equal(state_of(in, "needs"), NC_COMP_SKIPPED);
	assert_int_equal(state_of(in, "mid"), NC_COMP_SKIPPED);
	assert_int_equal(state_of(in, "pre"), NC_COMP_STOPPED);
	assert_int_equal(atomic_load(&pre->shutdowns), 1);
	assert_int_equal(nc_init_health(in), NC_HEALTH_FAILED);
}

static void test_required_failure_unwinds(void **state)
{
	struct fixture *fx = *state;
	struct nc_init *in = fx->in;
	struct tc *a, *b, *c, *s, *d;
	static const char *const d_c[] = {"b", NULL};

	a = tc_new(fx, "a", B_OK);
	b = tc_new(fx, "b", B_OK);
	c = tc_new(fx, "c", B_FAIL);
	s = tc_new(fx, "s", B_WAIT_CANCEL);
	d = tc_new(fx, "d", B_OK);
	c->fail_first = INT_MAX;
	s->late_rc = 0; /* comes up once cancelled: must be shut down too */
	add(in, a, NC_PHASE_PRE_INIT, NULL);
	add(in, b, NC_PHASE_CORE, NULL);
	add(in, c, NC_PHASE_CORE, d_c);
	add(in, s, NC_PHASE_CORE, NULL);
	add(in, d, NC_PHASE_SERVICE, NULL);

	char err[256];
	assert_int_equal(nc_init_start(in, err, sizeof(err)), -EAGAIN);
	assert_contains(err, "component 'c' failed after 1 attempt: c failure 1");
	assert_true(atomic_load(&s->saw_cancel));
	/* Up in the order a, b, s; shut down in the reverse. */
	assert_true(ev_index("init:a") < ev_index("init:b"));
	assert_true(ev_index("init:b") < ev_index("init:c"));
	assert_true(ev_index("init:c") < ev_index("down:s"));
	assert_true(ev_index("down:s") < ev_index("down:b"));
	assert_true(ev_index("down:b") < ev_index("down:a"));
	assert_int_equal(ev_index("init:d"), -1);
	assert_int_equal(ev_count(), 7);
	assert_int_equal(state_of(in, "a"), NC_COMP_STOPPED);
	assert_int_equal(state_of(in, "b"), NC_COMP_STOPPED);
	assert_int_equal(state_of(in, "s"), NC_COMP_STOPPED);
	assert_int_equal(state_of(in, "c"), NC_COMP_FAILED);
	assert_int_equal(state_of(in, "d"), NC_COMP_SKIPPED);
	assert_int_equal(atomic_load(&c->shutdowns), 0);

	/* Safe after a failed start: nothing left to stop. */
	nc_init_shutdown(in);
	assert_int_equal(ev_count(), 7);

	json_t *rep = nc_init_report_json(in);
	assert_string_equal(json_string_value(json_object_get(rep, "result")), "failed");
	json_t *phases = json_object_get(rep, "phases");
	assert_true(json_is_null(
	        json_object_get(json_array_get(phases, NC_PHASE_SERVICE), "start_ms")));
	json_decref(rep);
}

/* ---- shutdown ---- */

static void test_shutdown_reverse_and_idempotent(void **state)
{
	struct fixture *fx = *state;
	struct nc_init *in = fx->in;
	struct tc *x, *y, *z;

	x = tc_new(fx, "x", B_WAIT_UP);
	y = tc_new(fx, "y", B_OK);
	z = tc_new(fx, "z", B_OK);
	x->wait_up = "y"; /* x completes after y although declared first */
	add(in, x, NC_PHASE_CORE, NULL);
	add(in, y, NC_PHASE_CORE, NULL);
	add(in, z, NC_PHASE_SERVICE, NULL);

	char err[256];
	assert_int_equal(nc_init_start(in, err, sizeof(err)), 0);
	ev_reset();
	nc_init_shutdown(in);
	static const char *const want[] = {"down:z", "down:x", "down:y", NULL};
	ev_expect(want);
	nc_init_shutdown(in);
	ev_expect(want);
	assert_int_equal(atomic_load(&x->shutdowns), 1);
	assert_int_equal(state_of(in, "x"), NC_COMP_STOPPED);
	assert_int_equal(state_of(in, "y"), NC_COMP_STOPPED);
	assert_int_equal(state_of(in, "z"), NC_COMP_STOPPED);
	assert_int_equal(nc_init_health(in), NC_HEALTH_FAILED);
	nc_init_destroy(in);
	fx->in = NULL;
	ev_expect(want);
}

/* A shutdown hook may wait for a thread that asks for health. */
static void test_health_during_shutdown(void **state)
{
	struct fixture *fx = *state;
	struct nc_init *in = fx->in;
	struct tc *a = tc_new(fx, "a", B_OK);
	struct tc *ctl = tc_new(fx, "ctl", B_OK);

	ctl->health_on_stop = true;
	add(in, a, NC_PHASE_CORE, NULL);
	add(in, ctl, NC_PHASE_SERVICE, NULL);
	char err[256];
	assert_int_equal(nc_init_start(in, err, sizeof(err)), 0);
	nc_init_shutdown(in);
	/* The required 'ctl' is stopping, so the health seen then is failed. */
	assert_int_equal(atomic_load(&ctl->stop_health), NC_HEALTH_FAILED);
	static const char *const want[] = {"init:a", "init:ctl", "down:ctl", "down:a", NULL};
	ev_expect(want);
}

struct stopper {
	struct nc_init *in;
	bool saw_running;
};

static void *stopper_main(void *arg)
{
	struct stopper *st = arg;
	enum nc_comp_state s = NC_COMP_PENDING;
	for (int i = 0; i < WAIT_LIMIT_MS; i++) {
		if (nc_init_state(st->in, "hang", &s) == 0 && s == NC_COMP_RUNNING)
			break;
		sleep_ms(1);
	}
	st->saw_running = s == NC_COMP_RUNNING;
	nc_init_shutdown(st->in); /* as on SIGTERM during the boot */
	return NULL;
}

static void test_shutdown_during_boot(void **state)
{
	struct fixture *fx = *state;
	struct nc_init *in = fx->in;
	struct tc *a, *hang, *later;

	a = tc_new(fx, "a", B_OK);
	hang = tc_new(fx, "hang", B_WAIT_CANCEL);
	later = tc_new(fx, "later", B_OK);
	hang->late_rc = -ECANCELED;
	add(in, a, NC_PHASE_PRE_INIT, NULL);
	struct nc_component c = comp(hang, NC_PHASE_CORE, NULL);
	c.timeout_ms = 20000;
	assert_int_equal(nc_init_add(in, &c), 0);
	add(in, later, NC_PHASE_SERVICE, NULL);

	struct stopper st = {.in = in};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, stopper_main, &st), 0);
	char err[256];
	int rc = nc_init_start(in, err, sizeof(err));
	pthread_join(t, NULL);
	assert_true(st.saw_running);
	assert_int_equal(rc, -ECANCELED);
	assert_contains(err, "shutdown requested");
	assert_true(atomic_load(&hang->saw_cancel));
	assert_int_equal(state_of(in, "hang"), NC_COMP_FAILED);
	assert_int_equal(state_of(in, "a"), NC_COMP_STOPPED);
	assert_int_equal(state_of(in, "later"), NC_COMP_SKIPPED);
	assert_int_equal(atomic_load(&later->inits), 0);
	assert_int_equal(atomic_load(&a->shutdowns), 1);
}

/* ---- health ---- */

static void check_health_json(struct nc_init *in, const char *status, const char *name,
                              const char *health, const char *msg)
{
	json_t *h = nc_init_health_json(in);
	assert_non_null(h);
	assert_string_equal(json_string_value(json_object_get(h, "status")), status);
	size_t i;
	json_t *o;
	bool seen = false;
	json_array_foreach (json_object_get(h, "components"), i, o) {
		if (strcmp(json_string_value(json_object_get(o, "name")), name) != 0)
			continue;
		seen = true;
		assert_string_equal(json_string_value(json_object_get(o, "health")), health);
		assert_string_equal(json_string_value(json_object_get(o, "message")), msg);
		assert_string_equal(json_string_value(json_object_get(o, "state")), "up");
	}
	assert_true(seen);
	json_decref(h);
}

static void test_health_rollup(void **state)
{
	struct fixture *fx = *state;
	struct nc_init *in = fx->in;
	struct tc *r, *o, *n;

	r = tc_new(fx, "req", B_OK);
	o = tc_new(fx, "opt", B_OK);
	n = tc_new(fx, "nohook", B_OK);
	add(in, r, NC_PHASE_CORE, NULL);
	add_opt(in, o, NC_PHASE_CORE, NULL);
	struct nc_component c = comp(n, NC_PHASE_SERVICE, NULL);
	c.health = NULL;
	assert_int_equal(nc_init_add(in, &c), 0);

	assert_int_equal(nc_init_health(in), NC_HEALTH_FAILED); /* nothing up yet */
	char err[256];
	assert_int_equal(nc_init_start(in, err, sizeof(err)), 0);
	assert_int_equal(nc_init_health(in), NC_HEALTH_OK);
	check_health_json(in, "ok", "nohook", "ok", "up");
	check_health_json(in, "ok", "req", "ok", "fine");

	o->health_msg = "slow disk";
	atomic_store(&o->health, NC_HEALTH_DEGRADED);
	assert_int_equal(nc_init_health(in), NC_HEALTH_DEGRADED);
	check_health_json(in, "degraded", "opt", "degraded", "slow disk");

	atomic_store(&o->health, NC_HEALTH_FAILED);
	assert_int_equal(nc_init_health(in), NC_HEALTH_DEGRADED); /* optional */
	check_health_json(in, "degraded", "opt", "failed", "slow disk");

	atomic_store(&o->health, NC_HEALTH_OK);
	atomic_store(&r->health, NC_HEALTH_DEGRADED);
	assert_int_equal(nc_init_health(in), NC_HEALTH_DEGRADED);

	r->health_msg = "link down";
	atomic_store(&r->health, NC_HEALTH_FAILED);
	assert_int_equal(nc_init_health(in), NC_HEALTH_FAILED);
	check_health_json(in, "failed", "req", "failed", "link down");

	atomic_store(&r->health, NC_HEALTH_OK);
	assert_int_equal(nc_init_health(in), NC_HEALTH_OK);
}

/* ---- boot report ---- */

static double num(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_number(v))
		fail_msg("'%s' is not a number", key);
	return json_number_value(v);
}

static void test_report(void **state)
{
	struct fixture *fx = *state;
	struct nc_init *in = fx->in;
	struct tc *t[NC_PHASE_COUNT], *f;
	static const char *const names[NC_PHASE_COUNT] = {"p0", "p1", "p2", "p3", "p4"};

	for (int p = 0; p < NC_PHASE_COUNT; p++) {
		t[p] = tc_new(fx, names[p], B_OK);
		add(in, t[p], (enum nc_phase)p, NULL);
	}
	f = tc_new(fx, "f", B_FAIL);
	f->fail_first = 1;
	struct nc_component c = comp(f, NC_PHASE_DWCP, NULL);
	c.retries = 3;
	assert_int_equal(nc_init_add(in, &c), 0);

	char err[256];
	assert_int_equal(nc_init_start(in, err, sizeof(err)), 0);
	json_t *rep = nc_init_report_json(in);
	assert_non_null(rep);
	assert_string_equal(json_string_value(json_object_get(rep, "result")), "ok");
	assert_true(num(rep, "total_ms") >= 0);

	json_t *phases = json_object_get(rep, "phases");
	assert_int_equal(json_array_size(phases), NC_PHASE_COUNT);
	for (int p = 0; p < NC_PHASE_COUNT; p++) {
		json_t *ph = json_array_get(phases, (size_t)p);
		assert_string_equal(json_string_value(json_object_get(ph, "name")),
		                    nc_phase_name((enum nc_phase)p));
		assert_true(num(ph, "start_ms") >= 0);
		assert_true(num(ph, "duration_ms") >= 0);
		json_t *pc = json_object_get(ph, "components");
		assert_int_equal(json_array_size(pc), p == NC_PHASE_DWCP ? 2 : 1);
		assert_string_equal(json_string_value(json_array_get(pc, 0)), names[p]);
	}

	json_t *comps = json_object_get(rep, "components");
	assert_int_equal(json_array_size(comps), NC_PHASE_COUNT + 1);
	size_t i;
	json_t *o;
	json_array_foreach (comps, i, o) {
		const char *name = json_string_value(json_object_get(o, "name"));
		assert_non_null(name);
		assert_string_equal(json_string_value(json_object_get(o, "state")), "up");
		assert_true(num(o, "start_ms") >= 0);
		assert_true(num(o, "duration_ms") >= 0);
		assert_true(json_is_false(json_object_get(o, "optional")));
		json_int_t att = json_integer_value(json_object_get(o, "attempts"));
		if (strcmp(name, "f") == 0) {
			assert_int_equal(att, 2);
			assert_string_equal(json_string_value(json_object_get(o, "error")),
			                    "f failure 1");
		} else {
			assert_int_equal(att, 1);
			assert_true(json_is_null(json_object_get(o, "error")));
		}
	}
	/* Start order: p0 first, p4 last. */
	assert_string_equal(json_string_value(json_object_get(json_array_get(comps, 0), "name")),
	                    "p0");
	assert_string_equal(
	        json_string_value(json_object_get(json_array_get(comps, NC_PHASE_COUNT), "name")),
	        "p4");
	json_decref(rep);
}

static void test_empty_and_names(void **state)
{
	struct fixture *fx = *state;
	struct nc_init *in = fx->in;
	char err[64];

	assert_int_equal(nc_init_start(in, err, sizeof(err)), 0);
	assert_int_equal(nc_init_health(in), NC_HEALTH_OK);
	json_t *rep = nc_init_report_json(in);
	assert_string_equal(json_string_value(json_object_get(rep, "result")), "ok");
	assert_int_equal(json_array_size(json_object_get(rep, "phases")), NC_PHASE_COUNT);
	assert_int_equal(json_array_size(json_object_get(rep, "components")), 0);
	json_decref(rep);
	nc_init_shutdown(in);

	assert_string_equal(nc_phase_name(NC_PHASE_PRE_INIT), "pre-init");
	assert_string_equal(nc_phase_name(NC_PHASE_POST_INIT), "post-init");
	assert_string_equal(nc_health_name(NC_HEALTH_DEGRADED), "degraded");
	assert_string_equal(nc_comp_state_name(NC_COMP_SKIPPED), "skipped");
	assert_false(nc_init_cancelled(NULL));
}

int main(void)
{
	enum nc_log_level lvl = NC_LOG_ERR;
	const char *env = getenv("NC_TEST_LOG");
	if (!env || nc_log_level_parse(env, &lvl) != 0)
		lvl = NC_LOG_ERR;
	nc_log_set_level(lvl);

	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_order_phases_and_deps, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_parallel_in_phase, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_unknown_dep, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_self_dep, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cycle3, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_later_phase_dep, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_add_errors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_retry_then_up, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_retry_exhausted, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_timeout_late_success_ignored, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_optional_failure_degraded, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_required_dependant_of_failed_optional, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_required_failure_unwinds, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_shutdown_reverse_and_idempotent, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_shutdown_during_boot, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_health_rollup, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_health_during_shutdown, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_report, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_empty_and_names, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
