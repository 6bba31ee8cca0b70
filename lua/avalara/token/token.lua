--- What `client:token()` returns: an access token record with the core
-- token's reading methods. `tostring` shows type, scope and expiry only.
-- @module avalara.token.token
local clock = require "avalara.clock"
local os_date = os and os.date -- optional: a sandbox has no os

local M = {}

--- The access token.
-- @type Token
local Token = {}
Token.__index = Token
M.Token = Token

--- Wraps a token record `{access_token, token_type, scope, expires_at, obtained_at?}`.
-- @tparam table rec
-- @treturn Token
function M.wrap(rec) return setmetatable({ _rec = rec }, Token) end

--- The record a `Token` wraps (for the token modules; a secret).
-- @tparam Token tok
-- @treturn table
function M.record(tok) return tok._rec end

--- The access token (a secret).
function Token:access_token() return self._rec.access_token end
--- The token type ("Bearer").
function Token:token_type() return self._rec.token_type end
--- The granted scope.
function Token:scope() return self._rec.scope end
--- Expiry, epoch seconds, or nil.
function Token:expires_at() return self._rec.expires_at end
--- Seconds left, or nil.
function Token:expires_in()
  local e = self._rec.expires_at
  return e and math.max(0, e - clock.now()) or nil
end
--- Whether it expires within `leeway` seconds (default 0).
function Token:is_expired(leeway)
  local e = self._rec.expires_at
  return e ~= nil and e - (leeway or 0) <= clock.now()
end
--- The Authorization header value (a secret).
function Token:authorization() return "Bearer " .. self._rec.access_token end
Token.__tostring = function(self)
  local e = self._rec.expires_at
  return string.format("avalara token (%s, scope %s, %s)", tostring(self._rec.token_type),
    tostring(self._rec.scope), e and ("expires at " .. (os_date and os_date("!%Y-%m-%dT%H:%M:%SZ", math.floor(e))
      or string.format("%d s after the epoch", math.floor(e)))) or "no expiry")
end

return M
