-- One error convention (docs/errors.md), walked: every public function
-- reachable from `require "avalara"` and the documented modules is made to
-- fail at run time (the emulator down, refusing the key, answering 404 or a
-- fault, a store that fails, a file where a folder should be, data that
-- cannot be used, a fleet's Redis down) and must return `nil, err` with
-- `err` an avalara.error (core.is_error) of a known kind (of the kind
-- expected) with a string message; iterators yield `nil, err`; a wrong
-- argument raises, naming the function; "interrupted!" is never swallowed.
--
-- The first block checks that the walk is complete: every public Client
-- method and every function of a documented module is walked below or
-- listed in NOT_WALKED with the reason.

local core = require "avalara.core"
local avalara = require "avalara"
local emu = require "spec.support.emulator"
local H = require "spec.support.client"

local unpack = table.unpack or unpack
local function pack(...) return { n = select("#", ...), ... } end

-- docs/errors.md, "Kinds"
local KINDS = { transport = true, timeout = true, tls = true, http = true, oauth = true, api = true, quota = true,
  parse = true, store = true, input = true, permission = true }

local DOCUMENTED = { "avalara", "avalara.item", "avalara.descriptions", "avalara.webhook", "avalara.fleet",
  "avalara.clock", "avalara.store", "avalara.store.file", "avalara.store.redis", "avalara.store.failover",
  "avalara.partner", "avalara.openresty", "avalara.openresty.subrequest", "avalara.redis.client",
  "avalara.redis.resp", "avalara.async", "avalara.batch", "avalara.journal", "avalara.catalog", "avalara.items",
  "avalara.retry", "avalara.paths", "avalara.private", "avalara.digest", "avalara.definitions", "avalara.fetch",
  "avalara.multi", "avalara.connection" }

-- Public functions this spec does not make fail, and why.
local NOT_WALKED = {
  ["client:derive"] = "builds a client; no I/O (a bad override raises, as avalara.new)",
  ["client:webhook_secret"] = "an HMAC of the license key; no I/O",
  ["client:pending"] = "a count; no I/O",
  ["client:poll_sockets"] = "a list of descriptors; no I/O",
  ["client:poll_timeout"] = "a number or nil; no I/O",
  ["client:cancel"] = "drops a handle; no I/O (a foreign handle raises: walked)",
  -- the client's extension interface for services and wrappers (issue 22)
  ["client:hook_raised"] = "reports a hook's error as a warning; returns nothing",
  ["client:observe"] = "tells on_request of an exchange; returns nothing",
  ["client:pause"] = "waits a little; returns nothing",
  ["client:prepare"] = "prepares an exchange (core.prepare_*: a bad request raises); no I/O",
  ["client:token_cache"] = "the token cache object or nil; no I/O",
  ["client:transport_info"] = "a table; no I/O",
  ["client:within"] = "returns what the function it runs returns (spec/integration/client/deadline_spec.lua)",
  ["client:deadline"] = "a number or nil; no I/O",
  ["partner:key"] = "a store key; no I/O",
  ["avalara.redis.resp.read_reply"] = "the parser's own shape for avalara.resp.client (walked through read)",
  ["avalara.store.shared_dict"] = "nginx only (spec/integration/openresty)",
  ["avalara.clock.now"] = "no failure", ["avalara.clock.time"] = "no failure",
  ["avalara.clock.advance"] = "a test seam", ["avalara.clock.reset"] = "a test seam",
  ["avalara.clock.set"] = "the host's seam (wrong arguments raise: spec/unit/client/clock_spec.lua)",
  ["avalara.clock.sleep"] = "sleeps",
  ["avalara.digest.of"] = "pure (a non-string raises)",
  ["avalara.paths.build"] = "pure (a bad template name raises)", ["avalara.paths.encode"] = "pure",
  ["avalara.paths.item_code"] = "pure",
  ["avalara.retry.run"] = "returns what the function it runs returns", ["avalara.retry.policy"] = "pure",
  ["avalara.retry.delay"] = "pure", ["avalara.retry.next_delay"] = "pure", ["avalara.retry.retryable"] = "pure",
  ["avalara.retry.sleep"] = "sleeps", ["avalara.retry.poll_reserve"] = "pure",
  ["avalara.definitions.normal_code"] = "pure (a code without its dots)", ["avalara.retry.now"] = "no failure",
  ["avalara.item.text"] = "a field checker used by check (walked through check)",
  ["avalara.item.country_known"] = "a boolean",
  ["avalara.webhook.secret"] = "pure (HMAC)", ["avalara.webhook.sign"] = "pure (HMAC)",
  ["avalara.webhook.sign_message"] = "pure (HMAC; a bad key or algorithm raises)",
  ["avalara.journal.remove"] = "removes files if they are there; no failure to report",
  ["client:endpoints"] = "never fails: without a discovery document, the issuer's /connect/* (a warning; "
    .. "spec/integration/client/discovery_spec.lua)",
  ["avalara.webhook.handle"] = "answers HTTP: status, answer, event, log line (parse's failures become 400/401/500)",
  ["avalara.webhook.openresty"] = "nginx only (spec/integration/openresty)",
  ["avalara.webhook.seen.shared_dict"] = "nginx only (spec/integration/openresty)",
  ["avalara.webhook.seen.redis"] = "wraps a redis client or store (their failures walked)",
  ["avalara.openresty.in_nginx"] = "a boolean", ["avalara.openresty.mode"] = "a string and a reason",
  ["avalara.openresty.client_defaults"] = "options for avalara.new",
  ["avalara.openresty.store"] = "nginx only (spec/integration/openresty)",
  ["avalara.openresty.transport"] = "nginx only (spec/integration/openresty)",
  ["avalara.openresty.run_many"] = "nginx only (spec/integration/openresty)",
  ["avalara.openresty.subrequest.transport"] = "nginx only (spec/integration/openresty)",
  ["avalara.redis.client.reply_code"] = "pure", ["avalara.redis.client.error"] = "builds an error (kind store)",
  ["avalara.redis.client.unique"] = "a random token",
  ["avalara.redis.resp.encode"] = "pure",
  ["avalara.store.default_path"] = "a path", ["avalara.store.memory"] = "no I/O",
  ["avalara.store.failover.breaker"] = "a state machine; no I/O", ["avalara.store.failover.outage"] = "a predicate",
  ["avalara.store.failover.new"] = "composes two stores (their failures walked)",
  ["avalara.batch.canonical"] = "pure", ["avalara.batch.id_of"] = "pure",
  ["avalara.batch.plan"] = "a step of batch.run (walked through client:classify_batch)",
  ["avalara.batch.run"] = "the engine of batch.classify (walked through it)",
  ["avalara.journal.encode_result"] = "pure", ["avalara.journal.decode_result"] = "pure",
  ["avalara.journal.memory"] = "no I/O",
  ["avalara.items.countries"] = "checks arguments (raises)", ["avalara.items.api"] = "a derived client; no I/O",
  ["avalara.items.statuses"] = "the engine of wait_hscode_classification (walked through it)",
  ["avalara.private.dirname"] = "pure",
  ["avalara.private.remove_dir"] = "best effort cleanup; returns nothing",
  ["avalara.definitions.resolve"] = "pure", ["avalara.fetch.resolve"] = "pure", ["avalara.fetch.query"] = "pure",
  ["avalara.fetch.pager"] = "the engine of fetch.collect and fetch.each (walked through them)",
  ["avalara.multi.new"] = "an internal of client:start_* (walked through them)",
  ["avalara.connection.fail"] = "builds an error", ["avalara.connection.store_failed"] = "builds an error",
  ["avalara.connection.unknown"] = "builds an error", ["avalara.connection.precise"] = "maps an error",
  ["avalara.connection.with_tokens"] = "pure", ["avalara.connection.source"] = "a token source (walked via partner)",
  ["avalara.connection.token"] = "the engine of partner:client tokens (walked via partner)",
  ["avalara.partner.new"] = "builds a partner; no I/O (walked: its methods)",
  ["avalara.descriptions.new"] = "builds a lookup; no I/O (walked: its get)",
}

local ITEM = { itemCode = "ES-1", description = "wooden chair" }

-- The checks. Each returns nil or what is wrong.
local function shape(err)
  if not core.is_error(err) then
    return "err is a " .. type(err) .. " (" .. tostring(err) .. "), not an avalara.error"
  end
  if not KINDS[err.kind] then return "unknown kind " .. tostring(err.kind) end
  if type(err.message) ~= "string" or err.message == "" then return "no string message" end
end

local function fails(...)
  local n, first, err = select("#", ...), ...
  if first ~= nil then
    return "returned " .. tostring(first) .. (n > 1 and (", " .. tostring(err)) or "") .. " (want nil, err)"
  end
  return shape(err)
end

local CASES = {}
local function case(name, mode, run, opts)
  opts = opts or {}
  CASES[#CASES + 1] = { name = name, mode = mode, run = run, kinds = opts.kinds, expect = opts.expect or "fail",
    raises = opts.raises }
end

-- The client methods that go to the network: down (nothing listens: transport)
-- and refused (a wrong license key: oauth).
local NETWORK = {
  { "token", function(c) return c:token() end },
  { "warm_up", function(c) return c:warm_up() end },
  { "call", function(c) return c:call("GET", "/hscodes/sections") end },
  { "classify", function(c) return c:classify(ITEM, { country = "US" }) end },
  { "classification", function(c) return c:classification("1001-ES-1-US") end },
  { "wait", function(c) return c:wait("1001-ES-1-US", { timeout = 2, interval = 0.05 }) end },
  { "sections", function(c) return c:sections() end },
  { "hs_codes", function(c) return c:hs_codes("US", "84") end },
  { "hierarchy", function(c) return c:hierarchy("US", "610910") end },
  { "create_items", function(c) return c:create_items { ITEM } end },
  { "items", function(c) return c:items() end },
  { "item", function(c) return c:item(1) end },
  { "update_item", function(c) return c:update_item(1, ITEM) end },
  { "delete_item", function(c) return c:delete_item(1) end },
  { "initiate_hscode_classification", function(c) return c:initiate_hscode_classification({ 1 }, { "US" }) end },
  { "hscode_classification_status", function(c) return c:hscode_classification_status(1) end },
  { "wait_hscode_classification", function(c)
    return c:wait_hscode_classification({ 1 }, { "US" }, { timeout = 2, interval = 0.05 })
  end },
  { "hscode_classification_sla", function(c) return c:hscode_classification_sla() end },
  { "verify_hscodes", function(c) return c:verify_hscodes { { itemId = 1, country = "FR", hsCode = "691110" } } end },
  { "dismiss_hscode_classification", function(c) return c:dismiss_hscode_classification(1, "US") end },
  { "delete_hscode_classification_status", function(c) return c:delete_hscode_classification_status(1, "1") end },
  { "hscode_classification_statuses", function(c) return c:hscode_classification_statuses() end },
  { "item_classifications", function(c) return c:item_classifications(1) end },
  { "item_classification", function(c) return c:item_classification(1, 1) end },
  { "premium_classification", function(c) return c:premium_classification("ES-1", "TARIC", "DE") end },
  { "premium_classifications", function(c) return c:premium_classifications("ES-1") end },
  { "create_webhook_registration", function(c)
    return c:create_webhook_registration { connectorName = "shape", url = "https://example.com/hook" }
  end },
  { "webhook_registrations", function(c) return c:webhook_registrations() end },
  { "webhook_registration", function(c) return c:webhook_registration(1) end },
  { "update_webhook_registration", function(c) return c:update_webhook_registration(1, { url = "https://example.com/hook2" }) end },
  { "delete_webhook_registration", function(c) return c:delete_webhook_registration(1) end },
  { "item_events", function(c) return c:item_events() end },
  { "classify_catalog", function(c) return c:classify_catalog({ ITEM }, { "US" }, { timeout = 2 }) end },
}
for _, m in ipairs(NETWORK) do
  local name, run = m[1], m[2]
  case("client:" .. name, "down", function(x) return run(x.down) end)
  case("client:" .. name, "refused", function(x) return run(x.refused) end)
end
-- A service method without a flat alias of its own (client:items is the service called).
case("client.items:list", "down", function(x) return x.down.items:list() end)

-- One exchange (no token: the caller brings its headers), one or many.
case("client:exchange", "down", function(x)
  return x.down:exchange("request", { method = "GET", url = x.down.api_base .. "/definitions/hscodes/sections" })
end)
case("client:exchange_many", "down", function(x)
  local c = x.down
  return c:exchange_many({ { method = "GET", url = c.api_base .. "/definitions/hscodes/sections" } }, {})
end, { expect = "each_err" })

-- Iterators yield nil, err once, then stop.
for _, m in ipairs {
  { "each_hs_code", function(c) return c:each_hs_code("US", "84") end },
  { "each_item", function(c) return c:each_item() end },
} do
  for _, mode in ipairs { "down", "refused" } do
    case("client:" .. m[1], mode, function(x) return m[2](x[mode]) end,
      { expect = "iterator" })
  end
end

-- classify_batch: results line up with the items; a failed item is an error.
for _, mode in ipairs { "down", "refused" } do
  case("client:classify_batch", mode, function(x)
    return x[mode]:classify_batch({ ITEM, { itemCode = "ES-2", description = "leather handbag" } },
      { country = "US", concurrency = 2 })
  end, { expect = "results" })
end

-- Non-blocking calls: the failure comes back from poll as {handle, err}.
for _, m in ipairs {
  { "start_classify", function(c) return c:start_classify(ITEM, { country = "US" }) end },
  { "start_classification", function(c) return c:start_classification("1001-ES-1-US") end },
  { "start_wait", function(c) return c:start_wait("1001-ES-1-US", { timeout = 2 }) end },
} do
  for _, mode in ipairs { "down", "refused" } do
    case("client:" .. m[1], mode, function(x)
      local c = x[mode]
      local handle = m[2](c)
      local deadline = os.time() + 20
      while c:pending() > 0 and os.time() < deadline do
        for _, done in ipairs(c:poll(0.05)) do
          if done.handle == handle then return done.result, done.err end
        end
      end
      return "no answer from poll"
    end)
  end
end
case("client:poll", "down", function(x)
  local c = x.down
  c:start_classification("1001-ES-1-US")
  local got
  local deadline = os.time() + 20
  while c:pending() > 0 and os.time() < deadline do
    for _, done in ipairs(c:poll(0.05)) do got = done end
  end
  return got and got.result, got and got.err
end)

-- The emulator answering an API error (404) and the right key.
case("client:classification", "404", function(x) return x.live:classification("1001-NO-SUCH-ITEM-US") end,
  { kinds = { api = true } })
case("client:item", "404", function(x) return x.live:item(987654321) end, { kinds = { api = true } })
-- a two-letter code is checked before any request (avalara.country: "QQ" raises); a name goes to the service
case("client:hs_codes", "invalid country", function(x) return x.live:hs_codes("Narnia", "84") end,
  { kinds = { api = true } })

-- The emulator's faults (emulator/README.md, "Fault kinds"), no retries.
for _, f in ipairs {
  { "500", { api = true } }, { "html", { http = true } }, { "invalid_json", { parse = true } },
  { "truncated", { parse = true, http = true, transport = true } }, { "reset", { transport = true } },
  { "AvalaraIdentityApiError", { api = true } },
} do
  case("client:classify", "the service answers " .. f[1], function(x)
    x.live:token() -- the fault is for the create, not the grant
    x.e:fault("classification_create", f[1], 1)
    local out = pack(x.live:classify(ITEM, { country = "US" }))
    x.e:clear_faults()
    return unpack(out, 1, out.n)
  end, { kinds = f[2] })
end
case("client:sections", "the service answers 503", function(x)
  x.live:token()
  x.e:fault("definitions_sections", "503", 1, { retry_after = 0 })
  local out = pack(x.live:sections())
  x.e:clear_faults()
  return unpack(out, 1, out.n)
end, { kinds = { api = true } })

-- Kinds: down is transport (or timeout), refused is oauth.
for _, c in ipairs(CASES) do
  if not c.kinds then
    c.kinds = c.mode == "down" and { transport = true, timeout = true } or c.mode == "refused" and { oauth = true } or nil
  end
end

-- A store that fails: the client's token store, a partner's connection store.
local function broken_store()
  local function err() return core.error { kind = "store", message = "the disk is on fire" } end
  local function fail() return nil, err() end
  return { get = function() return nil, nil, err() end, set = fail, cas = fail, delete = fail, lock = fail }
end
case("client:classify", "store fails", function(x)
  return H.client(x.e, { store = broken_store(), retries = false }):classify(ITEM, { country = "US" })
end, { kinds = { store = true } })

local function partner(x, store)
  return require("avalara.partner").new { client_id = "partner-app", client_secret = "partner-secret",
    environment = "local", emulator_url = x.e.http_url, redirect_uri = "http://127.0.0.1/cb", store = store,
    retries = false }
end
case("partner:connections", "store fails", function(x) return partner(x, broken_store()):connections() end,
  { kinds = { store = true } })
case("partner:client", "store fails", function(x) return partner(x, broken_store()):client("c-1") end,
  { kinds = { store = true } })
case("partner:client", "unknown connection", function(x) return partner(x):client("c-none") end)
case("partner:disconnect", "store fails", function(x) return partner(x, broken_store()):disconnect("c-1") end,
  { kinds = { store = true } })
case("partner:authorize_url", "store fails", function(x) return partner(x, broken_store()):authorize_url() end,
  { kinds = { store = true } })
case("partner:handle_callback", "store fails", function(x)
  return partner(x, broken_store()):handle_callback { code = "x", state = ("s"):rep(22) }
end, { kinds = { store = true } })
-- The server's code stays in `code`; the partner's reading of it goes in `oauth_detail`.
case("partner:handle_callback", "the server refuses the code", function(x)
  local P = require "spec.support.partner"
  local p = P.partner(x.e, "2012", { retries = false })
  local _, state = assert(p:authorize_url())
  local out = pack(p:handle_callback { code = "not-a-code", state = state })
  local err = out[2]
  if core.is_error(err) and (err.code ~= "invalid_grant" or err.oauth_detail == nil) then
    return nil, "code " .. tostring(err.code) .. ", oauth_detail " .. tostring(err.oauth_detail)
      .. " (want the server's invalid_grant, and the partner's reading in oauth_detail)"
  end
  return unpack(out, 1, out.n)
end, { kinds = { oauth = true } })
case("partner:handle_callback", "no state", function(x) return partner(x):handle_callback { code = "x" } end)
case("partner:self_grant", "down", function(x)
  local p = require("avalara.partner").new { client_id = "partner-app", client_secret = "partner-secret",
    environment = "local", emulator_url = x.closed_url, redirect_uri = "http://127.0.0.1/cb", retries = false,
    timeout = 2 }
  return p:self_grant()
end, { kinds = { transport = true, timeout = true } })

-- A fleet client (avalara.fleet) whose Redis is down works on its local store;
-- the service down too: the calls fail as a client's do.
local function fleet(x, extra)
  local o = { account_id = H.ACCOUNT, license_key = H.KEY, company_id = H.COMPANY, environment = "local",
    emulator_url = x.closed_url, retries = false, timeout = 2, on_warning = function() end,
    redis = { host = "127.0.0.1", port = x.closed_port, timeout = 1 } }
  for k, v in pairs(extra or {}) do o[k] = v end
  return require("avalara.fleet").new(o)
end
case("fleet:classify", "Redis and the service down", function(x) return fleet(x):classify(ITEM, { country = "US" }) end,
  { kinds = { transport = true, timeout = true, store = true } })
case("fleet:classify", "Redis down, rate and cache on, the service down", function(x)
  return fleet(x, { rate = { requests = 10, window = 1 }, cache = { ttl = 60 } }):classify(ITEM, { country = "US" })
end, { kinds = { transport = true, timeout = true, store = true } })
case("fleet:classification", "Redis and the service down", function(x)
  return fleet(x):classification("1001-ES-1-US")
end, { kinds = { transport = true, timeout = true, store = true } })

-- Data that cannot be used (kind input), files and stores that fail (kind store).
case("avalara.item.check", "bad item", function() return require("avalara.item").check { itemCode = "X" } end,
  { kinds = { input = true } })
case("avalara.items.body", "bad item", function() return require("avalara.items").body { itemCode = "X" } end,
  { kinds = { input = true } })
case("avalara.catalog.read", "no such file", function(x) return require("avalara.catalog").read(x.dir .. "/none.csv") end,
  { kinds = { input = true } })
case("avalara.catalog.read", "no itemCode column", function(x)
  local path = x.dir .. "/bad.csv"
  local f = assert(io.open(path, "w"))
  f:write("code,description\nA,chair\n")
  f:close()
  return require("avalara.catalog").read(path)
end, { kinds = { input = true } })
case("avalara.catalog.classify", "down", function(x)
  return require("avalara.catalog").classify(x.down, { ITEM }, { "US" }, { timeout = 2 })
end, { kinds = { transport = true, timeout = true } })
case("avalara.journal.open", "a file where a folder should be", function(x)
  return require("avalara.journal").open(x.dir .. "/plain-file/folder/j.db", { id = "x" })
end, { kinds = { store = true } })
case("avalara.batch.classify", "bad journal", function(x)
  return require("avalara.batch").classify(x.down, { ITEM }, { country = "US", journal = x.dir .. "/plain-file/j.db" })
end, { kinds = { store = true } })
case("avalara.store.file", "a file where a folder should be", function(x)
  return require("avalara.store").file(x.dir .. "/plain-file/folder/t.db"):set("k", { v = 1 }, 10)
end, { kinds = { store = true } })
case("avalara.store.file.open", "a file where a folder should be", function(x)
  local s = require("avalara.store.file").open(x.dir .. "/plain-file/folder/t.db")
  local v, version, err = s:get("k")
  return v or version, err
end, { kinds = { store = true } })
-- The store contract (avalara.store): get -> nil, nil, err; the others -> nil, err.
local function store_walk(name, mode, make)
  for _, m in ipairs { "get", "set", "cas", "delete", "lock" } do
    case(name .. ":" .. m, mode, function(x)
      local st = make(x)
      if m == "get" then
        local v, version, err = st:get("k")
        return v or version, err
      elseif m == "set" then return st:set("k", { v = 1 }, 10)
      elseif m == "cas" then return st:cas("k", nil, { v = 1 }, 10)
      elseif m == "delete" then return st:delete("k")
      else return st:lock("k", 5) end
    end, { kinds = { store = true } })
  end
end
store_walk("avalara.store.file", "a file where a folder should be", function(x)
  return require("avalara.store").file(x.dir .. "/plain-file/folder/t.db")
end)
store_walk("avalara.store.redis", "nothing listens", function(x)
  return require("avalara.store").redis { host = "127.0.0.1", port = x.closed_port, timeout = 1 }
end)
case("avalara.store.redis", "nothing listens", function(x)
  local s = require("avalara.store").redis { host = "127.0.0.1", port = x.closed_port, timeout = 1 }
  local v, version, err = s:get("k")
  return v or version, err
end, { kinds = { store = true } })
case("avalara.store.redis.new", "nothing listens", function(x)
  local s = require("avalara.store.redis").new { host = "127.0.0.1", port = x.closed_port, timeout = 1 }
  local _, err = s:set("k", "v", 10)
  return nil, err
end, { kinds = { store = true } })
case("avalara.redis.client.new", "nothing listens", function(x)
  local r = require("avalara.redis.client").new { host = "127.0.0.1", port = x.closed_port, timeout = 1 }
  return r:command("PING")
end, { kinds = { store = true } })
case("avalara.redis.resp.read", "a reply that is not RESP", function()
  local pending = "?what\r\n" -- a socket that has sent these bytes
  local sock = { receive = function(_, n)
    if pending == "" then return nil, "closed" end
    local part = pending:sub(1, n)
    pending = pending:sub(n + 1)
    return part
  end }
  return require("avalara.redis.resp").read(sock)
end, { kinds = { parse = true, store = true } })
case("avalara.webhook.parse", "bad signature", function()
  return require("avalara.webhook").parse("{}", { ["X-Avalara-Timestamp"] = tostring(os.time()),
    ["X-Avalara-Signature"] = "nope" }, { secret = ("s"):rep(32) })
end, { kinds = { input = true, http = true } })
case("avalara.webhook.seen.sqlite", "a file where a folder should be", function(x)
  return require("avalara.webhook").seen.sqlite(x.dir .. "/plain-file/folder/seen.db")
end, { kinds = { store = true } })
case("avalara.webhook.seen.store", "store fails", function()
  local seen = require("avalara.webhook").seen.store(broken_store())
  return seen:claim("event-1")
end, { kinds = { store = true } })
case("avalara.descriptions:get", "down", function(x)
  return require("avalara.descriptions").new(x.down):get("US", "610910")
end, { kinds = { transport = true, timeout = true } })
for _, fn in ipairs { "sections", "hs_codes", "hierarchy", "each_hs_code" } do
  case("avalara.definitions." .. fn, "down", function(x)
    local d = require("avalara.definitions")
    if fn == "sections" then return d.sections(x.down) end
    if fn == "each_hs_code" then return d.each_hs_code(x.down, "US", "84") end
    return d[fn](x.down, "US", fn == "hierarchy" and "610910" or "84")
  end, { kinds = { transport = true, timeout = true }, expect = fn == "each_hs_code" and "iterator" or "fail" })
end
case("avalara.fetch.collect", "down", function(x)
  return require("avalara.fetch").collect(x.down, x.down.api_base .. "/hscodes/sections")
end, { kinds = { transport = true, timeout = true } })
case("avalara.fetch.each", "down", function(x)
  return require("avalara.fetch").each(x.down, x.down.api_base .. "/hscodes/sections")
end, { kinds = { transport = true, timeout = true }, expect = "iterator" })
for _, fn in ipairs { "create", "file", "folder", "temp_beside" } do
  case("avalara.private." .. fn, "a file where a folder should be", function(x)
    local p, path = require("avalara.private"), x.dir .. "/plain-file/folder/f"
    if fn == "folder" then return p.folder(x.dir .. "/plain-file/folder/d") end
    if fn == "temp_beside" then return p.temp_beside(path, ".tmp") end
    return p[fn](path)
  end, { kinds = { store = true, input = true } })
end
case("avalara.private.temp_dir", "a prefix naming a folder", function()
  return require("avalara.private").temp_dir("shape/\0bad")
end, { kinds = { store = true, input = true } })

-- The interpreter's "interrupted!" (Ctrl-C) is never taken for a failure: raised
-- inside a transport function, a hook or a store, it comes out of the call.
local function interrupt() error("interrupted!", 0) end
for _, m in ipairs {
  { "a transport function", { transport = interrupt } },
  { "on_request", { on_request = interrupt } },
  { "on_token", { on_token = interrupt } },
  { "a store's get", { store = { get = interrupt, set = function() return true end,
    lock = function() return function() end end } } },
  { "a store's lock", { store = { get = function() return nil end, set = function() return true end, lock = interrupt } } },
} do
  case("client:classify", "interrupted in " .. m[1], function(x)
    local o = { retries = false }
    for k, v in pairs(m[2]) do o[k] = v end
    return H.client(x.e, o):classify(ITEM, { country = "US" })
  end, { expect = "interrupt" })
end

-- Wrong arguments raise, naming the function.
local RAISES = {
  { "avalara.new", function() return avalara.new { comapny_id = 1 } end, "comapny_id" },
  { "client:classify", function(x) return x.live:classify(42) end },
  { "client:classification", function(x) return x.live:classification(42) end },
  { "client:wait", function(x) return x.live:wait(42) end },
  { "client:hs_codes", function(x) return x.live:hs_codes(1, 2) end },
  { "client:each_hs_code", function(x) return x.live:each_hs_code(1, 2) end },
  { "client:hierarchy", function(x) return x.live:hierarchy(1, 2) end },
  { "client:classify_batch", function(x) return x.live:classify_batch(42) end },
  { "client.batch:plan", function(x) return x.live.batch:plan({}, 42) end },
  { "client.batch:run", function(x) return x.live.batch:run(42, function() end) end },
  { "client:create_items", function(x) return x.live:create_items(42) end },
  { "client:item", function(x) return x.live:item({}) end },
  { "client:items", function(x) return x.live:items(42) end },
  { "client:update_item", function(x) return x.live:update_item(1, 42) end },
  { "client:delete_item", function(x) return x.live:delete_item({}) end },
  { "client:initiate_hscode_classification", function(x) return x.live:initiate_hscode_classification(42, 42) end },
  { "client:wait_hscode_classification", function(x) return x.live:wait_hscode_classification(42, 42) end },
  { "client:verify_hscodes", function(x) return x.live:verify_hscodes(42) end },
  { "client:premium_classification", function(x) return x.live:premium_classification(42) end },
  { "client:create_webhook_registration", function(x) return x.live:create_webhook_registration(42) end },
  { "client:webhook_secret", function(x) return x.live:webhook_secret({}) end, nil,
    "raises naming avalara.webhook.secret" },
  { "client:classify_catalog", function(x) return x.live:classify_catalog(42, 42) end },
  { "client:start_classify", function(x) return x.live:start_classify(42) end },
  { "client:start_wait", function(x) return x.live:start_wait(42) end },
  { "client:cancel", function(x) return x.live:cancel({}) end },
  { "client:company", function(x)
    return H.client(x.e, { company_id = false }):company("client:classify")
  end, "client:classify" }, -- it names the caller it is asked for
  { "client:update_webhook_registration", function(x) return x.live:update_webhook_registration(1, 42) end },
  { "client:delete_webhook_registration", function(x) return x.live:delete_webhook_registration({}) end },
  { "client:webhook_registration", function(x) return x.live:webhook_registration({}) end },
  { "client:item_classifications", function(x) return x.live:item_classifications({}) end },
  { "client:item_classification", function(x) return x.live:item_classification({}, {}) end },
  { "client:premium_classifications", function(x) return x.live:premium_classifications(42) end },
  { "client:hscode_classification_status", function(x) return x.live:hscode_classification_status({}) end },
  { "client:dismiss_hscode_classification", function(x) return x.live:dismiss_hscode_classification({}, 42) end },
  { "client:delete_hscode_classification_status", function(x) return x.live:delete_hscode_classification_status(1, 42) end },
  { "client:start_classification", function(x) return x.live:start_classification(42) end },
  { "client:each_item", function(x) return x.live:each_item(42) end },
  { "client:poll", function(x) return x.live:poll("soon") end },
  { "client:call", function(x) return x.live:call(42) end, nil,
    "indexes a nil 'path' (no argument check)" },
  { "client:exchange", function(x) return x.live:exchange("no-such-grant", 42) end, nil,
    "indexes a number 'args' (no argument check)" },
  { "client:derive", function(x) return x.live:derive(42) end, nil,
    "'for iterator' over a number (no argument check)" },
  { "avalara.fleet.new", function() return require("avalara.fleet").new { account_id = H.ACCOUNT } end },
  { "avalara.webhook.parse", function() return require("avalara.webhook").parse("{}", {}, 42) end },
  { "avalara.item.body", function() return require("avalara.item").body({ itemCode = "X" }, {}) end, "avalara.item" },
  { "avalara.digest.of", function() return require("avalara.digest").of(42) end },
  { "avalara.partner.new", function() return require("avalara.partner").new(42) end },
  { "partner:client", function(x) return partner(x):client(42) end },
}
for _, r in ipairs(RAISES) do
  case(r[1], "wrong argument", r[2], { expect = "raise", raises = r[3] })
end

describe("the error-shape walk", function()
  it("walks every public Client method, or says why not", function()
    local walked = {}
    for _, c in ipairs(CASES) do walked[c.name] = true end
    local missing = {}
    for name, v in pairs(avalara.Client) do
      if type(v) == "function" and not name:match("^_") then
        local key = "client:" .. name
        if not walked[key] and not NOT_WALKED[key] then missing[#missing + 1] = key end
      end
    end
    table.sort(missing)
    assert(#missing == 0, "not walked (add a case or a NOT_WALKED reason): " .. table.concat(missing, ", "))
  end)

  it("walks every function of the documented modules, or says why not", function()
    local walked = {}
    for _, c in ipairs(CASES) do walked[c.name] = true end
    local missing = {}
    local function visit(prefix, t, depth)
      -- a service module's `new(client)` is walked through the client (see "the services as fields")
      local service = type(t.field) == "string" and type(t.new) == "function"
      for k, v in pairs(t) do
        local name = prefix .. "." .. tostring(k)
        if type(k) == "string" and k:match("^_") or (service and k == "new") then -- luacheck: ignore 542
          -- private (spec/unit/client/layering_spec.lua checks that nobody reads it)
        elseif type(v) == "function" and not walked[name] and not NOT_WALKED[name] then
          missing[#missing + 1] = name
        elseif type(v) == "table" and depth < 1 and not service and type(k) == "string" and k:match("^[a-z]") then
          visit(name, v, depth + 1)
        end
      end
    end
    for _, m in ipairs(DOCUMENTED) do
      local ok, mod = pcall(require, m)
      assert(ok, m .. " no longer loads: " .. tostring(mod))
      if type(mod) == "table" and m ~= "avalara" then visit(m, mod, 0) end
    end
    table.sort(missing)
    assert(#missing == 0, "not walked (add a case or a NOT_WALKED reason): " .. table.concat(missing, ", "))
  end)
end)

-- Services as fields (issue 22): `client.hs`, `client.items`, `client.batch`,
-- `client.async`, each a module with `field`, `aliases` (flat Client name ->
-- service method) and `new(client)`. Every service method is reached through
-- a flat alias walked above, so the walk covers the services too.
local SERVICES = { "avalara.hs", "avalara.items", "avalara.batch", "avalara.async" }
local function services()
  local out = {}
  for _, name in ipairs(SERVICES) do
    local ok, mod = pcall(require, name)
    if ok and type(mod) == "table" and type(mod.field) == "string" and type(mod.new) == "function" then
      out[#out + 1] = { name = name, mod = mod }
    end
  end
  return out
end

describe("the services as fields", function()
  local found = services()
  local function check()
    local walked = {}
    for _, c in ipairs(CASES) do walked[c.name] = true end
    local problems = {}
    for _, s in ipairs(found) do
      local targets = {}
      for flat, method in pairs(s.mod.aliases or {}) do
        targets[method] = true
        if not walked["client:" .. flat] and not NOT_WALKED["client:" .. flat] then
          problems[#problems + 1] = s.name .. ": alias client:" .. flat .. " is not walked"
        end
      end
      local client = avalara.new { account_id = H.ACCOUNT, license_key = H.KEY, company_id = H.COMPANY,
        environment = "local", emulator_url = "http://127.0.0.1:9" }
      local service = client[s.mod.field]
      if service == nil then
        problems[#problems + 1] = s.name .. ": client." .. s.mod.field .. " is nil"
      else
        local seen = {}
        local function methods(t)
          for k, v in pairs(t) do
            if type(v) == "function" and type(k) == "string" and not k:match("^_") and not seen[k] then
              seen[k] = true
              local own = "client." .. s.mod.field .. ":" .. k -- a case of its own may name it so
              if not targets[k] and k ~= "new" and not walked[own] and not NOT_WALKED[own] then
                problems[#problems + 1] = s.name .. ": " .. own .. " is not walked (no flat alias, no case of its own)"
              end
            end
          end
        end
        if type(service) == "table" then methods(service) end
        local mt = getmetatable(service)
        if mt and type(mt.__index) == "table" then methods(mt.__index) end
      end
    end
    table.sort(problems)
    assert(#problems == 0, table.concat(problems, "\n"))
  end
  it("walks every method of client.hs, client.items, client.batch, client.async through its flat alias", function()
    assert.is_true(#found >= 4, #found .. " service modules")
    check()
  end)
end)

describe("the partner's methods", function()
  it("are all walked, or say why not", function()
    local walked, missing = {}, {}
    for _, c in ipairs(CASES) do walked[c.name] = true end
    local P = require("avalara.partner").Partner or {}
    for name, v in pairs(P) do
      if type(v) == "function" and not name:match("^_") and not walked["partner:" .. name]
        and not NOT_WALKED["partner:" .. name] then
        missing[#missing + 1] = "partner:" .. name
      end
    end
    table.sort(missing)
    assert(#missing == 0, "not walked (add a case or a NOT_WALKED reason): " .. table.concat(missing, ", "))
  end)
end)

describe("every public function's failure path", function()
  local x = {}

  setup(function()
    x.e = emu.start()
    x.closed_port = emu.free_port() -- nothing listens there
    x.closed_url = "http://127.0.0.1:" .. x.closed_port
    x.down = H.client({ http_url = x.closed_url }, { retries = false, timeout = 2 })
    x.refused = H.client(x.e, { license_key = "WRONG-LICENSE-KEY-0000", retries = false })
    x.live = H.client(x.e, { retries = false })
    x.dir = H.private_path("x"):match("^(.*)/x$")
    local f = assert(io.open(x.dir .. "/plain-file", "w")) -- a file where a folder should be
    f:close()
  end)
  teardown(function()
    if x.e then x.e:stop() end
    if x.dir then os.execute("rm -rf '" .. x.dir .. "'") end
  end)

  for _, c in ipairs(CASES) do
    local title = c.name .. " (" .. c.mode .. ")"
    local function body()
      local problem
      if c.expect == "raise" then
        -- the message names the function: client:item, client.items:item, avalara.new, ... then ':'
        local ok, msg = pcall(c.run, x)
        local method = c.name:match("[%w_]+$")
        local named = type(msg) == "string" and (c.raises and msg:find(c.raises, 1, true)
          or msg:find("[%.:]" .. method .. ":"))
        if ok then
          problem = "did not raise"
        elseif not named then
          problem = "raised without naming " .. (c.raises or c.name) .. ": " .. tostring(msg)
        end
      elseif c.expect == "interrupt" then
        local ok, msg = pcall(c.run, x)
        if ok then
          problem = "swallowed 'interrupted!': returned " .. tostring(msg)
        elseif not tostring(msg):find("interrupted!", 1, true) then
          problem = "raised something else: " .. tostring(msg)
        end
      elseif c.expect == "iterator" then
        local f, s, v = c.run(x)
        local rec, err = f(s, v)
        if rec ~= nil then
          problem = "first step yielded " .. tostring(rec) .. ", " .. tostring(err) .. " (want nil, err)"
        else
          problem = shape(err)
          if not problem and c.kinds and not c.kinds[err.kind] then problem = "kind " .. err.kind end
          local ok, again = pcall(f, s, v)
          if not problem and ok and again ~= nil then problem = "went on after the error" end
          -- a generic for never sees err: the iterator keeps it for after the loop
          if not problem and (type(f) ~= "table" or f.err ~= err) then
            problem = "the iterator does not keep the error in its 'err' field"
          end
        end
      elseif c.expect == "results" then
        local results, summary = c.run(x)
        if type(results) ~= "table" or type(summary) ~= "table" then
          problem = "returned " .. tostring(results) .. ", " .. tostring(summary) .. " (want results, summary)"
        elseif #results ~= 2 then
          problem = #results .. " results for 2 items"
        else
          for i, r in ipairs(results) do
            problem = problem or (shape(r) and ("results[" .. i .. "]: " .. shape(r)))
            if not problem and c.kinds and not c.kinds[r.kind] then problem = "results[" .. i .. "]: kind " .. r.kind end
          end
        end
      elseif c.expect == "each_err" then
        local out = c.run(x)
        for i, r in ipairs(out) do
          problem = problem or (shape(r.err) and ("[" .. i .. "].err: " .. shape(r.err)))
        end
      else
        local out = pack(c.run(x))
        problem = fails(unpack(out, 1, out.n))
        if not problem and c.kinds and not c.kinds[out[2].kind] then
          problem = "kind " .. out[2].kind .. " (want " .. table.concat((function()
            local ks = {}
            for k in pairs(c.kinds) do ks[#ks + 1] = k end
            table.sort(ks)
            return ks
          end)(), " or ") .. "): " .. tostring(out[2].message)
        end
      end
      assert(problem == nil, title .. ": " .. tostring(problem))
    end
    it(title, body)
  end
end)

-- docs/errors.md's examples run as written, and print what their `-->`
-- comments say. (`readme.block` here reads docs/errors.md, whichever
-- spec/support/readme.lua the tree has.)
local readme = setmetatable({
  block = function(heading)
    local f = assert(io.open(emu.repo_root() .. "/docs/errors.md"))
    local text = "\n" .. f:read("*a")
    f:close()
    local at = assert(text:find("\n## " .. heading .. "\n", 1, true), "docs/errors.md has no section " .. heading)
    return assert(text:match("```lua\n(.-)```", at), "no ```lua block under " .. heading), "docs/errors.md"
  end,
}, { __index = require "spec.support.readme" })

describe("docs/errors.md", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)

  local function runs(source)
    local printed = readme.run(source, e.http_url)
    local want = {}
    for expected in source:gmatch("%-%->%s*([^\n]*)") do want[#want + 1] = expected end
    local function words(line) return (line:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")) end
    assert.equal(#want, #printed, table.concat(printed, "\n"))
    for i, line in ipairs(printed) do assert.equal(words(want[i]), words(line)) end
  end

  it("runs the example of Failing: nil, err", function()
    runs(readme.block("Failing: `nil, err`"))
  end)

  it("runs the example of Iterators that fail", function()
    runs(readme.block("Iterators that fail"))
  end)
end)
