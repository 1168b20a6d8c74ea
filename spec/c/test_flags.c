/* spec/c/test_flags.c: the multicast / broadcast derivation of dgram.c (dgram_is_mcast,
 * dgram_is_bcast, dgram_unmap_v4, dgram_derive_flags) over a table of addresses. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "dgram.h"
#include "check.h"


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
        CHECK(check_addr(rows[i].ip, 53, &sa) != 0);
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
    check_addr("192.0.2.255", 0, &sa);
    const struct sockaddr *p = (const struct sockaddr *)&sa;
    const uint32_t other[] = {ip4("10.255.255.255")};
    CHECK(dgram_is_bcast(p, NULL, 0) == 0);
    CHECK(dgram_is_bcast(p, other, 1) == 0);
    check_addr("255.255.255.255", 0, &sa);
    CHECK(dgram_is_bcast(p, NULL, 0) == 1);
    check_addr("ff02::1", 0, &sa);
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
    socklen_t len = check_addr("::ffff:224.0.0.1", 5353, &sa);
    dgram_unmap_v4(&sa, &len);
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)&sa;
    CHECK(sa.ss_family == AF_INET);
    CHECK(len == sizeof(struct sockaddr_in));
    CHECK(in4->sin_addr.s_addr == ip4("224.0.0.1"));
    CHECK(ntohs(in4->sin_port) == 5353);
    CHECK(dgram_is_mcast((const struct sockaddr *)&sa) == 1);

    /* Not mapped: left alone. */
    len = check_addr("::1", 53, &sa);
    struct sockaddr_storage before = sa;
    dgram_unmap_v4(&sa, &len);
    CHECK(len == sizeof(struct sockaddr_in6));
    CHECK(memcmp(&before, &sa, sizeof sa) == 0);
    len = check_addr("::ffff:0:1.2.3.4", 53, &sa); /* IPv4-translated, not mapped */
    dgram_unmap_v4(&sa, &len);
    CHECK(sa.ss_family == AF_INET6);
    len = check_addr("10.1.2.3", 53, &sa);
    dgram_unmap_v4(&sa, &len);
    CHECK(sa.ss_family == AF_INET && len == sizeof(struct sockaddr_in));
    CHECK(((const struct sockaddr_in *)&sa)->sin_addr.s_addr == ip4("10.1.2.3"));
}

/* Without DG_HAS_DST there is nothing to derive from. */
static void test_no_dst(void)
{
    struct dgram d;
    memset(&d, 0, sizeof d);
    check_addr("224.0.0.1", 0, &d.dst);
    dgram_derive_flags(&d, NULL, 0);
    CHECK(d.flags == 0);
}

int main(void)
{
    test_table();
    test_bcast_list();
    test_unmap();
    test_no_dst();
    return check_report();
}
