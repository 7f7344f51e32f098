/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_ctl: the control socket protocol and server. Requests are driven both
 * straight through nc_ctl_handle_line and over a real AF_UNIX socket with the
 * client library: typed parameters, every kind of bad request, oversized
 * lines, several requests in one write, a stale socket rebound and a live one
 * refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "nc_ctl.h"
#include "nc_ctl_client.h"

static char dir[64];
static char sock_path[100];

static int echo_fn(const json_t *params, json_t **result, void *arg, char *err, size_t errlen)
{
	(void)err, (void)errlen;
	int *calls = arg;
	(*calls)++;
	*result = json_deep_copy(params);
	return 0;
}

static int fail_fn(const json_t *params, json_t **result, void *arg, char *err, size_t errlen)
{
	(void)params, (void)result, (void)arg;
	snprintf(err, errlen, "the thing is broken");
	return -EIO;
}

static const struct nc_ctl_param echo_params[] = {
        {"name", NC_CTL_STRING, true, "a name"},     {"count", NC_CTL_INT, false, "a count"},
        {"flag", NC_CTL_BOOL, false, "a flag"},      {"ratio", NC_CTL_NUMBER, false, "a number"},
        {"opts", NC_CTL_OBJECT, false, "an object"}, {NULL, 0, false, NULL},
};

static const struct nc_ctl_method test_methods[] = {
        {"test.echo", "echo the parameters", echo_params, echo_fn},
        {"test.fail", "always fails", NULL, fail_fn},
        {NULL, NULL, NULL, NULL},
};

static int calls;

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/nc_test_ctl.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/t.sock", dir);
	calls = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(sock_path);
	rmdir(dir);
	return 0;
}

static struct nc_ctl *make_ctl(void)
{
	struct nc_ctl *ctl = nc_ctl_create(sock_path);
	assert_non_null(ctl);
	assert_int_equal(nc_ctl_register_all(ctl, test_methods, &calls), 0);
	return ctl;
}

/* Handle @p line and return the error code of the reply, or "ok". */
static const char *code_of(struct nc_ctl *ctl, const char *line, json_t **out)
{
	static char code[64];
	json_t *r = nc_ctl_handle_line(ctl, line, strlen(line));
	assert_non_null(r);
	if (json_is_true(json_object_get(r, "ok"))) {
		snprintf(code, sizeof(code), "ok");
	} else {
		json_t *e = json_object_get(r, "error");
		assert_non_null(e);
		const char *msg = json_string_value(json_object_get(e, "message"));
		assert_non_null(msg);
		assert_true(strlen(msg) > 0);
		snprintf(code, sizeof(code), "%s", json_string_value(json_object_get(e, "code")));
	}
	if (out)
		*out = r;
	else
		json_decref(r);
	return code;
}

static void test_dispatch_and_types(void **state)
{
	(void)state;
	struct nc_ctl *ctl = make_ctl();
	json_t *r;
	assert_string_equal(
	        code_of(ctl,
	                "{\"id\": 42, \"method\": \"test.echo\", \"params\": {\"name\": \"x\", "
	                "\"count\": 3, \"flag\": true, \"ratio\": 0.5, \"opts\": {}}}",
	                &r),
	        "ok");
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 42);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "result"), "count")),
	                 3);
	json_decref(r);
	assert_int_equal(calls, 1);
	/* An integer is a number too. */
	assert_string_equal(
	        code_of(ctl, "{\"method\":\"test.echo\",\"params\":{\"name\":\"x\",\"ratio\":2}}",
	                NULL),
	        "ok");
	/* A string id is echoed as given. */
	assert_string_equal(code_of(ctl, "{\"id\":\"abc\",\"method\":\"help\"}", &r), "ok");
	assert_string_equal(json_string_value(json_object_get(r, "id")), "abc");
	json_decref(r);
	nc_ctl_destroy(ctl);
}

