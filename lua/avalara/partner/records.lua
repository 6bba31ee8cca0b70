--- The connection records of a partner in its store: the list of ids, a new
-- connection stored from a grant, and what callers see of a record (no secret).
-- @module avalara.partner.records
local core = require "avalara.core"
local clock = require "avalara.clock"
local connection = require "avalara.partner.connection"
local errors = require "avalara.partner.error"

local M = {}

local store_failed = errors.store_failed

-- 16 hex digits (64 random bits): a connection id.
local function random_id()
  local v = core.pkce()
  return (v:sub(1, 16):gsub(".", function(c) return ("%x"):format(c:byte() % 16) end))
end

--- What callers see of a connection record: no secret.
-- @tparam table rec the stored record
-- @treturn table `{id, flow, company_id, scope, token_type, created_at, refreshed_at, status, expires_at}`
function M.public(rec)
  return { id = rec.id, flow = rec.flow, company_id = tonumber(rec.company_id), scope = rec.scope,
    token_type = rec.token_type, created_at = rec.created_at, refreshed_at = rec.refreshed_at,
    status = rec.status, expires_at = rec.expires_at }
end

--- Changes the list of connection ids (compare-and-set, again on a race).
-- @param self the partner
-- @tparam function change called with the set of ids `{[id] = true}`, changes it
-- @return true, or nil, err
function M.change_index(self, change)
  local key = self.prefix .. "connections"
  for _ = 1, 50 do
    local idx, version, err = self.store:get(key)
    if err then return store_failed(self.store, "reading the connection list", err) end
    local ids = {}
    for _, id in ipairs(idx and idx.ids or {}) do ids[id] = true end
    change(ids)
    local list = {}
    for id in pairs(ids) do list[#list + 1] = id end
    table.sort(list)
    local ok, cerr = self.store:cas(key, version, { ids = list })
    if ok then return true end
    if ok == nil then return store_failed(self.store, "writing the connection list", cerr) end
  end
  return store_failed(self.store, "writing the connection list", "it keeps changing")
end

--- Stores a new connection from a grant's token; replaces `meta.connection_id`'s
-- record when given (and revokes the authorization it had, with `revoke(self, old_record)`).
-- @param self the partner
-- @param tok the grant's token (closed here)
-- @tparam table meta `{company_id, connection_id}` (each optional)
-- @tparam function revoke revokes a record's authorization (best effort)
-- @return the connection (`M.public`), or nil, err
function M.connect(self, tok, meta, revoke)
  local rec = connection.with_tokens(tok, { flow = self.flow, created_at = clock.time(),
    company_id = meta.company_id and tostring(meta.company_id) or nil })
  tok:close()
  local old
  for _ = 1, 5 do
    rec.id = meta.connection_id or random_id()
    local key = self:key(rec.id)
    local current, version, err = self.store:get(key)
    if err then return store_failed(self.store, "reading connection " .. rec.id, err) end
    if current == nil or meta.connection_id then
      rec.company_id = rec.company_id or (current and current.company_id)
      local ok, cerr = self.store:cas(key, version, rec)
      if ok then old = current; break end
      if ok == nil then return store_failed(self.store, "storing connection " .. rec.id, cerr) end
    end
    rec.id = nil
  end
  if not rec.id then return store_failed(self.store, "storing a new connection", "no free id") end
  local indexed, ierr = M.change_index(self, function(ids) ids[rec.id] = true end)
  if not indexed then return nil, ierr end
  -- One authorization per customer: the replaced one is revoked (best effort), with whatever a
  -- process killed in a refresh may have left of it (2012 revokes a whole lifecycle).
  if old then revoke(self, old) end
  return M.public(rec)
end

return M
