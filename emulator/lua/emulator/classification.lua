-- HS classification requests, the 2019 Item Classification v2 routes
-- (docs/api-contracts.md sections 2.8 and 8): create (201, PENDING), get and
-- update. The id is {companyId}-{itemCode}-{country}, so creating the same
-- item for the same country again replaces the earlier request (and costs
-- no more quota). A request resolves lazily on read once
-- `classification_delay` has passed, with hs.classify's deterministic
-- keyword score over the nomenclature.
local util = require "emulator.util"
local conf = require "emulator.conf"
local auth = require "emulator.auth"
local errors = require "emulator.errors"
local hs = require "emulator.hs"
local body = require "emulator.body"
local countries = require "emulator.countries"

local store = ngx.shared.emu_classifications

local M = {}

-- ItemParameterModel.name (SW19 enum) and the only currency `price` takes.
local PARAMETER_NAMES = { "coo", "description", "image_url", "url", "material", "price", "weight", "height",
  "length", "width" }
local PARAMETER_SET = {}
for _, n in ipairs(PARAMETER_NAMES) do PARAMETER_SET[n] = true end
local PARAMETER_MAX = 255

local blank = body.blank

local function parameters(c, list, field)
  if blank(list) then return nil end
  if type(list) ~= "table" or (next(list) ~= nil and list[1] == nil) then
    c.add("ValidationException", { "Field " .. field .. " must be an array of ItemParameterModel." }, field)
    return nil
  end
  local out = {}
  for i, p in ipairs(list) do
    local at = field .. "[" .. i .. "]"
    if type(p) ~= "table" or p[1] ~= nil then
      c.add("ValidationException", { "Field " .. at .. " must be an ItemParameterModel object." }, at)
    else
      local name = c.string(p.name, at .. ".name", PARAMETER_MAX, true)
      if name and not PARAMETER_SET[name] then
        c.add("InvalidEnumValue", { at .. ".name", name, table.concat(PARAMETER_NAMES, ", ") }, at .. ".name")
        name = nil
      end
      local value = c.string(p.value, at .. ".value", PARAMETER_MAX, true)
      local unit = c.string(p.unit, at .. ".unit", PARAMETER_MAX, name == "price")
      if name == "price" and unit and unit ~= "USD" then
        c.add("InvalidEnumValue", { at .. ".unit", unit, "USD" }, at .. ".unit")
      end
      out[i] = { name = p.name, value = value, unit = p.unit ~= util.null and p.unit or nil }
    end
  end
  return out
end

-- The published fields of an ItemModel (2019), checked; unknown fields are
-- dropped and read-only ones (id, createdDate) ignored.
local function item_model(c, item, company)
  if type(item) ~= "table" or item[1] ~= nil then
    c.add("ValueRequiredError", { "item" }, "item")
    return nil
  end
  local cfg = conf.get()
  if blank(item.companyId) then
    c.add("ValueRequiredError", { "item.companyId" }, "item.companyId")
  elseif type(item.companyId) ~= "number" then
    c.add("ValidationException", { "Field item.companyId must be an integer." }, "item.companyId")
  elseif item.companyId ~= company then
    c.add("IncorrectValueForField", { "item.companyId", "item.companyId must be the company of the path, "
      .. company .. "." }, "item.companyId")
  end
  return {
    companyId = company,
    itemCode = c.string(item.itemCode, "item.itemCode", cfg.max_item_code_length, true),
    description = c.string(item.description, "item.description", cfg.max_description_length, true),
    summary = c.string(item.summary, "item.summary", nil, false),
    itemGroup = c.string(item.itemGroup, "item.itemGroup", cfg.max_item_group_length, true),
    classificationParameters = parameters(c, item.classificationParameters, "item.classificationParameters"),
    parameters = parameters(c, item.parameters, "item.parameters"),
  }
end

-- The checked HSClassificationModel of the request body, or nil after
-- sending 415, 400 or 422.
local function read_model(ctx)
  local doc = body.json()
  if doc == nil then return nil end
  local c = body.checker()
  if not body.is_object(doc) then
    c.add("ValidationException", { "The request body must be an HSClassificationModel object." }, "body")
    errors.send(422, "ValidationException", { details = c.details, target = "HttpRequest" })
    return nil
  end
  local country = c.string(doc.countryOfDestination, "countryOfDestination", nil, true)
  if country then
    local found = #country == 2 and countries.find(country)
    if found then
      country = found.code
    else
      c.add("InvalidCountry", { country }, "countryOfDestination")
    end
  end
  local item = item_model(c, doc.item, ctx.company)
  if c.send(422) then return nil end
  return { countryOfDestination = country, item = item }
