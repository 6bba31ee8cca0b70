--- `hscode connections`: the user's connections, without secrets.
-- @module avalara.cli.connections
local json = require "avalara.cli.json"
local partner_cli = require "avalara.cli.partner"

local M = {}

--- What it does, for `hscode --help`.
M.summary = "list the connections"

--- The command's own options.
M.options = { json = {} }

--- The command's help.
M.help = [[
Usage: hscode connections [--json]

Lists the connections this partner keeps for you (hscode connect makes
them): id, status ("connected", or "reauthorize": connect it again with
hscode connect --id ID), flow, company, scope and when it was made. No
token is ever shown.

  --json               print them as JSON
]]

local function date(t)
  return t and os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) or "-"
end

--- Runs `hscode connections`.
-- @tparam table sys
-- @tparam table opts
-- @tparam table args
-- @tparam table cli the helpers of `avalara.cli`
function M.run(sys, opts, args, cli)
  if #args > 0 then cli.usage_error("connections takes no arguments", "connections") end
  local p = partner_cli.partner(sys, opts, cli)
  local list, err = p:connections()
  if not list then cli.request_failed("cannot read the connections", err) end
  if opts.json then
    sys.stdout:write(#list == 0 and "[]" or json.encode(list), "\n") -- an array, even empty
    return
  end
  if #list == 0 then
    sys.stderr:write("hscode: no connections (hscode connect makes one)\n")
    return
  end
  local fmt = "%-18s %-12s %-9s %-8s %-24s %s\n"
  sys.stdout:write(fmt:format("ID", "STATUS", "FLOW", "COMPANY", "SCOPE", "CREATED"))
  for _, c in ipairs(list) do
    sys.stdout:write(fmt:format(c.id, c.status, c.flow, c.company_id and tostring(c.company_id) or "-",
      tostring(c.scope), date(c.created_at)))
  end
end

return M
