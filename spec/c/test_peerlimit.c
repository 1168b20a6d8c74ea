/* spec/c/test_peerlimit.c: the per-peer rate limit table (daemon/peerlimit.c): token
 * buckets (burst, refill, cap), prefixes, exempt networks, LRU eviction in a full table,
 * the top offenders, and the network parser the configuration uses. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "peerlimit.h"
#include "check.h"

#define SEC 1000000000LL

static int allow(struct peerlimit *pl, const char *ip, int64_t now)
{
    struct sockaddr_storage sa;
    CHECK(check_addr(ip, 1234, &sa) != 0);
    return peerlimit_allow(pl, (const struct sockaddr *)&sa, now);
}

/* How many of n datagrams at the same instant pass. */
static int allow_n(struct peerlimit *pl, const char *ip, int n, int64_t now)
{
    int passed = 0;
    for (int i = 0; i < n; i++)
        passed += allow(pl, ip, now);
    return passed;
}

static struct peerlimit_cfg cfg_of(double rate, double burst, uint32_t peers)
{
    struct peerlimit_cfg c;
    memset(&c, 0, sizeof c);
    c.rate = rate;
    c.burst = burst;
    c.prefix4 = 32;
    c.prefix6 = 128;
    c.peers = peers;
    return c;
}

static void test_bucket(void)
{
    struct peerlimit_cfg c = cfg_of(10, 5, 16);
    struct peerlimit *pl = peerlimit_new(&c, 42);
    REQUIRE(pl);
    /* a new peer has a full bucket: burst passes, the rest is dropped */
    CHECK(allow_n(pl, "198.51.100.7", 8, 100 * SEC) == 5);
    /* 0.35 s later: 3.5 tokens -> 3 pass */
    CHECK(allow_n(pl, "198.51.100.7", 8, 100 * SEC + 350000000) == 3);
    /* the half token left stays: 0.05 s more makes one */
    CHECK(allow_n(pl, "198.51.100.7", 2, 100 * SEC + 400000000) == 1);
    /* long idle: the bucket is capped at burst */
    CHECK(allow_n(pl, "198.51.100.7", 20, 200 * SEC) == 5);
    /* a clock that goes back takes nothing and gives nothing */
    CHECK(allow_n(pl, "198.51.100.7", 3, 150 * SEC) == 0);
    /* another peer is independent */
    CHECK(allow_n(pl, "198.51.100.8", 8, 200 * SEC) == 5);
    CHECK(peerlimit_tracked(pl) == 2);
    /* a sustained 10x flood for 10 s gets rate*seconds + burst (less one when the sum of
     * a thousand 0.1 token refills rounds below 100) */
    struct peerlimit *p2 = peerlimit_new(&c, 7);
    REQUIRE(p2);
    int passed = 0;
    for (int i = 0; i <= 1000; i++)
        passed += allow(p2, "2001:db8::9", (int64_t)i * SEC / 100);
    CHECK(passed == 10 * 10 + 5 || passed == 10 * 10 + 4);
    peerlimit_free(p2);
cleanup:
    peerlimit_free(pl);
}

static void test_prefix_and_exempt(void)
{
    struct peerlimit_cfg c = cfg_of(1, 2, 64);
    c.prefix4 = 24;
    c.prefix6 = 56;
    char err[160];
    CHECK(peerlimit_parse_net("10.0.0.0/8", &c.exempt[c.nexempt++], err, sizeof err) == 0);
    CHECK(peerlimit_parse_net("2001:db8:ffff::/48", &c.exempt[c.nexempt++], err, sizeof err) ==
          0);
    struct peerlimit *pl = peerlimit_new(&c, 1);
    REQUIRE(pl);
    /* one /24 shares a bucket */
    CHECK(allow(pl, "198.51.100.1", SEC) == 1);
    CHECK(allow(pl, "198.51.100.200", SEC) == 1);
    CHECK(allow(pl, "198.51.100.3", SEC) == 0);
    CHECK(allow(pl, "198.51.101.3", SEC) == 1); /* the next /24 */
    /* one /56 shares a bucket; the next /56 does not */
    CHECK(allow_n(pl, "2001:db8:0:1::1", 1, SEC) == 1);
    CHECK(allow_n(pl, "2001:db8:0:ff::2", 2, SEC) == 1);
    CHECK(allow_n(pl, "2001:db8:0:100::2", 2, SEC) == 2);
    /* exempt networks always pass and are not tracked */
    uint32_t before = peerlimit_tracked(pl);
    CHECK(allow_n(pl, "10.1.2.3", 100, SEC) == 100);
    CHECK(allow_n(pl, "2001:db8:ffff:1::1", 100, SEC) == 100);
    CHECK(allow_n(pl, "11.1.2.3", 100, SEC) == 2);
    CHECK(peerlimit_tracked(pl) == before + 1);
    /* the top: prefixes as "net/len", the most dropped first */
    struct peerlimit_peer top[4];
    size_t n = peerlimit_top(pl, top, 4);
    CHECK(n == 3);
    if (n == 3) {
        char text[64];
        peerlimit_format_net(&top[0].net, text, sizeof text);
        CHECK(strcmp(text, "11.1.2.0/24") == 0);
        CHECK(top[0].dropped == 98 && top[0].passed == 2);
        peerlimit_format_net(&top[1].net, text, sizeof text);
        CHECK(strcmp(text, "198.51.100.0/24") == 0 || strcmp(text, "2001:db8::/56") == 0);
        CHECK(top[1].dropped == 1 && top[2].dropped == 1);
    }
    /* a unix peer is never limited */
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    for (int i = 0; i < 10; i++)
        CHECK(peerlimit_allow(pl, (const struct sockaddr *)&un, SEC) == 1);
cleanup:
    peerlimit_free(pl);
}

