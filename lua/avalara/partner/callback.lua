--- The redirect back of an authorization (`partner:handle_callback`): its
-- parameters, and the error the customer's (or the server's) refusal is.
-- @module avalara.partner.callback
local core = require "avalara.core"
local errors = require "avalara.partner.error"

local M = {}

--- The callback's parameters from a query string (or a whole URL) or a table.
-- @param query a query string, a URL, or a table of parameters (raises on another type)
-- @return the parameters `{name = string}`, or nil and the name of a repeated parameter
function M.params(query)
  if type(query) == "string" then
    query = query:gsub("#.*$", "")
    if query:find("?", 1, true) then query = query:match("%?(.*)$") end
    return core.protocol.form_decode(query)
  end
  if type(query) ~= "table" then
    error("partner:handle_callback: 'query' must be a query string or a table (got " .. type(query) .. ")", 3)
  end
  local params = {}
  for k, v in pairs(query) do
    if type(v) == "table" then return nil, k end -- a repeated parameter
    params[k] = v ~= true and tostring(v) or ""
  end
  return params
end

--- What the callback's own `error` (RFC 6749 section 4.1.2.1) means, told in `err.message`.
M.MESSAGES = {
  access_denied = "the customer (or Avalara) refused the authorization",
  invalid_request = "the authorization request was refused as malformed",
  unauthorized_client = "this partner may not ask for authorizations (is its registration approved?)",
  unsupported_response_type = "the authorization server refused the response type",
  invalid_scope = "the authorization server refused the scope asked for",
  server_error = "the authorization server failed",
  temporarily_unavailable = "the authorization server is unavailable for now: try again later",
}

--- The error of a callback that carries an `error` (kind "oauth", code the callback's `error` when it is an
-- RFC 6749 code, else `authorization_failed`; its description in `err.error_description`).
-- @tparam table q the callback's parameters
-- @return nil, err
function M.refused(q)
  -- RFC 6749 error codes are short ASCII words; anything else is reported, not echoed as a code.
  local code = (#q.error <= 64 and q.error:match("^[%w_%-%.]+$")) and q.error or "authorization_failed"
  local text = M.MESSAGES[code] or "the authorization failed"
  local description = q.error_description and q.error_description:sub(1, 500)
  return errors.fail(code, description and (text .. ": " .. description) or text,
    { error_description = description, error_uri = q.error_uri })
end

return M
