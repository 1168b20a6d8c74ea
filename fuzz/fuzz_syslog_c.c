/* fuzz/fuzz_syslog_c.c: differential libFuzzer target for the C syslog parser and JSON
 * writer (daemon/codec/syslog_parse.c, syslog_json.c, as require "luadgram.syslog") against
 * the Lua reference, scripts/lib/syslog_parse.lua.
 *
 * Each input is one datagram. Both parsers must give the same record: the same fields, the
 * same values, numbers of the same type (integer or float), SD elements in the same order.
 * The C module's JSON line must be valid UTF-8 without raw control bytes, decode (lua-cjson)
 * to the object the Lua handler encoded before the C path (the reference record with
 * facility/severity names, raw_b64 per the raw option, every string made valid UTF-8 by
 * output_jsonl.utf8_fix), and come with the record's facility * 8 + severity, error flag and
 * HOSTNAME. The input's length picks the variant: bit 0 a tz_offset, bits 1-2 the raw
 * option, bits 3-4 the reception time (spring, summer, a New Year's Eve, before 1970).
 *
 * The harness around it is fuzz/support_lua.c (finding the source tree, the state, the
 * instruction budget and Lua line coverage as extra counters); any difference prints both
 * values with a traceback and abort()s, which libFuzzer reports as a crash. */
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>

#include "lbind.h"
#include "support_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INSTRUCTIONS 50000000
#define FUZZ_GC_EVERY 1024

/* The reception times (epoch seconds) the input's length selects. */
static const double fuzz_nows[4] = {
    1709640000.25,  /* 2024-03-05T12:00:00.25Z */
    1719835200.5,   /* 2024-07-01T12:00:00.5Z */
    1704067199.75,  /* 2023-12-31T23:59:59.75Z */
    -86400.125,     /* 1969-12-31 */
};

/* The check, in Lua: the chunk receives the reference module, output_jsonl and the C module
 * and returns check(data, now, with_tz, raw). */
static const char fuzz_check_src[] =
    "local ref, output_jsonl, c = ...\n"
    "local cjson = require 'cjson'\n"
    "local json = cjson.new()\n"
    "json.encode_number_precision(14)\n"
    "json.encode_invalid_numbers('null')\n"
    "json.encode_sparse_array(true)\n"
    "local RAW = { 'errors', 'always', 'never' }\n"
    "local writers = {}\n"
    "for i, raw in ipairs(RAW) do\n"
    "  writers[i] = c.json_writer { listener = 'fz', raw = raw, hostname = true }\n"
    "end\n"
    "local function same(a, b, path)\n"
    "  if type(a) ~= type(b) then\n"
    "    error(path .. ': ' .. type(a) .. ' vs ' .. type(b), 0)\n"
    "  end\n"
    "  if type(a) == 'number' then\n"
    "    if math.type(a) ~= math.type(b) or a ~= b then\n"
    "      error(('%s: %.17g (%s) vs %.17g (%s)'):format(path, a, math.type(a), b,\n"
    "        math.type(b)), 0)\n"
    "    end\n"
    "  elseif type(a) == 'table' then\n"
    "    for k, v in pairs(a) do same(v, b[k], path .. '.' .. tostring(k)) end\n"
    "    for k in pairs(b) do\n"
    "      if a[k] == nil then error(path .. '.' .. tostring(k) .. ': only in C', 0) end\n"
    "    end\n"
    "  elseif a ~= b then\n"
    "    error(('%s: %q vs %q'):format(path, a, b), 0)\n"
    "  end\n"
    "end\n"
    "local function utf8_copy(v)\n"
    "  if type(v) == 'string' then return output_jsonl.utf8_fix(v) end\n"
    "  if type(v) ~= 'table' then return v end\n"
    "  local out = {}\n"
    "  for k, x in pairs(v) do out[utf8_copy(k)] = utf8_copy(x) end\n"
    "  return out\n"
    "end\n"
    /* What scripts/syslog.lua wrote for a record before the C path. */
    "local function handler_object(rec, now, raw, peer)\n"
    "  if (rec.parse_error and raw ~= 'never') or raw == 'always' then\n"
    "    rec.raw_b64 = output_jsonl.base64(rec.raw)\n"
    "  end\n"
    "  rec.raw, rec.version = nil, nil\n"
    "  rec.facility, rec.severity = rec.facility_name, rec.severity_name\n"
    "  rec.facility_name, rec.severity_name = nil, nil\n"
    "  for _, e in ipairs(rec.sd or {}) do\n"
    "    if e.params[1] == nil then e.params = nil end\n"
    "  end\n"
    "  rec.listener, rec.received, rec.peer = 'fz', now, peer\n"
    "  return json.decode(json.encode(utf8_copy(rec)))\n"
    "end\n"
    "return function(data, now, with_tz, raw)\n"
    "  local tz = with_tz and 3600 or nil\n"
    "  local opts = with_tz and { tz_offset = tz } or nil\n"
    "  local want = ref.parse(data, now, opts)\n"
    "  same(want, c.parse(data, now, opts), 'rec')\n"
    "  local line, code, failed, host = writers[raw](data, now, tz, '127.0.0.1:514')\n"
    "  assert(utf8.len(line), 'the line is not valid UTF-8')\n"
    "  assert(not line:find('[%z\\1-\\31]'), 'a raw control byte in the line')\n"
    "  assert(code == want.facility * 8 + want.severity, 'code')\n"
    "  assert(failed == (want.parse_error ~= nil), 'failed')\n"
    "  assert(host == want.hostname, 'hostname')\n"
    "  same(handler_object(want, now, RAW[raw], '127.0.0.1:514'), json.decode(line), 'line')\n"
    "end\n";

