-- spec/netns_spec.lua: packet info across a real link. The spec makes its own test host: a
-- network namespace joined to this one by a veth pair (198.51.100.1/24 here, .2 there).
-- A client in the namespace sends unicast, broadcast and multicast datagrams to a listener
-- bound to 0.0.0.0; the handler must see the destination, the interface and the flags, and
-- its reply must come from this host's address on that link. Root only.
local h = require "helpers"

local function sh(cmd)
  local ok = os.execute(cmd .. " >/dev/null 2>&1")
  return ok
end

local function can_netns()
  return h.capture("id -u"):match("^0") and sh("command -v ip") and sh("command -v lua5.4")
end

-- Runs a lua-socket client in namespace ns: sends data to ip:port (with SO_BROADCAST, and
-- out of 198.51.100.2 for multicast) and prints the reply's source and the reply.
local function ns_ask(ns, ip, port, data)
  local script = [[
    local s = require("socket").udp4()
    assert(s:setsockname("198.51.100.2", 0))
    assert(s:setoption("broadcast", true))
    assert(s:setoption("ip-multicast-if", "198.51.100.2"))
    s:settimeout(2)
    assert(s:sendto(%q, %q, %d))
    local reply, from, fport = s:receivefrom()
    io.write(tostring(from), " ", tostring(fport), "\n", tostring(reply))
  ]]
  script = string.format(script, data, ip, port)
  local out = h.capture(string.format("ip netns exec %s lua5.4 -e %s", ns, h.shq(script)))
  local from, fport, reply = out:match("^(%S+) (%S+)\n(.*)$")
  return from, tonumber(fport), reply, out
end

describe("luadgramd on a veth link to a test namespace", function()
  local ns, vh, vp, joiner

  setup(function()
    if not can_netns() then return end
    local id = tostring(math.random(10000, 99999))
    ns, vh, vp = "ldg" .. id, "ldgh" .. id, "ldgp" .. id
    -- The test host is environment, not the code under test: when this sandbox refuses a
    -- step (a chroot without a shared /run, a container), say which and skip.
    local steps = {
      "ip netns add " .. ns,
      string.format("ip link add %s type veth peer name %s", vh, vp),
      string.format("ip link set %s netns %s", vp, ns),
      string.format("ip addr add 198.51.100.1/24 brd + dev %s && ip link set %s up", vh, vh),
      string.format("ip netns exec %s sh -c 'ip addr add 198.51.100.2/24 brd + dev %s"
                    .. " && ip link set %s up && ip link set lo up'", ns, vp, vp),
    }
    for _, step in ipairs(steps) do
      if not sh(step) then
        io.stderr:write("netns_spec: cannot make the test host here (" .. step
                        .. " failed): these tests are skipped\n")
        sh("ip netns del " .. ns)
        sh("ip link del " .. vh)
        ns = nil
        return
      end
    end
    -- Wait for the link (DAD is not involved for IPv4, but the veth needs a moment).
    h.wait_for(function()
      return h.capture("ip -br link show " .. vh):find("UP", 1, true)
    end, 3)
  end)

  teardown(function()
    if joiner then joiner:close() end
    if ns then
      sh("ip netns del " .. ns)
      sh("ip link del " .. vh)
    end
    h.cleanup()
  end)

  local function start()
    local port = h.free_port("0.0.0.0")
    local d = h.start { listeners = { {
      name = "any", bind = "0.0.0.0:" .. port, handler = "inspect",
      recv = { ttl = true },
    } } }
    return d, port
  end

  it("reports a unicast datagram's address and interface and answers from it", function()
    if not ns then return pending("needs root and a network namespace (ip netns add)") end
    local d, port = start()
    local from, _, reply = ns_ask(ns, "198.51.100.1", port, "uni")
    assert.are.equal("198.51.100.1", from, d:explain("reply source"))
    local m = h.parse(reply)
    assert.are.equal("198.51.100.1:" .. port, m.dst.str)
    assert.are.equal(vh, m.ifname)
    assert.are.equal("198.51.100.2", m.peer.ip)
    assert.is_false(m.bcast)
    assert.is_false(m.mcast)
    assert.are.equal(64, m.ttl)
  end)

  it("marks a datagram to the link's broadcast address and answers from the interface", function()
    if not ns then return pending("needs root and a network namespace (ip netns add)") end
    local d, port = start()
    local from, _, reply = ns_ask(ns, "198.51.100.255", port, "bcast")
    assert.are.equal("198.51.100.1", from, d:explain("reply source for a broadcast"))
    local m = h.parse(reply)
    assert.are.equal("198.51.100.255:" .. port, m.dst.str)
    assert.are.equal(vh, m.ifname)
    assert.is_true(m.bcast)
    assert.is_false(m.mcast)
  end)

  it("marks a datagram to the limited broadcast address", function()
    if not ns then return pending("needs root and a network namespace (ip netns add)") end
    local d, port = start()
    local from, _, reply = ns_ask(ns, "255.255.255.255", port, "lbcast")
    assert.are.equal("198.51.100.1", from, d:explain("reply source for 255.255.255.255"))
    local m = h.parse(reply)
    assert.are.equal("255.255.255.255:" .. port, m.dst.str)
    assert.is_true(m.bcast)
  end)

  it("marks a multicast datagram and answers from the interface's own address", function()
    if not ns then return pending("needs root and a network namespace (ip netns add)") end
    local d, port = start()
    -- Some socket of this host must be in the group on the link (as a router or an
    -- application would be); Linux then delivers it to the listener bound to 0.0.0.0.
    joiner = require("socket").udp4()
    assert(joiner:setsockname("0.0.0.0", 0))
    assert(joiner:setoption("ip-add-membership",
                            { multiaddr = "239.255.42.1", interface = "198.51.100.1" }))
    local from, _, reply = ns_ask(ns, "239.255.42.1", port, "mcast")
    assert.are.equal("198.51.100.1", from, d:explain("reply source for a multicast"))
    local m = h.parse(reply)
    assert.are.equal("239.255.42.1:" .. port, m.dst.str)
    assert.is_true(m.mcast)
    assert.is_false(m.bcast)
    assert.are.equal(vh, m.ifname)
  end)
end)
