-- spec/dns_spec.lua: scripts/dns.lua in the real daemon on ephemeral loopback ports, asked
-- by the real dig (bind9-dnsutils) for every kind of answer, and by hand-made datagrams
-- (lua-socket) for the malformed queries dig will not send.
local h = require "helpers"
local wire = require "dns_wire"

local LONG_TXT = string.rep("0123456789", 30)            -- 300 bytes: two character-strings
local BIG = { string.rep("a", 250), string.rep("b", 250), string.rep("c", 250) } -- > 512
local HUGE = string.rep("z", 1300)                        -- > 1232 even with EDNS

local OPTIONS = {
  zone = "example.test.", ttl = 300, edns_size = 1232, stats_interval = 0.1,
  soa = { mname = "ns1", rname = "hostmaster", serial = 2024030501, minimum = 60 },
  records = {
    ["@"] = { NS = { "ns1", "ns2.other.test." }, A = "192.0.2.80" },
    ns1 = { A = "192.0.2.53" },
    www = { A = { "192.0.2.1", "192.0.2.2" }, AAAA = { "2001:db8::1" },
            TXT = { "hello world", "v=spf1 -all" }, ttl = 60 },
    long = { TXT = LONG_TXT },
    big = { TXT = BIG },
    huge = { TXT = HUGE },
    ["a.b"] = { A = "192.0.2.9" },                        -- b.example.test: empty non-terminal
    dup = { A = { "192.0.2.65", "192.0.2.97", "192.0.2.65" } }, -- 'A' and 'a' in the last byte
  },
}

-- ---- dig ----

-- Runs dig against server:port (one try, 10 s for the answer: an ASan build on a loaded
-- machine); returns its whole output.
local function dig(server, port, args)
  return h.capture(string.format("dig @%s -p %d +tries=1 +time=10 %s 2>&1", server, port,
                                 args))
end

-- How long a hand-made query waits for its answer.
local REPLY_TIMEOUT = 10

