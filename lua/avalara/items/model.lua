--- The AvaTax v2 `ItemModel` a create or update sends, checked field by
-- field before any request (the Items service's item; `avalara.hs.item` is
-- the HS classification's, another model).
-- @module avalara.items.model
local core = require "avalara.core"
local countries = require "avalara.country"
local item_model = require "avalara.hs.item"

local M = {}

local text = item_model.text

--- Longest values of an item, in characters (AvaTax v2 `ItemModel`, OA21's maxLength).
M.LIMITS = { itemCode = 50, description = 255, itemGroup = 50, category = 4000, taxCode = 25, productCode = 25,
  systemCode = 25 }

-- The string fields of an ItemModel a create or update sends.
local STRINGS = { "itemGroup", "category", "taxCode", "summary", "upc", "source", "sourceEntityId", "itemType" }

local function list_of(field, list, check)
  if list == nil then return nil end
  if type(list) ~= "table" then return nil, "'" .. field .. "' must be a list" end
  local out = {}
  for i, v in ipairs(list) do
    local at = field .. "[" .. i .. "]"
    if type(v) ~= "table" then return nil, "'" .. at .. "' must be a table" end
    local one, err = check(v, at)
    if not one then return nil, err end
    out[i] = one
  end
  return out
end

local function parameter(p, at)
  local out, err = {}
  out.name, err = text(p.name, at .. ".name", nil, true)
  if err then return nil, err end
  local value = p.value
  if type(value) == "number" then value = string.format("%.14g", value) end
  out.value, err = text(value, at .. ".value", nil, true)
  if err then return nil, err end
  out.unit, err = text(p.unit, at .. ".unit")
  if err then return nil, err end
  return out
end

local function classification(k, at)
  local out, err = {}
  out.productCode, err = text(k.productCode, at .. ".productCode", M.LIMITS.productCode, true)
  if err then return nil, err end
  out.systemCode, err = text(k.systemCode, at .. ".systemCode", M.LIMITS.systemCode)
  if err then return nil, err end
  if k.country ~= nil and (type(k.country) ~= "string" or not k.country:match("^%a%a$")) then
    return nil, "'" .. at .. ".country' must be two letters, such as US"
  end
  local unknown = k.country and countries.problem(k.country)
  if unknown then return nil, "'" .. at .. ".country': " .. unknown end
  out.country = k.country and k.country:upper()
  return out
end

--- Checks an item against the AvaTax v2 `ItemModel` and builds what a create
-- or update sends: `id` 0 (the service assigns it), `itemCode` and
-- `description` (required), `itemGroup`, `category`, `taxCode`, `summary`,
-- `upc`, `source`, `sourceEntityId`, `itemType`, `parameters` (`{name, value,
-- unit}`), `classifications` (`{productCode, systemCode, country}`); other keys
-- are not sent.
-- @tparam table it the item
-- @return the body, or nil, err: kind "input", its message naming the field, `field` its name
function M.body(it)
  local out, why = M.build(it)
  if not out then
    return nil, core.error { kind = "input", message = why, field = why:match("^'([^'%[%.]+)"), retryable = false }
  end
  return out
end

--- What `body` builds, or nil and a message naming the field (for a caller that raises it).
-- @tparam table it the item
-- @return the body, or nil, message
function M.build(it)
  if type(it) ~= "table" then return nil, "an item must be a table (got " .. type(it) .. ")" end
  local out, err = { id = 0 }
  out.itemCode, err = text(it.itemCode, "itemCode", M.LIMITS.itemCode, true)
  if err then return nil, err end
  out.description, err = text(it.description, "description", M.LIMITS.description, true)
  if err then return nil, err end
  for _, name in ipairs(STRINGS) do
    out[name], err = text(it[name], name, M.LIMITS[name])
    if err then return nil, err end
  end
  out.parameters, err = list_of("parameters", it.parameters, parameter)
  if err then return nil, err end
  out.classifications, err = list_of("classifications", it.classifications, classification)
  if err then return nil, err end
  return out
end

return M
