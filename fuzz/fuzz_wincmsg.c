/* fuzz/fuzz_wincmsg.c: arbitrary bytes as the control data WSARecvMsg returned, for
 * wincmsg_parse (recv_win.c's walk over WSACMSGHDR records, built on Linux too). Input: bytes
 * 0..1 the local port (big endian), the rest the control buffer, handed over unaligned and
 * exactly sized. Seeds (fuzz/corpus/fuzz_wincmsg/): real layouts, see spec/c/test_wincmsg.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "dgram.h"
#include "wincmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint16_t port = (uint16_t)(data[0] << 8 | data[1]);

    struct dgram d;
    memset(&d, 0x5a, sizeof d);
    d.has = DG_HAS_TIME;
    wincmsg_parse(&d, data + 2, size - 2, port);

    /* What recv_win.c and the bindings rely on, whatever the bytes. */
    if (!(d.has & DG_HAS_TIME) || (d.has & ~(unsigned)(DG_HAS_TIME | DG_HAS_DST | DG_HAS_TTL |
                                                       DG_HAS_TOS)))
        abort(); /* only its own bits changed */
    if (d.has & DG_HAS_DST) {
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
        memcpy(&in4, &d.dst, sizeof in4);
        memcpy(&in6, &d.dst, sizeof in6);
        if (d.dst.ss_family == AF_INET) {
            if (in4.sin_port != htons(port))
                abort();
        } else if (d.dst.ss_family != AF_INET6 || in6.sin6_port != htons(port) ||
                   IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
            abort(); /* a mapped address is always given as AF_INET */
        }
    } else if (d.dst.ss_family != AF_UNSPEC || d.ifindex != 0) {
        abort();
    }
    if ((d.has & DG_HAS_TTL) ? (d.ttl < 0 || d.ttl > 255) : d.ttl != 0)
        abort();
    if ((d.has & DG_HAS_TOS) ? (d.tos < 0 || d.tos > 255) : d.tos != 0)
        abort();
    return 0;
}
