-- scripts/lib/output_jsonl.lua: a JSON Lines file for collectors (syslog, SNMP traps): one
-- JSON object per line, encoded by lua-cjson, kept in memory and appended with ONE write per
-- flush (a writev of the kept strings, or a write of their concatenation), so that lines
-- from several writers of the same file (the workers, or the old and new Lua states during
-- a reload) never interleave and never get cut.
--[==[
API
  local output_jsonl = require "output_jsonl"

  out, err = output_jsonl.open{ path =, buffer_size =, flush_interval =, every =,
                                max_pending =, mkdir = }
    path            the file, opened for appending (O_APPEND) and created when missing
                    (required; a relative path is relative to the daemon's working folder:
                    callers resolve it against listener.config_dir first)
    buffer_size     bytes kept before write() flushes by itself (default 65536)
    flush_interval  seconds between flushes by the timer (default 1; 0 = no timer)
    every           luadgram.every, or any function(seconds, fn) returning an object with
                    :cancel(); without it there is no timer and the caller calls flush()
    max_pending     bytes kept while the file cannot be written (disk full, folder gone);
                    lines beyond it are dropped and counted (default 64 * buffer_size)
    mkdir           create the file's missing folder (mkdir -p) (default true)
    Returns nil, err when the file cannot be opened.

  ok, err = out:write(tbl [, utf8_ok])   (a string: out:write_line(tbl), the sink contract)
  ok, err = out:write_line(json)   -- an already encoded object (valid UTF-8, no newline)
  ok, err = out:write_lines(lines, count)  -- count such objects, each followed by "\n"
    Encodes tbl as one line. Returns true, or nil, err when the line is dropped (tbl cannot
    be encoded: a function, a cycle...; or max_pending is reached), counted in out.dropped.
    JSON must be UTF-8 but cjson copies string bytes as they are, so every line is checked
    (utf8.len) and, when it is not valid UTF-8, re-encoded from a copy of tbl in which each
    invalid byte of each string (keys too) is replaced by U+FFFD; tbl is never modified.
    Callers that need the exact bytes add them themselves (output_jsonl.base64). Pass
    utf8_ok = true only when every string in tbl is known to be valid UTF-8 (skips the check).
  ok, err = out:flush()    writes what is kept, in one write; on failure keeps it for the
                           next flush (the file is reopened then)
  ok, err = out:reopen()   flush, close, open path again (logrotate without a reload)
  ok, err = out:close()    flush, stop the timer, close; lines that cannot be written then
                           are counted in out.dropped
  out.written, out.dropped lines written to the file / lost, since open (for counters)
  out.path
  line, err = output_jsonl.encode(tbl [, utf8_ok])   the line write would add, or nil, err
  out, err = output_jsonl.sink(v, ctx)   the collector's `file` sink (scripts/lib/collector.lua):
                           v is options.file, a path or { path =, flush_interval = 1,
                           buffer_size =, max_pending =, mkdir = } (a relative path is
                           relative to the configuration's folder); no timer of its own
  output_jsonl.base64(s)   standard base64 (RFC 4648, with padding)
  output_jsonl.utf8_fix(s) s with every byte that is not part of valid UTF-8 replaced by
                           U+FFFD (s itself when it is valid)

Durability: a line is in the file after the flush that follows it (at most flush_interval
seconds, or when buffer_size bytes are kept); close() flushes. After a failed write
(ENOSPC...) the chunk is written again, in full, after a newline: a line cut by the failure
stands alone, and lines of that chunk may appear twice; none is lost while max_pending holds.
]==]

local cjson = require "cjson"

local concat = table.concat
local byte, sub, find = string.byte, string.sub, string.find
local utf8_len = utf8.len
local type, pairs, pcall, setmetatable, tostring = type, pairs, pcall, setmetatable, tostring
local io_open, os_execute = io.open, os.execute

local M = {}

-- luadgram.file.writev writes the kept lines in one system call without joining them first;
-- else table.concat and one write. Used when the process has the module: the daemon
-- preloads it, a plain Lua loads it first (it is not looked for on the C path from here).
local has_file, file_mod = false, nil
if package.loaded["luadgram.file"] or package.preload["luadgram.file"] then
  has_file, file_mod = pcall(require, "luadgram.file")
end
local writev = has_file and file_mod.writev or nil
local WRITEV_MAX = has_file and file_mod.WRITEV_MAX or 0

-- A private cjson instance: settings here do not change other users of cjson.
local json = cjson.new()
json.encode_invalid_numbers("null") -- NaN and inf as null, never invalid JSON or an error
json.encode_sparse_array(true)      -- very sparse arrays as objects, not an error
json.encode_number_precision(14)    -- the most 2.1.0 allows: epoch seconds to 0.1 ms
json.encode_max_depth(100)
local encode = json.encode

local REPLACEMENT = "\239\191\189" -- U+FFFD

function M.utf8_fix(s)
  local ok, bad = utf8_len(s)
  if ok then return s end
  local parts, k, p = {}, 0, 1
  repeat
    parts[k + 1], parts[k + 2] = sub(s, p, bad - 1), REPLACEMENT
    k, p = k + 2, bad + 1
    ok, bad = utf8_len(s, p)
  until ok or not bad
  parts[k + 1] = sub(s, p)
  return concat(parts, "", 1, k + 1)
end

-- A copy of v whose strings (keys and values, at any depth) are valid UTF-8.
local function utf8_copy(v, depth)
  local t = type(v)
  if t == "string" then return M.utf8_fix(v) end
  if t ~= "table" or depth > 100 then return v end
  local out = {}
  for k, x in pairs(v) do
    if type(k) == "string" then k = M.utf8_fix(k) end
    out[k] = utf8_copy(x, depth + 1)
  end
  return out
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local B64_PAIRS = {} -- 12-bit value -> two base64 characters
for i = 0, 4095 do
  local a, b = (i >> 6) + 1, (i & 63) + 1
  B64_PAIRS[i] = sub(B64, a, a) .. sub(B64, b, b)
end

function M.base64(s)
  local n = #s
  local parts, k = {}, 0
  local full = n - n % 3
  for i = 1, full, 3 do
    local a, b, c = byte(s, i, i + 2)
    local v = a << 16 | b << 8 | c
    k = k + 1
    parts[k] = B64_PAIRS[v >> 12] .. B64_PAIRS[v & 4095]
  end
  local rest = n - full
  if rest > 0 then
    local a, b = byte(s, full + 1, n)
    local v = a << 16 | (b or 0) << 8
    local quad = B64_PAIRS[v >> 12] .. B64_PAIRS[v & 4095]
    k = k + 1
    parts[k] = rest == 1 and sub(quad, 1, 2) .. "==" or sub(quad, 1, 3) .. "="
  end
  return concat(parts, "", 1, k)
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- mkdir -p: in C where the module is (the daemon's sandbox has no os.execute), else a shell.
local make_dir = has_file and file_mod.mkdir or function(dir)
  return os_execute("mkdir -p -- " .. shell_quote(dir) .. " 2>/dev/null")
end

-- Opens path for appending, unbuffered: each f:write is one write(2) of whole lines.
local function open_file(path, mkdir)
  local f, err = io_open(path, "a")
  if not f and mkdir and find(err or "", "No such file or directory", 1, true) then
    local dir = path:match("^(.*)/[^/]*$")
    if dir and dir ~= "" then
      make_dir(dir)
      f, err = io_open(path, "a")
    end
  end
  if not f then return nil, err end
  f:setvbuf("no")
  return f
end

local Out = {}
Out.__index = Out

local function positive(v, default, what)
  if v == nil then return default end
  if type(v) ~= "number" or v ~= v or v < 0 then
    error("output_jsonl.open: " .. what .. " must be a number >= 0", 3)
  end
  return v
end

function M.open(opts)
  if type(opts) ~= "table" or type(opts.path) ~= "string" or opts.path == "" then
    error("output_jsonl.open: opts.path (a string) is required", 2)
  end
  local buffer_size = positive(opts.buffer_size, 65536, "buffer_size")
  local flush_interval = positive(opts.flush_interval, 1, "flush_interval")
  local max_pending = positive(opts.max_pending, 64 * buffer_size, "max_pending")
  if max_pending < buffer_size then max_pending = buffer_size end
  local mkdir = opts.mkdir ~= false
  local f, err = open_file(opts.path, mkdir)
  if not f then return nil, err end
  local self = setmetatable({
    path = opts.path, f = f, mkdir = mkdir,
    buf = {}, n = 0, bytes = 0,  -- buf: line, "\n", lines, ... (n entries)
    lines = 0,                   -- lines in buf
    buffer_size = buffer_size, max_pending = max_pending,
    failing = nil,               -- the last write error while it lasts
    written = 0, dropped = 0,
    timer = nil,
  }, Out)
  if opts.every and flush_interval > 0 then
    self.timer = opts.every(flush_interval, function() self:flush() end)
  end
  return self
end

-- One JSON line of tbl (valid UTF-8: see write), or nil, err when tbl cannot be encoded.
local function encode_line(tbl, utf8_ok)
  local ok, line = pcall(encode, tbl)
  if not ok then return nil, line end
  if not utf8_ok and not utf8_len(line) then
    ok, line = pcall(encode, utf8_copy(tbl, 0))
    if not ok then return nil, line end
  end
  return line
end
M.encode = encode_line

function Out:write(tbl, utf8_ok)
  if type(tbl) == "string" then return self:write_line(tbl) end -- the sink contract
  if self.bytes >= self.max_pending then -- close() sets max_pending to -1
    self.dropped = self.dropped + 1
    if self.closed then return nil, "output closed" end
    return nil, "output buffer full (" .. tostring(self.failing) .. ")"
  end
  local line, err = encode_line(tbl, utf8_ok)
  if not line then
    self.dropped = self.dropped + 1
    return nil, err
  end
  return self:write_line(line)
end

-- Appends one line that is already a JSON object (valid UTF-8, no newline): for handlers
-- that encode in C. Same buffering, bounds and counts as write.
function Out:write_line(line)
  if self.bytes >= self.max_pending then
    self.dropped = self.dropped + 1
    if self.closed then return nil, "output closed" end
    return nil, "output buffer full (" .. tostring(self.failing) .. ")"
  end
  local n = self.n
  local buf = self.buf
  buf[n + 1], buf[n + 2] = line, "\n"
  self.n, self.lines = n + 2, self.lines + 1
  local bytes = self.bytes + #line + 1
  self.bytes = bytes
  if bytes >= self.buffer_size and not self.failing then
    self:flush() -- on failure the line stays kept; the timer's flush retries
  end
  return true
end

-- Appends count lines at once: `lines` holds count encoded objects, each followed by "\n"
-- (luadgram.syslog's json_batch). Same buffering, bounds and counts as write_line.
function Out:write_lines(lines, count)
  if count == 0 then return true end
  if self.bytes >= self.max_pending then
    self.dropped = self.dropped + count
    if self.closed then return nil, "output closed" end
    return nil, "output buffer full (" .. tostring(self.failing) .. ")"
  end
  local n = self.n + 1
  self.buf[n] = lines
  self.n, self.lines = n, self.lines + count
  local bytes = self.bytes + #lines
  self.bytes = bytes
  if bytes >= self.buffer_size and not self.failing then self:flush() end
  return true
end

function Out:flush()
  local n = self.n
  if n == 0 then return true end
  local f, err = self.f, nil
  if not f then
    f, err = open_file(self.path, self.mkdir)
    if not f then
      self.failing = err
      return nil, err
    end
    self.f = f
  end
  local ok
  if writev and n <= WRITEV_MAX and not self.failing then
    ok, err = writev(f, self.buf, n)
  else
    local chunk = concat(self.buf, "", 1, n)
    if self.failing then chunk = "\n" .. chunk end -- a line cut by the failure stands alone
    ok, err = f:write(chunk)
  end
  if not ok then
    -- Reopen at the next flush: the stream's error state, a removed folder, a full disk.
    f:close()
    self.f, self.failing = nil, err or "write failed"
    return nil, self.failing
  end
  self.failing = nil
  self.written = self.written + self.lines
  local buf = self.buf
  for i = 1, n do buf[i] = nil end
  self.n, self.bytes, self.lines = 0, 0, 0
  return true
end

function Out:reopen()
  if self.closed then return nil, "output closed" end
  local ok, err = self:flush()
  if self.f then self.f:close() end
  self.f = nil
  local f, oerr = open_file(self.path, self.mkdir)
  if not f then return nil, oerr end
  self.f = f
  if not ok then return self:flush() end
  return true, err
end

function Out:close()
  if self.timer then
    self.timer:cancel()
    self.timer = nil
  end
  local ok, err = self:flush()
  if not ok then
    self.dropped = self.dropped + self.lines
    local buf = self.buf
    for i = 1, self.n do buf[i] = nil end
    self.n, self.bytes, self.lines = 0, 0, 0
  end
  if self.f then self.f:close() end
  self.f = nil
  self.closed, self.max_pending = true, -1
  if not ok then return nil, err end
  return true
end

-- The collector's `file` sink: options.file checked (errors raised through ctx.raise), the
-- file opened without a timer of its own (the collector's timer flushes it).
function M.sink(v, ctx)
  local raise = ctx.raise
  if type(v) == "string" then v = { path = v } end
  if type(v) ~= "table" or type(v.path) ~= "string" or v.path == "" then
    raise("options.file must be a path or { path = ... }, not %s",
          type(v) == "string" and string.format("%q", v) or tostring(v))
  end
  local fi = v.flush_interval or 1
  if type(fi) ~= "number" or not (fi >= 0.01) then
    raise("options.file.flush_interval must be a number of seconds >= 0.01, not %s",
          tostring(fi))
  end
  local path = require("collector").resolve(ctx.listener, v.path)
  local ok, out, err = pcall(M.open, { path = path, buffer_size = v.buffer_size,
    max_pending = v.max_pending, mkdir = v.mkdir })
  if not ok then return nil, out end
  if not out then return nil, "cannot open " .. tostring(err) end
  out.flush_interval, out.what = fi, path
  return out
end

return M
