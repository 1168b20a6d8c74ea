-- scripts/syslog.lua: the syslog collector handler. Parses every datagram (RFC 5424, RFC 3164
-- and device variants) and encodes its JSON line in one C call (luadgram.syslog, the C port of
-- syslog_parse), filters it (syslog_filter), and hands it to the collector's pipeline
-- (scripts/lib/collector.lua): forwarded as RFC 5424 (output_forward), the JSON line written
-- (output_jsonl) and published (sink_nats, sink_redis); the collector counts all of it.
--[==[
listen "syslog" {
  bind    = { "0.0.0.0:514", "[::]:514", "unix:/run/luadgramd/log.sock" },
  handler = "syslog",
  recv    = { rcvbuf = 4194304 },
  options = {
    file      = "/var/log/luadgramd/syslog.jsonl",   -- or { path =, flush_interval = 1,
                                                     --   buffer_size = 65536, max_pending = }
    forward   = "192.0.2.10:514",                    -- or a list, or { to =, fill_hostname = }
    nats      = { servers = { "nats://127.0.0.1:4222" }, subject = "logs.syslog",
                  stream = "LOGS", spool = { path = "/var/spool/luadgramd" } },
                                                     -- luadgram.nats's options (README)
    redis     = { server = "127.0.0.1:6379", stream = "syslog" },   -- luadgram.redis's
    filter    = { severity = "info", exclude = { facility = "local7" } },  -- syslog_filter
    tz_offset = "local",       -- zone of timestamps without one: "local" or seconds east of UTC
    raw       = "errors",      -- raw_b64 in the JSON: "errors" (default), "always", "never"
    encoder   = "c",           -- "c" (default): the line is written in C (luadgram.syslog),
                               -- byte-compatible with lua-cjson and about 3x faster;
                               -- "cjson": the record table is encoded by lua-cjson
  },
}
At least one of file, forward, nats and redis. A relative file (or spool) path is relative
to the configuration's folder; its folder is created when missing. The file is opened by
init and closed by stop, so a reload (SIGHUP, after logrotate moved the file) starts a new
file: the new states open
it before the old ones flush their last lines into the old one; nothing is lost.

Each datagram is parsed once, in C, into its JSON line (file alone: gathered in C, no Lua
string per line; several sinks: one string, the same to each), and with forward also into
the record table the RFC 5424 datagram is made from (luadgram.syslog's json_writer with
record = true). encoder = "cjson": into the record table, whose line lua-cjson writes.

One JSON object per message (keys in no particular order; absent values are left out):
  listener   the listener's name
  received   reception time, epoch seconds (0.1 ms)
  peer       "ip:port" / "[ip6]:port", or the unix sender's socket path (if it has one)
  dst        "ip:port" the datagram was sent to (UDP)
  creds      { pid =, uid =, gid = } of the sender (unix sockets, SO_PASSCRED)
  format     "rfc5424", "rfc3164" or "unknown"
  pri        0..191 (absent when the datagram had no valid PRI)
  facility, severity   names: "local3", "warning" (without a valid PRI: "user", "notice")
  timestamp, time, hostname, app_name, procid, msgid, sd, msg, bom, seq, cisco,
  parse_error          as syslog_parse.parse gives them (sd elements without parameters
                       have no "params")
  raw_b64    the datagram's exact bytes, base64, with every parse error (option raw)
JSON strings are UTF-8: a byte that is not part of valid UTF-8 reads U+FFFD; raw_b64 keeps
the exact bytes. Numbers are written as lua-cjson writes them ("%.14g").

Counters in /metrics (luadgramd_user_syslog_<listener>_<name>, totals of all workers,
published every second): received, parsed (no parse error), parse_errors, written (lines in
the file), forwarded (datagrams sent), filtered (dropped by the filter), dropped (filtered,
plus lines the file lost, forward sends that failed and records nats or redis dropped).
]==]

