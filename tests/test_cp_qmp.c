/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_cp_qmp: the QMP client against a scripted fake QEMU on a UNIX socket:
 * greeting and capabilities, replies with events in between, a late answer
 * to another id, QMP errors, a monitor that is not QMP, one that goes silent
 * and one that goes away; the QEMU migration back end's reading of
 * query-migrate. (The integration test drives a real QEMU.)
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "cp_jsonl.h"
#include "cp_migrate.h"
#include "cp_qmp.h"
#include "cp_tcg.h"
#include "nc_config.h"
#include "nc_config_table.h"

#define GREETING                                                                                   \
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 19, \"minor\": 2, \"major\": 7}, "         \
	"\"package\": \"\"}, \"capabilities\": [\"oob\"]}}\n"

static char dir[64], path[96];

/* The fake QEMU: for each step, read one request line (if @p reply[i] wants it),
 * then write the reply with "%ID%" replaced by the request's id. */
struct fake {
	int lfd;
	const char *greeting;
	const char *reply[6];
	bool hold;
	int requests;
};

static void *fake_run(void *arg)
{
	struct fake *f = arg;
	int fd = accept(f->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	if (f->greeting && write(fd, f->greeting, strlen(f->greeting)) < 0)
		goto out;
	for (unsigned i = 0; i < 6 && f->reply[i]; i++) {
		char buf[4096];
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		if (n <= 0)
			goto out;
		buf[n] = '\0';
		f->requests++;
		const char *idp = strstr(buf, "\"id\":");
		long id = idp ? strtol(idp + 5, NULL, 10) : -1;
		char out[1024], idtext[32];
		snprintf(idtext, sizeof(idtext), "%ld", id);
		const char *r = f->reply[i], *m;
		size_t o = 0;
		while ((m = strstr(r, "%ID%")) != NULL && o < sizeof(out) - 64) {
			memcpy(out + o, r, (size_t)(m - r));
			o += (size_t)(m - r);
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%s", idtext);
			r = m + 4;
		}
		snprintf(out + o, sizeof(out) - o, "%s", r);
		if (write(fd, out, strlen(out)) < 0)
			goto out;
	}
	if (f->hold) {
		char buf[512];
		while (read(fd, buf, sizeof(buf)) > 0)
			;
	}
out:
	close(fd);
	return NULL;
}

static pthread_t start_fake(struct fake *f)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	unlink(path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(f->lfd, 1), 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, fake_run, f), 0);
	return t;
}

static void stop_fake(struct fake *f, pthread_t t)
{
	pthread_join(t, NULL);
	close(f->lfd);
	unlink(path);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/nc_test_qmp.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/qmp.sock", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	rmdir(dir);
	return 0;
}

static void test_commands(void **state)
{
	(void)state;
	struct fake f = {
	        .greeting = GREETING,
	        .reply = {"{\"return\": {}, \"id\": %ID%}\n",
	                  /* an event, a late answer to another id, then ours */
	                  "{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1}}\n"
	                  "{\"return\": {\"status\": \"old\"}, \"id\": 999}\n"
	                  "{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": "
	                  "%ID%}\n",
	                  "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no such thing\"}, "
	                  "\"id\": %ID%}\n",
	                  "{\"id\": %ID%}\n"},
	};
	pthread_t t = start_fake(&f);
	char err[256] = "";
	struct cp_qmp *q = cp_qmp_connect(path, 2000, err, sizeof(err));
	assert_non_null(q);
	assert_string_equal(cp_qmp_version(q), "7.2.19");
	json_t *r = NULL;
	assert_int_equal(cp_qmp_cmd(q, "query-status", NULL, &r, 2000, err, sizeof(err)), 0);
	assert_string_equal(json_string_value(json_object_get(r, "status")), "running");
	json_decref(r);
	assert_int_equal(cp_qmp_events(q), 1);
	assert_string_equal(cp_qmp_last_event(q), "STOP");
	json_t *args = json_pack("{s:s}", "uri", "unix:/x");
	assert_int_equal(cp_qmp_cmd(q, "migrate", args, NULL, 2000, err, sizeof(err)), -EREMOTEIO);
	json_decref(args);
	assert_string_equal(err, "QMP migrate: GenericError: no such thing");
	assert_int_equal(cp_qmp_cmd(q, "odd", NULL, NULL, 2000, err, sizeof(err)), -EPROTO);
	cp_qmp_close(q);
	stop_fake(&f, t);
	assert_int_equal(f.requests, 4);
}

