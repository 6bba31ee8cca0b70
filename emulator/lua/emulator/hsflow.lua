-- The Items HS classification flow (docs/api-contracts.md sections 2.2, 2.3, 2.5
-- and 3.2 to 3.9): initiating classifications of items for destination
-- countries, their statuses (Pending, then Classified or
-- CannotBeClassified after `classification_delay`), the codes they assign
-- as item classifications (and premium classifications), dismissing and
-- deleting statuses, the SLA, verifying codes, and the status definitions.
--
-- A status comes due `classification_delay` seconds after its initiate:
-- the worker timers (emulator.jobs) resolve it then, with emulator.hs's
-- keyword score over the item's description and summary, and the codes
-- assigned are published to the webhooks (emulator.webhooks); a read of
-- the item after that moment resolves it at once if no timer has yet.
local util = require "emulator.util"
local conf = require "emulator.conf"
local auth = require "emulator.auth"
local errors = require "emulator.errors"
local body = require "emulator.body"
local hs = require "emulator.hs"
local countries = require "emulator.countries"
local catalog = require "emulator.catalog"
local itemmodel = require "emulator.itemmodel"
local jobs = require "emulator.jobs"
local webhooks = require "emulator.webhooks"

local M = {}

-- The status values (not published: the emulator's choice, README.md),
-- served by GET /api/v2/definitions/items/hscode-classification-status.
M.PENDING, M.CLASSIFIED, M.CANNOT, M.DISMISSED = "Pending", "Classified", "CannotBeClassified", "Dismissed"
M.STATUSES = {
  { name = M.PENDING, description = "Classification was requested and is in progress." },
  { name = M.CLASSIFIED, description = "An HS code was assigned: it is the item's classification for the country." },
  { name = M.CANNOT, description = "No HS code could be assigned from the item's details; details says why." },
  { name = M.DISMISSED, description = "The result was dismissed; the item keeps any code it was assigned." },
}

local function scopes() return conf.get().items_scopes end

-- ---------------------------------------------------------------- resolution

-- The classification of `doc` for (systemCode, country), created or
-- replaced ("one classification per tax system per country").
local function assign(doc, country, code, event, premium)
  local system_code, system_id = countries.system_code(country)
  doc.classifications = doc.classifications or {}
  local k
  for _, c in ipairs(doc.classifications) do
    if c.systemCode == system_code and c.country == country then k = c end
  end
  if not k then
    k = { id = catalog.next_id("classification") }
    doc.classifications[#doc.classifications + 1] = k
  end
  k.systemId, k.systemCode, k.country, k.productCode = system_id, system_code, country, code
  k.isPremium, k.classificationEvent = premium or false, event
  return k
end

-- The premium classification of `doc` for the country (created or replaced).
local function premium(doc, k, description, now)
  doc.premium = doc.premium or {}
  local p
  for _, q in ipairs(doc.premium) do
    if q.systemCode == k.systemCode and q.country == k.country then p = q end
  end
  if not p then
    p = { id = util.uuid() }
    doc.premium[#doc.premium + 1] = p
  end
  p.hsCode, p.systemCode, p.country, p.createdDate = k.productCode, k.systemCode, k.country, util.iso_date(now)
  p.justification = ("HS code %s (%s) matches the item's description %q."):format(k.productCode, description,
    doc.description)
end

-- Resolves the due Pending statuses of `doc` (changed in place). Returns
-- whether anything changed and the ItemClassificationOutputModels assigned.
local function resolve(doc, now)
  local changed, assigned = false, {}
  for _, s in ipairs(itemmodel.statuses(doc)) do -- by country: classification ids in a stable order
    if s.status == M.PENDING and s.due <= now then
      local text = doc.description .. (doc.summary and " " .. doc.summary or "")
      local match, why = hs.classify(text)
      local at = util.iso_date(now)
      if match then
        local k = assign(doc, s.country, match.hs_code, webhooks.EVENT, s.premium)
        if s.premium then premium(doc, k, match.description, now) end
        s.status, s.details = M.CLASSIFIED, ("HS code %s assigned under %s."):format(match.hs_code, k.systemCode)
        assigned[#assigned + 1] = itemmodel.classification_output(doc, k)
      else
        s.status, s.details = M.CANNOT, why or "Not enough details."
      end
      s.modifiedAt, s.completedAt, s.due, s.premium = at, at, nil, nil
      changed = true
    end
  end
  return changed, assigned
end

local function due(doc, now)
  for _, s in pairs(doc.statuses or {}) do
    if s.status == M.PENDING and s.due <= now then return true end
  end
  return false
end

-- The item as it is now: its due statuses resolved (and their codes
-- published) first. Returns the document, or nil when it is gone.
function M.settle(doc)
  if not doc or not due(doc, util.now()) then return doc end
  local assigned
  doc, assigned = catalog.update(doc.companyId, doc.id, function(d) return resolve(d, util.now()) end)
  if doc and assigned then webhooks.publish(doc, assigned) end
  return doc
end

jobs.on("resolve", function(job)
  M.settle(catalog.get(job.company, job.itemId))
end)

-- ---------------------------------------------------------------- initiate

local function failure(item_id, code, args, target)
  local d = errors.detail(code, args)
  return { itemId = type(item_id) == "number" and item_id or nil,
    errors = { { code = code, message = d.message .. " " .. d.description, target = target, faultCode = "Client" } } }
end

-- One element of the request: {item, countries, premium} or nil, failure.
local function read_request(ctx, el, index, seen)
  local at = "[" .. index .. "]"
  if type(el) ~= "table" or el[1] ~= nil then
    return nil, failure(nil, "ValidationException", { "Each element must be an ItemHSCodeClassificationInputModel." },
      at)
  end
  local id = el.itemId
  if body.blank(id) then return nil, failure(nil, "ValueRequiredError", { "itemId" }, at .. ".itemId") end
  if type(id) ~= "number" or id ~= math.floor(id) then
    return nil, failure(nil, "ValidationException", { "Field itemId must be an integer." }, at .. ".itemId")
  end
  if type(el.isCompliance) ~= "boolean" then
    return nil, failure(id, "ValueRequiredError", { "isCompliance" }, at .. ".isCompliance")
  end
  local list = el.countryOfDestinations
  if type(list) ~= "table" or list[1] == nil then
    return nil, failure(id, "ValueRequiredError", { "countryOfDestinations" }, at .. ".countryOfDestinations")
  end
  local wanted, order = {}, {}
  for i, c in ipairs(list) do
    local code = itemmodel.country(c)
    if not code then
      return nil, failure(id, "InvalidCountry", { tostring(c) }, at .. ".countryOfDestinations[" .. (i - 1) .. "]")
    end
    if not wanted[code] then wanted[code] = true; order[#order + 1] = code end
  end
  if seen[id] then return nil, failure(id, "DuplicateEntry", { "item", id }, at .. ".itemId") end
  seen[id] = true
  local doc = M.settle(catalog.get(ctx.company, id))
  if not doc then return nil, failure(id, "EntityNotFoundError", { "Item", id, "id" }, at .. ".itemId") end
  for _, code in ipairs(order) do
    local s = doc.statuses and doc.statuses[code]
    if s and s.status == M.PENDING then
      return nil, failure(id, "RequestAlreadyInProgress", { id, code }, at .. ".countryOfDestinations")
    end
  end
  return { item = id, countries = order, premium = el.isPremiumClassification == true }
end

-- POST /api/v2/companies/{companyId}/items/$initiate-hscode-classification:
-- ItemHSCodeClassificationOutputModel {total, failed}. An element that
-- fails starts nothing for its item; the others start. Every item and
-- country started is one classification of the sandbox quota, taken for
-- the whole request or refused (429) before anything starts.
function M.initiate(ctx)
  local rec = auth.company(ctx, scopes())
  if not rec then return end
  local doc = body.json()
  if doc == nil then return end
  if not body.is_array(doc) then
    return errors.send(400, "ModelRequiredException", { args = { "an array of ItemHSCodeClassificationInputModel" },
      target = "HttpRequest" })
  end
  if #doc == 0 then return errors.send(400, "NoItemsForClassification", { target = "HttpRequest" }) end
  local max = conf.get().items_max_per_request
  if #doc > max then
    return errors.send(400, "EntityLimitExceeded", { args = { "items", max }, target = "HttpRequest" })
  end
  local requests, failed, seen, pairs_count = {}, {}, {}, 0
  for i, el in ipairs(doc) do
    local r, f = read_request(ctx, el, i - 1, seen)
    if r then
      requests[#requests + 1] = r
      pairs_count = pairs_count + #r.countries
    else
      failed[#failed + 1] = f
    end
  end
  if not auth.quota(rec, pairs_count) then return end
  local now = util.now()
  local due_at = now + conf.get().classification_delay
  for _, r in ipairs(requests) do
    catalog.update(ctx.company, r.item, function(d)
      d.statuses = d.statuses or {}
      for _, country in ipairs(r.countries) do
        d.statuses[country] = { id = util.uuid(), country = country, status = M.PENDING,
          createdAt = util.iso_date(now), modifiedAt = util.iso_date(now), due = due_at, premium = r.premium }
      end
      return true
    end)
    jobs.push("resolve", { company = ctx.company, itemId = r.item }, due_at)
  end
  return util.json(200, { total = #doc, failed = util.list(failed) })
end

-- ---------------------------------------------------------------- statuses

-- The item of the path ({itemId}, the second capture), resolved; or nil (404 sent).
function M.load(ctx)
  local doc = M.settle(catalog.get(ctx.company, tonumber(ctx.captures[2])))
  if not doc then errors.not_found("Item", ctx.captures[2], "id") end
  return doc
end
local load_item = M.load

-- PUT …/items/{itemId}/hscode-classifications-status/$dismiss?country=XX:
-- the status becomes Dismissed (a Pending one cannot be dismissed).
function M.dismiss(ctx)
  if not auth.company(ctx, scopes()) then return end
  local doc = load_item(ctx)
  if not doc then return end
  local raw = ngx.req.get_uri_args(100).country
  if type(raw) == "table" then raw = raw[1] end
  if body.blank(raw) or raw == true then
    return errors.send(400, "ValueRequiredError", { args = { "country" }, target = "HttpRequest" })
  end
  local country = itemmodel.country(raw)
  if not country then return errors.send(400, "InvalidCountry", { args = { raw }, target = "IncorrectData" }) end
  local refused
  doc = catalog.update(ctx.company, doc.id, function(d)
    local s = d.statuses and d.statuses[country]
    if not s then refused = "missing"; return false end
    if s.status == M.PENDING then refused = "pending"; return false end
    if s.status == M.DISMISSED then return false end
    s.status, s.modifiedAt = M.DISMISSED, util.iso_date(util.now())
    return true
  end)
  if not doc then return load_item(ctx) end
  if refused == "missing" then
    return errors.not_found("HS code classification status", doc.id .. " " .. country, "item and country")
  elseif refused == "pending" then
    return errors.send(400, "InvalidHsCodeClassificationStatusOverride", { args = { M.PENDING, doc.id, country },
      target = "IncorrectData" })
  end
  return util.json(200, itemmodel.status_model(doc, doc.statuses[country]))
end

-- DELETE …/items/{itemId}/hscode-classifications-status/{id}: 204, no
-- body. Deleting a Pending status cancels its classification.
function M.delete_status(ctx)
  if not auth.company(ctx, scopes()) then return end
  local doc = load_item(ctx)
  if not doc then return end
  local id = ctx.captures[3]
  local found = false
  catalog.update(ctx.company, doc.id, function(d)
    for country, s in pairs(d.statuses or {}) do
      if s.id == id then d.statuses[country], found = nil, true end
    end
    return found
  end)
  if not found then
    return errors.not_found("HS code classification status", id, "id")
  end
  ngx.status = 204
  ngx.header["Content-Type"] = "application/json"
  return ngx.exit(204)
end

-- GET …/items/hscode-classification/$get-sla
function M.sla(ctx)
  if not auth.company(ctx, scopes()) then return end
  return util.json(200, { slaInHours = conf.get().hscode_sla_hours })
end

-- GET /api/v2/definitions/items/hscode-classification-status (a plain array)
function M.definitions()
  local rec = auth.require_token(scopes())
  if not rec or not auth.rate_limit(rec) then return end
  return util.json(200, M.STATUSES)
end

-- ---------------------------------------------------------------- verify

-- The problems of one verification row: a list of {code, args}.
local function row_problems(ctx, row, index, seen)
  if type(row) ~= "table" or row[1] ~= nil then
    return { { "ValidationException", { "Each element must be an ItemHSCodeVerificationInputModel." } } }
  end
  local out = {}
  local function add(code, args) out[#out + 1] = { code, args } end
  local id, country, code = row.itemId, row.country, row.hsCode
  local doc
  if body.blank(id) then add("ValueRequiredError", { "itemId" })
  elseif type(id) ~= "number" or id ~= math.floor(id) then
    add("ValidationException", { "Field itemId must be an integer." })
  else
    doc = M.settle(catalog.get(ctx.company, id))
    if not doc then add("EntityNotFoundError", { "Item", id, "id" }) end
  end
  local cc
  if body.blank(country) then add("ValueRequiredError", { "country" })
  else
    cc = itemmodel.country(country)
    if not cc then add("InvalidCountry", { tostring(country) }) end
  end
  if body.blank(code) then add("ValueRequiredError", { "hsCode" })
  elseif type(code) ~= "string" or not code:match("^%d+$") or #code < 6 or #code > 13 then
    add("InvalidHsCode", { tostring(code) })
  elseif not hs.lookup(code:sub(1, 6)) then
    add("CannotVerifyHSCode", { code, cc or tostring(country) })
  end
  if doc and cc then
    local s = doc.statuses and doc.statuses[cc]
    if s and s.status == M.PENDING then add("InvalidStatusForHSVerification", { doc.id, cc }) end
    local key = doc.id .. ":" .. cc
    if seen[key] then add("DuplicateSystemAndCountryForItem", { doc.id, cc }) end
    seen[key] = index
  end
  return out, doc, cc
end

-- POST …/items/hscodes/$verify: all or nothing. With every row valid each
-- code becomes the item's classification for its country (status
-- Classified) and is published to the webhooks; with any row failing,
-- nothing is kept and `failed` lists every failing row.
function M.verify(ctx)
  if not auth.company(ctx, scopes()) then return end
  local doc = body.json()
  if doc == nil then return end
  if not body.is_array(doc) or #doc == 0 then
    return errors.send(400, "ModelRequiredException", {
      args = { "a non-empty array of ItemHSCodeVerificationInputModel" }, target = "HttpRequest" })
  end
  local max = conf.get().items_max_per_request
  if #doc > max then
    return errors.send(400, "EntityLimitExceeded", { args = { "rows", max }, target = "HttpRequest" })
  end
  local failed, accepted, seen = {}, {}, {}
  for i, row in ipairs(doc) do
    local problems, item, country = row_problems(ctx, row, i - 1, seen)
    if #problems > 0 then
      local messages = {}
      for j, p in ipairs(problems) do
        local d = errors.detail(p[1], p[2])
        messages[j] = d.message .. " " .. d.description
      end
      local id = type(row) == "table" and row.itemId
      failed[#failed + 1] = { rowIndex = i - 1, itemId = id ~= nil and id ~= util.null and tostring(id) or nil,
        errors = messages, errorCode = problems[1][1] }
    else
      accepted[#accepted + 1] = { item = item.id, country = country, code = row.hsCode }
    end
  end
  if #failed == 0 then
    local by_item, order = {}, {}
    for _, a in ipairs(accepted) do
      if not by_item[a.item] then by_item[a.item] = {}; order[#order + 1] = a.item end
      table.insert(by_item[a.item], a)
    end
    for _, id in ipairs(order) do
      local item, assigned = catalog.update(ctx.company, id, function(d)
        local now, out = util.iso_date(util.now()), {}
        d.statuses = d.statuses or {}
        for _, a in ipairs(by_item[id]) do
          local k = assign(d, a.country, a.code, "HSCodeVerified", false)
          local s = d.statuses[a.country] or { id = util.uuid(), country = a.country, createdAt = now }
          s.status, s.details, s.modifiedAt, s.completedAt = M.CLASSIFIED, "HS code " .. a.code .. " verified.",
            now, now
          d.statuses[a.country] = s
          out[#out + 1] = itemmodel.classification_output(d, k)
        end
        return true, out
      end)
      if item then webhooks.publish(item, assigned) end
    end
  end
  return util.json(200, { total = #doc, failed = util.list(failed) })
end

return M
