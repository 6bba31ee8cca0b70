--- Premium classifications of an item (by its item code) under a tax
-- system. Functions of a client (`avalara.items` makes them
-- `client.items:premium_classification(...)` and the same flat names).
-- @module avalara.items.premium
local args = require "avalara.items.args"
local api = require "avalara.items.api"

local M = {}

--- The premium classification of an item (by its code) under a tax system.
-- @param client an `avalara.Client`
-- @string item_code encoded for the path as published (`A/B` as `A_-ava2f-_B`)
-- @string system_code such as `HTS` or `TARIC`
-- @tparam[opt] string country two letters: which country of a shared system
-- @return the `ItemPremiumClassificationOutputModel`, or nil, err
function M.premium_classification(client, item_code, system_code, country)
  local where = "client:premium_classification"
  args.text(where, "item_code", item_code)
  args.text(where, "system_code", system_code)
  local q = country ~= nil and "?country=" .. args.country(where, "country", country) or nil
  return api.call(client, "GET", "premium_classification", { companyId = client:company(where),
    itemCode = item_code, systemCode = system_code }, nil, q)
end

--- The premium classifications of an item (by its code), every page.
-- @param client
-- @string item_code
-- @tparam[opt] table opts `{filter, top, skip, order_by}`
-- @return records, count, or nil, err
function M.premium_classifications(client, item_code, opts)
  local where = "client:premium_classifications"
  args.text(where, "item_code", item_code)
  return api.list(client, where, "premium_classifications", { companyId = client:company(where),
    itemCode = item_code }, opts)
end

return M
