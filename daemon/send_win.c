/* daemon/send_win.c: the Windows send side of netio.h: one WSASendMsg per item (obtained
 * with WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER): compat_win.c), each with the
 * IN_PKTINFO / IN6_PKTINFO that makes the reply leave from msg.dst. Owns nothing. */
#include "netio.h"

#include <errno.h>
#include <string.h>

#include "compat_win.h"

static int is_v4mapped(const struct sockaddr_storage *sa)
{
    return sa->ss_family == AF_INET6 &&
           IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

/* control: room for one IN6_PKTINFO (the larger). */
union send_control {
    char buf[WSA_CMSG_SPACE(sizeof(IN6_PKTINFO))];
    ULONGLONG align;
};

/* One item on a socket of family domain. 0, or an errno value. */
static int send_one(const struct send_item *it, int domain, LPFN_WSASENDMSG sendmsg_fn)
{
    struct sockaddr_storage to;
    size_t given = (size_t)it->tolen; /* worker_send refused more than a sockaddr_storage */
    int tolen = (int)(given > sizeof to ? sizeof to : given);
    memset(&to, 0, sizeof to);
    memcpy(&to, &it->to, (size_t)tolen);
    struct sockaddr_storage from = it->from;
    socklen_t fromlen = sizeof from;
    dgram_unmap_v4(&from, &fromlen);
    if (domain == AF_INET6 && to.ss_family == AF_INET) {
        struct sockaddr_in v4 = *(struct sockaddr_in *)&to;
        struct sockaddr_in6 *m = (struct sockaddr_in6 *)&to;
        memset(m, 0, sizeof *m);
        m->sin6_family = AF_INET6;
        m->sin6_port = v4.sin_port;
        m->sin6_addr.s6_addr[10] = m->sin6_addr.s6_addr[11] = 0xff;
        memcpy(&m->sin6_addr.s6_addr[12], &v4.sin_addr, 4);
        tolen = sizeof *m;
    } else if (domain == AF_INET && is_v4mapped(&to)) {
        socklen_t l = tolen;
        dgram_unmap_v4(&to, &l);
        tolen = l;
    }
    WSABUF buf = {.len = (ULONG)it->len, .buf = (char *)it->data};
    union send_control control;
    memset(&control, 0, sizeof control);
    WSAMSG m;
    memset(&m, 0, sizeof m);
    m.name = (LPSOCKADDR)&to;
    m.namelen = tolen;
    m.lpBuffers = &buf;
    m.dwBufferCount = 1;
    int has_from = from.ss_family == AF_INET || from.ss_family == AF_INET6;
    if (has_from || it->ifindex) {
        int v4dst = to.ss_family == AF_INET || is_v4mapped(&to);
        if (has_from && (from.ss_family == AF_INET) != v4dst)
            return EAFNOSUPPORT;
        WSACMSGHDR *c = (WSACMSGHDR *)control.buf;
        if (v4dst) {
            IN_PKTINFO pi;
            memset(&pi, 0, sizeof pi);
            if (from.ss_family == AF_INET)
                pi.ipi_addr = ((const struct sockaddr_in *)&from)->sin_addr;
            pi.ipi_ifindex = it->ifindex;
            c->cmsg_level = IPPROTO_IP;
            c->cmsg_type = IP_PKTINFO;
            c->cmsg_len = WSA_CMSG_LEN(sizeof pi);
            memcpy(WSA_CMSG_DATA(c), &pi, sizeof pi);
            m.Control.len = WSA_CMSG_SPACE(sizeof pi);
        } else {
            IN6_PKTINFO pi;
            memset(&pi, 0, sizeof pi);
            if (from.ss_family == AF_INET6)
                pi.ipi6_addr = ((const struct sockaddr_in6 *)&from)->sin6_addr;
            pi.ipi6_ifindex = it->ifindex;
            c->cmsg_level = IPPROTO_IPV6;
            c->cmsg_type = IPV6_PKTINFO;
            c->cmsg_len = WSA_CMSG_LEN(sizeof pi);
            memcpy(WSA_CMSG_DATA(c), &pi, sizeof pi);
            m.Control.len = WSA_CMSG_SPACE(sizeof pi);
        }
        m.Control.buf = control.buf;
    }
    DWORD sent = 0;
    if (sendmsg_fn((SOCKET)it->fd, &m, 0, &sent, NULL, NULL) != 0) {
        int e = win_errno(WSAGetLastError());
        return e == EWOULDBLOCK ? EAGAIN : e;
    }
    return 0;
}

unsigned send_batch(const struct send_item *items, unsigned n, int *err)
{
    *err = 0;
    for (unsigned i = 0; i < n; i++) {
        int domain = items[i].family;
        if (!domain) {
            WSAPROTOCOL_INFOW info;
            int len = sizeof info;
            if (getsockopt((SOCKET)items[i].fd, SOL_SOCKET, SO_PROTOCOL_INFOW, (char *)&info,
                           &len) != 0) {
                *err = win_errno(WSAGetLastError());
                return i;
            }
            domain = info.iAddressFamily;
        }
        LPFN_WSASENDMSG fn = win_wsasendmsg((SOCKET)items[i].fd);
        int e = fn ? send_one(&items[i], domain, fn) : ENOSYS;
        if (e) {
            *err = e;
            return i;
        }
    }
    return n;
}
