/* daemon/sockset.c: opening, reusing and retiring the daemon's sockets. */
#include "sockset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void inherited_fds_take(struct inherited_fds *inh)
{
    inh->fds = NULL;
    inh->n = 0;
    const char *pid = getenv("LISTEN_PID");
    const char *nfds = getenv("LISTEN_FDS");
    if (!pid || !nfds || strtol(pid, NULL, 10) != (long)getpid())
        return;
    long n = strtol(nfds, NULL, 10);
    if (n <= 0 || n > 1024)
        return;
    inh->fds = calloc((size_t)n, sizeof *inh->fds);
    if (!inh->fds)
        return;
    for (long i = 0; i < n; i++)
        inh->fds[i] = 3 + (int)i; /* SD_LISTEN_FDS_START */
    inh->n = (size_t)n;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
}

void inherited_fds_release(struct inherited_fds *inh, struct logger *lg)
{
    for (size_t i = 0; i < inh->n; i++)
        if (inh->fds[i] >= 0) {
            log_warn(lg, "socket fd %d from systemd matches no bind address: closed",
                     inh->fds[i]);
            close(inh->fds[i]);
        }
    free(inh->fds);
    inh->fds = NULL;
    inh->n = 0;
}

static int inherited_claim(struct inherited_fds *inh, const struct sock_spec *spec)
{
    if (!inh)
        return -1;
    for (size_t i = 0; i < inh->n; i++)
        if (inh->fds[i] >= 0 && sock_matches(inh->fds[i], spec)) {
            int fd = inh->fds[i];
            inh->fds[i] = -1;
            return fd;
        }
    return -1;
}

static int sockset_push(struct sockset *s, const struct sock_entry *e)
{
    struct sock_entry *grown = realloc(s->v, (s->n + 1) * sizeof *s->v);
    if (!grown)
        return -1;
    s->v = grown;
    s->v[s->n] = *e;
    s->v[s->n].listener = strdup(e->listener);
    s->v[s->n].bind_str = strdup(e->bind_str);
    if (!e->reused)
        s->v[s->n].last_ovfl = calloc(1, sizeof *e->last_ovfl);
    if (!s->v[s->n].listener || !s->v[s->n].bind_str || !s->v[s->n].last_ovfl) {
        free(s->v[s->n].listener);
        free(s->v[s->n].bind_str);
        if (!e->reused)
            free(s->v[s->n].last_ovfl);
        return -1;
    }
    s->n++;
    return 0;
}

static void sockset_free(struct sockset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].listener);
        free(s->v[i].bind_str);
        free(s->v[i].joins);
    }
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

static const struct sock_entry *sockset_find(const struct sockset *s, const char *bind_str,
                                             int slot)
{
    if (!s)
        return NULL;
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].slot == slot && strcmp(s->v[i].bind_str, bind_str) == 0)
            return &s->v[i];
    return NULL;
}

static const struct sock_entry *sockset_find_inherited(const struct sockset *s,
                                                       const char *bind_str)
{
    if (!s)
        return NULL;
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].inherited && strcmp(s->v[i].bind_str, bind_str) == 0)
            return &s->v[i];
    return NULL;
}

static int sockset_uses_fd(const struct sockset *s, int fd)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].fd == fd)
            return 1;
    return 0;
}

/* A socket of old for bind_str in any slot, not yet taken by out: a single socket (unix,
 * raw, systemd's, UDP with one worker) whose reading worker changed because listeners were
 * reordered or the worker count changed. */
static const struct sock_entry *sockset_find_any(const struct sockset *old,
                                                 const struct sockset *out,
                                                 const char *bind_str)
{
    if (!old)
        return NULL;
    for (size_t i = 0; i < old->n; i++)
        if (strcmp(old->v[i].bind_str, bind_str) == 0 && !sockset_uses_fd(out, old->v[i].fd))
            return &old->v[i];
    return NULL;
}

/* Opens (or reuses, or claims) one socket. any_slot: it is the bind's only socket, so the
 * old one is reused whichever worker read it. */
