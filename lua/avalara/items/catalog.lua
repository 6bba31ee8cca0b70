--- Classifying a whole catalog for several countries through the Items
-- flow (`avalara.items`): the items are upserted into the company's catalog,
-- classification is initiated in chunks for what is not yet decided, and
-- the statuses are waited for; the result is one row per item and country.
--
--    local rows, summary = client:classify_catalog("products.csv", { "US", "DE", "JP" })
--    for _, r in ipairs(rows) do print(r.itemCode, r.country, r.status, r.hsCode) end
--    print(summary.classified, summary.failed)
--
-- **Resuming.** The service keeps what was done: the items (found again by
-- item code), the statuses of what was initiated (`Pending` ones are waited
-- for, decided ones are kept) and the codes. So a run stopped at any point
-- (Ctrl-C, `kill -9`, a lost connection, the sandbox quota) is resumed by
-- running it again: nothing is created twice and no item and country is
-- initiated (paid) twice: the service's own state is the journal here, so
-- no local one is needed to resume. `opts.journal`, when given, receives the
-- rows once the run ends (`journal:row(index, row)`, then `journal:commit()`).
-- `opts.should_stop()` stops a run gracefully (the CLI asks it on Ctrl-C):
-- no request is started after it says true, the wait ends, and the rows say
-- what is known (`NOT_ATTEMPTED`, pending). (Was `avalara.catalog`, which
-- still loads this; it uses the service's modules, never the client's names.)
-- @module avalara.items.catalog
local core = require "avalara.core"
local args = require "avalara.items.args"
local model = require "avalara.items.model"
local items = require "avalara.items.items"
local classification = require "avalara.items.classification"
local reader = require "avalara.items.reader"

local M = {}

--- The columns (or JSON keys) of a catalog file and the fields they fill (`avalara.items.reader`).
M.COLUMNS = reader.COLUMNS

-- The fields compared to decide whether an existing item needs an update.
local COMPARED = { "description", "summary", "itemGroup", "category", "taxCode", "upc" }

-- The longest `$filter` of one lookup by item code (URLs stay short).
local MAX_FILTER = 3000

--- Reads a catalog file: `avalara.items.reader.read`.
-- @string path
-- @tparam[opt] table opts
M.read = reader.read

-- A `$filter` string value: quoted, quotes doubled.
local function quoted(s)
  return "'" .. s:gsub("'", "''") .. "'"
end

