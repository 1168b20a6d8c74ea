/* daemon/sock_linux.c: the Linux socket set-up of netio.h: opening, configuring and
 * binding UDP, unix datagram and raw sockets (with the stale unix socket check), closing
 * them, and matching sockets handed over by systemd against a bind spec. */
#include "netio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "addr.h"
#include "errname.h"

/* SO_PASSRIGHTS (Linux 6.16) is newer than Debian 12's headers: 83 where the architecture
 * uses asm-generic/socket.h (alpha, mips, parisc and sparc number it differently). */
#if defined(SO_PASSRIGHTS)
#define SOCK_SO_PASSRIGHTS SO_PASSRIGHTS
#elif defined(__x86_64__) || defined(__i386__) || defined(__aarch64__) || defined(__arm__) || \
    defined(__riscv) || defined(__powerpc__) || defined(__s390__) || defined(__loongarch__)
#define SOCK_SO_PASSRIGHTS 83
#endif

/* The name an error message gives spec: "127.0.0.1:7777", "[::1]:53", "unix:/run/x.sock",
 * "raw:1@0.0.0.0". */
static const char *spec_name(const struct sock_spec *spec, char *buf, size_t buflen)
{
    char a[ADDR_STRLEN];
    const struct sockaddr *sa = (const struct sockaddr *)&spec->addr;
    switch (spec->kind) {
    case SOCK_KIND_UNIX:
        snprintf(buf, buflen, "unix:%s", addr_format(sa, spec->addrlen, 0, a, sizeof a));
        break;
    case SOCK_KIND_RAW:
        snprintf(buf, buflen, "raw:%d@%s", spec->proto, addr_format(sa, spec->addrlen, 0, a,
                                                                      sizeof a));
        break;
    default:
        addr_format(sa, spec->addrlen, 1, buf, buflen);
        break;
    }
    return buf;
}

/* err = "<op> <name>: <strerror> (<ENAME>)" for errno value e. */
static void set_err(char *err, size_t errlen, const char *op, const struct sock_spec *spec,
                    int e)
{
    char name[ADDR_STRLEN + 16];
    char text[128];
    if (!err || errlen == 0)
        return;
    const char *msg = strerror_r(e, text, sizeof text);
    snprintf(err, errlen, "%s %s: %s (%s)", op, spec_name(spec, name, sizeof name), msg,
             errno_name(e));
}

/* The file path of a unix spec, or NULL for an abstract or empty address. */
static const char *unix_path(const struct sock_spec *spec, char *buf, size_t buflen)
{
    const struct sockaddr_un *un = (const struct sockaddr_un *)&spec->addr;
    size_t off = offsetof(struct sockaddr_un, sun_path);
    if (spec->addr.ss_family != AF_UNIX || spec->addrlen <= off || un->sun_path[0] == '\0')
        return NULL;
    size_t n = strnlen(un->sun_path, spec->addrlen - off);
    if (n >= buflen || n >= sizeof un->sun_path)
        return NULL;
    memcpy(buf, un->sun_path, n);
    buf[n] = '\0';
    return buf;
}

/* Removes a stale socket file at path (one nobody listens on). Returns 0 when the path is
 * free to bind (or holds something bind will refuse by itself), or EADDRINUSE when a live
 * socket answers there. */
static int unix_clear_stale(const struct sock_spec *spec, const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
        return 0;
    int probe = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return 0;
    int r = connect(probe, (const struct sockaddr *)&spec->addr, spec->addrlen);
    int e = errno;
    close(probe);
    if (r == 0 || e == EPROTOTYPE) /* someone listens (EPROTOTYPE: a stream socket) */
        return EADDRINUSE;
    if (e == ECONNREFUSED)
        unlink(path);
    return 0;
}

static int set_int(int fd, int level, int name, int value)
{
    return setsockopt(fd, level, name, &value, sizeof value);
}

/* One socket option with the name it has in error messages. */
struct sock_opt {
    int level, name;
    const char *what;
};

/* Sets every option in opts to 1; on failure names the option in err. */
static int set_flags(int fd, const struct sock_opt *opts, size_t n,
                     const struct sock_spec *spec, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (set_int(fd, opts[i].level, opts[i].name, 1) != 0) {
            char op[64];
            snprintf(op, sizeof op, "setsockopt %s", opts[i].what);
            set_err(err, errlen, op, spec, errno);
            return -1;
        }
    }
    return 0;
}

#define OPT(level, name) {level, name, #name}

/* The options of an IP socket (UDP or raw): packet info, the error queue, and what the
 * listener asked for. An AF_INET6 UDP socket also gets the IPv4 ones, which a dual-stack
 * socket needs for its IPv4 datagrams and errors. */
