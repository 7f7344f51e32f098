/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cp_libvirt: the control plane's libvirt backend. A handle is one connection
 * to one libvirtd (any libvirt URI: qemu+unix:///system?socket=..., or
 * test:///default in unit tests). A migration is a live peer-to-peer
 * virDomainMigrateToURI3 run in a thread of its own (the call blocks until
 * the migration ends); the caller polls its progress, may abort it, and
 * collects its result and libvirt's error text.
 *
 * Returns: constructors a pointer or NULL with errno; the others 0 or a
 * negative errno. libvirt errors map to errno values: -ENOENT (no such
 * domain), -ENOTSUP (the driver cannot do it), -EINVAL (invalid request or
 * state), -ECANCELED (aborted), -ETIMEDOUT, -ECONNRESET (the connection
 * to libvirtd is lost: it closed, or stopped answering keepalive probes), a
 * connect's system errno (e.g. -ENOENT, -ECONNREFUSED), otherwise -EIO; the
 * text says what libvirt said.
 */
#ifndef CP_LIBVIRT_H
#define CP_LIBVIRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cp_libvirt;
struct cp_libvirt_migration;

/** A domain's state, as far as migration cares. */
enum cp_libvirt_dom_state {
	CP_LIBVIRT_DOM_OTHER = 0, /* no state, blocked, crashed, pm-suspended */
	CP_LIBVIRT_DOM_RUNNING,
	CP_LIBVIRT_DOM_PAUSED,
	CP_LIBVIRT_DOM_SHUTOFF, /* defined, not running (or shutting down) */
};

/** "running", "paused", "shutoff" or "other". */
const char *cp_libvirt_dom_state_name(enum cp_libvirt_dom_state s);

/**
 * How a handle's connections (and those of its migrations) treat a libvirtd
 * that stops answering. libvirt's client waits for a reply for ever, so a
 * wedged daemon would hold every call, and the thread making it, for good.
 */
struct cp_libvirt_conn_opts {
	/* libvirt keepalive: a probe after keepalive_s s without a message from
	 * the daemon; after keepalive_count probes in a row go unanswered (about
	 * keepalive_s * (keepalive_count + 1) s) the connection is closed and
	 * every call on it, including one waiting, fails. 0: no keepalive. */
	int keepalive_s;
	unsigned keepalive_count;
	/* How long a connect may wait for the daemon's answer, ms; 0: no limit.
	 * A connect given up on is left to finish in the background and then
	 * closed. */
	int open_timeout_ms;
};

/** The defaults: keepalive every 5 s, 5 probes; a connect waits 30 s. */
#define CP_LIBVIRT_CONN_OPTS_DEFAULT                                                               \
	{                                                                                          \
		.keepalive_s = 5, .keepalive_count = 5, .open_timeout_ms = 30000                   \
	}

/**
 * Connect to the libvirt daemon (or driver) at @p uri, with @p o (NULL: the
 * defaults). On failure, NULL with errno set and libvirt's message in @p err
 * (when @p errlen > 0); ETIMEDOUT when the daemon did not answer in time.
 * Drivers without keepalive (test:///default) are used without it.
 */
struct cp_libvirt *cp_libvirt_create(const char *uri, const struct cp_libvirt_conn_opts *o,
                                     char *err, size_t errlen);

/** Close the connection. Migrations started from it keep their own reference. */
void cp_libvirt_destroy(struct cp_libvirt *lv);

/** The URI libvirt says this connection has (owned by @p lv). */
const char *cp_libvirt_uri(const struct cp_libvirt *lv);

/**
 * The text of the last failed call on @p lv ("" if none). Owned by @p lv,
 * valid until its next call. A handle's calls are for one thread at a time;
 * migrations run in threads of their own and keep their own error text.
 */
const char *cp_libvirt_error(const struct cp_libvirt *lv);

/** The state of domain @p name: 0, -ENOENT (no such domain), -EINVAL, -EIO. */
int cp_libvirt_domain_state(struct cp_libvirt *lv, const char *name,
                            enum cp_libvirt_dom_state *state);

/**
 * Whether domain @p name is free for a migration: 0 (no job), -EBUSY (a job,
 * e.g. a migration, runs on it), -ENOENT (no such domain), -EINVAL, -EIO;
 * the text in cp_libvirt_error. A driver that cannot tell (test:///default)
 * runs no jobs: 0.
 */
int cp_libvirt_domain_idle(struct cp_libvirt *lv, const char *name);

/**
 * QEMU before 9.0, running a guest under TCG, loses pages the guest dirties
 * during a live migration when the guest's RAM is a multiple of 256 KiB
 * (QEMU commit 03bfc2188f fixed it); libvirt rounds a domain's memory up to
 * whole MiB, so every such domain is at risk unless it gives QEMU a -m of
 * its own in <qemu:commandline>. KVM guests are not. Device RAM (video
 * memory) and memory devices are not looked at.
 *
 * Whether domain @p name on @p lv's host is at risk: 1 (it is; @p why says
 * why), 0 (it is not), -ENOENT (no such domain), -EINVAL (its XML cannot be
 * read; @p why), -EIO (libvirt failed; cp_libvirt_error).
 */
int cp_libvirt_domain_tcg_loss(struct cp_libvirt *lv, const char *name, char *why, size_t whylen);

/**
 * The same from a domain's XML (@p len bytes, as virDomainGetXMLDesc gives
 * it) and the QEMU version libvirt reports (virConnectGetVersion: major *
 * 1000000 + minor * 1000 + micro). *@p ram_bytes: the RAM QEMU gets (0 when
 * the XML cannot be read). Returns 1, 0 or -EINVAL as above.
 */
int cp_libvirt_tcg_loss_xml(const char *xml, size_t len, unsigned long qemu_version,
                            uint64_t *ram_bytes, char *why, size_t whylen);

/** What to migrate where. Strings are copied by cp_libvirt_migrate_start. */
struct cp_libvirt_migrate_opts {
	const char *domain;   /* the domain's name on the source (required) */
	const char *dest_uri; /* the destination libvirtd's URI (required) */
	/* VIR_MIGRATE_PARAM_URI, where QEMU sends the stream, e.g.
	 * "unix:///run/novacron-migrate/vm.sock"; NULL lets libvirt choose. */
	const char *migrate_uri;
	unsigned int parallel;    /* 0: one connection; N >= 1: VIR_MIGRATE_PARALLEL, N channels */
	uint64_t bandwidth_mibps; /* 0: no limit; else MiB/s (VIR_MIGRATE_PARAM_BANDWIDTH) */
	bool persist_dest;        /* VIR_MIGRATE_PERSIST_DEST */
	bool undefine_source;     /* VIR_MIGRATE_UNDEFINE_SOURCE */
};

/** Largest number of parallel connections accepted. */
#define CP_LIBVIRT_MAX_PARALLEL 64

enum cp_libvirt_mig_state {
	CP_LIBVIRT_MIG_RUNNING = 0,
	CP_LIBVIRT_MIG_DONE,   /* the domain runs on the destination */
	CP_LIBVIRT_MIG_FAILED, /* includes aborted; the error says why */
};

/** A migration's progress (byte counts from libvirt's job stats; 0 = unknown). */
struct cp_libvirt_progress {
	enum cp_libvirt_mig_state state;
	uint64_t elapsed_ms;     /* since cp_libvirt_migrate_start */
	uint64_t data_total;     /* bytes */
	uint64_t data_processed; /* bytes */
	uint64_t data_remaining; /* bytes */
	uint64_t mem_bps;        /* bytes/s, libvirt's memory bandwidth */
	uint64_t dirty_rate;     /* pages/s */
	uint64_t iteration;
	/* After DONE, from the destination's completed incoming job: */
	uint64_t total_ms;
	uint64_t downtime_ms;
	enum cp_libvirt_dom_state dest_state;
};

/**
 * Check @p o and the domain (it must exist, be running or paused, and have no
 * job, e.g. another migration, already), then start the migration in a
 * thread of its own; *@p out is its handle. Returns 0, -EINVAL (bad options,
 * domain not running; text in cp_libvirt_error), -ENOENT (no such domain),
 * -EBUSY (the domain has a job running), -ENOMEM, -EAGAIN (no thread).
 */
int cp_libvirt_migrate_start(struct cp_libvirt *lv, const struct cp_libvirt_migrate_opts *o,
                             struct cp_libvirt_migration **out);

/**
 * The migration's progress now. Thread-safe. While it runs, byte counts are
 * asked of libvirt (virDomainGetJobStats) and the last answer is kept.
 */
int cp_libvirt_migration_progress(struct cp_libvirt_migration *m, struct cp_libvirt_progress *p);

/**
 * Ask libvirt to abort the migration (virDomainAbortJob); the migration then
 * ends FAILED with -ECANCELED. 0, -EALREADY (it has ended), or libvirt's
 * error (text from cp_libvirt_migration_error).
 */
int cp_libvirt_migration_abort(struct cp_libvirt_migration *m);

/**
 * Wait up to @p timeout_ms (< 0: forever) for the migration to end. Returns
 * -ETIMEDOUT if it still runs, else its result: 0 (done) or a negative errno.
 */
int cp_libvirt_migration_wait(struct cp_libvirt_migration *m, int timeout_ms);

/**
 * Copy into @p buf why the migration failed, or why the last abort was
 * refused while it ran ("" when there is nothing to say). Thread-safe.
 */
void cp_libvirt_migration_error(struct cp_libvirt_migration *m, char *buf, size_t len);

/**
 * Free the migration. One still running is aborted and waited for first (so
 * this can block until libvirt has cleaned up).
 */
void cp_libvirt_migration_destroy(struct cp_libvirt_migration *m);

#endif /* CP_LIBVIRT_H */
