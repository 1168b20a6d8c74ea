-- scripts/lib/sink_nats.lua: the collectors' `nats` sink (scripts/lib/collector.lua): every
-- JSON line published to NATS JetStream by a luadgram.nats publisher of options.nats
-- (servers, subject, stream, create, max_inflight, ack_wait, spool, name: README, Outputs);
-- each record carries its id as Nats-Msg-Id. It owns that publisher; close() closes it.
local collector = require "collector"

return {
  sink = function(v, ctx) return collector.publisher_sink("nats", v, ctx) end,
}
