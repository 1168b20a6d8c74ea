/* daemon/output/nats_loop.c: attaches one libnats connection to a libevent base: the
 * callbacks of natsOptions_SetEventLoop, in place of the adapter header libnats ships
 * (<nats/adapters/libevent.h>). It owns the connection's read and write events and the event
 * that re-points them at a new socket. libnats calls attach, read, write and detach from
 * its own threads (the reconnect thread, the timers) with the connection's lock held, and
 * the loop's read and write callbacks take that lock: so nothing here waits for the loop.
 * (The shipped header's attach frees the old events from the reconnect thread; event_free
 * waits for a running callback of the event, which waits for the connection's lock that
 * the reconnect thread holds: a deadlock that froze the worker.) A new socket is handed to
 * the loop thread, which re-assigns the events there; read and write requests made before
 * that are remembered and applied then. The protocol stays libnats':
 * natsConnection_ProcessReadEvent and natsConnection_ProcessWriteEvent do the I/O. */
#include "nats_loop.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <event2/event.h>

struct nats_loop {
    struct event_base *base;
    void (*on_stop)(void *);
    void *arg;
    struct event *attach_ev;   /* activated by attach: re-points the events on the loop */
    /* lock guards what follows. It is a leaf: only libevent's add, del_noblock and assign
     * run under it, never a libnats call. */
    pthread_mutex_t lock;
    natsConnection *nc;
    natsSock sock;             /* the socket libnats attached last */
    unsigned gen;              /* attaches made (libnats' threads) */
    unsigned ev_gen;           /* the attach read_ev and write_ev watch (set on the loop) */
    bool want_read, want_write, detached;
    struct event *read_ev, *write_ev;
};

/* Loop thread: the socket is readable or writable; libnats does the I/O. */
static void nats_loop_io(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct nats_loop *l = arg;
    if (what & EV_READ)
        natsConnection_ProcessReadEvent(l->nc);
    if (what & EV_WRITE)
        natsConnection_ProcessWriteEvent(l->nc);
}

/* Starts or stops watching with ev, when it watches the socket attached last (otherwise
 * the loop applies want_* when it re-points the events). Never waits. Lock held. */
static int nats_loop_watch(struct nats_loop *l, struct event *ev, bool on)
{
    if (l->detached || l->gen == 0 || l->ev_gen != l->gen)
        return 0;
    return on ? event_add(ev, NULL) : event_del_noblock(ev);
}

/* Loop thread: points the events at the socket attached last. No callback of theirs runs
 * now (this is the loop thread), so event_del returns at once. */
static void nats_loop_reattach(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct nats_loop *l = arg;
    pthread_mutex_lock(&l->lock);
    if (!l->detached && l->ev_gen != l->gen) {
        event_del(l->read_ev);
        event_del(l->write_ev);
        event_assign(l->read_ev, l->base, l->sock, EV_READ | EV_PERSIST, nats_loop_io, l);
        event_assign(l->write_ev, l->base, l->sock, EV_WRITE | EV_PERSIST, nats_loop_io, l);
        l->ev_gen = l->gen;
        nats_loop_watch(l, l->read_ev, l->want_read);
        nats_loop_watch(l, l->write_ev, l->want_write);
    }
    pthread_mutex_unlock(&l->lock);
}

/* libnats, after a connect or reconnect (any thread, connection locked). */
static natsStatus nats_loop_attach(void **userData, void *loop, natsConnection *nc,
                                   natsSock sock)
{
    struct nats_loop *l = loop;
    pthread_mutex_lock(&l->lock);
    if (l->gen != 0 && l->ev_gen == l->gen) {
        /* the old socket: not watched from now on (its number may come back) */
        event_del_noblock(l->read_ev);
        event_del_noblock(l->write_ev);
    }
    l->nc = nc;
    l->sock = sock;
    l->gen++;
    l->want_read = true;   /* as libnats expects of attach */
    l->want_write = false; /* libnats asks for writes when it has buffered some */
    pthread_mutex_unlock(&l->lock);
    event_active(l->attach_ev, EV_TIMEOUT, 0);
    *userData = l;
    return NATS_OK;
}

static natsStatus nats_loop_want(struct nats_loop *l, bool write, bool on)
{
    pthread_mutex_lock(&l->lock);
    if (write)
        l->want_write = on;
    else
        l->want_read = on;
    int rc = nats_loop_watch(l, write ? l->write_ev : l->read_ev, on);
    pthread_mutex_unlock(&l->lock);
    return rc == 0 ? NATS_OK : NATS_ERR;
}

/* libnats (any thread, connection locked): stops reading only when it gives the socket up. */
static natsStatus nats_loop_read(void *userData, bool add)
{
    struct nats_loop *l = userData;
    natsStatus s = nats_loop_want(l, false, add);
    if (!add && l->on_stop)
        l->on_stop(l->arg);
    return s;
}

static natsStatus nats_loop_write(void *userData, bool add)
{
    return nats_loop_want(userData, true, add);
}

/* libnats, when the connection is closed (the thread that closed it). */
static natsStatus nats_loop_detach(void *userData)
{
    struct nats_loop *l = userData;
    pthread_mutex_lock(&l->lock);
    l->detached = true;
    event_del_noblock(l->read_ev);
    event_del_noblock(l->write_ev);
    pthread_mutex_unlock(&l->lock);
    return NATS_OK;
}

struct nats_loop *nats_loop_new(struct event_base *base, void (*on_stop)(void *), void *arg)
{
    struct nats_loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->base = base;
    l->on_stop = on_stop;
    l->arg = arg;
    l->sock = -1; /* none yet */
    pthread_mutex_init(&l->lock, NULL);
    /* assigned their socket by nats_loop_reattach; never added before */
    l->read_ev = event_new(base, -1, 0, nats_loop_io, l);
    l->write_ev = event_new(base, -1, 0, nats_loop_io, l);
    l->attach_ev = event_new(base, -1, 0, nats_loop_reattach, l);
    if (!l->read_ev || !l->write_ev || !l->attach_ev) {
        nats_loop_free(l);
        return NULL;
    }
    return l;
}

natsStatus nats_loop_use(struct nats_loop *l, natsOptions *opts)
{
    return natsOptions_SetEventLoop(opts, l, nats_loop_attach, nats_loop_read,
                                    nats_loop_write, nats_loop_detach);
}

void nats_loop_free(struct nats_loop *l)
{
    if (!l)
        return;
    if (l->read_ev)
        event_free(l->read_ev);
    if (l->write_ev)
        event_free(l->write_ev);
    if (l->attach_ev)
        event_free(l->attach_ev);
    pthread_mutex_destroy(&l->lock);
    free(l);
}
