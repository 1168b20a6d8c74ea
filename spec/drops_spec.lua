-- spec/drops_spec.lua: nothing is lost silently. When the kernel drops datagrams because a
-- listener's socket buffer is full (nothing read it: here the daemon is stopped with
-- SIGSTOP, as a busy handler would leave it, whatever the machine's speed), the drops are
-- counted per listener (SO_RXQ_OVFL) in /metrics and logged; received + dropped = sent. A
-- reload that keeps the socket keeps counting where it was: drops are not counted twice.
local h = require "helpers"

local LISTENER = "slow"

-- A daemon whose listener "slow" (spec/fixtures/slow.lua) has a 4 KiB receive buffer, and
-- a client.
local function start_slow()
  local port, mport = h.free_port("127.0.0.1"), h.free_tcp_port()
  local d = h.start {
    metrics = "127.0.0.1:" .. mport,
    listeners = { {
      name = LISTENER, bind = "127.0.0.1:" .. port, handler = "slow",
      recv = { batch = 8, size = 2048, rcvbuf = 4096 },
    } },
  }
  local c = h.udp("inet", "127.0.0.1")
  return d, c, port, mport
end

-- The listener's received and kernel-dropped totals in /metrics, and the text (nil, nil,
-- err when /metrics does not answer).
local function received_and_dropped(mport)
  local text, err = h.metrics(mport)
  if not text then return nil, nil, err end
  return h.metric(text, "luadgramd_received_total", LISTENER),
         h.metric(text, "luadgramd_kernel_drops_total", LISTENER), text
end

-- What the kernel itself counts as dropped on the socket bound to 127.0.0.1:port (the last
-- field of its /proc/net/udp line), or nil when there is no such socket.
local function socket_drops(port)
  for line in (h.read("/proc/net/udp") or ""):gmatch("[^\n]+") do
    local p, drops = line:match("^%s*%d+: 0100007F:(%x+) .* (%d+)%s*$")
    if p and tonumber(p, 16) == port then return tonumber(drops) end
  end
  return nil
end

