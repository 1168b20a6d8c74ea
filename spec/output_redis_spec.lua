-- spec/output_redis_spec.lua: luadgram.redis against a real redis-server (spec/servers.lua:
-- ephemeral port, temp folder, appendonly with appendfsync always). redis-server is
-- SIGKILLed and restarted in the middle of a load: every record it acknowledged is in the
-- stream, records come back from the spool, and a duplicate only ever repeats a record
-- with the same id (at-least-once). LUADGRAM_OUTPUT_N records (default 2000).
local h = require "helpers"
local S = require "servers"

local N = tonumber(os.getenv("LUADGRAM_OUTPUT_N") or "") or 2000

local function start_daemon(r, spool_dir)
  local port, mport = h.free_port(), h.free_tcp_port()
  local d = h.start {
    workers = 1, metrics = "127.0.0.1:" .. mport, log_level = "info",
    ready = "output 'redis': connected",
    listeners = {
      { name = "pub", bind = "127.0.0.1:" .. port, recv = { rcvbuf = 4194304 },
        handler = h.src .. "/spec/fixtures/publisher.lua",
        options = { redis = { server = "127.0.0.1:" .. r.port, stream = "syslog",
                               max_inflight = 256,
                               spool = { path = spool_dir, max_bytes = 64 << 20 } } } },
    },
  }
  return d, port, mport
end

