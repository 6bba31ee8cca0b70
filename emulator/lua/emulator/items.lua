-- The AvaTax item routes (docs/api-contracts.md sections 2.3 to 2.5): creating
-- items (an array, all or none), reading, listing (FetchResult, with
-- `$filter`, `$orderBy`, paging, `$include` and the HS filters), updating
-- and deleting them; their item classifications; their premium
-- classifications, reached by item code (encoded as published: `_-ava2f-_`
-- for "/", ...). Every item read has its due classifications resolved
-- first (emulator.hsflow).
local util = require "emulator.util"
local conf = require "emulator.conf"
local auth = require "emulator.auth"
local errors = require "emulator.errors"
local body = require "emulator.body"
local query = require "emulator.query"
local fetch = require "emulator.fetch"
local catalog = require "emulator.catalog"
local itemmodel = require "emulator.itemmodel"
local hsflow = require "emulator.hsflow"

local M = {}

-- `$filter` / `$orderBy` fields of each list, and the ones each route
-- documents as not filterable (JS SDK L10500, L10641, L10687).
local ITEM_FIELDS = { id = "number", companyId = "number", itemCode = "string", description = "string",
  itemGroup = "string", category = "string", createdDate = "string", modifiedDate = "string" }
local ITEM_NOT_FILTERABLE = { "taxCode", "source", "sourceEntityId", "itemType", "upc", "summary", "classifications",
  "parameters", "customParameters", "tags", "properties", "itemStatus", "taxCodeRecommendationStatus",
  "taxCodeRecommendations", "taxCodeDetails", "hsCodeClassificationStatus", "image" }
local CLASSIFICATION_FIELDS = { id = "number", itemId = "number", systemId = "number" }
local CLASSIFICATION_NOT_FILTERABLE = { "productCode", "systemCode", "country", "IsPremium", "ClassificationEvent" }
local PREMIUM_FIELDS = { id = "string", itemCode = "string", companyId = "number", systemCode = "string",
  country = "string" }
local PREMIUM_NOT_FILTERABLE = { "HsCode", "justification", "createdDate", "createdUserId" }

local function guard(ctx)
  return auth.company(ctx, conf.get().items_scopes)
end

local function args()
  return query.args(ngx.req.get_uri_args(100))
end

local function item_not_found(id)
  return errors.not_found("Item", id, "id")
end

local load = hsflow.load

-- The item of an {itemCode} path segment: percent-decoded, then Avalara's tokens.
local function load_by_code(ctx)
  local code = util.decode_ava(ctx.captures[2])
  local doc = hsflow.settle(catalog.by_code(ctx.company, code))
  if not doc then errors.not_found("Item", code, "itemCode") end
  return doc
end

local function parsed_query(fields, not_filterable)
  local q, err = query.parse(ngx.req.get_uri_args(100), fields, not_filterable)
  if not q then errors.send(400, err.code, { args = err.args }) end
  return q
end

local function stamp(doc, fields, now)
  for k, v in pairs(fields) do doc[k] = v end
  doc.modifiedDate = now
end

-- The classifications given with an item (ClassificationModel) as item classifications.
local function given_classifications(fields)
  local list = fields.classifications
  fields.classifications = nil
  if not list then return nil end
  local out = {}
  for i, k in ipairs(list) do
    out[i] = { id = catalog.next_id("classification"), productCode = k.productCode, systemCode = k.systemCode,
      country = k.country, isPremium = false, classificationEvent = "ItemSaved" }
  end
  return out
end

