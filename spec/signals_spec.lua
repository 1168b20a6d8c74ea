-- spec/signals_spec.lua: what signals do to a running daemon: SIGHUP reloads scripts without
-- losing a datagram and keeps the old state when the new one is broken; SIGTERM and SIGINT
-- stop cleanly (handlers' stop() called, unix socket files removed, exit status 0).
local h = require "helpers"

local function versioned(version)
  local text = assert(h.read(h.fixture("versioned")))
  local out, n = text:gsub('local VERSION = "v1"', 'local VERSION = "' .. version .. '"')
  assert(n == 1, "versioned.lua has no VERSION line")
  return out
end

-- Replaces a file in one step, as an editor or a deployment would.
local function replace(path, text)
  h.write(path .. ".new", text)
  assert(os.rename(path .. ".new", path))
end

describe("luadgramd signals", function()
  after_each(h.cleanup_and_check)

  describe("SIGHUP", function()
    it("swaps a changed script in without losing, repeating or reordering a datagram",
       function()
      local dir = h.tmpdir()
      local script = dir .. "/handler.lua"
      h.write(script, versioned("v1"))
      local port, mport = h.free_port("127.0.0.1"), h.free_tcp_port()
      local d = h.start { dir = dir, metrics = "127.0.0.1:" .. mport, listeners = { {
        name = "rl", handler = "./handler.lua", bind = "127.0.0.1:" .. port,
        recv = { rcvbuf = 4194304 },
      } } }
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)
      pcall(c.setoption, c, "recv-buffer-size", 4194304)

      -- N datagrams with SIGHUP after HUP_AT of them, then AFTER more once the log says
      -- the reload is done (however long it took): those must meet the new script
      local N, HUP_AT, AFTER = 2000, 500, 20
      local total = N + AFTER
      local replies = {}
      local function drain()
        while true do
          local data = c:recv(0)
          if not data then return end
          replies[#replies + 1] = data
        end
      end
      local t0 = h.now()
      for i = 1, N do
        c:send("127.0.0.1", port, tostring(i))
        if i == HUP_AT then
          replace(script, versioned("v2"))
          assert(d:signal("HUP"))
        end
        drain()
        if i % 4 == 0 then h.sleep(0.004) end
      end
      local reloaded = d:wait_log("reloaded: 1 listeners, 1 workers", 10, true)
      assert.is_truthy(reloaded, d:explain("the reload did not finish"))
      for i = N + 1, total do
        c:send("127.0.0.1", port, tostring(i))
        drain()
      end
      h.wait_for(function() drain() return #replies >= total end, 10, 0.01)
      local elapsed = h.now() - t0

      -- every datagram answered exactly once, in order, v1 then v2
      local text = h.metrics(mport) or ""
      local why = d:explain("%d replies to %d datagrams in %.1f s; kernel drops %s",
                            #replies, total, elapsed,
                            tostring(h.metric(text, "luadgramd_kernel_drops_total", "rl")))
      local seen, versions, switched_at = {}, {}, nil
      for idx, r in ipairs(replies) do
        local v, n = r:match("^(v%d) (%d+)$")
        assert.is_string(v, "malformed reply " .. r)
        n = tonumber(n)
        assert.is_nil(seen[n], "datagram " .. n .. " answered twice\n" .. why)
        seen[n] = true
        assert.are.equal(idx, n, "replies out of order at " .. idx .. "\n" .. why)
        versions[#versions + 1] = v
        if v == "v2" and not switched_at then switched_at = idx end
        if switched_at then
          assert.are.equal("v2", v, "v1 answered " .. n .. " after v2 answered "
                           .. switched_at .. "\n" .. why)
        end
      end
      assert.are.equal(total, #replies, why)
      assert.are.equal("v1", versions[1], why)
      assert.are.equal("v2", versions[total], "the new script never answered\n" .. why)
      assert.are.equal(total, h.metric(text, "luadgramd_received_total", "rl"), why)
      assert.is_true(d:alive(), why)
    end)

    it("keeps the old script answering when the new one is broken, and logs why", function()
      local dir = h.tmpdir()
      local script = dir .. "/handler.lua"
      h.write(script, versioned("v1"))
      local port = h.free_port("127.0.0.1")
      local d = h.start { dir = dir, listeners = { {
        name = "rl", handler = "./handler.lua", bind = "127.0.0.1:" .. port,
      } } }
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)
      assert.are.equal("v1 a", c:ask("127.0.0.1", port, "a"), d:explain("first reply"))

      replace(script, "-- broken on purpose\nlocal H = = {}\nreturn H\n")
      assert(d:signal("HUP"))
      assert.is_truthy(d:wait_log("handler.lua:2:", 5, true),
                       d:explain("the log does not say why the reload failed"))
      assert.is_true(d:alive(), d:explain("a failed reload stopped the daemon"))
      assert.are.equal("v1 b", c:ask("127.0.0.1", port, "b"),
                       d:explain("the old script stopped answering"))

      -- and a later good reload still works
      replace(script, versioned("v3"))
      assert(d:signal("HUP"))
      assert.is_truthy(d:wait_log("reloaded: 1 listeners, 1 workers", 10, true),
                       d:explain("the fixed script was not loaded"))
      assert.are.equal("v3 c", c:ask("127.0.0.1", port, "c"),
                       d:explain("the fixed script does not answer"))
    end)
  end)

  for _, sig in ipairs { "TERM", "INT" } do
    describe("SIG" .. sig, function()
      it("calls every handler's stop(), removes unix socket files and exits 0", function()
        local dir = h.tmpdir()
        local port = h.free_port("127.0.0.1")
        local sock = dir .. "/srv.sock"
        local d = h.start { dir = dir, workers = 2, listeners = {
          { name = "inet", handler = "lifecycle", bind = "127.0.0.1:" .. port,
            options = { marker = dir .. "/inet.stopped" } },
          { name = "local", handler = "lifecycle", bind = "unix:" .. sock,
            options = { marker = dir .. "/unix.stopped" } },
        } }
        local c = h.udp("inet", "127.0.0.1")
        local u = h.unix(dir .. "/cli.sock")
        finally(function() c:close() u:close() end)
        assert.are.equal("alive", c:ask("127.0.0.1", port, "x"), d:explain("udp"))
        assert.are.equal("alive", u:ask(sock, "x"), d:explain("unix"))
        assert.is_true(h.exists(sock))

        assert(d:signal(sig))
        local how, code = d:wait(10)
        assert.are.equal("exit", how, d:explain("did not exit on SIG%s (%s %s)", sig,
                                                tostring(how), tostring(code)))
        assert.are.equal(0, code, d:explain("exit status"))
        assert.are.equal("stopped\n", h.read(dir .. "/inet.stopped"),
                         d:explain("stop() of listener inet was not called"))
        assert.are.equal("stopped\n", h.read(dir .. "/unix.stopped"),
                         d:explain("stop() of listener local was not called"))
        assert.is_false(h.exists(sock), d:explain("the unix socket file is left behind"))
      end)
    end)
  end
end)
