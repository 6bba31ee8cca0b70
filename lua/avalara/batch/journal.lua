--- The state of a batch, item by item: in memory, or durable in a journal
-- file that a later run resumes from (issue 16).
--
-- Why this size: about 550 lines, of which a third is comments: the
-- journal's file checks on open (a private place, its owner, its schema, its
-- batch), its row states, and the comparison with an edited input (issue 23)
-- share one SQLite connection and its statement helpers, which a split
-- would have to expose.
--
--    local journal = require "avalara.batch.journal"
--    local j = assert(journal.open("results.csv.journal", { company = 1001, api_base = "https://..." }))
--    j:queue(1, "1001-TS-1-US", canonical)   -- and sent, created, done, reset, commit
--
-- Each input row (numbered from 1 in input order) goes through the states
-- `queued` → `sent` (its create is about to go out) → `created` (201, with
-- its id) → `done` (its model, or an error that retrying will not change).
-- A quota stop or a create refused puts a row back to `queued`.
--
-- Rows are matched to the input by their number while the input has the
-- journal's keys in the same places (a resume; a row edited in place is
-- queued again there, `requeue`). From the first row that does not (rows
-- moved, added or removed: a nightly catalog), `rebase` sets the journal's
-- remaining rows aside and `carry` finds each by
-- its key (item code and country): the same canonical item keeps its state
-- and result (a create that was sent stays `sent`: it is looked up by id,
-- never sent again), another is queued again, a new key is queued; `settle`
-- drops what no row took. All of it happens in the planning pass's
-- transaction: a rollback, or a crash before its commit, leaves the journal
-- as it was. The schema is unchanged (format 2): the tables set aside live
-- only inside that transaction.
--
-- The file is SQLite (Debian's lua-sql-sqlite3), chosen by measurement
-- (bench/journal.lua, bench/RESULTS.md): per item it costs the same as
-- appending JSON Lines, and its index answers "which earlier row has this
-- item code and country" and "what became of row N" without holding the
-- catalog in memory. It runs in WAL mode with `synchronous=FULL`: every
-- `commit` is on disk (fsync) when it returns. The batch marks the next
-- creates as sent by groups (twice the concurrency) in one commit before the
-- first of them goes out, and commits at least once a second, so after a
-- power cut every create that went out is known (its answer is looked up by
-- id, never created again; a create marked but not sent costs a lookup) and
-- at most the last second of results is read again with a GET. Each commit
-- records its time (`committed_at` in `meta`; `last_commit` gives the
-- previous run's): a create that run sent and a resume does not find yet
-- may still be under way at the service, so the batch looks it up once more
-- when that run would have sent it again itself. A torn last
-- write is SQLite's business: a WAL frame that is not whole is ignored on the next open. The file is locked
-- (`locking_mode=EXCLUSIVE`): a second process cannot use it at the same time.
--
-- Its folder must be the user's own and not writable by its group or
-- others (SQLite makes `-wal` and `-shm` files beside it, whose names anyone
-- writing there could plant); an existing journal must be the user's own,
-- not a symbolic link, not writable by others. A new one is made
-- exclusively, mode 0600 (`avalara.private`). A file that is not a journal
-- (another schema, damaged) is refused with `nil, err`, never raised.
--
-- Errors: `open` returns `nil, err` (`avalara.core.error`, with `path`):
-- kind `store` when the file cannot be used (no SQLite driver, an unsafe
-- folder or file, in use by another process), `input` when it is not this
-- batch's journal (not SQLite, another schema, another batch's). Once open,
-- a failed write raises a `store` error (the batch cannot go on without its
-- record): `avalara.batch.classify` returns it, `hscode batch` reports it.
-- (Was `avalara.journal`, which still loads this module.)
-- @module avalara.batch.journal
local clock = require "avalara.clock"
local core = require "avalara.core"
local private = require "avalara.private"
local memory = require "avalara.batch.memory"
local results = require "avalara.batch.result"

local M = {}

--- The format written in the journal's `meta` table; another value is refused.
M.FORMAT = "avalara-hscode batch journal 2"

--- A result (a model, or an error) as JSON text (`avalara.batch.result.encode`).
-- @function encode_result
M.encode_result = results.encode

--- The result `encode_result` wrote (`avalara.batch.result.decode`).
-- @function decode_result
M.decode_result = results.decode

--- A state in this process's memory (a batch without a journal), with the
-- same methods as a journal file (`avalara.batch.memory`).
-- @function memory
M.memory = memory.new

-- ---------------------------------------------------------------- SQLite

local Sqlite = {}
Sqlite.__index = Sqlite

-- Rows are read ahead in chunks (the batch goes through them in order).
local CHUNK = 512

-- A failure of the journal: kind `store` (the file cannot be used) or
-- `input` (it is not this batch's journal), naming its path.
local function failure(kind, path, message)
  return core.error { kind = kind, message = message, path = path, retryable = false }
end

-- The text of a failure another module returned: a message, or an error table's message.
local function text(e)
  return core.is_error(e) and e.message or tostring(e)
end

-- A statement; an SQLite failure raises a `store` error (the batch ends:
-- nothing is recorded any more). `avalara.batch.classify` returns it as
-- `nil, err`, the CLI reports it.
local function exec(self, sql)
  local res, err = self.conn:execute(sql)
  if not res then error(failure("store", self.path, "journal " .. self.path .. ": " .. tostring(err)), 0) end
  return res
end

-- A statement whose rows (a PRAGMA's answer) are not wanted.
local function run(self, sql)
  local res = exec(self, sql)
  if type(res) == "userdata" then res:close() end
end

local function quote(self, s)
  if s == nil then return "NULL" end
  return "'" .. self.conn:escape(s) .. "'"
end

local function rows_of(self, sql)
  local cur = exec(self, sql)
  local out = {}
  local r = cur:fetch({}, "a")
  while r do
    out[#out + 1] = r
    r = cur:fetch({}, "a")
  end
  cur:close()
  return out
end

-- The tables of rows and keys.
local ITEMS = "(row INTEGER PRIMARY KEY, key TEXT NOT NULL, item TEXT NOT NULL, state TEXT NOT NULL, result TEXT, "
  .. "dup_of INTEGER)"
local KEYS = "(key TEXT PRIMARY KEY, row INTEGER NOT NULL) WITHOUT ROWID"

-- The columns a journal's tables must have.
local COLUMNS = { meta = { "name", "value" }, items = { "row", "key", "item", "state", "result", "dup_of" },
  keys = { "key", "row" } }

local function meta_of(self)
  local out = {}
  for _, r in ipairs(rows_of(self, "SELECT name, value FROM meta")) do out[r.name] = r.value end
  return out
end

-- The steps of `open`. Each returns nil, err on failure.

local function unusable(path, why)
  return nil, failure("store", path, "cannot use the journal " .. path .. ": " .. why)
end

-- The file's place checked (a private folder; no planted -wal or -shm), the
-- file made (0600, exclusively) or found (its own, an SQLite file).
-- @return whether it existed, or nil, err
local function place(path, restart)
  local ok_dir, derr = private.folder(private.dirname(path))
  if not ok_dir then return unusable(path, text(derr)) end
  if restart then
    for _, suffix in ipairs { "", "-wal", "-shm", "-journal" } do os.remove(path .. suffix) end
  end
  for _, suffix in ipairs { "-wal", "-shm", "-journal" } do
    local _, why = private.file(path .. suffix)
    if why then return unusable(path, text(why)) end
  end
  local info, ferr = private.file(path)
  if ferr then return unusable(path, text(ferr)) end
  if not info then
    local made, merr = core.sys.create_file(path, 384) -- 0600, exclusively
    if not made then return nil, failure("store", path, "cannot create the journal " .. text(merr)) end
    return false
  end
  local probe = io.open(path, "rb")
  if probe then
    local head = probe:read(16) or ""
    probe:close()
    if head ~= "" and head ~= "SQLite format 3\0" then
      return nil, failure("input", path,
        path .. " is not a journal (not an SQLite file); use --journal to name another file")
    end
  end
  return true
end

-- A failure raised inside `pcall` (a statement's `store` error, a schema's
-- `input` error, an SQLite message) as nil, err; Ctrl-C goes on up.
local function caught(self, why)
  self:close()
  if core.is_error(why) and why.kind == "input" then return nil, why end
  local kind = core.is_error(why) and why.kind or "store"
  why = text(why)
  if why:match("interrupted!$") then error(why, 0) end
  if why:find("locked", 1, true) then
    return nil, failure("store", self.path, "the journal " .. self.path .. " is in use by another process")
  end
  return nil, failure(kind, self.path, "cannot use the journal " .. self.path .. ": "
    .. why:gsub("^journal [^:]*: ", ""))
end

-- Locked, in WAL mode, synced on commit, its tables made or checked (raises).
-- @return what its meta table holds
local function prepare(self)
  run(self, "PRAGMA busy_timeout = 0")
  run(self, "PRAGMA locking_mode = EXCLUSIVE")
  local mode = rows_of(self, "PRAGMA journal_mode = WAL")[1]
  if not mode or (mode.journal_mode or ""):lower() ~= "wal" then error("cannot switch it to WAL mode", 0) end
  run(self, "PRAGMA synchronous = FULL")
  exec(self, "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
  exec(self, "CREATE TABLE IF NOT EXISTS items " .. ITEMS)
  -- the first row of each key (item code and country): duplicates are found here
  exec(self, "CREATE TABLE IF NOT EXISTS keys " .. KEYS)
  for tname, cols in pairs(COLUMNS) do
    local have = {}
    for _, r in ipairs(rows_of(self, "PRAGMA table_info(" .. tname .. ")")) do have[r.name] = true end
    for _, col in ipairs(cols) do
      if not have[col] then
        error(failure("input", self.path, "cannot use the journal " .. self.path .. ": it is not a journal of "
          .. "hscode batch (another schema: its table " .. tname .. " has no column " .. col .. ")"), 0)
      end
    end
  end
  return meta_of(self)
end

-- A value of the meta table in a message.
local function shown(v)
  return (v == nil or v == "") and "unset" or tostring(v)
end

-- What it belongs to: recorded in a new journal, compared in an existing one
-- (raises an `input` error naming the first difference); a name an existing
-- journal lacks (an earlier version did not record it) is recorded.
local function claim(self, have, meta)
  local want = { format = M.FORMAT }
  for k, v in pairs(meta or {}) do want[k] = tostring(v) end
  if next(have) ~= nil then
    local missing = {}
    for k, v in pairs(want) do
      if have[k] == nil and k ~= "format" then
        missing[k] = v -- recorded by an earlier version, without it: it is recorded now
      elseif have[k] ~= v then
        error(failure("input", self.path, string.format(
          "the journal %s belongs to another batch (its %s is %s, this one's is %s)", self.path, k,
          shown(have[k]), shown(v))), 0)
      end
    end
    exec(self, "BEGIN") -- recorded with the run's first commit (a rollback, as in a dry run, keeps it as it was)
    for k, v in pairs(missing) do
      exec(self, ("INSERT INTO meta VALUES (%s, %s)"):format(quote(self, k), quote(self, v)))
    end
  else
    exec(self, "BEGIN")
    for k, v in pairs(want) do
      exec(self, ("INSERT INTO meta VALUES (%s, %s)"):format(quote(self, k), quote(self, v)))
    end
    exec(self, "COMMIT")
    exec(self, "BEGIN")
  end
end

--- Opens (or creates) a journal file.
-- `meta` names what the journal belongs to (`company`, `api_base`, ...: strings
-- or numbers); an existing journal written with other values, or by another
-- format, is refused naming the difference.
-- @string path
-- @tparam table meta
-- @tparam[opt] table opts `{restart = true}` discards an existing journal first
-- @return the journal, or nil, err: kind `store` (no SQLite driver, an unsafe
-- or unusable file or folder, in use by another process) or `input` (not a
-- journal, another batch's), with `path`
function M.open(path, meta, opts)
  if type(path) ~= "string" then error("journal.open: 'path' must be a string", 2) end
  if meta ~= nil and type(meta) ~= "table" then error("journal.open: 'meta' must be a table", 2) end
  if opts ~= nil and type(opts) ~= "table" then error("journal.open: 'opts' must be a table", 2) end
  opts = opts or {}
  if not (io and os) then
    return nil, failure("store", path, "a journal needs the io and os libraries, which this Lua state (a sandbox?) "
      .. "does not have; use journal = avalara.batch.journal.memory() or none")
  end
  local ok, driver = pcall(require, "luasql.sqlite3")
  if not ok and tostring(driver):match("interrupted!$") then error(driver, 0) end
  if not ok then
    return nil, failure("store", path,
      "a journal needs LuaSQL's SQLite driver (Debian: apt-get install lua-sql-sqlite3)")
  end
  local existed, perr = place(path, opts.restart)
  if existed == nil then return nil, perr end
  local env = driver.sqlite3()
  local conn, err = env:connect(path)
  if not conn then
    env:close()
    return nil, failure("store", path, "cannot open the journal " .. path .. ": " .. tostring(err))
  end
  local self = setmetatable({ env = env, conn = conn, path = path, cache = {}, cache_from = 0, cache_to = -1,
    existed = existed }, Sqlite)
  local good, why = pcall(function()
    local have = prepare(self)
    self.previous_commit = tonumber(have.committed_at)
    have.committed_at = nil -- not what it belongs to: when it was last committed
    claim(self, have, meta)
  end)
  if not good then return caught(self, why) end
  return self
end

-- Reads the chunk of rows around `row` into the cache.
function Sqlite:_fill(row)
  local from = row - (row - 1) % CHUNK
  local cache = {}
  for _, r in ipairs(rows_of(self, ("SELECT row, key, item, state, result, dup_of FROM items WHERE row >= %d "
      .. "AND row < %d"):format(from, from + CHUNK))) do
    r.dup_of = tonumber(r.dup_of)
    cache[tonumber(r.row)] = r
  end
  self.cache, self.cache_from, self.cache_to = cache, from, from + CHUNK - 1
end

--- What is known of `row`: `{state, key, item, result, dup_of}` (result as JSON text), or nil.
-- @int row
function Sqlite:get(row)
  if row < self.cache_from or row > self.cache_to then self:_fill(row) end
  return self.cache[row]
end


local function update(self, row, state, result)
  if result ~= nil then
    exec(self, ("UPDATE items SET state = '%s', result = %s WHERE row = %d"):format(state, quote(self, result), row))
  else
    exec(self, ("UPDATE items SET state = '%s' WHERE row = %d"):format(state, row))
  end
  local r = self.cache[row]
  if r and row >= self.cache_from and row <= self.cache_to then
    r.state = state
    if result ~= nil then r.result = result end
  end
end

--- What is known of one row far from the others read (a duplicate's first
-- row), without changing which rows are read ahead.
-- @int row
function Sqlite:peek(row)
  if row >= self.cache_from and row <= self.cache_to then return self.cache[row] end
  local r = rows_of(self, ("SELECT row, key, item, state, result, dup_of FROM items WHERE row = %d"):format(row))[1]
  if r then r.dup_of = tonumber(r.dup_of) end
  return r
end

--- Records `row` as queued with its key and canonical item; a row whose
-- key an earlier row has is a duplicate of it (`dup_of`).
-- @int row
-- @string key
-- @string item
-- @return the earlier row with the same key, or nil
function Sqlite:queue(row, key, item)
  local k = quote(self, key)
  -- One statement in the common case: the key is new.
  local first
  if exec(self, ("INSERT OR IGNORE INTO keys (key, row) VALUES (%s, %d)"):format(k, row)) == 0 then
    local r = rows_of(self, "SELECT row FROM keys WHERE key = " .. k)[1]
    first = r and tonumber(r.row)
    if first and first >= row then first = nil end
  end
  exec(self, ("INSERT OR REPLACE INTO items (row, key, item, state, dup_of) VALUES (%d, %s, %s, 'queued', %s)")
    :format(row, k, quote(self, item), first and tostring(first) or "NULL"))
  if row >= self.cache_from and row <= self.cache_to then
    self.cache[row] = { row = row, key = key, item = item, state = "queued", dup_of = first }
  end
  return first
end

--- Whether nothing is recorded.
-- @treturn boolean
function Sqlite:empty()
  return rows_of(self, "SELECT row FROM items LIMIT 1")[1] == nil
end

--- The first row recorded with `key`, or nil.
-- @string key
function Sqlite:first_row(key)
  local r = rows_of(self, "SELECT row FROM keys WHERE key = " .. quote(self, key))[1]
  return r and tonumber(r.row)
end

--- Sets the rows from `from` on aside (tables `previous` and
-- `previous_keys`, in the planning pass's transaction): the input changed
-- there. Each is then found by its key (`carry`); what no row takes is
-- dropped (`settle`). A rollback puts everything back.
-- @int from
function Sqlite:rebase(from)
  exec(self, "DROP TABLE IF EXISTS previous")
  exec(self, "DROP TABLE IF EXISTS previous_keys")
  local function count(where)
    return tonumber(rows_of(self, "SELECT COUNT(*) AS n FROM items WHERE " .. where)[1].n)
  end
  if count("row >= " .. from) > count("row < " .. from) then
    -- most rows move: the tables are renamed, the rows before `from` copied back
    exec(self, "ALTER TABLE items RENAME TO previous")
    exec(self, "ALTER TABLE keys RENAME TO previous_keys")
    exec(self, "CREATE TABLE items " .. ITEMS)
    exec(self, "CREATE TABLE keys " .. KEYS)
    exec(self, ("INSERT INTO items SELECT * FROM previous WHERE row < %d"):format(from))
    exec(self, ("INSERT INTO keys SELECT * FROM previous_keys WHERE row < %d"):format(from))
    exec(self, ("DELETE FROM previous_keys WHERE row < %d"):format(from))
  else
    -- the last rows move: they are copied aside
    exec(self, "CREATE TABLE previous (row INTEGER PRIMARY KEY, item TEXT NOT NULL, state TEXT NOT NULL, "
      .. "result TEXT)")
    exec(self, "CREATE TABLE previous_keys " .. KEYS)
    exec(self, ("INSERT INTO previous SELECT row, item, state, result FROM items WHERE row >= %d AND dup_of IS NULL")
      :format(from))
    exec(self, ("INSERT INTO previous_keys SELECT key, row FROM keys WHERE row >= %d"):format(from))
    exec(self, ("DELETE FROM items WHERE row >= %d"):format(from))
    exec(self, ("DELETE FROM keys WHERE row >= %d"):format(from))
  end
  self.cache, self.cache_from, self.cache_to = {}, 0, -1
  self.rebased = true
end

--- Queues `row` again with another item (its details changed, its key
-- did not): its result is forgotten, its next step is a create.
-- @int row
-- @string item
function Sqlite:requeue(row, item)
  exec(self, ("UPDATE items SET item = %s, state = 'queued', result = NULL WHERE row = %d"):format(quote(self, item),
    row))
  local r = self.cache[row]
  if r and row >= self.cache_from and row <= self.cache_to then r.item, r.state, r.result = item, "queued", nil end
end

--- Records `row` after a `rebase`: a duplicate of an earlier row of this
-- input, or the row set aside with its key (its progress kept when its item
-- is the same: a create that was sent is looked up, never sent again), or a
-- new one (queued).
-- @int row
-- @string key
-- @string item
-- @return the earlier row with the same key or nil; "unchanged", "changed" or "new"; the state
function Sqlite:carry(row, key, item)
  local k = quote(self, key)
  if exec(self, ("INSERT OR IGNORE INTO keys (key, row) VALUES (%s, %d)"):format(k, row)) == 0 then
    local first = tonumber(rows_of(self, "SELECT row FROM keys WHERE key = " .. k)[1].row)
    exec(self, ("INSERT OR REPLACE INTO items (row, key, item, state, dup_of) VALUES (%d, %s, %s, 'queued', %d)")
      :format(row, k, quote(self, item), first))
    return first
  end
  local p = rows_of(self, "SELECT p.item, p.state, p.result FROM previous_keys k JOIN previous p ON p.row = k.row "
    .. "WHERE k.key = " .. k)[1]
  local verdict, state, result = "new", "queued", nil
  if p then
    exec(self, "DELETE FROM previous_keys WHERE key = " .. k)
    if p.item == item then verdict, state, result = "unchanged", p.state, p.result else verdict = "changed" end
  end
  exec(self, ("INSERT OR REPLACE INTO items (row, key, item, state, result, dup_of) VALUES (%d, %s, %s, %s, %s, "
    .. "NULL)"):format(row, k, quote(self, item), quote(self, state), quote(self, result)))
  return nil, verdict, state, result
end

--- Ends the planning pass over `rows` rows: what the input no longer has
-- is dropped (the rows set aside that no row took; the rows past its end).
-- @int rows
-- @treturn int how many item codes and countries were dropped
function Sqlite:settle(rows)
  local removed
  if self.rebased then
    removed = tonumber(rows_of(self, "SELECT COUNT(*) AS n FROM previous_keys")[1].n)
    exec(self, "DROP TABLE previous")
    exec(self, "DROP TABLE previous_keys")
    self.rebased = nil
  else
    removed = tonumber(rows_of(self, ("SELECT COUNT(*) AS n FROM keys WHERE row > %d"):format(rows))[1].n)
    exec(self, ("DELETE FROM items WHERE row > %d"):format(rows))
    exec(self, ("DELETE FROM keys WHERE row > %d"):format(rows))
  end
  self.cache, self.cache_from, self.cache_to = {}, 0, -1
  return removed
end

--- Forgets a row just queued (a conflicting duplicate).
-- @int row
function Sqlite:drop(row)
  exec(self, ("DELETE FROM items WHERE row = %d"):format(row))
  self.cache[row] = nil
end

--- Its create is about to be sent (commit before sending it).
function Sqlite:sent(row) update(self, row, "sent") end
--- Its create answered 201.
function Sqlite:created(row) update(self, row, "created") end
--- Back to queued (its create was refused: nothing was created).
function Sqlite:reset(row) update(self, row, "queued") end
--- Finished: `result` is the JSON text of its model or error.
function Sqlite:done(row, result) update(self, row, "done", result) end

--- When an earlier run of this journal last committed (seconds since the
-- epoch, as `avalara.clock.now`), or nil: its creates in flight then may
-- still be under way at the service.
-- @treturn ?number
function Sqlite:last_commit()
  return self.previous_commit
end

--- Makes everything recorded so far durable (fsync), with the time
-- (`last_commit` of the next run), and goes on.
-- @return true
function Sqlite:commit()
  exec(self, ("INSERT OR REPLACE INTO meta (name, value) VALUES ('committed_at', '%.3f')"):format(clock.now()))
  exec(self, "COMMIT")
  exec(self, "BEGIN")
  return true
end

--- Undoes what was recorded since the last commit.
-- @return true
function Sqlite:rollback()
  exec(self, "ROLLBACK")
  self.cache, self.cache_from, self.cache_to, self.rebased = {}, 0, -1, nil
  exec(self, "BEGIN")
  return true
end

--- Commits and closes the file.
-- @return true
function Sqlite:close()
  if self.conn then
    local ok, err = pcall(self.conn.execute, self.conn, "COMMIT")
    self.conn:close()
    self.env:close()
    self.conn, self.env = nil, nil
    if not ok and tostring(err):match("interrupted!$") then error(err, 0) end
  end
  return true
end

--- Removes a journal file and the files SQLite keeps beside it (`-wal`,
-- `-shm`, `-journal`); the journal must be closed.
-- @string path
function M.remove(path)
  if type(path) ~= "string" then error("journal.remove: 'path' must be a string", 2) end
  if not os then error("journal.remove: removing files needs the os library, which this Lua state does not have", 2) end
  for _, suffix in ipairs { "", "-wal", "-shm", "-journal" } do os.remove(path .. suffix) end
end

Sqlite.__tostring = function(self) return "avalara.journal(" .. self.path .. ")" end

return M
