--- The fleet's rate budget: at most `requests` API requests in any
-- `window` seconds, counted for every host on one Redis key
-- (`rate = {requests = N, window = S}` of `avalara.fleet.new`).
--
-- A sliding-window log with reservations, one Lua script run atomically
-- by Redis. The key is a sorted set of the requests' times (Redis's own
-- clock, `TIME`, in milliseconds: the hosts' clocks do not matter). A
-- request is given the earliest time, now or later, at which no window of
-- `window` seconds would hold more than `requests` of them, and no 20th of
-- a window more than `burst` (N/20, rounded up); the script records it and
-- answers how long to wait for it. The caller sleeps that long and goes:
-- one round trip per request, however many wait, and waiters go in the
-- order they asked.
--
-- Why not a token bucket: a bucket of N refilled at N per window lets up to
-- 2N through in one window (a full bucket, then a window of refill), where
-- Avalara's limit is per window; the log never lets more than N through in
-- any window, at the price of one set member per request (a few kilobytes).
-- Why the burst cap: without it the N places of a window go out at once,
-- those requests queue at the server and some arrive in its next window
-- (measured: up to 25 % over N in one second at the emulator, see the
-- docs/fleet.md, "Using a fleet"); spread over the window they arrive as they left.
--
-- A request whose time would be more than `max_wait` seconds (30) away is
-- not given one: it fails with `err.code = "rate_budget"`. When Redis
-- cannot be reached the budget is not enforced (the breaker of
-- `avalara.store.failover` warns); requests are not failed for it.
-- @module avalara.fleet.rate
local core = require "avalara.core"
local client = require "avalara.resp.client"

local M = {}

local Budget = {}
Budget.__index = Budget

-- KEYS: the log. ARGV: requests, window in ms, a unique member, burst,
-- burst window in ms, max wait in ms. Returns the milliseconds to wait for
-- the place given (0: go now), or -1 when it would be more than max wait.
local TAKE = [[
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local burst, burst_window = tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
local at = now
local function after(rank, span)
  local e = redis.call('ZRANGE', KEYS[1], rank, rank, 'WITHSCORES')
  at = math.max(at, tonumber(e[2]) + span)
end
if n > 0 then after(n - 1, 0) end
if n >= limit then after(n - limit, window) end
if n >= burst then after(n - burst, burst_window) end
if at - now > tonumber(ARGV[6]) then return -1 end
redis.call('ZADD', KEYS[1], at, ARGV[3])
redis.call('PEXPIRE', KEYS[1], at - now + window)
return at - now
]]

--- Checks `rate` (raises naming the field) and makes the budget.
-- @param redis an `avalara.redis.client`
-- @string key the Redis key of the log
-- @tparam table rate `{requests = N, window = S, max_wait = 30, burst = ceil(N / 20)}`
-- @param breaker the fleet's breaker (`avalara.store.failover.breaker`)
-- @treturn table the budget
function M.new(redis, key, rate, breaker)
  if type(rate) ~= "table" then error("avalara.fleet: 'rate' must be a table {requests = N, window = S}", 0) end
  local n, window, max_wait = rate.requests, rate.window or 1, rate.max_wait or 30
  if type(n) ~= "number" or n < 1 or n ~= math.floor(n) then
    error("avalara.fleet: 'rate.requests' must be a positive integer", 0)
  end
  if type(window) ~= "number" or window < 0.001 then
    error("avalara.fleet: 'rate.window' must be a number of seconds (at least 0.001)", 0)
  end
  if type(max_wait) ~= "number" or max_wait < 0 then
    error("avalara.fleet: 'rate.max_wait' must be a non-negative number", 0)
  end
  local burst = rate.burst or math.ceil(n / 20)
  if type(burst) ~= "number" or burst < 1 or burst > n then
    error("avalara.fleet: 'rate.burst' must be a number from 1 to 'rate.requests'", 0)
  end
  return setmetatable({ redis = redis, key = key, requests = n, window = window, max_wait = max_wait,
    burst = burst, breaker = breaker }, Budget)
end

--- Takes a place for one request, sleeping (with `sleep`) until its time.
-- @tparam function sleep the client's sleep (`ngx.sleep` in nginx)
-- @return true, or nil, err (`kind` "timeout", `code` "rate_budget") when the
-- place would be more than `max_wait` seconds away, or nil, err (`kind` "store") when
-- Redis is misconfigured (see `avalara.store.redis`)
function Budget:take(sleep)
  if not self.breaker:up() then return true end
  local window_ms = math.ceil(self.window * 1000)
  local wait, err, _, code = self.redis:eval(TAKE, { self.key }, { self.requests, window_ms, client.unique(),
    self.burst, math.max(1, math.floor(window_ms / 20)), math.floor(self.max_wait * 1000) })
  if wait == nil then
    -- an outage leaves the budget unenforced; a misconfigured Redis fails the request
    local e = client.error(err, code)
    if not self.breaker:failed(e) then return nil, e end
    return true
  end
  self.breaker:ok()
  if wait < 0 then
    return nil, core.error { kind = "timeout", code = "rate_budget", retryable = false,
      message = ("the fleet's rate budget (%d requests per %g s) has no room within %g s")
        :format(self.requests, self.window, self.max_wait) }
  end
  if wait > 0 then sleep(wait / 1000) end
  return true
end

return M
