-- spec/ratelimit_spec.lua: a listener's per-peer rate limit (ratelimit = { ... }), on
-- loopback: three peers (127.0.0.2 floods at 10x the rate, 127.0.0.3 sends at half of it,
-- 127.0.0.1 is exempt) and the ratecount fixture counting what each got to the handler.
-- The sender paces itself, but a loaded machine may be slower: every bound is computed from
-- the times measured around the traffic, not from the planned ones.
local h = require "helpers"

local RATE, BURST = 100, 100

-- The fixture's report: counts by ip and the top list.
local function report(client, port)
  local text = assert(client:ask("127.0.0.1", port, "report", 5))
  local counts, top = {}, {}
  for ip, n in text:gmatch("count (%S+) (%d+)") do counts[ip] = tonumber(n) end
  for i, peer, dropped, passed in text:gmatch("top (%d+) (%S+) (%d+) (%d+)") do
    top[tonumber(i)] = { peer = peer, dropped = tonumber(dropped), passed = tonumber(passed) }
  end
  return counts, top, text
end

describe("luadgramd per-peer rate limit", function()
  after_each(h.cleanup_and_check)

  it("holds a flooding peer to rate x seconds + burst, spares a slow one and the exempt",
     function()
    local port, mport = h.free_port("127.0.0.1"), h.free_tcp_port()
    local d = h.start {
      metrics = "127.0.0.1:" .. mport,
      listeners = { {
        name = "rl", bind = "127.0.0.1:" .. port, handler = "ratecount",
        recv = { rcvbuf = 4194304 },
        ratelimit = { rate = RATE, burst = BURST, exempt = { "127.0.0.1" } },
      } },
    }
    local flood, slow, exempt = h.udp("inet", "127.0.0.2"), h.udp("inet", "127.0.0.3"),
                                h.udp("inet", "127.0.0.1")
    finally(function() flood:close() slow:close() exempt:close() end)
    -- the exempt peer: 500 back to back, far past the burst
    for i = 1, 500 do exempt:send("127.0.0.1", port, "e" .. i) end
    -- 2 s planned: every 10 ms 10 datagrams of the flood (1000/s = 10 x RATE) and every
    -- 20 ms one of the slow peer (50/s = RATE / 2); bounded by count and by 8 s. The sleep
    -- only paces the senders: what the daemon did is read from its report, never timed
    local sent_flood, sent_slow = 0, 0
    local t0 = h.now()
    for step = 1, 200 do
      for _ = 1, 10 do
        flood:send("127.0.0.1", port, "f")
        sent_flood = sent_flood + 1
      end
      if step % 2 == 0 then
        slow:send("127.0.0.1", port, "s")
        sent_slow = sent_slow + 1
      end
      local now = h.now()
      if now - t0 > 8 then break end
      local due = t0 + step * 0.01
      if due > now then h.sleep(due - now) end
    end
    local t_sent = h.now()
    local counts, top, text = report(exempt, port)
    local t_report = h.now()
    local ctx = d:explain("report:\n%s\nsent %d flood, %d slow in %.3f s (report after %.3f s)",
                          text, sent_flood, sent_slow, t_sent - t0, t_report - t0)
    assert.are.equal(500, counts["127.0.0.1"], ctx)
    assert.are.equal(sent_slow, counts["127.0.0.3"], ctx)
    -- The flood's bucket starts full (BURST) and refills RATE per second while the daemon
    -- reads it: at most from the first send to the report's answer; at least over the
    -- sending time less 1 s of stalls the loaded machine may impose.
    local handled = counts["127.0.0.2"]
    local most = BURST + RATE * (t_report - t0) + 1
    local least = BURST + RATE * math.max(0, t_sent - t0 - 1)
    assert.is_true(handled <= most and handled >= least,
                   string.format("flood handled %d, expected %.1f..%.1f\n%s", handled, least, most,
                                 ctx))
    -- the rest counted, exactly, and the top offender named with the same figures
    local dropped = sent_flood - handled
    local value, mtext = h.wait_metric(mport, "luadgramd_ratelimited_total", "rl", dropped, 5)
    assert.are.equal(dropped, value, ctx .. "\n" .. tostring(mtext))
    assert.are.equal(0, h.metric(mtext, "luadgramd_kernel_drops_total", "rl"))
    assert.are.same({ peer = "127.0.0.2", dropped = dropped, passed = handled }, top[1], ctx)
    assert.is_nil(top[2], ctx)
  end)

  it("limits by prefix: two addresses of one /24 share a bucket", function()
    local port = h.free_port("127.0.0.1")
    h.start { listeners = { {
      name = "rl", bind = "127.0.0.1:" .. port, handler = "ratecount",
      recv = { rcvbuf = 4194304 },
      ratelimit = { rate = 0.001, burst = 10, per = "/24 /64", exempt = "127.0.0.1" },
    } } }
    local a, b, r = h.udp("inet", "127.0.1.2"), h.udp("inet", "127.0.1.3"),
                    h.udp("inet", "127.0.0.1")
    finally(function() a:close() b:close() r:close() end)
    for _ = 1, 8 do a:send("127.0.0.1", port, "a") end
    for _ = 1, 8 do b:send("127.0.0.1", port, "b") end
    local counts, top, text = report(r, port)
    assert.are.equal(8, counts["127.0.1.2"], text)
    assert.are.equal(2, counts["127.0.1.3"], text)
    assert.are.same({ peer = "127.0.1.0/24", dropped = 6, passed = 10 }, top[1], text)
  end)

  -- Each bad ratelimit: the line to blame (its --< mark) and the message after FILE:LINE.
  local bad = {
    { "per = \"/200\", --<", "listener 'a': ratelimit.per: expected \"ip\" or prefixes such as "
      .. "\"/24\" (IPv4), \"/56\" (IPv6) or \"/24 /56\"" },
    { "exempt = { \"10.0.0.1/8\" }, --<",
      "listener 'a': ratelimit.exempt: '10.0.0.1/8': bits set after the /8 prefix" },
    { "exempt = { \"eth0\" }, --<",
      "listener 'a': ratelimit.exempt: 'eth0': not an IPv4 or IPv6 address" },
    { "burst = 0, --<", "listener 'a': ratelimit.burst: expected a number of datagrams from 1 "
      .. "to 1e9" },
    { "peers = 0, --<", "listener 'a': ratelimit.peers: expected an integer from 1 to 16777216" },
    { "rates = 5, --<", "listener 'a': unknown key 'ratelimit.rates'" },
  }
  for _, case in ipairs(bad) do
    it("refuses ratelimit " .. case[1]:gsub(",? *%-%-<", "") .. " at its line", function()
      local dir = h.tmpdir()
      local conf = dir .. "/bad.conf"
      local lines = {
        "listen \"a\" {",
        "  bind = \"127.0.0.1:" .. h.free_port("127.0.0.1") .. "\",",
        "  handler = \"echo\",",
        "  ratelimit = {",
        "    rate = 10,",
        "    " .. case[1],
        "  },",
        "}",
      }
      h.write(conf, table.concat(lines, "\n") .. "\n")
      local code, out, err = h.run("-t -c " .. h.shq(conf))
      assert.are.equal(2, code, err)
      assert.are.equal("", out)
      assert.are.equal(conf .. ":6: " .. case[2] .. "\n", err)
    end)
  end

  it("refuses a ratelimit without a rate at the ratelimit line", function()
    local dir = h.tmpdir()
    local conf = dir .. "/bad.conf"
    h.write(conf, "listen \"a\" {\n  bind = \"127.0.0.1:" .. h.free_port("127.0.0.1")
                  .. "\",\n  handler = \"echo\",\n  ratelimit = { burst = 5 },\n}\n")
    local code, _, err = h.run("-t -c " .. h.shq(conf))
    assert.are.equal(2, code, err)
    assert.are.equal(conf .. ":4: listener 'a': ratelimit.rate is missing\n", err)
  end)
end)
