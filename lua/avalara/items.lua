--- The AvaTax Items HS classification flow (docs/api-contracts.md sections 2.2 to
-- 2.7): items in the company's catalog, HS classification of items for
-- several destination countries at once, its statuses and SLA, verified
-- codes, item and premium classifications, and webhook registrations.
--
--    local ids = {}
--    for i, item in ipairs(assert(client:create_items{
--        { itemCode = "MUG-1", description = "porcelain coffee mug" },
--        { itemCode = "TS/2", description = "men's cotton t-shirt" } })) do ids[i] = item.id end
--    assert(client:initiate_hscode_classification(ids, { "US", "DE", "JP" }))
--    assert(client:wait_hscode_classification(ids, { "US", "DE", "JP" }))
--    for _, k in ipairs(assert(client:item_classifications(ids[1]))) do
--      print(k.country, k.systemCode, k.productCode)   --> US HTS 691110 ...
--    end
--
-- These routes live on AvaTax's REST API (`items_base`: `https://rest.avatax.com`,
-- sandbox `https://sandbox-rest.avatax.com`) and take a token of scope
-- `avatax_api` (`items_scope`): the methods run on a client of the same
-- account for that API and scope (its token cached in the same store; one
-- token for both APIs when the scopes are the same). Their methods are on
-- every client (`avalara.Client`); the catalog helper,
-- `client:classify_catalog`, is `avalara.catalog`.
--
-- Item codes in paths are encoded as Avalara publishes (`avalara.paths.item_code`).
-- Runtime failures return `nil, err`; wrong arguments raise at once, naming them.
-- @module avalara.items
local core = require "avalara.core"
local paths = require "avalara.paths"
local fetch = require "avalara.fetch"
local item_model = require "avalara.item"
local retry = require "avalara.retry"

local M = {}

--- The most items (or rows) one create, initiate or verify request may hold
-- ("the maximum number of items that can be created in a single call is 500").
M.MAX_PER_REQUEST = 500
--- Items per create request by default (Avalara recommends "upto 50").
M.CREATE_CHUNK = 50
--- Items per initiate request by default.
M.INITIATE_CHUNK = 100

--- The status values that are not a decision yet: waiting goes on while a
-- requested country has one of them. The value set is not published; this
-- is the emulator's (`GET /api/v2/definitions/items/hscode-classification-status`
-- lists the service's own).
M.PENDING = { Pending = true, InProgress = true }

