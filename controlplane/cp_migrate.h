/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cp_migrate: how a migration is started, watched and cancelled on the
 * source host, behind a small interface so that hypervisor back ends (QEMU's
 * QMP, libvirt) slot in. cp_migrate.c drives the rest (peer, sessions,
 * progress, digests) the same way for every back end.
 *
 * A back end's calls run on the migration's own thread, one at a time.
 * Return convention: open returns a handle or NULL with errno and a message;
 * the others 0 or a negative errno with a message in err.
 */
#ifndef CP_MIGRATE_H
#define CP_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct nc_config;

enum cp_mig_status {
	CP_MIG_ST_NONE = 0,  /**< not started */
	CP_MIG_ST_ACTIVE,    /**< setting up or copying */
	CP_MIG_ST_COMPLETED, /**< the destination has the VM; the source is paused */
	CP_MIG_ST_FAILED,    /**< error holds why; the source runs on */
	CP_MIG_ST_CANCELLED,
};

/** What the back end says about its migration. */
struct cp_mig_progress {
	enum cp_mig_status status;
	char detail[32];      /**< the hypervisor's own word ("active", "device", ...) */
	uint64_t transferred; /**< RAM bytes sent so far */
	uint64_t remaining;   /**< RAM bytes left in this pass */
	uint64_t total;       /**< guest RAM bytes */
	double mbps;          /**< the hypervisor's own rate, Mbit/s */
	int64_t total_ms;     /**< at the end: total time; -1 unknown */
	int64_t downtime_ms;  /**< at the end: downtime; -1 unknown */
	uint64_t passes;      /**< dirty-sync passes */
	char error[256];      /**< CP_MIG_ST_FAILED: the hypervisor's reason */
};

struct cp_mig_backend {
	const char *name;
	const char *who; /**< the hypervisor, in messages: "QEMU", "libvirt" */
	/**
	 * The hypervisor makes the destination listen at the very path the
	 * source connects to (libvirt's unix:// migration URIs): the sessions
	 * listen (here) and connect (there) at one path, each in its own host's
	 * mount namespace, and the destination socket cannot be checked before
	 * the migration starts (it does not exist yet).
	 */
	bool same_path;
	/** Attach to @p vm (what the operator named; @p cfg this control plane's) within @p
	 * timeout_ms. */
	void *(*open)(const char *vm, const struct nc_config *cfg, int timeout_ms, char *err,
	              size_t errlen);
	/** Optional: what the destination's control plane says of itself (peer.info, borrowed),
	 * before start. */
	int (*peer_info)(void *h, const json_t *info, char *err, size_t errlen);
	/** Migrate to @p uri (unix:PATH); @p channels > 0: multifd with that many channels. */
	int (*start)(void *h, const char *uri, unsigned channels, char *err, size_t errlen);
	int (*poll)(void *h, struct cp_mig_progress *p, char *err, size_t errlen);
	/** Stop the migration; the source VM keeps running. */
	int (*cancel)(void *h, char *err, size_t errlen);
	/** The VM's run state ("running", "paused", "postmigrate", ...) into @p buf. */
	int (*vm_state)(void *h, char *buf, size_t len, char *err, size_t errlen);
	void (*close)(void *h);
};

/** QEMU through its QMP socket: vm is the socket's path. */
extern const struct cp_mig_backend cp_mig_qemu;

/** The prefix of a VM that is a libvirt domain: "libvirt:NAME". */
#define CP_MIG_LIBVIRT_PREFIX "libvirt:"

/**
 * A libvirt domain (vm "libvirt:NAME") of this host's libvirtd
 * (controlplane.libvirt_uri), migrated peer-to-peer by virDomainMigrateToURI3
 * to the destination's libvirtd (the libvirt_dest_uri its peer.info tells)
 * with a unix:// migration URI; channels > 0: --parallel with that many
 * connections.
 */
extern const struct cp_mig_backend cp_mig_libvirt;

#endif /* CP_MIGRATE_H */
