/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_idle: CPU used by an idle novacron-dp, adaptive polling against busy
 * polling in the same run: the same process is measured for --seconds (10)
 * in each mode, switched at run time through config.set. CPU is the process's
 * utime + stime from /proc, in percent of one core. Prints a table, then one
 * line of JSON: {"bench": "idle", "adaptive_cpu_pct", "busy_cpu_pct", ...}.
 * Usage: bench_idle [--build DIR] [--seconds N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"

#define GOAL_PCT 5.0

static int set_mode(const struct bench_env *e, const char *mode)
{
	json_t *p = json_pack("{s:s, s:s}", "key", "dataplane.poll_mode", "value", mode);
	json_t *r = bench_call(e, "dp", "config.set", p);
	json_decref(p);
	if (r == NULL)
		return -1;
	json_decref(r);
	return 0;
}

static double measure(pid_t pid, int seconds, double *wall)
{
	double c0 = bench_cpu_seconds(pid), t0 = bench_now_ms();
	sleep((unsigned)seconds);
	double c1 = bench_cpu_seconds(pid), t1 = bench_now_ms();
	*wall = (t1 - t0) / 1e3;
	return c0 < 0 || c1 < 0 ? -1 : 100.0 * (c1 - c0) / *wall;
}

static json_t *worker_counters(const struct bench_env *e)
{
	json_t *st = bench_call(e, "dp", "status", NULL);
	json_t *w = st ? json_incref(json_array_get(json_object_get(st, "workers"), 0)) : NULL;
	json_decref(st);
	return w;
}

int main(int argc, char **argv)
{
	int seconds = 10;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atoi(argv[++i]);
	if (seconds < 1 || seconds > 600) {
		fprintf(stderr, "bench_idle: --seconds must be 1-600\n");
		return 2;
	}
	struct bench_env env;
	if (bench_env_init(&env, argc, argv) != 0) {
		perror("bench_idle");
		return 1;
	}
	double t0 = bench_now_ms();
	pid_t dp = bench_spawn(&env, "dp", NULL);
	if (bench_wait_ready(&env, "dp", dp, t0, 20000) < 0) {
		fprintf(stderr, "bench_idle: novacron-dp did not come up (see %s/dp.log)\n",
		        env.dir);
		bench_stop(dp);
		bench_env_fini(&env);
		return 1;
	}
	printf("idle: novacron-dp CPU with no traffic (1 worker lcore, memif port), %d s per "
	       "mode\n\n",
	       seconds);
	sleep(1); /* let the boot settle */
	double wall_a, wall_b;
	json_t *w0 = worker_counters(&env);
	double adaptive = measure(dp, seconds, &wall_a);
	json_t *w1 = worker_counters(&env);
	if (set_mode(&env, "busy") != 0) {
		fprintf(stderr, "bench_idle: cannot switch to busy polling\n");
		return 1;
	}
	usleep(200000);
	double busy = measure(dp, seconds, &wall_b);
	set_mode(&env, "adaptive");
	int rc = bench_stop(dp);
	if (adaptive < 0 || busy < 0 || rc != 0) {
		fprintf(stderr, "bench_idle: measurement failed (stop %d)\n", rc);
		bench_env_fini(&env);
		return 1;
	}
	double loops = (double)(json_integer_value(json_object_get(w1, "loops")) -
	                        json_integer_value(json_object_get(w0, "loops")));
	double sleeps = (double)(json_integer_value(json_object_get(w1, "sleeps")) -
	                         json_integer_value(json_object_get(w0, "sleeps")));
	printf("  %-10s  %10s  %14s\n", "mode", "CPU % core", "worker loops/s");
	printf("  %-10s  %10.2f  %14.0f\n", "adaptive", adaptive, loops / wall_a);
	printf("  %-10s  %10.2f  %14s\n", "busy", busy, "(spinning)");
	printf("\n  adaptive uses %.1f%% of what busy polling uses; goal < %.0f%% of a core; "
	       "adaptive worker slept %.0f times/s\n",
	       busy > 0 ? 100.0 * adaptive / busy : 0, GOAL_PCT, sleeps / wall_a);
	json_t *j = json_pack("{s:s, s:i, s:f, s:f, s:f, s:f}", "bench", "idle", "seconds", seconds,
	                      "adaptive_cpu_pct", adaptive, "busy_cpu_pct", busy, "goal_pct",
	                      GOAL_PCT, "adaptive_loops_per_s", loops / wall_a);
	char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(5));
	printf("\n%s\n", s);
	free(s);
	json_decref(j);
	json_decref(w0);
	json_decref(w1);
	bench_env_fini(&env);
	return 0;
}
