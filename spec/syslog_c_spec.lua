-- spec/syslog_c_spec.lua: luadgram.syslog's json_writer, the syslog handler's fast path: each
-- line decodes to exactly the object the handler built before it (the Lua record of
-- syslog_parse, names for facility and severity, encoded by lua-cjson with every string made
-- valid UTF-8), numbers are written as lua-cjson writes them, strings are escaped and valid
-- UTF-8 whatever the datagram holds, and lines of 64 KiB datagrams are whole.
local syslog = require "syslog_parse"
local syslog_c = require "luadgram.syslog"
local output_jsonl = require "output_jsonl"
local cjson = require "cjson"

local BOM = "\239\187\191"
local NOW = 1709640000.1234 -- a reception time with a fraction, as luadgram.now() gives

local json = cjson.new() -- as output_jsonl encodes
json.encode_number_precision(14)
json.encode_invalid_numbers("null")

-- A copy of v whose strings are valid UTF-8 (output_jsonl.utf8_fix), as the handler wrote.
local function utf8_copy(v)
  if type(v) == "string" then return output_jsonl.utf8_fix(v) end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[utf8_copy(k)] = utf8_copy(x) end
  return out
end

-- The object the handler wrote for data before luadgram.syslog (the reference), as decoded
-- from its line.
local function reference(data, now, tz, peer, dst, creds, raw, listener)
  local rec = syslog.parse(data, now, { tz_offset = tz })
  if (rec.parse_error and raw ~= "never") or raw == "always" then
    rec.raw_b64 = output_jsonl.base64(rec.raw)
  end
  rec.raw, rec.version = nil, nil
  rec.facility, rec.severity = rec.facility_name, rec.severity_name
  rec.facility_name, rec.severity_name = nil, nil
  for _, e in ipairs(rec.sd or {}) do
    if e.params[1] == nil then e.params = nil end
  end
  rec.listener, rec.received, rec.peer, rec.dst, rec.creds = listener, now, peer, dst, creds
  return json.decode(json.encode(utf8_copy(rec)))
end

