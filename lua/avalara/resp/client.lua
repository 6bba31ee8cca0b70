--- A small Redis client for the fleet features (`avalara.store.redis`,
-- `avalara.fleet`): one code path in plain Lua and inside nginx.
--
-- - Inside nginx, in the phases with cosockets (rewrite, access, content,
--   timers, ...), every command goes over an `ngx.socket.tcp` cosocket taken
--   from nginx's keep-alive pool (`pool_size` per worker, idle `keepalive`
--   seconds) and put back after the reply: nothing blocks the worker. In
--   `init_by_lua` it uses LuaSocket (blocking is allowed there); in the other
--   phases a command fails saying so.
-- - In plain Lua (5.1 to 5.4, LuaJIT) it keeps one LuaSocket connection per
--   client (a process runs one command at a time), TLS through LuaSec.
--
-- Why not hiredis or a Redis library: Debian's lua-resty-redis
-- (`lua-nginx-redis` 0.27) runs on cosockets only and has no TLS or URLs, its
-- `lua-redis` (2014) is built for Lua 5.1 to 5.3 only, and hiredis would
-- mean new C in the core for a round trip that the measured figures
-- (docs/fleet.md, "Why a RESP client of our own") show is dominated by the
-- network, not by parsing: RESP is a few lines of Lua (`avalara.resp.protocol`).
-- How it connects (URLs, TCP or a Unix socket, TLS, mutual TLS) is
-- `avalara.resp.connect`.
--
-- A new connection authenticates (`AUTH [username] password`) and selects
-- `db` before its first command. A pooled connection that the server closed
-- meanwhile (a restart, an idle timeout) is replaced once, transparently.
-- A failed command is `nil, err`, `err` an `avalara.error` of kind "store"
-- (`M.error`): `code` says what it means for the caller (`M.CODES`): only
-- "unreachable" is an outage (`retryable`), the others are a misconfiguration
-- or a server that is not the one expected, and must be fixed, not waited
-- out; `fault` says where it failed: "socket" (connection trouble),
-- "protocol" (not RESP, or beyond `avalara.resp.protocol`'s limits), "redis"
-- (the server's error reply) or "phase" (no cosockets in this
-- nginx phase). Messages name the server (`tostring(client)`), never the
-- password.
-- @module avalara.resp.client
local core = require "avalara.core"
local clock = require "avalara.clock"
local resp = require "avalara.resp.protocol"
local nginx = require "avalara.transport.nginx"
local connect = require "avalara.resp.connect"

local unpack = table.unpack or unpack -- luacheck: ignore 143

local M = {}

--- What a failure means (the `code` of errors; `err.code` of the store's errors):
--
-- - `unreachable`: refused, timed out, connection lost, DNS, or a server that is loading,
--   busy or without its master: an outage, the one failure `avalara.store.failover` waits out
-- - `auth`: the password or user is wrong or missing (`WRONGPASS`, `NOAUTH`, ...)
-- - `noperm`: the ACL user may not run a command or touch a key the store uses (`NOPERM`)
-- - `config`: another setting is wrong: `db` out of range, a read-only replica, a renamed
--   command, no cosockets in this nginx phase
-- - `tls`: the server's certificate is not trusted or does not name `server_name`
-- - `protocol`: the answer is not RESP or beyond the parser's limits (not a Redis server?)
-- - `redis`: another error reply (out of memory, a script's error)
M.CODES = { unreachable = true, auth = true, noperm = true, config = true, tls = true, protocol = true,
  redis = true }

--- The code (one of `M.CODES`) of an error reply of Redis: its first word says what it is.
-- @string message the error reply, as Redis sent it
-- @treturn string the code
function M.reply_code(message)
  local word = tostring(message):match("^(%u+)") or ""
  if word == "WRONGPASS" or word == "NOAUTH" then return "auth" end
  if word == "NOPERM" then return "noperm" end
  -- an ACL user whose script calls a command it may not run (Redis 7.0 says ERR, not NOPERM)
  if word == "ERR" and message:find("can't run this command", 1, true) then return "noperm" end
  if word == "LOADING" or word == "BUSY" or word == "MASTERDOWN" or word == "TRYAGAIN" or word == "CLUSTERDOWN" then
    return "unreachable"
  end
  if word == "READONLY" or word == "MOVED" or word == "ASK" or word == "CROSSSLOT" then return "config" end
  if word == "ERR" and (message:find("^ERR unknown command") or message:find("^ERR DB index")) then return "config" end
  return "redis"
end
local reply_code = M.reply_code

--- The error table of a failure (`kind` "store", `code` from `M.CODES`, `retryable` only for
-- "unreachable"): what `command`, `eval` and `avalara.store.redis` return and a call fails with.
-- Given an error table already (what `command` returns), returns it as it is.
-- @tparam string|table message the message (naming the server, never the password)
-- @string[opt] code
-- @string[opt] fault "socket", "protocol", "redis" or "phase"
-- @treturn table an `avalara.error`
function M.error(message, code, fault)
  if core.is_error(message) then return message end
  code = M.CODES[code] and code or "redis"
  return core.error { kind = "store", code = code, message = tostring(message), fault = fault,
    retryable = code == "unreachable" }
end

local Client = {}
Client.__index = Client

-- Passwords live here, not in the client table (a dump of a client shows none).
local secrets = setmetatable({}, { __mode = "k" })

-- Loaded scripts by source: the SHA1 Redis gave for it (per process or worker).
local shas = {}

local OPTIONS = { host = true, port = true, password = true, username = true, db = true, prefix = true, tls = true,
  timeout = true, pool_size = true, keepalive = true, url = true, socket = true, on_connect = true }

local function check(cond, msg) if not cond then error("avalara.store.redis: " .. msg, 0) end end

local function integer(v, low, high) return type(v) == "number" and v == math.floor(v) and v >= low and v <= high end

--- A client for the Redis server of `opts` (no I/O until the first command).
-- Options: `url` (`redis://user:password@host:port/db`, `rediss://` with TLS,
-- `unix:///path/redis.sock?db=0`; see `avalara.resp.connect.url`), or
-- `host` ("127.0.0.1"), `port` (6379) or `socket` (a Unix socket's path),
-- `password` and `username`
-- (Redis 6 ACL user; none: the `default` user), `db` (0), `tls` (false, true,
-- or `{verify = true, cafile, capath, server_name, certificate, key}`: the last two
-- a client certificate and its key, PEM files, for mutual TLS), `timeout` (seconds for
-- connecting and for each reply, 1), `pool_size` (32) and `keepalive` (60 s)
-- for nginx's pool; `on_connect(send)`: a check of each new connection (`avalara.redis.sentinel`'s
-- ROLE), `send(...)` runs a command. `prefix` is accepted and kept for the callers. Wrong
-- option types raise, naming the option (never its value).
-- @tparam[opt] table opts
-- @return the client
function M.new(opts)
  opts = opts or {}
  check(type(opts) == "table", "options must be a table")
  for k in pairs(opts) do check(OPTIONS[k], "unknown option '" .. tostring(k) .. "'") end
  opts = connect.merge(opts)
  local self = setmetatable({
    host = opts.host or "127.0.0.1", port = tonumber(opts.port) or opts.port or 6379, db = opts.db or 0,
    username = opts.username, socket = opts.socket, on_connect = opts.on_connect,
    timeout = opts.timeout or 1, pool_size = opts.pool_size or 32, keepalive = opts.keepalive or 60,
  }, Client)
  check(type(self.host) == "string" and self.host ~= "", "'host' must be a non-empty string")
  check(integer(self.port, 1, 65535), "'port' must be an integer from 1 to 65535")
  check(integer(self.db, 0, 1e6), "'db' must be a non-negative integer")
  check(self.socket == nil or (type(self.socket) == "string" and self.socket:sub(1, 1) == "/"),
    "'socket' must be an absolute path")
  check(opts.password == nil or (type(opts.password) == "string" and opts.password ~= ""),
    "'password' must be a non-empty string")
  check(self.username == nil or (type(self.username) == "string" and self.username ~= ""),
    "'username' must be a non-empty string")
  check(self.username == nil or opts.password ~= nil, "'username' needs a 'password'")
  check(type(self.timeout) == "number" and self.timeout > 0, "'timeout' must be a positive number")
  check(integer(self.pool_size, 1, 1e6), "'pool_size' must be a positive integer")
  check(type(self.keepalive) == "number" and self.keepalive > 0, "'keepalive' must be a positive number")
  local tls = opts.tls
  check(tls == nil or type(tls) == "boolean" or type(tls) == "table", "'tls' must be a boolean or a table")
  if tls then
    tls = type(tls) == "table" and tls or {}
    check(tls.verify == nil or type(tls.verify) == "boolean", "'tls.verify' must be a boolean")
    for _, k in ipairs { "cafile", "capath", "server_name", "certificate", "key" } do
      check(tls[k] == nil or type(tls[k]) == "string", "'tls." .. k .. "' must be a string")
    end
    check((tls.certificate == nil) == (tls.key == nil), "'tls.certificate' and 'tls.key' go together")
    self.tls = { verify = tls.verify ~= false, cafile = tls.cafile, capath = tls.capath,
      server_name = tls.server_name or self.host, certificate = tls.certificate, key = tls.key }
  end
  secrets[self] = opts.password
  return self
end

Client.__tostring = function(self)
  local where = self.socket and ("unix:" .. self.socket) or (self.host .. ":" .. self.port)
  return ("redis %s/%d%s"):format(where, self.db, self.tls and " (tls)" or "")
end

-- ------------------------------------------------------------ sockets

-- Whether commands go over cosockets now; nil, message in a phase without them.
local function cosockets()
  if not nginx.in_nginx() then return false end
  local mode, why = nginx.mode()
  if not mode then return nil, why end
  return mode == "cosocket"
end

-- The code of a failure of `kind` (see `M.CODES`).
local function code_of(kind, err)
  if kind == "redis" then return reply_code(err) end
  if kind == "protocol" then return "protocol" end
  if kind == "phase" then return "config" end
  return "unreachable"
end

-- Sends one command and reads its reply.
local function roundtrip(sock, args)
  local ok, err = sock:send(resp.encode(args))
  if not ok then return nil, err, "socket" end
  return resp.read_reply(sock)
end

-- Whether the first exchange on a new TLS connection failed because the server refused us: with
-- TLS 1.3 a server that wants our certificate (or does not trust it) says so after the handshake,
-- an alert or the connection closed at the first read.
local function refused(self, err, reused)
  err = tostring(err)
  return self.tls and not reused and (err:find("alert", 1, true) or err == "closed")
end

-- AUTH and SELECT on a new connection; nil, message, kind, code.
local function hello(self, sock)
  local pw = secrets[self]
  if pw then
    local ok, err, kind = roundtrip(sock, self.username and { "AUTH", self.username, pw } or { "AUTH", pw })
    if not ok then
      if refused(self, err) then return nil, "TLS handshake failed: " .. tostring(err), kind, "tls" end
      if kind ~= "redis" then return nil, err, kind, code_of(kind, err) end
      -- every refusal of AUTH is the credentials' (WRONGPASS, "ERR invalid password", no password
      -- configured on the server, a user name given to a server before Redis 6), unless loading
      local code = reply_code(err)
      return nil, "authentication failed (" .. err .. ")", kind, code == "unreachable" and code or "auth"
    end
  end
  if self.db ~= 0 then
    local ok, err, kind = roundtrip(sock, { "SELECT", self.db })
    if not ok then
      local code = code_of(kind, err)
      if code == "redis" then code = "config" end -- "ERR DB index is out of range", SELECT in a cluster
      return nil, "SELECT " .. self.db .. " failed (" .. tostring(err) .. ")", kind, code
    end
  end
  if self.on_connect then return self.on_connect(function(...) return roundtrip(sock, { ... }) end) end
  return true
end

-- A ready connection and whether it was used before; nil, message, kind, code.
function Client:_acquire()
  local co, why = cosockets()
  if co == nil then return nil, why, "phase", "config" end
  if not co and self.sock then return self.sock, true end
  if co and not self.pool then
    -- one pool per server, database, user, password (a digest: pool names may be logged) and TLS
    -- setting (a connection verified for one name, or shown one client certificate, must not serve
    -- another)
    local pw, tls = secrets[self], self.tls
    self.pool = ("avalara:redis:%s:%d:%s:%s:%s"):format(self.socket or (self.host .. ":" .. self.port), self.db,
      self.username or "", pw and require("avalara.digest").of(pw):sub(1, 16) or "",
      tls and ("tls:" .. tls.server_name .. (tls.verify and ":verify" or ":noverify") .. ":" .. (tls.certificate or ""))
      or "")
  end
  local sock, err, code = connect.open(self, co, self.pool)
  if not sock then return nil, err, "socket", code or "unreachable" end
  if co and sock:getreusedtimes() > 0 then return sock, true end
  local ok, herr, kind, hcode = hello(self, sock)
  if not ok then
    sock:close()
    return nil, herr, kind, hcode
  end
  if not co then self.sock = sock end
  return sock, false
end

-- Puts a healthy connection back (nginx's pool), or keeps it (plain Lua).
function Client:_release(sock)
  if sock ~= self.sock then sock:setkeepalive(self.keepalive * 1000, self.pool_size) end
end

-- Closes a connection that is out of step or broken.
function Client:_discard(sock)
  if sock == self.sock then self.sock = nil end
  sock:close()
end

-- One command; its reply, or nil, message, fault, code.
function Client:_command(args)
  for attempt = 1, 2 do
    local sock, reused, kind, code = self:_acquire()
    if not sock then return nil, tostring(self) .. ": " .. tostring(reused), kind, code end
    local v, err
    v, err, kind = roundtrip(sock, args)
    if kind == nil or kind == "redis" then
      self:_release(sock)
      if v == nil then return nil, tostring(self) .. ": " .. tostring(err), kind, reply_code(err) end
      return v
    end
    self:_discard(sock)
    if kind == "protocol" then return nil, tostring(self) .. ": " .. tostring(err), kind, "protocol" end
    if refused(self, err, reused) then
      return nil, tostring(self) .. ": TLS handshake failed: " .. tostring(err), "socket", "tls"
    end
    -- a pooled connection the server closed meanwhile: once more on a new one
    if not (reused and attempt == 1) then
      return nil, tostring(self) .. ": connection lost (" .. tostring(err) .. ")", "socket", "unreachable"
    end
  end
end

-- nil and the error of a failure.
local function failed(message, fault, code)
  return nil, M.error(message, code, fault)
end

--- Runs one command: `client:command("SET", key, value, "PX", 1000)`.
-- @param ... the command's words
-- @return the reply (`false` for a null), or nil, err (an `avalara.error`, see above)
function Client:command(...)
  local v, message, fault, code = self:_command({ ... })
  if v == nil then return failed(message, fault, code) end
  return v
end

--- Runs a Lua script on the server (`EVALSHA`, loading it at the first use
-- and again after a server restart forgot it).
-- @string script the script's source
-- @tparam table keys its KEYS
-- @tparam table args its ARGV
-- @return the script's reply, or nil, err
function Client:eval(script, keys, args)
  local words = { "EVALSHA", shas[script] or "", #keys }
  for _, k in ipairs(keys) do words[#words + 1] = k end
  for _, a in ipairs(args) do words[#words + 1] = a end
  if shas[script] then
    local v, err, fault, code = self:_command(words)
    if v ~= nil then return v end
    if fault ~= "redis" or not err:find("NOSCRIPT", 1, true) then return failed(err, fault, code) end
  end
  local sha, err, fault, code = self:_command({ "SCRIPT", "LOAD", script })
  if not sha then return failed(err, fault, code) end
  shas[script], words[2] = sha, sha
  return self:command(unpack(words))
end

local unique_seed, unique_pid, unique_seq
--- A string no other process, nginx worker or call has: random bytes of
-- this process (or worker) and a counter (lock owners, log members).
-- @treturn string
function M.unique()
  local pid = type(ngx) == "table" and ngx.worker and ngx.worker.pid and ngx.worker.pid() or 0
  if unique_pid ~= pid or not unique_seed then
    -- workers forked from one master share its state: the seed is remade per pid
    local f = io and io.open("/dev/urandom", "rb")
    local bytes = f and f:read(12) or (tostring(clock.now()) .. tostring({}) .. tostring(os and os.clock()))
    if f then f:close() end
    unique_seed = bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end) .. ":" .. pid
    unique_pid, unique_seq = pid, 0
  end
  unique_seq = unique_seq + 1
  return unique_seed .. ":" .. unique_seq
end

--- Closes the connection this client keeps (plain Lua; the next command opens one).
function Client:close()
  if self.sock then self.sock:close() end
  self.sock = nil
end

return M
