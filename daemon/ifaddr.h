/* daemon/ifaddr.h: the host's interface addresses as the receive path needs them (the IPv4
 * broadcast addresses behind msg.bcast) and a watch that says when they changed, so that a
 * worker re-reads them only then. Platform-neutral; ifaddr_linux.c implements it with
 * getifaddrs and a netlink socket (RTM_NEWADDR / RTM_DELADDR), ifaddr_win.c with
 * GetAdaptersAddresses and NotifyUnicastIpAddressChange. */
#ifndef LUADGRAM_IFADDR_H
#define LUADGRAM_IFADDR_H

#include <stddef.h>
#include <stdint.h>

struct ifaddr_watch;

/* A watch on the host's IPv4 addresses, or NULL when the platform has none (the caller then
 * re-reads the addresses every few seconds). */
struct ifaddr_watch *ifaddr_watch_open(void);
void ifaddr_watch_close(struct ifaddr_watch *iw);

/* The descriptor that becomes readable when addresses change (for the event loop), or -1
 * when the watch has none and ifaddr_watch_changed alone takes its notices (Windows). */
int ifaddr_watch_fd(const struct ifaddr_watch *iw);

/* Takes every pending notice without blocking. 1 if an address was added or removed since
 * the last call (or notices were lost), else 0. */
int ifaddr_watch_changed(struct ifaddr_watch *iw);

/* The IPv4 broadcast addresses of the host's interfaces (network byte order) into
 * out[0..max); returns how many. */
size_t ifaddr_bcasts(uint32_t *out, size_t max);

#endif
