/* daemon/peerlimit.h: per-peer rate limiting (a listener's `ratelimit = { ... }`): a token
 * bucket per peer address or prefix in a fixed-size table, allocated once when the listener
 * is set up, with least-recently-used eviction; nothing is allocated per datagram. Plain C,
 * no Lua, no platform calls: the caller passes the time. */
#ifndef LUADGRAM_PEERLIMIT_H
#define LUADGRAM_PEERLIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum { PEERLIMIT_MAX_EXEMPT = 64, PEERLIMIT_TOP_MAX = 100 };

/* An IPv4 or IPv6 network: family 4 or 6, the address (network byte order, 4 or 16 bytes
 * used) and its prefix length. */
struct peerlimit_net {
    uint8_t family;
    uint8_t len;
    uint8_t addr[16];
};

struct peerlimit_cfg {
    double rate;          /* datagrams per second a peer may send, > 0 */
    double burst;         /* bucket size, >= 1 */
    int prefix4, prefix6; /* a peer is its address cut to these lengths (32, 128: per ip) */
    uint32_t peers;       /* table size: peers tracked at once */
    size_t nexempt;
    struct peerlimit_net exempt[PEERLIMIT_MAX_EXEMPT]; /* never limited, never tracked */
};

/* One tracked peer as peerlimit_top reports it. */
struct peerlimit_peer {
    struct peerlimit_net net; /* the peer's address or prefix */
    uint64_t dropped;         /* datagrams refused since it was (last) tracked */
    uint64_t passed;          /* datagrams let through since then */
    double tokens;            /* tokens left at its last datagram */
};

struct peerlimit;

/* Parses "10.0.0.0/8", "2001:db8::/32" or a bare address (a /32 or /128). Host bits set
 * below the prefix are an error (a typo more often than not). 0, or -1 with err set. */
int peerlimit_parse_net(const char *s, struct peerlimit_net *out, char *err, size_t errlen);

/* Formats a network as "ip/len" (a bare ip when len is the full length). */
void peerlimit_format_net(const struct peerlimit_net *n, char *buf, size_t buflen);

/* The bytes a table of `peers` entries takes (for the README and the bench). */
size_t peerlimit_memory(uint32_t peers);

/* A table for cfg (copied), its hash keyed with seed. NULL on out of memory. */
struct peerlimit *peerlimit_new(const struct peerlimit_cfg *cfg, uint64_t seed);
void peerlimit_free(struct peerlimit *pl);

/* Takes a token from the bucket of peer's address (or prefix) at now_ns (a monotonic
 * clock). Returns 1 when the datagram may go to the handler, 0 when it is to be dropped.
 * Peers that are not IPv4/IPv6 (unix) and exempt ones always pass and are not tracked. */
int peerlimit_allow(struct peerlimit *pl, const struct sockaddr *peer, int64_t now_ns);

/* Fills out[0..] with up to n (at most PEERLIMIT_TOP_MAX) tracked peers that had datagrams
 * dropped, the most dropped first; returns how many. Scans the whole table. */
size_t peerlimit_top(const struct peerlimit *pl, struct peerlimit_peer *out, size_t n);

/* Peers tracked now. */
uint32_t peerlimit_tracked(const struct peerlimit *pl);

#endif
