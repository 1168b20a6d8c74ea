-- spec/helpers.lua: what the integration specs share: temp folders, ephemeral ports,
-- configuration files, starting/signalling/stopping the real luadgramd in the background,
-- reading its log and /metrics, and UDP / unix datagram clients with timeouts.
-- Every daemon and temp folder made here is remembered so that `h.cleanup()` (called from
-- each spec's after_each/teardown) removes them even when an assertion failed.
local socket = require "socket"
local unix = require "socket.unix"

local h = {}

h.src = os.getenv("LUADGRAM_SRC") or "."
h.build = os.getenv("LUADGRAM_BUILD") or (h.src .. "/build")
h.bin = os.getenv("LUADGRAMD") or (h.build .. "/luadgramd")

local started = {}   -- daemons not yet reaped
local all_started = {} -- every daemon since the last cleanup (their logs are checked)
local tmpdirs = {}   -- folders to remove

-- ---- small utilities ----

function h.sleep(sec) socket.sleep(sec) end
function h.now() return socket.gettime() end

-- Quotes s for /bin/sh.
function h.shq(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

function h.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function h.write(path, text)
  local f = assert(io.open(path, "wb"))
  assert(f:write(text))
  assert(f:close())
end

function h.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  -- a socket file cannot be opened; ask the shell
  return os.execute("test -e " .. h.shq(path)) == true
end

-- Calls fn every `step` seconds until it returns a true value (returned) or `timeout`
-- seconds passed (then returns nil).
function h.wait_for(fn, timeout, step)
  local deadline = h.now() + (timeout or 5)
  repeat
    local v = fn()
    if v then return v end
    h.sleep(step or 0.02)
  until h.now() > deadline
  return fn()
end

-- A fresh folder under /tmp (removed by h.cleanup). Short, so unix socket paths fit.
function h.tmpdir()
  local name = os.tmpname()
  os.remove(name)
  assert(os.execute("mkdir -m 0700 " .. h.shq(name)), "mkdir " .. name)
  tmpdirs[#tmpdirs + 1] = name
  return name
end

function h.fixture(name)
  return h.src .. "/spec/fixtures/" .. name .. ".lua"
end

-- This Lua process's pid (io.open reads /proc/self as the Lua process itself; a popen'ed
-- `cat` would report its own).
function h.mypid()
  local stat = assert(h.read("/proc/self/stat"))
  return tonumber(stat:match("^(%d+)"))
end

-- Runs a shell command, returns its trimmed stdout.
function h.capture(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  p:close()
  return (out:gsub("%s+$", ""))
end

-- ---- ports ----

-- A UDP port that is free on `ip` right now (bound to port 0, read back, closed).
function h.free_port(ip)
  ip = ip or "127.0.0.1"
  local s = ip:find(":", 1, true) and socket.udp6() or socket.udp4()
  assert(s:setsockname(ip, 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

-- A TCP port that is free on 127.0.0.1 (for metrics).
function h.free_tcp_port()
  local s = socket.tcp4()
  assert(s:bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

-- ---- Lua literals: configuration files and the fixtures' replies ----

local function is_ident(k) return type(k) == "string" and k:match("^[%a_][%w_]*$") end

-- Lua source for v (strings, numbers, booleans, nested tables; keys sorted).
function h.lua(v)
  local t = type(v)
  if t == "string" or t == "number" then return string.format("%q", v) end
  if t ~= "table" then return tostring(v) end
  local parts, n = {}, #v
  for i = 1, n do parts[#parts + 1] = h.lua(v[i]) end
  local keys = {}
  for k in pairs(v) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local key = is_ident(k) and k or ("[" .. h.lua(k) .. "]")
    parts[#parts + 1] = key .. " = " .. h.lua(v[k])
  end
  return "{ " .. table.concat(parts, ", ") .. " }"
end

-- Parses a table constructor sent back by a fixture (no globals reachable).
function h.parse(s)
  assert(type(s) == "string", "no reply to parse")
  local f, err = load("return " .. s, "=reply", "t", {})
  assert(f, "reply is not a Lua table constructor: " .. tostring(err) .. ": " .. s)
  return f()
end

-- Configuration text. t: workers, user, log_level, metrics, script_path, handler_budget,
-- handler_timeout (globals, each written on its own line when given) and listeners = { {name=, bind=,
-- handler=, recv=, options=, mode=, reuseport=, ratelimit=, join=, freebind=, device=,
-- v6only=, tos=, ttl=}, ... }, each key of a listener on its own line.
-- By default workers = 1 and script_path holds scripts/ and spec/fixtures/ of the checkout.
function h.config_text(t)
  local lines = { "-- written by spec/helpers.lua" }
  local g = {
    workers = t.workers or 1,
    user = t.user,
    log_level = t.log_level or "info",
    metrics = t.metrics,
    script_path = t.script_path or { h.src .. "/scripts", h.src .. "/spec/fixtures" },
    handler_budget = t.handler_budget,
    handler_timeout = t.handler_timeout,
  }
  for _, k in ipairs { "workers", "user", "log_level", "metrics", "script_path",
                       "handler_budget", "handler_timeout" } do
    if g[k] ~= nil then lines[#lines + 1] = k .. " = " .. h.lua(g[k]) end
  end
  for _, l in ipairs(t.listeners or {}) do
    lines[#lines + 1] = "listen " .. h.lua(l.name) .. " {"
    for _, k in ipairs { "bind", "handler", "recv", "options", "reuseport", "mode", "ratelimit",
                         "join", "freebind", "device", "v6only", "tos", "ttl" } do
      if l[k] ~= nil then lines[#lines + 1] = "  " .. k .. " = " .. h.lua(l[k]) .. "," end
    end
    lines[#lines + 1] = "}"
  end
  return table.concat(lines, "\n") .. "\n"
end

-- ---- running the daemon ----

-- The first AddressSanitizer, LeakSanitizer or UBSan report in `text` (with some context),
-- or nil when there is none.
function h.sanitizer_report(text)
  local at = text:find("ERROR: AddressSanitizer", 1, true)
             or text:find("ERROR: LeakSanitizer", 1, true) or text:find("runtime error:", 1, true)
  if at then return text:sub(math.max(1, at - 200), at + 3000) end
  return nil
end

-- Runs luadgramd with args (a string, already quoted) to completion, at most `timeout`
-- seconds. Returns exit code (124 on timeout), stdout, stderr.
-- Raises (naming the caller's line) when a sanitizer report is in the output, whatever the
-- exit code: a run that ends as expected may still have read out of bounds on the way.
function h.run(args, timeout)
  local dir = h.tmpdir()
  local out, err = dir .. "/stdout", dir .. "/stderr"
  local cmd = string.format("timeout -k 2 %d %s %s >%s 2>%s </dev/null", timeout or 10,
                            h.shq(h.bin), args, h.shq(out), h.shq(err))
  local _, how, code = os.execute(cmd)
  if how == "signal" then code = 128 + code end
  local stdout, stderr = h.read(out) or "", h.read(err) or ""
  local report = h.sanitizer_report(stderr) or h.sanitizer_report(stdout)
  if report then
    error(string.format("sanitizer report from luadgramd %s:\n%s", args, report), 2)
  end
  return code, stdout, stderr
end

local Daemon = {}
Daemon.__index = Daemon

-- The whole log so far.
function Daemon:log() return h.read(self.log_path) or "" end

-- The last n lines of the log, for assertion messages.
function Daemon:tail(n)
  local lines = {}
  for l in self:log():gmatch("[^\n]+") do lines[#lines + 1] = l end
  n = n or 40
  local from = math.max(1, #lines - n + 1)
  return table.concat(lines, "\n", from)
end

-- An assertion message followed by the daemon's recent log.
function Daemon:explain(fmt, ...)
  return string.format(fmt, ...) .. "\n--- luadgramd log (" .. self.log_path .. ") ---\n"
         .. self:tail() .. "\n---"
end

-- "run" (alive), "zombie" (exited, not reaped) or "gone" (reaped).
function Daemon:state()
  if self.status then return "gone" end
  local stat = h.read("/proc/" .. self.pid .. "/stat")
  if not stat then return "gone" end
  local st = stat:match("%) (%a)")
  return (st == "Z" or st == "X") and "zombie" or "run"
end

function Daemon:alive() return self:state() == "run" end

function Daemon:signal(sig)
  assert(self.status == nil, "daemon already reaped")
  return os.execute("kill -" .. sig .. " " .. self.pid .. " 2>/dev/null")
end

-- Waits up to timeout seconds for the daemon to exit and reaps it. Returns "exit", code or
-- "signal", signo; nil when it is still running.
function Daemon:wait(timeout)
  if not self.status then
    if not h.wait_for(function() return self:state() ~= "run" end, timeout or 5) then
      return nil
    end
    local _, how, code = self.handle:close()
    self.status = { how, code }
    for i, d in ipairs(started) do
      if d == self then table.remove(started, i) break end
    end
  end
  return self.status[1], self.status[2]
end

-- SIGTERM, then wait; SIGKILL if it does not exit within timeout. Returns what wait does.
function Daemon:stop(timeout)
  if not self.status then
    if self:state() == "run" then self:signal("TERM") end
    local how, code = self:wait(timeout or 5)
    if not how then
      self:signal("KILL")
      how, code = self:wait(5)
      return "killed", code
    end
  end
  return self.status[1], self.status[2]
end

-- Counts "listener NAME: bound ..." lines in the log (NAME may be quoted: 'NAME').
function Daemon:bound_count(name)
  local n = 0
  local pat = "listener '?" .. name:gsub("%p", "%%%0") .. "'?: bound "
  for _ in self:log():gmatch(pat) do n = n + 1 end
  return n
end

-- Waits until `pattern` (a Lua pattern) appears in the log; returns the match or nil.
function Daemon:wait_log(pattern, timeout, plain)
  return h.wait_for(function()
    local log = self:log()
    if plain then return log:find(pattern, 1, true) and pattern end
    return log:match(pattern)
  end, timeout or 5)
end

-- The program the daemon's pid runs now (/proc/PID/exe, resolved), or nil once it is gone.
function Daemon:exe()
  if self:state() ~= "run" then return nil end
  local target = h.capture("readlink -f /proc/" .. self.pid .. "/exe 2>/dev/null")
  return target ~= "" and target or nil
end

-- /proc/PID/status (or /proc/PID/task/TID/status) as a table: field name -> the text after
-- the colon, trimmed; nil when the process is gone.
local function proc_status(path)
  local text = h.read(path)
  if not text then return nil end
  local t = {}
  for name, value in text:gmatch("([%w_]+):%s*([^\n]*)") do
    t[name] = value:gsub("%s+$", "")
  end
  return t
end

function Daemon:status_fields() return proc_status("/proc/" .. self.pid .. "/status") end

-- The status table of every thread of the daemon (task id -> table).
function Daemon:thread_status_fields()
  local out = {}
  local p = assert(io.popen("ls /proc/" .. self.pid .. "/task 2>/dev/null"))
  for tid in p:read("a"):gmatch("%d+") do
    out[tonumber(tid)] = proc_status("/proc/" .. self.pid .. "/task/" .. tid .. "/status")
  end
  p:close()
  return out
end

-- Each thread of process pid: { tid =, name = (its comm), nice = } from
-- /proc/PID/task/*/stat (a thread's comm is its creator's until it sets its own).
function h.thread_stats(pid)
  local out = {}
  local p = assert(io.popen("ls /proc/" .. pid .. "/task 2>/dev/null"))
  for tid in p:read("a"):gmatch("%d+") do
    local stat = h.read("/proc/" .. pid .. "/task/" .. tid .. "/stat")
    local name, rest = (stat or ""):match("^%d+ %((.*)%) (.*)$")
    if name then
      local f = {}
      for x in rest:gmatch("%S+") do f[#f + 1] = x end
      out[#out + 1] = { tid = tonumber(tid), name = name, nice = tonumber(f[17]) } -- field 19
    end
  end
  p:close()
  return out
end

-- Splits a status field of numbers ("0\t0\t0\t0") into a list of integers.
function h.numbers(field)
  local out = {}
  for n in tostring(field or ""):gmatch("%d+") do out[#out + 1] = tonumber(n) end
  return out
end

-- The command line that starts the daemon: `echo $$; exec [env K=V...] [prefix...] luadgramd
-- -c conf`. The shell prints its pid and exec()s, as env and every prefix must (they replace
-- themselves with the next program), so d.pid stays the daemon's pid.
local function start_command(d, cfg)
  local words = {}
  local env_keys = {}
  for k in pairs(cfg.env or {}) do env_keys[#env_keys + 1] = k end
  table.sort(env_keys)
  if #env_keys > 0 then
    words[#words + 1] = "env"
    for _, k in ipairs(env_keys) do
      assert(tostring(k):match("^[%a_][%w_]*$"), "bad environment variable name " .. k)
      words[#words + 1] = h.shq(k .. "=" .. tostring(cfg.env[k]))
    end
  end
  for _, w in ipairs(cfg.prefix or {}) do words[#words + 1] = h.shq(w) end
  words[#words + 1] = h.shq(cfg.bin or h.bin)
  return string.format("echo $$; exec %s -c %s >%s 2>%s </dev/null", table.concat(words, " "),
                       h.shq(d.conf), h.shq(d.out_path), h.shq(d.log_path))
end

-- A world-readable copy of the daemon and of the named handlers (from scripts/ or
-- spec/fixtures/), for daemons that run as another user: the checkout may sit in a folder
-- only root can enter (/root). Returns the binary's path and the scripts' folder.
function h.public_copy(handlers)
  local dir = h.tmpdir()
  assert(os.execute("chmod 0755 " .. h.shq(dir)))
  local bin = dir .. "/luadgramd"
  assert(os.execute(string.format("cp %s %s && chmod 0755 %s", h.shq(h.bin), h.shq(bin),
                                  h.shq(bin))))
  for _, name in ipairs(handlers or {}) do
    local src = h.src .. "/scripts/" .. name .. ".lua"
    if not h.exists(src) then src = h.src .. "/spec/fixtures/" .. name .. ".lua" end
    assert(os.execute(string.format("cp %s %s/ && chmod 0644 %s/%s.lua", h.shq(src),
                                    h.shq(dir), h.shq(dir), name)))
  end
  return bin, dir
end

-- Starts the daemon on a configuration. cfg: a table for h.config_text, or { text = "...",
-- expect = { name = number of binds } }. Writes it to DIR/luadgramd.conf (DIR a fresh temp
-- folder, also d.dir), starts `luadgramd -c` with stderr to DIR/luadgramd.log and waits
-- (up to 10 s: an ASan build on a loaded machine) until every listener logged its bound
-- addresses. Raises with the log when the daemon exits or does not get there.
-- Optional keys:
--   prefix = { "cmd", "arg", ... }  run the daemon through a program that exec()s it
--            (systemd-socket-activate, setpriv); d.pid is still the daemon's pid
--   env = { NAME = "value" }        extra environment for the daemon
--   ready = "pattern" (wait for it in the log), function(d) (wait until it returns true) or
--           false (return at once, as soon as the process runs); instead of the bound lines
--   conf_mode = "0644"              chmod the configuration file (for a non-root daemon)
function h.start(cfg)
  local dir = cfg.dir or h.tmpdir()
  local text, expect = cfg.text, cfg.expect
  if not text then
    text = h.config_text(cfg)
    expect = {}
    for _, l in ipairs(cfg.listeners or {}) do
      expect[l.name] = type(l.bind) == "table" and #l.bind or 1
    end
  end
  local conf = dir .. "/luadgramd.conf"
  h.write(conf, text)
  if cfg.conf_mode then
    assert(os.execute("chmod " .. h.shq(cfg.conf_mode) .. " " .. h.shq(conf)))
  end
  local d = setmetatable({ dir = dir, conf = conf, log_path = dir .. "/luadgramd.log",
                           out_path = dir .. "/luadgramd.out" }, Daemon)
  d.handle = assert(io.popen(start_command(d, cfg), "r"))
  d.pid = assert(tonumber(d.handle:read("l")), "no pid from the shell")
  started[#started + 1] = d
  all_started[#all_started + 1] = d
  if cfg.ready == false then return d end
  local ready = h.wait_for(function()
    if not d:alive() then return "exited" end
    if type(cfg.ready) == "string" then
      return d:log():match(cfg.ready) and "ready"
    elseif type(cfg.ready) == "function" then
      return cfg.ready(d) and "ready"
    end
    for name, n in pairs(expect or {}) do
      if d:bound_count(name) < n then return nil end
    end
    return "ready"
  end, 10)
  if ready ~= "ready" then
    local how, code = d:stop(2)
    error(string.format("luadgramd did not come up (%s; %s %s) with\n%s\n--- log ---\n%s",
                        ready or "timeout", tostring(how), tostring(code), text, d:log()), 2)
  end
  return d
end

-- Stops every daemon still running and removes every temp folder. Returns a list of
-- problems: daemons that did not exit 0 on SIGTERM, and sanitizer reports found in the log
-- of any daemon started since the last cleanup (so a build with LUADGRAM_SANITIZE=ON fails
-- the spec that triggered them).
function h.cleanup()
  local bad = {}
  while #started > 0 do
    local d = started[#started]
    local how, code = d:stop(10)
    if how ~= "exit" or code ~= 0 then
      bad[#bad + 1] = string.format("luadgramd %d did not exit 0 on SIGTERM: %s %s\n%s",
                                    d.pid, tostring(how), tostring(code), d:tail(20))
    end
    if started[#started] == d then table.remove(started) end
  end
  for _, d in ipairs(all_started) do
    local report = h.sanitizer_report(d:log())
    if report then
      bad[#bad + 1] = string.format("sanitizer report in the log of luadgramd %d:\n%s", d.pid,
                                    report)
    end
  end
  all_started = {}
  for _, dir in ipairs(tmpdirs) do os.execute("rm -rf " .. h.shq(dir)) end
  tmpdirs = {}
  return bad
end

-- ---- readable failures ----

-- When a test fails, or a setup or teardown raises, the last lines of the log of every daemon
-- started since the last cleanup go to stderr, so that ctest's output shows what the daemon
-- said around the failure. A test's end is published after the output handler's (which
-- subscribed first) and before after_each cleans up, so the lines follow the "not ok" line.
local function print_daemon_logs()
  io.stdout:flush() -- the output handler's lines so far, then ours
  for _, d in ipairs(all_started) do
    io.stderr:write(string.format("--- luadgramd %d (%s), last lines of %s ---\n%s\n---\n",
                                  d.pid, d:state(), d.log_path, d:tail(60)))
  end
end

do
  -- Outside busted (a plain lua5.4), require "busted" has no subscribe: nothing to hook.
  local ok, busted = pcall(require, "busted")
  if ok and type(busted) == "table" and busted.subscribe then
    busted.subscribe({ "test", "end" }, function(_, _, status)
      if status == "failure" or status == "error" then print_daemon_logs() end
      return nil, true -- true: later subscribers still get the event
    end)
    -- errors outside a test body: setup, teardown, before_each, after_each
    busted.subscribe({ "error" }, function(element)
      if element.descriptor ~= "it" then print_daemon_logs() end
      return nil, true
    end)
  end
end

-- For after_each: cleans up and fails when cleanup found a problem.
function h.cleanup_and_check()
  local bad = h.cleanup()
  if #bad > 0 then error(table.concat(bad, "\n\n"), 2) end
end

-- ---- metrics ----

-- The /metrics text of a daemon whose config has metrics = "127.0.0.1:port", or nil, err.
function h.metrics(port)
  local p = io.popen("curl -sS --max-time 2 http://127.0.0.1:" .. port .. "/metrics 2>&1")
  local text = p:read("a")
  local ok = p:close()
  if not ok then return nil, text end
  return text
end

-- The sum of the samples of metric `name` whose labels include listener="listener" (or all
-- samples of `name` when listener is nil); nil if there is none.
function h.metric(text, name, listener)
  local sum
  for line in text:gmatch("[^\n]+") do
    local n, labels, v = line:match("^([%w_:]+)(%b{})%s+(%S+)")
    if not n then
      n, v = line:match("^([%w_:]+)%s+(%S+)")
      labels = ""
    end
    if n == name and (listener == nil or labels:find('listener="' .. listener .. '"', 1, true))
       and tonumber(v) then
      sum = (sum or 0) + tonumber(v)
    end
  end
  return sum
end

-- Polls /metrics until metric (for listener) equals expected; returns its last value and the
-- last text.
function h.wait_metric(port, name, listener, expected, timeout)
  local value, text
  h.wait_for(function()
    text = h.metrics(port)
    value = text and h.metric(text, name, listener)
    return value == expected
  end, timeout or 3, 0.05)
  return value, text
end

-- ---- what the kernel says about sockets ----

-- The UDP sockets bound to local `port` right now, from /proc/net/udp (family "inet") or
-- /proc/net/udp6 ("inet6"): a list of { ip_hex =, inode = } (inode as a number).
function h.udp_sockets(port, family)
  local file = family == "inet6" and "/proc/net/udp6" or "/proc/net/udp"
  local out = {}
  for line in (h.read(file) or ""):gmatch("[^\n]+") do
    local ip, p, inode = line:match("^%s*%d+: (%x+):(%x+) %x+:%x+ %x+ %x+:%x+ %x+:%x+ %x+%s+"
                                    .. "%d+%s+%d+%s+(%d+)")
    if ip and tonumber(p, 16) == port then
      out[#out + 1] = { ip_hex = ip, inode = tonumber(inode) }
    end
  end
  return out
end

-- The receive buffer sizes (skmem rb, the value SO_RCVBUF reads back) of the UDP sockets
-- bound to local `port`, from `ss -m` (iproute2), as a list of numbers.
function h.udp_rcvbufs(port)
  local out = {}
  local text = h.capture("ss -H -u -a -n -m " .. h.shq("sport = :" .. port) .. " 2>/dev/null")
  for rb in text:gmatch("skmem:%(r%d+,rb(%d+)") do out[#out + 1] = tonumber(rb) end
  return out
end

-- The uid or gid of `name` (`id -u NAME` / `id -g NAME`), nil when there is no such user.
function h.id_of(name, what)
  local v = h.capture("id -" .. (what or "u") .. " " .. h.shq(name) .. " 2>/dev/null")
  return tonumber(v)
end

function h.is_root() return h.capture("id -u") == "0" end

-- ---- clients ----

local Udp = {}
Udp.__index = Udp

-- A UDP client: family "inet" (default) or "inet6", bound to `ip` (default: the wildcard of
-- its family) on an ephemeral port, receive timeout 2 s.
function h.udp(family, ip)
  local s = family == "inet6" and socket.udp6() or socket.udp4()
  assert(s:setsockname(ip or "*", 0))
  s:settimeout(2)
  return setmetatable({ s = s }, Udp)
end

function Udp:port() local _, port = self.s:getsockname() return tonumber(port) end
function Udp:send(ip, port, data) return assert(self.s:sendto(data, ip, port)) end

-- data, ip, port of the next datagram, or nil, "timeout".
function Udp:recv(timeout)
  self.s:settimeout(timeout or 2)
  return self.s:receivefrom()
end

-- Sends and waits for one reply: data, ip, port or nil, err.
function Udp:ask(ip, port, data, timeout)
  self:send(ip, port, data)
  return self:recv(timeout)
end

function Udp:setoption(...) return self.s:setoption(...) end
function Udp:close() self.s:close() end

local Unix = {}
Unix.__index = Unix

-- A unix datagram client bound to `path` (unbound when path is nil), receive timeout 2 s.
function h.unix(path)
  local s = assert(unix.dgram())
  if path then assert(s:bind(path)) end
  s:settimeout(2)
  return setmetatable({ s = s, path = path }, Unix)
end

function Unix:send(to, data) return self.s:sendto(data, to) end

-- data, sender path of the next datagram, or nil, "timeout".
function Unix:recv(timeout)
  self.s:settimeout(timeout or 2)
  return self.s:receivefrom()
end

function Unix:ask(to, data, timeout)
  assert(self:send(to, data))
  return self:recv(timeout)
end

function Unix:close()
  self.s:close()
  if self.path then os.remove(self.path) end
end

-- A notification socket as systemd's: a unix datagram socket bound to `path`, or (path nil)
-- to an abstract address the kernel picks (autobind), read back from /proc/net/unix.
-- n.addr is the value for NOTIFY_SOCKET ("/path" or "@name"); nil, err when it cannot be.
local Notify = {}
Notify.__index = Notify

function h.notify_socket(path)
  local s = assert(unix.dgram())
  local n = setmetatable({ s = s, path = path }, Notify)
  if path then
    assert(s:bind(path))
    n.addr = path
    return n
  end
  -- lua-socket binds with SUN_LEN: an empty path is a bare family, which autobinds.
  local ok, err = s:bind("")
  if not ok then s:close() return nil, "bind: " .. tostring(err) end
  local link = h.capture("readlink /proc/" .. h.mypid() .. "/fd/" .. math.tointeger(s:getfd())
                         .. " 2>/dev/null")
  local inode = link:match("^socket:%[(%d+)%]$")
  for line in (h.read("/proc/net/unix") or ""):gmatch("[^\n]+") do
    local ino, name = line:match("%s(%d+)%s+(@%S+)$")
    if inode and ino == inode then n.addr = name end
  end
  if not n.addr then s:close() return nil, "no abstract name for socket " .. link end
  return n
end

-- The next notification (a string such as "READY=1\nSTATUS=running"), or nil, "timeout".
function Notify:recv(timeout)
  self.s:settimeout(timeout or 5)
  return self.s:receive()
end

-- The notification as a table of its NAME=value lines.
function h.notify_fields(text)
  local t = {}
  for k, v in tostring(text or ""):gmatch("([%w_]+)=([^\n]*)") do t[k] = v end
  return t
end

function Notify:close()
  self.s:close()
  if self.path then os.remove(self.path) end
end

-- n UDP ports (a list) that differ from each other and are each free right now on every
-- IPv4 and IPv6 address: each is held bound on 0.0.0.0 and on [::] (IPv6-only) until the
-- last is picked, so that none can coincide with another, whatever the address family or
-- listener it goes to (a dual-stack [::] bind included). Raises when 100 ports taken on
-- 0.0.0.0 were all busy on [::].
function h.free_ports(n)
  local held, ports = {}, {}
  local function hold(s) held[#held + 1] = s end
  local tries = 0
  while #ports < n do
    tries = tries + 1
    assert(tries <= n + 100, "h.free_ports: no port free on both 0.0.0.0 and [::]")
    local s4 = socket.udp4()
    assert(s4:setsockname("0.0.0.0", 0))
    hold(s4) -- kept while picking, busy or not: the kernel cannot hand it out again
    local _, port = s4:getsockname()
    port = tonumber(port)
    local s6 = socket.udp6() -- IPv6-only: lua-socket sets it on every udp6 socket
    if s6:setsockname("::", port) then
      hold(s6)
      ports[#ports + 1] = port
    else
      s6:close()
    end
  end
  for _, s in ipairs(held) do s:close() end
  return ports
end

-- The shipped configuration's text (conf/luadgramd.conf, or the package's copy) with free
-- ports in place of its fixed ones: the echo, snmptrap and syslog listeners' (7777, 1162,
-- 5514, each bound on 127.0.0.1 and ::1) and the metrics' (127.0.0.1:9177), since another
-- daemon may hold those on a shared machine. Returns the text, the three UDP ports in that
-- order and the metrics port.
function h.shipped_conf_on_free_ports(text)
  local ports, n = h.free_ports(3), nil
  for i, fixed in ipairs { 7777, 1162, 5514 } do
    text, n = text:gsub(":" .. fixed .. '"', ":" .. ports[i] .. '"')
    assert(n == 2, "binds of port " .. fixed .. ": " .. n .. " (2 expected)")
  end
  local mport = h.free_tcp_port()
  text, n = text:gsub('"127%.0%.0%.1:9177"', '"127.0.0.1:' .. mport .. '"')
  assert(n == 1, "the metrics address: " .. n .. " (1 expected)")
  return text, ports, mport
end

return h
