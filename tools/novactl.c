/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * novactl: the operators' and orchestrators' CLI of the control socket.
 * Prints answers as readable tables, or as the raw JSON result with --json.
 *
 * Exit codes (scripts may rely on them):
 *   0  the method succeeded (health: ok)
 *   1  the method answered an error
 *   2  usage error
 *   3  cannot reach the socket, time-out, or a reply that is not JSON
 *   4  health: degraded
 *   5  health: failed
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nc_ctl_client.h"

enum {
	EX_OK = 0,
	EX_METHOD = 1,
	EX_USAGE = 2,
	EX_TRANSPORT = 3,
	EX_DEGRADED = 4,
	EX_FAILED = 5,
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: novactl [options] COMMAND [ARGS]\n"
	        "\n"
	        "commands:\n"
	        "  status                  process state and counters\n"
	        "  health                  components' health (exit 4 degraded, 5 failed)\n"
	        "  boot-report             per-component and per-phase boot times\n"
	        "  config get [KEY]        configuration keys, or one\n"
	        "  config set KEY VALUE    change a run-time key\n"
	        "  dp ping [COUNT]         round trips through the rings to the dataplane\n"
	        "  session open|list|stats|set|close ...  AMST sessions\n"
	        "  session open NAME send|receive PEER ADDR [RATE_MBPS]\n"
	        "                          ADDR: unix:PATH, tcp:IP:PORT, or test streams to\n"
	        "                          check a link: test:N[:BYTES] (send), test: (receive)\n"
	        "  migrate VM --to HOST --dest unix:PATH [--channels N] [--rate MBPS]\n"
	        "          [--codec hde|none] [--no-wait]\n"
	        "                          migrate the QEMU whose QMP socket is VM to HOST "
	        "through\n"
	        "                          the appliances; waits, with progress, unless --no-wait\n"
	        "  migrate libvirt:DOMAIN --to HOST [--channels N] [...]\n"
	        "                          the same for a domain of this host's libvirtd "
	        "(--dest:\n"
	        "                          optional, the socket path on both hosts)\n"
	        "  migrate status [ID|VM]  a migration's state (default: the latest)\n"
	        "  migrate cancel ID|VM    cancel a running migration\n"
	        "  migrate list            migrations, running and finished\n"
	        "  shutdown                stop the process cleanly\n"
	        "  help [METHOD]           the methods the process serves\n"
	        "  call METHOD [PARAMS]    any method, PARAMS a JSON object\n"
	        "  raw LINE                send LINE as it is and print the reply\n"
	        "\n"
	        "options:\n"
	        "  -s, --socket PATH       control socket (default $NOVACRON_SOCKET or\n"
	        "                          /run/novacron/cp.sock)\n"
	        "  -r, --runtime-dir DIR   use DIR/cp.sock (DIR/dp.sock with --dp)\n"
	        "      --dp                talk to the dataplane's socket instead\n"
	        "  -j, --json              print the JSON result\n"
	        "  -t, --timeout MS        per request (default 5000)\n"
	        "  -h, --help              this text\n"
	        "\n"
	        "exit codes: 0 ok, 1 method error, 2 usage, 3 transport, 4 degraded, 5 failed\n");
}

/* ---- tables ---- */

static void print_scalar(FILE *f, const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		fputs(json_string_value(v), f);
		break;
	case JSON_INTEGER:
		fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		fprintf(f, "%.3f", json_real_value(v));
		break;
	case JSON_TRUE:
		fputs("true", f);
		break;
	case JSON_FALSE:
		fputs("false", f);
		break;
	case JSON_NULL:
		fputs("-", f);
		break;
	default: {
		char *s = json_dumps(v, JSON_COMPACT);
		fputs(s ? s : "?", f);
		free(s);
	}
	}
}

static char *scalar_text(const json_t *v)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL)
		return strdup("?");
	if (v == NULL)
		fputs("", f);
	else
		print_scalar(f, v);
	fclose(f);
	return buf;
}

