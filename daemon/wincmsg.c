/* daemon/wincmsg.c: wincmsg.h, the bounded walk over WSARecvMsg's control data (WSACMSGHDR
 * records in 64-bit Windows' byte layout, read byte by byte so any alignment is fine) into
 * the fields of struct dgram that it carries. Portable: built on Linux (unit test, fuzz
 * target) and Windows (recv_win.c). No system calls, no allocation; owns nothing. */
#include "wincmsg.h"

#include <arpa/inet.h>
#include <string.h>

static uint32_t wincmsg_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t wincmsg_le64(const uint8_t *p)
{
    return (uint64_t)wincmsg_le32(p) | (uint64_t)wincmsg_le32(p + 4) << 32;
}

/* One record of the walk: its level, type and data (data + len inside the buffer). */
struct wincmsg_rec {
    int32_t level, type;
    const uint8_t *data;
    size_t len;
};

/* The record at *off, advancing *off past it (to the end when its padding runs past). 0
 * when no whole record is left: the buffer ends, or a length field is below the header or
 * beyond the buffer. */
static int wincmsg_next(const uint8_t *control, size_t controllen, size_t *off,
                        struct wincmsg_rec *r)
{
    if (*off > controllen || controllen - *off < WINCMSG_HDR_SIZE)
        return 0;
    const uint8_t *h = control + *off;
    size_t left = controllen - *off;
    uint64_t reclen = wincmsg_le64(h);
    if (reclen < WINCMSG_HDR_SIZE || reclen > left)
        return 0;
    r->level = (int32_t)wincmsg_le32(h + 8);
    r->type = (int32_t)wincmsg_le32(h + 12);
    r->data = h + WINCMSG_HDR_SIZE;
    r->len = (size_t)reclen - WINCMSG_HDR_SIZE;
    size_t pad = (WINCMSG_ALIGN - (size_t)reclen % WINCMSG_ALIGN) % WINCMSG_ALIGN;
    *off = pad > left - (size_t)reclen ? controllen : *off + (size_t)reclen + pad;
    return 1;
}

/* An INT payload (hop limit, traffic class) into *out when it is 0..255. */
static int wincmsg_byte_int(const struct wincmsg_rec *r, int *out)
{
    if (r->len < WINCMSG_INT_SIZE)
        return 0;
    int32_t x = (int32_t)wincmsg_le32(r->data);
    if (x < 0 || x > 255)
        return 0;
    *out = (int)x;
    return 1;
}

static void wincmsg_put_v4(struct dgram *d, const uint8_t *addr, uint16_t port)
{
    struct sockaddr_in in4;
    memset(&in4, 0, sizeof in4);
    in4.sin_family = AF_INET;
    memcpy(&in4.sin_addr, addr, 4);
    in4.sin_port = htons(port);
    memcpy(&d->dst, &in4, sizeof in4);
}

static void wincmsg_put_v6(struct dgram *d, const uint8_t *addr, uint32_t ifindex,
                           uint16_t port)
{
    struct sockaddr_in6 in6;
    memset(&in6, 0, sizeof in6);
    in6.sin6_family = AF_INET6;
    memcpy(&in6.sin6_addr, addr, 16);
    in6.sin6_port = htons(port);
    if (IN6_IS_ADDR_LINKLOCAL(&in6.sin6_addr))
        in6.sin6_scope_id = ifindex;
    memcpy(&d->dst, &in6, sizeof in6);
    socklen_t len = sizeof in6;
    dgram_unmap_v4(&d->dst, &len);
}

void wincmsg_parse(struct dgram *d, const void *control, size_t controllen,
                   uint16_t local_port)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    d->dst.ss_family = AF_UNSPEC;
    d->ifindex = 0;
    d->ttl = d->tos = 0;
    d->has &= ~(unsigned)(DG_HAS_DST | DG_HAS_TTL | DG_HAS_TOS);
    size_t off = 0;
    struct wincmsg_rec r;
    while (wincmsg_next(control, controllen, &off, &r)) {
        int ip = r.level == WINCMSG_IPPROTO_IP, ip6 = r.level == WINCMSG_IPPROTO_IPV6;
        if (ip && r.type == WINCMSG_IP_PKTINFO && r.len >= WINCMSG_IN_PKTINFO_SIZE) {
            wincmsg_put_v4(d, r.data, local_port);
            d->ifindex = wincmsg_le32(r.data + 4);
            d->has |= DG_HAS_DST; /* Windows has no spec_dst */
        } else if (ip6 && r.type == WINCMSG_IPV6_PKTINFO &&
                   r.len >= WINCMSG_IN6_PKTINFO_SIZE) {
            if ((d->has & DG_HAS_DST) && memcmp(r.data, v4mapped, sizeof v4mapped) == 0)
                continue; /* IP_PKTINFO already said it */
            uint32_t ifindex = wincmsg_le32(r.data + 16);
            wincmsg_put_v6(d, r.data, ifindex, local_port);
            d->ifindex = ifindex;
            d->has |= DG_HAS_DST;
        } else if ((ip && (r.type == WINCMSG_IP_TTL || r.type == WINCMSG_IP_HOPLIMIT)) ||
                   (ip6 && r.type == WINCMSG_IPV6_HOPLIMIT)) {
            if (wincmsg_byte_int(&r, &d->ttl))
                d->has |= DG_HAS_TTL;
        } else if ((ip && r.type == WINCMSG_IP_TOS) || (ip6 && r.type == WINCMSG_IPV6_TCLASS)) {
            if (wincmsg_byte_int(&r, &d->tos))
                d->has |= DG_HAS_TOS;
        }
    }
}