/* Loads the reference parser and output_jsonl, opens the C module, then runs the check chunk
 * with the three; leaves check() on top (support_lua.h). */
static int fuzz_syslog_c_load(lua_State *L, const char *src_dir, const char *script_path)
{
    int rc = luaL_loadfile(L, script_path);                     /* msgh chunk */
    if (rc != LUA_OK)
        return rc;
    lua_pushliteral(L, "syslog_parse");
    rc = lua_pcall(L, 1, 1, 1);                                 /* msgh ref */
    if (rc != LUA_OK)
        return rc;
    lua_pushfstring(L, "%s/scripts/lib/output_jsonl.lua", src_dir);
    rc = luaL_loadfile(L, lua_tostring(L, -1));                 /* msgh ref path chunk */
    if (rc != LUA_OK)
        return rc;
    lua_remove(L, -2);                                          /* msgh ref chunk */
    lua_pushliteral(L, "output_jsonl");
    rc = lua_pcall(L, 1, 1, 1);                                 /* msgh ref out */
    if (rc != LUA_OK)
        return rc;
    luaL_requiref(L, "luadgram.syslog", luaopen_luadgram_syslog, 0); /* msgh ref out c */
    rc = luaL_loadbuffer(L, fuzz_check_src, sizeof fuzz_check_src - 1, "=fuzz_syslog_c_check");
    if (rc != LUA_OK)                                           /* msgh ref out c chunk */
        return rc;
    lua_insert(L, -4);                                          /* msgh chunk ref out c */
    return lua_pcall(L, 3, 1, 1);                               /* msgh check */
}

static const struct fuzz_lua_target fuzz_syslog_c = {
    .name = "fuzz_syslog_c",
    .script = "scripts/lib/syslog_parse.lua",
    .beside_exe = true,
    .max_instructions = FUZZ_MAX_INSTRUCTIONS,
    .gc_every = FUZZ_GC_EVERY,
    .load = fuzz_syslog_c_load,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lua_State *fuzz_L; /* libFuzzer passes no context: the one state (support_lua.h) */
    lua_State *L = fuzz_lua_state(&fuzz_L, &fuzz_syslog_c);
    lua_pushnumber(L, fuzz_nows[(size >> 3) & 3]);              /* now */
    lua_pushboolean(L, (int)(size & 1));                        /* now with_tz */
    lua_pushinteger(L, (lua_Integer)((size >> 1) & 3) % 3 + 1); /* now with_tz raw */
    fuzz_lua_run(L, &fuzz_syslog_c, data, size, 3);             /* check(data, ...) */
    return 0;
}
