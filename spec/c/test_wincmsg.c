/* spec/c/test_wincmsg.c: wincmsg_parse (the walk recv_win.c runs over WSARecvMsg's control
 * data) over buffers laid out as 64-bit Windows lays them out, built here byte by byte:
 * IP_PKTINFO, IPV6_PKTINFO and both on one dual-stack datagram, TTL / HOPLIMIT, TOS / TCLASS,
 * and cut, lying or garbage records (run under ASan, an out-of-bounds read fails the test). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wincmsg.h"
#include "check.h"

/* A control buffer being built: 8-byte aligned storage (WSA_CMSGHDR_ALIGN) and its used
 * length. */
struct winctl {
    union {
        uint8_t buf[512];
        uint64_t align;
    } u;
    size_t len;
};

static void put_le(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Appends one record (cmsg_len = header + len); the used length ends after its padding.
 * Returns where the record starts. */
static size_t winctl_add(struct winctl *c, int32_t level, int32_t type, const void *data,
                         size_t len)
{
    size_t space = WINCMSG_HDR_SIZE + (len + WINCMSG_ALIGN - 1) / WINCMSG_ALIGN * WINCMSG_ALIGN;
    if (c->len + space > sizeof c->u.buf) {
        fprintf(stderr, "winctl_add: buffer full\n");
        abort();
    }
    size_t at = c->len;
    uint8_t *h = c->u.buf + at;
    memset(h, 0, space);
    put_le(h, WINCMSG_HDR_SIZE + len, 8);
    put_le(h + 8, (uint32_t)level, 4);
    put_le(h + 12, (uint32_t)type, 4);
    memcpy(h + WINCMSG_HDR_SIZE, data, len);
    c->len += space;
    return at;
}

/* IN_PKTINFO / IN6_PKTINFO payloads: the address as on the wire, the ifindex a ULONG. */
static void add_pktinfo4(struct winctl *c, const char *ip, uint32_t ifindex)
{
    uint8_t p[WINCMSG_IN_PKTINFO_SIZE];
    inet_pton(AF_INET, ip, p);
    put_le(p + 4, ifindex, 4);
    winctl_add(c, WINCMSG_IPPROTO_IP, WINCMSG_IP_PKTINFO, p, sizeof p);
}

static void add_pktinfo6(struct winctl *c, const char *ip, uint32_t ifindex)
{
    uint8_t p[WINCMSG_IN6_PKTINFO_SIZE];
    inet_pton(AF_INET6, ip, p);
    put_le(p + 16, ifindex, 4);
    winctl_add(c, WINCMSG_IPPROTO_IPV6, WINCMSG_IPV6_PKTINFO, p, sizeof p);
}

static void add_int(struct winctl *c, int32_t level, int32_t type, int32_t v)
{
    uint8_t p[WINCMSG_INT_SIZE];
    put_le(p, (uint32_t)v, 4);
    winctl_add(c, level, type, p, sizeof p);
}

/* A record with every field dirty and two bits wincmsg_parse does not own set. */
static void dirty(struct dgram *d)
{
    memset(d, 0xa5, sizeof *d);
    d->has = DG_HAS_TIME | DG_HAS_DST | DG_HAS_TTL | DG_HAS_TOS;
    d->flags = DG_TRUNC;
}

/* 1 when the fields wincmsg_parse does not own are as dirty() left them. */
static int untouched(const struct dgram *d)
{
    struct dgram was;
    dirty(&was);
    return (d->has & DG_HAS_TIME) && d->flags == was.flags && d->data == was.data &&
           d->len == was.len && d->size == was.size && d->time_sec == was.time_sec &&
           d->time_nsec == was.time_nsec && d->pid == was.pid && d->uid == was.uid &&
           d->gid == was.gid && d->ovfl == was.ovfl &&
           memcmp(&d->spec_dst, &was.spec_dst, sizeof was.spec_dst) == 0 &&
           memcmp(&d->peer, &was.peer, sizeof was.peer) == 0;
}

static int is_v4(const struct dgram *d, const char *ip, uint16_t port)
{
    struct sockaddr_in in4;
    memcpy(&in4, &d->dst, sizeof in4);
    struct in_addr want;
    inet_pton(AF_INET, ip, &want);
    return d->dst.ss_family == AF_INET && in4.sin_addr.s_addr == want.s_addr &&
           ntohs(in4.sin_port) == port;
}

static int is_v6(const struct dgram *d, const char *ip, uint16_t port, uint32_t scope)
{
    struct sockaddr_in6 in6;
    memcpy(&in6, &d->dst, sizeof in6);
    struct in6_addr want;
    inet_pton(AF_INET6, ip, &want);
    return d->dst.ss_family == AF_INET6 && memcmp(&in6.sin6_addr, &want, sizeof want) == 0 &&
           ntohs(in6.sin6_port) == port && in6.sin6_scope_id == scope;
}

static void test_ipv4(void)
{
    struct winctl c = {0};
    add_pktinfo4(&c, "127.0.0.2", 1);
    add_int(&c, WINCMSG_IPPROTO_IP, WINCMSG_IP_TTL, 128);
    add_int(&c, WINCMSG_IPPROTO_IP, WINCMSG_IP_TOS, 0xb8);
    struct dgram d;
    dirty(&d);
    wincmsg_parse(&d, c.u.buf, c.len, 7777);
    CHECK(d.has == (DG_HAS_TIME | DG_HAS_DST | DG_HAS_TTL | DG_HAS_TOS));
    CHECK(is_v4(&d, "127.0.0.2", 7777));
    CHECK(d.ifindex == 1);
    CHECK(d.ttl == 128);
    CHECK(d.tos == 0xb8);
    CHECK(untouched(&d));
}

/* IP_HOPLIMIT (= IP_RECVTTL's number) at the IP level is a TTL too. */
static void test_ip_hoplimit(void)
{
    struct winctl c = {0};
    add_int(&c, WINCMSG_IPPROTO_IP, WINCMSG_IP_HOPLIMIT, 1);
    struct dgram d;
    dirty(&d);
    wincmsg_parse(&d, c.u.buf, c.len, 1);
    CHECK(d.has == (DG_HAS_TIME | DG_HAS_TTL));
    CHECK(d.ttl == 1);
    CHECK(d.dst.ss_family == AF_UNSPEC && d.ifindex == 0 && d.tos == 0);
}

static void test_ipv6(void)
{
    struct winctl c = {0};
    add_int(&c, WINCMSG_IPPROTO_IPV6, WINCMSG_IPV6_HOPLIMIT, 255);
    add_pktinfo6(&c, "2001:db8::5", 12);
    add_int(&c, WINCMSG_IPPROTO_IPV6, WINCMSG_IPV6_TCLASS, 0);
    struct dgram d;
    dirty(&d);
    wincmsg_parse(&d, c.u.buf, c.len, 53);
    CHECK(d.has == (DG_HAS_TIME | DG_HAS_DST | DG_HAS_TTL | DG_HAS_TOS));
    CHECK(is_v6(&d, "2001:db8::5", 53, 0));
    CHECK(d.ifindex == 12);
    CHECK(d.ttl == 255 && d.tos == 0);
    CHECK(untouched(&d));

    /* link-local: the interface is the scope */
    struct winctl l = {0};
    add_pktinfo6(&l, "fe80::1", 3);
    dirty(&d);
    wincmsg_parse(&d, l.u.buf, l.len, 53);
    CHECK(is_v6(&d, "fe80::1", 53, 3) && d.ifindex == 3);
}

/* A dual-stack socket gets both packet infos for an IPv4 datagram, in either order: dst is
 * the IPv4 address; a mapped IPV6_PKTINFO alone gives it too. */
static void test_dualstack(void)
{
    struct winctl c = {0};
    add_pktinfo4(&c, "127.0.0.2", 1);
    add_pktinfo6(&c, "::ffff:127.0.0.2", 9);
    add_int(&c, WINCMSG_IPPROTO_IP, WINCMSG_IP_TTL, 64);
    struct dgram d;
    dirty(&d);
    wincmsg_parse(&d, c.u.buf, c.len, 9999);
    CHECK(d.has == (DG_HAS_TIME | DG_HAS_DST | DG_HAS_TTL));
    CHECK(is_v4(&d, "127.0.0.2", 9999));
    CHECK(d.ifindex == 1); /* IP_PKTINFO's, not the skipped mapped one's */
    CHECK(d.ttl == 64);

    struct winctl r = {0};
    add_pktinfo6(&r, "::ffff:127.0.0.2", 9);
    add_pktinfo4(&r, "127.0.0.2", 1);
    dirty(&d);
    wincmsg_parse(&d, r.u.buf, r.len, 9999);
    CHECK(is_v4(&d, "127.0.0.2", 9999) && d.ifindex == 1);

    struct winctl m = {0};
    add_pktinfo6(&m, "::ffff:10.1.2.3", 4);
    dirty(&d);
    wincmsg_parse(&d, m.u.buf, m.len, 9999);
    CHECK(d.has == (DG_HAS_TIME | DG_HAS_DST));
    CHECK(is_v4(&d, "10.1.2.3", 9999) && d.ifindex == 4);
}

/* A record whose cmsg_len runs past the buffer ends the walk (what came before stays); so
 * does a buffer cut inside a header, a length below the header and a huge one. */
static void test_truncated(void)
{
    struct winctl c = {0};
    add_pktinfo4(&c, "192.0.2.1", 2);
    size_t first = c.len;
    add_int(&c, WINCMSG_IPPROTO_IP, WINCMSG_IP_TTL, 7);
    struct dgram d;
    for (size_t cut = first; cut < first + WINCMSG_HDR_SIZE + WINCMSG_INT_SIZE; cut++) {
        dirty(&d);
        wincmsg_parse(&d, c.u.buf, cut, 1);
        CHECK(d.has == (DG_HAS_TIME | DG_HAS_DST) && is_v4(&d, "192.0.2.1", 1));
    }
    /* the last record unpadded: its own length is enough */
    dirty(&d);
    wincmsg_parse(&d, c.u.buf, first + WINCMSG_HDR_SIZE + WINCMSG_INT_SIZE, 1);
    CHECK(d.has == (DG_HAS_TIME | DG_HAS_DST | DG_HAS_TTL) && d.ttl == 7);

    static const uint64_t lies[] = {0, 1, WINCMSG_HDR_SIZE - 1, 4096, UINT64_MAX,
                                    (uint64_t)1 << 63};
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        struct winctl l = {0};
        uint8_t p[WINCMSG_INT_SIZE] = {9, 0, 0, 0};
        size_t at = winctl_add(&l, WINCMSG_IPPROTO_IP, WINCMSG_IP_TTL, p, sizeof p);
        put_le(l.u.buf + at, lies[i], 8); /* cmsg_len lies */
        add_int(&l, WINCMSG_IPPROTO_IP, WINCMSG_IP_TOS, 4);
        dirty(&d);
        wincmsg_parse(&d, l.u.buf, l.len, 1);
        CHECK(d.has == DG_HAS_TIME);
    }
    dirty(&d);
    wincmsg_parse(&d, NULL, 0, 1);
    CHECK(d.has == DG_HAS_TIME && d.dst.ss_family == AF_UNSPEC);
}

