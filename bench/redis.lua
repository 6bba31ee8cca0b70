-- The Redis store's costs per operation (`make bench-redis`; not part of
-- `make bench`'s ratios), on a local redis-server with a password:
--
-- - plain Lua (Lua 5.4 and LuaJIT, LuaSocket and our RESP client): a raw GET
--   and SET of a 200-byte value, then the store's get, set, cas, lock +
--   unlock and a place in the fleet's rate budget;
-- - hiredis from C (bench/redis_hiredis.c): the floor of a hiredis binding;
-- - inside nginx on cosockets (one worker, connections from nginx's pool):
--   the same operations.
--
--   LUA_PATH='lua/?.lua;lua/?/init.lua;./?.lua;;' lua5.4 bench/redis.lua
-- writes its section of bench/RESULTS.md.
local socket = require "socket"

local N = tonumber(os.getenv("BENCH_REDIS_OPS")) or 20000
local PASSWORD = "bench-redis-password"

-- The operations, each run n times on `store` (and its client); µs per operation.
local function measure(store, n, clock)
  local fleet_rate = require "avalara.fleet.rate"
  local failover = require "avalara.store.failover"
  local value = { access_token = ("a"):rep(120), token_type = "Bearer", scope = "hs-code-classification",
    expires_at = 253402300799, obtained_at = 1700000000 }
  local raw = ("v"):rep(200)
  local c = store.redis
  assert(c:command("SET", "bench:raw", raw))
  assert(store:set("k", value))
  local budget = fleet_rate.new(c, store.prefix .. "bench:rate:" .. tostring(clock()), { requests = 1e9, window = 1 },
    failover.breaker {})
  local ops = {
    { "raw GET", function() assert(c:command("GET", "bench:raw")) end },
    { "raw SET", function() assert(c:command("SET", "bench:raw", raw)) end },
    { "store get", function() assert(store:get("k")) end },
    { "store set", function() assert(store:set("k", value, 3600)) end },
    { "store cas", function()
      local _, version = store:get("k")
      assert(store:cas("k", version, value, 3600))
    end },
    { "lock + unlock", function() assert(store:lock("l"))() end },
    { "rate budget place", function() assert(budget:take(function() end)) end },
  }
  local out = {}
  for i, op in ipairs(ops) do
    op[2]() -- warm: scripts loaded, connection open
    local t0 = clock()
    for _ = 1, n do op[2]() end
    out[i] = { op[1], (clock() - t0) / n * 1e6 }
  end
  return out
end

-- In a child interpreter: `bench/redis.lua plain PORT N` prints "name=us" lines.
if arg and arg[1] == "plain" then
  local store = require("avalara.store.redis").new { port = tonumber(arg[2]), password = PASSWORD,
    prefix = "bench:" }
  for _, r in ipairs(measure(store, tonumber(arg[3]), socket.gettime)) do print(("%s=%.1f"):format(r[1], r[2])) end
  return
end

local redis = require "spec.support.redis"
local nginx = require "spec.support.nginx"
local results = require "bench.results"
local util = require "bench.util"

local function lines_of(cmd)
  return (util.capture(cmd))
end

local function parse(text)
  local t = {}
  for name, us in text:gmatch("([^\n=]+)=([%d.]+)") do t[name] = tonumber(us) end
  return t
end

local CONF = [[
{{PREAMBLE}}
worker_processes 1;
events { worker_connections 64; }
http {
    {{HTTP_BASICS}}
    server {
        listen 127.0.0.1:{{PORT}};
        location = /bench {
            content_by_lua_block {
                local store = require("avalara.store.redis").new { port = {{REDIS}}, password = "{{PASSWORD}}",
                    prefix = "bench:" }
                local measure = BENCH_MEASURE
                local function clock() ngx.update_time(); return ngx.now() end
                for _, r in ipairs(measure(store, tonumber(ngx.var.arg_n), clock)) do
                    ngx.say(("%s=%.1f"):format(r[1], r[2]))
                end
            }
        }
    }
}
]]

local r = redis.start { password = PASSWORD }
local ok, err = pcall(function()
  local figures = {}
  for _, lua in ipairs { "lua5.4", "luajit" } do
    figures[lua] = parse(lines_of(("LUA_CPATH='build/%s/?.so;;' %s bench/redis.lua plain %d %d"):format(lua, lua,
      r.port, N)))
  end
  assert(os.execute("mkdir -p build/bench && cc -O2 -Wall -Wextra -Werror bench/redis_hiredis.c -lhiredis "
    .. "-o build/bench/redis_hiredis"))
  local get, set = lines_of(("build/bench/redis_hiredis %d %d %s"):format(r.port, N, PASSWORD))
    :match("get ([%d.]+) set ([%d.]+)")
  figures.hiredis = { ["raw GET"] = tonumber(get), ["raw SET"] = tonumber(set) }
  -- the measuring function, as source, into nginx's Lua (init_by_lua would do; a global is simpler here)
  local src = io.open("bench/redis.lua"):read("*a")
  local fn = src:match("(local function measure%(store, n, clock%).-\nend)\n")
  local conf = CONF:gsub("local measure = BENCH_MEASURE", function() return fn end)
  local n = nginx.start(conf, { REDIS = r.port, PASSWORD = PASSWORD })
  local status, body = n:get("/bench?n=" .. N, 300)
  n:stop()
  assert(status == 200, tostring(body))
  figures.cosocket = parse(body)

  local rows = { "| operation | Lua 5.4, LuaSocket | LuaJIT, LuaSocket | nginx, cosockets | hiredis from C |",
    "|---|---:|---:|---:|---:|" }
  for _, op in ipairs { "raw GET", "raw SET", "store get", "store set", "store cas", "lock + unlock",
    "rate budget place" } do
    local function cell(t) return t[op] and ("%.1f"):format(t[op]) or "" end
    rows[#rows + 1] = ("| %s | %s | %s | %s | %s |"):format(op, cell(figures["lua5.4"]), cell(figures.luajit),
      cell(figures.cosocket), cell(figures.hiredis))
  end
  local text = table.concat({
    "## The Redis store (bench/redis.lua)",
    "",
    ("Microseconds per operation, %d of each, one connection, redis-server %s on loopback (with a password), "
      .. "client and server on the same %s-core machine (%s)."):format(N,
      lines_of("redis-server --version"):match("v=(%S+)") or "?", lines_of("nproc"):match("%d+") or "?",
      os.date("!%Y-%m-%d")),
    "`store get` decodes the JSON value; `store set`, `cas` and the unlock are Lua scripts (EVALSHA); "
      .. "`lock + unlock` is two round trips; `rate budget place` is one script.",
    "",
    table.concat(rows, "\n"),
  }, "\n")
  print(text)
  results.write("bench/RESULTS.md", "redis", text)
end)
r:stop()
assert(ok, err)
