--- Partner integrations (seed 002): a registered partner connects its
-- customers' Avalara accounts and calls the HS code service on their behalf.
--
--    local p = avalara.partner.new{ client_id = "...", client_secret = "...",
--      redirect_uri = "https://shop.example/callback", environment = "production",
--      store = "file" }                          -- or a store table, or shared_dict in OpenResty
--    local url, state = p:authorize_url()        -- send the customer there
--    local conn = assert(p:handle_callback(query_string))   -- on the redirect back
--    local client = assert(p:client(conn.id, { company_id = 1001 }))
--    local model = assert(client:classify(item, { country = "US" }))
--
-- Two flows: `flow = "2012"` (the default), Avalara's 2012 OAuth service
-- (`/oauth/authorize`, `access_token`, `generate_token`, `revoke`;
-- environments `development`, `production`, `local`), and `flow = "identity"`,
-- the authorization_code grant with PKCE S256 of Avalara Identity or of any
-- OAuth 2.0 server given by `urls` (environments `production`, `sandbox`,
-- `local`). Refresh tokens are single-use: a connection's tokens are renewed
-- by one holder at a time under the store's lock and stored before they are
-- used (`avalara.connection`), so concurrent workers and processes never
-- spend the same refresh token twice.
--
-- Failures return `nil, err` (an `avalara.error`); `err.code` names what
-- went wrong: `state_missing`, `state_unknown`, `state_expired`,
-- `state_replayed`, the callback's own `error` (`access_denied`, ...; else
-- `authorization_failed`),
-- `code_missing`, `code_invalid`, `invalid_client_id`, `invalid_client_secret`,
-- `invalid_client`, `unsupported_grant_type`, `refresh_token_missing`,
-- `reauthorize` (the customer must connect again), `connection_unknown`,
-- `refresh_in_progress`, `store_failed`. The server's own OAuth `error` is
-- kept in `err.oauth_code`, its description in `err.error_description`.
-- Connection records returned never hold a secret.
-- @module avalara.partner
local core = require "avalara.core"
local retry = require "avalara.retry"
local stores = require "avalara.store"
local connection = require "avalara.connection"

local M = {}

local fail, store_failed, precise = connection.fail, connection.store_failed, connection.precise

-- Secrets live here, not in the partner table.
local secrets = setmetatable({}, { __mode = "k" })

local now = require("avalara.clock").time

local function check(cond, msg, level)
  if not cond then error("avalara.partner.new: " .. msg, (level or 2) + 1) end
end

local function is_callable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return type(mt) == "table" and mt.__call ~= nil
end

--- Where each flow's endpoints are, per environment (docs/design.md section 4):
-- `oauth` (the folder of the 2012 service, or of Identity's `connect/`
-- endpoints) and `api` (the HS code API the connection's clients call: the
-- AvaTax hosts for 2012 tokens, the Identity ones otherwise). `local` is the
-- emulator (`emulator_url`).
M.environments = {
  ["2012"] = {
    development = { oauth = "https://development.avalara.net/oauth/", api = "https://hscode.avatax.sbx.avalara.com",
      client_environment = "sandbox" },
    production = { oauth = "https://avatax.avalara.net/oauth/", api = "https://hscode.avatax.avalara.com",
      client_environment = "production" },
    ["local"] = { oauth = "/oauth/", client_environment = "local" },
  },
  identity = {
    production = { oauth = "https://identity.avalara.com/connect/", api = "https://hscode.api.avalara.com",
      client_environment = "production" },
    sandbox = { oauth = "https://ai-sbx.avlr.sh/connect/", api = "https://hscode.api.sbx.avalara.com",
      client_environment = "sandbox" },
    ["local"] = { oauth = "/connect/", client_environment = "local" },
  },
}

-- Endpoint names per flow.
local ENDPOINTS = {
  ["2012"] = { authorize = "authorize", token = "access_token", revocation = "revoke",
    generate_token = "generate_token" },
  identity = { authorize = "authorize", token = "token", revocation = "revocation" },
}