static void test_bad_requests(void **state)
{
	(void)state;
	struct nc_ctl *ctl = make_ctl();
	json_t *r;
	assert_string_equal(code_of(ctl, "this is not json", NULL), "parse_error");
	assert_string_equal(code_of(ctl, "{\"method\": \"help\"", NULL), "parse_error");
	assert_string_equal(code_of(ctl, "[1, 2]", NULL), "invalid_request");
	assert_string_equal(code_of(ctl, "\"help\"", NULL), "parse_error");
	assert_string_equal(code_of(ctl, "{}", NULL), "invalid_request");
	assert_string_equal(code_of(ctl, "{\"method\": 7}", NULL), "invalid_request");
	assert_string_equal(code_of(ctl, "{\"method\": \"help\", \"extra\": 1}", NULL),
	                    "invalid_request");
	assert_string_equal(code_of(ctl, "{\"method\":\"help\",\"method\":\"help\"}", NULL),
	                    "parse_error");
	assert_string_equal(code_of(ctl, "{\"method\": \"no.such\"}", &r), "unknown_method");
	assert_non_null(
	        strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")),
	               "no.such"));
	json_decref(r);
	assert_string_equal(code_of(ctl, "{\"method\": \"test.echo\", \"params\": [1]}", NULL),
	                    "invalid_params");
	assert_string_equal(code_of(ctl, "{\"method\": \"test.echo\"}", &r), "invalid_params");
	assert_non_null(
	        strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")),
	               "missing required parameter 'name'"));
	json_decref(r);
	assert_string_equal(
	        code_of(ctl,
	                "{\"method\":\"test.echo\",\"params\":{\"name\":\"x\",\"count\":\"3\"}}",
	                &r),
	        "invalid_params");
	assert_non_null(
	        strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")),
	               "'count' must be an integer, got string"));
	json_decref(r);
	assert_string_equal(
	        code_of(ctl, "{\"method\":\"test.echo\",\"params\":{\"name\":\"x\",\"count\":1.5}}",
	                NULL),
	        "invalid_params");
	assert_string_equal(
	        code_of(ctl, "{\"method\":\"test.echo\",\"params\":{\"name\":\"x\",\"flag\":1}}",
	                NULL),
	        "invalid_params");
	assert_string_equal(
	        code_of(ctl, "{\"method\":\"test.echo\",\"params\":{\"name\":\"x\",\"nope\":1}}",
	                NULL),
	        "invalid_params");
	/* A method name of 2-byte characters, one byte off: the message, cut at
	 * 200 bytes, ends in half a character, and the reply keeps its error. */
	char line[600] = "{\"method\": \"a";
	for (int i = 0; i < 150; i++)
		strcat(line, "\xc3\xa9");
	strcat(line, "\"}");
	assert_string_equal(code_of(ctl, line, &r), "unknown_method");
	assert_non_null(
	        strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")),
	               "unknown method 'a?"));
	json_decref(r);
	assert_string_equal(code_of(ctl, "{\"method\": \"test.fail\"}", &r), "failed");
	assert_non_null(
	        strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")),
	               "the thing is broken"));
	json_decref(r);
	/* None of the bad requests reached the handler. */
	assert_int_equal(calls, 0);
	unsigned long reqs, errs;
	unsigned clients;
	nc_ctl_counters(ctl, &reqs, &errs, &clients);
	assert_int_equal(reqs, 17);
	assert_int_equal(errs, 17);
	nc_ctl_destroy(ctl);
}

static void test_registry(void **state)
{
	(void)state;
	struct nc_ctl *ctl = make_ctl();
	assert_int_equal(nc_ctl_register(ctl, &test_methods[0], NULL), -EEXIST);
	struct nc_ctl_method bad = {"x", NULL, NULL, echo_fn};
	assert_int_equal(nc_ctl_register(ctl, &bad, NULL), -EINVAL);
	json_t *r;
	assert_string_equal(code_of(ctl, "{\"method\": \"help\"}", &r), "ok");
	json_t *methods = json_object_get(json_object_get(r, "result"), "methods");
	assert_int_equal(json_array_size(methods), 3);
	json_decref(r);
	assert_string_equal(
	        code_of(ctl, "{\"method\": \"help\", \"params\": {\"method\": \"test.echo\"}}", &r),
	        "ok");
	methods = json_object_get(json_object_get(r, "result"), "methods");
	assert_int_equal(json_array_size(methods), 1);
	assert_int_equal(json_array_size(json_object_get(json_array_get(methods, 0), "params")), 5);
	json_decref(r);
	assert_string_equal(
	        code_of(ctl, "{\"method\": \"help\", \"params\": {\"method\": \"nope\"}}", NULL),
	        "invalid_params");
	nc_ctl_destroy(ctl);
}

/* A client that shuts its side after its requests (as `printf ... | socat`
 * does) gets every reply, the last request's without a '\n' too, then EOF. */
