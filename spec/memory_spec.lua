-- spec/memory_spec.lua: handler_memory, the cap on each listener's Lua state (issue 10).
-- A call past the cap ends with "not enough memory", logged with the listener and the
-- script's file:line and counted; memory freed after a stopped call goes back to the
-- system; a state still over 80 % of its cap after a full collection is rebuilt; the memory
-- gauges are in /metrics; bad values are configuration errors naming FILE:LINE.
--
-- Resident size is read from /proc/PID/status (VmRSS) around each call. In the ASan build
-- freed memory would sit in ASan's quarantine (256 MiB by default) and never be unmapped,
-- so the daemons here run with quarantine_size_mb=0 added to ASAN_OPTIONS: ASan then gives
-- big blocks back with munmap as soon as they are freed (and releases their shadow), as
-- glibc's malloc_trim does in the release build. Everything else ASan checks still holds.
local h = require "helpers"

local MiB = 1024 * 1024

local function asan_env()
  local opts = os.getenv("ASAN_OPTIONS")
  return { ASAN_OPTIONS = (opts and opts ~= "" and opts .. ":" or "") .. "quarantine_size_mb=0" }
end

-- Starts a daemon with listener "hog" (spec/fixtures/memhog.lua). t.globals and t.listener:
-- extra lines of configuration, global and inside the listener.
local function start(t)
  local port, mport = h.free_port("127.0.0.1"), h.free_tcp_port()
  local text = table.concat({
    "log_level = \"info\"",
    "metrics = " .. h.lua("127.0.0.1:" .. mport),
    "script_path = " .. h.lua({ h.src .. "/scripts", h.src .. "/spec/fixtures" }),
    t.globals or "handler_timeout = 120 -- only the memory cap stops these calls",
    "listen \"hog\" {",
    "  bind = " .. h.lua("127.0.0.1:" .. port) .. ",",
    "  handler = \"memhog\",",
    t.listener or "",
    "}",
  }, "\n") .. "\n"
  local d = h.start { text = text, expect = { hog = 1 }, env = asan_env() }
  local c = h.udp("inet", "127.0.0.1")
  return d, c, port, mport
end

-- The number of the line of fixture `name` that holds `text`.
local function line_of(name, text)
  local n = 0
  for l in assert(io.open(h.fixture(name))):lines() do
    n = n + 1
    if l:find(text, 1, true) then return n end
  end
  error(text .. " not in " .. name)
end

local function rss(d)
  local f = assert(d:status_fields(), "daemon gone")
  return assert(tonumber(f.VmRSS:match("^(%d+) kB")), f.VmRSS) * 1024
end

-- The resident size once the daemon answers and has settled: a few probes answered.
local function baseline(d, c, port)
  for i = 1, 3 do
    assert.are.equal("probe " .. i, c:ask("127.0.0.1", port, "probe " .. i, 10),
                     d:explain("no answer to probe %d", i))
  end
  return rss(d)
end

-- After a stopped call: the next datagram is answered and the resident size comes back to
-- within 16 MiB of `before` (waited for: ASan hands memory back as it frees it, not at once).
local function check_recovered(d, c, port, before, what)
  assert.are.equal("after " .. what, c:ask("127.0.0.1", port, "after " .. what, 60),
                   d:explain("no answer after '%s'", what))
  local now
  local ok = h.wait_for(function()
    now = rss(d)
    return now <= before + 16 * MiB
  end, 60, 0.1)
  assert.is_truthy(ok, d:explain("resident size after '%s': %.1f MiB, before %.1f MiB", what,
                                 now / MiB, before / MiB))
end

