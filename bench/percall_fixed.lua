-- make bench-percall: the per-call cost of each layer against plain
-- libcurl, on a server that answers every request with the same bytes
-- (bench/fixed_server.lua), so the figures are the clients' own cost.
-- Every contender runs over HTTP and HTTPS, in one run: each figure is the
-- median of BENCH_ROUNDS rounds in which the contenders alternate (forwards,
-- then backwards); the section "percall-fixed" of BENCH_OUT
-- (bench/RESULTS.md) is rewritten, ending with the goals of issue 27.
--
-- Contenders: the C floor (bench/percall_libcurl.c), Debian lua-curl +
-- lua-cjson (Lua 5.1), LuaSocket + LuaSec + lua-cjson on one kept-alive
-- connection, `core.request` and `client:classification(id)` under Lua 5.4;
-- under LuaJIT: lua-curl, `core.request` or the FFI binding's `request`, and
-- the client (bench/percall.lua says which binding; AVALARA_BINDING chooses,
-- and when the FFI binding loads and the variable is unset both run).
--
-- Pinning: every contender runs under `taskset -c BENCH_CPU`, the server's
-- processes are pinned to BENCH_SERVER_CPU (default: BENCH_CPU, the same CPU).
--
-- With BENCH_BEFORE_ROOT (a checkout of an earlier revision, built), its
-- core and client run too, in the same rounds: the before and after.
local emu = require "spec.support.emulator"
local fixed = require "bench.fixed_server"
local results = require "bench.results"
local core = require "avalara.core"
local util = require "bench.util"
local log, median, capture = util.log, util.median, util.capture

local ROUNDS = tonumber(os.getenv("BENCH_ROUNDS")) or 5
local CALLS = tonumber(os.getenv("BENCH_CALLS")) or 20000
local OUT = os.getenv("BENCH_OUT") or "bench/RESULTS.md"
local BEFORE = os.getenv("BENCH_BEFORE_ROOT")
local BEFORE_REV = os.getenv("BENCH_BEFORE") or "?"
local CPU = os.getenv("BENCH_CPU") or "0"
local SERVER_CPU = os.getenv("BENCH_SERVER_CPU") or CPU
local TOKEN = "0123456789abcdef0123456789abcdef"
local PATH = "/api/v2/companies/1001/classifications/hs/1001-TS-1-US"
local HERE = emu.repo_root()

-- The environment of a contender of this library: the Lua layer of `root`,
-- its C module built for `lua` (lua5.4 or luajit).
local function env(root, lua)
  return ("env LUA_PATH='%s/lua/?.lua;%s/lua/?/init.lua;./?.lua;;' LUA_CPATH='%s/build/%s/?.so;;' "):format(
    root, root, root, lua)
end
local SYSTEM = "env -u LUA_PATH -u LUA_CPATH " -- Debian's modules only

-- The binding LuaJIT contenders get by default: what bench/percall.lua picks.
local function jit_binding()
  local out = capture(env(HERE, "luajit") .. "luajit -e '"
    .. [[local ok, b = pcall(require, "avalara.ffi") io.write(ok and type(b) == "table" and "ffi" or "classic")]]
    .. "'")
  local want = os.getenv("AVALARA_BINDING")
  if want == "classic" then return "classic" end
  return out == "ffi" and "ffi" or "classic"
end
local JIT_BINDING = jit_binding()
local BOTH = JIT_BINDING == "ffi" and not os.getenv("AVALARA_BINDING")

-- id, label, command; `binding`: the binding percall.lua must report.
local CONTENDERS = {
  { id = "libcurl", label = "C, one reused libcurl easy handle (the floor)", cmd = "build/bench/percall_libcurl" },
  { id = "luacurl", label = "Debian lua-curl + lua-cjson (Lua 5.1)",
    cmd = SYSTEM .. "lua5.1 bench/percall.lua luacurl" },
  { id = "luasocket", label = "LuaSocket + LuaSec + lua-cjson, one kept-alive HTTP/1.1 connection (Lua 5.4)",
    cmd = SYSTEM .. "lua5.4 bench/percall.lua luasocket-ka" },
  { id = "core", label = "`core.request` (Lua 5.4)", cmd = env(HERE, "lua5.4") .. "lua5.4 bench/percall.lua core",
    binding = "classic" },
  { id = "client", label = "`client:classification(id)` (Lua 5.4)",
    cmd = env(HERE, "lua5.4") .. "lua5.4 bench/percall.lua client", binding = "classic" },
}
if BEFORE then
  table.insert(CONTENDERS, { id = "core_before", label = "`core.request` at " .. BEFORE_REV .. " (Lua 5.4)",
    cmd = env(BEFORE, "lua5.4") .. "lua5.4 bench/percall.lua core" })
  table.insert(CONTENDERS, { id = "client_before", label = "`client:classification(id)` at " .. BEFORE_REV
    .. " (Lua 5.4)", cmd = env(BEFORE, "lua5.4") .. "lua5.4 bench/percall.lua client" })
end
local JIT = env(HERE, "luajit")
table.insert(CONTENDERS, { id = "jit_luacurl", label = "Debian lua-curl + lua-cjson (LuaJIT)",
  cmd = SYSTEM .. "luajit bench/percall.lua luacurl" })
table.insert(CONTENDERS, { id = "jit_core", binding = JIT_BINDING, cmd = JIT .. "luajit bench/percall.lua core",
  label = JIT_BINDING == "ffi" and "the FFI binding's `request` (LuaJIT)"
    or "`core.request` (LuaJIT, classic binding)" })
