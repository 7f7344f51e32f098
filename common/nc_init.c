/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nc_init: the boot orchestrator (contract in nc_init.h).
 *
 * One scheduler loop, run by the caller of nc_init_start(), owns the state of
 * every component under in->lock. Each init attempt runs on its own thread and
 * reports back by setting ctx->done and signalling in->cond; the loop wakes on
 * that, on the nearest attempt deadline or on the nearest retry time (all on
 * CLOCK_MONOTONIC). A component waiting out its backoff is only a "retry at"
 * time in that loop, so it never holds up the rest of its phase.
 *
 * An attempt that outlives its deadline is abandoned, not killed: it is marked
 * failed, its ctx is flagged cancelled, and its thread goes on a zombie list
 * that nc_init_destroy() joins, so the ctx stays valid until the hook returns.
 * Its late result is logged and ignored; no shutdown hook is ever called for
 * it. A result that arrives before the loop notices the deadline still counts.
 *
 * When a component fails for good, everything that depends on it (in any
 * phase) is skipped at once; a required component failing or being skipped
 * stops the boot: no new attempts, the running ones are cancelled and waited
 * for (up to their deadlines), then whatever came up is shut down in reverse
 * order of completion.
 *
 * Locking: lock guards all state and is never held while a hook runs.
 * stop_lock serialises shutdowns; health_lock serialises health queries. The
 * two are never nested, so a shutdown hook may wait for a thread that is in
 * nc_init_health*() (a control socket answering "health" while it is being
 * stopped): health skips a component being stopped, and stopping a component
 * only waits for a health hook of that same component already in progress.
 * Hooks may call nc_init_state(), nc_init_cancelled() and nc_init_report_json()
 * but must not call nc_init_shutdown() or nc_init_destroy() on their own
 * orchestrator, nor health from a health hook (deadlock).
 * nc_init_shutdown() from another thread during nc_init_start() aborts the
 * boot and waits for it to end.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* GNU strerror_r */
#endif
#define NC_LOG_MODULE "init"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nc_init.h"
#include "nc_log.h"

#define ERR_LEN                256
#define MSG_LEN                (ERR_LEN + 32)
#define BOOT_ERR_LEN           512
#define DEFAULT_TIMEOUT_MS     5000u
#define DEFAULT_BACKOFF_MS     10u
#define DEFAULT_BACKOFF_MAX_MS 1000u
#define NO_WAKE                UINT64_MAX

struct nc_init_ctx {
	atomic_bool cancelled;
	struct nc_init *in;
	size_t comp;      /* index in in->comps */
	unsigned attempt; /* 1-based */
	pthread_t thread;
	uint64_t deadline_ns;
	/* Written by the attempt thread, published under in->lock by done. */
	int rc;
	uint64_t end_ns;
	char err[ERR_LEN];
	bool done;      /* under in->lock */
	bool abandoned; /* under in->lock: timed out, result ignored */
	struct nc_init_ctx *next_zombie;
};

struct comp {
	struct nc_component c; /* with defaults applied */
	size_t *deps;          /* resolved indexes */
	size_t ndeps;
	/* Under in->lock. */
	enum nc_comp_state state;
	unsigned attempts;
	int last_rc;
	char last_err[ERR_LEN]; /* last attempt error, or why skipped */
	bool started;
	bool in_backoff;
	uint64_t retry_at_ns;
	uint64_t start_ns; /* first attempt */
	uint64_t end_ns;   /* up, failed or skipped */
	struct nc_init_ctx *cur;
	bool stopping;    /* shutdown hook about to run: no more health calls */
	bool health_busy; /* its health hook is being called */
	/* Under health_lock: the last health snapshot. */
	enum nc_comp_state h_state;
	enum nc_health health;
	char health_msg[MSG_LEN];
};

struct phase_time {
	bool ran;
	uint64_t start_ns;
	uint64_t end_ns; /* 0 while running */
};

struct nc_init {
	pthread_mutex_t lock;
	pthread_mutex_t stop_lock;
	pthread_mutex_t health_lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	struct comp *comps;
	size_t n, cap;
	uint64_t rng;
	bool started;        /* nc_init_start() was called */
	bool booting;        /* nc_init_start() is running */
	bool finished;       /* nc_init_start() has returned */
	bool stop_requested; /* nc_init_shutdown() was called */
	bool aborting;       /* the boot is stopping: no new attempts */
	int boot_rc;
	char boot_err[BOOT_ERR_LEN];
	uint64_t t0_ns, t_end_ns;
	struct phase_time phases[NC_PHASE_COUNT];
	size_t *start_order; /* first attempt order */
	size_t nstarted;
	size_t *up_order; /* completion order of successful inits */
	size_t nup;
	struct nc_init_ctx *zombies; /* abandoned attempts, joined by destroy */
};

static const char *const phase_names[NC_PHASE_COUNT] = {"pre-init", "core", "dwcp", "service",
                                                        "post-init"};
static const char *const health_names[] = {"ok", "degraded", "failed"};
static const char *const state_names[] = {"pending", "running", "up",
                                          "failed",  "skipped", "stopped"};

const char *nc_phase_name(enum nc_phase phase)
{
	if ((unsigned)phase >= NC_PHASE_COUNT)
		return "?";
	return phase_names[phase];
}

