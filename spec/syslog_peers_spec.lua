-- spec/syslog_peers_spec.lua: luadgramd's syslog collector against the collectors operators
-- move from. Every line of spec/fixtures/syslog_realworld.txt goes, as one datagram, to
-- rsyslog (imudp), to syslog-ng (network() for RFC 3164, syslog() for RFC 5424, as it is
-- configured for each) and to luadgramd (scripts/syslog.lua), all three started here on
-- loopback ephemeral ports; each writes what it read as JSON Lines. A record of ours "reads
-- as the peers do" when its hostname, app_name, procid, msgid and msg are what rsyslog or
-- syslog-ng gave (README, "How syslog headers are read", says which one luadgramd follows
-- where they differ). At least 95 % must. The peers are Debian 12's packages unpacked by
-- .ci/syslog-peers (LUADGRAM_SYSLOG_PEERS names another folder).
local h = require "helpers"
local cjson = require "cjson"
local output_jsonl = require "output_jsonl"

local PEERS = os.getenv("LUADGRAM_SYSLOG_PEERS") or "/var/cache/luadgramd/syslog-peers"
local RSYSLOG = PEERS .. "/rsyslog"
local SYSLOG_NG = PEERS .. "/syslog-ng-core"
local FIELDS = { "hostname", "app_name", "procid", "msgid", "msg" }
local PROBE = "<13>Mar  5 11:00:00 probe probe: are you there"

