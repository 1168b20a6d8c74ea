-- spec/icmp_example_spec.lua: scripts/examples/icmp.lua on raw ICMP listeners logs the
-- fields it decodes from a ping's echo request (IPv4 header included; for IPv6 the hop
-- limit and traffic class from the control data). Needs root (raw sockets; not root:
-- pending) and ping (iputils-ping, installed by .ci/deps).
local h = require "helpers"

describe("scripts/examples/icmp.lua", function()
  after_each(h.cleanup_and_check)

  it("logs the IPv4 header fields and the ICMPv6 echo of pings to loopback", function()
    if not h.is_root() then
      pending("raw sockets need root")
      return
    end
    assert.are_not.equal("", h.capture("command -v ping"),
                         "ping is not installed (iputils-ping, see .ci/deps)")
    local d = h.start { listeners = { {
      name = "pings", handler = h.src .. "/scripts/examples/icmp.lua",
      bind = { "raw:icmp@127.0.0.1", "raw:icmpv6@::1" }, recv = { ttl = true, tos = true },
      options = { per_second = 100 },
    } } }
    -- a payload size of its own, to tell this ping from anyone else's on loopback
    local payload = math.random(200, 1200)
    assert.is_true(os.execute("ping -n -c 1 -W 5 -Q 32 -s " .. payload
                              .. " 127.0.0.1 >/dev/null 2>&1"), "ping failed")
    local line = d:wait_log("echo request from 127%.0%.0%.1 to 127%.0%.0%.1: id=%d+ seq=1 "
                            .. "payload=" .. payload .. "; IPv4 header: [^\n]*", 5)
    assert.truthy(line, d:explain("no line for the IPv4 echo request of %d bytes", payload))
    assert.truthy(line:find("ihl=20 tos=32 len=" .. (payload + 28) .. " ", 1, true), line)
    assert.truthy(line:find(" ttl=64 ", 1, true), line)
    assert.is_true(os.execute("ping -6 -n -c 1 -W 5 -s " .. payload .. " ::1 >/dev/null 2>&1"),
                   "ping -6 failed")
    local line6 = d:wait_log("echo request from ::1 to ::1: id=%d+ seq=1 payload=" .. payload
                             .. "; IPv6 hop limit=64 tclass=0", 5)
    assert.truthy(line6, d:explain("no line for the IPv6 echo request of %d bytes", payload))
  end)
end)
