-- spec/raw_spec.lua: a raw IP listener ("raw:icmp@127.0.0.1") hands ICMP packets, IP header
-- included, to its handler. Needs root (raw sockets; not root: pending) and ping
-- (iputils-ping, which .ci/deps installs: missing, the test fails).
local h = require "helpers"

describe("luadgramd raw listener", function()
  after_each(h.cleanup_and_check)

  it("sees the ICMP echo request of a ping to 127.0.0.1", function()
    if h.capture("id -u") ~= "0" then
      pending("raw sockets need root")
      return
    end
    assert.are_not.equal("", h.capture("command -v ping"),
                         "ping is not installed (iputils-ping, see .ci/deps)")
    local dir = h.tmpdir()
    local out = dir .. "/seen.txt"
    local d = h.start { dir = dir, listeners = { {
      name = "icmp", handler = "icmp", bind = "raw:icmp@127.0.0.1",
      options = { out = out },
    } } }
    -- a payload size of its own, to tell this ping from anyone else's on loopback
    local payload = math.random(200, 1200)
    local size = 20 + 8 + payload -- IPv4 header, ICMP header, payload
    assert.is_true(os.execute("ping -n -c 1 -W 5 -s " .. payload .. " 127.0.0.1 >/dev/null 2>&1"),
                   "ping failed")
    local seen = h.wait_for(function()
      for line in (h.read(out) or ""):gmatch("[^\n]+") do
        if line == string.format("size=%d peer=127.0.0.1 type=8", size) then return true end
      end
    end, 3, 0.05)
    assert.is_true(seen, d:explain("no echo request of %d bytes from 127.0.0.1 seen; handler "
                                   .. "wrote:\n%s", size, h.read(out) or "(nothing)"))
  end)
end)
