/* fuzz/fuzz_cmsg.c: arbitrary bytes as a received control buffer for dgram_parse_control
 * (recv_linux.c), then the flag derivation on what it produced. Input: byte 0 selects the
 * msg_flags (bit 0: MSG_CTRUNC, bit 1: MSG_TRUNC), bytes 1..2 the local port (big endian),
 * the rest is the control buffer, handed over unaligned and exactly sized. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dgram.h"
#include "netio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    int flags = ((data[0] & 1) ? MSG_CTRUNC : 0) | ((data[0] & 2) ? MSG_TRUNC : 0);
    uint16_t port = (uint16_t)(data[1] << 8 | data[2]);

    struct dgram d;
    memset(&d, 0, sizeof d);
    dgram_parse_control(&d, data + 3, size - 3, flags, port);

    /* What a consumer relies on, whatever the bytes. */
    if (!!(d.flags & DG_CTRUNC) != !!(flags & MSG_CTRUNC))
        abort();
    if (d.has & DG_HAS_DST) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)&d.dst;
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&d.dst;
        if (d.dst.ss_family == AF_INET) {
            if (in4->sin_port != htons(port))
                abort();
        } else if (d.dst.ss_family != AF_INET6 || in6->sin6_port != htons(port)) {
            abort();
        }
    }
    if ((d.has & DG_HAS_TTL) && (d.ttl < 0 || d.ttl > 255))
        abort();
    if ((d.has & DG_HAS_TOS) && (d.tos < 0 || d.tos > 255))
        abort();
    if ((d.has & DG_HAS_TIME) && (d.time_nsec < 0 || d.time_nsec > 999999999L))
        abort();

    static const uint32_t bcasts[] = {0x0100007fu, 0xffffffffu};
    dgram_derive_flags(&d, bcasts, 2);
    socklen_t len = sizeof d.dst;
    dgram_unmap_v4(&d.dst, &len);
    return 0;
}
