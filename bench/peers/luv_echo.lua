-- bench/peers/luv_echo.lua: the luv (libuv) peer of the echo benchmark, in Lua 5.4 with
-- Debian's lua-luv. recv_start's callback answers each datagram with try_send (a
-- synchronous sendto), and queues it with send only when the socket would block.
--   lua5.4 luv_echo.lua IP PORT SECONDS IDLE
-- Prints "luv_echo: listening on IP:PORT" on stderr once bound (PORT 0 picks a free port),
-- and "received=N sent=M errors=E" on stdout when it stops: after SECONDS in all, or IDLE
-- seconds after the last datagram.
local uv = require "luv"

local ip, port = arg[1] or "127.0.0.1", tonumber(arg[2] or "0")
local seconds, idle = tonumber(arg[3] or "60"), tonumber(arg[4] or "2")

local udp = assert(uv.new_udp())
assert(udp:bind(ip, port))
local name = udp:getsockname()
io.stderr:write(("luv_echo: listening on %s:%d\n"):format(name.ip, name.port))
io.stderr:flush()

local received, sent, errors = 0, 0, 0
local function sent_cb(err)
  if err then errors = errors + 1 else sent = sent + 1 end
end

udp:recv_start(function(err, data, addr)
  if err then errors = errors + 1 return end
  if not data then return end -- nothing more to read for now
  received = received + 1
  if udp:try_send(data, addr.ip, addr.port) then
    sent = sent + 1
  else
    udp:send(data, addr.ip, addr.port, sent_cb)
  end
end)

-- Bounds: a 0.1 s timer stops the loop after SECONDS, or IDLE seconds without a datagram.
local start = uv.now()
local seen, quiet_since = 0, start
local ticker = uv.new_timer()
ticker:start(100, 100, function()
  local now = uv.now()
  if received ~= seen then seen, quiet_since = received, now end
  if (received > 0 and now - quiet_since >= idle * 1000) or now - start > seconds * 1000 then
    ticker:close()
    udp:close()
  end
end)

uv.run()
io.write(("received=%d sent=%d errors=%d\n"):format(received, sent, errors))
