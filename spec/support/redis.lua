-- Starts a real redis-server (Debian's redis-server) for specs, on a free
-- loopback port, without persistence; stops it by pid.
--
--   local redis = require "spec.support.redis"
--   local r = redis.start{ password = "pw", args = { "--user", "app", "on", ">pw2", "~*", "&*", "+@all" } }
--   (tls = {port, dir}: a TLS server on that port, its CA in dir/ca.pem; port = P: that port, chosen by the caller)
--   r.port, r.pid, r:cli("GET", "k") -> reply text, r:kill() (SIGKILL), r:restart() (same port), r:stop()
local emu = require "spec.support.emulator"
local socket = require "socket"

local M = {}
local Redis = {}
Redis.__index = Redis

local function launch(self)
  local args = { "redis-server", "--port", self.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
    "--dir", self.tmp, "--logfile", self.tmp .. "/redis.log", "--daemonize", "no" }
  if self.password then args[#args + 1] = "--requirepass"; args[#args + 1] = self.password end
  for _, a in ipairs(self.args) do args[#args + 1] = a end
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = emu.shell_quote(a) end
  local p = assert(io.popen("unset LD_PRELOAD; exec " .. table.concat(quoted, " ") .. " >/dev/null 2>&1 </dev/null & echo $!"))
  self.pid = tonumber(p:read("*l"))
  p:close()
  local deadline = socket.gettime() + 60 -- generous: a loaded CI machine runs several files at once
  while not self:cli("PING"):find("PONG", 1, true) do
    if not emu.alive(self.pid) or socket.gettime() > deadline then
      error("redis-server did not start: " .. emu.read_file(self.tmp .. "/redis.log"), 3)
    end
    socket.sleep(0.02)
  end
end

function M.start(opts)
  opts = opts or {}
  local p = assert(io.popen("mktemp -d /tmp/avalara-redis.XXXXXX"))
  -- tls = {port, dir}: the server listens there only (its args say how), redis-cli trusts dir/ca.pem
  local self = setmetatable({ tmp = p:read("*l"), port = opts.port or opts.tls and opts.tls.port or emu.free_port(),
    password = opts.password, args = opts.args or {}, tls = opts.tls }, Redis)
  p:close()
  -- a port found free can be taken by another process before the server binds it (spec files
  -- run side by side): then it tries again with another one, unless the caller chose it
  for _ = 1, 4 do
    local ok, err = pcall(launch, self)
    if ok then return self end
    if opts.tls or opts.port or not tostring(err):find("Address already in use", 1, true) then error(err, 2) end
    self.port = emu.free_port()
  end
  launch(self)
  return self
end

-- A redis-cli command's output (as the server's admin: the password given at start).
function Redis:cli(...)
  local words = {}
  for i, a in ipairs { ... } do words[i] = emu.shell_quote(a) end
  local auth = self.password and ("REDISCLI_AUTH=" .. emu.shell_quote(self.password) .. " ") or ""
  local tls = self.tls and ("--tls --cacert " .. emu.shell_quote(self.tls.dir .. "/ca.pem") .. " ") or ""
  local p = assert(io.popen(auth .. "redis-cli --no-raw " .. tls .. "-p " .. self.port .. " " .. table.concat(words, " ")
    .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  return out
end

-- Whether the port still takes connections.
local function listening(port)
  local s = socket.tcp()
  s:settimeout(0.5)
  local ok = s:connect("127.0.0.1", port)
  s:close()
  return ok ~= nil
end

-- SIGKILL, then waits until the port is closed (the main thread of a
-- killed redis-server turns zombie before its other threads let go of the
-- listening socket).
function Redis:kill()
  if not self.pid then return end
  os.execute("kill -KILL " .. self.pid .. " 2>/dev/null")
  local deadline = socket.gettime() + 10
  while (emu.alive(self.pid) or listening(self.port)) and socket.gettime() < deadline do socket.sleep(0.02) end
  self.pid = nil
end

-- Starts it again on the same port (empty: nothing was persisted).
function Redis:restart()
  launch(self)
end

function Redis:stop()
  if self.pid then
    emu.terminate(self.pid)
    self.pid = nil
  end
  if self.tmp then os.execute("rm -rf " .. emu.shell_quote(self.tmp)); self.tmp = nil end
end

return M
