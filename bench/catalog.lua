-- make bench-catalog: `hscode batch` at catalog scale against the emulator
-- (issue 16): wall time against the ideal, RSS as the rows go by, the
-- journal's cost per item, and the time to resume a finished journal.
-- Writes the section `catalog` of bench/RESULTS.md (bench/results.lua).
-- Not a test: nothing here asserts a time.
--
--   BENCH_ITEMS=100000 BENCH_CONCURRENCY=64 BENCH_LATENCY_MS=20 lua5.4 bench/catalog.lua
local emu = require "spec.support.emulator"
local socket = require "socket"
local sections = require "bench.results"

-- A number from the environment, or its default.
local function setting(name, default) return tonumber(os.getenv(name)) or default end
local ITEMS, CONCURRENCY = setting("BENCH_ITEMS", 100000), setting("BENCH_CONCURRENCY", 64)
local LATENCY_MS, WORKERS = setting("BENCH_LATENCY_MS", 20), setting("BENCH_WORKERS", 1)
local OUT = os.getenv("BENCH_OUT") or "bench/RESULTS.md"
local DIR = "build/bench"
local SECTION = "## Catalog-scale batches (bench/catalog.lua)"

local WORDS = { "men's cotton t-shirt", "leather handbag", "stainless steel kitchen knife", "wooden chair",
  "laptop computer", "wool sweater", "rubber tyres for cars", "fresh apples", "porcelain coffee mug",
  "bicycle, not motorised", "green tea", "roasted coffee beans" }

local util = require "bench.util"
local log, capture = util.log, util.capture

-- A file of /proc/PID, or nil once the process is gone.
local function proc(pid, name)
  local text = emu.read_file("/proc/" .. pid .. "/" .. name)
  return text ~= "" and text or nil
end

-- Resident set size and its peak (KiB).
local function rss_kib(pid)
  local text = proc(pid, "status")
  if not text then return nil end
  return tonumber(text:match("VmRSS:%s*(%d+)")), tonumber(text:match("VmHWM:%s*(%d+)"))
end

