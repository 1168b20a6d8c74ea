/* daemon/log.c: log lines to stderr with a UTC timestamp and level (or, under systemd's
 * journal, with a <N> priority prefix the journal understands), and the rate limiter. */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const log_names[] = {"debug", "info", "warn", "error"};
static const int log_syslog_prio[] = {7, 6, 4, 3};

/* stderr is the journal when JOURNAL_STREAM names its device and inode. */
static int log_stderr_is_journal(int fd)
{
    const char *js = getenv("JOURNAL_STREAM");
    struct stat st;
    unsigned long dev, ino;
    if (!js || sscanf(js, "%lu:%lu", &dev, &ino) != 2 || fstat(fd, &st) != 0)
        return 0;
    return (unsigned long)st.st_dev == dev && (unsigned long)st.st_ino == ino;
}

void log_init(struct logger *lg, int fd)
{
    atomic_init(&lg->level, LOG_LVL_INFO);
    lg->fd = fd;
    lg->journal = log_stderr_is_journal(fd);
}

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, log_names[i]) == 0)
            return i;
    if (strcmp(s, "warning") == 0)
        return LOG_LVL_WARN;
    return -1;
}

const char *log_level_name(int level)
{
    return level >= 0 && level < 4 ? log_names[level] : "?";
}

int log_enabled(const struct logger *lg, int level)
{
    return level >= atomic_load_explicit(&lg->level, memory_order_relaxed);
}

void log_vmsg(struct logger *lg, int level, const char *fmt, va_list ap)
{
    if (!log_enabled(lg, level))
        return;
    char line[4096];
    int n;
    if (lg->journal) {
        n = snprintf(line, sizeof line, "<%d>", log_syslog_prio[level]);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
        n += snprintf(line + n, sizeof line - (size_t)n, ".%03ldZ %s: ",
                      ts.tv_nsec / 1000000, log_names[level]);
    }
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2; /* cut: the line still ends with a newline */
    line[len++] = '\n';
    /* One write per line so lines from several threads never interleave. */
    ssize_t w = write(lg->fd, line, len);
    (void)w;
}

void log_msg(struct logger *lg, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(lg, level, fmt, ap);
    va_end(ap);
}

int ratelimit_allow(struct ratelimit *rl, unsigned burst, unsigned *suppressed)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ts.tv_sec != rl->second) {
        rl->second = ts.tv_sec;
        rl->used = 0;
    }
    if (rl->used >= burst) {
        rl->suppressed++;
        return 0;
    }
    rl->used++;
    *suppressed = rl->suppressed;
    rl->suppressed = 0;
    return 1;
}
