-- spec/config_spec.lua: the command line and the configuration checks: every bad
-- configuration is refused with exit status 2 and exactly one line on stderr,
-- `FILE:LINE: message`, both by `luadgramd -t` and by a real start; bad options, -h and
-- --version give their exact status and text.
local h = require "helpers"

-- Text with @P1@ and @P2@ made free ports and @SRC@, @DIR@ the checkout and `dir`.
local function expand(text, dir)
  return (text:gsub("@P1@", tostring(h.free_port("127.0.0.1")))
              :gsub("@P2@", tostring(h.free_port("127.0.0.1")))
              :gsub("@SRC@", h.src)
              :gsub("@DIR@", dir))
end

-- A configuration from `text` (see expand): the line holding "--<" is the line the error
-- must be reported at. Returns the text and that line.
local function prepare(text, dir)
  text = expand(text, dir)
  local n, line = 0, nil
  for l in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if l:find("--<", 1, true) then line = n end
  end
  return text, line
end

-- A Lua pattern matching `text` exactly, where @PATH@ stands for any absolute path (the
-- installed scripts folder, which depends on the build's prefix).
local function exact_pattern(text)
  local escaped = text:gsub("%p", "%%%0")
  return "^" .. escaped:gsub("%%@PATH%%@", "/[^,()]+") .. "$"
end

local HEAD = 'script_path = { "@SRC@/scripts", "@SRC@/spec/fixtures" }\n'

-- Each case: the file (after HEAD) and the exact message after `FILE:LINE: `.
local cases = {
  { "an unknown global setting", "unknown setting 'wrokers'", [[
wrokers = 2 --<
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
}
]] },
  { "workers of the wrong type", 'workers: expected an integer from 1 to 256 or "auto"', [[
workers = "two" --<
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
}
]] },
  { "a handler_timeout of the wrong type",
    "handler_timeout: expected seconds from 0.001 to 86400 (0: none)", [[
handler_timeout = "1s" --<
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
}
]] },
  { "a negative handler_timeout", "handler_timeout: expected seconds from 0.001 to 86400 (0: none)",
    [[
handler_timeout = -1 --<
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
}
]] },
  { "a log_level not in the list", 'log_level: expected "debug", "info", "warn" or "error"', [[
log_level = "verbose" --<
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
}
]] },
  { "an unknown listener key", "listener 'a': unknown key 'colour'", [[
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
  colour = "blue", --<
}
]] },
  { "recv.batch 0", "listener 'a': recv.batch: expected an integer from 1 to 1024", [[
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
  recv = {
    size = 1500,
    batch = 0, --<
  },
}
]] },
  { "recv.batch not an integer", "listener 'a': recv.batch: expected an integer from 1 to 1024", [[
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
  recv = { batch = 1.5 }, --<
}
]] },
  { "recv.batch a string", "listener 'a': recv.batch: expected an integer from 1 to 1024", [[
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
  recv = { batch = "32" }, --<
}
]] },
  { "recv.size 0", "listener 'a': recv.size: expected an integer from 1 to 1048576", [[
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
  recv = { size = 0 }, --<
}
]] },
  { "a duplicate listener name", "listener 'dup' is defined twice (first at line 2)", [[
listen "dup" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
}
listen "dup" { --<
  bind = "127.0.0.1:@P2@",
  handler = "echo",
}
]] },
  { "a missing handler", "listener 'a': handler is missing", [[
listen "a" { --<
  bind = "127.0.0.1:@P1@",
}
]] },
  { "a handler not on the script path", "listener 'a': handler 'no_such_handler_xyz' not found"
    .. " (searched @SRC@/scripts/no_such_handler_xyz.lua,"
    .. " @SRC@/spec/fixtures/no_such_handler_xyz.lua, @DIR@/../scripts/no_such_handler_xyz.lua,"
    .. " @PATH@/no_such_handler_xyz.lua)", [[
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "no_such_handler_xyz", --<
}
]] },
  { "a handler file not found", "listener 'a': handler file '@DIR@/./missing_handler.lua' not found",
    [[
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "./missing_handler.lua", --<
}
]] },
  { "a Lua syntax error", "unexpected symbol near '='", [[
workers = 1
workers = = 2 --<
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "echo",
}
]] },
}

