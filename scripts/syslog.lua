-- scripts/syslog.lua: the syslog collector handler. Parses every datagram (RFC 5424, RFC 3164
-- and device variants; syslog_parse), filters it (syslog_filter), forwards it as RFC 5424
-- (output_forward) and writes it as one JSON line (output_jsonl), and counts all of it.
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
    tz_offset = "local",       -- zone of RFC 3164 timestamps: "local" or seconds east of UTC
    raw       = "errors",      -- raw_b64 in the JSON: "errors" (default), "always", "never"
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
JSON strings are UTF-8: a byte that is not part of valid UTF-8 reads U+FFFD (output_jsonl);
raw_b64 keeps the exact bytes.

Counters in /metrics (luadgramd_user_syslog_<listener>_<name>, totals of all workers,
published every second): received, parsed (no parse error), parse_errors, written (lines in
the file), forwarded (datagrams sent), filtered (dropped by the filter), dropped (filtered,
plus lines the file lost and forward sends that failed).
]==]

local luadgram = require "luadgram"
local syslog_parse = require "syslog_parse"
local syslog_filter = require "syslog_filter"
local output_jsonl = require "output_jsonl"
local output_forward = require "output_forward"

local parse, local_offset = syslog_parse.parse, syslog_parse.local_offset
local base64 = output_jsonl.base64
local now_fn = luadgram.now
local type, tostring, error, ipairs = type, tostring, error, ipairs

local H = {}

-- Per Lua state (each worker has its own copy of this module).
local name             -- the listener's name
local out, fwd         -- outputs (nil when not configured)
local keep_pri, keep_host
local popts            -- options for parse: { tz_offset = }
local tz_local         -- tz_offset = "local": refreshed by the timer
local raw_always, raw_never
local timer
local counters         -- name -> luadgram counter
-- Counts not yet added to the shared counters (published by the timer and by stop).
local n_received, n_parsed, n_errors, n_filtered = 0, 0, 0, 0
local published = { written = 0, file_dropped = 0, forwarded = 0, forward_failed = 0 }
local last_file_error, last_forward_error
local this_host        -- HOSTNAME for forwarded local (unix) messages that have none

-- The families ("inet", "inet6") whose datagrams all have the same destination: the
-- listener binds exactly one specific address of that family (no 0.0.0.0, no [::], which
-- also takes IPv4). For them msg.dst is read once and its text kept (dst_fixed[family] =
-- the text, false until the first datagram).
local dst_fixed = {}
local function fixed_destinations(binds)
  local count, wild, wild_v4 = { inet = 0, inet6 = 0 }, {}, false
  for _, b in ipairs(type(binds) == "table" and binds or { binds }) do
    b = tostring(b):gsub("^udp:", "")
    local v6 = b:match("^%[(.*)%]:%d+$")
    if v6 then
      count.inet6 = count.inet6 + 1
      if v6:match("^[0:]+$") then wild.inet6, wild_v4 = true, true end -- [::]
    elseif b:match("^[%d.]+:%d+$") then
      count.inet = count.inet + 1
      if b:match("^0%.0%.0%.0:") then wild.inet = true end
    end
  end
  local out = {}
  if count.inet == 1 and not wild.inet and not wild_v4 then out.inet = false end
  if count.inet6 == 1 and not wild.inet6 then out.inet6 = false end
  return out
end

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
      local ok, err = out:flush()
      if not ok and err ~= last_file_error then
        luadgram.log.error("syslog", name, ": cannot write", out.path, ":", err, "(",
          out.n // 2, "lines waiting )")
      end
      last_file_error = not ok and err or nil
    end
  end
  if fwd and fwd.last_error and fwd.last_error ~= last_forward_error then
    luadgram.log.warn("syslog", name, ": forward failed:", fwd.last_error)
  end
  last_forward_error = fwd and fwd.last_error
  if fwd then fwd.last_error = nil end
  if tz_local then popts.tz_offset = local_offset() end
  publish()
end

function H.init(listener, options)
  options = options or {}
  name = listener.name
  local dir = listener.config_dir
  if options.file == nil and options.forward == nil then
    bad("options need file = PATH and/or forward = ADDRESS")
  end

  dst_fixed = fixed_destinations(listener.bind)

  local f = syslog_filter.compile(options.filter)
  keep_pri, keep_host = f.pri, f.host

  local tz = options.tz_offset
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
  raw_always, raw_never = raw == "always", raw == "never"

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

function H.message(msg)
  n_received = n_received + 1
  local now = now_fn()
  local rec = parse(msg.data, now, popts)
  local perr = rec.parse_error
  if perr then n_errors = n_errors + 1 else n_parsed = n_parsed + 1 end

  local peer = msg.peer
  local ip = peer and peer.ip -- nil for unix senders
  if keep_pri and not keep_pri[rec.facility * 8 + rec.severity] then
    n_filtered = n_filtered + 1
    return
  end
  if keep_host and not keep_host(rec.hostname or ip) then
    n_filtered = n_filtered + 1
    return
  end

  if fwd then fwd:send(rec, now, ip or this_host) end
  if out then
    if (perr and not raw_never) or raw_always then rec.raw_b64 = base64(rec.raw) end
    -- Names, not numbers, for facility and severity (pri has the numbers; each number
    -- costs cjson a snprintf), and no version (format says it).
    rec.raw, rec.version = nil, nil
    rec.facility, rec.severity = rec.facility_name, rec.severity_name
    rec.facility_name, rec.severity_name = nil, nil
    local sd = rec.sd
    if sd then -- an element without parameters: no "params" ({} would encode as an object)
      for i = 1, #sd do
        if sd[i].params[1] == nil then sd[i].params = nil end
      end
    end
    rec.listener, rec.received = name, now
    local utf8_ok = not perr
    if ip then
      local family = peer.family
      local dst = dst_fixed[family]
      if not dst then
        dst = msg.dst
        dst = dst and tostring(dst)
        if dst_fixed[family] == false then dst_fixed[family] = dst end
      end
      rec.peer, rec.dst = tostring(peer), dst
    else
      rec.creds = msg.creds
      if peer then
        rec.peer = peer.path
        utf8_ok = false -- a path is any bytes
      end
    end
    out:write(rec, utf8_ok)
  end
end

function H.stop()
  if timer then timer:cancel() timer = nil end
  if out then
    local ok, err = out:close()
    if not ok then
      luadgram.log.error("syslog", name, ": lost lines closing", out.path, ":", err)
    end
  end
  publish()
end

return H
