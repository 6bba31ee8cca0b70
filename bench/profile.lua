-- make bench-profile: where the time of a call goes, in instructions
-- (callgrind), layer by layer; the "profile" section of bench/RESULTS.md.
--
-- Run with LUA_PATH and LUA_CPATH set to this checkout (make does).
-- Instructions, not seconds: they do not depend on the machine's load, and
-- two runs of N1 and N2 calls give the cost of one call exactly (their
-- difference over N2 - N1: start-up, warm-up and the first connection
-- cancel out). Against the fixed-body server (bench/fixed_server.lua):
--
--   plain Lua 5.4   the C floor (percall_libcurl.c), Debian lua-curl +
--                   lua-cjson (Lua 5.1), `core.request`,
--                   `client:classification`, and the core's own functions
--                   (callgrind's inclusive cost of each, also differenced)
--   LuaJIT          lua-curl + lua-cjson, the FFI binding's `request` and
--                   the client on it, `core.request` and the client on the
--                   classic binding (AVALARA_BINDING=classic)
--   inside nginx    /static, /capture, /transport, /lib, /lib-subrequest of
--                   bench/openresty_app.lua (the last two on each binding:
--                   FFI, and -classic), one process (master_process off)
--                   under callgrind, curl sending the requests on 4
--                   keep-alive connections; the goal of issue 27 (≤ 85k a
--                   request) for each. BENCH_PROFILE_PART=nginx runs this
--                   part only (printed, not written to RESULTS.md).
local emu = require "spec.support.emulator"
local fixed = require "bench.fixed_server"
local results = require "bench.results"
local app_nginx = require "bench.openresty_app"
local util = require "bench.util"
local log, capture = util.log, util.capture

local OUT = os.getenv("BENCH_OUT") or "bench/RESULTS.md"
local PART = os.getenv("BENCH_PROFILE_PART") -- "nginx": that part only
local N1, N2 = 200, tonumber(os.getenv("BENCH_PROFILE_CALLS")) or 1200
local R1, R2 = 500, tonumber(os.getenv("BENCH_PROFILE_REQUESTS")) or 2500
local TOKEN = "0123456789abcdef0123456789abcdef"
local PATH = "/api/v2/companies/1001/classifications/hs/1001-TS-1-US"

-- The core's functions whose inclusive cost is shown (the part of a call each is).
local FUNCTIONS = {
  { "curl_easy_perform", "libcurl's transfer (`curl_easy_perform`)" },
  { "outcome", "the response to Lua: JSON → tables (`outcome`)" },
  { "avl_request_prepare", "reading the request table, building the request (`avl_request_prepare`)" },
}

local function tmpfile()
  local p = os.tmpname()
  os.remove(p)
  return p
end

-- callgrind's total and the inclusive cost of FUNCTIONS in one output file.
local function read_profile(file)
  local text = emu.read_file(file)
  local total = tonumber(text:match("\ntotals: (%d+)") or text:match("\nsummary: (%d+)"))
  local parts = {}
  local annotated = capture("callgrind_annotate --inclusive=yes " .. file)
  for _, f in ipairs(FUNCTIONS) do
    -- a function can be listed twice (by its file and as ???): the larger is the inclusive cost
    parts[f[1]] = 0
    for n in annotated:gmatch("\n%s*([%d,]+) %([^)]*%)%s+%S*:" .. f[1] .. "[%s'\n]") do
      parts[f[1]] = math.max(parts[f[1]], tonumber((n:gsub(",", ""))))
    end
  end
  os.remove(file)
  return total, parts
end

-- `env`: a prefix ("env NAME=value ") for valgrind itself, which does not follow an exec.
local function callgrind(cmd, env)
  local file = tmpfile()
  local out, ok = capture((env or "") .. "valgrind --tool=callgrind --callgrind-out-file=" .. file .. " " .. cmd)
  if not ok then error(cmd .. " failed under callgrind: " .. out) end
  return read_profile(file)
end

-- Instructions a call of a percall contender, and of each of FUNCTIONS.
local function per_call(cmd, url, cafile, env)
  local t1, p1 = callgrind(("%s '%s' %s '%s' %d"):format(cmd, url, TOKEN, cafile, N1), env)
  local t2, p2 = callgrind(("%s '%s' %s '%s' %d"):format(cmd, url, TOKEN, cafile, N2), env)
  local parts = {}
  for _, f in ipairs(FUNCTIONS) do parts[f[1]] = (p2[f[1]] - p1[f[1]]) / (N2 - N1) end
  return (t2 - t1) / (N2 - N1), parts
end

-- Instructions a request of an app nginx location.
local function per_request(backend_port, loc)
  local totals = {}
  for _, n in ipairs { R1, R2 } do
    local file = tmpfile()
    local app = app_nginx.start(backend_port, { wrap = "valgrind --tool=callgrind --callgrind-out-file=" .. file })
    local urls = {}
    for i = 1, n do urls[i] = app.url .. "/" .. loc end
    local list = tmpfile()
    local f = assert(io.open(list, "w"))
    f:write("url = \"", table.concat(urls, "\"\nurl = \""), "\"\n")
    f:close()
    local out = capture("curl -sS -o /dev/null --parallel --parallel-max 4 -K " .. list .. " -w '%{http_code}\\n'")
    os.remove(list)
    app:stop()
    local _, good = out:gsub("200\n", "")
    if good ~= n then error("/" .. loc .. ": " .. (n - good) .. " requests failed: " .. out:sub(1, 300)) end
    totals[#totals + 1] = read_profile(file)
  end
  return (totals[2] - totals[1]) / (R2 - R1)
end

local function k(n) return ("%.1fk"):format(n / 1000) end

local e = emu.start { workers = 1 }
local cafile = e.ca_file
local server = fixed.start(cafile:match("^(.*)/[^/]+$"))
local ok, err = pcall(function()
  local L = {}
  local function add(s) L[#L + 1] = s end
  add("## Where a call's time goes (bench/profile.lua)")
  add("")
  add(("- %s; %s; instructions counted by callgrind, a call's share as the difference of runs of %d and %d"
    .. " calls (start-up and warm-up cancel out); the fixed-body server of bench/fixed_server.lua."):format(
    os.date("!%Y-%m-%d %H:%M UTC"), (capture("valgrind --version"):gsub("%s+$", "")), N1, N2)
    .. (" Inside nginx: runs of %d and %d requests."):format(R1, R2))
  add("")
  if PART ~= "nginx" then
    local SYSTEM = "env -u LUA_PATH -u LUA_CPATH " -- Debian's modules only
    local JIT = "env LUA_CPATH='build/luajit/?.so;;' "
    local CLASSIC = "env AVALARA_BINDING=classic LUA_CPATH='build/luajit/?.so;;' "
    local m, core_parts, floor = {}, {}, nil
    -- one table of contenders: each row's instructions a call and its ratio to the floor
    local function table_of(title, rows)
      add(("| %s | HTTP instructions/call | × floor | HTTPS instructions/call | × floor |"):format(title))
      add("|---|---:|---:|---:|---:|")
      for _, r in ipairs(rows) do
        local row = {}
        for _, scheme in ipairs { "http", "https" } do
          local url = (scheme == "http" and server.http_url or server.https_url) .. PATH
          local n, parts = per_call(r[2], url, cafile, r.env)
          row[scheme] = n
          if r.core then core_parts[scheme] = parts end
          log("profile %s %s: %.0f instructions a call", r[1], scheme, n)
        end
        floor = floor or row
        m[#m + 1] = row
        add(("| %s | %s | %.2f | %s | %.2f |"):format(r[1], k(row.http), row.http / floor.http, k(row.https),
          row.https / floor.https))
      end
    end
    table_of("plain Lua 5.4", {
      { "C, one reused libcurl handle (the floor)", "build/bench/percall_libcurl" },
      { "Debian lua-curl + lua-cjson (Lua 5.1)", "lua5.1 bench/percall.lua luacurl", env = SYSTEM },
      { "`core.request`", "lua5.4 bench/percall.lua core", core = true },
      { "`client:classification(id)`", "lua5.4 bench/percall.lua client" },
    })
    add("")
    local jit_rows = {
      { "Debian lua-curl + lua-cjson", "luajit bench/percall.lua luacurl", env = SYSTEM },
      { "`core.request` (classic binding)", "luajit bench/percall.lua core", env = CLASSIC },
      { "`client:classification(id)` (classic binding)", "luajit bench/percall.lua client", env = CLASSIC },
    }
    if capture(JIT .. "luajit -e 'io.write(type(select(2, pcall(require, \"avalara.ffi\"))))'") == "table" then
      table.insert(jit_rows, { "the FFI binding's `request`", "luajit bench/percall.lua core", env = JIT })
      table.insert(jit_rows, { "`client:classification(id)` (FFI binding)", "luajit bench/percall.lua client",
        env = JIT })
    end
    table_of("LuaJIT outside nginx", jit_rows)
    add("")
    add("Inside `core.request` (inclusive instructions a call; the rest is the Lua call and the exchange's"
      .. " bookkeeping):")
    add("")
    add("| part | HTTP | HTTPS |")
    add("|---|---:|---:|")
    for _, f in ipairs(FUNCTIONS) do
      add(("| %s | %s | %s |"):format(f[2], k(core_parts.http[f[1]]), k(core_parts.https[f[1]])))
    end
    add(("| the floor's whole call, for comparison | %s | %s |"):format(k(floor.http), k(floor.https)))
    add("")
  end
  add("| inside nginx (LuaJIT), one worker | instructions/request | × `/capture` |")
  add("|---|---:|---:|")
  local port = tonumber(server.http_url:match(":(%d+)$"))
  local per, locations = {}, { "static", "capture", "transport", "lib", "lib-classic", "lib-subrequest",
    "lib-subrequest-classic" }
  for _, loc in ipairs(locations) do
    per[loc] = per_request(port, loc)
    log("profile /%s: %.0f instructions a request", loc, per[loc])
  end
  for _, loc in ipairs(locations) do add(("| `/%s` | %s | %.2f |"):format(loc, k(per[loc]), per[loc] / per.capture)) end
  add("")
  for _, loc in ipairs { "lib", "lib-classic", "lib-subrequest", "lib-subrequest-classic" } do
    add(("Goal, `/%s` ≤ 85k instructions a request: %s (%s)."):format(loc, k(per[loc]),
      per[loc] <= 85000 and "met" or "**not met**"))
  end
  local text = table.concat(L, "\n")
  if PART ~= "nginx" then results.write(OUT, "profile", text) end
  io.stdout:write(text, "\n")
end)
server:stop()
e:stop()
if not ok then error(err, 0) end
