/* daemon/worker.c: a worker's life: its Lua state and handlers (loaded, initialised,
 * stopped), its event loop thread, and the helpers the bindings use (sending, socket choice,
 * broadcast lookup, protected calls under the instruction budget). The receive path itself
 * is in dispatch.c. */
#include "worker.h"

#include <errno.h>
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
#include "ifaddr.h"
#include "lalloc.h"
#include "lbind.h"
#include "sandbox.h"
#include "sendq.h"
#include "watchdog.h"

enum { SENDQ_ITEMS = 1024, SENDQ_ARENA = 4 << 20, BUDGET_STEP = 1000 };

static const char worker_key = 'w';
static const char wlistener_key = 'l';

struct worker *worker_of(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &worker_key);
    struct worker *w = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return w;
}

struct wlistener *wlistener_of(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &wlistener_key);
    struct wlistener *wl = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return wl;
}

/* An error outside any protected call (a bug of ours): said on stderr before Lua aborts, as
 * luaL_newstate's panic function does. */
static int worker_panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "luadgramd: PANIC: unprotected error in call to Lua API (%s)\n",
            msg ? msg : "error object is not a string");
    return 0;
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

/* The thread-local pointer below is the one piece of state outside the worker's struct: a
 * signal handler gets no argument, so the watchdog's signal finds the worker whose call it
 * interrupts here. Set only around a protected call, on the thread making it. */
static _Thread_local struct worker *worker_signal_target;

/* The hook: the instruction budget (handler_budget) and the stop of a call the watchdog
 * found past handler_timeout. With a budget it is set on the main state before any script
 * runs and never removed, so coroutines (which copy their creator's hook) are counted too;
 * without one the main state runs hook-free until the watchdog's signal sets it, and each
 * coroutine gets it when created (worker_co_create), checking every BUDGET_STEP
 * instructions. It acts only inside worker_pcall. Once a call is to stop, every further
 * instruction of the thread raises, so a handler cannot catch the error (pcall,
 * coroutine.resume) and go on running. */
static void worker_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    struct worker *w = worker_of(L);
    if (!w || !w->in_call)
        return;
    int step = lua_gethookcount(L);
    if (w->timed_out) {
        if (step != 1)
            lua_sethook(L, worker_hook, LUA_MASKCOUNT, 1);
        luaL_error(L, "handler ran past its time limit of %s s", w->timeout_text);
    }
    if (w->budget_step <= 0) {
        if (step != BUDGET_STEP) /* a coroutine left at 1 by an earlier call */
            lua_sethook(L, worker_hook, LUA_MASKCOUNT, BUDGET_STEP);
        return;
    }
    w->budget_left -= step;
    if (w->budget_left > 0) {
        if (step != w->budget_step) /* a thread left at 1 by an earlier call */
            lua_sethook(L, worker_hook, LUA_MASKCOUNT, w->budget_step);
        return;
    }
    w->budget_hit = 1;
    if (step != 1)
        lua_sethook(L, worker_hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "handler ran past its budget of %I instructions",
               (lua_Integer)w->cfg->handler_budget);
}

/* WATCHDOG_SIGNAL, on the thread running a call: if it is still the call the watchdog
 * timed, sets the hook on the running state's main thread at every instruction (Lua allows
 * lua_sethook in a signal handler; lua.c does the same for SIGINT). A coroutine running now
 * stops at its next hook call. */
static void worker_watchdog_expired(void *arg)
{
    struct worker *w = arg;
    if (!w || !watchdog_expired(&w->wd))
        return;
    w->timed_out = 1;
    lua_sethook(w->cur_L, worker_hook, LUA_MASKCOUNT, 1);
}

static void worker_on_watchdog(int sig, siginfo_t *si, void *uctx)
{
    (void)sig;
    (void)si;
    (void)uctx;
    worker_watchdog_expired(worker_signal_target);
}

/* Gives the next handler call its full budget and time: called before each datagram when
 * several are handled inside one protected call (dispatch.c). */
void worker_call_next(struct worker *w)
{
    watchdog_next(&w->wd);
    if (w->budget_step > 0) { /* restarts the main thread's count */
        w->budget_hit = 0;
        w->budget_left = w->cfg->handler_budget;
        lua_sethook(w->cur_L, worker_hook, LUA_MASKCOUNT, w->budget_step);
    }
}

