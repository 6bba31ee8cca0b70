--- How `avalara.resp.client` reaches its server: URLs (`redis://`,
-- `rediss://`, `unix://`), TCP or a Unix socket, TLS with a CA, a client
-- certificate (mutual TLS) and SNI, in plain Lua (LuaSocket, LuaSec) and on
-- nginx's cosockets. Nothing here ever puts a password in a message.
-- @module avalara.resp.connect
local M = {}

local function fail(msg)
  error("avalara.store.redis: " .. msg, 0)
end

-- %XX escapes decoded; a malformed one raises (naming the part, never its text).
local function decode(s, what)
  if s:find("%%%X") or s:find("%%%x?$") or s:find("%%%x%X") then
    fail("'url' has a malformed %-escape in the " .. what)
  end
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- The options a Redis URL stands for (raises on a malformed one, without
-- echoing it: it may hold the password).
--
-- - `redis://[[user]:password@]host[:port][/db]`, `rediss://...` likewise
--   with `tls = true`; `host` may be `[v6 address]`
-- - `unix://[[user]:password@]/path/to/redis.sock[?db=N]` (a Unix socket)
--
-- The user and password are percent-decoded (`%40` for `@`, `%3A` for `:`);
-- an empty user is Redis's `default` user.
-- @string url
-- @treturn table `{host, port, socket, username, password, db, tls}` (absent parts nil)
function M.url(url)
  if type(url) ~= "string" then fail("'url' must be a string") end
  local scheme, rest = url:match("^(%a+)://(.*)$")
  scheme = scheme and scheme:lower()
  if scheme ~= "redis" and scheme ~= "rediss" and scheme ~= "unix" then
    fail("'url' must start with redis://, rediss:// or unix://")
  end
  local o = { tls = scheme == "rediss" or nil }
  local userinfo, after = rest:match("^(.*)@([^@]*)$")
  if userinfo then
    rest = after
    local user, pw = userinfo:match("^([^:]*):(.*)$")
    if not user then user = userinfo end -- "user@host": a user without a password
    if user ~= "" then o.username = decode(user, "user") end
    if pw and pw ~= "" then o.password = decode(pw, "password") end
    if o.username and not o.password then fail("'url' names a user without a password") end
  end
  if scheme == "unix" then
    local path, query = rest:match("^([^?]*)%??(.*)$")
    if path:sub(1, 1) ~= "/" then fail("'url' unix:// needs an absolute path (unix:///path/redis.sock)") end
    o.socket = decode(path, "path")
    for k, v in query:gmatch("([^&=]+)=([^&]*)") do
      if k ~= "db" then fail("'url' query: only db=N is understood (got '" .. k .. "')") end
      o.db = tonumber(v)
      if not o.db then fail("'url' db must be a number") end
    end
    return o
  end
  local hostport, db = rest:match("^([^/?]*)/?([^?]*)$")
  if not hostport or rest:find("?", 1, true) then fail("'url' has a query; only unix:// URLs take ?db=N") end
  local host, port = hostport:match("^%[([%x:.]+)%]:?(%d*)$")
  if not host then host, port = hostport:match("^([^:]*):?(%d*)$") end
  if not host or host == "" then fail("'url' needs a host (redis://host:port/db)") end
  o.host = host
  if port ~= "" then o.port = tonumber(port) end
  if db ~= "" then
    o.db = tonumber(db)
    if not o.db then fail("'url' database must be a number (/0)") end
  end
  return o
end

--- Options of `new` merged with its `url`: a part given both ways raises.
-- @tparam table opts the options (not changed)
-- @treturn table the merged options (without `url`)
function M.merge(opts)
  if opts.url == nil then return opts end
  local out = {}
  for k, v in pairs(opts) do if k ~= "url" then out[k] = v end end
  for k, v in pairs(M.url(opts.url)) do
    if k == "tls" and type(out.tls) == "table" then -- rediss:// with the TLS details as an option
      v = out.tls
    elseif out[k] ~= nil then
      fail("'" .. k .. "' is given both as an option and in 'url'")
    end
    out[k] = v
  end
  if out.socket and (opts.host or opts.port) then fail("'url' unix:// takes no 'host' or 'port'") end
  return out
end

