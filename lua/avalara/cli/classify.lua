--- `hscode classify DESCRIPTION --country CC`: one product, waited for.
-- @module avalara.cli.classify
local avalara = require "avalara"
local descriptions = require "avalara.hs.descriptions"
local digest = require "avalara.digest"
local common = require "avalara.cli.common"

local M = {}

--- The command's name.
M.name = "classify"
--- What it does, for `hscode --help`.
M.summary = "classify one product"

--- The command's own options: `{name, metavar}` (no metavar: a flag).
M.options = { { "country", "CC" }, { "item-code", "CODE" }, { "summary", "TEXT" }, { "item-group", "TEXT" },
  { "wait", "SECONDS" }, { "json" } }

--- Its help text.
M.help = [[
Usage: hscode classify DESCRIPTION --country CC [options]

Classifies one product and waits for the result (HS code and description).

  --country CC         country of destination, two letters (required)
  --item-code CODE     the item's code (default: hscode- and a digest of the
                       description, summary and group, so that different
                       products never share a classification)
  --summary TEXT       more details about the product
  --item-group TEXT    its category, such as "Clothing > Men > T-shirts"
                       (default "General merchandise")
  --wait SECONDS       how long to wait for the classification (default 60);
                       still PENDING then: exit 1, with its id (see hscode get)
  --json               print the classification model as JSON

Example: hscode classify "men's cotton t-shirt" --country US
]]

--- The item code of a product classified without `--item-code`: the
-- classification's id is `{company}-{itemCode}-{country}`, and creating the
-- same id again replaces it, so a fixed default would let two runs at once
-- (xargs -P, two cron jobs) each print the other's code. The same product
-- (description, summary, group) gets the same code, and so one
-- classification; another product never does.
-- @string description
-- @tparam[opt] string summary
-- @tparam[opt] string group
-- @treturn string `hscode-` and 16 characters
function M.default_item_code(description, summary, group)
  local of = digest.of(table.concat({ description, summary or "", group or "" }, "\0"))
  return "hscode-" .. of:gsub("[^%w]", ""):sub(1, 16):lower()
end

--- Runs it.
function M.run(sys, opts, args)
  local description = table.concat(args, " ")
  if not description:find("%S") then common.usage_error("classify needs a product description", "classify") end
  local country = common.country_option(opts, "classify", true)
  local wait = common.positive_number(opts, "wait", "classify") or 60
  local item = { itemCode = opts.item_code or M.default_item_code(description, opts.summary, opts.item_group),
    description = description, summary = opts.summary, itemGroup = opts.item_group }
  local ok, why = avalara.item.check(item)
  if not ok then common.usage_error(why.message, "classify") end
  local client = common.make_client(sys, opts, true)
  local model, err = client:classify(item, { country = country })
  if model then model, err = client:wait(model, { timeout = wait }) end
  if not model then common.request_failed("classification failed", err, client) end
  if opts.json then return common.write_json(sys, model) end
  M.show(sys, client, model)
end

--- Prints a classification model (and its code's description).
function M.show(sys, client, model)
  local country = model.countryOfDestination
  common.write_fields(sys, {
    { "product", model.item and model.item.description },
    { "hs code", model.hsCode or "-" },
    { "description", model.hsCode and country and (descriptions.new(client):get(country, model.hsCode)) },
    { "resolution", model.resolution }, { "status", model.status },
    { "country", country }, { "item code", model.item and model.item.itemCode },
    { "id", model.id },
  })
end

return M