static void test_not_qmp(void **state)
{
	(void)state;
	struct fake f = {.greeting = "{\"hello\": 1}\n"};
	pthread_t t = start_fake(&f);
	char err[256] = "";
	assert_null(cp_qmp_connect(path, 2000, err, sizeof(err)));
	assert_int_equal(errno, EPROTO);
	assert_non_null(strstr(err, "does not speak QMP"));
	stop_fake(&f, t);

	struct fake g = {.greeting = "garbage that is not json\n"};
	t = start_fake(&g);
	assert_null(cp_qmp_connect(path, 2000, err, sizeof(err)));
	assert_int_equal(errno, EPROTO);
	stop_fake(&g, t);
}

static void test_silent_and_gone(void **state)
{
	(void)state;
	/* Greets, answers qmp_capabilities, then never answers. */
	struct fake f = {
	        .greeting = GREETING, .reply = {"{\"return\": {}, \"id\": %ID%}\n"}, .hold = true};
	pthread_t t = start_fake(&f);
	char err[256] = "";
	struct cp_qmp *q = cp_qmp_connect(path, 2000, err, sizeof(err));
	assert_non_null(q);
	assert_int_equal(cp_qmp_cmd(q, "query-migrate", NULL, NULL, 200, err, sizeof(err)),
	                 -ETIMEDOUT);
	assert_non_null(strstr(err, "no answer in time"));
	cp_qmp_close(q);
	stop_fake(&f, t);

	/* Goes away after the capabilities. */
	struct fake g = {.greeting = GREETING, .reply = {"{\"return\": {}, \"id\": %ID%}\n"}};
	t = start_fake(&g);
	q = cp_qmp_connect(path, 2000, err, sizeof(err));
	assert_non_null(q);
	pthread_join(t, NULL);
	int rc = cp_qmp_cmd(q, "query-migrate", NULL, NULL, 2000, err, sizeof(err));
	assert_true(rc == -ECONNRESET || rc == -EPIPE);
	assert_non_null(strstr(err, "QEMU closed the monitor"));
	cp_qmp_close(q);
	close(g.lfd);
	unlink(path);

	/* Nobody there at all. */
	assert_null(cp_qmp_connect(path, 500, err, sizeof(err)));
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(err, "is QEMU running"));

	/* A monitor whose backlog is full (it takes one client at a time and
	 * another holds it): refused after the time-out, saying so. */
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(lfd, 0), 0);
	int queued[4], nq = 0;
	for (; nq < 4; nq++) { /* fill the backlog */
		queued[nq] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (connect(queued[nq], (struct sockaddr *)&sun, sizeof(sun)) != 0) {
			assert_int_equal(errno, EAGAIN);
			close(queued[nq]);
			break;
		}
	}
	assert_true(nq < 4);
	assert_null(cp_qmp_connect(path, 300, err, sizeof(err)));
	assert_int_equal(errno, EAGAIN);
	assert_non_null(strstr(err, "one client at a time"));
	for (int i = 0; i < nq; i++)
		close(queued[i]);
	close(lfd);
	unlink(path);
}

static void *write_all(void *arg)
{
	int *fd = arg;
	static char line[300 * 1024 + 64];
	memset(line, 'x', 300 * 1024);
	snprintf(line + 300 * 1024, 64, "\n{\"return\": {}, \"id\": 9}\n");
	size_t n = strlen(line), off = 0;
	while (off < n) {
		ssize_t w = write(*fd, line + off, n - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	return NULL;
}

/* A line longer than CP_JSONL_MAX is refused, and the next line is read
 * whole after it (not the rest of the long one). */
static void test_line_too_long(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, write_all, &sv[1]), 0);
	struct cp_jsonl *io = cp_jsonl_create(sv[0]);
	json_t *m = NULL;
	assert_int_equal(cp_jsonl_recv(io, &m, 3000), -EMSGSIZE);
	assert_int_equal(cp_jsonl_recv(io, &m, 3000), 0);
	assert_int_equal(json_integer_value(json_object_get(m, "id")), 9);
	json_decref(m);
	pthread_join(t, NULL);
	cp_jsonl_destroy(io);
	close(sv[1]);
}

