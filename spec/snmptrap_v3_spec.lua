-- spec/snmptrap_v3_spec.lua: SNMPv3 (USM) in scripts/snmptrap.lua on the real daemon, fed by
-- net-snmp's snmptrap and snmpinform: every level with every authentication and privacy
-- protocol snmptrap offers, with and without -e; the same packets given to snmptrapd (with
-- the same users, createUser -e) and compared binding by binding; the C line and the Lua
-- record (on_trap) alike; informs at every level; bad input counted under its RFC 3414 name
-- and never written; the engine ID kept and engineBoots raised across a restart, which puts
-- a replayed inform outside the time window.
local h = require "helpers"
local cjson = require "cjson"
local S = require "snmptrap_helpers"
local client, start, start_trapd, jsonl, wait_records, counters, by_key, same_notification,
      log_lines, unhex = S.client, S.start, S.start_trapd, S.jsonl, S.wait_records, S.counters,
      S.by_key, S.same_notification, S.log_lines, S.unhex

local AUTHS = { "MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512" }
local PRIVS = { "DES", "AES", "AES-192", "AES-256" }      -- snmptrap -h: DES|AES|AES-192|AES-256
local AUTH_PASS, PRIV_PASS = "auth-pass-1234", "priv-pass-5678"
local SENDER = "80001f88800102030405060708"              -- the traps' engine ID (-e)
local TRAP_OID = "1.3.6.1.6.3.1.1.5.3"
-- users' derivations (1 MiB hashed per password) may take a while on a loaded machine
local SLOW_INIT = { handler_timeout = 30 }

