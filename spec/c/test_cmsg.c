/* spec/c/test_cmsg.c: dgram_parse_control (recv_linux.c) over control buffers built by
 * hand with the CMSG_* macros: every message type we ask the kernel for, IPv4, IPv6 and
 * IPv4-mapped, and truncated or garbage buffers (run under ASan, an out-of-bounds read
 * fails the test). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "netio.h"
#include "check.h"


/* A control buffer being built: aligned storage, a message header for the CMSG_* macros
 * and the last message added. */
struct ctl {
    union {
        uint8_t buf[1024];
        size_t align; /* cmsg alignment (CMSG_ALIGN rounds to size_t) */
    } u;
    struct msghdr mh;
    struct cmsghdr *last;
};

static void ctl_init(struct ctl *c)
{
    memset(c, 0, sizeof *c);
    c->mh.msg_control = c->u.buf;
    c->mh.msg_controllen = sizeof c->u.buf;
}

/* Appends one control message; the buffer's length becomes the used length. */
static void ctl_add(struct ctl *c, int level, int type, const void *data, size_t len)
{
    c->mh.msg_controllen = sizeof c->u.buf;
    struct cmsghdr *h = c->last ? CMSG_NXTHDR(&c->mh, c->last) : CMSG_FIRSTHDR(&c->mh);
    if (!h) {
        fprintf(stderr, "ctl_add: buffer full\n");
        abort();
    }
    h->cmsg_level = level;
    h->cmsg_type = type;
    h->cmsg_len = CMSG_LEN(len);
    memcpy(CMSG_DATA(h), data, len);
    c->last = h;
    c->mh.msg_controllen = (size_t)((uint8_t *)h - c->u.buf) + CMSG_SPACE(len);
}

static size_t ctl_len(const struct ctl *c)
{
    return c->last ? c->mh.msg_controllen : 0;
}

static uint32_t ip4(const char *s)
{
    struct in_addr a;
    inet_pton(AF_INET, s, &a);
    return a.s_addr;
}

static struct in6_addr ip6(const char *s)
{
    struct in6_addr a;
    inet_pton(AF_INET6, s, &a);
    return a;
}

static const struct sockaddr_in *as4(const struct sockaddr_storage *sa)
{
    return (const struct sockaddr_in *)sa;
}

static const struct sockaddr_in6 *as6(const struct sockaddr_storage *sa)
{
    return (const struct sockaddr_in6 *)sa;
}

/* A fresh record with every field dirty, to see which ones the parser sets. */
static void dirty(struct dgram *d)
{
    memset(d, 0xa5, sizeof *d);
    d->flags = DG_TRUNC | DG_CTRUNC;
}

