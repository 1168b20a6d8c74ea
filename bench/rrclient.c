/* bench/rrclient.c: closed-loop UDP request/response client. Keeps --inflight requests
 * outstanding over --sockets connected sockets; each reply (matched by a 64-bit id in
 * bytes 0-7, or the DNS ID in bytes 0-1 with --match=dnsid) re-arms its slot, and a request
 * unanswered after --timeout ms is counted lost and re-armed. Latencies go into a fixed
 * log-linear histogram. Bounded by --count and --seconds. Prints:
 * requests=N replies=M lost=L seconds=S rate=R p50_us= p90_us= p99_us= p999_us= max_us= */
#include "common.h"
#include "hist.h"
#include "payload.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TOOL "rrclient"
#define MAX_INFLIGHT (1u << 20)   /* echo ids keep the slot in their low 20 bits */
#define MAX_SOCKETS 256u
#define MAX_DNS_SLOTS_PER_SOCKET 4096u /* dnsid: 12 bits of slot, at least 4 of generation */
#define MAX_BATCH 1024u
#define REPLY_BUFSIZE 2048u       /* only the id is read; longer replies are cut */
#define DRAIN_ROUNDS 16u          /* recvmmsg calls per socket per wake-up, at most */
#define ERRORS_SHOWN 5u

enum match { MATCH_ECHO, MATCH_DNSID };

struct rr_opts {
    struct bench_addr to;
    const char *to_str;
    uint64_t size, inflight, sockets, count, timeout_ms, batch;
    double seconds;
    const char *payload_path;
    enum match match;
    int allow_netns;
};

struct slot {
    uint64_t id;      /* id of the request now outstanding */
    uint64_t sent_ns; /* when it was sent */
    uint32_t gen;     /* bumped at every (re-)arm, so a late reply never matches */
    uint8_t inflight;
};

struct rr_sock {
    int fd;
    unsigned *queue;  /* slots armed but not yet sent; capacity = slots on this socket */
    unsigned nqueue;
};

struct rr {
    struct rr_opts o;
    struct payload pl;
    struct slot *slots;
    struct rr_sock *socks;
    struct pollfd *pfds;
    unsigned dns_bits;             /* dnsid: bits of the per-socket slot number */
    struct mmsghdr *smsgs, *rmsgs;
    struct iovec *siov, *riov;
    unsigned char *sbufs, *rbufs;  /* batch request copies; batch reply buffers */
    struct hist hist;
    uint64_t armed, requests, replies, lost, late, errors, outstanding;
    int issuing;
};

static void usage(FILE *f)
{
    fprintf(f,
"usage: rrclient --to IP:PORT (--count N | --seconds S) [options]\n"
"Closed-loop UDP request/response client. Prints:\n"
"  requests=N replies=M lost=L seconds=S rate=R p50_us= p90_us= p99_us= p999_us=\n"
"  max_us= late=X errors=E\n"
"rate is replies per second; latencies are within about 3%% (log-linear histogram).\n"
"  --to IP:PORT       server: 127.0.0.0/8 or [::1] (see --allow-netns)\n"
"  --count N          requests to send in all, re-sends after a loss included\n"
"  --seconds S        stop issuing after S seconds (default 60, at most 3600); replies\n"
"                     still outstanding then get their --timeout\n"
"  --size BYTES       synthetic request size (default 64; at least 8 for echo ids)\n"
"  --payload FILE     request bytes from this file (e.g. a DNS query)\n"
"  --inflight W       outstanding requests, 1..%u (default 1)\n"
"  --sockets K        spread the W slots over K sockets (source ports), 1..%u (default 1)\n"
"  --timeout MS       a request unanswered this long is lost and re-armed (default 1000)\n"
"  --match MODE       echo: a 64-bit id in bytes 0-7 (the server echoes it); dnsid: the\n"
"                     DNS ID in bytes 0-1 (at most %u slots per socket) (default echo)\n"
"  --batch B          datagrams per sendmmsg/recvmmsg, 1..1024 (default 64)\n"
"  --allow-netns      also allow 198.51.100.0/24 and 2001:db8::/32 (test namespaces)\n"
"  -h, --help         this text\n"
"A reply that matches no outstanding request (late after a timeout, or foreign) counts\n"
"in late.\n", MAX_INFLIGHT, MAX_SOCKETS, MAX_DNS_SLOTS_PER_SOCKET);
}

