--- Redis Sentinel for the fleet's store: `avalara.store.redis{ sentinels = {...}, master = "name", ... }`
-- makes one of these in place of an `avalara.resp.client`, with the same `command`, `eval` and
-- `close`.
--
--    local store = avalara.store.redis{ sentinels = { "10.0.0.5:26379", { host = "10.0.0.6", port = 26379 } },
--      master = "cache", sentinel_password = os.getenv("SENTINEL_PASSWORD"),   -- sentinel_username = "..."
--      password = os.getenv("REDIS_PASSWORD"), prefix = "shop:" }                -- username, db, tls: the master's
--
-- - The master is found by asking the sentinels in turn (`SENTINEL get-master-addr-by-name`);
--   its answer is checked with `ROLE` on that server (a sentinel that has not yet seen a
--   failover names a demoted master); the sentinel that answered moves to the front of the list.
-- - Every new connection to the master checks `ROLE` again (the client's `on_connect`), so a
--   connection made after a failover to the old master, now a replica, fails at once.
-- - Every `sentinel_recheck` seconds (1; `false`: never) the next command first asks the first
--   sentinel whether the master is still the same: a forced failover (`SENTINEL FAILOVER`, a
--   maintenance) leaves the old master up and answering as master for about 10 s more, until
--   the sentinels demote it; without the recheck, writes would go on landing there, and be lost.
-- - A command that fails as an outage (refused, timed out, connection lost, `-MASTERDOWN`,
--   `-LOADING`, not the master any more) or with `-READONLY` (a demoted master) asks the
--   sentinels again and is sent once more to the master they name. A command whose connection
--   was lost after it was sent may so run twice (a `set` writes twice, a `cas` then finds its
--   own write): what a failover promises anyway, since Redis replicates asynchronously.
-- - While no sentinel names a master that says it is one (the failover is under way), a command
--   fails with `code = "unreachable"` (`avalara.store.failover` waits that out); every sentinel
--   saying it knows no such master is `code = "config"`; a sentinel refusing the credentials is
--   `"auth"`.
-- - The sentinels and the master authenticate separately: `sentinel_password` and
--   `sentinel_username` for the sentinels (none: sentinels without `requirepass`), `password` and
--   `username` for the master; `sentinel_tls` like `tls`, for the sentinels.
-- - In nginx each worker keeps the master it found, and the cosockets pool per server.
-- @module avalara.redis.sentinel
local client = require "avalara.resp.client"
local clock = require "avalara.clock"

local unpack = table.unpack or unpack -- luacheck: ignore 143

local M = {}

local Sentinel = {}
Sentinel.__index = Sentinel

local function check(cond, msg) if not cond then error("avalara.store.redis: " .. msg, 0) end end

-- {host, port} of one entry of `sentinels`: {host =, port =} or "host:port".
local function address(entry, i)
  local host, port
  if type(entry) == "string" then
    host, port = entry:match("^%[?([^%[%]]+)%]?:(%d+)$")
    if not host then host, port = entry, 26379 end
  elseif type(entry) == "table" then
    host, port = entry.host, entry.port or 26379
  end
  port = tonumber(port)
  check(type(host) == "string" and host ~= "" and port and port >= 1 and port <= 65535 and port == math.floor(port),
    "'sentinels[" .. i .. "]' must be \"host:port\" or {host = ..., port = ...}")
  return host, port
end

-- Whether a reply to ROLE is a master's; nil when ROLE may not be run (an ACL user without it:
-- then the sentinel's word is taken).
local function role_of(reply, err)
  if reply == nil then return nil, err end
  return type(reply) == "table" and tostring(reply[1]) or "?"
end

-- The master client's check of each new connection.
local function master_only(send)
  local reply, err, kind = send("ROLE")
  if reply == nil and kind == "redis" and client.reply_code(err) == "noperm" then return true end
  if reply == nil then return nil, err, kind, kind == "redis" and client.reply_code(err) or "unreachable" end
  local role = role_of(reply)
  if role ~= "master" then return nil, "not the master (ROLE says " .. role .. ")", "redis", "unreachable" end
  return true
end

local MASTER_OPTIONS = { password = true, username = true, db = true, tls = true, timeout = true, pool_size = true,
  keepalive = true, prefix = true }

--- A Sentinel-backed client (no I/O until the first command).
-- @tparam table opts `sentinels` (a list of "host:port" or `{host, port}`, port 26379 by default),
-- `master` (the name the sentinels monitor), `sentinel_password`, `sentinel_username`,
-- `sentinel_tls`, `sentinel_recheck` (1 s), and the master's `password`, `username`, `db`, `tls`,
-- `timeout`, `pool_size`, `keepalive`, `prefix` (see `avalara.resp.client`); `host` and `port` are
-- the sentinels' to say
-- @return the client
function M.new(opts)
  check(type(opts.sentinels) == "table" and #opts.sentinels > 0, "'sentinels' must be a non-empty list")
  check(type(opts.master) == "string" and opts.master ~= "", "'master' (the name the sentinels monitor) is required")
  check(opts.host == nil and opts.port == nil, "'host' and 'port' are the sentinels' to say: give 'sentinels' only")
  local recheck = opts.sentinel_recheck
  if recheck == nil then recheck = 1 end
  check(recheck == false or (type(recheck) == "number" and recheck > 0),
    "'sentinel_recheck' must be a positive number of seconds or false")
  local self = setmetatable({ name = opts.master, sentinels = {}, masters = {}, master = nil, copts = {},
    recheck = recheck, checked = 0 }, Sentinel)
  for k, v in pairs(opts) do
    if MASTER_OPTIONS[k] then self.copts[k] = v
    else
      check(k == "sentinels" or k == "master" or k == "sentinel_password" or k == "sentinel_username"
        or k == "sentinel_tls" or k == "sentinel_recheck", "unknown option '" .. tostring(k) .. "'")
    end
  end
  for i, entry in ipairs(opts.sentinels) do
    local host, port = address(entry, i)
    self.sentinels[i] = client.new { host = host, port = port, password = opts.sentinel_password,
      username = opts.sentinel_username, tls = opts.sentinel_tls, timeout = opts.timeout,
      pool_size = opts.pool_size, keepalive = opts.keepalive }
  end
  -- the master's options, checked now (wrong types raise here, not at the first command)
  local probe = {}
  for k, v in pairs(self.copts) do probe[k] = v end
  client.new(probe)
  return self
end

Sentinel.__tostring = function(self)
  local m = self.master
  return ("redis sentinel master %s (%s)"):format(self.name, m and (m.host .. ":" .. m.port) or "not yet asked")
end

-- The client of the master at host:port (one per address, kept: its pool and connection).
function Sentinel:_client_for(host, port)
  local key = host .. ":" .. port
  local c = self.masters[key]
  if not c then
    local o = { host = host, port = port, on_connect = master_only }
    for k, v in pairs(self.copts) do o[k] = v end
    c = client.new(o)
    self.masters[key] = c
  end
  return c
end

--- Asks the sentinels for the master (each in turn, until one names a server whose ROLE is
-- master) and uses it from now on.
-- @return the master's client, or nil, err (`code` "unreachable" while none can say, "config"
-- when no sentinel knows the name, "auth" when a sentinel refuses the credentials)
function Sentinel:resolve()
  self.master, self.checked = nil, clock.now()
  local unknown, worst, last = 0, nil, nil
  -- a copy: in nginx another request of this worker may reorder the list while this one waits
  local list = { unpack(self.sentinels) }
  for _, s in ipairs(list) do
    local addr, err = s:command("SENTINEL", "get-master-addr-by-name", self.name)
    if addr == false then
      unknown = unknown + 1
    elseif addr == nil then
      last = err
      if err.code ~= "unreachable" then worst = worst or err end
    elseif type(addr) == "table" and addr[1] and tonumber(addr[2]) then
      local m = self:_client_for(tostring(addr[1]), tonumber(addr[2]))
      local role, rerr = role_of(m:command("ROLE"))
      if role == "master" or (role == nil and rerr.code == "noperm") then
        for i, x in ipairs(self.sentinels) do
          if x == s then table.insert(self.sentinels, 1, table.remove(self.sentinels, i)); break end
        end
        self.master = m
        return m
      end
      last = rerr or client.error(tostring(m) .. ": named master by " .. tostring(s) .. " but ROLE says "
        .. tostring(role) .. " (a failover under way)", "unreachable", "redis")
      if rerr and rerr.code ~= "unreachable" then worst = worst or rerr end
    end
  end
  if worst then return nil, worst end
  if unknown == #list then
    return nil, client.error(("no sentinel knows a master named '%s'"):format(self.name), "config", "redis")
  end
  return nil, client.error(("redis sentinel master %s: no sentinel names a master that answers as one (%s)")
    :format(self.name, last and last.message or "?"), "unreachable", "socket")
end

-- Whether a failure means asking the sentinels again.
local function stale(err)
  return err.code == "unreachable" or tostring(err.message):find("READONLY", 1, true) ~= nil
end

-- Runs `f(master client)` on the master, asking the sentinels again once after a failure that
-- says the master moved.
function Sentinel:_run(f)
  local m = self.master
  if m and self.recheck and clock.now() >= self.checked + self.recheck then
    -- still the master the sentinels name? (a sentinel that cannot say leaves it as it is)
    self.checked = clock.now()
    local addr = self.sentinels[1]:command("SENTINEL", "get-master-addr-by-name", self.name)
    if type(addr) == "table" and (tostring(addr[1]) ~= m.host or tonumber(addr[2]) ~= m.port) then m = nil end
  end
  if m then
    local v, err = f(m)
    if v ~= nil or not stale(err) then return v, err end
  end
  local rerr
  m, rerr = self:resolve()
  if not m then return nil, rerr end
  return f(m)
end

--- Runs one command on the master (see `avalara.resp.client`'s `command`).
-- @param ... the command's words
-- @return the reply, or nil, err
function Sentinel:command(...)
  local words = { ... }
  local n = select("#", ...)
  return self:_run(function(m) return m:command(unpack(words, 1, n)) end)
end

--- Runs a Lua script on the master (see `avalara.resp.client`'s `eval`).
-- @string script
-- @tparam table keys
-- @tparam table args
-- @return the script's reply, or nil, err
function Sentinel:eval(script, keys, args)
  return self:_run(function(m) return m:eval(script, keys, args) end)
end

--- Closes the connections kept in plain Lua (sentinels and masters).
function Sentinel:close()
  for _, s in ipairs(self.sentinels) do s:close() end
  for _, m in pairs(self.masters) do m:close() end
end

return M
