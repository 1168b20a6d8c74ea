/* fuzz/fuzz_syslog.c: libFuzzer target for the syslog parser, scripts/lib/syslog_parse.lua.
 *
 * Each input is one datagram. syslog.parse must return a table whose raw is the input, with
 * a known format, facility 0..23, severity 0..7, a string msg; syslog.format5424 of that
 * record must parse back as RFC 5424 with the same PRI, SD and MSG. A Lua error or a broken
 * invariant prints the reason and abort()s, which libFuzzer reports as a crash.
 *
 * Guards: a count hook ends runaway Lua code after FUZZ_MAX_INSTRUCTIONS VM instructions; a
 * hang inside a single C call (a pattern match) is left to libFuzzer's -timeout. The same
 * hook, on line events, feeds Lua line-to-line edges to libFuzzer as extra counters, so the
 * fuzzer is guided by the Lua parser's own branches and not only by this file.
 *
 * The script is found through $LUADGRAM_SRC, else the compile-time LUADGRAM_SOURCE_DIR,
 * else ../scripts/lib/ beside the directory holding this executable (a build directory
 * directly inside the source tree). */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_SCRIPT "scripts/lib/syslog_parse.lua"
#define FUZZ_CHECK_KEY "fuzz_syslog.check"
#define FUZZ_NOW 1709640000 /* 2024-03-05T12:00:00Z: fixed, so every run is repeatable */
#define FUZZ_MAX_INSTRUCTIONS 50000000
#define FUZZ_GC_EVERY 1024
#define FUZZ_EDGES 4096

/* libFuzzer reads extra coverage from this section; it has to be a static array. */
__attribute__((used, section("__libfuzzer_extra_counters")))
static uint8_t fuzz_edges[FUZZ_EDGES];

/* Per-state bookkeeping, kept in the state's extra space (LUA_EXTRASPACE bytes). */
struct fuzz_extra {
    uint16_t prev_line; /* the previous line event, shifted as AFL does */
    uint16_t runs;      /* inputs since the last full collection */
};
_Static_assert(sizeof(struct fuzz_extra) <= LUA_EXTRASPACE, "extra space too small");

/* The invariants, in Lua: the chunk receives the module and returns the check function,
 * called as check(data, now, with_tz_offset). */
static const char fuzz_check_src[] =
    "local syslog = ...\n"
    "local FORMATS = { rfc5424 = true, rfc3164 = true, unknown = true }\n"
    "local function code(v, max)\n"
    "  return math.type(v) == 'integer' and v >= 0 and v <= max\n"
    "end\n"
    "local function same_sd(a, b)\n"
    "  if a == nil or b == nil then return a == b end\n"
    "  if #a ~= #b then return false end\n"
    "  for i = 1, #a do\n"
    "    local pa, pb = a[i].params, b[i].params\n"
    "    if a[i].id ~= b[i].id or #pa ~= #pb then return false end\n"
    "    for j = 1, #pa do\n"
    "      if pa[j].name ~= pb[j].name or pa[j].value ~= pb[j].value then return false end\n"
    "    end\n"
    "  end\n"
    "  return true\n"
    "end\n"
    "local function long_names(sd)\n" /* format5424 cuts SD names to 32 bytes */
    "  for _, e in ipairs(sd or {}) do\n"
    "    if #e.id > 32 then return true end\n"
    "    for _, p in ipairs(e.params) do if #p.name > 32 then return true end end\n"
    "  end\n"
    "  return false\n"
    "end\n"
    "return function(data, now, with_tz)\n"
    "  local rec = syslog.parse(data, now, with_tz and { tz_offset = 3600 } or nil)\n"
    "  assert(type(rec) == 'table', 'parse returned a ' .. type(rec))\n"
    "  assert(rec.raw == data, 'raw is not the input')\n"
    "  assert(FORMATS[rec.format], 'unknown format')\n"
    "  assert(type(rec.msg) == 'string' and #rec.msg <= #data, 'bad msg')\n"
    "  assert(code(rec.facility, 23) and code(rec.severity, 7), 'bad facility/severity')\n"
    "  assert(rec.pri == nil or rec.pri == rec.facility * 8 + rec.severity, 'bad pri')\n"
    "  assert(rec.parse_error == nil or type(rec.parse_error) == 'string', 'bad parse_error')\n"
    "  local line = syslog.format5424(rec)\n"
    "  local again = syslog.parse(line, now)\n"
    "  assert(again.format == 'rfc5424', 'format5424 made no RFC 5424: ' .. line)\n"
    "  local err = again.parse_error\n"
    "  assert(err == nil or err:find('^invalid UTF%-8'), 'format5424 made ' .. tostring(err))\n"
    "  assert(again.pri == rec.facility * 8 + rec.severity, 'PRI changed')\n"
    "  assert(long_names(rec.sd) or same_sd(rec.sd, again.sd), 'SD changed')\n"
    "  if not rec.msg:find('[\\n\\r%z]$') then assert(again.msg == rec.msg, 'MSG changed') end\n"
    "  if rec.time and again.time then\n"
    "    assert(math.abs(rec.time - again.time) < 1e-3, 'time changed')\n"
    "  end\n"
    "end\n";

