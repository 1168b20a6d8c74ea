/* daemon/addr.c: parsing of bind strings and destinations, and printing of addresses. */
#include "addr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* IP protocol names accepted in "raw:NAME@addr" (no /etc/protocols needed). */
static const struct {
    const char *name;
    int number;
} addr_protocols[] = {
    {"icmp", 1}, {"igmp", 2}, {"tcp", 6}, {"udp", 17}, {"gre", 47}, {"esp", 50},
    {"ah", 51}, {"icmpv6", 58}, {"ipv6-icmp", 58}, {"ospf", 89}, {"pim", 103},
    {"vrrp", 112}, {"sctp", 132},
};

/* Parses "1.2.3.4" or "::1" (no brackets) into sa with port. 0 or -1. */
static int addr_parse_ip(const char *ip, int port, struct sockaddr_storage *sa, socklen_t *len)
{
    memset(sa, 0, sizeof *sa);
    struct sockaddr_in *in4 = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
    if (inet_pton(AF_INET, ip, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        *len = sizeof *in4;
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof *in6;
        return 0;
    }
    return -1;
}

/* Parses a decimal port 0..65535 that makes up all of s. */
static int addr_parse_port(const char *s, int *port)
{
    if (*s == '\0' || strlen(s) > 5)
        return -1;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    long v = strtol(s, NULL, 10);
    if (v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

/* Splits "ip:port" / "[ip6]:port" into an address. */
static int addr_parse_ipport(const char *s, struct sockaddr_storage *sa, socklen_t *len,
                             char *err, size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *portstr;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errlen, "bad address '%s' (expected [ipv6]:port)", s);
            return -1;
        }
        size_t n = (size_t)(close - s - 1);
        if (n == 0 || n >= sizeof host) {
            snprintf(err, errlen, "bad IPv6 address in '%s'", s);
            return -1;
        }
        memcpy(host, s + 1, n);
        host[n] = '\0';
        portstr = close + 2;
        if (!strchr(host, ':')) {
            snprintf(err, errlen, "bad IPv6 address in '%s'", s);
            return -1;
        }
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon) {
            snprintf(err, errlen, "bad address '%s' (expected ip:port)", s);
            return -1;
        }
        if (strchr(s, ':') != colon) {
            snprintf(err, errlen, "bad address '%s' (write IPv6 as [ip6]:port)", s);
            return -1;
        }
        size_t n = (size_t)(colon - s);
        if (n == 0 || n >= sizeof host) {
            snprintf(err, errlen, "bad address '%s' (expected ip:port)", s);
            return -1;
        }
        memcpy(host, s, n);
        host[n] = '\0';
        portstr = colon + 1;
    }
    int port;
    if (addr_parse_port(portstr, &port) != 0) {
        snprintf(err, errlen, "bad port in '%s' (0..65535)", s);
        return -1;
    }
    if (addr_parse_ip(host, port, sa, len) != 0) {
        snprintf(err, errlen, "bad IP address '%s' in '%s'", host, s);
        return -1;
    }
    return 0;
}

static int addr_parse_unix(const char *path, const char *orig, struct sockaddr_storage *sa,
                           socklen_t *len, char *err, size_t errlen)
{
    struct sockaddr_un *un = (struct sockaddr_un *)sa;
    size_t n = strlen(path);
    if (n == 0) {
        snprintf(err, errlen, "bad address '%s' (unix: needs a path)", orig);
        return -1;
    }
    if (n >= sizeof un->sun_path) {
        snprintf(err, errlen, "unix path too long in '%s' (at most %zu bytes)", orig,
                 sizeof un->sun_path - 1);
        return -1;
    }
    memset(sa, 0, sizeof *sa);
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, n + 1);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

