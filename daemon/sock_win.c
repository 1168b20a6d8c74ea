/* daemon/sock_win.c: the Windows socket set-up of netio.h. UDP sockets (v4, v6 and
 * dual-stack) with IP_PKTINFO / IPV6_PKTINFO (both on a dual-stack socket), IP_RECVTTL /
 * IPV6_HOPLIMIT and IP_RECVTOS / IPV6_RECVTCLASS when asked, SIO_UDP_CONNRESET on (an ICMP
 * port unreachable becomes WSAECONNRESET on the next receive: recv_win.c) and
 * SO_EXCLUSIVEADDRUSE (no other process can take the port). Raw sockets work for an
 * administrator only; unix datagram sockets and SO_REUSEPORT do not exist: the
 * configuration refuses them (sock_unsupported). Owns nothing past the sockets it returns. */
#include "netio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "compat_win.h"
#include "errname.h"

static void sock_win_err(char *err, size_t errlen, const char *op, const struct sock_spec *spec,
                         int e)
{
    char a[ADDR_STRLEN];
    if (!err || errlen == 0)
        return;
    snprintf(err, errlen, "%s %s%s: %s (%s)", op, spec->kind == SOCK_KIND_RAW ? "raw " : "",
             addr_format((const struct sockaddr *)&spec->addr, spec->addrlen, 1, a, sizeof a),
             strerror(e), errno_name(e));
}

static int sock_win_set(SOCKET s, int level, int name, int value)
{
    DWORD v = (DWORD)value;
    return setsockopt(s, level, name, (const char *)&v, sizeof v) == 0 ? 0 : -1;
}

const char *sock_unsupported(const struct sock_spec *spec)
{
    if (spec->kind == SOCK_KIND_UNIX)
        return "unix datagram sockets (and their credentials) do not exist on Windows";
    return NULL;
}

const char *sock_option_unsupported(const char *key)
{
    if (strcmp(key, "freebind") == 0)
        return "Windows has no IP_FREEBIND (bind an address the host has)";
    if (strcmp(key, "device") == 0)
        return "Windows has no SO_BINDTODEVICE (bind the interface's address instead)";
    if (strcmp(key, "tos") == 0)
        return "Windows ignores IP_TOS / IPV6_TCLASS on a socket (its DSCP comes from QoS "
               "policy)";
    return NULL;
}

int sock_has_reuseport(void)
{
    return 0;
}

int sock_open(const struct sock_spec *spec, const struct sock_opts *opts, int *granted,
              char *err, size_t errlen)
{
    int family = spec->addr.ss_family;
    struct sockaddr_storage addr = spec->addr;
    const char *why = sock_unsupported(spec);
    if (why || (family != AF_INET && family != AF_INET6)) {
        sock_win_err(err, errlen, "socket", spec, EAFNOSUPPORT);
        return -1;
    }
    int type = SOCK_DGRAM, proto = IPPROTO_UDP;
    if (spec->kind == SOCK_KIND_RAW) {
        type = SOCK_RAW;
        proto = spec->proto;
        if (family == AF_INET)
            ((struct sockaddr_in *)&addr)->sin_port = 0;
        else
            ((struct sockaddr_in6 *)&addr)->sin6_port = 0;
    }
    SOCKET s = WSASocketW(family, type, proto, NULL, 0, WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET) {
        sock_win_err(err, errlen, "socket", spec, win_errno(WSAGetLastError()));
        return -1;
    }
    const char *op = "setsockopt";
    u_long nonblock = 1;
    BOOL connreset = TRUE;
    DWORD ignored = 0;
    /* v6only as on Linux: the listener's, else [::] alone is dual-stack */
    int v6only = opts->v6only == SOCK_V6ONLY_ON    ? 1
                 : opts->v6only == SOCK_V6ONLY_OFF ? 0
                 : !spec->dualstack;
    int v4 = family == AF_INET || (spec->kind == SOCK_KIND_UDP && !v6only);
    if (family == AF_INET6 && sock_win_set(s, IPPROTO_IPV6, IPV6_V6ONLY, v6only) != 0)
        goto fail;
    if (ioctlsocket(s, FIONBIO, &nonblock) != 0 ||
        sock_win_set(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, 1) != 0)
        goto fail;
    if (spec->kind == SOCK_KIND_UDP &&
        WSAIoctl(s, SIO_UDP_CONNRESET, &connreset, sizeof connreset, NULL, 0, &ignored, NULL,
                 NULL) != 0)
        goto fail;
    if ((v4 && sock_win_set(s, IPPROTO_IP, IP_PKTINFO, 1) != 0) ||
        (family == AF_INET6 && sock_win_set(s, IPPROTO_IPV6, IPV6_PKTINFO, 1) != 0))
        goto fail;
    /* ttl and tos where this Windows has them (IP_RECVTOS: Windows 10 1703+): a failure
     * leaves msg.ttl / msg.tos nil, as on a kernel without them. */
    if (opts->want_ttl) {
        if (v4)
            (void)sock_win_set(s, IPPROTO_IP, IP_RECVTTL, 1);
        if (family == AF_INET6)
            (void)sock_win_set(s, IPPROTO_IPV6, IPV6_HOPLIMIT, 1);
    }
    if (opts->want_tos) {
        if (v4)
            (void)sock_win_set(s, IPPROTO_IP, IP_RECVTOS, 1);
        if (family == AF_INET6)
            (void)sock_win_set(s, IPPROTO_IPV6, IPV6_RECVTCLASS, 1);
    }
    /* ttl: the TTL / hop limit of what it sends, unicast and multicast (freebind, device
     * and tos are refused by the configuration: sock_option_unsupported) */
    if (opts->has_ttl &&
        ((v4 && (sock_win_set(s, IPPROTO_IP, IP_TTL, opts->ttl) != 0 ||
                 sock_win_set(s, IPPROTO_IP, IP_MULTICAST_TTL, opts->ttl) != 0)) ||
         (family == AF_INET6 &&
          (sock_win_set(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, opts->ttl) != 0 ||
           sock_win_set(s, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, opts->ttl) != 0))))
        goto fail;
    if (opts->rcvbuf > 0 && sock_win_set(s, SOL_SOCKET, SO_RCVBUF, opts->rcvbuf) != 0)
        goto fail;
    int have = 0, len = sizeof have;
    if (granted)
        *granted = getsockopt(s, SOL_SOCKET, SO_RCVBUF, (char *)&have, &len) == 0 ? have : 0;
    op = "bind";
    if (bind(s, (const struct sockaddr *)&addr, spec->addrlen) != 0)
        goto fail;
    return (int)s;
fail:
    sock_win_err(err, errlen, op, spec, win_errno(WSAGetLastError()));
    closesocket(s);
    return -1;
}

