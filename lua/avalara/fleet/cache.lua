--- The fleet's classification cache: a finished classification
-- (`CLASSIFIED` or `CANNOT_BE_CLASSIFIED`) kept in Redis for `ttl` seconds
-- under its company, country and item code, so that a SKU is classified
-- once per fleet (`cache = {ttl = S}` of `avalara.fleet.new`).
--
-- A classification is kept with the description it was made for: an item
-- whose description changed since is a miss (classified again, and kept
-- anew). `PENDING` models are never kept. When Redis cannot be reached
-- every lookup is a miss (the breaker of `avalara.store.failover` warns).
-- @module avalara.fleet.cache
local cjson = require "cjson.safe"
local client = require "avalara.resp.client"

local M = {}

local Cache = {}
Cache.__index = Cache

local FINAL = { CLASSIFIED = true, CANNOT_BE_CLASSIFIED = true }

--- Checks `cache` (raises naming the field) and makes the cache.
-- @param redis an `avalara.redis.client`
-- @string prefix the keys' prefix
-- @tparam table cache `{ttl = seconds}` (default one day)
-- @param breaker the fleet's breaker
-- @treturn table the cache
function M.new(redis, prefix, cache, breaker)
  if type(cache) ~= "table" then error("avalara.fleet: 'cache' must be a table {ttl = seconds}", 0) end
  local ttl = cache.ttl or 86400
  if type(ttl) ~= "number" or ttl < 1 then error("avalara.fleet: 'cache.ttl' must be at least 1 (seconds)", 0) end
  return setmetatable({ redis = redis, prefix = prefix .. "cache:hs:", ttl = math.ceil(ttl), breaker = breaker },
    Cache)
end

-- Item codes may hold any character: the key ends with it, whole.
local function key(self, company, country, item_code)
  return ("%s%s:%s:%s"):format(self.prefix, tostring(company), tostring(country), tostring(item_code))
end

--- The kept classification of an item, or nil (a miss, or Redis down), or nil, err (a
-- misconfigured Redis: kind "store", see `avalara.store.redis`).
-- @param company the company id
-- @string country the destination country
-- @string item_code
-- @string description the item's description now (a different one is a miss)
-- @treturn table|nil the model
function Cache:get(company, country, item_code, description)
  if not self.breaker:up() then return nil end
  local s, err, _, code = self.redis:command("GET", key(self, company, country, item_code))
  if s == nil then
    local e = client.error(err, code)
    if not self.breaker:failed(e) then return nil, e end -- misconfigured: the call fails
    return nil
  end
  self.breaker:ok()
  local rec = s and cjson.decode(s)
  if type(rec) ~= "table" or type(rec.model) ~= "table" or rec.description ~= description then return nil end
  return rec.model
end

--- Keeps a finished classification (others are ignored).
-- @param company the company id
-- @tparam table model the classification model (`item.itemCode`, `countryOfDestination`, `status`)
-- @treturn boolean whether it was kept (false, err: a misconfigured Redis)
function Cache:put(company, model)
  local item = type(model) == "table" and model.item
  if not (type(item) == "table" and FINAL[model.status] and type(item.itemCode) == "string"
    and type(model.countryOfDestination) == "string") or not self.breaker:up() then
    return false
  end
  local text = cjson.encode { model = model, description = item.description }
  if not text then return false end
  local ok, err, _, code = self.redis:command("SET", key(self, company, model.countryOfDestination, item.itemCode),
    text, "EX", self.ttl)
  if ok == nil then
    local e = client.error(err, code)
    if not self.breaker:failed(e) then return false, e end
    return false
  end
  self.breaker:ok()
  return true
end

return M
