/* daemon/ifaddr_linux.c: ifaddr.h on Linux: the broadcast addresses from getifaddrs, the
 * watch a netlink route socket subscribed to RTMGRP_IPV4_IFADDR. A watch owns its socket
 * and its struct; each worker has its own (no sharing between threads). */
#include "ifaddr.h"

#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

struct ifaddr_watch {
    int fd;
};

struct ifaddr_watch *ifaddr_watch_open(void)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return NULL;
    struct sockaddr_nl nl;
    memset(&nl, 0, sizeof nl);
    nl.nl_family = AF_NETLINK;
    nl.nl_groups = RTMGRP_IPV4_IFADDR;
    struct ifaddr_watch *iw = malloc(sizeof *iw);
    if (!iw || bind(fd, (struct sockaddr *)&nl, sizeof nl) != 0) {
        free(iw);
        close(fd);
        return NULL;
    }
    iw->fd = fd;
    return iw;
}

void ifaddr_watch_close(struct ifaddr_watch *iw)
{
    if (!iw)
        return;
    close(iw->fd);
    free(iw);
}

int ifaddr_watch_fd(const struct ifaddr_watch *iw)
{
    return iw->fd;
}

int ifaddr_watch_changed(struct ifaddr_watch *iw)
{
    /* Only whether something came matters, not what: every message of this group is an
     * address added or removed (bounded reads; a truncated message is still a change). */
    char buf[8192];
    int changed = 0;
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(iw->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            changed = 1;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == ENOBUFS) /* notices lost: assume a change */
            changed = 1;
        else
            break;
    }
    return changed;
}

size_t ifaddr_bcasts(uint32_t *out, size_t max)
{
    struct ifaddrs *ifa, *p;
    size_t n = 0;
    if (getifaddrs(&ifa) != 0)
        return 0;
    for (p = ifa; p && n < max; p = p->ifa_next) {
        if (!(p->ifa_flags & IFF_BROADCAST) || !p->ifa_broadaddr || !p->ifa_addr ||
            p->ifa_broadaddr->sa_family != AF_INET || p->ifa_addr->sa_family != AF_INET)
            continue;
        uint32_t bcast = ((struct sockaddr_in *)p->ifa_broadaddr)->sin_addr.s_addr;
        /* An address added without a broadcast address (`ip addr add` without brd) has no
         * IFA_BROADCAST: glibc then gives its own address in ifa_broadaddr. */
        if (bcast == ((struct sockaddr_in *)p->ifa_addr)->sin_addr.s_addr)
            continue;
        out[n++] = bcast;
    }
    freeifaddrs(ifa);
    return n;
}