/* The membership options every Windows has (and Wine, whose Winsock has no
 * MCAST_JOIN_GROUP): IP_ADD_MEMBERSHIP / IP_ADD_SOURCE_MEMBERSHIP (the interface as an index
 * in the 0.0.0.x form Windows accepts there), IPV6_ADD_MEMBERSHIP, and their DROP twins;
 * an IPv6 source-specific group has only MCAST_JOIN_SOURCE_GROUP (ws2ipdef.h). */
int sock_mcast(int fd, const struct mcast_join *j, int join, char *err, size_t errlen)
{
    SOCKET s = (SOCKET)fd;
    int r;
    if (j->group.ss_family == AF_INET) {
        struct in_addr group = ((const struct sockaddr_in *)&j->group)->sin_addr;
        struct in_addr ifaddr;
        ifaddr.s_addr = htonl(j->ifindex);
        if (j->source.ss_family == AF_UNSPEC) {
            struct ip_mreq mr;
            memset(&mr, 0, sizeof mr);
            mr.imr_multiaddr = group;
            mr.imr_interface = ifaddr;
            r = setsockopt(s, IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP,
                           (const char *)&mr, sizeof mr);
        } else {
            struct ip_mreq_source ms;
            memset(&ms, 0, sizeof ms);
            ms.imr_multiaddr = group;
            ms.imr_sourceaddr = ((const struct sockaddr_in *)&j->source)->sin_addr;
            ms.imr_interface = ifaddr;
            r = setsockopt(s, IPPROTO_IP,
                           join ? IP_ADD_SOURCE_MEMBERSHIP : IP_DROP_SOURCE_MEMBERSHIP,
                           (const char *)&ms, sizeof ms);
        }
    } else if (j->source.ss_family == AF_UNSPEC) {
        struct ipv6_mreq mr;
        memset(&mr, 0, sizeof mr);
        mr.ipv6mr_multiaddr = ((const struct sockaddr_in6 *)&j->group)->sin6_addr;
        mr.ipv6mr_interface = j->ifindex;
        r = setsockopt(s, IPPROTO_IPV6, join ? IPV6_ADD_MEMBERSHIP : IPV6_DROP_MEMBERSHIP,
                       (const char *)&mr, sizeof mr);
    } else {
        GROUP_SOURCE_REQ gs;
        memset(&gs, 0, sizeof gs);
        gs.gsr_interface = j->ifindex;
        memcpy(&gs.gsr_group, &j->group, sizeof gs.gsr_group);
        memcpy(&gs.gsr_source, &j->source, sizeof gs.gsr_source);
        r = setsockopt(s, IPPROTO_IPV6,
                       join ? MCAST_JOIN_SOURCE_GROUP : MCAST_LEAVE_SOURCE_GROUP,
                       (const char *)&gs, sizeof gs);
    }
    if (r == 0)
        return 0;
    int e = win_errno(WSAGetLastError());
    snprintf(err, errlen, "%s %s: %s (%s)", join ? "join" : "leave", j->text, strerror(e),
             errno_name(e));
    return -1;
}

/* Windows delivers a group's datagrams only to the sockets that joined it (there is no
 * IP_MULTICAST_ALL to turn off). */
int sock_mcast_own_only(int fd, int family)
{
    (void)fd;
    (void)family;
    return 0;
}

void sock_close(int fd, const struct sock_spec *spec)
{
    (void)spec;
    if (fd >= 0)
        closesocket((SOCKET)fd);
}

int sock_matches(int fd, const struct sock_spec *spec)
{
    (void)fd;
    (void)spec;
    return 0; /* no socket activation on Windows */
}
