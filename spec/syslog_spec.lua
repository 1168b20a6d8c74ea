-- spec/syslog_spec.lua: the syslog collector (scripts/syslog.lua) on the real daemon: what
-- util-linux `logger` sends over UDP (IPv4, IPv6) and to a unix socket lands as JSON lines
-- with the expected fields (pid/uid/gid for unix senders); 10,000 numbered messages survive
-- a logrotate-style move + SIGHUP exactly once; forwarding keeps the MSG byte for byte;
-- filters drop what they should; the counters in /metrics add up.
local h = require "helpers"
local cjson = require "cjson"
local socket = require "socket"
local syslog_parse = require "syslog_parse"
local output_jsonl = require "output_jsonl"

-- ---- local helpers ----

-- The JSON lines of path, decoded (a missing file gives {}).
local function records(path)
  local out = {}
  for line in (h.read(path) or ""):gmatch("([^\n]*)\n") do
    out[#out + 1] = cjson.decode(line)
  end
  return out
end

-- Waits (10 s by default: an ASan build on a loaded machine) until path holds at least n
-- lines; returns its records.
local function wait_records(path, n, timeout)
  local recs
  h.wait_for(function()
    recs = records(path)
    return #recs >= n
  end, timeout or 10, 0.05)
  return recs
end

local function metric_name(listener, what)
  return "luadgramd_user_syslog_" .. listener .. "_" .. what
end

-- The value of one of the handler's counters in /metrics text (nil when absent).
local function counter(text, listener, what)
  return h.metric(text or "", metric_name(listener, what))
end

-- Waits (10 s by default) until the handler's counter `what` reaches `expected`; returns the
-- value and text.
local function wait_counter(mport, listener, what, expected, timeout)
  local value, text
  h.wait_for(function()
    text = h.metrics(mport)
    value = counter(text, listener, what)
    return value == expected
  end, timeout or 10, 0.05)
  return value, text
end

-- Starts a daemon with one syslog listener per entry of `listeners` (name, bind, options);
-- flush_interval 0.05 s so specs see the lines soon. Returns the daemon and metrics port.
local function start(listeners, extra)
  local mport = h.free_tcp_port()
  local cfg = { metrics = "127.0.0.1:" .. mport, listeners = {} }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  for _, l in ipairs(listeners) do
    cfg.listeners[#cfg.listeners + 1] = { name = l.name, bind = l.bind, handler = "syslog",
      recv = l.recv, options = l.options }
  end
  return h.start(cfg), mport
end

-- Runs util-linux logger with `args` (already quoted) and returns logger's pid (the shell
-- exec()s it, so $$ is logger's pid); raises when logger fails.
local function logger(args)
  local out = h.capture("sh -c 'echo $$; exec logger " .. args:gsub("'", "'\\''")
                        .. "' 2>&1; echo \"rc=$?\"")
  local pid, rc = out:match("^(%d+)\n.-rc=(%d+)$")
  assert(pid and rc == "0", "logger " .. args .. ": " .. out)
  return tonumber(pid)
end

local function this_hostname()
  return h.capture("cat /proc/sys/kernel/hostname")
end

-- The one record of `recs` whose msg is `msg` (records from different sockets, or from
-- several workers, come in no fixed order); fails when there is none or more than one.
local function record_with_msg(recs, msg)
  local found
  for _, r in ipairs(recs) do
    if r.msg == msg then
      assert.is_nil(found, "two records with msg " .. msg)
      found = r
    end
  end
  assert.is_table(found, "no record with msg " .. msg .. " in " .. cjson.encode(recs))
  return found
end

-- How far the daemon's clock (luadgram.now(): libevent's cached time, which follows the wall
-- clock through an offset renewed every 5 s) may stray from the wall clock the test reads.
local CLOCK_SLACK = 0.05

-- Asserts that `t` (epoch seconds) lies between `from`, the time the test read before
-- sending, and `to`, after the record came (give or take CLOCK_SLACK).
local function assert_between(from, t, to, what)
  assert.is_number(t, what)
  assert.is_true(t >= from - CLOCK_SLACK and t <= to + CLOCK_SLACK,
                 string.format("%s %.6f not within [%.6f, %.6f] (give or take %g s)", what, t,
                               from, to, CLOCK_SLACK))
