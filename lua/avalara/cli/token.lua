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
    { "expires at", info.expires_at and info.expires_at .. " (in " .. info.expires_in .. " s)" or "no expiry" },
    { "source", info.source }, { "store", tostring(client.store) },
    { "account", info.account_id }, { "environment", info.environment }, { "token url", info.token_url },
    { "access token", info.access_token },
  })
end

return M
