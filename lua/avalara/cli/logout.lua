--- `hscode logout`: revokes the access token of `hscode login` at Avalara
-- Identity (RFC 7009) and removes it from the token store.
-- @module avalara.cli.logout
local core = require "avalara.core"
local login = require "avalara.cli.login"

local M = {}

--- What it does, for `hscode --help`.
M.summary = "revoke the login of hscode login and forget it"

--- The command's own options.
M.options = { force = {} }

--- The command's help.
M.help = [[
Usage: hscode logout [--force] [options]

Revokes the access token hscode login kept for the environment (--env) at
Avalara Identity and removes it from the token store. Without a login, says
so and succeeds.

  --force              remove it even when the revocation fails
]]

--- Runs `hscode logout`.
-- @tparam table sys
-- @tparam table opts
-- @tparam table args
-- @tparam table cli the helpers of `avalara.cli`
function M.run(sys, opts, args, cli)
  if #args > 0 then cli.usage_error("logout takes no arguments", "logout") end
  local environment = opts.env or cli.getenv(sys, "AVALARA_ENVIRONMENT") or "production"
  if not require("avalara").environments[environment] then
    cli.fail(opts.env and cli.EXIT.usage or cli.EXIT.config, "unknown environment '" .. environment
      .. "' (production, sandbox or local)")
  end
  local token_url = login.token_url(environment, opts.emulator_url or cli.getenv(sys, "AVALARA_EMULATOR_URL")
    or cli.DEFAULT_EMULATOR_URL)
  local store = sys.store()
  local key = login.key(token_url)
  local rec, _, gerr = store:get(key)
  if gerr then cli.fail(cli.EXIT.config, "cannot read the token store: " .. tostring(gerr)) end
  if type(rec) ~= "table" or type(rec.access_token) ~= "string" then
    sys.stderr:write("hscode: not signed in (", environment, "): nothing to do\n")
    return
  end
  local can_revoke = not rec.confidential or opts.client_secret ~= nil
  if not can_revoke and not opts.force then
    cli.fail(cli.EXIT.config, "this login's client is confidential: give its secret (--client-secret-file FILE) "
      .. "to revoke it, or --force to forget it unrevoked")
  end
  local ok, err = false, "its client's secret was not given"
  if can_revoke then
    ok, err = core.revoke { url = (token_url:gsub("/connect/token$", "/connect/revocation")),
      client_id = rec.client_id, client_secret = rec.confidential and opts.client_secret or nil,
      token = rec.access_token, token_type_hint = "access_token",
      cafile = opts.cafile or cli.getenv(sys, "AVALARA_CAFILE"), timeout = cli.positive_number(opts, "timeout") }
  end
  if not ok and not opts.force then cli.request_failed("cannot revoke the login (--force forgets it anyway)", err) end
  local deleted, derr = store:delete(key)
  if not deleted then cli.fail(cli.EXIT.config, "cannot remove the login: " .. tostring(derr)) end
  if not ok then sys.stderr:write("hscode: warning: not revoked (", tostring(err), "); forgotten\n") end
  sys.stdout:write("signed out   ", environment, "\n")
end

return M
