/* spec/c/test_sock.c: the Linux platform layer (sock_linux.c, recv_linux.c, send_linux.c)
 * on real sockets over loopback: packet info, truncation, dual-stack, unix credentials,
 * the ICMP error queue, sending from a chosen source, and bind errors. Every wait is a
 * poll() with a timeout; all traffic stays on 127.0.0.0/8, ::1 and a temporary folder. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "netio.h"
#include "check.h"

enum { WAIT_MS = 5000 }; /* a datagram over loopback, even on a loaded machine */

static char tmpdir[64];

/* ---- helpers ---- */

static socklen_t make_ip(const char *ip, int port, struct sockaddr_storage *sa)
{
    socklen_t len = check_addr(ip, port, sa);
    if (len == 0) {
        fprintf(stderr, "make_ip: bad address %s\n", ip);
        abort();
    }
    return len;
}

static struct sock_spec udp_spec(const char *ip, int port)
{
    struct sock_spec s;
    memset(&s, 0, sizeof s);
    s.kind = SOCK_KIND_UDP;
    s.addrlen = make_ip(ip, port, &s.addr);
    s.dualstack = strcmp(ip, "::") == 0;
    return s;
}

static struct sock_spec unix_spec(const char *path)
{
    struct sock_spec s;
    memset(&s, 0, sizeof s);
    s.kind = SOCK_KIND_UNIX;
    struct sockaddr_un *un = (struct sockaddr_un *)&s.addr;
    un->sun_family = AF_UNIX;
    snprintf(un->sun_path, sizeof un->sun_path, "%s", path);
    s.addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
    return s;
}

static struct sock_opts default_opts(void)
{
    struct sock_opts o;
    memset(&o, 0, sizeof o);
    o.unix_mode = -1;
    return o;
}

/* sock_open that prints the error string when it fails. */
static int open_spec(const struct sock_spec *spec, const struct sock_opts *o)
{
    char err[256] = "";
    int granted = 0;
    int fd = sock_open(spec, o, &granted, err, sizeof err);
    if (fd < 0)
        fprintf(stderr, "  sock_open: %s\n", err);
    return fd;
}

static int port_of_addr(const struct sockaddr_storage *sa)
{
    if (sa->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return -1;
}

static int local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    return port_of_addr(&ss);
}

