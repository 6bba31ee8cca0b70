-- Starts a real six-node Redis Cluster for specs (three masters, three
-- replicas; Debian's redis-server and redis-cli) on free loopback ports, each
-- node a spec.support.redis server; stops them by pid.
--
--   local cluster = require "spec.support.redis_cluster"
--   local c = cluster.start{ node_timeout = 1000, args = {...} }   -- ms (cluster-node-timeout); args: every node's
--   c:seeds() -> {"127.0.0.1:P", ...}; c:nodes() -> {{id, port, master = bool, master_id, slots = {{a, b}}}}
--   c:node_of(slot) -> the master serving it; c:cli(port, ...) -> raw output; c:wait_ok(); c:stop()
local redis = require "spec.support.redis"
local emu = require "spec.support.emulator"
local socket = require "socket"

local M = {}
local Cluster = {}
Cluster.__index = Cluster

-- Whether nothing listens on the port now.
local function free(port)
  local s = socket.tcp()
  local ok = s:bind("127.0.0.1", port)
  s:close()
  return ok ~= nil
end

-- A port P with P and P + 10000 (its cluster bus) free, not in `taken`.
local function pick(taken)
  for _ = 1, 1000 do
    local p = math.random(20000, 29999)
    if not taken[p] and free(p) and free(p + 10000) then taken[p] = true; return p end
  end
  error("no free port pair for a cluster node")
end

-- redis-cli's raw output (no password: the specs' cluster has none).
function Cluster:cli(port, ...) -- luacheck: ignore 212
  local words = {}
  for i, a in ipairs { ... } do words[i] = emu.shell_quote(a) end
  local p = assert(io.popen("redis-cli --raw -p " .. port .. " " .. table.concat(words, " ") .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  return out
end

--- The nodes as one node sees them (CLUSTER NODES), live ones only unless `all`.
function Cluster:nodes(all, port)
  local list = {}
  for _, n in ipairs(self.servers) do
    if n.pid then port = port or n.port end
  end
  for line in self:cli(port, "CLUSTER", "NODES"):gmatch("[^\n]+") do
    local id, p, flags, master_id, rest = line:match("^(%x+) [%d%.]*:(%d+)@%d+ (%S+) (%S+) %S+ %S+ %S+ %S+ ?(.*)$")
    if id and (all or not flags:find("fail", 1, true)) then
      local node = { id = id, port = tonumber(p), master = flags:find("master", 1, true) ~= nil,
        master_id = master_id, slots = {} }
      for a, b in rest:gmatch("(%d+)%-?(%d*)") do node.slots[#node.slots + 1] = { tonumber(a), tonumber(b) or tonumber(a) } end
      list[#list + 1] = node
    end
  end
  return list
end

--- The master serving `slot` (a node of `nodes()`).
function Cluster:node_of(slot)
  for _, n in ipairs(self:nodes()) do
    if n.master then
      for _, r in ipairs(n.slots) do if slot >= r[1] and slot <= r[2] then return n end end
    end
  end
end

--- The server (spec.support.redis) on a port.
function Cluster:server(port)
  for _, s in ipairs(self.servers) do if s.port == port then return s end end
end

function Cluster:seeds()
  local list = {}
  for i, s in ipairs(self.servers) do list[i] = "127.0.0.1:" .. s.port end
  return list
end

--- Waits until every live node says cluster_state:ok with all slots served by live masters.
function Cluster:wait_ok(seconds)
  local deadline = socket.gettime() + (seconds or 30)
  while true do
    local ok = true
    for _, s in ipairs(self.servers) do
      if s.pid then
        local info = self:cli(s.port, "CLUSTER", "INFO")
        if not info:find("cluster_state:ok", 1, true) or not info:find("cluster_slots_ok:16384", 1, true) then
          ok = false
        end
      end
    end
    if ok then return true end
    if socket.gettime() > deadline then error("the cluster did not become ok: " .. self:cli(self.servers[1].port,
      "CLUSTER", "INFO")) end
    socket.sleep(0.05)
  end
end

function M.start(opts)
  opts = opts or {}
  local f = io.open("/dev/urandom", "rb")
  local b = f:read(4)
  f:close()
  math.randomseed(b:byte(1) * 16777216 + b:byte(2) * 65536 + b:byte(3) * 256 + b:byte(4))
  local self = setmetatable({ servers = {} }, Cluster)
  local taken = {}
  local ok, err = pcall(function()
    for i = 1, 6 do
      local args = { "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout",
        tostring(opts.node_timeout or 1000) }
      for _, a in ipairs(opts.args or {}) do args[#args + 1] = a end
      self.servers[i] = redis.start { port = pick(taken), args = args }
    end
    local addrs = {}
    for i, s in ipairs(self.servers) do addrs[i] = emu.shell_quote("127.0.0.1:" .. s.port) end
    local p = assert(io.popen("redis-cli --cluster create " .. table.concat(addrs, " ")
      .. " --cluster-replicas 1 --cluster-yes 2>&1"))
    local out = p:read("*a")
    p:close()
    if not out:find("All 16384 slots covered", 1, true) then error("redis-cli --cluster create: " .. out) end
    self:wait_ok()
  end)
  if not ok then self:stop(); error(err, 2) end
  return self
end

function Cluster:stop()
  for _, s in ipairs(self.servers) do s:stop() end
end

return M
