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