end

describe("syslog handler", function()
  after_each(h.cleanup_and_check)

  describe("with util-linux logger", function()
    local dir, out, p4, p6, sock, d, mport
    before_each(function()
      dir = h.tmpdir()
      out = dir .. "/var/syslog.jsonl" -- a folder that does not exist yet
      p4, p6 = h.free_port("127.0.0.1"), h.free_port("::1")
      sock = dir .. "/log.sock"
      d, mport = start({ {
        name = "sys",
        bind = { "127.0.0.1:" .. p4, "[::1]:" .. p6, "unix:" .. sock },
        options = { file = { path = "var/syslog.jsonl", flush_interval = 0.05 } },
      } }, { dir = dir })
    end)

    it("writes an RFC 5424 message with structured data sent over UDP/IPv4", function()
      local sent_from = h.now()
      logger("-n 127.0.0.1 -P " .. p4 .. " -d --rfc5424 --id=4242 --msgid ID47 "
             .. "--sd-id zoo@123 --sd-param 'tiger=\"hungry\"' -t app -p local3.warning "
             .. "'hello 5424 \u{e9}t\u{e9}'")
      local r = wait_records(out, 1)[1]
      local written_by = h.now()
      assert.is_table(r, d:explain("no line in %s", out))
      assert.are.equal("rfc5424", r.format)
      assert.are.equal(19 * 8 + 4, r.pri)
      assert.are.equal("local3", r.facility)
      assert.are.equal("warning", r.severity)
      assert.is_nil(r.facility_name)
      assert.is_nil(r.version)
      assert.are.equal(this_hostname(), r.hostname)
      assert.are.equal("app", r.app_name)
      assert.are.equal("4242", r.procid)
      assert.are.equal("ID47", r.msgid)
      assert.are.equal("hello 5424 \u{e9}t\u{e9}", r.msg)
      local zoo
      for _, e in ipairs(r.sd) do if e.id == "zoo@123" then zoo = e end end
      assert.is_table(zoo, "no zoo@123 element in " .. cjson.encode(r.sd))
      assert.are.same({ { name = "tiger", value = "hungry" } }, zoo.params)
      assert_between(sent_from, r.time, written_by, "time (logger's timestamp)")
      assert_between(sent_from, r.received, written_by, "received")
      assert.is_truthy(r.timestamp:match("^%d%d%d%d%-%d%d%-%d%dT"), r.timestamp)
      assert.are.equal("sys", r.listener)
      assert.is_truthy(r.peer:match("^127%.0%.0%.1:%d+$"), r.peer)
      assert.are.equal("127.0.0.1:" .. p4, r.dst)
      assert.is_nil(r.parse_error)
      assert.is_nil(r.raw_b64)
      assert.is_nil(r.creds)
    end)

    it("writes an RFC 3164 message sent over UDP/IPv6", function()
      logger("-n ::1 -P " .. p6 .. " -d --rfc3164 -t app3164 -p daemon.info 'hello 3164'")
      local r = wait_records(out, 1)[1]
      assert.is_table(r, d:explain("no line in %s", out))
      assert.are.equal("rfc3164", r.format)
      assert.are.equal("daemon", r.facility)
      assert.are.equal("info", r.severity)
      assert.are.equal(3 * 8 + 6, r.pri)
      assert.are.equal(this_hostname(), r.hostname)
      assert.are.equal("app3164", r.app_name)
      assert.are.equal("hello 3164", r.msg)
      assert.is_truthy(r.timestamp:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d$"), r.timestamp)
      assert.is_truthy(r.peer:match("^%[::1%]:%d+$"), r.peer)
      assert.are.equal("[::1]:" .. p6, r.dst)
      assert.is_nil(r.parse_error)
    end)

    it("gives messages from the unix socket the sender's pid, uid and gid", function()
      local pid = logger("-u " .. h.shq(sock) .. " -d --socket-errors=on -t unixapp "
                         .. "-p auth.err 'hello unix'")
      local r = wait_records(out, 1)[1]
      assert.is_table(r, d:explain("no line in %s", out))
      assert.is_table(r.creds, "no creds: " .. cjson.encode(r))
      assert.are.equal(pid, r.creds.pid)
      assert.are.equal(tonumber(h.capture("id -u")), r.creds.uid)
      assert.are.equal(tonumber(h.capture("id -g")), r.creds.gid)
      assert.are.equal("auth", r.facility)
      assert.are.equal("err", r.severity)
      assert.are.equal("unixapp", r.app_name)
      assert.are.equal("hello unix", r.msg)
      assert.is_nil(r.dst)
      assert.are.equal("sys", r.listener)
    end)

    it("counts received, parsed, parse errors and written in /metrics", function()
      logger("-n 127.0.0.1 -P " .. p4 .. " -d --rfc5424 -t a 'one'")
      logger("-u " .. h.shq(sock) .. " -d --socket-errors=on -t b 'two'")
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)
      c:send("127.0.0.1", p4, "<999>pri out of range \255")
      c:send("127.0.0.1", p4, "<14>1 - - - - - [noparams@1][p@1 a=\"1\"] four")
      local _, text = wait_counter(mport, "sys", "written", 4)
      assert.are.equal(4, counter(text, "sys", "received"), d:explain("%s", text))
      assert.are.equal(3, counter(text, "sys", "parsed"))
      assert.are.equal(1, counter(text, "sys", "parse_errors"))
      assert.are.equal(4, counter(text, "sys", "written"))
      assert.are.equal(0, counter(text, "sys", "dropped"))
      assert.are.equal(0, counter(text, "sys", "filtered"))
      local recs = wait_records(out, 4)
      assert.are.equal(4, #recs, d:explain("lines in %s", out))
      -- "two" came over the unix socket, the others over UDP: the two sockets' records come
      -- in no fixed order, so each is found by its message
      assert.are.equal("a", record_with_msg(recs, "one").app_name)
      assert.are.equal("b", record_with_msg(recs, "two").app_name)
      local bad = record_with_msg(recs, "out of range \u{fffd}") -- TAG "pri"
      assert.are.equal("pri", bad.app_name)
      assert.are.equal("pri out of range", bad.parse_error)
      assert.are.equal(output_jsonl.base64("<999>pri out of range \255"), bad.raw_b64)
      assert.is_nil(bad.pri)
      assert.are.equal("user", bad.facility)
      assert.are.equal("notice", bad.severity)
      assert.is_truthy(utf8.len(h.read(out)), "the file is valid UTF-8")
      local four = record_with_msg(recs, "four")
      assert.are.same({ { id = "noparams@1" }, { id = "p@1", params = {
        { name = "a", value = "1" } } } }, four.sd)
      assert.is_nil(four.raw_b64)
      assert.is_nil(four.parse_error)
    end)
  end)

  describe("encoder", function()
    it("\"cjson\" (lua-cjson on the record table) writes the objects the C writer writes",
       function()
      local dir = h.tmpdir()
      local pc, pj = table.unpack(h.free_ports(2)) -- two listeners: never the same port
      local d = start({
        { name = "c", bind = "127.0.0.1:" .. pc,
          options = { file = { path = dir .. "/c.jsonl", flush_interval = 0.05 } } },
        { name = "j", bind = "127.0.0.1:" .. pj,
          options = { encoder = "cjson", raw = "always",
                      file = { path = dir .. "/j.jsonl", flush_interval = 0.05 } } },
      })
      local datagrams = {
        "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
          .. '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][x@1] '
          .. "\239\187\191An application event log entry...",
        "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
        "no pri, bad UTF-8 \255\254 and a NUL \0 here",
        "<999>out of range",
        "",
      }
      local c = h.udp("inet", "127.0.0.1")
      for _, dg in ipairs(datagrams) do
        c:send("127.0.0.1", pc, dg)
        c:send("127.0.0.1", pj, dg)
      end
      local rc = wait_records(dir .. "/c.jsonl", #datagrams)
      local rj = wait_records(dir .. "/j.jsonl", #datagrams)
      assert.are.equal(#datagrams, #rc, d:explain("C writer lines"))
      assert.are.equal(#datagrams, #rj, d:explain("cjson lines"))
      for i = 1, #datagrams do
        -- Same datagram, same client socket: only the listener, its port and the arrival
        -- time differ; the C writer gives raw_b64 only with a parse error (raw = "errors").
        -- (Each file is one socket's, read by one worker: in the order they were sent.)
        for _, r in ipairs { rc[i], rj[i] } do r.listener, r.dst, r.received = nil, nil, nil end
        if not rc[i].parse_error then rj[i].raw_b64 = nil end
        assert.are.same(rc[i], rj[i], "datagram " .. i)
      end
    end)
  end)

  describe("destination", function()
    it("records each datagram's own dst on a dual-stack wildcard listener", function()
      local dir = h.tmpdir()
      local port = h.free_ports(1)[1] -- [::] takes it on 0.0.0.0 as well
      local d = start({ {
        name = "any", bind = "[::]:" .. port,
        options = { file = { path = "any.jsonl", flush_interval = 0.05 } },
      } }, { dir = dir })
      local c4, c6 = h.udp("inet", "127.0.0.1"), h.udp("inet6", "::1")
      finally(function() c4:close() c6:close() end)
      c4:send("127.0.0.1", port, "<13>1 - - - - - - one")
      c4:send("127.0.0.2", port, "<13>1 - - - - - - two")
      c6:send("::1", port, "<13>1 - - - - - - three")
      local recs = wait_records(dir .. "/any.jsonl", 3)
      assert.are.equal(3, #recs, d:explain("lines"))
      local dst = {}
      for _, r in ipairs(recs) do dst[r.msg] = r.dst end
      assert.are.same({ one = "127.0.0.1:" .. port, two = "127.0.0.2:" .. port,
                        three = "[::1]:" .. port }, dst)
    end)
  end)

  describe("rotation", function()
    it("finds all of 10,000 messages exactly once across a mv + SIGHUP, with 2 workers",
       function()
      local dir = h.tmpdir()
      local out = dir .. "/syslog.jsonl"
      local port = h.free_port("127.0.0.1")
      local d, mport = start({ {
        name = "rot", bind = "127.0.0.1:" .. port, recv = { rcvbuf = 4194304 },
        options = { file = { path = "syslog.jsonl", flush_interval = 0.05 } },
      } }, { workers = 2, dir = dir })
      local clients = {}
      for i = 1, 4 do clients[i] = h.udp("inet", "127.0.0.1") end
      finally(function() for _, c in ipairs(clients) do c:close() end end)

      -- Messages 1..HUP_AT go before the move (the test waits until some are in the file),
      -- the next ones while the daemon reloads, the last AFTER_RELOAD once it logged that it
      -- reloaded: so both files must hold lines however fast this machine is.
      local N, HUP_AT, AFTER_RELOAD = 10000, 5000, 1000
      local before_move
      for i = 1, N do
        clients[i % 4 + 1]:send("127.0.0.1", port,
                                "<134>Oct 11 22:14:15 host app: message number " .. i)
        if i == HUP_AT then
          before_move = #wait_records(out, 1)
          assert(os.rename(out, out .. ".1"))
          assert(d:signal("HUP"))
        elseif i == N - AFTER_RELOAD then
          assert.is_truthy(d:wait_log("reloaded:", 10), d:explain("no reload in the log"))
        end
        if i % 100 == 0 then socket.sleep(0.005) end -- at most 20,000/s
      end
      local n, text = wait_counter(mport, "rot", "written", N, 15)
      assert.are.equal(N, n, d:explain("written:\n%s", tostring(text)))
      assert.are.equal(N, counter(text, "rot", "received"))
      assert.are.equal(0, counter(text, "rot", "dropped"))
      assert.are.equal(0, h.metric(text, "luadgramd_kernel_drops_total", "rot"))

      local seen, total, per_file = {}, 0, {}
      for _, file in ipairs { out .. ".1", out } do
        local recs = records(file)
        per_file[#per_file + 1] = #recs
        for _, r in ipairs(recs) do
          local k = tonumber(r.msg:match("^message number (%d+)$"))
          assert.is_number(k, "unexpected line in " .. file .. ": " .. cjson.encode(r))
          assert.is_nil(seen[k], "message " .. k .. " written twice")
          seen[k], total = true, total + 1
        end
      end
      assert.are.equal(N, total)
      for i = 1, N do assert.is_true(seen[i], "message " .. i .. " missing") end
      assert.is_true(before_move > 0 and per_file[1] >= before_move
                     and per_file[2] >= AFTER_RELOAD,
                     string.format("lines in the moved file %d (%d before the move), in the "
                                   .. "new one %d", per_file[1], before_move, per_file[2]))
    end)
  end)

  describe("forwarding", function()
    local d, mport, port, recv, dir
    before_each(function()
      dir = h.tmpdir()
      recv = h.udp("inet", "127.0.0.1")
      port = h.free_port("127.0.0.1")
      d, mport = start { {
        name = "fwd", bind = "127.0.0.1:" .. port,
        options = { forward = "127.0.0.1:" .. recv:port(),
                    file = { path = dir .. "/fwd.jsonl", flush_interval = 0.05 } },
      } }
    end)
    after_each(function() recv:close() end)

    it("sends an RFC 5424 message on unchanged, structured data and BOM included", function()
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)
      local original = '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - '
        .. 'ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
        .. '[examplePriority@32473 class="high" esc="q\\"b\\\\r\\]"] \239\187\191An '
        .. 'application event log entry...'
      c:send("127.0.0.1", port, original)
      local got = recv:recv(10)
      assert.are.equal(original, got, d:explain("forwarded: %s", tostring(got)))
    end)

    it("turns RFC 3164 into RFC 5424, MSG byte for byte, hostname filled in", function()
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)
      local msg = "tab\there  two spaces, UTF-8 \u{e9}, not UTF-8 \255\254, trailing  "
      local sent_from = h.now()
      c:send("127.0.0.1", port, "<13>Oct 11 22:14:15 app[42]: " .. msg)
      local got = recv:recv(10)
      local got_by = h.now()
      assert.is_string(got, d:explain("nothing forwarded"))
      local head = "<13>1 "
      assert.are.equal(head, got:sub(1, #head), got)
      local _, e = got:find("^<13>1 %S+ 127%.0%.0%.1 app 42 %- %- ")
      assert.is_number(e, "header of " .. got)
      assert.are.equal(msg, got:sub(e + 1), "MSG must be preserved byte for byte")
      local r = syslog_parse.parse(got)
      assert.are.equal("rfc5424", r.format)
      assert.is_number(r.time, "a timestamp with an offset (the reception time)")
      assert_between(sent_from, r.time, got_by, "forwarded timestamp")
      -- the JSON line has the same message, made valid UTF-8, and the exact bytes in base64
      local line = wait_records(dir .. "/fwd.jsonl", 1)[1]
      assert.are.equal(msg:gsub("\255\254", "\u{fffd}\u{fffd}"), line.msg)
      assert.are.equal(output_jsonl.base64("<13>Oct 11 22:14:15 app[42]: " .. msg),
                       line.raw_b64)
      assert.is_true(math.abs(line.received - r.time) <= 1e-4,
                     string.format("received %.6f, forwarded as %.6f", line.received, r.time))
      local n, text = wait_counter(mport, "fwd", "forwarded", 1)
      assert.are.equal(1, n, d:explain("%s", tostring(text)))
    end)
  end)

  describe("filters", function()
    it("keep only what facility, severity and host allow, and count the rest", function()
      local dir = h.tmpdir()
      local pa, pb = table.unpack(h.free_ports(2)) -- two listeners: never the same port
      local d, mport = start { {
        name = "auth", bind = "127.0.0.1:" .. pa,
        options = { file = { path = dir .. "/auth.jsonl", flush_interval = 0.05 },
                    filter = { facility = { "auth", "authpriv" }, severity = "warning",
                               exclude = { host = "~^noisy" } } },
      }, {
        name = "hosts", bind = "127.0.0.1:" .. pb,
        options = { file = { path = dir .. "/hosts.jsonl", flush_interval = 0.05 },
                    filter = { host = { "router1", "~^sw%-%d+$", "127.0.0.1" },
                               exclude = { severity = "debug" } } },
      } }
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)
      local function pri(fac, sev)
        return syslog_parse.facility_codes[fac] * 8 + syslog_parse.severity_codes[sev]
      end
      local function line(fac, sev, host, text)
        return "<" .. pri(fac, sev) .. ">Oct 11 22:14:15 " .. host .. " app: " .. text
      end
      local to_auth = {
        { line("auth", "err", "a", "keep 1"), true },
        { line("authpriv", "warning", "b", "keep 2"), true },
        { line("auth", "notice", "a", "drop: notice is below warning"), false },
        { line("local0", "emerg", "a", "drop: facility"), false },
        { line("auth", "crit", "noisy7", "drop: excluded host"), false },
        { "no PRI: user.notice", false },
      }
      local to_hosts = {
        { line("local7", "info", "router1", "keep 3"), true },
        { line("local7", "info", "ROUTER1", "keep 4: names are case-insensitive"), true },
        { line("local7", "info", "sw-12", "keep 5: pattern"), true },
        { "<190>Oct 11 22:14:15 app: keep 6: no hostname, the sender's IP", true },
        { line("local7", "info", "sw-x", "drop: pattern"), false },
        { line("local7", "info", "other", "drop: host"), false },
        { line("local7", "debug", "router1", "drop: excluded severity"), false },
      }
      local function send_all(p, list)
        local kept = {}
        for _, m in ipairs(list) do
          c:send("127.0.0.1", p, m[1])
          if m[2] then kept[#kept + 1] = m[1]:match("keep %d") end
        end
        return kept
      end
      local want_auth, want_hosts = send_all(pa, to_auth), send_all(pb, to_hosts)
      local _, text = wait_counter(mport, "hosts", "received", #to_hosts)
      wait_counter(mport, "auth", "written", #want_auth)
      _, text = wait_counter(mport, "hosts", "written", #want_hosts)
      for _, case in ipairs { { "auth", to_auth, want_auth }, { "hosts", to_hosts, want_hosts } } do
        local name, sent, want = case[1], case[2], case[3]
        local got = {}
        for _, r in ipairs(records(dir .. "/" .. name .. ".jsonl")) do
          got[#got + 1] = r.msg:match("keep %d") or r.msg
        end
        assert.are.same(want, got, d:explain("%s kept", name))
        assert.are.equal(#sent, counter(text, name, "received"))
        assert.are.equal(#sent - #want, counter(text, name, "filtered"), text)
        assert.are.equal(#sent - #want, counter(text, name, "dropped"), text)
        assert.are.equal(#want, counter(text, name, "written"))
      end
    end)
  end)

  describe("configuration", function()
    local function check(text)
      local dir = h.tmpdir()
      h.write(dir .. "/c.conf", text)
      return h.run("-c " .. h.shq(dir .. "/c.conf"), 10)
    end

    it("refuses a listener without output and a bad filter, naming the problem", function()
      local port = h.free_port("127.0.0.1")
      local base = "script_path = " .. h.lua { h.src .. "/scripts" } .. "\n"
      local code, _, err = check(base .. 'listen "s" { bind = "127.0.0.1:' .. port
        .. '", handler = "syslog", options = { } }\n')
      assert.are.equal(2, code, err)
      assert.is_truthy(err:find("options need file = PATH and/or forward = ADDRESS", 1, true),
                       err)
      code, _, err = check(base .. 'listen "s" { bind = "127.0.0.1:' .. port
        .. '", handler = "syslog", options = { forward = "127.0.0.1:9", '
        .. 'filter = { facility = "bogus" } } }\n')
      assert.are.equal(2, code, err)
      assert.is_truthy(err:find("filter: unknown facility bogus", 1, true), err)
    end)

    it("ships a default configuration and an example that check", function()
      for _, conf in ipairs { "conf/luadgramd.conf", "conf/examples/syslog.conf" } do
        local code, out, err = h.run("-t -c " .. h.shq(h.src .. "/" .. conf), 10)
        assert.are.equal(0, code, conf .. ": " .. out .. err)
      end
    end)
  end)
end)
