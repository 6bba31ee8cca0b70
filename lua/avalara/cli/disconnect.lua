--- `hscode disconnect ID`: revokes a connection's authorization and forgets it.
-- @module avalara.cli.disconnect
local partner_cli = require "avalara.cli.partner"

local M = {}

--- What it does, for `hscode --help`.
M.summary = "revoke a connection and forget it"

--- The command's own options.
M.options = { force = {} }

--- The command's help.
M.help = [[
Usage: hscode disconnect ID [--force]

Revokes the connection's authorization at Avalara (its access and refresh
tokens stop working) and forgets it.

  --force              forget it even when the revocation fails
]]

--- Runs `hscode disconnect`.
-- @tparam table sys
-- @tparam table opts
-- @tparam table args
-- @tparam table cli the helpers of `avalara.cli`
function M.run(sys, opts, args, cli)
  if #args ~= 1 then cli.usage_error("disconnect needs one connection id (see hscode connections)", "disconnect") end
  local p = partner_cli.partner(sys, opts, cli)
  local ok, err = p:disconnect(args[1], { force = opts.force })
  if not ok then
    if err.code == "connection_unknown" then cli.fail(cli.EXIT.config, err.message .. " (see hscode connections)") end
    cli.request_failed("cannot disconnect " .. args[1], err)
  end
  sys.stdout:write("disconnected ", args[1], "\n")
end

return M
