-- spec/daemon_spec.lua: the daemon's core as a user sees it over real sockets on ephemeral
-- ports: replies, the packet info and flags handed to handlers, socket errors, contained
-- handler errors, the luadgram module and /metrics.
local h = require "helpers"

local function lo_ifindex()
  return tonumber(h.read("/sys/class/net/lo/ifindex"))
end

-- A UDP sender that sets IP_TOS and IP_TTL (IPv6: IPV6_TCLASS, 67 in <linux/in6.h>, and
-- IPV6_UNICAST_HOPS), which lua-socket cannot: perl with the Socket module of perl-base,
-- which every Debian has. Arguments: family ("inet" or "inet6"), ip, port, tos, ttl, data.
-- Prints "sent" once the datagram is sent, then the reply (waiting at most 10 s).
local MARKED_SENDER = [=[
use strict; use warnings; use Socket qw(:all);
my ($family, $ip, $port, $tos, $ttl, $data) = @ARGV;
my ($s, $to);
if ($family eq "inet6") {
  socket($s, PF_INET6, SOCK_DGRAM, 0) or die "socket: $!\n";
  setsockopt($s, IPPROTO_IPV6, 67, pack("i", $tos)) or die "IPV6_TCLASS: $!\n";
  setsockopt($s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, pack("i", $ttl))
    or die "IPV6_UNICAST_HOPS: $!\n";
  $to = pack_sockaddr_in6($port, inet_pton(AF_INET6, $ip));
} else {
  socket($s, PF_INET, SOCK_DGRAM, 0) or die "socket: $!\n";
  setsockopt($s, IPPROTO_IP, IP_TOS, pack("i", $tos)) or die "IP_TOS: $!\n";
  setsockopt($s, IPPROTO_IP, IP_TTL, pack("i", $ttl)) or die "IP_TTL: $!\n";
  $to = pack_sockaddr_in($port, inet_aton($ip));
}
$| = 1;
defined(send($s, $data, 0, $to)) or die "send: $!\n";
print "sent\n";
my $rin = ""; vec($rin, fileno($s), 1) = 1;
select(my $rout = $rin, undef, undef, 10) > 0 or die "no reply within 10 s\n";
defined(recv($s, my $reply, 65535, 0)) or die "recv: $!\n";
print $reply;
]=]

-- Sends data to ip:port with TOS (traffic class) `tos` and TTL (hop limit) `ttl` while the
-- daemon is stopped (SIGSTOP): the handler runs well after the kernel took the datagram in,
-- so the receive time cannot be confused with the time of handling. Returns the inspect
-- fixture's description and the times just before the sender started and just after it
-- said it had sent.
local function ask_marked(d, family, ip, port, tos, ttl, data)
  local cmd = string.format("perl -e %s %s %s %d %d %d %s 2>&1", h.shq(MARKED_SENDER), family,
                            ip, port, tos, ttl, h.shq(data))
  assert(d:signal("STOP"))
  local before_send = h.now()
  local sender = io.popen(cmd, "r")
  local said = sender:read("l")
  local after_send = h.now()
  -- not a wait for the daemon: a gap between receiving and handling that a time taken
  -- when handling could not hide in
  h.sleep(0.2)
  assert(d:signal("CONT"))
  local reply = sender:read("a")
  sender:close()
  assert.are.equal("sent", said, d:explain("perl sender: %s\n%s", tostring(said), reply))
  return h.parse(reply), before_send, after_send
end

