/* spec/c/test_unix_hostile.c: a unix listener against a hostile local user: a passed
 * socket that lingers on close does not stall the receive loop (refused or closed at once),
 * the error-queue reader never takes a real datagram, and the socket file's mode never
 * lands on a symlink swapped in after bind. bind is interposed below to play that race
 * deterministically; it changes nothing for other addresses. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "netio.h"
#include "check.h"

static char tmpdir[64];
static char race_path[128]; /* bind of this path swaps in a symlink to race_target */
static char race_target[128];
static int race_swaps; /* how many times bind swapped the symlink in (the race was played) */

int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    long r = syscall(SYS_bind, fd, sa, len);
    const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
    if (r == 0 && sa->sa_family == AF_UNIX && race_path[0] &&
        strcmp(un->sun_path, race_path) == 0) {
        char moved[160];
        snprintf(moved, sizeof moved, "%s.moved", race_path);
        if (rename(race_path, moved) != 0 || symlink(race_target, race_path) != 0)
            perror("race");
        else
            race_swaps++;
    }
    return (int)r;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int open_unix(const char *name, struct sock_spec *spec, int mode)
{
    memset(spec, 0, sizeof *spec);
    struct sockaddr_un *un = (struct sockaddr_un *)&spec->addr;
    un->sun_family = AF_UNIX;
    snprintf(un->sun_path, sizeof un->sun_path, "%s/%s", tmpdir, name);
    spec->kind = SOCK_KIND_UNIX;
    spec->addrlen = sizeof *un;
    struct sock_opts o = {.unix_mode = mode};
    char err[256] = "";
    int granted;
    int fd = sock_open(spec, &o, &granted, err, sizeof err);
    if (fd < 0)
        fprintf(stderr, "sock_open: %s\n", err);
    return fd;
}

/* A close of a lingering socket blocks this long when it is the last reference; a receive
 * that takes STALL_LIMIT_S or more was stalled by it (the margin between the two keeps a
 * loaded machine from failing the test and a stall from passing it). */
enum { LINGER_S = 10, STALL_LIMIT_S = 5 };

/* A TCP socket with unsent data and SO_LINGER of LINGER_S, or -1. *l gets its listener. */
static int lingering_socket(int *l)
{
    int small = 4096, t = -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t al = sizeof a;
    *l = socket(AF_INET, SOCK_STREAM, 0);
    if (*l < 0 || setsockopt(*l, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) != 0 ||
        bind(*l, (struct sockaddr *)&a, sizeof a) != 0 || listen(*l, 1) != 0 ||
        getsockname(*l, (struct sockaddr *)&a, &al) != 0)
        return -1;
    t = socket(AF_INET, SOCK_STREAM, 0);
    if (t < 0 || setsockopt(t, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) != 0 ||
        connect(t, (struct sockaddr *)&a, sizeof a) != 0 || fcntl(t, F_SETFL, O_NONBLOCK) != 0) {
        if (t >= 0)
            close(t);
        return -1;
    }
    char junk[4096] = {0};
    for (int i = 0; i < 1000 && write(t, junk, sizeof junk) > 0; i++)
        ;
    struct linger lg = {1, LINGER_S};
    setsockopt(t, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    return t;
}

static void test_passed_socket_does_not_stall(void)
{
    struct sock_spec spec;
    struct recv_ring ring = {0};
    int l = -1, t = -1, c = -1;
    int fd = open_unix("stall.sock", &spec, -1);
    REQUIRE(fd >= 0);
    REQUIRE(recv_ring_init(&ring, 4, 2048) == 0);
    t = lingering_socket(&l);
    REQUIRE(t >= 0);
    c = socket(AF_UNIX, SOCK_DGRAM, 0);
    REQUIRE(c >= 0);
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr h;
    } cb;
    struct iovec iov = {"x", 1};
    struct msghdr mh = {.msg_name = &spec.addr, .msg_namelen = spec.addrlen, .msg_iov = &iov,
                        .msg_iovlen = 1, .msg_control = cb.buf, .msg_controllen = sizeof cb.buf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &t, sizeof t);
    ssize_t s = sendmsg(c, &mh, 0);
    int refused = s < 0 && errno == EPERM; /* SO_PASSRIGHTS (Linux 6.16+) */
    CHECK(s == 1 || refused);
    if (refused) { /* never passed: this close is the last one; let it not linger here */
        struct linger off = {1, 0};
        setsockopt(t, SOL_SOCKET, SO_LINGER, &off, sizeof off);
    }
    close(t); /* the listener's reference, if any, is now the last one */
    t = -1;
    if (refused && send(c, "x", 1, 0) < 0)
        (void)sendto(c, "x", 1, 0, (struct sockaddr *)&spec.addr, spec.addrlen);
    double t0 = now();
    int n = recv_batch(fd, &ring, 0);
    CHECK(n == 1);
    CHECK(now() - t0 < STALL_LIMIT_S);
cleanup:
    if (t >= 0)
        close(t);
    if (c >= 0)
        close(c);
    if (l >= 0)
        close(l);
    recv_ring_free(&ring);
    sock_close(fd, &spec);
}

static void test_error_queue_leaves_datagrams(void)
{
    struct sock_spec spec;
    struct recv_ring ring = {0};
    int c = -1;
    int fd = open_unix("errq.sock", &spec, -1);
    REQUIRE(fd >= 0);
    REQUIRE(recv_ring_init(&ring, 4, 2048) == 0);
    c = socket(AF_UNIX, SOCK_DGRAM, 0);
    REQUIRE(c >= 0);
    REQUIRE(sendto(c, "hello", 5, 0, (struct sockaddr *)&spec.addr, spec.addrlen) == 5);
    struct sockerr e;
    CHECK(recv_error(fd, &e) == 0);
    CHECK(recv_batch(fd, &ring, 0) == 1);
    CHECK(ring.recs[0].len == 5 && memcmp(ring.recs[0].data, "hello", 5) == 0);
cleanup:
    if (c >= 0)
        close(c);
    recv_ring_free(&ring);
    sock_close(fd, &spec);
}

static void test_mode_not_on_symlink(void)
{
    struct sock_spec spec;
    struct stat st;
    snprintf(race_target, sizeof race_target, "%s/victim", tmpdir);
    snprintf(race_path, sizeof race_path, "%s/race.sock", tmpdir);
    int v = open(race_target, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(v >= 0);
    close(v);
    REQUIRE(chmod(race_target, 0600) == 0);
    race_swaps = 0;
    int fd = open_unix("race.sock", &spec, 0666);
    race_path[0] = '\0';
    if (fd >= 0)
        close(fd);
    /* The race was played: sock_open's bind went through the hook, which put the symlink
     * in place of the socket file; otherwise the mode below proves nothing. */
    CHECK(race_swaps == 1);
    REQUIRE(stat(race_target, &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    char moved[160];
    snprintf(moved, sizeof moved, "%s/race.sock.moved", tmpdir);
    unlink(moved);
    snprintf(moved, sizeof moved, "%s/race.sock", tmpdir);
    unlink(moved);
cleanup:
    unlink(race_target);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/luadgram-hostile-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_passed_socket_does_not_stall();
    test_error_queue_leaves_datagrams();
    test_mode_not_on_symlink();
    rmdir(tmpdir);
    return check_report();
}
