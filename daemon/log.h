/* daemon/log.h: the daemon's log (one line per event on stderr, journald-friendly) and the
 * rate limiter that keeps a flood of handler errors from flooding it. */
#ifndef LUADGRAM_LOG_H
#define LUADGRAM_LOG_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h> /* __MINGW_PRINTF_FORMAT on mingw-w64 */

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

/* Shared by every thread: the level is atomic so a reload can change it. */
struct logger {
    atomic_int level;
    int journal; /* stderr is the journal: prefix <N> priorities instead of timestamps */
    int fd;      /* where lines go (2) */
};

void log_init(struct logger *lg, int fd);
/* Parses "debug"/"info"/"warn"/"error"; -1 if unknown. */
int log_level_parse(const char *s);
const char *log_level_name(int level);
int log_enabled(const struct logger *lg, int level);
/* The printf dialect log_msg's vsnprintf speaks: C99's (%zu...) on Linux and, with
 * __USE_MINGW_ANSI_STDIO, on mingw-w64 too, where plain `printf` would mean msvcrt's. */
#ifdef __MINGW_PRINTF_FORMAT
#define LOG_PRINTF_FORMAT __MINGW_PRINTF_FORMAT
#else
#define LOG_PRINTF_FORMAT printf
#endif
void log_msg(struct logger *lg, int level, const char *fmt, ...)
    __attribute__((format(LOG_PRINTF_FORMAT, 3, 4)));
void log_vmsg(struct logger *lg, int level, const char *fmt, va_list ap);

#define log_debug(lg, ...) log_msg((lg), LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(lg, ...) log_msg((lg), LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(lg, ...) log_msg((lg), LOG_LVL_WARN, __VA_ARGS__)
#define log_error(lg, ...) log_msg((lg), LOG_LVL_ERROR, __VA_ARGS__)

/* Allows `burst` events per second; counts the rest as suppressed. */
struct ratelimit {
    int64_t second;      /* the current one-second window (monotonic seconds) */
    unsigned used;       /* events allowed in it */
    unsigned suppressed; /* events refused since the last allowed one */
};

/* Returns 1 if an event may be logged now (and, in *suppressed, how many were refused
 * before it, to be mentioned in the line), 0 if it is to be suppressed. */
int ratelimit_allow(struct ratelimit *rl, unsigned burst, unsigned *suppressed);

#endif
