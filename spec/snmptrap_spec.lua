-- spec/snmptrap_spec.lua: scripts/snmptrap.lua on the real daemon, fed by net-snmp's own
-- clients (snmptrap, snmpinform, snmpget from Debian's `snmp`). Each notification is also sent
-- to net-snmp's snmptrapd (Debian's `snmptrapd`, on its own ephemeral ports) and the JSON
-- Lines records luadgramd writes are compared, binding by binding, with what snmptrapd
-- prints for the same notification. Then the policy: community allow-list, SNMPv3 and other
-- unsupported messages, malformed packets, rate-limited log lines, the on_trap callback, the
-- counters, and option errors.
local h = require "helpers"
local cjson = require "cjson"

-- snmptrapd's output, one header line per notification and one tab-led line per binding:
-- "@@ version|enterprise|agent-addr|generic|specific|uptime|transport|security".
local TRAPD_FORMAT = [[@@ %s|%N|%a|%w|%q|%T|%b|%P\n\t%V\n\t%v\n]]

local trapds = {}   -- snmptrapd processes to stop after each test

-- `env ...` for every net-snmp program: no MIB files, no configuration of the host, and the
-- persistent state in a temp folder (net-snmp writes there).
local function snmp_env(dir)
  assert(os.execute("mkdir -p " .. h.shq(dir .. "/persist") .. " " .. h.shq(dir .. "/conf")))
  return "env MIBS= SNMPCONFPATH=" .. h.shq(dir .. "/conf")
         .. " SNMP_PERSISTENT_DIR=" .. h.shq(dir .. "/persist")
end

local client_dir

-- Runs a net-snmp client (at most 20 s): true on exit 0, and its output.
local function client(tool, args)
  client_dir = client_dir or h.tmpdir()
  local words = {}
  for i, a in ipairs(args) do words[i] = h.shq(a) end
  local out = client_dir .. "/out"
  local cmd = string.format("timeout -k 1 20 %s %s -On -M /dev/null %s >%s 2>&1 </dev/null",
                            snmp_env(client_dir), tool, table.concat(words, " "), h.shq(out))
  local ok = os.execute(cmd)
  return ok == true, h.read(out) or ""
end

