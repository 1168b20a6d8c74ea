/* bench/loadgen.c: open-loop UDP load generator. Sends --count datagrams with sendmmsg,
 * paced by a token bucket (clock_nanosleep) or as fast as possible, round-robin over
 * --sources sockets (one ephemeral source port each), optionally stamping a sequence
 * number in the first 8 bytes. Bounded by --count and --seconds. Prints one summary line:
 * sent=N errors=E seconds=S rate=R cpu_user=U cpu_sys=S2 */
#include "common.h"
#include "payload.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define TOOL "loadgen"
#define MAX_SOURCES 1024u
#define MAX_BATCH 1024u
#define ERRORS_SHOWN 5u

struct loadgen_opts {
    struct bench_addr to;
    const char *to_str;
    uint64_t size, count, sources, batch, burst;
    double rate, seconds;
    const char *payload_path;
    int payload_lines, seq, allow_netns;
};

struct loadgen {
    struct loadgen_opts o;
    struct payload pl;
    int *fds;
    struct mmsghdr *msgs;
    struct iovec *iov;
    unsigned char *slots;  /* --seq: one private copy per batch slot, stamped per send */
    size_t slot_size;
    uint64_t sent, errors;
};

static void usage(FILE *f)
{
    fprintf(f,
"usage: loadgen --to IP:PORT --count N [options]\n"
"Open-loop UDP sender (sendmmsg). Prints one line:\n"
"  sent=N errors=E seconds=S rate=R cpu_user=U cpu_sys=S2\n"
"(on loopback the sender's CPU includes the kernel's delivery to the receiver)\n"
"  --to IP:PORT       destination: 127.0.0.0/8 or [::1] (see --allow-netns)\n"
"  --count N          datagrams to send (required bound)\n"
"  --size BYTES       synthetic payload size, 1..65507 (default 64)\n"
"  --rate PER_SEC     token-bucket pace; 0 = as fast as possible (default 0)\n"
"  --burst N          token-bucket depth in datagrams: the most sent back to back\n"
"                     after a late wake-up (default: --batch or 1 ms of --rate)\n"
"  --sources K        sockets, each on its own ephemeral source port; batches go\n"
"                     round-robin over them (default 1)\n"
"  --batch B          datagrams per sendmmsg, 1..1024 (default 32)\n"
"  --payload FILE     send this file's bytes instead of the pattern\n"
"  --payload-lines    with --payload: one payload per non-empty line, cycled\n"
"  --seq              stamp a big-endian sequence number (0, 1, ...) in bytes 0-7\n"
"  --seconds S        hard bound on the run time (default 60, at most 3600)\n"
"  --allow-netns      also allow 198.51.100.0/24 and 2001:db8::/32 (test namespaces)\n"
"  -h, --help         this text\n"
"Errors go to stderr (the first %u in full); a failed datagram counts in errors and\n"
"its sequence number is skipped.\n", ERRORS_SHOWN);
}

