-- scripts/lib/dns_wire.lua: the DNS wire-format pieces scripts/dns.lua builds on (RFC 1035
-- §3.1, §4.1.4; RFC 4291 §2.2 for IPv6 text): domain names between text and wire form,
-- bounded readers for names in received messages, IPv4/IPv6 text to bytes, TXT
-- character-strings. Pure Lua 5.4, no C module, no global state. Nothing here raises on
-- bad input: every function returns nil, err for it (err a short English phrase).
--[==[
API
  local wire = require "dns_wire"

  wire.name_to_wire(text) -> wire | nil, err
    "www.example.test." or "www.example.test" (both absolute) -> "\3www\7example\4test\0";
    "." -> "\0". Case is kept. Labels: 1..63 bytes of letters, digits, '-' and '_' (no
    escapes, no wildcards); the whole name at most 255 bytes in wire form.
  wire.absolute(name, origin) -> text
    zone-file style: "@" is origin, a name ending in "." is absolute, anything else is
    relative to origin ("www", "example.test." -> "www.example.test.").
  wire.name_end(data, pos) -> next | nil, err
    Walks the uncompressed name that starts at byte pos of data and returns the position
    just after its root label. For a question: a compression pointer is an error
    ("compression pointer in name"), as are reserved label types, a name longer than 255
    bytes (so at most 127 labels) and a name cut short by the end of data.
  wire.read_name(data, pos [, allow_pointers]) -> text, next | nil, err
    Reads the name at pos as text ("www.example.test.", "." for the root), bytes outside
    [%w-_] written as \DDD. With allow_pointers, compression pointers are followed (each
    must point before itself, at most 127 of them); next is then just after the first
    pointer. Same bounds as name_end.
  wire.ipv4(text) -> 4 bytes | nil, err      dotted quad, no leading zeros
  wire.ipv6(text) -> 16 bytes | nil, err     RFC 4291 §2.2: 8 groups, one "::", an IPv4 tail
  wire.char_strings(s) -> bytes              s as <character-string>s of at most 255 bytes
                                             each ("" -> one empty character-string)
  wire.TYPE   { A = 1, NS = 2, SOA = 6, TXT = 16, AAAA = 28, OPT = 41, IXFR = 251,
                AXFR = 252, ANY = 255 }
  wire.RCODE  { NOERROR = 0, FORMERR = 1, SERVFAIL = 2, NXDOMAIN = 3, NOTIMP = 4,
                REFUSED = 5, BADVERS = 16 }
]==]
local byte, char, sub, find, format = string.byte, string.char, string.sub, string.find,
                                      string.format
local pack = string.pack
local concat = table.concat

local M = {}

M.TYPE = { A = 1, NS = 2, SOA = 6, TXT = 16, AAAA = 28, OPT = 41, IXFR = 251, AXFR = 252,
           ANY = 255 }
M.RCODE = { NOERROR = 0, FORMERR = 1, SERVFAIL = 2, NXDOMAIN = 3, NOTIMP = 4, REFUSED = 5,
            BADVERS = 16 }

local MAX_NAME = 255    -- RFC 1035 §3.1: a name is at most 255 bytes in wire form
local MAX_LABEL = 63
local MAX_POINTERS = 127

-- ---- names: text to wire ----

