/* daemon/recv_win.c: the Windows receive side of netio.h, on the API luadgramd's receive
 * loop is modelled on: WSARecvMsg (obtained with WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER)
 * once per socket family and cached in the ring), one call per datagram into the ring's
 * buffers, the WSACMSGHDR control data walked by wincmsg.c, and the ICMP errors Windows
 * reports as WSAECONNRESET (SIO_UDP_CONNRESET is on: sock_win.c) handed to recv_error as
 * ECONNREFUSED. Owns the ring's buffers (struct recv_plat) and, per thread, the one error
 * taken from a socket and not yet read by recv_error (recv_win_pending). */
#include "netio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compat_win.h"
#include "wincmsg.h"

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

/* wincmsg.c reads the control data in 64-bit Windows' layout, written out by hand so that it
 * builds on Linux too: the layout and constants it assumes are these headers'. */
_Static_assert(sizeof(WSACMSGHDR) == WINCMSG_HDR_SIZE && WSA_CMSG_LEN(0) == WINCMSG_HDR_SIZE &&
                   WSA_CMSGHDR_ALIGN(1) == WINCMSG_ALIGN,
               "WSACMSGHDR layout");
_Static_assert(sizeof(IN_PKTINFO) == WINCMSG_IN_PKTINFO_SIZE &&
                   sizeof(IN6_PKTINFO) == WINCMSG_IN6_PKTINFO_SIZE &&
                   sizeof(INT) == WINCMSG_INT_SIZE,
               "packet info layout");
_Static_assert(IPPROTO_IP == WINCMSG_IPPROTO_IP && IPPROTO_IPV6 == WINCMSG_IPPROTO_IPV6 &&
                   IP_TOS == WINCMSG_IP_TOS && IP_TTL == WINCMSG_IP_TTL &&
                   IP_PKTINFO == WINCMSG_IP_PKTINFO && IP_HOPLIMIT == WINCMSG_IP_HOPLIMIT &&
                   IPV6_PKTINFO == WINCMSG_IPV6_PKTINFO &&
                   IPV6_HOPLIMIT == WINCMSG_IPV6_HOPLIMIT && IPV6_TCLASS == WINCMSG_IPV6_TCLASS,
               "control message levels and types");

void dgram_parse_control(struct dgram *d, const void *control, size_t controllen,
                         int msg_flags, uint16_t local_port)
{
    d->spec_dst.ss_family = AF_UNSPEC;
    d->has = 0; /* dst, ifindex, ttl and tos: wincmsg_parse */
    d->time_sec = 0;
    d->time_nsec = 0;
    d->pid = 0;
    d->uid = d->gid = 0;
    d->ovfl = 0;
    d->flags &= ~(unsigned)DG_CTRUNC;
    if (msg_flags & MSG_CTRUNC)
        d->flags |= DG_CTRUNC;
    wincmsg_parse(d, control, controllen, local_port);
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
