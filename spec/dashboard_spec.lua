-- spec/dashboard_spec.lua: contrib/prometheus/luadgramd-alerts.yml passes
-- `promtool check rules`, every query of contrib/grafana/luadgramd-dashboard.json is valid
-- PromQL (promtool, as recording rules), and every metric name the rules and the dashboard
-- use (plain names, and __name__=~ patterns) is in a live /metrics scrape of the daemon
-- running conf/luadgramd.conf, plus one listener publishing to a real redis-server for the
-- outputs' metrics (conf/luadgramd.conf has no output). Needs promtool (Debian package
-- prometheus: bash .ci/deps package) and redis-server (bash .ci/deps test).
local h = require "helpers"
local S = require "servers"
local cjson = require "cjson"

local ALERTS = h.src .. "/contrib/prometheus/luadgramd-alerts.yml"
local DASHBOARD = h.src .. "/contrib/grafana/luadgramd-dashboard.json"

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok and 0 or code, out
end

local function need_promtool()
  assert(os.execute("command -v promtool >/dev/null 2>&1") == true,
         "promtool is not installed (Debian package prometheus: bash .ci/deps package)")
end

-- The queries of the rules file (its expr: values, folded block scalars included).
local function rule_exprs()
  local out, cur, indent = {}, nil, nil
  for line in (h.read(ALERTS) .. "\n"):gmatch("([^\n]*)\n") do
    local ind, rest = line:match("^(%s*)expr:%s*(.*)$")
    if ind then
      if rest == ">-" or rest == ">" or rest == "|" then
        cur, indent = {}, #ind
      else
        out[#out + 1] = rest
        cur = nil
      end
    elseif cur then
      local lind = #line:match("^%s*")
      if line:match("^%s*$") or lind <= indent then
        out[#out + 1] = table.concat(cur, " ")
        cur = nil
      else
        cur[#cur + 1] = line:match("^%s*(.-)%s*$")
      end
    end
  end
  return out
end

local function dashboard_exprs()
  local d = cjson.decode(h.read(DASHBOARD))
  local out = {}
  for _, p in ipairs(d.panels) do
    for _, t in ipairs(p.targets or {}) do out[#out + 1] = t.expr end
  end
  for _, v in ipairs(d.templating.list) do
    if v.query and v.query.query then out[#out + 1] = v.query.query end
  end
  return out, d
end

-- Metric names an expression uses: { plain = {name...}, patterns = {lua pattern...} }.
-- A __name__=~"re" regex may hold one (a|b|c) group and .+ / .* wildcards only.
local function names_of(expr)
  local plain, patterns = {}, {}
  local rest = expr:gsub('__name__=~"([^"]*)"', function(re)
    local pre, alts, post = re:match("^(.-)%(([^()]*)%)(.*)$")
    local list = {}
    if pre then
      for a in alts:gmatch("[^|]+") do list[#list + 1] = pre .. a .. post end
    else
      list[1] = re
    end
    for _, r in ipairs(list) do
      assert(not r:find("[%[%]()|?\\{}^$]"), "regex too rich for this spec: " .. re)
      patterns[#patterns + 1] = "^" .. r .. "$"
    end
    return ""
  end)
  rest = rest:gsub('"[^"]*"', "") -- label values
  for name in rest:gmatch("[%a_:][%w_:]*") do
    if name:match("^luadgramd_") or name:match("^process_") then plain[#plain + 1] = name end
  end
  return { plain = plain, patterns = patterns }
end

describe("alerts and dashboard", function()
  after_each(S.cleanup)

  it("the alert rules pass promtool check rules", function()
    need_promtool()
    local code, out = run("promtool check rules " .. h.shq(ALERTS))
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("SUCCESS: 7 rules found", 1, true), out)
    local alerts = {}
    for a in h.read(ALERTS):gmatch("alert:%s*(%S+)") do alerts[#alerts + 1] = a end
    assert.are.same({ "LuadgramdKernelDrops", "LuadgramdHandlerErrors", "LuadgramdReloadFailed",
                      "LuadgramdSyslogOutputDropping", "LuadgramdSnmptrapOutputErrors",
                      "LuadgramdOutputSpooling", "LuadgramdOutputDropping" }, alerts)
  end)

  it("the dashboard is importable JSON whose every query is valid PromQL", function()
    need_promtool()
    local exprs, d = dashboard_exprs()
    assert.are.equal("luadgramd", d.uid)
    assert.are.equal("DS_PROMETHEUS", d.__inputs[1].name)
    assert.are.equal(20, #exprs - 1, "queries in the panels")
    local ids = {}
    for _, p in ipairs(d.panels) do
      assert.is_nil(ids[p.id], "panel id twice: " .. p.id)
      ids[p.id] = true
    end
    -- Grafana's variables as Prometheus would see them once Grafana filled them in
    local rules = { "groups:", "  - name: dashboard", "    rules:" }
    for i, e in ipairs(exprs) do
      if not e:match("^label_values") then
        e = e:gsub("%$__rate_interval", "5m"):gsub("%$__range", "1h"):gsub("%$instance", ".*")
        rules[#rules + 1] = "      - record: dashboard_query_" .. i
        rules[#rules + 1] = "        expr: " .. string.format("%q", e)
      end
    end
    local file = h.tmpdir() .. "/dashboard-rules.yml"
    h.write(file, table.concat(rules, "\n") .. "\n")
    local code, out = run("promtool check rules " .. h.shq(file))
    assert.are.equal(0, code, out .. "\n" .. table.concat(rules, "\n"))
  end)

  -- The names (plain, and __name__=~ patterns) the rules and the dashboard use, checked
  -- against the issue's list of what they must show.
  local function used_names()
    local used, where = {}, {}
    local function add(list, from)
      for _, e in ipairs(list) do
        local u = names_of(e)
        for _, name in ipairs(u.plain) do used[name] = "plain" where[name] = from end
        for _, p in ipairs(u.patterns) do used[p] = "pattern" where[p] = from end
      end
    end
    add(rule_exprs(), "rules")
    add(dashboard_exprs(), "dashboard")
    for _, name in ipairs { "luadgramd_received_total", "luadgramd_handled_total",
                            "luadgramd_handler_errors_total", "luadgramd_kernel_drops_total",
                            "luadgramd_truncated_total", "luadgramd_send_errors_total",
                            "luadgramd_send_dropped_total", "luadgramd_reloads_total",
                            "luadgramd_reload_failures_total", "luadgramd_lua_memory_bytes",
                            "^luadgramd_user_syslog_.+_dropped$",
                            "^luadgramd_user_snmptrap_.+_output_errors$",
                            "luadgramd_output_spool_bytes", "luadgramd_output_dropped_total" } do
      assert.is_truthy(used[name], "not used by the rules or the dashboard: " .. name)
    end
    return used, where
  end

  -- Starts the daemon on conf/luadgramd.conf as it is, in a folder of its own (its ../var is
  -- that folder's), with free ports in place of its fixed ones and the checkout's scripts,
  -- plus the listeners of `extra` (h.config_text's). Returns it and its metrics port.
  local function start_default(extra)
    local text, _, mport = h.shipped_conf_on_free_ports(h.read(h.src .. "/conf/luadgramd.conf"))
    text = "script_path = " .. h.lua(h.src .. "/scripts") .. "\n" .. text
    local expect = { echo = 2, snmptrap = 2, syslog = 2 }
    if extra then
      text = text .. h.config_text { listeners = extra }:gsub("^.-\n(listen)", "%1")
      for _, l in ipairs(extra) do expect[l.name] = 1 end
    end
    local top = h.tmpdir()
    assert(os.execute("mkdir " .. h.shq(top .. "/conf")))
    return h.start { dir = top .. "/conf", text = text, expect = expect }, mport
  end

  -- Waits (5 s) until every used name is in the scrape: as a series, or (declared) also as
  -- a family the daemon declares with # TYPE and has no series of yet. Fails with those
  -- missing.
  local function check_scrape(d, mport, declared)
    local used, where = used_names()
    local missing
    h.wait_for(function()
      local scrape = h.metrics(mport) or ""
      local names = {}
      for name in scrape:gmatch("\n([%a_:][%w_:]*)[{ ]") do names[name] = true end
      if declared then
        for name in scrape:gmatch("\n# TYPE ([%a_:][%w_:]*) ") do names[name] = true end
      end
      missing = {}
      for u, kind in pairs(used) do
        local found = false
        if kind == "plain" then
          found = names[u] or false
        else
          for name in pairs(names) do
            if name:match(u) then found = true break end
          end
        end
        if not found then missing[#missing + 1] = u .. " (" .. where[u] .. ")" end
      end
      return #missing == 0
    end, 5)
    table.sort(missing)
    assert.are.same({}, missing, d:explain("not in the scrape: %s", table.concat(missing, ", ")))
  end

  it("uses only metrics a live scrape of conf/luadgramd.conf has", function()
    -- the outputs' families are declared there; their series come with an output (below)
    local d, mport = start_default()
    check_scrape(d, mport, true)
  end)

  it("has a series for every name once conf/luadgramd.conf has an output too", function()
    -- conf/luadgramd.conf has no output (it needs a server): one publisher to redis
    local redis = S.redis()
    local d, mport = start_default { {
      name = "out", bind = "127.0.0.1:" .. h.free_port(),
      handler = h.src .. "/spec/fixtures/publisher.lua",
      options = { redis = { server = "127.0.0.1:" .. redis.port, stream = "dash" } },
    } }
    check_scrape(d, mport, false)
  end)
end)