-- The datagrams of the fixture, in file order.
local function realworld()
  local lines = {}
  for line in io.lines(h.src .. "/spec/fixtures/syslog_realworld.txt") do
    if line ~= "" and line:sub(1, 1) ~= "#" then lines[#lines + 1] = line end
  end
  return lines
end

-- ---- the peers ----

-- Starts `cmd` (a shell command running one process in the foreground) and returns its pid.
local procs = {}
local function spawn(cmd, log)
  local handle = assert(io.popen(string.format("echo $$; exec %s >%s 2>&1 </dev/null",
                                               cmd, h.shq(log)), "r"))
  local pid = assert(tonumber(handle:read("l")), "no pid from: " .. cmd)
  procs[#procs + 1] = { pid = pid, handle = handle }
  return pid
end

local function stop_all()
  for _, p in ipairs(procs) do
    os.execute("kill -TERM " .. p.pid .. " 2>/dev/null")
    local gone = h.wait_for(function()
      local stat = h.read("/proc/" .. p.pid .. "/stat")
      return not stat or stat:match("%) ([ZX])")
    end, 5)
    if not gone then os.execute("kill -KILL " .. p.pid .. " 2>/dev/null") end
    p.handle:close()
  end
  procs = {}
end

local RSYSLOG_CONF = [[
global(workDirectory="%s")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="%d")
template(name="j" type="list" option.jsonf="on") {
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app_name" name="programname" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
  property(outname="raw" name="rawmsg" format="jsonf")
}
action(type="omfile" file="%s" template="j")
]]

local function start_rsyslog(dir, port)
  local conf, out = dir .. "/rsyslog.conf", dir .. "/rsyslog.jsonl"
  h.write(conf, string.format(RSYSLOG_CONF, dir, port, out))
  spawn(string.format("%s -n -f %s -i %s -M %s", h.shq(RSYSLOG .. "/usr/sbin/rsyslogd"),
                      h.shq(conf), h.shq(dir .. "/rsyslog.pid"),
                      h.shq(RSYSLOG .. "/usr/lib/x86_64-linux-gnu/rsyslog")),
        dir .. "/rsyslog.log")
  return out
end

local SYSLOG_NG_CONF = [[
@version: 3.38
options { keep-hostname(yes); chain-hostnames(no); use-dns(no); dns-cache(no);
          stats-freq(0); };
source s3164 { network(transport("udp") ip("127.0.0.1") port(%d) flags(store-raw-message)); };
source s5424 { syslog(transport("udp") ip("127.0.0.1") port(%d) flags(store-raw-message)); };
destination d { file("%s" template("$(format-json hostname=$HOST app_name=$PROGRAM
  procid=$PID msgid=$MSGID msg=$MESSAGE raw=$RAWMSG)\n")); };
log { source(s3164); source(s5424); destination(d); };
]]

local function start_syslog_ng(dir, port, port5424)
  local conf, out = dir .. "/syslog-ng.conf", dir .. "/syslog-ng.jsonl"
  h.write(conf, string.format(SYSLOG_NG_CONF, port, port5424, out))
  local lib = SYSLOG_NG .. "/usr/lib/syslog-ng"
  spawn(string.format("env LD_LIBRARY_PATH=%s %s -F -f %s --module-path=%s -p %s -R %s -c %s",
                      h.shq(lib), h.shq(SYSLOG_NG .. "/usr/sbin/syslog-ng"), h.shq(conf),
                      h.shq(lib .. "/3.38"), h.shq(dir .. "/syslog-ng.pid"),
                      h.shq(dir .. "/syslog-ng.persist"), h.shq(dir .. "/syslog-ng.ctl")),
        dir .. "/syslog-ng.log")
  return out
end

-- rsyslog writes control characters as '#' and three octal digits; undo it for the
-- characters below SPACE (a literal "#123" in a message stays).
local function rsyslog_unescape(s)
  return (s:gsub("#(0[0-3][0-7])", function(o) return string.char(tonumber(o, 8)) end))
end

-- The JSON lines of `path` (a line still being written is left for the next read).
local function lines_of(path)
  local recs = {}
  for line in (h.read(path) or ""):gmatch("([^\n]*)\n") do
    local ok, r = pcall(cjson.decode, line)
    if ok and type(r) == "table" then recs[#recs + 1] = r end
  end
  return recs
end

-- ---- comparison ----

local function absent(v) return v == nil or v == cjson.null or v == "" or v == "-" end

-- A peer's record in our terms: "" and "-" are absent; the HOSTNAME a peer fills in from
-- the sender's address when the message has none (luadgramd keeps that in `peer`) is
-- absent too; rsyslog keeps the space that follows an RFC 3164 TAG in msg.
local function peer_view(r, is_rsyslog)
  if not r then return nil end
  local v = {}
  for _, k in ipairs(FIELDS) do
    v[k] = not absent(r[k]) and (is_rsyslog and rsyslog_unescape(r[k]) or r[k]) or nil
  end
  if v.hostname == "127.0.0.1" or v.hostname == "localhost" then v.hostname = nil end
  v.msg = v.msg or ""
  if is_rsyslog then v.msg = v.msg:gsub("^ ", "") end
  return v
end

-- Differences between our record and a peer's, as text, or nil when they read it alike.
local function differences(ours, theirs)
  if not theirs then return "no record" end
  local d = {}
  for _, k in ipairs(FIELDS) do
    if ours[k] ~= theirs[k] then
      d[#d + 1] = string.format("%s %q vs %q", k, tostring(ours[k]), tostring(theirs[k]))
    end
  end
  return d[1] and table.concat(d, ", ") or nil
end

describe("the syslog collector beside rsyslog and syslog-ng", function()
  after_each(function()
    stop_all()
    h.cleanup_and_check()
  end)

  it("reads at least 95 % of real-world messages as one of them does", function()
    assert(h.exists(RSYSLOG .. "/usr/sbin/rsyslogd") and
           h.exists(SYSLOG_NG .. "/usr/sbin/syslog-ng"),
           "rsyslog and syslog-ng are not unpacked in " .. PEERS .. ": run bash .ci/deps test")
    local lines = realworld()
    local dir = h.tmpdir()
    local ports = h.free_ports(4)
    local rs_out = start_rsyslog(dir, ports[1])
    local ng_out = start_syslog_ng(dir, ports[2], ports[3])
    local ours_out = dir .. "/luadgramd.jsonl"
    local d = h.start { dir = dir, listeners = { { name = "peers",
      bind = "127.0.0.1:" .. ports[4], handler = "syslog",
      options = { raw = "always", file = { path = "luadgramd.jsonl", flush_interval = 0.05 } } } } }
    local c = h.udp("inet", "127.0.0.1")
    finally(function() c:close() end)

    -- Both peers are up once each has written a probe (they bind after they start).
    local function has_probe(path)
      for _, r in ipairs(lines_of(path)) do
        if r.raw == PROBE then return true end
      end
    end
    local up = h.wait_for(function()
      c:send("127.0.0.1", ports[1], PROBE)
      c:send("127.0.0.1", ports[2], PROBE)
      return has_probe(rs_out) and has_probe(ng_out)
    end, 15, 0.2)
    assert(up, "rsyslog or syslog-ng did not start:\n" .. (h.read(dir .. "/rsyslog.log") or "")
               .. (h.read(dir .. "/syslog-ng.log") or ""))

    for _, line in ipairs(lines) do
      c:send("127.0.0.1", ports[1], line)
      c:send("127.0.0.1", line:match("^<%d+>1 ") and ports[3] or ports[2], line)
      c:send("127.0.0.1", ports[4], line)
    end
    -- syslog-ng answers a message it cannot read with an error record of its own (no raw):
    -- every line gives one record in each output.
    local probes = 0
    local ok = h.wait_for(function()
      local rs, ng = lines_of(rs_out), lines_of(ng_out)
      probes = 0
      for _, r in ipairs(ng) do if r.raw == PROBE then probes = probes + 1 end end
      local rprobes = 0
      for _, r in ipairs(rs) do if r.raw == PROBE then rprobes = rprobes + 1 end end
      return #rs - rprobes >= #lines and #ng - probes >= #lines
             and #lines_of(ours_out) >= #lines
    end, 20, 0.1)
    assert(ok, d:explain("records: rsyslog %d, syslog-ng %d, luadgramd %d of %d",
                         #lines_of(rs_out), #lines_of(ng_out), #lines_of(ours_out), #lines))

    local rs, ng, ours = {}, {}, {}
    for _, r in ipairs(lines_of(rs_out)) do rs[rsyslog_unescape(r.raw or "")] = r end
    for _, r in ipairs(lines_of(ng_out)) do ng[r.raw or ""] = r end
    for _, r in ipairs(lines_of(ours_out)) do ours[r.raw_b64] = r end

    local agree, report = 0, {}
    for _, line in ipairs(lines) do
      local r = assert(ours[output_jsonl.base64(line)], "no record of ours for " .. line)
      local mine = {}
      for _, k in ipairs(FIELDS) do mine[k] = r[k] end
      local drs = differences(mine, peer_view(rs[line], true))
      local dng = differences(mine, peer_view(ng[line], false))
      if not drs or not dng then
        agree = agree + 1
      else
        report[#report + 1] = string.format("%s\n    rsyslog: %s\n    syslog-ng: %s",
                                            line, drs, dng)
      end
    end
    local share = agree / #lines
    io.stderr:write(string.format("\nsyslog peers: %d of %d (%.1f %%) read as rsyslog or "
                                  .. "syslog-ng reads them\n", agree, #lines, 100 * share))
    if report[1] then io.stderr:write(table.concat(report, "\n"), "\n") end
    assert(share >= 0.95, string.format("only %d of %d read as a peer does:\n%s", agree,
                                        #lines, table.concat(report, "\n")))
  end)
end)