describe("handler_memory", function()
  after_each(h.cleanup_and_check)

  it("stops a call that tries to allocate 1 GiB, logs and counts it, gives the memory back",
     function()
    local d, c, port, mport = start {}
    finally(function() c:close() end)
    local before = baseline(d, c, port)
    for i, case in ipairs { { "alloc1g", 'string.rep("x", 1024 * 1024 - 8)' },
                            { "rep1g", 'string.rep("x", 1024 * 1024 * 1024)' },
                            { "frag1g", 'string.rep("f", 1024 * 1024 - 8)' } } do
      local kind, line = case[1], line_of("memhog", case[2])
      c:send("127.0.0.1", port, kind)
      check_recovered(d, c, port, before, kind)
      local n, text = h.wait_metric(mport, "luadgramd_handler_memory_errors_total", "hog", i)
      assert.are.equal(i, n, d:explain("memory errors after '%s':\n%s", kind, tostring(text)))
      assert.is_truthy(d:wait_log("listener 'hog': message error: not enough memory " ..
                                  "%(handler_memory of 134217728 bytes reached at [^\n]*" ..
                                  "memhog%.lua:" .. line .. "%)", 5),
                       d:explain("no log line for '%s' at memhog.lua:%d", kind, line))
    end
    local text = assert(h.metrics(mport))
    assert.are.equal(3, h.metric(text, "luadgramd_handler_errors_total", "hog"))
    assert.are.equal(0, h.metric(text, "luadgramd_handler_timeouts_total", "hog"))
    assert.are.equal(0, h.metric(text, "luadgramd_handler_restarts_total", "hog"),
                     "nothing was left: no rebuild")
    assert.are.equal(6, h.metric(text, "luadgramd_handled_total", "hog"), "the probes")
    assert.is_true(d:alive())
  end)

  it("gives back the memory of a call stopped by handler_timeout", function()
    local d, c, port, mport = start { globals = "handler_timeout = 0.2" }
    finally(function() c:close() end)
    local before = baseline(d, c, port)
    c:send("127.0.0.1", port, "loop")
    check_recovered(d, c, port, before, "loop")
    local n = h.wait_metric(mport, "luadgramd_handler_timeouts_total", "hog", 1)
    assert.are.equal(1, n)
    local text = assert(h.metrics(mport))
    assert.are.equal(0, h.metric(text, "luadgramd_handler_memory_errors_total", "hog"))
  end)

  it("rebuilds a state that keeps over 80% of its cap after a collection, and counts it",
     function()
    local d, c, port, mport = start { listener = '  options = { note = "from the config" },' }
    finally(function() c:close() end)
    local before = baseline(d, c, port)
    c:send("127.0.0.1", port, "keep") -- tries to keep 200 MiB across calls; 128 MiB is the cap
    local n, text = h.wait_metric(mport, "luadgramd_handler_restarts_total", "hog", 1, 60)
    assert.are.equal(1, n, d:explain("restarts:\n%s", tostring(text)))
    assert.are.equal(1, h.metric(text, "luadgramd_handler_memory_errors_total", "hog"))
    assert.is_truthy(d:wait_log("listener 'hog': Lua state rebuilt from [^\n]*memhog%.lua: " ..
                                "it held %d+ bytes after a full collection, over 80%% of " ..
                                "handler_memory 134217728", 5),
                     d:explain("no log line for the rebuild"))
    assert.are.equal("0", c:ask("127.0.0.1", port, "kept", 10), d:explain("a fresh state"))
    assert.are.equal("1", c:ask("127.0.0.1", port, "inits", 10), d:explain("init ran in it"))
    assert.are.equal("from the config", c:ask("127.0.0.1", port, "note", 10),
                     d:explain("init got the options"))
    check_recovered(d, c, port, before, "keep")
  end)

  it("takes a per-listener handler_memory over the global one; 0 is no cap", function()
    local d, c, port, mport = start { globals = "handler_timeout = 120\nhandler_memory = \"8M\"",
                                      listener = "  handler_memory = 0," }
    finally(function() c:close() end)
    assert.are.equal("survived keep", c:ask("127.0.0.1", port, "keep", 60), d:explain("keep"))
    assert.are.equal("200", c:ask("127.0.0.1", port, "kept", 10))
    local text = assert(h.metrics(mport))
    assert.are.equal(0, h.metric(text, "luadgramd_handler_memory_errors_total", "hog"))
    assert.is_true(h.metric(text, "luadgramd_lua_memory_bytes", "hog") >= 200 * MiB)

    local d2, c2, port2, mport2 = start { globals = "handler_timeout = 120\nhandler_memory = 1073741824",
                                          listener = "  handler_memory = \"32M\"," }
    finally(function() c2:close() end)
    c2:send("127.0.0.1", port2, "keep")
    local n = h.wait_metric(mport2, "luadgramd_handler_restarts_total", "hog", 1, 60)
    assert.are.equal(1, n, d2:explain("restarts"))
    assert.is_truthy(d2:wait_log("handler_memory of 33554432 bytes reached at", 5, true))
  end)

  it("shows the Lua memory of each state and the process gauges in /metrics", function()
    local d, c, port, mport = start { globals = "workers = 2\nhandler_timeout = 120", listener = "  reuseport = true," }
    finally(function() c:close() end)
    baseline(d, c, port)
    local text = assert(h.metrics(mport))
    for w = 1, 2 do
      local v = tonumber(text:match('luadgramd_lua_memory_bytes{listener="hog",worker="' .. w ..
                                    '"} (%d+)'))
      assert.is_truthy(v, "no gauge for worker " .. w .. ":\n" .. text)
      assert.is_true(v > 10000 and v < 4 * MiB, "Lua memory of worker " .. w .. ": " .. v)
    end
    assert.is_truthy(text:find("# TYPE luadgramd_lua_memory_bytes gauge\n", 1, true))
    local r = h.metric(text, "process_resident_memory_bytes")
    local now = rss(d)
    assert.is_true(r > now / 2 and r < now * 2, ("resident %d, VmRSS %d"):format(r, now))
    local fds = h.metric(text, "process_open_fds")
    local real = tonumber(h.capture("ls /proc/" .. d.pid .. "/fd | wc -l"))
    assert.is_true(math.abs(fds - real) <= 2, ("open fds %d, /proc says %d"):format(fds, real))
    local start_t = h.metric(text, "process_start_time_seconds")
    assert.is_true(start_t > os.time() - 120 and start_t <= os.time() + 1,
                   "start time " .. tostring(start_t))
  end)
end)

