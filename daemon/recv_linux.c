/* daemon/recv_linux.c: the Linux receive side of netio.h: the receive ring (recvmmsg
 * buffers allocated once), the batch receive, the bounded parser of ancillary (cmsg) data
 * and the error-queue reader (IP_RECVERR / IPV6_RECVERR). */
#include "netio.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Control space for everything sock_open asks for; on a dual-stack socket an IPv4
 * datagram carries both IP_PKTINFO and IPV6_PKTINFO, and TTL / TOS can come at both
 * levels. The slack takes anything the kernel adds that we did not plan for. */
#define RECV_CONTROL_SIZE                                                              \
    (CMSG_SPACE(sizeof(struct in_pktinfo)) + CMSG_SPACE(sizeof(struct in6_pktinfo)) +  \
     CMSG_SPACE(sizeof(int)) /* IP_TTL */ + CMSG_SPACE(sizeof(int)) /* HOPLIMIT */ +   \
     CMSG_SPACE(sizeof(int)) /* IP_TOS */ + CMSG_SPACE(sizeof(int)) /* TCLASS */ +     \
     CMSG_SPACE(sizeof(struct timespec)) + CMSG_SPACE(sizeof(struct ucred)) +          \
     CMSG_SPACE(sizeof(uint32_t)) /* SO_RXQ_OVFL */ + 64)

/* Control space of one error-queue message: the extended error with its offender, plus
 * the packet info and the rest that the error queue may also carry. */
#define RECV_ERR_CONTROL_SIZE                                                          \
    (CMSG_SPACE(sizeof(struct sock_extended_err) + sizeof(struct sockaddr_in6)) +      \
     RECV_CONTROL_SIZE)

/* What ring->plat points to. */
struct recv_plat {
    struct mmsghdr *msgs;
    struct iovec *iovs;
    struct sockaddr_storage *names;
    uint8_t *bufs;    /* batch * size payload bytes */
    uint8_t *control; /* batch * RECV_CONTROL_SIZE, each slot cmsg-aligned */
};

/* ---- bounded cmsg walk ---- */

/* One control message found by cmsg_next: level, type and its payload (may be unaligned:
 * read it with memcpy only). */
struct cmsg_view {
    int level, type;
    const uint8_t *data;
    size_t len;
};

/* Steps through control[0..controllen) starting at *off. Returns 1 with v filled and *off
 * moved past the message, or 0 at the end or at the first header that does not fit (a
 * cmsg_len shorter than a header or longer than what is left). Reads only inside the
 * buffer, whatever its bytes and alignment. */
static int cmsg_next(const uint8_t *control, size_t controllen, size_t *off,
                     struct cmsg_view *v)
{
    if (!control || *off >= controllen || controllen - *off < sizeof(struct cmsghdr))
        return 0;
    struct cmsghdr h;
    memcpy(&h, control + *off, sizeof h);
    size_t left = controllen - *off;
    size_t hdr = CMSG_LEN(0);
    if (h.cmsg_len < hdr || h.cmsg_len > left)
        return 0;
    v->level = h.cmsg_level;
    v->type = h.cmsg_type;
    v->data = control + *off + hdr;
    v->len = h.cmsg_len - hdr;
    size_t step = CMSG_ALIGN(h.cmsg_len);
    *off = step < left ? *off + step : controllen;
    return 1;
}

/* ---- control parsing ---- */

static void put_v4(struct sockaddr_storage *sa, struct in_addr a, uint16_t port)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)sa;
    memset(in4, 0, sizeof *in4); /* the rest of the storage is never read for AF_INET */
    in4->sin_family = AF_INET;
    in4->sin_addr = a;
    in4->sin_port = htons(port);
}

static void parse_pktinfo4(struct dgram *d, const struct cmsg_view *v, uint16_t port)
{
    struct in_pktinfo pi;
    if (v->len < sizeof pi)
        return;
    memcpy(&pi, v->data, sizeof pi);
    put_v4(&d->dst, pi.ipi_addr, port);
    put_v4(&d->spec_dst, pi.ipi_spec_dst, 0);
    d->ifindex = (unsigned)pi.ipi_ifindex;
    d->has |= DG_HAS_DST | DG_HAS_SPEC_DST;
}

