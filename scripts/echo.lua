-- scripts/echo.lua: answers every datagram with its own payload, from the address it was
-- sent to. The smallest useful handler, and the one the benchmark measures.
local H = {}

function H.message(msg)
  msg:reply(msg.data)
end

return H