static int parse_args(int argc, char **argv, struct rr_opts *o)
{
    enum { O_TO = 256, O_COUNT, O_SECONDS, O_SIZE, O_PAYLOAD, O_INFLIGHT, O_SOCKETS,
           O_TIMEOUT, O_MATCH, O_BATCH, O_NETNS };
    static const struct option longopts[] = {
        { "to", required_argument, NULL, O_TO },
        { "count", required_argument, NULL, O_COUNT },
        { "seconds", required_argument, NULL, O_SECONDS },
        { "size", required_argument, NULL, O_SIZE },
        { "payload", required_argument, NULL, O_PAYLOAD },
        { "inflight", required_argument, NULL, O_INFLIGHT },
        { "sockets", required_argument, NULL, O_SOCKETS },
        { "timeout", required_argument, NULL, O_TIMEOUT },
        { "match", required_argument, NULL, O_MATCH },
        { "batch", required_argument, NULL, O_BATCH },
        { "allow-netns", no_argument, NULL, O_NETNS },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c, bad = 0, have_seconds = 0;

    *o = (struct rr_opts){ .size = 64, .inflight = 1, .sockets = 1, .timeout_ms = 1000,
                           .batch = 64, .seconds = 60 };
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_TO: o->to_str = optarg; break;
        case O_COUNT: bad |= bench_parse_u64(optarg, 1, UINT64_MAX, &o->count); break;
        case O_SECONDS:
            bad |= bench_parse_double(optarg, 0.001, BENCH_MAX_SECONDS, &o->seconds);
            have_seconds = 1;
            break;
        case O_SIZE: bad |= bench_parse_u64(optarg, 1, BENCH_MAX_DGRAM, &o->size); break;
        case O_PAYLOAD: o->payload_path = optarg; break;
        case O_INFLIGHT: bad |= bench_parse_u64(optarg, 1, MAX_INFLIGHT, &o->inflight); break;
        case O_SOCKETS: bad |= bench_parse_u64(optarg, 1, MAX_SOCKETS, &o->sockets); break;
        case O_TIMEOUT: bad |= bench_parse_u64(optarg, 1, 60000, &o->timeout_ms); break;
        case O_MATCH:
            if (strcmp(optarg, "echo") == 0)
                o->match = MATCH_ECHO;
            else if (strcmp(optarg, "dnsid") == 0)
                o->match = MATCH_DNSID;
            else
                bad = -1;
            break;
        case O_BATCH: bad |= bench_parse_u64(optarg, 1, MAX_BATCH, &o->batch); break;
        case O_NETNS: o->allow_netns = 1; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
        if (bad) {
            bench_err(TOOL, 0, "--%s %s: out of range or not valid", longopts[c - O_TO].name,
                      optarg);
            return -1;
        }
    }
    if (optind < argc) {
        bench_err(TOOL, 0, "unexpected argument %s (see --help)", argv[optind]);
        return -1;
    }
    if (!o->count && !have_seconds) {
        bench_err(TOOL, 0, "give a bound: --count N or --seconds S");
        return -1;
    }
    if (o->sockets > o->inflight) {
        bench_err(TOOL, 0, "--sockets %llu is more than --inflight %llu",
                  (unsigned long long)o->sockets, (unsigned long long)o->inflight);
        return -1;
    }
    if (o->match == MATCH_DNSID &&
        (o->inflight + o->sockets - 1) / o->sockets > MAX_DNS_SLOTS_PER_SOCKET) {
        bench_err(TOOL, 0, "--match=dnsid: at most %u in flight per socket (raise --sockets)",
                  MAX_DNS_SLOTS_PER_SOCKET);
        return -1;
    }
    return bench_addr_get(TOOL, "--to", o->to_str, o->allow_netns, &o->to);
}

