-- spec/snmptrap_mib_spec.lua: MIB names in scripts/snmptrap.lua (options.mibs, libsmi at
-- init). Notifications of the project's test module (spec/fixtures/mibs/LUADGRAM-TEST-MIB,
-- on its own minimal SNMPv2-SMI and SNMPv2-TC) are sent by net-snmp's snmptrap to luadgramd
-- and to snmptrapd WITHOUT -On, given the same modules (-M that folder only, -m ALL): our
-- trap_name, each binding's name and value_name are compared with the names snmptrapd
-- prints. Both record paths (C JSON, and the Lua table of on_trap) give the same fields, and
-- a listener without mibs writes the bytes it always did. Then the init errors.
local h = require "helpers"
local cjson = require "cjson"
local S = require "snmptrap_helpers"

local MIBS = h.src .. "/spec/fixtures/mibs"
local BROKEN = h.src .. "/spec/fixtures/mibs-broken"
local TEST_MIB = "LUADGRAM-TEST-MIB"
-- One header line per notification, one tab-led line per binding (NAME = TYPE: VALUE).
local TRAPD_FORMAT = [[@@ %s|%b\n\t%V\n\t%v\n]]

local PORT_DOWN = "1.3.6.1.4.1.99999.2.0.1"       -- ltPortDown
local LEVEL_CHANGE = "1.3.6.1.4.1.99999.2.0.2"    -- ltLevelChange

