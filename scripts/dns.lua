-- scripts/dns.lua: a small authoritative DNS responder (RFC 1035, RFC 2308, RFC 6891) for
-- one zone given in the listener's options. Every answer is built at init(); a query costs
-- a header check, one search for the end of the question name, one table lookup and one
-- concatenation. Wire-format helpers live in scripts/lib/dns_wire.lua.
--[==[
Configuration
  listen "dns" {
    bind    = { "127.0.0.1:5353", "[::1]:5353" },
    handler = "dns",
    options = {
      zone      = "example.test.",      -- the apex; a trailing dot is optional
      ttl       = 300,                  -- default TTL of every record (0..2^31-1)
      edns_size = 1232,                 -- our EDNS UDP payload size (512..65535)
      stats_interval = 1,               -- seconds between counter flushes (see Counters)
      soa = {                           -- optional; every field has a default:
        mname = "ns1",                  --   first apex NS, else the apex itself
        rname = "hostmaster",           --   "hostmaster" (the mailbox hostmaster@zone)
        serial = 1, refresh = 7200, retry = 3600, expire = 1209600,
        minimum = 300,                  --   negative-caching TTL (RFC 2308)
        ttl = 300,                      --   the SOA record's TTL (default: ttl)
      },
      records = {
        ["@"]   = { NS = { "ns1" }, A = "192.0.2.53" },
        ["ns1"] = { A = "192.0.2.53", AAAA = "2001:db8::53" },
        ["www"] = { A = { "192.0.2.1", "192.0.2.2" }, AAAA = { "2001:db8::1" },
                    TXT = { "hello world", "v=spf1 -all" }, ttl = 60 },
      },
    },
  }
  Names (record keys, NS targets, mname, rname) follow zone-file rules: "@" is the apex, a
  name ending in "." is absolute (and must lie in the zone when it is a record key),
  anything else is relative to the zone. Labels hold letters, digits, '-' and '_'; no
  wildcards, no escapes. A value is one string or a list of strings (a value given twice
  is kept once: an RRset has no duplicates). Types: A, AAAA, TXT,
  NS (apex only: no delegations). A TXT string longer than 255 bytes becomes several
  character-strings of one record; a list inside the list ({ {"a", "b"} }) gives one record
  of those character-strings. `ttl` inside a name's table overrides the zone's TTL. Every
  mistake raises in init() with the option's path, so the listener does not start.

Answers
  Names are matched case-insensitively (ASCII); the question is echoed as sent. Answers have
  QR and AA (RA = 0, RD copied) and point to the question name (0xC00C) as owner.
  - a name in the zone with records of the type: NOERROR and the RRset; ANY gives every
    RRset of the name (SOA and NS too at the apex);
  - a name in the zone without that type, also an empty non-terminal (a parent of a name
    that has records): NOERROR, no answer, the SOA in authority (NODATA, RFC 2308);
  - an unknown name in the zone: NXDOMAIN with the SOA in authority; the SOA's TTL in
    authority is min(SOA TTL, minimum);
  - a name outside the zone: REFUSED (no AA);
  - QCLASS other than IN (CH, HS, ANY): REFUSED, since we serve only the IN zone (NOTIMP
    would say the kind of query is unknown, which it is not);
  - QTYPE AXFR or IXFR over UDP: NOTIMP (no zone transfers); QTYPE OPT: FORMERR.
  Checks, in order: fewer than 12 bytes or QR = 1: dropped, never answered (no response to
  responses); opcode other than QUERY: NOTIMP (header only); QDCOUNT ~= 1, ANCOUNT or
  NSCOUNT ~= 0, ARCOUNT > 1, a bad question name (labels > 63, name > 255 bytes, a
  compression pointer), a cut question, an additional record that is not a well-formed OPT
  at the root (TSIG and SIG(0) are not supported), bytes after the last record: FORMERR
  (header only, RD copied). EDNS (RFC 6891): an OPT is answered with our OPT (edns_size, no
  options, DO copied); version > 0 gives BADVERS (extended RCODE 16) with the question.
  Options in a query's OPT are checked for structure and ignored (a COOKIE is not
  answered). The reply may be 512 bytes without EDNS, else min(max(client's size, 512),
  edns_size); a bigger answer is sent with TC = 1 and no answer or authority records (the
  question and the OPT kept). No additional-section processing.

Counters (luadgram.counter, shown as luadgramd_user_<name>): dns_queries (every datagram
  taken as a query), dns_nxdomain, dns_refused, dns_formerr, dns_notimp, dns_truncated,
  dns_dropped (short datagrams and responses). Each worker counts locally and adds to the
  shared counters every stats_interval seconds and at stop, so the hot path makes no C call
  for them.
]==]
local luadgram = require "luadgram"
local wire = require "dns_wire"

