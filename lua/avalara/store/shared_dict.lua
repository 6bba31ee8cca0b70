--- A store on a `lua_shared_dict`, shared by every worker of one nginx (the
-- contract of `avalara.store`: get, set, cas, delete, lock). What
-- `shared_dict = "<name>"` gives `avalara.new`, `avalara.partner.new` and
-- `avalara.fleet.new`; `avalara.openresty.store(name)` is the same.
--
--    lua_shared_dict avalara_tokens 1m;
--    local store = require("avalara.store.shared_dict").new("avalara_tokens")
--
-- - A value is its JSON under the key; its version is in the entry's flags,
--   taken from one counter (`avalara.store:version`), so it changes on every write.
-- - `cas` runs under a short mutex (an `add` of `<key>:cas` that lapses after
--   0.1 s should its holder die; nothing under it yields).
-- - A lock is an `add` of `<key>:lock` that expires by itself (`lock_ttl`,
--   default 30 s) should its holder die; the release deletes it only while it
--   still holds this holder's id.
-- - Writes never evict other keys (`safe_set`, `safe_add`): a full dict fails
--   the write (size it for your connections: under 1 KiB each).
-- - Failures are `nil, err` with an `avalara.error` of kind "store": `code`
--   "full" (no room left in the dict), "unreadable" (a value that is not this
--   store's JSON: another user of the dict writes under this key) or
--   "encode" (a value JSON cannot hold) or "dict" (another refusal of the
--   dict). All are `retryable`: a client warns once and keeps its
--   token for the worker meanwhile.
-- @module avalara.store.shared_dict
local cjson = require "cjson.safe"
local core = require "avalara.core"
local clock = require "avalara.clock"
local nginx = require "avalara.transport.nginx"

local M = {}

local Store = {}
Store.__index = Store

-- The dict key whose counter versions every write (a value's version is in its flags).
local VERSION_KEY = "avalara.store:version"

--- The store on the dict `name` (raises when nginx.conf has none of that name).
-- @string name the dict's name, as in `lua_shared_dict <name> 1m;`
-- @tparam[opt] table opts `{lock_ttl = 30}`
-- @treturn table the store (`get`, `set`, `cas`, `delete`, `lock`)
function M.new(name, opts)
  if type(name) ~= "string" then error("avalara.store.shared_dict: 'name' must be a string", 2) end
  if opts ~= nil and type(opts) ~= "table" then error("avalara.store.shared_dict: 'opts' must be a table", 2) end
  local lock_ttl = opts and opts.lock_ttl or 30
  if type(lock_ttl) ~= "number" then error("avalara.store.shared_dict: 'lock_ttl' must be a number", 2) end
  local dict = nginx.in_nginx() and ngx.shared[name]
  if not dict then error("avalara.store.shared_dict: no lua_shared_dict named '" .. name .. "' in nginx.conf", 2) end
  return setmetatable({ dict = dict, name = name, lock_ttl = lock_ttl }, Store)
end

Store.__tostring = function(self) return "avalara.store.shared_dict(" .. self.name .. ")" end

-- The error of a failed operation (kind "store").
local function failure(self, code, message)
  return core.error { kind = "store", code = code, retryable = true, store = tostring(self),
    message = "lua_shared_dict " .. self.name .. ": " .. message }
end

-- The code of a shared dict's error string.
local function dict_code(err)
  return err == "no memory" and "full" or "dict"
end

--- The value under `key` and its version, or nil when absent or past its
-- ttl (nil, nil, err when the value cannot be read).
-- @string key
-- @return value, version | nil | nil, nil, err
function Store:get(key)
  local s, version = self.dict:get(key)
  if not s then return nil end
  local value = cjson.decode(s)
  if value == nil then return nil, nil, failure(self, "unreadable", "unreadable value under " .. key) end
  return value, version
end

-- Writes without a check; true, version or nil, err.
local function write(self, key, value, ttl)
  local text, jerr = cjson.encode(value)
  if not text then return nil, failure(self, "encode", tostring(jerr)) end
  local n = self.dict:incr(VERSION_KEY, 1, 0)
  local version = n and (n % 4294967295) + 1 or 1 -- flags are 32 bits
  if ttl and ttl <= 0 then -- already past it (a dict refuses a negative exptime)
    self.dict:delete(key)
    return true, version
  end
  -- safe_set: a full dict refuses the write rather than evict another key
  -- (a partner's connection must never vanish to make room)
  local ok, err = self.dict:safe_set(key, text, ttl or 0, version)
  if not ok then return nil, failure(self, dict_code(err), tostring(err)) end
  return true, version
end

--- Stores `value` (JSON-encoded) under `key` for `ttl` seconds (nil: no expiry).
-- @string key
-- @tparam table value
-- @tparam[opt] number ttl
-- @return true and the new version, or nil, err (the dict is full, ...)
function Store:set(key, value, ttl)
  return write(self, key, value, ttl)
end

--- Compare-and-set across workers (the contract of `avalara.store`).
-- @string key
-- @param version as returned by `get`, or nil (only if absent)
-- @tparam[opt] table value nil deletes
-- @tparam[opt] number ttl
-- @return true, new version (none after a delete) | false, current value, current version | nil, err
function Store:cas(key, version, value, ttl)
  local mutex = key .. ":cas"
  -- Held for microseconds (nothing in it yields); a holder that died lets go after 0.1 s.
  while true do
    local added, aerr = self.dict:safe_add(mutex, true, 0.1)
    if added then break end
    if aerr ~= "exists" then return nil, failure(self, dict_code(aerr), tostring(aerr)) end
    if nginx.mode() == "cosocket" then clock.sleep(0.001) end
  end
  local current, have, err = self:get(key)
  local ok, a, b
  if err then
    ok, a = nil, err
  elseif have ~= version then
    ok, a, b = false, current, have
  elseif value == nil then
    self.dict:delete(key)
    ok = true
  else
    ok, a = write(self, key, value, ttl)
  end
  self.dict:delete(mutex)
  return ok, a, b
end

--- Forgets `key`.
-- @string key
-- @return true
function Store:delete(key)
  self.dict:delete(key)
  return true
end

--- Takes the cross-worker lock on `key` without blocking.
-- @string key
-- @tparam[opt] number ttl seconds after which the lock lapses (default the store's `lock_ttl`)
-- @return an unlock function, or nil when another worker holds it, or nil, err (the dict is full)
function Store:lock(key, ttl)
  ttl = ttl or self.lock_ttl
  if ttl <= 0 then return function() return true end end -- a lock that lapsed at once
  local lock_key = key .. ":lock"
  local id = tostring(ngx.worker.pid()) .. ":" .. tostring(clock.now()) .. ":" .. tostring(math.random())
  local added, err = self.dict:safe_add(lock_key, id, ttl)
  if not added then
    if err == "exists" then return nil end
    return nil, failure(self, dict_code(err), tostring(err))
  end
  return function()
    if self.dict:get(lock_key) == id then self.dict:delete(lock_key) end
    return true
  end
end

return M
