--- What a batch run does with each answer (`on_done`): a create or lookup
-- recorded, a PENDING model polled again later (`polled`), a 401 renewing
-- the token once (every other request waits), a 429 slowing every request
-- down, a quota exhaustion or a token that cannot be had stopping the
-- creates (`halt`), a retryable failure tried again after its delay, any
-- other failure kept. The functions take the run's state (`avalara.batch.pipeline`).
-- @module avalara.batch.answers
local clock = require "avalara.clock"
local retry = require "avalara.retry"
local plan = require "avalara.batch.plan"
local result = require "avalara.batch.result"
local window = require "avalara.batch.window"

local now = clock.now
local finish, fail = window.finish, window.fail

local M = {}

--- The batch stops creating (`reason`: "quota" or "auth"), for `err`.
function M.halt(st, reason, err)
  if st.halted then return end
  st.halted, st.summary.stopped, st.summary.reason = err, reason, err
end

-- One more success: the requests in flight allowed grow back by one after a full round.
local function success_tick(st)
  st.successes = st.successes + 1
  if st.limit < st.concurrency and st.successes >= st.limit then
    st.limit, st.successes = st.limit + 1, 0
  end
end

--- A row's model is PENDING: its next poll is scheduled (backing off), or
-- it times out.
function M.polled(st, rec, model)
  rec.poll_deadline = rec.poll_deadline or now() + st.timeout
  rec.interval = rec.interval or st.interval
  rec.step = "poll"
  rec.model = model
  local t = now()
  if t >= rec.poll_deadline then
    return finish(st, rec, result.still_pending(model.id or rec.id, st.timeout))
  end
  if st.stop then return end
  -- The last poll is at the deadline itself.
  st.timers:push(math.min(t + rec.interval, rec.poll_deadline), rec)
  rec.interval = math.min(rec.interval * 1.5, 5)
end

-- 401 or 403: the token is renewed once (every other request waits: it
-- blocks here), and the step goes again. A 403 renews once for the whole
-- batch: one with the token that renewal gave is the token's scope or the
-- company, which no further token mends (the row fails, kind permission).
local function renew(st, f, rec, err)
  rec.renewals = (rec.renewals or 0) + 1
  if rec.renewals > 2 then return fail(st, rec, err) end
  if err.status == 403 then
    if f.token == st.token and st.renewed_on_403 then return fail(st, rec, err) end
    if f.token == st.token then st.renewed_on_403 = true end
  end
  if f.token == st.token then
    st.token = nil
    local tok, terr = st.client:token(f.token)
    if not tok then
      M.halt(st, "auth", terr)
      return finish(st, rec, result.not_attempted(terr), "not attempted")
    end
    st.token = tok:access_token()
  end
  st.urgent:front(rec)
end

-- 429 RateLimitExceeded: halves the requests in flight (once per Retry-After)
-- and pauses every request until then; not an attempt.
local function slow_down(st, rec, err, t)
  local ra = tonumber(err.retry_after) or 1
  local deadline = st.policy.deadline
  if ra > deadline then return fail(st, rec, result.beyond_deadline(err, ra, deadline)) end
  if t - st.cut_at > ra then
    st.limit, st.successes, st.cut_at = math.max(1, math.floor(st.limit / 2)), 0, t
  end
  st.gate = math.max(st.gate, t + ra)
  st.urgent:front(rec)
end

--- A step failed with `err` (`f`: the request in flight): renewed, slowed
-- down, retried later, turned into a create, or failed for good.
function M.on_error(st, f, rec, err)
  local t = now()
  if err.needs_refresh then return renew(st, f, rec, err) end
  if f.step == "create" and err.kind == "quota" then
    st.state:reset(rec.row)
    M.halt(st, "quota", err)
    return finish(st, rec, result.not_attempted(err), "not attempted")
  end
  if f.step == "lookup" and err.status == 404 then
    -- not found: never sent, or (an earlier run's) still under way: looked up once more when that
    -- run would have sent it again itself, then created
    if rec.unsure and st.settle_at and t < st.settle_at then
      rec.unsure = nil
      return st.timers:push(st.settle_at, rec)
    end
    rec.step = "create"
    return st.urgent:front(rec)
  end
  if err.status == 429 then return slow_down(st, rec, err, t) end
  local policy = st.policy
  if retry.retryable(err) then
    rec.attempts = rec.attempts + 1
    rec.since = rec.since or f.started
    local delay = retry.delay(policy, rec.attempts, err)
    if f.step == "poll" and rec.poll_deadline and t + delay >= rec.poll_deadline then
      -- no read after the poll deadline: the row is still pending, as far as is known
      local e = result.still_pending(rec.model and rec.model.id or rec.id, st.timeout)
      e.cause = err
      return finish(st, rec, e)
    end
    if rec.attempts < policy.max_attempts and t - rec.since + delay <= policy.deadline then
      return st.timers:push(t + delay, rec)
    end
    err.retryable = true
    local ra = tonumber(err.retry_after)
    if ra and rec.attempts < policy.max_attempts then err = result.beyond_deadline(err, ra, policy.deadline) end
  end
  return fail(st, rec, err)
end

--- A request is done (`c`: the driver's `{handle, status, body, headers}` or `{handle, err}`).
function M.on_done(st, c)
  local f = st.inflight[c.handle]
  if not f then return end
  st.inflight[c.handle] = nil
  st.n_inflight = st.n_inflight - 1
  local rec = f.rec
  st.client:observe(f.method, f.url, c.status, f.started, rec.attempts + 1, c.err)
  if c.err then return M.on_error(st, f, rec, c.err) end
  success_tick(st)
  rec.attempts, rec.since = 0, nil
  local body = c.body
  if f.step == "describe" then return window.described(st, rec, body) end
  if f.step == "lookup" and not plan.same_item(body, rec.body) then
    rec.step = "create"
    return st.urgent:front(rec)
  end
  if f.step == "create" or f.step == "lookup" then
    st.state:created(rec.row)
    rec.created = true
  end
  if type(body) ~= "table" then return finish(st, rec, result.no_body(c.status)) end
  if st.wait and body.status == "PENDING" then return M.polled(st, rec, body) end
  finish(st, rec, body)
end

return M
