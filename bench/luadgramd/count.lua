-- bench/luadgramd/count.lua: the benchmark's count-only handler (one-way collection): adds
-- one to a local per datagram and logs the total at stop. The cheapest handler there is,
-- so the benchmark measures the daemon's receive path, not Lua work.
local luadgram = require "luadgram"

local H = {}
local n = 0

function H.message(msg) -- luacheck: ignore msg
  n = n + 1
end

function H.stop()
  luadgram.log.info("count: " .. n .. " datagrams")
end

return H
