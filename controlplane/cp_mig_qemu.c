/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cp_mig_qemu: the migration back end for a QEMU driven through its QMP
 * socket (see cp_migrate.h): capabilities and parameters, migrate,
 * query-migrate, migrate_cancel, query-status.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cp_migrate.h"
#include "cp_qmp.h"
#include "cp_tcg.h"
#include "nc_config.h"

#define QMP_TIMEOUT_MS 5000

struct qemu {
	struct cp_qmp *q;
};

/* Whether QEMU would lose the pages its guest dirties while migrating
 * (cp_tcg.h): 1 (why says so), 0, or a negative errno (why says why not). */
static int tcg_risk(struct qemu *h, int timeout_ms, char *why, size_t whylen)
{
	json_t *kvm = NULL, *ver = NULL, *mem = NULL;
	int rc = cp_qmp_cmd(h->q, "query-kvm", NULL, &kvm, timeout_ms, why, whylen);
	if (rc == 0)
		rc = cp_qmp_cmd(h->q, "query-version", NULL, &ver, timeout_ms, why, whylen);
	if (rc == 0)
		rc = cp_qmp_cmd(h->q, "query-memory-size-summary", NULL, &mem, timeout_ms, why,
		                whylen);
	if (rc == 0) {
		const json_t *q = json_object_get(ver, "qemu");
		const json_t *en = json_object_get(kvm, "enabled");
		json_int_t major = json_integer_value(json_object_get(q, "major"));
		json_int_t minor = json_integer_value(json_object_get(q, "minor"));
		json_int_t micro = json_integer_value(json_object_get(q, "micro"));
		json_int_t ram = json_integer_value(json_object_get(mem, "base-memory"));
		if (!json_is_boolean(en) || major <= 0 || minor < 0 || minor > 999 || micro < 0 ||
		    micro > 999 || major > 999 || ram <= 0) {
			snprintf(why, whylen,
			         "QEMU's query-kvm, query-version or "
			         "query-memory-size-summary answer is not as expected");
			rc = -EPROTO;
		} else {
			unsigned long v = (unsigned long)(major * 1000000 + minor * 1000 + micro);
			rc = cp_tcg_loses_pages(!json_is_true(en), v, (uint64_t)ram, "", why,
			                        whylen);
		}
	}
	json_decref(kvm);
	json_decref(ver);
	json_decref(mem);
	return rc;
}

/* controlplane.tcg_guard (cp_tcg.h). */
static int tcg_guard(struct qemu *h, const char *vm, const struct nc_config *cfg, int timeout_ms,
                     char *err, size_t errlen)
{
	if (!cp_tcg_guard_on(cfg))
		return 0;
	char why[512], what[300];
	int risk = tcg_risk(h, timeout_ms, why, sizeof(why));
	snprintf(what, sizeof(what), "the QEMU at %s", vm);
	return cp_tcg_guard(cfg, what, risk, why, err, errlen);
}