/* lua_pcall on state ls under the budget and the time limit; on error leaves the message
 * (with traceback) on the stack and sets call_stopped when the budget or the watchdog
 * stopped it. */
static int worker_pcall(struct worker *w, struct lstate *ls, int nargs, int nresults)
{
    lua_State *L = ls->L;
    struct worker *outer = worker_signal_target;
    lua_State *outer_L = w->cur_L;
    w->cur_L = L;
    worker_call_next(w);
    w->in_call = 1;
    worker_signal_target = w;
    watchdog_enter(&w->wd);
    int st = lua_pcall(L, nargs, nresults, 1);
    watchdog_leave(&w->wd);
    worker_signal_target = outer;
    w->cur_L = outer_L;
    w->in_call = 0;
    w->call_stopped = w->budget_hit || w->timed_out;
    w->budget_hit = 0;
    if (w->timed_out) { /* back to the hook the state runs with */
        w->timed_out = 0;
        if (w->budget_step > 0)
            lua_sethook(L, worker_hook, LUA_MASKCOUNT, w->budget_step);
        else
            lua_sethook(L, NULL, 0, 0);
    }
    return st;
}

/* The memory gauge of wl's state (luadgramd_lua_memory_bytes). */
static void worker_memory_gauge(struct wlistener *wl)
{
    atomic_store_explicit(&wl->stats->lua_bytes, (uint_fast64_t)lalloc_used(wl->st->pool),
                          memory_order_relaxed);
}

/* After a call stopped by a limit: a full collection, what it freed given back to the
 * system, and a state still over 80 % of its cap scheduled for a rebuild. */
static void worker_after_stop(struct wlistener *wl)
{
    struct lstate *st = wl->st;
    lua_gc(st->L, LUA_GCCOLLECT, 0);
    lalloc_trim(st->pool);
    worker_memory_gauge(wl);
    if (wl->mem_limit && lalloc_used(st->pool) > wl->mem_limit / 5 * 4 && wl->rebuild_ev)
        event_active(wl->rebuild_ev, 0, 0);
}

int worker_call(struct worker *w, struct wlistener *wl, int nargs, const char *what)
{
    struct lstate *st = wl->st;
    unsigned long refused = lalloc_refused(st->pool);
    st->where[0] = '\0';
    int status = worker_pcall(w, st, nargs, 0);
    worker_memory_gauge(wl); /* one store per call (a whole batch of datagrams) */
    if (status == LUA_OK)
        return 0;
    lua_State *L = st->L;
    int memory = lalloc_refused(st->pool) != refused;
    if (strcmp(what, "timer") != 0) {
        lstats_add(wl->stats, LS_HANDLER_ERRORS, 1);
        if (w->call_stopped)
            lstats_add(wl->stats, LS_HANDLER_TIMEOUTS, 1);
    }
    if (memory)
        lstats_add(wl->stats, LS_HANDLER_MEMORY_ERRORS, 1);
    unsigned suppressed = 0;
    if (ratelimit_allow(&wl->err_rl, 10, &suppressed)) {
        const char *msg = lua_tostring(L, -1);
        char more[48] = "", cap[224] = "";
        if (suppressed)
            snprintf(more, sizeof more, " (%u more suppressed)", suppressed);
        if (memory)
            snprintf(cap, sizeof cap, " (handler_memory of %zu bytes reached at %s)",
                     wl->mem_limit, st->where[0] ? st->where : "?");
        log_error(w->d->log, "listener '%s': %s error%s: %s%s", wl->cfg->name, what, more,
                  msg ? msg : "?", cap);
    }
    lua_pop(L, 1);
    if (w->call_stopped || memory)
        worker_after_stop(wl);
    return -1;
}

/* ---- sending ---- */