end

local function save(model)
  local ok, err = store:set("k:" .. model.id, util.json_encode(model))
  if not ok then error("emulator: classification store full: " .. tostring(err)) end
end

-- The published HSClassificationModel: internal fields start with "_";
-- hsCodeDescription (no published model has it) only with `demo_extras`.
local function public(model)
  local out = util.public(model)
  if conf.get().demo_extras and model._hsCodeDescription then out.hsCodeDescription = model._hsCodeDescription end
  return out
end

local function resolve(model)
  if model.status ~= "PENDING" or util.now() < model._resolveAt then return model end
  local text = model.item.description or ""
  if type(model.item.summary) == "string" then text = text .. " " .. model.item.summary end
  local match, why = hs.classify(text)
  if match then
    model.status = "CLASSIFIED"
    model.hsCode = match.hs_code
    model._hsCodeDescription = match.description
  else
    model.status = "CANNOT_BE_CLASSIFIED"
    model.resolution = why or "Not enough details."
  end
  save(model)
  return model
end

-- Back to PENDING with a new item: the delay starts again.
local function submit(model, input)
  model.countryOfDestination = input.countryOfDestination
  model.item = input.item
  model.status = "PENDING"
  model.hsCode, model.resolution, model._hsCodeDescription = nil, nil, nil
  model._resolveAt = util.now() + conf.get().classification_delay
  return model
end

local authorize = auth.company

local function load(ctx)
  local id = util.decode_ava(ctx.captures[2])
  local raw = store:get("k:" .. id)
  local model = raw and util.json_decode(raw)
  if not model or model._companyId ~= ctx.company then
    errors.send(404, "EntityNotFoundError", { args = { "Classification Request", id, "id" }, target = "HttpRequest" })
    return nil
  end
  return model
end

local function id_of(company, input)
  return company .. "-" .. input.item.itemCode .. "-" .. input.countryOfDestination
end

-- The integer ItemModel.id of a company's item code: the same for every
-- request of that item (numbered in order of first use).
local function item_id(company, item_code)
  local key = "item:" .. company .. "\0" .. item_code
  local id = store:get(key)
  if id then return id end
  id = store:incr("item_seq", 1, 0)
  local ok = store:add(key, id)
  return ok and id or store:get(key)
end

-- POST /api/v2/companies/{companyId}/classifications/hs
function M.create(ctx)
  local rec = authorize(ctx)
  if not rec then return end
  local input = read_model(ctx)
  if not input then return end
  local id = id_of(ctx.company, input)
  local raw = store:get("k:" .. id)
  if not raw then
    -- A new classification: counted against the quota, then claimed (a
    -- concurrent create of the same id that won gives the unit back).
    if not auth.quota(rec) then return end
    local now = util.now()
    local fresh = { id = id, _companyId = ctx.company, _createdDate = util.iso_date(now) }
    if not store:add("k:" .. id, util.json_encode(fresh)) then auth.refund(rec) end
    raw = store:get("k:" .. id)
  end
  local model = util.json_decode(raw)
  input.item.id = item_id(ctx.company, input.item.itemCode)
  input.item.createdDate = model._createdDate
  save(submit(model, input))
  ngx.header["Location"] = ctx.path .. "/" .. util.percent_encode(id)
  return util.json(201, public(model))
end

-- GET …/classifications/hs/{id}
function M.get(ctx)
  if not authorize(ctx) then return end
  local model = load(ctx)
  if not model then return end
  return util.json(200, public(resolve(model)))
end

-- PUT …/classifications/hs/{id}: a new item description for the same
-- company, item code and country (the id is made of them), back to PENDING.
function M.put(ctx)
  if not authorize(ctx) then return end
  local model = load(ctx)
  if not model then return end
  local input = read_model(ctx)
  if not input then return end
  if id_of(ctx.company, input) ~= model.id then
    return errors.send(422, "IncorrectValueForField", { target = "HttpRequest", details = {
      errors.detail("IncorrectValueForField", { "item.itemCode", "The classification " .. model.id
        .. " is for its company, item code and country; create a classification for another item code"
        .. " or country." }, "item.itemCode") } })
  end
  input.item.id = model.item.id
  input.item.createdDate = model._createdDate
  save(submit(model, input))
  return util.json(200, public(model))
end

function M.reset()
  store:flush_all()
  store:flush_expired()
end

return M
