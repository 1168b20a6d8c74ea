-- scripts/snmptrap.lua: an SNMP notification receiver (what snmptrapd does): decodes SNMPv1
-- traps, SNMPv2c traps and informs, and SNMPv3 (USM) traps and informs with luadgram.ber (C),
-- applies the listener's community allow-list or users, acknowledges informs, and hands
-- every accepted notification to a Lua callback and to the collector's pipeline
-- (scripts/lib/collector.lua: a JSON Lines file, NATS JetStream, Redis Streams). Counts and
-- reports every drop.
-- Without a callback no record table is built: ber.trap_json writes the decoded part of the
-- line, and peer and dst straight from the message (ber.PEER_DST), in C; the handler adds
-- time and listener (the same line, field for field, as encoding the record table with
-- lua-cjson).
--[==[
Configuration
  listen "snmptrap" {
    bind    = "[::]:162",                -- dual-stack; IPv4 senders show as plain IPv4
    handler = "snmptrap",
    recv    = { timestamp = true },      -- record.time from the kernel's receive time
    options = {
      communities  = { "public" },       -- accepted communities; absent: any community
      file         = "/var/log/luadgramd/snmptrap.jsonl",
                     -- or { path =, flush_interval = 1, buffer_size =, max_pending =,
                     -- mkdir = } (output_jsonl); relative to the configuration's folder;
                     -- absent or false: no file (then on_trap is required)
      nats         = { servers =, subject =, stream =, ... },  -- luadgram.nats's options
      redis        = { server =, stream =, ... },              -- luadgram.redis's options
                     -- (README, Outputs): each JSON line published there too
      on_trap      = "mytraps",          -- a module on script_path returning function(record,
                                         -- msg), or a table with an on_trap function
      log_interval = 10,                 -- seconds: at most one log line per kind of drop
      mibs = { dirs = { "/usr/share/snmp/mibs" }, modules = { "IF-MIB" } },
                     -- MIB names (optional): the modules (and what they import) are loaded
                     -- from dirs only (relative: to the configuration's folder) with libsmi
                     -- at init, into a table of this listener's; then trap_name, name and
                     -- value_name below. A module that does not load fails the init.
      users = {                          -- SNMPv3 users (absent: v3 is unsupported)
        { name = "ops", auth = "SHA-256", auth_pass = "...", priv = "AES", priv_pass = "...",
          engine_id = "80001f88...",     -- traps from this engine only; absent: any engine
          level = "authPriv" },          -- lowest level accepted (default: the user's keys')
      },                                 -- auth_key / priv_key: localized keys in hex
      engine_id = "80001f88...",         -- ours, for informs; absent: the state file's
      state_dir = "/var/lib/luadgramd",  -- the engine state file's folder (default:
                                         -- $STATE_DIRECTORY, else beside the output file)
    },
  }
An unknown option is an error (a misspelt "communities" must not accept everything).

A record (one JSON object per line; the callback gets the same table before it is written):
  time        receive time, RFC 3339 UTC ("2024-03-05T10:11:12.345678Z"): msg.time when the
              listener has recv.timestamp, else the loop's clock
  listener, peer ("ip:port", "[ip6]:port"), dst (the address it was sent to, "ip:port")
  version     "v1" | "v2c" | "v3";   community (text; hex "70 75 62" with community_hex =
              true when it is not printable UTF-8; not in v3)
  user, security_level, engine_id, context_engine_id, context_name     v3 only: the user
              (user_hex as community_hex), "noAuthNoPriv" | "authNoPriv" | "authPriv", the
              authoritative engine (the trap's sender, or us for an inform) and the context
              engine in plain hex, the context name (context_name_hex likewise)
  pdu         "trap" (SNMPv1 Trap-PDU) | "trapv2" (SNMPv2-Trap-PDU) | "inform"
  request_id  trapv2 and inform
  trap_oid, uptime   the SNMPv2 view (RFC 3584 §3.1 for v1): snmpTrapOID.0 and sysUpTime.0
              (v1: enterprise.0.specific, or snmpTraps.(generic+1); the time-stamp); absent
              when a v2c notification does not start with those two bindings
  enterprise, agent_addr, generic_trap, specific_trap     v1 only
  bindings    the variable bindings as sent: { oid =, type =, value = } with type one of
              INTEGER, Counter32, Gauge32, TimeTicks (integers), Counter64 (decimal string),
              OCTET STRING (text, or hex "de ad" with hex = true), Opaque (hex, hex = true,
              and opaque_type/opaque_value for net-snmp's wrapped Float, Double, Integer64,
              Unsigned64, Counter64; 64-bit integers as decimal strings), OBJECT IDENTIFIER
              ("1.3.6..."), IpAddress ("a.b.c.d"), NULL, noSuchObject, noSuchInstance,
              endOfMibView (no value). v2c traps start with sysUpTime.0 and snmpTrapOID.0.
              No bindings: {} (lua-cjson 2.1 writes an empty table as an object).
  With options.mibs, when the MIB table names them (the longest named prefix of the OID):
  trap_name   trap_oid's name, "IF-MIB::linkDown"
  bindings[i].name        "IF-MIB::ifIndex.2" (MODULE::descriptor, then the other arcs)
  bindings[i].value_name  an INTEGER's label in its object's enumeration ("up")

Order per datagram (both paths: the record table when there is a callback, else the line
from ber.trap_json, or usm:decode_snmp / usm:trap_json with users): decode; drop (counted,
logged at most once per log_interval with the reason and the peer) SNMPv2u, SNMPv3 without
users and non-notification PDUs (unsupported), malformed packets, SNMPv3 messages USM
rejects (under their usmStats names; a reportable one gets its Report, reports_sent), and
communities not in the list (community_rejected); then the callback under pcall (an
error is counted and logged, the record is still written; returning false keeps the record
out of the file: filtered); then the sinks (file, nats, redis: the same line to each); then,
for an inform, the Response-PDU through msg:reply, unless a sink dropped the record, so that
the sender retries.

Counters in /metrics (luadgramd_user_snmptrap_<listener>_<name>, every character of the
listener's name but letters, digits and _ as _; totals of all workers, published every
second): received (every datagram) = decoded (well-formed traps and informs) + malformed +
unsupported + usmStatsUnsupportedSecLevels + usmStatsNotInTimeWindows +
usmStatsUnknownUserNames + usmStatsUnknownEngineIDs + usmStatsWrongDigests +
usmStatsDecryptionErrors; reports_sent, usm_key_evictions, community_rejected, filtered,
written (JSON lines in the file), informs_acked,
callback_errors, output_errors (records the file, nats or redis lost), reply_errors.
]==]
local luadgram = require "luadgram"
local ber = require "luadgram.ber"

local cjson = require "cjson"

local decode_snmp, inform_response, trap_json = ber.decode_snmp, ber.inform_response,
                                                ber.trap_json
local mib_names        -- the luadgram.mib table of options.mibs, or nil
local USM_STATS = { "usmStatsUnsupportedSecLevels", "usmStatsNotInTimeWindows",
                    "usmStatsUnknownUserNames", "usmStatsUnknownEngineIDs",
                    "usmStatsWrongDigests", "usmStatsDecryptionErrors" }
local PEER_DST = ber.PEER_DST
local format, floor, date, tostring, type, pcall = string.format, math.floor, os.date,
                                                  tostring, type, pcall
local utf8len = utf8.len
local now = luadgram.now

local H = {}

local listener_name
local after_time       -- what follows a line's time: 'Z","listener":<name as JSON>,'
local allowed          -- set of accepted communities, nil = any
local col              -- the collector: sinks, counters, the timer
local has_lines        -- a sink takes the JSON lines
local lines_to, put_line -- col:line_writer(): put_line(lines_to, line) hands a line on
local callback         -- function(record, msg) or nil
local log_interval = 10
local reports = {}     -- kind -> { last = time of the last line, held = drops since }
local usm              -- ber.usm object when options.users is given (SNMPv3), else nil
-- Counts not yet added to the shared counters (col.n: the hot path makes no C call for
-- them), and the USM's key evictions already counted.
local n
local evictions = 0

-- ---- small helpers ----

-- Printable UTF-8 (no control characters but TAB, LF, CR): safe as JSON text as it is.
local function is_text(s)
  return utf8len(s) ~= nil and not s:find("[%z\1-\8\11\12\14-\31\127]")
end

local function hex(s)
  return (s:gsub(".", function(ch) return format("%02x ", ch:byte()) end):sub(1, -2))
end

-- RFC 3339 UTC with microseconds; the part up to the seconds is built once per second.
local stamp_sec, stamp_prefix = -1, ""
local function rfc3339(t)
  local sec = floor(t)
  if sec ~= stamp_sec then
    stamp_sec, stamp_prefix = sec, date("!%Y-%m-%dT%H:%M:%S", sec)
  end
  return format("%s.%06dZ", stamp_prefix, floor((t - sec) * 1e6))
end

local output_jsonl = require "output_jsonl"
local collector = require "collector"
local utf8_fix, encode_line = output_jsonl.utf8_fix, output_jsonl.encode
local encode_string = cjson.new().encode

-- The members "peer":..[,"dst":..] of a stand-in message (a table: the specs'), as
-- ber.PEER_DST writes them for the daemon's: the JSON strings of tostring(msg.peer) and
-- tostring(msg.dst), as lua-cjson writes them (not UTF-8: each bad byte as U+FFFD).
local function peer_dst_json(msg)
  local dst = msg.dst
  local peer = '"peer":' .. encode_string(utf8_fix(tostring(msg.peer)))
  if not dst then return peer end
  return peer .. ',"dst":' .. encode_string(utf8_fix(tostring(dst)))
end

-- "000" .. "999": the microseconds of a record's time in two halves, without format.
local DIGITS3 = {}
for i = 0, 999 do DIGITS3[i] = format("%03d", i) end

-- One log line per `kind` per log_interval; drops in between are counted into the next.
local function report(kind, fmt, ...)
  local now = luadgram.now()
  local r = reports[kind]
  if not r then
    r = { last = -math.huge, held = 0 }
    reports[kind] = r
  end
  if now - r.last < log_interval then
    r.held = r.held + 1
    return
  end
  local line = format(fmt, ...)
  if r.held > 0 then
    line = format("%s (and %d more %s since the last report)", line, r.held, kind)
  end
  r.last, r.held = now, 0
  luadgram.log.warn(format("snmptrap %s: %s", listener_name, line))
end

-- The USM's key evictions since the last call, into the tallies (the collector's tick).
local function count_evictions()
  if not usm then return end
  local e = usm:stats().evictions
  if e > evictions then n.usm_key_evictions = n.usm_key_evictions + e - evictions end
  evictions = e
end

-- ---- options ----

-- Raises the message init fails with ("listener 'x': init: snmptrap: options.y ...").
local function init_error(fmt, ...)
  error("snmptrap: " .. format(fmt, ...), 0)
end

local function show(v)
  return type(v) == "string" and format("%q", v) or tostring(v)
end

local function load_communities(v)
  if v == nil then return nil end
  if type(v) == "string" then v = { v } end
  if type(v) ~= "table" then
    init_error("options.communities must be a list of strings, not %s", show(v))
  end
  local set = {}
  for i, s in ipairs(v) do
    if type(s) ~= "string" then
      init_error("options.communities[%d] must be a string, not %s", i, show(s))
    end
    set[s] = true
  end
  return set
end

local function load_callback(name)
  if name == nil then return nil end
  if type(name) ~= "string" then
    init_error("options.on_trap must be a module name, not %s", show(name))
  end
  local ok, mod = pcall(require, name)
  if not ok then init_error("options.on_trap: %s", tostring(mod)) end
  if type(mod) == "table" then mod = mod.on_trap end
  if type(mod) ~= "function" then
    init_error("options.on_trap: module %q returns neither a function nor a table with an "
               .. "on_trap function", name)
  end
  return mod
end

local COUNTERS = {
  received = "datagrams received",
  decoded = "well-formed SNMPv1/v2c/v3 traps and informs",
  malformed = "datagrams that are not well-formed SNMP",
  unsupported = "SNMPv2u, SNMPv3 without users, and PDUs that are not notifications",
  community_rejected = "notifications dropped for a community not in the list",
  filtered = "notifications the on_trap callback kept out of the file",
  written = "JSON lines written to the file",
  informs_acked = "informs acknowledged with a Response-PDU",
  callback_errors = "errors raised by the on_trap callback",
  output_errors = "records the file, nats or redis lost (could not encode, could not write "
                  .. "for long, spool full)",
  reply_errors = "inform acknowledgements that could not be sent",
  reports_sent = "SNMPv3 Report-PDUs sent (engine discovery, time window, USM errors)",
  usm_key_evictions = "localized keys evicted from the key cache (users without engine_id)",
  usmStatsUnsupportedSecLevels = "SNMPv3 messages at a security level the user does not allow",
  usmStatsNotInTimeWindows = "SNMPv3 informs outside the time window (RFC 3414 3.2.7)",
  usmStatsUnknownUserNames = "SNMPv3 messages from a user not configured",
  usmStatsUnknownEngineIDs = "SNMPv3 messages for or from an engine ID not accepted",
  usmStatsWrongDigests = "SNMPv3 messages whose digest is wrong",
  usmStatsDecryptionErrors = "SNMPv3 messages that could not be decrypted",
}

-- options.mibs = { dirs = {...}, modules = {...} }: the luadgram.mib table, or nil.
local function load_mibs(v, config_dir)
  if v == nil then return nil end
  local mib = require "luadgram.mib"
  if mib.unavailable then init_error("options.mibs: %s", mib.unavailable) end -- Windows
  if type(v) ~= "table" then init_error("options.mibs must be { dirs =, modules = }, not %s",
                                        show(v)) end
  for k in pairs(v) do
    if k ~= "dirs" and k ~= "modules" then
      init_error("options.mibs: unknown key %s (dirs, modules)", show(k))
    end
  end
  local lists = {}
  for _, key in ipairs { "dirs", "modules" } do
    local list = v[key]
    if type(list) == "string" then list = { list } end
    if type(list) ~= "table" or #list == 0 then
      init_error("options.mibs.%s must be a non-empty list of strings, not %s", key, show(list))
    end
    local copy = {}
    for i, s in ipairs(list) do
      if type(s) ~= "string" or s == "" then
        init_error("options.mibs.%s[%d] must be a non-empty string, not %s", key, i, show(s))
      end
      if key == "dirs" and s:sub(1, 1) ~= "/" and config_dir and config_dir ~= "" then
        s = config_dir .. "/" .. s
      end
      if key == "dirs" and s:find(":", 1, true) then
        init_error("options.mibs.dirs[%d]: a folder with ':' in its name cannot be searched "
                   .. "(libsmi's path separator): %s", i, show(s))
      end
      copy[i] = s
    end
    lists[key] = copy
  end
  local names, err = mib.load(lists)
  if not names then init_error("options.mibs: %s", err) end
  return names
end

local OPTIONS = { communities = true, file = true, on_trap = true, log_interval = true,
                  mibs = true, users = true, engine_id = true, state_dir = true, nats = true,
                  redis = true }
local TALLY = { file = { written = "written", dropped = "output_errors" },
                ["*"] = { dropped = "output_errors" } }
local USER_OPTIONS = { name = true, auth = true, auth_pass = true, auth_key = true,
                       priv = true, priv_pass = true, priv_key = true, engine_id = true,
                       level = true }

-- The folder of the engine's state file: options.state_dir (relative to the configuration's
-- folder), else systemd's $STATE_DIRECTORY (its first entry), else the output file's folder,
-- else the configuration's folder.
local function state_folder(options, config_dir)
  local dir = options.state_dir
  if dir ~= nil and (type(dir) ~= "string" or dir == "") then
    init_error("options.state_dir must be a folder, not %s", show(dir))
  end
  if not dir then
    local sd = os.getenv("STATE_DIRECTORY")
    if sd and sd ~= "" then dir = sd:match("^[^:]+") end
  end
  local file = options.file
  if type(file) == "table" then file = file.path end
  if not dir and type(file) == "string" and file ~= "" then
    dir = collector.resolve({ config_dir = config_dir }, file):match("^(.*)/[^/]*$")
  end
  dir = dir or config_dir or "."
  if dir:sub(1, 1) ~= "/" and config_dir and config_dir ~= "" then
    dir = config_dir .. "/" .. dir
  end
  return dir
