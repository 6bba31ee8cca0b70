--- The Avalara HS code classification client (docs/design.md sections 4-6).
--
--    local avalara = require "avalara"
--    local client = avalara.new{ account_id = "2000000001", license_key = "...",
--                                company_id = 1001, environment = "sandbox" }
--    local model = assert(client:classify{ itemCode = "TS-1", description = "men's cotton t-shirt",
--                                          countryOfDestination = "US" })
--    model = assert(client:wait(model))
--
-- Runtime failures return `nil, err` (docs/design.md section 6); programming
-- errors (wrong types, missing account, license key or company) raise at
-- once naming the argument.
-- @module avalara
local core = require "avalara.core"
local paths = require "avalara.paths"
local retry = require "avalara.retry"
local stores = require "avalara.store"
local item_model = require "avalara.item"
local definitions = require "avalara.definitions"
local digest = require "avalara.digest"
local items_flow = require "avalara.items"

local M = { _VERSION = core.version, paths = paths, retry = retry, store = stores, core = core, item = item_model,
  definitions = definitions, items = items_flow }

--- Known environments (docs/design.md section 4). `local` uses `emulator_url`.
-- `items_base` is AvaTax's REST API, where the Items flow lives (docs/api-contracts.md
-- section 1), with the `avatax_api` scope.
M.environments = {
  production = { token_url = "https://identity.avalara.com/connect/token",
    api_base = "https://hscode.api.avalara.com", scope = "hs-code-classification",
    legacy_api_base = "https://hscode.avatax.avalara.com", legacy_scope = "avatax_api",
    items_base = "https://rest.avatax.com", items_scope = "avatax_api" },
  sandbox = { token_url = "https://ai-sbx.avlr.sh/connect/token",
    api_base = "https://hscode.api.sbx.avalara.com", scope = "hs-code-classification",
    legacy_api_base = "https://hscode.avatax.sbx.avalara.com", legacy_scope = "avatax_api",
    items_base = "https://sandbox-rest.avatax.com", items_scope = "avatax_api" },
  ["local"] = { scope = "hs-code-classification", items_scope = "avatax_api" },
}

local TRANSPORT_KEYS = { "timeout", "connect_timeout", "cafile", "capath", "proxy", "verify",
  "user_agent", "max_body", "allow_http" }

-- Every option `avalara.new` knows; any other name raises (a typo such as
-- `comapny_id` would otherwise be ignored in silence).
local OPTIONS = { "account_id", "license_key", "company_id", "environment", "legacy", "emulator_url", "token_url",
  "api_base", "scope", "auth_method", "leeway", "store", "on_token", "on_request", "on_warning", "retries",
  "concurrency", "shared_dict", "transport", "sleep", "wait", "token_source", "items_base", "items_scope" }
