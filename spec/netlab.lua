-- spec/netlab.lua: a two-host network for specs: hosts "a" and "b", each a network
-- namespace of its own held by a process (`unshare --net`), joined by a veth pair (link "va"
-- in a, "vb" in b) with 198.51.100.1/24 and 2001:db8::1/64 on a, 198.51.100.2/24,
-- 198.51.100.3/24 and 2001:db8::2/64 on b, and multicast routed out of the link on b. The
-- daemon runs in a (h.start's prefix = lab:prefix("a")), clients in b (lab:lua("b", ...)).
-- Nothing of the machine's own network is touched; removing the holders removes it all.
--
-- Namespaces are entered with `nsenter`, not `ip netns exec`: that one remounts / and /sys,
-- which a chroot (CI) refuses (spec/netns_spec.lua explains the same choice). Needs root,
-- iproute2 and util-linux. lab.require(lab, why) turns a missing lab into a pending test
-- (not root, or LUADGRAM_NO_NETNS=1) or an error (root, and the set-up failed).
local h = require "helpers"

local netlab = {}
local Lab = {}
Lab.__index = Lab

netlab.A4, netlab.B4, netlab.B4_OTHER = "198.51.100.1", "198.51.100.2", "198.51.100.3"
netlab.A6, netlab.B6 = "2001:db8::1", "2001:db8::2"

-- Runs a shell command; returns whether it exited 0, and its output (stdout and stderr).
function netlab.run(cmd)
  local out = h.capture("(" .. cmd .. ") 2>&1; echo \"rc=$?\"")
  local text, rc = out:match("^(.-)\n?rc=(%d+)$")
  return rc == "0", text
end

-- A holder process in a new network namespace: its pid and its pipe, or nil, what it said.
local function holder()
  local cmd = "exec unshare --net sh -c 'echo $$; exec sleep 900' 2>&1"
  local p = io.popen(cmd, "r")
  local first = p:read("l")
  local pid = tonumber(first)
  if not pid then
    p:close()
    return nil, cmd .. ": " .. tostring(first)
  end
  return { pid = pid, pipe = p }
end

-- The command prefix (a string) that runs a program in host `name` ("a" or "b").
function Lab:ns(name)
  return "nsenter --net=/proc/" .. self[name].pid .. "/ns/net "
end

-- The same as a list, for h.start's prefix.
function Lab:prefix(name)
  return { "nsenter", "--net=/proc/" .. self[name].pid .. "/ns/net" }
end

-- Runs a shell command in host `name`: ok, output.
function Lab:run(name, cmd)
  return netlab.run(self:ns(name) .. "sh -c " .. h.shq(cmd))
end

-- Runs a Lua script (lua-socket available) in host `name`; returns its output.
function Lab:lua(name, script)
  return h.capture(self:ns(name) .. "lua5.4 -e " .. h.shq(script) .. " 2>&1")
end

function Lab:close()
  for _, name in ipairs { "a", "b" } do
    local host = self[name]
    if host then
      os.execute("kill " .. host.pid .. " 2>/dev/null")
      host.pipe:close()
    end
  end
end

-- Builds the lab: it, or nil and the step that failed with what it said.
function netlab.new()
  local lab = setmetatable({}, Lab)
  for _, name in ipairs { "a", "b" } do
    local host, why = holder()
    if not host then
      lab:close()
      return nil, why
    end
    lab[name] = host
  end
  local steps = {
    { nil, string.format("ip link add va netns %d type veth peer name vb netns %d",
                         lab.a.pid, lab.b.pid) },
    { "a", "ip link set lo up && ip link set va up && ip addr add 198.51.100.1/24 brd + dev va"
           .. " && ip addr add 2001:db8::1/64 dev va nodad" },
    { "b", "ip link set lo up && ip link set vb up && ip addr add 198.51.100.2/24 brd + dev vb"
           .. " && ip addr add 198.51.100.3/24 dev vb && ip addr add 2001:db8::2/64 dev vb nodad"
           .. " && ip route add 224.0.0.0/4 dev vb" },
  }
  for _, step in ipairs(steps) do
    local ok, out
    if step[1] then
      ok, out = lab:run(step[1], step[2])
    else
      ok, out = netlab.run(step[2])
    end
    if not ok then
      lab:close()
      return nil, step[2] .. ": " .. out
    end
  end
  -- the link is up when both ends say so
  local up = h.wait_for(function()
    -- (not /sys/class/net: sysfs shows the namespace it was mounted in, the machine's)
    local _, a = lab:run("a", "ip -o link show va")
    local _, b = lab:run("b", "ip -o link show vb")
    return a:match("state UP") and b:match("state UP")
  end, 5)
  if not up then
    lab:close()
    return nil, "waiting for va and vb to say up"
  end
  return lab
end

-- For the body of a test: the lab, or nil after marking the test pending; raises when the
-- set-up failed as root and LUADGRAM_NO_NETNS=1 does not say that is expected.
function netlab.require(lab, why)
  if lab then return lab end
  if not h.is_root() then
    pending("needs root (veth links and namespaces)")
  elseif os.getenv("LUADGRAM_NO_NETNS") == "1" then
    pending("LUADGRAM_NO_NETNS=1 and the two-host network cannot be made here: "
            .. tostring(why))
  else
    error("the two-host network cannot be made here: " .. tostring(why)
          .. "\n(set LUADGRAM_NO_NETNS=1 where network namespaces are unavailable)", 2)
  end
  return nil
end

-- A client script for host b: sends each of `sends` ({ from = ip, to = ip, port =, data = })
-- in order from its own socket bound to `from`, then waits up to 5 s for the answer to the
-- last one and prints it. Returns the script.
function netlab.client_script(sends)
  local lines = { 'local socket = require "socket"', "local last" }
  for _, s in ipairs(sends) do
    local v6 = s.to:find(":", 1, true) ~= nil
    lines[#lines + 1] = string.format(
      "do local u = assert(socket.%s()) assert(u:setsockname(%q, 0)) %s"
      .. "assert(u:sendto(%q, %q, %d)) last = u end",
      v6 and "udp6" or "udp4", s.from, v6 and "" or "assert(u:setoption('broadcast', true)) ",
      s.data, s.to, s.port)
  end
  lines[#lines + 1] = "last:settimeout(5) local r, e = last:receivefrom() "
                      .. "io.write(tostring(r or e))"
  return table.concat(lines, "\n")
end

-- The lines of an answer of spec/fixtures/seen.lua, keyed by their first word (the data).
function netlab.seen_lines(text)
  local t = {}
  for line in (text or ""):gmatch("[^\n]+") do t[line:match("^(%S+)")] = line end
  return t
end

return netlab
