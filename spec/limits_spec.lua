-- spec/limits_spec.lua: a handler call that does not end is stopped, counted and logged, and
-- the daemon answers the next datagram: by time (handler_timeout, the watchdog) and by
-- instruction count (handler_budget), whichever way the handler tries to go on (pcall,
-- coroutines, an error handler).
local h = require "helpers"

local function start(t)
  local port, mport = h.free_port("127.0.0.1"), h.free_tcp_port()
  t.metrics = "127.0.0.1:" .. mport
  t.listeners = { { name = "rw", handler = "runaway", bind = "127.0.0.1:" .. port } }
  local d = h.start(t)
  local c = h.udp("inet", "127.0.0.1")
  return d, c, port, mport
end

-- Sends each runaway datagram, then a probe that must be answered: the call was stopped.
local function check_stopped(d, c, port, mport, kinds, message)
  for i, kind in ipairs(kinds) do
    c:send("127.0.0.1", port, kind)
    local probe = "after " .. kind
    assert.are.equal(probe, c:ask("127.0.0.1", port, probe, 10),
                     d:explain("no answer after the runaway call '%s'", kind))
    local n, text = h.wait_metric(mport, "luadgramd_handler_timeouts_total", "rw", i)
    assert.are.equal(i, n, d:explain("timeouts after '%s':\n%s", kind, tostring(text)))
  end
  local text = assert(h.metrics(mport))
  assert.are.equal(#kinds, h.metric(text, "luadgramd_handler_errors_total", "rw"))
  assert.are.equal(#kinds, h.metric(text, "luadgramd_handled_total", "rw"),
                   "the probes, and only them, handled")
  assert.is_truthy(d:wait_log(message, 3, true), d:explain("the log does not say why"))
  assert.is_true(d:alive())
end

describe("handler limits", function()
  after_each(h.cleanup_and_check)

  it("stops a call past handler_timeout, however it loops, and goes on", function()
    local d, c, port, mport = start { handler_timeout = 0.2 }
    finally(function() c:close() end)
    check_stopped(d, c, port, mport, { "loop", "pcall", "wrap", "resume", "xpcall" },
                  "handler ran past its time limit of 0.2 s")
  end)

  it("lets a call under handler_timeout finish", function()
    -- 0.3 s of CPU time: on a loaded machine it takes longer in wall time, never 5 s
    local d, c, port, mport = start { handler_timeout = 5 }
    finally(function() c:close() end)
    assert.are.equal("done", c:ask("127.0.0.1", port, "busy 0.3", 10), d:explain("busy 0.3"))
    local text = assert(h.metrics(mport))
    assert.are.equal(0, h.metric(text, "luadgramd_handler_timeouts_total", "rw"))
  end)

  it("stops a call past handler_budget instructions, with no time limit", function()
    local d, c, port, mport = start { handler_budget = 1000000, handler_timeout = 0 }
    finally(function() c:close() end)
    check_stopped(d, c, port, mport, { "loop", "pcall", "wrap", "resume", "xpcall" },
                  "handler ran past its budget of 1000000 instructions")
  end)

  it("stops by time by default (handler_timeout = 1)", function()
    local d, c, port, mport = start {}
    finally(function() c:close() end)
    local t0 = h.now()
    check_stopped(d, c, port, mport, { "loop" }, "handler ran past its time limit of 1 s")
    assert.is_true(h.now() - t0 >= 1, "stopped before its second was up")
  end)
end)
