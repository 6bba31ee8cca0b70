-- make bench: the library against its peers, on the same machine in the
-- same run, written to bench/RESULTS.md. Run from the repository root by
-- the Makefile (which pins everything to one CPU with taskset):
--
--   BENCH_ROUNDS=5 BENCH_CALLS=20000 lua5.4 bench/run.lua
--
-- Every figure is the median of BENCH_ROUNDS rounds, the contenders
-- alternating within each round.
local emu = require "spec.support.emulator"
local avalara = require "avalara"
local core = require "avalara.core"
local socket = require "socket"
local sections = require "bench.results"

local ROUNDS = tonumber(os.getenv("BENCH_ROUNDS")) or 5
local CALLS = tonumber(os.getenv("BENCH_CALLS")) or 20000
local BATCH = tonumber(os.getenv("BENCH_BATCH")) or 1000
local BATCH_ROUNDS = math.max(1, math.min(ROUNDS, 3))
local MEMORY_CALLS = tonumber(os.getenv("BENCH_MEMORY_CALLS")) or 100000
local OUT = os.getenv("BENCH_OUT") or "bench/RESULTS.md"
local ACCOUNT, KEY, COMPANY = "2000000001", "DEMO-LICENSE-KEY-0001", 1001

local util = require "bench.util"
local log, median, capture = util.log, util.median, util.capture

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function client_for(e, opts)
  local o = { environment = "local", emulator_url = e.http_url, account_id = ACCOUNT, license_key = KEY,
    company_id = COMPANY }
  for k, v in pairs(opts or {}) do o[k] = v end
  return avalara.new(o)
end

-- ------------------------------------------------------------ per call

-- name, how to run it, and how many calls (the slow ones make fewer).
local LUA_ENV = "env LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/lua5.4/?.so;;' "
local CONTENDERS = {
  { id = "client", label = "avalara client (`client:classification`)",
    cmd = LUA_ENV .. "lua5.4 bench/percall.lua client" },
  { id = "core", label = "avalara.core (`core.request`)", cmd = LUA_ENV .. "lua5.4 bench/percall.lua core" },
  { id = "libcurl", label = "C on libcurl, one easy handle (floor)", cmd = "build/bench/percall_libcurl" },
  { id = "luacurl", label = "Lua-cURL (Debian lua-curl, Lua 5.1) + lua-cjson",
    cmd = "env -u LUA_PATH -u LUA_CPATH lua5.1 bench/percall.lua luacurl" },
  { id = "luasocket", label = "LuaSocket + LuaSec + lua-cjson", cmd = LUA_ENV .. "lua5.4 bench/percall.lua luasocket",
    calls = { http = 10, https = 100 } },
  { id = "curl-cli", label = "`curl` spawned per call + lua-cjson",
    cmd = LUA_ENV .. "lua5.4 bench/percall.lua curl-cli",
    calls = { http = 100, https = 100 } },
}

local function run_contender(c, url, token, cafile, scheme)
  local n = math.max(50, math.floor(CALLS / (c.calls and c.calls[scheme] or 1)))
  local out, ok = capture(("%s %s %s %s %d"):format(c.cmd, shell_quote(url), token, shell_quote(cafile), n))
  local calls, secs = out:match("(%d+)%s+([%d.]+)%s*$")
  if not ok or not calls then error(c.id .. " failed: " .. out) end
  return tonumber(calls) / tonumber(secs)
end