static void ip_of(int i, char *buf, size_t len)
{
    snprintf(buf, len, "198.%d.%d.%d", 18 + (i >> 16 & 1), (i >> 8) & 255, i & 255);
}

static void test_lru(void)
{
    struct peerlimit_cfg c = cfg_of(1, 1, 100);
    struct peerlimit *pl = peerlimit_new(&c, 99);
    REQUIRE(pl);
    char ip[32];
    /* 100 peers use their one token */
    for (int i = 0; i < 100; i++) {
        ip_of(i, ip, sizeof ip);
        CHECK(allow(pl, ip, SEC) == 1);
    }
    CHECK(peerlimit_tracked(pl) == 100);
    /* peer 0 is seen again (dropped): it becomes the most recent */
    ip_of(0, ip, sizeof ip);
    CHECK(allow(pl, ip, SEC) == 0);
    /* 50 new peers evict the 50 least recently seen: 1..50 */
    for (int i = 100; i < 150; i++) {
        ip_of(i, ip, sizeof ip);
        CHECK(allow(pl, ip, SEC) == 1);
    }
    CHECK(peerlimit_tracked(pl) == 100);
    /* 51..99 and 0 are still tracked (empty buckets: dropped); 1..50 start afresh */
    int dropped = 0, fresh = 0;
    for (int i = 51; i < 100; i++) {
        ip_of(i, ip, sizeof ip);
        dropped += !allow(pl, ip, SEC);
    }
    ip_of(0, ip, sizeof ip);
    dropped += !allow(pl, ip, SEC);
    CHECK(dropped == 50);
    /* those lookups made 51..99 and 0 the most recent: evicting now takes 100..149 */
    for (int i = 1; i <= 50; i++) {
        ip_of(i, ip, sizeof ip);
        fresh += allow(pl, ip, SEC);
    }
    CHECK(fresh == 50);
    /* a flood of distinct addresses never grows the table past its size */
    for (int i = 1000; i < 70000; i++) {
        ip_of(i, ip, sizeof ip);
        allow(pl, ip, 2 * SEC);
    }
    CHECK(peerlimit_tracked(pl) == 100);
    /* and leaves no chain broken: every tracked peer is found again (no new entry) */
    for (int i = 69900; i < 70000; i++) {
        ip_of(i, ip, sizeof ip);
        CHECK(allow(pl, ip, 2 * SEC) == 0);
    }
cleanup:
    peerlimit_free(pl);
}

static void test_parse(void)
{
    struct peerlimit_net n;
    char err[160], text[64];
    CHECK(peerlimit_parse_net("10.0.0.0/8", &n, err, sizeof err) == 0 && n.family == 4 &&
          n.len == 8);
    CHECK(peerlimit_parse_net("192.0.2.1", &n, err, sizeof err) == 0 && n.len == 32);
    peerlimit_format_net(&n, text, sizeof text);
    CHECK(strcmp(text, "192.0.2.1") == 0);
    CHECK(peerlimit_parse_net("2001:db8::/32", &n, err, sizeof err) == 0 && n.family == 6 &&
          n.len == 32);
    CHECK(peerlimit_parse_net("10.0.0.1/8", &n, err, sizeof err) == -1 &&
          strstr(err, "bits set after the /8 prefix"));
    CHECK(peerlimit_parse_net("10.0.0.0/33", &n, err, sizeof err) == -1 &&
          strstr(err, "prefix length must be 0 to 32"));
    CHECK(peerlimit_parse_net("10.0.0.0/", &n, err, sizeof err) == -1);
    CHECK(peerlimit_parse_net("10.0.0.0/8x", &n, err, sizeof err) == -1);
    CHECK(peerlimit_parse_net("example.org", &n, err, sizeof err) == -1 &&
          strstr(err, "not an IPv4 or IPv6 address"));
    CHECK(peerlimit_parse_net("", &n, err, sizeof err) == -1);
    CHECK(peerlimit_parse_net("::/0", &n, err, sizeof err) == 0 && n.len == 0);
    char longs[200];
    memset(longs, '1', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    CHECK(peerlimit_parse_net(longs, &n, err, sizeof err) == -1);
}

int main(void)
{
    test_bucket();
    test_prefix_and_exempt();
    test_lru();
    test_parse();
    return check_report();
}