int addr_parse_bind(const char *s, struct sock_spec *spec, char *err, size_t errlen)
{
    memset(spec, 0, sizeof *spec);
    if (strncmp(s, "unix:", 5) == 0) {
        spec->kind = SOCK_KIND_UNIX;
        return addr_parse_unix(s + 5, s, &spec->addr, &spec->addrlen, err, errlen);
    }
    if (strncmp(s, "raw:", 4) == 0) {
        spec->kind = SOCK_KIND_RAW;
        const char *at = strchr(s + 4, '@');
        if (!at || at == s + 4 || at[1] == '\0') {
            snprintf(err, errlen, "bad address '%s' (expected raw:PROTO@ip)", s);
            return -1;
        }
        char proto[32];
        size_t n = (size_t)(at - (s + 4));
        if (n >= sizeof proto) {
            snprintf(err, errlen, "unknown protocol in '%s'", s);
            return -1;
        }
        memcpy(proto, s + 4, n);
        proto[n] = '\0';
        spec->proto = -1;
        for (size_t i = 0; i < sizeof addr_protocols / sizeof addr_protocols[0]; i++)
            if (strcmp(proto, addr_protocols[i].name) == 0)
                spec->proto = addr_protocols[i].number;
        int num;
        if (spec->proto < 0 && addr_parse_port(proto, &num) == 0 && num > 0 && num < 256)
            spec->proto = num;
        if (spec->proto < 0) {
            snprintf(err, errlen, "unknown protocol '%s' in '%s'", proto, s);
            return -1;
        }
        const char *ip = at + 1;
        char host[INET6_ADDRSTRLEN + 1];
        size_t hl = strlen(ip);
        if (ip[0] == '[' && hl > 2 && ip[hl - 1] == ']') { /* allow raw:icmpv6@[::1] */
            ip++;
            hl -= 2;
        }
        if (hl >= sizeof host) {
            snprintf(err, errlen, "bad IP address in '%s'", s);
            return -1;
        }
        memcpy(host, ip, hl);
        host[hl] = '\0';
        if (addr_parse_ip(host, 0, &spec->addr, &spec->addrlen) != 0) {
            snprintf(err, errlen, "bad IP address '%s' in '%s'", host, s);
            return -1;
        }
        return 0;
    }
    spec->kind = SOCK_KIND_UDP;
    if (strncmp(s, "udp:", 4) == 0)
        s += 4;
    if (addr_parse_ipport(s, &spec->addr, &spec->addrlen, err, errlen) != 0)
        return -1;
    if (spec->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&spec->addr;
        spec->dualstack = IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
    }
    return 0;
}

int addr_parse_peer(const char *s, struct sockaddr_storage *sa, socklen_t *len, char *err,
                    size_t errlen)
{
    if (strncmp(s, "unix:", 5) == 0)
        return addr_parse_unix(s + 5, s, sa, len, err, errlen);
    if (s[0] == '/')
        return addr_parse_unix(s, s, sa, len, err, errlen);
    return addr_parse_ipport(s, sa, len, err, errlen);
}

char *addr_ip(const struct sockaddr *sa, char *buf, size_t buflen)
{
    buf[0] = '\0';
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)buflen);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
                  (socklen_t)buflen);
    return buf;
}

int addr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

char *addr_format(const struct sockaddr *sa, socklen_t len, int with_port, char *buf,
                  size_t buflen)
{
    char ip[INET6_ADDRSTRLEN];
    buf[0] = '\0';
    if (len == 0)
        return buf;
    switch (sa->sa_family) {
    case AF_INET:
        addr_ip(sa, ip, sizeof ip);
        if (with_port)
            snprintf(buf, buflen, "%s:%d", ip, addr_port(sa));
        else
            snprintf(buf, buflen, "%s", ip);
        break;
    case AF_INET6:
        addr_ip(sa, ip, sizeof ip);
        if (with_port)
            snprintf(buf, buflen, "[%s]:%d", ip, addr_port(sa));
        else
            snprintf(buf, buflen, "%s", ip);
        break;
    case AF_UNIX: {
        const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        if ((size_t)len <= off)
            break;
        size_t n = (size_t)len - off;
        if (n > sizeof un->sun_path)
            n = sizeof un->sun_path;
        if (un->sun_path[0] == '\0') /* abstract: shown as @name */
            snprintf(buf, buflen, "@%.*s", (int)(n - 1), un->sun_path + 1);
        else
            snprintf(buf, buflen, "%.*s", (int)strnlen(un->sun_path, n), un->sun_path);
        break;
    }
    default:
        snprintf(buf, buflen, "(family %d)", sa->sa_family);
    }
    return buf;
}

size_t addr_text(const struct sockaddr *sa, socklen_t len, char *buf)
{
    if (sa->sa_family != AF_INET) {
        addr_format(sa, len, sa->sa_family != AF_UNIX, buf, ADDR_STRLEN);
        return strlen(buf);
    }
    /* IPv4, the common case, without printf */
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    const uint8_t *a = (const uint8_t *)&in->sin_addr;
    unsigned port = ntohs(in->sin_port);
    char *o = buf;
    for (int i = 0; i < 4; i++) {
        unsigned v = a[i];
        if (v >= 100)
            *o++ = (char)('0' + v / 100);
        if (v >= 10)
            *o++ = (char)('0' + v / 10 % 10);
        *o++ = (char)('0' + v % 10);
        *o++ = i < 3 ? '.' : ':';
    }
    char digits[5];
    int k = 0;
    do {
        digits[k++] = (char)('0' + port % 10);
        port /= 10;
    } while (port);
    while (k)
        *o++ = digits[--k];
    *o = '\0';
    return (size_t)(o - buf);
}

int addr_is_unicast(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
        return a != INADDR_ANY && a != INADDR_BROADCAST && !IN_MULTICAST(a);
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_MULTICAST(a))
            return 0;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            struct sockaddr_in v4 = {.sin_family = AF_INET};
            memcpy(&v4.sin_addr, &a->s6_addr[12], 4);
            return addr_is_unicast((const struct sockaddr *)&v4);
        }
        return 1;
    }
    return 0;
}
