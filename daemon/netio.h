/* daemon/netio.h: the one small interface between the daemon and the platform's socket
 * calls. recv_linux.c, send_linux.c and sock_linux.c implement it for Linux (recvmmsg,
 * sendmmsg, cmsg); recv_win.c, send_win.c and sock_win.c the same on WSARecvMsg /
 * WSASendMsg (README "Windows"). Nothing
 * above this interface includes a Linux-only header. */
#ifndef LUADGRAM_NETIO_H
#define LUADGRAM_NETIO_H

#include <stddef.h>
#include <stdint.h>
#include "dgram.h"
#include "mcast.h"

/* ---- socket set-up (sock_linux.c) ---- */

enum sock_kind { SOCK_KIND_UDP, SOCK_KIND_UNIX, SOCK_KIND_RAW };

/* What to open: parsed from a bind string by addr_parse_bind (addr.h). */
struct sock_spec {
    enum sock_kind kind;
    struct sockaddr_storage addr; /* UDP/raw: address (and port) to bind; unix: sockaddr_un */
    socklen_t addrlen;
    int proto;                    /* raw: IP protocol number */
    int dualstack;                /* UDP/raw on [::]: also receive IPv4 (IPV6_V6ONLY=0) */
};

/* How to open it: from the listener's configuration. */
struct sock_opts {
    int rcvbuf;        /* SO_RCVBUF bytes; 0 leaves the default */
    int reuseport;     /* SO_REUSEPORT */
    int unix_mode;     /* unix: chmod of the socket file; -1 leaves the umask's */
    int want_ttl, want_tos, want_time; /* ask for IP_TTL/HOPLIMIT, TOS/TCLASS, SO_TIMESTAMPNS */
    int freebind;      /* bind an address not (yet) on any interface (IP_FREEBIND) */
    char device[16];   /* "": any; else receive and send only on it (SO_BINDTODEVICE) */
    int v6only;        /* IPv6 sockets: SOCK_V6ONLY_AS_BIND ([::] is dual-stack), _ON, _OFF */
    int has_tos, tos;  /* the TOS / traffic class of what it sends (else the kernel's) */
    int has_ttl, ttl;  /* the TTL / hop limit of what it sends, unicast and multicast */
};
enum { SOCK_V6ONLY_AS_BIND, SOCK_V6ONLY_ON, SOCK_V6ONLY_OFF };

/* Opens, configures and binds a non-blocking socket. Always asks for packet info, the error
 * queue (ICMP errors), SO_RXQ_OVFL and, on unix sockets, SO_PASSCRED. A stale unix socket
 * file (nobody listening) is removed first; a live one is EADDRINUSE. Returns the fd, or -1
 * with err set to "bind 127.0.0.1:7777: Address already in use (EADDRINUSE)". On success
 * *granted is the receive buffer size the kernel granted (what SO_RCVBUF reads back). */
int sock_open(const struct sock_spec *spec, const struct sock_opts *opts, int *granted,
              char *err, size_t errlen);

/* Joins (join = 1) or leaves (0) the multicast group j on fd, an IP socket of j's family
 * (MCAST_JOIN_GROUP / MCAST_JOIN_SOURCE_GROUP and their LEAVE twins). 0, or -1 with err set
 * to "join 239.1.2.3%eth0: No such device (ENODEV)". */
int sock_mcast(int fd, const struct mcast_join *j, int join, char *err, size_t errlen);

/* Makes fd receive only the groups it joined itself, not every group some other socket of
 * the host joined on its port (IP_MULTICAST_ALL / IPV6_MULTICAST_ALL off). 0 or -1. */
int sock_mcast_own_only(int fd, int family);

/* NULL when this platform can open spec, else why not ("unix datagram sockets ... do not
 * exist on Windows"): the configuration reports it at the bind's line. */
const char *sock_unsupported(const struct sock_spec *spec);

/* NULL when this platform has the listener's binding option `key` ("freebind", "device",
 * "tos", ...), else why not ("Windows has no IP_FREEBIND ..."): the configuration reports it
 * at the key's line. */
const char *sock_option_unsupported(const char *key);

/* 1 when SO_REUSEPORT exists (Linux): with workers > 1, each UDP bind gets one socket per
 * worker; without it (Windows) one socket, read by one worker. */
int sock_has_reuseport(void);

/* Closes fd; for a unix socket also removes its file. */
void sock_close(int fd, const struct sock_spec *spec);

/* 1 if fd is a socket of spec's kind bound to spec's address (for sockets handed over by
 * systemd socket activation), else 0. */
int sock_matches(int fd, const struct sock_spec *spec);

/* ---- receive (recv_linux.c) ---- */

/* A batch of receive buffers, allocated once (recv_ring_init) and reused for every batch. */
struct recv_ring {
    unsigned batch;      /* datagrams per recvmmsg */
    size_t size;         /* bytes per buffer */
    struct dgram *recs;  /* batch records, filled by recv_batch */
    void *plat;          /* platform state: mmsghdr, iovecs, control buffers */
};

int recv_ring_init(struct recv_ring *ring, unsigned batch, size_t size);
void recv_ring_free(struct recv_ring *ring);

/* Receives up to ring->batch datagrams without blocking into ring->recs[0..n-1], each with
 * its control data parsed (dgram_parse_control) and DG_MCAST derived; DG_BCAST is left to
 * the caller (it needs the interface list). local_port (host order, 0 for raw sockets) goes
 * into each dst, so no per-batch lookup is needed. Returns n > 0, 0 when nothing is waiting
 * (EAGAIN), or -1 with errno set (ECONNREFUSED and friends mean: read the error queue). */
int recv_batch(int fd, struct recv_ring *ring, uint16_t local_port);

/* Fills d's control-derived fields (dst, spec_dst, ifindex, ttl, tos, time, creds, ovfl,
 * DG_CTRUNC from msg_flags) from a control buffer. local_port is put in d->dst. Bounded by
 * controllen: a malformed buffer yields fewer fields, never a read outside it. */
void dgram_parse_control(struct dgram *d, const void *control, size_t controllen,
                         int msg_flags, uint16_t local_port);

/* Takes one error from fd's error queue. Returns 1 and fills e, 0 when the queue is empty,
 * -1 with errno on failure. */
int recv_error(int fd, struct sockerr *e);

/* ---- send (send_linux.c) ---- */

struct send_item {
    int fd;
    int family;                   /* fd's address family, or 0: send_batch asks the kernel */
    struct sockaddr_storage to;
    socklen_t tolen;
    struct sockaddr_storage from; /* source address to send from (AF_UNSPEC: kernel picks) */
    unsigned ifindex;             /* outgoing interface, 0: routing picks */
    const uint8_t *data;
    size_t len;
};

/* Sends items in order, batching consecutive items on one fd with sendmmsg, each with the
 * pktinfo that makes it leave from item.from on item.ifindex. Returns how many were sent;
 * when that is < n, *err is the errno of item [returned] (EAGAIN: try later, others: that
 * item failed and the caller decides whether to skip it). */
unsigned send_batch(const struct send_item *items, unsigned n, int *err);

#endif
