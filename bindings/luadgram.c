/* bindings/luadgram.c: the `luadgram` module handlers require: send, after, every, now, log,
 * counters, and the publishers of publish.c. Timers are libevent timers of the worker's loop,
 * owned by a userdata that the registry keeps alive while the timer is armed (one luaL_ref,
 * one luaL_unref). */
#include "lbind.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <event2/event.h>
#include <lauxlib.h>

#include "addr.h"
#include "errname.h"
#include "worker.h"

#define TIMER_META "luadgram.timer"
#define COUNTER_META "luadgram.counter"

/* ---- luadgram.send(listener, addr, data) ---- */

static int ld_send(lua_State *L)
{
    const char *listener = luaL_checkstring(L, 1);
    const char *to = luaL_checkstring(L, 2);
    size_t len;
    const char *data = luaL_checklstring(L, 3, &len);
    struct worker *w = worker_of(L);
    struct sockaddr_storage sa;
    socklen_t salen;
    char err[256];
    if (addr_parse_peer(to, &sa, &salen, err, sizeof err) != 0) {
        luaL_pushfail(L);
        lua_pushstring(L, err);
        return 2;
    }
    const char *why = NULL;
    struct wsock *ws = worker_sock_for(w, listener, (const struct sockaddr *)&sa, &why);
    if (!ws) {
        luaL_pushfail(L);
        lua_pushstring(L, why);
        return 2;
    }
    struct sockaddr_storage from;
    memset(&from, 0, sizeof from);
    from.ss_family = AF_UNSPEC;
    int e = worker_send(w, ws, (const struct sockaddr *)&sa, salen, &from, 0, data, len);
    if (e) {
        luaL_pushfail(L);
        lua_pushstring(L, errno_name(e));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- timers ---- */

struct ld_timer {
    struct event *ev;
    lua_State *L;        /* the main thread of the listener's state */
    int fn_ref;          /* the callback */
    int self_ref;        /* keeps this userdata alive while armed */
    int repeat;
};

static void ld_timer_disarm(lua_State *L, struct ld_timer *t)
{
    if (t->ev)
        event_del(t->ev);
    luaL_unref(L, LUA_REGISTRYINDEX, t->fn_ref);
    t->fn_ref = LUA_NOREF;
    luaL_unref(L, LUA_REGISTRYINDEX, t->self_ref);
    t->self_ref = LUA_NOREF;
}

static void ld_timer_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ld_timer *t = arg;
    lua_State *L = t->L;
    struct worker *w = worker_of(L);
    if (t->fn_ref == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->self_ref); /* keep t alive during the call */
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->fn_ref);
    if (!t->repeat)
        ld_timer_disarm(L, t); /* one-shot: released before the call, may re-arm itself */
    worker_call(w, wlistener_of(L), 0, "timer"); /* a rebuild of the state waits for the loop */
    lua_pop(L, 1);
    if (!w->in_batch)
        worker_flush(w); /* send what the timer queued */
}

static int ld_timer_new(lua_State *L, int repeat)
{
    lua_Number secs = luaL_checknumber(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    luaL_argcheck(L, secs >= 0 && secs < 1e9 && !isnan(secs), 1, "seconds out of range");
    luaL_argcheck(L, !repeat || secs >= 0.001, 1, "interval must be at least 0.001 s");
    struct worker *w = worker_of(L);
    struct ld_timer *t = lua_newuserdatauv(L, sizeof *t, 0);
    memset(t, 0, sizeof *t);
    t->fn_ref = LUA_NOREF;
    t->self_ref = LUA_NOREF;
    luaL_setmetatable(L, TIMER_META);
    lua_State *main;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    main = lua_tothread(L, -1);
    lua_pop(L, 1);
    t->L = main;
    t->repeat = repeat;
    t->ev = event_new(w->base, -1, repeat ? EV_PERSIST : 0, ld_timer_fire, t);
    if (!t->ev)
        return luaL_error(L, "cannot create a timer (out of memory)");
    struct timeval tv;
    tv.tv_sec = (time_t)secs;
    tv.tv_usec = (suseconds_t)((secs - (lua_Number)tv.tv_sec) * 1e6);
    lua_pushvalue(L, 2);
    t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, -1);
    t->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    event_add(t->ev, &tv);
    return 1;
}

/* luadgram.after(seconds, fn) -> timer: calls fn once. */
static int ld_after(lua_State *L)
{
    return ld_timer_new(L, 0);
}

