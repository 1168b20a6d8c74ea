-- spec/snmptrap_outputs_spec.lua: the SNMP trap collector (scripts/snmptrap.lua) with a redis
-- sink instead of a file (scripts/lib/collector.lua, sink_redis.lua) against a real
-- redis-server (spec/servers.lua): every trap's JSON line is in the stream once, each with
-- its own record id, and the collector's counters say so. LUADGRAM_OUTPUT_N / 10 traps
-- (default 200, the bench's v2c linkDown, bench/snmp/trap_v2c.bin, from one socket).
local h = require "helpers"
local S = require "servers"
local cjson = require "cjson"

local N = (tonumber(os.getenv("LUADGRAM_OUTPUT_N") or "") or 2000) // 10

describe("snmptrap collector with a redis sink", function()
  after_each(S.cleanup)

  it("adds every trap's line to the stream once, with its own id", function()
    local redis = S.redis()
    local port, mport = h.free_port(), h.free_tcp_port()
    h.start {
      workers = 1, metrics = "127.0.0.1:" .. mport, log_level = "info",
      ready = "output 'redis': connected",
      listeners = { { name = "traps", bind = "127.0.0.1:" .. port, handler = "snmptrap",
                      options = { communities = { "public" },
                                  redis = { server = "127.0.0.1:" .. redis.port,
                                            stream = "traps" } } } },
    }
    local trap = assert(h.read(h.src .. "/bench/snmp/trap_v2c.bin"))
    local c = h.udp("inet", "127.0.0.1")
    S.load(c, port, 1, N, 1000, nil, function() return trap end)
    S.wait_settled(mport, "traps", N)
    local ids = {}
    local entries = S.redis_entries(redis, "traps", 10 * N)
    for _, e in ipairs(entries) do
      assert.truthy(e.id:match("^traps/1/%x+/%d+$"), "bad id " .. e.id)
      assert.is_nil(ids[e.id], "id used twice: " .. e.id)
      ids[e.id] = true
      local r = cjson.decode(e.data)
      assert.are.equal("traps", r.listener)
      assert.are.equal("trapv2", r.pdu)
      assert.are.equal("public", r.community)
    end
    assert.are.equal(N, #entries)
    assert.are.equal(N, h.wait_metric(mport, "luadgramd_user_snmptrap_traps_decoded", nil, N,
                                      10))
    local text = h.metrics(mport)
    assert.are.equal(0, h.metric(text, "luadgramd_user_snmptrap_traps_output_errors"))
    assert.are.equal(0, h.metric(text, "luadgramd_user_snmptrap_traps_written")) -- no file
  end)
end)
