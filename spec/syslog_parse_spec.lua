-- spec/syslog_parse_spec.lua: the syslog parsers, the Lua reference (scripts/lib/syslog_parse.lua)
-- and its C port (require "luadgram.syslog", daemon/codec/syslog_parse.c), each against the whole
-- table: the RFC 5424 §6.5 and RFC 3164 §5.4 examples, a table of what real devices send
-- (each with its whole expected record), hostile datagrams (never an error, never a lost
-- message); then both on the same random datagrams (the same record, number types too);
-- and format5424.
local syslog = require "syslog_parse"
local syslog_c = require "luadgram.syslog"

-- The implementations of parse that every case of "parse" runs against.
local PARSERS = {
  { name = "Lua reference", parse = syslog.parse },
  { name = "C port", parse = syslog_c.parse },
}

local BOM = "\239\187\191"
local NOW = 1709640000 -- 2024-03-05T12:00:00Z, the reception time of every case below

-- Every field a record may have; expect() fails on any other.
local FIELDS = { "raw", "format", "pri", "facility", "severity", "facility_name",
  "severity_name", "version", "timestamp", "time", "hostname", "app_name", "procid",
  "msgid", "sd", "sd_lenient", "msg", "bom", "seq", "cisco", "parse_error" }
local KNOWN = {}
for _, k in ipairs(FIELDS) do KNOWN[k] = true end

-- Parses `input` with `parse` and asserts the record is exactly `want`: fields `want` leaves
-- out must be nil, except facility/severity which default to the no-PRI values (user.notice).
local function expect(parse, input, want, now, opts)
  local rec = parse(input, now or NOW, opts)
  assert.is_table(rec)
  assert.equal(input, rec.raw)
  for k in pairs(rec) do assert.is_true(KNOWN[k], "unexpected field " .. tostring(k)) end
  local full = {}
  for k, v in pairs(want) do full[k] = v end
  if full.facility == nil then
    full.facility, full.facility_name = 1, "user"
  end
  if full.severity == nil then
    full.severity, full.severity_name = 5, "notice"
  end
  for _, k in ipairs(FIELDS) do
    if k == "time" then
      if full.time == nil then
        assert.is_nil(rec.time, "field time")
      else
        assert.is_number(rec.time, "field time")
        assert.near(full.time, rec.time, 1e-6, "field time")
      end
    elseif k ~= "raw" then
      assert.same(full[k], rec[k], "field " .. k)
    end
  end
  return rec
end

local function sd(id, ...)
  local params = {}
  local args = { ... }
  for i = 1, #args, 2 do params[#params + 1] = { name = args[i], value = args[i + 1] } end
  return { id = id, params = params }
end