-- Bad bind strings: each must be refused at the bind line with its own message.
for _, bad in ipairs {
  { "127.0.0.1", "bad address '127.0.0.1' (expected ip:port)" },
  { "127.0.0.1:99999", "bad port in '127.0.0.1:99999' (0..65535)" },
  { "[::1:53", "bad address '[::1:53' (expected [ipv6]:port)" },
  { "unix:", "bad address 'unix:' (unix: needs a path)" },
  { "raw:nosuchproto@0.0.0.0", "unknown protocol 'nosuchproto' in 'raw:nosuchproto@0.0.0.0'" },
  { "300.1.1.1:53", "bad IP address '300.1.1.1' in '300.1.1.1:53'" },
} do
  cases[#cases + 1] = { "the bind address " .. bad[1], "listener 'a': bind: " .. bad[2],
                        string.format([[
listen "a" {
  handler = "echo",
  bind = %q, --<
}
]], bad[1]) }
end

-- Runs luadgramd with args; its exit status, stdout and stderr, and a description of the run
-- for assertion messages.
local function run(args, conf_text)
  local code, out, err = h.run(args, 5)
  return code, out, err, string.format("luadgramd %s\n%s\n--- exit %s; stdout ---\n%s"
                                       .. "--- stderr ---\n%s", args, conf_text or "",
                                       tostring(code), out, err)
end

