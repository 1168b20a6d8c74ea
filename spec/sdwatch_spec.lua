-- spec/sdwatch_spec.lua: systemd's service watchdog. With WATCHDOG_USEC the daemon sends
-- WATCHDOG=1 at half the interval (with a STATUS= line of listeners, datagrams handled and
-- drops) on its own NOTIFY_SOCKET, stops once a worker is stuck in C (the test build's
-- luadgram.test_block_in_c) and starts again when it is free; WATCHDOG_PID is honoured.
local h = require "helpers"

-- Every notification until `deadline` (h.now() time) as { t = arrival, f = fields, text }.
local function collect(n, deadline, out)
  out = out or {}
  while h.now() < deadline do
    local msg = n:recv(math.max(0.05, deadline - h.now()))
    if msg then out[#out + 1] = { t = h.now(), f = h.notify_fields(msg), text = msg } end
  end
  return out
end

local function pings(list, from, to)
  local t = {}
  for _, m in ipairs(list) do
    if m.f.WATCHDOG == "1" and m.t >= (from or 0) and m.t <= (to or math.huge) then
      t[#t + 1] = m.t
    end
  end
  return t
end

local function texts(list)
  local out = {}
  for _, m in ipairs(list) do out[#out + 1] = string.format("%.2f %q", m.t, m.text) end
  return table.concat(out, "\n")
end

describe("systemd's watchdog", function()
  after_each(h.cleanup_and_check)

  local function start(env, prefix)
    local dir = h.tmpdir()
    local n = h.notify_socket(dir .. "/notify")
    finally(function() n:close() end)
    env.NOTIFY_SOCKET = n.addr
    local port = h.free_port("127.0.0.1")
    local d = h.start {
      env = env, prefix = prefix,
      listeners = { { name = "stuck", handler = "stuck", bind = "127.0.0.1:" .. port } },
    }
    return d, n, port
  end

  it("pings every half interval while the worker turns, not while it is stuck in C", function()
    local d, n, port = start { WATCHDOG_USEC = "2000000" }
    local c = h.udp("inet", "127.0.0.1")
    finally(function() c:close() end)
    for i = 1, 3 do
      assert.are.equal("d" .. i, c:ask("127.0.0.1", port, "d" .. i), d:explain("echo %d", i))
    end
    local t0 = h.now()
    local got = collect(n, t0 + 4.2)
    local p = pings(got)
    assert.is_true(#p >= 3 and #p <= 6, d:explain("%d pings in 4.2 s:\n%s", #p, texts(got)))
    for i = 2, #p do
      local gap = p[i] - p[i - 1]
      assert.is_true(gap >= 0.3 and gap <= 1.9,
                     d:explain("%.2f s between pings %d and %d:\n%s", gap, i - 1, i, texts(got)))
    end
    -- each ping carries the STATUS line, exact counts
    local last = got[#got]
    assert.are.equal("1 listener, 3 datagrams handled, 0 kernel drops, 0 handler errors",
                     last.f.STATUS, texts(got))

    -- stuck in C for 8 s: the time limit cannot stop it; pings stop within the 2 s interval
    -- (plus a tick), and come back when the worker is free
    c:send("127.0.0.1", port, "block 8")
    assert.is_truthy(d:wait_log("blocking in C for 8 s", 5), d:explain("no block"))
    local tb = h.now()
    got = collect(n, tb + 6.5)
    local during = pings(got, tb + 3.0)
    assert.are.same({}, during, d:explain("pings while the worker was stuck:\n%s", texts(got)))
    local stalled
    for _, m in ipairs(got) do
      if (m.f.STATUS or ""):find("^worker 1 stalled for %d+ s; ") then stalled = m end
    end
    assert.is_truthy(stalled, d:explain("no 'worker 1 stalled' STATUS:\n%s", texts(got)))
    assert.is_truthy(d:log():find("worker 1: its loop has not turned for", 1, true),
                     d:explain("no log line of the stall"))
    -- free at tb + 8 at the latest: a ping within 4 s of that
    local back = {}
    h.wait_for(function()
      collect(n, h.now() + 0.2, back)
      return #pings(back) > 0 or h.now() > tb + 12
    end, 10)
    assert.is_true(#pings(back) >= 1, d:explain("no ping after the worker was free:\n%s",
                                                 texts(back)))
    assert.is_truthy(d:log():find("every worker's loop turns again", 1, true),
                     d:explain("no log line of the recovery"))
    assert.are.equal("after", c:ask("127.0.0.1", port, "after"), d:explain("echo after"))
  end)

  it("pings with WATCHDOG_PID its own pid, not with another's", function()
    -- sh exec()s the daemon: $$ is the daemon's pid
    local d, n = start({ WATCHDOG_USEC = "1000000" },
                       { "sh", "-c", 'WATCHDOG_PID=$$ exec "$@"', "sh" })
    local got = collect(n, h.now() + 2.0)
    assert.is_true(#pings(got) >= 2, d:explain("pings with WATCHDOG_PID=%d:\n%s", d.pid,
                                               texts(got)))
    local d2, n2 = start { WATCHDOG_USEC = "1000000", WATCHDOG_PID = "1" }
    got = collect(n2, h.now() + 2.0)
    assert.are.equal("1", got[1] and got[1].f.READY, d2:explain("no READY=1:\n%s", texts(got)))
    assert.are.same({}, pings(got), d2:explain("pings with WATCHDOG_PID=1:\n%s", texts(got)))
  end)

  it("warns of a WATCHDOG_USEC that is not a number and serves no watchdog", function()
    local d, n = start { WATCHDOG_USEC = "2s" }
    assert.is_truthy(d:wait_log("WATCHDOG_USEC=2s is not a number of microseconds", 5, true),
                     d:explain("no warning"))
    local got = collect(n, h.now() + 1.5)
    assert.are.same({}, pings(got), d:explain("pings:\n%s", texts(got)))
  end)
end)
