/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lv_migrate: a test harness that drives one live migration through
 * cp_libvirt, as the control plane will, and prints what it saw, one
 * "key=value ..." line per event, for tests/integration_libvirt.sh:
 *
 *   start ...            the migration was started
 *   progress ...         every --interval-ms while it runs
 *   second rc=N err=...  (--try-second) a second start of the same domain
 *   abort rc=N           (--abort-after-ms) the abort was asked
 *   stopped pid=N        (--stop-pid) PID (the source's libvirtd) was sent
 *                        SIGSTOP, once the job was seen; the result line
 *                        then tells how long after that it came (wedged_ms)
 *   result rc=N state=S elapsed_ms=... total_ms=... downtime_ms=... dest=... err=...
 *
 * Exit: 0 the migration succeeded, 1 it failed (or a check above did not
 * hold), 2 it could not be started (bad arguments, refused request).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cp_libvirt.h"

static unsigned long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: lv_migrate --from URI --to URI --domain NAME [--migrate-uri URI]\n"
	           "         [--parallel N] [--bandwidth MIBPS] [--persist] [--undefine-source]\n"
	           "         [--abort-after-ms MS] [--try-second] [--interval-ms MS]\n"
	           "         [--timeout-s S] [--keepalive S:COUNT] [--open-timeout-ms MS]\n"
	           "         [--stop-pid PID]\n");
}

