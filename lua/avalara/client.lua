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
-- `exchange`, `exchange_many`, `prepare`, `derive`, `company`, `call`,
-- `token`, `token_cache`, `observe`, `hook_raised`, `pause`, `transport_info`,
-- and the fields `api_base`, `company_id`, `sleep`, `retries`, `environment`,
-- `concurrency`.
-- @module avalara.client
local core = require "avalara.core"
local clock = require "avalara.clock"
local retry = require "avalara.retry"
local stores = require "avalara.store"
local digest = require "avalara.digest"
local options = require "avalara.options"
local environments = require "avalara.environments"
local token = require "avalara.token.token"
local token_source = require "avalara.token.source"
local cached = require "avalara.token.cached"
local lua_transport = require "avalara.transport.lua"
local default_warn = require("avalara.warning").default

local M = {}

local now = clock.now
local TRANSPORT_KEYS = options.TRANSPORT

-- Secrets live here, not in the client table (so dumping a client shows none).
local secrets = setmetatable({}, { __mode = "k" })
-- The options each client was made with (they hold the license key too),
-- for the client of the same account on another API (`Client:derive`).
local origins = setmetatable({}, { __mode = "k" })

local function check(cond, msg, level)
  if not cond then error("avalara.new: " .. msg, (level or 2) + 1) end
end

local function in_coroutine()
  local co, main = coroutine.running()
  if co == nil or main then return false end
  if coroutine.isyieldable then return coroutine.isyieldable() end
  return true
end