/* Too short for its type, out of range, unknown: skipped, the walk goes on. */
static void test_skipped(void)
{
    struct winctl c = {0};
    uint8_t four[4] = {127, 0, 0, 1};
    winctl_add(&c, WINCMSG_IPPROTO_IP, WINCMSG_IP_PKTINFO, four, sizeof four);
    uint8_t six[WINCMSG_IN6_PKTINFO_SIZE - 1] = {0};
    winctl_add(&c, WINCMSG_IPPROTO_IPV6, WINCMSG_IPV6_PKTINFO, six, sizeof six);
    winctl_add(&c, WINCMSG_IPPROTO_IP, WINCMSG_IP_TTL, four, 3);
    add_int(&c, WINCMSG_IPPROTO_IP, WINCMSG_IP_TTL, 256);
    add_int(&c, WINCMSG_IPPROTO_IPV6, WINCMSG_IPV6_TCLASS, -1);
    add_int(&c, 0xffff, WINCMSG_IP_TTL, 5);          /* SOL_SOCKET: not ours */
    add_int(&c, WINCMSG_IPPROTO_IPV6, WINCMSG_IP_TOS, 5); /* IP's type at the IPv6 level */
    add_int(&c, WINCMSG_IPPROTO_IP, 50, 3);          /* IP_ECN */
    add_int(&c, WINCMSG_IPPROTO_IP, WINCMSG_IP_TOS, 0x20);
    struct dgram d;
    dirty(&d);
    wincmsg_parse(&d, c.u.buf, c.len, 1);
    CHECK(d.has == (DG_HAS_TIME | DG_HAS_TOS));
    CHECK(d.tos == 0x20 && d.ttl == 0 && d.dst.ss_family == AF_UNSPEC);
}

/* The buffer at an odd address, exactly sized in its own allocation (ASan sees overreads). */
static void test_unaligned(void)
{
    struct winctl c = {0};
    add_pktinfo6(&c, "::1", 1);
    add_int(&c, WINCMSG_IPPROTO_IPV6, WINCMSG_IPV6_HOPLIMIT, 64);
    uint8_t *raw = malloc(c.len + 1);
    if (!raw) {
        check_failed++;
        return;
    }
    memcpy(raw + 1, c.u.buf, c.len);
    struct dgram d;
    dirty(&d);
    wincmsg_parse(&d, raw + 1, c.len, 5);
    CHECK(d.has == (DG_HAS_TIME | DG_HAS_DST | DG_HAS_TTL));
    CHECK(is_v6(&d, "::1", 5, 0) && d.ttl == 64 && d.ifindex == 1);
    free(raw);
}

int main(void)
{
    test_ipv4();
    test_ip_hoplimit();
    test_ipv6();
    test_dualstack();
    test_truncated();
    test_skipped();
    test_unaligned();
    return check_report();
}
