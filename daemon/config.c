/* daemon/config.c: loads the Lua configuration file in a sandbox and checks it. Global
 * settings go through the sandbox's __newindex (so a bad one is reported at the exact line
 * of its assignment); `listen "name" { ... }` is checked when it is called, and a bad key
 * inside its table is reported at the line where that key is written. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <lauxlib.h>
#include <lualib.h>
#include <net/if.h>

#include "addr.h"
#include "lalloc.h"
#include "log.h"

enum { CONFIG_MAX_BYTES = 1 << 20, CONFIG_MAX_LISTENERS = 1024, CONFIG_MAX_BINDS = 64 };
enum { OPTIONS_MAX_DEPTH = 32 };

/* Registry key of the loader's state (struct config_load_ctx *). */
static const char config_ctx_key = 'c';

struct config_load_ctx {
    struct config *cfg;
    char *text;  /* the file's content, to find the line of a key inside a listen table */
    size_t textlen;
    int script_path_line;
    long steps;  /* instructions run, in CONFIG_HOOK_STEP units */
    struct timespec deadline; /* CLOCK_MONOTONIC: CONFIG_MAX_SECONDS after the start */
};

/* A configuration is a small program: it may run CONFIG_MAX_STEPS * CONFIG_HOOK_STEP
 * instructions for at most CONFIG_MAX_SECONDS and hold CONFIG_MAX_MEMORY bytes, so that a
 * loop or a runaway allocation in it is an error at its line, not a daemon that never
 * starts (fuzz_config runs it on random text). The clock is read every CONFIG_HOOK_STEP
 * instructions: few enough that library calls in between (string.rep of a few MiB each)
 * cannot run for long. A single library call that does not return (a pattern that
 * backtracks over a long string) is not stopped. */
#define CONFIG_HOOK_STEP 100
#define CONFIG_MAX_STEPS 200000
#define CONFIG_MAX_SECONDS 5
#define CONFIG_MAX_MEMORY ((size_t)64 << 20)

static struct config_load_ctx *config_ctx(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &config_ctx_key);
    struct config_load_ctx *c = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return c;
}

/* The count hook of the configuration's run (CONFIG_MAX_STEPS). */
static void config_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    struct config_load_ctx *c = config_ctx(L);
    if (!c)
        return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int late = now.tv_sec > c->deadline.tv_sec ||
               (now.tv_sec == c->deadline.tv_sec && now.tv_nsec >= c->deadline.tv_nsec);
    if (++c->steps <= CONFIG_MAX_STEPS && !late)
        return;
    luaL_where(L, 0); /* the running function: FILE:LINE */
    if (late)
        lua_pushfstring(L, "the configuration ran past %d seconds", CONFIG_MAX_SECONDS);
    else
        lua_pushfstring(L, "the configuration ran past %d instructions",
                        CONFIG_MAX_STEPS * CONFIG_HOOK_STEP);
    lua_concat(L, 2);
    lua_error(L);
}

static char *config_strdup(lua_State *L, const char *s)
{
    char *d = strdup(s);
    if (!d)
        luaL_error(L, "out of memory");
    return d;
}

/* The line (from `from` on) where `key` is assigned in the file: "key =" or "key=" as a
 * whole word; `from` when no such line exists. */
static int config_key_line(const struct config_load_ctx *c, int from, const char *key)
{
    size_t klen = strlen(key);
    int line = 1;
    const char *p = c->text, *end = c->text + c->textlen;
    while (p < end && line < from) {
        if (*p++ == '\n')
            line++;
    }
    for (; p < end; p++) {
        if (*p == '\n') {
            line++;
            continue;
        }
        if ((size_t)(end - p) < klen || memcmp(p, key, klen) != 0)
            continue;
        if (p > c->text && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
            continue;
        const char *q = p + klen;
        while (q < end && (*q == ' ' || *q == '\t'))
            q++;
        if (q < end && *q == '=' && (q + 1 >= end || q[1] != '='))
            return line;
    }
    return from;
}

/* Raises "FILE:LINE: message" (no position added by Lua). */
static int config_raise_at(lua_State *L, int line, const char *fmt, ...)
{
    struct config_load_ctx *c = config_ctx(L);
    va_list ap;
    va_start(ap, fmt);
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lua_pushfstring(L, "%s:%d: %s", c->cfg->file, line, msg);
    return lua_error(L);
}

/* The line of the Lua code calling the running C function. */
static int config_caller_line(lua_State *L)
{
    lua_Debug ar;
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar) && ar.currentline > 0)
        return ar.currentline;
    return 0;
}

/* ---- global settings ---- */

static int config_is_int(lua_State *L, int idx, lua_Integer *v)
{
    int ok;
    lua_Integer i = lua_tointegerx(L, idx, &ok);
    if (!ok || lua_type(L, idx) != LUA_TNUMBER)
        return 0;
    *v = i;
    return 1;
}

/* handler_memory's value at idx: bytes as a number, or a string "<n>", "<n>K", "<n>M",
 * "<n>G" (powers of 1024); 0 (no cap) or from 1 MiB to 1 TiB. Returns 0 and *bytes, or -1. */
#define CONFIG_MEMORY_MIN (1LL << 20)
#define CONFIG_MEMORY_MAX (1LL << 40)
#define CONFIG_MEMORY_EXPECT "expected bytes from 1M to 1T, as a number or a string such as " \
                             "\"64M\" (0: no cap)"

