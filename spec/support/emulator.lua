-- Starts and drives the local Avalara emulator from busted specs.
--
--   local emu = require "spec.support.emulator"
--   local e                                   -- in a describe block
--   setup(function() e = emu.start() end)     -- {config = file | table, env = {}, workers = N}
--   teardown(function() e:stop() end)
--   before_each(function() e:reset() end)
--
-- e.http_url, e.https_url, e.ca_file, e.pid, e.port, e.tls_port;
-- e:reset(), e:configure(tbl), e:counters(), e:fault(route, kind, count, extra),
-- e:request(method, path, opts) -> res {status, headers, body, json} | nil, err,
-- e:raw(bytes, opts) -> everything the server sent before closing.
-- emu.classification(company, itemCode, description, extra) -> a create body
-- (HSClassificationModel with the 2019 ItemModel; extra keys go in the item,
-- `countryOfDestination` in extra sets the country, default US).
--
-- The emulator runs with --parent-pid set to this process, so it stops by
-- itself if the specs die without calling stop().
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson"

local M = {}

local Emulator = {}
Emulator.__index = Emulator

-- The repository root, from this file's own path.
local function repo_root()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local dir = src:match("^(.*)/spec/support/emulator%.lua$")
  if dir == nil or dir == "" then return "." end
  return dir
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function free_port()
  local s = assert(socket.tcp())
  assert(s:bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

-- This Lua process's pid (Linux /proc), or nil where unknown.
local function self_pid()
  local f = io.open("/proc/self/stat", "r")
  if not f then return nil end
  local pid = f:read("*n")
  f:close()
  return pid
end

-- Whether a process runs. A zombie counts as gone: the emulator is
-- reparented to init once started, and init may reap it late.
local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if f then
    local stat = f:read("*a") or ""
    f:close()
    return stat:match("^%d+ %b() (%a)") ~= "Z"
  end
  if io.open("/proc/self/stat", "r") then return false end
  local r = os.execute("kill -0 " .. pid .. " 2>/dev/null")
  return r == true or r == 0 -- Lua 5.2+ returns true, 5.1/LuaJIT the status
end
M.alive = alive

-- Sends `signal` (TERM) to pid, waits up to 10 s for it to end, then SIGKILL.
function M.terminate(pid, signal)
  os.execute("kill -" .. (signal or "TERM") .. " " .. pid .. " 2>/dev/null")
  local deadline = socket.gettime() + 10
  while alive(pid) and socket.gettime() < deadline do socket.sleep(0.02) end
  if alive(pid) then os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
end

local function read_file(path)
  local f = io.open(path, "r")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

-- RFC 3986: everything but the unreserved characters, %XX.
local function percent_encode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end
M.percent_encode = percent_encode

local function form_encode(tbl)
  local keys = {}
  for k in pairs(tbl) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    parts[#parts + 1] = percent_encode(k) .. "=" .. percent_encode(tbl[k])
  end
  return table.concat(parts, "&")
end
M.form_encode = form_encode

function M.classification(company, item_code, description, extra)
  local body = { countryOfDestination = "US", item = { companyId = company, itemCode = item_code,
    description = description, itemGroup = "General merchandise" } }
  for k, v in pairs(extra or {}) do
    if k == "countryOfDestination" then body.countryOfDestination = v else body.item[k] = v end
  end
  return body
end
M.free_port, M.shell_quote, M.read_file, M.repo_root = free_port, shell_quote, read_file, repo_root

-- One try of M.start: the emulator, or nil and its output.
local function start_once(opts)
  local root = repo_root()
  local port, tls_port = free_port(), free_port()
  while tls_port == port do tls_port = free_port() end
  local log = os.tmpname()
  local args = { "emulator/run", "--port", port, "--tls-port", tls_port }
  local parent = self_pid()
  if parent then args[#args + 1] = "--parent-pid"; args[#args + 1] = parent end
  if type(opts.config) == "string" then args[#args + 1] = "--config"; args[#args + 1] = opts.config end
  if opts.workers then args[#args + 1] = "--workers"; args[#args + 1] = opts.workers end
  local env = {}
  for k, v in pairs(opts.env or {}) do env[#env + 1] = k .. "=" .. shell_quote(v) end
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = shell_quote(a) end
  -- A sanitizer preload (make test-asan) is meant for the Lua process only.
  local cmd = "unset LD_PRELOAD; cd " .. shell_quote(root) .. " && " .. table.concat(env, " ") .. " "
    .. table.concat(quoted, " ") .. " >" .. shell_quote(log) .. " 2>&1 </dev/null & echo $!"
  local p = assert(io.popen(cmd, "r"))
  local pid = tonumber(p:read("*l"))
  p:close()
  assert(pid, "emulator: could not start " .. cmd)

  local self = setmetatable({
    pid = pid, port = port, tls_port = tls_port, log = log,
    http_url = "http://127.0.0.1:" .. port,
    https_url = "https://127.0.0.1:" .. tls_port,
  }, Emulator)

  local deadline = socket.gettime() + 60 -- generous: a loaded CI machine runs several files at once
  while true do
    local out = read_file(log)
    if out:find("emulator: ready", 1, true) then
      self.ca_file = out:match("emulator: ca=(%S+)")
      break
    end
    if not alive(pid) or socket.gettime() > deadline then
      self:stop()
      return nil, out
    end
    socket.sleep(0.05)
  end
  if type(opts.config) == "table" then self:configure(opts.config) end
  return self
end

-- opts: config (path of a config file, or a table of run-time overrides),
-- env (table of environment variables), workers (number).
-- A port found free can be taken by another process before nginx binds it
-- (spec files run side by side): then it tries again with other ports.
function M.start(opts)
  opts = opts or {}
  local out
  for _ = 1, 5 do
    local self
    self, out = start_once(opts)
    if self then return self end
    if not out:find("Address already in use", 1, true) then break end
  end
  error("emulator did not become ready; its output:\n" .. out, 2)
end

-- Stops the emulator (SIGTERM, then SIGKILL after 10 s) and waits for it.
function Emulator:stop()
  if not self.pid then return end
  M.terminate(self.pid)
  self.pid = nil
  os.remove(self.log)
end

-- opts: headers, body, form (table), json (table), https (bool), cafile,
-- verify ("peer" | "none"), timeout (seconds, plain HTTP only).
-- Returns nil, err on transport errors ("closed", "timeout", TLS errors).
function Emulator:request(method, path, opts)
  opts = opts or {}
  local headers = {}
  for k, v in pairs(opts.headers or {}) do headers[k:lower()] = v end
  local body = opts.body
  if opts.form then
    body = form_encode(opts.form)
    headers["content-type"] = headers["content-type"] or "application/x-www-form-urlencoded"
  elseif opts.json then
    body = cjson.encode(opts.json)
    headers["content-type"] = headers["content-type"] or "application/json"
  end
  if body then headers["content-length"] = tostring(#body) end
  local chunks = {}
  local req = {
    method = method, headers = headers,
    source = body and ltn12.source.string(body) or nil,
    sink = ltn12.sink.table(chunks),
  }
  local ok, status, rheaders
  if opts.https then
    local https = require "ssl.https"
    req.url = self.https_url .. path
    req.mode, req.protocol = "client", "any"
    req.verify = opts.verify or "peer"
    req.cafile = opts.cafile or self.ca_file
    req.options = { "all", "no_sslv2", "no_sslv3" }
    ok, status, rheaders = https.request(req)
  else
    req.url = self.http_url .. path
    req.redirect = false
    -- LuaSocket applies its module-wide TIMEOUT to every socket it makes.
    local saved = http.TIMEOUT
    http.TIMEOUT = opts.timeout or saved
    ok, status, rheaders = http.request(req)
    http.TIMEOUT = saved
  end
  if not ok then return nil, status end
  local res = { status = status, headers = rheaders or {}, body = table.concat(chunks) }
  local ct = res.headers["content-type"] or ""
  if ct:find("json", 1, true) then
    local decoded_ok, decoded = pcall(cjson.decode, res.body)
    if decoded_ok then res.json = decoded end
  end
  return res
end

-- Sends raw bytes over plain TCP and returns all the server sent until it
-- closed the connection (or the timeout, default 5 s), plus the error.
function Emulator:raw(bytes, opts)
  opts = opts or {}
  local s = assert(socket.tcp())
  s:settimeout(opts.timeout or 5)
  assert(s:connect("127.0.0.1", self.port))
  assert(s:send(bytes))
  local data, err, partial = s:receive("*a")
  s:close()
  return data or partial, err
end

local function control(self, method, path, value)
  local res, err = self:request(method, "/_emulator/" .. path, { json = value })
  assert(res, "emulator control " .. path .. ": " .. tostring(err))
  assert(res.status == 200, "emulator control " .. path .. ": " .. res.status .. " " .. res.body)
  return res.json
end

function Emulator:reset()
  return control(self, "POST", "reset")
end

function Emulator:configure(tbl)
  return control(self, "POST", "config", tbl)
end

function Emulator:counters()
  return control(self, "GET", "counters")
end

-- Arms `kind` for the next `count` (default 1) requests of `route`;
-- extra: retry_after, stall_seconds, close, size, status.
function Emulator:fault(route, kind, count, extra)
  local spec = { route = route, kind = kind, count = count or 1 }
  for k, v in pairs(extra or {}) do spec[k] = v end
  return control(self, "POST", "faults", spec)
end

function Emulator:clear_faults()
  return control(self, "DELETE", "faults")
end

-- A client_credentials access token for the demo account (or `account`).
function Emulator:token(scope, account, key)
  local res = assert(self:request("POST", "/connect/token", { form = {
    grant_type = "client_credentials", scope = scope or "hs-code-classification",
    client_id = account or "2000000001", client_secret = key or "DEMO-LICENSE-KEY-0001",
  } }))
  assert(res.status == 200, "token request failed: " .. res.status .. " " .. res.body)
  return res.json.access_token
end

return M
