--- Non-blocking calls for hosts with a loop of their own (a game loop, an
-- editor, an event loop): a call is started, and its result is collected
-- by polling, never waited for.
--
--    local h = client:start_classify({ itemCode = "TS-1", description = "men's cotton t-shirt" },
--                                    { country = "US", wait = true })
--    while client:pending() > 0 do              -- once per frame, say
--      for _, done in ipairs(client:poll(0)) do  -- never blocks
--        if done.err then print(done.handle.id, "failed", done.err.message)
--        else print(done.handle.id, done.result.hsCode) end
--      end
--      -- ... the frame's own work ...
--    end
--
-- **What a call does.** The same as its blocking twin (`client:classify`,
-- `client:classification`, `client:wait`): the same checks (a bad item
-- raises at once, before any request), the same requests, the same result
-- or error. Retries follow the client's `retries` policy with the same
-- backoff, but a retry is a time at which the request goes again, not a
-- sleep; a 401 that asks for a new token renews it once, as `client:call` does.
--
-- **Where the requests run.** On the core's multi handle (`core.multi`,
-- docs/core.md), `concurrency` (the client's, 16) at a time; every other call
-- waits in a queue, first in first out. `poll(seconds)` starts what waits,
-- lets the transfers progress and hands back what is finished. An event loop
-- that waits on the sockets itself asks `poll_sockets()` and
-- `poll_timeout()`, and calls `poll(0)` when either fires.
--
-- **Tokens.** The access token comes from the client's store, as for every
-- call. When it must be obtained or renewed, the grant runs on the multi
-- too, while the calls that need it wait for it (one grant for all of
-- them), holding the store's lock as `client:token()` does; when another
-- process holds the lock, the calls look at the store again every 20 ms
-- until the token is there. A token is obtained *blocking*, inside `poll`,
-- in two cases only: a client with a `token_source` (the source is called
-- as it is, e.g. a partner connection's refresh), and a client whose
-- requests go through a Lua `transport` or OpenResty cosockets (below).
--
-- **Lua transports.** `core.multi` runs libcurl only. A client with a
-- `transport` function runs each exchange inside `poll`, one at a time
-- (nginx: `concurrency` at once on light threads), so `poll` then takes as
-- long as the exchange: the API works, but it is no longer non-blocking.
-- @module avalara.async
local core = require "avalara.core"
local retry = require "avalara.retry"
local paths = require "avalara.paths"
local item_model = require "avalara.hs.item"
local multi = require "avalara.multi"

local M = {}

local now = retry.now

-- How often calls waiting for a token look at the store while another
-- process holds its lock.
local LOCK_RETRY = 0.02

-- A store's failure that is not an outage (kind "store", not retryable: a misconfigured Redis)
-- fails the calls, as in client:token().
local function misconfigured(err)
  return type(err) == "table" and err.kind == "store" and not err.retryable
end

--- A started call: what the `start_*` methods return and `poll` reports.
-- `handle.kind` is `"classify"`, `"classification"` or `"wait"`, and
-- `handle.id` the classification id (for `start_classify`, known before the
-- request: `{companyId}-{itemCode}-{country}`). Once `poll` has reported
-- it, `handle.done` is `true` and `handle.result` or `handle.err` holds what
-- was reported. `tostring` gives kind, id and state.
-- @type Handle
local Handle = {}
Handle.__index = Handle
M.Handle = Handle

Handle.__tostring = function(h)
  return ("avalara.async handle (%s %s, %s)"):format(h.kind, tostring(h.id),
    h.done and (h.err and "failed" or "done") or "pending")
end

-- ------------------------------------------------------------------ engine

-- One per client (in `client._async`): the calls under way, the driver
-- their exchanges run on, and the token grant they share.
local Engine = {}
Engine.__index = Engine

local function engine(client)
  local e = client._async
  if not e then
    e = setmetatable({ client = client, ops = {}, n_ops = 0, ready = {}, timed = {}, inflight = {}, done = {},
      waiters = {} }, Engine)
    client._async = e
  end
  return e
end

-- The driver of the exchanges, made when the first one goes (the client's
-- transport then decides which: see `avalara.multi`).
function Engine:driver()
  if not self.drv then self.drv = multi.new(self.client, { concurrency = self.client.concurrency }) end
  return self.drv
end

-- Whether nothing is under way (the driver may go: the next call chooses anew).
function Engine:idle()
  return self.n_ops == 0 and #self.done == 0 and not self.grant and next(self.inflight) == nil
end

-- An operation: `handle`, the current request (`method`, `url`, `body`), what
-- its answer leads to (`answer(engine, op, body)`), and its `call`: the
-- attempts of that request, as `client:call` counts them.
local function new_call(op)
  op.call = { attempt = 1, exchange = 0, renewed = false } -- `started`: when its first exchange went
end

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
  if c.token_source or self:driver().kind ~= "multi" then
    local tok, err = c:token(op.stale)
    if not tok then return nil, err end
    return tok:access_token()
  end
  -- the token the client holds while valid (no store read a request), as client:token() does
  local held = c._held
  if held and not op.stale and c:_valid(held._rec) then return held._rec.access_token end
  local rec, _, gerr = c.store:get(c.store_key)
  if misconfigured(gerr) then return nil, gerr end
  rec = rec or c._kept
  if c:_valid(rec, op.stale) then return c:_hold(rec)._rec.access_token end
  self.waiters[#self.waiters + 1] = op
  if not self.grant then
    self.grant = { step = "lock", attempt = 1, first = now(), renewed = rec ~= nil or c._had_token == true,
      stale = op.stale, give_up = now() + c.retries.deadline + (c.topts.timeout or 30) }
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
  op.ex = self:driver():add { method = op.method, url = op.url, body = op.body, token = token }
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
  local g, c = self.grant, self.client
  if g.step == "lock" then
    local unlock, lerr = c.store:lock(c.store_key)
    if misconfigured(lerr) then return self:granted(lerr) end
    local have = c:_valid(c.store:get(c.store_key) or c._kept, g.stale)
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
  g.ex = self:driver():add(c:_token_grant())
  self.inflight[g.ex] = g
end

-- The grant's answer: the token kept (store, on_token) and the waiters
-- released, or another attempt later, or every waiter failed.
function Engine:grant_done(entry)
  local g, c = self.grant, self.client
  c:_hook("POST", c.token_url, entry.token and 200 or nil, g.sent, g.attempt, entry.err)
  if entry.token then
    local tok = entry.token
    local fresh = { access_token = tok:access_token(), token_type = tok:token_type(), scope = tok:scope(),
      expires_at = tok:expires_at(), obtained_at = now() }
    tok:close()
    local kept, kerr = c:_took_token(fresh, g.renewed, g.unlock)
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
  local d = retry.next_delay(self.client.retries, call.attempt, now() - call.started, err)
  if not d then return self:finish(op, nil, err) end
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
  self.client:_hook(op.method, op.url, entry.status, op.sent, op.call.exchange, entry.err)
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

-- ------------------------------------------------------------------ calls

-- What a classification read leads to when the call waits: the model when
-- it is no longer PENDING, else another read after the interval (growing
-- by half up to 5 s, the last one at the deadline), as `client:wait` does.
local function waited(e, op, model)
  if type(model) == "table" and model.status ~= "PENDING" then return e:finish(op, model) end
  local w = op.waiting
  local left = w.deadline - now()
  if left <= 0 then
    return e:finish(op, nil, core.error { kind = "timeout", retryable = true, message = string.format(
      "classification %s still PENDING after %g s", w.id, w.timeout) })
  end
  new_call(op)
  e:schedule(op, now() + math.min(w.interval, left))
  w.interval = math.min(w.interval * 1.5, 5)
end

-- Turns `op` into the reads of a wait for `id`: the first one now, or after
-- the first interval when the call has seen the model already.
local function start_waiting(e, op, id, opts, seen)
  local client = e.client
  op.method, op.body = "GET", nil
  op.url = client.api_base .. paths.build("classification_get", { companyId = client.company_id, id = id })
  op.answer = waited
  op.waiting = { id = id, timeout = opts.timeout or 60, interval = opts.interval or 0.25 }
  op.waiting.deadline = now() + op.waiting.timeout
  new_call(op)
  if seen then
    e:schedule(op, now() + op.waiting.interval)
    op.waiting.interval = math.min(op.waiting.interval * 1.5, 5)
  else
    e:schedule(op)
  end
end

local function check_opts(opts, where)
  if opts ~= nil and type(opts) ~= "table" then error(where .. ": 'opts' must be a table", 3) end
  opts = opts or {}
  for _, k in ipairs { "timeout", "interval" } do
    if opts[k] ~= nil and (type(opts[k]) ~= "number" or opts[k] < 0) then
      error(where .. ": '" .. k .. "' must be a non-negative number", 3)
    end
  end
  return opts
end

--- The non-blocking calls on `avalara.Client`.
-- @type Client
local Client = {}
M.Client = Client

--- Starts a classification: the non-blocking `client:classify`. The item is
-- checked now and raises naming the field, as for `classify`.
-- @tparam table item as for `client:classify`
-- @tparam[opt] table opts `{country, item_group}` as for `classify`, and `wait = true` to go on
-- reading the classification until it is no longer `PENDING` (as `client:wait` does, with its
-- `timeout = 60` and `interval = 0.25`)
-- @treturn Handle its result: the model `classify` returns (with `wait`: the model `wait` returns)
function Client:start_classify(item, opts)
  local where = "client:start_classify"
  opts = check_opts(opts, where)
  local company = self:company(where)
  local body = item_model.body(item, { company_id = company, country = opts.country, item_group = opts.item_group,
    where = where })
  local e = engine(self)
  local h = setmetatable({ kind = "classify", id = company .. "-" .. body.item.itemCode .. "-"
    .. body.countryOfDestination }, Handle)
  local op = { handle = h, method = "POST", body = body,
    url = self.api_base .. paths.build("classification_create", { companyId = company }) }
  op.answer = function(_, _, model)
    if not opts.wait or (type(model) == "table" and model.status ~= nil and model.status ~= "PENDING") then
      return e:finish(op, model)
    end
    if type(model) ~= "table" or type(model.id) ~= "string" then
      return e:finish(op, nil, core.error { kind = "parse", message = "the classification created has no id" })
    end
    start_waiting(e, op, model.id, opts, true)
  end
  new_call(op)
  e:schedule(op)
  return e:add(op)
end

--- Starts reading a classification: the non-blocking `client:classification`.
-- @string id `{companyId}-{itemCode}-{country}`
-- @treturn Handle its result: the model
function Client:start_classification(id)
  if type(id) ~= "string" or id == "" then
    error("client:start_classification: 'id' must be a string (got " .. type(id) .. ")", 2)
  end
  local company = self:company("client:start_classification")
  local e = engine(self)
  local op = { handle = setmetatable({ kind = "classification", id = id }, Handle), method = "GET",
    url = self.api_base .. paths.build("classification_get", { companyId = company, id = id }),
    answer = function(eng, o, model) eng:finish(o, model) end }
  new_call(op)
  e:schedule(op)
  return e:add(op)
end

--- Starts waiting for a classification: the non-blocking `client:wait`.
-- A model that is no longer `PENDING` is reported, as it is, by the next `poll`.
-- @param id_or_model an id, or a model
-- @tparam[opt] table opts `{timeout = 60, interval = 0.25}`
-- @treturn Handle its result: the model, or an error of kind `timeout` when still PENDING at the deadline
function Client:start_wait(id_or_model, opts)
  opts = check_opts(opts, "client:start_wait")
  local model, id = nil, id_or_model
  if type(id_or_model) == "table" then model, id = id_or_model, id_or_model.id end
  if type(id) ~= "string" then error("client:start_wait: an id or a model with an 'id' is required", 2) end
  self:company("client:start_wait")
  local e = engine(self)
  local op = { handle = setmetatable({ kind = "wait", id = id }, Handle) }
  e:add(op)
  if model and model.status ~= nil and model.status ~= "PENDING" then
    e:finish(op, model)
  else
    start_waiting(e, op, id, opts, model ~= nil)
  end
  return op.handle
end

--- Lets the started calls progress and returns those finished: never
-- blocks with `poll(0)` (the default); with `seconds > 0` it waits up to
-- that long for one to finish (less when none is under way).
-- @number[opt=0] seconds
-- @treturn table a list, each entry `{handle = h, result = model}` or `{handle = h, err = err}`
-- (the result and error the blocking call returns), each call reported once
function Client:poll(seconds)
  if seconds ~= nil and (type(seconds) ~= "number" or seconds < 0 or seconds ~= seconds) then
    error("client:poll: 'seconds' must be a number >= 0", 2)
  end
  return engine(self):poll(seconds or 0)
end

--- How many started calls `poll` has not reported yet.
-- @treturn int
function Client:pending()
  local e = self._async
  return e and e.n_ops + #e.done or 0
end

--- Cancels a started call: its request in flight is stopped, it is never reported.
-- @tparam Handle handle
-- @treturn boolean `true` when it was under way, `false` when it was reported or cancelled already
function Client:cancel(handle)
  if getmetatable(handle) ~= Handle then error("client:cancel: a handle from client:start_* is required", 2) end
  local e = self._async
  local op = e and e.ops[handle]
  if not op then
    for i, d in ipairs(e and e.done or {}) do
      if d.handle == handle then
        table.remove(e.done, i)
        handle.done, handle.result, handle.err = nil, nil, nil
        return true
      end
    end
    return false
  end
  e.ops[handle] = nil
  e.n_ops = e.n_ops - 1
  e.timed[op] = nil
  if op.ex then
    e.inflight[op.ex] = nil
    e.drv:cancel(op.ex)
    if type(op.ex) == "userdata" then op.ex:close() end
    op.ex = nil
  end
  return true
end

--- What an event loop waits on besides the timeout: the sockets of the
-- transfers in flight, `{ {fd = n, read = bool, write = bool}, ... }`
-- (`core.multi`'s `sockets`). Read it again after each `poll`.
-- @treturn table
function Client:poll_sockets()
  local drv = self._async and self._async.drv
  return drv and drv:sockets() or {}
end

--- Seconds until `poll` has work even without socket activity (a retry or
-- a classification read due, a libcurl timer; `0`: call `poll` now), or nil
-- when only the sockets can bring any (or nothing is under way).
-- @treturn number|nil
function Client:poll_timeout()
  local e = self._async
  if not e or self:pending() == 0 then return nil end
  if #e.done > 0 or #e.ready > 0 then return 0 end
  local t = e.drv and e.drv:timeout()
  local due = e:next_due()
  if due then
    due = math.max(0, due - now())
    t = t and math.min(t, due) or due
  end
  return t
end

return M
