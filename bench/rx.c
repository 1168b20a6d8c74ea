/* bench/rx.c: receive socket and buffer ring for sink and echo (see rx.h). */
#include "rx.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define PROC_MAX_LINES 1000000u /* bound on the /proc/net/udp scan */

int rx_ring_init(struct rx_ring *r, unsigned batch, size_t bufsize)
{
    memset(r, 0, sizeof *r);
    r->batch = batch;
    r->bufsize = bufsize;
    r->bufs = malloc((size_t)batch * bufsize);
    r->ctrl = malloc((size_t)batch * BENCH_OVFL_CMSG_SPACE);
    r->names = calloc(batch, sizeof *r->names);
    r->iov = calloc(batch, sizeof *r->iov);
    r->msgs = calloc(batch, sizeof *r->msgs);
    if (!r->bufs || !r->ctrl || !r->names || !r->iov || !r->msgs) {
        rx_ring_free(r);
        return -1;
    }
    for (unsigned i = 0; i < batch; i++) {
        struct msghdr *mh = &r->msgs[i].msg_hdr;
        r->iov[i].iov_base = r->bufs + (size_t)i * bufsize;
        r->iov[i].iov_len = bufsize;
        mh->msg_iov = &r->iov[i];
        mh->msg_iovlen = 1;
        mh->msg_name = &r->names[i];
        mh->msg_control = r->ctrl + (size_t)i * BENCH_OVFL_CMSG_SPACE;
    }
    rx_ring_reset(r, batch);
    return 0;
}

void rx_ring_reset(struct rx_ring *r, unsigned n)
{
    for (unsigned i = 0; i < n && i < r->batch; i++) {
        struct msghdr *mh = &r->msgs[i].msg_hdr;
        mh->msg_namelen = sizeof r->names[i];
        mh->msg_controllen = BENCH_OVFL_CMSG_SPACE;
        mh->msg_flags = 0;
    }
}

void rx_ring_free(struct rx_ring *r)
{
    free(r->bufs);
    free(r->ctrl);
    free(r->names);
    free(r->iov);
    free(r->msgs);
    memset(r, 0, sizeof *r);
}

int rx_open(const char *tool, const struct bench_addr *addr, int rcvbuf, int *granted,
            struct bench_addr *bound)
{
    struct timeval tv = { .tv_sec = 0, .tv_usec = RX_TIMEOUT_MS * 1000 };
    char name[80];
    socklen_t len = sizeof bound->ss, glen = sizeof *granted;
    int fd;

    bench_addr_format(addr, name, sizeof name);
    fd = socket(addr->ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        bench_err(tool, errno, "socket");
        return -1;
    }
    if (rcvbuf > 0 && bench_set_rcvbuf(fd, rcvbuf, granted) != 0) {
        bench_err(tool, errno, "SO_RCVBUF %d", rcvbuf);
        goto fail;
    }
    if (rcvbuf <= 0 && getsockopt(fd, SOL_SOCKET, SO_RCVBUF, granted, &glen) != 0) {
        bench_err(tool, errno, "SO_RCVBUF");
        goto fail;
    }
    if (bench_want_rxq_ovfl(fd) != 0) {
        bench_err(tool, errno, "SO_RXQ_OVFL");
        goto fail;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
        bench_err(tool, errno, "SO_RCVTIMEO");
        goto fail;
    }
    if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) != 0) {
        bench_err(tool, errno, "bind %s", name);
        goto fail;
    }
    memset(bound, 0, sizeof *bound);
    if (getsockname(fd, (struct sockaddr *)&bound->ss, &len) != 0) {
        bench_err(tool, errno, "getsockname");
        goto fail;
    }
    bound->len = len;
    return fd;
fail:
    close(fd);
    return -1;
}

/* Scans one /proc/net/udp* file for the line whose inode is ino; 1 and *drops if found. */
static int proc_scan(const char *path, unsigned long ino, uint64_t *drops)
{
    char line[512];
    FILE *f = fopen(path, "r");
    int found = 0;

    if (!f)
        return 0;
    for (unsigned n = 0; n < PROC_MAX_LINES && fgets(line, sizeof line, f); n++) {
        unsigned long inode;
        unsigned long long d;
        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops */
        if (sscanf(line, " %*s %*s %*s %*s %*s %*s %*s %*s %*s %lu %*s %*s %llu", &inode,
                   &d) == 2 &&
            inode == ino) {
            *drops = d;
            found = 1;
            break;
        }
    }
    fclose(f);
    return found;
}

