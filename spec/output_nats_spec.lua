-- spec/output_nats_spec.lua: luadgram.nats against a real three-node nats-server cluster
-- with JetStream (spec/servers.lua): every record lands exactly once in an R3 stream while
-- the stream's leader is SIGKILLed and restarted, and while all servers are down (spooled,
-- then replayed), also across a restart of luadgramd; an echo listener on the same worker
-- keeps answering meanwhile; bad configurations fail at start with exact messages.
-- LUADGRAM_OUTPUT_N records per test (default 2000, at most ~2000/s: the issue's 100,000 at
-- 20,000/s is bench/'s); the spec stays under a minute on a loaded machine.
local h = require "helpers"
local S = require "servers"

local N = tonumber(os.getenv("LUADGRAM_OUTPUT_N") or "") or 2000
local STREAM = "LOGS"

-- A daemon with listener "pub" (spec/fixtures/publisher.lua, publishing to the cluster)
-- and listener "echo" on the same single worker; spool under spool_dir.
local function start_daemon(c, spool_dir, extra)
  local port, eport, mport = h.free_port(), h.free_port(), h.free_tcp_port()
  local nats = { servers = c.urls, subject = "logs.test", stream = STREAM,
                 create = { replicas = 3, duplicate_window = 120 }, ack_wait = 2,
                 max_inflight = 256, spool = { path = spool_dir, max_bytes = 64 << 20 } }
  for k, v in pairs(extra or {}) do nats[k] = v end
  local d = h.start {
    workers = 1, metrics = "127.0.0.1:" .. mport, log_level = "info",
    -- bound comes before init: wait for the output's own line
    ready = "output 'nats': connected",
    listeners = {
      { name = "pub", bind = "127.0.0.1:" .. port,
        handler = h.src .. "/spec/fixtures/publisher.lua", recv = { rcvbuf = 4194304 },
        options = { nats = nats } },
      { name = "echo", bind = "127.0.0.1:" .. eport, handler = "echo" },
    },
  }
  return d, port, eport, mport
end

-- Asserts the stream holds exactly records rec-1 .. rec-n, each once, each with its own id.
local function assert_exactly(c, n)
  local count, msgs = S.nats_dump(c, STREAM)
  local seen, ids, dup, missing = {}, {}, {}, {}
  for _, m in ipairs(msgs) do
    if seen[m.data] then dup[#dup + 1] = m.data end
    seen[m.data] = true
    assert.is_nil(ids[m.id], "id used twice: " .. m.id)
    ids[m.id] = true
    assert.truthy(m.id:match("^pub/1/%x+/%d+$"), "bad id " .. m.id)
  end
  for i = 1, n do
    if not seen["rec-" .. i] then missing[#missing + 1] = i end
  end
  assert.are.same({}, dup)
  assert.are.same({}, missing)
  assert.are.equal(n, count)
  assert.are.equal(n, #msgs)
end

describe("luadgram.nats", function()
  local cluster

  before_each(function() cluster = S.nats_cluster() end)

  after_each(S.cleanup)

  it("puts every record exactly once into an R3 stream while its leader is killed", function()
    local spool = h.tmpdir()
    local d, port, eport, mport = start_daemon(cluster, spool)
    local c = h.udp("inet", "127.0.0.1")
    local echo = h.udp("inet", "127.0.0.1")
    local leader, leader_name
    local worst = {}
    S.load(c, port, 1, N, 2000, function(i)
      if i == N // 3 then
        -- stopped first, so that records are in flight (stored or not, their acks lost)
        -- when it is killed
        leader, leader_name = S.nats_leader(cluster, STREAM)
        leader:signal("STOP")
      elseif i == N // 3 + 100 then
        leader:stop("KILL")
      elseif i == 2 * N // 3 then
        leader:restart()
      end
      if i % 20 == 0 then -- the echo listener on the same worker
        local t0 = h.now()
        local reply = echo:ask("127.0.0.1", eport, "ping-" .. i, 2)
        assert.are.equal("ping-" .. i, reply)
        worst[#worst + 1] = h.now() - t0
      end
    end)
    S.wait_settled(mport, "pub", N)
    assert_exactly(cluster, N)
    local text = h.metrics(mport)
    assert.are.equal(0, h.metric(text, "luadgramd_kernel_drops_total", "pub"))
    -- replay backs off while acks fail (no leader): without the backoff, ~150 x N
    local retried = h.metric(text, "luadgramd_output_retried_total", "pub")
    print(string.format("# retried %d for %d records", retried, N))
    assert.is_true(retried < 20 * N, "retried " .. retried)
    -- The behaviour: every echo above was answered while the leader failed over. How fast
    -- (the issue's p99 < 50 ms) is bench/'s: bench/run.sh outputs_failover, bench/RESULTS.md.
    table.sort(worst)
    local p99 = worst[math.max(1, math.ceil(#worst * 0.99))]
    print(string.format("# leader %s killed; echo p99 %.1f ms over %d requests (not asserted)",
                        leader_name, p99 * 1000, #worst))
    assert.truthy(d:log():match("output 'nats': connected"))
  end)

  it("spools while all servers are down and delivers after they return, once", function()
    local spool = h.tmpdir()
    local d, port, _, mport = start_daemon(cluster, spool)
    local c = h.udp("inet", "127.0.0.1")
    S.load(c, port, 1, N // 4, 2000)
    for _, node in pairs(cluster.nodes) do node:stop("TERM") end
    S.load(c, port, N // 4 + 1, N // 2, 2000)
    assert.truthy(h.wait_for(function() return d:log():match("output 'nats': spooling") end, 10))
    -- the records sent before libnats saw the servers go come back after ack_wait (2 s)
    local spooled
    h.wait_for(function()
      local text = h.metrics(mport)
      spooled = text and h.metric(text, "luadgramd_output_spooled_total", "pub")
      return spooled and spooled >= N // 4
    end, 15, 0.1)
    assert.is_true(spooled >= N // 4, "spooled " .. tostring(spooled))
    for _, node in pairs(cluster.nodes) do node:restart() end
    S.nats_wait_ready(cluster)
    S.load(c, port, N // 2 + 1, N, 2000)
    S.wait_settled(mport, "pub", N)
    assert_exactly(cluster, N)
    assert.truthy(d:log():match("output 'nats': spool drained"))
    -- the output's thread and every thread libnats started from it (acks, reconnect, its
    -- timers and collector) run at its lower priority: none wakes at the worker's
    local base, outs = nil, {}
    for _, t in ipairs(h.thread_stats(d.pid)) do
      if t.tid == d.pid then base = t.nice end
      if t.name == "out:nats" then outs[#outs + 1] = t.nice end
    end
    assert.is_true(#outs >= 3, "threads out:nats: " .. #outs)
    for _, nice in ipairs(outs) do assert.are.equal(math.min(19, base + 10), nice) end
  end)

  it("reloads and stops cleanly with a publisher that never published", function()
    -- libnats 3.4 crashed when asked for the pending acks of a context that never published
    local d, port, _, mport = start_daemon(cluster, h.tmpdir())
    assert(d:signal("HUP"))
    assert.are.equal(1, h.wait_metric(mport, "luadgramd_reloads_total", nil, 1, 10))
    assert.truthy(d:wait_log("reloaded: ", 10), d:tail(20))
    assert.is_true(d:alive(), d:tail(20))
    local c = h.udp("inet", "127.0.0.1")
    assert.are.equal("ok", c:ask("127.0.0.1", port, "rec-1", 5))  -- the new state publishes
    assert.are.same({ "exit", 0 }, { d:stop(15) })
  end)

  it("keeps spooled records across a restart of luadgramd and delivers them", function()
    local spool = h.tmpdir()
    local d, port, _, mport = start_daemon(cluster, spool)
    local c = h.udp("inet", "127.0.0.1")
    S.load(c, port, 1, N // 2, 2000)
    S.wait_settled(mport, "pub", N // 2)
    for _, node in pairs(cluster.nodes) do node:stop("TERM") end
    S.load(c, port, N // 2 + 1, N, 2000)
    assert.are.equal(N, h.wait_metric(mport, "luadgramd_output_published_total", "pub", N, 10))
    local how, code = d:stop(10)
    assert.are.equal("exit", how)
    assert.are.equal(0, code)
    assert.truthy(d:log():match("bytes left in the spool for the next start"))
    for _, node in pairs(cluster.nodes) do node:restart() end
    S.nats_wait_ready(cluster)
    S.nats_leader(cluster, STREAM) -- the stream is back (its init checks it)
    local d2, _, _, mport2 = start_daemon(cluster, spool)
    assert.truthy(h.wait_for(function() return d2:log():match("spooled by an earlier run") end, 10))
    h.wait_for(function()
      local text = h.metrics(mport2)
      return text and h.metric(text, "luadgramd_output_spool_bytes", "pub") == 0
         and h.metric(text, "luadgramd_output_inflight", "pub") == 0
    end, 40, 0.2)
    assert_exactly(cluster, N)
  end)

  describe("bad configuration", function()
    -- (cluster is set by before_each: options are built inside each test)
    local function opts(extra)
      return function()
        local o = { servers = cluster.urls, subject = "logs.test", stream = STREAM }
        for k, v in pairs(extra) do o[k] = v end
        return o
      end
    end

    local where = h.src .. "/spec/fixtures/publisher.lua:10: "
    local dead = h.free_tcp_port()
    local cases = {
      { "an unknown stream", opts {},
        "luadgram.nats: nats: stream 'LOGS' not found (give create = { ... } to create it)" },
      { "an unreachable server", opts { servers = { "nats://127.0.0.1:" .. dead } },
        "luadgram.nats: nats: cannot connect to nats://127.0.0.1:" .. dead
        .. ": No server available for connection" },
      { "an empty token", opts { subject = "logs..test" },
        "luadgram.nats: bad subject 'logs..test' (dot-separated tokens, no spaces or wildcards)" },
      { "a wildcard", opts { subject = "logs.*" },
        "luadgram.nats: bad subject 'logs.*' (dot-separated tokens, no spaces or wildcards)" },
      { "a subject the stream does not hold", opts { subject = "other.test" },
        "luadgram.nats: nats: stream 'LOGS' does not hold subject 'other.test'", "create" },
      { "no servers", opts { servers = {} },
        "luadgram.nats: option 'servers' must list 1 to 16 \"nats://host:port\" strings" },
      { "max_inflight 0", opts { max_inflight = 0 },
        "luadgram.nats: option 'max_inflight' must be an integer from 1 to 1048576" },
    }
    for _, case in ipairs(cases) do
      it("fails the start on " .. case[1] .. ", naming the listen's line", function()
        if case[4] == "create" then
          local _, ok = S.nats_run(cluster.urls[1], "create", STREAM, "logs.test")
          assert.is_true(ok)
        end
        local code, err, at = S.start_fails { nats = case[2]() }
        assert.are.equal(2, code, err)
        local expected = at .. ": listener 'pub': init: " .. where .. case[3]
        assert.truthy(err:find(expected, 1, true), "expected\n" .. expected .. "\nin\n" .. err)
      end)
    end
  end)
end)
