-- spec/syslog_corpus_spec.lua: the corpus of real-world syslog forms
-- (spec/fixtures/syslog_corpus.lua) through the Lua reference (scripts/lib/syslog_parse.lua),
-- the C parser (require "luadgram.syslog") and the daemon end to end: each vector gives the
-- fields rsyslog and syslog-ng give, and both parsers give the same whole record.
local h = require "helpers"
local cjson = require "cjson"
local corpus = require "fixtures.syslog_corpus"
local syslog = require "syslog_parse"
local syslog_c = require "luadgram.syslog"
local output_jsonl = require "output_jsonl"

-- The fields every vector pins (absent in `want`: absent in the record).
local PINNED = { "format", "hostname", "app_name", "procid", "msgid", "msg", "parse_error",
  "sd_lenient" }

-- Asserts that `rec` has the fields `want` gives (`what` names the vector in failures).
local function check_fields(rec, want, what, with_timestamp)
  for _, k in ipairs(PINNED) do
    assert.are.same(want[k], rec[k], what .. ": field " .. k)
  end
  if with_timestamp and want.timestamp then
    assert.are.equal(want.timestamp, rec.timestamp, what .. ": field timestamp")
  end
end

-- The same record, field by field, numbers of the same math.type.
local function same(a, b, path)
  if type(a) ~= type(b) then return false, path .. ": " .. type(a) .. " vs " .. type(b) end
  if type(a) == "number" then
    if math.type(a) ~= math.type(b) or a ~= b then
      return false, path .. ": " .. tostring(a) .. " vs " .. tostring(b)
    end
    return true
  end
  if type(a) ~= "table" then
    if a ~= b then return false, path .. ": " .. tostring(a) .. " vs " .. tostring(b) end
    return true
  end
  for k, v in pairs(a) do
    local ok, why = same(v, b[k], path .. "." .. tostring(k))
    if not ok then return false, why end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, path .. "." .. tostring(k) .. ": only in the C record" end
  end
  return true
end

describe("syslog corpus", function()
  for i, v in ipairs(corpus.vectors) do
    local what = string.format("#%d (%s)", i, v[1])
    it("reads " .. what .. " with both parsers, as the peers do", function()
      local lua_rec = syslog.parse(v[2], corpus.NOW, v[4])
      check_fields(lua_rec, v[3], what, true)
      local c_rec = syslog_c.parse(v[2], corpus.NOW, v[4])
      assert(same(lua_rec, c_rec, "rec"))
    end)
  end

  describe("on the daemon", function()
    after_each(h.cleanup_and_check)

    it("writes every vector's fields, records matched by their raw bytes", function()
      local dir = h.tmpdir()
      local out = dir .. "/corpus.jsonl"
      local port = h.free_port("127.0.0.1")
      local d = h.start { dir = dir, listeners = { { name = "corpus",
        bind = "127.0.0.1:" .. port, handler = "syslog",
        options = { raw = "always", file = { path = "corpus.jsonl", flush_interval = 0.05 } } } } }
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)
      for _, v in ipairs(corpus.vectors) do c:send("127.0.0.1", port, v[2]) end
      local recs = {}
      h.wait_for(function()
        recs = {}
        for line in (h.read(out) or ""):gmatch("([^\n]*)\n") do recs[#recs + 1] = cjson.decode(line) end
        return #recs >= #corpus.vectors
      end, 10, 0.05)
      assert.are.equal(#corpus.vectors, #recs, d:explain("lines in %s", out))
      local by_raw = {}
      for _, r in ipairs(recs) do by_raw[r.raw_b64] = r end
      for i, v in ipairs(corpus.vectors) do
        local what = string.format("#%d (%s)", i, v[1])
        local r = by_raw[output_jsonl.base64(v[2])]
        assert.is_table(r, what .. ": no record in " .. out)
        check_fields(r, v[3], what, false)
      end
    end)
  end)
end)
