--- The file store, safe across processes (`avalara.store.file(path)`; the
-- contract is in `avalara.store`).
--
-- An SQLite database through Debian's `lua-sql-sqlite3` (Lua 5.1 to 5.4 and
-- LuaJIT). Why SQLite rather than a JSON file under `flock`: every write is
-- a transaction that SQLite makes atomic and durable (journal, fsync) and
-- that a `kill -9` at any instant cannot tear, `cas` is one transaction, and
-- readers take no lock; `flock` would need new C in the core for the lock
-- and the fsyncs, and a whole-file rewrite per write. The figures are in the
-- docs/client.md, "Stores".
--
-- - The file and its write-ahead log (`-wal`, `-shm` beside it) are mode
--   0600, its folder is made 0700 (and its missing parents). An existing
--   folder that is not the user's own, is a symbolic link or is writable by
--   its group or others, and an existing file that is not the user's own, is
--   a link or is open to its group or others, are refused (`nil, err`
--   naming it), as OpenSSH's `StrictModes` does (`avalara.private`).
-- - `get` reads without a transaction and never waits for a writer (WAL);
--   `set`, `cas`, `delete` and `lock` are `BEGIN IMMEDIATE` transactions,
--   durable when they return (`synchronous = FULL`: the log is fsynced at
--   every commit), which wait up to 10 s for another process's (each lasts
--   about a millisecond).
-- - A lock is a row naming its holder: owner, pid, the process's start time,
--   the machine's boot id, host name and PID namespace (Linux `/proc`). A
--   lock whose holder is gone (killed, even with SIGKILL) is taken over at
--   once by the next caller in the same PID namespace of the same host; a
--   holder in another namespace (a container sharing the volume) or host,
--   or where `/proc` cannot tell, keeps it until its `ttl` (default 60 s)
--   lapses: the caller's lease must outlive the work it guards.
-- - A token file in the JSON format of earlier versions (a cache of access
--   tokens) found at `path` is replaced; any other file that is not an
--   SQLite database, a database of another schema or a damaged one gives
--   `nil, err` naming it.
-- - Failures are `avalara.error` tables of kind "store" (`store` is
--   `tostring(store)`, `path` the file, the message names it), `code` one of
--   "unsafe" (a folder or file others could reach), "corrupt" (not a store
--   of this library, another schema, a damaged file or value), "sqlite"
--   (another failure: a folder that cannot be made, an I/O error), "busy"
--   (another process held the database past the 10 s wait) or "full" (the
--   disk). All but "unsafe" are `retryable`: a client warns once and keeps
--   its token for the process meanwhile (a token cache that cannot be
--   written does not stop the work); "unsafe" is not, and a client fails
--   its call with it rather than keep a secret where others could reach it.
-- @module avalara.store.file
local cjson = require "cjson"
local private = require "avalara.private"
local holder = require "avalara.store.holder"
local core = require "avalara.core"
local sys = core.sys

local M = {}

local File = {}
File.__index = File

local BUSY_MS = 10000
local DEFAULT_LOCK_TTL = 60

local now = require("avalara.clock").now

local function slurp(path, bytes)
  local f, err = io.open(path, "rb") -- io is there: avalara.store.file checks it
  if not f then return nil, err end
  local s = f:read(bytes or "*a") or ""
  f:close()
  return s
end

local lock_seq = 0

-- ------------------------------------------------------------ opening

local function sql_string(conn, s)
  return "'" .. conn:escape(tostring(s)) .. "'"
end

local function sql_number(n)
  if n == nil then return "NULL" end
  return string.format("%d", math.floor(n))
end

-- A file of earlier versions: a JSON object of {value = {access_token ...}, expires}.
local function old_token_cache(text)
  local ok, t = pcall(cjson.decode, text)
  if not ok or type(t) ~= "table" then return false end
  for _, e in pairs(t) do
    if type(e) ~= "table" or type(e.value) ~= "table" then return false end
  end
  return true
end

