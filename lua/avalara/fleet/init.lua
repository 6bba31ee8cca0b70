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
-- The fleet client has every method of an `avalara.new` client (and takes
-- every option): it is a wrapper that delegates to one (`fleet.client`),
-- made with the fleet's parts, and adds:
--
-- - its token in Redis (`avalara.store.redis`) behind `avalara.store.failover`:
--   one Identity request per token lifetime for the whole fleet; while Redis
--   cannot be reached, this host's copy (the `shared_dict`, else memory), or
--   a token of its own: requests keep succeeding;
-- - with `rate`, every API request first takes a place in the fleet's budget
--   (`avalara.fleet.rate`: a sliding window on Redis, atomic), through the
--   client's `gate` option, so clients derived from it (the Items API) take
--   places too;
-- - with `cache`, `classify` answers from the fleet's cache when the item
--   (company, country, item code, same description) was classified already,
--   and finished classifications read by `classification` or `wait` are kept
--   (`avalara.fleet.cache`);
-- - `fleet.hs` (where the client has services as fields): its `classify`,
--   `classification` and `wait` go through the cache as the methods above;
-- - `fleet_status()`, and the fields `client` (the wrapped client), `redis`
--   (the Redis store), `breaker`, `budget` (with `rate`), `cache` (with `cache`).
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
local client_new = require("avalara.client").new
local stores = require "avalara.store"
local failover = require "avalara.store.failover"
local rate = require "avalara.fleet.rate"
local cache = require "avalara.fleet.cache"
local item_model = require "avalara.hs.item"

local M = {}

local default_warn = require("avalara.warning").default

--- A fleet client: the methods below, and every method and field of the client it wraps.
-- @type FleetClient
local Fleet = {}
M.FleetClient = Fleet

-- `target`'s method `v` run on `target` when called on `proxy` (else on what it is called on).
local function bind(proxy, target, v)
  return function(s, ...)
    if s == proxy then return v(target, ...) end
    return v(s, ...)
  end
end

-- The HS service of the wrapped client (`fleet.hs`, where the client has services as fields):
-- its classify, classification and wait are the fleet's (the cache), the rest its own.
local function hs_service(self, hs)
  local proxy = {}
  for _, name in ipairs { "classify", "classification", "wait" } do
    proxy[name] = function(_, ...) return self[name](self, ...) end
  end
  return setmetatable(proxy, { __index = function(t, k)
    local v = hs[k]
    if type(v) ~= "function" then return v end
    local f = bind(t, hs, v)
    rawset(t, k, f)
    return f
  end })
end

-- Anything else is the wrapped client's: its methods run on it, its fields are read from it.
Fleet.__index = function(self, k)
  local own = Fleet[k]
  if own ~= nil then return own end
  local inner = rawget(self, "client")
  local v = inner[k]
  if k == "hs" and type(v) == "table" and rawget(self, "cache") then
    v = hs_service(self, v)
    rawset(self, k, v)
    return v
  end
  local mt = getmetatable(inner)
  local methods = mt and type(mt.__index) == "table" and mt.__index
  if type(v) ~= "function" or not methods or methods[k] ~= v then return v end
  local bound = bind(self, inner, v)
  rawset(self, k, bound)
  return bound
end

Fleet.__tostring = function(self) return tostring(self.client) end

--- Makes a fleet client.
-- Options: those of `avalara.new`, and
--
-- - `redis`: the options of `avalara.store.redis` (`url`, or `host`, `port`, `socket`, `password`,
--   `username`, `db`; `prefix`, `tls`, `timeout`, ...), or such a store
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
  if o.gate ~= nil then error("avalara.fleet.new: 'gate' is the fleet's (its rate budget): give 'rate' instead", 2) end
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
  local self = { redis = shared, breaker = breaker }
  if opts.rate ~= nil then
    -- Every API request takes a place first (a client option, kept by derived clients).
    o.gate = function(client, n)
      for _ = 1, n do
        local ok, err = self.budget:take(client.sleep)
        if not ok then return nil, err end
      end
      return true
    end
  end
  self.client = client_new(o)
  if opts.rate ~= nil then
    local key = type(opts.rate) == "table" and opts.rate.key or self.client.account_id or "default"
    self.budget = rate.new(shared.redis, shared.prefix .. "rate:" .. tostring(key), opts.rate, breaker)
  end
  if opts.cache ~= nil then self.cache = cache.new(shared.redis, shared.prefix, opts.cache, breaker) end
  return setmetatable(self, Fleet)
end

--- Whether Redis answered the last time it was asked:
-- `{state = "up" | "down", reason}` (per process or nginx worker).
-- @treturn table
function Fleet:fleet_status()
  return self.breaker:status()
end

--- `client:classify` answered from the fleet's cache when it holds this item's
-- classification (same company, country, item code and description), else
-- classified (and kept when it comes back finished).
-- @tparam table item
-- @tparam[opt] table opts
-- @return the classification model, or nil, err
function Fleet:classify(item, opts)
  local c, inner = self.cache, self.client
  if not c then return inner:classify(item, opts) end
  if opts ~= nil and type(opts) ~= "table" then error("client:classify: 'opts' must be a table", 2) end
  local company = inner:company("client:classify")
  local body = item_model.body(item, { company_id = company, country = (opts or {}).country,
    item_group = (opts or {}).item_group, where = "client:classify" })
  local hit, cerr = c:get(company, body.countryOfDestination, body.item.itemCode, body.item.description)
  if cerr then return nil, cerr end -- a misconfigured Redis (an outage is a miss)
  if hit then return hit end
  local model, err = inner:classify(item, opts)
  if model then c:put(company, model) end
  return model, err
end

--- `client:classification`, keeping a finished classification in the fleet's cache.
-- @string id
-- @return the model, or nil, err
function Fleet:classification(id)
  local model, err = self.client:classification(id)
  if model and self.cache then self.cache:put(self.client.company_id, model) end
  return model, err
end

--- `client:wait`, keeping the finished classification in the fleet's cache.
-- @param id_or_model
-- @tparam[opt] table opts
-- @return the model, or nil, err
function Fleet:wait(id_or_model, opts)
  local model, err = self.client:wait(id_or_model, opts)
  if model and self.cache then self.cache:put(self.client.company_id, model) end
  return model, err
end

return M