int worker_send(struct worker *w, struct wsock *ws, const struct sockaddr *to, socklen_t tolen,
                const struct sockaddr_storage *from, unsigned ifindex, const void *data,
                size_t len)
{
    if ((size_t)tolen > sizeof(struct sockaddr_storage)) /* a negative int socklen_t too */
        return EINVAL;
    int err;
    struct send_item *it = sendq_reserve(w, len, ws->wl->stats, &err);
    if (!it)
        return err;
    it->fd = ws->fd;
    it->family = ws->family; /* known: no getsockopt per flush */
    memcpy(&it->to, to, tolen);
    it->tolen = tolen;
    /* Only the family's own bytes: send_batch reads no more of them. */
    if (from->ss_family == AF_INET)
        memcpy(&it->from, from, sizeof(struct sockaddr_in));
    else if (from->ss_family == AF_INET6)
        memcpy(&it->from, from, sizeof(struct sockaddr_in6));
    else
        it->from.ss_family = from->ss_family;
    it->ifindex = ifindex;
    memcpy((uint8_t *)it->data, data, len);
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

static void worker_refresh_bcasts(struct worker *w, int64_t now_sec)
{
    w->nbcasts = ifaddr_bcasts(w->bcasts, sizeof w->bcasts / sizeof w->bcasts[0]);
    w->bcasts_at = now_sec ? now_sec : 1;
}

/* The loop's watch said addresses changed: the list is re-read at its next use. */
static void worker_on_ifaddr(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    if (ifaddr_watch_changed(w->ifaddrs))
        w->bcasts_at = 0;
}

/* With a watch the list is re-read when an address was added or removed: the pending
 * notices are taken here, before the answer, so a datagram to a broadcast address added
 * just before it was sent is seen as one (the loop's event may not have run yet); without
 * one, every 5 seconds. */
int worker_is_bcast(struct worker *w, const struct dgram *d)
{
    if (!(d->has & DG_HAS_DST) || d->dst.ss_family != AF_INET)
        return 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int stale = w->bcasts_at == 0 ||
                (w->ifaddrs ? ifaddr_watch_changed(w->ifaddrs) : now.tv_sec - w->bcasts_at >= 5);
    if (stale)
        worker_refresh_bcasts(w, now.tv_sec);
    return dgram_is_bcast((const struct sockaddr *)&d->dst, w->bcasts, w->nbcasts);
}

/* ---- set-up ---- */

/* The table handed to init: {name=, bind={...}, worker=, workers=}. */
static void worker_push_listener_info(struct worker *w, lua_State *L,
                                      const struct listener_cfg *lc)
{
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

/* The cap's callback, inside the allocator: notes where the first refused allocation of
 * the call was (the innermost Lua function of the state's main thread; lua_getstack and
 * lua_getinfo "Sl" allocate nothing). */
static void worker_on_limit(void *arg)
{
    struct lstate *st = arg;
    if (st->where[0] || !st->L)
        return;
    lua_Debug ar;
    for (int level = 0; lua_getstack(st->L, level, &ar); level++)
        if (lua_getinfo(st->L, "Sl", &ar) && ar.currentline > 0) {
            snprintf(st->where, sizeof st->where, "%s:%d", ar.short_src, ar.currentline);
            return;
        }
}

/* Protected: t[k] for the table at 1 and the key at 2 (may run an __index metamethod). */
static int worker_index_p(lua_State *L)
{
    lua_gettable(L, 1);
    return 1;
}

/* Pushes module[name] and returns its type; nil when reading it raises (a "strict" module
 * that raises on a missing field has no such function). Runs inside a protected call. */
static int worker_field(lua_State *L, int module, const char *name)
{
    module = lua_absindex(L, module);
    lua_pushcfunction(L, worker_index_p);
    lua_pushvalue(L, module);
    lua_pushstring(L, name);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
    return lua_type(L, -1);
}

/* Protected (under the budget): loads the handler module of the wlistener given as light
 * userdata, keeps references to it, its functions and its message object, calls its init. */
static int worker_load_p(lua_State *L)
{
    struct lstate *st = lua_touserdata(L, 1);
    struct wlistener *wl = st->wl;
    struct worker *w = wl->w;
    const struct listener_cfg *lc = wl->cfg;
    if (luaL_loadfilex(L, lc->handler_path, "t") != LUA_OK)
        return lua_error(L);
    w->load_stage = "loading";
    lua_call(L, 0, 1);
    w->load_stage = "";
    if (!lua_istable(L, -1))
        return luaL_error(L, "%s must return a table of functions (got %s)", lc->handler_path,
                          luaL_typename(L, -1));
    int module = lua_gettop(L);
    if (worker_field(L, module, "message") != LUA_TFUNCTION)
        return luaL_error(L, "%s has no message function", lc->handler_path);
    st->message_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (worker_field(L, module, "error") == LUA_TFUNCTION)
        st->error_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    else
        lua_pop(L, 1);
    lua_pushvalue(L, module);
    st->module_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    st->msg = msg_new(L, wl);
    st->msg_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (worker_field(L, module, "init") == LUA_TFUNCTION) {
        worker_push_listener_info(w, L, lc);
        /* No cap while copying: an error raised there would leave the config's lock held. */
        lalloc_set_limit(st->pool, 0, NULL, NULL);
        config_push_options(w->cfg, lc, L);
        lalloc_set_limit(st->pool, wl->mem_limit, worker_on_limit, st);
        w->load_stage = "init";
        lua_call(L, 2, 0);
    }
    return 0;
}

/* Loads the handler module of wl into state st and calls its init. */
static int worker_load_handler(struct worker *w, struct wlistener *wl, struct lstate *st,
                               char *err, size_t errlen)
{
    lua_State *L = st->L;
    const struct listener_cfg *lc = wl->cfg;
    w->load_stage = "";
    lua_pushcfunction(L, worker_load_p);
    lua_pushlightuserdata(L, st);
    if (worker_pcall(w, st, 1, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (strcmp(w->load_stage, "loading") == 0)
            snprintf(err, errlen, "listener '%s': loading %s: %s", lc->name, lc->handler_path,
                     msg ? msg : "?");
        else if (strcmp(w->load_stage, "init") == 0) /* options: name the listen's line */
            snprintf(err, errlen, "%s:%d: listener '%s': init: %s", w->cfg->file, lc->line,
                     lc->name, msg ? msg : "?");
        else if (w->load_stage[0])
            snprintf(err, errlen, "listener '%s': %s: %s", lc->name, w->load_stage,
                     msg ? msg : "?");
        else
            snprintf(err, errlen, "listener '%s': %s", lc->name, msg ? msg : "?");
        lua_pop(L, 1);
        return -1;
    }
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
        ws->last_ovfl = e->last_ovfl;
        struct sockaddr_storage local;
        socklen_t len = sizeof local;
        if (e->spec.kind != SOCK_KIND_RAW &&
            getsockname(e->fd, (struct sockaddr *)&local, &len) == 0) {
            ws->local_port = (uint16_t)addr_port((struct sockaddr *)&local);
            ws->bound_unicast = addr_is_unicast((struct sockaddr *)&local);
        }
        if (e->slot == w->slot) {
            ws->ev = event_new(w->base, e->fd, EV_READ | EV_PERSIST, dispatch_readable, ws);
            ws->poll_ev = event_new(w->base, -1, 0, dispatch_poll, ws);
            if (!ws->ev || !ws->poll_ev)
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

/* coroutine.create and coroutine.wrap as the worker's handlers see them: the library's own,
 * then the hook set on the new coroutine, which otherwise (no budget: no hook on the main
 * state to copy) nothing would stop past the time limit. Upvalues: the library's function,
 * the worker. */
static int worker_co_create(lua_State *L)
{
    struct worker *w = lua_touserdata(L, lua_upvalueindex(2));
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    lua_State *co = lua_tothread(L, -1);
    if (!co && lua_getupvalue(L, -1, 1)) { /* wrap: the coroutine is its upvalue */
        co = lua_tothread(L, -1);
        lua_pop(L, 1);
    }
    if (co)
        lua_sethook(co, worker_hook, LUA_MASKCOUNT,
                    w->budget_step > 0 ? w->budget_step : BUDGET_STEP);
    return 1;
}

/* The message handler xpcall is given: the handler's own, but not while the call is being
 * stopped. An error raised by the hook runs the message handler with hooks off (Lua's rule
 * for hooks), so a message handler that loops could not be stopped. Upvalues: the
 * handler's message handler, the worker. */
static int worker_msgh_guard(lua_State *L)
{
    struct worker *w = lua_touserdata(L, lua_upvalueindex(2));
    if (w->in_call && (w->timed_out || w->budget_hit))
        return lua_gettop(L) > 0 ? 1 : 0; /* the error as it is */
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int worker_xpcall_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    return lua_gettop(L);
}

/* xpcall(f, msgh, ...) as the worker's handlers see it: the library's, with msgh guarded.
 * Upvalues: the library's xpcall, the worker. */
static int worker_xpcall(lua_State *L)
{
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushcclosure(L, worker_msgh_guard, 2);
    lua_replace(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_callk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, worker_xpcall_k);
    return lua_gettop(L);
}

/* Puts the wrappers above in place of coroutine.create, coroutine.wrap and xpcall (after
 * luaL_openlibs, before any script runs). */
static void worker_watch_coroutines(lua_State *L, struct worker *w)
{
    lua_getglobal(L, "coroutine");
    static const char *const names[] = {"create", "wrap"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        lua_getfield(L, -1, names[i]);
        lua_pushlightuserdata(L, w);
        lua_pushcclosure(L, worker_co_create, 2);
        lua_setfield(L, -2, names[i]);
    }
    lua_pop(L, 1);
    lua_getglobal(L, "xpcall");
    lua_pushlightuserdata(L, w);
    lua_pushcclosure(L, worker_xpcall, 2);
    lua_setglobal(L, "xpcall");
}

/* The watchdog of handler_timeout, and the handler of its signal (process-wide, the same
 * for every worker: it finds its worker through worker_signal_target). */
static int worker_watchdog_start(struct worker *w, char *err, size_t errlen)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = worker_on_watchdog;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(WATCHDOG_SIGNAL, &sa, NULL) != 0) {
        snprintf(err, errlen, "cannot set the handler watchdog's signal: %s", strerror(errno));
        return -1;
    }
    w->wd.on_expire = worker_watchdog_expired; /* Windows: called with the owner suspended */
    w->wd.expire_arg = w;
    return watchdog_start(&w->wd, w->cfg->handler_timeout, err, errlen);
}

/* Closes a state (its finalizers run: timers free their events) and frees its memory. */
static void worker_state_close(struct lstate *st)
{
    if (!st)
        return;
    if (st->L)
        lua_close(st->L);
    lalloc_free(st->pool);
    free(st);
}

/* A new state for wl: allocator and cap, libraries, the worker's wrappers, the sandbox,
 * the handler loaded and its init called. NULL with err set on failure. */
static struct lstate *worker_state_open(struct worker *w, struct wlistener *wl, char *err,
                                        size_t errlen)
{
    struct lstate *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    st->wl = wl;
    st->module_ref = st->message_ref = st->error_ref = st->msg_ref = LUA_NOREF;
    /* The state's memory comes from a pool of its own (lalloc.c): no malloc per datagram. */
    st->pool = lalloc_new();
    st->L = st->pool ? lua_newstate(lalloc_fn, st->pool) : NULL;
    if (!st->L) {
        snprintf(err, errlen, "out of memory");
        worker_state_close(st);
        return NULL;
    }
    lalloc_set_limit(st->pool, wl->mem_limit, worker_on_limit, st);
    lua_State *L = st->L;
    lua_atpanic(L, worker_panic);
    luaL_openlibs(L);
    lbind_preload(L);
    lua_pushlightuserdata(L, w);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &worker_key);
    lua_pushlightuserdata(L, wl);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &wlistener_key);
    /* The budget hook, before any script runs: every coroutine inherits it. */
    if (w->budget_step > 0)
        lua_sethook(L, worker_hook, LUA_MASKCOUNT, w->budget_step);
    if (w->budget_step > 0 || w->cfg->handler_timeout > 0)
        worker_watch_coroutines(L, w);
    lua_getglobal(L, "package");
    lua_pushstring(L, w->package_path);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    sandbox_apply(L, wl->cfg->unsafe);
    lua_settop(L, 0);
    lua_pushcfunction(L, worker_traceback); /* stays at index 1 */
    if (worker_load_handler(w, wl, st, err, errlen) != 0) {
        worker_state_close(st);
        return NULL;
    }
    lua_gc(L, LUA_GCCOLLECT, 0); /* what loading left behind, before the gauge reads it */
    return st;
}

/* Calls the stop of the handler in state st, if it has one. */
static void worker_state_stop(struct worker *w, struct wlistener *wl, struct lstate *st)
{
    if (st->module_ref == LUA_NOREF)
        return;
    struct lstate *cur = wl->st;
    wl->st = st; /* worker_call runs on wl->st */
    lua_State *L = st->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, st->module_ref);
    if (worker_field(L, -1, "stop") == LUA_TFUNCTION) {
        lua_remove(L, -2);
        worker_call(w, wl, 0, "stop");
    } else {
        lua_pop(L, 2);
    }
    wl->st = cur;
}