-- The transport options set on the client, as a flat {k1, v1, k2, v2, ...}
-- list made once: no pairs() walk over a hash on every call.
local function topts_list(topts)
  local list = {}
  for _, k in ipairs(TRANSPORT_KEYS) do
    if topts[k] ~= nil then list[#list + 1], list[#list + 2] = k, topts[k] end
  end
  return list
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

--- Installs a service module: every client made afterwards gets `client[mod.field] = mod.new(client)`,
-- and `Client` gets the flat aliases of `mod.aliases`.
-- @tparam table mod `{field, aliases, new}`
function M.install(mod)
  if type(mod) ~= "table" or type(mod.field) ~= "string" or type(mod.new) ~= "function" then
    error("avalara.client.install: a service module has 'field' and 'new'", 2)
  end
  for _, m in ipairs(M.services) do
    if m == mod then return end
  end
  M.services[#M.services + 1] = mod
  for name, method in pairs(mod.aliases or {}) do Client[name] = alias(mod.field, method) end
end

-- ------------------------------------------------------------------ new

-- The endpoints, identity and secret of the client (raises on bad options).
local function identity(self, opts)
  local source = opts.token_source
  check(source == nil or (type(source) == "table" and options.is_callable(source.token)),
    "'token_source' must be an object with a token method", 3)
  self.token_source = source
  -- A token source brings its own credentials.
  local account = opts.account_id or (not source and options.getenv("AVALARA_ACCOUNT_ID") or nil)
  check(account ~= nil or source, "'account_id' is required (or set AVALARA_ACCOUNT_ID)", 3)
  check(account == nil or type(account) == "string" or type(account) == "number",
    "'account_id' must be a string or number", 3)
  local key = opts.license_key or (not source and options.getenv("AVALARA_LICENSE_KEY") or nil)
  check(key ~= nil or source, "'license_key' is required (or set AVALARA_LICENSE_KEY)", 3)
  check(key == nil or (type(key) == "string" and key ~= ""), "'license_key' must be a non-empty string", 3)
  -- Optional here: tokens and definitions need no company; the calls that
  -- do (classify, classification, wait, classify_batch) raise without one.
  local company = opts.company_id or options.getenv("AVALARA_COMPANY_ID")
  check(company == nil or type(company) == "string" or type(company) == "number",
    "'company_id' must be a string or number", 3)
  check(company == nil or tostring(company):match("^%d+$"), "'company_id' must be digits", 3)
  self.account_id = account and tostring(account)
  self.company_id = tonumber(company)
  secrets[self] = key

  local ep, why = environments.resolve(opts)
  check(ep, why, 3)
  for k, v in pairs(ep) do self[k] = v end
  return key
end

-- The core checks the options and the URL policy (plain http only to
-- loopback, unless allow_http); ask it now, before any request.
local function probe_urls(self, opts)
  for _, name in ipairs { "token_url", "api_base", "items_base" } do
    -- a URL's bytes go into request lines (a CR or LF would add lines)
    check(not self[name]:find("[%z\1-\32\127]"), "'" .. name .. "' must not contain spaces or control characters", 3)
    local probe = setmetatable({ url = self[name], transport = opts.transport }, { __index = self.topts })
    local ok, err = pcall(core.prepare_request, probe)
    if ok then err:close() else
      for _, k in ipairs(TRANSPORT_KEYS) do
        if tostring(err):find("'" .. k .. "'", 1, true) then
          local w = tostring(err):match("'" .. k .. "' (%(.*%))$")
          check(false, "'" .. k .. "' has a wrong type or value" .. (w and " " .. w or ""), 3)
        end
      end
      check(false, "'" .. name .. "' " .. tostring(err):match("'url' (.*)$"), 3)
    end
  end
end

--- Makes a client (`avalara.new`; the options are documented there).
-- @tparam[opt] table opts
-- @treturn Client
function M.new(opts)
  if opts == nil then opts = {} end
  check(type(opts) == "table", "options must be a table")
  options.check_known("avalara.new", opts, options.CLIENT, 2)
  local self = setmetatable({}, Client)
  local key = identity(self, opts)

  self.auth_method = opts.auth_method or "post"
  check(self.auth_method == "post" or self.auth_method == "basic", "'auth_method' must be \"post\" or \"basic\"")
  self.leeway = opts.leeway or 300
  check(type(self.leeway) == "number" and self.leeway >= 0, "'leeway' must be a non-negative number")
  self.concurrency = opts.concurrency or 16
  check(type(self.concurrency) == "number" and self.concurrency >= 1, "'concurrency' must be a positive number")
  self.retries = retry.policy(opts.retries)

  -- Inside nginx: cosockets, light threads, ngx.sleep and a shared-dict store.
  local nginx = {}
  check(opts.shared_dict == nil or type(opts.shared_dict) == "string", "'shared_dict' must be a string")
  if rawget(_G, "ngx") ~= nil then
    local openresty = require "avalara.openresty"
    if openresty.in_nginx() then nginx = openresty.client_defaults(opts) end
  end
  check(opts.shared_dict == nil or nginx.store ~= nil, "'shared_dict' is for OpenResty (nginx) only")

  local store = opts.store or nginx.store
  if store == nil or store == "memory" then store = stores.memory()
  elseif store == "file" then store = stores.file() end
  check(type(store) == "table" and options.is_callable(store.get) and options.is_callable(store.set)
    and options.is_callable(store.lock), "'store' must have get, set and lock")
  self.store = store
  -- The credentials are part of the key (a digest of the license key, never
  -- the key): a token cached for another key is not this key's.
  self.store_key = "avalara:token:" .. tostring(self.account_id) .. ":" .. (self.scope or "") .. "@" .. self.token_url
    .. (key and "#" .. digest.of(key):sub(1, 22) or "")

  for _, h in ipairs { "on_token", "on_request", "on_warning", "transport", "sleep", "wait" } do
    check(opts[h] == nil or options.is_callable(opts[h]), "'" .. h .. "' must be a function")
  end
  self.on_token, self.on_request, self.on_warning = opts.on_token, opts.on_request, opts.on_warning
  self.transport, self.sleep = opts.transport, opts.sleep or nginx.sleep or retry.sleep
  self._wait = opts.wait or nginx.wait
  -- chooses the transport per call (nginx: cosockets, or libcurl in init_by_lua)
  self._transport_now = not opts.transport and nginx.transport or nil
  self._run_many = nginx.many
  self.topts = {}
  for _, k in ipairs(TRANSPORT_KEYS) do self.topts[k] = opts[k] end
  self._topts_list = topts_list(self.topts)
  probe_urls(self, opts)

  if not self.token_source then
    local timeout = self.topts.timeout or 30
    self._tokens = cached.new(token_source.new(self, { token_url = self.token_url, client_id = self.account_id,
      client_secret = key, scope = self.scope, auth_method = self.auth_method }), {
      store = store, key = self.store_key, leeway = self.leeway, account_id = self.account_id,
      -- the lease outlives the fetch it guards (retries and timeout), so that
      -- no other process takes the lock while it still runs
      lease = math.max(60, self.retries.deadline + timeout + 30), patience = self.retries.deadline + timeout,
      wait = function() return self:pause() end,
      warn = function(what, message) return self:_warn_once(what, message) end,
      on_token = self.on_token and function(info)
        local ok, herr = pcall(self.on_token, info)
        if not ok then self:hook_raised("on_token", herr) end
      end })
  end

  local kept = {}
  for k, v in pairs(opts) do kept[k] = v end
  origins[self] = kept
  for _, mod in ipairs(M.services) do self[mod.field] = mod.new(self) end
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

local function with_topts(self, args)
  local list = self._topts_list
  for i = 1, #list, 2 do
    local k = list[i]
    if args[k] == nil then args[k] = list[i + 1] end
  end
  return args
end

-- The Lua transport for a call made now, or nil for libcurl.
function Client:_transport()
  if self._transport_now then return self._transport_now() end
  return self.transport
end

--- How this client's exchanges run now (for drivers such as `avalara.multi`):
-- `{lua = the Lua transport function or nil (libcurl), parallel = whether many run at once
-- (libcurl, nginx light threads), options = a copy of the transport options}`.
-- @treturn table
function Client:transport_info()
  local lua = self:_transport()
  local o = {}
  for k, v in pairs(self.topts) do o[k] = v end
  return { lua = lua, parallel = lua == nil or self._run_many ~= nil, options = o }
end

--- A core exchange prepared with this client's transport options and not
-- sent (`kind` "request" or a grant's name), for drivers that run it
-- themselves (`avalara.async` on a multi handle).
-- @string kind
-- @tparam table args
-- @return a prepared exchange
function Client:prepare(kind, args)
  with_topts(self, args)
  if kind == "request" then return core.prepare_request(args) end
  return core.prepare_grant(kind, args)
end

--- One exchange through the client's transport (for services and wrappers):
-- `kind` is "request" or a grant's name. With
-- libcurl the core performs it; with a Lua transport (the `transport`
-- option, or cosockets in nginx) the core prepares it once and finishes it
-- from the transport's answer (avalara.core's sans-I/O exchanges).
-- @string kind
-- @tparam table args
-- @return status, body, headers (a request) or a core token (a grant), or nil, err
function Client:exchange(kind, args)
  with_topts(self, args)
  local transport = self:_transport()
  if not transport then
    if kind == "request" then return core.request(args) end
    return core[kind](args)
  end
  local ex = kind == "request" and core.prepare_request(args) or core.prepare_grant(kind, args)
  return lua_transport.run(transport, ex)
end

--- The same for core.request_many (for services and wrappers): a Lua transport runs one exchange at a
-- time, or (in nginx) `concurrency` of them on light threads.
-- @tparam table reqs
-- @tparam table args
-- @treturn table a list aligned with `reqs`: `{status, body, headers}` or `{err}`
function Client:exchange_many(reqs, args)
  with_topts(self, args)
  local transport = self:_transport()
  if not transport then return core.request_many(reqs, args) end
  local exchanges = {}
  for i, r in ipairs(reqs) do exchanges[i] = core.prepare_request(with_topts(self, r)) end
  return lua_transport.run_many(exchanges, transport, self._run_many, args.concurrency)
end

--- Tells `on_warning` (else nginx's error log or stderr) that a user hook
-- (`on_request`, `on_token`, a partner's `on_refresh`) raised `err`: the
-- work goes on as if it had returned.
-- @string name the hook
-- @param err what it raised
-- @string[opt] where what was ignored
function Client:hook_raised(name, err, where)
  local message = ("the %s hook raised (%signored): %s"):format(name, where and (where .. "; ") or "", tostring(err))
  if not (self.on_warning and pcall(self.on_warning, message)) then default_warn(message) end
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
  if not ok then self:hook_raised("on_request", herr) end
end

-- Tells `on_warning` once per `what` (an unwritable token cache, ...).
function Client:_warn_once(what, message)
  self._warned = self._warned or {}
  if self._warned[what] then return end
  self._warned[what] = true
  if self.on_warning and not pcall(self.on_warning, message) then default_warn(message) end
end

-- Until every caller uses the public names (batch, connection, partner, multi).
Client._hook, Client._hook_raised, Client._yield = Client.observe, Client.hook_raised, Client.pause

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

--- One API call with retries and a single token renewal on 401.
-- @string method
-- @string path (from `avalara.paths`) or an absolute URL
-- @tparam[opt] table body
-- @return status, decoded body, headers | nil, err
function Client:call(method, path, body)
  local url = path:find("^https?://") and path or self.api_base .. path
  local tok, terr = self:token()
  if not tok then return nil, terr end
  -- The first exchange runs here, without the retry machinery's closures:
  -- most calls succeed at once. A failure goes on in `call_again`.
  local started = now()
  local status, b, h = self:exchange("request", { method = method, url = url, token = tok:access_token(),
    body = body })
  if self.on_request then self:observe(method, url, status, started, 1, status == nil and b or nil) end
  if status ~= nil then return status, b, h end
  return self:_call_again(method, url, body, tok, b, started)
end

-- The rest of a call whose first exchange failed with `first_err`: the retry
-- policy (timed from `started`) and one token renewal on a 401 that asks for it.
function Client:_call_again(method, url, body, tok, first_err, started)
  local renewed, exchange, final, pending = false, 1, nil, first_err
  return retry.run(self.retries, function()
    while true do
      local err = pending
      pending = nil
      if not err then
        exchange = exchange + 1
        local t0 = now()
        local status, b, h = self:exchange("request", { method = method, url = url, token = tok:access_token(),
          body = body })
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
  end, { sleep = self.sleep, started = started,
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

--- The secret a webhook registration's deliveries are signed with (see
-- `avalara.webhook`): give it to the receiver, which then never holds the
-- license key. A secret: keep it out of logs.
-- @param registration_id the registration's `registrationId`
-- @treturn string 64 hex digits
function Client:webhook_secret(registration_id)
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