static int num(const char *opt, const char *s, unsigned long long max, unsigned long long *v)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || x > max) {
		fprintf(stderr, "lv_migrate: --%s: '%s' is not a number from 0 to %llu\n", opt, s,
		        max);
		return -1;
	}
	*v = x;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"from", required_argument, NULL, 'f'},
	        {"to", required_argument, NULL, 't'},
	        {"domain", required_argument, NULL, 'd'},
	        {"migrate-uri", required_argument, NULL, 'u'},
	        {"parallel", required_argument, NULL, 'p'},
	        {"bandwidth", required_argument, NULL, 'b'},
	        {"persist", no_argument, NULL, 'P'},
	        {"undefine-source", no_argument, NULL, 'U'},
	        {"abort-after-ms", required_argument, NULL, 'a'},
	        {"try-second", no_argument, NULL, 's'},
	        {"interval-ms", required_argument, NULL, 'i'},
	        {"timeout-s", required_argument, NULL, 'T'},
	        {"keepalive", required_argument, NULL, 'k'},
	        {"open-timeout-ms", required_argument, NULL, 'o'},
	        {"stop-pid", required_argument, NULL, 'S'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct cp_libvirt_migrate_opts o = {0};
	struct cp_libvirt_conn_opts co = CP_LIBVIRT_CONN_OPTS_DEFAULT;
	unsigned long long stop_pid = 0;
	const char *from = NULL;
	unsigned long long v, abort_after = 0, interval = 250, timeout_s = 120;
	bool want_abort = false, try_second = false;
	int c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			from = optarg;
			break;
		case 't':
			o.dest_uri = optarg;
			break;
		case 'd':
			o.domain = optarg;
			break;
		case 'u':
			o.migrate_uri = optarg;
			break;
		case 'p':
			if (num("parallel", optarg, 1000, &v) < 0)
				return 2;
			o.parallel = (unsigned int)v;
			break;
		case 'b':
			if (num("bandwidth", optarg, 1ull << 40, &v) < 0)
				return 2;
			o.bandwidth_mibps = v;
			break;
		case 'P':
			o.persist_dest = true;
			break;
		case 'U':
			o.undefine_source = true;
			break;
		case 'a':
			if (num("abort-after-ms", optarg, 3600000, &abort_after) < 0)
				return 2;
			want_abort = true;
			break;
		case 's':
			try_second = true;
			break;
		case 'i':
			if (num("interval-ms", optarg, 60000, &interval) < 0)
				return 2;
			if (interval == 0)
				interval = 1;
			break;
		case 'T':
			if (num("timeout-s", optarg, 86400, &timeout_s) < 0)
				return 2;
			break;
		case 'k': {
			char *colon = strchr(optarg, ':');
			if (colon == NULL) {
				fprintf(stderr, "lv_migrate: --keepalive: S:COUNT, not '%s'\n",
				        optarg);
				return 2;
			}
			*colon = '\0';
			if (num("keepalive", optarg, 600, &v) < 0)
				return 2;
			co.keepalive_s = (int)v;
			if (num("keepalive", colon + 1, 100, &v) < 0)
				return 2;
			co.keepalive_count = (unsigned)v;
			break;
		}
		case 'o':
			if (num("open-timeout-ms", optarg, 3600000, &v) < 0)
				return 2;
			co.open_timeout_ms = (int)v;
			break;
		case 'S':
			if (num("stop-pid", optarg, 1u << 30, &stop_pid) < 0)
				return 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || from == NULL) {
		usage(stderr);
		return 2;
	}

	char err[512];
	struct cp_libvirt *lv = cp_libvirt_create(from, &co, err, sizeof(err));
	if (lv == NULL) {
		printf("start rc=%d err=%s\n", -errno, err);
		return 2;
	}
	struct cp_libvirt_migration *m = NULL;
	int rc = cp_libvirt_migrate_start(lv, &o, &m);
	if (rc != 0) {
		printf("start rc=%d err=%s\n", rc, cp_libvirt_error(lv));
		cp_libvirt_destroy(lv);
		return 2;
	}
	printf("start rc=0 domain=%s to=%s via=%s parallel=%u\n", o.domain, o.dest_uri,
	       o.migrate_uri ? o.migrate_uri : "-", o.parallel);
	fflush(stdout);

	int status = 0;
	bool seen_job = false, second_done = !try_second, aborted = !want_abort;
	unsigned long long stopped_at = 0;
	struct cp_libvirt_progress p;
	for (;;) {
		rc = cp_libvirt_migration_wait(m, (int)interval);
		cp_libvirt_migration_progress(m, &p);
		if (rc != -ETIMEDOUT)
			break;
		printf("progress elapsed_ms=%llu total=%llu processed=%llu remaining=%llu "
		       "bps=%llu iteration=%llu\n",
		       (unsigned long long)p.elapsed_ms, (unsigned long long)p.data_total,
		       (unsigned long long)p.data_processed, (unsigned long long)p.data_remaining,
		       (unsigned long long)p.mem_bps, (unsigned long long)p.iteration);
		fflush(stdout);
		seen_job = seen_job || p.data_total > 0;
		if (seen_job && !second_done) {
			struct cp_libvirt_migration *m2 = NULL;
			int rc2 = cp_libvirt_migrate_start(lv, &o, &m2);
			printf("second rc=%d err=%s\n", rc2, cp_libvirt_error(lv));
			fflush(stdout);
			if (rc2 == 0) {
				status = 1; /* must be refused */
				cp_libvirt_migration_destroy(m2);
			}
			second_done = true;
		}
		if (seen_job && stop_pid != 0 && stopped_at == 0) {
			if (kill((pid_t)stop_pid, SIGSTOP) != 0) {
				printf("check: cannot stop pid %llu: %s\n", stop_pid,
				       strerror(errno));
				status = 1;
			}
			stopped_at = now_ms();
			printf("stopped pid=%llu\n", stop_pid);
		}
		if (seen_job && !aborted && p.elapsed_ms >= abort_after) {
			int rca = cp_libvirt_migration_abort(m);
			printf("abort rc=%d\n", rca);
			aborted = true;
		}
		if (p.elapsed_ms > timeout_s * 1000) {
			printf("timeout after %llu s: aborting\n", timeout_s);
			cp_libvirt_migration_abort(m);
			status = 1;
			timeout_s = ~0ull / 2000;
		}
		fflush(stdout);
	}
	cp_libvirt_migration_error(m, err, sizeof(err));
	if (stopped_at != 0)
		printf("wedged_ms=%llu\n", now_ms() - stopped_at);
	printf("result rc=%d state=%s elapsed_ms=%llu total_ms=%llu downtime_ms=%llu "
	       "processed=%llu dest=%s err=%s\n",
	       rc, p.state == CP_LIBVIRT_MIG_DONE ? "done" : "failed",
	       (unsigned long long)p.elapsed_ms, (unsigned long long)p.total_ms,
	       (unsigned long long)p.downtime_ms, (unsigned long long)p.data_processed,
	       cp_libvirt_dom_state_name(p.dest_state), err);
	if (!second_done || !aborted) {
		printf("check: the migration ended before the job was seen\n");
		status = 1;
	}
	cp_libvirt_migration_destroy(m);
	cp_libvirt_destroy(lv);
	return rc == 0 ? status : 1;
}