static int sockset_open_one(struct sockset *out, const struct sockset *old,
                            struct sock_entry *e, int any_slot, struct inherited_fds *inh,
                            struct logger *lg, const struct config *cfg,
                            const struct listener_cfg *lc, char *err, size_t errlen)
{
    const struct sock_entry *prev = sockset_find(old, e->bind_str, e->slot);
    if (!prev && any_slot)
        prev = sockset_find_any(old, out, e->bind_str);
    if (prev) {
        e->fd = prev->fd;
        e->reused = 1;
        e->last_ovfl = prev->last_ovfl; /* drops counted before the reload stay counted */
        e->inherited = prev->inherited;
        if (memcmp(&prev->opts, &e->opts, sizeof e->opts) != 0)
            log_warn(lg, "listener '%s': %s: changed receive options take effect on restart",
                     lc->name, e->bind_str);
    } else {
        int fd = inherited_claim(inh, &e->spec);
        if (fd >= 0) {
            e->fd = fd;
            e->inherited = 1;
            log_info(lg, "listener '%s': %s: socket from systemd (fd %d)", lc->name,
                     e->bind_str, fd);
        } else {
            int granted = 0;
            char why[384];
            e->fd = sock_open(&e->spec, &e->opts, &granted, why, sizeof why);
            if (e->fd < 0) {
                snprintf(err, errlen, "%s:%d: listener '%s': %s", cfg->file, lc->bind_line,
                         lc->name, why);
                return -1;
            }
            /* Linux reads back twice the size asked for (it counts its bookkeeping). */
            if (e->opts.rcvbuf > 0 && granted > 0 && granted / 2 < e->opts.rcvbuf)
                log_warn(lg, "listener '%s': %s: receive buffer capped by the kernel at %d "
                         "bytes (asked %d; raise net.core.rmem_max)", lc->name, e->bind_str,
                         granted / 2, e->opts.rcvbuf);
            log_info(lg, "listener '%s': bound %s%s", lc->name, e->bind_str,
                     e->slot > 0 ? " (another worker's socket)" : "");
        }
    }
    if (sockset_push(out, e) != 0) {
        if (!e->reused)
            sock_close(e->fd, &e->spec);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static const struct sock_entry *sockset_by_fd(const struct sockset *s, int fd)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (s->v[i].fd == fd)
            return &s->v[i];
    return NULL;
}

static int sockset_has_join(const struct sock_entry *e, const struct mcast_join *j)
{
    for (size_t i = 0; e && i < e->njoins; i++)
        if (mcast_same(&e->joins[i].j, j))
            return 1;
    return 0;
}

/* The multicast memberships of e, just added to the new set: when it is its bind's joiner
 * (the one socket of the bind that reads group traffic), lc's groups of its family; the
 * ones its socket held before (prev, a kept socket) stay, new ones are joined. Leaves
 * nothing: sockset_retire leaves what the new set dropped, sockset_discard what a failed
 * build joined. A listener with groups receives only its own (sock_mcast_own_only), so the
 * other workers' sockets of the bind get no copies. */
static int sockset_join(struct sock_entry *e, const struct sock_entry *prev, int joiner,
                        const struct config *cfg, const struct listener_cfg *lc,
                        struct logger *lg, char *err, size_t errlen)
{
    int family = e->spec.addr.ss_family;
    if (lc->njoins == 0 || e->spec.kind == SOCK_KIND_UNIX)
        return 0;
    if (sock_mcast_own_only(e->fd, family) != 0)
        log_warn(lg, "listener '%s': %s: cannot turn IP_MULTICAST_ALL off: it also receives "
                 "groups other sockets of the host joined", lc->name, e->bind_str);
    if (!joiner)
        return 0;
    e->joins = calloc(lc->njoins, sizeof *e->joins);
    if (!e->joins) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < lc->njoins; i++) {
        const struct mcast_join *j = &lc->joins[i];
        if (j->group.ss_family != family)
            continue;
        int fresh = !sockset_has_join(prev, j);
        char why[256];
        if (fresh && sock_mcast(e->fd, j, 1, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s:%d: listener '%s': %s: %s", cfg->file, lc->join_line,
                     lc->name, e->bind_str, why);
            return -1;
        }
        if (fresh)
            log_info(lg, "listener '%s': %s: joined %s", lc->name, e->bind_str, j->text);
        e->joins[e->njoins].j = *j;
        e->joins[e->njoins].fresh = fresh;
        e->njoins++;
    }
    return 0;
}

/* Leaves the groups of e (those marked fresh only, or all), logging failures. */
static void sockset_leave(struct sock_entry *e, int fresh_only, const struct sock_entry *keep,
                          struct logger *lg)
{
    for (size_t i = 0; i < e->njoins; i++) {
        const struct mcast_join *j = &e->joins[i].j;
        if ((fresh_only && !e->joins[i].fresh) || sockset_has_join(keep, j))
            continue;
        char why[256];
        if (sock_mcast(e->fd, j, 0, why, sizeof why) != 0) {
            if (lg)
                log_warn(lg, "listener '%s': %s: %s", e->listener, e->bind_str, why);
        } else if (lg && keep) {
            log_info(lg, "listener '%s': %s: left %s", e->listener, e->bind_str, j->text);
        }
    }
}

/* sockset_join for the entry just added to out. */
static int sockset_join_last(struct sockset *out, const struct sockset *old, int joiner,
                             const struct config *cfg, const struct listener_cfg *lc,
                             struct logger *lg, char *err, size_t errlen)
{
    struct sock_entry *e = &out->v[out->n - 1];
    const struct sock_entry *prev = e->reused ? sockset_by_fd(old, e->fd) : NULL;
    return sockset_join(e, prev, joiner, cfg, lc, lg, err, errlen);
}

