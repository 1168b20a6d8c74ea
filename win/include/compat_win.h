/* win/include/compat_win.h: the POSIX names the shared daemon code uses, on Windows (mingw-w64).
 * Only the Windows build puts win/include first on its include path, so the Linux build never
 * sees these headers. What cannot exist on Windows fails at run time with ENOSYS (or is
 * refused earlier by the configuration: sock_unsupported in netio.h). Implemented in
 * daemon/compat_win.c. */
#ifndef LUADGRAM_COMPAT_WIN_H
#define LUADGRAM_COMPAT_WIN_H

#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>
#include <afunix.h>
#include <stddef.h>
#include <sys/types.h>

/* The POSIX errno value for a WSAGetLastError() code (WSAECONNREFUSED -> ECONNREFUSED...),
 * so that handlers see the same names as on Linux (errname.c). */
int win_errno(int wsa_error);
/* WSARecvMsg / WSASendMsg, obtained once through WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER)
 * on the first socket asked about. NULL (with the reason logged by the caller) if absent. */
LPFN_WSARECVMSG win_wsarecvmsg(SOCKET s);
LPFN_WSASENDMSG win_wsasendmsg(SOCKET s);
/* WSAStartup, once per process (main_win.c calls it first). */
int win_sockets_start(void);

/* socket(): the Linux type flags, applied with ioctlsocket(FIONBIO). */
#define SOCK_NONBLOCK 0x800
#define SOCK_CLOEXEC 0x80000
#define MSG_NOSIGNAL 0
#ifndef IFF_BROADCAST
#define IFF_BROADCAST 0x2
#endif
int compat_socket(int domain, int type, int protocol);
#define socket(d, t, p) compat_socket((d), (t), (p))
/* close() on a socket is closesocket(), on anything else the CRT's close. */
int compat_close(int fd);

typedef long suseconds_t;

/* getentropy (the rate limit table's hash key, worker.c): RtlGenRandom of ADVAPI32, up to
 * 256 bytes as on Linux. 0, or -1 with errno (EIO, EINVAL). */
int getentropy(void *buf, size_t len);

struct iovec {
    void *iov_base;
    size_t iov_len;
};
ssize_t compat_writev(int fd, const struct iovec *iov, int iovcnt);
#define writev compat_writev

/* sched_getaffinity always fails: config.c then asks sysconf. */
typedef struct {
    unsigned long long bits;
} cpu_set_t;
#define CPU_COUNT(s) __builtin_popcountll((s)->bits)
int sched_getaffinity(int pid, size_t size, cpu_set_t *set);
#define _SC_NPROCESSORS_ONLN 84
#define _SC_PAGESIZE 30
#define _SC_CLK_TCK 2
long sysconf(int name);

/* Users and groups: Windows has none of these; getpwnam finds nobody. */
struct passwd {
    char *pw_name;
    unsigned pw_uid, pw_gid;
    char *pw_dir;
};
struct group {
    char *gr_name;
    unsigned gr_gid;
};
struct passwd *getpwnam(const char *name);
struct group *getgrnam(const char *name);
int initgroups(const char *user, unsigned gid);
int setgid(unsigned gid);
int setuid(unsigned uid);
unsigned getuid(void); /* uid_t, as pw_uid */

/* libevent's threads on Windows are Windows threads. */
#define evthread_use_pthreads evthread_use_windows_threads

/* Interface addresses: getifaddrs fails (ENOSYS); msg.bcast then comes from MSG_BCAST. */
struct ifaddrs {
    struct ifaddrs *ifa_next;
    char *ifa_name;
    unsigned ifa_flags;
    struct sockaddr *ifa_addr, *ifa_netmask, *ifa_broadaddr;
};
int getifaddrs(struct ifaddrs **ifap);
void freeifaddrs(struct ifaddrs *ifa);

/* Anonymous memory (lalloc's pools) from VirtualAlloc. */
#define PROT_READ 1
#define PROT_WRITE 2
#define MAP_PRIVATE 2
#define MAP_ANONYMOUS 0x20
#define MAP_NORESERVE 0x4000
#define MAP_FAILED ((void *)-1)
void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off);
int munmap(void *addr, size_t len);
int madvise(void *addr, size_t len, int advice);
#define MADV_DONTNEED 4
int malloc_trim(size_t pad);

/* Signals the shared code names: only the watchdog's exists (watchdog_win.c), as a call. */
#ifndef SIGPIPE
#define SIGPIPE 13
#endif
#ifndef SIGHUP
#define SIGHUP 1
#endif
#define SIGRTMIN 34
#define SA_SIGINFO 4
#define SA_RESTART 0x10000000
typedef struct {
    int si_signo;
} siginfo_t;
typedef unsigned long compat_sigset_t;
#define sigset_t compat_sigset_t
struct sigaction {
    void (*sa_sigaction)(int, siginfo_t *, void *);
    void (*sa_handler)(int);
    compat_sigset_t sa_mask;
    int sa_flags;
};
int sigaction(int sig, const struct sigaction *sa, struct sigaction *old);
int sigemptyset(compat_sigset_t *s);
int sigfillset(compat_sigset_t *s);
int sigaddset(compat_sigset_t *s, int sig);
int kill(int pid, int sig);
/* winpthreads' pthread_sigmask is a macro that drops its arguments (pthread_signal.h); a
 * function that reports an empty old mask instead, so callers' variables are used and set. */
#include <pthread.h>
#undef pthread_sigmask
int compat_pthread_sigmask(int how, const compat_sigset_t *set, compat_sigset_t *old);
#define pthread_sigmask compat_pthread_sigmask
/* main.c's main, renamed by cmake/windows.cmake so that main_win.c can call it. */
int luadgramd_main(int argc, char **argv);
int unsetenv(const char *name);

#endif