/* From the loop, when wl's state stayed over 80 % of handler_memory after a full
 * collection: a new state built from the scripts and initialised beside the old one (as a
 * reload does), then the old one's stop and close. If the new one cannot be built, the old
 * one stays (logged). */
static void worker_rebuild(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wlistener *wl = arg;
    struct worker *w = wl->w;
    struct lstate *old = wl->st;
    size_t held = lalloc_used(old->pool);
    char err[512];
    struct lstate *st = worker_state_open(w, wl, err, sizeof err);
    if (!st) {
        log_error(w->d->log, "listener '%s': cannot rebuild its Lua state (%zu bytes held, over "
                  "80%% of handler_memory %zu), keeping it: %s", wl->cfg->name, held,
                  wl->mem_limit, err);
        return;
    }
    worker_state_stop(w, wl, old);
    sendq_flush(w);
    worker_state_close(old);
    wl->st = st;
    lalloc_trim(st->pool);
    worker_memory_gauge(wl);
    lstats_add(wl->stats, LS_HANDLER_RESTARTS, 1);
    log_warn(w->d->log, "listener '%s': Lua state rebuilt from %s: it held %zu bytes after a "
             "full collection, over 80%% of handler_memory %zu", wl->cfg->name,
             wl->cfg->handler_path, held, wl->mem_limit);
}

