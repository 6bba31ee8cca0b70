--- The fleet's rate budget: at most `requests` API requests in any
-- `window` seconds, counted for every host on one Redis key
-- (`rate = {requests = N, window = S}` of `avalara.fleet.new`).
--
-- A sliding-window log, one Lua script run atomically by Redis: the key is
-- a sorted set of the requests let through in the last `window`
-- milliseconds (scored by Redis's own clock, `TIME`, so the hosts' clocks
-- do not matter); a request gets a place when fewer than `requests` are in
-- it, else the script answers how long until the oldest leaves. Why not a
-- token bucket: a bucket of N tokens refilled at N per window lets up to 2N
-- through in one window (a full bucket spent, then a window of refill),
-- where Avalara's limit is per window; the log never lets more than N
-- through in any window, at the price of one set member per request (N at
-- most: a few kilobytes).
--
-- A caller without a place sleeps that long (plus up to 10 ms of jitter, so
-- that waiters do not all ask again at once) and asks again, up to
-- `max_wait` seconds (30), then fails with `err.code = "rate_budget"`. When
-- Redis cannot be reached the budget is not enforced (the breaker of
-- `avalara.store.failover` warns); requests are not failed for it.
-- @module avalara.fleet.rate
local core = require "avalara.core"
local retry = require "avalara.retry"
local client = require "avalara.redis.client"

local M = {}

local Budget = {}
Budget.__index = Budget

-- KEYS: the log. ARGV: requests, window in ms, a unique member.
-- Returns 0 (let through) or the milliseconds to wait.
local TAKE = [[
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now + 1)
]]

--- Checks `rate` (raises naming the field) and makes the budget.
-- @param redis an `avalara.redis.client`
-- @string key the Redis key of the log
-- @tparam table rate `{requests = N, window = S, max_wait = 30}`
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
  return setmetatable({ redis = redis, key = key, requests = n, window = window, max_wait = max_wait,
    breaker = breaker }, Budget)
end

--- Takes a place for one request, sleeping (with `sleep`) while there is none.
-- @tparam function sleep the client's sleep (`ngx.sleep` in nginx)
-- @return true, or nil, err (`kind` "timeout", `code` "rate_budget") after `max_wait` seconds
function Budget:take(sleep)
  local deadline = retry.now() + self.max_wait
  local window_ms = string.format("%d", math.ceil(self.window * 1000))
  while self.breaker:up() do
    local wait, err = self.redis:eval(TAKE, { self.key }, { self.requests, window_ms, client.unique() })
    if wait == nil then
      self.breaker:failed(err)
      return true
    end
    self.breaker:ok()
    if wait == 0 then return true end
    local s = wait / 1000 + math.random() * 0.01
    if retry.now() + s > deadline then
      return nil, core.error { kind = "timeout", code = "rate_budget", retryable = false,
        message = ("the fleet's rate budget (%d requests per %g s) had no room within %g s")
          :format(self.requests, self.window, self.max_wait) }
    end
    sleep(s)
  end
  return true
end

return M
