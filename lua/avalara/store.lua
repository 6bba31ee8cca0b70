--- Stores: where tokens and partner connections are kept between calls
-- (docs/design.md sections 5 and 8).
--
-- One contract for every store (`avalara.store.memory`, `avalara.store.file`,
-- `avalara.store.shared_dict` (OpenResty), `avalara.store.redis` shared by a
-- fleet of hosts, `avalara.store.failover`, or a table of your own):
--
--    store:get(key)                      -> value, version | nil (absent or past its ttl) | nil, nil, err
--    store:set(key, value, ttl)          -> true, new_version | nil, err
--    store:cas(key, version, value, ttl) -> true, new_version | false, current, current_version | nil, err
--    store:delete(key)                   -> true | nil, err
--    store:lock(key, ttl)                -> unlock function | nil (held elsewhere) | nil, err
--
-- `cas` has that one shape in every store: `true` and the new version when
-- it wrote (`true` alone after a delete); `false`, the value and version
-- the key holds now when the version given is not the key's (`false, nil,
-- nil` when it is absent); `nil, err` when the store failed. Every `err` is
-- an `avalara.error` of kind "store", its `code` saying what failed (each
-- store lists its codes), `store` naming the store; `retryable` is true for
-- a failure that the caller may carry on through without the store (an
-- outage, a token cache that cannot be written: a client warns once and
-- keeps its token for the process) and false for a misconfiguration that
-- must be fixed (a wrong Redis password, a file others can write), which a
-- client returns instead of working around.
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
-- private. Time is `avalara.clock.now()` (a test can move it).
-- @module avalara.store
local M = {}

local memory = require "avalara.store.memory"

-- ---------------------------------------------------------------- memory

--- A store in this Lua state's memory (the default): shared by the
-- coroutines of one process, gone when it ends (`avalara.store.memory.new`).
-- @treturn table the store
-- @function memory
M.memory = memory.new

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
  if not (io and os) then
    error("avalara.store.file: the file store needs the io and os libraries, which this Lua state (a sandbox?) "
      .. "does not have; use store = 'memory' or a store of the host's (get, set, lock: see avalara.store)", 2)
  end
  return require("avalara.store.file").open(path or M.default_path("cache", "tokens.db"))
end

-- ------------------------------------------------------------ shared dict

--- A store on an OpenResty `lua_shared_dict`, shared by the workers of one
-- nginx (`avalara.store.shared_dict.new`; also `avalara.openresty.store`).
-- @string name the dict's name, as in `lua_shared_dict <name> 1m;`
-- @tparam[opt] table opts `{lock_ttl = 30}`
-- @treturn table the store
function M.shared_dict(name, opts)
  return require("avalara.store.shared_dict").new(name, opts)
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
  local getenv = os and os.getenv or function() end
  local base = getenv(var)
  if not base or base:sub(1, 1) ~= "/" then -- unset, or relative: ignored (XDG Base Directory)
    local home = getenv("HOME")
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
