/* bench/common.h: what the bench tools share: error messages that carry the errno name,
 * bounded number parsing, "ip:port" parsing with the allow list (loopback, or the
 * documentation test nets with --allow-netns), monotonic time, a stop request from
 * SIGINT/SIGTERM polled without a handler or a global, CPU usage and socket buffer sizing.
 * Only libc. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <sys/socket.h>

#define BENCH_MAX_DGRAM 65507u    /* largest UDP payload (IPv4) */
#define BENCH_MAX_SECONDS 3600.0  /* hard upper bound for every --seconds */

/* "EADDRINUSE" for EADDRINUSE; "E?" when libc has no name for it. */
const char *bench_errname(int err);

/* Prints "tool: <formatted>: <strerror> (ENAME)\n" to stderr; err 0 leaves the tail off. */
void bench_err(const char *tool, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Whole decimal number in [min, max]; 0 on success, -1 (nothing written) otherwise. */
int bench_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Decimal number (fractions allowed) in [min, max]; 0 on success, -1 otherwise. */
int bench_parse_double(const char *s, double min, double max, double *out);

struct bench_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* Parses a numeric "a.b.c.d:port" or "[v6]:port". 0 on success, -1 on a malformed string. */
int bench_addr_parse(const char *s, struct bench_addr *a);
/* 1 if a is loopback (127.0.0.0/8, ::1), or with allow_netns one of the documentation
 * nets the namespace tests use (198.51.100.0/24, 2001:db8::/32); else 0. */
int bench_addr_allowed(const struct bench_addr *a, int allow_netns);
/* 1 if this process runs in a network namespace of its own (not the initial one) without a
 * default route, so the documentation nets cannot leave the machine; else 0 and why. */
int bench_netns_isolated(char *why, size_t len);
/* bench_addr_parse + bench_addr_allowed, and for a documentation-net address also
 * bench_netns_isolated; with a message on stderr naming what is wrong. */
int bench_addr_get(const char *tool, const char *opt, const char *s, int allow_netns,
                   struct bench_addr *a);
/* "127.0.0.1:9000" or "[::1]:9000" into buf. */
void bench_addr_format(const struct bench_addr *a, char *buf, size_t len);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);
/* Sleeps until the monotonic time t (nanoseconds); returns at once if t has passed. */
void bench_sleep_until_ns(uint64_t t);

/* Blocks SIGINT and SIGTERM so that a stop request stays pending instead of killing the
 * tool; the loops poll it with bench_stop_requested and print their summary. 0 or -1. */
int bench_signals_block(void);
/* 1 if SIGINT or SIGTERM is pending. */
int bench_stop_requested(void);

/* CPU seconds used by this process so far. */
struct bench_cpu {
    double user, sys;
};
void bench_cpu_now(struct bench_cpu *c);

/* Sets SO_RCVBUF (SO_RCVBUFFORCE first, which lifts the rmem_max cap when privileged);
 * *granted gets what the kernel reports back. 0 or -1 with errno. */
int bench_set_rcvbuf(int fd, int bytes, int *granted);

/* Asks for SO_RXQ_OVFL (the socket's cumulative kernel drop counter in each datagram's
 * control data). 0 or -1 with errno. */
int bench_want_rxq_ovfl(int fd);
/* Control space to reserve per datagram for the SO_RXQ_OVFL counter. */
#define BENCH_OVFL_CMSG_SPACE 64u
/* The SO_RXQ_OVFL counter in a received control buffer; 1 and *drops if present, else 0.
 * Bounded by the control length the kernel reported. */
struct msghdr;
int bench_read_ovfl(const struct msghdr *mh, uint32_t *drops);

/* Big-endian 64-bit read/write (sequence numbers and request ids in payloads). */
void bench_put_be64(unsigned char *p, uint64_t v);
uint64_t bench_get_be64(const unsigned char *p);

#endif
