/* fuzz/fuzz_syslog.c: libFuzzer target for the syslog parser, scripts/lib/syslog_parse.lua.
 *
 * Each input is one datagram. syslog.parse must return a table whose raw is the input, with
 * a known format, facility 0..23, severity 0..7, a string msg; syslog.format5424 of that
 * record must parse back as RFC 5424 with the same PRI, SD and MSG. A Lua error or a broken
 * invariant prints the reason and abort()s, which libFuzzer reports as a crash.
 *
 * The harness around that is fuzz/support_lua.c: it finds the script through $LUADGRAM_SRC,
 * else the compile-time LUADGRAM_SOURCE_DIR, else ../scripts/lib/ beside the directory
 * holding this executable (a build directory directly inside the source tree); a count hook
 * ends runaway Lua code after FUZZ_MAX_INSTRUCTIONS VM instructions and, on line events,
 * feeds Lua line-to-line edges to libFuzzer as extra counters, so the fuzzer is guided by
 * the Lua parser's own branches and not only by this file; every FUZZ_GC_EVERY inputs it
 * runs a full collection. */
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>

#include "support_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW 1709640000 /* 2024-03-05T12:00:00Z: fixed, so every run is repeatable */
#define FUZZ_MAX_INSTRUCTIONS 50000000
#define FUZZ_GC_EVERY 1024

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

/* Loads the parser module, then runs the check chunk with it; leaves check() on top
 * (support_lua.h). */
static int fuzz_syslog_load(lua_State *L, const char *src_dir, const char *script_path)
{
    (void)src_dir;
    int rc = luaL_loadfile(L, script_path);                     /* msgh chunk */
    if (rc != LUA_OK)
        return rc;
    lua_pushliteral(L, "syslog_parse");                         /* msgh chunk name */
    rc = lua_pcall(L, 1, 1, 1);                                 /* msgh module */
    if (rc != LUA_OK)
        return rc;
    rc = luaL_loadbuffer(L, fuzz_check_src, sizeof fuzz_check_src - 1, "=fuzz_syslog_check");
    if (rc != LUA_OK)                                           /* msgh module chunk */
        return rc;
    lua_insert(L, -2);                                          /* msgh chunk module */
    return lua_pcall(L, 1, 1, 1);                               /* msgh check */
}

static const struct fuzz_lua_target fuzz_syslog = {
    .name = "fuzz_syslog",
    .script = "scripts/lib/syslog_parse.lua",
    .beside_exe = true,
    .max_instructions = FUZZ_MAX_INSTRUCTIONS,
    .gc_every = FUZZ_GC_EVERY,
    .load = fuzz_syslog_load,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lua_State *fuzz_L; /* libFuzzer passes no context: the one state (support_lua.h) */
    lua_State *L = fuzz_lua_state(&fuzz_L, &fuzz_syslog);
    lua_pushinteger(L, FUZZ_NOW);                               /* now */
    lua_pushboolean(L, (int)(size & 1));                        /* now with_tz */
    fuzz_lua_run(L, &fuzz_syslog, data, size, 2);               /* check(data, now, with_tz) */
    return 0;
}
