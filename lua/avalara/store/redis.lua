--- The Redis store, shared by every host that reaches the server
-- (`avalara.store.redis{...}`; the contract is in `avalara.store`).
--
--    local store = avalara.store.redis{ host = "10.0.0.5", port = 6379, password = os.getenv("REDIS_PASSWORD"),
--                                       db = 0, prefix = "shop:avalara:", tls = false }
--
-- In plain Lua on LuaSocket, inside nginx on cosockets (see
-- `avalara.resp.client` for connections, pooling, `AUTH` and TLS).
--
-- - A value is one string key, `<prefix><key>`: its version, a space and its
--   JSON; the ttl is the key's own (`PX`). Versions come from one counter,
--   `<prefix>avalara.store:version`, so a version never repeats (on a Redis
--   Cluster, `cluster = {...}`: one counter per hash slot, in the value's slot;
--   see `avalara.redis.cluster`).
-- - `set`, `cas` and a lock's release are Lua scripts: atomic on the server,
--   one round trip each. `get` is a plain `GET`.
-- - A lock is `SET <prefix><key>:lock <owner> NX PX <ttl>` (30 s unless
--   given): it lapses by itself when its holder died; the release deletes it
--   only while it still holds this holder's random owner string, never a
--   lock another holder took after a lapse.
-- - A server that cannot be reached is a failure, never a miss: use
--   `avalara.store.failover` (what `avalara.fleet` does for the token) where
--   a local copy should carry on meanwhile.
-- - Failures are `avalara.error` tables: `kind = "store"`, `code` one of
--   "unreachable" (an outage: refused, timed out, connection lost; the only
--   one with `retryable = true`), "auth" (wrong or missing password or user),
--   "noperm" (an ACL user without a command or key the store uses),
--   "config" (`db` out of range, a read-only replica, ...), "tls"
--   (certificate not trusted or not naming the server), "protocol" (not a
--   Redis server, a reply beyond the size or depth limits) or "redis"
--   (another error reply); `message` names the server, never the password;
--   `store` is `tostring(store)`. `tostring(err)` reads
--   "avalara: store error auth: redis HOST:PORT/DB: authentication failed (...)".
-- @module avalara.store.redis
local cjson = require "cjson"
local client = require "avalara.resp.client"
local cluster = require "avalara.redis.cluster"

local M = {}

local Store = {}
Store.__index = Store

local DEFAULT_LOCK_TTL = 30

-- KEYS: value, version counter. ARGV: json, ttl in ms ("" = none; <= 0: already past it).
local SET = [[
local n = redis.call('INCR', KEYS[2])
local ttl = tonumber(ARGV[2])
if ttl and ttl <= 0 then redis.call('DEL', KEYS[1]); return n end
if ttl then redis.call('SET', KEYS[1], n .. ' ' .. ARGV[1], 'PX', ttl)
else redis.call('SET', KEYS[1], n .. ' ' .. ARGV[1]) end
return n
]]

-- KEYS: value, version counter. ARGV: expected version ("" = absent),
-- "set" or "delete", json, ttl in ms. Returns {1, new version} or {0, current}.
local CAS = [[
local cur = redis.call('GET', KEYS[1])
local have = cur and string.match(cur, '^(%d+) ') or ''
if have ~= ARGV[1] then return {0, cur} end
if ARGV[2] == 'delete' then redis.call('DEL', KEYS[1]); return {1, 0} end
local n = redis.call('INCR', KEYS[2])
local ttl = tonumber(ARGV[4])
if ttl and ttl <= 0 then redis.call('DEL', KEYS[1])
elseif ttl then redis.call('SET', KEYS[1], n .. ' ' .. ARGV[3], 'PX', ttl)
else redis.call('SET', KEYS[1], n .. ' ' .. ARGV[3]) end
return {1, n}
]]

-- KEYS: lock. ARGV: owner. Deletes the lock only while this owner holds it.
local UNLOCK = [[
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
]]

local function ms(ttl)
  if ttl == nil then return "" end
  return string.format("%d", math.ceil(ttl * 1000))
end

--- A Redis store (no I/O until the first operation).
-- @tparam[opt] table opts `{url = "rediss://user:pass@host:port/db" | "unix:///path?db=0"; or
-- host = "127.0.0.1", port = 6379 (or socket = "/path"), password, username, db = 0;
-- prefix = "avalara:", tls = false | true | {verify, cafile, capath, server_name, certificate, key}, timeout = 1,
-- pool_size = 32, keepalive = 60, lock_ttl = 30}` (see `avalara.resp.client`); on a Redis Cluster
-- `cluster = {"host:port" | {host, port}, ..., retries = 5}` instead of `url`, `host`, `port` and `db`;
-- with `sentinels = {...}`, `master = "name"` (and `sentinel_password`, ...) in place of `host` and
-- `port`: the master that Redis Sentinel names (`avalara.redis.sentinel`)
-- @treturn table the store
function M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("avalara.store.redis: options must be a table", 0) end
  local prefix, lock_ttl = opts.prefix or "avalara:", opts.lock_ttl or DEFAULT_LOCK_TTL
  if type(prefix) ~= "string" then error("avalara.store.redis: 'prefix' must be a string", 0) end
  if type(lock_ttl) ~= "number" or lock_ttl <= 0 then
    error("avalara.store.redis: 'lock_ttl' must be a positive number", 0)
  end
  local copts = {}
  for k, v in pairs(opts) do if k ~= "lock_ttl" then copts[k] = v end end
  local redis
  if opts.cluster then redis = cluster.new(copts)
  elseif opts.sentinels ~= nil then redis = require("avalara.redis.sentinel").new(copts)
  else redis = client.new(copts) end
  return setmetatable({ redis = redis, prefix = prefix, lock_ttl = lock_ttl, cluster = opts.cluster and true }, Store)
