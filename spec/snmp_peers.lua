-- spec/snmp_peers.lua: the net-snmp peers the snmptrap specs share (factored out of
-- spec/snmptrap_spec.lua for spec/snmptrap_mib_spec.lua): the environment every net-snmp
-- program runs in, the clients (snmptrap, snmpinform, snmpget), and snmptrapd started in the
-- foreground on ephemeral loopback ports, logging in a given format, stopped by its PID.
local h = require "helpers"

local P = {}

-- `env ...` for every net-snmp program: the MIB modules of `mibdir` only (none by default),
-- no configuration of the host, and the persistent state in a temp folder (net-snmp writes
-- there).
function P.env(dir)
  assert(os.execute("mkdir -p " .. h.shq(dir .. "/persist") .. " " .. h.shq(dir .. "/conf")))
  return "env MIBS= SNMPCONFPATH=" .. h.shq(dir .. "/conf")
         .. " SNMP_PERSISTENT_DIR=" .. h.shq(dir .. "/persist")
end

local client_dir

-- Runs a net-snmp client (at most 20 s), numeric OIDs and no MIB modules: true on exit 0,
-- and its output.
function P.client(tool, args)
  client_dir = client_dir or h.tmpdir()
  local words = {}
  for i, a in ipairs(args) do words[i] = h.shq(a) end
  local out = client_dir .. "/out"
  local cmd = string.format("timeout -k 1 20 %s %s -On -M /dev/null %s >%s 2>&1 </dev/null",
                            P.env(client_dir), tool, table.concat(words, " "), h.shq(out))
  local ok = os.execute(cmd)
  return ok == true, h.read(out) or ""
end

local trapds = {}   -- snmptrapd processes to stop (P.cleanup)

local Trapd = {}
Trapd.__index = Trapd
P.Trapd = Trapd      -- the specs add their readers of the log (Trapd:records())

-- Starts snmptrapd in the foreground on 127.0.0.1 and [::1] (ephemeral ports), logging to a
-- file in `format` (-F), and waits until it is up. `mib_flags`: its MIB options, e.g.
-- "-M /dev/null -On" (numeric, no modules) or "-M <dir> -m ALL" (names from <dir> only).
function P.start_trapd(format, mib_flags)
  local dir = h.tmpdir()
  local t = setmetatable({ port = h.free_port("127.0.0.1"), port6 = h.free_port("::1"),
                           log = dir .. "/snmptrapd.log" }, Trapd)
  h.write(dir .. "/snmptrapd.conf", "disableAuthorization yes\n")
  local cmd = string.format(
    "echo $$; exec %s snmptrapd -f -n -C -c %s %s -Lf %s -F %s "
    .. "udp:127.0.0.1:%d,udp6:[::1]:%d >%s 2>&1 </dev/null",
    P.env(dir), h.shq(dir .. "/snmptrapd.conf"), mib_flags, h.shq(t.log), h.shq(format),
    t.port, t.port6, h.shq(dir .. "/snmptrapd.out"))
  t.handle = assert(io.popen(cmd, "r"))
  t.pid = assert(tonumber(t.handle:read("l")))
  trapds[#trapds + 1] = t
  local up = h.wait_for(function()
    return (h.read(t.log) or ""):find("NET-SNMP version", 1, true)
  end, 10)
  assert(up, "snmptrapd did not start: " .. (h.read(t.log) or "")
             .. (h.read(dir .. "/snmptrapd.out") or ""))
  return t
end

function Trapd:stop()
  if not self.handle then return end
  os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
  local gone = h.wait_for(function()
    local stat = h.read("/proc/" .. self.pid .. "/stat")
    return not stat or stat:match("%) ([ZX])")
  end, 3)
  if not gone then os.execute("kill -KILL " .. self.pid .. " 2>/dev/null") end
  self.handle:close()
  self.handle = nil
end

-- Stops every snmptrapd started and forgets the clients' folder (each spec's after_each).
function P.cleanup()
  for _, t in ipairs(trapds) do t:stop() end
  trapds = {}
  client_dir = nil
end

return P
