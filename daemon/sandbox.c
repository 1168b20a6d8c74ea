/* daemon/sandbox.c: the sandbox of handler states (sandbox.h). The lists below are the
 * whole policy: a library's function that no list names is replaced by a stub that raises
 * its name and the setting that allows it; README.md ("Sandbox") gives the same reasons. */
#include "sandbox.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <lauxlib.h>
#include <lualib.h>

#include "worker.h"

#define SANDBOX_WHY "is not allowed in handlers (unsafe = true on the listener allows it)"

/* Base functions (globals) handlers keep. */
static const char *const sandbox_base[] = {
    /* the language's own toolbox: every handler needs them */
    "assert", "error", "ipairs", "next", "pairs", "select", "tonumber", "tostring", "type",
    /* protected calls: a handler catches its own errors (the stop of a call past a limit
     * cannot be caught; worker.c) */
    "pcall", "xpcall",
    /* metatables and raw access: how modules and objects are built */
    "getmetatable", "setmetatable", "rawequal", "rawget", "rawlen", "rawset",
    /* measuring and tuning the state's own collector; handler_memory holds anyway */
    "collectgarbage",
    /* lines on the daemon's stdout and Lua warnings on stderr (the journal under systemd) */
    "print", "warn",
    /* Lua modules from script_path, C modules from the system's Lua C path (lua-cjson) */
    "require",
    /* text chunks only (wrapped below): a binary chunk can crash the VM */
    "load", "loadfile", "dofile",
    NULL,
};

/* os: time and environment only. */
static const char *const sandbox_os[] = {
    "clock", "date", "difftime", "time", /* clocks and formatting */
    "getenv",                            /* read-only configuration from the environment */
    NULL,
};

/* io: files a handler opens itself (collectors write their output through them). */
static const char *const sandbox_io[] = {
    "open",          /* the collectors' output files; file methods come with the handles */
    "lines",         /* reading a file by name: io.open and f:lines in one */
    "close", "type", /* on handles the handler holds */
    NULL,
};

/* package: require's own machinery stays (searchers, loaded, preload, path, config);
 * loadlib and a changed cpath would load any shared object. */
static const char *const sandbox_package[] = {
    "searchpath", /* finds a file on a path, loads nothing */
    NULL,
};

/* debug: only the traceback (for error messages); the rest reaches into other functions'
 * locals, upvalues and the registry. */
static const char *const sandbox_debug[] = {
    "traceback",
    NULL,
};

/* Kept whole: string, table, math, utf8 (pure functions on values) and coroutine (the
 * handler's own threads, watched by worker.c like the main one). */

static int sandbox_listed(const char *const *list, const char *name)
{
    for (; *list; list++)
        if (strcmp(*list, name) == 0)
            return 1;
    return 0;
}

/* The stub of a forbidden function. Upvalue 1: its name ("os.execute"). */
static int sandbox_forbidden(lua_State *L)
{
    return luaL_error(L, "%s " SANDBOX_WHY, lua_tostring(L, lua_upvalueindex(1)));
}

/* In the table at idx, replaces every function whose key is not on list by a stub named
 * prefix.key (prefix NULL: the global table, named key). */
static void sandbox_filter(lua_State *L, int idx, const char *prefix, const char *const *list)
{
    idx = lua_absindex(L, idx);
    lua_newtable(L); /* the keys to replace: not while iterating */
    int todo = lua_gettop(L);
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TFUNCTION &&
            !sandbox_listed(list, lua_tostring(L, -2))) {
            lua_pushvalue(L, -2);
            lua_rawseti(L, todo, ++n);
        }
        lua_pop(L, 1);
    }
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, todo, i);
        const char *key = lua_tostring(L, -1);
        if (prefix)
            lua_pushfstring(L, "%s.%s", prefix, key);
        else
            lua_pushstring(L, key);
        lua_pushcclosure(L, sandbox_forbidden, 1);
        lua_setfield(L, idx, key);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* Raises the sandbox's error for a binary chunk when msg (a load error) is Lua's refusal of
 * one in text mode. what: "load", "loadfile", "dofile". */
static void sandbox_check_binary(lua_State *L, const char *msg, const char *what)
{
    if (msg && strstr(msg, "attempt to load a binary chunk"))
        luaL_error(L, "%s of a binary chunk " SANDBOX_WHY, what);
}

/* load(chunk [, chunkname [, mode [, env]]]) in text mode. Upvalue 1: the library's load. */
static int sandbox_load(lua_State *L)
{
    const char *mode = luaL_optstring(L, 3, "bt");
    if (strchr(mode, 'b') && !strchr(mode, 't'))
        return luaL_error(L, "load of a binary chunk " SANDBOX_WHY);
    int n = lua_gettop(L); /* env given as nil differs from env not given */
    if (n < 3) {
        lua_settop(L, 2);
        lua_pushliteral(L, "t");
        n = 3;
    } else {
        lua_pushliteral(L, "t");
        lua_replace(L, 3);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, 2);
    if (lua_isnil(L, -2))
        sandbox_check_binary(L, lua_tostring(L, -1), "load");
    return 2;
}