-- snmptrap -v 2c -c COMMUNITY TARGET UPTIME TRAP-OID [OID TYPE VALUE]...
local function trap2(target, community, uptime, trap_oid, bindings)
  local args = { "-v", "2c", "-c", community, target, tostring(uptime), trap_oid }
  for _, b in ipairs(bindings or {}) do table.move(b, 1, 3, #args + 1, args) end
  return client("snmptrap", args)
end

local function trap1(target, community, enterprise, agent, generic, specific, uptime, bindings)
  local args = { "-v", "1", "-c", community, target, enterprise, agent, tostring(generic),
                 tostring(specific), tostring(uptime) }
  for _, b in ipairs(bindings or {}) do table.move(b, 1, 3, #args + 1, args) end
  return client("snmptrap", args)
end

-- snmpinform waits `wait` seconds (10 by default: an ASan build on a loaded machine) for
-- the acknowledgement and does not retry (a retry would be a second record).
local function inform(target, community, uptime, trap_oid, bindings, wait)
  local args = { "-v", "2c", "-c", community, "-t", tostring(wait or 10), "-r", "0", target,
                 tostring(uptime), trap_oid }
  for _, b in ipairs(bindings or {}) do table.move(b, 1, 3, #args + 1, args) end
  return client("snmpinform", args)
end

-- ---- snmptrapd ----

local Trapd = {}
Trapd.__index = Trapd

-- Starts snmptrapd in the foreground on 127.0.0.1 and [::1] (ephemeral ports), logging to a
-- file with TRAPD_FORMAT, and waits until it is up.
local function start_trapd()
  local dir = h.tmpdir()
  local t = setmetatable({ port = h.free_port("127.0.0.1"), port6 = h.free_port("::1"),
                           log = dir .. "/snmptrapd.log" }, Trapd)
  h.write(dir .. "/snmptrapd.conf", "disableAuthorization yes\n")
  local cmd = string.format(
    "echo $$; exec %s snmptrapd -f -n -C -c %s -M /dev/null -On -Lf %s -F %s "
    .. "udp:127.0.0.1:%d,udp6:[::1]:%d >%s 2>&1 </dev/null",
    snmp_env(dir), h.shq(dir .. "/snmptrapd.conf"), h.shq(t.log), h.shq(TRAPD_FORMAT),
    t.port, t.port6, h.shq(dir .. "/snmptrapd.out"))
  t.handle = assert(io.popen(cmd, "r"))
  t.pid = assert(tonumber(t.handle:read("l")))
  trapds[#trapds + 1] = t
  local up = h.wait_for(function()
    return (h.read(t.log) or ""):find("NET-SNMP version", 1, true)
  end, 10)
  assert(up, "snmptrapd did not start: " .. (h.read(t.log) or "")
             .. (h.read(dir .. "/snmptrapd.out") or ""))
  return t
end

function Trapd:stop()
  if not self.handle then return end
  os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
  local gone = h.wait_for(function()
    local stat = h.read("/proc/" .. self.pid .. "/stat")
    return not stat or stat:match("%) ([ZX])")
  end, 3)
  if not gone then os.execute("kill -KILL " .. self.pid .. " 2>/dev/null") end
  self.handle:close()
  self.handle = nil
end

-- The bytes of "DE AD BE EF " (net-snmp) or "de ad be ef" (ours).
local function unhex(s)
  return (s:gsub("%s", ""):gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

local OPAQUE_KIND = { UInt64 = "Unsigned64", Int64 = "Integer64", Float = "Float",
                      Double = "Double", Counter64 = "Counter64" }

-- One binding as snmptrapd printed it ("STRING: \"x\"", "Timeticks: (5) 0:00:00.05", ...) as
-- { type = <our type name>, value = ..., bytes = (OCTET STRING), printable = (STRING) }.
local function their_value(text)
  if text == "NULL" then return { type = "NULL" } end
  if text == '""' then return { type = "OCTET STRING", bytes = "", printable = true } end
  local kind, v = text:match("^([%w%-]+): (.*)$")
  assert(kind, "cannot read snmptrapd's binding: " .. text)
  if kind == "STRING" then
    local s = assert(v:match('^"(.*)"$'), text):gsub("\\(.)", "%1")
    return { type = "OCTET STRING", bytes = s, printable = true }
  elseif kind == "Hex-STRING" then
    return { type = "OCTET STRING", bytes = unhex(v), printable = false }
  elseif kind == "INTEGER" or kind == "Gauge32" or kind == "Counter32" then
    return { type = kind, value = assert(math.tointeger(tonumber(v)), text) }
  elseif kind == "Timeticks" then
    local ticks = assert(math.tointeger(tonumber(v:match("^%((%d+)%)"))), text)
    return { type = "TimeTicks", value = ticks }
  elseif kind == "Counter64" then
    return { type = "Counter64", value = v }
  elseif kind == "OID" then
    return { type = "OBJECT IDENTIFIER", value = v:gsub("^%.", "") }
  elseif kind == "IpAddress" then
    return { type = "IpAddress", value = v }
  elseif kind == "Opaque" then
    local sub, n = v:match("^(%w+): (%S+)$")
    return { type = "Opaque", opaque_type = OPAQUE_KIND[sub], opaque_value = n }
  end
  error("unexpected type in snmptrapd's output: " .. text)
end

local PDU = { TRAP = "trap", TRAP2 = "trapv2", INFORM = "inform" }

-- The notifications in snmptrapd's log, in order.
function Trapd:records()
  local out, cur, last = {}, nil, nil
  for line in ((h.read(self.log) or "") .. "\n"):gmatch("(.-)\n") do
    local ver, ent, agent, gen, spec, up, transport, sec = line:match(
      "^@@ (%d)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$")
    if ver then
      cur = { version = ver == "0" and "v1" or "v2c", enterprise = ent:gsub("^%.", ""),
              agent_addr = agent, generic_trap = tonumber(gen),
              specific_trap = tonumber((spec:gsub("^%.", ""))), uptime = tonumber(up),
              peer_ip = transport:match("%[([^%]]+)%]:%d+"),  -- the first address
              pdu = PDU[sec:match("^(%w+),")], community = sec:match(", community (.*)$"),
              bindings = {} }
      out[#out + 1] = cur
      last = nil
    elseif cur and line:sub(1, 1) == "\t" then
      local oid, rest = line:match("^\t%.([%d.]+) = (.*)$")
      last = oid and { oid = oid, text = rest } or nil  -- "\t" alone: no bindings
      cur.bindings[#cur.bindings + 1] = last
    elseif last then
      last.text = last.text .. "\n" .. line          -- a value with a newline in it
    end
  end
  for _, r in ipairs(out) do
    for _, b in ipairs(r.bindings) do
      -- each notification ends with an empty line, read as part of the last value
      for k, v in pairs(their_value((b.text:gsub("\n+$", "")))) do b[k] = v end
    end
  end
  return out
end

-- Waits (up to 10 s) until snmptrapd logged n notifications; returns them.
function Trapd:wait_records(n)
  local got = h.wait_for(function()
    local r = self:records()
    return #r >= n and r
  end, 10)
  assert(got, string.format("snmptrapd logged fewer than %d notifications:\n%s", n,
                            h.read(self.log) or ""))
  return got
end

-- ---- luadgramd with the snmptrap handler ----

-- Starts the daemon with one listener "traps" on 127.0.0.1 and [::1] (ephemeral ports),
-- file "traps.jsonl" (relative: resolved against the configuration's folder), and
-- metrics. Returns d with d.port, d.port6, d.mport, d.out (the output's path).
local function start(options)
  local port, port6, mport = h.free_port("127.0.0.1"), h.free_port("::1"), h.free_tcp_port()
  local o = { file = { path = "traps.jsonl", flush_interval = 0.05 } }
  for k, v in pairs(options or {}) do o[k] = v end
  local d = h.start { metrics = "127.0.0.1:" .. mport, listeners = { {
    name = "traps", handler = "snmptrap", options = o,
    bind = { "127.0.0.1:" .. port, "[::1]:" .. port6 },
  } } }
  d.port, d.port6, d.mport, d.out = port, port6, mport, d.dir .. "/traps.jsonl"
  return d
end

local function jsonl(path)
  local out = {}
  for line in (h.read(path) or ""):gmatch("[^\n]+") do out[#out + 1] = cjson.decode(line) end
  return out
end

-- Waits (up to 10 s) until the daemon wrote n records; returns them.
local function wait_records(d, n)
  local got = h.wait_for(function()
    local r = jsonl(d.out)
    return #r >= n and r
  end, 10)
  assert(got, d:explain("fewer than %d records in %s:\n%s", n, d.out, h.read(d.out) or ""))
  return got
end

-- Waits until each of the handler's counters in `want` (name -> value) has its value,
-- "received" first: the handler publishes its tallies together, so that the others are not
-- seen on their way past a value (a wrong one passing for the expected one).
local function counters(d, want)
  local names = {}
  for name in pairs(want) do names[#names + 1] = name end
  table.sort(names, function(a, b)
    if (a == "received") ~= (b == "received") then return a == "received" end
    return a < b
  end)
  for _, name in ipairs(names) do
    local n = want[name]
    local got, text = h.wait_metric(d.mport, "luadgramd_user_snmptrap_traps_" .. name, nil, n,
                                    10)
    assert.are.equal(n, got, d:explain("counter %s in\n%s", name, tostring(text)))
  end
end

-- Counts the lines of the daemon's log that hold `text`.
local function log_lines(d, text)
  local n = 0
  for line in d:log():gmatch("[^\n]+") do
    if line:find(text, 1, true) then n = n + 1 end
  end
  return n
end

-- ---- the comparison ----

local function is_utf8_text(s)
  return utf8.len(s) ~= nil and not s:find("[%z\1-\8\11\12\14-\31\127]")
end

-- Asserts that our binding `b` says what snmptrapd's `t` says; `where` names it.
local function same_binding(b, t, where)
  assert.are.equal(t.oid, b.oid, where .. ": OID")
  assert.are.equal(t.type, b.type, where .. " " .. b.oid .. ": type")
  if t.type == "OCTET STRING" then
    local bytes = b.hex and unhex(b.value) or b.value
    assert.are.equal(t.bytes, bytes, where .. " " .. b.oid .. ": bytes")
    -- net-snmp prints ASCII text as STRING and anything else as Hex-STRING; we also give
    -- UTF-8 text as text.
    assert.are.equal(not is_utf8_text(t.bytes), b.hex == true, where .. " " .. b.oid .. ": hex")
    if t.printable then assert.is_nil(b.hex, where .. ": STRING given as hex") end
  elseif t.type == "Opaque" then
    assert.is_true(b.hex, where .. ": Opaque is given in hex")
    local kind = b.opaque_type == "Double" and "Float" or b.opaque_type -- net-snmp: "Float"
    assert.are.equal(t.opaque_type, kind, where .. " " .. b.oid .. ": opaque type")
    if kind == "Float" then
      assert.is_true(math.abs(b.opaque_value - tonumber(t.opaque_value)) < 1e-6,
                     where .. ": opaque float " .. tostring(b.opaque_value))
    else
      assert.are.equal(t.opaque_value, b.opaque_value, where .. ": 64-bit opaque value")
    end
  else
    assert.are.equal(t.value, b.value, where .. " " .. b.oid .. ": value")
  end
end

-- Asserts that our record `r` and snmptrapd's `t` describe the same notification.
local function same_notification(r, t, where)
  assert.are.equal(t.version, r.version, where .. ": version")
  assert.are.equal(t.pdu, r.pdu, where .. ": PDU")
  assert.are.equal(t.community, r.community, where .. ": community")
  assert.are.equal(t.peer_ip, r.peer:match("^%[?([^%]]+)%]?:%d+$"), where .. ": peer")
  if r.version == "v1" then
    for _, k in ipairs { "enterprise", "agent_addr", "generic_trap", "specific_trap",
                         "uptime" } do
      assert.are.equal(t[k], r[k], where .. ": " .. k)
    end
  else
    -- snmptrapd shows the SNMPv2 header bindings; we also lift them into the record
    assert.are.equal("1.3.6.1.2.1.1.3.0", t.bindings[1].oid)
    assert.are.equal(t.bindings[1].value, r.uptime, where .. ": uptime")
    assert.are.equal("1.3.6.1.6.3.1.1.4.1.0", t.bindings[2].oid)
    assert.are.equal(t.bindings[2].value, r.trap_oid, where .. ": trap OID")
  end
  local ours = r.bindings
  if next(ours) == nil then ours = {} end                   -- cjson: an empty list reads as {}
  assert.are.equal(#t.bindings, #ours, where .. ": number of bindings")
  for i, b in ipairs(ours) do same_binding(b, t.bindings[i], where .. " binding " .. i) end
end

-- `records` indexed by key(r), asserting that the keys are exactly those of `want` (a list),
-- each once. Notifications that reached different sockets (IPv4, IPv6) come in no fixed
-- order, in our file as in snmptrapd's log: the specs pair them by what each carries.
local function by_key(records, key, want, what)
  local out, got = {}, {}
  for _, r in ipairs(records) do
    local k = key(r)
    assert(k ~= nil, what .. ": a notification without its key: " .. cjson.encode(r))
    assert.is_nil(out[k], what .. ": two notifications with " .. tostring(k))
    out[k], got[#got + 1] = r, k
  end
  local sorted = table.move(want, 1, #want, 1, {})
  table.sort(sorted)
  table.sort(got)
  assert.are.same(sorted, got, what .. ": the notifications' keys")
  return out
end

-- The uptime (sysUpTime.0) of one of our v2c records and of one of snmptrapd's, which shows
-- it as the first binding.
local function our_uptime(r) return r.uptime end
local function their_uptime(t) return t.bindings[1] and t.bindings[1].value end

-- Every SNMP type the net-snmp clients can send (snmpset(1) TYPE letters, plus the
-- opaque-wrapped 64-bit and floating types), with numeric OIDs under 1.3.6.1.4.1.99999.1.
local EVERY_TYPE = {
  { "1.3.6.1.2.1.1.1.0", "s", "a text string, with\ttab" },
  { "1.3.6.1.4.1.99999.1.1", "i", "-2147483648" },
  { "1.3.6.1.4.1.99999.1.2", "u", "4294967295" },            -- Gauge32
  { "1.3.6.1.4.1.99999.1.3", "c", "123456" },                -- Counter32
  { "1.3.6.1.4.1.99999.1.4", "x", "de ad be ef 00" },        -- bytes: hex
  { "1.3.6.1.4.1.99999.1.5", "x", "63 61 66 c3 a9" },        -- UTF-8 "café"
  { "1.3.6.1.4.1.99999.1.6", "x", "41 42 43" },              -- ASCII given in hex: text
  { "1.3.6.1.4.1.99999.1.7", "d", "1.2.3.250" },             -- decimal bytes
  { "1.3.6.1.4.1.99999.1.8", "s", "" },                      -- empty
  { "1.3.6.1.4.1.99999.1.9", "n", "" },                      -- NULL
  { "1.3.6.1.4.1.99999.1.10", "o", "1.3.6.1.4.1.99999.42.4294967295" },
  { "1.3.6.1.4.1.99999.1.11", "t", "8640000" },              -- TimeTicks
  { "1.3.6.1.4.1.99999.1.12", "a", "192.0.2.33" },           -- IpAddress
  { "1.3.6.1.4.1.99999.1.13", "b", "0,3,9" },                -- BITS: an OCTET STRING
  { "1.3.6.1.4.1.99999.1.14", "C", "18446744073709551615" }, -- Counter64
  { "1.3.6.1.4.1.99999.1.15", "U", "18446744073709551615" }, -- Opaque UInt64
  { "1.3.6.1.4.1.99999.1.16", "I", "-9000000000000000001" }, -- Opaque Int64
  { "1.3.6.1.4.1.99999.1.17", "F", "1.5" },                  -- Opaque Float
  { "1.3.6.1.4.1.99999.1.18", "D", "-2.25" },                -- Opaque Double
}

describe("snmptrap handler (scripts/snmptrap.lua)", function()
  after_each(function()
    for _, t in ipairs(trapds) do t:stop() end
    trapds = {}
    client_dir = nil
    h.cleanup_and_check()
  end)

  describe("decoding, compared with snmptrapd", function()
    it("decodes an SNMPv2c trap with a binding of every type, over IPv4 and IPv6", function()
      local d, t = start(), start_trapd()
      -- the same trap to both, over each family with its own uptime (to pair them by)
      local UP4, UP6 = 4242, 4246
      local targets = {
        { UP4, "127.0.0.1:" .. d.port, "127.0.0.1:" .. t.port },
        { UP6, "udp6:[::1]:" .. d.port6, "udp6:[::1]:" .. t.port6 },
      }
      for _, target in ipairs(targets) do
        for i = 2, 3 do
          local ok, out = trap2(target[i], "public", target[1], "1.3.6.1.4.1.99999.0.1",
                                EVERY_TYPE)
          assert.is_true(ok, out)
        end
      end
      local ours = by_key(wait_records(d, 2), our_uptime, { UP4, UP6 }, "ours")
      local theirs = by_key(t:wait_records(2), their_uptime, { UP4, UP6 }, "snmptrapd's")
      same_notification(ours[UP4], theirs[UP4], "trap over IPv4")
      same_notification(ours[UP6], theirs[UP6], "trap over IPv6")

      local r, r6 = ours[UP4], ours[UP6]
      for _, x in ipairs { r, r6 } do
        assert.are.equal("trapv2", x.pdu)
        assert.are.equal("1.3.6.1.4.1.99999.0.1", x.trap_oid)
        assert.are.equal("traps", x.listener)
        assert.is_number(x.request_id)
        assert.truthy(x.time:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d+Z$"), x.time)
      end
      assert.are.equal("127.0.0.1:" .. d.port, r.dst)
      assert.truthy(r.peer:match("^127%.0%.0%.1:%d+$"), r.peer)
      assert.are.equal("[::1]:" .. d.port6, r6.dst)
      assert.truthy(r6.peer:match("^%[::1%]:%d+$"), r6.peer)
      -- the binding after sysUpTime.0 and snmpTrapOID.0 are ours, in order and all there
      assert.are.equal(2 + #EVERY_TYPE, #r.bindings)
      local seen = {}
      for i, b in ipairs(EVERY_TYPE) do
        assert.are.equal(b[1], r.bindings[i + 2].oid)
        seen[r.bindings[i + 2].type] = true
      end
      for _, ty in ipairs { "INTEGER", "Gauge32", "Counter32", "OCTET STRING", "NULL",
                            "OBJECT IDENTIFIER", "TimeTicks", "IpAddress", "Counter64",
                            "Opaque" } do
        assert.is_true(seen[ty], "no binding of type " .. ty)
      end
      local b = r.bindings
      assert.are.equal("de ad be ef 00", b[7].value)
      assert.is_true(b[7].hex)
      assert.are.equal("café", b[8].value)
      assert.are.equal("\1\2\3\250", unhex(b[10].value))
      assert.are.equal("Integer64", b[19].opaque_type)
      assert.are.equal("-9000000000000000001", b[19].opaque_value)
    end)

    it("decodes SNMPv1 traps, generic and enterprise-specific, with their SNMPv2 trap OID",
       function()
      local d, t = start(), start_trapd()
      for _, to in ipairs { "127.0.0.1:" .. d.port, "127.0.0.1:" .. t.port } do
        assert(trap1(to, "public", "1.3.6.1.4.1.99999", "192.0.2.7", 6, 17, 12345,
                     { { "1.3.6.1.4.1.99999.2.1", "s", "v1 text" },
                       { "1.3.6.1.4.1.99999.2.2", "i", "7" },
                       { "1.3.6.1.4.1.99999.2.3", "a", "10.1.2.3" },
                       { "1.3.6.1.4.1.99999.2.4", "t", "99" } }))
        assert(trap1(to, "public", "1.3.6.1.4.1.8072.3.2.10", "192.0.2.8", 2, 0, 77,
                     { { "1.3.6.1.2.1.2.2.1.1.3", "i", "3" } }))        -- linkDown
        assert(trap1(to, "public", "1.3.6.1.4.1.8072.3.2.10", "192.0.2.9", 0, 0, 1))
      end
      -- paired by agent address, which each of the three carries
      local agents = { "192.0.2.7", "192.0.2.8", "192.0.2.9" }
      local function agent(r) return r.agent_addr end
      local ours = by_key(wait_records(d, 3), agent, agents, "ours")
      local theirs = by_key(t:wait_records(3), agent, agents, "snmptrapd's")
      for _, a in ipairs(agents) do same_notification(ours[a], theirs[a], "v1 trap from " .. a) end
      -- RFC 3584 §3.1: enterprise.0.specific, or snmpTraps.(generic + 1)
      assert.are.equal("1.3.6.1.4.1.99999.0.17", ours["192.0.2.7"].trap_oid)
      assert.are.equal("1.3.6.1.6.3.1.1.5.3", ours["192.0.2.8"].trap_oid)
      assert.are.equal("1.3.6.1.6.3.1.1.5.1", ours["192.0.2.9"].trap_oid)
      for _, a in ipairs(agents) do
        assert.are.equal("v1", ours[a].version)
        assert.are.equal("trap", ours[a].pdu)
        assert.is_nil(ours[a].request_id)
      end
    end)

    it("acknowledges informs, so that snmpinform exits 0, over IPv4 and IPv6", function()
      local d, t = start(), start_trapd()
      local bindings = { { "1.3.6.1.4.1.99999.3.1", "s", "inform text" },
                         { "1.3.6.1.4.1.99999.3.2", "C", "12345678901234" } }
      local UP4, UP6 = 555, 556 -- each family its own uptime, to pair them by
      for _, target in ipairs { { UP4, "127.0.0.1:" .. d.port }, { UP4, "127.0.0.1:" .. t.port },
                                { UP6, "udp6:[::1]:" .. d.port6 },
                                { UP6, "udp6:[::1]:" .. t.port6 } } do
        local to = target[2]
        local ok, out = inform(to, "public", target[1], "1.3.6.1.4.1.99999.0.5", bindings)
        assert.is_true(ok, d:explain("snmpinform to %s failed: %s", to, out))
      end
      local ours = by_key(wait_records(d, 2), our_uptime, { UP4, UP6 }, "ours")
      local theirs = by_key(t:wait_records(2), their_uptime, { UP4, UP6 }, "snmptrapd's")
      same_notification(ours[UP4], theirs[UP4], "inform over IPv4")
      same_notification(ours[UP6], theirs[UP6], "inform over IPv6")
      assert.are.equal("inform", ours[UP4].pdu)
      assert.are.equal("[::1]:" .. d.port6, ours[UP6].dst)
      counters(d, { received = 2, decoded = 2, written = 2, informs_acked = 2 })
    end)
  end)

  describe("peer and dst, written in C from the message (ber.PEER_DST)", function()
    -- One daemon, two listeners: "traps" without a callback (its line written in C, peer and
    -- dst read from the datagram) and "old" with an on_trap callback (the record table, with
    -- peer = tostring(msg.peer) and dst = tostring(msg.dst) from the address objects).
    local function start_pair(binds)
      local listeners = {}
      for _, name in ipairs { "traps", "old" } do
        listeners[#listeners + 1] = { name = name, handler = "snmptrap", bind = binds[name],
          options = { file = { path = name .. ".jsonl", flush_interval = 0.05 },
                      on_trap = name == "old" and "snmptrap_callback" or nil } }
      end
      return h.start { listeners = listeners }
    end

    -- The lines of d's file NAME.jsonl once it holds n, in order.
    local function lines_of(d, name, n)
      local path = d.dir .. "/" .. name .. ".jsonl"
      local got = h.wait_for(function()
        local t = {}
        for line in (h.read(path) or ""):gmatch("[^\n]+") do t[#t + 1] = line end
        return #t >= n and t
      end, 10)
      assert(got, d:explain("fewer than %d lines in %s:\n%s", n, path, h.read(path) or ""))
      assert.are.equal(n, #got, d:explain("lines in %s", path))
      return got
    end

    -- The same, by the records' uptime: { line =, r = the decoded record }.
    local function lines_by_uptime(d, name, n)
      local out = {}
      for _, line in ipairs(lines_of(d, name, n)) do
        local r = cjson.decode(line)
        out[r.uptime] = { line = line, r = r }
      end
      return out
    end

    it("gives the sender's and the listener's address as tostring does: IPv4, IPv6, and "
       .. "IPv4 on a dual-stack [::] socket", function()
      -- eight ports that differ: [::] is dual-stack, so its port must be free on 0.0.0.0 and
      -- differ from every other one on 127.0.0.1 or ::1, the senders' included
      local free = h.free_ports(8)
      local ports = { traps = { free[1], free[2], free[3] }, old = { free[4], free[5], free[6] } }
      local d = start_pair {
        traps = { "127.0.0.1:" .. ports.traps[1], "[::1]:" .. ports.traps[2],
                  "[::]:" .. ports.traps[3] },
        old = { "127.0.0.1:" .. ports.old[1], "[::1]:" .. ports.old[2],
                "[::]:" .. ports.old[3] },
      }
      -- each trap from a fixed source address (net-snmp's clientaddr with its port)
      local from4, from6 = "127.0.0.1:" .. free[7], "[::1]:" .. free[8]
      local cases = {   -- from, target (by the listener's ports), peer, dst
        { from4, function(p) return "udp:127.0.0.1:" .. p[1] end, from4,
          function(p) return "127.0.0.1:" .. p[1] end },
        { from6, function(p) return "udp6:[::1]:" .. p[2] end, from6,
          function(p) return "[::1]:" .. p[2] end },
        { from4, function(p) return "udp:127.0.0.1:" .. p[3] end, from4,   -- mapped on [::]
          function(p) return "127.0.0.1:" .. p[3] end },
        { from6, function(p) return "udp6:[::1]:" .. p[3] end, from6,
          function(p) return "[::1]:" .. p[3] end },
      }
      for i, c in ipairs(cases) do
        for _, name in ipairs { "traps", "old" } do
          local ok, out = client("snmptrap", { "--clientaddr=" .. c[1],
            "--clientaddrUsesPort=yes", "-v", "2c", "-c", "public", c[2](ports[name]),
            tostring(i), "1.3.6.1.4.1.99999.0.1" })
          assert.is_true(ok, out)
        end
      end
      local new, old = lines_by_uptime(d, "traps", #cases), lines_by_uptime(d, "old", #cases)
      for i, c in ipairs(cases) do
        local r, o = new[i].r, old[i].r
        assert.are.equal(c[3], r.peer, "case " .. i)
        assert.are.equal(c[4](ports.traps), r.dst, "case " .. i)
        -- the old path (address objects) says the same
        assert.are.equal(o.peer, r.peer, "case " .. i)
        assert.are.equal(c[4](ports.old), o.dst, "case " .. i)
        -- in the line's place, byte for byte
        local members = string.format('Z","listener":"traps","peer":"%s","dst":"%s",'
                                      .. '"version":"v2c",', c[3], c[4](ports.traps))
        assert.truthy(new[i].line:find(members, 1, true), new[i].line)
        assert.are.equal("snmptrap_callback", o.seen_by)
      end
    end)

    it("gives a unix sender's path as tostring does (escaped, bad UTF-8 as U+FFFD), and "
       .. "nil for an unbound sender", function()
      local utf8_fix = require("output_jsonl").utf8_fix
      local dir = h.tmpdir()
      local to = { traps = dir .. "/traps.sock", old = dir .. "/old.sock" }
      local d = start_pair { traps = "unix:" .. to.traps, old = "unix:" .. to.old }
      -- '"', '\', controls, DEL, a bad byte, a cut sequence, a surrogate, then UTF-8 text
      local path = dir .. "/a \"b\\c\1\127\255\226\130x\237\160\128\195\169.sock"
      local trap = assert(h.read(h.src .. "/spec/fixtures/snmp/v2c_types.bin"))
      local bound, unbound = h.unix(path), h.unix(nil)
      finally(function() bound:close() unbound:close() end)
      for _, name in ipairs { "traps", "old" } do assert(bound:send(to[name], trap)) end
      lines_of(d, "traps", 1)                   -- so that the files keep the order
      lines_of(d, "old", 1)
      for _, name in ipairs { "traps", "old" } do assert(unbound:send(to[name], trap)) end
      local new, old = lines_of(d, "traps", 2), lines_of(d, "old", 2)
      local want = { utf8_fix(path), "nil" }
      assert.truthy(want[1]:find("\u{FFFD}", 1, true))
      for i = 1, 2 do
        local r, o = cjson.decode(new[i]), cjson.decode(old[i])
        assert.are.equal(want[i], r.peer)
        assert.is_nil(r.dst)
        assert.are.equal(o.peer, r.peer)      -- the old path says the same
        assert.are.equal("snmptrap_callback", o.seen_by)
        assert.truthy(new[i]:find('"listener":"traps","peer":' .. cjson.encode(want[i])
                                  .. ',"version":', 1, true), new[i])
      end
    end)
  end)

  describe("policy", function()
    it("drops and counts communities not in the list, and does not acknowledge them",
       function()
      local d = start { communities = { "public", "ops" } }
      local to = "127.0.0.1:" .. d.port
      assert(trap2(to, "ops", 1, "1.3.6.1.4.1.99999.0.1"))
      assert(trap2(to, "private", 2, "1.3.6.1.4.1.99999.0.1"))
      assert(trap1(to, "Public", "1.3.6.1.4.1.99999", "192.0.2.7", 6, 1, 3))
      local ok = inform(to, "private", 4, "1.3.6.1.4.1.99999.0.1", nil, 1) -- must time out
      assert.is_false(ok, "an inform with a rejected community must not be acknowledged")
      assert.is_true((inform(to, "public", 5, "1.3.6.1.4.1.99999.0.1")))
      local r = wait_records(d, 2)
      assert.are.same({ "ops", "public" }, { r[1].community, r[2].community })
      counters(d, { received = 5, decoded = 5, community_rejected = 3, written = 2,
                    informs_acked = 1 })
      -- one line per log_interval (10 s by default) for the three
      assert.are.equal(1, log_lines(d, "is not accepted"), d:tail())
      assert.truthy(d:log():find('community "private" is not accepted', 1, true), d:tail())
    end)

    it("counts SNMPv3 as unsupported, with at most one log line per log_interval", function()
      -- all 21 must come within one log_interval of the first (a process exit and 20 sends
      -- apart): 3 s leaves room for a loaded machine
      local INTERVAL = 3
      local d = start { log_interval = INTERVAL }
      local to = "127.0.0.1:" .. d.port
      assert(client("snmptrap", { "-v", "3", "-l", "noAuthNoPriv", "-u", "bob", "-e",
                                  "0x8000000001020304", to, "1", "1.3.6.1.4.1.99999.0.1" }))
      local v3 = assert(h.read(h.src .. "/spec/fixtures/snmp/v3_noauth.bin"))
      local u = h.udp("inet", "127.0.0.1")
      finally(function() u:close() end)
      for _ = 1, 20 do u:send("127.0.0.1", d.port, v3) end
      counters(d, { received = 21, unsupported = 21, decoded = 0 })
      assert.are.equal(1, log_lines(d, "SNMPv3 is not supported"), d:tail())
      -- after log_interval, the next one is logged with the count of those held back
      h.sleep(INTERVAL + 0.1)
      u:send("127.0.0.1", d.port, v3)
      counters(d, { unsupported = 22 })
      assert.truthy(d:wait_log("SNMPv3 is not supported %(and 20 more unsupported"), d:tail())
      assert.are.equal(2, log_lines(d, "SNMPv3 is not supported"), d:tail())
    end)

    it("counts a request that is not a notification as unsupported", function()
      local d = start()
      local ok = client("snmpget", { "-v", "2c", "-c", "public", "-t", "0.2", "-r", "0",
                                     "127.0.0.1:" .. d.port, "1.3.6.1.2.1.1.1.0" })
      assert.is_false(ok, "a GetRequest gets no answer")
      counters(d, { received = 1, unsupported = 1, decoded = 0 })
      assert.truthy(d:wait_log("a get PDU is not a notification", 2, true), d:tail())
    end)

    it("counts malformed packets, logs the first with its reason, and goes on", function()
      local d = start()
      local good = assert(h.read(h.src .. "/spec/fixtures/snmp/v2c_types.bin"))
      local bad = {
        "not SNMP at all",
        good:sub(1, 20),                              -- cut short
        "\48\128" .. good:sub(3),                     -- indefinite length
        "",                                           -- empty datagram
      }
      local u = h.udp("inet", "127.0.0.1")
      finally(function() u:close() end)
      for _, p in ipairs(bad) do u:send("127.0.0.1", d.port, p) end
      u:send("127.0.0.1", d.port, good)
      local r = wait_records(d, 1)
      assert.are.equal("trapv2", r[1].pdu)
      counters(d, { received = #bad + 1, malformed = #bad, decoded = 1, written = 1 })
      assert.are.equal(1, log_lines(d, "dropped a malformed SNMP packet"), d:tail())
      assert.truthy(d:log():find("dropped a malformed SNMP packet of 15 bytes from 127.0.0.1:"
                                 .. u:port(), 1, true), d:tail())
    end)
  end)

  describe("on_trap callback", function()
    it("sees each record first, may change it, keep it out, or fail", function()
      local d = start { on_trap = "snmptrap_callback" }
      local to = "127.0.0.1:" .. d.port
      for i = 1, 3 do assert(trap2(to, "public", i, "1.3.6.1.4.1.99999.0." .. i)) end
      assert.is_true((inform(to, "public", 4, "1.3.6.1.4.1.99999.0.2")))  -- filtered, acked
      -- the inform was acknowledged, so all four were handled (one socket: in order); once
      -- the counters say so, the file holds every line it will get
      counters(d, { decoded = 4, filtered = 2, callback_errors = 1, written = 2,
                    informs_acked = 1 })
      local r = jsonl(d.out)
      assert.are.equal(2, #r, d:explain("records: %s", h.read(d.out)))
      assert.are.equal("1.3.6.1.4.1.99999.0.1", r[1].trap_oid)
      assert.are.equal("snmptrap_callback", r[1].seen_by)
      assert.are.equal("traps", r[1].msg_listener)
      assert.is_true(r[1].msg_size > 30)
      assert.are.equal("1.3.6.1.4.1.99999.0.3", r[2].trap_oid)
      assert.is_nil(r[2].seen_by)
      assert.truthy(d:log():find("on_trap failed: .*callback fails on purpose"), d:tail())
    end)
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

    local bad = {
      { {}, "options.file or options.on_trap is required (where would the traps go?)" },
      { { communities = 5, file = "t.jsonl" },
        "options.communities must be a list of strings, not 5" },
      { { communities = { "public", 7 }, file = "t.jsonl" },
        "options.communities[2] must be a string, not 7" },
      { { on_trap = "no_such_module_here" },
        "options.on_trap: module 'no_such_module_here' not found" },
      { { on_trap = "echo" }, 'options.on_trap: module "echo" returns neither a function nor '
                              .. "a table with an on_trap function" },
      { { file = 42 }, "options.file must be a path or { path = ... }, not 42" },
      { { file = "/proc/version/traps.jsonl" },
        "options.file: cannot open /proc/version/traps.jsonl: Not a directory" },
      { { file = { path = "x.jsonl", flush_interval = 0 } },
        "options.file.flush_interval must be a number of seconds >= 0.01, not 0" },
      { { communitites = { "public" } },
        'unknown option "communitites" (communities, file, on_trap, log_interval, users, '
        .. 'engine_id, state_dir)' },
      { { log_interval = "often", file = "t.jsonl" },
        'options.log_interval must be a number of seconds >= 0, not "often"' },
    }
    for _, case in ipairs(bad) do
      it("fails the listener's start on " .. case[2], function()
        local code, err = start_fails(case[1])
        assert.are.equal(2, code, err)
        assert.truthy(err:find("init: snmptrap: " .. case[2], 1, true), err)
      end)
    end

    it("accepts the example configuration, conf/examples/snmptrap.conf", function()
      local code, out, err = h.run("-t -c " .. h.shq(h.src .. "/conf/examples/snmptrap.conf"))
      assert.are.equal(0, code, out .. err)
    end)
  end)
end)
