-- spec/servers.lua: the real servers the output specs publish to, each started in a temp
-- folder on ephemeral loopback ports and stopped by its PID: a three-node nats-server
-- cluster with JetStream, a redis-server with appendfsync always. And the reader of a
-- JetStream stream (build/nats_stream: no NATS CLI in Debian 12).
local h = require "helpers"

local S = {}

local running = {}  -- servers not yet stopped, for S.stop_all

local Proc = {}
Proc.__index = Proc

-- Starts `cmd` (a shell command line, exec'd) with its output to `log`.
local function spawn(cmd, log)
  local handle = assert(io.popen(string.format("echo $$; exec %s >%s 2>&1 </dev/null", cmd,
                                               h.shq(log)), "r"))
  local pid = assert(tonumber(handle:read("l")))
  local p = setmetatable({ pid = pid, handle = handle, log = log, cmd = cmd }, Proc)
  running[p] = true
  return p
end

function Proc:alive()
  local st = h.read("/proc/" .. self.pid .. "/stat")
  return st ~= nil and not st:match("^%d+ %b() Z")
end

-- Sends sig (default TERM) and reaps the process (at most 10 s, then KILL).
function Proc:stop(sig)
  if not self.handle then return end
  os.execute(string.format("kill -%s %d 2>/dev/null", sig or "TERM", self.pid))
  if not h.wait_for(function() return not self:alive() end, 10) then
    os.execute(string.format("kill -KILL %d 2>/dev/null", self.pid))
  end
  self.handle:close()
  self.handle = nil
  running[self] = nil
end

-- Sends a signal without reaping (STOP, CONT).
function Proc:signal(sig)
  os.execute(string.format("kill -%s %d 2>/dev/null", sig, self.pid))
end

function Proc:restart()
  assert(not self.handle, "still running")
  local again = spawn(self.cmd, self.log)
  self.pid, self.handle = again.pid, again.handle
  running[again] = nil
  running[self] = true
end

function S.stop_all()
  for p in pairs(running) do p:stop("KILL") end
end

-- after_each of the specs that start servers: the daemons' check (h.cleanup_and_check), then
-- every server stopped even when that check failed, then its failure raised.
function S.cleanup()
  local ok, err = pcall(h.cleanup_and_check)
  S.stop_all()
  assert(ok, err)
end

-- n distinct free TCP ports on 127.0.0.1 for servers, all held open while picked, and
-- picked below the kernel's ephemeral range (net.ipv4.ip_local_port_range): the servers
-- here are stopped and started again on the same ports, and in between the local port of
-- any outgoing connection (a node dialling its routes, a client reconnecting) could take
-- an ephemeral one, so that the restart would fail with "address already in use".
local function free_tcp_ports(n)
  local socket = require "socket"
  local range = h.read("/proc/sys/net/ipv4/ip_local_port_range") or ""
  local low = tonumber(range:match("^%s*(%d+)")) or 32768
  assert(low > 11024, "the ephemeral port range starts too low: " .. range)
  local held, ports, tries = {}, {}, 0
  while #ports < n do
    tries = tries + 1
    assert(tries <= 1000, "no free port from 10000 to " .. (low - 1))
    local port = math.random(10000, low - 1)
    local s = socket.tcp4()
    if s:bind("127.0.0.1", port) then
      held[#held + 1] = s
      ports[#ports + 1] = port
    else
      s:close()
    end
  end
  for _, s in ipairs(held) do s:close() end
  return ports
end

-- ---- NATS ----

S.nats_tool = h.build .. "/nats_stream"

-- Runs the reader: its stdout and whether it exited 0.
function S.nats_run(url, ...)
  local args = { h.shq(S.nats_tool), h.shq(url) }
  for _, a in ipairs({ ... }) do args[#args + 1] = h.shq(a) end
  local p = io.popen("timeout 20 " .. table.concat(args, " ") .. " 2>/dev/null")
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

-- Starts a three-node cluster (server names n1, n2, n3), waits until JetStream answers on
-- every node. Returns { urls = {...}, nodes = { name = proc }, dir = }.
function S.nats_cluster()
  local dir = h.tmpdir()
  local ports, routes, free = {}, {}, free_tcp_ports(6)
  for i = 1, 3 do
    ports[i] = { client = free[2 * i - 1], route = free[2 * i] }
  end
  for i = 1, 3 do routes[i] = "nats-route://127.0.0.1:" .. ports[i].route end
  local c = { urls = {}, nodes = {}, dir = dir }
  for i = 1, 3 do
    local name = "n" .. i
    local conf = string.format([[
server_name: %s
listen: 127.0.0.1:%d
jetstream { store_dir: "%s/%s", max_file_store: 1G, max_memory_store: 64M }
cluster { name: luadgram, listen: 127.0.0.1:%d, routes: [ %s ] }
]], name, ports[i].client, dir, name, ports[i].route, table.concat(routes, ", "))
    h.write(dir .. "/" .. name .. ".conf", conf)
    c.urls[i] = "nats://127.0.0.1:" .. ports[i].client
    c.nodes[name] = spawn("nats-server -c " .. h.shq(dir .. "/" .. name .. ".conf"),
                          dir .. "/" .. name .. ".log")
  end
  S.nats_wait_ready(c)
  return c
end

-- Waits (timeout s, default 30, per node) until JetStream answers on every node; raises with
-- each node's state and the end of its log otherwise.
function S.nats_wait_ready(c, timeout)
  for i, url in ipairs(c.urls) do
    local ok = h.wait_for(function() return select(2, S.nats_run(url, "ready")) end,
                          timeout or 30, 0.2)
    if not ok then
      local why = { "JetStream did not answer on " .. url .. " (n" .. i .. ")" }
      for j = 1, #c.urls do
        local node = c.nodes["n" .. j]
        local lines = {}
        for l in ((h.read(node.log) or "") .. "\n"):gmatch("([^\n]*)\n") do
          lines[#lines + 1] = l
        end
        why[#why + 1] = string.format("--- n%d (pid %d, %s), last lines of %s ---", j, node.pid,
                                      node:alive() and "running" or "gone", node.log)
        for k = math.max(1, #lines - 15), #lines do why[#why + 1] = lines[k] end
      end
      error(table.concat(why, "\n"), 2)
    end
  end
end

-- The stream's leader (a node's proc and name), asked on any node that answers.
function S.nats_leader(c, stream)
  local name
  h.wait_for(function()
    for _, url in ipairs(c.urls) do
      local out, ok = S.nats_run(url, "leader", stream)
      if ok and out:match("^n%d") then name = out:match("^(n%d)") return true end
    end
  end, 20, 0.2)
  assert(name, "no leader for stream " .. stream)
  return c.nodes[name], name
end

-- The stream's messages: count (as the stream says) and a list of { id =, data = }.
function S.nats_dump(c, stream)
  local out
  assert(h.wait_for(function()
    for _, url in ipairs(c.urls) do
      local text, ok = S.nats_run(url, "dump", stream)
      if ok then out = text return true end
    end
  end, 20, 0.2), "cannot read stream " .. stream)
  local count = tonumber(out:match("^count (%d+)"))
  local msgs = {}
  for id, data in out:gmatch("\n(%S+) ([^\n]*)") do msgs[#msgs + 1] = { id = id, data = data } end
  return count, msgs
end

-- ---- Redis ----

-- Starts redis-server on an ephemeral port with its data (AOF, appendfsync always) in a temp
-- folder. Returns { port =, proc =, dir = }.
function S.redis()
  local dir = h.tmpdir()
  local port = free_tcp_ports(1)[1]
  local r = { port = port, dir = dir }
  r.proc = spawn(string.format("redis-server --bind 127.0.0.1 --port %d --dir %s "
                               .. "--appendonly yes --appendfsync always --save '' "
                               .. "--daemonize no", port, h.shq(dir)), dir .. "/redis.log")
  S.redis_wait_ready(r)
  return r
end

function S.redis_cli(r, args)
  local p = io.popen(string.format("redis-cli -p %d %s 2>&1", r.port, args))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

function S.redis_wait_ready(r)
  assert(h.wait_for(function()
    local out = S.redis_cli(r, "PING")
    return out:match("PONG")
  end, 20, 0.1), "redis-server did not answer")
end

-- The stream's entries: a list of { id =, data = } (one XRANGE of at most max entries;
-- --raw prints each entry as five lines: stream id, "id", record id, "data", data; the
-- records hold no newline).
function S.redis_entries(r, stream, max)
  local text = S.redis_cli(r, string.format("--raw XRANGE %s - + COUNT %d", stream, max))
  local lines, out = {}, {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  for i = 1, #lines - 4, 5 do
    assert(lines[i + 1] == "id" and lines[i + 3] == "data", "bad XRANGE entry at line " .. i)
    out[#out + 1] = { id = lines[i + 2], data = lines[i + 4] }
  end
  return out
end

-- ---- bad configuration ----

-- Starts a daemon whose listener "pub" runs spec/fixtures/publisher.lua with `options`
-- ({ nats = ... } or { redis = ... }), expecting it to fail: its exit code, its stderr and
-- the configuration's FILE:LINE of `listen "pub"` (which the error must name).
function S.start_fails(options)
  local conf = h.tmpdir() .. "/luadgramd.conf"
  local text = h.config_text { listeners = { {
    name = "pub", bind = "127.0.0.1:" .. h.free_port(),
    handler = h.src .. "/spec/fixtures/publisher.lua", options = options,
  } } }
  h.write(conf, text)
  local line = 1
  for l in text:gmatch("([^\n]*)\n") do
    if l:find('listen "pub"', 1, true) then break end
    line = line + 1
  end
  local code, _, err = h.run("-c " .. h.shq(conf), 30)
  return code, err, conf .. ":" .. line
end

-- ---- load and settling, for every output spec ----

-- Sends payload(i) for i = from .. to at about `rate` a second from udp socket c; calls
-- during(i) before each one (a failover step). Bounded in count and time.
function S.load(c, port, from, to, rate, during, payload)
  local start = h.now()
  for i = from, to do
    if during then during(i) end
    c:send("127.0.0.1", port, payload and payload(i) or "rec-" .. i)
    local ahead = (i - from + 1) / rate - (h.now() - start)
    if ahead > 0.005 then h.sleep(ahead) end
  end
end

-- Waits (timeout s, default 40) until listener's output published `published` records,
-- all acknowledged, nothing in flight or spooled; raises with the counters otherwise.
function S.wait_settled(mport, listener, published, timeout)
  local last
  local ok = h.wait_for(function()
    local text = h.metrics(mport)
    if not text then return false end
    local function m(n) return h.metric(text, "luadgramd_output_" .. n, listener) end
    last = string.format("published %s acked %s retried %s spooled %s inflight %s "
                         .. "spool_bytes %s dropped %s", m("published_total"), m("acked_total"),
                         m("retried_total"), m("spooled_total"), m("inflight"),
                         m("spool_bytes"), m("dropped_total"))
    return m("published_total") == published and m("inflight") == 0 and m("spool_bytes") == 0
           and m("acked_total") >= published
  end, timeout or 40, 0.2)
  assert(ok, "the output did not settle: " .. tostring(last))
end

return S
