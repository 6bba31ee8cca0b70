-- The app nginx of the OpenResty benchmarks (bench/openresty_hot.lua) and
-- profiles (bench/profile.lua): one worker with the locations compared,
-- against a fixed-body backend on `backend_port`.
--
--   /static          `return 200` (the app server's floor)
--   /capture         ngx.location.capture -> proxy_pass to a keep-alive upstream with
--                    a fixed Bearer header, then cjson.decode (what one writes by hand)
--   /transport       the library's cosocket transport alone, then cjson.decode
--   /lib             client:classification(id), token in a lua_shared_dict (cosockets)
--   /lib-subrequest  the same through avalara.openresty.subrequest
--   /lib-classic, /lib-subrequest-classic   the same two on the classic binding (`binding =
--                    "classic"`; the two above take the default: the FFI binding under LuaJIT)
--
--   local app = require("bench.openresty_app").start(port, { cpu = "1" })  -- or { wrap = "valgrind ..." }
--   app.url; app:stop()
local emu = require "spec.support.emulator"
local socket = require "socket"

local M = {}
local App = {}
App.__index = App

local CONF = [[
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
daemon off;
worker_processes 1;
%s
error_log %s/error.log warn;
pid %s/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    lua_package_path "%s/lua/?.lua;%s/lua/?/init.lua;;";
    lua_package_cpath "%s/build/luajit/?.so;;";
    lua_shared_dict avalara_tokens 1m;
    %s
    upstream backend {
        server 127.0.0.1:%d;
        keepalive 64;
    }
    init_by_lua_block {
        local opts = { shared_dict = "avalara_tokens", environment = "local",
            emulator_url = "%s", account_id = "2000000001", license_key = "BENCH-KEY", company_id = 1001 }
        client = require("avalara").new(opts)
        opts.binding = "classic"
        classic_client = require("avalara").new(opts)
        opts.transport = require("avalara.openresty.subrequest").transport("/_avalara")
        sub_classic_client = require("avalara").new(opts)
        opts.binding = nil
        sub_client = require("avalara").new(opts)
        cjson = require "cjson"
        -- the cosocket transport alone, as /capture's counterpart (profiles)
        transport = require("avalara.openresty").transport()
        transport_request = { method = "GET", url = "%s/api/v2/companies/1001/classifications/hs/1001-TS-1-US",
            headers = { Authorization = "Bearer 0123456789abcdef0123456789abcdef", Accept = "application/json" } }
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
        location = /transport {
            content_by_lua_block {
                local res = transport(transport_request)
                local model = cjson.decode(res.body)
                ngx.say(model.hsCode)
            }
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
        location = /lib-classic {
            content_by_lua_block {
                local model, err = classic_client:classification("1001-TS-1-US")
                if not model then ngx.status = 502; ngx.say(tostring(err)); return end
                ngx.say(model.hsCode)
            }
        }
        location = /lib-subrequest-classic {
            content_by_lua_block {
                local model, err = sub_classic_client:classification("1001-TS-1-US")
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

--- Starts the app nginx: pinned to `opts.cpu` (one worker), or in the
-- foreground process itself under `opts.wrap` (a command prefix such as
-- valgrind; `master_process off`); `opts.jit_v` a file for LuaJIT's trace log (jit.v).
function M.start(backend_port, opts)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. emu.shell_quote(dir)))
  local port, root = emu.free_port(), emu.repo_root()
  local backend = "http://127.0.0.1:" .. backend_port
  local placement = opts.wrap and "master_process off;"
    or ("worker_cpu_affinity %s;"):format(opts.cpu == "0" and "01" or "10")
  local f = assert(io.open(dir .. "/nginx.conf", "w"))
  local jit_v = opts.jit_v and ("init_worker_by_lua_block { require('jit.v').on(%q) }"):format(opts.jit_v) or ""
  f:write(CONF:format(placement, dir, dir, root, root, root, jit_v, backend_port, backend, backend, port))
  f:close()
  local prefix = opts.wrap or ("taskset -c " .. opts.cpu)
  local p = assert(io.popen(prefix .. " nginx -p " .. emu.shell_quote(dir)
    .. " -c nginx.conf >" .. emu.shell_quote(dir) .. "/out.log 2>&1 & echo $!"))
  local pid = tonumber(p:read("*l"))
  p:close()
  local deadline = socket.gettime() + 60
  while socket.gettime() < deadline do
    local c = socket.connect("127.0.0.1", port)
    if c then
      c:close()
      return setmetatable({ pid = pid, dir = dir, url = "http://127.0.0.1:" .. port }, App)
    end
    socket.sleep(0.05)
  end
  error("app nginx did not start: " .. emu.read_file(dir .. "/error.log"))
end

--- Stops it gracefully (a profiler writes its output at exit) and removes its folder.
function App:stop()
  os.execute("kill -QUIT $(cat " .. self.dir .. "/nginx.pid 2>/dev/null || echo " .. self.pid .. ") 2>/dev/null")
  for _ = 1, 200 do
    if not os.execute("kill -0 " .. self.pid .. " 2>/dev/null") then break end
    socket.sleep(0.05)
  end
  os.execute("rm -rf " .. emu.shell_quote(self.dir))
end

return M