local luadgram = require "luadgram"
local syslog_c = require "luadgram.syslog"
local syslog_parse = require "syslog_parse"
local syslog_filter = require "syslog_filter"
local output_jsonl = require "output_jsonl"
local collector = require "collector"

local parse, local_offset = syslog_c.parse, syslog_parse.local_offset
local encode_line = output_jsonl.encode
local now_fn = luadgram.now
local tostring, error, ipairs, format = tostring, error, ipairs, string.format

local H = {}

-- Per Lua state (each worker has its own copy of this module).
local name             -- the listener's name
local col              -- the collector: sinks, counters (col.n), the timer
local n                -- col.n, the tallies
local file, fwd        -- col.file, col.forward (nil when not configured)
local has_lines        -- a sink takes JSON lines
local lines_to, put_line -- col:line_writer(): put_line(lines_to, line) hands a line on
local keep_pri, keep_host
local tz               -- zone of RFC 3164 timestamps (seconds east of UTC) or nil
local popts            -- options for parse (forwarding): { tz_offset = tz }
local tz_local         -- tz_offset = "local": refreshed by the timer
local add_line, drop_line, take_lines -- syslog_c.json_batch: parse, encode, gather (file)
local json_line        -- syslog_c.json_writer: parse, encode, one string (and the record
                       -- table when forwarding): several line sinks, or forward
local use_cjson        -- options.encoder == "cjson"
local batch_only       -- the default path: the file is the only sink, encoder "c"
local raw_mode         -- options.raw
local this_host        -- HOSTNAME for forwarded local (unix) messages that have none

local function bad(fmt, ...) error("syslog listener: " .. format(fmt, ...), 0) end

local COUNTERS = {
  received = "datagrams received",
  parsed = "messages parsed without error",
  parse_errors = "messages with a parse error (kept, with raw_b64)",
  written = "JSON lines written to the file",
  forwarded = "datagrams forwarded",
  filtered = "messages dropped by the filter",
  dropped = "messages filtered, lost by the file, failed to forward or dropped by nats/redis",
}
local TALLY = { file = { written = "written", dropped = "dropped" },
                forward = { written = "forwarded", dropped = "dropped" },
                ["*"] = { dropped = "dropped" } }

function H.init(listener, options)
  options = options or {}
  name = listener.name
  if options.file == nil and options.forward == nil and options.nats == nil
     and options.redis == nil then
    bad("options need file = PATH and/or forward = ADDRESS (or nats = {...}, redis = {...})")
  end

  local f = syslog_filter.compile(options.filter)
  keep_pri, keep_host = f.pri, f.host

  tz = options.tz_offset
  tz_local = tz == "local"
  if tz_local then
    tz = local_offset()
  elseif tz ~= nil and (math.type(tz) ~= "integer" or tz <= -86400 or tz >= 86400) then
    bad("options.tz_offset must be \"local\" or whole seconds east of UTC")
  end
  popts = { tz_offset = tz }

  local raw = options.raw or "errors"
  if raw ~= "errors" and raw ~= "always" and raw ~= "never" then
    bad("options.raw must be \"errors\", \"always\" or \"never\"")
  end
  raw_mode = raw
  local encoder = options.encoder or "c"
  if encoder ~= "c" and encoder ~= "cjson" then
    bad("options.encoder must be \"c\" or \"cjson\"")
  end
  add_line, drop_line, take_lines = syslog_c.json_batch { listener = name, raw = raw,
    hostname = keep_host ~= nil }

  if options.forward ~= nil then
    local hf = io.open("/proc/sys/kernel/hostname", "r")
    this_host = hf and hf:read("l")
    if hf then hf:close() end
    if this_host == "" then this_host = nil end
  end
  col = collector.new { listener = listener, options = options, handler = "syslog",
    sinks = { "forward", "file", "nats", "redis" }, counters = COUNTERS, tally = TALLY,
    raise = bad, batch = take_lines,
    on_tick = function()
      if tz_local then
        tz = local_offset()
        popts.tz_offset = tz
      end
    end }
  n, file, fwd, has_lines = col.n, col.file, col.forward, col.nlines > 0
  lines_to, put_line = col:line_writer()
  use_cjson = encoder == "cjson"
  batch_only = file ~= nil and col.nlines == 1 and not fwd and not use_cjson
  json_line = syslog_c.json_writer { listener = name, raw = raw, hostname = true,
    record = fwd ~= nil }