-- The existing items with these codes: code -> ItemModel (with statuses and
-- classifications), or nil, err.
local function existing(client, codes)
  local found, i = {}, 1
  while i <= #codes do
    local parts, length = {}, 0
    while i <= #codes and (#parts == 0 or length + #codes[i] + 4 <= MAX_FILTER) do
      parts[#parts + 1] = quoted(codes[i])
      length = length + #parts[#parts] + 2
      i = i + 1
    end
    local list, err = items.list(client, { filter = "itemCode in (" .. table.concat(parts, ", ") .. ")",
      include = "HsCodeClassificationStatus,Classifications" })
    if not list then return nil, err end
    for _, it in ipairs(list) do found[it.itemCode] = it end
  end
  return found
end

local function differs(old, new)
  for _, k in ipairs(COMPARED) do
    if (old[k] or "") ~= (new[k] or "") then return true end
  end
  return false
end

-- The status of `item` for `country`, and its classification there.
local function state_of(item, country)
  local status, code
  for _, s in ipairs(type(item.hsCodeClassificationStatus) == "table" and item.hsCodeClassificationStatus or {}) do
    if s.country == country then status = s end
  end
  for _, k in ipairs(type(item.classifications) == "table" and item.classifications or {}) do
    if k.country == country then code = k end
  end
  return status, code
end

local function check_args(catalog, countries, opts)
  local where = "client:classify_catalog"
  if opts ~= nil and type(opts) ~= "table" then error(where .. ": 'opts' must be a table", 4) end
  opts = opts or {}
  for _, f in ipairs { "on_progress", "should_stop" } do
    if opts[f] ~= nil and type(opts[f]) ~= "function" then error(where .. ": '" .. f .. "' must be a function", 4) end
  end
  local cc = args.countries(where, countries)
  local list = catalog
  if type(catalog) == "string" then
    local err
    if opts.read ~= nil and type(opts.read) ~= "table" then error(where .. ": 'read' must be a table", 4) end
    list, err = M.read(catalog, opts.read)
    if not list then error(where .. ": " .. err.message, 4) end
  elseif type(catalog) ~= "table" or catalog[1] == nil then
    error(where .. ": 'catalog' must be a file's path or a non-empty list of items", 4)
  end
  local bodies, codes, at = {}, {}, {}
  for i, it in ipairs(list) do
    local name = type(it) == "table" and it.where or ("items[" .. i .. "]")
    local b, err = model.build(it)
    if not b then error(where .. ": " .. name .. ": " .. err, 4) end
    if at[b.itemCode] then
      error(where .. ": " .. name .. ": item code '" .. b.itemCode .. "' is already at " .. at[b.itemCode], 4)
    end
    at[b.itemCode] = name
    bodies[i], codes[i] = b, b.itemCode
  end
  return bodies, codes, cc, opts
end

local function progress(opts, phase, done, total, ended)
  if opts.on_progress then opts.on_progress { phase = phase, done = done, total = total, ended = ended } end
end

-- A run is five named steps over one state table `st`: `{client, opts, bodies, codes, cc, summary,
-- found (code -> item), redo (codes updated), rows, todo (item id -> {id, countries, index, sent}),
-- failed_items, final}`. A step returns true, or nil, err when the run cannot go on.
local function stopping(st) return st.opts.should_stop and st.opts.should_stop() end

-- 1. the items: found by code, created or updated
local function upsert(st)
  local bodies, summary = st.bodies, st.summary
  local found, err = existing(st.client, st.codes)
  if not found then return nil, err end
  st.found = found
  local new, changed = {}, {}
  for i, b in ipairs(bodies) do
    local old = found[b.itemCode]
    if not old then new[#new + 1] = i elseif differs(old, b) then changed[#changed + 1] = i end
  end
  progress(st.opts, "upsert", 0, #new + #changed)
  if #new > 0 and not stopping(st) then
    local list = {}
    for j, i in ipairs(new) do list[j] = bodies[i] end
    local created, cerr = items.create(st.client, list, { chunk = st.opts.create_chunk })
    for _, m in ipairs(created or cerr.created) do found[m.itemCode] = m end
    summary.created = created and #created or #cerr.created
    if not created then return nil, cerr end
  end
  for j, i in ipairs(changed) do
    if stopping(st) then break end
    local old = found[bodies[i].itemCode]
    local m, uerr = items.update(st.client, old.id, bodies[i])
    if not m then return nil, uerr end
    m.hsCodeClassificationStatus, m.classifications = old.hsCodeClassificationStatus, old.classifications
    found[m.itemCode], st.redo[m.itemCode] = m, true
    summary.updated = j
  end
  progress(st.opts, "upsert", summary.created + summary.updated, #new + #changed)
  return true
end

-- 2. what to initiate: no status yet, or decided but the item changed (or reclassify)
local function plan(st)
  for i, b in ipairs(st.bodies) do
    local item = st.found[b.itemCode]
    for _, country in ipairs(st.cc) do
      local row = { itemCode = b.itemCode, itemId = item and item.id, country = country }
      st.rows[#st.rows + 1] = row
      local status = item and state_of(item, country)
      if not item then
        row.status = "NOT_ATTEMPTED"
      elseif not status or (not classification.PENDING[status.status]
          and (st.opts.reclassify or st.redo[b.itemCode])) then
        st.todo[item.id] = st.todo[item.id] or { id = item.id, countries = {}, index = i }
        table.insert(st.todo[item.id].countries, country)
        row.todo = true
      else
        st.summary.kept = st.summary.kept + 1
      end
    end
  end
  return true
end

-- 3. initiate, in chunks of items asking for the same countries
local function initiate(st)
  local opts, summary = st.opts, st.summary
  local groups, order = {}, {}
  for _, t in pairs(st.todo) do
    local key = table.concat(t.countries, ",")
    if not groups[key] then groups[key] = {}; order[#order + 1] = key end
    table.insert(groups[key], t)
  end
  table.sort(order)
  local total_todo, sent, stopped = 0, 0, nil
  for _, key in ipairs(order) do
    table.sort(groups[key], function(a, b) return a.index < b.index end)
    total_todo = total_todo + #groups[key]
  end
  progress(opts, "initiate", 0, total_todo)
  local chunk = opts.chunk or classification.INITIATE_CHUNK
  for _, key in ipairs(order) do
    local group = groups[key]
    for first = 1, #group, chunk do
      if stopped then break end
      if stopping(st) then stopped = "stopped"; break end
      local ids = {}
      for k = first, math.min(#group, first + chunk - 1) do ids[#ids + 1] = group[k].id end
      local out, ierr = classification.classify(st.client, ids, group[1].countries, { chunk = chunk,
        premium = opts.premium, is_compliance = opts.is_compliance })
      if not out then
        if ierr.kind ~= "quota" then return nil, ierr end
        stopped = "quota"
        summary.stop_error = ierr
        break
      end
      for _, f in ipairs(out.failed) do
        if f.itemId then st.failed_items[f.itemId] = f end
      end
      sent = sent + #ids
      for _, id in ipairs(ids) do
        if not st.failed_items[id] then st.todo[id].sent = true end
      end
      progress(opts, "initiate", sent, total_todo)
    end
  end
  summary.stopped = stopped
  return true
end

-- 4. wait for everything pending (initiated now, or by an earlier run)
local function wait(st)
  local ids, id_seen = {}, {}
  for _, b in ipairs(st.bodies) do
    local item = st.found[b.itemCode]
    if item and not id_seen[item.id] then id_seen[item.id] = true; ids[#ids + 1] = item.id end
  end
  if #ids == 0 then return true end
  local opts = st.opts
  progress(opts, "wait", 0, #ids)
  local _, werr = classification.wait(st.client, ids, st.cc, { timeout = opts.timeout or 600,
    interval = opts.interval, include = "HsCodeClassificationStatus", should_stop = opts.should_stop })
  if werr and werr.kind ~= "timeout" then return nil, werr end
  if werr and werr.stopped then st.summary.stopped = st.summary.stopped or "stopped" end
  progress(opts, "wait", #ids - (werr and werr.items_pending or 0), #ids, werr and true or nil) -- ended: some pending
  local err
  st.final, err = classification.statuses(st.client, ids, "HsCodeClassificationStatus,Classifications")
  if not st.final then return nil, err end
  return true
end

-- 5. the rows, counted in the summary (and given to the journal)
local function finish(st)
  local summary, opts = st.summary, st.opts
  for n, row in ipairs(st.rows) do
    local t = row.itemId and st.todo[row.itemId]
    local f = row.itemId and st.failed_items[row.itemId]
    local now = st.final and row.itemId and st.final[row.itemId]
    local status, code
    if now then status, code = state_of(now.item, row.country) end
    if row.todo and f then
      local e = f.errors and f.errors[1] or {}
      row.status, row.error = "FAILED", core.error { kind = "api", code = e.code, message = e.message,
        retryable = false }
    elseif row.todo and not (t and t.sent) then
      row.status = "NOT_ATTEMPTED"
    elseif status then
      row.status, row.details = status.status, status.details
      if code and status.status ~= "CannotBeClassified" then
        row.hsCode, row.systemCode, row.classificationId, row.isPremium = code.productCode, code.systemCode, code.id,
          code.isPremium
      end
    elseif row.status == nil then
      row.status = "NOT_ATTEMPTED"
    end
    row.todo = nil
    if row.status == "FAILED" then summary.failed = summary.failed + 1
    elseif row.status == "NOT_ATTEMPTED" then summary.not_attempted = summary.not_attempted + 1
    elseif classification.PENDING[row.status] then summary.pending = summary.pending + 1
    elseif row.hsCode then summary.classified = summary.classified + 1
    else summary.cannot = summary.cannot + 1 end
    if opts.journal then opts.journal:row(n, row) end
  end
  for _, t in pairs(st.todo) do
    if t.sent then summary.initiated = summary.initiated + #t.countries end
  end
  if opts.journal and opts.journal.commit then opts.journal:commit() end
  return true
end

--- Classifies a catalog for several countries; see the module's description.
-- Every item is checked before any request (a bad one raises naming its line
-- or index and field, as do duplicate item codes).
-- @param client an `avalara.Client`
-- @param catalog a CSV or JSON file's path (`catalog.read`), or a list of items
-- @param countries a list of two-letter codes (or `"US,DE,JP"`)
-- @tparam[opt] table opts `{chunk = 100 (items per initiate), create_chunk = 50, premium,
-- is_compliance, reclassify (initiate again what is decided), timeout = 600, interval,
-- on_progress({phase, done, total, ended}) (upsert, initiate, wait; `ended`: a wait cut short, `done`
-- the items decided), should_stop() (stop before the next request: the rest is not attempted), journal,
-- read (a file's reading options, as `read` takes them: map, delimiter, keep_html, truncate)}`
-- @return rows (one per item and country, in catalog order: `{itemCode, itemId, country,
-- status, hsCode, systemCode, classificationId, isPremium, details, error}`; status `FAILED`
-- with `error` when it failed, `NOT_ATTEMPTED` when the run stopped before it), and a
-- summary `{items, countries, rows, classified, cannot, pending, failed, not_attempted,
-- created, updated, initiated, kept, stopped}`; or nil, err when the catalog could not be
-- read or written to the service at all
function M.classify(client, catalog, countries, opts)
  local bodies, codes, cc
  bodies, codes, cc, opts = check_args(catalog, countries, opts)
  client:company("client:classify_catalog")
  local st = { client = client, opts = opts, bodies = bodies, codes = codes, cc = cc, redo = {}, rows = {},
    todo = {}, failed_items = {},
    summary = { items = #bodies, countries = #cc, rows = #bodies * #cc, classified = 0, cannot = 0,
      pending = 0, failed = 0, not_attempted = 0, created = 0, updated = 0, initiated = 0, kept = 0 } }
  for _, step in ipairs { upsert, plan, initiate, wait, finish } do
    local ok, err = step(st)
    if not ok then return nil, err end
  end
  return st.rows, st.summary
end

return M
