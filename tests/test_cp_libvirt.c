/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_cp_libvirt: the control plane's libvirt backend against libvirt's
 * test:///default driver (in-process, no daemon): connecting (and failing to,
 * with libvirt's reason, or giving up on a daemon that does not answer),
 * looking domains up, every refused migration request
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
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

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
	struct cp_libvirt *lv = cp_libvirt_create(TEST_URI, NULL, err, sizeof(err));
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
	assert_null(cp_libvirt_create(NULL, NULL, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	contains(err, "no libvirt URI");
	errno = 0;
	assert_null(cp_libvirt_create("", NULL, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);

	/* A daemon socket that is not there: the system's reason comes back. */
	errno = 0;
	assert_null(cp_libvirt_create(DEST_URI, NULL, err, sizeof(err)));
	assert_int_equal(errno, ENOENT);
	contains(err, "cannot connect to " DEST_URI);
	contains(err, "/nonexistent/libvirt-sock");

	/* A driver nobody has. */
	errno = 0;
	assert_null(cp_libvirt_create("nosuchdriver:///x", NULL, err, sizeof(err)));
	assert_int_not_equal(errno, 0);
	contains(err, "nosuchdriver:///x");

	/* No room for the text is fine too. */
	errno = 0;
	assert_null(cp_libvirt_create("nosuchdriver:///x", NULL, NULL, 0));
	assert_int_not_equal(errno, 0);
}

/* A libvirtd that accepts and never answers (a listening socket nobody
 * accepts on): the connect is given up on in time, and says so. */
static void test_connect_unanswered(void **state)
{
	(void)state;
	char dir[] = "/tmp/nc-cplv.XXXXXX", path[64], uri[256], err[512];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/libvirt-sock", dir);
	snprintf(uri, sizeof(uri), "qemu+unix:///system?socket=%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);

	const struct cp_libvirt_conn_opts o = {
	        .keepalive_s = 1, .keepalive_count = 1, .open_timeout_ms = 300};
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	errno = 0;
	assert_null(cp_libvirt_create(uri, &o, err, sizeof(err)));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(errno, ETIMEDOUT);
	contains(err, "cannot connect to ");
	contains(err, path);
	contains(err, "libvirtd did not answer in 300 ms");
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(s >= 0.29);
	assert_true(s < 10.0);

	/* Closing the listener ends the connect left behind; it cleans up
	 * after itself (LSan checks at exit). */
	close(fd);
	unlink(path);
	rmdir(dir);
	const struct timespec pause = {0, 200000000L};
	nanosleep(&pause, NULL);
}

/* Keepalive on a driver without it (test:///default): the handle works. */
static void test_connect_no_keepalive_driver(void **state)
{
	(void)state;
	const struct cp_libvirt_conn_opts o = {
	        .keepalive_s = 1, .keepalive_count = 1, .open_timeout_ms = 5000};
	char err[256];
	struct cp_libvirt *lv = cp_libvirt_create(TEST_URI, &o, err, sizeof(err));
	assert_non_null(lv);
	enum cp_libvirt_dom_state st;
	assert_int_equal(cp_libvirt_domain_state(lv, "test", &st), 0);
	assert_int_equal(st, CP_LIBVIRT_DOM_RUNNING);
	cp_libvirt_destroy(lv);
}

static void test_domain_state(void **state)
{
	(void)state;
	struct cp_libvirt *lv = cp_libvirt_create(TEST_URI, NULL, NULL, 0);
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
	struct cp_libvirt *lv = cp_libvirt_create(TEST_URI, NULL, NULL, 0);
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
	struct cp_libvirt *lv = cp_libvirt_create(TEST_URI, NULL, NULL, 0);
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
	struct cp_libvirt *lv = cp_libvirt_create(TEST_URI, NULL, NULL, 0);
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

/* An abort asked for at once (libvirt has no job yet: the migration's
 * thread may still be connecting) is kept: the migration ends cancelled,
 * never started behind it. */
static void test_abort_before_start(void **state)
{
	(void)state;
	struct cp_libvirt *lv = cp_libvirt_create(TEST_URI, NULL, NULL, 0);
	assert_non_null(lv);
	for (int round = 0; round < 5; round++) {
		struct cp_libvirt_migration *m = NULL;
		struct cp_libvirt_migrate_opts o = good_opts();
		assert_int_equal(cp_libvirt_migrate_start(lv, &o, &m), 0);
		int a = cp_libvirt_migration_abort(m);
		int rc = cp_libvirt_migration_wait(m, 10000);
		if (a != -EALREADY) /* it had not ended when asked */
			assert_int_equal(rc, -ECANCELED);
		cp_libvirt_migration_destroy(m);
	}
	cp_libvirt_destroy(lv);
}

/* A migration keeps its own references: the handle may go first. */
static void test_migration_outlives_handle(void **state)
{
	(void)state;
	struct cp_libvirt *lv = cp_libvirt_create(TEST_URI, NULL, NULL, 0);
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

/* cp_libvirt_tcg_loss_xml: which domains QEMU < 9.0 under TCG would migrate
 * losing dirty pages (RAM a multiple of 256 KiB), read from their XML. */
#define QNS       "xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'"
#define MEM(v, u) "<memory unit='" u "'>" v "</memory>"
#define ARGS(a)   "<qemu:commandline>" a "</qemu:commandline>"
#define ARG(v)    "<qemu:arg value='" v "'/>"

static int loss(const char *xml, unsigned long version, uint64_t *ram, char *why, size_t len)
{
	return cp_libvirt_tcg_loss_xml(xml, strlen(xml), version, ram, why, len);
}

static void test_tcg_loss_xml(void **state)
{
	(void)state;
	static const struct {
		const char *xml;
		unsigned long version;
		int rc;
		uint64_t ram;
	} cases[] = {
	        /* libvirt's MiB: always a multiple of 256 KiB under TCG on 7.2 */
	        {"<domain type='qemu'>" MEM("262144", "KiB") "</domain>", 7002000, 1, 268435456},
	        /* the XML as the test driver keeps it: rounded as libvirt does for QEMU */
	        {"<domain type='qemu'>" MEM("262136", "KiB") "</domain>", 7002000, 1, 268435456},
	        {"<domain type='qemu'><memory>262136</memory></domain>", 7002000, 1, 268435456},
	        {"<domain type='qemu'>" MEM("268427264", "bytes") "</domain>", 7002000, 1,
	         268435456},
	        {"<domain type='qemu'>" MEM("300", "MiB") "</domain>", 8002002, 1, 314572800},
	        {"<domain type='qemu'>" MEM("1", "GB") "</domain>", 7002000, 1, 1000341504},
	        /* fixed in QEMU 9.0; KVM never took the path */
	        {"<domain type='qemu'>" MEM("262144", "KiB") "</domain>", 9000000, 0, 268435456},
	        {"<domain type='kvm'>" MEM("4", "GiB") "</domain>", 7002000, 0, 4294967296},
	        /* the domain's own -m: the last one counts; bare numbers are MiB */
	        {"<domain type='qemu' " QNS ">" MEM("262144", "KiB") ARGS(
	                 ARG("-m") ARG("262136k") ARG("-object")
	                         ARG("memory-backend-ram,id=nc.ram,size=268427264")) "</domain>",
	         7002000, 0, 268427264},
	        {"<domain type='qemu' " QNS ">" MEM("262144", "KiB")
	                 ARGS(ARG("-m") ARG("262136k") ARG("-m") ARG("512")) "</domain>",
	         7002000, 1, 536870912},
	        {"<domain type='qemu' " QNS ">" MEM("262144", "KiB")
	                 ARGS(ARG("-m") ARG("size=1048568K,slots=2,maxmem=4G")) "</domain>",
	         7002000, 0, 1073733632},
	        {"<domain type='qemu' " QNS ">" MEM("262144", "KiB")
	                 ARGS(ARG("-m") ARG("1G")) "</domain>",
	         7002000, 1, 1073741824},
	        /* QEMU rounds -m up to 8 KiB: a byte over 256 MiB - 8 KiB is 256 MiB */
	        {"<domain type='qemu' " QNS ">" MEM("262144", "KiB")
	                 ARGS(ARG("-m") ARG("268427265b")) "</domain>",
	         7002000, 1, 268435456},
	        /* an -m in no namespace, or another one, is not QEMU's */
	        {"<domain type='qemu'>" MEM("262144",
	                                    "KiB") "<commandline><arg value='-m'/><arg "
	                                           "value='262136k'/></commandline></domain>",
	         7002000, 1, 268435456},
	        {"<domain type='qemu' " QNS ">" MEM("262144", "KiB") ARGS(ARG("-m")) "</domain>",
	         7002000, 1, 268435456},
	        /* unreadable */
	        {"<domain type='qemu'>" MEM("x", "KiB") "</domain>", 7002000, -EINVAL, 0},
	        {"<domain type='qemu'>" MEM("256", "parsecs") "</domain>", 7002000, -EINVAL, 0},
	        {"<domain type='qemu'>" MEM("0", "KiB") "</domain>", 7002000, -EINVAL, 0},
	        {"<domain type='qemu'>" MEM("99999999999999999999", "KiB") "</domain>", 7002000,
	         -EINVAL, 0},
	        {"<domain type='qemu'>" MEM("18014398509481983", "KiB") "</domain>", 7002000,
	         -EINVAL, 0},
	        {"<domain type='qemu'></domain>", 7002000, -EINVAL, 0},
	        {"<domain>" MEM("262144", "KiB") "</domain>", 7002000, -EINVAL, 0},
	        {"<network type='qemu'>" MEM("262144", "KiB") "</network>", 7002000, -EINVAL, 0},
	        {"<domain type='qemu'>" MEM("262144", "KiB"), 7002000, -EINVAL, 0},
	        {"<domain type='qemu' " QNS ">" MEM("262144", "KiB")
	                 ARGS(ARG("-m") ARG("lots")) "</domain>",
	         7002000, -EINVAL, 0},
	        {"<domain type='qemu' " QNS ">" MEM("262144", "KiB")
	                 ARGS(ARG("-m") ARG("256Mx")) "</domain>",
	         7002000, -EINVAL, 0},
	        {"<domain type='qemu' " QNS ">" MEM("262144", "KiB")
	                 ARGS(ARG("-m") ARG("99999999T")) "</domain>",
	         7002000, -EINVAL, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char why[512] = "x";
		uint64_t ram = 7;
		int rc = loss(cases[i].xml, cases[i].version, &ram, why, sizeof(why));
		if (rc != cases[i].rc || ram != cases[i].ram)
			fail_msg("case %zu (%s): rc %d ram %llu (want %d, %llu): %s", i,
			         cases[i].xml, rc, (unsigned long long)ram, cases[i].rc,
			         (unsigned long long)cases[i].ram, why);
		if (rc == 0)
			assert_string_equal(why, "");
		else
			assert_true(why[0] != '\0');
	}

	char why[512];
	uint64_t ram;
	assert_int_equal(loss("<domain type='qemu'>" MEM("262144", "KiB") "</domain>", 7002000,
	                      &ram, why, sizeof(why)),
	                 1);
	contains(why, "TCG on QEMU 7.2.0 with 262144 KiB of RAM, a multiple of 256 KiB");
	contains(why, "QEMU commit 03bfc2188f");
	assert_int_equal(loss("<domain type='qemu' " QNS ">" MEM("262144", "KiB")
	                              ARGS(ARG("-m") ARG("256M")) "</domain>",
	                      8001003, &ram, why, sizeof(why)),
	                 1);
	contains(why, "QEMU 8.1.3 with 262144 KiB of RAM (its qemu:commandline -m)");
	assert_int_equal(loss("<domain type='qemu'>" MEM("x", "MiB") "</domain>", 7002000, &ram,
	                      why, sizeof(why)),
	                 -EINVAL);
	contains(why, "its <memory> (x MiB) cannot be read");
	assert_int_equal(loss("<domain", 7002000, &ram, why, sizeof(why)), -EINVAL);
	contains(why, "not well-formed");
	assert_int_equal(cp_libvirt_tcg_loss_xml(NULL, 0, 7002000, &ram, why, sizeof(why)),
	                 -EINVAL);
	/* A short buffer is cut, not overrun. */
	char small[16];
	assert_int_equal(loss("<domain type='qemu'>" MEM("262144", "KiB") "</domain>", 7002000,
	                      &ram, small, sizeof(small)),
	                 1);
	assert_int_equal(strlen(small), sizeof(small) - 1);
}

/* The same through libvirt: the test driver's 'test' domain is not TCG; a
 * type='qemu' domain defined there is, with its 256 MiB - 8 KiB rounded to
 * MiB as libvirt does for QEMU (the test driver reports QEMU "0.0.2"). */
static void test_domain_tcg_loss(void **state)
{
	(void)state;
	struct cp_libvirt *lv = cp_libvirt_create(TEST_URI, NULL, NULL, 0);
	assert_non_null(lv);
	char why[512];
	assert_int_equal(cp_libvirt_domain_tcg_loss(lv, "test", why, sizeof(why)), 0);
	assert_string_equal(why, "");
	assert_int_equal(cp_libvirt_domain_tcg_loss(lv, "nosuchdom", why, sizeof(why)), -ENOENT);
	contains(cp_libvirt_error(lv), "domain 'nosuchdom'");

	virConnectPtr conn = virConnectOpen(TEST_URI);
	assert_non_null(conn);
	virDomainPtr d = virDomainDefineXML(conn, "<domain type='qemu'><name>tcg1</name>"
	                                          "<memory unit='KiB'>262136</memory>"
	                                          "<os><type arch='x86_64'>hvm</type></os>"
	                                          "</domain>");
	assert_non_null(d);
	/* test:///default is one state per process: the handle sees it too. */
	int rc = cp_libvirt_domain_tcg_loss(lv, "tcg1", why, sizeof(why));
	virDomainUndefine(d);
	virDomainFree(d);
	virConnectClose(conn);
	assert_int_equal(rc, 1);
	contains(why, "QEMU 0.0.2 with 262144 KiB of RAM");
	cp_libvirt_destroy(lv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_connect),
	        cmocka_unit_test(test_connect_errors),
	        cmocka_unit_test(test_connect_unanswered),
	        cmocka_unit_test(test_connect_no_keepalive_driver),
	        cmocka_unit_test(test_domain_state),
	        cmocka_unit_test(test_migrate_refused_early),
	        cmocka_unit_test(test_migrate_domain_not_running),
	        cmocka_unit_test(test_migrate_refused_by_driver),
	        cmocka_unit_test(test_abort_before_start),
	        cmocka_unit_test(test_migration_outlives_handle),
	        cmocka_unit_test(test_tcg_loss_xml),
	        cmocka_unit_test(test_domain_tcg_loss),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
