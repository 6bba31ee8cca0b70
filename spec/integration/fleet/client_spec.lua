-- The fleet client's parts in one plain-Lua process, on a real redis-server
-- and the emulator: the rate budget's places (read back from Redis) never
-- hold more than N in a window nor more than the burst in a 20th of it, a
-- place beyond max_wait fails, a Redis that is down leaves the budget
-- unenforced with one warning and comes back; the cache keeps finished
-- classifications only, for its ttl, per description; options are checked.
local avalara = require "avalara"
local fleet = require "avalara.fleet"
local rate = require "avalara.fleet.rate"
local failover = require "avalara.store.failover"
local emu = require "spec.support.emulator"
local clock = require "avalara.clock"
local redis = require "spec.support.redis"
local H = require "spec.support.partner"

local PASSWORD = "client-spec-pw-61a0f3"

describe("fleet client", function()
  local e, r
  local seq = 0
  setup(function()
    e = emu.start()
    e:configure { classification_delay = 0.1 }
    r = redis.start { password = PASSWORD }
  end)
  teardown(function()
    if r then r:stop() end
    if e then e:stop() end
  end)
  after_each(function() clock.reset() end)

  local function prefix()
    seq = seq + 1
    return ("client%d:%d:"):format(os.time(), seq)
  end

  local function client(extra, warnings)
    local o = { environment = "local", emulator_url = e.http_url, account_id = "2000000001",
      license_key = "DEMO-LICENSE-KEY-0001", company_id = 1001, timeout = 5,
      redis = { port = r.port, password = PASSWORD, prefix = prefix() },
      on_warning = function(m) warnings[#warnings + 1] = m end }
    for k, v in pairs(extra or {}) do o[k] = v end
    return fleet.new(o)
  end

  -- The most entries of sorted `times` within any span shorter than `span`.
  local function most_within(times, span)
    local most, first = 0, 1
    for last = 1, #times do
      while times[last] - times[first] >= span do first = first + 1 end
      most = math.max(most, last - first + 1)
    end
    return most
  end

  it("gives places that never hold more than N in a window, nor the burst in a 20th of it", function()
    local store = avalara.store.redis { port = r.port, password = PASSWORD, prefix = prefix() }
    local key = store.prefix .. "rate:test"
    local breaker = failover.breaker {}
    -- three hosts' budgets on one key; the sleep records the wait instead of sleeping
    local budgets, waits = {}, {}
    for i = 1, 3 do budgets[i] = rate.new(store.redis, key, { requests = 20, window = 0.5 }, breaker) end
    for i = 1, 60 do
      assert.is_true(budgets[i % 3 + 1]:take(function(s) waits[#waits + 1] = s end))
    end
    local scores = {}
    local out = r:cli("ZRANGE", key, "0", "-1", "WITHSCORES")
    for n in out:gmatch('"(%d+)"') do scores[#scores + 1] = tonumber(n) end
    -- all 60, less those a slow machine took so long over that they left the sliding log
    -- (places older than a window are trimmed as new ones come): never more
    assert.is_true(#scores <= 60 and #scores >= 40, #scores .. " places in the log")
    table.sort(scores)
    assert.equal(20, most_within(scores, 500)) -- ms, Redis's clock
    assert.equal(1, most_within(scores, 25))   -- burst: ceil(20 / 20) in 500 / 20 ms
    -- 60 places at 20 per 0.5 s: the last is about 1 s away
    table.sort(waits)
    assert.is_true(waits[#waits] >= 0.95 and waits[#waits] <= 1.6, tostring(waits[#waits]))
  end)

  it("refuses a place beyond max_wait, recording nothing for it", function()
    local store = avalara.store.redis { port = r.port, password = PASSWORD, prefix = prefix() }
    local key = store.prefix .. "rate:test"
    local b = rate.new(store.redis, key, { requests = 2, window = 10, max_wait = 1, burst = 2 }, failover.breaker {})
    assert.is_true(b:take(function() end))
    assert.is_true(b:take(function() end))
    local ok, err = b:take(function() error("must not sleep") end)
    assert.is_nil(ok)
    assert.equal("timeout", err.kind)
    assert.equal("rate_budget", err.code)
    assert.equal("the fleet's rate budget (2 requests per 10 s) has no room within 1 s", err.message)
    assert.matches("^%(integer%) 2", r:cli("ZCARD", key))
  end)

  it("checks its options, naming them", function()
    local function fails(opts, message)
      local ok, err = pcall(fleet.new, opts)
      assert.is_false(ok)
      assert.matches(message, err, 1, true)
    end
    fails({ account_id = "1", license_key = "k" }, "'redis' (a table of options, or a store) is required")
    fails({ account_id = "1", license_key = "k", redis = {}, store = "memory" }, "'store' is the fleet's")
    fails({ account_id = "1", license_key = "k", redis = {}, rate = { requests = 0 } },
      "'rate.requests' must be a positive integer")
    fails({ account_id = "1", license_key = "k", redis = {}, rate = { requests = 5, window = 0 } }, "'rate.window'")
    fails({ account_id = "1", license_key = "k", redis = {}, cache = { ttl = 0 } }, "'cache.ttl' must be at least 1")
    fails({ account_id = "1", license_key = "k", redis = { port = 0 } }, "'port' must be an integer")
    fails({ account_id = "1", license_key = "k", redis = {}, shared_dict = "d" }, "'shared_dict' is for OpenResty")
  end)

  it("with Redis down: requests succeed without the budget, one warning without the password, then back", function()
    local warnings = {}
    local down = redis.start { password = PASSWORD }
    local c = client({ redis = { port = down.port, password = PASSWORD, prefix = prefix() },
      rate = { requests = 1, window = 60, max_wait = 0 }, retry_after = 0.3 }, warnings)
    assert(c:sections())                                   -- the budget's one place
    down:kill()
    for _ = 1, 3 do assert(c:sections()) end                -- unenforced while down
    assert.equal("down", c:fleet_status().state)
    assert.equal(1, #warnings)
    assert.equal("redis 127.0.0.1:" .. down.port .. "/0 cannot be reached (cannot connect: connection refused): "
      .. "carrying on with local state; trying it again every 0.3 s", warnings[1])
    down:restart()
    clock.advance(0.35) -- past the breaker's retry_after: the next call asks Redis again
    assert(c:sections())                                   -- Redis again: an empty log, one place
    local _, err = c:sections()                            -- and the budget holds again
    assert.equal("rate_budget", err.code)
    assert.equal("up", c:fleet_status().state)
    assert.equal("redis 127.0.0.1:" .. down.port .. "/0 answers again: fleet state is shared again", warnings[2])
    down:stop()
    H.no_secret({ PASSWORD, "DEMO-LICENSE-KEY-0001" }, table.concat(warnings, "\n"), tostring(c),
      H.dump(c:fleet_status()), tostring(c.store))
  end)

  it("wraps a client (no subclass): the budget holds for it and the clients derived from it (Items API)", function()
    local warnings = {}
    local c = client({ rate = { requests = 2, window = 60, max_wait = 0, burst = 2 } }, warnings)
    assert.is_not.equal(getmetatable(c), getmetatable(c.client))
    assert.equal(avalara.Client, getmetatable(c.client).__index)
    assert.equal(c.client.company_id, c.company_id)       -- fields read through
    assert.equal(tostring(c.client), tostring(c))
    assert(c:sections())                                   -- place 1: the HS code API
    assert(c:items())                                      -- place 2: the Items API, a derived client
    local _, err = c:items()
    assert.equal("rate_budget", err.code)
    assert.equal("timeout", err.kind)
    _, err = c.client:sections()                           -- the wrapped client itself is held too
    assert.equal("rate_budget", err.code)
    assert.same({}, warnings)
  end)

  it("caches finished classifications only, for its ttl, per description", function()
    local warnings = {}
    local a = client({ cache = { ttl = 120 } }, warnings)
    local b = fleet.new { environment = "local", emulator_url = e.http_url, account_id = "2000000001",
      license_key = "DEMO-LICENSE-KEY-0001", company_id = 1001, redis = a.redis, cache = { ttl = 120 } }
    local item = { itemCode = "CACHE/1 é", description = "porcelain coffee mug" }
    local creates = function() return e:counters().routes.classification_create or 0 end
    local c0 = creates()
    local pending = assert(a:classify(item, { country = "GB" }))
    assert.equal("PENDING", pending.status)
    assert.equal(c0 + 1, creates())
    assert(b:classify(item, { country = "GB" }))            -- PENDING is not kept: created again
    assert.equal(c0 + 2, creates())
    local done = assert(a:wait(pending, { interval = 0.05 }))
    assert.equal("CLASSIFIED", done.status)
    local hit = assert(b:classify(item, { country = "GB" }))
    assert.same(done, hit)
    assert.equal(c0 + 2, creates())                        -- answered from the cache
    local key = a.redis.prefix .. "cache:hs:1001:GB:CACHE/1 é"
    local ttl = tonumber(r:cli("TTL", key):match("%d+"))
    assert.is_true(ttl > 100 and ttl <= 120, tostring(ttl))
    assert(b:classify({ itemCode = "CACHE/1 é", description = "steel coffee mug" }, { country = "GB" }))
    assert.equal(c0 + 3, creates())                        -- another description: classified again
    assert(b:classify(item, { country = "US" }))            -- another country too
    assert.equal(c0 + 4, creates())
    -- where the wrapped client has services as fields (client.hs), fleet.hs answers from the cache too
    local hs = { sections = function(s) return s end, classify = function() error("not from the cache") end }
    b.client.hs = hs
    assert.same(done, assert(b.hs:classify(item, { country = "GB" })))
    assert.equal(hs, b.hs:sections())                        -- the rest is the service's own
    assert.equal(c0 + 4, creates())
    assert.same({}, warnings)
  end)
end)
