-- spec/sandbox_spec.lua: the sandbox of handler states (issue 10). Each forbidden call,
-- made from a handler, raises an error naming it and the setting that allows it, and leaves
-- no trace (the file it would create does not exist; the daemon still runs); what handlers
-- keep still works; a listener with unsafe = true may call them, is logged at start, and
-- its os.exit stops the daemon cleanly instead of ending it.
local h = require "helpers"

local WHY = " is not allowed in handlers (unsafe = true on the listener allows it)"

local FORBIDDEN = {
  { "os.execute", "os.execute" .. WHY },
  { "io.popen", "io.popen" .. WHY },
  { "os.exit", "os.exit" .. WHY },
  { "package.loadlib", "package.loadlib" .. WHY },
  { "package.cpath", "changing package.cpath" .. WHY },
  { "load", "load of a binary chunk" .. WHY },
  { "loadfile", "loadfile of a binary chunk" .. WHY },
  { "dofile", "dofile of a binary chunk" .. WHY },
  { "debug.getinfo", "debug.getinfo" .. WHY },
  { "debug.sethook", "debug.sethook" .. WHY },
  { "debug.getregistry", "debug.getregistry" .. WHY },
}

-- Starts listener "sb" on spec/fixtures/sandboxed.lua with options.dir a fresh folder.
local function start(unsafe)
  local port, mport = h.free_port("127.0.0.1"), h.free_tcp_port()
  local dir = h.tmpdir()
  local text = table.concat({
    "log_level = \"info\"",
    "metrics = " .. h.lua("127.0.0.1:" .. mport),
    "script_path = " .. h.lua({ h.src .. "/scripts", h.src .. "/spec/fixtures" }),
    "handler_timeout = 10",
    "listen \"sb\" {",
    "  bind = " .. h.lua("127.0.0.1:" .. port) .. ",",
    "  handler = \"sandboxed\",",
    "  options = " .. h.lua({ dir = dir }) .. ",",
    unsafe and "  unsafe = true," or "",
    "}",
  }, "\n") .. "\n"
  local d = h.start { text = text, expect = { sb = 1 } }
  local c = h.udp("inet", "127.0.0.1")
  return d, c, port, mport, dir
end

describe("the handler sandbox", function()
  after_each(h.cleanup_and_check)

  it("refuses each forbidden call with an error naming it and unsafe, with no effect",
     function()
    local d, c, port, mport, dir = start(false)
    finally(function() c:close() end)
    for _, case in ipairs(FORBIDDEN) do
      local answer = c:ask("127.0.0.1", port, case[1], 10)
      -- the message, after the position of the handler's line that made the call
      assert.is_truthy(answer and answer:match("^error: [^\n]*sandboxed%.lua:%d+: (.*)$"),
                       d:explain("calling %s: %s", case[1], tostring(answer)))
      assert.are.equal(case[2], answer:match("^error: [^\n]*sandboxed%.lua:%d+: (.*)$"))
    end
    assert.is_false(h.exists(dir .. "/os.execute"), "os.execute ran")
    assert.is_false(h.exists(dir .. "/io.popen"), "io.popen ran")
    assert.is_true(d:alive())
    assert.are.equal("allowed: number number 1970 true line [1,2] 2 true co luadgram",
                     c:ask("127.0.0.1", port, "allowed", 10), d:explain("allowed calls"))
    local text = assert(h.metrics(mport))
    assert.are.equal(0, h.metric(text, "luadgramd_handler_errors_total", "sb"))
  end)

  it("logs and counts a forbidden call the handler does not catch, and goes on", function()
    local d, c, port, mport = start(false)
    finally(function() c:close() end)
    c:send("127.0.0.1", port, "os.exit raw")
    local n = h.wait_metric(mport, "luadgramd_handler_errors_total", "sb", 1)
    assert.are.equal(1, n, d:explain("handler errors"))
    assert.is_truthy(d:wait_log("listener 'sb': message error: [^\n]*sandboxed%.lua:%d+: " ..
                                ("os.exit" .. WHY):gsub("%p", "%%%0"), 5),
                     d:explain("no log line"))
    assert.is_truthy(c:ask("127.0.0.1", port, "io.popen", 10):find("io.popen" .. WHY, 1, true))
    assert.is_true(d:alive())
  end)

  it("lets an unsafe = true listener call them, and logs it at start", function()
    local d, c, port, _, dir = start(true)
    finally(function() c:close() end)
    assert.is_truthy(d:wait_log("listener 'sb': unsafe = true: its handler runs without the " ..
                                "sandbox", 5, true), d:explain("no start line"))
    assert.are.equal("ok: popen ran\n", c:ask("127.0.0.1", port, "io.popen", 10),
                     d:explain("io.popen"))
    assert.is_true(h.exists(dir .. "/io.popen"), "io.popen did not run")
    assert.are.equal("ok: binary ran", c:ask("127.0.0.1", port, "load", 10), d:explain("load"))
    assert.are.equal("ok: function", c:ask("127.0.0.1", port, "package.loadlib", 10))
    assert.is_true(d:alive())
  end)

  it("makes os.exit of an unsafe listener the daemon's clean stop", function()
    local d, c, port = start(true)
    finally(function() c:close() end)
    c:send("127.0.0.1", port, "os.exit")
    local how, code = d:wait(10)
    assert.are.equal("exit", how, d:explain("the daemon did not exit"))
    assert.are.equal(0, code, d:explain("exit status"))
    local log = d:log()
    assert.is_truthy(log:find("warn: listener 'sb': os.exit(3) from its handler: stopping the " ..
                              "daemon cleanly (as on SIGTERM)", 1, true), log)
    assert.is_truthy(log:find("info: stopped", 1, true), log)
  end)
end)
