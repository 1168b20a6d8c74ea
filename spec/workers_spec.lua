-- spec/workers_spec.lua: luadgramd with several workers: one SO_REUSEPORT socket per worker
-- per UDP bind, datagrams from many source ports spread over the workers and each answered
-- once, luadgram.counter totals across workers in /metrics, workers = "auto", a unix socket
-- read by exactly one worker, SIGHUP without loss and stop() in every worker on SIGTERM.
local h = require "helpers"

local function escape(s) return (s:gsub("%p", "%%%0")) end

-- Lines of `log` matching `pattern`, as a list of captures (or whole matches).
local function matches(log, pattern)
  local out = {}
  for line in log:gmatch("[^\n]+") do
    local m = line:match(pattern)
    if m then out[#out + 1] = m end
  end
  return out
end

local function keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- /proc/net/udp{,6}'s hex of the loopback addresses the listeners bind.
local LOOPBACK_HEX = { inet = "0100007F", inet6 = "00000000000000000000000001000000" }

-- How many UDP sockets are bound to loopback (127.0.0.1 or ::1) on `port` (other
-- addresses may hold the same port number for another process).
local function loopback_sockets(port, family)
  local n = 0
  for _, s in ipairs(h.udp_sockets(port, family)) do
    if s.ip_hex == LOOPBACK_HEX[family] then n = n + 1 end
  end
  return n
end

-- n UDP clients on 127.0.0.1, each on its own ephemeral source port.
local function clients(n)
  local cs = {}
  for i = 1, n do cs[i] = h.udp("inet", "127.0.0.1") end
  return cs
end

local function close_all(cs)
  for _, c in ipairs(cs) do c:close() end
end

describe("luadgramd workers", function()
  after_each(h.cleanup_and_check)

  it("opens one SO_REUSEPORT socket per worker for each UDP bind", function()
    local p4, p6, mport = h.free_port("127.0.0.1"), h.free_port("::1"), h.free_tcp_port()
    local d = h.start {
      workers = 2, metrics = "127.0.0.1:" .. mport, ready = "running: ",
      listeners = { { name = "w", handler = "sd_worker",
                      bind = { "127.0.0.1:" .. p4, "[::1]:" .. p6 } } },
    }
    local log = d:log()
    for _, b in ipairs { "127.0.0.1:" .. p4, "[::1]:" .. p6 } do
      local lines = matches(log, "listener 'w': bound " .. escape(b) .. "(.*)$")
      table.sort(lines)
      assert.are.same({ "", " (another worker's socket)" }, lines,
                      d:explain("bound lines for %s", b))
    end
    assert.are.equal(4, d:bound_count("w"), d:explain("bound lines"))
    assert.is_truthy(log:find("running: 1 listeners, 2 workers", 1, true),
                     d:explain("no running line with 2 workers"))
    -- the kernel agrees: two sockets on each port
    assert.are.equal(2, loopback_sockets(p4, "inet"))
    assert.are.equal(2, loopback_sockets(p6, "inet6"))
    local inits = matches(log, "sd_worker init w worker (%d) of 2")
    table.sort(inits)
    assert.are.same({ "1", "2" }, inits, d:explain("init in each worker"))
    local n, text = h.wait_metric(mport, "luadgramd_workers", nil, 2)
    assert.are.equal(2, n, d:explain("/metrics:\n%s", tostring(text)))
  end)

  it("spreads datagrams from many source ports over both workers, each answered once",
     function()
    local port, mport = h.free_port("127.0.0.1"), h.free_tcp_port()
    local d = h.start {
      workers = 2, metrics = "127.0.0.1:" .. mport, ready = "running: ",
      listeners = { { name = "spread", handler = "sd_worker", bind = "127.0.0.1:" .. port } },
    }
    local N = 64
    local cs = clients(N)
    finally(function() close_all(cs) end)
    for i, c in ipairs(cs) do c:send("127.0.0.1", port, "d" .. i) end
    local per_worker = {}
    for i, c in ipairs(cs) do
      local data = c:recv(3)
      local r = h.parse(assert(data, d:explain("no reply for client %d", i)))
      assert.are.equal("d" .. i, r.data, "client " .. i .. " got another client's reply")
      assert.are.equal(2, r.workers)
      assert.are.equal("spread", r.listener)
      assert.is_truthy(r.worker == 1 or r.worker == 2, "worker " .. tostring(r.worker))
      per_worker[r.worker] = (per_worker[r.worker] or 0) + 1
    end
    assert.are.same({ 1, 2 }, keys(per_worker),
                    d:explain("replies per worker: 1: %s, 2: %s", tostring(per_worker[1]),
                              tostring(per_worker[2])))
    h.sleep(0.2)
    for i, c in ipairs(cs) do
      assert.is_nil(c:recv(0), "client " .. i .. " got a second reply")
    end

    -- sent_total is counted last, after the send (a client may read its reply first):
    -- once it shows N, so do the others; the counter incremented in both workers' states
    -- shows the total
    local sent, text = h.wait_metric(mport, "luadgramd_sent_total", "spread", N)
    assert.are.equal(N, sent, d:explain("/metrics:\n%s", tostring(text)))
    assert.are.equal(N, h.metric(text, "luadgramd_user_sd_worker_datagrams"))
    assert.are.equal(N, h.metric(text, "luadgramd_received_total", "spread"))
    assert.are.equal(N, h.metric(text, "luadgramd_handled_total", "spread"))
    assert.are.equal(0, h.metric(text, "luadgramd_handler_errors_total", "spread"))
    assert.are.equal(2, h.metric(text, "luadgramd_workers"))
  end)

  it("workers = \"auto\" runs one worker per CPU", function()
    local port, mport = h.free_port("127.0.0.1"), h.free_tcp_port()
    local ncpu = tonumber(h.capture("nproc"))
    assert.is_number(ncpu)
    local d = h.start {
      workers = "auto", metrics = "127.0.0.1:" .. mport, ready = "running: ",
      listeners = { { name = "auto", handler = "sd_worker", bind = "127.0.0.1:" .. port } },
    }
    assert.is_truthy(d:log():find("running: 1 listeners, " .. ncpu .. " workers", 1, true),
                     d:explain("expected %d workers", ncpu))
    local n, text = h.wait_metric(mport, "luadgramd_workers", nil, ncpu)
    assert.are.equal(ncpu, n, d:explain("/metrics:\n%s", tostring(text)))
    local inits = matches(d:log(), "sd_worker init auto worker %d+ of (%d+)")
    assert.are.equal(ncpu, #inits, d:explain("init lines"))
    for _, of in ipairs(inits) do assert.are.equal(tostring(ncpu), of) end
    assert.are.equal(ncpu, loopback_sockets(port, "inet"))
    local c = h.udp("inet", "127.0.0.1")
    finally(function() c:close() end)
    local r = h.parse(assert(c:ask("127.0.0.1", port, "x"), d:explain("no reply")))
    assert.are.equal(ncpu, r.workers)
  end)

  it("has exactly one worker read a unix socket", function()
    local dir = h.tmpdir()
    local port = h.free_port("127.0.0.1")
    local path = dir .. "/w.sock"
    local d = h.start {
      workers = 2, ready = "running: ",
      listeners = {
        { name = "udp", handler = "sd_worker", bind = "127.0.0.1:" .. port },
        { name = "ux", handler = "sd_worker", bind = "unix:" .. path },
      },
    }
    local cs = {}
    finally(function() for _, c in ipairs(cs) do c:close() end end)
    local seen, answered = {}, 0
    for i = 1, 8 do
      cs[i] = h.unix(dir .. "/c" .. i)
      for j = 1, 4 do
        local data = cs[i]:ask(path, "u" .. i .. "." .. j)
        local r = h.parse(assert(data, d:explain("no reply to unix client %d, datagram %d", i,
                                                 j)))
        assert.are.equal("u" .. i .. "." .. j, r.data)
        assert.are.equal("ux", r.listener)
        seen[r.worker] = true
        answered = answered + 1
      end
    end
    assert.are.equal(32, answered)
    local ids = keys(seen)
    assert.are.equal(1, #ids, d:explain("unix replies from workers %s", table.concat(ids, ",")))
    -- the handler is loaded only in the worker that reads the socket
    local inits = matches(d:log(), "sd_worker init ux worker (%d) of 2")
    assert.are.same({ tostring(ids[1]) }, inits, d:explain("init lines of 'ux'"))
    assert.are.equal(1, d:bound_count("ux"), d:explain("bound lines of 'ux'"))
  end)

  it("keeps answering every datagram exactly once across SIGHUP", function()
    local port, mport = h.free_port("127.0.0.1"), h.free_tcp_port()
    local d = h.start {
      workers = 2, metrics = "127.0.0.1:" .. mport, ready = "running: ",
      listeners = { { name = "hup", handler = "sd_worker", bind = "127.0.0.1:" .. port,
                      recv = { rcvbuf = 1048576 } } },
    }
    local cs = clients(16)
    finally(function() close_all(cs) end)
    local N, HUP_AT = 480, 160
    local got, dup = {}, {}
    local nreplies = 0
    local function drain()
      for _, c in ipairs(cs) do
        while true do
          local data = c:recv(0)
          if not data then break end
          local r = h.parse(data)
          if got[r.data] then dup[#dup + 1] = r.data end
          got[r.data] = true
          nreplies = nreplies + 1
        end
      end
    end
    local t0 = h.now()
    for i = 1, N do
      cs[(i - 1) % #cs + 1]:send("127.0.0.1", port, "n" .. i)
      if i == HUP_AT then assert(d:signal("HUP")) end
      if i % 8 == 0 then
        h.sleep(0.005)
        drain()
      end
    end
    h.wait_for(function() drain() return nreplies >= N end, 5, 0.01)
    h.sleep(0.1)
    drain()
    local missing = {}
    for i = 1, N do
      if not got["n" .. i] then missing[#missing + 1] = i end
    end
    local why = d:explain("%d replies to %d datagrams in %.1f s; missing %s; repeated %s",
                          nreplies, N, h.now() - t0, table.concat(missing, ",", 1,
                          math.min(#missing, 20)), table.concat(dup, ","))
    assert.are.equal(0, #missing, why)
    assert.are.equal(0, #dup, why)
    assert.are.equal(N, nreplies, why)
    assert.is_truthy(d:wait_log("reloaded: 1 listeners, 2 workers", 3, true), why)
    local reloads, text = h.wait_metric(mport, "luadgramd_reloads_total", nil, 1)
    assert.are.equal(1, reloads, d:explain("/metrics:\n%s", tostring(text)))
    -- after the reload both new workers answer again
    local late = clients(32)
    finally(function() close_all(late) end)
    local after = {}
    for i, c in ipairs(late) do
      local r = h.parse(assert(c:ask("127.0.0.1", port, "late" .. i), d:explain("late %d", i)))
      after[r.worker] = true
    end
    assert.are.same({ 1, 2 }, keys(after), d:explain("workers answering after the reload"))
  end)

  it("runs stop() in every worker's state on SIGTERM", function()
    local port = h.free_port("127.0.0.1")
    local marker_dir = h.tmpdir()
    local d = h.start {
      workers = 2, ready = "running: ",
      listeners = { { name = "st", handler = "sd_worker", bind = "127.0.0.1:" .. port,
                      options = { marker_dir = marker_dir } } },
    }
    local c = h.udp("inet", "127.0.0.1")
    finally(function() c:close() end)
    assert.is_string(c:ask("127.0.0.1", port, "hi"), d:explain("no reply"))
    for w = 1, 2 do
      assert.is_nil(h.read(marker_dir .. "/stop-st-" .. w), "stop() ran before SIGTERM")
    end
    local how, code = d:stop(5)
    assert.are.same({ "exit", 0 }, { how, code }, d:explain("exit after SIGTERM"))
    for w = 1, 2 do
      assert.are.equal("stop " .. w .. "\n", h.read(marker_dir .. "/stop-st-" .. w),
                       d:explain("stop() of worker %d", w))
    end
  end)
end)
