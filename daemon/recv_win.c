/* daemon/recv_win.c: the Windows receive side of netio.h, on the API luadgramd's receive
 * loop is modelled on: WSARecvMsg (obtained with WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER)
 * once per socket family and cached in the ring), one call per datagram into the ring's
 * buffers, a bounded walk of the WSACMSGHDR control data, and the ICMP errors Windows
 * reports as WSAECONNRESET (SIO_UDP_CONNRESET is on: sock_win.c) handed to recv_error as
 * ECONNREFUSED. Owns the ring's buffers (struct recv_plat) and, per thread, the one error
 * taken from a socket and not yet read by recv_error (recv_win_pending). */
#include "netio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compat_win.h"

/* Packet info for both families (a dual-stack socket gets both), hop limit and traffic
 * class at both levels, and slack for what we did not plan for. */
#define RECV_CONTROL_SIZE                                                                 \
    (WSA_CMSG_SPACE(sizeof(IN_PKTINFO)) + WSA_CMSG_SPACE(sizeof(IN6_PKTINFO)) +           \
     4 * WSA_CMSG_SPACE(sizeof(int)) + 64)

struct recv_plat {
    WSABUF *bufs;
    struct sockaddr_storage *names;
    uint8_t *payload;  /* batch * size bytes */
    uint8_t *control;  /* batch * RECV_CONTROL_SIZE */
};

/* The error a WSAECONNRESET carried (its peer), until recv_error takes it. A socket is read
 * by one worker thread only, and recv_error follows recv_batch on that thread. */
static _Thread_local struct recv_win_pending {
    int fd;
    int have;
    struct sockerr e;
} recv_win_pending;

/* ---- bounded WSACMSGHDR walk (same layout as Linux's cmsghdr on x86-64: SIZE_T len,
 * INT level, INT type, data aligned to 8) ---- */

struct cmsg_view {
    int level, type;
    const uint8_t *data;
    size_t len;
};

#define RECV_ALIGN(n) (((n) + 7u) & ~(size_t)7u)

static int cmsg_next(const uint8_t *control, size_t controllen, size_t *off,
                     struct cmsg_view *v)
{
    WSACMSGHDR h;
    size_t hdr = RECV_ALIGN(sizeof h);
    if (*off > controllen || controllen - *off < sizeof h)
        return 0;
    memcpy(&h, control + *off, sizeof h);
    if (h.cmsg_len < hdr || h.cmsg_len > controllen - *off)
        return 0;
    v->level = h.cmsg_level;
    v->type = h.cmsg_type;
    v->data = control + *off + hdr;
    v->len = h.cmsg_len - hdr;
    size_t step = RECV_ALIGN(h.cmsg_len);
    *off = step > controllen - *off ? controllen : *off + step;
    return 1;
}

static void put_v4(struct sockaddr_storage *sa, IN_ADDR a, uint16_t port)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)sa;
    memset(in4, 0, sizeof *in4);
    in4->sin_family = AF_INET;
    in4->sin_addr = a;
    in4->sin_port = htons(port);
}

static int byte_int(const struct cmsg_view *v, int *out)
{
    int x;
    if (v->len < sizeof x)
        return 0;
    memcpy(&x, v->data, sizeof x);
    if (x < 0 || x > 255)
        return 0;
    *out = x;
    return 1;
}

void dgram_parse_control(struct dgram *d, const void *control, size_t controllen,
                         int msg_flags, uint16_t local_port)
{
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
        if (v.level == IPPROTO_IP && v.type == IP_PKTINFO && v.len >= sizeof(IN_PKTINFO)) {
            IN_PKTINFO pi;
            memcpy(&pi, v.data, sizeof pi);
            put_v4(&d->dst, pi.ipi_addr, local_port);
            d->ifindex = (unsigned)pi.ipi_ifindex;
            d->has |= DG_HAS_DST; /* Windows has no spec_dst */
        } else if (v.level == IPPROTO_IPV6 && v.type == IPV6_PKTINFO &&
                   v.len >= sizeof(IN6_PKTINFO)) {
            IN6_PKTINFO pi;
            memcpy(&pi, v.data, sizeof pi);
            int mapped = IN6_IS_ADDR_V4MAPPED(&pi.ipi6_addr);
            if (mapped && (d->has & DG_HAS_DST))
                continue; /* IP_PKTINFO already said it */
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&d->dst;
            memset(in6, 0, sizeof *in6);
            in6->sin6_family = AF_INET6;
            in6->sin6_addr = pi.ipi6_addr;
            in6->sin6_port = htons(local_port);
            if (IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr))
                in6->sin6_scope_id = pi.ipi6_ifindex;
            socklen_t len = sizeof *in6;
            dgram_unmap_v4(&d->dst, &len);
            d->ifindex = (unsigned)pi.ipi6_ifindex;
            d->has |= DG_HAS_DST;
        } else if ((v.level == IPPROTO_IP && (v.type == IP_TTL || v.type == IP_HOPLIMIT)) ||
                   (v.level == IPPROTO_IPV6 && v.type == IPV6_HOPLIMIT)) {
            if (byte_int(&v, &d->ttl))
                d->has |= DG_HAS_TTL;
        } else if ((v.level == IPPROTO_IP && v.type == IP_TOS) ||
                   (v.level == IPPROTO_IPV6 && v.type == IPV6_TCLASS)) {
            if (byte_int(&v, &d->tos))
                d->has |= DG_HAS_TOS;
        }
    }
}

