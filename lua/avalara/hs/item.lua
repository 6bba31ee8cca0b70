--- Items for classification: checks them against the published 2019
-- `ItemModel` (docs/api-contracts.md section 8) and builds the create body, before
-- any request, with messages naming the field.
--
--    local item = require "avalara.hs.item"
--    local ok, why = item.check{ itemCode = "TS-1", description = "men's cotton t-shirt" }
--    local body = item.body({ itemCode = "TS-1", description = "men's cotton t-shirt" },
--                           { company_id = 1001, country = "US" })
--
-- An item is a flat table `{itemCode, description, summary?, itemGroup?,
-- parameters?, classificationParameters?, countryOfDestination? (or country),
-- companyId?}`, or a model-shaped `{countryOfDestination?, item = {...}}`
-- (such as a classification model read back). Only the published fields are
-- sent; other keys are ignored. `companyId` is the client's company;
-- `itemGroup`, required by the service, defaults to `opts.item_group` and
-- then to `item.DEFAULT_GROUP`.
-- (Was `avalara.item`, which still loads this.)
-- @module avalara.hs.item
local core = require "avalara.core"
local countries = require "avalara.country"

local M = {}

--- The `itemGroup` sent when neither the item nor the caller gives one: a
-- neutral category (the service requires one; a real category helps it).
M.DEFAULT_GROUP = "General merchandise"