local byte, sub, find, lower, pack, unpack = string.byte, string.sub, string.find,
                                             string.lower, string.pack, string.unpack
local TYPE, RCODE = wire.TYPE, wire.RCODE

local H = {}

local QR, AA, TC = 0x8000, 0x0400, 0x0200
local CLASS_IN = "\0\1"

-- ---- the zone, built by init (per worker) ----

-- answers[lower(qname wire) .. qtype (2 bytes) .. "\0\1"] = entry for a positive answer;
-- nodata[lower(qname wire)] = entry for every name of the zone (empty non-terminals too).
-- An entry: [1..4] the 10 header bytes after the ID for RD = 0/1 without EDNS, then with
-- EDNS (ARCOUNT 1); [5] the length of the whole reply without OPT; [6] the answer and
-- authority records (owners point into the question); .flags (QR, AA, RCODE), .an, .ns
-- and .body (= [6]) for the slow path. A reply is ID .. [i] .. question .. [6] [.. OPT].
local answers, nodata = {}, {}
local zone_wire, zone_len = "\0", 1
local soa_negative = ""   -- SOA RR after its owner, with the negative TTL (RFC 2308)
local our_size = 1232
local opt_plain, opt_do = "", "" -- our OPT RR, without / with the DO bit

-- ---- counters: per-worker tallies, flushed by a timer ----

local n_queries, n_nxdomain, n_refused, n_formerr, n_notimp, n_truncated, n_dropped =
  0, 0, 0, 0, 0, 0, 0
local counters, flush_timer

local function flush()
  if not counters then return end
  local c = counters
  if n_queries > 0 then c.queries:inc(n_queries) n_queries = 0 end
  if n_nxdomain > 0 then c.nxdomain:inc(n_nxdomain) n_nxdomain = 0 end
  if n_refused > 0 then c.refused:inc(n_refused) n_refused = 0 end
  if n_formerr > 0 then c.formerr:inc(n_formerr) n_formerr = 0 end
  if n_notimp > 0 then c.notimp:inc(n_notimp) n_notimp = 0 end
  if n_truncated > 0 then c.truncated:inc(n_truncated) n_truncated = 0 end
  if n_dropped > 0 then c.dropped:inc(n_dropped) n_dropped = 0 end
end

-- ---- replies built per query (everything but the exact-match fast path) ----

-- Sends ID .. header .. q .. body .. opt; with TC and no records when it exceeds limit.
local function respond(msg, data, flags, an, ns, q, body, opt, limit)
  local ar = opt == "" and 0 or 1
  if 12 + #q + #body + #opt > limit then
    flags, an, ns, body = flags | TC, 0, 0, ""
    n_truncated = n_truncated + 1
  end
  msg:reply(sub(data, 1, 2) .. pack(">I2I2I2I2I2", flags, 1, an, ns, ar)
            .. q .. body .. opt)
end

-- A header-only reply: opcode and RD copied from the query's byte 3 (f1).
local function bare(msg, data, f1, rcode)
  msg:reply(sub(data, 1, 2) .. pack(">BBI2I2I2I2", 0x80 | (f1 & 0x79), rcode, 0, 0, 0, 0))
end

local function formerr(msg, data, f1)
  n_formerr = n_formerr + 1
  bare(msg, data, f1, RCODE.FORMERR)
end