for _, k in ipairs(TRANSPORT_KEYS) do OPTIONS[#OPTIONS + 1] = k end

-- The known option nearest to `name` (by edit distance), for the message.
local function nearest(name)
  local best, best_d = nil, 4
  for _, known in ipairs(OPTIONS) do
    local prev = {}
    for j = 0, #known do prev[j] = j end
    for i = 1, #name do
      local cur = { [0] = i }
      for j = 1, #known do
        cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (name:byte(i) == known:byte(j) and 0 or 1))
      end
      prev = cur
    end
    if prev[#known] < best_d then best, best_d = known, prev[#known] end
  end
  return best
end

-- Secrets live here, not in the client table (so dumping a client shows none).
local secrets = setmetatable({}, { __mode = "k" })
-- The options each client was made with (they hold the license key too),
-- for the client of the same account on another API (`Client:derive`).
local origins = setmetatable({}, { __mode = "k" })

local function now() return retry.now() end

local function getenv(name)
  local v = os.getenv(name)
  if v == nil or v == "" then return nil end
  return v
end

local function check(cond, msg, level)
  if not cond then error("avalara.new: " .. msg, (level or 2) + 1) end
end

local function is_callable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return mt ~= nil and type(mt) == "table" and mt.__call ~= nil
end

local function in_coroutine()
  local co, main = coroutine.running()
  if co == nil or main then return false end
  if coroutine.isyieldable then return coroutine.isyieldable() end
  return true
end

local function make_error(t)
  if t.retryable == nil then t.retryable = false end
  return core.error(t)
end

-- ------------------------------------------------------------------ tokens

--- What `client:token()` returns: the cached access token, with the core
-- token's reading methods. `tostring` shows type, scope and expiry only.
-- @type Token
local Token = {}
Token.__index = Token

-- The transport options set on the client, as a flat {k1, v1, k2, v2, ...}
-- list made once: no pairs() walk over a hash on every call.
local function topts_list(topts)
  local list = {}
  for _, k in ipairs(TRANSPORT_KEYS) do
    if topts[k] ~= nil then list[#list + 1], list[#list + 2] = k, topts[k] end
  end
  return list
end

local function wrap_token(rec) return setmetatable({ _rec = rec }, Token) end

--- The access token (a secret).
function Token:access_token() return self._rec.access_token end
--- The token type ("Bearer").
function Token:token_type() return self._rec.token_type end
--- The granted scope.
function Token:scope() return self._rec.scope end
--- Expiry, epoch seconds, or nil.
function Token:expires_at() return self._rec.expires_at end
--- Seconds left, or nil.
function Token:expires_in()
  local e = self._rec.expires_at
  return e and math.max(0, e - now()) or nil
end
--- Whether it expires within `leeway` seconds (default 0).
function Token:is_expired(leeway)
  local e = self._rec.expires_at
  return e ~= nil and e - (leeway or 0) <= now()
end
--- The Authorization header value (a secret).
function Token:authorization() return "Bearer " .. self._rec.access_token end
Token.__tostring = function(self)
  local e = self._rec.expires_at
  return string.format("avalara token (%s, scope %s, %s)", tostring(self._rec.token_type),
    tostring(self._rec.scope), e and ("expires at " .. os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(e)))
      or "no expiry")
end
M.Token = Token

-- ------------------------------------------------------------------ client

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

--- Makes a client.
--
-- Options (each may come from the environment where noted):
--
-- - `account_id` (`AVALARA_ACCOUNT_ID`), `license_key` (`AVALARA_LICENSE_KEY`): required,
--   raise naming the missing one
-- - `company_id` (`AVALARA_COMPANY_ID`): digits; needed by the classification calls, which
--   raise without it (tokens and definitions need none)
-- - `environment` (`AVALARA_ENVIRONMENT`): "production" (default), "sandbox" or "local";
--   `legacy = true` selects the AvaTax hosts and the `avatax_api` scope
-- - `emulator_url` (`AVALARA_EMULATOR_URL`) for "local"; `token_url`, `api_base`, `scope`
--   override the environment's
-- - `items_base` and `items_scope`: AvaTax's REST API, where the Items flow lives
--   (`avalara.items`), and the scope of its token (`avatax_api`); by default the
--   environment's (`https://rest.avatax.com`, sandbox `https://sandbox-rest.avatax.com`,
--   `local`: the emulator). The client gets a token of each scope it uses, each cached
--   and renewed on its own in the same store; with one scope for both, one token
-- - `auth_method` ("post" or "basic"), `leeway` (300 s), `store` (a store, "memory" or "file",
--   see `avalara.store`), `on_token(info)`, `on_request(info)`
-- - in OpenResty: `shared_dict` (the name of a `lua_shared_dict`: one token for every worker);
--   requests then use cosockets by themselves (see `avalara.openresty`)
-- - `on_token(info)`: after a token is obtained or renewed; `info` = `{token_type, scope, expires_at,
--   expires_in, renewed, account_id}` (never the token or the license key)
-- - `on_request(info)`: after every HTTP exchange; `info` = `{method, url, status, duration, attempt,
--   error_kind}` (the URL carries no secret)
-- - `on_warning(message)`: once per kind of trouble that does not fail a call (a token store
--   that cannot be written: the token is then kept for this process only; a stored token record
--   that is not a valid token: ignored, a fresh token is fetched), and each time a hook
--   (`on_request`, `on_token`) raises: hooks run protected, their errors change nothing
--   (without `on_warning`, or when it raises itself, these go to nginx's error log or stderr)
-- - `retries` = `{max_attempts = 4, base_delay = 0.2, max_delay = 5, deadline = 30}` or `false`
-- - `concurrency` (16, the default of `classify_batch`)
-- - any other option name raises, naming it (and the nearest known one)
-- - transport options: `timeout`, `connect_timeout`, `cafile`, `capath`, `proxy`, `verify`,
--   `user_agent`, `max_body`, `allow_http` (plain http:// to hosts other than loopback, refused
--   at once otherwise: credentials would travel in clear text), and `transport` (a Lua function
--   `req -> resp | nil, err`, as for the core; unlike the core's, it may yield when the client
--   runs in a coroutine: the core prepares each exchange and finishes it from the answer)
-- - `sleep(seconds)` (backoff and polling waits) and `wait()` (what a coroutine does while
--   another one renews the token; default `coroutine.yield()` inside a coroutine, else a short sleep)
-- - `token_source`: an object whose `token_source:token(client, stale)` returns the access token
--   record `{access_token, token_type, scope, expires_at}` (or nil, err) instead of the client
--   credentials grant; `account_id` and `license_key` are then not needed. `stale` is an access
--   token the API just refused (renew it), or nil. `avalara.partner` clients use it.
-- @tparam[opt] table opts
-- @treturn Client
function M.new(opts)
  if opts == nil then opts = {} end
  check(type(opts) == "table", "options must be a table")
  local known = {}
  for _, k in ipairs(OPTIONS) do known[k] = true end
  for k in pairs(opts) do
    if not known[k] then
      local near = type(k) == "string" and nearest(k)
      check(false, "unknown option '" .. tostring(k) .. "'" .. (near and " (did you mean '" .. near .. "'?)" or ""))
    end
  end
  local self = setmetatable({}, Client)

  local source = opts.token_source
  check(source == nil or (type(source) == "table" and is_callable(source.token)),
    "'token_source' must be an object with a token method")
  self.token_source = source
  -- A token source brings its own credentials.
  local account = opts.account_id or (not source and getenv("AVALARA_ACCOUNT_ID") or nil)
  check(account ~= nil or source, "'account_id' is required (or set AVALARA_ACCOUNT_ID)")
  check(account == nil or type(account) == "string" or type(account) == "number",
    "'account_id' must be a string or number")
  local key = opts.license_key or (not source and getenv("AVALARA_LICENSE_KEY") or nil)
  check(key ~= nil or source, "'license_key' is required (or set AVALARA_LICENSE_KEY)")
  check(key == nil or (type(key) == "string" and key ~= ""), "'license_key' must be a non-empty string")
  -- Optional here: tokens and definitions need no company; the calls that
  -- do (classify, classification, wait, classify_batch) raise without one.
  local company = opts.company_id or getenv("AVALARA_COMPANY_ID")
  check(company == nil or type(company) == "string" or type(company) == "number",
    "'company_id' must be a string or number")
  check(company == nil or tostring(company):match("^%d+$"), "'company_id' must be digits")
  self.account_id = account and tostring(account)
  self.company_id = tonumber(company)
  secrets[self] = key

  local envname = opts.environment or getenv("AVALARA_ENVIRONMENT") or "production"
  local env = M.environments[envname]
  check(env ~= nil, "'environment' must be production, sandbox or local (got " .. tostring(envname) .. ")")
  self.environment = envname
  check(opts.legacy == nil or type(opts.legacy) == "boolean", "'legacy' must be a boolean")
  self.legacy = opts.legacy == true
  check(not (self.legacy and envname == "local"), "'legacy' is for production and sandbox only")

  local token_url, api_base = env.token_url, self.legacy and env.legacy_api_base or env.api_base
  local scope = self.legacy and env.legacy_scope or env.scope
  if envname == "local" then
    local emu = opts.emulator_url or getenv("AVALARA_EMULATOR_URL")
    if emu ~= nil then
      check(type(emu) == "string" and emu:match("^https?://"), "'emulator_url' must be an http(s) URL")
      check(not emu:find("[%z\1-\32\127]"), "'emulator_url' must not contain spaces or control characters")
      emu = emu:gsub("/+$", "")
      token_url, api_base = emu .. "/connect/token", emu
    end
    self.emulator_url = emu
  end
  for name, v in pairs { token_url = opts.token_url, api_base = opts.api_base, scope = opts.scope } do
    check(v == nil or type(v) == "string", "'" .. name .. "' must be a string")
  end
  self.token_url = opts.token_url or token_url
  self.api_base = (opts.api_base or api_base or ""):gsub("/+$", "")
  self.scope = opts.scope or scope
  check(self.token_url ~= nil and self.api_base ~= "",
    "environment 'local' needs 'emulator_url' (or AVALARA_EMULATOR_URL, or token_url and api_base)")
  for name, v in pairs { items_base = opts.items_base, items_scope = opts.items_scope } do
    check(v == nil or type(v) == "string", "'" .. name .. "' must be a string")
  end
  self.items_base = (opts.items_base or env.items_base or (envname == "local" and self.emulator_url)
    or self.api_base):gsub("/+$", "")
  self.items_scope = opts.items_scope or env.items_scope or self.scope

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
  check(type(store) == "table" and is_callable(store.get) and is_callable(store.set)
    and is_callable(store.lock), "'store' must have get, set and lock")
  self.store = store
  -- The credentials are part of the key (a digest of the license key, never
  -- the key): a token cached for another key is not this key's.
  self.store_key = "avalara:token:" .. tostring(self.account_id) .. ":" .. (self.scope or "") .. "@" .. self.token_url
    .. (key and "#" .. digest.of(key):sub(1, 22) or "")

  for _, h in ipairs { "on_token", "on_request", "on_warning", "transport", "sleep", "wait" } do
    check(opts[h] == nil or is_callable(opts[h]), "'" .. h .. "' must be a function")
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
  -- The core checks the options and the URL policy (plain http only to
  -- loopback, unless allow_http); ask it now, before any request.
  for _, name in ipairs { "token_url", "api_base", "items_base" } do
    -- a URL's bytes go into request lines (a CR or LF would add lines)
    check(not self[name]:find("[%z\1-\32\127]"), "'" .. name .. "' must not contain spaces or control characters")
    local probe = setmetatable({ url = self[name], transport = opts.transport }, { __index = self.topts })
    local ok, err = pcall(core.prepare_request, probe)
    if ok then err:close() else
      for _, k in ipairs(TRANSPORT_KEYS) do
        if tostring(err):find("'" .. k .. "'", 1, true) then
          local why = tostring(err):match("'" .. k .. "' (%(.*%))$")
          check(false, "'" .. k .. "' has a wrong type or value" .. (why and " " .. why or ""))
        end
      end
      check(false, "'" .. name .. "' " .. tostring(err):match("'url' (.*)$"))
    end
  end
  local kept = {}
  for k, v in pairs(opts) do kept[k] = v end
  origins[self] = kept
  return self
end

--- A client of the same account, company, store, hooks and transport for
-- another API (for services and wrappers such as `avalara.fleet`):
-- `overrides` = {api_base, scope}. Its token is cached under its own scope
-- in the same store (one token when the scope is the same).
function Client:derive(overrides)
  local o = {}
  for k, v in pairs(origins[self]) do o[k] = v end
  o.legacy, o.shared_dict, o.token_url, o.store = nil, nil, self.token_url, self.store
  o.environment, o.company_id = self.environment, self.company_id
  for k, v in pairs(overrides) do o[k] = v end
  return M.new(o)
end

-- Waits a little while another coroutine holds the token lock.
function Client:_yield()
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

-- The exchange's answer from a Lua transport, which may yield: it runs
-- here, in the caller's coroutine, not from inside the C core.
local function run_transport(transport, ex)
  -- nil, err: a value unfit for the wire (a control character): never sent
  local req, rerr = ex:request()
  if not req then ex:close(); return nil, rerr end
  local ok, resp, terr = pcall(transport, req)
  if not ok then
    resp, terr = nil, { kind = "transport", message = "transport function raised: " .. tostring(resp) }
  end
  return ex:finish(resp, terr)
end

--- One exchange through the client's transport (for services and wrappers):
-- `kind` is "request" or a grant's name. With
-- libcurl the core performs it; with a Lua transport (the `transport`
-- option, or cosockets in nginx) the core prepares it once and finishes it
-- from the transport's answer (avalara.core's sans-I/O exchanges).
function Client:exchange(kind, args)
  with_topts(self, args)
  local transport = self:_transport()
  if not transport then
    if kind == "request" then return core.request(args) end
    return core[kind](args)
  end
  local ex = kind == "request" and core.prepare_request(args) or core.prepare_grant(kind, args)
  return run_transport(transport, ex)