static bool is_table(const json_t *a)
{
	if (!json_is_array(a) || json_array_size(a) == 0)
		return false;
	size_t i;
	json_t *it;
	json_array_foreach (a, i, it)
		if (!json_is_object(it))
			return false;
	return true;
}

/* An array of objects as a table: one column per scalar member. */
static void print_table(const json_t *a, int indent)
{
	const char *cols[32];
	size_t ncol = 0, widths[32];
	size_t i;
	json_t *row;
	json_array_foreach (a, i, row) {
		const char *k;
		json_t *v;
		json_object_foreach ((json_t *)row, k, v) {
			if (json_is_object(v) || is_table(v))
				continue;
			size_t c = 0;
			while (c < ncol && strcmp(cols[c], k) != 0)
				c++;
			if (c == ncol && ncol < 32) {
				cols[ncol] = k;
				widths[ncol] = strlen(k);
				ncol++;
			}
		}
	}
	json_array_foreach (a, i, row) {
		for (size_t c = 0; c < ncol; c++) {
			char *t = scalar_text(json_object_get(row, cols[c]));
			if (strlen(t) > widths[c])
				widths[c] = strlen(t) > 60 ? 60 : strlen(t);
			free(t);
		}
	}
	printf("%*s", indent, "");
	for (size_t c = 0; c < ncol; c++)
		printf("%-*s  ", (int)widths[c], cols[c]);
	printf("\n");
	json_array_foreach (a, i, row) {
		printf("%*s", indent, "");
		for (size_t c = 0; c < ncol; c++) {
			char *t = scalar_text(json_object_get(row, cols[c]));
			printf("%-*s  ", (int)widths[c], t);
			free(t);
		}
		printf("\n");
	}
}

static void print_object(const json_t *o, int indent)
{
	size_t w = 0;
	const char *k;
	json_t *v;
	json_object_foreach ((json_t *)o, k, v)
		if (strlen(k) > w)
			w = strlen(k);
	json_object_foreach ((json_t *)o, k, v) {
		if (json_is_object(v)) {
			printf("%*s%s:\n", indent, "", k);
			print_object(v, indent + 2);
		} else if (is_table(v)) {
			printf("%*s%s:\n", indent, "", k);
			print_table(v, indent + 2);
		} else {
			printf("%*s%-*s  ", indent, "", (int)w, k);
			print_scalar(stdout, v);
			printf("\n");
		}
	}
}

static void print_result(const json_t *r, bool as_json)
{
	if (as_json) {
		char *s = json_dumps(r, JSON_INDENT(2) | JSON_ENCODE_ANY);
		printf("%s\n", s ? s : "null");
		free(s);
	} else if (json_is_object(r)) {
		print_object(r, 0);
	} else if (is_table(r)) {
		print_table(r, 0);
	} else {
		print_scalar(stdout, r);
		printf("\n");
	}
}

/* ---- migrate ---- */

static int parse_rate(const char *text, double *out)
{
	char *end;
	double r = strtod(text, &end);
	/* NaN, infinities and overflow cannot go into JSON */
	if (*text == '\0' || *end != '\0' || !isfinite(r) || r < 0 || r > 1e9) {
		fprintf(stderr, "novactl: RATE_MBPS must be a number from 0 to 1e9, got '%s'\n",
		        text);
		return -1;
	}
	*out = r;
	return 0;
}

