--- Where a webhook receiver keeps the event ids it handled
-- (`avalara.webhook.seen`, reached as `webhook.seen`): the atomic
-- check-and-set of each id, on an OpenResty shared dict, Redis, any
-- `avalara.store`, or SQLite.
--
-- The event ids already handled are kept: each one is claimed in one
-- atomic check-and-set before `on_event` runs, so of two copies of an event
-- (a retry, a replay, two at once, on any worker or host sharing the place)
-- exactly one is handled.
--
-- A `seen` is any table with three methods (write your own for another database):
--
--    seen:claim(id)         -> token (handle it) | false, "pending" | "done" | nil, err
--    seen:done(id, token)   -> true | nil, err    -- handled: remembered `ttl` seconds
--    seen:release(id, token)                      -- on_event failed: the retry is handled
--
-- `claim` must be one atomic operation that marks `id` as pending for
-- `pending_ttl` seconds only if it is absent; `release` must forget the
-- claim only while it is still this token's. The ones below take `opts`
-- `{ttl = 86400, pending_ttl = 120, prefix = "avalara.webhook:"}`: `ttl`
-- (seconds a handled id is remembered) must be at least the timestamp
-- tolerance (300 s), or a replay inside the window would be handled again;
-- `pending_ttl` bounds how long a receiver that died while handling an
-- event blocks its retries (they are answered 409 meanwhile).
-- @module avalara.webhook.seen
local core = require "avalara.core"
local clock = require "avalara.clock"
local redis_client = require "avalara.resp.client"

local M = {}

--- The default timestamp tolerance of `avalara.webhook` (seconds): a `ttl`
-- shorter than it would let a replay inside the window be handled again.
M.TOLERANCE = 300

-- A failure of a seen-set: kind "store" (an error of kind store passes as it is;
-- any other becomes the `cause` of one, its own kind and code kept there).
local function store_error(what, err)
  if core.is_error(err) and err.kind == "store" then return err end
  return core.error { kind = "store", message = what .. ": " .. tostring(err), retryable = true,
    cause = core.is_error(err) and err or nil }
end

local SEEN_OPTIONS = { ttl = true, pending_ttl = true, prefix = true, table = true, busy_timeout = true }

local function seen_options(where, opts)
  opts = opts or {}
  if type(opts) ~= "table" then error(where .. ": 'opts' must be a table", 3) end
  for k in pairs(opts) do
    if not SEEN_OPTIONS[k] then error(where .. ": unknown option '" .. tostring(k) .. "'", 3) end
  end
  local o = { ttl = opts.ttl or 86400, pending_ttl = opts.pending_ttl or 120,
    prefix = opts.prefix or "avalara.webhook:" }
  if type(o.ttl) ~= "number" or o.ttl < M.TOLERANCE then
    error(where .. ": 'ttl' must be a number of seconds, at least the timestamp tolerance (" .. M.TOLERANCE .. ")", 3)
  end
  if type(o.pending_ttl) ~= "number" or o.pending_ttl <= 0 then
    error(where .. ": 'pending_ttl' must be a positive number of seconds", 3)
  end
  if type(o.prefix) ~= "string" then error(where .. ": 'prefix' must be a string", 3) end
  return o, opts
end

-- A token no other claim has (process, worker and counter).
local unique = redis_client.unique

-- Shared dict: `add` is the check-and-set (every worker of the nginx).
local Dict = {}
Dict.__index = Dict

function Dict:_dict()
  local dict = self.dict
  if type(dict) == "string" then
    local ngx = rawget(_G, "ngx")
    dict = ngx and ngx.shared and ngx.shared[dict]
    if not dict then error("avalara.webhook.seen.shared_dict: no lua_shared_dict '" .. self.dict .. "'", 0) end
  end
  return dict
end

function Dict:claim(id)
  local dict, token = self:_dict(), "pending " .. unique()
  local ok, err = dict:add(self.prefix .. id, token, self.pending_ttl)
  if ok then return token end
  if err ~= "exists" then return nil, store_error("shared dict", err) end
  return false, dict:get(self.prefix .. id) == "done" and "done" or "pending"
end

function Dict:done(id)
  local ok, err = self:_dict():set(self.prefix .. id, "done", self.ttl)
  if not ok then return nil, store_error("shared dict", err) end
  return true
end