end

-- The Lua transport for a call made now, or nil for libcurl.
function Client:_transport()
  if self._transport_now then return self._transport_now() end
  return self.transport
end

--- The same for core.request_many (for services and wrappers): a Lua transport runs one exchange at a
-- time, or (in nginx) `concurrency` of them on light threads.
function Client:exchange_many(reqs, args)
  with_topts(self, args)
  local transport = self:_transport()
  if not transport then return core.request_many(reqs, args) end
  local exchanges, out = {}, {}
  for i, r in ipairs(reqs) do exchanges[i] = core.prepare_request(with_topts(self, r)) end
  local function settle(i, status, body, headers)
    if status == nil then out[i] = { err = body } else out[i] = { status = status, body = body, headers = headers } end
  end
  if self._run_many then
    local requests, at = {}, {}
    for i, ex in ipairs(exchanges) do
      local req, rerr = ex:request()
      if req then requests[#requests + 1], at[#requests + 1] = req, i
      else ex:close(); out[i] = { err = rerr } end
    end
    local answers = self._run_many(transport, requests, args.concurrency)
    for j, i in ipairs(at) do settle(i, exchanges[i]:finish(answers[j][1], answers[j][2])) end
  else
    for i, ex in ipairs(exchanges) do settle(i, run_transport(transport, ex)) end
  end
  return out
end

-- Where a warning goes when the client has no `on_warning` (or it raised).
local default_warn = require("avalara.warning").default

-- A user hook (`on_request`, `on_token`, a partner's `on_refresh`) raised
-- `err`: the work goes on as if it had returned (the tokens are kept, the
-- lock released) and the error is told to `on_warning`, else to nginx's
-- error log or stderr, each time.
function Client:_hook_raised(name, err, where)
  local message = ("the %s hook raised (%signored): %s"):format(name, where and (where .. "; ") or "", tostring(err))
  if not (self.on_warning and pcall(self.on_warning, message)) then default_warn(message) end
end

function Client:_hook(method, url, status, started, attempt, err)
  if not self.on_request then return end
  local ok, herr = pcall(self.on_request, { method = method, url = url, status = status or (err and err.status) or nil,
    duration = now() - started, attempt = attempt, error_kind = err and err.kind or nil })
  if not ok then self:_hook_raised("on_request", herr) end
end

-- One token request, with retries. Returns a token record or nil, err.
function Client:_fetch_token()
  local rec, err = retry.run(self.retries, function(attempt)
    local started = now()
    local tok, e = self:exchange("client_credentials", {
      token_url = self.token_url, client_id = self.account_id, client_secret = secrets[self],
      scope = self.scope, auth_method = self.auth_method })
    self:_hook("POST", self.token_url, tok and 200 or nil, started, attempt, e)
    if not tok then return nil, e end
    local r = { access_token = tok:access_token(), token_type = tok:token_type(), scope = tok:scope(),
      expires_at = tok:expires_at(), obtained_at = now() }
    tok:close()
    return r
  end, { sleep = self.sleep })
  return rec, err
end

-- A token record as this client writes it: a store gives back what any
-- process (or anyone who can write the file, the Redis key, the dict) put
-- there, so its fields are checked before use: an access token of visible
-- ASCII (it goes into a header line: a CR or LF would add lines of its
-- own), and numbers where numbers belong.
local function well_formed(rec)
  return type(rec.access_token) == "string" and rec.access_token:find("^[\33-\126]+$") ~= nil
    and (rec.token_type == nil or type(rec.token_type) == "string")
    and (rec.scope == nil or type(rec.scope) == "string")
    and (rec.expires_at == nil or (type(rec.expires_at) == "number" and rec.expires_at == rec.expires_at))
    and (rec.obtained_at == nil or type(rec.obtained_at) == "number")
end

function Client:_valid(rec, stale)
  if rec == nil then return false end
  if type(rec) ~= "table" or not well_formed(rec) then
    -- treated as no token (a fresh one is fetched and stored over it), said once
    self:_warn_once("bad_token", "the token record in " .. tostring(self.store)
      .. " is not a valid token (a control character or space in the token, or a field of the wrong type):"
      .. " ignored, a new token is fetched")
    return false
  end
  if stale ~= nil and rec.access_token == stale then return false end
  if rec.expires_at == nil then return true end
  -- A lifetime shorter than the leeway would renew on every call: use half of it then.
  local leeway = self.leeway
  if rec.obtained_at and rec.expires_at - rec.obtained_at < 2 * leeway then
    leeway = (rec.expires_at - rec.obtained_at) / 2
  end
  return rec.expires_at - leeway > now()
end

-- A store's failure that is not an outage: a misconfigured store (`avalara.store.redis`: a wrong
-- password, an ACL user without a command, ...; kind "store", not retryable) fails the call
-- rather than letting this process fetch tokens of its own without a word.
local function misconfigured(err)
  return type(err) == "table" and err.kind == "store" and not err.retryable
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
    return wrap_token(rec)
  end
  -- The token this client last saw, while it is valid: no store round trip
  -- (nor decoding) on every call. Another process's renewal does not make it
  -- invalid; a 401 names it `stale`, which goes to the store.
  local held = self._held
  if held and stale == nil and self:_valid(held._rec) then return held end
  local store, key = self.store, self.store_key
  -- A store that could not keep the token: this process keeps it instead.
  local rec, _, gerr = store:get(key)
  if misconfigured(gerr) then return nil, gerr end
  rec = rec or self._kept
  if self:_valid(rec, stale) then return self:_hold(rec) end
  -- the lease outlives the fetch it guards (retries and timeout), so that
  -- no other process takes the lock while it still runs
  local lease = math.max(60, self.retries.deadline + (self.topts.timeout or 30) + 30)
  local unlock, lerr = store:lock(key, lease)
  if misconfigured(lerr) then return nil, lerr end
  local give_up = now() + self.retries.deadline + (self.topts.timeout or 30)
  -- a store that cannot lock (an outage: nil, err) is not waited for: go on without its lock
  while not unlock and lerr == nil do
    self:_yield()
    rec = store:get(key) or self._kept
    if self:_valid(rec, stale) then return self:_hold(rec) end
    unlock, lerr = store:lock(key, lease)
    if misconfigured(lerr) then return nil, lerr end
    if not unlock and now() > give_up then break end -- a lost lock: go on without it
  end
  rec = store:get(key) or self._kept
  if self:_valid(rec, stale) then
    if unlock then unlock() end
    return self:_hold(rec)
  end
  local renewed = rec ~= nil or self._had_token == true
  local ok, fresh, err = pcall(self._fetch_token, self)
  if not (ok and fresh) then
    if unlock then unlock() end
    if not ok then error(fresh, 0) end
    return nil, err
  end
  return self:_took_token(fresh, renewed, unlock)
end

-- Keeps a token record just obtained (in the store, else for this process),
-- releases the lock, tells `on_token` and holds it (also for `avalara.async`).
function Client:_took_token(fresh, renewed, unlock)
  local store = self.store
  -- stored before unlocking: a waiter that takes the lock next must find it
  local ttl = fresh.expires_at and math.max(1, math.ceil(fresh.expires_at - now())) or nil
  local stored, why = store:set(self.store_key, fresh, ttl)
  self._kept = nil
  if stored == nil and misconfigured(why) then
    if unlock then unlock() end
    return nil, why
  end
  if stored == nil and why ~= nil then
    self._kept = fresh
    self:_warn_once("store", "cannot keep the token in " .. tostring(store) .. ": " .. tostring(why)
      .. " (it is used for this process only)")
  end
  if unlock then unlock() end
  self._had_token = true
  if self.on_token then
    local ok, herr = pcall(self.on_token, { token_type = fresh.token_type, scope = fresh.scope,
      expires_at = fresh.expires_at, expires_in = fresh.expires_at and fresh.expires_at - now() or nil,
      renewed = renewed, account_id = self.account_id })
    if not ok then self:_hook_raised("on_token", herr) end
  end
  return self:_hold(fresh)
end

-- The client credentials grant, prepared and not sent: `avalara.async` runs it on its multi.
function Client:_token_grant()
  return core.prepare_grant("client_credentials", with_topts(self, { token_url = self.token_url,
    client_id = self.account_id, client_secret = secrets[self], scope = self.scope, auth_method = self.auth_method }))
end

-- Wraps a token record and keeps it as the one this client uses next.
function Client:_hold(rec)
  local tok = wrap_token(rec)
  self._held = tok
  return tok
end

-- Tells `on_warning` once per `what` (an unwritable token cache, ...).
function Client:_warn_once(what, message)
  self._warned = self._warned or {}
  if self._warned[what] then return end
  self._warned[what] = true
  if self.on_warning and not pcall(self.on_warning, message) then default_warn(message) end
end

-- Renews after a 401 that asked for it (the cached token is `stale`).
function Client:_renew(stale)
  return self:token(stale)
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
  -- most calls succeed at once. A failure goes on in `_call_again`.
  local started = now()
  local status, b, h = self:exchange("request", { method = method, url = url, token = tok._rec.access_token,
    body = body })
  if self.on_request then self:_hook(method, url, status, started, 1, status == nil and b or nil) end
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
        self:_hook(method, url, status, t0, exchange, status == nil and b or nil)
        if status ~= nil then return status, b, h end
        err = b
      end
      if not (err.needs_refresh and not renewed) then return nil, err end
      renewed = true
      local t2, e2 = self:_renew(tok:access_token())
      if not t2 then final = e2; return nil, e2 end
      tok = t2
    end
  end, { sleep = self.sleep, started = started,
    retryable = function(e) return e ~= final and retry.retryable(e) end })
