/* daemon/worker.c: a worker's life: its Lua state and handlers (loaded, initialised,
 * stopped), its event loop thread, and the helpers the bindings use (sending, socket choice,
 * broadcast lookup, protected calls under the instruction budget). The receive path itself
 * is in dispatch.c. */
#include "worker.h"

#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>
#include <lauxlib.h>
#include <lualib.h>

#include "addr.h"
#include "dispatch.h"
#include "errname.h"
#include "lbind.h"
#include "sendq.h"

enum { SENDQ_ITEMS = 1024, SENDQ_ARENA = 4 << 20 };

static const char worker_key = 'w';

struct worker *worker_of(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &worker_key);
    struct worker *w = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return w;
}

/* Message handler of every protected call: the error with a traceback. */
static int worker_traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg)
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static void worker_budget_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    struct worker *w = worker_of(L);
    w->budget_hit = 1;
    luaL_error(L, "handler ran past its budget of %d instructions", (int)w->cfg->handler_budget);
}

/* lua_pcall under the budget; on error leaves the message (with traceback) on the stack. */
static int worker_pcall(struct worker *w, int nargs)
{
    lua_State *L = w->L;
    long budget = w->cfg->handler_budget;
    w->budget_hit = 0;
    if (budget > 0)
        lua_sethook(L, worker_budget_hook, LUA_MASKCOUNT, budget > 0x7fffffff ? 0x7fffffff
                                                                              : (int)budget);
    int st = lua_pcall(L, nargs, 0, 1);
    if (budget > 0)
        lua_sethook(L, NULL, 0, 0);
    return st;
}

int worker_call(struct worker *w, struct wlistener *wl, int nargs, const char *what)
{
    if (worker_pcall(w, nargs) == LUA_OK)
        return 0;
    lua_State *L = w->L;
    if (wl) {
        lstats_add(wl->stats, LS_HANDLER_ERRORS, 1);
        if (w->budget_hit)
            lstats_add(wl->stats, LS_HANDLER_TIMEOUTS, 1);
    }
    unsigned suppressed = 0;
    struct ratelimit *rl = wl ? &wl->err_rl : &w->sq.err_rl;
    if (ratelimit_allow(rl, 10, &suppressed)) {
        const char *msg = lua_tostring(L, -1);
        if (suppressed)
            log_error(w->d->log, "listener '%s': %s error (%u more suppressed): %s",
                      wl ? wl->cfg->name : "-", what, suppressed, msg ? msg : "?");
        else
            log_error(w->d->log, "listener '%s': %s error: %s", wl ? wl->cfg->name : "-", what,
                      msg ? msg : "?");
    }
    lua_pop(L, 1);
    return -1;
}

/* ---- sending ---- */

int worker_send(struct worker *w, struct wsock *ws, const struct sockaddr *to, socklen_t tolen,
                const struct sockaddr_storage *from, unsigned ifindex, const void *data,
                size_t len)
{
    struct send_item it;
    it.fd = ws->fd;
    if (tolen > sizeof it.to)
        return EINVAL;
    memset(&it.to, 0, sizeof it.to);
    memcpy(&it.to, to, tolen);
    it.tolen = tolen;
    it.from = *from;
    it.ifindex = ifindex;
    it.data = data;
    it.len = len;
    int err = sendq_push(w, &it, ws->wl->stats);
    if (err)
        return err;
    if (!w->in_batch)
        sendq_flush(w);
    return 0;
}

void worker_flush(struct worker *w)
{
    sendq_flush(w);
}

static int worker_sock_reaches(const struct wsock *ws, const struct sockaddr *to)
{
    if (to->sa_family == AF_UNIX)
        return ws->family == AF_UNIX;
    if (to->sa_family == AF_INET6)
        return ws->family == AF_INET6;
    if (to->sa_family == AF_INET)
        return ws->family == AF_INET ||
               (ws->family == AF_INET6 && ws->entry->spec.dualstack);
    return 0;
}

/* The listener's unbound UDP socket of family, opened on first use. */
static struct wsock *worker_client_sock(struct wlistener *wl, int family, const char **err)
{
    struct wsock *ws = &wl->clients[family == AF_INET6];
    if (ws->fd >= 0)
        return ws;
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = errno_name(errno);
        return NULL;
    }
    ws->fd = fd;
    ws->family = family;
    return ws;
}

struct wsock *worker_sock_for(struct worker *w, const char *name, const struct sockaddr *to,
                              const char **err)
{
    for (size_t i = 0; i < w->nlisteners; i++) {
        struct wlistener *wl = &w->listeners[i];
        if (strcmp(wl->cfg->name, name) != 0)
            continue;
        struct wsock *other = NULL;
        for (size_t j = 0; j < wl->nsocks; j++) {
            struct wsock *ws = &wl->socks[j];
            if (!worker_sock_reaches(ws, to))
                continue;
            if (ws->entry->slot == w->slot)
                return ws;
            if (!other)
                other = ws;
        }
        if (other)
            return other;
        if (to->sa_family == AF_INET || to->sa_family == AF_INET6)
            return worker_client_sock(wl, to->sa_family, err);
        *err = "the listener has no socket of that address family";
        return NULL;
    }
    *err = "no such listener";
    return NULL;
}