static int open_sockets(struct rr *rr)
{
    size_t k = rr->o.sockets, per = (rr->o.inflight + k - 1) / k;

    rr->socks = calloc(k, sizeof *rr->socks);
    rr->pfds = calloc(k, sizeof *rr->pfds);
    if (!rr->socks || !rr->pfds) {
        bench_err(TOOL, ENOMEM, "sockets");
        return -1;
    }
    for (size_t s = 0; s < k; s++)
        rr->socks[s].fd = -1;
    for (size_t s = 0; s < k; s++) {
        int fd = socket(rr->o.to.ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            bench_err(TOOL, errno, "socket");
            return -1;
        }
        rr->socks[s].fd = fd;
        if (connect(fd, (const struct sockaddr *)&rr->o.to.ss, rr->o.to.len) != 0) {
            bench_err(TOOL, errno, "connect %s", rr->o.to_str);
            return -1;
        }
        rr->socks[s].queue = malloc(per * sizeof *rr->socks[s].queue);
        if (!rr->socks[s].queue) {
            bench_err(TOOL, ENOMEM, "send queue");
            return -1;
        }
        rr->pfds[s].fd = fd;
        rr->pfds[s].events = POLLIN;
    }
    return 0;
}

static int prepare(struct rr *rr)
{
    char err[512];
    size_t b = rr->o.batch, per = (rr->o.inflight + rr->o.sockets - 1) / rr->o.sockets;
    size_t need = rr->o.match == MATCH_DNSID ? 2 : 8;
    int rc = rr->o.payload_path ? payload_load(&rr->pl, rr->o.payload_path, 0, err, sizeof err)
                                : payload_pattern(&rr->pl, rr->o.size, err, sizeof err);

    if (rc < 0) {
        bench_err(TOOL, 0, "%s", err);
        return -1;
    }
    if (rr->pl.len[0] < need) {
        bench_err(TOOL, 0, "requests of %zu bytes: --match=%s needs at least %zu",
                  rr->pl.len[0], rr->o.match == MATCH_DNSID ? "dnsid" : "echo", need);
        return -1;
    }
    while ((1u << rr->dns_bits) < per)
        rr->dns_bits++;
    rr->slots = calloc(rr->o.inflight, sizeof *rr->slots);
    rr->smsgs = calloc(b, sizeof *rr->smsgs);
    rr->rmsgs = calloc(b, sizeof *rr->rmsgs);
    rr->siov = calloc(b, sizeof *rr->siov);
    rr->riov = calloc(b, sizeof *rr->riov);
    rr->sbufs = malloc(b * rr->pl.len[0]);
    rr->rbufs = malloc(b * REPLY_BUFSIZE);
    if (!rr->slots || !rr->smsgs || !rr->rmsgs || !rr->siov || !rr->riov || !rr->sbufs ||
        !rr->rbufs) {
        bench_err(TOOL, ENOMEM, "buffers");
        return -1;
    }
    for (size_t i = 0; i < b; i++) {
        memcpy(rr->sbufs + i * rr->pl.len[0], rr->pl.buf, rr->pl.len[0]);
        rr->siov[i] = (struct iovec){ rr->sbufs + i * rr->pl.len[0], rr->pl.len[0] };
        rr->smsgs[i].msg_hdr.msg_iov = &rr->siov[i];
        rr->smsgs[i].msg_hdr.msg_iovlen = 1;
        rr->riov[i] = (struct iovec){ rr->rbufs + i * REPLY_BUFSIZE, REPLY_BUFSIZE };
        rr->rmsgs[i].msg_hdr.msg_iov = &rr->riov[i];
        rr->rmsgs[i].msg_hdr.msg_iovlen = 1;
    }
    hist_init(&rr->hist);
    return open_sockets(rr);
}

static int may_issue(const struct rr *rr)
{
    return rr->issuing && (rr->o.count == 0 || rr->armed < rr->o.count);
}

/* Gives slot i a new id and queues it on its socket (slot i belongs to socket i % K). */
static void arm(struct rr *rr, unsigned i)
{
    struct slot *sl = &rr->slots[i];
    struct rr_sock *s = &rr->socks[i % rr->o.sockets];

    sl->gen++;
    if (rr->o.match == MATCH_DNSID)
        sl->id = (((uint64_t)sl->gen << rr->dns_bits) | (i / rr->o.sockets)) & 0xffffu;
    else
        sl->id = ((uint64_t)sl->gen << 20) | i;
    sl->inflight = 1;
    sl->sent_ns = 0;
    s->queue[s->nqueue++] = i;
    rr->armed++;
    rr->outstanding++;
}

