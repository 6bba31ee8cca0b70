--- The engine behind `client.async` (one per client): the calls under way,
-- the driver their exchanges run on (`avalara.transport.driver`), and the token grant
-- they share. It uses the client's public interface only: `token`,
-- `token_cache` (`peek`, `lock`, `stored`, `grant`, `keep`, `patience`),
-- `observe`, and the fields `retries`, `sleep`, `concurrency`.
-- @module avalara.async.engine
local clock = require "avalara.clock"
local core = require "avalara.core"
local retry = require "avalara.retry"
local multi = require "avalara.transport.driver"
local cached = require "avalara.token.cached"

local M = {}

local now = clock.now

-- How often calls waiting for a token look at the store while another
-- process holds its lock.
local LOCK_RETRY = 0.02

--- The engine.
-- @type Engine
local Engine = {}
Engine.__index = Engine
M.Engine = Engine

--- The engine of `client`.
-- @param client
-- @treturn Engine
function M.new(client)
  return setmetatable({ client = client, ops = {}, n_ops = 0, ready = {}, timed = {}, inflight = {}, done = {},
    waiters = {} }, Engine)
end

-- The client's transport decides which driver: see `avalara.transport.driver`.
--- The driver of the exchanges (made when the first one goes).
function Engine:driver()
  if not self.drv then
    self.drv = multi.new(self.client, { concurrency = self.client.concurrency,
      starts_per_poll = self.client.starts_per_poll })
  end
  return self.drv
end

-- Whether nothing is under way (the driver may go: the next call chooses anew).
function Engine:idle()
  return self.n_ops == 0 and #self.done == 0 and not self.grant and next(self.inflight) == nil
end

-- An operation: `handle`, the current request (`method`, `url`, `body`), what
-- its answer leads to (`answer(engine, op, body)`), and its `call`: the
-- attempts of that request, as `client:call` counts them. Optional: `deadline`
-- (a time of `avalara.clock`: no request of it runs past it, each one's timeout
-- clipped to the time left, no retry after it) and `late(err)` (the error to
-- finish with when a request is given up on).
local function new_call(op)
  op.call = { attempt = 1, exchange = 0, renewed = false } -- `started`: when its first exchange went
end
M.new_call = new_call

function Engine:add(op)
  self.ops[op.handle] = op
  self.n_ops = self.n_ops + 1
  return op.handle
end

