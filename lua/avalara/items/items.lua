--- The items of the company's catalog (AvaTax `ItemModel`s): create, list,
-- read, update, delete. Functions of a client (`avalara.items` makes them
-- `client.items:create(...)` and the flat `client:create_items(...)`).
-- @module avalara.items.items
local args = require "avalara.items.args"
local model = require "avalara.items.model"
local api = require "avalara.items.api"
local paging = require "avalara.paging"

local M = {}

--- Items per create request by default (Avalara recommends "upto 50").
M.CREATE_CHUNK = 50

--- The list options of the items list, beyond filter, top, skip and order_by:
-- option -> name on the wire.
M.LIST_OPTIONS = { include = "%24include", hs_code_classification_status = "hsCodeClassificationStatus",
  hs_code_exists_in_countries = "hsCodeExistsInCountries",
  hs_code_does_not_exist_in_countries = "hsCodeDoesNotExistsInCountries" }
local LIST = M.LIST_OPTIONS

--- Creates items in the company's catalog, in requests of `opts.chunk`
-- items (default 50, at most 500). Every item is checked first (`items.body`):
-- an invalid one raises naming its index and field, before any request.
-- An item code the catalog already has fails its request (`DuplicateEntry`).
-- @param client an `avalara.Client`
-- @tparam table new_items the items (`{itemCode, description, ...}`)
-- @tparam[opt] table opts `{chunk = 50}`
-- @return the created `ItemModel`s (with their `id`s) in order, or nil, err; `err.created`
-- holds those created by the requests before the one that failed
function M.create(client, new_items, opts)
  local where = "client:create_items"
  opts = args.opts(where, opts)
  if type(new_items) ~= "table" or new_items[1] == nil then
    args.fail(where, "'items' must be a non-empty list of items")
  end
  local chunk = args.chunk(where, opts, M.CREATE_CHUNK)
  local bodies = {}
  for i, it in ipairs(new_items) do
    local b, err = model.build(it)
    if not b then args.fail(where, "items[" .. i .. "]: " .. err) end
    bodies[i] = b
  end
  local co = client:company(where)
  local created = {}
  for first = 1, #bodies, chunk do
    local part = {}
    for i = first, math.min(#bodies, first + chunk - 1) do part[#part + 1] = bodies[i] end
    local models, err = api.call(client, "POST", "items", { companyId = co }, part)
    if not models then
      err.created = created
      return nil, err
    end
    for _, m in ipairs(models) do created[#created + 1] = m end
  end
  return created
end

--- The items of the company, every page (`@nextLink` followed).
-- @param client
-- @tparam[opt] table opts `{filter, top, skip, order_by, include}` (`include`: a list or a
-- comma-separated string of `Parameters`, `Classifications`, `HsCodeClassificationStatus`, ...),
-- and the HS filters `hs_code_classification_status` (a status value),
-- `hs_code_exists_in_countries` and `hs_code_does_not_exist_in_countries` (lists of countries;
-- sent as `hsCodeExistsInCountries` and `hsCodeDoesNotExistsInCountries`)
-- @return records, count (`@recordsetCount`), or nil, err
function M.list(client, opts)
  local where = "client:items"
  return api.list(client, where, "items", { companyId = client:company(where) }, opts, LIST)
end

--- The same list for a generic `for`, fetching pages as it goes: yields
-- each item; after a failure it yields `nil, err` once.
-- @param client
-- @tparam[opt] table opts as for `list`
-- @treturn function
function M.each_item(client, opts)
  local where = "client:each_item"
  return api.each(client, where, "items", { companyId = client:company(where) }, opts, LIST)
end

--- Reads an item.
-- @param client
-- @int id the item's id
-- @tparam[opt] table opts `{include}` as for `list`
-- @return the `ItemModel`, or nil, err
function M.item(client, id, opts)
  local where = "client:item"
  args.id(where, "id", id)
  local q, err = paging.query(opts, { include = LIST.include })
  if not q then args.fail(where, err) end
  return api.call(client, "GET", "item", { companyId = client:company(where), itemId = id }, nil, q)
end

--- Replaces an item's fields (checked as for `create`); its statuses
-- and classifications stay.
-- @param client
-- @int id
-- @tparam table item
-- @return the `ItemModel`, or nil, err
function M.update(client, id, item)
  local where = "client:update_item"
  args.id(where, "id", id)
  local b, err = model.build(item)
  if not b then args.fail(where, err) end
  b.id = id
  return api.call(client, "PUT", "item", { companyId = client:company(where), itemId = id }, b)
end

--- Deletes an item.
-- @param client
-- @int id
-- @return true, or nil, err
function M.delete(client, id)
  local where = "client:delete_item"
  args.id(where, "id", id)
  return api.done(client, "DELETE", "item", { companyId = client:company(where), itemId = id })
end

return M
