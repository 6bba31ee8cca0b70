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
-- used (`avalara.partner.connection`), so concurrent workers and processes
-- never spend the same refresh token twice.
--
-- Failures return `nil, err` (an `avalara.error`, see `avalara.partner.error`).
-- The partner's own failures have their own `err.code`: `state_missing`,
-- `state_unknown`, `state_expired`, `state_replayed`, the callback's own
-- `error` (`access_denied`, ...; else `authorization_failed`), `code_missing`
-- (no code in the callback), `reauthorize` (the customer must connect again),
-- `connection_unknown`, `refresh_in_progress` (kind "timeout"), `store_failed`
-- (kind "store"). A token endpoint's refusal keeps the server's OAuth `error`
-- as `err.code` (kind "oauth"), its description in `err.error_description`,
-- and says what it means in `err.oauth_detail`: `invalid_client_id`,
-- `invalid_client_secret`, `invalid_client`, `code_missing`, `code_invalid`,
-- `refresh_token_missing`, `unsupported_grant_type`, ... (seed 003's table).
-- Connection records returned never hold a secret.
--
-- Parts: `avalara.partner.options` (the options), `.environments` (the
-- endpoints), `.connection` (the refresh protocol), `.records` (the stored
-- connections), `.callback` (the redirect back), `.error`.
-- @module avalara.partner
local core = require "avalara.core"
local clock = require "avalara.clock"
local client_new = require("avalara.client").new
local options = require "avalara.partner.options"
local environments = require "avalara.partner.environments"
local connection = require "avalara.partner.connection"
local errors = require "avalara.partner.error"
local callback = require "avalara.partner.callback"
local records = require "avalara.partner.records"

local M = {}

local fail, store_failed, detail = errors.fail, errors.store_failed, errors.detail

-- Secrets live here, not in the partner table.
local secrets = setmetatable({}, { __mode = "k" })
-- What the connections need of their partner (`avalara.partner.connection`'s `account`).
local accounts = setmetatable({}, { __mode = "k" })

--- The environments of each flow (`environments["2012"].production`, ...; `avalara.partner.environments`).
M.environments = environments.flows

-- A random URL-safe string of 256 bits (the core's PKCE verifier: getrandom).
local function random_token()
  return (core.pkce())
end

-- ------------------------------------------------------------ the partner

--- A partner (returned by `avalara.partner.new`).
-- @type Partner
local Partner = {}
Partner.__index = Partner

Partner.__tostring = function(self)
  return ("avalara partner (client %s, flow %s, environment %s)"):format(self.client_id, self.flow, self.environment)
end

-- The token source of the lifecycle's own client: it calls no API.
local NO_TOKEN = setmetatable({ token = function()
  return fail("connection_unknown", "this client belongs to no connection")
end }, { __tostring = function() return "no connection" end })

-- A client (`avalara.client`) of the partner's environment, with its client options and `extra`.
local function make_client(self, extra)
  local o = { environment = self.client_environment, emulator_url = self.emulator_url,
    token_url = self.urls.token, api_base = self.api_base }
  for k, v in pairs(self.client_options) do o[k] = v end
  for k, v in pairs(extra) do o[k] = v end
  return client_new(o)
end

-- Revokes a record's authorization (best effort for Identity's access token).
local function revoke(self, rec)
  local function one(token, hint)
    return self.runner:exchange("revoke", { url = self.urls.revocation, client_id = self.client_id,
      client_secret = secrets[self], auth_method = self.auth_method,
      token_type_hint = self.flow == "identity" and hint or nil, token = token })
  end
  -- 2012: revoking the refresh token revokes its whole authorization lifecycle.
  local ok, err = true, nil
  if rec.refresh_token then ok, err = one(rec.refresh_token, "refresh_token") end
  if ok and rec.access_token and (self.flow == "identity" or not rec.refresh_token) then
    ok, err = one(rec.access_token, "access_token")
  end
  if not ok then return nil, detail(err, "revoke") end
  return true
end

-- The `account` of `avalara.partner.connection`: what a connection needs of its partner,
-- the secret kept in a closure.
local function account_of(self)
  local account = { store = self.store, lock_ttl = self.lock_ttl, token_url = self.urls.token, unsaved = {} }
  function account.key(id) return self:key(id) end
  function account.revoke(rec) return revoke(self, rec) end
  function account.refresh(client, refresh_token)
    return client:exchange("refresh_token", { token_url = self.urls.token, client_id = self.client_id,
      client_secret = secrets[self], refresh_token = refresh_token, auth_method = self.auth_method })
  end
  -- Tells `on_refresh`, protected: a hook that raises is reported (the lifecycle client's
  -- `hook_raised`: `on_warning`, else nginx's log or stderr) and changes nothing (the tokens
  -- are stored before any hook runs); the interpreter's "interrupted!" (Ctrl-C) is raised again.
  function account.notify(id, stage)
    local f = self.on_refresh
    if not f then return end
    local ok, err = pcall(f, { connection_id = id, stage = stage })
    if ok then return end
    if type(err) == "string" and err:match("interrupted!$") then error(err, 0) end
    self.runner:hook_raised("on_refresh", err, "connection " .. id .. ", stage " .. stage)
  end
  return account
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
  local self = setmetatable({}, Partner)
  options.apply(self, opts)
  secrets[self] = opts.client_secret
  -- The exchanges of the lifecycle run through a client of their own, for
  -- its transport (libcurl, a Lua transport, or cosockets in nginx).
  local ok, runner = pcall(make_client, self, { token_source = NO_TOKEN })
  if not ok then error("avalara.partner.new: " .. tostring(runner):gsub("^.-avalara%.new: ", ""), 2) end
  self.runner = runner
  accounts[self] = account_of(self)
  return self
end

--- The store key of connection `id` (its record: tokens, status, company).
-- @string id
-- @treturn string
function Partner:key(id) return self.prefix .. "connection:" .. id end

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
  local t = clock.time()
  local pending = { created_at = t, expires_at = t + self.state_ttl, redirect_uri = self.redirect_uri,
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

--- Completes an authorization from the redirect back: checks the state
-- (known, not expired, used once), then exchanges the code and stores the
-- connection.
-- @param query the callback's query string (a whole URL is fine too) or a table of its parameters
-- @return the connection `{id, flow, company_id?, scope, token_type, created_at, status}` (no secret),
-- or nil, err (see the module's error codes)
function Partner:handle_callback(query)
  if not self.redirect_uri then error("partner:handle_callback: the partner has no 'redirect_uri'", 2) end
  local q, repeated = callback.params(query)
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
  local ok, cerr = self.store:cas(key, version, { used_at = clock.time() }, self.state_ttl + 3600)
  if ok == nil then return store_failed(self.store, "consuming the pending authorization", cerr) end
  if not ok then return fail("state_replayed", "this callback was already handled (its state is single-use)") end
  if pending.expires_at <= clock.time() then
    return fail("state_expired", ("the authorization took longer than its %d s: start again"):format(self.state_ttl))
  end
  if q.error then return callback.refused(q) end
  if not q.code or q.code == "" then
    return fail("code_missing", "the callback has neither a code nor an error")
  end
  local tok, terr = self.runner:exchange("authorization_code", {
    token_url = self.urls.token, client_id = self.client_id,
    client_secret = secrets[self], code = q.code, redirect_uri = pending.redirect_uri,
    code_verifier = pending.verifier, auth_method = self.auth_method })
  if not tok then
    terr = detail(terr, "authorization_code")
    terr.message = "exchanging the authorization code: " .. terr.message
    return nil, terr
  end
  return records.connect(self, tok, { company_id = pending.company_id, connection_id = pending.connection_id }, revoke)
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
  local rec, _, err = self.store:get(self:key(id))
  if err then return store_failed(self.store, "reading connection " .. id, err) end
  if not rec then return errors.unknown(id) end
  local o = { company_id = rec.company_id, store = self.store }
  for k, v in pairs(opts or {}) do o[k] = v end
  o.token_source = connection.source(accounts[self], id)
  return make_client(self, o)
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
    client_secret = secrets[self], auth_method = self.auth_method })
  if not tok then return nil, detail(err, "generate_token") end
  return records.connect(self, tok, { company_id = opts.company_id, connection_id = opts.connection_id }, revoke)
end

--- Revokes a connection's authorization (2012 `oauth/revoke`: its whole
-- lifecycle; Identity: its refresh and access tokens) and forgets it.
-- @string id
-- @tparam[opt] table opts `{force = true}` forgets it even when the revocation fails
-- @return true, or nil, err (the connection is then kept, unless `force`)
function Partner:disconnect(id, opts)
  if type(id) ~= "string" then error("partner:disconnect: 'id' must be a string (got " .. type(id) .. ")", 2) end
  opts = opts or {}
  local key, account = self:key(id), accounts[self]
  local unlock, lerr = self.store:lock(key, self.lock_ttl)
  local give_up = clock.now() + self.lock_ttl + 5
  while not unlock do -- no refresh may rotate the tokens while they are revoked
    if lerr then return store_failed(self.store, "locking connection " .. id, lerr) end
    if clock.now() > give_up then
      return fail("refresh_in_progress", "connection " .. id .. " stays locked by another holder",
        { kind = "timeout", retryable = true })
    end
    self.runner:pause()
    unlock, lerr = self.store:lock(key, self.lock_ttl)
  end
  local function run()
    local rec, _, err = self.store:get(key)
    if err then return store_failed(self.store, "reading connection " .. id, err) end
    if not rec then return errors.unknown(id) end
    local revoked, rerr = revoke(self, rec)
    if not revoked and not opts.force then return nil, rerr end
    local deleted, derr = self.store:delete(key)
    if not deleted then return store_failed(self.store, "forgetting connection " .. id, derr) end
    account.unsaved[id] = nil
    return records.change_index(self, function(ids) ids[id] = nil end)
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
    local rec, _, rerr = self.store:get(self:key(id))
    if rerr then return store_failed(self.store, "reading connection " .. id, rerr) end
    if rec then list[#list + 1] = records.public(rec) end
  end
  table.sort(list, function(a, b)
    if a.created_at ~= b.created_at then return (a.created_at or 0) < (b.created_at or 0) end
    return a.id < b.id
  end)
  return list
end

M.Partner = Partner

return M