end

-- The version counter of a value's key: one for the store, or in a cluster one per hash slot, in the
-- value's slot (so that one script touches one node; a counter never goes back, so a version never repeats).
local function version_key(self, key)
  if not self.cluster then return self.prefix .. "avalara.store:version" end
  return self.prefix .. "avalara.store:version:{" .. cluster.tag(cluster.slot(key)) .. "}"
end

Store.__tostring = function(self)
  return "avalara.store.redis(" .. tostring(self.redis):gsub("^redis ", "") .. ", prefix " .. self.prefix .. ")"
end

-- The error of a failed Redis command (`avalara.resp.client`'s, or a message and a code), naming this store.
local function failure(self, err, code)
  err = client.error(err, code)
  err.store = tostring(self)
  return err
end

-- The error of a reply of a shape no Redis gives to these commands.
local function unexpected(self, what)
  return failure(self, tostring(self.redis) .. ": unexpected reply to " .. what .. " (not a Redis server?)", "protocol")
end

-- The value and version of a stored string "<version> <json>".
local function decode(self, key, s)
  if type(s) ~= "string" then return nil, nil, unexpected(self, "GET") end
  local version, json = s:match("^(%d+) (.*)$")
  local ok, value = pcall(cjson.decode, json or "")
  if not version or not ok then
    return nil, nil, failure(self, tostring(self.redis) .. ": unreadable value under " .. self.prefix .. key, "redis")
  end
  return value, tonumber(version)
end

--- The value under `key` and its version, or nil when absent or past its
-- ttl (nil, nil, err when Redis cannot be asked).
-- @string key
function Store:get(key)
  local s, err = self.redis:command("GET", self.prefix .. key)
  if s == nil then return nil, nil, failure(self, err) end
  if not s then return nil end
  return decode(self, key, s)
end

--- Stores `value` under `key` (one script: the version counter and the write).
-- @string key
-- @tparam table value
-- @tparam[opt] number ttl seconds (nil: no expiry)
-- @return true and the new version, or nil, err
function Store:set(key, value, ttl)
  local n, err = self.redis:eval(SET, { self.prefix .. key, version_key(self, self.prefix .. key) },
    { cjson.encode(value), ms(ttl) })
  if n == nil then return nil, failure(self, err) end
  if type(n) ~= "number" then return nil, unexpected(self, "the set script") end
  return true, n
end

--- Compare-and-set on the server (see `avalara.store`).
-- @string key
-- @param version as returned by `get`, or nil (only if absent)
-- @tparam[opt] table value nil deletes
-- @tparam[opt] number ttl
-- @return true, new version (none after a delete) | false, current value, current version | nil, err
function Store:cas(key, version, value, ttl)
  local r, err = self.redis:eval(CAS, { self.prefix .. key, version_key(self, self.prefix .. key) },
    { version and string.format("%d", version) or "", value == nil and "delete" or "set",
      value == nil and "" or cjson.encode(value), ms(ttl) })
  if r == nil then return nil, failure(self, err) end
  if type(r) ~= "table" then return nil, unexpected(self, "the cas script") end
  if r[1] == 1 then
    if value == nil then return true end
    return true, r[2]
  end
  if not r[2] then return false, nil, nil end
  local current, have, derr = decode(self, key, r[2])
  if derr then return nil, derr end
  return false, current, have
end

--- Forgets `key`.
-- @string key
-- @return true, or nil, err
function Store:delete(key)
  local n, err = self.redis:command("DEL", self.prefix .. key)
  if n == nil then return nil, failure(self, err) end
  return true
end

--- Takes the lock on `key` without blocking, for every host using the
-- server (`SET NX PX`).
-- @string key
-- @tparam[opt] number ttl seconds after which the lock lapses whatever happened to its holder
-- (default the store's `lock_ttl`, 30 s)
-- @return an unlock function, or nil (held elsewhere), or nil, err
function Store:lock(key, ttl)
  ttl = ttl or self.lock_ttl
  if ttl <= 0 then return function() return true end end -- a lock that lapsed at once
  local lock_key, me = self.prefix .. key .. ":lock", client.unique()
  local ok, err = self.redis:command("SET", lock_key, me, "NX", "PX", ms(ttl))
  if ok == nil then return nil, failure(self, err) end
  if not ok then return nil end
  return function()
    local done, uerr = self.redis:eval(UNLOCK, { lock_key }, { me })
    if done == nil then return nil, failure(self, uerr) end
    return true
  end
end

--- Closes the connection kept in plain Lua (the next operation opens one).
function Store:close()
  self.redis:close()
end

return M