/* ---- the ring ---- */

int recv_ring_init(struct recv_ring *ring, unsigned batch, size_t size)
{
    memset(ring, 0, sizeof *ring);
    if (batch == 0 || batch > 1024 || size == 0 || size > SIZE_MAX / batch || size > ULONG_MAX) {
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
    p->bufs = calloc(batch, sizeof *p->bufs);
    p->names = calloc(batch, sizeof *p->names);
    p->payload = malloc(batch * size);
    p->control = calloc(batch, RECV_CONTROL_SIZE);
    if (!ring->recs || !p->bufs || !p->names || !p->payload || !p->control)
        goto fail;
    for (unsigned i = 0; i < batch; i++) {
        p->bufs[i].buf = (char *)p->payload + (size_t)i * size;
        p->bufs[i].len = (ULONG)size;
        ring->recs[i].data = p->payload + (size_t)i * size;
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
        free(p->bufs);
        free(p->names);
        free(p->payload);
        free(p->control);
        free(p);
    }
    free(ring->recs);
    memset(ring, 0, sizeof *ring);
}

static void fill_peer(struct dgram *d, const struct sockaddr_storage *name, int len)
{
    d->peer.ss_family = AF_UNSPEC;
    d->peerlen = 0;
    if (len < (int)sizeof(ADDRESS_FAMILY) || len > (int)sizeof d->peer)
        return;
    memcpy(&d->peer, name, (size_t)len);
    d->peerlen = len;
    dgram_unmap_v4(&d->peer, &d->peerlen);
}

int recv_batch(int fd, struct recv_ring *ring, uint16_t local_port)
{
    struct recv_plat *p = ring->plat;
    LPFN_WSARECVMSG recvmsg_fn = win_wsarecvmsg((SOCKET)fd);
    if (!recvmsg_fn) {
        errno = ENOSYS;
        return -1;
    }
    unsigned n = 0;
    while (n < ring->batch) {
        struct dgram *d = &ring->recs[n];
        WSAMSG m;
        memset(&m, 0, sizeof m);
        m.name = (LPSOCKADDR)&p->names[n];
        m.namelen = sizeof p->names[n];
        m.lpBuffers = &p->bufs[n];
        m.dwBufferCount = 1;
        m.Control.buf = (char *)p->control + (size_t)n * RECV_CONTROL_SIZE;
        m.Control.len = RECV_CONTROL_SIZE;
        DWORD got = 0;
        int truncated = 0;
        if (recvmsg_fn((SOCKET)fd, &m, &got, NULL, NULL) != 0) {
            int we = WSAGetLastError();
            if (we == WSAEMSGSIZE) {
                truncated = 1; /* the datagram is used up all the same */
                got = p->bufs[n].len;
            } else if (we == WSAEWOULDBLOCK) {
                break;
            } else if (we == WSAECONNRESET || we == WSAECONNREFUSED || we == WSAENETRESET ||
                       we == WSAEHOSTUNREACH || we == WSAENETUNREACH) {
                /* An ICMP error for a datagram we sent (Windows: WSAECONNRESET for a port
                 * unreachable; Wine passes the host's ECONNREFUSED on as WSAECONNREFUSED):
                 * its destination is in name. */
                struct recv_win_pending *pe = &recv_win_pending;
                memset(&pe->e, 0, sizeof pe->e);
                pe->e.err = win_errno(we);
                pe->e.origin = SOCKERR_ORIGIN_ICMP;
                if (m.namelen >= (int)sizeof(ADDRESS_FAMILY) &&
                    m.namelen <= (int)sizeof pe->e.peer) {
                    memcpy(&pe->e.peer, &p->names[n], (size_t)m.namelen);
                    pe->e.peerlen = m.namelen;
                    dgram_unmap_v4(&pe->e.peer, &pe->e.peerlen);
                }
                pe->fd = fd;
                pe->have = 1;
                if (n > 0)
                    break; /* the error comes with the next call */
                errno = pe->e.err;
                return -1;
            } else {
                if (n > 0)
                    break;
                errno = win_errno(we);
                return -1;
            }
        }
        d->flags = 0;
        d->data = (uint8_t *)p->bufs[n].buf;
        d->len = got < ring->size ? got : ring->size;
        d->size = d->len;
        if (truncated || (m.dwFlags & MSG_TRUNC)) {
            d->flags |= DG_TRUNC;
            d->size = d->len + 1; /* Windows does not say how long it was */
        }
        fill_peer(d, &p->names[n], m.namelen);
        size_t clen = m.Control.len < RECV_CONTROL_SIZE ? m.Control.len : RECV_CONTROL_SIZE;
        dgram_parse_control(d, m.Control.buf, clen, (int)m.dwFlags, local_port);
        if (m.dwFlags & MSG_BCAST)
            d->flags |= DG_BCAST;
        if ((m.dwFlags & MSG_MCAST) ||
            ((d->has & DG_HAS_DST) && dgram_is_mcast((const struct sockaddr *)&d->dst)))
            d->flags |= DG_MCAST;
        n++;
    }
    return (int)n;
}

int recv_error(int fd, struct sockerr *e)
{
    struct recv_win_pending *pe = &recv_win_pending;
    if (!pe->have || pe->fd != fd) {
        memset(e, 0, sizeof *e);
        return 0;
    }
    *e = pe->e;
    pe->have = 0;
    return 1;
}
