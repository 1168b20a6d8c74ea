-- spec/install_spec.lua: what `cmake --install` of this build puts on a machine (in a
-- DESTDIR): the file layout; the man pages (groff -ww lint, `man -l`, every setting, key,
-- option, signal and environment variable documented); the systemd units with this
-- build's paths (systemd-analyze verify on both, and an exposure of 2.5 or less by
-- systemd-analyze security). Needs `bash .ci/deps package` (groff, man-db, systemd).
local h = require "helpers"

-- The value of a variable of this build's CMakeCache.txt.
local function cache_var(name)
  local text = assert(h.read(h.build .. "/CMakeCache.txt"), "no CMakeCache.txt in " .. h.build)
  return text:match("\n" .. name .. ":[%w_]+=([^\n]*)")
end

-- Every file under dir, relative to it, sorted.
local function files_under(dir)
  local out = {}
  local p = io.popen("cd " .. h.shq(dir) .. " && find . -type f | sort")
  for l in p:lines() do out[#out + 1] = l:sub(3) end
  p:close()
  return out
end

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok and 0 or code, out
end

local function need(tool, package)
  assert(os.execute("command -v " .. tool .. " >/dev/null 2>&1") == true,
         tool .. " is not installed (Debian package " .. package .. ": bash .ci/deps package)")
end

-- systemd-analyze runs without a running systemd (verify, security --offline); where it
-- cannot run at all the tests that need it are pending, naming why.
local function analyze_missing()
  if os.execute("systemd-analyze --version >/dev/null 2>&1") ~= true then
    return "systemd-analyze cannot run here (Debian package systemd: bash .ci/deps package)"
  end
end

describe("cmake --install", function()
  local root, prefix, etc
  setup(function()
    root = h.tmpdir()
    prefix = cache_var("CMAKE_INSTALL_PREFIX")
    local code, out = run("DESTDIR=" .. h.shq(root) .. " cmake --install " .. h.shq(h.build))
    assert(code == 0, "cmake --install failed:\n" .. out)
    etc = prefix == "/usr" and "/etc" or prefix .. "/etc"
  end)
  teardown(h.cleanup)

  it("installs the daemon, configuration, units, man pages, examples and scripts", function()
    local want = {
      prefix .. "/sbin/luadgramd",
      etc .. "/luadgramd/luadgramd.conf",
      prefix .. "/lib/systemd/system/luadgramd.service",
      prefix .. "/lib/systemd/system/luadgramd.socket",
      prefix .. "/share/man/man8/luadgramd.8",
      prefix .. "/share/man/man5/luadgramd.conf.5",
    }
    for f in io.popen("cd " .. h.shq(h.src) .. " && ls conf/examples/*.conf"):lines() do
      want[#want + 1] = prefix .. "/share/doc/luadgramd/examples/" .. f:match("[^/]+$")
    end
    for f in io.popen("cd " .. h.shq(h.src) .. " && find scripts -type f | sort"):lines() do
      want[#want + 1] = prefix .. "/share/luadgramd/" .. f
    end
    for i, f in ipairs(want) do want[i] = f:sub(2) end
    table.sort(want)
    assert.are.same(want, files_under(root))
    -- the units and the configuration carry this build's paths
    local unit = h.read(root .. prefix .. "/lib/systemd/system/luadgramd.service")
    assert.is_truthy(unit:find("\nExecStart=" .. prefix .. "/sbin/luadgramd -c " .. etc
                               .. "/luadgramd/luadgramd.conf\n", 1, true), unit)
    assert.is_nil(unit:match("@[%u_]+@"), "an unfilled @VAR@ in the unit")
    local conf = h.read(root .. etc .. "/luadgramd/luadgramd.conf")
    assert.is_nil(conf:match("@[%u_]+@"), "an unfilled @VAR@ in the configuration")
  end)

  describe("man pages", function()
    local function page(name, section)
      return root .. prefix .. "/share/man/man" .. section .. "/" .. name .. "." .. section
    end
    -- The page as man shows it, plain text (no hyphenation, no bold).
    local function render(path)
      local code, out = run("MANWIDTH=2000 MAN_KEEP_FORMATTING= man --nh -l " .. h.shq(path)
                            .. " | col -bx")
      assert.are.equal(0, code, out)
      return out
    end

    it("pass groff -ww (every warning) and man -l shows them", function()
      need("groff", "groff-base")
      need("man", "man-db")
      for _, p in ipairs { page("luadgramd", 8), page("luadgramd.conf", 5) } do
        local code, out = run("groff -ww -z -man " .. h.shq(p))
        assert.are.same({ 0, "" }, { code, out }, p)
        local text = render(p)
        for _, sec in ipairs { "NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO" } do
          assert.is_truthy(text:find("\n" .. sec .. "\n", 1, true), p .. ": no " .. sec)
        end
      end
    end)

    it("luadgramd(8) documents options, signals, exit status, files and environment", function()
      need("man", "man-db")
      local text = render(page("luadgramd", 8))
      for _, w in ipairs { "--config", "--test", "--version", "--help", "SIGHUP", "SIGTERM",
                           "SIGINT", "EXIT STATUS", "FILES", "NOTIFY_SOCKET", "LISTEN_FDS",
                           "WATCHDOG_USEC", "WATCHDOG_PID", "/etc/luadgramd/luadgramd.conf" } do
        assert.is_truthy(text:find(w, 1, true), "luadgramd(8) lacks " .. w)
      end
    end)

    it("luadgramd.conf(5) documents every setting and key daemon/config.c takes", function()
      need("man", "man-db")
      local text = render(page("luadgramd.conf", 5))
      local keys = {}
      for k in h.read(h.src .. "/daemon/config.c"):gmatch('strcmp%(ke?y?, "([%w_]+)"%)') do
        keys[k] = true
      end
      assert.is_truthy(keys.workers and keys.batch and keys.unsafe, "config.c not parsed")
      for k in pairs(keys) do
        assert.is_truthy(text:find("%f[%w_]" .. k .. "%f[^%w_]"), "luadgramd.conf(5) lacks " .. k)
      end
      -- the shipped handlers and their options (from their header comments)
      for _, w in ipairs { "echo", "syslog", "snmptrap", "dns", "forward", "filter",
                           "tz_offset", "encoder", "communities", "on_trap", "log_interval",
                           "zone", "edns_size", "records", "soa", "raw:", "unix:", "[::]:",
                           "users", "engine_id", "state_dir", "mibs" } do
        assert.is_truthy(text:find(w, 1, true), "luadgramd.conf(5) lacks " .. w)
      end
    end)
  end)

  describe("systemd units", function()
    -- The installed units with the installed binary's path (DESTDIR) in place of its final
    -- one, so that verify finds it; nothing else is changed.
    local function staged_units()
      local dir = h.tmpdir()
      for _, u in ipairs { "luadgramd.service", "luadgramd.socket" } do
        local text = h.read(root .. prefix .. "/lib/systemd/system/" .. u)
        text = text:gsub(prefix:gsub("%p", "%%%0") .. "/sbin/luadgramd",
                         ((root .. prefix .. "/sbin/luadgramd"):gsub("%%", "%%%%")))
        h.write(dir .. "/" .. u, text)
      end
      return dir
    end

    it("pass systemd-analyze verify (both units, the man pages they name included)", function()
      local why = analyze_missing()
      if why then pending(why) return end
      local dir = staged_units()
      local code, out = run("MANPATH=" .. h.shq(root .. prefix .. "/share/man")
                            .. " systemd-analyze verify " .. h.shq(dir .. "/luadgramd.service")
                            .. " " .. h.shq(dir .. "/luadgramd.socket"))
      assert.are.same({ 0, "" }, { code, out })
    end)

    it("have an exposure of 2.5 or less (systemd-analyze security)", function()
      local why = analyze_missing()
      if why then pending(why) return end
      local dir = staged_units()
      local code, out = run("systemd-analyze security --offline=true "
                            .. h.shq(dir .. "/luadgramd.service"))
      assert.are.equal(0, code, out)
      local level = tonumber(out:match("Overall exposure level for luadgramd%.service: ([%d.]+)"))
      assert.is_truthy(level, out)
      assert.is_true(level <= 2.5, string.format("exposure %.1f > 2.5:\n%s", level, out))
      assert.are.equal(1.5, level, "the README gives 1.5: update it\n" .. out)
    end)
  end)
end)