/* luadgram.every(seconds, fn) -> timer: calls fn every `seconds` until cancelled. */
static int ld_every(lua_State *L)
{
    return ld_timer_new(L, 1);
}

static int ld_timer_cancel(lua_State *L)
{
    struct ld_timer *t = luaL_checkudata(L, 1, TIMER_META);
    int was = t->fn_ref != LUA_NOREF;
    ld_timer_disarm(L, t);
    lua_pushboolean(L, was);
    return 1;
}

static int ld_timer_gc(lua_State *L)
{
    struct ld_timer *t = luaL_checkudata(L, 1, TIMER_META);
    if (t->ev) {
        event_free(t->ev);
        t->ev = NULL;
    }
    return 0;
}

/* ---- luadgram.now() ---- */

static int ld_now(lua_State *L)
{
    struct timeval tv;
    struct worker *w = worker_of(L);
    if (event_base_gettimeofday_cached(w->base, &tv) != 0)
        gettimeofday(&tv, NULL);
    lua_pushnumber(L, (lua_Number)tv.tv_sec + (lua_Number)tv.tv_usec / 1e6);
    return 1;
}

/* ---- luadgram.log ---- */

static int ld_log_at(lua_State *L, int level)
{
    struct worker *w = worker_of(L);
    if (!log_enabled(w->d->log, level))
        return 0;
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, ' ');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_Debug ar;
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0)
        log_msg(w->d->log, level, "%s:%d: %s", ar.short_src, ar.currentline,
                lua_tostring(L, -1));
    else
        log_msg(w->d->log, level, "lua: %s", lua_tostring(L, -1));
    return 0;
}

static int ld_log_debug(lua_State *L) { return ld_log_at(L, LOG_LVL_DEBUG); }
static int ld_log_info(lua_State *L) { return ld_log_at(L, LOG_LVL_INFO); }
static int ld_log_warn(lua_State *L) { return ld_log_at(L, LOG_LVL_WARN); }
static int ld_log_error(lua_State *L) { return ld_log_at(L, LOG_LVL_ERROR); }

/* ---- counters: shared by all workers, shown in /metrics ---- */

static struct counter *ld_counter_check(lua_State *L)
{
    return *(struct counter **)luaL_checkudata(L, 1, COUNTER_META);
}

/* luadgram.counter(name [, help]) -> counter */
static int ld_counter(lua_State *L)
{
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    const char *help = luaL_optstring(L, 2, NULL);
    luaL_argcheck(L, len > 0 && len <= 100, 1, "name must be 1 to 100 characters");
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (i > 0 && c >= '0' && c <= '9');
        luaL_argcheck(L, ok, 1, "name may hold only letters, digits and _");
    }
    struct worker *w = worker_of(L);
    struct counter *c = stats_counter(w->d->stats, name, help);
    if (!c)
        return luaL_error(L, "out of memory");
    struct counter **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = c;
    luaL_setmetatable(L, COUNTER_META);
    return 1;
}

/* counter:inc([n]) */
static int ld_counter_inc(lua_State *L)
{
    struct counter *c = ld_counter_check(L);
    lua_Integer n = luaL_optinteger(L, 2, 1);
    luaL_argcheck(L, n >= 0, 2, "a counter only goes up");
    atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
    return 0;
}

/* counter:get() -> the total over all workers */
static int ld_counter_get(lua_State *L)
{
    struct counter *c = ld_counter_check(L);
    lua_pushinteger(L, (lua_Integer)atomic_load_explicit(&c->value, memory_order_relaxed));
    return 1;
}

/* ---- luadgram.ratelimit_top(listener [, n]) ---- */

/* -> a list of this worker's n (default 10, at most 100) peers of the listener with the
 * most datagrams dropped by its ratelimit, most first: { peer = "ip" or "ip/len",
 * dropped =, passed =, tokens = }; nil, err when the listener is unknown or has no
 * ratelimit. Scans the listener's whole table (ratelimit.peers entries). */
