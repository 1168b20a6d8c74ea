-- scripts/syslog.lua: the syslog collector handler. Parses every datagram (RFC 5424, RFC 3164
-- and device variants) and encodes its JSON line in one C call (luadgram.syslog, the C port of
-- syslog_parse), filters it (syslog_filter), forwards it as RFC 5424 (output_forward), writes
-- the line (output_jsonl), and counts all of it.
--[==[
listen "syslog" {
  bind    = { "0.0.0.0:514", "[::]:514", "unix:/run/luadgramd/log.sock" },
  handler = "syslog",
  recv    = { rcvbuf = 4194304 },
  options = {
    file      = "/var/log/luadgramd/syslog.jsonl",   -- or { path =, flush_interval = 1,
                                                     --   buffer_size = 65536, max_pending = }
    forward   = "192.0.2.10:514",                    -- or a list, or { to =, fill_hostname = }
    filter    = { severity = "info", exclude = { facility = "local7" } },  -- syslog_filter
    tz_offset = "local",       -- zone of timestamps without one: "local" or seconds east of UTC
    raw       = "errors",      -- raw_b64 in the JSON: "errors" (default), "always", "never"
    encoder   = "c",           -- "c" (default): the line is written in C (luadgram.syslog),
                               -- byte-compatible with lua-cjson and about 3x faster;
                               -- "cjson": the record table is encoded by lua-cjson
  },
}
At least one of file and forward. A relative file path is relative to the configuration's
folder; its folder is created when missing. The file is opened by init and closed by stop,
so a reload (SIGHUP, after logrotate moved the file) starts a new file: the new states open
it before the old ones flush their last lines into the old one; nothing is lost.

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
plus lines the file lost and forward sends that failed).
]==]

local luadgram = require "luadgram"
local syslog_c = require "luadgram.syslog"
local syslog_parse = require "syslog_parse"
local syslog_filter = require "syslog_filter"
local output_jsonl = require "output_jsonl"
local output_forward = require "output_forward"

local parse, local_offset = syslog_c.parse, syslog_parse.local_offset
local now_fn = luadgram.now
local type, tostring, error = type, tostring, error

local H = {}

-- Per Lua state (each worker has its own copy of this module).
local name             -- the listener's name
local out, fwd         -- outputs (nil when not configured)
local keep_pri, keep_host
local tz               -- zone of RFC 3164 timestamps (seconds east of UTC) or nil
local popts            -- options for parse (forwarding): { tz_offset = tz }
local tz_local         -- tz_offset = "local": refreshed by the timer
local add_line, drop_line, take_lines -- syslog_c.json_batch: parse, encode, gather (file)
local timer
local use_cjson        -- options.encoder == "cjson"
local raw_mode         -- options.raw
local counters         -- name -> luadgram counter
-- Counts not yet added to the shared counters (published by the timer and by stop).
local n_received, n_parsed, n_errors, n_filtered = 0, 0, 0, 0
local published = { written = 0, file_dropped = 0, forwarded = 0, forward_failed = 0 }
local last_file_error, last_forward_error
local this_host        -- HOSTNAME for forwarded local (unix) messages that have none

local function resolve(dir, path)
  if path:sub(1, 1) == "/" or not dir or dir == "" then return path end
  return dir .. "/" .. path
end

local function bad(what) error("syslog listener: " .. what, 0) end

local function file_options(v, dir)
  if type(v) == "string" then v = { path = v } end
  if type(v) ~= "table" or type(v.path) ~= "string" or v.path == "" then
    bad("options.file must be a path or { path = ... }")
  end
  local fi = v.flush_interval or 1
  if type(fi) ~= "number" or not (fi >= 0.01) then
    bad("options.file.flush_interval must be a number of seconds >= 0.01")
  end
  return { path = resolve(dir, v.path), buffer_size = v.buffer_size, flush_interval = fi,
    max_pending = v.max_pending, mkdir = v.mkdir }
end

local function forward_options(v)
  if type(v) == "table" and v.to ~= nil then return v.to, v.fill_hostname end
  return v, nil
end

local function publish()
  if not counters then return end
  local c = counters
  if n_received > 0 then c.received:inc(n_received) n_received = 0 end
  if n_parsed > 0 then c.parsed:inc(n_parsed) n_parsed = 0 end
  if n_errors > 0 then c.parse_errors:inc(n_errors) n_errors = 0 end
  local dropped = n_filtered
  if n_filtered > 0 then c.filtered:inc(n_filtered) n_filtered = 0 end
  if out then
    local w, d = out.written, out.dropped
    if w > published.written then c.written:inc(w - published.written) end
    dropped = dropped + d - published.file_dropped
    published.written, published.file_dropped = w, d
  end
  if fwd then
    local s, f = fwd.sent, fwd.failed
    if s > published.forwarded then c.forwarded:inc(s - published.forwarded) end
    dropped = dropped + f - published.forward_failed
    published.forwarded, published.forward_failed = s, f
  end
  if dropped > 0 then c.dropped:inc(dropped) end
end

