-- spec/collector_outputs_spec.lua: the syslog collector (scripts/syslog.lua) with its nats and
-- redis sinks (scripts/lib/collector.lua, sink_nats.lua, sink_redis.lua) against real servers
-- (spec/servers.lua): N syslog datagrams while the R3 stream's leader is SIGKILLed and
-- restarted land exactly once in the stream (and in the file beside it); while redis-server
-- is SIGKILLed and restarted, every record reaches the stream, a duplicate only with its
-- record's id. LUADGRAM_OUTPUT_N datagrams per test (default 2000 at 2000/s: < 60 s each).
local h = require "helpers"
local S = require "servers"
local cjson = require "cjson"

local N = tonumber(os.getenv("LUADGRAM_OUTPUT_N") or "") or 2000
local RATE = 2000

local function line(i)
  return string.format("<13>Oct 11 22:14:15 host app[7]: rec-%d", i)
end

-- A daemon with the syslog listener "sys" on one worker, options as given; ready once the
-- output `ready` names connected.
local function start_daemon(options, ready)
  local port, mport = h.free_port(), h.free_tcp_port()
  local d = h.start {
    workers = 1, metrics = "127.0.0.1:" .. mport, log_level = "info",
    ready = "output '" .. ready .. "': connected",
    listeners = { { name = "sys", bind = "127.0.0.1:" .. port, handler = "syslog",
                    recv = { rcvbuf = 4194304 }, options = options } },
  }
  return d, port, mport
end

-- The record numbers of JSON lines (their msg "rec-<i>"), listener "sys", each decoded.
local function rec_number(json)
  local r = cjson.decode(json)
  assert.are.equal("sys", r.listener)
  return tonumber(r.msg:match("^rec%-(%d+)$"))
end