/* The listener's rate limit table in this worker, its hash keyed from the system's random
 * source (so that its chains cannot be predicted from outside). */
static int worker_limit_open(struct wlistener *wl, char *err, size_t errlen)
{
    uint64_t seed = 0;
    if (getentropy(&seed, sizeof seed) != 0)
        seed = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)wl << 17);
    wl->limit = peerlimit_new(wl->cfg->ratelimit, seed);
    if (!wl->limit) {
        snprintf(err, errlen, "listener '%s': out of memory for a ratelimit table of %u "
                 "peers (%zu bytes)", wl->cfg->name, (unsigned)wl->cfg->ratelimit->peers,
                 peerlimit_memory(wl->cfg->ratelimit->peers));
        return -1;
    }
    return 0;
}

/* The loop turned: stamps the time for the main thread's liveness check (sdwatch.c). */
static void worker_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    atomic_store_explicit(&w->loop_turned_ns, monotonic_ns(), memory_order_relaxed);
}

long long worker_loop_turned_ns(struct worker *w)
{
    return atomic_load_explicit(&w->loop_turned_ns, memory_order_relaxed);
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
    w->base = event_base_new();
    w->package_path = config_package_path(cfg);
    if (!w->base || !w->package_path || sendq_init(&w->sq, SENDQ_ITEMS, SENDQ_ARENA) != 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    w->budget_step = cfg->handler_budget <= 0 ? 0
                     : cfg->handler_budget < BUDGET_STEP ? (int)cfg->handler_budget
                                                         : BUDGET_STEP;
    snprintf(w->timeout_text, sizeof w->timeout_text, "%g", cfg->handler_timeout);
    atomic_init(&w->loop_turned_ns, monotonic_ns());
    if (d->heartbeat_ns > 0) {
        w->heartbeat_ev = event_new(w->base, -1, EV_PERSIST, worker_heartbeat, w);
        if (!w->heartbeat_ev) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    if (cfg->handler_timeout > 0 && worker_watchdog_start(w, err, errlen) != 0)
        goto fail;

    w->ifaddrs = ifaddr_watch_open(); /* NULL: msg.bcast re-reads every 5 s instead */
    if (w->ifaddrs && ifaddr_watch_fd(w->ifaddrs) >= 0) { /* else its notices need no loop */
        w->ifaddrs_ev = event_new(w->base, ifaddr_watch_fd(w->ifaddrs), EV_READ | EV_PERSIST,
                                  worker_on_ifaddr, w);
        if (!w->ifaddrs_ev || event_add(w->ifaddrs_ev, NULL) != 0) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }

    w->listeners = calloc(cfg->nlisteners, sizeof *w->listeners);
    if (!w->listeners) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        struct wlistener *wl = &w->listeners[w->nlisteners++];
        wl->w = w;
        wl->cfg = &cfg->listeners[i];
        long long cap = config_handler_memory(cfg, wl->cfg);
        wl->mem_limit = cap > 0 ? (size_t)cap : 0;
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
        if (wl->cfg->ratelimit && worker_limit_open(wl, err, errlen) != 0)
            goto fail;
        wl->rebuild_ev = event_new(w->base, -1, 0, worker_rebuild, wl);
        if (!wl->rebuild_ev) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        wl->st = worker_state_open(w, wl, err, errlen);
        if (!wl->st)
            goto fail;
        worker_memory_gauge(wl);
    }
    w->socks = NULL; /* the caller's set: read only while creating */
    return w;
fail:
    worker_destroy(w);
    return NULL;
}

/* Calls every handler's stop, once. */
static void worker_call_stops(struct worker *w)
{
    if (w->stopped)
        return;
    w->stopped = 1;
    for (size_t i = 0; i < w->nlisteners; i++) {
        struct wlistener *wl = &w->listeners[i];
        if (wl->st)
            worker_state_stop(w, wl, wl->st);
    }
    sendq_flush(w);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    /* Every signal is blocked here (the main thread's) but the watchdog's. */
    sigset_t wds;
    sigemptyset(&wds);
    sigaddset(&wds, WATCHDOG_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &wds, NULL);
    watchdog_set_owner(&w->wd);
    if (w->heartbeat_ev) {
        long long p = w->d->heartbeat_ns;
        struct timeval tv = {(time_t)(p / 1000000000LL), (suseconds_t)(p % 1000000000LL / 1000)};
        atomic_store_explicit(&w->loop_turned_ns, monotonic_ns(), memory_order_relaxed);
        event_add(w->heartbeat_ev, &tv);
    }
    for (size_t i = 0; i < w->nlisteners; i++)
        for (size_t j = 0; j < w->listeners[i].nsocks; j++)
            if (w->listeners[i].socks[j].ev && !w->paused) /* paused: init's sends blocked */
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
    watchdog_set_owner(&w->wd); /* what is called now runs here */
}

void worker_destroy(struct worker *w)
{
    if (!w)
        return;
    worker_stop(w);
    if (w->base)
        worker_call_stops(w);
    /* Before the listeners' sockets go: finalizers (__gc) may still send, and timers' __gc
     * free their events (the base must still be there). */
    for (size_t i = 0; i < w->nlisteners; i++) {
        worker_state_close(w->listeners[i].st);
        w->listeners[i].st = NULL;
        if (w->listeners[i].rebuild_ev)
            event_free(w->listeners[i].rebuild_ev);
    }
    watchdog_stop(&w->wd);
    if (w->heartbeat_ev)
        event_free(w->heartbeat_ev);
    for (size_t i = 0; i < w->nlisteners; i++) {
        struct wlistener *wl = &w->listeners[i];
        for (size_t j = 0; j < wl->nsocks; j++) {
            if (wl->socks[j].ev)
                event_free(wl->socks[j].ev);
            if (wl->socks[j].poll_ev)
                event_free(wl->socks[j].poll_ev);
        }
        free(wl->socks);
        for (int c = 0; c < 2; c++)
            if (wl->clients[c].fd >= 0)
                close(wl->clients[c].fd);
        if (wl->ring.recs)
            recv_ring_free(&wl->ring);
        peerlimit_free(wl->limit);
    }
    sendq_free(&w->sq, w->d->log);
    if (w->ifaddrs_ev)
        event_free(w->ifaddrs_ev);
    ifaddr_watch_close(w->ifaddrs);
    free(w->listeners);
    free(w->package_path);
    if (w->base)
        event_base_free(w->base);
    free(w);
}
