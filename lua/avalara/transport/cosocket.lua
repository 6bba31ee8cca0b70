--- A transport on nginx cosockets: an HTTP/1.1 client for the request
-- phases and timers of OpenResty (`transport(request) -> response | nil,
-- err`, as every transport function), with keep-alive pools and TLS
-- sessions reused per host, port and verification setting, and `run_many`
-- for batches on light threads. `avalara.new` uses it by itself inside
-- nginx (see `avalara.openresty`); it is also usable on its own:
--
--    local transport = require("avalara.transport.cosocket").transport { timeout = 5 }
--    local client = avalara.new{ ..., transport = transport }
--
-- HTTPS is verified against nginx's `lua_ssl_trusted_certificate` (the
-- `cafile` option cannot reach cosockets); `verify = false` turns it off.
-- Failures are `nil, err` with an `avalara.error` of kind transport,
-- timeout, tls, http (a body over `max_body`) or parse (a 2xx body cut short).
-- @module avalara.transport.cosocket
local core = require "avalara.core"

local M = {}

-- nil and an `avalara.error` of `kind`, with `extra` fields (status, retryable).
local function fail(kind, message, extra)
  local t = { kind = kind, message = message }
  for k, v in pairs(extra or {}) do t[k] = v end
  return nil, core.error(t)
end

-- A socket error: "timeout" is kind timeout, everything else transport.
local function socket_error(what, host, err)
  if err == "timeout" then return fail("timeout", what .. " " .. host .. " timed out") end
  return fail("transport", what .. " " .. host .. " failed: " .. tostring(err))
end

-- A response read through one buffer: `sock:receiveany` takes what has
-- arrived (a small response: status line, headers and body in one call)
-- and lines and bodies are cut from the buffer, instead of one cosocket
-- call a header line.
local Reader = {}
Reader.__index = Reader

local function reader(sock)
  return setmetatable({ sock = sock, buf = "", pos = 1 }, Reader)
end

-- More bytes at the end of the buffer; nil, err at a socket error or close.
function Reader:fill()
  local data, err = self.sock:receiveany(16384)
  if not data then return nil, err end
  if self.pos > #self.buf then self.buf, self.pos = data, 1
  else self.buf = self.buf:sub(self.pos) .. data; self.pos = 1 end
  return true
end

-- The next line, without its CRLF (or LF).
function Reader:line()
  while true do
    local e = self.buf:find("\n", self.pos, true)
    if e then
      local line = self.buf:sub(self.pos, self.buf:byte(e - 1) == 13 and e - 2 or e - 1)
      self.pos = e + 1
      return line
    end
    if #self.buf - self.pos > 65536 then return nil, "header line too long" end
    local ok, err = self:fill()
    if not ok then return nil, err end
  end
end

-- Exactly `n` bytes: from the buffer, the rest in one receive.
function Reader:bytes(n)
  local have = #self.buf - self.pos + 1
  if have >= n then
    local data = self.buf:sub(self.pos, self.pos + n - 1)
    self.pos = self.pos + n
    return data
  end
  local head = self.buf:sub(self.pos)
  self.buf, self.pos = "", 1
  local rest, err = self.sock:receive(n - have)
  if not rest then return nil, err end
  return head .. rest
end

