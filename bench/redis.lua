-- The Redis store's costs per operation (`make bench-redis`; not part of
-- `make bench`'s ratios), on a local redis-server with a password that
-- listens on a TCP port, a mutual-TLS port (client certificates required)
-- and a Unix socket:
--
-- - plain Lua (Lua 5.4 and LuaJIT, LuaSocket and our RESP client), over
--   each of the three: a raw GET, SET and EVALSHA of a 200-byte value, then
--   the store's get, set, cas, lock + unlock and a place in the fleet's rate
--   budget;
-- - inside nginx on cosockets (one worker, connections from nginx's pool):
--   the same operations over the same three;
-- - the library question (issue 26): Debian's lua-resty-redis 0.27
--   (`lua-nginx-redis`, fetched with `apt-get download` into build/bench and
--   loaded from there: its package depends on nginx-extras, which would
--   replace the project's nginx-light) in the same nginx, GET, SET and
--   EVALSHA each on a pooled connection as a request handler does;
-- - hiredis from C (bench/redis_hiredis.c): the floor of a hiredis binding.
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
    { "raw EVALSHA", function() assert(c:eval("return redis.call('GET', KEYS[1])", { "bench:raw" }, {})) end },
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
  local per = math.max(1, math.floor(n / 5))
  for i, op in ipairs(ops) do
    op[2]() -- warm: scripts loaded, connection open
    local rounds = {} -- the median of 5 rounds: a burst of the machine's other work falls in one
    for r = 1, 5 do
      local t0 = clock()
      for _ = 1, per do op[2]() end
      rounds[r] = (clock() - t0) / per * 1e6
    end
    table.sort(rounds)
    out[i] = { op[1], rounds[3] }
  end
  return out
end

-- The store's options over `via` ("tcp", "tls": mutual, "unix") to the server `t` {port, tls_port, sock, dir}.
local function store_opts(via, t)
  local o = { password = "bench-redis-password", prefix = "bench:" }
  if via == "unix" then o.socket = t.sock
  elseif via == "tls" then
    o.port = t.tls_port
    o.tls = { cafile = t.dir .. "/ca.pem", certificate = t.dir .. "/client.pem", key = t.dir .. "/client.key",
      server_name = "localhost" }
  else o.port = t.port end
  return o
end

-- In a child interpreter: `bench/redis.lua plain N VIA PORT TLS_PORT SOCK DIR` prints "name=us" lines.
if arg and arg[1] == "plain" then
  local store = require("avalara.store.redis").new(store_opts(arg[3], { port = tonumber(arg[4]),
    tls_port = tonumber(arg[5]), sock = arg[6], dir = arg[7] }))
  for _, r in ipairs(measure(store, tonumber(arg[2]), socket.gettime)) do print(("%s=%.1f"):format(r[1], r[2])) end
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
    lua_ssl_trusted_certificate {{DIR}}/ca.pem;
    server {
        listen 127.0.0.1:{{PORT}};
        location = /bench {
            content_by_lua_block {
                local store_opts = BENCH_STORE_OPTS
                local measure = BENCH_MEASURE
                local store = require("avalara.store.redis").new(store_opts(ngx.var.arg_via,
                    { port = {{REDIS}}, tls_port = {{TLS}}, sock = "{{SOCK}}", dir = "{{DIR}}" }))
                local function clock() ngx.update_time(); return ngx.now() end
                for _, r in ipairs(measure(store, tonumber(ngx.var.arg_n), clock)) do
                    ngx.say(("%s=%.1f"):format(r[1], r[2]))
                end
            }
        }
        location = /resty {
            content_by_lua_block {
                package.path = "{{RESTY}}/?.lua;" .. package.path
                local redis = require "nginx.redis"
                local n, raw = tonumber(ngx.var.arg_n), ("v"):rep(200)
                local sha
                -- one operation as a handler does it: a connection from the pool, AUTH when new, back after
                local function one(fn)
                    local red = redis:new()
                    red:set_timeout(1000)
                    assert(red:connect("127.0.0.1", {{REDIS}}))
                    if red:get_reused_times() == 0 then assert(red:auth("{{PASSWORD}}")) end
                    fn(red)
                    assert(red:set_keepalive(60000, 32))
                end
                one(function(red) sha = assert(red:script("load", "return redis.call('GET', KEYS[1])")) end)
                -- ours on the same operations, rounds interleaved with lua-resty-redis's (the machine's noise
                -- falls on both alike); the median of the rounds
                local c = require("avalara.resp.client").new { port = {{REDIS}}, password = "{{PASSWORD}}" }
                local ops = {
                    { "raw GET", function(red) assert(red:get("bench:raw")) end,
                      function() assert(c:command("GET", "bench:raw")) end },
                    { "raw SET", function(red) assert(red:set("bench:raw", raw)) end,
                      function() assert(c:command("SET", "bench:raw", raw)) end },
                    { "raw EVALSHA", function(red) assert(red:evalsha(sha, 1, "bench:raw")) end,
                      function() assert(c:eval("return redis.call('GET', KEYS[1])", { "bench:raw" }, {})) end },
                }
                local rounds = 7
                local per = math.max(1, math.floor(n / rounds))
                local function time(fn)
                    ngx.update_time()
                    local t0 = ngx.now()
                    for _ = 1, per do fn() end
                    ngx.update_time()
                    return (ngx.now() - t0) / per * 1e6
                end
                local function median(t) table.sort(t); return t[math.ceil(#t / 2)] end
                for _, op in ipairs(ops) do
                    one(op[2]); op[3]()
                    local theirs, ours = {}, {}
                    for _ = 1, rounds do
                        theirs[#theirs + 1] = time(function() one(op[2]) end)
                        ours[#ours + 1] = time(op[3])
                    end
                    ngx.say(("%s=%.1f"):format(op[1], median(theirs)))
                    ngx.say(("ours %s=%.1f"):format(op[1], median(ours)))
                end
            }
        }
    }
}
]]

local VIAS = { "tcp", "tls", "unix" }
local ROUNDS = tonumber(os.getenv("BENCH_REDIS_ROUNDS")) or 3
local OPS = { "raw GET", "raw SET", "raw EVALSHA", "store get", "store set", "store cas", "lock + unlock",
  "rate budget place" }

-- Debian's lua-resty-redis, unpacked into build/bench (not installed: see the top).
local function resty()
  local dir = "build/bench/lua-nginx-redis"
  if not io.open(dir .. "/usr/share/lua/5.1/nginx/redis.lua") then
    assert(os.execute("mkdir -p build/bench && cd build/bench && apt-get download lua-nginx-redis >/dev/null 2>&1 "
      .. "&& dpkg -x lua-nginx-redis_*.deb lua-nginx-redis"), "apt-get download lua-nginx-redis failed")
  end
  return util.capture("cd " .. dir .. "/usr/share/lua/5.1 && pwd"):match("[^\n]+"),
    util.capture("dpkg-deb -f build/bench/lua-nginx-redis_*.deb Version"):match("[^\n]+")
end

-- Certificates for the mutual-TLS port: a CA, the server's (127.0.0.1, localhost), a client's.
local function certificates(dir)
  local function sh(cmd) assert(os.execute("cd " .. dir .. " && " .. cmd .. " >/dev/null 2>&1"), cmd) end
  sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=bench-ca")
  sh("openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost")
  sh("printf 'subjectAltName=IP:127.0.0.1,DNS:localhost' > san.ext && openssl x509 -req -in server.csr -CA ca.pem "
    .. "-CAkey ca.key -CAcreateserial -out server.pem -days 1 -extfile san.ext")
  sh("openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=bench-client")
  sh("openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 1")
  sh("chmod 755 . && chmod 644 *.key")
end

local dir = util.capture("mktemp -d /tmp/avalara-bench-redis.XXXXXX"):match("[^\n]+")
certificates(dir)
local tls_port = require("spec.support.emulator").free_port()
local t = { tls_port = tls_port, sock = dir .. "/redis.sock", dir = dir }
local r = redis.start { password = PASSWORD, args = { "--tls-port", tostring(tls_port),
  "--tls-cert-file", dir .. "/server.pem", "--tls-key-file", dir .. "/server.key",
  "--tls-ca-cert-file", dir .. "/ca.pem", "--tls-auth-clients", "yes",
  "--unixsocket", t.sock, "--unixsocketperm", "777" } }
t.port = r.port
local ok, err = pcall(function()
  local figures, runs = {}, {}
  -- ROUNDS passes over every runtime and connection, N / ROUNDS operations each: a cell is the
  -- median of its passes (the machine's other work drifts over minutes)
  local per = math.floor(N / ROUNDS)
  local function add(key, got)
    runs[key] = runs[key] or {}
    for op, us in pairs(got) do
      runs[key][op] = runs[key][op] or {}
      table.insert(runs[key][op], us)
    end
  end
  local function plain_round()
    for _, lua in ipairs { "lua5.4", "luajit" } do
      for _, via in ipairs(VIAS) do
        add(lua .. " " .. via, parse(lines_of(("LUA_CPATH='build/%s/?.so;;' %s bench/redis.lua plain %d %s %d %d "
          .. "%s %s"):format(lua, lua, per, via, t.port, t.tls_port, t.sock, dir))))
      end
    end
  end
  -- hiredis: libhiredis-dev, which `make bench-redis` installs (without it: an empty column)
  if os.execute("mkdir -p build/bench && cc -O2 -Wall -Wextra -Werror bench/redis_hiredis.c -lhiredis "
    .. "-o build/bench/redis_hiredis 2>/dev/null") then
    local get, set = lines_of(("build/bench/redis_hiredis %d %d %s"):format(r.port, N, PASSWORD))
      :match("get ([%d.]+) set ([%d.]+)")
    figures.hiredis = { ["raw GET"] = tonumber(get), ["raw SET"] = tonumber(set) }
  end
  -- the measuring functions, as source, into nginx's Lua
  local src = io.open("bench/redis.lua"):read("*a")
  local fn = src:match("(local function measure%(store, n, clock%).-\nend)\n")
  local so = src:match("local function store_opts%(via, t%)(.-\nend)\n")
  local conf = CONF:gsub("local measure = BENCH_MEASURE", function() return fn end)
    :gsub("local store_opts = BENCH_STORE_OPTS", function() return "local function store_opts(via, t)" .. so end)
  local resty_dir, resty_version = resty()
  local n = nginx.start(conf, { REDIS = r.port, TLS = t.tls_port, SOCK = t.sock, DIR = dir, PASSWORD = PASSWORD,
    RESTY = resty_dir })
  local ok_n, err_n = pcall(function()
    for round = 1, ROUNDS do
      util.log("round %d of %d", round, ROUNDS)
      plain_round()
      for _, via in ipairs(VIAS) do
        local status, body = n:get("/bench?n=" .. per .. "&via=" .. via, 600)
        assert(status == 200, tostring(body) .. n:log())
        add("nginx " .. via, parse(body))
      end
    end
    for key, ops in pairs(runs) do
      figures[key] = {}
      for op, list in pairs(ops) do figures[key][op] = util.median(list) end
    end
    util.log("lua-resty-redis")
    local status, body = n:get("/resty?n=" .. N, 600)
    assert(status == 200, tostring(body) .. n:log())
    figures.resty = parse(body)
  end)
  n:stop()
  assert(ok_n, err_n)

  local function cell(f, op) return f and f[op] and ("%.1f"):format(f[op]) or "" end
  local rows = { "| operation | Lua 5.4 TCP | TLS | Unix | LuaJIT TCP | TLS | Unix | nginx TCP | TLS | Unix |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" }
  for _, op in ipairs(OPS) do
    local cells = {}
    for _, rt in ipairs { "lua5.4", "luajit", "nginx" } do
      for _, via in ipairs(VIAS) do cells[#cells + 1] = cell(figures[rt .. " " .. via], op) end
    end
    rows[#rows + 1] = ("| %s | %s |"):format(op, table.concat(cells, " | "))
  end
  local lib = { "| operation | ours, nginx cosockets | lua-resty-redis " .. resty_version .. ", nginx cosockets "
    .. "| ours, Lua 5.4 | ours, LuaJIT | hiredis from C |", "|---|---:|---:|---:|---:|---:|" }
  for _, op in ipairs { "raw GET", "raw SET", "raw EVALSHA" } do
    lib[#lib + 1] = ("| %s | %s | %s | %s | %s | %s |"):format(op, cell(figures.resty, "ours " .. op),
      cell(figures.resty, op), cell(figures["lua5.4 tcp"], op), cell(figures["luajit tcp"], op),
      cell(figures.hiredis, op))
  end
  local text = table.concat({
    "## The Redis store (bench/redis.lua)",
    "",
    ("Microseconds per operation, %d of each (the median of %d passes over all columns, each the median of 5 "
      .. "rounds), one connection, redis-server %s on loopback (with a password), "
      .. "client and server on the same %s-core machine, shared with other work (%s)."):format(N, ROUNDS,
      lines_of("redis-server --version"):match("v=(%S+)") or "?", lines_of("nproc"):match("%d+") or "?",
      os.date("!%Y-%m-%d")),
    "`store get` decodes the JSON value; `store set`, `cas` and the unlock are Lua scripts (EVALSHA); "
      .. "`lock + unlock` is two round trips; `rate budget place` is one script. TLS is mutual (a client "
      .. "certificate; TLS 1.3); Unix is the server's Unix socket. In nginx each operation takes a connection "
      .. "from the pool and puts it back.",
    "",
    table.concat(rows, "\n"),
    "",
    "The same raw operations through Debian's lua-resty-redis in the same nginx (over TCP, a pooled connection per "
      .. "operation, `AUTH` when new), interleaved with ours in 7 rounds (the medians), and through hiredis from C:",
    "",
    table.concat(lib, "\n"),
  }, "\n")
  print(text)
  results.write("bench/RESULTS.md", "redis", text)
end)
r:stop()
os.execute("rm -rf " .. dir)
assert(ok, err)