static void parse_pktinfo6(struct dgram *d, const struct cmsg_view *v, uint16_t port)
{
    struct in6_pktinfo pi;
    if (v->len < sizeof pi)
        return;
    memcpy(&pi, v->data, sizeof pi);
    /* On a dual-stack socket an IPv4 datagram also has IP_PKTINFO, which says more
     * (spec_dst): keep that one. */
    if ((d->has & DG_HAS_SPEC_DST) && IN6_IS_ADDR_V4MAPPED(&pi.ipi6_addr))
        return;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&d->dst;
    memset(in6, 0, sizeof *in6);
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = pi.ipi6_addr;
    in6->sin6_port = htons(port);
    if (IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr) || IN6_IS_ADDR_MC_LINKLOCAL(&pi.ipi6_addr))
        in6->sin6_scope_id = pi.ipi6_ifindex;
    socklen_t len = sizeof *in6;
    dgram_unmap_v4(&d->dst, &len);
    d->ifindex = pi.ipi6_ifindex;
    d->has |= DG_HAS_DST;
}

/* An int-sized hop limit or traffic class; only 0..255 are real values. */
static void parse_byte_int(const struct cmsg_view *v, int *out, unsigned *has, unsigned bit)
{
    int x;
    if (v->len < sizeof x)
        return;
    memcpy(&x, v->data, sizeof x);
    if (x < 0 || x > 255)
        return;
    *out = x;
    *has |= bit;
}

static void parse_ip(struct dgram *d, const struct cmsg_view *v, uint16_t port)
{
    switch (v->type) {
    case IP_PKTINFO:
        parse_pktinfo4(d, v, port);
        break;
    case IP_TTL:
        parse_byte_int(v, &d->ttl, &d->has, DG_HAS_TTL);
        break;
    case IP_TOS: /* one byte */
        if (v->len >= 1) {
            d->tos = v->data[0];
            d->has |= DG_HAS_TOS;
        }
        break;
    default:
        break;
    }
}

static void parse_ipv6(struct dgram *d, const struct cmsg_view *v, uint16_t port)
{
    switch (v->type) {
    case IPV6_PKTINFO:
        parse_pktinfo6(d, v, port);
        break;
    case IPV6_HOPLIMIT:
        parse_byte_int(v, &d->ttl, &d->has, DG_HAS_TTL);
        break;
    case IPV6_TCLASS:
        parse_byte_int(v, &d->tos, &d->has, DG_HAS_TOS);
        break;
    default:
        break;
    }
}

static void parse_socket(struct dgram *d, const struct cmsg_view *v)
{
    switch (v->type) {
    case SCM_TIMESTAMPNS: {
        struct timespec ts;
        if (v->len < sizeof ts)
            return;
        memcpy(&ts, v->data, sizeof ts);
        if (ts.tv_nsec < 0 || ts.tv_nsec > 999999999L)
            return;
        d->time_sec = (int64_t)ts.tv_sec;
        d->time_nsec = ts.tv_nsec;
        d->has |= DG_HAS_TIME;
        break;
    }
    case SCM_CREDENTIALS: {
        struct ucred uc;
        if (v->len < sizeof uc)
            return;
        memcpy(&uc, v->data, sizeof uc);
        d->pid = uc.pid;
        d->uid = uc.uid;
        d->gid = uc.gid;
        d->has |= DG_HAS_CREDS;
        break;
    }
    case SO_RXQ_OVFL: {
        uint32_t n;
        if (v->len < sizeof n)
            return;
        memcpy(&n, v->data, sizeof n);
        d->ovfl = n;
        d->has |= DG_HAS_OVFL;
        break;
    }
    default:
        break;
    }
}

/* local_port is in host byte order. */
void dgram_parse_control(struct dgram *d, const void *control, size_t controllen,
                         int msg_flags, uint16_t local_port)
{
    /* Per datagram: reset only what says "absent" (the addresses are read only when
     * their DG_HAS_ bit is set), not 256 bytes of storage. */
    d->dst.ss_family = AF_UNSPEC;
    d->spec_dst.ss_family = AF_UNSPEC;
    d->ifindex = 0;
    d->has = 0;
    d->ttl = d->tos = 0;
    d->time_sec = 0;
    d->time_nsec = 0;
    d->pid = 0;
    d->uid = d->gid = 0;
    d->ovfl = 0;
    d->flags &= ~(unsigned)DG_CTRUNC;
    if (msg_flags & MSG_CTRUNC)
        d->flags |= DG_CTRUNC;

    size_t off = 0;
    struct cmsg_view v;
    while (cmsg_next(control, controllen, &off, &v)) {
        if (v.level == IPPROTO_IP)
            parse_ip(d, &v, local_port);
        else if (v.level == IPPROTO_IPV6)
            parse_ipv6(d, &v, local_port);
        else if (v.level == SOL_SOCKET)
            parse_socket(d, &v);
    }
}

/* A local unix sender can pass descriptors with SCM_RIGHTS (where the kernel predates
 * SO_PASSRIGHTS, see sock_open); we never want them, and keeping them would leak a
 * descriptor per datagram. Ours may be the last reference, and closing a socket with
 * SO_LINGER set and unsent data blocks for the linger time: a hostile sender could stall
 * the worker. A passed socket is made to close at once (zero linger: reset) first. */
