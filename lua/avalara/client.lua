--- The client: it composes a token source (the client credentials grant
-- behind a cache, or a `token_source` of the caller's), a transport (libcurl,
-- a Lua function, cosockets in nginx), a retry policy and the services
-- (`client.hs`, `client.items`, `client.batch`, `client.async`).
--
--    local client = require("avalara.client").new{ account_id = "2000000001", license_key = "...",
--                                                  company_id = 1001, environment = "sandbox" }
--    local model = assert(client.hs:classify{ itemCode = "TS-1", description = "men's cotton t-shirt",
--                                             countryOfDestination = "US" })
--
-- **Services as fields.** A service module exports `field` (the client field
-- it is reached as), `aliases` (the client's flat names of its methods:
-- `client:classify(...)` is `client.hs:classify(...)`) and `new(client)`.
-- Services get the client passed in and use only its extension interface:
-- `exchange`, `exchange_many`, `prepare`, `derive`, `company`, `call`, `within`, `deadline`,
-- `token`, `token_cache`, `observe`, `hook_raised`, `pause`, `transport_info`,
-- and the fields `api_base`, `company_id`, `sleep`, `retries`, `environment`,
-- `concurrency`, `starts_per_poll`.
--
-- Why this size: a little over 400 lines, of which a third is the LDoc of the
-- extension interface, one method each; what is not composition moved out
-- (options, environments, token/, transport/, the services).
-- @module avalara.client
local clock = require "avalara.clock"
local retry = require "avalara.retry"
local stores = require "avalara.store"
local digest = require "avalara.digest"
local options = require "avalara.options"
local errors = require "avalara.error"
local token = require "avalara.token.token"
local token_source = require "avalara.token.source"
local cached = require "avalara.token.cached"
local transport = require "avalara.transport"
local default_warn = require("avalara.warning").default
local in_nginx = require("avalara.transport.nginx").in_nginx -- reads `ngx` (an environment may have no _G)

local M = {}

local now = clock.now
local sub = string.sub

-- Secrets live here, not in the client table (so dumping a client shows none).
local secrets = setmetatable({}, { __mode = "k" })
-- The options each client was made with (they hold the license key too),
-- for the client of the same account on another API (`Client:derive`).
local origins = setmetatable({}, { __mode = "k" })

-- The deadlines of the calls running now (`Client:within`), by coroutine: the
-- main thread's under `MAIN` (LuaJIT and 5.1 give it no thread value).
local deadlines = setmetatable({}, { __mode = "k" })
local MAIN = {}
-- `within` scopes entered and not left (a coroutine dropped inside one leaves it counted): while 0,
-- an exchange needs no `coroutine.running()` (not compiled by LuaJIT: it ends a trace).
local scopes = 0

local function running()
  local co, main = coroutine.running()
  if co == nil or main then return MAIN end
  return co
end

local function pack(...) return { n = select("#", ...), ... } end

local function check(cond, msg, level)
  if not cond then error("avalara.new: " .. msg, (level or 2) + 1) end
end

local function in_coroutine()
  local co, main = coroutine.running()
  if co == nil or main then return false end
  if coroutine.isyieldable then return coroutine.isyieldable() end
  return true
end

--- The client (returned by `avalara.new`).
-- @type Client
local Client = {}
Client.__index = Client
M.Client = Client

Client.__tostring = function(self)
  local who = self.token_source and tostring(self.token_source) or ("account " .. self.account_id)
  return string.format("avalara client (%s, company %s, environment %s)", who, tostring(self.company_id),
    self.environment)
end

-- ------------------------------------------------------------------ services

--- The service modules every client gets, in order (see `M.install`).
M.services = {}

-- `client:<alias>(...)` calls `client.<field>:<method>(...)` (a tail call:
-- a raising method blames the caller of the alias).
local function alias(field, method)
  return function(self, ...)
    local service = self[field]
    return service[method](service, ...)
  end
end

-- The service `mod` of client `c`. A service whose field is also one of its
-- flat names (`client.items` and `client:items(opts)`) is callable as that
-- method: `client:items(opts)` is then `client.items(client, opts)`.
local function service(c, mod)
  local svc = mod.new(c)
  local method = mod.aliases and mod.aliases[mod.field]
  if method then
    local mt = getmetatable(svc)
    if type(mt) ~= "table" then
      error("avalara.client: the service '" .. mod.field .. "' has a flat name of its own and needs a metatable", 0)
    end
    if mt.__call == nil then mt.__call = function(s, _, ...) return s[method](s, ...) end end
  end
  return svc