/* Count events end a runaway call with a Lua error; line events record an edge. */
static void fuzz_hook(lua_State *L, lua_Debug *ar)
{
    if (ar->event == LUA_HOOKCOUNT) {
        luaL_error(L, "instruction budget of %d exceeded", FUZZ_MAX_INSTRUCTIONS);
        return;
    }
    struct fuzz_extra extra;
    memcpy(&extra, lua_getextraspace(L), sizeof extra);
    uint16_t cur = (uint16_t)ar->currentline;
    fuzz_edges[(cur ^ extra.prev_line) % FUZZ_EDGES]++;
    extra.prev_line = (uint16_t)(cur >> 1);
    memcpy(lua_getextraspace(L), &extra, sizeof extra);
}

/* Message handler for lua_pcall: the error with a traceback. */
static int fuzz_traceback(lua_State *L)
{
    luaL_traceback(L, L, luaL_tolstring(L, 1, NULL), 1);
    return 1;
}

/* Writes the first readable script location into buf; returns 0, or -1 when none is. */
static int fuzz_script_path(char *buf, size_t len)
{
    const char *dirs[2] = { getenv("LUADGRAM_SRC"), NULL };
#ifdef LUADGRAM_SOURCE_DIR
    dirs[1] = LUADGRAM_SOURCE_DIR;
#endif
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        if (!dirs[i] || !dirs[i][0])
            continue;
        int n = snprintf(buf, len, "%s/" FUZZ_SCRIPT, dirs[i]);
        if (n > 0 && (size_t)n < len && access(buf, R_OK) == 0)
            return 0;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    int m = snprintf(buf, len, "%s/../" FUZZ_SCRIPT, exe);
    if (m <= 0 || (size_t)m >= len || access(buf, R_OK) != 0)
        return -1;
    return 0;
}

/* A new state with the module loaded and the check function in the registry, or NULL
 * after printing why. */
static lua_State *fuzz_open(void)
{
    char path[4096];
    if (fuzz_script_path(path, sizeof path) != 0) {
        fprintf(stderr, "fuzz_syslog: cannot find " FUZZ_SCRIPT
                "; set LUADGRAM_SRC to the source tree\n");
        return NULL;
    }
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "fuzz_syslog: out of memory\n");
        return NULL;
    }
    memset(lua_getextraspace(L), 0, sizeof(struct fuzz_extra));
    luaL_openlibs(L);
    lua_pushcfunction(L, fuzz_traceback);                       /* msgh */
    if (luaL_loadfile(L, path) != LUA_OK)                       /* msgh chunk */
        goto fail;
    lua_pushliteral(L, "syslog_parse");                         /* msgh chunk name */
    if (lua_pcall(L, 1, 1, 1) != LUA_OK)                        /* msgh module */
        goto fail;
    if (luaL_loadbuffer(L, fuzz_check_src, sizeof fuzz_check_src - 1, "=fuzz_syslog_check")
        != LUA_OK)                                              /* msgh module chunk */
        goto fail;
    lua_insert(L, -2);                                          /* msgh chunk module */
    if (lua_pcall(L, 1, 1, 1) != LUA_OK)                        /* msgh check */
        goto fail;
    if (!lua_isfunction(L, -1)) {
        lua_pushliteral(L, "the check chunk returned no function");
        goto fail;
    }
    lua_setfield(L, LUA_REGISTRYINDEX, FUZZ_CHECK_KEY);         /* msgh */
    lua_settop(L, 0);
    return L;
fail:
    fprintf(stderr, "fuzz_syslog: loading %s: %s\n", path, lua_tostring(L, -1));
    lua_close(L);
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* libFuzzer passes no context to this function, so the one Lua state lives in a
     * static, made on the first input and reused for all (never closed: the process
     * ends with the fuzzer). */
    static lua_State *fuzz_L;
    if (!fuzz_L) {
        fuzz_L = fuzz_open();
        if (!fuzz_L)
            abort();
    }
    lua_State *L = fuzz_L;

    lua_settop(L, 0);
    lua_pushcfunction(L, fuzz_traceback);                       /* msgh */
    lua_getfield(L, LUA_REGISTRYINDEX, FUZZ_CHECK_KEY);         /* msgh check */
    lua_pushlstring(L, (const char *)data, size);               /* msgh check data */
    lua_pushinteger(L, FUZZ_NOW);                               /* msgh check data now */
    lua_pushboolean(L, (int)(size & 1));                        /* ... with_tz */
    lua_sethook(L, fuzz_hook, LUA_MASKCOUNT | LUA_MASKLINE, FUZZ_MAX_INSTRUCTIONS);
    int rc = lua_pcall(L, 3, 0, 1);                             /* msgh [err] */
    lua_sethook(L, NULL, 0, 0);
    if (rc != LUA_OK) {
        fprintf(stderr, "fuzz_syslog: input of %zu bytes: %s\n", size, lua_tostring(L, -1));
        abort();
    }
    lua_settop(L, 0);

    struct fuzz_extra extra;
    memcpy(&extra, lua_getextraspace(L), sizeof extra);
    if (++extra.runs >= FUZZ_GC_EVERY) {
        extra.runs = 0;
        lua_gc(L, LUA_GCCOLLECT);
    }
    memcpy(lua_getextraspace(L), &extra, sizeof extra);
    return 0;
}
