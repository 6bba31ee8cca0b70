--- Fleets: clients on many hosts (nginx workers, OpenResty hosts, batch
-- scripts) that share one token, one rate budget and one classification
-- cache through Redis.
--
--    local fleet = require "avalara.fleet"
--    local client = fleet.new{ account_id = "...", license_key = "...", company_id = 1001,
--      redis = { host = "10.0.0.5", password = os.getenv("REDIS_PASSWORD"), prefix = "shop:avalara:" },
--      rate = { requests = 100, window = 1 },   -- for the whole fleet
--      cache = { ttl = 86400 },                  -- a SKU is classified once per fleet
--      shared_dict = "avalara_tokens" }          -- in nginx: this host's copy while Redis is down
--
-- The client is an `avalara.new` client (every method, every option) with:
--
-- - its token in Redis (`avalara.store.redis`) behind `avalara.store.failover`:
--   one Identity request per token lifetime for the whole fleet; while Redis
--   cannot be reached, this host's copy (the `shared_dict`, else memory), or
--   a token of its own: requests keep succeeding;
-- - with `rate`, every API request first takes a place in the fleet's budget
--   (`avalara.fleet.rate`: a sliding window on Redis, atomic);
-- - with `cache`, `classify` answers from the fleet's cache when the item
--   (company, country, item code, same description) was classified already,
--   and finished classifications read by `classification` or `wait` are kept
--   (`avalara.fleet.cache`).
--
-- An outage of Redis (refused, timed out) goes to `on_warning` (else nginx's
-- error log, else stderr): once when it stops answering, once when it answers
-- again. A misconfigured Redis (a wrong or missing password, an ACL user
-- without a command or key, `db` out of range, an untrusted certificate, a
-- server that is not Redis) fails the calls with its error (`kind` "store",
-- see `avalara.store.redis`): no host carries on alone without a word. Partner
-- connections are shared by giving `avalara.partner.new` the Redis store
-- itself (`avalara.store.redis{...}`).
-- @module avalara.fleet
local avalara = require "avalara"
local stores = require "avalara.store"
local failover = require "avalara.store.failover"
local rate = require "avalara.fleet.rate"
local cache = require "avalara.fleet.cache"
local item_model = require "avalara.hs.item"

local M = {}

local Client = avalara.Client

