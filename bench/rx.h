/* bench/rx.h: the receive side shared by sink and echo: their command-line options, a bound
 * UDP socket set up for
 * recvmmsg (receive buffer, SO_RXQ_OVFL, a 100 ms receive timeout so loops can check their
 * deadlines), a ring of receive buffers allocated once, and the socket's kernel drop
 * counter. */
#ifndef BENCH_RX_H
#define BENCH_RX_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/socket.h>
#include "common.h"

#define RX_TIMEOUT_MS 100 /* longest a blocking recvmmsg waits before the loop looks up */
#define RX_MAX_BATCH 1024u

/* The options both receivers take. */
struct rx_opts {
    struct bench_addr bind;
    const char *bind_str;
    uint64_t batch, rcvbuf, count, bufsize;
    double seconds, idle;
    int seq, allow_netns;
};

/* Parses --bind --batch --rcvbuf --bufsize --count --seconds --idle --allow-netns (and --seq
 * when with_seq) into o, with the receivers' defaults. --help prints usage(stdout) and exits
 * 0. Returns 0, or -1 after saying why on stderr. */
int rx_parse_args(const char *tool, int argc, char **argv, int with_seq,
                  void (*usage)(FILE *), struct rx_opts *o);

struct rx_ring {
    unsigned batch;
    size_t bufsize;
    unsigned char *bufs;              /* batch * bufsize payload bytes */
    unsigned char *ctrl;              /* batch * BENCH_OVFL_CMSG_SPACE control bytes */
    struct sockaddr_storage *names;   /* batch peer addresses */
    struct iovec *iov;
    struct mmsghdr *msgs;
};

/* Allocates the ring. 0, or -1 (out of memory; the ring is left freed). */
int rx_ring_init(struct rx_ring *r, unsigned batch, size_t bufsize);
/* Restores the lengths the kernel overwrote in the first n headers before the next call. */
void rx_ring_reset(struct rx_ring *r, unsigned n);
void rx_ring_free(struct rx_ring *r);

/* Opens a UDP socket bound to addr with the options above; rcvbuf 0 leaves the default.
 * On success returns the fd, *granted holds SO_RCVBUF as read back and *bound the address
 * actually bound (the kernel's port for port 0). On failure prints why and returns -1. */
int rx_open(const char *tool, const struct bench_addr *addr, int rcvbuf, int *granted,
            struct bench_addr *bound);

/* The socket's drop counter from /proc/net/udp or /proc/net/udp6 (matched by inode): this
 * also sees drops after the last datagram that was received. 0 if not found. */
uint64_t rx_proc_drops(int fd);

/* The stop test every receive loop makes: 1 when the deadline or the idle limit (idle_ns
 * after last_ns, 0 = none) has passed, or, when signals is non-zero (callers ask only
 * now and then: it costs a system call), a SIGINT/SIGTERM is pending. last_ns 0 = nothing
 * received yet. */
int rx_should_stop(uint64_t now, uint64_t deadline, uint64_t last_ns, uint64_t idle_ns,
                   int signals);

/* Sets a receiver up from its options: the ring, the bound socket, signals blocked, and
 * "TOOL: listening on ADDR" on stderr. Returns the socket, or -1 after saying why (the ring
 * is then freed). *granted: the receive buffer the kernel granted. */
int rx_start(const char *tool, const struct rx_opts *o, struct rx_ring *ring, int *granted);

#endif
