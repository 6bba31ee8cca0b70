-- The AvaTax v2 item models (docs/api-contracts.md sections 3.3 to 3.9): reading
-- an ItemModel from a request (checked, one ErrorDetail per failing field)
-- and the published shapes sent back, made from the catalog's documents
-- (emulator.catalog). Only published fields are sent; absent ones are left
-- out, not null.
local util = require "emulator.util"
local conf = require "emulator.conf"
local countries = require "emulator.countries"

local M = {}

-- The string fields of an ItemModel a request may set, and their longest
-- length (OA21's maxLength; nil = none published). itemCode's comes from
-- the config (items_max_item_code_length, 50 as published).
local STRINGS = {
  { "description", 255, true }, { "itemGroup", 50 }, { "category", 4000 }, { "taxCode", 25 },
  { "summary" }, { "upc" }, { "source" }, { "sourceEntityId" }, { "itemType" },
}

-- The values of `$include` (docs/api-contracts.md section 2.4), by their lower-case form.
M.INCLUDES = {}
for _, v in ipairs { "Parameters", "Classifications", "Tags", "Properties", "TaxCodeRecommendationStatus",
  "HsCodeClassificationStatus", "TaxCodeDetails" } do M.INCLUDES[v:lower()] = v end

-- A two-letter country of the ISO list (any case) upper-cased, or nil.
function M.country(value)
  if type(value) ~= "string" or #value ~= 2 then return nil end
  local found = countries.find(value)
  return found and found.code or nil
end

local function parameters(c, list, at)
  if util.null == list or list == nil then return nil end
  if type(list) ~= "table" or (next(list) ~= nil and list[1] == nil) then
    c.add("ValidationException", { "Field " .. at .. " must be an array of ItemParameterModel." }, at)
    return nil
  end
  local out = {}
  for i, p in ipairs(list) do
    local here = at .. "[" .. (i - 1) .. "]"
    if type(p) ~= "table" or p[1] ~= nil then
      c.add("ValidationException", { "Field " .. here .. " must be an ItemParameterModel object." }, here)
    else
      out[#out + 1] = { name = c.string(p.name, here .. ".name", nil, true),
        value = c.string(p.value, here .. ".value", nil, true), unit = c.string(p.unit, here .. ".unit") }
    end
  end
  return out
end

local function classifications(c, list, at)
  if util.null == list or list == nil then return nil end
  if type(list) ~= "table" or (next(list) ~= nil and list[1] == nil) then
    c.add("ValidationException", { "Field " .. at .. " must be an array of ClassificationModel." }, at)
    return nil
  end
  local out = {}
  for i, k in ipairs(list) do
    local here = at .. "[" .. (i - 1) .. "]"
    if type(k) ~= "table" or k[1] ~= nil then
      c.add("ValidationException", { "Field " .. here .. " must be a ClassificationModel object." }, here)
    else
      local country = c.string(k.country, here .. ".country")
      if country and not M.country(country) then c.add("InvalidCountry", { country }, here .. ".country") end
      out[#out + 1] = { productCode = c.string(k.productCode, here .. ".productCode", 25, true),
        systemCode = c.string(k.systemCode, here .. ".systemCode", 25), country = country and M.country(country) }
    end
  end
  return out
end

-- The fields of the ItemModel `value` (at `at`, "[3]" or "" for a single
-- one), checked with the checker `c` (emulator.body); read-only fields
-- (id, companyId, dates, users) are ignored, unknown ones dropped.
function M.read(c, value, at)
  if type(value) ~= "table" or value[1] ~= nil then
    c.add("ValidationException", { "Field " .. (at == "" and "body" or at) .. " must be an ItemModel object." },
      at == "" and "body" or at)
    return nil
  end
  local prefix = at == "" and "" or at .. "."
  local fields = { itemCode = c.string(value.itemCode, prefix .. "itemCode", conf.get().items_max_item_code_length,
    true) }
  for _, s in ipairs(STRINGS) do
    fields[s[1]] = c.string(value[s[1]], prefix .. s[1], s[2], s[3])
  end
  fields.parameters = parameters(c, value.parameters, prefix .. "parameters")
  fields.classifications = classifications(c, value.classifications, prefix .. "classifications")
  return fields
end

-- The wanted `$include` values of a request, as a set of lower-case names.
function M.includes(raw)
  local set = {}
  for part in tostring(raw or ""):gmatch("[^,]+") do
    local name = part:match("^%s*(.-)%s*$"):lower()
    if M.INCLUDES[name] then set[name] = true end
  end
  return set
end

-- ClassificationModel (in ItemModel.classifications).
local function classification_model(k)
  return { id = k.id, productCode = k.productCode, systemCode = k.systemCode, country = k.country,
    isPremium = k.isPremium }
end

-- ItemClassificationOutputModel.
function M.classification_output(doc, k)
  return { id = k.id, itemId = doc.id, systemId = k.systemId, productCode = k.productCode,
    systemCode = k.systemCode, country = k.country, isPremium = k.isPremium,
    classificationEvent = k.classificationEvent }
end

-- ItemHSCodeClassificationStatusModel (internal fields left out).
function M.status_model(doc, s)
  return { id = s.id, companyId = doc.companyId, itemId = doc.id, country = s.country, status = s.status,
    details = s.details, createdAt = s.createdAt, modifiedAt = s.modifiedAt, completedAt = s.completedAt }
end

-- The statuses of an item, by country code.
function M.statuses(doc)
  local list = {}
  for _, s in pairs(doc.statuses or {}) do list[#list + 1] = s end
  table.sort(list, function(a, b) return a.country < b.country end)
  return list
end

-- ItemPremiumClassificationOutputModel.
function M.premium_model(doc, p)
  return { id = p.id, itemCode = doc.itemCode, companyId = doc.companyId, hsCode = p.hsCode,
    systemCode = p.systemCode, justification = p.justification, createdDate = p.createdDate, country = p.country }
end

-- The published ItemModel of a catalog document, with what `include` (a set
-- from M.includes) asks for.
function M.public(doc, include)
  include = include or {}
  local out = { id = doc.id, companyId = doc.companyId, itemCode = doc.itemCode,
    createdDate = doc.createdDate, modifiedDate = doc.modifiedDate }
  for _, s in ipairs(STRINGS) do out[s[1]] = doc[s[1]] end
  if include.parameters then out.parameters = util.list(doc.parameters) end
  if include.classifications then
    local list = {}
    for i, k in ipairs(doc.classifications or {}) do list[i] = classification_model(k) end
    out.classifications = util.list(list)
  end
  if include.hscodeclassificationstatus then
    local list = {}
    for i, s in ipairs(M.statuses(doc)) do list[i] = M.status_model(doc, s) end
    out.hsCodeClassificationStatus = util.list(list)
  end
  return out
end

return M
