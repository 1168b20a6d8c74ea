-- spec/config_spec.lua: the command line and the configuration checks: every bad
-- configuration is refused with exit status 2 and a `FILE:LINE: message` naming what is
-- wrong, both by `luadgramd -t` and by a real start.
local h = require "helpers"

-- A configuration from `text`: @P1@ and @P2@ become free ports, the line holding "--<" is the
-- line the error must be reported at. Returns the text and that line.
local function prepare(text)
  text = text:gsub("@P1@", tostring(h.free_port("127.0.0.1")))
             :gsub("@P2@", tostring(h.free_port("127.0.0.1")))
             :gsub("@SRC@", h.src)
  local n, line = 0, nil
  for l in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if l:find("--<", 1, true) then line = n end
  end
  return text, line
end

local HEAD = 'script_path = { "@SRC@/scripts", "@SRC@/spec/fixtures" }\n'

-- Each case: the file (after HEAD) and the text the message must name.
local cases = {
  { "an unknown global setting", "wrokers", [[
wrokers = 2 --<
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
}
]] },
  { "workers of the wrong type", "workers", [[
workers = "two" --<
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
}
]] },
  { "a handler_timeout of the wrong type", "handler_timeout", [[
handler_timeout = "1s" --<
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
}
]] },
  { "a negative handler_timeout", "handler_timeout", [[
handler_timeout = -1 --<
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
}
]] },
  { "a log_level not in the list", "log_level", [[
log_level = "verbose" --<
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
}
]] },
  { "an unknown listener key", "colour", [[
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
  colour = "blue", --<
}
]] },
  { "recv.batch 0", "batch", [[
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
  recv = {
    size = 1500,
    batch = 0, --<
  },
}
]] },
  { "recv.batch not an integer", "batch", [[
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
  recv = { batch = 1.5 }, --<
}
]] },
  { "recv.batch a string", "batch", [[
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
  recv = { batch = "32" }, --<
}
]] },
  { "recv.size 0", "size", [[
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
  recv = { size = 0 }, --<
}
]] },
  { "a duplicate listener name", "dup", [[
listen "dup" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
}
listen "dup" { --<
  bind = "127.0.0.1:@P2@",
  handler = "echo",
}
]] },
  { "a missing handler", "handler", [[
listen "a" { --<
  bind = "127.0.0.1:@P1@",
}
]] },
  { "a handler not on the script path", "no_such_handler_xyz", [[
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "no_such_handler_xyz", --<
}
]] },
  { "a handler file not found", "missing_handler.lua", [[
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "./missing_handler.lua", --<
}
]] },
  { "a Lua syntax error", "near", [[
workers = 1
workers = = 2 --<
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
}
]] },
}

-- Bad bind strings: each must be refused at the bind line, naming "bind" and the string.
for _, addr in ipairs { "127.0.0.1", "127.0.0.1:99999", "[::1:53", "unix:",
                        "raw:nosuchproto@0.0.0.0", "300.1.1.1:53" } do
  cases[#cases + 1] = { "the bind address " .. addr, addr, string.format([[
listen "a" {
  handler = "echo",
  bind = %q, --<
}
]], addr), also = "bind" }
end