int sockset_build(struct sockset *out, const struct sockset *old, const struct config *cfg,
                  int nworkers, struct inherited_fds *inh, struct logger *lg, char *err,
                  size_t errlen)
{
    out->v = NULL;
    out->n = 0;
    for (size_t li = 0; li < cfg->nlisteners; li++) {
        const struct listener_cfg *lc = &cfg->listeners[li];
        for (size_t bi = 0; bi < lc->nbinds; bi++) {
            struct sock_entry e = {0};
            e.listener = lc->name;
            e.bind_str = lc->bind_strs[bi];
            e.bind_index = bi;
            e.spec = lc->binds[bi];
            e.opts.rcvbuf = lc->rcvbuf;
            e.opts.unix_mode = lc->unix_mode;
            e.opts.want_ttl = lc->want_ttl;
            e.opts.want_tos = lc->want_tos;
            e.opts.want_time = lc->want_time;
            e.opts.reuseport = lc->reuseport;
            e.opts.freebind = lc->freebind;
            memcpy(e.opts.device, lc->device, sizeof e.opts.device);
            e.opts.v6only = lc->v6only < 0 ? SOCK_V6ONLY_AS_BIND
                            : lc->v6only ? SOCK_V6ONLY_ON : SOCK_V6ONLY_OFF;
            e.opts.has_tos = lc->tos >= 0;
            e.opts.tos = lc->tos;
            e.opts.has_ttl = lc->ttl >= 0;
            e.opts.ttl = lc->ttl;
            /* UDP: one SO_REUSEPORT socket per worker, so the kernel spreads the load.
             * Unix, raw and systemd's sockets, and all on Windows: one socket, read by one
             * worker. */
            int per_worker = e.spec.kind == SOCK_KIND_UDP && nworkers > 1 && sock_has_reuseport();
            const struct sock_entry *kept = sockset_find_inherited(old, e.bind_str);
            if (per_worker && kept) {
                /* Still the socket systemd handed over at start (its reader must exist). */
                e.slot = kept->slot < nworkers ? kept->slot : (int)(li % (size_t)nworkers);
                if (sockset_open_one(out, old, &e, 1, inh, lg, cfg, lc, err, errlen) != 0 ||
                    sockset_join_last(out, old, 1, cfg, lc, lg, err, errlen) != 0)
                    goto fail;
            } else if (per_worker) {
                /* A socket systemd handed over cannot be shared with SO_REUSEPORT. */
                int fd = inherited_claim(inh, &e.spec);
                if (fd >= 0) {
                    e.fd = fd;
                    e.inherited = 1;
                    e.slot = (int)(li % (size_t)nworkers);
                    log_info(lg, "listener '%s': %s: socket from systemd (fd %d), read by "
                             "one worker", lc->name, e.bind_str, fd);
                    if (sockset_push(out, &e) != 0) {
                        close(fd);
                        snprintf(err, errlen, "out of memory");
                        goto fail;
                    }
                    if (sockset_join_last(out, old, 1, cfg, lc, lg, err, errlen) != 0)
                        goto fail;
                    continue;
                }
                e.opts.reuseport = 1;
                for (int w = 0; w < nworkers; w++) {
                    e.slot = w;
                    if (sockset_open_one(out, old, &e, 0, inh, lg, cfg, lc, err, errlen) != 0 ||
                        sockset_join_last(out, old, w == 0, cfg, lc, lg, err, errlen) != 0)
                        goto fail;
                }
            } else {
                e.slot = e.spec.kind == SOCK_KIND_UDP && nworkers == 1 ? 0
                                                                        : (int)(li % (size_t)nworkers);
                if (sockset_open_one(out, old, &e, 1, inh, lg, cfg, lc, err, errlen) != 0 ||
                    sockset_join_last(out, old, 1, cfg, lc, lg, err, errlen) != 0)
                    goto fail;
            }
        }
    }
    return 0;
fail:
    sockset_discard(out);
    return -1;
}

/* Leaves its groups, closes the entry's socket and frees what lives as long as it. */
static void sockset_close_entry(struct sock_entry *e)
{
    sockset_leave(e, 0, NULL, NULL);
    sock_close(e->fd, &e->spec);
    free(e->last_ovfl);
    e->last_ovfl = NULL;
}

void sockset_retire(struct sockset *old, const struct sockset *now, struct logger *lg)
{
    for (size_t i = 0; i < old->n; i++) {
        const struct sock_entry *kept = sockset_by_fd(now, old->v[i].fd);
        if (kept)
            sockset_leave(&old->v[i], 0, kept, lg);
        else
            sockset_close_entry(&old->v[i]);
    }
    sockset_free(old);
}

void sockset_discard(struct sockset *failed)
{
    for (size_t i = 0; i < failed->n; i++) {
        if (!failed->v[i].reused)
            sockset_close_entry(&failed->v[i]);
        else
            sockset_leave(&failed->v[i], 1, NULL, NULL);
    }
    sockset_free(failed);
}

void sockset_close_all(struct sockset *s)
{
    for (size_t i = 0; i < s->n; i++)
        sockset_close_entry(&s->v[i]);
    sockset_free(s);
}