static void count_error(struct rr *rr, int err, const char *what)
{
    if (rr->errors < ERRORS_SHOWN)
        bench_err(TOOL, err, "%s %s", what, rr->o.to_str);
    else if (rr->errors == ERRORS_SHOWN)
        bench_err(TOOL, 0, "further errors are counted, not shown");
    rr->errors++;
}

/* Sends socket s's queued requests in batches. A request whose send fails stays in flight
 * and times out (lost); the loop makes at most one call per queued request. */
static void flush(struct rr *rr, struct rr_sock *s)
{
    size_t len = rr->pl.len[0];
    unsigned done = 0;

    while (done < s->nqueue) {
        unsigned n = s->nqueue - done < rr->o.batch ? s->nqueue - done : (unsigned)rr->o.batch;
        uint64_t now = bench_now_ns();
        int r;

        for (unsigned k = 0; k < n; k++) {
            struct slot *sl = &rr->slots[s->queue[done + k]];
            unsigned char *p = rr->sbufs + k * len;
            if (rr->o.match == MATCH_DNSID) {
                p[0] = (unsigned char)(sl->id >> 8);
                p[1] = (unsigned char)sl->id;
            } else {
                bench_put_be64(p, sl->id);
            }
            sl->sent_ns = now;
        }
        r = sendmmsg(s->fd, rr->smsgs, n, 0);
        if (r > 0) {
            done += (unsigned)r;
            rr->requests += (unsigned)r;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else {
            count_error(rr, r < 0 ? errno : EIO, "sendmmsg to");
            done++;
            rr->requests++;
        }
    }
    s->nqueue = 0;
}

/* The slot a reply on socket sidx names, or -1 when it matches nothing outstanding. */
static long match_reply(const struct rr *rr, unsigned sidx, const unsigned char *p, size_t len)
{
    uint64_t id, i;

    if (rr->o.match == MATCH_DNSID) {
        if (len < 2)
            return -1;
        id = ((uint64_t)p[0] << 8) | p[1];
        i = (id & ((1u << rr->dns_bits) - 1u)) * rr->o.sockets + sidx;
    } else {
        if (len < 8)
            return -1;
        id = bench_get_be64(p);
        i = id & (MAX_INFLIGHT - 1u);
        if (i % rr->o.sockets != sidx)
            return -1;
    }
    if (i >= rr->o.inflight || !rr->slots[i].inflight || rr->slots[i].id != id)
        return -1;
    return (long)i;
}

/* Reads what socket sidx has waiting (at most DRAIN_ROUNDS batches), records each matched
 * reply's latency and re-arms its slot. */
static void drain(struct rr *rr, unsigned sidx)
{
    struct rr_sock *s = &rr->socks[sidx];

    for (unsigned round = 0; round < DRAIN_ROUNDS; round++) {
        int n = recvmmsg(s->fd, rr->rmsgs, (unsigned)rr->o.batch, MSG_DONTWAIT, NULL);
        uint64_t now = bench_now_ns();

        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                count_error(rr, errno, "recvmmsg from");
            return;
        }
        for (int k = 0; k < n; k++) {
            long i = match_reply(rr, sidx, rr->rbufs + (size_t)k * REPLY_BUFSIZE,
                                 rr->rmsgs[k].msg_len);
            if (i < 0) {
                rr->late++;
                continue;
            }
            hist_record(&rr->hist, now - rr->slots[i].sent_ns);
            rr->slots[i].inflight = 0;
            rr->outstanding--;
            rr->replies++;
            if (may_issue(rr))
                arm(rr, (unsigned)i);
        }
        if ((unsigned)n < rr->o.batch)
            return;
    }
}