-- snmptrap -v 2c ... UPTIME TRAP-OID [OID TYPE VALUE]... (numeric: the client has no MIBs)
local function trap2(target, uptime, trap_oid, bindings)
  local args = { "-v", "2c", "-c", "public", target, tostring(uptime), trap_oid }
  for _, b in ipairs(bindings) do table.move(b, 1, 3, #args + 1, args) end
  return S.client("snmptrap", args)
end

-- The notifications in snmptrapd's log: { bindings = { { name =, type =, text = } } }.
local function trapd_records(t)
  local out, cur = {}, nil
  for line in ((h.read(t.log) or "") .. "\n"):gmatch("(.-)\n") do
    if line:match("^@@ ") then
      cur = { bindings = {} }
      out[#out + 1] = cur
    elseif cur then
      local name, kind, value = line:match("^\t(%S+) = ([%w%-]+): (.*)$")
      if name then cur.bindings[#cur.bindings + 1] = { name = name, type = kind, text = value } end
    end
  end
  return out
end

local function wait_trapd(t, n)
  local got = h.wait_for(function()
    local r = trapd_records(t)
    return #r >= n and r
  end, 10)
  assert(got, string.format("snmptrapd logged fewer than %d notifications:\n%s", n,
                            h.read(t.log) or ""))
  return got
end

local function lines(path)
  local out = {}
  for line in (h.read(path) or ""):gmatch("[^\n]+") do out[#out + 1] = line end
  return out
end

local function wait_lines(d, path, n)
  local got = h.wait_for(function()
    local l = lines(path)
    return #l >= n and l
  end, 10)
  assert(got, d:explain("fewer than %d records in %s:\n%s", n, path, h.read(path) or ""))
  return got
end

-- A daemon with three listeners on 127.0.0.1 (ephemeral ports), each writing its own file:
-- "fast" (mibs, no callback: the C JSON path), "lua" (mibs and an on_trap callback: the Lua
-- table path) and "plain" (no mibs).
local function start_three()
  local mibs = { dirs = { MIBS }, modules = { TEST_MIB } }
  local ports = h.free_ports(3)
  local listeners, names = {}, { "fast", "lua", "plain" }
  for i, name in ipairs(names) do
    local o = { file = { path = name .. ".jsonl", flush_interval = 0.05 } }
    if name ~= "plain" then o.mibs = mibs end
    if name == "lua" then o.on_trap = "snmptrap_callback" end
    listeners[i] = { name = name, handler = "snmptrap", options = o,
                     bind = "127.0.0.1:" .. ports[i] }
  end
  local d = h.start { listeners = listeners }
  d.ports = { fast = ports[1], lua = ports[2], plain = ports[3] }
  return d
end

-- Sends one notification to the three listeners and to snmptrapd.
local function send_all(d, t, uptime, trap_oid, bindings)
  for _, to in ipairs { "127.0.0.1:" .. d.ports.fast, "127.0.0.1:" .. d.ports.lua,
                        "127.0.0.1:" .. d.ports.plain, "127.0.0.1:" .. t.port } do
    local ok, out = trap2(to, uptime, trap_oid, bindings)
    assert(ok, "snmptrap failed: " .. out)
  end
end

-- Our record `r` against snmptrapd's `t`: the same bindings (sysUpTime.0 and snmpTrapOID.0
-- first), and the trap's name as snmptrapd prints snmpTrapOID.0's value.
local function same_names(r, t, where)
  assert.are.equal(#t.bindings, #r.bindings, where .. ": number of bindings")
  assert.are.equal("OID", t.bindings[2].type, where)
  assert.are.equal(t.bindings[2].text, r.trap_name, where .. ": trap_name")
  for i, b in ipairs(r.bindings) do
    local tb = t.bindings[i]
    local w = where .. " binding " .. i .. " (" .. b.oid .. ")"
    if tb.name:find("::", 1, true) then
      assert.are.equal(tb.name, b.name, w .. ": name")
    else            -- no named prefix ("iso.2.3"): snmptrapd's built-in roots, we give none
      assert.is_nil(b.name, w .. ": name " .. tostring(b.name))
    end
    if b.type == "INTEGER" then
      assert.are.equal("INTEGER", tb.type, w)
      local label, n = tb.text:match("^([%w%-]+)%((%-?%d+)%)$")   -- "up(1)", or "7"
      assert.are.equal(tonumber(n or tb.text), b.value, w .. ": value")
      assert.are.equal(label, b.value_name, w .. ": value_name")
    else
      assert.is_nil(b.value_name, w .. ": value_name")
    end
  end
end

describe("snmptrap handler with MIB names (options.mibs)", function()
  after_each(function()
    S.reset()
    h.cleanup_and_check()
  end)

  it("names traps, bindings and enumerations as snmptrapd does without -On, on both record "
     .. "paths, and leaves a listener without mibs as it was", function()
    local d = start_three()
    local t = S.start_trapd(nil, { format = TRAPD_FORMAT,
                                   mib_flags = "-M " .. h.shq(MIBS) .. " -m ALL" })
    send_all(d, t, 101, PORT_DOWN, {
      { "1.3.6.1.4.1.99999.1.4.1.2.7", "i", "2" },     -- ltPortState.7: down, through LtState
      { "1.3.6.1.4.1.99999.1.4.1.3.7", "s", "eth7" },  -- ltPortDescr.7
      { "1.3.6.1.4.1.99999.1.4.1.2.8", "i", "9" },     -- not in the enumeration: no label
      { "1.3.6.1.4.1.99999.1.3.0", "c", "5" },         -- ltCount.0: a counter
      { "1.3.6.1.4.1.12345.1.2", "i", "1" },           -- SNMPv2-SMI::enterprises.12345.1.2
      { "1.3.6.1.4.1.99999.1.4.1.2", "i", "3" },       -- ltPortState itself: testing
      { "1.2.3.4", "i", "1" },                          -- no module names it
    })
    local theirs = wait_trapd(t, 1)
    send_all(d, t, 102, LEVEL_CHANGE, {
      { "1.3.6.1.4.1.99999.1.2.0", "i", "-3" },        -- ltLevel.0: negative (inline enum)
      { "1.3.6.1.4.1.99999.1.2.0", "i", "10" },        -- high
      { "1.3.6.1.4.1.99999.1.1.0", "s", "x" },         -- ltName.0
    })
    theirs = wait_trapd(t, 2)
    local files = {}
    for _, name in ipairs { "fast", "lua", "plain" } do
      files[name] = wait_lines(d, d.dir .. "/" .. name .. ".jsonl", 2)
    end
    local function by_uptime(ls)
      local out = {}
      for _, l in ipairs(ls) do local r = cjson.decode(l) out[r.uptime] = { line = l, r = r } end
      return out
    end
    local fast, lua, plain = by_uptime(files.fast), by_uptime(files.lua), by_uptime(files.plain)
    for i, up in ipairs { 101, 102 } do
      same_names(fast[up].r, theirs[i], "fast path, trap " .. i)
      same_names(lua[up].r, theirs[i], "Lua path, trap " .. i)
      -- the same fields on both paths (the callback adds its marks)
      local l = lua[up].r
      l.seen_by, l.msg_listener, l.msg_size = nil, nil, nil
      -- (each snmptrap run has its own request-id)
      l.listener, l.time, l.peer, l.dst, l.request_id = nil, nil, nil, nil, nil
      local f = fast[up].r
      f.listener, f.time, f.peer, f.dst, f.request_id = nil, nil, nil, nil, nil
      assert.are.same(f, l)
      -- without mibs: no names, and the line is the named one without its name members
      local p = plain[up]
      assert.is_nil(p.r.trap_name)
      for _, b in ipairs(p.r.bindings) do assert.is_nil(b.name) assert.is_nil(b.value_name) end
      local stripped = fast[up].line:gsub(',"trap_name":"[^"]*"', "")
                                    :gsub(',"name":"[^"]*"', ""):gsub(',"value_name":"[^"]*"', "")
      local function body(s)
        return (s:gsub('^{"time":"[^"]*","listener":"%w+","peer":"[^"]*","dst":"[^"]*",', "")
                 :gsub('"request_id":%d+', '"request_id":0'))
      end
      assert.are.equal(body(p.line), body(stripped))
    end
    -- exact values, not only snmptrapd's (bindings 1, 2: sysUpTime.0, snmpTrapOID.0)
    assert.are.equal("SNMPv2-SMI::snmpModules.1.1.4.1.0", fast[101].r.bindings[2].name)
    local r = fast[101].r
    assert.are.equal("LUADGRAM-TEST-MIB::ltPortDown", r.trap_name)
    assert.are.equal("LUADGRAM-TEST-MIB::ltPortState.7", r.bindings[3].name)
    assert.are.equal("down", r.bindings[3].value_name)
    assert.are.equal("LUADGRAM-TEST-MIB::ltPortDescr.7", r.bindings[4].name)
    assert.is_nil(r.bindings[5].value_name)
    assert.are.equal("SNMPv2-SMI::enterprises.12345.1.2", r.bindings[7].name)
    assert.are.equal("testing", r.bindings[8].value_name)
    assert.is_nil(r.bindings[9].name)
    assert.are.equal("negative", fast[102].r.bindings[3].value_name)
    assert.are.equal("high", fast[102].r.bindings[4].value_name)
  end)

  it("names an SNMPv1 trap's RFC 3584 trap OID on both paths", function()
    local d = start_three()
    for _, name in ipairs { "fast", "lua" } do
      local ok, out = S.client("snmptrap", { "-v", "1", "-c", "public",
        "127.0.0.1:" .. d.ports[name], "1.3.6.1.4.1.99999.2", "192.0.2.1", "6", "1", "55",
        "1.3.6.1.4.1.99999.1.4.1.2.3", "i", "1" })
      assert(ok, out)
    end
    for _, name in ipairs { "fast", "lua" } do
      local r = cjson.decode(wait_lines(d, d.dir .. "/" .. name .. ".jsonl", 1)[1])
      assert.are.equal("1.3.6.1.4.1.99999.2.0.1", r.trap_oid, name)
      assert.are.equal("LUADGRAM-TEST-MIB::ltPortDown", r.trap_name, name)
      assert.are.equal("LUADGRAM-TEST-MIB::ltPortState.3", r.bindings[1].name, name)
      assert.are.equal("up", r.bindings[1].value_name, name)
    end
  end)

  it("names SNMPv3 (USM) notifications too, on both paths", function()
    local mibs = { dirs = { MIBS }, modules = { TEST_MIB } }
    local users = { { name = "ops", auth = "SHA-256", auth_pass = "authpass1",
                      priv = "AES", priv_pass = "privpass1" } }
    local ports = h.free_ports(2)
    local d = h.start { listeners = {
      { name = "fast", handler = "snmptrap", bind = "127.0.0.1:" .. ports[1],
        options = { file = { path = "fast.jsonl", flush_interval = 0.05 }, mibs = mibs,
                    users = users } },
      { name = "lua", handler = "snmptrap", bind = "127.0.0.1:" .. ports[2],
        options = { file = { path = "lua.jsonl", flush_interval = 0.05 }, mibs = mibs,
                    users = users, on_trap = "snmptrap_callback" } } } }
    for i, name in ipairs { "fast", "lua" } do
      local ok, out = S.client("snmptrap", { "-v", "3", "-u", "ops", "-l", "authPriv",
        "-a", "SHA-256", "-A", "authpass1", "-x", "AES", "-X", "privpass1",
        "-e", "0x8000000001020304", "127.0.0.1:" .. ports[i], "77", PORT_DOWN,
        "1.3.6.1.4.1.99999.1.4.1.2.7", "i", "2" })
      assert(ok, out)
      local r = cjson.decode(wait_lines(d, d.dir .. "/" .. name .. ".jsonl", 1)[1])
      assert.are.equal("v3", r.version, name)
      assert.are.equal("ops", r.user, name)
      assert.are.equal("authPriv", r.security_level, name)
      assert.are.equal("LUADGRAM-TEST-MIB::ltPortDown", r.trap_name, name)
      assert.are.equal("LUADGRAM-TEST-MIB::ltPortState.7", r.bindings[3].name, name)
      assert.are.equal("down", r.bindings[3].value_name, name)
    end
  end)

  describe("init", function()
    local function start_fails(mibs)
      local dir = h.tmpdir()
      local conf = dir .. "/luadgramd.conf"
      h.write(conf, h.config_text { listeners = { {
        name = "traps", handler = "snmptrap", bind = "127.0.0.1:" .. h.free_port(),
        options = { file = "t.jsonl", mibs = mibs },
      } } })
      local code, _, err = h.run("-c " .. h.shq(conf), 10)
      return code, err
    end

    local bad = {
      { { dirs = { MIBS }, modules = { "NO-SUCH-MIB" } },
        "options.mibs: module \"NO-SUCH-MIB\": failed to locate MIB module `NO-SUCH-MIB'" },
      { { dirs = { MIBS, BROKEN }, modules = { "LUADGRAM-BROKEN-MIB" } },
        "options.mibs: module \"LUADGRAM-BROKEN-MIB\": cannot import NoSuchThing from "
        .. "SNMPv2-TC, which does not define it" },
      { { dirs = { BROKEN }, modules = { "LUADGRAM-BROKEN-MIB" } },
        "options.mibs: module \"LUADGRAM-BROKEN-MIB\": cannot import OBJECT-TYPE: failed to "
        .. "locate MIB module `SNMPv2-SMI' (LUADGRAM-BROKEN-MIB:6)" },
      { { dirs = { MIBS }, modules = { TEST_MIB }, modles = { "X" } },
        'options.mibs: unknown key "modles" (dirs, modules)' },
      { { modules = { TEST_MIB } }, "options.mibs.dirs must be a non-empty list of strings, "
                                     .. "not nil" },
      { { dirs = { MIBS }, modules = { 5 } },
        "options.mibs.modules[1] must be a non-empty string, not 5" },
      { "IF-MIB", 'options.mibs must be { dirs =, modules = }, not "IF-MIB"' },
    }
    for _, case in ipairs(bad) do
      it("fails the listener's start on " .. case[2], function()
        local code, err = start_fails(case[1])
        assert.are.equal(2, code, err)
        assert.truthy(err:find("init: snmptrap: " .. case[2], 1, true), err)
        -- nothing printed by libsmi itself: its messages only in ours, once
        local _, times = err:gsub(case[2]:gsub("%p", "%%%0"), "")
        assert.are.equal(1, times, err)
        for _, own in ipairs { "cannot be imported", "range limit exceeds", "failed to locate" } do
          local _, n = err:gsub(own, "")
          assert.is_true(n <= 1 and (n == 0 or case[2]:find(own, 1, true) ~= nil), err)
        end
      end)
    end
  end)
end)