-- The text `luadgramd -h` prints (the usage that also follows a bad option on stderr).
local function usage_text()
  local code, out, err = h.run("-h")
  assert.are.equal(0, code, out .. err)
  assert.are.equal("", err)
  return out
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
]], dir)))
    local code, out, err, ctx = run("-t -c " .. h.shq(conf))
    assert.are.equal(0, code, ctx)
    assert.are.equal(conf .. ": configuration is valid (1 listeners)\n", out, ctx)
    assert.are.equal("", err, ctx)
  end)

  for _, case in ipairs(cases) do
    local what, message, body = case[1], case[2], case[3]
    it("refuses " .. what .. " with exactly FILE:LINE: message, exit 2", function()
      local dir = h.tmpdir()
      local conf = dir .. "/bad.conf"
      local text, line = prepare(HEAD .. body, dir)
      assert(line, "case without a --< line")
      h.write(conf, text)
      local want = conf .. ":" .. line .. ": " .. expand(message, dir) .. "\n"
      for _, args in ipairs { "-t -c " .. h.shq(conf), "-c " .. h.shq(conf) } do
        local code, out, err, ctx = run(args, text)
        assert.are.equal(2, code, ctx)
        assert.are.equal("", out, ctx)
        assert.is_truthy(err:match(exact_pattern(want)), "expected stderr to be exactly\n" .. want
                         .. ctx)
      end
    end)
  end

  it("refuses a handler script that does not compile, naming its line, exit 2", function()
    local dir = h.tmpdir()
    local conf = dir .. "/bad.conf"
    local handler = dir .. "/./broken_handler.lua"
    h.write(handler, "local H = {}\nfunction H.message(msg) msg:reply( end\nreturn H\n")
    local text = prepare(HEAD .. [[
listen "a" {
  bind = "127.0.0.1:@P1@",
  handler = "./broken_handler.lua",
}
]], dir)
    h.write(conf, text)
    local why = handler .. ":2: unexpected symbol near 'end'"
    local code, out, err, ctx = run("-t -c " .. h.shq(conf), text)
    assert.are.equal(2, code, ctx)
    assert.are.equal("", out, ctx)
    assert.are.equal(why .. "\n", err, ctx)
    -- a real start says so in its log, as the listener's error
    code, out, err, ctx = run("-c " .. h.shq(conf), text)
    assert.are.equal(2, code, ctx)
    assert.is_truthy(err:find(" error: listener 'a': " .. why .. "\n", 1, true), ctx)
  end)

  it("refuses two listeners on one address with EADDRINUSE naming it, exit 2", function()
    local dir = h.tmpdir()
    local conf = dir .. "/bad.conf"
    -- The port is free when picked; another process may take it before the first listener
    -- binds it (then the first one is refused): pick again.
    local code, out, err, ctx, port
    for _ = 1, 5 do
      port = h.free_port("127.0.0.1")
      local text = prepare(HEAD .. string.format([[
listen "first" {
  bind = "127.0.0.1:%d",
  handler = "echo",
}
listen "second" {
  handler = "echo",
  bind = "127.0.0.1:%d",
}
]], port, port), dir)
      h.write(conf, text)
      code, out, err, ctx = run("-c " .. h.shq(conf), text)
      if not err:find("listener 'first': bind", 1, true) then break end
    end
    assert.are.equal(2, code, ctx)
    assert.are.equal("", out, ctx)
    assert.is_truthy(err:find(" error: " .. conf .. ":8: listener 'second': bind 127.0.0.1:"
                              .. port .. ": Address already in use (EADDRINUSE)\n", 1, true), ctx)
  end)

  it("refuses a missing configuration file, exit 2", function()
    local missing = h.tmpdir() .. "/nope.conf"
    local code, out, err, ctx = run("-t -c " .. h.shq(missing))
    assert.are.equal(2, code, ctx)
    assert.are.equal("", out, ctx)
    assert.are.equal(missing .. ":0: cannot open: No such file or directory\n", err, ctx)
  end)

  it("checks the shipped conf/luadgramd.conf with -t: exit 0", function()
    local conf = h.src .. "/conf/luadgramd.conf"
    local code, out, err, ctx = run("-t -c " .. h.shq(conf))
    assert.are.equal(0, code, ctx)
    assert.is_truthy(out:match("^" .. conf:gsub("%p", "%%%0")
                               .. ": configuration is valid %(%d+ listeners%)\n$"), ctx)
    assert.are.equal("", err, ctx)
  end)

  it("prints its version with --version", function()
    local cmake = assert(h.read(h.src .. "/CMakeLists.txt"))
    local version = assert(cmake:match("project%(luadgramd VERSION ([%d%.]+)"))
    local code, out, err, ctx = run("--version")
    assert.are.equal(0, code, ctx)
    assert.is_truthy(out:match("^luadgramd " .. version:gsub("%.", "%%.")
                               .. " %(Lua 5%.4%.%d+, libevent [%w%.%-]+%)\n$"), ctx)
    assert.are.equal("", err, ctx)
  end)

  it("prints usage with -h on stdout, exit 0", function()
    local out = usage_text()
    assert.are.equal("Usage: luadgramd [-c FILE] [-t]\n", out:match("^[^\n]*\n"), out)
    for _, option in ipairs { "  -c, --config FILE  ", "  -t, --test  ", "  -V, --version  ",
                              "  -h, --help  " } do
      assert.is_truthy(out:find("\n" .. option, 1, true), "no line for " .. option .. "\n" .. out)
    end
  end)

  it("refuses an unknown option with exit 2, naming it, then the usage on stderr", function()
    local usage = usage_text()
    for _, bad in ipairs {
      { "--no-such-option", "unrecognized option '--no-such-option'" },
      { "-x", "invalid option -- 'x'" },
      { "-c", "option requires an argument -- 'c'" },
    } do
      local code, out, err, ctx = run(bad[1])
      assert.are.equal(2, code, ctx)
      assert.are.equal("", out, ctx)
      assert.are.equal(h.bin .. ": " .. bad[2] .. "\n" .. usage, err, ctx)
    end
    local code, out, err, ctx = run("-t extra")
    assert.are.equal(2, code, ctx)
    assert.are.equal("", out, ctx)
    assert.are.equal("luadgramd: unexpected argument 'extra'\n" .. usage, err, ctx)
  end)
end)
