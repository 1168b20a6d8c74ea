-- spec/raw_spec.lua: a raw IP listener ("raw:icmp@127.0.0.1") hands ICMP packets, IP header
-- included, to its handler. Needs root (raw sockets) and ping (iputils-ping).
local h = require "helpers"

describe("luadgramd raw listener", function()
  after_each(h.cleanup_and_check)

  it("sees the ICMP echo request of a ping to 127.0.0.1", function()
    if h.capture("id -u") ~= "0" then
      pending("raw sockets need root")
      return
    end
    if h.capture("command -v ping") == "" then
      pending("ping (iputils-ping) is not installed")
      return
    end
    local dir = h.tmpdir()
    local out = dir .. "/seen.txt"
    local d = h.start { dir = dir, listeners = { {
      name = "icmp", handler = "icmp", bind = "raw:icmp@127.0.0.1",
      options = { out = out },
    } } }
    assert.is_true(os.execute("ping -n -c 1 -W 1 127.0.0.1 >/dev/null 2>&1"), "ping failed")
    local seen = h.wait_for(function()
      for line in (h.read(out) or ""):gmatch("[^\n]+") do
        local size, peer, typ = line:match("^size=(%d+) peer=(%S+) type=(%S+)$")
        if typ == "8" then return { size = tonumber(size), peer = peer } end
      end
    end, 3, 0.05)
    assert.is_table(seen, d:explain("no echo request seen; handler wrote:\n%s",
                                    h.read(out) or "(nothing)"))
    assert.is_true(seen.size > 28, "an IPv4 header and an ICMP header at least")
    assert.are.equal("127.0.0.1", seen.peer)
  end)
end)