end

--- The company path segment (for services); raises naming `where` when the client has none.
function Client:company(where)
  if self.company_id == nil then
    error(where .. ": 'company_id' is required (give it to avalara.new or set AVALARA_COMPANY_ID)", 3)
  end
  return self.company_id
end

--- Creates a classification request (its id is `{companyId}-{itemCode}-{country}`:
-- creating the same item for the same country again replaces the request).
-- The item is checked before any request (see `avalara.item`); it raises
-- naming the field when it is not valid.
-- @tparam table item `{itemCode, description, summary?, itemGroup?, parameters?,
-- classificationParameters?}`; the country from `item.countryOfDestination` or `opts.country`
-- @tparam[opt] table opts `{country, item_group}` (`item_group`: the `itemGroup` of items without
-- one, default `avalara.item.DEFAULT_GROUP`)
-- @return the classification model (status usually `PENDING`), or nil, err
function Client:classify(item, opts)
  if opts ~= nil and type(opts) ~= "table" then error("client:classify: 'opts' must be a table", 2) end
  opts = opts or {}
  local company = self:company("client:classify")
  local body = item_model.body(item, { company_id = company, country = opts.country, item_group = opts.item_group,
    where = "client:classify" })
  local status, model = self:call("POST", paths.build("classification_create", { companyId = company }), body)
  if status == nil then return nil, model end
  return model
