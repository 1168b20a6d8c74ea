-- scripts/examples/icmp.lua: watches ICMP echo requests (pings) on a raw listener and logs
-- the IP header fields it decodes, one line per request:
--
--   listen "pings" {
--     bind    = { "raw:icmp@0.0.0.0", "raw:icmpv6@::" },
--     handler = "/usr/share/luadgramd/scripts/examples/icmp.lua", -- or its path in a checkout
--     recv    = { ttl = true, tos = true },
--     options = { per_second = 10 }, -- log lines a second at most (the rest are counted)
--   }
--
-- A raw IPv4 socket hands over the whole packet, IPv4 header included; a raw IPv6 socket
-- only what follows the IPv6 header (the kernel keeps it: hop limit and traffic class come
-- from recv = { ttl = true, tos = true }). The bytes are the network's: every field is read
-- only after checking the packet holds it; anything short or malformed is counted, never
-- an error.
local luadgram = require "luadgram"

local H = {}
local per_second = 10
local window, used = -1, 0
local requests, suppressed, malformed

function H.init(_, options)
  per_second = tonumber(options.per_second) or per_second
  requests = luadgram.counter("icmp_echo_requests", "ICMP echo requests seen")
  suppressed = luadgram.counter("icmp_echo_log_suppressed", "Echo requests not logged (rate)")
  malformed = luadgram.counter("icmp_malformed", "Raw packets too short or not IPv4/ICMP")
end

-- The IPv4 header at the start of data, or nil when data cannot hold one.
local function ipv4_header(data)
  if #data < 20 then return nil end
  local vihl, tos, total, id, frag, ttl, proto, sum, s1, s2, s3, s4, d1, d2, d3, d4 =
    string.unpack(">BBI2I2I2BBI2BBBBBBBB", data)
  local version, ihl = vihl >> 4, (vihl & 0x0f) * 4
  if version ~= 4 or ihl < 20 or ihl > #data then return nil end
  return {
    version = version, ihl = ihl, tos = tos, total = total, id = id,
    df = (frag & 0x4000) ~= 0, offset = (frag & 0x1fff) * 8, ttl = ttl, proto = proto,
    checksum = sum, src = string.format("%d.%d.%d.%d", s1, s2, s3, s4),
    dst = string.format("%d.%d.%d.%d", d1, d2, d3, d4),
  }
end

local function allowed()
  local now = math.floor(luadgram.now())
  if now ~= window then window, used = now, 0 end
  used = used + 1
  return used <= per_second
end

function H.message(msg)
  local data = msg.data
  local ip, icmp_at, echo_type
  if msg.peer.family == "inet6" then
    icmp_at, echo_type = 1, 128 -- ICMPv6 echo request; no IP header in the data
  else
    ip = ipv4_header(data)
    if not ip or ip.proto ~= 1 then
      malformed:inc()
      return
    end
    icmp_at, echo_type = ip.ihl + 1, 8
  end
  if #data < icmp_at + 7 then
    malformed:inc()
    return
  end
  local typ, code, _, ident, seq = string.unpack(">BBI2I2I2", data, icmp_at)
  if typ ~= echo_type or code ~= 0 then return end
  requests:inc()
  if not allowed() then
    suppressed:inc()
    return
  end
  local payload = #data - icmp_at + 1 - 8
  if ip then
    luadgram.log.info(string.format(
      "echo request from %s to %s: id=%d seq=%d payload=%d; IPv4 header: ihl=%d tos=%d "
      .. "len=%d ident=%d df=%s offset=%d ttl=%d checksum=0x%04x",
      ip.src, ip.dst, ident, seq, payload, ip.ihl, ip.tos, ip.total, ip.id, tostring(ip.df),
      ip.offset, ip.ttl, ip.checksum))
  else
    luadgram.log.info(string.format(
      "echo request from %s to %s: id=%d seq=%d payload=%d; IPv6 hop limit=%s tclass=%s",
      msg.peer.ip, msg.dst and msg.dst.ip or "?", ident, seq, payload, tostring(msg.ttl),
      tostring(msg.tos)))
  end
end

return H
