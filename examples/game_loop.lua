-- A frame loop that never waits for the network: 32 classifications go out
-- at once (the client's non-blocking calls, `avalara.async`), and each
-- frame calls `client:poll(0)`, which hands back what has finished and
-- returns at once. The frame's own work (here: none) goes on every 16 ms.
--
--   emulator/with -- lua5.4 examples/game_loop.lua [items=32] [frame_ms=16]
local avalara = require "avalara"
local socket = require "socket"
local frames = require "examples.frames" -- products, printing, the loop's figures

local client = avalara.new{
  environment = os.getenv("AVALARA_ENVIRONMENT") or "local",
  account_id = os.getenv("AVALARA_ACCOUNT_ID") or "2000000001",
  license_key = os.getenv("AVALARA_LICENSE_KEY") or "DEMO-LICENSE-KEY-0001",
  company_id = os.getenv("AVALARA_COMPANY_ID") or 1001,
  concurrency = 32,
}

local count, frame = tonumber(arg[1]) or 32, (tonumber(arg[2]) or 16) / 1000
local loop = frames.loop(socket.gettime, "frames")
for i = 1, count do
  -- wait = true: read each classification until it is no longer PENDING (without blocking)
  client:start_classify({ itemCode = "GAME-" .. i, description = frames.products[(i - 1) % #frames.products + 1] },
    { country = "US", wait = true })
end

local ok, failed, longest_poll = 0, 0, 0
local frame_at = socket.gettime()
while client:pending() > 0 do
  loop.tick()
  local t0 = socket.gettime()
  for _, done in ipairs(client:poll(0)) do
    if frames.show(done) then ok = ok + 1 else failed = failed + 1 end
  end
  longest_poll = math.max(longest_poll, socket.gettime() - t0)
  -- ... update and render the frame here ...
  -- the next frame on the beat (a late frame does not push the later ones back)
  frame_at = frame_at + frame
  local now = socket.gettime()
  if frame_at > now then socket.sleep(frame_at - now) else frame_at = now end
end

print(loop.summary(ok, failed, (", longest poll %.1f ms"):format(longest_poll * 1000)))
os.exit(failed == 0 and 0 or 1)
