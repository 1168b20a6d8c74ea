/* daemon/mcast.c: parsing and comparing a listener's multicast join entries. Owns
 * nothing: entries live in the listener's configuration and in the socket set. */
#include "mcast.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "dgram.h"

/* Parses an IPv4 or IPv6 address (no port) into ss. 0 or -1. */
static int mcast_ip(const char *s, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, s, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        return 0;
    }
    return -1;
}

/* Source-specific multicast ranges: 232.0.0.0/8 and ff3x::/32 (RFC 4607). */
static int mcast_is_ssm(const struct sockaddr_storage *g)
{
    if (g->ss_family == AF_INET) {
        const uint8_t *b = (const uint8_t *)&((const struct sockaddr_in *)g)->sin_addr;
        return b[0] == 232;
    }
    const uint8_t *b = ((const struct sockaddr_in6 *)g)->sin6_addr.s6_addr;
    return b[0] == 0xff && (b[1] & 0xf0) == 0x30;
}

int mcast_parse(const char *s, struct mcast_join *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof out->text) {
        snprintf(err, errlen, "'%.60s': expected \"group\", \"group%%interface\" or "
                 "\"group from source\"", s);
        return -1;
    }
    memcpy(out->text, s, n + 1);
    char group[MCAST_TEXT_MAX], *source = NULL, *ifname = NULL;
    memcpy(group, s, n + 1);
    char *from = strstr(group, " from ");
    if (from) {
        *from = '\0';
        source = from + 6;
        while (*source == ' ')
            source++;
    }
    ifname = strchr(group, '%');
    if (ifname)
        *ifname++ = '\0';
    if (mcast_ip(group, &out->group) != 0) {
        snprintf(err, errlen, "'%s': '%s' is not an IPv4 or IPv6 address", s, group);
        return -1;
    }
    if (!dgram_is_mcast((const struct sockaddr *)&out->group)) {
        snprintf(err, errlen, "'%s': %s is not a multicast address (224.0.0.0/4, ff00::/8)", s,
                 group);
        return -1;
    }
    if (ifname) {
        out->ifindex = if_nametoindex(ifname);
        if (*ifname == '\0' || out->ifindex == 0) {
            snprintf(err, errlen, "'%s': unknown interface '%s'", s, ifname);
            return -1;
        }
    }
    out->source.ss_family = AF_UNSPEC;
    if (source) {
        if (mcast_ip(source, &out->source) != 0) {
            snprintf(err, errlen, "'%s': source '%s' is not an IPv4 or IPv6 address", s,
                     source);
            return -1;
        }
        if (out->source.ss_family != out->group.ss_family) {
            snprintf(err, errlen, "'%s': the source and the group are of different families",
                     s);
            return -1;
        }
        if (!mcast_is_ssm(&out->group)) {
            snprintf(err, errlen, "'%s': a source needs a source-specific multicast group "
                     "(232.0.0.0/8, ff3x::/32)", s);
            return -1;
        }
    }
    return 0;
}

static int mcast_same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
    return 1; /* both AF_UNSPEC */
}

int mcast_same(const struct mcast_join *a, const struct mcast_join *b)
{
    return a->ifindex == b->ifindex && mcast_same_ip(&a->group, &b->group) &&
           mcast_same_ip(&a->source, &b->source);
}

int mcast_in(const struct mcast_join *j, const struct mcast_join *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (mcast_same(j, &list[i]))
            return 1;
    return 0;
}