-- POST /api/v2/companies/{companyId}/items: ItemModel[] -> ItemModel[] (200,
-- as OA21). Every item is checked first; one invalid or duplicate item
-- code fails the request and creates nothing.
function M.create(ctx)
  if not guard(ctx) then return end
  local doc = body.json()
  if doc == nil then return end
  if not body.is_array(doc) or #doc == 0 then
    return errors.send(400, "ModelRequiredException", { args = { "a non-empty array of ItemModel" },
      target = "HttpRequest" })
  end
  local max = conf.get().items_max_per_request
  if #doc > max then
    return errors.send(400, "EntityLimitExceeded", { args = { "items", max }, target = "HttpRequest" })
  end
  local c = body.checker()
  local inputs, codes = {}, {}
  for i, value in ipairs(doc) do
    local at = "[" .. (i - 1) .. "]"
    local fields = itemmodel.read(c, value, at)
    if fields and fields.itemCode then
      if codes[fields.itemCode] or catalog.by_code(ctx.company, fields.itemCode) then
        c.add("DuplicateEntry", { "itemCode", fields.itemCode }, at .. ".itemCode")
      end
      codes[fields.itemCode] = true
    end
    inputs[i] = fields
  end
  if c.send(400) then return end
  local now = util.iso_date(util.now())
  local docs = {}
  for i, fields in ipairs(inputs) do
    local item = { id = catalog.next_id("item"), companyId = ctx.company, createdDate = now }
    item.classifications = given_classifications(fields)
    stamp(item, fields, now)
    docs[i] = item
  end
  local ok, taken = catalog.claim(ctx.company, docs)
  if not ok then
    return errors.send(400, "DuplicateEntry", { target = "IncorrectData", details = { errors.detail("DuplicateEntry",
      { "itemCode", docs[taken].itemCode }, "[" .. (taken - 1) .. "].itemCode") } })
  end
  local out = {}
  for i, item in ipairs(docs) do out[i] = itemmodel.public(item) end
  return util.json(200, out)
end

-- Whether the item has an assigned code for the country.
local function has_code(doc, country)
  for _, k in ipairs(doc.classifications or {}) do
    if k.country == country and k.productCode then return true end
  end
  return false
end

