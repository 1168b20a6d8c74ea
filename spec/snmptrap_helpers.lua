-- spec/snmptrap_helpers.lua: what the snmptrap specs share (snmptrap_spec, snmptrap_v3_spec,
-- snmptrap_mib_spec):
-- the net-snmp clients in a temp folder, snmptrapd started on ephemeral ports and its log
-- read back, the daemon with the snmptrap handler, and the comparison of our records with
-- snmptrapd's, binding by binding. S.reset() after each test stops the snmptrapds.
local h = require "helpers"
local cjson = require "cjson"
local assert = require "luassert"   -- busted's assert (a module does not see the spec's)

local S = {}

-- snmptrapd's output, one header line per notification and one tab-led line per binding:
-- "@@ version|enterprise|agent-addr|generic|specific|uptime|transport|security".
local TRAPD_FORMAT = [[@@ %s|%N|%a|%w|%q|%T|%b|%P\n\t%V\n\t%v\n]]

local trapds = {}   -- snmptrapd processes to stop after each test (S.reset)

-- `env ...` for every net-snmp program: no MIB files, no configuration of the host, and the
-- persistent state in a temp folder (net-snmp writes there).
function S.snmp_env(dir)
  assert(os.execute("mkdir -p " .. h.shq(dir .. "/persist") .. " " .. h.shq(dir .. "/conf")))
  return "env MIBS= SNMPCONFPATH=" .. h.shq(dir .. "/conf")
         .. " SNMP_PERSISTENT_DIR=" .. h.shq(dir .. "/persist")
end

local client_dir    -- the net-snmp clients' folder (persistent state), per test

-- Runs a net-snmp client (at most 20 s): true on exit 0, and its output.
function S.client(tool, args)
  client_dir = client_dir or h.tmpdir()
  local words = {}
  for i, a in ipairs(args) do words[i] = h.shq(a) end
  local out = client_dir .. "/out"
  local cmd = string.format("timeout -k 1 20 %s %s -On -M /dev/null %s >%s 2>&1 </dev/null",
                            S.snmp_env(client_dir), tool, table.concat(words, " "), h.shq(out))
  local ok = os.execute(cmd)
  return ok == true, h.read(out) or ""
end