static void test_half_close(void **state)
{
	(void)state;
	char err[256];
	struct nc_ctl *ctl = make_ctl();
	assert_int_equal(nc_ctl_start(ctl, err, sizeof(err)), 0);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock_path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	const char *req = "{\"id\": 1, \"method\": \"help\"}\n{\"id\": 2, \"method\": \"help\"}";
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	static char buf[1 << 16];
	size_t got = 0;
	for (;;) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		assert_int_equal(poll(&pf, 1, 3000), 1);
		ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
		assert_true(n >= 0);
		if (n == 0)
			break; /* the server closed after the replies */
		got += (size_t)n;
	}
	buf[got] = '\0';
	char *nl = strchr(buf, '\n');
	assert_non_null(nl);
	json_t *r1 = json_loadb(buf, (size_t)(nl - buf), 0, NULL);
	json_t *r2 = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, NULL);
	assert_int_equal(json_integer_value(json_object_get(r1, "id")), 1);
	assert_int_equal(json_integer_value(json_object_get(r2, "id")), 2);
	assert_true(json_is_true(json_object_get(r2, "ok")));
	json_decref(r1);
	json_decref(r2);
	close(fd);
	nc_ctl_destroy(ctl);
}

/* Out of descriptors, accept() fails and the listening socket stays
 * readable: the server rests instead of spinning on it, and serves the
 * waiting client once a descriptor is free. */
static void test_out_of_descriptors(void **state)
{
	(void)state;
	char err[256];
	struct nc_ctl *ctl = make_ctl();
	assert_int_equal(nc_ctl_start(ctl, err, sizeof(err)), 0);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	int lowest = open("/dev/null", O_RDONLY | O_CLOEXEC); /* the lowest free one */
	assert_true(lowest >= 0);
	close(lowest);
	struct rlimit old, low;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)lowest;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock_path);
	int rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	struct timespec half = {.tv_nsec = 500000000};
	nanosleep(&half, NULL);
	getrusage(RUSAGE_SELF, &r1);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(rc, 0);
	long cpu_us = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec -
	               r0.ru_stime.tv_sec) *
	                      1000000L +
	              (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec -
	               r0.ru_stime.tv_usec);
	/* spinning, the server's thread would have burnt about the whole 500 ms */
	assert_true(cpu_us < 200000);
	const char *req = "{\"id\": 7, \"method\": \"help\"}\n";
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	char buf[8192];
	size_t got = 0;
	while (got < sizeof(buf) - 1 && memchr(buf, '\n', got) == NULL) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		assert_int_equal(poll(&pf, 1, 3000), 1);
		ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
	buf[got] = '\0';
	json_t *r = json_loadb(buf, (size_t)((char *)memchr(buf, '\n', got) - buf), 0, NULL);
	assert_non_null(r);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 7);
	assert_true(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	close(fd);
	nc_ctl_destroy(ctl);
}

/* 64 clients at most: the next is told busy (and the client library reads
 * that, not a broken pipe); once one has been idle long enough, a new
 * client takes its place. */
static void test_idle_clients_make_room(void **state)
{
	(void)state;
	char err[256];
	struct nc_ctl *ctl = make_ctl();
	nc_ctl_set_idle_evict_ms(ctl, 1000);
	assert_int_equal(nc_ctl_start(ctl, err, sizeof(err)), 0);
	struct nc_ctl_client *idle[64];
	json_t *res = NULL, *e = NULL;
	for (int i = 0; i < 64; i++) {
		idle[i] = nc_ctl_client_connect(sock_path, 2000);
		assert_non_null(idle[i]);
	}
	/* make sure the server took all 64 before the next one comes */
	assert_int_equal(nc_ctl_client_call(idle[63], "help", NULL, &res, &e, 2000), 0);
	json_decref(res);
	struct nc_ctl_client *c = nc_ctl_client_connect(sock_path, 2000);
	assert_non_null(c);
	int rc = nc_ctl_client_call(c, "help", NULL, &res, &e, 2000);
	assert_int_equal(rc, -EREMOTEIO);
	assert_string_equal(json_string_value(json_object_get(e, "code")), "busy");
	json_decref(e);
	nc_ctl_client_close(c);
	const struct timespec wait = {1, 300000000L};
	nanosleep(&wait, NULL);
	/* idle[63] talked last: one of the others goes */
	c = nc_ctl_client_connect(sock_path, 2000);
	assert_non_null(c);
	assert_int_equal(nc_ctl_client_call(c, "help", NULL, &res, &e, 2000), 0);
	json_decref(res);
	nc_ctl_client_close(c);
	for (int i = 0; i < 64; i++)
		nc_ctl_client_close(idle[i]);
	nc_ctl_destroy(ctl);
}