function M.name_to_wire(text)
  if type(text) ~= "string" then return nil, "name is not a string" end
  if text == "." then return "\0" end
  if #text > MAX_NAME then return nil, "name longer than 255 bytes" end
  local s = text
  if sub(s, -1) == "." then s = sub(s, 1, -2) end
  if s == "" then return nil, "empty name" end
  local parts, n = {}, 0
  local from = 1
  while true do -- one label per round; at most 128 rounds (the length check above)
    local dot = find(s, ".", from, true)
    local label = sub(s, from, (dot or 0) - 1)
    if label == "" then return nil, "empty label in '" .. text .. "'" end
    if #label > MAX_LABEL then
      return nil, "label longer than 63 bytes in '" .. text .. "'"
    end
    if find(label, "[^%w%-_]") then
      return nil, "label '" .. label .. "' may hold only letters, digits, '-' and '_'"
    end
    n = n + 1
    parts[n] = char(#label) .. label
    if not dot then break end
    from = dot + 1
  end
  n = n + 1
  parts[n] = "\0"
  local wire = concat(parts)
  if #wire > MAX_NAME then return nil, "name longer than 255 bytes in wire form" end
  return wire
end

function M.absolute(name, origin)
  if name == "@" then return origin end
  if sub(name, -1) == "." then return name end
  if origin == "." then return name .. "." end
  return name .. "." .. origin
end

-- ---- names: wire, from received messages ----

function M.name_end(data, pos)
  local start = pos
  local len = byte(data, pos)
  while len ~= 0 do -- each round moves pos forward; stops within 255 bytes
    if len == nil then return nil, "name cut short" end
    if len >= 0xC0 then return nil, "compression pointer in name" end
    if len > MAX_LABEL then return nil, "reserved label type" end
    pos = pos + len + 1
    if pos - start >= MAX_NAME then return nil, "name longer than 255 bytes" end
    len = byte(data, pos)
  end
  return pos + 1
end

-- A label as text: letters, digits, '-' and '_' as they are, other bytes as \DDD.
local function label_text(label)
  return (label:gsub("[^%w%-_]", function(c) return format("\\%03d", byte(c)) end))
end

function M.read_name(data, pos, allow_pointers)
  local parts, n = {}, 0
  local total = 1      -- the root label
  local next_pos       -- set at the first pointer
  local pointers = 0
  while true do
    local len = byte(data, pos)
    if len == nil then return nil, "name cut short" end
    if len == 0 then break end
    if len >= 0xC0 then
      if not allow_pointers then return nil, "compression pointer in name" end
      local low = byte(data, pos + 1)
      if low == nil then return nil, "name cut short" end
      local target = (len - 0xC0) * 256 + low + 1 -- 1-based position
      if target >= pos then return nil, "compression pointer does not point back" end
      pointers = pointers + 1
      if pointers > MAX_POINTERS then return nil, "too many compression pointers" end
      next_pos = next_pos or pos + 2
      pos = target
    elseif len > MAX_LABEL then
      return nil, "reserved label type"
    else
      if pos + len > #data then return nil, "name cut short" end
      total = total + len + 1
      if total > MAX_NAME then return nil, "name longer than 255 bytes" end
      n = n + 1
      parts[n] = label_text(sub(data, pos + 1, pos + len))
      pos = pos + len + 1
    end
  end
  local text = n == 0 and "." or concat(parts, ".") .. "."
  return text, next_pos or pos + 1
end

-- ---- addresses ----

local function octet(s)
  if #s > 3 or (#s > 1 and sub(s, 1, 1) == "0") then return nil end
  local v = tonumber(s)
  if v and v <= 255 then return v end
  return nil
end

function M.ipv4(text)
  if type(text) ~= "string" or #text > 15 then return nil, "not an IPv4 address" end
  local a, b, c, d = text:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil, "not an IPv4 address" end
  a, b, c, d = octet(a), octet(b), octet(c), octet(d)
  if not (a and b and c and d) then return nil, "not an IPv4 address" end
  return char(a, b, c, d)
end

-- The groups of a ':'-separated run of hex groups, appended to out; false when one is not
-- 1-4 hex digits. "" gives none.
local function hex_groups(s, out)
  if s == "" then return true end
  for g in (s .. ":"):gmatch("([^:]*):") do -- at most 23 rounds (#s <= 45)
    if not g:match("^%x%x?%x?%x?$") then return false end
    out[#out + 1] = tonumber(g, 16)
  end
  return true
end

function M.ipv6(text)
  local bad = "not an IPv6 address"
  -- 45 = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
  if type(text) ~= "string" or #text < 2 or #text > 45 then return nil, bad end
  local s = text
  local v4text = s:match(":(%d+%.%d+%.%d+%.%d+)$")
  if v4text then
    local v4 = M.ipv4(v4text)
    if not v4 then return nil, bad end
    local b1, b2, b3, b4 = byte(v4, 1, 4)
    s = sub(s, 1, #s - #v4text) .. format("%x:%x", b1 * 256 + b2, b3 * 256 + b4)
  elseif find(s, ".", 1, true) then
    return nil, bad
  end
  local head, tail = {}, {}
  local a, b = find(s, "::", 1, true)
  if a then
    if find(s, "::", b, true) then return nil, bad end -- a second "::" (or ":::")
    if not hex_groups(sub(s, 1, a - 1), head) or not hex_groups(sub(s, b + 1), tail) then
      return nil, bad
    end
    if #head + #tail > 7 then return nil, bad end
  else
    if not hex_groups(s, head) or #head ~= 8 then return nil, bad end
  end
  local parts = {}
  for i = 1, #head do parts[i] = pack(">I2", head[i]) end
  for _ = 1, 8 - #head - #tail do parts[#parts + 1] = "\0\0" end
  for i = 1, #tail do parts[#parts + 1] = pack(">I2", tail[i]) end
  return concat(parts)
end

-- ---- TXT ----

function M.char_strings(s)
  if s == "" then return "\0" end
  local parts = {}
  for i = 1, #s, 255 do
    local piece = sub(s, i, i + 254)
    parts[#parts + 1] = char(#piece) .. piece
  end
  return concat(parts)
end

return M
