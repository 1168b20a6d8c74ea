-- scripts/lib/syslog_filter.lua: compiles a listener's `filter` option (facility, severity,
-- host, and the same under `exclude`) into what the syslog handler checks per record: one
-- table lookup by PRI, and a host test only when hosts are named.
--[==[
The option (every key optional; no filter keeps everything):
  filter = {
    facility = "auth" | { "auth", "authpriv", 4 },   -- keep only these facilities
    severity = "warning",         -- a single name or number: keep it and MORE severe
                                  -- (warning, err, crit, alert, emerg)
             | { "err", "info" }, -- a list: keep exactly these
    host     = "router1" | { "router1", "~^sw%-%d+$" },
                                  -- keep only these hosts: exact names (case-insensitive),
                                  -- or Lua patterns after a "~" (matched on the lower-case
                                  -- name); the host is the record's HOSTNAME or, when it
                                  -- has none, the sender's IP
    exclude  = { facility = ..., severity = ..., host = ... },
                                  -- drop what matches any of these; here a severity name
                                  -- alone is exactly that severity ("debug" drops debug)
  }
A record is kept when it matches every positive key and no `exclude` key. Facility and
severity names are syslog_parse's (kern, user, ..., local7; emerg, alert, crit, err, warning,
notice, info, debug; aliases warn, error, panic). A datagram without a valid PRI counts as
user.notice (as RFC 3164 says a relay must assume).

API
  local syslog_filter = require "syslog_filter"
  f = syslog_filter.compile(filter)   -- raises "filter: ..." on a bad option
    f.pri   nil (facility and severity keep everything) or a table pri -> true for the
            PRIs (facility * 8 + severity, 0..191) to keep
    f.host  nil (no host rule) or a function(host) -> keep? (host: a string or nil)
  f = syslog_filter.compile(nil) gives { } (keep everything).
]==]

local syslog_parse = require "syslog_parse"

local facility_codes, severity_codes = syslog_parse.facility_codes, syslog_parse.severity_codes
local type, tostring, ipairs, pairs, pcall, error = type, tostring, ipairs, pairs, pcall, error
local lower, find, sub = string.lower, string.find, string.sub
local math_type = math.type

local M = {}

local function code_of(v, codes, max, what)
  if math_type(v) == "integer" and v >= 0 and v <= max then return v end
  local c = type(v) == "string" and codes[lower(v)]
  if not c then error("filter: unknown " .. what .. " " .. tostring(v), 0) end
  return c
end

-- A set (code -> true) from a name, a number or a list of them.
local function code_set(v, codes, max, what)
  local set = {}
  if type(v) ~= "table" then v = { v } end
  if v[1] == nil then error("filter: empty " .. what .. " list", 0) end
  for _, x in ipairs(v) do set[code_of(x, codes, max, what)] = true end
  return set
end

-- Keep-severity set: a single value is a threshold (it and more severe), a list a set.
local function severity_keep(v)
  if type(v) == "table" then return code_set(v, severity_codes, 7, "severity") end
  local max = code_of(v, severity_codes, 7, "severity")
  local set = {}
  for s = 0, max do set[s] = true end
  return set
end

-- host rule -> exact (lower-case name -> true) and a list of patterns.
local function host_rule(v)
  if type(v) ~= "table" then v = { v } end
  if v[1] == nil then error("filter: empty host list", 0) end
  local exact, patterns = {}, {}
  for _, x in ipairs(v) do
    if type(x) ~= "string" or x == "" or x == "~" then
      error("filter: bad host " .. tostring(x), 0)
    end
    if sub(x, 1, 1) == "~" then
      local pat = sub(x, 2)
      local ok, err = pcall(find, "", pat)
      if not ok then error("filter: bad host pattern " .. x .. ": " .. tostring(err), 0) end
      patterns[#patterns + 1] = pat
    else
      exact[lower(x)] = true
    end
  end
  return exact, patterns
end

local function host_matches(host, exact, patterns)
  if host == nil then return false end
  host = lower(host)
  if exact[host] then return true end
  for i = 1, #patterns do
    if find(host, patterns[i]) then return true end
  end
  return false
end

local KNOWN = { facility = true, severity = true, host = true, exclude = true }

local function check_keys(t, where, allow_exclude)
  for k in pairs(t) do
    if not KNOWN[k] or (k == "exclude" and not allow_exclude) then
      error("filter: unknown key " .. tostring(k) .. where, 0)
    end
  end
end

function M.compile(filter)
  if filter == nil then return {} end
  if type(filter) ~= "table" then error("filter: a table expected", 0) end
  check_keys(filter, "", true)
  local ex = filter.exclude
  if ex ~= nil and type(ex) ~= "table" then error("filter: exclude must be a table", 0) end
  ex = ex or {}
  check_keys(ex, " in exclude", false)

  local f = {}
  if filter.facility ~= nil or filter.severity ~= nil or ex.facility ~= nil
      or ex.severity ~= nil then
    local fac = filter.facility ~= nil and code_set(filter.facility, facility_codes, 23,
      "facility")
    local sev = filter.severity ~= nil and severity_keep(filter.severity)
    local xfac = ex.facility ~= nil and code_set(ex.facility, facility_codes, 23, "facility")
      or {}
    local xsev = ex.severity ~= nil and code_set(ex.severity, severity_codes, 7, "severity")
      or {}
    local pri = {}
    for fc = 0, 23 do
      for s = 0, 7 do
        if (not fac or fac[fc]) and (not sev or sev[s]) and not xfac[fc] and not xsev[s] then
          pri[fc * 8 + s] = true
        end
      end
    end
    f.pri = pri
  end

  if filter.host ~= nil or ex.host ~= nil then
    local keep_exact, keep_pat, drop_exact, drop_pat
    if filter.host ~= nil then keep_exact, keep_pat = host_rule(filter.host) end
    if ex.host ~= nil then drop_exact, drop_pat = host_rule(ex.host) end
    f.host = function(host)
      if keep_exact and not host_matches(host, keep_exact, keep_pat) then return false end
      if drop_exact and host_matches(host, drop_exact, drop_pat) then return false end
      return true
    end
  end
  return f
end

return M