/* An IPv4 datagram with everything: pktinfo, ttl, tos, timestamp, overflow count. */
static void test_ipv4_all(void)
{
    struct ctl c;
    ctl_init(&c);
    struct in_pktinfo pi = {.ipi_ifindex = 7};
    pi.ipi_spec_dst.s_addr = ip4("192.0.2.1");
    pi.ipi_addr.s_addr = ip4("192.0.2.255");
    int ttl = 63;
    uint8_t tos = 0xb8;
    struct timespec ts = {.tv_sec = 1700000000, .tv_nsec = 123456789};
    uint32_t ovfl = 42;
    ctl_add(&c, IPPROTO_IP, IP_PKTINFO, &pi, sizeof pi);
    ctl_add(&c, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
    ctl_add(&c, IPPROTO_IP, IP_TOS, &tos, 1);
    ctl_add(&c, SOL_SOCKET, SCM_TIMESTAMPNS, &ts, sizeof ts);
    ctl_add(&c, SOL_SOCKET, SO_RXQ_OVFL, &ovfl, sizeof ovfl);

    struct dgram d;
    dirty(&d);
    dgram_parse_control(&d, c.u.buf, ctl_len(&c), 0, 7777);
    CHECK(d.has == (DG_HAS_DST | DG_HAS_SPEC_DST | DG_HAS_TTL | DG_HAS_TOS | DG_HAS_TIME |
                    DG_HAS_OVFL));
    CHECK(d.dst.ss_family == AF_INET);
    CHECK(as4(&d.dst)->sin_addr.s_addr == ip4("192.0.2.255"));
    CHECK(ntohs(as4(&d.dst)->sin_port) == 7777);
    CHECK(d.spec_dst.ss_family == AF_INET);
    CHECK(as4(&d.spec_dst)->sin_addr.s_addr == ip4("192.0.2.1"));
    CHECK(d.ifindex == 7);
    CHECK(d.ttl == 63);
    CHECK(d.tos == 0xb8);
    CHECK(d.time_sec == 1700000000 && d.time_nsec == 123456789);
    CHECK(d.ovfl == 42);
    CHECK(d.flags == DG_TRUNC); /* CTRUNC cleared (msg_flags 0), TRUNC kept */
}

static void test_ipv6_all(void)
{
    struct ctl c;
    ctl_init(&c);
    struct in6_pktinfo pi = {.ipi6_addr = ip6("2001:db8::53"), .ipi6_ifindex = 3};
    int hops = 255, tclass = 0x2e;
    ctl_add(&c, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof pi);
    ctl_add(&c, IPPROTO_IPV6, IPV6_HOPLIMIT, &hops, sizeof hops);
    ctl_add(&c, IPPROTO_IPV6, IPV6_TCLASS, &tclass, sizeof tclass);

    struct dgram d;
    dirty(&d);
    dgram_parse_control(&d, c.u.buf, ctl_len(&c), MSG_CTRUNC, 53);
    CHECK(d.has == (DG_HAS_DST | DG_HAS_TTL | DG_HAS_TOS));
    CHECK(d.dst.ss_family == AF_INET6);
    struct in6_addr want = ip6("2001:db8::53");
    CHECK(memcmp(&as6(&d.dst)->sin6_addr, &want, sizeof want) == 0);
    CHECK(ntohs(as6(&d.dst)->sin6_port) == 53);
    CHECK(as6(&d.dst)->sin6_scope_id == 0);
    CHECK(d.ifindex == 3);
    CHECK(d.ttl == 255);
    CHECK(d.tos == 0x2e);
    CHECK(d.flags & DG_CTRUNC);

    /* A link-local destination carries its interface as the scope. */
    ctl_init(&c);
    pi.ipi6_addr = ip6("fe80::1");
    ctl_add(&c, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof pi);
    dgram_parse_control(&d, c.u.buf, ctl_len(&c), 0, 53);
    CHECK(as6(&d.dst)->sin6_scope_id == 3);
}

/* An IPv4 datagram on a dual-stack socket: mapped IPV6_PKTINFO alone gives AF_INET; with
 * IP_PKTINFO as well (what the kernel sends) the IPv4 one and its spec_dst win. */
static void test_mapped(void)
{
    struct ctl c;
    ctl_init(&c);
    struct in6_pktinfo pi6 = {.ipi6_addr = ip6("::ffff:127.0.0.1"), .ipi6_ifindex = 1};
    ctl_add(&c, IPPROTO_IPV6, IPV6_PKTINFO, &pi6, sizeof pi6);
    struct dgram d;
    dirty(&d);
    dgram_parse_control(&d, c.u.buf, ctl_len(&c), 0, 9000);
    CHECK(d.has == DG_HAS_DST);
    CHECK(d.dst.ss_family == AF_INET);
    CHECK(as4(&d.dst)->sin_addr.s_addr == ip4("127.0.0.1"));
    CHECK(ntohs(as4(&d.dst)->sin_port) == 9000);
    CHECK(d.ifindex == 1);

    struct in_pktinfo pi4 = {.ipi_ifindex = 1};
    pi4.ipi_spec_dst.s_addr = ip4("127.0.0.2");
    pi4.ipi_addr.s_addr = ip4("127.0.0.2");
    pi6.ipi6_addr = ip6("::ffff:127.0.0.2");
    ctl_init(&c);
    ctl_add(&c, IPPROTO_IP, IP_PKTINFO, &pi4, sizeof pi4);
    ctl_add(&c, IPPROTO_IPV6, IPV6_PKTINFO, &pi6, sizeof pi6);
    dirty(&d);
    dgram_parse_control(&d, c.u.buf, ctl_len(&c), 0, 9000);
    CHECK(d.has == (DG_HAS_DST | DG_HAS_SPEC_DST));
    CHECK(d.dst.ss_family == AF_INET);
    CHECK(as4(&d.dst)->sin_addr.s_addr == ip4("127.0.0.2"));
    CHECK(as4(&d.spec_dst)->sin_addr.s_addr == ip4("127.0.0.2"));

    /* The other order (what Linux 6.x sends): the same result. */
    ctl_init(&c);
    ctl_add(&c, IPPROTO_IPV6, IPV6_PKTINFO, &pi6, sizeof pi6);
    ctl_add(&c, IPPROTO_IP, IP_PKTINFO, &pi4, sizeof pi4);
    dirty(&d);
    dgram_parse_control(&d, c.u.buf, ctl_len(&c), 0, 9000);
    CHECK(d.has == (DG_HAS_DST | DG_HAS_SPEC_DST));
    CHECK(d.dst.ss_family == AF_INET);
    CHECK(as4(&d.dst)->sin_addr.s_addr == ip4("127.0.0.2"));
    CHECK(ntohs(as4(&d.dst)->sin_port) == 9000);
    CHECK(as4(&d.spec_dst)->sin_addr.s_addr == ip4("127.0.0.2"));
}

static void test_creds(void)
{
    struct ctl c;
    ctl_init(&c);
    struct ucred uc = {.pid = 4321, .uid = 1000, .gid = 100};
    ctl_add(&c, SOL_SOCKET, SCM_CREDENTIALS, &uc, sizeof uc);
    struct dgram d;
    dirty(&d);
    dgram_parse_control(&d, c.u.buf, ctl_len(&c), 0, 0);
    CHECK(d.has == DG_HAS_CREDS);
    CHECK(d.pid == 4321 && d.uid == 1000 && d.gid == 100);
    CHECK(d.ifindex == 0);
    CHECK(d.dst.ss_family == AF_UNSPEC);
}

/* Messages shorter than their type are skipped; unknown ones are ignored; the parser
 * goes on after both. */
static void test_short_and_unknown(void)
{
    struct ctl c;
    ctl_init(&c);
    uint8_t junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int bad_ttl = 1000, ttl = 9;
    ctl_add(&c, IPPROTO_IP, IP_PKTINFO, junk, 4);          /* needs 12 bytes */
    ctl_add(&c, IPPROTO_IPV6, IPV6_PKTINFO, junk, 8);      /* needs 20 */
    ctl_add(&c, SOL_SOCKET, SCM_TIMESTAMPNS, junk, 8);     /* needs 16 */
    ctl_add(&c, SOL_SOCKET, SCM_CREDENTIALS, junk, 4);     /* needs 12 */
    ctl_add(&c, SOL_SOCKET, SO_RXQ_OVFL, junk, 2);         /* needs 4 */
    ctl_add(&c, IPPROTO_IP, IP_TOS, junk, 0);              /* needs 1 */
    ctl_add(&c, IPPROTO_IPV6, IPV6_HOPLIMIT, &bad_ttl, sizeof bad_ttl); /* out of range */
    ctl_add(&c, 99, 1, junk, sizeof junk);                 /* unknown level */
    ctl_add(&c, IPPROTO_IP, 200, junk, sizeof junk);       /* unknown type */
    ctl_add(&c, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
    struct dgram d;
    dirty(&d);
    dgram_parse_control(&d, c.u.buf, ctl_len(&c), 0, 1);
    CHECK(d.has == DG_HAS_TTL);
    CHECK(d.ttl == 9);
}

/* A cmsg_len running past controllen ends the walk; what came before it is kept. */
static void test_truncated(void)
{
    struct ctl c;
    ctl_init(&c);
    int ttl = 17;
    struct in_pktinfo pi = {.ipi_ifindex = 2};
    pi.ipi_addr.s_addr = ip4("10.0.0.1");
    ctl_add(&c, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
    size_t first = ctl_len(&c);
    ctl_add(&c, IPPROTO_IP, IP_PKTINFO, &pi, sizeof pi);
    size_t full = ctl_len(&c);

    /* Every cut of the buffer, into an exact-size heap copy so ASan sees overreads. */
    for (size_t cut = 0; cut <= full; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        if (!copy) {
            check_failed++;
            return;
        }
        memcpy(copy, c.u.buf, cut);
        struct dgram d;
        dirty(&d);
        dgram_parse_control(&d, copy, cut, MSG_CTRUNC, 1);
        int want_ttl = cut >= CMSG_LEN(sizeof ttl);
        int want_dst = cut >= first + CMSG_LEN(sizeof pi);
        CHECK(!!(d.has & DG_HAS_TTL) == want_ttl);
        CHECK(!!(d.has & DG_HAS_DST) == want_dst);
        CHECK(d.flags & DG_CTRUNC);
        free(copy);
    }

    /* cmsg_len 0 and cmsg_len shorter than a header must not loop or be read. */
    struct cmsghdr h = {.cmsg_len = 0, .cmsg_level = IPPROTO_IP, .cmsg_type = IP_TTL};
    struct dgram d;
    dirty(&d);
    dgram_parse_control(&d, &h, sizeof h, 0, 1);
    CHECK(d.has == 0);
    h.cmsg_len = sizeof h - 1;
    dgram_parse_control(&d, &h, sizeof h, 0, 1);
    CHECK(d.has == 0);
    h.cmsg_len = (size_t)-1;
    dgram_parse_control(&d, &h, sizeof h, 0, 1);
    CHECK(d.has == 0);
    dgram_parse_control(&d, NULL, 0, 0, 1);
    CHECK(d.has == 0 && d.flags == DG_TRUNC);
}

/* The same buffer at an odd address parses the same (a fuzzer hands unaligned bytes). */
static void test_unaligned(void)
{
    struct ctl c;
    ctl_init(&c);
    struct in6_pktinfo pi = {.ipi6_addr = ip6("::1"), .ipi6_ifindex = 1};
    int hops = 64;
    ctl_add(&c, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof pi);
    ctl_add(&c, IPPROTO_IPV6, IPV6_HOPLIMIT, &hops, sizeof hops);
    size_t len = ctl_len(&c);
    uint8_t *raw = malloc(len + 1);
    if (!raw) {
        check_failed++;
        return;
    }
    memcpy(raw + 1, c.u.buf, len);
    struct dgram d;
    dirty(&d);
    dgram_parse_control(&d, raw + 1, len, 0, 5);
    CHECK(d.has == (DG_HAS_DST | DG_HAS_TTL));
    CHECK(d.ttl == 64 && d.ifindex == 1);
    free(raw);
}

/* Random bytes, and real buffers with random bytes flipped: no crash, no overread, and
 * whatever dst comes out is a whole IP address with our port. */
static void test_garbage(void)
{
    uint32_t seed = 12345;
    struct ctl c;
    ctl_init(&c);
    struct in_pktinfo pi = {.ipi_ifindex = 1};
    int ttl = 1;
    ctl_add(&c, IPPROTO_IP, IP_PKTINFO, &pi, sizeof pi);
    ctl_add(&c, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
    size_t base = ctl_len(&c);
    int bad = 0, kept = 0;
    for (int round = 0; round < 2000; round++) {
        seed = seed * 1103515245u + 12345u;
        size_t len = (round & 1) ? base : (seed >> 16) % 200;
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf) {
            check_failed++;
            return;
        }
        if (round & 1)
            memcpy(buf, c.u.buf, len);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            if (!(round & 1) || (seed >> 24) < 8)
                buf[i] = (uint8_t)(seed >> 16);
        }
        struct dgram d;
        dirty(&d);
        dgram_parse_control(&d, buf, len, 0, 4242);
        int ok = 1;
        if (d.has & DG_HAS_DST) {
            if (d.dst.ss_family == AF_INET)
                ok = ntohs(as4(&d.dst)->sin_port) == 4242;
            else if (d.dst.ss_family == AF_INET6)
                ok = ntohs(as6(&d.dst)->sin6_port) == 4242;
            else
                ok = 0;
        }
        if ((d.has & DG_HAS_TTL) && (d.ttl < 0 || d.ttl > 255))
            ok = 0;
        bad += !ok;
        /* a real buffer with a few bytes flipped often survives: then its messages parse */
        kept += (round & 1) && (d.has & DG_HAS_DST) && (d.has & DG_HAS_TTL);
        free(buf);
    }
    CHECK(bad == 0);
    CHECK(kept > 0); /* the rounds above exercised the parser, not only its refusals */
}

int main(void)
{
    test_ipv4_all();
    test_ipv6_all();
    test_mapped();
    test_creds();
    test_short_and_unknown();
    test_truncated();
    test_unaligned();
    test_garbage();
    return check_report();
}
