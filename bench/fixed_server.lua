-- A server that answers every request with the same bytes (nginx `return`),
-- for the per-call figures that isolate the client's own cost: a token
-- response at /connect/token, a classified model anywhere else (361 bytes,
-- the model the API returns for a classified item). HTTP/1.1 on one port,
-- HTTPS (HTTP/2 offered by ALPN) on another, HTTPS with HTTP/1.1 only on a
-- third, with the emulator's test certificate.
--
--   local fixed = require "bench.fixed_server"
--   local s = fixed.start(emulator_tmp_dir)   -- s.http_url, s.https_url, s.https11_url
--   s:stop()
--
-- `fixed.start(dir, { latency_ms = 20, cpus = "0" })`: every answer but the
-- token's comes after exactly that latency (nginx's Lua module: `ngx.sleep`
-- on the worker's event loop, no CPU meanwhile), a create (POST) with 201 and
-- the PENDING model of the published shape; nginx runs on those CPUs
-- (`taskset`), so the figures are the client's (bench/batch_fixed.lua).
local emu = require "spec.support.emulator"
local socket = require "socket"

local M = {}
local Server = {}
Server.__index = Server

M.MODEL = '{"id":"1001-TS-1-US","hsCode":"610910","status":"CLASSIFIED","countryOfDestination":"US",'
  .. '"item":{"companyId":1001,"itemCode":"TS-1","description":"men\'s cotton t-shirt",'
  .. '"itemGroup":"Clothing > Men > Tops","summary":"Short-sleeved crew-neck t-shirt, 100% cotton jersey",'
  .. '"classificationParameters":[{"name":"price","value":"12.50","unit":"USD"}],"parameters":[]}}'
M.TOKEN = '{"access_token":"0123456789abcdef0123456789abcdef","token_type":"Bearer","expires_in":3600,'
  .. '"scope":"hs-code-classification"}'

local function nginx_string(s) return "'" .. s:gsub("\\", "\\\\"):gsub("'", "\\'") .. "'" end

M.PENDING = '{"id":"1001-TS-1-US","status":"PENDING","countryOfDestination":"US",'
  .. '"item":{"companyId":1001,"itemCode":"TS-1","description":"men\'s cotton t-shirt",'
  .. '"itemGroup":"Clothing > Men > Tops","summary":"Short-sleeved crew-neck t-shirt, 100% cotton jersey",'
  .. '"classificationParameters":[{"name":"price","value":"12.50","unit":"USD"}],"parameters":[]}}'

-- The answer of `location /`: at once, or after the latency.
local function answer(opts)
  if not opts.latency_ms then return "return 200 " .. nginx_string(M.MODEL) .. ";" end
  return ([[content_by_lua_block {
            ngx.sleep(%g)
            if ngx.req.get_method() == "POST" then
                ngx.status = 201
                ngx.print(%q)
            else
                ngx.print(%q)
            end
        }]]):format(opts.latency_ms / 1000, M.PENDING, M.MODEL)
end

function M.start(cert_dir, opts)
  opts = opts or {}
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. emu.shell_quote(dir)))
  local port, tls_port, h1_port = emu.free_port(), emu.free_port(), emu.free_port()
  while tls_port == port do tls_port = emu.free_port() end
  while h1_port == port or h1_port == tls_port do h1_port = emu.free_port() end
  local dir_m = os.getenv("NGINX_MODULES") or "/usr/lib/nginx/modules"
  local modules = opts.latency_ms
    and ("load_module %s/ndk_http_module.so;\nload_module %s/ngx_http_lua_module.so;\n"):format(dir_m, dir_m) or ""
  local conf = modules .. ([[
daemon off;
worker_processes 1;
error_log %s/error.log;
pid %s/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:%d;
        listen 127.0.0.1:%d ssl http2;
        listen 127.0.0.1:%d ssl;
        ssl_certificate %s/server.pem;
        ssl_certificate_key %s/server.key;
        ssl_session_cache shared:fixed_ssl:1m;
        default_type application/json;
        location = /connect/token { return 200 %s; }
        location / { %s }
    }
}
]]):format(dir, dir, port, tls_port, h1_port, cert_dir, cert_dir, nginx_string(M.TOKEN), answer(opts))
  local f = assert(io.open(dir .. "/nginx.conf", "w"))
  f:write(conf)
  f:close()
  local pin = opts.cpus and "taskset -c " .. opts.cpus .. " " or ""
  local p = assert(io.popen(pin .. "nginx -p " .. emu.shell_quote(dir) .. " -c nginx.conf >" .. emu.shell_quote(dir)
    .. "/out.log 2>&1 & echo $!"))
  local pid = tonumber(p:read("*l"))
  p:close()
  local self = setmetatable({ pid = pid, dir = dir, http_url = "http://127.0.0.1:" .. port,
    https_url = "https://127.0.0.1:" .. tls_port, https11_url = "https://127.0.0.1:" .. h1_port }, Server)
  local deadline = socket.gettime() + 10
  while socket.gettime() < deadline do
    local c = socket.connect("127.0.0.1", port)
    if c then
      c:close()
      return self
    end
    socket.sleep(0.05)
  end
  self:stop()
  error("fixed server did not start: " .. emu.read_file(dir .. "/error.log"))
end

function Server:stop()
  if self.pid then
    os.execute("kill -QUIT " .. self.pid .. " 2>/dev/null; sleep 0.2; kill -KILL " .. self.pid .. " 2>/dev/null")
    self.pid = nil
  end
  os.execute("rm -rf " .. emu.shell_quote(self.dir))
end

return M
