/* daemon/mcast.h: a listener's multicast groups (`join = { ... }`): what one entry means,
 * parsed from "239.1.2.3", "239.1.2.3%eth0", "ff02::1:3%eth0" or
 * "232.1.1.1 from 198.51.100.7" (source-specific). Platform-neutral; the socket calls
 * that join and leave are sock_mcast in netio.h. */
#ifndef LUADGRAM_MCAST_H
#define LUADGRAM_MCAST_H

#include <stddef.h>
#include <sys/socket.h>

enum { MCAST_TEXT_MAX = 96, MCAST_MAX_JOINS = 64 };

struct mcast_join {
    struct sockaddr_storage group;  /* port 0 */
    struct sockaddr_storage source; /* AF_UNSPEC: any source */
    unsigned ifindex;               /* 0: the interface the kernel routes the group to */
    char text[MCAST_TEXT_MAX];      /* as written */
};

/* Parses one join entry. The interface name is looked up now (an unknown one is an
 * error). 0, or -1 with err set ("'239.1.2.300': not an IPv4 or IPv6 address"). */
int mcast_parse(const char *s, struct mcast_join *out, char *err, size_t errlen);

/* 1 if a and b are the same membership (group, source and interface). */
int mcast_same(const struct mcast_join *a, const struct mcast_join *b);

/* 1 if j is in list[0..n). */
int mcast_in(const struct mcast_join *j, const struct mcast_join *list, size_t n);

#endif
