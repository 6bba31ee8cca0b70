-- The batch goal of issue 27, the library alone: `classify_batch` of
-- BENCH_BATCH (1,000) creates with `wait = false` against a server that
-- answers every create after exactly 20 ms with a fixed 201 PENDING model of
-- the published shape (bench/fixed_server.lua: nginx, `ngx.sleep` on its event
-- loop, on the CPUs other than the client's), at concurrency 1, 8, 32, 64.
-- Each batch is a fresh process on BENCH_CPU (its connections made anew; the
-- token fetched before the clock starts); each figure is the median of
-- BENCH_ROUNDS rounds, the levels alternating (forwards, then backwards);
-- concurrency 1 makes a tenth of the creates (its ideal is 20 ms each).
-- Efficiency = ideal `ceil(n/c) × 20 ms` / wall, against the goal: ≥ 90 % at
-- concurrency 64. Then one traced batch at 64 says where the rest goes
-- (planning before the first create, the time each create took as the client
-- saw it). With BENCH_BEFORE_ROOT (a checkout of an earlier revision, built:
-- the Makefile's BENCH_BATCH_BEFORE), its library runs in the same rounds.
-- Prints and writes the "batch-fixed" section of bench/RESULTS.md.
--
--   make bench-batch                               (BENCH_ROUNDS=5 BENCH_BATCH=1000 BENCH_CPU=1)
--   make bench-batch BENCH_BATCH_LEVELS=64 BENCH_ROUNDS=9   (the goal's level only, more rounds)
--   lua5.4 bench/batch_fixed.lua round URL C N [trace]   (one batch: "wall cpu cpu_wait [first took p90 max]")
local socket = require "socket"

local LATENCY = 0.020

-- Seconds this process has waited for a CPU while runnable (/proc/self/schedstat): the other work
-- on the client's CPU, which stretches the wall time whatever the library does.
local function cpu_wait()
  local f = io.open("/proc/self/schedstat")
  if not f then return 0 end
  local _, waited = f:read("*n", "*n")
  f:close()
  return (waited or 0) / 1e9
end

local function items(n)
  local list = {}
  for i = 1, n do list[i] = { itemCode = "B-" .. i, description = "men's cotton t-shirt" } end
  return list
end

if arg[1] == "round" then
  local avalara = require "avalara"
  local url, level, n, trace = arg[2], tonumber(arg[3]), tonumber(arg[4]), arg[5] == "trace"
  local events = {}
  local c = avalara.new { environment = "local", emulator_url = url, account_id = "2000000001",
    license_key = "DEMO-LICENSE-KEY-0001", company_id = 1001,
    on_request = trace and function(i) events[#events + 1] = { socket.gettime(), i.duration } end or nil }
  assert(c:token())
  local list = items(n)
  local t0, c0, w0 = socket.gettime(), os.clock(), cpu_wait()
  local _, summary = c:classify_batch(list, { country = "US", concurrency = level, wait = false })
  local wall, cpu, waited = socket.gettime() - t0, os.clock() - c0, cpu_wait() - w0
  assert(summary.ok == n, "batch items failed")
  local out = ("%.6f %.6f %.6f"):format(wall, cpu, waited)
  if trace then
    local first, took = math.huge, {}
    for _, ev in ipairs(events) do
      if ev[1] - ev[2] >= t0 then -- the creates (not the token, fetched before)
        first = math.min(first, ev[1] - ev[2])
        took[#took + 1] = ev[2]
      end
    end
    table.sort(took)
    out = out .. (" %.6f %.6f %.6f %.6f"):format(first - t0, took[(#took + 1) // 2], took[math.ceil(#took * 0.9)],
      took[#took])
  end
  io.stdout:write(out, "\n")
  os.exit(0)
end

local core = require "avalara.core"
local emu = require "spec.support.emulator"
local fixed = require "bench.fixed_server"
local results = require "bench.results"
local util = require "bench.util"
local log, median, capture = util.log, util.median, util.capture

local ROUNDS = tonumber(os.getenv("BENCH_ROUNDS")) or 5
local N = tonumber(os.getenv("BENCH_BATCH")) or 1000
local OUT = os.getenv("BENCH_OUT") or "bench/RESULTS.md"
local CLIENT_CPU = os.getenv("BENCH_CPU") or "1"
local BEFORE = os.getenv("BENCH_BEFORE_ROOT")
local BEFORE_REV = os.getenv("BENCH_BATCH_BEFORE") or "?"
local LEVELS = {}
for n in (os.getenv("BENCH_BATCH_LEVELS") or "1,8,32,64"):gmatch("%d+") do LEVELS[#LEVELS + 1] = tonumber(n) end
local GOAL_LEVEL, GOAL = 64, 0.90

local function env(root)
  return ("env LUA_PATH='%s/lua/?.lua;%s/lua/?/init.lua;./?.lua;;' LUA_CPATH='%s/build/lua5.4/?.so;;' "):format(
    root, root, root)
end

local CONTENDERS = { { id = "now", label = "this tree", root = emu.repo_root() } }
if BEFORE then CONTENDERS[2] = { id = "before", label = "at " .. BEFORE_REV, root = BEFORE } end

-- The CPUs other than the client's, as a taskset list (the client's own when it has no other).
local function server_cpus()
  local others = {}
  for cpu = 0, tonumber((capture("getconf _NPROCESSORS_ONLN"))) - 1 do
    if tostring(cpu) ~= CLIENT_CPU then others[#others + 1] = cpu end
  end
  return #others > 0 and table.concat(others, ",") or CLIENT_CPU
end

local certs = os.tmpname()
os.remove(certs)
assert(os.execute("mkdir -p " .. emu.shell_quote(certs)))
assert(capture("emulator/run --make-certs " .. emu.shell_quote(certs)))
local cpus = server_cpus()
local server = fixed.start(certs, { latency_ms = LATENCY * 1000, cpus = cpus })

local function size(level) return level == 1 and math.max(1, N // 10) or N end

-- One batch in a fresh process on the client's CPU: its figures.
local function round(contender, level, trace)
  local out, ok = capture(("%s taskset -c %s lua5.4 bench/batch_fixed.lua round %s %d %d %s"):format(
    env(contender.root), CLIENT_CPU, server.http_url, level, size(level), trace and "trace" or ""))
  local nums = {}
  for x in out:gmatch("[%d.e-]+") do nums[#nums + 1] = tonumber(x) end
  if not ok or #nums < 3 then error(contender.id .. " c=" .. level .. " failed: " .. out, 0) end
  return nums
end

local ok, err = pcall(function()
  -- the server's latency as one request on a kept connection sees it (the ideal counts 20 ms)
  local single = {}
  local body = '{"countryOfDestination":"US","item":{"companyId":1001,"itemCode":"B-0","description":"mug"}}'
  for i = 1, 25 do
    local t0 = socket.gettime()
    local status = core.request { method = "POST", url = server.http_url .. "/api/v2/companies/1001/classifications/hs",
      token = "0123456789abcdef0123456789abcdef", body = body }
    assert(status == 201, "the fixed server answered " .. tostring(status))
    if i > 5 then single[#single + 1] = socket.gettime() - t0 end
  end
  local one = median(single)
  log("one create on a kept connection: %.2f ms", one * 1000)

  local walls, cpu_used, waits = {}, {}, {}
  for _, c in ipairs(CONTENDERS) do
    walls[c.id], cpu_used[c.id], waits[c.id] = {}, {}, {}
    for _, level in ipairs(LEVELS) do walls[c.id][level], cpu_used[c.id][level], waits[c.id][level] = {}, {}, {} end
  end
  local plan = {}
  for _, level in ipairs(LEVELS) do
    for _, c in ipairs(CONTENDERS) do plan[#plan + 1] = { c = c, level = level } end
  end
  for r = 1, ROUNDS do
    for i = 1, #plan do
      local step = plan[r % 2 == 1 and i or #plan + 1 - i]
      local nums = round(step.c, step.level)
      table.insert(walls[step.c.id][step.level], nums[1])
      table.insert(cpu_used[step.c.id][step.level], nums[2])
      table.insert(waits[step.c.id][step.level], nums[3])
      log("%s c=%d round %d: %.1f ms (CPU %.1f ms, waited for it %.1f ms)", step.c.id, step.level, r,
        nums[1] * 1000, nums[2] * 1000, nums[3] * 1000)
    end
  end
  local traces = {}
  for _, c in ipairs(CONTENDERS) do traces[c.id] = round(c, GOAL_LEVEL, true) end

  local rows = {}
  for _, c in ipairs(CONTENDERS) do
    rows[c.id] = {}
    for _, level in ipairs(LEVELS) do
      local n, wall, cpu = size(level), median(walls[c.id][level]), median(cpu_used[c.id][level])
      local ideal = math.ceil(n / level) * LATENCY
      rows[c.id][level] = { level = level, n = n, wall = wall, cpu = cpu, ideal = ideal, eff = ideal / wall,
        waited = median(waits[c.id][level]) }
    end
  end

  local lines = {}
  local function add(s) lines[#lines + 1] = s end
  add("## Batches against a fixed 20 ms server (bench/batch_fixed.lua)")
  add("")
  add(("Written by `make bench-batch` (bench/batch_fixed.lua), %s; %s CPUs, load average %s at the end. The client "
    .. "(Lua 5.4, libcurl; a fresh process a batch, the token fetched before the clock starts) on CPU %s; the "
    .. "server (nginx answering every create after 20 ms with a fixed 201 PENDING model) on CPU %s. "
    .. "`classify_batch` with `wait = false`; median of %d rounds, the levels and revisions alternating.")
    :format(os.date("!%Y-%m-%d %H:%M UTC"), (capture("getconf _NPROCESSORS_ONLN")):gsub("%s+$", ""),
    (capture("cut -d' ' -f1-3 /proc/loadavg")):gsub("%s+$", ""), CLIENT_CPU, cpus, ROUNDS))
  add("")
  add(("One create on a kept connection takes %.2f ms (the server's 20 ms, its timer's granularity, the round "
    .. "trip): against the ideal's 20 ms, the efficiency cannot pass %.0f %%."):format(one * 1000,
    100 * LATENCY / one))
  add("")
  local head = "| concurrency | creates | ideal `ceil(n/c) × 20 ms` | wall | efficiency | client CPU a create "
    .. "| waited for the CPU |"
  local rule = "|---:|---:|---:|---:|---:|---:|---:|"
  if BEFORE then
    head = head .. " wall " .. BEFORE_REV .. " | efficiency " .. BEFORE_REV .. " | CPU a create " .. BEFORE_REV .. " |"
    rule = rule .. "---:|---:|---:|"
  end
  add(head)
  add(rule)
  for _, level in ipairs(LEVELS) do
    local r = rows.now[level]
    local line = ("| %d | %d | %.0f ms | %.1f ms | %.0f%% | %.0f µs | %.1f ms |"):format(level, r.n, r.ideal * 1000,
      r.wall * 1000, 100 * r.eff, r.cpu / r.n * 1e6, r.waited * 1000)
    if BEFORE then
      local b = rows.before[level]
      line = line .. (" %.1f ms | %.0f%% | %.0f µs |"):format(b.wall * 1000, 100 * b.eff, b.cpu / b.n * 1e6)
    end
    add(line)
  end
  local goal = rows.now[GOAL_LEVEL] or rows.now[LEVELS[#LEVELS]]
  add("")
  add(("Goal (issue 27): %d creates at concurrency %d within %.0f %% of the ideal: %.0f %%, %s. (\"Waited for the "
    .. "CPU\": the time the client was runnable but another process had its CPU, /proc/self/schedstat; "
    .. "it stretches the wall time whatever the library does.)"):format(goal.n, goal.level, 100 * GOAL,
    100 * goal.eff, goal.eff >= GOAL and "met" or "**not met**"))
  add("")
  for _, c in ipairs(CONTENDERS) do
    local t = traces[c.id]
    add(("Traced batch at concurrency %d, %s (`on_request`): %.1f ms wall; the first create went out after "
      .. "%.1f ms (checking and planning the %d items); each create took %.1f ms as the client saw it (median; "
      .. "p90 %.1f, max %.1f); it waited %.1f ms for its CPU."):format(GOAL_LEVEL, c.label, t[1] * 1000,
      t[4] * 1000, size(GOAL_LEVEL), t[5] * 1000, t[6] * 1000, t[7] * 1000, t[3] * 1000))
    add("")
  end
  local text = table.concat(lines, "\n")
  io.stdout:write(text, "\n")
  results.write(OUT, "batch-fixed", text)
end)
server:stop()
os.execute("rm -rf " .. emu.shell_quote(certs))
if not ok then error(err, 0) end