-- Makes the file (0600, in a 0700 folder) unless it is there; checks that
-- the folder and the file (and its -wal and -shm) are private.
local function prepare(path)
  local ok, err = private.folder(private.dirname(path), { create = true })
  if not ok then return nil, err.message, err.code end
  local _, why
  for _, suffix in ipairs { "-wal", "-shm" } do
    _, why = private.file(path .. suffix, 63) -- 0077
    if why then return nil, why.message, why.code end
  end
  local info
  info, why = private.file(path)
  if why then return nil, why.message, why.code end
  local head = info and slurp(path, 16)
  if head and head:match("^%s*{") and old_token_cache(slurp(path) or "") then
    os.remove(path)
    info, head = nil, nil
  end
  if not info then
    local made, merr, errno = sys.create_file(path, 384) -- 0600
    if not made and errno ~= 17 then return nil, "cannot create " .. tostring(merr) end
    if not made then return prepare(path) end -- made meanwhile by another process: check it
    return true
  end
  if head ~= "" and head ~= "SQLite format 3\0" then
    return nil, path .. " is not an SQLite database (not a store of this library?)", "corrupt"
  end
  _, why = private.file(path, 63) -- tokens are secrets: not readable by others either
  if why then return nil, why.message, why.code end
  return true
end

local SCHEMA = {
  "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, version INTEGER NOT NULL, "
    .. "expires INTEGER)",
  "CREATE TABLE IF NOT EXISTS locks (key TEXT PRIMARY KEY, owner TEXT NOT NULL, pid INTEGER, started TEXT, "
    .. "boot TEXT, expires INTEGER NOT NULL)",
  "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, n INTEGER NOT NULL)",
  "INSERT OR IGNORE INTO meta (name, n) VALUES ('version', 0)",
}

-- The columns each table must have (a file of another schema is refused,
-- not half used); `host` and `pidns` are added to a store of an earlier version.
local COLUMNS = { kv = { "key", "value", "version", "expires" },
  locks = { "key", "owner", "pid", "started", "boot", "expires" }, meta = { "name", "n" } }
local ADDED = { locks = { "host", "pidns" } }

local driver

--- Opens (lazily, at the first operation) the store at `path`.
-- @string path
-- @treturn table the store
function M.open(path)
  return setmetatable({ path = path }, File)
end

-- Runs one statement; a SELECT gives its first row (an array) or false.
local function exec(conn, sql)
  local res, err = conn:execute(sql)
  if res == nil then error(err, 0) end
  if type(res) ~= "number" then
    local row = res:fetch({}) or false
    res:close()
    return row
  end
  return res
end

-- The standalone interpreter's Ctrl-C ("interrupted!", raised wherever the
-- script is) goes on up after the clean-up: it is no store failure.
local function reraise_interrupt(err)
  if type(err) == "string" and err:find("interrupted!$") then error(err, 0) end
end

-- The code of a failure: "corrupt", "busy", "full" or "sqlite" from SQLite's message.
local function code_of(message)
  message = tostring(message)
  if message:find("not a database", 1, true) or message:find("malformed", 1, true)
    or message:find("corrupt", 1, true) then return "corrupt" end
  if message:find("locked", 1, true) or message:find("busy", 1, true) then return "busy" end
  if message:find("disk is full", 1, true) or message:find("disk full", 1, true) then return "full" end
  return "sqlite"
end

-- The error of a failed operation: kind "store", the message naming the
-- store. `err` is a message, or a table {code, message} raised inside a
-- transaction; a place another user could reach ("unsafe") is refused
-- loudly, not retryable, so that a client fails the call with it instead of
-- keeping its token for this process only.
local function failure(self, err, code)
  if type(err) == "table" then err, code = err.message, err.code end
  err = tostring(err):gsub("^LuaSQL: ", "")
  code = code or code_of(err)
  if code ~= "unsafe" and code ~= "corrupt" and code ~= "busy" and code ~= "full" then code = "sqlite" end
  return core.error { kind = "store", code = code, retryable = code ~= "unsafe", store = tostring(self),
    path = self.path, message = tostring(self) .. ": " .. err }