end

-- The record parse gave, turned into the object the C writer encodes (names for facility
-- and severity, raw_b64 per options.raw, sd elements without parameters have no params),
-- for output_jsonl.encode (lua-cjson). Changes rec.
local function json_record(rec, msg, now)
  if (rec.parse_error and raw_mode ~= "never") or raw_mode == "always" then
    rec.raw_b64 = output_jsonl.base64(rec.raw)
  end
  rec.raw, rec.version = nil, nil
  rec.facility, rec.severity = rec.facility_name, rec.severity_name
  rec.facility_name, rec.severity_name = nil, nil
  for _, e in ipairs(rec.sd or {}) do
    if e.params[1] == nil then e.params = nil end
  end
  local peer, dst = msg.peer, msg.dst
  rec.listener, rec.received = name, now
  rec.peer, rec.dst, rec.creds = peer and tostring(peer), dst and tostring(dst), msg.creds
  return rec
end

local function peer_ip(msg)
  local peer = msg.peer
  return peer and peer.ip -- nil for unix senders
end

-- encoder = "cjson", or forward alone: parsed once into a table; forwarded from it, and its
-- JSON line encoded from it by lua-cjson.
local function message_table(msg, now)
  local ip = peer_ip(msg)
  local rec = parse(msg.data, now, popts)
  if rec.parse_error then n.parse_errors = n.parse_errors + 1
  else n.parsed = n.parsed + 1 end
  if (keep_pri and not keep_pri[rec.facility * 8 + rec.severity])
      or (keep_host and not keep_host(rec.hostname or ip)) then
    n.filtered, n.dropped = n.filtered + 1, n.dropped + 1
    return
  end
  if fwd then fwd:write(rec, now, ip or this_host) end
  if not has_lines then return end
  local line, err = encode_line(json_record(rec, msg, now))
  if line then return put_line(lines_to, line) end
  n.dropped = n.dropped + 1
  luadgram.log.error("syslog", name, ": cannot encode a record:", tostring(err))
end

function H.message(msg)
  n.received = n.received + 1
  local now = now_fn()
  if batch_only then
    -- The default path: the line goes into the batch at once (peer, dst, creds read from
    -- msg in C); a filter takes it back.
    local code, failed, full, host = add_line(msg, now, tz)
    if failed then n.parse_errors = n.parse_errors + 1 else n.parsed = n.parsed + 1 end
    if (keep_pri and not keep_pri[code]) or (keep_host and not keep_host(host or peer_ip(msg)))
    then
      n.filtered, n.dropped = n.filtered + 1, n.dropped + 1
      drop_line()
      return
    end
    if full then file:write_lines(take_lines()) end
    return
  end
  if use_cjson or not has_lines then return message_table(msg, now) end
  -- Several line sinks (file, nats, redis), or forward beside them: one C parse gives the
  -- line, the same string to each sink, and (forwarding) the record table.
  local line, code, failed, host, rec = json_line(msg, now, tz)
  if failed then n.parse_errors = n.parse_errors + 1 else n.parsed = n.parsed + 1 end
  if (keep_pri and not keep_pri[code]) or (keep_host and not keep_host(host or peer_ip(msg))) then
    n.filtered, n.dropped = n.filtered + 1, n.dropped + 1
    return
  end
  if fwd then fwd:write(rec, now, peer_ip(msg) or this_host) end
  put_line(lines_to, line)
end

function H.stop()
  if col then col:close() end
end

return H