-- Whether a certificate names `host` (subjectAltName DNS names, with a
-- leading wildcard label, or IP addresses; else the subject's CN).
local function names_host(cert, host)
  local ext = cert:extensions() or {}
  local san = ext["2.5.29.17"] or {}
  for _, ip in ipairs(san.iPAddress or {}) do if ip == host then return true end end
  local names = san.dNSName or {}
  if #names == 0 then
    -- LuaSec names the attribute by its long name ("commonName")
    for _, e in ipairs(cert:subject()) do
      if e.name == "commonName" or e.name == "CN" then names = { e.value } end
    end
  end
  host = host:lower()
  for _, name in ipairs(names) do
    name = name:lower()
    if name == host then return true end
    local suffix = name:match("^%*(%..+)$")
    if suffix and host:sub(-#suffix) == suffix and not host:sub(1, -#suffix - 1):find(".", 1, true) then
      return true
    end
  end
  return false
end

-- The code of a failed handshake: a server that went away mid-handshake is an outage; anything
-- else (an untrusted or expired certificate, a server without TLS, our certificate refused) is
-- the setting's.
local function handshake_failed(herr)
  herr = tostring(herr)
  local gone = herr == "closed" or herr == "timeout" or herr:find("reset by peer", 1, true)
  return nil, "TLS handshake failed: " .. herr, gone and "unreachable" or "tls"
end

-- TLS over a connected LuaSocket socket (LuaSec), the peer's chain and name
-- checked unless `verify` is false; our certificate shown when given.
local function tls_plain(self, sock)
  local ok_ssl, ssl = pcall(require, "ssl")
  if not ok_ssl then sock:close(); return nil, "TLS needs LuaSec (Debian: apt-get install lua-sec)", "tls" end
  local tls = self.tls
  local conn, err = ssl.wrap(sock, { mode = "client", protocol = "any",
    options = { "all", "no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1" },
    verify = tls.verify and { "peer", "fail_if_no_peer_cert" } or "none", cafile = tls.cafile, capath = tls.capath,
    certificate = tls.certificate, key = tls.key })
  if not conn then sock:close(); return nil, "TLS: " .. tostring(err), "tls" end
  conn:sni(tls.server_name)
  conn:settimeout(self.timeout)
  local done, herr = conn:dohandshake()
  if not done then
    conn:close()
    return handshake_failed(herr)
  end
  if tls.verify and not names_host(conn:getpeercertificate(), tls.server_name) then
    conn:close()
    return nil, "TLS handshake failed: the certificate does not name " .. tls.server_name, "tls"
  end
  return conn
end

-- A connected LuaSocket socket (TCP, or the Unix socket `self.socket`), TLS when asked.
local function open_plain(self)
  local socket = require "socket"
  local sock
  if self.socket then
    local ok_unix, unix = pcall(require, "socket.unix")
    if not ok_unix then return nil, "a Unix socket needs LuaSocket's socket.unix", "config" end
    sock = unix.stream and unix.stream() or unix()
  else
    sock = socket.tcp()
  end
  sock:settimeout(self.timeout)
  local ok, err
  if self.socket then ok, err = sock:connect(self.socket) else ok, err = sock:connect(self.host, self.port) end
  if not ok then sock:close(); return nil, "cannot connect: " .. tostring(err), "unreachable" end
  if self.tls then return tls_plain(self, sock) end
  return sock
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("*a")
  f:close()
  return text
end

-- The client certificate and key as cdata for `setclientcert` (ngx.ssl), read once per worker;
-- nil, message.
local function client_cert(self)
  if self.client_cert then return self.client_cert, self.client_key end
  local ok_ssl, ngx_ssl = pcall(require, "ngx.ssl")
  if not ok_ssl then return nil, "a client certificate in nginx needs ngx.ssl (lua-resty-core)" end
  local cert_pem, cerr = read_file(self.tls.certificate)
  if not cert_pem then return nil, "cannot read tls.certificate: " .. tostring(cerr) end
  local key_pem, kerr = read_file(self.tls.key)
  if not key_pem then return nil, "cannot read tls.key: " .. tostring(kerr) end
  local cert, perr = ngx_ssl.parse_pem_cert(cert_pem)
  if not cert then return nil, "tls.certificate is not a PEM certificate: " .. tostring(perr) end
  local key, pkerr = ngx_ssl.parse_pem_priv_key(key_pem)
  if not key then return nil, "tls.key is not an unencrypted PEM key: " .. tostring(pkerr) end
  self.client_cert, self.client_key = cert, key
  return cert, key
end

-- A cosocket from nginx's pool `pool`: TCP or "unix:<path>", the handshake on a new connection.
local function open_cosocket(self, pool)
  local sock = ngx.socket.tcp()
  local ms = self.timeout * 1000
  sock:settimeouts(ms, ms, ms)
  local ok, err
  if self.socket then
    ok, err = sock:connect("unix:" .. self.socket, { pool = pool })
  else
    ok, err = sock:connect(self.host, self.port, { pool = pool })
  end
  if not ok then return nil, "cannot connect: " .. tostring(err), "unreachable" end
  if self.tls and sock:getreusedtimes() == 0 then
    if self.tls.certificate then
      local cert, key = client_cert(self)
      if not cert then sock:close(); return nil, "TLS: " .. key, "tls" end
      local set, serr = sock:setclientcert(cert, key)
      if not set then sock:close(); return nil, "TLS: " .. tostring(serr), "tls" end
    end
    -- pcall: Debian's lua-resty-core asserts on some verification failures
    local done, session, herr = pcall(sock.sslhandshake, sock, nil, self.tls.server_name, self.tls.verify)
    if not done or not session then
      sock:close()
      return handshake_failed(done and herr or "certificate verification failed")
    end
  end
  return sock
end

--- A connected socket to the client's server: a cosocket from the pool `pool` when `co`, else
-- LuaSocket; nil, message, code ("unreachable", "tls" or "config") on failure.
-- @param self the client (`host`, `port`, `socket`, `tls`, `timeout`)
-- @bool co on cosockets
-- @string[opt] pool the pool's name (cosockets)
-- @return the socket, or nil, message, code
function M.open(self, co, pool)
  if co then return open_cosocket(self, pool) end
  return open_plain(self)
end

return M
