/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cp_mig_libvirt: the migration back end for a libvirt domain (see
 * cp_migrate.h). The VM "libvirt:NAME" is domain NAME of this host's
 * libvirtd (controlplane.libvirt_uri); the destination's libvirtd is the URI
 * the destination's control plane tells in peer.info (its
 * controlplane.libvirt_dest_uri, else its libvirt_uri). The migration is
 * cp_libvirt's virDomainMigrateToURI3: live, peer to peer, persistent on the
 * destination and undefined here, QEMU's stream to unix://PATH where PATH is
 * the one socket path cp_migrate chose (same_path: libvirt makes the
 * destination QEMU listen at the path the source connects to, so the
 * appliances listen at PATH here and connect to PATH there).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cp_libvirt.h"
#include "cp_migrate.h"
#include "cp_tcg.h"
#include "nc_config.h"

/* How long vm_state waits for an aborted migration to let go of the domain. */
#define SETTLE_MS 30000
/* How long a connect to libvirtd may take with keepalive off. */
#define LIBVIRT_OPEN_TIMEOUT_MS 30000

struct lvm {
	struct cp_libvirt *lv;
	struct cp_libvirt_migration *mig;
	char domain[256];
	char *dest_uri; /* the destination's libvirtd, from peer.info */
	char peer[64];  /* its host name, for messages */
};

/* controlplane.tcg_guard: a domain QEMU would migrate losing pages. */
static int tcg_guard(struct lvm *h, const struct nc_config *cfg, char *err, size_t errlen)
{
	if (!cp_tcg_guard_on(cfg))
		return 0;
	char why[512], what[300];
	int risk = cp_libvirt_domain_tcg_loss(h->lv, h->domain, why, sizeof(why));
	if (risk < 0 && risk != -EINVAL)
		snprintf(why, sizeof(why), "%s", cp_libvirt_error(h->lv));
	snprintf(what, sizeof(what), "domain '%s'", h->domain);
	return cp_tcg_guard(cfg, what, risk, why, err, errlen);
}

