--- `hscode token`: gets (or reuses) an access token and shows what it is.
-- @module avalara.cli.token
local common = require "avalara.cli.common"

local M = {}

--- The command's name.
M.name = "token"
--- What it does, for `hscode --help`.
M.summary = "get an access token; show its type, scope and expiry"

--- The command's own options.
M.options = { { "show-secret" }, { "json" } }

--- Its help text.
M.help = [[
Usage: hscode token [--show-secret] [--json]

Gets an access token (or reuses the cached one) and shows its type, scope,
expiry and where it came from. The token itself is a secret: it is printed
only with --show-secret.

  --show-secret        print the access token too
  --json               print the same as JSON
]]

-- A token that outlives this (100 years: the 2012 endpoints' tokens say
-- 9999-12-31) does not expire in any sense that matters.
local FOREVER = 100 * 365 * 86400

--- The "expires at" line: `2026-01-01T10:00:00Z (in 3599 s)`, `... (in 3 h 12 min)` past an hour,
-- `9999-12-31T23:59:59Z (does not expire)` for a 2012 token, `... (expired 5 s ago)`, or "no expiry".
-- @tparam[opt] string at the expiry, ISO 8601
-- @tparam[opt] number s seconds left
-- @treturn string
function M.expiry(at, s)
  if not at or not s then return "no expiry" end
  local when
  if s >= FOREVER then when = "does not expire"
  elseif s < 0 then when = "expired " .. -s .. " s ago"
  elseif s < 3600 * 2 then when = "in " .. s .. " s"
  elseif s < 86400 * 2 then when = string.format("in %d h %d min", math.floor(s / 3600), math.floor(s % 3600 / 60))
  else when = string.format("in %d days", math.floor(s / 86400)) end
  return at .. " (" .. when .. ")"
end

--- Runs it.
function M.run(sys, opts, args)
  if #args > 0 then common.usage_error("token takes no arguments", "token") end
  local fresh = false
  local client = common.make_client(sys, opts, false, function() fresh = true end)
  local tok, err = client:token()
  if not tok then common.request_failed("cannot get an access token", err, client) end
  local expires_at = tok:expires_at()
  local info = {
    token_type = tok:token_type(), scope = tok:scope(), environment = client.environment,
    account_id = client.account_id, token_url = client.token_url,
    expires_at = expires_at and os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(expires_at)) or nil,
    expires_in = expires_at and math.floor(tok:expires_in()) or nil,
    source = fresh and "new" or "cached",
    access_token = opts.show_secret and tok:access_token() or nil,
  }
  if opts.json then return common.write_json(sys, info) end
  common.write_fields(sys, {
    { "type", info.token_type }, { "scope", info.scope },
    { "expires at", M.expiry(info.expires_at, info.expires_in) },
    { "source", info.source }, { "store", tostring(client.store) },
    { "account", info.account_id }, { "environment", info.environment }, { "token url", info.token_url },
    { "access token", info.access_token },
  })
end

return M
