-- Shared by the client specs: a client on the local emulator.
local avalara = require "avalara"

local H = {}

H.ACCOUNT, H.KEY, H.COMPANY = "2000000001", "DEMO-LICENSE-KEY-0001", 1001
H.SBX_ACCOUNT, H.SBX_KEY, H.SBX_COMPANY = "2000000002", "DEMO-SANDBOX-KEY-0002", 1002

-- Fast retries so fault specs finish quickly.
H.FAST = { max_attempts = 4, base_delay = 0.01, max_delay = 0.05, deadline = 10 }

function H.client(e, opts)
  local o = { account_id = H.ACCOUNT, license_key = H.KEY, company_id = H.COMPANY,
    environment = "local", emulator_url = e.http_url, retries = H.FAST, timeout = 5 }
  for k, v in pairs(opts or {}) do o[k] = v end
  return avalara.new(o)
end

function H.grants(e)
  local c = e:counters()
  return (c.grants.connect_token or {}).client_credentials or 0
end

function H.route(e, name)
  return e:counters().routes[name] or 0
end

return H