static int config_memory_parse(lua_State *L, int idx, long long *bytes)
{
    double v;
    if (lua_type(L, idx) == LUA_TNUMBER) {
        v = (double)lua_tonumber(L, idx);
    } else if (lua_type(L, idx) == LUA_TSTRING) {
        const char *s = lua_tostring(L, idx);
        char *end;
        errno = 0;
        if (*s < '0' || *s > '9')
            return -1;
        v = strtod(s, &end);
        if (errno)
            return -1;
        double unit = 1;
        if (*end == 'K' || *end == 'k')
            unit = 1024.0, end++;
        else if (*end == 'M' || *end == 'm')
            unit = 1024.0 * 1024, end++;
        else if (*end == 'G' || *end == 'g')
            unit = 1024.0 * 1024 * 1024, end++;
        if (*end != '\0')
            return -1;
        v *= unit;
    } else {
        return -1;
    }
    if (v != v || !(v == 0 || (v >= (double)CONFIG_MEMORY_MIN && v <= (double)CONFIG_MEMORY_MAX)))
        return -1;
    *bytes = (long long)v;
    return 0;
}

static void config_set_script_path(lua_State *L, struct config *cfg, int idx, int line)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        lua_newtable(L);
        lua_pushvalue(L, idx);
        lua_rawseti(L, -2, 1);
        idx = lua_gettop(L);
    }
    if (!lua_istable(L, idx))
        config_raise_at(L, line, "script_path: expected a folder or a list of folders, got %s",
                        luaL_typename(L, idx));
    lua_Integer n = luaL_len(L, idx);
    if (n < 1 || n > 64)
        config_raise_at(L, line, "script_path: expected 1 to 64 folders");
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        if (lua_type(L, -1) != LUA_TSTRING)
            config_raise_at(L, line, "script_path[%d]: expected a string, got %s", (int)i,
                            luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    /* Kept as the table; turned into C strings after the file has run. */
    lua_pushvalue(L, idx);
    lua_setfield(L, LUA_REGISTRYINDEX, "luadgram.script_path");
    (void)cfg;
}

/* __newindex of the sandbox: a global setting. */
static int config_setting(lua_State *L)
{
    struct config_load_ctx *c = config_ctx(L);
    struct config *cfg = c->cfg;
    const char *key = lua_tostring(L, 2);
    int line = config_caller_line(L);
    lua_Integer iv = 0;
    if (lua_type(L, 2) != LUA_TSTRING)
        return config_raise_at(L, line, "unknown setting");
    if (strcmp(key, "workers") == 0) {
        if (lua_type(L, 3) == LUA_TSTRING && strcmp(lua_tostring(L, 3), "auto") == 0) {
            /* The CPUs this process may run on (taskset, cpusets), not all online ones. */
            cpu_set_t set;
            long ncpu = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                                     : sysconf(_SC_NPROCESSORS_ONLN);
            cfg->workers = ncpu > 0 ? (int)(ncpu > 256 ? 256 : ncpu) : 1;
        } else if (config_is_int(L, 3, &iv) && iv >= 1 && iv <= 256) {
            cfg->workers = (int)iv;
        } else {
            return config_raise_at(L, line,
                                   "workers: expected an integer from 1 to 256 or \"auto\"");
        }
    } else if (strcmp(key, "user") == 0) {
        if (lua_type(L, 3) != LUA_TSTRING || lua_rawlen(L, 3) == 0)
            return config_raise_at(L, line, "user: expected a user name");
        if (!getpwnam(lua_tostring(L, 3)))
            return config_raise_at(L, line, "user: no such user '%s'", lua_tostring(L, 3));
        free(cfg->user);
        cfg->user = config_strdup(L, lua_tostring(L, 3));
    } else if (strcmp(key, "log_level") == 0) {
        int lvl = lua_type(L, 3) == LUA_TSTRING ? log_level_parse(lua_tostring(L, 3)) : -1;
        if (lvl < 0)
            return config_raise_at(L, line,
                                   "log_level: expected \"debug\", \"info\", \"warn\" or \"error\"");
        cfg->log_level = lvl;
    } else if (strcmp(key, "metrics") == 0) {
        free(cfg->metrics);
        cfg->metrics = NULL;
        if (lua_type(L, 3) == LUA_TBOOLEAN && !lua_toboolean(L, 3))
            return 0;
        struct sockaddr_storage sa;
        socklen_t len;
        char err[256];
        if (lua_type(L, 3) != LUA_TSTRING)
            return config_raise_at(L, line, "metrics: expected \"ip:port\" or false");
        if (addr_parse_peer(lua_tostring(L, 3), &sa, &len, err, sizeof err) != 0 ||
            sa.ss_family == AF_UNIX)
            return config_raise_at(L, line, "metrics: %s", sa.ss_family == AF_UNIX ?
                                   "expected ip:port" : err);
        cfg->metrics = config_strdup(L, lua_tostring(L, 3));
    } else if (strcmp(key, "script_path") == 0) {
        config_set_script_path(L, cfg, 3, line);
        c->script_path_line = line;
    } else if (strcmp(key, "handler_budget") == 0) {
        if (!config_is_int(L, 3, &iv) || iv < 0)
            return config_raise_at(L, line,
                                   "handler_budget: expected a number of instructions (0: none)");
        cfg->handler_budget = (long)iv;
    } else if (strcmp(key, "handler_timeout") == 0) {
        lua_Number t = lua_type(L, 3) == LUA_TNUMBER ? lua_tonumber(L, 3) : -1;
        if (!(t == 0 || (t >= 0.001 && t <= 86400)))
            return config_raise_at(L, line, "handler_timeout: expected seconds from 0.001 to "
                                            "86400 (0: none)");
        cfg->handler_timeout = (double)t;
    } else if (strcmp(key, "handler_memory") == 0) {
        if (config_memory_parse(L, 3, &cfg->handler_memory) != 0)
            return config_raise_at(L, line, "handler_memory: " CONFIG_MEMORY_EXPECT);
    } else {
        return config_raise_at(L, line, "unknown setting '%s'", key);
    }
    /* Readable back by later lines of the file. */
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_rawset(L, lua_upvalueindex(1));
    return 0;
}

