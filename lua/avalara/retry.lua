--- Retries with exponential backoff and full jitter (docs/design.md section 6).
--
-- Retried: transport and timeout errors, 5xx, 408, 429 (not a quota
-- exhaustion), a 2xx whose body is unusable (truncated, not JSON, too
-- large), and AvaTax's `IdentityServerError` (36) whatever its status.
-- Never retried: `invalid_client`, `invalid_grant`, `invalid_scope`, quota
-- exhaustion, TLS errors, a permission error, `AvalaraIdentityApiError`
-- (608) whatever its status, any other 4xx. A 401 or 403 that asks for a
-- new token (`needs_refresh`) is handled by the client: it renews the token
-- once and retries (docs/errors.md).
-- @module avalara.retry
local M = {}

local clock = require "avalara.clock"

--- Seconds since the epoch: `avalara.clock.now` (kept here for callers of `retry.now`).
M.now = clock.now

--- Sleeps `s` seconds: `avalara.clock.sleep` (the host's sleep given to `clock.set`, else the platform's).
-- @tparam number s
function M.sleep(s) return clock.sleep(s) end

--- The default policy: 4 attempts, delays from 0.2 s doubling up to 5 s, 30 s in all.
M.defaults = { max_attempts = 4, base_delay = 0.2, max_delay = 5, deadline = 30 }

local never = { invalid_client = true, invalid_grant = true, invalid_scope = true,
  unauthorized_client = true, unsupported_grant_type = true, invalid_request = true,
  AvalaraIdentityApiError = true }
-- Codes worth another attempt whatever the status: Identity failed behind the API.
local always = { IdentityServerError = true }

--- Whether an error is worth another attempt.
-- @tparam table err a structured error
-- @treturn boolean
function M.retryable(err)
  if type(err) ~= "table" then return false end
  local kind, status = err.kind, err.status
  if kind == "quota" or kind == "tls" or kind == "permission" then return false end
  if err.code and never[err.code] then return false end
  if err.code and always[err.code] then return true end
  if kind == "transport" or kind == "timeout" then return true end
  if type(status) == "number" then
    if status >= 500 or status == 408 then return true end
    if status == 429 then return true end
    if status >= 200 and status < 300 and (kind == "parse" or kind == "http") then return true end
    return false
  end
  return err.retryable == true
end

--- Normalises a policy table (fields of `M.defaults`; `false` = no retries).
function M.policy(p)
  if p == false then p = { max_attempts = 1 } end
  if p ~= nil and type(p) ~= "table" then error("avalara: 'retries' must be a table or false", 3) end
  local out = {}
  for k, v in pairs(M.defaults) do out[k] = v end
  for k, v in pairs(p or {}) do
    if M.defaults[k] ~= nil and (type(v) ~= "number" or v < 0) then
      error("avalara: 'retries." .. k .. "' must be a non-negative number", 3)
    end
    out[k] = v
  end
  if out.max_attempts < 1 then out.max_attempts = 1 end
  return out
end

--- The delay before attempt `attempt + 1` (full jitter), honouring `retry_after`.
-- @tparam table policy
-- @int attempt the attempt that just failed (1-based)
-- @tparam[opt] table err its error (for `retry_after`)
-- @tparam[opt] function random `math.random`-like
-- @treturn number seconds
function M.delay(policy, attempt, err, random)
  random = random or math.random
  local cap = math.min(policy.max_delay, policy.base_delay * 2 ^ (attempt - 1))
  local d = random() * cap
  local ra = type(err) == "table" and tonumber(err.retry_after)
  if ra and ra >= 0 then d = math.max(d, ra) end
  return d
end

--- What follows a failed attempt, as `run` decides it: the delay before
-- attempt `attempt + 1`, or nil to give up with `err`. An error worth
-- retrying that is given up on says so (`retryable = true`, `attempts`), as
-- a later try may well succeed; the C core calls a 2xx it cannot parse not
-- retryable, this layer retries it.
-- @tparam table policy from `M.policy`
-- @int attempt the attempt that failed (1-based)
-- @number elapsed seconds since the first attempt began
-- @param err its error
-- @tparam[opt] table hooks `random()`, `retryable(err)`, `deadline` (a time of `avalara.clock`:
-- no attempt starts after it, nor one whose delay would end at or past it), `now()`
-- @treturn number|nil seconds
function M.next_delay(policy, attempt, elapsed, err, hooks)
  hooks = hooks or {}
  if not (hooks.retryable or M.retryable)(err) then return nil end
  if type(err) == "table" then err.retryable, err.attempts = true, attempt end
  if attempt >= policy.max_attempts then return nil end
  local d = M.delay(policy, attempt, err, hooks.random)
  if elapsed + d > policy.deadline then return nil end
  if hooks.deadline and (hooks.now or M.now)() + d >= hooks.deadline then return nil end
  return d
end

--- How long before its deadline a wait makes its last poll: the time kept
-- for that poll's answer, so that the whole wait ends by its deadline (a
-- tenth of the timeout, 0.1 s to 1 s).
-- @number timeout the wait's timeout, seconds
-- @treturn number seconds
function M.poll_reserve(timeout)
  return math.max(0.1, math.min(1, timeout / 10))
end

local function pack(...) return { n = select("#", ...), ... } end

--- Runs `fn(attempt)` until it succeeds, fails for good, or the attempts or
-- the deadline run out. `fn` returns its results, or `nil, err`.
-- @tparam table policy from `M.policy`
-- @tparam function fn
-- @tparam[opt] table hooks `sleep(s)`, `now()`, `random()`, `retryable(err)`, `started` (the
-- time the first attempt began, when it ran before this call), `deadline` (see `next_delay`)
-- @return fn's results, or nil, err (the last error)
function M.run(policy, fn, hooks)
  hooks = hooks or {}
  local sleep, now = hooks.sleep or M.sleep, hooks.now or M.now
  local start = hooks.started or now()
  local attempt = 0
  while true do
    attempt = attempt + 1
    local res = pack(fn(attempt))
    if res[1] ~= nil then return (table.unpack or unpack)(res, 1, res.n) end
    local err = res[2]
    local d = M.next_delay(policy, attempt, now() - start, err, hooks)
    if not d then return nil, err end
    sleep(d)
  end
end

return M
