--- A store that carries on when its shared store cannot be reached:
-- `avalara.fleet` keeps the client token in Redis through it, with this
-- host's store (the `lua_shared_dict` in nginx, else memory) as the local
-- copy.
--
-- - While the shared store answers, it is the truth: `get` reads it (and
--   copies a value it has not seen yet into the local store), `set` writes
--   both, `lock` is the shared lock, so the whole fleet asks for one token.
-- - When an operation fails because the shared store cannot be reached
--   (refused, timed out, connection lost: `err.retryable`, code
--   "unreachable"), the breaker opens: one warning names the store and the
--   reason, and for `retry_after` seconds (1) every operation goes to the
--   local store without trying the shared one (a dead server costs nothing
--   per request). The host then uses the copy it holds, or fetches its own
--   token: requests keep succeeding, with one token per host instead of one
--   per fleet.
-- - Any other failure is a misconfiguration (a wrong or missing password,
--   an ACL user without a command, `db` out of range, an untrusted TLS
--   certificate, a server that is not Redis): it is returned as it is
--   (`nil, err`, the store's error table), the breaker stays closed, and the
--   call fails with it. Carrying on alone would break the fleet's one token
--   without a word, for as long as nobody reads the logs.
-- - After `retry_after` the next operation tries the shared store again; the
--   first that succeeds closes the breaker with a second warning (back to
--   one token for the fleet).
--
-- It is meant for values that can be made again (tokens): a value written
-- while the shared store was down stays local. Partner connections, whose
-- single-use refresh tokens cannot be made again, use the Redis store
-- directly (its failures are errors, never a second truth).
-- @module avalara.store.failover
local clock = require "avalara.clock"

local M = {}

-- ------------------------------------------------------------ breaker

local Breaker = {}
Breaker.__index = Breaker

--- A breaker for a shared service: `up()` says whether to try it now,
-- `failed(err)` opens it for `retry_after` seconds when `err` is an outage,
-- `ok()` closes it. It warns once when it opens and once when it closes again.
-- @tparam table opts `{name = "redis ...", retry_after = 1, warn = function(message)}`
-- @treturn table the breaker
function M.breaker(opts)
  return setmetatable({ name = opts.name, retry_after = opts.retry_after or 1, warn = opts.warn or function() end },
    Breaker)
end

--- Whether the shared service should be tried now.
-- @treturn boolean
function Breaker:up()
  return self.down_until == nil or clock.now() >= self.down_until
end

--- Whether `err` is an outage, to be waited out: a store error that is `retryable`
-- (code "unreachable"); an error of another kind, or a message of a store of
-- your own, counts as one too. A store error that is not retryable is a
-- misconfiguration.
-- @param err
-- @treturn boolean
function M.outage(err)
  if type(err) == "table" and err.kind == "store" then return err.retryable == true end
  return true
end

--- Records a failure of the shared service: an outage opens the breaker (and
-- warns when it was up); a misconfiguration (see `M.outage`) changes nothing.
-- @param err the failure (the store's error, or a message)
-- @treturn boolean whether it was an outage (false: the caller fails with `err`)
function Breaker:failed(err)
  if not M.outage(err) then return false end
  local was_up = self.down_until == nil
  err = type(err) == "table" and tostring(err.message) or tostring(err)
  if self.name and err:sub(1, #self.name + 2) == self.name .. ": " then err = err:sub(#self.name + 3) end
  self.down_until, self.reason = clock.now() + self.retry_after, err
  if was_up then
    self.warn(("%s cannot be reached (%s): carrying on with local state; trying it again every %g s")
      :format(self.name, self.reason, self.retry_after))
  end
  return true
end

--- Records a success of the shared service (warns when it was down).
function Breaker:ok()
  if self.down_until == nil then return end
  self.down_until, self.reason = nil, nil
  self.warn(self.name .. " answers again: fleet state is shared again")
end

--- `{state = "up" | "down", reason}` (the reason of the last failure while down).
-- @treturn table
function Breaker:status()
  return { state = self.down_until and "down" or "up", reason = self.reason }
end

-- ------------------------------------------------------------ store

local Failover = {}
Failover.__index = Failover

--- The store: `shared` while it answers, `local_store` meanwhile.
-- @param shared a store (`avalara.store.redis`)
-- @param local_store a store of this host (memory, `avalara.openresty.store`)
-- @param breaker from `M.breaker` (may be shared with the other fleet features)
-- @treturn table the store (`get`, `set`, `cas`, `delete`, `lock`)
function M.new(shared, local_store, breaker)
  return setmetatable({ shared = shared, local_store = local_store, breaker = breaker, seen = {} }, Failover)
end

Failover.__tostring = function(self)
  return "avalara.store.failover(" .. tostring(self.shared) .. ", else " .. tostring(self.local_store) .. ")"
end

-- Runs `method` on the shared store when it is up; true and its results,
-- or false after an outage (or while the breaker is open), or nil and the
-- error of a misconfiguration.
local function shared_call(self, method, ...)
  if not self.breaker:up() then return false end
  local a, b, c = self.shared[method](self.shared, ...)
  local err
  if method == "get" then err = c elseif a == nil then err = b end
  if err ~= nil then
    if not self.breaker:failed(err) then return nil, err end
    return false
  end
  self.breaker:ok()
  return true, a, b, c
end

--- The shared value (copied to the local store when new), else the local one
-- while the shared store cannot be reached.
-- @string key
-- @return value, version | nil | nil, nil, err (a misconfigured shared store)
function Failover:get(key)
  local ok, value, version = shared_call(self, "get", key)
  if ok == nil then return nil, nil, value end
  if not ok then return self.local_store:get(key) end
  if value ~= nil and self.seen[key] ~= version then
    self.local_store:set(key, value)
    self.seen[key] = version
  end
  return value, version
end

--- Writes both stores (the local copy first: it serves when the shared store fails).
-- @string key
-- @tparam table value
-- @tparam[opt] number ttl
-- @return true and a version, or nil, err (neither store took it, or the shared one is misconfigured)
function Failover:set(key, value, ttl)
  local lok, lversion = self.local_store:set(key, value, ttl)
  local ok, sok, sversion = shared_call(self, "set", key, value, ttl)
  if ok == nil then return nil, sok end
  if ok then
    self.seen[key] = sversion
    return sok, sversion
  end
  return lok, lversion
end

--- Compare-and-set on the shared store, else on the local one.
-- @string key
-- @param version
-- @tparam[opt] table value
-- @tparam[opt] number ttl
function Failover:cas(key, version, value, ttl)
  local ok, a, b, c = shared_call(self, "cas", key, version, value, ttl)
  if ok == nil then return nil, a end
  if ok then return a, b, c end
  return self.local_store:cas(key, version, value, ttl)
end

--- Forgets `key` in both stores.
-- @string key
-- @return true, or nil, err (a misconfigured shared store)
function Failover:delete(key)
  local ok, err = shared_call(self, "delete", key)
  self.local_store:delete(key)
  if ok == nil then return nil, err end
  return true
end

--- The shared lock, else the local one.
-- @string key
-- @tparam[opt] number ttl
-- @return an unlock function, or nil (held elsewhere), or nil, err (a misconfigured shared store)
function Failover:lock(key, ttl)
  local ok, unlock = shared_call(self, "lock", key, ttl)
  if ok == nil then return nil, unlock end
  if ok then return unlock end
  return self.local_store:lock(key, ttl)
end

return M