static void close_passed_fds(const uint8_t *control, size_t controllen)
{
    static const struct linger now = {1, 0};
    size_t off = 0;
    struct cmsg_view v;
    while (cmsg_next(control, controllen, &off, &v)) {
        if (v.level != SOL_SOCKET || v.type != SCM_RIGHTS)
            continue;
        for (size_t i = 0; i + sizeof(int) <= v.len; i += sizeof(int)) {
            int fd;
            memcpy(&fd, v.data + i, sizeof fd);
            if (fd < 0)
                continue;
            (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &now, sizeof now); /* ENOTSOCK: fine */
            close(fd);
        }
    }
}

/* ---- the ring ---- */

int recv_ring_init(struct recv_ring *ring, unsigned batch, size_t size)
{
    memset(ring, 0, sizeof *ring);
    if (batch == 0 || batch > UIO_MAXIOV || size == 0 || size > SIZE_MAX / batch) {
        errno = EINVAL;
        return -1;
    }
    struct recv_plat *p = calloc(1, sizeof *p);
    if (!p)
        goto fail;
    ring->plat = p;
    ring->batch = batch;
    ring->size = size;
    ring->recs = calloc(batch, sizeof *ring->recs);
    p->msgs = calloc(batch, sizeof *p->msgs);
    p->iovs = calloc(batch, sizeof *p->iovs);
    p->names = calloc(batch, sizeof *p->names);
    p->bufs = malloc(batch * size);
    p->control = calloc(batch, RECV_CONTROL_SIZE);
    if (!ring->recs || !p->msgs || !p->iovs || !p->names || !p->bufs || !p->control)
        goto fail;
    for (unsigned i = 0; i < batch; i++) {
        p->iovs[i].iov_base = p->bufs + (size_t)i * size;
        p->iovs[i].iov_len = size;
        struct msghdr *mh = &p->msgs[i].msg_hdr;
        mh->msg_name = &p->names[i];
        mh->msg_iov = &p->iovs[i];
        mh->msg_iovlen = 1;
        mh->msg_control = p->control + (size_t)i * RECV_CONTROL_SIZE;
        ring->recs[i].data = p->bufs + (size_t)i * size;
    }
    return 0;
fail:
    recv_ring_free(ring);
    errno = ENOMEM;
    return -1;
}

void recv_ring_free(struct recv_ring *ring)
{
    struct recv_plat *p = ring->plat;
    if (p) {
        free(p->msgs);
        free(p->iovs);
        free(p->names);
        free(p->bufs);
        free(p->control);
        free(p);
    }
    free(ring->recs);
    memset(ring, 0, sizeof *ring);
}

/* Copies the sender's address into d->peer: unmapped, and empty for an unbound unix
 * sender. */
static void fill_peer(struct dgram *d, const struct sockaddr_storage *name, socklen_t len)
{
    d->peer.ss_family = AF_UNSPEC; /* only the first peerlen bytes are ever read */
    d->peerlen = 0;
    if (len > sizeof d->peer)
        len = sizeof d->peer;
    if (len <= offsetof(struct sockaddr_un, sun_path) && name->ss_family == AF_UNIX)
        return;
    if (len < sizeof(sa_family_t))
        return;
    memcpy(&d->peer, name, len);
    d->peerlen = len;
    dgram_unmap_v4(&d->peer, &d->peerlen);
}

int recv_batch(int fd, struct recv_ring *ring, uint16_t local_port)
{
    struct recv_plat *p = ring->plat;
    for (unsigned i = 0; i < ring->batch; i++) {
        struct msghdr *mh = &p->msgs[i].msg_hdr;
        mh->msg_namelen = sizeof p->names[i];
        mh->msg_controllen = RECV_CONTROL_SIZE;
        mh->msg_flags = 0;
        p->iovs[i].iov_len = ring->size;
        p->msgs[i].msg_len = 0;
    }
    int n = recvmmsg(fd, p->msgs, ring->batch, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC,
                     NULL);
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    for (int i = 0; i < n; i++) {
        struct dgram *d = &ring->recs[i];
        struct msghdr *mh = &p->msgs[i].msg_hdr;
        uint8_t *data = p->bufs + (size_t)i * ring->size;
        d->flags = 0; /* every other field is set below (optional ones with their has bit) */
        d->data = data;
        d->size = p->msgs[i].msg_len;
        d->len = d->size < ring->size ? d->size : ring->size;
        if (d->size > ring->size || (mh->msg_flags & MSG_TRUNC))
            d->flags |= DG_TRUNC;
        fill_peer(d, &p->names[i], mh->msg_namelen);
        size_t clen = mh->msg_controllen < RECV_CONTROL_SIZE ? mh->msg_controllen
                                                             : RECV_CONTROL_SIZE;
        dgram_parse_control(d, mh->msg_control, clen, mh->msg_flags, local_port);
        /* Only unix peers can pass descriptors: IP datagrams skip a second walk. */
        if (d->peer.ss_family != AF_INET && d->peer.ss_family != AF_INET6)
            close_passed_fds(mh->msg_control, clen);
        if ((d->has & DG_HAS_DST) && dgram_is_mcast((const struct sockaddr *)&d->dst))
            d->flags |= DG_MCAST;
    }
    return n;
}

