-- One contender of the per-call benchmark: N sequential authenticated GETs
-- of one classification, each response decoded, over keep-alive where the
-- contender can. Prints "<calls> <seconds>"; exits non-zero on a bad answer.
--
--   lua5.4 bench/percall.lua client|core|luasocket URL TOKEN CAFILE N
--   lua5.1 bench/percall.lua luacurl   URL TOKEN CAFILE N      (Debian's lua-curl is 5.1/5.2 only)
--   lua5.4 bench/percall.lua curl-cli  URL TOKEN CAFILE N      (a curl process per call)
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

function contenders.core()
  local core = require "avalara.core"
  -- no headers table: the lua-curl contender has none either (and the client's reads ask for none)
  local args = { method = "GET", url = url, token = token, cafile = https and cafile or nil, response_headers = false }
  return function()
    local status, model = core.request(args)
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
