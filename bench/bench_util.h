/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_util: what the benches share: start novacron-dp/-cp in a private
 * runtime directory, wait for "ready" on their control sockets, call methods,
 * stop them, read a process's CPU time, and take medians.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

struct bench_env {
	char build[512];  /* the build directory */
	char dir[128];    /* private runtime directory */
	char config[256]; /* generated config */
	char prefix[32];  /* EAL file prefix */
};

/** Parse --build DIR from argv (default "build"); make the directory and config. */
int bench_env_init(struct bench_env *e, int argc, char **argv);
/** Remove the runtime directory and the EAL runtime files. */
void bench_env_fini(struct bench_env *e);

double bench_now_ms(void);

/** Start "dp" or "cp" with the env's config plus extra --set args (NULL-terminated). */
pid_t bench_spawn(const struct bench_env *e, const char *which, const char *const *sets);

/** Poll the control socket until status says ready; returns ms waited or -1. */
double bench_wait_ready(const struct bench_env *e, const char *which, pid_t pid, double start_ms,
                        int timeout_ms);

/** Call a method on "dp" or "cp"; result is a new reference, or NULL on failure. */
json_t *bench_call(const struct bench_env *e, const char *which, const char *method,
                   json_t *params);

/** SIGTERM and wait; returns the exit status or -1. */
int bench_stop(pid_t pid);

/** utime + stime of @p pid in seconds, or -1. */
double bench_cpu_seconds(pid_t pid);

/** Median of @p n values (sorts them). */
double bench_median(double *v, int n);

#endif /* BENCH_UTIL_H */
