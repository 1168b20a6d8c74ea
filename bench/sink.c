/* bench/sink.c: the raw C receive limit. A recvmmsg loop on one UDP socket that counts
 * datagrams, bytes, truncations, kernel drops (SO_RXQ_OVFL and /proc/net/udp) and, with
 * --seq, sequence gaps and reordering. Bounded by --count, --seconds and --idle. Prints:
 * received=N drops=D gaps=G seconds=S cpu_user=U cpu_sys=S2 cpu_s_per_million=X ... */
#include "common.h"
#include "rx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOOL "sink"
#define MAX_RECV_ERRORS 1000u

/* Sequence accounting: next is the number expected after the highest seen. */
struct seqtrack {
    uint64_t next, gaps, reordered;
};

struct sink_stats {
    uint64_t received, bytes, truncated, recv_errors;
    uint32_t ovfl;
    uint64_t first_ns, last_ns;
    struct seqtrack seq;
};

static void usage(FILE *f)
{
    fprintf(f,
"usage: sink --bind IP:PORT [options]\n"
"Raw C receive limit (recvmmsg). Prints when done:\n"
"  received=N drops=D gaps=G seconds=S cpu_user=U cpu_sys=S2 cpu_s_per_million=X\n"
"  bytes=B rate=R reordered=O truncated=T rcvbuf=RB\n"
"seconds is first to last datagram; drops are the socket's kernel drops; CPU is the\n"
"whole run's. Once bound it prints \"sink: listening on IP:PORT\" to stderr (port 0\n"
"picks a free port).\n"
"  --bind IP:PORT     127.0.0.0/8 or [::1] (see --allow-netns)\n"
"  --batch B          datagrams per recvmmsg, 1..1024 (default 64)\n"
"  --rcvbuf BYTES     SO_RCVBUF (SO_RCVBUFFORCE when privileged); default: leave\n"
"  --bufsize BYTES    receive buffer per datagram, 1..65536 (default 65536)\n"
"  --count N          stop after N datagrams (default: no count bound)\n"
"  --seconds S        stop after S seconds in all (default 60, at most 3600)\n"
"  --idle S           stop S seconds after the last datagram; 0 = never (default 2)\n"
"  --seq              read loadgen's sequence number (bytes 0-7, from 0): gaps counts\n"
"                     missing numbers (with --count, up to N-1), reordered counts late\n"
"                     arrivals that filled a gap\n"
"  --allow-netns      also allow 198.51.100.0/24 and 2001:db8::/32 (test namespaces)\n"
"  -h, --help         this text\n");
}


static void seq_note(struct seqtrack *t, uint64_t s)
{
    if (s == t->next) {
        t->next++;
    } else if (s > t->next) {
        t->gaps += s - t->next;
        t->next = s + 1;
    } else if (t->gaps > 0) { /* late: fills a gap counted earlier (or is a duplicate) */
        t->gaps--;
        t->reordered++;
    }
}

static void account(struct sink_stats *st, const struct rx_opts *o, struct rx_ring *ring,
                    unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        const struct msghdr *mh = &ring->msgs[i].msg_hdr;
        size_t len = ring->msgs[i].msg_len;
        uint32_t ovfl;

        st->bytes += len;
        if (mh->msg_flags & MSG_TRUNC)
            st->truncated++;
        if (bench_read_ovfl(mh, &ovfl) && ovfl > st->ovfl)
            st->ovfl = ovfl;
        if (o->seq && len >= 8 && ring->bufsize >= 8)
            seq_note(&st->seq, bench_get_be64(ring->bufs + (size_t)i * ring->bufsize));
    }
    st->received += n;
}

/* The receive loop: bounded by --count, the --seconds deadline and --idle. */
static void run(int fd, const struct rx_opts *o, struct rx_ring *ring, struct sink_stats *st)
{
    const uint64_t deadline = bench_now_ns() + (uint64_t)(o->seconds * 1e9);
    const uint64_t idle = (uint64_t)(o->idle * 1e9);
    uint64_t iter = 0;

    while (o->count == 0 || st->received < o->count) {
        uint64_t left = o->count ? o->count - st->received : ring->batch;
        unsigned vlen = left < ring->batch ? (unsigned)left : ring->batch;
        int n = recvmmsg(fd, ring->msgs, vlen, MSG_WAITFORONE, NULL);
        uint64_t now = bench_now_ns();

        if (n > 0) {
            account(st, o, ring, (unsigned)n);
            rx_ring_reset(ring, (unsigned)n);
            if (!st->first_ns)
                st->first_ns = now;
            st->last_ns = now;
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            if (st->recv_errors++ < 5)
                bench_err(TOOL, errno, "recvmmsg");
            if (st->recv_errors >= MAX_RECV_ERRORS)
                break;
        }
        if (rx_should_stop(now, deadline, st->last_ns, idle, n <= 0 || (++iter & 63) == 0))
            break;
    }
}

int main(int argc, char **argv)
{
    struct rx_opts o;
    struct sink_stats st;
    struct rx_ring ring;
    struct bench_cpu c0, c1;
    int fd, granted = 0, rc = 2;
    uint64_t drops;
    double secs, cpu;

    memset(&st, 0, sizeof st);
    if (rx_parse_args(TOOL, argc, argv, 1, usage, &o) < 0)
        return 2;
    fd = rx_start(TOOL, &o, &ring, &granted);
    if (fd < 0)
        return 2;
    bench_cpu_now(&c0);
    run(fd, &o, &ring, &st);
    bench_cpu_now(&c1);

    drops = rx_proc_drops(fd);
    if (drops < st.ovfl)
        drops = st.ovfl;
    if (o.seq && o.count && st.seq.next < o.count)
        st.seq.gaps += o.count - st.seq.next;
    secs = st.last_ns > st.first_ns ? (double)(st.last_ns - st.first_ns) / 1e9 : 0.0;
    cpu = (c1.user - c0.user) + (c1.sys - c0.sys);
    printf("received=%llu drops=%llu gaps=%llu seconds=%.3f cpu_user=%.3f cpu_sys=%.3f "
           "cpu_s_per_million=%.3f bytes=%llu rate=%.0f reordered=%llu truncated=%llu "
           "rcvbuf=%d\n",
           (unsigned long long)st.received, (unsigned long long)drops,
           (unsigned long long)st.seq.gaps, secs, c1.user - c0.user, c1.sys - c0.sys,
           st.received ? cpu * 1e6 / (double)st.received : 0.0, (unsigned long long)st.bytes,
           secs > 0 ? (double)st.received / secs : 0.0, (unsigned long long)st.seq.reordered,
           (unsigned long long)st.truncated, granted);
    fflush(stdout);
    rc = st.recv_errors ? 1 : 0;
    if (fd >= 0)
        close(fd);
    rx_ring_free(&ring);
    return rc;
}