/* The text of an IP address ("" for others). */
static const char *ip_str(const struct sockaddr_storage *sa, char *buf, size_t len)
{
    buf[0] = '\0';
    if (sa->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
    else if (sa->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
                  (socklen_t)len);
    return buf;
}

/* 1 if sa is the IP address ip with port (port < 0: any port). */
static int is_addr(const struct sockaddr_storage *sa, const char *ip, int port)
{
    char buf[INET6_ADDRSTRLEN];
    int ok = strcmp(ip_str(sa, buf, sizeof buf), ip) == 0 &&
             (port < 0 || port_of_addr(sa) == port);
    if (!ok)
        fprintf(stderr, "  address is %s port %d, want %s port %d\n", buf, port_of_addr(sa),
                ip, port);
    return ok;
}

/* A plain UDP socket bound to ip:0 (the test's client). */
static int client(const char *ip)
{
    struct sockaddr_storage sa;
    socklen_t len = make_ip(ip, 0, &sa);
    int fd = socket(sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, len) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static int send_to(int fd, const char *ip, int port, const void *data, size_t len)
{
    struct sockaddr_storage sa;
    socklen_t salen = make_ip(ip, port, &sa);
    return sendto(fd, data, len, 0, (struct sockaddr *)&sa, salen) == (ssize_t)len ? 0 : -1;
}

static int wait_for(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    return poll(&p, 1, WAIT_MS) == 1;
}

/* The port fd is bound to (host order), as the worker learns it once per socket. */
static uint16_t bound_port(int fd)
{
    int type = 0;
    socklen_t tlen = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type == SOCK_RAW)
        return 0; /* raw sockets: getsockname gives the protocol in the port field */
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

/* Waits for fd to be readable and receives a batch: n, or -1 (errno) / 0 on timeout. */
static int recv_wait(int fd, struct recv_ring *ring)
{
    if (!wait_for(fd, POLLIN))
        return 0;
    return recv_batch(fd, ring, bound_port(fd));
}

/* A port on 127.0.0.1 that nobody listens on (bound and closed again). */
static int closed_port(const char *ip)
{
    int fd = client(ip);
    int port = fd >= 0 ? local_port(fd) : -1;
    if (fd >= 0)
        close(fd);
    return port;
}

/* 1 if ::1 can be bound. The specs need ::1 too, so a host without it fails here (one
 * failed CHECK per IPv6 case, with the reason) instead of passing with the IPv6 cases
 * skipped; 0 then, and the caller leaves out its IPv6 steps. */
static int need_ipv6(void)
{
    int fd = client("::1");
    if (fd < 0) {
        fprintf(stderr, "  cannot bind [::1]:0 (%s): IPv6 loopback is required, as by the "
                        "specs\n", strerror(errno));
        CHECK(!"IPv6 loopback ::1 available");
        return 0;
    }
    close(fd);
    return 1;
}

static unsigned lo_index(void)
{
    return if_nametoindex("lo");
}

/* ---- tests ---- */

/* Packet info, TTL, TOS and timestamp of an IPv4 datagram to 127.0.0.1. */
static void test_udp_v4(void)
{
    struct recv_ring ring = {0};
    int lfd = -1, cfd = -1;
    struct sock_spec spec = udp_spec("127.0.0.1", 0);
    struct sock_opts o = default_opts();
    o.want_ttl = o.want_tos = o.want_time = 1;
    REQUIRE(recv_ring_init(&ring, 8, 2048) == 0);
    REQUIRE((lfd = open_spec(&spec, &o)) >= 0);
    REQUIRE((cfd = client("127.0.0.1")) >= 0);
    int lport = local_port(lfd), cport = local_port(cfd);
    int ttl = 33, tos = 0x20;
    CHECK(setsockopt(cfd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl) == 0);
    CHECK(setsockopt(cfd, IPPROTO_IP, IP_TOS, &tos, sizeof tos) == 0);
    CHECK(recv_batch(lfd, &ring, bound_port(lfd)) == 0); /* nothing yet: 0, not an error */
    struct timespec sent, received;
    clock_gettime(CLOCK_REALTIME, &sent);
    REQUIRE(send_to(cfd, "127.0.0.1", lport, "hello", 5) == 0);
    REQUIRE(recv_wait(lfd, &ring) == 1);
    clock_gettime(CLOCK_REALTIME, &received);
    struct dgram *d = &ring.recs[0];
    CHECK(d->len == 5 && d->size == 5 && memcmp(d->data, "hello", 5) == 0);
    CHECK(d->flags == 0);
    CHECK(d->peer.ss_family == AF_INET && d->peerlen == sizeof(struct sockaddr_in));
    CHECK(is_addr(&d->peer, "127.0.0.1", cport));
    CHECK(d->has & DG_HAS_DST);
    CHECK(is_addr(&d->dst, "127.0.0.1", lport));
    CHECK(d->ifindex == lo_index());
    CHECK((d->has & DG_HAS_TTL) && d->ttl == 33);
    CHECK((d->has & DG_HAS_TOS) && d->tos == 0x20);
    CHECK(d->has & DG_HAS_TIME);
    /* The kernel stamped it between our send and our receive (same clock; 10 ms of slack
     * for a clock step). */
    double stamp = (double)d->time_sec + (double)d->time_nsec / 1e9;
    CHECK(stamp >= (double)sent.tv_sec + (double)sent.tv_nsec / 1e9 - 0.01);
    CHECK(stamp <= (double)received.tv_sec + (double)received.tv_nsec / 1e9 + 0.01);
cleanup:
    if (cfd >= 0)
        close(cfd);
    sock_close(lfd, &spec);
    recv_ring_free(&ring);
}

/* A wildcard listener reports which local address the datagram was sent to. */
static void test_udp_any_dst(void)
{
    struct recv_ring ring = {0};
    int lfd = -1, cfd = -1;
    struct sock_spec spec = udp_spec("0.0.0.0", 0);
    struct sock_opts o = default_opts();
    REQUIRE(recv_ring_init(&ring, 4, 512) == 0);
    REQUIRE((lfd = open_spec(&spec, &o)) >= 0);
    REQUIRE((cfd = client("127.0.0.1")) >= 0);
    int lport = local_port(lfd);
    REQUIRE(send_to(cfd, "127.0.0.2", lport, "x", 1) == 0);
    REQUIRE(recv_wait(lfd, &ring) == 1);
    struct dgram *d = &ring.recs[0];
    CHECK(is_addr(&d->dst, "127.0.0.2", lport));
    CHECK(d->ifindex == lo_index());
    CHECK((d->has & DG_HAS_SPEC_DST) && d->spec_dst.ss_family == AF_INET);
    CHECK(!(d->has & (DG_HAS_TTL | DG_HAS_TOS | DG_HAS_TIME))); /* not asked for */
cleanup:
    if (cfd >= 0)
        close(cfd);
    sock_close(lfd, &spec);
    recv_ring_free(&ring);
}

/* A datagram bigger than the buffer: cut, flagged, true size kept; the next one whole. */
static void test_trunc(void)
{
    struct recv_ring ring = {0};
    int lfd = -1, cfd = -1;
    struct sock_spec spec = udp_spec("127.0.0.1", 0);
    struct sock_opts o = default_opts();
    uint8_t big[200];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)i;
    REQUIRE(recv_ring_init(&ring, 4, 64) == 0);
    REQUIRE((lfd = open_spec(&spec, &o)) >= 0);
    REQUIRE((cfd = client("127.0.0.1")) >= 0);
    int lport = local_port(lfd);
    REQUIRE(send_to(cfd, "127.0.0.1", lport, big, sizeof big) == 0);
    REQUIRE(send_to(cfd, "127.0.0.1", lport, big, 10) == 0);
    int n = recv_wait(lfd, &ring);
    REQUIRE(n >= 1);
    struct dgram *d = &ring.recs[0];
    CHECK(d->flags & DG_TRUNC);
    CHECK(d->len == 64 && d->size == 200);
    CHECK(memcmp(d->data, big, 64) == 0);
    if (n == 1) { /* the second one was not queued yet */
        n = recv_wait(lfd, &ring);
        REQUIRE(n >= 1);
    } else {
        d = &ring.recs[1];
    }
    CHECK(!(d->flags & DG_TRUNC) && d->len == 10 && d->size == 10);
cleanup:
    if (cfd >= 0)
        close(cfd);
    sock_close(lfd, &spec);
    recv_ring_free(&ring);
}

/* [::] with dualstack: an IPv4 client is AF_INET on both sides; an IPv6 one stays IPv6. */
static void test_dualstack(void)
{
    struct recv_ring ring = {0};
    int lfd = -1, c4 = -1, c6 = -1;
    struct sock_spec spec = udp_spec("::", 0);
    struct sock_opts o = default_opts();
    o.want_ttl = 1;
    if (!need_ipv6())
        return;
    REQUIRE(recv_ring_init(&ring, 4, 512) == 0);
    REQUIRE((lfd = open_spec(&spec, &o)) >= 0);
    REQUIRE((c4 = client("127.0.0.1")) >= 0);
    int lport = local_port(lfd);
    REQUIRE(send_to(c4, "127.0.0.1", lport, "v4", 2) == 0);
    REQUIRE(recv_wait(lfd, &ring) == 1);
    struct dgram *d = &ring.recs[0];
    CHECK(d->peer.ss_family == AF_INET && d->peerlen == sizeof(struct sockaddr_in));
    CHECK(is_addr(&d->peer, "127.0.0.1", local_port(c4)));
    CHECK(d->dst.ss_family == AF_INET);
    CHECK(is_addr(&d->dst, "127.0.0.1", lport));
    CHECK(d->ifindex == lo_index());
    CHECK(d->has & DG_HAS_TTL); /* IPv4 TTL on an IPv6 socket */

    REQUIRE((c6 = client("::1")) >= 0);
    REQUIRE(send_to(c6, "::1", lport, "v6", 2) == 0);
    REQUIRE(recv_wait(lfd, &ring) == 1);
    CHECK(d->peer.ss_family == AF_INET6);
    CHECK(is_addr(&d->peer, "::1", local_port(c6)));
    CHECK(is_addr(&d->dst, "::1", lport));
    CHECK(d->ifindex == lo_index());
cleanup:
    if (c4 >= 0)
        close(c4);
    if (c6 >= 0)
        close(c6);
    sock_close(lfd, &spec);
    recv_ring_free(&ring);
}

/* A unix datagram socket: sender credentials, the sender's path (none when unbound), the
 * file mode, and removal of the file on close. */
static void test_unix(void)
{
    struct recv_ring ring = {0};
    int lfd = -1, cfd = -1;
    char path[128], cpath[128];
    snprintf(path, sizeof path, "%s/listen.sock", tmpdir);
    snprintf(cpath, sizeof cpath, "%s/client.sock", tmpdir);
    struct sock_spec spec = unix_spec(path);
    struct sock_spec cspec = unix_spec(cpath);
    struct sock_opts o = default_opts();
    o.unix_mode = 0620;
    REQUIRE(recv_ring_init(&ring, 4, 512) == 0);
    REQUIRE((lfd = open_spec(&spec, &o)) >= 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0620);

    REQUIRE((cfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0);
    REQUIRE(sendto(cfd, "hi", 2, 0, (struct sockaddr *)&spec.addr, spec.addrlen) == 2);
    REQUIRE(recv_wait(lfd, &ring) == 1);
    struct dgram *d = &ring.recs[0];
    CHECK(d->len == 2 && memcmp(d->data, "hi", 2) == 0);
    CHECK(d->has & DG_HAS_CREDS);
    CHECK(d->pid == (int64_t)getpid() && d->uid == getuid() && d->gid == getgid());
    CHECK(d->peerlen == 0);
    CHECK(!(d->has & DG_HAS_DST));
    close(cfd);

    REQUIRE((cfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0);
    REQUIRE(bind(cfd, (struct sockaddr *)&cspec.addr, cspec.addrlen) == 0);
    REQUIRE(sendto(cfd, "yo", 2, 0, (struct sockaddr *)&spec.addr, spec.addrlen) == 2);
    REQUIRE(recv_wait(lfd, &ring) == 1);
    CHECK(d->peer.ss_family == AF_UNIX && d->peerlen > offsetof(struct sockaddr_un, sun_path));
    CHECK(strcmp(((struct sockaddr_un *)&d->peer)->sun_path, cpath) == 0);
    CHECK(sock_matches(lfd, &spec) == 1);
    CHECK(sock_matches(lfd, &cspec) == 0);

    /* Descriptors passed with SCM_RIGHTS are closed, not leaked: the lowest free
     * descriptor number is the same before and after. */
    int probe = dup(0), free_before = probe;
    close(probe);
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        size_t align; /* cmsg alignment (CMSG_ALIGN rounds to size_t) */
    } rights;
    struct iovec iov = {.iov_base = "fd", .iov_len = 2};
    struct msghdr mh = {.msg_name = &spec.addr, .msg_namelen = spec.addrlen, .msg_iov = &iov,
                        .msg_iovlen = 1, .msg_control = rights.buf,
                        .msg_controllen = sizeof rights.buf};
    struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int));
    int passed_fd = 0;
    memcpy(CMSG_DATA(h), &passed_fd, sizeof passed_fd);
    /* Linux 6.16+ refuses them at the sender (SO_PASSRIGHTS off): then send without. */
    ssize_t sent = sendmsg(cfd, &mh, 0);
    if (sent < 0 && errno == EPERM) {
        mh.msg_control = NULL;
        mh.msg_controllen = 0;
        sent = sendmsg(cfd, &mh, 0);
    }
    REQUIRE(sent == 2);
    REQUIRE(recv_wait(lfd, &ring) == 1);
    CHECK(d->len == 2 && memcmp(d->data, "fd", 2) == 0);
    probe = dup(0);
    CHECK(probe == free_before);
    close(probe);

    sock_close(lfd, &spec);
    lfd = -1;
    CHECK(lstat(path, &st) != 0 && errno == ENOENT);
cleanup:
    if (cfd >= 0)
        close(cfd);
    unlink(cpath);
    sock_close(lfd, &spec);
    recv_ring_free(&ring);
}