static int parse_args(int argc, char **argv, struct loadgen_opts *o)
{
    enum { O_TO = 256, O_SIZE, O_COUNT, O_RATE, O_SOURCES, O_BATCH, O_PAYLOAD, O_LINES,
           O_SEQ, O_SECONDS, O_NETNS, O_BURST };
    static const struct option longopts[] = {
        { "to", required_argument, NULL, O_TO },
        { "size", required_argument, NULL, O_SIZE },
        { "count", required_argument, NULL, O_COUNT },
        { "rate", required_argument, NULL, O_RATE },
        { "sources", required_argument, NULL, O_SOURCES },
        { "batch", required_argument, NULL, O_BATCH },
        { "payload", required_argument, NULL, O_PAYLOAD },
        { "payload-lines", no_argument, NULL, O_LINES },
        { "seq", no_argument, NULL, O_SEQ },
        { "seconds", required_argument, NULL, O_SECONDS },
        { "allow-netns", no_argument, NULL, O_NETNS },
        { "burst", required_argument, NULL, O_BURST },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c, bad = 0;
    const char *count_str = NULL;

    *o = (struct loadgen_opts){ .size = 64, .sources = 1, .batch = 32, .seconds = 60 };
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_TO: o->to_str = optarg; break;
        case O_SIZE: bad |= bench_parse_u64(optarg, 1, BENCH_MAX_DGRAM, &o->size); break;
        case O_COUNT: count_str = optarg; break;
        case O_RATE: bad |= bench_parse_double(optarg, 0, 1e9, &o->rate); break;
        case O_SOURCES: bad |= bench_parse_u64(optarg, 1, MAX_SOURCES, &o->sources); break;
        case O_BATCH: bad |= bench_parse_u64(optarg, 1, MAX_BATCH, &o->batch); break;
        case O_PAYLOAD: o->payload_path = optarg; break;
        case O_LINES: o->payload_lines = 1; break;
        case O_SEQ: o->seq = 1; break;
        case O_SECONDS:
            bad |= bench_parse_double(optarg, 0.001, BENCH_MAX_SECONDS, &o->seconds);
            break;
        case O_NETNS: o->allow_netns = 1; break;
        case O_BURST: bad |= bench_parse_u64(optarg, 1, 1u << 30, &o->burst); break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
        if (bad) {
            bench_err(TOOL, 0, "--%s %s: out of range or not a number",
                      longopts[c - O_TO].name, optarg);
            return -1;
        }
    }
    if (optind < argc) {
        bench_err(TOOL, 0, "unexpected argument %s (see --help)", argv[optind]);
        return -1;
    }
    if (!count_str || bench_parse_u64(count_str, 1, UINT64_MAX, &o->count) < 0) {
        bench_err(TOOL, 0, "--count N (N >= 1) is required");
        return -1;
    }
    if (o->payload_lines && !o->payload_path) {
        bench_err(TOOL, 0, "--payload-lines needs --payload FILE");
        return -1;
    }
    return bench_addr_get(TOOL, "--to", o->to_str, o->allow_netns, &o->to);
}

/* Opens --sources sockets connected to the destination; connect() binds each to its own
 * ephemeral port and lets the kernel skip the route lookup per datagram. */
static int open_sockets(struct loadgen *lg)
{
    struct timeval tv = { .tv_sec = 1 }; /* a blocked send gives up after 1 s */

    lg->fds = malloc(lg->o.sources * sizeof *lg->fds);
    if (!lg->fds) {
        bench_err(TOOL, ENOMEM, "sockets");
        return -1;
    }
    for (uint64_t i = 0; i < lg->o.sources; i++)
        lg->fds[i] = -1;
    for (uint64_t i = 0; i < lg->o.sources; i++) {
        int fd = socket(lg->o.to.ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            bench_err(TOOL, errno, "socket");
            return -1;
        }
        lg->fds[i] = fd;
        if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
            connect(fd, (const struct sockaddr *)&lg->o.to.ss, lg->o.to.len) != 0) {
            bench_err(TOOL, errno, "connect %s", lg->o.to_str);
            return -1;
        }
    }
    return 0;
}

