-- spec/netns_spec.lua: packet info across a real link. The spec makes its own test host: a
-- network namespace joined to this one by a veth pair (198.51.100.1/24 here, .2 there).
-- A client in the namespace sends unicast, broadcast and multicast datagrams to a listener
-- bound to 0.0.0.0; the handler must see the destination, the interface and the flags, and
-- its reply must come from this host's address on that link.
--
-- The namespace is held by a process of its own (`unshare --net`) and entered with
-- `nsenter`, not with `ip netns add/exec`: `ip netns exec` remounts / and /sys, which a
-- chroot refuses. Needs root, iproute2 and util-linux; not root: the tests are pending.
-- As root a set-up step that fails FAILS the tests (ctest counts pending as passed), unless
-- the environment says namespaces are unavailable here (a container without the rights):
--   LUADGRAM_NO_NETNS=1   a refused set-up step makes the tests pending, naming the step.
local h = require "helpers"

local HOST_IP, PEER_IP = "198.51.100.1", "198.51.100.2"

-- Runs a shell command; returns whether it exited 0, and its output (stdout and stderr).
local run = require("netlab").run

-- The command prefix that runs a program in the test host's namespace.
local function in_ns(host)
  return "nsenter --net=/proc/" .. host.pid .. "/ns/net "
end

-- Removes what make_test_host made (each part only when it exists).
local function remove_test_host(host)
  if host.pid then os.execute("kill " .. host.pid .. " 2>/dev/null") end
  if host.holder then host.holder:close() end
  run("ip link del " .. host.vh)
end

-- Makes the test host. Returns it ({ pid =, vh =, vp = }), or nil and the step that failed
-- with what it said.
local function make_test_host()
  local id = tostring(h.mypid())
  local host = { vh = "ldgh" .. id, vp = "ldgp" .. id }
  -- the holder prints its pid and sleeps (bounded: a namespace left by a killed spec goes)
  local holder_cmd = "exec unshare --net sh -c 'echo $$; exec sleep 900' 2>&1"
  host.holder = io.popen(holder_cmd, "r")
  local first = host.holder:read("l")
  host.pid = tonumber(first)
  if not host.pid then
    remove_test_host(host)
    return nil, holder_cmd .. ": " .. tostring(first)
  end
  local steps = {
    string.format("ip link add %s type veth peer name %s", host.vh, host.vp),
    string.format("ip link set %s netns %d", host.vp, host.pid),
    string.format("ip addr add %s/24 brd + dev %s && ip link set %s up", HOST_IP, host.vh,
                  host.vh),
    in_ns(host) .. string.format("sh -c 'ip addr add %s/24 brd + dev %s && ip link set %s up"
                                 .. " && ip link set lo up'", PEER_IP, host.vp, host.vp),
  }
  for _, step in ipairs(steps) do
    local ok, out = run(step)
    if not ok then
      remove_test_host(host)
      return nil, step .. ": " .. out
    end
  end
  local operstate = "/sys/class/net/" .. host.vh .. "/operstate"
  if not h.wait_for(function() return (h.read(operstate) or ""):match("^up") end, 5) then
    local state = h.read(operstate)
    remove_test_host(host)
    return nil, "waiting for " .. operstate .. " to say up: " .. tostring(state)
  end
  return host
end

-- Runs a lua-socket client in the test host: sends data to ip:port from PEER_IP (with
-- SO_BROADCAST, and out of PEER_IP for multicast) and returns the reply's source address
-- and port, the reply, and the client's whole output.
local function ns_ask(host, ip, port, data)
  local script = [[
    local s = require("socket").udp4()
    assert(s:setsockname(%q, 0))
    assert(s:setoption("broadcast", true))
    assert(s:setoption("ip-multicast-if", %q))
    s:settimeout(5)
    assert(s:sendto(%q, %q, %d))
    local reply, from, fport = s:receivefrom()
    io.write(tostring(from), " ", tostring(fport), "\n", tostring(reply))
  ]]
  script = string.format(script, PEER_IP, PEER_IP, data, ip, port)
  local out = h.capture(in_ns(host) .. "lua5.4 -e " .. h.shq(script) .. " 2>&1")
  local from, fport, reply = out:match("^(%S+) (%S+)\n(.*)$")
  return from, tonumber(fport), reply, out