/* A socket file nobody listens on is replaced; a live one, or a plain file, is refused. */
static void test_unix_stale(void)
{
    int old = -1, lfd = -1, lfd2 = -1;
    char path[128], err[256] = "";
    snprintf(path, sizeof path, "%s/stale.sock", tmpdir);
    struct sock_spec spec = unix_spec(path);
    struct sock_opts o = default_opts();
    REQUIRE((old = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0);
    REQUIRE(bind(old, (struct sockaddr *)&spec.addr, spec.addrlen) == 0);
    close(old); /* the file stays: a stale socket */
    old = -1;
    REQUIRE((lfd = open_spec(&spec, &o)) >= 0);

    lfd2 = sock_open(&spec, &o, NULL, err, sizeof err);
    CHECK(lfd2 < 0);
    CHECK(strstr(err, "EADDRINUSE") != NULL);
    CHECK(strstr(err, "unix:") != NULL && strstr(err, path) != NULL);
    struct stat st;
    CHECK(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)); /* the live one's file is kept */
    sock_close(lfd, &spec);
    lfd = -1;
    if (lfd2 >= 0)
        close(lfd2);

    FILE *f = fopen(path, "w"); /* a regular file is never removed */
    REQUIRE(f != NULL);
    fclose(f);
    lfd2 = sock_open(&spec, &o, NULL, err, sizeof err);
    CHECK(lfd2 < 0);
    CHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
    unlink(path);
cleanup:
    if (old >= 0)
        close(old);
    if (lfd2 >= 0)
        close(lfd2);
    sock_close(lfd, &spec);
    unlink(path);
}

