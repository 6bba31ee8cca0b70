--- The errors of partner integrations (`avalara.partner`): each an
-- `avalara.error` table (`core.error`), returned as `nil, err`.
--
-- - Errors the partner finds itself have their own `code` (`state_unknown`,
--   `connection_unknown`, `reauthorize`, ...), kind "oauth" unless said.
-- - Errors of a token endpoint keep the server's OAuth `error` as `code`
--   (as the core reported it); `oauth_detail` says what it means here, from
--   seed 003's table (`invalid_client_id`, `code_invalid`, ...; the code
--   itself when nothing finer is known).
-- - A store that cannot be read or written is kind "store", code
--   `store_failed`, retryable.
-- @module avalara.partner.error
local core = require "avalara.core"

local M = {}

--- A partner error (`avalara.error`): kind "oauth" unless given, not retryable unless given.
-- @string code
-- @string message
-- @tparam[opt] table extra more fields (kind, status, oauth_detail, error_description, ...)
-- @return nil, err
function M.fail(code, message, extra)
  local t = { kind = "oauth", code = code, message = message, retryable = false }
  for k, v in pairs(extra or {}) do t[k] = v end
  return nil, core.error(t)
end

--- The error of a store that cannot be read or written (kind "store", code "store_failed", retryable).
-- @param store the store (named in `err.store`)
-- @string what what was being done
-- @param err the store's error (a message or an error table)
-- @return nil, err
function M.store_failed(store, what, err)
  local text = type(err) == "table" and err.message or err
  return M.fail("store_failed", what .. ": " .. tostring(text), { kind = "store", retryable = true,
    store = tostring(store) })
end

--- The error of an unknown (never made, or disconnected) connection.
-- @string id
-- @return nil, err
function M.unknown(id)
  return M.fail("connection_unknown", "no connection '" .. tostring(id)
    .. "' (never made, or disconnected): connect it first")
end

--- An error of a token endpoint, given its `oauth_detail`: what the server's
-- `error` (`err.code`, kept) means here (seed 003's table: `invalid_client_id`,
-- `invalid_client_secret`, `code_missing`, `code_invalid`,
-- `refresh_token_missing`, else the code itself).
-- @param err an `avalara.error` (other kinds are returned as they are)
-- @string grant the exchange: "authorization_code", "refresh_token", "generate_token", "revoke"
-- @return err
function M.detail(err, grant)
  if type(err) ~= "table" or err.kind ~= "oauth" or err.oauth_detail then return err end
  local code, d = err.code, (err.error_description or err.message or ""):lower()
  local detail = code
  if code == "invalid_request" and d:find("client_id", 1, true) then detail = "invalid_client_id"
  elseif code == "invalid_request" and d:find("client_secret", 1, true) then detail = "invalid_client_secret"
  elseif code == "invalid_grant" and d:find("accessgrantid", 1, true) then detail = "code_missing"
  elseif code == "invalid_token" and d:find("refreshtoken", 1, true) then detail = "refresh_token_missing"
  elseif code == "invalid_grant" and grant == "authorization_code" then detail = "code_invalid"
  end
  err.oauth_detail = detail
  return err
end

return M
