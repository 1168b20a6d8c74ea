-- spec/package_spec.lua: the Debian package. Builds it from a copy of this checkout's files
-- (tracked and new, not the build folders) with `dpkg-buildpackage -us -uc -b` (the test
-- suite is not run by it: debian/rules), then checks its version, file list, conffiles,
-- dependencies, units and maintainer scripts, runs lintian, unpacks it (dpkg-deb -x) and
-- runs the packaged binary on the packaged configuration: -t, then for a few seconds with
-- an echo answered. One build for all: it takes a minute or more. Needs
-- `bash .ci/deps package`.
local h = require "helpers"

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok and 0 or code, out
end

local function lines(cmd)
  local code, out = run(cmd)
  assert(code == 0, cmd .. ":\n" .. out)
  local t = {}
  for l in out:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

describe("the Debian package", function()
  local work, deb, root, build_log
  setup(function()
    for tool, pkg in pairs { ["dpkg-buildpackage"] = "dpkg-dev", dh = "debhelper",
                             fakeroot = "fakeroot", lintian = "lintian", git = "git" } do
      assert(os.execute("command -v " .. tool .. " >/dev/null 2>&1") == true,
             tool .. " is not installed (Debian package " .. pkg .. ": bash .ci/deps package)")
    end
    work = h.tmpdir()
    local src = work .. "/luadgramd"
    -- the checkout's files as they are now, committed or not; nothing ignored (build*/)
    local code, out = run(string.format(
      "mkdir %s && cd %s && git ls-files -z -co --exclude-standard | "
      .. "xargs -0 sh -c 'for f; do [ -e \"$f\" ] && printf \"%%s\\0\" \"$f\"; done' sh | "
      .. "tar -c --null -T - -f - | tar -x -C %s", h.shq(src), h.shq(h.src), h.shq(src)))
    assert(code == 0, "copying the checkout failed:\n" .. out)
    build_log = work .. "/build.log"
    -- nocheck: no tests (debian/rules skips them anyway); noddebs: no -dbgsym package
    code = os.execute(string.format("cd %s && DEB_BUILD_OPTIONS='nocheck noddebs parallel=2' "
                                    .. "timeout --foreground 600 dpkg-buildpackage -us -uc -b >%s 2>&1",
                                    h.shq(src), h.shq(build_log)))
    local ok_build = code == true
    local found = lines("ls " .. h.shq(work))
    for _, f in ipairs(found) do
      if f:match("^luadgramd_.*_amd64%.deb$") then deb = work .. "/" .. f end
    end
    assert(ok_build and deb, "dpkg-buildpackage failed:\n" .. (h.read(build_log) or ""):sub(-4000))
    root = work .. "/root"
    code, out = run("dpkg-deb -x " .. h.shq(deb) .. " " .. h.shq(root))
    assert(code == 0, out)
  end)
  teardown(h.cleanup)

  it("is luadgramd_VERSION_amd64.deb, VERSION the project's", function()
    local version = h.read(h.src .. "/CMakeLists.txt"):match("project%(luadgramd VERSION ([%d.]+)")
    assert.is_string(version)
    assert.are.equal(work .. "/luadgramd_" .. version .. "_amd64.deb", deb)
    local changelog = lines("cd " .. h.shq(h.src) .. " && dpkg-parsechangelog -S Version")
    assert.are.same({ version }, changelog)
    local v = lines(h.shq(root .. "/usr/sbin/luadgramd") .. " -V")
    assert.is_truthy(v[1]:find("^luadgramd " .. version:gsub("%.", "%%.") .. " "), v[1])
  end)

  it("holds the layout of the issue, and nothing else", function()
    local want = {
      "etc/logrotate.d/luadgramd",
      "etc/luadgramd/luadgramd.conf",
      "lib/systemd/system/luadgramd.service",
      "lib/systemd/system/luadgramd.socket",
      "usr/sbin/luadgramd",
      "usr/share/doc/luadgramd/README.md.gz",
      "usr/share/doc/luadgramd/changelog.gz",
      "usr/share/doc/luadgramd/copyright",
      "usr/share/man/man5/luadgramd.conf.5.gz",
      "usr/share/man/man8/luadgramd.8.gz",
    }
    for _, f in ipairs(lines("cd " .. h.shq(h.src) .. " && ls conf/examples/*.conf")) do
      want[#want + 1] = "usr/share/doc/luadgramd/examples/" .. f:match("[^/]+$")
    end
    for _, f in ipairs(lines("cd " .. h.shq(h.src) .. " && git ls-files scripts")) do
      want[#want + 1] = "usr/share/luadgramd/" .. f
    end
    table.sort(want)
    local got = lines("cd " .. h.shq(root) .. " && find . -type f | sed 's|^\\./||' | sort")
    assert.are.same(want, got)
  end)

  it("has its configuration as conffiles, computed dependencies and lua-cjson", function()
    local ctl = work .. "/control"
    assert(run("dpkg-deb -e " .. h.shq(deb) .. " " .. h.shq(ctl)) == 0)
    assert.are.same({ "/etc/logrotate.d/luadgramd", "/etc/luadgramd/luadgramd.conf" },
                    lines("sort " .. h.shq(ctl .. "/conffiles")))
    local depends = lines("dpkg-deb -f " .. h.shq(deb) .. " Depends")[1]
    for _, p in ipairs { "libc6", "liblua5.4-0", "libevent-core-2.1-7", "libevent-pthreads-2.1-7", "libsmi2ldbl", "libssl3",
                         "libnats3.4", "libhiredis0.14", "zlib1g", "lua-cjson" } do
      assert.is_truthy(depends:find("%f[%w]" .. p:gsub("%p", "%%%0") .. "%f[^%w.-]"),
                       "Depends lacks " .. p .. ": " .. depends)
    end
    -- the service is enabled on install; it is started only where systemd runs; the socket
    -- unit is neither enabled nor started
    local postinst = h.read(ctl .. "/postinst")
    assert.is_truthy(postinst:find("deb-systemd-helper enable 'luadgramd.service'", 1, true),
                     postinst)
    assert.is_truthy(postinst:find("if [ -d /run/systemd/system ]; then\n"
                                   .. "\t\tsystemctl --system daemon-reload", 1, true), postinst)
    assert.is_nil(postinst:find("invoke $_dh_action 'luadgramd.socket'", 1, true), postinst)
    -- (--no-enable: enabled again on upgrade only where the admin had enabled it)
    assert.is_truthy(postinst:find("if deb-systemd-helper debian-installed 'luadgramd.socket'",
                                   1, true), postinst)
    -- the test build's hook is not in the package
    local code = run("grep -c test_block_in_c " .. h.shq(root .. "/usr/sbin/luadgramd"))
    assert.are.equal(1, code, "luadgram.test_block_in_c is in the packaged binary")
  end)

  it("has units with /usr paths and the watchdog, a loopback-only configuration", function()
    local unit = h.read(root .. "/lib/systemd/system/luadgramd.service")
    assert.is_truthy(unit:find("\nExecStart=/usr/sbin/luadgramd -c /etc/luadgramd/luadgramd.conf\n",
                               1, true), unit)
    assert.is_truthy(unit:find("\nExecStartPre=/usr/sbin/luadgramd -t -c "
                               .. "/etc/luadgramd/luadgramd.conf\n", 1, true), unit)
    assert.is_truthy(unit:find("\nWatchdogSec=30s\n", 1, true), unit)
    assert.is_nil(unit:find("/usr/local", 1, true), unit)
    local conf = h.read(root .. "/etc/luadgramd/luadgramd.conf")
    local addrs = {}
    for a in conf:gmatch('"(%d+%.%d+%.%d+%.%d+):%d+"') do addrs[#addrs + 1] = a end
    for a in conf:gmatch('"%[([^%]]*)%]:%d+"') do addrs[#addrs + 1] = a end
    assert.is_true(#addrs >= 7, "addresses found: " .. table.concat(addrs, " "))
    for _, a in ipairs(addrs) do
      assert.is_truthy(a == "127.0.0.1" or a == "::1", "not loopback: " .. a)
    end
    assert.is_nil(conf:find("unix:", 1, true))
    assert.is_nil(conf:find("raw:", 1, true))
  end)

  it("has no lintian error or warning", function()
    local code, out = run("lintian --fail-on error,warning --no-tag-display-limit "
                          .. h.shq(deb))
    assert.are.equal(0, code, out)
    for l in out:gmatch("[^\n]+") do
      assert.is_falsy(l:match("^[EW]: "), out)
    end
  end)

  it("runs the packaged binary on the packaged configuration (-t, then serving)", function()
    -- Overrides, all outside the configuration's own text: the scripts' folder (the
    -- package's, unpacked here rather than in /usr/share), the collectors' folder
    -- (LOGS_DIRECTORY, as systemd sets it) and free ports in place of the fixed ones
    -- (another daemon may hold them on a shared machine).
    local text, ports, mport =
      h.shipped_conf_on_free_ports(h.read(root .. "/etc/luadgramd/luadgramd.conf"))
    text = "script_path = " .. h.lua(root .. "/usr/share/luadgramd/scripts") .. "\n" .. text
    local dir, logs = h.tmpdir(), h.tmpdir()
    h.write(dir .. "/luadgramd.conf", text)
    local bin = root .. "/usr/sbin/luadgramd"
    local code, out = run("LOGS_DIRECTORY=" .. h.shq(logs) .. " " .. h.shq(bin) .. " -t -c "
                          .. h.shq(dir .. "/luadgramd.conf"))
    assert.are.same({ 0, dir .. "/luadgramd.conf: configuration is valid (3 listeners)\n" },
                    { code, out })

    local d = h.start { dir = dir, text = text, bin = bin, env = { LOGS_DIRECTORY = logs },
                        expect = { echo = 2, snmptrap = 2, syslog = 2 } }
    local c4, c6 = h.udp("inet", "127.0.0.1"), h.udp("inet6", "::1")
    finally(function() c4:close() c6:close() end)
    assert.are.equal("packaged", c4:ask("127.0.0.1", ports[1], "packaged", 5),
                     d:explain("no echo over IPv4"))
    assert.are.equal("packaged 6", c6:ask("::1", ports[1], "packaged 6", 5),
                     d:explain("no echo over IPv6"))
    assert.are.equal(2, h.wait_metric(mport, "luadgramd_handled_total", "echo", 2, 5),
                     d:explain("luadgramd_handled_total of echo"))
    -- the syslog collector writes into LOGS_DIRECTORY
    local s = h.udp("inet", "127.0.0.1")
    finally(function() s:close() end)
    s:send("127.0.0.1", ports[3], "<13>1 2026-12-03T12:00:00Z host app - - - from the package")
    assert.is_truthy(h.wait_for(function()
      return (h.read(logs .. "/syslog.jsonl") or ""):find("from the package", 1, true)
    end, 5), d:explain("no line in %s/syslog.jsonl", logs))
    local how, rc = d:stop(5)
    assert.are.same({ "exit", 0 }, { how, rc }, d:explain("stop"))
  end)
end)
