/* daemon/compat_win.c: what win/include/compat_win.h declares: the POSIX calls the shared
 * code makes, on Windows, and the WSA extension functions. Owns win_ext_fns, the process's
 * one copy of the WSARecvMsg / WSASendMsg pointers (set once, under its INIT_ONCE). */
#include "compat_win.h"

#include <errno.h>
#include <io.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static struct win_ext_fns {
    INIT_ONCE once;
    LPFN_WSARECVMSG recvmsg;
    LPFN_WSASENDMSG sendmsg;
} win_ext_fns = {INIT_ONCE_STATIC_INIT, NULL, NULL};

static BOOL CALLBACK win_ext_resolve(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    (void)once;
    (void)ctx;
    SOCKET s = *(SOCKET *)param;
    GUID rguid = WSAID_WSARECVMSG, sguid = WSAID_WSASENDMSG;
    DWORD got = 0;
    if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &rguid, sizeof rguid,
                 &win_ext_fns.recvmsg, sizeof win_ext_fns.recvmsg, &got, NULL, NULL) != 0)
        win_ext_fns.recvmsg = NULL;
    if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &sguid, sizeof sguid,
                 &win_ext_fns.sendmsg, sizeof win_ext_fns.sendmsg, &got, NULL, NULL) != 0)
        win_ext_fns.sendmsg = NULL;
    return TRUE;
}

LPFN_WSARECVMSG win_wsarecvmsg(SOCKET s)
{
    InitOnceExecuteOnce(&win_ext_fns.once, win_ext_resolve, &s, NULL);
    return win_ext_fns.recvmsg;
}

LPFN_WSASENDMSG win_wsasendmsg(SOCKET s)
{
    InitOnceExecuteOnce(&win_ext_fns.once, win_ext_resolve, &s, NULL);
    return win_ext_fns.sendmsg;
}

int win_sockets_start(void)
{
    WSADATA wsa;
    return WSAStartup(MAKEWORD(2, 2), &wsa) == 0 ? 0 : -1;
}

int win_errno(int e)
{
    static const struct {
        int wsa, posix;
    } map[] = {
        {WSAEWOULDBLOCK, EWOULDBLOCK},   {WSAEINTR, EINTR},
        {WSAEACCES, EACCES},             {WSAEFAULT, EFAULT},
        {WSAEINVAL, EINVAL},             {WSAEMFILE, EMFILE},
        {WSAENOTSOCK, ENOTSOCK},         {WSAEMSGSIZE, EMSGSIZE},
        {WSAEPROTOTYPE, EPROTOTYPE},     {WSAENOPROTOOPT, ENOPROTOOPT},
        {WSAEPROTONOSUPPORT, EPROTONOSUPPORT},
        {WSAEOPNOTSUPP, EOPNOTSUPP},     {WSAEAFNOSUPPORT, EAFNOSUPPORT},
        {WSAEADDRINUSE, EADDRINUSE},     {WSAEADDRNOTAVAIL, EADDRNOTAVAIL},
        {WSAENETDOWN, ENETDOWN},         {WSAENETUNREACH, ENETUNREACH},
        {WSAENETRESET, ENETUNREACH},     {WSAECONNRESET, ECONNREFUSED},
        {WSAENOBUFS, ENOBUFS},           {WSAETIMEDOUT, ETIMEDOUT},
        {WSAECONNREFUSED, ECONNREFUSED}, {WSAEHOSTUNREACH, EHOSTUNREACH},
        {WSAEHOSTDOWN, EHOSTUNREACH},    {WSAEALREADY, EALREADY},
        {WSAEINPROGRESS, EINPROGRESS},   {WSAEISCONN, EISCONN},
        {WSAENOTCONN, ENOTCONN},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].wsa == e)
            return map[i].posix;
    return EIO;
}

int compat_socket(int domain, int type, int protocol)
{
    int nonblock = (type & SOCK_NONBLOCK) != 0;
    type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    SOCKET s = WSASocketW(domain, type, protocol, NULL, 0, WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET) {
        errno = win_errno(WSAGetLastError());
        return -1;
    }
    u_long on = 1;
    if (nonblock && ioctlsocket(s, FIONBIO, &on) != 0) {
        errno = win_errno(WSAGetLastError());
        closesocket(s);
        return -1;
    }
    return (int)s;
}

