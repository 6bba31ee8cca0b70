-- A Redis Sentinel topology for specs, on free loopback ports: a master, a replica
-- (`--replicaof`) and three sentinels (`redis-server CONF --sentinel`, quorum 2, down after
-- 500 ms, failover timeout 5 s), each with its own password; stopped by pid.
--
--   local sentinel = require "spec.support.sentinel"
--   local t = sentinel.start{ password = "pw", sentinel_password = "spw" }   -- name "fleet"
--   (sentinel_user = {name, password}: an ACL user on the sentinels too)
--   t.name, t.master, t.replica (spec.support.redis servers), t.sentinels = { {port, pid}, ... }
--   t:addresses() -> { "127.0.0.1:p1", ... }; t:ask(i, ...) -> a sentinel's reply (RESP client)
--   t:master_port() -> the port the sentinels name; t:failover() (SENTINEL FAILOVER, waits until
--   every sentinel names the new master and it answers as master) -> seconds it took; t:settle()
--   (until the old master is a replica again); t:stop()
local emu = require "spec.support.emulator"
local redis = require "spec.support.redis"
local resp = require "avalara.resp.client"
local socket = require "socket"

local M = {}
local Topology = {}
Topology.__index = Topology

local function launch_sentinel(self, i)
  local s = self.sentinels[i]
  local f = assert(io.open(s.dir .. "/sentinel.conf", "w"))
  f:write(table.concat({
    "port " .. s.port, "bind 127.0.0.1", "daemonize no", "dir " .. s.dir, "logfile " .. s.dir .. "/sentinel.log",
    "requirepass " .. self.sentinel_password, "sentinel sentinel-pass " .. self.sentinel_password,
    -- an ACL user for clients: its name and password are the `sentinel_user` option's
    self.sentinel_user and ("user %s on >%s +@all"):format(self.sentinel_user[1], self.sentinel_user[2]) or "",
    ("sentinel monitor %s 127.0.0.1 %d 2"):format(self.name, self.master.port),
    ("sentinel auth-pass %s %s"):format(self.name, self.password),
    ("sentinel down-after-milliseconds %s 500"):format(self.name),
    ("sentinel failover-timeout %s 5000"):format(self.name),
    ("sentinel parallel-syncs %s 1"):format(self.name), "" }, "\n"))
  f:close()
  local p = assert(io.popen("unset LD_PRELOAD; exec redis-server " .. emu.shell_quote(s.dir .. "/sentinel.conf")
    .. " --sentinel >/dev/null 2>&1 </dev/null & echo $!"))
  s.pid = tonumber(p:read("*l"))
  p:close()
  s.client = resp.new { port = s.port, password = self.sentinel_password, timeout = 2 }
end

-- A sentinel's view of the master as a table (SENTINEL MASTER's field list), or nil.
local function view(self, i)
  local r = self.sentinels[i].client:command("SENTINEL", "MASTER", self.name)
  if type(r) ~= "table" then return nil end
  local t = {}
  for j = 1, #r, 2 do t[r[j]] = r[j + 1] end
  return t
end

local function wait_for(what, cond, timeout, state)
  local deadline = socket.gettime() + (timeout or 30)
  while not cond() do
    if socket.gettime() > deadline then
      error("sentinel topology: timed out waiting for " .. what .. (state and (": " .. state()) or ""), 3)
    end
    socket.sleep(0.05)
  end
end

function M.start(opts)
  opts = opts or {}
  local self = setmetatable({ name = opts.name or "fleet", password = opts.password or "master-pw-1",
    sentinel_password = opts.sentinel_password or "sentinel-pw-1", sentinel_user = opts.sentinel_user,
    sentinels = {} }, Topology)
  -- (a full sync at once, not after the default 5 s wait for more replicas)
  local args = { "--masterauth", self.password, "--repl-diskless-sync-delay", "0" }
  self.master = redis.start { password = self.password, args = args }
  self.replica = redis.start { password = self.password, args = { "--masterauth", self.password,
    "--repl-diskless-sync-delay", "0", "--replicaof", "127.0.0.1", tostring(self.master.port) } }
  wait_for("the replica's sync", function()
    return self.replica:cli("INFO", "replication"):find("master_link_status:up", 1, true) ~= nil
  end)
  for i = 1, 3 do
    local p = assert(io.popen("mktemp -d /tmp/avalara-sentinel.XXXXXX"))
    self.sentinels[i] = { dir = p:read("*l"), port = emu.free_port() }
    p:close()
    launch_sentinel(self, i)
  end
  -- ready: every sentinel knows the replica and the two other sentinels (failover needs both)
  wait_for("the sentinels to know the replica and each other", function()
    for i = 1, 3 do
      local v = view(self, i)
      if not v or tonumber(v["num-slaves"]) < 1 or tonumber(v["num-other-sentinels"]) < 2 then return false end
    end
    return true
  end, 40)
  return self
end

function Topology:addresses()
  local list = {}
  for i, s in ipairs(self.sentinels) do list[i] = "127.0.0.1:" .. s.port end
  return list
end

function Topology:ask(i, ...)
  return self.sentinels[i].client:command(...)
end

function Topology:master_port()
  local a = self:ask(1, "SENTINEL", "get-master-addr-by-name", self.name)
  return tonumber(a[2])
end

-- The spec.support.redis server on `port` (master or replica).
function Topology:server(port)
  return tonumber(self.master.port) == port and self.master or self.replica
end

-- Forces a failover and waits until every sentinel names the other server and it says it is
-- master; returns the seconds that took. (The old master is demoted about 10 s later.)
function Topology:failover()
  local old = self:master_port()
  local t0 = socket.gettime()
  assert(self:ask(1, "SENTINEL", "FAILOVER", self.name))
  wait_for("the failover", function()
    for i = 1, 3 do
      local a = self:ask(i, "SENTINEL", "get-master-addr-by-name", self.name)
      if type(a) ~= "table" or tonumber(a[2]) == old then return false end
    end
    return self:server(self:master_port()):cli("ROLE"):find("master", 1, true)
  end, 30)
  return socket.gettime() - t0
end

-- Waits until the server the sentinels do not name is a replica in sync again (a demoted master
-- turns one about 10 s after a forced failover) and every sentinel knows it: ready for another.
function Topology:settle()
  wait_for("the old master to turn replica", function()
    local other = self:server(self:master_port()) == self.master and self.replica or self.master
    if not other:cli("INFO", "replication"):find("master_link_status:up", 1, true) then return false end
    for i = 1, 3 do
      local v = view(self, i)
      if not v or tonumber(v["num-slaves"]) < 1 or v.flags ~= "master" then return false end
    end
    return true
  end, 30, function()
    local v = {}
    for i = 1, 3 do
      local m = view(self, i) or {}
      v[i] = ("sentinel %d: %s %s, %s replicas"):format(i, tostring(m.port), tostring(m.flags), tostring(m["num-slaves"]))
    end
    return table.concat(v, "; ") .. "; first server: " .. self.master:cli("ROLE"):gsub("%s+", " ")
      .. "; second: " .. self.replica:cli("ROLE"):gsub("%s+", " ")
  end)
end

function Topology:stop()
  for _, s in ipairs(self.sentinels) do
    if s.client then s.client:close() end
    if s.pid then emu.terminate(s.pid); s.pid = nil end
    if s.dir then os.execute("rm -rf " .. emu.shell_quote(s.dir)); s.dir = nil end
  end
  if self.replica then self.replica:stop() end
  if self.master then self.master:stop() end
end

return M
