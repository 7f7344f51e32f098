/* SPDX-License-Identifier: BSD-3-Clause */
/* nc_log: stderr logging with levels and per-call-site rate limiting. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "nc_log.h"

static _Atomic int log_level = NC_LOG_NOTICE;
static char log_ident[16] = "novacron";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"err", "warn", "notice", "info", "debug"};

void nc_log_set_level(enum nc_log_level level)
{
	atomic_store(&log_level, (int)level);
}

enum nc_log_level nc_log_get_level(void)
{
	return (enum nc_log_level)atomic_load(&log_level);
}

int nc_log_level_parse(const char *name, enum nc_log_level *level)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*level = (enum nc_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *nc_log_level_name(enum nc_log_level level)
{
	if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
		return "?";
	return level_names[level];
}

void nc_log_set_ident(const char *ident)
{
	pthread_mutex_lock(&log_lock);
	snprintf(log_ident, sizeof(log_ident), "%s", ident);
	pthread_mutex_unlock(&log_lock);
}

void nc_log_vmsg(enum nc_log_level level, const char *module, const char *fmt, va_list ap)
{
	if ((int)level > atomic_load(&log_level))
		return;
	char text[1024];
	vsnprintf(text, sizeof(text), fmt, ap);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%02d:%02d:%02d.%03ld %s %s %s: %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
	        ts.tv_nsec / 1000000, log_ident, nc_log_level_name(level), module, text);
	pthread_mutex_unlock(&log_lock);
}

void nc_log_msg(enum nc_log_level level, const char *module, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	nc_log_vmsg(level, module, fmt, ap);
	va_end(ap);
}

void nc_log_msg_rl(struct nc_log_rl *rl, enum nc_log_level level, const char *module,
                   const char *fmt, ...)
{
	enum { BURST = 5 };
	const uint64_t window_ns = 1000000000ull;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;

	pthread_mutex_lock(&log_lock);
	if (now - rl->window_start_ns >= window_ns) {
		uint32_t dropped = rl->suppressed;
		rl->window_start_ns = now;
		rl->in_window = 0;
		rl->suppressed = 0;
		pthread_mutex_unlock(&log_lock);
		if (dropped)
			nc_log_msg(level, module, "(%u similar lines suppressed)", dropped);
		pthread_mutex_lock(&log_lock);
	}
	bool emit = rl->in_window < BURST;
	if (emit)
		rl->in_window++;
	else
		rl->suppressed++;
	pthread_mutex_unlock(&log_lock);
	if (!emit)
		return;
	va_list ap;
	va_start(ap, fmt);
	nc_log_vmsg(level, module, fmt, ap);
	va_end(ap);
}
