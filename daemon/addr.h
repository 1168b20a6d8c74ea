/* daemon/addr.h: parsing and printing of the addresses users write and read: bind strings
 * ("127.0.0.1:7777", "[::1]:53", "unix:/run/x.sock", "raw:icmp@0.0.0.0") and peers. */
#ifndef LUADGRAM_ADDR_H
#define LUADGRAM_ADDR_H

#include <stddef.h>
#include <sys/socket.h>
#include "netio.h"

/* Longest string addr_format writes, with its NUL (a unix path with the "unix:" prefix
 * is the longest). */
enum { ADDR_STRLEN = 120 };

/* Parses a bind string into spec. Returns 0, or -1 with err set to why ("bad port",
 * "unknown protocol 'foo'"...). */
int addr_parse_bind(const char *s, struct sock_spec *spec, char *err, size_t errlen);

/* Parses a destination: "ip:port", "[ip6]:port" or "unix:/path" (a bare "/path" too).
 * Returns 0 or -1 with err set. */
int addr_parse_peer(const char *s, struct sockaddr_storage *sa, socklen_t *len, char *err,
                    size_t errlen);

/* Writes sa as "1.2.3.4:53", "[::1]:53", "/path" (unix), "1.2.3.4" (port 0 when
 * with_port is 0). An unbound unix address gives "". Returns buf. */
char *addr_format(const struct sockaddr *sa, socklen_t len, int with_port, char *buf,
                  size_t buflen);

/* What tostring gives for the address object of sa (bindings/addrobj.c), as C text:
 * "1.2.3.4:53", "[::1]:53" (IPv4 without printf), a unix socket's path ("" when unbound),
 * else addr_format's text. Writes it with its NUL into buf (ADDR_STRLEN bytes); returns its
 * length. For C modules that read a message's addresses in place. */
size_t addr_text(const struct sockaddr *sa, socklen_t len, char *buf);

/* The IP address alone ("1.2.3.4", "::1") into buf; "" for non-IP. Returns buf. */
char *addr_ip(const struct sockaddr *sa, char *buf, size_t buflen);

/* The port of an IP address, 0 otherwise. */
int addr_port(const struct sockaddr *sa);

/* 1 if sa is one IPv4 or IPv6 address that is neither the wildcard nor multicast (nor the
 * IPv4 limited broadcast); 0 otherwise (and for other families). */
int addr_is_unicast(const struct sockaddr *sa);

#endif