function Dict:release(id, token)
  local dict = self:_dict()
  -- get and delete do not yield: no other request of this worker runs between them
  if dict:get(self.prefix .. id) == token then dict:delete(self.prefix .. id) end
  return true
end

--- The ids in an OpenResty shared dict (`lua_shared_dict NAME 1m;`), for
-- every worker of one nginx: the claim is the dict's `add`.
-- @param dict the dict's name, or `ngx.shared.NAME`
-- @tparam[opt] table opts `{ttl, pending_ttl, prefix}`
function M.shared_dict(dict, opts)
  local where = "avalara.webhook.seen.shared_dict"
  if type(dict) ~= "string" and (type(dict) ~= "table" and type(dict) ~= "userdata" or dict.add == nil) then
    error(where .. ": 'dict' must be a lua_shared_dict's name or ngx.shared.NAME", 2)
  end
  local o = seen_options(where, opts)
  o.dict = dict
  return setmetatable(o, Dict)
end

-- Redis client: `SET key pending NX PX` is the check-and-set.
local Redis = {}
Redis.__index = Redis

-- KEYS: the id's key. ARGV: the claim's token. Deletes it only while it is that claim.
local RELEASE = [[
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
]]

local function ms(seconds) return string.format("%d", math.ceil(seconds * 1000)) end

function Redis:claim(id)
  local key, token = self.prefix .. id, "pending " .. unique()
  local ok, err = self.redis:command("SET", key, token, "NX", "PX", ms(self.pending_ttl))
  if ok == nil then return nil, store_error("redis", err) end
  if ok then return token end
  local state = self.redis:command("GET", key)
  return false, state == "done" and "done" or "pending"
end

function Redis:done(id)
  local ok, err = self.redis:command("SET", self.prefix .. id, "done", "PX", ms(self.ttl))
  if ok == nil then return nil, store_error("redis", err) end
  return true
end

function Redis:release(id, token)
  local ok, err = self.redis:eval(RELEASE, { self.prefix .. id }, { token })
  if ok == nil then return nil, store_error("redis", err) end
  return true
end

-- Any avalara.store: `cas(key, nil, ...)` (write only when absent) is the check-and-set.
local Store = {}
Store.__index = Store

function Store:claim(id)
  local ok, current = self.store:cas(self.prefix .. id, nil, { state = "pending" }, self.pending_ttl)
  if ok == nil then return nil, store_error("store", current) end
  if ok then return current end -- the version written: the token
  return false, type(current) == "table" and current.state == "done" and "done" or "pending"
end

function Store:done(id)
  local ok, err = self.store:set(self.prefix .. id, { state = "done" }, self.ttl)
  if not ok then return nil, store_error("store", err) end
  return true
end

function Store:release(id, token)
  -- deleted only while it still has the claim's version
  local ok, err = self.store:cas(self.prefix .. id, token, nil)
  if ok == nil then return nil, store_error("store", err) end
  return true
end