/* loadfile([filename [, mode [, env]]]) in text mode. */
static int sandbox_loadfile(lua_State *L)
{
    const char *fname = luaL_optstring(L, 1, NULL);
    const char *mode = luaL_optstring(L, 2, "bt");
    int env = !lua_isnone(L, 3) ? 3 : 0;
    if (strchr(mode, 'b') && !strchr(mode, 't'))
        return luaL_error(L, "loadfile of a binary chunk " SANDBOX_WHY);
    if (luaL_loadfilex(L, fname, "t") != LUA_OK) {
        sandbox_check_binary(L, lua_tostring(L, -1), "loadfile");
        luaL_pushfail(L);
        lua_insert(L, -2);
        return 2;
    }
    if (env) {
        lua_pushvalue(L, env);
        if (!lua_setupvalue(L, -2, 1))
            lua_pop(L, 1);
    }
    return 1;
}

static int sandbox_dofile_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    return lua_gettop(L) - 1;
}

/* dofile([filename]) in text mode. */
static int sandbox_dofile(lua_State *L)
{
    const char *fname = luaL_optstring(L, 1, NULL);
    lua_settop(L, 1);
    if (luaL_loadfilex(L, fname, "t") != LUA_OK) {
        sandbox_check_binary(L, lua_tostring(L, -1), "dofile");
        return lua_error(L);
    }
    lua_callk(L, 0, LUA_MULTRET, 0, sandbox_dofile_k);
    return sandbox_dofile_k(L, 0, 0);
}

/* os.exit([code]) of an unsafe listener: the daemon's clean stop (SIGTERM to itself: every
 * handler's stop runs, sockets close, exit status 0), logged with the code, and the calling
 * handler ends with an error, so that nothing after os.exit runs. */
static int sandbox_os_exit(lua_State *L)
{
    int code = lua_isboolean(L, 1) ? !lua_toboolean(L, 1) : (int)luaL_optinteger(L, 1, 0);
    struct worker *w = worker_of(L);
    struct wlistener *wl = wlistener_of(L);
    if (w && wl)
        log_warn(w->d->log, "listener '%s': os.exit(%d) from its handler: stopping the daemon "
                 "cleanly (as on SIGTERM)", wl->cfg->name, code);
    kill(getpid(), SIGTERM);
    return luaL_error(L, "os.exit(%d): the daemon is stopping cleanly (as on SIGTERM)", code);
}

/* __newindex of the package proxy: everything but cpath goes to the real table. */
static int sandbox_package_set(lua_State *L)
{
    const char *key = lua_tostring(L, 2);
    if (key && strcmp(key, "cpath") == 0)
        return luaL_error(L, "changing package.cpath " SANDBOX_WHY);
    lua_rawset(L, lua_upvalueindex(1));
    return 0;
}

static int sandbox_package_pairs(lua_State *L)
{
    lua_getglobal(L, "next");
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushnil(L);
    return 3;
}

/* Puts a proxy in place of the package table (global and package.loaded.package): reads go
 * to the real one, which require keeps using; writing cpath raises. */
static void sandbox_package_proxy(lua_State *L)
{
    lua_getglobal(L, "package");
    int real = lua_gettop(L);
    lua_newtable(L);                  /* the proxy */
    lua_createtable(L, 0, 4);         /* its metatable */
    lua_pushvalue(L, real);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, real);
    lua_pushcclosure(L, sandbox_package_set, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushvalue(L, real);
    lua_pushcclosure(L, sandbox_package_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pushliteral(L, "package");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "package");
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_insert(L, -2);
    lua_setfield(L, -2, "package");
    lua_pop(L, 2);
}

/* Replaces global `name` (a C function of the base library) by f with the original as
 * upvalue 1. */
static void sandbox_wrap_global(lua_State *L, const char *name, lua_CFunction f)
{
    lua_getglobal(L, name);
    lua_pushcclosure(L, f, 1);
    lua_setglobal(L, name);
}

void sandbox_apply(lua_State *L, int unsafe)
{
    lua_getglobal(L, "os");
    lua_pushcfunction(L, sandbox_os_exit);
    lua_setfield(L, -2, "exit");
    lua_pop(L, 1);
    if (unsafe)
        return;
    static const struct {
        const char *name;
        const char *const *allow;
    } libs[] = {
        {"os", sandbox_os},
        {"io", sandbox_io},
        {"package", sandbox_package},
        {"debug", sandbox_debug},
    };
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
        if (lua_getglobal(L, libs[i].name) == LUA_TTABLE)
            sandbox_filter(L, -1, libs[i].name, libs[i].allow);
        lua_pop(L, 1);
    }
    lua_pushglobaltable(L);
    sandbox_filter(L, -1, NULL, sandbox_base);
    lua_pop(L, 1);
    sandbox_wrap_global(L, "load", sandbox_load);
    lua_register(L, "loadfile", sandbox_loadfile);
    lua_register(L, "dofile", sandbox_dofile);
    sandbox_package_proxy(L);
}