--- A fleet client (an `avalara` client; the methods below add the fleet's budget and cache).
-- @type FleetClient
local Fleet = setmetatable({}, { __index = Client })
Fleet.__index = Fleet
Fleet.__tostring = Client.__tostring
M.FleetClient = Fleet

local default_warn = require("avalara.warning").default

-- The fleet parts of client `c` (made by `M.new`, given to derived clients too).
local function wrap(c, parts)
  for k, v in pairs(parts) do c[k] = v end
  return setmetatable(c, Fleet)
end

--- Makes a fleet client.
-- Options: those of `avalara.new`, and
--
-- - `redis`: the options of `avalara.store.redis` (`host`, `port`, `password`, `username`,
--   `db`, `prefix`, `tls`, `timeout`, ...), or such a store
-- - `rate` = `{requests = N, window = S, max_wait = 30, key}`: at most N API requests in any
--   S seconds for every client with the same Redis, prefix and `key` (default the account)
-- - `cache` = `{ttl = 86400}`: the classification cache
-- - `fallback`: this host's store while Redis is down (default the `shared_dict` in nginx, else memory)
-- - `retry_after` (1): seconds between attempts to reach Redis again while it is down
-- @tparam table opts
-- @treturn FleetClient
function M.new(opts)
  if type(opts) ~= "table" then error("avalara.fleet.new: options must be a table", 2) end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  local redis_opts, fallback, retry_after = o.redis, o.fallback, o.retry_after or 1
  o.redis, o.rate, o.cache, o.fallback, o.retry_after = nil, nil, nil, nil, nil
  if type(redis_opts) ~= "table" then
    error("avalara.fleet.new: 'redis' (a table of options, or a store) is required", 2)
  end
  if o.store ~= nil then error("avalara.fleet.new: 'store' is the fleet's (Redis): give 'redis' instead", 2) end
  if type(retry_after) ~= "number" or retry_after <= 0 then
    error("avalara.fleet.new: 'retry_after' must be a positive number", 2)
  end
  local shared = redis_opts.redis and redis_opts or stores.redis(redis_opts)
  local breaker = failover.breaker { name = tostring(shared.redis), retry_after = retry_after,
    warn = opts.on_warning or default_warn }
  if o.shared_dict ~= nil then
    local openresty = require "avalara.openresty"
    if not openresty.in_nginx() then error("avalara.fleet.new: 'shared_dict' is for OpenResty (nginx) only", 2) end
    fallback = fallback or openresty.store(o.shared_dict)
  end
  fallback = fallback or stores.memory()
  o.shared_dict = nil
  o.store = failover.new(shared, fallback, breaker)
  local c = avalara.new(o)
  local parts = { _fleet_breaker = breaker, _fleet_redis = shared }
  if opts.rate ~= nil then
    local key = type(opts.rate) == "table" and opts.rate.key or c.account_id or "default"
    parts._fleet_rate = rate.new(shared.redis, shared.prefix .. "rate:" .. tostring(key), opts.rate, breaker)
  end
  if opts.cache ~= nil then parts._fleet_cache = cache.new(shared.redis, shared.prefix, opts.cache, breaker) end
  parts._fleet_parts = parts
  return wrap(c, parts)
end

--- Whether Redis answered the last time it was asked:
-- `{state = "up" | "down", reason}` (per process or nginx worker).
-- @treturn table
function Fleet:fleet_status()
  return self._fleet_breaker:status()
end

--- Every API exchange takes a place in the rate budget first (`client:exchange`).
function Fleet:exchange(kind, args)
  if kind == "request" and self._fleet_rate then
    local ok, err = self._fleet_rate:take(self.sleep)
    if not ok then return nil, err end
  end
  return Client.exchange(self, kind, args)
end

--- The same for `client:exchange_many`.
function Fleet:exchange_many(reqs, args)
  if self._fleet_rate then
    for _ = 1, #reqs do
      local ok, err = self._fleet_rate:take(self.sleep)
      if not ok then
        local out = {}
        for j = 1, #reqs do out[j] = { err = err } end
        return out
      end
    end
  end
  return Client.exchange_many(self, reqs, args)
end

--- Clients of the same account for another API (the Items flow) share the fleet.
function Fleet:derive(overrides)
  return wrap(Client.derive(self, overrides), self._fleet_parts)
end

--- `client:classify` answered from the fleet's cache when it holds this item's
-- classification (same company, country, item code and description), else
-- classified (and kept when it comes back finished).
-- @tparam table item
-- @tparam[opt] table opts
-- @return the classification model, or nil, err
function Fleet:classify(item, opts)
  local c = self._fleet_cache
  if not c then return Client.classify(self, item, opts) end
  if opts ~= nil and type(opts) ~= "table" then error("client:classify: 'opts' must be a table", 2) end
  local company = self:company("client:classify")
  local body = item_model.body(item, { company_id = company, country = (opts or {}).country,
    item_group = (opts or {}).item_group, where = "client:classify" })
  local hit, cerr = c:get(company, body.countryOfDestination, body.item.itemCode, body.item.description)
  if cerr then return nil, cerr end -- a misconfigured Redis (an outage is a miss)
  if hit then return hit end
  local model, err = Client.classify(self, item, opts)
  if model then c:put(company, model) end
  return model, err
end

--- `client:classification`, keeping a finished classification in the fleet's cache.
-- @string id
-- @return the model, or nil, err
function Fleet:classification(id)
  local model, err = Client.classification(self, id)
  if model and self._fleet_cache then self._fleet_cache:put(self.company_id, model) end
  return model, err
end

return M
