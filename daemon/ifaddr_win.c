/* daemon/ifaddr_win.c: ifaddr.h on Windows, keeping what the Windows layer did before the
 * interface watch existed: no watch (ifaddr_watch_open is NULL, so a worker would re-read
 * every few seconds) and no broadcast list (ifaddr_bcasts finds none): msg.bcast comes from
 * WSARecvMsg's MSG_BCAST alone (recv_win.c), which real Windows sets and Wine does not
 * (README "Windows"). Owns nothing. */
#include "ifaddr.h"

struct ifaddr_watch *ifaddr_watch_open(void)
{
    return NULL;
}

void ifaddr_watch_close(struct ifaddr_watch *iw)
{
    (void)iw;
}

int ifaddr_watch_fd(const struct ifaddr_watch *iw)
{
    (void)iw;
    return -1;
}

int ifaddr_watch_changed(struct ifaddr_watch *iw)
{
    (void)iw;
    return 0;
}

size_t ifaddr_bcasts(uint32_t *out, size_t max)
{
    (void)out;
    (void)max;
    return 0;
}