/* ---- listen "name" { ... } ---- */

static int config_mode_parse(lua_State *L, int idx, int *mode)
{
    lua_Integer iv = 0;
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *s = lua_tostring(L, idx);
        char *end;
        errno = 0;
        long v = strtol(s, &end, 8);
        if (*s == '\0' || *end != '\0' || errno || v < 0 || v > 07777)
            return -1;
        *mode = (int)v;
        return 0;
    }
    if (config_is_int(L, idx, &iv) && iv >= 0 && iv <= 07777) {
        *mode = (int)iv;
        return 0;
    }
    return -1;
}

/* Checks that the value at idx holds only what can be copied into a worker's state. */
static void config_check_options(lua_State *L, int idx, int depth, const char *path, int line)
{
    if (depth > OPTIONS_MAX_DEPTH)
        config_raise_at(L, line, "%s: nested too deeply", path);
    int t = lua_type(L, idx);
    if (t == LUA_TNIL || t == LUA_TBOOLEAN || t == LUA_TNUMBER || t == LUA_TSTRING)
        return;
    if (t != LUA_TTABLE)
        config_raise_at(L, line,
                        "%s: a %s cannot be handed to a handler (each worker has its own Lua "
                        "state); use strings, numbers, booleans and tables", path,
                        lua_typename(L, t));
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        char sub[256];
        if (lua_type(L, -2) == LUA_TSTRING)
            snprintf(sub, sizeof sub, "%s.%s", path, lua_tostring(L, -2));
        else
            snprintf(sub, sizeof sub, "%s[...]", path);
        config_check_options(L, -2, depth + 1, sub, line);
        config_check_options(L, -1, depth + 1, sub, line);
        lua_pop(L, 1);
    }
}

static void config_parse_recv(lua_State *L, struct config_load_ctx *c, struct listener_cfg *lc,
                              int idx)
{
    int line = config_key_line(c, lc->line, "recv");
    if (!lua_istable(L, idx))
        config_raise_at(L, line, "listener '%s': recv: expected a table, got %s", lc->name,
                        luaL_typename(L, idx));
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            config_raise_at(L, line, "listener '%s': recv: keys must be names", lc->name);
        const char *k = lua_tostring(L, -2);
        int kline = config_key_line(c, line, k);
        lua_Integer iv = 0;
        if (strcmp(k, "batch") == 0) {
            if (!config_is_int(L, -1, &iv) || iv < 1 || iv > 1024)
                config_raise_at(L, kline,
                                "listener '%s': recv.batch: expected an integer from 1 to 1024",
                                lc->name);
            lc->batch = (unsigned)iv;
        } else if (strcmp(k, "size") == 0) {
            if (!config_is_int(L, -1, &iv) || iv < 1 || iv > 1048576)
                config_raise_at(L, kline,
                                "listener '%s': recv.size: expected an integer from 1 to 1048576",
                                lc->name);
            lc->size = (size_t)iv;
        } else if (strcmp(k, "rcvbuf") == 0) {
            if (!config_is_int(L, -1, &iv) || iv < 0 || iv > (1 << 30))
                config_raise_at(L, kline,
                                "listener '%s': recv.rcvbuf: expected a size in bytes", lc->name);
            lc->rcvbuf = (int)iv;
        } else if (strcmp(k, "ttl") == 0 || strcmp(k, "tos") == 0 ||
                   strcmp(k, "timestamp") == 0) {
            if (lua_type(L, -1) != LUA_TBOOLEAN)
                config_raise_at(L, kline, "listener '%s': recv.%s: expected true or false",
                                lc->name, k);
            int b = lua_toboolean(L, -1);
            if (k[0] == 't' && k[1] == 't')
                lc->want_ttl = b;
            else if (k[1] == 'o')
                lc->want_tos = b;
            else
                lc->want_time = b;
        } else {
            config_raise_at(L, kline, "listener '%s': unknown key 'recv.%s'", lc->name, k);
        }
        lua_pop(L, 1);
    }
}

/* ratelimit = { rate = 100, burst = 200, per = "ip" | "/24" | "/56" | "/24 /56",
 * peers = 65536, exempt = { "10.0.0.0/8", ... } } */
