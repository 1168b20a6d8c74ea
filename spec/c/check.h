/* spec/c/check.h: the tiny harness every C test shares: CHECK counts and reports, REQUIRE
 * also leaves the test through its `cleanup` label, check_report prints the closing line
 * ctest and CI read, and check_addr builds socket addresses from text. One test = one
 * translation unit, so the counters live here. */
#ifndef LUADGRAM_CHECK_H
#define LUADGRAM_CHECK_H

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (cond) {                                                                    \
            check_passed++;                                                            \
        } else {                                                                       \
            check_failed++;                                                            \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);   \
        }                                                                              \
    } while (0)

/* CHECK that also leaves the test (through its cleanup label) when it fails; cond is
 * evaluated once. */
#define REQUIRE(cond)                                                                  \
    do {                                                                               \
        int require_ok_ = !!(cond);                                                    \
        CHECK(require_ok_ && #cond);                                                   \
        if (!require_ok_)                                                              \
            goto cleanup;                                                              \
    } while (0)

/* Prints "N passed, N failed" and returns main's exit status. */
static inline int check_report(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

/* ip (IPv4 or IPv6 text) with port into sa; its length, or 0 when ip does not parse. */
static inline socklen_t check_addr(const char *ip, int port, struct sockaddr_storage *sa)
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

#endif
