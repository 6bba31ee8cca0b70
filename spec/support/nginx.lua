-- Starts a test nginx (Debian nginx-light + libnginx-mod-http-lua) that
-- runs the library, from a configuration text, on a free loopback port;
-- stops it by pid.
--
--   local n = nginx.start(conf_text, { vars })   -- {{NAME}} placeholders filled from vars
--   n.url                                         -- http://127.0.0.1:<port>
--   n:get(path), n:parallel(path, count)          -- one GET; count GETs at once (curl)
--   n:stop()
--
-- Placeholders always available: {{PORT}}, {{TMP}} (its own temporary
-- folder: pid, logs, nginx temp paths), {{ROOT}} (the repository),
-- {{MODULES}} (Debian's nginx modules folder), {{TEMP_PATHS}} (the http
-- block's temporary paths, all in {{TMP}}), {{LOAD_LUA}} (the load_module
-- lines of the Lua module), {{LUA_PATHS}} (the http block's package paths:
-- the repository's lua/ and its LuaJIT build of the core), {{PREAMBLE}}
-- (LOAD_LUA, `daemon off`, the error log at notice and `env AVALARA_BINDING`) and {{HTTP_BASICS}}
-- (no access log, TEMP_PATHS and LUA_PATHS), {{SUBREQUEST_LOCATIONS}} (the internal locations
-- of `avalara.transport.subrequest`, docs/openresty.md, proxying to an upstream named avalara_api).
local emu = require "spec.support.emulator"
local socket = require "socket"

local M = {}
local Nginx = {}
Nginx.__index = Nginx

local function render(text, vars)
  return (text:gsub("{{([%w_]+)}}", function(name)
    local v = vars[name]
    assert(v ~= nil, "nginx template: no value for {{" .. name .. "}}")
    return tostring(v)
  end))
end

local function start_once(conf, vars, opts)
  local p = assert(io.popen("mktemp -d /tmp/avalara-nginx.XXXXXX"))
  local tmp = p:read("*l")
  p:close()
  os.execute("chmod 755 " .. tmp)
  local all = { PORT = emu.free_port(), TMP = tmp, ROOT = emu.repo_root(), MODULES = "/usr/lib/nginx/modules" }
  local temps = {}
  for _, k in ipairs { "client_body", "proxy", "fastcgi", "uwsgi", "scgi" } do
    temps[#temps + 1] = ("%s_temp_path %s/%s;"):format(k, tmp, k == "client_body" and "body" or k)
  end
  all.TEMP_PATHS = table.concat(temps, " ")
  all.LOAD_LUA = ("load_module %s/ndk_http_module.so; load_module %s/ngx_http_lua_module.so;")
    :format(all.MODULES, all.MODULES)
  all.LUA_PATHS = ('lua_package_path "%s/lua/?.lua;%s/lua/?/init.lua;;"; lua_package_cpath "%s/build/luajit/?.so;;";')
    :format(all.ROOT, all.ROOT, all.ROOT)
  -- env: the binding a spec run chose (AVALARA_BINDING=classic|ffi) reaches the workers
  all.PREAMBLE = ("%s daemon off; error_log %s/error.log notice; env AVALARA_BINDING;"):format(all.LOAD_LUA, tmp)
  all.HTTP_BASICS = ("access_log off; %s %s"):format(all.TEMP_PATHS, all.LUA_PATHS)
  all.SUBREQUEST_LOCATIONS = table.concat({
    "location /_avalara/ { internal; proxy_pass_request_headers off;",
    "proxy_set_header Authorization $avalara_authorization; proxy_set_header Content-Type $avalara_content_type;",
    "proxy_set_header Accept application/json; proxy_http_version 1.1; proxy_set_header Connection \"\";",
    "proxy_pass http://avalara_api/; }",
    "location = /_avalara_variables { internal; set $avalara_authorization \"\"; set $avalara_content_type \"\";",
    "return 404; }" }, "\n        ")
  for k, v in pairs(vars or {}) do all[k] = v end
  local f = assert(io.open(tmp .. "/nginx.conf", "w"))
  f:write(render(conf, all))
  f:close()
  local prefix = opts.prefix or tmp
  -- exec: the pid printed is nginx's master (the configuration says `daemon off`)
  local cmd = ("unset LD_PRELOAD; (cd %s && exec env %s nginx -p %s/ -c %s/nginx.conf -e %s/error.log -g %s >%s/stdout.log 2>&1) & echo $!")
    :format(emu.shell_quote(all.ROOT), opts.env or "", emu.shell_quote(prefix), tmp, tmp,
      emu.shell_quote(opts.global or ("pid " .. tmp .. "/nginx.pid;")), tmp)
  p = assert(io.popen(cmd))
  local pid = tonumber(p:read("*l"))
  p:close()
  local self = setmetatable({ pid = pid, tmp = tmp, port = all.PORT, url = "http://127.0.0.1:" .. all.PORT }, Nginx)
  local deadline = socket.gettime() + 60 -- generous: a loaded CI machine runs several files at once
  while true do
    local s = socket.tcp()
    s:settimeout(0.2)
    local ok = s:connect("127.0.0.1", all.PORT)
    s:close()
    if ok then break end
    if not emu.alive(pid) or socket.gettime() > deadline then
      local log = emu.read_file(tmp .. "/error.log") .. emu.read_file(tmp .. "/stdout.log")
      self:stop()
      return nil, log
    end
    socket.sleep(0.05)
  end
  return self
end

-- A port found free can be taken by another process before nginx binds it
-- (spec files run side by side): then it tries again with another port,
-- unless the caller chose the ports.
function M.start(conf, vars, opts)
  opts = opts or {}
  local log
  for _ = 1, 5 do
    local self
    self, log = start_once(conf, vars, opts)
    if self then return self end
    if (vars and vars.PORT) or not log:find("Address already in use", 1, true) then break end
  end
  error("nginx did not start:\n" .. log, 2)
end

-- The error log so far (for failure messages).
function Nginx:log()
  return emu.read_file(self.tmp .. "/error.log") .. emu.read_file(self.tmp .. "/stdout.log")
end

function Nginx:stop()
  if self.pid then
    emu.terminate(self.pid, "QUIT")
    self.pid = nil
  end
  if self.tmp then os.execute("rm -rf " .. emu.shell_quote(self.tmp)); self.tmp = nil end
end

-- GET path; returns status, body (nil, err on a transport error).
function Nginx:get(path, timeout)
  local http = require "socket.http"
  local ltn12 = require "ltn12"
  local chunks = {}
  http.TIMEOUT = timeout or 30
  local ok, status = http.request { url = self.url .. path, sink = ltn12.sink.table(chunks) }
  http.TIMEOUT = 60
  if not ok then return nil, status end
  return status, table.concat(chunks)
end

-- `count` GETs of `path` at once (curl --parallel); returns the statuses seen
-- ({["200"] = n, ...}).
function Nginx:parallel(path, count)
  local cfg = os.tmpname()
  local f = assert(io.open(cfg, "w"))
  for _ = 1, count do f:write(('url = "%s%s"\noutput = "/dev/null"\n'):format(self.url, path)) end
  f:close()
  local p = assert(io.popen(("curl -s --no-progress-meter --parallel --parallel-immediate --parallel-max %d "
    .. "-w '%%{http_code}\\n' --config %s 2>/dev/null")
    :format(count, cfg)))
  local statuses = {}
  for line in p:lines() do statuses[line] = (statuses[line] or 0) + 1 end
  p:close()
  os.remove(cfg)
  return statuses
end

return M