end

-- options.users (SNMPv3): the USM with our engine (options.engine_id or the state file's)
-- and each user's keys, derived now.
local function load_users(options, listener)
  local users = options.users
  if users == nil then
    if options.engine_id ~= nil or options.state_dir ~= nil then
      init_error("options.engine_id and options.state_dir need options.users")
    end
    return nil
  end
  if ber.usm_unavailable then init_error("options.users: %s", ber.usm_unavailable) end -- Windows
  if type(users) ~= "table" then
    init_error("options.users must be a list of users, not %s", show(users))
  end
  local engine_id = options.engine_id
  if engine_id ~= nil and type(engine_id) ~= "string" then
    init_error("options.engine_id must be hex text, not %s", show(engine_id))
  end
  local path = state_folder(options, listener.config_dir) .. "/snmptrap-"
               .. listener.name:gsub("[^%w_.-]", "_") .. ".engine"
  local id, boots, started = ber.engine_state(path, engine_id)
  if not id then init_error("options.%s: %s", engine_id and "engine_id" or "state_dir", boots) end
  local u = ber.usm(id, boots, started)
  for i, user in ipairs(users) do
    if type(user) ~= "table" then
      init_error("options.users[%d] must be a table, not %s", i, show(user))
    end
    for k in pairs(user) do
      if not USER_OPTIONS[k] then
        init_error("options.users[%d]: unknown field %s (name, auth, auth_pass, auth_key, "
                   .. "priv, priv_pass, priv_key, engine_id, level)", i, show(k))
      end
    end
    local ok, added, err = pcall(u.add_user, u, user)   -- raises on a field's wrong type
    if not ok then err = added end
    if not (ok and added) then init_error("options.users[%d]: %s", i, tostring(err)) end
  end
  return u
end

function H.init(listener, options)
  listener_name = listener.name
  after_time = 'Z","listener":' .. encode_string(utf8_fix(listener_name)) .. ','
  options = options or {}
  for k in pairs(options) do   -- a misspelt "communities" must not open the door
    if not OPTIONS[k] then
      init_error("unknown option %s (communities, file, on_trap, log_interval, mibs, users, "
                 .. "engine_id, state_dir, nats, redis)", show(k))
    end
  end
  log_interval = options.log_interval or 10
  if type(log_interval) ~= "number" or log_interval < 0 then
    init_error("options.log_interval must be a number of seconds >= 0, not %s",
               show(log_interval))
  end
  allowed = load_communities(options.communities)
  mib_names = load_mibs(options.mibs, listener.config_dir)
  trap_json = mib_names and ber.trap_json_named(mib_names) or ber.trap_json
  callback = load_callback(options.on_trap)
  if not options.file and not options.nats and not options.redis and not callback then
    init_error("options.file (or nats, redis) or options.on_trap is required (where would "
               .. "the traps go?)")
  end
  usm = load_users(options, listener)
  if usm and mib_names then usm:set_names(mib_names) end -- names for v3 records too
  evictions = 0
  col = collector.new { listener = listener, options = options, handler = "snmptrap",
    sinks = { "file", "nats", "redis" }, counters = COUNTERS, tally = TALLY,
    raise = init_error, on_tick = count_evictions }
  n, has_lines = col.n, col.nlines > 0
  lines_to, put_line = col:line_writer()
end

function H.stop()
  if usm then count_evictions() usm:close() usm = nil end
  if col then col:close() end
end

-- ---- the record ----

local function record_of(m, msg)
  local bindings = m.varbinds
  for i = 1, #bindings do
    local b = bindings[i]
    b.raw = nil                                  -- the bytes again: value (or hex) says it
    if b.opaque_type == "Integer64" then b.opaque_value = tostring(b.opaque_value) end
  end
  local community, community_hex = m.community, nil
  if community and not is_text(community) then community, community_hex = hex(community), true end
  local user, user_hex, context_name, context_name_hex = m.user, nil, m.context_name, nil
  if user and not is_text(user) then user, user_hex = hex(user), true end
  if context_name and not is_text(context_name) then
    context_name, context_name_hex = hex(context_name), true
  end
  local dst = msg.dst
  return {
    time = rfc3339(msg.time or luadgram.now()),
    listener = listener_name,
    peer = tostring(msg.peer),
    dst = dst and tostring(dst),
    version = m.version_name,
    community = community,
    community_hex = community_hex,
    user = user,
    user_hex = user_hex,
    security_level = m.security_level,
    engine_id = m.engine_id,
    context_engine_id = m.context_engine_id,
    context_name = context_name,
    context_name_hex = context_name_hex,
    pdu = m.pdu,
    request_id = m.request_id,
    trap_oid = m.trap_oid,
    trap_name = m.trap_name,
    uptime = m.uptime,
    enterprise = m.enterprise,
    agent_addr = m.agent_addr,
    generic_trap = m.generic_trap,
    specific_trap = m.specific_trap,
    bindings = bindings,
  }
end

local NOTIFICATION = { trap = true, trapv2 = true, inform = true }

-- Sends `bytes` (nil: they could not be made, `why`) back to the sender; true when sent,
-- else counted in reply_errors and reported ("cannot <what> <peer>: <why>").
local function reply(msg, bytes, why, what)
  local ok, err = false, why
  if bytes then ok, err = msg:reply(bytes) end
  if not ok then
    n.reply_errors = n.reply_errors + 1
    report("reply errors", "cannot %s %s: %s", what, tostring(msg.peer), tostring(err))
  end
  return ok
end

local function acknowledge(msg, data)
  local resp, why
  if usm then resp, why = usm:inform_response(data) else resp, why = inform_response(data) end
  if reply(msg, resp, why, "acknowledge the inform from") then
    n.informs_acked = n.informs_acked + 1
  end
end

-- Counts and reports a datagram that is no notification we decode; `why`, `kind` as
-- decode_snmp gives them, or pdu for a well-formed PDU that is not a notification. An
-- SNMPv3 message USM dropped (kind "usm", why the usmStats counter's name) is counted
-- under that name, and `usm_report`, the Report-PDU due to a reportable one, is sent.
local function drop_undecoded(msg, why, kind, pdu, usm_report)
  if kind == "usm" then
    n[why] = n[why] + 1
    -- engine discovery (a Report of our engine ID) is the normal start of every inform
    if not (usm_report and why == "usmStatsUnknownEngineIDs") then
      report(why, "dropped an SNMPv3 message from %s: %s", tostring(msg.peer), why)
    end
    if usm_report and reply(msg, usm_report, nil, "send a Report to") then
      n.reports_sent = n.reports_sent + 1
    end
  elseif pdu then
    n.unsupported = n.unsupported + 1
    report("unsupported", "dropped a message from %s: a %s PDU is not a notification",
           tostring(msg.peer), pdu)
  elseif kind == "unsupported" then
    n.unsupported = n.unsupported + 1
    report("unsupported", "dropped a message from %s: %s", tostring(msg.peer), why)
  else
    n.malformed = n.malformed + 1
    report("malformed", "dropped a malformed SNMP packet of %d bytes from %s: %s", msg.size,
           tostring(msg.peer), why)
  end
end

-- Counts and reports a notification whose community is not in the list.
local function reject(msg, community, pdu)
  n.community_rejected = n.community_rejected + 1
  report("community rejected", "dropped a %s from %s: community %q is not accepted",
         pdu, tostring(msg.peer), community:find("[^ -~]") and hex(community) or community)
end

-- Reports a record a sink (or the encoding) dropped.
local function lost(peer, err)
  report("output errors", "dropped the record from %s: %s", tostring(peer), tostring(err))
end

-- With a callback: the record as a table, for the callback, then encoded by the output.
local function message_with_callback(msg, data)
  local m, why, kind, usm_report
  if usm then
    m, why, kind, usm_report = usm:decode_snmp(data)
  else
    m, why, kind = decode_snmp(data, mib_names)
  end
  if not m then return drop_undecoded(msg, why, kind, nil, usm_report) end
  local pdu = m.pdu
  if not NOTIFICATION[pdu] then return drop_undecoded(msg, nil, nil, pdu) end
  n.decoded = n.decoded + 1
  if allowed and m.community and not allowed[m.community] then
    return reject(msg, m.community, pdu)
  end
  local record = record_of(m, msg)
  local keep = true
  local ok, res = pcall(callback, record, msg)
  if not ok then
    n.callback_errors = n.callback_errors + 1
    report("callback errors", "on_trap failed: %s", tostring(res))
  elseif res == false then
    keep = false
    n.filtered = n.filtered + 1
  end
  local stored = true
  if has_lines and keep then
    -- A callback may have added strings that are not UTF-8: encode checks. A line the file
    -- keeps after a failed flush is not lost (it is written again); a dropped one is.
    local line, err = encode_line(record, false)
    if line then
      stored, err = put_line(lines_to, line)
    else
      n.output_errors = n.output_errors + 1
    end
    if not stored then lost(record.peer, err) end
  end
  if pdu == "inform" and stored then acknowledge(msg, data) end
end

-- Without a callback: the pieces of the line's head (time, listener) are made here, and
-- ber.trap_json writes peer and dst (ber.PEER_DST) and the whole line after them, in C: no
-- record table, no address object, no encoding in Lua, one string per line.
local line_sec, line_time = -1, ""   -- the second of line_time: '{"time":"<to the second>.'

function H.message(msg)
  n.received = n.received + 1
  if callback then return message_with_callback(msg, msg.data) end
  local t = msg.time or now()
  local sec = t // 1
  if sec ~= line_sec then
    line_sec, line_time = sec, '{"time":"' .. date("!%Y-%m-%dT%H:%M:%S.", sec)
  end
  local us = (t - sec) * 1e6 // 1               -- as rfc3339: floor((t - sec) * 1e6)
  if us > 999999 then us = 999999 end          -- rounding, for t near 0
  -- The daemon's message is read in place by trap_json (no Lua string of the payload, no
  -- address object); a stand-in table (the specs') hands its data and address members.
  local version, community, pdu, rid, line
  local data, addrs = msg, PEER_DST
  if getmetatable(msg) ~= "luadgram.msg" then data, addrs = msg.data, peer_dst_json(msg) end
  if usm then
    version, community, pdu, rid, line = usm:trap_json(data, line_time, DIGITS3[us // 1000],
      DIGITS3[us % 1000], after_time, addrs, ",")
  else
    version, community, pdu, rid, line = trap_json(data, line_time, DIGITS3[us // 1000],
      DIGITS3[us % 1000], after_time, addrs, ",")
  end
  if not line then
    if version then return drop_undecoded(msg, nil, nil, pdu) end  -- not a notification
    return drop_undecoded(msg, community, pdu, nil, rid)  -- nil, reason, kind[, report]
  end
  n.decoded = n.decoded + 1
  if allowed and version ~= "v3" and not allowed[community] then
    return reject(msg, community, pdu)
  end
  local ok, err = put_line(lines_to, line)
  if not ok then
    lost(msg.peer, err)
  elseif pdu == "inform" then
    acknowledge(msg, msg.data)
  end
end

return H
