-- Shared by the client specs: a client on the local emulator.
local avalara = require "avalara"

local H = {}

H.ACCOUNT, H.KEY, H.COMPANY = "2000000001", "DEMO-LICENSE-KEY-0001", 1001
H.SBX_ACCOUNT, H.SBX_KEY, H.SBX_COMPANY = "2000000002", "DEMO-SANDBOX-KEY-0002", 1002

-- Product descriptions the emulator classifies.
H.WORDS = { "men's cotton t-shirt", "leather handbag", "stainless steel kitchen knife", "wooden chair",
  "laptop computer", "wool sweater", "rubber tyres for cars", "fresh apples" }

-- n items {itemCode = prefix .. i (default SKU-), description, countryOfDestination = "US"}.
function H.items(n, prefix)
  local out = {}
  for i = 1, n do
    out[i] = { itemCode = (prefix or "SKU-") .. i, description = H.WORDS[(i - 1) % #H.WORDS + 1],
      countryOfDestination = "US" }
  end
  return out
end

-- Fast retries so fault specs finish quickly.
H.FAST = { max_attempts = 4, base_delay = 0.01, max_delay = 0.05, deadline = 10 }

function H.client(e, opts)
  local o = { account_id = H.ACCOUNT, license_key = H.KEY, company_id = H.COMPANY,
    environment = "local", emulator_url = e.http_url, retries = H.FAST, timeout = 5 }
  for k, v in pairs(opts or {}) do o[k] = v end
  return avalara.new(o)
end

-- A client `transport` doing the exchange over LuaSocket (plain HTTP), so
-- a spec can watch or change what goes on the wire: `watch(req)` sees each
-- request before it is sent. It honours `req.timeout` (as LuaSocket's `http.TIMEOUT`).
function H.socket_transport(watch)
  local http = require "socket.http"
  local ltn12 = require "ltn12"
  return function(req)
    if watch then watch(req) end
    local chunks, headers = {}, {}
    for k, v in pairs(req.headers or {}) do headers[k:lower()] = v end
    if req.body then headers["content-length"] = tostring(#req.body) end
    local was = http.TIMEOUT
    http.TIMEOUT = req.timeout
    local ok, status, rheaders = http.request { url = req.url, method = req.method, headers = headers,
      source = req.body and ltn12.source.string(req.body) or nil, sink = ltn12.sink.table(chunks), redirect = false }
    http.TIMEOUT = was
    if not ok then return nil, { kind = status == "timeout" and "timeout" or "transport", message = tostring(status) } end
    return { status = status, headers = rheaders, body = table.concat(chunks) }
  end
end

function H.grants(e)
  local c = e:counters()
  return (c.grants.connect_token or {}).client_credentials or 0
end

function H.route(e, name)
  return e:counters().routes[name] or 0
end

-- A path for `name` in a fresh private folder (0700, as journals and file
-- stores require: never /tmp itself).
function H.private_path(name)
  local p = assert(io.popen("mktemp -d"))
  local dir = p:read("*l")
  p:close()
  assert(dir and dir ~= "", "mktemp -d failed")
  return dir .. "/" .. (name or "file")
end

return H
