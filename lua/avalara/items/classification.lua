--- The HS classification of catalog items for several destination countries
-- at once: initiate, statuses, waiting, SLA, verified codes, dismissing,
-- and the item classifications the service assigned. Functions of a client
-- (`avalara.items` makes them `client.items:classify(...)` and the flat
-- `client:initiate_hscode_classification(...)`).
-- @module avalara.items.classification
local core = require "avalara.core"
local clock = require "avalara.clock"
local args = require "avalara.items.args"
local api = require "avalara.items.api"
local items = require "avalara.items.items"

local M = {}

--- Items per initiate request by default.
M.INITIATE_CHUNK = 100

--- The status values that are not a decision yet: waiting goes on while a
-- requested country has one of them. The value set is not published; this
-- is the emulator's (`GET /api/v2/definitions/items/hscode-classification-status`
-- lists the service's own).
M.PENDING = { Pending = true, InProgress = true }

-- Options of `classify` sent as flags: option -> name on the wire.
local FLAGS = { { "is_compliance", "isCompliance" }, { "premium", "isPremiumClassification" },
  { "reclassification", "isReclassification" }, { "disputed", "isDisputed" }, { "priority", "isPriority" },
  { "export", "isExport" }, { "export_control", "isExportControl" } }

--- Starts the HS classification of items for destination countries, in
-- requests of `opts.chunk` items (default 100, at most 500). Items that
-- cannot start are in `failed` (`{itemId, errors = {{code, message, target}}}`);
-- the others started.
-- @param client an `avalara.Client`
-- @param item_ids a list of item ids (or one id)
-- @param countries a list of two-letter codes (or `"US,DE"`)
-- @tparam[opt] table opts `{is_compliance = false, premium, reclassification, disputed,
-- priority, export, export_control, instructions, language, chunk}` (sent as
-- `isCompliance`, `isPremiumClassification`, `isReclassification`, ...)
-- @return `{total, failed}` (every chunk's, together), or nil, err; `err.result` holds
-- the requests that went through before the one that failed
function M.classify(client, item_ids, countries, opts)
  local where = "client:initiate_hscode_classification"
  item_ids = args.ids(where, item_ids)
  countries = args.countries(where, countries)
  opts = args.opts(where, opts)
  local chunk = args.chunk(where, opts, M.INITIATE_CHUNK)
  local flags = {}
  for _, f in ipairs(FLAGS) do
    local v = opts[f[1]]
    if v ~= nil and type(v) ~= "boolean" then args.fail(where, "'" .. f[1] .. "' must be a boolean") end
    flags[f[2]] = v
  end
  flags.isCompliance = flags.isCompliance or false -- required by the model
  for _, f in ipairs { "instructions", "language" } do
    if opts[f] ~= nil and type(opts[f]) ~= "string" then args.fail(where, "'" .. f .. "' must be a string") end
  end
  local co = client:company(where)
  local result = { total = 0, failed = {} }
  for first = 1, #item_ids, chunk do
    local part = {}
    for i = first, math.min(#item_ids, first + chunk - 1) do
      local el = { itemId = item_ids[i], countryOfDestinations = countries, instructions = opts.instructions,
        language = opts.language }
      for k, v in pairs(flags) do el[k] = v end
      part[#part + 1] = el
    end
    local out, err = api.call(client, "POST", "hscode_initiate", { companyId = co }, part)
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
-- @param client
-- @int item_id
-- @return the list, or nil, err
function M.status(client, item_id)
  args.id("client:hscode_classification_status", "item_id", item_id)
  local item, err = items.item(client, item_id, { include = "HsCodeClassificationStatus" })
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
    local records, err = items.list(client, { filter = "id in (" .. table.concat(part, ", ") .. ")",
      include = include })
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

-- The {itemId, country} pairs of `found` still pending for the countries asked (nil: all).
local function pending_of(found, item_ids, countries)
  local pending, n_items = {}, 0
  for _, id in ipairs(item_ids) do
    local f, before = found[id], #pending
    for _, s in pairs(f and f.by_country or {}) do
      local asked = countries == nil
      for _, c in ipairs(countries or {}) do asked = asked or c == s.country end
      if asked and M.PENDING[s.status] then pending[#pending + 1] = { itemId = id, country = s.country } end
    end
    if #pending > before then n_items = n_items + 1 end
  end
  return pending, n_items
end

local polls -- below `M.wait`

--- Waits until every item's classification is decided for every country
-- asked (its status no longer one of `PENDING`), polling with the same
-- backoff as `client:wait` (0.25 s, growing by half, up to 5 s). A country
-- without any status (never requested, or its status deleted) has nothing
-- to wait for.
-- @param client
-- @param item_ids a list of item ids (or one id)
-- @param[opt] countries a list of two-letter codes (or `"US,DE"`); nil: every country requested
-- @tparam[opt] table opts `{timeout = 120, interval = 0.25, include = "HsCodeClassificationStatus",
-- should_stop}` (`should_stop()`: asked at least every 0.2 s while waiting; true ends the wait
-- as a timeout with `err.stopped = true`)
-- @return the `ItemModel`s aligned with `item_ids`, with `hsCodeClassificationStatus` (an
-- item that no longer exists is an error in its place), or nil, err (kind "timeout", with
-- `err.pending`: `{itemId, country}` pairs still pending, and `err.items_pending`: how many items)
function M.wait(client, item_ids, countries, opts)
  local where = "client:wait_hscode_classification"
  item_ids = args.ids(where, item_ids)
  countries = args.countries(where, countries, true)
  opts = args.opts(where, opts)
  local deadline = clock.now() + (opts.timeout or 120)
  return client:within(deadline, polls, client, item_ids, countries, opts, deadline)
end

-- The polls of `M.wait`, inside its deadline (`client:within`).
function polls(client, item_ids, countries, opts, deadline)
  local include = opts.include or "HsCodeClassificationStatus"
  local interval, pending, items_pending = opts.interval or 0.25, nil, nil
  while true do
    local found, err = M.statuses(client, item_ids, include)
    if not found then
      if err.kind == "timeout" or clock.now() >= deadline then
        return nil, core.error { kind = "timeout", retryable = true, pending = pending, cause = err,
          items_pending = items_pending,
          message = string.format("no answer within %g s (%s)", opts.timeout or 120, tostring(err.message)) }
      end
      return nil, err
    end
    pending, items_pending = pending_of(found, item_ids, countries)
    if #pending == 0 then
      local out = {}
      for i, id in ipairs(item_ids) do
        out[i] = found[id] and found[id].item or core.error { kind = "api", status = 404,
          code = "EntityNotFoundError", message = "item " .. id .. " not found", retryable = false }
      end
      return out
    end
    if clock.now() + interval > deadline then
      return nil, core.error { kind = "timeout", retryable = true, pending = pending, items_pending = items_pending,
        message = string.format("%d item countries still pending after %g s", #pending, opts.timeout or 120) }
    end
    -- in slices, so that a stop asked for (Ctrl-C in the CLI) is heard soon
    local wake = clock.now() + interval
    repeat
      if opts.should_stop and opts.should_stop() then
        return nil, core.error { kind = "timeout", retryable = true, pending = pending, stopped = true,
          items_pending = items_pending,
          message = string.format("stopped with %d item countries still pending", #pending) }
      end
      client.sleep(opts.should_stop and math.min(0.2, wake - clock.now()) or interval)
    until clock.now() >= wake or not opts.should_stop
    interval = math.min(interval * 1.5, 5)
  end
end

--- The service's SLA for HS classification (`{slaInHours}`).
-- @param client
-- @return the `ItemHSCodeClassificationSlaOutputModel`, or nil, err
function M.sla(client)
  return api.call(client, "GET", "hscode_sla", { companyId = client:company("client:hscode_classification_sla") })
end

--- Verifies HS codes for items and countries, all or nothing: when every
-- row is accepted each code becomes the item's classification for its
-- country; when any row fails none is kept, and `failed` lists every
-- failing row (`{rowIndex (from 0), itemId (a string), errors, errorCode}`).
-- @param client
-- @tparam table rows `{{itemId = 12, country = "US", hsCode = "610910"}, ...}`
-- (`item_id` and `hs_code` work too; codes are strings, dots allowed: `"6109.10"` is sent as `"610910"`)
-- @return `{total, failed}` (`failed` empty when accepted), or nil, err
function M.verify(client, rows)
  local where = "client:verify_hscodes"
  if type(rows) ~= "table" or rows[1] == nil then args.fail(where, "'rows' must be a non-empty list") end
  if #rows > args.MAX_PER_REQUEST then
    args.fail(where, "at most " .. args.MAX_PER_REQUEST .. " rows in one request")
  end
  local body = {}
  for i, r in ipairs(rows) do
    if type(r) ~= "table" then args.fail(where, "rows[" .. i .. "] must be a table") end
    local code = r.hsCode or r.hs_code
    if type(code) ~= "string" then
      args.fail(where, "rows[" .. i .. "].hsCode must be a string (HS codes keep their leading zeros)")
    end
    body[i] = { itemId = args.id(where, "rows[" .. i .. "].itemId", r.itemId or r.item_id),
      country = args.country(where, "rows[" .. i .. "].country", r.country), hsCode = (code:gsub("%.", "")) }
  end
  return api.call(client, "POST", "hscode_verify", { companyId = client:company(where) }, body)
end

--- Dismisses the HS classification status of an item for a country.
-- @param client
-- @int item_id
-- @string country two letters
-- @return the `ItemHSCodeClassificationStatusModel`, or nil, err
function M.dismiss(client, item_id, country)
  local where = "client:dismiss_hscode_classification"
  args.id(where, "item_id", item_id)
  country = args.country(where, "country", country)
  return api.call(client, "PUT", "hscode_dismiss", { companyId = client:company(where), itemId = item_id }, nil,
    "?country=" .. country)
end

--- Deletes an HS classification status of an item (its `id`, a string);
-- a pending classification is cancelled.
-- @param client
-- @int item_id
-- @string status_id
-- @return true, or nil, err
function M.delete_status(client, item_id, status_id)
  local where = "client:delete_hscode_classification_status"
  args.id(where, "item_id", item_id)
  args.text(where, "status_id", status_id)
  return api.done(client, "DELETE", "hscode_status", { companyId = client:company(where), itemId = item_id,
    id = status_id })
end

--- The HS classification status values the service uses (`{name, description}`).
-- @param client
-- @return the list, or nil, err
function M.status_values(client)
  return api.call(client, "GET", "hscode_statuses", {})
end

--- The item classifications of an item (`ItemClassificationOutputModel`s:
-- `productCode` the HS code, `systemCode`, `country`, `isPremium`, ...), every page.
-- @param client
-- @int item_id
-- @tparam[opt] table opts `{filter, top, skip, order_by}`
-- @return records, count, or nil, err
function M.classifications(client, item_id, opts)
  local where = "client:item_classifications"
  args.id(where, "item_id", item_id)
  return api.list(client, where, "item_classifications", { companyId = client:company(where), itemId = item_id },
    opts)
end

--- One item classification.
-- @param client
-- @int item_id
-- @int id
-- @return the `ItemClassificationOutputModel`, or nil, err
function M.classification(client, item_id, id)
  local where = "client:item_classification"
  args.id(where, "item_id", item_id)
  args.id(where, "id", id)
  return api.call(client, "GET", "item_classification", { companyId = client:company(where), itemId = item_id,
    id = id })
end

return M