/* ICMP port unreachable for a datagram we sent: the receive reports ECONNREFUSED and the
 * error queue says where it was going, what came back and who said so. */
static void check_refused(const char *listen_ip, const char *dst_ip, int want_origin)
{
    struct recv_ring ring = {0};
    int lfd = -1;
    struct sock_spec spec = udp_spec(listen_ip, 0);
    struct sock_opts o = default_opts();
    int dport = closed_port(dst_ip);
    REQUIRE(dport > 0);
    REQUIRE(recv_ring_init(&ring, 4, 512) == 0);
    REQUIRE((lfd = open_spec(&spec, &o)) >= 0);
    struct send_item it;
    memset(&it, 0, sizeof it);
    it.fd = lfd;
    it.tolen = make_ip(dst_ip, dport, &it.to);
    it.data = (const uint8_t *)"ping?";
    it.len = 5;
    int err = -1;
    REQUIRE(send_batch(&it, 1, &err) == 1 && err == 0);
    REQUIRE(wait_for(lfd, POLLERR));
    errno = 0;
    CHECK(recv_batch(lfd, &ring, bound_port(lfd)) == -1 && errno == ECONNREFUSED);
    struct sockerr e;
    REQUIRE(recv_error(lfd, &e) == 1);
    CHECK(e.err == ECONNREFUSED);
    CHECK(e.origin == want_origin);
    if (want_origin == SOCKERR_ORIGIN_ICMP)
        CHECK(e.icmp_type == 3 && e.icmp_code == 3); /* port unreachable */
    else
        CHECK(e.icmp_type == 1 && e.icmp_code == 4);
    CHECK(is_addr(&e.peer, dst_ip, dport));
    CHECK(e.peer.ss_family == (strchr(dst_ip, ':') ? AF_INET6 : AF_INET));
    CHECK(e.offenderlen > 0 && is_addr(&e.offender, dst_ip, -1));
    CHECK(e.datalen == 5 && memcmp(e.data, "ping?", 5) == 0);
    CHECK(recv_error(lfd, &e) == 0); /* queue drained */
cleanup:
    sock_close(lfd, &spec);
    recv_ring_free(&ring);
}