--- The ids on a Redis server, for every host and worker that reaches it:
-- the claim is `SET <prefix><id> pending NX PX <pending_ttl>` on an
-- `avalara.redis.client`, or one `cas` (a script on the server) on an
-- `avalara.store.redis` (then the store's own prefix comes first).
-- @param redis `avalara.redis.client.new{...}` or `avalara.store.redis{...}`
-- @tparam[opt] table opts `{ttl, pending_ttl, prefix}`
function M.redis(redis, opts)
  local where = "avalara.webhook.seen.redis"
  if type(redis) ~= "table" then error(where .. ": give an avalara.redis.client or an avalara.store.redis", 2) end
  local o = seen_options(where, opts)
  if type(redis.command) == "function" and type(redis.eval) == "function" then
    o.redis = redis
    return setmetatable(o, Redis)
  end
  if type(redis.cas) == "function" then return M.store(redis, opts) end
  error(where .. ": give an avalara.redis.client or an avalara.store.redis", 2)
end

--- The ids in any `avalara.store` (memory, `avalara.store.file`,
-- `avalara.store.redis`, ...): the claim is one `cas` that writes only when
-- the key is absent. A memory store is one process's only.
-- @tparam table store
-- @tparam[opt] table opts `{ttl, pending_ttl, prefix}`
function M.store(store, opts)
  local where = "avalara.webhook.seen.store"
  if type(store) ~= "table" or type(store.cas) ~= "function" or type(store.set) ~= "function" then
    error(where .. ": 'store' must be an avalara.store (get, set, cas, delete, lock)", 2)
  end
  local o = seen_options(where, opts)
  o.store = store
  return setmetatable(o, Store)
end

-- SQLite (LuaSQL): `INSERT OR IGNORE` on the primary key is the check-and-set.
local Sqlite = {}
Sqlite.__index = Sqlite

local function sql_text(s) return "'" .. s:gsub("'", "''") .. "'" end

function Sqlite:_exec(sql)
  local r, err = self.conn:execute(sql)
  if r == nil then return nil, store_error("sqlite " .. self.path, err) end
  if type(r) == "userdata" then
    local row = r:fetch({}, "n")
    r:close()
    return row or true
  end
  return r
end

function Sqlite:claim(id)
  local now, token = clock.time(), "pending " .. unique()
  local _, err = self:_exec(("DELETE FROM %s WHERE expires < %d"):format(self.table, now))
  if err then return nil, err end
  local n
  n, err = self:_exec(("INSERT OR IGNORE INTO %s (id, state, expires) VALUES (%s, %s, %d)")
    :format(self.table, sql_text(id), sql_text(token), now + math.ceil(self.pending_ttl)))
  if n == nil then return nil, err end
  if n == 1 then return token end
  local row = self:_exec(("SELECT state FROM %s WHERE id = %s"):format(self.table, sql_text(id)))
  return false, type(row) == "table" and row[1] == "done" and "done" or "pending"
end

function Sqlite:done(id)
  local n, err = self:_exec(("INSERT OR REPLACE INTO %s (id, state, expires) VALUES (%s, 'done', %d)")
    :format(self.table, sql_text(id), clock.time() + math.ceil(self.ttl)))
  if n == nil then return nil, err end
  return true
end

function Sqlite:release(id, token)
  local n, err = self:_exec(("DELETE FROM %s WHERE id = %s AND state = %s")
    :format(self.table, sql_text(id), sql_text(token)))
  if n == nil then return nil, err end
  return true
end

--- The ids in an SQLite database file (LuaSQL's `luasql.sqlite3`, Debian's
-- lua-sql-sqlite3), for every process on the host: the claim is `INSERT OR
-- IGNORE` on the id, the table's primary key. Blocking: meant for plain Lua
-- receivers (CGI, a socket server, a queue worker).
-- @string path the database file (made with its table if absent)
-- @tparam[opt] table opts `{ttl, pending_ttl, table = "avalara_webhook_seen", busy_timeout = 5}`
function M.sqlite(path, opts)
  local where = "avalara.webhook.seen.sqlite"
  if type(path) ~= "string" or path == "" then error(where .. ": 'path' must be a database file's path", 2) end
  local o, given = seen_options(where, opts)
  o.table = given.table or "avalara_webhook_seen"
  if type(o.table) ~= "string" or not o.table:match("^[%a_][%w_]*$") then
    error(where .. ": 'table' must be an SQL name (letters, digits, _)", 2)
  end
  local busy = given.busy_timeout or 5
  if type(busy) ~= "number" or busy < 0 then error(where .. ": 'busy_timeout' must be seconds, >= 0", 2) end
  local ok, luasql = pcall(require, "luasql.sqlite3")
  if not ok then error(where .. ": needs LuaSQL's luasql.sqlite3 (Debian: lua-sql-sqlite3)", 2) end
  local conn, err = luasql.sqlite3():connect(path)
  if not conn then return nil, store_error(where, err) end
  o.conn, o.path = conn, path
  local self = setmetatable(o, Sqlite)
  for _, sql in ipairs {
    ("PRAGMA busy_timeout = %d"):format(math.floor(busy * 1000)),
    ("CREATE TABLE IF NOT EXISTS %s (id TEXT PRIMARY KEY, state TEXT NOT NULL, expires INTEGER NOT NULL)")
      :format(self.table),
    ("CREATE INDEX IF NOT EXISTS %s_expires ON %s (expires)"):format(self.table, self.table),
  } do
    local _, e = self:_exec(sql)
    if e then conn:close(); return nil, store_error(where, e) end
  end
  return self
end

--- Closes the database (SQLite's seen).
function Sqlite:close()
  if self.conn then self.conn:close(); self.conn = nil end
end

return M