static void config_parse_ratelimit(lua_State *L, struct config_load_ctx *c,
                                   struct listener_cfg *lc, int idx)
{
    int line = config_key_line(c, lc->line, "ratelimit");
    if (!lua_istable(L, idx))
        config_raise_at(L, line, "listener '%s': ratelimit: expected a table, got %s", lc->name,
                        luaL_typename(L, idx));
    struct peerlimit_cfg *rl = calloc(1, sizeof *rl);
    if (!rl)
        luaL_error(L, "out of memory");
    lc->ratelimit = rl; /* owned by lc from here */
    rl->prefix4 = 32;
    rl->prefix6 = 128;
    rl->peers = 65536;
    rl->burst = -1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            config_raise_at(L, line, "listener '%s': ratelimit: keys must be names", lc->name);
        const char *k = lua_tostring(L, -2);
        int kline = config_key_line(c, line, k);
        lua_Integer iv = 0;
        if (strcmp(k, "rate") == 0 || strcmp(k, "burst") == 0) {
            lua_Number v = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
            if (!(v >= (k[0] == 'r' ? 0.001 : 1) && v <= 1e9))
                config_raise_at(L, kline, "listener '%s': ratelimit.%s: expected %s", lc->name,
                                k, k[0] == 'r' ? "datagrams per second from 0.001 to 1e9"
                                               : "a number of datagrams from 1 to 1e9");
            if (k[0] == 'r')
                rl->rate = (double)v;
            else
                rl->burst = (double)v;
        } else if (strcmp(k, "peers") == 0) {
            if (!config_is_int(L, -1, &iv) || iv < 1 || iv > (1 << 24))
                config_raise_at(L, kline, "listener '%s': ratelimit.peers: expected an integer "
                                "from 1 to 16777216", lc->name);
            rl->peers = (uint32_t)iv;
        } else if (strcmp(k, "per") == 0) {
            const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
            int ok = strcmp(s, "ip") == 0, set4 = 0, set6 = 0;
            while (!ok && *s == '/') {
                char *end;
                long v = strtol(s + 1, &end, 10);
                if (end == s + 1 || v < 1 || v > 128 || (v <= 32 ? set4 : set6))
                    break;
                if (v <= 32)
                    rl->prefix4 = (int)v, set4 = 1;
                else
                    rl->prefix6 = (int)v, set6 = 1;
                s = end;
                while (*s == ' ')
                    s++;
                ok = *s == '\0';
            }
            if (!ok)
                config_raise_at(L, kline, "listener '%s': ratelimit.per: expected \"ip\" or "
                                "prefixes such as \"/24\" (IPv4), \"/56\" (IPv6) or "
                                "\"/24 /56\"", lc->name);
        } else if (strcmp(k, "exempt") == 0) {
            int v = lua_gettop(L);
            if (lua_type(L, v) == LUA_TSTRING) {
                lua_newtable(L);
                lua_pushvalue(L, v);
                lua_rawseti(L, -2, 1);
                lua_replace(L, v);
            }
            size_t n = lua_istable(L, v) ? lua_rawlen(L, v) : 0;
            if (!lua_istable(L, v) || n > PEERLIMIT_MAX_EXEMPT)
                config_raise_at(L, kline, "listener '%s': ratelimit.exempt: expected a list of "
                                "up to %d networks", lc->name, PEERLIMIT_MAX_EXEMPT);
            for (size_t i = 1; i <= n; i++) {
                lua_rawgeti(L, v, (lua_Integer)i);
                char err[160];
                if (lua_type(L, -1) != LUA_TSTRING)
                    config_raise_at(L, kline, "listener '%s': ratelimit.exempt[%d]: expected a "
                                    "string, got %s", lc->name, (int)i, luaL_typename(L, -1));
                if (peerlimit_parse_net(lua_tostring(L, -1), &rl->exempt[rl->nexempt], err,
                                        sizeof err) != 0)
                    config_raise_at(L, kline, "listener '%s': ratelimit.exempt: %s", lc->name,
                                    err);
                rl->nexempt++;
                lua_pop(L, 1);
            }
        } else {
            config_raise_at(L, kline, "listener '%s': unknown key 'ratelimit.%s'", lc->name, k);
        }
        lua_pop(L, 1);
    }
    if (rl->rate <= 0)
        config_raise_at(L, line, "listener '%s': ratelimit.rate is missing", lc->name);
    if (rl->burst < 0)
        rl->burst = rl->rate < 1 ? 1 : rl->rate;
}

static void config_parse_joins(lua_State *L, struct config_load_ctx *c, struct listener_cfg *lc,
                               int idx)
{
    int line = config_key_line(c, lc->line, "join");
    lc->join_line = line;
    if (lua_type(L, idx) == LUA_TSTRING) {
        lua_newtable(L);
        lua_pushvalue(L, idx);
        lua_rawseti(L, -2, 1);
        lua_replace(L, idx);
    }
    size_t n = lua_istable(L, idx) ? lua_rawlen(L, idx) : 0;
    if (!lua_istable(L, idx) || n > MCAST_MAX_JOINS)
        config_raise_at(L, line, "listener '%s': join: expected a list of up to %d groups",
                        lc->name, MCAST_MAX_JOINS);
    lc->joins = calloc(n ? n : 1, sizeof *lc->joins);
    if (!lc->joins)
        luaL_error(L, "out of memory");
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i);
        if (lua_type(L, -1) != LUA_TSTRING)
            config_raise_at(L, line, "listener '%s': join[%d]: expected a string, got %s",
                            lc->name, (int)i, luaL_typename(L, -1));
        char err[256];
        struct mcast_join *j = &lc->joins[lc->njoins];
        if (mcast_parse(lua_tostring(L, -1), j, err, sizeof err) != 0)
            config_raise_at(L, line, "listener '%s': join: %s", lc->name, err);
        if (mcast_in(j, lc->joins, lc->njoins))
            config_raise_at(L, line, "listener '%s': join: '%s' is listed twice", lc->name,
                            j->text);
        lc->njoins++;
        lua_pop(L, 1);
    }
}

/* After the listener's table: every group has a socket of its family to join on. */
static void config_check_joins(lua_State *L, struct listener_cfg *lc)
{
    for (size_t i = 0; i < lc->njoins; i++) {
        int family = lc->joins[i].group.ss_family, found = 0;
        for (size_t b = 0; b < lc->nbinds && !found; b++)
            found = lc->binds[b].kind != SOCK_KIND_UNIX &&
                    lc->binds[b].addr.ss_family == family;
        if (!found)
            config_raise_at(L, lc->join_line, "listener '%s': join: '%s' needs an %s bind to "
                            "join it on (such as %s)", lc->name, lc->joins[i].text,
                            family == AF_INET ? "IPv4" : "IPv6",
                            family == AF_INET ? "\"0.0.0.0:port\"" : "\"[::]:port\"");
    }
}

