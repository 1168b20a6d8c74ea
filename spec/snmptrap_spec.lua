-- spec/snmptrap_spec.lua: scripts/snmptrap.lua on the real daemon, fed by net-snmp's own
-- clients (snmptrap, snmpinform, snmpget from Debian's `snmp`). Each notification is also sent
-- to net-snmp's snmptrapd (Debian's `snmptrapd`, on its own ephemeral ports) and the JSON
-- Lines records luadgramd writes are compared, binding by binding, with what snmptrapd
-- prints for the same notification. Then the policy: community allow-list, SNMPv3 and other
-- unsupported messages, malformed packets, rate-limited log lines, the on_trap callback, the
-- counters, and option errors.
local h = require "helpers"
local cjson = require "cjson"

local S = require "snmptrap_helpers"
local snmp_env, client, trap2, trap1, inform, start_trapd, unhex, their_value, start, jsonl, wait_records, counters, log_lines, is_utf8_text, same_binding, same_notification, by_key, our_uptime, their_uptime =
  S.snmp_env, S.client, S.trap2, S.trap1, S.inform, S.start_trapd, S.unhex, S.their_value, S.start, S.jsonl, S.wait_records, S.counters, S.log_lines, S.is_utf8_text, S.same_binding, S.same_notification, S.by_key, S.our_uptime, S.their_uptime

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
    S.reset()
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
      { {}, "options.file (or nats, redis) or options.on_trap is required (where would the "
            .. "traps go?)" },
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
        'unknown option "communitites" (communities, file, on_trap, log_interval, mibs, users, '
        .. 'engine_id, state_dir, nats, redis)' },
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
