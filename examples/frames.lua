-- What the two loop examples (game_loop.lua, luv_loop.lua) share: their
-- products, how they show a finished call, and the figures of their loop:
-- the longest gap between two iterations, also without the time other
-- processes held the CPU, and the CPU time used against the wall time.
local M = {}

M.products = { "men's cotton t-shirt", "leather handbag", "stainless steel kitchen knife", "wooden chair",
  "laptop computer", "wool sweater", "rubber tyres for cars", "fresh apples" }

-- Prints an entry of `client:poll`; returns whether the call succeeded.
function M.show(done)
  if done.err then
    print(done.handle.id, "FAILED", done.err.kind, done.err.message)
    return false
  end
  print(done.handle.id, done.result.status, done.result.hsCode or "-")
  return true
end

-- Seconds this process has waited for a CPU while runnable (other processes
-- had it), from Linux's /proc/self/schedstat; 0 where there is none. A busy
-- machine adds that to a gap, not the loop.
local function cpu_wait()
  local f = io.open("/proc/self/schedstat")
  if not f then return 0 end
  local _, waited = f:read("*n", "*n")
  f:close()
  return (waited or 0) / 1e9
end
M.cpu_wait = cpu_wait

-- The figures of a loop timed by `clock()` (seconds): `tick()` at each
-- iteration (the gaps are those between two ticks), `summary(...)` at the end.
function M.loop(clock, unit)
  local started, cpu0, wait0 = clock(), os.clock(), cpu_wait()
  local last, last_wait
  local s = { ticks = 0, longest_gap = 0, own_gap = 0 }
  function s.tick()
    local t, waited = clock(), cpu_wait()
    if last then
      s.longest_gap = math.max(s.longest_gap, t - last)
      s.own_gap = math.max(s.own_gap, t - last - (waited - last_wait))
    end
    last, last_wait, s.ticks = t, waited, s.ticks + 1
  end
  function s.summary(ok, failed, extra)
    local wall = clock() - started
    return ("%d classified, %d failed in %.2f s; %d %s, longest gap %.1f ms (%.1f ms not counting waits for a "
      .. "CPU)%s; CPU %.3f s of %.2f s wall; waited %.3f s for a CPU"):format(ok, failed, wall, s.ticks, unit,
      s.longest_gap * 1000, s.own_gap * 1000, extra or "", os.clock() - cpu0, wall, cpu_wait() - wait0)
  end
  return s
end

return M
