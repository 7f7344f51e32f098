/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cp_libvirt: the control plane's libvirt backend (see cp_libvirt.h). One
 * connection per handle; each migration runs virDomainMigrateToURI3 in a
 * thread of its own, on a connection of its own (with libvirt 9.0 here, other
 * calls on the connection that carries a running peer-to-peer migration
 * sometimes never returned), while progress (virDomainGetJobStats) and abort
 * (virDomainAbortJob) are asked on the handle's connection, of which the
 * migration keeps a reference. libvirt's error state is per thread: every
 * error is turned into text and an errno in the thread that saw it.
 *
 * A libvirtd that stops answering: libvirt's client waits for replies for
 * ever. Every connection here runs libvirt keepalive (which needs an event
 * loop: libvirt's default one, run by a thread of ours for the life of the
 * process), so a call on a dead connection, one waiting included, fails
 * once the probes go unanswered; and a connect is waited for in a thread of
 * its own, given up on after open_timeout_ms.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#define NC_LOG_MODULE "libvirt"
#include "cp_libvirt.h"
#include "nc_log.h"

#define ERR_LEN 512

struct cp_libvirt {
	virConnectPtr conn;
	char *uri;
	struct cp_libvirt_conn_opts opts;
	char err[ERR_LEN];
};

struct cp_libvirt_migration {
	virConnectPtr conn; /* our reference */
	virDomainPtr dom;   /* our reference */
	unsigned char uuid[VIR_UUID_BUFLEN];
	char *src_uri; /* the migration thread's own connection goes there */
	struct cp_libvirt_conn_opts opts;
	char *domain;
	char *dest_uri;
	char *migrate_uri;
	unsigned int parallel;
	uint64_t bandwidth_mibps;
	unsigned int flags;
	uint64_t t0_ns;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Under lock: */
	bool abort_asked; /* libvirt took our abort */
	bool finished;
	int result;
	struct cp_libvirt_progress last;
	char err[ERR_LEN];
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

/* libvirt prints every error to stderr by default; errors are ours to report. */
static void quiet_errors(void *opaque, virErrorPtr e)
{
	(void)opaque;
	(void)e;
}

/* libvirt's default event loop, needed by keepalive. Runs for the life of
 * the process (libvirt has no way to unregister it). */
static void *event_loop(void *arg)
{
	(void)arg;
	for (;;) {
		if (virEventRunDefaultImpl() < 0) {
			virResetLastError();
			const struct timespec ts = {0, 100000000L};
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

static void init_libvirt(void)
{
	init_rc = virInitialize() == 0 ? 0 : -EIO;
	virSetErrorFunc(NULL, quiet_errors);
	if (init_rc == 0 && virEventRegisterDefaultImpl() < 0)
		init_rc = -EIO;
	if (init_rc != 0)
		return;
	pthread_attr_t a;
	pthread_t t;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	init_rc = -pthread_create(&t, &a, event_loop, NULL);
	pthread_attr_destroy(&a);
	if (init_rc == 0)
		pthread_setname_np(t, "libvirt-events");
}

/* A condition variable timed on CLOCK_MONOTONIC. */
static void cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
}

/* CLOCK_MONOTONIC @p ms from now. */
static struct timespec deadline_in(int ms)
{
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += ms / 1000;
	dl.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	return dl;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* This thread's last libvirt error as an errno (negative). */
static int errno_of(const virError *e)
{
	if (e == NULL)
		return -EIO;
	switch (e->code) {
	case VIR_ERR_NO_DOMAIN:
		return -ENOENT;
	case VIR_ERR_NO_SUPPORT:
	case VIR_ERR_OPERATION_UNSUPPORTED:
	case VIR_ERR_ARGUMENT_UNSUPPORTED:
		return -ENOTSUP;
	case VIR_ERR_OPERATION_INVALID:
	case VIR_ERR_INVALID_ARG:
	case VIR_ERR_INVALID_DOMAIN:
		return -EINVAL;
	case VIR_ERR_OPERATION_ABORTED:
		return -ECANCELED;
	case VIR_ERR_OPERATION_TIMEOUT:
		return -ETIMEDOUT;
	case VIR_ERR_AUTH_FAILED:
	case VIR_ERR_AUTH_CANCELLED:
	case VIR_ERR_OPERATION_DENIED:
	case VIR_ERR_ACCESS_DENIED:
		return -EACCES;
	case VIR_ERR_NO_CONNECT:
		return -ECONNREFUSED;
	case VIR_ERR_SYSTEM_ERROR:
		return e->int1 > 0 ? -e->int1 : -EIO;
	default:
		return -EIO;
	}
}

/* Take this thread's last libvirt error into @p buf ("WHAT: message") and
 * return it as an errno; the error is reset. */
static int take_error(char *buf, size_t len, const char *what)
{
	const virError *e = virGetLastError();
	int rc = errno_of(e);
	if (len > 0)
		snprintf(buf, len, "%s: %s", what, virGetLastErrorMessage());
	virResetLastError();
	return rc;
}

/* take_error for a call on @p c: when the connection is gone (closed by
 * keepalive, or by the daemon), -ECONNRESET and says so, whatever libvirt's
 * own error was ("no error" is what some calls leave). */
static int take_call_error(virConnectPtr c, const struct cp_libvirt_conn_opts *o, char *buf,
                           size_t len, const char *what)
{
	char lverr[ERR_LEN];
	int rc = take_error(lverr, sizeof(lverr), what);
	if (c == NULL || virConnectIsAlive(c) != 0) {
		if (len > 0)
			snprintf(buf, len, "%s", lverr);
		return rc;
	}
	virResetLastError();
	if (len > 0 && o->keepalive_s > 0)
		snprintf(buf, len,
		         "%s: lost the connection to libvirtd (it closed it, or answered no "
		         "keepalive probe for %d s)",
		         what, o->keepalive_s * (int)(o->keepalive_count + 1));
	else if (len > 0)
		snprintf(buf, len, "%s: lost the connection to libvirtd (it closed it)", what);
	return -ECONNRESET;
}

/* A connect waited for in a thread of its own (libvirt's has no time limit).
 * Shared by the caller and the thread; the last one out frees it. */
struct opener {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char *uri;
	virConnectPtr conn;
	int rc;
	bool done, abandoned;
	char err[ERR_LEN];
};

static void opener_free(struct opener *op)
{
	pthread_mutex_destroy(&op->lock);
	pthread_cond_destroy(&op->cond);
	free(op->uri);
	free(op);
}

/* virConnectOpen, its error taken in this thread. */
static virConnectPtr open_now(const char *uri, char *err, size_t errlen, int *rc)
{
	virConnectPtr c = virConnectOpen(uri);
	*rc = 0;
	if (c == NULL) {
		char what[ERR_LEN];
		snprintf(what, sizeof(what), "cannot connect to %s", uri);
		*rc = take_error(err, errlen, what);
	}
	return c;
}

static void *open_thread(void *arg)
{
	struct opener *op = arg;
	char err[ERR_LEN] = "";
	int rc;
	virConnectPtr c = open_now(op->uri, err, sizeof(err), &rc);
	pthread_mutex_lock(&op->lock);
	bool abandoned = op->abandoned;
	if (!abandoned) {
		op->conn = c;
		op->rc = rc;
		memcpy(op->err, err, sizeof(err));
		op->done = true;
		pthread_cond_signal(&op->cond);
	}
	pthread_mutex_unlock(&op->lock);
	if (abandoned) {
		if (c != NULL)
			virConnectClose(c);
		NC_LOG(NOTICE, "%s answered after the connect was given up on", op->uri);
		opener_free(op);
	}
	return NULL;
}

/* Connect to @p uri within o->open_timeout_ms, then start keepalive. NULL
 * with *rc and the error in @p err on failure. */
static virConnectPtr conn_open(const char *uri, const struct cp_libvirt_conn_opts *o, char *err,
                               size_t errlen, int *rc)
{
	virConnectPtr c = NULL;
	*rc = 0;
	if (o->open_timeout_ms <= 0) {
		c = open_now(uri, err, errlen, rc);
		if (c == NULL)
			return NULL;
	} else {
		struct opener *op = calloc(1, sizeof(*op));
		if (op == NULL || (op->uri = strdup(uri)) == NULL) {
			free(op);
			snprintf(err, errlen, "out of memory");
			*rc = -ENOMEM;
			return NULL;
		}
		pthread_mutex_init(&op->lock, NULL);
		cond_init_mono(&op->cond);
		pthread_attr_t a;
		pthread_t t;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		int prc = pthread_create(&t, &a, open_thread, op);
		pthread_attr_destroy(&a);
		if (prc != 0) {
			opener_free(op);
			snprintf(err, errlen, "cannot start a thread to connect to %s: %s", uri,
			         strerror(prc));
			*rc = -prc;
			return NULL;
		}
		struct timespec dl = deadline_in(o->open_timeout_ms);
		pthread_mutex_lock(&op->lock);
		while (!op->done && pthread_cond_timedwait(&op->cond, &op->lock, &dl) != ETIMEDOUT)
			;
		bool done = op->done;
		op->abandoned = !done;
		pthread_mutex_unlock(&op->lock);
		if (!done) {
			/* The thread frees it when libvirt lets go. */
			snprintf(err, errlen,
			         "cannot connect to %s: libvirtd did not answer in %d ms", uri,
			         o->open_timeout_ms);
			*rc = -ETIMEDOUT;
			return NULL;
		}
		c = op->conn;
		*rc = op->rc;
		if (c == NULL)
			snprintf(err, errlen, "%s", op->err);
		opener_free(op);
		if (c == NULL)
			return NULL;
	}
	if (o->keepalive_s > 0) {
		int krc = virConnectSetKeepAlive(c, o->keepalive_s, o->keepalive_count);
		const virError *ke = krc < 0 ? virGetLastError() : NULL;
		if (ke != NULL && ke->code == VIR_ERR_NO_SUPPORT)
			NC_LOG(DEBUG, "%s: the driver has no keepalive (in-process)", uri);
		else if (krc < 0)
			NC_LOG(WARN,
			       "%s: no keepalive (%s): a daemon that stops answering will hold "
			       "calls on it",
			       uri, virGetLastErrorMessage());
		virResetLastError();
	}
	return c;
}

const char *cp_libvirt_dom_state_name(enum cp_libvirt_dom_state s)
{
	switch (s) {
	case CP_LIBVIRT_DOM_RUNNING:
		return "running";
	case CP_LIBVIRT_DOM_PAUSED:
		return "paused";
	case CP_LIBVIRT_DOM_SHUTOFF:
		return "shutoff";
	default:
		return "other";
	}
}

static enum cp_libvirt_dom_state map_state(int st)
{
	switch (st) {
	case VIR_DOMAIN_RUNNING:
		return CP_LIBVIRT_DOM_RUNNING;
	case VIR_DOMAIN_PAUSED:
		return CP_LIBVIRT_DOM_PAUSED;
	case VIR_DOMAIN_SHUTOFF:
	case VIR_DOMAIN_SHUTDOWN:
		return CP_LIBVIRT_DOM_SHUTOFF;
	default:
		return CP_LIBVIRT_DOM_OTHER;
	}
}

struct cp_libvirt *cp_libvirt_create(const char *uri, const struct cp_libvirt_conn_opts *o,
                                     char *err, size_t errlen)
{
	static const struct cp_libvirt_conn_opts defaults = CP_LIBVIRT_CONN_OPTS_DEFAULT;
	if (errlen > 0)
		err[0] = '\0';
	if (uri == NULL || uri[0] == '\0') {
		if (errlen > 0)
			snprintf(err, errlen, "no libvirt URI");
		errno = EINVAL;
		return NULL;
	}
	pthread_once(&init_once, init_libvirt);
	if (init_rc != 0) {
		if (errlen > 0)
			snprintf(err, errlen, "libvirt did not initialise");
		errno = -init_rc;
		return NULL;
	}
	struct cp_libvirt *lv = calloc(1, sizeof(*lv));
	if (lv == NULL)
		return NULL;
	lv->opts = o != NULL ? *o : defaults;
	int rc = 0;
	lv->conn = conn_open(uri, &lv->opts, err, errlen, &rc);
	if (lv->conn == NULL) {
		free(lv);
		errno = -rc;
		return NULL;
	}
	lv->uri = virConnectGetURI(lv->conn);
	if (lv->uri == NULL) {
		virResetLastError();
		lv->uri = strdup(uri);
	}
	if (lv->uri == NULL) {
		virConnectClose(lv->conn);
		free(lv);
		errno = ENOMEM;
		return NULL;
	}
	NC_LOG(INFO, "connected to %s", lv->uri);
	return lv;
}

void cp_libvirt_destroy(struct cp_libvirt *lv)
{
	if (lv == NULL)
		return;
	virConnectClose(lv->conn);
	free(lv->uri);
	free(lv);
}

const char *cp_libvirt_uri(const struct cp_libvirt *lv)
{
	return lv->uri;
}

const char *cp_libvirt_error(const struct cp_libvirt *lv)
{
	return lv->err;
}

/* Look @p name up; NULL with the error in lv->err and *rc set. */
static virDomainPtr lookup(struct cp_libvirt *lv, const char *name, int *rc)
{
	if (name == NULL || name[0] == '\0') {
		snprintf(lv->err, sizeof(lv->err), "no domain name");
		*rc = -EINVAL;
		return NULL;
	}
	virDomainPtr dom = virDomainLookupByName(lv->conn, name);
	if (dom == NULL) {
		char what[ERR_LEN];
		snprintf(what, sizeof(what), "domain '%s' on %s", name, lv->uri);
		*rc = take_call_error(lv->conn, &lv->opts, lv->err, sizeof(lv->err), what);
	}
	return dom;
}

static int dom_state(struct cp_libvirt *lv, virDomainPtr dom, const char *name,
                     enum cp_libvirt_dom_state *state)
{
	int st = 0, reason = 0;
	if (virDomainGetState(dom, &st, &reason, 0) < 0) {
		char what[ERR_LEN];
		snprintf(what, sizeof(what), "state of domain '%s'", name);
		return take_call_error(lv->conn, &lv->opts, lv->err, sizeof(lv->err), what);
	}
	*state = map_state(st);
	return 0;
}

int cp_libvirt_domain_state(struct cp_libvirt *lv, const char *name,
                            enum cp_libvirt_dom_state *state)
{
	int rc = 0;
	lv->err[0] = '\0';
	virDomainPtr dom = lookup(lv, name, &rc);
	if (dom == NULL)
		return rc;
	rc = dom_state(lv, dom, name, state);
	virDomainFree(dom);
	return rc;
}

int cp_libvirt_domain_tcg_loss(struct cp_libvirt *lv, const char *name, char *why, size_t whylen)
{
	int rc = 0;
	lv->err[0] = '\0';
	if (whylen > 0)
		why[0] = '\0';
	virDomainPtr dom = lookup(lv, name, &rc);
	if (dom == NULL)
		return rc;
	unsigned long version = 0;
	char *xml = virDomainGetXMLDesc(dom, 0);
	if (xml == NULL) {
		char what[ERR_LEN];
		snprintf(what, sizeof(what), "XML of domain '%s'", name);
		rc = take_call_error(lv->conn, &lv->opts, lv->err, sizeof(lv->err), what);
	} else if (virConnectGetVersion(lv->conn, &version) < 0) {
		rc = take_call_error(lv->conn, &lv->opts, lv->err, sizeof(lv->err),
		                     "hypervisor version");
	} else {
		uint64_t ram = 0;
		rc = cp_libvirt_tcg_loss_xml(xml, strlen(xml), version, &ram, why, whylen);
	}
	free(xml);
	virDomainFree(dom);
	return rc;
}

static void mig_free(struct cp_libvirt_migration *m)
{
	if (m->dom != NULL)
		virDomainFree(m->dom);
	if (m->conn != NULL)
		virConnectClose(m->conn);
	free(m->src_uri);
	free(m->domain);
	free(m->dest_uri);
	free(m->migrate_uri);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	free(m);
}

/* After success: how the domain is on the destination, and the destination's
 * record of the incoming job (total time, downtime). Best effort. */
static void ask_destination(struct cp_libvirt_migration *m, struct cp_libvirt_progress *p)
{
	char err[ERR_LEN];
	int rc;
	virConnectPtr c = conn_open(m->dest_uri, &m->opts, err, sizeof(err), &rc);
	if (c == NULL) {
		NC_LOG(WARN, "%s: migrated, but cannot ask the destination: %s", m->domain, err);
		return;
	}
	virDomainPtr d = virDomainLookupByName(c, m->domain);
	int st, reason;
	if (d != NULL && virDomainGetState(d, &st, &reason, 0) == 0)
		p->dest_state = map_state(st);
	virTypedParameterPtr par = NULL;
	int n = 0, type;
	if (d != NULL &&
	    virDomainGetJobStats(d, &type, &par, &n, VIR_DOMAIN_JOB_STATS_COMPLETED) == 0) {
		unsigned long long v;
		if (virTypedParamsGetULLong(par, n, VIR_DOMAIN_JOB_TIME_ELAPSED, &v) == 1)
			p->total_ms = v;
		if (virTypedParamsGetULLong(par, n, VIR_DOMAIN_JOB_DOWNTIME, &v) == 1)
			p->downtime_ms = v;
		virTypedParamsFree(par, n);
	}
	virResetLastError();
	if (d != NULL)
		virDomainFree(d);
	virConnectClose(c);
}

/* An abort asked for while the thread was still connecting found no job to
 * abort: the migration must not start after it. */
static bool abort_before_start(struct cp_libvirt_migration *m)
{
	pthread_mutex_lock(&m->lock);
	bool a = m->abort_asked;
	pthread_mutex_unlock(&m->lock);
	return a;
}

static void *mig_thread(void *arg)
{
	struct cp_libvirt_migration *m = arg;
	virTypedParameterPtr par = NULL;
	int n = 0, max = 0, rc = 0;
	char err[ERR_LEN] = "", what[ERR_LEN];
	virConnectPtr c = conn_open(m->src_uri, &m->opts, what, sizeof(what), &rc);
	virDomainPtr d = c != NULL ? virDomainLookupByUUID(c, m->uuid) : NULL;

	if (c == NULL) {
		snprintf(err, sizeof(err), "migration of '%s': %.400s", m->domain, what);
	} else if (d == NULL) {
		snprintf(what, sizeof(what), "migration of '%s': cannot reach it on %s", m->domain,
		         m->src_uri);
		rc = take_call_error(c, &m->opts, err, sizeof(err), what);
	} else if ((m->migrate_uri != NULL &&
	            virTypedParamsAddString(&par, &n, &max, VIR_MIGRATE_PARAM_URI, m->migrate_uri) <
	                    0) ||
	           (m->parallel > 0 &&
	            virTypedParamsAddInt(&par, &n, &max, VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS,
	                                 (int)m->parallel) < 0) ||
	           (m->bandwidth_mibps > 0 &&
	            virTypedParamsAddULLong(&par, &n, &max, VIR_MIGRATE_PARAM_BANDWIDTH,
	                                    m->bandwidth_mibps) < 0)) {
		rc = take_error(err, sizeof(err), "migration parameters");
	} else if (abort_before_start(m)) {
		snprintf(err, sizeof(err), "migration of '%s': cancelled before it started",
		         m->domain);
		rc = -ECANCELED;
	} else if (virDomainMigrateToURI3(d, m->dest_uri, par, (unsigned int)n, m->flags) < 0) {
		snprintf(what, sizeof(what), "migration of '%s' to %s failed", m->domain,
		         m->dest_uri);
		rc = take_call_error(c, &m->opts, err, sizeof(err), what);
	}
	virTypedParamsFree(par, n);
	if (d != NULL)
		virDomainFree(d);
	if (c != NULL)
		virConnectClose(c);

	struct cp_libvirt_progress dest = {0};
	if (rc == 0)
		ask_destination(m, &dest);

	pthread_mutex_lock(&m->lock);
	m->last.elapsed_ms = (now_ns() - m->t0_ns) / 1000000;
	if (rc == 0) {
		m->last.state = CP_LIBVIRT_MIG_DONE;
		m->last.data_remaining = 0;
		m->last.total_ms = dest.total_ms;
		m->last.downtime_ms = dest.downtime_ms;
		m->last.dest_state = dest.dest_state;
		NC_LOG(INFO, "%s: migrated to %s in %llu ms (downtime %llu ms)", m->domain,
		       m->dest_uri, (unsigned long long)m->last.elapsed_ms,
		       (unsigned long long)dest.downtime_ms);
	} else {
		m->last.state = CP_LIBVIRT_MIG_FAILED;
		/* After an abort, QEMU's own failure (its socket shut down under
		 * it) can reach libvirt before the cancellation does: it is the
		 * abort all the same. */
		if (m->abort_asked && rc != -ECANCELED) {
			rc = -ECANCELED;
			snprintf(m->err, sizeof(m->err), "aborted on request (%s)", err);
		} else {
			snprintf(m->err, sizeof(m->err), "%s", err);
		}
		NC_LOG(WARN, "%s", m->err);
	}
	m->result = rc;
	m->finished = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

static int check_opts(struct cp_libvirt *lv, const struct cp_libvirt_migrate_opts *o)
{
	const char *why = NULL;
	if (o == NULL)
		why = "no migration options";
	else if (o->domain == NULL || o->domain[0] == '\0')
		why = "no domain to migrate";
	else if (o->dest_uri == NULL || o->dest_uri[0] == '\0')
		why = "no destination URI";
	else if (o->migrate_uri != NULL && o->migrate_uri[0] == '\0')
		why = "empty migration URI (leave it NULL to let libvirt choose)";
	if (why != NULL) {
		snprintf(lv->err, sizeof(lv->err), "%s", why);
		return -EINVAL;
	}
	if (o->parallel > CP_LIBVIRT_MAX_PARALLEL) {
		snprintf(lv->err, sizeof(lv->err), "too many parallel connections: %u (at most %d)",
		         o->parallel, CP_LIBVIRT_MAX_PARALLEL);
		return -EINVAL;
	}
	return 0;
}

/* -EBUSY if @p dom has a job (e.g. a migration) running. */
static int check_idle(struct cp_libvirt *lv, virDomainPtr dom, const char *name)
{
	virTypedParameterPtr par = NULL;
	int n = 0, type = VIR_DOMAIN_JOB_NONE;
	if (virDomainGetJobStats(dom, &type, &par, &n, 0) < 0) {
		/* A driver that cannot tell runs no jobs we could collide with. */
		char what[ERR_LEN];
		snprintf(what, sizeof(what), "job of domain '%s'", name);
		int rc = take_call_error(lv->conn, &lv->opts, lv->err, sizeof(lv->err), what);
		if (rc == -ENOTSUP) {
			lv->err[0] = '\0';
			return 0;
		}
		return rc;
	}
	virTypedParamsFree(par, n);
	if (type != VIR_DOMAIN_JOB_NONE) {
		snprintf(lv->err, sizeof(lv->err),
		         "domain '%s' has a job running already (a migration?)", name);
		return -EBUSY;
	}
	return 0;
}

int cp_libvirt_domain_idle(struct cp_libvirt *lv, const char *name)
{
	int rc = 0;
	lv->err[0] = '\0';
	virDomainPtr dom = lookup(lv, name, &rc);
	if (dom == NULL)
		return rc;
	rc = check_idle(lv, dom, name);
	virDomainFree(dom);
	return rc;
}

static char *dup_opt(const char *s, bool *oom)
{
	if (s == NULL)
		return NULL;
	char *d = strdup(s);
	if (d == NULL)
		*oom = true;
	return d;
}

int cp_libvirt_migrate_start(struct cp_libvirt *lv, const struct cp_libvirt_migrate_opts *o,
                             struct cp_libvirt_migration **out)
{
	lv->err[0] = '\0';
	*out = NULL;
	int rc = check_opts(lv, o);
	if (rc != 0)
		return rc;
	virDomainPtr dom = lookup(lv, o->domain, &rc);
	if (dom == NULL)
		return rc;
	enum cp_libvirt_dom_state st = CP_LIBVIRT_DOM_OTHER;
	rc = dom_state(lv, dom, o->domain, &st);
	if (rc == 0 && st != CP_LIBVIRT_DOM_RUNNING && st != CP_LIBVIRT_DOM_PAUSED) {
		snprintf(lv->err, sizeof(lv->err), "domain '%s' is not running (%s)", o->domain,
		         cp_libvirt_dom_state_name(st));
		rc = -EINVAL;
	}
	if (rc == 0)
		rc = check_idle(lv, dom, o->domain);
	if (rc != 0) {
		virDomainFree(dom);
		return rc;
	}

	struct cp_libvirt_migration *m = calloc(1, sizeof(*m));
	if (m == NULL) {
		virDomainFree(dom);
		snprintf(lv->err, sizeof(lv->err), "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&m->lock, NULL);
	cond_init_mono(&m->cond);
	m->dom = dom;
	m->conn = lv->conn;
	virConnectRef(m->conn);
	if (virDomainGetUUID(dom, m->uuid) < 0) {
		rc = take_call_error(lv->conn, &lv->opts, lv->err, sizeof(lv->err), "domain UUID");
		mig_free(m);
		return rc;
	}
	bool oom = false;
	m->opts = lv->opts;
	m->src_uri = dup_opt(lv->uri, &oom);
	m->domain = dup_opt(o->domain, &oom);
	m->dest_uri = dup_opt(o->dest_uri, &oom);
	m->migrate_uri = dup_opt(o->migrate_uri, &oom);
	if (oom) {
		mig_free(m);
		snprintf(lv->err, sizeof(lv->err), "out of memory");
		return -ENOMEM;
	}
	m->parallel = o->parallel;
	m->bandwidth_mibps = o->bandwidth_mibps;
	m->flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER;
	if (o->parallel > 0)
		m->flags |= VIR_MIGRATE_PARALLEL;
	if (o->persist_dest)
		m->flags |= VIR_MIGRATE_PERSIST_DEST;
	if (o->undefine_source)
		m->flags |= VIR_MIGRATE_UNDEFINE_SOURCE;
	m->t0_ns = now_ns();
	m->last.state = CP_LIBVIRT_MIG_RUNNING;
	rc = -pthread_create(&m->thread, NULL, mig_thread, m);
	if (rc != 0) {
		snprintf(lv->err, sizeof(lv->err), "cannot start the migration thread: %s",
		         strerror(-rc));
		mig_free(m);
		return rc;
	}
	NC_LOG(INFO, "%s: migrating to %s via %s (%u parallel connections)", m->domain, m->dest_uri,
	       m->migrate_uri ? m->migrate_uri : "libvirt's choice", m->parallel);
	*out = m;
	return 0;
}

int cp_libvirt_migration_progress(struct cp_libvirt_migration *m, struct cp_libvirt_progress *p)
{
	pthread_mutex_lock(&m->lock);
	bool finished = m->finished;
	pthread_mutex_unlock(&m->lock);

	struct cp_libvirt_progress s = {0};
	bool have = false;
	if (!finished) {
		virTypedParameterPtr par = NULL;
		int n = 0, type = VIR_DOMAIN_JOB_NONE;
		if (virDomainGetJobStats(m->dom, &type, &par, &n, 0) == 0) {
			unsigned long long v;
			have = type != VIR_DOMAIN_JOB_NONE;
#define GET(key, field)                                                                            \
	if (virTypedParamsGetULLong(par, n, key, &v) == 1)                                         \
		s.field = v;
			GET(VIR_DOMAIN_JOB_DATA_TOTAL, data_total)
			GET(VIR_DOMAIN_JOB_DATA_PROCESSED, data_processed)
			GET(VIR_DOMAIN_JOB_DATA_REMAINING, data_remaining)
			GET(VIR_DOMAIN_JOB_MEMORY_BPS, mem_bps)
			GET(VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE, dirty_rate)
			GET(VIR_DOMAIN_JOB_MEMORY_ITERATION, iteration)
#undef GET
			virTypedParamsFree(par, n);
		}
		/* The job may just have ended: keep what we had. */
		virResetLastError();
	}

	pthread_mutex_lock(&m->lock);
	/* A job being set up or torn down reports no totals: keep the last. */
	if (have && s.data_total > 0 && !m->finished) {
		m->last.data_total = s.data_total;
		m->last.data_processed = s.data_processed;
		m->last.data_remaining = s.data_remaining;
		m->last.mem_bps = s.mem_bps;
		m->last.dirty_rate = s.dirty_rate;
		m->last.iteration = s.iteration;
	}
	if (!m->finished)
		m->last.elapsed_ms = (now_ns() - m->t0_ns) / 1000000;
	*p = m->last;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int cp_libvirt_migration_abort(struct cp_libvirt_migration *m)
{
	/* Marked before asking: the migration may end while libvirt answers. */
	pthread_mutex_lock(&m->lock);
	bool finished = m->finished;
	m->abort_asked = !finished;
	pthread_mutex_unlock(&m->lock);
	if (finished)
		return -EALREADY;
	if (virDomainAbortJob(m->dom) == 0) {
		NC_LOG(NOTICE, "%s: abort asked", m->domain);
		return 0;
	}
	char err[ERR_LEN];
	int rc = take_call_error(m->conn, &m->opts, err, sizeof(err), "abort");
	pthread_mutex_lock(&m->lock);
	if (m->finished) {
		rc = -EALREADY; /* it ended while we asked */
	} else {
		/* Kept asked: no job yet means the thread is still connecting,
		 * and it checks before it starts one (abort_before_start). */
		snprintf(m->err, sizeof(m->err), "%s", err);
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int cp_libvirt_migration_wait(struct cp_libvirt_migration *m, int timeout_ms)
{
	struct timespec dl = deadline_in(timeout_ms > 0 ? timeout_ms : 0);
	int rc = 0;
	pthread_mutex_lock(&m->lock);
	while (!m->finished && rc != ETIMEDOUT) {
		if (timeout_ms < 0)
			pthread_cond_wait(&m->cond, &m->lock);
		else
			rc = pthread_cond_timedwait(&m->cond, &m->lock, &dl);
	}
	int result = m->finished ? m->result : -ETIMEDOUT;
	pthread_mutex_unlock(&m->lock);
	return result;
}

void cp_libvirt_migration_error(struct cp_libvirt_migration *m, char *buf, size_t len)
{
	if (len == 0)
		return;
	pthread_mutex_lock(&m->lock);
	snprintf(buf, len, "%s", m->err);
	pthread_mutex_unlock(&m->lock);
}

void cp_libvirt_migration_destroy(struct cp_libvirt_migration *m)
{
	if (m == NULL)
		return;
	if (cp_libvirt_migration_wait(m, 0) == -ETIMEDOUT)
		(void)cp_libvirt_migration_abort(m);
	pthread_join(m->thread, NULL);
	mig_free(m);
}