static int set_ip_options(int fd, const struct sock_spec *spec, const struct sock_opts *o,
                          char *err, size_t errlen)
{
    static const struct sock_opt v4[] = {OPT(IPPROTO_IP, IP_PKTINFO),
                                         OPT(IPPROTO_IP, IP_RECVERR)};
    static const struct sock_opt v4ttl[] = {OPT(IPPROTO_IP, IP_RECVTTL)};
    static const struct sock_opt v4tos[] = {OPT(IPPROTO_IP, IP_RECVTOS)};
    static const struct sock_opt v6[] = {OPT(IPPROTO_IPV6, IPV6_RECVPKTINFO),
                                         OPT(IPPROTO_IPV6, IPV6_RECVERR)};
    static const struct sock_opt v6ttl[] = {OPT(IPPROTO_IPV6, IPV6_RECVHOPLIMIT)};
    static const struct sock_opt v6tos[] = {OPT(IPPROTO_IPV6, IPV6_RECVTCLASS)};
    int is6 = spec->addr.ss_family == AF_INET6;
    int want4 = !is6 || spec->kind == SOCK_KIND_UDP; /* raw IPv6 has no IPv4 level */
    if (want4) {
        if (set_flags(fd, v4, 2, spec, err, errlen) != 0 ||
            (o->want_ttl && set_flags(fd, v4ttl, 1, spec, err, errlen) != 0) ||
            (o->want_tos && set_flags(fd, v4tos, 1, spec, err, errlen) != 0))
            return -1;
    }
    if (is6) {
        if (set_flags(fd, v6, 2, spec, err, errlen) != 0 ||
            (o->want_ttl && set_flags(fd, v6ttl, 1, spec, err, errlen) != 0) ||
            (o->want_tos && set_flags(fd, v6tos, 1, spec, err, errlen) != 0))
            return -1;
    }
    return 0;
}

/* SO_RCVBUF, forced past rmem_max when we may (root / CAP_NET_ADMIN). Sets *granted to
 * what the kernel reads back (Linux doubles the asked value for its bookkeeping). */
static int set_rcvbuf(int fd, const struct sock_spec *spec, int want, int *granted,
                      char *err, size_t errlen)
{
    int got = 0;
    socklen_t len = sizeof got;
    if (want > 0) {
        if (set_int(fd, SOL_SOCKET, SO_RCVBUF, want) != 0) {
            set_err(err, errlen, "setsockopt SO_RCVBUF", spec, errno);
            return -1;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) == 0 && got / 2 < want)
            (void)set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, want); /* EPERM: keep what we got */
        len = sizeof got;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) != 0) {
        set_err(err, errlen, "getsockopt SO_RCVBUF", spec, errno);
        return -1;
    }
    if (granted)
        *granted = got;
    return 0;
}

/* Sets one integer option when `value` >= 0, naming it in err on failure. */
static int set_value(int fd, int level, int name, const char *what, int value,
                     const struct sock_spec *spec, char *err, size_t errlen)
{
    if (value < 0 || set_int(fd, level, name, value) == 0)
        return 0;
    char op[64];
    snprintf(op, sizeof op, "setsockopt %s", what);
    set_err(err, errlen, op, spec, errno);
    return -1;
}

/* The listener's binding options of an IP socket: freebind, device, tos and ttl (on an
 * IPv6 UDP socket both levels, for its IPv4 datagrams too). */
static int set_binding(int fd, const struct sock_spec *spec, const struct sock_opts *o,
                       char *err, size_t errlen)
{
    int is6 = spec->addr.ss_family == AF_INET6;
    int want4 = !is6 || spec->kind == SOCK_KIND_UDP;
    int tos = o->has_tos ? o->tos : -1, ttl = o->has_ttl ? o->ttl : -1;
    if (o->device[0] &&
        setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, o->device, (socklen_t)strlen(o->device))) {
        set_err(err, errlen, "setsockopt SO_BINDTODEVICE", spec, errno);
        return -1;
    }
    if (o->freebind &&
        (is6 ? set_value(fd, IPPROTO_IPV6, IPV6_FREEBIND, "IPV6_FREEBIND", 1, spec, err, errlen)
             : set_value(fd, IPPROTO_IP, IP_FREEBIND, "IP_FREEBIND", 1, spec, err, errlen)))
        return -1;
    if (want4 && (set_value(fd, IPPROTO_IP, IP_TOS, "IP_TOS", tos, spec, err, errlen) ||
                  set_value(fd, IPPROTO_IP, IP_TTL, "IP_TTL", ttl, spec, err, errlen) ||
                  set_value(fd, IPPROTO_IP, IP_MULTICAST_TTL, "IP_MULTICAST_TTL", ttl, spec,
                            err, errlen)))
        return -1;
    if (is6 && (set_value(fd, IPPROTO_IPV6, IPV6_TCLASS, "IPV6_TCLASS", tos, spec, err,
                          errlen) ||
                set_value(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, "IPV6_UNICAST_HOPS", ttl, spec,
                          err, errlen) ||
                set_value(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, "IPV6_MULTICAST_HOPS", ttl,
                          spec, err, errlen)))
        return -1;
    return 0;
}