#undef close
int compat_close(int fd)
{
    if (closesocket((SOCKET)fd) == 0)
        return 0;
    return _close(fd);
}

ssize_t compat_writev(int fd, const struct iovec *iov, int iovcnt)
{
    ssize_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        const char *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        while (left > 0) {
            int w = _write(fd, p, left > 0x40000000u ? 0x40000000u : (unsigned)left);
            if (w < 0)
                return total > 0 ? total : -1;
            p += w;
            left -= (size_t)w;
            total += w;
        }
    }
    return total;
}

int sched_getaffinity(int pid, size_t size, cpu_set_t *set)
{
    (void)pid;
    (void)size;
    (void)set;
    errno = ENOSYS;
    return -1;
}

long sysconf(int name)
{
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    switch (name) {
    case _SC_NPROCESSORS_ONLN:
        return (long)si.dwNumberOfProcessors;
    case _SC_PAGESIZE:
        return (long)si.dwPageSize;
    case _SC_CLK_TCK:
        return 100;
    default:
        errno = EINVAL;
        return -1;
    }
}

struct passwd *getpwnam(const char *name)
{
    (void)name;
    errno = ENOSYS;
    return NULL;
}

struct group *getgrnam(const char *name)
{
    (void)name;
    errno = ENOSYS;
    return NULL;
}

int initgroups(const char *user, unsigned gid)
{
    (void)user;
    (void)gid;
    errno = ENOSYS;
    return -1;
}

int setgid(unsigned gid)
{
    (void)gid;
    errno = ENOSYS;
    return -1;
}

int setuid(unsigned uid)
{
    (void)uid;
    errno = ENOSYS;
    return -1;
}

unsigned getuid(void)
{
    return 1; /* never root: there is none */
}

/* RtlGenRandom is ADVAPI32's SystemFunction036 (ntsecapi.h), already linked; BCryptGenRandom
 * would add bcrypt.dll to the DLLs windows/build allows. */
BOOLEAN NTAPI SystemFunction036(PVOID buf, ULONG len);

int getentropy(void *buf, size_t len)
{
    if (len > 256) {
        errno = EINVAL;
        return -1;
    }
    if (!SystemFunction036(buf, (ULONG)len)) {
        errno = EIO;
        return -1;
    }
    return 0;
}

int getifaddrs(struct ifaddrs **ifap)
{
    *ifap = NULL;
    errno = ENOSYS;
    return -1;
}

void freeifaddrs(struct ifaddrs *ifa)
{
    (void)ifa;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)
{
    (void)addr;
    (void)prot;
    (void)flags;
    (void)fd;
    (void)off;
    /* Reserved, committed page by page as touched is not Windows' way: reserve and commit
     * at once (commit charge only; pages come on first touch). */
    void *p = VirtualAlloc(NULL, len, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    if (!p) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    return p;
}

int munmap(void *addr, size_t len)
{
    (void)len;
    return VirtualFree(addr, 0, MEM_RELEASE) ? 0 : -1;
}

int madvise(void *addr, size_t len, int advice)
{
    (void)advice;
    /* The pages are given back and come back zeroed on the next touch. */
    return VirtualAlloc(addr, len, MEM_RESET, PAGE_READWRITE) ? 0 : -1;
}

int malloc_trim(size_t pad)
{
    (void)pad;
    return 0;
}

int sigaction(int sig, const struct sigaction *sa, struct sigaction *old)
{
    (void)sig;
    (void)sa;
    if (old)
        memset(old, 0, sizeof *old);
    return 0; /* the watchdog's "signal" is a call from watchdog_win.c */
}

int sigemptyset(compat_sigset_t *s)
{
    *s = 0;
    return 0;
}

int sigfillset(compat_sigset_t *s)
{
    *s = ~0ul;
    return 0;
}

int sigaddset(compat_sigset_t *s, int sig)
{
    *s |= 1ul << (sig & 31);
    return 0;
}

int compat_pthread_sigmask(int how, const compat_sigset_t *set, compat_sigset_t *old)
{
    (void)how;
    (void)set;
    if (old)
        *old = 0; /* no signal is ever blocked: Windows delivers none to threads */
    return 0;
}

int kill(int pid, int sig)
{
    (void)pid;
    return raise(sig);
}

int unsetenv(const char *name)
{
    return _putenv_s(name, "");
}
