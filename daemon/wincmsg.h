/* daemon/wincmsg.h: the walk over the control data WSARecvMsg returns (WSACMSGHDR records),
 * in a form that needs no Windows header, so that it builds, is unit-tested and is fuzzed on
 * Linux too (spec/c/test_wincmsg.c, fuzz/fuzz_wincmsg.c); recv_win.c calls it for every
 * datagram. The byte layout and constants are 64-bit Windows' own, written out here
 * (recv_win.c checks them against the mingw-w64 headers at compile time). */
#ifndef LUADGRAM_WINCMSG_H
#define LUADGRAM_WINCMSG_H

#include <stddef.h>
#include <stdint.h>

#include "dgram.h"

/* One record: SIZE_T cmsg_len (header + data, little-endian), INT cmsg_level, INT cmsg_type,
 * then the data at WSA_CMSG_DATA (16 bytes in); the next record starts at cmsg_len rounded
 * up to 8 (WSA_CMSGHDR_ALIGN). */
#define WINCMSG_HDR_SIZE 16u
#define WINCMSG_ALIGN 8u

/* Levels and types (ws2def.h / ws2ipdef.h). */
#define WINCMSG_IPPROTO_IP 0
#define WINCMSG_IPPROTO_IPV6 41
#define WINCMSG_IP_TOS 3
#define WINCMSG_IP_TTL 4
#define WINCMSG_IP_PKTINFO 19
#define WINCMSG_IP_HOPLIMIT 21
#define WINCMSG_IPV6_PKTINFO 19
#define WINCMSG_IPV6_HOPLIMIT 21
#define WINCMSG_IPV6_TCLASS 39

/* Payload sizes: IN_PKTINFO (IN_ADDR, ULONG ifindex), IN6_PKTINFO (IN6_ADDR, ULONG ifindex),
 * and the INT of a hop limit or traffic class. */
#define WINCMSG_IN_PKTINFO_SIZE 8u
#define WINCMSG_IN6_PKTINFO_SIZE 20u
#define WINCMSG_INT_SIZE 4u

/* Fills d->dst (with local_port), d->ifindex, d->ttl, d->tos and their DG_HAS_DST /
 * DG_HAS_TTL / DG_HAS_TOS bits from controllen bytes of control data (any alignment),
 * clearing them first; other fields of d are left alone. A record whose length field does
 * not fit the buffer ends the walk; a record too short for its type, a ttl or tos outside
 * 0..255 and unknown records are skipped. An IPv4-mapped IPV6_PKTINFO gives an AF_INET dst
 * unless IP_PKTINFO (a dual-stack socket gets both) already gave it. */
void wincmsg_parse(struct dgram *d, const void *control, size_t controllen,
                   uint16_t local_port);

#endif