function Engine:finish(op, result, err)
  local h = op.handle
  if self.ops[h] ~= op then return end -- cancelled
  self.ops[h] = nil
  self.n_ops = self.n_ops - 1
  h.done, h.result, h.err = true, result, err
  self.done[#self.done + 1] = { handle = h, result = result, err = err }
end

-- `op` sends its request again, or its next one, at `at` (now when nil).
function Engine:schedule(op, at)
  if at and at > now() then
    self.timed[op] = at
  else
    self.ready[#self.ready + 1] = op
  end
end

-- The access token for `op`'s request: a string, nil and an error, or
-- false when `op` now waits for the grant.
function Engine:token_for(op)
  local c = self.client
  local cache = c:token_cache()
  if not cache or self:driver().kind ~= "multi" then
    local tok, err = c:token(op.stale)
    if not tok then return nil, err end
    return tok:access_token()
  end
  -- the token held while valid (no store read a request), as client:token() does
  local tok, err, renewal = cache:peek(op.stale)
  if tok then return tok:access_token() end
  if err then return nil, err end
  self.waiters[#self.waiters + 1] = op
  if not self.grant then
    self.grant = { step = "lock", attempt = 1, first = now(), renewed = renewal, stale = op.stale,
      give_up = now() + cache:patience() }
    self:grant_step()
  end
  return false
end

-- Sends `op`'s request.
function Engine:launch(op)
  if self.ops[op.handle] ~= op then return end -- cancelled
  local token, err = self:token_for(op)
  if token == false then return end
  if token == nil then return self:finish(op, nil, err) end
  op.stale, op.token = nil, token
  op.call.exchange = op.call.exchange + 1
  op.sent = now()
  op.call.started = op.call.started or op.sent
  local req = { method = op.method, url = op.url, body = op.body, token = token }
  if op.deadline then
    -- the call's deadline bounds this request too (`op.deadline`, as `client:within`)
    local left = op.deadline - now()
    if left < 0.001 then
      return self:failed(op, core.error { kind = "timeout", retryable = true,
        message = "the call's timeout ran out before " .. op.method .. " " .. op.url })
    end
    local o = self.client:transport_info().options
    if left < (o.timeout or 30) then req.timeout = left end
    if left < (o.connect_timeout or 10) then req.connect_timeout = left end
  end
  op.ex = self:driver():add(req)
  self.inflight[op.ex] = op
end

-- The calls that waited for the grant go on (or fail with its error).
function Engine:granted(err)
  local waiting = self.waiters
  self.waiters, self.grant = {}, nil
  for _, op in ipairs(waiting) do
    if err then self:finish(op, nil, err) else self:schedule(op) end
  end
end

-- The grant's next step: take the store's lock (or see the token another
-- process stored), then send the client credentials grant on the multi.
function Engine:grant_step()
  local g, cache = self.grant, self.client:token_cache()
  if g.step == "lock" then
    local unlock, lerr = cache:lock()
    if cached.misconfigured(lerr) then return self:granted(lerr) end
    local have = cache:stored(g.stale) ~= nil
    if not unlock then
      if have then return self:granted() end
      -- an outage (nil, err) is not waited for: on without the lock
      if lerr == nil and now() < g.give_up then g.at = now() + LOCK_RETRY; return end
      -- a lost lock: go on without it, as client:token() does
    elseif have then
      unlock()
      return self:granted()
    end
    g.unlock = unlock
  end
  g.step, g.at, g.sent = "sent", nil, now()
  local grant, url = cache:grant()
  g.url, g.ex = url, self:driver():add(grant)
  self.inflight[g.ex] = g
end

-- The grant's answer: the token kept (store, on_token) and the waiters
-- released, or another attempt later, or every waiter failed.
function Engine:grant_done(entry)
  local g, c = self.grant, self.client
  c:observe("POST", g.url, entry.token and 200 or nil, g.sent, g.attempt, entry.err)
  if entry.token then
    local kept, kerr = c:token_cache():keep(cached.record(entry.token), g.renewed, g.unlock)
    return self:granted(not kept and kerr or nil)
  end
  local d = retry.next_delay(c.retries, g.attempt, now() - g.first, entry.err)
  if d then
    g.attempt, g.step, g.at = g.attempt + 1, "retry", now() + d
    return
  end
  if g.unlock then g.unlock() end
  return self:granted(entry.err)
end

-- A request's failure: a renewal after a 401 that asks for it (once per
-- call), another attempt after the policy's delay, or the call's error.
function Engine:failed(op, err)
  local call = op.call
  if err.needs_refresh and not call.renewed then
    call.renewed, op.stale = true, op.token
    return self:schedule(op)
  end
  local d = retry.next_delay(self.client.retries, call.attempt, now() - call.started, err,
    { deadline = op.deadline })
  if not d then return self:finish(op, nil, op.late and op.late(err) or err) end
  call.attempt = call.attempt + 1
  self:schedule(op, now() + d)
end

function Engine:completed(entry)
  local f = self.inflight[entry.handle]
  if not f then return end
  self.inflight[entry.handle] = nil
  if f == self.grant then return self:grant_done(entry) end
  local op = f
  op.ex = nil
  self.client:observe(op.method, op.url, entry.status, op.sent, op.call.exchange, entry.err)
  if entry.err then return self:failed(op, entry.err) end
  op.answer(self, op, entry.body)
end

-- The earliest time something is due (a retry, a poll, the grant), or nil.
function Engine:next_due()
  local t = self.grant and self.grant.at
  for _, at in pairs(self.timed) do
    if not t or at < t then t = at end
  end
  return t
end

-- Sends what is due.
function Engine:launch_due()
  local t = now()
  for op, at in pairs(self.timed) do
    if at <= t then
      self.timed[op] = nil
      self.ready[#self.ready + 1] = op
    end
  end
  local g = self.grant
  if g and g.at and g.at <= t then self:grant_step() end
  local ready = self.ready
  self.ready = {}
  for _, op in ipairs(ready) do self:launch(op) end
end

-- One turn: send what is due, let the driver run up to `span` seconds (less
-- when something is due sooner), take what it finished.
function Engine:turn(span)
  self:launch_due()
  local due = self:next_due()
  if #self.done > 0 or #self.ready > 0 then span = 0 end
  if due then span = math.max(0, math.min(span, due - now())) end
  local drv = self.drv
  -- What the answers lead to (a grant's waiters, a renewal) goes at the
  -- next turn: one poll does not both finish a burst and start the next.
  if drv and drv:pending() > 0 then
    for _, entry in ipairs(drv:poll(span)) do self:completed(entry) end
  elseif span > 0 then
    self.client.sleep(span)
  end
end

function Engine:poll(timeout)
  local deadline = now() + timeout
  repeat
    self:turn(math.max(0, deadline - now()))
  until #self.done > 0 or now() >= deadline or self:idle()
  local out = self.done
  self.done = {}
  if self:idle() and self.drv then
    self.drv:close()
    self.drv = nil
  end
  return out
end

--- How many started calls `poll` has not reported yet.
function Engine:pending()
  return self.n_ops + #self.done
end

--- Cancels the call of `handle`: true when it was under way (or reported by no `poll` yet).
function Engine:cancel(handle)
  local op = self.ops[handle]
  if not op then
    for i, d in ipairs(self.done) do
      if d.handle == handle then
        table.remove(self.done, i)
        handle.done, handle.result, handle.err = nil, nil, nil
        return true
      end
    end
    return false
  end
  self.ops[handle] = nil
  self.n_ops = self.n_ops - 1
  self.timed[op] = nil
  if op.ex then
    self.inflight[op.ex] = nil
    self.drv:cancel(op.ex)
    if type(op.ex) == "userdata" then op.ex:close() end
    op.ex = nil
  end
  return true
end

--- The sockets of the transfers in flight (the driver's).
function Engine:sockets()
  return self.drv and self.drv:sockets() or {}
end

--- Seconds until `poll` has work even without socket activity, or nil.
function Engine:timeout()
  if self:pending() == 0 then return nil end
  if #self.done > 0 or #self.ready > 0 then return 0 end
  local t = self.drv and self.drv:timeout()
  local due = self:next_due()
  if due then
    due = math.max(0, due - now())
    t = t and math.min(t, due) or due
  end
  return t
end

return M
