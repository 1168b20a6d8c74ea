/* bench/peerlimit.c: the cost of a listener's per-peer rate limit (daemon/peerlimit.c) with
 * a full table of 1M tracked peers, against the receive path without it, in one run:
 *   - path: recv_batch of 32 loopback datagrams (recvmmsg and the control data parse, what
 *     every datagram pays before its handler), each record given a peer address drawn from
 *     the 1M; with the limit, peerlimit_allow on each record too. Rounds of both kinds
 *     alternate, so that the load of the machine falls on both alike.
 *   - the table alone: a lookup of a tracked peer (a hit), and of a new one (an eviction).
 *   - memory: the table's bytes (peerlimit_memory) and the resident size it added.
 * It owns its sockets, ring and table; built by the top-level CMakeLists (it links the
 * daemon's core), run by hand: build/bench_peerlimit [peers] [rounds]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "addr.h"
#include "netio.h"
#include "peerlimit.h"

enum { BATCH = 32, PAYLOAD = 64 };

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Peer i of the set: 10.0.0.0/8 and beyond, port 1000 + i % 50000. */
static void peer_of(uint32_t i, struct sockaddr_storage *ss)
{
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    memset(ss, 0, sizeof *ss);
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(0x0a000000u + i);
    in->sin_port = htons((uint16_t)(1000 + i % 50000));
}

/* xorshift64: the peers drawn, the same in every run */
static uint32_t rng(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (uint32_t)*state;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    uint32_t peers = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1000000;
    int rounds = argc > 2 ? atoi(argv[2]) : 20000;
    if (peers < 1 || rounds < 10) {
        fprintf(stderr, "usage: %s [peers >= 1] [rounds >= 10]\n", argv[0]);
        return 2;
    }
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    char err[256];
    struct sock_spec spec;
    if (addr_parse_bind("127.0.0.1:0", &spec, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct sock_opts opts = {.rcvbuf = 1 << 20, .unix_mode = -1};
    int granted, rx = sock_open(&spec, &opts, &granted, err, sizeof err);
    if (rx < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct sockaddr_storage local;
    socklen_t llen = sizeof local;
    getsockname(rx, (struct sockaddr *)&local, &llen);
    int tx = socket(AF_INET, SOCK_DGRAM, 0);
    if (tx < 0 || connect(tx, (struct sockaddr *)&local, llen) != 0) {
        perror("tx");
        return 1;
    }
    struct recv_ring ring;
    if (recv_ring_init(&ring, BATCH, 2048) != 0) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    static uint8_t payload[PAYLOAD];
    struct mmsghdr out[BATCH];
    struct iovec iov = {payload, sizeof payload};
    memset(out, 0, sizeof out);
    for (int i = 0; i < BATCH; i++) {
        out[i].msg_hdr.msg_iov = &iov;
        out[i].msg_hdr.msg_iovlen = 1;
    }

    struct peerlimit_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.rate = 100;
    cfg.burst = 200;
    cfg.prefix4 = 32;
    cfg.prefix6 = 128;
    cfg.peers = peers;
    long rss0 = rss_kib();
    struct peerlimit *pl = peerlimit_new(&cfg, 12345);
    if (!pl) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    struct sockaddr_storage ss;
    int64_t t = now_ns();
    for (uint32_t i = 0; i < peers; i++) {
        peer_of(i, &ss);
        peerlimit_allow(pl, (struct sockaddr *)&ss, t);
    }
    int64_t fill_ns = now_ns() - t;
    long rss1 = rss_kib();

    /* the path, both ways, alternating rounds */
    int64_t *base = calloc((size_t)rounds, sizeof *base);
    int64_t *limited = calloc((size_t)rounds, sizeof *limited);
    if (!base || !limited)
        return 1;
    uint64_t datagrams[2] = {0, 0};
    int kept = 0;
    for (int r = 0; r < 2 * rounds; r++) {
        int with = r & 1;
        if (sendmmsg(tx, out, BATCH, 0) != BATCH) {
            perror("sendmmsg");
            return 1;
        }
        int64_t t0 = now_ns();
        int n = recv_batch(rx, &ring, 0);
        int64_t clock_now = now_ns();
        for (int i = 0; i < n; i++) {
            peer_of(rng(&seed) % peers, &ring.recs[i].peer);
            if (with)
                kept += peerlimit_allow(pl, (struct sockaddr *)&ring.recs[i].peer, clock_now);
        }
        int64_t dt = now_ns() - t0;
        (with ? limited : base)[r / 2] = n > 0 ? dt / n : 0;
        datagrams[with] += (uint64_t)(n > 0 ? n : 0);
    }
    qsort(base, (size_t)rounds, sizeof *base, cmp_i64);
    qsort(limited, (size_t)rounds, sizeof *limited, cmp_i64);

    /* the table alone: hits, then new peers (each evicts the least recently seen) */
    enum { LOOKUPS = 5000000 };
    int64_t tnow = now_ns();
    t = now_ns();
    for (int i = 0; i < LOOKUPS; i++) {
        peer_of(rng(&seed) % peers, &ss);
        kept += peerlimit_allow(pl, (struct sockaddr *)&ss, tnow);
    }
    int64_t hit_ns = now_ns() - t;
    t = now_ns();
    for (int i = 0; i < LOOKUPS; i++) {
        peer_of(peers + (uint32_t)i, &ss);
        kept += peerlimit_allow(pl, (struct sockaddr *)&ss, tnow);
    }
    int64_t miss_ns = now_ns() - t;
    /* the cost of drawing the address alone, to subtract */
    t = now_ns();
    uint32_t sink = 0;
    for (int i = 0; i < LOOKUPS; i++) {
        peer_of(rng(&seed) % peers, &ss);
        sink += ((struct sockaddr_in *)&ss)->sin_addr.s_addr;
    }
    int64_t draw_ns = now_ns() - t;

    double b50 = (double)base[rounds / 2], l50 = (double)limited[rounds / 2];
    printf("peers tracked: %u of %u\n", peerlimit_tracked(pl), peers);
    printf("table memory: %zu bytes (%.1f per peer); resident size grew %ld KiB\n",
           peerlimit_memory(peers), (double)peerlimit_memory(peers) / peers, rss1 - rss0);
    printf("filling it: %.1f ns per new peer\n", (double)fill_ns / peers);
    printf("path without the limit (recv_batch of %d): median %.0f ns per datagram "
           "(p10 %lld, p90 %lld), %llu datagrams\n", BATCH, b50,
           (long long)base[rounds / 10], (long long)base[rounds * 9 / 10],
           (unsigned long long)datagrams[0]);
    printf("path with the limit: median %.0f ns per datagram (p10 %lld, p90 %lld), %llu "
           "datagrams\n", l50, (long long)limited[rounds / 10],
           (long long)limited[rounds * 9 / 10], (unsigned long long)datagrams[1]);
    printf("ratio with / without: %.2f\n", b50 > 0 ? l50 / b50 : 0);
    printf("lookup of a tracked peer (random of %u): %.1f ns; of a new peer (evicting): "
           "%.1f ns (address drawing, %.1f ns, subtracted)\n", peers,
           (double)(hit_ns - draw_ns) / LOOKUPS, (double)(miss_ns - draw_ns) / LOOKUPS,
           (double)draw_ns / LOOKUPS);
    printf("(%d passed, %u)\n", kept, sink & 1);
    peerlimit_free(pl);
    recv_ring_free(&ring);
    free(base);
    free(limited);
    close(tx);
    sock_close(rx, &spec);
    return 0;
}
