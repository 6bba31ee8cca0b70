-- The journal format, chosen by measurement (issue 16): append-only JSON
-- Lines (through luv, so each record is one write(2) and fsync(2) is at
-- hand) against SQLite through Debian's lua-sql-sqlite3, for the records a
-- batch writes per item (create sent, created, finished with its model), at
-- the fsync policies that make sense, plus the cost of reading a finished
-- journal back (resume). Prints a Markdown table; not a test.
--
--   lua5.4 bench/journal.lua [ITEMS=20000] [DIR=/tmp]
local uv = require "luv"
local cjson = require "cjson"
local sqlite = require "luasql.sqlite3"

local FULL = tonumber(arg[1]) or 20000
local N = FULL
local DIR = arg[2] or os.getenv("TMPDIR") or "/tmp"
local GROUP = 64 -- items launched together (the concurrency of the catalog benchmark)

local function now() return uv.hrtime() / 1e9 end

local MODEL = { id = "1001-SKU-000000-US", countryOfDestination = "US", status = "CLASSIFIED", hsCode = "610910",
  item = { id = 1, companyId = 1001, itemCode = "SKU-000000", description = "men's cotton t-shirt, crew neck",
    itemGroup = "General merchandise", createdDate = "2026-01-01T00:00:00.000Z" } }

local function records(i)
  local id = "1001-SKU-" .. i .. "-US"
  return { { r = i, s = "sent", id = id }, { r = i, s = "created", id = id },
    { r = i, s = "done", id = id, model = MODEL } }
end

-- JSON Lines: each record one write(2); fsync per record, per group, or never.
local function jsonl(path, sync)
  os.remove(path)
  local fd = assert(uv.fs_open(path, "a", 384))
  local t0, syncs = now(), 0
  for g = 1, N, GROUP do
    for phase = 1, 3 do
      for i = g, math.min(N, g + GROUP - 1) do
        assert(uv.fs_write(fd, cjson.encode(records(i)[phase]) .. "\n"))
        if sync == "record" then uv.fs_fsync(fd); syncs = syncs + 1 end
      end
      -- the "sent" records of a group must be durable before its creates go
      if sync == "group" and phase == 1 then uv.fs_fsync(fd); syncs = syncs + 1 end
    end
  end
  uv.fs_fsync(fd)
  uv.fs_close(fd)
  return (now() - t0) / N, syncs
end

local function sql_open(path, sync)
  for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(path .. suffix) end
  local env = assert(sqlite.sqlite3())
  local conn = assert(env:connect(path))
  assert(conn:execute("PRAGMA journal_mode=WAL"))
  assert(conn:execute("PRAGMA synchronous=" .. sync))
  assert(conn:execute("CREATE TABLE items (row INTEGER PRIMARY KEY, state TEXT, id TEXT, result TEXT)"))
  return env, conn
end

-- SQLite: one row per item updated at each step; a transaction per record
-- or per group; synchronous FULL (fsync at every commit) or NORMAL.
local function sql(path, sync, per)
  local env, conn = sql_open(path, sync)
  local t0 = now()
  if per == "group" then conn:setautocommit(false) end
  for g = 1, N, GROUP do
    for phase = 1, 3 do
      for i = g, math.min(N, g + GROUP - 1) do
        local rec = records(i)[phase]
        local stmt
        if phase == 1 then
          stmt = ("INSERT INTO items VALUES (%d, 'sent', '%s', NULL)"):format(i, conn:escape(rec.id))
        elseif phase == 2 then
          stmt = ("UPDATE items SET state = 'created' WHERE row = %d"):format(i)
        else
          stmt = ("UPDATE items SET state = 'done', result = '%s' WHERE row = %d"):format(
            conn:escape(cjson.encode(rec.model)), i)
        end
        assert(conn:execute(stmt))
      end
      if per == "group" and phase == 1 then conn:commit() end
    end
    if per == "group" then conn:commit() end
  end
  conn:close()
  env:close()
  return (now() - t0) / N
end

-- Reading a finished journal back: every item's final state.
local function jsonl_resume(path)
  local t0, done = now(), 0
  for line in io.lines(path) do
    local ok, rec = pcall(cjson.decode, line)
    if ok and rec.s == "done" then done = done + 1 end
  end
  assert(done == N)
  return now() - t0
end

local function sql_resume(path)
  local env = assert(sqlite.sqlite3())
  local conn = assert(env:connect(path))
  local t0, done = now(), 0
  local cur = assert(conn:execute("SELECT row, state, result FROM items ORDER BY row"))
  local row = cur:fetch({}, "a")
  while row do
    if row.state == "done" then cjson.decode(row.result); done = done + 1 end
    row = cur:fetch(row, "a")
  end
  cur:close()
  conn:close()
  env:close()
  assert(done == N)
  return now() - t0
end

local rows = {}
local function add(name, per_item, note) rows[#rows + 1] = { name, per_item, note } end

local p = DIR .. "/bench-journal.jsonl"
add("JSON Lines, write(2) per record, no fsync", jsonl(p, "never"))
add("JSON Lines, fsync per group of " .. GROUP .. " creates", jsonl(p, "group"))
local resume_jsonl = jsonl_resume(p)
-- fsync per record is slow (a few ms each): a tenth of the items is enough to see it
N = math.max(100, math.floor(FULL / 10))
add("JSON Lines, fsync per record (" .. N .. " items)", jsonl(p, "record"))
N = FULL
local q = DIR .. "/bench-journal.sqlite"
add("SQLite WAL, synchronous=NORMAL, a transaction per group", sql(q, "NORMAL", "group"))
add("SQLite WAL, synchronous=FULL, a transaction per group", sql(q, "FULL", "group"))
local resume_sql = sql_resume(q)
N = math.max(100, math.floor(FULL / 10))
add("SQLite WAL, synchronous=FULL, a transaction per record (" .. N .. " items)", sql(q, "FULL", "record"))
N = FULL
for _, f in ipairs { p, q, q .. "-wal", q .. "-shm" } do os.remove(f) end

N = FULL
print(("Journal cost per item (%d items, 3 records each: create sent, created, finished with its model), %s:")
  :format(N, DIR))
print("")
print("| format and fsync policy | µs per item |")
print("|---|---:|")
for _, r in ipairs(rows) do print(("| %s | %.1f |"):format(r[1], r[2] * 1e6)) end
print("")
print(("Reading a finished journal of %d items back: JSON Lines %.0f ms, SQLite %.0f ms."):format(
  N, resume_jsonl * 1000, resume_sql * 1000))
