-- bench/outputs/publish.lua: the handler bench/outputs/run.sh measures: every datagram is
-- published as it is (msg.data) to the output its options name (nats or redis); nothing is
-- parsed, nothing answered.
local luadgram = require "luadgram"
local H = {}
local pub
function H.init(_, options)
  pub = options.nats and luadgram.nats(options.nats) or luadgram.redis(options.redis)
end
function H.message(msg) pub:publish(msg.data) end
function H.stop() pub:close() end
return H
