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
--
-- Why this size: a little over 400 lines, one HTTP/1.1 client (reader,
-- header and chunk parsing, pools, TLS) that is also the hot path inside
-- nginx: its common cases are written without loops or string patterns so
-- LuaJIT keeps them in one trace (docs/openresty.md, "Traces").
-- @module avalara.transport.cosocket
local core = require "avalara.core"
local lua_transport = require "avalara.transport.lua"

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
-- call a header line. The common case (the line is in the buffer) has no
-- loop and no string pattern, so LuaJIT compiles it into the caller's trace
-- (a loop here aborted the traces of the header loop: "inner loop in root trace").
local Reader = {}
Reader.__index = Reader

local find, sub, byte, lower = string.find, string.sub, string.byte, string.lower

local function reader(sock)
  return setmetatable({ sock = sock, buf = "", pos = 1 }, Reader)
end

-- More bytes at the end of the buffer; nil, err at a socket error or close.
function Reader:fill()
  local data, err = self.sock:receiveany(16384)
  if not data then return nil, err end
  if self.pos > #self.buf then self.buf, self.pos = data, 1
  else self.buf = sub(self.buf, self.pos) .. data; self.pos = 1 end
  return true
end

-- Fills until a line is in the buffer (a line across several reads).
local function line_across(self)
  while true do
    if #self.buf - self.pos > 65536 then return nil, "header line too long" end
    local ok, err = self:fill()
    if not ok then return nil, err end
    local buf, pos = self.buf, self.pos
    local e = find(buf, "\n", pos, true)
    if e then
      self.pos = e + 1
      return sub(buf, pos, e > pos and byte(buf, e - 1) == 13 and e - 2 or e - 1)
    end
  end
end

-- The slow path of `line`: one read (the status line, the buffer being
-- empty: the common case, without a loop), else `line_across`.
local function line_slow(self)
  if #self.buf - self.pos > 65536 then return nil, "header line too long" end
  local ok, err = self:fill()
  if not ok then return nil, err end
  local buf, pos = self.buf, self.pos
  local e = find(buf, "\n", pos, true)
  if not e then return line_across(self) end
  self.pos = e + 1
  return sub(buf, pos, e > pos and byte(buf, e - 1) == 13 and e - 2 or e - 1)
end

-- The next line, without its CRLF (or LF).
function Reader:line()
  local buf, pos = self.buf, self.pos
  local e = find(buf, "\n", pos, true)
  if not e then return line_slow(self) end
  self.pos = e + 1
  return sub(buf, pos, e > pos and byte(buf, e - 1) == 13 and e - 2 or e - 1)
end

-- Exactly `n` bytes: from the buffer, the rest in one receive.
function Reader:bytes(n)
  local have = #self.buf - self.pos + 1
  if have >= n then
    local data = sub(self.buf, self.pos, self.pos + n - 1)
    self.pos = self.pos + n
    return data
  end
  local head = sub(self.buf, self.pos)
  self.buf, self.pos = "", 1
  local rest, err = self.sock:receive(n - have)
  if not rest then return nil, err end
  return head .. rest
end

-- Everything until the server closes the connection.
function Reader:to_close(max_body)
  local parts = { sub(self.buf, self.pos) }
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