-- snmptrap -v 2c -c COMMUNITY TARGET UPTIME TRAP-OID [OID TYPE VALUE]...
function S.trap2(target, community, uptime, trap_oid, bindings)
  local args = { "-v", "2c", "-c", community, target, tostring(uptime), trap_oid }
  for _, b in ipairs(bindings or {}) do table.move(b, 1, 3, #args + 1, args) end
  return S.client("snmptrap", args)
end

function S.trap1(target, community, enterprise, agent, generic, specific, uptime, bindings)
  local args = { "-v", "1", "-c", community, target, enterprise, agent, tostring(generic),
                 tostring(specific), tostring(uptime) }
  for _, b in ipairs(bindings or {}) do table.move(b, 1, 3, #args + 1, args) end
  return S.client("snmptrap", args)
end

-- snmpinform waits `wait` seconds (10 by default: an ASan build on a loaded machine) for
-- the acknowledgement and does not retry (a retry would be a second record).
function S.inform(target, community, uptime, trap_oid, bindings, wait)
  local args = { "-v", "2c", "-c", community, "-t", tostring(wait or 10), "-r", "0", target,
                 tostring(uptime), trap_oid }
  for _, b in ipairs(bindings or {}) do table.move(b, 1, 3, #args + 1, args) end
  return S.client("snmpinform", args)
end

-- ---- snmptrapd ----

local Trapd = {}
Trapd.__index = Trapd

-- Starts snmptrapd in the foreground on 127.0.0.1 and [::1] (ephemeral ports), logging to a
-- file, and waits until it is up. conf: lines added to its snmptrapd.conf (createUser ...);
-- opts.format: its -F format (TRAPD_FORMAT, which Trapd:records reads, by default);
-- opts.mib_flags: its MIB options ("-M /dev/null -On", numeric and no modules, by default;
-- "-M <dir> -m ALL" for names from <dir> only).
function S.start_trapd(conf, opts)
  opts = opts or {}
  local dir = h.tmpdir()
  local t = setmetatable({ port = h.free_port("127.0.0.1"), port6 = h.free_port("::1"),
                           log = dir .. "/snmptrapd.log" }, Trapd)
  h.write(dir .. "/snmptrapd.conf", "disableAuthorization yes\n" .. (conf or ""))
  local cmd = string.format(
    "echo $$; exec %s snmptrapd -f -n -C -c %s %s -Lf %s -F %s "
    .. "udp:127.0.0.1:%d,udp6:[::1]:%d >%s 2>&1 </dev/null",
    S.snmp_env(dir), h.shq(dir .. "/snmptrapd.conf"), opts.mib_flags or "-M /dev/null -On",
    h.shq(t.log), h.shq(opts.format or TRAPD_FORMAT),
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
function S.unhex(s)
  return (s:gsub("%s", ""):gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

local OPAQUE_KIND = { UInt64 = "Unsigned64", Int64 = "Integer64", Float = "Float",
                      Double = "Double", Counter64 = "Counter64" }

-- One binding as snmptrapd printed it ("STRING: \"x\"", "Timeticks: (5) 0:00:00.05", ...) as
-- { type = <our type name>, value = ..., bytes = (OCTET STRING), printable = (STRING) }.
function S.their_value(text)
  if text == "NULL" then return { type = "NULL" } end
  if text == '""' then return { type = "OCTET STRING", bytes = "", printable = true } end
  local kind, v = text:match("^([%w%-]+): (.*)$")
  assert(kind, "cannot read snmptrapd's binding: " .. text)
  if kind == "STRING" then
    local s = assert(v:match('^"(.*)"$'), text):gsub("\\(.)", "%1")
    return { type = "OCTET STRING", bytes = s, printable = true }
  elseif kind == "Hex-STRING" then
    return { type = "OCTET STRING", bytes = S.unhex(v), printable = false }
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
      cur = { version = ver == "0" and "v1" or ver == "3" and "v3" or "v2c",
              user = sec:match(", user ([^,]*), context"), enterprise = ent:gsub("^%.", ""),
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
      for k, v in pairs(S.their_value((b.text:gsub("\n+$", "")))) do b[k] = v end
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
-- metrics. cfg (optional): dir (the daemon's folder: a restart in the same one), and
-- handler_timeout. Returns d with d.port, d.port6, d.mport, d.out (the output's path).
function S.start(options, cfg)
  cfg = cfg or {}
  local port, port6, mport = h.free_port("127.0.0.1"), h.free_port("::1"), h.free_tcp_port()
  local o = { file = { path = "traps.jsonl", flush_interval = 0.05 } }
  for k, v in pairs(options or {}) do o[k] = v end
  local d = h.start { metrics = "127.0.0.1:" .. mport, dir = cfg.dir,
    handler_timeout = cfg.handler_timeout, listeners = { {
    name = "traps", handler = "snmptrap", options = o,
    bind = { "127.0.0.1:" .. port, "[::1]:" .. port6 },
  } } }
  d.port, d.port6, d.mport, d.out = port, port6, mport, d.dir .. "/traps.jsonl"
  return d
end

function S.jsonl(path)
  local out = {}
  for line in (h.read(path) or ""):gmatch("[^\n]+") do out[#out + 1] = cjson.decode(line) end
  return out
end

-- Waits (up to 10 s) until the daemon wrote n records; returns them.
function S.wait_records(d, n)
  local got = h.wait_for(function()
    local r = S.jsonl(d.out)
    return #r >= n and r
  end, 10)
  assert(got, d:explain("fewer than %d records in %s:\n%s", n, d.out, h.read(d.out) or ""))
  return got
end

-- Waits until each of the handler's counters in `want` (name -> value) has its value,
-- "received" first: the handler publishes its tallies together, so that the others are not
-- seen on their way past a value (a wrong one passing for the expected one).
function S.counters(d, want)
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
function S.log_lines(d, text)
  local n = 0
  for line in d:log():gmatch("[^\n]+") do
    if line:find(text, 1, true) then n = n + 1 end
  end
  return n
end

-- ---- the comparison ----

function S.is_utf8_text(s)
  return utf8.len(s) ~= nil and not s:find("[%z\1-\8\11\12\14-\31\127]")
end

-- Asserts that our binding `b` says what snmptrapd's `t` says; `where` names it.
function S.same_binding(b, t, where)
  assert.are.equal(t.oid, b.oid, where .. ": OID")
  assert.are.equal(t.type, b.type, where .. " " .. b.oid .. ": type")
  if t.type == "OCTET STRING" then
    local bytes = b.hex and S.unhex(b.value) or b.value
    assert.are.equal(t.bytes, bytes, where .. " " .. b.oid .. ": bytes")
    -- net-snmp prints ASCII text as STRING and anything else as Hex-STRING; we also give
    -- UTF-8 text as text.
    assert.are.equal(not S.is_utf8_text(t.bytes), b.hex == true,
                     where .. " " .. b.oid .. ": hex")
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
function S.same_notification(r, t, where)
  assert.are.equal(t.version, r.version, where .. ": version")
  assert.are.equal(t.pdu, r.pdu, where .. ": PDU")
  assert.are.equal(t.community, r.community, where .. ": community")
  assert.are.equal(t.user, r.user, where .. ": user")
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
  for i, b in ipairs(ours) do S.same_binding(b, t.bindings[i], where .. " binding " .. i) end
end

-- `records` indexed by key(r), asserting that the keys are exactly those of `want` (a list),
-- each once. Notifications that reached different sockets (IPv4, IPv6) come in no fixed
-- order, in our file as in snmptrapd's log: the specs pair them by what each carries.
function S.by_key(records, key, want, what)
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
function S.our_uptime(r) return r.uptime end
function S.their_uptime(t) return t.bindings[1] and t.bindings[1].value end


-- Stops the snmptrapds of the test and forgets the clients' folder.
function S.reset()
  for _, t in ipairs(trapds) do t:stop() end
  trapds = {}
  client_dir = nil
end

return S
