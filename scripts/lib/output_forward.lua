-- scripts/lib/output_forward.lua: forwards syslog records to other syslog servers as RFC 5424
-- datagrams (syslog_parse.format5424: the MSG byte for byte, BOM restored), sent with
-- luadgram.send from the listener's own socket.
--[==[
API
  local output_forward = require "output_forward"

  fwd = output_forward.open{ listener =, to =, send =, fill_hostname = }
    listener       the listener whose socket sends (listener.name in init)
    to             "ip:port", "[ipv6]:port", "unix:/path", or a list of them: every record
                   goes to each
    send           luadgram.send (or a function(listener, addr, data) with its contract:
                   true, or nil, err)
    fill_hostname  default true: a record with no HOSTNAME is sent with the origin the
                   caller names instead of "-" (the syslog handler names the sender's IP,
                   as an RFC 3164 relay does, or this host's name for unix senders)
    Raises on a bad option (a configuration error: init fails and a reload keeps the old
    state).

  sent = fwd:send(rec, fallback_time [, origin])
    Formats rec once and sends it to every destination; returns how many sends succeeded.
    rec is not changed (its hostname is restored after formatting).
  ok, err = fwd:write(rec, fallback_time [, origin])   send, as the sink contract has it:
                         true, or nil, err when a send failed
  fwd:flush(), fwd:close()   nothing to do (datagrams are sent at once): true
  fwd.written, fwd.dropped   datagrams sent / sends that failed, since open
  fwd.failing            "addr: ERR" of the last failed send (nil until one fails)

  fwd = output_forward.sink(v, ctx)   the collector's `forward` sink (scripts/lib/
    collector.lua): v is options.forward, an address, a list, or { to =, fill_hostname = }
]==]

local syslog_parse = require "syslog_parse"

local format5424 = syslog_parse.format5424
local type, tostring, tonumber, error, ipairs = type, tostring, tonumber, error, ipairs

local M = {}

local function valid_addr(a)
  if type(a) ~= "string" then return false end
  if a:match("^unix:/.") then return true end
  local port = a:match("^%d+%.%d+%.%d+%.%d+:(%d+)$") or a:match("^%[[%x:.]+%]:(%d+)$")
  port = tonumber(port)
  return port ~= nil and port >= 1 and port <= 65535
end

local Fwd = {}
Fwd.__index = Fwd

function M.open(opts)
  if type(opts) ~= "table" then error("output_forward.open: options table expected", 2) end
  if type(opts.listener) ~= "string" then
    error("output_forward.open: listener (a name) is required", 2)
  end
  if type(opts.send) ~= "function" then
    error("output_forward.open: send (luadgram.send) is required", 2)
  end
  local to = opts.to
  if type(to) == "string" then to = { to } end
  if type(to) ~= "table" or to[1] == nil then
    error("forward: 'to' must be an address or a list of addresses", 2)
  end
  local list = {}
  for i, a in ipairs(to) do
    if not valid_addr(a) then
      error("forward: bad address " .. tostring(a) .. " (\"ip:port\", \"[ipv6]:port\" or "
        .. "\"unix:/path\")", 2)
    end
    list[i] = a
  end
  return setmetatable({ listener = opts.listener, to = list, n = #list, send_fn = opts.send,
    fill_hostname = opts.fill_hostname ~= false, written = 0, dropped = 0, failing = nil,
    what = table.concat(list, ", ") }, Fwd)
end

function Fwd:send(rec, fallback_time, origin)
  local host = rec.hostname
  local line
  if host == nil and origin and self.fill_hostname then
    rec.hostname = origin
    line = format5424(rec, fallback_time)
    rec.hostname = nil
  else
    line = format5424(rec, fallback_time)
  end
  local ok_count, send_fn, listener, to = 0, self.send_fn, self.listener, self.to
  for i = 1, self.n do
    local ok, err = send_fn(listener, to[i], line)
    if ok then
      ok_count = ok_count + 1
    else
      self.dropped = self.dropped + 1
      self.failing = to[i] .. ": " .. tostring(err)
    end
  end
  self.written = self.written + ok_count
  return ok_count
end

function Fwd:write(rec, fallback_time, origin)
  if self:send(rec, fallback_time, origin) == self.n then return true end
  return nil, self.failing
end

function Fwd:flush() return true end
Fwd.close = Fwd.flush

function M.sink(v, ctx)
  local to, fill = v, nil
  if type(v) == "table" and v.to ~= nil then to, fill = v.to, v.fill_hostname end
  local ok, fwd = pcall(M.open, { listener = ctx.listener.name, to = to,
    send = ctx.luadgram.send, fill_hostname = fill })
  if not ok then return nil, fwd end
  return fwd
end

return M
