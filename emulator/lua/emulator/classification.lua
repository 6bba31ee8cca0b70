-- HS classification requests: create (201, PENDING), get and replace. A
-- request resolves lazily on read once `classification_delay` has passed,
-- with hs.classify's deterministic keyword score over the nomenclature.
local util = require "emulator.util"
local conf = require "emulator.conf"
local auth = require "emulator.auth"
local hs = require "emulator.hs"

local store = ngx.shared.emu_classifications

local M = {}

local function validation_error(details)
  return util.avatax_error(422, "ValidationException",
    "The classification request failed validation.", { target = "IncorrectData", details = details })
end

local function check_string(details, value, field, max, required)
  if value == nil or value == util.null or value == "" then
    if required then
      details[#details + 1] = util.detail("ValueRequiredError", "The field " .. field .. " is required.", field)
    end
  elseif type(value) ~= "string" then
    details[#details + 1] = util.detail("ValidationException", "The field " .. field .. " must be a string.", field)
  elseif #value > max then
    details[#details + 1] = util.detail("StringLengthError",
      "The field " .. field .. " must be at most " .. max .. " characters long.", field)
  end
end

-- Decoded and validated request body, or nil after sending 415/400/422.
local function read_model()
  if not util.is_json() then
    util.avatax_error(415, "UnsupportedMediaType", "The request body must be application/json.",
      { target = "HttpRequestHeaders" })
    return nil
  end
  local body = util.json_decode(util.body())
  if body == nil then
    util.avatax_error(400, "JsonFormatError", "The request body is not valid JSON.", { target = "HttpRequest" })
    return nil
  end
  if type(body) ~= "table" or body[1] ~= nil then
    validation_error({ util.detail("ValidationException", "The request body must be a JSON object.", "body") })
    return nil
  end
  local cfg = conf.get()
  local details = {}
  local country = body.countryOfDestination
  if country == nil or country == util.null or country == "" then
    details[#details + 1] = util.detail("ValueRequiredError",
      "The field countryOfDestination is required.", "countryOfDestination")
  elseif type(country) ~= "string" or not country:match("^%a%a$") then
    details[#details + 1] = util.detail("InvalidCountry",
      "The field countryOfDestination must be an ISO 3166-1 alpha-2 country code.", "countryOfDestination")
  end
  local item = body.item
  if type(item) ~= "table" or item[1] ~= nil then
    details[#details + 1] = util.detail("ValueRequiredError", "The field item is required.", "item")
  else
    check_string(details, item.itemCode, "item.itemCode", cfg.max_item_code_length, true)
    check_string(details, item.description, "item.description", cfg.max_description_length, true)
    check_string(details, item.summary, "item.summary", cfg.max_summary_length, false)
  end
  if #details > 0 then validation_error(details); return nil end
  return { countryOfDestination = country:upper(), item = item }
end

local function save(model)
  local ok, err = store:set("k:" .. model.id, util.json_encode(model))
  if not ok then error("emulator: classification store full: " .. tostring(err)) end
end

-- The public view: internal fields start with "_".
local function public(model)
  local out = {}
  for k, v in pairs(model) do
    if k:sub(1, 1) ~= "_" then out[k] = v end
  end
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
    model.hsCodeDescription = match.description
  else
    model.status = "CANNOT_BE_CLASSIFIED"
    model.resolution = why or "Not enough details."
  end
  model.modifiedDate = util.iso_date(util.now())
  save(model)
  return model
end

-- The token record when it may use the route's company, else nil (sent).
local function authorize(ctx)
  local rec = auth.require_token()
  if not rec then return nil end
  ctx.company = tonumber(ctx.captures[1])
  if not auth.can_use_company(rec, ctx.company) then
    util.avatax_error(403, "AuthorizationException",
      "The credentials do not give access to company " .. ctx.captures[1] .. ".", { target = "HttpRequest" })
    return nil
  end
  if not auth.rate_limit(rec) then return nil end
  return rec
end

local function load(ctx)
  local raw = store:get("k:" .. ctx.captures[2])
  local model = raw and util.json_decode(raw)
  if not model or model.companyId ~= ctx.company then
    util.avatax_error(404, "EntityNotFoundError",
      "Classification " .. ctx.captures[2] .. " was not found.", { target = "HttpRequest" })
    return nil
  end
  return model
end

-- POST /api/v2/companies/{companyId}/classifications/hs
function M.create(ctx)
  local rec = authorize(ctx)
  if not rec then return end
  local input = read_model()
  if not input then return end
  if not auth.quota(rec) then return end
  local now = util.now()
  local model = {
    id = util.uuid(),
    companyId = ctx.company,
    countryOfDestination = input.countryOfDestination,
    item = input.item,
    status = "PENDING",
    createdDate = util.iso_date(now),
    modifiedDate = util.iso_date(now),
    _resolveAt = now + conf.get().classification_delay,
  }
  save(model)
  ngx.header["Location"] = ngx.var.uri .. "/" .. model.id
  return util.json(201, public(model))
end

-- GET …/classifications/hs/{id}
function M.get(ctx)
  if not authorize(ctx) then return end
  local model = load(ctx)
  if not model then return end
  return util.json(200, public(resolve(model)))
end

-- PUT …/classifications/hs/{id}: replaces item and country, back to PENDING.
function M.put(ctx)
  if not authorize(ctx) then return end
  local model = load(ctx)
  if not model then return end
  local input = read_model()
  if not input then return end
  local now = util.now()
  model.countryOfDestination = input.countryOfDestination
  model.item = input.item
  model.status = "PENDING"
  model.hsCode, model.hsCodeDescription, model.resolution = nil, nil, nil
  model.modifiedDate = util.iso_date(now)
  model._resolveAt = now + conf.get().classification_delay
  save(model)
  return util.json(200, public(model))
end

function M.reset()
  store:flush_all()
  store:flush_expired()
end

return M
