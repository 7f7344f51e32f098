/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_boot: process start to "ready on the control socket" for novacron-dp
 * and novacron-cp, over repeated runs, with each phase's and component's time
 * from the boot reports. Prints a table, then one line of JSON:
 * {"bench": "boot", "dp_ready_ms", "cp_ready_ms" (medians), ...}.
 * Usage: bench_boot [--build DIR] [--runs N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "bench_util.h"

#define MAX_RUNS  100
#define MAX_NAMES 16
#define GOAL_MS   1000.0

struct series {
	const char *names[MAX_NAMES];
	double v[MAX_NAMES][MAX_RUNS];
	int n;
};

static void record(struct series *s, const char *name, int run, double ms)
{
	int i = 0;
	while (i < s->n && strcmp(s->names[i], name) != 0)
		i++;
	if (i == s->n) {
		if (s->n == MAX_NAMES)
			return;
		s->names[s->n++] = strdup(name);
	}
	s->v[i][run] = ms;
}

static void record_report(json_t *rep, struct series *phases, struct series *comps, int run)
{
	size_t i;
	json_t *it;
	json_array_foreach (json_object_get(rep, "phases"), i, it)
		record(phases, json_string_value(json_object_get(it, "name")), run,
		       json_number_value(json_object_get(it, "duration_ms")));
	json_array_foreach (json_object_get(rep, "components"), i, it)
		record(comps, json_string_value(json_object_get(it, "name")), run,
		       json_number_value(json_object_get(it, "duration_ms")));
}

static json_t *medians(struct series *s, int runs, const char *title)
{
	json_t *o = json_object();
	printf("  %s\n", title);
	for (int i = 0; i < s->n; i++) {
		double m = bench_median(s->v[i], runs);
		printf("    %-16s %9.2f ms\n", s->names[i], m);
		json_object_set_new(o, s->names[i], json_real(m));
	}
	return o;
}

int main(int argc, char **argv)
{
	int runs = 10;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = atoi(argv[++i]);
	if (runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr, "bench_boot: --runs must be 1-%d\n", MAX_RUNS);
		return 2;
	}
	struct bench_env env;
	if (bench_env_init(&env, argc, argv) != 0) {
		perror("bench_boot");
		return 1;
	}
	static struct series dp_ph, dp_co, cp_ph, cp_co;
	double dp_ready[MAX_RUNS], cp_ready[MAX_RUNS];
	int fails = 0;
	printf("boot: start to ready on the control socket, %d runs (memif port, hugepages)\n\n",
	       runs);
	printf("  %4s  %12s  %12s  %12s  %12s\n", "run", "dp ready ms", "dp EAL ms", "cp ready ms",
	       "cp EAL ms");
	for (int r = 0; r < runs; r++) {
		double t0 = bench_now_ms();
		pid_t dp = bench_spawn(&env, "dp", NULL);
		dp_ready[r] = bench_wait_ready(&env, "dp", dp, t0, 20000);
		double t1 = bench_now_ms();
		pid_t cp = bench_spawn(&env, "cp", NULL);
		cp_ready[r] = bench_wait_ready(&env, "cp", cp, t1, 20000);
		json_t *drep = bench_call(&env, "dp", "boot.report", NULL);
		json_t *crep = bench_call(&env, "cp", "boot.report", NULL);
		if (dp_ready[r] < 0 || cp_ready[r] < 0 || drep == NULL || crep == NULL) {
			fprintf(stderr, "bench_boot: run %d failed (see %s/*.log)\n", r, env.dir);
			fails++;
		} else {
			record_report(drep, &dp_ph, &dp_co, r);
			record_report(crep, &cp_ph, &cp_co, r);
		}
		json_decref(drep);
		json_decref(crep);
		int cs = bench_stop(cp), ds = bench_stop(dp);
		if (cs != 0 || ds != 0) {
			fprintf(stderr, "bench_boot: run %d: unclean stop (cp %d, dp %d)\n", r, cs,
			        ds);
			fails++;
		}
		int eal_dp = 0, eal_cp = 0;
		for (int i = 0; i < dp_co.n; i++)
			if (strcmp(dp_co.names[i], "eal") == 0)
				eal_dp = i;
		for (int i = 0; i < cp_co.n; i++)
			if (strcmp(cp_co.names[i], "eal") == 0)
				eal_cp = i;
		printf("  %4d  %12.1f  %12.1f  %12.1f  %12.1f\n", r + 1, dp_ready[r],
		       dp_co.v[eal_dp][r], cp_ready[r], cp_co.v[eal_cp][r]);
	}
	if (fails) {
		bench_env_fini(&env);
		return 1;
	}
	double dpm = bench_median(dp_ready, runs), cpm = bench_median(cp_ready, runs);
	printf("\n  median ready      dp %.1f ms, cp %.1f ms (goal < %.0f ms each; the "
	       "original design hoped for 15000-25000 ms)\n\n",
	       dpm, cpm, GOAL_MS);
	printf("  median per phase and component (from the boot reports)\n");
	json_t *j = json_pack("{s:s, s:i, s:f, s:f, s:f}", "bench", "boot", "runs", runs,
	                      "dp_ready_ms", dpm, "cp_ready_ms", cpm, "goal_ms", GOAL_MS);
	json_object_set_new(j, "dp_phases_ms", medians(&dp_ph, runs, "dp phases"));
	json_object_set_new(j, "dp_components_ms", medians(&dp_co, runs, "dp components"));
	json_object_set_new(j, "cp_phases_ms", medians(&cp_ph, runs, "cp phases"));
	json_object_set_new(j, "cp_components_ms", medians(&cp_co, runs, "cp components"));
	char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
	printf("\n%s\n", s);
	free(s);
	json_decref(j);
	bench_env_fini(&env);
	return 0;
}
