/* fuzz/fuzz_dns.c: libFuzzer target for the DNS responder, scripts/dns.lua (and the
 * scripts/lib/dns_wire.lua it uses).
 *
 * The handler runs as in the daemon, but in a plain Lua state: a fake `luadgram` module
 * (counters and timers that do nothing) and a fake message object (a table with `data`
 * and a `reply` that captures the bytes). init gets a fixed zone once; then each input is
 * one datagram handed to message. Must hold for every input, else abort():
 *   - message never raises (a malformed query is answered or dropped, never an error);
 *   - a datagram shorter than 12 bytes or with QR = 1 gets no reply, any other exactly one;
 *   - a reply has the query's ID, QR = 1, the query's opcode and RD, a question section
 *     that is the query's question byte for byte (or none), and records that walk cleanly
 *     to the end of the reply (names bounded, pointers backwards, lengths within bounds);
 *     answer owners are the question name; at most one OPT, only when the query had one;
 *     at most 512 bytes without an OPT in the query, at most our 1232 with one;
 *   - the reply is byte for byte the one of H.message_reference, the same handler without
 *     its fast path (which answers from precomputed entries after lighter checks).
 * The harness around that (finding the scripts through $LUADGRAM_SRC, else the compile-time
 * LUADGRAM_SOURCE_DIR; the pcall; a count hook that ends runaway Lua code after
 * FUZZ_MAX_INSTRUCTIONS instructions and, on line events, feeds Lua line-to-line edges to
 * libFuzzer so it follows the branches of the Lua code) is fuzz/support_lua.c. */
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>

#include "support_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INSTRUCTIONS 10000000

/* The harness in Lua: called with the source folder, returns run(data), which raises when
 * an invariant breaks. */
