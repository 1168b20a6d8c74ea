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
    char body[4096], line[8192], cont[16];
    int m = vsnprintf(body, sizeof body, fmt, ap);
    size_t blen = m < 0 ? 0 : (size_t)m < sizeof body ? (size_t)m : sizeof body - 1;
    size_t n;
    if (lg->journal) {
        n = (size_t)snprintf(line, sizeof line, "<%d>", log_syslog_prio[level]);
        /* Every journal line needs the priority, or it is logged at the default one. */
        snprintf(cont, sizeof cont, "<%d>\t", log_syslog_prio[level]);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
        n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ %s: ", ts.tv_nsec / 1000000,
                              log_names[level]);
        snprintf(cont, sizeof cont, "\t");
    }
    /* Messages carry text from scripts and from the network: a line break continues the
     * entry (indented, so it cannot pass for a new one) and other control bytes are shown
     * as '?'. */
    size_t clen = strlen(cont);
    for (size_t i = 0; i < blen && n + clen + 2 < sizeof line; i++) {
        unsigned char c = (unsigned char)body[i];
        if (c == '\n') {
            line[n++] = '\n';
            memcpy(line + n, cont, clen);
            n += clen;
        } else {
            line[n++] = (c < 0x20 && c != '\t') || c == 0x7f ? '?' : (char)c;
        }
    }
    line[n++] = '\n';
    /* One write per line so lines from several threads never interleave. */
    ssize_t w = write(lg->fd, line, n);
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