describe("syslog_parse", function()
  for _, impl in ipairs(PARSERS) do
    local parse = impl.parse
    describe("parse (" .. impl.name .. ")", function()
      describe("RFC 5424 §6.5 examples", function()
        it("example 1: NILVALUE PROCID and SD, BOM before MSG", function()
          expect(parse, "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - " .. BOM
            .. "'su root' failed for lonvick on /dev/pts/8", {
            format = "rfc5424", version = 1, pri = 34, facility = 4, severity = 2,
            facility_name = "auth", severity_name = "crit",
            timestamp = "2003-10-11T22:14:15.003Z", time = 1065910455.003,
            hostname = "mymachine.example.com", app_name = "su", msgid = "ID47",
            bom = true, msg = "'su root' failed for lonvick on /dev/pts/8" })
        end)

        it("example 2: microseconds and a negative offset, no BOM", function()
          expect(parse, "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's "
            .. "time to make the do-nuts.", {
            format = "rfc5424", version = 1, pri = 165, facility = 20, severity = 5,
            facility_name = "local4", severity_name = "notice",
            timestamp = "2003-08-24T05:14:15.000003-07:00", time = 1061727255.000003,
            hostname = "192.0.2.1", app_name = "myproc", procid = "8710",
            msg = "%% It's time to make the do-nuts." })
        end)

        it("example 3: one SD element and a MSG", function()
          expect(parse, "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
            .. '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] '
            .. BOM .. "An application event log entry...", {
            format = "rfc5424", version = 1, pri = 165, facility = 20, severity = 5,
            facility_name = "local4", severity_name = "notice",
            timestamp = "2003-10-11T22:14:15.003Z", time = 1065910455.003,
            hostname = "mymachine.example.com", app_name = "evntslog", msgid = "ID47",
            sd = { sd("exampleSDID@32473", "iut", "3", "eventSource", "Application",
              "eventID", "1011") },
            bom = true, msg = "An application event log entry..." })
        end)

        it("example 4: two SD elements and no MSG", function()
          expect(parse, "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
            .. '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
            .. '[examplePriority@32473 class="high"]', {
            format = "rfc5424", version = 1, pri = 165, facility = 20, severity = 5,
            facility_name = "local4", severity_name = "notice",
            timestamp = "2003-10-11T22:14:15.003Z", time = 1065910455.003,
            hostname = "mymachine.example.com", app_name = "evntslog", msgid = "ID47",
            sd = { sd("exampleSDID@32473", "iut", "3", "eventSource", "Application",
              "eventID", "1011"), sd("examplePriority@32473", "class", "high") },
            msg = "" })
        end)
      end)

      describe("RFC 3164 §5.4 examples", function()
        it("example 1: HOSTNAME and TAG, year filled from the reception time", function()
          expect(parse,
            "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8", {
            format = "rfc3164", pri = 34, facility = 4, severity = 2, facility_name = "auth",
            severity_name = "crit", timestamp = "2023-10-11T22:14:15", hostname = "mymachine",
            app_name = "su", msg = "'su root' failed for lonvick on /dev/pts/8" })
        end)

        it("example 2: no PRI and no header is user.notice with the whole text as MSG", function()
          expect(parse, "Use the BFG!", { format = "unknown", msg = "Use the BFG!" })
        end)

        it("example 2 as relayed: an IP address as HOSTNAME, the first word as TAG", function()
          expect(parse, "<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!", {
            format = "rfc3164", pri = 13, facility = 1, severity = 5, facility_name = "user",
            severity_name = "notice", timestamp = "2024-02-05T17:32:18", hostname = "10.0.0.99",
            app_name = "Use", msg = "the BFG!" })
        end)

        it("example 3: the word after the time is the HOSTNAME, as the RFC says", function()
          local text = "1987 mymachine myproc[10]: %% It's time to make the do-nuts.  %%  "
            .. "Ingredients: Mix=OK, Jelly=OK # Devices: Mixer=OK, Jelly_Injector=OK, "
            .. "Frier=OK # Transport: Conveyer1=OK, Conveyer2=OK # %%"
          expect(parse, "<165>Aug 24 05:34:00 CST " .. text, {
            format = "rfc3164", pri = 165, facility = 20, severity = 5,
            facility_name = "local4", severity_name = "notice",
            timestamp = "2023-08-24T05:34:00", hostname = "CST", app_name = "1987",
            msg = text:sub(6) })
        end)

        it("example 4: a timestamp in no known form leaves everything in MSG", function()
          local text = "1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 "
            .. "sched[0]: That's All Folks!"
          expect(parse, "<0>" .. text, {
            format = "rfc3164", pri = 0, facility = 0, severity = 0, facility_name = "kern",
            severity_name = "emerg", app_name = "1990", msg = text:sub(6) })
        end)

        it("example 4 as relayed: the relay's header in front of the original", function()
          local text = "1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 "
            .. "sched[0]: That's All Folks!"
          expect(parse, "<0>Oct 22 10:52:12 scapegoat " .. text, {
            format = "rfc3164", pri = 0, facility = 0, severity = 0, facility_name = "kern",
            severity_name = "emerg", timestamp = "2023-10-22T10:52:12",
            hostname = "scapegoat", app_name = "1990", msg = text:sub(6) })
        end)
      end)

      describe("real-world variants", function()
        -- { what, datagram, expected record [, now [, opts]] }
        local cases = {
          { "syslog(3) to /dev/log: no HOSTNAME, double-space day, TAG[pid]:",
            "<30>Oct  9 22:33:20 auditd[1787]: The audit daemon is exiting.",
            { format = "rfc3164", pri = 30, facility = 3, severity = 6, facility_name = "daemon",
              severity_name = "info", timestamp = "2023-10-09T22:33:20", app_name = "auditd",
              procid = "1787", msg = "The audit daemon is exiting." } },
          { "logger --rfc3164",
            "<13>Mar  5 11:59:58 myhost root: hello",
            { format = "rfc3164", pri = 13, facility = 1, severity = 5, facility_name = "user",
              severity_name = "notice", timestamp = "2024-03-05T11:59:58", hostname = "myhost",
              app_name = "root", msg = "hello" } },
          { "logger --rfc5424 with its timeQuality element",
            '<13>1 2024-03-05T11:59:58.123456+01:00 myhost root 4321 - [timeQuality tzKnown="1" '
              .. 'isSynced="1" syncAccuracy="123"] hello',
            { format = "rfc5424", version = 1, pri = 13, facility = 1, severity = 5,
              facility_name = "user", severity_name = "notice",
              timestamp = "2024-03-05T11:59:58.123456+01:00", time = 1709636398.123456,
              hostname = "myhost", app_name = "root", procid = "4321",
              sd = { sd("timeQuality", "tzKnown", "1", "isSynced", "1", "syncAccuracy", "123") },
              msg = "hello" } },
          { "December 31 received on January 1 keeps the old year",
            "<13>Dec 31 23:59:50 host app: late",
            { format = "rfc3164", pri = 13, facility = 1, severity = 5, facility_name = "user",
              severity_name = "notice", timestamp = "2023-12-31T23:59:50", hostname = "host",
              app_name = "app", msg = "late" },
            1704067230 }, -- 2024-01-01T00:00:30Z
          { "January 1 from a clock ahead, received on December 31, gets the new year",
            "<13>Jan  1 00:00:05 host app: early",
            { format = "rfc3164", pri = 13, facility = 1, severity = 5, facility_name = "user",
              severity_name = "notice", timestamp = "2024-01-01T00:00:05", hostname = "host",
              app_name = "app", msg = "early" },
            1704067199 }, -- 2023-12-31T23:59:59Z
          { "opts.tz_offset east of UTC gives the offset and the time",
            "<13>Mar  5 10:00:00 host app: x",
            { format = "rfc3164", pri = 13, facility = 1, severity = 5, facility_name = "user",
              severity_name = "notice", timestamp = "2024-03-05T10:00:00+01:00",
              time = 1709629200, hostname = "host", app_name = "app", msg = "x" },
            NOW, { tz_offset = 3600 } },
          { "opts.tz_offset west of UTC",
            "<13>Mar  5 03:00:00 host app: x",
            { format = "rfc3164", pri = 13, facility = 1, severity = 5, facility_name = "user",
              severity_name = "notice", timestamp = "2024-03-05T03:00:00-05:00",
              time = 1709625600, hostname = "host", app_name = "app", msg = "x" },
            NOW, { tz_offset = -18000 } },
          { "an RFC 3339 timestamp in 3164 position (rsyslog forwarding format)",
            "<86>2024-03-05T10:00:00.5+02:00 host sshd[99]: Accepted publickey for root",
            { format = "rfc3164", pri = 86, facility = 10, severity = 6,
              facility_name = "authpriv", severity_name = "info",
              timestamp = "2024-03-05T10:00:00.5+02:00", time = 1709625600.5, hostname = "host",
              app_name = "sshd", procid = "99", msg = "Accepted publickey for root" } },
          { "an ISO timestamp without offset in 3164 position",
            "<14>2024-03-05T10:00:00 host app: x",
            { format = "rfc3164", pri = 14, facility = 1, severity = 6, facility_name = "user",
              severity_name = "info", timestamp = "2024-03-05T10:00:00", hostname = "host",
              app_name = "app", msg = "x" } },
          { "Cisco IOS: sequence number, unsynced '*', milliseconds, UTC",
            "<189>123: *Mar  1 00:01:02.123 UTC: %SYS-5-CONFIG_I: Configured from console by "
              .. "vty0 (10.0.0.1)",
            { format = "rfc3164", pri = 189, facility = 23, severity = 5,
              facility_name = "local7", severity_name = "notice", seq = 123,
              timestamp = "2024-03-01T00:01:02.123Z", time = 1709251262.123,
              cisco = { facility = "SYS", severity = 5, mnemonic = "CONFIG_I" },
              app_name = "%SYS-5-CONFIG_I", msg = "Configured from console by vty0 (10.0.0.1)" } },
          { "Cisco IOS: timestamp ending in a colon, no zone",
            "<187>45: Mar  1 00:10:15: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed "
              .. "state to down",
            { format = "rfc3164", pri = 187, facility = 23, severity = 3,
              facility_name = "local7", severity_name = "err", seq = 45,
              timestamp = "2024-03-01T00:10:15",
              cisco = { facility = "LINK", severity = 3, mnemonic = "UPDOWN" },
              app_name = "%LINK-3-UPDOWN", msg = "Interface GigabitEthernet0/1, changed state to down" } },
          { "Cisco IOS with logging origin-id: HOSTNAME before the timestamp",
            "<189>46: R1: *Mar  1 00:10:15.001: %SYS-5-CONFIG_I: Configured",
            { format = "rfc3164", pri = 189, facility = 23, severity = 5,
              facility_name = "local7", severity_name = "notice", seq = 46, hostname = "R1",
              timestamp = "2024-03-01T00:10:15.001",
              cisco = { facility = "SYS", severity = 5, mnemonic = "CONFIG_I" },
              app_name = "%SYS-5-CONFIG_I", msg = "Configured" } },
          { "Cisco IOS with origin-id and no timestamps",
            "<189>47: R1: %SYS-5-CONFIG_I: Configured",
            { format = "rfc3164", pri = 189, facility = 23, severity = 5,
              facility_name = "local7", severity_name = "notice", seq = 47, hostname = "R1",
              cisco = { facility = "SYS", severity = 5, mnemonic = "CONFIG_I" },
              app_name = "%SYS-5-CONFIG_I", msg = "Configured" } },
          { "Cisco IOS XR: FACILITY-SUBFACILITY-SEV-MNEMONIC",
            "<187>12: *Mar  1 00:00:01: %PKT_INFRA-LINK-3-UPDOWN: Interface Gi0/0/0/0, changed "
              .. "state to Down",
            { format = "rfc3164", pri = 187, facility = 23, severity = 3,
              facility_name = "local7", severity_name = "err", seq = 12,
              timestamp = "2024-03-01T00:00:01",
              cisco = { facility = "PKT_INFRA-LINK", severity = 3, mnemonic = "UPDOWN" },
              app_name = "%PKT_INFRA-LINK-3-UPDOWN", msg = "Interface Gi0/0/0/0, changed state to Down" } },
          { "Cisco NX-OS: empty sequence field, year first",
            "<189>: 2024 Jan 10 12:00:00 UTC: %ETHPORT-5-IF_UP: Interface Ethernet1/1 is up",
            { format = "rfc3164", pri = 189, facility = 23, severity = 5,
              facility_name = "local7", severity_name = "notice",
              timestamp = "2024-01-10T12:00:00Z", time = 1704888000,
              cisco = { facility = "ETHPORT", severity = 5, mnemonic = "IF_UP" },
              app_name = "%ETHPORT-5-IF_UP", msg = "Interface Ethernet1/1 is up" } },
          { "Cisco ASA: year after the day, 'host : %ASA-'",
            "<166>Oct 10 2018 12:34:56 fw01 : %ASA-6-302013: Built inbound TCP connection 1",
            { format = "rfc3164", pri = 166, facility = 20, severity = 6,
              facility_name = "local4", severity_name = "info",
              timestamp = "2018-10-10T12:34:56", hostname = "fw01",
              cisco = { facility = "ASA", severity = 6, mnemonic = "302013" },
              app_name = "%ASA-6-302013", msg = "Built inbound TCP connection 1" } },
          { "Cisco ASA without timestamp",
            "<166>%ASA-6-106023: Deny tcp src outside:1.2.3.4/5 dst inside:10.0.0.1/22",
            { format = "rfc3164", pri = 166, facility = 20, severity = 6,
              facility_name = "local4", severity_name = "info",
              cisco = { facility = "ASA", severity = 6, mnemonic = "106023" },
              app_name = "%ASA-6-106023", msg = "Deny tcp src outside:1.2.3.4/5 dst inside:10.0.0.1/22" } },
          { "TAG: without pid (the kernel)",
            "<6>Mar  5 11:00:00 host kernel: [   12.345] usb 1-1: new device",
            { format = "rfc3164", pri = 6, facility = 0, severity = 6, facility_name = "kern",
              severity_name = "info", timestamp = "2024-03-05T11:00:00", hostname = "host",
              app_name = "kernel", msg = "[   12.345] usb 1-1: new device" } },
          { "a TAG with a slash (postfix)",
            "<22>Mar  5 11:00:00 mail postfix/smtpd[1234]: connect from unknown[10.0.0.9]",
            { format = "rfc3164", pri = 22, facility = 2, severity = 6, facility_name = "mail",
              severity_name = "info", timestamp = "2024-03-05T11:00:00", hostname = "mail",
              app_name = "postfix/smtpd", procid = "1234",
              msg = "connect from unknown[10.0.0.9]" } },
          { "TAG[pid] without the colon",
            "<13>Mar  5 11:00:00 host sshd[12] no colon here",
            { format = "rfc3164", pri = 13, facility = 1, severity = 5, facility_name = "user",
              severity_name = "notice", timestamp = "2024-03-05T11:00:00", hostname = "host",
              app_name = "sshd", procid = "12", msg = "no colon here" } },
          { "'-- MARK --': '--' is the TAG, as rsyslog and syslog-ng read it",
            "<13>Mar  5 11:00:00 host -- MARK --",
            { format = "rfc3164", pri = 13, facility = 1, severity = 5, facility_name = "user",
              severity_name = "notice", timestamp = "2024-03-05T11:00:00", hostname = "host",
              app_name = "--", msg = "MARK --" } },
          { "no PRI but a header: user.notice, parsed as 3164",
            "Mar  5 11:00:00 host app: text",
            { format = "rfc3164", timestamp = "2024-03-05T11:00:00", hostname = "host",
              app_name = "app", msg = "text" } },
          { "a PRI and nothing else",
            "<13>",
            { format = "rfc3164", pri = 13, facility = 1, severity = 5, facility_name = "user",
              severity_name = "notice", msg = "" } },
          { "a PRI and no header: TAG: CONTENT (RFC 3164 §4.1.3)",
            "<11>Error: disk full",
            { format = "rfc3164", pri = 11, facility = 1, severity = 3, facility_name = "user",
              severity_name = "err", app_name = "Error", msg = "disk full" } },
          { "trailing LF and NUL are not part of the message",
            "<13>Mar  5 11:00:00 host app: text\n\0",
            { format = "rfc3164", pri = 13, facility = 1, severity = 5, facility_name = "user",
              severity_name = "notice", timestamp = "2024-03-05T11:00:00", hostname = "host",
              app_name = "app", msg = "text" } },
          { "an upper-case month and a single-space day",
            "<13>MAR 5 11:00:00 host app: x",
            { format = "rfc3164", pri = 13, facility = 1, severity = 5, facility_name = "user",
              severity_name = "notice", timestamp = "2024-03-05T11:00:00", hostname = "host",
              app_name = "app", msg = "x" } },
          { "RFC 5424 with NILVALUE everywhere",
            "<13>1 - - - - - -",
            { format = "rfc5424", version = 1, pri = 13, facility = 1, severity = 5,
              facility_name = "user", severity_name = "notice", msg = "" } },
          { "RFC 5424 SD: escaped '\"' '\\' ']', a lone backslash, duplicates kept in order",
            '<14>1 2024-03-05T12:00:00Z h a - - [x@1 q="say \\"hi\\"" b="back\\\\slash" '
              .. 'c="br\\]acket" d="C:\\dir" q="dup"][x@1 z=""] m',
            { format = "rfc5424", version = 1, pri = 14, facility = 1, severity = 6,
              facility_name = "user", severity_name = "info",
              timestamp = "2024-03-05T12:00:00Z", time = NOW, hostname = "h", app_name = "a",
              sd = { sd("x@1", "q", 'say "hi"', "b", "back\\slash", "c", "br]acket",
                "d", "C:\\dir", "q", "dup"), sd("x@1", "z", "") },
              msg = "m" } },
          { "'1 ' after PRI without an RFC 3339 timestamp is RFC 3164 content",
            "<13>1 yesterday host app - - - msg",
            { format = "rfc3164", pri = 13, facility = 1, severity = 5, facility_name = "user",
              severity_name = "notice", app_name = "1", msg = "yesterday host app - - - msg" } },
        }
        for _, case in ipairs(cases) do
          it(case[1], function()
            expect(parse, case[2], case[3], case[4], case[5])
          end)
        end
      end)

      describe("hostile datagrams", function()
        it("keeps a PRI out of range as an error and parses the rest as user.notice", function()
          expect(parse, "<192>Mar  5 11:00:00 host app: x", {
            format = "rfc3164", timestamp = "2024-03-05T11:00:00", hostname = "host",
            app_name = "app", msg = "x", parse_error = "pri out of range" })
        end)

        it("reports a PRI of four digits or none as a bad pri", function()
          expect(parse, "<0013>x", { format = "rfc3164", app_name = "x", msg = "",
            parse_error = "bad pri" })
          expect(parse, "<>x", { format = "rfc3164", app_name = "x", msg = "",
            parse_error = "bad pri" })
        end)

        it("reads an unclosed '<' as text without PRI", function()
          expect(parse, "<13 hello", { format = "unknown", msg = "<13 hello" })
        end)

        it("keeps invalid UTF-8 in MSG byte for byte and names its position", function()
          expect(parse, "<13>1 - h a - - - caf\233 ok", {
            format = "rfc5424", version = 1, pri = 13, facility = 1, severity = 5,
            facility_name = "user", severity_name = "notice", hostname = "h", app_name = "a",
            msg = "caf\233 ok", parse_error = "invalid UTF-8 in MSG at byte 22" })
        end)

        it("rejects UTF-16 surrogates and overlong forms (strict UTF-8)", function()
          assert.equal("invalid UTF-8 in MSG at byte 6",
            parse("<13>x\237\160\128", NOW).parse_error)
          assert.equal("invalid UTF-8 in MSG at byte 5",
            parse("<13>\192\128", NOW).parse_error)
          assert.is_nil(parse("<13>caf\195\169 \240\159\152\128", NOW).parse_error)
        end)

        it("names invalid UTF-8 in an SD value and keeps the element", function()
          local rec = expect(parse, '<13>1 - h a - - [x@1 k="\255"] m', {
            format = "rfc5424", version = 1, pri = 13, facility = 1, severity = 5,
            facility_name = "user", severity_name = "notice", hostname = "h", app_name = "a",
            sd = { sd("x@1", "k", "\255") }, msg = "m",
            parse_error = "invalid UTF-8 in structured data at byte 25" })
          assert.equal("\255", rec.sd[1].params[1].value)
        end)

        it("keeps NUL bytes inside the message", function()
          expect(parse, "<13>Mar  5 11:00:00 host app: a\0b", {
            format = "rfc3164", pri = 13, facility = 1, severity = 5, facility_name = "user",
            severity_name = "notice", timestamp = "2024-03-05T11:00:00", hostname = "host",
            app_name = "app", msg = "a\0b" })
        end)

        it("returns a record for an empty datagram", function()
          expect(parse, "", { format = "unknown", msg = "", parse_error = "empty message" })
        end)

        it("returns a record for data that is not a string", function()
          for _, v in ipairs { 42, true, {} } do
            local rec = parse(v)
            assert.equal(v, rec.raw)
            assert.equal("data is not a string", rec.parse_error)
            assert.equal("", rec.msg)
          end
          assert.equal("data is not a string", parse(nil).parse_error)
        end)

        it("makes an unterminated SD value an error and keeps the SD in MSG", function()
          expect(parse, '<13>1 - h a - - [x@1 k="unterminated msg', {
            format = "rfc5424", version = 1, pri = 13, facility = 1, severity = 5,
            facility_name = "user", severity_name = "notice", hostname = "h", app_name = "a",
            msg = '[x@1 k="unterminated msg',
            parse_error = "bad structured data at byte 24" })
        end)

        it("makes an unescaped ']' in an SD value an error (RFC 5424 §6.3.3) naming it", function()
          expect(parse, '<13>1 - h a - - [x@1 k="a]b"] msg', {
            format = "rfc5424", version = 1, pri = 13, facility = 1, severity = 5,
            facility_name = "user", severity_name = "notice", hostname = "h", app_name = "a",
            msg = '[x@1 k="a]b"] msg',
            parse_error = "bad structured data at byte 26" })
        end)

        it("reads unquoted SD values and spaces after '=' leniently, and says so", function()
          expect(parse, '<13>1 - h a - - [x@1 k=v1 j= "v 2" l=] msg', {
            format = "rfc5424", version = 1, pri = 13, facility = 1, severity = 5,
            facility_name = "user", severity_name = "notice", hostname = "h", app_name = "a",
            sd = { sd("x@1", "k", "v1", "j", "v 2", "l", "") }, sd_lenient = true,
            msg = "msg" })
        end)

        it("makes a date that does not read a bad TIMESTAMP, the header read on", function()
          expect(parse, "<13>1 2024-02-30T10:00:00Z h a - - msg", {
            format = "rfc5424", version = 1, pri = 13, facility = 1, severity = 5,
            facility_name = "user", severity_name = "notice", hostname = "h", app_name = "a",
            msg = "msg", parse_error = "bad TIMESTAMP at byte 7" })
          expect(parse, "<13>Feb 30 10:00:00 h a: msg", {
            format = "rfc3164", pri = 13, facility = 1, severity = 5,
            facility_name = "user", severity_name = "notice", hostname = "h", app_name = "a",
            msg = "msg", parse_error = "bad TIMESTAMP at byte 5" })
        end)

        it("makes text glued to an SD element an error", function()
          expect(parse, "<13>1 - h a - - [x@1]msg", {
            format = "rfc5424", version = 1, pri = 13, facility = 1, severity = 5,
            facility_name = "user", severity_name = "notice", hostname = "h", app_name = "a",
            msg = "[x@1]msg", parse_error = "bad structured data at byte 22" })
        end)

        it("makes an SD field that is neither '-' nor '[' an error", function()
          expect(parse, "<13>1 - h a - - x msg", {
            format = "rfc5424", version = 1, pri = 13, facility = 1, severity = 5,
            facility_name = "user", severity_name = "notice", hostname = "h", app_name = "a",
            msg = "x msg", parse_error = "bad structured data at byte 17" })
        end)

        it("names a header field holding a control byte", function()
          expect(parse, "<13>1 - h\1x a - - - m", {
            format = "rfc5424", version = 1, pri = 13, facility = 1, severity = 5,
            facility_name = "user", severity_name = "notice",
            msg = "h\1x a - - - m", parse_error = "bad HOSTNAME at byte 10" })
        end)

        it("reports a header cut short and keeps what is left as MSG", function()
          expect(parse, "<13>1 - host app", {
            format = "rfc5424", version = 1, pri = 13, facility = 1, severity = 5,
            facility_name = "user", severity_name = "notice", hostname = "host",
            msg = "app", parse_error = "truncated header" })
        end)

        it("handles 64 KiB datagrams of every awkward shape in bounded time", function()
          local big = 65536
          local shapes = {
            { "<13>1 - h a - - - " .. ("a"):rep(big - 18), nil },
            { "<" .. ("9"):rep(big - 1), nil },
            { "<13>" .. (" "):rep(big - 4), nil },
            { '<13>1 - h a - - [x@1 v="' .. ('\\"'):rep(32000) .. '"]', nil },
            { "<13>1 - h a - - " .. ("[x@1]"):rep(13000), nil },
            { ("\255"):rep(big), "invalid UTF-8 in MSG at byte 1" },
            { "<13>Mar  5 11:00:00 " .. ("x"):rep(big - 20), nil },
            { "<13>" .. ("a["):rep(32000), nil },
            { "<189>" .. ("1"):rep(65000) .. ": x", nil },
            { "<13>1 - h a - - [x@1" .. (' a="b"'):rep(10000) .. "]", nil },
            { "<13>%" .. ("A-1-"):rep(16000), nil },
            { "<13>" .. ("\0"):rep(big - 4), nil },
            { "<13>1 - h a - - [x@1 k=\"" .. ("\\"):rep(big - 30), nil },
          }
          for i, shape in ipairs(shapes) do
            local t0 = os.clock()
            local rec = parse(shape[1], NOW)
            local dt = os.clock() - t0
            assert.is_true(dt < 0.5, ("shape %d took %.3f s"):format(i, dt))
            assert.equal(shape[1], rec.raw)
            assert.is_string(rec.msg)
            if shape[2] then assert.equal(shape[2], rec.parse_error) end
          end
          local rec = parse(shapes[1][1], NOW)
          assert.equal(big - 18, #rec.msg)
          assert.is_nil(rec.parse_error)
          rec = parse(shapes[4][1], NOW)
          assert.equal(("\""):rep(32000), rec.sd[1].params[1].value)
          rec = parse(shapes[5][1], NOW)
          assert.equal(13000, #rec.sd)
          rec = parse(shapes[9][1], NOW)
          assert.is_nil(rec.seq) -- too long for a sequence number: part of the message
          rec = parse(shapes[10][1], NOW)
          assert.equal(10000, #rec.sd[1].params)
        end)

        it("keeps its invariants on random datagrams built from syslog fragments", function()
          local parts = { "<", ">", "13", "189", "1 ", "-", " ", "  ", "[", "]", "=", '"', "\\",
            "x@1", "Oct", "Mar", " 5 ", "12:00:00", ".123", "2024-03-05T12:00:00Z", "+01:00",
            "%A-1-B:", ":", "*", "host", "app[12]:", "\0", "\n", BOM, "\255", "\195\169", "UTC" }
          local rng_state = 12345 -- a tiny LCG, so the run is the same everywhere
          local function rnd(m)
            rng_state = (rng_state * 1103515245 + 12345) % 2147483648
            return rng_state % m + 1
          end
          for _ = 1, 3000 do
            local buf = {}
            for j = 1, rnd(24) do buf[j] = parts[rnd(#parts)] end
            local data = table.concat(buf)
            local rec = parse(data, NOW, rnd(2) == 1 and { tz_offset = 3600 } or nil)
            assert.equal(data, rec.raw)
            assert.is_string(rec.msg)
            assert.is_true(rec.facility >= 0 and rec.facility <= 23)
            assert.is_true(rec.severity >= 0 and rec.severity <= 7)
            assert.equal(syslog.facility_names[rec.facility], rec.facility_name)
            assert.equal(syslog.severity_names[rec.severity], rec.severity_name)
            assert.is_true(rec.format == "rfc5424" or rec.format == "rfc3164"
              or rec.format == "unknown")
            local ts = rec.timestamp or ""
            local has_offset = ts:find("[Zz]$") ~= nil or ts:find("[+-]%d%d:%d%d$") ~= nil
            assert.equal(has_offset, rec.time ~= nil, ts) -- time is known exactly then
            -- What format5424 makes of it is well-formed RFC 5424 carrying the same fields.
            local line = syslog.format5424(rec)
            local again = parse(line, NOW)
            assert.equal("rfc5424", again.format, line)
            assert.is_true(again.parse_error == nil or again.parse_error:find("^invalid UTF%-8")
              ~= nil, line)
            assert.equal(rec.facility * 8 + rec.severity, again.pri)
            assert.same(rec.sd, again.sd)
            if not rec.msg:find("[\n\r%z]$") then assert.equal(rec.msg, again.msg) end
            if rec.time then assert.near(rec.time, again.time, 2e-6) end
          end
        end)
      end)
    end)
  end

  describe("the C port against the Lua reference", function()
    -- The same record, field by field, numbers of the same type (integer or float).
    local function same(a, b, path)
      if type(a) ~= type(b) then return false, path .. ": " .. type(a) .. " vs " .. type(b) end
      if type(a) == "number" then
        if math.type(a) ~= math.type(b) or a ~= b then
          return false, path .. ": " .. tostring(a) .. " vs " .. tostring(b)
        end
        return true
      end
      if type(a) ~= "table" then
        if a ~= b then return false, path .. ": " .. ("%q vs %q"):format(a, b) end
        return true
      end
      for k, v in pairs(a) do
        local ok, why = same(v, b[k], path .. "." .. tostring(k))
        if not ok then return false, why end
      end
      for k in pairs(b) do
        if a[k] == nil then return false, path .. "." .. tostring(k) .. ": only in C" end
      end
      return true
    end

    it("gives the same record for random datagrams built from syslog fragments", function()
      local parts = { "<", ">", "1", "13", "189", "999", "0013", "1 ", "-", " ", "  ", "[", "]",
        "=", '"', "\\", "x@1", "a", "Oct", "MAR", "dec", "Feb", " 5 ", " 29 ", "31 ", "12:00:00",
        "23:59:60", ".123", ".1234567891", "2024-03-05T12:00:00Z", "2024-02-30T00:00:00",
        "2023-12-31t23:59:59.5-01:30", "+01:00", "+24:00", "%A-1-B:", "%PKT_INFRA-LINK-3-UP:",
        ":", ": ", "*", ".", "host", "app[12]:", "app:", "[pid]", "\0", "\n", "\r", BOM, "\255",
        "\195\169", "\237\160\128", "\244\144\128\128", "UTC", " UTC: %", " CET: %",
        "123: ", "2024 Jan 10 ", "1999 " }
      local rng_state = 4242 -- a tiny LCG, so the run is the same everywhere
      local function rnd(m)
        rng_state = (rng_state * 1103515245 + 12345) % 2147483648
        return rng_state % m + 1
      end
      local nows = { NOW, 1704067230, 1704067199, 0, -62135596800, 1e12, 1709640000.75, 0 / 0 }
      local tzs = { nil, { tz_offset = 3600 }, { tz_offset = -18000 }, { tz_offset = 0 },
        { tz_offset = 3600.0 }, { tz_offset = 1.5 }, { tz_offset = 86400 }, { tz_offset = "1" } }
      for i = 1, 20000 do
        local buf = {}
        for j = 1, rnd(24) do buf[j] = parts[rnd(#parts)] end
        local data = table.concat(buf)
        local now, opts = nows[rnd(#nows)], tzs[rnd(#tzs)]
        if now ~= now then now = NOW end -- NaN: both would read the clock
        local ok, why = same(syslog.parse(data, now, opts), syslog_c.parse(data, now, opts),
          "rec")
        assert(ok, ("case %d %q: %s"):format(i, data, why))
      end
    end)

    it("takes what the reference takes for now and opts", function()
      for _, data in ipairs { "<13>Mar  5 11:00:00 host app: x", "<13>1 - - - - - -", "" } do
        for _, now in ipairs { NOW, NOW + 0.5, -1, "x", false } do
          for _, opts in ipairs { {}, { tz_offset = 7200 }, { tz_offset = 2 ^ 53 }, 5 } do
            local want = syslog.parse(data, now, opts)
            local got = syslog_c.parse(data, now, opts)
            if type(now) ~= "number" then -- both read the clock: the year is the same
              want.time, got.time = nil, nil
            end
            assert(same(want, got, "rec"))
          end
        end
      end
      for _, v in ipairs { 42, true, {} } do
        assert.is_true(same(syslog.parse(v), syslog_c.parse(v), "rec"))
      end
      assert.is_true(same(syslog.parse(nil), syslog_c.parse(nil), "rec"))
    end)
  end)

  describe("format5424", function()
    it("reproduces the RFC 5424 §6.5 examples byte for byte", function()
      local examples = {
        "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - " .. BOM
          .. "'su root' failed for lonvick on /dev/pts/8",
        "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to "
          .. "make the do-nuts.",
        "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
          .. '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] ' .. BOM
          .. "An application event log entry...",
        "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
          .. '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
          .. '[examplePriority@32473 class="high"]',
      }
      for _, line in ipairs(examples) do
        assert.equal(line, syslog.format5424(syslog.parse(line, NOW)))
      end
    end)

    it("escapes '\"', '\\' and ']' in SD values and nothing else", function()
      local line = syslog.format5424 { facility = 1, severity = 6,
        sd = { sd("x@1", "q", 'say "hi"', "b", "back\\slash", "c", "br]acket", "u", "é[") } }
      assert.equal('<14>1 - - - - - [x@1 q="say \\"hi\\"" b="back\\\\slash" c="br\\]acket" '
        .. 'u="é["]', line)
      assert.same({ sd("x@1", "q", 'say "hi"', "b", "back\\slash", "c", "br]acket", "u", "é[") },
        syslog.parse(line, NOW).sd)
    end)

    it("makes header fields and SD names printable ASCII within the RFC lengths", function()
      local line = syslog.format5424 { facility = 4, severity = 2, hostname = "my host",
        app_name = ("a"):rep(60), procid = 4242, msgid = "",
        sd = { sd("id with=space", "k]", "v"), { id = "", params = {} } },
        msg = "hello", bom = true }
      assert.equal("<34>1 - my_host " .. ("a"):rep(48) .. ' 4242 - [id_with_space k_="v"] '
        .. BOM .. "hello", line)
    end)

    it("forwards an RFC 3164 record as RFC 5424 with the message unchanged", function()
      local rec = syslog.parse("<34>Oct 11 22:14:15 mymachine su: 'su root' failed", NOW)
      assert.equal("<34>1 - mymachine su - - - 'su root' failed", syslog.format5424(rec))
      assert.equal("<34>1 2024-03-05T12:00:00Z mymachine su - - - 'su root' failed",
        syslog.format5424(rec, NOW))
      rec = syslog.parse("<34>Oct 11 22:14:15 mymachine su: 'su root' failed", NOW,
        { tz_offset = 7200 })
      assert.equal("<34>1 2023-10-11T22:14:15+02:00 mymachine su - - - 'su root' failed",
        syslog.format5424(rec))
      rec = syslog.parse("<13>Mar  5 11:00:00 host app[7]: caf\233", NOW)
      assert.equal("<13>1 - host app 7 - - caf\233", syslog.format5424(rec))
    end)

    it("writes the time as UTC microseconds when the timestamp is not RFC 5424", function()
      local rec = syslog.parse("<13>1 2024-03-05T12:00:00.123456789Z h a - - -", NOW)
      assert.is_nil(rec.parse_error)
      assert.equal("<13>1 2024-03-05T12:00:00.123457Z h a - - -", syslog.format5424(rec))
      assert.equal("<13>1 2024-03-05T12:00:00.250000Z - - - - -",
        syslog.format5424({ time = NOW + 0.25 }))
    end)

    it("defaults to user.notice and keeps an empty MSG out", function()
      assert.equal("<13>1 - - - - - -", syslog.format5424({}))
      assert.equal("<13>1 - - - - - -", syslog.format5424({ facility = 99, severity = -1 }))
      assert.equal("<13>1 - - - - - -", syslog.format5424({ msg = "", sd = {} }))
    end)

    it("raises on a record that is not a table", function()
      assert.has_error(function() syslog.format5424(nil) end,
        "bad argument #1 to 'format5424' (table expected, got nil)")
    end)
  end)

  describe("names", function()
    it("names every facility and severity, and maps names back", function()
      assert.equal("kern", syslog.facility_names[0])
      assert.equal("authpriv", syslog.facility_names[10])
      assert.equal("local7", syslog.facility_names[23])
      assert.equal("emerg", syslog.severity_names[0])
      assert.equal("debug", syslog.severity_names[7])
      for code = 0, 23 do
        assert.equal(code, syslog.facility_codes[syslog.facility_names[code]])
      end
      for code = 0, 7 do
        assert.equal(code, syslog.severity_codes[syslog.severity_names[code]])
      end
      assert.equal(4, syslog.severity_codes.warn)
      assert.equal(3, syslog.severity_codes.error)
    end)
  end)

  describe("local_offset", function()
    it("gives the offset that turns UTC into this host's wall clock", function()
      local off = syslog.local_offset(NOW)
      assert.equal("integer", math.type(off))
      local loc, utc = os.date("*t", NOW), os.date("!*t", NOW + off)
      assert.same({ loc.year, loc.month, loc.day, loc.hour, loc.min, loc.sec },
        { utc.year, utc.month, utc.day, utc.hour, utc.min, utc.sec })
    end)
  end)
end)
