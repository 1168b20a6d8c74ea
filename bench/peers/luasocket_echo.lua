-- bench/peers/luasocket_echo.lua: the lua-socket peer of the echo benchmark. The simple
-- fair version a user would write: a blocking receivefrom/sendto loop on one UDP socket.
-- The 0.1 s receive timeout only lets the loop check its bounds; under load every
-- receivefrom returns a datagram at once.
--   lua5.4 luasocket_echo.lua IP PORT SECONDS IDLE
-- Prints "luasocket_echo: listening on IP:PORT" on stderr once bound (PORT 0 picks a free
-- port), and "received=N sent=M errors=E" on stdout when it stops: after SECONDS in all,
-- or IDLE seconds after the last datagram.
local socket = require "socket"

local ip, port = arg[1] or "127.0.0.1", tonumber(arg[2] or "0")
local seconds, idle = tonumber(arg[3] or "60"), tonumber(arg[4] or "2")

local udp = assert(socket.udp())
assert(udp:setsockname(ip, port))
udp:settimeout(0.1)
local bound_ip, bound_port = udp:getsockname()
io.stderr:write(("luasocket_echo: listening on %s:%d\n"):format(bound_ip, bound_port))
io.stderr:flush()

local gettime = socket.gettime
local start = gettime()
local received, sent, errors = 0, 0, 0
local seen, quiet_since = 0, start -- received at the last timeout, and since when quiet
while true do
  local data, from_ip, from_port = udp:receivefrom()
  if data then
    received = received + 1
    if udp:sendto(data, from_ip, from_port) then sent = sent + 1 else errors = errors + 1 end
    -- the time bound is checked every 4096 datagrams, not per datagram
    if received % 4096 == 0 and gettime() - start > seconds then break end
  else -- 0.1 s without a datagram
    local now = gettime()
    if received ~= seen then seen, quiet_since = received, now end
    if (received > 0 and now - quiet_since >= idle) or now - start > seconds then break end
  end
end
io.write(("received=%d sent=%d errors=%d\n"):format(received, sent, errors))