-- Everything until the server closes the connection.
function Reader:to_close(max_body)
  local parts = { self.buf:sub(self.pos) }
  local size = #parts[1]
  self.buf, self.pos = "", 1
  while true do
    local data, err = self.sock:receiveany(65536)
    if not data then
      if err == "closed" then return table.concat(parts) end
      return nil, err
    end
    size = size + #data
    if size > max_body then return nil, "max_body" end
    parts[#parts + 1] = data
  end
end

-- Whether bytes were left after the response (a server that sent more than
-- it said: the connection cannot be reused).
function Reader:leftover() return self.pos <= #self.buf end

-- Reads the header block; returns a table with lower-case names.
local function read_headers(r)
  local headers = {}
  while true do
    local line, err = r:line()
    if not line then return nil, err end
    if line == "" then return headers end
    local colon = line:find(":", 1, true)
    if colon then
      local name = line:sub(1, colon - 1):lower()
      local value = line:match("^%s*(.-)%s*$", colon + 1)
      headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
    end
  end
end

local function read_chunked(r, max_body)
  local parts, size = {}, 0
  while true do
    local line, err = r:line()
    if not line then return nil, err end
    local n = tonumber(line:match("^%s*(%x+)"), 16)
    if not n then return nil, "bad chunk size" end
    if n == 0 then
      repeat line, err = r:line() until not line or line == ""
      if not line then return nil, err end
      return table.concat(parts)
    end
    size = size + n
    if size > max_body then return nil, "max_body" end
    local data
    data, err = r:bytes(n)
    if not data then return nil, err end
    parts[#parts + 1] = data
    line, err = r:line()
    if not line then return nil, err end
  end
end

-- The parts of a URL's scheme://authority, parsed once per origin:
-- {scheme, host, port, authority, pool name (without the verify setting)}.
-- Bounded: emptied when it holds 64 origins.
local origins, n_origins = {}, 0
local function origin_of(url)
  local slash = url:find("/", 9, true) -- after "https://"
  local prefix = slash and url:sub(1, slash - 1) or url
  local o = slash and origins[prefix]
  if o then
    if url:find("#", slash, true) then return nil end
    return o, url:sub(slash)
  end
  local scheme, authority, path = url:match("^(https?)://([^/?#]+)([^#]*)$")
  if not scheme then return nil end
  local host, port = authority:match("^%[(.+)%]:?(%d*)$")
  if not host then host, port = authority:match("^([^:]+):?(%d*)$") end
  if not host then return nil end
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  o = { scheme = scheme, host = host, port = port, authority = authority,
    pool = ("avalara:%s:%s:%d:"):format(scheme, host, port), line = "Host: " .. authority }
  if path:sub(1, 1) == "/" and prefix .. path == url then
    if n_origins >= 64 then origins, n_origins = {}, 0 end
    origins[prefix], n_origins = o, n_origins + 1
  end
  return o, path ~= "" and path or "/"
end

local SKIPPED = { host = true, ["content-length"] = true, connection = true }

-- This transport writes the request line and the header lines itself: a
-- value with a CR or LF (or another control character), a space in the
-- URL or a name that is not a token would add lines or split the request
-- line. The core refuses such requests before any transport runs; this
-- is for callers that use the transport directly. Returns a reason or nil.
local function unfit(req)
  if type(req) ~= "table" then return "no request table" end
  if type(req.method) ~= "string" or not req.method:find("^[%w!#$%%&'*+.^_`|~-]+$") then
    return "the method is not a token"
  end
  if type(req.url) ~= "string" or req.url:find("[%z\1-\32\127]") then
    return "the URL holds a space or a control character (CR, LF, ...)"
  end
  for name, value in pairs(req.headers or {}) do
    if type(name) ~= "string" or not name:find("^[%w!#$%%&'*+.^_`|~-]+$") then
      return "a header name holds a character a name cannot have"
    end
    if type(value) ~= "string" and type(value) ~= "number" then
      return "the value of header '" .. name .. "' is not a string"
    end
    if tostring(value):find("[%z\1-\8\10-\31\127]") then
      return "the value of header '" .. name .. "' holds a control character (CR, LF, ...)"
    end
  end
  if req.body ~= nil and type(req.body) ~= "string" then return "the body is not a string" end
end

--- Why `req` cannot be written on the wire as it is, or nil when it can
-- (shared with `avalara.transport.subrequest`, whose values go into
-- nginx's `proxy_set_header` lines unchecked).
-- @tparam table req a request `{method, url, headers, body}`
-- @treturn string|nil the reason
M.unfit = unfit

--- A transport function on cosockets (`transport(request) -> response | nil, err`,
-- the shape docs/core.md gives in "A Lua `transport` function"), with keep-alive pools and TLS sessions
-- reused per host, port and verification setting.
-- @tparam[opt] table opts `{connect_timeout = 10, timeout = 30 (per request, overridden by
-- the request's), verify = true, max_body = 4 MiB, pool_size = 32, keepalive = 60}`
-- @treturn function
function M.transport(opts)
  opts = opts or {}
  local verify = opts.verify ~= false
  local connect_ms = (opts.connect_timeout or 10) * 1000
  local max_body = opts.max_body or 4 * 1024 * 1024
  local pool_size, keepalive_ms = opts.pool_size or 32, (opts.keepalive or 60) * 1000
  local pool_suffix = verify and "verify" or "noverify"
  local sessions, pools = {}, {}
  local connect_opts = {}

  return function(req)
    local why = unfit(req)
    if why then return fail("transport", "request not sent: " .. why) end
    local o, path = origin_of(req.url)
    if not o then return fail("transport", "not an http(s) URL") end
    local scheme, host, port, authority = o.scheme, o.host, o.port, o.authority
    local timeout_ms = (req.timeout or opts.timeout or 30) * 1000
    local pool = pools[o.pool]
    if not pool then pool = o.pool .. pool_suffix; pools[o.pool] = pool end
    local sock = ngx.socket.tcp()
    sock:settimeouts(connect_ms, timeout_ms, timeout_ms)
    connect_opts.pool = pool
    local ok, err = sock:connect(host, port, connect_opts)
    if not ok then return socket_error("connecting to", authority, err) end
    if scheme == "https" and (sock:getreusedtimes() or 0) == 0 then
      -- pcall: Debian's lua-resty-core asserts, instead of returning an
      -- error, when a certificate fails verification on a synchronous path
      local done, session, herr = pcall(sock.sslhandshake, sock, sessions[pool], host, verify)
      if not done then session, err = nil, "certificate verification failed" else err = herr end
      if not session then
        sock:close()
        if err == "timeout" then return socket_error("TLS handshake with", authority, err) end
        return fail("tls", "TLS handshake with " .. authority .. " failed: " .. tostring(err))
      end
      if type(session) == "userdata" or type(session) == "cdata" then sessions[pool] = session end
    end

    -- one send of the request line, headers and body (joined here: ngx_lua
    -- walks a table given to send twice, through the classic C API)
    local out = { req.method, " ", path, " HTTP/1.1\r\n", o.line, "\r\n" }
    for name, value in pairs(req.headers or {}) do
      if not SKIPPED[name:lower()] then
        out[#out + 1] = name
        out[#out + 1] = ": "
        out[#out + 1] = value
        out[#out + 1] = "\r\n"
      end
    end
    if req.body then
      out[#out + 1] = "Content-Length: "
      out[#out + 1] = tostring(#req.body)
      out[#out + 1] = "\r\n\r\n"
      out[#out + 1] = req.body
    else
      out[#out + 1] = "\r\n"
    end
    ok, err = sock:send(table.concat(out))
    if not ok then sock:close(); return socket_error("sending to", authority, err) end

    local r = reader(sock)
    local status_line
    status_line, err = r:line()
    if not status_line then sock:close(); return socket_error("reading from", authority, err) end
    local version, status = status_line:match("^HTTP/(%d%.%d) (%d%d%d)")
    status = tonumber(status)
    if not status then sock:close(); return fail("transport", "not an HTTP response from " .. authority) end
    local headers
    headers, err = read_headers(r)
    if not headers then sock:close(); return socket_error("reading from", authority, err) end

    local body
    local length = tonumber(headers["content-length"])
    if req.method == "HEAD" or status == 204 or status == 304 then
      body = ""
    elseif length then
      if length > max_body then
        sock:close()
        return fail("http", ("response body exceeds max_body (%d bytes)"):format(max_body), { status = status })
      end
      body, err = r:bytes(length)
    elseif (headers["transfer-encoding"] or ""):lower():find("chunked", 1, true) then
      body, err = read_chunked(r, max_body)
    else
      body, err = r:to_close(max_body)
      headers.connection = "close"
    end
    if not body then
      sock:close()
      if err == "max_body" then
        return fail("http", ("response body exceeds max_body (%d bytes)"):format(max_body), { status = status })
      end
      if err == "timeout" then return socket_error("reading from", authority, err) end
      -- a body cut short: the caller sees a truncated response of that status
      return fail(status >= 200 and status < 300 and "parse" or "http",
        "response truncated: " .. tostring(err), { status = status, retryable = true })
    end

    local conn = headers.connection
    if r:leftover() or (conn and conn:lower():find("close", 1, true))
      or (version == "1.0" and not (conn and conn:lower():find("keep-alive", 1, true))) then
      sock:close()
    else
      sock:setkeepalive(keepalive_ms, pool_size)
    end
    return { status = status, headers = headers, body = body }
  end
end

--- Runs `transport` over `requests` on light threads, at most `concurrency`
-- at a time; returns `{ {response, err}, ... }` in the order of `requests`.
-- @tparam function transport
-- @tparam table requests
-- @int concurrency
-- @treturn table
function M.run_many(transport, requests, concurrency)
  local answers, next_index = {}, 1
  local function worker()
    while next_index <= #requests do
      local i = next_index
      next_index = i + 1
      local ok, resp, err = pcall(transport, requests[i])
      if not ok then
        resp, err = nil, core.error { kind = "transport", message = "transport function raised: " .. tostring(resp) }
      end
      answers[i] = { resp, err }
    end
  end
  local threads = {}
  for t = 1, math.min(concurrency or 16, #requests) do threads[t] = ngx.thread.spawn(worker) end
  for _, th in ipairs(threads) do ngx.thread.wait(th) end
  return answers
end

return M