/* ---- the error queue ---- */

static int map_origin(uint8_t origin)
{
    switch (origin) {
    case SO_EE_ORIGIN_LOCAL:
        return SOCKERR_ORIGIN_LOCAL;
    case SO_EE_ORIGIN_ICMP:
        return SOCKERR_ORIGIN_ICMP;
    case SO_EE_ORIGIN_ICMP6:
        return SOCKERR_ORIGIN_ICMP6;
    default:
        return SOCKERR_ORIGIN_NONE;
    }
}

/* Fills e from an IP_RECVERR / IPV6_RECVERR payload: the sock_extended_err and, right
 * after it, the offender's address (SO_EE_OFFENDER). */
static void parse_ext_err(struct sockerr *e, const struct cmsg_view *v)
{
    struct sock_extended_err ee;
    if (v->len < sizeof ee)
        return;
    memcpy(&ee, v->data, sizeof ee);
    e->err = (int)ee.ee_errno;
    e->origin = map_origin(ee.ee_origin);
    e->icmp_type = ee.ee_type;
    e->icmp_code = ee.ee_code;
    memset(&e->offender, 0, sizeof e->offender);
    e->offenderlen = 0;
    size_t left = v->len - sizeof ee;
    if (left < sizeof(sa_family_t))
        return;
    size_t n = left < sizeof e->offender ? left : sizeof e->offender;
    memcpy(&e->offender, v->data + sizeof ee, n);
    socklen_t want;
    if (e->offender.ss_family == AF_INET)
        want = sizeof(struct sockaddr_in);
    else if (e->offender.ss_family == AF_INET6)
        want = sizeof(struct sockaddr_in6);
    else
        want = 0; /* AF_UNSPEC: a local error has no offender */
    if (want == 0 || n < want) {
        memset(&e->offender, 0, sizeof e->offender);
        return;
    }
    e->offenderlen = want;
    dgram_unmap_v4(&e->offender, &e->offenderlen);
}

int recv_error(int fd, struct sockerr *e)
{
    /* A unix datagram socket has no error queue and ignores MSG_ERRQUEUE: the recvmsg
     * below would take the next real datagram and report it as an error. */
    int domain = 0;
    socklen_t dlen = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) != 0)
        return -1;
    if (domain != AF_INET && domain != AF_INET6) {
        memset(e, 0, sizeof *e);
        return 0;
    }
    union {
        uint8_t buf[RECV_ERR_CONTROL_SIZE];
        size_t align; /* cmsg alignment (CMSG_ALIGN rounds to size_t) */
    } control;
    struct sockaddr_storage name;
    memset(e, 0, sizeof *e);
    memset(&name, 0, sizeof name);
    struct iovec iov = {.iov_base = e->data, .iov_len = sizeof e->data};
    struct msghdr mh = {
        .msg_name = &name,
        .msg_namelen = sizeof name,
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.buf,
        .msg_controllen = sizeof control.buf,
    };
    ssize_t r = recvmsg(fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (r < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    e->datalen = (size_t)r < sizeof e->data ? (size_t)r : sizeof e->data;

    socklen_t nlen = mh.msg_namelen < sizeof name ? mh.msg_namelen : sizeof name;
    if (nlen >= sizeof(sa_family_t) && (name.ss_family == AF_INET || name.ss_family == AF_INET6)) {
        e->peer = name;
        e->peerlen = nlen;
        dgram_unmap_v4(&e->peer, &e->peerlen);
    }

    size_t clen = mh.msg_controllen < sizeof control.buf ? mh.msg_controllen
                                                         : sizeof control.buf;
    size_t off = 0;
    struct cmsg_view v;
    while (cmsg_next(control.buf, clen, &off, &v)) {
        if ((v.level == IPPROTO_IP && v.type == IP_RECVERR) ||
            (v.level == IPPROTO_IPV6 && v.type == IPV6_RECVERR))
            parse_ext_err(e, &v);
    }
    close_passed_fds(control.buf, clen);
    return 1;
}
