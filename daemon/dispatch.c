/* daemon/dispatch.c: the hot path. recv_batch fills the listener's ring; every datagram is
 * counted, bound to the listener's reusable message object and handed to H.message under
 * a protected call; replies queued meanwhile leave in one send_batch at the end of the
 * batch. Errors queued on the socket (ICMP) go to H.error. Nothing is allocated here. */
#include "dispatch.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <event2/event.h>
#include <lauxlib.h>

#include "addr.h"
#include "errname.h"
#include "lbind.h"
#include "sendq.h"
#include "worker.h"

/* Batches per wakeup before yielding to the other sockets of the loop. */
enum { DISPATCH_MAX_ROUNDS = 16, DISPATCH_MAX_ERRORS = 64 };

/* Protected: calls H.error with the table describing the error (args: wl, sockerr). */
static int dispatch_error_p(lua_State *L)
{
    struct wlistener *wl = lua_touserdata(L, 1);
    const struct sockerr *e = lua_touserdata(L, 2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, wl->st->error_ref);
    sockerr_push(L, e, wl->cfg->name);
    lua_call(L, 1, 0);
    return 0;
}

static void dispatch_errors(struct wsock *ws)
{
    struct wlistener *wl = ws->wl;
    struct worker *w = wl->w;
    for (int i = 0; i < DISPATCH_MAX_ERRORS; i++) {
        struct sockerr e;
        if (recv_error(ws->fd, &e) <= 0)
            return;
        lstats_add(wl->stats, LS_SOCK_ERRORS, 1);
        if (wl->st->error_ref == LUA_NOREF) {
            char peer[ADDR_STRLEN];
            log_debug(w->d->log, "listener '%s': %s from %s (no error handler)", wl->cfg->name,
                      errno_name(e.err),
                      addr_format((struct sockaddr *)&e.peer, e.peerlen, 1, peer, sizeof peer));
            continue;
        }
        /* The error table is built inside the protected call: building it can raise. */
        lua_State *L = wl->st->L;
        lua_pushcfunction(L, dispatch_error_p);
        lua_pushlightuserdata(L, wl);
        lua_pushlightuserdata(L, &e);
        worker_call(w, wl, 2, "error");
    }
}

/* Counts what the kernel and the buffers did to d; logs losses (rate-limited). */
static void dispatch_account(struct wsock *ws, const struct dgram *d)
{
    struct wlistener *wl = ws->wl;
    struct lstats *st = wl->stats;
    lstats_add(st, LS_RECEIVED, 1);
    lstats_add(st, LS_BYTES, d->size);
    uint32_t dropped = 0;
    if ((d->has & DG_HAS_OVFL) && d->ovfl != *ws->last_ovfl) {
        dropped = d->ovfl - *ws->last_ovfl; /* wraps correctly */
        *ws->last_ovfl = d->ovfl;
        lstats_add(st, LS_KERNEL_DROPS, dropped);
    }
    if (!(d->flags & (DG_TRUNC | DG_CTRUNC)) && !dropped)
        return;
    if (d->flags & DG_TRUNC)
        lstats_add(st, LS_TRUNCATED, 1);
    if (d->flags & DG_CTRUNC)
        lstats_add(st, LS_CTRUNCATED, 1);
    unsigned suppressed;
    if (!ratelimit_allow(&wl->drop_rl, 5, &suppressed))
        return;
    char peer[ADDR_STRLEN];
    addr_format((const struct sockaddr *)&d->peer, d->peerlen, 1, peer, sizeof peer);
    if (d->flags & DG_TRUNC)
        log_warn(wl->w->d->log, "listener '%s': datagram of %zu bytes from %s cut to recv.size "
                 "%zu%s", wl->cfg->name, d->size, peer, d->len,
                 suppressed ? " (more losses suppressed)" : "");
    if (d->flags & DG_CTRUNC)
        log_warn(wl->w->d->log, "listener '%s': control data cut for a datagram from %s",
                 wl->cfg->name, peer);
    if (dropped)
        log_warn(wl->w->d->log, "listener '%s': kernel dropped %u datagrams (socket buffer "
                 "full; raise recv.rcvbuf)", wl->cfg->name, dropped);
}

/* A batch being handed to H.message: i is the next datagram. */
struct dispatch_batch {
    struct wsock *ws;
    struct dgram *recs;
    int n, i;
};

/* Protected: calls H.message for datagrams i..n-1 of the batch at 1, each with its own
 * budget. One protected call for the batch instead of one per datagram; when a handler
 * raises, the caller counts that datagram and calls again from the next one, so an error
 * still costs only its own datagram and order is kept. */
static int dispatch_batch_p(lua_State *L)
{
    enum { HANDLER = 2, MSG, DATA_KEY };
    struct dispatch_batch *b = lua_touserdata(L, 1);
    struct wlistener *wl = b->ws->wl;
    struct lstate *st = wl->st;
    lua_rawgeti(L, LUA_REGISTRYINDEX, st->message_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, st->msg_ref);
    lua_pushliteral(L, "data");
    for (; b->i < b->n; b->i++) {
        msg_bind(st->msg, &b->recs[b->i], b->ws);
        msg_set_data(L, st->msg, MSG, DATA_KEY);
        lua_pushvalue(L, HANDLER);
        lua_pushvalue(L, MSG);
        worker_call_next(wl->w);
        lua_call(L, 1, 0);
        msg_unbind(st->msg);
        lstats_add(wl->stats, LS_HANDLED, 1);
    }
    return 0;
}

/* The per-peer rate limit (ratelimit = { ... }): drops the datagrams whose peer has no
 * token left, keeping the others in order at the front of recs; returns how many are
 * kept. One clock read per batch: every datagram of a batch arrived "now". */