const char *nc_health_name(enum nc_health health)
{
	if ((unsigned)health >= sizeof(health_names) / sizeof(health_names[0]))
		return "?";
	return health_names[health];
}

const char *nc_comp_state_name(enum nc_comp_state state)
{
	if ((unsigned)state >= sizeof(state_names) / sizeof(state_names[0]))
		return "?";
	return state_names[state];
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Milliseconds with microsecond precision. */
static double ns_to_ms(uint64_t ns)
{
	return (double)(ns / 1000) / 1000.0;
}

static void put_err(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void put_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static const char *plural(unsigned n)
{
	return n == 1 ? "" : "s";
}

/* xorshift64* seeded through splitmix64, so any seed (0 too) is usable. */
static void rng_seed(struct nc_init *in, uint64_t seed)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	in->rng = z ? z : 0x2545f4914f6cdd1dull;
}

static uint64_t rng_next(struct nc_init *in)
{
	uint64_t x = in->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	in->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Full jitter: random in [0, min(max, base * 2^k)] ms, k = failures so far - 1. */
static uint64_t backoff_ms(struct nc_init *in, const struct comp *cp)
{
	unsigned k = cp->attempts > 0 ? cp->attempts - 1 : 0;
	uint64_t ceil = cp->c.backoff_max_ms;
	if (k < 32) {
		uint64_t b = (uint64_t)cp->c.backoff_ms << k;
		if (b < ceil)
			ceil = b;
	}
	return rng_next(in) % (ceil + 1);
}

static struct comp *find_comp(const struct nc_init *in, const char *name, size_t *idx)
{
	for (size_t i = 0; i < in->n; i++) {
		if (strcmp(in->comps[i].c.name, name) == 0) {
			if (idx)
				*idx = i;
			return &in->comps[i];
		}
	}
	return NULL;
}

bool nc_init_cancelled(const struct nc_init_ctx *ctx)
{
	return ctx && atomic_load(&ctx->cancelled);
}

struct nc_init *nc_init_create(void)
{
	struct nc_init *in = calloc(1, sizeof(*in));
	if (!in) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_condattr_t ca;
	int rc = pthread_condattr_init(&ca);
	if (rc == 0) {
		rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		if (rc == 0)
			rc = pthread_cond_init(&in->cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (rc) {
		free(in);
		errno = rc;
		return NULL;
	}
	pthread_mutex_init(&in->lock, NULL);
	pthread_mutex_init(&in->stop_lock, NULL);
	pthread_mutex_init(&in->health_lock, NULL);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	rng_seed(in, (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid());
	return in;
}

void nc_init_set_seed(struct nc_init *in, unsigned long seed)
{
	if (!in)
		return;
	pthread_mutex_lock(&in->lock);
	rng_seed(in, seed);
	pthread_mutex_unlock(&in->lock);
}

int nc_init_add(struct nc_init *in, const struct nc_component *c)
{
	if (!in || !c || !c->name || !c->name[0] || !c->init ||
	    (unsigned)c->phase >= NC_PHASE_COUNT)
		return -EINVAL;
	int rc = 0;
	pthread_mutex_lock(&in->lock);
	if (in->started) {
		rc = -EBUSY;
		goto out;
	}
	if (find_comp(in, c->name, NULL)) {
		rc = -EEXIST;
		goto out;
	}
	if (in->n == in->cap) {
		size_t cap = in->cap ? in->cap * 2 : 8;
		struct comp *nc = realloc(in->comps, cap * sizeof(*nc));
		if (!nc) {
			rc = -ENOMEM;
			goto out;
		}
		in->comps = nc;
		in->cap = cap;
	}
	struct comp *cp = &in->comps[in->n++];
	memset(cp, 0, sizeof(*cp));
	cp->c = *c;
	if (!cp->c.timeout_ms)
		cp->c.timeout_ms = DEFAULT_TIMEOUT_MS;
	if (!cp->c.backoff_ms)
		cp->c.backoff_ms = DEFAULT_BACKOFF_MS;
	if (!cp->c.backoff_max_ms)
		cp->c.backoff_max_ms = DEFAULT_BACKOFF_MAX_MS;
	cp->state = NC_COMP_PENDING;
out:
	pthread_mutex_unlock(&in->lock);
	return rc;
}

int nc_init_state(const struct nc_init *in, const char *name, enum nc_comp_state *state)
{
	if (!in || !name || !state)
		return -EINVAL;
	pthread_mutex_t *lock = (pthread_mutex_t *)&in->lock;
	int rc = -ENOENT;
	pthread_mutex_lock(lock);
	const struct comp *cp = find_comp(in, name, NULL);
	if (cp) {
		*state = cp->state;
		rc = 0;
	}
	pthread_mutex_unlock(lock);
	return rc;
}

/* ---- graph validation (before anything runs) ---- */

struct cycle_walk {
	unsigned char *color; /* 0 white, 1 on the path, 2 done */
	size_t *path;
	size_t depth;
};

/* Depth-first search; on a back edge writes "cycle: a -> b -> a" to msg. */
static bool find_cycle(const struct nc_init *in, struct cycle_walk *w, size_t i, char *msg,
                       size_t msglen)
{
	w->color[i] = 1;
	w->path[w->depth++] = i;
	const struct comp *cp = &in->comps[i];
	for (size_t d = 0; d < cp->ndeps; d++) {
		size_t j = cp->deps[d];
		if (w->color[j] == 1) {
			size_t from = 0;
			while (w->path[from] != j)
				from++;
			size_t off = (size_t)snprintf(msg, msglen, "cycle:");
			for (size_t k = from; k < w->depth && off < msglen; k++)
				off += (size_t)snprintf(msg + off, msglen - off, " %s ->",
				                        in->comps[w->path[k]].c.name);
			if (off < msglen)
				snprintf(msg + off, msglen - off, " %s", in->comps[j].c.name);
			return true;
		}
		if (w->color[j] == 0 && find_cycle(in, w, j, msg, msglen))
			return true;
	}
	w->depth--;
	w->color[i] = 2;
	return false;
}

/* Resolves the dependencies and checks the graph. Lock held; nothing runs. */
static int prepare(struct nc_init *in)
{
	size_t n = in->n ? in->n : 1;
	in->start_order = calloc(n, sizeof(size_t));
	in->up_order = calloc(n, sizeof(size_t));
	if (!in->start_order || !in->up_order)
		goto nomem;
	for (size_t i = 0; i < in->n; i++) {
		struct comp *cp = &in->comps[i];
		size_t nd = 0;
		while (cp->c.deps && cp->c.deps[nd])
			nd++;
		if (!nd)
			continue;
		cp->deps = calloc(nd, sizeof(size_t));
		if (!cp->deps)
			goto nomem;
		cp->ndeps = nd;
	}
	for (size_t i = 0; i < in->n; i++) {
		struct comp *cp = &in->comps[i];
		for (size_t d = 0; d < cp->ndeps; d++) {
			const char *dn = cp->c.deps[d];
			const struct comp *dep = find_comp(in, dn, &cp->deps[d]);
			if (!dep) {
				snprintf(in->boot_err, sizeof(in->boot_err),
				         "component '%s' depends on unknown '%s'", cp->c.name, dn);
				return -ENOENT;
			}
			if (dep->c.phase > cp->c.phase) {
				snprintf(in->boot_err, sizeof(in->boot_err),
				         "component '%s' (phase %s) depends on '%s' of the later "
				         "phase %s",
				         cp->c.name, nc_phase_name(cp->c.phase), dn,
				         nc_phase_name(dep->c.phase));
				return -EINVAL;
			}
		}
	}
	struct cycle_walk w = {
	        .color = calloc(n, 1),
	        .path = calloc(n, sizeof(size_t)),
	};
	int rc = 0;
	if (!w.color || !w.path) {
		rc = -ENOMEM;
		snprintf(in->boot_err, sizeof(in->boot_err), "out of memory");
	}
	for (size_t i = 0; !rc && i < in->n; i++) {
		if (w.color[i] == 0 && find_cycle(in, &w, i, in->boot_err, sizeof(in->boot_err)))
			rc = -ELOOP;
	}
	free(w.color);
	free(w.path);
	return rc;
nomem:
	snprintf(in->boot_err, sizeof(in->boot_err), "out of memory");
	return -ENOMEM;
}

/* ---- the scheduler (all under in->lock) ---- */

/* Stops the boot with @p rc and a message; the first reason wins. */
static void fail_boot(struct nc_init *in, int rc, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void fail_boot(struct nc_init *in, int rc, const char *fmt, ...)
{
	if (in->aborting)
		return;
	in->aborting = true;
	in->boot_rc = rc < 0 ? rc : -EIO;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(in->boot_err, sizeof(in->boot_err), fmt, ap);
	va_end(ap);
	NC_LOG(ERR, "boot failed: %s; stopping", in->boot_err);
	for (size_t i = 0; i < in->n; i++) {
		if (in->comps[i].cur)
			atomic_store(&in->comps[i].cur->cancelled, true);
	}
}

/* Skips everything not yet started that depends on comps[failed], transitively. */
static void skip_dependants(struct nc_init *in, size_t failed, uint64_t t)
{
	const struct comp *fc = &in->comps[failed];
	for (size_t i = 0; i < in->n; i++) {
		struct comp *cp = &in->comps[i];
		if (cp->state != NC_COMP_PENDING)
			continue;
		bool hit = false;
		for (size_t d = 0; d < cp->ndeps && !hit; d++)
			hit = cp->deps[d] == failed;
		if (!hit)
			continue;
		cp->state = NC_COMP_SKIPPED;
		cp->end_ns = t;
		if (fc->state == NC_COMP_FAILED)
			snprintf(cp->last_err, sizeof(cp->last_err), "dependency '%s' failed",
			         fc->c.name);
		else
			snprintf(cp->last_err, sizeof(cp->last_err), "dependency '%s' was skipped",
			         fc->c.name);
		if (cp->c.optional) {
			NC_LOG(WARN, "optional component '%s' skipped: %s", cp->c.name,
			       cp->last_err);
		} else if (fc->state == NC_COMP_FAILED) {
			fail_boot(in, fc->last_rc,
			          "component '%s' cannot start: its dependency '%s' failed after "
			          "%u attempt%s: %s",
			          cp->c.name, fc->c.name, fc->attempts, plural(fc->attempts),
			          fc->last_err);
		} else {
			fail_boot(
			        in, -ENODEV,
			        "component '%s' cannot start: its dependency '%s' was skipped (%s)",
			        cp->c.name, fc->c.name, fc->last_err);
		}
		skip_dependants(in, i, t);
	}
}

static void comp_up(struct nc_init *in, size_t i, uint64_t t)
{
	struct comp *cp = &in->comps[i];
	cp->state = NC_COMP_UP;
	cp->end_ns = t;
	in->up_order[in->nup++] = i;
	NC_LOG(NOTICE, "component '%s' up in %.3f ms (attempt %u/%u)", cp->c.name,
	       ns_to_ms(t - cp->start_ns), cp->attempts, cp->c.retries + 1);
}

static void attempt_failed(struct nc_init *in, size_t i, int rc, const char *msg, uint64_t t)
{
	struct comp *cp = &in->comps[i];
	cp->last_rc = rc < 0 ? rc : -EIO;
	if (msg && msg[0]) {
		snprintf(cp->last_err, sizeof(cp->last_err), "%s", msg);
	} else {
		char buf[64];
		snprintf(cp->last_err, sizeof(cp->last_err), "%s",
		         strerror_r(-cp->last_rc, buf, sizeof(buf)));
	}
	if (!in->aborting && cp->attempts <= cp->c.retries) {
		uint64_t delay = backoff_ms(in, cp);
		cp->in_backoff = true;
		cp->retry_at_ns = t + delay * 1000000ull;
		NC_LOG(NOTICE, "component '%s' attempt %u/%u failed: %s; retrying in %llu ms",
		       cp->c.name, cp->attempts, cp->c.retries + 1, cp->last_err,
		       (unsigned long long)delay);
		return;
	}
	cp->state = NC_COMP_FAILED;
	cp->end_ns = t;
	if (cp->c.optional) {
		NC_LOG(WARN, "optional component '%s' failed after %u attempt%s: %s; degraded",
		       cp->c.name, cp->attempts, plural(cp->attempts), cp->last_err);
	} else if (in->aborting) {
		NC_LOG(WARN, "component '%s' failed after %u attempt%s while the boot stops: %s",
		       cp->c.name, cp->attempts, plural(cp->attempts), cp->last_err);
	} else {
		fail_boot(in, cp->last_rc, "component '%s' failed after %u attempt%s: %s",
		          cp->c.name, cp->attempts, plural(cp->attempts), cp->last_err);
	}
	skip_dependants(in, i, t);
}

static void *attempt_main(void *arg)
{
	struct nc_init_ctx *ctx = arg;
	struct nc_init *in = ctx->in;
	/* comps[] no longer moves once started. */
	const struct comp *cp = &in->comps[ctx->comp];
	int rc = cp->c.init(cp->c.arg, ctx, ctx->err, sizeof(ctx->err));
	ctx->err[sizeof(ctx->err) - 1] = '\0';
	uint64_t end = now_ns();

	pthread_mutex_lock(&in->lock);
	ctx->rc = rc;
	ctx->end_ns = end;
	ctx->done = true;
	bool late = ctx->abandoned;
	pthread_cond_broadcast(&in->cond);
	pthread_mutex_unlock(&in->lock);
	if (late)
		NC_LOG(WARN,
		       "component '%s' attempt %u came back late (rc %d%s%s), after it timed out; "
		       "result ignored, no shutdown for it",
		       cp->c.name, ctx->attempt, rc, ctx->err[0] ? ": " : "", ctx->err);
	return NULL;
}

static void launch(struct nc_init *in, size_t i, uint64_t now)
{
	struct comp *cp = &in->comps[i];
	cp->attempts++;
	cp->in_backoff = false;
	cp->state = NC_COMP_RUNNING;
	if (!cp->started) {
		cp->started = true;
		cp->start_ns = now;
		in->start_order[in->nstarted++] = i;
	}
	NC_LOG(INFO, "starting component '%s' (phase %s, attempt %u/%u, timeout %u ms)", cp->c.name,
	       nc_phase_name(cp->c.phase), cp->attempts, cp->c.retries + 1, cp->c.timeout_ms);
	struct nc_init_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		attempt_failed(in, i, -ENOMEM, "out of memory", now);
		return;
	}
	atomic_init(&ctx->cancelled, false);
	ctx->in = in;
	ctx->comp = i;
	ctx->attempt = cp->attempts;
	ctx->deadline_ns = now + (uint64_t)cp->c.timeout_ms * 1000000ull;
	int rc = pthread_create(&ctx->thread, NULL, attempt_main, ctx);
	if (rc) {
		free(ctx);
		char buf[64], msg[96];
		snprintf(msg, sizeof(msg), "cannot create a thread: %s",
		         strerror_r(rc, buf, sizeof(buf)));
		attempt_failed(in, i, -rc, msg, now);
		return;
	}
	cp->cur = ctx;
}

/* Collects finished attempts and abandons the ones past their deadline. */
static void reap(struct nc_init *in, uint64_t now)
{
	for (size_t i = 0; i < in->n; i++) {
		struct comp *cp = &in->comps[i];
		struct nc_init_ctx *ctx = cp->cur;
		if (!ctx)
			continue;
		if (ctx->done) {
			cp->cur = NULL;
			pthread_join(ctx->thread, NULL);
			if (ctx->rc == 0)
				comp_up(in, i, ctx->end_ns);
			else
				attempt_failed(in, i, ctx->rc, ctx->err, ctx->end_ns);
			free(ctx);
		} else if (now >= ctx->deadline_ns) {
			cp->cur = NULL;
			ctx->abandoned = true;
			atomic_store(&ctx->cancelled, true);
			ctx->next_zombie = in->zombies;
			in->zombies = ctx;
			char msg[64];
			snprintf(msg, sizeof(msg), "timed out after %u ms", cp->c.timeout_ms);
			NC_LOG(WARN, "component '%s' attempt %u %s; abandoning it", cp->c.name,
			       ctx->attempt, msg);
			attempt_failed(in, i, -ETIMEDOUT, msg, now);
		}
	}
}

static bool deps_up(const struct nc_init *in, const struct comp *cp)
{
	for (size_t d = 0; d < cp->ndeps; d++) {
		if (in->comps[cp->deps[d]].state != NC_COMP_UP)
			return false;
	}
	return true;
}

static void launch_ready(struct nc_init *in, enum nc_phase p, uint64_t now)
{
	for (size_t i = 0; i < in->n && !in->aborting; i++) {
		struct comp *cp = &in->comps[i];
		if (cp->c.phase != p)
			continue;
		if (cp->state == NC_COMP_PENDING && deps_up(in, cp))
			launch(in, i, now);
		else if (cp->in_backoff && now >= cp->retry_at_ns)
			launch(in, i, now);
	}
}

static bool phase_done(const struct nc_init *in, enum nc_phase p)
{
	for (size_t i = 0; i < in->n; i++) {
		const struct comp *cp = &in->comps[i];
		if (cp->c.phase == p &&
		    (cp->state == NC_COMP_PENDING || cp->state == NC_COMP_RUNNING))
			return false;
	}
	return true;
}

static bool any_running(const struct nc_init *in)
{
	for (size_t i = 0; i < in->n; i++) {
		if (in->comps[i].cur)
			return true;
	}
	return false;
}

static uint64_t next_wake(const struct nc_init *in)
{
	uint64_t t = NO_WAKE;
	for (size_t i = 0; i < in->n; i++) {
		const struct comp *cp = &in->comps[i];
		if (cp->cur && cp->cur->deadline_ns < t)
			t = cp->cur->deadline_ns;
		if (cp->in_backoff && cp->retry_at_ns < t)
			t = cp->retry_at_ns;
	}
	return t;
}

static void wait_until(struct nc_init *in, uint64_t t)
{
	struct timespec ts = {
	        .tv_sec = (time_t)(t / 1000000000ull),
	        .tv_nsec = (long)(t % 1000000000ull),
	};
	pthread_cond_timedwait(&in->cond, &in->lock, &ts);
}

static void check_stop_request(struct nc_init *in)
{
	if (in->stop_requested)
		fail_boot(in, -ECANCELED, "boot aborted: shutdown requested");
}

static size_t count_phase(const struct nc_init *in, enum nc_phase p)
{
	size_t k = 0;
	for (size_t i = 0; i < in->n; i++)
		k += in->comps[i].c.phase == p;
	return k;
}

static void run_phase(struct nc_init *in, enum nc_phase p)
{
	struct phase_time *ph = &in->phases[p];
	ph->ran = true;
	ph->start_ns = now_ns();
	size_t k = count_phase(in, p);
	if (k)
		NC_LOG(INFO, "phase %s: %zu component%s", nc_phase_name(p), k, plural((unsigned)k));
	for (;;) {
		check_stop_request(in);
		uint64_t now = now_ns();
		reap(in, now);
		if (in->aborting)
			return;
		launch_ready(in, p, now);
		if (in->aborting)
			return;
		if (phase_done(in, p))
			break;
		uint64_t wake = next_wake(in);
		if (wake == NO_WAKE) {
			fail_boot(in, -EDEADLK, "internal error: phase %s stalled",
			          nc_phase_name(p));
			return;
		}
		wait_until(in, wake);
	}
	ph->end_ns = now_ns();
	if (k)
		NC_LOG(INFO, "phase %s done in %.3f ms", nc_phase_name(p),
		       ns_to_ms(ph->end_ns - ph->start_ns));
}

static void shutdown_all(struct nc_init *in);

/* The boot is stopping: let the running attempts end, skip the rest, undo. */
static void teardown(struct nc_init *in, enum nc_phase p)
{
	uint64_t now = now_ns();
	for (size_t i = 0; i < in->n; i++) {
		struct comp *cp = &in->comps[i];
		if (cp->in_backoff) {
			cp->in_backoff = false;
			cp->state = NC_COMP_SKIPPED;
			cp->end_ns = now;
		}
	}
	for (;;) {
		reap(in, now_ns());
		if (!any_running(in))
			break;
		wait_until(in, next_wake(in));
	}
	now = now_ns();
	for (size_t i = 0; i < in->n; i++) {
		struct comp *cp = &in->comps[i];
		if (cp->state == NC_COMP_PENDING) {
			cp->state = NC_COMP_SKIPPED;
			cp->end_ns = now;
			snprintf(cp->last_err, sizeof(cp->last_err),
			         "boot stopped before it started");
		}
	}
	if (p < NC_PHASE_COUNT && in->phases[p].ran && !in->phases[p].end_ns)
		in->phases[p].end_ns = now;
	pthread_mutex_unlock(&in->lock);
	shutdown_all(in);
	pthread_mutex_lock(&in->lock);
}

/* Appends to a bounded line; silently truncates. */
static void line_add(char *buf, size_t len, size_t *off, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void line_add(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
	if (*off >= len)
		return;
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(buf + *off, len - *off, fmt, ap);
	va_end(ap);
	if (w > 0)
		*off += (size_t)w;
}

static void log_summary(const struct nc_init *in)
{
	size_t up = 0, failed = 0, skipped = 0;
	char phases[256] = "", down[256] = "";
	size_t poff = 0, doff = 0;

	for (int p = 0; p < NC_PHASE_COUNT; p++) {
		const struct phase_time *ph = &in->phases[p];
		if (ph->ran)
			line_add(phases, sizeof(phases), &poff, "%s%s %.3f ms", poff ? ", " : "",
			         nc_phase_name((enum nc_phase)p),
			         ns_to_ms(ph->end_ns - ph->start_ns));
	}
	for (size_t k = 0; k < in->nstarted; k++) {
		const struct comp *cp = &in->comps[in->start_order[k]];
		NC_LOG(INFO, "boot report: component '%s' %s after %u attempt%s in %.3f ms",
		       cp->c.name, nc_comp_state_name(cp->state), cp->attempts,
		       plural(cp->attempts), ns_to_ms(cp->end_ns - cp->start_ns));
	}
	for (size_t i = 0; i < in->n; i++) {
		const struct comp *cp = &in->comps[i];
		up += cp->state == NC_COMP_UP;
		failed += cp->state == NC_COMP_FAILED;
		skipped += cp->state == NC_COMP_SKIPPED;
		if (cp->state == NC_COMP_FAILED || cp->state == NC_COMP_SKIPPED)
			line_add(down, sizeof(down), &doff, "%s%s (%s)", doff ? ", " : "",
			         cp->c.name, nc_comp_state_name(cp->state));
		if (!cp->started)
			NC_LOG(INFO, "boot report: component '%s' %s: %s", cp->c.name,
			       nc_comp_state_name(cp->state), cp->last_err);
	}
	if (poff)
		NC_LOG(INFO, "boot report: phases %s", phases);
	double ms = ns_to_ms(in->t_end_ns - in->t0_ns);
	if (in->boot_rc)
		NC_LOG(ERR, "boot failed after %.3f ms: %s (%zu failed, %zu skipped)", ms,
		       in->boot_err, failed, skipped);
	else if (failed || skipped)
		NC_LOG(WARN, "boot done, degraded, in %.3f ms: %zu up, not up: %s", ms, up, down);
	else
		NC_LOG(NOTICE, "boot done in %.3f ms: %zu component%s up", ms, up,
		       plural((unsigned)up));
}

int nc_init_start(struct nc_init *in, char *err, size_t errlen)
{
	put_err(err, errlen, "%s", "");
	if (!in) {
		put_err(err, errlen, "no orchestrator");
		return -EINVAL;
	}
	pthread_mutex_lock(&in->lock);
	if (in->started) {
		pthread_mutex_unlock(&in->lock);
		put_err(err, errlen, "nc_init_start called twice");
		return -EALREADY;
	}
	in->started = true;
	in->booting = true;
	in->t0_ns = now_ns();
	NC_LOG(NOTICE, "boot: %zu component%s", in->n, in->n == 1 ? "" : "s");

	int rc = prepare(in);
	if (rc) {
		in->boot_rc = rc;
		NC_LOG(ERR, "boot refused: %s", in->boot_err);
	} else if (in->stop_requested) {
		in->boot_rc = -ECANCELED;
		snprintf(in->boot_err, sizeof(in->boot_err), "shutdown requested before the boot");
	}
	if (in->boot_rc) {
		for (size_t i = 0; i < in->n; i++) {
			in->comps[i].state = NC_COMP_SKIPPED;
			snprintf(in->comps[i].last_err, sizeof(in->comps[i].last_err),
			         "boot refused");
		}
	} else {
		int p = 0;
		for (; p < NC_PHASE_COUNT && !in->aborting; p++)
			run_phase(in, (enum nc_phase)p);
		if (in->aborting)
			teardown(in, (enum nc_phase)(p - 1));
	}

	in->t_end_ns = now_ns();
	rc = in->boot_rc;
	log_summary(in);
	put_err(err, errlen, "%s", in->boot_err);
	in->booting = false;
	in->finished = true;
	pthread_cond_broadcast(&in->cond);
	pthread_mutex_unlock(&in->lock);
	return rc;
}

/* ---- shutdown, destroy ---- */

static void shutdown_all(struct nc_init *in)
{
	pthread_mutex_lock(&in->stop_lock);
	pthread_mutex_lock(&in->lock);
	size_t k = 0;
	for (size_t i = 0; i < in->nup; i++)
		k += in->comps[in->up_order[i]].state == NC_COMP_UP;
	if (k) {
		NC_LOG(NOTICE, "shutting down %zu component%s", k, k == 1 ? "" : "s");
		uint64_t t0 = now_ns();
		for (size_t j = in->nup; j-- > 0;) {
			struct comp *cp = &in->comps[in->up_order[j]];
			if (cp->state != NC_COMP_UP)
				continue;
			cp->stopping = true;
			while (cp->health_busy)
				pthread_cond_wait(&in->cond, &in->lock);
			pthread_mutex_unlock(&in->lock);
			uint64_t t = now_ns();
			if (cp->c.shutdown)
				cp->c.shutdown(cp->c.arg);
			NC_LOG(INFO, "component '%s' stopped in %.3f ms", cp->c.name,
			       ns_to_ms(now_ns() - t));
			pthread_mutex_lock(&in->lock);
			cp->state = NC_COMP_STOPPED;
		}
		NC_LOG(NOTICE, "shutdown done in %.3f ms", ns_to_ms(now_ns() - t0));
	}
	pthread_mutex_unlock(&in->lock);
	pthread_mutex_unlock(&in->stop_lock);
}

void nc_init_shutdown(struct nc_init *in)
{
	if (!in)
		return;
	pthread_mutex_lock(&in->lock);
	in->stop_requested = true;
	pthread_cond_broadcast(&in->cond);
	while (in->booting)
		pthread_cond_wait(&in->cond, &in->lock);
	pthread_mutex_unlock(&in->lock);
	shutdown_all(in);
}

void nc_init_destroy(struct nc_init *in)
{
	if (!in)
		return;
	nc_init_shutdown(in);
	pthread_mutex_lock(&in->lock);
	struct nc_init_ctx *z = in->zombies;
	in->zombies = NULL;
	pthread_mutex_unlock(&in->lock);
	if (z)
		NC_LOG(INFO, "waiting for abandoned init attempts to return");
	while (z) {
		struct nc_init_ctx *next = z->next_zombie;
		pthread_join(z->thread, NULL);
		free(z);
		z = next;
	}
	for (size_t i = 0; i < in->n; i++)
		free(in->comps[i].deps);
	free(in->comps);
	free(in->start_order);
	free(in->up_order);
	pthread_cond_destroy(&in->cond);
	pthread_mutex_destroy(&in->health_lock);
	pthread_mutex_destroy(&in->stop_lock);
	pthread_mutex_destroy(&in->lock);
	free(in);
}

/* ---- health ---- */

/* Snapshots the states, calls the health hooks of what is up, rolls up. health_lock held. */
static enum nc_health collect_health(struct nc_init *in)
{
	pthread_mutex_lock(&in->lock);
	for (size_t i = 0; i < in->n; i++) {
		struct comp *cp = &in->comps[i];
		cp->h_state = cp->state;
		cp->health = NC_HEALTH_FAILED;
		switch (cp->state) {
		case NC_COMP_UP:
			if (cp->stopping) {
				snprintf(cp->health_msg, sizeof(cp->health_msg), "stopping");
				break;
			}
			cp->health = NC_HEALTH_OK;
			snprintf(cp->health_msg, sizeof(cp->health_msg), "up");
			cp->health_busy = cp->c.health != NULL;
			break;
		case NC_COMP_FAILED:
		case NC_COMP_SKIPPED:
			snprintf(cp->health_msg, sizeof(cp->health_msg), "%s: %s",
			         nc_comp_state_name(cp->state), cp->last_err);
			break;
		case NC_COMP_RUNNING:
			snprintf(cp->health_msg, sizeof(cp->health_msg), "starting (attempt %u)",
			         cp->attempts);
			break;
		default:
			snprintf(cp->health_msg, sizeof(cp->health_msg), "%s",
			         nc_comp_state_name(cp->state));
			break;
		}
	}
	pthread_mutex_unlock(&in->lock);

	enum nc_health all = NC_HEALTH_OK;
	for (size_t i = 0; i < in->n; i++) {
		struct comp *cp = &in->comps[i];
		/* health_busy is only ever set by this thread, under health_lock. */
		pthread_mutex_lock(&in->lock);
		bool call = cp->health_busy;
		pthread_mutex_unlock(&in->lock);
		if (call) {
			cp->health_msg[0] = '\0';
			enum nc_health h =
			        cp->c.health(cp->c.arg, cp->health_msg, sizeof(cp->health_msg));
			cp->health_msg[sizeof(cp->health_msg) - 1] = '\0';
			cp->health = (unsigned)h <= NC_HEALTH_FAILED ? h : NC_HEALTH_FAILED;
			pthread_mutex_lock(&in->lock);
			cp->health_busy = false;
			pthread_cond_broadcast(&in->cond);
			pthread_mutex_unlock(&in->lock);
		}
		enum nc_health h = cp->health;
		if (h == NC_HEALTH_FAILED && cp->c.optional)
			h = NC_HEALTH_DEGRADED;
		if (h > all)
			all = h;
	}
	return all;
}

enum nc_health nc_init_health(struct nc_init *in)
{
	if (!in)
		return NC_HEALTH_FAILED;
	pthread_mutex_lock(&in->health_lock);
	enum nc_health h = collect_health(in);
	pthread_mutex_unlock(&in->health_lock);
	return h;
}

json_t *nc_init_health_json(struct nc_init *in)
{
	if (!in)
		return NULL;
	pthread_mutex_lock(&in->health_lock);
	enum nc_health all = collect_health(in);
	json_t *comps = json_array();
	for (size_t i = 0; comps && i < in->n; i++) {
		const struct comp *cp = &in->comps[i];
		json_t *o = json_pack("{s:s, s:s, s:b, s:s, s:s, s:s}", "name", cp->c.name, "phase",
		                      nc_phase_name(cp->c.phase), "optional", (int)cp->c.optional,
		                      "state", nc_comp_state_name(cp->h_state), "health",
		                      nc_health_name(cp->health), "message", cp->health_msg);
		if (!o || json_array_append_new(comps, o)) {
			json_decref(comps);
			comps = NULL;
		}
	}
	pthread_mutex_unlock(&in->health_lock);
	if (!comps)
		return NULL;
	return json_pack("{s:s, s:o}", "status", nc_health_name(all), "components", comps);
}

/* ---- boot report ---- */

static json_t *ms_or_null(bool have, uint64_t ns)
{
	return have ? json_real(ns_to_ms(ns)) : json_null();
}

static json_t *report_comp(const struct nc_init *in, const struct comp *cp, uint64_t now)
{
	uint64_t end = cp->end_ns ? cp->end_ns : now;
	return json_pack("{s:s, s:s, s:b, s:s, s:I, s:o, s:o, s:o}", "name", cp->c.name, "phase",
	                 nc_phase_name(cp->c.phase), "optional", (int)cp->c.optional, "state",
	                 nc_comp_state_name(cp->state), "attempts", (json_int_t)cp->attempts,
	                 "start_ms", ms_or_null(cp->started, cp->start_ns - in->t0_ns),
	                 "duration_ms", ms_or_null(cp->started, end - cp->start_ns), "error",
	                 cp->last_err[0] ? json_string(cp->last_err) : json_null());
}

/* The components in start order, then the ones that never started. */
static size_t order_at(const struct nc_init *in, size_t k, bool *seen)
{
	if (k < in->nstarted)
		return in->start_order[k];
	size_t skip = k - in->nstarted;
	for (size_t i = 0; i < in->n; i++) {
		if (seen[i])
			continue;
		if (skip-- == 0)
			return i;
	}
	return in->n; /* not reached */
}

json_t *nc_init_report_json(const struct nc_init *in)
{
	if (!in)
		return NULL;
	pthread_mutex_t *lock = (pthread_mutex_t *)&in->lock;
	pthread_mutex_lock(lock);
	uint64_t now = now_ns();
	json_t *root = NULL, *phases = json_array(), *comps = json_array();
	size_t *order = calloc(in->n ? in->n : 1, sizeof(size_t));
	bool *seen = calloc(in->n ? in->n : 1, sizeof(bool));
	if (!phases || !comps || !order || !seen)
		goto out;
	for (size_t k = 0; k < in->nstarted; k++)
		seen[in->start_order[k]] = true;
	for (size_t k = 0; k < in->n; k++)
		order[k] = order_at(in, k, seen);

	for (size_t k = 0; k < in->n; k++) {
		json_t *o = report_comp(in, &in->comps[order[k]], now);
		if (!o || json_array_append_new(comps, o))
			goto out;
	}
	for (int p = 0; p < NC_PHASE_COUNT; p++) {
		const struct phase_time *ph = &in->phases[p];
		json_t *names = json_array();
		for (size_t k = 0; names && k < in->n; k++) {
			const struct comp *cp = &in->comps[order[k]];
			if ((int)cp->c.phase == p &&
			    json_array_append_new(names, json_string(cp->c.name))) {
				json_decref(names);
				names = NULL;
			}
		}
		uint64_t end = ph->end_ns ? ph->end_ns : now;
		json_t *o = json_pack("{s:s, s:o, s:o, s:o}", "name",
		                      nc_phase_name((enum nc_phase)p), "start_ms",
		                      ms_or_null(ph->ran, ph->start_ns - in->t0_ns), "duration_ms",
		                      ms_or_null(ph->ran, end - ph->start_ns), "components", names);
		if (!o || json_array_append_new(phases, o))
			goto out;
	}

	const char *result = NULL;
	if (in->finished) {
		result = "ok";
		if (in->boot_rc)
			result = "failed";
		for (size_t i = 0; !in->boot_rc && i < in->n; i++) {
			enum nc_comp_state s = in->comps[i].state;
			if (s == NC_COMP_FAILED || s == NC_COMP_SKIPPED)
				result = "degraded";
		}
	}
	uint64_t total = 0;
	if (in->started)
		total = (in->finished ? in->t_end_ns : now) - in->t0_ns;
	root = json_pack("{s:f, s:o, s:O, s:O}", "total_ms", ns_to_ms(total), "result",
	                 result ? json_string(result) : json_null(), "phases", phases, "components",
	                 comps);
out:
	json_decref(phases);
	json_decref(comps);
	free(order);
	free(seen);
	pthread_mutex_unlock(lock);
	return root;
}