static void test_socket_roundtrip(void **state)
{
	(void)state;
	char err[256];
	struct nc_ctl *ctl = make_ctl();
	assert_int_equal(nc_ctl_start(ctl, err, sizeof(err)), 0);
	struct stat st;
	assert_int_equal(stat(sock_path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);

	struct nc_ctl_client *c = nc_ctl_client_connect(sock_path, 2000);
	assert_non_null(c);
	json_t *params = json_pack("{s:s}", "name", "over the socket");
	json_t *res = NULL, *e = NULL;
	assert_int_equal(nc_ctl_client_call(c, "test.echo", params, &res, &e, 2000), 0);
	assert_string_equal(json_string_value(json_object_get(res, "name")), "over the socket");
	json_decref(res);
	json_decref(params);
	assert_int_equal(nc_ctl_client_call(c, "test.fail", NULL, &res, &e, 2000), -EREMOTEIO);
	assert_string_equal(json_string_value(json_object_get(e, "code")), "failed");
	json_decref(e);

	/* Garbage, then a good request on the same connection: still served. */
	json_t *reply = NULL;
	assert_int_equal(nc_ctl_client_raw(c, "\x01\x02garbage", 9, &reply, 2000), 0);
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(reply, "error"), "code")),
	        "parse_error");
	json_decref(reply);
	assert_int_equal(nc_ctl_client_call(c, "help", NULL, &res, &e, 2000), 0);
	json_decref(res);

	/* Two requests in one write get two replies, in order. */
	const char *two = "{\"id\":1,\"method\":\"help\"}\n{\"id\":2,\"method\":\"nope\"}";
	assert_int_equal(nc_ctl_client_raw(c, two, strlen(two), &reply, 2000), 0);
	assert_int_equal(json_integer_value(json_object_get(reply, "id")), 1);
	json_decref(reply);
	/* The second reply is already buffered: read it with an empty line (ignored). */
	assert_int_equal(nc_ctl_client_raw(c, "", 0, &reply, 2000), 0);
	assert_int_equal(json_integer_value(json_object_get(reply, "id")), 2);
	json_decref(reply);

	/* An oversized line is refused, and the connection still works after it. */
	size_t big = NC_CTL_MAX_LINE + 100;
	char *line = malloc(big);
	assert_non_null(line);
	memset(line, 'x', big);
	assert_int_equal(nc_ctl_client_raw(c, line, big, &reply, 5000), 0);
	free(line);
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(reply, "error"), "code")),
	        "too_large");
	json_decref(reply);
	assert_int_equal(nc_ctl_client_call(c, "help", NULL, &res, &e, 2000), 0);
	json_decref(res);

	/* A second server on a live socket is refused. */
	struct nc_ctl *other = nc_ctl_create(sock_path);
	assert_int_equal(nc_ctl_start(other, err, sizeof(err)), -EADDRINUSE);
	assert_non_null(strstr(err, "another process"));
	nc_ctl_destroy(other);

	nc_ctl_client_close(c);
	nc_ctl_destroy(ctl);
	/* Stopping removes the socket file. */
	assert_int_not_equal(stat(sock_path, &st), 0);
}

static void test_stale_socket_rebound(void **state)
{
	(void)state;
	/* A socket file nobody listens on, as a killed process leaves it. */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock_path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	char err[256];
	struct nc_ctl *ctl = make_ctl();
	assert_int_equal(nc_ctl_start(ctl, err, sizeof(err)), 0);
	struct nc_ctl_client *c = nc_ctl_client_connect(sock_path, 2000);
	assert_non_null(c);
	json_t *res = NULL, *e = NULL;
	assert_int_equal(nc_ctl_client_call(c, "help", NULL, &res, &e, 2000), 0);
	json_decref(res);
	nc_ctl_client_close(c);
	nc_ctl_destroy(ctl);

	/* A regular file in the way is not removed. */
	FILE *f = fopen(sock_path, "w");
	assert_non_null(f);
	fclose(f);
	ctl = make_ctl();
	assert_int_equal(nc_ctl_start(ctl, err, sizeof(err)), -EEXIST);
	nc_ctl_destroy(ctl);
	unlink(sock_path);
}

static void test_client_errors(void **state)
{
	(void)state;
	errno = 0;
	assert_null(nc_ctl_client_connect(sock_path, 500));
	assert_int_equal(errno, ENOENT);
	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	assert_null(nc_ctl_create(longp));
	assert_int_equal(errno, ENAMETOOLONG);
	assert_null(nc_ctl_create(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_dispatch_and_types, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_registry, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_socket_roundtrip, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_out_of_descriptors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_half_close, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_stale_socket_rebound, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_client_errors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_idle_clients_make_room, setup, teardown),
	};
	return cmocka_run_group_tests_name("ctl", tests, NULL, NULL);
}