/* ---- broadcast addresses ---- */

static void worker_refresh_bcasts(struct worker *w)
{
    struct ifaddrs *ifa, *p;
    w->nbcasts = 0;
    if (getifaddrs(&ifa) != 0)
        return;
    for (p = ifa; p && w->nbcasts < sizeof w->bcasts / sizeof w->bcasts[0]; p = p->ifa_next) {
        if (!(p->ifa_flags & IFF_BROADCAST) || !p->ifa_broadaddr ||
            p->ifa_broadaddr->sa_family != AF_INET)
            continue;
        w->bcasts[w->nbcasts++] = ((struct sockaddr_in *)p->ifa_broadaddr)->sin_addr.s_addr;
    }
    freeifaddrs(ifa);
}

int worker_is_bcast(struct worker *w, const struct dgram *d)
{
    if (!(d->has & DG_HAS_DST) || d->dst.ss_family != AF_INET)
        return 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (w->bcasts_at == 0 || now.tv_sec - w->bcasts_at >= 5) {
        worker_refresh_bcasts(w);
        w->bcasts_at = now.tv_sec ? now.tv_sec : 1;
    }
    return dgram_is_bcast((const struct sockaddr *)&d->dst, w->bcasts, w->nbcasts);
}

/* ---- set-up ---- */

