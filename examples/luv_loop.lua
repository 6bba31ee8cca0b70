-- The client's non-blocking calls on an event loop (libuv, Debian's
-- lua-luv): the loop itself waits on the transfers' sockets and on the
-- client's next timeout, and calls `client:poll(0)` when either fires; no
-- thread, no busy wait. A 5 ms ticker stands for the host's own work (an
-- editor's UI, a server's other clients) and shows the loop never stalls.
--
--   emulator/with -- lua5.4 examples/luv_loop.lua [items=32]
local avalara = require "avalara"
local uv = require "luv"
local frames = require "examples.frames" -- products, printing, the loop's figures

local client = avalara.new{
  environment = os.getenv("AVALARA_ENVIRONMENT") or "local",
  account_id = os.getenv("AVALARA_ACCOUNT_ID") or "2000000001",
  license_key = os.getenv("AVALARA_LICENSE_KEY") or "DEMO-LICENSE-KEY-0001",
  company_id = os.getenv("AVALARA_COMPANY_ID") or 1001,
  concurrency = 32,
}

local count = tonumber(arg[1]) or 32
local loop = frames.loop(function() return uv.hrtime() / 1e9 end, "ticks")
for i = 1, count do
  client:start_classify({ itemCode = "LUV-" .. i, description = frames.products[(i - 1) % #frames.products + 1] },
    { country = "US", wait = true })
end

local ok, failed, wakeups = 0, 0, 0
local watchers = {} -- fd -> uv poll handle
local timer, ticker = uv.new_timer(), uv.new_timer()

-- Takes what finished, then watches what the client waits on now: its
-- sockets (they change as connections open and close) and its timeout.
local function progress()
  wakeups = wakeups + 1
  for _, done in ipairs(client:poll(0)) do
    if frames.show(done) then ok = ok + 1 else failed = failed + 1 end
  end
  local want = {}
  for _, s in ipairs(client:poll_sockets()) do want[s.fd] = (s.read and "r" or "") .. (s.write and "w" or "") end
  for fd, w in pairs(watchers) do
    if not want[fd] then
      w:stop()
      w:close()
      watchers[fd] = nil
    end
  end
  for fd, events in pairs(want) do
    watchers[fd] = watchers[fd] or uv.new_poll(fd)
    -- (re)started every time: the descriptor may be a new connection's by now
    watchers[fd]:start(events, progress)
  end
  timer:stop()
  local wait = client:poll_timeout()
  if wait then timer:start(math.ceil(wait * 1000), 0, progress) end
  if client:pending() == 0 then
    timer:close()
    ticker:close()
  end
end

-- The host's own work: a tick every 5 ms (the first one now).
ticker:start(0, 5, loop.tick)

progress()
uv.run()

print(loop.summary(ok, failed, ("; %d wake-ups"):format(wakeups)))
os.exit(failed == 0 and 0 or 1)
