-- spec/output_jsonl_spec.lua: the JSON Lines writer (scripts/lib/output_jsonl.lua) on its own:
-- one object per line, buffering and flushing, the flush timer, valid UTF-8 whatever the
-- strings hold, rotation without loss, whole lines under concurrent writers, write failures.
local h = require "helpers"
local cjson = require "cjson"
-- loaded first, so that output_jsonl flushes with its writev, as in the daemon
local file = require "luadgram.file"
local output_jsonl = require "output_jsonl"

local function lines_of(path)
  local out = {}
  for line in (h.read(path) or ""):gmatch("([^\n]*)\n") do out[#out + 1] = line end
  return out
end

local function decoded(path)
  local out = {}
  for i, line in ipairs(lines_of(path)) do out[i] = cjson.decode(line) end
  return out
end

-- A stand-in for luadgram.every that lets the spec fire the timer.
local function fake_every()
  local t = { armed = {} }
  t.every = function(secs, fn)
    local timer = { secs = secs, fn = fn, cancelled = false }
    function timer.cancel(self) self.cancelled = true end
    t.armed[#t.armed + 1] = timer
    return timer
  end
  return t
end

describe("output_jsonl", function()
  local dir
  before_each(function() dir = h.tmpdir() end)
  after_each(h.cleanup_and_check)

  describe("open", function()
    it("returns nil and the error when the file cannot be opened", function()
      local out, err = output_jsonl.open { path = "/etc/passwd/sub/x.jsonl" }
      assert.is_nil(out)
      assert.is_string(err)
      assert.is_truthy(err:find("/etc/passwd/sub/x.jsonl", 1, true), err)
    end)

    it("creates the missing folder, unless mkdir = false", function()
      local path = dir .. "/a/b/out.jsonl"
      local out = assert(output_jsonl.open { path = path })
      assert(out:write { n = 1 })
      assert(out:close())
      assert.are.same({ { n = 1 } }, decoded(path))
      local none, err = output_jsonl.open { path = dir .. "/c/out.jsonl", mkdir = false }
      assert.is_nil(none)
      assert.is_truthy(err:find("No such file", 1, true), err)
    end)

    it("raises for a missing path or a bad number (programming errors)", function()
      assert.has_error(function() output_jsonl.open {} end,
                       "output_jsonl.open: opts.path (a string) is required")
      assert.has_error(function()
        output_jsonl.open { path = dir .. "/x", buffer_size = -1 }
      end, "output_jsonl.open: buffer_size must be a number >= 0")
    end)

    it("appends to an existing file", function()
      local path = dir .. "/out.jsonl"
      h.write(path, '{"old":true}\n')
      local out = assert(output_jsonl.open { path = path })
      assert(out:write { new = true })
      assert(out:close())
      assert.are.same({ { old = true }, { new = true } }, decoded(path))
    end)
  end)

  describe("write and flush", function()
    it("writes one JSON object per line, in order, each decoding to what was written",
       function()
      local path = dir .. "/out.jsonl"
      local out = assert(output_jsonl.open { path = path })
      local records = {
        { msg = "plain", n = 1, f = 0.5, yes = true, list = { 1, 2, 3 } },
        { msg = 'quote " backslash \\ slash / tab \t newline \n', sd = { { id = "a@1" } } },
        { msg = "nul \0 and DEL \127 and UTF-8 \u{e9}\u{20ac}" },
      }
      for _, r in ipairs(records) do assert(out:write(r)) end
      assert(out:close())
      local lines = lines_of(path)
      assert.are.equal(3, #lines)
      assert.are.same(records, decoded(path))
      assert.are.equal(3, out.written)
      assert.are.equal(0, out.dropped)
    end)

    it("appends pre-encoded lines (write_line, write_lines) in order, counting lines",
       function()
      local path = dir .. "/out.jsonl"
      local out = assert(output_jsonl.open { path = path })
      assert(out:write { n = 1 })
      assert(out:write_line('{"n":2}'))
      assert(out:write_lines('{"n":3}\n{"n":4}\n{"n":5}\n', 3))
      assert(out:write_lines("", 0))
      assert(out:write { n = 6 })
      assert.are.equal(6, out.lines, "lines waiting before the flush")
      assert(out:close())
      assert.are.same({ { n = 1 }, { n = 2 }, { n = 3 }, { n = 4 }, { n = 5 }, { n = 6 } },
                      decoded(path))
      assert.are.equal(6, out.written)
      assert.are.equal(0, out.dropped)
    end)

    it("keeps lines in memory until flush or buffer_size bytes", function()
      local path = dir .. "/out.jsonl"
      local out = assert(output_jsonl.open { path = path, buffer_size = 200 })
      assert(out:write { msg = "first" })
      assert(out:write { msg = "second" })
      assert.are.equal("", h.read(path), "nothing is written before a flush")
      assert.are.equal(0, out.written)
      assert(out:flush())
      assert.are.equal(2, #lines_of(path))
      assert.are.equal(2, out.written)
      -- past buffer_size, write() flushes by itself, whole lines only
      for i = 1, 20 do assert(out:write { msg = string.rep("x", 20), i = i }) end
      local n = #lines_of(path)
      assert.is_true(n > 2 and n < 22, "flushed on size: " .. n .. " lines")
      assert.are.equal(n, out.written)
      assert.is_truthy(h.read(path):match("\n$"), "the file ends with a whole line")
      assert(out:close())
      assert.are.equal(22, #lines_of(path))
    end)

    it("flushes from the timer it arms with every(flush_interval) and stops it on close",
       function()
      local path = dir .. "/out.jsonl"
      local t = fake_every()
      local out = assert(output_jsonl.open { path = path, flush_interval = 0.25,
                                             every = t.every })
      assert.are.equal(1, #t.armed)
      assert.are.equal(0.25, t.armed[1].secs)
      assert(out:write { msg = "tick" })
      assert.are.equal("", h.read(path))
      t.armed[1].fn()
      assert.are.same({ { msg = "tick" } }, decoded(path))
      assert(out:close())
      assert.is_true(t.armed[1].cancelled)
    end)

    it("arms no timer with flush_interval = 0", function()
      local t = fake_every()
      local out = assert(output_jsonl.open { path = dir .. "/o", flush_interval = 0,
                                             every = t.every })
      assert.are.equal(0, #t.armed)
      assert(out:close())
    end)

    it("drops and counts what cjson cannot encode, and writes after close", function()
      local path = dir .. "/out.jsonl"
      local out = assert(output_jsonl.open { path = path })
      local ok, err = out:write { f = print }
      assert.is_nil(ok)
      assert.is_truthy(err:find("Cannot serialise function", 1, true), err)
      assert(out:write { n = 0 / 0, big = math.huge })
      assert(out:close())
      local got = decoded(path)
      assert.are.equal(1, #got)
      assert.are.equal(cjson.null, got[1].n, "NaN is written as null")
      assert.are.equal(cjson.null, got[1].big, "inf is written as null")
      ok, err = out:write { late = true }
      assert.is_nil(ok)
      assert.are.equal("output closed", err)
      assert.are.equal(2, out.dropped)
    end)
  end)

  describe("UTF-8", function()
    it("replaces each invalid byte by U+FFFD, in values and keys, and leaves tbl alone",
       function()
      local path = dir .. "/out.jsonl"
      local out = assert(output_jsonl.open { path = path })
      local rec = { msg = "ok \u{e9} bad \255\254 cut \xe2\x82 end",
                    nested = { { value = "\192\175" } }, ["k\200"] = "v" }
      assert(out:write(rec))
      assert(out:close())
      local text = h.read(path)
      assert.is_truthy(utf8.len(text), "the file is valid UTF-8")
      local got = decoded(path)[1]
      local R = "\u{fffd}"
      assert.are.equal("ok \u{e9} bad " .. R .. R .. " cut " .. R .. R .. " end", got.msg)
      assert.are.equal(R .. R, got.nested[1].value, "an overlong encoding is invalid")
      assert.are.equal("v", got["k" .. R])
      assert.are.equal("ok \u{e9} bad \255\254 cut \xe2\x82 end", rec.msg, "tbl unchanged")
    end)

    it("trusts the caller with utf8_ok = true (no check)", function()
      local path = dir .. "/out.jsonl"
      local out = assert(output_jsonl.open { path = path })
      assert(out:write({ msg = "\255" }, true))
      assert(out:close())
      assert.are.equal('{"msg":"\255"}\n', h.read(path))
    end)

    it("utf8_fix returns valid strings unchanged", function()
      local s = "d\u{e9}j\u{e0} vu \u{1f600}"
      assert.are.equal(s, output_jsonl.utf8_fix(s))
      local R = "\u{fffd}"
      assert.are.equal("a" .. R .. R .. R, output_jsonl.utf8_fix("a\237\160\128"),
                       "a UTF-16 surrogate is not UTF-8")
      assert.are.equal(R .. R .. R .. R .. "x", output_jsonl.utf8_fix("\244\144\128\128x"),
                       "past U+10FFFF")
    end)
  end)

  describe("base64", function()
    it("encodes the RFC 4648 test vectors", function()
      local vectors = { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==",
                        fooba = "Zm9vYmE=", foobar = "Zm9vYmFy" }
      for plain, enc in pairs(vectors) do
        assert.are.equal(enc, output_jsonl.base64(plain), plain)
      end
    end)

    it("agrees with coreutils base64 on every byte value", function()
      local bytes = {}
      for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
      local s = table.concat(bytes) .. "\0\255" -- 258 bytes: a partial group at the end
      local path = dir .. "/bytes"
      h.write(path, s)
      assert.are.equal(h.capture("base64 -w0 " .. h.shq(path)), output_jsonl.base64(s))
    end)
  end)

  describe("rotation", function()
    it("loses nothing when the file is moved away and a second writer opens the path",
       function()
      -- What a reload after logrotate does: the new state opens the path (a new file) while
      -- the old one still holds lines, which its close() writes into the moved file.
      local path = dir .. "/out.jsonl"
      local old = assert(output_jsonl.open { path = path, buffer_size = 1e6 })
      for i = 1, 50 do assert(old:write { n = i }) end
      assert(old:flush())
      for i = 51, 100 do assert(old:write { n = i }) end
      assert(os.rename(path, path .. ".1"))
      local new = assert(output_jsonl.open { path = path, buffer_size = 1e6 })
      for i = 101, 150 do assert(new:write { n = i }) end
      assert(old:close())
      assert(new:close())
      local seen, count = {}, 0
      for _, file in ipairs { path .. ".1", path } do
        for _, r in ipairs(decoded(file)) do
          assert.is_nil(seen[r.n], "line " .. r.n .. " twice")
          seen[r.n], count = true, count + 1
        end
      end
      assert.are.equal(150, count)
      assert.are.equal(100, #lines_of(path .. ".1"))
      assert.are.equal(50, #lines_of(path))
    end)

    it("reopen() flushes to the old file and continues in the new one", function()
      local path = dir .. "/out.jsonl"
      local out = assert(output_jsonl.open { path = path })
      assert(out:write { n = 1 })
      assert(os.rename(path, path .. ".1"))
      assert(out:reopen())
      assert(out:write { n = 2 })
      assert(out:close())
      assert.are.same({ { n = 1 } }, decoded(path .. ".1"))
      assert.are.same({ { n = 2 } }, decoded(path))
    end)
  end)

  describe("several writers on one file", function()
    it("never interleave or cut lines (two processes, each flush one write)", function()
      local path = dir .. "/shared.jsonl"
      local N = 20000
      local script = string.format([[
        local out = assert(require("output_jsonl").open { path = %q, buffer_size = 3000 })
        local pad = string.rep("p", 150)
        for i = 1, %d do assert(out:write { w = arg[1], i = i, pad = pad }) end
        assert(out:close())
      ]], path, N)
      h.write(dir .. "/writer.lua", script)
      local cmd = "LUA_PATH=" .. h.shq(h.src .. "/scripts/lib/?.lua;;") .. " lua5.4 "
                  .. h.shq(dir .. "/writer.lua")
      -- both start together, in the background; wait for both
      assert(os.execute("(" .. cmd .. " A & " .. cmd .. " B & wait) 2>" .. h.shq(dir .. "/err")))
      assert.are.equal("", h.read(dir .. "/err"))
      local seen = { A = {}, B = {} }
      local lines = lines_of(path)
      assert.are.equal(2 * N, #lines)
      for _, line in ipairs(lines) do
        local ok, r = pcall(cjson.decode, line)
        assert.is_true(ok, "a cut or mixed line: " .. line:sub(1, 80))
        assert.is_nil(seen[r.w][r.i])
        seen[r.w][r.i] = true
      end
      for i = 1, N do assert.is_true(seen.A[i] and seen.B[i], "line " .. i) end
    end)
  end)

  describe("write failures", function()
    it("keeps lines while the file cannot be written and writes them once it can", function()
      local path = dir .. "/link.jsonl"
      assert(os.execute("ln -s /dev/full " .. h.shq(path)))
      local out = assert(output_jsonl.open { path = path, buffer_size = 1000 })
      for i = 1, 5 do assert(out:write { n = i }) end
      local ok, err = out:flush()
      assert.is_nil(ok)
      assert.is_truthy(err:find("No space left", 1, true), err)
      assert.are.equal(0, out.written)
      assert(out:write { n = 6 })
      -- the disk has room again: the next flush reopens the path and writes everything
      assert(os.remove(path))
      assert(out:flush())
      assert.are.equal(6, out.written)
      assert(out:close())
      local text = h.read(path)
      assert.are.equal("\n", text:sub(1, 1), "a retried chunk starts on a new line")
      local got = {}
      for line in text:gmatch("[^\n]+") do got[#got + 1] = cjson.decode(line).n end
      assert.are.same({ 1, 2, 3, 4, 5, 6 }, got)
    end)

    it("drops and counts lines past max_pending, and what close() cannot write", function()
      local out = assert(output_jsonl.open { path = "/dev/full", buffer_size = 100,
                                             max_pending = 200 })
      local written, refused, last_err = 0, 0, nil
      for i = 1, 40 do
        local ok, err = out:write { n = i, pad = "0123456789" }
        if ok then written = written + 1 else refused, last_err = refused + 1, err end
      end
      assert.is_true(written > 0 and refused > 0, written .. " kept, " .. refused .. " refused")
      assert.is_truthy(last_err:find("output buffer full", 1, true), last_err)
      assert.are.equal(refused, out.dropped)
      assert.is_nil((out:close()))
      assert.are.equal(40, out.dropped, "every line is counted as lost")
      assert.are.equal(0, out.written)
    end)
  end)

  describe("luadgram.file.writev (the flush's one system call)", function()
    it("writes the parts in order, as one string would be", function()
      local path = dir .. "/v.txt"
      local f = assert(io.open(path, "a"))
      f:setvbuf("no")
      local parts = { "a", "", "bc\n", ("x"):rep(70000), "\0end" }
      assert.is_true(file.writev(f, parts, #parts))
      assert.is_true(file.writev(f, parts, 2)) -- only the first n
      f:close()
      assert.are.equal(table.concat(parts) .. "a", h.read(path))
    end)

    it("raises for parts that are not strings, n out of range, a closed file", function()
      local f = assert(io.open(dir .. "/w.txt", "a"))
      assert.has_error(function() file.writev(f, { "a", 1 }, 2) end,
                       "bad argument #2 to 'writev' (parts[2] is not a string)")
      assert.has_error(function() file.writev(f, { "a" }, 2) end,
                       "bad argument #2 to 'writev' (parts[2] is not a string)")
      local out_of_range = "bad argument #3 to 'writev' (out of range (0 to WRITEV_MAX))"
      assert.has_error(function() file.writev(f, {}, file.WRITEV_MAX + 1) end, out_of_range)
      assert.has_error(function() file.writev(f, {}, -1) end, out_of_range)
      assert.has_error(function() file.writev("f", {}, 0) end,
                       "bad argument #1 to 'writev' (FILE* expected, got string)")
      f:close()
      assert.has_error(function() file.writev(f, {}, 0) end,
                       "bad argument #1 to 'writev' (attempt to use a closed file)")
    end)

    it("returns nil and the error when the write fails", function()
      local f = assert(io.open("/dev/full", "a"))
      f:setvbuf("no")
      local ok, err = file.writev(f, { "x\n" }, 1)
      f:close()
      assert.is_nil(ok)
      assert.are.equal("No space left on device (ENOSPC)", err)
    end)

    it("flushes the same bytes through writev and, past WRITEV_MAX parts, one write",
       function()
      -- a flush of few lines goes through writev, one of more lines than it takes through
      -- table.concat and one write: the file must read the same either way
      for _, count in ipairs { 10, file.WRITEV_MAX } do
        local path = dir .. "/n" .. count .. ".jsonl"
        local out = assert(output_jsonl.open { path = path, buffer_size = 1 << 30 })
        local want = {}
        for i = 1, count do
          local line = cjson.encode { i = i, s = ("y"):rep(i % 50) }
          want[i] = line
          assert(out:write_line(line))
        end
        assert.are.equal(count * 2, out.n, "kept as line, newline pairs")
        assert(out:flush())
        assert.are.same(want, lines_of(path))
        assert.are.equal(count, out.written)
        assert(out:close())
      end
    end)
  end)
end)
