-- spec/privileges_spec.lua: luadgramd started as root: `user` drops to that user after
-- binding (so a port below 1024 still answers) and before any handler runs; an unknown user
-- is a configuration error, at start (before anything is bound) and on reload (the running
-- state is kept, nothing of the refused one is bound or run); recv.rcvbuf is granted past
-- net.core.rmem_max as root and, for a daemon that is not root (run under setpriv), capped
-- by the kernel with a warning naming the size. The unknown-user cases run as any user;
-- the others need root and are pending otherwise.
local h = require "helpers"

local ROOT = h.is_root()

local function need_root()
  if not ROOT then pending("needs root") end
  return ROOT
end

-- A UDP port in 600-999 that is free on 127.0.0.1 now (bound and closed here), or nil;
-- picked at random, so that two runs of this spec at once do not both take the first one.
local function low_port()
  local socket = require "socket"
  for _ = 1, 100 do
    local port = math.random(600, 999)
    local s = socket.udp4()
    local ok = s:setsockname("127.0.0.1", port)
    s:close()
    if ok then return port end
  end
end

-- Starts h.start(cfg_for(port)) on a privileged port; when another process took the port
-- between the pick and the daemon's bind (EADDRINUSE), picks again. Returns d and port.
local function start_on_low_port(cfg_for)
  local unprivileged = tonumber(h.read("/proc/sys/net/ipv4/ip_unprivileged_port_start"))
  for _ = 1, 5 do
    local port = low_port()
    assert.is_number(port, "no free UDP port in 600-999 on 127.0.0.1")
    assert.is_true(port < unprivileged, "port " .. port .. " is not privileged here")
    local ok, d = pcall(h.start, cfg_for(port))
    if ok then return d, port end
    if not tostring(d):find("EADDRINUSE", 1, true) then error(d, 0) end
  end
  error("five privileged ports were taken before the daemon could bind them")
end

-- The number of the first line of `text` that holds `what` (plain text).
local function line_of(text, what)
  local n = 0
  for l in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if l:find(what, 1, true) then return n end
  end
  error("no line holds " .. what)
end

local function rmem_max()
  return tonumber((h.read("/proc/sys/net/core/rmem_max") or ""):match("%d+"))
end

-- Asserts every thread of d runs with uid and gid (real, effective, saved, fs) and without
-- root's group or any capability.
local function assert_runs_as(d, uid, gid)
  local threads = d:thread_status_fields()
  local n = 0
  for tid, st in pairs(threads) do
    n = n + 1
    local why = d:explain("thread %d: Uid %s, Gid %s, Groups %s", tid, tostring(st.Uid),
                          tostring(st.Gid), tostring(st.Groups))
    assert.are.same({ uid, uid, uid, uid }, h.numbers(st.Uid), why)
    assert.are.same({ gid, gid, gid, gid }, h.numbers(st.Gid), why)
    for _, g in ipairs(h.numbers(st.Groups)) do
      assert.are_not.equal(0, g, "supplementary group root kept\n" .. why)
    end
    assert.are.equal(0, tonumber(st.CapEff, 16), "capabilities kept\n" .. why)
  end
  assert.is_true(n >= 2, d:explain("expected the main thread and a worker, found %d", n))
end