/* The table handed to init: {name=, bind={...}, worker=, workers=}. */
static void worker_push_listener_info(struct worker *w, const struct listener_cfg *lc)
{
    lua_State *L = w->L;
    lua_createtable(L, 0, 4);
    lua_pushstring(L, lc->name);
    lua_setfield(L, -2, "name");
    lua_createtable(L, (int)lc->nbinds, 0);
    for (size_t i = 0; i < lc->nbinds; i++) {
        lua_pushstring(L, lc->bind_strs[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "bind");
    lua_pushinteger(L, w->slot + 1);
    lua_setfield(L, -2, "worker");
    lua_pushinteger(L, w->cfg->workers);
    lua_setfield(L, -2, "workers");
    lua_pushstring(L, w->cfg->dir);
    lua_setfield(L, -2, "config_dir");
}

/* Loads the handler module of wl and calls its init. */
static int worker_load_handler(struct worker *w, struct wlistener *wl, char *err, size_t errlen)
{
    lua_State *L = w->L;
    const struct listener_cfg *lc = wl->cfg;
    if (luaL_loadfilex(L, lc->handler_path, "t") != LUA_OK) {
        snprintf(err, errlen, "listener '%s': %s", lc->name, lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    if (lua_pcall(L, 0, 1, 1) != LUA_OK) {
        snprintf(err, errlen, "listener '%s': loading %s: %s", lc->name, lc->handler_path,
                 lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "listener '%s': %s must return a table of functions (got %s)",
                 lc->name, lc->handler_path, luaL_typename(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    if (lua_getfield(L, -1, "message") != LUA_TFUNCTION) {
        snprintf(err, errlen, "listener '%s': %s has no message function", lc->name,
                 lc->handler_path);
        lua_pop(L, 2);
        return -1;
    }
    wl->message_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (lua_getfield(L, -1, "error") == LUA_TFUNCTION)
        wl->error_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    else
        lua_pop(L, 1);
    lua_pushvalue(L, -1);
    wl->module_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    wl->msg = msg_new(L, wl);
    wl->msg_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (lua_getfield(L, -1, "init") == LUA_TFUNCTION) {
        worker_push_listener_info(w, lc);
        config_push_options(w->cfg, lc, L);
        if (worker_pcall(w, 2) != LUA_OK) {
            snprintf(err, errlen, "listener '%s': init: %s", lc->name, lua_tostring(L, -1));
            lua_pop(L, 2);
            return -1;
        }
    } else {
        lua_pop(L, 1);
    }
    lua_pop(L, 1); /* module */
    return 0;
}

/* Collects every socket of listener wl (all slots: other workers' are used for sending). */
static int worker_attach_sockets(struct worker *w, struct wlistener *wl)
{
    const struct sockset *s = w->socks;
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].listener, wl->cfg->name) == 0)
            n++;
    wl->socks = calloc(n ? n : 1, sizeof *wl->socks);
    if (!wl->socks)
        return -1;
    for (size_t i = 0; i < s->n; i++) {
        const struct sock_entry *e = &s->v[i];
        if (strcmp(e->listener, wl->cfg->name) != 0)
            continue;
        struct wsock *ws = &wl->socks[wl->nsocks++];
        ws->wl = wl;
        ws->entry = e;
        ws->fd = e->fd;
        ws->family = e->spec.addr.ss_family;
        struct sockaddr_storage local;
        socklen_t len = sizeof local;
        if (e->spec.kind != SOCK_KIND_RAW &&
            getsockname(e->fd, (struct sockaddr *)&local, &len) == 0)
            ws->local_port = (uint16_t)addr_port((struct sockaddr *)&local);
        if (e->slot == w->slot) {
            ws->ev = event_new(w->base, e->fd, EV_READ | EV_PERSIST, dispatch_readable, ws);
            if (!ws->ev)
                return -1;
        }
    }
    return 0;
}

static int worker_reads(const struct wlistener *wl)
{
    for (size_t i = 0; i < wl->nsocks; i++)
        if (wl->socks[i].ev)
            return 1;
    return 0;
}

struct worker *worker_create(const struct daemon_shared *d, const struct config *cfg,
                             const struct sockset *socks, int slot, char *err, size_t errlen)
{
    struct worker *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->d = d;
    w->cfg = cfg;
    w->slot = slot;
    w->socks = socks;
    w->stopped = 1; /* until handlers are initialised there is nothing to stop */
    char *path = NULL;
    w->base = event_base_new();
    w->L = luaL_newstate();
    if (!w->base || !w->L || sendq_init(&w->sq, SENDQ_ITEMS, SENDQ_ARENA) != 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    lua_State *L = w->L;
    luaL_openlibs(L);
    lbind_preload(L);
    lua_pushlightuserdata(L, w);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &worker_key);
    path = config_package_path(cfg);
    if (!path) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    lua_getglobal(L, "package");
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    lua_settop(L, 0);
    lua_pushcfunction(L, worker_traceback); /* stays at index 1 */

    w->listeners = calloc(cfg->nlisteners, sizeof *w->listeners);
    if (!w->listeners) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        struct wlistener *wl = &w->listeners[w->nlisteners++];
        wl->w = w;
        wl->cfg = &cfg->listeners[i];
        wl->module_ref = wl->message_ref = wl->error_ref = wl->msg_ref = LUA_NOREF;
        wl->stats = stats_listener(d->stats, wl->cfg->name, slot);
        for (int c = 0; c < 2; c++) {
            wl->clients[c].fd = -1;
            wl->clients[c].wl = wl;
        }
        if (!wl->stats || worker_attach_sockets(w, wl) != 0) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    w->stopped = 0;
    for (size_t i = 0; i < w->nlisteners; i++) {
        struct wlistener *wl = &w->listeners[i];
        if (!worker_reads(wl))
            continue; /* another worker reads it: no handler here */
        if (recv_ring_init(&wl->ring, wl->cfg->batch, wl->cfg->size) != 0) {
            snprintf(err, errlen, "listener '%s': out of memory for %u x %zu byte buffers",
                     wl->cfg->name, wl->cfg->batch, wl->cfg->size);
            goto fail;
        }
        if (worker_load_handler(w, wl, err, errlen) != 0)
            goto fail;
    }
    free(path);
    return w;
fail:
    free(path);
    worker_destroy(w);
    return NULL;
}

/* Calls every handler's stop, once. */
static void worker_call_stops(struct worker *w)
{
    if (w->stopped || !w->L)
        return;
    w->stopped = 1;
    lua_State *L = w->L;
    for (size_t i = 0; i < w->nlisteners; i++) {
        struct wlistener *wl = &w->listeners[i];
        if (wl->module_ref == LUA_NOREF)
            continue;
        lua_rawgeti(L, LUA_REGISTRYINDEX, wl->module_ref);
        if (lua_getfield(L, -1, "stop") == LUA_TFUNCTION) {
            lua_remove(L, -2);
            worker_call(w, wl, 0, "stop");
        } else {
            lua_pop(L, 2);
        }
    }
    sendq_flush(w);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (size_t i = 0; i < w->nlisteners; i++)
        for (size_t j = 0; j < w->listeners[i].nsocks; j++)
            if (w->listeners[i].socks[j].ev)
                event_add(w->listeners[i].socks[j].ev, NULL);
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    worker_call_stops(w);
    return NULL;
}

int worker_start(struct worker *w, char *err, size_t errlen)
{
    /* Signals go to the main thread only. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start worker %d: %s", w->slot + 1, strerror(rc));
        return -1;
    }
    w->running = 1;
    return 0;
}

void worker_stop(struct worker *w)
{
    if (!w->running)
        return;
    event_base_loopexit(w->base, NULL);
    pthread_join(w->thread, NULL);
    w->running = 0;
}

void worker_destroy(struct worker *w)
{
    if (!w)
        return;
    worker_stop(w);
    if (w->base && w->L)
        worker_call_stops(w);
    for (size_t i = 0; i < w->nlisteners; i++) {
        struct wlistener *wl = &w->listeners[i];
        for (size_t j = 0; j < wl->nsocks; j++)
            if (wl->socks[j].ev)
                event_free(wl->socks[j].ev);
        free(wl->socks);
        for (int c = 0; c < 2; c++)
            if (wl->clients[c].fd >= 0)
                close(wl->clients[c].fd);
        if (wl->ring.recs)
            recv_ring_free(&wl->ring);
    }
    if (w->L)
        lua_close(w->L); /* timers' __gc free their events: before the base goes */
    sendq_free(&w->sq, w->d->log);
    free(w->listeners);
    if (w->base)
        event_base_free(w->base);
    free(w);
}