static void human_bytes(double b, char *out, size_t len)
{
	const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int i = 0;
	while (b >= 1024 && i < 4) {
		b /= 1024;
		i++;
	}
	snprintf(out, len, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

static double jnum(const json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

static const char *jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* One line of progress: a bar on a TTY, plain text otherwise. */
static void progress_line(const json_t *st, bool tty)
{
	double total = jnum(st, "ram_total"), rem = jnum(st, "ram_remaining");
	double sent = jnum(st, "ram_transferred"), mbps = jnum(st, "qemu_mbps");
	double wire = jnum(st, "wire_bytes"), wmbps = jnum(st, "wire_mbps");
	/* compression: stream bytes read from QEMU per byte sent on the wire
	 * (headers included, so a little under 1 without a codec) */
	double stream = jnum(st, "stream_bytes");
	char comp[16] = "-";
	if (wire > 0 && stream > 0)
		snprintf(comp, sizeof(comp), "%.2fx", stream / wire);
	double done = total > 0 ? (total - rem) / total : 0;
	if (done < 0)
		done = 0;
	char sb[32], wb[32], eta[32] = "-";
	human_bytes(sent, sb, sizeof(sb));
	human_bytes(wire, wb, sizeof(wb));
	if (mbps > 0 && total > 0)
		snprintf(eta, sizeof(eta), "%.0fs", rem * 8 / (mbps * 1e6));
	const char *state = jstr(st, "state");
	if (tty) {
		char bar[31];
		int fill = (int)(done * 30);
		for (int i = 0; i < 30; i++)
			bar[i] = i < fill ? '#' : '-';
		bar[30] = '\0';
		printf("\r[%s] %3.0f%% %10s %6.0f Mbit/s  wire %10s %6.0f Mbit/s  comp %-6s ETA "
		       "%-5s "
		       "%-10s",
		       bar, done * 100, sb, mbps, wb, wmbps, comp, eta, state);
	} else {
		printf("%s %.0f%% sent %s at %.0f Mbit/s, wire %s at %.0f Mbit/s, compression %s, "
		       "remaining %.0f bytes, ETA %s\n",
		       state, done * 100, sb, mbps, wb, wmbps, comp, rem, eta);
	}
	fflush(stdout);
}

static int call(const char *path, const char *method, json_t *params, json_t **result, int timeout,
                const char **msg, json_t **errobj)
{
	struct nc_ctl_client *cl = nc_ctl_client_connect(path, timeout);
	if (cl == NULL) {
		fprintf(stderr, "novactl: cannot connect to %s: %s\n", path, strerror(errno));
		return EX_TRANSPORT;
	}
	int rc = nc_ctl_client_call(cl, method, params, result, errobj, timeout);
	nc_ctl_client_close(cl);
	if (rc == -EREMOTEIO) {
		*msg = json_string_value(json_object_get(*errobj, "message"));
		return EX_METHOD;
	}
	if (rc != 0) {
		fprintf(stderr, "novactl: %s: %s\n", path,
		        rc == -ETIMEDOUT ? "no answer in time" : strerror(-rc));
		return EX_TRANSPORT;
	}
	return EX_OK;
}

/* novactl migrate VM --to HOST --dest ADDR [...]: start, then follow until the end. */
static int cmd_migrate(const char *path, int argc, char **argv, int timeout, bool as_json)
{
	const char *vm = NULL, *to = NULL, *dest = NULL, *codec = "hde";
	long channels = 0;
	double rate = 0;
	bool wait = true;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		bool has = i + 1 < argc;
		if (strcmp(a, "--to") == 0 && has) {
			to = argv[++i];
		} else if (strcmp(a, "--dest") == 0 && has) {
			dest = argv[++i];
		} else if (strcmp(a, "--channels") == 0 && has) {
			char *end;
			channels = strtol(argv[++i], &end, 10);
			if (*argv[i] == '\0' || *end != '\0' || channels < 0) {
				fprintf(stderr,
				        "novactl: --channels wants a number >= 0, got '%s'\n",
				        argv[i]);
				return EX_USAGE;
			}
		} else if (strcmp(a, "--rate") == 0 && has) {
			if (parse_rate(argv[++i], &rate) != 0)
				return EX_USAGE;
		} else if (strcmp(a, "--codec") == 0 && has) {
			codec = argv[++i];
		} else if (strcmp(a, "--no-wait") == 0) {
			wait = false;
		} else if (a[0] != '-' && vm == NULL) {
			vm = a;
		} else {
			fprintf(stderr, "novactl: migrate: unknown or incomplete option '%s'\n", a);
			return EX_USAGE;
		}
	}
	bool lv = vm != NULL && strncmp(vm, "libvirt:", 8) == 0;
	if (vm == NULL || to == NULL || (dest == NULL && !lv)) {
		fprintf(stderr, "novactl: migrate VM --to HOST --dest unix:PATH [--channels N] "
		                "[--rate MBPS] [--codec hde|none] [--no-wait]\n"
		                "         migrate libvirt:DOMAIN --to HOST [--dest unix:PATH] "
		                "[--channels N] [--rate MBPS] [--codec hde|none] [--no-wait]\n");
		return EX_USAGE;
	}
	json_t *params = json_pack("{s:s, s:s, s:I, s:f, s:s}", "vm", vm, "to", to, "channels",
	                           (json_int_t)channels, "rate_mbps", rate, "codec", codec);
	if (dest != NULL)
		json_object_set_new(params, "dest", json_string(dest));
	json_t *res = NULL, *eo = NULL;
	const char *msg = NULL;
	int code = call(path, "migrate.start", params, &res, timeout, &msg, &eo);
	json_decref(params);
	if (code == EX_METHOD) {
		fprintf(stderr, "novactl: migrate: %s\n", msg ? msg : "error");
		json_decref(eo);
		return code;
	}
	if (code != EX_OK)
		return code;
	char id[64];
	snprintf(id, sizeof(id), "%s", jstr(res, "id"));
	if (!wait) {
		print_result(res, as_json);
		json_decref(res);
		return EX_OK;
	}
	bool tty = !as_json && isatty(STDOUT_FILENO);
	if (!as_json)
		printf("migration %s: %s -> %s (%s)\n", id, vm, to,
		       dest ? dest : jstr(res, "dest"));
	json_decref(res);
	long long last_line = 0;
	json_t *st = NULL;
	for (;;) {
		struct timespec ts = {.tv_nsec = tty ? 200000000 : 250000000};
		nanosleep(&ts, NULL);
		json_t *p = json_pack("{s:s}", "id", id);
		json_decref(st);
		st = NULL;
		code = call(path, "migrate.status", p, &st, timeout, &msg, &eo);
		json_decref(p);
		if (code == EX_METHOD) {
			fprintf(stderr, "novactl: migrate: %s\n", msg ? msg : "error");
			json_decref(eo);
			return code;
		}
		if (code != EX_OK)
			return code;
		const char *state = jstr(st, "state");
		bool end = strcmp(state, "completed") == 0 || strcmp(state, "failed") == 0 ||
		           strcmp(state, "cancelled") == 0;
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long long ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
		if (!as_json && (tty || end || ms - last_line >= 1000)) {
			progress_line(st, tty);
			last_line = ms;
		}
		if (end)
			break;
	}
	if (tty)
		printf("\n");
	const char *state = jstr(st, "state");
	json_t *dok = json_object_get(st, "digest_ok");
	bool ok = strcmp(state, "completed") == 0 && json_is_true(dok);
	if (as_json) {
		print_result(st, true);
	} else {
		char wb[32];
		human_bytes(jnum(st, "wire_bytes"), wb, sizeof(wb));
		printf("%s: total %.0f ms, downtime %.0f ms, wire %s, %zu streams, digests %s, "
		       "source VM %s\n",
		       state, jnum(st, "total_ms"), jnum(st, "downtime_ms"), wb,
		       json_array_size(json_object_get(st, "streams")),
		       json_is_true(dok)    ? "equal"
		       : json_is_false(dok) ? "DIFFER"
		                            : "-",
		       jstr(st, "source_vm"));
	}
	if (!ok)
		fprintf(stderr, "novactl: migration %s %s: %s\n", id, state,
		        jstr(st, "error")[0]              ? jstr(st, "error")
		        : strcmp(state, "completed") == 0 ? "stream digests not equal"
		                                          : "no reason was given");
	json_decref(st);
	return ok ? EX_OK : EX_METHOD;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"socket", required_argument, NULL, 's'},
	        {"runtime-dir", required_argument, NULL, 'r'},
	        {"dp", no_argument, NULL, 'd'},
	        {"json", no_argument, NULL, 'j'},
	        {"timeout", required_argument, NULL, 't'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *socket_path = getenv("NOVACRON_SOCKET");
	const char *runtime_dir = NULL;
	bool dp = false, as_json = false;
	int timeout = 5000;
	int c;
	while ((c = getopt_long(argc, argv, "+s:r:jt:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			socket_path = optarg;
			break;
		case 'r':
			runtime_dir = optarg;
			break;
		case 'd':
			dp = true;
			break;
		case 'j':
			as_json = true;
			break;
		case 't': {
			char *end;
			long t = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || t < 1 || t > 3600000) {
				fprintf(stderr, "novactl: --timeout wants 1-3600000 ms, got '%s'\n",
				        optarg);
				return EX_USAGE;
			}
			timeout = (int)t;
			break;
		}
		case 'h':
			usage(stdout);
			return EX_OK;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return EX_USAGE;
	}
	char path[PATH_MAX];
	if (runtime_dir != NULL || dp || socket_path == NULL) {
		snprintf(path, sizeof(path), "%s/%s.sock",
		         runtime_dir ? runtime_dir : "/run/novacron", dp ? "dp" : "cp");
		socket_path = path;
	}

	const char *method = NULL;
	json_t *params = NULL;
	const char *raw = NULL;
	const char *cmd = argv[0];
	if (strcmp(cmd, "status") == 0 && argc == 1) {
		method = "status";
	} else if (strcmp(cmd, "health") == 0 && argc == 1) {
		method = "health";
	} else if ((strcmp(cmd, "boot-report") == 0 || strcmp(cmd, "boot.report") == 0) &&
	           argc == 1) {
		method = "boot.report";
	} else if (strcmp(cmd, "shutdown") == 0 && argc == 1) {
		method = "shutdown";
	} else if (strcmp(cmd, "help") == 0 && argc <= 2) {
		method = "help";
		if (argc == 2)
			params = json_pack("{s:s}", "method", argv[1]);
	} else if (strcmp(cmd, "config") == 0 && argc >= 2 && strcmp(argv[1], "get") == 0 &&
	           argc <= 3) {
		method = "config.get";
		if (argc == 3)
			params = json_pack("{s:s}", "key", argv[2]);
	} else if (strcmp(cmd, "config") == 0 && argc == 4 && strcmp(argv[1], "set") == 0) {
		method = "config.set";
		params = json_pack("{s:s, s:s}", "key", argv[2], "value", argv[3]);
	} else if (strcmp(cmd, "dp") == 0 && argc >= 2 && strcmp(argv[1], "ping") == 0 &&
	           argc <= 3) {
		method = "dp.ping";
		if (argc == 3) {
			char *end;
			long n = strtol(argv[2], &end, 10);
			if (*argv[2] == '\0' || *end != '\0') {
				fprintf(stderr,
				        "novactl: dp ping COUNT must be a number, got '%s'\n",
				        argv[2]);
				return EX_USAGE;
			}
			params = json_pack("{s:I}", "count", (json_int_t)n);
		}
	} else if (strcmp(cmd, "session") == 0 && argc >= 2) {
		const char *sub = argv[1];
		if (strcmp(sub, "list") == 0 && argc == 2) {
			method = "session.list";
		} else if ((strcmp(sub, "stats") == 0 || strcmp(sub, "close") == 0) && argc == 3) {
			method = strcmp(sub, "stats") == 0 ? "session.stats" : "session.close";
			params = json_pack("{s:s}", "name", argv[2]);
		} else if (strcmp(sub, "set") == 0 && argc == 4) {
			double r;
			if (parse_rate(argv[3], &r) != 0)
				return EX_USAGE;
			method = "session.set";
			params = json_pack("{s:s, s:f}", "name", argv[2], "rate_mbps", r);
		} else if (strcmp(sub, "open") == 0 && (argc == 6 || argc == 7)) {
			method = "session.open";
			params = json_pack("{s:s, s:s, s:s, s:s}", "name", argv[2], "role", argv[3],
			                   "peer", argv[4],
			                   strcmp(argv[3], "receive") == 0 ? "connect" : "listen",
			                   argv[5]);
			if (argc == 7) {
				double r;
				if (parse_rate(argv[6], &r) != 0) {
					json_decref(params);
					return EX_USAGE;
				}
				json_object_set_new(params, "rate_mbps", json_real(r));
			}
		} else {
			fprintf(stderr,
			        "novactl: session: unknown subcommand or wrong arguments\n");
			usage(stderr);
			return EX_USAGE;
		}
	} else if (strcmp(cmd, "migrate") == 0 && argc >= 2) {
		const char *sub = argv[1];
		if (strcmp(sub, "list") == 0 && argc == 2) {
			method = "migrate.list";
		} else if (strcmp(sub, "status") == 0 && argc <= 3) {
			method = "migrate.status";
			if (argc == 3)
				params = json_pack("{s:s}", "id", argv[2]);
		} else if (strcmp(sub, "cancel") == 0 && argc == 3) {
			method = "migrate.cancel";
			params = json_pack("{s:s}", "id", argv[2]);
		} else {
			return cmd_migrate(socket_path, argc - 1, argv + 1, timeout, as_json);
		}
	} else if (strcmp(cmd, "call") == 0 && (argc == 2 || argc == 3)) {
		method = argv[1];
		if (argc == 3) {
			json_error_t jerr;
			params = json_loads(argv[2], 0, &jerr);
			if (params == NULL) {
				fprintf(stderr, "novactl: PARAMS is not JSON: %s\n", jerr.text);
				return EX_USAGE;
			}
		}
	} else if (strcmp(cmd, "raw") == 0 && argc == 2) {
		raw = argv[1];
	} else {
		fprintf(stderr, "novactl: unknown command or wrong arguments: %s\n", cmd);
		usage(stderr);
		return EX_USAGE;
	}

	struct nc_ctl_client *cl = nc_ctl_client_connect(socket_path, timeout);
	if (cl == NULL) {
		fprintf(stderr, "novactl: cannot connect to %s: %s\n", socket_path,
		        strerror(errno));
		json_decref(params);
		return EX_TRANSPORT;
	}
	int code;
	if (raw != NULL) {
		json_t *reply = NULL;
		int rc = nc_ctl_client_raw(cl, raw, strlen(raw), &reply, timeout);
		if (rc != 0) {
			fprintf(stderr, "novactl: %s: %s\n", socket_path, strerror(-rc));
			code = EX_TRANSPORT;
		} else {
			char *s = json_dumps(reply, JSON_COMPACT);
			printf("%s\n", s);
			free(s);
			code = json_is_true(json_object_get(reply, "ok")) ? EX_OK : EX_METHOD;
		}
		json_decref(reply);
		nc_ctl_client_close(cl);
		return code;
	}
	json_t *result = NULL, *err = NULL;
	int rc = nc_ctl_client_call(cl, method, params, &result, &err, timeout);
	nc_ctl_client_close(cl);
	json_decref(params);
	if (rc == -EREMOTEIO) {
		const char *ecode = json_string_value(json_object_get(err, "code"));
		const char *msg = json_string_value(json_object_get(err, "message"));
		if (as_json) {
			char *s = json_dumps(err, JSON_COMPACT);
			printf("%s\n", s);
			free(s);
		}
		fprintf(stderr, "novactl: %s: %s (%s)\n", method, msg ? msg : "error",
		        ecode ? ecode : "?");
		json_decref(err);
		return EX_METHOD;
	}
	if (rc != 0) {
		fprintf(stderr, "novactl: %s: %s\n", socket_path,
		        rc == -ETIMEDOUT ? "no answer in time" : strerror(-rc));
		return EX_TRANSPORT;
	}
	print_result(result, as_json);
	code = EX_OK;
	if (strcmp(method, "health") == 0) {
		const char *s = json_string_value(json_object_get(result, "status"));
		if (s && strcmp(s, "degraded") == 0)
			code = EX_DEGRADED;
		else if (s == NULL || strcmp(s, "ok") != 0)
			code = EX_FAILED;
	}
	json_decref(result);
	return code;
}
