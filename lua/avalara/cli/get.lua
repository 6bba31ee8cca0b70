--- `hscode get ID`: one classification by its id (`{companyId}-{itemCode}-{country}`).
-- @module avalara.cli.get
local common = require "avalara.cli.common"
local classify = require "avalara.cli.classify"

local M = {}

--- The command's name.
M.name = "get"
--- What it does, for `hscode --help`.
M.summary = "show a classification by its id"

--- The command's own options.
M.options = { { "wait", "SECONDS" }, { "json" } }

--- Its help text.
M.help = [[
Usage: hscode get ID [--wait SECONDS] [--json]

Shows a classification made earlier (by classify, batch or the library):
its HS code and description, status and item. ID is
{companyId}-{itemCode}-{country}, as in the id column of batch results.

  --wait SECONDS       poll while it is PENDING, for up to SECONDS
  --json               print the classification model as JSON

Example: hscode get 1001-TS-1-US
]]

--- Runs it.
function M.run(sys, opts, args)
  if #args ~= 1 then common.usage_error("get needs one classification id", "get") end
  local wait = common.positive_number(opts, "wait", "get")
  local client = common.make_client(sys, opts, true)
  local model, err
  if wait then model, err = client:wait(args[1], { timeout = wait })
  else model, err = client:classification(args[1]) end
  if not model then
    if err.status == 404 then common.fail(common.EXIT.failed, "no classification " .. args[1]) end
    common.request_failed("get failed", err, client)
  end
  if opts.json then return common.write_json(sys, model) end
  classify.show(sys, client, model)
end

return M