static void test_refused(void)
{
    check_refused("127.0.0.1", "127.0.0.1", SOCKERR_ORIGIN_ICMP);
    if (!need_ipv6())
        return;
    check_refused("::", "127.0.0.1", SOCKERR_ORIGIN_ICMP); /* IPv4 on dual-stack */
    check_refused("::1", "::1", SOCKERR_ORIGIN_ICMP6);
}

/* Replies from a wildcard socket leave from the address the request went to. */
static void check_reply_from(const char *listen_ip, const char *client_ip, const char *to_ip,
                             const char *want_src)
{
    struct recv_ring ring = {0};
    int lfd = -1, cfd = -1;
    struct sock_spec spec = udp_spec(listen_ip, 0);
    struct sock_opts o = default_opts();
    REQUIRE(recv_ring_init(&ring, 4, 512) == 0);
    REQUIRE((lfd = open_spec(&spec, &o)) >= 0);
    REQUIRE((cfd = client(client_ip)) >= 0);
    int lport = local_port(lfd);
    REQUIRE(send_to(cfd, to_ip, lport, "q", 1) == 0);
    REQUIRE(recv_wait(lfd, &ring) == 1);
    struct dgram *d = &ring.recs[0];
    REQUIRE(d->has & DG_HAS_DST);

    /* With the source: the reply comes from the request's destination. */
    struct send_item it;
    memset(&it, 0, sizeof it);
    it.fd = lfd;
    it.to = d->peer;
    it.tolen = d->peerlen;
    it.from = d->dst;
    it.ifindex = d->ifindex;
    it.data = (const uint8_t *)"answer";
    it.len = 6;
    int err = -1;
    CHECK(send_batch(&it, 1, &err) == 1 && err == 0);
    struct sockaddr_storage src;
    socklen_t srclen = sizeof src;
    char buf[16];
    REQUIRE(wait_for(cfd, POLLIN));
    CHECK(recvfrom(cfd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&src, &srclen) == 6);
    CHECK(is_addr(&src, want_src, lport));

    /* Without it the kernel picks (the control: shows the source above was ours). */
    memset(&it.from, 0, sizeof it.from);
    it.ifindex = 0;
    CHECK(send_batch(&it, 1, &err) == 1 && err == 0);
    REQUIRE(wait_for(cfd, POLLIN));
    srclen = sizeof src;
    CHECK(recvfrom(cfd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&src, &srclen) == 6);
    CHECK(is_addr(&src, client_ip, lport));
cleanup:
    if (cfd >= 0)
        close(cfd);
    sock_close(lfd, &spec);
    recv_ring_free(&ring);
}