end

function File:_conn()
  if self.conn then return self.conn end
  local ok, err, code = prepare(self.path)
  if not ok then return nil, failure(self, err, (code == "unsafe" or code == "corrupt") and code or nil) end
  if not driver then
    local loaded, mod = pcall(require, "luasql.sqlite3")
    if not loaded then
      error("avalara.store.file needs LuaSQL for SQLite (Debian: apt-get install lua-sql-sqlite3): "
        .. tostring(mod), 0)
    end
    driver = mod.sqlite3()
  end
  local conn, cerr = driver:connect(self.path, BUSY_MS)
  if not conn then return nil, failure(self, cerr) end
  local cur
  ok, cerr = pcall(function()
    exec(conn, "PRAGMA busy_timeout = " .. BUSY_MS)
    -- Write-ahead log, fsynced at every commit: durable writes at one fsync
    -- each, and readers that never wait for a writer.
    exec(conn, "PRAGMA journal_mode = WAL")
    exec(conn, "PRAGMA synchronous = FULL")
    for _, sql in ipairs(SCHEMA) do exec(conn, sql) end
    for tname, want in pairs(COLUMNS) do
      local have = {}
      cur = assert(conn:execute("PRAGMA table_info(" .. tname .. ")"))
      local r = cur:fetch({}, "a")
      while r do
        have[r.name] = true
        r = cur:fetch({}, "a")
      end
      cur:close()
      cur = nil
      for _, col in ipairs(want) do
        if not have[col] then
          error({ code = "corrupt", message = self.path .. " is a database of another schema (its table "
            .. tname .. " has no column " .. col .. "): not a store of this library" }, 0)
        end
      end
      for _, col in ipairs(ADDED[tname] or {}) do
        if not have[col] then exec(conn, "ALTER TABLE " .. tname .. " ADD COLUMN " .. col .. " TEXT") end
      end
    end
  end)
  if not ok then
    if cur then pcall(cur.close, cur) end
    pcall(conn.close, conn)
    reraise_interrupt(cerr)
    return nil, failure(self, cerr)
  end
  self.conn = conn
  return conn
end

-- Runs fn(conn) inside a write transaction; fn returns `commit` (boolean)
-- and up to three results, which this returns after the commit or
-- rollback. nil, err on a failure (the transaction rolled back).
function File:_tx(fn)
  local conn, err = self:_conn()
  if not conn then return nil, err end
  local begun, berr = conn:execute("BEGIN IMMEDIATE")
  if not begun then return nil, failure(self, berr) end
  local ok, commit, a, b, c = pcall(fn, conn)
  if not ok then
    conn:execute("ROLLBACK")
    reraise_interrupt(commit)
    return nil, failure(self, commit)
  end
  local done, derr = conn:execute(commit and "COMMIT" or "ROLLBACK")
  if not done then
    conn:execute("ROLLBACK")
    return nil, failure(self, derr)
  end
  return a, b, c
end

-- ------------------------------------------------------------ operations

local function decode(self, row)
  local ok, value = pcall(cjson.decode, row[1])
  if not ok then return nil, nil, failure(self, "unreadable value: " .. tostring(value), "corrupt") end
  return value, tonumber(row[2])
end

-- The live row {value, version} of `key` inside a transaction, or nil.
local function current(conn, key)
  local row = exec(conn, "SELECT value, version, expires FROM kv WHERE key = " .. sql_string(conn, key))
  if not row or (row[3] and tonumber(row[3]) <= now()) then return nil end
  return row
end

local function write(conn, key, value, ttl)
  local v = exec(conn, "UPDATE meta SET n = n + 1 WHERE name = 'version'") and
    tonumber(exec(conn, "SELECT n FROM meta WHERE name = 'version'")[1])
  exec(conn, "DELETE FROM kv WHERE expires IS NOT NULL AND expires <= " .. sql_number(now()))
  exec(conn, ("INSERT OR REPLACE INTO kv (key, value, version, expires) VALUES (%s, %s, %d, %s)"):format(
    sql_string(conn, key), sql_string(conn, cjson.encode(value)), v, sql_number(ttl and now() + ttl)))
  return v
