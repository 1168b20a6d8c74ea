/* daemon/dgram.h: the platform-neutral record of one received datagram (what WSARecvMsg
 * fills into a WSAMSG) and of one queued socket error, plus the pure helpers that derive
 * flags from addresses. Filled by the platform layer (netio.h), read by the Lua bindings. */
#ifndef LUADGRAM_DGRAM_H
#define LUADGRAM_DGRAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

/* dgram.flags: what WSAMSG.dwFlags reports. */
enum {
    DG_TRUNC = 1u << 0,  /* payload cut to the buffer (MSG_TRUNC / WSAEMSGSIZE) */
    DG_CTRUNC = 1u << 1, /* control data cut (MSG_CTRUNC) */
    DG_BCAST = 1u << 2,  /* sent to a broadcast address (derived, see dgram_is_bcast) */
    DG_MCAST = 1u << 3,  /* sent to a multicast address (derived from dst) */
};

/* dgram.has: which optional fields the control data carried. */
enum {
    DG_HAS_DST = 1u << 0,      /* dst and ifindex (IP_PKTINFO / IPV6_PKTINFO) */
    DG_HAS_SPEC_DST = 1u << 1, /* spec_dst (IPv4: the local address replies go from) */
    DG_HAS_TTL = 1u << 2,      /* ttl (IP_TTL / IPV6_HOPLIMIT) */
    DG_HAS_TOS = 1u << 3,      /* tos (IP_TOS / IPV6_TCLASS) */
    DG_HAS_TIME = 1u << 4,     /* time_sec/time_nsec (SO_TIMESTAMPNS) */
    DG_HAS_CREDS = 1u << 5,    /* pid/uid/gid (SCM_CREDENTIALS) */
    DG_HAS_OVFL = 1u << 6,     /* ovfl (SO_RXQ_OVFL) */
};

struct dgram {
    uint8_t *data;                    /* payload, owned by the receive ring */
    size_t len;                       /* bytes in data (at most the buffer size) */
    size_t size;                      /* the datagram's true size (> len when DG_TRUNC) */
    struct sockaddr_storage peer;     /* sender; IPv4-mapped IPv6 is given as AF_INET */
    socklen_t peerlen;                /* 0 for an unbound unix sender */
    struct sockaddr_storage dst;      /* destination address from the IP header, with the
                                         listener's local port; mapped IPv4 as AF_INET */
    struct sockaddr_storage spec_dst; /* IPv4 only: the local address of the interface */
    unsigned ifindex;                 /* interface it arrived on, 0 if unknown */
    unsigned flags;                   /* DG_TRUNC | DG_CTRUNC | DG_BCAST | DG_MCAST */
    unsigned has;                     /* DG_HAS_* */
    int ttl;                          /* hop limit, valid with DG_HAS_TTL */
    int tos;                          /* traffic class, valid with DG_HAS_TOS */
    int64_t time_sec;                 /* kernel receive time, valid with DG_HAS_TIME */
    long time_nsec;
    int64_t pid;                      /* sender credentials, valid with DG_HAS_CREDS */
    uint32_t uid, gid;
    uint32_t ovfl;                    /* socket's cumulative kernel drop count (SO_RXQ_OVFL) */
};

/* One error taken from a socket's error queue (an ICMP error for a datagram we sent). */
enum { SOCKERR_DATA_MAX = 512 };
struct sockerr {
    struct sockaddr_storage peer;     /* where the failed datagram was going */
    socklen_t peerlen;
    int err;                          /* errno value, e.g. ECONNREFUSED */
    int origin;                       /* SOCKERR_ORIGIN_* */
    uint8_t icmp_type, icmp_code;
    struct sockaddr_storage offender; /* who reported it (router or host), if known */
    socklen_t offenderlen;            /* 0 when unknown */
    uint8_t data[SOCKERR_DATA_MAX];   /* start of the datagram that failed */
    size_t datalen;
};
enum { SOCKERR_ORIGIN_NONE, SOCKERR_ORIGIN_LOCAL, SOCKERR_ORIGIN_ICMP, SOCKERR_ORIGIN_ICMP6 };

/* If sa is an IPv4-mapped IPv6 address (::ffff:a.b.c.d), rewrite it in place as AF_INET
 * (same port) and update *len. Other addresses are left alone. */
void dgram_unmap_v4(struct sockaddr_storage *sa, socklen_t *len);

/* 1 if the address is multicast (224.0.0.0/4, ff00::/8), else 0. */
int dgram_is_mcast(const struct sockaddr *sa);

/* 1 if the IPv4 address is the limited broadcast 255.255.255.255 or one of the n interface
 * broadcast addresses in bcasts (network byte order), else 0. IPv6 has no broadcast. */
int dgram_is_bcast(const struct sockaddr *sa, const uint32_t *bcasts, size_t n);

/* Sets DG_MCAST / DG_BCAST in d->flags from d->dst (no-op without DG_HAS_DST). */
void dgram_derive_flags(struct dgram *d, const uint32_t *bcasts, size_t n);

#endif
