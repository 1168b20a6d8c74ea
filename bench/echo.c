/* bench/echo.c: the raw C echo limit. recvmmsg a batch, sendmmsg every datagram back to its
 * sender, on one UDP socket. Bounded by --seconds, --count and --idle. Prints:
 * received=N sent=M errors=E drops=D seconds=S cpu_user=U cpu_sys=S2 cpu_s_per_million=X */
#include "common.h"
#include "rx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOOL "echo"
#define ERRORS_SHOWN 5u
#define MAX_RECV_ERRORS 1000u

struct echo_stats {
    uint64_t received, sent, bytes, errors, recv_errors;
    uint32_t ovfl;
    uint64_t first_ns, last_ns;
};

static void usage(FILE *f)
{
    fprintf(f,
"usage: echo --bind IP:PORT [options]\n"
"Raw C echo limit (recvmmsg + sendmmsg back to each sender). Prints when done:\n"
"  received=N sent=M errors=E drops=D seconds=S cpu_user=U cpu_sys=S2\n"
"  cpu_s_per_million=X bytes=B rate=R\n"
"seconds is first to last datagram; CPU is the whole run's, per million received.\n"
"Once bound it prints \"echo: listening on IP:PORT\" to stderr (port 0 picks one).\n"
"  --bind IP:PORT     127.0.0.0/8 or [::1] (see --allow-netns)\n"
"  --batch B          datagrams per recvmmsg/sendmmsg, 1..1024 (default 64)\n"
"  --rcvbuf BYTES     SO_RCVBUF (SO_RCVBUFFORCE when privileged); default: leave\n"
"  --bufsize BYTES    buffer per datagram, 1..65536 (default 65536; longer datagrams\n"
"                     are echoed cut)\n"
"  --count N          stop after N datagrams received (default: no count bound)\n"
"  --seconds S        stop after S seconds in all (default 60, at most 3600)\n"
"  --idle S           stop S seconds after the last datagram; 0 = never (default 2)\n"
"  --allow-netns      also allow 198.51.100.0/24 and 2001:db8::/32 (test namespaces)\n"
"  -h, --help         this text\n");
}


/* Sends the n received datagrams back, reusing the receive headers: each msg_name is the
 * sender and each iovec is cut to the bytes received. A datagram that fails is counted and
 * skipped; the loop makes at most n calls. */
static void echo_back(int fd, struct rx_ring *ring, unsigned n, struct echo_stats *st)
{
    unsigned done = 0;

    for (unsigned i = 0; i < n; i++) {
        struct msghdr *mh = &ring->msgs[i].msg_hdr;
        uint32_t ovfl;
        st->bytes += ring->msgs[i].msg_len;
        if (bench_read_ovfl(mh, &ovfl) && ovfl > st->ovfl)
            st->ovfl = ovfl;
        ring->iov[i].iov_len = ring->msgs[i].msg_len < ring->bufsize ? ring->msgs[i].msg_len
                                                                      : ring->bufsize;
        mh->msg_control = NULL;
        mh->msg_controllen = 0;
    }
    while (done < n) {
        int r = sendmmsg(fd, ring->msgs + done, n - done, 0);
        if (r > 0) {
            st->sent += (unsigned)r;
            done += (unsigned)r;
        } else {
            int e = r < 0 ? errno : EIO;
            if (e == EINTR)
                continue;
            if (st->errors < ERRORS_SHOWN)
                bench_err(TOOL, e, "sendmmsg");
            else if (st->errors == ERRORS_SHOWN)
                bench_err(TOOL, 0, "further send errors are counted, not shown");
            st->errors++;
            done++;
        }
    }
    /* Restore what the next receive needs. */
    for (unsigned i = 0; i < n; i++) {
        ring->iov[i].iov_len = ring->bufsize;
        ring->msgs[i].msg_hdr.msg_control = ring->ctrl + (size_t)i * BENCH_OVFL_CMSG_SPACE;
    }
    rx_ring_reset(ring, n);
}

/* The echo loop: bounded by --count, the --seconds deadline and --idle. */
static void run(int fd, const struct rx_opts *o, struct rx_ring *ring, struct echo_stats *st)
{
    const uint64_t deadline = bench_now_ns() + (uint64_t)(o->seconds * 1e9);
    const uint64_t idle = (uint64_t)(o->idle * 1e9);
    uint64_t iter = 0;

    while (o->count == 0 || st->received < o->count) {
        uint64_t left = o->count ? o->count - st->received : ring->batch;
        unsigned vlen = left < ring->batch ? (unsigned)left : ring->batch;
        int n = recvmmsg(fd, ring->msgs, vlen, MSG_WAITFORONE, NULL);
        uint64_t now;

        if (n > 0) {
            st->received += (unsigned)n;
            echo_back(fd, ring, (unsigned)n, st);
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            if (st->recv_errors++ < ERRORS_SHOWN)
                bench_err(TOOL, errno, "recvmmsg");
            if (st->recv_errors >= MAX_RECV_ERRORS)
                break;
        }
        now = bench_now_ns();
        if (n > 0) {
            if (!st->first_ns)
                st->first_ns = now;
            st->last_ns = now;
        }
        if (rx_should_stop(now, deadline, st->last_ns, idle, n <= 0 || (++iter & 63) == 0))
            break;
    }
}

int main(int argc, char **argv)
{
    struct rx_opts o;
    struct echo_stats st;
    struct rx_ring ring;
    struct bench_cpu c0, c1;
    int fd, granted = 0, rc = 2;
    uint64_t drops;
    double secs, cpu;

    memset(&st, 0, sizeof st);
    if (rx_parse_args(TOOL, argc, argv, 0, usage, &o) < 0)
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
    secs = st.last_ns > st.first_ns ? (double)(st.last_ns - st.first_ns) / 1e9 : 0.0;
    cpu = (c1.user - c0.user) + (c1.sys - c0.sys);
    printf("received=%llu sent=%llu errors=%llu drops=%llu seconds=%.3f cpu_user=%.3f "
           "cpu_sys=%.3f cpu_s_per_million=%.3f bytes=%llu rate=%.0f\n",
           (unsigned long long)st.received, (unsigned long long)st.sent,
           (unsigned long long)st.errors, (unsigned long long)drops, secs, c1.user - c0.user,
           c1.sys - c0.sys, st.received ? cpu * 1e6 / (double)st.received : 0.0,
           (unsigned long long)st.bytes, secs > 0 ? (double)st.received / secs : 0.0);
    fflush(stdout);
    rc = st.errors || st.recv_errors ? 1 : 0;
    if (fd >= 0)
        close(fd);
    rx_ring_free(&ring);
    return rc;
}