static void test_reply_from(void)
{
    check_reply_from("0.0.0.0", "127.0.0.1", "127.0.0.2", "127.0.0.2");
    if (!need_ipv6())
        return;
    check_reply_from("::", "127.0.0.1", "127.0.0.2", "127.0.0.2"); /* dual-stack */
    check_reply_from("::", "::1", "::1", "::1");
}

/* More items than one sendmmsg takes, across two sockets, arrive complete and in order. */
static void test_send_many(void)
{
    enum { N = 150 };
    int s1 = -1, s2 = -1, cfd = -1;
    static struct send_item items[N];
    uint32_t payload[N];
    REQUIRE((s1 = client("127.0.0.1")) >= 0);
    REQUIRE((s2 = client("127.0.0.1")) >= 0);
    REQUIRE((cfd = client("127.0.0.1")) >= 0);
    int big = 1 << 20;
    setsockopt(cfd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    for (unsigned i = 0; i < N; i++) {
        payload[i] = i;
        memset(&items[i], 0, sizeof items[i]);
        items[i].fd = i < 100 ? s1 : s2;
        items[i].tolen = make_ip("127.0.0.1", local_port(cfd), &items[i].to);
        items[i].data = (const uint8_t *)&payload[i];
        items[i].len = sizeof payload[i];
    }
    int err = -1;
    CHECK(send_batch(items, N, &err) == N && err == 0);
    int got = 0, in_order = 1;
    for (int i = 0; i < N && wait_for(cfd, POLLIN); i++) {
        uint32_t v;
        if (recv(cfd, &v, sizeof v, MSG_DONTWAIT) != sizeof v)
            break;
        in_order &= v == (uint32_t)i;
        got++;
    }
    CHECK(got == N);
    CHECK(in_order);
cleanup:
    if (s1 >= 0)
        close(s1);
    if (s2 >= 0)
        close(s2);
    if (cfd >= 0)
        close(cfd);
}

/* A failing item stops the batch: the count says how many went, err says why. */
static void test_send_errors(void)
{
    int ufd = -1, xfd = -1, cfd = -1;
    struct send_item items[4];
    memset(items, 0, sizeof items);
    char path[128];
    snprintf(path, sizeof path, "%s/nobody.sock", tmpdir);
    struct sock_spec nobody = unix_spec(path);
    REQUIRE((ufd = client("127.0.0.1")) >= 0);
    REQUIRE((cfd = client("127.0.0.1")) >= 0);
    REQUIRE((xfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0);
    for (int i = 0; i < 4; i++) {
        items[i].fd = ufd;
        items[i].tolen = make_ip("127.0.0.1", local_port(cfd), &items[i].to);
        items[i].data = (const uint8_t *)"e";
        items[i].len = 1;
    }
    items[2].fd = xfd; /* a unix socket sending to a path nobody binds */
    items[2].to = nobody.addr;
    items[2].tolen = nobody.addrlen;
    int err = 0;
    CHECK(send_batch(items, 4, &err) == 2 && err == ENOENT);

    items[2].fd = ufd; /* an IPv6 source on an IPv4 socket cannot be expressed */
    make_ip("::1", 0, &items[2].from);
    err = 0;
    CHECK(send_batch(items, 4, &err) == 2 && err == EAFNOSUPPORT);

    items[2].from.ss_family = AF_UNSPEC;
    items[1].fd = -1; /* a bad descriptor */
    err = 0;
    CHECK(send_batch(items, 4, &err) == 1 && err == EBADF);
    CHECK(send_batch(items, 0, &err) == 0 && err == 0);
cleanup:
    if (ufd >= 0)
        close(ufd);
    if (xfd >= 0)
        close(xfd);
    if (cfd >= 0)
        close(cfd);
}

/* Binding a taken address fails with the operation, address and error name; with
 * reuseport on both it succeeds. */
static void test_addrinuse(void)
{
    int a = -1, b = -1;
    char err[256] = "", want[64];
    struct sock_spec spec = udp_spec("127.0.0.1", 0);
    struct sock_opts o = default_opts();
    REQUIRE((a = open_spec(&spec, &o)) >= 0);
    int port = local_port(a);
    spec = udp_spec("127.0.0.1", port);
    b = sock_open(&spec, &o, NULL, err, sizeof err);
    CHECK(b < 0);
    snprintf(want, sizeof want, "bind 127.0.0.1:%d: ", port);
    CHECK(strstr(err, want) == err);
    CHECK(strstr(err, "(EADDRINUSE)") != NULL);
    if (b >= 0)
        close(b);
    close(a);
    b = -1;

    o.reuseport = 1;
    spec = udp_spec("127.0.0.1", 0);
    REQUIRE((a = open_spec(&spec, &o)) >= 0);
    spec = udp_spec("127.0.0.1", local_port(a));
    CHECK((b = open_spec(&spec, &o)) >= 0);
    CHECK(sock_matches(a, &spec) == 1);
    struct sock_spec other = udp_spec("127.0.0.1", local_port(a) ^ 1);
    CHECK(sock_matches(a, &other) == 0);
    other = udp_spec("127.0.0.2", local_port(a));
    CHECK(sock_matches(a, &other) == 0);
    other.kind = SOCK_KIND_RAW;
    CHECK(sock_matches(a, &other) == 0);

    /* An address that is not ours names it, IPv6 in brackets. */
    if (!need_ipv6())
        goto cleanup;
    spec = udp_spec("::2", 7777);
    o.reuseport = 0;
    int c = sock_open(&spec, &o, NULL, err, sizeof err);
    CHECK(c < 0 && strstr(err, "bind [::2]:7777: ") == err && strstr(err, "EADDRNOTAVAIL"));
    if (c >= 0)
        close(c);
cleanup:
    if (a >= 0)
        close(a);
    if (b >= 0)
        close(b);
}

/* SO_RCVBUF: what the kernel granted is reported (doubled by Linux; forced past rmem_max
 * when we are root). */
static void test_rcvbuf(void)
{
    int fd = -1, granted = 0;
    char err[256];
    struct sock_spec spec = udp_spec("127.0.0.1", 0);
    struct sock_opts o = default_opts();
    o.rcvbuf = 1 << 20;
    REQUIRE((fd = sock_open(&spec, &o, &granted, err, sizeof err)) >= 0);
    int got = 0;
    socklen_t len = sizeof got;
    CHECK(getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) == 0 && granted == got);
    if (geteuid() == 0)
        CHECK(granted == 2 * o.rcvbuf);
    else
        CHECK(granted > 0);
cleanup:
    if (fd >= 0)
        close(fd);
}

/* A raw ICMP socket sees the port unreachable the kernel sends, with its destination. */
static void test_raw(void)
{
    struct recv_ring ring = {0};
    int rfd = -1, cfd = -1;
    struct sock_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.kind = SOCK_KIND_RAW;
    spec.proto = IPPROTO_ICMP;
    spec.addrlen = make_ip("127.0.0.1", 0, &spec.addr);
    struct sock_opts o = default_opts();
    char err[256] = "";
    REQUIRE(recv_ring_init(&ring, 4, 1024) == 0);
    rfd = sock_open(&spec, &o, NULL, err, sizeof err);
    if (rfd < 0 && strstr(err, "EPERM")) {
        fprintf(stderr, "  raw sockets need CAP_NET_RAW: skipped (%s)\n", err);
        goto cleanup;
    }
    REQUIRE(rfd >= 0);
    CHECK(sock_matches(rfd, &spec) == 1);
    REQUIRE((cfd = client("127.0.0.1")) >= 0);
    int dport = closed_port("127.0.0.1");
    REQUIRE(dport > 0);
    REQUIRE(send_to(cfd, "127.0.0.1", dport, "raw", 3) == 0);
    /* Other processes' ICMP shows up here too: ours is the port unreachable (type 3, code
     * 3) that quotes our datagram, UDP to dport: IP header (20), ICMP header (8), the
     * quoted IP header (20), then the UDP header with the destination port at bytes 2-3. */
    int n = 0, found = 0;
    struct timespec start, t;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        n = recv_wait(rfd, &ring);
        for (int i = 0; i < n && !found; i++) {
            struct dgram *d = &ring.recs[i];
            if (d->len >= 52 && d->data[20] == 3 && d->data[21] == 3 &&
                ((d->data[50] << 8) | d->data[51]) == dport) {
                found = 1;
                CHECK(is_addr(&d->dst, "127.0.0.1", 0));
                CHECK(d->ifindex == lo_index());
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (!found && n >= 0 && t.tv_sec - start.tv_sec < WAIT_MS / 1000);
    CHECK(found);
cleanup:
    if (cfd >= 0)
        close(cfd);
    if (rfd >= 0)
        sock_close(rfd, &spec);
    recv_ring_free(&ring);
}

static void test_ring_args(void)
{
    struct recv_ring ring;
    CHECK(recv_ring_init(&ring, 0, 100) == -1 && errno == EINVAL);
    CHECK(recv_ring_init(&ring, 4, 0) == -1 && errno == EINVAL);
    recv_ring_free(&ring); /* safe after a failed init */
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/luadgram-test-sock-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_udp_v4();
    test_udp_any_dst();
    test_trunc();
    test_dualstack();
    test_unix();
    test_unix_stale();
    test_refused();
    test_reply_from();
    test_send_many();
    test_send_errors();
    test_addrinuse();
    test_rcvbuf();
    test_raw();
    test_ring_args();
    rmdir(tmpdir);
    return check_report();
}
