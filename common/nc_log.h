/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nc_log: the one logging facility of both processes and their libraries.
 *
 * Each module names itself once with NC_LOG_MODULE before including this
 * header; messages go to stderr as "time level module: text". Slow paths only:
 * the fast path counts, it never logs (DESIGN.md invariant 4). NC_LOG_RL
 * rate-limits a call site to a burst of 5 then one line per second, and says
 * how many lines it suppressed.
 */
#ifndef NC_LOG_H
#define NC_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

enum nc_log_level {
	NC_LOG_ERR = 0,
	NC_LOG_WARN,
	NC_LOG_NOTICE,
	NC_LOG_INFO,
	NC_LOG_DEBUG,
};

/** Per call-site state of a rate-limited log line. */
struct nc_log_rl {
	uint64_t window_start_ns;
	uint32_t in_window;
	uint32_t suppressed;
};

/** Messages above @p level are dropped. Thread-safe. */
void nc_log_set_level(enum nc_log_level level);
enum nc_log_level nc_log_get_level(void);

/** Parse "err", "warn", "notice", "info", "debug". Returns 0 or -EINVAL. */
int nc_log_level_parse(const char *name, enum nc_log_level *level);
const char *nc_log_level_name(enum nc_log_level level);

/** Set the process name shown in every line ("dp", "cp", ...). */
void nc_log_set_ident(const char *ident);

void nc_log_msg(enum nc_log_level level, const char *module, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
void nc_log_vmsg(enum nc_log_level level, const char *module, const char *fmt, va_list ap);
void nc_log_msg_rl(struct nc_log_rl *rl, enum nc_log_level level, const char *module,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#ifndef NC_LOG_MODULE
#define NC_LOG_MODULE "novacron"
#endif

#define NC_LOG(lvl, ...) nc_log_msg(NC_LOG_##lvl, NC_LOG_MODULE, __VA_ARGS__)
#define NC_LOG_RL(lvl, ...)                                                                        \
	do {                                                                                       \
		static struct nc_log_rl nc_rl_;                                                    \
		nc_log_msg_rl(&nc_rl_, NC_LOG_##lvl, NC_LOG_MODULE, __VA_ARGS__);                  \
	} while (0)

#endif /* NC_LOG_H */