static void config_parse_binds(lua_State *L, struct config_load_ctx *c, struct listener_cfg *lc,
                               int idx)
{
    int line = config_key_line(c, lc->line, "bind");
    lc->bind_line = line;
    if (lua_type(L, idx) == LUA_TSTRING) {
        lua_newtable(L);
        lua_pushvalue(L, idx);
        lua_rawseti(L, -2, 1);
        lua_replace(L, idx);
    }
    if (!lua_istable(L, idx))
        config_raise_at(L, line, "listener '%s': bind: expected an address or a list of them, "
                        "got %s", lc->name, luaL_typename(L, idx));
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    if (n < 1 || n > CONFIG_MAX_BINDS)
        config_raise_at(L, line, "listener '%s': bind: expected 1 to %d addresses", lc->name,
                        CONFIG_MAX_BINDS);
    lc->bind_strs = calloc((size_t)n, sizeof *lc->bind_strs);
    lc->binds = calloc((size_t)n, sizeof *lc->binds);
    if (!lc->bind_strs || !lc->binds)
        luaL_error(L, "out of memory");
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        if (lua_type(L, -1) != LUA_TSTRING)
            config_raise_at(L, line, "listener '%s': bind[%d]: expected a string, got %s",
                            lc->name, (int)i, luaL_typename(L, -1));
        const char *s = lua_tostring(L, -1);
        char err[256];
        size_t k = lc->nbinds;
        lc->bind_strs[k] = config_strdup(L, s);
        lc->nbinds++; /* owned by lc from here, freed by config_free even if we raise */
        if (addr_parse_bind(s, &lc->binds[k], err, sizeof err) != 0)
            config_raise_at(L, line, "listener '%s': bind: %s", lc->name, err);
        const char *unsupported = sock_unsupported(&lc->binds[k]);
        if (unsupported)
            config_raise_at(L, line, "listener '%s': bind '%s': %s", lc->name, s, unsupported);
        for (size_t j = 0; j < k; j++)
            if (strcmp(lc->bind_strs[j], s) == 0)
                config_raise_at(L, line, "listener '%s': bind: '%s' is listed twice", lc->name,
                                s);
        lua_pop(L, 1);
    }
}

/* The function `listen "name"` returns: takes the listener's table. Upvalue 1: the name;
 * upvalue 2: the line of the call. */
