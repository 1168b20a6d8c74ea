/* daemon/dgram.c: the pure, platform-neutral helpers of dgram.h: unmapping IPv4-mapped
 * IPv6 addresses and deriving the multicast / broadcast flags from a destination. No
 * system calls, no allocation. */
#include "dgram.h"

#include <arpa/inet.h>
#include <string.h>

/* 1 if in6 is ::ffff:a.b.c.d; its IPv4 address (network order) goes to *v4. */
static int dgram_v4mapped(const struct in6_addr *in6, uint32_t *v4)
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(in6->s6_addr, prefix, sizeof prefix) != 0)
        return 0;
    memcpy(v4, in6->s6_addr + 12, sizeof *v4);
    return 1;
}

/* The IPv4 address of sa (network order), also for an IPv4-mapped IPv6 address.
 * Returns 1, or 0 when sa holds no IPv4 address. */
static int dgram_ipv4_of(const struct sockaddr *sa, uint32_t *v4)
{
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in in4;
        memcpy(&in4, sa, sizeof in4);
        *v4 = in4.sin_addr.s_addr;
        return 1;
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof in6);
        return dgram_v4mapped(&in6.sin6_addr, v4);
    }
    return 0;
}

void dgram_unmap_v4(struct sockaddr_storage *sa, socklen_t *len)
{
    if (sa->ss_family != AF_INET6)
        return;
    struct sockaddr_in6 in6;
    memcpy(&in6, sa, sizeof in6);
    uint32_t v4;
    if (!dgram_v4mapped(&in6.sin6_addr, &v4))
        return;
    struct sockaddr_in in4;
    memset(&in4, 0, sizeof in4);
    in4.sin_family = AF_INET;
    in4.sin_port = in6.sin6_port;
    in4.sin_addr.s_addr = v4;
    memset(sa, 0, sizeof *sa);
    memcpy(sa, &in4, sizeof in4);
    if (len)
        *len = (socklen_t)sizeof in4;
}

int dgram_is_mcast(const struct sockaddr *sa)
{
    uint32_t v4;
    if (dgram_ipv4_of(sa, &v4))
        return (ntohl(v4) & 0xf0000000u) == 0xe0000000u; /* 224.0.0.0/4 */
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof in6);
        return in6.sin6_addr.s6_addr[0] == 0xff; /* ff00::/8 */
    }
    return 0;
}

int dgram_is_bcast(const struct sockaddr *sa, const uint32_t *bcasts, size_t n)
{
    uint32_t v4;
    if (!dgram_ipv4_of(sa, &v4))
        return 0;
    if (v4 == htonl(0xffffffffu))
        return 1;
    for (size_t i = 0; i < n; i++)
        if (bcasts[i] == v4)
            return 1;
    return 0;
}

void dgram_derive_flags(struct dgram *d, const uint32_t *bcasts, size_t n)
{
    if (!(d->has & DG_HAS_DST))
        return;
    d->flags &= ~(unsigned)(DG_MCAST | DG_BCAST);
    const struct sockaddr *dst = (const struct sockaddr *)&d->dst;
    if (dgram_is_mcast(dst))
        d->flags |= DG_MCAST;
    if (dgram_is_bcast(dst, bcasts, n))
        d->flags |= DG_BCAST;
}
