-- make bench-openresty: the library inside nginx against what an OpenResty
-- user would write by hand, on the hot path of a busy site (issue 17):
--
--   /static   `return 200` (the app server's floor)
--   /capture  ngx.location.capture -> proxy_pass to a keep-alive upstream with a
--             fixed Bearer header, then cjson.decode
--   /transport the library's cosocket transport alone, then cjson.decode
--   /lib      client:classification(id), token in a lua_shared_dict (cosockets)
--   /lib-subrequest  the same through avalara.openresty.subrequest (an internal
--             proxy_pass location: nginx's own HTTP client)
--   /lib-classic, /lib-subrequest-classic  the same two on the classic binding
--             (the two above take the default under LuaJIT: the FFI binding)
--
-- One app worker pinned to BENCH_CPU; the fixed-body backend
-- (bench/fixed_server.lua) and wrk (-c16) on the other CPU. Each location
-- BENCH_ROUNDS (min 3) rounds of BENCH_SECONDS (5) s, alternating; medians of
-- req/s and p99 go to the "openresty" section of bench/RESULTS.md.
local emu = require "spec.support.emulator"
local fixed = require "bench.fixed_server"
local results = require "bench.results"
local app_nginx = require "bench.openresty_app"

local ROUNDS = math.max(3, tonumber(os.getenv("BENCH_ROUNDS")) or 3)
local SECONDS = tonumber(os.getenv("BENCH_SECONDS")) or 5
local OUT = os.getenv("BENCH_OUT") or "bench/RESULTS.md"
local APP_CPU = os.getenv("BENCH_CPU") or "1"
local OTHER_CPU = APP_CPU == "0" and "1" or "0"
local LOCATIONS = { "static", "capture", "transport", "lib", "lib-classic", "lib-subrequest",
  "lib-subrequest-classic" }

local util = require "bench.util"
local log, capture, median = util.log, util.capture, util.median



-- wrk's "Requests/sec" and the 99th percentile latency (ms).
local function wrk(url)
  local out = capture(("taskset -c %s wrk -t1 -c16 -d%ds --latency %s"):format(OTHER_CPU, SECONDS, url))
  local rps = tonumber(out:match("Requests/sec:%s*([%d.]+)"))
  local v, unit = out:match("\n%s*99%%%s+([%d.]+)(%a+)")
  assert(rps and v, "wrk failed: " .. out)
  local ms = tonumber(v) * ({ us = 0.001, ms = 1, s = 1000 })[unit]
  local errors = out:match("Non%-2xx or 3xx responses: (%d+)")
  if errors then error(url .. ": " .. errors .. " failed responses") end
  return rps, ms
end

local function report(m)
  local L = {}
  local function add(s) L[#L + 1] = s end
  add("## OpenResty hot path (bench/openresty_hot.lua)")
  add("")
  add(("- %s; %s; one app worker on CPU %s; the fixed-body backend and `wrk -t1 -c16 -d%ds` on CPU %s;"
    .. " medians of %d rounds."):format(os.date("!%Y-%m-%d %H:%M UTC"), capture("nginx -v"):gsub("%s+$", ""),
    APP_CPU, SECONDS, OTHER_CPU, ROUNDS))
  add("")
  add("| location | what it does | req/s | p99 | ÷ /capture |")
  add("|---|---|---:|---:|---:|")
  local what = {
    static = "`return 200` (the app server's floor)",
    capture = "`ngx.location.capture` → `proxy_pass` to a keep-alive upstream, fixed Bearer header, `cjson.decode`",
    transport = "the library's cosocket transport alone (a fixed request table), `cjson.decode`",
    lib = "`client:classification(id)`, token in a `lua_shared_dict` (cosockets), FFI binding",
    ["lib-classic"] = "the same on the classic binding",
    ["lib-subrequest"] = "the same through `avalara.openresty.subrequest` (an internal `proxy_pass` location), FFI",
    ["lib-subrequest-classic"] = "the same on the classic binding",
  }
  for _, loc in ipairs(LOCATIONS) do
    add(("| `/%s` | %s | %.0f | %.2f ms | %.2f× |"):format(loc, what[loc], m[loc].rps, m[loc].p99,
      m[loc].rps / m.capture.rps))
  end
  add("")
  -- issue 27's goals: /lib >= 0.90x /capture with p99 within +10 %, the subrequest transport >= 0.95x
  for _, g in ipairs { { "lib", 0.90, true }, { "lib-classic", 0.90, true }, { "lib-subrequest", 0.95 },
    { "lib-subrequest-classic", 0.95 } } do
    local loc, ratio, p99 = g[1], m[g[1]].rps / m.capture.rps, m[g[1]].p99
    local met = ratio >= g[2] and (not g[3] or p99 <= m.capture.p99 * 1.1)
    add(("Goal, `/%s` ≥ %.2f× `/capture` in req/s%s: %.2f×, p99 %.2f ms against %.2f ms (%s)."):format(loc, g[2],
      g[3] and " and p99 ≤ `/capture`'s + 10 %" or "", ratio, p99, m.capture.p99 * 1.1, met and "met" or "**not met**"))
    add("")
  end
  return table.concat(L, "\n")
end

-- the backend on the other CPU: children inherit this process's affinity
local function pinned(cpu, f)
  local stat = assert(io.open("/proc/self/stat")):read("*n")
  os.execute(("taskset -p -c %s %d >/dev/null"):format(cpu, stat))
  local ok, v = pcall(f)
  os.execute(("taskset -p -c %s %d >/dev/null"):format(APP_CPU, stat))
  if not ok then error(v, 0) end
  return v
end

local e = emu.start { workers = 1 }
local cert_dir = e.ca_file:match("^(.*)/[^/]+$")
local backend = pinned(OTHER_CPU, function() return fixed.start(cert_dir) end)
local app
local ok, err = pcall(function()
  app = app_nginx.start(tonumber(backend.http_url:match(":(%d+)$")), { cpu = APP_CPU })
  local rps, p99 = {}, {}
  for _, loc in ipairs(LOCATIONS) do
    rps[loc], p99[loc] = {}, {}
    wrk(app.url .. "/" .. loc) -- warm: connections, the token, the JIT
  end
  for round = 1, ROUNDS do
    for i = 1, #LOCATIONS do
      local loc = LOCATIONS[round % 2 == 1 and i or #LOCATIONS + 1 - i]
      local r, p = wrk(app.url .. "/" .. loc)
      table.insert(rps[loc], r)
      table.insert(p99[loc], p)
      log("/%s round %d: %.0f req/s, p99 %.2f ms", loc, round, r, p)
    end
  end
  local m = {}
  for _, loc in ipairs(LOCATIONS) do m[loc] = { rps = median(rps[loc]), p99 = median(p99[loc]) } end
  local text = report(m)
  results.write(OUT, "openresty", text)
  io.stdout:write(text, "\n")
end)
if app then app:stop() end
backend:stop()
e:stop()
if not ok then error(err, 0) end
