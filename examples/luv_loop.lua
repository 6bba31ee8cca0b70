-- The client's non-blocking calls on an event loop (libuv, Debian's
-- lua-luv): the loop itself waits on the transfers' sockets and on the
-- client's next timeout, and calls `client:poll(0)` when either fires; no
-- thread, no busy wait. A 10 ms ticker stands for the host's own work (an
-- editor's UI, a server's other clients) and shows the loop never stalls.
--
--   emulator/with -- lua5.4 examples/luv_loop.lua [items=32]
local avalara = require "avalara"
local uv = require "luv"

local client = avalara.new{
  environment = os.getenv("AVALARA_ENVIRONMENT") or "local",
  account_id = os.getenv("AVALARA_ACCOUNT_ID") or "2000000001",
  license_key = os.getenv("AVALARA_LICENSE_KEY") or "DEMO-LICENSE-KEY-0001",
  company_id = os.getenv("AVALARA_COMPANY_ID") or 1001,
  concurrency = 32,
}

local count = tonumber(arg[1]) or 32
local products = { "men's cotton t-shirt", "leather handbag", "stainless steel kitchen knife", "wooden chair",
  "laptop computer", "wool sweater", "rubber tyres for cars", "fresh apples" }

local function clock() return uv.hrtime() / 1e9 end
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

local started, cpu0 = clock(), os.clock()
for i = 1, count do
  client:start_classify({ itemCode = "LUV-" .. i, description = products[(i - 1) % #products + 1] },
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
    if done.err then
      failed = failed + 1
      print(done.handle.id, "FAILED", done.err.kind, done.err.message)
    else
      ok = ok + 1
      print(done.handle.id, done.result.status, done.result.hsCode or "-")
    end
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

-- The host's own work: a tick every 10 ms, and the longest time between two.
local last, last_wait, longest_gap, own_gap, ticks = clock(), cpu_wait(), 0, 0, 0
ticker:start(10, 10, function()
  local t, waited = clock(), cpu_wait()
  longest_gap, own_gap = math.max(longest_gap, t - last), math.max(own_gap, t - last - (waited - last_wait))
  last, last_wait, ticks = t, waited, ticks + 1
end)

progress()
uv.run()

local wall, cpu = clock() - started, os.clock() - cpu0
print(("%d classified, %d failed in %.2f s; %d ticks, longest gap %.1f ms (%.1f ms not counting waits for a CPU); "
  .. "%d wake-ups; CPU %.3f s of %.2f s wall"):format(ok, failed, wall, ticks, longest_gap * 1000, own_gap * 1000,
  wakeups, cpu, wall))
os.exit(failed == 0 and 0 or 1)