local function per_call(e)
  local c = client_for(e)
  local model = assert(c:wait(assert(c:classify({ itemCode = "B-1", description = "men's cotton t-shirt" },
    { country = "US" }))))
  local token = assert(c:token()):access_token()
  local path = "/api/v2/companies/" .. COMPANY .. "/classifications/hs/" .. model.id
  local results = {}
  for _, scheme in ipairs { "http", "https" } do
    local url = (scheme == "http" and e.http_url or e.https_url) .. path
    local rates = {}
    for _, ct in ipairs(CONTENDERS) do rates[ct.id] = {} end
    for round = 1, ROUNDS do
      -- alternate the order: forwards on odd rounds, backwards on even ones
      for i = 1, #CONTENDERS do
        local ct = CONTENDERS[round % 2 == 1 and i or #CONTENDERS + 1 - i]
        local r = run_contender(ct, url, token, e.ca_file, scheme)
        table.insert(rates[ct.id], r)
        log("%s %s round %d: %.0f calls/s", scheme, ct.id, round, r)
      end
    end
    results[scheme] = {}
    for _, ct in ipairs(CONTENDERS) do results[scheme][ct.id] = median(rates[ct.id]) end
  end
  return results
end

-- ------------------------------------------------------------ batch

local LEVELS = { 1, 8, 32, 64 }

local function batch_walls(e)
  e:configure { latency_ms = 20, classification_delay = 0 }
  local items = {}
  for i = 1, BATCH do items[i] = { itemCode = "B-" .. i, description = "men's cotton t-shirt" } end
  local c = client_for(e)
  assert(c:token())
  local walls = {}
  for _, n in ipairs(LEVELS) do walls[n] = {} end
  for round = 1, BATCH_ROUNDS do
    for i = 1, #LEVELS do
      local n = LEVELS[round % 2 == 1 and i or #LEVELS + 1 - i]
      local t0 = socket.gettime()
      local _, summary = c:classify_batch(items, { country = "US", concurrency = n, wait = false })
      local wall = socket.gettime() - t0
      assert(summary.failed == 0, "batch items failed")
      table.insert(walls[n], wall)
      log("batch c=%d round %d: %.2f s", n, round, wall)
    end
  end
  e:configure { latency_ms = 0 }
  local out = {}
  for _, n in ipairs(LEVELS) do
    local wall = median(walls[n])
    local ideal = math.ceil(BATCH / n) * 0.020
    out[#out + 1] = { concurrency = n, wall = wall, ideal = ideal, efficiency = ideal / wall }
  end
  return out
end

local function self_pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("*n")
  f:close()
  return pid
end

-- The CPUs other than the client's (BENCH_CPU), as a taskset list, or nil.
local function other_cpus()
  local mine, others = tonumber(os.getenv("BENCH_CPU")), {}
  for cpu = 0, tonumber((capture("getconf _NPROCESSORS_ONLN"))) - 1 do
    if cpu ~= mine then others[#others + 1] = cpu end
  end
  if mine == nil or #others == 0 then return nil end
  return table.concat(others, ","), #others
end

-- An emulator on the other CPUs: children inherit this process's affinity
-- at fork, so pin this process there while the emulator starts.
local function start_elsewhere(cpus, workers)
  local pid, mine = self_pid(), os.getenv("BENCH_CPU")
  local function pin(list) assert(os.execute(("taskset -p -c %s %d >/dev/null"):format(list, pid))) end
  pin(cpus)
  local ok, e = pcall(emu.start, { workers = workers })
  pin(mine)
  if not ok then error(e, 0) end
  return e
end

-- Twice: with the emulator on the client's CPU (the emulator's CPU time
-- then counts against the client), and on the other CPUs where there are.
local function batch(e)
  local out = { { where = "emulator (1 worker) on the client's CPU", rows = batch_walls(e) } }
  local cpus, n = other_cpus()
  if cpus then
    local apart = start_elsewhere(cpus, n)
    local ok, rows = pcall(batch_walls, apart)
    apart:stop()
    if not ok then error(rows, 0) end
    out[#out + 1] = { where = ("emulator (%d worker%s) on CPU %s, the client alone on CPU %s"):format(
      n, n > 1 and "s" or "", cpus, os.getenv("BENCH_CPU")), rows = rows, apart = true }
  end
  return out
end

-- ------------------------------------------------------------ tokens

local function tokens(e)
  local ttl, leeway, calls = 2, 1, 10000
  e:configure { token_ttl = ttl }
  local statuses = {}
  local c = client_for(e, { leeway = leeway, on_request = function(i)
    statuses[i.status or i.error_kind] = (statuses[i.status or i.error_kind] or 0) + 1
  end })
  local model = assert(c:wait(assert(c:classify({ itemCode = "T-1", description = "porcelain mug" },
    { country = "US" }))))
  local before = e:counters().grants.connect_token.client_credentials
  local t0 = socket.gettime()
  for _ = 1, calls do assert(c:classification(model.id)) end
  local elapsed = socket.gettime() - t0
  local made = e:counters().grants.connect_token.client_credentials - before
  e:configure { token_ttl = 3600 }
  -- a renewal is due every ttl - leeway seconds: the windows the run spanned
  local windows = math.floor(elapsed / (ttl - leeway)) + 1
  return { calls = calls, elapsed = elapsed, made = made, windows = windows, ttl = ttl, leeway = leeway,
    unauthorized = statuses[401] or 0 }
end

-- ------------------------------------------------------------ memory

local function rss_kib()
  local f = assert(io.open("/proc/self/statm"))
  local pages = tonumber(f:read("*l"):match("^%d+%s+(%d+)"))
  f:close()
  return pages * 4
end

local function memory(e)
  local c = client_for(e)
  local model = assert(c:wait(assert(c:classify({ itemCode = "M-1", description = "bicycle" }, { country = "US" }))))
  for _ = 1, 10000 do assert(c:classification(model.id)) end -- warm up
  collectgarbage()
  local samples = { rss_kib() }
  for _ = 1, MEMORY_CALLS / 10000 do
    for _ = 1, 10000 do assert(c:classification(model.id)) end
    collectgarbage()
    samples[#samples + 1] = rss_kib()
  end
  local growth = {}
  for i = 2, #samples do growth[i - 1] = samples[i] - samples[i - 1] end
  return { before = samples[1], after = samples[#samples], per_10k = median(growth), samples = samples }
end

-- ------------------------------------------------------------ start-up

local STARTUP = [[
local socket = require "socket"
local t0 = socket.gettime()
local avalara = require "avalara"
local t1 = socket.gettime()
local c = avalara.new{ environment = "local", emulator_url = os.getenv("URL"), account_id = "2000000001",
  license_key = "DEMO-LICENSE-KEY-0001" }
assert(c:sections())
print(t1 - t0, socket.gettime() - t1)
]]

local function startup(e)
  local req, first = {}, {}
  for _ = 1, math.max(ROUNDS, 5) do
    local out = capture(LUA_ENV .. "URL=" .. e.http_url .. " lua5.4 -e " .. shell_quote(STARTUP))
    local a, b = out:match("([%d.e-]+)%s+([%d.e-]+)")
    assert(a, "start-up run failed: " .. out)
    req[#req + 1], first[#first + 1] = tonumber(a), tonumber(b)
  end
  return { require_ms = median(req) * 1000, first_call_ms = median(first) * 1000 }
end

-- ------------------------------------------------------------ report

local function first_line(cmd) return (capture(cmd):match("[^\n]*")) end

local function machine()
  local cpu = first_line("grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'")
  return {
    ("- date: %s"):format(os.date("!%Y-%m-%d %H:%M UTC")),
    ("- machine: %s, %s CPUs online, client and emulator pinned to CPU %s"):format(cpu, first_line("nproc --all"),
      os.getenv("BENCH_CPU") or "?"),
    ("- kernel: %s"):format(first_line("uname -sr")),
    ("- avalara-hscode %s; %s"):format(core.version, core.curl_version),
    ("- %s; %s; %s"):format(first_line("lua5.4 -v"), first_line("lua5.1 -v"), first_line("luajit -v")),
    ("- %s (emulator, 1 worker)"):format(first_line("nginx -v")),
    ("- rounds: %d per figure (median), %d calls per per-call run"):format(ROUNDS, CALLS),
  }
end

local function report(pc, bt, tk, mem, su)
  local L = { "## Against the emulator (bench/run.lua)", "" }
  for _, l in ipairs(machine()) do L[#L + 1] = l end
  local function add(s) L[#L + 1] = s end
  add("")
  add("### Per-call cost")
  add("")
  add("Sequential authenticated GETs of one classification to the emulator, each response decoded,")
  add("over keep-alive where the contender can (LuaSocket and spawned `curl` open a connection per call).")
  add("")
  add("| contender | HTTP calls/s | client ÷ it | HTTPS calls/s | client ÷ it |")
  add("|---|---:|---:|---:|---:|")
  for _, ct in ipairs(CONTENDERS) do
    local h, s = pc.http[ct.id], pc.https[ct.id]
    add(("| %s | %.0f | %.2f× | %.0f | %.2f× |"):format(ct.label, h, pc.http.client / h, s, pc.https.client / s))
  end
  add("")
  add("### Batch")
  add("")
  add(("%d classifications (`classify_batch`, `wait = false`), 20 ms of added emulator latency, "
    .. "median of %d rounds."):format(BATCH, BATCH_ROUNDS))
  for _, placement in ipairs(bt) do
    add("")
    add("With the " .. placement.where .. ":")
    add("")
    add("| concurrency | wall time | ideal `ceil(N/c) × 20 ms` | efficiency |")
    add("|---:|---:|---:|---:|")
    for _, r in ipairs(placement.rows) do
      add(("| %d | %.2f s | %.2f s | %.0f%% |"):format(r.concurrency, r.wall, r.ideal, 100 * r.efficiency))
    end
  end
  add("")
  add("### Tokens")
  add("")
  add(("%d calls with a token lifetime of %d s and a leeway of %d s (a renewal due every %d s): %.1f s, "
    .. "%d expiry windows, %d token requests, %d responses 401."):format(
    tk.calls, tk.ttl, tk.leeway, tk.ttl - tk.leeway, tk.elapsed, tk.windows, tk.made, tk.unauthorized))
  add("")
  add("### Memory")
  add("")
  add(("RSS after a 10,000-call warm-up: %d KiB; after %d more calls: %d KiB; "
    .. "median growth per 10,000 calls: %d KiB."):format(
    mem.before, MEMORY_CALLS, mem.after, mem.per_10k))
  add("Samples (KiB, every 10,000 calls): " .. table.concat(mem.samples, ", ") .. ".")
  add("")
  add("### Start-up")
  add("")
  add(("`require \"avalara\"`: %.1f ms; then `avalara.new` and the first call (token request + "
    .. "`sections()`): %.1f ms (median of %d processes)."):format(
    su.require_ms, su.first_call_ms, math.max(ROUNDS, 5)))
  add("")
  add("### Goals")
  add("")
  add("| goal | figure | met |")
  add("|---|---|---|")
  local function goal(name, figure, met) add(("| %s | %s | %s |"):format(name, figure, met and "yes" or "**no**")) end
  for _, scheme in ipairs { "http", "https" } do
    local r = pc[scheme].client / pc[scheme].libcurl
    goal("client ≥ 0.85× plain libcurl, " .. scheme:upper(), ("%.2f×"):format(r), r >= 0.85)
    local rc = pc[scheme].core / pc[scheme].libcurl
    goal("(core alone ≥ 0.85× plain libcurl, " .. scheme:upper() .. ")", ("%.2f×"):format(rc), rc >= 0.85)
  end
  local rs = pc.https.client / pc.https.luasocket
  goal("client ≥ 3× LuaSocket + LuaSec, HTTPS", ("%.1f×"):format(rs), rs >= 3)
  for _, placement in ipairs(bt) do
    local e32
    for _, r in ipairs(placement.rows) do if r.concurrency == 32 then e32 = r.efficiency end end
    goal(("batch efficiency ≥ 80%% at concurrency 32, emulator %s"):format(
      placement.apart and "on other CPUs" or "on the client's CPU"), ("%.0f%%"):format(100 * e32), e32 >= 0.8)
  end
  goal("one token request per expiry window", ("%d requests, %d windows"):format(tk.made, tk.windows),
    tk.made <= tk.windows and tk.unauthorized == 0)
  local flat = mem.per_10k <= 64
  goal("flat memory (≤ 64 KiB per 10,000 calls)", ("%d KiB per 10,000 calls"):format(mem.per_10k), flat)
  add("")
  return table.concat(L, "\n")
end

local e = emu.start { workers = 1 }
local ok, err = pcall(function()
  e:configure { classification_delay = 0 }
  log("per-call: %d rounds of %d calls", ROUNDS, CALLS)
  local pc = per_call(e)
  log("batch")
  local bt = batch(e)
  log("tokens")
  local tk = tokens(e)
  log("memory")
  local mem = memory(e)
  log("start-up")
  local su = startup(e)
  local text = report(pc, bt, tk, mem, su)
  sections.write(OUT, "emulator", text)
  io.stdout:write(text)
end)
e:stop()
if not ok then error(err, 0) end
