/* bench/netns.c: the guard behind --allow-netns. The documentation nets (198.51.100.0/24,
 * 2001:db8::/32) are only targets inside a network namespace that a test made for itself:
 * not the initial namespace, and one with no default route through which a datagram could
 * leave the machine. */
#include "common.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define PROC_NET_INIT_INO 0xEFFFFFF9u /* inode of the initial network namespace (Linux) */
#define ROUTE_MAX_LINES 100000u
#define RTF_UP_FLAG 0x0001u
#define RTF_REJECT_FLAG 0x0200u

/* 1 if /proc/net/route has a usable 0.0.0.0/0 route, or cannot be read. */
static int has_default_v4(void)
{
    char line[512];
    FILE *f = fopen("/proc/net/route", "r");
    int found = 0;

    if (!f)
        return 1;
    for (unsigned n = 0; n < ROUTE_MAX_LINES && fgets(line, sizeof line, f); n++) {
        char iface[64];
        unsigned dest, gw, flags, mask;
        /* Iface Destination Gateway Flags RefCnt Use Metric Mask ... (hex) */
        if (sscanf(line, "%63s %x %x %x %*s %*s %*s %x", iface, &dest, &gw, &flags, &mask) == 5 &&
            dest == 0 && mask == 0 && (flags & RTF_UP_FLAG) && !(flags & RTF_REJECT_FLAG)) {
            found = 1;
            break;
        }
    }
    fclose(f);
    return found;
}

/* 1 if /proc/net/ipv6_route has a usable ::/0 route (the kernel's unreachable null entry
 * does not count). A missing file means no IPv6, so no route. */
static int has_default_v6(void)
{
    char line[512];
    FILE *f = fopen("/proc/net/ipv6_route", "r");
    int found = 0;

    if (!f)
        return 0;
    for (unsigned n = 0; n < ROUTE_MAX_LINES && fgets(line, sizeof line, f); n++) {
        char dest[40];
        unsigned plen, flags;
        /* dest plen src splen nexthop metric refcnt use flags iface */
        if (sscanf(line, "%39s %x %*s %*s %*s %*s %*s %*s %x", dest, &plen, &flags) == 3 &&
            strspn(dest, "0") == 32 && plen == 0 && (flags & RTF_UP_FLAG) &&
            !(flags & RTF_REJECT_FLAG)) {
            found = 1;
            break;
        }
    }
    fclose(f);
    return found;
}

int bench_netns_isolated(char *why, size_t len)
{
    struct stat st;

    if (stat("/proc/self/ns/net", &st) != 0) {
        snprintf(why, len, "cannot tell the network namespace (/proc/self/ns/net)");
        return 0;
    }
    if ((unsigned long)st.st_ino == PROC_NET_INIT_INO) {
        snprintf(why, len, "this is the initial network namespace, not a test namespace");
        return 0;
    }
    if (has_default_v4() || has_default_v6()) {
        snprintf(why, len, "this network namespace has a default route");
        return 0;
    }
    return 1;
}
