-- Tokens: the client caches one and renews it near expiry; hooks see every
-- token and every HTTP exchange, never a secret.
--
--   emulator/with -- lua5.4 examples/token.lua
local avalara = require "avalara"

local client = avalara.new{
  environment = os.getenv("AVALARA_ENVIRONMENT") or "local",
  account_id = os.getenv("AVALARA_ACCOUNT_ID") or "2000000001",
  license_key = os.getenv("AVALARA_LICENSE_KEY") or "DEMO-LICENSE-KEY-0001",
  leeway = 300,  -- renew when less than 5 minutes are left
  on_token = function(info)
    print(("on_token: %s token, scope %s, %.0f s left"):format(info.token_type, info.scope, info.expires_in))
  end,
  on_request = function(info)
    print(("on_request: %s %s -> %s in %.3f s (attempt %d)"):format(info.method, info.url,
      tostring(info.status or info.error_kind), info.duration, info.attempt))
  end,
}

local token = assert(client:token())
print(token)                          -- type, scope and expiry: no secret
assert(client:sections())             -- reuses the cached token
assert(client:token() ~= nil)         -- still cached: no second token request
