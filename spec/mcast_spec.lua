-- spec/mcast_spec.lua: a listener's multicast groups (join = { ... }) and its binding
-- options, on a two-host network of its own (spec/netlab.lua): the daemon runs in host a,
-- clients send from host b. The seen fixture answers every datagram with all it has seen, so
-- a datagram that must NOT arrive is checked without waiting: it is sent before one that
-- must, to the same socket (order holds only within one), and the answer to that one lists
-- everything the handler got before it.
-- Pending where namespaces are refused (not root, or LUADGRAM_NO_NETNS=1; netlab.lua).
local h = require "helpers"
local netlab = require "netlab"

local A4, B4, B4_OTHER, A6, B6 = netlab.A4, netlab.B4, netlab.B4_OTHER, netlab.A6, netlab.B6

local seen_lines = netlab.seen_lines

describe("luadgramd multicast groups on a two-host network", function()
  local lab, why

  setup(function()
    if h.is_root() then lab, why = netlab.new() end
  end)

  teardown(function()
    if lab then lab:close() end
  end)

  after_each(h.cleanup_and_check)

  -- Starts the seen handler in host a with the listener fields given (name "m").
  local function start(listener, extra)
    listener.name, listener.handler = "m", "seen"
    local cfg = { listeners = { listener }, prefix = lab:prefix("a") }
    for k, v in pairs(extra or {}) do cfg[k] = v end
    return h.start(cfg)
  end

  -- Sends from b (see netlab.client_script); returns the answer's lines by data, and the
  -- raw answer.
  local function send(sends)
    local out = lab:lua("b", netlab.client_script(sends))
    return seen_lines(out), out
  end

  it("delivers an IPv4 group, an IPv6 group on the link and an SSM group, with msg.mcast; "
     .. "a source not joined does not arrive", function()
    if not netlab.require(lab, why) then return end
    local port = h.free_port("127.0.0.1")
    local d = start {
      bind = { "0.0.0.0:" .. port, "[::]:" .. port },
      v6only = true,
      join = { "239.1.2.3%va", "ff02::1:3%va", "232.1.1.1%va from " .. B4 },
    }
    assert.truthy(d:wait_log("joined 232.1.1.1%%va from", 5), d:explain("no join logged"))
    -- one exchange per socket of the listener: order holds only within one socket
    local seen, out = send { { from = B4, to = "239.1.2.3", port = port, data = "g4" } }
    assert.are.equal("g4 239.1.2.3:" .. port .. " mcast=true bcast=false if=va", seen.g4,
                     d:explain("answer:\n%s", out))
    seen, out = send { { from = B6, to = "ff02::1:3%vb", port = port, data = "g6" } }
    assert.are.equal("g6 [ff02::1:3]:" .. port .. " mcast=true bcast=false if=va", seen.g6,
                     d:explain("answer:\n%s", out))
    seen, out = send {
      { from = B4_OTHER, to = "232.1.1.1", port = port, data = "notjoined" },
      { from = B4, to = "232.1.1.1", port = port, data = "ssm" },
    }
    local ctx = d:explain("answer:\n%s", out)
    assert.are.equal("ssm 232.1.1.1:" .. port .. " mcast=true bcast=false if=va", seen.ssm, ctx)
    assert.is_nil(seen.notjoined, ctx)
  end)

  it("leaves a group removed on reload while the socket's other traffic goes on", function()
    if not netlab.require(lab, why) then return end
    local port = h.free_port("127.0.0.1")
    local d = start { bind = "0.0.0.0:" .. port, join = { "239.1.2.3%va", "239.1.2.4%va" } }
    local seen, out = send {
      { from = B4, to = "239.1.2.3", port = port, data = "one" },
      { from = B4, to = "239.1.2.4", port = port, data = "two" },
    }
    assert.truthy(seen.one and seen.two, d:explain("before the reload:\n%s", out))
    local text = h.read(d.conf):gsub('"239.1.2.3%%va", ', "")
    assert.is_nil(text:find("239.1.2.3", 1, true))
    h.write(d.conf, text)
    assert(d:signal("HUP"))
    assert.truthy(d:wait_log("reloaded: ", 10), d:explain("no reload"))
    seen, out = send {
      { from = B4, to = "239.1.2.3", port = port, data = "gone" },
      { from = B4, to = "239.1.2.4", port = port, data = "still" },
      { from = B4, to = A4, port = port, data = "uni" },
    }
    local ctx = d:explain("after the reload:\n%s", out)
    assert.is_nil(seen.gone, ctx)
    assert.are.equal("still 239.1.2.4:" .. port .. " mcast=true bcast=false if=va", seen.still,
                     ctx)
    assert.are.equal("uni " .. A4 .. ":" .. port .. " mcast=false bcast=false if=va", seen.uni,
                     ctx)
    -- the socket was kept (bound once), and the group left on it
    assert.are.equal(1, d:bound_count("m"), ctx)
    assert.truthy(d:log():find("left 239.1.2.3%va", 1, true), ctx)
  end)

  -- Each bad join: the message after FILE:LINE (the join line).
  local bad = {
    { '"198.51.100.7"', "'198.51.100.7': 198.51.100.7 is not a multicast address "
      .. "(224.0.0.0/4, ff00::/8)" },
    { '"239.1.2.3%nosuchif0"', "'239.1.2.3%nosuchif0': unknown interface 'nosuchif0'" },
    { '"239.1.2.3 from 192.0.2.1"', "'239.1.2.3 from 192.0.2.1': a source needs a "
      .. "source-specific multicast group (232.0.0.0/8, ff3x::/32)" },
    { '"ff02::1 from 192.0.2.1"', "'ff02::1 from 192.0.2.1': the source and the group are of "
      .. "different families" },
    { '"ff02::1:3"', "'ff02::1:3' needs an IPv6 bind to join it on (such as \"[::]:port\")" },
  }
  for _, case in ipairs(bad) do
    it("refuses join = { " .. case[1] .. " } at its line", function()
      local dir = h.tmpdir()
      local conf = dir .. "/bad.conf"
      h.write(conf, "listen \"a\" {\n  bind = \"0.0.0.0:" .. h.free_port("127.0.0.1")
                    .. "\",\n  handler = \"echo\",\n  join = { " .. case[1] .. " },\n}\n")
      local code, out, err = h.run("-t -c " .. h.shq(conf))
      assert.are.equal(2, code, err)
      assert.are.equal("", out)
      assert.are.equal(conf .. ":4: listener 'a': join: " .. case[2] .. "\n", err)
    end)
  end
end)