describe("handler_memory in the configuration", function()
  after_each(h.cleanup_and_check)

  local EXPECT = 'expected bytes from 1M to 1T, as a number or a string such as "64M" (0: no cap)'
  local cases = {
    { "handler_memory = \"lots\"", 4, "handler_memory: " .. EXPECT },
    { "handler_memory = 1000", 4, "handler_memory: " .. EXPECT },
    { "handler_memory = \"2T\"", 4, "handler_memory: " .. EXPECT },
    { "listen \"x\" {\n  bind = \"127.0.0.1:9\",\n  handler = \"echo\",\n  handler_memory = -1,\n}",
      7, "listener 'x': handler_memory: " .. EXPECT },
    { "listen \"x\" {\n  bind = \"127.0.0.1:9\",\n  handler = \"echo\",\n  unsafe = \"yes\",\n}",
      7, "listener 'x': unsafe: expected true or false" },
  }
  for _, case in ipairs(cases) do
    it("refuses " .. case[1]:gsub("\n%s*", " ") .. " naming FILE:LINE, exit 2", function()
      local dir = h.tmpdir()
      local conf = dir .. "/bad.conf"
      h.write(conf, "-- line 1\nworkers = 1\nlog_level = \"info\"\n" .. case[1] .. "\n")
      for _, args in ipairs { "-t -c " .. h.shq(conf), "-c " .. h.shq(conf) } do
        local code, out, err = h.run(args, 5)
        local want = conf .. ":" .. case[2] .. ": " .. case[3]
        assert.are.equal(2, code, out .. err)
        assert.is_truthy(err:find(want, 1, true), "expected " .. want .. " in\n" .. err)
      end
    end)
  end
end)
