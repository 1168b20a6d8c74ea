-- spec/systemd_spec.lua: luadgramd under systemd's protocols with real peers: sockets
-- passed by systemd-socket-activate (LISTEN_FDS) are used by the listener whose bind address
-- matches and kept across reloads, unmatched ones are closed; sd_notify messages (READY=1,
-- RELOADING=1, STOPPING=1, STATUS=) reach $NOTIFY_SOCKET, a path or an abstract name, and
-- nothing is sent for a value that is neither.
local h = require "helpers"

-- systemd-socket-activate is a test dependency (bash .ci/deps test installs it): its absence
-- fails the tests that need it rather than letting them pass as pending.
local function need_socket_activate()
  assert(os.execute("command -v systemd-socket-activate >/dev/null 2>&1") == true,
         "systemd-socket-activate is not installed (Debian package systemd: bash .ci/deps test)")
end

-- The command prefix that makes systemd-socket-activate listen on `addrs` (in order: they
-- become fds 3, 4, ...) and exec the daemon on the first datagram.
local function activate(addrs)
  local prefix = { "systemd-socket-activate", "--datagram" }
  for _, a in ipairs(addrs) do
    prefix[#prefix + 1] = "-l"
    prefix[#prefix + 1] = a
  end
  prefix[#prefix + 1] = "--"
  return prefix
end

local function inodes(list)
  local out = {}
  for _, s in ipairs(list) do out[#out + 1] = s.inode end
  table.sort(out)
  return out
end

describe("luadgramd under systemd", function()
  after_each(h.cleanup_and_check)

  describe("socket activation (systemd-socket-activate)", function()
    it("uses the passed sockets of its bind addresses, closes the others, keeps them on reload",
       function()
      need_socket_activate()
      local p4, p6 = h.free_port("127.0.0.1"), h.free_port("::1")
      local pextra
      for _ = 1, 10 do
        pextra = h.free_port("127.0.0.1")
        if pextra ~= p4 then break end
      end
      local d = h.start {
        prefix = activate { "127.0.0.1:" .. p4, "127.0.0.1:" .. pextra, "[::1]:" .. p6 },
        ready = false,
        listeners = { {
          name = "echo", handler = "echo", bind = { "127.0.0.1:" .. p4, "[::1]:" .. p6 },
        } },
      }
      local c4, c6 = h.udp("inet", "127.0.0.1"), h.udp("inet6", "::1")
      finally(function() c4:close() c6:close() end)
      -- systemd-socket-activate listens first and execs the daemon on the first datagram.
      assert.is_truthy(d:wait_log("Listening on %[::1%]:" .. p6, 5),
                       d:explain("systemd-socket-activate did not listen"))
      local activate_pid = d.pid
      local data = c4:ask("127.0.0.1", p4, "wake up", 5)
      assert.are.equal("wake up", data,
                       d:explain("the datagram that started the daemon was not answered"))
      assert.is_truthy(d:wait_log("running: ", 5), d:explain("no running line"))

      -- the prefix exec()ed: the pid is the daemon's own
      assert.are.equal(activate_pid, d.pid)
      assert.are.equal(h.capture("readlink -f " .. h.shq(h.bin)), d:exe())
      assert.is_truthy(d:log():find("(pid " .. d.pid .. ")", 1, true),
                       d:explain("the daemon reports another pid than %d", d.pid))

      local log = d:log()
      assert.is_truthy(log:find("listener 'echo': 127.0.0.1:" .. p4
                                .. ": socket from systemd (fd 3)", 1, true),
                       d:explain("fd 3 not taken for 127.0.0.1:%d", p4))
      assert.is_truthy(log:find("listener 'echo': [::1]:" .. p6
                                .. ": socket from systemd (fd 5)", 1, true),
                       d:explain("fd 5 not taken for [::1]:%d", p6))
      assert.is_truthy(log:find("socket fd 4 from systemd matches no bind address: closed", 1,
                                true), d:explain("fd 4 (127.0.0.1:%d) not reported", pextra))
      assert.are.equal(0, d:bound_count("echo"), d:explain("bound its own sockets"))

      -- the unmatched socket is really closed: nothing holds its port any more; the two used
      -- ones are the only sockets on their ports
      assert.are.same({}, h.udp_sockets(pextra, "inet"))
      local s4, s6 = h.udp_sockets(p4, "inet"), h.udp_sockets(p6, "inet6")
      assert.are.equal(1, #s4)
      assert.are.equal(1, #s6)

      data = c6:ask("::1", p6, "over IPv6")
      assert.are.equal("over IPv6", data, d:explain("no echo on the passed IPv6 socket"))
      for i = 1, 5 do
        assert.are.equal("v4 " .. i, c4:ask("127.0.0.1", p4, "v4 " .. i), d:explain("echo %d", i))
      end

      -- a reload keeps the very same sockets and binds nothing
      assert(d:signal("HUP"))
      assert.is_truthy(d:wait_log("reloaded: ", 5), d:explain("no reload"))
      assert.are.equal("after reload", c4:ask("127.0.0.1", p4, "after reload"),
                       d:explain("no echo over IPv4 after the reload"))
      assert.are.equal("after reload 6", c6:ask("::1", p6, "after reload 6"),
                       d:explain("no echo over IPv6 after the reload"))
      assert.are.same(inodes(s4), inodes(h.udp_sockets(p4, "inet")))
      assert.are.same(inodes(s6), inodes(h.udp_sockets(p6, "inet6")))
      assert.are.equal(0, d:bound_count("echo"), d:explain("bound its own sockets on reload"))
      local how, code = d:stop(5)
      assert.are.same({ "exit", 0 }, { how, code }, d:explain("stop"))
      assert.are.same({}, h.udp_sockets(p4, "inet"))
      assert.are.same({}, h.udp_sockets(p6, "inet6"))
    end)

    it("with workers = 2 has one worker read a passed socket", function()
      need_socket_activate()
      local port = h.free_port("127.0.0.1")
      local d = h.start {
        workers = 2,
        prefix = activate { "127.0.0.1:" .. port },
        ready = false,
        listeners = { { name = "sdw", handler = "sd_worker", bind = "127.0.0.1:" .. port } },
      }
      assert.is_truthy(d:wait_log("Listening on 127%.0%.0%.1:" .. port, 5),
                       d:explain("systemd-socket-activate did not listen"))
      local clients = {}
      finally(function() for _, c in ipairs(clients) do c:close() end end)
      local workers_seen = {}
      for i = 1, 16 do
        local c = h.udp("inet", "127.0.0.1")
        clients[#clients + 1] = c
        local data = c:ask("127.0.0.1", port, "c" .. i, 5)
        local r = h.parse(assert(data, d:explain("no reply to client %d", i)))
        assert.are.equal("c" .. i, r.data)
        assert.are.equal(2, r.workers)
        workers_seen[r.worker] = (workers_seen[r.worker] or 0) + 1
      end
      local ids = {}
      for w in pairs(workers_seen) do ids[#ids + 1] = w end
      assert.are.equal(1, #ids, d:explain("replies from workers %s", table.concat(ids, ",")))
      assert.is_truthy(d:log():find("listener 'sdw': 127.0.0.1:" .. port
                                    .. ": socket from systemd (fd 3), read by one worker", 1,
                                    true), d:explain("no 'read by one worker' line"))
      assert.are.equal(0, d:bound_count("sdw"), d:explain("bound its own sockets"))
      local _, n = d:log():gsub("sd_worker init sdw worker (%d) of 2", "")
      assert.are.equal(1, n, d:explain("the handler was loaded in %d workers", n))
      assert.is_truthy(d:log():find("sd_worker init sdw worker " .. ids[1] .. " of 2", 1, true))
    end)
  end)

  describe("sd_notify", function()
    -- The next notification that changes state: the periodic STATUS= refresh (every 10 s
    -- under systemd) may come in between, whenever the run is slow.
    local function next_state(n, timeout)
      local deadline = h.now() + timeout
      while true do
        local msg, err = n:recv(math.max(0.01, deadline - h.now()))
        if not msg or not msg:match("^STATUS=[^\n]*$") then return msg, err end
        if h.now() >= deadline then return nil, "timeout" end
      end
    end

    -- Starts an echo daemon that notifies `n`, checks the whole life cycle of notifications.
    local function notify_cycle(n)
      local port = h.free_port("127.0.0.1")
      local d = h.start {
        env = { NOTIFY_SOCKET = n.addr },
        ready = false,
        listeners = { { name = "echo", handler = "echo", bind = "127.0.0.1:" .. port } },
      }
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)

      local msg = next_state(n, 5)
      assert.is_string(msg, d:explain("no notification on %s", n.addr))
      local f = h.notify_fields(msg)
      assert.are.equal("1", f.READY, d:explain("first notification: %q", msg))
      assert.is_string(f.STATUS, d:explain("READY=1 without STATUS=: %q", msg))
      -- READY=1 means serving: the socket is bound and answers at once
      assert.are.equal("ready?", c:ask("127.0.0.1", port, "ready?"),
                       d:explain("no answer right after READY=1"))

      assert(d:signal("HUP"))
      msg = next_state(n, 5)
      assert.are.equal("1", h.notify_fields(msg).RELOADING,
                       d:explain("expected RELOADING=1 on SIGHUP, got %q", tostring(msg)))
      msg = next_state(n, 5)
      f = h.notify_fields(msg)
      assert.are.equal("1", f.READY, d:explain("expected READY=1 after reload, got %q",
                                               tostring(msg)))
      assert.is_string(f.STATUS)
      assert.are.equal("reloaded", c:ask("127.0.0.1", port, "reloaded"),
                       d:explain("no answer after the reload"))

      -- a reload that fails still ends in READY=1, with a STATUS saying so
      h.write(d.conf, "this is not lua ((\n")
      assert(d:signal("HUP"))
      msg = next_state(n, 5)
      assert.are.equal("1", h.notify_fields(msg).RELOADING,
                       d:explain("expected RELOADING=1 on a failing SIGHUP, got %q",
                                 tostring(msg)))
      msg = next_state(n, 5)
      f = h.notify_fields(msg)
      assert.are.equal("1", f.READY, d:explain("expected READY=1 after a failed reload, got %q",
                                               tostring(msg)))
      assert.is_truthy(f.STATUS and f.STATUS:find("fail", 1, true),
                       d:explain("STATUS after a failed reload: %q", tostring(msg)))
      assert.are.equal("still here", c:ask("127.0.0.1", port, "still here"),
                       d:explain("no answer after the failed reload"))

      assert(d:signal("TERM"))
      msg = next_state(n, 5)
      assert.are.equal("1", h.notify_fields(msg).STOPPING,
                       d:explain("expected STOPPING=1 on SIGTERM, got %q", tostring(msg)))
      local how, code = d:wait(5)
      assert.are.same({ "exit", 0 }, { how, code }, d:explain("exit after SIGTERM"))
      assert.is_nil(next_state(n, 0.2), "a notification after STOPPING=1")
    end

    it("sends READY=1, RELOADING=1 and STOPPING=1 to a NOTIFY_SOCKET path", function()
      local dir = h.tmpdir()
      local n = h.notify_socket(dir .. "/notify")
      finally(function() n:close() end)
      notify_cycle(n)
    end)

    it("sends them to an abstract NOTIFY_SOCKET (@name)", function()
      local n, err = h.notify_socket(nil)
      if not n then
        pending("lua-socket cannot bind an abstract unix socket here: " .. tostring(err))
        return
      end
      finally(function() n:close() end)
      assert.is_truthy(n.addr:match("^@%x+$"), "autobind name " .. n.addr)
      notify_cycle(n)
    end)

    -- Runs an echo daemon with NOTIFY_SOCKET = `value`, in the folder `cwd` when given (so a
    -- relative value names a file there): it must answer, reload (SIGHUP) and answer again,
    -- and exit 0 on SIGTERM: every point where it notifies (start, reload, stop) is passed.
    local function serve_reload_stop(value, cwd)
      local port = h.free_port("127.0.0.1")
      local d = h.start {
        env = { NOTIFY_SOCKET = value },
        prefix = cwd and { "env", "-C", cwd } or nil,
        listeners = { { name = "echo", handler = "echo", bind = "127.0.0.1:" .. port } },
      }
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)
      assert.are.equal("ok", c:ask("127.0.0.1", port, "ok"), d:explain("no echo"))
      assert(d:signal("HUP"))
      assert.is_truthy(d:wait_log("reloaded: ", 5), d:explain("no reload"))
      assert.are.equal("ok2", c:ask("127.0.0.1", port, "ok2"), d:explain("no echo after HUP"))
      local how, code = d:stop(5)
      assert.are.same({ "exit", 0 }, { how, code }, d:explain("exit after SIGTERM"))
      return d
    end

    it("runs normally when NOTIFY_SOCKET names no socket", function()
      serve_reload_stop(h.tmpdir() .. "/nobody-listens")
    end)

    it("sends nothing when NOTIFY_SOCKET is neither an absolute path nor @name", function()
      -- The protocol takes only "/path" or "@abstract"; a daemon that took the relative
      -- "notify" as a path (relative to its folder, `dir`) would reach this socket.
      local dir = h.tmpdir()
      local n = h.notify_socket(dir .. "/notify")
      finally(function() n:close() end)
      local d = serve_reload_stop("notify", dir)
      -- It has exited: whatever it sent is queued here already, so the wait is a formality.
      local msg, err = n:recv(0.2)
      assert.is_nil(msg, d:explain("notification sent to a relative NOTIFY_SOCKET: %q",
                                   tostring(msg)))
      assert.are.equal("timeout", err)
    end)
  end)
end)