--- Longest values of an item, in characters (AvaTax v2 `ItemModel`, OA21's maxLength).
M.LIMITS = { itemCode = 50, description = 255, itemGroup = 50, category = 4000, taxCode = 25, productCode = 25,
  systemCode = 25 }

-- The string fields of an ItemModel a create or update sends.
local STRINGS = { "itemGroup", "category", "taxCode", "summary", "upc", "source", "sourceEntityId", "itemType" }

-- The list options of each list, beyond filter, top, skip and order_by:
-- option -> name on the wire.
local ITEM_LIST = { include = "%24include", hs_code_classification_status = "hsCodeClassificationStatus",
  hs_code_exists_in_countries = "hsCodeExistsInCountries",
  hs_code_does_not_exist_in_countries = "hsCodeDoesNotExistsInCountries" }

-- ---------------------------------------------------------------- checks

local function fail(where, message, level)
  error(where .. ": " .. message, (level or 2) + 1)
end

local function integer(v)
  return type(v) == "number" and v == math.floor(v) and v > 0
end

local function check_id(where, name, v)
  if not integer(v) then
    fail(where, "'" .. name .. "' must be a positive integer id (got " .. tostring(v) .. ")", 3)
  end
  return v
end

local function check_country(where, name, v)
  if type(v) ~= "string" or not v:match("^%a%a$") then
    fail(where, "'" .. name .. "' must be a two-letter country code, such as US (got " .. tostring(v) .. ")", 3)
  end
  return v:upper()
end

-- A list of ids (or one id), checked.
local function id_list(where, ids)
  if integer(ids) then ids = { ids } end
  if type(ids) ~= "table" or ids[1] == nil then fail(where, "'item_ids' must be a non-empty list of item ids", 3) end
  for i, id in ipairs(ids) do check_id(where, "item_ids[" .. i .. "]", id) end
  return ids
end

--- A list of countries (`"US,DE"` or `{"US", "DE"}`) checked (two letters
-- each; raises naming `where` otherwise), upper-cased, without repeats.
-- @string where the caller's name, for the message
-- @param countries
-- @tparam[opt] boolean optional nil is allowed (and returned)
-- @treturn table
function M.countries(where, countries, optional)
  if countries == nil and optional then return nil end
  if type(countries) == "string" then
    local list = {}
    for c in countries:gmatch("[^,%s]+") do list[#list + 1] = c end
    countries = list
  end
  if type(countries) ~= "table" or countries[1] == nil then
    fail(where, "'countries' must be a non-empty list of two-letter country codes", 3)
  end
  local out, seen = {}, {}
  for i, c in ipairs(countries) do
    c = check_country(where, "countries[" .. i .. "]", c)
    if not seen[c] then seen[c] = true; out[#out + 1] = c end
  end
  return out
end
local country_list = M.countries

local function check_opts(where, opts)
  if opts ~= nil and type(opts) ~= "table" then fail(where, "'opts' must be a table", 3) end
  return opts or {}
end

local function chunk_size(where, opts, default)
  local n = opts.chunk or default
  if not integer(n) or n > M.MAX_PER_REQUEST then
    fail(where, "'chunk' must be an integer from 1 to " .. M.MAX_PER_REQUEST .. " (got " .. tostring(n) .. ")", 3)
  end
  return n
end

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
  out.name, err = item_model.text(p.name, at .. ".name", nil, true)
  if err then return nil, err end
  local value = p.value
  if type(value) == "number" then value = string.format("%.14g", value) end
  out.value, err = item_model.text(value, at .. ".value", nil, true)
  if err then return nil, err end
  out.unit, err = item_model.text(p.unit, at .. ".unit")
  if err then return nil, err end
  return out
end

local function classification(k, at)
  local out, err = {}
  out.productCode, err = item_model.text(k.productCode, at .. ".productCode", M.LIMITS.productCode, true)
  if err then return nil, err end
  out.systemCode, err = item_model.text(k.systemCode, at .. ".systemCode", M.LIMITS.systemCode)
  if err then return nil, err end
  if k.country ~= nil and (type(k.country) ~= "string" or not k.country:match("^%a%a$")) then
    return nil, "'" .. at .. ".country' must be two letters, such as US"
  end
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
-- @return the body, or nil and a message naming the field
function M.body(it)
  if type(it) ~= "table" then return nil, "an item must be a table (got " .. type(it) .. ")" end
  local out, err = { id = 0 }
  out.itemCode, err = item_model.text(it.itemCode, "itemCode", M.LIMITS.itemCode, true)
  if err then return nil, err end
  out.description, err = item_model.text(it.description, "description", M.LIMITS.description, true)
  if err then return nil, err end
  for _, name in ipairs(STRINGS) do
    out[name], err = item_model.text(it[name], name, M.LIMITS[name])
    if err then return nil, err end
  end
  out.parameters, err = list_of("parameters", it.parameters, parameter)
  if err then return nil, err end
  out.classifications, err = list_of("classifications", it.classifications, classification)
  if err then return nil, err end
  return out
end

-- ---------------------------------------------------------------- the API

local apis = setmetatable({}, { __mode = "k" })

--- The client that makes `client`'s calls to the Items API: `client` itself
-- when both APIs share a base URL and scope, else a client of the same
-- account for `items_base` and `items_scope` (made once).
-- @param client an `avalara.Client`
-- @return an `avalara.Client`
function M.api(client)
  local c = apis[client]
  if c then return c end
  if client.items_base == client.api_base and client.items_scope == client.scope then
    c = client
  else
    c = client:derive { api_base = client.items_base, scope = client.items_scope }
  end
  apis[client] = c
  return c
end
local api = M.api

-- One call on the Items API: the decoded body, or nil, err.
local function call(client, method, name, vars, body, query)
  local c = api(client)
  local s, b = c:call(method, c.api_base .. paths.build(name, vars) .. (query or ""), body)
  if s == nil then return nil, b end
  return b
end

local function company(client, where)
  return client:company(where)
end

-- A FetchResult list of the Items API, every page.
local function list(client, where, name, vars, opts, extra)
  local q, err = fetch.query(opts, extra)
  if not q then fail(where, err, 3) end
  local c = api(client)
  return fetch.collect(c, c.api_base .. paths.build(name, vars) .. q, opts and opts.skip)
end

--- The methods of the Items flow on `avalara.Client`.
-- @type Client
local Client = {}
M.Client = Client

--- Creates items in the company's catalog, in requests of `opts.chunk`
-- items (default 50, at most 500). Every item is checked first (`items.body`):
-- an invalid one raises naming its index and field, before any request.
-- An item code the catalog already has fails its request (`DuplicateEntry`).
-- @tparam table new_items the items (`{itemCode, description, ...}`)
-- @tparam[opt] table opts `{chunk = 50}`
-- @return the created `ItemModel`s (with their `id`s) in order, or nil, err; `err.created`
-- holds those created by the requests before the one that failed
function Client:create_items(new_items, opts)
  local where = "client:create_items"
  opts = check_opts(where, opts)
  if type(new_items) ~= "table" or new_items[1] == nil then fail(where, "'items' must be a non-empty list of items") end
  local chunk = chunk_size(where, opts, M.CREATE_CHUNK)
  local bodies = {}
  for i, it in ipairs(new_items) do
    local b, err = M.body(it)
    if not b then fail(where, "items[" .. i .. "]: " .. err) end
    bodies[i] = b
  end
  local co = company(self, where)
  local created = {}
  for first = 1, #bodies, chunk do
    local part = {}
    for i = first, math.min(#bodies, first + chunk - 1) do part[#part + 1] = bodies[i] end
    local models, err = call(self, "POST", "items", { companyId = co }, part)
    if not models then
      err.created = created
      return nil, err
    end
    for _, m in ipairs(models) do created[#created + 1] = m end
  end
  return created
end

--- The items of the company, every page (`@nextLink` followed).
-- @tparam[opt] table opts `{filter, top, skip, order_by, include}` (`include`: a list or a
-- comma-separated string of `Parameters`, `Classifications`, `HsCodeClassificationStatus`, ...),
-- and the HS filters `hs_code_classification_status` (a status value),
-- `hs_code_exists_in_countries` and `hs_code_does_not_exist_in_countries` (lists of countries;
-- sent as `hsCodeExistsInCountries` and `hsCodeDoesNotExistsInCountries`)
-- @return records, count (`@recordsetCount`), or nil, err
function Client:items(opts)
  local where = "client:items"
  return list(self, where, "items", { companyId = company(self, where) }, opts, ITEM_LIST)
end

--- The same list for a generic `for`, fetching pages as it goes: yields
-- each item; after a failure it yields `false, err` once.
-- @tparam[opt] table opts as for `items`
-- @treturn function
function Client:each_item(opts)
  local where = "client:each_item"
  local q, err = fetch.query(opts, ITEM_LIST)
  if not q then fail(where, err) end
  local c = api(self)
  return fetch.each(c, c.api_base .. paths.build("items", { companyId = company(self, where) }) .. q,
    opts and opts.skip)
end

--- Reads an item.
-- @int id the item's id
-- @tparam[opt] table opts `{include}` as for `items`
-- @return the `ItemModel`, or nil, err
function Client:item(id, opts)
  local where = "client:item"
  check_id(where, "id", id)
  local q, err = fetch.query(opts, { include = ITEM_LIST.include })
  if not q then fail(where, err) end
  return call(self, "GET", "item", { companyId = company(self, where), itemId = id }, nil, q)
end

--- Replaces an item's fields (checked as for `create_items`); its statuses
-- and classifications stay.
-- @int id
-- @tparam table item
-- @return the `ItemModel`, or nil, err
function Client:update_item(id, item)
  local where = "client:update_item"
  check_id(where, "id", id)
  local b, err = M.body(item)
  if not b then fail(where, err) end
  b.id = id
  return call(self, "PUT", "item", { companyId = company(self, where), itemId = id }, b)
end

--- Deletes an item.
-- @int id
-- @return true, or nil, err
function Client:delete_item(id)
  local where = "client:delete_item"
  check_id(where, "id", id)
  local r, err = call(self, "DELETE", "item", { companyId = company(self, where), itemId = id })
  if r == nil then return nil, err end
  return true
end

--- Starts the HS classification of items for destination countries, in
-- requests of `opts.chunk` items (default 100, at most 500). Items that
-- cannot start are in `failed` (`{itemId, errors = {{code, message, target}}}`);
-- the others started.
-- @param item_ids a list of item ids (or one id)
-- @param countries a list of two-letter codes (or `"US,DE"`)
-- @tparam[opt] table opts `{is_compliance = false, premium, reclassification, disputed,
-- priority, export, export_control, instructions, language, chunk}` (sent as
-- `isCompliance`, `isPremiumClassification`, `isReclassification`, ...)
-- @return `{total, failed}` (every chunk's, together), or nil, err; `err.result` holds
-- the requests that went through before the one that failed
function Client:initiate_hscode_classification(item_ids, countries, opts)
  local where = "client:initiate_hscode_classification"
  item_ids = id_list(where, item_ids)
  countries = country_list(where, countries)
  opts = check_opts(where, opts)
  local chunk = chunk_size(where, opts, M.INITIATE_CHUNK)
  local flags = {}
  for _, f in ipairs { { "is_compliance", "isCompliance" }, { "premium", "isPremiumClassification" },
    { "reclassification", "isReclassification" }, { "disputed", "isDisputed" }, { "priority", "isPriority" },
    { "export", "isExport" }, { "export_control", "isExportControl" } } do
    local v = opts[f[1]]
    if v ~= nil and type(v) ~= "boolean" then fail(where, "'" .. f[1] .. "' must be a boolean") end
    flags[f[2]] = v
  end
  flags.isCompliance = flags.isCompliance or false -- required by the model
  for _, f in ipairs { "instructions", "language" } do
    if opts[f] ~= nil and type(opts[f]) ~= "string" then fail(where, "'" .. f .. "' must be a string") end
  end
  local co = company(self, where)
  local result = { total = 0, failed = {} }
  for first = 1, #item_ids, chunk do
    local part = {}
    for i = first, math.min(#item_ids, first + chunk - 1) do
      local el = { itemId = item_ids[i], countryOfDestinations = countries, instructions = opts.instructions,
        language = opts.language }
      for k, v in pairs(flags) do el[k] = v end
      part[#part + 1] = el
    end
    local out, err = call(self, "POST", "hscode_initiate", { companyId = co }, part)
    if not out then
      err.result = result
      return nil, err
    end
    result.total = result.total + (tonumber(out.total) or #part)
    for _, f in ipairs(type(out.failed) == "table" and out.failed or {}) do result.failed[#result.failed + 1] = f end
  end
  return result
end

--- The HS classification statuses of an item, one per country it was
-- requested for (`ItemHSCodeClassificationStatusModel`s: `id`, `country`,
-- `status`, `details`, ...), read through the item (`$include`).
-- @int item_id
-- @return the list, or nil, err
function Client:hscode_classification_status(item_id)
  local item, err = self:item(check_id("client:hscode_classification_status", "item_id", item_id),
    { include = "HsCodeClassificationStatus" })
  if not item then return nil, err end
  return type(item.hsCodeClassificationStatus) == "table" and item.hsCodeClassificationStatus or {}
end

--- Reads items by id, 100 a request (`$filter=id in (...)`), with their
-- statuses by country.
-- @param client an `avalara.Client`
-- @tparam table ids item ids
-- @string include the `$include` of the list (`HsCodeClassificationStatus`, ...)
-- @return a table id -> `{item, by_country = {country -> status}}` (ids not found absent), or nil, err
function M.statuses(client, ids, include)
  local out = {}
  for first = 1, #ids, 100 do
    local part = {}
    for i = first, math.min(#ids, first + 99) do part[#part + 1] = string.format("%d", ids[i]) end
    local records, err = client:items { filter = "id in (" .. table.concat(part, ", ") .. ")", include = include }
    if not records then return nil, err end
    for _, item in ipairs(records) do
      local by_country = {}
      for _, s in ipairs(type(item.hsCodeClassificationStatus) == "table" and item.hsCodeClassificationStatus or {}) do
        by_country[s.country] = s
      end
      out[item.id] = { item = item, by_country = by_country }
    end
  end
  return out
end
local statuses = M.statuses

--- Waits until every item's classification is decided for every country
-- asked (its status no longer one of `items.PENDING`), polling with the same
-- backoff as `client:wait` (0.25 s, growing by half, up to 5 s). A country
-- without any status (never requested, or its status deleted) has nothing
-- to wait for.
-- @param item_ids a list of item ids (or one id)
-- @param[opt] countries a list of two-letter codes (or `"US,DE"`); nil: every country requested
-- @tparam[opt] table opts `{timeout = 120, interval = 0.25, include = "HsCodeClassificationStatus",
-- should_stop}` (`should_stop()`: asked at least every 0.2 s while waiting; true ends the wait
-- as a timeout with `err.stopped = true`)
-- @return the `ItemModel`s aligned with `item_ids`, with `hsCodeClassificationStatus` (an
-- item that no longer exists is an error in its place), or nil, err (kind "timeout", with
-- `err.pending`: `{itemId, country}` pairs still pending)
function Client:wait_hscode_classification(item_ids, countries, opts)
  local where = "client:wait_hscode_classification"
  item_ids = id_list(where, item_ids)
  countries = country_list(where, countries, true)
  opts = check_opts(where, opts)
  local include = opts.include or "HsCodeClassificationStatus"
  local interval, deadline = opts.interval or 0.25, retry.now() + (opts.timeout or 120)
  while true do
    local found, err = statuses(self, item_ids, include)
    if not found then return nil, err end
    local pending = {}
    for _, id in ipairs(item_ids) do
      local f = found[id]
      for _, s in pairs(f and f.by_country or {}) do
        local asked = countries == nil
        for _, c in ipairs(countries or {}) do asked = asked or c == s.country end
        if asked and M.PENDING[s.status] then pending[#pending + 1] = { itemId = id, country = s.country } end
      end
    end
    if #pending == 0 then
      local out = {}
      for i, id in ipairs(item_ids) do
        out[i] = found[id] and found[id].item or core.error { kind = "api", status = 404,
          code = "EntityNotFoundError", message = "item " .. id .. " not found", retryable = false }
      end
      return out
    end
    if retry.now() + interval > deadline then
      return nil, core.error { kind = "timeout", retryable = true, pending = pending, message = string.format(
        "%d item countries still pending after %g s", #pending, opts.timeout or 120) }
    end
    -- in slices, so that a stop asked for (Ctrl-C in the CLI) is heard soon
    local wake = retry.now() + interval
    repeat
      if opts.should_stop and opts.should_stop() then
        return nil, core.error { kind = "timeout", retryable = true, pending = pending, stopped = true,
          message = string.format("stopped with %d item countries still pending", #pending) }
      end
      self.sleep(opts.should_stop and math.min(0.2, wake - retry.now()) or interval)
    until retry.now() >= wake or not opts.should_stop
    interval = math.min(interval * 1.5, 5)
  end
end

--- The service's SLA for HS classification (`{slaInHours}`).
-- @return the `ItemHSCodeClassificationSlaOutputModel`, or nil, err
function Client:hscode_classification_sla()
  return call(self, "GET", "hscode_sla", { companyId = company(self, "client:hscode_classification_sla") })
end

--- Verifies HS codes for items and countries, all or nothing: when every
-- row is accepted each code becomes the item's classification for its
-- country; when any row fails none is kept, and `failed` lists every
-- failing row (`{rowIndex (from 0), itemId (a string), errors, errorCode}`).
-- @tparam table rows `{{itemId = 12, country = "US", hsCode = "610910"}, ...}`
-- (`item_id` and `hs_code` work too; codes are strings)
-- @return `{total, failed}` (`failed` empty when accepted), or nil, err
function Client:verify_hscodes(rows)
  local where = "client:verify_hscodes"
  if type(rows) ~= "table" or rows[1] == nil then fail(where, "'rows' must be a non-empty list") end
  if #rows > M.MAX_PER_REQUEST then fail(where, "at most " .. M.MAX_PER_REQUEST .. " rows in one request") end
  local body = {}
  for i, r in ipairs(rows) do
    if type(r) ~= "table" then fail(where, "rows[" .. i .. "] must be a table") end
    local code = r.hsCode or r.hs_code
    if type(code) ~= "string" then
      fail(where, "rows[" .. i .. "].hsCode must be a string (HS codes keep their leading zeros)")
    end
    body[i] = { itemId = check_id(where, "rows[" .. i .. "].itemId", r.itemId or r.item_id),
      country = check_country(where, "rows[" .. i .. "].country", r.country), hsCode = code }
  end
  return call(self, "POST", "hscode_verify", { companyId = company(self, where) }, body)
end

--- Dismisses the HS classification status of an item for a country.
-- @int item_id
-- @string country two letters
-- @return the `ItemHSCodeClassificationStatusModel`, or nil, err
function Client:dismiss_hscode_classification(item_id, country)
  local where = "client:dismiss_hscode_classification"
  check_id(where, "item_id", item_id)
  country = check_country(where, "country", country)
  return call(self, "PUT", "hscode_dismiss", { companyId = company(self, where), itemId = item_id }, nil,
    "?country=" .. country)
end

--- Deletes an HS classification status of an item (its `id`, a string);
-- a pending classification is cancelled.
-- @int item_id
-- @string status_id
-- @return true, or nil, err
function Client:delete_hscode_classification_status(item_id, status_id)
  local where = "client:delete_hscode_classification_status"
  check_id(where, "item_id", item_id)
  if type(status_id) ~= "string" or status_id == "" then fail(where, "'status_id' must be a string") end
  local co = company(self, where)
  local c = api(self)
  local s, err = c:call("DELETE", c.api_base .. paths.build("hscode_status", { companyId = co, itemId = item_id,
    id = status_id }))
  if s == nil then return nil, err end
  return true
end

--- The HS classification status values the service uses (`{name, description}`).
-- @return the list, or nil, err
function Client:hscode_classification_statuses()
  return call(self, "GET", "hscode_statuses", {})
end

--- The item classifications of an item (`ItemClassificationOutputModel`s:
-- `productCode` the HS code, `systemCode`, `country`, `isPremium`, ...), every page.
-- @int item_id
-- @tparam[opt] table opts `{filter, top, skip, order_by}`
-- @return records, count, or nil, err
function Client:item_classifications(item_id, opts)
  local where = "client:item_classifications"
  check_id(where, "item_id", item_id)
  return list(self, where, "item_classifications", { companyId = company(self, where), itemId = item_id }, opts)
end

--- One item classification.
-- @int item_id
-- @int id
-- @return the `ItemClassificationOutputModel`, or nil, err
function Client:item_classification(item_id, id)
  local where = "client:item_classification"
  check_id(where, "item_id", item_id)
  check_id(where, "id", id)
  return call(self, "GET", "item_classification", { companyId = company(self, where), itemId = item_id, id = id })
end

--- The premium classification of an item (by its code) under a tax system.
-- @string item_code encoded for the path as published (`A/B` as `A_-ava2f-_B`)
-- @string system_code such as `HTS` or `TARIC`
-- @tparam[opt] string country two letters: which country of a shared system
-- @return the `ItemPremiumClassificationOutputModel`, or nil, err
function Client:premium_classification(item_code, system_code, country)
  local where = "client:premium_classification"
  if type(item_code) ~= "string" or item_code == "" then fail(where, "'item_code' must be a string") end
  if type(system_code) ~= "string" or system_code == "" then fail(where, "'system_code' must be a string") end
  local q = country ~= nil and "?country=" .. check_country(where, "country", country) or nil
  return call(self, "GET", "premium_classification", { companyId = company(self, where), itemCode = item_code,
    systemCode = system_code }, nil, q)
end

--- The premium classifications of an item (by its code), every page.
-- @string item_code
-- @tparam[opt] table opts `{filter, top, skip, order_by}`
-- @return records, count, or nil, err
function Client:premium_classifications(item_code, opts)
  local where = "client:premium_classifications"
  if type(item_code) ~= "string" or item_code == "" then fail(where, "'item_code' must be a string") end
  return list(self, where, "premium_classifications", { companyId = company(self, where), itemCode = item_code },
    opts)
end

--- The events a webhook registration may ask for (`{id, name, description}`; `HSCodeAssigned`).
-- @return the list, or nil, err
function Client:item_events()
  return call(self, "GET", "item_events", {})
end

local function registration_body(where, reg, partial)
  if type(reg) ~= "table" then fail(where, "the registration must be a table", 3) end
  local out = {}
  if not partial or reg.connectorName ~= nil then
    if partial then fail(where, "'connectorName' cannot be changed", 3) end
    if type(reg.connectorName) ~= "string" or reg.connectorName == "" then
      fail(where, "'connectorName' must be a non-empty string", 3)
    end
    out.connectorName = reg.connectorName
  end
  if not partial or reg.url ~= nil then
    if type(reg.url) ~= "string" or not reg.url:match("^[Hh][Tt][Tt][Pp][Ss]?://") then
      fail(where, "'url' must be an http(s) URL", 3)
    end
    out.url = reg.url
  end
  out.typeName = reg.typeName or (not partial and "Webhook" or nil)
  out.events = reg.events or (not partial and "HSCodeAssigned" or nil)
  return out
end

--- Registers a webhook: the service POSTs an `HSCodeAssigned` event to
-- `url` when codes are assigned to an item (see `avalara.webhook`).
-- @tparam table reg `{connectorName, url, typeName = "Webhook", events = "HSCodeAssigned"}`
-- @return the `ItemReverseSyncRegistrationOutputModel` (`registrationId`, ...), or nil, err
function Client:create_webhook_registration(reg)
  local where = "client:create_webhook_registration"
  return call(self, "POST", "registrations", { companyId = company(self, where) }, registration_body(where, reg))
end

--- The webhook registrations of the company.
-- @return records, count, or nil, err
function Client:webhook_registrations()
  local where = "client:webhook_registrations"
  return list(self, where, "registrations", { companyId = company(self, where) })
end

--- One webhook registration.
-- @int id its `registrationId`
-- @return the model, or nil, err
function Client:webhook_registration(id)
  local where = "client:webhook_registration"
  check_id(where, "id", id)
  return call(self, "GET", "registration", { companyId = company(self, where), registrationId = id })
end

--- Changes a webhook registration: only the fields given (`url`, `typeName`, `events`).
-- @int id
-- @tparam table changes
-- @return the model, or nil, err
function Client:update_webhook_registration(id, changes)
  local where = "client:update_webhook_registration"
  check_id(where, "id", id)
  return call(self, "PATCH", "registration", { companyId = company(self, where), registrationId = id },
    registration_body(where, changes, true))
end

--- Deletes a webhook registration.
-- @int id
-- @return true, or nil, err
function Client:delete_webhook_registration(id)
  local where = "client:delete_webhook_registration"
  check_id(where, "id", id)
  local r, err = call(self, "DELETE", "registration", { companyId = company(self, where), registrationId = id })
  if r == nil then return nil, err end
  return true
end

--- Classifies a catalog for several countries (`avalara.catalog.classify`).
-- @param catalog a CSV or JSON file's path, or a list of items
-- @param countries a list of two-letter codes (or `"US,DE,JP"`)
-- @tparam[opt] table opts see `avalara.catalog.classify`
-- @return rows, summary (see `avalara.catalog.classify`)
function Client:classify_catalog(catalog, countries, opts)
  return require("avalara.catalog").classify(self, catalog, countries, opts)
end

return M
