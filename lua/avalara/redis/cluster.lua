--- A Redis Cluster client for the fleet features: what `avalara.store.redis{ cluster = {...} }`
-- talks through, with the `command`, `eval` and `close` of `avalara.resp.client`.
--
--    local store = avalara.store.redis{ cluster = { "10.0.0.5:7000", { host = "10.0.0.6", port = 7000 } },
--                                       password = os.getenv("REDIS_PASSWORD"), prefix = "shop:avalara:" }
--
-- - The seed nodes give the slot map (`CLUSTER SLOTS`, asked of the seeds
--   and the masters known, in turn); a key's slot is CRC16 of the key, or of
--   its hash tag (the text between the first `{` and the next `}`, when not
--   empty), modulo 16384. Each command goes to its slot's master over one
--   `avalara.resp.client` per node (its pool in nginx, its connection in
--   plain Lua; `AUTH`, TLS and the timeout are every node's).
-- - `MOVED slot host:port`: the slot is that node's from now on, and the map
--   is read again (at most once a second); the command goes there.
--   `ASK slot host:port` (a slot being migrated): `ASKING`, then the command
--   on that node, that once (the map stays).
-- - `CLUSTERDOWN`, `TRYAGAIN` and a node that cannot be reached (a master
--   killed, until its replica takes over): the map is read again and the
--   command tried again, `retries` times (5) after a backoff from 0.05 s
--   doubling up to 0.5 s (about 1.3 s in all); then it fails as an outage
--   (`code` "unreachable", what `avalara.store.failover` waits out).
-- - Every command of the fleet touches one key, and each script of the store
--   touches keys of one slot (`M.tag`): no command ever spans nodes.
-- @module avalara.redis.cluster
local client = require "avalara.resp.client"
local clock = require "avalara.clock"

local unpack = table.unpack or unpack -- luacheck: ignore 143

local M = {}

M.SLOTS = 16384

-- XOR of two integers below 2^16 (LuaJIT's bit, bit32, Lua 5.3's operator, else arithmetic).
local bxor
do
  local ok, bit = pcall(require, "bit")
  if ok and type(bit) == "table" then bxor = bit.bxor end
  if not bxor and type(bit32) == "table" then bxor = bit32.bxor end -- luacheck: ignore 113
  if not bxor and _VERSION >= "Lua 5.3" then
    bxor = (loadstring or load)("return function(a, b) return a ~ b end")() -- luacheck: ignore 113
  end
  if not bxor then
    bxor = function(a, b)
      local r, p = 0, 1
      while a > 0 or b > 0 do
        if a % 2 ~= b % 2 then r = r + p end
        a, b, p = math.floor(a / 2), math.floor(b / 2), p * 2
      end
      return r
    end
  end
end

-- CRC16-CCITT (XModem), Redis Cluster's key hash: a table of the 256 byte values.
local CRC = {}
for i = 0, 255 do
  local c = i * 256
  for _ = 1, 8 do
    if c >= 0x8000 then c = bxor((c * 2) % 0x10000, 0x1021) else c = c * 2 end
  end
  CRC[i] = c
end

--- CRC16 (XModem) of a string, as Redis Cluster hashes keys.
-- @string s
-- @treturn number 0 to 65535
function M.crc16(s)
  local crc = 0
  for i = 1, #s do
    crc = bxor((crc % 256) * 256, CRC[bxor(math.floor(crc / 256), s:byte(i))])
  end
  return crc
end

--- The hash slot of a key (its hash tag's, when it has one).
-- @string key
-- @treturn number 0 to 16383
function M.slot(key)
  local open = key:find("{", 1, true)
  if open then
    local close = key:find("}", open + 1, true)
    if close and close > open + 1 then key = key:sub(open + 1, close - 1) end
  end
  return M.crc16(key) % M.SLOTS
end

local tags
--- The smallest decimal number whose hash slot is `slot`, as a string: a
-- hash tag `{N}` puts another key in that slot (the store's version counter of
-- a value's slot). The same on every host. The first call makes the table of
-- all 16384 (110 000 hashes: 0.03 s on LuaJIT, 0.09 s on Lua 5.4, once per
-- process or nginx worker).
-- @int slot
-- @treturn string
function M.tag(slot)
  if not tags then
    local t, left, i = {}, M.SLOTS, 0
    while left > 0 do
      local s = M.crc16(tostring(i)) % M.SLOTS
      if not t[s] then t[s], left = tostring(i), left - 1 end
      i = i + 1
    end
    tags = t
  end
  return tags[slot]
end

local Cluster = {}
Cluster.__index = Cluster

-- The nodes' options (the password among them) live here, not in the client table.
local secrets = setmetatable({}, { __mode = "k" })

local function check(cond, msg)
  if not cond then error("avalara.store.redis: " .. msg, 0) end
end

-- A seed, "host:port" or {host =, port =}, as "host:port".
local function address(seed, i)
  local host, port
  if type(seed) == "string" then
    host, port = seed:match("^(.+):(%d+)$")
  elseif type(seed) == "table" then
    host, port = seed.host, tonumber(seed.port) or 6379
  end
  port = tonumber(port)
  check(type(host) == "string" and host ~= "" and port and port >= 1 and port <= 65535 and port == math.floor(port),
    "'cluster' node " .. i .. " must be \"host:port\" or {host = ..., port = ...}")
  return host .. ":" .. string.format("%d", port)
end

--- A cluster client (no I/O until the first command).
-- @tparam table opts the options of `avalara.resp.client` (not `host`, `port`, `db`) and `cluster`:
-- the seed nodes, "host:port" or `{host, port}`, and optionally `retries` (5)
-- @return the client
function M.new(opts)
  local seeds_opt = opts.cluster
  check(type(seeds_opt) == "table" and #seeds_opt > 0, "'cluster' must be a list of seed nodes")
  for k in pairs(seeds_opt) do
    check(type(k) == "number" or k == "retries", "unknown 'cluster' option '" .. tostring(k) .. "'")
  end
  local retries = seeds_opt.retries or 5
  check(type(retries) == "number" and retries >= 0 and retries == math.floor(retries),
    "'cluster.retries' must be a non-negative integer")
  check(opts.host == nil and opts.port == nil, "'host' and 'port' are not for a cluster: give the nodes in 'cluster'")
  check(opts.db == nil or opts.db == 0, "'db' must be 0 in a cluster (a cluster has database 0 only)")
  local node_opts = {}
  for k, v in pairs(opts) do if k ~= "cluster" then node_opts[k] = v end end
  node_opts.host = "127.0.0.1"
  client.new(node_opts) -- checks the options now (raises naming one)
  -- stats: redirects followed and attempts repeated, for the curious (and the specs)
  local self = setmetatable({ seeds = {}, nodes = {}, slots = {}, retries = retries, refreshed = -math.huge,
    stats = { moved = 0, ask = 0, retried = 0 } }, Cluster)
  for i, seed in ipairs(seeds_opt) do self.seeds[i] = address(seed, i) end
  secrets[self] = node_opts
  return self
end

Cluster.__tostring = function(self)
  return "redis cluster " .. table.concat(self.seeds, ",")
end

--- The client of a node ("host:port"), made at its first use.
-- @string addr
function Cluster:node(addr)
  local c = self.nodes[addr]
  if not c then
    local o = {}
    for k, v in pairs(secrets[self]) do o[k] = v end
    o.host, o.port = addr:match("^(.+):(%d+)$")
    o.port = tonumber(o.port)
    c = client.new(o)
    self.nodes[addr] = c
  end
  return c
end

--- Reads the slot map again (`CLUSTER SLOTS` of a seed or a known master; `avoid` asked last).
-- @string[opt] avoid a node that just failed
-- @return true, or nil, err
function Cluster:refresh(avoid)
  self.refreshed = clock.now()
  local order, seen = {}, {}
  local function add(a) if a and not seen[a] and a ~= avoid then seen[a] = true; order[#order + 1] = a end end
  for _, a in ipairs(self.seeds) do add(a) end
  for a in pairs(self.nodes) do add(a) end
  if avoid then order[#order + 1] = avoid end
  local err
  for _, a in ipairs(order) do
    local r, e = self:node(a):command("CLUSTER", "SLOTS")
    if type(r) == "table" then
      local slots, host = {}, a:match("^(.+):%d+$")
      for _, range in ipairs(r) do
        local m = range[3]
        if type(m) == "table" and tonumber(m[2]) then
          local h = (m[1] == "" or m[1] == "?" or not m[1]) and host or m[1]
          local at = h .. ":" .. string.format("%d", m[2])
          for s = range[1], range[2] do slots[s] = at end
        end
      end
      self.slots = slots
      return true
    end
    err = e
  end
  return nil, err
end

-- Whether an error is worth another attempt on a map read again: a node down, the cluster
-- without a master for a slot (CLUSTERDOWN), a multi-key command mid-migration (TRYAGAIN).
local function transient(err)
  if err.code ~= "unreachable" then return false end
  return err.fault == "socket" or err.message:find("CLUSTERDOWN", 1, true) ~= nil
    or err.message:find("TRYAGAIN", 1, true) ~= nil
end

--- Runs `send(node_client)` on the master of `key`'s slot, following redirects and retrying outages.
-- @string[opt] key
-- @tparam function send
-- @return its reply, or nil, err
function Cluster:run(key, send)
  local slot = key and M.slot(key)
  local asking, err
  local tries, redirects = 0, 0
  while true do
    if not next(self.slots) then
      -- no map yet: an outage is retried below; anything else (a wrong password, a server
      -- that is not a cluster node) is the settings'
      local ok, rerr = self:refresh()
      if not ok and rerr and rerr.code ~= "unreachable" then
        if rerr.message:find("cluster support disabled", 1, true) then
          rerr = client.error(rerr.message .. " (a standalone server: give 'host' and 'port', not 'cluster')",
            "config", "redis")
        end
        return nil, rerr
      end
    end
    local addr = asking or (slot and self.slots[slot]) or self.seeds[1]
    local node = self:node(addr)
    local v, e
    if asking then
      asking = nil
      v, e = node:command("ASKING")
      if v ~= nil then v, e = send(node) end
    else
      v, e = send(node)
    end
    if v ~= nil then return v end
    err = e
    local moved, to, ask_slot, ask_to
    if err.fault == "redis" then
      moved, to = err.message:match(": MOVED (%d+) (%S+)")
      ask_slot, ask_to = err.message:match(": ASK (%d+) (%S+)")
    end
    if moved or ask_slot then
      redirects = redirects + 1
      if redirects > 5 then return nil, err end
      if moved then
        self.stats.moved = self.stats.moved + 1
        self.slots[tonumber(moved)] = to
        if clock.now() - self.refreshed >= 1 then self:refresh() end
        self.slots[tonumber(moved)] = to -- this node said so last
      else
        self.stats.ask = self.stats.ask + 1
        asking = ask_to
      end
    elseif transient(err) and tries < self.retries then
      tries = tries + 1
      self.stats.retried = self.stats.retried + 1
      clock.sleep(math.min(0.5, 0.05 * 2 ^ (tries - 1)))
      self:refresh(err.fault == "socket" and addr or nil)
    else
      return nil, err
    end
  end
end

--- Runs one command on its key's master (the key is the second word; none: any node).
-- @param ... the command's words
-- @return the reply, or nil, err (see `avalara.resp.client`)
function Cluster:command(...)
  local args = { ... }
  return self:run(args[2], function(node) return node:command(unpack(args)) end)
end

--- Runs a script on the master of its first key (every key must be in that slot).
-- @string script
-- @tparam table keys
-- @tparam table args
-- @return the script's reply, or nil, err
function Cluster:eval(script, keys, args)
  return self:run(keys[1], function(node) return node:eval(script, keys, args) end)
end

--- Closes the connections kept in plain Lua.
function Cluster:close()
  for _, c in pairs(self.nodes) do c:close() end
end

return M