static int prepare(struct loadgen *lg)
{
    char err[512];
    size_t batch = lg->o.batch;
    int rc = lg->o.payload_path
                 ? payload_load(&lg->pl, lg->o.payload_path, lg->o.payload_lines, err, sizeof err)
                 : payload_pattern(&lg->pl, lg->o.size, err, sizeof err);

    if (rc < 0) {
        bench_err(TOOL, 0, "--payload %s", err);
        return -1;
    }
    if (lg->o.seq && lg->pl.minlen < 8) {
        bench_err(TOOL, 0, "--seq needs payloads of at least 8 bytes (shortest is %zu)",
                  lg->pl.minlen);
        return -1;
    }
    lg->msgs = calloc(batch, sizeof *lg->msgs);
    lg->iov = calloc(batch, sizeof *lg->iov);
    if (!lg->msgs || !lg->iov)
        goto nomem;
    if (lg->o.seq) {
        lg->slot_size = lg->pl.maxlen;
        lg->slots = malloc(batch * lg->slot_size);
        if (!lg->slots)
            goto nomem;
        /* A single payload is copied once; per send only its 8 stamped bytes change. */
        if (lg->pl.n == 1)
            for (size_t i = 0; i < batch; i++)
                memcpy(lg->slots + i * lg->slot_size, lg->pl.buf, lg->pl.len[0]);
    }
    for (size_t i = 0; i < batch; i++) {
        lg->msgs[i].msg_hdr.msg_iov = &lg->iov[i];
        lg->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    return open_sockets(lg);
nomem:
    bench_err(TOOL, ENOMEM, "buffers");
    return -1;
}

/* Points batch slot i at datagram number seq (its payload, stamped with seq). */
static void fill_slot(struct loadgen *lg, size_t i, uint64_t seq)
{
    size_t which = lg->pl.n == 1 ? 0 : (size_t)(seq % lg->pl.n);
    unsigned char *src = lg->pl.buf + lg->pl.off[which];
    size_t len = lg->pl.len[which];

    if (lg->o.seq) {
        unsigned char *slot = lg->slots + i * lg->slot_size;
        if (lg->pl.n > 1)
            memcpy(slot, src, len);
        bench_put_be64(slot, seq);
        src = slot;
    }
    lg->iov[i].iov_base = src;
    lg->iov[i].iov_len = len;
}

static void report_error(struct loadgen *lg, int err)
{
    if (lg->errors < ERRORS_SHOWN)
        bench_err(TOOL, err, "sendmmsg to %s", lg->o.to_str);
    else if (lg->errors == ERRORS_SHOWN)
        bench_err(TOOL, 0, "further send errors are counted, not shown");
    lg->errors++;
}

/* The send loop: bounded by --count datagrams and the --seconds deadline. */
static void run(struct loadgen *lg, uint64_t t0)
{
    const uint64_t deadline = t0 + (uint64_t)(lg->o.seconds * 1e9);
    const double per_ms = lg->o.rate / 1000.0, batch = (double)lg->o.batch;
    const double cap = lg->o.burst ? (double)lg->o.burst : per_ms > batch ? per_ms : batch;
    double tokens = cap < batch ? cap : batch;
    uint64_t last = t0, iter = 0;
    size_t rr = 0;

    while (lg->sent + lg->errors < lg->o.count) {
        uint64_t now = bench_now_ns(), next = lg->sent + lg->errors;
        uint64_t left = lg->o.count - next;
        size_t n = left < lg->o.batch ? (size_t)left : (size_t)lg->o.batch;
        int r;

        if (now >= deadline || ((++iter & 63) == 0 && bench_stop_requested()))
            break;
        if (lg->o.rate > 0) {
            if ((double)n > cap) /* a batch never waits for more than the bucket holds */
                n = (size_t)cap;
            tokens += (double)(now - last) * lg->o.rate / 1e9;
            if (tokens > cap)
                tokens = cap;
            last = now;
            if (tokens < (double)n) {
                uint64_t wait = (uint64_t)(((double)n - tokens) / lg->o.rate * 1e9) + 1;
                bench_sleep_until_ns(now + wait < deadline ? now + wait : deadline);
                continue;
            }
        }
        for (size_t i = 0; i < n; i++)
            fill_slot(lg, i, next + i);
        r = sendmmsg(lg->fds[rr], lg->msgs, (unsigned)n, 0);
        rr = (rr + 1) % lg->o.sources;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            report_error(lg, errno); /* the first datagram of the batch is skipped */
            r = 0;
            tokens -= 1;
        } else {
            lg->sent += (uint64_t)r;
            tokens -= r;
        }
    }
}

static void cleanup(struct loadgen *lg)
{
    if (lg->fds)
        for (uint64_t i = 0; i < lg->o.sources; i++)
            if (lg->fds[i] >= 0)
                close(lg->fds[i]);
    free(lg->fds);
    free(lg->msgs);
    free(lg->iov);
    free(lg->slots);
    payload_free(&lg->pl);
}

int main(int argc, char **argv)
{
    struct loadgen lg;
    struct bench_cpu c0, c1;
    uint64_t t0;
    double secs;
    int rc = 2;

    memset(&lg, 0, sizeof lg);
    if (parse_args(argc, argv, &lg.o) < 0)
        return 2;
    if (prepare(&lg) < 0 || bench_signals_block() < 0)
        goto out;
    bench_cpu_now(&c0);
    t0 = bench_now_ns();
    run(&lg, t0);
    secs = (double)(bench_now_ns() - t0) / 1e9;
    bench_cpu_now(&c1);
    printf("sent=%llu errors=%llu seconds=%.3f rate=%.0f cpu_user=%.3f cpu_sys=%.3f\n",
           (unsigned long long)lg.sent, (unsigned long long)lg.errors, secs,
           secs > 0 ? (double)lg.sent / secs : 0.0, c1.user - c0.user, c1.sys - c0.sys);
    fflush(stdout);
    rc = lg.errors ? 1 : 0;
out:
    cleanup(&lg);
    return rc;
}
