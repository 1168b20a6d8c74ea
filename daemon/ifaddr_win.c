/* daemon/ifaddr_win.c: ifaddr.h on Windows. The broadcast addresses come from
 * GetAdaptersAddresses: each IPv4 unicast address of a non-loopback adapter, with its on-link
 * prefix (/1 to /30), gives its directed broadcast (255.255.255.255 always is one:
 * dgram_is_bcast). The watch is NotifyUnicastIpAddressChange's callback raising a flag when
 * the registration gives a handle; when it does not (Wine 8 registers nothing and returns no
 * handle: README "Windows"), the watch says "changed" at most once a second, so that a
 * worker re-reads the list at most once a second, only when a datagram's bcast is read. A
 * watch has no descriptor (ifaddr_watch_fd is -1): ifaddr_watch_changed takes its notices.
 * Owns each watch's struct and its notification registration (one per worker). */
#include "ifaddr.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <winsock2.h>
#include <ws2tcpip.h>
#include <iphlpapi.h>
#include <netioapi.h>

/* Without a notification: the least time between two re-reads. */
#define IFADDR_POLL_MS 1000u

struct ifaddr_watch {
    HANDLE notify;        /* NotifyUnicastIpAddressChange's registration; NULL: polled */
    atomic_int changed;   /* raised by the callback (a thread pool thread), taken by the loop */
    ULONGLONG polled_at;  /* polled: GetTickCount64 when "changed" was last said */
};

static void WINAPI ifaddr_notified(PVOID context, PMIB_UNICASTIPADDRESS_ROW row,
                                   MIB_NOTIFICATION_TYPE type)
{
    (void)row;
    (void)type;
    struct ifaddr_watch *iw = context;
    atomic_store(&iw->changed, 1);
}

struct ifaddr_watch *ifaddr_watch_open(void)
{
    struct ifaddr_watch *iw = calloc(1, sizeof *iw);
    if (!iw)
        return NULL;
    atomic_init(&iw->changed, 0);
    HANDLE h = NULL;
    if (NotifyUnicastIpAddressChange(AF_INET, ifaddr_notified, iw, FALSE, &h) == NO_ERROR)
        iw->notify = h; /* NULL under Wine 8: no registration, polled */
    iw->polled_at = GetTickCount64();
    return iw;
}

void ifaddr_watch_close(struct ifaddr_watch *iw)
{
    if (!iw)
        return;
    if (iw->notify)
        CancelMibChangeNotify2(iw->notify); /* returns after a running callback ended */
    free(iw);
}

int ifaddr_watch_fd(const struct ifaddr_watch *iw)
{
    (void)iw;
    return -1;
}

int ifaddr_watch_changed(struct ifaddr_watch *iw)
{
    if (iw->notify)
        return atomic_exchange(&iw->changed, 0);
    ULONGLONG now = GetTickCount64();
    if (now - iw->polled_at < IFADDR_POLL_MS)
        return 0;
    iw->polled_at = now;
    return 1;
}

/* The adapters' IPv4 unicast addresses (the list allocated here, the caller frees it), or
 * NULL. The size needed can grow between two calls: a few tries. */
static IP_ADAPTER_ADDRESSES *ifaddr_adapters(void)
{
    ULONG size = 16384;
    for (int tries = 0; tries < 4; tries++) {
        IP_ADAPTER_ADDRESSES *list = malloc(size);
        if (!list)
            return NULL;
        ULONG rc = GetAdaptersAddresses(AF_INET,
                                        GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST |
                                            GAA_FLAG_SKIP_DNS_SERVER |
                                            GAA_FLAG_SKIP_FRIENDLY_NAME,
                                        NULL, list, &size);
        if (rc == NO_ERROR)
            return list;
        free(list);
        if (rc != ERROR_BUFFER_OVERFLOW)
            return NULL;
    }
    return NULL;
}

size_t ifaddr_bcasts(uint32_t *out, size_t max)
{
    IP_ADAPTER_ADDRESSES *list = ifaddr_adapters();
    size_t n = 0;
    for (IP_ADAPTER_ADDRESSES *a = list; a && n < max; a = a->Next) {
        if (a->IfType == IF_TYPE_SOFTWARE_LOOPBACK) /* as Linux's lo: no broadcast */
            continue;
        for (IP_ADAPTER_UNICAST_ADDRESS *u = a->FirstUnicastAddress; u && n < max;
             u = u->Next) {
            const struct sockaddr *sa = u->Address.lpSockaddr;
            unsigned plen = u->OnLinkPrefixLength;
            if (!sa || sa->sa_family != AF_INET ||
                u->Address.iSockaddrLength < (INT)sizeof(struct sockaddr_in) || plen == 0 ||
                plen > 30)
                continue;
            struct sockaddr_in in4;
            memcpy(&in4, sa, sizeof in4);
            uint32_t host_bits = 0xffffffffu >> plen;
            out[n++] = in4.sin_addr.s_addr | htonl(host_bits);
        }
    }
    free(list);
    return n;
}
