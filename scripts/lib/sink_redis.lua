-- scripts/lib/sink_redis.lua: the collectors' `redis` sink (scripts/lib/collector.lua): every
-- JSON line added to a Redis stream by a luadgram.redis publisher of options.redis (server,
-- stream, maxlen, max_inflight, spool, name: README, Outputs), as `id <record id> data
-- <line>`. It owns that publisher; close() closes it.
local collector = require "collector"

return {
  sink = function(v, ctx) return collector.publisher_sink("redis", v, ctx) end,
}