local function country_list(raw)
  if raw == nil or raw == "" then return nil end
  local list = {}
  for part in tostring(raw):gmatch("[^,%s]+") do list[#list + 1] = part:upper() end
  return list
end

-- The HS filters of the list route: hsCodeClassificationStatus (an item
-- with a status of that value, any case), hsCodeExistsInCountries (a code
-- for every country listed) and hsCodeDoesNotExistsInCountries (no code
-- for at least one of them).
local function hs_filter(a)
  local status = a.hscodeclassificationstatus
  local exists, missing = country_list(a.hscodeexistsincountries), country_list(a.hscodedoesnotexistsincountries)
  return function(doc)
    if status and status ~= "" then
      local found = false
      for _, s in pairs(doc.statuses or {}) do
        if s.status:lower() == status:lower() then found = true end
      end
      if not found then return false end
    end
    for _, cc in ipairs(exists or {}) do
      if not has_code(doc, cc) then return false end
    end
    if missing then
      local lacks = false
      for _, cc in ipairs(missing) do
        if not has_code(doc, cc) then lacks = true end
      end
      if not lacks then return false end
    end
    return true
  end
end

-- GET /api/v2/companies/{companyId}/items: FetchResult<ItemModel>. The
-- query parameters the emulator does not model (tagName, itemStatus,
-- taxCodeRecommendationStatus) are accepted and change nothing.
function M.list(ctx)
  if not guard(ctx) then return end
  local q = parsed_query(ITEM_FIELDS, ITEM_NOT_FILTERABLE)
  if not q then return end
  local a = args()
  local keep, include = hs_filter(a), itemmodel.includes(a["$include"])
  local records = {}
  for _, doc in ipairs(catalog.all(ctx.company)) do
    doc = hsflow.settle(doc)
    if doc and keep(doc) then records[#records + 1] = itemmodel.public(doc, include) end
  end
  local page, count = query.run(q, records)
  local link = fetch.next_link("/api/v2/companies/" .. ctx.company .. "/items", q, #page, {
    { "%24include", a["$include"] }, { "hsCodeClassificationStatus", a.hscodeclassificationstatus },
    { "hsCodeExistsInCountries", a.hscodeexistsincountries },
    { "hsCodeDoesNotExistsInCountries", a.hscodedoesnotexistsincountries } })
  return fetch.send(page, count, link)
end

-- GET …/items/{id}[?$include=…]
function M.get(ctx)
  if not guard(ctx) then return end
  local doc = load(ctx)
  if not doc then return end
  return util.json(200, itemmodel.public(doc, itemmodel.includes(args()["$include"])))
end

-- PUT …/items/{id}: the item's fields replaced by the body's (a new item
-- code must be free); its statuses and classifications stay.
function M.update(ctx)
  if not guard(ctx) then return end
  local doc = load(ctx)
  if not doc then return end
  local value = body.json()
  if value == nil then return end
  local c = body.checker()
  local fields = itemmodel.read(c, value, "")
  if c.send(400) then return end
  local classifications = given_classifications(fields)
  local taken = false
  doc = catalog.update(ctx.company, doc.id, function(d)
    if not catalog.recode(d, fields.itemCode) then taken = true; return false end
    for _, k in ipairs { "itemGroup", "category", "taxCode", "summary", "upc", "source", "sourceEntityId",
      "itemType", "parameters" } do d[k] = nil end
    stamp(d, fields, util.iso_date(util.now()))
    if classifications then d.classifications = classifications end
    return true
  end)
  if not doc then return item_not_found(ctx.captures[2]) end
  if taken then
    return errors.send(400, "DuplicateEntry", { target = "IncorrectData", details = { errors.detail("DuplicateEntry",
      { "itemCode", fields.itemCode }, "itemCode") } })
  end
  return util.json(200, itemmodel.public(doc))
end

-- DELETE …/items/{id}: ObjectDeletedErrorModel[].
function M.delete(ctx)
  if not guard(ctx) then return end
  if not catalog.delete(ctx.company, tonumber(ctx.captures[2])) then return item_not_found(ctx.captures[2]) end
  return util.json(200, { errors.deleted() })
end

-- GET …/items/{itemId}/classifications: FetchResult<ItemClassificationOutputModel>.
function M.classifications(ctx)
  if not guard(ctx) then return end
  local doc = load(ctx)
  if not doc then return end
  local q = parsed_query(CLASSIFICATION_FIELDS, CLASSIFICATION_NOT_FILTERABLE)
  if not q then return end
  local records = {}
  for i, k in ipairs(doc.classifications or {}) do records[i] = itemmodel.classification_output(doc, k) end
  local page, count = query.run(q, records)
  return fetch.send(page, count, fetch.next_link("/api/v2/companies/" .. ctx.company .. "/items/" .. doc.id
    .. "/classifications", q, #page))
end

-- GET …/items/{itemId}/classifications/{id}
function M.classification(ctx)
  if not guard(ctx) then return end
  local doc = load(ctx)
  if not doc then return end
  local id = tonumber(ctx.captures[3])
  for _, k in ipairs(doc.classifications or {}) do
    if k.id == id then return util.json(200, itemmodel.classification_output(doc, k)) end
  end
  return errors.not_found("ItemClassification", ctx.captures[3], "id")
end

-- GET …/items/{itemCode}/premiumClassification/{systemCode}[?country=XX]:
-- the item's premium classification under that system (for that country
-- when given; a system shared by several countries needs it).
function M.premium(ctx)
  if not guard(ctx) then return end
  local doc = load_by_code(ctx)
  if not doc then return end
  local system, country = ctx.captures[3], args().country
  country = country and country ~= "" and country:upper() or nil
  for _, p in ipairs(doc.premium or {}) do
    if p.systemCode == system and (country == nil or p.country == country) then
      return util.json(200, itemmodel.premium_model(doc, p))
    end
  end
  return errors.not_found("ItemPremiumClassification", system .. (country and " " .. country or ""), "systemCode")
end

-- GET …/items/{itemCode}/premiumClassifications: FetchResult<ItemPremiumClassificationOutputModel>.
function M.premiums(ctx)
  if not guard(ctx) then return end
  local doc = load_by_code(ctx)
  if not doc then return end
  local q = parsed_query(PREMIUM_FIELDS, PREMIUM_NOT_FILTERABLE)
  if not q then return end
  local records = {}
  for i, p in ipairs(doc.premium or {}) do records[i] = itemmodel.premium_model(doc, p) end
  local page, count = query.run(q, records)
  return fetch.send(page, count, fetch.next_link("/api/v2/companies/" .. ctx.company .. "/items/"
    .. ctx.raw_captures[2] .. "/premiumClassifications", q, #page))
end

return M
