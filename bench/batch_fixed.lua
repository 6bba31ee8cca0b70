-- The batch goal of issue 27, the library alone: `classify_batch` of
-- BENCH_BATCH (1,000) creates with `wait = false` against a server that
-- answers every create after exactly 20 ms with a fixed 201 PENDING model of
-- the published shape (bench/fixed_server.lua: nginx, `ngx.sleep` on its event
-- loop, on the CPUs other than the client's), at concurrency 1, 8, 32, 64.
-- The client runs on BENCH_CPU (the Makefile's taskset); each figure is the
-- median of BENCH_ROUNDS rounds, the levels alternating (forwards, then
-- backwards); concurrency 1 makes a tenth of the creates (its ideal is
-- 20 ms each: 20 s for 1,000). Efficiency = ideal `ceil(n/c) × 20 ms` / wall,
-- against the goal: ≥ 90 % at concurrency 64. Then one traced batch at 64 says
-- where the rest goes (planning before the first create, the time each create
-- took as the client saw it, the client's CPU time).
-- Prints and writes the "batch-fixed" section of bench/RESULTS.md.
--
--   make bench-batch            (BENCH_ROUNDS=5 BENCH_BATCH=1000 BENCH_CPU=1)
local avalara = require "avalara"
local core = require "avalara.core"
local socket = require "socket"
local emu = require "spec.support.emulator"
local fixed = require "bench.fixed_server"
local results = require "bench.results"
local util = require "bench.util"
local log, median, capture = util.log, util.median, util.capture

local ROUNDS = tonumber(os.getenv("BENCH_ROUNDS")) or 5
local N = tonumber(os.getenv("BENCH_BATCH")) or 1000
local OUT = os.getenv("BENCH_OUT") or "bench/RESULTS.md"
local CLIENT_CPU = os.getenv("BENCH_CPU") or "1"
local LATENCY = 0.020
local LEVELS = { 1, 8, 32, 64 }
local GOAL_LEVEL, GOAL = 64, 0.90

-- The CPUs other than the client's, as a taskset list (the client's own when it has no other).
local function server_cpus()
  local others = {}
  for cpu = 0, tonumber((capture("getconf _NPROCESSORS_ONLN"))) - 1 do
    if tostring(cpu) ~= CLIENT_CPU then others[#others + 1] = cpu end
  end
  return #others > 0 and table.concat(others, ",") or CLIENT_CPU
end

local function items(n)
  local list = {}
  for i = 1, n do list[i] = { itemCode = "B-" .. i, description = "men's cotton t-shirt" } end
  return list
end

local certs = os.tmpname()
os.remove(certs)
assert(os.execute("mkdir -p " .. emu.shell_quote(certs)))
assert(capture("emulator/run --make-certs " .. emu.shell_quote(certs)))
local cpus = server_cpus()
local server = fixed.start(certs, { latency_ms = LATENCY * 1000, cpus = cpus })

local function client(on_request)
  return avalara.new { environment = "local", emulator_url = server.http_url, account_id = "2000000001",
    license_key = "DEMO-LICENSE-KEY-0001", company_id = 1001, on_request = on_request }
end

-- One batch: wall and CPU seconds.
local function batch(c, list, level)
  local t0, c0 = socket.gettime(), os.clock()
  local _, summary = c:classify_batch(list, { country = "US", concurrency = level, wait = false })
  local wall, cpu = socket.gettime() - t0, os.clock() - c0
  assert(summary.ok == #list, "batch items failed")
  return wall, cpu
end

local ok, err = pcall(function()
  -- the server's latency as one request on a kept connection sees it (the ideal counts 20 ms)
  local token = "0123456789abcdef0123456789abcdef"
  local single = {}
  local body = core.json_encode and core.json_encode { x = 1 } or '{"x":1}'
  for i = 1, 25 do
    local t0 = socket.gettime()
    local status = core.request { method = "POST", url = server.http_url .. "/api/v2/companies/1001/classifications/hs",
      token = token, body = body }
    assert(status == 201, "the fixed server answered " .. tostring(status))
    if i > 5 then single[#single + 1] = socket.gettime() - t0 end
  end
  local one = median(single)
  log("one create on a kept connection: %.2f ms", one * 1000)

  local c = client()
  assert(c:token())
  local lists, walls, cpus_used = {}, {}, {}
  for _, level in ipairs(LEVELS) do
    lists[level] = items(level == 1 and math.max(1, N // 10) or N)
    walls[level], cpus_used[level] = {}, {}
  end
  batch(c, lists[64], 64) -- warm-up
  for round = 1, ROUNDS do
    for i = 1, #LEVELS do
      local level = LEVELS[round % 2 == 1 and i or #LEVELS + 1 - i]
      local wall, cpu = batch(c, lists[level], level)
      table.insert(walls[level], wall)
      table.insert(cpus_used[level], cpu)
      log("c=%d round %d: %.1f ms (CPU %.1f ms)", level, round, wall * 1000, cpu * 1000)
    end
  end

  -- a traced batch at the goal's level: when the first create went out, how long each took
  local events = {}
  local tc = client(function(i) events[#events + 1] = { socket.gettime(), i.duration } end)
  assert(tc:token())
  local t0 = socket.gettime()
  local twall = batch(tc, lists[GOAL_LEVEL], GOAL_LEVEL)
  local first, took = math.huge, {}
  for _, ev in ipairs(events) do
    first = math.min(first, ev[1] - ev[2])
    took[#took + 1] = ev[2]
  end
  table.sort(took)
  local trace = { wall = twall, first = first - t0, took = median(took), p90 = took[math.ceil(#took * 0.9)],
    max = took[#took] }

  local rows = {}
  for _, level in ipairs(LEVELS) do
    local n = #lists[level]
    local wall, cpu = median(walls[level]), median(cpus_used[level])
    local ideal = math.ceil(n / level) * LATENCY
    rows[#rows + 1] = { level = level, n = n, wall = wall, cpu = cpu, ideal = ideal, eff = ideal / wall }
  end

  local lines = {}
  local function add(s) lines[#lines + 1] = s end
  add("## Batches against a fixed 20 ms server (bench/batch_fixed.lua)")
  add("")
  add(("Written by `make bench-batch` (bench/batch_fixed.lua), %s; %s CPUs; the client (Lua 5.4, libcurl) "
    .. "on CPU %s, the server (nginx answering every create after 20 ms with a fixed 201 PENDING model) on CPU %s. "
    .. "`classify_batch` with `wait = false`, a fresh multi (new connections) each batch, the token fetched "
    .. "before; median of %d rounds, the levels alternating."):format(os.date("!%Y-%m-%d %H:%M UTC"),
    (capture("getconf _NPROCESSORS_ONLN")):gsub("%s+$", ""), CLIENT_CPU, cpus, ROUNDS))
  add("")
  add(("One create on a kept connection takes %.2f ms (the server's 20 ms and the round trip): the ceiling "
    .. "of the efficiency is %.0f %%."):format(one * 1000, 100 * LATENCY / one))
  add("")
  add("| concurrency | creates | wall time | ideal `ceil(n/c) × 20 ms` | efficiency | client CPU | CPU per create |")
  add("|---:|---:|---:|---:|---:|---:|---:|")
  for _, r in ipairs(rows) do
    add(("| %d | %d | %.1f ms | %.0f ms | %.0f%% | %.1f ms | %.0f µs |"):format(r.level, r.n, r.wall * 1000,
      r.ideal * 1000, 100 * r.eff, r.cpu * 1000, r.cpu / r.n * 1e6))
  end
  local goal
  for _, r in ipairs(rows) do if r.level == GOAL_LEVEL then goal = r end end
  add("")
  add(("Goal (issue 27): %d creates at concurrency %d within %.0f %% of the ideal: %.0f %%, %s."):format(goal.n,
    GOAL_LEVEL, 100 * GOAL, 100 * goal.eff, goal.eff >= GOAL and "met" or "**not met**"))
  add("")
  add(("Traced batch at concurrency %d (`on_request`): %.1f ms wall; the first create went out after %.1f ms "
    .. "(checking and planning the %d items); each create took %.1f ms as the client saw it (median; p90 %.1f, "
    .. "max %.1f)."):format(GOAL_LEVEL, trace.wall * 1000, trace.first * 1000, goal.n, trace.took * 1000,
    trace.p90 * 1000, trace.max * 1000))
  local text = table.concat(lines, "\n")
  io.stdout:write(text, "\n")
  results.write(OUT, "batch-fixed", text)
end)
server:stop()
os.execute("rm -rf " .. emu.shell_quote(certs))
if not ok then error(err, 0) end
