-- The stores' costs (not part of `make bench`'s ratios: a plain measurement).
--
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/lua5.4/?.so;;' lua5.4 bench/store.lua [DIR]
--
-- Per operation, in one process: get, set, cas, lock + unlock, for the
-- memory store and the file store (SQLite, in DIR, default /tmp: put it on
-- the disk you will use, writes fsync). Then 4 processes each doing 200
-- lock, get, cas, unlock cycles on one key of one file: cycles per second
-- and whether any update was lost.
local avalara = require "avalara"
local socket = require "socket"

local dir = arg[1] or "/tmp"
local N = { memory = 20000, file = 500 }

local function per_op(n, f)
  local t0 = socket.gettime()
  for i = 1, n do f(i) end
  return (socket.gettime() - t0) / n * 1e6
end

local function measure(name, store)
  local n = N[name]
  local value = { access_token = ("a"):rep(32), refresh_token = ("r"):rep(32), token_type = "avalara",
    scope = "CompanyUser", expires_at = 253402300799, created_at = os.time(), status = "connected" }
  store:set("k", value)
  local get = per_op(n * 4, function() store:get("k") end)
  local set = per_op(n, function() store:set("k", value) end)
  local cas = per_op(n, function()
    local _, version = store:get("k")
    assert(store:cas("k", version, value))
  end)
  local lock = per_op(n, function() assert(store:lock("k"))() end)
  print(("%-7s get %8.1f us   set %8.1f us   get+cas %8.1f us   lock+unlock %8.1f us"):format(name, get, set, cas,
    lock))
end

local path = dir .. "/avalara-bench-store-" .. os.time() .. ".db"
measure("memory", avalara.store.memory())
measure("file", avalara.store.file(path))
os.remove(path)

-- 4 processes, 200 cycles each, on one key.
if arg[2] == "child" then return end
local counter = dir .. "/avalara-bench-counter-" .. os.time() .. ".db"
local child = [[
local store = require("avalara.store").file(arg[1])
local socket = require "socket"
for _ = 1, 200 do
  local unlock = store:lock("c")
  while not unlock do socket.sleep(0.0005); unlock = store:lock("c") end
  local v, version = store:get("n")
  assert(store:cas("n", version, { n = (v and v.n or 0) + 1 }))
  unlock()
end
]]
local script = os.tmpname()
local f = assert(io.open(script, "w"))
f:write(child)
f:close()
local lua = arg[-1] or "lua5.4"
local t0 = socket.gettime()
local cmd = {}
for i = 1, 4 do cmd[i] = ("%s %s %s &"):format(lua, script, counter) end
os.execute(table.concat(cmd, " ") .. " wait")
local took = socket.gettime() - t0
local n = avalara.store.file(counter):get("n").n
print(("file    4 processes x 200 lock+get+cas+unlock cycles: %.2f s, %.0f cycles/s, counter %d (lost %d)")
  :format(took, 800 / took, n, 800 - n))
os.remove(counter)
os.remove(script)
