-- spec/unix_spec.lua: unix datagram listeners: the sender's credentials and path, replies to
-- bound clients, the error an unbound client's reply gets, and the socket file's mode.
local h = require "helpers"

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
    assert.is_string(m.reply_error)
    assert.is_true(#m.reply_error > 0)
    assert.are.equal(h.mypid(), m.creds.pid, "credentials come with unbound senders too")
  end)

  it("applies mode to the socket file", function()
    assert.are.equal("600", h.capture("stat -c %a " .. h.shq(sock)))
    assert.are.equal("socket", h.capture("stat -c %F " .. h.shq(sock)))
  end)
end)
