--- The memory store (`avalara.store.memory()`; the contract is in
-- `avalara.store`): a table in this Lua state, shared by the coroutines of
-- one process, gone when it ends. It never fails.
-- @module avalara.store.memory
local M = {}

local now = require("avalara.clock").now

-- A deep copy of a stored value (tables of plain values).
local function copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return out
end

local Memory = {}
Memory.__index = Memory

--- A store in this Lua state's memory (the default): shared by the
-- coroutines of one process, gone when it ends.
-- @treturn table the store
function M.new()
  return setmetatable({ data = {}, locks = {}, seq = 0 }, Memory)
end

--- The value under `key` and its version, or nil when absent or past its ttl.
-- @string key
-- @return the value (a copy) and its version, or nil
function Memory:get(key)
  local e = self.data[key]
  if not e then return nil end
  if e.expires and e.expires <= now() then
    self.data[key] = nil
    return nil
  end
  return copy(e.value), e.version
end

--- Stores `value` under `key`, whatever is there.
-- @string key
-- @tparam table value a table of strings, numbers and booleans
-- @tparam[opt] number ttl seconds to keep it (nil: no expiry)
-- @return true
function Memory:set(key, value, ttl)
  self.seq = self.seq + 1
  self.data[key] = { value = copy(value), version = self.seq, expires = ttl and now() + ttl or nil }
  return true, self.seq
end

--- Compare-and-set: stores `value` (or deletes the key when `value` is nil)
-- only if the key still has `version` (nil: only if it is absent).
-- @string key
-- @param version as returned by `get`, or nil
-- @tparam[opt] table value
-- @tparam[opt] number ttl
-- @return true and the new version, or false and the current value and version
function Memory:cas(key, version, value, ttl)
  local current, current_version = self:get(key)
  if current_version ~= version then return false, current, current_version end
  if value == nil then
    self.data[key] = nil
    return true
  end
  return self:set(key, value, ttl)
end

--- Forgets `key`.
-- @string key
-- @return true
function Memory:delete(key)
  self.data[key] = nil
  return true
end

--- Takes the lock on `key` without blocking.
-- @string key
-- @tparam[opt] number ttl seconds after which the lock lapses (nil: held until unlocked)
-- @return an unlock function, or nil when another caller holds the lock
function Memory:lock(key, ttl)
  local held = self.locks[key]
  if held and not (held.expires and held.expires <= now()) then return nil end
  local token = { expires = ttl and now() + ttl or nil }
  self.locks[key] = token
  return function()
    if self.locks[key] == token then self.locks[key] = nil end
  end
end

Memory.__tostring = function() return "avalara.store.memory" end

return M