table.insert(CONTENDERS, { id = "jit_client", binding = JIT_BINDING, cmd = JIT .. "luajit bench/percall.lua client",
  label = ("`client:classification(id)` (LuaJIT, %s binding)"):format(JIT_BINDING) })
if BOTH then
  table.insert(CONTENDERS, { id = "jit_core_classic", binding = "classic",
    label = "`core.request` (LuaJIT, classic binding)",
    cmd = "env AVALARA_BINDING=classic " .. JIT .. "luajit bench/percall.lua core" })
  table.insert(CONTENDERS, { id = "jit_client_classic", binding = "classic",
    label = "`client:classification(id)` (LuaJIT, classic binding)",
    cmd = "env AVALARA_BINDING=classic " .. JIT .. "luajit bench/percall.lua client" })
end

local function rate(c, url, cafile)
  local out, ok = capture(("taskset -c %s %s '%s' %s '%s' %d"):format(CPU, c.cmd, url, TOKEN, cafile, CALLS))
  local calls, secs = out:match("(%d+)%s+([%d.]+)%s*$")
  if not ok or not calls then error(c.id .. " failed: " .. out) end
  local ran = out:match("percall: binding (%w+)")
  if c.binding and ran ~= c.binding then
    error(("%s ran the %s binding, not %s"):format(c.id, tostring(ran), c.binding))
  end
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

-- The goals of issue 27 (item 4), then those of issues 14 and 17: the
-- contender, the one it is measured against, the ratio to reach.
local GOALS = {
  { "`core.request` ≥ lua-curl + lua-cjson (Lua 5.4)", "core", "luacurl", 1.00, "27" },
  { "client ≥ 0.95× `core.request` (Lua 5.4)", "client", "core", 0.95, "27" },
  { ("client ≥ 0.90× the floor (LuaJIT outside nginx, %s binding)"):format(JIT_BINDING), "jit_client", "libcurl", 0.90,
    "27" },
  { "`core.request` ≥ 0.90× the floor (Lua 5.4)", "core", "libcurl", 0.90, "14, 17" },
  { "client ≥ 0.85× the floor (Lua 5.4)", "client", "libcurl", 0.85, "14, 17" },
}

local function report(m)
  local L = {}
  local function add(s) L[#L + 1] = s end
  add("## Per-call cost on a fixed-body server (bench/percall_fixed.lua)")
  add("")
  add(("- %s; %s; medians of %d rounds × %d sequential authenticated GETs, each body decoded (the C floor"
    .. " only checks it with `strstr`), the contenders alternating; every client pinned to CPU %s, the server to"
    .. " CPU %s; the server is nginx `return`ing the same %d-byte model every time (HTTPS: TLS 1.3, HTTP/2 by"
    .. " ALPN for the libcurl contenders, HTTP/1.1 for LuaSocket; one connection kept)."):format(
    os.date("!%Y-%m-%d %H:%M UTC"), core.curl_version:match("^%S+"), ROUNDS, CALLS, CPU, SERVER_CPU, #fixed.MODEL))
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
  add("| layer | HTTP | HTTPS |")
  add("|---|---:|---:|")
  local function layer(name, upper, lower)
    if not m.http[upper] then return end
    add(("| %s | %.1f | %.1f |"):format(name, us(m.http[upper]) - us(m.http[lower]),
      us(m.https[upper]) - us(m.https[lower])))
  end
  layer("the core over libcurl (`core.request` − floor), Lua 5.4", "core", "libcurl")
  layer("the client over the core (`client:classification` − `core.request`), Lua 5.4", "client", "core")
  layer("the core over libcurl at " .. BEFORE_REV .. ", Lua 5.4", "core_before", "libcurl")
  layer("the client over the core at " .. BEFORE_REV .. ", Lua 5.4", "client_before", "core_before")
  layer(("the core over libcurl, LuaJIT (%s binding)"):format(JIT_BINDING), "jit_core", "libcurl")
  layer(("the client over the core, LuaJIT (%s binding)"):format(JIT_BINDING), "jit_client", "jit_core")
  layer("the core over libcurl, LuaJIT (classic binding)", "jit_core_classic", "libcurl")
  layer("the client over the core, LuaJIT (classic binding)", "jit_client_classic", "jit_core_classic")
  add("")
  add("### Goals")
  add("")
  add("| goal | issue | HTTP | HTTPS |")
  add("|---|---|---:|---:|")
  for _, g in ipairs(GOALS) do
    local function mark(scheme)
      local r = m[scheme][g[2]] / m[scheme][g[3]]
      return ("%.2f× %s"):format(r, r >= g[4] and "(met)" or "(**not met**)")
    end
    add(("| %s | %s | %s | %s |"):format(g[1], g[5], mark("http"), mark("https")))
  end
  return table.concat(L, "\n")
end

local e = emu.start { workers = 1 }
local cert_dir = e.ca_file:match("^(.*)/[^/]+$")
local server = fixed.start(cert_dir)
local ok, err = pcall(function()
  util.pin(server.pid, SERVER_CPU)
  log("contenders on CPU %s, the server on CPU %s; LuaJIT binding: %s", CPU, SERVER_CPU, JIT_BINDING)
  local text = report(measure(server, e.ca_file))
  results.write(OUT, "percall-fixed", text)
  io.stdout:write(text, "\n")
end)
server:stop()
e:stop()
if not ok then error(err, 0) end
