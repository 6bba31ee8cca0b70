-- The AvaTax item catalog of each company (docs/api-contracts.md section 2.4), in
-- the shared dict emu_items so every worker sees the same items: one JSON
-- document per item with its HS classification statuses (by country), its
-- item classifications and its premium classifications. Ids are integers
-- from one sequence for every company (AvaTax's ids are unique), item codes
-- unique per company (as sent, case counts). Changes to an item go through
-- M.update, under a lock per item, so a request and the worker resolving
-- its classification never lose each other's change.
local util = require "emulator.util"

local store = ngx.shared.emu_items

local M = {}

local function key(id) return "i:" .. id end
local function code_key(company, code) return "code:" .. company .. "\0" .. code end

-- The next number of a sequence ("item", "classification", "registration").
function M.next_id(kind)
  return store:incr("seq:" .. kind, 1, 0)
end

-- The last number a sequence gave (0 before the first).
function M.last_id(kind)
  return store:get("seq:" .. kind) or 0
end

local function save(doc)
  local ok, err = store:set(key(doc.id), util.json_encode(doc))
  if not ok then error("emulator: item store full: " .. tostring(err)) end
end

-- The item of a company, or nil (unknown, deleted, another company's).
function M.get(company, id)
  local raw = store:get(key(id))
  local doc = raw and util.json_decode(raw)
  if not doc or doc.companyId ~= company then return nil end
  return doc
end

-- The item of a company with this item code, or nil.
function M.by_code(company, code)
  local id = store:get(code_key(company, code))
  return id and M.get(company, id) or nil
end

-- Claims the item codes of new items (all or none: a code already taken,
-- by an item or by a concurrent request, fails the lot). Returns true, or
-- nil and the index of the code that is taken.
function M.claim(company, docs)
  for i, doc in ipairs(docs) do
    if not store:add(code_key(company, doc.itemCode), doc.id) then
      for j = 1, i - 1 do store:delete(code_key(company, docs[j].itemCode)) end
      return nil, i
    end
  end
  for _, doc in ipairs(docs) do save(doc) end
  return true
end

-- Runs fn(doc) on the current item under its lock and saves it when fn
-- returns true. Returns the item (changed or not) and fn's second result,
-- or nil when the item is gone.
function M.update(company, id, fn)
  return util.locked(store, key(id), function()
    local doc = M.get(company, id)
    if not doc then return nil end
    local changed, extra = fn(doc)
    if changed then save(doc) end
    return doc, extra
  end)
end

-- Changes an item's code (its lock held by the caller, through M.update):
-- true, or false when another item of the company has the new one.
function M.recode(doc, new_code)
  if new_code == doc.itemCode then return true end
  if not store:add(code_key(doc.companyId, new_code), doc.id) then return false end
  store:delete(code_key(doc.companyId, doc.itemCode))
  doc.itemCode = new_code
  return true
end

-- Deletes an item; true, or false when it is not the company's.
function M.delete(company, id)
  return util.locked(store, key(id), function()
    local doc = M.get(company, id)
    if not doc then return false end
    store:delete(key(id))
    store:delete(code_key(company, doc.itemCode))
    return true
  end)
end

-- Every item of a company, in id order.
function M.all(company)
  local out = {}
  for id = 1, M.last_id("item") do
    local doc = M.get(company, id)
    if doc then out[#out + 1] = doc end
  end
  return out
end

-- A value of another kind kept in the same dict (webhook registrations):
-- get, set and delete by name.
function M.get_value(name)
  local raw = store:get(name)
  return raw and util.json_decode(raw) or nil
end

function M.set_value(name, value)
  local ok, err = store:set(name, util.json_encode(value))
  if not ok then error("emulator: item store full: " .. tostring(err)) end
end

function M.delete_value(name)
  store:delete(name)
end

function M.reset()
  util.flush(store)
end

return M
