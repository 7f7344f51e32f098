/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_cp_mig_libvirt: the control plane's libvirt migration back end
 * (cp_mig_libvirt, as cp_migrate drives it) against libvirt's
 * test:///default driver: every request refused before a migration starts
 * (no libvirt configured, no such daemon, bad or unknown domain, a domain
 * that is not running, a destination that gave no URI or this host's own),
 * and a migration libvirt refuses once started (the test driver does no
 * peer-to-peer migration), which must end failed with libvirt's reason while
 * the domain keeps running. The whole flow through two libvirtd and two
 * appliances runs in tests/integration_libvirt_appliance.sh.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>
#include <libvirt/libvirt.h>

#include "cp_migrate.h"
#include "nc_config.h"
#include "nc_config_table.h"

#define TEST_URI "test:///default"
#define DEST_URI "qemu+unix:///system?socket=/nonexistent/libvirt-sock"
#define SOCK     "unix:/run/novacron-migrate/mig-test.sock"

static const struct cp_mig_backend *const be = &cp_mig_libvirt;

static void contains(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("'%s' does not contain '%s'", hay, needle);
}

static struct nc_config *config(const char *libvirt_uri)
{
	struct nc_config *cfg = nc_config_create(nc_config_table, nc_config_table_len);
	assert_non_null(cfg);
	char err[256];
	if (nc_config_set(cfg, "controlplane.libvirt_uri", libvirt_uri, false, err, sizeof(err)))
		fail_msg("%s", err);
	return cfg;
}

/* A destination's peer.info, as cp_peer's answers it. */
static json_t *peer_info(const char *libvirt_uri)
{
	json_t *i = json_pack("{s:s, s:s, s:b}", "name", "host-b", "amst_ip", "10.77.0.12",
	                      "dataplane_alive", 1);
	if (libvirt_uri != NULL)
		json_object_set_new(i, "libvirt_uri", json_string(libvirt_uri));
	return i;
}

static void test_the_backend(void **state)
{
	(void)state;
	assert_string_equal(be->name, "libvirt");
	assert_string_equal(be->who, "libvirt");
	assert_true(be->same_path);
	assert_non_null(be->peer_info);
	assert_false(cp_mig_qemu.same_path);
	assert_null(cp_mig_qemu.peer_info);
}

/* What is wrong before libvirt is even asked about the domain. */
static void test_open_refused(void **state)
{
	(void)state;
	char err[512];
	struct nc_config *cfg = config("");
	errno = 0;
	assert_null(be->open("libvirt:test", cfg, 1000, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	contains(err, "controlplane.libvirt_uri is empty");
	nc_config_destroy(cfg);

	cfg = config(TEST_URI);
	errno = 0;
	assert_null(be->open("libvirt:", cfg, 1000, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	contains(err, "libvirt:NAME");
	char longname[300];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_null(be->open(longname, cfg, 1000, err, sizeof(err)));
	contains(err, "1-255 characters");
	nc_config_destroy(cfg);

	/* No daemon at the configured socket: libvirt's reason. */
	cfg = config(DEST_URI);
	errno = 0;
	assert_null(be->open("libvirt:test", cfg, 1000, err, sizeof(err)));
	assert_int_equal(errno, ENOENT);
	contains(err, "cannot connect to " DEST_URI);
	nc_config_destroy(cfg);
}

static void test_open_unknown_domain(void **state)
{
	(void)state;
	char err[512];
	struct nc_config *cfg = config(TEST_URI);
	errno = 0;
	assert_null(be->open("libvirt:nosuchdom", cfg, 1000, err, sizeof(err)));
	assert_int_equal(errno, ENOENT);
	assert_string_equal(err, "no domain 'nosuchdom' on " TEST_URI);
	nc_config_destroy(cfg);
}

/* A stopped domain is refused; a paused one may go, and says it is paused. */
static void test_open_not_running(void **state)
{
	(void)state;
	char err[512];
	struct nc_config *cfg = config(TEST_URI);
	virConnectPtr c = virConnectOpen(TEST_URI); /* the same per-process test driver */
	assert_non_null(c);
	virDomainPtr d = virDomainLookupByName(c, "test");
	assert_non_null(d);
	assert_int_equal(virDomainDestroy(d), 0);
	errno = 0;
	assert_null(be->open("libvirt:test", cfg, 1000, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	assert_string_equal(err, "domain 'test' is not running (shutoff)");

	assert_int_equal(virDomainCreate(d), 0);
	assert_int_equal(virDomainSuspend(d), 0);
	void *h = be->open("libvirt:test", cfg, 1000, err, sizeof(err));
	assert_non_null(h);
	char st[32];
	assert_int_equal(be->vm_state(h, st, sizeof(st), err, sizeof(err)), 0);
	assert_string_equal(st, "paused");
	be->close(h);
	assert_int_equal(virDomainResume(d), 0);
	virDomainFree(d);
	virConnectClose(c);
	nc_config_destroy(cfg);
}

/* A TCG domain that QEMU < 9.0 would migrate losing its dirty pages (its
 * RAM a multiple of 256 KiB; the test driver says it is QEMU 0.0.2):
 * refused by default, migrated with a warning or unchecked on request. */
static void test_open_tcg_guard(void **state)
{
	(void)state;
	char err[512];
	struct nc_config *cfg = config(TEST_URI);
	virConnectPtr c = virConnectOpen(TEST_URI);
	assert_non_null(c);
	virDomainPtr d = virDomainDefineXML(c, "<domain type='qemu'><name>tcg1</name>"
	                                       "<memory unit='KiB'>262144</memory>"
	                                       "<os><type arch='x86_64'>hvm</type></os>"
	                                       "</domain>");
	assert_non_null(d);
	assert_int_equal(virDomainCreate(d), 0);

	errno = 0;
	assert_null(be->open("libvirt:tcg1", cfg, 1000, err, sizeof(err)));
	assert_int_equal(errno, ENOTSUP);
	contains(err, "domain 'tcg1' is not migrated: it runs under TCG on QEMU "
	              "0.0.2 with 262144 KiB of RAM, a multiple of 256 KiB");
	contains(err, "set controlplane.tcg_guard to warn");
	/* The 'test' domain (type='test') is not TCG: it opens, as above. */
	void *h = be->open("libvirt:test", cfg, 1000, err, sizeof(err));
	assert_non_null(h);
	be->close(h);

	static const char *const allow[] = {"warn", "off"};
	for (size_t i = 0; i < 2; i++) {
		if (nc_config_set(cfg, "controlplane.tcg_guard", allow[i], false, err, sizeof(err)))
			fail_msg("%s", err);
		h = be->open("libvirt:tcg1", cfg, 1000, err, sizeof(err));
		if (h == NULL)
			fail_msg("guard %s: %s", allow[i], err);
		be->close(h);
	}
	assert_int_not_equal(
	        nc_config_set(cfg, "controlplane.tcg_guard", "maybe", false, err, sizeof(err)), 0);
	assert_int_equal(virDomainDestroy(d), 0);
	assert_int_equal(virDomainUndefine(d), 0);
	virDomainFree(d);
	virConnectClose(c);
	nc_config_destroy(cfg);
}

/* The destination must name a libvirtd, and not ours. */
static void test_peer_info_refused(void **state)
{
	(void)state;
	char err[512];
	struct nc_config *cfg = config(TEST_URI);
	void *h = be->open("libvirt:test", cfg, 1000, err, sizeof(err));
	assert_non_null(h);

	/* start before the destination is known */
	assert_int_equal(be->start(h, SOCK, 0, err, sizeof(err)), -EINVAL);
	contains(err, "libvirt URI is not known");

	json_t *i = peer_info(NULL);
	assert_int_equal(be->peer_info(h, i, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "host-b takes no libvirt migrations (its "
	                         "controlplane.libvirt_uri is empty)");
	json_decref(i);
	i = peer_info("");
	assert_int_equal(be->peer_info(h, i, err, sizeof(err)), -EINVAL);
	json_decref(i);
	i = peer_info(TEST_URI);
	assert_int_equal(be->peer_info(h, i, err, sizeof(err)), -EINVAL);
	contains(err, "host-b names this host's own libvirtd (" TEST_URI ")");
	contains(err, "libvirt_dest_uri");
	json_decref(i);

	i = peer_info(DEST_URI);
	assert_int_equal(be->peer_info(h, i, err, sizeof(err)), 0);
	json_decref(i);
	/* Only unix:PATH sockets: the same path on both hosts. */
	assert_int_equal(be->start(h, "tcp:10.77.0.2:4444", 0, err, sizeof(err)), -EINVAL);
	contains(err, "unix:PATH");
	char big[400] = "unix:/";
	memset(big + 6, 'p', sizeof(big) - 7);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(be->start(h, big, 0, err, sizeof(err)), -ENAMETOOLONG);

	/* Nothing started: nothing to poll or cancel, the domain runs. */
	struct cp_mig_progress p;
	assert_int_equal(be->poll(h, &p, err, sizeof(err)), 0);
	assert_int_equal(p.status, CP_MIG_ST_NONE);
	assert_int_equal(be->cancel(h, err, sizeof(err)), 0);
	char st[32];
	assert_int_equal(be->vm_state(h, st, sizeof(st), err, sizeof(err)), 0);
	assert_string_equal(st, "running");
	be->close(h);
	be->close(NULL);
	nc_config_destroy(cfg);
}

/* libvirt refuses the migration it was asked (the test driver has no
 * peer-to-peer migration): it ends failed with libvirt's reason, the domain
 * runs on here, and the handle takes no second migration. */
static void test_libvirt_refuses(void **state)
{
	(void)state;
	char err[512];
	struct nc_config *cfg = config(TEST_URI);
	for (unsigned channels = 0; channels <= 4; channels += 4) {
		void *h = be->open("libvirt:test", cfg, 1000, err, sizeof(err));
		assert_non_null(h);
		json_t *i = peer_info(DEST_URI);
		assert_int_equal(be->peer_info(h, i, err, sizeof(err)), 0);
		json_decref(i);
		assert_int_equal(be->start(h, SOCK, channels, err, sizeof(err)), 0);
		struct cp_mig_progress p;
		int n = 0;
		do {
			assert_int_equal(be->poll(h, &p, err, sizeof(err)), 0);
			assert_true(++n < 1000);
			if (p.status == CP_MIG_ST_ACTIVE) {
				struct timespec ts = {0, 10000000};
				nanosleep(&ts, NULL);
			}
		} while (p.status == CP_MIG_ST_ACTIVE);
		assert_int_equal(p.status, CP_MIG_ST_FAILED);
		assert_string_equal(p.detail, "failed");
		contains(p.error, "migration of 'test' to " DEST_URI " failed");
		contains(p.error, "not supported");
		assert_int_equal(p.total_ms, -1);
		assert_int_equal(p.downtime_ms, -1);
		assert_int_equal(be->start(h, SOCK, channels, err, sizeof(err)), -EBUSY);
		contains(err, "a migration was started already");
		assert_int_equal(be->cancel(h, err, sizeof(err)), 0); /* ended already */
		char st[32];
		assert_int_equal(be->vm_state(h, st, sizeof(st), err, sizeof(err)), 0);
		assert_string_equal(st, "running");
		be->close(h);
	}
	nc_config_destroy(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_the_backend),
	        cmocka_unit_test(test_open_refused),
	        cmocka_unit_test(test_open_unknown_domain),
	        cmocka_unit_test(test_open_not_running),
	        cmocka_unit_test(test_open_tcg_guard),
	        cmocka_unit_test(test_peer_info_refused),
	        cmocka_unit_test(test_libvirt_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
