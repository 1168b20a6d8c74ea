/* bench/idflip.c: a wrong responder for smoke.sh. It answers every datagram to its sender
 * like echo, but with the top bit of byte 0 flipped: the first byte of rrclient's 16-bit
 * DNS ID (--match=dnsid) or of its 64-bit id (echo mode). That bit is part of the request's
 * generation, so no reply carries the id of a request in flight, and a client that matches
 * replies by id must count none of them. Takes echo's options (--bind, --count, --seconds,
 * --idle, ...; loopback only); prints "received=N sent=M" when done. */
#include "common.h"
#include "rx.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#define TOOL "idflip"

static void usage(FILE *f)
{
    fprintf(f,
"usage: idflip --bind IP:PORT [--count N] [--seconds S] [--idle S] [--allow-netns]\n"
"Answers every datagram to its sender with the top bit of byte 0 flipped (a reply that\n"
"never matches its request's id). Prints received=N sent=M when done; once bound it\n"
"prints \"idflip: listening on IP:PORT\" to stderr (port 0 picks one).\n");
}

int main(int argc, char **argv)
{
    struct rx_opts o;
    struct rx_ring ring;
    int granted = 0;
    unsigned long long received = 0, sent = 0;

    if (rx_parse_args(TOOL, argc, argv, 0, usage, &o) < 0)
        return 2;
    int fd = rx_start(TOOL, &o, &ring, &granted);
    if (fd < 0)
        return 2;
    const uint64_t deadline = bench_now_ns() + (uint64_t)(o.seconds * 1e9);
    const uint64_t idle = (uint64_t)(o.idle * 1e9);
    uint64_t last = 0;
    /* One datagram per call: a receive waits at most RX_TIMEOUT_MS, so the loop is bounded
     * by --count, the --seconds deadline and --idle. */
    while (o.count == 0 || received < o.count) {
        struct sockaddr_storage peer;
        socklen_t peerlen = sizeof peer;
        ssize_t n = recvfrom(fd, ring.bufs, ring.bufsize, 0, (struct sockaddr *)&peer,
                             &peerlen);
        uint64_t now = bench_now_ns();
        if (n > 0) {
            received++;
            last = now;
            ring.bufs[0] ^= 0x80;
            if (sendto(fd, ring.bufs, (size_t)n, 0, (struct sockaddr *)&peer, peerlen) == n)
                sent++;
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            bench_err(TOOL, errno, "recvfrom");
            break;
        }
        if (rx_should_stop(now, deadline, last, idle, n <= 0))
            break;
    }
    printf("received=%llu sent=%llu\n", received, sent);
    fflush(stdout);
    close(fd);
    rx_ring_free(&ring);
    return sent == received ? 0 : 1;
}