-- True when every option in data[p..n] is a complete TLV (RFC 6891 §6.1.2).
local function options_ok(data, p, n)
  while p <= n do -- each round moves p forward by at least 4
    local l1, l2 = byte(data, p + 2, p + 3)
    if not l2 then return false end
    p = p + 4 + l1 * 256 + l2
  end
  return p == n + 1
end

-- True when the lowercased wire name lw is the apex or below it (label-aligned).
local function in_zone(lw)
  local skip = #lw - zone_len
  local p = 1
  while p - 1 <= skip do -- each round moves p forward by at least 2
    if p - 1 == skip then return sub(lw, p) == zone_wire end
    p = p + byte(lw, p) + 1
  end
  return false
end

-- Every query the fast path does not answer: full checks, mixed case, EDNS variants,
-- negative answers, errors.
local function slow(msg, data)
  local n = #data
  local f1, _, qd, an, ns, ar = unpack(">BBI2I2I2I2", data, 3)
  local rd = (f1 & 1) << 8
  if f1 & 0x78 ~= 0 then
    n_notimp = n_notimp + 1
    return bare(msg, data, f1, RCODE.NOTIMP)
  end
  if qd ~= 1 or an ~= 0 or ns ~= 0 or ar > 1 then return formerr(msg, data, f1) end
  local qend = wire.name_end(data, 13)
  if not qend or qend + 3 > n then return formerr(msg, data, f1) end
  local t1, t2, c1, c2 = byte(data, qend, qend + 3)
  local qtype = t1 * 256 + t2
  local q = sub(data, 13, qend + 3)

  local limit, opt = 512, ""
  local o = qend + 4
  if ar == 1 then
    if o + 10 > n then return formerr(msg, data, f1) end
    local owner, otype, size, _, version, dflags, rdlen = unpack(">BI2I2BBI2I2", data, o)
    if owner ~= 0 or otype ~= TYPE.OPT or o + 10 + rdlen ~= n
       or not options_ok(data, o + 11, n) then
      return formerr(msg, data, f1)
    end
    opt = dflags >= 0x8000 and opt_do or opt_plain
    if version ~= 0 then
      -- BADVERS = 16: the upper 8 bits (1) go in the OPT, the lower 4 (0) in the header.
      opt = sub(opt, 1, 5) .. "\1" .. sub(opt, 7)
      return respond(msg, data, QR | rd, 0, 0, q, "", opt, 65535)
    end
    limit = size < 512 and 512 or size > our_size and our_size or size
  elseif o ~= n + 1 then
    return formerr(msg, data, f1)
  end

  if c1 ~= 0 or c2 ~= 1 then
    n_refused = n_refused + 1
    return respond(msg, data, QR | rd | RCODE.REFUSED, 0, 0, q, "", opt, limit)
  end
  if qtype == TYPE.OPT then return formerr(msg, data, f1) end
  if qtype == TYPE.AXFR or qtype == TYPE.IXFR then
    n_notimp = n_notimp + 1
    return respond(msg, data, QR | rd | RCODE.NOTIMP, 0, 0, q, "", opt, limit)
  end

  local lname = lower(sub(data, 13, qend - 1))
  local e = answers[lname .. sub(q, -4)] or nodata[lname]
  if e then
    return respond(msg, data, e.flags | rd, e.an, e.ns, q, e.body, opt, limit)
  end
  if in_zone(lname) then
    n_nxdomain = n_nxdomain + 1
    local apex = pack(">I2", 0xC000 + 12 + #lname - zone_len)
    return respond(msg, data, QR | AA | rd | RCODE.NXDOMAIN, 0, 1, q, apex .. soa_negative,
                   opt, limit)
  end
  n_refused = n_refused + 1
  return respond(msg, data, QR | rd | RCODE.REFUSED, 0, 0, q, "", opt, limit)
end

-- ---- the hot path ----

function H.message(msg)
  local data = msg.data
  local f1, _, qd1, qd2, an1, an2, ns1, ns2, ar1, ar2 = byte(data, 3, 12)
  if not ar2 or f1 >= 0x80 then -- shorter than a header, or a response
    n_dropped = n_dropped + 1
    return
  end
  n_queries = n_queries + 1
  if f1 & 0x78 == 0 and qd1 == 0 and qd2 == 1 and an1 == 0 and an2 == 0 and ns1 == 0
     and ns2 == 0 and ar1 == 0 then
    -- A key is a whole well-formed question with no zero byte inside its labels, so if the
    -- bytes up to the first zero plus 4 are a key (as sent or lowercased: lowering leaves
    -- length bytes alone), the question is valid and is that key.
    local z = find(data, "\0", 13, true)
    if z then
      local q = sub(data, 13, z + 4)
      local e = answers[q] or answers[lower(q)]
      if e then
        local n = #data
        if ar2 == 0 then
          if n == z + 4 and e[5] <= 512 then
            msg:reply(sub(data, 1, 2) .. e[1 + (f1 & 1)] .. q .. e[6])
            return
          end
        elseif ar2 == 1 and n >= z + 15 then
          local o0, t1, t2, s1, s2, _, ver, d1, _, l1, l2 = byte(data, z + 5, z + 15)
          if o0 == 0 and t1 == 0 and t2 == 41 and ver == 0 and n == z + 15 + l1 * 256 + l2 then
            local p = z + 16 -- the options, if any: each a complete TLV (RFC 6891 §6.1.2)
            while p <= n do -- each round moves p forward by at least 4
              local ol1, ol2 = byte(data, p + 2, p + 3)
              if not ol2 then p = 0 break end
              p = p + 4 + ol1 * 256 + ol2
            end
            local size = s1 * 256 + s2
            if p == n + 1 and e[5] + 11 <= size and e[5] + 11 <= our_size then
              msg:reply(sub(data, 1, 2) .. e[3 + (f1 & 1)] .. q .. e[6]
                        .. (d1 >= 0x80 and opt_do or opt_plain))
              return
            end
          end
        end
      end
    end
  end
  return slow(msg, data)
end

-- The same answers without the fast path: the fuzz target checks that both give the same
-- bytes for every input.
H.message_reference = function(msg)
  local data = msg.data
  local f1 = byte(data, 3)
  if #data < 12 or f1 >= 0x80 then return end
  return slow(msg, data)
end

-- ---- init: options to entries ----

local function fail(fmt, ...)
  error("dns: " .. string.format(fmt, ...), 0)
end

local function check_int(v, what, lo, hi, default)
  if v == nil then return default end
  if math.type(v) ~= "integer" or v < lo or v > hi then
    fail("%s must be an integer from %d to %d (got %s)", what, lo, hi, tostring(v))
  end
  return v
end

-- The wire form of name (zone-file rules) or a failure naming `what`.
local function name_wire(name, origin, what)
  if type(name) ~= "string" then fail("%s must be a string (got %s)", what, type(name)) end
  local w, err = wire.name_to_wire(wire.absolute(name, origin))
  if not w then fail("%s: %s", what, err) end
  return w
end

-- A value that may be one string or a list: the list.
local function as_list(v, what)
  if type(v) == "string" then return { v } end
  if type(v) ~= "table" or #v == 0 then
    fail("%s must be a string or a non-empty list of strings", what)
  end
  return v
end

local function make_entry(flags, an, ns, body, key)
  local e = { flags = flags, an = an, ns = ns, body = body }
  for i = 0, 3 do
    local rd, edns = (i & 1) << 8, i >> 1
    e[i + 1] = pack(">I2I2I2I2I2", flags | rd, 1, an, ns, edns)
  end
  e[5] = 12 + (key and #key or 0) + #body
  e[6] = body
  return e
end

-- The RDATA of one record of type t from its text value v, or a failure.
local function rdata(t, v, origin, what)
  if t == "A" then
    local b = type(v) == "string" and wire.ipv4(v)
    if not b then fail("%s: '%s' is not an IPv4 address", what, tostring(v)) end
    return b
  elseif t == "AAAA" then
    local b = type(v) == "string" and wire.ipv6(v)
    if not b then fail("%s: '%s' is not an IPv6 address", what, tostring(v)) end
    return b
  elseif t == "NS" then
    return name_wire(v, origin, what)
  else -- TXT
    local parts = type(v) == "table" and v or { v }
    local out = {}
    for i, s in ipairs(parts) do
      if type(s) ~= "string" then fail("%s[%d] must be a string", what, i) end
      out[i] = wire.char_strings(s)
    end
    if #out == 0 then fail("%s must not be an empty list", what) end
    local b = table.concat(out)
    if #b > 65535 then fail("%s is longer than 65535 bytes", what) end
    return b
  end
end

local RR_CODES = { A = TYPE.A, AAAA = TYPE.AAAA, TXT = TYPE.TXT, NS = TYPE.NS }

local function build_zone(options)
  if type(options) ~= "table" then fail("options must be a table") end
  for k in pairs(options) do
    if not ({ zone = 1, ttl = 1, soa = 1, records = 1, edns_size = 1,
              stats_interval = 1 })[k] then
      fail("unknown option '%s'", tostring(k))
    end
  end
  if type(options.zone) ~= "string" then
    fail("options.zone must be a name like 'example.test.'")
  end
  local origin = options.zone
  if sub(origin, -1) ~= "." then origin = origin .. "." end
  local zw, err = wire.name_to_wire(origin)
  if not zw then fail("options.zone: %s", err) end
  zone_wire, zone_len = lower(zw), #zw
  local ttl = check_int(options.ttl, "options.ttl", 0, 0x7fffffff, 300)
  our_size = check_int(options.edns_size, "options.edns_size", 512, 65535, 1232)
  local records = options.records
  if type(records) ~= "table" then fail("options.records must be a table of names") end

  -- records: per lowercased name, its RRs (each wire from the type on) by type
  local zone = {}   -- lw -> { [type] = { rr, ... } }
  local apex_ns = {}
  for key, rrs in pairs(records) do
    local what = string.format("options.records[%q]", tostring(key))
    if type(key) ~= "string" then fail("%s: names must be strings", what) end
    if type(rrs) ~= "table" then fail("%s must be a table of types", what) end
    local lw = lower(name_wire(key, origin, what))
    if not in_zone(lw) then fail("%s is not in the zone %s", what, origin) end
    if zone[lw] then fail("%s: the name is given twice", what) end
    local name_ttl = check_int(rrs.ttl, what .. ".ttl", 0, 0x7fffffff, ttl)
    local sets = {}
    for t, values in pairs(rrs) do
      if t ~= "ttl" then
        local code = RR_CODES[t]
        if not code then
          fail("%s: unsupported type '%s' (A, AAAA, TXT, NS)", what, tostring(t))
        end
        if t == "NS" and lw ~= zone_wire then
          fail("%s: NS records only at the apex '@' (no delegations)", what)
        end
        local list = as_list(values, what .. "." .. t)
        local set, seen = {}, {}
        for i, v in ipairs(list) do
          local rd = rdata(t, v, origin, string.format("%s.%s[%d]", what, t, i))
          local same = t == "NS" and lower(rd) or rd -- names compare without case
          if not seen[same] then -- an RRset has no duplicates (RFC 2181 §5)
            seen[same] = true
            set[#set + 1] = pack(">I2I2I4s2", code, 1, name_ttl, rd)
          end
          if t == "NS" then apex_ns[i] = v end
        end
        sets[code] = set
      end
    end
    zone[lw] = sets
  end

  -- the SOA
  local soa = options.soa or {}
  if type(soa) ~= "table" then fail("options.soa must be a table") end
  for k in pairs(soa) do
    if not ({ mname = 1, rname = 1, serial = 1, refresh = 1, retry = 1, expire = 1,
              minimum = 1, ttl = 1 })[k] then
      fail("unknown option 'soa.%s'", tostring(k))
    end
  end
  local mname = name_wire(soa.mname or apex_ns[1] or "@", origin, "options.soa.mname")
  local rname = name_wire(soa.rname or "hostmaster", origin, "options.soa.rname")
  local u32 = 0xffffffff
  local soa_rdata = mname .. rname .. pack(">I4I4I4I4I4",
    check_int(soa.serial, "options.soa.serial", 0, u32, 1),
    check_int(soa.refresh, "options.soa.refresh", 0, 0x7fffffff, 7200),
    check_int(soa.retry, "options.soa.retry", 0, 0x7fffffff, 3600),
    check_int(soa.expire, "options.soa.expire", 0, 0x7fffffff, 1209600),
    check_int(soa.minimum, "options.soa.minimum", 0, 0x7fffffff, 300))
  local soa_ttl = check_int(soa.ttl, "options.soa.ttl", 0, 0x7fffffff, ttl)
  local minimum = check_int(soa.minimum, "options.soa.minimum", 0, 0x7fffffff, 300)
  soa_negative = pack(">I2I2I4s2", TYPE.SOA, 1, math.min(soa_ttl, minimum), soa_rdata)
  zone[zone_wire] = zone[zone_wire] or {}
  zone[zone_wire][TYPE.SOA] = { pack(">I2I2I4s2", TYPE.SOA, 1, soa_ttl, soa_rdata) }

  -- entries: positive answers (and ANY), NODATA for every name and its parents in the zone
  answers, nodata = {}, {}
  local POINTER = "\192\12" -- the question name
  for lw, sets in pairs(zone) do
    local all, nall = {}, 0
    for _, code in ipairs { TYPE.SOA, TYPE.NS, TYPE.A, TYPE.AAAA, TYPE.TXT } do
      local set = sets[code]
      if set then
        local body = POINTER .. table.concat(set, POINTER)
        local key = lw .. pack(">I2", code) .. CLASS_IN
        answers[key] = make_entry(QR | AA, #set, 0, body, key)
        all[#all + 1] = body
        nall = nall + #set
      end
    end
    if nall > 0 then
      local key = lw .. pack(">I2", TYPE.ANY) .. CLASS_IN
      answers[key] = make_entry(QR | AA, nall, 0, table.concat(all), key)
    end
    -- this name and every parent down to the apex exist
    local p = 1
    while p <= #lw - zone_len + 1 do
      local name = sub(lw, p)
      if not nodata[name] then
        local apex = pack(">I2", 0xC000 + 12 + #name - zone_len)
        nodata[name] = make_entry(QR | AA, 0, 1, apex .. soa_negative)
      end
      p = p + byte(lw, p) + 1
    end
  end

  -- our OPT: root owner, TYPE 41, CLASS = our size, TTL = ext-rcode 0, version 0, flags
  opt_plain = pack(">BI2I2BBI2I2", 0, TYPE.OPT, our_size, 0, 0, 0, 0)
  opt_do = pack(">BI2I2BBI2I2", 0, TYPE.OPT, our_size, 0, 0, 0x8000, 0)
end

function H.init(_, options)
  build_zone(options)
  local interval = options.stats_interval or 1
  if type(interval) ~= "number" or interval <= 0 or interval > 3600 then
    fail("options.stats_interval must be a number of seconds from 0 to 3600")
  end
  counters = {
    queries = luadgram.counter("dns_queries", "DNS queries taken (QR = 0, 12 bytes or more)"),
    nxdomain = luadgram.counter("dns_nxdomain", "DNS answers NXDOMAIN"),
    refused = luadgram.counter("dns_refused", "DNS queries REFUSED (outside the zone, not IN)"),
    formerr = luadgram.counter("dns_formerr", "DNS queries answered FORMERR"),
    notimp = luadgram.counter("dns_notimp", "DNS queries answered NOTIMP"),
    truncated = luadgram.counter("dns_truncated", "DNS answers sent with TC"),
    dropped = luadgram.counter("dns_dropped", "datagrams dropped: shorter than a header or QR = 1"),
  }
  flush_timer = luadgram.every(interval, flush)
end

function H.stop()
  flush()
  if flush_timer then flush_timer:cancel() flush_timer = nil end
end

return H
