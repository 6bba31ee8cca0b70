-- make bench-openresty: the library inside nginx against what an OpenResty
-- user would write by hand, on the hot path of a busy site (issue 17):
--
--   /static   `return 200` (the app server's floor)
--   /capture  ngx.location.capture -> proxy_pass to a keep-alive upstream with a
--             fixed Bearer header, then cjson.decode
--   /lib      client:classification(id), token in a lua_shared_dict (cosockets)
--   /lib-subrequest  the same through avalara.openresty.subrequest (an internal
--             proxy_pass location: nginx's own HTTP client)
--
-- One app worker pinned to BENCH_CPU; the fixed-body backend
-- (bench/fixed_server.lua) and wrk (-c16) on the other CPU. Each location
-- BENCH_ROUNDS (min 3) rounds of BENCH_SECONDS (5) s, alternating; medians of
-- req/s and p99 go to the "openresty" section of bench/RESULTS.md.
local emu = require "spec.support.emulator"
local fixed = require "bench.fixed_server"
local results = require "bench.results"
local socket = require "socket"

local ROUNDS = math.max(3, tonumber(os.getenv("BENCH_ROUNDS")) or 3)
local SECONDS = tonumber(os.getenv("BENCH_SECONDS")) or 5
local OUT = os.getenv("BENCH_OUT") or "bench/RESULTS.md"
local APP_CPU = os.getenv("BENCH_CPU") or "1"
local OTHER_CPU = APP_CPU == "0" and "1" or "0"
local LOCATIONS = { "static", "capture", "lib", "lib-subrequest" }

local util = require "bench.util"
local log, capture, median = util.log, util.capture, util.median

local CONF = [[
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
daemon off;
worker_processes 1;
worker_cpu_affinity %s;
error_log %s/error.log warn;
pid %s/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    lua_package_path "%s/lua/?.lua;%s/lua/?/init.lua;;";
    lua_package_cpath "%s/build/luajit/?.so;;";
    lua_shared_dict avalara_tokens 1m;
    upstream backend {
        server 127.0.0.1:%d;
        keepalive 64;
    }
    init_by_lua_block {
        local opts = { shared_dict = "avalara_tokens", environment = "local",
            emulator_url = "%s", account_id = "2000000001", license_key = "BENCH-KEY", company_id = 1001 }
        client = require("avalara").new(opts)
        opts.transport = require("avalara.openresty.subrequest").transport("/_avalara")
        sub_client = require("avalara").new(opts)
        cjson = require "cjson"
    }
    server {
        listen 127.0.0.1:%d;
        keepalive_requests 1000000;
        default_type application/json;
        location = /static { return 200 '{"ok":true}'; }
        location = /capture {
            content_by_lua_block {
                local res = ngx.location.capture("/_backend/api/v2/companies/1001/classifications/hs/1001-TS-1-US")
                local model = cjson.decode(res.body)
                ngx.say(model.hsCode)
            }
        }
        location /_backend/ {
            internal;
            proxy_pass http://backend/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer 0123456789abcdef0123456789abcdef";
        }
        location = /lib {
            content_by_lua_block {
                local model, err = client:classification("1001-TS-1-US")
                if not model then ngx.status = 502; ngx.say(tostring(err)); return end
                ngx.say(model.hsCode)
            }
        }
        location = /lib-subrequest {
            content_by_lua_block {
                local model, err = sub_client:classification("1001-TS-1-US")
                if not model then ngx.status = 502; ngx.say(tostring(err)); return end
                ngx.say(model.hsCode)
            }
        }
        location /_avalara/ {
            internal;
            proxy_pass_request_headers off;
            proxy_set_header Authorization $avalara_authorization;
            proxy_set_header Content-Type $avalara_content_type;
            proxy_set_header Accept application/json;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://backend/;
        }
        location = /_avalara_variables {
            internal;
            set $avalara_authorization "";
            set $avalara_content_type "";
            return 404;
        }
    }
}
]]

local function start_app(backend_port)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. emu.shell_quote(dir)))
  local port, root = emu.free_port(), emu.repo_root()
  local mask = APP_CPU == "0" and "01" or "10"
  local f = assert(io.open(dir .. "/nginx.conf", "w"))
  f:write(CONF:format(mask, dir, dir, root, root, root, backend_port, "http://127.0.0.1:" .. backend_port, port))
  f:close()
  local p = assert(io.popen("taskset -c " .. APP_CPU .. " nginx -p " .. emu.shell_quote(dir)
    .. " -c nginx.conf >" .. emu.shell_quote(dir) .. "/out.log 2>&1 & echo $!"))
  local pid = tonumber(p:read("*l"))
  p:close()
  local deadline = socket.gettime() + 10
  while socket.gettime() < deadline do
    local c = socket.connect("127.0.0.1", port)
    if c then
      c:close()
      return { pid = pid, dir = dir, url = "http://127.0.0.1:" .. port }
    end
    socket.sleep(0.05)
  end
  error("app nginx did not start: " .. emu.read_file(dir .. "/error.log"))
