/* spec/c/test_flags.c: the multicast / broadcast derivation of dgram.c (dgram_is_mcast,
 * dgram_is_bcast, dgram_unmap_v4, dgram_derive_flags) over a table of addresses. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "dgram.h"

static int passed, failed;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (cond) {                                                                    \
            passed++;                                                                  \
        } else {                                                                       \
            failed++;                                                                  \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);   \
        }                                                                              \
    } while (0)

/* ip (v4 or v6 text) with port into sa; returns its length, 0 if ip does not parse. */
static socklen_t make_addr(const char *ip, int port, struct sockaddr_storage *sa)
{
    memset(sa, 0, sizeof *sa);
    struct sockaddr_in *in4 = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
    if (inet_pton(AF_INET, ip, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        return sizeof *in4;
    }
    if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        return sizeof *in6;
    }
    return 0;
}

static uint32_t ip4(const char *s)
{
    struct in_addr a;
    inet_pton(AF_INET, s, &a);
    return a.s_addr;
}

/* The derivation table: address -> (multicast, broadcast) with one interface broadcast
 * address configured (192.0.2.255). */
static void test_table(void)
{
    static const struct {
        const char *ip;
        int mcast, bcast;
    } rows[] = {
        {"224.0.0.1", 1, 0},       {"239.255.255.250", 1, 0}, {"223.255.255.255", 0, 0},
        {"240.0.0.1", 0, 0},       {"255.255.255.255", 0, 1}, {"192.0.2.255", 0, 1},
        {"192.0.2.254", 0, 0},     {"127.0.0.1", 0, 0},       {"ff02::1", 1, 0},
        {"ff05::1:3", 1, 0},       {"fe80::1", 0, 0},         {"::1", 0, 0},
        {"::", 0, 0},              {"::ffff:224.0.0.1", 1, 0}, {"::ffff:255.255.255.255", 0, 1},
        {"::ffff:10.0.0.1", 0, 0},
    };
    const uint32_t bcasts[] = {ip4("10.255.255.255"), ip4("192.0.2.255")};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct sockaddr_storage sa;
        CHECK(make_addr(rows[i].ip, 53, &sa) != 0);
        const struct sockaddr *p = (const struct sockaddr *)&sa;
        int m = dgram_is_mcast(p), b = dgram_is_bcast(p, bcasts, 2);
        if (m != rows[i].mcast || b != rows[i].bcast)
            fprintf(stderr, "  %s: mcast %d bcast %d, want %d %d\n", rows[i].ip, m, b,
                    rows[i].mcast, rows[i].bcast);
        CHECK(m == rows[i].mcast);
        CHECK(b == rows[i].bcast);

        struct dgram d;
        memset(&d, 0, sizeof d);
        d.dst = sa;
        d.has = DG_HAS_DST;
        d.flags = DG_TRUNC | DG_MCAST | DG_BCAST; /* stale flags are recomputed */
        dgram_derive_flags(&d, bcasts, 2);
        CHECK(!!(d.flags & DG_MCAST) == rows[i].mcast);
        CHECK(!!(d.flags & DG_BCAST) == rows[i].bcast);
        CHECK(d.flags & DG_TRUNC); /* other flags are kept */
    }
}

/* An interface broadcast address only counts when it is in the list. */
static void test_bcast_list(void)
{
    struct sockaddr_storage sa;
    make_addr("192.0.2.255", 0, &sa);
    const struct sockaddr *p = (const struct sockaddr *)&sa;
    const uint32_t other[] = {ip4("10.255.255.255")};
    CHECK(dgram_is_bcast(p, NULL, 0) == 0);
    CHECK(dgram_is_bcast(p, other, 1) == 0);
    make_addr("255.255.255.255", 0, &sa);
    CHECK(dgram_is_bcast(p, NULL, 0) == 1);
    make_addr("ff02::1", 0, &sa);
    CHECK(dgram_is_bcast(p, other, 1) == 0);
    struct sockaddr_storage un;
    memset(&un, 0, sizeof un);
    un.ss_family = AF_UNIX;
    CHECK(dgram_is_mcast((const struct sockaddr *)&un) == 0);
    CHECK(dgram_is_bcast((const struct sockaddr *)&un, other, 1) == 0);
}

static void test_unmap(void)
{
    struct sockaddr_storage sa;
    socklen_t len = make_addr("::ffff:224.0.0.1", 5353, &sa);
    dgram_unmap_v4(&sa, &len);
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)&sa;
    CHECK(sa.ss_family == AF_INET);
    CHECK(len == sizeof(struct sockaddr_in));
    CHECK(in4->sin_addr.s_addr == ip4("224.0.0.1"));
    CHECK(ntohs(in4->sin_port) == 5353);
    CHECK(dgram_is_mcast((const struct sockaddr *)&sa) == 1);

    /* Not mapped: left alone. */
    len = make_addr("::1", 53, &sa);
    struct sockaddr_storage before = sa;
    dgram_unmap_v4(&sa, &len);
    CHECK(len == sizeof(struct sockaddr_in6));
    CHECK(memcmp(&before, &sa, sizeof sa) == 0);
    len = make_addr("::ffff:0:1.2.3.4", 53, &sa); /* IPv4-translated, not mapped */
    dgram_unmap_v4(&sa, &len);
    CHECK(sa.ss_family == AF_INET6);
    len = make_addr("10.1.2.3", 53, &sa);
    dgram_unmap_v4(&sa, &len);
    CHECK(sa.ss_family == AF_INET && len == sizeof(struct sockaddr_in));
    CHECK(((const struct sockaddr_in *)&sa)->sin_addr.s_addr == ip4("10.1.2.3"));
}

/* Without DG_HAS_DST there is nothing to derive from. */
static void test_no_dst(void)
{
    struct dgram d;
    memset(&d, 0, sizeof d);
    make_addr("224.0.0.1", 0, &d.dst);
    dgram_derive_flags(&d, NULL, 0);
    CHECK(d.flags == 0);
}

int main(void)
{
    test_table();
    test_bcast_list();
    test_unmap();
    test_no_dst();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