end

--- Reads a classification.
-- @string id `{companyId}-{itemCode}-{country}` (percent-encoded in the path: item codes may hold `/`)
-- @return the model, or nil, err
function Client:classification(id)
  if type(id) ~= "string" or id == "" then
    error("client:classification: 'id' must be a string (got " .. type(id) .. ")", 2)
  end
  local company = self:company("client:classification")
  local s, model = self:call("GET", paths.build("classification_get", { companyId = company, id = id }))
  if s == nil then return nil, model end
  return model
end

--- Polls a classification until it is no longer `PENDING`.
-- The interval grows by half each time (up to 5 s).
-- @param id_or_model an id, or a model (returned at once when not PENDING)
-- @tparam[opt] table opts `{timeout = 60, interval = 0.25}`
-- @return the model, or nil, err (kind "timeout" when still PENDING at the deadline)
function Client:wait(id_or_model, opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("client:wait: 'opts' must be a table", 2) end
  local model, id = nil, id_or_model
  if type(id_or_model) == "table" then
    model, id = id_or_model, id_or_model.id
    if model.status ~= nil and model.status ~= "PENDING" then return model end
  end
  if type(id) ~= "string" then error("client:wait: an id or a model with an 'id' is required", 2) end
  local timeout, interval = opts.timeout or 60, opts.interval or 0.25
  local deadline = now() + timeout
  if model then self.sleep(interval) end
  while true do
    local m, err = self:classification(id)
    if not m then return nil, err end
    if m.status ~= "PENDING" then return m end
    local left = deadline - now()
    if left <= 0 then
      return nil, make_error { kind = "timeout", message = string.format(
        "classification %s still PENDING after %g s", id, timeout), retryable = true }
    end
    -- The last poll is at the deadline itself: --wait N waits N seconds.
    self.sleep(math.min(interval, left))
    interval = math.min(interval * 1.5, 5)
  end
end

--- Classifies many items: a per-item pipeline on the core's multi handle,
-- with an optional journal to resume from (see `avalara.batch`).
-- Results are aligned with `items`: each a model, or an error table (one
-- failed item never loses the others). With `wait` (the default) each item
-- is polled as soon as its create returns, until classified. Every item is
-- checked first: an invalid one raises (naming its index and field) before
-- any request.
-- @tparam table items array of items as for `classify`
-- @tparam[opt] table opts `{concurrency = 16, wait = true, country, item_group, timeout = 120,
-- interval = 0.25, on_progress = function(done, total, index, result), journal = path, restart,
-- rate = requests per second, window, should_stop}`
-- @treturn table results
-- @treturn table summary `{total, ok, failed, not_attempted, duplicates, resumed, creates, requests,
-- stopped, reason}`; or nil, message when the journal cannot be used
function Client:classify_batch(items, opts)
  return require("avalara.batch").classify(self, items, opts)
end

-- The Items flow's methods (`avalara.items`, documented there).
for name, method in pairs(items_flow.Client) do Client[name] = method end
-- The non-blocking calls (`avalara.async`, documented there).
for name, method in pairs(require("avalara.async").Client) do Client[name] = method end

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

--- The 21 HS sections (`hsCode` `I` to `XXI`, `system` `""`), as `HsCodeModel` records.
-- @return records, count (`@recordsetCount`), or nil, err
function Client:sections()
  return definitions.sections(self)
end

--- The next level below a section numeral, chapter, heading or subheading in a
-- country's tariff, every page followed (`@nextLink`); empty below a full code.
-- @string country the destination country
-- @string code a section numeral (`"XI"`) or an HS code string (`"84"`, `"6109"`)
-- @tparam[opt] table opts `{filter, top, skip, order_by}` (`top`: page size, 1 to 1000)
-- @return records, count (`@recordsetCount`), or nil, err
function Client:hs_codes(country, code, opts)
  return definitions.hs_codes(self, country, code, opts)
end

--- An iterator over the codes below `code`, fetching pages lazily:
-- `for rec, err in client:each_hs_code("US", "84") do ... end`; after a
-- failure it yields `false, err` once.
-- @string country
-- @string code
-- @tparam[opt] table opts as for `hs_codes`
-- @treturn function
function Client:each_hs_code(country, code, opts)
  return definitions.each_hs_code(self, country, code, opts)
end

--- The chain from the root record (`hsCode` `""`) down to the code itself.
-- @string country the destination country
-- @string code an HS code string
-- @return records, count, or nil, err
function Client:hierarchy(country, code)
  return definitions.hierarchy(self, country, code)
end

--- Partner integrations: `avalara.partner.new{...}` (the module `avalara.partner`).
M.partner = require "avalara.partner"

return M