-- CPU seconds (user + system) a process has used so far.
local function cpu_seconds(pid)
  local stat = proc(pid, "stat")
  if not stat then return nil end
  local fields = {}
  for w in stat:gsub("^.*%) ", ""):gmatch("%S+") do fields[#fields + 1] = w end
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100 -- utime, stime in ticks (USER_HZ 100)
end

local function catalog(path, n)
  local f = assert(io.open(path, "wb"))
  f:write("itemCode,description,supplier\n")
  for i = 1, n do
    f:write(("SKU-%06d,%s (model %d),supplier %d\n"):format(i, WORDS[(i - 1) % #WORDS + 1], i % 97, i % 13))
  end
  f:close()
end

-- Runs hscode batch, sampling its RSS at each tenth of the way (its plain
-- progress lines); returns wall seconds, samples {done, rss}, peak RSS, stderr.
local function batch(e, input, out)
  local cmd = ("sh -c 'echo $$; exec env LUA_PATH=\"lua/?.lua;lua/?/init.lua;;\" LUA_CPATH=\"build/lua5.4/?.so;;\" "
    .. "XDG_CACHE_HOME=%s/cache AVALARA_ENVIRONMENT=local AVALARA_EMULATOR_URL=%s lua5.4 bin/hscode batch %s "
    .. "--country US --out %s --concurrency %d 2>&1 >/dev/null'"):format(DIR, e.http_url, input, out, CONCURRENCY)
  local t0 = socket.gettime()
  local p = assert(io.popen(cmd))
  local pid = tonumber(p:read("*l"))
  local samples, lines, peak, cpu = {}, {}, 0, 0
  for line in p:lines() do
    lines[#lines + 1] = line
    local done = tonumber(line:match("^hscode: (%d+)/%d+ done"))
    local rss, hwm = rss_kib(pid)
    if hwm then peak = math.max(peak, hwm) end
    cpu = cpu_seconds(pid) or cpu
    if done and rss then samples[#samples + 1] = { done = done, rss = rss } end
  end
  p:close()
  return socket.gettime() - t0, samples, peak, table.concat(lines, "\n"), cpu
end

os.execute("mkdir -p " .. DIR .. "/cache")
local input, out = DIR .. "/catalog.csv", DIR .. "/catalog-out.csv"
log("catalog of %d items", ITEMS)
catalog(input, ITEMS)
for _, f in ipairs { out, out .. ".journal", out .. ".journal-wal", out .. ".journal-shm" } do os.remove(f) end

local e = emu.start { workers = WORKERS }
local ok, err = pcall(function()
  e:configure { classification_delay = 0, latency_ms = LATENCY_MS }
  log("batch: %d items, concurrency %d, %d ms latency", ITEMS, CONCURRENCY, LATENCY_MS)
  local load_before = capture("cat /proc/loadavg"):match("^(%S+)")
  local wall, samples, peak, stderr, cpu = batch(e, input, out)
  local load_after = capture("cat /proc/loadavg"):match("^(%S+ %S+)")
  log("%s", stderr:match("[^\n]*items:[^\n]*") or stderr)
  local counters = e:counters()
  local creates, gets = counters.routes.classification_create or 0, counters.routes.classification_get or 0
  local journal_bytes = 0
  for _, suffix in ipairs { "", "-wal" } do
    local f = io.open(out .. ".journal" .. suffix, "rb")
    if f then journal_bytes = journal_bytes + f:seek("end"); f:close() end
  end

  log("resume of the finished journal")
  local resume_wall, _, resume_peak, resume_err = batch(e, input, out)
  local after = e:counters()
  log("%s", resume_err:match("[^\n]*items:[^\n]*") or resume_err)

  log("journal formats")
  local formats = capture("lua5.4 bench/journal.lua 20000 " .. DIR)

  local function at(n)
    for _, s in ipairs(samples) do if s.done >= n then return s.rss end end
    return nil
  end
  local r10, r50, r100 = at(ITEMS / 10), at(ITEMS / 2), at(ITEMS)
  local ideal = math.ceil(ITEMS / CONCURRENCY) * LATENCY_MS / 1000
  local L = {}
  local function add(s) L[#L + 1] = s end
  add(SECTION)
  add("")
  add(("Written by `make bench-catalog` (bench/catalog.lua), %s UTC; %s; emulator with %d worker(s) on the same "
    .. "2-CPU machine."):format(os.date("!%Y-%m-%d %H:%M"), capture("nproc"):gsub("%s+$", "") .. " CPUs", WORKERS))
  add("")
  add(("`hscode batch` of a %d-row CSV (`--concurrency %d`, `--out` a CSV file, its journal beside it), "
    .. "emulator latency %d ms, classifications resolved on the first poll:"):format(ITEMS, CONCURRENCY, LATENCY_MS))
  add("")
  add("| figure | value |")
  add("|---|---:|")
  add(("| wall time | %.1f s |"):format(wall))
  add(("| ideal `ceil(n/c) × latency` (the creates alone) | %.1f s |"):format(ideal))
  add(("| ideal with one poll per item (`2 × ceil(n/c) × latency`) | %.1f s |"):format(2 * ideal))
  add(("| efficiency against the create+poll ideal | %.0f%% |"):format(100 * 2 * ideal / wall))
  add(("| items per second | %.0f |"):format(ITEMS / wall))
  add(("| load average (1 min) before, then 1 and 5 min after | %s; %s |"):format(load_before, load_after))
  add(("| CPU time of the hscode process (user + system) | %.1f s (%.0f µs per item) |"):format(cpu,
    1e6 * cpu / ITEMS))
  add(("| requests: creates, polls (GET) | %d, %d |"):format(creates, gets))
  add(("| result | %s |"):format((stderr:match("hscode: %d+ items: ([^\n]*) %(") or "?")))
  add(("| RSS at 10%% / 50%% / 100%% of the rows | %s / %s / %s KiB |"):format(tostring(r10), tostring(r50),
    tostring(r100)))
  if r10 and r100 then
    add(("| RSS growth from %d to %d rows | %+.1f%% |"):format(ITEMS // 10, ITEMS, 100 * (r100 - r10) / r10))
  end
  add(("| peak RSS (VmHWM) | %d KiB |"):format(peak))
  add(("| journal on disk (SQLite + WAL) | %.1f MiB, %.0f bytes per item |"):format(journal_bytes / 1048576,
    journal_bytes / ITEMS))
  add(("| resume of the finished journal (no request: %d more) | %.1f s, peak RSS %d KiB |"):format(
    after.requests - counters.requests, resume_wall, resume_peak))
  add("")
  add("RSS samples (rows done: KiB): " .. (function()
    local t = {}
    for _, s in ipairs(samples) do t[#t + 1] = s.done .. ": " .. s.rss end
    return table.concat(t, ", ")
  end)() .. ".")
  add("")
  add("### The journal's format, chosen by measurement")
  add("")
  add("`bench/journal.lua`: the records one item costs (create sent, created, finished with its model), ")
  add("appended as JSON Lines (luv: one write(2) each) or kept in SQLite (Debian's lua-sql-sqlite3), at the")
  add("fsync policies that make sense. The batch needs the \"sent\" records on disk before the creates go out;")
  add("both formats do that at one fsync per group of creates for about the same cost per item. SQLite is")
  add("the choice: its index answers \"which earlier row has this item code and country\" (duplicates) and")
  add("\"what became of row N\" (resume) from disk, so memory stays flat whatever the catalog's size, where")
  add("JSON Lines would have to hold an index of every row in memory; a torn last write is handled by its")
  add("write-ahead log. Policy: WAL, `synchronous=FULL`; the next creates marked sent by groups of twice the")
  add("concurrency in one commit (fsync) before the first of them goes out, and a commit at least once a second.")
  add("")
  add((formats:gsub("\n+$", "")))
  add("")
  local text = table.concat(L, "\n")
  sections.write(OUT, "catalog", text)
  io.stdout:write(text)
end)
e:stop()
if not ok then error(err, 0) end