end

describe("luadgramd on a veth link to a test namespace", function()
  local host, why_not

  setup(function()
    if not h.is_root() then
      why_not = "needs root (veth links and namespaces)"
      return
    end
    local failed
    host, failed = make_test_host()
    if not host then
      why_not = "the test host cannot be made here: " .. failed
    end
  end)

  teardown(function()
    if host then remove_test_host(host) end
  end)

  after_each(h.cleanup_and_check)

  -- The test host, or nil when the test is pending; raises when set-up failed as root and
  -- LUADGRAM_NO_NETNS=1 does not say that is expected.
  local function test_host()
    if host then return host end
    if not h.is_root() then
      pending(why_not)
    elseif os.getenv("LUADGRAM_NO_NETNS") == "1" then
      pending("LUADGRAM_NO_NETNS=1 and " .. why_not)
    else
      error(why_not .. "\n(set LUADGRAM_NO_NETNS=1 where network namespaces are unavailable)",
            2)
    end
    return nil
  end

  -- A daemon with the inspect handler on 0.0.0.0:port (and ttl reported).
  local function start()
    local port = h.free_port("0.0.0.0")
    local d = h.start { listeners = { {
      name = "any", bind = "0.0.0.0:" .. port, handler = "inspect",
      recv = { ttl = true },
    } } }
    return d, port
  end

  -- Asks from the test host and parses the description the handler sent back.
  local function ask(d, th, ip, port, data)
    local from, fport, reply, out = ns_ask(th, ip, port, data)
    assert.are.equal(HOST_IP, from, d:explain("reply source for %s; client said:\n%s", ip, out))
    assert.are.equal(port, fport, d:explain("reply port for %s", ip))
    local m = h.parse(reply)
    assert.are.equal(data, m.data)
    assert.are.equal(PEER_IP, m.peer.ip)
    return m
  end

  it("reports a unicast datagram's address and interface and answers from it", function()
    local th = test_host()
    if not th then return end
    local d, port = start()
    local m = ask(d, th, HOST_IP, port, "uni")
    assert.are.equal(HOST_IP .. ":" .. port, m.dst.str)
    assert.are.equal(th.vh, m.ifname)
    assert.are.equal(tonumber(h.read("/sys/class/net/" .. th.vh .. "/ifindex")), m.ifindex)
    assert.is_false(m.bcast)
    assert.is_false(m.mcast)
    assert.are.equal(64, m.ttl)
  end)

  it("marks a datagram to the link's broadcast address and answers from the interface", function()
    local th = test_host()
    if not th then return end
    local d, port = start()
    local m = ask(d, th, "198.51.100.255", port, "bcast")
    assert.are.equal("198.51.100.255:" .. port, m.dst.str)
    assert.are.equal(th.vh, m.ifname)
    assert.is_true(m.bcast)
    assert.is_false(m.mcast)
  end)

  it("marks a datagram to the limited broadcast address", function()
    local th = test_host()
    if not th then return end
    local d, port = start()
    local m = ask(d, th, "255.255.255.255", port, "lbcast")
    assert.are.equal("255.255.255.255:" .. port, m.dst.str)
    assert.are.equal(th.vh, m.ifname)
    assert.is_true(m.bcast)
    assert.is_false(m.mcast)
  end)

  it("marks a multicast datagram and answers from the interface's own address", function()
    local th = test_host()
    if not th then return end
    local d, port = start()
    -- Some socket of this host must be in the group on the link (as a router or an
    -- application would be); Linux then delivers it to the listener bound to 0.0.0.0.
    local joiner = require("socket").udp4()
    finally(function() joiner:close() end)
    assert(joiner:setsockname("0.0.0.0", 0))
    assert(joiner:setoption("ip-add-membership",
                            { multiaddr = "239.255.42.1", interface = HOST_IP }))
    local m = ask(d, th, "239.255.42.1", port, "mcast")
    assert.are.equal("239.255.42.1:" .. port, m.dst.str)
    assert.is_true(m.mcast)
    assert.is_false(m.bcast)
    assert.are.equal(th.vh, m.ifname)
  end)
end)