static int config_listen_table(lua_State *L)
{
    struct config_load_ctx *c = config_ctx(L);
    struct config *cfg = c->cfg;
    const char *name = lua_tostring(L, lua_upvalueindex(1));
    int line = (int)lua_tointeger(L, lua_upvalueindex(2));
    if (!lua_istable(L, 1))
        return config_raise_at(L, line, "listener '%s': expected a table: listen \"%s\" { ... }",
                               name, name);
    lua_settop(L, 1);
    for (size_t i = 0; i < cfg->nlisteners; i++)
        if (strcmp(cfg->listeners[i].name, name) == 0)
            return config_raise_at(L, line, "listener '%s' is defined twice (first at line %d)",
                                   name, cfg->listeners[i].line);
    if (cfg->nlisteners >= CONFIG_MAX_LISTENERS)
        return config_raise_at(L, line, "too many listeners");
    struct listener_cfg *grown =
        realloc(cfg->listeners, (cfg->nlisteners + 1) * sizeof *cfg->listeners);
    if (!grown)
        return luaL_error(L, "out of memory");
    cfg->listeners = grown;
    struct listener_cfg *lc = &cfg->listeners[cfg->nlisteners++];
    memset(lc, 0, sizeof *lc);
    lc->name = config_strdup(L, name);
    lc->line = line;
    lc->batch = 32;
    lc->size = 65535;
    lc->unix_mode = -1;
    lc->handler_memory = -1;
    lc->options_ref = LUA_NOREF;
    lc->v6only = lc->tos = lc->ttl = -1;

    lua_pushnil(L);
    while (lua_next(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            return config_raise_at(L, line, "listener '%s': keys must be names", name);
        const char *k = lua_tostring(L, -2);
        int kline = config_key_line(c, line, k);
        int v = lua_gettop(L);
        const char *unsupported = sock_option_unsupported(k);
        if (unsupported)
            return config_raise_at(L, kline, "listener '%s': %s: %s", name, k, unsupported);
        if (strcmp(k, "bind") == 0) {
            config_parse_binds(L, c, lc, v);
        } else if (strcmp(k, "handler") == 0) {
            if (lua_type(L, v) != LUA_TSTRING || lua_rawlen(L, v) == 0)
                return config_raise_at(L, kline,
                                       "listener '%s': handler: expected a script name or path",
                                       name);
            lc->handler = config_strdup(L, lua_tostring(L, v));
        } else if (strcmp(k, "recv") == 0) {
            config_parse_recv(L, c, lc, v);
        } else if (strcmp(k, "ratelimit") == 0) {
            config_parse_ratelimit(L, c, lc, v);
        } else if (strcmp(k, "join") == 0) {
            config_parse_joins(L, c, lc, v);
        } else if (strcmp(k, "freebind") == 0 || strcmp(k, "v6only") == 0) {
            if (lua_type(L, v) != LUA_TBOOLEAN)
                return config_raise_at(L, kline, "listener '%s': %s: expected true or false",
                                       name, k);
            *(k[0] == 'f' ? &lc->freebind : &lc->v6only) = lua_toboolean(L, v);
        } else if (strcmp(k, "device") == 0) {
            size_t dlen = 0;
            const char *dev = lua_type(L, v) == LUA_TSTRING ? lua_tolstring(L, v, &dlen) : "";
            if (dlen == 0 || dlen >= sizeof lc->device)
                return config_raise_at(L, kline, "listener '%s': device: expected an interface "
                                       "name", name);
            if (if_nametoindex(dev) == 0)
                return config_raise_at(L, kline, "listener '%s': device: unknown interface "
                                       "'%s'", name, dev);
            memcpy(lc->device, dev, dlen + 1);
        } else if (strcmp(k, "tos") == 0 || strcmp(k, "ttl") == 0) {
            lua_Integer iv = 0;
            int is_tos = k[1] == 'o';
            if (!config_is_int(L, v, &iv) || iv < (is_tos ? 0 : 1) || iv > 255)
                return config_raise_at(L, kline, "listener '%s': %s: expected an integer from "
                                       "%d to 255", name, k, is_tos ? 0 : 1);
            *(is_tos ? &lc->tos : &lc->ttl) = (int)iv;
        } else if (strcmp(k, "options") == 0) {
            if (!lua_istable(L, v))
                return config_raise_at(L, kline, "listener '%s': options: expected a table, "
                                       "got %s", name, luaL_typename(L, v));
            config_check_options(L, v, 0, "options", kline);
            lua_pushvalue(L, v);
            lc->options_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        } else if (strcmp(k, "reuseport") == 0) {
            if (lua_type(L, v) != LUA_TBOOLEAN)
                return config_raise_at(L, kline,
                                       "listener '%s': reuseport: expected true or false", name);
            lc->reuseport = lua_toboolean(L, v);
            if (lc->reuseport && !sock_has_reuseport())
                return config_raise_at(L, kline, "listener '%s': reuseport: this platform "
                                       "has no SO_REUSEPORT", name);
        } else if (strcmp(k, "handler_memory") == 0) {
            if (config_memory_parse(L, v, &lc->handler_memory) != 0)
                return config_raise_at(L, kline, "listener '%s': handler_memory: "
                                       CONFIG_MEMORY_EXPECT, name);
        } else if (strcmp(k, "unsafe") == 0) {
            if (lua_type(L, v) != LUA_TBOOLEAN)
                return config_raise_at(L, kline,
                                       "listener '%s': unsafe: expected true or false", name);
            lc->unsafe = lua_toboolean(L, v);
        } else if (strcmp(k, "mode") == 0) {
            if (config_mode_parse(L, v, &lc->unix_mode) != 0)
                return config_raise_at(L, kline,
                                       "listener '%s': mode: expected an octal mode such as "
                                       "\"0660\"", name);
        } else {
            return config_raise_at(L, kline, "listener '%s': unknown key '%s'", name, k);
        }
        lua_settop(L, v - 1);
    }
    if (lc->nbinds == 0)
        return config_raise_at(L, line, "listener '%s': bind is missing", name);
    if (!lc->handler)
        return config_raise_at(L, line, "listener '%s': handler is missing", name);
    config_check_joins(L, lc);
    lc->complete = 1;
    return 0;
}

static int config_listen(lua_State *L)
{
    int line = config_caller_line(L);
    size_t len;
    const char *name = lua_tolstring(L, 1, &len);
    if (lua_type(L, 1) != LUA_TSTRING || len == 0 || len > 64)
        return config_raise_at(L, line, "listen: expected a listener name: listen \"name\" { ... }");
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-' &&
            name[i] != '.')
            return config_raise_at(L, line,
                                   "listen: name '%s' may hold only letters, digits, _ - .",
                                   name);
    lua_pushvalue(L, 1);
    lua_pushinteger(L, line);
    lua_pushcclosure(L, config_listen_table, 2);
    return 1;
}

/* ---- after the file has run ---- */

/* 0 when path is a regular file; else the reason (an errno, EISDIR for a non-file). */
static int config_file_status(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return errno;
    return S_ISREG(st.st_mode) ? 0 : EISDIR;
}

static int config_file_exists(const char *path)
{
    return config_file_status(path) == 0;
}

