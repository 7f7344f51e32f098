/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_cp_libvirt: the control plane's libvirt backend against libvirt's
 * test:///default driver (in-process, no daemon): connecting (and failing to,
 * with libvirt's reason), looking domains up, every refused migration request
 * (bad options, unknown or stopped domain), and a migration the test driver
 * cannot do, which must end FAILED with libvirt's text while the domain keeps
 * running. Real migrations between two libvirtd run in
 * tests/integration_libvirt.sh.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "cp_libvirt.h"

#define TEST_URI "test:///default"
#define DEST_URI "qemu+unix:///system?socket=/nonexistent/libvirt-sock"

static void contains(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("'%s' does not contain '%s'", hay, needle);
}

static void test_connect(void **state)
{
	(void)state;
	char err[256] = "x";
	struct cp_libvirt *lv = cp_libvirt_create(TEST_URI, err, sizeof(err));
	assert_non_null(lv);
	assert_string_equal(err, "");
	assert_string_equal(cp_libvirt_uri(lv), TEST_URI);
	assert_string_equal(cp_libvirt_error(lv), "");
	cp_libvirt_destroy(lv);
	cp_libvirt_destroy(NULL);
}

static void test_connect_errors(void **state)
{
	(void)state;
	char err[256];

	errno = 0;
	assert_null(cp_libvirt_create(NULL, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	contains(err, "no libvirt URI");
	errno = 0;
	assert_null(cp_libvirt_create("", err, sizeof(err)));
	assert_int_equal(errno, EINVAL);

	/* A daemon socket that is not there: the system's reason comes back. */
	errno = 0;
	assert_null(cp_libvirt_create(DEST_URI, err, sizeof(err)));
	assert_int_equal(errno, ENOENT);
	contains(err, "cannot connect to " DEST_URI);
	contains(err, "/nonexistent/libvirt-sock");

	/* A driver nobody has. */
	errno = 0;
	assert_null(cp_libvirt_create("nosuchdriver:///x", err, sizeof(err)));
	assert_int_not_equal(errno, 0);
	contains(err, "nosuchdriver:///x");

	/* No room for the text is fine too. */
	errno = 0;
	assert_null(cp_libvirt_create("nosuchdriver:///x", NULL, 0));
	assert_int_not_equal(errno, 0);
}

static void test_domain_state(void **state)
{
	(void)state;
	struct cp_libvirt *lv = cp_libvirt_create(TEST_URI, NULL, 0);
	assert_non_null(lv);
	enum cp_libvirt_dom_state st = CP_LIBVIRT_DOM_OTHER;
	assert_int_equal(cp_libvirt_domain_state(lv, "test", &st), 0);
	assert_int_equal(st, CP_LIBVIRT_DOM_RUNNING);
	assert_string_equal(cp_libvirt_dom_state_name(st), "running");

	assert_int_equal(cp_libvirt_domain_state(lv, "nosuchdom", &st), -ENOENT);
	contains(cp_libvirt_error(lv), "domain 'nosuchdom' on " TEST_URI);
	contains(cp_libvirt_error(lv), "not found");
	assert_int_equal(cp_libvirt_domain_state(lv, "", &st), -EINVAL);
	contains(cp_libvirt_error(lv), "no domain name");
	assert_int_equal(cp_libvirt_domain_state(lv, NULL, &st), -EINVAL);

	/* A good call clears the last error. */
	assert_int_equal(cp_libvirt_domain_state(lv, "test", &st), 0);
	assert_string_equal(cp_libvirt_error(lv), "");
	assert_string_equal(cp_libvirt_dom_state_name(CP_LIBVIRT_DOM_PAUSED), "paused");
	assert_string_equal(cp_libvirt_dom_state_name(CP_LIBVIRT_DOM_SHUTOFF), "shutoff");
	assert_string_equal(cp_libvirt_dom_state_name(CP_LIBVIRT_DOM_OTHER), "other");
	cp_libvirt_destroy(lv);
}

static struct cp_libvirt_migrate_opts good_opts(void)
{
	return (struct cp_libvirt_migrate_opts){
	        .domain = "test",
	        .dest_uri = DEST_URI,
	        .migrate_uri = "unix:///run/novacron-migrate/test.sock",
	};
}

static void test_migrate_refused_early(void **state)
{
	(void)state;
	struct cp_libvirt *lv = cp_libvirt_create(TEST_URI, NULL, 0);
	assert_non_null(lv);
	struct cp_libvirt_migration *m = (void *)1;
	struct cp_libvirt_migrate_opts o;

	assert_int_equal(cp_libvirt_migrate_start(lv, NULL, &m), -EINVAL);
	assert_null(m);
	contains(cp_libvirt_error(lv), "no migration options");

	o = good_opts();
	o.domain = NULL;
	assert_int_equal(cp_libvirt_migrate_start(lv, &o, &m), -EINVAL);
	contains(cp_libvirt_error(lv), "no domain to migrate");
	o.domain = "";
	assert_int_equal(cp_libvirt_migrate_start(lv, &o, &m), -EINVAL);
	/* The first thing wrong is the one reported. */
	o.parallel = CP_LIBVIRT_MAX_PARALLEL + 1;
	assert_int_equal(cp_libvirt_migrate_start(lv, &o, &m), -EINVAL);
	assert_string_equal(cp_libvirt_error(lv), "no domain to migrate");

	o = good_opts();
	o.dest_uri = "";
	assert_int_equal(cp_libvirt_migrate_start(lv, &o, &m), -EINVAL);
	contains(cp_libvirt_error(lv), "no destination URI");

	o = good_opts();
	o.migrate_uri = "";
	assert_int_equal(cp_libvirt_migrate_start(lv, &o, &m), -EINVAL);
	contains(cp_libvirt_error(lv), "empty migration URI");

	o = good_opts();
	o.parallel = CP_LIBVIRT_MAX_PARALLEL + 1;
	assert_int_equal(cp_libvirt_migrate_start(lv, &o, &m), -EINVAL);
	contains(cp_libvirt_error(lv), "too many parallel connections: 65 (at most 64)");

	o = good_opts();
	o.domain = "nosuchdom";
	assert_int_equal(cp_libvirt_migrate_start(lv, &o, &m), -ENOENT);
	contains(cp_libvirt_error(lv), "domain 'nosuchdom'");
	assert_null(m);
	cp_libvirt_destroy(lv);
}

/* A stopped domain cannot be live-migrated; a paused one can be asked. */
static void test_migrate_domain_not_running(void **state)
{
	(void)state;
	struct cp_libvirt *lv = cp_libvirt_create(TEST_URI, NULL, 0);
	assert_non_null(lv);
	/* Our own connection to the same (per-process) test driver state. */
	virConnectPtr c = virConnectOpen(TEST_URI);
	assert_non_null(c);
	virDomainPtr d = virDomainLookupByName(c, "test");
	assert_non_null(d);
	assert_int_equal(virDomainDestroy(d), 0);

	struct cp_libvirt_migration *m = NULL;
	struct cp_libvirt_migrate_opts o = good_opts();
	assert_int_equal(cp_libvirt_migrate_start(lv, &o, &m), -EINVAL);
	contains(cp_libvirt_error(lv), "domain 'test' is not running (shutoff)");
	assert_null(m);

	enum cp_libvirt_dom_state st;
	assert_int_equal(virDomainCreate(d), 0);
	assert_int_equal(virDomainSuspend(d), 0);
	assert_int_equal(cp_libvirt_domain_state(lv, "test", &st), 0);
	assert_int_equal(st, CP_LIBVIRT_DOM_PAUSED);
	assert_int_equal(virDomainResume(d), 0);
	assert_int_equal(cp_libvirt_domain_state(lv, "test", &st), 0);
	assert_int_equal(st, CP_LIBVIRT_DOM_RUNNING);
	virDomainFree(d);
	virConnectClose(c);
	cp_libvirt_destroy(lv);
}

/* The test driver has no peer-to-peer migration: the attempt ends FAILED,
 * cleanly, with libvirt's reason, and the domain keeps running. */
static void test_migrate_refused_by_driver(void **state)
{
	(void)state;
	struct cp_libvirt *lv = cp_libvirt_create(TEST_URI, NULL, 0);
	assert_non_null(lv);
	for (unsigned int parallel = 0; parallel <= 4; parallel += 4) {
		struct cp_libvirt_migration *m = NULL;
		struct cp_libvirt_migrate_opts o = good_opts();
		o.parallel = parallel;
		o.bandwidth_mibps = parallel ? 100 : 0;
		o.persist_dest = parallel != 0;
		o.undefine_source = parallel != 0;
		assert_int_equal(cp_libvirt_migrate_start(lv, &o, &m), 0);
		assert_non_null(m);
		int rc = cp_libvirt_migration_wait(m, 10000);
		assert_int_equal(rc, -ENOTSUP);
		/* Waiting again gives the same result at once. */
		assert_int_equal(cp_libvirt_migration_wait(m, 0), -ENOTSUP);
		assert_int_equal(cp_libvirt_migration_wait(m, -1), -ENOTSUP);

		char err[512];
		cp_libvirt_migration_error(m, err, sizeof(err));
		contains(err, "migration of 'test' to " DEST_URI " failed: ");
		contains(err, "not supported");

		struct cp_libvirt_progress p;
		assert_int_equal(cp_libvirt_migration_progress(m, &p), 0);
		assert_int_equal(p.state, CP_LIBVIRT_MIG_FAILED);
		assert_int_equal(p.data_processed, 0);
		assert_int_equal(cp_libvirt_migration_abort(m), -EALREADY);
		cp_libvirt_migration_destroy(m);

		enum cp_libvirt_dom_state st;
		assert_int_equal(cp_libvirt_domain_state(lv, "test", &st), 0);
		assert_int_equal(st, CP_LIBVIRT_DOM_RUNNING);
	}
	cp_libvirt_migration_destroy(NULL);
	cp_libvirt_destroy(lv);
}

/* A migration keeps its own references: the handle may go first. */
static void test_migration_outlives_handle(void **state)
{
	(void)state;
	struct cp_libvirt *lv = cp_libvirt_create(TEST_URI, NULL, 0);
	assert_non_null(lv);
	struct cp_libvirt_migration *m = NULL;
	struct cp_libvirt_migrate_opts o = good_opts();
	assert_int_equal(cp_libvirt_migrate_start(lv, &o, &m), 0);
	cp_libvirt_destroy(lv);
	assert_int_equal(cp_libvirt_migration_wait(m, -1), -ENOTSUP);
	char err[8];
	cp_libvirt_migration_error(m, err, sizeof(err));
	assert_int_equal(strlen(err), sizeof(err) - 1);
	cp_libvirt_migration_destroy(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_connect),
	        cmocka_unit_test(test_connect_errors),
	        cmocka_unit_test(test_domain_state),
	        cmocka_unit_test(test_migrate_refused_early),
	        cmocka_unit_test(test_migrate_domain_not_running),
	        cmocka_unit_test(test_migrate_refused_by_driver),
	        cmocka_unit_test(test_migration_outlives_handle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