describe("luadgramd configuration", function()
  after_each(h.cleanup_and_check)

  it("accepts the base of the bad cases (so each case fails for its own defect)", function()
    local dir = h.tmpdir()
    local conf = dir .. "/good.conf"
    h.write(conf, (prepare(HEAD .. [[
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
  recv = { batch = 8, size = 1500 },
}
]])))
    local code, out, err = h.run("-t -c " .. h.shq(conf))
    assert.are.equal(0, code, out .. err)
  end)

  for _, case in ipairs(cases) do
    local what, names, body = case[1], case[2], case[3]
    it("refuses " .. what .. " with FILE:LINE naming it, exit 2", function()
      local dir = h.tmpdir()
      local conf = dir .. "/bad.conf"
      local text, line = prepare(HEAD .. body)
      assert(line, "case without a --< line")
      h.write(conf, text)
      for _, args in ipairs { "-t -c " .. h.shq(conf), "-c " .. h.shq(conf) } do
        local code, out, err = h.run(args, 5)
        local ctx = string.format("luadgramd %s\n%s\n--- stdout ---\n%s--- stderr ---\n%s",
                                  args, text, out, err)
        assert.are.equal(2, code, ctx)
        assert.is_truthy(err:find(conf .. ":" .. line .. ":", 1, true),
                         "expected " .. conf .. ":" .. line .. ": in stderr\n" .. ctx)
        assert.is_truthy(err:find(names, 1, true), "expected it to name " .. names .. "\n" .. ctx)
        if case.also then
          assert.is_truthy(err:find(case.also, 1, true),
                           "expected it to name " .. case.also .. "\n" .. ctx)
        end
      end
    end)
  end

  it("refuses a handler script that does not compile, naming its line, exit 2", function()
    local dir = h.tmpdir()
    local conf = dir .. "/bad.conf"
    h.write(dir .. "/broken_handler.lua", "local H = {}\nfunction H.message(msg) msg:reply( end\n"
                                          .. "return H\n")
    h.write(conf, (prepare(HEAD .. [[
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "./broken_handler.lua",
}
]])))
    for _, args in ipairs { "-t -c " .. h.shq(conf), "-c " .. h.shq(conf) } do
      local code, out, err = h.run(args, 5)
      assert.are.equal(2, code, args .. "\n" .. out .. err)
      assert.is_truthy(err:find("broken_handler.lua:2:", 1, true), args .. "\n" .. err)
    end
  end)

  it("refuses two listeners on one address with EADDRINUSE naming it, exit 2", function()
    local dir = h.tmpdir()
    local conf = dir .. "/bad.conf"
    local port = h.free_port("127.0.0.1")
    local text, line = prepare(HEAD .. string.format([[
listen "first" {
  bind = "127.0.0.1:%d",
  handler = "echo",
}
listen "second" {
  handler = "echo",
  bind = "127.0.0.1:%d", --<
}
]], port, port))
    h.write(conf, text)
    local code, out, err = h.run("-c " .. h.shq(conf), 5)
    local ctx = text .. "\n--- stdout ---\n" .. out .. "--- stderr ---\n" .. err
    assert.are.equal(2, code, ctx)
    assert.is_truthy(err:find("EADDRINUSE", 1, true), ctx)
    assert.is_truthy(err:find("127.0.0.1:" .. port, 1, true), ctx)
    assert.is_truthy(err:find(conf .. ":" .. line .. ":", 1, true),
                     "expected " .. conf .. ":" .. line .. ":\n" .. ctx)
  end)

  it("refuses a missing configuration file, exit 2", function()
    local missing = h.tmpdir() .. "/nope.conf"
    local code, out, err = h.run("-t -c " .. h.shq(missing))
    assert.are.equal(2, code, out .. err)
    assert.is_truthy(err:find(missing, 1, true), err)
  end)

  it("checks the shipped conf/luadgramd.conf with -t: exit 0", function()
    local code, out, err = h.run("-t -c " .. h.shq(h.src .. "/conf/luadgramd.conf"))
    assert.are.equal(0, code, out .. err)
  end)

  it("prints its version with --version", function()
    local cmake = assert(h.read(h.src .. "/CMakeLists.txt"))
    local version = assert(cmake:match("project%(luadgramd VERSION ([%d%.]+)"))
    local code, out, err = h.run("--version")
    assert.are.equal(0, code, out .. err)
    assert.is_truthy(out:find(version, 1, true), "expected " .. version .. " in: " .. out)
  end)

  it("prints usage with -h", function()
    local code, out, err = h.run("-h")
    assert.are.equal(0, code, out .. err)
    assert.is_truthy(out:lower():find("usage", 1, true), out)
    assert.is_truthy(out:find("-c", 1, true), out)
    assert.is_truthy(out:find("-t", 1, true), out)
  end)

  it("refuses an unknown option with a non-zero status", function()
    local code, out, err = h.run("--no-such-option")
    assert.are_not.equal(0, code, out .. err)
    assert.are_not.equal(124, code, "it kept running: " .. out .. err)
  end)
end)
