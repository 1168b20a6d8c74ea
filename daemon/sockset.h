/* daemon/sockset.h: every socket the daemon holds, keyed by (bind string, worker slot).
 * Sockets outlive reloads: a new configuration reuses the sockets of binds it keeps and
 * opens only new ones; sockets handed over by systemd (LISTEN_FDS) are taken first. */
#ifndef LUADGRAM_SOCKSET_H
#define LUADGRAM_SOCKSET_H

#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "log.h"
#include "netio.h"

struct sock_join;

struct sock_entry {
    char *listener;         /* name of the listener that uses it */
    char *bind_str;         /* as written in the configuration */
    size_t bind_index;      /* index in that listener's binds */
    int slot;               /* the worker that reads it */
    struct sock_spec spec;
    struct sock_opts opts;
    int fd;
    int reused;             /* fd came from the previous set */
    int inherited;          /* fd came from systemd */
    uint32_t *last_ovfl;    /* the last SO_RXQ_OVFL total seen on fd: lives as long as the
                               fd (across reloads), used by the one worker reading it */
    struct sock_join *joins; /* the multicast groups fd is a member of (owned) */
    size_t njoins;
};

/* A membership of a socket; fresh: joined by the build that made this set (a failed build
 * leaves those again). */
struct sock_join {
    struct mcast_join j;
    int fresh;
};

struct sockset {
    struct sock_entry *v;
    size_t n;
};

/* File descriptors handed over by systemd socket activation, not yet claimed. */
struct inherited_fds {
    int *fds;
    size_t n;
};

/* Takes LISTEN_FDS/LISTEN_PID from the environment (and unsets them). */
void inherited_fds_take(struct inherited_fds *inh);
/* Closes those never claimed (logging them) and frees the list. */
void inherited_fds_release(struct inherited_fds *inh, struct logger *lg);

/* Builds `out` for cfg and nworkers. Returns 0, or -1 with err set ("listener 'echo':
 * bind 127.0.0.1:7777: Address already in use (EADDRINUSE)") after closing what it opened. */
int sockset_build(struct sockset *out, const struct sockset *old, const struct config *cfg,
                  int nworkers, struct inherited_fds *inh, struct logger *lg, char *err,
                  size_t errlen);

/* After a successful switch from old to now: leaves the groups a kept socket is no longer
 * to be in, closes old's sockets that now does not reuse, and frees old. */
void sockset_retire(struct sockset *old, const struct sockset *now, struct logger *lg);

/* After a failed build: leaves the groups it joined on kept sockets, closes the sockets
 * `failed` opened itself, and frees it. */
void sockset_discard(struct sockset *failed);

/* Leaves every group, closes and frees everything (unix socket files removed). */
void sockset_close_all(struct sockset *s);

#endif