describe("luadgramd privileges", function()
  after_each(h.cleanup_and_check)

  describe("user =", function()
    it("drops to the user after binding a port below 1024, which still answers", function()
      if not need_root() then return end
      local uid, gid = h.id_of("nobody", "u"), h.id_of("nobody", "g")
      assert.is_number(uid, "no user nobody")
      local bin, scripts = h.public_copy { "echo" }
      local d, port = start_on_low_port(function(port)
        return { user = "nobody", bin = bin, script_path = { scripts }, listeners = { {
          name = "low", handler = "echo", bind = "127.0.0.1:" .. port,
        } } }
      end)
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)
      assert.are.equal("low port", c:ask("127.0.0.1", port, "low port"),
                       d:explain("no echo on port %d", port))
      assert.is_truthy(d:wait_log("running as user nobody (uid " .. uid .. ", gid " .. gid
                                  .. ")", 2, true), d:explain("no 'running as' line"))
      assert_runs_as(d, uid, gid)
      assert.are.equal("again", c:ask("127.0.0.1", port, "again"), d:explain("second echo"))
    end)

    it("runs handlers' init as the user", function()
      if not need_root() then return end
      local uid, gid = h.id_of("nobody", "u"), h.id_of("nobody", "g")
      local out = h.tmpdir()
      assert(os.execute("chmod 0777 " .. h.shq(out)))
      local secret = h.tmpdir() .. "/secret"
      h.write(secret, "root only\n")
      assert(os.execute("chmod 0600 " .. h.shq(secret)))
      local port = h.free_port("127.0.0.1")
      local bin, scripts = h.public_copy { "sd_whoami" }
      local d = h.start { user = "nobody", bin = bin, script_path = { scripts }, listeners = { {
        name = "who", handler = "sd_whoami", bind = "127.0.0.1:" .. port,
        options = { dir = out, secret = secret },
      } } }
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)
      local r = h.parse(assert(c:ask("127.0.0.1", port, "who"), d:explain("no reply")))
      assert.is_true(r.wrote, d:explain("init could not write: %s", tostring(r.write_err)))
      local file = out .. "/init-1"
      assert.are.equal("init ran\n", h.read(file))
      assert.are.equal(tostring(uid), h.capture("stat -c %u " .. h.shq(file)))
      assert.are.equal(tostring(gid), h.capture("stat -c %g " .. h.shq(file)))
      assert.is_false(r.secret_read, "init read a root-only file")
      assert.is_truthy(tostring(r.secret_err):find("Permission denied", 1, true),
                       tostring(r.secret_err))
    end)

    it("refuses an unknown user at start: exit 2 naming it, before binding or any init",
       function()
      -- The listener's port is held here while the daemon runs: a daemon that bound before
      -- looking the user up would be refused with EADDRINUSE instead of the user's line.
      local holder = h.udp("inet", "127.0.0.1")
      finally(function() holder:close() end)
      local out = h.tmpdir()
      local conf = h.tmpdir() .. "/luadgramd.conf"
      local text = h.config_text { user = "no-such-user", listeners = { {
        name = "who", handler = "sd_whoami", bind = "127.0.0.1:" .. holder:port(),
        options = { dir = out },
      } } }
      h.write(conf, text)
      local code, stdout, stderr = h.run("-c " .. h.shq(conf), 10)
      local ctx = text .. "--- exit " .. code .. "; stdout ---\n" .. stdout .. "--- stderr ---\n"
                  .. stderr
      assert.are.equal(2, code, ctx)
      assert.are.equal("", stdout, ctx)
      assert.are.equal(conf .. ":" .. line_of(text, "user = ")
                       .. ": user: no such user 'no-such-user'\n", stderr, ctx)
      assert.is_nil(h.read(out .. "/init-1"), "a handler's init ran\n" .. ctx)
    end)

    it("refuses an unknown user on reload: keeps serving, binds nothing, runs no init",
       function()
      local out = h.tmpdir()
      local old_port = h.free_port("127.0.0.1")
      local new_port
      repeat new_port = h.free_port("127.0.0.1") until new_port ~= old_port
      local old = { name = "echo", handler = "echo", bind = "127.0.0.1:" .. old_port }
      local d = h.start { listeners = { old } }
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)
      local text = h.config_text { user = "no-such-user", listeners = { old, {
        name = "who", handler = "sd_whoami", bind = "127.0.0.1:" .. new_port,
        options = { dir = out },
      } } }
      h.write(d.conf, text)
      assert(d:signal("HUP"))
      assert.is_truthy(h.wait_for(function()
        local log = d:log()
        return log:find("reload failed", 1, true) or log:find("reloaded: ", 1, true)
      end, 5), d:explain("the reload did not end"))
      -- checked while it runs (once it has exited, no socket is left whatever it did)
      assert.is_true(d:alive(), d:explain("the daemon stopped"))
      assert.are.same({}, h.udp_sockets(new_port, "inet"),
                      d:explain("the refused configuration's port %d is bound", new_port))
      assert.is_nil(h.read(out .. "/init-1"), d:explain("the refused configuration's init ran"))
      assert.is_truthy(d:log():find("reload failed, keeping the running configuration: "
                                    .. d.conf .. ":" .. line_of(text, "user = ")
                                    .. ": user: no such user 'no-such-user'\n", 1, true),
                       d:explain("no 'reload failed' line naming the user"))
      assert.are.equal("still", c:ask("127.0.0.1", old_port, "still"),
                       d:explain("no echo after the refused reload"))
    end)
  end)

  describe("recv.rcvbuf", function()
    it("is granted past net.core.rmem_max as root", function()
      if not need_root() then return end
      local max = rmem_max()
      assert.is_number(max)
      local want = math.max(8388608, max * 2)
      if want >= 1 << 30 then
        pending("net.core.rmem_max is " .. max .. ": no size above it to ask for")
        return
      end
      local port = h.free_port("127.0.0.1")
      local d = h.start { listeners = { {
        name = "big", handler = "echo", bind = "127.0.0.1:" .. port,
        recv = { rcvbuf = want },
      } } }
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)
      assert.are.equal("big", c:ask("127.0.0.1", port, "big"), d:explain("no echo"))
      assert.is_nil(d:log():find("capped", 1, true), d:explain("warned about a capped buffer"))
      -- Linux reads back twice what was set (its bookkeeping)
      assert.are.same({ 2 * want }, h.udp_rcvbufs(port), d:explain("ss -m of port %d", port))
    end)

    it("is capped by the kernel for a daemon that is not root, with a warning", function()
      if not need_root() then return end
      assert(os.execute("command -v setpriv >/dev/null 2>&1") == true,
             "setpriv is not installed (Debian package util-linux: bash .ci/deps test)")
      local max = rmem_max()
      assert.is_number(max)
      local want = max * 4
      if want >= 1 << 31 then
        pending("net.core.rmem_max is " .. max .. ": no size far above it to ask for")
        return
      end
      local uid, gid = h.id_of("nobody", "u"), h.id_of("nobody", "g")
      local dir = h.tmpdir()
      assert(os.execute("chmod 0755 " .. h.shq(dir)))
      local port = h.free_port("127.0.0.1")
      local bin, scripts = h.public_copy { "echo" }
      local d = h.start {
        dir = dir, conf_mode = "0644", bin = bin, script_path = { scripts },
        prefix = { "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups" },
        listeners = { { name = "capped", handler = "echo", bind = "127.0.0.1:" .. port,
                        recv = { rcvbuf = want } } },
      }
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)
      assert.are.equal("small", c:ask("127.0.0.1", port, "small"), d:explain("no echo"))
      assert.are.equal(h.capture("readlink -f " .. h.shq(bin)), d:exe())
      assert.are.same({ uid, uid, uid, uid }, h.numbers(d:status_fields().Uid))
      assert.are.same({ gid, gid, gid, gid }, h.numbers(d:status_fields().Gid))
      local granted, asked = d:log():match("listener 'capped': 127%.0%.0%.1:" .. port
        .. ": receive buffer capped by the kernel at (%d+) bytes %(asked (%d+)")
      assert.is_string(granted, d:explain("no 'capped' warning"))
      assert.are.equal(max, tonumber(granted), d:explain("net.core.rmem_max is %d", max))
      assert.are.equal(want, tonumber(asked))
      assert.is_truthy(d:log():find("warn[^\n]*receive buffer capped"),
                       d:explain("the capped line is not a warning"))
      assert.are.same({ 2 * max }, h.udp_rcvbufs(port), d:explain("ss -m of port %d", port))
    end)
  end)
end)