-- The matrix: { name =, level =, auth =, priv = } for noAuthNoPriv, authNoPriv with each
-- auth, authPriv with each auth and priv; names start with `prefix`.
local function matrix(prefix)
  local out = { { name = prefix .. "_noauth", level = "noAuthNoPriv" } }
  for _, a in ipairs(AUTHS) do
    out[#out + 1] = { name = prefix .. "_" .. a, level = "authNoPriv", auth = a }
    for _, p in ipairs(PRIVS) do
      out[#out + 1] = { name = prefix .. "_" .. a .. "_" .. p, level = "authPriv", auth = a,
                        priv = p }
    end
  end
  return out
end

-- The handler's users option for cases (with engine_id when given).
local function users_of(cases, engine_id)
  local out = {}
  for i, c in ipairs(cases) do
    out[i] = { name = c.name, auth = c.auth, auth_pass = c.auth and AUTH_PASS,
               priv = c.priv, priv_pass = c.priv and PRIV_PASS, engine_id = engine_id }
  end
  return out
end

-- snmptrapd.conf lines: createUser -e 0xENGINE for each case.
local function create_users(cases, engine_id)
  local lines = {}
  for _, c in ipairs(cases) do
    local l = "createUser -e 0x" .. engine_id .. " " .. c.name
    if c.auth then l = l .. " " .. c.auth .. " " .. AUTH_PASS end
    if c.priv then l = l .. " " .. c.priv .. " " .. PRIV_PASS end
    lines[#lines + 1] = l
  end
  return table.concat(lines, "\n") .. "\n"
end

-- snmptrap/snmpinform's security arguments for case c (passwords overridable).
local function sec_args(c, o)
  o = o or {}
  local args = { "-v", "3", "-u", c.name, "-l", o.level or c.level }
  if c.auth then table.move({ "-a", c.auth, "-A", o.auth_pass or AUTH_PASS }, 1, 4, #args + 1,
                            args) end
  if c.priv and (o.level or c.level) == "authPriv" then
    table.move({ "-x", c.priv, "-X", o.priv_pass or PRIV_PASS }, 1, 4, #args + 1, args)
  end
  if o.engine then table.move({ "-e", o.engine }, 1, 2, #args + 1, args) end
  return args
end

-- Sends one trap for case c to target; asserts snmptrap's exit 0.
local function trap(c, target, o)
  local args = sec_args(c, o)
  table.move({ target, "", TRAP_OID, "1.3.6.1.2.1.1.1.0", "s", c.name }, 1, 6, #args + 1, args)
  local ok, out = client("snmptrap", args)
  assert(ok, "snmptrap failed for " .. c.name .. ": " .. out)
end

-- The datagram snmptrap sends for case c (caught on a socket of our own).
local function captured_trap(c, o)
  local cap = h.udp("inet", "127.0.0.1")
  trap(c, "127.0.0.1:" .. cap:port(), o)
  local data = cap:recv(10)
  cap:close()
  assert(data, "snmptrap sent nothing for " .. c.name)
  return data
end

local function names_of(cases)
  local out = {}
  for i, c in ipairs(cases) do out[i] = c.name end
  return out
end

-- Our records by user, asserting the SNMPv3 members.
local function check_v3(records, cases, engine_id, pdu)
  local by_user = by_key(records, function(r) return r.user end, names_of(cases), "ours")
  for _, c in ipairs(cases) do
    local r = by_user[c.name]
    assert.are.equal("v3", r.version, c.name)
    assert.are.equal(pdu, r.pdu, c.name)
    assert.are.equal(c.level, r.security_level, c.name)
    assert.are.equal(TRAP_OID, r.trap_oid, c.name)
    assert.are.equal("", r.context_name, c.name)
    assert.is_nil(r.community, c.name)
    if engine_id then assert.are.equal(engine_id, r.engine_id, c.name) end
    assert.truthy(r.context_engine_id:match("^%x+$"), c.name)
    local last = r.bindings[#r.bindings]
    assert.are.same({ oid = "1.3.6.1.2.1.1.1.0", type = "OCTET STRING", value = c.name }, last)
  end
  return by_user
end

-- The engine state file of listener "traps" in d's folder: engine_id, boots, once it names
-- d's process (init writes it when the daemon's first state loads).
local function engine_state(d)
  local path = d.dir .. "/snmptrap-traps.engine"
  local text = h.wait_for(function()
    local t = h.read(path)
    return t and t:find("process=" .. d.pid .. ":", 1, true) and t
  end, 10)
  assert(text, d:explain("no engine state file of pid %d in %s:\n%s", d.pid, path,
                         tostring(h.read(path))))
  return text:match("engine_id=(%x+)"), tonumber(text:match("boots=(%d+)"))
end

local USM_ZERO = { usmStatsUnsupportedSecLevels = 0, usmStatsNotInTimeWindows = 0,
                   usmStatsUnknownUserNames = 0, usmStatsUnknownEngineIDs = 0,
                   usmStatsWrongDigests = 0, usmStatsDecryptionErrors = 0 }

local function with_zero_usm(want)
  local out = {}
  for k, v in pairs(USM_ZERO) do out[k] = v end
  for k, v in pairs(want) do out[k] = v end
  return out
end

describe("snmptrap handler, SNMPv3 (USM)", function()
  after_each(function()
    S.reset()
    h.cleanup_and_check()
  end)

  it("takes snmptrap -v 3 -e at every level, auth and priv, as snmptrapd does, on the C and "
     .. "the Lua path alike", function()
    local cases = matrix("e")
    local users = users_of(cases, SENDER)
    local d = start({ users = users }, SLOW_INIT)                       -- the C line
    local dl = start({ users = users, on_trap = "snmptrap_raw" }, SLOW_INIT) -- the record table
    local t = start_trapd(create_users(cases, SENDER))
    local sender = h.udp("inet", "127.0.0.1")
    for _, c in ipairs(cases) do
      local data = captured_trap(c, { engine = SENDER })
      sender:send("127.0.0.1", d.port, data)
      sender:send("127.0.0.1", dl.port, data)
      sender:send("127.0.0.1", t.port, data)
    end
    local n = #cases
    local ours = check_v3(wait_records(d, n), cases, SENDER, "trapv2")
    local lua_path = check_v3(wait_records(dl, n), cases, SENDER, "trapv2")
    local theirs = by_key(t:wait_records(n), function(r) return r.user end, names_of(cases),
                          "snmptrapd's")
    for _, c in ipairs(cases) do
      same_notification(ours[c.name], theirs[c.name], c.name)
      -- the same record from the Lua table, but for the time, dst and the callback's raw
      local a, b = ours[c.name], lua_path[c.name]
      assert.truthy(b.raw, c.name)
      a.time, a.dst, b.time, b.dst, b.raw = nil, nil, nil, nil, nil
      assert.are.same(a, b, c.name)
    end
    counters(d, with_zero_usm { received = n, decoded = n, written = n, malformed = 0,
                                unsupported = 0 })
  end)

  it("takes snmptrap -v 3 without -e (the sender's own engine) for users without engine_id",
     function()
    local cases = matrix("a")
    local d = start({ users = users_of(cases) }, SLOW_INIT)
    for _, c in ipairs(cases) do trap(c, "127.0.0.1:" .. d.port) end
    local n = #cases
    local ours = check_v3(wait_records(d, n), cases, nil, "trapv2")
    -- each snmptrap makes an engine ID of its own (Net-SNMP's random form, not SENDER): each
    -- trap had its keys localized to a new engine
    for _, c in ipairs(cases) do
      local engine = ours[c.name].engine_id
      assert.truthy(engine:match("^80001f8880%x+$") and engine ~= SENDER, engine)
    end
    counters(d, with_zero_usm { received = n, decoded = n, written = n, malformed = 0 })
  end)

  it("acknowledges snmpinform -v 3 at every level, auth and priv (exit 0, one record each)",
     function()
    local cases = matrix("a")
    local ENGINE = "80001f888099887766554433"
    local d = start({ users = users_of(cases), engine_id = ENGINE }, SLOW_INIT)
    for _, c in ipairs(cases) do
      local args = sec_args(c)
      table.move({ "-t", "10", "-r", "0", "127.0.0.1:" .. d.port, "", TRAP_OID,
                   "1.3.6.1.2.1.1.1.0", "s", c.name }, 1, 10, #args + 1, args)
      local ok, out = client("snmpinform", args)
      assert(ok, "snmpinform failed for " .. c.name .. ": " .. out .. "\n" .. d:tail())
    end
    local n = #cases
    check_v3(wait_records(d, n), cases, ENGINE, "inform")
    -- each snmpinform discovers the engine first: one Report each
    counters(d, with_zero_usm { received = 2 * n, decoded = n, written = n, informs_acked = n,
                                reports_sent = n, usmStatsUnknownEngineIDs = n,
                                reply_errors = 0 })
    assert.are.equal(n, #jsonl(d.out))
    local id, boots = engine_state(d)
    assert.are.equal(ENGINE, id)
    assert.are.equal(1, boots)
  end)

  it("drops bad SNMPv3 input under its usmStats counter, logs it rate-limited, writes nothing",
     function()
    local priv = { name = "e_SHA-256_AES", level = "authPriv", auth = "SHA-256", priv = "AES" }
    local auth = { name = "e_SHA-256", level = "authNoPriv", auth = "SHA-256" }
    local d = start({ users = users_of({ priv, auth }, SENDER), log_interval = 60 }, SLOW_INIT)
    local target = "127.0.0.1:" .. d.port
    local e = { engine = SENDER }
    trap(priv, target, { engine = SENDER, auth_pass = "wrong-auth-pass" })      -- digest
    trap(priv, target, { engine = SENDER, auth_pass = "wrong-auth-pass" })      -- again
    trap({ name = "nobody", level = "noAuthNoPriv" }, target, e)                -- user
    trap(priv, target, { engine = SENDER, level = "authNoPriv" })               -- level
    trap(priv, target, { engine = SENDER, priv_pass = "wrong-priv-pass" })      -- garbage
    trap(auth, target, { engine = "80001f8880ffffffffffffffff" })               -- engine
    local valid = captured_trap(priv, e)
    local sender = h.udp("inet", "127.0.0.1")
    sender:send("127.0.0.1", d.port, valid:sub(1, -6))                          -- too short
    sender:send("127.0.0.1", d.port, valid .. "\0")                             -- too long
    counters(d, { received = 8, decoded = 0, malformed = 2, unsupported = 0, written = 0,
                  usmStatsWrongDigests = 2, usmStatsUnknownUserNames = 1,
                  usmStatsUnsupportedSecLevels = 1, usmStatsDecryptionErrors = 1,
                  usmStatsUnknownEngineIDs = 1, usmStatsNotInTimeWindows = 0,
                  reports_sent = 0 })
    assert.are.same({}, jsonl(d.out))
    for _, name in ipairs { "usmStatsWrongDigests", "usmStatsUnknownUserNames",
                            "usmStatsUnsupportedSecLevels", "usmStatsDecryptionErrors",
                            "usmStatsUnknownEngineIDs" } do
      assert.are.equal(1, log_lines(d, ": " .. name), d:explain("log lines of %s", name))
    end
  end)

  it("keeps its engine ID and raises engineBoots at a restart: a replayed inform is then "
     .. "outside the time window", function()
    local c = { name = "a_SHA-256_AES", level = "authPriv", auth = "SHA-256", priv = "AES" }
    local options = { users = users_of { c }, on_trap = "snmptrap_raw" }
    local d = start(options, SLOW_INIT)
    local id, boots = engine_state(d)
    assert.truthy(id:match("^80001f8880%x+$"), id)
    assert.are.equal(1, boots)
    local args = sec_args(c)
    table.move({ "-t", "10", "-r", "0", "127.0.0.1:" .. d.port, "", TRAP_OID }, 1, 7,
               #args + 1, args)
    local ok, out = client("snmpinform", args)
    assert(ok, "snmpinform failed: " .. out)
    local first = wait_records(d, 1)[1]
    assert.are.equal(id, first.engine_id)
    local raw = unhex(first.raw)
    local _, code = d:stop()
    assert.are.equal(0, code)

    local d2 = start(options, { dir = d.dir, handler_timeout = SLOW_INIT.handler_timeout })
    local id2, boots2 = engine_state(d2)
    assert.are.equal(id, id2)
    assert.are.equal(2, boots2)
    local sender = h.udp("inet", "127.0.0.1")
    local reply = sender:ask("127.0.0.1", d2.port, raw, 10)
    assert(reply, d2:explain("no Report for the replayed inform"))
    -- a Report-PDU (0xa8) carrying usmStatsNotInTimeWindows.0 (1.3.6.1.6.3.15.1.1.2.0)
    assert.truthy(reply:find("\6\10\43\6\1\6\3\15\1\1\2\0", 1, true), "not the usmStats report")
    counters(d2, { received = 1, decoded = 0, usmStatsNotInTimeWindows = 1, reports_sent = 1,
                   informs_acked = 0 })
    assert.are.equal(1, #jsonl(d2.out))      -- the same file: still the first record alone
  end)

  describe("init", function()
    local function start_fails(options)
      local dir = h.tmpdir()
      local conf = dir .. "/luadgramd.conf"
      h.write(conf, h.config_text { listeners = { {
        name = "traps", handler = "snmptrap", bind = "127.0.0.1:" .. h.free_port(),
        options = options,
      } } })
      local code, _, err = h.run("-c " .. h.shq(conf), 10)
      return code, err
    end

    local function u(t)
      local user = { name = "ops", auth = "SHA-256", auth_pass = AUTH_PASS }
      for k, v in pairs(t) do user[k] = v end
      return { file = "t.jsonl", users = { user } }
    end

    local bad = {
      { { file = "t.jsonl", users = 5 }, "options.users must be a list of users, not 5" },
      { { file = "t.jsonl", users = { "ops" } }, 'options.users[1] must be a table, not "ops"' },
      { u { pass = "x" }, 'options.users[1]: unknown field "pass"' },
      { u { auth = "SHA-1024" }, "options.users[1]: auth must be MD5, SHA, SHA-224, SHA-256, "
                                 .. "SHA-384 or SHA-512" },
      { u { priv = "3DES", priv_pass = PRIV_PASS },
        "options.users[1]: priv must be DES, AES (AES-128), AES-192 or AES-256" },
      { u { auth_pass = "short" }, "options.users[1]: a password has at least 8 characters" },
      { { file = "t.jsonl", users = { { name = "ops", priv = "AES", priv_pass = PRIV_PASS } } },
        "options.users[1]: priv needs auth" },
      { u { priv = "AES" }, "options.users[1]: priv needs priv_pass or priv_key" },
      { u { auth_key = "00" }, "options.users[1]: give a password or a key, not both" },
      { { file = "t.jsonl", users = { { name = "ops", auth = "SHA-256", auth_key = "0011" } } },
        "options.users[1]: auth_key of SHA-256 has 2 octets, not 32" },
      { u { engine_id = "80:01" }, "options.users[1]: engine_id has 5 to 32 octets" },
      { u { level = "authPriv" }, "options.users[1]: level authPriv is above what the "
                                  .. "user's keys allow (authNoPriv)" },
      { u { level = "high" }, "options.users[1]: level must be noAuthNoPriv, authNoPriv or "
                              .. "authPriv" },
      { { file = "t.jsonl", engine_id = "80" }, "options.engine_id and options.state_dir need "
                                                .. "options.users" },
      { { file = "t.jsonl", users = {}, engine_id = "xyz" },
        "options.engine_id: engine_id must be 5 to 32 octets in hex" },
      { { file = "t.jsonl", users = {}, state_dir = "/proc/version" },
        "options.state_dir: cannot lock /proc/version/snmptrap-traps.engine.lock" },
    }
    for _, case in ipairs(bad) do
      it("fails the listener's start on " .. case[2], function()
        local code, err = start_fails(case[1])
        assert.are.equal(2, code, err)
        assert.truthy(err:find("init: snmptrap: " .. case[2], 1, true), err)
      end)
    end
  end)
end)
