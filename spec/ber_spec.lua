-- spec/ber_spec.lua: luadgram.ber (bindings/module_ber.c over snmp_decode.c and ber.c):
-- hand-checked BER vectors for every value type and every PDU, the trap packets net-snmp's
-- snmptrap/snmpinform really send (spec/fixtures/snmp/*.bin), a table of hostile packets each
-- rejected with its exact reason, and the inform acknowledgement. trap_json (the record as
-- JSON text, written in C) is held to the table path: for every packet here its text is the
-- record scripts/snmptrap.lua builds from decode_snmp, as lua-cjson writes it; and the
-- handler itself, run on a stand-in for the daemon, writes the same lines on both paths.
local ber = require "luadgram.ber"
local cjson = require "cjson"

local SRC = os.getenv("LUADGRAM_SRC") or "."

-- "30 03 02 01 00" -> bytes; spaces and newlines are ignored.
local function unhex(s)
  s = s:gsub("%s+", "")
  assert(#s % 2 == 0, "odd hex")
  return (s:gsub("..", function(h) return string.char(tonumber(h, 16)) end))
end

local function fixture(name)
  local f = assert(io.open(SRC .. "/spec/fixtures/snmp/" .. name, "rb"))
  local data = f:read("a")
  f:close()
  return data
end

-- A minimal BER length octet string (used only to wrap the per-type vectors below; the
-- whole-message vectors have their lengths written out by hand).
local function len(n)
  if n < 0x80 then return string.char(n) end
  local s = ""
  while n > 0 do
    s = string.char(n % 256) .. s
    n = n // 256
  end
  return string.char(0x80 | #s) .. s
end
local function tlv(tag, content) return string.char(tag) .. len(#content) .. content end

-- An SNMPv2c trap (request-id 1, community "public") carrying the varbind bytes given.
local function v2trap(varbinds, pdu)
  local p = unhex("02 01 01  02 01 00  02 01 00") .. tlv(0x30, varbinds)
  return tlv(0x30, unhex("02 01 01  04 06 70 75 62 6c 69 63") .. tlv(pdu or 0xa7, p))
end
-- One binding of name 1.3.6.1.2.1.1.1.0 (sysDescr.0) and the value TLV given in hex.
local NAME = "06 08 2b 06 01 02 01 01 01 00"
local function vb(value_hex) return tlv(0x30, unhex(NAME .. value_hex)) end

-- The first binding of a message built by v2trap(vb(hex)).
local function one(value_hex)
  local msg, why = ber.decode_snmp(v2trap(vb(value_hex)))
  assert.is_table(msg, why)
  assert.equal(1, #msg.varbinds)
  assert.equal("1.3.6.1.2.1.1.1.0", msg.varbinds[1].oid)
  return msg.varbinds[1]
end

-- decode_snmp and trap_json both refuse bytes, with the same reason and kind.
local function rejects(bytes, reason, kind)
  local msg, why, k = ber.decode_snmp(bytes)
  assert.is_nil(msg)
  assert.equal(reason, why)
  assert.equal(kind or "malformed", k)
  assert.same({ nil, reason, kind or "malformed" }, { ber.trap_json(bytes) })
end

-- Hand-written whole messages (their lengths written out by hand).
local V1_TRAP = [[
        30 38  02 01 00  04 06 70 75 62 6c 69 63
          a4 2b  06 06 2b 06 01 04 01 09   40 04 0a 00 00 01
                 02 01 06  02 02 01 2c  43 01 64
            30 11  30 0f  06 08 2b 06 01 02 01 01 05 00  04 03 72 74 72 ]]
-- warmStart(1), no enterprise-specific number, carrying snmpTrapAddress.0 = 192.0.2.1.
local V1_WARMSTART = [[
        30 39  02 01 00  04 06 70 75 62 6c 69 63
          a4 2c  06 06 2b 06 01 04 01 09   40 04 0a 00 00 01
                 02 01 01  02 01 00  43 01 00
            30 13  30 11  06 09 2b 06 01 06 03 12 01 03 00  40 04 c0 00 02 01 ]]
local V2_BINDS = [[
        30 28  30 0d  06 08 2b 06 01 02 01 01 03 00  43 01 2a
               30 17  06 0a 2b 06 01 06 03 01 01 04 01 00  06 09 2b 06 01 06 03 01 01 05 03 ]]
local V2_TRAP = [[
        30 40  02 01 01  04 06 70 75 62 6c 69 63
          a7 33  02 01 05  02 01 00  02 01 00 ]] .. V2_BINDS
local V2_INFORM = [[
        30 43  02 01 01  04 06 70 75 62 6c 69 63
          a6 36  02 04 12 34 56 78  02 01 00  02 01 00 ]] .. V2_BINDS

-- ---- trap_json against the table path ----

-- The spec's fixtures, every one.
local function fixture_names()
  local names = {}
  local ls = assert(io.popen("ls " .. SRC .. "/spec/fixtures/snmp"))
  for name in ls:lines() do
    if name:match("%.bin$") then names[#names + 1] = name end
  end
  ls:close()
  assert(#names >= 10, "spec/fixtures/snmp/ not found")
  return names
end

local function hex_of(s)
  return (s:gsub(".", function(c) return string.format("%02x ", c:byte()) end):sub(1, -2))
end

-- What scripts/snmptrap.lua's record_of makes of decode_snmp's message m, less the fields
-- the handler adds itself (time, listener, peer, dst): the record of the table path.
local function lua_record(m)
  local community, community_hex = m.community, nil
  if not (utf8.len(community) and not community:find("[%z\1-\8\11\12\14-\31\127]")) then
    community, community_hex = hex_of(community), true
  end
  local bindings = {}
  for i, b in ipairs(m.varbinds) do
    local c = {}
    for k, v in pairs(b) do c[k] = v end
    c.raw = nil
    if c.opaque_type == "Integer64" then c.opaque_value = tostring(c.opaque_value) end
    bindings[i] = c
  end
  return { version = m.version_name, community = community, community_hex = community_hex,
           pdu = m.pdu, request_id = m.request_id, trap_oid = m.trap_oid, uptime = m.uptime,
           enterprise = m.enterprise, agent_addr = m.agent_addr,
           generic_trap = m.generic_trap, specific_trap = m.specific_trap,
           bindings = bindings }
end

-- The output's cjson (scripts/lib/output_jsonl.lua's settings).
local out_json = cjson.new()
out_json.encode_invalid_numbers("null")
out_json.encode_sparse_array(true)
out_json.encode_number_precision(14)
out_json.encode_max_depth(100)

local RECORD_KEYS = { "version", "community", "community_hex", "pdu", "request_id", "uptime",
                      "trap_oid", "enterprise", "agent_addr", "generic_trap", "specific_trap",
                      "bindings" }
local BINDING_KEYS = { "oid", "type", "value", "hex", "opaque_type", "opaque_value" }

-- `t`'s members in the order of `keys`, each value as lua-cjson writes it (asserting t has
-- no other key).
local function members_in_order(t, keys, value_of)
  local parts, known = {}, {}
  for _, k in ipairs(keys) do
    known[k] = true
    if t[k] ~= nil then parts[#parts + 1] = out_json.encode(k) .. ":" .. value_of(k, t[k]) end
  end
  for k in pairs(t) do assert(known[k], "unexpected key " .. tostring(k)) end
  return table.concat(parts, ",")
end

-- The members trap_json must write for record r: lua-cjson's text of every value.
local function cjson_members(r)
  return members_in_order(r, RECORD_KEYS, function(k, v)
    if k ~= "bindings" then return out_json.encode(v) end
    if #v == 0 then return "{}" end                  -- lua-cjson: an empty table is {}
    local list = {}
    for i, b in ipairs(v) do
      list[i] = "{" .. members_in_order(b, BINDING_KEYS, function(_, x)
        return out_json.encode(x)
      end) .. "}"
    end
    return "[" .. table.concat(list, ",") .. "]"
  end)
end

-- Asserts that trap_json says of `bytes` what the table path says: the same refusal, the
-- same scalars, and for a notification members that are the table path's record as
-- lua-cjson writes it, valid UTF-8. Returns the members.
local NOTIFICATION = { trap = true, trapv2 = true, inform = true }
local function same_as_table_path(bytes, where)
  local m, why, kind = ber.decode_snmp(bytes)
  local version, community, pdu, request_id, members = ber.trap_json(bytes)
  if not m then
    assert.same({ nil, why, kind }, { version, community, pdu }, where)
    assert.is_nil(request_id, where)
    return nil
  end
  assert.same({ m.version_name, m.community, m.pdu, m.request_id },
              { version, community, pdu, request_id }, where)
  if not NOTIFICATION[m.pdu] then
    assert.is_nil(members, where)
    return nil
  end
  assert.is_string(members, where)
  assert.is_truthy(utf8.len(members), where .. ": not UTF-8")
  local r = lua_record(m)
  assert.equal(cjson_members(r), members, where)
  return members, r
end

describe("luadgram.ber", function()
  describe("decode_snmp value types", function()
    it("INTEGER: 32-bit signed, minimal two's complement", function()
      assert.same({ oid = "1.3.6.1.2.1.1.1.0", type = "INTEGER", value = 0 }, one("02 01 00"))
      assert.equal(-1, one("02 01 ff").value)
      assert.equal(127, one("02 01 7f").value)
      assert.equal(128, one("02 02 00 80").value)
      assert.equal(-129, one("02 02 ff 7f").value)
      assert.equal(2147483647, one("02 04 7f ff ff ff").value)
      assert.equal(-2147483648, one("02 04 80 00 00 00").value)
      assert.is_true(math.type(one("02 01 05").value) == "integer")
    end)

    it("OCTET STRING: text as is, anything else as hex with raw bytes", function()
      assert.same({ oid = "1.3.6.1.2.1.1.1.0", type = "OCTET STRING", value = "hi", raw = "hi" },
        one("04 02 68 69"))
      assert.same({ oid = "1.3.6.1.2.1.1.1.0", type = "OCTET STRING", value = "de ad be ef",
        raw = "\xde\xad\xbe\xef", hex = true }, one("04 04 de ad be ef"))
      assert.same({ oid = "1.3.6.1.2.1.1.1.0", type = "OCTET STRING", value = "", raw = "" },
        one("04 00"))
      -- UTF-8 and TAB/LF/CR are text; NUL, DEL, C1 controls, overlong or cut UTF-8 are not.
      assert.equal("é\t\r\n", one("04 05 c3 a9 09 0d 0a").value)
      assert.equal("€𝄞", one("04 07 e2 82 ac f0 9d 84 9e").value)
      assert.equal("41 00", one("04 02 41 00").value)
      assert.equal("7f", one("04 01 7f").value)
      assert.equal("c2 85", one("04 02 c2 85").value)
      assert.equal("c0 80", one("04 02 c0 80").value)
      assert.equal("ed a0 80", one("04 03 ed a0 80").value)
      assert.equal("68 c3", one("04 02 68 c3").value)
      assert.is_true(one("04 02 68 c3").hex)
    end)

    it("NULL has no value", function()
      assert.same({ oid = "1.3.6.1.2.1.1.1.0", type = "NULL" }, one("05 00"))
    end)

    it("OBJECT IDENTIFIER as dotted text, arcs up to 2^32 - 1", function()
      assert.same({ oid = "1.3.6.1.2.1.1.1.0", type = "OBJECT IDENTIFIER", value = "1.3.6.1" },
        one("06 03 2b 06 01"))
      assert.equal("1.3.6.1.4.1.4294967295", one("06 0a 2b 06 01 04 01 8f ff ff ff 7f").value)
      assert.equal("2.999.3", one("06 03 88 37 03").value) -- X.690 8.19.5's example
      assert.equal("0.0", one("06 01 00").value)
      assert.equal("1.3.6.1.4.1.311", one("06 07 2b 06 01 04 01 82 37").value)
    end)

    it("IpAddress as a dotted quad", function()
      assert.same({ oid = "1.3.6.1.2.1.1.1.0", type = "IpAddress", value = "192.168.1.254" },
        one("40 04 c0 a8 01 fe"))
    end)

    it("Counter32, Gauge32, TimeTicks: 32-bit unsigned, 0xFFFFFFFF in five octets", function()
      assert.same({ oid = "1.3.6.1.2.1.1.1.0", type = "Counter32", value = 4294967295 },
        one("41 05 00 ff ff ff ff"))
      assert.same({ oid = "1.3.6.1.2.1.1.1.0", type = "Gauge32", value = 128 }, one("42 02 00 80"))
      assert.same({ oid = "1.3.6.1.2.1.1.1.0", type = "TimeTicks", value = 65536 },
        one("43 03 01 00 00"))
      assert.equal(0, one("41 01 00").value)
    end)

    it("Counter64 as a decimal string, always", function()
      assert.same({ oid = "1.3.6.1.2.1.1.1.0", type = "Counter64",
        value = "18446744073709551615" }, one("46 09 00 ff ff ff ff ff ff ff ff"))
      assert.equal("9007199254740993", one("46 07 20 00 00 00 00 00 01").value)
      assert.equal("0", one("46 01 00").value)
    end)

    it("Opaque: hex with raw bytes, and net-snmp's wrapped numbers", function()
      assert.same({ oid = "1.3.6.1.2.1.1.1.0", type = "Opaque", value = "01 02 03",
        raw = "\1\2\3", hex = true }, one("44 03 01 02 03"))
      local f = one("44 07 9f 78 04 3f c0 00 00")
      assert.equal("Float", f.opaque_type)
      assert.equal(1.5, f.opaque_value)
      assert.equal("9f 78 04 3f c0 00 00", f.value)
      assert.equal(-2.25, one("44 0b 9f 79 08 c0 02 00 00 00 00 00 00").opaque_value)
      assert.equal(-5, one("44 04 9f 7a 01 fb").opaque_value)
      assert.equal("18446744073709551615",
        one("44 0c 9f 7b 09 00 ff ff ff ff ff ff ff ff").opaque_value)
      assert.equal("Counter64", one("44 04 9f 76 01 07").opaque_type)
      assert.is_nil(one("44 05 9f 78 02 3f c0").opaque_type) -- a float is 4 octets
    end)

    it("the exceptions noSuchObject, noSuchInstance, endOfMibView", function()
      assert.same({ oid = "1.3.6.1.2.1.1.1.0", type = "noSuchObject" }, one("80 00"))
      assert.same({ oid = "1.3.6.1.2.1.1.1.0", type = "noSuchInstance" }, one("81 00"))
      assert.same({ oid = "1.3.6.1.2.1.1.1.0", type = "endOfMibView" }, one("82 00"))
    end)

    it("accepts more length octets than needed (RFC 3417 §8 allows it)", function()
      local msg = ber.decode_snmp(v2trap(tlv(0x30, unhex(NAME .. "04 82 00 02 68 69"))))
      assert.equal("hi", msg.varbinds[1].value)
      assert.equal("1.3.6.1.2.1.1.1.0", msg.varbinds[1].oid)
    end)
  end)

  describe("decode_snmp PDUs", function()
    it("SNMPv1 Trap-PDU with its SNMPv2 form (RFC 3584 §3.1)", function()
      local msg = ber.decode_snmp(unhex(V1_TRAP))
      local bind = { oid = "1.3.6.1.2.1.1.5.0", type = "OCTET STRING", value = "rtr", raw = "rtr" }
      assert.same({
        version = 0, version_name = "v1", community = "public", pdu = "trap",
        enterprise = "1.3.6.1.4.1.9", agent_addr = "10.0.0.1", generic_trap = 6,
        specific_trap = 300, uptime = 100, trap_oid = "1.3.6.1.4.1.9.0.300",
        varbinds = { bind },
        v2_varbinds = {
          { oid = "1.3.6.1.2.1.1.3.0", type = "TimeTicks", value = 100 },
          { oid = "1.3.6.1.6.3.1.1.4.1.0", type = "OBJECT IDENTIFIER",
            value = "1.3.6.1.4.1.9.0.300" },
          bind,
          { oid = "1.3.6.1.6.3.18.1.3.0", type = "IpAddress", value = "10.0.0.1" },
          { oid = "1.3.6.1.6.3.18.1.4.0", type = "OCTET STRING", value = "public",
            raw = "public" },
          { oid = "1.3.6.1.6.3.1.1.4.3.0", type = "OBJECT IDENTIFIER", value = "1.3.6.1.4.1.9" },
        },
      }, msg)
      assert.equal(msg.varbinds[1], msg.v2_varbinds[3]) -- the same table, not a copy
    end)

    it("v1 generic traps map to snmpTraps.(generic + 1); present RFC 3584 bindings stay", function()
      -- warmStart(1), no enterprise-specific number; the trap already carries
      -- snmpTrapAddress.0 = 192.0.2.1, so only community and enterprise are appended.
      local msg = ber.decode_snmp(unhex(V1_WARMSTART))
      assert.equal("1.3.6.1.6.3.1.1.5.2", msg.trap_oid)
      assert.equal(1, msg.generic_trap)
      assert.equal(0, msg.uptime)
      local oids = {}
      for i, b in ipairs(msg.v2_varbinds) do oids[i] = b.oid .. "=" .. tostring(b.value) end
      assert.same({ "1.3.6.1.2.1.1.3.0=0", "1.3.6.1.6.3.1.1.4.1.0=1.3.6.1.6.3.1.1.5.2",
        "1.3.6.1.6.3.18.1.3.0=192.0.2.1", "1.3.6.1.6.3.18.1.4.0=public",
        "1.3.6.1.6.3.1.1.4.3.0=1.3.6.1.4.1.9" }, oids)
    end)

    local V2_VARBINDS = {
      { oid = "1.3.6.1.2.1.1.3.0", type = "TimeTicks", value = 42 },
      { oid = "1.3.6.1.6.3.1.1.4.1.0", type = "OBJECT IDENTIFIER", value = "1.3.6.1.6.3.1.1.5.3" },
    }

    it("SNMPv2-Trap-PDU: uptime and trap_oid from sysUpTime.0 and snmpTrapOID.0", function()
      local msg = ber.decode_snmp(unhex(V2_TRAP))
      assert.same({
        version = 1, version_name = "v2c", community = "public", pdu = "trapv2",
        request_id = 5, error_status = 0, error_index = 0, uptime = 42,
        trap_oid = "1.3.6.1.6.3.1.1.5.3", varbinds = V2_VARBINDS, v2_varbinds = V2_VARBINDS,
      }, msg)
      assert.equal(msg.varbinds, msg.v2_varbinds)
    end)

    it("InformRequest-PDU", function()
      local msg = ber.decode_snmp(unhex(V2_INFORM))
      assert.same({
        version = 1, version_name = "v2c", community = "public", pdu = "inform",
        request_id = 0x12345678, error_status = 0, error_index = 0, uptime = 42,
        trap_oid = "1.3.6.1.6.3.1.1.5.3", varbinds = V2_VARBINDS, v2_varbinds = V2_VARBINDS,
      }, msg)
    end)

    it("a v2 trap without the two leading bindings has no uptime or trap_oid", function()
      local msg = ber.decode_snmp(v2trap(vb("02 01 07")))
      assert.is_nil(msg.uptime)
      assert.is_nil(msg.trap_oid)
      assert.equal(7, msg.v2_varbinds[1].value)
    end)

    local GET_BIND = "30 0e  30 0c  06 08 2b 06 01 02 01 01 01 00 "
    local function request(tag, id, f2, f3, value)
      return unhex("30 26  02 01 01  04 06 70 75 62 6c 69 63  " .. tag .. " 19  02 01 " .. id ..
        " 02 01 " .. f2 .. " 02 01 " .. f3 .. " " .. GET_BIND .. value)
    end

    it("the request and response PDUs: get, getnext, set, response, report", function()
      for tag, name in pairs({ a0 = "get", a1 = "getnext", a2 = "response", a3 = "set",
                               a8 = "report" }) do
        local msg = ber.decode_snmp(request(tag, "09", "00", "00", "05 00"))
        assert.same({
          version = 1, version_name = "v2c", community = "public", pdu = name,
          request_id = 9, error_status = 0, error_index = 0,
          varbinds = { { oid = "1.3.6.1.2.1.1.1.0", type = "NULL" } },
        }, msg)
      end
      local msg = ber.decode_snmp(request("a2", "0a", "02", "01", "80 00"))
      assert.equal(2, msg.error_status) -- noSuchName
      assert.equal(1, msg.error_index)
      assert.equal("noSuchObject", msg.varbinds[1].type)
      -- SNMPv1 get
      msg = ber.decode_snmp(unhex("30 26  02 01 00  04 06 70 75 62 6c 69 63  a0 19  02 01 03" ..
        " 02 01 00 02 01 00 " .. GET_BIND .. "05 00"))
      assert.equal("v1", msg.version_name)
      assert.equal("get", msg.pdu)
      assert.equal(3, msg.request_id)
    end)

    it("GetBulkRequest-PDU: non_repeaters and max_repetitions", function()
      assert.same({
        version = 1, version_name = "v2c", community = "public", pdu = "getbulk",
        request_id = 2, non_repeaters = 0, max_repetitions = 10,
        varbinds = { { oid = "1.3.6.1.2.1.1.1.0", type = "NULL" } },
      }, ber.decode_snmp(request("a5", "02", "00", "0a", "05 00")))
    end)

    it("a non-text community is given as its bytes", function()
      local msg = ber.decode_snmp(unhex("30 1d 02 01 01 04 02 00 ff a7 14 02 01 01 02 01 00" ..
        " 02 01 00 30 09 30 07 06 03 2b 06 01 05 00"))
      assert.equal("\0\xff", msg.community)
      assert.equal("1.3.6.1", msg.varbinds[1].oid)
    end)
  end)

  describe("decode_snmp on what net-snmp 5.9 sends", function()
    -- Compared with `snmptrapd -f -Lo -On` on the same packets: INTEGER/Gauge32/Counter32/
    -- Counter64/IpAddress/OID/NULL agree value for value; "Timeticks: (N) ..." is value N;
    -- STRING "x" is text x; Hex-STRING "DE AD" is hex "de ad" - except UTF-8 text (grüße),
    -- which snmptrapd (C locale isprint) shows as Hex-STRING and we as text; "Opaque: Float:
    -- 1.5" is opaque_type/opaque_value (snmptrapd prints the Double as "Float" too);
    -- snmptrapd's v1 line "<enterprise> Enterprise Specific Trap (17) Uptime: 0:02:03.45"
    -- is enterprise, specific_trap, uptime (centiseconds).
    local E = "1.3.6.1.4.1.8072.2.3"

    it("snmptrap -v 1 ... 6 17 12345 with a binding of every type", function()
      local msg = ber.decode_snmp(fixture("v1_enterprise_types.bin"))
      assert.equal("v1", msg.version_name)
      assert.equal("public", msg.community)
      assert.equal("trap", msg.pdu)
      assert.equal(E, msg.enterprise)
      assert.equal("192.0.2.7", msg.agent_addr)
      assert.equal(6, msg.generic_trap)
      assert.equal(17, msg.specific_trap)
      assert.equal(12345, msg.uptime)
      assert.equal(E .. ".0.17", msg.trap_oid)
      local want = {
        { "INTEGER", 2147483647 }, { "Gauge32", 4294967295 }, { "Counter32", 0 },
        { "OCTET STRING", "grüße" }, { "OCTET STRING", "00 ff 7f 80" }, { "NULL", nil },
        { "OBJECT IDENTIFIER", "1.3.6.1.6.3.1.1.5.1" }, { "TimeTicks", 4294967295 },
        { "IpAddress", "255.255.255.255" }, { "Counter64", "9007199254740993" },
        { "OCTET STRING", "@" }, { "INTEGER", -2147483648 },  -- BITS 1 is the octet 0x40
      }
      assert.equal(#want, #msg.varbinds)
      for i, w in ipairs(want) do
        local b = msg.varbinds[i]
        assert.equal(E .. ".2." .. i, b.oid)
        assert.equal(w[1], b.type)
        assert.equal(w[2], b.value)
      end
      assert.equal("\0\xff\x7f\x80", msg.varbinds[5].raw)
      assert.equal(#want + 5, #msg.v2_varbinds)
      assert.equal("192.0.2.7", msg.v2_varbinds[#want + 3].value)
    end)

    it("snmptrap -v 1 coldStart and linkDown", function()
      local cold = ber.decode_snmp(fixture("v1_coldstart.bin"))
      assert.equal("private", cold.community)
      assert.equal("1.3.6.1.4.1.3.1.1", cold.enterprise) -- snmptrap's default enterprise
      assert.equal("127.0.0.1", cold.agent_addr)
      assert.equal(0, cold.generic_trap)
      assert.equal(1, cold.uptime)
      assert.equal("1.3.6.1.6.3.1.1.5.1", cold.trap_oid)
      assert.same({}, cold.varbinds)
      assert.equal(5, #cold.v2_varbinds)

      local down = ber.decode_snmp(fixture("v1_linkdown.bin"))
      assert.equal("1.3.6.1.6.3.1.1.5.3", down.trap_oid)
      assert.equal("10.0.0.1", down.agent_addr)
      assert.equal(500, down.uptime)
      assert.same({ { oid = "1.3.6.1.2.1.2.2.1.1.3", type = "INTEGER", value = 3 } }, down.varbinds)
    end)

    it("snmptrap -v 2c with a binding of every type", function()
      local msg = ber.decode_snmp(fixture("v2c_types.bin"))
      assert.equal("v2c", msg.version_name)
      assert.equal("trapv2", msg.pdu)
      assert.equal(4242, msg.uptime)
      assert.equal(E .. ".0.1", msg.trap_oid)
      local want = {
        { "INTEGER", -42 }, { "Gauge32", 4294967295 }, { "Counter32", 123456 },
        { "OCTET STRING", "hello world" }, { "OCTET STRING", "de ad be ef" }, { "NULL", nil },
        { "OBJECT IDENTIFIER", "1.3.6.1.2.1.1" }, { "TimeTicks", 360000 },
        { "IpAddress", "10.1.2.3" }, { "Counter64", "18446744073709551615" },
        { "OCTET STRING", "80" }, { "OCTET STRING", "01 02 03" },  -- BITS 0, DECIMAL 1.2.3
      }
      assert.equal(#want + 2, #msg.varbinds)
      for i, w in ipairs(want) do
        local b = msg.varbinds[i + 2]
        assert.equal(E .. ".2." .. i, b.oid)
        assert.equal(w[1], b.type)
        assert.equal(w[2], b.value)
      end
    end)

    it("snmptrap -v 2c with Opaque Float, Double, Integer64, Unsigned64", function()
      local msg = ber.decode_snmp(fixture("v2c_opaque.bin"))
      local got = {}
      for i = 3, #msg.varbinds do
        local b = msg.varbinds[i]
        got[#got + 1] = { b.type, b.opaque_type, b.opaque_value }
      end
      assert.same({ { "Opaque", "Float", 1.5 }, { "Opaque", "Double", -2.25 },
        { "Opaque", "Integer64", -5 }, { "Opaque", "Unsigned64", "18446744073709551615" } }, got)
    end)

    it("snmptrap -v 2c with a 300-octet string and an empty one; no bindings", function()
      local msg = ber.decode_snmp(fixture("v2c_longstring.bin"))
      assert.equal(string.rep("x", 300), msg.varbinds[3].value)
      assert.equal("", msg.varbinds[4].value)
      local bare = ber.decode_snmp(fixture("v2c_noargs.bin"))
      assert.equal(0, bare.uptime)
      assert.equal("1.3.6.1.6.3.1.1.5.1", bare.trap_oid)
      assert.equal(2, #bare.varbinds)
    end)

    it("snmpinform -v 2c", function()
      local msg = ber.decode_snmp(fixture("v2c_inform.bin"))
      assert.equal("inform", msg.pdu)
      assert.equal(0x29404bc7, msg.request_id)
      assert.equal(99, msg.uptime)
      assert.equal(E .. ".0.4", msg.trap_oid)
      assert.same({ oid = E .. ".2.2", type = "OCTET STRING", value = "inform me",
        raw = "inform me" }, msg.varbinds[4])
    end)

    it("snmptrap -v 3 is recognised as unsupported, not malformed", function()
      rejects(fixture("v3_noauth.bin"), "SNMPv3 is not supported", "unsupported")
    end)
  end)

  describe("decode_snmp rejects", function()
    local function nested(depth)
      local s = unhex("30 00")
      for _ = 2, depth do s = tlv(0x30, s) end
      return s
    end
    local function oid_of(arcs) return "2b" .. string.rep("01", arcs - 2) end

    it("the malformed table, each with its reason", function()
      local huge_oid = tlv(0x30, tlv(0x06, unhex(oid_of(100000))) .. unhex("05 00"))
      local cases = {
        { "truncated length", unhex("30 82 01") },
        { "truncated length", unhex("30") },
        { "length past end", unhex("30 05 02 01 01") },
        { "indefinite length", unhex("30 80 02 01 01 04 00 a7 80 00 00 00 00") },
        { "expected INTEGER version", nested(100) },
        { "too many OID arcs", v2trap(huge_oid) },
        { "INTEGER out of range", v2trap(vb("02 09 01 00 00 00 00 00 00 00 00")) },
        { "INTEGER out of range", unhex("30 1a 02 01 01 04 00 a7 13 02 09 01 00 00 00 00 00 00" ..
          " 00 00 02 01 00 02 01 00 30 00") },
      }
      for _, c in ipairs(cases) do rejects(c[2], c[1]) end
    end)

    it("nesting 100 deep in the generic decoder", function()
      local node, why = ber.decode(nested(100))
      assert.is_nil(node)
      assert.equal("nesting too deep", why)
      assert.is_table(ber.decode(nested(32)))
      assert.is_nil(ber.decode(nested(33)))
    end)

    it("OIDs of more than 128 arcs, arcs past 32 bits, non-minimal arcs", function()
      assert.equal(128, select(2, one("06 7f " .. oid_of(128)).value:gsub("%.", "")) + 1)
      rejects(v2trap(vb("06 81 80 " .. oid_of(129))), "too many OID arcs")
      rejects(v2trap(tlv(0x30, unhex("06 81 80 " .. oid_of(129) .. " 05 00"))),
        "too many OID arcs")
      rejects(v2trap(vb("06 0a 2b 06 01 04 01 90 80 80 80 00")), "OID arc too large")
      rejects(v2trap(vb("06 03 2b 80 01")), "non-minimal OID arc")
      rejects(v2trap(vb("06 02 2b 86")), "truncated OID arc")
      rejects(v2trap(vb("06 00")), "empty OID")
    end)

    it("integers out of range or not minimal", function()
      rejects(v2trap(vb("02 05 00 80 00 00 00")), "INTEGER out of range")
      rejects(v2trap(vb("02 02 00 01")), "non-minimal integer")
      rejects(v2trap(vb("02 02 ff ff")), "non-minimal integer")
      rejects(v2trap(vb("02 00")), "empty integer")
      rejects(v2trap(vb("41 05 01 00 00 00 00")), "Counter32 out of range")
      rejects(v2trap(vb("41 01 ff")), "Counter32 out of range")
      rejects(v2trap(vb("42 04 80 00 00 00")), "Gauge32 out of range")
      rejects(v2trap(vb("43 06 00 00 ff ff ff ff")), "non-minimal integer")
      rejects(v2trap(vb("46 0a 00 00 ff ff ff ff ff ff ff ff")), "non-minimal integer")
      rejects(v2trap(vb("46 09 01 00 00 00 00 00 00 00 00")), "Counter64 out of range")
    end)

    it("values of the wrong shape", function()
      rejects(v2trap(vb("05 01 00")), "NULL with content")
      rejects(v2trap(vb("40 03 0a 00 01")), "IpAddress not 4 octets")
      rejects(v2trap(vb("80 01 00")), "exception with content")
      rejects(v2trap(vb("47 01 00")), "unknown value type")
      rejects(v2trap(vb("24 04 04 02 68 69")), "unknown value type") -- constructed string
      rejects(v2trap(vb("05 00 05 00")), "trailing bytes in varbind")
      rejects(v2trap(unhex("31 02 05 00")), "expected SEQUENCE varbind")
      rejects(v2trap(unhex("30 02 05 00")), "expected OID varbind name")
    end)

    it("framing errors", function()
      rejects("", "unexpected end")
      rejects(unhex("3f 01 00"), "multi-byte tag")
      rejects(unhex("30 85 00 00 00 00 03 02 01 01"), "length too large")
      rejects(unhex("30 ff"), "length too large")
      rejects(v2trap(vb("05 00")) .. "\0", "trailing bytes after message")
      rejects(unhex("02 01 00"), "expected SEQUENCE message")
      rejects(unhex("30 09 02 01 01 04 00 a7 00 05 00"), "trailing bytes in message")
    end)

    it("versions and PDUs that do not fit", function()
      rejects(unhex("30 03 02 01 03"), "SNMPv3 is not supported", "unsupported")
      rejects(unhex("30 03 02 01 02"), "SNMPv2u is not supported", "unsupported")
      rejects(unhex("30 05 02 01 07 04 00"), "unknown version")
      rejects(unhex("30 05 02 01 01 30 00"), "expected OCTET STRING community")
      rejects(v2trap(vb("05 00"), 0xa9), "unknown PDU type")
      rejects(v2trap(vb("05 00"), 0xa4), "Trap-PDU in SNMPv2c")
      rejects(unhex("30 12 02 01 00 04 00 a7 0b 02 01 01 02 01 00 02 01 00 30 00"),
        "SNMPv2 PDU in SNMPv1")
      rejects(unhex("30 14 02 01 01 04 00 a7 0d 02 01 01 02 01 00 02 01 00 30 00 05 00"),
        "trailing bytes in PDU")
      rejects(unhex("30 12 02 01 01 04 00 a7 0b 02 01 01 02 01 00 02 01 00 31 00"),
        "expected SEQUENCE varbind list")
      assert.is_table(ber.decode_snmp(unhex("30 12 02 01 01 04 00 a7 0b 02 01 01 02 01 00" ..
        " 02 01 00 30 00")))
    end)

    it("v1 trap fields out of range", function()
      local function v1(fields)
        return tlv(0x30, unhex("02 01 00 04 00") .. tlv(0xa4, unhex(fields .. " 30 00")))
      end
      assert.is_table(ber.decode_snmp(v1("06 01 2b 40 04 01 02 03 04 02 01 06 02 01 01 43 01 00")))
      rejects(v1("06 01 2b 40 04 01 02 03 04 02 01 07 02 01 01 43 01 00"),
        "generic-trap out of range")
      rejects(v1("06 01 2b 40 04 01 02 03 04 02 01 06 02 01 ff 43 01 00"),
        "specific-trap negative")
      rejects(v1("06 01 2b 40 03 01 02 03 02 01 06 02 01 01 43 01 00"), "IpAddress not 4 octets")
      rejects(v1("06 01 2b 04 04 01 02 03 04 02 01 06 02 01 01 43 01 00"),
        "expected IpAddress agent-addr")
      rejects(v1("02 01 00 40 04 01 02 03 04 02 01 06 02 01 01 43 01 00"),
        "expected OID enterprise")
      rejects(v1("06 01 2b 40 04 01 02 03 04 02 01 06 02 01 01 02 01 00"),
        "expected TimeTicks time-stamp")
    end)

    it("every prefix of a real trap, without raising", function()
      local data = fixture("v1_enterprise_types.bin")
      for n = 0, #data - 1 do
        local msg, why, kind = ber.decode_snmp(data:sub(1, n))
        assert.is_nil(msg)
        assert.is_string(why)
        assert.equal("malformed", kind)
      end
    end)

    it("every single-byte change of real packets gives a message or nil, reason, kind", function()
      local kinds = { malformed = true, unsupported = true }
      for _, name in ipairs({ "v1_enterprise_types.bin", "v2c_opaque.bin", "v2c_inform.bin" }) do
        local data = fixture(name)
        for i = 1, #data do
          for _, b in ipairs({ 0x00, 0x01, 0x7f, 0x80, 0x81, 0xff }) do
            local bytes = data:sub(1, i - 1) .. string.char(b) .. data:sub(i + 1)
            local msg, why, kind = ber.decode_snmp(bytes)
            if msg then
              assert.is_table(msg.varbinds)
              for _, v in ipairs(msg.varbinds) do assert.is_string(v.oid) end
            else
              assert.is_string(why)
              assert.is_true(kinds[kind], kind)
            end
            local r = ber.inform_response(bytes)
            if r then assert.equal("response", ber.decode_snmp(r).pdu) end
          end
        end
      end
    end)

    it("raises on a non-string argument", function()
      assert.has_error(function() ber.decode_snmp({}) end)
    end)
  end)

  describe("inform_response", function()
    it("answers an inform with a Response-PDU of the same id and bindings", function()
      local inform = unhex [[
        30 43  02 01 01  04 06 70 75 62 6c 69 63
          a6 36  02 04 12 34 56 78  02 01 05  02 01 01
            30 28  30 0d  06 08 2b 06 01 02 01 01 03 00  43 01 2a
                   30 17  06 0a 2b 06 01 06 03 01 01 04 01 00  06 09 2b 06 01 06 03 01 01 05 03 ]]
      local want = unhex [[
        30 43  02 01 01  04 06 70 75 62 6c 69 63
          a2 36  02 04 12 34 56 78  02 01 00  02 01 00
            30 28  30 0d  06 08 2b 06 01 02 01 01 03 00  43 01 2a
                   30 17  06 0a 2b 06 01 06 03 01 01 04 01 00  06 09 2b 06 01 06 03 01 01 05 03 ]]
      assert.equal(want, ber.inform_response(inform))
    end)

    it("gives net-snmp's inform the answer snmptrapd gave it, byte for byte", function()
      local inform = fixture("v2c_inform.bin")
      local resp = ber.inform_response(inform)
      assert.equal(fixture("v2c_inform_response_by_snmptrapd.bin"), resp)
      local a, r = ber.decode_snmp(inform), ber.decode_snmp(resp)
      assert.equal("response", r.pdu)
      assert.equal(a.request_id, r.request_id)
      assert.equal(a.community, r.community)
      assert.equal(0, r.error_status)
      assert.equal(0, r.error_index)
      assert.same(a.varbinds, r.varbinds)
    end)

    it("re-encodes lengths minimally", function()
      local inform = unhex [[
        30 81 20  02 01 01  04 82 00 01 63
          a6 84 00 00 00 12  02 01 07  02 01 00  02 01 00  30 07  30 05  06 01 2b  05 00 ]]
      local resp = ber.inform_response(inform)
      assert.equal(unhex("30 1a 02 01 01 04 01 63 a2 12 02 01 07 02 01 00 02 01 00" ..
        " 30 07 30 05 06 01 2b 05 00"), resp)
      assert.is_true(#resp < #inform)
    end)

    it("refuses anything but a well-formed inform", function()
      local function refuses(bytes, reason, kind)
        local r, why, k = ber.inform_response(bytes)
        assert.is_nil(r)
        assert.equal(reason, why)
        assert.equal(kind, k)
      end
      refuses(fixture("v2c_types.bin"), "not an InformRequest", "unexpected")
      refuses(fixture("v1_linkdown.bin"), "not an InformRequest", "unexpected")
      refuses(fixture("v3_noauth.bin"), "SNMPv3 is not supported", "unsupported")
      local inform = fixture("v2c_inform.bin")
      refuses(inform:sub(1, -2), "length past end", "malformed")
      -- a bad binding anywhere in the list means no answer
      refuses(v2trap(vb("05 00") .. vb("05 01 00"), 0xa6), "NULL with content", "malformed")
    end)
  end)

  describe("decode", function()
    it("gives a TLV tree", function()
      assert.same({ tag = 0x30, class = "universal", constructed = true,
        { tag = 2, class = "universal", constructed = false, value = "\1" },
        { tag = 0xa7, class = "context", constructed = true,
          { tag = 0x40, class = "application", constructed = false, value = "\1\2\3\4" } },
      }, ber.decode(unhex("30 0b 02 01 01 a7 06 40 04 01 02 03 04")))
    end)

    it("rejects trailing bytes and bad framing", function()
      assert.same({ nil, "trailing bytes" }, { ber.decode(unhex("05 00 00")) })
      assert.same({ nil, "indefinite length" }, { ber.decode(unhex("30 80 00 00")) })
      assert.same({ nil, "length past end" }, { ber.decode(unhex("30 03 05 00")) })
    end)
  end)
  describe("trap_json", function()
    -- Values worth a look in JSON: every type, escapes, UTF-8, odd numbers.
    local VALUES = {
      "02 01 00", "02 01 ff", "02 04 7f ff ff ff", "02 04 80 00 00 00",
      "04 00", "04 02 68 69", "04 04 de ad be ef", "04 05 c3 a9 09 0d 0a",
      "04 07 e2 82 ac f0 9d 84 9e", "04 02 41 00", "04 01 7f", "04 02 c2 85",
      "04 06 22 5c 2f 3c 3e 27",                           -- " \ / < > '
      "04 05 61 08 0c 0b 62",                              -- a BS FF VT b: not text
      "05 00", "06 03 2b 06 01", "06 0a 2b 06 01 04 01 8f ff ff ff 7f", "06 03 88 37 03",
      "06 01 00", "06 07 2b 06 01 04 01 82 37", "40 04 c0 a8 01 fe", "40 04 00 00 00 00",
      "41 05 00 ff ff ff ff", "42 02 00 80", "43 03 01 00 00", "41 01 00",
      "46 09 00 ff ff ff ff ff ff ff ff", "46 07 20 00 00 00 00 00 01", "46 01 00",
      "44 03 01 02 03", "44 00", "44 07 9f 78 04 3f c0 00 00",
      "44 07 9f 78 04 3d cc cc cd",                        -- Float 0.1: 14 digits
      "44 0b 9f 79 08 c0 02 00 00 00 00 00 00", "44 0b 9f 79 08 3f b9 99 99 99 99 99 9a",
      "44 0b 9f 79 08 80 00 00 00 00 00 00 00",            -- Double -0
      "44 0b 9f 79 08 7f ef ff ff ff ff ff ff",            -- Double max
      "44 0b 9f 79 08 00 00 00 00 00 00 00 01",            -- Double denormal min
      "44 0b 9f 79 08 7f f0 00 00 00 00 00 00",            -- Double +inf: null
      "44 07 9f 78 04 7f c0 00 00",                        -- Float NaN: null
      "44 04 9f 7a 01 fb", "44 0b 9f 7a 08 80 00 00 00 00 00 00 00",
      "44 0c 9f 7b 09 00 ff ff ff ff ff ff ff ff", "44 04 9f 76 01 07",
      "44 05 9f 78 02 3f c0", "80 00", "81 00", "82 00",
    }

    local function hand_packets()
      local packets = {
        { "v1 trap", unhex(V1_TRAP) }, { "v1 warmStart", unhex(V1_WARMSTART) },
        { "v2 trap", unhex(V2_TRAP) }, { "inform", unhex(V2_INFORM) },
        { "no bindings", unhex("30 12 02 01 01 04 00 a7 0b 02 01 01 02 01 00 02 01 00 30 00") },
        { "get", unhex("30 26 02 01 01 04 06 70 75 62 6c 69 63 a0 19 02 01 09 02 01 00 02 01"
                       .. " 00 30 0e 30 0c 06 08 2b 06 01 02 01 01 01 00 05 00") },
        { "all values", v2trap((function()
            local all = {}
            for i, v in ipairs(VALUES) do all[i] = vb(v) end
            return table.concat(all)
          end)()) },
      }
      for _, v in ipairs(VALUES) do packets[#packets + 1] = { "value " .. v, v2trap(vb(v)) } end
      -- communities: text, UTF-8 with a C1 control (text, as the handler has it), bytes
      for _, c in ipairs { "", "pub\"lic/", "caf\xc3\xa9", "\xc2\x85x", "\0\xff", "a\tb" } do
        packets[#packets + 1] = { "community " .. hex_of(c),
          tlv(0x30, unhex("02 01 01") .. tlv(0x04, c)
              .. tlv(0xa7, unhex("02 01 01 02 01 00 02 01 00") .. tlv(0x30, vb("05 00")))) }
      end
      return packets
    end

    it("writes every fixture as the table path's record, byte for byte as lua-cjson", function()
      local notifications = 0
      for _, name in ipairs(fixture_names()) do
        if same_as_table_path(fixture(name), name) then notifications = notifications + 1 end
      end
      assert.is_true(notifications >= 8, "fixtures that are notifications: " .. notifications)
    end)

    it("writes every hand vector as the table path's record", function()
      for _, p in ipairs(hand_packets()) do same_as_table_path(p[2], p[1]) end
    end)

    it("decodes, with cjson, to the table path's record as the file has it", function()
      local packets = hand_packets()
      for _, name in ipairs(fixture_names()) do packets[#packets + 1] = { name, fixture(name) } end
      local compared = 0
      for _, p in ipairs(packets) do
        local members, r = same_as_table_path(p[2], p[1])
        if members then
          local got = cjson.decode("{" .. members .. "}")
          -- read back from lua-cjson's line (14 digits: Float 0.1 is 0.10000000149012)
          assert.same(cjson.decode(out_json.encode(r)), got, p[1])
          if not members:find("Float", 1, true) and not members:find("Double", 1, true) then
            assert.same(r, got, p[1])
          end
          compared = compared + 1
        end
      end
      assert.is_true(compared > 60, "compared " .. compared)
    end)

    it("gives the few values the handler's policy needs", function()
      local all = { ber.trap_json(unhex(V2_INFORM)) }
      assert.same({ "v2c", "public", "inform", 0x12345678 }, { table.unpack(all, 1, 4) })
      local version, community, pdu, request_id, members = ber.trap_json(unhex(V1_TRAP))
      assert.same({ "v1", "public", "trap" }, { version, community, pdu })
      assert.is_nil(request_id)
      assert.equal('"version":"v1","community":"public","pdu":"trap","uptime":100,'
        .. '"trap_oid":"1.3.6.1.4.1.9.0.300","enterprise":"1.3.6.1.4.1.9",'
        .. '"agent_addr":"10.0.0.1","generic_trap":6,"specific_trap":300,"bindings":'
        .. '[{"oid":"1.3.6.1.2.1.1.5.0","type":"OCTET STRING","value":"rtr"}]', members)
      -- a well-formed PDU that is not a notification: its values, no text
      local v, c, p, id, text = ber.trap_json(hand_packets()[6][2])
      assert.same({ "v2c", "public", "get", 9 }, { v, c, p, id })
      assert.is_nil(text)
      -- and not one that has a bad binding
      rejects(v2trap(vb("05 00") .. vb("05 01 00"), 0xa0), "NULL with content")
    end)

    it("writes the head strings first and closes the object: the whole line", function()
      local bytes = unhex(V2_TRAP)
      local members = select(5, ber.trap_json(bytes))
      local line = select(5, ber.trap_json(bytes, '{"time":"t",', '"peer":', '"p",'))
      assert.equal('{"time":"t","peer":"p",' .. members .. "}", line)
      assert.equal(members .. "}", select(5, ber.trap_json(bytes, "")))
      local version, community, pdu, request_id = ber.trap_json(bytes, "{")
      assert.same({ "v2c", "public", "trapv2", 5 }, { version, community, pdu, request_id })
      assert.equal(5, cjson.decode(line).request_id)
      assert.has_error(function() ber.trap_json(bytes, "{", {}) end)
      assert.has_error(function() ber.trap_json({}) end)
    end)

    it("takes ber.PEER_DST in the head only after a message object", function()
      -- (the message's addresses, written from the datagram: spec/snmptrap_spec.lua runs it
      -- on the daemon against the address objects)
      assert.equal("userdata", type(ber.PEER_DST))
      for _, head in ipairs { { "{", ber.PEER_DST, "," }, { ber.PEER_DST } } do
        local at = head[1] == ber.PEER_DST and 2 or 3
        assert.error_matches(function() ber.trap_json(unhex(V2_TRAP), table.unpack(head)) end,
          "bad argument #" .. at .. " to '[%w._]*trap_json' %(ber%.PEER_DST needs the "
          .. "message object as argument 1%)")
      end
    end)

    it("writes records past its kept buffer: larger ones, then a huge one", function()
      for _, size in ipairs { 2000, 5000, 70000, 100000, 10 } do
        local binary = string.rep("\0\1\2\255", size // 4)
        local text = string.rep("a/\"", size // 3)
        local bytes = v2trap(tlv(0x30, unhex(NAME) .. tlv(0x04, binary))
                             .. tlv(0x30, unhex(NAME) .. tlv(0x04, text)))
        local members = same_as_table_path(bytes, "size " .. size)
        local line = select(5, ber.trap_json(bytes, "{", '"x":1,'))
        assert.equal('{"x":1,' .. members .. "}", line, "size " .. size)
        assert.equal(text, cjson.decode(line).bindings[2].value)
      end
    end)

    it("agrees with the table path on every single-byte change of real packets", function()
      for _, name in ipairs({ "v1_enterprise_types.bin", "v2c_opaque.bin", "v2c_inform.bin",
                              "v2c_types.bin" }) do
        local data = fixture(name)
        for i = 1, #data do
          for _, b in ipairs({ 0x00, 0x01, 0x22, 0x2f, 0x5c, 0x7f, 0x80, 0x81, 0xc3, 0xff }) do
            local bytes = data:sub(1, i - 1) .. string.char(b) .. data:sub(i + 1)
            same_as_table_path(bytes, string.format("%s byte %d = %02x", name, i, b))
          end
        end
      end
    end)
  end)

  describe("trap_json in scripts/snmptrap.lua", function()
    -- The handler on a stand-in for the daemon: a `luadgram` module with a fixed clock,
    -- counters that add up, and messages with the fields the handler reads.
    local clock = 1709633472.5
    local function load_handler(counts)
      package.loaded.snmptrap, package.loaded.luadgram = nil, nil
      package.preload.luadgram = function()
        return {
          now = function() return clock end,
          every = function() return { cancel = function() end } end,
          log = { warn = function() end, error = function() end, info = function() end },
          counter = function(name)
            return { inc = function(_, v) counts[name] = (counts[name] or 0) + v end }
          end,
        }
      end
      package.preload.ber_spec_keep_all = function() return function() end end
      return require "snmptrap"
    end

    local ADDR = { __tostring = function(a)
      if a.family == "unix" then return a.path end
      return string.format(a.family == "inet6" and "[%s]:%d" or "%s:%d", a.ip, a.port)
    end }
    local function addr(family, ip, port) return setmetatable({ family = family, ip = ip,
                                                                port = port }, ADDR) end
    -- The messages' peers, destinations and receive times (false: none), each with what a
    -- record must say of it: tostring's text, bad UTF-8 as U+FFFD, "nil" for an unbound
    -- sender, no dst member without a destination, the handler's clock without msg.time.
    local PEERS = {
      { addr("inet", "192.0.2.7", 40312), "192.0.2.7:40312" },
      { addr("inet6", "2001:db8::7", 162), "[2001:db8::7]:162" },
      { setmetatable({ family = "unix", path = '/run/a "b"/\xff.sock' }, ADDR),
        '/run/a "b"/\u{FFFD}.sock' },
      { false, "nil" },
    }
    local DSTS = { { addr("inet", "192.0.2.1", 162), "192.0.2.1:162" },
                   { addr("inet6", "::1", 1162), "[::1]:1162" }, { false, nil } }
    local TIMES = { { 1709633472.345678, "2024-03-05T10:11:12.345678Z" },
                    { 1709633473.0625, "2024-03-05T10:11:13.062500Z" },
                    { 1709633473.999999, "2024-03-05T10:11:13.999999Z" },
                    { false, "2024-03-05T10:11:12.500000Z" },
                    { 0.5, "1970-01-01T00:00:00.500000Z" } }

    -- Runs every fixture and hand packet through the handler, three times each with a
    -- different peer, dst and time; returns the file's lines, the counters, the number of
    -- replies and the messages sent, in order: { name =, bytes =, peer =, dst =, time = }
    -- with the texts a record of each must hold.
    local function run(options)
      local counts, replies = {}, 0
      local H = load_handler(counts)
      local path = os.tmpname()
      options.file = { path = path, flush_interval = 1 }
      H.init({ name = 'traps "1"', config_dir = "/" }, options)
      local packets = {}
      for _, name in ipairs(fixture_names()) do packets[#packets + 1] = { name, fixture(name) } end
      packets[#packets + 1] = { "V1_WARMSTART", unhex(V1_WARMSTART) }
      packets[#packets + 1] = { "not SNMP", "not SNMP" }
      local k, sent = 0, {}
      for _, packet in ipairs(packets) do
        local bytes = packet[2]
        for _ = 1, 3 do
          k = k + 1
          local peer, dst = PEERS[k % #PEERS + 1], DSTS[k % #DSTS + 1]
          local time = TIMES[k % #TIMES + 1]
          local msg = { data = bytes, size = #bytes, listener = "traps",
                        peer = peer[1] or nil, dst = dst[1] or nil, time = time[1] or nil,
                        reply = function() replies = replies + 1 return true end }
          H.message(msg)
          sent[k] = { name = packet[1] .. " #" .. k, bytes = bytes, peer = peer[2],
                      dst = dst[2], time = time[2] }
        end
      end
      H.stop()
      local f = assert(io.open(path))
      local lines = {}
      for line in f:lines() do lines[#lines + 1] = line end
      f:close()
      os.remove(path)
      return lines, counts, replies, sent
    end

    -- Text that is the same for the same value: keys sorted, numbers with their type.
    local function canonical(v)
      if type(v) == "number" then return math.type(v) .. ":" .. string.format("%.17g", v) end
      if type(v) ~= "table" then return type(v) .. ":" .. string.format("%q", tostring(v)) end
      local keys = {}
      for key in pairs(v) do keys[#keys + 1] = key end
      table.sort(keys, function(a, b) return canonical(a) < canonical(b) end)
      local parts = {}
      for i, key in ipairs(keys) do parts[i] = canonical(key) .. "=" .. canonical(v[key]) end
      return "{" .. table.concat(parts, ",") .. "}"
    end

    -- A record's content: all but what the handler adds (time, listener, peer, dst).
    local function content_key(r)
      local c = {}
      for key, value in pairs(r) do c[key] = value end
      c.time, c.listener, c.peer, c.dst = nil, nil, nil, nil
      return canonical(c)
    end

    -- The decoded records of `lines` by content, each content's in the order written.
    local function by_content(lines)
      local out = {}
      for _, line in ipairs(lines) do
        local r = cjson.decode(line)
        local key = content_key(r)
        out[key] = out[key] or {}
        table.insert(out[key], r)
      end
      return out
    end

    it("writes the lines the table path writes, field for field", function()
      local fast, fast_counts, fast_replies = run({})
      local tbl, tbl_counts, tbl_replies = run({ on_trap = "ber_spec_keep_all" })
      assert.is_true(#fast > 20, "lines: " .. #fast)
      assert.equal(#tbl, #fast)
      for i = 1, #fast do
        assert.is_truthy(utf8.len(fast[i]), fast[i])
        assert.same(cjson.decode(tbl[i]), cjson.decode(fast[i]), fast[i])
      end
      assert.same(tbl_counts, fast_counts)
      assert.equal(tbl_replies, fast_replies)
      assert.is_true(fast_replies > 0)
      assert.equal(#fast, fast_counts.snmptrap_traps__1__written)
      local r = cjson.decode(fast[1])
      assert.equal('traps "1"', r.listener)
    end)

    it("writes time, peer and dst as the table path does", function()
      local fast, _, _, sent = run({})
      local tbl = run({ on_trap = "ber_spec_keep_all" })
      -- each notification sent, by its content (what trap_json decodes it to), in order
      local want, notifications = {}, 0
      for _, m in ipairs(sent) do
        local members = select(5, ber.trap_json(m.bytes))
        if members then
          local key = content_key(cjson.decode("{" .. members .. "}"))
          want[key] = want[key] or {}
          table.insert(want[key], m)
          notifications = notifications + 1
        end
      end
      assert.is_true(notifications > 20, "notifications: " .. notifications)
      assert.equal(notifications, #fast, "lines of the C path")
      assert.equal(notifications, #tbl, "lines of the table path")
      -- each record matched with its message by content (and, for one content sent three
      -- times, by its place among them), on both paths
      local fast_by, tbl_by = by_content(fast), by_content(tbl)
      for key, messages in pairs(want) do
        local f, t = fast_by[key] or {}, tbl_by[key] or {}
        assert.equal(#messages, #f, "C path: records of " .. messages[1].name)
        assert.equal(#messages, #t, "table path: records of " .. messages[1].name)
        for i, m in ipairs(messages) do
          local expected = { time = m.time, peer = m.peer, dst = m.dst }
          assert.same(expected, { time = f[i].time, peer = f[i].peer, dst = f[i].dst },
                      "C path, " .. m.name)
          assert.same(expected, { time = t[i].time, peer = t[i].peer, dst = t[i].dst },
                      "table path, " .. m.name)
          assert.same(t[i], f[i], m.name)
        end
      end
    end)
  end)
end)