end

--- The value under `key` and its version, or nil when absent or past its
-- ttl (nil, nil, err when the file cannot be read).
-- @string key
function File:get(key)
  local conn, err = self:_conn()
  if not conn then return nil, nil, err end
  local ok, row = pcall(current, conn, key)
  if not ok then
    reraise_interrupt(row)
    return nil, nil, failure(self, row)
  end
  if not row then return nil end
  return decode(self, row)
end

--- Stores `value` under `key` in one transaction.
-- @string key
-- @tparam table value
-- @tparam[opt] number ttl seconds (nil: no expiry)
-- @return true and the new version, or nil, err
function File:set(key, value, ttl)
  local v, err = self:_tx(function(conn) return true, write(conn, key, value, ttl) end)
  if v == nil then return nil, err end
  return true, v
end

--- Compare-and-set in one transaction (see `avalara.store`).
-- @string key
-- @param version as returned by `get`, or nil (only if absent)
-- @tparam[opt] table value nil deletes
-- @tparam[opt] number ttl
-- @return true, new version (none after a delete) | false, current value, current version | nil, err
function File:cas(key, version, value, ttl)
  local outcome, a = self:_tx(function(conn)
    local row = current(conn, key)
    local have = row and tonumber(row[2]) or nil
    if have ~= version then return false, "changed", row end
    if value == nil then
      exec(conn, "DELETE FROM kv WHERE key = " .. sql_string(conn, key))
      return true, "done"
    end
    return true, "done", write(conn, key, value, ttl)
  end)
  if outcome == nil then return nil, a end
  if outcome == "done" then return true, a end
  if not a then return false, nil, nil end
  local now_value, have, derr = decode(self, a)
  if derr then return nil, derr end
  return false, now_value, have
end

--- Forgets `key`.
-- @string key
-- @return true, or nil, err
function File:delete(key)
  local ok, err = self:_tx(function(conn)
    exec(conn, "DELETE FROM kv WHERE key = " .. sql_string(conn, key))
    return true, true
  end)
  if ok == nil then return nil, err end
  return true
end

--- Takes the lock on `key` without blocking, for every process using the
-- file: a lock whose holder has died is taken over.
-- @string key
-- @tparam[opt=60] number ttl seconds after which the lock lapses whatever happened to its holder
-- @return an unlock function, or nil (held by a live holder), or nil, err
function File:lock(key, ttl)
  lock_seq = lock_seq + 1
  local me = holder.self
  local owner = ("%s:%s:%d:%s"):format(tostring(me.pid), tostring(me.started), lock_seq, tostring({}):match("%x+$"))
  local taken, err = self:_tx(function(conn)
    local row = exec(conn, "SELECT pid, started, boot, expires, host, pidns FROM locks WHERE key = "
      .. sql_string(conn, key))
    if row and not holder.gone(row) then return false, false end
    local function text(v) return v and sql_string(conn, v) or "NULL" end
    exec(conn, ("INSERT OR REPLACE INTO locks (key, owner, pid, started, boot, expires, host, pidns) "
      .. "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"):format(sql_string(conn, key), sql_string(conn, owner),
        sql_number(me.pid), text(me.started), text(me.boot), sql_number(now() + (ttl or DEFAULT_LOCK_TTL)),
        text(me.host), text(me.pidns)))
    return true, true
  end)
  if taken == nil then return nil, err end
  if not taken then return nil end
  return function()
    return self:_tx(function(conn)
      exec(conn, "DELETE FROM locks WHERE key = " .. sql_string(conn, key)
        .. " AND owner = " .. sql_string(conn, owner))
      return true, true
    end)
  end
end

--- Closes the database connection (the next operation opens it again).
function File:close()
  if self.conn then self.conn:close() end
  self.conn = nil
end

File.__tostring = function(self) return "avalara.store.file(" .. self.path .. ")" end

return M