static char *config_join(const char *dir, const char *name)
{
    if (name[0] == '/' || !dir || !*dir || strcmp(dir, ".") == 0)
        return strdup(name);
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Builds cfg->script_path: the configured folders (relative ones from the config's
 * folder), then the defaults: ../scripts beside the config's folder and the installed
 * share/luadgramd/scripts. */
static void config_build_script_path(lua_State *L, struct config *cfg)
{
    size_t nuser = 0;
    lua_getfield(L, LUA_REGISTRYINDEX, "luadgram.script_path");
    if (lua_istable(L, -1))
        nuser = lua_rawlen(L, -1);
    cfg->script_path = calloc(nuser + 2, sizeof *cfg->script_path);
    if (!cfg->script_path)
        luaL_error(L, "out of memory");
    for (size_t i = 1; i <= nuser; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i);
        cfg->script_path[cfg->npaths] = config_join(cfg->dir, lua_tostring(L, -1));
        if (!cfg->script_path[cfg->npaths])
            luaL_error(L, "out of memory");
        cfg->npaths++;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    cfg->script_path[cfg->npaths] = config_join(cfg->dir, "../scripts");
    if (!cfg->script_path[cfg->npaths])
        luaL_error(L, "out of memory");
    cfg->npaths++;
    cfg->script_path[cfg->npaths] = strdup(LUADGRAM_DATADIR "/scripts");
    if (!cfg->script_path[cfg->npaths])
        luaL_error(L, "out of memory");
    cfg->npaths++;
}

static void config_resolve_handlers(lua_State *L, struct config_load_ctx *c)
{
    struct config *cfg = c->cfg;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        struct listener_cfg *lc = &cfg->listeners[i];
        int line = config_key_line(c, lc->line, "handler");
        size_t hl = strlen(lc->handler);
        if (strchr(lc->handler, '/') || (hl > 4 && strcmp(lc->handler + hl - 4, ".lua") == 0)) {
            lc->handler_path = config_join(cfg->dir, lc->handler);
            if (!lc->handler_path)
                luaL_error(L, "out of memory");
            if (!config_file_exists(lc->handler_path))
                config_raise_at(L, line, "listener '%s': handler file '%s' not found", lc->name,
                                lc->handler_path);
            continue;
        }
        char searched[1024] = "";
        size_t used = 0;
        for (size_t p = 0; p < cfg->npaths && !lc->handler_path; p++) {
            char file[512];
            snprintf(file, sizeof file, "%s.lua", lc->handler);
            char *path = config_join(cfg->script_path[p], file);
            if (!path)
                luaL_error(L, "out of memory");
            int why = config_file_status(path);
            if (why == 0) {
                lc->handler_path = path;
            } else {
                /* Name the reason when it is not simply absent (EACCES after a user switch). */
                int w = snprintf(searched + used, sizeof searched - used, "%s%s%s%s%s",
                                 used ? ", " : "", path, why == ENOENT ? "" : " (",
                                 why == ENOENT ? "" : strerror(why), why == ENOENT ? "" : ")");
                if (w > 0 && (size_t)w < sizeof searched - used)
                    used += (size_t)w;
                free(path);
            }
        }
        if (!lc->handler_path)
            config_raise_at(L, line, "listener '%s': handler '%s' not found (searched %s)",
                            lc->name, lc->handler, searched);
    }
}

/* The sandbox the file runs in: a few safe libraries, `listen`, and settings. */
static void config_push_sandbox(lua_State *L)
{
    static const char *const safe[] = {"assert", "error", "ipairs", "next", "pairs", "pcall",
                                       "select", "tonumber", "tostring", "type", "xpcall",
                                       "string", "table", "math", "utf8", NULL};
    lua_newtable(L); /* env */
    lua_newtable(L); /* its metatable */
    lua_newtable(L); /* settings read back: upvalue of __newindex, and __index */
    lua_pushglobaltable(L);
    for (int i = 0; safe[i]; i++) {
        lua_getfield(L, -1, safe[i]);
        lua_setfield(L, -3, safe[i]);
    }
    lua_pop(L, 1);
    lua_newtable(L); /* os: only getenv and time */
    lua_getglobal(L, "os");
    lua_getfield(L, -1, "getenv");
    lua_setfield(L, -3, "getenv");
    lua_getfield(L, -1, "time");
    lua_setfield(L, -3, "time");
    lua_pop(L, 1);
    lua_setfield(L, -2, "os");
    lua_pushcfunction(L, config_listen);
    lua_setfield(L, -2, "listen");
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "__index");
    lua_pushcclosure(L, config_setting, 1);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
}

static int config_read_text(const char *file, struct config_load_ctx *c, char *err,
                            size_t errlen)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        snprintf(err, errlen, "%s:0: cannot open: %s", file, strerror(errno));
        return -1;
    }
    c->text = malloc(CONFIG_MAX_BYTES + 1);
    if (!c->text) {
        fclose(f);
        snprintf(err, errlen, "%s:0: out of memory", file);
        return -1;
    }
    c->textlen = fread(c->text, 1, CONFIG_MAX_BYTES + 1, f);
    fclose(f);
    if (c->textlen > CONFIG_MAX_BYTES) {
        snprintf(err, errlen, "%s:0: larger than %d bytes", file, CONFIG_MAX_BYTES);
        return -1;
    }
    return 0;
}

/* Runs in protected mode: everything that can raise. */
static int config_run(lua_State *L)
{
    struct config_load_ctx *c = config_ctx(L);
    luaL_openlibs(L);
    char chunkname[1100];
    snprintf(chunkname, sizeof chunkname, "@%s", c->cfg->file);
    int st = luaL_loadbufferx(L, c->text, c->textlen, chunkname, "t");
    if (st != LUA_OK)
        return lua_error(L);
    config_push_sandbox(L);
    lua_setupvalue(L, -2, 1); /* _ENV */
    lua_call(L, 0, 0);
    /* A listen whose error the file caught (pcall) left a half-filled listener behind. */
    for (size_t i = 0; i < c->cfg->nlisteners; i++)
        if (!c->cfg->listeners[i].complete)
            config_raise_at(L, c->cfg->listeners[i].line, "listener '%s': incomplete (its "
                            "error was caught)", c->cfg->listeners[i].name);
    config_build_script_path(L, c->cfg);
    config_resolve_handlers(L, c);
    return 0;
}

