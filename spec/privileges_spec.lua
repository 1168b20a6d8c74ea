-- spec/privileges_spec.lua: luadgramd started as root: `user` drops to that user after
-- binding (so a port below 1024 still answers) and before any handler runs; an unknown user
-- is a start error; recv.rcvbuf is granted past net.core.rmem_max as root and, for a daemon
-- that is not root (run under setpriv), capped by the kernel with a warning naming the size.
-- Every case needs root; they are pending otherwise.
local h = require "helpers"

local ROOT = h.is_root()

local function need_root()
  if not ROOT then pending("needs root") end
  return ROOT
end

-- A UDP port in 600-700 that is free on 127.0.0.1 now (bound and closed here), or nil.
local function low_port()
  local socket = require "socket"
  for port = 600, 700 do
    local s = socket.udp4()
    local ok = s:setsockname("127.0.0.1", port)
    s:close()
    if ok then return port end
  end
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
      local port = low_port()
      assert.is_number(port, "no free UDP port in 600-700 on 127.0.0.1")
      assert.is_true(port < tonumber(h.read("/proc/sys/net/ipv4/ip_unprivileged_port_start")),
                     "port " .. port .. " is not privileged here")
      local bin, scripts = h.public_copy { "echo" }
      local d = h.start { user = "nobody", bin = bin, script_path = { scripts }, listeners = { {
        name = "low", handler = "echo", bind = "127.0.0.1:" .. port,
      } } }
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

    it("refuses an unknown user: exit 2 naming it, before any handler runs", function()
      if not need_root() then return end
      local dir, out = h.tmpdir(), h.tmpdir()
      local port = h.free_port("127.0.0.1")
      local conf = dir .. "/luadgramd.conf"
      h.write(conf, h.config_text { user = "no-such-user", listeners = { {
        name = "who", handler = "sd_whoami", bind = "127.0.0.1:" .. port,
        options = { dir = out },
      } } })
      local code, stdout, stderr = h.run("-c " .. h.shq(conf), 10)
      assert.are.equal(2, code, "stdout:\n" .. stdout .. "\nstderr:\n" .. stderr)
      assert.is_truthy(stderr:find("no-such-user", 1, true), "stderr:\n" .. stderr)
      assert.is_nil(h.read(out .. "/init-1"), "a handler's init ran")
      assert.are.same({}, h.udp_sockets(port, "inet"))
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
      if os.execute("command -v setpriv >/dev/null 2>&1") ~= true then
        pending("setpriv is not installed (Debian package util-linux)")
        return
      end
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
