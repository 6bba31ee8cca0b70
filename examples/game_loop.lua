-- A frame loop that never waits for the network: 32 classifications go out
-- at once (the client's non-blocking calls, `avalara.async`), and each
-- frame calls `client:poll(0)`, which hands back what has finished and
-- returns at once. The frame's own work (here: none) goes on every 16 ms.
--
--   emulator/with -- lua5.4 examples/game_loop.lua [items=32] [frame_ms=16]
local avalara = require "avalara"
local socket = require "socket"

local client = avalara.new{
  environment = os.getenv("AVALARA_ENVIRONMENT") or "local",
  account_id = os.getenv("AVALARA_ACCOUNT_ID") or "2000000001",
  license_key = os.getenv("AVALARA_LICENSE_KEY") or "DEMO-LICENSE-KEY-0001",
  company_id = os.getenv("AVALARA_COMPANY_ID") or 1001,
  concurrency = 32,
}

local count, frame = tonumber(arg[1]) or 32, (tonumber(arg[2]) or 16) / 1000
local products = { "men's cotton t-shirt", "leather handbag", "stainless steel kitchen knife", "wooden chair",
  "laptop computer", "wool sweater", "rubber tyres for cars", "fresh apples" }

-- Seconds this process has waited for a CPU while runnable (other processes
-- had it), from Linux's /proc/self/schedstat; 0 where there is none. A busy
-- machine adds that to a frame, not this loop.
local function cpu_wait()
  local f = io.open("/proc/self/schedstat")
  if not f then return 0 end
  local _, waited = f:read("*n", "*n")
  f:close()
  return (waited or 0) / 1e9
end

local started, cpu0 = socket.gettime(), os.clock()
for i = 1, count do
  -- wait = true: read each classification until it is no longer PENDING (without blocking)
  client:start_classify({ itemCode = "GAME-" .. i, description = products[(i - 1) % #products + 1] },
    { country = "US", wait = true })
end

local frames, longest_gap, own_gap, longest_poll, ok, failed = 0, 0, 0, 0, 0, 0
local frame_at = socket.gettime()
local last, last_wait = frame_at, cpu_wait()
while client:pending() > 0 do
  local t0, waited = socket.gettime(), cpu_wait()
  longest_gap, own_gap = math.max(longest_gap, t0 - last), math.max(own_gap, t0 - last - (waited - last_wait))
  last, last_wait = t0, waited
  frames = frames + 1
  for _, done in ipairs(client:poll(0)) do
    if done.err then
      failed = failed + 1
      print(done.handle.id, "FAILED", done.err.kind, done.err.message)
    else
      ok = ok + 1
      print(done.handle.id, done.result.status, done.result.hsCode or "-")
    end
  end
  longest_poll = math.max(longest_poll, socket.gettime() - t0)
  -- ... update and render the frame here ...
  -- the next frame on the beat (a late frame does not push the later ones back)
  frame_at = frame_at + frame
  local now = socket.gettime()
  if frame_at > now then socket.sleep(frame_at - now) else frame_at = now end
end

local wall, cpu = socket.gettime() - started, os.clock() - cpu0
print(("%d classified, %d failed in %.2f s; %d frames, longest gap %.1f ms (%.1f ms not counting waits for a "
  .. "CPU), longest poll %.1f ms; CPU %.3f s of %.2f s wall"):format(ok, failed, wall, frames, longest_gap * 1000,
  own_gap * 1000, longest_poll * 1000, cpu, wall))
os.exit(failed == 0 and 0 or 1)