--- Longest values, in characters (the 2019 model's `maxLength`).
M.LIMITS = { itemCode = 255, description = 255, itemGroup = 2000, parameter = 255 }

--- The names a parameter may have (the 2019 `ItemParameterModel.name` enum).
M.PARAMETER_NAMES = { "coo", "description", "image_url", "url", "material", "price", "weight", "height",
  "length", "width" }
local PARAMETER_SET = {}
for _, n in ipairs(M.PARAMETER_NAMES) do PARAMETER_SET[n] = true end

-- UTF-8 characters in s (bytes that do not continue a character).
local function length(s)
  return #s - select(2, s:gsub("[\128-\191]", ""))
end

--- Checks a text field: `value` when it is a string of at most `max`
-- characters (UTF-8), nil when it is absent and not required, else nil
-- and a message naming `field`.
-- @param value
-- @string field its name, for the message
-- @tparam[opt] number max the longest length, in characters
-- @tparam[opt] boolean required
-- @return the value, or nil (and a message)
function M.text(value, field, max, required)
  if value == nil or value == "" then
    if required then return nil, "'" .. field .. "' is required" end
    return nil
  end
  if type(value) ~= "string" then
    return nil, "'" .. field .. "' must be a string (got " .. type(value) .. ")"
  end
  -- a string of at most `max` bytes has at most `max` characters: counted only when longer
  if max and #value > max and length(value) > max then
    return nil, string.format("'%s' is longer than %d characters (%d)", field, max, length(value))
  end
  return value
end

local text = M.text

local function parameters(list, field)
  if list == nil then return nil end
  if type(list) ~= "table" then return nil, "'" .. field .. "' must be a list of {name, value, unit}" end
  local out = {}
  for i, p in ipairs(list) do
    local at = field .. "[" .. i .. "]"
    if type(p) ~= "table" then return nil, "'" .. at .. "' must be a table {name, value, unit}" end
    local name, err = text(p.name, at .. ".name", M.LIMITS.parameter, true)
    if err then return nil, err end
    if not PARAMETER_SET[name] then
      return nil, string.format("'%s.name' must be one of %s (got '%s')", at, table.concat(M.PARAMETER_NAMES, ", "),
        name)
    end
    local value = p.value
    if type(value) == "number" then value = string.format("%.14g", value) end
    value, err = text(value, at .. ".value", M.LIMITS.parameter, true)
    if err then return nil, err end
    local unit
    unit, err = text(p.unit, at .. ".unit", M.LIMITS.parameter, name == "price")
    if err then return nil, err .. (name == "price" and " (a price's unit is USD)" or "") end
    if name == "price" and unit ~= "USD" then
      return nil, "'" .. at .. ".unit' must be USD, the only currency the service takes (got '" .. unit .. "')"
    end
    out[i] = { name = name, value = value, unit = unit }
  end
  if next(list) ~= nil and #out == 0 then return nil, "'" .. field .. "' must be a list of {name, value, unit}" end
  if #out == 0 then return nil end
  return out
end

-- The item part and the country of a flat or model-shaped item.
local function split(it)
  if type(it.item) == "table" then return it.item, it.countryOfDestination end
  return it, it.countryOfDestination or it.country
end

-- The published ItemModel fields of `it`, checked: model, or nil, message.
local function item_model(it, group)
  local out, err = {}
  out.itemCode, err = text(it.itemCode, "itemCode", M.LIMITS.itemCode, true)
  if err then return nil, err end
  out.description, err = text(it.description, "description", M.LIMITS.description, true)
  if err then return nil, err end
  out.summary, err = text(it.summary, "summary", nil, false)
  if err then return nil, err end
  out.itemGroup, err = text(it.itemGroup or group or M.DEFAULT_GROUP, "itemGroup", M.LIMITS.itemGroup, true)
  if err then return nil, err end
  out.classificationParameters, err = parameters(it.classificationParameters, "classificationParameters")
  if err then return nil, err end
  out.parameters, err = parameters(it.parameters, "parameters")
  if err then return nil, err end
  return out
end

--- Whether a two-letter code is a country the service knows (ISO 3166-1
-- alpha-2, any case; `avalara.country.known`: a common mistake such as UK is not).
-- @string code
-- @return true or false; nil when the list is not installed (nothing to check against)
M.country_known = countries.known

-- What is wrong with a country of an item (`field` named), or nil.
local function country_problem(country, field)
  if type(country) ~= "string" or not country:match("^%a%a$") then
    return "'" .. field .. "' must be two letters, such as US (got '" .. tostring(country) .. "')"
  end
  local why = countries.problem(country)
  if why then return "'" .. field .. "': " .. why end
  return nil
end

-- What is wrong with an item (a message naming the field), or nil; else
-- nil, its model (with `group` for a missing itemGroup), its fields and country.
local function problem(it, group)
  if type(it) ~= "table" then return "an item must be a table (got " .. type(it) .. ")" end
  local fields, country = split(it)
  if type(fields) ~= "table" then return "'item' must be a table" end
  if country ~= nil then
    local why = country_problem(country, "countryOfDestination")
    if why then return why end
  end
  local model, err = item_model(fields, group)
  if err then return err end
  return nil, model, fields, country
end

--- Checks an item without building anything (no company or country needed).
-- @tparam table it an item
-- @return true, or nil, err: kind "input", its message naming the field, `field` the field's
-- name when there is one (such as `description` or `parameters[1].value`)
function M.check(it)
  local why = problem(it)
  if not why then return true end
  return nil, core.error { kind = "input", message = why, field = why:match("^'([^']+)'"), retryable = false }
end

-- The prefix of a message of `body` ("where: " or "where: items[index]: "), made only for a message.
local function where_of(opts)
  local where = opts.where or "avalara.item"
  if opts.index then where = where .. ": items[" .. opts.index .. "]" end
  return where .. ": "
end

-- The last country that passed the checks: a batch gives every item the same one.
local checked_country

--- Builds the create body (an `HSClassificationModel`) of an item.
-- Raises, naming the field (and `opts.where`, and `items[opts.index]` for an item of a list), when
-- the item is not valid.
-- @tparam table it an item
-- @tparam table opts `{company_id, country (when the item has none), item_group, where, index}`
-- @treturn table `{countryOfDestination, item = {companyId, itemCode, description, itemGroup, ...}}`
function M.body(it, opts)
  -- the model is checked with the default group: a bad `opts.item_group` is named below, after the item
  local why, model, fields, country = problem(it)
  if why then error(where_of(opts) .. why, 3) end
  country = country or opts.country
  if country == nil then error(where_of(opts) .. "a country is required (countryOfDestination or opts.country)", 3) end
  if country ~= checked_country then
    if type(country) ~= "string" or not country:match("^%a%a$") then
      error(where_of(opts) .. "the country must be two letters, such as US (got '" .. tostring(country) .. "')", 3)
    end
    local unknown = countries.problem(country)
    if unknown then error(where_of(opts) .. unknown, 3) end
    checked_country = country
  end
  if fields.companyId ~= nil and tonumber(fields.companyId) ~= opts.company_id then
    error(where_of(opts) .. "'companyId' " .. tostring(fields.companyId) .. " is not the client's company "
      .. tostring(opts.company_id), 3)
  end
  if not fields.itemGroup and opts.item_group ~= nil then
    local group, err = text(opts.item_group, "itemGroup", M.LIMITS.itemGroup, true)
    if err then error(where_of(opts) .. err, 3) end
    model.itemGroup = group
  end
  model.companyId = opts.company_id
  return { countryOfDestination = country:upper(), item = model }
end

return M
