--- Non-blocking calls for hosts with a loop of their own (a game loop, an
-- editor, an event loop): a call is started, and its result is collected
-- by polling, never waited for.
--
--    local h = client.async:classify({ itemCode = "TS-1", description = "men's cotton t-shirt" },
--                                    { country = "US", wait = true })
--    while client.async:pending() > 0 do              -- once per frame, say
--      for _, done in ipairs(client.async:poll(0)) do  -- never blocks
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
--
-- **Names.** The service is `client.async` (`classify`, `classification`,
-- `wait`, `poll`, `pending`, `cancel`, `sockets`, `timeout`, `warm_up`); the
-- client's flat names are aliases (`M.aliases`): `start_classify`,
-- `start_classification`, `start_wait`, `poll`, `pending`, `cancel`,
-- `poll_sockets`, `poll_timeout`, `warm_up`. It uses the client's public interface
-- only (`avalara.async.engine`).
-- @module avalara.async
local core = require "avalara.core"
local clock = require "avalara.clock"
local retry = require "avalara.retry"
local options = require "avalara.options"
local paths = require "avalara.paths"
local item_model = require "avalara.hs.item"
local engine_mod = require "avalara.async.engine"

local M = {}

local now = clock.now
local new_call = engine_mod.new_call

--- The client field this service is reached as: `client.async`.
M.field = "async"

--- The client's flat names of these methods.
M.aliases = { start_classify = "classify", start_classification = "classification", start_wait = "wait",
  poll = "poll", pending = "pending", cancel = "cancel", poll_sockets = "sockets", poll_timeout = "timeout",
  warm_up = "warm_up" }

