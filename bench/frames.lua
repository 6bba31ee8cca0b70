-- Frame times of a 16 ms loop that calls client:poll(0) once a frame
-- (issue 25): 32 classifications (wait = true) over HTTPS with a
-- system-sized CA bundle (Debian's, 145 certificates, plus the emulator's
-- CA) and 300 ms of emulator latency, each mode in a fresh process:
--   cold    the loop starts at once (the grant, the TLS handshake and the CA
--           bundle's load happen inside poll(0))
--   warm    client:warm_up() first, then all 32 started in one frame
--   spread  client:warm_up() first, then 4 started a frame
--   capped  client:warm_up() first, all 32 started in one frame, the client
--           made with starts_per_poll = 4 (the library spreads the starts)
-- Per frame: the wall time of poll(0) and its CPU time (os.clock, so a
-- frame stretched by another process's turn on the CPU can be told apart).
--
--   emulator/with -- lua5.4 bench/frames.lua [rounds=3]
--   emulator/with -- luajit bench/frames.lua [rounds=3]
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (jit and "build/luajit/?.so;" or "build/lua5.4/?.so;") .. package.cpath
local socket = require "socket"

local N, FRAME = 32, 0.016
local base, ca = os.getenv("AVALARA_EMULATOR_TLS_URL"), os.getenv("AVALARA_EMULATOR_CA")
assert(base and ca, "run under emulator/with")

local cpu_wait = require("examples.frames").cpu_wait -- seconds this process waited for a CPU (Linux)

if arg[1] == "round" then
  local avalara = require "avalara"
  local mode, cafile = arg[2], arg[3]
  local c = avalara.new { environment = "local", emulator_url = base, account_id = "2000000001",
    license_key = "DEMO-LICENSE-KEY-0001", company_id = 1001, cafile = cafile, concurrency = N,
    starts_per_poll = mode == "capped" and 4 or nil }
  local warm_ms = 0
  if mode ~= "cold" then
    local t0 = socket.gettime()
    assert(c:warm_up())
    warm_ms = (socket.gettime() - t0) * 1000
  end
  local per_frame = mode == "spread" and 4 or N
  local started, walls, cpus, waited = 0, {}, {}, 0
  local at = socket.gettime()
  while started < N or c:pending() > 0 do
    for _ = 1, math.min(per_frame, N - started) do
      started = started + 1
      c:start_classify({ itemCode = "FRAME-" .. started .. "-" .. mode .. "-" .. os.time(),
        description = "men's cotton t-shirt" }, { country = "US", wait = true })
    end
    local t0, c0, w0 = socket.gettime(), os.clock(), cpu_wait()
    for _, d in ipairs(c:poll(0)) do assert(not d.err, tostring(d.err)) end
    walls[#walls + 1], cpus[#cpus + 1] = (socket.gettime() - t0) * 1000, (os.clock() - c0) * 1000
    waited = waited + cpu_wait() - w0
    at = at + FRAME
    local now = socket.gettime()
    if at > now then socket.sleep(at - now) else at = now end
  end
  local function stats(t)
    local s = {}
    for i, v in ipairs(t) do s[i] = v end
    table.sort(s)
    local over = 0
    for _, v in ipairs(s) do if v > 2 then over = over + 1 end end
    return s[math.floor((#s + 1) / 2)], s[#s], over
  end
  local wm, wx, wo = stats(walls)
  local _, cx, co = stats(cpus)
  print(("%d %.3f %.3f %d %.3f %d %.3f %.1f"):format(#walls, wm, wx, wo, cx, co, waited * 1000, warm_ms))
  os.exit(0)
end

local rounds = tonumber(arg[1]) or 3
local big = os.tmpname()
assert(os.execute("cat /etc/ssl/certs/ca-certificates.crt " .. ca .. " > " .. big))
-- 300 ms on every request, as docs/nonblocking.md measures
local core = require "avalara.core"
assert(core.request { method = "POST", url = os.getenv("AVALARA_EMULATOR_URL") .. "/_emulator/config",
  body = { latency_ms = 300 } })
local interp = jit and "luajit" or "lua5.4"
print(("%s, %d classifications, 16 ms frames, HTTPS, CA bundle of %s; %d rounds a mode"):format(interp, N,
  io.popen("grep -c 'BEGIN CERT' " .. big):read("*l") .. " certificates", rounds))
print("mode    frames  median ms  max ms  >2 ms | max CPU ms  >2 ms CPU | CPU wait ms  warm_up ms")
for _ = 1, rounds do
  for _, mode in ipairs { "cold", "warm", "spread", "capped" } do
    local p = assert(io.popen(interp .. " bench/frames.lua round " .. mode .. " " .. big))
    local line = p:read("*l")
    p:close()
    local f, wm, wx, wo, cx, co, wt, wu = line:match("(%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)")
    print(("%-7s %6s %10s %7s %6s | %10s %10s | %11s %10s"):format(mode, f, wm, wx, wo, cx, co, wt, wu))
  end
end
os.remove(big)