-- Options handed on to the clients (`p:client`) and to the exchanges.
local CLIENT_KEYS = { "timeout", "connect_timeout", "cafile", "capath", "proxy", "verify", "user_agent",
  "max_body", "allow_http", "transport", "sleep", "wait", "retries", "on_request", "on_warning", "concurrency" }

-- A random URL-safe string of 256 bits (the core's PKCE verifier: getrandom).
local function random_token()
  return (core.pkce())
end

-- 16 hex digits (64 random bits): a connection id.
local function random_id()
  local v = core.pkce()
  return (v:sub(1, 16):gsub(".", function(c) return ("%x"):format(c:byte() % 16) end))
end

-- ------------------------------------------------------------ the partner

--- A partner (returned by `avalara.partner.new`).
-- @type Partner
local Partner = {}
Partner.__index = Partner

Partner.__tostring = function(self)
  return ("avalara partner (client %s, flow %s, environment %s)"):format(self.client_id, self.flow, self.environment)
end

--- Makes a partner.
--
-- - `client_id`, `client_secret`: the partner's registration (required)
-- - `redirect_uri`: where the customer comes back (required by `authorize_url`
--   and `handle_callback`); a loopback `http://127.0.0.1:PORT/...` is fine
-- - `flow`: "2012" (default) or "identity" (authorization_code with PKCE S256)
-- - `environment`: "production" (default), "development" (2012) or "sandbox"
--   (identity), or "local" with `emulator_url` (or `AVALARA_EMULATOR_URL`)
-- - `urls = {authorize, token, revocation, generate_token}`: override the
--   environment's endpoints (any OAuth 2.0 server with `flow = "identity"`);
--   `api_base`: the HS code API of the connections' clients
-- - `scope`: the scope asked for (identity default `hs-code-classification`;
--   2012: none sent)
-- - `store`: where connections and pending authorizations are kept: "memory"
--   (default), "file" (`$XDG_DATA_HOME/avalara-hscode/connections.db`), or a
--   store (`avalara.store.file(path)`, ...: get, set, cas, delete, lock); in
--   OpenResty `shared_dict = "<lua_shared_dict name>"` (every worker)
-- - `state_ttl` (600 s): how long an authorization may take; `lock_ttl` (60 s,
--   or `timeout` + 30 when longer): how long a refresh lock of a process that
--   vanished is honoured; it must be longer than `timeout`
-- - `auth_method` ("post" or "basic"), `on_refresh(info)` (`{connection_id, stage}`,
--   stage "refreshed" (the server renewed the tokens; told after the store
--   write), then "stored" (they are the connection's now), or "lost"; no secret)
-- - `on_warning(message)`: told when a hook (`on_refresh`, `on_request`) raises;
--   the hook's error is reported there (else nginx's error log, else stderr) and
--   changes nothing: tokens are stored before any hook runs
-- - transport and client options, handed on to `p:client`: `timeout`,
--   `connect_timeout`, `cafile`, `capath`, `proxy`, `verify`, `user_agent`,
--   `max_body`, `allow_http`, `transport`, `sleep`, `wait`, `retries`,
--   `on_request`, `on_warning`, `concurrency`
-- @tparam table opts
-- @treturn Partner
function M.new(opts)
  check(type(opts) == "table", "options must be a table")
  local self = setmetatable({ _unsaved = {} }, Partner)
  local id = opts.client_id
  check(id ~= nil, "'client_id' is required")
  check((type(id) == "string" and id ~= "") or type(id) == "number", "'client_id' must be a non-empty string")
  check(opts.client_secret ~= nil, "'client_secret' is required")
  check(type(opts.client_secret) == "string" and opts.client_secret ~= "", "'client_secret' must be a non-empty string")
  self.client_id = tostring(id)
  secrets[self] = opts.client_secret

  self.flow = opts.flow or "2012"
  check(ENDPOINTS[self.flow] ~= nil, "'flow' must be \"2012\" or \"identity\" (got " .. tostring(self.flow) .. ")")
  local envs = M.environments[self.flow]
  self.environment = opts.environment or "production"
  local env = envs[self.environment]
  if not env then
    local names = {}
    for name in pairs(envs) do names[#names + 1] = name end
    table.sort(names)
    check(false, "'environment' must be " .. table.concat(names, ", ") .. " for flow " .. self.flow
      .. " (got " .. tostring(self.environment) .. ")")
  end
  local oauth, api = env.oauth, env.api
  if self.environment == "local" then
    local emu = opts.emulator_url or os.getenv("AVALARA_EMULATOR_URL")
    check(type(emu) == "string" and emu:match("^https?://"),
      "environment 'local' needs 'emulator_url' (an http(s) URL, or set AVALARA_EMULATOR_URL)")
    self.emulator_url = emu:gsub("/+$", "")
    oauth, api = self.emulator_url .. oauth, self.emulator_url
  end
  check(opts.urls == nil or type(opts.urls) == "table", "'urls' must be a table")
  self.urls = {}
  for name, path in pairs(ENDPOINTS[self.flow]) do
    local u = opts.urls and opts.urls[name]
    check(u == nil or (type(u) == "string" and u:match("^https?://")), "'urls." .. name .. "' must be an http(s) URL")
    self.urls[name] = u or (oauth .. path)
  end
  if opts.urls and opts.urls.token and not opts.urls.generate_token and self.flow == "2012" then
    self.urls.generate_token = opts.urls.token:gsub("access_token$", "generate_token")
  end
  self.api_base = opts.api_base or api
  check(self.api_base == nil or (type(self.api_base) == "string" and self.api_base:match("^https?://")),
    "'api_base' must be an http(s) URL")
  self.client_environment = env.client_environment

  check(opts.redirect_uri == nil or (type(opts.redirect_uri) == "string" and opts.redirect_uri:match("^%a[%w+.-]*:")),
    "'redirect_uri' must be an absolute URI")
  self.redirect_uri = opts.redirect_uri
  check(opts.scope == nil or type(opts.scope) == "string", "'scope' must be a string")
  self.scope = opts.scope or (self.flow == "identity" and "hs-code-classification" or nil)
  self.auth_method = opts.auth_method or "post"
  check(self.auth_method == "post" or self.auth_method == "basic", "'auth_method' must be \"post\" or \"basic\"")
  for _, k in ipairs { "state_ttl", "lock_ttl" } do
    check(opts[k] == nil or (type(opts[k]) == "number" and opts[k] > 0), "'" .. k .. "' must be a positive number")
  end
  self.state_ttl, self.lock_ttl = opts.state_ttl or 600, opts.lock_ttl or 60
  -- The lease outlives the refresh it guards: a lock that lapsed while its
  -- refresh still ran would let another process spend the same refresh token.
  local timeout = type(opts.timeout) == "number" and opts.timeout or 30
  if opts.lock_ttl then
    check(opts.lock_ttl > timeout, "'lock_ttl' (" .. opts.lock_ttl .. " s) must be longer than 'timeout' (" .. timeout
      .. " s): a lock that lapses while its refresh runs lets another process spend the same refresh token")
  else
    self.lock_ttl = math.max(60, timeout + 30)
  end
  check(opts.on_refresh == nil or is_callable(opts.on_refresh), "'on_refresh' must be a function")
  self.on_refresh = opts.on_refresh

  local store = opts.store
  check(opts.shared_dict == nil or type(opts.shared_dict) == "string", "'shared_dict' must be a string")
  if opts.shared_dict then
    check(store == nil, "give 'store' or 'shared_dict', not both")
    store = require("avalara.openresty").store(opts.shared_dict)
  end
  if store == nil or store == "memory" then store = stores.memory()
  elseif store == "file" then store = stores.file(stores.default_path("data", "connections.db")) end
  check(type(store) == "table", "'store' must be \"memory\", \"file\" or a store table")
  for _, m in ipairs { "get", "set", "cas", "delete", "lock" } do
    check(is_callable(store[m]), "'store' must have get, set, cas, delete and lock (no '" .. m .. "')")
  end
  self.store = store
  self.prefix = "avalara:partner:" .. self.client_id .. "@" .. self.urls.token .. ":"

  -- The core's URL policy (plain http only to loopback, unless allow_http), asked now.
  for _, name in ipairs { "token", "revocation", "generate_token", "authorize" } do
    local probe = { url = self.urls[name], allow_http = opts.allow_http, transport = opts.transport }
    local pok, perr = pcall(core.prepare_request, probe)
    if pok then perr:close() elseif probe.url then
      check(false, "'urls." .. name .. "' " .. (tostring(perr):match("'url' (.*)$") or tostring(perr)))
    end
  end
  self.client_options = {}
  for _, k in ipairs(CLIENT_KEYS) do self.client_options[k] = opts[k] end
  -- The exchanges of the lifecycle run through a client of their own, for
  -- its transport (libcurl, a Lua transport, or cosockets in nginx).
  local ok, runner = pcall(self._new_client, self, { token_source = M._no_token })
  if not ok then check(false, (tostring(runner):gsub("^.-avalara%.new: ", ""))) end
  self.runner = runner
  return self
end

-- The token source of the lifecycle's own client: it calls no API.
M._no_token = setmetatable({ token = function()
  return fail("connection_unknown", "this client belongs to no connection")
end }, { __tostring = function() return "no connection" end })

function Partner:_new_client(extra)
  local o = { environment = self.client_environment, emulator_url = self.emulator_url,
    token_url = self.urls.token, api_base = self.api_base }
  for k, v in pairs(self.client_options) do o[k] = v end
  for k, v in pairs(extra) do o[k] = v end
  return require("avalara").new(o)
end

function Partner:_secret() return secrets[self] end
function Partner:_key(id) return self.prefix .. "connection:" .. id end

-- Tells `on_refresh`, protected: a hook that raises is reported (the
-- runner's `_hook_raised`: `on_warning`, else nginx's log or stderr) and
-- changes nothing (the tokens are stored before any hook runs).
function Partner:_hook(id, stage)
  local f = self.on_refresh
  if not f then return end
  local ok, err = pcall(f, { connection_id = id, stage = stage })
  if not ok then self.runner:_hook_raised("on_refresh", err, "connection " .. id .. ", stage " .. stage) end
end

-- Revokes a record's authorization (best effort for Identity's access token).
function Partner:_revoke(rec)
  local base = { url = self.urls.revocation, client_id = self.client_id, client_secret = self:_secret(),
    auth_method = self.auth_method }
  local function revoke(token, hint)
    local args = { token_type_hint = self.flow == "identity" and hint or nil, token = token }
    for k, v in pairs(base) do args[k] = v end
    return self.runner:exchange("revoke", args)
  end
  -- 2012: revoking the refresh token revokes its whole authorization lifecycle.
  local ok, err = true, nil
  if rec.refresh_token then ok, err = revoke(rec.refresh_token, "refresh_token") end
  if ok and rec.access_token and (self.flow == "identity" or not rec.refresh_token) then
    ok, err = revoke(rec.access_token, "access_token")
  end
  if not ok then return nil, precise(err, "revoke") end
  return true
end

-- What callers see of a connection record: no secret.
local function public(rec)
  return { id = rec.id, flow = rec.flow, company_id = tonumber(rec.company_id), scope = rec.scope,
    token_type = rec.token_type, created_at = rec.created_at, refreshed_at = rec.refreshed_at,
    status = rec.status, expires_at = rec.expires_at }
end

-- Changes the list of connection ids (compare-and-set, again on a race).
function Partner:_index(change)
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

-- Stores a new connection from a grant's token; replaces `meta.connection_id`'s
-- record when given (and revokes the authorization it had).
function Partner:_connect(tok, meta)
  local rec = connection.with_tokens(tok, { flow = self.flow, created_at = now(),
    company_id = meta.company_id and tostring(meta.company_id) or nil })
  tok:close()
  local old
  for _ = 1, 5 do
    rec.id = meta.connection_id or random_id()
    local key = self:_key(rec.id)
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
  local indexed, ierr = self:_index(function(ids) ids[rec.id] = true end)
  if not indexed then return nil, ierr end
  -- One authorization per customer: the replaced one is revoked (best effort), with whatever a
  -- process killed in a refresh may have left of it (2012 revokes a whole lifecycle).
  if old then self:_revoke(old) end
  return public(rec)
end

--- The URL to send the customer to, and the state it carries.
-- The state (256 random bits unless given) is kept as pending in the store
-- for `state_ttl` seconds, with the PKCE verifier for Identity.
-- @tparam[opt] table opts `{state, scope, company_id, connection_id}`: `state` your own (at least
-- 22 URL-safe characters); `scope` instead of the partner's; `company_id` recorded on the
-- connection; `connection_id` the id to keep the connection under (default a random one): an
-- existing connection of that id is replaced (reconnecting it), and its old authorization revoked.
-- Only ever pass the id of a connection that belongs to the customer at hand.
-- @return url, state; or nil, err (the store failed)
function Partner:authorize_url(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("partner:authorize_url: 'opts' must be a table", 2) end
  if not self.redirect_uri then error("partner:authorize_url: the partner has no 'redirect_uri'", 2) end
  local state = opts.state
  if state ~= nil and (type(state) ~= "string" or not state:match("^[%w%-%._~]+$") or #state < 22) then
    error("partner:authorize_url: 'state' must be at least 22 URL-safe characters (A-Z a-z 0-9 - . _ ~)", 2)
  end
  if opts.scope ~= nil and type(opts.scope) ~= "string" then
    error("partner:authorize_url: 'scope' must be a string", 2)
  end
  local company = opts.company_id
  if company ~= nil and not tostring(company):match("^%d+$") then
    error("partner:authorize_url: 'company_id' must be digits", 2)
  end
  local cid = opts.connection_id
  if cid ~= nil and (type(cid) ~= "string" or not cid:match("^[%w%-_.]+$")) then
    error("partner:authorize_url: 'connection_id' must be a string of letters, digits, '-', '_' or '.'", 2)
  end
  state = state or random_token()
  local scope = opts.scope or self.scope
  local pending = { created_at = now(), expires_at = now() + self.state_ttl, redirect_uri = self.redirect_uri,
    company_id = company and tostring(company) or nil, connection_id = cid }
  local challenge
  if self.flow == "identity" then pending.verifier, challenge = core.pkce() end
  -- Kept an hour past its lifetime, so that a late callback reads "expired", not "unknown".
  local ok, err = self.store:cas(self.prefix .. "state:" .. state, nil, pending, self.state_ttl + 3600)
  if ok == nil then return store_failed(self.store, "storing the pending authorization", err) end
  if not ok then return fail("state_replayed", "this state was already used: give a new one") end
  return core.authorize_url { url = self.urls.authorize, client_id = self.client_id, redirect_uri = self.redirect_uri,
    scope = scope, state = state, code_challenge = challenge }, state
end

-- The callback's parameters from a query string (or a whole URL) or a table.
local function callback_params(query)
  if type(query) == "string" then
    query = query:gsub("#.*$", "")
    if query:find("?", 1, true) then query = query:match("%?(.*)$") end
    return core.protocol.form_decode(query)
  end
  if type(query) ~= "table" then
    error("partner:handle_callback: 'query' must be a query string or a table (got " .. type(query) .. ")", 3)
  end
  local params = {}
  for k, v in pairs(query) do
    if type(v) == "table" then return nil, k end -- a repeated parameter
    params[k] = v ~= true and tostring(v) or ""
  end
  return params
end

local CALLBACK_ERRORS = {
  access_denied = "the customer (or Avalara) refused the authorization",
  invalid_request = "the authorization request was refused as malformed",
  unauthorized_client = "this partner may not ask for authorizations (is its registration approved?)",
  unsupported_response_type = "the authorization server refused the response type",
  invalid_scope = "the authorization server refused the scope asked for",
  server_error = "the authorization server failed",
  temporarily_unavailable = "the authorization server is unavailable for now: try again later",
}

--- Completes an authorization from the redirect back: checks the state
-- (known, not expired, used once), then exchanges the code and stores the
-- connection.
-- @param query the callback's query string (a whole URL is fine too) or a table of its parameters
-- @return the connection `{id, flow, company_id?, scope, token_type, created_at, status}` (no secret),
-- or nil, err (see the module's error codes)
function Partner:handle_callback(query)
  if not self.redirect_uri then error("partner:handle_callback: the partner has no 'redirect_uri'", 2) end
  local q, repeated = callback_params(query)
  if not q then return fail("invalid_request", "the callback repeats the parameter '" .. repeated .. "'") end
  local state = q.state
  if state == nil or state == "" then
    return fail("state_missing", "the callback has no state: it does not come from an authorization started here")
  end
  -- Only what authorize_url issues can match (and nothing else reaches the store as a key).
  local pending, version, err
  if #state <= 256 and state:match("^[%w%-%._~]+$") then
    pending, version, err = self.store:get(self.prefix .. "state:" .. state)
    if err then return store_failed(self.store, "reading the pending authorization", err) end
  end
  local key = self.prefix .. "state:" .. state
  if not pending then
    return fail("state_unknown", "the callback's state matches no authorization started here (a forged or "
      .. "foreign request, or one older than its lifetime): start again")
  end
  if pending.used_at then
    return fail("state_replayed", "this callback was already handled (its state is single-use)")
  end
  local ok, cerr = self.store:cas(key, version, { used_at = now() }, self.state_ttl + 3600)
  if ok == nil then return store_failed(self.store, "consuming the pending authorization", cerr) end
  if not ok then return fail("state_replayed", "this callback was already handled (its state is single-use)") end
  if pending.expires_at <= now() then
    return fail("state_expired", ("the authorization took longer than its %d s: start again"):format(self.state_ttl))
  end
  if q.error then
    -- RFC 6749 error codes are short ASCII words; anything else is reported, not echoed as a code.
    local code = (#q.error <= 64 and q.error:match("^[%w_%-%.]+$")) and q.error or "authorization_failed"
    local text = CALLBACK_ERRORS[code] or "the authorization failed"
    local description = q.error_description and q.error_description:sub(1, 500)
    return fail(code, description and (text .. ": " .. description) or text,
      { error_description = description, error_uri = q.error_uri })
  end
  if not q.code or q.code == "" then
    return fail("code_missing", "the callback has neither a code nor an error")
  end
  local tok, terr = self.runner:exchange("authorization_code", {
    token_url = self.urls.token, client_id = self.client_id,
    client_secret = self:_secret(), code = q.code, redirect_uri = pending.redirect_uri,
    code_verifier = pending.verifier, auth_method = self.auth_method })
  if not tok then
    terr = precise(terr, "authorization_code")
    terr.message = "exchanging the authorization code: " .. terr.message
    return nil, terr
  end
  return self:_connect(tok, { company_id = pending.company_id, connection_id = pending.connection_id })
end

--- A client with the methods of `avalara.new`'s (classify, wait,
-- classify_batch, sections, hs_codes, hierarchy, ...) that calls the API with
-- the connection's tokens, renewing them as `avalara.connection` says.
-- @string id the connection
-- @tparam[opt] table opts as `avalara.new`'s (`company_id`, default the connection's; `api_base`,
-- `timeout`, `retries`, ...)
-- @return the client, or nil, err (`connection_unknown`, `store_failed`)
function Partner:client(id, opts)
  if type(id) ~= "string" then error("partner:client: 'id' must be a string (got " .. type(id) .. ")", 2) end
  if opts ~= nil and type(opts) ~= "table" then error("partner:client: 'opts' must be a table", 2) end
  local rec, _, err = self.store:get(self:_key(id))
  if err then return store_failed(self.store, "reading connection " .. id, err) end
  if not rec then return connection.unknown(id) end
  local o = { token_source = connection.source(self, id), company_id = rec.company_id, store = self.store }
  for k, v in pairs(opts or {}) do o[k] = v end
  return self:_new_client(o)
end

--- The 2012 self-grant (`oauth/generate_token`): the partner's own connection.
-- @tparam[opt] table opts `{company_id, connection_id}` (as for `authorize_url`)
-- @return the connection (no secret), or nil, err
function Partner:self_grant(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("partner:self_grant: 'opts' must be a table", 2) end
  if self.flow ~= "2012" then
    error("partner:self_grant: generate_token is a 2012 flow operation (with Identity, use avalara.new's "
      .. "client credentials)", 2)
  end
  local tok, err = self.runner:exchange("generate_token", { url = self.urls.generate_token, client_id = self.client_id,
    client_secret = self:_secret(), auth_method = self.auth_method })
  if not tok then return nil, precise(err, "generate_token") end
  return self:_connect(tok, { company_id = opts.company_id, connection_id = opts.connection_id })
end

--- Revokes a connection's authorization (2012 `oauth/revoke`: its whole
-- lifecycle; Identity: its refresh and access tokens) and forgets it.
-- @string id
-- @tparam[opt] table opts `{force = true}` forgets it even when the revocation fails
-- @return true, or nil, err (the connection is then kept, unless `force`)
function Partner:disconnect(id, opts)
  if type(id) ~= "string" then error("partner:disconnect: 'id' must be a string (got " .. type(id) .. ")", 2) end
  opts = opts or {}
  local key = self:_key(id)
  local unlock, lerr = self.store:lock(key, self.lock_ttl)
  local give_up = retry.now() + self.lock_ttl + 5
  while not unlock do -- no refresh may rotate the tokens while they are revoked
    if lerr then return store_failed(self.store, "locking connection " .. id, lerr) end
    if retry.now() > give_up then
      return fail("refresh_in_progress", "connection " .. id .. " stays locked by another holder",
        { kind = "timeout", retryable = true })
    end
    self.runner:_yield()
    unlock, lerr = self.store:lock(key, self.lock_ttl)
  end
  local function run()
    local rec, _, err = self.store:get(key)
    if err then return store_failed(self.store, "reading connection " .. id, err) end
    if not rec then return connection.unknown(id) end
    local revoked, rerr = self:_revoke(rec)
    if not revoked and not opts.force then return nil, rerr end
    local deleted, derr = self.store:delete(key)
    if not deleted then return store_failed(self.store, "forgetting connection " .. id, derr) end
    self._unsaved[id] = nil
    return self:_index(function(ids) ids[id] = nil end)
  end
  local ok, done, err = pcall(run)
  unlock()
  if not ok then error(done, 0) end
  if not done then return nil, err end
  return true
end

--- The partner's connections, oldest first (no secrets): each
-- `{id, flow, company_id?, scope, token_type, created_at, refreshed_at?, status}`, `status`
-- "connected" or "reauthorize" (the customer must connect again).
-- @return the list, or nil, err
function Partner:connections()
  local idx, _, err = self.store:get(self.prefix .. "connections")
  if err then return store_failed(self.store, "reading the connection list", err) end
  local list = {}
  for _, id in ipairs(idx and idx.ids or {}) do
    local rec, _, rerr = self.store:get(self:_key(id))
    if rerr then return store_failed(self.store, "reading connection " .. id, rerr) end
    if rec then list[#list + 1] = public(rec) end
  end
  table.sort(list, function(a, b)
    if a.created_at ~= b.created_at then return (a.created_at or 0) < (b.created_at or 0) end
    return a.id < b.id
  end)
  return list
end

M.Partner = Partner

return M
