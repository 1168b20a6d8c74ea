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

local function load(c, port, from, to, rate, during)
  local start = h.now()
  for i = from, to do
    if during then during(i) end
    c:send("127.0.0.1", port, "rec-" .. i)
    local ahead = (i - from + 1) / rate - (h.now() - start)
    if ahead > 0.005 then h.sleep(ahead) end
  end
end

-- The stream's entries: a list of { id =, data = } (one XRANGE; --raw prints each entry
-- as five lines: stream id, "id", record id, "data", data; the records hold no newline).
local function entries(r)
  local text = S.redis_cli(r, "--raw XRANGE syslog - + COUNT " .. (10 * N))
  local lines, out = {}, {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  for i = 1, #lines - 4, 5 do
    assert.are.equal("id", lines[i + 1])
    assert.are.equal("data", lines[i + 3])
    out[#out + 1] = { id = lines[i + 2], data = lines[i + 4] }
  end
  return out
end

describe("luadgram.redis", function()
  local redis

  before_each(function() redis = S.redis() end)

  after_each(function()
    local ok, err = pcall(h.cleanup_and_check)
    S.stop_all()
    assert(ok, err)
  end)

  it("keeps every acknowledged record when redis-server is SIGKILLed mid-load", function()
    local d, port, mport = start_daemon(redis, h.tmpdir())
    local c = h.udp("inet", "127.0.0.1")
    local acked_before_kill
    load(c, port, 1, N, 2000, function(i)
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
    local last
    assert.truthy(h.wait_for(function()
      local text = h.metrics(mport)
      if not text then return false end
      local function m(n) return h.metric(text, "luadgramd_output_" .. n, "pub") end
      last = string.format("published %s acked %s inflight %s spool_bytes %s",
                           m("published_total"), m("acked_total"), m("inflight"), m("spool_bytes"))
      return m("published_total") == N and m("inflight") == 0 and m("spool_bytes") == 0
             and m("acked_total") >= N
    end, 40, 0.2), "did not settle: " .. tostring(last))
    local seen, by_data = {}, {}
    for _, e in ipairs(entries(redis)) do
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

  it("fails the start on an unreachable server, naming the listen's line", function()
    local dir = h.tmpdir()
    local conf = dir .. "/luadgramd.conf"
    local dead = h.free_tcp_port()
    local text = h.config_text { listeners = { {
      name = "pub", bind = "127.0.0.1:" .. h.free_port(),
      handler = h.src .. "/spec/fixtures/publisher.lua",
      options = { redis = { server = "127.0.0.1:" .. dead, stream = "syslog" } },
    } } }
    h.write(conf, text)
    local line = 1
    for l in text:gmatch("([^\n]*)\n") do
      if l:find('listen "pub"', 1, true) then break end
      line = line + 1
    end
    local code, _, err = h.run("-c " .. h.shq(conf), 30)
    assert.are.equal(2, code, err)
    local expected = string.format("%s:%d: listener 'pub': init: %s/spec/fixtures/publisher.lua:11: "
                                   .. "luadgram.redis: redis: cannot reach 127.0.0.1:%d: "
                                   .. "Connection refused", conf, line, h.src, dead)
    assert.truthy(err:find(expected, 1, true), "expected\n" .. expected .. "\nin\n" .. err)
  end)
end)