end

--- Installs a service module: every client made afterwards gets `client[mod.field] = mod.new(client)`,
-- and `Client` gets the flat aliases of `mod.aliases`.
-- @tparam table mod `{field, aliases, new}`
function M.install(mod)
  if type(mod) ~= "table" or type(mod.field) ~= "string" or type(mod.new) ~= "function" then
    error("avalara.client.install: a service module has 'field' and 'new'", 2)
  end
  -- the field shadows a method of that name: only its own alias may have it
  if Client[mod.field] ~= nil and not (mod.aliases and mod.aliases[mod.field]) then
    error("avalara.client.install: the field '" .. mod.field .. "' is a client method's name", 2)
  end
  for _, m in ipairs(M.services) do
    if m == mod then return end
  end
  M.services[#M.services + 1] = mod
  for name, method in pairs(mod.aliases or {}) do Client[name] = alias(mod.field, method) end
end

-- ------------------------------------------------------------------ new

--- Makes a client (`avalara.new`; the options are documented there).
-- @tparam[opt] table opts
-- @treturn Client
function M.new(opts)
  local cfg, key = options.client(opts)
  opts = opts or {}
  local self = setmetatable({}, Client)
  secrets[self] = key
  for _, k in ipairs { "token_source", "account_id", "company_id", "environment", "legacy", "emulator_url",
    "token_url", "api_base", "scope", "items_base", "items_scope", "auth_method", "leeway", "concurrency",
    "starts_per_poll", "on_token", "on_request", "on_warning", "transport", "topts", "gate", "issuer", "binding" } do
    self[k] = cfg[k]
  end
  self.retries = retry.policy(opts.retries)

  -- Inside nginx: cosockets, light threads, ngx.sleep and a shared-dict store.
  local nginx = {}
  if in_nginx() then nginx = require("avalara.openresty").client_defaults(opts) end
  check(opts.shared_dict == nil or nginx.store ~= nil, "'shared_dict' is for OpenResty (nginx) only")

  local store = opts.store or nginx.store
  if store == nil or store == "memory" then store = stores.memory()
  elseif store == "file" then store = stores.file() end
  check(type(store) == "table" and options.is_callable(store.get) and options.is_callable(store.set)
    and options.is_callable(store.lock), "'store' must have get, set and lock")
  self.store = store
  -- The credentials are part of the key (a digest of the license key, never
  -- the key): a token cached for another key is not this key's.
  self.store_key = "avalara:token:" .. tostring(self.account_id) .. ":" .. (self.scope or "") .. "@"
    .. (self.token_url or self.issuer)
    .. (key and "#" .. digest.of(key):sub(1, 22) or "")

  self.sleep = opts.sleep or nginx.sleep or retry.sleep
  self._wait = opts.wait or nginx.wait
  -- chooses the transport per call (nginx: cosockets, or libcurl in init_by_lua)
  self._via = transport.new { options = self.topts, lua = opts.transport,
    choose = not opts.transport and nginx.transport or nil, many = nginx.many, binding = self.binding }

  if not self.token_source then
    local timeout = self.topts.timeout or 30
    self._source = token_source.new(self, { token_url = self.token_url, issuer = self.issuer,
      client_id = self.account_id, client_secret = key, scope = self.scope, auth_method = self.auth_method,
      warn = function(what, message) return self:_warn_once(what, message) end })
    self._tokens = cached.new(self._source, {
      store = store, key = self.store_key, leeway = self.leeway, account_id = self.account_id,
      -- the lease outlives the fetch it guards (retries and timeout), so that
      -- no other process takes the lock while it still runs
      lease = math.max(60, self.retries.deadline + timeout + 30), patience = self.retries.deadline + timeout,
      wait = function() return self:pause() end,
      warn = function(what, message) return self:_warn_once(what, message) end,
      on_token = self.on_token and function(info)
        local ok, herr = pcall(self.on_token, info)
        if not ok then
          errors.rethrow_interrupt(herr)
          self:hook_raised("on_token", herr)
        end
      end })
  end

  local kept = {}
  for k, v in pairs(opts) do kept[k] = v end
  origins[self] = kept
  for _, mod in ipairs(M.services) do self[mod.field] = service(self, mod) end
  return self
end

-- ------------------------------------------------------------------ extension interface

--- A client of the same account, company, store, hooks and transport for
-- another API (for services and wrappers such as `avalara.fleet`):
-- `overrides` = {api_base, scope}. Its token is cached under its own scope
-- in the same store (one token when the scope is the same).
-- @tparam table overrides
-- @treturn Client
function Client:derive(overrides)
  if type(overrides) ~= "table" then error("client:derive: 'overrides' must be a table", 2) end
  local o = {}
  for k, v in pairs(origins[self]) do o[k] = v end
  o.legacy, o.shared_dict, o.token_url, o.store = nil, nil, self.token_url, self.store
  o.environment, o.company_id = self.environment, self.company_id
  for k, v in pairs(overrides) do o[k] = v end
  return M.new(o)
end

--- Waits a little (for services and token sources waiting on a lock another
-- coroutine or process holds): the `wait` option, else `coroutine.yield()`
-- inside a coroutine, else a 10 ms sleep.
function Client:pause()
  if self._wait then return self._wait() end
  if in_coroutine() then return coroutine.yield() end
  return self.sleep(0.01)
end

--- How this client's exchanges run now (for drivers such as `avalara.transport.driver`):
-- `{lua = the Lua transport function or nil (libcurl), parallel = whether many run at once
-- (libcurl, nginx light threads), options = a copy of the transport options}`.
-- @treturn table
function Client:transport_info()
  return self._via:info()
end

--- A core exchange prepared with this client's transport options and not
-- sent (`kind` "request" or a grant's name), for drivers that run it
-- themselves (`avalara.async` on a multi handle).
-- @string kind
-- @tparam table args
-- @return a prepared exchange
function Client:prepare(kind, args)
  return self._via:prepare(kind, args)
end

--- Runs `fn(...)` with a deadline for everything it does through this
-- library in this coroutine (any client): no exchange runs past `deadline`
-- (each one's `timeout` and `connect_timeout` are clipped to the time left,
-- and one that would start after it fails at once with kind "timeout"), and
-- no retry waits past it. Scopes nest (the earlier deadline holds). Light
-- threads `fn` spawns itself in nginx do not inherit it.
-- @number deadline a time of `avalara.clock` (`clock.now() + seconds`)
-- @tparam function fn
-- @return fn's results
function Client:within(deadline, fn, ...) -- luacheck: no unused args (self: any client, one scope)
  if type(deadline) ~= "number" or deadline ~= deadline then error("client:within: 'deadline' must be a number", 2) end
  if type(fn) ~= "function" then error("client:within: 'fn' must be a function", 2) end
  local key = running()
  local outer = deadlines[key]
  deadlines[key] = outer and math.min(outer, deadline) or deadline
  scopes = scopes + 1
  local res = pack(pcall(fn, ...))
  scopes = scopes - 1
  deadlines[key] = outer
  if not res[1] then error(res[2], 0) end
  return (table.unpack or unpack)(res, 2, res.n)
end

--- The deadline of the `within` scope this coroutine runs in, or nil.
-- @treturn number|nil a time of `avalara.clock`
function Client.deadline(_)
  return deadlines[running()]
end

-- Clips the timeouts of exchange args `a` to the time left before the
-- scope's deadline (`Client:within`); nil, a timeout error when none is left.
local function clip(self, a)
  local d = deadlines[running()]
  if d == nil then return a end
  local left = d - now()
  if left < 0.001 then
    return nil, errors.new { kind = "timeout", retryable = true, message = "the call's timeout ran out before "
      .. (a.url and ((a.method or "GET") .. " " .. a.url) or "the request") }
  end
  local t, ct = a.timeout or self.topts.timeout or 30, a.connect_timeout or self.topts.connect_timeout or 10
  if left < t then a.timeout = left end
  if left < ct then a.connect_timeout = left end
  return a
end

--- One exchange through the client's transport (for services and wrappers):
-- `kind` is "request" or a grant's name. With libcurl the core performs it;
-- with a Lua transport (the `transport` option, or cosockets in nginx) the
-- core prepares it once and finishes it from the transport's answer
-- (`avalara.transport`).
-- @string kind
-- @tparam table args
-- @return status, body, headers (a request) or a core token (a grant), or nil, err
function Client:exchange(kind, args)
  if type(kind) ~= "string" then error("client:exchange: 'kind' must be a string", 2) end
  if type(args) ~= "table" then error("client:exchange: 'args' must be a table", 2) end
  if kind == "request" and self.gate then
    local ok, err = self.gate(self, 1)
    if not ok then return nil, err end
  end
  if scopes > 0 and deadlines[running()] then
    local a, err = clip(self, args)
    if not a then return nil, err end
  end
  return self._via:exchange(kind, args)
end

--- The same for core.request_many (for services and wrappers): a Lua transport runs one exchange at a
-- time, or (in nginx) `concurrency` of them on light threads.
-- @tparam table reqs
-- @tparam table args
-- @treturn table a list aligned with `reqs`: `{status, body, headers}` or `{err}`
function Client:exchange_many(reqs, args)
  if self.gate and #reqs > 0 then
    local ok, err = self.gate(self, #reqs)
    if not ok then
      local out = {}
      for j = 1, #reqs do out[j] = { err = err } end
      return out
    end
  end
  if deadlines[running()] then
    local a, err = clip(self, args)
    for _, r in ipairs(a and reqs or {}) do
      r.timeout = r.timeout or args.timeout
      clip(self, r)
    end
    if not a then
      local out = {}
      for j = 1, #reqs do out[j] = { err = err } end
      return out
    end
  end
  return self._via:exchange_many(reqs, args)
end

-- `message` to `on_warning`, else (none, or it raised) to nginx's error log or stderr.
local function warn(self, message)
  if self.on_warning then
    local ok, err = pcall(self.on_warning, message)
    if ok then return end
    errors.rethrow_interrupt(err)
  end
  default_warn(message)
end

--- Tells `on_warning` (else nginx's error log or stderr) that a user hook
-- (`on_request`, `on_token`, a partner's `on_refresh`) raised `err`: the
-- work goes on as if it had returned.
-- @string name the hook
-- @param err what it raised
-- @string[opt] where what was ignored
function Client:hook_raised(name, err, where)
  local message = ("the %s hook raised (%signored): %s"):format(name, where and (where .. "; ") or "", tostring(err))
  warn(self, message)
end

--- Tells `on_request` about one exchange (for services running exchanges
-- themselves): `info` = `{method, url, status, duration, attempt, error_kind}`.
-- @string method
-- @string url
-- @param status the HTTP status, or nil
-- @number started when the exchange started (`avalara.clock.now()`)
-- @int attempt
-- @param[opt] err the error
function Client:observe(method, url, status, started, attempt, err)
  if not self.on_request then return end
  local ok, herr = pcall(self.on_request, { method = method, url = url, status = status or (err and err.status) or nil,
    duration = now() - started, attempt = attempt, error_kind = err and err.kind or nil })
  if not ok then
    errors.rethrow_interrupt(herr)
    self:hook_raised("on_request", herr)
  end
end

-- Tells `on_warning` once per `what` (an unwritable token cache, ...).
function Client:_warn_once(what, message)
  self._warned = self._warned or {}
  if self._warned[what] then return end
  self._warned[what] = true
  if self.on_warning then warn(self, message) end
end

--- The cache of this client's access token (`avalara.token.cached`: `peek`, `lock`, `stored`,
-- `keep`, `patience`, and its source's `grant`), for services that obtain a token without
-- blocking (`avalara.async`); nil for a client with a `token_source`.
-- @return a Cached, or nil
function Client:token_cache()
  return self._tokens
end

--- The access token: cached in the store, renewed within `leeway` seconds
-- of expiry. Only one renewal runs at a time: other coroutines asking
-- meanwhile wait for it (see the `wait` option) and share its result.
-- @param[opt] stale internal: an access token known to be rejected (renew unless the store has another)
-- @return a `Token` (with `access_token()`, `expires_at()`, ...), or nil, err
function Client:token(stale)
  if self.token_source then
    local rec, err = self.token_source:token(self, stale)
    if not rec then return nil, err end
    return token.wrap(rec)
  end
  return self._tokens:token(stale)
end

--- The Identity endpoints this client uses: with `issuer`, from its discovery document (fetched
-- once per document lifetime; the issuer's `/connect/*` when it cannot be had, with a warning), else
-- `token_url` and, for Identity's `.../connect/token`, its `/connect/revocation` and
-- `/connect/deviceauthorization`. A client with a `token_source` has only what its options say.
-- @treturn table `{token_endpoint, revocation_endpoint?, device_authorization_endpoint?}`
function Client:endpoints()
  if self._source then return self._source:endpoints() end
  return { token_endpoint = self.token_url }
end

--- One API call with retries and a single token renewal on 401 or 403.
-- @string method
-- @string path (from `avalara.paths`) or an absolute URL
-- @tparam[opt] table body
-- @tparam[opt] table opts `{response_headers = false}`: no headers table (a caller that never reads
-- it saves building it: `core.request`'s `response_headers`)
-- @return status, decoded body, headers | nil, err
function Client:call(method, path, body, opts)
  if type(method) ~= "string" then error("client:call: 'method' must be a string", 2) end
  if type(path) ~= "string" then error("client:call: 'path' must be a string", 2) end
  if body ~= nil and type(body) ~= "table" and type(body) ~= "string" then
    error("client:call: 'body' must be a table or a string", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then error("client:call: 'opts' must be a table", 2) end
  local headers = opts and opts.response_headers
  -- an absolute URL, or a path of this API (no string pattern: it stitches LuaJIT's trace)
  local url = (sub(path, 1, 7) == "http://" or sub(path, 1, 8) == "https://") and path or self.api_base .. path
  local tok, terr = self:token()
  if not tok then return nil, terr end
  -- The first exchange runs here, without the retry machinery's closures:
  -- most calls succeed at once. A failure goes on in `call_again`.
  local started = now()
  local status, b, h = self:exchange("request", { method = method, url = url, token = tok:access_token(),
    body = body, response_headers = headers })
  if self.on_request then self:observe(method, url, status, started, 1, status == nil and b or nil) end
  if status ~= nil then return status, b, h end
  return self:_call_again(method, url, body, tok, b, started, headers)
end

-- The rest of a call whose first exchange failed with `first_err`: the retry
-- policy (timed from `started`) and one token renewal on a 401 that asks for it.
function Client:_call_again(method, url, body, tok, first_err, started, headers)
  local renewed, exchange, final, pending = false, 1, nil, first_err
  return retry.run(self.retries, function()
    while true do
      local err = pending
      pending = nil
      if not err then
        exchange = exchange + 1
        local t0 = now()
        local status, b, h = self:exchange("request", { method = method, url = url, token = tok:access_token(),
          body = body, response_headers = headers })
        self:observe(method, url, status, t0, exchange, status == nil and b or nil)
        if status ~= nil then return status, b, h end
        err = b
      end
      if not (err.needs_refresh and not renewed) then return nil, err end
      renewed = true
      local t2, e2 = self:token(tok:access_token())
      if not t2 then final = e2; return nil, e2 end
      tok = t2
    end
  end, { sleep = self.sleep, started = started, deadline = deadlines[running()],
    retryable = function(e) return e ~= final and retry.retryable(e) end })
end

--- The company path segment (for services); raises naming `where` when the client has none.
-- @string where the calling method, for the message
-- @treturn number
function Client:company(where)
  if self.company_id == nil then
    error(where .. ": 'company_id' is required (give it to avalara.new or set AVALARA_COMPANY_ID)", 3)
  end
  return self.company_id
end

--- The secret a webhook registration's deliveries are signed with under
-- the header scheme (`avalara.webhook`, `scheme = "header"`: this project's
-- assumption, not published by Avalara; a registration with a `signature`
-- uses the key given there instead): give it to the receiver, which then
-- never holds the license key. A secret: keep it out of logs.
-- @param registration_id the registration's `registrationId`
-- @treturn string 64 hex digits
function Client:webhook_secret(registration_id)
  if type(registration_id) ~= "string" and type(registration_id) ~= "number" then
    error("client:webhook_secret: 'registration_id' must be a registration's id (got " .. type(registration_id)
      .. ")", 2)
  end
  if secrets[self] == nil then
    error("client:webhook_secret: needs the account's license key (this client's token comes from a token source)",
      2)
  end
  return require("avalara.webhook").secret(secrets[self], registration_id)
end

--- Classifies many items (`avalara.batch`, documented there): `results, summary`
-- (an alias of `client.batch:classify` once `avalara.batch` is a service).
-- @tparam table items
-- @tparam[opt] table opts
function Client:classify_batch(items, opts)
  return require("avalara.batch").classify(self, items, opts)
end

-- ------------------------------------------------------------------ the services

M.install(require "avalara.hs")

-- Modules that do not follow the service protocol yet are mixed in as they
-- were (their methods take the client as `self`).
for _, name in ipairs { "avalara.items", "avalara.async" } do
  local mod = require(name)
  if mod.field then M.install(mod) else
    for k, f in pairs(mod.Client) do Client[k] = f end
  end
end

local batch = require "avalara.batch"
if batch.field then M.install(batch) end

return M
