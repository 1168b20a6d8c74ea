/* daemon/send_linux.c: the Linux send side of netio.h: sendmmsg in batches of consecutive
 * items on one socket, each datagram with the packet info (IP_PKTINFO / IPV6_PKTINFO) that
 * makes it leave from the address and interface the caller chose. No allocation: at most
 * SEND_CHUNK messages are built on the stack per sendmmsg call. */
#include "netio.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

enum { SEND_CHUNK = 64, SEND_EINTR_RETRIES = 8 };

/* One outgoing message's addresses and control data, in stack storage. */
struct send_slot {
    struct sockaddr_storage to;
    struct iovec iov;
    union {
        uint8_t buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
        size_t align; /* cmsg alignment (CMSG_ALIGN rounds to size_t) */
    } control;
};

static int is_v4mapped(const struct sockaddr_storage *sa)
{
    return sa->ss_family == AF_INET6 &&
           IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

/* sin (AF_INET) as ::ffff:a.b.c.d, same port. */
static void map_v4(const struct sockaddr_storage *sa, struct sockaddr_storage *out)
{
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    memset(out, 0, sizeof *out);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = in4->sin_port;
    in6->sin6_addr.s6_addr[10] = 0xff;
    in6->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&in6->sin6_addr.s6_addr[12], &in4->sin_addr, 4);
}

static void put_pktinfo4(struct msghdr *mh, struct send_slot *s, struct in_addr src,
                         unsigned ifindex)
{
    struct in_pktinfo pi;
    memset(&pi, 0, sizeof pi);
    pi.ipi_ifindex = (int)ifindex;
    pi.ipi_spec_dst = src;
    mh->msg_control = s->control.buf;
    mh->msg_controllen = CMSG_SPACE(sizeof pi);
    struct cmsghdr *c = CMSG_FIRSTHDR(mh);
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof pi);
    memcpy(CMSG_DATA(c), &pi, sizeof pi);
}

static void put_pktinfo6(struct msghdr *mh, struct send_slot *s, const struct in6_addr *src,
                         unsigned ifindex)
{
    struct in6_pktinfo pi;
    memset(&pi, 0, sizeof pi);
    pi.ipi6_addr = *src;
    pi.ipi6_ifindex = ifindex;
    mh->msg_control = s->control.buf;
    mh->msg_controllen = CMSG_SPACE(sizeof pi);
    struct cmsghdr *c = CMSG_FIRSTHDR(mh);
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof pi);
    memcpy(CMSG_DATA(c), &pi, sizeof pi);
}

/* Builds the message for it on a socket of family domain. Returns 0, or EAFNOSUPPORT when
 * the source's family does not fit the destination's (the kernel would ignore it). */
static int build_msg(const struct send_item *it, int domain, struct send_slot *s,
                     struct mmsghdr *m)
{
    struct msghdr *mh = &m->msg_hdr;
    memset(m, 0, sizeof *m);
    s->iov.iov_base = (void *)it->data;
    s->iov.iov_len = it->len;
    mh->msg_iov = &s->iov;
    mh->msg_iovlen = 1;

    socklen_t tolen = it->tolen > sizeof s->to ? sizeof s->to : it->tolen;
    memset(&s->to, 0, sizeof s->to);
    memcpy(&s->to, &it->to, tolen);
    struct sockaddr_storage from = it->from;
    socklen_t fromlen = sizeof from;
    dgram_unmap_v4(&from, &fromlen); /* a mapped source is an IPv4 source */
    if (domain == AF_INET6 && s->to.ss_family == AF_INET) {
        struct sockaddr_storage v4 = s->to;
        map_v4(&v4, &s->to);
        tolen = sizeof(struct sockaddr_in6);
    } else if (domain == AF_INET && is_v4mapped(&s->to)) {
        dgram_unmap_v4(&s->to, &tolen);
    }
    mh->msg_name = tolen ? &s->to : NULL;
    mh->msg_namelen = tolen;

    if (domain != AF_INET && domain != AF_INET6)
        return 0; /* unix: no packet info */
    int has_from = from.ss_family == AF_INET || from.ss_family == AF_INET6;
    if (!has_from && it->ifindex == 0)
        return 0; /* the kernel picks source and interface */
    int v4dst = s->to.ss_family == AF_INET || is_v4mapped(&s->to);
    if (has_from && (from.ss_family == AF_INET) != v4dst)
        return EAFNOSUPPORT; /* an IPv6 source for IPv4 or the other way round */
    struct in_addr src4 = {0};
    if (from.ss_family == AF_INET)
        src4 = ((const struct sockaddr_in *)&from)->sin_addr;
    if (v4dst) {
        /* Also on a dual-stack socket: for a (mapped) IPv4 destination the kernel takes
         * its IPv4 path, which reads IP_PKTINFO (and, since 4.x, a mapped IPV6_PKTINFO;
         * IP_PKTINFO works on every kernel we meet and carries spec_dst as is). */
        put_pktinfo4(mh, s, src4, it->ifindex);
    } else {
        struct in6_addr src6 = IN6ADDR_ANY_INIT;
        if (from.ss_family == AF_INET6)
            src6 = ((const struct sockaddr_in6 *)&from)->sin6_addr;
        put_pktinfo6(mh, s, &src6, it->ifindex);
    }
    return 0;
}

/* The address family of the socket fd, or -1 with errno. */
static int socket_domain(int fd)
{
    int domain = 0;
    socklen_t len = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0)
        return -1;
    return domain;
}

/* Sends msgs[0..count) on fd, retrying after a partial send. Returns how many went;
 * when fewer than count, *err is the errno of the first that did not. */
static unsigned send_chunk(int fd, struct mmsghdr *msgs, unsigned count, int *err)
{
    unsigned done = 0;
    int eintr = 0;
    while (done < count) {
        int r = sendmmsg(fd, msgs + done, count - done, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EINTR && eintr++ < SEND_EINTR_RETRIES)
                continue;
            *err = errno == EWOULDBLOCK ? EAGAIN : errno;
            return done;
        }
        if (r == 0) { /* no progress and no error: treat as a full socket */
            *err = EAGAIN;
            return done;
        }
        done += (unsigned)r;
    }
    return done;
}

unsigned send_batch(const struct send_item *items, unsigned n, int *err)
{
    struct send_slot slots[SEND_CHUNK];
    struct mmsghdr msgs[SEND_CHUNK];
    unsigned sent = 0;
    *err = 0;
    while (sent < n) {
        int fd = items[sent].fd;
        int domain = items[sent].family ? items[sent].family : socket_domain(fd);
        if (domain < 0) {
            *err = errno;
            return sent;
        }
        /* One group: consecutive items on fd, sent SEND_CHUNK at a time. */
        while (sent < n && items[sent].fd == fd) {
            unsigned count = 0;
            int build_err = 0;
            while (count < SEND_CHUNK && sent + count < n && items[sent + count].fd == fd) {
                build_err = build_msg(&items[sent + count], domain, &slots[count],
                                      &msgs[count]);
                if (build_err)
                    break;
                count++;
            }
            unsigned done = count ? send_chunk(fd, msgs, count, err) : 0;
            sent += done;
            if (done < count)
                return sent;
            if (build_err) {
                *err = build_err;
                return sent;
            }
        }
    }
    return sent;
}