static int dispatch_limit(struct wsock *ws, struct dgram *recs, int n)
{
    struct wlistener *wl = ws->wl;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    char peer[ADDR_STRLEN] = "";
    int kept = 0;
    for (int i = 0; i < n; i++) {
        const struct sockaddr *sa = (const struct sockaddr *)&recs[i].peer;
        if (peerlimit_allow(wl->limit, sa, now_ns)) {
            if (kept != i)
                recs[kept] = recs[i];
            kept++;
        } else if (!peer[0]) {
            addr_format(sa, recs[i].peerlen, 0, peer, sizeof peer);
        }
    }
    if (kept == n)
        return n;
    lstats_add(wl->stats, LS_RATELIMITED, (uint64_t)(n - kept));
    unsigned suppressed;
    if (ratelimit_allow(&wl->limit_rl, 1, &suppressed))
        log_warn(wl->w->d->log, "listener '%s': datagrams from %s over the per-peer rate limit "
                 "dropped (counted in luadgramd_ratelimited_total; one such line a second%s)",
                 wl->cfg->name, peer, suppressed ? ", others suppressed" : "");
    return kept;
}

static void dispatch_batch(struct wsock *ws, struct dgram *recs, int n)
{
    struct wlistener *wl = ws->wl;
    struct worker *w = wl->w;
    for (int i = 0; i < n; i++)
        dispatch_account(ws, &recs[i]);
    if (wl->limit) {
        n = dispatch_limit(ws, recs, n);
        if (n == 0)
            return;
    }
    struct dispatch_batch b = {ws, recs, n, 0};
    /* The state cannot change during the batch: a rebuild runs from the loop. */
    struct lstate *st = wl->st;
    while (b.i < b.n) {
        lua_pushcfunction(st->L, dispatch_batch_p);
        lua_pushlightuserdata(st->L, &b);
        if (worker_call(w, wl, 1, "message") != 0) {
            msg_unbind(st->msg); /* the datagram whose handler raised is dropped (counted) */
            b.i++;
        }
    }
    msg_clear_data(st->L, st->msg, st->msg_ref);
}

static int dispatch_is_sock_error(int e)
{
    return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH || e == EHOSTDOWN ||
           e == ENETDOWN || e == EMSGSIZE || e == ECONNRESET || e == ETIMEDOUT ||
           e == EPROTO || e == ENOPROTOOPT || e == EACCES || e == EPERM;
}

/* Whether a batch of n says the socket is busy enough to be polled rather than watched. */
static int dispatch_busy(const struct wsock *ws, int n)
{
    unsigned batch = ws->wl->ring.batch;
    return batch >= 4 && (unsigned)n >= batch / 4;
}

/* Reads up to DISPATCH_MAX_ROUNDS batches from ws and hands them on; returns the size of
 * the last batch read (0: the socket is empty, or reading stopped). */
static int dispatch_read(struct wsock *ws, int from_epoll)
{
    struct wlistener *wl = ws->wl;
    struct worker *w = wl->w;
    int n = 0;
    for (int round = 0; round < DISPATCH_MAX_ROUNDS && !w->paused; round++) {
        n = recv_batch(ws->fd, &wl->ring, ws->local_port);
        if (n < 0) {
            int e = errno;
            n = 0;
            if (e == EINTR)
                continue;
            if (e == EAGAIN || e == EWOULDBLOCK) {
                /* nothing to read */
            } else if (dispatch_is_sock_error(e)) {
                dispatch_errors(ws);
                continue;
            } else {
                lstats_add(wl->stats, LS_RECV_ERRORS, 1);
                unsigned suppressed;
                if (ratelimit_allow(&wl->drop_rl, 5, &suppressed))
                    log_error(w->d->log, "listener '%s': receive failed: %s (%s)",
                              wl->cfg->name, strerror(e), errno_name(e));
                break;
            }
        }
        if (n == 0) {
            /* Woken with nothing to read: the error queue is what is waiting. */
            if (round == 0 && from_epoll)
                dispatch_errors(ws);
            break;
        }
        w->in_batch = 1;
        dispatch_batch(ws, wl->ring.recs, n);
        w->in_batch = 0;
        sendq_flush(w);
        /* A short batch ends the reading, unless the socket is being polled and still
         * busy: then the next batch comes at once, without a turn of the loop. */
        if ((unsigned)n < wl->ring.batch && !(ws->polling && dispatch_busy(ws, n)))
            break;
    }
    return n;
}

/* Under load the socket leaves epoll and is read again from the loop's next turn (an
 * active event), until a batch comes back small: while a socket is in an epoll set, every
 * datagram that arrives, and every one of ours the kernel frees after sending, wakes the
 * socket's wait queue (ep_poll_callback), about 4 % of an echo's CPU in the kernel (perf,
 * bench/RESULTS.md). Other sockets and timers still run between two reads. */
static void dispatch_poll_or_watch(struct wsock *ws, int n)
{
    struct worker *w = ws->wl->w;
    if (!w->paused && ws->poll_ev && dispatch_busy(ws, n)) {
        if (!ws->polling) {
            event_del(ws->ev);
            ws->polling = 1;
        }
        event_active(ws->poll_ev, EV_READ, 0);
        return;
    }
    if (ws->polling) {
        ws->polling = 0;
        if (!w->paused) /* paused: sendq adds it back when it resumes */
            event_add(ws->ev, NULL);
    }
}

void dispatch_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wsock *ws = arg;
    dispatch_poll_or_watch(ws, dispatch_read(ws, 1));
}

void dispatch_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wsock *ws = arg;
    if (!ws->polling)
        return;
    dispatch_poll_or_watch(ws, dispatch_read(ws, 0));
}