int config_load(const char *file, struct config **out, char *err, size_t errlen)
{
    struct config_load_ctx c = {0};
    struct config *cfg = calloc(1, sizeof *cfg);
    int rc = -1;
    if (!cfg) {
        snprintf(err, errlen, "%s:0: out of memory", file);
        return -1;
    }
    c.cfg = cfg;
    pthread_mutex_init(&cfg->options_lock, NULL);
    cfg->workers = 1;
    cfg->log_level = LOG_LVL_INFO;
    cfg->handler_budget = 0;
    cfg->handler_timeout = 1.0;
    cfg->handler_memory = 128LL << 20;
    cfg->file = strdup(file);
    char *tmp = strdup(file);
    cfg->dir = tmp ? strdup(dirname(tmp)) : NULL;
    free(tmp);
    if (!cfg->file || !cfg->dir) {
        snprintf(err, errlen, "%s:0: out of memory", file);
        goto out;
    }
    if (config_read_text(file, &c, err, errlen) != 0)
        goto out;
    cfg->pool = lalloc_new();
    cfg->L = cfg->pool ? lua_newstate(lalloc_fn, cfg->pool) : NULL;
    if (!cfg->L) {
        snprintf(err, errlen, "%s:0: out of memory", file);
        goto out;
    }
    lalloc_set_limit(cfg->pool, CONFIG_MAX_MEMORY, NULL, NULL);
    clock_gettime(CLOCK_MONOTONIC, &c.deadline);
    c.deadline.tv_sec += CONFIG_MAX_SECONDS;
    lua_sethook(cfg->L, config_hook, LUA_MASKCOUNT, CONFIG_HOOK_STEP);
    lua_pushlightuserdata(cfg->L, &c);
    lua_rawsetp(cfg->L, LUA_REGISTRYINDEX, &config_ctx_key);
    lua_pushcfunction(cfg->L, config_run);
    int status = lua_pcall(cfg->L, 0, 0, 0);
    lua_sethook(cfg->L, NULL, 0, 0);
    if (status == LUA_ERRMEM) {
        snprintf(err, errlen, "%s:0: the configuration holds more than %zu MiB", file,
                 CONFIG_MAX_MEMORY >> 20);
        goto out;
    }
    if (status != LUA_OK) {
        const char *msg = lua_tostring(cfg->L, -1);
        if (msg)
            snprintf(err, errlen, "%s", msg);
        else
            snprintf(err, errlen, "%s:0: error object is not a string", file);
        goto out;
    }
    if (cfg->nlisteners == 0) {
        snprintf(err, errlen, "%s:%d: no listener: add listen \"name\" { bind = ..., "
                 "handler = ... }", file, 1);
        goto out;
    }
    rc = 0;
out:
    free(c.text);
    if (rc == 0)
        *out = cfg;
    else
        config_free(cfg);
    return rc;
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        struct listener_cfg *lc = &cfg->listeners[i];
        free(lc->name);
        for (size_t j = 0; j < lc->nbinds; j++)
            free(lc->bind_strs[j]);
        free(lc->bind_strs);
        free(lc->binds);
        free(lc->handler);
        free(lc->handler_path);
        free(lc->ratelimit);
        free(lc->joins);
    }
    free(cfg->listeners);
    for (size_t i = 0; i < cfg->npaths; i++)
        free(cfg->script_path[i]);
    free(cfg->script_path);
    free(cfg->file);
    free(cfg->dir);
    free(cfg->user);
    free(cfg->metrics);
    if (cfg->L)
        lua_close(cfg->L);
    lalloc_free(cfg->pool);
    pthread_mutex_destroy(&cfg->options_lock);
    free(cfg);
}

/* Copies the value at idx of `from` onto `to` (checked by config_check_options). */
static void config_copy_value(lua_State *from, int idx, lua_State *to, int depth)
{
    switch (lua_type(from, idx)) {
    case LUA_TBOOLEAN:
        lua_pushboolean(to, lua_toboolean(from, idx));
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(from, idx))
            lua_pushinteger(to, lua_tointeger(from, idx));
        else
            lua_pushnumber(to, lua_tonumber(from, idx));
        break;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(from, idx, &len);
        lua_pushlstring(to, s, len);
        break;
    }
    case LUA_TTABLE:
        if (depth > OPTIONS_MAX_DEPTH) {
            lua_pushnil(to);
            break;
        }
        idx = lua_absindex(from, idx);
        luaL_checkstack(to, 3, "copying options");
        luaL_checkstack(from, 3, "copying options");
        lua_newtable(to);
        lua_pushnil(from);
        while (lua_next(from, idx)) {
            config_copy_value(from, -2, to, depth + 1);
            config_copy_value(from, -1, to, depth + 1);
            if (lua_isnil(to, -2))
                lua_pop(to, 2);
            else
                lua_rawset(to, -3);
            lua_pop(from, 1);
        }
        break;
    default:
        lua_pushnil(to);
    }
}

void config_push_options(const struct config *cfg, const struct listener_cfg *lc, lua_State *L)
{
    if (lc->options_ref == LUA_NOREF) {
        lua_newtable(L);
        return;
    }
    /* Workers rebuilding a state copy from their own threads: cfg->L's stack is shared. */
    pthread_mutex_t *lock = (pthread_mutex_t *)&cfg->options_lock;
    pthread_mutex_lock(lock);
    lua_rawgeti(cfg->L, LUA_REGISTRYINDEX, lc->options_ref);
    config_copy_value(cfg->L, -1, L, 0);
    lua_pop(cfg->L, 1);
    pthread_mutex_unlock(lock);
}

char *config_package_path(const struct config *cfg)
{
    size_t n = 64;
    for (size_t i = 0; i < cfg->npaths; i++)
        n += 3 * strlen(cfg->script_path[i]) + 40;
    char *s = malloc(n);
    if (!s)
        return NULL;
    size_t used = 0;
    for (size_t i = 0; i < cfg->npaths; i++) {
        const char *p = cfg->script_path[i];
        used += (size_t)snprintf(s + used, n - used, "%s/?.lua;%s/?/init.lua;%s/lib/?.lua;", p,
                                 p, p);
    }
    snprintf(s + used, n - used, ";");
    return s;
}

const struct listener_cfg *config_listener(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nlisteners; i++)
        if (strcmp(cfg->listeners[i].name, name) == 0)
            return &cfg->listeners[i];
    return NULL;
}