-- `s` from `i` to `j` without the white space at either end. The
-- common case ("Name: value") has no loop (a loop here aborts the header
-- loop's trace); others take a pattern.
local function trimmed(s, i, j)
  if byte(s, i) == 32 then i = i + 1 end
  local b, e = byte(s, i) or 0, byte(s, j) or 0
  if b == 32 or (b >= 9 and b <= 13) or e == 32 or (e >= 9 and e <= 13) then
    return (sub(s, i, j):match("^%s*(.-)%s*$"))
  end
  return sub(s, i, j)
end

-- One header line, `s` from `i` to `j` (without its line end), into `headers`; with `going`, also to
-- `ex:header` (but Connection, fed last: a body read to the close says "close"). Returns whether
-- feeding goes on (`ex:header` says false once a limit stopped the reading).
local function header_line(headers, s, i, j, ex, going)
  local colon = find(s, ":", i, true)
  if colon and colon <= j then
    local name = lower(sub(s, i, colon - 1))
    local value = trimmed(s, colon + 1, j)
    local had = headers[name]
    headers[name] = had and (had .. ", " .. value) or value
    -- as the classic exchange reads a response table: no name with a CR
    if going and name ~= "connection" and not find(name, "\r", 1, true) then return ex:header(name, value) end
  end
  return going
end

-- Reads the header block; returns a table with lower-case names. Lines in the buffer are read
-- where they are (no string a line); a line across reads goes through `line`. With `ex` (an
-- exchange that is fed) each header also goes to it (`header_line`); the second value says
-- whether feeding goes on.
local function read_headers(r, ex)
  local headers, going = {}, ex ~= nil
  while true do
    local buf, pos = r.buf, r.pos
    local e = find(buf, "\n", pos, true)
    if e then
      r.pos = e + 1
      local j = e > pos and byte(buf, e - 1) == 13 and e - 2 or e - 1
      if j < pos then return headers, going end
      going = header_line(headers, buf, pos, j, ex, going)
    else
      local line, err = line_slow(r)
      if not line then return nil, err end
      if line == "" then return headers, going end
      going = header_line(headers, line, 1, #line, ex, going)
    end
  end
end

-- The status line's version ("1.1") and status (a number), or nil: "HTTP/d.d ddd" without a pattern.
local function status_of(line)
  if sub(line, 1, 5) ~= "HTTP/" or byte(line, 9) ~= 32 or byte(line, 7) ~= 46 then return nil end
  local d1, d2, d3 = byte(line, 10, 12)
  if not (d3 and d1 >= 48 and d1 <= 57 and d2 >= 48 and d2 <= 57 and d3 >= 48 and d3 <= 57) then return nil end
  local v1, v2 = byte(line, 6), byte(line, 8)
  if not (v1 >= 48 and v1 <= 57 and v2 >= 48 and v2 <= 57) then return nil end
  return sub(line, 6, 8), (d1 - 48) * 100 + (d2 - 48) * 10 + d3 - 48
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
-- Method and header names known to be tokens (a handful: checked once,
-- bounded), so a request's names take no pattern.
local tokens, n_tokens = {}, 0
local function is_token(s)
  if tokens[s] then return true end
  if type(s) ~= "string" or not s:find("^[%w!#$%%&'*+.^_`|~-]+$") then return false end
  if n_tokens >= 64 then tokens, n_tokens = {}, 0 end
  tokens[s], n_tokens = true, n_tokens + 1
  return true
end

local function unfit(req)
  if type(req) ~= "table" then return "no request table" end
  if not is_token(req.method) then return "the method is not a token" end
  if type(req.url) ~= "string" or req.url:find("[%z\1-\32\127]") then
    return "the URL holds a space or a control character (CR, LF, ...)"
  end
  for name, value in pairs(req.headers or {}) do
    if not is_token(name) then return "a header name holds a character a name cannot have" end
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

-- A connected socket to origin `o` (from the keep-alive pool, TLS done), or nil, err.
local function connect(t, o, timeout_ms)
  local authority = o.authority
  local pool = t.pools[o.pool]
  if not pool then pool = o.pool .. t.pool_suffix; t.pools[o.pool] = pool end
  local sock = ngx.socket.tcp()
  sock:settimeouts(t.connect_ms, timeout_ms, timeout_ms)
  local connect_opts = t.connect_opts
  connect_opts.pool = pool
  local ok, err = sock:connect(o.host, o.port, connect_opts)
  if not ok then return socket_error("connecting to", authority, err) end
  if o.scheme == "https" and (sock:getreusedtimes() or 0) == 0 then
    -- pcall: Debian's lua-resty-core asserts, instead of returning an
    -- error, when a certificate fails verification on a synchronous path
    local sessions = t.sessions
    local done, session, herr = pcall(sock.sslhandshake, sock, sessions[pool], o.host, t.verify)
    if not done then session, err = nil, "certificate verification failed" else err = herr end
    if not session then
      sock:close()
      if err == "timeout" then return socket_error("TLS handshake with", authority, err) end
      return fail("tls", "TLS handshake with " .. authority .. " failed: " .. tostring(err))
    end
    if type(session) == "userdata" or type(session) == "cdata" then sessions[pool] = session end
  end
  return sock
end

-- Sends `bytes` (the whole request) on `sock` and reads the answer: a
-- response table {status, headers, body}, or nil, err; the socket goes
-- back to its pool or is closed. With `ex` the answer is fed to it as it
-- is read (status, headers, body; true for the table).
local function round_trip(t, sock, o, method, bytes, ex)
  local authority = o.authority
  local ok, err = sock:send(bytes)
  if not ok then sock:close(); return socket_error("sending to", authority, err) end

  local r = reader(sock)
  local status_line
  status_line, err = r:line()
  if not status_line then sock:close(); return socket_error("reading from", authority, err) end
  local version, status = status_of(status_line)
  if not status then sock:close(); return fail("transport", "not an HTTP response from " .. authority) end
  if ex then
    if status < 100 then
      sock:close()
      return nil, { kind = "transport", message = "transport function returned no valid status" }
    end
    ex:status(status)
  end
  local headers, going = read_headers(r, ex)
  if not headers then sock:close(); return socket_error("reading from", authority, going) end

  local body
  local max_body = t.max_body
  local length = tonumber(headers["content-length"])
  if method == "HEAD" or status == 204 or status == 304 then
    body = ""
  elseif length then
    if length > max_body then
      sock:close()
      return fail("http", ("response body exceeds max_body (%d bytes)"):format(max_body), { status = status })
    end
    body, err = r:bytes(length)
  elseif find(lower(headers["transfer-encoding"] or ""), "chunked", 1, true) then
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
  if conn then conn = lower(conn) end
  if r:leftover() or (conn and find(conn, "close", 1, true))
    or (version == "1.0" and not (conn and find(conn, "keep-alive", 1, true))) then
    sock:close()
  else
    sock:setkeepalive(t.keepalive_ms, t.pool_size)
  end
  if not ex then return { status = status, headers = headers, body = body } end
  if going and conn then going = ex:header("connection", headers.connection) end
  if going then ex:body(body) end
  return true
end

-- The request table's bytes: request line, Host, headers, Content-Length, body.
local function request_bytes(req, o, path)
  local out = { req.method, " ", path, " HTTP/1.1\r\n", o.line, "\r\n" }
  local n = 6
  for name, value in pairs(req.headers or {}) do
    if not SKIPPED[lower(name)] then
      out[n + 1], out[n + 2], out[n + 3], out[n + 4] = name, ": ", value, "\r\n"
      n = n + 4
    end
  end
  local body = req.body
  if body then
    out[n + 1], out[n + 2], out[n + 3], out[n + 4] = "Content-Length: ", #body, "\r\n\r\n", body
  else
    out[n + 1] = "\r\n"
  end
  return table.concat(out)
end

-- One request table through transport state `t` (the classic exchange's path).
local function perform(t, req)
  local why = unfit(req)
  if why then return fail("transport", "request not sent: " .. why) end
  local o, path = origin_of(req.url)
  if not o then return fail("transport", "not an http(s) URL") end
  local sock, err = connect(t, o, (req.timeout or t.timeout) * 1000)
  if not sock then return nil, err end
  -- one send of the request line, headers and body (joined here: ngx_lua
  -- walks a table given to send twice, through the classic C API)
  return round_trip(t, sock, o, req.method, request_bytes(req, o, path))
end

-- One exchange of the FFI binding through transport state `t`: the core
-- gives the bytes to send (`ex:wire()`, already checked: no `unfit` walk,
-- no joining here) and is fed the answer (`ex:status`, `ex:header`,
-- `ex:body`) as it is read. Returns true, or nil, err: the caller finishes
-- the exchange with the error (`ex:finish(nil, err)`, which reads the error
-- as the classic exchange does, whatever was fed).
local function perform_exchange(t, ex, bytes, url, method, timeout)
  local o = origin_of(url)
  if not o then return fail("transport", "not an http(s) URL") end
  local sock, err = connect(t, o, (timeout or t.timeout) * 1000)
  if not sock then return nil, err end
  return round_trip(t, sock, o, method or "GET", bytes, ex)
end

--- A transport function on cosockets (`transport(request) -> response | nil, err`,
-- the shape docs/core.md gives in "A Lua `transport` function"), with keep-alive pools and TLS sessions
-- reused per host, port and verification setting.
-- @tparam[opt] table opts `{connect_timeout = 10, timeout = 30 (per request, overridden by
-- the request's), verify = true, max_body = 4 MiB, pool_size = 32, keepalive = 60}`
-- @treturn function
function M.transport(opts)
  opts = opts or {}
  local verify = opts.verify ~= false
  local t = { verify = verify, connect_ms = (opts.connect_timeout or 10) * 1000,
    max_body = opts.max_body or 4 * 1024 * 1024, pool_size = opts.pool_size or 32,
    keepalive_ms = (opts.keepalive or 60) * 1000, pool_suffix = verify and "verify" or "noverify",
    timeout = opts.timeout or 30, sessions = {}, pools = {}, connect_opts = {} }
  local fn = function(req) return perform(t, req) end
  -- exchanges that give their bytes (the FFI binding's) skip the request table
  lua_transport.register(fn, function(ex, bytes, url, method, timeout)
    return perform_exchange(t, ex, bytes, url, method, timeout)
  end)
  return fn
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