-- The inodes of the UDP sockets bound to 127.0.0.1:port.
local function socket_inodes(port)
  local out = {}
  for _, s in ipairs(h.udp_sockets(port, "inet")) do
    if s.ip_hex == "0100007F" then out[#out + 1] = s.inode end
  end
  return out
end

-- Stops the daemon, sends 300 datagrams of 512 bytes, far more than the buffer holds, and
-- lets it go on once the kernel has dropped some (on a loaded machine the kernel may
-- deliver loopback datagrams later, from ksoftirqd). Returns how many datagrams were sent.
local function overflow(d, c, port)
  assert(d:signal("STOP"))
  local payload = string.rep("x", 512)
  local ok, err = pcall(function()
    for _ = 1, 300 do c:send("127.0.0.1", port, payload) end
  end)
  local dropped = ok and h.wait_for(function() return (socket_drops(port) or 0) > 0 end, 5)
  assert(d:signal("CONT"))
  assert(ok, err)
  assert.is_truthy(dropped, d:explain("the kernel dropped nothing while the daemon was "
                                      .. "stopped: the test did not overflow the buffer"))
  return 300
end

-- Asks the handler how many datagrams it has seen: sends "count TAG-1", "count TAG-2", ...
-- every 0.5 s (a question the kernel dropped is asked again) until one is answered;
-- replies that do not carry TAG (late answers to an earlier round) are skipped. Returns
-- the handler's count, the number i of the question answered and how many questions were
-- sent; nil when none was answered within `timeout` seconds.
local function ask_count(c, port, tag, timeout)
  local asked, deadline = 0, h.now() + timeout
  repeat
    asked = asked + 1
    c:send("127.0.0.1", port, "count " .. tag .. "-" .. asked)
    local round_end = h.now() + 0.5
    repeat
      local reply = c:recv(math.max(0.01, round_end - h.now()))
      local i, seen = (reply or ""):match("^" .. tag .. "%-(%d+) (%d+)$")
      if i then return tonumber(seen), tonumber(i), asked end
    until not reply or h.now() > round_end
  until h.now() > deadline
  return nil, nil, asked
end

-- Waits until /metrics accounts for the `sent` datagrams, received or dropped (the kernel
-- reports drops with the next datagram it delivers). Returns received, dropped.
local function wait_accounted(mport, sent)
  local got, drops
  h.wait_for(function()
    got, drops = received_and_dropped(mport)
    return got and drops and got + drops >= sent
  end, 5, 0.05)
  return got, drops
end

-- Fails unless received + dropped is exactly `sent`.
local function assert_accounted(d, sent, got, drops)
  assert.are.equal(sent, (got or 0) + (drops or 0),
                   d:explain("received %s + kernel drops %s ~= sent %d", tostring(got),
                             tostring(drops), sent))
end

-- Overflows the buffer, asks the handler's count (questions tagged `tag`) until answered,
-- and checks that /metrics accounts for every datagram, with the kernel's own drop count.
-- Returns how many were sent, received and dropped.
local function overflow_and_account(d, c, port, mport, tag)
  local sent = overflow(d, c, port)
  local seen, _, asked = ask_count(c, port, tag, 10)
  assert.is_not_nil(seen, d:explain("no answer to count after the overflow"))
  sent = sent + asked
  local got, drops = wait_accounted(mport, sent)
  assert_accounted(d, sent, got, drops)
  assert.are.equal(socket_drops(port), drops, d:explain("kernel drops in /metrics and in "
                                                        .. "/proc/net/udp"))
  return sent, got, drops
end

-- The sum of N over the log's "listener 'slow': kernel dropped N datagrams" lines, and the
-- number of those lines.
local function logged_drops(d)
  local sum, lines = 0, 0
  for n in d:log():gmatch("listener '" .. LISTENER .. "': kernel dropped (%d+) datagrams") do
    sum, lines = sum + tonumber(n), lines + 1
  end
  return sum, lines
end

describe("luadgramd kernel drops", function()
  after_each(h.cleanup_and_check)

  it("are counted in /metrics and logged when the socket buffer overflows", function()
    local d, c, port, mport = start_slow()
    finally(function() c:close() end)
    local _, got, drops = overflow_and_account(d, c, port, mport, "a")
    -- the handler saw exactly what /metrics counts as received (the queue is empty now:
    -- these questions are not dropped)
    local seen_now, i = ask_count(c, port, "b", 5)
    assert.is_not_nil(seen_now, d:explain("no answer to count once all was accounted for"))
    assert.are.equal(got + i, seen_now, d:explain("handler's count after %d received", got))
    -- one line per datagram that brought news of drops, at most 5 a second: with fewer
    -- lines none was suppressed and they add up to the total
    h.wait_for(function() return select(2, logged_drops(d)) > 0 end, 3)
    local logged, lines = logged_drops(d)
    assert.is_true(lines > 0, d:explain("no log line for the drops"))
    if lines < 5 then
      assert.are.equal(drops, logged, d:explain("the log's %d drop lines", lines))
    else
      assert.is_true(logged <= drops, d:explain("the log's drop lines add up to %d, more than "
                                                .. "the %d counted", logged, drops))
    end
  end)

  it("are not counted twice after a reload keeps the socket", function()
    local d, c, port, mport = start_slow()
    finally(function() c:close() end)
    local sent, _, before = overflow_and_account(d, c, port, mport, "before")
    local inodes = socket_inodes(port)
    assert.are.equal(1, #inodes, d:explain("sockets on 127.0.0.1:%d", port))

    assert(d:signal("HUP"))
    local reloads, text = h.wait_metric(mport, "luadgramd_reloads_total", nil, 1, 5)
    assert.are.equal(1, reloads, d:explain("no reload counted:\n%s", tostring(text)))
    assert.are.same(inodes, socket_inodes(port), d:explain("the reload did not keep the socket"))

    -- Every datagram the kernel delivers now carries the socket's total drop count
    -- (SO_RXQ_OVFL): the reloaded daemon must add only what is new, i.e. nothing.
    local seen, _, asked = ask_count(c, port, "after", 5)
    assert.is_not_nil(seen, d:explain("no answer to count after the reload"))
    sent = sent + asked
    local got_after, after = wait_accounted(mport, sent)
    assert.are.equal(before, after, d:explain("kernel drops before the reload %d, after %s",
                                              before, tostring(after)))
    assert_accounted(d, sent, got_after, after)
  end)
end)