/* The QEMU back end's poll: QEMU 7.2 says "completed" a moment before it has
 * worked out total-time and downtime (0 until then); that is not the end yet. */
static void test_mig_completed_late(void **state)
{
	(void)state;
	struct fake f = {
	        .greeting = GREETING,
	        .reply = {"{\"return\": {}, \"id\": %ID%}\n",
	                  "{\"return\": {\"status\": \"none\"}, \"id\": %ID%}\n",
	                  "{\"return\": {\"status\": \"completed\", \"total-time\": 0, "
	                  "\"downtime\": 0, \"ram\": {\"transferred\": 7}}, \"id\": %ID%}\n",
	                  "{\"return\": {\"status\": \"completed\", \"total-time\": 4321, "
	                  "\"downtime\": 55, \"ram\": {\"transferred\": 9}}, \"id\": %ID%}\n",
	                  /* a destination's own incoming migration: no total-time */
	                  "{\"return\": {\"status\": \"completed\"}, \"id\": %ID%}\n"},
	};
	/* Not asked whether QEMU would lose pages (test_mig_tcg_guard is). */
	struct nc_config *cfg = nc_config_create(nc_config_table, nc_config_table_len);
	assert_non_null(cfg);
	char err[256] = "";
	assert_int_equal(
	        nc_config_set(cfg, "controlplane.tcg_guard", "off", false, err, sizeof(err)), 0);
	pthread_t t = start_fake(&f);
	void *h = cp_mig_qemu.open(path, cfg, 2000, err, sizeof(err));
	assert_non_null(h);
	struct cp_mig_progress p;
	assert_int_equal(cp_mig_qemu.poll(h, &p, err, sizeof(err)), 0);
	assert_int_equal(p.status, CP_MIG_ST_ACTIVE);
	assert_int_equal(p.transferred, 7);
	assert_int_equal(cp_mig_qemu.poll(h, &p, err, sizeof(err)), 0);
	assert_int_equal(p.status, CP_MIG_ST_COMPLETED);
	assert_int_equal(p.total_ms, 4321);
	assert_int_equal(p.downtime_ms, 55);
	assert_int_equal(cp_mig_qemu.poll(h, &p, err, sizeof(err)), 0);
	assert_int_equal(p.status, CP_MIG_ST_NONE);
	cp_mig_qemu.close(h);
	stop_fake(&f, t);
	assert_int_equal(f.requests, 5);
	nc_config_destroy(cfg);
}

/* cp_tcg_loses_pages: only TCG, only before QEMU 9.0, only RAM a multiple
 * of 256 KiB. */
static void test_tcg_rule(void **state)
{
	(void)state;
	char why[512] = "x";
	assert_true(cp_tcg_loses_pages(true, 7002019, 256ull << 20, "", why, sizeof(why)));
	assert_non_null(strstr(why, "it runs under TCG on QEMU 7.2.19 with 262144 KiB of RAM, a "
	                            "multiple of 256 KiB"));
	assert_true(cp_tcg_loses_pages(true, 8999999, 1ull << 40, " (x)", why, sizeof(why)));
	assert_non_null(strstr(why, "QEMU 8.999.999 with 1073741824 KiB of RAM (x), a multiple"));
	assert_true(cp_tcg_loses_pages(true, 7002019, 256 << 10, NULL, why, sizeof(why)));
	assert_false(cp_tcg_loses_pages(false, 7002019, 256ull << 20, "", why, sizeof(why)));
	assert_string_equal(why, "");
	assert_false(
	        cp_tcg_loses_pages(true, CP_TCG_QEMU_FIXED, 256ull << 20, "", why, sizeof(why)));
	assert_false(
	        cp_tcg_loses_pages(true, 7002019, (256ull << 20) - 8192, "", why, sizeof(why)));
	assert_false(cp_tcg_loses_pages(true, 7002019, (256ull << 20) + (128 << 10), "", why,
	                                sizeof(why)));
}