describe("luadgram.redis", function()
  local redis

  before_each(function() redis = S.redis() end)

  after_each(S.cleanup)

  it("keeps every acknowledged record when redis-server is SIGKILLed mid-load", function()
    local d, port, mport = start_daemon(redis, h.tmpdir())
    local c = h.udp("inet", "127.0.0.1")
    local acked_before_kill
    S.load(c, port, 1, N, 2000, function(i)
      if i == N // 3 then
        -- stopped first: records are in flight when it is killed (their replies lost)
        acked_before_kill = h.metric(h.metrics(mport), "luadgramd_output_acked_total", "pub")
        redis.proc:signal("STOP")
      elseif i == N // 3 + 100 then
        redis.proc:stop("KILL")
      elseif i == 2 * N // 3 then
        redis.proc:restart()
      end
    end)
    S.redis_wait_ready(redis)
    S.wait_settled(mport, "pub", N)
    local seen, by_data = {}, {}
    for _, e in ipairs(S.redis_entries(redis, "syslog", 10 * N)) do
      assert.truthy(e.id:match("^pub/1/%x+/%d+$"), "bad id " .. e.id)
      if seen[e.data] then
        assert.are.equal(seen[e.data], e.id) -- a duplicate repeats its record's id
      end
      seen[e.data] = e.id
      by_data[#by_data + 1] = e.data
    end
    local missing = {}
    for i = 1, N do
      if not seen["rec-" .. i] then missing[#missing + 1] = i end
    end
    -- appendfsync always: what redis acknowledged before the kill survived it; and every
    -- record not acknowledged came back from the spool
    assert.are.same({}, missing)
    assert.is_true(acked_before_kill > 0)
    -- the records in flight at the kill came back (their replies were lost)
    assert.is_true(h.metric(h.metrics(mport), "luadgramd_output_retried_total", "pub") > 0)
    assert.truthy(d:log():match("output 'redis': connection lost"))
    assert.truthy(d:log():match("output 'redis': spooling"))
    assert.truthy(d:log():match("output 'redis': spool drained"))
  end)

  it("trims the stream to about maxlen entries (XADD MAXLEN ~)", function()
    local port, mport = h.free_port(), h.free_tcp_port()
    h.start {
      workers = 1, metrics = "127.0.0.1:" .. mport, log_level = "info",
      ready = "output 'redis': connected",
      listeners = { {
        name = "pub", bind = "127.0.0.1:" .. port,
        handler = h.src .. "/spec/fixtures/publisher.lua",
        options = { redis = { server = "127.0.0.1:" .. redis.port, stream = "short",
                              maxlen = 100 } },
      } },
    }
    local c = h.udp("inet", "127.0.0.1")
    S.load(c, port, 1, 1000, 2000)
    S.wait_settled(mport, "pub", 1000)
    -- "~": redis trims whole nodes of the stream (100 entries each by default), so between
    -- 100 and 199 are left; without MAXLEN all 1000 would be
    local len = tonumber((S.redis_cli(redis, "XLEN short")))
    assert.is_true(len >= 100 and len < 200, "XLEN " .. tostring(len))
    local newest = false
    for _, e in ipairs(S.redis_entries(redis, "short", 1000)) do
      newest = newest or e.data == "rec-1000"
    end
    assert.is_true(newest, "the newest record was trimmed")
  end)

  it("publishes from a thread of its own, at the nice value of its option", function()
    local port, mport = h.free_port(), h.free_tcp_port()
    local pub = function(name, extra)
      local o = { server = "127.0.0.1:" .. redis.port, stream = name, name = name }
      for k, v in pairs(extra) do o[k] = v end
      return { name = name, bind = "127.0.0.1:" .. (name == "low" and port or h.free_port()),
               handler = h.src .. "/spec/fixtures/publisher.lua", options = { redis = o } }
    end
    local d = h.start {
      workers = 1, metrics = "127.0.0.1:" .. mport, log_level = "info",
      ready = "output 'plain': connected",
      listeners = { pub("low", { queue_bytes = 65536 }), pub("plain", { nice = 0 }) },
    }
    assert.truthy(h.wait_for(function() return d:log():match("output 'low': connected") end, 10))
    local threads, base = {}, nil
    for _, t in ipairs(h.thread_stats(d.pid)) do
      threads[t.name] = t
      if t.tid == d.pid then base = t.nice end
    end
    assert.truthy(threads["out:low"], "no thread out:low")
    assert.truthy(threads["out:plain"], "no thread out:plain")
    assert.are.equal(math.min(19, base + 10), threads["out:low"].nice)  -- the default, 10
    assert.are.equal(base, threads["out:plain"].nice)
    -- the records still arrive; one larger than a quarter of the queue is refused (its
    -- size counts the subject, here the stream's name)
    local c = h.udp("inet", "127.0.0.1")
    assert.are.equal("ok", c:ask("127.0.0.1", port, "rec-1"))
    local reply = c:ask("127.0.0.1", port, string.rep("x", 20000))
    assert.truthy(reply:find("^err listener 'low' output 'low': record of 20003 bytes larger "
                             .. "than a quarter of the queue"), reply)
    assert.are.equal(1, h.wait_metric(mport, "luadgramd_output_acked_total", "low", 1, 10))
    assert.are.equal(1, h.metric(h.metrics(mport), "luadgramd_output_dropped_total", "low"))
    local entries = S.redis_entries(redis, "low", 10)
    assert.are.equal(1, #entries)
    assert.are.equal("rec-1", entries[1].data)
  end)

  it("rejects a queue_bytes or a nice out of range, naming the listen's line", function()
    for _, case in ipairs {
      { { queue_bytes = 1000 },
        "option 'queue_bytes' must be an integer from 65536 to 1073741824" },
      { { nice = 20 }, "option 'nice' must be an integer from 0 to 19" },
    } do
      local o = { server = "127.0.0.1:" .. redis.port, stream = "syslog" }
      for k, v in pairs(case[1]) do o[k] = v end
      local code, err, at = S.start_fails { redis = o }
      assert.are.equal(2, code, err)
      local expected = string.format("%s: listener 'pub': init: %s/spec/fixtures/publisher.lua"
                                     .. ":11: luadgram.redis: %s", at, h.src, case[2])
      assert.truthy(err:find(expected, 1, true), "expected\n" .. expected .. "\nin\n" .. err)
    end
  end)

  it("fails the start on an unreachable server, naming the listen's line", function()
    local dead = h.free_tcp_port()
    local code, err, at = S.start_fails {
      redis = { server = "127.0.0.1:" .. dead, stream = "syslog" },
    }
    assert.are.equal(2, code, err)
    local expected = string.format("%s: listener 'pub': init: %s/spec/fixtures/publisher.lua:11: "
                                   .. "luadgram.redis: redis: cannot reach 127.0.0.1:%d: "
                                   .. "Connection refused", at, h.src, dead)
    assert.truthy(err:find(expected, 1, true), "expected\n" .. expected .. "\nin\n" .. err)
  end)
end)