static void *q_open(const char *vm, const struct nc_config *cfg, int timeout_ms, char *err,
                    size_t errlen)
{
	struct qemu *h = calloc(1, sizeof(*h));
	if (h == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->q = cp_qmp_connect(vm, timeout_ms, err, errlen);
	if (h->q == NULL) {
		int e = errno;
		free(h);
		errno = e;
		return NULL;
	}
	json_t *r = NULL;
	int rc = cp_qmp_cmd(h->q, "query-migrate", NULL, &r, timeout_ms, err, errlen);
	if (rc == 0) {
		const char *st = json_string_value(json_object_get(r, "status"));
		/* every status of a migration under way (QEMU 7.2's MigrationStatus) */
		static const char *const busy[] = {"setup",
		                                   "active",
		                                   "device",
		                                   "pre-switchover",
		                                   "cancelling",
		                                   "wait-unplug",
		                                   "postcopy-active",
		                                   "postcopy-paused",
		                                   "postcopy-recover",
		                                   "colo",
		                                   NULL};
		bool migrating = false;
		for (const char *const *b = busy; st != NULL && *b != NULL; b++)
			migrating |= strcmp(st, *b) == 0;
		if (migrating) {
			snprintf(err, errlen, "QEMU at %s is already migrating (status %s)", vm,
			         st);
			rc = -EBUSY;
		}
	}
	json_decref(r);
	if (rc == 0)
		rc = tcg_guard(h, vm, cfg, timeout_ms, err, errlen);
	if (rc != 0) {
		cp_qmp_close(h->q);
		free(h);
		errno = -rc;
		return NULL;
	}
	return h;
}

static int q_start(void *hv, const char *uri, unsigned channels, char *err, size_t errlen)
{
	struct qemu *h = hv;
	/* pause-before-switchover left on by an earlier user would park the
	 * migration at pre-switchover, the source paused, for good. */
	json_t *caps = json_pack("{s:[{s:s, s:b}, {s:s, s:b}]}", "capabilities", "capability",
	                         "multifd", "state", channels > 0, "capability",
	                         "pause-before-switchover", "state", 0);
	int rc = cp_qmp_cmd(h->q, "migrate-set-capabilities", caps, NULL, QMP_TIMEOUT_MS, err,
	                    errlen);
	json_decref(caps);
	if (rc != 0)
		return rc;
	/* The appliance paces the migration; QEMU's own cap (128 MiB/s by default)
	 * would only get in its way. */
	json_t *par = json_pack("{s:I}", "max-bandwidth", (json_int_t)(100ll << 30));
	if (channels > 0)
		json_object_set_new(par, "multifd-channels", json_integer(channels));
	rc = cp_qmp_cmd(h->q, "migrate-set-parameters", par, NULL, QMP_TIMEOUT_MS, err, errlen);
	json_decref(par);
	if (rc != 0)
		return rc;
	json_t *args = json_pack("{s:s}", "uri", uri);
	rc = cp_qmp_cmd(h->q, "migrate", args, NULL, QMP_TIMEOUT_MS, err, errlen);
	json_decref(args);
	return rc;
}

static int64_t opt_int(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

static int q_poll(void *hv, struct cp_mig_progress *p, char *err, size_t errlen)
{
	struct qemu *h = hv;
	json_t *r = NULL;
	int rc = cp_qmp_cmd(h->q, "query-migrate", NULL, &r, QMP_TIMEOUT_MS, err, errlen);
	if (rc != 0)
		return rc;
	const char *st = json_string_value(json_object_get(r, "status"));
	memset(p, 0, sizeof(*p));
	snprintf(p->detail, sizeof(p->detail), "%s", st ? st : "none");
	if (st == NULL || strcmp(st, "none") == 0)
		p->status = CP_MIG_ST_NONE;
	else if (strcmp(st, "completed") == 0 && opt_int(r, "total-time") > 0)
		p->status = CP_MIG_ST_COMPLETED;
	else if (strcmp(st, "completed") == 0 && json_object_get(r, "total-time") != NULL)
		/* QEMU 7.2 sets "completed" a moment before it works out the total
		 * time and downtime (migration_iteration_finish): both read 0 until
		 * then, and a bench would take 0 ms for the truth. */
		p->status = CP_MIG_ST_ACTIVE;
	else if (strcmp(st, "completed") == 0)
		/* a QEMU that was a migration's destination answers that incoming
		 * migration's status (no total-time) until its own one is set up */
		p->status = CP_MIG_ST_NONE;
	else if (strcmp(st, "failed") == 0)
		p->status = CP_MIG_ST_FAILED;
	else if (strcmp(st, "cancelled") == 0)
		p->status = CP_MIG_ST_CANCELLED;
	else
		p->status = CP_MIG_ST_ACTIVE;
	json_t *ram = json_object_get(r, "ram");
	p->transferred = (uint64_t)json_integer_value(json_object_get(ram, "transferred"));
	p->remaining = (uint64_t)json_integer_value(json_object_get(ram, "remaining"));
	p->total = (uint64_t)json_integer_value(json_object_get(ram, "total"));
	p->passes = (uint64_t)json_integer_value(json_object_get(ram, "dirty-sync-count"));
	p->mbps = json_number_value(json_object_get(ram, "mbps"));
	p->total_ms = opt_int(r, "total-time");
	p->downtime_ms = opt_int(r, "downtime");
	const char *e = json_string_value(json_object_get(r, "error-desc"));
	snprintf(p->error, sizeof(p->error), "%s", e ? e : "");
	json_decref(r);
	return 0;
}

static int q_cancel(void *hv, char *err, size_t errlen)
{
	struct qemu *h = hv;
	return cp_qmp_cmd(h->q, "migrate_cancel", NULL, NULL, QMP_TIMEOUT_MS, err, errlen);
}

static int q_vm_state(void *hv, char *buf, size_t len, char *err, size_t errlen)
{
	struct qemu *h = hv;
	json_t *r = NULL;
	int rc = cp_qmp_cmd(h->q, "query-status", NULL, &r, QMP_TIMEOUT_MS, err, errlen);
	if (rc != 0)
		return rc;
	const char *st = json_string_value(json_object_get(r, "status"));
	snprintf(buf, len, "%s", st ? st : "unknown");
	json_decref(r);
	return 0;
}

static void q_close(void *hv)
{
	struct qemu *h = hv;
	if (h == NULL)
		return;
	cp_qmp_close(h->q);
	free(h);
}

const struct cp_mig_backend cp_mig_qemu = {
        .name = "qemu",
        .who = "QEMU",
        .open = q_open,
        .start = q_start,
        .poll = q_poll,
        .cancel = q_cancel,
        .vm_state = q_vm_state,
        .close = q_close,
};