-- Once a second: flush the file when its interval is due, publish the counters, refresh the
-- local UTC offset, and log output failures (at most one line per output per tick).
local flush_every, since_flush = 1, 0
local tick_period = 1
local function tick()
  if out then
    since_flush = since_flush + tick_period
    if since_flush >= flush_every - 1e-9 or out.failing then
      since_flush = 0
      out:write_lines(take_lines())
      local ok, err = out:flush()
      if not ok and err ~= last_file_error then
        luadgram.log.error("syslog", name, ": cannot write", out.path, ":", err, "(",
          out.lines, "lines waiting )")
      end
      last_file_error = not ok and err or nil
    end
  end
  if fwd and fwd.last_error and fwd.last_error ~= last_forward_error then
    luadgram.log.warn("syslog", name, ": forward failed:", fwd.last_error)
  end
  last_forward_error = fwd and fwd.last_error
  if fwd then fwd.last_error = nil end
  if tz_local then
    tz = local_offset()
    popts.tz_offset = tz
  end
  publish()
end

function H.init(listener, options)
  options = options or {}
  name = listener.name
  local dir = listener.config_dir
  if options.file == nil and options.forward == nil then
    bad("options need file = PATH and/or forward = ADDRESS")
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
  use_cjson = encoder == "cjson"
  add_line, drop_line, take_lines = syslog_c.json_batch { listener = name, raw = raw,
    hostname = keep_host ~= nil }

  if options.forward ~= nil then
    local hf = io.open("/proc/sys/kernel/hostname", "r")
    this_host = hf and hf:read("l")
    if hf then hf:close() end
    if this_host == "" then this_host = nil end
    local to, fill = forward_options(options.forward)
    fwd = output_forward.open { listener = name, to = to, send = luadgram.send,
      fill_hostname = fill }
  end
  if options.file ~= nil then
    local fo = file_options(options.file, dir)
    local err
    out, err = output_jsonl.open(fo)
    if not out then bad("cannot open " .. fo.path .. ": " .. tostring(err)) end
    flush_every = fo.flush_interval
  end

  local prefix = "syslog_" .. name:gsub("[^%w_]", "_") .. "_"
  local function counter(what, help)
    return luadgram.counter(prefix .. what, help .. " (syslog listener " .. name .. ")")
  end
  counters = {
    received = counter("received", "datagrams received"),
    parsed = counter("parsed", "messages parsed without error"),
    parse_errors = counter("parse_errors", "messages with a parse error (kept, with raw_b64)"),
    written = counter("written", "JSON lines written to the file"),
    forwarded = counter("forwarded", "datagrams forwarded"),
    filtered = counter("filtered", "messages dropped by the filter"),
    dropped = counter("dropped", "messages filtered, lost by the file or failed to forward"),
  }
  tick_period = (out and flush_every < 1) and flush_every or 1
  timer = luadgram.every(tick_period, tick)
end

-- encoder = "cjson": the record as a table, the same object the C writer encodes (names
-- for facility and severity, raw_b64 per options.raw, sd elements without parameters have
-- no params), for output_jsonl:write (lua-cjson). Returns it and fac * 8 + sev.
local function cjson_record(msg, now)
  local rec = parse(msg.data, now, popts)
  local code = rec.facility * 8 + rec.severity
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
  return rec, code
end

function H.message(msg)
  n_received = n_received + 1
  local now = now_fn()
  if out and use_cjson then
    local rec, code = cjson_record(msg, now)
    if rec.parse_error then n_errors = n_errors + 1 else n_parsed = n_parsed + 1 end
    local peer = msg.peer
    local ip = peer and peer.ip -- nil for unix senders
    if (keep_pri and not keep_pri[code]) or (keep_host and not keep_host(rec.hostname or ip)) then
      n_filtered = n_filtered + 1
      return
    end
    if fwd then fwd:send(parse(msg.data, now, popts), now, ip or this_host) end
    out:write(rec)
    return
  end
  if not out then -- forwarding only: the record, no JSON
    local peer = msg.peer
    local ip = peer and peer.ip -- nil for unix senders
    local rec = parse(msg.data, now, popts)
    if rec.parse_error then n_errors = n_errors + 1 else n_parsed = n_parsed + 1 end
    if (keep_pri and not keep_pri[rec.facility * 8 + rec.severity])
        or (keep_host and not keep_host(rec.hostname or ip)) then
      n_filtered = n_filtered + 1
      return
    end
    fwd:send(rec, now, ip or this_host)
    return
  end

  -- The line goes into the batch at once (peer, dst, creds read from msg in C); a filter
  -- takes it back.
  local code, failed, full, host = add_line(msg, now, tz)
  if failed then n_errors = n_errors + 1 else n_parsed = n_parsed + 1 end
  local ip
  if keep_host or fwd then
    local peer = msg.peer
    ip = peer and peer.ip -- nil for unix senders
  end
  if (keep_pri and not keep_pri[code]) or (keep_host and not keep_host(host or ip)) then
    n_filtered = n_filtered + 1
    drop_line()
    return
  end
  if fwd then fwd:send(parse(msg.data, now, popts), now, ip or this_host) end
  if full then out:write_lines(take_lines()) end
end

function H.stop()
  if timer then timer:cancel() timer = nil end
  if out then
    out:write_lines(take_lines())
    local ok, err = out:close()
    if not ok then
      luadgram.log.error("syslog", name, ": lost lines closing", out.path, ":", err)
    end
  end
  publish()
end

return H