static void *l_open(const char *vm, const struct nc_config *cfg, int timeout_ms, char *err,
                    size_t errlen)
{
	(void)timeout_ms; /* a QMP greeting's; libvirtd gets its keepalive's time */
	size_t pl = strlen(CP_MIG_LIBVIRT_PREFIX);
	const char *name = strncmp(vm, CP_MIG_LIBVIRT_PREFIX, pl) == 0 ? vm + pl : vm;
	if (name[0] == '\0' || strlen(name) >= sizeof(((struct lvm *)0)->domain)) {
		snprintf(err, errlen, "a libvirt VM is libvirt:NAME, NAME 1-255 characters");
		errno = EINVAL;
		return NULL;
	}
	const char *uri = nc_config_get_str(cfg, "controlplane.libvirt_uri");
	if (uri == NULL || uri[0] == '\0') {
		snprintf(err, errlen,
		         "libvirt is not configured on this host "
		         "(controlplane.libvirt_uri is empty)");
		errno = EINVAL;
		return NULL;
	}
	struct lvm *h = calloc(1, sizeof(*h));
	if (h == NULL) {
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	snprintf(h->domain, sizeof(h->domain), "%s", name);
	/* A libvirtd that answers nothing for as long as keepalive waits is
	 * gone, for a connect too. */
	struct cp_libvirt_conn_opts co = {
	        .keepalive_s = (int)nc_config_get_int(cfg, "controlplane.libvirt_keepalive_s"),
	        .keepalive_count =
	                (unsigned)nc_config_get_int(cfg, "controlplane.libvirt_keepalive_count"),
	};
	co.open_timeout_ms = co.keepalive_s > 0
	                             ? co.keepalive_s * (int)(co.keepalive_count + 1) * 1000
	                             : LIBVIRT_OPEN_TIMEOUT_MS;
	char why[512];
	h->lv = cp_libvirt_create(uri, &co, why, sizeof(why));
	if (h->lv == NULL) {
		int e = errno ? errno : EIO;
		snprintf(err, errlen, "%s", why);
		free(h);
		errno = e;
		return NULL;
	}
	enum cp_libvirt_dom_state st = CP_LIBVIRT_DOM_OTHER;
	int rc = cp_libvirt_domain_state(h->lv, name, &st);
	if (rc == -ENOENT) {
		snprintf(err, errlen, "no domain '%s' on %s", name, cp_libvirt_uri(h->lv));
	} else if (rc != 0) {
		snprintf(err, errlen, "%s", cp_libvirt_error(h->lv));
	} else if (st != CP_LIBVIRT_DOM_RUNNING && st != CP_LIBVIRT_DOM_PAUSED) {
		snprintf(err, errlen, "domain '%s' is not running (%s)", name,
		         cp_libvirt_dom_state_name(st));
		rc = -EINVAL;
	} else {
		rc = cp_libvirt_domain_idle(h->lv, name);
		if (rc == -EBUSY)
			snprintf(err, errlen,
			         "domain '%s' is already migrating (libvirt has a job "
			         "running on it)",
			         name);
		else if (rc != 0)
			snprintf(err, errlen, "%s", cp_libvirt_error(h->lv));
	}
	if (rc == 0)
		rc = tcg_guard(h, cfg, err, errlen);
	if (rc != 0) {
		cp_libvirt_destroy(h->lv);
		free(h);
		errno = -rc;
		return NULL;
	}
	return h;
}

static int l_peer_info(void *hv, const json_t *info, char *err, size_t errlen)
{
	struct lvm *h = hv;
	const char *name = json_string_value(json_object_get(info, "name"));
	const char *uri = json_string_value(json_object_get(info, "libvirt_uri"));
	snprintf(h->peer, sizeof(h->peer), "%s", name ? name : "the destination");
	if (uri == NULL || uri[0] == '\0') {
		snprintf(err, errlen,
		         "%s takes no libvirt migrations (its controlplane.libvirt_uri is empty)",
		         h->peer);
		return -EINVAL;
	}
	if (strcmp(uri, cp_libvirt_uri(h->lv)) == 0) {
		snprintf(err, errlen,
		         "%s names this host's own libvirtd (%s) as its own: set its "
		         "controlplane.libvirt_dest_uri to a URI this host's libvirtd can reach",
		         h->peer, uri);
		return -EINVAL;
	}
	free(h->dest_uri);
	h->dest_uri = strdup(uri);
	if (h->dest_uri == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int l_start(void *hv, const char *uri, unsigned channels, char *err, size_t errlen)
{
	struct lvm *h = hv;
	if (h->dest_uri == NULL) {
		snprintf(err, errlen, "the destination's libvirt URI is not known");
		return -EINVAL;
	}
	if (h->mig != NULL) {
		snprintf(err, errlen, "domain '%s': a migration was started already", h->domain);
		return -EBUSY;
	}
	if (strncmp(uri, "unix:/", 6) != 0) {
		snprintf(err, errlen, "libvirt migrates through unix:PATH here, not %s", uri);
		return -EINVAL;
	}
	/* libvirt wants a URI proper: unix:///PATH */
	char mu[300];
	if ((size_t)snprintf(mu, sizeof(mu), "unix://%s", uri + 5) >= sizeof(mu)) {
		snprintf(err, errlen, "migration socket path too long: %s", uri + 5);
		return -ENAMETOOLONG;
	}
	const struct cp_libvirt_migrate_opts o = {
	        .domain = h->domain,
	        .dest_uri = h->dest_uri,
	        .migrate_uri = mu,
	        .parallel = channels,
	        .persist_dest = true,
	        .undefine_source = true,
	};
	int rc = cp_libvirt_migrate_start(h->lv, &o, &h->mig);
	if (rc == -EBUSY)
		snprintf(err, errlen,
		         "domain '%s' is already migrating (libvirt has a job running on it)",
		         h->domain);
	else if (rc != 0)
		snprintf(err, errlen, "%s", cp_libvirt_error(h->lv));
	return rc;
}

static int l_poll(void *hv, struct cp_mig_progress *p, char *err, size_t errlen)
{
	(void)err, (void)errlen;
	struct lvm *h = hv;
	memset(p, 0, sizeof(*p));
	p->total_ms = -1;
	p->downtime_ms = -1;
	if (h->mig == NULL) {
		p->status = CP_MIG_ST_NONE;
		snprintf(p->detail, sizeof(p->detail), "none");
		return 0;
	}
	struct cp_libvirt_progress lp;
	int rc = cp_libvirt_migration_progress(h->mig, &lp);
	if (rc != 0)
		return rc;
	p->transferred = lp.data_processed;
	p->remaining = lp.data_remaining;
	p->total = lp.data_total;
	p->mbps = (double)lp.mem_bps * 8 / 1e6;
	p->passes = lp.iteration;
	switch (lp.state) {
	case CP_LIBVIRT_MIG_RUNNING:
		p->status = CP_MIG_ST_ACTIVE;
		snprintf(p->detail, sizeof(p->detail), "active");
		break;
	case CP_LIBVIRT_MIG_DONE:
		p->status = CP_MIG_ST_COMPLETED;
		snprintf(p->detail, sizeof(p->detail), "completed");
		/* From the destination's record of the job; 0: it could not be asked. */
		p->total_ms = lp.total_ms > 0 ? (int64_t)lp.total_ms : (int64_t)lp.elapsed_ms;
		p->downtime_ms = lp.total_ms > 0 ? (int64_t)lp.downtime_ms : -1;
		break;
	default: {
		bool cancelled = cp_libvirt_migration_wait(h->mig, 0) == -ECANCELED;
		p->status = cancelled ? CP_MIG_ST_CANCELLED : CP_MIG_ST_FAILED;
		snprintf(p->detail, sizeof(p->detail), "%s", cancelled ? "cancelled" : "failed");
		cp_libvirt_migration_error(h->mig, p->error, sizeof(p->error));
		break;
	}
	}
	return 0;
}

static int l_cancel(void *hv, char *err, size_t errlen)
{
	struct lvm *h = hv;
	if (h->mig == NULL)
		return 0;
	int rc = cp_libvirt_migration_abort(h->mig);
	if (rc == -EALREADY)
		return 0;
	if (rc != 0)
		cp_libvirt_migration_error(h->mig, err, errlen);
	return rc;
}

static int l_vm_state(void *hv, char *buf, size_t len, char *err, size_t errlen)
{
	struct lvm *h = hv;
	/* An aborted migration holds the domain until libvirt has resumed it. */
	if (h->mig != NULL)
		(void)cp_libvirt_migration_wait(h->mig, SETTLE_MS);
	enum cp_libvirt_dom_state st;
	int rc = cp_libvirt_domain_state(h->lv, h->domain, &st);
	if (rc == -ENOENT) {
		snprintf(buf, len, "gone");
		return 0;
	}
	if (rc != 0) {
		snprintf(err, errlen, "%s", cp_libvirt_error(h->lv));
		return rc;
	}
	snprintf(buf, len, "%s", cp_libvirt_dom_state_name(st));
	return 0;
}

static void l_close(void *hv)
{
	struct lvm *h = hv;
	if (h == NULL)
		return;
	cp_libvirt_migration_destroy(h->mig);
	cp_libvirt_destroy(h->lv);
	free(h->dest_uri);
	free(h);
}

const struct cp_mig_backend cp_mig_libvirt = {
        .name = "libvirt",
        .who = "libvirt",
        .same_path = true,
        .open = l_open,
        .peer_info = l_peer_info,
        .start = l_start,
        .poll = l_poll,
        .cancel = l_cancel,
        .vm_state = l_vm_state,
        .close = l_close,
};
