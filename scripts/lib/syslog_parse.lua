-- scripts/lib/syslog_parse.lua: turns one syslog datagram (RFC 5424, RFC 3164 and the
-- variants devices really send) into one flat record, and turns a record back into an
-- RFC 5424 line for forwarding. Pure Lua 5.4, no C module, no global state.
-- It is the reference for its C port, require "luadgram.syslog" (daemon/codec/syslog_parse.c),
-- which the syslog handler uses: a change to parse goes into both, and
-- spec/syslog_parse_spec.lua and fuzz/fuzz_syslog_c.c check that they agree.
--[==[
API
  local syslog = require "syslog_parse"

  rec = syslog.parse(data [, now [, opts]])
    data  the datagram (a string; any bytes, any length).
    now   epoch seconds of reception (default os.time()); only used to fill in the year
          of RFC 3164 timestamps.
    opts  optional table: opts.tz_offset = seconds east of UTC that RFC 3164 senders use
          for their zone-less local timestamps (syslog.local_offset(now) gives this host's).
  Always returns ONE table and never raises, whatever `data` holds:
    raw            data, untouched
    format         "rfc5424" | "rfc3164" | "unknown" (no PRI and no timestamp: not syslog
                   as far as we can tell; the whole datagram is msg)
    pri            0..191, or nil when the datagram has no valid PRI
    facility, severity, facility_name, severity_name
                   from PRI; without a valid PRI, 1 "user" and 5 "notice" as RFC 3164
                   §4.3.3 says a relay must assume (PRI 13); pri stays nil then
    version        1 for RFC 5424, else nil
    timestamp      ISO 8601 text. RFC 5424 and ISO timestamps in 3164 position: as sent,
                   but 'T' for a space, at most 9 fraction digits (the rest dropped), and
                   the zone appended ("Z" or "+hh:mm") when the time has no offset and
                   opts.tz_offset gives one. "Mmm dd hh:mm:ss": "YYYY-MM-DDThh:mm:ss[.frac]"
                   with the year filled in
                   (a date more than 7 days ahead of `now` is last year's, one more than 358
                   days behind is next year's, so December 31 received on January 1 keeps
                   the old year) and an offset appended only when the zone is known
                   (opts.tz_offset, or a Cisco "UTC"/"GMT" zone name): "Z" or "+hh:mm".
    time           epoch seconds (float when fractional); set exactly when the timestamp
                   carries an offset or the zone is known, nil otherwise
    hostname, app_name, procid, msgid
                   strings or nil (NILVALUE "-" gives nil). For 3164, app_name and procid
                   come from "TAG[pid]:", "TAG:" or a bare "TAG"; the HOSTNAME is taken to be
                   missing when the word after the timestamp ends in ":" or "]" (local
                   syslog(3) sends none). AIX's "Message forwarded from HOST:" gives HOST;
                   Cisco's "HOST: SEQ:" and "HOST SEQ:" give HOST and seq.
    sd             array of { id = "exampleSDID@32473", params = { {name=, value=}, ... } }
                   in message order, duplicates kept, values unescaped; nil when absent
    sd_lenient     true when a value was read leniently: unquoted (up to ' ' or ']', as
                   ESXi sends) or after spaces following '='; else nil
    msg            the message text, always a string: for 5424 the MSG, for 3164 what follows
                   the TAG; a UTF-8 BOM in front is removed and bom = true is set. Up to four
                   trailing LF/CR/NUL bytes (sent by many clients) are not part of it.
    seq            Cisco sequence number ("<189>123: ..."), or nil
    cisco          { facility = "SYS", severity = 5, mnemonic = "CONFIG_I" } for messages
                   carrying "%FACILITY-SEV-MNEMONIC:", or nil; that word is also the TAG
                   (app_name "%SYS-5-CONFIG_I"), as rsyslog and syslog-ng read it
    parse_error    nil, or the first problem found, e.g. "pri out of range", "bad pri",
                   "empty message", "bad HOSTNAME at byte 9", "truncated header",
                   "bad TIMESTAMP at byte 7" (a date or "Mmm dd hh:mm:ss" whose values do
                   not read; the header is read on after it),
                   "bad structured data at byte 57" (also an unescaped ']' in a value),
                   "invalid UTF-8 in MSG at byte 40",
                   "invalid UTF-8 in structured data at byte 30", "data is not a string".
                   Byte numbers are 1-based positions in raw. Nothing is dropped: on a
                   structured data error, msg holds everything from the SD field on.
  Leniency: header fields may be longer than RFC 5424 allows, fractions may have any number
  of digits, and a "1 " after PRI whose next word is neither "-" nor a date is
  read as RFC 3164 content. The RFC 3164 §5.4 examples read as a relay would: in
  "Aug 24 05:34:00 CST 1987 mymachine ..." the hostname is "CST".

  line = syslog.format5424(rec [, fallback_time])
    An RFC 5424 line for `rec` (a record from parse, or any table with the same fields):
    PRI from facility/severity, TIMESTAMP from rec.timestamp when it is valid RFC 5424, else
    from rec.time, else from fallback_time, else "-"; header fields made printable ASCII and
    cut to their RFC lengths; SD re-escaped; MSG byte for byte (BOM restored when rec.bom).

  syslog.facility_names[0..23], syslog.severity_names[0..7]: the names used in records.
  syslog.facility_codes, syslog.severity_codes: name -> number (plus "warn", "error",
    "panic" aliases), for filters in configuration.
  syslog.local_offset([now]): this host's UTC offset in seconds at `now`, for opts.tz_offset.
]==]

local byte, find, format, gsub, sub = string.byte, string.find, string.format, string.gsub, string.sub
local concat = table.concat
local floor, tointeger = math.floor, math.tointeger
local utf8_len = utf8.len
local os_time, os_date = os.time, os.date
local type, tonumber, tostring, error = type, tonumber, tostring, error

local M = {}

local facility_names = { [0] = "kern", "user", "mail", "daemon", "auth", "syslog", "lpr",
  "news", "uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
  "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7" }
local severity_names = { [0] = "emerg", "alert", "crit", "err", "warning", "notice", "info",
  "debug" }
M.facility_names, M.severity_names = facility_names, severity_names

local facility_codes, severity_codes = {}, { warn = 4, error = 3, panic = 0 }
for code = 0, 23 do facility_codes[facility_names[code]] = code end
for code = 0, 7 do severity_codes[severity_names[code]] = code end
M.facility_codes, M.severity_codes = facility_codes, severity_codes

-- Month abbreviations as devices write them: "Oct", "OCT", "oct".
local MONTHS = {}
for i, name in ipairs { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
  "Nov", "Dec" } do
  MONTHS[name], MONTHS[name:upper()], MONTHS[name:lower()] = i, i, i
end
local MONTH_DAYS = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local TWO_DIGITS = {}
for i = 0, 99 do TWO_DIGITS[i] = format("%02d", i) end

local DAY = 86400
local BOM = "\239\187\191"

-- Printable US-ASCII except '=', ' ', ']' and '"': RFC 5424 SD-NAME.
local SD_NAME = "^[!#-<>-\\^-~]+"
local SD_NAME_BAD = "[^!#-<>-\\^-~]"
local SD_PARAM = '^ ([!#-<>-\\^-~]+)="([^"\\%]]*)"'

---------------------------------------------------------------------------------------
-- Calendar arithmetic (proleptic Gregorian, UTC), so no os.time/os.date per message.

-- Days since 1970-01-01 of year y, month m, day d (H. Hinnant's days_from_civil).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * (m > 2 and m - 3 or m + 9) + 2) // 5 + d - 1
  return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
end

-- Year, month, day of a day number since 1970-01-01 (the inverse of days_from_civil).
local function civil_from_days(z)
  z = z + 719468
  local era = z // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local m = mp < 10 and mp + 3 or mp - 9
  return yoe + era * 400 + (m <= 2 and 1 or 0), m, doy - (153 * mp + 2) // 5 + 1
end

local function days_in_month(y, m)
  if m ~= 2 then return MONTH_DAYS[m] end
  return (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) and 29 or 28
end

-- "Z" for 0, "+hh:mm" / "-hh:mm" otherwise, "" when the offset is unknown (nil).
local function offset_string(off)
  if not off then return "" end
  if off == 0 then return "Z" end
  local sign = "+"
  if off < 0 then sign, off = "-", -off end
  return sign .. TWO_DIGITS[off // 3600] .. ":" .. TWO_DIGITS[off % 3600 // 60]
end

-- The year of a yearless "Mmm dd hh:mm:ss" (wall-clock seconds of day `secs`) that puts it
-- within (now - 358 days, now + 7 days], `now` read on the same wall clock.
local function fill_year(mon, day, secs, wall_now)
  local y = civil_from_days(wall_now // DAY)
  local t = days_from_civil(y, mon, day) * DAY + secs
  if t > wall_now + 7 * DAY then
    return y - 1
  elseif t <= wall_now - 358 * DAY then
    return y + 1
  end
  return y
end

-- Parses an RFC 3339 date-time starting at p (also with a space for 'T', and an offset
-- without its colon: "+0100"). Returns the index of its last byte, its wall-clock seconds
-- (as if UTC; float with a fraction, of which the first 9 digits count), its offset in
-- seconds east of UTC (nil when it has none) and the range of fraction digits past the
-- ninth, which its text drops (nil when none); or nil when there is no valid date-time at p.
local function parse_rfc3339(data, p)
  local _, e = find(data, "^%d%d%d%d%-%d%d%-%d%d[Tt ]%d%d:%d%d:%d%d", p)
  if not e then return nil end
  -- Digits by arithmetic on their bytes: one call instead of six captures and tonumbers.
  local y1, y2, y3, y4, _, m1, m2, _, d1, d2, _, h1, h2, _, i1, i2, _, s1, s2 = byte(data, p, e)
  local y = y1 * 1000 + y2 * 100 + y3 * 10 + y4 - 53328 -- 53328 = 1111 * '0'
  local mon, d = m1 * 10 + m2 - 528, d1 * 10 + d2 - 528  -- 528 = 11 * '0'
  local h, mi, s = h1 * 10 + h2 - 528, i1 * 10 + i2 - 528, s1 * 10 + s2 - 528
  if mon < 1 or mon > 12 or d < 1 or d > days_in_month(y, mon) or h > 23 or mi > 59
      or s > 60 then
    return nil
  end
  local wall = days_from_civil(y, mon, d) * DAY + h * 3600 + mi * 60 + s
  local cut_from, cut_to
  if byte(data, e + 1) == 46 then -- '.'
    local fs, fe = find(data, "^%.%d+", e + 1)
    if not fe then return nil end
    if fe > fs + 9 then cut_from, cut_to = fs + 10, fe end
    wall = wall + tonumber(sub(data, fs, cut_from and fs + 9 or fe))
    e = fe
  end
  local c = byte(data, e + 1)
  if c == 90 or c == 122 then -- 'Z' / 'z'
    return e + 1, wall, 0, cut_from, cut_to
  end
  local _, oe = find(data, "^[+-]%d%d:?%d%d", e + 1)
  if not oe then return e, wall, nil, cut_from, cut_to end
  local sign, oh1, oh2 = byte(data, e + 1, e + 3)
  local om1, om2 = byte(data, oe - 1, oe)
  local oh, om = oh1 * 10 + oh2 - 528, om1 * 10 + om2 - 528
  if oh > 23 or om > 59 then return nil end
  local off = oh * 3600 + om * 60
  return oe, wall, sign == 43 and off or -off, cut_from, cut_to -- '+'
end

-- Sets rec.timestamp and rec.time from the RFC 3339 date-time data[p..te] (parse_rfc3339's
-- results): its text as sent but with 'T' for a space and at most 9 fraction digits, plus
-- the zone tz when it has no offset (time then only when tz is known).
local function set_iso_timestamp(rec, data, p, te, wall, off, cut_from, cut_to, tz)
  local text = cut_from and sub(data, p, cut_from - 1) .. sub(data, cut_to + 1, te)
    or sub(data, p, te)
  if byte(text, 11) == 32 then text = sub(text, 1, 10) .. "T" .. sub(text, 12) end
  if off then
    rec.timestamp, rec.time = text, wall - off
  else
    rec.timestamp = text .. offset_string(tz)
    if tz then rec.time = wall - tz end
  end
end

-- "^%d%d%d%d%-%d": the start of a date, read as a TIMESTAMP that must parse.
local function looks_like_date(data, p)
  return find(data, "^%d%d%d%d%-%d", p) ~= nil
end

-- The last index of the word at p: up to the next space or n.
local function word_end(data, p, n)
  local s = find(data, " ", p, true)
  if not s or s > n + 1 then return n end
  return s - 1
end

---------------------------------------------------------------------------------------
-- Pieces shared by both formats.

-- Sets rec.msg to data[p..n], without a leading BOM, and checks that it is UTF-8.
local function finish_msg(rec, data, p, n)
  if p + 2 <= n and byte(data, p) == 0xEF and byte(data, p + 1) == 0xBB
      and byte(data, p + 2) == 0xBF then
    rec.bom = true
    p = p + 3
  end
  if p <= n then
    local ok, bad = utf8_len(data, p, n)
    if not ok and not rec.parse_error then
      rec.parse_error = "invalid UTF-8 in MSG at byte " .. bad
    end
  end
  rec.msg = sub(data, p, n)
end

---------------------------------------------------------------------------------------
-- RFC 5424

-- Parses SD-ELEMENTs from the '[' at p. Returns the array, the index after the last ']'
-- and whether a value was read leniently (unquoted, up to ' ' or ']', or after spaces
-- following '='), or nil and the index of the offending byte (an unescaped ']' in a quoted
-- value is one: RFC 5424 forbids it).
local function parse_sd(data, p)
  local sd, nsd, lenient = {}, 0, false
  repeat
    local _, e = find(data, SD_NAME, p + 1)
    if not e then return nil, p + 1 end
    local params, nparams = {}, 0
    nsd = nsd + 1
    sd[nsd] = { id = sub(data, p + 1, e), params = params }
    p = e + 1
    while byte(data, p) == 32 do
      -- Fast path: a quoted value without backslashes or ']', in one match.
      local _, pe, name, value = find(data, SD_PARAM, p)
      if not pe then
        local ne
        _, ne = find(data, SD_NAME, p + 1)
        if not ne then return nil, p + 1 end
        if byte(data, ne + 1) ~= 61 then return nil, ne + 1 end    -- '='
        local v = ne + 2                                            -- the opening '"'
        while byte(data, v) == 32 do v, lenient = v + 1, true end
        name = sub(data, p + 1, ne)
        if byte(data, v) ~= 34 then                                 -- unquoted
          local ve = find(data, "[ %]]", v)
          if not ve then return nil, v end
          value, pe, lenient = sub(data, v, ve - 1), ve - 1, true
        else
          local q, qe = v + 1, nil
          while true do -- one step per '"', '\\' or ']', not per byte
            qe = find(data, '["\\%]]', q)
            if not qe then return nil, v end                        -- unterminated value
            local c = byte(data, qe)
            if c == 34 then break end
            if c == 93 then return nil, qe end                      -- an unescaped ']'
            q = qe + 2
          end
          value = gsub(sub(data, v + 1, qe - 1), '\\(["\\%]])', "%1")
          pe = qe
        end
      end
      nparams = nparams + 1
      params[nparams] = { name = name, value = value }
      p = pe + 1
    end
    if byte(data, p) ~= 93 then return nil, p end                  -- ']'
    p = p + 1
  until byte(data, p) ~= 91                                        -- '['
  return sd, p, lenient
end

local FIELD_KEYS = { "hostname", "app_name", "procid", "msgid" }
local FIELD_NAMES = { "HOSTNAME", "APP-NAME", "PROCID", "MSGID" }

-- The slow path for a header that is not four printable words and a space: keeps the
-- fields before the bad one, names it in parse_error, and makes the rest MSG.
local function header_error(rec, data, p, n)
  for i = 1, 4 do
    local _, e = find(data, "^[!-~]+", p)
    if not e or e >= n or byte(data, e + 1) ~= 32 then
      if not rec.parse_error then
        if e and e >= n then
          rec.parse_error = "truncated header"
        else
          rec.parse_error = "bad " .. FIELD_NAMES[i] .. " at byte " .. (e and e + 1 or p)
        end
      end
      break
    end
    if e > p or byte(data, p) ~= 45 then rec[FIELD_KEYS[i]] = sub(data, p, e) end
    p = e + 2
  end
  finish_msg(rec, data, p, n)
  return true
end

-- STRUCTURED-DATA at p, then [SP MSG].
local function parse_5424_sd(rec, data, p, n)
  if p > n then
    rec.parse_error = rec.parse_error or "truncated header"
    return true
  end
  local c = byte(data, p)
  local sd_start = p
  if c == 45 then -- '-'
    p = p + 1
  elseif c == 91 then -- '['
    local sd, np, lenient = parse_sd(data, p)
    if not sd then
      rec.parse_error = rec.parse_error or ("bad structured data at byte " .. np)
      finish_msg(rec, data, sd_start, n)
      return true
    end
    rec.sd, p = sd, np
    if lenient then rec.sd_lenient = true end
  else
    rec.parse_error = rec.parse_error or ("bad structured data at byte " .. p)
    finish_msg(rec, data, p, n)
    return true
  end
  if p <= n and byte(data, p) ~= 32 then
    rec.sd, rec.sd_lenient = nil, nil
    rec.parse_error = rec.parse_error or ("bad structured data at byte " .. p)
    finish_msg(rec, data, sd_start, n)
    return true
  end
  if c == 91 and not rec.parse_error then -- SD names are ASCII: this checks the values
    local ok, bad = utf8_len(data, sd_start, p - 1)
    if not ok then rec.parse_error = "invalid UTF-8 in structured data at byte " .. bad end
  end
  if p < n then finish_msg(rec, data, p + 1, n) end
  return true
end

-- Parses what follows "<PRI>1 " at p. Returns false (rec untouched) when the next word is
-- neither NILVALUE, nor an RFC 3339 timestamp, nor a date that does not read (an error), so
-- the caller reads it as RFC 3164. tz: the zone of a timestamp without an offset.
local function parse_5424(rec, data, p, n, tz)
  if byte(data, p) == 45 and byte(data, p + 1) == 32 then -- "- "
    p = p + 2
  else
    local te, wall, off, cut_from, cut_to = parse_rfc3339(data, p)
    if te and byte(data, te + 1) == 32 then
      set_iso_timestamp(rec, data, p, te, wall, off, cut_from, cut_to, tz)
      p = te + 2
    elseif looks_like_date(data, p) then -- a date that does not read: say so, go on
      rec.parse_error = rec.parse_error or ("bad TIMESTAMP at byte " .. p)
      p = word_end(data, p, n) + 2
    else
      return false
    end
  end
  rec.format, rec.version = "rfc5424", 1
  local _, he, host, app, procid, msgid = find(data, "^([!-~]+) ([!-~]+) ([!-~]+) ([!-~]+) ", p)
  if he and he <= n then
    if host ~= "-" then rec.hostname = host end
    if app ~= "-" then rec.app_name = app end
    if procid ~= "-" then rec.procid = procid end
    if msgid ~= "-" then rec.msgid = msgid end
    p = he + 1
  else
    return header_error(rec, data, p, n)
  end
  return parse_5424_sd(rec, data, p, n)
end

---------------------------------------------------------------------------------------
-- RFC 3164 and friends

-- Reads a timestamp at p: "Mmm dd hh:mm:ss", "Mmm dd yyyy hh:mm:ss" (with a Cisco '*' or
-- '.' in front, ".mmm" after, then ":" or " ZONE:"), RFC 3339, or, after a Cisco prefix
-- only (NX-OS), "yyyy Mmm dd hh:mm:ss". Fills rec.timestamp/rec.time and returns the index
-- after the timestamp and its separator (a Cisco ':' or " ZONE:" included). A timestamp's
-- shape with values that do not read is an error ("bad TIMESTAMP"): the index after it is
-- returned. Returns nil when there is no timestamp at p.
local function parse_3164_time(rec, data, p, n, now, tz, after_cisco_prefix)
  local c = byte(data, p)
  if not c then return nil end
  local _, e, ms, ds, ys, hpos
  if c >= 48 and c <= 57 then -- a digit
    if byte(data, p + 4) == 45 then -- "yyyy-": ISO 8601 in 3164 position
      local te, wall, off, cut_from, cut_to = parse_rfc3339(data, p)
      if te and (te >= n or byte(data, te + 1) == 32) then
        set_iso_timestamp(rec, data, p, te, wall, off, cut_from, cut_to, tz)
        return te + 2
      elseif looks_like_date(data, p) then
        rec.parse_error = rec.parse_error or ("bad TIMESTAMP at byte " .. p)
        return word_end(data, p, n) + 2
      end
      return nil
    end
    if not after_cisco_prefix then return nil end
    _, e, ys, ms, ds, hpos = find(data, "^(%d%d%d%d) (%a%a%a) +(%d%d?) ()%d%d:%d%d:%d%d", p)
  else
    _, e, ms, ds, hpos = find(data, "^[%*%.]?(%a%a%a) +(%d%d?) ()%d%d:%d%d:%d%d", p)
    if not e then
      _, e, ms, ds, ys, hpos = find(data,
        "^[%*%.]?(%a%a%a) +(%d%d?) (%d%d%d%d) ()%d%d:%d%d:%d%d", p)
    end
  end
  if not e then return nil end
  local mon = MONTHS[ms]
  if not mon then return nil end
  local h1, h2, _, i1, i2, _, s1, s2 = byte(data, hpos, hpos + 7)
  local d, h, mi, s = tonumber(ds), h1 * 10 + h2 - 528, i1 * 10 + i2 - 528, s1 * 10 + s2 - 528
  local y = ys and tonumber(ys)
  if d < 1 or d > (y and days_in_month(y, mon) or MONTH_DAYS[mon]) or h > 23 or mi > 59
      or s > 60 then -- a timestamp's shape with values that do not read
    rec.parse_error = rec.parse_error or ("bad TIMESTAMP at byte " .. p)
    return word_end(data, hpos, n) + 2
  end
  local frac = ""
  if byte(data, e + 1) == 46 then -- '.'
    local fs, fe = find(data, "^%.%d+", e + 1)
    if not fe then return nil end
    frac, e = sub(data, fs, fe > fs + 9 and fs + 9 or fe), fe -- the digits that fit: 9
  end
  local q = e + 2
  c = byte(data, e + 1)
  if c == 58 then -- "hh:mm:ss:" Cisco
    if e + 1 < n and byte(data, e + 2) ~= 32 then return nil end
    q = e + 3
  elseif c == 32 then
    local c2 = byte(data, e + 2)
    local _, ze, zone
    if c2 and c2 >= 65 and c2 <= 90 then -- Cisco "hh:mm:ss UTC: %SYS-..."
      _, ze, zone = find(data, "^ (%u%u%u?%u?%u?): %%", e + 1)
    end
    if ze then
      q = ze
      tz = (zone == "UTC" or zone == "GMT") and 0 or nil
    end
  elseif e < n then
    return nil
  end
  local secs = h * 3600 + mi * 60 + s
  y = y or fill_year(mon, d, secs, now + (tz or 0))
  -- One concatenation (a single VM instruction) is much cheaper than string.format here.
  rec.timestamp = (y >= 1000 and y or format("%04d", y)) .. "-" .. TWO_DIGITS[mon] .. "-"
    .. TWO_DIGITS[d] .. "T" .. sub(data, hpos, hpos + 7) .. frac .. offset_string(tz)
  if tz then
    rec.time = days_from_civil(y, mon, d) * DAY + secs - tz + (tonumber(frac) or 0)
  end
  return q
end

-- The TAG at p, as rsyslog and syslog-ng read it: "TAG[pid]:", "TAG[pid]", "TAG:" or a bare
-- "TAG" (TAG: 1 to 255 bytes of printable ASCII or TAB (Snare's "MSWinEventLog\t1\t...")
-- but ':' '[' ']', or none before "[pid]"; pid: up to 128 bytes of
-- printable ASCII but '[' ']'). A bare TAG must be followed by a space or the end; after a
-- ':' or ']' the text may follow without a space ("tag:msgnum:3"). Sets app_name and procid
-- and returns the index of the message text after it (one space skipped), or p when there
-- is no tag. Runs of allowed bytes are measured first, so nothing backtracks.
local function parse_tag(rec, data, p, n)
  local _, te = find(data, "^[!-9;-Z\\^-~\t]*", p)
  -- no TAG before "[pid]" ("[app]: text"): procid only, as both peers read it
  if not te or te - p >= 255 or (te < p and byte(data, p) ~= 91) then return p end
  local e, pid = te + 1, nil
  local c = byte(data, e)
  if e > n or c == 32 then -- a bare TAG: "tag This msg", "-- MARK --", a lone word
    rec.app_name = sub(data, p, te)
    return e + 1
  end
  if c == 91 then -- '['
    local _, pe = find(data, "^[!-Z\\^-~]*", e + 1)
    if byte(data, pe + 1) ~= 93 or pe - e > 128 then return p end
    if pe > e then pid = sub(data, e + 1, pe) end
    e = pe + 2
    if byte(data, e) == 58 then e = e + 1 end -- "]:"
  elseif c == 58 then -- ':'
    e = e + 1
  else
    return p
  end
  if te >= p then rec.app_name = sub(data, p, te) end
  rec.procid = pid
  if e <= n and byte(data, e) == 32 then return e + 1 end
  return e
end

-- Whether data[p..e] looks like an IPv6 address: hex digits, '.' and at least two ':'.
local function is_ipv6ish(data, p, e)
  local _, xe = find(data, "^[%x:%.]+", p)
  if xe ~= e then return false end
  local c1 = find(data, ":", p, true)
  local c2 = c1 and find(data, ":", c1 + 1, true)
  return c2 ~= nil and c2 <= e
end

-- Cisco with the host first: "HOST: SEQ: TIMESTAMP: ..." or "HOST SEQ: ..." followed by a
-- timestamp or "%FAC-...". Sets hostname, seq and the timestamp and returns where the rest
-- starts; nil (rec untouched) otherwise.
local function host_before_seq(rec, data, p, n, now, tz)
  local _, se, sq = find(data, "^[!-9;-~]+:? (%d+): ", p)
  if not se or #sq > 15 then return nil end
  local host_end = find(data, "[: ]", p) - 1
  local q = parse_3164_time(rec, data, se + 1, n, now, tz, true)
  if not q then
    if byte(data, se + 1) ~= 37 then return nil end -- '%'
    q = se + 1
  end
  rec.hostname, rec.seq = sub(data, p, host_end), tointeger(tonumber(sq))
  return q
end

-- AIX relays "Message forwarded from HOST: TAG...": the original HOSTNAME (as rsyslog's
-- pmaixforwardedfrom). Returns where the TAG starts, or p.
local function aix_forwarded_from(rec, data, p, n)
  if byte(data, p) ~= 77 then return p end -- 'M'
  local _, e, host = find(data, "^Message forwarded from ([!-9;-~]+):", p)
  if not e or e - 1 > n then return p end
  rec.hostname, p = host, e + 1
  while p <= n and byte(data, p) == 32 do p = p + 1 end
  return p
end

-- Parses from p (after PRI, if any) as RFC 3164 / BSD / Cisco.
local function parse_3164(rec, data, p, n, has_pri, now, tz)
  local cisco_prefix = false
  if has_pri then -- stray spaces after the PRI: "<167> Mar  7 ...", "<15> openvpn[2499]: ..."
    while p <= n and byte(data, p) == 32 do p = p + 1 end
  end
  local c = byte(data, p)
  if has_pri and c and c <= 58 and c >= 48 then -- a digit or ':'
    local _, e = find(data, "^%d+: ", p) -- Cisco sequence number
    if e and e - p <= 16 then
      rec.seq = tointeger(tonumber(sub(data, p, e - 2)))
      p, cisco_prefix = e + 1, true
    elseif byte(data, p) == 58 and byte(data, p + 1) == 32 then -- NX-OS ": "
      p, cisco_prefix = p + 2, true
    end
  end
  local q = parse_3164_time(rec, data, p, n, now, tz, cisco_prefix)
  if not q and cisco_prefix then
    -- "SEQ: HOST: TIMESTAMP: ..." or "SEQ: HOST: %FAC-..." (logging origin-id)
    local _, he = find(data, "^[!-9;-~]+: ", p)
    if he then
      q = parse_3164_time(rec, data, he + 1, n, now, tz, true)
      if q or byte(data, he + 1) == 37 then
        rec.hostname = sub(data, p, he - 2)
        q = q or he + 1
      end
    end
  end
  if not q and has_pri and not cisco_prefix then
    q = host_before_seq(rec, data, p, n, now, tz)
  end
  if q then
    p = q
    while p <= n and byte(data, p) == 32 do p = p + 1 end -- stray spaces after the time
    if not rec.hostname then p = aix_forwarded_from(rec, data, p, n) end
    if not rec.hostname then -- after "hh:mm:ss:" too, as rsyslog: "...: host tag: "
      -- HOSTNAME, unless the word is really the TAG (local syslog(3) sends no hostname)
      local _, he = find(data, "^[!-~]+ ", p)
      if he then
        local last = byte(data, he - 1)
        -- an IPv6 address ending in "::" is a HOSTNAME, not a TAG
        if (last ~= 58 and last ~= 93) or is_ipv6ish(data, p, he - 1) then -- ':' ']'
          rec.hostname = sub(data, p, he - 1)
          p = he + 1
          while p <= n and byte(data, p) == 32 do p = p + 1 end -- stray spaces after it
        end
      end
    end
  elseif not has_pri then
    finish_msg(rec, data, p, n) -- no PRI, no timestamp: format stays "unknown"
    return
  end
  rec.format = "rfc3164"
  c = byte(data, p)
  if c == 58 and byte(data, p + 1) == 32 and byte(data, p + 2) == 37 then -- ASA "host : %"
    p, c = p + 2, 37
  end
  if c == 37 then -- '%': Cisco "%FACILITY[-SUB]-SEV-MNEMONIC:", the TAG as the peers read it
    local _, _, fac, sev, mnemonic = find(data, "^%%([%w_][%w_%-]-)%-(%d)%-([%w_]+):", p)
    if fac then rec.cisco = { facility = fac, severity = tonumber(sev), mnemonic = mnemonic } end
  end
  if c then p = parse_tag(rec, data, p, n) end
  finish_msg(rec, data, p, n)
end

---------------------------------------------------------------------------------------
-- Public functions

local function tz_from(opts)
  if type(opts) ~= "table" then return nil end
  local off = opts.tz_offset
  off = type(off) == "number" and tointeger(off)
  if off and off > -DAY and off < DAY then return off end
  return nil
end

function M.parse(data, now, opts)
  if type(data) ~= "string" then
    return { raw = data, format = "unknown", facility = 1, severity = 5,
      facility_name = "user", severity_name = "notice", msg = "",
      parse_error = "data is not a string" }
  end
  -- Every key a record can get is named here so the table is sized once (nil values
  -- take no room but reserve a hash slot).
  local rec = { raw = data, format = "unknown", pri = nil, facility = 1, severity = 5,
    facility_name = "user", severity_name = "notice", version = nil, timestamp = nil,
    time = nil, hostname = nil, app_name = nil, procid = nil, msgid = nil, sd = nil,
    sd_lenient = nil, msg = "", bom = nil, seq = nil, cisco = nil, parse_error = nil }
  local n = #data
  if n == 0 then
    rec.parse_error = "empty message"
    return rec
  end
  for _ = 1, 4 do -- trailing LF, CR, NUL
    local c = byte(data, n)
    if c ~= 10 and c ~= 13 and c ~= 0 then break end
    n = n - 1
    if n == 0 then break end
  end
  local p, has_pri = 1, false
  local c0, c1, c2, c3, c4 = byte(data, 1, 5)
  local pri -- fast path: "<d>", "<dd>", "<ddd>" read from the bytes, no pattern
  if c0 == 60 and c1 and c1 >= 48 and c1 <= 57 then -- '<' digit
    if c2 == 62 then -- '>'
      pri, p = c1 - 48, 4
    elseif c2 and c2 >= 48 and c2 <= 57 then
      if c3 == 62 then
        pri, p = c1 * 10 + c2 - 528, 5
      elseif c4 == 62 and c3 and c3 >= 48 and c3 <= 57 then
        pri, p = c1 * 100 + c2 * 10 + c3 - 5328, 6 -- 5328 = 111 * '0'
      end
    end
  end
  if pri and pri <= 191 then
    local fac, sev = pri >> 3, pri & 7
    has_pri = true
    rec.pri, rec.facility, rec.severity = pri, fac, sev
    rec.facility_name, rec.severity_name = facility_names[fac], severity_names[sev]
  elseif c0 == 60 then -- '<'
    p = 1
    local _, e, digits = find(data, "^<(%d*)>")
    if e then
      has_pri, p = true, e + 1
      local code = #digits <= 3 and tonumber(digits)
      if code and code <= 191 then
        local fac, sev = code >> 3, code & 7
        rec.pri, rec.facility, rec.severity = code, fac, sev
        rec.facility_name, rec.severity_name = facility_names[fac], severity_names[sev]
      elseif digits == "" or #digits > 3 then
        rec.parse_error = "bad pri"
      else
        rec.parse_error = "pri out of range"
      end
    end
  end
  local tz = tz_from(opts)
  if has_pri and byte(data, p) == 49 and byte(data, p + 1) == 32
      and parse_5424(rec, data, p + 2, n, tz) then
    return rec
  end
  if type(now) ~= "number" or now ~= now or now > 1e12 or now < -1e12 then
    now = os_time()
  end
  parse_3164(rec, data, p, n, has_pri, floor(now), tz)
  return rec
end

-- This host's offset from UTC in seconds at `now` (default: the current time).
function M.local_offset(now)
  now = floor(tonumber(now) or os_time())
  local t = os_date("*t", now)
  return days_from_civil(t.year, t.month, t.day) * DAY + t.hour * 3600 + t.min * 60
    + t.sec - now
end

---------------------------------------------------------------------------------------
-- RFC 5424 output

local function is_5424_timestamp(ts)
  if type(ts) ~= "string" then return false end
  local e, _, off = parse_rfc3339(ts, 1)
  return e == #ts and off ~= nil and not find(ts, "%.%d%d%d%d%d%d%d")
end

local function iso_utc(t)
  local secs = floor(t)
  local us = floor((t - secs) * 1e6 + 0.5)
  if us >= 1000000 then secs, us = secs + 1, us - 1000000 end
  local y, m, d = civil_from_days(secs // DAY)
  local sod = secs % DAY
  local frac = us > 0 and format(".%06d", us) or ""
  return format("%04d-%02d-%02dT%02d:%02d:%02d%sZ", y, m, d, sod // 3600, sod % 3600 // 60,
    sod % 60, frac)
end

-- A header field: NILVALUE when absent, else printable ASCII cut to `max` bytes.
local function header_field(v, max)
  if v == nil then return "-" end
  v = tostring(v)
  if v == "" then return "-" end
  if find(v, "[^!-~]") then v = gsub(v, "[^!-~]", "_") end
  if #v > max then v = sub(v, 1, max) end
  return v
end

local function sd_name(v)
  v = tostring(v)
  if find(v, SD_NAME_BAD) then v = gsub(v, SD_NAME_BAD, "_") end
  if #v > 32 then v = sub(v, 1, 32) end
  return v
end

local function format_sd(sd)
  if type(sd) ~= "table" or sd[1] == nil then return "-" end
  local buf, k = {}, 0
  for i = 1, #sd do
    local elem = sd[i]
    local id = type(elem) == "table" and elem.id and sd_name(elem.id) or ""
    if id ~= "" then
      buf[k + 1], buf[k + 2] = "[", id
      k = k + 2
      local params = elem.params
      if type(params) == "table" then
        for j = 1, #params do
          local param = params[j]
          local name = type(param) == "table" and param.name and sd_name(param.name) or ""
          if name ~= "" then
            local value = gsub(tostring(param.value or ""), '["\\%]]', "\\%0")
            k = k + 1
            buf[k] = format(' %s="%s"', name, value)
          end
        end
      end
      k = k + 1
      buf[k] = "]"
    end
  end
  if k == 0 then return "-" end
  return concat(buf, "", 1, k)
end

local function code_or(v, max, default)
  v = type(v) == "number" and tointeger(v)
  if v and v >= 0 and v <= max then return v end
  return default
end

function M.format5424(rec, fallback_time)
  if type(rec) ~= "table" then
    error(format("bad argument #1 to 'format5424' (table expected, got %s)", type(rec)), 2)
  end
  local pri = code_or(rec.facility, 23, 1) * 8 + code_or(rec.severity, 7, 5)
  local ts = rec.timestamp
  if not is_5424_timestamp(ts) then
    local t = rec.time
    if type(t) ~= "number" or t ~= t or t > 1e12 or t < -6e10 then t = fallback_time end
    if type(t) == "number" and t == t and t < 1e12 and t > -6e10 then
      ts = iso_utc(t)
    else
      ts = "-"
    end
  end
  local msg = rec.msg
  local tail = ""
  if type(msg) == "string" and (msg ~= "" or rec.bom) then
    tail = rec.bom and " " .. BOM .. msg or " " .. msg
  end
  return format("<%d>1 %s %s %s %s %s %s%s", pri, ts, header_field(rec.hostname, 255),
    header_field(rec.app_name, 48), header_field(rec.procid, 128),
    header_field(rec.msgid, 32), format_sd(rec.sd), tail)
end

return M