static int ld_ratelimit_top(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    lua_Integer n = luaL_optinteger(L, 2, 10);
    luaL_argcheck(L, n >= 1 && n <= PEERLIMIT_TOP_MAX, 2, "expected 1 to 100");
    struct worker *w = worker_of(L);
    const struct wlistener *wl = NULL;
    for (size_t i = 0; i < w->nlisteners && !wl; i++)
        if (strcmp(w->listeners[i].cfg->name, name) == 0)
            wl = &w->listeners[i];
    if (!wl || !wl->cfg->ratelimit) {
        luaL_pushfail(L);
        lua_pushfstring(L, wl ? "listener '%s' has no ratelimit" : "no such listener '%s'",
                        name);
        return 2;
    }
    struct peerlimit_peer top[PEERLIMIT_TOP_MAX];
    size_t got = wl->limit ? peerlimit_top(wl->limit, top, (size_t)n) : 0;
    lua_createtable(L, (int)got, 0);
    for (size_t i = 0; i < got; i++) {
        char text[64];
        peerlimit_format_net(&top[i].net, text, sizeof text);
        lua_createtable(L, 0, 4);
        lua_pushstring(L, text);
        lua_setfield(L, -2, "peer");
        lua_pushinteger(L, (lua_Integer)top[i].dropped);
        lua_setfield(L, -2, "dropped");
        lua_pushinteger(L, (lua_Integer)top[i].passed);
        lua_setfield(L, -2, "passed");
        lua_pushnumber(L, top[i].tokens);
        lua_setfield(L, -2, "tokens");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

#ifdef LUADGRAM_TEST_HOOKS
/* luadgram.test_block_in_c(seconds): test builds only (-DLUADGRAM_TESTS=ON): blocks the
 * calling worker in C for up to 60 s, as a handler stuck in a C library would. No Lua runs
 * meanwhile, so neither handler_timeout nor handler_budget can stop it (the time limit's
 * signal only interrupts the sleep, which goes on to its end). */
static int ld_test_block_in_c(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    luaL_argcheck(L, s >= 0 && s <= 60, 1, "between 0 and 60 seconds");
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    long long ns = (long long)(s * 1e9) + end.tv_nsec;
    end.tv_sec += (time_t)(ns / 1000000000LL);
    end.tv_nsec = (long)(ns % 1000000000LL);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end, NULL) == EINTR)
        ;
    return 0;
}
#endif

static const luaL_Reg ld_funcs[] = {
    {"send", ld_send},   {"after", ld_after},       {"every", ld_every},
    {"now", ld_now},     {"counter", ld_counter},   {"ratelimit_top", ld_ratelimit_top},
#ifdef LUADGRAM_TEST_HOOKS
    {"test_block_in_c", ld_test_block_in_c},
#endif
    {NULL, NULL},
};

static const luaL_Reg ld_log_funcs[] = {
    {"debug", ld_log_debug}, {"info", ld_log_info}, {"warn", ld_log_warn},
    {"error", ld_log_error}, {NULL, NULL},
};

static const luaL_Reg ld_timer_methods[] = {
    {"cancel", ld_timer_cancel}, {NULL, NULL},
};

static const luaL_Reg ld_counter_methods[] = {
    {"inc", ld_counter_inc}, {"get", ld_counter_get}, {NULL, NULL},
};

static void ld_newclass(lua_State *L, const char *name, const luaL_Reg *methods,
                        lua_CFunction gc)
{
    luaL_newmetatable(L, name);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    if (gc) {
        lua_pushcfunction(L, gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
}

int luaopen_luadgram(lua_State *L)
{
    ld_newclass(L, TIMER_META, ld_timer_methods, ld_timer_gc);
    ld_newclass(L, COUNTER_META, ld_counter_methods, NULL);
    luaL_newlib(L, ld_funcs);
    publish_register(L); /* luadgram.nats, luadgram.redis (publish.c) */
    luaL_newlib(L, ld_log_funcs);
    lua_setfield(L, -2, "log");
    lua_pushliteral(L, LUADGRAM_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}

void lbind_preload(lua_State *L)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_luadgram);
    lua_setfield(L, -2, "luadgram");
    lua_pushcfunction(L, luaopen_luadgram_ber);
    lua_setfield(L, -2, "luadgram.ber");
    lua_pushcfunction(L, luaopen_luadgram_mib);
    lua_setfield(L, -2, "luadgram.mib");
    lua_pushcfunction(L, luaopen_luadgram_syslog);
    lua_setfield(L, -2, "luadgram.syslog");
    lua_pushcfunction(L, luaopen_luadgram_file);
    lua_setfield(L, -2, "luadgram.file");
    lua_pop(L, 1);
}