--- A started call: what `classify`, `classification` and `wait` return and `poll` reports.
-- `handle.kind` is `"classify"`, `"classification"` or `"wait"`, and
-- `handle.id` the classification id (for `classify`, known before the
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

--- The non-blocking calls of a client (`client.async`).
-- @type Async
local Async = {}
Async.__index = Async
M.Async = Async

Async.__tostring = function(self) return "avalara async service (" .. tostring(self.client) .. ")" end

--- The service of `client`.
-- @param client
-- @treturn Async
function M.new(client)
  return setmetatable({ client = client, engine = engine_mod.new(client) }, Async)
end

-- What a classification read leads to when the call waits: the model when
-- it is no longer PENDING, else another read after the interval (growing
-- by half up to 5 s, the last one just before the deadline), as `client:wait` does.
local function waited(e, op, model)
  if type(model) == "table" and model.status ~= "PENDING" then return e:finish(op, model) end
  local w = op.waiting
  local left = w.deadline - now()
  if left <= w.reserve then
    return e:finish(op, nil, core.error { kind = "timeout", retryable = true, message = string.format(
      "classification %s still PENDING after %g s", w.id, w.timeout) })
  end
  new_call(op)
  e:schedule(op, now() + math.min(w.interval, left - w.reserve))
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
  op.waiting.reserve = retry.poll_reserve(op.waiting.timeout) -- the last read's time to answer
  -- the timeout bounds the whole wait: every read, its retries and a stalled one
  op.deadline = op.waiting.deadline
  op.late = function(err)
    if err.kind ~= "timeout" and now() < op.deadline then return err end
    return core.error { kind = "timeout", retryable = true, cause = err, message = string.format(
      "classification %s: no answer within %g s (%s)", id, op.waiting.timeout, tostring(err.message)) }
  end
  new_call(op)
  if seen then
    e:schedule(op, now() + math.min(op.waiting.interval, math.max(0, op.waiting.timeout - op.waiting.reserve)))
    op.waiting.interval = math.min(op.waiting.interval * 1.5, 5)
  else
    e:schedule(op)
  end
end

--- Starts a classification: the non-blocking `client:classify`. The item is
-- checked now and raises naming the field, as for `classify`.
-- @tparam table item as for `client:classify`
-- @tparam[opt] table opts `{country, item_group}` as for `classify`, and `wait = true` to go on
-- reading the classification until it is no longer `PENDING` (as `client:wait` does, with its
-- `timeout = 60` and `interval = 0.25`)
-- @treturn Handle its result: the model `classify` returns (with `wait`: the model `wait` returns)
function Async:classify(item, opts)
  local where = "client:start_classify"
  opts = options.check_opts(where, opts, { "timeout", "interval" })
  local client = self.client
  local company = client:company(where)
  local body = item_model.body(item, { company_id = company, country = opts.country, item_group = opts.item_group,
    where = where })
  local e = self.engine
  local h = setmetatable({ kind = "classify", id = company .. "-" .. body.item.itemCode .. "-"
    .. body.countryOfDestination }, Handle)
  local op = { handle = h, method = "POST", body = body,
    url = client.api_base .. paths.build("classification_create", { companyId = company }) }
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
function Async:classification(id)
  if type(id) ~= "string" or id == "" then
    error("client:start_classification: 'id' must be a string (got " .. type(id) .. ")", 2)
  end
  local company = self.client:company("client:start_classification")
  local e = self.engine
  local op = { handle = setmetatable({ kind = "classification", id = id }, Handle), method = "GET",
    url = self.client.api_base .. paths.build("classification_get", { companyId = company, id = id }),
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
function Async:wait(id_or_model, opts)
  opts = options.check_opts("client:start_wait", opts, { "timeout", "interval" })
  local model, id = nil, id_or_model
  if type(id_or_model) == "table" then model, id = id_or_model, id_or_model.id end
  if type(id) ~= "string" then error("client:start_wait: an id or a model with an 'id' is required", 2) end
  self.client:company("client:start_wait")
  local e = self.engine
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
function Async:poll(seconds)
  if seconds ~= nil and (type(seconds) ~= "number" or seconds < 0 or seconds ~= seconds) then
    error("client:poll: 'seconds' must be a number >= 0", 2)
  end
  return self.engine:poll(seconds or 0)
end

--- How many started calls `poll` has not reported yet.
-- @treturn int
function Async:pending()
  return self.engine:pending()
end

--- Cancels a started call: its request in flight is stopped, it is never reported.
-- @tparam Handle handle
-- @treturn boolean `true` when it was under way, `false` when it was reported or cancelled already
function Async:cancel(handle)
  if getmetatable(handle) ~= Handle then error("client:cancel: a handle from client:start_* is required", 2) end
  return self.engine:cancel(handle)
end

--- What an event loop waits on besides the timeout: the sockets of the
-- transfers in flight, `{ {fd = n, read = bool, write = bool}, ... }`
-- (`core.multi`'s `sockets`). Read it again after each `poll`.
-- @treturn table
function Async:sockets()
  return self.engine:sockets()
end

--- Seconds until `poll` has work even without socket activity (a retry or
-- a classification read due, a libcurl timer; `0`: call `poll` now), or nil
-- when only the sockets can bring any (or nothing is under way).
-- @treturn number|nil
function Async:timeout()
  return self.engine:timeout()
end

--- Readies a loop before it starts (blocking: call it once, before the
-- first frame): obtains the token as `client:token()` does, and opens the
-- connection to the API host with a `HEAD` of `api_base` (no token sent;
-- the answer's status does not matter). The connections stay in the
-- client's connection cache, which its non-blocking calls share, so the
-- first `poll(0)` makes no TLS handshake and does not load the CA bundle
-- (22 to 54 ms of CPU inside one `poll(0)` otherwise: docs/nonblocking.md,
-- "Frame budgets"), as long as the servers keep the connections open.
-- @return true, or nil, err (the token's error, or the API host could not be reached)
function Async:warm_up()
  local c = self.client
  local tok, err = c:token()
  if not tok then return nil, err end
  local status, herr = c:exchange("request", { method = "HEAD", url = c.api_base })
  if status == nil and not (type(herr) == "table" and herr.status) then return nil, herr end
  return true
end

return M