#define QMP_OK(ret) "{\"return\": " ret ", \"id\": %ID%}\n"
#define QMP_IDLE    QMP_OK("{\"status\": \"none\"}")
#define QMP_TCG     QMP_OK("{\"enabled\": false, \"present\": true}")
#define QMP_KVM     QMP_OK("{\"enabled\": true, \"present\": true}")
#define QMP_V(a, b, c)                                                                             \
	QMP_OK("{\"qemu\": {\"major\": " #a ", \"minor\": " #b ", \"micro\": " #c                  \
	       "}, \"package\": \"\"}")
#define QMP_RAM(n) QMP_OK("{\"base-memory\": " #n "}")

/* The QEMU back end asks QEMU (query-kvm, query-version,
 * query-memory-size-summary) before it migrates: a TCG guest of 256 MiB on
 * QEMU 7.2 is refused (controlplane.tcg_guard: refuse, the default); one of
 * 256 MiB - 8 KiB, a KVM guest, QEMU 9.0, or answers it cannot read go on;
 * warn and off let it go. */
static void test_mig_tcg_guard(void **state)
{
	(void)state;
	static const struct {
		const char *guard;
		const char *kvm, *ver, *ram;
		bool refused;
		int requests;
	} cases[] = {
	        {"refuse", QMP_TCG, QMP_V(7, 2, 19), QMP_RAM(268435456), true, 4},
	        {"refuse", QMP_TCG, QMP_V(8, 2, 0), QMP_RAM(1073741824), true, 4},
	        {"refuse", QMP_TCG, QMP_V(7, 2, 19), QMP_RAM(268427264), false, 4},
	        {"refuse", QMP_KVM, QMP_V(7, 2, 19), QMP_RAM(268435456), false, 4},
	        {"refuse", QMP_TCG, QMP_V(9, 0, 0), QMP_RAM(268435456), false, 4},
	        {"refuse", QMP_TCG, QMP_V(7, 2, 19), QMP_OK("{}"), false, 4},
	        {"refuse", QMP_OK("{}"), QMP_V(7, 2, 19), QMP_RAM(268435456), false, 4},
	        {"refuse",
	         "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"no\"}, "
	         "\"id\": %ID%}\n",
	         NULL, NULL, false, 2},
	        {"warn", QMP_TCG, QMP_V(7, 2, 19), QMP_RAM(268435456), false, 4},
	        {"off", NULL, NULL, NULL, false, 1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake f = {
		        .greeting = GREETING,
		        .reply = {"{\"return\": {}, \"id\": %ID%}\n", QMP_IDLE, cases[i].kvm,
		                  cases[i].ver, cases[i].ram},
		};
		struct nc_config *cfg = nc_config_create(nc_config_table, nc_config_table_len);
		assert_non_null(cfg);
		char err[512] = "";
		if (nc_config_set(cfg, "controlplane.tcg_guard", cases[i].guard, false, err,
		                  sizeof(err)))
			fail_msg("%s", err);
		pthread_t t = start_fake(&f);
		errno = 0;
		void *h = cp_mig_qemu.open(path, cfg, 2000, err, sizeof(err));
		if (cases[i].refused) {
			if (h != NULL)
				fail_msg("case %zu: not refused", i);
			assert_int_equal(errno, ENOTSUP);
			assert_non_null(strstr(err, "is not migrated: it runs under TCG on QEMU"));
			assert_non_null(strstr(err, "set controlplane.tcg_guard to warn"));
		} else {
			if (h == NULL)
				fail_msg("case %zu: refused: %s", i, err);
			cp_mig_qemu.close(h);
		}
		stop_fake(&f, t);
		/* the capabilities, query-migrate, then the three questions (or not) */
		if (f.requests != cases[i].requests + 1)
			fail_msg("case %zu: %d requests, want %d", i, f.requests,
			         cases[i].requests + 1);
		nc_config_destroy(cfg);
	}
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_commands, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_not_qmp, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_silent_and_gone, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_mig_completed_late, setup, teardown),
	        cmocka_unit_test(test_tcg_rule),
	        cmocka_unit_test(test_line_too_long),
	        cmocka_unit_test_setup_teardown(test_mig_tcg_guard, setup, teardown),
	};
	return cmocka_run_group_tests_name("cp_qmp", tests, NULL, NULL);
}
