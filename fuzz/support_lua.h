/* fuzz/support_lua.h: the Lua harness shared by the fuzz targets that drive Lua scripts
 * (fuzz_dns, fuzz_syslog). Each target keeps its own Lua check code and describes itself in
 * a constant struct fuzz_lua_target; this part finds the source tree, makes the state, and
 * runs one input under lua_pcall with a traceback handler and a hook that both ends runaway
 * Lua code and feeds Lua line-to-line edges to libFuzzer as extra counters. A Lua error (a
 * broken invariant, the instruction budget) prints the reason and abort()s, which libFuzzer
 * reports as a crash. A hang inside a single C call (a pattern match) is left to libFuzzer's
 * -timeout. */
#ifndef LUADGRAM_FUZZ_SUPPORT_LUA_H
#define LUADGRAM_FUZZ_SUPPORT_LUA_H

#include <lua.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Loads the target's harness into L. Called with the traceback handler at index 1 and
 * nothing above it, so chunks run as lua_pcall(L, n, 1, 1). Returns LUA_OK with the
 * per-input function on top, or another status with the error message on top.
 * src_dir is the source tree, script_path is src_dir/<the target's script>. */
typedef int (*fuzz_lua_load_fn)(lua_State *L, const char *src_dir, const char *script_path);

/* What one Lua-driven target is; each target defines one as a constant. */
struct fuzz_lua_target {
    const char *name;         /* "fuzz_dns": starts every message */
    const char *script;       /* a file under the source tree ("scripts/dns.lua") */
    bool beside_exe;          /* also look in <the executable's folder>/.. */
    int max_instructions;     /* VM instructions one input may run */
    uint16_t gc_every;        /* a full collection after this many inputs; 0: never */
    fuzz_lua_load_fn load;    /* puts the per-input function on the stack */
};

/* *slot, after making it on the first call: a new state with the target loaded and an
 * empty stack. abort()s after printing why when that fails. libFuzzer passes no context,
 * so each target keeps its one state in a static slot; it is never closed (the process
 * ends with the fuzzer). The source tree is the first of $LUADGRAM_SRC, the compile-time
 * LUADGRAM_SOURCE_DIR and (with beside_exe) <the executable's folder>/.. that holds
 * t->script. */
lua_State *fuzz_lua_state(lua_State **slot, const struct fuzz_lua_target *t);

/* Calls the per-input function as f(data, a1, ..., an), a1 .. an being the nargs values
 * the caller pushed, under the hook: a count hook raises after t->max_instructions
 * instructions, a line hook feeds edges to libFuzzer. On a Lua error prints it with a
 * traceback and abort()s; else pops the arguments and returns. */
void fuzz_lua_run(lua_State *L, const struct fuzz_lua_target *t, const uint8_t *data,
                  size_t size, int nargs);

#endif