static const char fuzz_harness_src[] =
    "local src = ...\n"
    "package.path = src .. '/scripts/?.lua;' .. src .. '/scripts/lib/?.lua'\n"
    "package.cpath = ''\n"
    "package.preload.luadgram = function()\n"
    "  local counter = { inc = function() end, get = function() return 0 end }\n"
    "  local timer = { cancel = function() end }\n"
    "  local function nolog() end\n"
    "  return { counter = function() return counter end,\n"
    "           every = function() return timer end, after = function() return timer end,\n"
    "           now = function() return 0 end,\n"
    "           log = { debug = nolog, info = nolog, warn = nolog, error = nolog } }\n"
    "end\n"
    "local H = require 'dns'\n"
    "local wire = require 'dns_wire'\n"
    "H.init({ name = 'fuzz', bind = { '127.0.0.1:53' }, worker = 1, workers = 1 }, {\n"
    "  zone = 'example.test.', ttl = 300, edns_size = 1232,\n"
    "  records = {\n"
    "    ['@'] = { NS = { 'ns1', 'ns2.other.test.' }, A = '192.0.2.80', TXT = 'v=spf1 -all' },\n"
    "    ns1 = { A = '192.0.2.53', AAAA = '2001:db8::53' },\n"
    "    www = { A = { '192.0.2.1', '192.0.2.2' }, AAAA = { '2001:db8::1', '::ffff:1.2.3.4' },\n"
    "            TXT = { 'hello world', { 'a', 'b' } }, ttl = 60 },\n"
    "    big = { TXT = { string.rep('x', 600), string.rep('y', 700) } },\n"
    "    ['a.b.c'] = { A = '192.0.2.9' },\n"
    "  } })\n"
    "local replies, n = {}, 0\n"
    "local msg = { reply = function(_, d)\n"
    "  assert(type(d) == 'string', 'reply with a ' .. type(d))\n"
    "  n = n + 1; replies[n] = d; return true\n"
    "end }\n"
    "local function check(q, r)\n"
    "  assert(#r >= 12, 'reply shorter than a header')\n"
    "  assert(r:sub(1, 2) == q:sub(1, 2), 'reply ID differs')\n"
    "  local qf1, qf2 = q:byte(3, 4)\n"
    "  local f1, f2, qd, an, ns, ar = string.unpack('>BBI2I2I2I2', r, 3)\n"
    "  assert(f1 & 0x80 ~= 0, 'QR not set')\n"
    "  assert(f1 & 0x79 == qf1 & 0x79, 'opcode or RD not copied')\n"
    "  assert(f2 & 0xf0 == 0, 'RA, Z, AD or CD set')\n"
    "  local rcode = f2 & 15\n"
    "  assert(rcode <= 5 and rcode ~= 2, 'unexpected rcode ' .. rcode)\n"
    "  assert(qd <= 1, 'QDCOUNT ' .. qd)\n"
    "  local pos, qname = 13, nil\n"
    "  if qd == 1 then\n"
    "    local e = assert(wire.name_end(r, 13))\n"
    "    assert(e + 3 <= #r, 'question cut')\n"
    "    assert(r:sub(13, e + 3) == q:sub(13, e + 3), 'question not echoed as sent')\n"
    "    qname = wire.read_name(r, 13):lower()\n"
    "    pos = e + 4\n"
    "  end\n"
    "  local opts, query_ar = 0, q:byte(11) * 256 + q:byte(12)\n"
    "  for i = 1, an + ns + ar do\n"
    "    local name, nxt = wire.read_name(r, pos, true)\n"
    "    assert(name, 'bad owner name in record ' .. i .. ': ' .. tostring(nxt))\n"
    "    assert(nxt + 9 <= #r, 'record ' .. i .. ' cut')\n"
    "    local rtype, _, _, rdlen = string.unpack('>I2I2I4I2', r, nxt)\n"
    "    pos = nxt + 10 + rdlen\n"
    "    assert(pos <= #r + 1, 'rdata of record ' .. i .. ' past the end')\n"
    "    if i <= an then assert(name:lower() == qname, 'answer owner is not the question') end\n"
    "    if rtype == 41 then\n"
    "      assert(i > an + ns and name == '.', 'OPT out of place')\n"
    "      opts = opts + 1\n"
    "    end\n"
    "  end\n"
    "  assert(pos == #r + 1, 'bytes after the last record')\n"
    "  assert(opts <= 1, 'more than one OPT')\n"
    "  assert(opts == 0 or query_ar == 1, 'OPT in a reply to a query without one')\n"
    "  assert(#r <= (query_ar == 0 and 512 or 1232), 'reply of ' .. #r .. ' bytes too big')\n"
    "  assert(an == 0 or f1 & 0x04 ~= 0, 'answer without AA')\n"
    "end\n"
    "return function(data)\n"
    "  n = 0\n"
    "  msg.data = data\n"
    "  H.message(msg)\n"
    "  msg.data = nil\n"
    "  if #data < 12 or data:byte(3) >= 0x80 then\n"
    "    assert(n == 0, 'answered a short datagram or a response')\n"
    "    return\n"
    "  end\n"
    "  assert(n == 1, n .. ' replies to one query')\n"
    "  check(data, replies[1])\n"
    "  msg.data = data\n"
    "  H.message_reference(msg)\n"
    "  msg.data = nil\n"
    "  assert(n == 2 and replies[2] == replies[1], 'the fast path and the reference differ')\n"
    "end\n";

/* Runs the harness chunk with the source folder; leaves run() on top (support_lua.h). */
static int fuzz_dns_load(lua_State *L, const char *src_dir, const char *script_path)
{
    (void)script_path; /* the harness requires dns and dns_wire through package.path */
    int rc = luaL_loadbuffer(L, fuzz_harness_src, sizeof fuzz_harness_src - 1, "=fuzz_dns");
    if (rc != LUA_OK)                                              /* msgh chunk */
        return rc;
    lua_pushstring(L, src_dir);                                    /* msgh chunk src */
    return lua_pcall(L, 1, 1, 1);                                  /* msgh run */
}

static const struct fuzz_lua_target fuzz_dns = {
    .name = "fuzz_dns",
    .script = "scripts/dns.lua",
    .beside_exe = false,
    .max_instructions = FUZZ_MAX_INSTRUCTIONS,
    .gc_every = 0,
    .load = fuzz_dns_load,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lua_State *fuzz_L; /* libFuzzer passes no context: the one state (support_lua.h) */
    fuzz_lua_run(fuzz_lua_state(&fuzz_L, &fuzz_dns), &fuzz_dns, data, size, 0);
    return 0;
}
