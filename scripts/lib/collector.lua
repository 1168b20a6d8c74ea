-- scripts/lib/collector.lua: the collectors' one pipeline (scripts/syslog.lua,
-- scripts/snmptrap.lua). The handler decodes and filters; the collector owns the rest: the
-- sinks, opened here from the listener's options (file, forward, nats, redis), the
-- handler's counters (tallied in col.n on the hot path, published once a second) and the
-- pipeline's one timer (flushes the sinks, publishes, logs a sink's failure once per change).
--[==[
API
  local collector = require "collector"

  col = collector.new{ listener =, options =, handler =, sinks =, counters =, tally =,
                       raise =, on_tick =, batch = }
    listener  the listener table H.init gets (name, config_dir)
    options   the handler's options: each key named in `sinks` that is set opens that sink
    handler   "syslog" | "snmptrap": the counters' prefix and the log lines' head
    sinks     the sinks this handler accepts, in the order records reach them: "forward"
              (records), then "file", "nats", "redis" (JSON lines)
    counters  { name = help }: luadgramd_user_<handler>_<listener>_<name> (every character of
              the listener's name but letters, digits and _ as _), tallied in col.n
    tally     { <sink> = { written = counter name or false, dropped = ... }, ["*"] = ... }:
              the counters a sink's written and dropped counts add to ("*": the others)
    raise     function(fmt, ...): raises the handler's configuration error
    on_tick   function() the timer runs first (optional)
    batch     function() -> lines, count: lines gathered in C for the file sink (syslog's
              json_batch), handed to it before each flush and at close (optional)
    Raises (through raise) on a bad sink option or a sink that cannot open.
  col.n                 name -> count not yet published
  col.file, col.forward, col.nats, col.redis    the sinks (nil when not configured)
  col.nlines            how many sinks take JSON lines (file, nats, redis)
  ok, err = col:write_line(line)   one JSON line (no newline) to every line sink: true, or
                              nil, err when one of them dropped it (its counters say which)
  obj, fn = col:line_writer()   for the hot path: fn(obj, line) does col:write_line(line)
  col:tick()            what the timer does (flush due sinks, log failures; publish the
                        counters once a second)
  col:close()           stops the timer, closes every sink (flushing), publishes

Sink contract (file: output_jsonl, forward: output_forward, nats: sink_nats, redis:
sink_redis; each module's `sink(options, ctx)` returns one, or nil, err when it cannot
open; ctx = { listener =, raise =, luadgram = }; a bad option raises through ctx.raise):
  ok, err = sink:write(line | record, ...)  true, or nil, err when the record is dropped
  ok, err = sink:flush()   ok, err = sink:close()
  sink.written, sink.dropped   records handed on / lost, since open
  sink.failing                 the error while the sink fails (nil when it works)
  sink.flush_interval          seconds between flushes by the timer (nil: every tick)
  sink.what                    what log lines name (a path, addresses, an output's name)
]==]

local setmetatable, pairs, ipairs, tostring, type, pcall, format = setmetatable, pairs, ipairs,
  tostring, type, pcall, string.format

local M = {}

-- The module of each sink and whether it takes JSON lines (else parsed records).
local SINKS = {
  forward = { module = "output_forward", lines = false },
  file = { module = "output_jsonl", lines = true },
  nats = { module = "sink_nats", lines = true },
  redis = { module = "sink_redis", lines = true },
}

local Col = {}
Col.__index = Col

function M.new(o)
  local luadgram = require "luadgram" -- at each new: a stand-in daemon may replace it
  local listener, options, raise = o.listener, o.options, o.raise
  local self = setmetatable({ luadgram = luadgram, handler = o.handler,
    name = listener.name, n = {}, sinks = {}, line_sinks = {}, nlines = 0, batch = o.batch,
    on_tick = o.on_tick, published = {}, last_failing = {}, since_flush = {},
    since_publish = 0 }, Col)
  for _, kind in ipairs(o.sinks) do
    local v = options[kind]
    if v ~= nil and v ~= false then
      local sink, err = require(SINKS[kind].module).sink(v, { listener = listener,
        raise = raise, luadgram = luadgram })
      if not sink then raise("options.%s: %s", kind, tostring(err)) end
      sink.kind = kind
      self[kind] = sink
      self.sinks[#self.sinks + 1] = sink
      -- the counters its counts add to, and its counts already added
      local map = o.tally[kind] or o.tally["*"] or {}
      self.published[sink] = { written = 0, dropped = 0, to_written = map.written,
                               to_dropped = map.dropped }
      self.since_flush[sink] = 0
      if SINKS[kind].lines then
        self.nlines = self.nlines + 1
        self.line_sinks[self.nlines] = sink
      end
    end
  end
  local prefix = o.handler .. "_" .. listener.name:gsub("[^%w_]", "_") .. "_"
  self.counters = {}
  for name, help in pairs(o.counters) do
    self.n[name] = 0
    self.counters[name] = luadgram.counter(prefix .. name, format("%s (%s listener %s)", help,
                                           o.handler, listener.name))
  end
  -- One timer: as often as the most frequent sink flush, at least once a second.
  local period = 1
  for _, sink in ipairs(self.sinks) do
    local fi = sink.flush_interval
    if fi and fi < period then period = fi end
  end
  self.period = period
  self.timer = luadgram.every(period, function() self:tick() end)
  return self
end

-- The hot path's writer of lines: `fn(obj, line)` is col:write_line(line), or with one line
-- sink (the default: a file) that sink's own line writer: no loop, no call in between.
function Col:line_writer()
  if self.nlines ~= 1 then return self, self.write_line end
  local only = self.line_sinks[1]
  return only, only.write_line or only.write
end

function Col:write_line(line)
  local ok, err = true, nil
  local sinks = self.line_sinks
  for i = 1, self.nlines do
    local done, why = sinks[i]:write(line)
    if not done then ok, err = nil, why end
  end
  return ok, err
end

-- The lines gathered in C go to the file before it flushes or closes.
function Col:take_batch()
  if self.batch and self.file then self.file:write_lines(self.batch()) end
end

-- Adds the tallies and the sinks' counts since the last time to the shared counters.
function Col:publish()
  local n, counters = self.n, self.counters
  for _, sink in ipairs(self.sinks) do
    local seen = self.published[sink]
    local w, d = sink.written, sink.dropped
    if seen.to_written and w > seen.written then
      n[seen.to_written] = n[seen.to_written] + w - seen.written
    end
    if seen.to_dropped and d > seen.dropped then
      n[seen.to_dropped] = n[seen.to_dropped] + d - seen.dropped
    end
    seen.written, seen.dropped = w, d
  end
  for name, v in pairs(n) do
    if v > 0 then
      counters[name]:inc(v)
      n[name] = 0
    end
  end
end

-- One log line when a sink starts failing or its error changes.
function Col:log_failure(sink)
  local err = sink.failing
  if err and err ~= self.last_failing[sink] then
    self.luadgram.log.error(format("%s %s: %s %s: %s", self.handler, self.name, sink.kind,
                                   tostring(sink.what), tostring(err)))
  end
  self.last_failing[sink] = err
  if sink.kind == "forward" then sink.failing = nil end -- a send's error, not a state
end

function Col:tick()
  if self.on_tick then self.on_tick() end
  for _, sink in ipairs(self.sinks) do
    local since = self.since_flush[sink] + self.period
    local fi = sink.flush_interval
    if not fi or since >= fi - 1e-9 or sink.failing then
      since = 0
      if sink == self.file then self:take_batch() end
      sink:flush()
    end
    self.since_flush[sink] = since
    self:log_failure(sink)
  end
  -- the counters once a second (the timer may run more often, for a file's flush_interval)
  local since = self.since_publish + self.period
  if since >= 1 - 1e-9 then
    since = 0
    self:publish()
  end
  self.since_publish = since
end

function Col:close()
  if self.timer then self.timer:cancel() self.timer = nil end
  self:take_batch()
  for _, sink in ipairs(self.sinks) do
    local ok, err = sink:close()
    if not ok then
      self.luadgram.log.error(format("%s %s: %s %s: lost records closing: %s", self.handler,
                                     self.name, sink.kind, tostring(sink.what), tostring(err)))
    end
  end
  self:publish()
end

-- For sink modules: a relative path resolved against the configuration's folder.
function M.resolve(listener, path)
  local dir = listener.config_dir
  if path:sub(1, 1) == "/" or not dir or dir == "" then return path end
  return dir .. "/" .. path
end

-- The nats and redis sinks (sink_nats.lua, sink_redis.lua): a luadgram.nats / luadgram.redis
-- publisher (bindings/publish.c) of options.<kind>, its spool folder resolved against the
-- configuration's folder. Its own metrics (luadgramd_output_*) and state log lines are the
-- publisher's. write hands a record to the publisher's queue (counted written); what the
-- output drops, at once (queue full) or later on its thread (spool full or absent while the
-- bus cannot take records), the sink counts dropped from the publisher's own count at each
-- flush (every tick of the pipeline) and at close.
local Pub = {}
Pub.__index = Pub

function M.publisher_sink(kind, v, ctx)
  if type(v) ~= "table" then
    ctx.raise("options.%s must be a table of luadgram.%s options, not %s", kind, kind,
              tostring(v))
  end
  local o = {}
  for k, x in pairs(v) do o[k] = x end
  if type(o.spool) == "table" and type(o.spool.path) == "string" then
    o.spool = { path = M.resolve(ctx.listener, o.spool.path), max_bytes = o.spool.max_bytes }
  end
  local ok, pub = pcall(ctx.luadgram[kind], o)
  if not ok then return nil, (tostring(pub):gsub("^[^\n]-:%d+: (luadgram%.)", "%1")) end
  return setmetatable({ pub = pub, what = "'" .. tostring(o.name or kind) .. "'",
                        written = 0, dropped = 0, failing = nil, refused = nil }, Pub)
end

function Pub:write(line)
  local ok, err = self.pub:publish(line)
  if ok then
    self.written = self.written + 1
    return true
  end
  self.refused = err -- counted in the publisher's dropped, taken at the next flush
  return nil, err
end

-- The publisher's drops since the last look: dropped, and failing while they go on.
function Pub:count_drops()
  local d = self.pub:stats().dropped
  if d > self.dropped then
    self.failing = self.refused or "records dropped (spool full, or no spool, while the "
                                   .. "bus cannot take them)"
    self.dropped = d
  else
    self.failing = nil
  end
  self.refused = nil
end

function Pub:flush()
  self:count_drops()
  return true
end

function Pub:close()
  self.pub:close()
  self:count_drops()
  return true
end

return M
