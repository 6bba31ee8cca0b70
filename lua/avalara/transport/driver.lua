--- Request drivers: run many requests of a client without waiting for each
-- one. The pipeline of `avalara.batch` and the calls of `avalara.async` add
-- requests and poll for those done. (Was `avalara.multi`, a name too close
-- to `core.multi`, which this module drives when it can.)
--
--    local d = require("avalara.transport.driver").new(client, { concurrency = 16 })
--    local h = d:add{ method = "GET", url = ..., token = ... }
--    for _, done in ipairs(d:poll(0.1)) do ... end   -- {handle, status, body, headers} or {handle, err}
--
-- With libcurl it is the core's multi handle (`core.multi`, docs/design.md
-- section 8): every request in flight at once, none blocking. With a Lua
-- `transport` (tests, an event loop of the caller's) or inside nginx (cosockets)
-- `core.multi` refuses the transport: requests then run one at a time
-- through the client's transport, or `concurrency` at a time on nginx light
-- threads; `poll` returns after each such round.
--
-- It uses the client's public interface only: `client:transport_info()`
-- (libcurl or a Lua transport, whether many run at once, the transport
-- options) and `client:exchange_many`.
-- @module avalara.transport.driver
local core = require "avalara.core"

local M = {}

-- ------------------------------------------------------------------ libcurl

local Curl = {}
Curl.__index = Curl

--- Adds a request (a `core.request` table); never blocks.
-- @return a handle
function Curl:add(req)
  self.n = self.n + 1
  return self.m:add(req)
end

--- The requests finished within `timeout` seconds (at least one when any is in flight).
function Curl:poll(timeout)
  return self.m:poll(timeout)
end

--- Requests queued or in flight.
function Curl:pending() return self.m:pending() end

--- Forgets a request; it is never reported.
function Curl:cancel(h) return self.m:cancel(h) end

--- Stops every request in flight.
function Curl:close() return self.m:close() end

--- The sockets an event loop waits on: `{ {fd, read, write}, ... }` (`core.multi`'s).
function Curl:sockets() return self.m:sockets() end

--- Seconds until `poll` has work even without socket activity, or nil.
function Curl:timeout() return self.m:timeout() end

-- ------------------------------------------------------------ one at a time

local Serial = {}
Serial.__index = Serial

function Serial:add(req)
  local h = { req = req }
  self.queue[#self.queue + 1] = h
  return h
end

-- Runs the queued requests (all of them on nginx light threads, else the
-- first) and returns them done.
function Serial:poll(timeout)
  local batch = {}
  if #self.queue == 0 then
    if timeout and timeout > 0 then self.client.sleep(math.min(timeout, 0.05)) end
    return batch
  end
  local take = self.parallel and math.min(#self.queue, self.concurrency) or 1
  for i = 1, take do batch[i] = table.remove(self.queue, 1) end
  local client = self.client
  local out = client:exchange_many((function()
    local reqs = {}
    for i, h in ipairs(batch) do reqs[i] = h.req end
    return reqs
  end)(), { concurrency = self.concurrency })
  local done = {}
  for i, h in ipairs(batch) do
    local r = out[i]
    done[i] = { handle = h, status = r.status, body = r.body, headers = r.headers, err = r.err }
  end
  return done
end

function Serial:pending() return #self.queue end

function Serial:cancel(h)
  for i, q in ipairs(self.queue) do
    if q == h then table.remove(self.queue, i); return true end
  end
  return false
end

function Serial:close() self.queue = {} end

-- No socket of its own: the transport's exchanges run inside `poll`.
function Serial.sockets() return {} end

function Serial:timeout() return #self.queue > 0 and 0 or nil end

--- A driver for `client`: the core's multi handle when the client uses
-- libcurl and the core has one, else one request at a time through the
-- client's transport (or nginx light threads).
-- @param client an `avalara.Client`
-- @tparam table opts `{concurrency, starts_per_poll}` (the most requests in flight; the most a poll
-- starts: the core multi's, nil for no bound)
-- @treturn table the driver (`add`, `poll`, `pending`, `cancel`, `close`, `sockets`, `timeout`, `kind`)
function M.new(client, opts)
  if type(opts) ~= "table" then error("driver.new: 'opts' must be a table", 2) end
  local info = client:transport_info()
  if info.lua == nil and type(core.multi) == "function" then
    info.options.concurrency = opts.concurrency
    info.options.starts_per_poll = opts.starts_per_poll
    return setmetatable({ m = core.multi(info.options), n = 0, kind = "multi" }, Curl)
  end
  return setmetatable({ client = client, queue = {}, concurrency = opts.concurrency,
    parallel = info.parallel, kind = "serial" }, Serial)
end

return M
