/* daemon/dispatch.h: the receive path: a readable socket is drained in batches and each
 * datagram goes to its listener's handler, in the order the socket delivered them. */
#ifndef LUADGRAM_DISPATCH_H
#define LUADGRAM_DISPATCH_H

#include <event2/util.h>

/* libevent callback of a listening socket; arg is its struct wsock. */
void dispatch_readable(evutil_socket_t fd, short what, void *arg);

/* Callback of the socket's poll event (no fd, made active by the dispatcher): the socket
 * read again while it is busy and out of epoll. */
void dispatch_poll(evutil_socket_t fd, short what, void *arg);

#endif