end

-- wrk's "Requests/sec" and the 99th percentile latency (ms).
local function wrk(url)
  local out = capture(("taskset -c %s wrk -t1 -c16 -d%ds --latency %s"):format(OTHER_CPU, SECONDS, url))
  local rps = tonumber(out:match("Requests/sec:%s*([%d.]+)"))
  local v, unit = out:match("\n%s*99%%%s+([%d.]+)(%a+)")
  assert(rps and v, "wrk failed: " .. out)
  local ms = tonumber(v) * ({ us = 0.001, ms = 1, s = 1000 })[unit]
  local errors = out:match("Non%-2xx or 3xx responses: (%d+)")
  if errors then error(url .. ": " .. errors .. " failed responses") end
  return rps, ms
end

local function report(m)
  local L = {}
  local function add(s) L[#L + 1] = s end
  add("## OpenResty hot path (bench/openresty_hot.lua)")
  add("")
  add(("- %s; %s; one app worker on CPU %s; the fixed-body backend and `wrk -t1 -c16 -d%ds` on CPU %s;"
    .. " medians of %d rounds."):format(os.date("!%Y-%m-%d %H:%M UTC"), capture("nginx -v"):gsub("%s+$", ""),
    APP_CPU, SECONDS, OTHER_CPU, ROUNDS))
  add("")
  add("| location | what it does | req/s | p99 | ÷ /capture |")
  add("|---|---|---:|---:|---:|")
  local what = {
    static = "`return 200` (the app server's floor)",
    capture = "`ngx.location.capture` → `proxy_pass` to a keep-alive upstream, fixed Bearer header, `cjson.decode`",
    lib = "`client:classification(id)`, token in a `lua_shared_dict` (cosockets)",
    ["lib-subrequest"] = "the same through `avalara.openresty.subrequest` (an internal `proxy_pass` location)",
  }
  for _, loc in ipairs(LOCATIONS) do
    add(("| `/%s` | %s | %.0f | %.2f ms | %.2f× |"):format(loc, what[loc], m[loc].rps, m[loc].p99,
      m[loc].rps / m.capture.rps))
  end
  add("")
  for _, loc in ipairs { "lib", "lib-subrequest" } do
    local met = m[loc].rps >= m.capture.rps and m[loc].p99 <= m.capture.p99 * 1.1
    add(("Goal, `/%s` ≥ 1.0× `/capture` in req/s and p99 ≤ `/capture`'s + 10 %%: %.2f×, p99 %.2f ms against"
      .. " %.2f ms (%s)."):format(loc, m[loc].rps / m.capture.rps, m[loc].p99, m.capture.p99 * 1.1,
      met and "met" or "**not met**"))
    add("")
  end
  return table.concat(L, "\n")
end

-- the backend on the other CPU: children inherit this process's affinity
local function pinned(cpu, f)
  local stat = assert(io.open("/proc/self/stat")):read("*n")
  os.execute(("taskset -p -c %s %d >/dev/null"):format(cpu, stat))
  local ok, v = pcall(f)
  os.execute(("taskset -p -c %s %d >/dev/null"):format(APP_CPU, stat))
  if not ok then error(v, 0) end
  return v
end

local e = emu.start { workers = 1 }
local cert_dir = e.ca_file:match("^(.*)/[^/]+$")
local backend = pinned(OTHER_CPU, function() return fixed.start(cert_dir) end)
local app
local ok, err = pcall(function()
  app = start_app(tonumber(backend.http_url:match(":(%d+)$")))
  local rps, p99 = {}, {}
  for _, loc in ipairs(LOCATIONS) do
    rps[loc], p99[loc] = {}, {}
    wrk(app.url .. "/" .. loc) -- warm: connections, the token, the JIT
  end
  for round = 1, ROUNDS do
    for i = 1, #LOCATIONS do
      local loc = LOCATIONS[round % 2 == 1 and i or #LOCATIONS + 1 - i]
      local r, p = wrk(app.url .. "/" .. loc)
      table.insert(rps[loc], r)
      table.insert(p99[loc], p)
      log("/%s round %d: %.0f req/s, p99 %.2f ms", loc, round, r, p)
    end
  end
  local m = {}
  for _, loc in ipairs(LOCATIONS) do m[loc] = { rps = median(rps[loc]), p99 = median(p99[loc]) } end
  local text = report(m)
  results.write(OUT, "openresty", text)
  io.stdout:write(text, "\n")
end)
if app then os.execute("kill -QUIT " .. app.pid .. " 2>/dev/null; sleep 0.3; rm -rf " .. app.dir) end
backend:stop()
e:stop()
if not ok then error(err, 0) end
