/* bench/common.c: the helpers declared in common.h (errors, numbers, addresses, time,
 * stop requests, CPU usage, receive-buffer and drop-counter socket options). */
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

const char *bench_errname(int err)
{
    const char *name = strerrorname_np(err);
    return name ? name : "E?";
}

void bench_err(const char *tool, int err, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (err)
        fprintf(stderr, "%s: %s: %s (%s)\n", tool, msg, strerror(err), bench_errname(err));
    else
        fprintf(stderr, "%s: %s\n", tool, msg);
}

int bench_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int bench_parse_double(const char *s, double min, double max, double *out)
{
    char *end;
    double v;

    if (!s || !*s)
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int bench_addr_parse(const char *s, struct bench_addr *a)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *colon, *hstart;
    size_t hlen;
    uint64_t port;
    int v6 = 0;

    memset(a, 0, sizeof *a);
    if (!s)
        return -1;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        hstart = s + 1;
        hlen = (size_t)(close - hstart);
        colon = close + 1;
        v6 = 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hstart = s;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= sizeof host || bench_parse_u64(colon + 1, 0, 65535, &port) < 0)
        return -1;
    memcpy(host, hstart, hlen);
    host[hlen] = '\0';
    if (v6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return -1;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        a->len = sizeof *sin6;
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            return -1;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        a->len = sizeof *sin;
    }
    return 0;
}

int bench_addr_allowed(const struct bench_addr *a, int allow_netns)
{
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
        uint32_t ip = ntohl(sin->sin_addr.s_addr);
        if ((ip >> 24) == 127)
            return 1;
        return allow_netns && (ip >> 8) == 0xC63364; /* 198.51.100.0/24 */
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
        const unsigned char *b = sin6->sin6_addr.s6_addr;
        if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
            return 1;
        return allow_netns && b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8;
    }
    return 0;
}

int bench_addr_get(const char *tool, const char *opt, const char *s, int allow_netns,
                   struct bench_addr *a)
{
    if (bench_addr_parse(s, a) < 0) {
        bench_err(tool, 0, "%s %s: expected a numeric ip:port or [ipv6]:port", opt,
                  s ? s : "(none)");
        return -1;
    }
    if (!bench_addr_allowed(a, allow_netns)) {
        bench_err(tool, 0, "%s %s: refused: only loopback (127.0.0.0/8, ::1)%s", opt, s,
                  allow_netns ? ", 198.51.100.0/24 or 2001:db8::/32"
                              : "; --allow-netns adds 198.51.100.0/24 and 2001:db8::/32");
        return -1;
    }
    if (!bench_addr_allowed(a, 0)) {
        char why[128];
        if (!bench_netns_isolated(why, sizeof why)) {
            bench_err(tool, 0, "%s %s: refused: %s", opt, s, why);
            return -1;
        }
    }
    return 0;
}

void bench_addr_format(const struct bench_addr *a, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN];

    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        snprintf(buf, len, "[%s]:%u", host, (unsigned)ntohs(sin6->sin6_port));
    } else if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        snprintf(buf, len, "%s:%u", host, (unsigned)ntohs(sin->sin_port));
    } else {
        snprintf(buf, len, "(family %d)", (int)a->ss.ss_family);
    }
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_sleep_until_ns(uint64_t t)
{
    struct timespec ts = { .tv_sec = (time_t)(t / 1000000000u),
                           .tv_nsec = (long)(t % 1000000000u) };
    /* Bounded: an EINTR retry is the only loop, and the target time is fixed. */
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

int bench_signals_block(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return sigprocmask(SIG_BLOCK, &set, NULL) == 0 ? 0 : -1;
}

int bench_stop_requested(void)
{
    sigset_t pending;

    if (sigpending(&pending) != 0)
        return 0;
    return sigismember(&pending, SIGINT) == 1 || sigismember(&pending, SIGTERM) == 1;
}

void bench_cpu_now(struct bench_cpu *c)
{
    struct rusage ru;

    memset(&ru, 0, sizeof ru);
    getrusage(RUSAGE_SELF, &ru);
    c->user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    c->sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int bench_set_rcvbuf(int fd, int bytes, int *granted)
{
    socklen_t len = sizeof *granted;

    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes) != 0)
        return -1;
    return getsockopt(fd, SOL_SOCKET, SO_RCVBUF, granted, &len);
}

int bench_want_rxq_ovfl(int fd)
{
    int one = 1;
    return setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
}

int bench_read_ovfl(const struct msghdr *mh, uint32_t *drops)
{
    struct cmsghdr *c;

    if (!mh->msg_control || mh->msg_controllen < sizeof(struct cmsghdr))
        return 0;
    for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR((struct msghdr *)mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL &&
            c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
            memcpy(drops, CMSG_DATA(c), sizeof(uint32_t));
            return 1;
        }
    }
    return 0;
}

void bench_put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

uint64_t bench_get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}