-- Checks json_line's results for one datagram against the reference; returns the line.
local function check(data, opts)
  opts = opts or {}
  local raw = opts.raw or "errors"
  local now = opts.now or NOW
  local json_line = syslog_c.json_writer { listener = opts.listener or "sys", raw = raw,
    hostname = true }
  local line, code, failed, host = json_line(data, now, opts.tz, opts.peer, opts.dst,
    opts.creds)
  assert.is_string(line)
  assert.is_truthy(utf8.len(line), "the line is valid UTF-8")
  assert.is_nil(line:find("[%z\1-\31]"), "no raw control byte in the line")
  local want = reference(data, now, opts.tz, opts.peer, opts.dst, opts.creds, raw,
    opts.listener or "sys")
  assert.same(want, json.decode(line))
  local rec = syslog.parse(data, now, { tz_offset = opts.tz })
  assert.equal(rec.facility * 8 + rec.severity, code)
  assert.equal(rec.parse_error ~= nil, failed)
  assert.equal(rec.hostname, host)
  -- record = true: the same line and results, then the record of the same parse (the
  -- collector's forward path parses once)
  local with_record = syslog_c.json_writer { listener = opts.listener or "sys", raw = raw,
    hostname = true, record = true }
  local line2, code2, failed2, host2, rec2 = with_record(data, now, opts.tz, opts.peer,
    opts.dst, opts.creds)
  assert.same({ line, code, failed, host }, { line2, code2, failed2, host2 })
  assert.same(syslog_c.parse(data, now, { tz_offset = opts.tz }), rec2)
  return line
end

describe("luadgram.syslog", function()
  describe("json_writer", function()
    it("writes the RFC 5424 examples as the handler did", function()
      check("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - " .. BOM
        .. "'su root' failed for lonvick on /dev/pts/8")
      check("<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time "
        .. "to make the do-nuts.")
      check("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
        .. '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
        .. '[examplePriority@32473 class="high"]')
    end)

    it("writes RFC 3164, Cisco and unknown datagrams as the handler did", function()
      for _, data in ipairs {
        "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
        "Use the BFG!",
        "<30>Oct  9 22:33:20 auditd[1787]: The audit daemon is exiting.",
        "<189>123: *Mar  1 00:01:02.123 UTC: %SYS-5-CONFIG_I: Configured from console",
        "<187>12: *Mar  1 00:00:01: %PKT_INFRA-LINK-3-UPDOWN: Interface Gi0/0/0/0",
        "<189>999999999999999: x", -- a sequence number past 14 digits: "%.14g"
        "<166>Oct 10 2018 12:34:56 fw01 : %ASA-6-302013: Built inbound TCP connection 1",
      } do
        check(data)
        check(data, { tz = 3600 })
        check(data, { tz = -18000, now = 1704067199.5 })
      end
    end)

    it("writes sd_lenient and a bad TIMESTAMP as the handler did", function()
      local line = check("<14>1 2024-03-05T11:00:00.123Z esxi01 Hostd - - [Originator@6876 "
        .. 'sub=Vimsvc.TaskManager opID=abc-12 user= "vpxuser"] Task Created')
      assert.is_true(json.decode(line).sd_lenient)
      check("<13>1 2024-13-05T11:00:00Z host app - - bad month")
      check("<13>2024-03-05 11:00:00.1234567890123 host app: iso in 3164, 13 digits")
      check("<13>1 2024-03-05T11:00:00 host app - - no offset", { tz = 3600 })
    end)

    it("leaves params out of SD elements without parameters, unescapes values", function()
      local line = check('<14>1 - - - - - [noparams@1][p@1 a="1" q="say \\"hi\\"" '
        .. 'b="back\\\\slash" c="br\\]acket" d="C:\\dir"] four')
      assert.same({ { id = "noparams@1" }, { id = "p@1", params = {
        { name = "a", value = "1" }, { name = "q", value = 'say "hi"' },
        { name = "b", value = "back\\slash" }, { name = "c", value = "br]acket" },
        { name = "d", value = "C:\\dir" } } } }, json.decode(line).sd)
    end)

    it("adds raw_b64 with parse errors, always or never, as the raw option says", function()
      local bad = "<999>pri out of range \255"
      for _, raw in ipairs { "errors", "always", "never" } do
        local r = json.decode(check(bad, { raw = raw }))
        assert.equal(raw ~= "never" and output_jsonl.base64(bad) or nil, r.raw_b64)
        assert.equal("pri", r.app_name) -- a bare TAG, as rsyslog and syslog-ng read it
        assert.equal("out of range \u{fffd}", r.msg)
        r = json.decode(check("<13>1 - - - - - - ok", { raw = raw }))
        assert.equal(raw == "always" and output_jsonl.base64("<13>1 - - - - - - ok") or nil,
          r.raw_b64)
      end
    end)

    it("replaces each byte that starts no valid UTF-8 sequence with U+FFFD", function()
      local cases = {
        { "caf\233 ok", "caf\u{fffd} ok" },
        { "x\237\160\128", "x\u{fffd}\u{fffd}\u{fffd}" },     -- a surrogate
        { "\192\128", "\u{fffd}\u{fffd}" },                   -- overlong
        { "\244\144\128\128", ("\u{fffd}"):rep(4) },         -- past U+10FFFF
        { "\226\130", "\u{fffd}\u{fffd}" },                   -- cut short
        { "caf\195\169 \240\159\152\128", "caf\u{e9} \u{1f600}" },
      }
      for _, c in ipairs(cases) do
        local r = json.decode(check("<13>" .. c[1]))
        assert.equal(c[2], r.msg)
      end
      -- peer, dst and the listener's name are any bytes too (a unix sender's path)
      local r = json.decode(check("<13>x", { peer = "/tmp/\255.sock", dst = "\1",
        listener = "l\254" }))
      assert.equal("/tmp/\u{fffd}.sock", r.peer)
      assert.equal("\1", r.dst)
      assert.equal("l\u{fffd}", r.listener)
    end)

    it("escapes quotes, backslashes and every control byte", function()
      local text = {}
      for c = 0, 127 do text[#text + 1] = string.char(c) end
      text = table.concat(text)
      local line = check("<13>1 - h a - - - " .. text .. "end")
      assert.equal(text .. "end", json.decode(line).msg)
      assert.is_truthy(line:find('\\u0001\\u0002', 1, true), line)
      assert.is_truthy(line:find('\\"', 1, true))
      assert.is_truthy(line:find('\\\\', 1, true))
      assert.is_truthy(line:find("\\n", 1, true))
      assert.is_truthy(line:find("\\u007f", 1, true))
    end)

    it("writes numbers as lua-cjson does (\"%.14g\")", function()
      local values = { 0, 1, -1, 0.5, 1709640000, 1709640000.1234, 1709640000.12345,
        1709640000.99999, 1065910455.003, 1061727255.000003, 12345678901234,
        123456789012345, 1e14, 1e15, 0.1, 1e-7, -2.5e-3, 99999.9999999999, 9.99999999999995,
        1.00000000000005, 2 ^ 53, -1709640000.75, 0.03125, 1709640000.03125 }
      local rng = 99
      for _ = 1, 2000 do -- reception times with microseconds, as luadgram.now() gives
        rng = (rng * 1103515245 + 12345) % 2147483648
        values[#values + 1] = 1.7e9 + rng / 1e6
        values[#values + 1] = rng / 7
      end
      local json_line = syslog_c.json_writer {}
      for _, v in ipairs(values) do
        local line = json_line("x", v)
        local text = line:match('^{"received":([^,]*),')
        assert.equal(json.encode(v), text)
      end
    end)

    it("writes peer, dst, creds and the listener given, and no listener when none", function()
      local r = json.decode(check("<13>1 - - - - - - m", { peer = "127.0.0.1:5000",
        dst = "[::1]:514" }))
      assert.equal("127.0.0.1:5000", r.peer)
      assert.equal("[::1]:514", r.dst)
      r = json.decode(check("<13>1 - - - - - - m", { peer = "/run/x.sock",
        creds = { pid = 42, uid = 1000, gid = 100 } }))
      assert.same({ pid = 42, uid = 1000, gid = 100 }, r.creds)
      local line = syslog_c.json_writer {} ("<13>1 - - - - - - m", NOW)
      assert.is_nil(json.decode(line).listener)
    end)

    it("gives the same object as the reference for random datagrams", function()
      local parts = { "<", ">", "13", "189", "999", "1 ", "-", " ", "[", "]", "=", '"', "\\",
        "x@1", "a", "Oct", " 5 ", "12:00:00", ".123", "2024-03-05T12:00:00Z", "+01:00",
        "%A-1-B:", ":", "*", "host", "app[12]:", "\0", "\n", "\t", BOM, "\255", "\195\169",
        "\237\160\128", "UTC: %", "/", "\127", "123: " }
      local rng_state = 777
      local function rnd(m)
        rng_state = (rng_state * 1103515245 + 12345) % 2147483648
        return rng_state % m + 1
      end
      for _ = 1, 3000 do
        local buf = {}
        for j = 1, rnd(24) do buf[j] = parts[rnd(#parts)] end
        local raw = ({ "errors", "always", "never" })[rnd(3)]
        check(table.concat(buf), { raw = raw, tz = rnd(2) == 1 and 3600 or nil,
          peer = rnd(2) == 1 and "10.0.0.1:514" or nil })
      end
    end)

    it("writes whole lines for 64 KiB datagrams of the worst shapes", function()
      local big = 65536
      local shapes = {
        "<13>1 - h a - - - " .. ("\1"):rep(big - 18),             -- every byte \u0001
        "<13>1 - h a - - " .. ("[x]"):rep(21000),                   -- elements, no params
        "<13>1 - h a - - [x" .. (' a=""'):rep(13000) .. "]",        -- empty parameters
        '<13>1 - h a - - [x v="' .. ('\\"'):rep(32000) .. '"]',     -- escapes
        ("\255"):rep(big),                                          -- no UTF-8 at all
      }
      for _, data in ipairs(shapes) do
        for _, raw in ipairs { "always", "never" } do check(data, { raw = raw }) end
      end
    end)

    it("checks its arguments", function()
      assert.has_error(function() syslog_c.json_writer { raw = "sometimes" } end,
        "bad argument #-1 to 'json_writer' (invalid option 'sometimes')")
      assert.has_error(function() syslog_c.json_writer() end,
        "bad argument #1 to 'json_writer' (table expected, got no value)")
      local json_line = syslog_c.json_writer {}
      assert.has_error(function() json_line(nil, NOW) end,
        "bad argument #1 to 'json_line' (string expected, got nil)")
      assert.has_error(function() json_line("x") end,
        "bad argument #2 to 'json_line' (number expected, got no value)")
      assert.has_error(function() json_line("x", NOW, nil, nil, nil, 5) end,
        "bad argument #6 to 'json_line' (table expected, got number)")
    end)
  end)

  describe("json_batch", function()
    local DATA = { "<13>1 - h a - - - one", "<999>two \255", "<34>Oct 11 22:14:15 m su: three",
      "four" }

    it("gathers json_line's lines, each with a newline, and counts them", function()
      local add, _, take = syslog_c.json_batch { listener = "b", raw = "errors",
        hostname = true }
      local json_line = syslog_c.json_writer { listener = "b", raw = "errors", hostname = true }
      local want = {}
      for i, data in ipairs(DATA) do
        local code, failed, full, host = add(data, NOW + i, 3600, "127.0.0.1:9", "127.0.0.1:514")
        local line, code2, failed2, host2 = json_line(data, NOW + i, 3600, "127.0.0.1:9",
          "127.0.0.1:514")
        assert.same({ code2, failed2, false, host2 }, { code, failed, full, host })
        want[i] = line .. "\n"
      end
      local lines, count = take()
      assert.equal(table.concat(want), lines)
      assert.equal(#DATA, count)
      assert.same({ "", 0 }, { take() })
    end)

    it("takes back the last line for a message filtered out", function()
      local add, drop_last, take = syslog_c.json_batch {}
      add(DATA[1], NOW)
      add(DATA[2], NOW)
      drop_last()
      drop_last() -- only the last one
      add(DATA[3], NOW)
      local lines, count = take()
      assert.equal(2, count)
      local a, b = lines:match("^([^\n]*)\n([^\n]*)\n$")
      assert.equal("one", json.decode(a).msg)
      assert.equal("three", json.decode(b).msg)
    end)

    it("says full from 64 KiB on", function()
      local add, _, take = syslog_c.json_batch {}
      local data = "<13>1 - h a - - - " .. ("x"):rep(1000)
      local n, full = 0, false
      while not full do
        n = n + 1
        full = select(3, add(data, NOW))
        assert.is_true(n < 100)
      end
      local lines, count = take()
      assert.equal(n, count)
      assert.is_true(#lines >= 65536 and #lines - #lines // n < 65536, #lines)
    end)

    it("keeps a line longer than its buffer beside it, in order, until take", function()
      local add, drop_last, take = syslog_c.json_batch { raw = "never" }
      local huge = "<13>1 - h a - - - " .. ("\1"):rep(65000) -- 390 KB of \u0001
      add(DATA[1], NOW)
      local _, _, full = add(huge, NOW)
      assert.is_true(full)
      assert.has_error(function() add(DATA[3], NOW) end,
        "json_batch: take() the full batch before the next add()")
      local lines, count = take()
      assert.equal(2, count)
      local a, b = lines:match("^([^\n]*)\n([^\n]*)\n$")
      assert.equal("one", json.decode(a).msg)
      assert.equal(("\1"):rep(65000), json.decode(b).msg)
      add(huge, NOW)
      drop_last()
      add(DATA[3], NOW)
      lines, count = take()
      assert.equal(1, count)
      assert.equal("three", json.decode(lines).msg)
    end)
  end)
end)
