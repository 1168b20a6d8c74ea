-- spec/netopts_spec.lua: a listener's binding options (freebind, device, v6only, tos, ttl)
-- and msg.bcast following the interfaces' addresses live, on a two-host network of its own
-- (spec/netlab.lua): the daemon runs in host a, clients send from host b. As in
-- mcast_spec.lua, the seen fixture's answer to a datagram that must arrive lists all the
-- handler got before it, so a datagram that must not arrive is checked without waiting.
-- Pending where namespaces are refused (not root, or LUADGRAM_NO_NETNS=1; netlab.lua).
local h = require "helpers"
local netlab = require "netlab"

local A4, B4, A6, B6 = netlab.A4, netlab.B4, netlab.A6, netlab.B6

local seen_lines = netlab.seen_lines

describe("luadgramd binding options and live addresses on a two-host network", function()
  local lab, why

  setup(function()
    if h.is_root() then lab, why = netlab.new() end
  end)

  teardown(function()
    if lab then lab:close() end
  end)

  after_each(h.cleanup_and_check)

  local function start(listener, extra)
    listener.name = listener.name or "m"
    listener.handler = listener.handler or "seen"
    local cfg = { listeners = { listener }, prefix = lab:prefix("a") }
    for k, v in pairs(extra or {}) do cfg[k] = v end
    return h.start(cfg)
  end

  local function send(host, sends)
    local out = lab:lua(host, netlab.client_script(sends))
    return seen_lines(out), out
  end

  -- Runs `cmd` in host `name`, raising with its output when it fails.
  local function must(name, cmd)
    local ok, out = lab:run(name, cmd)
    assert(ok, cmd .. ": " .. tostring(out))
  end

  it("marks a datagram to the broadcast address of an address added after start", function()
    if not netlab.require(lab, why) then return end
    local port = h.free_port("127.0.0.1")
    local d = start { bind = "0.0.0.0:" .. port }
    -- a first datagram makes the worker read the addresses (msg.bcast is read by seen)
    local seen, out = send("b", { { from = B4, to = A4, port = port, data = "first" } })
    assert.truthy(seen.first, d:explain("first:\n%s", out))
    finally(function()
      lab:run("a", "ip addr del 198.51.100.65/26 dev va")
      lab:run("b", "ip addr del 198.51.100.66/26 dev vb")
    end)
    must("a", "ip addr add 198.51.100.65/26 brd + dev va")
    must("b", "ip addr add 198.51.100.66/26 brd + dev vb")
    seen, out = send("b", { { from = "198.51.100.66", to = "198.51.100.127", port = port,
                             data = "bc" } })
    assert.are.equal("bc 198.51.100.127:" .. port .. " mcast=false bcast=true if=va", seen.bc,
                     d:explain("answer:\n%s", out))
  end)

  it("binds an address not yet on any interface with freebind and receives once it is added",
     function()
    if not netlab.require(lab, why) then return end
    local port = h.free_port("127.0.0.1")
    -- without freebind the bind is refused
    local refused = start({ bind = "198.51.100.9:" .. port }, { ready = false })
    local how, code = refused:wait(10)
    assert.are.equal("exit", how, refused:explain("still running"))
    assert.are_not.equal(0, code)
    assert.truthy(refused:log():find("bind 198.51.100.9:" .. port
                                     .. ": Cannot assign requested address (EADDRNOTAVAIL)", 1,
                                     true), refused:explain("no bind error"))
    local d = start { bind = "198.51.100.9:" .. port, freebind = true }
    finally(function() lab:run("a", "ip addr del 198.51.100.9/24 dev va") end)
    must("a", "ip addr add 198.51.100.9/24 dev va")
    local seen, out = send("b", { { from = B4, to = "198.51.100.9", port = port,
                                    data = "late" } })
    assert.are.equal("late 198.51.100.9:" .. port .. " mcast=false bcast=false if=va", seen.late,
                     d:explain("answer:\n%s", out))
  end)

  it("receives only on its device", function()
    if not netlab.require(lab, why) then return end
    local port = h.free_port("127.0.0.1")
    local d = start { bind = "0.0.0.0:" .. port, device = "va" }
    -- from host a itself over lo: not on va, dropped; then from b over va: arrives
    local _, out_lo = send("a", { { from = "127.0.0.1", to = "127.0.0.1", port = port,
                                    data = "lo" } })
    local seen, out = send("b", { { from = B4, to = A4, port = port, data = "va" } })
    local ctx = d:explain("from lo: %s\nfrom va:\n%s", out_lo, out)
    assert.truthy(seen.va, ctx)
    assert.is_nil(seen.lo, ctx)
  end)

  it("keeps [::] to IPv6 with v6only = true", function()
    if not netlab.require(lab, why) then return end
    local port = h.free_port("127.0.0.1")
    local d = start { bind = "[::]:" .. port, v6only = true }
    local seen, out = send("b", {
      { from = B4, to = A4, port = port, data = "v4" },
      { from = B6, to = A6, port = port, data = "v6" },
    })
    local ctx = d:explain("answer:\n%s", out)
    assert.are.equal("v6 [" .. A6 .. "]:" .. port .. " mcast=false bcast=false if=va", seen.v6,
                     ctx)
    assert.is_nil(seen.v4, ctx)
  end)

  it("sends with the listener's tos and ttl", function()
    if not netlab.require(lab, why) then return end
    local pa, pb = h.free_port("127.0.0.1"), h.free_port("127.0.0.1")
    -- the probe: inspect in host b reports the TTL and TOS of what it receives
    local probe = h.start { prefix = lab:prefix("b"), listeners = { {
      name = "probe", bind = B4 .. ":" .. pb, handler = "inspect",
      recv = { ttl = true, tos = true },
    } } }
    local d = start { name = "out", handler = "relay", bind = "0.0.0.0:" .. pa, tos = 32,
                      ttl = 7 }
    -- from host a: make the relay send to the probe, then ask for the probe's answer
    local script = string.format([[
      local socket = require "socket"
      local u = assert(socket.udp4())
      assert(u:setsockname("127.0.0.1", 0))
      assert(u:sendto("send %s:%d hello", "127.0.0.1", %d))
      u:settimeout(0.2)
      local deadline = socket.gettime() + 5
      repeat
        assert(u:sendto("last", "127.0.0.1", %d))
        local r = u:receive()
        if r and r ~= "" then io.write(r) return end
      until socket.gettime() > deadline
      io.write("timeout")]], B4, pb, pa, pa)
    local out = lab:lua("a", script)
    local ctx = d:explain("probe said: %s\n%s", out, probe:tail(10))
    local ok, m = pcall(h.parse, out)
    assert(ok and type(m) == "table", ctx)
    assert.are.equal("hello", m.data, ctx)
    assert.are.equal(7, m.ttl, ctx)
    assert.are.equal(32, m.tos, ctx)
  end)

  -- Each bad option: the key's line and the message after FILE:LINE.
  local bad = {
    { "freebind = 1,", "freebind: expected true or false" },
    { "v6only = \"yes\",", "v6only: expected true or false" },
    { "device = \"nosuchif0\",", "device: unknown interface 'nosuchif0'" },
    { "device = \"\",", "device: expected an interface name" },
    { "tos = 256,", "tos: expected an integer from 0 to 255" },
    { "ttl = 0,", "ttl: expected an integer from 1 to 255" },
  }
  for _, case in ipairs(bad) do
    it("refuses " .. case[1] .. " at its line", function()
      local dir = h.tmpdir()
      local conf = dir .. "/bad.conf"
      h.write(conf, "listen \"a\" {\n  bind = \"0.0.0.0:" .. h.free_port("127.0.0.1")
                    .. "\",\n  handler = \"echo\",\n  " .. case[1] .. "\n}\n")
      local code, out, err = h.run("-t -c " .. h.shq(conf))
      assert.are.equal(2, code, err)
      assert.are.equal("", out)
      assert.are.equal(conf .. ":4: listener 'a': " .. case[2] .. "\n", err)
    end)
  end
end)
