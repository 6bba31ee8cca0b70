-- make bench-percall: the per-call cost of each layer against plain
-- libcurl, on a server that answers every request with the same bytes
-- (bench/fixed_server.lua), so the figures are the clients' own cost.
-- Client and server share one CPU (the Makefile's taskset). Every figure is
-- the median of BENCH_ROUNDS rounds, the contenders alternating; the
-- section "percall-fixed" of bench/RESULTS.md is rewritten.
--
-- With BENCH_BEFORE_ROOT (a checkout of an earlier revision, built), its
-- core and client run too, in the same rounds: the before and after.
local emu = require "spec.support.emulator"
local fixed = require "bench.fixed_server"
local results = require "bench.results"
local core = require "avalara.core"

local ROUNDS = tonumber(os.getenv("BENCH_ROUNDS")) or 5
local CALLS = tonumber(os.getenv("BENCH_CALLS")) or 20000
local OUT = os.getenv("BENCH_OUT") or "bench/RESULTS.md"
local BEFORE = os.getenv("BENCH_BEFORE_ROOT")
local BEFORE_REV = os.getenv("BENCH_BEFORE") or "?"
local TOKEN = "0123456789abcdef0123456789abcdef"
local PATH = "/api/v2/companies/1001/classifications/hs/1001-TS-1-US"

local util = require "bench.util"
local log, median, capture = util.log, util.median, util.capture

local function env(root)
  return ("env LUA_PATH='%s/lua/?.lua;%s/lua/?/init.lua;./?.lua;;' LUA_CPATH='%s/build/lua5.4/?.so;;' "):format(
    root, root, root)
end

local HERE = emu.repo_root()
local CONTENDERS = {
  { id = "libcurl", label = "C, one reused libcurl easy handle (the floor)", cmd = "build/bench/percall_libcurl" },
  { id = "luacurl", label = "Debian lua-curl (Lua 5.1) + lua-cjson",
    cmd = "env -u LUA_PATH -u LUA_CPATH lua5.1 bench/percall.lua luacurl" },
  { id = "core", label = "`core.request`", cmd = env(HERE) .. "lua5.4 bench/percall.lua core" },
  { id = "client", label = "`client:classification(id)`", cmd = env(HERE) .. "lua5.4 bench/percall.lua client" },
}
if BEFORE then
  table.insert(CONTENDERS, { id = "core_before", label = "`core.request` at " .. BEFORE_REV,
    cmd = env(BEFORE) .. "lua5.4 bench/percall.lua core" })
  table.insert(CONTENDERS, { id = "client_before", label = "`client:classification(id)` at " .. BEFORE_REV,
    cmd = env(BEFORE) .. "lua5.4 bench/percall.lua client" })
end

local function rate(c, url, cafile)
  local out, ok = capture(("%s '%s' %s '%s' %d"):format(c.cmd, url, TOKEN, cafile, CALLS))
  local calls, secs = out:match("(%d+)%s+([%d.]+)%s*$")
  if not ok or not calls then error(c.id .. " failed: " .. out) end
  return tonumber(calls) / tonumber(secs)
end

local function measure(server, cafile)
  local out = {}
  for _, scheme in ipairs { "http", "https" } do
    local url = (scheme == "http" and server.http_url or server.https_url) .. PATH
    local rates = {}
    for _, c in ipairs(CONTENDERS) do rates[c.id] = {} end
    for round = 1, ROUNDS do
      for i = 1, #CONTENDERS do
        local c = CONTENDERS[round % 2 == 1 and i or #CONTENDERS + 1 - i]
        local r = rate(c, url, cafile)
        table.insert(rates[c.id], r)
        log("fixed %s %s round %d: %.0f calls/s", scheme, c.id, round, r)
      end
    end
    out[scheme] = {}
    for _, c in ipairs(CONTENDERS) do out[scheme][c.id] = median(rates[c.id]) end
  end
  return out
end

local function us(r) return 1e6 / r end

local function report(m)
  local L = {}
  local function add(s) L[#L + 1] = s end
  add("## Per-call cost on a fixed-body server (bench/percall_fixed.lua)")
  add("")
  add(("- %s; %s; medians of %d rounds × %d sequential authenticated GETs, each body decoded (the C floor"
    .. " only checks it with `strstr`); client and server pinned to CPU %s; the server is nginx `return`ing"
    .. " the same %d-byte model every time (HTTPS: TLS 1.3, HTTP/2 by ALPN, one connection kept)."):format(
    os.date("!%Y-%m-%d %H:%M UTC"), core.curl_version:match("^%S+"), ROUNDS, CALLS, os.getenv("BENCH_CPU") or "?",
    #fixed.MODEL))
  add("")
  add("| contender | HTTP calls/s | × floor | µs/call | HTTPS calls/s | × floor | µs/call |")
  add("|---|---:|---:|---:|---:|---:|---:|")
  for _, c in ipairs(CONTENDERS) do
    local h, s = m.http[c.id], m.https[c.id]
    add(("| %s | %.0f | %.2f | %.1f | %.0f | %.2f | %.1f |"):format(c.label, h, h / m.http.libcurl, us(h), s,
      s / m.https.libcurl, us(s)))
  end
  add("")
  add("Cost per call of each layer, in µs (the difference of the medians):")
  add("")
  add("| layer | HTTP | HTTPS |" .. (BEFORE and " HTTP before | HTTPS before |" or ""))
  add("|---|---:|---:|" .. (BEFORE and "---:|---:|" or ""))
  local function layer(name, upper, lower, upper_b, lower_b)
    local row = ("| %s | %.1f | %.1f |"):format(name, us(m.http[upper]) - us(m.http[lower]),
      us(m.https[upper]) - us(m.https[lower]))
    if BEFORE then
      row = row .. (" %.1f | %.1f |"):format(us(m.http[upper_b]) - us(m.http[lower_b]),
        us(m.https[upper_b]) - us(m.https[lower_b]))
    end
    add(row)
  end
  layer("the core over libcurl (`core.request` − floor)", "core", "libcurl", "core_before", "libcurl")
  layer("the client over the core (`client:classification` − `core.request`)", "client", "core", "client_before",
    "core_before")
  add("")
  add("| goal | HTTP | HTTPS |")
  add("|---|---:|---:|")
  for _, g in ipairs { { "core", 0.90 }, { "client", 0.85 } } do
    local h, s = m.http[g[1]] / m.http.libcurl, m.https[g[1]] / m.https.libcurl
    local function mark(r) return ("%.2f× %s"):format(r, r >= g[2] and "(met)" or "(**not met**)") end
    add(("| %s ≥ %.2f× the floor | %s | %s |"):format(g[1], g[2], mark(h), mark(s)))
  end
  return table.concat(L, "\n")
end

local e = emu.start { workers = 1 }
local cert_dir = e.ca_file:match("^(.*)/[^/]+$")
local server = fixed.start(cert_dir)
local ok, err = pcall(function()
  local text = report(measure(server, e.ca_file))
  results.write(OUT, "percall-fixed", text)
  io.stdout:write(text, "\n")
end)
server:stop()
e:stop()
if not ok then error(err, 0) end