uint64_t rx_proc_drops(int fd)
{
    struct stat st;
    uint64_t drops = 0;

    if (fstat(fd, &st) != 0)
        return 0;
    if (!proc_scan("/proc/net/udp", (unsigned long)st.st_ino, &drops))
        proc_scan("/proc/net/udp6", (unsigned long)st.st_ino, &drops);
    return drops;
}

int rx_should_stop(uint64_t now, uint64_t deadline, uint64_t last_ns, uint64_t idle_ns,
                   int signals)
{
    if (now >= deadline)
        return 1;
    if (idle_ns && last_ns && now - last_ns >= idle_ns)
        return 1;
    return signals && bench_stop_requested();
}

int rx_parse_args(const char *tool, int argc, char **argv, int with_seq,
                  void (*usage)(FILE *), struct rx_opts *o)
{
    enum { O_BIND = 256, O_BATCH, O_RCVBUF, O_BUFSIZE, O_COUNT, O_SECONDS, O_IDLE, O_NETNS,
           O_SEQ };
    const struct option longopts[] = {
        { "bind", required_argument, NULL, O_BIND },
        { "batch", required_argument, NULL, O_BATCH },
        { "rcvbuf", required_argument, NULL, O_RCVBUF },
        { "bufsize", required_argument, NULL, O_BUFSIZE },
        { "count", required_argument, NULL, O_COUNT },
        { "seconds", required_argument, NULL, O_SECONDS },
        { "idle", required_argument, NULL, O_IDLE },
        { "allow-netns", no_argument, NULL, O_NETNS },
        { "help", no_argument, NULL, 'h' },
        { with_seq ? "seq" : NULL, no_argument, NULL, O_SEQ }, /* the end when !with_seq */
        { NULL, 0, NULL, 0 },
    };
    int c, bad = 0;

    *o = (struct rx_opts){ .batch = 64, .bufsize = 65536, .seconds = 60, .idle = 2 };
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_BIND: o->bind_str = optarg; break;
        case O_BATCH: bad |= bench_parse_u64(optarg, 1, RX_MAX_BATCH, &o->batch); break;
        case O_RCVBUF: bad |= bench_parse_u64(optarg, 0, 1u << 30, &o->rcvbuf); break;
        case O_BUFSIZE: bad |= bench_parse_u64(optarg, 1, 65536, &o->bufsize); break;
        case O_COUNT: bad |= bench_parse_u64(optarg, 1, UINT64_MAX, &o->count); break;
        case O_SECONDS:
            bad |= bench_parse_double(optarg, 0.001, BENCH_MAX_SECONDS, &o->seconds);
            break;
        case O_IDLE: bad |= bench_parse_double(optarg, 0, BENCH_MAX_SECONDS, &o->idle); break;
        case O_SEQ: o->seq = 1; break;
        case O_NETNS: o->allow_netns = 1; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
        if (bad) {
            bench_err(tool, 0, "--%s %s: out of range or not a number",
                      longopts[c - O_BIND].name, optarg);
            return -1;
        }
    }
    if (optind < argc) {
        bench_err(tool, 0, "unexpected argument %s (see --help)", argv[optind]);
        return -1;
    }
    return bench_addr_get(tool, "--bind", o->bind_str, o->allow_netns, &o->bind);
}

int rx_start(const char *tool, const struct rx_opts *o, struct rx_ring *ring, int *granted)
{
    struct bench_addr bound;
    char name[80];
    if (rx_ring_init(ring, (unsigned)o->batch, (size_t)o->bufsize) < 0) {
        bench_err(tool, ENOMEM, "receive buffers");
        return -1;
    }
    int fd = rx_open(tool, &o->bind, (int)o->rcvbuf, granted, &bound);
    if (fd < 0 || bench_signals_block() < 0) {
        if (fd >= 0)
            close(fd);
        rx_ring_free(ring);
        return -1;
    }
    bench_addr_format(&bound, name, sizeof name);
    fprintf(stderr, "%s: listening on %s\n", tool, name);
    return fd;
}
