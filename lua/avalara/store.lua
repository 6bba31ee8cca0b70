--- Stores: where tokens and partner connections are kept between calls
-- (docs/design.md sections 5 and 8).
--
-- One contract for every store (memory, `avalara.store.file`, the OpenResty
-- shared dict of `avalara.openresty.store`, `avalara.store.redis` shared by
-- a fleet of hosts, or a table of your own):
--
--    store:get(key)                      -> value, version | nil (absent or past its ttl) | nil, nil, err
--    store:set(key, value, ttl)          -> true | nil, err
--    store:cas(key, version, value, ttl) -> true, new_version | false, current, current_version | nil, err
--    store:delete(key)                   -> true | nil, err
--    store:lock(key, ttl)                -> unlock function | nil (held elsewhere) | nil, err
--
-- Values are tables of strings, numbers and booleans (tables of them too),
-- copied in and out: changing a value you got changes nothing stored. `ttl`
-- is in seconds (nil: no expiry). A `version` is opaque and changes on every
-- write of the key: `cas` (compare-and-set) writes only when the key still
-- has the version read (`nil` = only when absent), and deletes when `value`
-- is nil. `lock` never blocks: the caller waits (yielding in a coroutine)
-- and asks again; `ttl` bounds how long a lock held by a process that died
-- is honoured (the file store also notices at once that its holder died).
-- The `avalara.new` client uses `get`, `set` and `lock`; `avalara.partner`
-- all five. Keys never contain secrets; values do (tokens): keep stores
-- private.
-- @module avalara.store
local M = {}

local now = require("avalara.clock").time

-- A deep copy of a stored value (tables of plain values).
local function copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return out
end

-- ---------------------------------------------------------------- memory

local Memory = {}
Memory.__index = Memory

--- A store in this Lua state's memory (the default): shared by the
-- coroutines of one process, gone when it ends.
-- @treturn table the store
function M.memory()
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

-- ------------------------------------------------------------------ file

--- A store in a file, safe across processes: an SQLite database (Debian's
-- `lua-sql-sqlite3`), readable only by its owner (mode 0600, in a 0700
-- folder; an existing folder or file that is not the user's own, is a
-- symbolic link or is open to others is refused). Every write is a transaction (atomic, on disk before it
-- returns); locks are rows that name their holder's process, so a lock left
-- by a process that was killed is taken over at once (on the same machine;
-- otherwise, and for a holder in another container, after its `ttl`). Use a local file system (SQLite's locking is
-- not reliable over NFS). See `avalara.store.file` for the details.
-- @tparam[opt] string path the file (default `$XDG_CACHE_HOME/avalara-hscode/tokens.db`,
-- else `~/.cache/avalara-hscode/tokens.db`; neither set: raises, see `default_path`)
-- @treturn table the store
function M.file(path)
  if path ~= nil and (type(path) ~= "string" or path == "") then
    error("avalara.store.file: 'path' must be a non-empty string", 2)
  end
  return require("avalara.store.file").open(path or M.default_path("cache", "tokens.db"))
end

-- ------------------------------------------------------------------ redis

--- A store on a Redis server, shared by every host and process that reaches
-- it: in plain Lua over LuaSocket, inside nginx over cosockets (pooled).
-- Locks are `SET NX PX` with an owner-checked release; `set` and `cas` are
-- atomic Lua scripts. A server that cannot be reached is a clear failure
-- (`nil, message`, the password never in it). See `avalara.store.redis`.
-- @tparam[opt] table opts `{host = "127.0.0.1", port = 6379, password, username, db = 0,
-- prefix = "avalara:", tls = false, timeout = 1, pool_size = 32, keepalive = 60, lock_ttl = 30}`
-- @treturn table the store
function M.redis(opts)
  return require("avalara.store.redis").new(opts)
end

--- The default place of a file of this library: `kind` "cache" is under
-- `$XDG_CACHE_HOME` (else `~/.cache`), "data" under `$XDG_DATA_HOME` (else
-- `~/.local/share`), in an `avalara-hscode` folder. Without either variable
-- (an nginx worker, some services) there is no private place, and this
-- raises naming what to set: never a shared folder such as `/tmp`.
-- @string kind "cache" or "data"
-- @string name the file name
-- @treturn string the path
function M.default_path(kind, name)
  local var, fallback = "XDG_CACHE_HOME", "/.cache"
  if kind == "data" then var, fallback = "XDG_DATA_HOME", "/.local/share" end
  local base = os.getenv(var)
  if not base or base:sub(1, 1) ~= "/" then -- unset, or relative: ignored (XDG Base Directory)
    local home = os.getenv("HOME")
    if not home or home:sub(1, 1) ~= "/" then
      error("avalara.store.file: no private folder for " .. name .. ": neither $" .. var .. " nor $HOME is set "
        .. "(as in an nginx worker); set one, or give the file: store = avalara.store.file(\"/path/" .. name
        .. "\") (in OpenResty, shared_dict = \"<lua_shared_dict name>\")", 0)
    end
    base = home .. fallback
  end
  return base .. "/avalara-hscode/" .. name
end

return M