int sock_open(const struct sock_spec *spec, const struct sock_opts *opts, int *granted,
              char *err, size_t errlen)
{
    static const struct sock_opt common[] = {OPT(SOL_SOCKET, SO_RXQ_OVFL)};
    static const struct sock_opt timens[] = {OPT(SOL_SOCKET, SO_TIMESTAMPNS)};
    static const struct sock_opt reuse[] = {OPT(SOL_SOCKET, SO_REUSEPORT)};
    static const struct sock_opt cred[] = {OPT(SOL_SOCKET, SO_PASSCRED)};
    int family = spec->addr.ss_family;
    int type, proto = 0;
    char pathbuf[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    const char *path = NULL;
    struct sockaddr_storage addr = spec->addr;
    int fd = -1;

    switch (spec->kind) {
    case SOCK_KIND_UDP:
        type = SOCK_DGRAM;
        break;
    case SOCK_KIND_UNIX:
        type = SOCK_DGRAM;
        break;
    case SOCK_KIND_RAW:
        type = SOCK_RAW;
        proto = spec->proto;
        if (family == AF_INET) /* raw sockets have no port */
            ((struct sockaddr_in *)&addr)->sin_port = 0;
        else if (family == AF_INET6)
            ((struct sockaddr_in6 *)&addr)->sin6_port = 0;
        break;
    default:
        set_err(err, errlen, "socket", spec, EINVAL);
        return -1;
    }
    if ((spec->kind == SOCK_KIND_UNIX) != (family == AF_UNIX) ||
        (family != AF_UNIX && family != AF_INET && family != AF_INET6)) {
        set_err(err, errlen, "socket", spec, EAFNOSUPPORT);
        return -1;
    }

    if (spec->kind == SOCK_KIND_UNIX) {
        path = unix_path(spec, pathbuf, sizeof pathbuf);
        int e = path ? unix_clear_stale(spec, path) : 0;
        if (e) {
            set_err(err, errlen, "bind", spec, e);
            return -1;
        }
    }

    fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
    if (fd < 0) {
        set_err(err, errlen, "socket", spec, errno);
        return -1;
    }
    if (family == AF_INET6 && spec->kind == SOCK_KIND_UDP) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&spec->addr;
        int v6only = opts->v6only == SOCK_V6ONLY_ON    ? 1
                     : opts->v6only == SOCK_V6ONLY_OFF ? 0
                     : !spec->dualstack && !IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr);
        if (set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only) != 0) {
            set_err(err, errlen, "setsockopt IPV6_V6ONLY", spec, errno);
            goto fail;
        }
    }
    if (set_flags(fd, common, 1, spec, err, errlen) != 0 ||
        (opts->want_time && set_flags(fd, timens, 1, spec, err, errlen) != 0) ||
        (opts->reuseport && set_flags(fd, reuse, 1, spec, err, errlen) != 0))
        goto fail;
    if (spec->kind == SOCK_KIND_UNIX) {
        if (set_flags(fd, cred, 1, spec, err, errlen) != 0)
            goto fail;
        /* Refuse passed descriptors (Linux 6.16+: the sender gets EPERM); older kernels
         * say ENOPROTOOPT and recv_batch closes what arrives. */
#ifdef SOCK_SO_PASSRIGHTS
        (void)set_int(fd, SOL_SOCKET, SOCK_SO_PASSRIGHTS, 0);
#endif
    } else if (set_ip_options(fd, spec, opts, err, errlen) != 0) {
        goto fail;
    }
    if (set_rcvbuf(fd, spec, opts->rcvbuf, granted, err, errlen) != 0 ||
        (spec->kind != SOCK_KIND_UNIX && set_binding(fd, spec, opts, err, errlen) != 0))
        goto fail;

    if (bind(fd, (const struct sockaddr *)&addr, spec->addrlen) != 0) {
        set_err(err, errlen, "bind", spec, errno);
        goto fail;
    }
    /* Not chmod: it follows a symlink that whoever can write the socket's folder may have
     * put in place of the socket file since bind (then root would chmod its target). */
    if (path && opts->unix_mode >= 0 &&
        fchmodat(AT_FDCWD, path, (mode_t)opts->unix_mode, AT_SYMLINK_NOFOLLOW) != 0) {
        set_err(err, errlen, "chmod", spec, errno);
        unlink(path);
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

void sock_close(int fd, const struct sock_spec *spec)
{
    if (fd < 0)
        return;
    close(fd);
    if (!spec || spec->kind != SOCK_KIND_UNIX)
        return;
    char pathbuf[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    const char *path = unix_path(spec, pathbuf, sizeof pathbuf);
    struct stat st;
    if (path && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
}

static int get_int(int fd, int name, int *value)
{
    socklen_t len = sizeof *value;
    return getsockopt(fd, SOL_SOCKET, name, value, &len);
}

/* 1 if the bound address a (from getsockname) is spec's address. */
static int same_address(const struct sockaddr_storage *a, socklen_t alen,
                        const struct sock_spec *spec)
{
    const struct sockaddr_storage *b = &spec->addr;
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a;
        const struct sockaddr_in *y = (const struct sockaddr_in *)b;
        return x->sin_addr.s_addr == y->sin_addr.s_addr &&
               (spec->kind == SOCK_KIND_RAW || x->sin_port == y->sin_port);
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
        return IN6_ARE_ADDR_EQUAL(&x->sin6_addr, &y->sin6_addr) &&
               (spec->kind == SOCK_KIND_RAW || x->sin6_port == y->sin6_port);
    }
    if (a->ss_family == AF_UNIX) {
        size_t off = offsetof(struct sockaddr_un, sun_path);
        const struct sockaddr_un *x = (const struct sockaddr_un *)a;
        const struct sockaddr_un *y = (const struct sockaddr_un *)b;
        if (alen <= off || spec->addrlen <= off)
            return 0;
        size_t xn = alen - off, yn = spec->addrlen - off;
        if (x->sun_path[0] != '\0') { /* a path: compare up to its NUL */
            xn = strnlen(x->sun_path, xn);
            yn = strnlen(y->sun_path, yn);
        }
        return xn == yn && memcmp(x->sun_path, y->sun_path, xn) == 0;
    }
    return 0;
}

int sock_matches(int fd, const struct sock_spec *spec)
{
    int type, domain, proto;
    if (get_int(fd, SO_TYPE, &type) != 0 || get_int(fd, SO_DOMAIN, &domain) != 0)
        return 0;
    if (domain != spec->addr.ss_family)
        return 0;
    switch (spec->kind) {
    case SOCK_KIND_UDP:
        if (type != SOCK_DGRAM || domain == AF_UNIX)
            return 0;
        break;
    case SOCK_KIND_UNIX:
        if (type != SOCK_DGRAM || domain != AF_UNIX)
            return 0;
        break;
    case SOCK_KIND_RAW:
        if (type != SOCK_RAW || get_int(fd, SO_PROTOCOL, &proto) != 0 || proto != spec->proto)
            return 0;
        break;
    default:
        return 0;
    }
    struct sockaddr_storage bound;
    socklen_t len = sizeof bound;
    memset(&bound, 0, sizeof bound);
    if (getsockname(fd, (struct sockaddr *)&bound, &len) != 0)
        return 0;
    return same_address(&bound, len, spec);
}

int sock_mcast(int fd, const struct mcast_join *j, int join, char *err, size_t errlen)
{
    int family = j->group.ss_family;
    int level = family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
    int r;
    if (j->source.ss_family == AF_UNSPEC) {
        struct group_req gr;
        memset(&gr, 0, sizeof gr);
        gr.gr_interface = j->ifindex;
        memcpy(&gr.gr_group, &j->group, sizeof gr.gr_group);
        r = setsockopt(fd, level, join ? MCAST_JOIN_GROUP : MCAST_LEAVE_GROUP, &gr, sizeof gr);
    } else {
        struct group_source_req gs;
        memset(&gs, 0, sizeof gs);
        gs.gsr_interface = j->ifindex;
        memcpy(&gs.gsr_group, &j->group, sizeof gs.gsr_group);
        memcpy(&gs.gsr_source, &j->source, sizeof gs.gsr_source);
        r = setsockopt(fd, level, join ? MCAST_JOIN_SOURCE_GROUP : MCAST_LEAVE_SOURCE_GROUP,
                       &gs, sizeof gs);
    }
    if (r == 0)
        return 0;
    int e = errno;
    char text[128];
    snprintf(err, errlen, "%s %s: %s (%s)", join ? "join" : "leave", j->text,
             strerror_r(e, text, sizeof text), errno_name(e));
    return -1;
}

int sock_mcast_own_only(int fd, int family)
{
    if (set_int(fd, IPPROTO_IP, IP_MULTICAST_ALL, 0) != 0 && family == AF_INET)
        return -1;
#ifdef IPV6_MULTICAST_ALL
    if (family == AF_INET6 && set_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0) != 0)
        return -1;
#endif
    return 0;
}

/* ---- what this platform has (netio.h) ---- */

const char *sock_unsupported(const struct sock_spec *spec)
{
    (void)spec;
    return NULL;
}

const char *sock_option_unsupported(const char *key)
{
    (void)key;
    return NULL;
}

int sock_has_reuseport(void)
{
    return 1;
}