describe("luadgramd", function()
  after_each(h.cleanup_and_check)

  describe("echo handler (scripts/echo.lua)", function()
    it("answers over IPv4 and IPv6, from the address it was asked on", function()
      local p4, p6 = h.free_port("127.0.0.1"), h.free_port("::1")
      local d = h.start { listeners = { {
        name = "echo", handler = "echo",
        bind = { "127.0.0.1:" .. p4, "[::1]:" .. p6 },
      } } }
      local c4, c6 = h.udp("inet", "127.0.0.1"), h.udp("inet6", "::1")
      finally(function() c4:close() c6:close() end)

      local data, ip, port = c4:ask("127.0.0.1", p4, "hello over IPv4")
      assert.are.equal("hello over IPv4", data, d:explain("IPv4 echo: %s", tostring(ip)))
      assert.are.equal("127.0.0.1", ip)
      assert.are.equal(p4, tonumber(port))

      local binary = "\0\1\2\255 binary\r\n\0"
      data, ip, port = c6:ask("::1", p6, binary)
      assert.are.equal(binary, data, d:explain("IPv6 echo: %s", tostring(ip)))
      assert.are.equal("::1", ip)
      assert.are.equal(p6, tonumber(port))
    end)
  end)

  describe("packet info", function()
    it("reports the local address of a 0.0.0.0 listener and replies from it", function()
      local port = h.free_port("0.0.0.0")
      local d = h.start { listeners = { {
        name = "any", handler = "inspect", bind = "0.0.0.0:" .. port,
      } } }
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)
      for _, ip in ipairs { "127.0.0.1", "127.0.0.2", "127.0.0.3" } do
        local data, from, from_port = c:ask(ip, port, "where")
        assert.is_string(data, d:explain("no reply to %s:%d: %s", ip, port, tostring(from)))
        assert.are.equal(ip, from, "the reply must come from the address asked")
        assert.are.equal(port, tonumber(from_port))
        local m = h.parse(data)
        assert.are.equal(ip .. ":" .. port, m.dst.str)
        assert.are.equal(ip, m.dst.ip)
        assert.are.equal(port, m.dst.port)
        assert.are.equal("inet", m.dst.family)
        assert.are.equal("lo", m.ifname)
        assert.are.equal(lo_ifindex(), m.ifindex)
        assert.are.equal("127.0.0.1:" .. c:port(), m.peer.str)
        assert.are.equal("inet", m.peer.family)
        assert.are.equal("127.0.0.1", m.peer.ip)
        assert.are.equal(c:port(), m.peer.port)
        assert.are.equal("any", m.listener)
        assert.are.equal("where", m.data)
        assert.are.equal(5, m.size)
        assert.is_false(m.trunc)
        assert.is_false(m.mcast)
        assert.is_false(m.bcast)
      end
    end)

    it("reports ::1 on an IPv6 wildcard listener", function()
      local port = h.free_port("::")
      local d = h.start { listeners = { {
        name = "any6", handler = "inspect", bind = "[::]:" .. port,
      } } }
      local c = h.udp("inet6", "::1")
      finally(function() c:close() end)
      local data, from, from_port = c:ask("::1", port, "where6")
      assert.is_string(data, d:explain("no reply over IPv6: %s", tostring(from)))
      assert.are.equal("::1", from)
      assert.are.equal(port, tonumber(from_port))
      local m = h.parse(data)
      assert.are.equal("[::1]:" .. port, m.dst.str)
      assert.are.equal("::1", m.dst.ip)
      assert.are.equal("inet6", m.dst.family)
      assert.are.equal("lo", m.ifname)
      assert.are.equal("[::1]:" .. c:port(), m.peer.str)
      assert.are.equal("inet6", m.peer.family)
      assert.are.equal(c:port(), m.peer.port)
    end)

    it("gives IPv4 clients of a dual-stack [::] listener plain IPv4 addresses", function()
      local port = h.free_port("::")
      local d = h.start { listeners = { {
        name = "dual", handler = "inspect", bind = "[::]:" .. port,
      } } }
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)
      for _, ip in ipairs { "127.0.0.1", "127.0.0.2" } do
        local data, from, from_port = c:ask(ip, port, "v4 on dual")
        assert.is_string(data, d:explain("no reply to %s on [::]:%d: %s", ip, port,
                                         tostring(from)))
        assert.are.equal(ip, from, "the reply must come from the address asked")
        assert.are.equal(port, tonumber(from_port))
        local m = h.parse(data)
        assert.are.equal(ip .. ":" .. port, m.dst.str)
        assert.are.equal("inet", m.dst.family)
        assert.are.equal("127.0.0.1:" .. c:port(), m.peer.str)
        assert.are.equal("inet", m.peer.family)
        assert.are.equal("127.0.0.1", m.peer.ip)
        assert.is_nil(m.peer.str:find("ffff", 1, true))
        assert.is_nil(m.dst.str:find("ffff", 1, true))
      end
    end)
  end)

  describe("receive flags and control data", function()
    it("marks a datagram larger than recv.size as truncated, with its true size", function()
      local port, mport = h.free_port("127.0.0.1"), h.free_tcp_port()
      local d = h.start { metrics = "127.0.0.1:" .. mport, listeners = { {
        name = "small", handler = "inspect", bind = "127.0.0.1:" .. port,
        recv = { size = 64 },
      } } }
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)
      local big = string.rep("0123456789", 100)
      local data = c:ask("127.0.0.1", port, big)
      assert.is_string(data, d:explain("no reply to a 1000-byte datagram"))
      local m = h.parse(data)
      assert.is_true(m.trunc)
      assert.are.equal(1000, m.size)
      assert.are.equal(big:sub(1, 64), m.data)

      data = c:ask("127.0.0.1", port, big:sub(1, 64))
      m = h.parse(assert(data, d:explain("no reply to a 64-byte datagram")))
      assert.is_false(m.trunc)
      assert.are.equal(64, m.size)
      assert.are.equal(big:sub(1, 64), m.data)

      local n, text = h.wait_metric(mport, "luadgramd_truncated_total", "small", 1)
      assert.are.equal(1, n, d:explain("/metrics:\n%s", tostring(text)))
    end)

    it("reports ttl, tos and the kernel receive time when asked to", function()
      local p4, p6 = h.free_port("127.0.0.1"), h.free_port("::1")
      local d = h.start { listeners = { {
        name = "ctl", handler = "inspect", bind = { "127.0.0.1:" .. p4, "[::1]:" .. p6 },
        recv = { ttl = true, tos = true, timestamp = true },
      } } }
      -- none of them a default: 0x28 is DSCP AF11, 0xb8 EF
      local cases = {
        { family = "inet", ip = "127.0.0.1", port = p4, tos = 0x28, ttl = 33 },
        { family = "inet6", ip = "::1", port = p6, tos = 0xb8, ttl = 7 },
      }
      for _, case in ipairs(cases) do
        local data = "marked " .. case.family
        local m, before_send, after_send = ask_marked(d, case.family, case.ip, case.port,
                                                      case.tos, case.ttl, data)
        assert.are.equal(data, m.data)
        assert.are.equal(case.tos, m.tos, d:explain("tos over %s", case.family))
        assert.are.equal(case.ttl, m.ttl, d:explain("ttl over %s", case.family))
        assert.are.equal("float", math.type(m.time), "msg.time has sub-second precision")
        -- the kernel stamped it while it was sent (1 ms for the clocks' roundings)
        assert.is_true(m.time >= before_send - 0.001 and m.time <= after_send + 0.001,
                       d:explain("msg.time %.6f over %s is not when it was sent: between "
                                 .. "%.6f and %.6f (handled at %.6f)", m.time, case.family,
                                 before_send, after_send, m.handled_at))
      end
    end)
  end)

  describe("socket errors", function()
    it("hands ECONNREFUSED for a send to a closed port to the handler's error()", function()
      local p4, p6 = h.free_port("127.0.0.1"), h.free_port("::1")
      local d = h.start { listeners = { {
        name = "snd", handler = "sender", bind = { "127.0.0.1:" .. p4, "[::1]:" .. p6 },
      } } }
      -- taken while the daemon holds p4 and p6: a closed port, never the listener's own
      local closed4, closed6 = h.free_port("127.0.0.1"), h.free_port("::1")
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)

      local r = h.parse(assert(c:ask("127.0.0.1", p4, "send 127.0.0.1:" .. closed4 .. " x"),
                               d:explain("no reply to send")))
      assert.is_true(r.ok, d:explain("luadgram.send: %s", tostring(r.err)))
      r = h.parse(assert(c:ask("127.0.0.1", p4, "send [::1]:" .. closed6 .. " y")))
      assert.is_true(r.ok, d:explain("luadgram.send over IPv6: %s", tostring(r.err)))

      local errors = h.wait_for(function()
        local e = h.parse(assert(c:ask("127.0.0.1", p4, "errors")))
        return #e >= 2 and e
      end, 3, 0.1)
      assert.is_table(errors, d:explain("error() was not called twice"))
      table.sort(errors, function(a, b) return a.peer < b.peer end)
      local e4, e6 = errors[1], errors[2]
      assert.are.equal("127.0.0.1:" .. closed4, e4.peer)
      assert.are.equal(closed4, e4.peer_port)
      assert.are.equal("ECONNREFUSED", e4.code)
      assert.are.equal(111, e4.errno)
      assert.are.equal("snd", e4.listener)
      assert.are.equal("[::1]:" .. closed6, e6.peer)
      assert.are.equal("ECONNREFUSED", e6.code)
    end)

    it("returns nil, err from luadgram.send for an address it cannot parse", function()
      local port = h.free_port("127.0.0.1")
      local d = h.start { listeners = { {
        name = "snd", handler = "sender", bind = "127.0.0.1:" .. port,
      } } }
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)
      local r = h.parse(assert(c:ask("127.0.0.1", port, "send 127.0.0.1:99999 x"),
                               d:explain("no reply")))
      assert.is_nil(r.ok)
      assert.is_string(r.err)
    end)
  end)

  describe("handler errors", function()
    it("are contained: the rest is handled in order, logged with traceback, counted", function()
      local port, mport = h.free_port("127.0.0.1"), h.free_tcp_port()
      local d = h.start { metrics = "127.0.0.1:" .. mport, listeners = { {
        name = "flaky", handler = "flaky", bind = "127.0.0.1:" .. port,
      } } }
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)
      for i = 1, 20 do c:send("127.0.0.1", port, tostring(i)) end
      local got, expected = {}, {}
      for i = 1, 19, 2 do expected[#expected + 1] = tostring(i) end
      for _ = 1, 10 do
        local data = c:recv(2)
        if not data then break end
        got[#got + 1] = data
      end
      assert.are.same(expected, got, d:explain("replies"))

      local n, text = h.wait_metric(mport, "luadgramd_handler_errors_total", "flaky", 10)
      assert.are.equal(10, n, d:explain("/metrics:\n%s", tostring(text)))
      assert.are.equal(20, h.metric(text, "luadgramd_received_total", "flaky"))
      assert.is_truthy(d:wait_log("flaky: refusing datagram 2", 2, true),
                       d:explain("the error message is not logged"))
      assert.is_truthy(d:log():find("stack traceback", 1, true),
                       d:explain("no traceback in the log"))
    end)

    it("raise \"message expired\" when a kept message is used later", function()
      local port = h.free_port("127.0.0.1")
      local d = h.start { listeners = { {
        name = "expire", handler = "expire", bind = "127.0.0.1:" .. port,
      } } }
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)
      -- the first time through __index; the second with msg.data set as a field (the
      -- handler has read it before): expired either way
      for round = 1, 2 do
        assert.are.equal("kept", c:ask("127.0.0.1", port, "keep"), d:explain("no reply"))
        local data = c:recv(2)
        local r = h.parse(assert(data, d:explain("no report from the timer")))
        assert.is_false(r.data_ok, "round " .. round)
        assert.is_truthy(r.data_err:find("message expired", 1, true), r.data_err)
        assert.is_false(r.reply_ok)
        assert.is_truthy(r.reply_err:find("message expired", 1, true), r.reply_err)
      end
    end)
  end)

  describe("luadgram module", function()
    local port, mport, d, c
    before_each(function()
      port, mport = h.free_port("127.0.0.1"), h.free_tcp_port()
      d = h.start { metrics = "127.0.0.1:" .. mport, listeners = { {
        name = "api", handler = "api", bind = "127.0.0.1:" .. port,
      } } }
      c = h.udp("inet", "127.0.0.1")
    end)
    after_each(function() c:close() end)

    it("now() is the time of day; after() fires once; every() repeats until cancelled",
       function()
      local r = h.parse(assert(c:ask("127.0.0.1", port, "timers"), d:explain("no reply")))
      assert.is_number(r.now)
      assert.is_true(math.abs(r.now - h.now()) < 2, "luadgram.now() = " .. tostring(r.now))
      local report = h.parse(assert(c:recv(5), d:explain("no report from after()")))
      assert.is_false(report.cancelled_fired)
      assert.are.equal(3, report.ticks)
      -- never early; late only within what a loaded machine may delay a loop
      assert.is_true(report.every_elapsed >= 0.14 and report.every_elapsed < 2.5,
                     "every: " .. tostring(report.every_elapsed))
      assert.is_true(report.after_elapsed >= 0.29 and report.after_elapsed < 3,
                     "after: " .. tostring(report.after_elapsed))
      assert.is_nil(c:recv(0.3), "after() fired twice")
    end)

    it("counter() counts and shows in /metrics", function()
      assert.are.equal("1", c:ask("127.0.0.1", port, "count"), d:explain("count"))
      assert.are.equal("3", c:ask("127.0.0.1", port, "count2"), d:explain("count2"))
      local text = h.wait_for(function()
        local t = h.metrics(mport)
        for line in (t or ""):gmatch("[^\n]+") do
          if not line:match("^#") and line:find("spec_api_datagrams", 1, true)
             and tonumber(line:match("(%S+)$")) == 3 then
            return t
          end
        end
      end, 3, 0.1)
      assert.is_string(text, d:explain("/metrics:\n%s", tostring(h.metrics(mport))))
    end)

    it("log.warn() writes a warn line to the daemon's log", function()
      local marker = "spec-marker-" .. math.random(1e6, 9e6)
      assert.are.equal("logged", c:ask("127.0.0.1", port, "log " .. marker))
      local line = d:wait_log("[^\n]*warn:[^\n]*" .. marker:gsub("%p", "%%%0"), 2)
      assert.is_truthy(line, d:explain("no warn line with %s", marker))
    end)
  end)

  describe("/metrics", function()
    it("counts what each listener received, in Prometheus text", function()
      local port, mport = h.free_port("127.0.0.1"), h.free_tcp_port()
      local d = h.start { metrics = "127.0.0.1:" .. mport, listeners = { {
        name = "echo", handler = "echo", bind = "127.0.0.1:" .. port,
      } } }
      local c = h.udp("inet", "127.0.0.1")
      finally(function() c:close() end)
      local replies = 0
      for i = 1, 25 do
        if c:ask("127.0.0.1", port, "m" .. i) == "m" .. i then replies = replies + 1 end
      end
      assert.are.equal(25, replies, d:explain("echo replies"))
      local n, text = h.wait_metric(mport, "luadgramd_received_total", "echo", 25)
      assert.are.equal(25, n, d:explain("/metrics:\n%s", tostring(text)))
      assert.is_truthy(text:find("# TYPE luadgramd_received_total counter", 1, true))
      assert.are.equal(0, h.metric(text, "luadgramd_handler_errors_total", "echo"))
      assert.are.equal(0, h.metric(text, "luadgramd_truncated_total", "echo"))
      assert.are.equal(0, h.metric(text, "luadgramd_kernel_drops_total", "echo"))
    end)
  end)
end)