-- Asserts `numbers` (a list) holds 1 .. n each exactly once.
local function assert_each_once(numbers, n)
  local count, dup, missing = {}, {}, {}
  for _, i in ipairs(numbers) do
    if count[i] then dup[#dup + 1] = i end
    count[i] = (count[i] or 0) + 1
  end
  for i = 1, n do
    if not count[i] then missing[#missing + 1] = i end
  end
  assert.are.same({}, dup)
  assert.are.same({}, missing)
  assert.are.equal(n, #numbers)
end

describe("syslog collector sinks", function()
  after_each(S.cleanup)

  it("puts every datagram exactly once into an R3 stream while its leader is killed, "
     .. "and into the file beside it", function()
    local cluster = S.nats_cluster()
    local dir = h.tmpdir()
    local d, port, mport = start_daemon({
      file = { path = dir .. "/sys.jsonl", flush_interval = 0.1 },
      nats = { servers = cluster.urls, subject = "logs.syslog", stream = "LOGS",
               create = { replicas = 3, duplicate_window = 120 }, ack_wait = 2,
               max_inflight = 256, spool = { path = dir .. "/spool", max_bytes = 64 << 20 } },
    }, "nats")
    local c = h.udp("inet", "127.0.0.1")
    local leader
    S.load(c, port, 1, N, RATE, function(i)
      if i == N // 3 then
        leader = S.nats_leader(cluster, "LOGS")
        leader:signal("STOP") -- records in flight, their acks lost, when it is killed
      elseif i == N // 3 + 100 then
        leader:stop("KILL")
      elseif i == 2 * N // 3 then
        leader:restart()
      end
    end, line)
    S.wait_settled(mport, "sys", N)
    local count, msgs = S.nats_dump(cluster, "LOGS")
    local numbers, ids = {}, {}
    for k, m in ipairs(msgs) do
      assert.truthy(m.id:match("^sys/1/%x+/%d+$"), "bad id " .. m.id)
      assert.is_nil(ids[m.id], "id used twice: " .. m.id)
      ids[m.id] = true
      numbers[k] = rec_number(m.data)
    end
    assert.are.equal(N, count)
    assert_each_once(numbers, N)
    -- the same lines in the file; the collector's counters
    assert.are.equal(N, h.wait_metric(mport, "luadgramd_user_syslog_sys_written", nil, N, 10))
    local file = {}
    for l in io.lines(dir .. "/sys.jsonl") do file[#file + 1] = rec_number(l) end
    assert_each_once(file, N)
    local text = h.metrics(mport)
    assert.are.equal(N, h.metric(text, "luadgramd_user_syslog_sys_received"))
    assert.are.equal(N, h.metric(text, "luadgramd_user_syslog_sys_parsed"))
    assert.are.equal(0, h.metric(text, "luadgramd_user_syslog_sys_dropped"))
    assert.are.equal(0, h.metric(text, "luadgramd_kernel_drops_total", "sys"))
    assert.truthy(d:log():match("output 'nats': connected"))
  end)

  it("puts every datagram into a Redis stream while redis-server is killed, a duplicate "
     .. "only with its record's id", function()
    local redis = S.redis()
    local d, port, mport = start_daemon({
      redis = { server = "127.0.0.1:" .. redis.port, stream = "syslog", max_inflight = 256,
                spool = { path = h.tmpdir(), max_bytes = 64 << 20 } },
    }, "redis")
    local c = h.udp("inet", "127.0.0.1")
    S.load(c, port, 1, N, RATE, function(i)
      if i == N // 3 then
        redis.proc:signal("STOP") -- replies lost for the records in flight
      elseif i == N // 3 + 100 then
        redis.proc:stop("KILL")
      elseif i == 2 * N // 3 then
        redis.proc:restart()
      end
    end, line)
    S.redis_wait_ready(redis)
    S.wait_settled(mport, "sys", N)
    local id_of, numbers = {}, {}
    for _, e in ipairs(S.redis_entries(redis, "syslog", 10 * N)) do
      assert.truthy(e.id:match("^sys/1/%x+/%d+$"), "bad id " .. e.id)
      local i = rec_number(e.data)
      if id_of[i] then
        assert.are.equal(id_of[i], e.id) -- a duplicate repeats its record's id
      else
        id_of[i] = e.id
        numbers[#numbers + 1] = i
      end
    end
    assert_each_once(numbers, N)
    -- the collector publishes its counters once a second
    assert.are.equal(N, h.wait_metric(mport, "luadgramd_user_syslog_sys_received", nil, N, 10))
    assert.are.equal(0, h.metric(h.metrics(mport), "luadgramd_user_syslog_sys_dropped"))
    assert.truthy(d:log():match("output 'redis': connection lost"))
  end)
  it("counts what its redis output drops (no spool, the server gone) in its dropped counter",
     function()
    local redis = S.redis()
    local d, port, mport = start_daemon({
      redis = { server = "127.0.0.1:" .. redis.port, stream = "syslog" },
    }, "redis")
    redis.proc:stop("KILL")
    assert.truthy(h.wait_for(function()
      return d:log():match("output 'redis': connection lost")
    end, 10), "the output never saw the server go")
    local c, n = h.udp("inet", "127.0.0.1"), 50
    for i = 1, n do c:send("127.0.0.1", port, line(i)) end
    -- dropped on the output's thread (no spool), or refused at once once it drops: either
    -- way counted by the output and by the collector, and logged
    assert.are.equal(n, h.wait_metric(mport, "luadgramd_user_syslog_sys_dropped", nil, n, 10))
    assert.are.equal(n, h.metric(h.metrics(mport), "luadgramd_output_dropped_total", "sys"))
    assert.are.equal(0, h.metric(h.metrics(mport), "luadgramd_output_acked_total", "sys"))
    local log = d:log()
    assert.truthy(log:match("output 'redis': server unavailable and no spool: record dropped"))
    assert.truthy(log:match("syslog sys: redis 'redis': "), log)
  end)
end)