-- Reads dig's default output: status, flags (a set), EDNS (version, udp, flags), the
-- question line and the records of each section ({ name, ttl, class, type, data }).
local function parse_dig(out)
  local r = { out = out, flags = {}, answer = {}, authority = {}, additional = {} }
  r.status = out:match("status: ([%u]+)")
  local flags = out:match(";; flags:([%w ]*);")
  for f in (flags or ""):gmatch("%a+") do r.flags[f] = true end
  r.edns_version, r.edns_flags, r.udp =
    out:match("; EDNS: version: (%d+), flags:([%w ]*); udp: (%d+)")
  r.edns_version, r.udp = tonumber(r.edns_version), tonumber(r.udp)
  local section -- the name of the section being read; a blank line ends it
  for line in (out .. "\n"):gmatch("([^\n]*)\n") do
    local name = line:match("^;; (%u+) SECTION:$")
    if name then
      section = name:lower()
    elseif line == "" then
      section = nil
    elseif section == "question" then
      r.question = r.question or line:match("^;(%S+)")
    elseif r[section] then
      local n, ttl, class, t, data = line:match("^(%S+)%s+(%d+)%s+(%u+)%s+(%S+)%s+(.*)$")
      if n then
        local list = r[section]
        list[#list + 1] = { name = n, ttl = tonumber(ttl), class = class, type = t, data = data }
      end
    end
  end
  return r
end

-- The character-strings of a TXT record's data as dig prints it ("a" "b").
local function txt_strings(data)
  local out = {}
  for s in data:gmatch('"(.-)"') do out[#out + 1] = s end
  return out
end

local function datas(records, rtype)
  local out = {}
  for _, rr in ipairs(records) do
    if not rtype or rr.type == rtype then out[#out + 1] = rr.data end
  end
  table.sort(out)
  return out
end

-- ---- raw queries ----

-- A query datagram: t = { id =, flags =, qd =, an =, ns =, ar =, question = bytes,
-- extra = bytes after it }; the counts default to 1, 0, 0, 0.
local function raw_query(t)
  return string.pack(">I2I2I2I2I2I2", t.id or 0x4242, t.flags or 0x0100, t.qd or 1, t.an or 0,
                     t.ns or 0, t.ar or 0) .. (t.question or "") .. (t.extra or "")
end

local function question(name, qtype, qclass)
  return assert(wire.name_to_wire(name)) .. string.pack(">I2I2", qtype or 1, qclass or 1)
end

-- The header of a reply: id, flags, qd, an, ns, ar, rcode.
local function header(reply)
  local id, flags, qd, an, ns, ar = string.unpack(">I2I2I2I2I2I2", reply)
  return { id = id, flags = flags, qd = qd, an = an, ns = ns, ar = ar, rcode = flags & 15,
           qr = flags & 0x8000 ~= 0, aa = flags & 0x0400 ~= 0, tc = flags & 0x0200 ~= 0,
           rd = flags & 0x0100 ~= 0, opcode = (flags >> 11) & 15 }
end

local function start(options, metrics_port)
  local p4, p6 = h.free_port("127.0.0.1"), h.free_port("::1")
  local d = h.start { metrics = metrics_port and ("127.0.0.1:" .. metrics_port),
                      listeners = { {
    name = "dns", handler = "dns", bind = { "127.0.0.1:" .. p4, "[::1]:" .. p6 },
    options = options,
  } } }
  return d, p4, p6
end

describe("dns.lua", function()
  describe("asked by dig", function()
    local d, port, port6

    setup(function()
      d, port, port6 = start(OPTIONS)
    end)
    teardown(h.cleanup_and_check)

    local function ask(args)
      local r = parse_dig(dig("127.0.0.1", port, args))
      assert.is_string(r.status, d:explain("no answer from dig %s:\n%s", args, r.out))
      return r
    end

    it("answers A with both addresses, authoritatively, RD copied, no RA", function()
      local r = ask("www.example.test A")
      assert.are.equal("NOERROR", r.status)
      assert.are.same({ qr = true, aa = true, rd = true }, r.flags)
      assert.are.same({ "192.0.2.1", "192.0.2.2" }, datas(r.answer, "A"))
      for _, rr in ipairs(r.answer) do
        assert.are.equal("www.example.test.", rr.name)
        assert.are.equal(60, rr.ttl)
        assert.are.equal("IN", rr.class)
      end
      assert.are.same({ qr = true, aa = true }, ask("+norecurse www.example.test A").flags)
    end)

    it("answers AAAA, NS and the apex A with the zone's TTL", function()
      local r = ask("www.example.test AAAA")
      assert.are.same({ "2001:db8::1" }, datas(r.answer, "AAAA"))
      r = ask("example.test NS")
      assert.are.equal("NOERROR", r.status)
      assert.is_true(r.flags.aa)
      assert.are.same({ "ns1.example.test.", "ns2.other.test." }, datas(r.answer, "NS"))
      assert.are.equal(300, r.answer[1].ttl)
      assert.are.same({ "192.0.2.80" }, datas(ask("example.test A").answer, "A"))
    end)

    it("drops duplicates from an RRset, and only those", function()
      assert.are.same({ "192.0.2.65", "192.0.2.97" }, datas(ask("dup.example.test A").answer))
    end)

    it("answers TXT, splitting strings longer than 255 bytes", function()
      local r = ask("www.example.test TXT")
      assert.are.same({ '"hello world"', '"v=spf1 -all"' }, datas(r.answer, "TXT"))
      r = ask("long.example.test TXT")
      assert.are.equal(1, #r.answer)
      local parts = txt_strings(r.answer[1].data)
      assert.are.same({ LONG_TXT:sub(1, 255), LONG_TXT:sub(256) }, parts)
    end)

    it("says NXDOMAIN with the SOA in authority for unknown names in the zone", function()
      for _, name in ipairs { "nope.example.test", "x.www.example.test" } do
        local r = ask(name .. " A")
        assert.are.equal("NXDOMAIN", r.status, name)
        assert.is_true(r.flags.aa)
        assert.are.equal(0, #r.answer)
        assert.are.equal(1, #r.authority, r.out)
        local soa = r.authority[1]
        assert.are.equal("example.test.", soa.name)
        assert.are.equal("SOA", soa.type)
        assert.are.equal(60, soa.ttl) -- min(SOA TTL 300, minimum 60), RFC 2308
        assert.are.equal("ns1.example.test. hostmaster.example.test. 2024030501 7200 3600 "
                         .. "1209600 60", soa.data)
      end
    end)

    it("says NODATA (NOERROR, SOA in authority) for a missing type or an empty non-terminal",
       function()
      for _, q in ipairs { "www.example.test MX", "ns1.example.test TXT", "b.example.test A" } do
        local r = ask(q)
        assert.are.equal("NOERROR", r.status, q)
        assert.is_true(r.flags.aa)
        assert.are.equal(0, #r.answer, q)
        assert.are.equal(1, #r.authority, q)
        assert.are.equal("SOA", r.authority[1].type)
      end
      assert.are.same({ "192.0.2.9" }, datas(ask("a.b.example.test A").answer))
    end)

    it("refuses names outside the zone, label by label, without AA", function()
      for _, name in ipairs { "www.example.org", "test", "notexample.test", "." } do
        local r = ask(name .. " A")
        assert.are.equal("REFUSED", r.status, name)
        assert.is_nil(r.flags.aa)
        assert.are.equal(0, #r.answer)
      end
      assert.are.equal("REFUSED", ask("-c CH version.bind TXT").status)
    end)

    it("matches names case-insensitively and echoes the question as asked", function()
      local r = ask("WwW.ExAmPlE.tEsT A")
      assert.are.equal("NOERROR", r.status)
      assert.are.equal("WwW.ExAmPlE.tEsT.", r.question)
      assert.are.same({ "192.0.2.1", "192.0.2.2" }, datas(r.answer, "A"))
      for _, rr in ipairs(r.answer) do assert.are.equal("WwW.ExAmPlE.tEsT.", rr.name) end
      r = ask("NOPE.Example.Test A")
      assert.are.equal("NXDOMAIN", r.status)
      assert.are.equal("Example.Test.", r.authority[1].name)
    end)

    it("echoes EDNS with our UDP size and the DO bit", function()
      local r = ask("+edns=0 +bufsize=4096 www.example.test A")
      assert.are.equal(0, r.edns_version)
      assert.are.equal(1232, r.udp)
      assert.is_nil(r.edns_flags:match("do"))
      r = ask("+dnssec www.example.test A")
      assert.are.equal(1232, r.udp)
      assert.is_truthy(r.edns_flags:match("do"))
      r = ask("+noedns www.example.test A")
      assert.is_nil(r.udp)
      assert.are.equal(2, #r.answer)
    end)

    it("answers EDNS version 1 with BADVERS", function()
      local r = ask("+edns=1 +noednsnegotiation www.example.test A")
      assert.are.equal("BADVERS", r.status)
      assert.are.equal(0, r.edns_version)
      assert.are.equal(0, #r.answer)
    end)

    it("sets TC with an empty answer when the answer does not fit", function()
      -- the three 250-byte TXT records take about 800 bytes
      local r = ask("+noedns +ignore big.example.test TXT")
      assert.are.equal("NOERROR", r.status)
      assert.is_true(r.flags.tc, r.out)
      assert.is_true(r.flags.aa)
      assert.are.equal(0, #r.answer)
      assert.are.equal("big.example.test.", r.question)
      r = ask("+bufsize=600 +ignore big.example.test TXT")
      assert.is_true(r.flags.tc, r.out)
      assert.are.equal(1232, r.udp)               -- the OPT is kept
      r = ask("+bufsize=4096 +ignore big.example.test TXT")
      assert.is_nil(r.flags.tc)
      assert.are.equal(3, #r.answer)
      r = ask("+bufsize=4096 +ignore huge.example.test TXT") -- beyond our 1232
      assert.is_true(r.flags.tc, r.out)
      assert.are.equal(0, #r.answer)
    end)

    it("answers over IPv6", function()
      local r = parse_dig(dig("::1", port6, "www.example.test AAAA"))
      assert.are.equal("NOERROR", r.status, d:explain("dig over IPv6:\n%s", r.out))
      assert.are.same({ "2001:db8::1" }, datas(r.answer, "AAAA"))
      assert.is_truthy(r.out:find("SERVER: ::1#" .. port6, 1, true))
    end)
  end)

  describe("malformed and odd queries", function()
    local d, port, c

    setup(function()
      d, port = start(OPTIONS)
      c = h.udp("inet", "127.0.0.1")
    end)
    teardown(function()
      c:close()
      h.cleanup_and_check()
    end)

    -- Sends a datagram, returns the reply's header (or fails).
    local function ask(data, what)
      local reply, err = c:ask("127.0.0.1", port, data, REPLY_TIMEOUT)
      assert.is_string(reply, d:explain("no reply to %s: %s", what, tostring(err)))
      assert.is_true(#reply >= 12, what)
      return header(reply), reply
    end

    local www = question("www.example.test", 1)
    local cases = {
      { "a question cut short", { question = www:sub(1, 10) }, 1 },
      { "a question without QTYPE/QCLASS", { question = www:sub(1, -5) }, 1 },
      { "QDCOUNT = 2", { qd = 2, question = www .. www }, 1 },
      { "QDCOUNT = 0", { qd = 0 }, 1 },
      { "a compression pointer in the question",
        { question = "\3www\192\12" .. string.pack(">I2I2", 1, 1) }, 1 },
      { "a label of 64 bytes", { question = "\64" .. ("a"):rep(64) .. "\0\0\1\0\1" }, 1 },
      { "a name of 257 bytes", { question = ("\1a"):rep(128) .. "\0\0\1\0\1" }, 1 },
      { "ANCOUNT = 1", { an = 1, question = www }, 1 },
      { "NSCOUNT = 1", { ns = 1, question = www }, 1 },
      { "ARCOUNT = 2", { ar = 2, question = www }, 1 },
      { "bytes after the question", { question = www, extra = "junk" }, 1 },
      { "an OPT cut short", { ar = 1, question = www, extra = "\0\0\41\16\0" }, 1 },
      { "an OPT not at the root", { ar = 1, question = www,
        extra = "\1a\0" .. string.pack(">I2I2I4I2", 41, 1232, 0, 0) }, 1 },
      { "an OPT with a cut option", { ar = 1, question = www,
        extra = "\0" .. string.pack(">I2I2I4I2", 41, 1232, 0, 4) .. "\0\10\0\8" }, 1 },
      { "an additional record that is not an OPT", { ar = 1, question = www,
        extra = "\0" .. string.pack(">I2I2I4s2", 1, 1, 0, "\1\2\3\4") }, 1 },
      { "QTYPE OPT", { question = question("www.example.test", 41) }, 1 },
      { "opcode NOTIFY", { flags = 4 << 11, question = www }, 4 },
      { "QTYPE AXFR over UDP", { question = question("example.test", 252) }, 4 },
      { "QCLASS CH", { question = question("www.example.test", 1, 3) }, 5 },
      { "QCLASS ANY", { question = question("www.example.test", 1, 255) }, 5 },
    }
    for _, case in ipairs(cases) do
      local what, t, rcode = case[1], case[2], case[3]
      it(string.format("answers %s with rcode %d", what, rcode), function()
        t.id = 0xBEEF
        local hd = ask(raw_query(t), what)
        assert.are.equal(0xBEEF, hd.id)
        assert.is_true(hd.qr)
        assert.are.equal(rcode, hd.rcode)
        assert.is_false(hd.aa)
        assert.are.equal(0, hd.an)
        assert.are.equal(t.flags and 0 or 1, hd.rd and 1 or 0, "RD copied")
        assert.are.equal(t.flags and 4 or 0, hd.opcode)
      end)
    end

    it("never answers a response, nor a datagram shorter than a header", function()
      local hd, reply = ask(raw_query { id = 1, question = www }, "a good query")
      assert.are.equal(0, hd.rcode)
      assert.are.equal(2, hd.an)
      c:send("127.0.0.1", port, raw_query { id = 2, flags = 0x8400, question = www })
      c:send("127.0.0.1", port, raw_query { id = 3, flags = 0x8400, question = www }:sub(1, 11))
      c:send("127.0.0.1", port, reply) -- our own reply, sent back
      -- One socket, one worker: the daemon handles these in the order sent, and its replies
      -- leave in that order, so the first reply now is the answer to id 4 unless one of the
      -- three above was answered.
      local after = ask(raw_query { id = 4, question = www }, "a query after them")
      assert.are.equal(4, after.id, "answered one of the three (ids 1, 2, 3)")
    end)

    it("points answers to the question name and keeps case in the echoed question", function()
      local q = question("WWW.example.test", 1)
      local _, reply = ask(raw_query { question = q }, "a mixed-case query")
      assert.are.equal(q, reply:sub(13, 12 + #q))
      assert.are.equal("\192\12", reply:sub(13 + #q, 14 + #q))
      local name = wire.read_name(reply, 13 + #q, true)
      assert.are.equal("WWW.example.test.", name)
    end)
  end)

  describe("counters", function()
    after_each(h.cleanup_and_check)

    it("counts queries, NXDOMAIN, REFUSED, FORMERR, TC and drops in /metrics", function()
      local mport = h.free_tcp_port()
      local d, port = start(OPTIONS, mport)
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)
      local sends = {
        raw_query { question = question("www.example.test") },
        raw_query { question = question("nope.example.test") },
        raw_query { question = question("nope2.example.test") },
        raw_query { question = question("example.org") },
        raw_query { qd = 2 },
        raw_query { question = question("big.example.test", 16) },
      }
      for i, q in ipairs(sends) do
        assert.is_string(c:ask("127.0.0.1", port, q, REPLY_TIMEOUT),
                         d:explain("no reply to query %d", i))
      end
      c:send("127.0.0.1", port, "short")
      local want = { dns_queries = 6, dns_nxdomain = 2, dns_refused = 1, dns_formerr = 1,
                     dns_truncated = 1, dns_dropped = 1, dns_notimp = 0 }
      for name, n in pairs(want) do
        local got, text = h.wait_metric(mport, "luadgramd_user_" .. name, nil, n, 10)
        assert.are.equal(n, got, d:explain("%s in\n%s", name, tostring(text)))
      end
    end)
  end)

  describe("init", function()
    after_each(h.cleanup_and_check)

    local function start_fails(options)
      local dir = h.tmpdir()
      local conf = dir .. "/luadgramd.conf"
      h.write(conf, h.config_text { listeners = { {
        name = "dns", handler = "dns", bind = "127.0.0.1:" .. h.free_port(), options = options,
      } } })
      local code, _, err = h.run("-c " .. h.shq(conf), 10)
      return code, err
    end

    local function with(records, extra)
      local o = { zone = "example.test", records = records }
      for k, v in pairs(extra or {}) do o[k] = v end
      return o
    end

    local bad = {
      { with { www = { A = "300.1.1.1" } },
        [[options.records["www"].A[1]: '300.1.1.1' is not an IPv4 address]] },
      { with { www = { AAAA = { "2001:db8::1", "2001:db8:::2" } } },
        [[options.records["www"].AAAA[2]: '2001:db8:::2' is not an IPv6 address]] },
      { with { ["bad name"] = { A = "192.0.2.1" } },
        [[options.records["bad name"]: label 'bad name' may hold only letters, digits, ]]
        .. [['-' and '_']] },
      { with { ["www.example.org."] = { A = "192.0.2.1" } },
        [[options.records["www.example.org."] is not in the zone example.test.]] },
      { with { www = { MX = "mail" } },
        [[options.records["www"]: unsupported type 'MX' (A, AAAA, TXT, NS)]] },
      { with { sub = { NS = "ns1" } },
        [[options.records["sub"]: NS records only at the apex '@' (no delegations)]] },
      { with({}, { edns_size = 100 }),
        [[options.edns_size must be an integer from 512 to 65535 (got 100)]] },
      { { records = {} }, [[options.zone must be a name like 'example.test.']] },
    }
    for _, case in ipairs(bad) do
      it("fails the listener's start on " .. case[2], function()
        local code, err = start_fails(case[1])
        assert.are.equal(2, code, err)
        assert.is_truthy(err:find("init: dns: " .. case[2], 1, true), err)
      end)
    end

    it("accepts the example configuration, conf/examples/dns.conf", function()
      local code, out, err = h.run("-t -c " .. h.shq(h.src .. "/conf/examples/dns.conf"))
      assert.are.equal(0, code, out .. err)
    end)

    it("serves the zone of the example configuration", function()
      -- Run the example's options on ephemeral ports: read its listen table with a stub.
      local captured
      local env = setmetatable({ listen = function(name)
        return function(t) captured = { name = name, t = t } end
      end }, { __index = _G })
      assert(loadfile(h.src .. "/conf/examples/dns.conf", "t", env))()
      assert.are.equal("dns", captured.name)
      local d, port = start(captured.t.options)
      local r = parse_dig(dig("127.0.0.1", port, "www.example.test A"))
      assert.are.equal("NOERROR", r.status, d:explain("%s", r.out))
      assert.are.same({ "192.0.2.1", "192.0.2.2" }, datas(r.answer, "A"))
      r = parse_dig(dig("127.0.0.1", port, "key._domainkey.example.test TXT"))
      assert.are.equal(1, #r.answer, r.out)
      assert.is_true(#txt_strings(r.answer[1].data) > 1)
    end)
  end)
end)
