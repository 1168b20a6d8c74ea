-- spec/drops_spec.lua: nothing is lost silently. When the kernel drops datagrams because a
-- listener's socket buffer is full (its handler was busy), the drops are counted per
-- listener (SO_RXQ_OVFL) in /metrics and logged; received + dropped = sent.
local h = require "helpers"

describe("luadgramd kernel drops", function()
  after_each(function()
    local bad = h.cleanup()
    assert.are.same({}, bad, "daemons that did not stop cleanly")
  end)

  it("are counted in /metrics and logged when the socket buffer overflows", function()
    local port, mport = h.free_port("127.0.0.1"), h.free_tcp_port()
    local d = h.start {
      metrics = "127.0.0.1:" .. mport,
      listeners = { {
        name = "slow", bind = "127.0.0.1:" .. port, handler = "slow",
        recv = { batch = 8, size = 2048, rcvbuf = 4096 },
      } },
    }
    local c = h.udp("inet", "127.0.0.1")
    c:send("127.0.0.1", port, "stall")
    h.sleep(0.1) -- the handler is now busy for 0.5 s
    local sent = 1
    local payload = string.rep("x", 512)
    for _ = 1, 300 do
      c:send("127.0.0.1", port, payload)
      sent = sent + 1
    end
    -- Once the stall is over, a "count" datagram carries the socket's final drop count.
    -- The stall is CPU time, so under load it can last longer: ask until answered (a
    -- "count" that is itself dropped is counted like any other), then keep the last reply.
    local reply
    local deadline = h.now() + 10
    repeat
      c:send("127.0.0.1", port, "count")
      sent = sent + 1
      reply = c:recv(0.5)
    until reply or h.now() > deadline
    assert.is_not_nil(reply, d:explain("no answer to count"))
    repeat
      local later = c:recv(0.3)
      if later then reply = later end
    until not later
    local received = tonumber(reply)
    assert.is_true(received < sent, d:explain("nothing was dropped (%d of %d received): the "
                                               .. "test did not overflow the buffer", received, sent))
    local text = assert(h.metrics(mport))
    local drops = h.metric(text, "luadgramd_kernel_drops_total", "slow")
    local got = h.metric(text, "luadgramd_received_total", "slow")
    assert.are.equal(received, got, "received_total")
    assert.are.equal(sent, got + drops, d:explain("received %d + kernel drops %s ~= sent %d",
                                                  got, tostring(drops), sent))
    assert.is_truthy(d:wait_log("listener 'slow': kernel dropped %d+ datagrams", 2),
                     d:explain("no log line for the drops"))
  end)

  it("are not counted twice after a reload keeps the socket", function()
    local port, mport = h.free_port("127.0.0.1"), h.free_tcp_port()
    local d = h.start {
      metrics = "127.0.0.1:" .. mport,
      listeners = { { name = "slow", bind = "127.0.0.1:" .. port, handler = "slow",
                      recv = { batch = 8, size = 2048, rcvbuf = 4096 } } },
    }
    local c = h.udp("inet", "127.0.0.1")
    c:send("127.0.0.1", port, "stall")
    h.sleep(0.1)
    for _ = 1, 300 do c:send("127.0.0.1", port, string.rep("x", 512)) end
    local reply
    local deadline = h.now() + 10
    repeat c:send("127.0.0.1", port, "count"); reply = c:recv(0.5) until reply or h.now() > deadline
    assert.is_not_nil(reply)
    h.sleep(0.3)
    local before = h.metric(assert(h.metrics(mport)), "luadgramd_kernel_drops_total", "slow")
    assert.is_true(before > 0, "the test did not overflow the buffer")
    assert(d:signal("HUP"))
    h.wait_metric(mport, "luadgramd_reloads_total", nil, 1, 5)
    reply = nil
    deadline = h.now() + 5
    repeat c:send("127.0.0.1", port, "count"); reply = c:recv(0.5) until reply or h.now() > deadline
    assert.is_not_nil(reply)
    h.sleep(0.3)
    local after = h.metric(assert(h.metrics(mport)), "luadgramd_kernel_drops_total", "slow")
    assert.are.equal(before, after)
  end)
end)
