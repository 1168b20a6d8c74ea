-- spec/unix_spec.lua: unix datagram listeners: the sender's credentials and path, replies to
-- bound clients, the error an unbound client's reply gets, and the socket file's mode.
local h = require "helpers"

-- How many datagrams a bound unix datagram socket that nobody reads takes from a sender
-- before the kernel says EAGAIN (max_dgram_qlen, or one more, by kernel version): measured
-- on a pair of sockets made for it in dir.
local function unread_queue_capacity(dir)
  local rx_path = dir .. "/probe-rx.sock"
  local rx, tx = h.unix(rx_path), h.unix(dir .. "/probe-tx.sock")
  tx.s:settimeout(0)
  local n = 0
  while n < 100000 and tx:send(rx_path, "x") do n = n + 1 end
  rx:close()
  tx:close()
  return n
end

describe("luadgramd unix datagram listener", function()
  local dir, sock, report, d
  before_each(function()
    dir = h.tmpdir()
    sock = dir .. "/srv.sock"
    report = dir .. "/report.sock"
    d = h.start { dir = dir, listeners = { {
      name = "local", handler = "inspect", bind = "unix:" .. sock, mode = "0600",
      options = { report = "unix:" .. report },
    } } }
  end)
  after_each(h.cleanup_and_check)

  it("reports the sender's pid, uid, gid and path, and replies to it", function()
    local client = dir .. "/client.sock"
    local u = h.unix(client)
    finally(function() u:close() end)
    local data, from = u:ask(sock, "who am I")
    assert.is_string(data, d:explain("no reply: %s", tostring(from)))
    assert.are.equal(sock, from, "the reply comes from the listener's socket")
    local m = h.parse(data)
    assert.are.equal("who am I", m.data)
    assert.are.equal(8, m.size)
    assert.are.equal("local", m.listener)
    assert.are.equal("unix", m.peer.family)
    assert.are.equal(client, m.peer.path)
    assert.are.equal(client, m.peer.str)
    assert.is_table(m.creds, d:explain("msg.creds: %s", h.lua(m.creds)))
    assert.are.equal(h.mypid(), m.creds.pid)
    assert.are.equal(tonumber(h.capture("id -u")), m.creds.uid)
    assert.are.equal(tonumber(h.capture("id -g")), m.creds.gid)
  end)

  it("gives reply() of an unbound sender nil and an error", function()
    local r = h.unix(report)
    local u = h.unix(nil)
    finally(function() r:close() u:close() end)
    assert(u:send(sock, "anonymous"))
    local data = r:recv(2)
    assert.is_string(data, d:explain("nothing reported to %s", report))
    local m = h.parse(data)
    assert.are.equal("anonymous", m.data)
    assert.is_nil(m.reply_result)
    assert.are.equal("peer has no address (unbound unix socket)", m.reply_error)
    assert.is_nil(m.peer)
    assert.are.equal(h.mypid(), m.creds.pid, "credentials come with unbound senders too")
  end)

  it("applies mode to the socket file", function()
    assert.are.equal("600", h.capture("stat -c %a " .. h.shq(sock)))
    assert.are.equal("socket", h.capture("stat -c %F " .. h.shq(sock)))
  end)
end)

describe("luadgramd replies to a client that does not read", function()
  after_each(h.cleanup_and_check)

  it("waits while the client's queue is full, then sends every reply in order", function()
    local dir = h.tmpdir()
    local sock, mport = dir .. "/echo.sock", h.free_tcp_port()
    -- batch 8: the socket counts as busy (polled, out of epoll) from 2 datagrams a batch
    local d = h.start { dir = dir, metrics = "127.0.0.1:" .. mport, listeners = { {
      name = "ux", handler = "echo", bind = "unix:" .. sock, recv = { batch = 8 },
    } } }
    local u = h.unix(dir .. "/slow.sock")
    finally(function() u:close() end)
    -- The kernel refuses (EAGAIN) a datagram to a unix socket whose queue is full: N -
    -- capacity replies must wait for the client to read. The daemon stops reading
    -- meanwhile, and its own queue takes the rest of the N.
    local capacity = unread_queue_capacity(dir)
    assert.is_true(capacity > 0 and capacity < 100000, "queue capacity " .. capacity)
    local N = capacity + 8
    for i = 1, N do assert(u:send(sock, "m" .. i), "send " .. i) end
    -- the client's queue is full before it reads: the other replies have to wait
    local queued, queued_text = h.wait_metric(mport, "luadgramd_sent_total", "ux", capacity, 5)
    assert.are.equal(capacity, queued, d:explain("replies sent before the client read "
                                                 .. "(its queue takes %d):\n%s", capacity,
                                                 tostring(queued_text)))
    for i = 1, N do
      local data = u:recv(5)
      assert.are.equal("m" .. i, data, d:explain("reply %d of %d", i, N))
    end
    local sent = h.wait_metric(mport, "luadgramd_sent_total", "ux", N)
    local text = assert(h.metrics(mport))
    assert.are.equal(N, sent, text)
    assert.are.equal(0, h.metric(text, "luadgramd_send_dropped_total", "ux"), text)
    assert.are.equal(0, h.metric(text, "luadgramd_send_errors_total", "ux"), text)
    assert.are.equal("m0", u:ask(sock, "m0"), d:explain("still answering afterwards"))
  end)
end)
