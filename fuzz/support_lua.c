/* fuzz/support_lua.c: the Lua harness the Lua-driven fuzz targets share (see
 * support_lua.h): finding the source tree, making the state, the traceback handler, the
 * hook (instruction budget and line edges as libFuzzer extra counters), the per-input
 * pcall and the periodic full collection. The targets' own checks stay in their files. */
#include "support_lua.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_LUA_RUN_KEY "luadgram.fuzz.run" /* registry: the per-input function */
#define FUZZ_LUA_EDGES 4096
#define FUZZ_LUA_PATH_MAX 4096

/* libFuzzer's extra coverage: it reads every byte of the __libfuzzer_extra_counters
 * section after each input (and clears it before the next), and the section has to hold
 * plain static storage, so this is the one mutable global it forces. One copy, here: the
 * hook below is its only writer. CMake links this file into every fuzz target; in those
 * that run no Lua (fuzz_cmsg, fuzz_ber) the counters stay zero, which gives libFuzzer no
 * features. In the replay build nothing reads it. */
__attribute__((used, section("__libfuzzer_extra_counters")))
static uint8_t fuzz_lua_edges[FUZZ_LUA_EDGES];

/* Per-state bookkeeping, kept in the state's extra space (LUA_EXTRASPACE bytes). */
struct fuzz_lua_extra {
    uint16_t prev_line; /* the previous line event, shifted as AFL does */
    uint16_t runs;      /* inputs since the last full collection */
};
_Static_assert(sizeof(struct fuzz_lua_extra) <= LUA_EXTRASPACE, "extra space too small");

/* Count events end a runaway call with a Lua error; line events record an edge between
 * the previous line and this one (the previous one shifted, as AFL does, so A->B and B->A
 * differ). */
static void fuzz_lua_hook(lua_State *L, lua_Debug *ar)
{
    if (ar->event == LUA_HOOKCOUNT) {
        luaL_error(L, "instruction budget of %d exceeded", lua_gethookcount(L));
        return;
    }
    struct fuzz_lua_extra extra;
    memcpy(&extra, lua_getextraspace(L), sizeof extra);
    uint16_t cur = (uint16_t)ar->currentline;
    fuzz_lua_edges[(cur ^ extra.prev_line) % FUZZ_LUA_EDGES]++;
    extra.prev_line = (uint16_t)(cur >> 1);
    memcpy(lua_getextraspace(L), &extra, sizeof extra);
}

/* Message handler for lua_pcall: the error with a traceback. */
static int fuzz_lua_traceback(lua_State *L)
{
    luaL_traceback(L, L, luaL_tolstring(L, 1, NULL), 1);
    return 1;
}

/* Writes <the folder holding this executable>/.. into buf; returns 0, or -1 when it
 * cannot tell. */
static int fuzz_lua_exe_parent(char *buf, size_t len)
{
    char exe[FUZZ_LUA_PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    int m = snprintf(buf, len, "%s/..", exe);
    return m > 0 && (size_t)m < len ? 0 : -1;
}

/* Writes into dir the first candidate source tree holding t->script and into path that
 * script; returns 0, or -1 when no candidate holds it. */
static int fuzz_lua_find(const struct fuzz_lua_target *t, char *dir, char *path, size_t len)
{
    char exe_parent[FUZZ_LUA_PATH_MAX];
    const char *dirs[3] = { getenv("LUADGRAM_SRC"), NULL, NULL };
#ifdef LUADGRAM_SOURCE_DIR
    dirs[1] = LUADGRAM_SOURCE_DIR;
#endif
    if (t->beside_exe && fuzz_lua_exe_parent(exe_parent, sizeof exe_parent) == 0)
        dirs[2] = exe_parent;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        if (!dirs[i] || !dirs[i][0])
            continue;
        int n = snprintf(path, len, "%s/%s", dirs[i], t->script);
        if (n > 0 && (size_t)n < len && access(path, R_OK) == 0) {
            snprintf(dir, len, "%s", dirs[i]); /* shorter than path: fits */
            return 0;
        }
    }
    return -1;
}

/* A new state with the target's per-input function in the registry and an empty stack,
 * or NULL after printing why. */
static lua_State *fuzz_lua_open(const struct fuzz_lua_target *t)
{
    char dir[FUZZ_LUA_PATH_MAX], path[FUZZ_LUA_PATH_MAX];
    if (fuzz_lua_find(t, dir, path, sizeof path) != 0) {
        fprintf(stderr, "%s: cannot find %s; set LUADGRAM_SRC to the source tree\n",
                t->name, t->script);
        return NULL;
    }
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "%s: out of memory\n", t->name);
        return NULL;
    }
    memset(lua_getextraspace(L), 0, sizeof(struct fuzz_lua_extra));
    luaL_openlibs(L);
    lua_pushcfunction(L, fuzz_lua_traceback);                      /* msgh */
    if (t->load(L, dir, path) != LUA_OK)                           /* msgh ... err */
        goto fail;
    if (!lua_isfunction(L, -1)) {                                  /* msgh ... run */
        lua_pushliteral(L, "the harness returned no function");
        goto fail;
    }
    lua_setfield(L, LUA_REGISTRYINDEX, FUZZ_LUA_RUN_KEY);          /* msgh ... */
    lua_settop(L, 0);
    return L;
fail:
    fprintf(stderr, "%s: loading %s: %s\n", t->name, path, lua_tostring(L, -1));
    lua_close(L);
    return NULL;
}

lua_State *fuzz_lua_state(lua_State **slot, const struct fuzz_lua_target *t)
{
    if (!*slot) {
        *slot = fuzz_lua_open(t);
        if (!*slot)
            abort();
    }
    return *slot;
}

void fuzz_lua_run(lua_State *L, const struct fuzz_lua_target *t, const uint8_t *data,
                  size_t size, int nargs)
{
    int base = lua_gettop(L) - nargs + 1;                          /* args at base.. */
    lua_pushcfunction(L, fuzz_lua_traceback);                      /* args msgh */
    lua_getfield(L, LUA_REGISTRYINDEX, FUZZ_LUA_RUN_KEY);          /* args msgh run */
    lua_pushlstring(L, (const char *)data, size);                  /* args msgh run data */
    lua_rotate(L, base, 3);                                        /* msgh run data args */
    lua_sethook(L, fuzz_lua_hook, LUA_MASKCOUNT | LUA_MASKLINE, t->max_instructions);
    int rc = lua_pcall(L, 1 + nargs, 0, base);                     /* msgh [err] */
    lua_sethook(L, NULL, 0, 0);
    if (rc != LUA_OK) {
        fprintf(stderr, "%s: input of %zu bytes: %s\n", t->name, size, lua_tostring(L, -1));
        abort();
    }
    lua_settop(L, base - 1);

    if (t->gc_every == 0)
        return;
    struct fuzz_lua_extra extra;
    memcpy(&extra, lua_getextraspace(L), sizeof extra);
    if (++extra.runs >= t->gc_every) {
        extra.runs = 0;
        lua_gc(L, LUA_GCCOLLECT);
    }
    memcpy(lua_getextraspace(L), &extra, sizeof extra);
}
