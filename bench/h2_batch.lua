-- HTTP/2 for concurrent work (issue 14): a 64-wide batch over HTTPS with
-- HTTP/2 offered (ALPN: libcurl multiplexes on one connection) against the
-- same batch on a listener that speaks HTTP/1.1 only (one TLS connection
-- a slot). Each round is a fresh process (its connections and TLS
-- handshakes counted in), alternating the two; the server is nginx
-- `return`ing a fixed body (bench/fixed_server.lua) on the other CPU.
-- Prints and writes the "h2-batch" section of bench/RESULTS.md.
--
--   lua5.4 bench/h2_batch.lua                      (make bench-h2)
--   lua5.4 bench/h2_batch.lua round URL CAFILE N   (one round: prints "wall cpu connections")
local core = require "avalara.core"

local TOKEN = "0123456789abcdef0123456789abcdef"
local PATH = "/api/v2/companies/1001/classifications/hs/1001-TS-1-US"
local WIDTH = 64

if arg[1] == "round" then
  local socket = require "socket"
  local url, cafile, n = arg[2], arg[3], tonumber(arg[4])
  local reqs = {}
  for i = 1, n do reqs[i] = { url = url .. PATH, token = TOKEN } end
  local t0, c0 = socket.gettime(), os.clock()
  local results = core.request_many(reqs, { concurrency = WIDTH, cafile = cafile })
  local wall, cpu = socket.gettime() - t0, os.clock() - c0
  for i, r in ipairs(results) do
    assert(r.status == 200 and r.body.hsCode == "610910", "request " .. i .. ": " .. tostring(r.err))
  end
  -- the connections this process holds open to the server now (kept alive in the pool)
  local port = url:match(":(%d+)$")
  local p = assert(io.popen("ss -Htn state established '( dport = :" .. port .. " )' | wc -l"))
  local conns = tonumber(p:read("*a"))
  p:close()
  io.stdout:write(("%.6f %.6f %d\n"):format(wall, cpu, conns))
  os.exit(0)
end

local emu = require "spec.support.emulator"
local fixed = require "bench.fixed_server"
local results = require "bench.results"
local util = require "bench.util"
local log, median, capture = util.log, util.median, util.capture

local ROUNDS = math.max(5, tonumber(os.getenv("BENCH_ROUNDS")) or 5)
local N = tonumber(os.getenv("BENCH_BATCH")) or 640
local OUT = os.getenv("BENCH_OUT") or "bench/RESULTS.md"
local CLIENT_CPU = os.getenv("BENCH_CPU") or "1"
local SERVER_CPU = CLIENT_CPU == "0" and "1" or "0"

local e = emu.start { workers = 1 }
local cafile = e.ca_file
local server = fixed.start(cafile:match("^(.*)/[^/]+$"))
os.execute("taskset -pc " .. SERVER_CPU .. " " .. server.pid .. " >/dev/null; for c in $(pgrep -P " .. server.pid
  .. "); do taskset -pc " .. SERVER_CPU .. " $c >/dev/null; done")

local CONTENDERS = {
  { id = "h2", label = "HTTPS, HTTP/2 offered (multiplexed)", url = server.https_url },
  { id = "h1", label = "HTTPS, HTTP/1.1 only (a connection a slot)", url = server.https11_url },
}
local ok, err = pcall(function()
  local m = {}
  for _, c in ipairs(CONTENDERS) do m[c.id] = { wall = {}, cpu = {}, conns = {} } end
  for round = 1, ROUNDS do
    for i = 1, #CONTENDERS do
      local c = CONTENDERS[round % 2 == 1 and i or #CONTENDERS + 1 - i]
      local out = capture(("taskset -c %s lua5.4 bench/h2_batch.lua round %s %s %d"):format(CLIENT_CPU, c.url,
        cafile, N))
      local wall, cpu, conns = out:match("^(%S+) (%S+) (%d+)")
      assert(wall, "round failed: " .. out)
      table.insert(m[c.id].wall, tonumber(wall))
      table.insert(m[c.id].cpu, tonumber(cpu))
      table.insert(m[c.id].conns, tonumber(conns))
      log("h2 batch %s round %d: %.3f s wall, %.3f s CPU, %s connections", c.id, round, wall, cpu, conns)
    end
  end
  local L = {}
  local function add(s) L[#L + 1] = s end
  add("## HTTP/2 for batches (bench/h2_batch.lua)")
  add("")
  add(("- %s; %s; %d authenticated GETs with `core.request_many` at concurrency %d, a fresh process a round"
    .. " (connections and TLS handshakes included), medians of %d rounds alternating; client on CPU %s,"
    .. " nginx `return`ing a %d-byte body on CPU %s."):format(os.date("!%Y-%m-%d %H:%M UTC"),
    core.curl_version:match("^%S+"), N, WIDTH, ROUNDS, CLIENT_CPU, #fixed.MODEL, SERVER_CPU))
  add("")
  add("| batch | wall s | client CPU s | connections | × HTTP/1.1 wall | × HTTP/1.1 CPU |")
  add("|---|---:|---:|---:|---:|---:|")
  for _, c in ipairs(CONTENDERS) do
    local w, cpu = median(m[c.id].wall), median(m[c.id].cpu)
    add(("| %s | %.3f | %.3f | %d | %.2f | %.2f |"):format(c.label, w, cpu, median(m[c.id].conns),
      w / median(m.h1.wall), cpu / median(m.h1.cpu)))
  end
  local text = table.concat(L, "\n")
  results.write(OUT, "h2-batch", text)
  io.stdout:write(text, "\n")
end)
server:stop()
e:stop()
if not ok then error(err, 0) end
