-- One contender of the per-call benchmark: N sequential authenticated GETs
-- of one classification, each response decoded, over keep-alive where the
-- contender can. Prints "<calls> <seconds>"; exits non-zero on a bad answer.
--
--   lua5.4 bench/percall.lua client|core|luasocket URL TOKEN CAFILE N
--   lua5.4 bench/percall.lua luasocket-ka URL TOKEN CAFILE N  (HTTP/1.1 by hand on one kept-alive connection)
--   lua5.1 bench/percall.lua luacurl   URL TOKEN CAFILE N      (Debian's lua-curl is 5.1/5.2 only)
--   luajit bench/percall.lua luacurl   URL TOKEN CAFILE N      (LuaJIT loads the same 5.1 module)
--   lua5.4 bench/percall.lua curl-cli  URL TOKEN CAFILE N      (a curl process per call)
--
-- Under LuaJIT, `core` is the FFI binding's `request` (`require "avalara.ffi"`)
-- when it loads, else the classic `core.request`; AVALARA_BINDING=classic|ffi
-- chooses (the client reads the same variable). The binding that ran (the
-- client's: `client:transport_info().binding`) is written to stderr as
-- "percall: binding NAME".
local mode, url, token, cafile, n = arg[1], arg[2], arg[3], arg[4], tonumber(arg[5])
assert(mode and url and token and cafile and n, "usage: percall.lua MODE URL TOKEN CAFILE N")
local cjson = require "cjson"
local socket = require "socket"
local https = url:match("^https:") ~= nil
local auth = "Bearer " .. token

local function check(body)
  local m = cjson.decode(body)
  if type(m) ~= "table" or m.status ~= "CLASSIFIED" then
    io.stderr:write("percall: unexpected answer: ", tostring(body):sub(1, 200), "\n")
    os.exit(1)
  end
end

-- Each contender: a setup returning a function that makes one call.
local contenders = {}

-- The binding a LuaJIT contender uses: "ffi" when `require "avalara.ffi"`
-- gives the binding and AVALARA_BINDING does not say "classic", else
-- "classic" (always under PUC Lua); the FFI binding table, if chosen.
local function binding()
  local want = os.getenv("AVALARA_BINDING")
  if not jit or want == "classic" then return "classic" end
  local ok, b = pcall(require, "avalara.ffi")
  if ok and type(b) == "table" and b.request then return "ffi", b end
  if want == "ffi" then
    io.stderr:write("percall: AVALARA_BINDING=ffi but avalara.ffi does not load: ", tostring(b), "\n")
    os.exit(1)
  end
  return "classic"
end

function contenders.core()
  local name, ffi_binding = binding()
  io.stderr:write("percall: binding ", name, "\n")
  local request = ffi_binding and ffi_binding.request or require("avalara.core").request
  -- no headers table: the lua-curl contender has none either (and the client's reads ask for none)
  local args = { method = "GET", url = url, token = token, cafile = https and cafile or nil,
    response_headers = false }
  return function()
    local status, model = request(args)
    if status ~= 200 or model.status ~= "CLASSIFIED" then
      io.stderr:write("percall: ", tostring(model), "\n")
      os.exit(1)
    end
  end
end

function contenders.client()
  local avalara = require "avalara"
  local base, company, id = url:match("^(https?://[^/]+)/api/v2/companies/(%d+)/classifications/hs/(.+)$")
  local client = avalara.new{ environment = "local", emulator_url = base, account_id = "2000000001",
    license_key = "DEMO-LICENSE-KEY-0001", company_id = company, cafile = https and cafile or nil }
  assert(client:token())
  -- an earlier revision (BENCH_BEFORE) has no transport_info, nor any binding but the classic one
  io.stderr:write("percall: binding ", client.transport_info and client:transport_info().binding or "classic", "\n")
  return function()
    local model, err = client:classification(id)
    if not model or model.status ~= "CLASSIFIED" then
      io.stderr:write("percall: ", tostring(err), "\n")
      os.exit(1)
    end
  end
end

function contenders.luacurl()
  local curl = require "curl"
  local c = curl.easy_init()
  local chunks
  c:setopt(curl.OPT_URL, url)
  c:setopt(curl.OPT_HTTPHEADER, { "Authorization: " .. auth, "Accept: application/json" })
  if https then c:setopt(curl.OPT_CAINFO, cafile) end
  -- luacurl passes (data, size) to the write function when no OPT_WRITEDATA is set
  c:setopt(curl.OPT_WRITEFUNCTION, function(data, size)
    chunks[#chunks + 1] = data
    return size
  end)
  return function()
    chunks = {}
    local rc, msg = c:perform()
    if rc ~= 0 then io.stderr:write("percall: ", tostring(msg or rc), "\n"); os.exit(1) end
    check(table.concat(chunks))
  end
end

function contenders.luasocket()
  local ltn12 = require "ltn12"
  local request = https and require("ssl.https").request or require("socket.http").request
  return function()
    local chunks = {}
    local _, code = request { url = url, headers = { authorization = auth, accept = "application/json" },
      sink = ltn12.sink.table(chunks), cafile = https and cafile or nil, verify = https and "peer" or nil,
      protocol = https and "any" or nil, options = https and { "all", "no_sslv2", "no_sslv3" } or nil }
    if code ~= 200 then io.stderr:write("percall: status ", tostring(code), "\n"); os.exit(1) end
    check(table.concat(chunks))
  end
end

-- What a user writes with LuaSocket to keep a connection: socket.http and
-- ssl.https send "Connection: close" (a connection per call), so the request
-- is written and the response read by hand (status line, headers,
-- Content-Length body) on one socket, wrapped by LuaSec for HTTPS (HTTP/1.1:
-- no ALPN asked for, so no HTTP/2).
contenders["luasocket-ka"] = function()
  local host, port, path = url:match("^https?://([^:/]+):?(%d*)(/.*)$")
  port = tonumber(port) or (https and 443 or 80)
  local request = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: %s\r\nAccept: application/json\r\n\r\n")
    :format(path, host, port, auth)
  local conn
  local function connect()
    local c = assert(socket.connect(host, port))
    c:setoption("tcp-nodelay", true)
    if https then
      c = assert(require("ssl").wrap(c, { mode = "client", protocol = "any", verify = "peer", cafile = cafile,
        options = { "all", "no_sslv2", "no_sslv3" } }))
      assert(c:dohandshake())
    end
    return c
  end
  local function fail(what)
    io.stderr:write("percall: ", tostring(what), "\n")
    os.exit(1)
  end
  return function()
    conn = conn or connect()
    local _, err = conn:send(request)
    if err then fail(err) end
    local line, status, length, close
    line, err = conn:receive("*l")
    if not line then fail(err) end
    status = tonumber(line:match("^HTTP/1%.[01] (%d%d%d)"))
    repeat
      line, err = conn:receive("*l")
      if not line then fail(err) end
      local name, value = line:match("^([^:]+):%s*(.-)%s*$")
      if name then
        name = name:lower()
        if name == "content-length" then length = tonumber(value)
        elseif name == "connection" and value:lower() == "close" then close = true end
      end
    until line == ""
    if status ~= 200 or not length then fail("status " .. tostring(status)) end
    local body
    body, err = conn:receive(length)
    if not body then fail(err) end
    if close then
      conn:close()
      conn = nil
    end
    check(body)
  end
end

contenders["curl-cli"] = function()
  local cmd = ("curl -sS --fail %s -H 'Authorization: %s' '%s'"):format(
    https and ("--cacert '" .. cafile .. "'") or "", auth, url)
  return function()
    local p = assert(io.popen(cmd))
    local body = p:read("*a")
    p:close()
    check(body)
  end
end

local setup = assert(contenders[mode], "unknown mode " .. tostring(mode))
local call = setup()
call() -- warm: connection, TLS session, token
local t0 = socket.gettime()
for _ = 1, n do call() end
print(n, socket.gettime() - t0)
