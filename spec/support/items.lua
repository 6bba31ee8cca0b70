-- Shared by the Items specs: clients and raw requests on the emulator, a
-- webhook receiver process, and waiting for something to happen.
local avalara = require "avalara"
local cjson = require "cjson"
local socket = require "socket"
local emu = require "spec.support.emulator"
local hostile = require "spec.support.hostile"

local H = {}

H.ACCOUNT, H.KEY, H.COMPANY = "2000000001", "DEMO-LICENSE-KEY-0001", 1001
H.ITEMS = "/api/v2/companies/1001/items"
H.REGISTRATIONS = "/api/v2/connector-sync/companies/1001/registrations"

-- Fast retries so fault specs finish quickly.
H.FAST = { max_attempts = 4, base_delay = 0.01, max_delay = 0.05, deadline = 10 }

function H.client(e, opts)
  local o = { account_id = H.ACCOUNT, license_key = H.KEY, company_id = H.COMPANY, environment = "local",
    emulator_url = e.http_url, retries = H.FAST, timeout = 5 }
  for k, v in pairs(opts or {}) do o[k] = v end
  return avalara.new(o)
end

-- A request of the Items API with a token of `opts.scope` (default
-- avatax_api); opts as e:request's, `json` a body sent as JSON.
function H.api(e, method, path, opts)
  opts = opts or {}
  local headers = { authorization = "Bearer " .. (opts.token or e:token(opts.scope or "avatax_api")) }
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  local res = assert(e:request(method, path, { headers = headers, json = opts.json, body = opts.body }))
  return res
end

-- Creates items (a list of {itemCode, description, ...}); returns their models.
function H.create(e, items, token)
  local body = {}
  for i, it in ipairs(items) do
    body[i] = { id = 0 }
    for k, v in pairs(it) do body[i][k] = v end
  end
  local res = H.api(e, "POST", H.ITEMS, { json = body, token = token })
  assert(res.status == 200, res.body)
  return res.json
end

-- Initiates items for countries; returns the response.
function H.initiate(e, ids, countries, extra, token)
  local body = {}
  for i, id in ipairs(ids) do
    body[i] = { itemId = id, countryOfDestinations = countries, isCompliance = false }
    for k, v in pairs(extra or {}) do body[i][k] = v end
  end
  return H.api(e, "POST", H.ITEMS .. "/$initiate-hscode-classification", { json = body, token = token })
end

-- An emulator for a describe block:
--   local S = H.emulator(config)
--   setup(S.start); teardown(S.stop); before_each(S.reset)
-- S.e (the emulator), S.token (an avatax_api token of the demo account, new
-- each test), S.api(method, path, opts) (H.api with S.token unless
-- opts.token), S.create(items), S.initiate(ids, countries, extra). S.reset
-- resets it and applies `config`.
function H.emulator(config)
  local S = {}
  function S.start() S.e = emu.start() end
  function S.stop() S.e:stop() end
  function S.reset()
    S.e:reset()
    if config then S.e:configure(config) end
    S.token = S.e:token("avatax_api")
  end
  function S.api(method, path, opts)
    opts = opts or {}
    opts.token = opts.token or S.token
    return H.api(S.e, method, path, opts)
  end
  function S.create(items) return H.create(S.e, items, S.token) end
  function S.initiate(ids, countries, extra) return H.initiate(S.e, ids, countries, extra, S.token) end
  return S
end

-- Calls fn() until it returns a true value (returned) or `timeout` seconds pass (nil).
function H.eventually(fn, timeout)
  local deadline = socket.gettime() + (timeout or 10)
  while true do
    local v = fn()
    if v then return v end
    if socket.gettime() > deadline then return nil end
    socket.sleep(0.05)
  end
end

-- An id as digits (cjson decodes numbers as floats: 12.0 under Lua 5.4).
function H.id(v)
  return string.format("%d", v)
end

-- The counter of a route.
function H.route(e, name)
  return e:counters().routes[name] or 0
end

-- A webhook receiver process on loopback (spec/support/webhook_receiver.lua):
-- r.url, r:deliveries() -> {{path, headers, body, answered}...}, r:stop().
-- The first `fail_first` deliveries are answered 500.
function H.receiver(fail_first)
  local log = os.tmpname()
  local server = hostile.spawn("spec/support/webhook_receiver.lua", { log, tostring(fail_first or 0) })
  local r = { url = server.url .. "/hooks/avalara", pid = server.pid, log = log }
  function r.deliveries()
    local out = {}
    for line in io.lines(log) do out[#out + 1] = cjson.decode(line) end
    return out
  end
  function r.stop()
    server:stop()
    os.remove(log)
  end
  return r
end

H.emu = emu

return H