/* Counts requests older than --timeout as lost and re-arms their slots. */
static void expire(struct rr *rr, uint64_t now, int all)
{
    uint64_t limit = rr->o.timeout_ms * 1000000u;

    for (unsigned i = 0; i < rr->o.inflight; i++) {
        struct slot *sl = &rr->slots[i];
        /* sent_ns 0: armed in this wake-up, not sent yet. */
        if (!sl->inflight || (!all && (sl->sent_ns == 0 || now - sl->sent_ns < limit)))
            continue;
        sl->inflight = 0;
        rr->outstanding--;
        rr->lost++;
        if (may_issue(rr))
            arm(rr, i);
    }
}

/* The closed loop: bounded by --count (no arm past it), --seconds (no arm after it) and a
 * hard end one timeout plus one second after that. */
static void run(struct rr *rr, uint64_t t0)
{
    const uint64_t issue_end = t0 + (uint64_t)(rr->o.seconds * 1e9);
    const uint64_t hard_end = issue_end + rr->o.timeout_ms * 1000000u + 1000000000u;
    uint64_t scan_every = rr->o.timeout_ms * 1000000u / 8, next_scan;
    const unsigned k = (unsigned)rr->o.sockets;

    if (scan_every < 1000000u)
        scan_every = 1000000u;
    if (scan_every > 50000000u)
        scan_every = 50000000u;
    next_scan = t0 + scan_every;
    rr->issuing = 1;
    for (unsigned i = 0; i < rr->o.inflight && may_issue(rr); i++)
        arm(rr, i);
    for (;;) {
        uint64_t now;
        int ready;

        for (unsigned s = 0; s < k; s++)
            if (rr->socks[s].nqueue)
                flush(rr, &rr->socks[s]);
        if (rr->outstanding == 0)
            break;
        now = bench_now_ns();
        ready = poll(rr->pfds, k,
                     next_scan > now ? (int)((next_scan - now + 999999u) / 1000000u) : 0);
        if (ready > 0)
            for (unsigned s = 0; s < k; s++)
                if (rr->pfds[s].revents)
                    drain(rr, s);
        now = bench_now_ns();
        if (now >= next_scan) {
            next_scan = now + scan_every;
            if (now >= issue_end || bench_stop_requested())
                rr->issuing = 0;
            if (now >= hard_end) {
                expire(rr, now, 1);
                break;
            }
            expire(rr, now, 0);
        }
    }
}

static void cleanup(struct rr *rr)
{
    if (rr->socks)
        for (uint64_t s = 0; s < rr->o.sockets; s++) {
            if (rr->socks[s].fd >= 0)
                close(rr->socks[s].fd);
            free(rr->socks[s].queue);
        }
    free(rr->socks);
    free(rr->pfds);
    free(rr->slots);
    free(rr->smsgs);
    free(rr->rmsgs);
    free(rr->siov);
    free(rr->riov);
    free(rr->sbufs);
    free(rr->rbufs);
    payload_free(&rr->pl);
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

int main(int argc, char **argv)
{
    struct rr *rr = calloc(1, sizeof *rr); /* the histogram makes it too big for a stack */
    uint64_t t0;
    double secs;
    int rc = 2;

    if (!rr) {
        bench_err(TOOL, ENOMEM, "state");
        return 2;
    }
    if (parse_args(argc, argv, &rr->o) < 0)
        goto out;
    if (prepare(rr) < 0 || bench_signals_block() < 0)
        goto out;
    t0 = bench_now_ns();
    run(rr, t0);
    secs = (double)(bench_now_ns() - t0) / 1e9;
    printf("requests=%llu replies=%llu lost=%llu seconds=%.3f rate=%.0f p50_us=%.1f "
           "p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f late=%llu errors=%llu\n",
           (unsigned long long)rr->requests, (unsigned long long)rr->replies,
           (unsigned long long)rr->lost, secs, secs > 0 ? (double)rr->replies / secs : 0.0,
           us(hist_quantile(&rr->hist, 0.50)), us(hist_quantile(&rr->hist, 0.90)),
           us(hist_quantile(&rr->hist, 0.99)), us(hist_quantile(&rr->hist, 0.999)),
           us(rr->hist.max), (unsigned long long)rr->late, (unsigned long long)rr->errors);
    fflush(stdout);
    rc = rr->lost || rr->errors ? 1 : 0;
out:
    cleanup(rr);
    free(rr);
    return rc;
}
